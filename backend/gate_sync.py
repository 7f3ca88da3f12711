"""Keep the gate view in step with circulation, so gate decisions follow loans.

* :class:`GateSyncedCirculation` wraps the configured circulation: right after a
  checkout or check-in succeeds (kiosk, staff desk, SIP2 terminal — whoever
  called) the item's loan state in the gate view changes. An item the view does
  not know yet (SIP2 mode, no local catalogue entry) is added.
* :class:`LoanStateRefresher` (SIP2 mode): the library system also lends at its
  own desk, so the view can be stale. Every gate lookup of an item asks for a
  refresh; at most one per item per ``ttl_s`` is queued, and a worker thread asks
  the library system (item information) and updates the view. The gate read
  itself never waits: the hook only looks at a dictionary and puts an id on a
  bounded queue.
* ``remember`` (SIP2 mode): the loan state is also written to the local item's
  status, so a restarted backend starts from what it last heard instead of
  "nothing is on loan" (:func:`status_recorder`).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from datetime import datetime
from decimal import Decimal
from typing import Callable

from backend.circulation.interface import (
    CheckinResult,
    CheckoutResult,
    Circulation,
    ItemInfo,
    PatronAccount,
    PatronStatus,
    PaymentResult,
    RenewAllResult,
    RenewResult,
    SystemStatus,
)
from sqlalchemy import update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from backend.circulation.model import ItemStatus
from backend.db.models import Item
from backend.gate_decision import ItemFacts as GateItem
from backend.gate_view import GateView

log = logging.getLogger(__name__)

_STOP = object()


def mark_loan(view: GateView, item_id: str, on_loan: bool, *, title: str = "",
              in_library_only: bool = False) -> None:
    """Record a loan state in the view, adding the item when the view does not know it."""
    if not view.set_on_loan(item_id, on_loan):
        view.put_item(GateItem(item_id, title, on_loan, in_library_only), ())


Remember = Callable[[str, bool], None]


def status_recorder(sessions: sessionmaker[Session]) -> Remember:
    """Write "on loan" / "available" to a local item's status (SIP2 mode; other statuses are left alone)."""
    swappable = (ItemStatus.AVAILABLE.value, ItemStatus.ON_LOAN.value)

    def remember(item_id: str, on_loan: bool) -> None:
        status = ItemStatus.ON_LOAN if on_loan else ItemStatus.AVAILABLE
        try:
            with sessions() as session:
                session.execute(update(Item).where(Item.item_id == item_id, Item.status.in_(swappable))
                                .values(status=status.value))
                session.commit()
        except SQLAlchemyError as exc:
            log.warning("could not record the loan state of %s locally: %s", item_id, exc.__class__.__name__)

    return remember


class GateSyncedCirculation:
    """A :class:`Circulation` that tells the gate view about every successful checkout and check-in."""

    def __init__(self, inner: Circulation, view: GateView, *, remember: Remember | None = None) -> None:
        self.inner = inner
        self._view = view
        self._remember = remember

    def _mark(self, item_id: str, on_loan: bool, title: str) -> None:
        mark_loan(self._view, item_id, on_loan, title=title)
        if self._remember is not None:
            self._remember(item_id, on_loan)

    def checkout(self, card_id: str, item_id: str, *, idempotency_key: str, no_block: bool = False,
                 now: datetime | None = None) -> CheckoutResult:
        result = self.inner.checkout(card_id, item_id, idempotency_key=idempotency_key, no_block=no_block, now=now)
        if result.ok:
            self._mark(item_id, True, result.title)
        return result

    def checkin(self, item_id: str, *, idempotency_key: str, no_block: bool = False,
                now: datetime | None = None, branch: str | None = None) -> CheckinResult:
        result = self.inner.checkin(item_id, idempotency_key=idempotency_key, no_block=no_block, now=now,
                                    branch=branch)
        if result.ok:
            self._mark(item_id, False, result.title)
        return result

    # Everything else changes no loan state.

    def system_status(self) -> SystemStatus:
        return self.inner.system_status()

    def patron_status(self, card_id: str, pin: str | None = None) -> PatronStatus:
        return self.inner.patron_status(card_id, pin)

    def patron_account(self, card_id: str) -> PatronAccount:
        return self.inner.patron_account(card_id)

    def item_info(self, item_id: str) -> ItemInfo:
        return self.inner.item_info(item_id)

    def renew(self, card_id: str, item_id: str, *, now: datetime | None = None) -> RenewResult:
        return self.inner.renew(card_id, item_id, now=now)

    def renew_all(self, card_id: str, *, now: datetime | None = None) -> RenewAllResult:
        return self.inner.renew_all(card_id, now=now)

    def record_payment(self, card_id: str, amount: Decimal, *, idempotency_key: str, fee_id: str | None = None,
                       now: datetime | None = None) -> PaymentResult:
        return self.inner.record_payment(card_id, amount, idempotency_key=idempotency_key, fee_id=fee_id, now=now)

    def close(self) -> None:
        self.inner.close()


class LoanStateRefresher:
    """Background item-information lookups that keep the gate view's loan states fresh (SIP2 mode)."""

    def __init__(self, circulation: Circulation, view: GateView, *, ttl_s: float = 30.0, max_pending: int = 256,
                 clock: Callable[[], float] = time.monotonic, remember: Remember | None = None) -> None:
        self._circulation = circulation
        self._view = view
        self._remember = remember
        self._ttl_s = ttl_s
        self._clock = clock
        self._asked: dict[str, float] = {}
        self._queue: queue.Queue[object] = queue.Queue(maxsize=max_pending)
        self._thread: threading.Thread | None = None
        self.refreshed = 0
        self.dropped = 0

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("refresher already started")
        self._thread = threading.Thread(target=self._run, name="loan-state-refresher", daemon=True)
        self._thread.start()
        self._view.set_lookup_hook(self.request)

    def stop(self) -> None:
        self._view.set_lookup_hook(None)
        if self._thread is None:
            return
        while True:
            try:
                self._queue.put(_STOP, timeout=0.1)
                break
            except queue.Full:
                self._drain_one()
        self._thread.join(5)
        self._thread = None

    def _drain_one(self) -> None:
        try:
            self._queue.get_nowait()
        except queue.Empty:
            pass

    def request(self, item_id: str) -> None:
        """Called on the gate path: never blocks, never touches the network."""
        now = self._clock()
        last = self._asked.get(item_id)
        if last is not None and now - last < self._ttl_s:
            return
        self._asked[item_id] = now
        if len(self._asked) > 50_000:
            self._asked.clear()
        try:
            self._queue.put_nowait(item_id)
        except queue.Full:
            self.dropped += 1

    def _run(self) -> None:
        while True:
            item_id = self._queue.get()
            if item_id is _STOP:
                return
            assert isinstance(item_id, str)
            try:
                self.refresh(item_id)
            except Exception:  # noqa: BLE001 - a failed lookup must not end the refresher
                log.exception("could not refresh the loan state of %s", item_id)

    def refresh(self, item_id: str) -> bool:
        """Ask the library system about one item now; True when the view was updated."""
        info = self._circulation.item_info(item_id)
        if not info.found or info.status is None:
            return False
        on_loan = info.status is ItemStatus.ON_LOAN
        before = self._view.get(item_id)
        mark_loan(self._view, item_id, on_loan, title=info.title, in_library_only=bool(info.in_library_only))
        if self._remember is not None and (before is None or before.on_loan != on_loan):
            self._remember(item_id, on_loan)
        self.refreshed += 1
        return True
