"""The backend's tables (SQLAlchemy 2 typed ORM).

Schema changes go through a new Alembic revision in ``backend/migrations``;
these classes and the revisions must agree (a test compares them).

Circulation (revision 0003): an item carries its bibliographic facts and one of
the circulation statuses; a patron has several cards (barcode, NFC UID, RFID
card) and is named everywhere else by ``patrons.barcode``, the patron number;
holds, fines, payments, the editable rules and the remembered results of
idempotent requests have tables of their own.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from backend.circulation.model import HoldStatus, ItemStatus
from backend.db.types import Money, UtcDateTime
from openshelf.contract import utcnow

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class AlarmStatus(str, enum.Enum):
    OPEN = "open"
    SILENCED = "silenced"
    ACKNOWLEDGED = "acknowledged"


class AlarmOutcome(str, enum.Enum):
    RETURNED_TO_DESK = "returned_to_desk"
    CHECKED_OUT = "checked_out"
    FALSE_ALARM = "false_alarm"
    PATRON_LEFT = "patron_left"


class EvidenceKind(str, enum.Enum):
    SNAPSHOT = "snapshot"
    CLIP = "clip"


class StaffRole(str, enum.Enum):
    SECURITY = "security"
    TECHNICIAN = "technician"
    ADMIN = "admin"


class CardKind(str, enum.Enum):
    BARCODE = "barcode"
    NFC_UID = "nfc_uid"
    RFID = "rfid"


class HoldEnd(str, enum.Enum):
    FILLED = "filled"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


class FineKind(str, enum.Enum):
    OVERDUE = "overdue"
    LOST = "lost"
    DAMAGE = "damage"
    MANUAL = "manual"


def _one_of(column: str, values: type[enum.Enum]) -> str:
    listed = ", ".join(f"'{member.value}'" for member in values)
    return f"{column} IN ({listed})"


class Item(Base):
    __tablename__ = "items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(500))
    author: Mapped[str] = mapped_column(String(300), default="")
    parts: Mapped[int] = mapped_column(Integer, default=1)
    in_library_only: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default=ItemStatus.AVAILABLE.value)
    record_id: Mapped[str | None] = mapped_column(String(64), default=None, index=True)
    isbn: Mapped[str | None] = mapped_column(String(32), default=None)
    publisher: Mapped[str] = mapped_column(String(200), default="")
    year: Mapped[int | None] = mapped_column(Integer, default=None)
    call_number: Mapped[str] = mapped_column(String(100), default="")
    item_type: Mapped[str] = mapped_column(String(32), default="book")
    home_branch: Mapped[str] = mapped_column(String(32), default="")
    holding_branch: Mapped[str] = mapped_column(String(32), default="")
    location: Mapped[str] = mapped_column(String(100), default="")
    # When the catalogue entry last changed: a running backend picks up imports made by another process.
    updated_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=utcnow, index=True)

    tags: Mapped[list[Tag]] = relationship(back_populates="item", order_by="Tag.part")

    __table_args__ = (
        CheckConstraint("parts >= 1", name="parts_positive"),
        CheckConstraint(_one_of("status", ItemStatus), name="status"),
    )


class Tag(Base):
    __tablename__ = "tags"

    uid: Mapped[str] = mapped_column(String(16), primary_key=True)
    item_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("items.item_id", onupdate="CASCADE", ondelete="CASCADE"), index=True
    )
    part: Mapped[int] = mapped_column(Integer, default=1)

    item: Mapped[Item] = relationship(back_populates="tags")


class Patron(Base):
    __tablename__ = "patrons"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    barcode: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(32), default="adult")
    pin_hash: Mapped[str | None] = mapped_column(String(255), default=None)
    expires_on: Mapped[date | None] = mapped_column(Date, default=None)
    blocked: Mapped[bool] = mapped_column(Boolean, default=False)
    block_reason: Mapped[str | None] = mapped_column(String(200), default=None)
    email: Mapped[str | None] = mapped_column(String(254), default=None)
    home_branch: Mapped[str] = mapped_column(String(32), default="")

    cards: Mapped[list[PatronCard]] = relationship(back_populates="patron", cascade="all, delete-orphan",
                                                   order_by="PatronCard.id")


class PatronCard(Base):
    """One of a patron's cards; ``card_id`` is what a kiosk or SIP2 terminal sends."""

    __tablename__ = "patron_cards"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    card_id: Mapped[str] = mapped_column(String(64), unique=True)
    patron_id: Mapped[int] = mapped_column(Integer, ForeignKey("patrons.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16), default=CardKind.BARCODE.value)

    patron: Mapped[Patron] = relationship(back_populates="cards")

    __table_args__ = (CheckConstraint(_one_of("kind", CardKind), name="kind"),)


class Loan(Base):
    __tablename__ = "loans"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[str] = mapped_column(String(64), ForeignKey("items.item_id", onupdate="CASCADE"), index=True)
    patron_barcode: Mapped[str] = mapped_column(
        String(64), ForeignKey("patrons.barcode", onupdate="CASCADE"), index=True
    )
    checked_out_at: Mapped[datetime] = mapped_column(UtcDateTime)
    due_at: Mapped[datetime] = mapped_column(UtcDateTime)
    returned_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    # The patron's category and the item's type when lent: the rule that governs the loan.
    patron_category: Mapped[str] = mapped_column(String(32), default="adult")
    item_type: Mapped[str] = mapped_column(String(32), default="book")
    renewals: Mapped[int] = mapped_column(Integer, default=0)
    branch: Mapped[str] = mapped_column(String(32), default="")

    __table_args__ = (
        # The database itself refuses a second open loan of one item.
        Index(
            "uq_loans_open_item",
            "item_id",
            unique=True,
            sqlite_where=returned_at.is_(None),
            postgresql_where=returned_at.is_(None),
        ),
        # Every checkout reads the patron's open loans; their loan history must not slow it down.
        Index(
            "ix_loans_open_patron",
            "patron_barcode",
            sqlite_where=returned_at.is_(None),
            postgresql_where=returned_at.is_(None),
        ),
    )


class Hold(Base):
    """A hold on an item or on any item of a bibliographic record; active while ``ended_at`` is null."""

    __tablename__ = "holds"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    patron_barcode: Mapped[str] = mapped_column(
        String(64), ForeignKey("patrons.barcode", onupdate="CASCADE", ondelete="CASCADE"), index=True
    )
    record_id: Mapped[str | None] = mapped_column(String(64), default=None, index=True)
    item_id: Mapped[str | None] = mapped_column(
        String(64), ForeignKey("items.item_id", onupdate="CASCADE", ondelete="CASCADE"), default=None, index=True
    )
    status: Mapped[str] = mapped_column(String(16), default=HoldStatus.PENDING.value)
    pickup_branch: Mapped[str] = mapped_column(String(32), default="")
    placed_at: Mapped[datetime] = mapped_column(UtcDateTime)
    pickup_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    end_reason: Mapped[str | None] = mapped_column(String(16), default=None)

    __table_args__ = (
        CheckConstraint(_one_of("status", HoldStatus), name="status"),
        CheckConstraint(f"end_reason IS NULL OR {_one_of('end_reason', HoldEnd)}", name="end_reason"),
        CheckConstraint("record_id IS NOT NULL OR item_id IS NOT NULL", name="target"),
    )


class Fine(Base):
    """A charge on a patron's account: ``amount`` as charged, ``outstanding`` what is still owed."""

    __tablename__ = "fines"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    patron_barcode: Mapped[str] = mapped_column(
        String(64), ForeignKey("patrons.barcode", onupdate="CASCADE", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16), default=FineKind.OVERDUE.value)
    amount: Mapped[Decimal] = mapped_column(Money)
    outstanding: Mapped[Decimal] = mapped_column(Money)
    # Not a foreign key: a fine outlives a withdrawn item.
    item_id: Mapped[str | None] = mapped_column(String(64), default=None)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    description: Mapped[str] = mapped_column(String(500), default="")

    __table_args__ = (CheckConstraint(_one_of("kind", FineKind), name="kind"),)


class Payment(Base):
    __tablename__ = "payments"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    patron_barcode: Mapped[str] = mapped_column(
        String(64), ForeignKey("patrons.barcode", onupdate="CASCADE", ondelete="CASCADE"), index=True
    )
    amount: Mapped[Decimal] = mapped_column(Money)
    paid_at: Mapped[datetime] = mapped_column(UtcDateTime)
    reference: Mapped[str] = mapped_column(String(200), default="")


class CirculationRuleRow(Base):
    """One row of the editable rules table (see backend.circulation.model.CirculationRule)."""

    __tablename__ = "circulation_rules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patron_category: Mapped[str] = mapped_column(String(32))
    item_type: Mapped[str] = mapped_column(String(32))
    loan_period: Mapped[int] = mapped_column(Integer)
    period_unit: Mapped[str] = mapped_column(String(8))
    max_loans: Mapped[int] = mapped_column(Integer)
    max_renewals: Mapped[int] = mapped_column(Integer)
    renewal_period: Mapped[int | None] = mapped_column(Integer, default=None)
    renew_from: Mapped[str] = mapped_column(String(16))
    holds_block_renewal: Mapped[bool] = mapped_column(Boolean)
    fine_per_day: Mapped[Decimal] = mapped_column(Money)
    grace_days: Mapped[int] = mapped_column(Integer)
    max_fine: Mapped[Decimal | None] = mapped_column(Money, default=None)
    fine_limit: Mapped[Decimal | None] = mapped_column(Money, default=None)

    __table_args__ = (
        UniqueConstraint("patron_category", "item_type", name="uq_circulation_rules_category_item_type"),
        CheckConstraint("period_unit IN ('days', 'hours')", name="period_unit"),
        CheckConstraint("renew_from IN ('due_date', 'now')", name="renew_from"),
    )


class CirculationPolicy(Base):
    """The settings that are not per category × item type; one row, created with the default rules."""

    __tablename__ = "circulation_policy"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    currency: Mapped[str] = mapped_column(String(3))
    hold_pickup_days: Mapped[int] = mapped_column(Integer)

    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)


class CirculationResult(Base):
    """The first answer to an idempotent request, so a replay with the same key gets it again."""

    __tablename__ = "circulation_results"

    key: Mapped[str] = mapped_column(String(160), primary_key=True)
    operation: Mapped[str] = mapped_column(String(16))
    fingerprint: Mapped[str] = mapped_column(String(64))
    result_json: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)

    # On SQLite the key is the table (one B-tree less to write on every checkout).
    __table_args__ = {"sqlite_with_rowid": False}


