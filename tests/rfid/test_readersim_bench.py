"""The inventory round-trip benchmark runs end to end (no timing assertions)."""

from __future__ import annotations

import pytest

from rfid.readersim.bench import bench_inventory_roundtrip


def test_bench_reports_percentiles() -> None:
    result = bench_inventory_roundtrip(20, tags=2)
    assert result["n"] == 20 and result["tags"] == 2
    assert 0 < result["p50_ms"] <= result["p99_ms"] <= result["max_ms"]


def test_bench_rejects_zero_runs() -> None:
    with pytest.raises(ValueError):
        bench_inventory_roundtrip(0)
