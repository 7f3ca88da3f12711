"""A :class:`~backend.catalog_import.sinks.CatalogSink` over a circulation store, so an import fills it.

:class:`StoreCatalogSink` writes :class:`~backend.circulation.model.ItemFacts`
and :class:`~backend.circulation.model.PatronFacts` through a
:class:`CatalogStore`: the circulation store's session protocol
(:class:`~backend.circulation.store.StoreSession` reads) plus two writes,
``save_item`` and ``save_patron``.  The circulation ``StoreSession`` has no such
writes (circulation never creates items or patrons), so
:class:`MemoryStoreCatalog` adds them to a
:class:`~backend.circulation.memory.MemoryStore`, undone if the session raises.

What the circulation facts cannot hold is left out: call number, ISBN,
publisher, year, holding branch, e-mail.  Circulation state — status of an
item on loan, a patron's other cards, blocks and fines — is never touched by an
update.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, contextmanager
from typing import Any, Callable, Iterator, Protocol

from backend.catalog_import.errors import SinkUsageError
from backend.catalog_import.records import ItemRecord, PatronRecord, stated_fields
from backend.catalog_import.sinks import Outcome
from backend.circulation.memory import MemoryStore
from backend.circulation.model import ItemFacts, ItemStatus, PatronFacts

# ItemRecord field → ItemFacts field; fields not listed have no place in the circulation facts.
_ITEM_FACTS = {"barcode": "item_id", "record_id": "record_id", "title": "title", "author": "author",
               "item_type": "item_type", "parts": "parts", "home_branch": "home_branch", "location": "location",
               "in_library_only": "in_library_only", "status": "status", "tag_uids": "tag_uids"}
_PATRON_FACTS = {"name": "name", "category": "category", "expires_on": "expires_on", "home_branch": "home_branch"}


class CatalogStoreSession(Protocol):
    def item(self, item_id: str, *, for_update: bool = False) -> ItemFacts | None: ...
    def patron_by_card(self, card_id: str) -> PatronFacts | None: ...
    def pin_hash(self, patron_id: str) -> str | None: ...
    def save_item(self, item: ItemFacts) -> None: ...
    def save_patron(self, patron: PatronFacts, pin_hash: str | None) -> None:
        """Create or replace the patron; ``pin_hash`` None keeps the stored PIN."""
        ...


class CatalogStore(Protocol):
    def session(self) -> AbstractContextManager[CatalogStoreSession]: ...


class StoreCatalogSink:
    def __init__(self, store: CatalogStore) -> None:
        self._store = store
        self._session: CatalogStoreSession | None = None

    @contextmanager
    def transaction(self) -> Iterator[None]:
        if self._session is not None:
            raise SinkUsageError("transactions do not nest")
        with self._store.session() as session:
            self._session = session
            try:
                yield
            finally:
                self._session = None

    def upsert_item(self, item: ItemRecord) -> Outcome:
        session = self._active()
        stored = session.item(item.barcode, for_update=True)
        facts = item_facts(item, stored)
        if facts == stored:
            return Outcome.UNCHANGED
        session.save_item(facts)
        return Outcome.CREATED if stored is None else Outcome.UPDATED

    def upsert_patron(self, patron: PatronRecord) -> Outcome:
        session = self._active()
        stored = session.patron_by_card(patron.barcode)
        facts = patron_facts(patron, stored)
        pin_changes = patron.pin_hash is not None and (
            stored is None or session.pin_hash(stored.patron_id) != patron.pin_hash)
        if facts == stored and not pin_changes:
            return Outcome.UNCHANGED
        session.save_patron(facts, patron.pin_hash)
        return Outcome.CREATED if stored is None else Outcome.UPDATED

    def _active(self) -> CatalogStoreSession:
        if self._session is None:
            raise SinkUsageError("upsert outside `with sink.transaction():`")
        return self._session


def item_facts(item: ItemRecord, stored: ItemFacts | None) -> ItemFacts:
    """The facts to store for ``item``: new ones, or ``stored`` with what the record states."""
    if stored is None:
        values = {facts: getattr(item, name) for name, facts in _ITEM_FACTS.items()}
        values["status"] = item.status or ItemStatus.AVAILABLE
        return ItemFacts(**values)
    return stored.model_copy(update=_translate(stated_fields(item), _ITEM_FACTS))


def patron_facts(patron: PatronRecord, stored: PatronFacts | None) -> PatronFacts:
    if stored is None:
        values = {facts: getattr(patron, name) for name, facts in _PATRON_FACTS.items()}
        return PatronFacts(patron_id=patron.barcode, card_ids=(patron.barcode,), **values)
    return stored.model_copy(update=_translate(stated_fields(patron), _PATRON_FACTS))


def _translate(stated: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    return {names[name]: value for name, value in stated.items() if name in names and name != "barcode"}


# ---------------------------------------------------------------------------------------------- MemoryStore


class MemoryStoreCatalog:
    """A :class:`~backend.circulation.memory.MemoryStore` as a :class:`CatalogStore`."""

    def __init__(self, store: MemoryStore) -> None:
        self.store = store

    @contextmanager
    def session(self) -> Iterator["_MemoryCatalogSession"]:
        with self.store.session():  # holds the store's lock for the whole import
            session = _MemoryCatalogSession(self.store)
            try:
                yield session
            except BaseException:
                session.undo()
                raise


class _MemoryCatalogSession:
    def __init__(self, store: MemoryStore) -> None:
        self._store = store
        self._undo: list[Callable[[], None]] = []

    def item(self, item_id: str, *, for_update: bool = False) -> ItemFacts | None:
        return self._store.item(item_id)

    def patron_by_card(self, card_id: str) -> PatronFacts | None:
        return self._store.patron_by_card(card_id)

    def pin_hash(self, patron_id: str) -> str | None:
        return self._store.pin_hash(patron_id)

    def save_item(self, item: ItemFacts) -> None:
        self._remember(self._store.items, item.item_id)
        self._store.put_item(item)

    def save_patron(self, patron: PatronFacts, pin_hash: str | None) -> None:
        self._remember(self._store.patrons, patron.patron_id)
        self._remember(self._store.pins, patron.patron_id)
        for card in patron.card_ids:
            self._remember(self._store.cards, card)
        self._store.put_patron(patron, pin_hash)

    def _remember(self, table: dict[str, Any], key: str) -> None:
        if key in table:
            old = table[key]
            self._undo.append(lambda: table.__setitem__(key, old))
        else:
            self._undo.append(lambda: table.pop(key, None))

    def undo(self) -> None:
        for step in reversed(self._undo):
            step()
        self._undo.clear()
