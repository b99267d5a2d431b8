"""A partial index on purchased grants by creation time, for the dashboard.

The dashboard's "purchases over time" adds up the grants whose source is
``purchase`` in a date range. Without this index both databases read every grant
(plan grants are most of them: one per account per month), about 95 ms at 100,000
accounts; with it they read the purchases of the range only.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 04:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PURCHASES = "source = 'purchase'"


def upgrade() -> None:
    op.create_index(
        "ix_credit_grants_purchases", "credit_grants", ["created_at"],
        postgresql_where=sa.text(PURCHASES), sqlite_where=sa.text(PURCHASES),
    )


def downgrade() -> None:
    op.drop_index("ix_credit_grants_purchases", table_name="credit_grants")
