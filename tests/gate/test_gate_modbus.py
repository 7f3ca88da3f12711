"""ModbusGateIo against a real pymodbus server (the simulator) on free loopback ports."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from gate_controller.io import GateIo, GateIoError, GateIoLinkDown
from gate_controller.modbus import (
    LinkTiming,
    ModbusGateIo,
    ReconnectBackoff,
    RegisterMapSize,
    RtuLink,
    serve_register_map,
)
from gate_controller.profile import GateIoProfile, load_gate_profile, parse_gate_profile
from gate_controller.simulator import GateIoSimulator
from openshelf.site import GateIoSettings

FAST_RETRY = LinkTiming(timeout_s=0.5, retries=1, reconnect_delay_s=0, reconnect_delay_max_s=0)
SHIPPED = ["moxa-e1214", "advantech-adam6060"]


def make_profile(**overrides: Any) -> GateIoProfile:
    data: dict[str, Any] = {
        "model": "Test module",
        "outputs": {"light": {"address": 0}, "buzzer": {"address": 1}},
        "inputs": {"beam_a": {"address": 0}, "beam_b": {"address": 1}},
    }
    for key, value in overrides.items():
        data[key] = value
    return parse_gate_profile(data, "test profile")


@pytest.fixture
async def rig() -> AsyncIterator[Callable[..., Awaitable[tuple[GateIoSimulator, ModbusGateIo]]]]:
    """Start simulator + driver pairs; everything is closed after the test."""
    started: list[tuple[GateIoSimulator, ModbusGateIo]] = []

    async def start(profile: GateIoProfile, timing: LinkTiming = FAST_RETRY) -> tuple[GateIoSimulator, ModbusGateIo]:
        simulator = GateIoSimulator(profile)
        await simulator.start()
        io = ModbusGateIo.tcp(profile, "127.0.0.1", simulator.port, timing=timing)
        started.append((simulator, io))
        await io.connect()
        return simulator, io

    yield start
    for simulator, io in started:
        await io.close()
        await simulator.stop()


@pytest.mark.parametrize("name", SHIPPED)
async def test_set_outputs_switches_the_modules_relays(rig, name: str) -> None:
    simulator, io = await rig(load_gate_profile(name))
    assert simulator.outputs() == {"light": False, "buzzer": False}

    await io.set_outputs(light=True)
    assert simulator.outputs() == {"light": True, "buzzer": False}
    await io.set_outputs(buzzer=True)
    assert simulator.outputs() == {"light": True, "buzzer": True}
    assert await io.read_outputs() == {"light": True, "buzzer": True}

    await io.set_outputs(light=False, buzzer=False)
    assert simulator.outputs() == {"light": False, "buzzer": False}
    assert await io.read_outputs() == {"light": False, "buzzer": False}
    assert io.link_up


@pytest.mark.parametrize("name", SHIPPED)
async def test_read_beams_reports_broken_beams(rig, name: str) -> None:
    simulator, io = await rig(load_gate_profile(name))
    before = await io.read_beams()
    assert (before.beam_a, before.beam_b) == (False, False)

    simulator.set_beam("beam_a", True)
    sample = await io.read_beams()
    assert (sample.beam_a, sample.beam_b) == (True, False)
    assert sample.at >= before.at

    simulator.set_beam("beam_b", True)
    simulator.set_beam("beam_a", False)
    sample = await io.read_beams()
    assert (sample.beam_a, sample.beam_b) == (False, True)


async def test_active_low_inputs_are_inverted(rig) -> None:
    profile = make_profile(
        inputs={"beam_a": {"address": 0, "polarity": "active_low"}, "beam_b": {"address": 1, "polarity": "active_high"}}
    )
    simulator, io = await rig(profile)
    clear = await io.read_beams()
    assert (clear.beam_a, clear.beam_b) == (False, False)
    simulator.set_beam("beam_a", True)
    simulator.set_beam("beam_b", True)
    sample = await io.read_beams()
    assert (sample.beam_a, sample.beam_b) == (True, True)


async def test_adjacent_relays_are_written_in_one_request(rig) -> None:
    simulator, io = await rig(load_gate_profile("moxa-e1214"))
    await io.set_outputs(light=True, buzzer=True)
    (light, buzzer) = simulator.coil_writes
    assert (light.target, light.value, buzzer.target, buzzer.value) == ("light", True, "buzzer", True)
    assert light.monotonic_ns == buzzer.monotonic_ns  # one FC15 request, handled once


async def test_distant_relays_are_written_one_by_one(rig) -> None:
    profile = make_profile(outputs={"light": {"address": 0}, "buzzer": {"address": 5, "fc": 15}})
    simulator, io = await rig(profile)
    await io.set_outputs(light=True, buzzer=True)
    assert simulator.outputs() == {"light": True, "buzzer": True}
    (light, buzzer) = simulator.coil_writes
    assert (light.target, buzzer.target) == ("light", "buzzer")
    assert light.monotonic_ns < buzzer.monotonic_ns  # two requests
    assert await io.read_outputs() == {"light": True, "buzzer": True}


async def test_set_outputs_with_nothing_to_do_sends_nothing(rig) -> None:
    simulator, io = await rig(load_gate_profile("moxa-e1214"))
    await io.set_outputs()
    assert simulator.coil_writes == []


async def test_coil_observer_sees_every_write_with_increasing_timestamps(rig) -> None:
    simulator, io = await rig(load_gate_profile("advantech-adam6060"))
    seen: list[tuple[int, bool, int]] = []
    simulator.add_observer(lambda address, value, stamp: seen.append((address, value, stamp)))

    for value in (True, False, True, False):
        await io.set_outputs(light=value)
    await io.set_outputs(buzzer=True)

    assert [(address, value) for address, value, _ in seen] == [
        (0x10, True), (0x10, False), (0x10, True), (0x10, False), (0x11, True)
    ]
    stamps = [stamp for _, _, stamp in seen]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)


async def test_a_failing_observer_does_not_break_the_module(rig) -> None:
    simulator, io = await rig(load_gate_profile("moxa-e1214"))

    def broken_observer(address: int, value: bool, stamp: int) -> None:
        raise RuntimeError("observer bug")

    simulator.add_observer(broken_observer)
    await io.set_outputs(light=True)
    assert simulator.coil("light") is True
    simulator.remove_observer(broken_observer)


@pytest.mark.parametrize(("name", "value"), [("moxa-e1214", 0x0001_0002), ("advantech-adam6060", 0x0003_FFFF)])
async def test_counters_decode_the_vendors_word_order(rig, name: str, value: int) -> None:
    simulator, io = await rig(load_gate_profile(name))
    simulator.set_counter("beam_a", value)
    simulator.set_beam("beam_b", True)
    assert await io.read_counters() == {"beam_a": value, "beam_b": 1}


async def test_di_word_has_bit_n_for_channel_n(rig) -> None:
    simulator, io = await rig(load_gate_profile("moxa-e1214"))
    simulator.set_beam("beam_b", True)
    assert await io.read_di_word() == 0b10


async def test_profile_without_counters_says_so(rig) -> None:
    _, io = await rig(make_profile())
    with pytest.raises(GateIoError, match="no counters"):
        await io.read_counters()


async def test_exception_reply_is_an_error_but_not_a_dead_link(rig) -> None:
    # a profile that puts the light on the ADAM's DI0 coil, which the module refuses to write
    adam, _ = await rig(load_gate_profile("advantech-adam6060"))
    wrong = ModbusGateIo.tcp(make_profile(), "127.0.0.1", adam.port, timing=FAST_RETRY)
    await wrong.connect()
    try:
        with pytest.raises(GateIoError, match="illegal_address") as info:
            await wrong.set_outputs(light=True)
        assert not isinstance(info.value, GateIoLinkDown)
        assert wrong.link_up
    finally:
        await wrong.close()


async def test_cut_link_raises_link_down_then_recovers_with_one_log_line_each(
    rig, caplog: pytest.LogCaptureFixture
) -> None:
    simulator, io = await rig(load_gate_profile("moxa-e1214"))
    await io.set_outputs(light=True)
    caplog.set_level(logging.INFO, logger="gate_controller.modbus")

    await simulator.cut_link()
    for _ in range(3):
        with pytest.raises(GateIoLinkDown):
            await io.read_beams()
        assert not io.link_up
    with pytest.raises(GateIoLinkDown):
        await io.set_outputs(light=False)

    await simulator.restore_link()
    simulator.set_beam("beam_a", True)
    sample = await io.read_beams()
    assert sample.beam_a is True and io.link_up
    await io.set_outputs(light=False)
    assert simulator.coil("light") is False

    records = [r for r in caplog.records if r.name == "gate_controller.modbus"]
    assert [r.levelname for r in records] == ["WARNING", "INFO"]
    assert "link down" in records[0].getMessage() and "link restored" in records[1].getMessage()


async def test_backoff_makes_calls_fail_fast_until_the_delay_has_passed(rig) -> None:
    slow_retry = LinkTiming(timeout_s=0.5, retries=1, reconnect_delay_s=30, reconnect_delay_max_s=60)
    simulator, io = await rig(load_gate_profile("moxa-e1214"), timing=slow_retry)
    await simulator.cut_link()
    with pytest.raises(GateIoLinkDown):
        await io.read_beams()
    await simulator.restore_link()
    with pytest.raises(GateIoLinkDown, match="next reconnect in"):
        await io.read_beams()  # the module is back, but we wait out the delay instead of hammering it
    await io.connect()  # an explicit connect ignores the delay
    assert io.link_up
    assert (await io.read_beams()).beam_a is False


class SilentModule:
    """Accepts Modbus TCP connections and swallows requests without ever answering."""

    def __init__(self, *, hang_up_after_first_request: bool = False) -> None:
        self.requests = 0
        self._hang_up = hang_up_after_first_request
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    async def __aenter__(self) -> SilentModule:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()
        await self._server.wait_closed()

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.append(writer)
        try:
            while True:
                header = await reader.readexactly(6)  # MBAP up to the length field
                await reader.readexactly(int.from_bytes(header[4:6], "big"))
                self.requests += 1
                if self._hang_up:
                    writer.close()
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            return


async def test_a_module_that_never_answers_gives_link_down_after_timeout_and_retries() -> None:
    profile = load_gate_profile("moxa-e1214")
    timing = LinkTiming(timeout_s=0.1, retries=1, reconnect_delay_s=0)
    async with SilentModule() as module:
        io = ModbusGateIo.tcp(profile, "127.0.0.1", module.port, timing=timing)
        await io.connect()
        try:
            async with asyncio.timeout(5):  # hang guard: pymodbus' defaults would take 12 s
                with pytest.raises(GateIoLinkDown, match="no answer in time|No response"):
                    await io.read_beams()
            assert module.requests == timing.retries + 1
            assert not io.link_up
        finally:
            await io.close()


async def test_a_connection_reset_mid_request_fails_at_once() -> None:
    profile = load_gate_profile("moxa-e1214")
    patient = LinkTiming(timeout_s=10, retries=1, reconnect_delay_s=0)  # waiting it out would take 20 s
    async with SilentModule(hang_up_after_first_request=True) as module:
        io = ModbusGateIo.tcp(profile, "127.0.0.1", module.port, timing=patient)
        await io.connect()
        try:
            async with asyncio.timeout(5):
                with pytest.raises(GateIoLinkDown, match="connection lost"):
                    await io.set_outputs(light=True)
            assert module.requests == 1 and not io.link_up
        finally:
            await io.close()


async def test_unreachable_module_on_connect() -> None:
    async with SilentModule() as module:
        port = module.port  # a port that was just free and is closed again below
    io = ModbusGateIo.tcp(load_gate_profile("moxa-e1214"), "127.0.0.1", port, timing=FAST_RETRY)
    with pytest.raises(GateIoLinkDown, match="cannot connect"):
        await io.connect()
    assert not io.link_up
    await io.close()


async def test_rtu_link_to_a_missing_serial_device_is_link_down(tmp_path) -> None:
    link = RtuLink(device=str(tmp_path / "ttyUSB-missing"), baudrate=19200, parity="E")
    io = ModbusGateIo(load_gate_profile("moxa-e1214"), link, timing=FAST_RETRY)
    with pytest.raises(GateIoLinkDown):
        await io.connect()
    assert not io.link_up
    await io.close()


async def test_calls_after_close_are_refused(rig) -> None:
    _, io = await rig(load_gate_profile("moxa-e1214"))
    await io.close()
    with pytest.raises(GateIoError, match="closed") as info:
        await io.read_beams()
    assert not isinstance(info.value, GateIoLinkDown)


async def test_built_from_site_settings(rig) -> None:
    simulator, _ = await rig(load_gate_profile("moxa-e1214"))
    settings = GateIoSettings(profile="moxa-e1214", host="127.0.0.1", port=simulator.port, unit=1, timeout_s=0.5)
    io = ModbusGateIo.from_settings(load_gate_profile(settings.profile), settings)
    assert isinstance(io, GateIo)
    await io.connect()
    try:
        await io.set_outputs(buzzer=True)
        assert simulator.coil("buzzer") is True
    finally:
        await io.close()


def test_rtu_settings_need_a_serial_port() -> None:
    settings = GateIoSettings(transport="rtu")
    with pytest.raises(GateIoError, match="serial_port"):
        ModbusGateIo.from_settings(load_gate_profile("moxa-e1214"), settings)


def test_backoff_doubles_up_to_the_cap_and_resets() -> None:
    backoff = ReconnectBackoff(first_s=0.1, max_s=0.3)
    assert backoff.ready(0.0)
    backoff.failed(10.0)
    assert not backoff.ready(10.05) and backoff.ready(10.1)
    backoff.failed(10.1)
    assert not backoff.ready(10.25) and backoff.ready(10.3)
    backoff.failed(10.3)
    backoff.failed(11.0)
    assert backoff.remaining(11.0) == pytest.approx(0.3)  # capped
    backoff.reset()
    assert backoff.ready(11.0)


async def test_register_map_server_serves_python_values_and_reports_coil_writes() -> None:
    writes: list[tuple[int, bool, int]] = []
    server = await serve_register_map(
        RegisterMapSize(coils=4, discrete_inputs=4, input_registers=4, holding_registers=4),
        on_coil_write=lambda address, value, stamp: writes.append((address, value, stamp)),
    )
    profile = make_profile(counters={"table": "holding_register", "word_order": "hi_lo", "beam_a": 0, "beam_b": 2})
    io = ModbusGateIo.tcp(profile, "127.0.0.1", server.port, timing=FAST_RETRY)
    try:
        server.set_bit("discrete_input", 1, True)
        server.set_register("holding_register", 2, 7)
        await io.connect()
        assert (await io.read_beams()).beam_b is True
        assert await io.read_counters() == {"beam_a": 0, "beam_b": 7 << 16}
        await io.set_outputs(buzzer=True)
        assert server.get_bit("coil", 1) is True
        assert [(address, value) for address, value, _ in writes] == [(1, True)]

        port = server.port
        await server.stop()
        assert not server.running
        await server.start()
        assert server.port == port and server.get_bit("coil", 1) is True
        with pytest.raises(ValueError):
            server.set_register("holding_register", 0, 70000)
    finally:
        await io.close()
        await server.stop()


async def test_active_low_means_the_module_reads_zero_while_broken() -> None:
    server = await serve_register_map(RegisterMapSize())
    profile = make_profile(
        inputs={"beam_a": {"address": 0, "polarity": "active_low"}, "beam_b": {"address": 1, "polarity": "active_low"}}
    )
    io = ModbusGateIo.tcp(profile, "127.0.0.1", server.port, timing=FAST_RETRY)
    try:
        server.set_bit("discrete_input", 0, True)  # beam A's sensor output energised: beam intact
        sample = await io.read_beams()  # beam B reads 0: broken
        assert (sample.beam_a, sample.beam_b) == (False, True)
    finally:
        await io.close()
        await server.stop()
