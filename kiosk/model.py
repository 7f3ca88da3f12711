"""The kiosk's state between two screens: the controller changes it, the presenter reads it.

Everything about the patron lives in :class:`KioskModel` and is dropped in one
place (:meth:`KioskModel.clear_patron`) when the session ends.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from openshelf.contract import CirculationReply

from kiosk.backend_http import ItemSummary
from kiosk.i18n import Translator
from kiosk.items import ItemDesk
from kiosk.printer import PaperStatus
from kiosk.session import PatronSession
from kiosk.view import Icon, Screen


@dataclass(frozen=True)
class Say:
    """Something to tell the patron: a catalog key, or the backend's own sentence per language."""

    key: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    texts: dict[str, str] | None = None
    icon: Icon = Icon.NONE

    def render(self, t: Translator) -> str:
        if self.texts and self.texts.get(t.language):
            return self.texts[t.language]
        if self.key and t.has(t.language, self.key):
            return t(self.key, **self.params)
        if self.key and self.key.startswith("reason."):
            return t("reason.unknown")
        return t(self.key, **self.params) if self.key else ""


@dataclass
class KioskModel:
    screen: Screen = Screen.START
    session: PatronSession | None = None
    desk: ItemDesk | None = None
    keypad: str = ""
    pending_card: str | None = None
    pin_attempts: int = 0
    notice: Say | None = None
    message: Say | None = None
    message_detail: Say | None = None
    account: CirculationReply | None = None
    account_loading: bool = False
    titles: dict[str, ItemSummary] = field(default_factory=dict)
    receipt_notice: Say | None = None
    busy: bool = False
    backend_online: bool = True
    queued: int = 0
    paper: PaperStatus = PaperStatus.UNKNOWN
    countdown: int | None = None

    @property
    def offline(self) -> bool:
        return not self.backend_online or self.queued > 0

    def clear_patron(self) -> None:
        """Forget everything about the patron who just left."""
        self.session = None
        self.desk = None
        self.keypad = ""
        self.pending_card = None
        self.pin_attempts = 0
        self.notice = None
        self.message = None
        self.message_detail = None
        self.account = None
        self.account_loading = False
        self.titles = {}
        self.receipt_notice = None
        self.busy = False
        self.countdown = None
