"""The gate controller service against a real broker and the Modbus I/O simulator."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from gate_controller.counting import CountingConfig
from gate_controller.modbus import ModbusGateIo
from gate_controller.pattern_files import load_alarm_pattern
from gate_controller.profile import load_gate_profile
from gate_controller.service import GateController
from gate_controller.simulator import BeamScript, GateIoSimulator
from openshelf.contract import (
    AlarmCommand, AlarmItem, AlarmReason, BeamFaultEvent, Channel, GateAlarmEvent, GateLinkState, GateState, Kind,
    PassageDirection, PassageEvent, PassNotice, SilenceCommand, SimBeams, TagDecodeStatus, TagEvent, TopicParts,
    expires_in, topic, utcnow,
)
from openshelf.mqtt import MqttLink
from openshelf.site import BrokerSettings, GateIoSettings, GateSettings, LocalDecisionSettings
from openshelf.walk import patron_beam_steps

ITEM = AlarmItem(uid="E004010000000301", item_id="I0003", reason=AlarmReason.NOT_ON_LOAN)
SECURED, ON_LOAN = 0x07, 0xC2
UID_A, UID_B, UID_C, UID_D = "E004010000000001", "E004010000000002", "E004010000000003", "E004010000000004"


async def until(predicate: Callable[[], Any], timeout_s: float = 10.0, what: str = "") -> Any:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not (value := predicate()):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)
    return value


class Rig:
    """A gate controller on the simulator, plus one MQTT client playing reader, backend and watcher."""

    def __init__(self, broker_url: str, site: str, *, pattern: str | None = None,
                 counting: CountingConfig | None = None, **gate: Any) -> None:
        self.site = site
        self.profile = load_gate_profile("moxa-e1214")
        self.sim = GateIoSimulator(self.profile, port=0)
        self.gate_options = {"alarm_duration_ms": 300, "decision_deadline_ms": 100, "group_window_ms": 200,
                             "beam_poll_ms": 20, **gate}
        self.pattern_name = pattern
        self.counting = counting
        self.broker = BrokerSettings(url=broker_url)
        self.events: list[GateAlarmEvent] = []
        self.states: list[GateState] = []
        self.passages: list[PassageEvent] = []
        self.faults: list[BeamFaultEvent] = []
        self.backend_answer: Callable[[TagEvent], None] | None = None

    async def start(self) -> Rig:
        await self.sim.start()
        gate = GateSettings(id="gate-1", io=GateIoSettings(port=self.sim.port, timeout_s=0.3, retries=0),
                            **self.gate_options)
        self.gate = gate
        self.io = ModbusGateIo.from_settings(self.profile, gate.io)
        self.gate_link = MqttLink(self.broker, client_id=f"{self.site}-gate-1",
                                  status_topic=topic(self.site, Kind.GATE, "gate-1", Channel.STATUS))
        self.controller = GateController(
            io=self.io, link=self.gate_link, settings=gate, site=self.site, root="openshelf",
            pattern=load_alarm_pattern(self.pattern_name, gate.alarm_duration_ms), counting=self.counting,
        )
        self.controller.attach(asyncio.get_running_loop())
        self.peer = MqttLink(self.broker, client_id=f"{self.site}-peer")
        watch = {"alarm": (GateAlarmEvent, self.events), "passage": (PassageEvent, self.passages),
                 "beam_fault": (BeamFaultEvent, self.faults)}
        for name, (model, sink) in watch.items():
            self.peer.subscribe(topic(self.site, Kind.GATE, "gate-1", Channel.EVENT, name), model,
                                lambda parts, event, sink=sink: sink.append(event))
        self.peer.subscribe(topic(self.site, Kind.GATE, "gate-1", Channel.STATE), GateState,
                            lambda parts, state: self.states.append(state))
        self.peer.subscribe(topic(self.site, Kind.READER, "+", Channel.EVENT, "tag_arrived", wildcards=True),
                            TagEvent, self._on_read)
        await asyncio.to_thread(self.gate_link.start)
        await asyncio.to_thread(self.peer.start)
        self.stop = asyncio.Event()
        self.task = asyncio.create_task(self.controller.run(self.stop))
        self.script = BeamScript(self.sim)
        self.script_task = asyncio.create_task(self.script.run())
        if self.gate.count_people:  # the counter takes its first sample as it is: start walking after it
            await until(lambda: self.controller.beam_samples > 0, what="first beam sample")
        return self

    def _on_read(self, parts: TopicParts, event: TagEvent) -> None:
        if self.backend_answer is not None:
            self.backend_answer(event)

    def read(self, uid: str, afi: int | None = SECURED, *, gate_id: str = "gate-1",
             decode: TagDecodeStatus = TagDecodeStatus.DECODED) -> TagEvent:
        """Publish a tag arrival as the gate's reader service would."""
        event = TagEvent(reader_id="reader-gate-1", gate_id=gate_id, uid=uid, item_id=None, afi=afi, decode=decode)
        self.peer.publish(topic(self.site, Kind.READER, "reader-gate-1", Channel.EVENT, "tag_arrived"), event)
        return event

    def send(self, command: AlarmCommand | PassNotice | SilenceCommand) -> None:
        name = {AlarmCommand: "alarm", PassNotice: "pass", SilenceCommand: "silence"}[type(command)]
        self.peer.publish(topic(self.site, Kind.GATE, "gate-1", Channel.CMD, name), command)

    def alarm_for(self, *events: TagEvent, alarm_id: str = "backend-1") -> AlarmCommand:
        items = [AlarmItem(uid=event.uid, reason=AlarmReason.NOT_ON_LOAN) for event in events]
        return AlarmCommand(alarm_id=alarm_id, items=items, read_event_ids=[event.event_id for event in events],
                            expires_at=expires_in(5))

    async def close(self) -> None:
        self.script_task.cancel()
        self.stop.set()
        await self.task
        await asyncio.to_thread(self.gate_link.stop)
        await asyncio.to_thread(self.peer.stop)
        await self.sim.stop()


