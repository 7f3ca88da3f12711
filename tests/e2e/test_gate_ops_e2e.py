"""Gate operations end to end: people walking through the beams reach the occupancy API, and a camera outage
reaches the alarm record as the camera's reason — every part a real ``openshelf`` process on a Mosquitto with ACL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import httpx
import pytest
import yaml

from openshelf.broker import write_mosquitto_files
from openshelf.demo import DEMO_CAMERA, DEMO_GATE, DEMO_READER, demo_site
from openshelf.site import load_site
from tests.helpers import MOSQUITTO_RUN_AS, Mosquitto, Proc, free_port, wait_for

pytestmark = pytest.mark.e2e

# Quick to notice an outage and quick to finish a clip, so the test stays short.
CAMERA_TUNING = {"stale_after_s": 1.0, "open_timeout_s": 2.0, "read_timeout_s": 2.0, "pre_event_s": 1.0,
                 "post_event_s": 1.0}


class Stack:
    """The demo's processes on a private broker, the camera reading a simulated MJPEG camera over HTTP."""

    def __init__(self, tmp_path: Path, site_id: str) -> None:
        self.tmp = tmp_path
        self.http_port = free_port()
        self.modbus_port = free_port()
        self.camera_port = free_port()
        broker_port = free_port()
        site = demo_site(broker_url=f"mqtt://127.0.0.1:{broker_port}", http_port=self.http_port,
                         modbus_port=self.modbus_port, reader_port=free_port())
        site["site"] = site_id
        site["cameras"][0].update(source=f"http://127.0.0.1:{self.camera_port}/stream.mjpg", **CAMERA_TUNING)
        self.site_path = tmp_path / "site.yaml"
        self.site_path.write_text(yaml.safe_dump(site, allow_unicode=True), encoding="utf-8")
        self.site = load_site(self.site_path)
        conf = write_mosquitto_files(self.site, tmp_path / "broker", port=broker_port, persistent=False,
                                     run_as=MOSQUITTO_RUN_AS)
        self.broker = Mosquitto(tmp_path, conf=conf, port=broker_port)
        self.procs: dict[str, Proc] = {}

    def proc(self, name: str, *args: str) -> Proc:
        proc = Proc(name, list(args), self.tmp / f"{name}.log")
        self.procs[name] = proc
        return proc

    def start(self) -> "Stack":
        self.broker.start()
        site = str(self.site_path)
        # Simulators first, then the services; each group starts at once (services reconnect by themselves).
        simulators = [self.proc("sim-camera", *self.camera_stream_args()),
                      self.proc("sim-gate-io", "sim", "gate-io", "--site", site, "--device", DEMO_GATE),
                      self.proc("sim-reader", "sim", "reader", "--site", site, "--device", DEMO_READER)]
        services = [self.proc("backend", "backend", "--site", site),
                    self.proc("gate", "gate", "--site", site, "--device", DEMO_GATE),
                    self.proc("rfid", "rfid", "run", "--site", site, "--device", DEMO_READER),
                    self.proc("camera", "camera", "--site", site, "--device", DEMO_CAMERA)]
        for group in (simulators, services):
            for proc in group:
                proc.start(wait_ready=False)
            for proc in group:
                proc.ready_line = wait_for(proc._ready, 60, 0.05, f"{proc.name} ready (log: {proc.log_path})")
        return self

    def camera_stream_args(self) -> list[str]:
        return ["sim", "camera", "--port", str(self.camera_port), "--width", "640", "--height", "360", "--fps", "10"]

    def start_camera_stream(self) -> None:
        self.proc("sim-camera", *self.camera_stream_args()).start()

    def stop_camera_stream(self) -> None:
        assert self.procs["sim-camera"].stop() == 0

    def stop(self) -> dict[str, int]:
        codes = {name: proc.stop() for name, proc in reversed(list(self.procs.items()))}
        self.broker.stop()
        return codes

    def walk(self, *args: str) -> None:
        walker = Proc("walk", ["sim", "walk", "--site", str(self.site_path), "--dwell", "0.6", *args],
                      self.tmp / "walk.log").start(wait_ready=False)
        assert walker.popen is not None
        walker.popen.wait(30)
        assert walker.stop() == 0, walker.log_text()

    def staff_client(self, role: str) -> httpx.Client:
        account = json.loads((self.site.data_dir / "demo-accounts.json").read_text(encoding="utf-8"))[role]
        client = httpx.Client(base_url=f"http://127.0.0.1:{self.http_port}", timeout=10)
        response = client.post("/api/login", json={"username": account["username"], "password": account["password"]})
        assert response.status_code == 200, response.text
        return client


@pytest.fixture
def stack(tmp_path: Path, site_id: str) -> Iterator[Stack]:
    running = Stack(tmp_path, site_id).start()
    yield running
    codes = running.stop()
    assert all(code == 0 for code in codes.values()), f"unclean exits: {codes}"
    for name, proc in running.procs.items():
        assert "Traceback" not in proc.log_text(), f"{name} logged a traceback:\n{proc.log_text()[-3000:]}"


def occupancy_reaches(client: httpx.Client, entries: int, exits: int) -> dict | None:
    body = client.get("/api/gates/occupancy").json()
    gate = next(row for row in body["gates"] if row["gate_id"] == DEMO_GATE)
    return body if (gate["entries"], gate["exits"]) == (entries, exits) else None


def camera_condition(client: httpx.Client) -> str:
    devices = client.get("/api/devices/health").json()
    return next(device for device in devices if device["id"] == DEMO_CAMERA)["condition"]


def alarm_for(client: httpx.Client, item_id: str) -> dict | None:
    alarms = client.get("/api/alarms").json()["alarms"]
    return next((alarm for alarm in alarms if any(item["item_id"] == item_id for item in alarm["items"])), None)


def test_walks_reach_the_occupancy_and_a_camera_outage_reaches_the_alarm(stack: Stack) -> None:
    staff = stack.staff_client("security")
    wait_for(lambda: staff.get(f"/api/cameras/{DEMO_CAMERA}/live.jpg").status_code == 200, timeout_s=20,
             what="the camera's live view at the backend")

    stack.walk("--no-items", "--direction", "in", "--tailgate")  # two patrons, close together
    stack.walk("--no-items", "--direction", "out")
    body = wait_for(lambda: occupancy_reaches(staff, 2, 1), timeout_s=15, what="2 entries and 1 exit counted")
    assert body["total"]["occupancy"] == 1 and not body["total"]["drift"]

    stack.stop_camera_stream()
    wait_for(lambda: camera_condition(staff) == "fault", timeout_s=20, what="the camera reported its stream stale")
    stack.walk("--item", "I0003")  # not on loan: alarms while the camera sees nothing
    during = wait_for(lambda: (alarm_for(staff, "I0003") or {}).get("evidence_problem"), timeout_s=20,
                      what="the camera's reason on the alarm")
    assert "stream" in during or "frame" in during
    assert alarm_for(staff, "I0003")["snapshot_url"] is None

    stack.start_camera_stream()
    wait_for(lambda: camera_condition(staff) == "ok", timeout_s=30, what="the camera stream live again")
    stack.walk("--item", "I0004")
    after = wait_for(lambda: (alarm_for(staff, "I0004") or {}).get("snapshot_url"), timeout_s=20,
                     what="a snapshot on the alarm after the outage")
    image = staff.get(after)
    assert image.status_code == 200 and image.content[:3] == b"\xff\xd8\xff"
    assert occupancy_reaches(staff, 2, 3)["total"] == {"entries": 2, "exits": 3, "net": -1, "occupancy": 0,
                                                       "drift": True}  # the item carriers were never counted in
