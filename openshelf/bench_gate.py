"""The gate alarm benchmark: tag published → alarm relay on, through the real processes.

The benchmark plays the gate readers (it publishes ``tag_arrived`` events as the
reader service would, one MQTT connection per reader) and hosts the Modbus I/O
module simulators in a process of their own, whose coil-write observer stamps
each relay switching on with ``time.monotonic_ns()`` (one clock for every process
on the machine). Everything between — broker, backend decision, gate
controller(s), Modbus TCP — runs as the real processes; by default all gates run
in one ``openshelf gate --all`` process.

Matching: each gate turns one alarm command into exactly one forced "relays on"
write, and the backend decides each gate's reads in order, so the n-th alarm read
sent to a gate is matched with the n-th "on" write that gate's module sees. That
holds while the backend answers within the gate's decision deadline; when it
does not, the gate alarms locally and groups reads, fewer "on" writes arrive,
and the report says so (``missing``, ``local_alarms``, ``matching``) and gives
the figures again over the gates where the pairing stayed exact (``exact_gates``).

Beside the end-to-end figures the report gives the transport floor measured in
the same run before the services start (one broker hop, one Modbus write), a
split of the path at the alarm command (seen by a probe subscriber), the CPU
share and resident memory of every process, and how busy the machine was —
on a shared 2-core machine an absolute number means little on its own.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import yaml

from openshelf.contract import AlarmCommand, Channel, GateAlarmEvent, Kind, TagEvent, TopicParts, topic
from openshelf.demo import demo_site
from openshelf.demo_catalog import DEMO_ITEMS, tag_uid_for
from openshelf.mqtt import MqttLink
from openshelf.site import BrokerSettings
from openshelf.supervisor import Child, Supervisor

AFI_SECURED = 0x07  # what the local decision alarms on: alarm reads carry it, so both deciders agree
AFI_ON_LOAN = 0xC2
READY_TIMEOUT_S = 60.0
QUIET_AFTER_LOAD_S = 1.5  # no new relay write for this long after the load: everything has arrived


@dataclass(frozen=True)
class GateBenchOptions:
    rate: float = 1000.0
    seconds: float = 5.0
    gates: int = 1
    alarm_share: float = 0.1
    broker: str = "auto"
    gate_processes: str = "one"  # "one": every gate in one process; "each": one process per gate
    floor_samples: int = 500
    settle_s: float = 10.0
    keep_workdir: bool = False  # keep the site file and every process's log (their path is in the report)
    beam_poll_ms: int = 50  # each gate polls its beams this often (the site default); 0: people counting off


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))
    return ordered[index]


def summary(values: list[float]) -> dict[str, float | int]:
    return {"n": len(values), "p50_ms": percentile(values, 0.5), "p99_ms": percentile(values, 0.99),
            "max_ms": max(values) if values else float("nan")}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ------------------------------------------------------------------ Modbus simulators (own process)


def serve_simulators(count: int) -> None:
    """Child process: ``count`` gate I/O simulators on one loop; stdin commands, JSON answers on stdout.

    Commands: ``count`` (on-writes so far), ``dump`` (every on-write stamp per gate),
    ``clear``, ``quit``. The first stdout line is ``{"event": "ready", "ports": [...]}``.
    """
    asyncio.run(_serve_simulators(count))


async def _serve_simulators(count: int) -> None:
    from gate_controller.modbus import quiet_pymodbus_logs
    from gate_controller.profile import load_gate_profile
    from gate_controller.simulator import GateIoSimulator

    quiet_pymodbus_logs()
    profile = load_gate_profile("moxa-e1214")
    light = profile.output("light").address
    on_writes: dict[int, list[int]] = defaultdict(list)
    sims = []
    for index in range(count):
        sim = GateIoSimulator(profile, port=0)

        def observe(address: int, value: bool, stamp_ns: int, index: int = index) -> None:
            if address == light and value:
                on_writes[index].append(stamp_ns)

        sim.add_observer(observe)
        await sim.start()
        sims.append(sim)
    _answer({"event": "ready", "ports": [sim.port for sim in sims]})
    loop = asyncio.get_running_loop()
    try:
        while True:
            line = (await loop.run_in_executor(None, sys.stdin.readline)).strip()
            if line in ("", "quit"):
                break
            if line == "count":
                _answer({"count": sum(len(stamps) for stamps in on_writes.values())})
            elif line == "dump":
                _answer({"on_writes": {str(index): stamps for index, stamps in on_writes.items()}})
            elif line == "clear":
                on_writes.clear()
                _answer({"cleared": True})
    finally:
        for sim in sims:
            await sim.stop()


def _answer(data: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(data) + "\n")
    sys.stdout.flush()


class SimulatorProcess:
    """The bench side of :func:`serve_simulators`."""

    def __init__(self, gates: int, log_path: Path) -> None:
        self._gates = gates
        self._log_path = log_path
        self._popen: subprocess.Popen[str] | None = None
        self._lock = threading.Lock()
        self.ports: list[int] = []

    def start(self) -> None:
        with self._log_path.open("ab") as log:
            self._popen = subprocess.Popen(
                [sys.executable, "-c",
                 f"from openshelf.bench_gate import serve_simulators; serve_simulators({self._gates})"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True,
            )
        self.ports = self._read()["ports"]

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen is not None else None

    def ask(self, command: str) -> dict[str, Any]:
        with self._lock:
            assert self._popen is not None and self._popen.stdin is not None
            self._popen.stdin.write(command + "\n")
            self._popen.stdin.flush()
            return self._read()

    def on_writes(self) -> dict[int, list[int]]:
        return {int(index): stamps for index, stamps in self.ask("dump")["on_writes"].items()}

    def _read(self) -> dict[str, Any]:
        assert self._popen is not None and self._popen.stdout is not None
        line = self._popen.stdout.readline()
        if not line:
            raise RuntimeError(f"the Modbus simulator process ended; see {self._log_path}")
        return dict(json.loads(line))

    def stop(self) -> None:
        if self._popen is None:
            return
        try:
            assert self._popen.stdin is not None
            self._popen.stdin.write("quit\n")
            self._popen.stdin.close()
            self._popen.wait(10)
        except (OSError, subprocess.TimeoutExpired, ValueError):
            self._popen.kill()
            self._popen.wait(5)
        self._popen = None


# ------------------------------------------------------------------ broker


class BenchBroker:
    def __init__(self, kind: str, workdir: Path) -> None:
        self.port = _free_port()
        self.kind = "mosquitto" if kind == "mosquitto" or (kind == "auto" and shutil.which("mosquitto")) else "embedded"
        self._workdir = workdir
        self._process: subprocess.Popen[bytes] | None = None
        self._embedded: Any = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        if self.kind == "embedded":
            from openshelf.broker import EmbeddedBroker

            self._embedded = EmbeddedBroker(port=self.port)
            self._embedded.start()
            return
        conf = self._workdir / "mosquitto.conf"
        # The production settings of `openshelf broker mosquitto-config`, without the ACL: the probe
        # subscriber must see every gate's commands.
        conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\nset_tcp_nodelay true\n"
                        "max_queued_messages 100000\nmax_inflight_messages 0\npersistence false\n", encoding="utf-8")
        self._process = subprocess.Popen([shutil.which("mosquitto") or "mosquitto", "-c", str(conf)],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not start")

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def stop(self) -> None:
        if self._embedded is not None:
            self._embedded.stop()
        if self._process is not None:
            self._process.terminate()
            self._process.wait(10)


# ------------------------------------------------------------------ site and floor


def _gate_id(index: int) -> str:
    return f"gate-{index + 1}"


def _reader_id(index: int) -> str:
    return f"reader-gate-{index + 1}"


def _write_site(workdir: Path, broker_url: str, ports: list[int], beam_poll_ms: int) -> tuple[Path, str]:
    site = demo_site(broker_url=broker_url, http_port=_free_port(), modbus_port=ports[0], reader_port=_free_port())
    site_id = f"bench{os.getpid()}{int(time.time()) % 100000}"
    site["site"] = site_id
    site["backend"]["gate_policy"] = {"debounce_s": 0}  # every read counts: the benchmark wants every alarm
    counting = {"count_people": False} if beam_poll_ms <= 0 else {"beam_poll_ms": beam_poll_ms}
    site["gates"] = [{"id": _gate_id(index), "secret": "demo-gate", "alarm_duration_ms": 100, **counting,
                      "io": {"profile": "moxa-e1214", "host": "127.0.0.1", "port": port}}
                     for index, port in enumerate(ports)]
    site["readers"] = [{"id": _reader_id(index), "gate": _gate_id(index), "secret": "demo-reader",
                        "port": "socket://127.0.0.1:1"} for index in range(len(ports))]
    site["cameras"] = []
    path = workdir / "site.yaml"
    path.write_text(yaml.safe_dump(site, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path, site_id


def _broker_floor(url: str, site_id: str, samples: int) -> list[float]:
    """One hop through the broker between two connections, with a tag read's payload (QoS 1, as the path)."""
    probe = topic(site_id, Kind.READER, "floor", Channel.EVENT, "tag_arrived")
    arrivals: dict[str, int] = {}
    done = threading.Event()

    def on_event(parts: TopicParts, event: TagEvent) -> None:
        arrivals[event.event_id] = time.monotonic_ns()
        if len(arrivals) >= samples:
            done.set()

    receiver = MqttLink(BrokerSettings(url=url), client_id=f"{site_id}-floor-rx")
    sender = MqttLink(BrokerSettings(url=url), client_id=f"{site_id}-floor-tx")
    receiver.subscribe(probe, TagEvent, on_event)
    receiver.start()
    sender.start()
    time.sleep(0.2)  # the subscription is in place
    sent: dict[str, int] = {}
    try:
        for _ in range(samples):
            event = TagEvent(reader_id="floor", uid=tag_uid_for("I0003"), item_id="I0003", afi=AFI_SECURED)
            sent[event.event_id] = time.monotonic_ns()
            sender.publish(probe, event)
            time.sleep(0.002)
        done.wait(10)
    finally:
        sender.stop()
        receiver.stop()
    return [(arrivals[key] - stamp) / 1e6 for key, stamp in sent.items() if key in arrivals]


