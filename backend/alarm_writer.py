"""The one thread that writes gate traffic to the database, off the gate path.

The gate path (in the gate process, see backend.gate_process) hands over alarm
records and device sightings; they reach this writer through a queue and nobody
waits. The writer stores them, then tells the live dashboards (only when a
dashboard is listening: shaping the stream's events costs queries); device
sightings that pile up are coalesced (only the latest per device matters) and
written with one query for all of their rows.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterable

from sqlalchemy import insert, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from backend.alarm_queries import alarms_out
from backend.db.models import Alarm, AlarmItemRow, AlarmStatus, Device
from backend.gate_records import AlarmRecord, AlarmRecorder, DeviceSighting, merge_sightings
from backend.notifier import AlarmNotifier
from openshelf.contract import AlarmItem

__all__ = ["AlarmRecord", "AlarmRecorder", "AlarmWriter", "DeviceSighting", "WriterStats"]

log = logging.getLogger(__name__)

_STOP = object()
_BATCH = 500
# Fewer, larger transactions: dashboards do not notice 50 ms.
_COALESCE_S = 0.05
_RETRY_DELAYS_S = (0.2, 1.0, 3.0)


@dataclass
class WriterStats:
    alarms_written: int = 0
    devices_written: int = 0
    failures: int = 0
    dropped: int = 0


class AlarmWriter:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        notifier: AlarmNotifier,
        *,
        housekeeping: Callable[[Session], None] | None = None,
        housekeeping_every_s: float = 3600.0,
    ) -> None:
        self._sessions = sessions
        self._notifier = notifier
        self._housekeeping = housekeeping
        self._housekeeping_every_s = housekeeping_every_s
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._accepting = False
        self._stopping = threading.Event()
        self.stats = WriterStats()

    # ------------------------------------------------------------------ AlarmRecorder

    def record_alarm(self, record: AlarmRecord) -> None:
        self._enqueue(record)

    def record_device(self, sighting: DeviceSighting) -> None:
        self._enqueue(sighting)

    def _enqueue(self, job: object) -> None:
        if not self._accepting:
            self.stats.dropped += 1
            log.warning("alarm writer is not running; dropped %s", type(job).__name__)
            return
        self._queue.put(job)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("alarm writer already started")
        self._accepting = True
        self._thread = threading.Thread(target=self._run, name="alarm-writer", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Write everything already queued, then stop."""
        if self._thread is None:
            return
        self._accepting = False
        self._stopping.set()
        self._queue.put(_STOP)
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            log.error("alarm writer did not finish within %.0f s", timeout_s)
        self._thread = None

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Wait until everything queued so far is written (for tests and orderly shutdown)."""
        if not self._accepting:
            return False
        done = threading.Event()
        self._enqueue(done)
        return done.wait(timeout_s)

    # ------------------------------------------------------------------ the thread

    def _run(self) -> None:
        next_housekeeping = time.monotonic() if self._housekeeping is not None else float("inf")
        while True:
            if self._housekeeping is not None and time.monotonic() >= next_housekeeping:
                self._attempt(self._housekeeping, "housekeeping")
                next_housekeeping = time.monotonic() + self._housekeeping_every_s
            batch = self._take_batch(timeout_s=max(0.1, next_housekeeping - time.monotonic()))
            stop = any(job is _STOP for job in batch)
            self._process(job for job in batch if job is not _STOP)
            if stop:
                return

    def _take_batch(self, timeout_s: float) -> list[object]:
        """The next job and whatever follows within a short window (fewer, larger transactions)."""
        try:
            batch = [self._queue.get(timeout=min(timeout_s, 60.0))]
        except queue.Empty:
            return []
        window_ends = time.monotonic() + _COALESCE_S
        while len(batch) < _BATCH and batch[-1] is not _STOP and not isinstance(batch[-1], threading.Event):
            remaining = window_ends - time.monotonic()
            try:
                batch.append(self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _process(self, jobs: Iterable[object]) -> None:
        alarms: list[AlarmRecord] = []
        sightings: dict[str, DeviceSighting] = {}
        for job in jobs:
            if isinstance(job, AlarmRecord):
                alarms.append(job)
            elif isinstance(job, DeviceSighting):
                earlier = sightings.get(job.device_id)
                sightings[job.device_id] = job if earlier is None else merge_sightings(earlier, job)
            elif isinstance(job, threading.Event):
                self._write_alarms(alarms)
                self._write_devices(sightings)
                alarms, sightings = [], {}
                job.set()
        self._write_alarms(alarms)
        self._write_devices(sightings)

    def _write_alarms(self, records: list[AlarmRecord]) -> None:
        """One transaction for the whole batch: the per-transaction cost is what competes with the gate path."""
        if not records:
            return

        def write(session: Session) -> None:
            unique = list({record.alarm_id: record for record in records}.values())
            ids = [record.alarm_id for record in unique]
            known = set(session.scalars(select(Alarm.id).where(Alarm.id.in_(ids))))
            fresh = [record for record in unique if record.alarm_id not in known]
            if not fresh:
                return
            session.execute(insert(Alarm), [_alarm_values(record) for record in fresh])
            session.execute(insert(AlarmItemRow), [
                {"alarm_id": record.alarm_id, "uid": item.uid, "item_id": item.item_id, "reason": _reason(item)}
                for record in fresh for item in record.items
            ])
            session.commit()
            self.stats.alarms_written += len(fresh)
            if self._notifier.subscriber_count == 0:
                return  # nobody watching: a dashboard that opens later loads the list
            for shaped in alarms_out(session, [record.alarm_id for record in fresh]):
                self._notifier.publish("alarm", shaped.model_dump(mode="json"))

        self._attempt(write, f"{len(records)} alarm(s)")

    def _write_devices(self, sightings: dict[str, DeviceSighting]) -> None:
        if not sightings:
            return

        def write(session: Session) -> None:
            rows = {row.id: row for row in session.scalars(select(Device).where(Device.id.in_(list(sightings))))}
            for device_id, sighting in sightings.items():
                row = rows.get(device_id)
                if row is None:
                    row = Device(id=device_id, kind=sighting.kind)
                    session.add(row)
                _apply(row, sighting)
            session.commit()
            self.stats.devices_written += len(sightings)

        self._attempt(write, f"{len(sightings)} device update(s)")

    def _attempt(self, work: Callable[[Session], None], what: str) -> None:
        for attempt, delay in enumerate((0.0, *_RETRY_DELAYS_S), start=1):
            if delay:
                # A database restart should not lose an alarm; at shutdown retry without waiting.
                self._stopping.wait(delay)
            try:
                with self._sessions() as session:
                    work(session)
                return
            except SQLAlchemyError:
                log.exception("writing %s failed (attempt %d)", what, attempt)
        self.stats.failures += 1
        log.error("gave up writing %s", what)


def _alarm_values(record: AlarmRecord) -> dict[str, object]:
    return {
        "id": record.alarm_id,
        "gate_id": record.gate_id,
        "created_at": record.created_at,
        "decided_locally": record.decided_locally,
        "status": AlarmStatus.OPEN.value,
    }


def _reason(item: AlarmItem) -> str:
    reason = item.reason
    return reason.value if hasattr(reason, "value") else str(reason)


def _apply(row: Device, sighting: DeviceSighting) -> None:
    row.kind = sighting.kind
    if row.last_seen is None or sighting.at >= row.last_seen:
        row.last_seen = sighting.at
    if sighting.online is not None:
        row.online = sighting.online
    if sighting.state is not None:
        row.state = sighting.state.model_dump(mode="json")
