"""The spine, end to end: a tag carried through the gate travels through every real process.

Started as a user would start them (the ``openshelf`` command line), on a real
Mosquitto with one user per device and the generated ACL, real Modbus TCP on
loopback, the FEIG reader simulator on TCP and a synthetic camera stream.
"""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path

import httpx
import paho.mqtt.client as paho
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from openshelf.broker import write_mosquitto_files
from openshelf.contract import BackendState, Channel, Kind, topic
from openshelf.demo import DEMO_GATE, DEMO_READER, demo_site
from openshelf.site import load_site
from tests.helpers import MOSQUITTO_RUN_AS, Mosquitto, Proc, free_port, wait_for

pytestmark = pytest.mark.e2e


class Stack:
    """Every OpenShelf process of one gate, as the demo runs them, on a private broker."""

    def __init__(self, tmp_path: Path, site_id: str) -> None:
        self.tmp = tmp_path
        self.http_port = free_port()
        self.modbus_port = free_port()
        broker_port = free_port()
        site = demo_site(broker_url=f"mqtt://127.0.0.1:{broker_port}", http_port=self.http_port,
                         modbus_port=self.modbus_port, reader_port=free_port())
        site["site"] = site_id
        self.site_path = tmp_path / "site.yaml"
        self.site_path.write_text(yaml.safe_dump(site, allow_unicode=True), encoding="utf-8")
        self.site = load_site(self.site_path)
        conf = write_mosquitto_files(self.site, tmp_path / "broker", port=broker_port, persistent=False, run_as=MOSQUITTO_RUN_AS)
        self.broker = Mosquitto(tmp_path, conf=conf, port=broker_port)
        self.procs: dict[str, Proc] = {}

    def proc(self, name: str, *args: str) -> Proc:
        proc = Proc(name, list(args), self.tmp / f"{name}.log")
        self.procs[name] = proc
        return proc

    def start(self) -> "Stack":
        self.broker.start()
        site = str(self.site_path)
        self.proc("sim-gate-io", "sim", "gate-io", "--site", site, "--device", DEMO_GATE).start()
        self.proc("sim-reader", "sim", "reader", "--site", site, "--device", DEMO_READER).start()
        self.proc("backend", "backend", "--site", site).start(timeout_s=60)
        self.proc("gate", "gate", "--site", site, "--device", DEMO_GATE).start()
        self.proc("rfid", "rfid", "run", "--site", site, "--device", DEMO_READER).start()
        self.proc("camera", "camera", "--site", site, "--device", "cam-1").start()
        return self

    def stop(self) -> dict[str, int]:
        codes = {name: proc.stop() for name, proc in reversed(list(self.procs.items()))}
        self.broker.stop()
        return codes

    def walk(self, *items: str) -> None:
        args = ["sim", "walk", "--site", str(self.site_path), "--dwell", "0.6"]
        for item in items:
            args += ["--item", item]
        walker = Proc(f"walk-{'-'.join(items)}", args, self.tmp / "walk.log").start(wait_ready=False)
        assert walker.popen is not None
        walker.popen.wait(30)
        assert walker.stop() == 0, walker.log_text()

    def staff_client(self, role: str = "security") -> httpx.Client:
        accounts = json.loads((self.site.data_dir / "demo-accounts.json").read_text(encoding="utf-8"))
        account = accounts[role]
        username, password = (account["username"], account["password"]) if isinstance(account, dict) else account
        client = httpx.Client(base_url=f"http://127.0.0.1:{self.http_port}", timeout=10)
        response = client.post("/api/login", json={"username": username, "password": password})
        assert response.status_code == 200, response.text
        return client

    def light_on(self) -> bool:
        from gate_controller.modbus import ModbusGateIo
        from gate_controller.profile import load_gate_profile

        async def read() -> bool:
            io = ModbusGateIo.tcp(load_gate_profile("moxa-e1214"), "127.0.0.1", self.modbus_port)
            try:
                await io.connect()
                return (await io.read_outputs())["light"]
            finally:
                await io.close()

        return asyncio.run(read())


def alarms_for(client: httpx.Client, item_id: str) -> list[dict]:
    response = client.get("/api/alarms")
    assert response.status_code == 200, response.text
    body = response.json()
    rows = body["alarms"] if isinstance(body, dict) else body
    return [row for row in rows if any(entry.get("item_id") == item_id for entry in row["items"])]


@pytest.fixture
def stack(tmp_path: Path, site_id: str):
    running = Stack(tmp_path, site_id).start()
    yield running
    codes = running.stop()
    assert all(code == 0 for code in codes.values()), f"unclean exits: {codes}"
    for name, proc in running.procs.items():
        assert "Traceback" not in proc.log_text(), f"{name} logged a traceback:\n{proc.log_text()[-3000:]}"


def test_unloaned_item_alarms_with_snapshot_and_loaned_item_passes(stack: Stack):
    staff = stack.staff_client("security")
    assert not stack.light_on()

    stack.walk("I0002")  # on loan in the demo catalogue
    stack.walk("I0003")  # not on loan
    wait_for(stack.light_on, timeout_s=20, what="alarm light coil on")
    alarm = wait_for(lambda: alarms_for(staff, "I0003"), timeout_s=20, what="alarm in the API")[0]
    assert alarm["gate_id"] == DEMO_GATE
    assert not alarms_for(staff, "I0002"), "a loaned item must not alarm"

    with_snapshot = wait_for(lambda: [row for row in alarms_for(staff, "I0003") if row.get("snapshot_url")],
                             timeout_s=30, what="snapshot linked to the alarm")[0]
    image = staff.get(with_snapshot["snapshot_url"])
    assert image.status_code == 200
    assert image.content[:3] == b"\xff\xd8\xff", "the snapshot is a JPEG"
    assert len(image.content) > 5_000

    wait_for(lambda: not stack.light_on(), timeout_s=20, what="alarm light off after the alarm duration")


def test_malformed_event_is_dropped_and_nothing_stops(stack: Stack):
    site = stack.site
    garbage_sender = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"{site.site}-garbage")
    garbage_sender.username_pw_set(DEMO_READER, site.secret_of(DEMO_READER))
    garbage_sender.connect("127.0.0.1", stack.broker.port)
    garbage_sender.loop_start()
    event_topic = topic(site.site, Kind.READER, DEMO_READER, Channel.EVENT, "tag_arrived")
    for payload in (b"\xff\xfenot json", b'{"version": 1, "uid": "zz"}', b"[]"):
        garbage_sender.publish(event_topic, payload, qos=1).wait_for_publish(5)
    garbage_sender.loop_stop()
    garbage_sender.disconnect()

    staff = stack.staff_client("security")
    stack.walk("I0004")
    wait_for(lambda: alarms_for(staff, "I0004"), timeout_s=20, what="alarm after garbage")
    assert all(proc.alive() for proc in stack.procs.values())

    states: list[BackendState] = []
    got = threading.Event()
    watcher = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"{site.site}-watch")
    watcher.username_pw_set(site.backend.id, site.secret_of(site.backend.id))

    def on_message(client, userdata, msg):
        states.append(BackendState.model_validate_json(msg.payload))
        if states[-1].malformed_messages >= 3:
            got.set()

    watcher.on_message = on_message
    watcher.connect("127.0.0.1", stack.broker.port)
    watcher.subscribe(topic(site.site, Kind.BACKEND, site.backend.id, Channel.STATE), qos=1)
    watcher.loop_start()
    try:
        assert got.wait(30), f"backend never reported the 3 malformed messages: {states[-1:]}"
    finally:
        watcher.loop_stop()
        watcher.disconnect()