def _modbus_floor(port: int, samples: int) -> list[float]:
    """One relay write from this process to a simulator in another, the way the gate writes them."""
    from gate_controller.modbus import ModbusGateIo, quiet_pymodbus_logs
    from gate_controller.profile import load_gate_profile

    async def measure() -> list[float]:
        io = ModbusGateIo.tcp(load_gate_profile("moxa-e1214"), "127.0.0.1", port)
        await io.connect()
        timings = []
        try:
            for index in range(samples):
                started = time.monotonic_ns()
                await io.set_outputs(light=index % 2 == 0, buzzer=False)
                timings.append((time.monotonic_ns() - started) / 1e6)
            await io.set_outputs(light=False, buzzer=False)
        finally:
            await io.close()
        return timings

    quiet_pymodbus_logs()
    return asyncio.run(measure())


# ------------------------------------------------------------------ the load


def _reads() -> tuple[list[str], list[str]]:
    loaned = [tag_uid_for(item.item_id) for item in DEMO_ITEMS if item.on_loan_to and item.parts == 1]
    alarming = [tag_uid_for(item.item_id) for item in DEMO_ITEMS
                if not item.on_loan_to and not item.in_library_only and item.parts == 1]
    return loaned, alarming


@dataclass
class LoadResult:
    sent_alarms: dict[int, list[int]] = field(default_factory=lambda: defaultdict(list))
    alarm_event_ids: dict[str, tuple[int, int]] = field(default_factory=dict)  # read event id → (gate, stamp)
    total: int = 0
    achieved_rate: float = 0.0
    lateness_ms: list[float] = field(default_factory=list)


