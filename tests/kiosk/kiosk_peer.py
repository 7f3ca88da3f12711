"""A protocol peer for the kiosk: answers CirculationRequest on the real broker like a backend would.

It speaks only the contract (``backend/<id>/cmd/circulation`` in,
CirculationReply on ``reply_to`` out) and the two HTTP endpoints the kiosk
reads (item titles, a session's receipt address), from an in-memory library.
Patron-facing sentences come from the backend's message catalogue, so the
kiosk shows exactly what the backend would send. It records how often each
idempotency key was *applied*, so tests can prove nothing is applied twice.

Modes for offline tests: ``go_down()``/``come_back()`` (a backend restart as the
kiosk sees it: the status topic goes offline, then online again), ``silent`` (connected but not answering)
and ``lose_answers`` (applies the request but the answer never arrives).
"""

from __future__ import annotations

import base64
import json
import threading
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from backend.circulation.messages import ReasonCode, message
from openshelf.contract import (
    Channel,
    CirculationOp,
    DeviceStatus,
    CirculationReply,
    CirculationRequest,
    HoldLine,
    Kind,
    LoanLine,
    TopicParts,
    topic,
)
from openshelf.mqtt import MqttLink
from openshelf.site import BrokerSettings

LOAN_DAYS = 14
RENEWAL_LIMIT = 2


@dataclass
class PeerPatron:
    card_id: str
    pin: str = "1234"
    expires_on: date | None = None
    blocked: bool = False
    email: str | None = None
    fines: Decimal = Decimal(0)


@dataclass
class PeerItem:
    item_id: str
    title: str
    author: str = ""
    parts: int = 1
    in_library_only: bool = False
    hold_for: str | None = None  # card id of the patron the item is reserved for
    hold_ready: bool = False
    home_branch: str = "main"


@dataclass
class PeerLoan:
    card_id: str
    due_at: datetime
    renewals: int = 0


@dataclass
class PeerLibrary:
    patrons: dict[str, PeerPatron] = field(default_factory=dict)
    items: dict[str, PeerItem] = field(default_factory=dict)
    loans: dict[str, PeerLoan] = field(default_factory=dict)

    def add_patron(self, patron: PeerPatron) -> PeerPatron:
        self.patrons[patron.card_id] = patron
        return patron

    def add_item(self, item: PeerItem) -> PeerItem:
        self.items[item.item_id] = item
        return item


