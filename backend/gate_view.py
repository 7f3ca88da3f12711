"""What the gate needs to know about every tag, in memory, so a gate read never waits on the database.

Loaded once at start; every checkout and return the backend performs updates it
right after its transaction commits. Readers (the MQTT thread) and writers
(request threads) share one lock held only for a dictionary operation.
"""

from __future__ import annotations

import threading
from dataclasses import replace

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.db.models import Item, Loan, Tag
from backend.gate_decision import ItemFacts


class GateView:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[str, ItemFacts] = {}
        self._item_of_uid: dict[str, str] = {}

    def lookup(self, uid: str, item_id: str | None = None) -> ItemFacts | None:
        """The item a tag belongs to: by its registered UID, else by the item id it carries."""
        with self._lock:
            registered = self._item_of_uid.get(uid)
            key = registered if registered is not None else item_id
            return self._items.get(key) if key is not None else None

    def load(self, session: Session) -> int:
        """Replace the whole view from the database; returns the number of items."""
        on_loan = set(session.scalars(select(Loan.item_id).where(Loan.returned_at.is_(None))))
        items = {
            item.item_id: ItemFacts(item.item_id, item.title, item.item_id in on_loan, item.in_library_only)
            for item in session.scalars(select(Item))
        }
        uids = {uid: item_id for uid, item_id in session.execute(select(Tag.uid, Tag.item_id))}
        with self._lock:
            self._items = items
            self._item_of_uid = uids
        return len(items)

    def put_item(self, facts: ItemFacts, uids: list[str]) -> None:
        with self._lock:
            self._items[facts.item_id] = facts
            for uid in uids:
                self._item_of_uid[uid] = facts.item_id

    def set_on_loan(self, item_id: str, on_loan: bool) -> None:
        with self._lock:
            facts = self._items.get(item_id)
            if facts is not None:
                self._items[item_id] = replace(facts, on_loan=on_loan)

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)
