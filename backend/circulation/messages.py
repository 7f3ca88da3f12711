"""The message catalogue: every reason code and its text in Vietnamese and English.

One module owns all patron-facing wording, so a translator edits one file and a
reason code can never reach the kiosk without a sentence in both languages.
Parameters are formatted per language: dates as ``dd/mm/yyyy`` in Vietnamese and
``29 Jan 2024`` in English; amounts with the currency code and the thousands
separator each language expects.
"""

from __future__ import annotations

import functools
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

Language = Literal["vi", "en"]


class ReasonCode(StrEnum):
    """Why a circulation request was allowed or refused (stable strings; safe to store)."""

    # success and information
    OK = "ok"
    PATRON_OK = "patron_ok"
    CHECKED_OUT = "checked_out"
    RETURNED = "returned"
    RETURNED_HOLD_HERE = "returned_hold_here"
    RETURNED_TRANSIT = "returned_transit"
    NOT_ON_LOAN = "not_on_loan"
    RENEWED = "renewed"
    FINE_CHARGED = "fine_charged"
    PAYMENT_RECORDED = "payment_recorded"
    OFFLINE_RECORDED = "offline_recorded"
    # refusals: the patron
    UNKNOWN_PATRON = "unknown_patron"
    WRONG_PIN = "wrong_pin"
    PATRON_EXPIRED = "patron_expired"
    PATRON_BLOCKED = "patron_blocked"
    FINES_OVER_LIMIT = "fines_over_limit"
    MAX_LOANS_REACHED = "max_loans_reached"
    # refusals: the item
    UNKNOWN_ITEM = "unknown_item"
    ITEM_IN_LIBRARY_ONLY = "item_in_library_only"
    ITEM_NOT_LOANABLE = "item_not_loanable"
    ITEM_NOT_AVAILABLE = "item_not_available"
    ALREADY_ON_LOAN_TO_PATRON = "already_on_loan_to_patron"
    ON_LOAN_TO_OTHER = "on_loan_to_other"
    ON_HOLD_FOR_OTHER = "on_hold_for_other"
    # refusals: renewals
    NOT_LOANED_TO_PATRON = "not_loaned_to_patron"
    RENEWAL_LIMIT = "renewal_limit"
    RENEWAL_BLOCKED_BY_HOLD = "renewal_blocked_by_hold"
    # refusals: payments, requests, systems
    INVALID_AMOUNT = "invalid_amount"
    DUPLICATE_REQUEST = "duplicate_request"
    SYSTEM_UNAVAILABLE = "system_unavailable"
    LIBRARY_SYSTEM_REFUSED = "library_system_refused"


