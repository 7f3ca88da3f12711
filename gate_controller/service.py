"""The gate controller: alarms (from the backend, or decided locally), relays, people counting.

Every read of a tag at this gate waits up to ``decision_deadline_ms`` for the
backend's answer (an ``AlarmCommand`` naming it, or a ``PassNotice``). Without an
answer in time the gate decides from what the reader saw (AFI, EAS, decode status,
:mod:`gate_controller.local_decision`), groups such alarms per patron and announces
them with ``decided_locally=True``. Silence is never "all clear": a dead backend
or broker never leaves a secured item unannounced at the gate, and never blocks
the exit either, because the gate has no barrier to hold.

Every alarm is announced on ``event/alarm`` even when the I/O module is
unreachable (``outputs_ok=False``), so cameras still take evidence and staff still
see it. The relays follow the alarm pattern's change points and are re-asserted
from the wanted state after every link outage, so a link that comes back never
leaves a buzzer on or an alarm silently dropped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from datetime import datetime, timedelta
from typing import Any

from openshelf.contract import (
    AlarmCommand,
    AlarmItem,
    AlarmReason,
    BeamFaultEvent,
    Channel,
    GateAlarmEvent,
    GateLinkState,
    GateState,
    Kind,
    PassageDirection,
    PassageEvent,
    PassNotice,
    SilenceCommand,
    TagEvent,
    TopicParts,
    topic,
    utcnow,
)
from openshelf.mqtt import MqttLink
from openshelf.site import GateSettings

from gate_controller.alarm_grouping import Joined, LocalAlarm, LocalAlarmGroups
from gate_controller.alarm_pattern import AlarmPattern, OutputState, steady_alarm
from gate_controller.alarm_player import AlarmPlayer
from gate_controller.beam_watch import BeamWatch, poll_phase
from gate_controller.counting import (
    BeamRecovered, BeamStuck, CountingConfig, CountingEvent, NoPassage, Passage, PassageCounter,
)
from gate_controller.inbox import LoopInbox
from gate_controller.io import GateIo, GateIoError
from gate_controller.local_decision import LocalOutcome, decide_locally
from gate_controller.pending_reads import PendingReads
from gate_controller.relays import Relays

log = logging.getLogger(__name__)

RECONCILE_INTERVAL_S = 1.0
MIN_WAIT_S = 0.0005  # never spin on a change point that float rounding puts a hair in the future


class GateController:
    def __init__(
        self,
        *,
        io: GateIo,
        link: MqttLink,
        settings: GateSettings,
        site: str,
        root: str,
        pattern: AlarmPattern | None = None,
        counting: CountingConfig | None = None,
        reader_ids: list[str] | None = None,
        beam_phase: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._io = io
        self._reader_ids = reader_ids
        self._beam_phase = beam_phase  # which of the process's poll phase groups (None: from the gate id)
        self._link = link
        self._settings = settings
        self._site = site
        self._root = root
        self._clock = clock
        self._player = AlarmPlayer(pattern or steady_alarm(settings.alarm_duration_ms))
        self._relays = Relays(io)
        self._pending = PendingReads(settings.decision_deadline_ms / 1000)
        self._groups = LocalAlarmGroups(settings.group_window_ms / 1000,
                                        repeat_hold_s=self._player.pattern.duration_ms / 1000)
        self._counter = PassageCounter(counting)
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._deadline_timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._last_state: GateState | None = None
        self._beams: BeamWatch | None = None
        self._backend_silent = False
        self.alarms_sounded = 0
        self.entries = 0
        self.exits = 0

    @property
    def gate_id(self) -> str:
        return self._settings.id

    @property
    def beam_samples(self) -> int:
        """How many beam samples were read so far (0 while the module was never reached)."""
        return self._beams.samples if self._beams is not None else 0

    def _topic(self, channel: Channel, name: str | None = None) -> str:
        return topic(self._site, Kind.GATE, self.gate_id, channel, name, root=self._root)

    def attach(self, loop: asyncio.AbstractEventLoop, inbox: LoopInbox | None = None) -> None:
        """Subscribe to this gate's commands and its readers' tag arrivals (every reader's if not named).

        Handlers run on ``loop``, handed over through ``inbox`` (one per loop, shared by every gate
        in the process, so all their messages keep one order and share the wake-ups).
        """
        self._loop = loop
        inbox = inbox or LoopInbox(loop)
        readers = self._reader_ids if self._reader_ids is not None else ["+"]
        for reader in readers:
            reads = topic(self._site, Kind.READER, reader, Channel.EVENT, "tag_arrived", root=self._root,
                          wildcards=True)
            self._link.subscribe(reads, TagEvent, self._forward_own_reads(inbox))
        # alarms and silences go before queued reads and pass notices (an answer that overtakes its
        # read is remembered by PendingReads), and keep their order among themselves
        self._link.subscribe(self._topic(Channel.CMD, "alarm"), AlarmCommand, inbox.wrap(self.on_alarm, urgent=True))
        self._link.subscribe(self._topic(Channel.CMD, "pass"), PassNotice, inbox.wrap(self.on_pass))
        self._link.subscribe(self._topic(Channel.CMD, "silence"), SilenceCommand,
                             inbox.wrap(self.on_silence, urgent=True))

    def _forward_own_reads(self, inbox: LoopInbox) -> Callable[[TopicParts, TagEvent], None]:
        gate_id = self.gate_id
        on_tag_arrived = self.on_tag_arrived

        def forward(parts: TopicParts, event: TagEvent) -> None:
            if event.gate_id == gate_id:  # filtered before the hand-over: other gates' reads cost nothing more
                inbox.put(on_tag_arrived, parts, event)

        return forward

    # ------------------------------------------------------------------ reads and the deadline

    def on_tag_arrived(self, parts: TopicParts, event: TagEvent) -> None:
        if self._pending.add(event, self._clock()) is not None:
            self._schedule_deadline()

    def _schedule_deadline(self) -> None:
        deadline = self._pending.next_deadline()
        if deadline is None or self._deadline_timer is not None:
            return  # a running timer is for an earlier (or the same) deadline and reschedules when it fires
        loop = self._loop or asyncio.get_running_loop()
        self._deadline_timer = loop.call_later(max(0.0, deadline - self._clock()), self._on_deadline)

    def _on_deadline(self) -> None:
        self._deadline_timer = None
        now = self._clock()
        for read in self._pending.due(now):
            try:
                self._decide_locally(read.event, now)
            except Exception:  # noqa: BLE001 - one odd read must not stop the deadlines of the others
                log.exception("gate %s: local decision failed for read %s", self.gate_id, read.event.event_id)
        self._schedule_deadline()

    def _decide_locally(self, event: TagEvent, now: float) -> None:
        if not self._backend_silent:
            self._backend_silent = True
            log.warning("gate %s: the backend did not answer within %d ms; deciding locally until it does",
                        self.gate_id, self._settings.decision_deadline_ms)
        decision = decide_locally(event, self._settings.local_decision)
        if decision.outcome is LocalOutcome.ALARM and decision.reason is not None:
            self._alarm_locally(event, decision.reason, decision.explanation, now)
        elif decision.outcome is LocalOutcome.LOG:
            log.info("gate %s: tag %s item %s: %s, logged only (policy unknown_tag: log)",
                     self.gate_id, event.uid, event.item_id, decision.explanation)
        else:
            log.debug("gate %s: tag %s passes (decided locally: %s)", self.gate_id, event.uid, decision.explanation)

    def _alarm_locally(self, event: TagEvent, reason: AlarmReason, explanation: str, now: float) -> None:
        item = AlarmItem(uid=event.uid, item_id=event.item_id, reason=reason)
        joined, alarm = self._groups.add(item, event.event_id, now)
        if joined is Joined.REPEAT or alarm is None:
            log.info("gate %s: tag %s read again while its local alarm lasts", self.gate_id, event.uid)
            return
        log.warning("gate %s: alarm %s decided locally: tag %s item %s (%s)", self.gate_id, alarm.alarm_id,
                    event.uid, event.item_id, explanation)
        if joined is Joined.NEW:
            self._spawn(self._sound_local(alarm))

    def _backend_answered(self) -> None:
        if self._backend_silent:
            self._backend_silent = False
            log.info("gate %s: the backend answers in time again", self.gate_id)

    # ------------------------------------------------------------------ commands

    def on_alarm(self, parts: TopicParts, command: AlarmCommand) -> None:
        if self._answer_reads(command):
            log.info("gate %s: backend alarm %s is for reads already alarmed locally; not sounding twice",
                     self.gate_id, command.alarm_id)
            self._player.also_known_as(command.alarm_id, self._clock())
            return
        self._spawn(self.sound(command.alarm_id, command.items, command.duration_ms))

    def _answer_reads(self, command: AlarmCommand) -> bool:
        """Stop waiting for the reads the command answers; True if all of them already alarmed locally."""
        now = self._clock()
        if command.read_event_ids:
            if self._pending.resolve(command.read_event_ids):
                self._backend_answered()
            local = [self._groups.alarm_of_read(read_id) for read_id in command.read_event_ids]
        else:  # a backend that names no reads: the tags it alarms for answer their reads
            uids = [item.uid for item in command.items]
            if self._pending.resolve((), uids):
                self._backend_answered()
            local = [self._groups.held(uid, now) for uid in uids]
        return all(alarm_id is not None for alarm_id in local)

    def on_pass(self, parts: TopicParts, notice: PassNotice) -> None:
        if self._pending.resolve([notice.read_event_id]):
            self._backend_answered()
            return
        alarm_id = self._groups.alarm_of_read(notice.read_event_id)
        if alarm_id is not None:
            log.info("gate %s: backend passed tag %s (%s) after the gate alarmed locally (alarm %s); "
                     "the alarm stands", self.gate_id, notice.uid, notice.reason, alarm_id)

    def on_silence(self, parts: TopicParts, command: SilenceCommand) -> None:
        if self._player.silence(command.alarm_id, self._clock()):
            log.info("gate %s: alarm silenced by staff (%s)", self.gate_id, command.alarm_id or "all")
            self._wake.set()

    # ------------------------------------------------------------------ sounding

    async def sound(self, alarm_id: str, items: list[AlarmItem], duration_ms: int | None, *,
                    decided_locally: bool = False) -> None:
        """Start the alarm pattern now and announce the alarm (the backend's path: no waiting)."""
        problem = await self._start_pattern(alarm_id, duration_ms)
        self._publish_alarm(alarm_id, items, decided_locally=decided_locally, problem=problem, started_at=utcnow())

    async def _sound_local(self, alarm: LocalAlarm) -> None:
        """Sound at once; announce when the grouping window closes, listing every item it gathered."""
        started_at = utcnow()
        problem = await self._start_pattern(alarm.alarm_id, None)
        try:
            await asyncio.sleep(max(0.0, alarm.closes_at - self._clock()))
        finally:  # on shutdown too: an alarm that sounded is always announced
            self._groups.close(alarm.alarm_id)
            self._publish_alarm(alarm.alarm_id, list(alarm.items), decided_locally=True, problem=problem,
                                started_at=started_at)

    async def _start_pattern(self, alarm_id: str, duration_ms: int | None) -> str | None:
        self._player.start(alarm_id, self._clock(), duration_ms)
        self.alarms_sounded += 1
        # forced: every alarm writes the relays even if they are on already (re-assertion, and one
        # "on" write per alarm for whoever watches the module)
        problem = await self._relays.apply(self._wanted_now, force=True)
        self._wake.set()
        return problem

    def _publish_alarm(self, alarm_id: str, items: list[AlarmItem], *, decided_locally: bool,
                       problem: str | None, started_at: datetime) -> None:
        self._link.publish(
            self._topic(Channel.EVENT, "alarm"),
            GateAlarmEvent(gate_id=self.gate_id, alarm_id=alarm_id, items=items, decided_locally=decided_locally,
                           outputs_ok=problem is None, problem=problem, started_at=started_at),
        )

    def _wanted_now(self) -> OutputState:
        return self._player.wanted(self._clock())

    # ------------------------------------------------------------------ people counting

    def _on_counting(self, event: CountingEvent) -> None:
        if isinstance(event, Passage):
            direction = PassageDirection(event.direction)
            if direction is PassageDirection.IN:
                self.entries += 1
            else:
                self.exits += 1
            self._link.publish(self._topic(Channel.EVENT, "passage"),
                               PassageEvent(gate_id=self.gate_id, direction=direction, at=self._wall(event.at)))
            self._publish_state()
        elif isinstance(event, NoPassage):
            log.debug("gate %s: beams broken, nobody passed (%s)", self.gate_id, event.reason)
        elif isinstance(event, BeamStuck):
            log.warning("gate %s: %s broken for %.0f s: blocked or faulty", self.gate_id, event.beam,
                        event.at - event.since)
            self._link.publish(self._topic(Channel.EVENT, "beam_fault"),
                               BeamFaultEvent(gate_id=self.gate_id, beam=event.beam, stuck=True,
                                              since=self._wall(event.since)))
        elif isinstance(event, BeamRecovered):
            log.info("gate %s: %s clear again after %.0f s", self.gate_id, event.beam, event.stuck_for)
            self._link.publish(self._topic(Channel.EVENT, "beam_fault"),
                               BeamFaultEvent(gate_id=self.gate_id, beam=event.beam, stuck=False,
                                              since=self._wall(event.at)))

    def _wall(self, monotonic_at: float) -> datetime:
        return utcnow() - timedelta(seconds=max(0.0, self._clock() - monotonic_at))

    def _on_link_back(self) -> None:
        log.info("gate %s: I/O link back: relays re-asserted, people counter restarted", self.gate_id)
        self._relays.forget()
        self._wake.set()

    # ------------------------------------------------------------------ the loop

    async def run(self, stop: asyncio.Event) -> None:
        """Drive the relays, poll the beams and publish state until ``stop``; then switch off."""
        self._loop = asyncio.get_running_loop()
        try:
            await self._io.connect()
        except GateIoError as exc:
            log.warning("I/O module not reachable at start (%s); will keep trying", exc)
        watch_stop = asyncio.Event()
        watch: asyncio.Task[None] | None = None
        if self._settings.count_people:
            poll_s = self._settings.beam_poll_ms / 1000
            phase_s = poll_phase(self.gate_id if self._beam_phase is None else self._beam_phase, poll_s)
            self._beams = BeamWatch(self._io, self._counter, poll_s=poll_s, phase_s=phase_s,
                                    on_event=self._on_counting, on_link_back=self._on_link_back)
            watch = self._loop.create_task(self._beams.run(watch_stop))
            watch.add_done_callback(self._task_done)
        stop_watch = self._loop.create_task(self._wake_on_stop(stop))
        try:
            await self._drive_outputs(stop)
        finally:
            stop_watch.cancel()
            watch_stop.set()
            if watch is not None:  # let the poll in flight finish: a cancelled Modbus request confuses the link
                await asyncio.wait([watch], timeout=5)
                watch.cancel()
            await self._shut_down()

    async def _drive_outputs(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self._wake.clear()
            await self._relays.apply(self._wanted_now)
            self._publish_state()
            now = self._clock()
            change = self._player.next_change(now)
            timeout = RECONCILE_INTERVAL_S if change is None else min(RECONCILE_INTERVAL_S,
                                                                      max(MIN_WAIT_S, change - now))
            if not await self._woken(stop, timeout) and not self._io.link_up:
                self._relays.forget()  # keep trying: the write also reconnects (with the driver's backoff)

    async def _woken(self, stop: asyncio.Event, timeout: float) -> bool:
        """Wait for a wake-up (or ``stop``, which :meth:`_wake_on_stop` turns into one) at most ``timeout``.

        No task per wait: the loop wakes at every alarm and every change point of every gate's pattern.
        """
        if stop.is_set():
            return True
        try:
            async with asyncio.timeout(timeout):
                await self._wake.wait()
        except TimeoutError:
            return False
        return True

    async def _wake_on_stop(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self._wake.set()

    async def _shut_down(self) -> None:
        if self._deadline_timer is not None:
            self._deadline_timer.cancel()
            self._deadline_timer = None
        if len(self._pending):
            log.info("gate %s: stopping with %d read(s) still undecided", self.gate_id, len(self._pending))
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._player.silence(None, self._clock())
        problem = await self._relays.apply(self._wanted_now, force=True)
        if problem is not None:
            log.warning("gate %s: could not switch the relays off at stop: %s", self.gate_id, problem)
        await self._io.close()

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        loop = self._loop or asyncio.get_running_loop()
        task = loop.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("gate %s: background task failed", self.gate_id, exc_info=task.exception())

    def _publish_state(self) -> None:
        actual = self._relays.actual
        state = GateState(
            io_link=GateLinkState.UP if self._io.link_up else GateLinkState.DOWN,
            light=bool(actual and actual.light), buzzer=bool(actual and actual.buzzer),
            alarm_active=self._player.active(self._clock()), alarms_sounded=self.alarms_sounded,
            entries=self.entries, exits=self.exits,
        )
        previous = self._last_state
        if previous is not None and previous.model_dump(exclude={"event_id", "sent_at"}) == \
                state.model_dump(exclude={"event_id", "sent_at"}):
            return
        self._last_state = state
        self._link.publish(self._topic(Channel.STATE), state, retain=True)

