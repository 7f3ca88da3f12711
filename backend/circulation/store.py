"""What the standalone circulation needs from its storage: one transaction at a time.

:class:`~backend.circulation.service.StoreCirculation` holds all circulation
logic; a store only reads facts and writes changes.  The in-memory store
(:mod:`backend.circulation.memory`) serves tests and the SIP2 test double; the
database store (backend/db) implements the same two protocols with SQLAlchemy.

Contract for implementers:

* ``CirculationStore.run(operation)`` runs ``operation(session)`` in one transaction
  and returns its result after the commit; ``session()`` is the same as a context
  manager.  Commit when the operation (block) ends normally, roll back when it
  raises: nothing it wrote may be visible then (no partial transaction).
* Two sessions that touch the same item must not both commit a loan of it: lock
  the item row when ``item(..., for_update=True)`` is called (``SELECT … FOR
  UPDATE`` on PostgreSQL; SQLite serialises writers anyway), and keep the unique
  index on open loans as the last line of defence.
* ``remember``/``recall`` store a result under its idempotency key inside the
  same transaction as the change it describes.
* Facts returned are snapshots; changing the store never changes them.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from datetime import datetime
from decimal import Decimal
from typing import Callable, Literal, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict

from backend.circulation.model import FineFacts, HoldFacts, ItemFacts, ItemStatus, LoanFacts, PatronFacts, RuleSet

HoldEnd = Literal["filled", "cancelled", "expired"]
T = TypeVar("T")


class StoredResult(BaseModel):
    """A remembered answer: which operation, on what arguments, and the result as JSON."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    operation: str
    fingerprint: str
    result_json: str


class StoreSession(Protocol):
    # ---- reads
    def rules(self) -> RuleSet: ...
    def patron_by_card(self, card_id: str) -> PatronFacts | None: ...
    def pin_hash(self, patron_id: str) -> str | None: ...
    def item(self, item_id: str, *, for_update: bool = False) -> ItemFacts | None: ...
    def open_loan(self, item_id: str) -> LoanFacts | None: ...
    def open_loans_of(self, patron_id: str) -> list[LoanFacts]: ...
    def holds_for_item(self, item: ItemFacts) -> list[HoldFacts]:
        """Active (pending or ready) holds this item could fill: item-level on it, or on its record."""
        ...
    def holds_of(self, patron_id: str) -> list[HoldFacts]: ...
    def fines_of(self, patron_id: str) -> list[FineFacts]:
        """Fines with an outstanding amount above zero."""
        ...
    def recall(self, idempotency_key: str) -> StoredResult | None: ...

    # ---- writes
    def add_loan(self, loan: LoanFacts) -> None: ...
    def replace_loan(self, loan: LoanFacts) -> None:
        """Update the open loan of ``loan.item_id`` (renewal: due date and count)."""
        ...
    def close_loan(self, item_id: str, returned_at: datetime) -> None: ...
    def set_item_status(self, item_id: str, status: ItemStatus) -> None: ...
    def save_hold(self, hold: HoldFacts) -> None: ...
    def end_hold(self, hold_id: str, how: HoldEnd, at: datetime) -> None: ...
    def add_fine(self, fine: FineFacts) -> None: ...
    def update_fine(self, fine: FineFacts) -> None: ...
    def add_payment(self, patron_id: str, amount: Decimal, at: datetime, reference: str) -> str:
        """Record a payment; returns its transaction id."""
        ...
    def remember(self, idempotency_key: str, result: StoredResult) -> None: ...


class CirculationStore(Protocol):
    def run(self, operation: Callable[[StoreSession], T]) -> T:
        """``operation(session)`` in one transaction; returns its result once the transaction is committed.

        The circulation's own operations use this: a store may run operations queued by
        several threads in one transaction with one commit (each atomic on its own).
        """
        ...

    def session(self) -> AbstractContextManager[StoreSession]:
        """One transaction as a ``with`` block (setup, imports)."""
        ...
