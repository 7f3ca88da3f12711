"""Staff accounts: creating them and checking their passwords."""

from __future__ import annotations

import logging
import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.db.models import StaffRole, StaffUser
from backend.passwords import Passwords

log = logging.getLogger(__name__)

MIN_PASSWORD_LENGTH = 10
_USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")


class UserError(ValueError):
    """A staff account cannot be created or changed as asked."""


def create_user(
    session: Session, username: str, password: str, role: str | StaffRole, *, passwords: Passwords | None = None
) -> StaffUser:
    """Add a staff account and flush it; the caller commits."""
    role_value = _role(role)
    if not _USERNAME.match(username):
        raise UserError("username: 1-64 letters, digits or . _ @ -, starting with a letter or digit")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UserError(f"password: at least {MIN_PASSWORD_LENGTH} characters")
    if find_user(session, username) is not None:
        raise UserError(f"username {username!r} is already taken")
    user = StaffUser(
        username=username, password_hash=(passwords or Passwords()).hash(password), role=role_value, active=True
    )
    session.add(user)
    session.flush()
    log.info("created %s account %s", role_value, username)
    return user


def set_password(session: Session, user: StaffUser, password: str, *, passwords: Passwords | None = None) -> None:
    """Replace a password (ends that user's sessions); the caller commits."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UserError(f"password: at least {MIN_PASSWORD_LENGTH} characters")
    user.password_hash = (passwords or Passwords()).hash(password)
    session.flush()


def find_user(session: Session, username: str) -> StaffUser | None:
    return session.scalars(select(StaffUser).where(StaffUser.username == username)).first()


def authenticate(session: Session, passwords: Passwords, username: str, password: str) -> StaffUser | None:
    """The active user with this password, or None; takes as long for unknown users as for known ones."""
    user = find_user(session, username)
    if user is None or not user.active:
        passwords.burn_time(password)
        return None
    if not passwords.verify(user.password_hash, password):
        return None
    if passwords.needs_rehash(user.password_hash):
        user.password_hash = passwords.hash(password)
        session.commit()
    return user


def _role(role: str | StaffRole) -> str:
    try:
        return StaffRole(role).value
    except ValueError:
        raise UserError(f"role must be one of {', '.join(r.value for r in StaffRole)}") from None
