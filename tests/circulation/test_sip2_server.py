"""OpenShelf's SIP2 server, spoken to over raw sockets and by the client."""

from __future__ import annotations

import socket
from datetime import datetime
from decimal import Decimal
from typing import Iterator

import pytest

from backend.circulation.interface import Tristate
from backend.circulation.memory import MemoryCirculation
from backend.sip2.client import Sip2Client
from backend.sip2.codec import Sip2Codec
from backend.sip2.framing import FrameReader
from backend.sip2.messages import (
    AcsStatus,
    CheckinResponse,
    CheckoutRequest,
    CheckoutResponse,
    EndSessionResponse,
    FeePaidRequest,
    FeePaidResponse,
    ItemInformationRequest,
    ItemInformationResponse,
    LoginRequest,
    LoginResponse,
    PatronInformationResponse,
    ScStatus,
    Sip2Message,
    SummaryKind,
)
from backend.sip2.server import Sip2Server
from circ_testkit import (
    ADULT,
    BOOK,
    DVD,
    FAST_HASHER,
    FINED,
    NOW,
    OTHER_BOOK,
    TERMINAL_PASSWORD,
    TERMINAL_USER,
    TZ,
    Clock,
    client_config,
    make_library,
    server_config,
    terminal,
    wait_until,
)

CODEC = Sip2Codec(timezone=TZ)


class Terminal:
    """A raw SIP2 connection for tests: send frames, read answers."""

    def __init__(self, port: int, codec: Sip2Codec = CODEC) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=3)
        self.codec = codec
        self.reader = FrameReader()
        self.pending: list[bytes] = []
        self.sequence = 0

    def close(self) -> None:
        self.sock.close()

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read_raw(self) -> bytes | None:
        """The next answer frame, or None when the server closed the connection."""
        while not self.pending:
            try:
                data = self.sock.recv(65536)
            except ConnectionResetError:
                return None
            if not data:
                return None
            self.pending.extend(self.reader.feed(data))
        return self.pending.pop(0)

    def request(self, message: Sip2Message, *, sequence: int | None = None) -> Sip2Message:
        self.sequence = (self.sequence + 1) % 10 if sequence is None else sequence
        self.send_raw(self.codec.encode(message, self.sequence))
        frame = self.read_raw()
        assert frame is not None, "the server closed the connection"
        decoded = self.codec.decode(frame)
        assert decoded.sequence == self.sequence if message.code not in ("96", "97") else True
        return decoded.message

    def login(self, user: str = TERMINAL_USER, password: str = TERMINAL_PASSWORD) -> bool:
        answer = self.request(LoginRequest(login_user_id=user, login_password=password, location_code="MAIN"))
        assert isinstance(answer, LoginResponse)
        return answer.ok


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def library(clock: Clock) -> MemoryCirculation:
    return make_library(clock)


@pytest.fixture
def server(library: MemoryCirculation, clock: Clock) -> Iterator[Sip2Server]:
    with Sip2Server(library, server_config(), hasher=FAST_HASHER, clock=clock) as running:
        yield running


@pytest.fixture
def term(server: Sip2Server) -> Iterator[Terminal]:
    connection = Terminal(server.port)
    yield connection
    connection.close()


def checkout_request(item: str = BOOK, card: str = ADULT) -> CheckoutRequest:
    return CheckoutRequest(transaction_date=NOW, institution_id="MAIN", patron_id=card, item_id=item)


def test_login_and_status(term: Terminal) -> None:
    assert term.login()
    status = term.request(ScStatus())
    assert isinstance(status, AcsStatus) and status.online_status and status.checkout_ok
    assert status.supported_messages == "YYYNYYYYYYYNNNYN"
    assert status.library_name == "Thư viện tỉnh" and status.terminal_location == "MAIN"


def test_wrong_password_then_too_many_attempts_closes(term: Terminal) -> None:
    assert not term.login(password="wrong")
    assert not term.login(user="nobody")
    term.send_raw(CODEC.encode(LoginRequest(login_user_id=TERMINAL_USER, login_password="x"), 3))
    assert CODEC.decode(term.read_raw() or b"").message == LoginResponse(ok=False)
    assert term.read_raw() is None


def test_requests_before_login_close_the_connection(term: Terminal, library: MemoryCirculation) -> None:
    term.send_raw(CODEC.encode(checkout_request(), 1))
    assert term.read_raw() is None
    assert not library.store.loans