class Bilingual(BaseModel):
    """One sentence in both languages the kiosk offers."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    vi: str
    en: str

    def in_language(self, language: Language) -> str:
        return self.vi if language == "vi" else self.en

    def __add__(self, other: "Bilingual") -> "Bilingual":
        return Bilingual(vi=_join(self.vi, other.vi), en=_join(self.en, other.en))


def _join(first: str, second: str) -> str:
    return f"{first} {second}".strip()


_CATALOGUE: dict[ReasonCode, tuple[str, str]] = {
    ReasonCode.OK: ("Thành công.", "Done."),
    ReasonCode.PATRON_OK: ("Thẻ bạn đọc hợp lệ.", "Your library card is valid."),
    ReasonCode.CHECKED_OUT: ("Mượn thành công. Hạn trả: {due}.", "Checked out. Due back on {due}."),
    ReasonCode.RETURNED: ("Trả tài liệu thành công. Xin cảm ơn!", "Returned. Thank you!"),
    ReasonCode.RETURNED_HOLD_HERE: (
        "Trả tài liệu thành công. Tài liệu này có bạn đọc khác đặt trước — vui lòng để lại tại quầy thủ thư.",
        "Returned. Another reader is waiting for this item — please leave it at the desk.",
    ),
    ReasonCode.RETURNED_TRANSIT: (
        "Trả tài liệu thành công. Tài liệu cần chuyển về {branch} — vui lòng để lại tại quầy thủ thư.",
        "Returned. This item must go to {branch} — please leave it at the desk.",
    ),
    ReasonCode.NOT_ON_LOAN: (
        "Tài liệu này không có trong danh sách đang mượn; đã ghi nhận trả.",
        "This item was not on loan; it has been checked in.",
    ),
    ReasonCode.RENEWED: ("Gia hạn thành công. Hạn trả mới: {due}.", "Renewed. New due date: {due}."),
    ReasonCode.FINE_CHARGED: ("Phí trả muộn: {amount}.", "Overdue fine: {amount}."),
    ReasonCode.PAYMENT_RECORDED: ("Đã ghi nhận khoản thanh toán {amount}.", "Payment of {amount} recorded."),
    ReasonCode.OFFLINE_RECORDED: (
        "Hệ thống thư viện tạm thời không kết nối được; giao dịch đã được ghi lại và sẽ được gửi sau.",
        "The library system is unreachable; the transaction has been recorded and will be sent later.",
    ),
    ReasonCode.UNKNOWN_PATRON: ("Không tìm thấy thẻ bạn đọc này.", "This library card is not recognised."),
    ReasonCode.WRONG_PIN: ("Mã PIN không đúng.", "The PIN is incorrect."),
    ReasonCode.PATRON_EXPIRED: (
        "Thẻ bạn đọc đã hết hạn ngày {date}. Vui lòng liên hệ quầy thủ thư.",
        "Your library card expired on {date}. Please see the staff at the desk.",
    ),
    ReasonCode.PATRON_BLOCKED: (
        "Thẻ bạn đọc đang bị khóa. Vui lòng liên hệ quầy thủ thư.",
        "Your library card is blocked. Please see the staff at the desk.",
    ),
    ReasonCode.FINES_OVER_LIMIT: (
        "Bạn đang nợ {amount}, vượt mức cho phép. Vui lòng thanh toán tại quầy thủ thư.",
        "You owe {amount}, more than the limit allows. Please pay at the desk.",
    ),
    ReasonCode.MAX_LOANS_REACHED: (
        "Bạn đã mượn đủ số lượng tối đa ({limit} tài liệu).",
        "You have reached your limit of {limit} loans.",
    ),
    ReasonCode.UNKNOWN_ITEM: (
        "Không nhận ra tài liệu này. Vui lòng mang đến quầy thủ thư.",
        "This item is not recognised. Please take it to the desk.",
    ),
    ReasonCode.ITEM_IN_LIBRARY_ONLY: (
        "Tài liệu này chỉ được đọc tại thư viện.",
        "This item is for use in the library only.",
    ),
    ReasonCode.ITEM_NOT_LOANABLE: (
        "Loại tài liệu này không được cho mượn.",
        "This type of item cannot be borrowed.",
    ),
    ReasonCode.ITEM_NOT_AVAILABLE: (
        "Tài liệu này hiện không thể cho mượn. Vui lòng mang đến quầy thủ thư.",
        "This item cannot be borrowed right now. Please take it to the desk.",
    ),
    ReasonCode.ALREADY_ON_LOAN_TO_PATRON: (
        "Bạn đang mượn tài liệu này (hạn trả {due}).",
        "You already have this item on loan (due back on {due}).",
    ),
    ReasonCode.ON_LOAN_TO_OTHER: (
        "Tài liệu này đang được bạn đọc khác mượn. Vui lòng mang đến quầy thủ thư.",
        "This item is on loan to another reader. Please take it to the desk.",
    ),
    ReasonCode.ON_HOLD_FOR_OTHER: (
        "Tài liệu này đã được bạn đọc khác đặt trước.",
        "This item is on hold for another reader.",
    ),
    ReasonCode.NOT_LOANED_TO_PATRON: (
        "Tài liệu này không có trong danh sách bạn đang mượn.",
        "This item is not on loan to you.",
    ),
    ReasonCode.RENEWAL_LIMIT: (
        "Tài liệu này đã được gia hạn tối đa {limit} lần.",
        "This item has already been renewed the maximum of {limit} times.",
    ),
    ReasonCode.RENEWAL_BLOCKED_BY_HOLD: (
        "Không thể gia hạn vì tài liệu đã có bạn đọc khác đặt trước.",
        "Cannot renew: another reader has placed a hold on this item.",
    ),
    ReasonCode.INVALID_AMOUNT: ("Số tiền thanh toán không hợp lệ.", "The payment amount is not valid."),
    ReasonCode.DUPLICATE_REQUEST: (
        "Mã giao dịch này đã được dùng cho một yêu cầu khác.",
        "This transaction id was already used for a different request.",
    ),
    ReasonCode.SYSTEM_UNAVAILABLE: (
        "Hệ thống thư viện tạm thời không kết nối được. Vui lòng thử lại sau hoặc liên hệ quầy thủ thư.",
        "The library system is unreachable. Please try again later or see the staff at the desk.",
    ),
    ReasonCode.LIBRARY_SYSTEM_REFUSED: (
        "Hệ thống thư viện từ chối yêu cầu: {detail}",
        "The library system refused the request: {detail}",
    ),
}

_MONTHS_EN = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# Currencies without minor units are shown without decimals.
_WHOLE_CURRENCIES = {"VND", "JPY", "KRW", "IDR"}


def message(code: ReasonCode, *, currency: str = "VND", **params: Any) -> Bilingual:
    """The sentence for ``code`` in both languages, with ``params`` filled in.

    ``datetime`` / ``date`` parameters become dates, ``Decimal`` ones amounts in
    ``currency``; a parameter the template does not use is ignored, and one it
    needs but was not given shows as ``?`` rather than failing.
    """
    try:
        key = tuple((name, type(value), _shown(value)) for name, value in params.items())
        return _cached_message(code, currency, key)
    except TypeError:  # an unhashable parameter: nothing to remember it by
        return _build_message(code, currency, params)


def _shown(value: Any) -> Any:
    """What formatting depends on: a datetime shows its wall-clock time, whatever its zone."""
    return value.replace(tzinfo=None) if isinstance(value, datetime) else value


@functools.lru_cache(maxsize=4096)
def _cached_message(code: ReasonCode, currency: str, key: tuple[tuple[str, type, Any], ...]) -> Bilingual:
    # Every checkout of a day has the same due date: the same sentence, formatted once (Bilingual is frozen).
    return _build_message(code, currency, {name: value for name, _, value in key})


def _build_message(code: ReasonCode, currency: str, params: dict[str, Any]) -> Bilingual:
    vi_template, en_template = _CATALOGUE[code]
    return Bilingual(
        vi=_fill(vi_template, "vi", currency, params),
        en=_fill(en_template, "en", currency, params),
    )


def has_text(code: ReasonCode) -> bool:
    return code in _CATALOGUE


class _Defaulting(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "?"


def _fill(template: str, language: Language, currency: str, params: dict[str, Any]) -> str:
    formatted = _Defaulting({key: format_value(value, language, currency) for key, value in params.items()})
    return template.format_map(formatted)


def format_value(value: Any, language: Language, currency: str = "VND") -> str:
    if isinstance(value, datetime):
        return format_datetime(value, language)
    if isinstance(value, date):
        return format_date(value, language)
    if isinstance(value, Decimal):
        return format_money(value, currency, language)
    return str(value)


def format_date(value: date, language: Language) -> str:
    if language == "vi":
        return f"{value.day:02d}/{value.month:02d}/{value.year}"
    return f"{value.day} {_MONTHS_EN[value.month - 1]} {value.year}"


def format_datetime(value: datetime, language: Language) -> str:
    """A due date shows its time only when it is not the end of a day (hourly loans)."""
    text = format_date(value.date(), language)
    if (value.hour, value.minute) in ((23, 59), (0, 0)):
        return text
    clock = f"{value.hour:02d}:{value.minute:02d}"
    return f"{clock} {text}" if language == "vi" else f"{text}, {clock}"


def format_money(amount: Decimal, currency: str, language: Language) -> str:
    places = 0 if currency.upper() in _WHOLE_CURRENCIES else 2
    text = f"{amount:,.{places}f}"
    if language == "vi":
        text = text.replace(",", "\x00").replace(".", ",").replace("\x00", ".")
    return f"{text} {currency.upper()}"
