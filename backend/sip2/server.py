"""OpenShelf as a SIP2 server, so third-party kiosks can use its circulation.

A threaded TCP server (optionally TLS): one thread accepts, one thread serves
each terminal.  Any :class:`~backend.circulation.interface.Circulation` can sit
behind it; the demo puts the standalone circulation there.

Rules of the conversation:

* A terminal logs in first (93) with its own credentials, checked against
  argon2 hashes; anything else before a successful login closes the connection.
  Too many failed logins close it too.
* Error detection follows the terminal: a request with ``AY``/``AZ`` gets an
  answer with the same sequence number and a checksum.  ``require_error_detection``
  refuses requests without a checksum.
* A frame that cannot be read (bad checksum, truncated, unknown code) is
  answered with 96 (please resend) and changes nothing; after
  ``max_bad_frames`` in a row, or a frame longer than ``max_frame_bytes``, the
  connection is reset.  A request is decoded completely before the circulation
  sees it, and each circulation call is one transaction: there is never a
  partial transaction.
* The same frame sent again with the same sequence number (a client retrying
  after a lost answer) gets the stored answer without repeating the transaction;
  97 asks for the last answer again.
"""

from __future__ import annotations

import itertools
import logging
import select
import socket
import ssl
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Callable

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from backend.circulation.interface import Circulation, PatronStatus, Result, Tristate
from backend.circulation.messages import ReasonCode, message
from backend.circulation.model import HoldStatus, ItemStatus, SortHint
from backend.sip2.codec import Sip2Codec
from backend.sip2.config import Sip2ServerConfig, Sip2Terminal
from backend.sip2.errors import Sip2ChecksumError, Sip2FrameError
from backend.sip2.fields import write_date
from backend.sip2.framing import FrameReader
from backend.sip2.messages import (
    ANSWER_CODE,
    REGISTRY,
    AcsStatus,
    AlertType,
    CheckinRequest,
    CheckinResponse,
    CheckoutRequest,
    CheckoutResponse,
    CirculationStatus,
    EndPatronSessionRequest,
    EndSessionResponse,
    FeePaidRequest,
    FeePaidResponse,
    ItemInformationRequest,
    ItemInformationResponse,
    LoginRequest,
    LoginResponse,
    PatronInformationRequest,
    PatronInformationResponse,
    PatronStatusFlags,
    PatronStatusRequest,
    PatronStatusResponse,
    RenewRequest,
    RenewResponse,
    RequestScResend,
    ScStatus,
    Sip2Message,
    SummaryKind,
    supported_messages_field,
)

log = logging.getLogger(__name__)

SUPPORTED = {"patron_status", "checkout", "checkin", "sc_acs_status", "resend", "login", "patron_info",
             "end_session", "fee_paid", "item_info", "renew"}
_POLL_S = 0.2
_DENIED = PatronStatusFlags(charge_privileges_denied=True, renewal_privileges_denied=True,
                            recall_privileges_denied=True, hold_privileges_denied=True)
ITEM_STATUS_CODES: dict[ItemStatus, str] = {
    ItemStatus.AVAILABLE: CirculationStatus.AVAILABLE,
    ItemStatus.ON_LOAN: CirculationStatus.CHARGED,
    ItemStatus.ON_HOLD_SHELF: CirculationStatus.WAITING_ON_HOLD_SHELF,
    ItemStatus.IN_TRANSIT: CirculationStatus.IN_TRANSIT,
    ItemStatus.IN_PROCESS: CirculationStatus.IN_PROCESS,
    ItemStatus.LOST: CirculationStatus.LOST,
    ItemStatus.MISSING: CirculationStatus.MISSING,
    ItemStatus.WITHDRAWN: CirculationStatus.OTHER,
}


def build_server_tls(config: Sip2ServerConfig) -> ssl.SSLContext | None:
    if config.tls_cert_file is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(config.tls_cert_file), str(config.tls_key_file) if config.tls_key_file else None)
    return context


