"""``openshelf demo``: the whole system on one machine, with simulated devices.

Starts an embedded broker (or uses ``--broker-url``), the device simulators
(Modbus gate I/O module, FEIG reader, synthetic camera stream) and the real
services (backend, gate controller, reader service, camera service), waits
until each says it is ready, prints where to look, and stops everything on
Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import logging
import secrets
import socket
from pathlib import Path
from typing import Any

import yaml

from openshelf.supervisor import Child, ChildFailed, Supervisor

log = logging.getLogger(__name__)

DEMO_GATE = "gate-1"
DEMO_READER = "reader-gate-1"
DEMO_CAMERA = "cam-1"
DEMO_PAD_READER = "reader-pad-1"
DEMO_KIOSK = "kiosk-1"


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=8000, help="HTTP port of the dashboard and API (default 8000)")
    parser.add_argument("--data-dir", type=Path, default=Path("openshelf-demo"),
                        help="where the demo keeps its database, evidence and logs (default ./openshelf-demo)")
    parser.add_argument("--broker-url", default=None,
                        help="use this broker (e.g. a local Mosquitto) instead of the embedded one")
    parser.add_argument("--no-kiosk", action="store_true", help="do not start the kiosk window")
    parser.set_defaults(func=run_demo)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def demo_site(*, broker_url: str, http_port: int, modbus_port: int, reader_port: int,
              pad_port: int | None = None) -> dict[str, Any]:
    """The demo library's site file: one gate with a reader, an I/O module and a camera."""
    return {
        "site": "demo",
        "name": "Thư viện tỉnh — demo",
        "demo": True,
        "data_dir": ".",
        "broker": {"url": broker_url},
        "sim_secret": "demo-sim",
        "backend": {"id": "backend", "host": "127.0.0.1", "port": http_port, "secret": "demo-backend"},
        "gates": [{"id": DEMO_GATE, "name": "Cổng chính / Main exit", "secret": "demo-gate",
                   "io": {"profile": "moxa-e1214", "host": "127.0.0.1", "port": modbus_port}}],
        "readers": [{"id": DEMO_READER, "gate": DEMO_GATE, "port": f"socket://127.0.0.1:{reader_port}",
                     "profile": "feig-mr101", "secret": "demo-reader"}]
        + ([{"id": DEMO_PAD_READER, "role": "pad", "port": f"socket://127.0.0.1:{pad_port}",
             "profile": "feig-mr101", "secret": "demo-pad", "poll_interval_ms": 50}] if pad_port else []),
        "kiosks": [{"id": DEMO_KIOSK, "secret": "demo-kiosk", "pad_reader": DEMO_PAD_READER,
                    "card_reader": DEMO_PAD_READER, "exit_code": "demo-exit"}] if pad_port else [],
        "cameras": [{"id": DEMO_CAMERA, "gates": [DEMO_GATE], "secret": "demo-camera",
                     "source": "synthetic://?fps=10&width=1280&height=720"}],
    }


def write_demo_site(data_dir: Path, *, broker_url: str, http_port: int) -> Path:
    data_dir.mkdir(parents=True, exist_ok=True)
    site = demo_site(broker_url=broker_url, http_port=http_port, modbus_port=_free_port(), reader_port=_free_port(),
                     pad_port=_free_port())
    path = data_dir / "site.yaml"
    path.write_text("# Written by `openshelf demo` at every start.\n"
                    + yaml.safe_dump(site, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def kiosk_window_possible() -> bool:
    """A kiosk window needs a display and Kivy (the ``kiosk`` extra)."""
    import importlib.util
    import os

    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")) \
        and importlib.util.find_spec("kivy") is not None


def demo_children(site_path: Path, logs: Path, *, kiosk: bool = False) -> list[Child]:
    """Simulators first (the services connect to them), then the backend, then the device services."""
    site = str(site_path)

    def child(name: str, *args: str) -> Child:
        return Child(name, list(args), logs / f"{name}.log")

    return [
        child("sim-gate-io", "sim", "gate-io", "--site", site, "--device", DEMO_GATE),
        child("sim-reader", "sim", "reader", "--site", site, "--device", DEMO_READER),
        child("backend", "backend", "--site", site),
        child("gate", "gate", "--site", site, "--device", DEMO_GATE),
        child("rfid", "rfid", "run", "--site", site, "--device", DEMO_READER),
        child("camera", "camera", "--site", site, "--device", DEMO_CAMERA),
        child("sim-pad", "sim", "reader", "--site", site, "--device", DEMO_PAD_READER),
        child("rfid-pad", "rfid", "run", "--site", site, "--device", DEMO_PAD_READER),
    ] + ([child("kiosk", "kiosk", "--site", site, "--device", DEMO_KIOSK, "--windowed")] if kiosk else [])


def run_demo(args: argparse.Namespace) -> int:
    from openshelf.broker import EmbeddedBroker
    from openshelf.runtime import announce_ready, stop_event_on_signals

    stop = stop_event_on_signals()
    data_dir = args.data_dir.resolve()
    broker = None
    broker_url = args.broker_url
    if broker_url is None:
        broker = EmbeddedBroker(port=_free_port())
        broker.start()
        broker_url = broker.url
    site_path = write_demo_site(data_dir, broker_url=broker_url, http_port=args.port)
    supervisor = Supervisor()
    try:
        with_kiosk = not args.no_kiosk and kiosk_window_possible()
        for child in demo_children(site_path, data_dir / "logs", kiosk=with_kiosk):
            if stop.is_set():
                break
            supervisor.start(child)
        supervisor.watch()
        if not stop.is_set():
            _print_welcome(site_path, data_dir, args.port, broker_url)
            announce_ready(url=f"http://127.0.0.1:{args.port}", site=str(site_path))
        stop.wait()
        print("stopping OpenShelf demo…", flush=True)
    except ChildFailed as exc:
        print(f"openshelf demo: {exc}", flush=True)
        return 1
    finally:
        codes = supervisor.stop()
        if broker is not None:
            broker.stop()
        log.info("demo stopped: %s", codes)
    return 0


def _print_welcome(site_path: Path, data_dir: Path, port: int, broker_url: str) -> None:
    accounts_path = data_dir / "demo-accounts.json"
    accounts = json.loads(accounts_path.read_text(encoding="utf-8")) if accounts_path.exists() else {}
    lines = [
        "",
        "OpenShelf demo is running.",
        f"  Dashboard and API: http://127.0.0.1:{port}/   (OpenAPI: http://127.0.0.1:{port}/docs)",
        f"  Broker: {broker_url}",
        "  Staff accounts:",
    ]
    for role, account in sorted(accounts.items()):
        username, password = (account["username"], account["password"]) if isinstance(account, dict) else account
        lines.append(f"    {role:<11} {username} / {password}")
    lines += [
        "  Try a walk through the gate (another terminal):",
        f"    openshelf sim walk --site {site_path} --item I0003   # not on loan: the gate alarms",
        f"    openshelf sim walk --site {site_path} --item I0002   # on loan: the gate stays quiet",
        f"  Logs: {data_dir / 'logs'}",
        "Press Ctrl-C to stop.",
        "",
    ]
    print("\n".join(lines), flush=True)
