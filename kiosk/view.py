"""What the screen shows, as plain immutable data: the controller builds it, the Kivy layer draws it.

Every string in here is already translated into the patron's language, so the
drawing code never decides wording.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass


class Screen(str, enum.Enum):
    START = "start"
    IDENTIFY = "identify"
    PIN = "pin"
    BORROW = "borrow"
    RETURN = "return"
    ACCOUNT = "account"
    FINISH_CHECK = "finish_check"
    RECEIPT = "receipt"
    MESSAGE = "message"
    TECHNICIAN = "technician"


class Icon(str, enum.Enum):
    NONE = "none"
    WORKING = "working"
    DONE = "done"
    ERROR = "error"
    WARNING = "warning"
    WAITING = "waiting"


@dataclass(frozen=True)
class ItemView:
    key: str
    title: str
    subtitle: str
    status: str
    icon: Icon
    cover_letter: str
    cover_hue: float


@dataclass(frozen=True)
class LoanView:
    item_id: str
    title: str
    due: str
    overdue: bool
    note: str = ""


@dataclass(frozen=True)
class HoldView:
    item_id: str
    title: str
    status: str
    ready: bool


@dataclass(frozen=True)
class AccountView:
    loans: tuple[LoanView, ...]
    holds: tuple[HoldView, ...]
    fines: str
    loaded: bool


@dataclass(frozen=True)
class ReceiptView:
    lines: tuple[str, ...]
    qr_payload: str | None
    can_print: bool
    can_email: bool


@dataclass(frozen=True)
class KioskView:
    screen: Screen
    language: str
    library: str
    heading: str = ""
    instruction: str = ""
    notice: str = ""
    notice_icon: Icon = Icon.NONE
    offline: bool = False
    offline_text: str = ""
    items: tuple[ItemView, ...] = ()
    summary: str = ""
    account: AccountView | None = None
    receipt: ReceiptView | None = None
    keypad_length: int = 0
    busy: bool = False
    in_session: bool = False
    can_finish: bool = False
    countdown: int | None = None
    countdown_text: str = ""
    still_there: bool = False

    def content(self) -> "KioskView":
        """The view without the countdown: if only the countdown changed, nothing needs rebuilding."""
        return dataclasses.replace(self, countdown=None, countdown_text="", still_there=False)

    def frame(self) -> "KioskView":
        """The view without its item rows and the summary that counts them."""
        return dataclasses.replace(self.content(), items=(), summary="")

    def only_rows_differ(self, shown: "KioskView") -> bool:
        """True when this view differs from ``shown`` only in its item rows' texts and icons, and in rows added
        after the shown ones: the page on screen can then be updated in place instead of rebuilt. An empty
        list is not updated in place: the first rows replace the empty list's page (one rebuild per borrow)."""
        keys = [item.key for item in self.items]
        shown_keys = [item.key for item in shown.items]
        return bool(shown_keys) and keys[:len(shown_keys)] == shown_keys and self.frame() == shown.frame()
