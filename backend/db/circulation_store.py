"""The standalone circulation's store in the backend database (SQLite or PostgreSQL).

:class:`SqlCirculationStore` implements :class:`~backend.circulation.store.CirculationStore`:
``run(operation)`` and ``session()`` are one database transaction each, committed when
the operation (block) ends and rolled back when it raises (nothing partial remains).

Durability: a session returns only once its commit is on disk.  On SQLite the store's
writer connection runs with ``synchronous=FULL`` (the write-ahead log is flushed at
every commit), whatever the engine's default (``NORMAL``, which can lose the last
commits on a power cut): a kiosk that showed ✓ and unlocked the tag must find the loan
after the power comes back.

Concurrency:

* SQLite: one writer connection; a transaction starts with ``BEGIN IMMEDIATE``, so
  circulation transactions are serialised from their first read.  Operations that
  queue up for the writer while another runs are run in its transaction, each in its
  own savepoint, and share one commit (:mod:`backend.circulation.group_commit`): one
  disk flush for a whole group of terminals, each operation still atomic and durable.
  ``session()`` blocks (imports, setup) run alone, in queue order.
* PostgreSQL: a pooled connection per session; ``item(..., for_update=True)`` locks
  the item row (``SELECT … FOR UPDATE OF items``) and, first, the row of the patron
  this transaction looked up, so two checkouts cannot both pass a loan limit. Locks
  are always taken patron before item, so these transactions cannot deadlock on each
  other.  (The server does its own group commit.)
* The unique index on open loans refuses a second open loan of one item whatever
  happens above it; the error surfaces as :class:`StoreError`, nothing is written.

Speed: a checkout is one transaction of about ten statements, and the issue asks
for 2,000 checkouts per second on SQLite; SQLAlchemy's per-statement machinery
would cost more than the statements. So this module runs its own fixed SQL
(standard SQL; the parameter style and the row lock are the only differences)
on the DBAPI connection from the engine's pool, converting the few column types
itself exactly as the models store them (:mod:`backend.db.types`; SQLAlchemy's
SQLite date formats). A test keeps the two in step (ORM reads what this writes).

Times come back in the store's time zone (the library's local time), which is
what the decisions and the bilingual messages expect.

Besides the protocol, sessions save patrons and items (``save_patron``,
``save_item``: catalogue import, demo, tests), and :class:`SqlCirculation` is the
standalone circulation over this store with the setup helpers of
:class:`~backend.circulation.memory.MemoryCirculation`.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
import time
import uuid
from contextlib import AbstractContextManager, contextmanager
from datetime import date, datetime, timezone, tzinfo
from decimal import Decimal
from typing import Any, Callable, Iterator, Sequence, TypeVar

from sqlalchemy import Engine

from backend.circulation.errors import StoreError
from backend.circulation.group_commit import DEFAULT_MAX_GROUP, GroupCommitter
from backend.circulation.model import (
    CirculationRule,
    FineFacts,
    HoldFacts,
    HoldStatus,
    ItemFacts,
    ItemStatus,
    LoanFacts,
    PatronFacts,
    RuleSet,
)
from backend.circulation.service import PinHasher, StoreCirculation
from backend.circulation.store import HoldEnd, StoredResult
from backend.db.types import CENT

log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_RULES_TTL_S = 5.0
_LOAN_FACTS_KEPT = 50_000
_NAMED_PARAM = re.compile(r"(?<!:):([a-z_]+)")
_RULE_FIELDS = ("patron_category", "item_type", "loan_period", "period_unit", "max_loans", "max_renewals",
                "renewal_period", "renew_from", "holds_block_renewal", "fine_per_day", "grace_days", "max_fine",
                "fine_limit")
_MONEY_RULE_FIELDS = {"fine_per_day", "max_fine", "fine_limit"}

_PATRON_COLUMNS = "p.id, p.barcode, p.name, p.category, p.expires_on, p.blocked, p.block_reason, p.home_branch"
_LOAN_COLUMNS = "l.item_id, l.patron_barcode, l.patron_category, l.item_type, l.checked_out_at, l.due_at, " \
                "l.renewals, l.branch"
_HOLD_COLUMNS = "h.id, h.patron_barcode, h.record_id, h.item_id, h.status, h.pickup_branch, h.placed_at, " \
                "h.pickup_expires_at"


class _Sql:
    """The statements, in the driver's parameter style; ``FOR UPDATE`` only where the database has row locks."""

    def __init__(self, postgres: bool) -> None:
        lock = " FOR UPDATE OF items" if postgres else ""

        def q(text: str) -> str:
            return _NAMED_PARAM.sub(r"%(\1)s", text) if postgres else text

        # With the number of fine rows, so a patron who never had a fine costs no second query.
        fine_rows = "(SELECT count(*) FROM fines f WHERE f.patron_barcode = p.barcode)"
        # With every card and every open loan (rows: cards × loans, a handful): every caller of a patron
        # also needs their loans. Cards are put in order here (oldest first): no temporary B-tree.
        open_loans = "LEFT JOIN loans l ON l.patron_barcode = p.barcode AND l.returned_at IS NULL"
        self.patron_by_card = q(
            f"SELECT {_PATRON_COLUMNS}, {fine_rows}, o.card_id, o.id, {_LOAN_COLUMNS} FROM patron_cards c "
            "JOIN patrons p ON p.id = c.patron_id JOIN patron_cards o ON o.patron_id = p.id "
            f"{open_loans} WHERE c.card_id = :card_id")
        self.patron_by_number = q(
            f"SELECT {_PATRON_COLUMNS}, {fine_rows}, o.card_id, o.id, {_LOAN_COLUMNS} FROM patrons p "
            f"LEFT JOIN patron_cards o ON o.patron_id = p.id {open_loans} WHERE p.barcode = :barcode")
        self.lock_patron = q("SELECT id FROM patrons WHERE id = :id" + (" FOR UPDATE" if postgres else ""))
        self.pin_hash = q("SELECT pin_hash FROM patrons WHERE barcode = :barcode")
        # The item, its tags, its open loan (if any) and whether any hold might want it, in one round trip.
        hold_rows = ("(SELECT count(*) FROM holds h WHERE h.ended_at IS NULL AND (h.item_id = items.item_id "
                     "OR (h.item_id IS NULL AND h.record_id = items.record_id)))")
        self.item = q(
            "SELECT items.item_id, items.record_id, items.title, items.author, items.item_type, items.parts, "
            f"items.home_branch, items.location, items.in_library_only, items.status, {hold_rows}, t.uid, t.part, "
            f"{_LOAN_COLUMNS} FROM items LEFT JOIN tags t ON t.item_id = items.item_id "
            "LEFT JOIN loans l ON l.item_id = items.item_id AND l.returned_at IS NULL "
            "WHERE items.item_id = :item_id")  # tags sorted here: no temporary B-tree for a few rows
        self.item_for_update = self.item + lock
        self.open_loan = q(f"SELECT {_LOAN_COLUMNS} FROM loans l WHERE l.item_id = :item_id AND l.returned_at IS NULL")
        self.open_loans_of = q(f"SELECT {_LOAN_COLUMNS} FROM loans l WHERE l.patron_barcode = :patron "
                               "AND l.returned_at IS NULL")
        self.holds_for_item = q(f"SELECT {_HOLD_COLUMNS} FROM holds h WHERE h.ended_at IS NULL "
                                "AND h.item_id = :item_id")
        self.holds_for_item_or_record = q(
            f"SELECT {_HOLD_COLUMNS} FROM holds h WHERE h.ended_at IS NULL "
            "AND (h.item_id = :item_id OR (h.item_id IS NULL AND h.record_id = :record_id))")
        self.holds_of = q(f"SELECT {_HOLD_COLUMNS} FROM holds h WHERE h.ended_at IS NULL AND h.patron_barcode = :patron")
        self.fines_of = q("SELECT id, patron_barcode, outstanding, kind, item_id, created_at, description "
                          "FROM fines WHERE patron_barcode = :patron ORDER BY created_at, id")
        self.recall = q("SELECT operation, fingerprint, result_json FROM circulation_results WHERE key = :key")
        self.prune_results = q("DELETE FROM circulation_results WHERE created_at < :before")
        self.add_loan = q(
            "INSERT INTO loans (item_id, patron_barcode, checked_out_at, due_at, returned_at, patron_category, "
            "item_type, renewals, branch) VALUES (:item_id, :patron, :checked_out_at, :due_at, NULL, :category, "
            ":item_type, :renewals, :branch)")
        self.replace_loan = q("UPDATE loans SET due_at = :due_at, renewals = :renewals "
                              "WHERE item_id = :item_id AND returned_at IS NULL")
        self.close_loan = q("UPDATE loans SET returned_at = :returned_at WHERE item_id = :item_id "
                            "AND returned_at IS NULL")
        self.set_status = q("UPDATE items SET status = :status WHERE item_id = :item_id")
        self.update_hold = q(
            "UPDATE holds SET patron_barcode = :patron, record_id = :record_id, item_id = :item_id, "
            "status = :status, pickup_branch = :pickup_branch, placed_at = :placed_at, "
            "pickup_expires_at = :pickup_expires_at WHERE id = :id AND ended_at IS NULL")
        self.insert_hold = q(
            "INSERT INTO holds (id, patron_barcode, record_id, item_id, status, pickup_branch, placed_at, "
            "pickup_expires_at, ended_at, end_reason) VALUES (:id, :patron, :record_id, :item_id, :status, "
            ":pickup_branch, :placed_at, :pickup_expires_at, NULL, NULL)")
        self.end_hold = q("UPDATE holds SET ended_at = :at, end_reason = :how WHERE id = :id AND ended_at IS NULL")
        self.add_fine = q(
            "INSERT INTO fines (id, patron_barcode, kind, amount, outstanding, item_id, created_at, description) "
            "VALUES (:id, :patron, :kind, :amount, :amount, :item_id, :created_at, :description)")
        self.update_fine = q("UPDATE fines SET outstanding = :outstanding WHERE id = :id")
        self.add_payment = q("INSERT INTO payments (id, patron_barcode, amount, paid_at, reference) "
                             "VALUES (:id, :patron, :amount, :paid_at, :reference)")
        self.remember = q("INSERT INTO circulation_results (key, operation, fingerprint, result_json, created_at) "
                          "VALUES (:key, :operation, :fingerprint, :result_json, :created_at)")
        self.policy = q("SELECT currency, hold_pickup_days FROM circulation_policy WHERE id = 1")
        self.rules = q(f"SELECT {', '.join(_RULE_FIELDS)} FROM circulation_rules ORDER BY id")
        self.delete_rules = q("DELETE FROM circulation_rules")
        self.insert_rule = q(f"INSERT INTO circulation_rules ({', '.join(_RULE_FIELDS)}) "
                             f"VALUES ({', '.join(':' + name for name in _RULE_FIELDS)})")
        self.update_policy = q("UPDATE circulation_policy SET currency = :currency, "
                               "hold_pickup_days = :hold_pickup_days WHERE id = 1")
        self.insert_policy = q("INSERT INTO circulation_policy (id, currency, hold_pickup_days) "
                               "VALUES (1, :currency, :hold_pickup_days)")
        item_fields = ("title", "author", "record_id", "item_type", "parts", "home_branch", "location",
                       "in_library_only", "status", "updated_at")
        self.update_item = q(f"UPDATE items SET {', '.join(f'{name} = :{name}' for name in item_fields)} "
                             "WHERE item_id = :item_id")
        self.insert_item = q(
            f"INSERT INTO items (item_id, publisher, call_number, holding_branch, {', '.join(item_fields)}) "
            f"VALUES (:item_id, '', '', '', {', '.join(':' + name for name in item_fields)})")
        self.delete_tags = q("DELETE FROM tags WHERE item_id = :item_id")
        self.insert_tag = q("INSERT INTO tags (uid, item_id, part) VALUES (:uid, :item_id, :part)")
        self.patron_row = q("SELECT id FROM patrons WHERE barcode = :barcode")
        patron_fields = ("name", "category", "expires_on", "blocked", "block_reason", "home_branch")
        self.update_patron = q(f"UPDATE patrons SET {', '.join(f'{name} = :{name}' for name in patron_fields)} "
                               "WHERE id = :id")
        self.update_pin = q("UPDATE patrons SET pin_hash = :pin_hash WHERE id = :id")
        self.insert_patron = q(
            f"INSERT INTO patrons (barcode, pin_hash, {', '.join(patron_fields)}) "
            f"VALUES (:barcode, :pin_hash, {', '.join(':' + name for name in patron_fields)}) RETURNING id")
        self.cards_of = q("SELECT card_id FROM patron_cards WHERE patron_id = :id")
        self.insert_card = q("INSERT INTO patron_cards (card_id, patron_id, kind) VALUES (:card_id, :id, 'barcode')")
        self.delete_card = q("DELETE FROM patron_cards WHERE patron_id = :id AND card_id = :card_id")


