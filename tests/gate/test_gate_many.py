"""Several gates in one process: the command line and the plan checked before anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gate_controller.main import all_gate_ids, plan_gates
from openshelf.cli import build_parser
from openshelf.config import ConfigError
from openshelf.demo import demo_site
from openshelf.site import load_site


def _site_file(tmp_path: Path, gates: int) -> Path:
    site = demo_site(broker_url="mqtt://127.0.0.1:1", http_port=8000, modbus_port=5020, reader_port=7001)
    site["gates"] = [{"id": f"gate-{n}", "secret": "demo-gate", "io": {"profile": "moxa-e1214", "port": 5020 + n}}
                     for n in range(1, gates + 1)]
    site["readers"] = [{"id": f"reader-gate-{n}", "gate": f"gate-{n}", "secret": "demo-reader",
                        "port": "socket://127.0.0.1:1"} for n in range(1, gates + 1)]
    site["cameras"] = []
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(site), encoding="utf-8")
    return path


def test_device_may_be_repeated_and_all_excludes_it(tmp_path):
    parser = build_parser("gate")
    args = parser.parse_args(["gate", "--site", "s.yaml", "--device", "gate-1", "--device", "gate-2"])
    assert args.device == ["gate-1", "gate-2"] and not args.all
    assert parser.parse_args(["gate", "--site", "s.yaml", "--all"]).all
    with pytest.raises(SystemExit):
        parser.parse_args(["gate", "--site", "s.yaml", "--all", "--device", "gate-1"])
    with pytest.raises(SystemExit):
        parser.parse_args(["gate", "--site", "s.yaml"])


def test_plan_covers_each_gate_with_its_own_readers(tmp_path):
    path = _site_file(tmp_path, 3)
    assert all_gate_ids(path) == ["gate-1", "gate-2", "gate-3"]
    plans = plan_gates(load_site(path), ["gate-3", "gate-1"])
    assert [plan.settings.id for plan in plans] == ["gate-3", "gate-1"]
    assert [plan.reader_ids for plan in plans] == [["reader-gate-3"], ["reader-gate-1"]]
    assert plans[0].settings.io.port == 5023


def test_a_gate_named_twice_or_unknown_is_a_config_error(tmp_path):
    site = load_site(_site_file(tmp_path, 2))
    with pytest.raises(ConfigError, match="more than once: gate-1"):
        plan_gates(site, ["gate-1", "gate-2", "gate-1"])
    with pytest.raises(ConfigError):
        plan_gates(site, ["gate-1", "gate-9"])
    with pytest.raises(ConfigError, match="no gate"):
        plan_gates(site, [])


def test_the_gates_of_a_process_poll_in_evenly_filled_phase_groups():
    from collections import Counter

    from gate_controller.beam_watch import PHASE_GROUPS, poll_phase

    phases = Counter(poll_phase(index, 0.05) for index in range(50))
    assert len(phases) == PHASE_GROUPS and set(phases.values()) == {50 // PHASE_GROUPS}
    assert all(0 <= phase < 0.05 for phase in phases)
    assert poll_phase("gate-7", 0.05) == poll_phase("gate-7", 0.05) in phases  # a lone gate: stable, on the grid
