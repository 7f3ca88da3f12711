"""The gate path: tag read → decision → answer to the gate, in the link's handler, without waiting on anything.

Every gate read gets an answer at once: an ``AlarmCommand`` naming the read, or a
``PassNotice`` (on loan, logged unknown tag, or a duplicate of an alarm that is
still sounding), because a gate that hears nothing decides locally. Everything
slow (the database, the dashboards) happens afterwards, elsewhere: the recorder
only queues. The handlers here only touch memory: the gate view, a small
debounce table, counters.

The backend runs this service in the gate process (backend.gate_process), on an
event loop that drives the link (``subscribe`` + ``publish_state`` from the
loop); ``start``/``stop`` run it on the link's network thread with a state
thread of its own.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from datetime import datetime, timedelta
from typing import Callable

from backend.gate_records import AlarmRecord, AlarmRecorder, DeviceSighting
from backend.gate_decision import GateOutcome, GatePolicy, GateRead, decide_gate
from backend.gate_view import GateView
from openshelf.contract import (
    AlarmCommand,
    AlarmItem,
    BackendState,
    CameraState,
    Channel,
    DeviceStatus,
    GateAlarmEvent,
    GateState,
    Kind,
    KioskState,
    Message,
    PassNotice,
    ReaderState,
    SilenceCommand,
    TagEvent,
    TopicError,
    TopicParts,
    new_event_id,
    topic,
    utcnow,
)
from openshelf.mqtt import MqttLink
from openshelf.site import GatePolicySettings

log = logging.getLogger(__name__)

COMMAND_LIFETIME = timedelta(seconds=5)
SUPPRESSED_REASON = "duplicate_within_debounce"
_WILD = "+"
_ISSUED_MEMORY = 4096
_DEBOUNCE_PRUNE_AT = 4096
_STATE_MODELS: dict[Kind, type[Message]] = {
    Kind.GATE: GateState,
    Kind.READER: ReaderState,
    Kind.CAMERA: CameraState,
    Kind.KIOSK: KioskState,
}


def policy_from_settings(settings: GatePolicySettings) -> GatePolicy:
    return GatePolicy(
        debounce_s=settings.debounce_s,
        unknown_tag=settings.unknown_tag,
        in_library_only_alarms=settings.in_library_only_alarms,
    )


class GateService:
    def __init__(
        self,
        link: MqttLink,
        view: GateView,
        policy: GatePolicy,
        site_id: str,
        root: str,
        backend_id: str,
        alarm_recorder: AlarmRecorder,
        alarm_duration_ms: Callable[[str], int | None],
        *,
        clock: Callable[[], datetime] = utcnow,
        state_interval_s: float = 5.0,
    ) -> None:
        self._link = link
        self._view = view
        self._policy = policy
        self._site = site_id
        self._root = root
        self._backend_id = backend_id
        self._recorder = alarm_recorder
        self._duration_ms = alarm_duration_ms
        self._clock = clock
        self._state_interval_s = state_interval_s
        self._last_alarm: dict[tuple[str, str], datetime] = {}
        self._issued: OrderedDict[str, None] = OrderedDict()
        self._issued_lock = threading.Lock()
        self._command_topics: dict[str, tuple[str, str]] = {}
        self._stop = threading.Event()
        self._state_thread: threading.Thread | None = None
        self.gate_reads = 0
        self.alarms = 0
        self.suppressed = 0

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Subscribe and start publishing BackendState on a thread; the link may connect later."""
        if self._state_thread is not None:
            raise RuntimeError("gate service already started")
        self.subscribe()
        self._stop.clear()
        self._state_thread = threading.Thread(target=self._publish_state_loop, name="backend-state", daemon=True)
        self._state_thread.start()

    def subscribe(self) -> None:
        """Everything the gate path listens to (before the link connects: subscriptions are replayed)."""
        self._link.subscribe(self._filter(Kind.READER, Channel.EVENT, "tag_arrived"), TagEvent, self._on_tag_arrived)
        self._link.subscribe(self._filter(Kind.GATE, Channel.EVENT, "alarm"), GateAlarmEvent, self._on_gate_alarm)
        self._link.subscribe(self._filter(_WILD, Channel.STATUS), DeviceStatus, self._on_status)
        for kind, model in _STATE_MODELS.items():
            self._link.subscribe(self._filter(kind, Channel.STATE), model, self._on_state)

    def publish_state(self) -> None:
        """Publish BackendState (retained) when connected; every ``state_interval_s``."""
        if self._link.connected.is_set():
            state = BackendState(gate_reads=self.gate_reads, alarms=self.alarms,
                                 malformed_messages=self.malformed_messages)
            self._link.publish(self._state_topic(), state, retain=True)

    @property
    def state_interval_s(self) -> float:
        return self._state_interval_s

    def stop(self) -> None:
        self._stop.set()
        if self._state_thread is not None:
            self._state_thread.join(timeout=5)
            self._state_thread = None

    @property
    def malformed_messages(self) -> int:
        return self._link.stats.malformed

    @property
    def connected(self) -> bool:
        return self._link.connected.is_set()

    # ------------------------------------------------------------------ commands from staff

    def silence(self, gate_id: str, alarm_id: str | None) -> None:
        command = SilenceCommand(alarm_id=alarm_id, expires_at=self._clock() + COMMAND_LIFETIME)
        self._link.publish(topic(self._site, Kind.GATE, gate_id, Channel.CMD, "silence", root=self._root), command)

    # ------------------------------------------------------------------ the hot path

    def _on_tag_arrived(self, parts: TopicParts, event: TagEvent) -> None:
        gate_id = event.gate_id
        if gate_id is None:
            log.debug("tag %s at reader %s belongs to no gate; ignored", event.uid, event.reader_id)
            return
        try:
            alarm_topic = self._gate_topics(gate_id)[0]
        except TopicError:
            log.warning("tag %s at reader %s names an impossible gate id %r; ignored", event.uid, event.reader_id,
                        gate_id)
            return
        self.gate_reads += 1
        now = self._clock()
        key = (gate_id, event.uid)
        decision = decide_gate(
            GateRead(gate_id, event.reader_id, event.uid, event.item_id, event.decode),
            self._view.lookup(event.uid, event.item_id),
            self._policy,
            self._last_alarm.get(key),
            now,
        )
        if decision.outcome is not GateOutcome.ALARM:
            self._answer_pass(gate_id, event, decision.outcome, decision.reason.value, now)
            return
        self._last_alarm[key] = now
        alarm_id = new_event_id()  # unique is enough; uuid4 would make a system call per alarm
        # Built without re-validation: every field comes from a validated TagEvent or from us.
        item = AlarmItem.model_construct(uid=event.uid, item_id=decision.item_id, reason=decision.reason)
        command = AlarmCommand.model_construct(
            version=1,
            event_id=new_event_id(),
            sent_at=now,
            expires_at=now + COMMAND_LIFETIME,
            alarm_id=alarm_id,
            items=[item],
            duration_ms=self._duration_ms(gate_id),
            read_event_ids=[event.event_id],
        )
        self._remember_issued(alarm_id)
        self._link.publish(alarm_topic, command)
        self.alarms += 1
        self._recorder.record_alarm(AlarmRecord(alarm_id, gate_id, now, False, (item,)))
        # DEBUG: the alarm is in the database and on the dashboard; a write to stderr per alarm costs the path.
        log.debug("alarm %s at gate %s: tag %s item %s (%s)", alarm_id, gate_id, event.uid, decision.item_id,
                  decision.reason.value)
        if len(self._last_alarm) > _DEBOUNCE_PRUNE_AT:
            self._prune_debounce(now)

    def _answer_pass(self, gate_id: str, event: TagEvent, outcome: GateOutcome, reason: str, now: datetime) -> None:
        """The gate waits for an answer to every read; silence would make it decide locally."""
        if outcome is GateOutcome.SUPPRESSED:
            self.suppressed += 1
            reason = SUPPRESSED_REASON
        notice = PassNotice.model_construct(
            version=1,
            event_id=new_event_id(),
            sent_at=now,
            expires_at=now + COMMAND_LIFETIME,
            read_event_id=event.event_id,
            uid=event.uid,
            reason=reason,
        )
        self._link.publish(self._gate_topics(gate_id)[1], notice)
        log.debug("gate %s tag %s: %s (%s)", gate_id, event.uid, outcome.value, reason)

    # ------------------------------------------------------------------ other traffic

    def _on_gate_alarm(self, parts: TopicParts, event: GateAlarmEvent) -> None:
        if not event.outputs_ok:
            log.warning("gate %s could not sound alarm %s: %s", parts.device_id, event.alarm_id, event.problem)
        if self._was_issued(event.alarm_id) or not event.decided_locally:
            return
        log.info("gate %s decided alarm %s locally", parts.device_id, event.alarm_id)
        self._recorder.record_alarm(
            AlarmRecord(event.alarm_id, parts.device_id, event.started_at, True, tuple(event.items))
        )

    def _on_status(self, parts: TopicParts, status: DeviceStatus) -> None:
        if parts.kind is Kind.BACKEND and parts.device_id == self._backend_id:
            return
        self._recorder.record_device(
            DeviceSighting(parts.device_id, parts.kind.value, self._clock(), online=status.online)
        )

    def _on_state(self, parts: TopicParts, state: Message) -> None:
        self._recorder.record_device(DeviceSighting(parts.device_id, parts.kind.value, self._clock(), state=state))

    # ------------------------------------------------------------------ helpers

    def _filter(self, kind: Kind | str, channel: Channel, name: str | None = None) -> str:
        return topic(self._site, kind, _WILD, channel, name, root=self._root, wildcards=True)

    def _gate_topics(self, gate_id: str) -> tuple[str, str]:
        """The gate's ``cmd/alarm`` and ``cmd/pass`` topics (cached); TopicError for an impossible id."""
        cached = self._command_topics.get(gate_id)
        if cached is None:
            cached = (topic(self._site, Kind.GATE, gate_id, Channel.CMD, "alarm", root=self._root),
                      topic(self._site, Kind.GATE, gate_id, Channel.CMD, "pass", root=self._root))
            self._command_topics[gate_id] = cached
        return cached

    def _remember_issued(self, alarm_id: str) -> None:
        with self._issued_lock:
            self._issued[alarm_id] = None
            if len(self._issued) > _ISSUED_MEMORY:
                self._issued.popitem(last=False)

    def _was_issued(self, alarm_id: str) -> bool:
        with self._issued_lock:
            return alarm_id in self._issued

    def _prune_debounce(self, now: datetime) -> None:
        horizon = now - timedelta(seconds=self._policy.debounce_s)
        self._last_alarm = {key: at for key, at in self._last_alarm.items() if at >= horizon}

    def _state_topic(self) -> str:
        return topic(self._site, Kind.BACKEND, self._backend_id, Channel.STATE, root=self._root)

    def _publish_state_loop(self) -> None:
        while True:
            self.publish_state()
            if self._stop.wait(self._state_interval_s):
                return
