"""Locally decided alarms: one per patron, a tag read again is not a new alarm."""

from __future__ import annotations

import itertools

from gate_controller.alarm_grouping import Joined, LocalAlarmGroups
from openshelf.contract import AlarmItem, AlarmReason


def item(uid: str) -> AlarmItem:
    return AlarmItem(uid=uid, item_id=None, reason=AlarmReason.SECURED_TAG)


A, B, C = "E004010000000001", "E004010000000002", "E004010000000003"


def groups(window_s: float = 0.5, hold_s: float = 3.0) -> LocalAlarmGroups:
    ids = (f"local-{n}" for n in itertools.count(1))
    return LocalAlarmGroups(window_s, repeat_hold_s=hold_s, new_alarm_id=lambda: next(ids))


def test_items_within_the_window_make_one_alarm_listing_all_of_them() -> None:
    grouper = groups()
    joined_a, alarm = grouper.add(item(A), "r1", now=1.0)
    joined_b, same = grouper.add(item(B), "r2", now=1.3)
    assert (joined_a, joined_b) == (Joined.NEW, Joined.ADDED)
    assert alarm is same and alarm is not None
    assert [entry.uid for entry in alarm.items] == [A, B]
    assert alarm.read_ids == ["r1", "r2"]
    assert grouper.alarm_of_read("r2") == "local-1"


def test_a_read_after_the_window_opens_a_new_alarm() -> None:
    grouper = groups()
    grouper.add(item(A), "r1", now=1.0)
    joined, alarm = grouper.add(item(B), "r2", now=1.5)
    assert joined is Joined.NEW and alarm is not None and alarm.alarm_id == "local-2"


def test_the_same_tag_read_again_is_one_alarm_with_one_item() -> None:
    grouper = groups()
    _, alarm = grouper.add(item(A), "r1", now=1.0)
    joined, again = grouper.add(item(A), "r2", now=1.2)
    assert joined is Joined.REPEAT and again is alarm
    assert alarm is not None and [entry.uid for entry in alarm.items] == [A]
    assert grouper.alarm_of_read("r2") == "local-1"  # a backend answer for r2 must not sound again


def test_a_tag_does_not_alarm_again_while_its_hold_lasts_even_after_the_window() -> None:
    grouper = groups(window_s=0.5, hold_s=3.0)
    grouper.add(item(A), "r1", now=1.0)
    closed = grouper.close("local-1")
    assert closed is not None
    assert grouper.add(item(A), "r2", now=3.9) == (Joined.REPEAT, None)
    assert grouper.held(A, 3.9) == "local-1"
    joined, alarm = grouper.add(item(A), "r3", now=4.0)
    assert joined is Joined.NEW and alarm is not None and alarm.alarm_id == "local-2"


def test_a_closed_alarm_takes_no_more_items() -> None:
    grouper = groups(window_s=0.5)
    grouper.add(item(A), "r1", now=1.0)
    grouper.close("local-1")
    joined, alarm = grouper.add(item(B), "r2", now=1.1)
    assert joined is Joined.NEW and alarm is not None and alarm.alarm_id == "local-2"


def test_a_zero_window_makes_every_tag_its_own_alarm() -> None:
    grouper = groups(window_s=0.0, hold_s=0.0)
    first = grouper.add(item(A), "r1", now=1.0)
    second = grouper.add(item(B), "r2", now=1.0)
    assert first[0] is Joined.NEW and second[0] is Joined.NEW
    assert first[1] is not None and second[1] is not None and first[1].alarm_id != second[1].alarm_id
    assert grouper.close("local-2") is not None


def test_unknown_reads_belong_to_no_alarm() -> None:
    grouper = groups()
    grouper.add(item(C), "r1", now=1.0)
    assert grouper.alarm_of_read("never-seen") is None
    assert grouper.held(A, 1.0) is None
