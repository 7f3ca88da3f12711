"""The backend's tables (SQLAlchemy 2 typed ORM).

Schema changes go through a new Alembic revision in ``backend/migrations``;
these classes and the revisions must agree (a test compares them).
"""

from __future__ import annotations

import enum
from datetime import date, datetime
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

from backend.db.types import UtcDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class ItemStatus(str, enum.Enum):
    AVAILABLE = "available"
    ON_LOAN = "on_loan"


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

    tags: Mapped[list[Tag]] = relationship(back_populates="item")

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

    __table_args__ = (
        # The database itself refuses a second open loan of one item.
        Index(
            "uq_loans_open_item",
            "item_id",
            unique=True,
            sqlite_where=returned_at.is_(None),
            postgresql_where=returned_at.is_(None),
        ),
    )


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
