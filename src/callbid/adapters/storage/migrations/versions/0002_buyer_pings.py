"""buyer pings: passthrough webhooks, static bids, dial destinations

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 15:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("targets") as batch:
        batch.add_column(sa.Column("passthrough", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("bid", sa.Float(), nullable=True))
    with op.batch_alter_table("campaigns") as batch:
        batch.add_column(sa.Column("passthrough", sa.JSON(), nullable=True))
    with op.batch_alter_table("reservations") as batch:
        batch.add_column(sa.Column("destination", sa.String(length=300), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("reservations") as batch:
        batch.drop_column("destination")
    with op.batch_alter_table("campaigns") as batch:
        batch.drop_column("passthrough")
    with op.batch_alter_table("targets") as batch:
        batch.drop_column("bid")
        batch.drop_column("passthrough")
