"""The beam-order rule, sample by sample (20 Hz unless a test says otherwise)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gate_controller.counting import (
    BeamRecovered,
    BeamStuck,
    CountingConfig,
    CountingEvent,
    NoPassage,
    Passage,
    PassageCounter,
)
from gate_controller.io import BeamSample

PERIOD = 0.05
CLEAR, A, B, AB = (False, False), (True, False), (False, True), (True, True)


def play(script: list[tuple[tuple[bool, bool], float]], counter: PassageCounter | None = None,
         start: float = 100.0) -> list[CountingEvent]:
    """Feed samples every PERIOD: each script entry is (beam state, how long it lasts)."""
    counter = counter or PassageCounter()
    events: list[CountingEvent] = []
    now = start
    for (beam_a, beam_b), duration in script:
        end = now + duration
        while now < end - 1e-9:
            events += counter.feed(BeamSample(beam_a=beam_a, beam_b=beam_b, at=round(now, 6)))
            now += PERIOD
    return events


def walk(first: tuple[bool, bool], last: tuple[bool, bool]) -> list[tuple[tuple[bool, bool], float]]:
    return [(CLEAR, 0.2), (first, 0.1), (AB, 0.2), (last, 0.1), (CLEAR, 0.3)]


def test_a_then_b_is_an_exit_anchored_at_the_first_break() -> None:
    events = play(walk(A, B))
    assert events == [Passage("out", at=100.2, cleared_at=pytest.approx(100.6))]


def test_b_then_a_is_an_entry() -> None:
    events = play(walk(B, A))
    assert [type(e) for e in events] == [Passage] and events[0].direction == "in"


def test_turned_back_from_the_middle_is_not_counted() -> None:
    # A, then both, then B clears first: the person went back to the library side
    assert [e.reason for e in play(walk(A, A))] == ["turned_back"]  # type: ignore[union-attr]
    assert [e.reason for e in play(walk(B, B))] == ["turned_back"]  # type: ignore[union-attr]


def test_one_beam_only_is_turned_back() -> None:
    for single in (A, B):
        events = play([(CLEAR, 0.1), (single, 0.4), (CLEAR, 0.2)])
        assert len(events) == 1 and isinstance(events[0], NoPassage) and events[0].reason == "turned_back"


def test_both_beams_breaking_at_once_is_ambiguous() -> None:
    events = play([(CLEAR, 0.1), (AB, 0.3), (B, 0.1), (CLEAR, 0.2)])
    assert [(type(e), e.reason) for e in events] == [(NoPassage, "ambiguous")]  # type: ignore[union-attr]


def test_both_beams_clearing_at_once_is_ambiguous() -> None:
    events = play([(CLEAR, 0.1), (A, 0.1), (AB, 0.3), (CLEAR, 0.2)])
    assert [(type(e), e.reason) for e in events] == [(NoPassage, "ambiguous")]  # type: ignore[union-attr]


def test_one_sample_glitch_is_ignored() -> None:
    counter = PassageCounter()
    events = play([(CLEAR, 0.2), (A, 0.05), (CLEAR, 0.3), (B, 0.05), (CLEAR, 0.3)], counter)
    assert events == [] and counter.state == "idle"


def test_without_glitch_filter_the_same_blip_is_seen() -> None:
    counter = PassageCounter(CountingConfig(glitch_s=0))
    events = play([(CLEAR, 0.2), (A, 0.05), (CLEAR, 0.3)], counter)
    assert [(type(e), e.reason) for e in events] == [(NoPassage, "turned_back")]  # type: ignore[union-attr]


def test_glitch_inside_a_passage_does_not_split_it() -> None:
    # beam A flickers clear for one sample while the person is between the beams
    script = [(CLEAR, 0.2), (A, 0.1), (AB, 0.1), (B, 0.05), (AB, 0.1), (B, 0.1), (CLEAR, 0.3)]
    events = play(script)
    assert [(type(e), getattr(e, "direction", None)) for e in events] == [(Passage, "out")]


def test_standing_person_times_out_and_is_not_counted_when_leaving() -> None:
    counter = PassageCounter()
    events = play([(CLEAR, 0.2), (A, 5.0), (AB, 0.2), (B, 0.2), (CLEAR, 0.3)], counter)
    assert len(events) == 1 and isinstance(events[0], NoPassage) and events[0].reason == "timeout"
    assert events[0].ended_at - events[0].at > 3.0
    assert counter.state == "idle"
    # the next person is counted normally
    assert [type(e) for e in play(walk(A, B), counter, start=110.0)] == [Passage]


def test_stuck_beam_is_a_fault_once_and_recovers() -> None:
    counter = PassageCounter()
    events = play([(CLEAR, 0.2), (B, 12.0), (CLEAR, 0.3)], counter)
    kinds = [type(e) for e in events]
    assert kinds == [NoPassage, BeamStuck, BeamRecovered]
    stuck, recovered = events[1], events[2]
    assert isinstance(stuck, BeamStuck) and stuck.beam == "beam_b" and stuck.at - stuck.since >= 10.0
    assert isinstance(recovered, BeamRecovered) and recovered.stuck_for == pytest.approx(12.0)


def test_start_with_a_broken_beam_waits_for_it_to_clear() -> None:
    counter = PassageCounter()
    events = play([(A, 0.3), (AB, 0.2), (B, 0.2), (CLEAR, 0.3)], counter)
    assert events == [] and counter.state == "idle"
    assert [type(e) for e in play(walk(B, A), counter, start=110.0)] == [Passage]


def test_reset_forgets_a_half_seen_passage() -> None:
    counter = PassageCounter()
    play([(CLEAR, 0.2), (A, 0.2)], counter)
    assert counter.state == "active"
    counter.reset()
    events = play([(CLEAR, 0.3)], counter, start=200.0)
    assert events == [] and counter.state == "idle"


def test_out_of_order_samples_are_ignored() -> None:
    counter = PassageCounter()
    counter.feed(BeamSample(False, False, at=10.0))
    assert counter.feed(BeamSample(True, True, at=9.0)) == []
    assert counter.state == "idle"


def test_passages_back_to_back() -> None:
    script = walk(A, B) + walk(B, A) + walk(A, B)
    events = play(script)
    assert [e.direction for e in events] == ["out", "in", "out"]  # type: ignore[union-attr]


def test_edges_feed_with_exact_times() -> None:
    counter = PassageCounter()
    events: list[CountingEvent] = []
    for beam, broken, at in [("beam_a", True, 1.0), ("beam_b", True, 1.12), ("beam_a", False, 1.4),
                             ("beam_b", False, 1.52)]:
        events += counter.feed_edge(beam, broken, at)  # type: ignore[arg-type]
    events += counter.tick(1.6)
    assert events == [Passage("out", at=1.0, cleared_at=1.52)]


def test_edges_shorter_than_the_glitch_limit_are_dropped() -> None:
    counter = PassageCounter()
    events = counter.feed_edge("beam_a", True, 1.0) + counter.feed_edge("beam_a", False, 1.01) + counter.tick(2.0)
    assert events == []
    events = counter.feed_edge("beam_a", True, 3.0) + counter.feed_edge("beam_a", False, 3.04) + counter.tick(4.0)
    assert [(type(e), e.reason) for e in events] == [(NoPassage, "turned_back")]  # type: ignore[union-attr]


def test_timeout_fires_on_tick_without_new_edges() -> None:
    counter = PassageCounter()
    counter.feed_edge("beam_a", True, 1.0)
    assert counter.tick(3.9) == []
    events = counter.tick(4.1)
    assert [(type(e), e.reason) for e in events] == [(NoPassage, "timeout")]  # type: ignore[union-attr]


def test_config_is_validated() -> None:
    with pytest.raises(ValueError):
        CountingConfig(glitch_s=-1)
    with pytest.raises(ValueError):
        CountingConfig(unknown=1)  # type: ignore[call-arg]


breaks = st.floats(min_value=0.1, max_value=0.6)  # how long each phase of a walk lasts


@settings(max_examples=60, deadline=None)
@given(first=breaks, overlap=breaks, last=breaks, offset=st.floats(min_value=0, max_value=0.049),
       outbound=st.booleans())
def test_any_walk_through_is_counted_once_in_its_direction(first: float, overlap: float, last: float,
                                                           offset: float, outbound: bool) -> None:
    lead, trail = (A, B) if outbound else (B, A)
    events = play([(CLEAR, 0.2 + offset), (lead, first), (AB, overlap), (trail, last), (CLEAR, 0.3)])
    assert [type(e) for e in events] == [Passage]
    assert events[0].direction == ("out" if outbound else "in")  # type: ignore[union-attr]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from([CLEAR, A, B, AB]), min_size=1, max_size=60))
def test_random_noise_never_counts_more_passages_than_first_breaks(states: list[tuple[bool, bool]]) -> None:
    counter = PassageCounter(CountingConfig(glitch_s=0))
    events = play([(CLEAR, 0.1)] + [(state, PERIOD) for state in states] + [(CLEAR, 0.1)], counter)
    episodes = sum(1 for before, after in zip([CLEAR] + states, states) if before == CLEAR and after != CLEAR)
    passages = [e for e in events if isinstance(e, Passage)]
    outcomes = [e for e in events if isinstance(e, (Passage, NoPassage))]
    assert len(outcomes) == episodes  # every episode ends in exactly one verdict
    assert len(passages) <= episodes
    assert counter.state == "idle"
