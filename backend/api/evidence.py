"""Evidence: cameras upload snapshots and clips; security staff view them (every view is audited)."""

from __future__ import annotations

import logging
from typing import Awaitable, Callable

from fastapi import APIRouter, Depends, Header, HTTPException, Path, Request, status
from fastapi.responses import FileResponse, JSONResponse
from starlette.concurrency import run_in_threadpool

from backend.alarm_queries import alarm_out
from backend.api.uploads import captured_at_header, read_limited
from backend.api.deps import Staff, audit, camera_identity, context, require_role
from backend.context import BackendContext
from backend.db.models import Evidence, EvidenceKind, StaffRole
from backend.evidence import MAX_BYTES, EvidenceRejected, Stored, Upload, evidence_file, store_upload
from backend.schemas import ALARM_ID_PATTERN, EvidenceCreated, EvidenceProblemReport

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/evidence", tags=["evidence"])

_UPLOAD_RESPONSES = {
    200: {"model": EvidenceCreated, "description": "the same upload was already stored (idempotent retry)"},
    401: {"description": "camera credentials missing or wrong"},
    413: {"description": "too large"},
    415: {"description": "wrong content type"},
    422: {"description": "not a valid file, or a bad header"},
}


def _upload_route(kind: EvidenceKind, content_types: str) -> Callable[..., Awaitable[JSONResponse]]:
    async def upload(
        request: Request,
        alarm_id: str = Path(pattern=ALARM_ID_PATTERN),
        x_captured_at: str | None = Header(None, description="when the frame was taken, ISO 8601 with zone"),
        camera_id: str = Depends(camera_identity),
        ctx: BackendContext = Depends(context),
    ) -> JSONResponse:
        captured_at = captured_at_header(x_captured_at)
        body = await read_limited(request, MAX_BYTES[kind])
        content_type = (request.headers.get("content-type") or "").split(";")[0].strip().lower() or None
        return await _accept(ctx, Upload(alarm_id, camera_id, kind, content_type, body, captured_at, None))

    upload.__doc__ = (
        f"A camera uploads the {kind.value} for an alarm ({content_types}), HTTP Basic with its id and secret. "
        "Idempotent per alarm, camera and kind. Accepted before the alarm record exists; linked when it appears."
    )
    return upload


async def _accept(ctx: BackendContext, upload: Upload) -> JSONResponse:
    try:
        stored = await run_in_threadpool(_store, ctx, upload)
    except EvidenceRejected as exc:
        log.warning("refused %s from %s for alarm %s: %s", upload.kind.value, upload.camera_id, upload.alarm_id,
                    exc.message)
        raise HTTPException(exc.status, exc.message) from None
    created = EvidenceCreated(evidence_id=stored.evidence_id, alarm_id=upload.alarm_id, linked=stored.alarm_exists)
    return JSONResponse(created.model_dump(),
                        status_code=status.HTTP_201_CREATED if stored.created else status.HTTP_200_OK)


def _store(ctx: BackendContext, upload: Upload) -> Stored:
    with ctx.sessions() as session:
        stored = store_upload(session, ctx.config.media_dir, upload,
                              retention_days=ctx.config.backend.evidence_retention_days, now=ctx.clock())
        if stored.alarm_exists and stored.changed:
            shaped = alarm_out(session, upload.alarm_id)
            if shaped is not None:
                is_snapshot = upload.kind is EvidenceKind.SNAPSHOT and upload.body
                ctx.notifier.publish("snapshot" if is_snapshot else "evidence", shaped.model_dump(mode="json"))
    if stored.changed:
        log.info("%s from %s for alarm %s stored as %s%s", upload.kind.value, upload.camera_id, upload.alarm_id,
                 stored.evidence_id, f" (problem: {upload.problem})" if upload.problem else "")
    return stored


router.put("/{alarm_id}/snapshot", status_code=status.HTTP_201_CREATED, response_model=EvidenceCreated,
           responses=_UPLOAD_RESPONSES,
           openapi_extra={"requestBody": {"content": {"image/jpeg": {}}}})(
    _upload_route(EvidenceKind.SNAPSHOT, "image/jpeg, at most 5 MB"))
router.put("/{alarm_id}/clip", status_code=status.HTTP_201_CREATED, response_model=EvidenceCreated,
           responses=_UPLOAD_RESPONSES,
           openapi_extra={"requestBody": {"content": {"video/mp4": {}, "video/x-msvideo": {}}}})(
    _upload_route(EvidenceKind.CLIP, "video/mp4 or video/x-msvideo"))


@router.post("/{alarm_id}/problem", status_code=status.HTTP_201_CREATED, response_model=EvidenceCreated,
             responses={**_UPLOAD_RESPONSES, 403: {"description": "camera_id is not the authenticated camera"}})
async def report_problem(
    report: EvidenceProblemReport,
    alarm_id: str = Path(pattern=ALARM_ID_PATTERN),
    camera_id: str = Depends(camera_identity),
    ctx: BackendContext = Depends(context),
) -> JSONResponse:
    """A camera reports why it has no usable snapshot or clip for an alarm (shown on the board).

    A file uploaded later for the same alarm, camera and kind replaces the report.
    """
    if report.camera_id != camera_id:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "a camera may only report for itself")
    return await _accept(ctx, Upload(alarm_id, camera_id, report.kind, None, b"", None, report.problem))


@router.get("/{evidence_id}", response_class=FileResponse,
            responses={200: {"content": {"image/jpeg": {}, "video/mp4": {}}}, 404: {"description": "no such file"}})
def view_evidence(
    evidence_id: str = Path(pattern=r"^[0-9a-f]{32}$"),
    staff: Staff = Depends(require_role(StaffRole.SECURITY)),
    ctx: BackendContext = Depends(context),
) -> FileResponse:
    """Serve an evidence file; every view is written to the audit log."""
    with ctx.sessions() as session:
        row = session.get(Evidence, evidence_id)
        path = evidence_file(ctx.config.media_dir, row) if row is not None else None
        if row is None or path is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such evidence file")
        audit(session, ctx, staff.username, "view_evidence", f"{evidence_id} alarm {row.alarm_id}")
        session.commit()
        content_type = row.content_type or "application/octet-stream"
    return FileResponse(path, media_type=content_type,
                        headers={"Cache-Control": "private, no-store", "Content-Disposition": "inline"})
