"""Round-trip timing of ``FeigReader.inventory()`` against the simulator on a pty."""

from __future__ import annotations

import math
import time

from rfid.drivers.feig_serial import FeigReader
from rfid.drivers.profile import ReaderProfile
from rfid.readersim.core import SimulatedReader
from rfid.readersim.pty_transport import PtyTransport
from rfid.readersim.tags import VirtualTag, nxp_uid


def bench_inventory_roundtrip(n: int = 200, *, tags: int = 3, reset_to_ready: bool = True) -> dict[str, float]:
    """Time ``n`` inventory calls (after one warm-up). With ``reset_to_ready`` each call is
    two request/answer exchanges (Inventory + Reset to Ready), as in production."""
    if n < 1:
        raise ValueError("n must be at least 1")
    reader = SimulatedReader([VirtualTag(nxp_uid(i)) for i in range(tags)])
    profile = ReaderProfile(
        model="bench", parity="none", response_timeout_s=1.0, inventory_reset_to_ready=reset_to_ready
    )
    samples: list[float] = []
    with PtyTransport(reader) as transport:
        driver = FeigReader(profile, transport.port)
        try:
            found = len(driver.inventory())
            for _ in range(n):
                started = time.perf_counter()
                driver.inventory()
                samples.append(time.perf_counter() - started)
        finally:
            driver.close()
    samples.sort()
    return {
        "n": float(n),
        "tags": float(found),
        "p50_ms": _percentile(samples, 50) * 1000,
        "p99_ms": _percentile(samples, 99) * 1000,
        "mean_ms": sum(samples) / len(samples) * 1000,
        "max_ms": samples[-1] * 1000,
    }


def _percentile(sorted_samples: list[float], percent: float) -> float:
    """Nearest-rank percentile."""
    rank = max(1, math.ceil(percent / 100 * len(sorted_samples)))
    return sorted_samples[rank - 1]
