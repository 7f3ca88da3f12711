"""The gate path on a real Mosquitto: tag read → AlarmCommand, or nothing; garbage is dropped and counted."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from backend.alarm_writer import AlarmRecord, DeviceSighting
from backend.gate_decision import GatePolicy, ItemFacts
from backend.gate_service import GateService
from backend.gate_view import GateView
from openshelf.contract import (
    AlarmCommand,
    AlarmItem,
    AlarmReason,
    BackendState,
    Channel,
    DeviceStatus,
    GateAlarmEvent,
    Kind,
    PassNotice,
    ReaderLinkState,
    ReaderState,
    SilenceCommand,
    TagDecodeStatus,
    TagEvent,
    topic,
)
from openshelf.demo_catalog import tag_uid_for
from openshelf.mqtt import MqttLink
from openshelf.site import BrokerSettings
from tests.helpers import wait_for

GATE = "gate-1"
READER = "reader-1"
ALARM_DURATION_MS = 1500


@dataclass
class ListRecorder:
    alarms: list[AlarmRecord] = field(default_factory=list)
    devices: list[DeviceSighting] = field(default_factory=list)

    def record_alarm(self, record: AlarmRecord) -> None:
        self.alarms.append(record)

    def record_device(self, sighting: DeviceSighting) -> None:
        self.devices.append(sighting)


@dataclass
class Stack:
    site: str
    service: GateService
    backend_link: MqttLink
    device: MqttLink
    recorder: ListRecorder
    commands: list[AlarmCommand]
    passes: list[PassNotice]
    silences: list[SilenceCommand]
    states: list[BackendState]

    def read(self, uid: str, *, gate_id: str | None = GATE, item_id: str | None = None,
             decode: TagDecodeStatus = TagDecodeStatus.DECODED) -> TagEvent:
        event = TagEvent(reader_id=READER, gate_id=gate_id, uid=uid, item_id=item_id, decode=decode)
        self.device.publish(topic(self.site, Kind.READER, READER, Channel.EVENT, "tag_arrived"), event)
        return event

    def commands_for(self, uid: str) -> list[AlarmCommand]:
        return [command for command in self.commands if command.items[0].uid == uid]


def test_an_unloaned_item_alarms_at_its_gate_and_a_loaned_one_passes(stack: Stack) -> None:
    loaned, unloaned = tag_uid_for("I0002"), tag_uid_for("I0003")
    loaned_read = stack.read(loaned)
    unloaned_read = stack.read(unloaned)
    command = wait_for(lambda: stack.commands_for(unloaned), timeout_s=5, what="alarm command")[0]
    assert command.items == [AlarmItem(uid=unloaned, item_id="I0003", reason=AlarmReason.NOT_ON_LOAN)]
    assert command.read_event_ids == [unloaned_read.event_id]
    assert command.duration_ms == ALARM_DURATION_MS
    assert 4 <= (command.expires_at - command.sent_at).total_seconds() <= 5
    assert len(command.alarm_id) == 32
    notice = wait_for(lambda: stack.passes, what="pass notice")[0]
    assert (notice.read_event_id, notice.uid, notice.reason) == (loaned_read.event_id, loaned, "on_loan")
    # Reads from one publisher arrive in order, so the loaned read was decided before this point.
    assert stack.commands_for(loaned) == []
    record = wait_for(lambda: stack.recorder.alarms, what="alarm handed to the writer")[0]
    assert (record.alarm_id, record.gate_id, record.decided_locally) == (command.alarm_id, GATE, False)
    assert stack.service.gate_reads == 2 and stack.service.alarms == 1


def test_a_duplicate_read_inside_the_debounce_window_is_suppressed_and_answered(stack: Stack) -> None:
    uid = tag_uid_for("I0003")
    stack.read(uid)
    duplicate = stack.read(uid)
    notice = wait_for(lambda: stack.passes, what="pass notice for the duplicate")[0]
    assert (notice.read_event_id, notice.reason) == (duplicate.event_id, "duplicate_within_debounce")
    assert len(stack.commands_for(uid)) == 1
    assert stack.service.suppressed == 1


def test_unknown_tags_are_only_logged_when_the_policy_says_so(stack: Stack) -> None:
    stack.service._policy = GatePolicy(debounce_s=10, unknown_tag="log")  # noqa: SLF001
    read = stack.read("E0040100FFFFFF03", decode=TagDecodeStatus.BLANK)
    notice = wait_for(lambda: stack.passes, what="pass notice")[0]
    assert (notice.read_event_id, notice.reason) == (read.event_id, "unreadable_tag_logged")


def test_unknown_and_unreadable_tags_alarm_with_their_reasons(stack: Stack) -> None:
    stack.read("E0040100FFFFFF01", item_id="X1")
    stack.read("E0040100FFFFFF02", decode=TagDecodeStatus.CORRUPT)
    wait_for(lambda: len(stack.commands) == 2, what="two alarms")
    reasons = {command.items[0].uid: command.items[0].reason for command in stack.commands}
    assert reasons == {"E0040100FFFFFF01": AlarmReason.UNKNOWN_TAG,
                       "E0040100FFFFFF02": AlarmReason.UNREADABLE_TAG}


def test_reads_without_a_gate_or_with_an_impossible_one_are_ignored(stack: Stack) -> None:
    stack.read(tag_uid_for("I0003"), gate_id=None)
    stack.read("E0040100FFFFFF09", gate_id="gate/#")  # would alarm (unknown tag) at a real gate
    stack.read(tag_uid_for("I0004"))
    wait_for(lambda: stack.commands, what="marker alarm")
    assert [command.items[0].uid for command in stack.commands] == [tag_uid_for("I0004")]
    assert stack.passes == []
    assert stack.service.gate_reads == 1


def test_malformed_payloads_are_dropped_counted_and_reported(stack: Stack, broker_url: str) -> None:
    broker = BrokerSettings(url=broker_url)
    raw = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"{stack.site}-garbage")
    raw.connect(broker.host, broker.port)
    raw.loop_start()
    try:
        event_topic = topic(stack.site, Kind.READER, READER, Channel.EVENT, "tag_arrived")
        for payload in (b"\xff\xfenot json", b'{"version": 1, "uid": "zz"}', b"[]"):
            raw.publish(event_topic, payload, qos=1).wait_for_publish(5)
    finally:
        raw.loop_stop()
        raw.disconnect()
    stack.read(tag_uid_for("I0003"))
    wait_for(lambda: stack.commands, what="alarm after the garbage")
    assert stack.backend_link.stats.malformed == 3
    wait_for(lambda: any(state.malformed_messages == 3 for state in stack.states), what="BackendState")


def test_a_locally_decided_gate_alarm_becomes_a_record_but_our_own_echo_does_not(stack: Stack) -> None:
    stack.read(tag_uid_for("I0003"))
    ours = wait_for(lambda: stack.commands, what="alarm")[0]
    event_topic = topic(stack.site, Kind.GATE, GATE, Channel.EVENT, "alarm")
    item = AlarmItem(uid=tag_uid_for("I0005"), item_id="I0005", reason=AlarmReason.NOT_ON_LOAN)
    stack.device.publish(event_topic, GateAlarmEvent(gate_id=GATE, alarm_id=ours.alarm_id, items=list(ours.items)))
    stack.device.publish(event_topic, GateAlarmEvent(gate_id=GATE, alarm_id="gate-1-local-7", items=[item],
                                                     decided_locally=True))
    local = wait_for(lambda: [r for r in stack.recorder.alarms if r.decided_locally], what="local record")[0]
    assert (local.alarm_id, local.gate_id, local.items) == ("gate-1-local-7", GATE, (item,))
    assert [r.alarm_id for r in stack.recorder.alarms] == [ours.alarm_id, "gate-1-local-7"]


def test_device_status_and_state_reach_the_writer(stack: Stack) -> None:
    stack.device.publish(topic(stack.site, Kind.READER, READER, Channel.STATUS), DeviceStatus(online=True),
                         retain=True)
    stack.device.publish(topic(stack.site, Kind.READER, READER, Channel.STATE),
                         ReaderState(link=ReaderLinkState.UP, polls=7), retain=True)
    sightings = wait_for(lambda: [s for s in stack.recorder.devices if s.device_id == READER][1:],
                         what="status and state")
    seen = [s for s in stack.recorder.devices if s.device_id == READER]
    assert any(s.online is True for s in seen) and sightings
    assert any(isinstance(s.state, ReaderState) and s.state.polls == 7 for s in seen)
    assert all(s.kind == "reader" for s in seen)


def test_silence_goes_to_the_gate(stack: Stack) -> None:
    stack.service.silence(GATE, "abc123")
    silence = wait_for(lambda: stack.silences, what="silence command")[0]
    assert silence.alarm_id == "abc123"


def test_a_checkout_in_the_view_stops_the_next_alarm(stack: Stack) -> None:
    view: GateView = stack.service._view  # noqa: SLF001 - the same view the HTTP side updates
    view.set_on_loan("I0003", True)
    stack.read(tag_uid_for("I0003"))
    stack.read(tag_uid_for("I0004"))
    wait_for(lambda: stack.commands, what="marker alarm")
    assert [command.items[0].item_id for command in stack.commands] == ["I0004"]


# ------------------------------------------------------------------ fixture


@pytest.fixture
def stack(broker_url: str, site_id: str) -> Iterator[Stack]:
    broker = BrokerSettings(url=broker_url)
    view = GateView()
    for item_id, title, on_loan in (("I0002", "Số đỏ", True), ("I0003", "Dế Mèn phiêu lưu ký", False),
                                    ("I0004", "Tắt đèn", False), ("I0005", "Chí Phèo", True)):
        view.put_item(ItemFacts(item_id, title, on_loan, False), [tag_uid_for(item_id)])
    recorder = ListRecorder()
    backend_link = MqttLink(broker, client_id=f"{site_id}-backend",
                            status_topic=topic(site_id, Kind.BACKEND, "backend", Channel.STATUS))
    service = GateService(backend_link, view, GatePolicy(debounce_s=10), site_id=site_id, root="openshelf",
                          backend_id="backend", alarm_recorder=recorder,
                          alarm_duration_ms=lambda gate: ALARM_DURATION_MS if gate == GATE else None,
                          state_interval_s=0.05)
    commands: list[AlarmCommand] = []
    passes: list[PassNotice] = []
    silences: list[SilenceCommand] = []
    states: list[BackendState] = []
    device = MqttLink(broker, client_id=f"{site_id}-device")
    device.subscribe(topic(site_id, Kind.GATE, GATE, Channel.CMD, "alarm"), AlarmCommand,
                     lambda parts, message: commands.append(message))
    device.subscribe(topic(site_id, Kind.GATE, GATE, Channel.CMD, "pass"), PassNotice,
                     lambda parts, message: passes.append(message))
    device.subscribe(topic(site_id, Kind.GATE, GATE, Channel.CMD, "silence"), SilenceCommand,
                     lambda parts, message: silences.append(message))
    device.subscribe(topic(site_id, Kind.BACKEND, "backend", Channel.STATE), BackendState,
                     lambda parts, message: states.append(message))
    assert device.start(wait_s=5)
    service.start()
    assert backend_link.start(wait_s=5)
    try:
        # The backend subscribes before it publishes on the same connection, so once its first
        # BackendState arrives its subscriptions are active.
        wait_for(lambda: states, what="first BackendState")
        yield Stack(site_id, service, backend_link, device, recorder, commands, passes, silences, states)
    finally:
        service.stop()
        backend_link.stop()
        device.stop()
