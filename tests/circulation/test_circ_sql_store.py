"""The database store passes the shared circulation suite (SQLite and PostgreSQL), plus its own guarantees.

Every test function of ``test_circ_shared_suite`` is collected here again with a
``stack`` over :class:`SqlCirculation` (and, on SQLite, over SIP2 in front of it).
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Iterator

import pytest

from backend.circulation.errors import StoreError
from backend.circulation.messages import ReasonCode
from backend.circulation.model import CirculationRule, FineFacts, ItemFacts, ItemStatus, RuleSet
from backend.db import make_engine
from backend.db.circulation_store import SqlCirculation, SqlCirculationStore
from circ_testkit import ADULT, BOOK, FINED, NOW, OTHER_BOOK, STUDENT, TZ, Clock, Stack
from sql_circ_testkit import StoreView, copy_library, migrated_database, postgres_configured, sql_stack
from test_circ_shared_suite import *  # noqa: F401,F403 - the shared tests, collected again over the database

# SIP2 in front of the database store is covered by the backend's own SIP2 server test.
_KINDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=_KINDS)
def stack(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stack]:  # noqa: F811 - overrides the suite's
    kind = str(request.param)
    if kind == "postgres" and not postgres_configured():
        pytest.skip("set OPENSHELF_TEST_POSTGRES_URL to run PostgreSQL tests")
    with sql_stack(kind, tmp_path) as value:
        yield value


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def library(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlCirculation]:
    if request.param == "postgres" and not postgres_configured():
        pytest.skip("set OPENSHELF_TEST_POSTGRES_URL to run PostgreSQL tests")
    with migrated_database(str(request.param), tmp_path) as url:
        engine = make_engine(url)
        try:
            circulation = copy_library(Clock(), engine)
            yield circulation
            circulation.store.close()
        finally:
            engine.dispose()


def test_a_failure_inside_a_transaction_leaves_no_trace(library: SqlCirculation,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from backend.db.circulation_store import SqlStoreSession

    def explode(self: SqlStoreSession, item_id: str, status: ItemStatus) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(SqlStoreSession, "set_item_status", explode)
    with pytest.raises(RuntimeError):
        library.checkout(ADULT, BOOK, idempotency_key="k")
    view = StoreView(library.store)
    assert dict(view.loans) == {} and view.results() == 0
    monkeypatch.undo()
    assert library.checkout(ADULT, BOOK, idempotency_key="k").ok
    assert view.loans[BOOK].patron_id == "p-adult"


def test_the_unique_open_loan_index_is_the_last_line_of_defence(library: SqlCirculation) -> None:
    assert library.checkout(ADULT, BOOK, idempotency_key="first").ok
    loan = StoreView(library.store).loans[BOOK]
    with pytest.raises(StoreError):
        with library.store.session() as session:
            session.add_loan(loan.model_copy(update={"patron_id": "p-student"}))
    assert StoreView(library.store).loans[BOOK].patron_id == "p-adult"


def test_a_replayed_key_returns_the_first_result_even_after_a_restart(library: SqlCirculation) -> None:
    first = library.checkout(ADULT, BOOK, idempotency_key="kiosk-1:abc")
    reopened = SqlCirculation(SqlCirculationStore(library.store.engine, zone=TZ), clock=library.clock,
                              pin_hasher=library.pin_hasher)
    assert reopened.checkout(ADULT, BOOK, idempotency_key="kiosk-1:abc") == first
    reopened.store.close()
    assert StoreView(library.store).results() == 1


def test_checkin_is_idempotent_and_charges_one_fine(library: SqlCirculation) -> None:
    library.checkout(ADULT, BOOK, idempotency_key="out")
    library.clock.advance(days=20)  # type: ignore[attr-defined]
    first = library.checkin(BOOK, idempotency_key="in")
    assert library.checkin(BOOK, idempotency_key="in") == first and first.fine_due == Decimal(12000)
    assert len(StoreView(library.store).fines) == 2  # the seeded one and this overdue fine
    assert library.patron_status(ADULT).fines_owed == Decimal(12000)


def test_no_block_checkout_over_another_loan_returns_it_first(library: SqlCirculation) -> None:
    library.checkout(STUDENT, BOOK, idempotency_key="a")
    result = library.checkout(ADULT, BOOK, idempotency_key="b", no_block=True)
    assert result.ok and result.overridden == (ReasonCode.ON_LOAN_TO_OTHER,)
    view = StoreView(library.store)
    assert view.loans[BOOK].patron_id == "p-adult" and view.closed_loans() == 1


def test_payment_for_one_fee_is_exact(library: SqlCirculation) -> None:
    library.add_fine(FineFacts(fine_id="f-2", patron_id="p-fined", amount=Decimal("1000.50"), created_at=NOW))
    result = library.record_payment(FINED, Decimal("1000.50"), idempotency_key="p", fee_id="f-2")
    fines = StoreView(library.store).fines
    assert result.ok and fines["f-2"] == 0 and fines["f-1"] == Decimal(60000)


def test_rules_are_stored_edited_and_read_back(library: SqlCirculation) -> None:
    assert library.store.rules() == RuleSet()  # the defaults were written on first start
    edited = RuleSet(rules=(CirculationRule(loan_period=3, fine_per_day=Decimal("1500.25")),), currency="USD",
                     hold_pickup_days=3)
    library.set_rules(edited)
    assert library.store.rules() == edited
    assert library.store.ensure_default_rules() is False  # never again over an admin's rules
    result = library.checkout(ADULT, BOOK, idempotency_key="short")
    assert result.due_at == (NOW + timedelta(days=3)).replace(hour=23, minute=59)


def test_catalogue_writes_replace_tags_and_keep_circulation_state(library: SqlCirculation) -> None:
    library.add_item(ItemFacts(item_id="S1", record_id="R9", title="Bộ hai tập", parts=2,
                               tag_uids=("E004010000000101", "E004010000000102")))
    assert library.checkout(ADULT, "S1", idempotency_key="s1").ok
    with library.store.session() as session:
        stored = session.item("S1")
        assert stored is not None and stored.tag_uids == ("E004010000000101", "E004010000000102")
        assert stored.status is ItemStatus.ON_LOAN
        session.save_item(stored.model_copy(update={"title": "Bộ hai tập (tái bản)", "tag_uids": ()}))
    with library.store.session() as session:
        assert session.item("S1").title == "Bộ hai tập (tái bản)" and session.item("S1").tag_uids == ()


def test_concurrent_checkouts_of_one_item_lend_it_once(library: SqlCirculation) -> None:
    results = []
    lock = threading.Lock()

    def borrow(card: str, key: str) -> None:
        try:
            outcome = library.checkout(card, OTHER_BOOK, idempotency_key=key)
        except StoreError as exc:  # the database refused the loser: acceptable, nothing was written
            outcome = exc
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=borrow, args=(card, f"race-{index}"), name=f"race-{index}")
               for index, card in enumerate([ADULT, STUDENT] * 4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    lent = [result for result in results if not isinstance(result, StoreError) and result.ok]
    assert len(results) == 8 and len(lent) == 1
    assert StoreView(library.store).loans[OTHER_BOOK].patron_id in {"p-adult", "p-student"}


def test_old_remembered_answers_are_pruned(library: SqlCirculation) -> None:
    assert library.checkout(ADULT, BOOK, idempotency_key="old-key").ok
    assert library.store.prune_results(NOW - timedelta(days=365)) == 0  # answers are stamped with real time
    assert library.store.prune_results(datetime.now(timezone.utc) + timedelta(seconds=1)) == 1
    assert StoreView(library.store).results() == 0
