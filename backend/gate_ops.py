"""Gate operations: people counted per gate and hour, live occupancy, beam faults.

The gates publish ``PassageEvent`` and ``BeamFaultEvent``. The MQTT thread only
queues them; ``GateOpsRecorder``'s own thread writes them (hour buckets upserted,
every passage counted once by its event id) and then tells the live dashboards.

Hours are the library's *local* clock hours: a bucket's ``hour_start`` is the UTC
instant at which that local hour began, so a reset at the opening hour always
falls on a bucket boundary, whatever the zone's offset. Occupancy is entries minus
exits since the latest daily reset; missed or doubled beam readings make it drift,
so a negative balance is shown as 0 and flagged instead of being hidden.
"""

from __future__ import annotations

import logging
import queue
import re
import threading
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone, tzinfo
from typing import Callable, Iterable, Protocol, Sequence, TypeVar
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from backend.db.gate_ops_models import BeamFault, GateHourCount, PassageSeen
from openshelf.site import ID_PATTERN, BackendSettings, known_time_zone
from openshelf.contract import (
    BeamFaultEvent,
    Channel,
    Kind,
    PassageDirection,
    PassageEvent,
    TopicParts,
    topic,
    utcnow,
)

log = logging.getLogger(__name__)

OCCUPANCY_EVENT = "occupancy"
DEVICE_HEALTH_EVENT = "device_health"
MAX_COUNT_RANGE = timedelta(days=31)
HOUR = timedelta(hours=1)
_STOP = object()
_BATCH = 500
_RETRY_DELAYS_S = (0.2, 1.0, 3.0)
_MAX_LANE = 16
_GATE_ID = re.compile(ID_PATTERN)
T = TypeVar("T")


class GateOpsError(Exception):
    """A gate-operations request cannot be answered as asked (e.g. a bad time range)."""


# ---------------------------------------------------------------------------- settings and clock hours


class OccupancySettings(BaseModel):
    """When the library's day starts (occupancy resets) and in which time zone its clock hours run."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    reset_hour: int = Field(default=0, ge=0, le=23, description="local hour at which occupancy restarts at 0")
    timezone: str | None = Field(default=None, description="IANA zone, e.g. Asia/Ho_Chi_Minh; None = the host's")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        return known_time_zone(value)

    @property
    def zone(self) -> tzinfo | None:
        return ZoneInfo(self.timezone) if self.timezone else None


def occupancy_settings(backend: BackendSettings) -> OccupancySettings:
    """The reset hour and zone from the site file's ``backend`` section (``timezone``, ``day_starts_at_hour``)."""
    return OccupancySettings(reset_hour=backend.day_starts_at_hour, timezone=backend.timezone)


def local_hour_start(at: datetime, zone: tzinfo | None) -> datetime:
    """The UTC instant at which the local clock hour holding ``at`` began (zone None = the host's)."""
    local = at.astimezone(zone)
    return local.replace(minute=0, second=0, microsecond=0).astimezone(timezone.utc)


def day_start(now: datetime, settings: OccupancySettings) -> datetime:
    """The latest daily reset at or before ``now``, in UTC."""
    zone = settings.zone
    local_now = now.astimezone(zone)
    day = local_now.date()
    if local_now.hour < settings.reset_hour:
        day -= timedelta(days=1)
    return _local_instant(day, settings.reset_hour, zone)


def _local_instant(day: date, hour: int, zone: tzinfo | None) -> datetime:
    naive = datetime(day.year, day.month, day.day, hour)
    # A naive datetime's astimezone() reads it as the host's local time, with the offset valid on that day.
    local = naive.astimezone() if zone is None else naive.replace(tzinfo=zone)
    return local.astimezone(timezone.utc)


