"""The gate controller: turns alarm commands into light and buzzer, and says what it did.

Every alarm is announced on the gate's ``event/alarm`` topic even when the I/O
module is unreachable (``outputs_ok=False``), so cameras still take evidence and
staff still see the alarm. The relays are re-asserted every second from the
desired state, so a link that comes back never leaves a buzzer stuck on or an
alarm silently dropped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from openshelf.contract import (
    AlarmCommand,
    Channel,
    GateAlarmEvent,
    GateLinkState,
    GateState,
    Kind,
    SilenceCommand,
    TopicParts,
    topic,
)
from openshelf.mqtt import MqttLink, to_loop
from openshelf.site import GateSettings

from gate_controller.io import GateIo, GateIoError

log = logging.getLogger(__name__)

RECONCILE_INTERVAL_S = 1.0


@dataclass
class _Outputs:
    """What the relays should be doing, and until when."""

    alarm_until: float = 0.0
    active_alarms: list[str] = field(default_factory=list)
    sounded: int = 0

    def wanted_on(self, now: float) -> bool:
        return now < self.alarm_until


class GateController:
    def __init__(self, *, io: GateIo, link: MqttLink, settings: GateSettings, site: str, root: str) -> None:
        self._io = io
        self._link = link
        self._settings = settings
        self._site = site
        self._root = root
        self._outputs = _Outputs()
        self._actual_on: bool | None = None
        self._wake = asyncio.Event()
        self._last_state: GateState | None = None

    def _topic(self, channel: Channel, name: str | None = None) -> str:
        return topic(self._site, Kind.GATE, self._settings.id, channel, name, root=self._root)

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        self._link.subscribe(self._topic(Channel.CMD, "alarm"), AlarmCommand, to_loop(loop, self.on_alarm))
        self._link.subscribe(self._topic(Channel.CMD, "silence"), SilenceCommand, to_loop(loop, self.on_silence))

    # ------------------------------------------------------------------ commands

    def on_alarm(self, parts: TopicParts, command: AlarmCommand) -> None:
        asyncio.get_running_loop().create_task(self.sound(command.alarm_id, command.items, command.duration_ms))

    def on_silence(self, parts: TopicParts, command: SilenceCommand) -> None:
        if command.alarm_id is None or command.alarm_id in self._outputs.active_alarms:
            log.info("alarm silenced by staff (%s)", command.alarm_id or "all")
            self._outputs.alarm_until = 0.0
            self._outputs.active_alarms.clear()
            self._wake.set()

    async def sound(self, alarm_id: str, items: list, duration_ms: int | None, *, decided_locally: bool = False) -> None:
        duration_s = (duration_ms or self._settings.alarm_duration_ms) / 1000
        self._outputs.alarm_until = max(self._outputs.alarm_until, time.monotonic() + duration_s)
        self._outputs.active_alarms.append(alarm_id)
        self._outputs.sounded += 1
        problem = await self._apply(True)
        self._link.publish(
            self._topic(Channel.EVENT, "alarm"),
            GateAlarmEvent(gate_id=self._settings.id, alarm_id=alarm_id, items=items,
                           decided_locally=decided_locally, outputs_ok=problem is None, problem=problem),
        )
        self._wake.set()

    # ------------------------------------------------------------------ outputs

    async def _apply(self, on: bool) -> str | None:
        try:
            await self._io.set_outputs(light=on, buzzer=on)
        except GateIoError as exc:
            self._actual_on = None
            return f"I/O module unreachable: {exc}"
        self._actual_on = on
        return None

    async def run(self, stop: asyncio.Event) -> None:
        """Switch off when alarms end, re-assert outputs, publish state, until ``stop``."""
        try:
            await self._io.connect()
        except GateIoError as exc:
            log.warning("I/O module not reachable at start (%s); will keep trying", exc)
        while not stop.is_set():
            now = time.monotonic()
            wanted = self._outputs.wanted_on(now)
            if not wanted and self._outputs.active_alarms:
                self._outputs.active_alarms.clear()
            if self._actual_on is not wanted:
                await self._apply(wanted)
            self._publish_state(wanted)
            timeout = RECONCILE_INTERVAL_S
            if wanted:
                timeout = min(timeout, max(0.0, self._outputs.alarm_until - now))
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wait_any(stop), timeout=timeout)
            except asyncio.TimeoutError:
                self._actual_on = None if not self._io.link_up else self._actual_on
        await self._apply(False)
        await self._io.close()

    async def _wait_any(self, stop: asyncio.Event) -> None:
        waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())]
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    def _publish_state(self, wanted: bool) -> None:
        state = GateState(
            io_link=GateLinkState.UP if self._io.link_up else GateLinkState.DOWN,
            light=bool(self._actual_on), buzzer=bool(self._actual_on),
            alarm_active=wanted, alarms_sounded=self._outputs.sounded,
        )
        previous = self._last_state
        if previous is not None and previous.model_dump(exclude={"event_id", "sent_at"}) == \
                state.model_dump(exclude={"event_id", "sent_at"}):
            return
        self._last_state = state
        self._link.publish(self._topic(Channel.STATE), state, retain=True)
