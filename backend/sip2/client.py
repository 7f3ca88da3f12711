"""A blocking SIP2 client: one connection, one request at a time.

Resilience, as the reference's interop notes require:

* **split and merged reads**: a :class:`FrameReader` buffers until the terminator;
* **error detection**: requests carry ``AY``/``AZ`` when enabled; an answer with a
  bad checksum is asked again once with 97; a 96 from the server makes the
  client resend the same frame (same sequence number) once;
* **idle drops**: before each request the socket is checked for a close the
  server sent while we were idle; after ``keepalive_s`` of silence a 99 checks
  the link first; a dropped link is reopened and logged in again (93);
* **retry once**: a request that failed because the link broke is retried once
  on a fresh connection when it is safe to repeat (status, patron and item
  queries).  A checkout, check-in, renewal or payment that may have reached the
  server raises :class:`Sip2ConnectionError` with ``maybe_processed=True``
  instead, so the caller can look before repeating (see ``Sip2Circulation``);
* **timeouts**: connect and answer timeouts; after a timeout the connection is
  dropped, so a late answer can never be taken for the next one.

Thread-safe: a lock serialises requests on the one connection.
"""

from __future__ import annotations

import logging
import select
import socket
import ssl
import threading
import time
from datetime import datetime
from decimal import Decimal
from collections import deque
from typing import Callable, TypeVar

from backend.sip2.codec import DecodedFrame, Sip2Codec
from backend.sip2.config import Sip2ClientConfig
from backend.sip2.errors import (
    Sip2ChecksumError,
    Sip2ConnectionError,
    Sip2FrameError,
    Sip2LoginError,
    Sip2ProtocolError,
    Sip2Timeout,
)
from backend.sip2.framing import FrameReader
from backend.sip2.messages import (
    ANSWER_CODE,
    AcsStatus,
    CheckinRequest,
    CheckinResponse,
    CheckoutRequest,
    CheckoutResponse,
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
    PatronStatusRequest,
    PatronStatusResponse,
    RenewRequest,
    RenewResponse,
    RequestAcsResend,
    ScStatus,
    Sip2Message,
    SummaryKind,
)

log = logging.getLogger(__name__)

# Requests that change nothing on the server, so repeating them is always safe.
SAFE_CODES = frozenset({"93", "99", "23", "63", "17", "35"})
M = TypeVar("M", bound=Sip2Message)
Connector = Callable[[Sip2ClientConfig], socket.socket]


def open_socket(config: Sip2ClientConfig) -> socket.socket:
    """TCP (or TLS) connection to the configured server, with the connect timeout."""
    try:
        raw = socket.create_connection((config.host, config.port), timeout=config.connect_timeout_s)
    except OSError as exc:
        raise Sip2ConnectionError(f"cannot connect to SIP2 server {config.host}:{config.port}: {exc}") from exc
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if not config.tls:
        return raw
    context = ssl.create_default_context(cafile=str(config.ca_file) if config.ca_file else None)
    if not config.tls_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    try:
        return context.wrap_socket(raw, server_hostname=config.server_name or config.host)
    except (OSError, ssl.SSLError) as exc:
        raw.close()
        raise Sip2ConnectionError(f"TLS handshake with {config.host}:{config.port} failed: {exc}") from exc


