"""The backend's gate process, end to end: ``openshelf backend`` on a real Mosquitto with the generated ACL.

The gate path runs in a child of the backend, connected as the backend device
(same broker user, its own client id). A reader and a gate are played by MQTT
links with their own credentials, so the ACL is the production one.
"""

from __future__ import annotations

import json
from contextlib import closing
from pathlib import Path
from typing import Iterator

import httpx
import psutil
import pytest
import yaml

from openshelf.broker import write_mosquitto_files
from openshelf.contract import AlarmCommand, Channel, Kind, PassNotice, TagEvent, topic
from openshelf.demo import DEMO_GATE, DEMO_READER, demo_site
from openshelf.demo_catalog import tag_uid_for
from openshelf.runtime import device_link
from openshelf.site import SiteConfig, load_site
from tests.helpers import MOSQUITTO_RUN_AS, Mosquitto, Proc, free_port, wait_for

pytestmark = pytest.mark.e2e


class Site:
    """A private Mosquitto, the backend process, and a reader and a gate played by the test."""

    def __init__(self, tmp_path: Path, site_id: str) -> None:
        self.tmp = tmp_path
        self.http_port = free_port()
        broker_port = free_port()
        site = demo_site(broker_url=f"mqtt://127.0.0.1:{broker_port}", http_port=self.http_port,
                         modbus_port=free_port(), reader_port=free_port())
        site["site"] = site_id
        site["backend"]["circulation"] = {"server": {"port": 0}}  # no fixed SIP2 port: tests run side by side
        self.site_path = tmp_path / "site.yaml"
        self.site_path.write_text(yaml.safe_dump(site, allow_unicode=True), encoding="utf-8")
        self.site: SiteConfig = load_site(self.site_path)
        conf = write_mosquitto_files(self.site, tmp_path / "broker", port=broker_port, persistent=False,
                                     run_as=MOSQUITTO_RUN_AS)
        self.broker = Mosquitto(tmp_path, conf=conf, port=broker_port)
        self.backend = Proc("backend", ["backend", "--site", str(self.site_path)], tmp_path / "backend.log")
        self.reader = device_link(self.site, Kind.READER, DEMO_READER)
        self.gate = device_link(self.site, Kind.GATE, DEMO_GATE)
        self.commands: list[AlarmCommand] = []
        self.passes: list[PassNotice] = []

    def start(self) -> "Site":
        self.broker.start()
        self.backend.start(timeout_s=60)
        gate_topic = topic(self.site.site, Kind.GATE, DEMO_GATE, Channel.CMD, "alarm")
        self.gate.subscribe(gate_topic, AlarmCommand, lambda parts, message: self.commands.append(message))
        self.gate.subscribe(topic(self.site.site, Kind.GATE, DEMO_GATE, Channel.CMD, "pass"), PassNotice,
                            lambda parts, message: self.passes.append(message))
        assert self.gate.start(wait_s=10) and self.reader.start(wait_s=10)
        return self

    def stop(self) -> None:
        for link in (self.reader, self.gate):
            link.stop()
        self.backend.kill()
        self.broker.stop()

    def gate_process(self) -> psutil.Process:
        assert self.backend.popen is not None
        backend = psutil.Process(self.backend.popen.pid)

        def is_gate_process(process: psutil.Process) -> bool:
            try:
                return process.status() != psutil.STATUS_ZOMBIE and "backend.gate_process" in process.cmdline()
            except psutil.Error:  # it ended while we looked
                return False

        def child() -> psutil.Process | None:
            return next((process for process in backend.children() if is_gate_process(process)), None)

        return wait_for(child, timeout_s=20, what="the backend's gate process")

    def read(self, item_id: str) -> AlarmCommand | PassNotice:
        """A tag read at the gate, and the backend's answer to it."""
        event = TagEvent(reader_id=DEMO_READER, gate_id=DEMO_GATE, uid=tag_uid_for(item_id), item_id=item_id)
        self.reader.publish(topic(self.site.site, Kind.READER, DEMO_READER, Channel.EVENT, "tag_arrived"), event)

        def answer() -> AlarmCommand | PassNotice | None:
            for command in list(self.commands):
                if event.event_id in command.read_event_ids:
                    return command
            return next((notice for notice in list(self.passes) if notice.read_event_id == event.event_id), None)

        return wait_for(answer, timeout_s=20, what=f"the answer to a read of {item_id}")

    def staff(self, role: str) -> httpx.Client:
        accounts = json.loads((self.site.data_dir / "demo-accounts.json").read_text(encoding="utf-8"))
        client = httpx.Client(base_url=f"http://127.0.0.1:{self.http_port}", timeout=10)
        response = client.post("/api/login", json=accounts[role])
        assert response.status_code == 200, response.text
        return client


@pytest.fixture
def running(tmp_path: Path, site_id: str) -> Iterator[Site]:
    site = Site(tmp_path, site_id).start()
    try:
        yield site
    finally:
        site.stop()


def _alarm_ids(client: httpx.Client) -> set[str]:
    response = client.get("/api/alarms")
    assert response.status_code == 200, response.text
    return {row["id"] for row in response.json()["alarms"]}


def _mqtt_healthy(client: httpx.Client) -> bool:
    return client.get("/api/health").json()["mqtt"] is True


def test_the_gate_process_answers_stores_follows_loans_comes_back_and_ends_with_the_backend(running: Site) -> None:
    """One backend for the whole story (each start costs seconds); clean SIGTERM stops are test_alarm_path's."""
    first = running.gate_process()
    alarm = running.read("I0003")  # not on loan in the demo catalogue
    assert isinstance(alarm, AlarmCommand) and alarm.items[0].item_id == "I0003"
    with closing(running.staff("security")) as security, closing(running.staff("admin")) as desk:
        wait_for(lambda: alarm.alarm_id in _alarm_ids(security), timeout_s=20, what="the alarm on the dashboard")

        loan = desk.post("/api/loans", json={"item_id": "I0003", "patron_barcode": "P0001"})
        assert loan.status_code == 201, loan.text
        after = running.read("I0003")
        assert isinstance(after, PassNotice) and after.reason == "on_loan"

        first.kill()
        second = wait_for(lambda: (process := running.gate_process()).pid != first.pid and process,
                          timeout_s=30, what="a new gate process")
        wait_for(lambda: _mqtt_healthy(security), timeout_s=30, what="the new gate process connected")
        again = running.read("I0004")
        assert isinstance(again, AlarmCommand) and again.items[0].item_id == "I0004"
        assert isinstance(running.read("I0003"), PassNotice), "the new gate process knows the loan"
        wait_for(lambda: again.alarm_id in _alarm_ids(security), timeout_s=20, what="its alarm stored")
    log = running.backend.log_text()
    assert "Traceback" not in log, log[-3000:]
    assert f"gate process {first.pid} exited with -9" in log

    running.backend.kill()  # SIGKILL: no chance to stop its child in order
    gone, alive = psutil.wait_procs([second], timeout=20)
    assert second in gone and not alive, "the gate process outlived the backend"