@pytest.fixture
async def make_rig(broker_url: str, site_id: str):
    rigs: list[Rig] = []

    async def make(**options: Any) -> Rig:
        rig = await Rig(broker_url, site_id, **options).start()
        rigs.append(rig)
        return rig

    yield make
    for rig in rigs:
        await rig.close()


@pytest.fixture
async def rig(make_rig) -> Rig:
    return await make_rig()


# ---------------------------------------------------------------------- the backend's alarms


async def test_alarm_switches_relays_on_then_off_and_is_announced(rig: Rig):
    rig.send(AlarmCommand(alarm_id="a1", items=[ITEM], expires_at=expires_in(5)))
    await until(lambda: rig.sim.coil("light") and rig.sim.coil("buzzer"), what="relays on")
    await until(lambda: rig.events, what="alarm event")
    assert rig.events[0].alarm_id == "a1" and rig.events[0].outputs_ok and not rig.events[0].decided_locally
    await until(lambda: not rig.sim.coil("light") and not rig.sim.coil("buzzer"), what="relays off")
    await until(lambda: any(state.alarms_sounded == 1 and not state.alarm_active for state in rig.states),
                what="state after the alarm")


async def test_expired_command_does_not_sound(rig: Rig):
    rig.send(AlarmCommand(alarm_id="stale", items=[ITEM], expires_at=utcnow() - timedelta(seconds=1)))
    rig.send(AlarmCommand(alarm_id="fresh", items=[ITEM], expires_at=expires_in(5)))
    await until(lambda: rig.events, what="fresh alarm")
    assert [event.alarm_id for event in rig.events] == ["fresh"]
    assert rig.gate_link.stats.expired == 1


