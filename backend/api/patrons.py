"""Patrons for the circulation desk: records, cards (barcode, NFC UID, RFID), blocks, PIN resets, accounts."""

from __future__ import annotations

from decimal import Decimal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Response, status
from sqlalchemy import delete, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from backend.api.circulation_common import desk, patron_or_404
from backend.api.circulation_schemas import (
    CODE_PATTERN,
    BlockRequest,
    CardIn,
    CardOut,
    PatronCreate,
    PatronOut,
    PatronPage,
    PatronUpdate,
    PinRequest,
)
from backend.api.deps import Staff, audit, context, db_session
from backend.circulation.interface import PatronAccount
from backend.context import BackendContext
from backend.db.models import CardKind, Fine, Loan, Patron, PatronCard

router = APIRouter(prefix="/api/patrons", tags=["patrons"])
PatronId = Path(pattern=CODE_PATTERN, description="the patron number")


@router.get("", response_model=PatronPage)
def list_patrons(
    q: str | None = Query(default=None, max_length=100, description="part of a name, patron number or card"),
    offset: int = Query(default=0, ge=0),
    limit: int = Query(default=50, ge=1, le=200),
    _: Staff = Depends(desk),
    session: Session = Depends(db_session),
) -> PatronPage:
    query = select(Patron)
    if q:
        pattern = f"%{q}%"
        cards = select(PatronCard.patron_id).where(PatronCard.card_id.ilike(pattern))
        query = query.where(or_(Patron.name.ilike(pattern), Patron.barcode.ilike(pattern), Patron.id.in_(cards)))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(Patron.barcode).offset(offset).limit(limit)).all()
    return PatronPage(patrons=[patron_out(session, row) for row in rows], total=total, offset=offset, limit=limit)


@router.post("", response_model=PatronOut, status_code=status.HTTP_201_CREATED,
             responses={409: {"description": "the patron number or a card is already in use"}})
def create_patron(
    body: PatronCreate,
    staff: Staff = Depends(desk),
    ctx: BackendContext = Depends(context),
    session: Session = Depends(db_session),
) -> PatronOut:
    cards = [CardIn(card_id=body.patron_id)] + [card for card in body.cards if card.card_id != body.patron_id]
    _refuse_taken(session, [card.card_id for card in cards], body.patron_id)
    patron = Patron(barcode=body.patron_id, name=body.name, category=body.category, email=body.email,
                    expires_on=body.expires_on, home_branch=body.home_branch, blocked=False,
                    pin_hash=ctx.passwords.hash(body.pin) if body.pin else None,
                    cards=[PatronCard(card_id=card.card_id, kind=card.kind.value) for card in cards])
    session.add(patron)
    audit(session, ctx, staff.username, "create_patron", body.patron_id)
    _commit(session, f"patron {body.patron_id} or one of the cards already exists")
    return patron_out(session, patron)


@router.get("/{patron_id}", response_model=PatronOut)
def get_patron(patron_id: str = PatronId, _: Staff = Depends(desk),
               session: Session = Depends(db_session)) -> PatronOut:
    return patron_out(session, patron_or_404(session, patron_id))


@router.patch("/{patron_id}", response_model=PatronOut)
def update_patron(
    body: PatronUpdate,
    patron_id: str = PatronId,
    staff: Staff = Depends(desk),
    ctx: BackendContext = Depends(context),
    session: Session = Depends(db_session),
) -> PatronOut:
    patron = patron_or_404(session, patron_id)
    for name in body.model_fields_set:
        setattr(patron, name, getattr(body, name))
    audit(session, ctx, staff.username, "update_patron", patron_id)
    session.commit()
    return patron_out(session, patron)


@router.delete("/{patron_id}", status_code=status.HTTP_204_NO_CONTENT,
               responses={409: {"description": "the patron has items on loan or owes money"}})
def delete_patron(
    patron_id: str = PatronId,
    staff: Staff = Depends(desk),
    ctx: BackendContext = Depends(context),
    session: Session = Depends(db_session),
) -> Response:
    """Delete a patron with nothing on loan and nothing owed; their loan history goes with them."""
    patron = patron_or_404(session, patron_id)
    if session.scalar(select(func.count()).select_from(Loan)
                      .where(Loan.patron_barcode == patron_id, Loan.returned_at.is_(None))):
        raise HTTPException(status.HTTP_409_CONFLICT, f"patron {patron_id} still has items on loan")
    if _owed(session, patron_id) > 0:
        raise HTTPException(status.HTTP_409_CONFLICT, f"patron {patron_id} still owes fines")
    session.execute(delete(Loan).where(Loan.patron_barcode == patron_id))
    session.delete(patron)
    audit(session, ctx, staff.username, "delete_patron", patron_id)
    session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{patron_id}/cards", response_model=PatronOut, status_code=status.HTTP_201_CREATED,
             responses={409: {"description": "the card belongs to someone already"}})
