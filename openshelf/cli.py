"""The ``openshelf`` command line: one entry point for every process.

Each service package owns its own ``cli.register(parser)``; this module only
assembles them, importing each lazily so ``openshelf --help`` stays fast and a
server install never imports the kiosk's GUI stack.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from typing import Sequence

# (subcommand, module with register(parser), one-line help)
SUBCOMMANDS: tuple[tuple[str, str, str], ...] = (
    ("demo", "openshelf.demo", "run the whole system on one machine with simulated devices"),
    ("backend", "backend.cli", "run the backend: API, staff dashboard, gate decisions"),
    ("gate", "gate_controller.cli", "run a gate controller (alarm relays, people counting over Modbus)"),
    ("rfid", "rfid.cli", "run a reader service, or decode/encode library tags"),
    ("camera", "cameras.cli", "run a camera service (ring buffer, alarm snapshots and clips)"),
    ("kiosk", "kiosk.cli", "run the self-check kiosk (needs the 'kiosk' extra)"),
    ("sim", "openshelf.sim", "device simulators and scripted patrons (gate I/O, reader, walk)"),
    ("import", "backend.catalog_import.cli", "import a catalogue (MARC21, MARCXML, CSV) or patrons (CSV)"),
    ("bench", "openshelf.bench", "measure latency and throughput through the real processes"),
    ("broker", "openshelf.broker_cli", "run the embedded broker or write a Mosquitto configuration"),
)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="openshelf",
        description="OpenShelf: open-stack self-service for libraries (self-check, security gates, cameras).",
    )
    parser.add_argument("--log-level", default=os.environ.get("OPENSHELF_LOG_LEVEL", "INFO"),
                        help="logging level (default INFO, or $OPENSHELF_LOG_LEVEL)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module_name, help_text in SUBCOMMANDS:
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        if name != only:
            continue  # only the chosen subcommand's module is imported
        importlib.import_module(module_name).register(sub)
    return parser


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _chosen_subcommand(args: list[str]) -> str | None:
    known = {name for name, _, _ in SUBCOMMANDS}
    skip_next = False
    for arg in args:
        if skip_next:
            skip_next = False
        elif arg == "--log-level":
            skip_next = True
        elif not arg.startswith("-"):
            return arg if arg in known else None
    return None


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(_chosen_subcommand(args_list))
    args = parser.parse_args(args_list)
    _configure_logging(args.log_level)
    func = getattr(args, "func", None)
    if func is None:
        parser.parse_args([args.command, "--help"])
        return 2
    try:
        return int(func(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