def test_each_terminal_has_its_own_credentials(library: MemoryCirculation, clock: Clock) -> None:
    config = server_config(terminals=(terminal(), terminal("vendor-kiosk", "vendor-secret", "BRANCH2")))
    with Sip2Server(library, config, hasher=FAST_HASHER, clock=clock) as running:
        vendor = Terminal(running.port)
        try:
            assert not vendor.login("vendor-kiosk", TERMINAL_PASSWORD)
            assert vendor.login("vendor-kiosk", "vendor-secret")
            assert vendor.request(ScStatus()).terminal_location == "BRANCH2"
        finally:
            vendor.close()


def test_a_bad_checksum_gets_96_and_changes_nothing(term: Terminal, library: MemoryCirculation) -> None:
    assert term.login()
    frame = CODEC.encode(checkout_request(), 2)
    term.send_raw(frame[:-5] + b"0000\r")
    assert term.read_raw() == b"96AZFEF6"
    assert not library.store.loans
    term.send_raw(frame)  # the resend
    answer = CODEC.decode(term.read_raw() or b"").message
    assert isinstance(answer, CheckoutResponse) and answer.ok and BOOK in library.store.loans


@pytest.mark.parametrize("garbage", [b"hello", b"11YN2024", b"88unknown|", b"12" + b"1" * 30])
def test_unreadable_frames_get_96_and_the_connection_survives(term: Terminal, garbage: bytes) -> None:
    assert term.login()
    term.send_raw(garbage + b"\r")
    assert term.read_raw() == b"96AZFEF6"
    assert isinstance(term.request(ScStatus()), AcsStatus)


def test_repeated_bad_frames_reset_the_connection(term: Terminal) -> None:
    assert term.login()
    term.send_raw(b"junk\rjunk\rjunk\r")
    assert [term.read_raw() for _ in range(3)] == [b"96AZFEF6"] * 3
    assert term.read_raw() is None


def test_an_endless_frame_resets_the_connection(library: MemoryCirculation, clock: Clock) -> None:
    with Sip2Server(library, server_config(max_frame_bytes=512), hasher=FAST_HASHER, clock=clock) as running:
        raw = Terminal(running.port)
        try:
            assert raw.login()
            raw.send_raw(b"11" + b"Y" * 2000)
            assert raw.read_raw() is None
        finally:
            raw.close()


def test_a_resent_request_is_answered_without_repeating_it(term: Terminal, library: MemoryCirculation) -> None:
    assert term.login()
    frame = CODEC.encode(checkout_request(), 4)
    term.send_raw(frame)
    first = term.read_raw()
    term.send_raw(frame)
    second = term.read_raw()
    assert first == second and CODEC.decode(first or b"").message.ok
    assert len(library.store.loans) == 1 and len(library.store.results) == 1
    term.send_raw(b"97AZFEF5\r")
    assert term.read_raw() == first


def test_error_detection_follows_the_terminal(term: Terminal) -> None:
    plain = Sip2Codec(timezone=TZ, error_detection=False)
    term.send_raw(plain.encode(LoginRequest(login_user_id=TERMINAL_USER, login_password=TERMINAL_PASSWORD)))
    frame = term.read_raw()
    assert frame == b"941"


def test_required_error_detection(library: MemoryCirculation, clock: Clock) -> None:
    config = server_config(require_error_detection=True)
    with Sip2Server(library, config, hasher=FAST_HASHER, clock=clock) as running:
        raw = Terminal(running.port)
        try:
            plain = Sip2Codec(timezone=TZ, error_detection=False)
            raw.send_raw(plain.encode(LoginRequest(login_user_id=TERMINAL_USER, login_password=TERMINAL_PASSWORD)))
            assert raw.read_raw() == b"96AZFEF6"
            assert raw.login()
        finally:
            raw.close()


def test_crlf_and_latin1_server(library: MemoryCirculation, clock: Clock) -> None:
    config = server_config(terminator="CRLF", charset="iso-8859-1")
    latin = Sip2Codec(timezone=TZ, charset="iso-8859-1")
    with Sip2Server(library, config, hasher=FAST_HASHER, clock=clock) as running:
        raw = Terminal(running.port, latin)
        try:
            assert raw.login()
            raw.send_raw(latin.encode(ItemInformationRequest(transaction_date=NOW, item_id=BOOK), 5))
            data = b""
            while not data.endswith(b"\r\n"):
                data += raw.sock.recv(4096)
            answer = latin.decode(data).message
            assert isinstance(answer, ItemInformationResponse) and answer.title == "Truyên Kiêu"
        finally:
            raw.close()