class Sip2Client:
    def __init__(self, config: Sip2ClientConfig, *, codec: Sip2Codec | None = None,
                 connector: Connector = open_socket, clock: Callable[[], datetime] | None = None,
                 password: str | None = None) -> None:
        self.config = config
        self.codec = codec or Sip2Codec(charset=config.charset, terminator=config.terminator,
                                        error_detection=config.error_detection, timezone=config.zone())
        self._connector = connector
        self._clock = clock or (lambda: datetime.now().astimezone())
        self._password = password if password is not None else config.resolved_password()
        self._lock = threading.RLock()
        self._sock: socket.socket | None = None
        self._reader = FrameReader()
        self._frames: deque[bytes] = deque()
        self._sequence = 0
        self._last_used = 0.0
        self.reconnects = 0

    # ------------------------------------------------------------------ connection

    def __enter__(self) -> "Sip2Client":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @property
    def connected(self) -> bool:
        return self._sock is not None

    def connect(self) -> None:
        """Open the connection and log in (if a user is configured); no-op when connected."""
        with self._lock:
            if self._sock is None:
                self._open()

    def close(self) -> None:
        with self._lock:
            self._drop()

    def _open(self) -> None:
        self._sock = self._connector(self.config)
        self._sock.settimeout(self.config.timeout_s)
        self._reader.clear()
        self._frames.clear()
        self._last_used = time.monotonic()
        if self.config.user_id is None:
            return
        login = LoginRequest(login_user_id=self.config.user_id, login_password=self._password or "",
                             location_code=self.config.location_code)
        try:
            answer = self._exchange(login)
        except Exception:
            self._drop()
            raise
        if not isinstance(answer, LoginResponse) or not answer.ok:
            self._drop()
            raise Sip2LoginError(f"SIP2 server {self.config.host}:{self.config.port} refused login "
                                 f"{self.config.user_id!r}")

    def _drop(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
        self._sock = None
        self._reader.clear()
        self._frames.clear()

    def _link_went_away(self) -> bool:
        """Did the server close (or send something unasked) while we were idle?"""
        assert self._sock is not None
        try:
            readable, _, _ = select.select([self._sock], [], [], 0)
        except (OSError, ValueError):
            return True
        if not readable:
            return False
        self._sock.setblocking(False)
        try:
            data = self._sock.recv(4096)
        except ssl.SSLWantReadError:
            return False  # TLS housekeeping, no application data
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            return True
        finally:
            if self._sock is not None:
                self._sock.settimeout(self.config.timeout_s)
        if data:
            log.warning("SIP2 server sent %d unexpected bytes while idle; reconnecting", len(data))
        return True

    def _ensure_connected(self) -> None:
        idle = time.monotonic() - self._last_used
        # Within a burst the link cannot have been dropped for idleness; skip the extra system call.
        if self._sock is not None and idle >= self.config.idle_check_s and self._link_went_away():
            log.info("SIP2 server %s:%s closed the idle connection; reconnecting", self.config.host, self.config.port)
            self._drop()
        if self._sock is None:
            self.reconnects += 1 if self._last_used else 0
            self._open()
            return
        if idle > self.config.keepalive_s:
            try:
                self._exchange(ScStatus())
            except Sip2ConnectionError:
                log.info("SIP2 link was silently dropped; reconnecting")
                self._drop()
                self.reconnects += 1
                self._open()

    # ------------------------------------------------------------------ requests

    def request(self, message: Sip2Message, *, safe_to_retry: bool | None = None) -> Sip2Message:
        """Send one request and return its answer (retrying once where that is safe)."""
        safe = message.code in SAFE_CODES if safe_to_retry is None else safe_to_retry
        with self._lock:
            self._ensure_connected()
            try:
                return self._exchange(message)
            except Sip2ConnectionError as exc:
                self._drop()
                if exc.maybe_processed and not safe:
                    raise
                log.info("SIP2 %s failed (%s); reconnecting and retrying once", message.code, exc)
                self.reconnects += 1
                self._open()
                return self._exchange(message)

    def _next_sequence(self) -> int:
        sequence = self._sequence
        self._sequence = (self._sequence + 1) % 10
        return sequence

    def _exchange(self, message: Sip2Message) -> Sip2Message:
        sequence = self._next_sequence()
        frame = self.codec.encode(message, sequence)
        expected = ANSWER_CODE.get(message.code)
        self._send(frame, first=True)
        resent_request = asked_resend = False
        while True:
            try:
                decoded = self._read_frame()
            except Sip2FrameError as exc:
                if asked_resend or not isinstance(exc, Sip2ChecksumError):
                    self._drop()
                    raise Sip2ProtocolError(f"unreadable answer to {message.code}: {exc}") from exc
                asked_resend = True
                log.info("bad checksum on the answer to %s; asking the server to resend", message.code)
                self._send(self.codec.encode(RequestAcsResend()), first=False)
                continue
            answer = decoded.message
            if answer.code == "96":
                if resent_request:
                    self._drop()
                    raise Sip2ProtocolError(f"the server could not read {message.code} twice (96)")
                resent_request = True
                log.info("server asked for %s again (96); resending with the same sequence number", message.code)
                self._send(frame, first=False)
                continue
            if self.codec.error_detection and decoded.sequence is not None and decoded.sequence != sequence:
                log.warning("dropping an answer with sequence %s while waiting for %s", decoded.sequence, sequence)
                continue
            if expected is not None and answer.code != expected:
                self._drop()
                raise Sip2ProtocolError(f"expected {expected} in answer to {message.code}, got {answer.code}")
            self._last_used = time.monotonic()
            return answer

    def _send(self, frame: bytes, *, first: bool) -> None:
        if self._sock is None:
            raise Sip2ConnectionError("not connected")
        try:
            self._sock.sendall(frame)
        except OSError as exc:
            # A request that never left can be repeated; a resend may follow one the server read.
            raise Sip2ConnectionError(f"sending to the SIP2 server failed: {exc}", maybe_processed=not first) from exc

    def _read_frame(self) -> DecodedFrame:
        assert self._sock is not None
        deadline = time.monotonic() + self.config.timeout_s
        while not self._frames:
            if time.monotonic() > deadline:
                raise self._timeout()
            try:
                data = self._sock.recv(65536)  # the socket's own timeout is timeout_s
            except socket.timeout:
                raise self._timeout() from None
            except OSError as exc:
                raise Sip2ConnectionError(f"reading from the SIP2 server failed: {exc}", maybe_processed=True) from exc
            if not data:
                raise Sip2ConnectionError("the SIP2 server closed the connection", maybe_processed=True)
            self._frames.extend(self._reader.feed(data))
        return self.codec.decode(self._frames.popleft())

    def _timeout(self) -> Sip2Timeout:
        return Sip2Timeout(f"no answer from the SIP2 server within {self.config.timeout_s:g} s",
                           maybe_processed=True)

    # ------------------------------------------------------------------ messages

    def _typed(self, message: Sip2Message, kind: type[M], *, safe_to_retry: bool | None = None) -> M:
        answer = self.request(message, safe_to_retry=safe_to_retry)
        if not isinstance(answer, kind):
            raise Sip2ProtocolError(f"expected {kind.__name__}, got {type(answer).__name__}")
        return answer

    def _now(self, now: datetime | None) -> datetime:
        return now or self._clock()

    def sc_status(self) -> AcsStatus:
        return self._typed(ScStatus(), AcsStatus)

    def patron_status(self, patron_id: str, pin: str | None = None) -> PatronStatusResponse:
        return self._typed(PatronStatusRequest(
            language=self.config.language, transaction_date=self._now(None), institution_id=self.config.institution_id,
            patron_id=patron_id, terminal_password=self.config.terminal_password, patron_password=pin or "",
        ), PatronStatusResponse)

    def patron_information(self, patron_id: str, summary: SummaryKind | None = None, *, pin: str | None = None,
                           start_item: int | None = None, end_item: int | None = None) -> PatronInformationResponse:
        return self._typed(PatronInformationRequest(
            language=self.config.language, transaction_date=self._now(None), summary=summary,
            institution_id=self.config.institution_id, patron_id=patron_id,
            terminal_password=self.config.terminal_password, patron_password=pin,
            start_item=start_item, end_item=end_item,
        ), PatronInformationResponse)

    def checkout(self, patron_id: str, item_id: str, *, no_block: bool = False, now: datetime | None = None,
                 pin: str | None = None, fee_acknowledged: bool | None = None) -> CheckoutResponse:
        return self._typed(CheckoutRequest(
            sc_renewal_policy=False, no_block=no_block, transaction_date=self._now(now),
            institution_id=self.config.institution_id, patron_id=patron_id, item_id=item_id,
            terminal_password=self.config.terminal_password, patron_password=pin, fee_acknowledged=fee_acknowledged,
        ), CheckoutResponse)

    def checkin(self, item_id: str, *, no_block: bool = False, now: datetime | None = None,
                location: str | None = None) -> CheckinResponse:
        moment = self._now(now)
        return self._typed(CheckinRequest(
            no_block=no_block, transaction_date=moment, return_date=moment,
            current_location=location or self.config.current_location or self.config.location_code or "",
            institution_id=self.config.institution_id, item_id=item_id,
            terminal_password=self.config.terminal_password,
        ), CheckinResponse)

    def item_information(self, item_id: str) -> ItemInformationResponse:
        return self._typed(ItemInformationRequest(
            transaction_date=self._now(None), institution_id=self.config.institution_id, item_id=item_id,
            terminal_password=self.config.terminal_password or None,
        ), ItemInformationResponse)

    def renew(self, patron_id: str, item_id: str, *, no_block: bool = False,
              now: datetime | None = None) -> RenewResponse:
        return self._typed(RenewRequest(
            third_party_allowed=False, no_block=no_block, transaction_date=self._now(now),
            institution_id=self.config.institution_id, patron_id=patron_id, item_id=item_id,
            terminal_password=self.config.terminal_password or None,
        ), RenewResponse)

    def end_session(self, patron_id: str) -> EndSessionResponse:
        return self._typed(EndPatronSessionRequest(
            transaction_date=self._now(None), institution_id=self.config.institution_id, patron_id=patron_id,
            terminal_password=self.config.terminal_password or None,
        ), EndSessionResponse)

    def fee_paid(self, patron_id: str, amount: Decimal, *, fee_id: str | None = None,
                 transaction_id: str | None = None, payment_type: str = "00",
                 now: datetime | None = None) -> FeePaidResponse:
        return self._typed(FeePaidRequest(
            transaction_date=self._now(now), fee_type="01", payment_type=payment_type,
            currency_type=self.config.currency, institution_id=self.config.institution_id, patron_id=patron_id,
            terminal_password=self.config.terminal_password or None, fee_amount=f"{amount:.2f}",
            fee_identifier=fee_id, transaction_id=transaction_id,
        ), FeePaidResponse)
