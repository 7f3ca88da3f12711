"""Shared helpers for the backend tests (constants, a site file writer, cheap hashing, polling)."""

from __future__ import annotations

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
    frame = np.full((height, width, 3), (40, 40, 40), np.uint8)
    cv2.rectangle(frame, (10, 10), (width - 10, height - 10), (0, 0, 200), 3)
    cv2.putText(frame, label, (20, height // 2), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (255, 255, 255), 2)
    ok, encoded = cv2.imencode(".jpg", frame)
    assert ok
    return encoded.tobytes()
