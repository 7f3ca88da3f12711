"""The gate controller service against a real broker and the Modbus I/O simulator."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from gate_controller.modbus import ModbusGateIo
from gate_controller.profile import load_gate_profile
from gate_controller.service import GateController
from gate_controller.simulator import GateIoSimulator
from openshelf.contract import (
    AlarmCommand, AlarmItem, AlarmReason, Channel, GateAlarmEvent, GateState, Kind, SilenceCommand,
    expires_in, topic, utcnow,
)
from openshelf.mqtt import MqttLink
from openshelf.site import BrokerSettings, GateIoSettings, GateSettings

ITEM = AlarmItem(uid="E004010000000301", item_id="I0003", reason=AlarmReason.NOT_ON_LOAN)


async def until(predicate, timeout_s=10.0, what=""):
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


class Rig:
    def __init__(self, broker_url: str, site: str, duration_ms: int = 300):
        self.site = site
        self.profile = load_gate_profile("moxa-e1214")
        self.sim = GateIoSimulator(self.profile, port=0)
        self.duration_ms = duration_ms
        self.settings = BrokerSettings(url=broker_url)
        self.events: list[GateAlarmEvent] = []
        self.states: list[GateState] = []

    async def start(self):
        await self.sim.start()
        gate = GateSettings(id="gate-1", alarm_duration_ms=self.duration_ms,
                            io=GateIoSettings(port=self.sim.port, timeout_s=0.3, retries=0))
        self.io = ModbusGateIo.from_settings(self.profile, gate.io)
        self.gate_link = MqttLink(self.settings, client_id=f"{self.site}-gate-1",
                                  status_topic=topic(self.site, Kind.GATE, "gate-1", Channel.STATUS))
        self.controller = GateController(io=self.io, link=self.gate_link, settings=gate, site=self.site,
                                         root="openshelf")
        self.controller.attach(asyncio.get_running_loop())
        self.backend = MqttLink(self.settings, client_id=f"{self.site}-backend")
        self.backend.subscribe(topic(self.site, Kind.GATE, "gate-1", Channel.EVENT, "alarm"), GateAlarmEvent,
                               lambda parts, event: self.events.append(event))
        self.backend.subscribe(topic(self.site, Kind.GATE, "gate-1", Channel.STATE), GateState,
                               lambda parts, state: self.states.append(state))
        await asyncio.to_thread(self.gate_link.start)
        await asyncio.to_thread(self.backend.start)
        self.stop = asyncio.Event()
        self.task = asyncio.create_task(self.controller.run(self.stop))

    def send(self, command):
        name = "alarm" if isinstance(command, AlarmCommand) else "silence"
        self.backend.publish(topic(self.site, Kind.GATE, "gate-1", Channel.CMD, name), command)

    async def close(self):
        self.stop.set()
        await self.task
        await asyncio.to_thread(self.gate_link.stop)
        await asyncio.to_thread(self.backend.stop)
        await self.sim.stop()


@pytest.fixture
async def rig(broker_url, site_id):
    rig = Rig(broker_url, site_id)
    await rig.start()
    yield rig
    await rig.close()


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


async def test_silence_switches_off_before_the_duration(broker_url, site_id):
    rig = Rig(broker_url, site_id, duration_ms=60_000)
    await rig.start()
    try:
        rig.send(AlarmCommand(alarm_id="long", items=[ITEM], expires_at=expires_in(5)))
        await until(lambda: rig.sim.coil("light"), what="relays on")
        rig.send(SilenceCommand(alarm_id="long", expires_at=expires_in(5)))
        await until(lambda: not rig.sim.coil("light") and not rig.sim.coil("buzzer"), what="silenced")
    finally:
        await rig.close()


async def test_alarm_during_link_cut_is_announced_and_reasserted_when_link_returns(broker_url, site_id):
    rig = Rig(broker_url, site_id, duration_ms=30_000)
    await rig.start()
    try:
        await rig.sim.cut_link()
        rig.send(AlarmCommand(alarm_id="during-outage", items=[ITEM], expires_at=expires_in(5)))
        await until(lambda: rig.events, what="alarm event during outage")
        assert rig.events[0].outputs_ok is False and "unreachable" in (rig.events[0].problem or "")
        await rig.sim.restore_link()
        await until(lambda: rig.sim.coil("light") and rig.sim.coil("buzzer"), timeout_s=15,
                    what="relays re-asserted after the link returns")
        rig.send(SilenceCommand(alarm_id=None, expires_at=expires_in(5)))
        await until(lambda: not rig.sim.coil("light"), what="silenced")
    finally:
        await rig.close()


async def test_relays_left_on_by_a_link_cut_are_switched_off_when_it_returns(broker_url, site_id):
    rig = Rig(broker_url, site_id, duration_ms=500)
    await rig.start()
    try:
        rig.send(AlarmCommand(alarm_id="a1", items=[ITEM], expires_at=expires_in(5)))
        await until(lambda: rig.sim.coil("light"), what="relays on")
        await rig.sim.cut_link()  # the module keeps its outputs; the controller cannot switch them off
        await until(lambda: any(not state.alarm_active and state.alarms_sounded == 1 for state in rig.states),
                    what="alarm over while the link is down")
        assert rig.sim.coil("light"), "still on inside the unreachable module"
        await rig.sim.restore_link()
        await until(lambda: not rig.sim.coil("light") and not rig.sim.coil("buzzer"), timeout_s=15,
                    what="relays switched off after the link returns")
    finally:
        await rig.close()
