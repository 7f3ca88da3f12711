"""The gate fails safe, end to end, through the real processes started with the ``openshelf`` CLI.

A real Mosquitto with one user per device and the generated ACL; the Modbus I/O
simulator behind a TCP relay whose "cable" the test pulls; the FEIG reader
simulator; backend, gate controller and reader service; scripted patrons
(``openshelf sim walk``). One stack serves the whole module, and its tests run in
order: the backend is killed in the first one and stays dead.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from openshelf.broker import write_mosquitto_files
from openshelf.contract import (
    Channel, GateAlarmEvent, GateLinkState, GateState, Kind, PassageDirection, PassageEvent, topic,
)
from openshelf.demo import DEMO_GATE, DEMO_READER, demo_site
from openshelf.demo_catalog import tag_uid_for
from openshelf.mqtt import MqttLink
from openshelf.site import load_site
from tests.helpers import MOSQUITTO_RUN_AS, Mosquitto, Proc, free_port, wait_for

pytestmark = pytest.mark.e2e

ALARM_MS = 2000


class CuttableRelay:
    """A TCP relay between the gate and its I/O module: ``cut()`` pulls the cable, ``restore()`` plugs it back.

    The module keeps its relay outputs while the cable is out, exactly like a real one.
    """

    def __init__(self, listen_port: int, target_port: int) -> None:
        self.listen_port = listen_port
        self.target_port = target_port
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="e2e-modbus-relay", daemon=True)
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.StreamWriter] = set()

    def start(self) -> CuttableRelay:
        self._thread.start()
        self.restore()
        return self

    def cut(self) -> None:
        self._run(self._cut())

    def restore(self) -> None:
        self._run(self._listen())

    def stop(self) -> None:
        self.cut()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def _run(self, coroutine) -> None:
        asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(10)

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.listen_port, reuse_address=True)

    async def _cut(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._connections):
            writer.transport.abort()  # a reset, as when the cable is pulled mid-request
        self._connections.clear()

    async def _relay(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            module_reader, module_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            client_writer.transport.abort()
            return
        self._connections |= {client_writer, module_writer}
        await asyncio.gather(self._pipe(client_reader, module_writer), self._pipe(module_reader, client_writer))
        self._connections -= {client_writer, module_writer}

    @staticmethod
    async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while data := await source.read(4096):
                sink.write(data)
                await sink.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            sink.transport.abort()


class GateStack:
    """Broker, simulators, backend, gate controller and reader service of one gate."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.module_port = free_port()  # the simulated I/O module
        relay_port = free_port()  # what the gate is configured to reach
        broker_port = free_port()
        site = demo_site(broker_url=f"mqtt://127.0.0.1:{broker_port}", http_port=free_port(),
                         modbus_port=relay_port, reader_port=free_port())
        site["site"] = f"t{uuid.uuid4().hex[:10]}"
        site["cameras"] = []
        site["gates"][0]["alarm_duration_ms"] = ALARM_MS
        self.site_path = tmp_path / "site.yaml"
        self.site_path.write_text(yaml.safe_dump(site, allow_unicode=True), encoding="utf-8")
        self.site = load_site(self.site_path)
        conf = write_mosquitto_files(self.site, tmp_path / "broker", port=broker_port, persistent=False,
                                     run_as=MOSQUITTO_RUN_AS)
        self.broker = Mosquitto(tmp_path, conf=conf, port=broker_port)
        self.relay = CuttableRelay(relay_port, self.module_port)
        self.procs: dict[str, Proc] = {}

    def start(self) -> GateStack:
        self.broker.start()
        self.relay.start()
        site = str(self.site_path)
        self._proc("sim-gate-io", "sim", "gate-io", "--site", site, "--device", DEMO_GATE,
                   "--port", str(self.module_port))
        self._proc("sim-reader", "sim", "reader", "--site", site, "--device", DEMO_READER)
        self._proc("backend", "backend", "--site", site)
        self._proc("gate", "gate", "--site", site, "--device", DEMO_GATE)
        self._proc("rfid", "rfid", "run", "--site", site, "--device", DEMO_READER)
        return self

    def _proc(self, name: str, *args: str) -> None:
        self.procs[name] = Proc(name, list(args), self.tmp / f"{name}.log").start(timeout_s=60)

    def stop(self) -> dict[str, int]:
        codes = {name: proc.stop() for name, proc in reversed(list(self.procs.items()))}
        self.relay.stop()
        self.broker.stop()
        return codes

    def walk(self, *items: str, direction: str = "out", tailgate: bool = False) -> None:
        args = ["sim", "walk", "--site", str(self.site_path), "--dwell", "0.6", "--direction", direction]
        args += [arg for item in items for arg in ("--item", item)] or ["--no-items"]
        if tailgate:
            args.append("--tailgate")
        walker = Proc(f"walk-{'-'.join(items) or 'empty'}", args, self.tmp / "walk.log").start(wait_ready=False)
        assert walker.popen is not None
        walker.popen.wait(30)
        assert walker.stop() == 0, walker.log_text()

    def coils(self) -> dict[str, bool]:
        """The relays as the I/O module holds them (read directly, not through the relay)."""
        from gate_controller.modbus import ModbusGateIo
        from gate_controller.profile import load_gate_profile

        async def read() -> dict[str, bool]:
            io = ModbusGateIo.tcp(load_gate_profile("moxa-e1214"), "127.0.0.1", self.module_port)
            try:
                await io.connect()
                return await io.read_outputs()
            finally:
                await io.close()

        return asyncio.run(read())


