"""Every supported SIP2 message as a typed, immutable model.

Each field carries its wire layout in ``Annotated`` metadata: ``Fixed(length,
kind)`` for the fixed part (declared first, in wire order) or ``Var("XX")`` for a
variable field.  The codec reads that layout, so a message is described once.
Variable fields the model does not know are kept in ``extra_fields`` and
written back unchanged, so nothing a server sends is lost.

OpenShelf extension fields (other systems ignore them; Koha never sends them):
on answers from an OpenShelf server ``ZR`` carries the reason code and ``ZV`` /
``ZE`` the message in Vietnamese / English, while ``AF`` holds the message in
the server's screen language for any kiosk.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, model_validator

from backend.circulation.interface import Tristate
from backend.sip2.fields import Fixed, FixedKind, Var, VarKind

YN = FixedKind.YN
TRI = FixedKind.TRI
BIT = FixedKind.BIT
DATE = FixedKind.DATE
COUNT = FixedKind.COUNT
TEXT = FixedKind.TEXT
DIGITS = FixedKind.DIGITS



class SummaryKind(Enum):
    """Which item list a 63 patron-information request asks for (position of its ``Y``)."""

    HOLD_ITEMS = 0
    OVERDUE_ITEMS = 1
    CHARGED_ITEMS = 2
    FINE_ITEMS = 3
    RECALL_ITEMS = 4
    UNAVAILABLE_HOLDS = 5


class CirculationStatus:
    """Codes of the 18 item-information answer (kept as strings: servers send others too)."""

    OTHER = "01"
    ON_ORDER = "02"
    AVAILABLE = "03"
    CHARGED = "04"
    CHARGED_NOT_RECALLABLE = "05"
    IN_PROCESS = "06"
    RECALLED = "07"
    WAITING_ON_HOLD_SHELF = "08"
    WAITING_TO_BE_RESHELVED = "09"
    IN_TRANSIT = "10"
    CLAIMED_RETURNED = "11"
    LOST = "12"
    MISSING = "13"


class AlertType:
    HOLD_THIS_LIBRARY = "01"
    HOLD_OTHER_LIBRARY = "02"
    SEND_TO_OTHER_LIBRARY = "04"
    OTHER = "99"


class PatronStatusFlags(BaseModel):
    """The 14 patron-status positions; ``True`` = ``Y`` (denied / too many …)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    charge_privileges_denied: bool = False
    renewal_privileges_denied: bool = False
    recall_privileges_denied: bool = False
    hold_privileges_denied: bool = False
    card_reported_lost: bool = False
    too_many_items_charged: bool = False
    too_many_items_overdue: bool = False
    too_many_renewals: bool = False
    too_many_claims_of_items_returned: bool = False
    too_many_items_lost: bool = False
    excessive_outstanding_fines: bool = False
    excessive_outstanding_fees: bool = False
    recall_overdue: bool = False
    too_many_items_billed: bool = False

    def to_wire(self) -> str:
        return "".join("Y" if getattr(self, name) else " " for name in type(self).model_fields)

    @classmethod
    def from_wire(cls, text: str) -> "PatronStatusFlags":
        names = list(cls.model_fields)
        return cls(**{name: text[index:index + 1].upper() == "Y" for index, name in enumerate(names)})


REGISTRY: dict[str, type["Sip2Message"]] = {}