async def test_silence_switches_off_before_the_duration(make_rig):
    rig = await make_rig(alarm_duration_ms=60_000)
    rig.send(AlarmCommand(alarm_id="long", items=[ITEM], expires_at=expires_in(5)))
    await until(lambda: rig.sim.coil("light"), what="relays on")
    rig.send(SilenceCommand(alarm_id="long", expires_at=expires_in(5)))
    await until(lambda: not rig.sim.coil("light") and not rig.sim.coil("buzzer"), what="silenced")


async def test_alarm_pattern_from_configuration_drives_the_relays(make_rig, tmp_path):
    pattern = tmp_path / "fast-beep.yaml"
    pattern.write_text("steps:\n  - {light: true, buzzer: true, ms: 100}\n  - {light: true, buzzer: false, ms: 60}\n",
                       encoding="utf-8")
    rig = await make_rig(pattern=str(pattern), alarm_duration_ms=420)
    rig.send(AlarmCommand(alarm_id="beep", items=[ITEM], expires_at=expires_in(5)))
    await until(lambda: rig.events, what="alarm event")
    await until(lambda: any(not state.alarm_active and state.alarms_sounded == 1 for state in rig.states)
                and not rig.sim.coil("light"), what="pattern over")
    buzzer = [write.value for write in rig.sim.coil_writes if write.target == "buzzer"]
    light = [write.value for write in rig.sim.coil_writes if write.target == "light"]
    # 100 ms on / 60 ms off for 420 ms: on, off, on, off (pause), on, then off at the end
    assert buzzer[-6:] == [True, False, True, False, True, False]
    assert True in light and light[-1] is False and False not in light[light.index(True):-1]


# ---------------------------------------------------------------------- deciding locally


async def test_backend_silent_secured_tag_alarms_locally_but_loaned_tag_does_not(rig: Rig):
    loaned = rig.read(UID_A, afi=ON_LOAN)
    secured = rig.read(UID_B, afi=SECURED)  # after the loaned read: its deadline passes after the loaned one's
    await until(lambda: rig.sim.coil("light") and rig.sim.coil("buzzer"), what="relays on (local decision)")
    event = (await until(lambda: rig.events, what="local alarm event"))[0]
    assert event.decided_locally and event.outputs_ok
    assert [(item.uid, item.reason) for item in event.items] == [(secured.uid, AlarmReason.SECURED_TAG)]
    assert loaned.uid not in {item.uid for item in event.items}


async def test_reads_at_other_gates_are_not_this_gates_business(rig: Rig):
    rig.read(UID_A, afi=SECURED, gate_id="gate-2")
    rig.read(UID_B, afi=SECURED)
    event = (await until(lambda: rig.events, what="local alarm"))[0]
    assert [item.uid for item in event.items] == [UID_B]


async def test_unknown_tags_follow_the_policy(make_rig):
    rig = await make_rig(local_decision=LocalDecisionSettings(unknown_tag="log"))
    rig.read(UID_A, afi=ON_LOAN, decode=TagDecodeStatus.CORRUPT)  # only logged under this policy
    await asyncio.sleep(0.25)  # past the group window: the barrier below must make its own alarm
    rig.read(UID_B, afi=None, decode=TagDecodeStatus.UNKNOWN_MODEL)  # logged too
    await asyncio.sleep(0.25)
    rig.read(UID_C, afi=SECURED)
    event = (await until(lambda: rig.events, what="barrier alarm"))[0]
    assert [item.uid for item in event.items] == [UID_C]
    assert len(rig.events) == 1


