"""The backend's circulation, built from ``backend.circulation`` in the site file, and what runs around it.

* :func:`build_circulation_parts`: standalone mode runs
  :class:`~backend.circulation.service.StoreCirculation` over the backend
  database (:class:`~backend.db.circulation_store.SqlCirculationStore`, default
  rules written on first start); SIP2 mode runs
  :class:`~backend.sip2.circulation.Sip2Circulation` (per
  :func:`backend.circulation.factory.build_circulation`). Either way everyone
  (kiosks, staff API, SIP2 terminals) uses it through
  :class:`~backend.gate_sync.GateSyncedCirculation`, so the gate view follows
  every checkout and check-in at once.
* :class:`CirculationRuntime`: the kiosk service on MQTT, the SIP2 server
  (standalone; always in the demo) and, in SIP2 mode, the loan-state refresher.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from backend.circulation.config import CirculationSettings
from backend.circulation.errors import StoreError
from backend.circulation.factory import build_circulation
from backend.circulation.interface import Circulation
from backend.circulation.service import PinHasher
from backend.config import BackendServiceConfig
from backend.db.circulation_store import SqlCirculationStore
from backend.db.models import Patron, PatronCard
from backend.db.engine import session_factory
from backend.gate_sync import GateSyncedCirculation, LoanStateRefresher, status_recorder
from backend.gate_view import GateView
from backend.kiosk_circulation import KioskAnswers
from backend.kiosk_service import KioskCirculationService
from backend.kiosk_sessions import KioskSessions
from backend.periodic import PeriodicChore
from backend.sip2_service import BackendSip2Server, sip2_server_settings
from openshelf.contract import utcnow
from openshelf.mqtt import MqttLink

log = logging.getLogger(__name__)


@dataclass
class CirculationParts:
    settings: CirculationSettings
    circulation: Circulation  # gate-synced: use this one
    inner: Circulation
    store: SqlCirculationStore | None  # standalone mode only
    sessions: KioskSessions
    pin_hasher: PinHasher | None

    @property
    def standalone(self) -> bool:
        return self.settings.mode == "standalone"

    def close(self) -> None:
        self.circulation.close()
        if self.store is not None:
            self.store.close()


def build_circulation_parts(config: BackendServiceConfig, engine: Engine, view: GateView, *,
                            pin_hasher: PinHasher | None = None,
                            clock: Callable[[], datetime] | None = None) -> CirculationParts:
    settings = config.circulation
    store = SqlCirculationStore(engine) if settings.mode == "standalone" else None
    if store is not None:
        store.ensure_default_rules()
    inner = build_circulation(settings, store=store, clock=clock, pin_hasher=pin_hasher,
                              institution_id=settings.branch, library_name=config.site_config.name or "OpenShelf")
    # Standalone: the store already recorded the loan. SIP2: keep what we heard in the local item's status.
    remember = None if store is not None else status_recorder(session_factory(engine))
    log.info("circulation: %s%s", settings.mode, f" (branch {settings.branch})" if settings.branch else "")
    return CirculationParts(settings, GateSyncedCirculation(inner, view, remember=remember), inner, store,
                            KioskSessions(), pin_hasher)


def email_lookup(sessions: sessionmaker[Session]) -> Callable[[str], str | None]:
    """card id → the patron's e-mail address in the backend database (imported patrons in SIP2 mode)."""

    def email_of(card_id: str) -> str | None:
        with sessions() as session:
            return session.scalar(select(Patron.email).join(PatronCard, PatronCard.patron_id == Patron.id)
                                  .where(PatronCard.card_id == card_id))

    return email_of


# Remembered answers outlive any replay a kiosk may still send (offline replays are at most 30 days late).
KEEP_RESULTS = timedelta(days=90)
PRUNE_EVERY_S = 6 * 3600.0


def result_pruner(store: SqlCirculationStore, *, every_s: float = PRUNE_EVERY_S) -> PeriodicChore:
    """Forgets old idempotency answers now and then, on its own thread (standalone mode)."""

    def prune() -> None:
        pruned = store.prune_results(utcnow() - KEEP_RESULTS)
        if pruned:
            log.info("forgot %d remembered circulation answer(s) older than %s", pruned, KEEP_RESULTS)

    return PeriodicChore("circulation-prune", every_s, prune, expected=(StoreError,), at_start=True,
                         on_failure=lambda exc: log.warning("could not prune remembered circulation answers: %s", exc))


class CirculationRuntime:
    """Kiosk service, SIP2 server and (SIP2 mode) loan-state refresher, started and stopped together."""

    def __init__(self, config: BackendServiceConfig, parts: CirculationParts, link: MqttLink, view: GateView,
                 sessions: sessionmaker[Session]) -> None:
        self.parts = parts
        kiosks = {kiosk.id: kiosk for kiosk in config.site_config.kiosks}
        self.answers = KioskAnswers(parts.circulation, parts.sessions, kiosks, email_of=email_lookup(sessions))
        self.kiosk_service = KioskCirculationService(link, self.answers, site_id=config.site,
                                                     root=config.broker.root, backend_id=config.backend.id)
        self.refresher = None if parts.standalone else LoanStateRefresher(parts.inner, view,
                                                                          remember=status_recorder(sessions))
        self.pruner = result_pruner(parts.store) if parts.store is not None else None
        server_settings = sip2_server_settings(config)
        self.sip2 = None if server_settings is None else BackendSip2Server(
            parts.circulation, server_settings, required=not config.demo)

    def start(self) -> None:
        """Subscribe (the link may connect later), then start the threads and the SIP2 listener."""
        self.kiosk_service.start()
        if self.refresher is not None:
            self.refresher.start()
        if self.pruner is not None:
            self.pruner.start()
        if self.sip2 is not None:
            self.sip2.start()

    def stop(self) -> None:
        if self.sip2 is not None:
            self.sip2.stop()
        if self.refresher is not None:
            self.refresher.stop()
        if self.pruner is not None:
            self.pruner.stop()
        self.kiosk_service.stop()
        self.parts.close()