@functools.lru_cache(maxsize=8192)
def _local_instant(text: str, zone: tzinfo | None) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc).astimezone(zone)


class _Values:
    """Column values across the driver, stored exactly as the models' column types store them."""

    def __init__(self, sqlite: bool, zone: tzinfo | None) -> None:
        self.sqlite = sqlite
        self.zone = zone

    def when(self, value: datetime | None) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; pass a timezone-aware value")
        utc = value.astimezone(timezone.utc)
        # The same text as SQLAlchemy's SQLite DATETIME ("%Y-%m-%d %H:%M:%S.%f"), made faster.
        return utc.replace(tzinfo=None).isoformat(" ", "microseconds") if self.sqlite else utc

    def read_when(self, raw: Any) -> datetime | None:
        """A stored instant in the store's zone (the library's local time)."""
        if raw is None:
            return None
        if isinstance(raw, str):  # SQLite: the same loans are read again and again while a patron borrows
            return _local_instant(raw, self.zone)
        value = raw if raw.tzinfo is not None else raw.replace(tzinfo=timezone.utc)
        return value.astimezone(self.zone)

    def day(self, value: date | None) -> Any:
        return value.isoformat() if self.sqlite and value is not None else value

    def read_day(self, raw: Any) -> date | None:
        return date.fromisoformat(raw) if isinstance(raw, str) else raw

    def money(self, value: Decimal | None) -> Any:
        """As :class:`backend.db.types.Money` stores it: cents, as text on SQLite."""
        if value is None:
            return None
        amount = Decimal(value).quantize(CENT)
        return str(amount) if self.sqlite else amount

    @staticmethod
    def read_money(raw: Any) -> Decimal | None:
        return None if raw is None else Decimal(str(raw)).quantize(CENT)


