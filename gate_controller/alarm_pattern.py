"""Alarm sequences as configuration (pure: no I/O, no clock).

A pattern is a list of steps ``{light, buzzer, ms}`` played in a loop until
``duration_ms`` has passed; after that both outputs are off. The gate service asks
:func:`output_at` for the state at "time since the alarm started", or walks
:func:`change_points` to know when to write the relays.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

MIN_STEP_MS = 10  # relays need ~5-10 ms to operate; shorter steps would be lost


class AlarmPatternError(ValueError):
    """An alarm pattern in the configuration is invalid."""


class AlarmStep(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    light: bool
    buzzer: bool
    ms: int = Field(ge=MIN_STEP_MS, le=60_000)


class AlarmPattern(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    steps: list[AlarmStep] = Field(min_length=1, max_length=64)
    duration_ms: int = Field(default=3000, ge=MIN_STEP_MS, le=600_000)

    @property
    def cycle_ms(self) -> int:
        return sum(step.ms for step in self.steps)

    def with_duration(self, duration_ms: int) -> AlarmPattern:
        """The same sequence for another length (an alarm command may ask for one)."""
        return AlarmPattern(steps=self.steps, duration_ms=duration_ms)


@dataclass(frozen=True)
class OutputState:
    light: bool
    buzzer: bool


@dataclass(frozen=True)
class ChangePoint:
    at_ms: int
    state: OutputState


ALL_OFF = OutputState(light=False, buzzer=False)


def steady_alarm(duration_ms: int = 3000) -> AlarmPattern:
    """Light and buzzer on for the whole alarm (the default)."""
    return AlarmPattern(steps=[AlarmStep(light=True, buzzer=True, ms=duration_ms)], duration_ms=duration_ms)


def parse_alarm_pattern(data: Any, source: str = "alarm pattern") -> AlarmPattern:
    try:
        return AlarmPattern.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in item['loc']) or '(top level)'}: {item['msg']}" for item in exc.errors()
        )
        raise AlarmPatternError(f"{source}: {problems}") from None


def output_at(pattern: AlarmPattern, elapsed_s: float) -> OutputState:
    """Relay state ``elapsed_s`` seconds after the alarm started (off before 0 and after the end)."""
    elapsed_ms = round(elapsed_s * 1000.0, 6)  # 1.13 s must land on 1130 ms, not 1129.999…
    if elapsed_ms < 0 or elapsed_ms >= pattern.duration_ms:
        return ALL_OFF
    into_cycle = elapsed_ms % pattern.cycle_ms
    for step in pattern.steps:
        if into_cycle < step.ms:
            return OutputState(step.light, step.buzzer)
        into_cycle -= step.ms
    last = pattern.steps[-1]  # only reachable through float rounding at the very end of a cycle
    return OutputState(last.light, last.buzzer)


def change_points(pattern: AlarmPattern) -> list[ChangePoint]:
    """Every instant (ms since start) where the outputs change, from 0 to the final all-off."""
    points = [ChangePoint(0, ALL_OFF)]
    at = 0
    while at < pattern.duration_ms:
        for step in pattern.steps:
            if at >= pattern.duration_ms:
                break
            state = OutputState(step.light, step.buzzer)
            if state != points[-1].state:
                points.append(ChangePoint(at, state))
            at += step.ms
    if points[-1].state != ALL_OFF:
        points.append(ChangePoint(pattern.duration_ms, ALL_OFF))
    # the synthetic "off before start" entry only stays when the pattern itself starts all off
    if len(points) > 1 and points[1].at_ms == 0:
        points.pop(0)
    return points
