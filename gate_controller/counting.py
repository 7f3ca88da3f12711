"""People counting for one gate lane from two beams (pure: no I/O, no clock of its own).

Beam A is on the library side, beam B on the exit side. The rule (docs/gate-io.md):
the first beam to break and the last beam to clear give the direction —
A first and B last is an exit (``out``), B first and A last an entry (``in``);
anything else is someone who turned back and is not counted. A passage not
finished within ``passage_timeout_s`` is dropped; a beam broken for longer than
``stuck_beam_s`` raises a fault until it clears. Changes shorter than
``glitch_s`` are ignored. Times are ``time.monotonic()`` seconds from the caller.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from gate_controller.io import BEAM_ROLES, BeamRole, BeamSample

logger = logging.getLogger(__name__)


class CountingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    glitch_s: float = Field(default=0.03, ge=0, le=1, description="shorter changes are noise")
    passage_timeout_s: float = Field(default=3.0, gt=0, le=60, description="first break to both clear")
    stuck_beam_s: float = Field(default=10.0, gt=0, le=3600, description="broken longer = fault")


@dataclass(frozen=True)
class BeamEdge:
    beam: BeamRole
    broken: bool
    at: float


@dataclass(frozen=True)
class Passage:
    """Someone went through. ``at`` is the first break: the anchor for RFID reads and snapshots."""

    direction: Literal["in", "out"]
    at: float
    cleared_at: float


@dataclass(frozen=True)
class NoPassage:
    """Beams were broken but nobody went through (or the order cannot tell)."""

    reason: Literal["turned_back", "ambiguous", "timeout"]
    at: float
    ended_at: float


@dataclass(frozen=True)
class BeamStuck:
    beam: BeamRole
    since: float
    at: float


@dataclass(frozen=True)
class BeamRecovered:
    beam: BeamRole
    at: float
    stuck_for: float


CountingEvent = Passage | NoPassage | BeamStuck | BeamRecovered


class _Debounce:
    """One beam's accepted state; a raw change counts only once it has lasted ``min_s``."""

    def __init__(self, min_s: float) -> None:
        self.min_s = min_s
        self.stable = False
        self.raw = False
        self.pending_since: float | None = None

    def resync(self, raw: bool) -> None:
        self.stable = self.raw = raw
        self.pending_since = None

    def observe(self, raw: bool, at: float) -> None:
        if raw == self.raw:
            return
        self.raw = raw
        self.pending_since = None if raw == self.stable else at

    def confirm(self, now: float) -> float | None:
        """If the pending change has lasted long enough, accept it and return when it began."""
        since = self.pending_since
        if since is None or now - since < self.min_s:
            return None
        self.stable = self.raw
        self.pending_since = None
        return since