# ---------------------------------------------------------------------------- what the API and the stream send


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OccupancyCount(_Strict):
    entries: int
    exits: int
    net: int = Field(description="entries − exits; negative when the count has drifted")
    occupancy: int = Field(description="people inside: net, but never below 0")
    drift: bool = Field(description="more exits than entries were counted since the reset")

    @classmethod
    def of(cls, entries: int, exits: int, **extra: object) -> "OccupancyCount":
        net = entries - exits
        return cls(entries=entries, exits=exits, net=net, occupancy=max(net, 0), drift=net < 0, **extra)


class GateOccupancy(OccupancyCount):
    gate_id: str
    name: str
    beam_fault: bool = Field(description="a beam of this gate is blocked or faulty: counting is unreliable")


class Occupancy(_Strict):
    since: datetime = Field(description="the daily reset these counts start at")
    as_of: datetime
    reset_hour: int
    gates: list[GateOccupancy]
    total: OccupancyCount


class HourCount(_Strict):
    hour_start: datetime
    entries: int
    exits: int


class GateCounts(_Strict):
    gate_id: str
    start: datetime
    end: datetime
    hours: list[HourCount]


@dataclass(frozen=True)
class GateRef:
    gate_id: str
    name: str = ""


# ---------------------------------------------------------------------------- writing


@dataclass(frozen=True)
class PassageRecord:
    event_id: str
    gate_id: str
    direction: PassageDirection
    at: datetime  # when it is counted: the gate's time, or ours when the gate's clock is off


@dataclass(frozen=True)
class BeamFaultRecord:
    gate_id: str
    lane: str
    beam: str
    stuck: bool
    since: datetime
    reported_at: datetime


def store_passages(session: Session, records: Sequence[PassageRecord], zone: tzinfo | None, now: datetime) -> int:
    """Add passages to their gate's hour buckets, each event id once; commits; returns how many were new."""
    unique = {record.event_id: record for record in records}
    known = set(session.scalars(select(PassageSeen.event_id).where(PassageSeen.event_id.in_(list(unique)))))
    fresh = [record for event_id, record in unique.items() if event_id not in known]
    if not fresh:
        return 0
    session.add_all(PassageSeen(event_id=record.event_id, gate_id=record.gate_id, received_at=now)
                    for record in fresh)
    deltas: dict[tuple[str, datetime], list[int]] = {}
    for record in fresh:
        delta = deltas.setdefault((record.gate_id, local_hour_start(record.at, zone)), [0, 0])
        delta[0 if record.direction is PassageDirection.IN else 1] += 1
    for (gate_id, hour), (entries, exits) in deltas.items():
        _add_to_hour(session, gate_id, hour, entries, exits)
    session.commit()
    return len(fresh)


def _add_to_hour(session: Session, gate_id: str, hour: datetime, entries: int, exits: int) -> None:
    updated = session.execute(
        update(GateHourCount)
        .where(GateHourCount.gate_id == gate_id, GateHourCount.hour_start == hour)
        .values(entries=GateHourCount.entries + entries, exits=GateHourCount.exits + exits)
        .execution_options(synchronize_session=False)
    )
    if updated.rowcount == 0:  # type: ignore[attr-defined]
        session.add(GateHourCount(gate_id=gate_id, hour_start=hour, entries=entries, exits=exits))
        session.flush()


def store_beam_faults(session: Session, records: Sequence[BeamFaultRecord]) -> list[BeamFaultRecord]:
    """Keep each beam's latest report (a late, older report changes nothing); commits; returns those applied."""
    applied = []
    for record in records:
        row = session.get(BeamFault, (record.gate_id, record.lane, record.beam))
        if row is not None and record.since < row.since:
            continue
        if row is None:
            row = BeamFault(gate_id=record.gate_id, lane=record.lane, beam=record.beam)
            session.add(row)
        row.stuck = record.stuck
        row.since = record.since
        row.reported_at = record.reported_at
        session.flush()
        applied.append(record)
    session.commit()
    return applied


