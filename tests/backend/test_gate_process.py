"""The gate path in its own process (backend.gate_process), driven by GateProcessHost, on a real Mosquitto.

The test process plays the backend: it owns the master gate view and the recorder,
and never runs a GateService itself — every answer comes from the child process.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
from dataclasses import dataclass, field
from typing import Iterator

import psutil
import pytest

from backend.circulation.interface import Bilingual, CheckinResult, CheckoutResult, ReasonCode
from backend.gate_decision import GatePolicy, ItemFacts
from backend.gate_process_host import GateProcessHost, gate_process_command
from backend.gate_process_wire import GateProcessSetup, encode
from backend.gate_records import AlarmRecord, DeviceSighting
from backend.gate_sync import GateSyncedCirculation
from backend.gate_view import GateView
from openshelf.contract import (
    AlarmCommand,
    AlarmItem,
    AlarmReason,
    Channel,
    DeviceStatus,
    GateAlarmEvent,
    Kind,
    PassNotice,
    ReaderLinkState,
    ReaderState,
    SilenceCommand,
    TagEvent,
    topic,
)
from openshelf.demo_catalog import tag_uid_for
from openshelf.mqtt import MqttLink
from openshelf.site import BrokerSettings
from tests.helpers import wait_for

GATE = "gate-1"
READER = "reader-1"


@dataclass
class LockedRecorder:
    """The alarm writer's two calls; the host calls them from its own thread."""

    alarms: list[AlarmRecord] = field(default_factory=list)
    devices: list[DeviceSighting] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record_alarm(self, record: AlarmRecord) -> None:
        with self._lock:
            self.alarms.append(record)

    def record_device(self, sighting: DeviceSighting) -> None:
        with self._lock:
            self.devices.append(sighting)


@dataclass
class Stack:
    site: str
    host: GateProcessHost
    view: GateView
    recorder: LockedRecorder
    device: MqttLink
    commands: list[AlarmCommand]
    passes: list[PassNotice]
    silences: list[SilenceCommand]

    def read(self, item_id: str) -> TagEvent:
        event = TagEvent(reader_id=READER, gate_id=GATE, uid=tag_uid_for(item_id), item_id=item_id)
        self.device.publish(topic(self.site, Kind.READER, READER, Channel.EVENT, "tag_arrived"), event)
        return event

    def answer_to(self, event: TagEvent) -> AlarmCommand | PassNotice:
        def find() -> AlarmCommand | PassNotice | None:
            for command in list(self.commands):
                if event.event_id in command.read_event_ids:
                    return command
            return next((notice for notice in list(self.passes) if notice.read_event_id == event.event_id), None)

        return wait_for(find, what="the gate process's answer to a read")


class FakeCirculation:
    """Every checkout and check-in succeeds (the gate sync is under test, not circulation)."""

    def checkout(self, card_id: str, item_id: str, **_: object) -> CheckoutResult:
        return CheckoutResult(ok=True, reason=ReasonCode.CHECKED_OUT, message=Bilingual(vi="", en=""),
                              card_id=card_id, item_id=item_id, title=item_id)

    def checkin(self, item_id: str, **_: object) -> CheckinResult:
        return CheckinResult(ok=True, reason=ReasonCode.RETURNED, message=Bilingual(vi="", en=""),
                             item_id=item_id, title=item_id)


def _gate_process_of(host: GateProcessHost) -> psutil.Process:
    pid = wait_for(lambda: host.pid, what="a gate process")
    return psutil.Process(pid)


