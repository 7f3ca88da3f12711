from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gate_controller.alarm_pattern import (
    ALL_OFF,
    AlarmPattern,
    AlarmPatternError,
    AlarmStep,
    ChangePoint,
    OutputState,
    change_points,
    output_at,
    parse_alarm_pattern,
    steady_alarm,
)

BOTH = OutputState(light=True, buzzer=True)
LIGHT = OutputState(light=True, buzzer=False)
BEEPING = {"steps": [{"light": True, "buzzer": True, "ms": 500}, {"light": True, "buzzer": False, "ms": 250}],
           "duration_ms": 2000}


def test_steady_alarm_is_on_for_its_duration_then_off() -> None:
    pattern = steady_alarm(3000)
    assert output_at(pattern, -0.001) == ALL_OFF
    assert output_at(pattern, 0.0) == BOTH
    assert output_at(pattern, 2.999) == BOTH
    assert output_at(pattern, 3.0) == ALL_OFF
    assert change_points(pattern) == [ChangePoint(0, BOTH), ChangePoint(3000, ALL_OFF)]


def test_beeping_pattern_repeats_and_is_cut_at_the_duration() -> None:
    pattern = parse_alarm_pattern(BEEPING)
    assert [output_at(pattern, t) for t in (0.0, 0.499, 0.5, 0.749, 0.75, 1.3, 1.999, 2.0)] == [
        BOTH, BOTH, LIGHT, LIGHT, BOTH, LIGHT, BOTH, ALL_OFF
    ]
    assert change_points(pattern) == [
        ChangePoint(0, BOTH), ChangePoint(500, LIGHT), ChangePoint(750, BOTH), ChangePoint(1250, LIGHT),
        ChangePoint(1500, BOTH), ChangePoint(2000, ALL_OFF),
    ]


def test_last_step_truncated_mid_way() -> None:
    pattern = parse_alarm_pattern({**BEEPING, "duration_ms": 1600})
    points = change_points(pattern)
    assert points[-2:] == [ChangePoint(1500, BOTH), ChangePoint(1600, ALL_OFF)]
    assert output_at(pattern, 1.55) == BOTH


def test_pattern_starting_dark_and_equal_steps_merge() -> None:
    pattern = AlarmPattern(
        steps=[AlarmStep(light=False, buzzer=False, ms=100), AlarmStep(light=True, buzzer=False, ms=100),
               AlarmStep(light=True, buzzer=False, ms=100)],
        duration_ms=600,
    )
    assert change_points(pattern) == [
        ChangePoint(0, ALL_OFF), ChangePoint(100, LIGHT), ChangePoint(300, ALL_OFF), ChangePoint(400, LIGHT),
        ChangePoint(600, ALL_OFF),
    ]


def test_pattern_that_ends_dark_has_no_extra_final_point() -> None:
    pattern = parse_alarm_pattern({"steps": [{"light": True, "buzzer": True, "ms": 100},
                                             {"light": False, "buzzer": False, "ms": 100}], "duration_ms": 200})
    assert change_points(pattern) == [ChangePoint(0, BOTH), ChangePoint(100, ALL_OFF)]


def test_with_duration_keeps_the_steps() -> None:
    pattern = parse_alarm_pattern(BEEPING).with_duration(500)
    assert pattern.steps == parse_alarm_pattern(BEEPING).steps
    assert change_points(pattern) == [ChangePoint(0, BOTH), ChangePoint(500, ALL_OFF)]


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"steps": [], "duration_ms": 100}, "steps"),
        ({"steps": [{"light": True, "buzzer": True, "ms": 0}]}, "steps.0.ms"),
        ({"steps": [{"light": True, "buzzer": True, "ms": 100, "volume": 3}]}, "steps.0.volume"),
        ({"steps": [{"light": True, "ms": 100}]}, "steps.0.buzzer"),
        ({"steps": [{"light": True, "buzzer": True, "ms": 100}], "duration_ms": -1}, "duration_ms"),
    ],
)
def test_invalid_patterns_name_the_field(data: dict, field: str) -> None:
    with pytest.raises(AlarmPatternError) as info:
        parse_alarm_pattern(data, "site.yaml gates[0].alarm")
    assert str(info.value).startswith("site.yaml gates[0].alarm: ")
    assert f"{field}:" in str(info.value)


step = st.builds(AlarmStep, light=st.booleans(), buzzer=st.booleans(), ms=st.integers(min_value=10, max_value=400))


@given(st.lists(step, min_size=1, max_size=6), st.integers(min_value=10, max_value=5000),
       st.integers(min_value=-100, max_value=6000))
def test_output_at_agrees_with_change_points(steps: list[AlarmStep], duration_ms: int, at_ms: int) -> None:
    pattern = AlarmPattern(steps=steps, duration_ms=duration_ms)
    points = change_points(pattern)
    assert [p.at_ms for p in points] == sorted({p.at_ms for p in points})  # strictly increasing
    assert all(a.state != b.state for a, b in zip(points, points[1:]))  # each point is a change
    assert points[-1].state == ALL_OFF and points[-1].at_ms <= duration_ms
    expected = ALL_OFF if at_ms < 0 else [p.state for p in points if p.at_ms <= at_ms][-1]
    assert output_at(pattern, at_ms / 1000) == expected
