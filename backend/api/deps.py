"""Request dependencies: the context, a database session, the logged-in staff member, a camera."""

from __future__ import annotations

import base64
import binascii
import hmac
from dataclasses import dataclass
from typing import Callable, Iterator

from fastapi import Depends, HTTPException, Request, status
from sqlalchemy.orm import Session

from backend.context import BackendContext
from backend.db.models import AuditEntry, StaffRole
from backend.sessions import COOKIE_NAME, fingerprint
from backend.users import find_user

DEVICE_REALM = 'Basic realm="openshelf-devices", charset="UTF-8"'
_DUMMY_SECRET = b"openshelf-no-such-device-secret"


@dataclass(frozen=True)
class Staff:
    username: str
    role: StaffRole


def context(request: Request) -> BackendContext:
    return request.app.state.ctx


def db_session(ctx: BackendContext = Depends(context)) -> Iterator[Session]:
    with ctx.sessions() as session:
        yield session


def staff_from_cookie(request: Request, ctx: BackendContext) -> Staff | None:
    """The staff member the session cookie names, if it is valid and the account still active."""
    token = request.cookies.get(COOKIE_NAME)
    claim = ctx.codec.read(token) if token else None
    if claim is None:
        return None
    # A short session of its own: a long-lived stream must not hold a pooled connection.
    with ctx.sessions() as session:
        user = find_user(session, claim.username)
        if user is None or not user.active or not hmac.compare_digest(
            fingerprint(user.password_hash), claim.fingerprint
        ):
            return None
        return Staff(user.username, StaffRole(user.role))


def current_staff(request: Request, ctx: BackendContext = Depends(context)) -> Staff:
    staff = staff_from_cookie(request, ctx)
    if staff is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "login required")
    return staff


def require_role(*roles: StaffRole) -> Callable[[Staff], Staff]:
    """Admins may do everything; others need one of ``roles``."""
    allowed = {*roles, StaffRole.ADMIN}

    def check(staff: Staff = Depends(current_staff)) -> Staff:
        if staff.role not in allowed:
            raise HTTPException(status.HTTP_403_FORBIDDEN, "your role may not do this")
        return staff

    return check


def camera_identity(request: Request, ctx: BackendContext = Depends(context)) -> str:
    """HTTP Basic with a camera's id and its secret; answers 401 the same way for every failure."""
    camera_id = device_from_basic(request, ctx, ctx.config.camera_ids)
    if camera_id is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "camera credentials required",
                            headers={"WWW-Authenticate": DEVICE_REALM})
    return camera_id


def kiosk_identity(request: Request, ctx: BackendContext = Depends(context)) -> str:
    """HTTP Basic with a kiosk's id and its secret; answers 401 the same way for every failure."""
    kiosk_id = device_from_basic(request, ctx, ctx.config.kiosk_ids)
    if kiosk_id is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "kiosk credentials required",
                            headers={"WWW-Authenticate": DEVICE_REALM})
    return kiosk_id


def device_from_basic(request: Request, ctx: BackendContext, allowed: frozenset[str]) -> str | None:
    """The device (one of ``allowed``) whose id and secret the request's HTTP Basic header carries."""
    claimed = _basic_credentials(request.headers.get("authorization"))
    if claimed is None:
        return None
    device_id, password = claimed
    known = ctx.config.device_secret(device_id) if device_id in allowed else None
    expected = known.encode("utf-8") if known is not None else _DUMMY_SECRET
    matches = hmac.compare_digest(password.encode("utf-8"), expected)
    return device_id if matches and known is not None else None


def _basic_credentials(header: str | None) -> tuple[str, str] | None:
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, separator, password = decoded.partition(":")
    return (username, password) if separator else None


def audit(session: Session, ctx: BackendContext, username: str | None, action: str, target: str | None) -> None:
    """Add an audit entry to the session; the caller's commit writes it with the change it describes."""
    session.add(AuditEntry(at=ctx.clock(), username=username, action=action, target=(target or "")[:200] or None))
