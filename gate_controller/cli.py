"""``openshelf gate``: run one gate controller."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--site", type=Path, required=True, help="site YAML file")
    parser.add_argument("--device", required=True, help="gate id in the site file (gates[].id)")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from gate_controller.main import run_gate

    return run_gate(args.site, args.device)
