"""Tables of gate operations: people counted per hour, beam faults, alarms kept for an incident.

They live apart from ``models.py`` but share its ``Base``, so the migrations and the
schema test see one schema. Revision ``0002_gate_ops`` creates them.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from backend.db.models import Base
from backend.db.types import UtcDateTime


class GateHourCount(Base):
    """People through one gate in one local clock hour (``hour_start`` is that hour's start, in UTC)."""

    __tablename__ = "gate_hour_counts"

    gate_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    hour_start: Mapped[datetime] = mapped_column(UtcDateTime, primary_key=True, index=True)
    entries: Mapped[int] = mapped_column(Integer, default=0)
    exits: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (CheckConstraint("entries >= 0 AND exits >= 0", name="not_negative"),)


class PassageSeen(Base):
    """The ids of passages already counted, so a redelivered event is not counted twice (pruned after days)."""

    __tablename__ = "gate_passages_seen"

    event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    gate_id: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)


class BeamFault(Base):
    """The latest fault report of one beam: ``stuck`` since ``since``, or clear again since ``since``."""

    __tablename__ = "gate_beam_faults"

    gate_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    lane: Mapped[str] = mapped_column(String(16), primary_key=True)
    beam: Mapped[str] = mapped_column(String(8), primary_key=True)
    stuck: Mapped[bool] = mapped_column(Boolean)
    since: Mapped[datetime] = mapped_column(UtcDateTime)
    reported_at: Mapped[datetime] = mapped_column(UtcDateTime)


class AlarmKeep(Base):
    """An alarm whose evidence is kept for an incident: the retention purge skips it while this row exists."""

    __tablename__ = "alarm_keeps"

    alarm_id: Mapped[str] = mapped_column(String(128), ForeignKey("alarms.id", ondelete="CASCADE"), primary_key=True)
    kept_by: Mapped[str] = mapped_column(String(64))
    kept_at: Mapped[datetime] = mapped_column(UtcDateTime)
    note: Mapped[str | None] = mapped_column(Text, default=None)
