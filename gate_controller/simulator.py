"""A fake gate I/O module: the profile's register map served over Modbus TCP.

Tests and demos point :class:`gate_controller.modbus.ModbusGateIo` at it exactly as at
a real Moxa or Advantech module. Beams are set from Python (``set_beam``) or played
from a script (:class:`BeamScript`, fed by ``openshelf sim walk`` over MQTT); relay
writes are recorded (``coil_writes``) and can be observed as they happen.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
from typing import TYPE_CHECKING, NamedTuple

from gate_controller.io import BEAM_ROLES, OUTPUT_ROLES, BeamRole, OutputRole
from gate_controller.modbus import CoilObserver, RegisterMapServer, RegisterMapSize, quiet_pymodbus_logs
from gate_controller.profile import GateIoProfile, load_gate_profile
from openshelf.contract import SimBeams, TopicParts

if TYPE_CHECKING:
    from openshelf.mqtt import MqttLink
    from openshelf.site import SiteConfig

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


# --------------------------------------------------------------------------- scripted patrons


class BeamScript:
    """Plays ``SimBeams`` step lists on a simulator, one list after the other (patrons queue up).

    Queued patrons keep ``gap_s`` between them, so that one patron's last "clear" and the
    next one's first "break" never fall on the same instant (which no gate could count).
    """

    def __init__(self, simulator: GateIoSimulator, gap_s: float = 0.3) -> None:
        self._simulator = simulator
        self._gap_s = gap_s
        self._queue: asyncio.Queue[SimBeams] = asyncio.Queue()
        self.played = 0

    def enqueue(self, parts: TopicParts | None, command: SimBeams) -> None:
        self._queue.put_nowait(command)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            command = await self._queue.get()
            at = loop.time()
            for step in command.steps:
                at += step.after_ms / 1000  # from the previous step, without drift from the sleeps
                await asyncio.sleep(max(0.0, at - loop.time()))
                self._simulator.set_beam(step.beam, step.broken)
            self.played += 1
            logger.info("gate I/O simulator: played %d beam step(s)", len(command.steps))
            await asyncio.sleep(self._gap_s)


# --------------------------------------------------------------------------- CLI entry point


def run_simulator(profile_name: str, port: int = 5020, host: str = "127.0.0.1", *,
                  site: SiteConfig | None = None, gate_id: str | None = None) -> None:
    """Serve the profile until SIGINT/SIGTERM (``openshelf sim gate-io``).

    With ``site`` and ``gate_id`` it also plays the beam scripts published for that gate
    (``sim/<gate_id>/cmd/beams``). Prints ``{"event": "ready", "port": N}`` on stdout once
    listening (and subscribed), then logs relay changes.
    """
    profile = load_gate_profile(profile_name)
    asyncio.run(_serve_until_signal(profile, host, port, site, gate_id))


async def _serve_until_signal(profile: GateIoProfile, host: str, port: int, site: SiteConfig | None,
                              gate_id: str | None) -> None:
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
    script = BeamScript(simulator)
    player = loop.create_task(script.run())
    link = await _subscribe_beams(site, gate_id, script, loop) if site is not None and gate_id else None
    try:
        logger.info("gate I/O simulator: %s on %s:%d", profile.model, host, simulator.port)
        sys.stdout.write(json.dumps({"event": "ready", "port": simulator.port}) + "\n")
        sys.stdout.flush()
        await stop.wait()
    finally:
        player.cancel()
        if link is not None:
            await asyncio.to_thread(link.stop)
        await simulator.stop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        logger.info("gate I/O simulator: stopped")


async def _subscribe_beams(site: SiteConfig, gate_id: str, script: BeamScript,
                          loop: asyncio.AbstractEventLoop) -> MqttLink:
    from openshelf.contract import Channel, Kind, topic  # imported late: MQTT is optional here
    from openshelf.mqtt import to_loop
    from openshelf.runtime import device_link

    link = device_link(site, Kind.SIM, f"sim-{gate_id}")
    beams = topic(site.site, Kind.SIM, gate_id, Channel.CMD, "beams", root=site.broker.root)
    link.subscribe(beams, SimBeams, to_loop(loop, script.enqueue))
    if not await asyncio.to_thread(link.start, 10.0):
        logger.warning("gate I/O simulator: broker not reachable yet; beam scripts play once it is")
    return link
