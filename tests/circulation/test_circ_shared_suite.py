"""One suite, two implementations: the standalone circulation and Sip2Circulation.

The SIP2 variant runs Sip2Circulation → Sip2Client → real TCP with error
detection on → Sip2Server → the same in-memory library, so every scenario also
exercises the codec, the client and the server.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Iterator

import pytest

from backend.circulation.interface import CheckinResult, CheckoutResult, Circulation, Tristate, should_desensitize
from backend.circulation.messages import ReasonCode
from backend.circulation.model import HoldStatus, ItemStatus, SortHint
from circ_testkit import (
    ADULT,
    ADULT_SECOND_CARD,
    BLOCKED,
    BOOK,
    BRANCH2_BOOK,
    DVD,
    EXPIRED,
    FINED,
    IN_HOUSE,
    LOST_BOOK,
    NOW,
    OTHER_BOOK,
    PIN,
    REFERENCE,
    SECOND_COPY,
    STUDENT,
    TITLES,
    Stack,
    memory_stack,
    sip2_stack,
)

DUE_14 = (NOW + timedelta(days=14)).replace(hour=23, minute=59)


@pytest.fixture(params=["memory", "sip2"])
def stack(request: pytest.FixtureRequest) -> Iterator[Stack]:
    with (memory_stack() if request.param == "memory" else sip2_stack()) as value:
        yield value


def _key(name: str) -> str:
    return f"test-{name}"


def checkout(circ: Circulation, card: str, item: str, key: str | None = None, *,
             no_block: bool = False) -> CheckoutResult:
    return circ.checkout(card, item, idempotency_key=key or _key(f"out-{card}-{item}"), no_block=no_block)


def checkin(circ: Circulation, item: str, key: str | None = None) -> CheckinResult:
    return circ.checkin(item, idempotency_key=key or _key(f"in-{item}"))


# --------------------------------------------------------------------------- status


def test_system_status(stack: Stack) -> None:
    status = stack.circulation.system_status()
    assert status.online and status.checkout_ok and status.checkin_ok and status.institution_id == "MAIN"


def test_patron_with_the_right_pin(stack: Stack) -> None:
    status = stack.circulation.patron_status(ADULT, PIN)
    assert (status.ok, status.found, status.pin_valid, status.may_borrow) == (True, True, True, True)
    assert status.name == "Nguyễn Văn An" and status.reason is ReasonCode.PATRON_OK and status.loans == 0


def test_second_card_identifies_the_same_patron(stack: Stack) -> None:
    assert stack.circulation.patron_status(ADULT_SECOND_CARD).name == "Nguyễn Văn An"


def test_wrong_pin(stack: Stack) -> None:
    status = stack.circulation.patron_status(ADULT, "9999")
    assert (status.ok, status.pin_valid, status.reason, status.may_borrow) == (
        False, False, ReasonCode.WRONG_PIN, False)
    assert status.message.vi == "Mã PIN không đúng."


def test_unknown_card(stack: Stack) -> None:
    status = stack.circulation.patron_status("00000000")
    assert (status.ok, status.found, status.reason) == (False, False, ReasonCode.UNKNOWN_PATRON)


@pytest.mark.parametrize("card, reason", [(BLOCKED, ReasonCode.PATRON_BLOCKED), (EXPIRED, ReasonCode.PATRON_EXPIRED),
                                          (FINED, ReasonCode.FINES_OVER_LIMIT)])
def test_patrons_who_may_not_borrow(stack: Stack, card: str, reason: ReasonCode) -> None:
    status = stack.circulation.patron_status(card)
    assert status.found and not status.may_borrow and status.reason is reason and reason in status.blocks


def test_fines_show_in_the_status(stack: Stack) -> None:
    status = stack.circulation.patron_status(FINED)
    assert status.fines_owed == Decimal(60000) and status.currency == "VND"
    assert "60.000 VND" in status.message.vi


# --------------------------------------------------------------------------- checkout


def test_checkout(stack: Stack) -> None:
    result = checkout(stack.circulation, ADULT, BOOK)
    assert result.ok and result.reason is ReasonCode.CHECKED_OUT
    assert result.title == TITLES[BOOK] and result.due_at == DUE_14
    assert result.desensitize is Tristate.YES and should_desensitize(result, when_unknown=False)
    assert "29/01/2024" in result.message.vi and "29 Jan 2024" in result.message.en
    info = stack.circulation.item_info(BOOK)
    assert info.found and info.status is ItemStatus.ON_LOAN and info.due_at == DUE_14
    account = stack.circulation.patron_account(ADULT)
    assert [(loan.item_id, loan.title, loan.due_at) for loan in account.loans] == [(BOOK, TITLES[BOOK], DUE_14)]
    assert stack.backend.store.loans[BOOK].patron_id == "p-adult"


def test_in_library_only_item_is_refused_and_keeps_its_alarm(stack: Stack) -> None:
    result = checkout(stack.circulation, ADULT, IN_HOUSE)
    assert (result.ok, result.reason, result.desensitize) == (False, ReasonCode.ITEM_IN_LIBRARY_ONLY, Tristate.NO)
    assert not should_desensitize(result, when_unknown=True)
    assert result.message.en == "This item is for use in the library only."


def test_no_block_lends_an_in_house_item_without_desensitizing(stack: Stack) -> None:
    result = checkout(stack.circulation, ADULT, IN_HOUSE, no_block=True)
    assert result.ok and result.desensitize is Tristate.NO
    assert not should_desensitize(result, when_unknown=True)


@pytest.mark.parametrize("card, item, reason", [
    ("00000000", BOOK, ReasonCode.UNKNOWN_PATRON),
    (ADULT, "99999", ReasonCode.UNKNOWN_ITEM),
    (BLOCKED, BOOK, ReasonCode.PATRON_BLOCKED),
    (EXPIRED, BOOK, ReasonCode.PATRON_EXPIRED),
    (FINED, BOOK, ReasonCode.FINES_OVER_LIMIT),
    (ADULT, LOST_BOOK, ReasonCode.ITEM_NOT_AVAILABLE),
    (ADULT, REFERENCE, ReasonCode.ITEM_NOT_LOANABLE),
])
def test_refused_checkouts(stack: Stack, card: str, item: str, reason: ReasonCode) -> None:
    result = checkout(stack.circulation, card, item)
    assert (result.ok, result.reason, result.desensitize, result.due_at) == (False, reason, Tristate.NO, None)
    assert not stack.backend.store.loans


def test_item_on_loan_to_someone_else(stack: Stack) -> None:
    assert checkout(stack.circulation, STUDENT, BOOK).ok
    result = checkout(stack.circulation, ADULT, BOOK)
    assert (result.ok, result.reason) == (False, ReasonCode.ON_LOAN_TO_OTHER)
    again = checkout(stack.circulation, STUDENT, BOOK, key="second-try")
    assert (again.ok, again.reason) == (False, ReasonCode.ALREADY_ON_LOAN_TO_PATRON)


def test_retrying_with_the_same_key_does_not_lend_twice(stack: Stack) -> None:
    first = checkout(stack.circulation, ADULT, BOOK, key="same")
    second = checkout(stack.circulation, ADULT, BOOK, key="same")
    assert first == second and first.ok
    reused = stack.circulation.checkout(ADULT, OTHER_BOOK, idempotency_key="same")
    assert (reused.ok, reused.reason) == (False, ReasonCode.DUPLICATE_REQUEST)
    assert OTHER_BOOK not in stack.backend.store.loans


def test_max_loans(stack: Stack) -> None:
    stack.backend.add_item(stack.backend.store.items[BOOK].model_copy(update={"item_id": "x1", "record_id": "X1"}))
    for index in range(5):
        item = stack.backend.store.items[BOOK].model_copy(update={"item_id": f"m{index}", "record_id": f"M{index}"})
        stack.backend.add_item(item)
        assert checkout(stack.circulation, ADULT, item.item_id).ok
    result = checkout(stack.circulation, ADULT, "x1")
    assert (result.ok, result.reason) == (False, ReasonCode.MAX_LOANS_REACHED)
    assert "5" in result.message.en
    assert stack.circulation.patron_status(ADULT).may_borrow is False


# --------------------------------------------------------------------------- check-in


def test_checkin_on_time(stack: Stack) -> None:
    checkout(stack.circulation, ADULT, BOOK)
    stack.clock.advance(days=3)
    result = checkin(stack.circulation, BOOK)
    assert result.ok and result.reason is ReasonCode.RETURNED and result.resensitize is Tristate.YES
    assert result.fine_due == 0 and result.sort is SortHint.SHELVE and result.title == TITLES[BOOK]
    assert stack.circulation.item_info(BOOK).status is ItemStatus.AVAILABLE


def test_overdue_checkin_charges_a_fine(stack: Stack) -> None:
    checkout(stack.circulation, ADULT, BOOK)
    stack.clock.advance(days=20)  # due + 6 started days
    result = checkin(stack.circulation, BOOK)
    assert result.ok and result.fine_due == Decimal(12000)
    assert "12.000 VND" in result.message.vi and "12,000 VND" in result.message.en
    assert stack.circulation.patron_status(ADULT).fines_owed == Decimal(12000)


def test_checkin_of_an_item_not_on_loan(stack: Stack) -> None:
    result = checkin(stack.circulation, OTHER_BOOK)
    assert result.ok and result.reason is ReasonCode.NOT_ON_LOAN and result.resensitize is Tristate.YES


def test_checkin_of_an_unknown_item(stack: Stack) -> None:
    result = checkin(stack.circulation, "99999")
    assert (result.ok, result.reason) == (False, ReasonCode.UNKNOWN_ITEM)


def test_checkin_away_from_home_goes_in_transit(stack: Stack) -> None:
    checkout(stack.circulation, ADULT, BRANCH2_BOOK)
    result = checkin(stack.circulation, BRANCH2_BOOK)
    assert (result.sort, result.destination, result.reason) == (
        SortHint.TRANSIT, "BRANCH2", ReasonCode.RETURNED_TRANSIT)
    assert stack.circulation.item_info(BRANCH2_BOOK).status is ItemStatus.IN_TRANSIT


# --------------------------------------------------------------------------- holds


def test_hold_cycle(stack: Stack) -> None:
    assert checkout(stack.circulation, ADULT, SECOND_COPY).ok
    stack.backend.place_hold("p-student", record_id="R1", pickup_branch="MAIN", placed_at=NOW)
    refused = checkout(stack.circulation, ADULT, BOOK)
    assert (refused.ok, refused.reason) == (False, ReasonCode.ON_HOLD_FOR_OTHER)
    renew = stack.circulation.renew(ADULT, SECOND_COPY)
    assert (renew.ok, renew.reason) == (False, ReasonCode.RENEWAL_BLOCKED_BY_HOLD)

    returned = checkin(stack.circulation, SECOND_COPY)
    assert returned.ok and returned.hold_ready and returned.sort is SortHint.HOLD_SHELF
    assert returned.reason is ReasonCode.RETURNED_HOLD_HERE
    assert returned.pickup_expires_at == (NOW + timedelta(days=7)).replace(hour=23, minute=59)
    assert stack.circulation.item_info(SECOND_COPY).status is ItemStatus.ON_HOLD_SHELF
    holds = stack.circulation.patron_account(STUDENT).holds
    assert [(hold.item_id, hold.status) for hold in holds] == [(SECOND_COPY, HoldStatus.READY)]
    assert stack.circulation.patron_status(STUDENT).holds_ready == 1

    assert (checkout(stack.circulation, ADULT, SECOND_COPY, key="grab")).reason is ReasonCode.ON_HOLD_FOR_OTHER
    picked = checkout(stack.circulation, STUDENT, SECOND_COPY)
    assert picked.ok and picked.due_at == (NOW + timedelta(days=21)).replace(hour=23, minute=59)
    assert stack.circulation.patron_account(STUDENT).holds == ()
    assert checkout(stack.circulation, ADULT, BOOK, key="now-free").ok


def test_hold_for_another_branch_goes_in_transit(stack: Stack) -> None:
    stack.backend.place_hold("p-student", item_id=OTHER_BOOK, pickup_branch="BRANCH2", placed_at=NOW)
    result = checkin(stack.circulation, OTHER_BOOK)
    assert (result.sort, result.destination, result.hold_ready) == (SortHint.TRANSIT, "BRANCH2", True)


# --------------------------------------------------------------------------- renew


def test_renew_until_the_limit(stack: Stack) -> None:
    checkout(stack.circulation, ADULT, BOOK)
    first = stack.circulation.renew(ADULT, BOOK)
    assert first.ok and first.due_at == DUE_14 + timedelta(days=14)
    assert stack.circulation.renew(ADULT, BOOK).ok
    third = stack.circulation.renew(ADULT, BOOK)
    assert (third.ok, third.reason, third.due_at) == (False, ReasonCode.RENEWAL_LIMIT, None)
    assert "2" in third.message.en


def test_renew_someone_elses_item(stack: Stack) -> None:
    checkout(stack.circulation, STUDENT, BOOK)
    result = stack.circulation.renew(ADULT, BOOK)
    assert (result.ok, result.reason) == (False, ReasonCode.NOT_LOANED_TO_PATRON)


def test_renew_all(stack: Stack) -> None:
    checkout(stack.circulation, ADULT, BOOK)
    checkout(stack.circulation, ADULT, DVD)
    stack.backend.place_hold("p-student", record_id="R4", placed_at=NOW)
    result = stack.circulation.renew_all(ADULT)
    assert not result.ok
    assert [renewed.item_id for renewed in result.renewed] == [BOOK]
    assert [(refused.item_id, refused.reason) for refused in result.refused] == [
        (DVD, ReasonCode.RENEWAL_BLOCKED_BY_HOLD)]


# --------------------------------------------------------------------------- payments


def test_paying_fines_restores_borrowing(stack: Stack) -> None:
    too_much = stack.circulation.record_payment(FINED, Decimal(70000), idempotency_key="pay-0")
    assert (too_much.ok, too_much.reason) == (False, ReasonCode.INVALID_AMOUNT)
    paid = stack.circulation.record_payment(FINED, Decimal(60000), idempotency_key="pay-1")
    assert paid.ok and paid.reason is ReasonCode.PAYMENT_RECORDED and paid.transaction_id
    again = stack.circulation.record_payment(FINED, Decimal(60000), idempotency_key="pay-1")
    assert again.ok and again.transaction_id == paid.transaction_id
    assert len(stack.backend.store.payments) == 1
    assert stack.circulation.patron_status(FINED).may_borrow
    assert checkout(stack.circulation, FINED, BOOK).ok


def test_account_lists_fines(stack: Stack) -> None:
    account = stack.circulation.patron_account(FINED)
    assert account.found and account.fines_total == Decimal(60000)
    assert [(fine.amount, fine.description) for fine in account.fines] == [(Decimal(60000), "Sách hỏng")]


def test_account_of_an_unknown_patron(stack: Stack) -> None:
    account = stack.circulation.patron_account("00000000")
    assert (account.ok, account.found, account.reason) == (False, False, ReasonCode.UNKNOWN_PATRON)
