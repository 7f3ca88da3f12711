"""What kiosks read over HTTP: an item's title for the screen, and a session's receipt address.

Kiosks authenticate with HTTP Basic (their device id and secret, as for the
broker). Titles are not patron data; the e-mail address is, so it is only
given for a live session of the asking kiosk and never logged.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Path, Request, status
from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.api.circulation_schemas import CODE_PATTERN, CatalogItem, KioskEmail
from backend.api.deps import DEVICE_REALM, context, db_session, device_from_basic, kiosk_identity, staff_from_cookie
from backend.context import BackendContext
from backend.db.models import Item, Patron, PatronCard

router = APIRouter(tags=["kiosk"])


def kiosk_or_staff(request: Request, ctx: BackendContext = Depends(context)) -> str:
    """A kiosk (HTTP Basic) or a logged-in staff member; 401 otherwise."""
    kiosk_id = device_from_basic(request, ctx, ctx.config.kiosk_ids)
    if kiosk_id is not None:
        return kiosk_id
    staff = staff_from_cookie(request, ctx)
    if staff is not None:
        return staff.username
    raise HTTPException(status.HTTP_401_UNAUTHORIZED, "kiosk credentials or a staff login required",
                        headers={"WWW-Authenticate": DEVICE_REALM})


@router.get("/api/catalog/items/{item_id}", response_model=CatalogItem,
            responses={404: {"description": "no such item"}})
def catalog_item(
    item_id: str = Path(pattern=CODE_PATTERN),
    _: str = Depends(kiosk_or_staff),
    ctx: BackendContext = Depends(context),
    session: Session = Depends(db_session),
) -> CatalogItem:
    item = session.scalars(select(Item).where(Item.item_id == item_id)).first()
    if item is not None:
        return CatalogItem(item_id=item.item_id, title=item.title, author=item.author, parts=item.parts)
    if ctx.circulation.standalone:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no item {item_id}")
    info = ctx.circulation.circulation.item_info(item_id)  # SIP2 mode: the library system's catalogue
    if not info.found:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no item {item_id}")
    return CatalogItem(item_id=item_id, title=info.title, author=info.author, parts=1)


@router.get("/api/kiosk/sessions/{session_id}/email", response_model=KioskEmail,
            responses={404: {"description": "no such session at this kiosk, or no address"}})
def session_email(
    session_id: str = Path(min_length=8, max_length=64),
    kiosk_id: str = Depends(kiosk_identity),
    ctx: BackendContext = Depends(context),
    session: Session = Depends(db_session),
) -> KioskEmail:
    live = ctx.circulation.sessions.get(session_id, kiosk_id)
    email = None
    if live is not None:
        email = session.scalar(select(Patron.email).join(PatronCard, PatronCard.patron_id == Patron.id)
                               .where(PatronCard.card_id == live.card_id))
    if email is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no receipt address for this session")
    return KioskEmail(email=email)
