"""The facts circulation decides on, the rules, and the decisions.

Everything here is an immutable pydantic model: the store builds facts, the pure
functions in :mod:`backend.circulation.decide` turn facts into decisions, and the
service applies the decisions.  Money is :class:`~decimal.Decimal` in the rule
set's currency; times are timezone-aware.

Rule lookup (like Koha's circulation rules): for a patron category ``c`` and an
item type ``t`` the first rule that exists among ``(c, t)``, ``(c, *)``,
``(*, t)``, ``(*, *)`` applies, so a category rule beats an item-type rule.
Category-wide settings (the total loan limit and the fine limit) come from the
``(c, *)`` rule, or ``(*, *)`` without one.
"""

from __future__ import annotations

from datetime import date, datetime
from functools import cached_property
from decimal import Decimal
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from backend.circulation.messages import Bilingual, ReasonCode

WILDCARD = "*"
RuleKey = tuple[str, str]


class Facts(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ItemStatus(StrEnum):
    AVAILABLE = "available"
    ON_LOAN = "on_loan"
    ON_HOLD_SHELF = "on_hold_shelf"
    IN_TRANSIT = "in_transit"
    IN_PROCESS = "in_process"
    LOST = "lost"
    MISSING = "missing"
    WITHDRAWN = "withdrawn"


# Statuses in which a self-check must not lend the item (staff sort these out).
UNAVAILABLE_STATUSES = frozenset({ItemStatus.IN_PROCESS, ItemStatus.LOST, ItemStatus.MISSING, ItemStatus.WITHDRAWN})


class HoldStatus(StrEnum):
    PENDING = "pending"
    READY = "ready"  # trapped: waiting on the hold shelf for pickup


class SortHint(StrEnum):
    """Where a returned item goes next."""

    SHELVE = "shelve"
    HOLD_SHELF = "hold_shelf"  # someone here is waiting for it: leave it at the desk
    TRANSIT = "transit"  # it must travel to another branch: leave it at the desk


class PatronFacts(Facts):
    patron_id: str = Field(min_length=1)
    card_ids: tuple[str, ...] = Field(min_length=1, description="every card that identifies the patron")
    name: str = ""
    category: str = "adult"
    expires_on: date | None = None
    blocked: bool = False
    block_reason: str | None = None
    fines_owed: Decimal = Field(default=Decimal(0), ge=0,
                                description="charged and unpaid; fines still accruing on open loans are not included")
    home_branch: str = ""

    @property
    def card_id(self) -> str:
        return self.card_ids[0]


class ItemFacts(Facts):
    item_id: str = Field(min_length=1, description="barcode / primary item identifier")
    record_id: str | None = Field(default=None, description="bibliographic record; record-level holds match on it")
    title: str = ""
    author: str = ""
    item_type: str = "book"
    parts: int = Field(default=1, ge=1)
    tag_uids: tuple[str, ...] = ()
    home_branch: str = ""
    location: str = Field(default="", description="shelving location within the branch")
    in_library_only: bool = False
    status: ItemStatus = ItemStatus.AVAILABLE


class LoanFacts(Facts):
    item_id: str
    patron_id: str
    patron_category: str
    item_type: str
    checked_out_at: datetime
    due_at: datetime
    renewals: int = Field(default=0, ge=0)
    branch: str = ""


class HoldFacts(Facts):
    hold_id: str
    patron_id: str
    record_id: str | None = None
    item_id: str | None = Field(default=None, description="item-level hold, or the item trapped for a ready hold")
    status: HoldStatus = HoldStatus.PENDING
    pickup_branch: str = ""
    placed_at: datetime
    pickup_expires_at: datetime | None = None

    @model_validator(mode="after")
    def _targets_something(self) -> "HoldFacts":
        if self.record_id is None and self.item_id is None:
            raise ValueError("a hold needs a record_id or an item_id")
        if self.status is HoldStatus.READY and self.item_id is None:
            raise ValueError("a ready hold names the item waiting for pickup")
        return self

    def concerns(self, item: ItemFacts) -> bool:
        """Could ``item`` fill this hold?"""
        if self.item_id is not None:
            return self.item_id == item.item_id
        return item.record_id is not None and self.record_id == item.record_id


class FineFacts(Facts):
    """A charge on a patron's account; ``amount`` is what is still outstanding."""

    fine_id: str
    patron_id: str
    amount: Decimal = Field(ge=0)
    kind: Literal["overdue", "lost", "damage", "manual"] = "overdue"
    item_id: str | None = None
    created_at: datetime
    description: str = ""


class CirculationRule(Facts):
    """Loan, renewal and fine terms for one patron category × item type (``*`` = any)."""

    patron_category: str = Field(default=WILDCARD, min_length=1)
    item_type: str = Field(default=WILDCARD, min_length=1)
    loan_period: int = Field(default=14, ge=0, description="0 = not for loan")
    period_unit: Literal["days", "hours"] = "days"
    max_loans: int = Field(default=5, ge=0)
    max_renewals: int = Field(default=2, ge=0)
    renewal_period: int | None = Field(default=None, ge=1, description="defaults to loan_period")
    renew_from: Literal["due_date", "now"] = "due_date"
    holds_block_renewal: bool = True
    fine_per_day: Decimal = Field(default=Decimal(2000), ge=0)
    grace_days: int = Field(default=0, ge=0, description="overdue days that cost nothing; beyond them every day counts")
    max_fine: Decimal | None = Field(default=None, ge=0, description="cap per loan")
    fine_limit: Decimal | None = Field(default=Decimal(50000), ge=0,
                                       description="owing more than this blocks checkouts and renewals")

    @cached_property
    def key(self) -> RuleKey:
        return (self.patron_category, self.item_type)


DEFAULT_RULES: tuple[CirculationRule, ...] = (
    CirculationRule(),
    CirculationRule(patron_category="student", loan_period=21, max_loans=8),
    CirculationRule(patron_category="child", max_loans=3, fine_per_day=Decimal(1000), fine_limit=Decimal(20000)),
    CirculationRule(patron_category="staff", loan_period=30, max_loans=20, max_renewals=3, fine_per_day=Decimal(0),
                    fine_limit=None),
    CirculationRule(item_type="dvd", loan_period=7, max_loans=2, max_renewals=1, fine_per_day=Decimal(5000),
                    max_fine=Decimal(100000)),
    # A category rule beats an item-type rule, so students need their own DVD rule.
    CirculationRule(patron_category="student", item_type="dvd", loan_period=7, max_loans=2, max_renewals=1,
                    fine_per_day=Decimal(5000), max_fine=Decimal(100000)),
    CirculationRule(item_type="reference", loan_period=0, max_loans=0, max_renewals=0),
)
FALLBACK_RULE = CirculationRule()


class RuleSet(Facts):
    """The editable rules table plus the settings that are not per category × item type."""

    rules: tuple[CirculationRule, ...] = DEFAULT_RULES
    currency: str = Field(default="VND", pattern=r"^[A-Z]{3}$")
    hold_pickup_days: int = Field(default=7, ge=1, description="how long a trapped hold waits on the shelf")

    @model_validator(mode="after")
    def _unique_keys(self) -> "RuleSet":
        keys = [rule.key for rule in self.rules]
        repeated = sorted({key for key in keys if keys.count(key) > 1})
        if repeated:
            raise ValueError(f"each patron category × item type may have one rule; repeated: {repeated}")
        return self

    @cached_property
    def _index(self) -> dict[RuleKey, CirculationRule]:
        return {rule.key: rule for rule in self.rules}

    def rule_for(self, patron_category: str, item_type: str) -> CirculationRule:
        index = self._index
        for key in ((patron_category, item_type), (patron_category, WILDCARD),
                    (WILDCARD, item_type), (WILDCARD, WILDCARD)):
            rule = index.get(key)
            if rule is not None:
                return rule
        return FALLBACK_RULE

    def category_rule(self, patron_category: str) -> CirculationRule:
        """The rule holding category-wide settings: total loan limit and fine limit."""
        return self.rule_for(patron_category, WILDCARD)


class Decision(Facts):
    allowed: bool
    reason: ReasonCode
    message: Bilingual
    overridden: tuple[ReasonCode, ...] = Field(default=(), description="refusals waived by no-block")


class CheckoutDecision(Decision):
    due_at: datetime | None = None
    fills_hold: str | None = Field(default=None, description="the patron's own hold this checkout satisfies")
    returns_previous_loan: bool = Field(default=False, description="no-block over another patron's open loan")
    renews_existing: bool = Field(default=False, description="no-block checkout of an item the patron already has")
    desensitize: bool = False


class CheckinDecision(Decision):
    fine_due: Decimal = Decimal(0)
    trap_hold: HoldFacts | None = Field(default=None, description="the hold, now ready for pickup, this item fills")
    sort: SortHint = SortHint.SHELVE
    destination: str | None = Field(default=None, description="branch the item must travel to")
    item_status_after: ItemStatus = ItemStatus.AVAILABLE


class RenewDecision(Decision):
    due_at: datetime | None = None
    renewals_after: int | None = None
