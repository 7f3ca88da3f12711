"""``openshelf gate``: run one gate controller, several, or every gate of the site in one process."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--site", type=Path, required=True, help="site YAML file")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--device", action="append", metavar="GATE_ID",
                       help="gate id in the site file (gates[].id); repeat it to run several gates in one process")
    which.add_argument("--all", action="store_true", help="run every gate of the site file in this process")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from gate_controller.main import all_gate_ids, run_gates
    from openshelf.config import ConfigError

    try:
        gate_ids = all_gate_ids(args.site) if args.all else list(args.device)
        return run_gates(args.site, gate_ids)
    except ConfigError as exc:  # a technician's typo: say where, no traceback
        print(f"openshelf gate: {exc}", file=sys.stderr)
        return 2
