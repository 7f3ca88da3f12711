"""``openshelf bench rfid``: decode speed, and tag placed → ``tag_arrived`` received through the real service.

The latency run puts the FEIG simulator on a pty in this process, starts
``openshelf rfid run`` on it as a subprocess, and times each new tag from the
moment it is placed in the simulated field to the moment its ``tag_arrived``
event reaches a subscriber through the broker. Tags are placed at a random phase
of the poll cycle, so the figure includes the wait for the next poll (up to one
poll interval): the target is p99 ≤ 2 poll intervals. Beside it, the run reports
the floor measured in the same run: one inventory round trip (Inventory + Reset
to Ready) and one tag identification (Get System Information + one read).
"""

from __future__ import annotations

import random
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from openshelf.bench_gate import BenchBroker, percentile
from openshelf.contract import Channel, Kind, TagEvent, TopicParts, topic
from openshelf.mqtt import MqttLink
from openshelf.site import BrokerSettings, ReaderSettings
from openshelf.supervisor import Child

from rfid.drivers.feig_serial import FeigReader
from rfid.drivers.profile import load_reader_profile
from rfid.identify import read_tag
from rfid.readersim import PtyTransport, SimulatedReader, VirtualTag
from rfid.readersim.bench import bench_inventory_roundtrip
from rfid.tagdata import encode_iso28560_3
from rfid.tagdata.bench import bench_decode

READER_ID = "bench-reader"
EVENT_TIMEOUT_S = 5.0
IDENTIFY_SAMPLES = 200


@dataclass(frozen=True)
class RfidBenchOptions:
    decode_n: int = 200_000
    samples: int = 100
    poll_interval_ms: int = 100
    broker: str = "auto"


def _uid(index: int) -> str:
    return f"E0040100{index:08X}"


def _tag(index: int) -> VirtualTag:
    memory = encode_iso28560_3(f"{40000000 + index:016d}", country="DK", owner_isil="710100")
    return VirtualTag.holding(bytes.fromhex(_uid(index)), memory, afi=0x07)


def _summary(samples_ms: list[float]) -> dict[str, float]:
    return {"p50_ms": percentile(samples_ms, 0.50), "p99_ms": percentile(samples_ms, 0.99),
            "max_ms": max(samples_ms) if samples_ms else float("nan"), "n": len(samples_ms)}


def bench_identify(samples: int = IDENTIFY_SAMPLES) -> dict[str, float]:
    """One arrival's reads as the service does them (system information + first 8 blocks), on a pty."""
    sim = SimulatedReader([_tag(1)])
    settings = ReaderSettings(id=READER_ID, port="pty")
    timings: list[float] = []
    with PtyTransport(sim) as transport:
        driver = FeigReader(load_reader_profile("feig-sim"), transport.port)
        try:
            [tag] = driver.inventory()
            for _ in range(samples):
                started = time.perf_counter()
                read_tag(driver, settings, tag)
                timings.append((time.perf_counter() - started) * 1000)
        finally:
            driver.close()
    return _summary(timings)


