"""``openshelf camera``: run the camera service; ``register_sim`` adds ``openshelf sim camera``."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--site", type=Path, required=True, help="site YAML file")
    parser.add_argument("--device", required=True, help="camera id in the site file (cameras[].id)")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from cameras.main import run_camera

    return run_camera(args.site, args.device)


def register_sim(parser: argparse.ArgumentParser) -> None:
    """Options of ``openshelf sim camera``: a synthetic camera served as HTTP MJPEG on loopback."""
    parser.add_argument("--port", type=int, default=8081, help="TCP port (default 8081; 0 = any free port)")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--fps", type=float, default=10.0)
    parser.set_defaults(func=_run_sim)


def _run_sim(args: argparse.Namespace) -> int:
    from cameras.synthetic_server import run_mjpeg_server

    return run_mjpeg_server(port=args.port, width=args.width, height=args.height, fps=args.fps)