class KioskPeer:
    def __init__(self, broker_url: str, site: str, *, backend_id: str = "backend",
                 kiosk_credentials: tuple[str, str] | None = None) -> None:
        self.site, self.backend_id = site, backend_id
        self.library = PeerLibrary()
        self.applied: Counter[str] = Counter()  # idempotency key -> times applied (must stay <= 1)
        self.requests: list[CirculationRequest] = []
        self.silent = False
        self.lose_answers = False
        self._broker = BrokerSettings(url=broker_url)
        self._results: dict[str, CirculationReply] = {}
        self._sessions: dict[str, str] = {}
        self._lock = threading.Lock()
        self._link: MqttLink | None = None
        self._http = _CatalogueServer(self, kiosk_credentials)
        self._status_topic = topic(site, Kind.BACKEND, backend_id, Channel.STATUS)

    # ------------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        return self._http.url

    def start(self) -> "KioskPeer":
        self._http.start()
        link = MqttLink(self._broker, client_id=f"{self.site}-{self.backend_id}-{uuid.uuid4().hex[:6]}",
                        status_topic=self._status_topic)
        link.subscribe(topic(self.site, Kind.BACKEND, self.backend_id, Channel.CMD, "circulation"),
                       CirculationRequest, self._on_request)
        assert link.start(), "peer could not connect to the broker"
        self._link = link
        return self

    def stop(self) -> None:
        """Like a backend going down cleanly: its status says offline, requests go unanswered."""
        if self._link is not None:
            self._link.stop()
            self._link = None

    def go_down(self) -> None:
        """A backend restart as the kiosk sees it: the status topic says offline, nothing is answered..."""
        assert self._link is not None
        self._link.publish(self._status_topic, DeviceStatus(online=False), retain=True).wait_for_publish(5)
        with self._lock:
            self.silent = True

    def come_back(self) -> None:
        """...until the backend is up again and says so (the same in-memory library: nothing lost)."""
        assert self._link is not None
        with self._lock:
            self.silent = False
        self._link.publish(self._status_topic, DeviceStatus(online=True), retain=True).wait_for_publish(5)

    def close(self) -> None:
        self.stop()
        self._http.stop()

    # ------------------------------------------------------------------ queries for tests

    def loans_of(self, card_id: str) -> set[str]:
        with self._lock:
            return {item_id for item_id, loan in self.library.loans.items() if loan.card_id == card_id}

    def on_loan(self, item_id: str) -> bool:
        with self._lock:
            return item_id in self.library.loans

    def ops(self, op: CirculationOp) -> list[CirculationRequest]:
        with self._lock:
            return [request for request in self.requests if request.op is op]

    # ------------------------------------------------------------------ protocol

    def _on_request(self, parts: TopicParts, request: CirculationRequest) -> None:
        with self._lock:
            if self.silent:
                return  # a backend that is down never sees the request
            self.requests.append(request)
            reply = self._answer(request)
        if self.lose_answers or self._link is None:
            return
        self._link.publish(request.reply_to, reply.model_copy(update={"correlation_id": request.correlation_id}))

    def _answer(self, request: CirculationRequest) -> CirculationReply:
        mutating = request.op in (CirculationOp.CHECKOUT, CirculationOp.CHECKIN)
        if mutating and request.idempotency_key in self._results:
            return self._results[request.idempotency_key]  # the first answer, not a second transaction
        handler = getattr(self, f"_{request.op.value}")
        reply: CirculationReply = handler(request)
        if mutating:
            self._results[request.idempotency_key] = reply
            if reply.ok:
                self.applied[request.idempotency_key] += 1
        return reply

    def _reply(self, request: CirculationRequest, ok: bool, code: ReasonCode, **fields: Any) -> CirculationReply:
        params = fields.pop("params", {})
        text = message(code, **params)
        return CirculationReply(correlation_id=request.correlation_id, ok=ok, code=code.value, message_vi=text.vi,
                                message_en=text.en, **fields)

    def _patron_of(self, request: CirculationRequest) -> PeerPatron | None:
        card = self._sessions.get(request.session_id or "", request.card_id or "")
        return self.library.patrons.get(card or request.card_id or "")

    def _identify(self, request: CirculationRequest) -> CirculationReply:
        patron = self.library.patrons.get(request.card_id or "")
        if patron is None:
            return self._reply(request, False, ReasonCode.UNKNOWN_PATRON)
        if request.pin is not None and request.pin != patron.pin:
            return self._reply(request, False, ReasonCode.WRONG_PIN)
        if patron.expires_on is not None and patron.expires_on < date.today():
            return self._reply(request, False, ReasonCode.PATRON_EXPIRED, params={"date": patron.expires_on})
        if patron.blocked:
            return self._reply(request, False, ReasonCode.PATRON_BLOCKED)
        session_id = uuid.uuid4().hex
        self._sessions[session_id] = patron.card_id
        return self._reply(request, True, ReasonCode.PATRON_OK, session_id=session_id,
                           has_email=patron.email is not None)

    def _checkout(self, request: CirculationRequest) -> CirculationReply:
        patron = self._patron_of(request)
        item = self.library.items.get(request.item_id or "")
        if patron is None:
            return self._reply(request, False, ReasonCode.UNKNOWN_PATRON, item_id=request.item_id)
        if item is None:
            return self._reply(request, False, ReasonCode.UNKNOWN_ITEM, item_id=request.item_id)
        loan = self.library.loans.get(item.item_id)
        if loan is not None and loan.card_id == patron.card_id:
            return self._reply(request, True, ReasonCode.CHECKED_OUT, item_id=item.item_id, due_at=loan.due_at,
                               desensitize=True, params={"due": loan.due_at})
        if not request.no_block:
            refusal = self._checkout_refusal(patron, item, loan)
            if refusal is not None:
                return self._reply(request, False, refusal, item_id=item.item_id)
        due_at = (request.occurred_at + timedelta(days=LOAN_DAYS)).replace(hour=23, minute=59, second=0,
                                                                           microsecond=0)
        self.library.loans[item.item_id] = PeerLoan(patron.card_id, due_at)
        return self._reply(request, True, ReasonCode.CHECKED_OUT, item_id=item.item_id, due_at=due_at,
                           desensitize=True, params={"due": due_at})

    @staticmethod
    def _checkout_refusal(patron: PeerPatron, item: PeerItem, loan: PeerLoan | None) -> ReasonCode | None:
        if item.in_library_only:
            return ReasonCode.ITEM_IN_LIBRARY_ONLY
        if loan is not None:
            return ReasonCode.ON_LOAN_TO_OTHER
        if item.hold_for is not None and item.hold_for != patron.card_id:
            return ReasonCode.ON_HOLD_FOR_OTHER
        return None

    def _checkin(self, request: CirculationRequest) -> CirculationReply:
        item = self.library.items.get(request.item_id or "")
        if item is None:
            return self._reply(request, False, ReasonCode.UNKNOWN_ITEM, item_id=request.item_id)
        loan = self.library.loans.pop(item.item_id, None)
        if item.hold_for is not None:
            item.hold_ready = True
            return self._reply(request, True, ReasonCode.RETURNED_HOLD_HERE, item_id=item.item_id,
                               resensitize=True, sort_hint="hold_shelf")
        if item.home_branch != "main":
            return self._reply(request, True, ReasonCode.RETURNED_TRANSIT, item_id=item.item_id, resensitize=True,
                               sort_hint="transit", params={"branch": item.home_branch})
        code = ReasonCode.RETURNED if loan is not None else ReasonCode.NOT_ON_LOAN
        return self._reply(request, True, code, item_id=item.item_id, resensitize=True, sort_hint="shelve")

    def _renew(self, request: CirculationRequest) -> CirculationReply:
        patron = self._patron_of(request)
        loan = self.library.loans.get(request.item_id or "")
        if patron is None or loan is None or loan.card_id != patron.card_id:
            return self._reply(request, False, ReasonCode.NOT_LOANED_TO_PATRON, item_id=request.item_id)
        refusal = self._renew_one(request.item_id or "", loan)
        if refusal is not None:
            return self._reply(request, False, refusal, item_id=request.item_id,
                               params={"limit": RENEWAL_LIMIT})
        return self._reply(request, True, ReasonCode.RENEWED, item_id=request.item_id, due_at=loan.due_at,
                           params={"due": loan.due_at})

    def _renew_one(self, item_id: str, loan: PeerLoan) -> ReasonCode | None:
        item = self.library.items[item_id]
        if item.hold_for is not None:
            return ReasonCode.RENEWAL_BLOCKED_BY_HOLD
        if loan.renewals >= RENEWAL_LIMIT:
            return ReasonCode.RENEWAL_LIMIT
        loan.renewals += 1
        loan.due_at = loan.due_at + timedelta(days=LOAN_DAYS)
        return None

    def _renew_all(self, request: CirculationRequest) -> CirculationReply:
        patron = self._patron_of(request)
        if patron is None:
            return self._reply(request, False, ReasonCode.UNKNOWN_PATRON)
        for item_id, loan in list(self.library.loans.items()):
            if loan.card_id == patron.card_id:
                self._renew_one(item_id, loan)
        return self._reply(request, True, ReasonCode.RENEWED, params={"due": "—"}, loans=self._loan_lines(patron))

    def _account(self, request: CirculationRequest) -> CirculationReply:
        patron = self._patron_of(request)
        if patron is None:
            return self._reply(request, False, ReasonCode.UNKNOWN_PATRON)
        holds = [HoldLine(item_id=item.item_id, ready=item.hold_ready,
                          pickup_by=datetime.now(timezone.utc) + timedelta(days=5) if item.hold_ready else None)
                 for item in self.library.items.values() if item.hold_for == patron.card_id]
        return self._reply(request, True, ReasonCode.OK, loans=self._loan_lines(patron), holds=holds,
                           fines_due=str(patron.fines), has_email=patron.email is not None)

    def _loan_lines(self, patron: PeerPatron) -> list[LoanLine]:
        now = datetime.now(timezone.utc)
        return [LoanLine(item_id=item_id, due_at=loan.due_at, renewals=loan.renewals, overdue=loan.due_at < now)
                for item_id, loan in sorted(self.library.loans.items()) if loan.card_id == patron.card_id]

    def _end_session(self, request: CirculationRequest) -> CirculationReply:
        self._sessions.pop(request.session_id or "", None)
        return self._reply(request, True, ReasonCode.OK)

    # ------------------------------------------------------------------ HTTP

    def item_json(self, item_id: str) -> dict[str, Any] | None:
        item = self.library.items.get(item_id)
        if item is None:
            return None
        return {"item_id": item.item_id, "title": item.title, "author": item.author, "parts": item.parts}

    def email_of_session(self, session_id: str) -> str | None:
        with self._lock:
            card = self._sessions.get(session_id)
            patron = self.library.patrons.get(card or "")
        return patron.email if patron else None


class _CatalogueServer:
    def __init__(self, peer: KioskPeer, credentials: tuple[str, str] | None) -> None:
        self._peer = peer
        self._expected = None
        if credentials is not None:
            token = base64.b64encode(f"{credentials[0]}:{credentials[1]}".encode()).decode()
            self._expected = f"Basic {token}"
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.requests = 0

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> None:
        if self._server is not None:
            return
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                outer.requests += 1
                if outer._expected is not None and self.headers.get("Authorization") != outer._expected:
                    self._send(401, {"detail": "device credentials required"})
                    return
                self._route()

            def _route(self) -> None:
                parts = self.path.strip("/").split("/")
                if parts[:3] == ["api", "catalog", "items"] and len(parts) == 4:
                    body = outer._peer.item_json(parts[3])
                    self._send(200, body) if body else self._send(404, {"detail": "no such item"})
                elif parts[:3] == ["api", "kiosk", "sessions"] and len(parts) == 5 and parts[4] == "email":
                    email = outer._peer.email_of_session(parts[3])
                    self._send(200, {"email": email}) if email else self._send(404, {"detail": "no address"})
                else:
                    self._send(404, {"detail": "not found"})

            def _send(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="kiosk-peer-http", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
