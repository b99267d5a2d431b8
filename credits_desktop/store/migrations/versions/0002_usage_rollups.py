"""Usage rollups: per-day, per-feature sums of the charges and refunds, for the charts.

Adds ``usage_daily_account``, ``usage_daily`` and ``refunds_daily`` (empty), and records
in the setting ``rollup_backfill`` the last charge, refund and reversal ids that existed
when the migration ran. The services add every later row to the rollup as they write
it; the rows up to those ids are added by the backfill (``credits-desktop rollup
build``), in chunks, resumably. A database with no charges needs no backfill and gets
no setting.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 01:00:00.000000
"""

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The same key and layout as services/rollups.py (a migration must not import services,
# which change with the application while this file must not).
BACKFILL_KEY = "rollup_backfill"
SOURCES = (("charges", "usage_charges"), ("refunds", "refunds"), ("reversals", "reversals"))


def upgrade() -> None:
    op.create_table(
        "usage_daily_account",
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("feature_code", sa.String(length=40), nullable=False),
        sa.Column("charges", sa.Integer(), nullable=False),
        sa.Column("credits", sa.BigInteger(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("failed_credits", sa.BigInteger(), nullable=False),
        sa.Column("refunded_credits", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"],
            name=op.f("fk_usage_daily_account_account_id_accounts"),
        ),
        sa.PrimaryKeyConstraint(
            "account_id", "day", "feature_code", name=op.f("pk_usage_daily_account")
        ),
    )
    with op.batch_alter_table("usage_daily_account", schema=None) as batch_op:
        batch_op.create_index("ix_usage_daily_account_day", ["day"], unique=False)

    op.create_table(
        "usage_daily",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("feature_code", sa.String(length=40), nullable=False),
        sa.Column("model", sa.String(length=60), nullable=False),
        sa.Column("plan_code", sa.String(length=40), nullable=False),
        sa.Column("charges", sa.Integer(), nullable=False),
        sa.Column("credits", sa.BigInteger(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("failed_credits", sa.BigInteger(), nullable=False),
        sa.Column("refunded_credits", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "day", "feature_code", "model", "plan_code", name=op.f("pk_usage_daily")
        ),
    )
    op.create_table(
        "refunds_daily",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("feature_code", sa.String(length=40), nullable=False),
        sa.Column("plan_code", sa.String(length=40), nullable=False),
        sa.Column("refunds", sa.Integer(), nullable=False),
        sa.Column("credits", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("day", "feature_code", "plan_code", name=op.f("pk_refunds_daily")),
    )
    _record_watermark()


def _record_watermark() -> None:
    """Note the last existing id of each source table: the backfill's work.

    On PostgreSQL the tables are locked first (SHARE: writers wait, readers do not),
    so that no charge, refund or reversal committed by a transaction still running is
    missed by both the watermark and the services. On SQLite the migration already
    holds the database's write lock.
    """
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("LOCK TABLE usage_charges, refunds, reversals IN SHARE MODE")
    state: dict[str, int] = {}
    for name, table in SOURCES:
        last = bind.execute(sa.text(f"SELECT COALESCE(MAX(id), 0) FROM {table}")).scalar()
        state[f"{name}_upto"] = int(last or 0)
        state[f"{name}_done"] = 0
    if not any(state.values()):
        return
    settings = sa.table("settings", sa.column("key", sa.String), sa.column("value", sa.Text))
    op.execute(settings.delete().where(settings.c.key == BACKFILL_KEY))
    op.bulk_insert(settings, [{"key": BACKFILL_KEY, "value": json.dumps(state)}])


def downgrade() -> None:
    op.execute(sa.text("DELETE FROM settings WHERE key = :k").bindparams(k=BACKFILL_KEY))
    op.drop_table("refunds_daily")
    op.drop_table("usage_daily")
    with op.batch_alter_table("usage_daily_account", schema=None) as batch_op:
        batch_op.drop_index("ix_usage_daily_account_day")
    op.drop_table("usage_daily_account")
