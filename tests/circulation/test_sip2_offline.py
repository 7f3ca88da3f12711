"""Offline circulation: the journal, Koha .koc export, and replay over SIP2 with no-block."""

from __future__ import annotations

import socket
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from backend.circulation.interface import Tristate
from backend.circulation.messages import ReasonCode
from backend.sip2.circulation import Sip2Circulation
from backend.sip2.client import Sip2Client
from backend.sip2.config import OfflineSettings
from backend.sip2.offline import (
    JsonlJournal,
    MemoryJournal,
    OfflineError,
    OfflineJournal,
    OfflineKind,
    OfflineTransaction,
    ReplayOutcome,
    export_koc,
    parse_koc,
    replay_offline,
)
from backend.sip2.server import Sip2Server
from circ_testkit import (
    ADULT,
    BOOK,
    FAST_HASHER,
    FINED,
    IN_HOUSE,
    NOW,
    OTHER_BOOK,
    TZ,
    Clock,
    client_config,
    make_library,
    server_config,
)

AT = datetime(2026, 7, 23, 10, 15, 30, tzinfo=TZ)
SAMPLE = [
    OfflineTransaction(tx_id="t1", kind=OfflineKind.ISSUE, at=AT, card_id="23529001000463", item_id="31000000123456"),
    OfflineTransaction(tx_id="t2", kind=OfflineKind.RETURN, at=AT + timedelta(seconds=30), item_id="31000000654321"),
    OfflineTransaction(tx_id="t3", kind=OfflineKind.PAYMENT, at=AT + timedelta(seconds=90), card_id="23529001000463",
                       amount=Decimal(5)),
]
REFERENCE_KOC = (
    "Version=1.0\tGenerator=openshelf\tGeneratorVersion=0.1\n"
    "2026-07-23 10:15:30\tissue\t23529001000463\t31000000123456\n"
    "2026-07-23 10:16:00\treturn\t31000000654321\n"
    "2026-07-23 10:17:00\tpayment\t23529001000463\t5.00\n"
)


def test_export_matches_the_reference_example() -> None:
    assert export_koc(reversed(SAMPLE)) == REFERENCE_KOC


def test_export_with_milliseconds_and_in_local_time() -> None:
    utc = OfflineTransaction(kind=OfflineKind.RETURN, at=datetime(2026, 7, 23, 3, 15, 30, 250000, tzinfo=timezone.utc),
                             item_id="3100")
    text = export_koc([utc], timestamp="millis", zone=TZ, generator="kiosk", generator_version="2")
    assert text.splitlines() == ["Version=1.0\tGenerator=kiosk\tGeneratorVersion=2",
                                 "2026-07-23 10-15-30 250\treturn\t3100"]


@pytest.mark.parametrize("style", ["seconds", "millis"])
def test_export_and_parse_round_trip(style: str) -> None:
    parsed = parse_koc(export_koc(SAMPLE, timestamp=style).replace("\n", "\r\n"), zone=TZ)  # type: ignore[arg-type]
    assert [(tx.kind, tx.at, tx.card_id, tx.item_id, tx.amount) for tx in parsed] == [
        (tx.kind, tx.at, tx.card_id, tx.item_id, tx.amount) for tx in SAMPLE]


@pytest.mark.parametrize("text", [
    "", "issue\tx\n", "Version=1.0\n2026-07-23 10:15:30\tissue\tonly-card\n", "Version=1.0\nyesterday\treturn\t1\n",
    "Version=1.0\n2026-07-23 10:15:30\tlend\t1\t2\n", "Version=1.0\n2026-07-23 10:15:30\tpayment\t1\tlots\n",
])
def test_bad_koc_files_are_refused(text: str) -> None:
    with pytest.raises(OfflineError):
        parse_koc(text, zone=TZ)


def test_transactions_are_validated() -> None:
    with pytest.raises(ValueError, match="card_id"):
        OfflineTransaction(kind=OfflineKind.ISSUE, at=AT, item_id="1")
    with pytest.raises(ValueError, match="timezone"):
        OfflineTransaction(kind=OfflineKind.RETURN, at=AT.replace(tzinfo=None), item_id="1")
    with pytest.raises(ValueError, match="tabs"):
        OfflineTransaction(kind=OfflineKind.RETURN, at=AT, item_id="1\t2")


def test_jsonl_journal_survives_a_torn_line(tmp_path: Path) -> None:
    journal = JsonlJournal(tmp_path / "offline" / "journal.jsonl")
    for tx in SAMPLE:
        journal.append(tx)
    journal.mark_replayed(ReplayOutcome(tx_id="t1", ok=True, reason=ReasonCode.CHECKED_OUT))
    with journal.path.open("a", encoding="utf-8") as handle:
        handle.write('{"tx": {"kind": "iss')
    reopened = JsonlJournal(journal.path)
    assert [tx.tx_id for tx in reopened.pending()] == ["t2", "t3"]
    assert reopened.outcomes()["t1"].ok


def _unreachable_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _offline_circulation(port: int, journal: OfflineJournal, clock: Clock, **settings: object) -> Sip2Circulation:
    offline = OfflineSettings(enabled=True, **settings)  # type: ignore[arg-type]
    client = Sip2Client(client_config(port, timeout_s=0.5, offline=offline), clock=clock)
    return Sip2Circulation(client, journal=journal, clock=clock)


