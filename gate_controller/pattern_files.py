"""Alarm patterns from configuration: ``firmware_configs/gates/patterns/<name>.yaml`` or a file path.

A pattern file holds only the ``steps``; how long an alarm lasts is the gate's
``alarm_duration_ms`` in the site file (the backend sends the same value with
each alarm command), so the length is configured in one place.
"""

from __future__ import annotations

import re
from pathlib import Path

from openshelf.config import ConfigError, read_yaml
from openshelf.paths import firmware_dir

from gate_controller.alarm_pattern import AlarmPattern, AlarmPatternError, parse_alarm_pattern, steady_alarm

PATTERN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class PatternFileError(ConfigError):
    """An alarm pattern file is missing, unreadable or invalid (the message names file and field)."""


def patterns_dir() -> Path:
    return firmware_dir() / "gates" / "patterns"


def available_patterns() -> list[str]:
    return sorted(path.stem for path in patterns_dir().glob("*.yaml"))


def pattern_path(name_or_path: str | Path) -> Path:
    """A bare name (``beep``) means a shipped pattern; anything path-like is a file."""
    text = str(name_or_path)
    if isinstance(name_or_path, Path) or "/" in text or text.endswith((".yaml", ".yml")):
        return Path(name_or_path)
    if not PATTERN_NAME.match(text):
        raise PatternFileError(f"alarm pattern name {text!r}: use letters, digits, '-', '_' or '.'")
    return patterns_dir() / f"{text}.yaml"


def load_alarm_pattern(name_or_path: str | Path | None, duration_ms: int) -> AlarmPattern:
    """The gate's alarm pattern, lasting ``duration_ms``; ``None`` means steady (light and buzzer on)."""
    if name_or_path is None:
        return steady_alarm(duration_ms)
    path = pattern_path(name_or_path)
    if not path.is_file():
        known = ", ".join(available_patterns()) or "none"
        raise PatternFileError(f"{path}: no such alarm pattern (shipped patterns: {known})")
    try:
        data = read_yaml(path)
    except ConfigError as exc:
        raise PatternFileError(str(exc)) from None
    if "duration_ms" in data:
        raise PatternFileError(
            f"{path}: duration_ms: set the alarm's length with gates[].alarm_duration_ms in the site file"
        )
    try:
        return parse_alarm_pattern({**data, "duration_ms": duration_ms}, str(path))
    except AlarmPatternError as exc:
        raise PatternFileError(str(exc)) from None
