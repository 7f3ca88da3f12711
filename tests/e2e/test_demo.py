"""`openshelf demo` is a tested program: one command starts everything, a walk alarms, Ctrl-C stops it."""

from __future__ import annotations

import json
import signal

import httpx
import pytest

from tests.helpers import Proc, free_port, wait_for

pytestmark = pytest.mark.e2e


def test_demo_starts_everything_alarms_on_a_walk_and_stops_on_ctrl_c(tmp_path):
    port = free_port()
    data_dir = tmp_path / "demo"
    demo = Proc("demo", ["demo", "--port", str(port), "--data-dir", str(data_dir), "--no-kiosk"],
                tmp_path / "demo.log").start(timeout_s=120)
    try:
        assert demo.ready_line["url"] == f"http://127.0.0.1:{port}"
        assert "openshelf sim walk" in demo.stdout
        accounts = json.loads((data_dir / "demo-accounts.json").read_text(encoding="utf-8"))
        assert set(accounts) == {"security", "technician", "admin"}
        for role in accounts:
            account = accounts[role]
            username = account["username"] if isinstance(account, dict) else account[0]
            assert username in demo.stdout, "the demo prints every account"

        walker = Proc("walk", ["sim", "walk", "--site", demo.ready_line["site"], "--item", "I0007",
                               "--dwell", "0.6"], tmp_path / "walk.log").start(wait_ready=False)
        walker.popen.wait(30)
        assert walker.stop() == 0

        security = accounts["security"]
        username, password = (security["username"], security["password"]) if isinstance(security, dict) \
            else security
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            assert client.post("/api/login", json={"username": username, "password": password}).status_code == 200

            def alarm_for_item():
                body = client.get("/api/alarms").json()
                rows = body["alarms"] if isinstance(body, dict) else body
                return [row for row in rows if any(i.get("item_id") == "I0007" for i in row["items"])]

            wait_for(alarm_for_item, timeout_s=30, what="demo alarm for I0007")
            assert client.get("/docs").status_code == 200
    finally:
        assert demo.popen is not None
        demo.popen.send_signal(signal.SIGINT)  # Ctrl-C
        demo.popen.wait(60)
        code = demo.stop()
    assert code == 0, demo.log_text()[-3000:]
    for log in (data_dir / "logs").glob("*.log"):
        assert "Traceback" not in log.read_text(encoding="utf-8"), f"{log.name} has a traceback"
