"""The circulation test library in a real database (SQLite, or PostgreSQL when configured).

``sql_stack`` builds the same library as ``circ_testkit.make_library`` (it copies
it), in a freshly migrated database, behind :class:`SqlCirculation`, and exposes
it as ``Stack.backend`` with the read-only views the shared suite inspects
(``store.loans``, ``store.items``, ``store.payments`` …), so the very same test
functions run against the database store.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterator

from sqlalchemy import Engine, create_engine, func, make_url, select, text

from backend.circulation.model import FineFacts, HoldFacts, ItemFacts, LoanFacts
from backend.db import CirculationResult, Fine, Item, Loan, Payment, make_engine, upgrade_database
from backend.db.circulation_store import SqlCirculation, SqlCirculationStore
from backend.sip2.circulation import Sip2Circulation
from backend.sip2.client import Sip2Client
from backend.sip2.server import Sip2Server
from circ_testkit import FAST_HASHER, TZ, Clock, Stack, client_config, make_library, server_config

POSTGRES_ENV = "OPENSHELF_TEST_POSTGRES_URL"
_TEMPLATES: dict[str, str] = {}


def postgres_configured() -> bool:
    return bool(os.environ.get(POSTGRES_ENV))


@contextlib.contextmanager
def migrated_database(kind: str, folder: Path) -> Iterator[str]:
    """A URL of a migrated, empty database of ``kind`` ("sqlite" or "postgres"), copied from a template."""
    if kind == "sqlite":
        template = _TEMPLATES.get("sqlite")
        if template is None or not Path(template).exists():
            template = str(folder.parent / f"circ-template-{uuid.uuid4().hex[:8]}.db")
            _migrate(f"sqlite:///{template}")
            _TEMPLATES["sqlite"] = template
        target = folder / "circulation.db"
        shutil.copyfile(template, target)
        yield f"sqlite:///{target}"
        return
    server = os.environ[POSTGRES_ENV]
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        template = _TEMPLATES.get("postgres")
        if template is None:
            template = f"openshelf_circ_template_{uuid.uuid4().hex[:8]}"
            with admin.connect() as connection:
                connection.execute(text(f'CREATE DATABASE "{template}"'))
            _migrate(make_url(server).set(database=template).render_as_string(hide_password=False))
            _TEMPLATES["postgres"] = template
        name = f"openshelf_circ_{uuid.uuid4().hex[:12]}"
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
        try:
            yield make_url(server).set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def _migrate(url: str) -> None:
    engine = make_engine(url)
    try:
        upgrade_database(engine)
        if engine.dialect.name == "sqlite":
            with engine.connect() as connection:
                connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        engine.dispose()


class _Table(Mapping[str, Any]):
    """A read-only mapping over one query, re-run on every access (the database is the truth)."""

    def __init__(self, load: Any) -> None:
        self._load = load

    def __getitem__(self, key: str) -> Any:
        return self._load()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._load())

    def __len__(self) -> int:
        return len(self._load())


class StoreView:
    """What the shared suite reads from ``backend.store``, answered from the database."""

    def __init__(self, store: SqlCirculationStore) -> None:
        self._store = store
        self.loans = _Table(self._loans)
        self.items = _Table(self._items)
        self.payments = _Table(self._payments)
        self.fines = _Table(self._fines)

    # Read through SQLAlchemy (not the store's own SQL), so these views also check what the store wrote.

    def _select(self, statement: Any) -> list[Any]:
        with self._store.engine.connect() as connection:
            return list(connection.execute(statement).all())

    def _loans(self) -> dict[str, LoanFacts]:
        rows = self._select(select(Loan).where(Loan.returned_at.is_(None)))
        return {row.item_id: LoanFacts(item_id=row.item_id, patron_id=row.patron_barcode,
                                       patron_category=row.patron_category, item_type=row.item_type,
                                       checked_out_at=row.checked_out_at, due_at=row.due_at, renewals=row.renewals,
                                       branch=row.branch) for row in rows}

    def _items(self) -> dict[str, ItemFacts]:
        item_ids = [row.item_id for row in self._select(select(Item.item_id))]
        with self._store.session() as session:
            return {item_id: session.item(item_id) for item_id in item_ids}

    def _payments(self) -> dict[str, Decimal]:
        return dict(self._select(select(Payment.id, Payment.amount)))

    def _fines(self) -> dict[str, Decimal]:
        return dict(self._select(select(Fine.id, Fine.outstanding)))

    def closed_loans(self) -> int:
        return self._select(select(func.count()).select_from(Loan).where(Loan.returned_at.is_not(None)))[0][0]

    def results(self) -> int:
        return self._select(select(func.count()).select_from(CirculationResult))[0][0]


class SqlLibrary:
    """Stands where the suite expects a MemoryCirculation: setup helpers plus ``store`` views."""

    def __init__(self, circulation: SqlCirculation) -> None:
        self.circulation = circulation
        self.store = StoreView(circulation.store)

    def add_item(self, item: ItemFacts) -> ItemFacts:
        return self.circulation.add_item(item)

    def place_hold(self, patron_id: str, **fields: Any) -> HoldFacts:
        return self.circulation.place_hold(patron_id, **fields)

    def add_fine(self, fine: FineFacts) -> FineFacts:
        return self.circulation.add_fine(fine)


def copy_library(clock: Clock, engine: Engine) -> SqlCirculation:
    """The circ_testkit library (same patrons, PINs, items, fines) in the database behind ``engine``."""
    template = make_library(clock)
    circulation = SqlCirculation(SqlCirculationStore(engine, zone=TZ), branch=template.branch,
                                 institution_id=template.institution_id, library_name=template.library_name,
                                 clock=clock, pin_hasher=template.pin_hasher)
    circulation.store.ensure_default_rules()
    memory = template.store
    with circulation.store.session() as session:
        for patron in memory.patrons.values():
            session.save_patron(patron, memory.pins.get(patron.patron_id))
        for item in memory.items.values():
            session.save_item(item)
        for fine in memory.fines.values():
            session.add_fine(fine)
    return circulation


@contextlib.contextmanager
def sql_stack(kind: str, folder: Path, *, over_sip2: bool = False) -> Iterator[Stack]:
    clock = Clock()
    with migrated_database(kind, folder) as url:
        engine = make_engine(url)
        try:
            circulation = copy_library(clock, engine)
            library = SqlLibrary(circulation)
            try:
                if not over_sip2:
                    yield Stack(circulation, library, clock)  # type: ignore[arg-type]
                    return
                with Sip2Server(circulation, server_config(), hasher=FAST_HASHER, clock=clock) as server:
                    client = Sip2Client(client_config(server.port), clock=clock)
                    remote = Sip2Circulation(client, clock=clock)
                    try:
                        yield Stack(remote, library, clock, server, client)  # type: ignore[arg-type]
                    finally:
                        remote.close()
            finally:
                circulation.store.close()
        finally:
            engine.dispose()

