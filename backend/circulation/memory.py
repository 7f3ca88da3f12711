"""An in-memory store, and :class:`MemoryCirculation`: the standalone circulation over it.

For tests, the SIP2 server's test double and benchmarks.  Sessions are
serialised by one lock; a session that raises is undone from an undo log, so
the all-or-nothing contract of :mod:`backend.circulation.store` holds here too.
"""

from __future__ import annotations

import itertools
import threading
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from typing import Any, Callable, Iterator, TypeVar

from backend.circulation.model import (
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

_MISSING = object()
T = TypeVar("T")


class MemoryStore:
    """Dictionaries behind a lock; implements ``CirculationStore`` and ``StoreSession``."""

    def __init__(self, rules: RuleSet | None = None) -> None:
        self._lock = threading.RLock()
        self._rules = rules or RuleSet()
        self.patrons: dict[str, PatronFacts] = {}
        self.cards: dict[str, str] = {}
        self.pins: dict[str, str] = {}
        self.items: dict[str, ItemFacts] = {}
        self.loans: dict[str, LoanFacts] = {}
        self._loans_by_patron: dict[str, set[str]] = {}
        self.closed_loans: list[tuple[LoanFacts, datetime]] = []
        self.holds: dict[str, HoldFacts] = {}
        self.fines: dict[str, FineFacts] = {}
        self.payments: dict[str, tuple[str, Decimal, datetime, str]] = {}
        self.results: dict[str, StoredResult] = {}
        self._undo: list[Callable[[], None]] | None = None
        self._ids = itertools.count(1)

    # ------------------------------------------------------------------ transactions

    @contextmanager
    def session(self) -> Iterator["MemoryStore"]:
        with self._lock:
            if self._undo is not None:  # nested: join the outer transaction
                yield self
                return
            self._undo = []
            try:
                yield self
            except BaseException:
                for undo in reversed(self._undo):
                    undo()
                raise
            finally:
                self._undo = None

    def run(self, operation: Callable[["MemoryStore"], T]) -> T:
        with self.session() as session:
            return operation(session)

    def _set(self, table: dict[str, Any], key: str, value: Any) -> None:
        old = table.get(key, _MISSING)
        if self._undo is not None:
            self._undo.append(lambda: table.__setitem__(key, old) if old is not _MISSING else table.pop(key, None))
        table[key] = value

    def _delete(self, table: dict[str, Any], key: str) -> None:
        old = table.pop(key)
        if self._undo is not None:
            self._undo.append(lambda: table.__setitem__(key, old))

    def _append(self, values: list[Any], value: Any) -> None:
        values.append(value)
        if self._undo is not None:
            self._undo.append(values.pop)

    def new_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids)}"

    # ------------------------------------------------------------------ setup (outside sessions)

    def set_rules(self, rules: RuleSet) -> None:
        with self._lock:
            self._rules = rules

    def put_patron(self, patron: PatronFacts, pin_hash: str | None = None) -> None:
        with self._lock:
            self.patrons[patron.patron_id] = patron
            for card in patron.card_ids:
                self.cards[card] = patron.patron_id
            if pin_hash is not None:
                self.pins[patron.patron_id] = pin_hash

    def put_item(self, item: ItemFacts) -> None:
        with self._lock:
            self.items[item.item_id] = item

    # ------------------------------------------------------------------ reads

    def rules(self) -> RuleSet:
        return self._rules

    def patron_by_card(self, card_id: str) -> PatronFacts | None:
        patron_id = self.cards.get(card_id)
        if patron_id is None:
            return None
        patron = self.patrons[patron_id]
        owed = sum((fine.amount for fine in self.fines_of(patron_id)), Decimal(0))
        return patron if patron.fines_owed == owed else patron.model_copy(update={"fines_owed": owed})

    def pin_hash(self, patron_id: str) -> str | None:
        return self.pins.get(patron_id)

    def item(self, item_id: str, *, for_update: bool = False) -> ItemFacts | None:
        return self.items.get(item_id)

    def open_loan(self, item_id: str) -> LoanFacts | None:
        return self.loans.get(item_id)

    def open_loans_of(self, patron_id: str) -> list[LoanFacts]:
        return [self.loans[item_id] for item_id in sorted(self._loans_by_patron.get(patron_id, ()))]

    def holds_for_item(self, item: ItemFacts) -> list[HoldFacts]:
        return [hold for hold in self.holds.values() if hold.concerns(item)]

    def holds_of(self, patron_id: str) -> list[HoldFacts]:
        return [hold for hold in self.holds.values() if hold.patron_id == patron_id]

    def fines_of(self, patron_id: str) -> list[FineFacts]:
        return [fine for fine in self.fines.values() if fine.patron_id == patron_id and fine.amount > 0]

    def recall(self, idempotency_key: str) -> StoredResult | None:
        return self.results.get(idempotency_key)

    # ------------------------------------------------------------------ writes

    def add_loan(self, loan: LoanFacts) -> None:
        if loan.item_id in self.loans:
            raise ValueError(f"{loan.item_id} already has an open loan")
        self._set(self.loans, loan.item_id, loan)
        self._index_loan(loan.patron_id, loan.item_id, add=True)

    def _index_loan(self, patron_id: str, item_id: str, *, add: bool) -> None:
        items = self._loans_by_patron.setdefault(patron_id, set())
        (items.add if add else items.discard)(item_id)
        if self._undo is not None:
            self._undo.append(lambda: (items.discard if add else items.add)(item_id))

    def replace_loan(self, loan: LoanFacts) -> None:
        if loan.item_id not in self.loans:
            raise ValueError(f"{loan.item_id} has no open loan")
        self._set(self.loans, loan.item_id, loan)

    def close_loan(self, item_id: str, returned_at: datetime) -> None:
        loan = self.loans[item_id]
        self._delete(self.loans, item_id)
        self._index_loan(loan.patron_id, item_id, add=False)
        self._append(self.closed_loans, (loan, returned_at))

    def set_item_status(self, item_id: str, status: ItemStatus) -> None:
        item = self.items[item_id]
        if item.status is not status:
            self._set(self.items, item_id, item.model_copy(update={"status": status}))

    def save_hold(self, hold: HoldFacts) -> None:
        self._set(self.holds, hold.hold_id, hold)

    def end_hold(self, hold_id: str, how: HoldEnd, at: datetime) -> None:
        self._delete(self.holds, hold_id)

    def add_fine(self, fine: FineFacts) -> None:
        self._set(self.fines, fine.fine_id, fine)

    def update_fine(self, fine: FineFacts) -> None:
        self._set(self.fines, fine.fine_id, fine)

    def add_payment(self, patron_id: str, amount: Decimal, at: datetime, reference: str) -> str:
        transaction_id = self.new_id("pay")
        self._set(self.payments, transaction_id, (patron_id, amount, at, reference))
        return transaction_id

    def remember(self, idempotency_key: str, result: StoredResult) -> None:
        self._set(self.results, idempotency_key, result)


class MemoryCirculation(StoreCirculation):
    """The standalone circulation over a :class:`MemoryStore`, with helpers to set up a library."""

    def __init__(self, rules: RuleSet | None = None, *, branch: str = "", institution_id: str = "",
                 library_name: str = "", clock: Callable[[], datetime] | None = None,
                 pin_hasher: PinHasher | None = None) -> None:
        self.store = MemoryStore(rules)
        super().__init__(self.store, branch=branch, institution_id=institution_id, library_name=library_name,
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
        hold = HoldFacts(hold_id=self.store.new_id("hold"), patron_id=patron_id, record_id=record_id,
                         item_id=item_id, status=status, pickup_branch=pickup_branch,
                         placed_at=placed_at or self.clock())
        with self.store.session() as session:
            session.save_hold(hold)
        return hold

    def set_rules(self, rules: RuleSet) -> None:
        self.store.set_rules(rules)
