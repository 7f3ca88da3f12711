"""The gate alarm benchmark: publish → relay on, through the real processes.

The benchmark plays the gate readers (it publishes ``tag_arrived`` events as the
reader service would) and hosts the Modbus I/O module simulators, whose coil
write observer timestamps each relay switching on. Everything between — broker,
backend decision, gate controller, Modbus TCP — runs as the real processes.
Each gate turns one alarm command into exactly one "relays on" write, so the
n-th alarm sent to a gate is matched with the n-th "on" write that gate sees.
"""

from __future__ import annotations

import asyncio
import shutil
import statistics
import tempfile
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import yaml

from openshelf.contract import Channel, Kind, TagEvent, topic
from openshelf.demo import demo_site
from openshelf.demo_catalog import DEMO_ITEMS, tag_uid_for
from openshelf.mqtt import MqttLink
from openshelf.site import BrokerSettings
from openshelf.supervisor import Child, Supervisor

FLOOR_SAMPLES = 500
AFI_SECURED = 0x07
AFI_ON_LOAN = 0xC2


@dataclass(frozen=True)
class GateBenchOptions:
    rate: float = 1000.0
    seconds: float = 5.0
    gates: int = 1
    alarm_share: float = 0.1
    broker: str = "auto"


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))
    return ordered[index]


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ------------------------------------------------------------------ Modbus simulators in a thread