def _plan_reads(options: GateBenchOptions) -> list[tuple[int, bool, TagEvent]]:
    """Every read of the run, made before it starts: (gate index, alarms?, event)."""
    loaned, alarming = _reads()
    every = max(1, round(1 / options.alarm_share)) if options.alarm_share > 0 else 0
    plan = []
    for index in range(int(options.rate * options.seconds)):
        gate, turn = index % options.gates, index // options.gates
        # every gate alarms on its own share of its reads, the gates staggered so alarms spread in time
        is_alarm = bool(every) and (turn + gate) % every == 0
        uid = alarming[index % len(alarming)] if is_alarm else loaned[index % len(loaned)]
        plan.append((gate, is_alarm, TagEvent(reader_id=_reader_id(gate), gate_id=_gate_id(gate), uid=uid,
                                              afi=AFI_SECURED if is_alarm else AFI_ON_LOAN)))
    return plan


async def _publish_load(links: list[MqttLink], site_id: str, options: GateBenchOptions) -> LoadResult:
    """Open-loop pacing: each read has its slot; sleep until it, publish at once when late (never a
    busy wait: the box has two cores). The stamp is taken just before the publish. The reader links
    run on this loop, so a publish costs no thread hand-over."""
    plan = _plan_reads(options)
    result = LoadResult()
    interval_ns = int(1e9 / options.rate)
    topics = [topic(site_id, Kind.READER, _reader_id(index), Channel.EVENT, "tag_arrived")
              for index in range(options.gates)]
    started = time.monotonic_ns()
    for index, (gate, is_alarm, event) in enumerate(plan):
        slot = started + index * interval_ns
        await asyncio.sleep(max(0, slot - time.monotonic_ns()) / 1e9)  # also lets the links write
        stamp = time.monotonic_ns()
        result.lateness_ms.append(max(0, stamp - slot) / 1e6)
        links[gate].publish(topics[gate], event)
        if is_alarm:
            result.sent_alarms[gate].append(stamp)
            result.alarm_event_ids[event.event_id] = (gate, stamp)
    elapsed = (time.monotonic_ns() - started) / 1e9
    result.total = len(plan)
    result.achieved_rate = result.total / elapsed if elapsed > 0 else float("nan")
    return result


