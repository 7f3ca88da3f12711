"""The backend in SIP2 mode: its circulation is the library system's, its gate view still follows every loan."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Iterator

import pytest
import yaml
from sqlalchemy import select

from backend.circulation.model import ItemFacts, ItemStatus
from backend.circulation_runtime import CirculationParts, build_circulation_parts
from backend.config import load_backend_config
from backend.db import Item, make_engine, session_factory, upgrade_database
from backend.db.circulation_store import SqlCirculationStore
from backend.gate_sync import LoanStateRefresher, status_recorder
from backend.gate_view import GateView
from backend.sip2.circulation import Sip2Circulation
from backend.sip2.server import Sip2Server
from circ_testkit import ADULT, BOOK, FAST_HASHER, OTHER_BOOK, TERMINAL_PASSWORD, TERMINAL_USER, Clock, \
    make_library, server_config, wait_until

TAG = "E004010000030001"


@pytest.fixture
def sip2_backend(tmp_path: Path) -> Iterator[tuple[CirculationParts, GateView, Sip2Server, object]]:
    library = make_library(Clock())
    with Sip2Server(library, server_config(), hasher=FAST_HASHER, clock=library.clock) as server:
        site = {"site": "lib1", "demo": True, "data_dir": "data", "broker": {"url": "mqtt://127.0.0.1:1883"},
                "backend": {"circulation": {"mode": "sip2", "branch": "MAIN", "sip2": {
                    "host": "127.0.0.1", "port": server.port, "user_id": TERMINAL_USER,
                    "password": TERMINAL_PASSWORD, "institution_id": "MAIN", "location_code": "MAIN",
                    "timezone": "Asia/Ho_Chi_Minh", "timeout_s": 3}}}}
        path = tmp_path / "site.yaml"
        path.write_text(yaml.safe_dump(site), encoding="utf-8")
        config = load_backend_config(path)
        engine = make_engine(config.database_url.get_secret_value())
        upgrade_database(engine)
        local = SqlCirculationStore(engine)
        local.put_item(ItemFacts(item_id=BOOK, title="Truyện Kiều", tag_uids=(TAG,)))  # the local catalogue
        local.close()
        view = GateView()
        with session_factory(engine)() as session:
            view.load(session)
        parts = build_circulation_parts(config, engine, view)
        try:
            yield parts, view, server, (engine, library)
        finally:
            parts.close()
            engine.dispose()


def test_sip2_mode_lends_through_the_library_system_and_the_gate_follows(sip2_backend) -> None:  # type: ignore[no-untyped-def]
    parts, view, _, (engine, library) = sip2_backend
    assert not parts.standalone and parts.store is None and isinstance(parts.inner, Sip2Circulation)
    assert view.lookup(TAG).on_loan is False
    result = parts.circulation.checkout(ADULT, BOOK, idempotency_key=uuid.uuid4().hex)
    assert result.ok and library.store.loans[BOOK].patron_id == "p-adult"  # the library system lent it
    assert view.lookup(TAG).on_loan is True
    with session_factory(engine)() as session:  # remembered locally for the next start
        assert session.scalar(select(Item.status).where(Item.item_id == BOOK)) == ItemStatus.ON_LOAN.value
    fresh = GateView()
    with session_factory(engine)() as session:
        fresh.load(session)
    assert fresh.lookup(TAG).on_loan is True
    assert parts.circulation.checkin(BOOK, idempotency_key=uuid.uuid4().hex).ok
    assert view.lookup(TAG).on_loan is False


def test_loans_made_at_the_library_desk_reach_the_gate_in_the_background(sip2_backend) -> None:  # type: ignore[no-untyped-def]
    parts, view, _, (engine, library) = sip2_backend
    refresher = LoanStateRefresher(parts.inner, view, remember=status_recorder(session_factory(engine)))
    refresher.start()
    try:
        assert library.checkout(ADULT, OTHER_BOOK, idempotency_key="at-the-desk").ok  # not through OpenShelf
        assert view.lookup("E0040100FFFF0002", OTHER_BOOK) is None  # unknown now; looked up in the background
        assert wait_until(lambda: view.get(OTHER_BOOK) is not None and view.get(OTHER_BOOK).on_loan)
    finally:
        refresher.stop()
