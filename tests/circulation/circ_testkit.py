"""Shared test helpers for circulation and SIP2 tests: a small library, a clock, SIP2 stacks."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Callable, Iterator
from zoneinfo import ZoneInfo

from argon2 import PasswordHasher

from backend.circulation.interface import Circulation
from backend.circulation.memory import MemoryCirculation
from backend.circulation.model import FineFacts, ItemFacts, ItemStatus, PatronFacts
from backend.circulation.service import Argon2PinHasher
from backend.sip2.circulation import Sip2Circulation
from backend.sip2.client import Sip2Client
from backend.sip2.config import Sip2ClientConfig, Sip2ServerConfig, Sip2Terminal
from backend.sip2.offline import OfflineJournal
from backend.sip2.server import Sip2Server

TZ_NAME = "Asia/Ho_Chi_Minh"
TZ = ZoneInfo(TZ_NAME)
NOW = datetime(2024, 1, 15, 9, 30, tzinfo=TZ)
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
TERMINAL_USER, TERMINAL_PASSWORD = "kiosk1", "kiosk1-password"

ADULT = "21000001"
ADULT_SECOND_CARD = "21000099"
STUDENT = "21000002"
EXPIRED = "21000003"
BLOCKED = "21000004"
FINED = "21000005"
CHILD = "21000006"
PIN = "1234"

BOOK = "30001"  # record R1, home MAIN
OTHER_BOOK = "30002"  # record R2
IN_HOUSE = "30003"  # in-library-only
DVD = "30004"
SECOND_COPY = "30005"  # record R1
BRANCH2_BOOK = "30006"  # home BRANCH2
LOST_BOOK = "30007"
REFERENCE = "30008"  # item type 'reference' (not for loan by rule)
TITLES = {BOOK: "Truyện Kiều", OTHER_BOOK: "Số đỏ", IN_HOUSE: "Từ điển Việt – Anh", DVD: "Phim tài liệu Huế",
          SECOND_COPY: "Truyện Kiều", BRANCH2_BOOK: "Dế Mèn phiêu lưu ký", LOST_BOOK: "Tắt đèn",
          REFERENCE: "Bách khoa toàn thư"}


class Clock:
    """A settable clock shared by the backend and the SIP2 side of a test."""

    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now = self.now + timedelta(**delta)
        return self.now


def make_library(clock: Clock | None = None) -> MemoryCirculation:
    circulation = MemoryCirculation(branch="MAIN", institution_id="MAIN", library_name="Thư viện tỉnh",
                                    clock=clock or Clock(), pin_hasher=Argon2PinHasher(FAST_HASHER))
    patrons = [
        PatronFacts(patron_id="p-adult", card_ids=(ADULT, ADULT_SECOND_CARD), name="Nguyễn Văn An"),
        PatronFacts(patron_id="p-student", card_ids=(STUDENT,), name="Trần Thị Bình", category="student"),
        PatronFacts(patron_id="p-expired", card_ids=(EXPIRED,), name="Lê Văn Cường", expires_on=date(2023, 12, 31)),
        PatronFacts(patron_id="p-blocked", card_ids=(BLOCKED,), name="Phạm Thị Dung", blocked=True),
        PatronFacts(patron_id="p-fined", card_ids=(FINED,), name="Hoàng Văn Em"),
        PatronFacts(patron_id="p-child", card_ids=(CHILD,), name="Võ Thị Phương", category="child"),
    ]
    for patron in patrons:
        circulation.add_patron(patron, pin=PIN)
    circulation.add_fine(FineFacts(fine_id="f-1", patron_id="p-fined", amount=Decimal(60000), kind="manual",
                                   created_at=NOW - timedelta(days=30), description="Sách hỏng"))
    items = [
        ItemFacts(item_id=BOOK, record_id="R1", title=TITLES[BOOK], author="Nguyễn Du", home_branch="MAIN"),
        ItemFacts(item_id=OTHER_BOOK, record_id="R2", title=TITLES[OTHER_BOOK], author="Vũ Trọng Phụng",
                  home_branch="MAIN"),
        ItemFacts(item_id=IN_HOUSE, record_id="R3", title=TITLES[IN_HOUSE], in_library_only=True, home_branch="MAIN"),
        ItemFacts(item_id=DVD, record_id="R4", title=TITLES[DVD], item_type="dvd", home_branch="MAIN"),
        ItemFacts(item_id=SECOND_COPY, record_id="R1", title=TITLES[SECOND_COPY], home_branch="MAIN"),
        ItemFacts(item_id=BRANCH2_BOOK, record_id="R5", title=TITLES[BRANCH2_BOOK], home_branch="BRANCH2"),
        ItemFacts(item_id=LOST_BOOK, record_id="R6", title=TITLES[LOST_BOOK], status=ItemStatus.LOST,
                  home_branch="MAIN"),
        ItemFacts(item_id=REFERENCE, record_id="R7", title=TITLES[REFERENCE], item_type="reference",
                  home_branch="MAIN"),
    ]
    for item in items:
        circulation.add_item(item)
    return circulation


def terminal(user: str = TERMINAL_USER, password: str = TERMINAL_PASSWORD, location: str = "MAIN") -> Sip2Terminal:
    return Sip2Terminal(user_id=user, password_hash=FAST_HASHER.hash(password), location=location)


def server_config(**overrides: object) -> Sip2ServerConfig:
    values: dict[str, object] = {"port": 0, "terminals": (terminal(),), "institution_id": "MAIN",
                                 "library_name": "Thư viện tỉnh", "timezone": TZ_NAME}
    values.update(overrides)
    return Sip2ServerConfig(**values)  # type: ignore[arg-type]


def client_config(port: int, **overrides: object) -> Sip2ClientConfig:
    values: dict[str, object] = {"host": "127.0.0.1", "port": port, "user_id": TERMINAL_USER,
                                 "password": TERMINAL_PASSWORD, "institution_id": "MAIN", "location_code": "MAIN",
                                 "timezone": TZ_NAME, "error_detection": True, "timeout_s": 3.0,
                                 "connect_timeout_s": 2.0}
    values.update(overrides)
    return Sip2ClientConfig(**values)  # type: ignore[arg-type]


@dataclass
class Stack:
    """A circulation under test and the in-memory library behind it (for arranging facts)."""

    circulation: Circulation
    backend: MemoryCirculation
    clock: Clock
    server: Sip2Server | None = None
    client: Sip2Client | None = None


@contextlib.contextmanager
def memory_stack() -> Iterator[Stack]:
    clock = Clock()
    backend = make_library(clock)
    yield Stack(backend, backend, clock)


@contextlib.contextmanager
def sip2_stack(*, server_overrides: dict[str, object] | None = None,
               client_overrides: dict[str, object] | None = None,
               journal: OfflineJournal | None = None) -> Iterator[Stack]:
    """Sip2Circulation → Sip2Client → TCP (error detection on) → Sip2Server → MemoryCirculation."""
    clock = Clock()
    backend = make_library(clock)
    with Sip2Server(backend, server_config(**(server_overrides or {})), hasher=FAST_HASHER, clock=clock) as server:
        client = Sip2Client(client_config(server.port, **(client_overrides or {})), clock=clock)
        circulation = Sip2Circulation(client, journal=journal, clock=clock)
        try:
            yield Stack(circulation, backend, clock, server, client)
        finally:
            circulation.close()


def wait_until(condition: Callable[[], bool], timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def self_signed_cert(directory: Path) -> tuple[Path, Path] | None:
    """A throwaway certificate for 127.0.0.1 made with the openssl tool (None if it is missing)."""
    if shutil.which("openssl") is None:
        return None
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=30,
    )
    return cert, key


# --------------------------------------------------------------------------- scripted SIP2 peers

SILENCE = object()  # handler result: read the frame, answer nothing
Handler = Callable[[bytes, dict], object]


class ScriptedServer:
    """A TCP server that hands each received frame to ``handler(frame, session)``.

    The handler returns bytes (sent as is), a list of byte chunks (sent one by
    one, to split the answer across reads), ``SILENCE``, or None to close the
    connection.  ``session`` is a dict per connection; ``frames`` records all.
    """

    def __init__(self, handler: Handler) -> None:
        import socket
        import threading

        self.handler = handler
        self.frames: list[bytes] = []
        self.connections = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._sockets: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, name="scripted-sip2-accept", daemon=True)

    @property
    def port(self) -> int:
        return self._listener.getsockname()[1]

    def __enter__(self) -> "ScriptedServer":
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        import socket

        self._stop.set()
        self._thread.join(3)
        for sock in self._sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for thread in self._threads:
            thread.join(3)
        self._listener.close()

    def _accept(self) -> None:
        import socket
        import threading

        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.connections += 1
            self._sockets.append(conn)
            thread = threading.Thread(target=self._serve, args=(conn,), name="scripted-sip2-conn", daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, conn) -> None:  # type: ignore[no-untyped-def]
        from backend.sip2.framing import FrameReader

        reader = FrameReader()
        session: dict = {"connection": self.connections}
        conn.settimeout(0.05)
        try:
            while not self._stop.is_set():
                try:
                    data = conn.recv(65536)
                except TimeoutError:
                    continue
                if not data:
                    return
                for frame in reader.feed(data):
                    self.frames.append(frame)
                    action = self.handler(frame, session)
                    if action is None:
                        return
                    if action is SILENCE:
                        continue
                    for chunk in action if isinstance(action, list) else [action]:
                        conn.sendall(chunk)
        except OSError:
            return
        finally:
            conn.close()


def answer(codec, message, frame: bytes) -> bytes:  # type: ignore[no-untyped-def]
    """Encode ``message`` as the answer to ``frame`` (echoing its sequence number)."""
    return codec.encode(message, codec.decode(frame).sequence)