def test_patron_information_lists(server: Sip2Server, library: MemoryCirculation) -> None:
    for item in (BOOK, OTHER_BOOK, DVD):
        assert library.checkout(ADULT, item, idempotency_key=f"k-{item}").ok
    client = Sip2Client(client_config(server.port))
    try:
        everything = client.patron_information(ADULT, SummaryKind.CHARGED_ITEMS)
        assert isinstance(everything, PatronInformationResponse)
        # soonest due first: the DVD is lent for 7 days, the books for 14
        assert everything.charged_items == (DVD, BOOK, OTHER_BOOK) and everything.charged_items_count == 3
        assert everything.personal_name == "Nguyễn Văn An" and everything.valid_patron
        window = client.patron_information(ADULT, SummaryKind.CHARGED_ITEMS, start_item=2, end_item=3)
        assert window.charged_items == (BOOK, OTHER_BOOK)
        nothing = client.patron_information(ADULT, None)
        assert nothing.charged_items == () and nothing.charged_items_count == 3
        fines = client.patron_information(FINED, SummaryKind.FINE_ITEMS)
        assert fines.fine_items == ("60000.00 Sách hỏng",) and fines.fee_amount == "60000.00"
        assert fines.patron_status.excessive_outstanding_fines and fines.patron_status.charge_privileges_denied
        assert client.end_session(ADULT) == EndSessionResponse(
            end_session=True, transaction_date=NOW, institution_id="MAIN", patron_id=ADULT)
    finally:
        client.close()


def test_checkout_checkin_over_the_wire(term: Terminal, library: MemoryCirculation) -> None:
    assert term.login()
    out = term.request(checkout_request())
    assert isinstance(out, CheckoutResponse)
    assert (out.ok, out.desensitize, out.title, out.due_date) == (True, Tristate.YES, "Truyện Kiều",
                                                                  "20240129    235900")
    assert out.reason_code == "checked_out" and out.screen_message == ("Mượn thành công. Hạn trả: 29/01/2024.",)
    assert out.message_en == "Checked out. Due back on 29 Jan 2024."
    back = term.request(CheckinRequest_(BOOK))
    assert isinstance(back, CheckinResponse) and back.ok and back.resensitize is Tristate.YES
    assert back.fee_amount == "0.00" and not back.alert


def CheckinRequest_(item: str):  # type: ignore[no-untyped-def]
    from backend.sip2.messages import CheckinRequest

    return CheckinRequest(transaction_date=NOW, return_date=NOW, current_location="MAIN", institution_id="MAIN",
                          item_id=item)


def test_no_block_uses_the_terminals_transaction_time(term: Terminal, library: MemoryCirculation) -> None:
    assert term.login()
    earlier = datetime(2024, 1, 10, 8, 0, tzinfo=TZ)
    request = checkout_request().model_copy(update={"no_block": True, "transaction_date": earlier})
    assert term.request(request).ok
    assert library.store.loans[BOOK].checked_out_at == earlier


def test_fee_paid(term: Terminal, library: MemoryCirculation) -> None:
    assert term.login()
    bad = term.request(FeePaidRequest(transaction_date=NOW, institution_id="MAIN", patron_id=FINED,
                                      fee_amount="lots"))
    assert isinstance(bad, FeePaidResponse) and not bad.payment_accepted and bad.reason_code == "invalid_amount"
    paid = term.request(FeePaidRequest(transaction_date=NOW, institution_id="MAIN", patron_id=FINED,
                                       fee_amount="60000.00", transaction_id="till-1"))
    assert paid.payment_accepted and paid.transaction_id
    again = term.request(FeePaidRequest(transaction_date=NOW, institution_id="MAIN", patron_id=FINED,
                                        fee_amount="60000.00", transaction_id="till-1"))
    assert again.payment_accepted and again.transaction_id == paid.transaction_id
    assert len(library.store.payments) == 1
    assert library.patron_status(FINED).fines_owed == Decimal(0)


class Broken(MemoryCirculation):
    def checkout(self, *args: object, **kwargs: object):  # type: ignore[override]
        raise RuntimeError("database is gone")


def test_a_failing_circulation_gives_a_refusal_not_a_dead_connection(clock: Clock) -> None:
    library = Broken(clock=clock)
    with Sip2Server(library, server_config(), hasher=FAST_HASHER, clock=clock) as running:
        raw = Terminal(running.port)
        try:
            assert raw.login()
            answer = raw.request(checkout_request())
            assert isinstance(answer, CheckoutResponse) and not answer.ok
            assert answer.desensitize is Tristate.NO and answer.reason_code == "system_unavailable"
            assert isinstance(raw.request(ScStatus()), AcsStatus)
        finally:
            raw.close()


def test_stop_closes_terminals(library: MemoryCirculation, clock: Clock) -> None:
    running = Sip2Server(library, server_config(), hasher=FAST_HASHER, clock=clock).start()
    raw = Terminal(running.port)
    try:
        assert raw.login()
        assert wait_until(lambda: running.connection_count == 1)
        running.stop()
        assert raw.read_raw() is None and running.connection_count == 0
    finally:
        raw.close()
