"""report rollups: reservation counts per hour, campaign, publisher and target

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-08 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import callbid.adapters.storage.tables

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

UtcDateTime = callbid.adapters.storage.tables.UtcDateTime
COUNTS = ("pings", "reserved", "confirmed", "claimed", "expired", "wiped")


def upgrade() -> None:
    op.create_table(
        "report_rollups",
        sa.Column("company_id", sa.Integer(), nullable=False),
        sa.Column("hour", UtcDateTime(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("publisher_id", sa.String(length=100), nullable=False),
        sa.Column("target_id", sa.Integer(), nullable=False),
        *(sa.Column(name, sa.Integer(), nullable=False) for name in COUNTS),
        sa.PrimaryKeyConstraint("company_id", "hour", "campaign_id", "publisher_id", "target_id"),
    )


def downgrade() -> None:
    op.drop_table("report_rollups")
