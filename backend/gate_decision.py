"""The gate decision: may this tag leave the building? Pure, no I/O, no clock of its own.

Precedence, first match wins:

1. The tag is known (by UID, or by the item id it carries): the item decides —
   an in-library-only item alarms (when the policy says so) even if it is
   somehow on loan; otherwise on loan passes and not on loan alarms. A known
   tag whose memory could not be decoded is still decided by its item.
2. The tag is unknown: ``unknown_tag`` when its memory was decoded,
   ``unreadable_tag`` when it was not; the policy chooses alarm or log.
3. A would-be alarm for the same tag at the same gate within ``debounce_s`` of
   the previous alarm is suppressed (the patron is still standing in the gate).
   A ``last_alarm_at`` later than ``now`` (a clock step) never suppresses: a
   duplicate alarm is better than a missed one.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from openshelf.contract import AlarmReason, TagDecodeStatus


class GateOutcome(str, enum.Enum):
    ALARM = "alarm"
    PASS = "pass"
    SUPPRESSED = "suppressed"


class PassReason(str, enum.Enum):
    ON_LOAN = "on_loan"
    UNKNOWN_TAG_LOGGED = "unknown_tag_logged"
    UNREADABLE_TAG_LOGGED = "unreadable_tag_logged"


@dataclass(frozen=True, slots=True)
class GateRead:
    gate_id: str
    reader_id: str
    uid: str
    item_id: str | None
    decode: TagDecodeStatus


@dataclass(frozen=True, slots=True)
class ItemFacts:
    item_id: str
    title: str
    on_loan: bool
    in_library_only: bool


@dataclass(frozen=True, slots=True)
class GatePolicy:
    debounce_s: float = 10.0
    unknown_tag: Literal["alarm", "log"] = "alarm"
    in_library_only_alarms: bool = True


@dataclass(frozen=True, slots=True)
class GateDecision:
    """``reason`` is an AlarmReason for alarm and suppressed (what it would have been), else a PassReason."""

    outcome: GateOutcome
    reason: AlarmReason | PassReason
    gate_id: str
    uid: str
    item_id: str | None

    @property
    def is_alarm(self) -> bool:
        return self.outcome is GateOutcome.ALARM


def decide_gate(
    read: GateRead,
    item: ItemFacts | None,
    policy: GatePolicy,
    last_alarm_at: datetime | None,
    now: datetime,
) -> GateDecision:
    outcome, reason = _verdict(read, item, policy)
    if outcome is GateOutcome.ALARM and _within_debounce(last_alarm_at, now, policy.debounce_s):
        outcome = GateOutcome.SUPPRESSED
    item_id = item.item_id if item is not None else read.item_id
    return GateDecision(outcome, reason, read.gate_id, read.uid, item_id)


def _verdict(
    read: GateRead, item: ItemFacts | None, policy: GatePolicy
) -> tuple[GateOutcome, AlarmReason | PassReason]:
    if item is not None:
        if item.in_library_only and policy.in_library_only_alarms:
            return GateOutcome.ALARM, AlarmReason.IN_LIBRARY_ONLY
        if item.on_loan:
            return GateOutcome.PASS, PassReason.ON_LOAN
        return GateOutcome.ALARM, AlarmReason.NOT_ON_LOAN
    if read.decode is TagDecodeStatus.DECODED:
        if policy.unknown_tag == "alarm":
            return GateOutcome.ALARM, AlarmReason.UNKNOWN_TAG
        return GateOutcome.PASS, PassReason.UNKNOWN_TAG_LOGGED
    if policy.unknown_tag == "alarm":
        return GateOutcome.ALARM, AlarmReason.UNREADABLE_TAG
    return GateOutcome.PASS, PassReason.UNREADABLE_TAG_LOGGED


def _within_debounce(last_alarm_at: datetime | None, now: datetime, debounce_s: float) -> bool:
    if last_alarm_at is None:
        return False
    elapsed = (now - last_alarm_at).total_seconds()
    return 0 <= elapsed < debounce_s
