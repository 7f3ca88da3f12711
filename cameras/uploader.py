"""A durable upload queue: evidence waits on disk until the backend has it.

Each job is a payload file plus a ``<job>.json`` description in the spool
directory; the description is written last (atomically), so a job is either
complete on disk or absent. Jobs go out oldest first:

* snapshot → ``PUT {backend}/api/evidence/{alarm_id}/snapshot`` (image/jpeg)
* clip     → ``PUT {backend}/api/evidence/{alarm_id}/clip`` (video/x-msvideo or video/mp4)
* problem  → ``POST {backend}/api/evidence/{alarm_id}/problem`` (JSON ``{camera_id, kind, problem}``)

with ``X-Captured-At`` (ISO 8601) and HTTP Basic ``camera_id:secret``.
200/201/204 = done (the endpoints are idempotent, so a retry after a lost
answer is harmless); 408, 429, 5xx and network errors = retry with a capped
backoff; any other 4xx = give up, log, and move the job to ``failed/``.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Literal, Protocol
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

log = logging.getLogger(__name__)

EvidenceKind = Literal["snapshot", "clip"]
JobKind = Literal["snapshot", "clip", "problem"]
ALARM_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"
_DONE = {200, 201, 204}
_RETRYABLE_4XX = {408, 429}


class UploadError(Exception):
    """Evidence could not be queued."""


class EvidenceProblem(BaseModel):
    """Body of ``POST /api/evidence/{alarm_id}/problem``: why a camera has no evidence for an alarm."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    camera_id: str
    kind: EvidenceKind
    problem: str = Field(max_length=500)


class UploadJob(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1] = 1
    job_id: str
    alarm_id: str = Field(pattern=ALARM_ID_PATTERN)
    kind: JobKind
    payload_file: str | None = None
    content_type: str
    captured_at: datetime | None = None
    problem: EvidenceProblem | None = None


class EvidenceSink(Protocol):
    """What the camera service needs from an uploader."""

    def enqueue_snapshot(self, alarm_id: str, path: Path, captured_at: datetime) -> str: ...

    def enqueue_clip(self, alarm_id: str, path: Path, captured_at: datetime, content_type: str) -> str: ...

    def enqueue_problem(self, alarm_id: str, kind: EvidenceKind, problem: str) -> str: ...


