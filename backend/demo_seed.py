"""The demo library in the database: catalogue, tags, patron P0001 (card P0001, PIN 1234), loans, staff.

The circulation rules are the defaults, written by the backend at start.

Idempotent: running it again adds only what is missing (and re-sets a staff
password that no longer matches ``demo-accounts.json``).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from datetime import datetime, timedelta
from pathlib import Path
from typing import Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.db.models import CardKind, Item, ItemStatus, Loan, Patron, PatronCard, StaffRole, StaffUser, Tag
from backend.passwords import Passwords
from openshelf.config import ConfigError
from openshelf.contract import utcnow
from openshelf.demo_catalog import DEMO_ITEMS, DEMO_PATRON_BARCODE, DEMO_PATRON_PIN, DemoItem, tag_uid_for

log = logging.getLogger(__name__)

ACCOUNTS_FILE = "demo-accounts.json"
DEMO_PATRON_NAME = "Nguyễn Văn An"
DEMO_PATRON_EMAIL = "ban.doc@example.org"  # a reserved example domain: receipts from the demo go nowhere
DEMO_LOAN_PERIOD = timedelta(days=14)

Account = tuple[str, str]  # (username, password)


def ensure_demo_accounts(data_dir: Path) -> dict[str, Account]:
    """The demo staff accounts (role → (username, password)), created with random passwords if missing."""
    path = Path(data_dir) / ACCOUNTS_FILE
    if path.exists():
        return _read_accounts(path)
    accounts = {role.value: (role.value, secrets.token_urlsafe(12)) for role in StaffRole}
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {role: {"username": username, "password": password} for role, (username, password) in accounts.items()}
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump(payload, handle, indent=2)
        handle.write("\n")
    log.info("wrote demo staff accounts to %s", path)
    return accounts


def _read_accounts(path: Path) -> dict[str, Account]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return {
            StaffRole(role).value: (str(entry["username"]), str(entry["password"]))
            for role, entry in data.items()
        }
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(f"{path}: not a valid demo accounts file ({exc}); delete it to make a new one") from exc


def seed_demo(
    session: Session, accounts: Mapping[str, Account | str], *, passwords: Passwords | None = None
) -> None:
    """Create whatever of the demo is missing and commit.

    ``accounts`` maps a role to ``(username, password)`` as ``ensure_demo_accounts``
    returns it; a plain password string means the username is the role's name.
    """
    passwords = passwords or Passwords()
    now = utcnow()
    for demo in DEMO_ITEMS:
        _ensure_item(session, demo)
    _ensure_patron(session, passwords)
    session.flush()
    for demo in DEMO_ITEMS:
        if demo.on_loan_to is not None:
            _ensure_loan(session, demo, now)
    for role, account in accounts.items():
        username, password = (role, account) if isinstance(account, str) else account
        _ensure_staff(session, passwords, username, password, StaffRole(role))
    session.commit()


def _ensure_item(session: Session, demo: DemoItem) -> None:
    item = session.scalars(select(Item).where(Item.item_id == demo.item_id)).first()
    if item is None:
        item = Item(item_id=demo.item_id, title=demo.title, author=demo.author, parts=demo.parts,
                    in_library_only=demo.in_library_only, status=ItemStatus.AVAILABLE.value)
        session.add(item)
        session.flush()
    for part in range(1, demo.parts + 1):
        uid = tag_uid_for(demo.item_id, part)
        if session.get(Tag, uid) is None:
            session.add(Tag(uid=uid, item_id=demo.item_id, part=part))


def _ensure_patron(session: Session, passwords: Passwords) -> None:
    patron = session.scalars(select(Patron).where(Patron.barcode == DEMO_PATRON_BARCODE)).first()
    if patron is None:
        patron = Patron(barcode=DEMO_PATRON_BARCODE, name=DEMO_PATRON_NAME, category="adult",
                        pin_hash=passwords.hash(DEMO_PATRON_PIN), blocked=False, email=DEMO_PATRON_EMAIL)
        session.add(patron)
    if not any(card.card_id == DEMO_PATRON_BARCODE for card in patron.cards):
        patron.cards.append(PatronCard(card_id=DEMO_PATRON_BARCODE, kind=CardKind.BARCODE.value))


def _ensure_loan(session: Session, demo: DemoItem, now: datetime) -> None:
    open_loan = session.scalars(
        select(Loan).where(Loan.item_id == demo.item_id, Loan.returned_at.is_(None))
    ).first()
    if open_loan is not None:
        return
    session.add(Loan(item_id=demo.item_id, patron_barcode=demo.on_loan_to, checked_out_at=now,
                     due_at=now + DEMO_LOAN_PERIOD, patron_category="adult", item_type="book", renewals=0))
    item = session.scalars(select(Item).where(Item.item_id == demo.item_id)).one()
    item.status = ItemStatus.ON_LOAN.value


def _ensure_staff(session: Session, passwords: Passwords, username: str, password: str, role: StaffRole) -> None:
    user = session.scalars(select(StaffUser).where(StaffUser.username == username)).first()
    if user is None:
        session.add(StaffUser(username=username, password_hash=passwords.hash(password), role=role.value,
                              active=True))
        return
    if not passwords.verify(user.password_hash, password):
        user.password_hash = passwords.hash(password)
    user.role = role.value
    user.active = True
