"""`openshelf backend` as a real process: ready line, a gate alarm through the broker, clean stop; create-user."""

from __future__ import annotations

import argparse
import io
import json
import socket
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from backend.cli import register
from backend.config import load_backend_config
from backend.db import StaffUser, make_engine, session_factory
from backend.main import run_backend
from openshelf.contract import Channel, Kind, TagEvent, topic
from openshelf.demo_catalog import tag_uid_for
from openshelf.mqtt import MqttLink
from openshelf.site import BrokerSettings
from tests.backend.backend_testkit import GATE_ID, READER_ID, write_site
from tests.helpers import Proc, free_port, wait_for


def test_backend_process_serves_alarms_and_stops_cleanly_on_sigterm(tmp_path: Path, broker_url: str,
                                                                     site_id: str) -> None:
    port = free_port()
    site_path = write_site(tmp_path, site_id=site_id, broker_port=BrokerSettings(url=broker_url).port, port=port)
    backend = Proc("backend", ["backend", "--site", str(site_path)], tmp_path / "backend.log").start(timeout_s=60)
    reader = MqttLink(BrokerSettings(url=broker_url), client_id=f"{site_id}-{READER_ID}")
    try:
        assert backend.ready_line == {"event": "ready", "url": f"http://127.0.0.1:{port}"}
        accounts = json.loads((tmp_path / "data" / "demo-accounts.json").read_text(encoding="utf-8"))
        with httpx.Client(base_url=backend.ready_line["url"], timeout=10) as client:
            login = {"username": accounts["security"]["username"], "password": accounts["security"]["password"]}
            assert client.post("/api/login", json=login).status_code == 200
            assert reader.start(wait_s=5)
            event = TagEvent(reader_id=READER_ID, gate_id=GATE_ID, uid=tag_uid_for("I0006"), item_id="I0006")
            reader.publish(topic(site_id, Kind.READER, READER_ID, Channel.EVENT, "tag_arrived"), event)
            rows = wait_for(lambda: client.get("/api/alarms").json()["alarms"], timeout_s=15, what="the alarm")
            assert rows[0]["items"][0]["item_id"] == "I0006" and rows[0]["gate_id"] == GATE_ID
    finally:
        reader.stop()
        code = backend.stop()
    assert code == 0, backend.log_text()[-3000:]
    assert "Traceback" not in backend.log_text()


def test_a_bad_site_file_exits_with_a_clear_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "site.yaml").write_text("site: x\ndemo: false\n", encoding="utf-8")
    assert run_backend(tmp_path / "site.yaml") == 2
    assert "broker.url is required" in capsys.readouterr().err


def test_a_taken_port_exits_with_a_clear_message(tmp_path: Path, site_id: str,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert run_backend(write_site(tmp_path, site_id=site_id), port=port) == 2
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err


def test_create_user_reads_the_password_from_stdin(tmp_path: Path, site_id: str, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    site_path = write_site(tmp_path, site_id=site_id)
    parser = argparse.ArgumentParser()
    register(parser)
    args = parser.parse_args(["--site", str(site_path), "create-user", "--username", "ngoc", "--role", "security"])
    monkeypatch.setattr("sys.stdin", io.StringIO("a-strong-password\n"))
    assert args.func(args) == 0
    assert "created security account ngoc" in capsys.readouterr().out
    monkeypatch.setattr("sys.stdin", io.StringIO("a-strong-password\n"))
    assert args.func(args) == 1
    assert "already taken" in capsys.readouterr().err
    engine = make_engine(load_backend_config(site_path).database_url.get_secret_value())
    try:
        with session_factory(engine)() as session:
            user = session.scalars(select(StaffUser).where(StaffUser.username == "ngoc")).one()
            assert user.role == "security" and user.active
    finally:
        engine.dispose()
