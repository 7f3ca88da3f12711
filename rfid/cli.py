"""``openshelf rfid``: run a reader service, or decode/encode library tags for technicians."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(parser: argparse.ArgumentParser) -> None:
    subparsers = parser.add_subparsers(dest="rfid_command", metavar="ACTION", required=True)
    run = subparsers.add_parser("run", help="poll a reader and publish tag events",
                                description="Run the reader service for one reader of the site file.")
    run.add_argument("--site", type=Path, required=True, help="site YAML file")
    run.add_argument("--device", required=True, help="reader id in the site file (readers[].id)")
    run.set_defaults(func=_run)

    from rfid.tagdata.cli import register_tag_commands

    register_tag_commands(subparsers)


def _run(args: argparse.Namespace) -> int:
    from rfid.main import run_reader

    return run_reader(args.site, args.device)
