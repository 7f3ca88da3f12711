"""Shared helpers for the backend tests (constants, a site file writer, cheap hashing, polling)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import yaml
from argon2 import PasswordHasher

from backend.passwords import Passwords

POSTGRES_ENV = "OPENSHELF_TEST_POSTGRES_URL"
CAMERA_ID = "cam-1"
CAMERA_SECRET = "camera-secret-0123"
GATE_ID = "gate-1"
READER_ID = "reader-1"
ACCOUNTS = {
    "security": ("guard", "guard-password-1"),
    "technician": ("tech", "tech-password-1"),
    "admin": ("boss", "boss-password-1"),
}


def cheap_passwords() -> Passwords:
    """Argon2 at its cheapest: the real parameters cost ~0.3 s per hash, too slow for many tests."""
    return Passwords(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


def write_site(folder: Path, *, site_id: str, database_url: str | None = None, broker_port: int = 1883,
               policy: dict[str, Any] | None = None, demo: bool = True, **backend: Any) -> Path:
    backend_settings: dict[str, Any] = {"gate_policy": policy or {"debounce_s": 10}, **backend}
    if database_url is not None:
        backend_settings["database_url"] = database_url
    site = {
        "site": site_id,
        "demo": demo,
        "data_dir": "data",
        "broker": {"url": f"mqtt://127.0.0.1:{broker_port}"},
        "backend": backend_settings,
        "gates": [{"id": GATE_ID, "alarm_duration_ms": 1500}],
        "readers": [{"id": READER_ID, "gate": GATE_ID, "port": "socket://127.0.0.1:7001"}],
        "cameras": [{"id": CAMERA_ID, "gates": [GATE_ID], "source": "synthetic://", "secret": CAMERA_SECRET}],
    }
    path = folder / "site.yaml"
    path.write_text(yaml.safe_dump(site, allow_unicode=True), encoding="utf-8")
    return path


def snapshot_jpeg(width: int = 320, height: int = 180, label: str = "GATE 1") -> bytes:
    """A real JPEG, like a camera would send: a dark frame with a label."""
    frame = np.full((height, width, 3), (70, 62, 55), np.uint8)
    pillar = max(8, width // 16)
    cv2.rectangle(frame, (width // 5, height // 6), (width // 5 + pillar, height), (200, 200, 200), -1)
    cv2.rectangle(frame, (4 * width // 5 - pillar, height // 6), (4 * width // 5, height), (200, 200, 200), -1)
    centre = width // 2
    cv2.circle(frame, (centre, height // 3), max(6, height // 12), (120, 160, 210), -1)
    cv2.rectangle(frame, (centre - width // 14, height // 3 + height // 12), (centre + width // 14, height),
                  (90, 40, 160), -1)
    cv2.putText(frame, label, (10, 10 + height // 12), cv2.FONT_HERSHEY_SIMPLEX, height / 400, (255, 255, 255), 2)
    ok, encoded = cv2.imencode(".jpg", frame)
    assert ok
    return encoded.tobytes()


class ServerThread:
    """uvicorn serving an app on a free loopback port, in a thread, stopped for sure."""

    def __init__(self, app: Any, port: int) -> None:
        import uvicorn

        self.port = port
        self._server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None,
                                                     lifespan="off", timeout_graceful_shutdown=2))
        self._thread = threading.Thread(target=self._server.run, name="backend-http", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "ServerThread":
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the test HTTP server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(10)