async def test_backend_answering_in_time_means_no_local_decision(make_rig):
    rig = await make_rig(decision_deadline_ms=300)
    answered: dict[str, str] = {}

    def backend(read: TagEvent) -> None:
        if read.uid == UID_A:  # a secured AFI, but the backend knows the item is on loan
            rig.send(PassNotice(read_event_id=read.event_id, uid=read.uid, reason="on_loan", expires_at=expires_in(5)))
        elif read.uid == UID_B:
            rig.send(rig.alarm_for(read, alarm_id="backend-b"))
        answered[read.uid] = read.event_id

    rig.backend_answer = backend
    rig.read(UID_A)
    rig.read(UID_B)
    await until(lambda: rig.events, what="backend alarm")
    await asyncio.sleep(0.25)  # past the group window
    rig.read(UID_C)  # the backend ignores it: decided locally after both reads above had their deadline
    await until(lambda: len(rig.events) == 2, what="barrier alarm")
    assert [(event.alarm_id, event.decided_locally) for event in rig.events[:1]] == [("backend-b", False)]
    assert rig.events[1].decided_locally and [item.uid for item in rig.events[1].items] == [UID_C]
    await asyncio.sleep(0.05)
    assert len(rig.events) == 2


async def test_a_late_backend_alarm_for_a_read_already_alarmed_locally_does_not_sound_twice(make_rig):
    rig = await make_rig(alarm_duration_ms=2000)
    read = rig.read(UID_A)
    await until(lambda: rig.events, what="local alarm")
    assert rig.controller.alarms_sounded == 1
    rig.send(rig.alarm_for(read, alarm_id="late"))
    rig.send(AlarmCommand(alarm_id="barrier", items=[ITEM], expires_at=expires_in(5)))
    await until(lambda: len(rig.events) == 2, what="barrier alarm")
    assert [event.alarm_id for event in rig.events][1:] == ["barrier"]
    assert rig.controller.alarms_sounded == 2


async def test_staff_can_silence_a_local_alarm_by_the_late_backend_alarms_id(make_rig):
    rig = await make_rig(alarm_duration_ms=60_000, group_window_ms=0)
    read = rig.read(UID_A)
    await until(lambda: rig.events, what="local alarm")
    rig.send(rig.alarm_for(read, alarm_id="late"))  # the dashboard shows this one too
    rig.send(SilenceCommand(alarm_id="late", expires_at=expires_in(5)))
    await until(lambda: not rig.sim.coil("light") and not rig.sim.coil("buzzer"), what="silenced")
    assert len(rig.events) == 1


async def test_several_items_on_one_patron_make_one_alarm(make_rig):
    rig = await make_rig(group_window_ms=400)
    rig.read(UID_A)
    rig.read(UID_B)
    await asyncio.sleep(0.1)
    rig.read(UID_A)  # the same tag again: not a second item, not a second alarm
    first = (await until(lambda: rig.events, what="grouped alarm"))[0]
    assert [item.uid for item in first.items] == [UID_A, UID_B]
    assert first.decided_locally and rig.controller.alarms_sounded == 1
    rig.read(UID_C)  # after the window: a new alarm (and the barrier for "no more events")
    await until(lambda: len(rig.events) == 2, what="second alarm")
    assert [item.uid for item in rig.events[1].items] == [UID_C]
    assert first.alarm_id != rig.events[1].alarm_id


async def test_staff_can_silence_a_locally_decided_alarm(make_rig):
    rig = await make_rig(alarm_duration_ms=60_000, group_window_ms=0)
    rig.read(UID_A)
    event = (await until(lambda: rig.events, what="local alarm"))[0]
    assert rig.sim.coil("light")
    rig.send(SilenceCommand(alarm_id=event.alarm_id, expires_at=expires_in(5)))
    await until(lambda: not rig.sim.coil("light") and not rig.sim.coil("buzzer"), what="silenced")


# ---------------------------------------------------------------------- the I/O link


async def test_alarm_during_link_cut_is_announced_and_reasserted_when_link_returns(make_rig):
    rig = await make_rig(alarm_duration_ms=30_000)
    await rig.sim.cut_link()
    rig.send(AlarmCommand(alarm_id="during-outage", items=[ITEM], expires_at=expires_in(5)))
    await until(lambda: rig.events, what="alarm event during outage")
    assert rig.events[0].outputs_ok is False and "unreachable" in (rig.events[0].problem or "")
    await rig.sim.restore_link()
    await until(lambda: rig.sim.coil("light") and rig.sim.coil("buzzer"), timeout_s=15,
                what="relays re-asserted after the link returns")
    rig.send(SilenceCommand(alarm_id=None, expires_at=expires_in(5)))
    await until(lambda: not rig.sim.coil("light"), what="silenced")


