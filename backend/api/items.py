"""Items for the circulation desk: catalogue records, shelf status and RFID tag UIDs.

Every change reaches the gate view as soon as it is committed (new tags alarm,
removed tags no longer belong to the item). A status that loans and holds set
(on loan, on the hold shelf) cannot be set by hand.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Response, status
from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from backend.api.circulation_common import desk, item_or_404, open_loan, show_item_to_gate
from backend.api.circulation_schemas import (
    CODE_PATTERN,
    ItemCreate,
    ItemOut,
    ItemPage,
    ItemUpdate,
    TagIn,
    TagOut,
    TagsReplace,
)
from backend.api.deps import Staff, audit, context, db_session
from backend.circulation.model import ItemStatus
from backend.context import BackendContext
from backend.db.models import Item, Tag

router = APIRouter(prefix="/api/items", tags=["items"])
ItemId = Path(pattern=CODE_PATTERN, description="the item's barcode")
_CIRCULATING = {ItemStatus.ON_LOAN.value, ItemStatus.ON_HOLD_SHELF.value}


@router.get("", response_model=ItemPage)
def list_items(
    q: str | None = Query(default=None, max_length=100, description="part of a title, author or barcode"),
    item_status: ItemStatus | None = Query(default=None, alias="status"),
    offset: int = Query(default=0, ge=0),
    limit: int = Query(default=50, ge=1, le=200),
    _: Staff = Depends(desk),
    session: Session = Depends(db_session),
) -> ItemPage:
    query = select(Item)
    if q:
        pattern = f"%{q}%"
        query = query.where(or_(Item.title.ilike(pattern), Item.author.ilike(pattern), Item.item_id.ilike(pattern)))
    if item_status is not None:
        query = query.where(Item.status == item_status.value)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(Item.item_id).offset(offset).limit(limit)).all()
    return ItemPage(items=[item_out(row) for row in rows], total=total, offset=offset, limit=limit)


@router.post("", response_model=ItemOut, status_code=status.HTTP_201_CREATED,
             responses={409: {"description": "the barcode or a tag UID is already in use"}})
def create_item(
    body: ItemCreate,
    staff: Staff = Depends(desk),
    ctx: BackendContext = Depends(context),
    session: Session = Depends(db_session),
) -> ItemOut:
    if session.scalar(select(Item.id).where(Item.item_id == body.item_id)) is not None:
        raise HTTPException(status.HTTP_409_CONFLICT, f"item {body.item_id} already exists")
    _check_tags(session, body.tags, body.parts, body.item_id)
    fields = body.model_dump(exclude={"item_id", "tags", "status"})
    item = Item(item_id=body.item_id, status=ItemStatus(body.status).value, updated_at=ctx.clock(), **fields,
                tags=[Tag(uid=tag.uid, part=tag.part) for tag in body.tags])
    session.add(item)
    audit(session, ctx, staff.username, "create_item", body.item_id)
    _commit(session, f"item {body.item_id} or one of its tags already exists")
    show_item_to_gate(ctx, session, item)
    return item_out(item)


@router.get("/{item_id}", response_model=ItemOut)
def get_item(item_id: str = ItemId, _: Staff = Depends(desk), session: Session = Depends(db_session)) -> ItemOut:
    return item_out(item_or_404(session, item_id))


@router.patch("/{item_id}", response_model=ItemOut,
              responses={409: {"description": "the status of an item on loan or on the hold shelf"}})
def update_item(
    body: ItemUpdate,
    item_id: str = ItemId,
    staff: Staff = Depends(desk),
    ctx: BackendContext = Depends(context),
    session: Session = Depends(db_session),
) -> ItemOut:
    item = item_or_404(session, item_id)
    changes = {name: getattr(body, name) for name in body.model_fields_set}
    if "status" in changes:
        if item.status in _CIRCULATING and changes["status"] != item.status:
            raise HTTPException(status.HTTP_409_CONFLICT,
                                f"{item_id} is {item.status}: check it in (or cancel its hold) first")
        changes["status"] = ItemStatus(changes["status"]).value
    if "parts" in changes and any(tag.part > changes["parts"] for tag in item.tags):
        raise HTTPException(422, "a tag names a part beyond the new number of parts")
    for name, value in changes.items():
        setattr(item, name, value)
    item.updated_at = ctx.clock()
    audit(session, ctx, staff.username, "update_item", item_id)
    session.commit()
    show_item_to_gate(ctx, session, item)
    return item_out(item)


@router.delete("/{item_id}", status_code=status.HTTP_204_NO_CONTENT,
               responses={409: {"description": "the item is on loan"}})
def delete_item(
    item_id: str = ItemId,
    staff: Staff = Depends(desk),
    ctx: BackendContext = Depends(context),
    session: Session = Depends(db_session),
) -> Response:
    """Remove an item that is not on loan (its tags and holds go with it; loan history stays)."""
    item = item_or_404(session, item_id)
    if open_loan(session, item_id) is not None:
        raise HTTPException(status.HTTP_409_CONFLICT, f"{item_id} is on loan: check it in first")
    for tag in list(item.tags):
        session.delete(tag)
    session.delete(item)
    audit(session, ctx, staff.username, "delete_item", item_id)
    _commit(session, f"{item_id} still has loan history; withdraw it (status) instead")
    ctx.view.remove_item(item_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.put("/{item_id}/tags", response_model=ItemOut,
            responses={409: {"description": "a UID belongs to another item"}})
def replace_tags(
    body: TagsReplace,
    item_id: str = ItemId,
    staff: Staff = Depends(desk),
    ctx: BackendContext = Depends(context),
    session: Session = Depends(db_session),
) -> ItemOut:
    """Set exactly these RFID tags on the item (one per part; an empty list removes them all)."""
    item = item_or_404(session, item_id)
    _check_tags(session, body.tags, item.parts, item_id)
    for tag in list(item.tags):
        session.delete(tag)
    session.flush()
    item.tags = [Tag(uid=tag.uid, part=tag.part) for tag in body.tags]
    item.updated_at = ctx.clock()
    audit(session, ctx, staff.username, "replace_tags", item_id)
    _commit(session, "one of the tags already belongs to another item")
    show_item_to_gate(ctx, session, item)
    return item_out(item)


# --------------------------------------------------------------------------- helpers


def item_out(item: Item) -> ItemOut:
    return ItemOut(
        item_id=item.item_id, title=item.title, author=item.author, record_id=item.record_id, isbn=item.isbn,
        publisher=item.publisher, year=item.year, call_number=item.call_number, item_type=item.item_type,
        parts=item.parts, home_branch=item.home_branch, holding_branch=item.holding_branch, location=item.location,
        in_library_only=item.in_library_only, status=ItemStatus(item.status),
        tags=[TagOut(uid=tag.uid, part=tag.part) for tag in sorted(item.tags, key=lambda tag: (tag.part, tag.uid))],
        updated_at=item.updated_at,
    )


def _check_tags(session: Session, tags: list[TagIn], parts: int, item_id: str) -> None:
    uids = [tag.uid for tag in tags]
    if len(set(uids)) != len(uids):
        raise HTTPException(422, "the same tag UID is listed twice")
    if any(tag.part > parts for tag in tags):
        raise HTTPException(422, f"a tag names a part beyond the item's {parts}")
    owners = session.execute(select(Tag.uid, Tag.item_id).where(Tag.uid.in_(uids))).all()
    foreign = [uid for uid, owner in owners if owner != item_id]
    if foreign:
        raise HTTPException(status.HTTP_409_CONFLICT, f"tag {foreign[0]} belongs to another item")


def _commit(session: Session, conflict: str) -> None:
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise HTTPException(status.HTTP_409_CONFLICT, conflict) from None
