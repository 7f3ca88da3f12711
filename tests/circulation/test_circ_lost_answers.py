"""Sip2Circulation when the link breaks mid-transaction: look first, then repeat once, never lend twice."""

from __future__ import annotations

import socket
from typing import Iterator

import pytest

from backend.circulation.messages import ReasonCode
from backend.circulation.memory import MemoryCirculation
from backend.sip2.circulation import Sip2Circulation
from backend.sip2.client import Sip2Client
from backend.sip2.framing import FrameReader
from backend.sip2.server import Sip2Server
from circ_testkit import ADULT, BOOK, FAST_HASHER, Clock, ScriptedServer, client_config, make_library, server_config


class FaultyLink:
    """A frame-aware proxy that loses one exchange of the given message code.

    ``mode="request"``: the request never reaches the server; ``mode="answer"``:
    the server acts on it but the answer is lost.  Either way the link drops.
    """

    def __init__(self, target_port: int, code: bytes, mode: str) -> None:
        self.target_port, self.code, self.mode = target_port, code, mode
        self.faulted = False
        self.upstreams: list[socket.socket] = []
        self.proxy = ScriptedServer(self._handle)

    def _handle(self, frame: bytes, session: dict) -> object:
        if "upstream" not in session:
            session["upstream"] = socket.create_connection(("127.0.0.1", self.target_port), timeout=3)
            session["reader"] = FrameReader()
            self.upstreams.append(session["upstream"])
        if frame[:2] == self.code and not self.faulted:
            self.faulted = True
            if self.mode == "answer":
                self._forward(session, frame)
            return None
        return self._forward(session, frame)

    @staticmethod
    def _forward(session: dict, frame: bytes) -> bytes:
        session["upstream"].sendall(frame + b"\r")
        frames: list[bytes] = []
        while not frames:
            frames = session["reader"].feed(session["upstream"].recv(65536))
        return frames[0] + b"\r"

    def close(self) -> None:
        for upstream in self.upstreams:
            upstream.close()


@pytest.fixture
def library() -> MemoryCirculation:
    return make_library(Clock())


@pytest.fixture
def server(library: MemoryCirculation) -> Iterator[Sip2Server]:
    with Sip2Server(library, server_config(), hasher=FAST_HASHER, clock=library.clock) as running:
        yield running


def _through(link: FaultyLink) -> Sip2Circulation:
    return Sip2Circulation(Sip2Client(client_config(link.proxy.port, timeout_s=1.0)))


@pytest.mark.parametrize("mode", ["request", "answer"])
def test_checkout_with_a_lost_exchange_lends_exactly_once(server: Sip2Server, library: MemoryCirculation,
                                                          mode: str) -> None:
    link = FaultyLink(server.port, b"11", mode)
    with link.proxy:
        circulation = _through(link)
        try:
            result = circulation.checkout(ADULT, BOOK, idempotency_key="one")
        finally:
            circulation.close()
            link.close()
    assert link.faulted and result.ok and result.reason is ReasonCode.CHECKED_OUT
    assert library.store.loans[BOOK].patron_id == "p-adult"
    assert len(library.store.results) == 1  # one transaction reached the library


@pytest.mark.parametrize("mode", ["request", "answer"])
def test_checkin_with_a_lost_exchange(server: Sip2Server, library: MemoryCirculation, mode: str) -> None:
    assert library.checkout(ADULT, BOOK, idempotency_key="before").ok
    link = FaultyLink(server.port, b"09", mode)
    with link.proxy:
        circulation = _through(link)
        try:
            result = circulation.checkin(BOOK, idempotency_key="back")
        finally:
            circulation.close()
            link.close()
    assert link.faulted and result.ok and BOOK not in library.store.loans
    assert len(library.store.closed_loans) == 1