class Sip2Message(BaseModel):
    """Base of every message; subclasses set ``code`` and annotate their fields."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: ClassVar[str] = ""
    fixed_layout: ClassVar[tuple[tuple[str, Fixed], ...]] = ()
    var_layout: ClassVar[tuple[tuple[str, Var], ...]] = ()

    extra_fields: tuple[tuple[str, str], ...] = ()

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        fixed: list[tuple[str, Fixed]] = []
        variable: list[tuple[str, Var]] = []
        for name, info in cls.model_fields.items():
            layout = next((item for item in info.metadata if isinstance(item, (Fixed, Var))), None)
            if isinstance(layout, Fixed):
                if variable:
                    raise TypeError(f"{cls.__name__}.{name}: fixed fields must come before variable fields")
                fixed.append((name, layout))
            elif isinstance(layout, Var):
                variable.append((name, layout))
        cls.fixed_layout = tuple(fixed)
        cls.var_layout = tuple(variable)
        if cls.code:
            if cls.code in REGISTRY:
                raise TypeError(f"two SIP2 message classes for code {cls.code}")
            REGISTRY[cls.code] = cls

    @model_validator(mode="after")
    def _fits_the_wire(self) -> "Sip2Message":
        for name, layout in self.fixed_layout:
            value = getattr(self, name)
            if layout.kind is FixedKind.TEXT and (len(value) != layout.length or "|" in value):
                raise ValueError(f"{name} must be exactly {layout.length} characters without '|', got {value!r}")
            if layout.kind in (FixedKind.DIGITS, FixedKind.COUNT) and value is not None \
                    and not 0 <= value < 10**layout.length:
                raise ValueError(f"{name} must fit in {layout.length} digits")
        for code, _ in self.extra_fields:
            if len(code) != 2:
                raise ValueError(f"extra field id {code!r} must be two characters")
        return self


def fixed_length(cls: type[Sip2Message]) -> int:
    return sum(layout.length for _, layout in cls.fixed_layout)


# Aliases for fields many messages share.
Institution = Annotated[str, Var("AO", required=True)]
PatronId = Annotated[str, Var("AA", required=True)]
ItemId = Annotated[str, Var("AB", required=True)]
TerminalPassword = Annotated[str | None, Var("AC")]
PatronPassword = Annotated[str | None, Var("AD")]
ScreenMessage = Annotated[tuple[str, ...], Var("AF", VarKind.REPEAT)]
PrintLine = Annotated[tuple[str, ...], Var("AG", VarKind.REPEAT)]
ReasonField = Annotated[str | None, Var("ZR")]
MessageVi = Annotated[str | None, Var("ZV")]
MessageEn = Annotated[str | None, Var("ZE")]
Date = Annotated[datetime | None, Fixed(18, DATE)]
Language = Annotated[str, Fixed(3, TEXT)]


# --------------------------------------------------------------------------- 93 / 94 login


class LoginRequest(Sip2Message):
    code: ClassVar[str] = "93"
    uid_algorithm: Annotated[str, Fixed(1, TEXT)] = "0"
    pwd_algorithm: Annotated[str, Fixed(1, TEXT)] = "0"
    login_user_id: Annotated[str, Var("CN", required=True)] = ""
    login_password: Annotated[str, Var("CO", required=True)] = ""
    location_code: Annotated[str | None, Var("CP")] = None


class LoginResponse(Sip2Message):
    code: ClassVar[str] = "94"
    ok: Annotated[bool, Fixed(1, BIT)] = False


# --------------------------------------------------------------------------- 99 / 98 status


class ScStatus(Sip2Message):
    code: ClassVar[str] = "99"
    status_code: Annotated[int | None, Fixed(1, DIGITS)] = 0
    max_print_width: Annotated[int | None, Fixed(3, DIGITS)] = 80
    protocol_version: Annotated[str, Fixed(4, TEXT)] = "2.00"


class AcsStatus(Sip2Message):
    code: ClassVar[str] = "98"
    online_status: Annotated[bool, Fixed(1, YN)] = True
    checkin_ok: Annotated[bool, Fixed(1, YN)] = True
    checkout_ok: Annotated[bool, Fixed(1, YN)] = True
    acs_renewal_policy: Annotated[bool, Fixed(1, YN)] = True
    status_update_ok: Annotated[bool, Fixed(1, YN)] = False
    offline_ok: Annotated[bool, Fixed(1, YN)] = False
    timeout_period: Annotated[int | None, Fixed(3, DIGITS)] = 30
    retries_allowed: Annotated[int | None, Fixed(3, DIGITS)] = 3
    date_time_sync: Date = None
    protocol_version: Annotated[str, Fixed(4, TEXT)] = "2.00"
    institution_id: Institution = ""
    library_name: Annotated[str | None, Var("AM")] = None
    supported_messages: Annotated[str | None, Var("BX")] = None
    terminal_location: Annotated[str | None, Var("AN")] = None
    screen_message: ScreenMessage = ()
    print_line: PrintLine = ()


# Positions of the BX "supported messages" field.
SUPPORTED_MESSAGE_NAMES = (
    "patron_status", "checkout", "checkin", "block_patron", "sc_acs_status", "resend", "login", "patron_info",
    "end_session", "fee_paid", "item_info", "item_status_update", "patron_enable", "hold", "renew", "renew_all",
)


def supported_messages_field(supported: set[str]) -> str:
    return "".join("Y" if name in supported else "N" for name in SUPPORTED_MESSAGE_NAMES)


# --------------------------------------------------------------------------- 23 / 24 patron status


class PatronStatusRequest(Sip2Message):
    code: ClassVar[str] = "23"
    language: Language = "000"
    transaction_date: Date = None
    institution_id: Institution = ""
    patron_id: PatronId = ""
    terminal_password: Annotated[str, Var("AC", required=True)] = ""
    patron_password: Annotated[str, Var("AD", required=True)] = ""


class PatronStatusResponse(Sip2Message):
    code: ClassVar[str] = "24"
    patron_status: Annotated[PatronStatusFlags, Fixed(14, FixedKind.STATUS)] = PatronStatusFlags()
    language: Language = "000"
    transaction_date: Date = None
    institution_id: Institution = ""
    patron_id: PatronId = ""
    personal_name: Annotated[str, Var("AE", required=True)] = ""
    valid_patron: Annotated[bool | None, Var("BL", VarKind.YN)] = None
    valid_patron_password: Annotated[bool | None, Var("CQ", VarKind.YN)] = None
    currency_type: Annotated[str | None, Var("BH")] = None
    fee_amount: Annotated[str | None, Var("BV")] = None
    screen_message: ScreenMessage = ()
    print_line: PrintLine = ()
    reason_code: ReasonField = None
    message_vi: MessageVi = None
    message_en: MessageEn = None


# --------------------------------------------------------------------------- 63 / 64 patron information


class PatronInformationRequest(Sip2Message):
    code: ClassVar[str] = "63"
    language: Language = "000"
    transaction_date: Date = None
    summary: Annotated[SummaryKind | None, Fixed(10, FixedKind.SUMMARY)] = None
    institution_id: Institution = ""
    patron_id: PatronId = ""
    terminal_password: TerminalPassword = None
    patron_password: PatronPassword = None
    start_item: Annotated[int | None, Var("BP", VarKind.INT)] = None
    end_item: Annotated[int | None, Var("BQ", VarKind.INT)] = None


class PatronInformationResponse(Sip2Message):
    code: ClassVar[str] = "64"
    patron_status: Annotated[PatronStatusFlags, Fixed(14, FixedKind.STATUS)] = PatronStatusFlags()
    language: Language = "000"
    transaction_date: Date = None
    hold_items_count: Annotated[int | None, Fixed(4, COUNT)] = None
    overdue_items_count: Annotated[int | None, Fixed(4, COUNT)] = None
    charged_items_count: Annotated[int | None, Fixed(4, COUNT)] = None
    fine_items_count: Annotated[int | None, Fixed(4, COUNT)] = None
    recall_items_count: Annotated[int | None, Fixed(4, COUNT)] = None
    unavailable_holds_count: Annotated[int | None, Fixed(4, COUNT)] = None
    institution_id: Institution = ""
    patron_id: PatronId = ""
    personal_name: Annotated[str, Var("AE", required=True)] = ""
    hold_items_limit: Annotated[int | None, Var("BZ", VarKind.INT)] = None
    overdue_items_limit: Annotated[int | None, Var("CA", VarKind.INT)] = None
    charged_items_limit: Annotated[int | None, Var("CB", VarKind.INT)] = None
    valid_patron: Annotated[bool | None, Var("BL", VarKind.YN)] = None
    valid_patron_password: Annotated[bool | None, Var("CQ", VarKind.YN)] = None
    currency_type: Annotated[str | None, Var("BH")] = None
    fee_amount: Annotated[str | None, Var("BV")] = None
    fee_limit: Annotated[str | None, Var("CC")] = None
    hold_items: Annotated[tuple[str, ...], Var("AS", VarKind.REPEAT)] = ()
    overdue_items: Annotated[tuple[str, ...], Var("AT", VarKind.REPEAT)] = ()
    charged_items: Annotated[tuple[str, ...], Var("AU", VarKind.REPEAT)] = ()
    fine_items: Annotated[tuple[str, ...], Var("AV", VarKind.REPEAT)] = ()
    recall_items: Annotated[tuple[str, ...], Var("BU", VarKind.REPEAT)] = ()
    unavailable_hold_items: Annotated[tuple[str, ...], Var("CD", VarKind.REPEAT)] = ()
    home_address: Annotated[str | None, Var("BD")] = None
    email_address: Annotated[str | None, Var("BE")] = None
    home_phone_number: Annotated[str | None, Var("BF")] = None
    screen_message: ScreenMessage = ()
    print_line: PrintLine = ()
    reason_code: ReasonField = None
    message_vi: MessageVi = None
    message_en: MessageEn = None


# --------------------------------------------------------------------------- 11 / 12 checkout


class CheckoutRequest(Sip2Message):
    code: ClassVar[str] = "11"
    sc_renewal_policy: Annotated[bool, Fixed(1, YN)] = False
    no_block: Annotated[bool, Fixed(1, YN)] = False
    transaction_date: Date = None
    nb_due_date: Date = None
    institution_id: Institution = ""
    patron_id: PatronId = ""
    item_id: ItemId = ""
    terminal_password: Annotated[str, Var("AC", required=True)] = ""
    item_properties: Annotated[str | None, Var("CH")] = None
    patron_password: PatronPassword = None
    fee_acknowledged: Annotated[bool | None, Var("BO", VarKind.YN)] = None
    cancel: Annotated[bool | None, Var("BI", VarKind.YN)] = None


class CheckoutResponse(Sip2Message):
    code: ClassVar[str] = "12"
    ok: Annotated[bool, Fixed(1, BIT)] = False
    renewal_ok: Annotated[bool, Fixed(1, YN)] = False
    magnetic_media: Annotated[Tristate, Fixed(1, TRI)] = Tristate.UNKNOWN
    desensitize: Annotated[Tristate, Fixed(1, TRI)] = Tristate.NO
    transaction_date: Date = None
    institution_id: Institution = ""
    patron_id: PatronId = ""
    item_id: ItemId = ""
    title: Annotated[str, Var("AJ", required=True)] = ""
    due_date: Annotated[str, Var("AH", required=True)] = ""
    fee_type: Annotated[str | None, Var("BT")] = None
    security_inhibit: Annotated[bool | None, Var("CI", VarKind.YN)] = None
    currency_type: Annotated[str | None, Var("BH")] = None
    fee_amount: Annotated[str | None, Var("BV")] = None
    media_type: Annotated[str | None, Var("CK")] = None
    item_properties: Annotated[str | None, Var("CH")] = None
    transaction_id: Annotated[str | None, Var("BK")] = None
    screen_message: ScreenMessage = ()
    print_line: PrintLine = ()
    reason_code: ReasonField = None
    message_vi: MessageVi = None
    message_en: MessageEn = None


# --------------------------------------------------------------------------- 09 / 10 checkin


class CheckinRequest(Sip2Message):
    code: ClassVar[str] = "09"
    no_block: Annotated[bool, Fixed(1, YN)] = False
    transaction_date: Date = None
    return_date: Date = None
    current_location: Annotated[str, Var("AP", required=True)] = ""
    institution_id: Institution = ""
    item_id: ItemId = ""
    terminal_password: Annotated[str, Var("AC", required=True)] = ""
    item_properties: Annotated[str | None, Var("CH")] = None
    cancel: Annotated[bool | None, Var("BI", VarKind.YN)] = None


class CheckinResponse(Sip2Message):
    code: ClassVar[str] = "10"
    ok: Annotated[bool, Fixed(1, BIT)] = False
    resensitize: Annotated[Tristate, Fixed(1, TRI)] = Tristate.YES
    magnetic_media: Annotated[Tristate, Fixed(1, TRI)] = Tristate.UNKNOWN
    alert: Annotated[bool, Fixed(1, YN)] = False
    transaction_date: Date = None
    institution_id: Institution = ""
    item_id: ItemId = ""
    permanent_location: Annotated[str, Var("AQ", required=True)] = ""
    title: Annotated[str | None, Var("AJ")] = None
    sort_bin: Annotated[str | None, Var("CL")] = None
    patron_id: Annotated[str | None, Var("AA")] = None
    media_type: Annotated[str | None, Var("CK")] = None
    item_properties: Annotated[str | None, Var("CH")] = None
    destination_location: Annotated[str | None, Var("CT")] = None
    alert_type: Annotated[str | None, Var("CV")] = None
    hold_patron_id: Annotated[str | None, Var("CY")] = None
    hold_patron_name: Annotated[str | None, Var("DA")] = None
    currency_type: Annotated[str | None, Var("BH")] = None
    fee_amount: Annotated[str | None, Var("BV")] = None
    hold_pickup_date: Annotated[str | None, Var("CM")] = None
    screen_message: ScreenMessage = ()
    print_line: PrintLine = ()
    reason_code: ReasonField = None
    message_vi: MessageVi = None
    message_en: MessageEn = None


# --------------------------------------------------------------------------- 17 / 18 item information


class ItemInformationRequest(Sip2Message):
    code: ClassVar[str] = "17"
    transaction_date: Date = None
    institution_id: Institution = ""
    item_id: ItemId = ""
    terminal_password: TerminalPassword = None


class ItemInformationResponse(Sip2Message):
    code: ClassVar[str] = "18"
    circulation_status: Annotated[str, Fixed(2, TEXT)] = CirculationStatus.OTHER
    security_marker: Annotated[str, Fixed(2, TEXT)] = "02"
    fee_type: Annotated[str, Fixed(2, TEXT)] = "01"
    transaction_date: Date = None
    hold_queue_length: Annotated[int | None, Var("CF", VarKind.INT)] = None
    due_date: Annotated[str | None, Var("AH")] = None
    recall_date: Annotated[str | None, Var("CJ")] = None
    hold_pickup_date: Annotated[str | None, Var("CM")] = None
    item_id: ItemId = ""
    title: Annotated[str, Var("AJ", required=True)] = ""
    owner: Annotated[str | None, Var("BG")] = None
    currency_type: Annotated[str | None, Var("BH")] = None
    fee_amount: Annotated[str | None, Var("BV")] = None
    media_type: Annotated[str | None, Var("CK")] = None
    permanent_location: Annotated[str | None, Var("AQ")] = None
    current_location: Annotated[str | None, Var("AP")] = None
    item_properties: Annotated[str | None, Var("CH")] = None
    screen_message: ScreenMessage = ()
    print_line: PrintLine = ()
    reason_code: ReasonField = None
    message_vi: MessageVi = None
    message_en: MessageEn = None


# --------------------------------------------------------------------------- 29 / 30 renew


class RenewRequest(Sip2Message):
    code: ClassVar[str] = "29"
    third_party_allowed: Annotated[bool, Fixed(1, YN)] = False
    no_block: Annotated[bool, Fixed(1, YN)] = False
    transaction_date: Date = None
    nb_due_date: Date = None
    institution_id: Institution = ""
    patron_id: PatronId = ""
    patron_password: PatronPassword = None
    item_id: Annotated[str | None, Var("AB")] = None
    title: Annotated[str | None, Var("AJ")] = None
    terminal_password: TerminalPassword = None
    item_properties: Annotated[str | None, Var("CH")] = None
    fee_acknowledged: Annotated[bool | None, Var("BO", VarKind.YN)] = None


class RenewResponse(Sip2Message):
    code: ClassVar[str] = "30"
    ok: Annotated[bool, Fixed(1, BIT)] = False
    renewal_ok: Annotated[bool, Fixed(1, YN)] = False
    magnetic_media: Annotated[Tristate, Fixed(1, TRI)] = Tristate.UNKNOWN
    desensitize: Annotated[Tristate, Fixed(1, TRI)] = Tristate.UNKNOWN
    transaction_date: Date = None
    institution_id: Institution = ""
    patron_id: PatronId = ""
    item_id: ItemId = ""
    title: Annotated[str, Var("AJ", required=True)] = ""
    due_date: Annotated[str, Var("AH", required=True)] = ""
    fee_type: Annotated[str | None, Var("BT")] = None
    security_inhibit: Annotated[bool | None, Var("CI", VarKind.YN)] = None
    currency_type: Annotated[str | None, Var("BH")] = None
    fee_amount: Annotated[str | None, Var("BV")] = None
    media_type: Annotated[str | None, Var("CK")] = None
    item_properties: Annotated[str | None, Var("CH")] = None
    transaction_id: Annotated[str | None, Var("BK")] = None
    screen_message: ScreenMessage = ()
    print_line: PrintLine = ()
    reason_code: ReasonField = None
    message_vi: MessageVi = None
    message_en: MessageEn = None


# --------------------------------------------------------------------------- 35 / 36 end session


class EndPatronSessionRequest(Sip2Message):
    code: ClassVar[str] = "35"
    transaction_date: Date = None
    institution_id: Institution = ""
    patron_id: PatronId = ""
    terminal_password: TerminalPassword = None
    patron_password: PatronPassword = None


class EndSessionResponse(Sip2Message):
    code: ClassVar[str] = "36"
    end_session: Annotated[bool, Fixed(1, YN)] = True
    transaction_date: Date = None
    institution_id: Institution = ""
    patron_id: PatronId = ""
    screen_message: ScreenMessage = ()
    print_line: PrintLine = ()


# --------------------------------------------------------------------------- 37 / 38 fee paid


class FeePaidRequest(Sip2Message):
    code: ClassVar[str] = "37"
    transaction_date: Date = None
    fee_type: Annotated[str, Fixed(2, TEXT)] = "01"
    payment_type: Annotated[str, Fixed(2, TEXT)] = "00"
    currency_type: Annotated[str, Fixed(3, TEXT)] = "VND"
    institution_id: Institution = ""
    patron_id: PatronId = ""
    terminal_password: TerminalPassword = None
    patron_password: PatronPassword = None
    fee_amount: Annotated[str, Var("BV", required=True)] = ""
    fee_identifier: Annotated[str | None, Var("CG")] = None
    transaction_id: Annotated[str | None, Var("BK")] = None


class FeePaidResponse(Sip2Message):
    code: ClassVar[str] = "38"
    payment_accepted: Annotated[bool, Fixed(1, YN)] = False
    transaction_date: Date = None
    institution_id: Institution = ""
    patron_id: PatronId = ""
    transaction_id: Annotated[str | None, Var("BK")] = None
    screen_message: ScreenMessage = ()
    print_line: PrintLine = ()
    reason_code: ReasonField = None
    message_vi: MessageVi = None
    message_en: MessageEn = None


# --------------------------------------------------------------------------- 96 / 97 resend


class RequestScResend(Sip2Message):
    """96: the ACS could not read the last request (bad checksum): send it again."""

    code: ClassVar[str] = "96"


class RequestAcsResend(Sip2Message):
    """97: the SC could not read the last answer: send it again."""

    code: ClassVar[str] = "97"


RESEND_CODES = frozenset({"96", "97"})

# Which answer each request expects.
ANSWER_CODE = {"93": "94", "99": "98", "23": "24", "63": "64", "11": "12", "09": "10", "17": "18", "29": "30",
               "35": "36", "37": "38"}
