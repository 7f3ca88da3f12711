"""``openshelf kiosk``: the self-check kiosk (needs the ``kiosk`` extra: Kivy)."""

from __future__ import annotations

import argparse
import importlib.util
import re
import sys
from pathlib import Path

_SIZE = re.compile(r"^(\d{3,5})x(\d{3,5})$")


def _size(text: str) -> tuple[int, int]:
    match = _SIZE.match(text)
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not WIDTHxHEIGHT, e.g. 1280x800")
    return int(match.group(1)), int(match.group(2))


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--site", type=Path, required=True, help="site YAML file")
    parser.add_argument("--device", required=True, help="kiosk id in the site file (kiosks[].id)")
    parser.add_argument("--windowed", action="store_true",
                        help="run in a window instead of full screen (for testing and demos; not locked down)")
    parser.add_argument("--size", type=_size, default=None, metavar="WxH",
                        help="window size, e.g. 1280x800 or 1920x1080 (default: the screen, or 1280x800 windowed)")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    if importlib.util.find_spec("kivy") is None:  # importing Kivy here would set up its logging too early
        print("openshelf kiosk: Kivy is not installed; install the kiosk extra: pip install 'openshelf[kiosk]'",
              file=sys.stderr)
        return 2
    from openshelf.config import ConfigError

    from kiosk.main import run_kiosk

    try:
        return run_kiosk(args.site, args.device, windowed=args.windowed, size=args.size)
    except ConfigError as exc:
        print(f"openshelf kiosk: {exc}", file=sys.stderr)
        return 2
