"""Minimal checkout and return for staff (/api/loans, /api/returns), so the gate has something to decide on.

The full circulation (kiosk, SIP2, rules) comes later; these two calls keep the
gate view in step the moment their transaction commits.
"""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Depends, HTTPException, status
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from backend.api.deps import Staff, audit, context, db_session, require_role
from backend.context import BackendContext
from backend.db.models import Item, ItemStatus, Loan, Patron, StaffRole
from backend.schemas import LoanOut, LoanRequest, ReturnRequest

router = APIRouter(prefix="/api", tags=["circulation (minimal)"])
admin_only = require_role(StaffRole.ADMIN)
LOAN_PERIOD = timedelta(days=14)


@router.post("/loans", response_model=LoanOut, status_code=status.HTTP_201_CREATED,
             responses={404: {"description": "unknown item or patron"},
                        409: {"description": "already on loan, in-library-only, or patron may not borrow"}})
def check_out(
    body: LoanRequest,
    staff: Staff = Depends(admin_only),
    ctx: BackendContext = Depends(context),
    session: Session = Depends(db_session),
) -> LoanOut:
    item = _item_or_404(session, body.item_id)
    patron = session.scalars(select(Patron).where(Patron.barcode == body.patron_barcode)).first()
    if patron is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no patron {body.patron_barcode}")
    now = ctx.clock()
    if patron.blocked or (patron.expires_on is not None and patron.expires_on < now.date()):
        raise HTTPException(status.HTTP_409_CONFLICT, f"patron {patron.barcode} may not borrow (blocked or expired)")
    if item.in_library_only:
        raise HTTPException(status.HTTP_409_CONFLICT, f"{item.item_id} is for use in the library only")
    if _open_loan(session, item.item_id) is not None:
        raise HTTPException(status.HTTP_409_CONFLICT, f"{item.item_id} is already on loan")
    loan = Loan(item_id=item.item_id, patron_barcode=patron.barcode, checked_out_at=now, due_at=now + LOAN_PERIOD)
    item.status = ItemStatus.ON_LOAN.value
    session.add(loan)
    audit(session, ctx, staff.username, "checkout", f"{item.item_id} to {patron.barcode}")
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise HTTPException(status.HTTP_409_CONFLICT, f"{item.item_id} is already on loan") from None
    ctx.view.set_on_loan(item.item_id, True)
    return _loan_out(loan)


@router.post("/returns", response_model=LoanOut,
             responses={404: {"description": "unknown item"}, 409: {"description": "not on loan"}})
def check_in(
    body: ReturnRequest,
    staff: Staff = Depends(admin_only),
    ctx: BackendContext = Depends(context),
    session: Session = Depends(db_session),
) -> LoanOut:
    item = _item_or_404(session, body.item_id)
    loan = _open_loan(session, item.item_id)
    if loan is None:
        raise HTTPException(status.HTTP_409_CONFLICT, f"{item.item_id} is not on loan")
    loan.returned_at = ctx.clock()
    item.status = ItemStatus.AVAILABLE.value
    audit(session, ctx, staff.username, "return", item.item_id)
    session.commit()
    ctx.view.set_on_loan(item.item_id, False)
    return _loan_out(loan)


def _item_or_404(session: Session, item_id: str) -> Item:
    item = session.scalars(select(Item).where(Item.item_id == item_id)).first()
    if item is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no item {item_id}")
    return item


def _open_loan(session: Session, item_id: str) -> Loan | None:
    return session.scalars(select(Loan).where(Loan.item_id == item_id, Loan.returned_at.is_(None))).first()


def _loan_out(loan: Loan) -> LoanOut:
    return LoanOut(id=loan.id, item_id=loan.item_id, patron_barcode=loan.patron_barcode,
                   checked_out_at=loan.checked_out_at, due_at=loan.due_at, returned_at=loan.returned_at)
