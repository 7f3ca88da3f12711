"""The backend process's circulation, in-process on a real Mosquitto: kiosk request/reply, the gate, SIP2.

One backend (BackendRuntime, demo site, SQLite) serves every test of this module;
each test uses its own items and idempotency keys.
"""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml
from sqlalchemy import func, select

from backend.config import load_backend_config
from backend.db import CirculationResult, Loan, session_factory
from backend.main import BackendRuntime
from backend.sip2.circulation import Sip2Circulation
from backend.sip2.client import Sip2Client
from backend.sip2.config import Sip2ClientConfig
from backend.sip2.errors import Sip2Error
from openshelf.contract import (
    AlarmCommand,
    Channel,
    CirculationOp,
    CirculationReply,
    CirculationRequest,
    Kind,
    PassNotice,
    TagEvent,
    TopicParts,
    expires_in,
    topic,
    utcnow,
)
from openshelf.demo_catalog import DEMO_PATRON_BARCODE, DEMO_PATRON_PIN, tag_uid_for
from openshelf.mqtt import MqttLink
from openshelf.site import BrokerSettings
from tests.backend.backend_testkit import cheap_passwords
from tests.helpers import wait_for

KIOSK, OPEN_KIOSK = "kiosk-1", "kiosk-2"
GATE, READER = "gate-1", "reader-1"


class Probe:
    """A kiosk and a gate reader on the broker: sends requests and tag reads, collects what comes back."""

    def __init__(self, broker_url: str, site: str, kiosk_id: str = KIOSK) -> None:
        self.site, self.kiosk_id = site, kiosk_id
        self.link = MqttLink(BrokerSettings(url=broker_url), client_id=f"{site}-probe-{uuid.uuid4().hex[:6]}")
        self.replies: dict[str, CirculationReply] = {}
        self.alarms: list[AlarmCommand] = []
        self.passes: list[PassNotice] = []
        self._lock = threading.Lock()
        for kiosk in (KIOSK, OPEN_KIOSK, "kiosk-x"):
            self.link.subscribe(topic(site, Kind.KIOSK, kiosk, Channel.REPLY, "circulation"), CirculationReply,
                                self._on_reply)
        self.link.subscribe(topic(site, Kind.GATE, GATE, Channel.CMD, "alarm"), AlarmCommand,
                            lambda parts, command: self.alarms.append(command))
        self.link.subscribe(topic(site, Kind.GATE, GATE, Channel.CMD, "pass"), PassNotice,
                            lambda parts, notice: self.passes.append(notice))
        assert self.link.start(wait_s=10)

    def _on_reply(self, parts: TopicParts, reply: CirculationReply) -> None:
        with self._lock:
            self.replies[reply.correlation_id] = reply

    def request(self, op: CirculationOp, *, kiosk_id: str | None = None, **fields: Any) -> CirculationRequest:
        kiosk = kiosk_id or self.kiosk_id
        fields.setdefault("idempotency_key", uuid.uuid4().hex)
        return CirculationRequest(kiosk_id=kiosk, op=op, expires_at=expires_in(10),
                                  reply_to=topic(self.site, Kind.KIOSK, kiosk, Channel.REPLY, "circulation"),
                                  **fields)

    def send(self, request: CirculationRequest) -> CirculationReply:
        self.link.publish(topic(self.site, Kind.BACKEND, "backend", Channel.CMD, "circulation"), request)
        return wait_for(lambda: self.replies.get(request.correlation_id), what=f"reply to {request.op.value}")

    def call(self, op: CirculationOp, **fields: Any) -> CirculationReply:
        return self.send(self.request(op, **fields))

    def read_tag(self, item_id: str) -> TagEvent:
        event = TagEvent(reader_id=READER, gate_id=GATE, uid=tag_uid_for(item_id), item_id=item_id)
        self.link.publish(topic(self.site, Kind.READER, READER, Channel.EVENT, "tag_arrived"), event)
        return event

    def answer_to(self, event: TagEvent) -> AlarmCommand | PassNotice:
        def find() -> AlarmCommand | PassNotice | None:
            for command in self.alarms:
                if event.event_id in command.read_event_ids:
                    return command
            return next((notice for notice in self.passes if notice.read_event_id == event.event_id), None)

        return wait_for(find, what="the backend's answer to a gate read")

    def stop(self) -> None:
        self.link.stop()


