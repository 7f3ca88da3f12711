"""``openshelf gate``: run one gate controller."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--site", type=Path, required=True, help="site YAML file")
    parser.add_argument("--device", required=True, help="gate id in the site file (gates[].id)")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from gate_controller.main import run_gate
    from openshelf.config import ConfigError

    try:
        return run_gate(args.site, args.device)
    except ConfigError as exc:  # a technician's typo: say where, no traceback
        print(f"openshelf gate: {exc}", file=sys.stderr)
        return 2