class PassageCounter:
    """Feed it samples (:meth:`feed`) or edges (:meth:`feed_edge` + :meth:`tick`) in time order."""

    def __init__(self, config: CountingConfig | None = None) -> None:
        self.config = config or CountingConfig()
        self._clear()

    def _clear(self) -> None:
        self._filters = {beam: _Debounce(self.config.glitch_s) for beam in BEAM_ROLES}
        # accepted beam states as the state machine has processed them (the filters run ahead)
        self._broken_since: dict[BeamRole, float | None] = {beam: None for beam in BEAM_ROLES}
        self._stuck_reported: dict[BeamRole, bool] = {beam: False for beam in BEAM_ROLES}
        self._state: Literal["resync", "idle", "active", "aborted"] = "resync"
        self._first: BeamRole | None = None
        self._first_at = 0.0
        self._last_seen = float("-inf")

    @property
    def state(self) -> str:
        return self._state

    def reset(self) -> None:
        """Forget everything (e.g. after an I/O outage); the next sample is taken as it is."""
        self._clear()

    # ---- inputs ---------------------------------------------------------------------------

    def feed(self, sample: BeamSample) -> list[CountingEvent]:
        if not self._in_order(sample.at):
            return []
        raw = {"beam_a": sample.beam_a, "beam_b": sample.beam_b}
        if self._state == "resync":
            return self._resync(raw, sample.at)
        # a sample only proves the value at its own instant: a change seen once and gone
        # by the next sample is treated as a glitch, whatever its true length was
        for beam in BEAM_ROLES:
            self._filters[beam].observe(raw[beam], sample.at)
        return self._advance(sample.at)

    def feed_edge(self, beam: BeamRole, broken: bool, at: float) -> list[CountingEvent]:
        """An exact edge (e.g. from an interrupt). Call :meth:`tick` as time passes, too."""
        if not self._in_order(at):
            return []
        if self._state == "resync":
            self._state = "idle"  # edge sources start from "both clear"
        events = self._advance(at)
        self._filters[beam].observe(broken, at)
        return events + self._advance(at)

    def tick(self, now: float) -> list[CountingEvent]:
        """Let time pass without a new input: confirms lasting changes, fires timeouts."""
        if not self._in_order(now) or self._state == "resync":
            return []
        return self._advance(now)

    # ---- machinery ------------------------------------------------------------------------

    def _in_order(self, at: float) -> bool:
        if at < self._last_seen:
            logger.warning("beam input at %.3f is older than %.3f: ignored", at, self._last_seen)
            return False
        self._last_seen = at
        return True

    def _resync(self, raw: dict[BeamRole, bool], at: float) -> list[CountingEvent]:
        for beam in BEAM_ROLES:
            self._filters[beam].resync(raw[beam])
            self._broken_since[beam] = at if raw[beam] else None
        # someone already standing in a beam: let them leave before counting again
        self._state = "aborted" if any(raw.values()) else "idle"
        return []

    def _advance(self, now: float) -> list[CountingEvent]:
        edges = []
        for beam in BEAM_ROLES:
            since = self._filters[beam].confirm(now)
            if since is not None:
                edges.append(BeamEdge(beam, self._filters[beam].stable, since))
        events: list[CountingEvent] = []
        for group in _group_by_time(sorted(edges, key=lambda edge: edge.at)):
            events += self._check_time(group[0].at)
            events += self._apply(group)
        events += self._check_time(now)
        return events

    def _apply(self, group: list[BeamEdge]) -> list[CountingEvent]:
        """Edges that happened at the same instant (order between them unknown)."""
        at = group[0].at
        events: list[CountingEvent] = []
        for edge in group:
            if edge.broken:
                self._broken_since[edge.beam] = at
            else:
                events += self._beam_cleared(edge.beam, at)
        breaks = [edge.beam for edge in group if edge.broken]
        clears = [edge.beam for edge in group if not edge.broken]
        if self._state == "idle" and breaks:
            self._state = "active"
            self._first = breaks[0] if len(breaks) == 1 else None
            self._first_at = at
        if self._state in ("active", "aborted") and not self._any_broken():
            events += self._finish(clears[0] if len(clears) == 1 else None, at)
        return events

    def _finish(self, last: BeamRole | None, at: float) -> list[CountingEvent]:
        was_active = self._state == "active"
        self._state = "idle"
        if not was_active:
            return []
        first, started = self._first, self._first_at
        if first is None or last is None:
            return [NoPassage("ambiguous", started, at)]
        if (first, last) == ("beam_a", "beam_b"):
            return [Passage("out", started, at)]
        if (first, last) == ("beam_b", "beam_a"):
            return [Passage("in", started, at)]
        return [NoPassage("turned_back", started, at)]

    def _beam_cleared(self, beam: BeamRole, at: float) -> list[CountingEvent]:
        since = self._broken_since[beam]
        self._broken_since[beam] = None
        if not self._stuck_reported[beam]:
            return []
        self._stuck_reported[beam] = False
        return [BeamRecovered(beam, at, at - since if since is not None else 0.0)]

    def _check_time(self, now: float) -> list[CountingEvent]:
        events: list[CountingEvent] = []
        if self._state == "active" and now - self._first_at > self.config.passage_timeout_s:
            events.append(NoPassage("timeout", self._first_at, now))
            self._state = "aborted" if self._any_broken() else "idle"
        for beam in BEAM_ROLES:
            since = self._broken_since[beam]
            if since is not None and not self._stuck_reported[beam] and now - since >= self.config.stuck_beam_s:
                self._stuck_reported[beam] = True
                events.append(BeamStuck(beam, since, now))
        return events

    def _any_broken(self) -> bool:
        return any(since is not None for since in self._broken_since.values())


def _group_by_time(edges: list[BeamEdge]) -> list[list[BeamEdge]]:
    groups: list[list[BeamEdge]] = []
    for edge in edges:
        if groups and groups[-1][0].at == edge.at:
            groups[-1].append(edge)
        else:
            groups.append([edge])
    return groups
