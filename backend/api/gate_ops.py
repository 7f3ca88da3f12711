"""Gate operations over HTTP: occupancy and hourly counts, device health, live view, alarms kept for an incident."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import AsyncIterator, Literal

from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Path, Query, Request, Response, status
from fastapi.responses import StreamingResponse
from pydantic import Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.api.uploads import captured_at_header, read_limited
from backend.api.deps import Staff, audit, camera_identity, context, db_session, require_role
from backend.context import BackendContext
from backend.db.gate_ops_models import AlarmKeep, BeamFault
from backend.db.models import Alarm, Device, StaffRole
from backend.gate_ops import (
    DEVICE_HEALTH_EVENT,
    HOUR,
    OCCUPANCY_EVENT,
    GateCounts,
    GateOpsError,
    GateRef,
    Occupancy,
    OccupancySettings,
    day_start,
    gate_is_known,
    hourly_counts,
    local_hour_start,
    occupancy_settings,
    read_occupancy,
)
from backend.live_view import MAX_FRAME_BYTES, LiveFrame, LiveFrames, LiveViewError, check_live_jpeg
from backend.notifier import Subscription
from backend.schemas import ALARM_ID_PATTERN, Strict
from openshelf.site import ID_PATTERN

log = logging.getLogger(__name__)
router = APIRouter(tags=["gate operations"])
gate_staff = require_role(StaffRole.SECURITY, StaffRole.TECHNICIAN)
security_staff = require_role(StaffRole.SECURITY)

ALARM_KEPT_EVENT = "alarm_kept"
VIEWERS_HEADER = "X-Live-Viewers"
HEARTBEAT_S = 15.0
MAX_STREAM_S = 15 * 60.0
_GATE_STREAM_EVENTS = frozenset({OCCUPANCY_EVENT, DEVICE_HEALTH_EVENT})
GateId = Path(pattern=ID_PATTERN, description="the gate's id")
CameraId = Path(pattern=ID_PATTERN, description="the camera's id")


@dataclass(frozen=True)
class GateOpsHttp:
    """What these routes keep beside the backend context: the occupancy settings and the live frames."""

    settings: OccupancySettings
    live: LiveFrames


def install(app: FastAPI) -> None:
    """Add the routes to an app built by ``create_app`` (its context holds the site's occupancy settings)."""
    settings = occupancy_settings(app.state.ctx.config.backend)
    app.state.gate_ops = GateOpsHttp(settings=settings, live=LiveFrames())
    app.include_router(router)


def gate_ops_http(request: Request) -> GateOpsHttp:
    return request.app.state.gate_ops


def configured_gates(ctx: BackendContext) -> list[GateRef]:
    return [GateRef(gate.id, gate.name) for gate in ctx.config.site_config.gates]


# ---------------------------------------------------------------------------- bodies


class DeviceProblem(Strict):
    code: str = Field(description="beam_stuck, io_link_down, reader_link_down, stream_stale, stream_connecting, "
                                  "kiosk_offline, out_of_paper, queued_transactions, offline, never_seen")
    detail: str | None = None
    since: datetime | None = None


class DeviceHealth(Strict):
    id: str
    kind: str
    name: str
    configured: bool
    online: bool | None
    last_seen: datetime | None
    condition: Literal["ok", "warning", "fault", "offline", "unknown"]
    problems: list[DeviceProblem]
    state: dict[str, object] | None


class KeepRequest(Strict):
    kept: bool
    note: str | None = Field(default=None, max_length=2000, description="why it is kept (a report number, …)")


class AlarmKeepOut(Strict):
    alarm_id: str
    kept: bool
    kept_by: str | None
    kept_at: datetime | None
    note: str | None


# ---------------------------------------------------------------------------- people counting


@router.get("/api/gates/occupancy", response_model=Occupancy)
def get_occupancy(
    _: Staff = Depends(gate_staff),
    ctx: BackendContext = Depends(context),
    ops: GateOpsHttp = Depends(gate_ops_http),
    session: Session = Depends(db_session),
) -> Occupancy:
    """People inside per gate and in total: entries − exits since the daily reset (never below 0; ``drift``
    says when more exits than entries were counted)."""
    return read_occupancy(session, ctx.clock(), ops.settings, configured_gates(ctx))


@router.get("/api/gates/stream", response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}},
                             "description": "Server-Sent Events `occupancy` (the occupancy JSON) and "
                                            "`device_health` (a device to reload)"}})
