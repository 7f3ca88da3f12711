"""Pure circulation decisions: facts and rules in, a decision out.

No I/O, no clock: ``now`` is an argument and must be timezone-aware.  Due dates
are computed in ``now``'s timezone, so pass the library's local time.

Order of checks for a checkout (the first refusal is reported; with
``no_block`` every overridable refusal is waived and listed in ``overridden``):

1. patron: expired, blocked, fines over the limit;
2. item: status (lost, missing …), in-library-only, not loanable by rule;
3. the item's current loan: already with this patron, or with another;
4. holds: the earliest hold this item could fill belongs to someone else;
5. loan limits: per rule, then the category total.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Iterable, Sequence

from backend.circulation.errors import InvalidRequestError
from backend.circulation.messages import Bilingual, ReasonCode, message
from backend.circulation.model import (
    UNAVAILABLE_STATUSES,
    CheckinDecision,
    CheckoutDecision,
    CirculationRule,
    FineFacts,
    HoldFacts,
    HoldStatus,
    ItemFacts,
    ItemStatus,
    LoanFacts,
    PatronFacts,
    RenewDecision,
    RuleSet,
    SortHint,
)

_DAY = timedelta(days=1)


@dataclass
class _Refusals:
    """The refusals found so far, each with its message; the first one is reported."""

    items: list[tuple[ReasonCode, Bilingual]] = field(default_factory=list)

    def add(self, code: ReasonCode, text: Bilingual) -> None:
        self.items.append((code, text))

    @property
    def codes(self) -> tuple[ReasonCode, ...]:
        return tuple(code for code, _ in self.items)


def _require_aware(now: datetime) -> None:
    if now.tzinfo is None or now.utcoffset() is None:
        raise InvalidRequestError("circulation needs a timezone-aware 'now' (local time of the library)")


# --------------------------------------------------------------------------- dates and fines


def compute_due(period: int, unit: str, start: datetime) -> datetime:
    """Due date ``period`` days (end of that day, 23:59) or hours after ``start``."""
    if unit == "hours":
        return (start + timedelta(hours=period)).replace(second=0, microsecond=0)
    return (start + timedelta(days=period)).replace(hour=23, minute=59, second=0, microsecond=0)


def overdue_days(due_at: datetime, now: datetime) -> int:
    """Started days past the due date (0 if not overdue)."""
    if now <= due_at:
        return 0
    return math.ceil((now - due_at) / _DAY)


def compute_fine(loan: LoanFacts, rule: CirculationRule, now: datetime) -> Decimal:
    """The overdue fine of ``loan`` at ``now``: nothing within the grace period, then every day counts."""
    _require_aware(now)
    days = overdue_days(loan.due_at, now)
    if days == 0 or days <= rule.grace_days:
        return Decimal(0)
    amount = rule.fine_per_day * days
    if rule.max_fine is not None:
        amount = min(amount, rule.max_fine)
    return amount


def accrued_fines(loans: Iterable[LoanFacts], rules: RuleSet, now: datetime) -> Decimal:
    """Fines still accruing on open loans (not yet charged to the patron's account)."""
    _require_aware(now)
    total = Decimal(0)
    for loan in loans:
        if loan.due_at < now:  # a loan not yet due accrues nothing: no rule to look up
            total += compute_fine(loan, rules.rule_for(loan.patron_category, loan.item_type), now)
    return total


# --------------------------------------------------------------------------- patron checks


def _patron_refusals(patron: PatronFacts, patron_loans: Sequence[LoanFacts], rules: RuleSet,
                     now: datetime, refusals: _Refusals) -> None:
    if patron.expires_on is not None and patron.expires_on < now.date():
        refusals.add(ReasonCode.PATRON_EXPIRED, message(ReasonCode.PATRON_EXPIRED, date=patron.expires_on))
    if patron.blocked:
        refusals.add(ReasonCode.PATRON_BLOCKED, message(ReasonCode.PATRON_BLOCKED))
    limit = rules.category_rule(patron.category).fine_limit
    owed = patron.fines_owed + accrued_fines(patron_loans, rules, now)
    if limit is not None and owed > limit:
        refusals.add(ReasonCode.FINES_OVER_LIMIT, message(ReasonCode.FINES_OVER_LIMIT, currency=rules.currency,
                                                          amount=owed))


def patron_refusals(patron: PatronFacts, patron_loans: Sequence[LoanFacts], rules: RuleSet,
                    now: datetime) -> tuple[ReasonCode, ...]:
    """Why this patron may not borrow now (empty when they may); for patron-status answers."""
    _require_aware(now)
    refusals = _Refusals()
    _patron_refusals(patron, patron_loans, rules, now, refusals)
    return refusals.codes


def _earliest_hold_for(item: ItemFacts, holds: Iterable[HoldFacts]) -> HoldFacts | None:
    """The hold this item would fill next: one already trapped for it, else the oldest pending one."""
    relevant = [hold for hold in holds if hold.concerns(item)]
    ready = [hold for hold in relevant if hold.status is HoldStatus.READY]
    if ready:
        return min(ready, key=lambda hold: hold.placed_at)
    pending = [hold for hold in relevant if hold.status is HoldStatus.PENDING]
    return min(pending, key=lambda hold: hold.placed_at) if pending else None


def _loan_limit_refusal(patron: PatronFacts, item: ItemFacts, rule: CirculationRule,
                        patron_loans: Sequence[LoanFacts], rules: RuleSet) -> Bilingual | None:
    total_rule = rules.category_rule(patron.category)
    if rule is not total_rule:
        governed = [loan for loan in patron_loans if rules.rule_for(patron.category, loan.item_type) is rule]
        if len(governed) >= rule.max_loans:
            return message(ReasonCode.MAX_LOANS_REACHED, limit=rule.max_loans)
    if len(patron_loans) >= total_rule.max_loans:
        return message(ReasonCode.MAX_LOANS_REACHED, limit=total_rule.max_loans)
    return None


# --------------------------------------------------------------------------- checkout


def decide_checkout(
    patron: PatronFacts,
    item: ItemFacts,
    patron_loans: Sequence[LoanFacts],
    holds: Sequence[HoldFacts],
    rules: RuleSet,
    now: datetime,
    *,
    item_loan: LoanFacts | None = None,
    no_block: bool = False,
) -> CheckoutDecision:
    """May ``patron`` borrow ``item`` now?

    ``patron_loans`` are the patron's open loans, ``holds`` the active holds that
    concern the item (others are ignored), ``item_loan`` the item's open loan if
    any.  ``no_block`` (offline replay, staff override) waives every refusal and
    lists it in ``overridden``.
    """
    _require_aware(now)
    rule = rules.rule_for(patron.category, item.item_type)
    refusals = _Refusals()
    _patron_refusals(patron, patron_loans, rules, now, refusals)
    if item.status in UNAVAILABLE_STATUSES:
        refusals.add(ReasonCode.ITEM_NOT_AVAILABLE, message(ReasonCode.ITEM_NOT_AVAILABLE))
    if item.in_library_only:
        refusals.add(ReasonCode.ITEM_IN_LIBRARY_ONLY, message(ReasonCode.ITEM_IN_LIBRARY_ONLY))
    elif rule.loan_period == 0:
        refusals.add(ReasonCode.ITEM_NOT_LOANABLE, message(ReasonCode.ITEM_NOT_LOANABLE))
    own_loan = item_loan is not None and item_loan.patron_id == patron.patron_id
    if item_loan is not None:
        if own_loan:
            refusals.add(ReasonCode.ALREADY_ON_LOAN_TO_PATRON,
                         message(ReasonCode.ALREADY_ON_LOAN_TO_PATRON, due=item_loan.due_at))
        else:
            refusals.add(ReasonCode.ON_LOAN_TO_OTHER, message(ReasonCode.ON_LOAN_TO_OTHER))
    next_hold = _earliest_hold_for(item, holds)
    if next_hold is not None and next_hold.patron_id != patron.patron_id:
        refusals.add(ReasonCode.ON_HOLD_FOR_OTHER, message(ReasonCode.ON_HOLD_FOR_OTHER))
    if not own_loan:
        other_loans = [loan for loan in patron_loans if loan.item_id != item.item_id]
        limit_text = _loan_limit_refusal(patron, item, rule, other_loans, rules)
        if limit_text is not None:
            refusals.add(ReasonCode.MAX_LOANS_REACHED, limit_text)

    if refusals.items and not no_block:
        code, text = refusals.items[0]
        return CheckoutDecision(allowed=False, reason=code, message=text)
    # An overridden "not loanable" rule still needs a due date: lend for one day.
    period = rule.loan_period or 1
    due_at = compute_due(period, rule.period_unit, now)
    own_hold = next_hold.hold_id if next_hold is not None and next_hold.patron_id == patron.patron_id else None
    return CheckoutDecision(
        allowed=True,
        reason=ReasonCode.CHECKED_OUT,
        message=message(ReasonCode.CHECKED_OUT, due=due_at),
        overridden=refusals.codes,
        due_at=due_at,
        fills_hold=own_hold,
        returns_previous_loan=item_loan is not None and not own_loan,
        renews_existing=own_loan,
        desensitize=not item.in_library_only,
    )


# --------------------------------------------------------------------------- check-in


def decide_checkin(
    item: ItemFacts,
    loan: LoanFacts | None,
    holds: Sequence[HoldFacts],
    rules: RuleSet,
    now: datetime,
    *,
    branch: str = "",
) -> CheckinDecision:
    """What happens when ``item`` comes back at ``branch``: the fine due, the hold it
    fills (now ready for pickup, with its pickup expiry) and where it goes next."""
    _require_aware(now)
    fine = Decimal(0)
    if loan is not None:
        fine = compute_fine(loan, rules.rule_for(loan.patron_category, loan.item_type), now)
    hold = _earliest_hold_for(item, holds)
    trapped: HoldFacts | None = None
    if hold is not None:
        trapped = hold.model_copy(update={
            "status": HoldStatus.READY,
            "item_id": item.item_id,
            "pickup_expires_at": hold.pickup_expires_at if hold.status is HoldStatus.READY
            else compute_due(rules.hold_pickup_days, "days", now),
        })
    sort, destination, status, code = _route(item, trapped, branch)
    text = message(code, branch=destination or "")
    if loan is None and code is ReasonCode.RETURNED:
        code, text = ReasonCode.NOT_ON_LOAN, message(ReasonCode.NOT_ON_LOAN)
    if fine > 0:
        text = text + message(ReasonCode.FINE_CHARGED, currency=rules.currency, amount=fine)
    return CheckinDecision(
        allowed=True, reason=code, message=text, fine_due=fine, trap_hold=trapped,
        sort=sort, destination=destination, item_status_after=status,
    )


def _route(item: ItemFacts, trapped: HoldFacts | None,
           branch: str) -> tuple[SortHint, str | None, ItemStatus, ReasonCode]:
    if trapped is not None:
        if not branch or not trapped.pickup_branch or trapped.pickup_branch == branch:
            return SortHint.HOLD_SHELF, trapped.pickup_branch or None, ItemStatus.ON_HOLD_SHELF, \
                ReasonCode.RETURNED_HOLD_HERE
        return SortHint.TRANSIT, trapped.pickup_branch, ItemStatus.IN_TRANSIT, ReasonCode.RETURNED_TRANSIT
    if branch and item.home_branch and item.home_branch != branch:
        return SortHint.TRANSIT, item.home_branch, ItemStatus.IN_TRANSIT, ReasonCode.RETURNED_TRANSIT
    return SortHint.SHELVE, None, ItemStatus.AVAILABLE, ReasonCode.RETURNED


# --------------------------------------------------------------------------- renew


def decide_renew(
    patron: PatronFacts,
    item: ItemFacts,
    loan: LoanFacts | None,
    holds: Sequence[HoldFacts],
    rules: RuleSet,
    now: datetime,
    *,
    patron_loans: Sequence[LoanFacts] = (),
    no_block: bool = False,
) -> RenewDecision:
    """May ``patron`` renew their loan of ``item``?  ``loan`` is the item's open loan."""
    _require_aware(now)
    if loan is None or loan.patron_id != patron.patron_id:
        return RenewDecision(allowed=False, reason=ReasonCode.NOT_LOANED_TO_PATRON,
                             message=message(ReasonCode.NOT_LOANED_TO_PATRON))
    rule = rules.rule_for(patron.category, item.item_type)
    refusals = _Refusals()
    _patron_refusals(patron, patron_loans, rules, now, refusals)
    if loan.renewals >= rule.max_renewals:
        refusals.add(ReasonCode.RENEWAL_LIMIT, message(ReasonCode.RENEWAL_LIMIT, limit=rule.max_renewals))
    waiting = [hold for hold in holds if hold.concerns(item) and hold.patron_id != patron.patron_id]
    if rule.holds_block_renewal and waiting:
        refusals.add(ReasonCode.RENEWAL_BLOCKED_BY_HOLD, message(ReasonCode.RENEWAL_BLOCKED_BY_HOLD))
    if refusals.items and not no_block:
        code, text = refusals.items[0]
        return RenewDecision(allowed=False, reason=code, message=text)
    due_at = renewed_due(loan, rule, now)
    return RenewDecision(
        allowed=True, reason=ReasonCode.RENEWED, message=message(ReasonCode.RENEWED, due=due_at),
        overridden=refusals.codes, due_at=due_at, renewals_after=loan.renewals + 1,
    )


def renewed_due(loan: LoanFacts, rule: CirculationRule, now: datetime) -> datetime:
    """The new due date: a renewal period from the old due date (from now once it has passed, or
    always with ``renew_from="now"``); never earlier than the old one."""
    period = rule.renewal_period or rule.loan_period or 1
    base = max(loan.due_at, now).astimezone(now.tzinfo) if rule.renew_from == "due_date" else now
    return max(compute_due(period, rule.period_unit, base), loan.due_at)


# --------------------------------------------------------------------------- payments


def allocate_payment(fines: Sequence[FineFacts], amount: Decimal) -> tuple[FineFacts, ...]:
    """Apply ``amount`` to the oldest fines first; returns the fines whose outstanding amount changed."""
    if amount <= 0:
        raise InvalidRequestError("a payment must be a positive amount")
    remaining = amount
    changed: list[FineFacts] = []
    for fine in sorted(fines, key=lambda fine: fine.created_at):
        if remaining <= 0:
            break
        if fine.amount <= 0:
            continue
        paid = min(fine.amount, remaining)
        remaining -= paid
        changed.append(fine.model_copy(update={"amount": fine.amount - paid}))
    return tuple(changed)
