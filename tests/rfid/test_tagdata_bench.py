"""The micro benchmark runs and reports rates (timing itself is not asserted)."""

import pytest

from rfid.tagdata.bench import bench_decode


def test_bench_decode_reports_positive_rates() -> None:
    result = bench_decode(200)
    assert result["n"] == 200
    assert result["tags_per_second"] > 0
    assert result["wall_tags_per_second"] > 0
    assert result["reversed_tags_per_second"] > 0


def test_bench_decode_rejects_zero() -> None:
    with pytest.raises(ValueError):
        bench_decode(0)