class Probe:
    """Sees every alarm command and every gate alarm event, to split the path and spot local alarms."""

    def __init__(self, url: str, site_id: str) -> None:
        self.commands: dict[str, list[tuple[int, list[str]]]] = defaultdict(list)  # gate → (stamp, read ids)
        self.local_by_gate: dict[str, int] = defaultdict(int)
        self.gate_alarms = 0
        self._link = MqttLink(BrokerSettings(url=url), client_id=f"{site_id}-bench-probe")
        self._link.subscribe(topic(site_id, Kind.GATE, "+", Channel.CMD, "alarm", wildcards=True), AlarmCommand,
                             self._on_command)
        self._link.subscribe(topic(site_id, Kind.GATE, "+", Channel.EVENT, "alarm", wildcards=True),
                             GateAlarmEvent, self._on_gate_alarm)

    @property
    def link(self) -> MqttLink:
        return self._link

    def clear(self) -> None:
        self.commands.clear()
        self.local_by_gate.clear()
        self.gate_alarms = 0

    @property
    def local_alarms(self) -> int:
        return sum(self.local_by_gate.values())

    def _on_command(self, parts: TopicParts, command: AlarmCommand) -> None:
        self.commands[parts.device_id].append((time.monotonic_ns(), list(command.read_event_ids)))

    def _on_gate_alarm(self, parts: TopicParts, event: GateAlarmEvent) -> None:
        self.gate_alarms += 1
        if event.decided_locally:
            self.local_by_gate[parts.device_id] += 1