class Alarm(Base):
    __tablename__ = "alarms"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    gate_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    decided_locally: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default=AlarmStatus.OPEN.value)
    acknowledged_by: Mapped[str | None] = mapped_column(String(64), default=None)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    outcome: Mapped[str | None] = mapped_column(String(32), default=None)
    note: Mapped[str | None] = mapped_column(Text, default=None)

    items: Mapped[list[AlarmItemRow]] = relationship(
        back_populates="alarm", cascade="all, delete-orphan", order_by="AlarmItemRow.id"
    )

    __table_args__ = (
        CheckConstraint(_one_of("status", AlarmStatus), name="status"),
        CheckConstraint(f"outcome IS NULL OR {_one_of('outcome', AlarmOutcome)}", name="outcome"),
    )


class AlarmItemRow(Base):
    __tablename__ = "alarm_items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    alarm_id: Mapped[str] = mapped_column(String(128), ForeignKey("alarms.id", ondelete="CASCADE"), index=True)
    uid: Mapped[str] = mapped_column(String(16))
    # Not a foreign key: an alarm may name a tag or item the catalogue does not know.
    item_id: Mapped[str | None] = mapped_column(String(64), default=None)
    reason: Mapped[str] = mapped_column(String(32))

    alarm: Mapped[Alarm] = relationship(back_populates="items")


class Evidence(Base):
    """A snapshot or clip a camera uploaded for an alarm.

    ``alarm_id`` is deliberately not a foreign key: a camera may upload before
    the backend's writer has stored the alarm; the two meet by id later.
    """

    __tablename__ = "evidence"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    alarm_id: Mapped[str] = mapped_column(String(128), index=True)
    camera_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    path: Mapped[str | None] = mapped_column(String(500), default=None)
    content_type: Mapped[str | None] = mapped_column(String(64), default=None)
    captured_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    problem: Mapped[str | None] = mapped_column(String(500), default=None)

    __table_args__ = (
        UniqueConstraint("alarm_id", "camera_id", "kind", name="uq_evidence_alarm_camera_kind"),
        CheckConstraint(_one_of("kind", EvidenceKind), name="kind"),
    )


class Device(Base):
    __tablename__ = "devices"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    online: Mapped[bool | None] = mapped_column(Boolean, default=None)
    last_seen: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    state: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)


class StaffUser(Base):
    __tablename__ = "staff_users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    __table_args__ = (CheckConstraint(_one_of("role", StaffRole), name="role"),)


class AuditEntry(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    username: Mapped[str | None] = mapped_column(String(64), default=None)
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str | None] = mapped_column(String(200), default=None)
