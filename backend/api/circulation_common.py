"""What the staff circulation routes share: the desk role, refusals as HTTP errors, lookups, the gate view."""

from __future__ import annotations

from fastapi import HTTPException, status
from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.api.deps import require_role
from backend.circulation.interface import Result
from backend.circulation.messages import ReasonCode
from backend.context import BackendContext
from backend.db.models import Item, ItemStatus, Loan, Patron, PatronCard, StaffRole
from backend.gate_decision import ItemFacts as GateItem

# Circulation desk work (lending, patrons, items, holds, fines) and the rules are for admins; the
# security and technician roles see alarms and devices only (docs/backend.md, "Roles").
desk = require_role(StaffRole.ADMIN)

_NOT_FOUND = {ReasonCode.UNKNOWN_ITEM, ReasonCode.UNKNOWN_PATRON}


def refusal(result: Result) -> HTTPException:
    """A refused circulation request as 404 (unknown item or patron) or 409, naming the reason code."""
    code = status.HTTP_404_NOT_FOUND if result.reason in _NOT_FOUND else status.HTTP_409_CONFLICT
    if result.reason is ReasonCode.SYSTEM_UNAVAILABLE:
        code = status.HTTP_503_SERVICE_UNAVAILABLE
    return HTTPException(code, f"{result.reason.value}: {result.message.en}",
                         headers={"X-OpenShelf-Reason": result.reason.value})


def require_standalone(ctx: BackendContext) -> None:
    if not ctx.circulation.standalone:
        raise HTTPException(status.HTTP_409_CONFLICT,
                            "circulation runs in SIP2 mode: the library system keeps these records")


def patron_or_404(session: Session, patron_id: str) -> Patron:
    patron = session.scalars(select(Patron).where(Patron.barcode == patron_id)).first()
    if patron is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no patron {patron_id}")
    return patron


def item_or_404(session: Session, item_id: str) -> Item:
    item = session.scalars(select(Item).where(Item.item_id == item_id)).first()
    if item is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no item {item_id}")
    return item


def card_of(session: Session, patron_id: str) -> str:
    """A card that identifies the patron to the circulation: the patron number itself when it is one."""
    cards = session.scalars(select(PatronCard.card_id).join(Patron, Patron.id == PatronCard.patron_id)
                            .where(Patron.barcode == patron_id).order_by(PatronCard.id)).all()
    if not cards:
        raise HTTPException(status.HTTP_409_CONFLICT, f"patron {patron_id} has no card")
    return patron_id if patron_id in cards else cards[0]


def open_loan(session: Session, item_id: str) -> Loan | None:
    return session.scalars(select(Loan).where(Loan.item_id == item_id, Loan.returned_at.is_(None))).first()


def show_item_to_gate(ctx: BackendContext, session: Session, item: Item) -> None:
    """After a catalogue change commits: the gate sees the item's new facts and exactly its tags."""
    on_loan = open_loan(session, item.item_id) is not None or item.status == ItemStatus.ON_LOAN.value
    ctx.view.replace_item(GateItem(item.item_id, item.title, on_loan, item.in_library_only),
                          [tag.uid for tag in item.tags])
