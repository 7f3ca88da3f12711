"""Fines and payments at the circulation desk.

Fines are listed and charged by hand in standalone mode; payments go through
the circulation (standalone: applied to the oldest fines first, or to one fine;
SIP2: sent to the library system as a fee payment) and are idempotent per key.
"""

from __future__ import annotations

import uuid


from fastapi import APIRouter, Depends, Path, Query, status
from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.api.circulation_common import card_of, desk, item_or_404, patron_or_404, refusal, require_standalone
from backend.api.circulation_schemas import CODE_PATTERN, FineCreate, FineOut, PaymentOut, PaymentRequest
from backend.api.deps import Staff, audit, context, db_session
from backend.context import BackendContext
from backend.db.models import Fine

router = APIRouter(prefix="/api", tags=["fines"])


@router.get("/fines", response_model=list[FineOut])
def list_fines(
    patron_id: str | None = Query(default=None, pattern=CODE_PATTERN),
    outstanding_only: bool = Query(default=True),
    limit: int = Query(default=200, ge=1, le=1000),
    _: Staff = Depends(desk),
    ctx: BackendContext = Depends(context),
    session: Session = Depends(db_session),
) -> list[FineOut]:
    require_standalone(ctx)
    query = select(Fine)
    if patron_id is not None:
        query = query.where(Fine.patron_barcode == patron_id)
    fines = [_fine_out(row) for row in session.scalars(query.order_by(Fine.created_at, Fine.id))]
    if outstanding_only:
        fines = [fine for fine in fines if fine.outstanding > 0]
    return fines[:limit]


@router.post("/fines", response_model=FineOut, status_code=status.HTTP_201_CREATED)
def charge_fine(
    body: FineCreate,
    staff: Staff = Depends(desk),
    ctx: BackendContext = Depends(context),
    session: Session = Depends(db_session),
) -> FineOut:
    """Charge a patron by hand (damage, a lost item, …)."""
    require_standalone(ctx)
    patron_or_404(session, body.patron_id)
    if body.item_id is not None:
        item_or_404(session, body.item_id)
    fine = Fine(id=uuid.uuid4().hex, patron_barcode=body.patron_id, kind=body.kind, amount=body.amount,
                outstanding=body.amount, item_id=body.item_id, created_at=ctx.clock(), description=body.description)
    session.add(fine)
    audit(session, ctx, staff.username, "charge_fine", f"{body.amount} to {body.patron_id}")
    session.commit()
    return _fine_out(fine)


@router.post("/patrons/{patron_id}/payments", response_model=PaymentOut, status_code=status.HTTP_201_CREATED,
             responses={404: {"description": "unknown patron"},
                        409: {"description": "more than is owed, or nothing owed"}})
def record_payment(
    body: PaymentRequest,
    patron_id: str = Path(pattern=CODE_PATTERN),
    staff: Staff = Depends(desk),
    ctx: BackendContext = Depends(context),
    session: Session = Depends(db_session),
) -> PaymentOut:
    card = card_of(session, patron_id) if ctx.circulation.standalone else patron_id
    key = f"staff:payment:{body.idempotency_key or uuid.uuid4().hex}"
    result = ctx.circulation.circulation.record_payment(card, body.amount, idempotency_key=key, fee_id=body.fine_id)
    if not result.ok:
        raise refusal(result)
    audit(session, ctx, staff.username, "payment", f"{body.amount} from {patron_id}")
    session.commit()
    return PaymentOut(transaction_id=result.transaction_id, amount=result.amount, code=result.reason.value,
                      message_vi=result.message.vi, message_en=result.message.en)


def _fine_out(fine: Fine) -> FineOut:
    return FineOut(fine_id=fine.id, patron_id=fine.patron_barcode, kind=fine.kind, amount=fine.amount,
                   outstanding=fine.outstanding, item_id=fine.item_id, created_at=fine.created_at,
                   description=fine.description)



