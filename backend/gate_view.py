"""What the gate needs to know about every tag, in memory, so a gate read never waits on the database.

Loaded once at start; every checkout and return the backend performs updates it
right after its transaction commits (see backend.gate_sync), and catalogue
changes (staff edits, imports) update items and tags. Readers and writers
(request threads) share one lock held only for a dictionary operation.

The gate path itself runs in a process of its own (backend.gate_process) with a
replica of this view: the backend's view is the master, and every change made to
it is handed, in order and under the view's lock, to a :class:`ViewReplica` that
forwards it (:meth:`GateView.replicate_to`); the replica applies it with
:meth:`GateView.apply`. A writer returns only once the replica holds its change
(or a short timeout passed), so a checkout that has returned is what the next
gate read sees.

An optional lookup hook hears the item id of every resolved lookup; it must not
block (SIP2 mode uses it to refresh loan states in the background). With a
replica, the lookups happen there and come back through :meth:`report_lookup`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Callable, Iterable, Protocol, Union

from backend.gate_decision import ItemFacts

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


# ------------------------------------------------------------------ changes, as sent to a replica


@dataclass(frozen=True, slots=True)
class ViewLoaded:
    """The whole view (a fresh replica starts from this)."""

    items: dict[str, ItemFacts]
    item_of_uid: dict[str, str]


@dataclass(frozen=True, slots=True)
class ItemsPut:
    """Items added or updated; with ``exact_tags`` their tags are exactly the ones given."""

    entries: tuple[tuple[ItemFacts, tuple[str, ...]], ...]
    exact_tags: bool


@dataclass(frozen=True, slots=True)
class ItemRemoved:
    item_id: str


@dataclass(frozen=True, slots=True)
class LoanMarked:
    item_id: str
    on_loan: bool


@dataclass(frozen=True, slots=True)
class LookupsWanted:
    """Whether the master has a lookup hook, i.e. wants to hear the item ids the replica looks up."""

    wanted: bool


ViewChange = Union[ViewLoaded, ItemsPut, ItemRemoved, LoanMarked, LookupsWanted]


class ViewReplica(Protocol):
    """Where the master's changes go. ``send`` runs under the view's lock: it must only queue."""

    def send(self, change: ViewChange) -> object:
        """Queue ``change``; returns a ticket for :meth:`settle`."""
        ...

    def settle(self, ticket: object) -> None:
        """Return once the replica applied the change behind ``ticket`` (or a short timeout passed)."""
        ...


class GateView:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[str, ItemFacts] = {}
        self._item_of_uid: dict[str, str] = {}
        self._uids_of: dict[str, set[str]] = {}
        self._hook: Callable[[str], None] | None = None
        self._replica: ViewReplica | None = None

    def set_lookup_hook(self, hook: Callable[[str], None] | None) -> None:
        """Call ``hook(item_id)`` after each lookup that names an item (known or not); it must return at once."""
        with self._lock:
            self._hook = hook
            ticket = self._send(LookupsWanted(hook is not None))
        self._settle(ticket)

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

    def report_lookup(self, item_id: str) -> None:
        """A replica looked ``item_id`` up: tell the lookup hook, as a local lookup would."""
        hook = self._hook
        if hook is not None:
            hook(item_id)

    def get(self, item_id: str) -> ItemFacts | None:
        with self._lock:
            return self._items.get(item_id)

    def load(self, session: Session) -> int:
        """Replace the whole view from the database; returns the number of items."""
        # Imported here: the gate process holds a replica and never touches the database.
        from sqlalchemy import select

        from backend.db.models import Item, ItemStatus, Loan, Tag

        on_loan = set(session.scalars(select(Loan.item_id).where(Loan.returned_at.is_(None))))
        # In SIP2 mode loans live in the library system; the item status is what OpenShelf last heard.
        items = {
            item_id: ItemFacts(item_id, title, item_id in on_loan or status == ItemStatus.ON_LOAN.value,
                               bool(in_library_only))
            for item_id, title, in_library_only, status in session.execute(
                select(Item.item_id, Item.title, Item.in_library_only, Item.status))
        }
        uids = {uid: item_id for uid, item_id in session.execute(select(Tag.uid, Tag.item_id))}
        self.apply(ViewLoaded(items, uids))
        return len(items)

    def put_item(self, facts: ItemFacts, uids: Iterable[str]) -> None:
        """Add or update an item; ``uids`` are added to the tags already known for it."""
        self.apply(ItemsPut(((facts, tuple(uids)),), exact_tags=False))

    def replace_item(self, facts: ItemFacts, uids: Iterable[str]) -> None:
        """Add or update an item whose tags are exactly ``uids`` (tags it no longer has are forgotten)."""
        self.replace_items([(facts, uids)])

    def replace_items(self, entries: Iterable[tuple[ItemFacts, Iterable[str]]]) -> None:
        """:meth:`replace_item` for many items at once (one change for a replica to apply)."""
        change = ItemsPut(tuple((facts, tuple(uids)) for facts, uids in entries), exact_tags=True)
        if change.entries:
            self.apply(change)

    def remove_item(self, item_id: str) -> None:
        self.apply(ItemRemoved(item_id))

    def set_on_loan(self, item_id: str, on_loan: bool) -> bool:
        """Record a loan state; False when the item is not in the view."""
        ticket = None
        with self._lock:
            facts = self._items.get(item_id)
            if facts is None:
                return False
            if facts.on_loan != on_loan:
                self._items[item_id] = replace(facts, on_loan=on_loan)
                ticket = self._send(LoanMarked(item_id, on_loan))
        self._settle(ticket)
        return True

    def apply(self, change: ViewChange) -> None:
        """Apply one change (a replica applies what its master sent); passed on to this view's own replica."""
        with self._lock:
            if isinstance(change, ViewLoaded):
                self._load(change)
            elif isinstance(change, ItemsPut):
                for facts, uids in change.entries:
                    if change.exact_tags:
                        self._forget_tags(facts.item_id)
                    self._items[facts.item_id] = facts
                    self._add_tags(facts.item_id, uids)
            elif isinstance(change, ItemRemoved):
                self._forget_tags(change.item_id)
                self._items.pop(change.item_id, None)
            elif isinstance(change, LoanMarked):
                facts = self._items.get(change.item_id)
                if facts is not None and facts.on_loan != change.on_loan:
                    self._items[change.item_id] = replace(facts, on_loan=change.on_loan)
            elif not isinstance(change, LookupsWanted):  # a replica's own concern, nothing to store
                raise TypeError(f"not a gate view change: {type(change).__name__}")
            ticket = self._send(change)  # a ViewLoaded's dicts are not this view's own: safe to pass on
        self._settle(ticket)

    # ------------------------------------------------------------------ replication

    def replicate_to(self, replica: ViewReplica | None) -> None:
        """From now on hand every change to ``replica``, starting with the whole view; None stops.

        The snapshot and the switch happen under the lock, so the replica misses no change
        and sees none twice.
        """
        with self._lock:
            self._replica = replica
            ticket = None
            if replica is not None:
                replica.send(self._snapshot())
                ticket = replica.send(LookupsWanted(self._hook is not None))
        self._settle(ticket, replica)

    def _snapshot(self) -> ViewLoaded:
        # Copies: the replica's sender pickles them on another thread while this view changes.
        return ViewLoaded(dict(self._items), dict(self._item_of_uid))

    def _send(self, change: ViewChange) -> object:
        """Under the lock: queue ``change`` for the replica (if any); returns its ticket."""
        replica = self._replica
        return None if replica is None else replica.send(change)

    def _settle(self, ticket: object, replica: ViewReplica | None = None) -> None:
        replica = replica or self._replica
        if ticket is not None and replica is not None:
            replica.settle(ticket)

    # ------------------------------------------------------------------ under the lock

    def _load(self, loaded: ViewLoaded) -> None:
        uids_of: dict[str, set[str]] = {}
        for uid, item_id in loaded.item_of_uid.items():
            uids_of.setdefault(item_id, set()).add(uid)
        self._items = dict(loaded.items)
        self._item_of_uid = dict(loaded.item_of_uid)
        self._uids_of = uids_of

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

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)