def prune_seen_passages(session: Session, older_than: datetime) -> int:
    """Forget passage ids received before ``older_than`` (a redelivery comes within minutes, not days)."""
    result = session.execute(delete(PassageSeen).where(PassageSeen.received_at < older_than))
    session.commit()
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------- reading


def read_occupancy(session: Session, now: datetime, settings: OccupancySettings,
                   gates: Sequence[GateRef]) -> Occupancy:
    """Entries, exits and people inside per gate and in total, since the latest daily reset."""
    since = day_start(now, settings)
    sums: dict[str, tuple[int, int]] = {
        gate_id: (int(entries), int(exits))
        for gate_id, entries, exits in session.execute(
            select(GateHourCount.gate_id, func.sum(GateHourCount.entries), func.sum(GateHourCount.exits))
            .where(GateHourCount.hour_start >= since)
            .group_by(GateHourCount.gate_id)
        )
    }
    faulty = set(session.scalars(select(BeamFault.gate_id).where(BeamFault.stuck.is_(True))))
    names = {gate.gate_id: gate.name for gate in gates}
    # Configured gates in site order, then any other gate heard from today.
    gate_ids = [*names, *sorted(set(sums) - set(names))]
    rows = [
        GateOccupancy.of(*sums.get(gate_id, (0, 0)), gate_id=gate_id, name=names.get(gate_id, ""),
                         beam_fault=gate_id in faulty)
        for gate_id in gate_ids
    ]
    total = OccupancyCount.of(sum(row.entries for row in rows), sum(row.exits for row in rows))
    return Occupancy(since=since, as_of=now, reset_hour=settings.reset_hour, gates=rows, total=total)


def hourly_counts(session: Session, gate_id: str, start: datetime, end: datetime,
                  settings: OccupancySettings) -> GateCounts:
    """Every local hour from the one holding ``start`` up to ``end`` (exclusive), empty hours as zeros."""
    if start.tzinfo is None or end.tzinfo is None:
        raise GateOpsError("from and to need a time zone, e.g. 2026-03-01T08:00:00+07:00")
    if end <= start:
        raise GateOpsError("to must be later than from")
    if end - start > MAX_COUNT_RANGE:
        raise GateOpsError(f"at most {MAX_COUNT_RANGE.days} days at a time")
    first = local_hour_start(start, settings.zone)
    stored = {
        row.hour_start: row
        for row in session.scalars(
            select(GateHourCount).where(GateHourCount.gate_id == gate_id, GateHourCount.hour_start >= first,
                                        GateHourCount.hour_start < end)
        )
    }
    hours = set(stored)
    hour = first
    while hour < end:
        hours.add(hour)
        hour += HOUR
    counts = [
        HourCount(hour_start=hour, entries=stored[hour].entries if hour in stored else 0,
                  exits=stored[hour].exits if hour in stored else 0)
        for hour in sorted(hours)
    ]
    return GateCounts(gate_id=gate_id, start=start, end=end, hours=counts)


def gate_is_known(session: Session, gate_id: str, configured: Iterable[str]) -> bool:
    if gate_id in set(configured):
        return True
    return session.scalar(select(GateHourCount.gate_id).where(GateHourCount.gate_id == gate_id).limit(1)) is not None


# ---------------------------------------------------------------------------- the recorder


class Subscriber(Protocol):
    """The part of ``MqttLink`` the recorder uses."""

    def subscribe(self, topic_filter: str, model: type, handler: Callable[[TopicParts, object], None]) -> None: ...


class EventPublisher(Protocol):
    """The part of ``AlarmNotifier`` the recorder uses: live events to the dashboards."""

    def publish(self, name: str, data: dict[str, object]) -> None: ...


