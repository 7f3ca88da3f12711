"""Initial schema: catalogue, circulation (minimal), alarms, evidence, devices, staff, audit.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Revisions keep their own column types: a later change to the models must not rewrite history.
TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "items",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("item_id", sa.String(64), nullable=False),
        sa.Column("title", sa.String(500), nullable=False),
        sa.Column("author", sa.String(300), nullable=False),
        sa.Column("parts", sa.Integer(), nullable=False),
        sa.Column("in_library_only", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.CheckConstraint("parts >= 1", name=op.f("ck_items_parts_positive")),
        sa.CheckConstraint("status IN ('available', 'on_loan')", name=op.f("ck_items_status")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_items")),
        sa.UniqueConstraint("item_id", name=op.f("uq_items_item_id")),
    )
    op.create_table(
        "tags",
        sa.Column("uid", sa.String(16), nullable=False),
        sa.Column("item_id", sa.String(64), nullable=False),
        sa.Column("part", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["item_id"], ["items.item_id"], name=op.f("fk_tags_item_id_items"),
                                onupdate="CASCADE", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("uid", name=op.f("pk_tags")),
    )
    op.create_index(op.f("ix_tags_item_id"), "tags", ["item_id"])
    op.create_table(
        "patrons",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("barcode", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("category", sa.String(32), nullable=False),
        sa.Column("pin_hash", sa.String(255), nullable=True),
        sa.Column("expires_on", sa.Date(), nullable=True),
        sa.Column("blocked", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patrons")),
        sa.UniqueConstraint("barcode", name=op.f("uq_patrons_barcode")),
    )
    op.create_table(
        "loans",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.String(64), nullable=False),
        sa.Column("patron_barcode", sa.String(64), nullable=False),
        sa.Column("checked_out_at", TIMESTAMP, nullable=False),
        sa.Column("due_at", TIMESTAMP, nullable=False),
        sa.Column("returned_at", TIMESTAMP, nullable=True),
        sa.ForeignKeyConstraint(["item_id"], ["items.item_id"], name=op.f("fk_loans_item_id_items"),
                                onupdate="CASCADE"),
        sa.ForeignKeyConstraint(["patron_barcode"], ["patrons.barcode"],
                                name=op.f("fk_loans_patron_barcode_patrons"), onupdate="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_loans")),
    )
    op.create_index(op.f("ix_loans_item_id"), "loans", ["item_id"])
    op.create_index(op.f("ix_loans_patron_barcode"), "loans", ["patron_barcode"])
    op.create_index(
        "uq_loans_open_item", "loans", ["item_id"], unique=True,
        sqlite_where=sa.text("returned_at IS NULL"), postgresql_where=sa.text("returned_at IS NULL"),
    )
    op.create_table(
        "alarms",
        sa.Column("id", sa.String(128), nullable=False),
        sa.Column("gate_id", sa.String(64), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("decided_locally", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("acknowledged_by", sa.String(64), nullable=True),
        sa.Column("acknowledged_at", TIMESTAMP, nullable=True),
        sa.Column("outcome", sa.String(32), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.CheckConstraint("status IN ('open', 'silenced', 'acknowledged')", name=op.f("ck_alarms_status")),
        sa.CheckConstraint(
            "outcome IS NULL OR outcome IN ('returned_to_desk', 'checked_out', 'false_alarm', 'patron_left')",
            name=op.f("ck_alarms_outcome"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alarms")),
    )
    op.create_index(op.f("ix_alarms_created_at"), "alarms", ["created_at"])
    op.create_table(
        "alarm_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("alarm_id", sa.String(128), nullable=False),
        sa.Column("uid", sa.String(16), nullable=False),
        sa.Column("item_id", sa.String(64), nullable=True),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.ForeignKeyConstraint(["alarm_id"], ["alarms.id"], name=op.f("fk_alarm_items_alarm_id_alarms"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alarm_items")),
    )
    op.create_index(op.f("ix_alarm_items_alarm_id"), "alarm_items", ["alarm_id"])
    op.create_table(
        "evidence",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("alarm_id", sa.String(128), nullable=False),
        sa.Column("camera_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("path", sa.String(500), nullable=True),
        sa.Column("content_type", sa.String(64), nullable=True),
        sa.Column("captured_at", TIMESTAMP, nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("expires_at", TIMESTAMP, nullable=False),
        sa.Column("problem", sa.String(500), nullable=True),
        sa.CheckConstraint("kind IN ('snapshot', 'clip')", name=op.f("ck_evidence_kind")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_evidence")),
        sa.UniqueConstraint("alarm_id", "camera_id", "kind", name="uq_evidence_alarm_camera_kind"),
    )
    op.create_index(op.f("ix_evidence_alarm_id"), "evidence", ["alarm_id"])
    op.create_index(op.f("ix_evidence_expires_at"), "evidence", ["expires_at"])
    op.create_table(
        "devices",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("online", sa.Boolean(), nullable=True),
        sa.Column("last_seen", TIMESTAMP, nullable=True),
        sa.Column("state", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_devices")),
    )
    op.create_table(
        "staff_users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.CheckConstraint("role IN ('security', 'technician', 'admin')", name=op.f("ck_staff_users_role")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_users")),
        sa.UniqueConstraint("username", name=op.f("uq_staff_users_username")),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", TIMESTAMP, nullable=False),
        sa.Column("username", sa.String(64), nullable=True),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.String(200), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index(op.f("ix_audit_log_at"), "audit_log", ["at"])


def downgrade() -> None:
    for index, table in (
        ("ix_audit_log_at", "audit_log"),
        ("ix_evidence_expires_at", "evidence"),
        ("ix_evidence_alarm_id", "evidence"),
        ("ix_alarm_items_alarm_id", "alarm_items"),
        ("ix_alarms_created_at", "alarms"),
        ("uq_loans_open_item", "loans"),
        ("ix_loans_patron_barcode", "loans"),
        ("ix_loans_item_id", "loans"),
        ("ix_tags_item_id", "tags"),
    ):
        op.drop_index(op.f(index), table_name=table)
    for table in ("audit_log", "staff_users", "devices", "evidence", "alarm_items", "alarms", "loans",
                  "patrons", "tags", "items"):
        op.drop_table(table)