@pytest.fixture(scope="module")
def backend(mosquitto: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackendRuntime]:
    folder = tmp_path_factory.mktemp("kiosk-backend")
    site = {
        "site": f"k{uuid.uuid4().hex[:10]}", "demo": True, "data_dir": "data",
        "broker": {"url": mosquitto.url},
        "backend": {"gate_policy": {"debounce_s": 0},
                    "circulation": {"branch": "MAIN", "server": {"port": 0}}},
        "gates": [{"id": GATE}],
        "readers": [{"id": READER, "gate": GATE, "port": "socket://127.0.0.1:7001"}],
        "kiosks": [{"id": KIOSK, "secret": "kiosk-secret-0123"}, {"id": OPEN_KIOSK, "require_pin": False}],
    }
    path = folder / "site.yaml"
    path.write_text(yaml.safe_dump(site, allow_unicode=True), encoding="utf-8")
    runtime = BackendRuntime(load_backend_config(path), passwords=cheap_passwords())
    runtime.start(broker_wait_s=10)
    try:
        yield runtime
    finally:
        runtime.stop()


@pytest.fixture
def probe(backend: BackendRuntime, broker_url: str) -> Iterator[Probe]:
    value = Probe(broker_url, backend.config.site)
    try:
        yield value
    finally:
        value.stop()


def _signed_in(probe: Probe) -> str:
    reply = probe.call(CirculationOp.IDENTIFY, card_id=DEMO_PATRON_BARCODE, pin=DEMO_PATRON_PIN)
    assert reply.ok and reply.session_id, reply
    return reply.session_id


def test_identify_with_pin_opens_a_session_and_reveals_no_personal_data(probe: Probe) -> None:
    wrong = probe.call(CirculationOp.IDENTIFY, card_id=DEMO_PATRON_BARCODE, pin="0000")
    assert (wrong.ok, wrong.code, wrong.session_id) == (False, "wrong_pin", None)
    assert wrong.message_vi == "Mã PIN không đúng." and wrong.message_en == "The PIN is incorrect."
    unknown = probe.call(CirculationOp.IDENTIFY, card_id="NO-SUCH-CARD", pin="1234")
    assert (unknown.ok, unknown.code) == (False, "unknown_patron")
    assert probe.call(CirculationOp.IDENTIFY, card_id=DEMO_PATRON_BARCODE).code == "pin_required"
    reply = probe.call(CirculationOp.IDENTIFY, card_id=DEMO_PATRON_BARCODE, pin=DEMO_PATRON_PIN)
    assert reply.ok and reply.code == "patron_ok" and reply.session_id and reply.has_email is True
    assert {line.item_id for line in reply.loans} >= {"I0002", "I0005"}
    payload = reply.model_dump_json()
    assert "Nguyễn" not in payload and "@" not in payload  # no name, no address over MQTT
    # A kiosk configured without PINs identifies by card alone; its sessions are its own.
    open_reply = probe.call(CirculationOp.IDENTIFY, kiosk_id=OPEN_KIOSK, card_id=DEMO_PATRON_BARCODE)
    assert open_reply.ok
    foreign = probe.call(CirculationOp.ACCOUNT, session_id=open_reply.session_id)
    assert (foreign.ok, foreign.code) == (False, "session_expired")


def test_a_refused_checkout_says_why_in_vietnamese(probe: Probe) -> None:
    session_id = _signed_in(probe)
    reply = probe.call(CirculationOp.CHECKOUT, session_id=session_id, item_id="I0008")
    assert (reply.ok, reply.code, reply.desensitize) == (False, "item_in_library_only", False)
    assert reply.message_vi == "Tài liệu này chỉ được đọc tại thư viện."
    gone = probe.call(CirculationOp.CHECKOUT, session_id="made-up-session", item_id="I0003")
    assert (gone.ok, gone.code) == (False, "session_expired") and "thẻ" in gone.message_vi


def test_a_checkout_at_the_kiosk_lets_the_item_through_the_gate(probe: Probe, backend: BackendRuntime) -> None:
    before = probe.answer_to(probe.read_tag("I0003"))
    assert isinstance(before, AlarmCommand) and before.items[0].item_id == "I0003"
    session_id = _signed_in(probe)
    reply = probe.call(CirculationOp.CHECKOUT, session_id=session_id, item_id="I0003")
    assert reply.ok and reply.code == "checked_out" and reply.desensitize is True and reply.due_at is not None
    after = probe.answer_to(probe.read_tag("I0003"))
    assert isinstance(after, PassNotice) and after.reason == "on_loan"
    back = probe.call(CirculationOp.CHECKIN, item_id="I0003")
    assert back.ok and back.resensitize is True and back.sort_hint == "shelve"
    assert isinstance(probe.answer_to(probe.read_tag("I0003")), AlarmCommand)


