"""Alarm patterns named in the site file: shipped names, own files, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from gate_controller.alarm_pattern import ALL_OFF, OutputState, output_at, steady_alarm
from gate_controller.pattern_files import PatternFileError, available_patterns, load_alarm_pattern
from openshelf.config import ConfigError


def test_no_pattern_means_steady_for_the_gate_duration() -> None:
    assert load_alarm_pattern(None, 2500) == steady_alarm(2500)


def test_every_shipped_pattern_loads_with_the_site_duration() -> None:
    names = available_patterns()
    assert {"steady", "beep", "quiet"} <= set(names)
    for name in names:
        pattern = load_alarm_pattern(name, 4000)
        assert pattern.duration_ms == 4000
        assert output_at(pattern, 4.0) == ALL_OFF


def test_the_quiet_pattern_never_sounds_the_buzzer() -> None:
    pattern = load_alarm_pattern("quiet", 3000)
    states = {output_at(pattern, ms / 1000) for ms in range(0, 3000, 10)}
    assert states == {OutputState(light=True, buzzer=False), ALL_OFF}


def test_a_pattern_file_by_path(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text("steps:\n  - {light: true, buzzer: false, ms: 100}\n  - {light: false, buzzer: true, ms: 100}\n",
                    encoding="utf-8")
    pattern = load_alarm_pattern(str(path), 1000)
    assert output_at(pattern, 0.15) == OutputState(light=False, buzzer=True)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("steps:\n  - {light: true, buzzer: true, ms: 5}\n", "steps.0.ms"),
        ("steps:\n  - {light: true, buzzer: true, ms: 100, colour: red}\n", "colour"),
        ("steps: []\n", "steps"),
        ("steps:\n  - {light: true, buzzer: true, ms: 100}\nduration_ms: 5000\n", "alarm_duration_ms"),
        ("- just a list\n", "mapping"),
    ],
)
def test_a_bad_pattern_file_names_file_and_field(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(PatternFileError) as caught:
        load_alarm_pattern(str(path), 3000)
    assert str(path) in str(caught.value) and message in str(caught.value)
    assert isinstance(caught.value, ConfigError)


def test_an_unknown_name_lists_the_shipped_patterns() -> None:
    with pytest.raises(PatternFileError, match="beep"):
        load_alarm_pattern("no-such-pattern", 3000)
    with pytest.raises(PatternFileError, match="letters"):
        load_alarm_pattern("bad name!", 3000)
