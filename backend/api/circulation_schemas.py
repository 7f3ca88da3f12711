"""Request and response bodies of the staff circulation API (patrons, items, loans, holds, rules, fines).

Identifiers: a patron is named by their patron number (``patron_id``; it is also
their first card), an item by its barcode (``item_id``). Bodies refuse unknown
fields and bad values with 422 before anything is written.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from backend.circulation.model import HoldStatus, ItemStatus
from backend.db.models import CardKind

# A barcode or card number travels through SIP2 (where "|" separates fields), URLs and receipts.
CODE_PATTERN = r"^[^\s|/\x00-\x1f\x7f]{1,64}$"
UID_PATTERN = r"^[0-9A-F]{16}$"
WORD_PATTERN = r"^[A-Za-z0-9_.*-]{1,32}$"
BRANCH_PATTERN = r"^[A-Za-z0-9_.-]{0,32}$"
EMAIL_PATTERN = r"^[^@\s]{1,64}@[^@\s]{1,189}\.[^@\s]{1,60}$"
PIN_PATTERN = r"^[0-9]{4,12}$"
# Statuses staff may set by hand; loans and holds set the others.
MANUAL_STATUSES = (ItemStatus.AVAILABLE, ItemStatus.IN_PROCESS, ItemStatus.IN_TRANSIT, ItemStatus.LOST,
                   ItemStatus.MISSING, ItemStatus.WITHDRAWN)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Page(Strict):
    total: int
    offset: int
    limit: int


# --------------------------------------------------------------------------- patrons


class CardIn(Strict):
    card_id: str = Field(pattern=CODE_PATTERN, description="barcode, NFC UID or RFID card number")
    kind: CardKind = CardKind.BARCODE


class CardOut(Strict):
    card_id: str
    kind: CardKind


class PatronFields(Strict):
    name: str = Field(min_length=1, max_length=200)
    category: str = Field(default="adult", pattern=WORD_PATTERN)
    email: str | None = Field(default=None, pattern=EMAIL_PATTERN, max_length=254)
    expires_on: date | None = None
    home_branch: str = Field(default="", pattern=BRANCH_PATTERN)


class PatronCreate(PatronFields):
    patron_id: str = Field(pattern=CODE_PATTERN, description="the patron number; also their first card")
    pin: str | None = Field(default=None, pattern=PIN_PATTERN, description="4-12 digits; stored as an argon2 hash")
    cards: list[CardIn] = Field(default_factory=list, max_length=20, description="further cards")


class PatronUpdate(Strict):
    """Only the fields sent change; ``null`` clears e-mail and expiry."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    category: str | None = Field(default=None, pattern=WORD_PATTERN)
    email: str | None = Field(default=None, pattern=EMAIL_PATTERN, max_length=254)
    expires_on: date | None = None
    home_branch: str | None = Field(default=None, pattern=BRANCH_PATTERN)

    @model_validator(mode="after")
    def _required_stay_set(self) -> "PatronUpdate":
        for name in ("name", "category", "home_branch"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class PatronOut(Strict):
    patron_id: str
    name: str
    category: str
    email: str | None
    expires_on: date | None
    home_branch: str
    blocked: bool
    block_reason: str | None
    has_pin: bool
    cards: list[CardOut]
    open_loans: int
    fines_owed: Decimal


class PatronPage(Page):
    patrons: list[PatronOut]


class BlockRequest(Strict):
    reason: str = Field(min_length=1, max_length=200)


class PinRequest(Strict):
    pin: str = Field(pattern=PIN_PATTERN)


# --------------------------------------------------------------------------- items


class TagIn(Strict):
    uid: str = Field(pattern=UID_PATTERN, description="ISO 15693 UID, 16 upper-case hex digits")
    part: int = Field(default=1, ge=1, le=99)


class TagOut(Strict):
    uid: str
    part: int


class ItemFields(Strict):
    title: str = Field(min_length=1, max_length=500)
    author: str = Field(default="", max_length=300)
    record_id: str | None = Field(default=None, pattern=CODE_PATTERN)
    isbn: str | None = Field(default=None, pattern=r"^[0-9Xx-]{10,17}$")
    publisher: str = Field(default="", max_length=200)
    year: int | None = Field(default=None, ge=1000, le=2999)
    call_number: str = Field(default="", max_length=100)
    item_type: str = Field(default="book", pattern=WORD_PATTERN)
    parts: int = Field(default=1, ge=1, le=99)
    home_branch: str = Field(default="", pattern=BRANCH_PATTERN)
    holding_branch: str = Field(default="", pattern=BRANCH_PATTERN)
    location: str = Field(default="", max_length=100)
    in_library_only: bool = False


class ItemCreate(ItemFields):
    item_id: str = Field(pattern=CODE_PATTERN, description="the item's barcode")
    status: Literal[MANUAL_STATUSES] = ItemStatus.AVAILABLE  # type: ignore[valid-type]
    tags: list[TagIn] = Field(default_factory=list, max_length=99)


class ItemUpdate(Strict):
    """Only the fields sent change; a status set by hand must be one staff may set."""

    title: str | None = Field(default=None, min_length=1, max_length=500)
    author: str | None = Field(default=None, max_length=300)
    record_id: str | None = Field(default=None, pattern=CODE_PATTERN)
    isbn: str | None = Field(default=None, pattern=r"^[0-9Xx-]{10,17}$")
    publisher: str | None = Field(default=None, max_length=200)
    year: int | None = Field(default=None, ge=1000, le=2999)
    call_number: str | None = Field(default=None, max_length=100)
    item_type: str | None = Field(default=None, pattern=WORD_PATTERN)
    parts: int | None = Field(default=None, ge=1, le=99)
    home_branch: str | None = Field(default=None, pattern=BRANCH_PATTERN)
    holding_branch: str | None = Field(default=None, pattern=BRANCH_PATTERN)
    location: str | None = Field(default=None, max_length=100)
    in_library_only: bool | None = None
    status: Literal[MANUAL_STATUSES] | None = None  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _required_stay_set(self) -> "ItemUpdate":
        nullable = {"record_id", "isbn", "year"}
        for name in self.model_fields_set - nullable:
            if getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class TagsReplace(Strict):
    tags: list[TagIn] = Field(max_length=99)


class ItemOut(ItemFields):
    item_id: str
    status: ItemStatus
    tags: list[TagOut]
    updated_at: datetime | None


class ItemPage(Page):
    items: list[ItemOut]


class CatalogItem(Strict):
    """What a kiosk shows for an item id: nothing about who has it."""

    item_id: str
    title: str
    author: str
    parts: int


class KioskEmail(Strict):
    email: str


# --------------------------------------------------------------------------- loans


class LoanRequest(Strict):
    item_id: str = Field(pattern=CODE_PATTERN)
    patron_barcode: str = Field(pattern=CODE_PATTERN, description="any card of the patron (or the patron number)")
    no_block: bool = Field(default=False, description="override refusals (staff decision; listed in the answer)")
    idempotency_key: str | None = Field(default=None, min_length=8, max_length=64,
                                        description="repeat a request safely: the same key gives the same answer")


class ReturnRequest(Strict):
    item_id: str = Field(pattern=CODE_PATTERN)
    idempotency_key: str | None = Field(default=None, min_length=8, max_length=64)


class RenewRequest(Strict):
    patron_barcode: str | None = Field(default=None, pattern=CODE_PATTERN,
                                       description="needed in SIP2 mode; otherwise the loan's patron")


class LoanOut(Strict):
    id: int | None = Field(description="the loan record (standalone mode)")
    item_id: str
    patron_barcode: str | None
    checked_out_at: datetime | None
    due_at: datetime | None
    returned_at: datetime | None
    renewals: int | None = None
    overdue: bool | None = None
    code: str | None = Field(default=None, description="reason code of the circulation answer")
    message_vi: str | None = None
    message_en: str | None = None
    sort_hint: str | None = Field(default=None, description="after a return: shelve, hold_shelf or transit")
    fine_due: Decimal | None = None


class LoanPage(Page):
    loans: list[LoanOut]


# --------------------------------------------------------------------------- holds


class HoldCreate(Strict):
    patron_id: str = Field(pattern=CODE_PATTERN)
    record_id: str | None = Field(default=None, pattern=CODE_PATTERN, description="any item of this record")
    item_id: str | None = Field(default=None, pattern=CODE_PATTERN, description="this item only")
    pickup_branch: str = Field(default="", pattern=BRANCH_PATTERN)

    @model_validator(mode="after")
    def _one_target(self) -> "HoldCreate":
        if (self.record_id is None) == (self.item_id is None):
            raise ValueError("give exactly one of record_id or item_id")
        return self


class HoldOut(Strict):
    hold_id: str
    patron_id: str
    record_id: str | None
    item_id: str | None
    status: HoldStatus
    pickup_branch: str
    placed_at: datetime
    pickup_expires_at: datetime | None
    ended_at: datetime | None
    end_reason: str | None


# --------------------------------------------------------------------------- fines and payments


class FineCreate(Strict):
    patron_id: str = Field(pattern=CODE_PATTERN)
    amount: Decimal = Field(gt=0, max_digits=14, decimal_places=2)
    kind: Literal["manual", "damage", "lost"] = "manual"
    item_id: str | None = Field(default=None, pattern=CODE_PATTERN)
    description: str = Field(default="", max_length=500)


class FineOut(Strict):
    fine_id: str
    patron_id: str
    kind: str
    amount: Decimal
    outstanding: Decimal
    item_id: str | None
    created_at: datetime
    description: str


class PaymentRequest(Strict):
    amount: Decimal = Field(gt=0, max_digits=14, decimal_places=2)
    fine_id: str | None = Field(default=None, max_length=64, description="pay this fine only (else oldest first)")
    idempotency_key: str | None = Field(default=None, min_length=8, max_length=64)


class PaymentOut(Strict):
    transaction_id: str | None
    amount: Decimal
    code: str
    message_vi: str
    message_en: str
