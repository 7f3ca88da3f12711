"""Fixtures for the backend tests: a site and a database (SQLite, or PostgreSQL when configured).

The broker (``mosquitto``) and ``site_id`` come from the shared tests/conftest.py.
"""

from __future__ import annotations

import os
import shutil
import uuid
import warnings
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from sqlalchemy import create_engine, make_url, text

from backend.alarm_writer import AlarmRecord, AlarmWriter
from backend.app import create_app
from backend.config import BackendServiceConfig, load_backend_config
from backend.db import make_engine, session_factory, upgrade_database
from backend.demo_seed import seed_demo
from backend.notifier import AlarmNotifier
from openshelf.contract import AlarmItem, AlarmReason, utcnow
from openshelf.demo_catalog import tag_uid_for
from tests.backend.backend_testkit import ACCOUNTS, GATE_ID, POSTGRES_ENV, cheap_passwords, write_site

with warnings.catch_warnings():
    # Starlette prefers httpx2 and warns at import when only httpx is installed; the behaviour is the same.
    warnings.filterwarnings("ignore", message=".*httpx2")
    from fastapi.testclient import TestClient


# ------------------------------------------------------------------ databases


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_kind(request: pytest.FixtureRequest) -> str:
    if request.param == "postgres" and not os.environ.get(POSTGRES_ENV):
        pytest.skip(f"set {POSTGRES_ENV} to run against PostgreSQL")
    return str(request.param)


@contextmanager
def postgres_database(template: str | None = None) -> Iterator[str]:
    """A fresh database on the test server (optionally a copy of ``template``), dropped afterwards."""
    server = os.environ[POSTGRES_ENV]
    name = f"openshelf_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            copy = f' TEMPLATE "{template}"' if template else ""
            connection.execute(text(f'CREATE DATABASE "{name}"{copy}'))
        try:
            yield make_url(server).set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@pytest.fixture
def database_url(database_kind: str, tmp_path: Path) -> Iterator[str]:
    """An empty database."""
    if database_kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'db' / 'openshelf.db'}"
        return
    with postgres_database() as url:
        yield url


def _migrate_and_seed(url: str) -> None:
    engine = make_engine(url)
    try:
        upgrade_database(engine)
        with session_factory(engine)() as session:
            seed_demo(session, ACCOUNTS, passwords=cheap_passwords())
        if engine.dialect.name == "sqlite":
            with engine.connect() as connection:
                connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def seeded_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], str]]:
    """Migrate and seed once per database kind, lazily; tests get copies (migrating costs 0.1-0.5 s)."""
    templates: dict[str, str] = {}
    with ExitStack() as cleanup:
        def template(kind: str) -> str:
            if kind not in templates:
                if kind == "sqlite":
                    path = tmp_path_factory.mktemp("template") / "openshelf.db"
                    _migrate_and_seed(f"sqlite:///{path}")
                    templates[kind] = str(path)
                else:
                    url = cleanup.enter_context(postgres_database())
                    _migrate_and_seed(url)
                    templates[kind] = str(make_url(url).database)
            return templates[kind]

        yield template


@pytest.fixture
def seeded_database_url(database_kind: str, tmp_path: Path,
                        seeded_template: Callable[[str], str]) -> Iterator[str]:
    """A migrated database holding the demo catalogue and the ACCOUNTS staff."""
    template = seeded_template(database_kind)
    if database_kind == "sqlite":
        target = tmp_path / "db" / "openshelf.db"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(template, target)
        yield f"sqlite:///{target}"
        return
    with postgres_database(template) as url:
        yield url


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

    def add_alarm(self, item_id: str | None = "I0003", *, reason: AlarmReason = AlarmReason.NOT_ON_LOAN,
                  alarm_id: str | None = None, decided_locally: bool = False, seconds_ago: float = 0) -> str:
        """Store an alarm the way the gate service does: through the alarm writer."""
        alarm_id = alarm_id or uuid.uuid4().hex
        uid = tag_uid_for(item_id) if item_id else "E0040100FFFFFF01"
        writer = AlarmWriter(self.sessions, self.notifier)
        writer.start()
        try:
            writer.record_alarm(AlarmRecord(
                alarm_id, GATE_ID, utcnow() - timedelta(seconds=seconds_ago), decided_locally,
                (AlarmItem(uid=uid, item_id=item_id, reason=reason),),
            ))
        finally:
            writer.stop()
        return alarm_id


class FakeGate:
    """Stands in for the gate service on the HTTP side: records silences."""

    def __init__(self) -> None:
        self.silenced: list[tuple[str, str | None]] = []
        self.connected = True

    def silence(self, gate_id: str, alarm_id: str | None) -> None:
        self.silenced.append((gate_id, alarm_id))


@pytest.fixture
def backend_config(tmp_path: Path, seeded_database_url: str, site_id: str) -> BackendServiceConfig:
    return load_backend_config(write_site(tmp_path, site_id=site_id, database_url=seeded_database_url))


@pytest.fixture
def api(backend_config: BackendServiceConfig) -> Iterator[Api]:
    engine = make_engine(backend_config.database_url.get_secret_value())
    sessions = session_factory(engine)
    passwords = cheap_passwords()
    notifier = AlarmNotifier()
    gate = FakeGate()
    app = create_app(backend_config, engine=engine, gate_service=gate, notifier=notifier, passwords=passwords)
    with TestClient(app, base_url="http://testserver") as client:
        yield Api(client, backend_config, sessions, notifier, gate)
    app.state.ctx.circulation.close()
    engine.dispose()
