"""Fixtures for the backend tests: a site, a database (SQLite, or PostgreSQL when configured), a broker."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, make_url, text

from backend.app import create_app
from backend.config import BackendServiceConfig, load_backend_config
from backend.db import make_engine, session_factory, upgrade_database
from backend.demo_seed import seed_demo
from backend.notifier import AlarmNotifier
from backend.passwords import Passwords

POSTGRES_ENV = "OPENSHELF_TEST_POSTGRES_URL"
MOSQUITTO = "/usr/sbin/mosquitto"
CAMERA_ID = "cam-1"
CAMERA_SECRET = "camera-secret-0123"
GATE_ID = "gate-1"
READER_ID = "reader-1"
SITE_ID = "testlib"
ACCOUNTS = {
    "security": ("guard", "guard-password-1"),
    "technician": ("tech", "tech-password-1"),
    "admin": ("boss", "boss-password-1"),
}
# A minimal valid JPEG (1x1 px grey); enough for the magic-number checks.
TINY_JPEG = bytes.fromhex(
    "ffd8ffe000104a46494600010100000100010000ffdb004300080606070605080707070909080a0c140d0c0b0b0c1912130f141d1a"
    "1f1e1d1a1c1c20242e2720222c231c1c2837292c30313434341f27393d38323c2e333432ffc0000b080001000101011100ffc4001f"
    "0000010501010101010100000000000000000102030405060708090a0bffc400b5100002010303020403050504040000017d010203"
    "00041105122131410613516107227114328191a1082342b1c11552d1f02433627282090a161718191a25262728292a343536373839"
    "3a434445464748494a535455565758595a636465666768696a737475767778797a838485868788898a92939495969798999aa2a3a4"
    "a5a6a7a8a9aab2b3b4b5b6b7b8b9bac2c3c4c5c6c7c8c9cad2d3d4d5d6d7d8d9dae1e2e3e4e5e6e7e8e9eaf1f2f3f4f5f6f7f8f9fa"
    "ffda0008010100003f00fbd3ffd9"
)


def cheap_passwords() -> Passwords:
    """Argon2 at its cheapest: the real parameters cost ~0.3 s per hash, too slow for many tests."""
    return Passwords(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_site(folder: Path, *, database_url: str | None = None, broker_port: int = 1883,
               policy: dict[str, Any] | None = None, demo: bool = True, **backend: Any) -> Path:
    backend_settings: dict[str, Any] = {"gate_policy": policy or {"debounce_s": 10}, **backend}
    if database_url is not None:
        backend_settings["database_url"] = database_url
    site = {
        "site": SITE_ID,
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


# ------------------------------------------------------------------ databases


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'db' / 'openshelf.db'}"
        return
    server = os.environ.get(POSTGRES_ENV)
    if not server:
        pytest.skip(f"set {POSTGRES_ENV} to run against PostgreSQL")
    name = f"openshelf_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


# ------------------------------------------------------------------ the app on a database


@dataclass
class Api:
    client: TestClient
    config: BackendServiceConfig
    sessions: Any
    notifier: AlarmNotifier
    gate: "FakeGate"

    def login(self, role: str = "security") -> TestClient:
        username, password = ACCOUNTS[role]
        response = self.client.post("/api/login", json={"username": username, "password": password})
        assert response.status_code == 200, response.text
        return self.client

    def logout(self) -> None:
        self.client.cookies.clear()


class FakeGate:
    """Stands in for the gate service on the HTTP side: records silences."""

    def __init__(self) -> None:
        self.silenced: list[tuple[str, str | None]] = []
        self.connected = True

    def silence(self, gate_id: str, alarm_id: str | None) -> None:
        self.silenced.append((gate_id, alarm_id))


@pytest.fixture
def backend_config(tmp_path: Path, database_url: str) -> BackendServiceConfig:
    return load_backend_config(write_site(tmp_path, database_url=database_url))


@pytest.fixture
def api(backend_config: BackendServiceConfig) -> Iterator[Api]:
    engine = make_engine(backend_config.database_url.get_secret_value())
    upgrade_database(engine)
    sessions = session_factory(engine)
    passwords = cheap_passwords()
    with sessions() as session:
        seed_demo(session, ACCOUNTS, passwords=passwords)
    notifier = AlarmNotifier()
    gate = FakeGate()
    app = create_app(backend_config, engine=engine, gate_service=gate, notifier=notifier, passwords=passwords)
    with TestClient(app, base_url="http://testserver") as client:
        yield Api(client, backend_config, sessions, notifier, gate)
    engine.dispose()


# ------------------------------------------------------------------ a real broker


@dataclass
class Broker:
    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Broker]:
    if not Path(MOSQUITTO).exists() and shutil.which("mosquitto") is None:
        pytest.skip("mosquitto is not installed")
    port = free_port()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\nset_tcp_nodelay true\n"
        "max_queued_messages 0\npersistence false\nlog_dest stderr\nlog_type error\n",
        encoding="utf-8",
    )
    process = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_for_port(port, process)
        yield Broker(port, process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()


def _wait_for_port(port: int, process: subprocess.Popen[bytes], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"mosquitto exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"mosquitto did not listen on {port}")


def wait_until(predicate: Any, timeout_s: float = 5.0, interval_s: float = 0.01) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval_s)
    return bool(predicate())
