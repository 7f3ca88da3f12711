"""decide_gate over every combination of item facts, decode status, policy and debounce history."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone

import pytest

from backend.gate_decision import (
    GateDecision,
    GateOutcome,
    GatePolicy,
    GateRead,
    ItemFacts,
    PassReason,
    decide_gate,
)
from openshelf.contract import AlarmReason, TagDecodeStatus

NOW = datetime(2025, 3, 1, 9, 30, tzinfo=timezone.utc)
DEBOUNCE_S = 10.0
A, P = GateOutcome.ALARM, GateOutcome.PASS

# Known items: (on_loan, in_library_only, policy.in_library_only_alarms) → verdict. Decode status is irrelevant.
KNOWN_ITEM_TABLE = {
    (False, False, True): (A, AlarmReason.NOT_ON_LOAN),
    (False, False, False): (A, AlarmReason.NOT_ON_LOAN),
    (True, False, True): (P, PassReason.ON_LOAN),
    (True, False, False): (P, PassReason.ON_LOAN),
    (False, True, True): (A, AlarmReason.IN_LIBRARY_ONLY),
    (True, True, True): (A, AlarmReason.IN_LIBRARY_ONLY),  # "somehow on loan" still alarms
    (False, True, False): (A, AlarmReason.NOT_ON_LOAN),
    (True, True, False): (P, PassReason.ON_LOAN),
}
# Unknown tags: (decoded?, policy.unknown_tag) → verdict. The in-library-only policy is irrelevant.
UNKNOWN_TAG_TABLE = {
    (True, "alarm"): (A, AlarmReason.UNKNOWN_TAG),
    (True, "log"): (P, PassReason.UNKNOWN_TAG_LOGGED),
    (False, "alarm"): (A, AlarmReason.UNREADABLE_TAG),
    (False, "log"): (P, PassReason.UNREADABLE_TAG_LOGGED),
}
# Seconds from the previous alarm of this tag at this gate (None: none) → would an alarm be suppressed?
DEBOUNCE_TABLE = {None: False, 0.0: True, 3.0: True, 9.999: True, 10.0: False, 11.0: False, -1.0: False}

ITEMS = [None] + [ItemFacts("I0003", "Dế Mèn phiêu lưu ký", on_loan, ilo)
                  for on_loan, ilo in itertools.product([False, True], repeat=2)]
CASES = list(itertools.product(ITEMS, list(TagDecodeStatus), ["alarm", "log"], [True, False], DEBOUNCE_TABLE))


def read(decode: TagDecodeStatus = TagDecodeStatus.DECODED, item_id: str | None = "I0003") -> GateRead:
    return GateRead("gate-1", "reader-1", "E004010000000301", item_id, decode)


def last_alarm(seconds_ago: float | None) -> datetime | None:
    return None if seconds_ago is None else NOW - timedelta(seconds=seconds_ago)


def expected(item: ItemFacts | None, decode: TagDecodeStatus, unknown: str, ilo_alarms: bool,
             seconds_ago: float | None) -> tuple[GateOutcome, object]:
    if item is None:
        outcome, reason = UNKNOWN_TAG_TABLE[(decode is TagDecodeStatus.DECODED, unknown)]
    else:
        outcome, reason = KNOWN_ITEM_TABLE[(item.on_loan, item.in_library_only, ilo_alarms)]
    if outcome is A and DEBOUNCE_TABLE[seconds_ago]:
        outcome = GateOutcome.SUPPRESSED
    return outcome, reason


def test_the_table_covers_every_combination() -> None:
    assert len(CASES) == 5 * len(TagDecodeStatus) * 2 * 2 * len(DEBOUNCE_TABLE)


@pytest.mark.parametrize(("item", "decode", "unknown", "ilo_alarms", "seconds_ago"), CASES)
def test_decision_for_every_combination(item: ItemFacts | None, decode: TagDecodeStatus, unknown: str,
                                        ilo_alarms: bool, seconds_ago: float | None) -> None:
    policy = GatePolicy(debounce_s=DEBOUNCE_S, unknown_tag=unknown,  # type: ignore[arg-type]
                        in_library_only_alarms=ilo_alarms)
    decision = decide_gate(read(decode), item, policy, last_alarm(seconds_ago), NOW)
    assert (decision.outcome, decision.reason) == expected(item, decode, unknown, ilo_alarms, seconds_ago)
    assert decision.gate_id == "gate-1"
    assert decision.uid == "E004010000000301"


def test_known_tag_reports_the_catalogue_item_id_not_the_one_on_the_tag() -> None:
    item = ItemFacts("I0009", "Việt Nam sử lược", on_loan=False, in_library_only=False)
    decision = decide_gate(read(item_id="I9999"), item, GatePolicy(), None, NOW)
    assert decision.item_id == "I0009"


def test_unknown_tag_keeps_whatever_item_id_the_tag_carried() -> None:
    decision = decide_gate(read(item_id="X1"), None, GatePolicy(), None, NOW)
    assert decision == GateDecision(A, AlarmReason.UNKNOWN_TAG, "gate-1", "E004010000000301", "X1")


def test_zero_debounce_never_suppresses() -> None:
    item = ItemFacts("I0001", "Truyện Kiều", on_loan=False, in_library_only=False)
    decision = decide_gate(read(), item, GatePolicy(debounce_s=0), NOW, NOW)
    assert decision.is_alarm


def test_a_pass_is_never_reported_as_suppressed() -> None:
    item = ItemFacts("I0002", "Số đỏ", on_loan=True, in_library_only=False)
    decision = decide_gate(read(), item, GatePolicy(), NOW - timedelta(seconds=1), NOW)
    assert decision.outcome is P and not decision.is_alarm


def test_decisions_are_immutable() -> None:
    decision = decide_gate(read(), None, GatePolicy(), None, NOW)
    with pytest.raises(AttributeError):
        decision.outcome = P  # type: ignore[misc]
