"""The kiosk's state for the dashboard: idle / in session / offline / out of paper, and the queue length.

Published retained on the kiosk's ``state`` topic whenever it changes, and again
every ``heartbeat_s`` so the dashboard can tell a silent kiosk from a quiet one
(the broker's Last Will on ``status`` covers a kiosk that died).

One mode only, so the most urgent wins: offline, then out of paper, then in
session, then idle.
"""

from __future__ import annotations

import logging
import time
from typing import Callable, Protocol

from openshelf.contract import Channel, Kind, KioskMode, KioskState, Message, topic

from kiosk.model import KioskModel
from kiosk.printer import PaperStatus
from kiosk.view import Screen

log = logging.getLogger(__name__)

HEARTBEAT_S = 30.0


class Publisher(Protocol):
    def publish(self, topic_name: str, message: Message, *, retain: bool = False) -> object: ...


def mode_of(*, offline: bool, out_of_paper: bool, in_session: bool) -> KioskMode:
    if offline:
        return KioskMode.OFFLINE
    if out_of_paper:
        return KioskMode.OUT_OF_PAPER
    return KioskMode.IN_SESSION if in_session else KioskMode.IDLE


class KioskStatePublisher:
    def __init__(self, link: Publisher, *, site: str, root: str, kiosk_id: str, heartbeat_s: float = HEARTBEAT_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._link = link
        self._topic = topic(site, Kind.KIOSK, kiosk_id, Channel.STATE, root=root)
        self._heartbeat_s = heartbeat_s
        self._clock = clock
        self._last: tuple[KioskMode, int, str] | None = None
        self._last_sent = 0.0

    @property
    def current(self) -> tuple[KioskMode, int, str] | None:
        return self._last

    def update(self, model: KioskModel, language: str) -> None:
        state = (mode_of(offline=model.offline, out_of_paper=model.paper is PaperStatus.OUT,
                         in_session=model.screen is not Screen.START), model.queued, language)
        if state != self._last:
            self._last = state
            self._send()

    def heartbeat(self) -> None:
        if self._last is not None and self._clock() - self._last_sent >= self._heartbeat_s:
            self._send()

    def _send(self) -> None:
        assert self._last is not None
        mode, queued, language = self._last
        self._last_sent = self._clock()
        self._link.publish(self._topic, KioskState(mode=mode, queued_transactions=queued, language=language),
                           retain=True)
