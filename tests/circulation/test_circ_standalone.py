"""The standalone circulation over a store: transactions, idempotency, configuration, factory, benchmark."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import ValidationError

from backend.circulation.config import CirculationSettings
from backend.circulation.errors import InvalidRequestError
from backend.circulation.factory import build_circulation
from backend.circulation.interface import Circulation
from backend.circulation.memory import MemoryCirculation, MemoryStore
from backend.circulation.messages import ReasonCode
from backend.circulation.model import FineFacts, HoldStatus, ItemStatus
from backend.circulation.service import StoreCirculation
from backend.circulation_bench import LOANS_PER_PATRON, bench_sql_checkouts, terminal_share
from backend.sip2.bench import bench_sip2_checkouts, bench_standalone_memory_checkouts
from backend.sip2.circulation import Sip2Circulation
from backend.sip2.client import Sip2Client
from backend.sip2.config import Sip2ClientConfig, Sip2Terminal, hash_terminal_password
from circ_testkit import ADULT, BOOK, FINED, NOW, STUDENT, Clock, make_library


@pytest.fixture
def library() -> MemoryCirculation:
    return make_library(Clock())


def test_both_implementations_satisfy_the_protocol(library: MemoryCirculation) -> None:
    assert isinstance(library, Circulation)
    assert isinstance(Sip2Circulation(Sip2Client(Sip2ClientConfig(host="127.0.0.1"))), Circulation)


def test_a_failure_inside_a_transaction_leaves_no_trace(library: MemoryCirculation,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(item_id: str, status: ItemStatus) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(library.store, "set_item_status", explode)
    with pytest.raises(RuntimeError):
        library.checkout(ADULT, BOOK, idempotency_key="k")
    assert library.store.loans == {} and library.store.results == {}
    assert library.store.open_loans_of("p-adult") == []
    monkeypatch.undo()
    assert library.checkout(ADULT, BOOK, idempotency_key="k").ok


def test_checkin_is_idempotent(library: MemoryCirculation) -> None:
    library.checkout(ADULT, BOOK, idempotency_key="out")
    library.clock.advance(days=20)  # type: ignore[attr-defined]
    first = library.checkin(BOOK, idempotency_key="in")
    assert library.checkin(BOOK, idempotency_key="in") == first and first.fine_due == Decimal(12000)
    assert len(library.store.fines) == 2  # the seeded one and this overdue fine


def test_naive_times_are_refused(library: MemoryCirculation) -> None:
    with pytest.raises(InvalidRequestError):
        library.checkout(ADULT, BOOK, idempotency_key="k", now=datetime(2024, 1, 1))
    with pytest.raises(InvalidRequestError):
        library.checkout(ADULT, BOOK, idempotency_key="")


def test_payment_for_one_fee(library: MemoryCirculation) -> None:
    library.add_fine(FineFacts(fine_id="f-2", patron_id="p-fined", amount=Decimal(1000), created_at=NOW))
    result = library.record_payment(FINED, Decimal(1000), idempotency_key="p", fee_id="f-2")
    assert result.ok and library.store.fines["f-2"].amount == 0 and library.store.fines["f-1"].amount == 60000


def test_no_block_checkout_over_another_loan_returns_it_first(library: MemoryCirculation) -> None:
    library.checkout(STUDENT, BOOK, idempotency_key="a")
    result = library.checkout(ADULT, BOOK, idempotency_key="b", no_block=True)
    assert result.ok and result.overridden == (ReasonCode.ON_LOAN_TO_OTHER,)
    assert library.store.loans[BOOK].patron_id == "p-adult" and len(library.store.closed_loans) == 1


def test_patron_account_shows_accruing_fines(library: MemoryCirculation) -> None:
    library.checkout(ADULT, BOOK, idempotency_key="a")
    library.place_hold("p-adult", record_id="R2", pickup_branch="MAIN")
    library.clock.advance(days=16)  # type: ignore[attr-defined]
    account = library.patron_account(ADULT)
    assert account.loans[0].overdue and account.loans[0].fine_accruing == Decimal(4000)
    assert account.fines_total == Decimal(4000)
    assert [(hold.record_id, hold.status) for hold in account.holds] == [("R2", HoldStatus.PENDING)]


def test_settings_choose_the_implementation(tmp_path: Path) -> None:
    standalone = build_circulation(CirculationSettings(branch="MAIN"), store=MemoryStore())
    assert isinstance(standalone, StoreCirculation) and standalone.branch == "MAIN"
    with pytest.raises(ValueError, match="store"):
        build_circulation(CirculationSettings())
    settings = CirculationSettings.model_validate({
        "mode": "sip2", "branch": "MAIN",
        "sip2": {"host": "koha.example.org", "user_id": "kiosk", "password": "secret-from-vault",
                 "offline": {"enabled": True, "journal_path": str(tmp_path / "j.jsonl")}},
    })
    over_sip2 = build_circulation(settings)
    assert isinstance(over_sip2, Sip2Circulation) and not over_sip2.client.connected
    assert over_sip2.client.config.current_location == "MAIN" and over_sip2.journal is not None
    over_sip2.close()


@pytest.mark.parametrize("data, match", [
    ({"mode": "sip2"}, "needs a 'sip2' section"),
    ({"mode": "sip2", "sip2": {"host": "h"}, "server": {}}, "cannot run"),
    ({"mode": "sip2", "sip2": {"host": "h", "offline": {"enabled": True}}}, "journal_path"),
    ({"mode": "sip2", "sip2": {"host": "h", "timezone": "Mars/Olympus"}}, "time zone"),
    ({"mode": "sip2", "sip2": {"host": "h", "charset": "cp1258"}}, "charset"),
])
def test_bad_settings(data: dict, match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        CirculationSettings.model_validate(data)


def test_terminal_passwords_are_stored_hashed() -> None:
    with pytest.raises(ValidationError, match="argon2"):
        Sip2Terminal(user_id="k", password_hash="plain-text")
    assert Sip2Terminal(user_id="k", password_hash=hash_terminal_password("pw")).password_hash.startswith("$argon2")


@pytest.mark.parametrize("store", ["memory", "sqlite"])
def test_the_sip2_benchmark_reports_its_numbers_and_its_floor(store: str) -> None:
    over_sip2 = bench_sip2_checkouts(30, terminals=2, store=store, in_process=True)  # type: ignore[arg-type]
    assert over_sip2["n"] == 30 and over_sip2["terminals"] == 2 and over_sip2["error_detection"] is True
    assert over_sip2["checkouts_per_s"] > 0 and over_sip2["tcp_floor_round_trips_per_s"] > 0
    assert over_sip2["latency_ms_p99"] >= over_sip2["latency_ms_p50"] > 0


def test_the_standalone_benchmarks_report_their_numbers_and_their_floor() -> None:
    standalone = bench_standalone_memory_checkouts(30)
    assert standalone["n"] == 30 and standalone["checkouts_per_s"] > 0
    durable = bench_sql_checkouts(40, terminals=3, floor_commits=20)
    assert durable["n"] == 40 and durable["terminals"] == 3 and durable["database"] == "sqlite"
    assert durable["checkouts_per_s"] > 0 and durable["checkouts_per_commit"] >= 1
    assert durable["durable_row_commits_per_s"] > 0 and durable["empty_commits_per_s"] > 0


def test_terminals_share_the_patrons_without_overlap() -> None:
    shares = [terminal_share(95, 3, terminal) for terminal in range(3)]
    assert sorted(index for share in shares for index in share) == list(range(95))
    assert all(len({index // LOANS_PER_PATRON for index in share} & {index // LOANS_PER_PATRON for index in other})
               == 0 for share in shares for other in shares if share is not other)

