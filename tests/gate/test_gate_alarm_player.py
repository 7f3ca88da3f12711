"""Which alarm sounds and what the relays show: patterns over time, overlaps, silence."""

from __future__ import annotations

from gate_controller.alarm_pattern import ALL_OFF, OutputState, parse_alarm_pattern, steady_alarm
from gate_controller.alarm_player import AlarmPlayer

BOTH = OutputState(light=True, buzzer=True)
LIGHT = OutputState(light=True, buzzer=False)
BEEP = parse_alarm_pattern({"steps": [{"light": True, "buzzer": True, "ms": 500},
                                      {"light": True, "buzzer": False, "ms": 250}], "duration_ms": 2000})


def test_nothing_sounds_until_an_alarm_starts() -> None:
    player = AlarmPlayer(steady_alarm(3000))
    assert player.wanted(0.0) == ALL_OFF and not player.active(0.0) and player.next_change(0.0) is None


def test_a_pattern_plays_through_its_change_points_and_ends_off() -> None:
    player = AlarmPlayer(BEEP)
    player.start("a1", now=10.0)
    assert player.wanted(10.0) == BOTH
    assert player.next_change(10.0) == 10.5
    assert player.wanted(10.5) == LIGHT
    assert player.next_change(10.5) == 10.75
    assert player.wanted(10.75) == BOTH
    assert player.wanted(11.3) == LIGHT  # 1250-1500 ms: second cycle's pause
    assert player.wanted(11.999) == BOTH  # 1500-2000 ms: the third cycle, cut short by the duration
    assert player.next_change(11.6) == 12.0
    assert player.wanted(12.0) == ALL_OFF and not player.active(12.0)


def test_a_command_may_ask_for_another_length() -> None:
    player = AlarmPlayer(steady_alarm(3000))
    player.start("a1", now=0.0, duration_ms=500)
    assert player.wanted(0.49) == BOTH and player.wanted(0.5) == ALL_OFF


def test_a_second_alarm_restarts_the_pattern_but_never_shortens_the_first() -> None:
    player = AlarmPlayer(BEEP)
    player.start("long", now=0.0, duration_ms=5000)
    player.start("short", now=1.0, duration_ms=1000)
    assert player.wanted(1.0) == BOTH  # restarted from the first step
    assert player.alarm_ids(2.0) == {"long", "short"}
    assert player.active(4.9) and not player.active(5.0)


def test_silence_stops_the_named_alarm_or_everything() -> None:
    player = AlarmPlayer(steady_alarm(3000))
    player.start("a1", now=0.0)
    assert not player.silence("other", now=1.0) and player.active(1.0)
    assert player.silence("a1", now=1.0)
    assert player.wanted(1.0) == ALL_OFF and player.next_change(1.0) is None
    player.start("a2", now=2.0)
    assert player.silence(None, now=2.5) and not player.active(2.5)
    assert not player.silence(None, now=2.6)


def test_a_backend_alarm_for_what_already_sounds_can_silence_it() -> None:
    player = AlarmPlayer(steady_alarm(3000))
    assert not player.also_known_as("backend-1", now=0.0)
    player.start("local-1", now=0.0)
    assert player.also_known_as("backend-1", now=0.5)
    assert player.silence("backend-1", now=1.0) and not player.active(1.0)
