"""Technician and benchmark tools around the reader service: `openshelf rfid inspect`, `openshelf bench rfid`."""

from __future__ import annotations

from pathlib import Path

from rfid.bench import RfidBenchOptions, bench_event_latency
from rfid.readersim import SimulatedReader, TcpTransport, VirtualTag
from rfid.tagdata import DSFID_ISO28560_2, encode_iso28560_2, encode_iso28560_3
from tests.helpers import Proc


def test_inspect_explains_every_tag_in_the_field(tmp_path: Path) -> None:
    sim = SimulatedReader([
        VirtualTag.holding(bytes.fromhex("E004010000000001"),
                           encode_iso28560_3("1234567890", country="VN", owner_isil="12345"), afi=0x07, eas=True),
        VirtualTag.holding(bytes.fromhex("E016010000000002"), encode_iso28560_2("ABC-1", title="Kiều"),
                           afi=0xC2, dsfid=DSFID_ISO28560_2),
    ])
    with TcpTransport(sim) as transport:
        proc = Proc("inspect", ["rfid", "inspect", "--port", transport.url, "--profile", "feig-sim"],
                    tmp_path / "inspect.log").start(wait_ready=False)
        assert proc.popen is not None
        proc.popen.wait(30)
        code = proc.stop()
    out = proc.stdout
    assert code == 0, proc.log_text()
    assert "UID E004010000000001" in out and "AFI 0x07 (secured), EAS set" in out
    assert "Primary item ID:  1234567890" in out and "Owner ISIL:       VN-12345" in out
    assert "AFI 0xC2 (unsecured), EAS n/a, DSFID 0x06" in out and "Title:            Kiều" in out


def test_event_latency_benchmark_measures_every_tag(tmp_path: Path) -> None:
    report = bench_event_latency(RfidBenchOptions(samples=3, poll_interval_ms=20, broker="mosquitto"), tmp_path)
    assert (report["n"], report["missing"]) == (3, 0)
    assert 0 < report["p50_ms"] <= report["p99_ms"] <= report["max_ms"]