async def stream_gate_events(
    _: Staff = Depends(gate_staff), ctx: BackendContext = Depends(context)
) -> StreamingResponse:
    """For staff without the alarm stream; ``/api/alarms/stream`` carries the same events for security staff."""
    return StreamingResponse(_gate_events(ctx.notifier.subscribe()), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


async def _gate_events(subscription: Subscription) -> AsyncIterator[str]:
    deadline = time.monotonic() + MAX_STREAM_S
    try:
        yield "retry: 2000\n: connected\n\n"
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                event = await subscription.next(min(HEARTBEAT_S, remaining))
            except StopAsyncIteration:
                return
            if event is None:
                yield ": ping\n\n"
            elif event.name in _GATE_STREAM_EVENTS:
                data = json.dumps(event.data, ensure_ascii=False, separators=(",", ":"))
                yield f"event: {event.name}\ndata: {data}\n\n"
    finally:
        subscription.close()


@router.get("/api/gates/{gate_id}/counts", response_model=GateCounts,
            responses={404: {"description": "no such gate"}, 422: {"description": "bad time range"}})
def get_gate_counts(
    gate_id: str = GateId,
    start: datetime | None = Query(None, alias="from", description="ISO 8601 with zone; default: the daily reset"),
    end: datetime | None = Query(None, alias="to", description="ISO 8601 with zone; default: end of this hour"),
    _: Staff = Depends(gate_staff),
    ctx: BackendContext = Depends(context),
    ops: GateOpsHttp = Depends(gate_ops_http),
    session: Session = Depends(db_session),
) -> GateCounts:
    """Entries and exits per local clock hour, empty hours included (at most 31 days)."""
    now = ctx.clock()
    start = start or day_start(now, ops.settings)
    end = end or local_hour_start(now, ops.settings.zone) + HOUR
    if not gate_is_known(session, gate_id, (gate.gate_id for gate in configured_gates(ctx))):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such gate")
    try:
        return hourly_counts(session, gate_id, start, end, ops.settings)
    except GateOpsError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None


# ---------------------------------------------------------------------------- device health


@router.get("/api/devices/health", response_model=list[DeviceHealth])
def get_device_health(
    _: Staff = Depends(gate_staff),
    ctx: BackendContext = Depends(context),
    session: Session = Depends(db_session),
) -> list[DeviceHealth]:
    """Every configured device and every device heard from, with what is wrong with it (beam faults, stale
    camera stream, I/O or reader link down, kiosk offline or out of paper)."""
    site = ctx.config.site_config
    configured = {
        **{gate.id: ("gate", gate.name) for gate in site.gates},
        **{reader.id: ("reader", reader.name) for reader in site.readers},
        **{camera.id: ("camera", camera.name) for camera in site.cameras},
        **{kiosk.id: ("kiosk", kiosk.name) for kiosk in site.kiosks},
    }
    seen = {row.id: row for row in session.scalars(select(Device))}
    beams: dict[str, list[BeamFault]] = {}
    for fault in session.scalars(select(BeamFault).where(BeamFault.stuck.is_(True))):
        beams.setdefault(fault.gate_id, []).append(fault)
    return [_health(device_id, configured.get(device_id), seen.get(device_id), beams.get(device_id, []))
            for device_id in sorted(configured.keys() | seen.keys())]


def _health(device_id: str, configured: tuple[str, str] | None, row: Device | None,
            beams: list[BeamFault]) -> DeviceHealth:
    kind = row.kind if row is not None else configured[0] if configured else "unknown"
    online = row.online if row is not None else None
    state = row.state if row is not None else None
    found = _problems(kind, state or {}, beams)
    if online is False:
        condition = "offline"
        found.insert(0, ("offline", DeviceProblem(code="offline")))
    elif any(severity == "fault" for severity, _ in found):
        condition = "fault"
    elif found:
        condition = "warning"
    elif online is None and state is None:
        condition = "unknown"
        found.append(("unknown", DeviceProblem(code="never_seen")))
    else:
        condition = "ok"
    return DeviceHealth(id=device_id, kind=kind, name=configured[1] if configured else "",
                        configured=configured is not None, online=online,
                        last_seen=row.last_seen if row is not None else None, condition=condition,
                        problems=[problem for _, problem in found], state=state)


def _problems(kind: str, state: dict[str, object], beams: list[BeamFault]) -> list[tuple[str, DeviceProblem]]:
    """(severity, problem) pairs from a device's last state message and its stuck beams."""
    found: list[tuple[str, DeviceProblem]] = []
    reason = state.get("reason") if isinstance(state.get("reason"), str) else None
    if kind == "gate":
        if state.get("io_link") == "down":
            found.append(("fault", DeviceProblem(code="io_link_down")))
        found += [("fault", DeviceProblem(code="beam_stuck", detail=f"{beam.beam} (lane {beam.lane})",
                                          since=beam.since)) for beam in beams]
    elif kind == "reader" and state.get("link") == "down":
        found.append(("fault", DeviceProblem(code="reader_link_down")))
    elif kind == "camera" and state.get("stream") == "stale":
        found.append(("fault", DeviceProblem(code="stream_stale", detail=reason)))
    elif kind == "camera" and state.get("stream") == "connecting":
        found.append(("warning", DeviceProblem(code="stream_connecting", detail=reason)))
    elif kind == "kiosk":
        if state.get("mode") in ("offline", "out_of_paper"):
            code = "kiosk_offline" if state["mode"] == "offline" else "out_of_paper"
            found.append(("warning", DeviceProblem(code=code)))
        queued = state.get("queued_transactions")
        if isinstance(queued, int) and queued > 0:
            found.append(("warning", DeviceProblem(code="queued_transactions", detail=str(queued))))
    return found


# ---------------------------------------------------------------------------- alarms kept for an incident


@router.get("/api/kept-alarms", response_model=list[AlarmKeepOut])
def list_kept_alarms(
    _: Staff = Depends(security_staff), session: Session = Depends(db_session)
) -> list[AlarmKeepOut]:
    """Alarms whose evidence is kept for an incident (exempt from the retention purge), newest mark first."""
    return [_keep_out(row.alarm_id, row)
            for row in session.scalars(select(AlarmKeep).order_by(AlarmKeep.kept_at.desc(), AlarmKeep.alarm_id))]


@router.post("/api/alarms/{alarm_id}/keep", response_model=AlarmKeepOut,
             responses={404: {"description": "no such alarm"}})
def keep_alarm(
    body: KeepRequest,
    alarm_id: str = Path(pattern=ALARM_ID_PATTERN, description="the alarm's id"),
    staff: Staff = Depends(security_staff),
    ctx: BackendContext = Depends(context),
    session: Session = Depends(db_session),
) -> AlarmKeepOut:
    """Mark an alarm's evidence as kept for an incident (``kept: true``) or release it; every change is audited.

    Released evidence already past its retention goes at the next hourly purge."""
    if session.get(Alarm, alarm_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such alarm")
    row = session.get(AlarmKeep, alarm_id)
    note = body.note.strip() if body.note and body.note.strip() else None
    if body.kept and (row is None or row.note != note):
        row = row or AlarmKeep(alarm_id=alarm_id)
        row.kept_by, row.kept_at, row.note = staff.username, ctx.clock(), note
        session.add(row)
        audit(session, ctx, staff.username, "keep_alarm", f"{alarm_id} {note or ''}".strip())
    elif not body.kept and row is not None:
        session.delete(row)
        row = None
        audit(session, ctx, staff.username, "release_alarm", alarm_id)
    else:
        return _keep_out(alarm_id, row)  # nothing changes, nothing to audit
    session.commit()
    shaped = _keep_out(alarm_id, row)
    ctx.notifier.publish(ALARM_KEPT_EVENT, shaped.model_dump(mode="json"))
    return shaped


def _keep_out(alarm_id: str, row: AlarmKeep | None) -> AlarmKeepOut:
    if row is None:
        return AlarmKeepOut(alarm_id=alarm_id, kept=False, kept_by=None, kept_at=None, note=None)
    return AlarmKeepOut(alarm_id=alarm_id, kept=True, kept_by=row.kept_by, kept_at=row.kept_at, note=row.note)


# ---------------------------------------------------------------------------- live view


@router.put("/api/cameras/{camera_id}/live", status_code=status.HTTP_204_NO_CONTENT,
            openapi_extra={"requestBody": {"content": {"image/jpeg": {}}}},
            responses={401: {"description": "camera credentials missing or wrong"},
                       403: {"description": "not the authenticated camera"}, 413: {"description": "over 1 MB"},
                       415: {"description": "not image/jpeg"}, 422: {"description": "not a JPEG, or a bad header"}})
async def push_live_frame(
    request: Request,
    camera_id: str = CameraId,
    x_captured_at: str | None = Header(None, description="when the frame was taken, ISO 8601 with zone"),
    authenticated: str = Depends(camera_identity),
    ctx: BackendContext = Depends(context),
    ops: GateOpsHttp = Depends(gate_ops_http),
) -> Response:
    """A camera's newest live-view JPEG (≤ 1 MB), kept in memory only; the answer's ``X-Live-Viewers`` says how
    many staff watched in the last 10 s."""
    if camera_id != authenticated:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "a camera may only send its own live view")
    captured_at = captured_at_header(x_captured_at)
    body = await read_limited(request, MAX_FRAME_BYTES)
    content_type = (request.headers.get("content-type") or "").split(";")[0].strip().lower() or None
    try:
        check_live_jpeg(content_type, body)
    except LiveViewError as exc:
        log.warning("refused a live frame from %s: %s", camera_id, exc.message)
        raise HTTPException(exc.status, exc.message) from None
    viewers = ops.live.put(camera_id, LiveFrame(body, captured_at, ctx.clock()))
    return Response(status_code=status.HTTP_204_NO_CONTENT, headers={VIEWERS_HEADER: str(viewers)})


@router.get("/api/cameras/{camera_id}/live.jpg", response_class=Response,
            responses={200: {"content": {"image/jpeg": {}}}, 404: {"description": "no such camera or no frame yet"}})
def get_live_frame(
    camera_id: str = CameraId,
    staff: Staff = Depends(gate_staff),
    ctx: BackendContext = Depends(context),
    ops: GateOpsHttp = Depends(gate_ops_http),
) -> Response:
    """The camera's newest live frame: security on duty, technicians aiming a camera; each viewing session audited."""
    if camera_id not in ctx.config.camera_ids:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such camera")
    viewing = ops.live.view(camera_id, staff.username)
    if viewing.frame is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no live frame from this camera yet")
    if viewing.new_session:
        with ctx.sessions() as session:
            audit(session, ctx, staff.username, "view_live", camera_id)
            session.commit()
    headers = {"Cache-Control": "private, no-store", "X-Received-At": viewing.frame.received_at.isoformat()}
    if viewing.frame.captured_at is not None:
        headers["X-Captured-At"] = viewing.frame.captured_at.isoformat()
    return Response(viewing.frame.jpeg, media_type="image/jpeg", headers=headers)
