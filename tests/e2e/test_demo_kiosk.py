"""`openshelf demo` with a display: it starts the kiosk, which comes up and reports itself to the dashboard."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess

import httpx
import pytest

from tests.helpers import Proc, free_port, wait_for

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("Xvfb") is None, reason="needs Xvfb (Debian package xvfb)"),
    pytest.mark.skipif(importlib.util.find_spec("kivy") is None, reason="needs the kiosk extra (Kivy)"),
]


@pytest.fixture
def display():
    """A virtual X display of kiosk size; Xvfb picks a free display number and tells us on a pipe."""
    read_end, write_end = os.pipe()
    server = subprocess.Popen(["Xvfb", "-displayfd", str(write_end), "-screen", "0", "1280x800x24",
                               "-nolisten", "tcp"], pass_fds=(write_end,), stderr=subprocess.DEVNULL)
    os.close(write_end)
    try:
        with os.fdopen(read_end) as announced:
            number = announced.readline().strip()
        assert number.isdigit(), "Xvfb did not announce its display"
        yield f":{number}"
    finally:
        server.terminate()
        server.wait(10)


def test_demo_starts_one_kiosk_when_a_display_is_available(tmp_path, display):
    port = free_port()
    data_dir = tmp_path / "demo"
    environment = {"DISPLAY": display, "KIVY_HOME": str(tmp_path / "kivy-home")}
    demo = Proc("demo", ["demo", "--port", str(port), "--data-dir", str(data_dir)], tmp_path / "demo.log",
                env=environment).start(timeout_s=120)
    try:
        accounts = json.loads((data_dir / "demo-accounts.json").read_text(encoding="utf-8"))
        technician = accounts["technician"]
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            login = {"username": technician["username"], "password": technician["password"]}
            assert client.post("/api/login", json=login).status_code == 200

            def kiosk_online() -> dict | None:
                devices = {device["id"]: device for device in client.get("/api/devices").json()}
                kiosk = devices.get("kiosk-1")
                return kiosk if kiosk and kiosk["online"] and kiosk["state"] else None

            kiosk = wait_for(kiosk_online, timeout_s=60, what="the demo kiosk online on the dashboard")
        assert kiosk["kind"] == "kiosk" and kiosk["configured"] is True
        assert kiosk["state"]["mode"] == "idle" and kiosk["state"]["language"] == "vi"
        assert kiosk["state"]["queued_transactions"] == 0
        kiosk_log = (data_dir / "logs" / "kiosk.log").read_text(encoding="utf-8")
        assert "Start application main loop" in kiosk_log  # a real window on the display, not a headless stand-in
    finally:
        assert demo.popen is not None
        demo.popen.send_signal(signal.SIGINT)  # Ctrl-C stops the kiosk with everything else
        demo.popen.wait(60)
        code = demo.stop()
    assert code == 0, demo.log_text()[-3000:]
    for log in (data_dir / "logs").glob("*.log"):
        assert "Traceback" not in log.read_text(encoding="utf-8"), f"{log.name} has a traceback"
