"""What the gate needs to know about every tag, in memory, so a gate read never waits on the database.

Loaded once at start; every checkout and return the backend performs updates it
right after its transaction commits (see backend.gate_sync), and catalogue
changes (staff edits, imports) update items and tags. Readers (the MQTT thread)
and writers (request threads) share one lock held only for a dictionary operation.

An optional lookup hook hears the item id of every resolved lookup; it must not
block (SIP2 mode uses it to refresh loan states in the background).
"""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Callable, Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.db.models import Item, ItemStatus, Loan, Tag
from backend.gate_decision import ItemFacts


class GateView:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[str, ItemFacts] = {}
        self._item_of_uid: dict[str, str] = {}
        self._uids_of: dict[str, set[str]] = {}
        self._hook: Callable[[str], None] | None = None

    def set_lookup_hook(self, hook: Callable[[str], None] | None) -> None:
        """Call ``hook(item_id)`` after each lookup that names an item (known or not); it must return at once."""
        self._hook = hook

    def lookup(self, uid: str, item_id: str | None = None) -> ItemFacts | None:
        """The item a tag belongs to: by its registered UID, else by the item id it carries."""
        with self._lock:
            registered = self._item_of_uid.get(uid)
            key = registered if registered is not None else item_id
            facts = self._items.get(key) if key is not None else None
        hook = self._hook
        if hook is not None and key is not None:
            hook(key)
        return facts

    def get(self, item_id: str) -> ItemFacts | None:
        with self._lock:
            return self._items.get(item_id)

    def load(self, session: Session) -> int:
        """Replace the whole view from the database; returns the number of items."""
        on_loan = set(session.scalars(select(Loan.item_id).where(Loan.returned_at.is_(None))))
        # In SIP2 mode loans live in the library system; the item status is what OpenShelf last heard.
        items = {
            item_id: ItemFacts(item_id, title, item_id in on_loan or status == ItemStatus.ON_LOAN.value,
                               bool(in_library_only))
            for item_id, title, in_library_only, status in session.execute(
                select(Item.item_id, Item.title, Item.in_library_only, Item.status))
        }
        uids = {uid: item_id for uid, item_id in session.execute(select(Tag.uid, Tag.item_id))}
        uids_of: dict[str, set[str]] = {}
        for uid, item_id in uids.items():
            uids_of.setdefault(item_id, set()).add(uid)
        with self._lock:
            self._items = items
            self._item_of_uid = uids
            self._uids_of = uids_of
        return len(items)

    def put_item(self, facts: ItemFacts, uids: Iterable[str]) -> None:
        """Add or update an item; ``uids`` are added to the tags already known for it."""
        with self._lock:
            self._items[facts.item_id] = facts
            self._add_tags(facts.item_id, uids)

    def replace_item(self, facts: ItemFacts, uids: Iterable[str]) -> None:
        """Add or update an item whose tags are exactly ``uids`` (tags it no longer has are forgotten)."""
        with self._lock:
            self._forget_tags(facts.item_id)
            self._items[facts.item_id] = facts
            self._add_tags(facts.item_id, uids)

    def remove_item(self, item_id: str) -> None:
        with self._lock:
            self._forget_tags(item_id)
            self._items.pop(item_id, None)

    def _add_tags(self, item_id: str, uids: Iterable[str]) -> None:
        for uid in uids:
            previous = self._item_of_uid.get(uid)
            if previous is not None and previous != item_id:
                self._uids_of.get(previous, set()).discard(uid)
            self._item_of_uid[uid] = item_id
            self._uids_of.setdefault(item_id, set()).add(uid)

    def _forget_tags(self, item_id: str) -> None:
        for uid in self._uids_of.pop(item_id, set()):
            if self._item_of_uid.get(uid) == item_id:
                del self._item_of_uid[uid]

    def set_on_loan(self, item_id: str, on_loan: bool) -> bool:
        """Record a loan state; False when the item is not in the view."""
        with self._lock:
            facts = self._items.get(item_id)
            if facts is None:
                return False
            if facts.on_loan != on_loan:
                self._items[item_id] = replace(facts, on_loan=on_loan)
            return True

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)
