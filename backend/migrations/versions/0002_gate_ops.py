"""Gate operations: people counting per hour, beam faults, alarms kept for an incident.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass  # filled in by the gate-operations change


def downgrade() -> None:
    pass