class SqlCirculationStore:
    """:class:`~backend.circulation.store.CirculationStore` over the backend database (the engine's pool)."""

    def __init__(self, engine: Engine, *, zone: tzinfo | None = None, rules_ttl_s: float = DEFAULT_RULES_TTL_S,
                 keep_connections: int = 4, max_group: int = DEFAULT_MAX_GROUP) -> None:
        self.engine = engine
        self.zone = zone
        # Connections stay checked out of the engine's pool between transactions: checking out and resetting
        # costs more than a whole SQLite commit. ``close()`` hands them back.
        self._idle: list[Any] = []
        self._idle_lock = threading.Lock()
        self._keep = keep_connections
        self.sqlite = engine.dialect.name == "sqlite"
        self.sql = _Sql(postgres=engine.dialect.name == "postgresql")
        self.values = _Values(self.sqlite, zone)
        self.driver_error: type[BaseException] = engine.dialect.loaded_dbapi.Error
        self._rules_ttl_s = rules_ttl_s
        self._rules_lock = threading.Lock()
        self._rules: tuple[float, RuleSet] | None = None
        self.loan_facts: dict[tuple[Any, ...], LoanFacts] = {}
        # SQLite: one writer connection; transactions that queue up for it share a durable commit.
        self.group_commit = GroupCommitter(
            self._durable_connection, self._release_durable, driver_error=self.driver_error,
            max_group=max_group, on_failure=self.invalidate_rules) if self.sqlite else None

    # ------------------------------------------------------------------ transactions

    def run(self, operation: Callable[["SqlStoreSession"], T]) -> T:
        """``operation(session)`` in one transaction; its result once committed (on SQLite: in a group)."""
        if self.group_commit is None:
            with self._pooled_session() as session:
                return operation(session)
        try:
            return self.group_commit.run(lambda cursor: operation(SqlStoreSession(cursor, self)))
        except self.driver_error as exc:
            raise self.failed(exc) from exc

    def session(self) -> AbstractContextManager["SqlStoreSession"]:
        """A transaction as a ``with`` block (setup, imports); on SQLite it runs alone, in queue order."""
        if self.group_commit is not None:
            return _GroupedSession(self, self.group_commit)
        return self._pooled_session()

    @contextmanager
    def _pooled_session(self) -> Iterator["SqlStoreSession"]:
        connection = self._take()
        healthy = False
        try:
            cursor = connection.cursor()
            session = SqlStoreSession(cursor, self)
            try:
                yield session
            except BaseException:
                connection.rollback()
                healthy = True
                raise
            connection.commit()
            healthy = True
        except self.driver_error as exc:
            raise self.failed(exc) from exc
        finally:
            self._give_back(connection, healthy)

    @staticmethod
    def failed(exc: BaseException) -> StoreError:
        log.warning("circulation transaction rolled back: %s", exc)
        return StoreError(f"the circulation database could not complete the transaction: {exc}")

    def _take(self) -> Any:
        with self._idle_lock:
            if self._idle:
                return self._idle.pop()
        return self.engine.raw_connection()

    def _give_back(self, connection: Any, healthy: bool) -> None:
        if not healthy:
            try:
                connection.rollback()
            except self.driver_error:
                connection.invalidate()  # broken: the engine's pool replaces it
            connection.close()
            return
        with self._idle_lock:
            if len(self._idle) < self._keep:
                self._idle.append(connection)
                return
        connection.close()

    def _durable_connection(self) -> Any:
        """The SQLite writer: every commit waits until the log is on disk (a kiosk's ✓ survives power loss)."""
        connection = self.engine.raw_connection()
        cursor = connection.cursor()
        cursor.execute("PRAGMA synchronous")
        connection.info["openshelf_synchronous"] = cursor.fetchone()[0]
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.close()
        return connection

    def _release_durable(self, connection: Any) -> None:
        """Back to the engine's pool with the engine's own durability setting."""
        try:
            cursor = connection.cursor()
            cursor.execute(f"PRAGMA synchronous={int(connection.info.get('openshelf_synchronous', 1))}")
            cursor.close()
        except self.driver_error:
            connection.invalidate()
        connection.close()

    # ------------------------------------------------------------------ rules (read on every checkout: cached)

    def cached_rules(self, load: Callable[[], RuleSet]) -> RuleSet:
        now = time.monotonic()
        with self._rules_lock:
            cached = self._rules
        if cached is not None and now - cached[0] < self._rules_ttl_s:
            return cached[1]
        rules = load()
        with self._rules_lock:
            self._rules = (now, rules)
        return rules

    def invalidate_rules(self) -> None:
        """Forget the cached rules (after they were edited)."""
        with self._rules_lock:
            self._rules = None

    def rules(self) -> RuleSet:
        with self.session() as session:
            return session.read_rules()

    def save_rules(self, rules: RuleSet) -> None:
        """Replace the whole rules table (already validated as a RuleSet) in one transaction."""
        with self.session() as session:
            session.write_rules(rules)
        self.invalidate_rules()

    def ensure_default_rules(self) -> bool:
        """Write DEFAULT_RULES into a database whose rules were never set; True if it did."""
        with self.session() as session:
            if session.has_policy():
                return False
            session.write_rules(RuleSet())
        self.invalidate_rules()
        log.info("wrote the default circulation rules")
        return True

    def prune_results(self, before: datetime) -> int:
        """Forget the answers remembered before ``before`` (keep them longer than any replay can be late)."""
        with self.session() as session:
            return session.prune_results(before)

    # ------------------------------------------------------------------ setup helpers (each its own transaction)

    def put_patron(self, patron: PatronFacts, pin_hash: str | None = None) -> None:
        with self.session() as session:
            session.save_patron(patron, pin_hash)

    def put_item(self, item: ItemFacts) -> None:
        with self.session() as session:
            session.save_item(item)

    def close(self) -> None:
        """Hand the kept connections back to the engine's pool (the engine belongs to whoever made it)."""
        if self.group_commit is not None:
            self.group_commit.close()
        with self._idle_lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()


