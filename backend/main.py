"""The composition root: config → database → gate path → HTTP server, and an orderly stop.

The gate path runs in a child process (backend.gate_process, started and kept
running by backend.gate_process_host); this process keeps the database, the
dashboards, circulation and the master copy of the gate view.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

import uvicorn
from fastapi import FastAPI

from backend.alarm_writer import AlarmWriter
from backend.app import create_app
from backend.catalog_watch import CatalogWatcher
from backend.circulation_runtime import CirculationRuntime, build_circulation_parts
from backend.config import BackendServiceConfig, load_backend_config
from backend.db.engine import DatabaseError, make_engine, session_factory, upgrade_database
from backend.demo_seed import ensure_demo_accounts, seed_demo
from backend.evidence import purge_expired_evidence
from backend.gate_ops import GateOpsRecorder, GateRef, occupancy_settings
from backend.gate_process_host import GateProcessHost, gate_process_setup
from backend.gate_view import GateView
from backend.notifier import AlarmNotifier
from backend.passwords import Passwords
from openshelf.config import ConfigError
from openshelf.contract import Kind, utcnow
from openshelf.runtime import device_link

log = logging.getLogger(__name__)


class BackendRuntime:
    """Every long-lived part of the backend, wired together; ``start`` and ``stop`` in the right order."""

    def __init__(self, config: BackendServiceConfig, *, passwords: Passwords | None = None) -> None:
        self.config = config
        url = config.database_url.get_secret_value()
        self.engine = make_engine(url)
        upgrade_database(self.engine)
        sessions = session_factory(self.engine)
        passwords = passwords or Passwords()
        if config.demo:
            with sessions() as session:
                seed_demo(session, ensure_demo_accounts(config.data_dir), passwords=passwords)
        self.view = GateView()
        with sessions() as session:
            loaded = self.view.load(session)
        log.info("gate view holds %d item(s)", loaded)
        self.notifier = AlarmNotifier()
        self.writer = AlarmWriter(
            sessions, self.notifier,
            housekeeping=lambda session: purge_expired_evidence(session, config.media_dir, utcnow()),
        )
        self.link = device_link(config.site_config, Kind.BACKEND, config.backend.id)
        self.gate_service = GateProcessHost(gate_process_setup(config), self.view, self.writer, self.link)
        self.gate_ops = GateOpsRecorder(
            self.link, sessions, self.notifier, occupancy_settings(config.backend),
            [GateRef(gate.id, gate.name) for gate in config.site_config.gates],
            site_id=config.site, root=config.broker.root,
        )
        circulation = build_circulation_parts(config, self.engine, self.view, pin_hasher=passwords)
        self.circulation = CirculationRuntime(config, circulation, self.link, self.view, sessions)
        self.catalog_watch = CatalogWatcher(sessions, self.view)
        self.app: FastAPI = create_app(
            config, engine=self.engine, gate_service=self.gate_service, notifier=self.notifier, view=self.view,
            passwords=passwords, circulation=circulation,
        )

    def start(self, broker_wait_s: float = 5.0) -> None:
        """Start everything; wait up to ``broker_wait_s`` for both broker connections (ours, the gate process's)."""
        self.config.media_dir.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + broker_wait_s
        self.writer.start()
        self.gate_service.start()
        self.gate_ops.start()
        self.circulation.start()
        self.catalog_watch.start()
        linked = self.link.start(wait_s=broker_wait_s)
        if not (linked and self.gate_service.wait_connected(max(0.0, deadline - time.monotonic()))):
            log.warning("broker %s:%s not reachable yet; alarms start once it is", self.config.broker.host,
                        self.config.broker.port)

    def stop(self) -> None:
        self.notifier.close()
        self.gate_service.stop()  # before the writer: what the gate process still sends gets written
        self.link.stop()
        self.gate_ops.stop()
        self.circulation.stop()
        self.catalog_watch.stop()
        self.writer.stop()
        self.engine.dispose()


class _Server(uvicorn.Server):
    """Closes the live streams as soon as a stop is requested, so shutdown does not wait on them."""

    def __init__(self, config: uvicorn.Config, notifier: AlarmNotifier) -> None:
        super().__init__(config)
        self._notifier = notifier

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self._notifier.close()
        super().handle_exit(sig, frame)


def run_backend(site_path: Path, *, host: str | None = None, port: int | None = None) -> int:
    """Run the backend until SIGINT/SIGTERM; prints ``{"event":"ready","url":…}`` once serving."""
    try:
        config = load_backend_config(Path(site_path))
        host = host or config.backend.host
        listener = _listen(host, config.backend.port if port is None else port)
    except (ConfigError, OSError) as exc:
        print(f"openshelf backend: {exc}", file=sys.stderr)
        return 2
    try:
        runtime = BackendRuntime(config)
    except (ConfigError, DatabaseError) as exc:
        listener.close()
        print(f"openshelf backend: {exc}", file=sys.stderr)
        return 2
    server = _Server(uvicorn.Config(runtime.app, log_config=None, lifespan="off", timeout_graceful_shutdown=3,
                                    access_log=False), runtime.notifier)
    url_host = f"[{host}]" if ":" in host else host
    url = f"http://{url_host}:{listener.getsockname()[1]}"
    previous = _route_signals(server)
    try:
        runtime.start()
        asyncio.run(_serve(server, listener, url))
        return 0
    except (OSError, ConfigError) as exc:
        print(f"openshelf backend: {exc}", file=sys.stderr)
        return 1
    finally:
        runtime.stop()
        listener.close()
        _restore_signals(previous)


def _listen(host: str, port: int) -> socket.socket:
    """Bind before anything else starts, so a taken port is a clear error and port 0 works."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family)
    except OSError as exc:
        raise OSError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc


async def _serve(server: _Server, listener: socket.socket, url: str) -> None:
    announcer = asyncio.create_task(_announce_when_started(server, url))
    try:
        await server.serve(sockets=[listener])
    finally:
        announcer.cancel()


async def _announce_when_started(server: _Server, url: str) -> None:
    while not server.started:
        await asyncio.sleep(0.02)
    print(json.dumps({"event": "ready", "url": url}), flush=True)


def _route_signals(server: _Server) -> dict[int, Any]:
    """Send SIGINT/SIGTERM to the server from now on, also before it serves and after it re-raises them.

    uvicorn restores the handlers it found and re-raises the signal once it has
    shut down; with these handlers that is harmless and we clean up and exit 0.
    """
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {sig: signal.signal(sig, server.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}


def _restore_signals(previous: dict[int, Any]) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)