# ------------------------------------------------------------------ matching


@dataclass
class Matched:
    latencies: list[float] = field(default_factory=list)  # every gate, n-th alarm read <-> n-th "on" write
    exact: list[float] = field(default_factory=list)  # only gates where that pairing is certain
    command_to_relay: list[float] = field(default_factory=list)  # same gates: command seen -> relay on
    missing: int = 0
    per_gate: dict[str, int] = field(default_factory=dict)
    exact_gates: int = 0


def _match(sent: dict[int, list[int]], received: dict[int, list[int]], probe: Probe) -> Matched:
    """Pair each gate's alarm reads with its module's "on" writes, in order.

    The pairing is certain at a gate that never alarmed locally and lost no alarm: there the
    backend decided every read, in order, and each decision made exactly one "on" write.
    """
    result = Matched()
    for gate, stamps in sorted(sent.items()):
        gate_id = _gate_id(gate)
        ons = sorted(received.get(gate, ()))
        pairs = [(on - stamp) / 1e6 for stamp, on in zip(stamps, ons)]
        result.latencies += pairs
        result.missing += len(stamps) - len(pairs)
        result.per_gate[gate_id] = len(pairs)
        if len(ons) == len(stamps) and not probe.local_by_gate.get(gate_id):
            result.exact_gates += 1
            result.exact += pairs
            commands = [seen for seen, _ in probe.commands.get(gate_id, [])]
            if len(commands) == len(ons):
                result.command_to_relay += [(on - seen) / 1e6 for seen, on in zip(commands, ons)]
    return result


def _command_split(load: LoadResult, probe: Probe) -> list[float]:
    """Tag published → alarm command seen by the probe (backend decision + two broker hops)."""
    split: list[float] = []
    by_gate_fifo: dict[int, int] = defaultdict(int)
    for gate_id, commands in probe.commands.items():
        gate = int(gate_id.rsplit("-", 1)[1]) - 1
        for seen, read_ids in commands:
            known = [load.alarm_event_ids[read_id] for read_id in read_ids if read_id in load.alarm_event_ids]
            if known:
                split.append((seen - known[0][1]) / 1e6)
                continue
            index = by_gate_fifo[gate]  # a backend that names no reads: its n-th command answers the n-th alarm read
            by_gate_fifo[gate] += 1
            if index < len(load.sent_alarms[gate]):
                split.append((seen - load.sent_alarms[gate][index]) / 1e6)
    return split


# ------------------------------------------------------------------ processes and the machine


class Usage:
    """CPU share of each process and of the whole machine between ``begin`` and ``end``."""

    def __init__(self, processes: dict[str, int | None]) -> None:
        self._processes = {name: psutil.Process(pid) for name, pid in processes.items() if pid is not None}
        self._before: dict[str, float] = {}
        self._machine_before: list[int] = []
        self._started = 0.0
        self.cpu_percent: dict[str, float] = {}
        self.machine: dict[str, float] = {}

    def begin(self) -> None:
        self._started = time.monotonic()
        self._before = {name: _cpu_seconds(process) for name, process in self._processes.items()}
        self._machine_before = _proc_stat()

    def end(self) -> None:
        wall = max(1e-6, time.monotonic() - self._started)
        self.cpu_percent = {name: round(100 * (_cpu_seconds(process) - self._before[name]) / wall, 1)
                            for name, process in self._processes.items()}
        after = _proc_stat()
        delta = [b - a for a, b in zip(self._machine_before, after)]
        total = sum(delta) or 1
        cores = psutil.cpu_count() or 1
        busy = 100 * cores * (total - delta[3] - delta[4]) / total  # all but idle and iowait, in % of one core
        ours = sum(self.cpu_percent.values())
        self.machine = {"cores": cores, "busy_percent_of_one_core": round(busy, 1),
                        "benchmark_processes_percent_of_one_core": round(ours, 1),
                        "other_processes_percent_of_one_core": round(max(0.0, busy - ours), 1),
                        "steal_percent": round(100 * delta[7] / total, 1) if len(delta) > 7 else 0.0,
                        "load_average_1min": round(os.getloadavg()[0], 2)}


