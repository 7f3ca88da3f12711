"""Polls the beams at a fixed rate and feeds the people counter.

The counter is reset whenever the I/O link comes back: what happened while the
module was unreachable is unknown, and a beam broken at that moment must not be
taken for a new break. Link loss itself is logged by the driver (once).

Polls fall on a grid of the poll period (multiples of ``poll_s`` on the loop's
clock, shifted by ``phase_s``), so gates of a process that share a phase poll on
the same loop wake-up. The gate controller spreads its gates over
:data:`PHASE_GROUPS` phases: with fifty gates the loop wakes a hundred times a
second instead of a thousand, and an alarm's relay write never queues behind
more than a fifth of the gates' polls (in the controller and in the module
simulator alike). Between polls it sleeps plainly; a stop is noticed at the next
poll instant.
"""

from __future__ import annotations

import asyncio
import logging
import math
import zlib
from collections.abc import Callable

from gate_controller.counting import CountingEvent, PassageCounter
from gate_controller.io import GateIo, GateIoError, GateIoLinkDown

log = logging.getLogger(__name__)

PHASE_GROUPS = 5


def poll_phase(group: int | str, poll_s: float) -> float:
    """The offset of phase group ``group`` (a number, or a gate id hashed to one) within the poll period."""
    number = zlib.crc32(group.encode()) if isinstance(group, str) else group
    return (number % PHASE_GROUPS) * poll_s / PHASE_GROUPS


class BeamWatch:
    def __init__(
        self,
        io: GateIo,
        counter: PassageCounter,
        *,
        poll_s: float,
        phase_s: float = 0.0,
        on_event: Callable[[CountingEvent], None],
        on_link_back: Callable[[], None],
    ) -> None:
        self._io = io
        self._counter = counter
        self._poll_s = poll_s
        self._phase_s = phase_s
        self._on_event = on_event
        self._on_link_back = on_link_back
        self._reachable = True
        self._last_problem: str | None = None
        self.samples = 0

    async def run(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            await self._poll_once()
            now = loop.time()
            # the next grid instant (never a burst to catch up after a slow poll)
            next_poll = (math.floor((now - self._phase_s) / self._poll_s) + 1) * self._poll_s + self._phase_s
            await asyncio.sleep(next_poll - now)

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
