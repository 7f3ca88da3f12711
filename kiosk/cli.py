"""``openshelf kiosk``: the self-check kiosk."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--site", type=Path, required=True, help="site YAML file")
    parser.add_argument("--device", required=True, help="kiosk id in the site file")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    print("openshelf kiosk: the self-check kiosk is not part of this release yet "
          "(tracked as the kiosk issue); use the staff API meanwhile.", file=sys.stderr)
    return 2