class Uploader:
    """Spools evidence under ``spool_dir`` and uploads it on its own thread."""

    def __init__(
        self,
        spool_dir: Path,
        backend_url: str,
        camera_id: str,
        secret: str | None,
        *,
        backoff_initial_s: float = 1.0,
        backoff_max_s: float = 30.0,
        request_timeout_s: float = 30.0,
    ) -> None:
        self.spool_dir = spool_dir
        self.failed_dir = spool_dir / "failed"
        self._base = backend_url.rstrip("/")
        self.camera_id = camera_id
        self._auth = httpx.BasicAuth(camera_id, secret) if secret is not None else None
        self._backoff_initial_s = backoff_initial_s
        self._backoff_max_s = backoff_max_s
        self._timeout = httpx.Timeout(request_timeout_s, connect=min(5.0, request_timeout_s))
        self._wake = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.uploaded = 0
        self.given_up = 0
        self.attempts = 0

    # ------------------------------------------------------------------ queueing

    def enqueue_snapshot(self, alarm_id: str, path: Path, captured_at: datetime) -> str:
        return self._enqueue_file(alarm_id, "snapshot", path, "image/jpeg", captured_at)

    def enqueue_clip(self, alarm_id: str, path: Path, captured_at: datetime, content_type: str) -> str:
        return self._enqueue_file(alarm_id, "clip", path, content_type, captured_at)

    def enqueue_problem(self, alarm_id: str, kind: EvidenceKind, problem: str) -> str:
        report = EvidenceProblem(camera_id=self.camera_id, kind=kind, problem=problem[:500])
        return self._write_job(alarm_id, "problem", None, "application/json", None, report)

    def _enqueue_file(
        self, alarm_id: str, kind: JobKind, path: Path, content_type: str, captured_at: datetime
    ) -> str:
        job_id = self._new_job_id(kind)
        payload = self.spool_dir / f"{job_id}{path.suffix}"
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        try:
            _link_or_copy(path, payload)
        except OSError as exc:
            raise UploadError(f"cannot spool {path}: {exc.strerror or exc}") from exc
        return self._write_job(alarm_id, kind, payload.name, content_type, captured_at, None, job_id=job_id)

    def _write_job(
        self,
        alarm_id: str,
        kind: JobKind,
        payload_file: str | None,
        content_type: str,
        captured_at: datetime | None,
        problem: EvidenceProblem | None,
        *,
        job_id: str | None = None,
    ) -> str:
        job_id = job_id or self._new_job_id(kind)
        try:
            job = UploadJob(job_id=job_id, alarm_id=alarm_id, kind=kind, payload_file=payload_file,
                            content_type=content_type, captured_at=captured_at, problem=problem)
        except ValidationError as exc:
            raise UploadError(f"invalid upload job for alarm {alarm_id!r}: {exc.errors()[0]['msg']}") from None
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        target = self.spool_dir / f"{job_id}.json"
        temporary = self.spool_dir / f".{job_id}.json.partial"
        try:
            temporary.write_text(job.model_dump_json(), encoding="utf-8")
            os.replace(temporary, target)
        except OSError as exc:
            raise UploadError(f"cannot write spool entry {target}: {exc.strerror or exc}") from exc
        log.info("queued %s upload for alarm %s (%s)", kind, alarm_id, job_id)
        with self._wake:
            self._wake.notify_all()
        return job_id

    @staticmethod
    def _new_job_id(kind: JobKind) -> str:
        # Time first, so sorting the names gives the upload order.
        return f"{time.time_ns():020d}-{kind}-{uuid.uuid4().hex[:8]}"

    def pending(self) -> list[str]:
        """Job ids waiting in the spool, oldest first."""
        if not self.spool_dir.is_dir():
            return []
        return sorted(entry.name[:-5] for entry in self.spool_dir.glob("*.json") if not entry.name.startswith("."))

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("uploader already started")
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        self._remove_orphans()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=f"uploader-{self.camera_id}", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 35.0) -> None:
        """Stop after the request in flight (if any); unsent jobs stay in the spool."""
        with self._wake:
            self._stopping = True
            self._wake.notify_all()
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                log.error("uploader thread did not stop within %.1f s", timeout_s)
            self._thread = None

    def _remove_orphans(self) -> None:
        """Drop half-written files left by a crash between writing a payload and its job entry."""
        jobs = set(self.pending())
        for entry in self.spool_dir.iterdir():
            if not entry.is_file() or entry.suffix == ".json" and not entry.name.startswith("."):
                continue
            if entry.name.startswith(".") or entry.name.split(".", 1)[0] not in jobs:
                log.info("removing orphaned spool file %s", entry.name)
                entry.unlink(missing_ok=True)

    def _sleep(self, seconds: float | None) -> None:
        with self._wake:
            if not self._stopping:
                self._wake.wait(seconds)

    # ------------------------------------------------------------------ uploading

    def _run(self) -> None:
        backoff = self._backoff_initial_s
        with httpx.Client(timeout=self._timeout, auth=self._auth) as client:
            while not self._stopping:
                jobs = self.pending()
                if not jobs:
                    self._sleep(None)
                    continue
                if self._process(client, jobs[0]):
                    backoff = self._backoff_initial_s
                    continue
                self._sleep(backoff)
                backoff = min(backoff * 2, self._backoff_max_s)

    def _process(self, client: httpx.Client, job_id: str) -> bool:
        """Try one job; True if it left the queue (done or given up), False to retry later."""
        job = self._load(job_id)
        if job is None:
            return True
        try:
            request = self._request(client, job)
        except UploadError as exc:
            self._give_up(job_id, str(exc))
            return True
        self.attempts += 1
        try:
            response = client.send(request)
        except httpx.HTTPError as exc:
            log.warning("upload %s for alarm %s failed, will retry: %s", job.kind, job.alarm_id, exc)
            return False
        status = response.status_code
        if status in _DONE:
            self._finish(job_id, job)
            self.uploaded += 1
            log.info("uploaded %s for alarm %s (HTTP %d)", job.kind, job.alarm_id, status)
            return True
        if status >= 500 or status in _RETRYABLE_4XX:
            log.warning("upload %s for alarm %s got HTTP %d, will retry", job.kind, job.alarm_id, status)
            return False
        self._give_up(job_id, f"HTTP {status}: {response.text[:200]}")
        return True

    def _request(self, client: httpx.Client, job: UploadJob) -> httpx.Request:
        url = f"{self._base}/api/evidence/{quote(job.alarm_id, safe='')}/{job.kind}"
        headers = {"Content-Type": job.content_type}
        if job.captured_at is not None:
            headers["X-Captured-At"] = job.captured_at.isoformat()
        if job.kind == "problem":
            if job.problem is None:
                raise UploadError(f"problem job {job.job_id} has no problem")
            return client.build_request("POST", url, content=job.problem.model_dump_json(), headers=headers)
        if job.payload_file is None:
            raise UploadError(f"{job.kind} job {job.job_id} has no payload")
        try:
            body = (self.spool_dir / job.payload_file).read_bytes()
        except OSError as exc:
            raise UploadError(f"payload of {job.job_id} unreadable: {exc.strerror or exc}") from exc
        return client.build_request("PUT", url, content=body, headers=headers)

    def _load(self, job_id: str) -> UploadJob | None:
        path = self.spool_dir / f"{job_id}.json"
        try:
            return UploadJob.model_validate_json(path.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, ValidationError, ValueError) as exc:
            self._give_up(job_id, f"unreadable spool entry: {exc}")
            return None

    def _finish(self, job_id: str, job: UploadJob) -> None:
        if job.payload_file:
            (self.spool_dir / job.payload_file).unlink(missing_ok=True)
        (self.spool_dir / f"{job_id}.json").unlink(missing_ok=True)

    def _give_up(self, job_id: str, reason: str) -> None:
        """Keep the job for a human (``failed/``) but stop retrying it."""
        self.given_up += 1
        log.error("giving up upload %s: %s", job_id, reason)
        self.failed_dir.mkdir(parents=True, exist_ok=True)
        for entry in self.spool_dir.glob(f"{job_id}*"):
            if entry.is_file():
                try:
                    os.replace(entry, self.failed_dir / entry.name)
                except OSError:
                    entry.unlink(missing_ok=True)


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)