def test_a_gate_read_is_answered_by_the_gate_process(stack: Stack) -> None:
    child = _gate_process_of(stack.host)
    assert child.pid != os.getpid() and child.ppid() == os.getpid()
    assert "backend.gate_process" in " ".join(child.cmdline())
    alarm = stack.answer_to(stack.read("I0003"))
    assert isinstance(alarm, AlarmCommand)
    assert alarm.items == [AlarmItem(uid=tag_uid_for("I0003"), item_id="I0003", reason=AlarmReason.NOT_ON_LOAN)]
    assert alarm.duration_ms == 1500 and len(alarm.alarm_id) == 32
    passed = stack.answer_to(stack.read("I0002"))
    assert isinstance(passed, PassNotice) and passed.reason == "on_loan"
    duplicate = stack.answer_to(stack.read("I0003"))
    assert isinstance(duplicate, PassNotice) and duplicate.reason == "duplicate_within_debounce"
    record = wait_for(lambda: stack.recorder.alarms, what="the alarm record sent back")[0]
    assert (record.alarm_id, record.gate_id, record.decided_locally) == (alarm.alarm_id, GATE, False)
    assert record.items == tuple(alarm.items)
    wait_for(lambda: (stack.host.gate_reads, stack.host.alarms, stack.host.suppressed) == (3, 1, 1),
             what="the gate process's counters")


def test_a_loan_change_reaches_the_gate_process_before_checkout_returns(stack: Stack) -> None:
    circulation = GateSyncedCirculation(FakeCirculation(), stack.view)  # type: ignore[arg-type]
    assert isinstance(stack.answer_to(stack.read("I0004")), AlarmCommand)
    assert circulation.checkout("P0001", "I0004", idempotency_key="k1").ok
    # No wait here: once checkout returned, the gate process holds the change.
    after = stack.answer_to(stack.read("I0004"))
    assert isinstance(after, PassNotice) and after.reason == "on_loan"
    assert circulation.checkin("I0004", idempotency_key="k2").ok
    stack.view.replace_item(ItemFacts("I0006", "Nỗi buồn chiến tranh", True, False), [tag_uid_for("I0006")])
    assert isinstance(stack.answer_to(stack.read("I0006")), PassNotice)
    back = stack.answer_to(stack.read("I0004"))
    assert isinstance(back, PassNotice) and back.reason == "duplicate_within_debounce"  # the first alarm's window


def test_a_killed_gate_process_is_replaced_with_the_current_view(stack: Stack) -> None:
    first = _gate_process_of(stack.host)
    first.kill()
    first.wait(10)
    stack.view.set_on_loan("I0003", True)  # while no gate process runs: the next one starts from it
    second = wait_for(lambda: stack.host.pid not in (None, first.pid) and stack.host.pid, what="a new gate process")
    assert stack.host.wait_connected(10) and stack.host.restarts == 1
    assert psutil.Process(second).ppid() == os.getpid()
    passed = stack.answer_to(stack.read("I0003"))
    assert isinstance(passed, PassNotice) and passed.reason == "on_loan"
    assert isinstance(stack.answer_to(stack.read("I0004")), AlarmCommand)


def test_gate_alarms_devices_lookups_and_silence_go_through_the_backend(stack: Stack) -> None:
    looked_up: list[str] = []
    stack.view.set_lookup_hook(looked_up.append)
    alarm = stack.answer_to(stack.read("I0003"))
    assert isinstance(alarm, AlarmCommand)
    wait_for(lambda: "I0003" in looked_up, what="the lookup reported back (SIP2 refresh)")
    event_topic = topic(stack.site, Kind.GATE, GATE, Channel.EVENT, "alarm")
    item = AlarmItem(uid=tag_uid_for("I0005"), item_id="I0005", reason=AlarmReason.NOT_ON_LOAN)
    stack.device.publish(event_topic, GateAlarmEvent(gate_id=GATE, alarm_id=alarm.alarm_id, items=list(alarm.items)))
    stack.device.publish(event_topic, GateAlarmEvent(gate_id=GATE, alarm_id="gate-1-local-9", items=[item],
                                                     decided_locally=True))
    local = wait_for(lambda: [r for r in stack.recorder.alarms if r.decided_locally], what="local alarm record")[0]
    assert (local.alarm_id, local.items) == ("gate-1-local-9", (item,))
    assert [r.alarm_id for r in stack.recorder.alarms] == [alarm.alarm_id, "gate-1-local-9"]

    stack.device.publish(topic(stack.site, Kind.READER, READER, Channel.STATUS), DeviceStatus(online=True))
    stack.device.publish(topic(stack.site, Kind.READER, READER, Channel.STATE),
                         ReaderState(link=ReaderLinkState.UP, polls=7))

    def merged() -> bool:
        seen = [s for s in list(stack.recorder.devices) if s.device_id == READER]
        return any(s.online for s in seen) and any(isinstance(s.state, ReaderState) for s in seen)

    wait_for(merged, what="the reader's status and state")

    stack.host.silence(GATE, alarm.alarm_id)
    assert wait_for(lambda: stack.silences, what="silence")[0].alarm_id == alarm.alarm_id


