"""The :class:`~backend.catalog_import.sinks.CatalogSink` over the backend database (``openshelf import``).

Follows the sink contract of :mod:`backend.catalog_import.sinks`: one database
transaction per ``transaction()`` (rolled back when the block raises: a failed
or dry-run import leaves nothing), upserts by natural key, and an update
changes only what the record states (``stated_fields``). Unlike the circulation
facts, the database keeps everything a record carries: ISBN, publisher, year,
call number, holding branch, e-mail.

Circulation state is never overwritten by an import: an item on loan or on the
hold shelf keeps its status, a patron keeps their other cards, blocks, fines
and (unless the file gives a new one) their PIN hash. Tag UIDs, when stated,
replace the item's tags (one per part, in order); a UID that belongs to
another item aborts the file.

A running backend picks imported items up through ``items.updated_at`` (see
:class:`backend.catalog_watch.CatalogWatcher`), so new tags reach the gate
without a restart.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from backend.catalog_import.errors import SinkUnavailableError, SinkUsageError
from backend.catalog_import.records import ItemRecord, PatronRecord, stated_fields
from backend.catalog_import.sinks import Outcome
from backend.circulation.model import ItemStatus
from backend.db.models import CardKind, Item, Patron, PatronCard, Tag
from openshelf.contract import utcnow

log = logging.getLogger(__name__)

# ItemRecord field → Item column (barcode is the key; status and tags are handled apart).
_ITEM_COLUMNS = {"title": "title", "author": "author", "record_id": "record_id", "isbn": "isbn",
                 "publisher": "publisher", "year": "year", "call_number": "call_number", "item_type": "item_type",
                 "parts": "parts", "home_branch": "home_branch", "holding_branch": "holding_branch",
                 "location": "location", "in_library_only": "in_library_only"}
_PATRON_COLUMNS = {"name": "name", "category": "category", "email": "email", "expires_on": "expires_on",
                   "home_branch": "home_branch", "pin_hash": "pin_hash"}
# Statuses circulation sets; an import does not take an item off a loan or a hold shelf.
_CIRCULATING = {ItemStatus.ON_LOAN.value, ItemStatus.ON_HOLD_SHELF.value}


class SqlCatalogSink:
    def __init__(self, sessions: sessionmaker[Session], *, engine: Engine | None = None) -> None:
        self._sessions = sessions
        self._engine = engine  # owned (disposed by close) when the factory made it
        self._session: Session | None = None

    @contextmanager
    def transaction(self) -> Iterator[None]:
        if self._session is not None:
            raise SinkUsageError("transactions do not nest")
        with self._sessions() as session:
            self._session = session
            try:
                yield
                session.commit()
            except BaseException:
                session.rollback()
                raise
            finally:
                self._session = None

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()

    # ------------------------------------------------------------------ items

    def upsert_item(self, item: ItemRecord) -> Outcome:
        session = self._active()
        stored = session.scalars(select(Item).where(Item.item_id == item.barcode)).first()
        if stored is None:
            self._create_item(session, item)
            return Outcome.CREATED
        stated = stated_fields(item)
        changed = _assign(stored, {_ITEM_COLUMNS[name]: value for name, value in stated.items()
                                   if name in _ITEM_COLUMNS})
        status = stated.get("status")
        if status is not None and stored.status not in _CIRCULATING and stored.status != ItemStatus(status).value:
            stored.status = ItemStatus(status).value
            changed = True
        if "tag_uids" in stated and [tag.uid for tag in sorted(stored.tags, key=lambda tag: tag.part)] != list(
                item.tag_uids):
            self._replace_tags(session, stored, item.tag_uids)
            changed = True
        if not changed:
            return Outcome.UNCHANGED
        stored.updated_at = utcnow()
        session.flush()
        return Outcome.UPDATED

    def _create_item(self, session: Session, item: ItemRecord) -> None:
        values = {column: getattr(item, name) for name, column in _ITEM_COLUMNS.items()}
        row = Item(item_id=item.barcode, status=(item.status or ItemStatus.AVAILABLE).value, updated_at=utcnow(),
                   **values)
        session.add(row)
        session.flush()
        self._replace_tags(session, row, item.tag_uids)

    def _replace_tags(self, session: Session, item: Item, uids: tuple[str, ...]) -> None:
        owners = dict(session.execute(select(Tag.uid, Tag.item_id).where(Tag.uid.in_(uids))).all())
        foreign = [uid for uid in uids if owners.get(uid, item.item_id) != item.item_id]
        if foreign:
            raise ValueError(f"tag {foreign[0]} already belongs to item {owners[foreign[0]]}")
        for tag in list(item.tags):
            session.delete(tag)
        session.flush()
        item.tags = [Tag(uid=uid, part=part) for part, uid in enumerate(uids, start=1)]
        session.flush()

    # ------------------------------------------------------------------ patrons

    def upsert_patron(self, patron: PatronRecord) -> Outcome:
        session = self._active()
        stored = session.scalars(select(Patron).join(PatronCard, PatronCard.patron_id == Patron.id)
                                 .where(PatronCard.card_id == patron.barcode)).first()
        if stored is None:
            stored = session.scalars(select(Patron).where(Patron.barcode == patron.barcode)).first()
            if stored is not None:  # the patron number without its card (removed by staff): give it back
                stored.cards.append(PatronCard(card_id=patron.barcode, kind=CardKind.BARCODE.value))
        if stored is None:
            values = {column: getattr(patron, name) for name, column in _PATRON_COLUMNS.items()}
            session.add(Patron(barcode=patron.barcode, blocked=False, **values,
                               cards=[PatronCard(card_id=patron.barcode, kind=CardKind.BARCODE.value)]))
            session.flush()
            return Outcome.CREATED
        stated = stated_fields(patron)
        changed = _assign(stored, {_PATRON_COLUMNS[name]: value for name, value in stated.items()
                                   if name in _PATRON_COLUMNS})
        session.flush()
        return Outcome.UPDATED if changed else Outcome.UNCHANGED

    def _active(self) -> Session:
        if self._session is None:
            raise SinkUsageError("upsert outside `with sink.transaction():`")
        return self._session


def _assign(row: Any, values: dict[str, Any]) -> bool:
    changed = False
    for column, value in values.items():
        if getattr(row, column) != value:
            setattr(row, column, value)
            changed = True
    return changed


def sql_sink_factory(site_path: Path | None) -> SqlCatalogSink:
    """The sink for ``openshelf import --site site.yaml``: the site's database, migrated to the current schema."""
    from backend.config import load_backend_config
    from backend.db.engine import DatabaseError, make_engine, session_factory, upgrade_database
    from openshelf.config import ConfigError

    if site_path is None:
        raise SinkUnavailableError("give the site file (--site site.yaml) to import into its database / "
                                   "hãy chỉ ra tệp cấu hình (--site site.yaml) để nhập vào cơ sở dữ liệu")
    try:
        config = load_backend_config(Path(site_path))
        engine = make_engine(config.database_url.get_secret_value())
        upgrade_database(engine)
    except (ConfigError, DatabaseError, OSError) as exc:
        raise SinkUnavailableError(f"{site_path}: {exc}") from exc
    log.info("importing into %s", engine.url.render_as_string(hide_password=True))
    return SqlCatalogSink(session_factory(engine), engine=engine)
