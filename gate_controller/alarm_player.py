"""Which alarm is sounding and what the relays should show right now (pure: the caller passes the time).

One pattern plays at a time. A new alarm while one sounds restarts the pattern
from its first step and lasts at least as long as the one it interrupts, so a
second patron never shortens the first one's alarm. Silencing stops everything
that sounds (or only the named alarm's, if it is the one sounding).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, replace

from gate_controller.alarm_pattern import (
    ALL_OFF, MIN_STEP_MS, AlarmPattern, ChangePoint, OutputState, change_points, output_at,
)


@dataclass(frozen=True)
class _Playing:
    alarm_ids: frozenset[str]
    pattern: AlarmPattern
    started_at: float
    points: tuple[ChangePoint, ...]

    @property
    def ends_at(self) -> float:
        return self.started_at + self.pattern.duration_ms / 1000


class AlarmPlayer:
    def __init__(self, pattern: AlarmPattern) -> None:
        self.pattern = pattern
        self._playing: _Playing | None = None

    def start(self, alarm_id: str, now: float, duration_ms: int | None = None) -> None:
        """Sound ``alarm_id`` from ``now`` for ``duration_ms`` (default: the pattern's length)."""
        duration_s = (duration_ms or self.pattern.duration_ms) / 1000
        ids = frozenset({alarm_id})
        current = self._current(now)
        if current is not None:
            duration_s = max(duration_s, current.ends_at - now)
            ids |= current.alarm_ids
        pattern = self.pattern.with_duration(max(MIN_STEP_MS, round(duration_s * 1000)))
        self._playing = _Playing(ids, pattern, now, tuple(change_points(pattern)))

    def also_known_as(self, alarm_id: str, now: float) -> bool:
        """Let ``alarm_id`` name what is sounding (a backend alarm for reads the gate already alarmed
        for locally), so that silencing it from the dashboard works. True if something sounds."""
        current = self._current(now)
        if current is None:
            return False
        self._playing = replace(current, alarm_ids=current.alarm_ids | {alarm_id})
        return True

    def silence(self, alarm_id: str | None, now: float) -> bool:
        """Stop sounding; with an ``alarm_id``, only if that alarm is sounding. True if it stopped."""
        current = self._current(now)
        if current is None or (alarm_id is not None and alarm_id not in current.alarm_ids):
            return False
        self._playing = None
        return True

    def active(self, now: float) -> bool:
        return self._current(now) is not None

    def alarm_ids(self, now: float) -> frozenset[str]:
        current = self._current(now)
        return current.alarm_ids if current is not None else frozenset()

    def wanted(self, now: float) -> OutputState:
        current = self._current(now)
        if current is None:
            return ALL_OFF
        return output_at(current.pattern, now - current.started_at)

    def next_change(self, now: float) -> float | None:
        """When the relays must next be written (None when nothing sounds)."""
        current = self._current(now)
        if current is None:
            return None
        elapsed_ms = (now - current.started_at) * 1000
        offsets = [point.at_ms for point in current.points]
        index = bisect.bisect_right(offsets, elapsed_ms)
        if index >= len(offsets):
            return current.ends_at
        return current.started_at + offsets[index] / 1000

    def _current(self, now: float) -> _Playing | None:
        playing = self._playing
        if playing is not None and now >= playing.ends_at:
            self._playing = playing = None
        return playing
