"""Circulation: item records and statuses, patron cards and e-mail, holds, fines, payments, rules, results.

Existing rows keep working: every new NOT NULL column has a server default,
every patron's barcode becomes their first card, and open loans get the
category and item type of the default rule. The default rules themselves are
written by the backend at start (from ``DEFAULT_RULES``) when the rules table
has never been filled, so this revision does not freeze them.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# Revisions keep their own column types: a later change to the models must not rewrite history.
TIMESTAMP = sa.DateTime(timezone=True)
MONEY = sa.Numeric(14, 2).with_variant(sa.String(32), "sqlite")
ITEM_STATUSES = ("available", "on_loan", "on_hold_shelf", "in_transit", "in_process", "lost", "missing",
                 "withdrawn")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


def upgrade() -> None:
    _extend_items()
    _extend_patrons()
    _extend_loans()
    _create_holds_fines_payments()
    _create_rules_and_results()


def _extend_items() -> None:
    with op.batch_alter_table("items") as batch:
        batch.drop_constraint(op.f("ck_items_status"), type_="check")
        batch.add_column(sa.Column("record_id", sa.String(64), nullable=True))
        batch.add_column(sa.Column("isbn", sa.String(32), nullable=True))
        batch.add_column(sa.Column("publisher", sa.String(200), nullable=False, server_default=""))
        batch.add_column(sa.Column("year", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("call_number", sa.String(100), nullable=False, server_default=""))
        batch.add_column(sa.Column("item_type", sa.String(32), nullable=False, server_default="book"))
        batch.add_column(sa.Column("home_branch", sa.String(32), nullable=False, server_default=""))
        batch.add_column(sa.Column("holding_branch", sa.String(32), nullable=False, server_default=""))
        batch.add_column(sa.Column("location", sa.String(100), nullable=False, server_default=""))
        batch.add_column(sa.Column("updated_at", TIMESTAMP, nullable=True))
        batch.create_check_constraint("status", _in("status", ITEM_STATUSES))
        batch.create_index(op.f("ix_items_record_id"), ["record_id"])
        batch.create_index(op.f("ix_items_updated_at"), ["updated_at"])


def _extend_patrons() -> None:
    with op.batch_alter_table("patrons") as batch:
        batch.add_column(sa.Column("block_reason", sa.String(200), nullable=True))
        batch.add_column(sa.Column("email", sa.String(254), nullable=True))
        batch.add_column(sa.Column("home_branch", sa.String(32), nullable=False, server_default=""))
    op.create_table(
        "patron_cards",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("card_id", sa.String(64), nullable=False),
        sa.Column("patron_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.CheckConstraint("kind IN ('barcode', 'nfc_uid', 'rfid')", name=op.f("ck_patron_cards_kind")),
        sa.ForeignKeyConstraint(["patron_id"], ["patrons.id"], name=op.f("fk_patron_cards_patron_id_patrons"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patron_cards")),
        sa.UniqueConstraint("card_id", name=op.f("uq_patron_cards_card_id")),
    )
    op.create_index(op.f("ix_patron_cards_patron_id"), "patron_cards", ["patron_id"])
    op.execute("INSERT INTO patron_cards (card_id, patron_id, kind) SELECT barcode, id, 'barcode' FROM patrons")


def _extend_loans() -> None:
    with op.batch_alter_table("loans") as batch:
        batch.add_column(sa.Column("patron_category", sa.String(32), nullable=False, server_default="adult"))
        batch.add_column(sa.Column("item_type", sa.String(32), nullable=False, server_default="book"))
        batch.add_column(sa.Column("renewals", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("branch", sa.String(32), nullable=False, server_default=""))
    # Every checkout reads the patron's open loans; their loan history must not slow it down.
    op.create_index("ix_loans_open_patron", "loans", ["patron_barcode"],
                    sqlite_where=sa.text("returned_at IS NULL"), postgresql_where=sa.text("returned_at IS NULL"))


def _patron_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["patron_barcode"], ["patrons.barcode"],
                                   name=op.f(f"fk_{table}_patron_barcode_patrons"),
                                   onupdate="CASCADE", ondelete="CASCADE")


def _create_holds_fines_payments() -> None:
    op.create_table(
        "holds",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("patron_barcode", sa.String(64), nullable=False),
        sa.Column("record_id", sa.String(64), nullable=True),
        sa.Column("item_id", sa.String(64), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("pickup_branch", sa.String(32), nullable=False),
        sa.Column("placed_at", TIMESTAMP, nullable=False),
        sa.Column("pickup_expires_at", TIMESTAMP, nullable=True),
        sa.Column("ended_at", TIMESTAMP, nullable=True),
        sa.Column("end_reason", sa.String(16), nullable=True),
        sa.CheckConstraint("status IN ('pending', 'ready')", name=op.f("ck_holds_status")),
        sa.CheckConstraint("end_reason IS NULL OR end_reason IN ('filled', 'cancelled', 'expired')",
                           name=op.f("ck_holds_end_reason")),
        sa.CheckConstraint("record_id IS NOT NULL OR item_id IS NOT NULL", name=op.f("ck_holds_target")),
        _patron_fk("holds"),
        sa.ForeignKeyConstraint(["item_id"], ["items.item_id"], name=op.f("fk_holds_item_id_items"),
                                onupdate="CASCADE", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_holds")),
    )
    for column in ("patron_barcode", "record_id", "item_id"):
        op.create_index(op.f(f"ix_holds_{column}"), "holds", [column])
    op.create_table(
        "fines",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("patron_barcode", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("outstanding", MONEY, nullable=False),
        sa.Column("item_id", sa.String(64), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("description", sa.String(500), nullable=False),
        sa.CheckConstraint("kind IN ('overdue', 'lost', 'damage', 'manual')", name=op.f("ck_fines_kind")),
        _patron_fk("fines"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fines")),
    )
    op.create_index(op.f("ix_fines_patron_barcode"), "fines", ["patron_barcode"])
    op.create_table(
        "payments",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("patron_barcode", sa.String(64), nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("paid_at", TIMESTAMP, nullable=False),
        sa.Column("reference", sa.String(200), nullable=False),
        _patron_fk("payments"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payments")),
    )
    op.create_index(op.f("ix_payments_patron_barcode"), "payments", ["patron_barcode"])


def _create_rules_and_results() -> None:
    op.create_table(
        "circulation_rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patron_category", sa.String(32), nullable=False),
        sa.Column("item_type", sa.String(32), nullable=False),
        sa.Column("loan_period", sa.Integer(), nullable=False),
        sa.Column("period_unit", sa.String(8), nullable=False),
        sa.Column("max_loans", sa.Integer(), nullable=False),
        sa.Column("max_renewals", sa.Integer(), nullable=False),
        sa.Column("renewal_period", sa.Integer(), nullable=True),
        sa.Column("renew_from", sa.String(16), nullable=False),
        sa.Column("holds_block_renewal", sa.Boolean(), nullable=False),
        sa.Column("fine_per_day", MONEY, nullable=False),
        sa.Column("grace_days", sa.Integer(), nullable=False),
        sa.Column("max_fine", MONEY, nullable=True),
        sa.Column("fine_limit", MONEY, nullable=True),
        sa.CheckConstraint("period_unit IN ('days', 'hours')", name=op.f("ck_circulation_rules_period_unit")),
        sa.CheckConstraint("renew_from IN ('due_date', 'now')", name=op.f("ck_circulation_rules_renew_from")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_circulation_rules")),
        sa.UniqueConstraint("patron_category", "item_type", name="uq_circulation_rules_category_item_type"),
    )
    op.create_table(
        "circulation_policy",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("hold_pickup_days", sa.Integer(), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_circulation_policy_single_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_circulation_policy")),
    )
    op.create_table(
        "circulation_results",
        sa.Column("key", sa.String(160), nullable=False),
        sa.Column("operation", sa.String(16), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("result_json", sa.Text(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_circulation_results")),
        sqlite_with_rowid=False,
    )
    op.create_index(op.f("ix_circulation_results_created_at"), "circulation_results", ["created_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_circulation_results_created_at"), table_name="circulation_results")
    for table in ("circulation_results", "circulation_policy", "circulation_rules"):
        op.drop_table(table)
    op.drop_index(op.f("ix_payments_patron_barcode"), table_name="payments")
    op.drop_table("payments")
    op.drop_index(op.f("ix_fines_patron_barcode"), table_name="fines")
    op.drop_table("fines")
    for column in ("patron_barcode", "record_id", "item_id"):
        op.drop_index(op.f(f"ix_holds_{column}"), table_name="holds")
    op.drop_table("holds")
    op.drop_index("ix_loans_open_patron", table_name="loans")
    with op.batch_alter_table("loans") as batch:
        for column in ("branch", "renewals", "item_type", "patron_category"):
            batch.drop_column(column)
    op.drop_index(op.f("ix_patron_cards_patron_id"), table_name="patron_cards")
    op.drop_table("patron_cards")
    with op.batch_alter_table("patrons") as batch:
        for column in ("home_branch", "email", "block_reason"):
            batch.drop_column(column)
    op.execute("UPDATE items SET status = 'available' WHERE status NOT IN ('available', 'on_loan')")
    with op.batch_alter_table("items") as batch:
        batch.drop_index(op.f("ix_items_updated_at"))
        batch.drop_index(op.f("ix_items_record_id"))
        batch.drop_constraint(op.f("ck_items_status"), type_="check")
        for column in ("updated_at", "location", "holding_branch", "home_branch", "item_type", "call_number",
                       "year", "publisher", "isbn", "record_id"):
            batch.drop_column(column)
        batch.create_check_constraint("status", "status IN ('available', 'on_loan')")