async def test_relays_left_on_by_a_link_cut_are_switched_off_when_it_returns(make_rig):
    rig = await make_rig(alarm_duration_ms=500)
    rig.send(AlarmCommand(alarm_id="a1", items=[ITEM], expires_at=expires_in(5)))
    await until(lambda: rig.sim.coil("light"), what="relays on")
    await rig.sim.cut_link()  # the module keeps its outputs; the controller cannot switch them off
    await until(lambda: any(not state.alarm_active and state.alarms_sounded == 1 for state in rig.states),
                what="alarm over while the link is down")
    assert rig.sim.coil("light"), "still on inside the unreachable module"
    await rig.sim.restore_link()
    await until(lambda: not rig.sim.coil("light") and not rig.sim.coil("buzzer"), timeout_s=15,
                what="relays switched off after the link returns")
    await until(lambda: rig.states[-1].io_link is GateLinkState.UP, what="link reported up")


# ---------------------------------------------------------------------- people counting


async def test_beam_sequences_count_entries_and_exits(rig: Rig):
    rig.script.enqueue(None, SimBeams(steps=patron_beam_steps("in"), expires_at=expires_in(5)))
    rig.script.enqueue(None, SimBeams(steps=patron_beam_steps("out", tailgate=True), expires_at=expires_in(5)))
    await until(lambda: len(rig.passages) == 3, what="three passages")
    assert [passage.direction for passage in rig.passages] == [PassageDirection.IN, PassageDirection.OUT,
                                                               PassageDirection.OUT]
    assert all(passage.gate_id == "gate-1" for passage in rig.passages)
    assert [p.at for p in rig.passages] == sorted(p.at for p in rig.passages)
    await until(lambda: rig.states and (rig.states[-1].entries, rig.states[-1].exits) == (1, 2),
                what="counts in the gate state")


async def test_a_blocked_beam_is_reported_and_its_recovery_too(make_rig):
    rig = await make_rig(counting=CountingConfig(stuck_beam_s=0.3))
    rig.sim.set_beam("beam_b", True)
    fault = (await until(lambda: rig.faults, what="stuck beam"))[0]
    assert (fault.beam, fault.stuck) == ("beam_b", True)
    rig.sim.set_beam("beam_b", False)
    await until(lambda: len(rig.faults) == 2, what="recovery")
    assert (rig.faults[1].beam, rig.faults[1].stuck) == ("beam_b", False)
    assert rig.faults[1].since >= fault.since
    assert rig.passages == []


async def test_counting_restarts_cleanly_after_a_link_cut(rig: Rig):
    await until(lambda: rig.states and rig.states[-1].io_link is GateLinkState.UP, what="link up")
    await rig.sim.cut_link()
    await until(lambda: rig.states[-1].io_link is GateLinkState.DOWN, what="link reported down")
    rig.sim.set_beam("beam_a", True)  # someone stands in the gate while the link is down
    await rig.sim.restore_link()
    await until(lambda: rig.states[-1].io_link is GateLinkState.UP, timeout_s=15, what="link back")
    rig.sim.set_beam("beam_a", False)  # they walk back in: not a passage (A first seen broken at resync)
    samples = rig.controller.beam_samples
    await until(lambda: rig.controller.beam_samples >= samples + 3, what="the gate seeing both beams clear")
    rig.script.enqueue(None, SimBeams(steps=patron_beam_steps("in"), expires_at=expires_in(5)))
    await until(lambda: rig.passages, what="the next passage")
    assert [passage.direction for passage in rig.passages] == [PassageDirection.IN]