def test_stopping_the_host_stops_the_gate_process_cleanly(stack: Stack) -> None:
    child = _gate_process_of(stack.host)
    stack.host.stop()
    assert not child.is_running() and stack.host.last_exit_code == 0
    assert stack.host.pid is None and not stack.host.connected


def test_the_gate_process_exits_when_the_backend_end_of_its_channel_closes(broker_url: str, site_id: str) -> None:
    """What the backend's death looks like to the gate process: the kernel closes the backend's end."""
    ours, theirs = socket.socketpair()
    child = subprocess.Popen([*gate_process_command(), "--fd", str(theirs.fileno())], pass_fds=(theirs.fileno(),),
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    theirs.close()
    try:
        ours.sendall(encode(_setup(broker_url, site_id)))
        assert ours.recv(1 << 16), "the gate process reports its status once set up"
        ours.close()
        assert child.wait(15) == 0
    finally:
        if child.poll() is None:
            child.send_signal(signal.SIGKILL)
            child.wait(5)


# ------------------------------------------------------------------ fixture


def _setup(broker_url: str, site_id: str) -> GateProcessSetup:
    return GateProcessSetup(broker=BrokerSettings(url=broker_url), client_id=f"{site_id}-backend-gate",
                            username=None, password=None, site_id=site_id, root="openshelf", backend_id="backend",
                            policy=GatePolicy(debounce_s=10), alarm_durations_ms={GATE: 1500},
                            state_interval_s=0.5, sightings_every_s=0.1)


@pytest.fixture
def stack(broker_url: str, site_id: str) -> Iterator[Stack]:
    broker = BrokerSettings(url=broker_url)
    view = GateView()
    for item_id, on_loan in (("I0002", True), ("I0003", False), ("I0004", False), ("I0005", True)):
        view.put_item(ItemFacts(item_id, item_id, on_loan, False), [tag_uid_for(item_id)])
    recorder = LockedRecorder()
    backend_link = MqttLink(broker, client_id=f"{site_id}-backend",
                            status_topic=topic(site_id, Kind.BACKEND, "backend", Channel.STATUS))
    host = GateProcessHost(_setup(broker_url, site_id), view, recorder, backend_link, restart_delays_s=(0.1,))
    commands: list[AlarmCommand] = []
    passes: list[PassNotice] = []
    silences: list[SilenceCommand] = []
    device = MqttLink(broker, client_id=f"{site_id}-device")
    device.subscribe(topic(site_id, Kind.GATE, GATE, Channel.CMD, "alarm"), AlarmCommand,
                     lambda parts, message: commands.append(message))
    device.subscribe(topic(site_id, Kind.GATE, GATE, Channel.CMD, "pass"), PassNotice,
                     lambda parts, message: passes.append(message))
    device.subscribe(topic(site_id, Kind.GATE, GATE, Channel.CMD, "silence"), SilenceCommand,
                     lambda parts, message: silences.append(message))
    assert device.start(wait_s=5)
    host.start()
    try:
        assert backend_link.start(wait_s=5)
        assert host.wait_connected(20), "the gate process did not connect"
        yield Stack(site_id, host, view, recorder, device, commands, passes, silences)
    finally:
        host.stop()
        backend_link.stop()
        device.stop()
