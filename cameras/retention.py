"""Local retention on the camera host: evidence and spool files past the retention period are deleted.

The backend holds the authoritative copy of every snapshot and clip, with its
own retention and the "kept for an incident" exception. The camera host keeps
its files only as a working copy, so here the rule is simple: whatever is older
than the retention period goes, uploaded or not (an upload still waiting after
that long has outlived its purpose, and footage must not outlive the period).
Age is the newest modification time within an alarm's folder or a spool job.
"""

from __future__ import annotations

import logging
import shutil
import threading
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable, Iterable

from openshelf.contract import utcnow

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
DEFAULT_INTERVAL_S = 3600.0


@dataclass(frozen=True)
class SweepResult:
    evidence_folders: int = 0
    spool_jobs: int = 0
    unsent_jobs: int = 0  # of spool_jobs: never accepted by the backend

    @property
    def removed(self) -> int:
        return self.evidence_folders + self.spool_jobs


def _mtime(path: Path) -> datetime:
    return datetime.fromtimestamp(path.stat().st_mtime, tz=timezone.utc)


def _newest(paths: Iterable[Path]) -> datetime | None:
    times = []
    for path in paths:
        try:
            times.append(_mtime(path))
        except OSError:
            continue  # vanished meanwhile (e.g. the uploader finished it)
    return max(times, default=None)


def sweep(camera_dir: Path, max_age: timedelta, now: datetime) -> SweepResult:
    """Delete evidence folders and spool jobs under ``camera_dir`` whose newest file is older than ``max_age``."""
    cutoff = now - max_age
    folders = _sweep_evidence(camera_dir / "evidence", cutoff)
    jobs, unsent = _sweep_spool(camera_dir / "spool", cutoff, unsent_possible=True)
    failed, _ = _sweep_spool(camera_dir / "spool" / "failed", cutoff, unsent_possible=False)
    result = SweepResult(folders, jobs + failed, unsent)
    if result.removed:
        log.info("retention: deleted %d evidence folder(s) and %d spool job(s) older than %s under %s",
                 folders, jobs + failed, cutoff.isoformat(), camera_dir)
    return result


def _sweep_evidence(evidence_dir: Path, cutoff: datetime) -> int:
    if not evidence_dir.is_dir():
        return 0
    removed = 0
    for entry in evidence_dir.iterdir():
        files = [path for path in entry.rglob("*") if path.is_file()] if entry.is_dir() else [entry]
        newest = _newest(files) if files else _newest([entry])
        if newest is None or newest >= cutoff:
            continue
        try:
            if entry.is_dir():
                shutil.rmtree(entry)
            else:
                entry.unlink()
            removed += 1
        except OSError as exc:
            log.warning("retention: could not delete %s: %s", entry, exc.strerror or exc)
    return removed


def _job_key(name: str) -> str:
    # "<job>.json", "<job>.jpg", ".<job>.json.partial" all belong to <job>.
    return name.lstrip(".").split(".", 1)[0]


def _sweep_spool(spool_dir: Path, cutoff: datetime, *, unsent_possible: bool) -> tuple[int, int]:
    if not spool_dir.is_dir():
        return 0, 0
    groups: dict[str, list[Path]] = defaultdict(list)
    for entry in spool_dir.iterdir():
        if entry.is_file():
            groups[_job_key(entry.name)].append(entry)
    removed = unsent = 0
    for key, files in sorted(groups.items()):
        newest = _newest(files)
        if newest is None or newest >= cutoff:
            continue
        description = spool_dir / f"{key}.json"
        if unsent_possible and description in files:
            unsent += 1
            log.warning("retention: deleting upload %s that the backend never accepted (older than %s)",
                        key, cutoff.isoformat())
        # The job description first: without it the uploader no longer sees the job.
        for path in sorted(files, key=lambda path: path != description):
            try:
                path.unlink(missing_ok=True)
            except OSError as exc:
                log.warning("retention: could not delete %s: %s", path, exc.strerror or exc)
        removed += 1
    return removed, unsent


class RetentionSweeper:
    """Sweeps a camera's folder at start and then every ``interval_s`` on its own thread."""

    def __init__(
        self,
        camera_dir: Path,
        retention_days: float,
        *,
        interval_s: float = DEFAULT_INTERVAL_S,
        clock: Clock = utcnow,
    ) -> None:
        if retention_days <= 0 or interval_s <= 0:
            raise ValueError("retention_days and interval_s must be positive")
        self.camera_dir = camera_dir
        self.max_age = timedelta(days=retention_days)
        self.interval_s = interval_s
        self._clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.sweeps = 0
        self.total = SweepResult()

    def sweep_now(self) -> SweepResult:
        result = sweep(self.camera_dir, self.max_age, self._clock())
        self.sweeps += 1
        self.total = SweepResult(self.total.evidence_folders + result.evidence_folders,
                                 self.total.spool_jobs + result.spool_jobs,
                                 self.total.unsent_jobs + result.unsent_jobs)
        return result

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("retention sweeper already started")
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"retention-{self.camera_dir.name}", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def _run(self) -> None:
        while True:
            try:
                self.sweep_now()
            except Exception:  # noqa: BLE001 - a failed sweep is retried at the next interval
                log.exception("retention sweep of %s failed", self.camera_dir)
            if self._stop.wait(self.interval_s):
                return
