"""``openshelf sim``: the device simulators and scripted patrons.

The simulators speak the real wire protocols (Modbus TCP for the gate I/O
module, FEIG ISO Host for the reader), so the services under test run exactly
the code they run against hardware.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

log = logging.getLogger(__name__)


def register(parser: argparse.ArgumentParser) -> None:
    subparsers = parser.add_subparsers(dest="sim_command", metavar="SIMULATOR", required=True)

    gate_io = subparsers.add_parser("gate-io", help="a Modbus TCP gate I/O module holding a profile's register map",
                                    description="Serve a simulated gate I/O module (Modbus TCP) on loopback.")
    gate_io.add_argument("--profile", default="moxa-e1214", help="register-map profile (firmware_configs/gates/)")
    gate_io.add_argument("--site", type=Path, help="take profile and port from this site file's gate")
    gate_io.add_argument("--device", help="the gate id in --site")
    gate_io.add_argument("--port", type=int, default=None, help="TCP port (default 5020, or the site's)")
    gate_io.set_defaults(func=_run_gate_io)

    reader = subparsers.add_parser("reader", help="a FEIG ISO Host reader with virtual tags, on TCP or a pty",
                                   description="Serve a simulated HF reader; `sim walk` places tags on it.")
    reader.add_argument("--site", type=Path, required=True, help="site YAML file")
    reader.add_argument("--device", required=True, help="reader id in the site file")
    reader.set_defaults(func=_run_reader)

    camera = subparsers.add_parser("camera", help="a synthetic camera served as HTTP MJPEG on loopback",
                                   description="Serve a synthetic camera stream (timestamp overlay) as HTTP MJPEG.")
    from cameras.cli import register_sim as register_camera_sim

    register_camera_sim(camera)

    walk = subparsers.add_parser("walk", help="a patron walks through a gate, with or without items",
                                 description="Break a gate's beams as a patron walking through, carrying the tags "
                                             "of demo items through its reader field (or none with --no-items).")
    walk.add_argument("--site", type=Path, required=True, help="site YAML file")
    walk.add_argument("--item", action="append", default=[], help="demo item id (repeatable), e.g. I0003")
    walk.add_argument("--no-items", action="store_true", help="walk through carrying nothing (beams only)")
    walk.add_argument("--direction", choices=("out", "in"), default="out",
                      help="out: leaving the library (beam A, then B); in: entering (B, then A)")
    walk.add_argument("--tailgate", action="store_true", help="a second patron follows close behind")
    walk.add_argument("--gate", default=None, help="gate id (default: the first gate)")
    walk.add_argument("--dwell", type=float, default=1.5, help="seconds the tags stay in the field")
    walk.set_defaults(func=_run_walk)


def _run_gate_io(args: argparse.Namespace) -> int:
    from gate_controller.simulator import run_simulator

    profile, port = args.profile, args.port
    if args.site is not None:
        from openshelf.site import load_site

        if not args.device:
            print("openshelf sim gate-io: --site needs --device (the gate id)")
            return 2
        site = load_site(args.site)
        gate = site.gate(args.device)
        profile, port = gate.io.profile, port or gate.io.port
        run_simulator(profile, port=port, site=site, gate_id=gate.id)
        return 0
    run_simulator(profile, port=port or 5020)
    return 0


def _run_reader(args: argparse.Namespace) -> int:
    from rfid.sim_control import run_reader_simulator

    return run_reader_simulator(args.site, args.device)


def _run_walk(args: argparse.Namespace) -> int:
    from openshelf.walk import walk_through_gate

    if args.no_items and args.item:
        print("openshelf sim walk: --no-items and --item exclude each other")
        return 2
    if not args.item and not args.no_items:
        print("openshelf sim walk: give at least one --item (e.g. --item I0003), or --no-items")
        return 2
    return walk_through_gate(args.site, args.item, gate_id=args.gate, dwell_s=args.dwell,
                             direction=args.direction, tailgate=args.tailgate)
