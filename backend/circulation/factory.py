"""Build the configured :class:`Circulation`: standalone over a store, or SIP2 to a library system."""

from __future__ import annotations

from datetime import datetime
from typing import Callable

from backend.circulation.config import CirculationSettings
from backend.circulation.interface import Circulation
from backend.circulation.service import PinHasher, StoreCirculation
from backend.circulation.store import CirculationStore
from backend.sip2.circulation import Sip2Circulation
from backend.sip2.client import Sip2Client
from backend.sip2.offline import JsonlJournal, OfflineJournal


def build_circulation(
    settings: CirculationSettings,
    *,
    store: CirculationStore | None = None,
    clock: Callable[[], datetime] | None = None,
    pin_hasher: PinHasher | None = None,
    journal: OfflineJournal | None = None,
    institution_id: str = "",
    library_name: str = "",
) -> Circulation:
    """Standalone mode needs the ``store`` (the backend's database store); SIP2 mode builds its client.

    Nothing connects here: the SIP2 client opens its connection on first use.
    """
    if settings.mode == "standalone":
        if store is None:
            raise ValueError("standalone circulation needs a store")
        return StoreCirculation(store, branch=settings.branch, institution_id=institution_id,
                                library_name=library_name, clock=clock, pin_hasher=pin_hasher)
    assert settings.sip2 is not None
    offline = settings.sip2.offline
    if journal is None and offline.enabled and offline.journal_path is not None:
        journal = JsonlJournal(offline.journal_path)
    config = settings.sip2
    if settings.branch and config.current_location is None:
        config = config.model_copy(update={"current_location": settings.branch})
    return Sip2Circulation(Sip2Client(config, clock=clock), journal=journal, clock=clock)
