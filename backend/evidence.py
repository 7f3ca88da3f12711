"""Evidence files (snapshots, clips) from cameras: checking, storing idempotently, expiring.

Files live under ``media_dir/<alarm_id>/<camera_id>-<kind>.<ext>``; the row in
``evidence`` is the index. One (alarm, camera, kind) has exactly one row, so a
camera that retries an upload gets the same evidence id back.
"""

from __future__ import annotations

import logging
import os
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from backend.db.gate_ops_models import AlarmKeep
from backend.db.models import Alarm, Evidence, EvidenceKind

log = logging.getLogger(__name__)

MAX_BYTES = {EvidenceKind.SNAPSHOT: 5 * 1024 * 1024, EvidenceKind.CLIP: 64 * 1024 * 1024}
ACCEPTED_TYPES = {
    EvidenceKind.SNAPSHOT: {"image/jpeg": "jpg"},
    EvidenceKind.CLIP: {"video/mp4": "mp4", "video/x-msvideo": "avi", "video/avi": "avi", "video/msvideo": "avi"},
}
_MP4_FIRST_BOXES = {b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide"}
_SAFE_ALARM_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
_SAFE_CAMERA_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class EvidenceRejected(Exception):
    """An upload is not acceptable; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Upload:
    alarm_id: str
    camera_id: str
    kind: EvidenceKind
    content_type: str | None
    body: bytes
    captured_at: datetime | None
    problem: str | None


@dataclass(frozen=True)
class Stored:
    evidence_id: str
    created: bool
    changed: bool
    alarm_exists: bool


def check_upload(upload: Upload) -> None:
    """Refuse anything that is not what it claims to be, before it touches the disk."""
    if not _SAFE_ALARM_ID.match(upload.alarm_id) or not _SAFE_CAMERA_ID.match(upload.camera_id):
        raise EvidenceRejected(422, "alarm id and camera id may only contain letters, digits and _ . : -")
    if not upload.body:
        if upload.problem:
            return
        raise EvidenceRejected(422, "empty body: send the file (or report a problem at .../problem)")
    accepted = ACCEPTED_TYPES[upload.kind]
    if upload.content_type not in accepted:
        raise EvidenceRejected(415, f"a {upload.kind.value} must be sent as {' or '.join(sorted(accepted))}")
    if len(upload.body) > MAX_BYTES[upload.kind]:
        raise EvidenceRejected(413, f"a {upload.kind.value} may be at most {MAX_BYTES[upload.kind]} bytes")
    if not _looks_like(accepted[upload.content_type], upload.body):
        raise EvidenceRejected(422, f"the body is not a valid {upload.content_type} file")


def _looks_like(extension: str, body: bytes) -> bool:
    if extension == "jpg":
        # Start-of-image marker, and an end-of-image marker (some encoders pad after it).
        return body.startswith(b"\xff\xd8\xff") and b"\xff\xd9" in body[-64:]
    if extension == "mp4":
        # An ISO base media file starts with a box; muxers differ in which one comes first.
        return len(body) >= 12 and body[4:8] in _MP4_FIRST_BOXES
    return len(body) >= 12 and body[:4] == b"RIFF" and body[8:12] == b"AVI "


def store_upload(session: Session, media_dir: Path, upload: Upload, *, retention_days: int, now: datetime) -> Stored:
    """Store the file and its row (idempotent per alarm, camera and kind) and commit."""
    check_upload(upload)
    existing = _find(session, upload)
    if existing is not None and (existing.path is not None or not upload.body):
        # Already complete (a retry), or a problem report about something already reported.
        return Stored(existing.id, False, False, _alarm_exists(session, upload.alarm_id))
    relative = _write_file(media_dir, upload) if upload.body else None
    row = existing or Evidence(
        id=uuid.uuid4().hex,
        alarm_id=upload.alarm_id,
        camera_id=upload.camera_id,
        kind=upload.kind.value,
        created_at=now,
        expires_at=now + timedelta(days=retention_days),
    )
    row.path = relative
    row.content_type = upload.content_type if upload.body else None
    row.captured_at = upload.captured_at
    row.problem = upload.problem
    session.add(row)
    try:
        session.commit()
    except IntegrityError:
        # The same upload arrived twice at once; the other one won.
        session.rollback()
        winner = _find(session, upload)
        if winner is None:
            raise
        return Stored(winner.id, False, False, _alarm_exists(session, upload.alarm_id))
    return Stored(row.id, existing is None, True, _alarm_exists(session, upload.alarm_id))


def _find(session: Session, upload: Upload) -> Evidence | None:
    return session.scalars(
        select(Evidence).where(
            Evidence.alarm_id == upload.alarm_id,
            Evidence.camera_id == upload.camera_id,
            Evidence.kind == upload.kind.value,
        )
    ).first()


def _alarm_exists(session: Session, alarm_id: str) -> bool:
    return session.get(Alarm, alarm_id) is not None


def _write_file(media_dir: Path, upload: Upload) -> str:
    extension = ACCEPTED_TYPES[upload.kind][upload.content_type or ""]
    relative = f"{upload.alarm_id}/{upload.camera_id}-{upload.kind.value}.{extension}"
    target = media_dir / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex}.part")
    temporary.write_bytes(upload.body)
    os.replace(temporary, target)
    return relative


def evidence_file(media_dir: Path, row: Evidence) -> Path | None:
    """The file of an evidence row, if it has one and it is still inside media_dir."""
    if row.path is None:
        return None
    root = media_dir.resolve()
    path = (root / row.path).resolve()
    if root not in path.parents or not path.is_file():
        return None
    return path


def purge_expired_evidence(session: Session, media_dir: Path, now: datetime) -> int:
    """Delete evidence past its retention (rows and files); returns how many rows went.

    Evidence of an alarm kept for an incident (``alarm_keeps``) stays until the mark is cleared.
    """
    kept = select(AlarmKeep.alarm_id)
    expired = list(session.scalars(select(Evidence).where(Evidence.expires_at < now, Evidence.alarm_id.not_in(kept))))
    for row in expired:
        path = evidence_file(media_dir, row)
        if path is not None:
            try:
                path.unlink()
                _remove_if_empty(path.parent, media_dir)
            except OSError as exc:
                log.warning("could not delete expired evidence file %s: %s", path, exc)
        session.delete(row)
    session.commit()
    if expired:
        log.info("deleted %d expired evidence file(s)", len(expired))
    return len(expired)


def _remove_if_empty(folder: Path, media_dir: Path) -> None:
    if folder.resolve() != media_dir.resolve() and not any(folder.iterdir()):
        folder.rmdir()
