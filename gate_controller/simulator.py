"""A fake gate I/O module: the profile's register map served over Modbus TCP.

Tests and demos point :class:`gate_controller.modbus.ModbusGateIo` at it exactly as at
a real Moxa or Advantech module. Beams are set from Python (``set_beam``), relay
writes are recorded (``coil_writes``) and can be observed as they happen.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
from typing import NamedTuple

from gate_controller.io import BEAM_ROLES, OUTPUT_ROLES, BeamRole, OutputRole
from gate_controller.modbus import CoilObserver, RegisterMapServer, RegisterMapSize, quiet_pymodbus_logs
from gate_controller.profile import GateIoProfile, load_gate_profile

logger = logging.getLogger(__name__)


class CoilWrite(NamedTuple):
    target: str | int  # the output role ("light", "buzzer") or the bare coil address
    value: bool
    monotonic_ns: int


def register_map_size(profile: GateIoProfile) -> RegisterMapSize:
    """Tables just large enough for every point the profile uses."""
    highest = {"coil": -1, "discrete_input": -1, "input_register": -1, "holding_register": -1}
    for table, address, _field in profile.point_uses():
        highest[table] = max(highest[table], address)
    return RegisterMapSize(
        coils=highest["coil"] + 1,
        discrete_inputs=highest["discrete_input"] + 1,
        input_registers=highest["input_register"] + 1,
        holding_registers=highest["holding_register"] + 1,
    )


class GateIoSimulator:
    def __init__(self, profile: GateIoProfile, host: str = "127.0.0.1", port: int = 0, unit_id: int | None = None):
        self.profile = profile
        self.coil_writes: list[CoilWrite] = []
        self._roles_by_coil = {profile.output(role).address: role for role in OUTPUT_ROLES}
        self._broken: dict[BeamRole, bool] = {beam: False for beam in BEAM_ROLES}
        self._counts: dict[BeamRole, int] = {beam: 0 for beam in BEAM_ROLES}
        input_coils = [profile.input(beam).address for beam in BEAM_ROLES if profile.input(beam).table == "coil"]
        self._server = RegisterMapServer(
            register_map_size(profile),
            host=host,
            port=port,
            unit_id=profile.defaults.unit_id if unit_id is None else unit_id,
            read_only_coils=input_coils,
            on_coil_write=self._record_write,
        )
        for beam in BEAM_ROLES:
            self._write_beam(beam)

    # ---- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        await self._server.start()

    async def stop(self) -> None:
        await self._server.stop()

    async def cut_link(self) -> None:
        """Stop answering, like a module whose cable was pulled (existing connections close)."""
        await self._server.stop()

    async def restore_link(self) -> None:
        """Listen again on the same port."""
        await self._server.start()

    @property
    def port(self) -> int:
        return self._server.port

    @property
    def running(self) -> bool:
        return self._server.running

    # ---- relays -----------------------------------------------------------------------------

    def coil(self, role: OutputRole) -> bool:
        return self._server.get_bit("coil", self.profile.output(role).address)

    def outputs(self) -> dict[str, bool]:
        return {role: self.coil(role) for role in OUTPUT_ROLES}

    def add_observer(self, observer: CoilObserver) -> None:
        """``observer(address, value, monotonic_ns)`` runs for every coil a client writes."""
        self._server.add_coil_observer(observer)

    def remove_observer(self, observer: CoilObserver) -> None:
        self._server.remove_coil_observer(observer)

    def coil_target(self, address: int) -> str | int:
        """The output role wired to a coil address, or the address if none is."""
        return self._roles_by_coil.get(address, address)

    def _record_write(self, address: int, value: bool, stamp: int) -> None:
        self.coil_writes.append(CoilWrite(self.coil_target(address), value, stamp))

    # ---- beams --------------------------------------------------------------------------------

    def set_beam(self, role: BeamRole, broken: bool) -> None:
        """Break or clear a beam; the register shows the bit the profile's polarity implies."""
        if broken and not self._broken[role]:
            self._counts[role] = (self._counts[role] + 1) & 0xFFFFFFFF
        self._broken[role] = broken
        self._write_beam(role)

    def beam(self, role: BeamRole) -> bool:
        return self._broken[role]

    def counter(self, role: BeamRole) -> int:
        return self._counts[role]

    def set_counter(self, role: BeamRole, value: int) -> None:
        """Preset a hardware counter (e.g. near a 16-bit boundary to check word order)."""
        self._counts[role] = value & 0xFFFFFFFF
        self._write_beam(role)

    def _write_beam(self, role: BeamRole) -> None:
        point = self.profile.input(role)
        self._server.set_bit(point.table, point.address, point.raw_for(self._broken[role]))
        counters = self.profile.counters
        if counters is not None:
            base = getattr(counters, role)
            for offset, word in enumerate(counters.split(self._counts[role])):
                self._server.set_register(counters.table, base + offset, word)
        self._write_di_word()

    def _write_di_word(self) -> None:
        di_word = self.profile.di_word
        if di_word is None:
            return
        word = 0
        for beam in BEAM_ROLES:
            point = self.profile.input(beam)
            if point.raw_for(self._broken[beam]):
                word |= 1 << point.address
        self._server.set_register(di_word.table, di_word.address, word)


# --------------------------------------------------------------------------- CLI entry point


def run_simulator(profile_name: str, port: int = 5020, host: str = "127.0.0.1") -> None:
    """Serve the profile until SIGINT/SIGTERM (``openshelf sim gate-io``).

    Prints ``{"event": "ready", "port": N}`` on stdout once listening, then logs relay changes.
    """
    profile = load_gate_profile(profile_name)
    asyncio.run(_serve_until_signal(profile, host, port))


async def _serve_until_signal(profile: GateIoProfile, host: str, port: int) -> None:
    quiet_pymodbus_logs()
    simulator = GateIoSimulator(profile, host=host, port=port)
    last: dict[str | int, bool] = {}

    def log_change(address: int, value: bool, _stamp: int) -> None:
        target = simulator.coil_target(address)
        if last.get(target) != value:
            last[target] = value
            logger.info("gate I/O simulator: %s -> %s", target, "ON" if value else "off")

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    simulator.add_observer(log_change)
    await simulator.start()
    try:
        logger.info("gate I/O simulator: %s on %s:%d", profile.model, host, simulator.port)
        sys.stdout.write(json.dumps({"event": "ready", "port": simulator.port}) + "\n")
        sys.stdout.flush()
        await stop.wait()
    finally:
        await simulator.stop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        logger.info("gate I/O simulator: stopped")