class _ArrivalClock:
    """Receive time of each tag_arrived, by UID (stamped on the MQTT network thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._arrived: dict[str, float] = {}
        self._signal = threading.Condition(self._lock)

    def on_event(self, parts: TopicParts, event: TagEvent) -> None:
        stamp = time.perf_counter()
        with self._signal:
            self._arrived.setdefault(event.uid, stamp)
            self._signal.notify_all()

    def wait(self, uid: str, timeout_s: float) -> float | None:
        with self._signal:
            self._signal.wait_for(lambda: uid in self._arrived, timeout_s)
            return self._arrived.get(uid)


def _write_site(workdir: Path, broker_url: str, port: str, options: RfidBenchOptions) -> Path:
    reader = {"id": READER_ID, "role": "pad", "port": port, "profile": "feig-sim",
              "poll_interval_ms": options.poll_interval_ms,
              "departed_after_ms": max(50, 2 * options.poll_interval_ms)}
    site = {"site": f"bench{uuid.uuid4().hex[:8]}", "demo": True, "broker": {"url": broker_url},
            "readers": [reader]}
    path = workdir / "site.yaml"
    path.write_text(yaml.safe_dump(site), encoding="utf-8")
    return path


def bench_event_latency(options: RfidBenchOptions, workdir: Path) -> dict[str, Any]:
    broker = BenchBroker(options.broker, workdir)
    broker.start()
    sim = SimulatedReader()
    transport = PtyTransport(sim)
    transport.start()
    site_path = _write_site(workdir, broker.url, transport.port, options)
    site_id = yaml.safe_load(site_path.read_text(encoding="utf-8"))["site"]
    clock = _ArrivalClock()
    link = MqttLink(BrokerSettings(url=broker.url), client_id=f"{site_id}-bench")
    link.subscribe(topic(site_id, Kind.READER, READER_ID, Channel.EVENT, "tag_arrived"), TagEvent, clock.on_event)
    service = Child("rfid", ["rfid", "run", "--site", str(site_path), "--device", READER_ID],
                    workdir / "rfid.log", restart=False)
    try:
        link.start()
        service.start()
        service.wait_ready(60)
        return _measure(sim, clock, options)
    finally:
        service.stop()
        link.stop()
        transport.stop()
        broker.stop()


def _measure(sim: SimulatedReader, clock: _ArrivalClock, options: RfidBenchOptions) -> dict[str, Any]:
    interval_s = options.poll_interval_ms / 1000
    rng = random.Random(1)
    sim.place_tag(_tag(0))  # warm-up: the first arrival pays for imports and connections
    clock.wait(_uid(0), 30)
    sim.remove_tag(_uid(0))
    latencies: list[float] = []
    missing = 0
    for index in range(1, options.samples + 1):
        time.sleep(rng.uniform(0, interval_s))  # a random phase of the poll cycle
        placed = time.perf_counter()
        sim.place_tag(_tag(index))
        arrived = clock.wait(_uid(index), EVENT_TIMEOUT_S)
        sim.remove_tag(_uid(index))
        if arrived is None:
            missing += 1
        else:
            latencies.append((arrived - placed) * 1000)
    summary = _summary(latencies)
    return {**summary, "missing": missing, "p99_in_poll_intervals": summary["p99_ms"] / options.poll_interval_ms}


def run_rfid_bench(options: RfidBenchOptions) -> dict[str, Any]:
    decode = bench_decode(options.decode_n)
    inventory = bench_inventory_roundtrip(n=200, tags=1)
    identify = bench_identify()
    with tempfile.TemporaryDirectory(prefix="openshelf-bench-rfid-") as tmp:
        latency = bench_event_latency(options, Path(tmp))
    return {
        "config": {"poll_interval_ms": options.poll_interval_ms, "samples": options.samples,
                   "decode_n": options.decode_n, "broker": BenchBroker(options.broker, Path(".")).kind},
        "decode": {"iso28560_3_tags_per_second": decode["tags_per_second"],
                   "iso28560_3_reversed_tags_per_second": decode["reversed_tags_per_second"],
                   "target_tags_per_second": 100_000},
        "event_latency": {**latency, "target_p99_ms": 2 * options.poll_interval_ms},
        "floor": {"inventory_p50_ms": inventory["p50_ms"], "inventory_p99_ms": inventory["p99_ms"],
                  "identify_p50_ms": identify["p50_ms"], "identify_p99_ms": identify["p99_ms"]},
    }


def format_report(report: dict[str, Any]) -> str:
    config, decode, latency, floor = report["config"], report["decode"], report["event_latency"], report["floor"]
    return "\n".join([
        f"decode ISO 28560-3: {decode['iso28560_3_tags_per_second']:,.0f} tags/s on one core "
        f"({decode['iso28560_3_reversed_tags_per_second']:,.0f} with reversed blocks; target 100,000)",
        f"tag placed → tag_arrived received, poll every {config['poll_interval_ms']} ms, broker {config['broker']}: "
        f"p50 {latency['p50_ms']:.1f} ms  p99 {latency['p99_ms']:.1f} ms  max {latency['max_ms']:.1f} ms "
        f"(n={latency['n']}, missing {latency['missing']}; target p99 ≤ {latency['target_p99_ms']} ms)",
        f"  floor: inventory round trip p50 {floor['inventory_p50_ms']:.2f} / p99 {floor['inventory_p99_ms']:.2f} ms, "
        f"identify one tag p50 {floor['identify_p50_ms']:.2f} / p99 {floor['identify_p99_ms']:.2f} ms",
    ])
