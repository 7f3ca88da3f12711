"""Polls the beams at a fixed rate and feeds the people counter.

The counter is reset whenever the I/O link comes back: what happened while the
module was unreachable is unknown, and a beam broken at that moment must not be
taken for a new break. Link loss itself is logged by the driver (once).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from gate_controller.counting import CountingEvent, PassageCounter
from gate_controller.io import GateIo, GateIoError, GateIoLinkDown

log = logging.getLogger(__name__)


class BeamWatch:
    def __init__(
        self,
        io: GateIo,
        counter: PassageCounter,
        *,
        poll_s: float,
        on_event: Callable[[CountingEvent], None],
        on_link_back: Callable[[], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._io = io
        self._counter = counter
        self._poll_s = poll_s
        self._on_event = on_event
        self._on_link_back = on_link_back
        self._clock = clock
        self._reachable = True
        self._last_problem: str | None = None
        self.samples = 0

    async def run(self, stop: asyncio.Event) -> None:
        next_poll = self._clock()
        while not stop.is_set():
            await self._poll_once()
            next_poll += self._poll_s
            now = self._clock()
            if next_poll < now:  # fell behind (slow link): keep the rate, do not burst to catch up
                next_poll = now
            try:
                await asyncio.wait_for(stop.wait(), timeout=next_poll - now)
            except TimeoutError:
                pass

    async def _poll_once(self) -> None:
        try:
            sample = await self._io.read_beams()
        except GateIoLinkDown:
            self._reachable = False
            return
        except GateIoError as exc:
            if str(exc) != self._last_problem:  # e.g. a wrong profile: say it once, not 20 times a second
                self._last_problem = str(exc)
                log.error("cannot read the beams: %s", exc)
            return
        self._last_problem = None
        if not self._reachable:
            self._reachable = True
            self._counter.reset()
            self._on_link_back()
        self.samples += 1
        for event in self._counter.feed(sample):
            self._on_event(event)
