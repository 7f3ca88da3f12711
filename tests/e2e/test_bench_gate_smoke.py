"""`openshelf bench gate --json` at a tiny rate: the report's shape, and that alarms were measured.

No timing is asserted: this checks that the benchmark runs end to end (two gates in
one controller process) and reports what it promises, not how fast the machine is.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.e2e


def test_bench_gate_reports_latency_floor_cpu_and_memory():
    result = subprocess.run(
        [sys.executable, "-m", "openshelf", "--log-level", "WARNING", "bench", "gate", "--json",
         "--rate", "60", "--seconds", "1", "--gates", "2", "--alarm-share", "0.25", "--floor-samples", "20"],
        capture_output=True, text=True, timeout=180, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    # strict JSON: a missing figure is null, never NaN (jq and most JSON readers reject NaN)
    report = json.loads(result.stdout, parse_constant=lambda constant: pytest.fail(f"{constant} in the JSON"))
    assert set(report) >= {"config", "achieved_rate", "publisher_lateness", "alarms", "split", "floor",
                           "p99_over_floor", "cpu_percent_of_one_core", "machine", "memory_mb"}
    assert report["config"]["gates"] == 2 and report["config"]["reads"] == 60
    alarms = report["alarms"]
    assert alarms["sent"] == 15
    assert alarms["measured"] > 0
    assert set(alarms["measured_per_gate"]) == {"gate-1", "gate-2"}
    assert all(count > 0 for count in alarms["measured_per_gate"].values())
    assert alarms["p50_ms"] <= alarms["p99_ms"] <= alarms["max_ms"]
    assert report["split"]["tag_to_command"]["n"] > 0
    assert {"n", "p50_ms", "p99_ms", "max_ms"} <= set(report["split"]["command_to_relay"])
    assert {"gates", "n", "p50_ms", "p99_ms"} <= set(alarms["exact_gates"])
    floor = report["floor"]
    assert all(math.isfinite(floor[key]) and floor[key] > 0
               for key in ("broker_hop_p50_ms", "broker_hop_p99_ms", "modbus_write_p50_ms", "path_p99_ms"))
    assert {"backend", "gates", "broker", "modbus-sims", "bench"} <= set(report["memory_mb"])
    assert report["memory_mb"]["gates"] > 0 and report["memory_mb"]["backend"] > 0
    assert report["machine"]["cores"] >= 1