class _GroupedSession:
    """A SQLite ``with`` session on the group committer's writer, driver errors as StoreError."""

    __slots__ = ("_store", "_inner")

    def __init__(self, store: SqlCirculationStore, committer: GroupCommitter) -> None:
        self._store = store
        self._inner = committer.transaction()

    def __enter__(self) -> "SqlStoreSession":
        try:
            return SqlStoreSession(self._inner.__enter__(), self._store)
        except self._store.driver_error as exc:
            raise self._store.failed(exc) from exc

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: Any) -> None:
        try:
            self._inner.__exit__(kind, error, trace)
        except self._store.driver_error as exc:
            raise self._store.failed(exc) from exc
        if isinstance(error, self._store.driver_error):
            raise self._store.failed(error) from error


class SqlStoreSession:
    """One transaction; implements ``StoreSession`` plus the catalogue writes ``save_item``/``save_patron``."""

    def __init__(self, cursor: Any, store: SqlCirculationStore) -> None:
        self._cursor = cursor
        self._store = store
        self._sql = store.sql
        self._v = store.values
        self._looked_up_patron: int | None = None
        self._locked_patrons: set[int] = set()
        # Read along with the patron or the item (fewer round trips): open loans per patron and per item,
        # and the items no hold concerns. Writes to loans or holds in this session drop them.
        self._patron_loans: dict[str, list[LoanFacts]] = {}
        self._item_loans: dict[str, LoanFacts | None] = {}
        self._holdless: set[str] = set()

    def _rows(self, sql: str, params: dict[str, Any]) -> list[Sequence[Any]]:
        self._cursor.execute(sql, params)
        return self._cursor.fetchall()

    def _run(self, sql: str, params: dict[str, Any]) -> int:
        self._cursor.execute(sql, params)
        return self._cursor.rowcount

    # ------------------------------------------------------------------ reads

    def rules(self) -> RuleSet:
        return self._store.cached_rules(self.read_rules)

    def read_rules(self) -> RuleSet:
        """The rules table as a RuleSet (uncached); the built-in defaults when it was never written."""
        policy = self._rows(self._sql.policy, {})
        if not policy:
            return RuleSet()
        rules = []
        for row in self._rows(self._sql.rules, {}):
            values = dict(zip(_RULE_FIELDS, row))
            for name in _MONEY_RULE_FIELDS:
                values[name] = self._v.read_money(values[name])
            values["holds_block_renewal"] = bool(values["holds_block_renewal"])
            rules.append(CirculationRule.model_validate(values))
        return RuleSet(rules=tuple(rules), currency=policy[0][0], hold_pickup_days=policy[0][1])

    def has_policy(self) -> bool:
        return bool(self._rows(self._sql.policy, {}))

    def patron_by_card(self, card_id: str) -> PatronFacts | None:
        return self._patron(self._rows(self._sql.patron_by_card, {"card_id": card_id}))

    def patron_by_number(self, patron_id: str) -> PatronFacts | None:
        """The patron whose patron number (``patrons.barcode``) is ``patron_id``."""
        return self._patron(self._rows(self._sql.patron_by_number, {"barcode": patron_id}))

    def _patron(self, rows: list[Sequence[Any]]) -> PatronFacts | None:
        if not rows:
            return None
        number, barcode, name, category, expires_on, blocked, block_reason, home_branch, fine_rows = rows[0][:9]
        self._looked_up_patron = number
        cards = tuple(card for _, card in sorted({(row[10], row[9]) for row in rows if row[9] is not None}))
        cards = cards or (barcode,)
        loans = {row[11]: row[11:] for row in rows if row[11] is not None}
        self._patron_loans[barcode] = [self._loan(loans[item_id]) for item_id in sorted(loans)]
        owed = sum((fine.amount for fine in self.fines_of(barcode)), Decimal(0)) if fine_rows else Decimal(0)
        return PatronFacts(patron_id=barcode, card_ids=cards, name=name, category=category,
                           expires_on=self._v.read_day(expires_on), blocked=bool(blocked),
                           block_reason=block_reason, fines_owed=owed, home_branch=home_branch)

    def pin_hash(self, patron_id: str) -> str | None:
        rows = self._rows(self._sql.pin_hash, {"barcode": patron_id})
        return rows[0][0] if rows else None

    def item(self, item_id: str, *, for_update: bool = False) -> ItemFacts | None:
        patron = self._looked_up_patron
        if for_update and patron is not None and patron not in self._locked_patrons and not self._store.sqlite:
            # Patron before item, always: the patron's loans must not change under this transaction, and
            # the loans read before the lock are read again.
            self._rows(self._sql.lock_patron, {"id": patron})
            self._locked_patrons.add(patron)
            self._patron_loans.clear()
        rows = self._rows(self._sql.item_for_update if for_update else self._sql.item, {"item_id": item_id})
        if not rows:
            return None
        if len(rows) > 1:
            rows.sort(key=lambda row: (row[12] or 0, row[11] or ""))
        first = rows[0]
        self._item_loans[item_id] = self._loan(first[13:]) if first[13] is not None else None
        if first[10] == 0:
            self._holdless.add(item_id)
        return ItemFacts(
            item_id=first[0], record_id=first[1], title=first[2], author=first[3], item_type=first[4],
            parts=first[5], home_branch=first[6], location=first[7], in_library_only=bool(first[8]),
            status=ItemStatus(first[9]), tag_uids=tuple(dict.fromkeys(row[11] for row in rows if row[11])),
        )

    def open_loan(self, item_id: str) -> LoanFacts | None:
        if item_id in self._item_loans:
            return self._item_loans[item_id]
        rows = self._rows(self._sql.open_loan, {"item_id": item_id})
        return self._loan(rows[0]) if rows else None

    def open_loans_of(self, patron_id: str) -> list[LoanFacts]:
        known = self._patron_loans.get(patron_id)
        if known is not None:
            return list(known)
        rows = self._rows(self._sql.open_loans_of, {"patron": patron_id})
        return [self._loan(row) for row in sorted(rows, key=lambda row: row[0])]

    def _loans_changed(self, item_id: str) -> None:
        self._item_loans.pop(item_id, None)
        self._patron_loans.clear()

    def _loan(self, row: Sequence[Any]) -> LoanFacts:
        # Facts are immutable: the same row gives the same facts, and a patron's loans are read on every
        # checkout of their session, so they are made once (per store, bounded).
        key = tuple(row)
        cache = self._store.loan_facts
        facts = cache.get(key)
        if facts is None:
            item_id, patron, category, item_type, checked_out_at, due_at, renewals, branch = row
            facts = LoanFacts(item_id=item_id, patron_id=patron, patron_category=category, item_type=item_type,
                              checked_out_at=self._v.read_when(checked_out_at), due_at=self._v.read_when(due_at),
                              renewals=renewals, branch=branch)
            if len(cache) >= _LOAN_FACTS_KEPT:
                cache.clear()
            cache[key] = facts
        return facts

    def holds_for_item(self, item: ItemFacts) -> list[HoldFacts]:
        if item.item_id in self._holdless:
            return []
        if item.record_id is None:
            rows = self._rows(self._sql.holds_for_item, {"item_id": item.item_id})
        else:
            rows = self._rows(self._sql.holds_for_item_or_record,
                              {"item_id": item.item_id, "record_id": item.record_id})
        return [self._hold(row) for row in rows]

    def holds_of(self, patron_id: str) -> list[HoldFacts]:
        return [self._hold(row) for row in self._rows(self._sql.holds_of, {"patron": patron_id})]

    def _hold(self, row: Sequence[Any]) -> HoldFacts:
        hold_id, patron, record_id, item_id, status, pickup_branch, placed_at, expires_at = row
        return HoldFacts(hold_id=hold_id, patron_id=patron, record_id=record_id, item_id=item_id,
                         status=HoldStatus(status), pickup_branch=pickup_branch,
                         placed_at=self._v.read_when(placed_at), pickup_expires_at=self._v.read_when(expires_at))

    def fines_of(self, patron_id: str) -> list[FineFacts]:
        fines = []
        for fine_id, patron, outstanding, kind, item_id, created_at, description in self._rows(
                self._sql.fines_of, {"patron": patron_id}):
            amount = self._v.read_money(outstanding)
            if amount is not None and amount > 0:
                fines.append(FineFacts(fine_id=fine_id, patron_id=patron, amount=amount, kind=kind, item_id=item_id,
                                       created_at=self._v.read_when(created_at), description=description))
        return fines

    def recall(self, idempotency_key: str) -> StoredResult | None:
        rows = self._rows(self._sql.recall, {"key": idempotency_key})
        if not rows:
            return None
        operation, fingerprint, result_json = rows[0]
        return StoredResult(operation=operation, fingerprint=fingerprint, result_json=result_json)

    # ------------------------------------------------------------------ writes

    def add_loan(self, loan: LoanFacts) -> None:
        self._loans_changed(loan.item_id)
        self._run(self._sql.add_loan, {
            "item_id": loan.item_id, "patron": loan.patron_id, "checked_out_at": self._v.when(loan.checked_out_at),
            "due_at": self._v.when(loan.due_at), "category": loan.patron_category, "item_type": loan.item_type,
            "renewals": loan.renewals, "branch": loan.branch})

    def replace_loan(self, loan: LoanFacts) -> None:
        self._loans_changed(loan.item_id)
        changed = self._run(self._sql.replace_loan, {"item_id": loan.item_id, "due_at": self._v.when(loan.due_at),
                                                     "renewals": loan.renewals})
        if changed != 1:
            raise ValueError(f"{loan.item_id} has no open loan")

    def close_loan(self, item_id: str, returned_at: datetime) -> None:
        self._loans_changed(item_id)
        if self._run(self._sql.close_loan, {"item_id": item_id, "returned_at": self._v.when(returned_at)}) != 1:
            raise ValueError(f"{item_id} has no open loan")

    def set_item_status(self, item_id: str, status: ItemStatus) -> None:
        self._run(self._sql.set_status, {"item_id": item_id, "status": status.value})

    def save_hold(self, hold: HoldFacts) -> None:
        values = {"id": hold.hold_id, "patron": hold.patron_id, "record_id": hold.record_id,
                  "item_id": hold.item_id, "status": hold.status.value, "pickup_branch": hold.pickup_branch,
                  "placed_at": self._v.when(hold.placed_at), "pickup_expires_at": self._v.when(hold.pickup_expires_at)}
        self._holdless.clear()
        if self._run(self._sql.update_hold, values) == 0:
            self._run(self._sql.insert_hold, values)

    def end_hold(self, hold_id: str, how: HoldEnd, at: datetime) -> None:
        self._run(self._sql.end_hold, {"id": hold_id, "how": how, "at": self._v.when(at)})

    def add_fine(self, fine: FineFacts) -> None:
        self._run(self._sql.add_fine, {
            "id": fine.fine_id, "patron": fine.patron_id, "kind": fine.kind, "amount": self._v.money(fine.amount),
            "item_id": fine.item_id, "created_at": self._v.when(fine.created_at),
            "description": fine.description[:500]})

    def update_fine(self, fine: FineFacts) -> None:
        self._run(self._sql.update_fine, {"id": fine.fine_id, "outstanding": self._v.money(fine.amount)})

    def add_payment(self, patron_id: str, amount: Decimal, at: datetime, reference: str) -> str:
        transaction_id = uuid.uuid4().hex
        self._run(self._sql.add_payment, {"id": transaction_id, "patron": patron_id, "amount": self._v.money(amount),
                                          "paid_at": self._v.when(at), "reference": reference[:200]})
        return transaction_id

    def remember(self, idempotency_key: str, result: StoredResult) -> None:
        self._run(self._sql.remember, {
            "key": idempotency_key, "operation": result.operation, "fingerprint": result.fingerprint,
            "result_json": result.result_json, "created_at": self._v.when(datetime.now(timezone.utc))})

    def prune_results(self, before: datetime) -> int:
        return self._run(self._sql.prune_results, {"before": self._v.when(before)})

    def write_rules(self, rules: RuleSet) -> None:
        self._run(self._sql.delete_rules, {})
        for rule in rules.rules:
            values = rule.model_dump(include=set(_RULE_FIELDS))
            for name in _MONEY_RULE_FIELDS:
                values[name] = self._v.money(values[name])
            self._run(self._sql.insert_rule, values)
        policy = {"currency": rules.currency, "hold_pickup_days": rules.hold_pickup_days}
        if self._run(self._sql.update_policy, policy) == 0:
            self._run(self._sql.insert_policy, policy)

    # ------------------------------------------------------------------ catalogue writes

    def save_item(self, item: ItemFacts) -> None:
        """Create or replace an item's circulation facts; ``tag_uids`` replace its tags (one per part, in order)."""
        values = {"item_id": item.item_id, "title": item.title, "author": item.author, "record_id": item.record_id,
                  "item_type": item.item_type, "parts": item.parts, "home_branch": item.home_branch,
                  "location": item.location, "in_library_only": item.in_library_only, "status": item.status.value,
                  "updated_at": self._v.when(datetime.now(timezone.utc))}
        if self._run(self._sql.update_item, values) == 0:
            self._run(self._sql.insert_item, values)
        self._run(self._sql.delete_tags, {"item_id": item.item_id})
        for part, uid in enumerate(item.tag_uids, start=1):
            self._run(self._sql.insert_tag, {"uid": uid, "item_id": item.item_id, "part": part})

    def save_patron(self, patron: PatronFacts, pin_hash: str | None) -> None:
        """Create or replace a patron (named by ``patron_id``) and their cards; ``pin_hash`` None keeps the PIN."""
        values = {"name": patron.name, "category": patron.category, "expires_on": self._v.day(patron.expires_on),
                  "blocked": patron.blocked, "block_reason": patron.block_reason, "home_branch": patron.home_branch}
        rows = self._rows(self._sql.patron_row, {"barcode": patron.patron_id})
        if rows:
            number = rows[0][0]
            self._run(self._sql.update_patron, {"id": number, **values})
            if pin_hash is not None:
                self._run(self._sql.update_pin, {"id": number, "pin_hash": pin_hash})
        else:
            number = self._rows(self._sql.insert_patron, {"barcode": patron.patron_id, "pin_hash": pin_hash,
                                                          **values})[0][0]
        known = {row[0] for row in self._rows(self._sql.cards_of, {"id": number})}
        for card in patron.card_ids:
            if card not in known:
                self._run(self._sql.insert_card, {"card_id": card, "id": number})
        for card in known - set(patron.card_ids):
            self._run(self._sql.delete_card, {"card_id": card, "id": number})