def test_replays_are_applied_once_and_offline_ones_at_their_time(probe: Probe, backend: BackendRuntime) -> None:
    session_id = _signed_in(probe)
    first_request = probe.request(CirculationOp.CHECKOUT, session_id=session_id, item_id="I0004",
                                  idempotency_key="replay-I0004-0001")
    first = probe.send(first_request)
    # The kiosk repeats the same transaction (new message, same key) after a lost answer.
    repeated = probe.send(first_request.model_copy(update={"event_id": uuid.uuid4().hex,
                                                           "correlation_id": uuid.uuid4().hex}))
    assert first.ok and repeated.ok and repeated.due_at == first.due_at
    sessions = session_factory(backend.engine)
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Loan).where(Loan.item_id == "I0004")) == 1
        assert session.scalar(select(func.count()).select_from(CirculationResult)
                              .where(CirculationResult.key.like("%replay-I0004-0001"))) == 1
    # Queued while offline: no session, the card instead, no_block, when it happened.
    an_hour_ago = utcnow() - timedelta(hours=1)
    offline = probe.call(CirculationOp.CHECKOUT, card_id=DEMO_PATRON_BARCODE, item_id="I0007", no_block=True,
                         occurred_at=an_hour_ago, idempotency_key="offline-I0007-0001")
    assert offline.ok
    with sessions() as session:
        loan = session.scalars(select(Loan).where(Loan.item_id == "I0007", Loan.returned_at.is_(None))).one()
        assert abs((loan.checked_out_at - an_hour_ago).total_seconds()) < 1
    without_block = probe.call(CirculationOp.CHECKOUT, card_id=DEMO_PATRON_BARCODE, item_id="I0010")
    assert without_block.code == "session_expired"  # only offline replays may skip the session


def test_requests_from_unknown_kiosks_are_ignored(probe: Probe, backend: BackendRuntime) -> None:
    service = backend.circulation.kiosk_service
    before = service.refused_senders
    probe.link.publish(topic(probe.site, Kind.BACKEND, "backend", Channel.CMD, "circulation"),
                       probe.request(CirculationOp.CHECKIN, kiosk_id="kiosk-x", item_id="I0003"))
    wait_for(lambda: service.refused_senders == before + 1, what="the stranger refused")
    assert probe.replies == {}


def test_the_backend_serves_sip2_over_its_own_circulation(backend: BackendRuntime) -> None:
    server = backend.circulation.sip2
    assert server is not None and server.running
    config = Sip2ClientConfig(host="127.0.0.1", port=server.port, user_id="sc1", password="sc1",
                              location_code="MAIN", timeout_s=5, connect_timeout_s=5)
    circulation = Sip2Circulation(Sip2Client(config))
    try:
        status = circulation.patron_status(DEMO_PATRON_BARCODE, DEMO_PATRON_PIN)
        assert status.found and status.pin_valid is True
        result = circulation.checkout(DEMO_PATRON_BARCODE, "I0006", idempotency_key=uuid.uuid4().hex)
        assert result.ok and result.reason.value == "checked_out" and result.title == "Nỗi buồn chiến tranh"
    finally:
        circulation.close()
    assert backend.view.lookup(tag_uid_for("I0006")).on_loan is True
    intruder = Sip2Client(config.model_copy(update={"password": "guess"}))
    try:
        with pytest.raises(Sip2Error):
            intruder.connect()
    finally:
        intruder.close()


def test_the_sip2_server_stops_with_the_backend(tmp_path: Path) -> None:
    # Covered by the module fixture's teardown (no leaked threads); here: the demo default is 6001.
    from backend.sip2_service import DEMO_SIP2_PORT, sip2_server_settings

    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump({"site": "s1", "demo": True, "broker": {"url": "mqtt://127.0.0.1:1883"}}))
    settings = sip2_server_settings(load_backend_config(path))
    assert settings is not None and (settings.host, settings.port) == ("127.0.0.1", DEMO_SIP2_PORT)
    assert [terminal.user_id for terminal in settings.terminals] == ["sc1"]
