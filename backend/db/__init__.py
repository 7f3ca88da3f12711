"""Database: models, engine helpers and programmatic Alembic migrations."""

from backend.db.engine import DatabaseError, make_engine, session_factory, upgrade_database
from backend.db.models import (
    Alarm,
    AlarmItemRow,
    AlarmOutcome,
    AlarmStatus,
    AuditEntry,
    Base,
    Device,
    Evidence,
    EvidenceKind,
    Item,
    ItemStatus,
    Loan,
    Patron,
    StaffRole,
    StaffUser,
    Tag,
)

__all__ = [
    "Alarm",
    "AlarmItemRow",
    "AlarmOutcome",
    "AlarmStatus",
    "AuditEntry",
    "Base",
    "DatabaseError",
    "Device",
    "Evidence",
    "EvidenceKind",
    "Item",
    "ItemStatus",
    "Loan",
    "Patron",
    "StaffRole",
    "StaffUser",
    "Tag",
    "make_engine",
    "session_factory",
    "upgrade_database",
]
