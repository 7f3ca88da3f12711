"""Where imported records go: the :class:`CatalogSink` protocol, an in-memory sink, and the sink factory.

Contract for implementers (the SQL sink in backend/db will follow it):

* ``transaction()`` is a context manager around one transaction: commit when
  the block ends normally, roll back when it raises.  Nothing written inside a
  block that raised may remain (the importer relies on this for "nothing
  half-imported" and for dry runs, which roll back on purpose).
* ``upsert_item`` / ``upsert_patron`` are only called inside ``transaction()``.
  They look the record up by its natural key (item barcode, patron card
  barcode), create it when absent, otherwise store
  :func:`~backend.catalog_import.records.merge_stated` of the new record onto
  the stored one — so a re-import never duplicates and never resets what the
  file does not state (circulation status, tags, PIN).  They return what happened.
* Any exception from an upsert aborts the whole file.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Callable, Iterator, Protocol, runtime_checkable

from backend.catalog_import.errors import SinkUnavailableError, SinkUsageError
from backend.catalog_import.records import ItemRecord, PatronRecord, merge_stated


class Outcome(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


@runtime_checkable
class CatalogSink(Protocol):
    def transaction(self) -> AbstractContextManager[None]: ...
    def upsert_item(self, item: ItemRecord) -> Outcome: ...
    def upsert_patron(self, patron: PatronRecord) -> Outcome: ...


SinkFactory = Callable[[Path | None], CatalogSink]


class MemoryCatalogSink:
    """Records in dictionaries keyed by barcode; a transaction that raises restores the previous contents."""

    def __init__(self) -> None:
        self.items: dict[str, ItemRecord] = {}
        self.patrons: dict[str, PatronRecord] = {}
        self._in_transaction = False

    @contextmanager
    def transaction(self) -> Iterator[None]:
        if self._in_transaction:
            raise SinkUsageError("transactions do not nest")
        saved_items, saved_patrons = dict(self.items), dict(self.patrons)
        self._in_transaction = True
        try:
            yield
        except BaseException:
            self.items, self.patrons = saved_items, saved_patrons
            raise
        finally:
            self._in_transaction = False

    def upsert_item(self, item: ItemRecord) -> Outcome:
        return self._upsert(self.items, item)

    def upsert_patron(self, patron: PatronRecord) -> Outcome:
        return self._upsert(self.patrons, patron)

    def _upsert(self, table: dict, record: ItemRecord | PatronRecord) -> Outcome:  # type: ignore[type-arg]
        if not self._in_transaction:
            raise SinkUsageError("upsert outside `with sink.transaction():`")
        stored = table.get(record.barcode)
        if stored is None:
            table[record.barcode] = record
            return Outcome.CREATED
        merged = merge_stated(record, stored)
        if merged == stored:
            return Outcome.UNCHANGED
        table[record.barcode] = merged
        return Outcome.UPDATED


def default_sink_factory(site_path: Path | None) -> CatalogSink:
    """The site's catalogue database (``--site``), migrated to the current schema."""
    from backend.catalog_import.sql_sink import sql_sink_factory

    return sql_sink_factory(site_path)
