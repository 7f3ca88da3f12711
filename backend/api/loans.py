"""Loans at the circulation desk: list, check out, check in, renew — through the configured circulation.

Checkouts and returns go through the same :class:`Circulation` the kiosks use
(rules, holds, fines, idempotency; standalone or SIP2), and the gate view
follows them at once. A refusal is 409 (404 for an unknown item or patron) with
the reason code in the detail and the ``X-OpenShelf-Reason`` header.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from fastapi import APIRouter, Depends, HTTPException, Path, Query, status
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from backend.api.circulation_common import card_of, desk, open_loan, refusal
from backend.api.circulation_schemas import CODE_PATTERN, LoanOut, LoanPage, LoanRequest, RenewRequest, ReturnRequest
from backend.api.deps import Staff, audit, context, db_session
from backend.circulation.interface import CheckinResult, CheckoutResult, Result
from backend.circulation.model import ItemStatus
from backend.context import BackendContext
from backend.db.models import Loan

router = APIRouter(prefix="/api", tags=["loans"])


@router.get("/loans", response_model=LoanPage)
def list_loans(
    patron_id: str | None = Query(default=None, pattern=CODE_PATTERN),
    item_id: str | None = Query(default=None, pattern=CODE_PATTERN),
    overdue: bool | None = Query(default=None, description="only overdue (true) or only not overdue (false)"),
    offset: int = Query(default=0, ge=0),
    limit: int = Query(default=50, ge=1, le=200),
    _: Staff = Depends(desk),
    ctx: BackendContext = Depends(context),
    session: Session = Depends(db_session),
) -> LoanPage:
    """Open loans recorded by OpenShelf (in SIP2 mode the library system has the full list)."""
    now = ctx.clock()
    query = select(Loan).where(Loan.returned_at.is_(None))
    if patron_id is not None:
        query = query.where(Loan.patron_barcode == patron_id)
    if item_id is not None:
        query = query.where(Loan.item_id == item_id)
    if overdue is not None:
        query = query.where(Loan.due_at < now if overdue else Loan.due_at >= now)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(Loan.due_at, Loan.id).offset(offset).limit(limit)).all()
    return LoanPage(loans=[_loan_out(row, now) for row in rows], total=total, offset=offset, limit=limit)


@router.post("/loans", response_model=LoanOut, status_code=status.HTTP_201_CREATED,
             responses={404: {"description": "unknown item or patron"},
                        409: {"description": "refused by the rules (in-library-only, on loan, limits, blocks …)"},
                        503: {"description": "the library system cannot be reached (SIP2 mode)"}})
def check_out(
    body: LoanRequest,
    staff: Staff = Depends(desk),
    ctx: BackendContext = Depends(context),
    session: Session = Depends(db_session),
) -> LoanOut:
    result = ctx.circulation.circulation.checkout(
        body.patron_barcode, body.item_id, idempotency_key=_key("checkout", body.idempotency_key),
        no_block=body.no_block)
    if not result.ok:
        raise refusal(result)
    overridden = f" overriding {', '.join(code.value for code in result.overridden)}" if result.overridden else ""
    audit(session, ctx, staff.username, "checkout", f"{body.item_id} to {body.patron_barcode}{overridden}")
    session.commit()
    session.expire_all()
    loan = open_loan(session, body.item_id)
    return _answer(loan, result, body.item_id, patron=body.patron_barcode, now=ctx.clock())


@router.post("/returns", response_model=LoanOut,
             responses={404: {"description": "unknown item"}, 409: {"description": "not on loan"},
                        503: {"description": "the library system cannot be reached (SIP2 mode)"}})
def check_in(
    body: ReturnRequest,
    staff: Staff = Depends(desk),
    ctx: BackendContext = Depends(context),
    session: Session = Depends(db_session),
) -> LoanOut:
    """Check an item in. An item on the shelf already is refused (nothing to do); one in transit or on
    the hold shelf is checked in again (it may fill a hold here)."""
    circulation = ctx.circulation.circulation
    if ctx.circulation.standalone:
        info = circulation.item_info(body.item_id)
        if not info.found:
            raise refusal(info)
        if info.status is ItemStatus.AVAILABLE and open_loan(session, body.item_id) is None:
            raise HTTPException(status.HTTP_409_CONFLICT, f"{body.item_id} is not on loan")
    result = circulation.checkin(body.item_id, idempotency_key=_key("checkin", body.idempotency_key))
    if not result.ok:
        raise refusal(result)
    audit(session, ctx, staff.username, "return", body.item_id)
    session.commit()
    session.expire_all()  # the circulation changed the loan on its own connection
    returned = session.scalars(select(Loan).where(Loan.item_id == body.item_id, Loan.returned_at.is_not(None))
                               .order_by(Loan.returned_at.desc(), Loan.id.desc())).first()
    return _answer(returned, result, body.item_id, now=ctx.clock())


@router.post("/loans/{item_id}/renew", response_model=LoanOut,
             responses={404: {"description": "not on loan / unknown"}, 409: {"description": "renewal refused"}})
def renew(
    body: RenewRequest,
    item_id: str = Path(pattern=CODE_PATTERN),
    staff: Staff = Depends(desk),
    ctx: BackendContext = Depends(context),
    session: Session = Depends(db_session),
) -> LoanOut:
    card = body.patron_barcode
    if card is None:
        loan = open_loan(session, item_id)
        if loan is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"{item_id} is not on loan here; name the patron")
        card = card_of(session, loan.patron_barcode)
    result = ctx.circulation.circulation.renew(card, item_id)
    if not result.ok:
        raise refusal(result)
    audit(session, ctx, staff.username, "renew", item_id)
    session.commit()
    session.expire_all()  # the circulation changed the loan on its own connection
    return _answer(open_loan(session, item_id), result, item_id, patron=card, now=ctx.clock())


# --------------------------------------------------------------------------- helpers


def _key(operation: str, given: str | None) -> str:
    return f"staff:{operation}:{given or uuid.uuid4().hex}"


def _loan_out(loan: Loan, now: datetime) -> LoanOut:
    return LoanOut(id=loan.id, item_id=loan.item_id, patron_barcode=loan.patron_barcode,
                   checked_out_at=loan.checked_out_at, due_at=loan.due_at, returned_at=loan.returned_at,
                   renewals=loan.renewals, overdue=loan.returned_at is None and loan.due_at < now)


def _answer(loan: Loan | None, result: Result, item_id: str, *, now: datetime, patron: str | None = None) -> LoanOut:
    """The loan record (standalone) with the circulation's answer; without a record (SIP2) the answer alone."""
    extra: dict[str, object] = {"code": result.reason.value, "message_vi": result.message.vi,
                                "message_en": result.message.en}
    if isinstance(result, CheckinResult):
        extra.update(sort_hint=result.sort.value, fine_due=result.fine_due)
    if loan is not None:
        return _loan_out(loan, now).model_copy(update=extra)
    due_at = getattr(result, "due_at", None)
    returned_at = now if isinstance(result, CheckinResult) else None
    checked_out_at = now if isinstance(result, CheckoutResult) else None
    return LoanOut(id=None, item_id=item_id, patron_barcode=patron, checked_out_at=checked_out_at, due_at=due_at,
                   returned_at=returned_at, **extra)
