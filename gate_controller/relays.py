"""Writes the relays from the wanted state, remembering what the module last confirmed.

All relay writes go through :meth:`Relays.apply`, under one lock, and the wanted
state is computed *inside* the lock: when an alarm starts while the reconcile
loop is switching off, whichever write runs second uses the newest state, so a
stale "off" can never land after an "on".
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from gate_controller.alarm_pattern import OutputState
from gate_controller.io import GateIo, GateIoError, GateIoLinkDown

log = logging.getLogger(__name__)


class Relays:
    def __init__(self, io: GateIo) -> None:
        self._io = io
        self._lock = asyncio.Lock()
        self._actual: OutputState | None = None  # None: unknown, write at the next chance

    @property
    def actual(self) -> OutputState | None:
        return self._actual

    def forget(self) -> None:
        """The module's relays are unknown again (link lost or back): rewrite them next time."""
        self._actual = None

    async def apply(self, wanted: Callable[[], OutputState], *, force: bool = False) -> str | None:
        """Write ``wanted()`` if it differs from what the module has (always with ``force``).

        Returns None on success, else why the write failed (the state is then unknown).
        """
        async with self._lock:
            state = wanted()
            if not force and state == self._actual:
                return None
            try:
                await self._io.set_outputs(light=state.light, buzzer=state.buzzer)
            except GateIoLinkDown as exc:
                self._actual = None
                return f"I/O module unreachable: {exc}"
            except GateIoError as exc:
                self._actual = None
                log.warning("relay write refused: %s", exc)
                return f"I/O module refused the relay write: {exc}"
            self._actual = state
            return None
