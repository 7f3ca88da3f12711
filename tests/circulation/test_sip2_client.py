"""The SIP2 client against scripted servers and the real one: resends, timeouts, reconnects, TLS."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from backend.circulation.interface import Tristate
from backend.sip2.client import Sip2Client
from backend.sip2.codec import Sip2Codec
from backend.sip2.errors import Sip2ConnectionError, Sip2LoginError, Sip2ProtocolError, Sip2Timeout
from backend.sip2.messages import AcsStatus, CheckoutResponse, ItemInformationResponse, LoginResponse
from backend.sip2.server import Sip2Server
from circ_testkit import (
    BOOK,
    FAST_HASHER,
    NOW,
    SILENCE,
    TZ,
    ScriptedServer,
    answer,
    client_config,
    make_library,
    self_signed_cert,
    server_config,
    wait_until,
)

CODEC = Sip2Codec(timezone=TZ)


def item_answer(frame: bytes) -> bytes:
    return answer(CODEC, ItemInformationResponse(circulation_status="03", transaction_date=NOW, item_id=BOOK,
                                                 title="Truyện Kiều"), frame)


def standard(frame: bytes, session: dict) -> object:
    """Logs anyone in, answers 99 and 17."""
    code = frame[:2]
    if code == b"93":
        return answer(CODEC, LoginResponse(ok=True), frame)
    if code == b"99":
        return answer(CODEC, AcsStatus(date_time_sync=NOW, institution_id="MAIN"), frame)
    if code == b"17":
        return item_answer(frame)
    if code == b"11":
        return answer(CODEC, CheckoutResponse(ok=True, desensitize=Tristate.NO, transaction_date=NOW,
                                              item_id=BOOK, title="x", due_date=""), frame)
    return None


def scripted(handler) -> ScriptedServer:  # type: ignore[no-untyped-def]
    return ScriptedServer(handler)


def client_for(port: int, **overrides: object) -> Sip2Client:
    values: dict[str, object] = {"timeout_s": 0.5, "idle_check_s": 0.0}
    values.update(overrides)
    return Sip2Client(client_config(port, **values))


def test_split_answers_with_crlf_and_stray_lf() -> None:
    def handler(frame: bytes, session: dict) -> object:
        reply = standard(frame, session)
        if frame[:2] == b"17":
            data = b"\n" + item_answer(frame)[:-1] + b"\r\n"
            return [data[index:index + 3] for index in range(0, len(data), 3)]
        return reply

    with scripted(handler) as server, client_for(server.port) as client:
        info = client.item_information(BOOK)
        assert info.title == "Truyện Kiều" and info.circulation_status == "03"
        assert client.item_information(BOOK).title == "Truyện Kiều"  # the LF left over does not confuse


def test_a_96_makes_the_client_resend_the_same_frame_once() -> None:
    def handler(frame: bytes, session: dict) -> object:
        if frame[:2] == b"17" and not session.get("refused"):
            session["refused"] = True
            return b"96AZFEF6\r"
        return standard(frame, session)

    with scripted(handler) as server, client_for(server.port) as client:
        assert client.item_information(BOOK).title == "Truyện Kiều"
    item_frames = [frame for frame in server.frames if frame[:2] == b"17"]
    assert len(item_frames) == 2 and item_frames[0] == item_frames[1]


def test_repeated_96_is_a_protocol_error() -> None:
    def handler(frame: bytes, session: dict) -> object:
        return b"96AZFEF6\r" if frame[:2] == b"17" else standard(frame, session)

    with scripted(handler) as server, client_for(server.port) as client:
        with pytest.raises(Sip2ProtocolError, match="96"):
            client.item_information(BOOK)


def test_a_corrupt_answer_is_asked_for_again_with_97() -> None:
    def handler(frame: bytes, session: dict) -> object:
        if frame[:2] == b"17":
            good = item_answer(frame)
            session["last"] = good
            return good[:-5] + b"0000\r"  # wrong checksum
        if frame[:2] == b"97":
            return session["last"]
        return standard(frame, session)

    with scripted(handler) as server, client_for(server.port) as client:
        assert client.item_information(BOOK).title == "Truyện Kiều"
    assert b"97AZFEF5" in server.frames


def test_an_answer_with_a_stale_sequence_number_is_skipped() -> None:
    def handler(frame: bytes, session: dict) -> object:
        if frame[:2] == b"17":
            stale = CODEC.encode(ItemInformationResponse(item_id="old", title="cũ"),
                                 (CODEC.decode(frame).sequence or 0) + 5)
            return [stale, item_answer(frame)]
        return standard(frame, session)

    with scripted(handler) as server, client_for(server.port) as client:
        assert client.item_information(BOOK).title == "Truyện Kiều"


def test_sequence_numbers_wrap_from_9_to_0() -> None:
    with scripted(standard) as server, client_for(server.port) as client:
        for _ in range(11):
            client.sc_status()
    sequences = [CODEC.decode(frame).sequence for frame in server.frames]
    assert sequences == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]


def test_a_safe_request_is_retried_once_after_a_timeout() -> None:
    def handler(frame: bytes, session: dict) -> object:
        if frame[:2] == b"17" and session["connection"] == 1:
            return SILENCE
        return standard(frame, session)

    with scripted(handler) as server, client_for(server.port, timeout_s=0.3) as client:
        assert client.item_information(BOOK).title == "Truyện Kiều"
        assert client.reconnects == 1
    assert server.connections == 2
    assert [frame[:2] for frame in server.frames] == [b"93", b"17", b"93", b"17"]


def test_a_checkout_is_not_blindly_repeated_after_a_timeout() -> None:
    def handler(frame: bytes, session: dict) -> object:
        return SILENCE if frame[:2] == b"11" else standard(frame, session)

    with scripted(handler) as server, client_for(server.port, timeout_s=0.3) as client:
        with pytest.raises(Sip2Timeout) as caught:
            client.checkout("21000001", BOOK)
        assert caught.value.maybe_processed
        assert not client.connected
    assert [frame[:2] for frame in server.frames].count(b"11") == 1


def test_a_dropped_link_during_a_query_is_reopened() -> None:
    def handler(frame: bytes, session: dict) -> object:
        if frame[:2] == b"17" and session["connection"] == 1:
            return None  # hang up instead of answering
        return standard(frame, session)

    with scripted(handler) as server, client_for(server.port) as client:
        assert client.item_information(BOOK).title == "Truyện Kiều"
    assert server.connections == 2


def test_login_refused() -> None:
    def handler(frame: bytes, session: dict) -> object:
        return answer(CODEC, LoginResponse(ok=False), frame)

    with scripted(handler) as server, client_for(server.port) as client:
        with pytest.raises(Sip2LoginError):
            client.sc_status()
        assert not client.connected


def test_nobody_listening() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with client_for(port) as client:
        with pytest.raises(Sip2ConnectionError, match="cannot connect"):
            client.sc_status()


def test_keepalive_checks_the_link_after_a_long_silence() -> None:
    with scripted(standard) as server, client_for(server.port, keepalive_s=0.01) as client:
        client.connect()
        time.sleep(0.05)  # longer than keepalive_s: the link has gone quiet
        client.item_information(BOOK)
    assert [frame[:2] for frame in server.frames] == [b"93", b"99", b"17"]


def test_reconnect_when_the_server_drops_an_idle_connection() -> None:
    library = make_library()
    with Sip2Server(library, server_config(idle_timeout_s=0.2), hasher=FAST_HASHER) as server:
        with client_for(server.port) as client:
            assert client.item_information(BOOK).title == "Truyện Kiều"
            assert wait_until(lambda: server.connection_count == 0)
            result = client.checkout("21000001", BOOK)  # not a safe request: must not hit the dead socket
            assert result.ok and client.reconnects == 1
    assert BOOK in library.store.loans


def test_login_with_no_user_configured_skips_93() -> None:
    with scripted(standard) as server, client_for(server.port, user_id=None) as client:
        client.sc_status()
    assert [frame[:2] for frame in server.frames] == [b"99"]


def test_tls(tmp_path: Path) -> None:
    cert = self_signed_cert(tmp_path)
    if cert is None:
        pytest.skip("openssl is not installed")
    cert_file, key_file = cert
    library = make_library()
    config = server_config(tls_cert_file=cert_file, tls_key_file=key_file)
    with Sip2Server(library, config, hasher=FAST_HASHER) as server:
        with client_for(server.port, tls=True, ca_file=cert_file, timeout_s=3.0) as client:
            assert client.checkout("21000001", BOOK).ok
        with client_for(server.port, tls=True, timeout_s=3.0) as untrusting:
            with pytest.raises(Sip2ConnectionError, match="TLS"):
                untrusting.sc_status()
        with client_for(server.port, tls=False, timeout_s=0.5) as plain:
            with pytest.raises(Sip2ConnectionError):
                plain.sc_status()