class SimulatorHost:
    """Runs one GateIoSimulator per gate on a private event loop; records "on" writes per gate."""

    def __init__(self, gates: int) -> None:
        from gate_controller.profile import load_gate_profile

        self._profile = load_gate_profile("moxa-e1214")
        self._light = self._profile.output("light").address
        self._count = gates
        self.on_writes: dict[int, deque[int]] = defaultdict(deque)
        self.ports: list[int] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="bench-modbus", daemon=True)
        self._sims: list[Any] = []

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(30)

    async def _start(self) -> None:
        from gate_controller.simulator import GateIoSimulator

        for index in range(self._count):
            sim = GateIoSimulator(self._profile, port=0)
            sim.add_observer(self._observer(index))
            await sim.start()
            self._sims.append(sim)
            self.ports.append(sim.port)

    def _observer(self, index: int):
        def observe(address: int, value: bool, stamp_ns: int) -> None:
            if address == self._light and value:
                self.on_writes[index].append(stamp_ns)
        return observe

    def modbus_floor(self, samples: int) -> list[float]:
        return asyncio.run_coroutine_threadsafe(self._modbus_floor(samples), self._loop).result(120)

    async def _modbus_floor(self, samples: int) -> list[float]:
        from gate_controller.modbus import ModbusGateIo

        io = ModbusGateIo.tcp(self._profile, "127.0.0.1", self.ports[0])
        await io.connect()
        timings = []
        for index in range(samples):
            started = time.perf_counter_ns()
            await io.set_outputs(light=bool(index % 2 == 0), buzzer=False)
            timings.append((time.perf_counter_ns() - started) / 1e6)
        await io.set_outputs(light=False, buzzer=False)
        await io.close()
        self.on_writes[0].clear()
        return timings

    def stop(self) -> None:
        async def stop_all() -> None:
            for sim in self._sims:
                await sim.stop()

        asyncio.run_coroutine_threadsafe(stop_all(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


# ------------------------------------------------------------------ broker


class BenchBroker:
    def __init__(self, kind: str, workdir: Path) -> None:
        self.port = _free_port()
        self.kind = "mosquitto" if kind == "mosquitto" or (kind == "auto" and shutil.which("mosquitto")) else "embedded"
        self._workdir = workdir
        self._process: Any = None
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
        import subprocess

        conf = self._workdir / "mosquitto.conf"
        conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\nset_tcp_nodelay true\n"
                        "max_queued_messages 100000\nmax_inflight_messages 0\npersistence false\n", encoding="utf-8")
        self._process = subprocess.Popen([shutil.which("mosquitto") or "mosquitto", "-c", str(conf)],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        import socket

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


# ------------------------------------------------------------------ the run


def _site(workdir: Path, broker_url: str, ports: list[int]) -> Path:
    site = demo_site(broker_url=broker_url, http_port=_free_port(), modbus_port=ports[0], reader_port=_free_port())
    site["site"] = f"bench{int(time.time())}"
    site["backend"]["gate_policy"] = {"debounce_s": 0}  # every read counts: the benchmark wants every alarm
    site["gates"] = [{"id": f"gate-{index + 1}", "secret": "demo-gate", "alarm_duration_ms": 100,
                      "io": {"profile": "moxa-e1214", "host": "127.0.0.1", "port": port}}
                     for index, port in enumerate(ports)]
    site["readers"] = [{"id": f"reader-gate-{index + 1}", "gate": f"gate-{index + 1}", "secret": "demo-reader",
                        "port": "socket://127.0.0.1:1"} for index in range(len(ports))]
    site["cameras"] = []
    path = workdir / "site.yaml"
    path.write_text(yaml.safe_dump(site, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def _broker_floor(url: str, site: str, samples: int) -> list[float]:
    """One hop through the broker: publish → the same process receives it, same payload size."""
    link = MqttLink(BrokerSettings(url=url), client_id=f"{site}-floor")
    arrivals: dict[str, int] = {}
    done = threading.Event()
    probe = topic(site, Kind.READER, "floor", Channel.EVENT, "tag_arrived")

    def on_event(parts, event: TagEvent) -> None:
        arrivals[event.event_id] = time.perf_counter_ns()
        if len(arrivals) >= samples:
            done.set()

    link.subscribe(probe, TagEvent, on_event)
    link.start()
    sent: dict[str, int] = {}
    for index in range(samples):
        event = TagEvent(reader_id="floor", uid=tag_uid_for("I0003"), item_id="I0003")
        sent[event.event_id] = time.perf_counter_ns()
        link.publish(probe, event)
        time.sleep(0.002)
    done.wait(10)
    link.stop()
    return [(arrivals[key] - sent[key]) / 1e6 for key in sent if key in arrivals]


def _reads(alarm_share: float) -> tuple[list[str], list[str]]:
    loaned = [tag_uid_for(item.item_id) for item in DEMO_ITEMS if item.on_loan_to and item.parts == 1]
    alarming = [tag_uid_for(item.item_id) for item in DEMO_ITEMS
                if not item.on_loan_to and not item.in_library_only and item.parts == 1]
    return loaned, alarming


def _publish_load(link: MqttLink, site: str, options: GateBenchOptions) -> tuple[dict[int, list[int]], int, float]:
    loaned, alarming = _reads(options.alarm_share)
    sent_alarms: dict[int, list[int]] = defaultdict(list)
    total = int(options.rate * options.seconds)
    interval_ns = int(1e9 / options.rate)
    every = max(1, round(1 / options.alarm_share)) if options.alarm_share > 0 else 0
    topics = [topic(site, Kind.READER, f"reader-gate-{index + 1}", Channel.EVENT, "tag_arrived")
              for index in range(options.gates)]
    started = time.perf_counter_ns()
    for index in range(total):
        gate = index % options.gates
        is_alarm = every and index % every == 0
        uid = alarming[index % len(alarming)] if is_alarm else loaned[index % len(loaned)]
        event = TagEvent(reader_id=f"reader-gate-{gate + 1}", gate_id=f"gate-{gate + 1}", uid=uid,
                         afi=AFI_SECURED if is_alarm else AFI_ON_LOAN)
        target = started + index * interval_ns
        while (now := time.perf_counter_ns()) < target:
            if target - now > 200_000:
                time.sleep((target - now - 100_000) / 1e9)
        stamp = time.monotonic_ns()
        link.publish(topics[gate], event)
        if is_alarm:
            sent_alarms[gate].append(stamp)
    elapsed = (time.perf_counter_ns() - started) / 1e9
    return sent_alarms, total, total / elapsed


def _match(sent: dict[int, list[int]], received: dict[int, deque[int]]) -> tuple[list[float], int]:
    latencies: list[float] = []
    missing = 0
    for gate, stamps in sent.items():
        ons = list(received.get(gate, ()))
        for index, stamp in enumerate(stamps):
            if index < len(ons):
                latencies.append((ons[index] - stamp) / 1e6)
            else:
                missing += 1
    return latencies, missing


def _rss_mb(pid: int | None) -> float:
    if pid is None:
        return 0.0
    try:
        return psutil.Process(pid).memory_info().rss / 2**20
    except psutil.Error:
        return 0.0


def run_gate_bench(options: GateBenchOptions) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="openshelf-bench-"))
    broker = BenchBroker(options.broker, workdir)
    sims = SimulatorHost(options.gates)
    supervisor = Supervisor()
    link: MqttLink | None = None
    try:
        broker.start()
        sims.start()
        site_path = _site(workdir, broker.url, sims.ports)
        site_id = yaml.safe_load(site_path.read_text(encoding="utf-8"))["site"]
        supervisor.start(Child("backend", ["backend", "--site", str(site_path)], workdir / "backend.log"))
        for index in range(options.gates):
            supervisor.start(Child(f"gate-{index + 1}", ["gate", "--site", str(site_path), "--device",
                                                          f"gate-{index + 1}"], workdir / f"gate-{index + 1}.log"))
        hop = _broker_floor(broker.url, site_id, FLOOR_SAMPLES)
        modbus = sims.modbus_floor(FLOOR_SAMPLES)
        link = MqttLink(BrokerSettings(url=broker.url), client_id=f"{site_id}-bench-readers")
        link.start()
        _warm_up(link, site_id, options, sims)
        sent, total, achieved = _publish_load(link, site_id, options)
        expected = sum(len(stamps) for stamps in sent.values())
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and sum(len(ons) for ons in sims.on_writes.values()) < expected:
            time.sleep(0.05)
        latencies, missing = _match(sent, sims.on_writes)
        memory = {child.name: _rss_mb(child.pid) for child in supervisor.children}
        memory["broker"] = _rss_mb(broker.pid)
        memory["total"] = sum(memory.values())
        path_floor = 2 * percentile(hop, 0.99) + percentile(modbus, 0.99)
        p99 = percentile(latencies, 0.99)
        return {
            "config": {"rate": options.rate, "seconds": options.seconds, "gates": options.gates,
                       "alarm_share": options.alarm_share, "broker": broker.kind, "reads": total},
            "achieved_rate": achieved,
            "alarms": {"sent": expected, "measured": len(latencies), "missing": missing,
                       "p50_ms": percentile(latencies, 0.5), "p99_ms": p99,
                       "max_ms": max(latencies) if latencies else float("nan"),
                       "mean_ms": statistics.fmean(latencies) if latencies else float("nan")},
            "floor": {"broker_hop_p50_ms": percentile(hop, 0.5), "broker_hop_p99_ms": percentile(hop, 0.99),
                      "modbus_write_p50_ms": percentile(modbus, 0.5), "modbus_write_p99_ms": percentile(modbus, 0.99),
                      "path_p99_ms": path_floor,
                      "note": "path floor = 2 broker hops (reader→backend, backend→gate) + 1 Modbus write"},
            "p99_over_floor": p99 / path_floor if path_floor else float("nan"),
            "memory_mb": memory,
        }
    finally:
        if link is not None:
            link.stop()
        supervisor.stop()
        sims.stop()
        broker.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def _warm_up(link: MqttLink, site_id: str, options: GateBenchOptions, sims: SimulatorHost) -> None:
    """One alarm per gate before measuring, so connections and caches are warm; then forget it."""
    _, alarming = _reads(options.alarm_share)
    for index in range(options.gates):
        event = TagEvent(reader_id=f"reader-gate-{index + 1}", gate_id=f"gate-{index + 1}", uid=alarming[0],
                         afi=AFI_SECURED)
        link.publish(topic(site_id, Kind.READER, f"reader-gate-{index + 1}", Channel.EVENT, "tag_arrived"), event)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(not sims.on_writes[index] for index in range(options.gates)):
        time.sleep(0.05)
    time.sleep(0.3)
    for index in range(options.gates):
        sims.on_writes[index].clear()