class Watcher:
    """Everything the gate publishes, as the backend would receive it."""

    def __init__(self, stack: GateStack) -> None:
        site = stack.site
        self.alarms: list[GateAlarmEvent] = []
        self.passages: list[PassageEvent] = []
        self.states: list[GateState] = []
        self.link = MqttLink(site.broker, client_id=f"{site.site}-e2e-watch", username=site.backend.id,
                             password=site.secret_of(site.backend.id))
        for name, model, sink in (("alarm", GateAlarmEvent, self.alarms), ("passage", PassageEvent, self.passages)):
            self.link.subscribe(topic(site.site, Kind.GATE, DEMO_GATE, Channel.EVENT, name), model,
                                lambda parts, event, sink=sink: sink.append(event))
        self.link.subscribe(topic(site.site, Kind.GATE, DEMO_GATE, Channel.STATE), GateState,
                            lambda parts, state: self.states.append(state))
        assert self.link.start(10), "watcher cannot reach the broker"
        wait_for(lambda: self.states, what="the gate's retained state")

    def alarms_for(self, item_id: str) -> list[GateAlarmEvent]:
        uid = tag_uid_for(item_id)
        return [alarm for alarm in self.alarms if any(item.uid == uid for item in alarm.items)]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GateStack]:
    running = GateStack(tmp_path_factory.mktemp("gate-failsafe")).start()
    yield running
    codes = running.stop()
    assert all(code == 0 for code in codes.values()), f"unclean exits: {codes}"
    for name, proc in running.procs.items():
        assert "Traceback" not in proc.log_text(), f"{name} logged a traceback:\n{proc.log_text()[-3000:]}"


@pytest.fixture
def watcher(stack: GateStack) -> Iterator[Watcher]:
    watching = Watcher(stack)
    yield watching
    watching.link.stop()


def test_backend_killed_secured_item_alarms_locally_and_loaned_item_does_not(stack: GateStack, watcher: Watcher):
    stack.walk("I0003")  # backend alive: one alarm, whoever decides first
    wait_for(lambda: watcher.alarms_for("I0003"), timeout_s=20, what="alarm for I0003")

    stack.procs["backend"].kill()
    stack.walk("I0002")  # on loan: AFI 0xC2
    stack.walk("I0004")  # not on loan: AFI 0x07; decided after I0002, so it is the causal barrier
    local = wait_for(lambda: watcher.alarms_for("I0004"), timeout_s=20, what="local alarm for I0004")[0]
    assert stack.coils()["light"], "the alarm light is on"
    assert local.decided_locally and local.outputs_ok
    assert [item.reason.value for item in local.items] == ["secured_tag"]
    assert not watcher.alarms_for("I0002"), "a loaned item must not alarm"
    assert len(watcher.alarms_for("I0003")) == 1, "one alarm per read, never two"
    wait_for(lambda: not any(stack.coils().values()), timeout_s=10, what="relays off after the alarm")


def test_modbus_link_cut_and_restored_leaves_nothing_on_and_alarms_resume(stack: GateStack, watcher: Watcher):
    stack.walk("I0006")
    wait_for(lambda: stack.coils()["light"], timeout_s=20, what="alarm light on")
    stack.relay.cut()  # the module keeps its relays on; the gate cannot reach it to switch them off
    wait_for(lambda: any(state.io_link is GateLinkState.DOWN and not state.alarm_active for state in watcher.states),
             timeout_s=15, what="the gate reporting the link down and the alarm over")
    assert stack.coils()["light"], "still on inside the unreachable module"

    stack.relay.restore()
    wait_for(lambda: not any(stack.coils().values()), timeout_s=20, what="relays switched off after the cut")
    wait_for(lambda: watcher.states[-1].io_link is GateLinkState.UP, timeout_s=10, what="link reported up")

    stack.walk("I0007")
    wait_for(lambda: stack.coils()["light"], timeout_s=20, what="alarms resume after the cut")
    assert watcher.alarms_for("I0007")[-1].outputs_ok
    wait_for(lambda: not any(stack.coils().values()), timeout_s=10, what="relays off after the alarm")


def test_beam_sequences_give_entry_and_exit_counts(stack: GateStack, watcher: Watcher):
    before = watcher.states[-1]
    stack.walk(direction="in")
    stack.walk(tailgate=True)
    stack.walk("I0002")  # a loaned item, walking out
    wait_for(lambda: len(watcher.passages) >= 4, timeout_s=20, what="four passages")
    assert [passage.direction for passage in watcher.passages] == [
        PassageDirection.IN, PassageDirection.OUT, PassageDirection.OUT, PassageDirection.OUT]
    wait_for(lambda: (watcher.states[-1].entries - before.entries, watcher.states[-1].exits - before.exits) == (1, 3),
             timeout_s=10, what="entries and exits in the gate state")
    assert not watcher.alarms_for("I0002")
