"""The pure decision functions: checkout, check-in, renew, fines, payments."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest

from backend.circulation.decide import (
    allocate_payment,
    compute_due,
    compute_fine,
    decide_checkin,
    decide_checkout,
    decide_renew,
    overdue_days,
    patron_refusals,
)
from backend.circulation.errors import InvalidRequestError
from backend.circulation.messages import ReasonCode
from backend.circulation.model import (
    UNAVAILABLE_STATUSES,
    CirculationRule,
    FineFacts,
    HoldFacts,
    HoldStatus,
    ItemFacts,
    ItemStatus,
    LoanFacts,
    PatronFacts,
    RuleSet,
    SortHint,
)
from circ_testkit import NOW, TZ

RULES = RuleSet()
DAY = timedelta(days=1)


def patron(**changes: object) -> PatronFacts:
    values: dict[str, object] = {"patron_id": "p1", "card_ids": ("c1",), "name": "Nguyễn Văn An", "category": "adult"}
    values.update(changes)
    return PatronFacts(**values)  # type: ignore[arg-type]


def item(**changes: object) -> ItemFacts:
    values: dict[str, object] = {"item_id": "i1", "record_id": "r1", "title": "Truyện Kiều", "home_branch": "MAIN"}
    values.update(changes)
    return ItemFacts(**values)  # type: ignore[arg-type]


def loan(item_id: str = "i1", patron_id: str = "p1", *, due: datetime = NOW + 7 * DAY, item_type: str = "book",
         category: str = "adult", renewals: int = 0) -> LoanFacts:
    return LoanFacts(item_id=item_id, patron_id=patron_id, patron_category=category, item_type=item_type,
                     checked_out_at=due - 14 * DAY, due_at=due, renewals=renewals)


def hold(patron_id: str, *, record_id: str | None = "r1", item_id: str | None = None,
         status: HoldStatus = HoldStatus.PENDING, placed_days_ago: int = 1, pickup: str = "MAIN",
         hold_id: str | None = None) -> HoldFacts:
    return HoldFacts(hold_id=hold_id or f"h-{patron_id}-{placed_days_ago}", patron_id=patron_id, record_id=record_id,
                     item_id=item_id, status=status, pickup_branch=pickup, placed_at=NOW - placed_days_ago * DAY)


def books(count: int, *, item_type: str = "book", category: str = "adult") -> list[LoanFacts]:
    return [loan(f"b{index}", item_type=item_type, category=category) for index in range(count)]


def end_of_day(moment: datetime) -> datetime:
    return moment.replace(hour=23, minute=59, second=0, microsecond=0)


# --------------------------------------------------------------------------- checkout

CHECKOUT_CASES = [
    # id, patron changes, item changes, patron loans, holds, item loan, expected reason
    ("ok", {}, {}, [], [], None, ReasonCode.CHECKED_OUT),
    ("expired", {"expires_on": date(2024, 1, 14)}, {}, [], [], None, ReasonCode.PATRON_EXPIRED),
    ("expires-today-still-valid", {"expires_on": date(2024, 1, 15)}, {}, [], [], None, ReasonCode.CHECKED_OUT),
    ("blocked", {"blocked": True}, {}, [], [], None, ReasonCode.PATRON_BLOCKED),
    ("fines-over-limit", {"fines_owed": Decimal(50001)}, {}, [], [], None, ReasonCode.FINES_OVER_LIMIT),
    ("fines-at-limit", {"fines_owed": Decimal(50000)}, {}, [], [], None, ReasonCode.CHECKED_OUT),
    ("accruing-fines-count", {"fines_owed": Decimal(45000)}, {}, [loan("x", due=NOW - 5 * DAY)], [], None,
     ReasonCode.FINES_OVER_LIMIT),
    ("max-loans", {}, {}, books(5), [], None, ReasonCode.MAX_LOANS_REACHED),
    ("below-max-loans", {}, {}, books(4), [], None, ReasonCode.CHECKED_OUT),
    ("dvd-limit", {}, {"item_type": "dvd"}, books(2, item_type="dvd"), [], None, ReasonCode.MAX_LOANS_REACHED),
    ("book-beside-dvds", {}, {}, books(2, item_type="dvd"), [], None, ReasonCode.CHECKED_OUT),
    ("total-counts-dvds", {}, {}, books(3) + books(2, item_type="dvd"), [], None, ReasonCode.MAX_LOANS_REACHED),
    ("student-total-8", {"category": "student"}, {}, books(8, category="student"), [], None,
     ReasonCode.MAX_LOANS_REACHED),
    ("student-7-of-8", {"category": "student"}, {}, books(7, category="student"), [], None, ReasonCode.CHECKED_OUT),
    ("student-dvd-rule", {"category": "student"}, {"item_type": "dvd"},
     books(2, item_type="dvd", category="student"), [], None, ReasonCode.MAX_LOANS_REACHED),
    ("child-3", {"category": "child"}, {}, books(3, category="child"), [], None, ReasonCode.MAX_LOANS_REACHED),
    ("in-library-only", {}, {"in_library_only": True}, [], [], None, ReasonCode.ITEM_IN_LIBRARY_ONLY),
    ("reference-not-loanable", {}, {"item_type": "reference"}, [], [], None, ReasonCode.ITEM_NOT_LOANABLE),
    ("on-hold-shelf-no-hold", {}, {"status": ItemStatus.ON_HOLD_SHELF}, [], [], None, ReasonCode.CHECKED_OUT),
    ("in-transit", {}, {"status": ItemStatus.IN_TRANSIT}, [], [], None, ReasonCode.CHECKED_OUT),
    ("already-own", {}, {}, [loan()], [], loan(), ReasonCode.ALREADY_ON_LOAN_TO_PATRON),
    ("on-loan-to-other", {}, {}, [], [], loan(patron_id="p2"), ReasonCode.ON_LOAN_TO_OTHER),
    ("record-hold-other", {}, {}, [], [hold("p2")], None, ReasonCode.ON_HOLD_FOR_OTHER),
    ("item-hold-other", {}, {}, [], [hold("p2", record_id=None, item_id="i1")], None, ReasonCode.ON_HOLD_FOR_OTHER),
    ("ready-hold-other", {}, {}, [], [hold("p2", item_id="i1", status=HoldStatus.READY)], None,
     ReasonCode.ON_HOLD_FOR_OTHER),
    ("ready-hold-other-copy", {}, {}, [], [hold("p2", item_id="i9", status=HoldStatus.READY)], None,
     ReasonCode.CHECKED_OUT),
    ("item-hold-other-copy", {}, {}, [], [hold("p2", record_id=None, item_id="i9")], None, ReasonCode.CHECKED_OUT),
    ("hold-other-record", {}, {}, [], [hold("p2", record_id="r2")], None, ReasonCode.CHECKED_OUT),
    ("own-hold-first", {}, {}, [], [hold("p1", placed_days_ago=3), hold("p2", placed_days_ago=1)], None,
     ReasonCode.CHECKED_OUT),
    ("other-hold-first", {}, {}, [], [hold("p1", placed_days_ago=1), hold("p2", placed_days_ago=3)], None,
     ReasonCode.ON_HOLD_FOR_OTHER),
    ("patron-checks-first", {"expires_on": date(2020, 1, 1)}, {"in_library_only": True}, [], [], None,
     ReasonCode.PATRON_EXPIRED),
    ("item-before-holds", {}, {"in_library_only": True}, [], [hold("p2")], None, ReasonCode.ITEM_IN_LIBRARY_ONLY),
]


@pytest.mark.parametrize("changes_p, changes_i, loans, holds, item_loan, expected",
                         [case[1:] for case in CHECKOUT_CASES], ids=[case[0] for case in CHECKOUT_CASES])
def test_checkout_decision(changes_p, changes_i, loans, holds, item_loan, expected) -> None:
    decision = decide_checkout(patron(**changes_p), item(**changes_i), loans, holds, RULES, NOW, item_loan=item_loan)
    assert decision.reason is expected
    assert decision.allowed is (expected is ReasonCode.CHECKED_OUT)
    assert decision.message.vi and decision.message.en and "?" not in decision.message.en
    if decision.allowed:
        assert decision.due_at is not None and decision.desensitize
    else:
        assert decision.due_at is None


@pytest.mark.parametrize("status", sorted(UNAVAILABLE_STATUSES))
def test_unavailable_statuses_refuse(status: ItemStatus) -> None:
    decision = decide_checkout(patron(), item(status=status), [], [], RULES, NOW)
    assert (decision.allowed, decision.reason) == (False, ReasonCode.ITEM_NOT_AVAILABLE)


@pytest.mark.parametrize("category, item_type, days", [
    ("adult", "book", 14), ("student", "book", 21), ("staff", "book", 30), ("adult", "dvd", 7),
    ("student", "dvd", 7), ("child", "book", 14), ("visitor", "map", 14),
])
def test_due_date_per_rule(category: str, item_type: str, days: int) -> None:
    decision = decide_checkout(patron(category=category), item(item_type=item_type), [], [], RULES, NOW)
    assert decision.due_at == end_of_day(NOW + days * DAY)
    assert decision.due_at.tzinfo is TZ


def test_hourly_loans_are_due_after_hours() -> None:
    rules = RuleSet(rules=(CirculationRule(loan_period=3, period_unit="hours"),))
    decision = decide_checkout(patron(), item(), [], [], rules, NOW.replace(second=42))
    assert decision.due_at == NOW + timedelta(hours=3)


def test_limit_message_names_the_limit() -> None:
    decision = decide_checkout(patron(), item(), books(5), [], RULES, NOW)
    assert "5" in decision.message.vi and "5" in decision.message.en


def test_own_hold_is_filled() -> None:
    own = hold("p1", hold_id="mine", placed_days_ago=5)
    decision = decide_checkout(patron(), item(), [], [own], RULES, NOW)
    assert decision.allowed and decision.fills_hold == "mine"


def test_no_block_overrides_and_keeps_the_alarm_for_in_house_items() -> None:
    decision = decide_checkout(patron(expires_on=date(2020, 1, 1)), item(in_library_only=True), [], [hold("p2")],
                               RULES, NOW, no_block=True)
    assert decision.allowed
    assert decision.overridden == (ReasonCode.PATRON_EXPIRED, ReasonCode.ITEM_IN_LIBRARY_ONLY,
                                   ReasonCode.ON_HOLD_FOR_OTHER)
    assert decision.desensitize is False


def test_no_block_over_someone_elses_loan_returns_it_first() -> None:
    decision = decide_checkout(patron(), item(), [], [], RULES, NOW, item_loan=loan(patron_id="p2"), no_block=True)
    assert decision.allowed and decision.returns_previous_loan and not decision.renews_existing


def test_no_block_on_own_loan_renews() -> None:
    decision = decide_checkout(patron(), item(), [loan()], [], RULES, NOW, item_loan=loan(), no_block=True)
    assert decision.allowed and decision.renews_existing and not decision.returns_previous_loan


def test_no_block_lends_not_loanable_items_for_a_day() -> None:
    decision = decide_checkout(patron(), item(item_type="reference"), [], [], RULES, NOW, no_block=True)
    assert decision.due_at == end_of_day(NOW + DAY)


def test_naive_now_is_refused() -> None:
    with pytest.raises(InvalidRequestError):
        decide_checkout(patron(), item(), [], [], RULES, NOW.replace(tzinfo=None))


def test_patron_refusals_lists_every_block() -> None:
    blocked = patron(blocked=True, expires_on=date(2020, 1, 1), fines_owed=Decimal(99999))
    assert patron_refusals(blocked, [], RULES, NOW) == (
        ReasonCode.PATRON_EXPIRED, ReasonCode.PATRON_BLOCKED, ReasonCode.FINES_OVER_LIMIT)
    assert patron_refusals(patron(), [], RULES, NOW) == ()


def test_staff_have_no_fine_limit() -> None:
    decision = decide_checkout(patron(category="staff", fines_owed=Decimal(10**7)), item(), [], [], RULES, NOW)
    assert decision.allowed


# --------------------------------------------------------------------------- fines


@pytest.mark.parametrize("late, days", [
    (timedelta(0), 0), (-timedelta(hours=1), 0), (timedelta(minutes=1), 1), (timedelta(hours=24), 1),
    (timedelta(hours=25), 2), (timedelta(days=6, hours=10), 7),
])
def test_overdue_days(late: timedelta, days: int) -> None:
    assert overdue_days(NOW, NOW + late) == days


@pytest.mark.parametrize("grace, days_late, expected", [
    (0, 0, 0), (0, 1, 2000), (0, 6, 12000), (2, 2, 0), (2, 3, 6000), (3, 3, 0), (3, 10, 20000),
])
def test_fine_with_grace_period(grace: int, days_late: int, expected: int) -> None:
    rule = CirculationRule(grace_days=grace)
    assert compute_fine(loan(due=NOW - days_late * DAY), rule, NOW) == Decimal(expected)


def test_fine_is_capped() -> None:
    rule = RULES.rule_for("adult", "dvd")
    assert compute_fine(loan(due=NOW - 30 * DAY, item_type="dvd"), rule, NOW) == Decimal(100000)


def test_due_dates_end_the_day() -> None:
    assert compute_due(14, "days", NOW) == datetime(2024, 1, 29, 23, 59, tzinfo=TZ)
    assert compute_due(2, "hours", NOW) == datetime(2024, 1, 15, 11, 30, tzinfo=TZ)


# --------------------------------------------------------------------------- check-in


def test_checkin_of_an_item_not_on_loan() -> None:
    decision = decide_checkin(item(), None, [], RULES, NOW, branch="MAIN")
    assert (decision.allowed, decision.reason, decision.sort) == (True, ReasonCode.NOT_ON_LOAN, SortHint.SHELVE)
    assert decision.fine_due == 0 and decision.item_status_after is ItemStatus.AVAILABLE


def test_checkin_on_time() -> None:
    decision = decide_checkin(item(), loan(), [], RULES, NOW, branch="MAIN")
    assert (decision.reason, decision.fine_due, decision.trap_hold) == (ReasonCode.RETURNED, Decimal(0), None)


def test_checkin_overdue_charges_and_says_so_in_both_languages() -> None:
    decision = decide_checkin(item(), loan(due=NOW - 6 * DAY), [], RULES, NOW, branch="MAIN")
    assert decision.fine_due == Decimal(12000)
    assert "12.000 VND" in decision.message.vi and "12,000 VND" in decision.message.en


def test_checkin_traps_the_oldest_hold_for_pickup_here() -> None:
    older, newer = hold("p2", placed_days_ago=5), hold("p3", placed_days_ago=1)
    decision = decide_checkin(item(), loan(), [newer, older], RULES, NOW, branch="MAIN")
    assert decision.reason is ReasonCode.RETURNED_HOLD_HERE
    assert decision.sort is SortHint.HOLD_SHELF and decision.item_status_after is ItemStatus.ON_HOLD_SHELF
    trapped = decision.trap_hold
    assert trapped is not None and trapped.hold_id == older.hold_id
    assert trapped.status is HoldStatus.READY and trapped.item_id == "i1"
    assert trapped.pickup_expires_at == end_of_day(NOW + 7 * DAY)
    assert "quầy" in decision.message.vi and "desk" in decision.message.en


def test_checkin_sends_a_hold_for_another_branch_in_transit() -> None:
    decision = decide_checkin(item(), loan(), [hold("p2", pickup="BRANCH2")], RULES, NOW, branch="MAIN")
    assert (decision.sort, decision.destination, decision.reason) == (
        SortHint.TRANSIT, "BRANCH2", ReasonCode.RETURNED_TRANSIT)
    assert decision.item_status_after is ItemStatus.IN_TRANSIT
    assert "BRANCH2" in decision.message.vi and "BRANCH2" in decision.message.en


def test_checkin_away_from_home_goes_home() -> None:
    decision = decide_checkin(item(home_branch="BRANCH2"), loan(), [], RULES, NOW, branch="MAIN")
    assert (decision.sort, decision.destination) == (SortHint.TRANSIT, "BRANCH2")
    assert decide_checkin(item(home_branch="BRANCH2"), loan(), [], RULES, NOW, branch="").sort is SortHint.SHELVE


def test_checkin_keeps_a_ready_holds_expiry() -> None:
    ready = hold("p2", item_id="i1", status=HoldStatus.READY).model_copy(
        update={"pickup_expires_at": NOW + 2 * DAY})
    decision = decide_checkin(item(), None, [ready], RULES, NOW, branch="MAIN")
    assert decision.trap_hold is not None and decision.trap_hold.pickup_expires_at == NOW + 2 * DAY


def test_checkin_ignores_holds_the_item_cannot_fill() -> None:
    decision = decide_checkin(item(), loan(), [hold("p2", record_id="r2")], RULES, NOW, branch="MAIN")
    assert decision.trap_hold is None and decision.sort is SortHint.SHELVE


# --------------------------------------------------------------------------- renew


def test_renew_extends_from_the_due_date() -> None:
    decision = decide_renew(patron(), item(), loan(due=NOW + 3 * DAY), [], RULES, NOW)
    assert decision.allowed and decision.reason is ReasonCode.RENEWED
    assert decision.due_at == end_of_day(NOW + 17 * DAY) and decision.renewals_after == 1


def test_renew_of_an_overdue_loan_starts_today() -> None:
    decision = decide_renew(patron(), item(), loan(due=NOW - 20 * DAY), [], RULES, NOW)
    assert decision.due_at == end_of_day(NOW + 14 * DAY)


def test_renew_from_now_rule() -> None:
    rules = RuleSet(rules=(CirculationRule(renew_from="now", renewal_period=5),))
    decision = decide_renew(patron(), item(), loan(due=NOW + 1 * DAY), [], rules, NOW)
    assert decision.due_at == end_of_day(NOW + 5 * DAY)


def test_renew_never_shortens_a_loan() -> None:
    rules = RuleSet(rules=(CirculationRule(renew_from="now", renewal_period=1),))
    current = loan(due=NOW + 10 * DAY)
    assert decide_renew(patron(), item(), current, [], rules, NOW).due_at == current.due_at


RENEW_CASES = [
    ("limit", {}, {"renewals": 2}, [], RULES, ReasonCode.RENEWAL_LIMIT),
    ("below-limit", {}, {"renewals": 1}, [], RULES, ReasonCode.RENEWED),
    ("dvd-limit-1", {}, {"renewals": 1, "item_type": "dvd"}, [], RULES, ReasonCode.RENEWAL_LIMIT),
    ("hold-blocks", {}, {}, [hold("p2")], RULES, ReasonCode.RENEWAL_BLOCKED_BY_HOLD),
    ("hold-allowed-by-rule", {}, {}, [hold("p2")], RuleSet(rules=(CirculationRule(holds_block_renewal=False),)),
     ReasonCode.RENEWED),
    ("own-hold", {}, {}, [hold("p1")], RULES, ReasonCode.RENEWED),
    ("expired", {"expires_on": date(2020, 1, 1)}, {}, [], RULES, ReasonCode.PATRON_EXPIRED),
    ("blocked", {"blocked": True}, {}, [], RULES, ReasonCode.PATRON_BLOCKED),
    ("fines", {"fines_owed": Decimal(70000)}, {}, [], RULES, ReasonCode.FINES_OVER_LIMIT),
    ("other-patrons-loan", {}, {"patron_id": "p2"}, [], RULES, ReasonCode.NOT_LOANED_TO_PATRON),
]


@pytest.mark.parametrize("changes_p, changes_l, holds, rules, expected", [case[1:] for case in RENEW_CASES],
                         ids=[case[0] for case in RENEW_CASES])
def test_renew_decision(changes_p, changes_l, holds, rules, expected) -> None:
    item_type = changes_l.get("item_type", "book")
    current = loan(**changes_l)
    decision = decide_renew(patron(**changes_p), item(item_type=item_type), current, holds, rules, NOW)
    assert decision.reason is expected
    assert decision.allowed is (expected is ReasonCode.RENEWED)
    assert "?" not in decision.message.en


def test_renew_without_a_loan() -> None:
    decision = decide_renew(patron(), item(), None, [], RULES, NOW)
    assert (decision.allowed, decision.reason) == (False, ReasonCode.NOT_LOANED_TO_PATRON)


def test_renew_no_block_overrides() -> None:
    decision = decide_renew(patron(blocked=True), item(), loan(renewals=9), [hold("p2")], RULES, NOW, no_block=True)
    assert decision.allowed and set(decision.overridden) == {
        ReasonCode.PATRON_BLOCKED, ReasonCode.RENEWAL_LIMIT, ReasonCode.RENEWAL_BLOCKED_BY_HOLD}


# --------------------------------------------------------------------------- payments


def _fine(fine_id: str, amount: int, days_ago: int) -> FineFacts:
    return FineFacts(fine_id=fine_id, patron_id="p1", amount=Decimal(amount), created_at=NOW - days_ago * DAY)


def test_payments_go_to_the_oldest_fine_first() -> None:
    changed = allocate_payment([_fine("new", 5000, 1), _fine("old", 3000, 9)], Decimal(4000))
    assert [(fine.fine_id, fine.amount) for fine in changed] == [("old", Decimal(0)), ("new", Decimal(4000))]


def test_payment_must_be_positive() -> None:
    with pytest.raises(InvalidRequestError):
        allocate_payment([_fine("a", 1, 1)], Decimal(0))