class GateOpsRecorder:
    """Passages and beam faults from the broker to the database, on one thread of its own."""

    def __init__(
        self,
        link: Subscriber,
        sessions: sessionmaker[Session],
        notifier: EventPublisher,
        settings: OccupancySettings,
        gates: Sequence[GateRef],
        *,
        site_id: str,
        root: str,
        clock: Callable[[], datetime] = utcnow,
        max_clock_skew: timedelta = timedelta(minutes=10),
        remember_ids_for: timedelta = timedelta(days=2),
        housekeeping_every_s: float = 3600.0,
    ) -> None:
        self._link = link
        self._sessions = sessions
        self._notifier = notifier
        self._settings = settings
        self._gates = tuple(gates)
        self._site = site_id
        self._root = root
        self._clock = clock
        self._max_skew = max_clock_skew
        self._remember_ids_for = remember_ids_for
        self._housekeeping_every_s = housekeeping_every_s
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._accepting = False
        self._stopping = threading.Event()
        self._drifting: set[str] = set()
        self.passages_counted = 0
        self.failures = 0

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Subscribe (the link may connect later) and start writing."""
        if self._thread is not None:
            raise RuntimeError("gate-operations recorder already started")
        self._accepting = True
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="gate-ops-writer", daemon=True)
        self._thread.start()
        self._link.subscribe(self._filter("passage"), PassageEvent, self._on_passage)
        self._link.subscribe(self._filter("beam_fault"), BeamFaultEvent, self._on_beam_fault)

    def stop(self, timeout_s: float = 10.0) -> None:
        """Write everything already queued, then stop."""
        if self._thread is None:
            return
        self._accepting = False
        self._stopping.set()
        self._queue.put(_STOP)
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            log.error("gate-operations writer did not finish within %.0f s", timeout_s)
        self._thread = None

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Wait until everything queued so far is written."""
        if not self._accepting:
            return False
        done = threading.Event()
        self._queue.put(done)
        return done.wait(timeout_s)

    # ------------------------------------------------------------------ MQTT thread: memory only

    def _on_passage(self, parts: TopicParts, event: PassageEvent) -> None:
        gate_id = self._gate_of(parts, event.gate_id, "passage")
        if gate_id is not None:
            at = self._passage_time(gate_id, event.at)
            self._enqueue(PassageRecord(event.event_id, gate_id, event.direction, at))

    def _on_beam_fault(self, parts: TopicParts, event: BeamFaultEvent) -> None:
        gate_id = self._gate_of(parts, event.gate_id, "beam fault")
        if gate_id is None:
            return
        if len(event.lane) > _MAX_LANE:
            log.warning("gate %s: beam fault names a lane longer than %d characters; ignored", gate_id, _MAX_LANE)
            return
        since = event.since
        if since.tzinfo is None:  # a beam may have been stuck for long, so only the zone is checked
            log.warning("gate %s: beam fault time %s has no time zone; taken as received", gate_id, since.isoformat())
            since = self._clock()
        self._enqueue(BeamFaultRecord(gate_id, event.lane, event.beam, event.stuck, since, self._clock()))

    def _gate_of(self, parts: TopicParts, claimed: str, what: str) -> str | None:
        """The gate is the topic's device (the broker lets a gate publish only there), not what the payload says."""
        if not _GATE_ID.match(parts.device_id):
            # Only possible on a broker without the ACL; one such row would fail the whole batch's transaction.
            log.warning("a %s from an impossible gate id %r; ignored", what, parts.device_id[:80])
            return None
        if claimed != parts.device_id:
            log.warning("gate %s sent a %s naming gate %r; counted for %s", parts.device_id, what, claimed[:80],
                        parts.device_id)
        return parts.device_id

    def _passage_time(self, gate_id: str, at: datetime) -> datetime:
        """The gate's time, unless it has no zone or is far off ours: then the time we received it."""
        now = self._clock()
        if at.tzinfo is None:
            log.warning("gate %s: passage time %s has no time zone; counted at receipt", gate_id, at.isoformat())
            return now
        if abs(at - now) > self._max_skew:
            log.warning("gate %s: passage time %s is %.0f s off the backend's clock; counted at receipt", gate_id,
                        at.isoformat(), (at - now).total_seconds())
            return now
        return at

    def _enqueue(self, job: object) -> None:
        if not self._accepting:
            log.warning("gate-operations writer is not running; dropped %s", type(job).__name__)
            return
        self._queue.put(job)

    # ------------------------------------------------------------------ the writer thread

    def _run(self) -> None:
        next_housekeeping = time.monotonic()
        while True:
            if time.monotonic() >= next_housekeeping:
                self._attempt(lambda session: prune_seen_passages(session, self._clock() - self._remember_ids_for),
                              "pruning counted passage ids")
                next_housekeeping = time.monotonic() + self._housekeeping_every_s
            batch = self._take_batch(max(0.1, next_housekeeping - time.monotonic()))
            stop = any(job is _STOP for job in batch)
            self._process([job for job in batch if job is not _STOP])
            if stop:
                return

    def _take_batch(self, timeout_s: float) -> list[object]:
        try:
            batch = [self._queue.get(timeout=min(timeout_s, 60.0))]
        except queue.Empty:
            return []
        while len(batch) < _BATCH:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _process(self, jobs: list[object]) -> None:
        passages: list[PassageRecord] = []
        faults: list[BeamFaultRecord] = []
        for job in jobs:
            if isinstance(job, PassageRecord):
                passages.append(job)
            elif isinstance(job, BeamFaultRecord):
                faults.append(job)
            elif isinstance(job, threading.Event):
                self._write(passages, faults)
                passages, faults = [], []
                job.set()
        self._write(passages, faults)

    def _write(self, passages: list[PassageRecord], faults: list[BeamFaultRecord]) -> None:
        counted = 0
        if passages:
            counted = self._attempt(
                lambda session: store_passages(session, passages, self._settings.zone, self._clock()),
                f"{len(passages)} passage(s)") or 0
            self.passages_counted += counted
        applied = self._attempt(lambda session: store_beam_faults(session, faults),
                                f"{len(faults)} beam fault(s)") if faults else None
        for record in applied or ():
            log.log(logging.WARNING if record.stuck else logging.INFO, "gate %s lane %s: %s %s since %s",
                    record.gate_id, record.lane, record.beam, "stuck" if record.stuck else "clear",
                    record.since.isoformat())
            self._notifier.publish(DEVICE_HEALTH_EVENT, {"device_id": record.gate_id, "beam": record.beam,
                                                         "lane": record.lane, "stuck": record.stuck})
        if counted or applied:
            self._publish_occupancy()

    def _publish_occupancy(self) -> None:
        occupancy = self._attempt(
            lambda session: read_occupancy(session, self._clock(), self._settings, self._gates), "occupancy")
        if occupancy is None:
            return
        drifting = {gate.gate_id for gate in occupancy.gates if gate.drift}
        for gate_id in sorted(drifting - self._drifting):
            log.warning("gate %s counted more exits than entries since %s: occupancy shown as 0 (count drift)",
                        gate_id, occupancy.since.isoformat())
        self._drifting = drifting
        self._notifier.publish(OCCUPANCY_EVENT, occupancy.model_dump(mode="json"))

    def _attempt(self, work: Callable[[Session], T], what: str) -> T | None:
        for attempt, delay in enumerate((0.0, *_RETRY_DELAYS_S), start=1):
            if delay:
                self._stopping.wait(delay)  # a database restart should not lose counts; at shutdown do not wait
            try:
                with self._sessions() as session:
                    return work(session)
            except SQLAlchemyError:
                log.exception("writing %s failed (attempt %d)", what, attempt)
        self.failures += 1
        log.error("gave up on %s", what)
        return None

    def _filter(self, name: str) -> str:
        return topic(self._site, Kind.GATE, "+", Channel.EVENT, name, root=self._root, wildcards=True)
