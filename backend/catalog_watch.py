"""Bring catalogue changes made by another process (``openshelf import``) into the running gate view.

Every catalogue write stamps ``items.updated_at``; every ``interval_s`` this
thread reads the items stamped since its last look (an indexed query, usually
empty) and replaces them, with their tags and loan state, in the gate view.
Changes made through this backend's own API are already there; reading them
again is harmless.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, selectinload, sessionmaker

from backend.db.models import Item, ItemStatus, Loan
from backend.gate_decision import ItemFacts as GateItem
from backend.gate_view import GateView
from backend.periodic import PeriodicChore
from openshelf.contract import utcnow

log = logging.getLogger(__name__)

# Another process's clock and commit order: look a little further back than the last stamp seen.
_OVERLAP = timedelta(seconds=2)


class CatalogWatcher:
    def __init__(self, sessions: sessionmaker[Session], view: GateView, *, interval_s: float = 30.0) -> None:
        self._sessions = sessions
        self._view = view
        self._since: datetime = utcnow()
        self._chore = PeriodicChore("catalog-watch", interval_s, self.poll, expected=(SQLAlchemyError,),
                                    on_failure=_database_away)

    def start(self, since: datetime | None = None) -> None:
        """Watch for changes after ``since`` (default: now; the view was just loaded)."""
        self._since = since or utcnow()
        self._chore.start()

    def stop(self) -> None:
        self._chore.stop()

    def poll(self) -> int:
        """Apply the items changed since the last look; returns how many."""
        with self._sessions() as session:
            items = session.scalars(select(Item).options(selectinload(Item.tags))
                                    .where(Item.updated_at > self._since - _OVERLAP)).all()
            if not items:
                return 0
            ids = [item.item_id for item in items]
            on_loan = set(session.scalars(select(Loan.item_id).where(Loan.item_id.in_(ids),
                                                                     Loan.returned_at.is_(None))))
            # One change for the whole batch: the gate process confirms it once, not once per item.
            self._view.replace_items(
                (GateItem(item.item_id, item.title,
                          item.item_id in on_loan or item.status == ItemStatus.ON_LOAN.value, item.in_library_only),
                 [tag.uid for tag in item.tags])
                for item in items)
            self._since = max(item.updated_at for item in items if item.updated_at is not None)
        log.info("catalogue watch: %d changed item(s) now known to the gate", len(items))
        return len(items)


def _database_away(exc: Exception) -> None:
    log.warning("catalogue watch: database unavailable (%s); trying again later", exc.__class__.__name__)
