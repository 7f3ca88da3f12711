"""The reader service: poll a reader, publish tag arrivals and departures.

A tag seen twenty times a second is one arrival; it departs when it has not
been seen for ``departed_after_ms``. A tag whose memory cannot be decoded is
still published (with the reason), because a gate must be able to alarm on it.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable

from openshelf.contract import (
    Channel,
    Kind,
    ReaderLinkState,
    ReaderState,
    TagDecodeStatus,
    TagEvent,
    new_event_id,
    topic,
    utcnow,
)
from openshelf.mqtt import MqttLink
from openshelf.site import ReaderSettings

from rfid.drivers.base import InventoryTag, ReaderDriver, ReaderError
from rfid.tagdata import TagData, TagDataError, decode
from rfid.tagdata.model import DecodeStatus

log = logging.getLogger(__name__)

MAX_BLOCKS_READ = 64
BLOCKS_PER_READ = 16

_DECODE_STATUS = {
    DecodeStatus.OK: TagDecodeStatus.DECODED,
    DecodeStatus.BLANK: TagDecodeStatus.BLANK,
    DecodeStatus.UNKNOWN: TagDecodeStatus.UNKNOWN_MODEL,
    DecodeStatus.UNSUPPORTED: TagDecodeStatus.UNKNOWN_MODEL,
    DecodeStatus.CRC_ERROR: TagDecodeStatus.CORRUPT,
    DecodeStatus.CORRUPT: TagDecodeStatus.CORRUPT,
}


@dataclass
class _Present:
    event: TagEvent
    last_seen: float


def tag_event_from(reader: ReaderSettings, uid: str, afi: int | None, data: TagData | None,
                   problem: str | None) -> TagEvent:
    """The event for one tag, from whatever could be learned about it."""
    if data is None:
        return TagEvent(reader_id=reader.id, gate_id=reader.gate, uid=uid, afi=afi,
                        decode=TagDecodeStatus.UNREAD if problem is None else TagDecodeStatus.CORRUPT,
                        problem=problem)
    status = _DECODE_STATUS[data.status]
    return TagEvent(
        reader_id=reader.id, gate_id=reader.gate, uid=uid, afi=afi, decode=status,
        item_id=(data.primary_item_id or None) if status is TagDecodeStatus.DECODED else None, part_number=data.part_number,
        parts_in_set=data.parts_in_set, owner_isil=data.owner_isil, problem=data.problem or problem,
    )


class ReaderService:
    def __init__(
        self,
        *,
        driver: ReaderDriver,
        link: MqttLink,
        settings: ReaderSettings,
        site: str,
        root: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._driver = driver
        self._link = link
        self._settings = settings
        self._site = site
        self._root = root
        self._clock = clock
        self._present: dict[str, _Present] = {}
        self._link_state: ReaderLinkState | None = None
        self._polls = 0
        self._published_state: tuple | None = None

    def _topic(self, channel: Channel, name: str | None = None) -> str:
        return topic(self._site, Kind.READER, self._settings.id, channel, name, root=self._root)

    # ------------------------------------------------------------------ loop

    def run(self, stop: threading.Event) -> None:
        interval = self._settings.poll_interval_ms / 1000
        while not stop.is_set():
            started = self._clock()
            self.poll_once()
            stop.wait(max(0.0, interval - (self._clock() - started)))

    def poll_once(self) -> None:
        try:
            seen = self._driver.inventory()
        except ReaderError as exc:
            self._set_link(ReaderLinkState.DOWN, str(exc))
            return
        self._set_link(ReaderLinkState.UP, None)
        self._polls += 1
        now = self._clock()
        for tag in seen:
            present = self._present.get(tag.uid_hex)
            if present is not None:
                present.last_seen = now
                continue
            event = self._identify(tag)
            if event is None:
                continue  # it left the field while being read; the next poll tries again
            self._present[tag.uid_hex] = _Present(event, now)
            self._link.publish(self._topic(Channel.EVENT, "tag_arrived"), event)
        self._depart_missing(now)
        self._publish_state()

    def _depart_missing(self, now: float) -> None:
        limit = self._settings.departed_after_ms / 1000
        for uid, present in list(self._present.items()):
            if now - present.last_seen >= limit:
                del self._present[uid]
                departed = present.event.model_copy(update={"event_id": new_event_id(), "sent_at": utcnow()})
                self._link.publish(self._topic(Channel.EVENT, "tag_departed"), departed)

    # ------------------------------------------------------------------ one tag

    def _identify(self, tag: InventoryTag) -> TagEvent | None:
        try:
            info = self._driver.system_info(tag.uid)
            count = min(info.block_count, MAX_BLOCKS_READ)
            memory = b"".join(
                self._driver.read_blocks(tag.uid, first, min(BLOCKS_PER_READ, count - first))
                for first in range(0, count, BLOCKS_PER_READ)
            )
        except ReaderError as exc:
            log.debug("could not read tag %s: %s", tag.uid_hex, exc)
            return None
        try:
            data = decode(memory, info.dsfid)
        except TagDataError as exc:
            log.info("tag %s on %s is corrupt: %s", tag.uid_hex, self._settings.id, exc)
            return tag_event_from(self._settings, tag.uid_hex, info.afi, None, str(exc))
        return tag_event_from(self._settings, tag.uid_hex, info.afi, data, None)

    # ------------------------------------------------------------------ state

    def _set_link(self, state: ReaderLinkState, reason: str | None) -> None:
        if state is self._link_state:
            return
        if state is ReaderLinkState.DOWN:
            log.warning("reader %s unreachable: %s", self._settings.id, reason)
        elif self._link_state is ReaderLinkState.DOWN:
            log.info("reader %s reachable again", self._settings.id)
        self._link_state = state
        self._publish_state()

    def _publish_state(self) -> None:
        key = (self._link_state, len(self._present))
        if key == self._published_state:
            return
        self._published_state = key
        self._link.publish(
            self._topic(Channel.STATE),
            ReaderState(link=self._link_state or ReaderLinkState.DOWN, tags_in_field=len(self._present),
                        polls=self._polls),
            retain=True,
        )