def test_checkouts_are_recorded_while_the_library_system_is_away() -> None:
    journal, clock = MemoryJournal(), Clock()
    circulation = _offline_circulation(_unreachable_port(), journal, clock, desensitize=Tristate.YES)
    try:
        out = circulation.checkout(ADULT, BOOK, idempotency_key="k-out")
        assert out.ok and out.offline and out.reason is ReasonCode.OFFLINE_RECORDED
        assert out.desensitize is Tristate.YES and "ghi lại" in out.message.vi
        back = circulation.checkin(OTHER_BOOK, idempotency_key="k-in")
        assert back.ok and back.offline
        assert circulation.checkout(ADULT, BOOK, idempotency_key="k-out") == out  # a retry records nothing new
        overridden = circulation.checkout(ADULT, IN_HOUSE, idempotency_key="k-nb", no_block=True)
        assert (overridden.ok, overridden.reason) == (False, ReasonCode.SYSTEM_UNAVAILABLE)
        status = circulation.system_status()
        assert not status.online and status.checkout_ok and status.offline_ok
        renew = circulation.renew(ADULT, BOOK)
        assert (renew.ok, renew.reason) == (False, ReasonCode.SYSTEM_UNAVAILABLE)
    finally:
        circulation.close()
    assert [(tx.tx_id, tx.kind) for tx in journal.pending()] == [("k-out", OfflineKind.ISSUE),
                                                                  ("k-in", OfflineKind.RETURN)]


def test_without_offline_mode_the_kiosk_is_told_the_system_is_away() -> None:
    client = Sip2Client(client_config(_unreachable_port(), timeout_s=0.5))
    circulation = Sip2Circulation(client)
    try:
        result = circulation.checkout(ADULT, BOOK, idempotency_key="k")
        assert (result.ok, result.reason, result.desensitize) == (False, ReasonCode.SYSTEM_UNAVAILABLE, Tristate.NO)
        assert "không kết nối" in result.message.vi and result.detail
    finally:
        circulation.close()


def test_offline_mode_needs_a_journal() -> None:
    client = Sip2Client(client_config(1, offline=OfflineSettings(enabled=True)))
    with pytest.raises(ValueError, match="journal"):
        Sip2Circulation(client)


def test_replay_with_no_block_once_the_library_system_is_back() -> None:
    journal, clock = MemoryJournal(), Clock()
    earlier = NOW - timedelta(hours=2)
    journal.append(OfflineTransaction(tx_id="a", kind=OfflineKind.ISSUE, at=earlier, card_id=ADULT, item_id=IN_HOUSE))
    journal.append(OfflineTransaction(tx_id="b", kind=OfflineKind.ISSUE, at=earlier + timedelta(minutes=1),
                                      card_id=ADULT, item_id=BOOK))
    journal.append(OfflineTransaction(tx_id="c", kind=OfflineKind.RETURN, at=earlier + timedelta(minutes=5),
                                      item_id=BOOK))
    journal.append(OfflineTransaction(tx_id="d", kind=OfflineKind.PAYMENT, at=earlier + timedelta(minutes=6),
                                      card_id=FINED, amount=Decimal(60000)))
    journal.append(OfflineTransaction(tx_id="e", kind=OfflineKind.ISSUE, at=earlier + timedelta(minutes=7),
                                      card_id=ADULT, item_id="no-such-item"))
    library = make_library(clock)
    with Sip2Server(library, server_config(), hasher=FAST_HASHER, clock=clock) as server:
        circulation = _offline_circulation(server.port, journal, clock)
        try:
            report = replay_offline(journal, circulation)
        finally:
            circulation.close()
    assert (report.replayed, report.remaining, report.stopped) == (5, 0, None)
    assert [(tx.tx_id, outcome.reason) for tx, outcome in report.refused] == [("e", ReasonCode.UNKNOWN_ITEM)]
    assert library.store.loans[IN_HOUSE].checked_out_at == earlier  # no-block and the original time
    assert BOOK not in library.store.loans
    assert [(loan.item_id, returned) for loan, returned in library.store.closed_loans] == [
        (BOOK, earlier + timedelta(minutes=5))]
    assert library.patron_status(FINED).fines_owed == 0
    assert journal.pending() == []


def test_replay_stops_while_the_library_system_is_still_away() -> None:
    journal, clock = MemoryJournal(), Clock()
    for tx in SAMPLE:
        journal.append(tx)
    circulation = _offline_circulation(_unreachable_port(), journal, clock)
    try:
        report = replay_offline(journal, circulation)
    finally:
        circulation.close()
    assert (report.replayed, report.remaining) == (0, 3) and report.stopped
    assert len(journal.pending()) == 3 and len(journal.outcomes) == 0


def test_replay_against_the_standalone_circulation_too() -> None:
    journal, clock = MemoryJournal(), Clock()
    journal.append(OfflineTransaction(tx_id="x", kind=OfflineKind.ISSUE, at=NOW, card_id=ADULT, item_id=BOOK))
    library = make_library(clock)
    assert replay_offline(journal, library).replayed == 1 and BOOK in library.store.loans
    again = replay_offline(journal, library)
    assert again.replayed == 0 and len(library.store.loans) == 1
