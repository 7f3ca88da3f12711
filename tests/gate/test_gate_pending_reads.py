"""Reads waiting for the backend: deadlines, answers by read id or by tag, answers that overtake reads."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gate_controller.pending_reads import PendingReads
from openshelf.contract import TagEvent


def read(uid: str = "E004010000000301") -> TagEvent:
    return TagEvent(reader_id="r1", gate_id="gate-1", uid=uid, afi=0x07)


def test_a_read_is_due_at_its_deadline_and_not_before() -> None:
    pending = PendingReads(deadline_s=0.15)
    event = read()
    added = pending.add(event, now=10.0)
    assert added is not None and added.deadline == 10.15
    assert pending.next_deadline() == 10.15
    assert pending.due(10.149) == []
    assert [due.event for due in pending.due(10.15)] == [event]
    assert len(pending) == 0 and pending.next_deadline() is None


def test_reads_expire_oldest_first() -> None:
    pending = PendingReads(deadline_s=0.1)
    first, second, third = read("E004010000000001"), read("E004010000000002"), read("E004010000000003")
    pending.add(first, 1.0)
    pending.add(second, 1.05)
    pending.add(third, 1.2)
    assert [due.event for due in pending.due(1.16)] == [first, second]
    assert pending.next_deadline() == 1.3


def test_an_answer_by_read_id_stops_the_wait() -> None:
    pending = PendingReads(deadline_s=0.1)
    event = read()
    pending.add(event, 0.0)
    assert [answered.event for answered in pending.resolve([event.event_id])] == [event]
    assert pending.due(1.0) == []


def test_an_answer_by_tag_uid_answers_every_waiting_read_of_that_tag_only() -> None:
    pending = PendingReads(deadline_s=0.1)
    twice_a, twice_b, other = read("E004010000000001"), read("E004010000000001"), read("E004010000000002")
    for event in (twice_a, twice_b, other):
        pending.add(event, 0.0)
    answered = pending.resolve((), uids=["E004010000000001"])
    assert {answered_read.event.event_id for answered_read in answered} == {twice_a.event_id, twice_b.event_id}
    assert [due.event for due in pending.due(1.0)] == [other]


def test_an_answer_that_overtook_its_read_keeps_the_read_from_waiting() -> None:
    pending = PendingReads(deadline_s=0.1)
    event = read()
    assert pending.resolve([event.event_id]) == []
    assert pending.add(event, 0.0) is None
    assert len(pending) == 0


def test_the_same_read_twice_waits_once() -> None:
    pending = PendingReads(deadline_s=0.1)
    event = read()
    assert pending.add(event, 0.0) is not None
    assert pending.add(event, 0.01) is None
    assert len(pending.due(1.0)) == 1


@given(st.lists(st.tuples(st.floats(0, 5), st.booleans()), max_size=40), st.floats(0, 10))
def test_every_read_is_either_answered_or_due_exactly_once(arrivals, check_at) -> None:
    pending = PendingReads(deadline_s=0.15)
    now = 0.0
    added: list[TagEvent] = []
    answered: set[str] = set()
    for step, answer in arrivals:
        now += step
        event = read()
        pending.add(event, now)
        added.append(event)
        if answer:
            answered |= {done.event.event_id for done in pending.resolve([event.event_id])}
    due_early = {done.event.event_id for done in pending.due(check_at)}
    due_late = {done.event.event_id for done in pending.due(now + 1)}
    assert not due_early & due_late and not (due_early | due_late) & answered
    assert due_early | due_late | answered == {event.event_id for event in added}
