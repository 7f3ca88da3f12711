"""The one circulation interface the kiosk flows, the gate and the SIP2 server use.

Two implementations: :class:`backend.circulation.service.StoreCirculation` (the
standalone one; :class:`backend.circulation.memory.MemoryCirculation` is it over
an in-memory store) and :class:`backend.sip2.circulation.Sip2Circulation` (asks
the library system over SIP2).  :func:`backend.circulation.factory.build_circulation`
picks one from configuration.

Threading: the interface is synchronous, because SIP2 is a blocking
request/answer protocol and the standalone store is a database transaction.
Every implementation is safe to call from several threads at once (the SIP2
server serves each terminal on its own thread; FastAPI runs sync endpoints in a
thread pool).  From asyncio code, call it through ``asyncio.to_thread``.

Idempotency: ``checkout``, ``checkin`` and ``record_payment`` take an
``idempotency_key`` (the kiosk makes one per physical action, e.g. a UUID).
Repeating a call with the same key returns the first answer without a second
transaction, so a kiosk may retry after a timeout.

Refusals are results (``ok=False`` with a :class:`ReasonCode` and a bilingual
message), never exceptions.  A library system that cannot be reached gives
``SYSTEM_UNAVAILABLE`` (or ``OFFLINE_RECORDED`` when offline circulation is on).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from backend.circulation.messages import Bilingual, ReasonCode
from backend.circulation.model import HoldStatus, ItemStatus, SortHint


class Tristate(StrEnum):
    """A security instruction from the library system: yes, no, or "unknown: follow local policy"."""

    YES = "Y"
    NO = "N"
    UNKNOWN = "U"


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Result(_Out):
    ok: bool
    reason: ReasonCode
    message: Bilingual
    detail: str | None = Field(default=None, description="the library system's own screen message, if any")


class SystemStatus(_Out):
    online: bool
    checkout_ok: bool
    checkin_ok: bool
    renewal_ok: bool
    offline_ok: bool = False
    institution_id: str = ""
    library_name: str = ""
    detail: str | None = None


class PatronStatus(Result):
    """``ok``: the card is known and the PIN, if given, is right.  Whether the patron may
    borrow is ``may_borrow``; ``reason`` names the first block when there is one."""

    card_id: str
    found: bool
    name: str = ""
    pin_valid: bool | None = Field(default=None, description="None when no PIN was given")
    may_borrow: bool = False
    may_renew: bool = False
    blocks: tuple[ReasonCode, ...] = ()
    expires_on: date | None = None
    fines_owed: Decimal | None = None
    currency: str = ""
    loans: int | None = None
    overdue: int | None = None
    holds_ready: int | None = None


class CheckoutResult(Result):
    card_id: str
    item_id: str
    title: str = ""
    due_at: datetime | None = None
    desensitize: Tristate = Tristate.NO
    offline: bool = Field(default=False, description="recorded locally; the library system will get it later")
    overridden: tuple[ReasonCode, ...] = ()


class CheckinResult(Result):
    item_id: str
    title: str = ""
    resensitize: Tristate = Tristate.YES
    fine_due: Decimal | None = Field(default=None, description="None when the library system does not say")
    sort: SortHint = SortHint.SHELVE
    destination: str | None = None
    hold_ready: bool = Field(default=False, description="the item now waits on the hold shelf for someone")
    pickup_expires_at: datetime | None = None
    offline: bool = False


class RenewResult(Result):
    card_id: str
    item_id: str
    title: str = ""
    due_at: datetime | None = None
    renewals_left: int | None = None


class RenewAllResult(Result):
    card_id: str
    renewed: tuple[RenewResult, ...] = ()
    refused: tuple[RenewResult, ...] = ()


class ItemInfo(Result):
    item_id: str
    found: bool
    title: str = ""
    author: str = ""
    item_type: str | None = None
    status: ItemStatus | None = None
    due_at: datetime | None = None
    hold_queue_length: int | None = None
    in_library_only: bool | None = None
    home_branch: str = ""
    location: str = ""


class LoanView(_Out):
    item_id: str
    title: str = ""
    due_at: datetime | None = None
    overdue: bool = False
    renewals: int | None = None
    fine_accruing: Decimal | None = None


class HoldView(_Out):
    hold_id: str | None = None
    item_id: str | None = None
    record_id: str | None = None
    title: str = ""
    status: HoldStatus = HoldStatus.PENDING
    pickup_branch: str = ""
    pickup_expires_at: datetime | None = None


class FineView(_Out):
    fine_id: str | None = None
    amount: Decimal | None = None
    description: str = ""
    item_id: str | None = None


class PatronAccount(Result):
    card_id: str
    found: bool
    name: str = ""
    loans: tuple[LoanView, ...] = ()
    holds: tuple[HoldView, ...] = ()
    fines: tuple[FineView, ...] = ()
    fines_total: Decimal | None = None
    currency: str = ""


class PaymentResult(Result):
    card_id: str
    amount: Decimal
    transaction_id: str | None = None


@runtime_checkable
class Circulation(Protocol):
    """What the kiosk, the gate and the SIP2 server need from a circulation system.

    ``now`` is when the transaction happened (None: the implementation's clock);
    give it only when replaying what happened earlier, e.g. offline transactions.
    """

    def system_status(self) -> SystemStatus: ...

    def patron_status(self, card_id: str, pin: str | None = None) -> PatronStatus: ...

    def patron_account(self, card_id: str) -> PatronAccount: ...

    def item_info(self, item_id: str) -> ItemInfo: ...

    def checkout(self, card_id: str, item_id: str, *, idempotency_key: str, no_block: bool = False,
                 now: datetime | None = None) -> CheckoutResult: ...

    def checkin(self, item_id: str, *, idempotency_key: str, no_block: bool = False,
                now: datetime | None = None, branch: str | None = None) -> CheckinResult: ...

    def renew(self, card_id: str, item_id: str, *, now: datetime | None = None) -> RenewResult: ...

    def renew_all(self, card_id: str, *, now: datetime | None = None) -> RenewAllResult: ...

    def record_payment(self, card_id: str, amount: Decimal, *, idempotency_key: str,
                       fee_id: str | None = None, now: datetime | None = None) -> PaymentResult: ...

    def close(self) -> None: ...


def should_desensitize(result: CheckoutResult, *, when_unknown: bool) -> bool:
    """Turn the tag's security off only after a successful checkout the library system allows.

    ``N`` keeps the alarm (e.g. in-house items); ``U`` follows the site's policy.
    """
    if not result.ok:
        return False
    if result.desensitize is Tristate.UNKNOWN:
        return when_unknown
    return result.desensitize is Tristate.YES


def should_resensitize(result: CheckinResult, *, when_unknown: bool = True) -> bool:
    """Turn the tag's security back on after a check-in unless the library system says not to."""
    if result.resensitize is Tristate.UNKNOWN:
        return when_unknown
    return result.resensitize is Tristate.YES

