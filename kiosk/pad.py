"""The kiosk's readers: items arriving on and leaving the pad, multi-part sets, patron cards.

Handlers run on the MQTT network thread; each hands its event to the UI thread
through ``post`` and returns at once.
"""

from __future__ import annotations

import logging
from typing import Callable, Protocol

from openshelf.contract import CardPresented, Channel, Kind, SetStatusEvent, TagEvent, TopicParts, topic
from openshelf.mqtt import MqttLink

log = logging.getLogger(__name__)

Post = Callable[[Callable[[], None]], None]


class PadListener(Protocol):
    def tag_arrived(self, event: TagEvent) -> None: ...

    def tag_departed(self, event: TagEvent) -> None: ...

    def set_status(self, event: SetStatusEvent) -> None: ...

    def card(self, card_id: str) -> None: ...


class PadSubscriber:
    def __init__(self, link: MqttLink, *, site: str, root: str, pad_reader: str | None, card_reader: str | None,
                 post: Post, listener: PadListener) -> None:
        self._link = link
        self._site, self._root = site, root
        self._pad_reader, self._card_reader = pad_reader, card_reader
        self._post = post
        self._listener = listener

    def _event_topic(self, reader: str, name: str) -> str:
        return topic(self._site, Kind.READER, reader, Channel.EVENT, name, root=self._root)

    def subscribe(self) -> None:
        if self._pad_reader:
            self._link.subscribe(self._event_topic(self._pad_reader, "tag_arrived"), TagEvent, self._arrived)
            self._link.subscribe(self._event_topic(self._pad_reader, "tag_departed"), TagEvent, self._departed)
            self._link.subscribe(self._event_topic(self._pad_reader, "set_status"), SetStatusEvent, self._set)
        for reader in {self._pad_reader, self._card_reader} - {None}:
            assert reader is not None
            self._link.subscribe(self._event_topic(reader, "card_presented"), CardPresented, self._card)

    def _arrived(self, parts: TopicParts, event: TagEvent) -> None:
        self._post(lambda: self._listener.tag_arrived(event))

    def _departed(self, parts: TopicParts, event: TagEvent) -> None:
        self._post(lambda: self._listener.tag_departed(event))

    def _set(self, parts: TopicParts, event: SetStatusEvent) -> None:
        self._post(lambda: self._listener.set_status(event))

    def _card(self, parts: TopicParts, event: CardPresented) -> None:
        self._post(lambda: self._listener.card(event.card_id))