def add_card(
    body: CardIn,
    patron_id: str = PatronId,
    staff: Staff = Depends(desk),
    ctx: BackendContext = Depends(context),
    session: Session = Depends(db_session),
) -> PatronOut:
    patron = patron_or_404(session, patron_id)
    _refuse_taken(session, [body.card_id])
    patron.cards.append(PatronCard(card_id=body.card_id, kind=body.kind.value))
    audit(session, ctx, staff.username, "add_card", patron_id)
    _commit(session, f"card {body.card_id} already belongs to a patron")
    return patron_out(session, patron)


@router.delete("/{patron_id}/cards/{card_id}", response_model=PatronOut,
               responses={409: {"description": "a patron keeps at least one card"}})
def remove_card(
    patron_id: str = PatronId,
    card_id: str = Path(pattern=CODE_PATTERN),
    staff: Staff = Depends(desk),
    ctx: BackendContext = Depends(context),
    session: Session = Depends(db_session),
) -> PatronOut:
    patron = patron_or_404(session, patron_id)
    card = next((card for card in patron.cards if card.card_id == card_id), None)
    if card is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"patron {patron_id} has no card {card_id}")
    if len(patron.cards) == 1:
        raise HTTPException(status.HTTP_409_CONFLICT, "a patron keeps at least one card")
    patron.cards.remove(card)
    audit(session, ctx, staff.username, "remove_card", patron_id)
    session.commit()
    return patron_out(session, patron)


@router.post("/{patron_id}/block", response_model=PatronOut)
def block_patron(
    body: BlockRequest,
    patron_id: str = PatronId,
    staff: Staff = Depends(desk),
    ctx: BackendContext = Depends(context),
    session: Session = Depends(db_session),
) -> PatronOut:
    patron = patron_or_404(session, patron_id)
    patron.blocked, patron.block_reason = True, body.reason
    audit(session, ctx, staff.username, "block_patron", patron_id)
    session.commit()
    return patron_out(session, patron)


@router.post("/{patron_id}/unblock", response_model=PatronOut)
def unblock_patron(
    patron_id: str = PatronId,
    staff: Staff = Depends(desk),
    ctx: BackendContext = Depends(context),
    session: Session = Depends(db_session),
) -> PatronOut:
    patron = patron_or_404(session, patron_id)
    patron.blocked, patron.block_reason = False, None
    audit(session, ctx, staff.username, "unblock_patron", patron_id)
    session.commit()
    return patron_out(session, patron)


@router.put("/{patron_id}/pin", status_code=status.HTTP_204_NO_CONTENT)
def reset_pin(
    body: PinRequest,
    patron_id: str = PatronId,
    staff: Staff = Depends(desk),
    ctx: BackendContext = Depends(context),
    session: Session = Depends(db_session),
) -> Response:
    """Set a new PIN (stored only as an argon2 hash)."""
    patron = patron_or_404(session, patron_id)
    patron.pin_hash = ctx.passwords.hash(body.pin)
    audit(session, ctx, staff.username, "reset_pin", patron_id)
    session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{patron_id}/account", response_model=PatronAccount)
def patron_account(
    patron_id: str = PatronId,
    _: Staff = Depends(desk),
    ctx: BackendContext = Depends(context),
) -> PatronAccount:
    """Loans (due dates, accruing fines), holds and fines, as the circulation sees them (both modes)."""
    account = ctx.circulation.circulation.patron_account(patron_id)
    if not account.found:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"{account.reason.value}: {account.message.en}")
    return account


# --------------------------------------------------------------------------- helpers


def patron_out(session: Session, patron: Patron) -> PatronOut:
    loans = session.scalar(select(func.count()).select_from(Loan)
                           .where(Loan.patron_barcode == patron.barcode, Loan.returned_at.is_(None))) or 0
    return PatronOut(
        patron_id=patron.barcode, name=patron.name, category=patron.category, email=patron.email,
        expires_on=patron.expires_on, home_branch=patron.home_branch, blocked=patron.blocked,
        block_reason=patron.block_reason, has_pin=patron.pin_hash is not None,
        cards=[CardOut(card_id=card.card_id, kind=CardKind(card.kind)) for card in patron.cards],
        open_loans=loans, fines_owed=_owed(session, patron.barcode),
    )


def _owed(session: Session, patron_id: str) -> Decimal:
    return sum(session.scalars(select(Fine.outstanding).where(Fine.patron_barcode == patron_id)), Decimal(0))


def _refuse_taken(session: Session, card_ids: list[str], patron_id: str | None = None) -> None:
    if len(set(card_ids)) != len(card_ids):
        raise HTTPException(status.HTTP_409_CONFLICT, "the same card is listed twice")
    taken = session.scalars(select(PatronCard.card_id).where(PatronCard.card_id.in_(card_ids))).all()
    if taken:
        raise HTTPException(status.HTTP_409_CONFLICT, f"card {taken[0]} already belongs to a patron")
    if patron_id is not None and session.scalar(select(Patron.id).where(Patron.barcode == patron_id)) is not None:
        raise HTTPException(status.HTTP_409_CONFLICT, f"patron {patron_id} already exists")


def _commit(session: Session, conflict: str) -> None:
    """Commit, turning a race on a unique value into 409 (and nothing written)."""
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise HTTPException(status.HTTP_409_CONFLICT, conflict) from None
