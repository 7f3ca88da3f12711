from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gate_controller.modbus import LinkTiming, ModbusGateIo
from gate_controller.profile import load_gate_profile
from gate_controller.simulator import CoilWrite, GateIoSimulator, register_map_size

REPO_ROOT = Path(__file__).resolve().parents[2]
TIMING = LinkTiming(timeout_s=0.5, retries=1, reconnect_delay_s=0)


def test_register_map_covers_every_point_of_the_profile() -> None:
    size = register_map_size(load_gate_profile("moxa-e1214"))
    assert size.coils == 2 and size.discrete_inputs == 2
    assert size.input_registers == 0x0030 + 1  # counters at 0x10-0x13, DI word at 0x30
    assert size.holding_registers == 0


def test_counter_counts_breaks_not_samples() -> None:
    simulator = GateIoSimulator(load_gate_profile("moxa-e1214"))
    for broken in (True, True, False, True, False, False):
        simulator.set_beam("beam_a", broken)
    assert simulator.counter("beam_a") == 2 and simulator.counter("beam_b") == 0
    assert simulator.beam("beam_a") is False


def test_port_is_unknown_before_start() -> None:
    simulator = GateIoSimulator(load_gate_profile("moxa-e1214"))
    with pytest.raises(RuntimeError, match="not started"):
        _ = simulator.port


async def test_coil_writes_history_names_roles_and_keeps_order() -> None:
    simulator = GateIoSimulator(load_gate_profile("advantech-adam6060"))
    await simulator.start()
    io = ModbusGateIo.tcp(simulator.profile, "127.0.0.1", simulator.port, timing=TIMING)
    try:
        await io.set_outputs(light=True)
        await io.set_outputs(buzzer=True)
        await io.set_outputs(light=False, buzzer=False)
        assert [(w.target, w.value) for w in simulator.coil_writes] == [
            ("light", True), ("buzzer", True), ("light", False), ("buzzer", False)
        ]
        assert all(isinstance(w, CoilWrite) for w in simulator.coil_writes)
        assert simulator.coil_target(0x15) == 0x15  # an unwired relay is reported by address
    finally:
        await io.close()
        await simulator.stop()


async def test_cut_and_restore_keep_port_and_state() -> None:
    simulator = GateIoSimulator(load_gate_profile("moxa-e1214"))
    await simulator.start()
    io = ModbusGateIo.tcp(simulator.profile, "127.0.0.1", simulator.port, timing=TIMING)
    try:
        await io.set_outputs(light=True)
        port = simulator.port
        await simulator.cut_link()
        assert not simulator.running
        simulator.set_beam("beam_b", True)  # the world goes on while the cable is out
        await simulator.restore_link()
        assert simulator.running and simulator.port == port
        sample = await io.read_beams()
        assert sample.beam_b is True
        assert await io.read_outputs() == {"light": True, "buzzer": False}
    finally:
        await io.close()
        await simulator.stop()


async def test_unit_id_override() -> None:
    profile = load_gate_profile("advantech-adam6060")
    simulator = GateIoSimulator(profile, unit_id=0)  # old ADAM firmware answers on unit 0
    await simulator.start()
    io = ModbusGateIo.tcp(profile, "127.0.0.1", simulator.port, unit_id=0, timing=TIMING)
    try:
        await io.set_outputs(light=True)
        assert simulator.coil("light") is True
    finally:
        await io.close()
        await simulator.stop()


def _read_line(stream, deadline: float) -> str:
    selector = selectors.DefaultSelector()
    selector.register(stream, selectors.EVENT_READ)
    try:
        while time.monotonic() < deadline:
            if selector.select(timeout=0.1):
                return stream.readline()
        raise AssertionError("simulator printed nothing before the deadline")
    finally:
        selector.close()


async def test_cli_runner_prints_ready_serves_and_stops_on_sigterm() -> None:
    code = (
        "import logging, sys; logging.basicConfig(level=logging.INFO, stream=sys.stderr);"
        "from gate_controller.simulator import run_simulator; run_simulator('moxa-e1214', 0)"
    )
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO_ROOT, env=env
    )
    try:
        ready = json.loads(_read_line(process.stdout, time.monotonic() + 20))
        assert ready["event"] == "ready" and ready["port"] > 0
        io = ModbusGateIo.tcp(load_gate_profile("moxa-e1214"), "127.0.0.1", ready["port"], timing=TIMING)
        try:
            await io.set_outputs(light=True)
            assert await io.read_outputs() == {"light": True, "buzzer": False}
        finally:
            await io.close()
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=20)
        assert process.returncode == 0, stderr
        assert "light -> ON" in stderr and "stopped" in stderr
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