def _cpu_seconds(process: psutil.Process) -> float:
    try:
        times = process.cpu_times()
        return float(times.user + times.system)
    except psutil.Error:
        return 0.0


def _proc_stat() -> list[int]:
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            return [int(value) for value in stat.readline().split()[1:]]
    except OSError:
        return [0] * 8


def _descendants(processes: dict[str, int | None]) -> dict[str, int]:
    """Every process the services started themselves, named after their parent and module."""
    found: dict[str, int] = {}
    for name, pid in processes.items():
        try:
            children = psutil.Process(pid).children(recursive=True) if pid is not None else []
        except psutil.Error:
            continue
        for child in children:
            try:
                command = child.cmdline()
            except psutil.Error:
                continue
            module = command[command.index("-m") + 1] if "-m" in command[:-1] else child.name()
            found[f"{name} > {module} ({child.pid})"] = child.pid
    return found


def _rss_mb(pid: int | None) -> float:
    if pid is None:
        return 0.0
    try:
        return round(psutil.Process(pid).memory_info().rss / 2**20, 1)
    except psutil.Error:
        return 0.0


def _gate_children(site_path: Path, options: GateBenchOptions, workdir: Path) -> list[Child]:
    site = str(site_path)
    if options.gate_processes == "each":
        return [Child(_gate_id(index), ["gate", "--site", site, "--device", _gate_id(index)],
                      workdir / f"{_gate_id(index)}.log") for index in range(options.gates)]
    return [Child("gates", ["gate", "--site", site, "--all"], workdir / "gates.log")]


# ------------------------------------------------------------------ the run


def run_gate_bench(options: GateBenchOptions) -> dict[str, Any]:
    if options.gates < 1 or options.rate <= 0 or options.seconds <= 0:
        raise ValueError("gates must be >= 1, rate and seconds > 0")
    workdir = Path(tempfile.mkdtemp(prefix="openshelf-bench-"))
    sims = SimulatorProcess(options.gates, workdir / "modbus-sims.log")
    broker = BenchBroker(options.broker, workdir)
    supervisor = Supervisor()
    try:
        sims.start()
        broker.start()
        site_path, site_id = _write_site(workdir, broker.url, sims.ports, options.beam_poll_ms)
        hop = _broker_floor(broker.url, site_id, options.floor_samples)
        modbus = _modbus_floor(sims.ports[0], options.floor_samples)
        sims.ask("clear")
        supervisor.start(Child("backend", ["backend", "--site", str(site_path)], workdir / "backend.log"),
                         READY_TIMEOUT_S)
        for child in _gate_children(site_path, options, workdir):
            supervisor.start(child, READY_TIMEOUT_S)
        processes = {child.name: child.pid for child in supervisor.children}
        processes.update(_descendants(processes))  # e.g. the backend's gate-path process
        processes.update({"broker": broker.pid, "modbus-sims": sims.pid, "bench": os.getpid()})
        usage = Usage(processes)
        probe = Probe(broker.url, site_id)
        load = asyncio.run(_drive(options, broker.url, site_id, sims, probe, usage))
        memory = {name: _rss_mb(pid) for name, pid in processes.items()}
        memory["total_without_bench"] = round(sum(rss for name, rss in memory.items() if name != "bench"), 1)
        return _json_safe(_report(options, broker.kind, load, sims.on_writes(), probe, hop, modbus, usage, memory))
    finally:
        supervisor.stop()
        sims.stop()
        broker.stop()
        if options.keep_workdir:
            print(f"openshelf bench gate: logs kept in {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


async def _drive(options: GateBenchOptions, broker_url: str, site_id: str, sims: SimulatorProcess, probe: Probe,
                 usage: Usage) -> LoadResult:
    """Play the readers (one link each, as the reader services would) and time the load."""
    links = [MqttLink(BrokerSettings(url=broker_url), client_id=f"{site_id}-{_reader_id(index)}",
                      username=_reader_id(index), password="demo-reader") for index in range(options.gates)]
    for link in [*links, probe.link]:
        link.start_on_loop()
    try:
        deadline = time.monotonic() + 20
        while not all(link.connected.is_set() for link in [*links, probe.link]):
            if time.monotonic() > deadline:
                raise RuntimeError("the bench's reader links did not connect to the broker")
            await asyncio.sleep(0.05)
        await _warm_up(links, site_id, options, sims)
        probe.clear()
        usage.begin()
        load = await _publish_load(links, site_id, options)
        expected = sum(len(stamps) for stamps in load.sent_alarms.values())
        await asyncio.to_thread(_settle, sims, expected, options.settle_s)
        usage.end()
        return load
    finally:
        await asyncio.gather(*(link.aclose() for link in [*links, probe.link]))


async def _warm_up(links: list[MqttLink], site_id: str, options: GateBenchOptions, sims: SimulatorProcess) -> None:
    """One alarm per gate before measuring, so connections and caches are warm; then forget it."""
    _, alarming = _reads()
    for index, link in enumerate(links):
        event = TagEvent(reader_id=_reader_id(index), gate_id=_gate_id(index), uid=alarming[0], afi=AFI_SECURED)
        link.publish(topic(site_id, Kind.READER, _reader_id(index), Channel.EVENT, "tag_arrived"), event)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and len(await asyncio.to_thread(sims.on_writes)) < options.gates:
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.3)
    await asyncio.to_thread(sims.ask, "clear")


