"""Gate operations: people counting per hour, beam faults, alarms kept for an incident.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# Revisions keep their own column types: a later change to the models must not rewrite history.
TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "gate_hour_counts",
        sa.Column("gate_id", sa.String(64), nullable=False),
        sa.Column("hour_start", TIMESTAMP, nullable=False),
        sa.Column("entries", sa.Integer(), nullable=False),
        sa.Column("exits", sa.Integer(), nullable=False),
        sa.CheckConstraint("entries >= 0 AND exits >= 0", name=op.f("ck_gate_hour_counts_not_negative")),
        sa.PrimaryKeyConstraint("gate_id", "hour_start", name=op.f("pk_gate_hour_counts")),
    )
    op.create_index(op.f("ix_gate_hour_counts_hour_start"), "gate_hour_counts", ["hour_start"])
    op.create_table(
        "gate_passages_seen",
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("gate_id", sa.String(64), nullable=False),
        sa.Column("received_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_gate_passages_seen")),
    )
    op.create_index(op.f("ix_gate_passages_seen_received_at"), "gate_passages_seen", ["received_at"])
    op.create_table(
        "gate_beam_faults",
        sa.Column("gate_id", sa.String(64), nullable=False),
        sa.Column("lane", sa.String(16), nullable=False),
        sa.Column("beam", sa.String(8), nullable=False),
        sa.Column("stuck", sa.Boolean(), nullable=False),
        sa.Column("since", TIMESTAMP, nullable=False),
        sa.Column("reported_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("gate_id", "lane", "beam", name=op.f("pk_gate_beam_faults")),
    )
    op.create_table(
        "alarm_keeps",
        sa.Column("alarm_id", sa.String(128), nullable=False),
        sa.Column("kept_by", sa.String(64), nullable=False),
        sa.Column("kept_at", TIMESTAMP, nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["alarm_id"], ["alarms.id"], name=op.f("fk_alarm_keeps_alarm_id_alarms"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("alarm_id", name=op.f("pk_alarm_keeps")),
    )


def downgrade() -> None:
    op.drop_table("alarm_keeps")
    op.drop_table("gate_beam_faults")
    op.drop_index(op.f("ix_gate_passages_seen_received_at"), table_name="gate_passages_seen")
    op.drop_table("gate_passages_seen")
    op.drop_index(op.f("ix_gate_hour_counts_hour_start"), table_name="gate_hour_counts")
    op.drop_table("gate_hour_counts")
