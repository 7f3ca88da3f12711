"""Alarms: the list, one alarm, acknowledging and silencing, and the live stream."""

from __future__ import annotations

import json
import logging
import time
from typing import AsyncIterator

from fastapi import APIRouter, Depends, HTTPException, Path, Query, status
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session

from backend.alarm_queries import alarm_out, alarm_page
from backend.api.deps import Staff, audit, context, db_session, require_role
from backend.context import BackendContext
from backend.db.models import Alarm, AlarmStatus, StaffRole
from backend.notifier import Subscription
from backend.schemas import ALARM_ID_PATTERN, AcknowledgeRequest, AlarmOut, AlarmPage

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/alarms", tags=["alarms"])
security_staff = require_role(StaffRole.SECURITY)

HEARTBEAT_S = 15.0
# Streams end now and then so the browser reconnects and its session is checked again.
MAX_STREAM_S = 15 * 60.0
AlarmId = Path(pattern=ALARM_ID_PATTERN, description="the alarm's id")


@router.get("", response_model=AlarmPage)
def list_alarms(
    offset: int = Query(0, ge=0),
    limit: int = Query(50, ge=1, le=200),
    status_filter: AlarmStatus | None = Query(None, alias="status"),
    _: Staff = Depends(security_staff),
    session: Session = Depends(db_session),
) -> AlarmPage:
    """Alarms, newest first."""
    return alarm_page(session, offset=offset, limit=limit,
                      status=status_filter.value if status_filter is not None else None)


@router.get("/stream", response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}},
                             "description": "Server-Sent Events: `alarm` (new), `snapshot` (evidence attached) "
                                            "and `alarm_updated` (acknowledged/silenced), each with the alarm JSON"}})
async def stream_alarms(
    _: Staff = Depends(security_staff), ctx: BackendContext = Depends(context)
) -> StreamingResponse:
    subscription = ctx.notifier.subscribe()
    return StreamingResponse(
        _events(subscription),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def _events(subscription: Subscription) -> AsyncIterator[str]:
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
                continue
            yield f"event: {event.name}\ndata: {json.dumps(event.data, ensure_ascii=False, separators=(',', ':'))}\n\n"
    finally:
        subscription.close()


@router.get("/{alarm_id}", response_model=AlarmOut, responses={404: {"description": "no such alarm"}})
def get_alarm(
    alarm_id: str = AlarmId, _: Staff = Depends(security_staff), session: Session = Depends(db_session)
) -> AlarmOut:
    shaped = alarm_out(session, alarm_id)
    if shaped is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such alarm")
    return shaped


@router.post("/{alarm_id}/acknowledge", response_model=AlarmOut,
             responses={404: {"description": "no such alarm"}, 409: {"description": "already acknowledged"}})
def acknowledge_alarm(
    body: AcknowledgeRequest,
    alarm_id: str = AlarmId,
    staff: Staff = Depends(security_staff),
    ctx: BackendContext = Depends(context),
    session: Session = Depends(db_session),
) -> AlarmOut:
    """Record what happened (who, when, outcome, note) and silence the gate."""
    alarm = _alarm_or_404(session, alarm_id)
    if alarm.status == AlarmStatus.ACKNOWLEDGED.value:
        raise HTTPException(status.HTTP_409_CONFLICT, f"already acknowledged by {alarm.acknowledged_by}")
    alarm.status = AlarmStatus.ACKNOWLEDGED.value
    alarm.acknowledged_by = staff.username
    alarm.acknowledged_at = ctx.clock()
    alarm.outcome = body.outcome.value
    alarm.note = body.note.strip() if body.note and body.note.strip() else None
    audit(session, ctx, staff.username, "acknowledge_alarm", f"{alarm_id} {body.outcome.value}")
    session.commit()
    return _after_change(session, ctx, alarm)


@router.post("/{alarm_id}/silence", response_model=AlarmOut, responses={404: {"description": "no such alarm"}})
def silence_alarm(
    alarm_id: str = AlarmId,
    staff: Staff = Depends(security_staff),
    ctx: BackendContext = Depends(context),
    session: Session = Depends(db_session),
) -> AlarmOut:
    """Silence the gate now; acknowledge later."""
    alarm = _alarm_or_404(session, alarm_id)
    if alarm.status == AlarmStatus.OPEN.value:
        alarm.status = AlarmStatus.SILENCED.value
        audit(session, ctx, staff.username, "silence_alarm", alarm_id)
        session.commit()
    return _after_change(session, ctx, alarm)


def _alarm_or_404(session: Session, alarm_id: str) -> Alarm:
    alarm = session.get(Alarm, alarm_id)
    if alarm is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such alarm")
    return alarm


def _after_change(session: Session, ctx: BackendContext, alarm: Alarm) -> AlarmOut:
    if ctx.gate is not None:
        try:
            ctx.gate.silence(alarm.gate_id, alarm.id)
        except Exception:  # noqa: BLE001 - the record is saved; a lost silence only means the buzzer runs out
            log.exception("could not send silence for alarm %s to gate %s", alarm.id, alarm.gate_id)
    shaped = alarm_out(session, alarm.id)
    assert shaped is not None
    ctx.notifier.publish("alarm_updated", shaped.model_dump(mode="json"))
    return shaped