def _settle(sims: SimulatorProcess, expected: int, limit_s: float) -> None:
    """Wait for every expected "on" write, or until none came for a while (some will never come)."""
    deadline = time.monotonic() + limit_s
    last_count, last_change = -1, time.monotonic()
    while time.monotonic() < deadline:
        count = int(sims.ask("count")["count"])
        if count >= expected:
            return
        if count != last_count:
            last_count, last_change = count, time.monotonic()
        elif time.monotonic() - last_change > QUIET_AFTER_LOAD_S:
            return
        time.sleep(0.05)


def _report(options: GateBenchOptions, broker_kind: str, load: LoadResult, on_writes: dict[int, list[int]],
            probe: Probe, hop: list[float], modbus: list[float], usage: Usage,
            memory: dict[str, float]) -> dict[str, Any]:
    matched = _match(load.sent_alarms, on_writes, probe)
    latencies = matched.latencies
    expected = sum(len(stamps) for stamps in load.sent_alarms.values())
    split = _command_split(load, probe)
    path_floor = 2 * percentile(hop, 0.99) + percentile(modbus, 0.99)
    p99 = percentile(latencies, 0.99)
    exact = matched.exact_gates == options.gates
    return {
        "config": {"rate": options.rate, "seconds": options.seconds, "gates": options.gates,
                   "alarm_share": options.alarm_share, "broker": broker_kind, "reads": load.total,
                   "gate_processes": options.gate_processes, "beam_poll_ms": options.beam_poll_ms,
                   "python": sys.version.split()[0]},
        "achieved_rate": round(load.achieved_rate, 1),
        "publisher_lateness": summary(load.lateness_ms),
        "alarms": {"sent": expected, "measured": len(latencies), "missing": matched.missing,
                   "on_writes": sum(len(stamps) for stamps in on_writes.values()),
                   "local_alarms": probe.local_alarms, "gate_alarm_events": probe.gate_alarms,
                   "matching": "exact" if exact else
                   f"approximate: {options.gates - matched.exact_gates} gate(s) alarmed locally or lost alarms",
                   "p50_ms": percentile(latencies, 0.5), "p99_ms": p99,
                   "max_ms": max(latencies) if latencies else float("nan"),
                   "mean_ms": statistics.fmean(latencies) if latencies else float("nan"),
                   "measured_per_gate": matched.per_gate,
                   "exact_gates": {"gates": matched.exact_gates, **summary(matched.exact)}},
        "split": {"tag_to_command": summary(split),
                  "command_to_relay": summary(matched.command_to_relay),
                  "note": "tag_to_command: tag published -> alarm command seen by a probe subscriber (the "
                          "backend's share plus two broker hops); command_to_relay: that command -> the relay "
                          "write at the module (the gate's share), on the gates where pairing is exact"},
        "floor": {"broker_hop_p50_ms": percentile(hop, 0.5), "broker_hop_p99_ms": percentile(hop, 0.99),
                  "modbus_write_p50_ms": percentile(modbus, 0.5), "modbus_write_p99_ms": percentile(modbus, 0.99),
                  "path_p99_ms": path_floor,
                  "note": "measured in this run before the services start; path floor = 2 broker hops "
                          "(reader->backend, backend->gate) + 1 Modbus write, each at its p99"},
        "p99_over_floor": p99 / path_floor if path_floor else float("nan"),
        "cpu_percent_of_one_core": usage.cpu_percent,
        "machine": usage.machine,
        "memory_mb": memory,
    }