# --------------------------------------------------------------------------- the circulation over it


class SqlCirculation(StoreCirculation):
    """The standalone circulation over a :class:`SqlCirculationStore`, with setup helpers (tests, demo, bench)."""

    def __init__(self, store: SqlCirculationStore, *, branch: str = "", institution_id: str = "",
                 library_name: str = "", clock: Callable[[], datetime] | None = None,
                 pin_hasher: PinHasher | None = None) -> None:
        self.store = store
        super().__init__(store, branch=branch, institution_id=institution_id, library_name=library_name,
                         clock=clock, pin_hasher=pin_hasher)

    def add_patron(self, patron: PatronFacts, *, pin: str | None = None) -> PatronFacts:
        self.store.put_patron(patron, self.pin_hasher.hash(pin) if pin is not None else None)
        return patron

    def add_item(self, item: ItemFacts) -> ItemFacts:
        self.store.put_item(item)
        return item

    def add_fine(self, fine: FineFacts) -> FineFacts:
        with self.store.session() as session:
            session.add_fine(fine)
        return fine

    def place_hold(self, patron_id: str, *, record_id: str | None = None, item_id: str | None = None,
                   pickup_branch: str = "", placed_at: datetime | None = None,
                   status: HoldStatus = HoldStatus.PENDING) -> HoldFacts:
        hold = HoldFacts(hold_id=uuid.uuid4().hex, patron_id=patron_id, record_id=record_id, item_id=item_id,
                         status=status, pickup_branch=pickup_branch, placed_at=placed_at or self.clock())
        with self.store.session() as session:
            session.save_hold(hold)
        return hold

    def set_rules(self, rules: RuleSet) -> None:
        self.store.save_rules(rules)
