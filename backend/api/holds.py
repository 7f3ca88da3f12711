"""Holds for the circulation desk (standalone mode): place, list, cancel.

A hold waits (``pending``) until a check-in traps an item for it (``ready``, on
the hold shelf until ``pickup_expires_at``); the patron's checkout fills it.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Response, status
from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.api.circulation_common import desk, item_or_404, patron_or_404, require_standalone
from backend.api.circulation_schemas import CODE_PATTERN, HoldCreate, HoldOut
from backend.api.deps import Staff, audit, context, db_session
from backend.circulation.model import HoldStatus, ItemStatus
from backend.context import BackendContext
from backend.db.models import Hold, HoldEnd, Item

router = APIRouter(prefix="/api/holds", tags=["holds"])


@router.get("", response_model=list[HoldOut])
def list_holds(
    patron_id: str | None = Query(default=None, pattern=CODE_PATTERN),
    hold_status: HoldStatus | None = Query(default=None, alias="status"),
    include_ended: bool = Query(default=False),
    limit: int = Query(default=200, ge=1, le=1000),
    _: Staff = Depends(desk),
    ctx: BackendContext = Depends(context),
    session: Session = Depends(db_session),
) -> list[HoldOut]:
    require_standalone(ctx)
    query = select(Hold)
    if not include_ended:
        query = query.where(Hold.ended_at.is_(None))
    if patron_id is not None:
        query = query.where(Hold.patron_barcode == patron_id)
    if hold_status is not None:
        query = query.where(Hold.status == hold_status.value)
    return [_hold_out(row) for row in session.scalars(query.order_by(Hold.placed_at, Hold.id).limit(limit))]


@router.post("", response_model=HoldOut, status_code=status.HTTP_201_CREATED,
             responses={404: {"description": "unknown patron, item or record"}})
def place_hold(
    body: HoldCreate,
    staff: Staff = Depends(desk),
    ctx: BackendContext = Depends(context),
    session: Session = Depends(db_session),
) -> HoldOut:
    require_standalone(ctx)
    patron_or_404(session, body.patron_id)
    if body.item_id is not None:
        item_or_404(session, body.item_id)
    elif session.scalar(select(Item.id).where(Item.record_id == body.record_id).limit(1)) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no item of record {body.record_id}")
    hold = Hold(id=uuid.uuid4().hex, patron_barcode=body.patron_id, record_id=body.record_id, item_id=body.item_id,
                status=HoldStatus.PENDING.value, pickup_branch=body.pickup_branch or ctx.circulation.settings.branch,
                placed_at=ctx.clock())
    session.add(hold)
    audit(session, ctx, staff.username, "place_hold", f"{body.item_id or body.record_id} for {body.patron_id}")
    session.commit()
    return _hold_out(hold)


@router.delete("/{hold_id}", status_code=status.HTTP_204_NO_CONTENT,
               responses={404: {"description": "no such active hold"}})
def cancel_hold(
    hold_id: str = Path(pattern=r"^[A-Za-z0-9_-]{1,64}$"),
    staff: Staff = Depends(desk),
    ctx: BackendContext = Depends(context),
    session: Session = Depends(db_session),
) -> Response:
    """Cancel a hold; an item waiting on the hold shelf for it goes back to circulation."""
    require_standalone(ctx)
    hold = session.get(Hold, hold_id)
    if hold is None or hold.ended_at is not None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such active hold")
    hold.ended_at, hold.end_reason = ctx.clock(), HoldEnd.CANCELLED.value
    if hold.status == HoldStatus.READY.value and hold.item_id is not None:
        item = session.scalars(select(Item).where(Item.item_id == hold.item_id)).first()
        if item is not None and item.status == ItemStatus.ON_HOLD_SHELF.value:
            item.status = ItemStatus.AVAILABLE.value
    audit(session, ctx, staff.username, "cancel_hold", hold_id)
    session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _hold_out(hold: Hold) -> HoldOut:
    return HoldOut(hold_id=hold.id, patron_id=hold.patron_barcode, record_id=hold.record_id, item_id=hold.item_id,
                   status=HoldStatus(hold.status), pickup_branch=hold.pickup_branch, placed_at=hold.placed_at,
                   pickup_expires_at=hold.pickup_expires_at, ended_at=hold.ended_at, end_reason=hold.end_reason)