@dataclass
class _Session:
    peer: str
    terminal: Sip2Terminal | None = None
    failed_logins: int = 0
    bad_frames: int = 0
    last_request: bytes | None = None
    last_reply: bytes | None = None


@dataclass
class _Connection:
    sock: socket.socket
    thread: threading.Thread
    last_activity: float


@dataclass(frozen=True)
class _Reply:
    data: bytes | None
    close: bool = False


class Sip2Server:
    def __init__(self, circulation: Circulation, config: Sip2ServerConfig, *,
                 ssl_context: ssl.SSLContext | None = None, hasher: PasswordHasher | None = None,
                 clock: Callable[[], datetime] | None = None, currency: str = "VND") -> None:
        self.circulation = circulation
        self.config = config
        self.codec = Sip2Codec(charset=config.charset, terminator=config.terminator, error_detection=True,
                               timezone=config.zone(), require_checksum=config.require_error_detection)
        self._ssl = ssl_context if ssl_context is not None else build_server_tls(config)
        self._hasher = hasher or PasswordHasher()
        self._dummy_hash: str | None = None
        self._clock = clock or (lambda: datetime.now().astimezone())
        self.currency = currency
        self._terminals = {terminal.user_id: terminal for terminal in config.terminals}
        self._listener: socket.socket | None = None
        self._waker: tuple[socket.socket, socket.socket] | None = None
        self._stopping = threading.Event()
        self._accept_thread: threading.Thread | None = None
        self._connections: dict[int, _Connection] = {}
        self._connections_lock = threading.Lock()
        self._ids = itertools.count(1)
        self._handlers: dict[str, Callable[[_Session, Any], Sip2Message]] = {
            "99": self._sc_status, "23": self._patron_status, "63": self._patron_information,
            "11": self._checkout, "09": self._checkin, "17": self._item_information, "29": self._renew,
            "35": self._end_session, "37": self._fee_paid,
        }

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> "Sip2Server":
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    @property
    def address(self) -> tuple[str, int]:
        if self._listener is None:
            raise RuntimeError("the SIP2 server is not started")
        host, port = self._listener.getsockname()[:2]
        return host, port

    @property
    def port(self) -> int:
        return self.address[1]

    @property
    def connection_count(self) -> int:
        with self._connections_lock:
            return len(self._connections)

    def start(self) -> "Sip2Server":
        listener = socket.create_server((self.config.host, self.config.port), reuse_port=False)
        listener.setblocking(False)
        self._listener = listener
        self._waker = socket.socketpair()  # lets stop() wake the accept loop at once
        self._stopping.clear()
        self._accept_thread = threading.Thread(target=self._accept_loop, name=f"sip2-accept-{self.port}",
                                               daemon=True)
        self._accept_thread.start()
        log.info("SIP2 server listening on %s:%s%s", *self.address, " (TLS)" if self._ssl else "")
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        if self._waker is not None:
            try:
                self._waker[1].send(b"\0")
            except OSError:
                pass
        if self._accept_thread is not None:
            self._accept_thread.join(timeout)
            self._accept_thread = None
        if self._listener is not None:
            self._listener.close()
        if self._waker is not None:
            for end in self._waker:
                end.close()
            self._waker = None
        with self._connections_lock:
            connections = list(self._connections.values())
        for connection in connections:
            _shutdown(connection.sock)
        for connection in connections:
            connection.thread.join(timeout)

    def _accept_loop(self) -> None:
        assert self._listener is not None and self._waker is not None
        while not self._stopping.is_set():
            self._drop_idle()
            try:
                readable, _, _ = select.select([self._listener, self._waker[0]], [], [], _POLL_S)
                if self._listener not in readable:
                    continue
                conn, peer = self._listener.accept()
            except OSError as exc:
                if not self._stopping.is_set():
                    log.warning("SIP2 accept failed: %s", exc)
                continue
            if self.connection_count >= self.config.max_connections:
                log.warning("refusing SIP2 connection from %s: %d connections open", peer, self.connection_count)
                conn.close()
                continue
            number = next(self._ids)
            thread = threading.Thread(target=self._serve, args=(number, conn, f"{peer[0]}:{peer[1]}"),
                                      name=f"sip2-conn-{number}", daemon=True)
            with self._connections_lock:
                self._connections[number] = _Connection(conn, thread, time.monotonic())
            thread.start()

    def _drop_idle(self) -> None:
        """Close terminals silent for longer than idle_timeout_s (their threads then end)."""
        limit = time.monotonic() - self.config.idle_timeout_s
        with self._connections_lock:
            idle = [number for number, connection in self._connections.items() if connection.last_activity < limit]
            for number in idle:
                connection = self._connections[number]
                connection.last_activity = float("inf")  # shut down once
                log.info("closing idle SIP2 connection %d", number)
                _shutdown(connection.sock)

    def _touch(self, number: int) -> None:
        connection = self._connections.get(number)
        if connection is not None and connection.last_activity != float("inf"):
            connection.last_activity = time.monotonic()

    # ------------------------------------------------------------------ one terminal

    def _serve(self, number: int, conn: socket.socket, peer: str) -> None:
        try:
            conn.setblocking(True)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._ssl is not None:
                conn.settimeout(10)
                conn = self._ssl.wrap_socket(conn, server_side=True)
                with self._connections_lock:
                    self._connections[number].sock = conn
            # Blocking reads: stop() and the idle check in the accept loop shut the socket down to end them.
            conn.settimeout(None)
            self._conversation(number, conn, _Session(peer))
        except (OSError, ssl.SSLError) as exc:
            if not self._stopping.is_set():
                log.info("SIP2 connection from %s ended: %s", peer, exc)
        except Exception:  # a bug must not take the server down
            log.exception("SIP2 connection from %s failed", peer)
        finally:
            try:
                conn.close()
            except OSError:
                pass
            with self._connections_lock:
                self._connections.pop(number, None)

    def _conversation(self, number: int, conn: socket.socket, session: _Session) -> None:
        reader = FrameReader(self.config.max_frame_bytes)
        while not self._stopping.is_set():
            data = conn.recv(65536)
            if not data:
                return
            self._touch(number)
            try:
                frames = reader.feed(data)
            except Sip2FrameError as exc:
                log.warning("resetting SIP2 connection from %s: %s", session.peer, exc)
                return
            for frame in frames:
                reply = self._handle(session, frame)
                if reply.data:
                    conn.sendall(reply.data)
                if reply.close:
                    return

    def _handle(self, session: _Session, frame: bytes) -> _Reply:
        try:
            decoded = self.codec.decode(frame)
        except Sip2FrameError as exc:
            return self._bad_frame(session, frame, exc)
        session.bad_frames = 0
        if decoded.sequence is not None and frame == session.last_request and session.last_reply is not None:
            log.info("%s resent request %s; answering again without repeating it", session.peer, frame[:2])
            return _Reply(session.last_reply)
        request = decoded.message
        if request.code in ("96", "97"):
            return _Reply(session.last_reply or self.codec.encode(RequestScResend(), error_detection=True))
        if isinstance(request, LoginRequest):
            answer: Sip2Message = self._login(session, request)
        elif session.terminal is None:
            log.warning("%s sent %s before logging in; closing the connection", session.peer, request.code)
            return _Reply(None, close=True)
        else:
            handler = self._handlers.get(request.code)
            if handler is None:
                return self._bad_frame(session, frame, Sip2FrameError(f"{request.code} is not a request"))
            try:
                answer = handler(session, request)
            except Exception:
                log.exception("SIP2 %s from %s failed", request.code, session.peer)
                answer = self._failure(request)
        data = self.codec.encode(answer, decoded.sequence, error_detection=decoded.checksummed)
        session.last_request, session.last_reply = frame, data
        close = isinstance(answer, LoginResponse) and session.failed_logins >= self.config.max_failed_logins
        return _Reply(data, close)

    def _bad_frame(self, session: _Session, frame: bytes, exc: Sip2FrameError) -> _Reply:
        session.bad_frames += 1
        kind = "bad checksum" if isinstance(exc, Sip2ChecksumError) else "unreadable frame"
        log.warning("%s from %s (%s): %s; answering 96", kind, session.peer, frame[:60], exc)
        close = session.bad_frames >= self.config.max_bad_frames
        if close:
            log.warning("resetting SIP2 connection from %s after %d bad frames", session.peer, session.bad_frames)
        return _Reply(self.codec.encode(RequestScResend(), error_detection=True), close)

    # ------------------------------------------------------------------ login

    def _login(self, session: _Session, request: LoginRequest) -> LoginResponse:
        terminal = self._terminals.get(request.login_user_id)
        if terminal is None:
            self._burn_time(request.login_password)
        elif self._verify(terminal.password_hash, request.login_password):
            session.terminal = terminal
            session.failed_logins = 0
            log.info("SIP2 terminal %s logged in from %s", terminal.user_id, session.peer)
            return LoginResponse(ok=True)
        session.failed_logins += 1
        session.terminal = None
        log.warning("SIP2 login %r from %s refused (%d)", request.login_user_id, session.peer, session.failed_logins)
        return LoginResponse(ok=False)

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def _burn_time(self, password: str) -> None:
        """Spend a verification on unknown users too, so user names cannot be probed by timing."""
        if self._dummy_hash is None:
            self._dummy_hash = self._hasher.hash(uuid.uuid4().hex)
        self._verify(self._dummy_hash, password)

    # ------------------------------------------------------------------ answers

    def _texts(self, result: Result) -> dict[str, Any]:
        return {
            "screen_message": (result.message.in_language(self.config.screen_language),),
            "reason_code": result.reason.value,
            "message_vi": result.message.vi,
            "message_en": result.message.en,
        }

    def _now(self) -> datetime:
        return self._clock()

    def _date(self, value: datetime | None) -> str:
        return write_date(value, self.codec.timezone) if value is not None else ""

    def _sc_status(self, session: _Session, request: ScStatus) -> AcsStatus:
        status = self.circulation.system_status()
        return AcsStatus(
            online_status=status.online, checkin_ok=status.checkin_ok, checkout_ok=status.checkout_ok,
            acs_renewal_policy=status.renewal_ok, status_update_ok=False, offline_ok=status.offline_ok,
            timeout_period=self.config.advertised_timeout_tenths, retries_allowed=self.config.advertised_retries,
            date_time_sync=self._now(), institution_id=self.config.institution_id or status.institution_id,
            library_name=self.config.library_name or status.library_name or None,
            supported_messages=supported_messages_field(SUPPORTED),
            terminal_location=(session.terminal.location or None) if session.terminal else None,
        )

    def _patron_status(self, session: _Session, request: PatronStatusRequest) -> PatronStatusResponse:
        status = self.circulation.patron_status(request.patron_id, request.patron_password or None)
        return PatronStatusResponse(
            patron_status=_flags(status), language=request.language, transaction_date=self._now(),
            institution_id=request.institution_id, patron_id=request.patron_id, personal_name=status.name,
            valid_patron=status.found, valid_patron_password=status.pin_valid,
            currency_type=status.currency or None, fee_amount=_money(status.fines_owed), **self._texts(status),
        )

    def _patron_information(self, session: _Session,
                            request: PatronInformationRequest) -> PatronInformationResponse:
        status = self.circulation.patron_status(request.patron_id, request.patron_password or None)
        base: dict[str, Any] = {
            "patron_status": _flags(status), "language": request.language, "transaction_date": self._now(),
            "institution_id": request.institution_id, "patron_id": request.patron_id,
            "personal_name": status.name, "valid_patron": status.found,
            "valid_patron_password": status.pin_valid, **self._texts(status),
        }
        if not status.found:
            return PatronInformationResponse(**base)
        account = self.circulation.patron_account(request.patron_id)
        ready = [hold.item_id or hold.record_id or "" for hold in account.holds if hold.status is HoldStatus.READY]
        pending = [hold.item_id or hold.record_id or "" for hold in account.holds
                   if hold.status is HoldStatus.PENDING]
        overdue = [loan.item_id for loan in account.loans if loan.overdue]
        charged = [loan.item_id for loan in account.loans]
        fines = [f"{_money(fine.amount) or ''} {fine.description}".strip() for fine in account.fines]
        lists = {SummaryKind.HOLD_ITEMS: ("hold_items", ready), SummaryKind.OVERDUE_ITEMS: ("overdue_items", overdue),
                 SummaryKind.CHARGED_ITEMS: ("charged_items", charged), SummaryKind.FINE_ITEMS: ("fine_items", fines),
                 SummaryKind.UNAVAILABLE_HOLDS: ("unavailable_hold_items", pending)}
        if request.summary in lists:
            name, values = lists[request.summary]
            start = max((request.start_item or 1) - 1, 0)
            end = request.end_item or len(values)
            base[name] = tuple(values[start:end])
        return PatronInformationResponse(
            **base, hold_items_count=len(ready), overdue_items_count=len(overdue),
            charged_items_count=len(charged), fine_items_count=len(fines), recall_items_count=0,
            unavailable_holds_count=len(pending), currency_type=account.currency or None,
            fee_amount=_money(account.fines_total),
        )

    def _checkout(self, session: _Session, request: CheckoutRequest) -> CheckoutResponse:
        base = {"transaction_date": self._now(), "institution_id": request.institution_id,
                "patron_id": request.patron_id, "item_id": request.item_id}
        if request.patron_password:
            status = self.circulation.patron_status(request.patron_id, request.patron_password)
            if not status.ok:
                return CheckoutResponse(ok=False, desensitize=Tristate.NO, **base, **self._texts(status))
        when = request.transaction_date if request.no_block else None
        result = self.circulation.checkout(request.patron_id, request.item_id,
                                           idempotency_key=f"sip2-{uuid.uuid4().hex}", no_block=request.no_block,
                                           now=when)
        return CheckoutResponse(
            ok=result.ok, renewal_ok=False, magnetic_media=Tristate.UNKNOWN,
            desensitize=result.desensitize if result.ok else Tristate.NO, title=result.title,
            due_date=self._date(result.due_at), **base, **self._texts(result),
        )

    def _checkin(self, session: _Session, request: CheckinRequest) -> CheckinResponse:
        branch = request.current_location or (session.terminal.location if session.terminal else "") or None
        when = (request.return_date or request.transaction_date) if request.no_block else None
        result = self.circulation.checkin(request.item_id, idempotency_key=f"sip2-{uuid.uuid4().hex}",
                                          no_block=request.no_block, now=when, branch=branch)
        alert_type = None
        if result.sort is SortHint.HOLD_SHELF:
            alert_type = AlertType.HOLD_THIS_LIBRARY
        elif result.sort is SortHint.TRANSIT:
            alert_type = AlertType.HOLD_OTHER_LIBRARY if result.hold_ready else AlertType.SEND_TO_OTHER_LIBRARY
        fine = result.fine_due
        return CheckinResponse(
            ok=result.ok, resensitize=result.resensitize, magnetic_media=Tristate.UNKNOWN,
            alert=alert_type is not None, transaction_date=self._now(), institution_id=request.institution_id,
            item_id=request.item_id, permanent_location="", title=result.title or None,
            destination_location=result.destination, alert_type=alert_type,
            currency_type=self.currency if fine is not None else None, fee_amount=_money(fine),
            hold_pickup_date=self._date(result.pickup_expires_at) or None, **self._texts(result),
        )

    def _item_information(self, session: _Session, request: ItemInformationRequest) -> ItemInformationResponse:
        info = self.circulation.item_info(request.item_id)
        return ItemInformationResponse(
            circulation_status=ITEM_STATUS_CODES.get(info.status, CirculationStatus.OTHER) if info.status
            else CirculationStatus.OTHER,
            security_marker="02", fee_type="01", transaction_date=self._now(),
            hold_queue_length=info.hold_queue_length, due_date=self._date(info.due_at) or None,
            item_id=request.item_id, title=info.title, permanent_location=info.home_branch or None,
            current_location=info.location or None, **self._texts(info),
        )

    def _renew(self, session: _Session, request: RenewRequest) -> RenewResponse:
        when = request.transaction_date if request.no_block else None
        result = self.circulation.renew(request.patron_id, request.item_id or "", now=when)
        return RenewResponse(
            ok=result.ok, renewal_ok=result.ok, magnetic_media=Tristate.UNKNOWN, desensitize=Tristate.UNKNOWN,
            transaction_date=self._now(), institution_id=request.institution_id, patron_id=request.patron_id,
            item_id=request.item_id or "", title=result.title, due_date=self._date(result.due_at),
            **self._texts(result),
        )

    def _end_session(self, session: _Session, request: EndPatronSessionRequest) -> EndSessionResponse:
        return EndSessionResponse(end_session=True, transaction_date=self._now(),
                                  institution_id=request.institution_id, patron_id=request.patron_id)

    def _fee_paid(self, session: _Session, request: FeePaidRequest) -> FeePaidResponse:
        base = {"transaction_date": self._now(), "institution_id": request.institution_id,
                "patron_id": request.patron_id}
        try:
            amount = Decimal(request.fee_amount)
        except InvalidOperation:
            text = message(ReasonCode.INVALID_AMOUNT)
            return FeePaidResponse(payment_accepted=False,
                                   screen_message=(text.in_language(self.config.screen_language),),
                                   reason_code=ReasonCode.INVALID_AMOUNT.value, message_vi=text.vi,
                                   message_en=text.en, **base)
        terminal = session.terminal.user_id if session.terminal else "?"
        key = f"sip2-{terminal}-{request.transaction_id}" if request.transaction_id else f"sip2-{uuid.uuid4().hex}"
        result = self.circulation.record_payment(request.patron_id, amount, idempotency_key=key,
                                                 fee_id=request.fee_identifier)
        return FeePaidResponse(payment_accepted=result.ok,
                               transaction_id=result.transaction_id or request.transaction_id,
                               **base, **self._texts(result))

    def _failure(self, request: Sip2Message) -> Sip2Message:
        """A negative answer of the right kind when the circulation itself failed."""
        cls = REGISTRY[ANSWER_CODE[request.code]]
        text = message(ReasonCode.SYSTEM_UNAVAILABLE)
        values: dict[str, Any] = {
            "screen_message": (text.in_language(self.config.screen_language),),
            "reason_code": ReasonCode.SYSTEM_UNAVAILABLE.value, "message_vi": text.vi, "message_en": text.en,
            "online_status": False, "checkin_ok": False, "checkout_ok": False, "end_session": False,
            "patron_status": _DENIED, "transaction_date": self._now(), "date_time_sync": self._now(),
            "resensitize": Tristate.UNKNOWN, "desensitize": Tristate.NO,
        }
        for name in ("institution_id", "patron_id", "item_id"):
            value = getattr(request, name, None)
            if value is not None:
                values[name] = value
        return cls.model_validate({name: value for name, value in values.items() if name in cls.model_fields})


def _shutdown(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def _flags(status: PatronStatus) -> PatronStatusFlags:
    if not status.found:
        return _DENIED
    blocks = set(status.blocks)
    return PatronStatusFlags(
        charge_privileges_denied=not status.may_borrow,
        renewal_privileges_denied=not status.may_renew,
        recall_privileges_denied=not status.may_borrow,
        hold_privileges_denied=not status.may_borrow,
        too_many_items_charged=status.reason is ReasonCode.MAX_LOANS_REACHED,
        excessive_outstanding_fines=ReasonCode.FINES_OVER_LIMIT in blocks,
    )


def _money(amount: Decimal | None) -> str | None:
    return f"{amount:.2f}" if amount is not None else None