def _json_safe(value: Any) -> Any:
    """NaN (no sample) becomes null: strict JSON readers such as jq reject NaN."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json_safe(item) for item in value]
    return value


# ------------------------------------------------------------------ the demo's memory


def measure_demo_memory(*, settle_s: float = 5.0) -> dict[str, Any]:
    """Start ``openshelf demo --no-kiosk`` in a temporary folder, wait until it is ready and settled,
    and add up the resident memory of the demo process and every process under it."""
    workdir = Path(tempfile.mkdtemp(prefix="openshelf-demo-memory-"))
    demo = Child("demo", ["demo", "--no-kiosk", "--port", str(_free_port()), "--data-dir", str(workdir / "data")],
                 workdir / "demo.log", restart=False)
    try:
        demo.start()
        demo.wait_ready(180.0)
        time.sleep(settle_s)
        assert demo.pid is not None
        root = psutil.Process(demo.pid)
        processes = [root, *root.children(recursive=True)]
        rows = {}
        for process in processes:
            try:
                name = _demo_process_name(process)
                info = process.memory_full_info()
                rows[f"{name} ({process.pid})"] = {"rss_mb": round(info.rss / 2**20, 1),
                                                   "pss_mb": round(info.pss / 2**20, 1)}
            except psutil.Error:
                continue
        return {
            "processes": rows,
            "total_rss_mb": round(sum(row["rss_mb"] for row in rows.values()), 1),
            "total_pss_mb": round(sum(row["pss_mb"] for row in rows.values()), 1),
            "target_mb": 600,
            "note": "RSS counts shared library pages once per process (an upper bound); PSS shares them out",
        }
    finally:
        demo.stop(30.0)
        shutil.rmtree(workdir, ignore_errors=True)


def _demo_process_name(process: psutil.Process) -> str:
    """``openshelf sim gate-io --site … --device gate-1`` → ``sim gate-io gate-1``."""
    args = process.cmdline()
    if "-m" not in args or "openshelf" not in args:
        return Path(args[0]).name if args else process.name()
    tail = args[args.index("openshelf") + 1:]
    while tail[:1] == ["--log-level"]:
        tail = tail[2:]
    words = []
    for word in tail:
        if word.startswith("-"):
            break
        words.append(word)
    if "--device" in tail and tail.index("--device") + 1 < len(tail):
        words.append(tail[tail.index("--device") + 1])
    return " ".join(words) or "openshelf"
