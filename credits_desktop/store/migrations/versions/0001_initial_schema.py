"""Initial schema: accounts, plans, features and prices, grants, charges, the ledger,
refunds, adjustments, reversals, approvals, staff, operations and the audit log.

Revision ID: 0001
Revises:
Create Date: 2026-11-24 21:38:49.104726
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "credit_packages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("credits", sa.Integer(), nullable=False),
        sa.Column("price_cents", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.text("(true)"), nullable=False),
        sa.CheckConstraint("credits > 0", name=op.f("ck_credit_packages_credits_positive")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credit_packages")),
        sa.UniqueConstraint("code", name=op.f("uq_credit_packages_code")),
    )
    op.create_table(
        "features",
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("description", sa.String(length=300), nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default=sa.text("(true)"), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_features")),
    )
    op.create_table(
        "plans",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("monthly_allotment", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.text("(true)"), nullable=False),
        sa.CheckConstraint("monthly_allotment >= 0", name=op.f("ck_plans_allotment_not_negative")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plans")),
        sa.UniqueConstraint("code", name=op.f("uq_plans_code")),
    )
    op.create_table(
        "settings",
        sa.Column("key", sa.String(length=80), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_settings")),
    )
    op.create_table(
        "staff",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=63), nullable=False),
        sa.Column("display_name", sa.String(length=100), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.text("(true)"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "role IN ('support','finance','manager','admin','system')",
            name=op.f("ck_staff_known_role"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff")),
        sa.UniqueConstraint("username", name=op.f("uq_staff_username")),
    )
    op.create_table(
        "accounts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("owner_email", sa.String(length=320), nullable=False),
        sa.Column(
            "name_norm",
            sa.String(length=320).with_variant(sa.String(length=320, collation="C"), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "email_norm",
            sa.String(length=320).with_variant(sa.String(length=320, collation="C"), "postgresql"),
            nullable=False,
        ),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("billing_day", sa.SmallInteger(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("period_start", sa.DateTime(timezone=True), nullable=True),
        sa.Column("period_end", sa.DateTime(timezone=True), nullable=True),
        sa.Column("plan_balance", sa.Integer(), server_default="0", nullable=False),
        sa.Column("purchased_balance", sa.Integer(), server_default="0", nullable=False),
        sa.Column("refund_balance", sa.Integer(), server_default="0", nullable=False),
        sa.Column("unrefunded_failed", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_activity_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "change_seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            server_default="0",
            nullable=False,
        ),
        sa.CheckConstraint(
            "status IN ('active','suspended','closed')", name=op.f("ck_accounts_known_status")
        ),
        sa.CheckConstraint(
            "billing_day BETWEEN 1 AND 31", name=op.f("ck_accounts_billing_day_range")
        ),
        sa.CheckConstraint(
            "plan_balance >= 0 AND purchased_balance >= 0 AND refund_balance >= 0",
            name=op.f("ck_accounts_balances_not_negative"),
        ),
        sa.CheckConstraint(
            "unrefunded_failed >= 0", name=op.f("ck_accounts_unrefunded_not_negative")
        ),
        sa.ForeignKeyConstraint(["plan_id"], ["plans.id"], name=op.f("fk_accounts_plan_id_plans")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts")),
    )
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.create_index("ix_accounts_email_norm", ["email_norm", "id"], unique=False)
        batch_op.create_index("ix_accounts_name_norm", ["name_norm", "id"], unique=False)
        batch_op.create_index("ix_accounts_period_end", ["period_end"], unique=False)
        batch_op.create_index("ix_accounts_plan_id", ["plan_id", "id"], unique=False)

    op.create_table(
        "feature_prices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("feature_code", sa.String(length=40), nullable=False),
        sa.Column("model", sa.String(length=60), nullable=True),
        sa.Column("credits", sa.Integer(), nullable=False),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("credits >= 0", name=op.f("ck_feature_prices_credits_not_negative")),
        sa.ForeignKeyConstraint(
            ["feature_code"],
            ["features.code"],
            name=op.f("fk_feature_prices_feature_code_features"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feature_prices")),
        sa.UniqueConstraint(
            "feature_code",
            "model",
            "valid_from",
            name=op.f("uq_feature_prices_feature_code_model_valid_from"),
        ),
    )
    op.create_table(
        "operations",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("idempotency_key", sa.String(length=100), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("reference", sa.String(length=200), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("result", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_operations_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["staff.id"], name=op.f("fk_operations_actor_id_staff")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_operations")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_operations_idempotency_key")),
    )
    with op.batch_alter_table("operations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_operations_account_id"), ["account_id"], unique=False)

    op.create_table(
        "usage_charges",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("external_id", sa.String(length=100), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("feature_code", sa.String(length=40), nullable=False),
        sa.Column("model", sa.String(length=60), nullable=True),
        sa.Column("credits", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("failure_reason", sa.String(length=500), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('succeeded','failed')", name=op.f("ck_usage_charges_known_status")
        ),
        sa.CheckConstraint("credits >= 0", name=op.f("ck_usage_charges_credits_not_negative")),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_usage_charges_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["feature_code"], ["features.code"], name=op.f("fk_usage_charges_feature_code_features")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_usage_charges")),
        sa.UniqueConstraint("external_id", name=op.f("uq_usage_charges_external_id")),
    )
    with op.batch_alter_table("usage_charges", schema=None) as batch_op:
        batch_op.create_index(
            "ix_usage_charges_account_time", ["account_id", "occurred_at", "id"], unique=False
        )
        batch_op.create_index(
            "ix_usage_charges_failed_time",
            ["occurred_at", "id"],
            unique=False,
            sqlite_where=sa.text("status = 'failed'"),
            postgresql_where=sa.text("status = 'failed'"),
        )
        batch_op.create_index(
            "ix_usage_charges_feature_time", ["feature_code", "occurred_at"], unique=False
        )

    op.create_table(
        "adjustments",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("delta", sa.Integer(), nullable=False),
        sa.Column("reason_code", sa.String(length=40), nullable=False),
        sa.Column(
            "operation_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("delta <> 0", name=op.f("ck_adjustments_delta_not_zero")),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_adjustments_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["operation_id"], ["operations.id"], name=op.f("fk_adjustments_operation_id_operations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_adjustments")),
    )
    with op.batch_alter_table("adjustments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_adjustments_account_id"), ["account_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_adjustments_operation_id"), ["operation_id"], unique=False
        )

    op.create_table(
        "approval_requests",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("credits", sa.Integer(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("summary", sa.String(length=300), nullable=False),
        sa.Column(
            "operation_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("requested_by", sa.Integer(), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("decided_by", sa.Integer(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_comment", sa.Text(), nullable=True),
        sa.Column(
            "result_operation_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=True,
        ),
        sa.Column("failure_reason", sa.String(length=500), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending','approved','rejected','failed')",
            name=op.f("ck_approval_requests_known_status"),
        ),
        sa.CheckConstraint(
            "decided_by IS NULL OR decided_by <> requested_by",
            name=op.f("ck_approval_requests_not_own_request"),
        ),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_approval_requests_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["decided_by"], ["staff.id"], name=op.f("fk_approval_requests_decided_by_staff")
        ),
        sa.ForeignKeyConstraint(
            ["operation_id"],
            ["operations.id"],
            name=op.f("fk_approval_requests_operation_id_operations"),
        ),
        sa.ForeignKeyConstraint(
            ["requested_by"], ["staff.id"], name=op.f("fk_approval_requests_requested_by_staff")
        ),
        sa.ForeignKeyConstraint(
            ["result_operation_id"],
            ["operations.id"],
            name=op.f("fk_approval_requests_result_operation_id_operations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_approval_requests")),
    )
    with op.batch_alter_table("approval_requests", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_approval_requests_account_id"), ["account_id"], unique=False
        )
        batch_op.create_index(
            "ix_approval_requests_status", ["status", "requested_at"], unique=False
        )

    op.create_table(
        "audit_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column(
            "operation_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_audit_events_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["staff.id"], name=op.f("fk_audit_events_actor_id_staff")
        ),
        sa.ForeignKeyConstraint(
            ["operation_id"],
            ["operations.id"],
            name=op.f("fk_audit_events_operation_id_operations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_audit_events_account_id"), ["account_id"], unique=False
        )
        batch_op.create_index("ix_audit_events_actor", ["actor_id", "at"], unique=False)
        batch_op.create_index("ix_audit_events_at", ["at"], unique=False)

    op.create_table(
        "credit_grants",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("granted", sa.Integer(), nullable=False),
        sa.Column("remaining", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("period_start", sa.DateTime(timezone=True), nullable=True),
        sa.Column("package_id", sa.Integer(), nullable=True),
        sa.Column(
            "operation_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.CheckConstraint(
            "(source = 'plan') = (expires_at IS NOT NULL)",
            name=op.f("ck_credit_grants_only_plan_credits_expire"),
        ),
        sa.CheckConstraint(
            "source IN ('plan','purchase','refund','adjustment')",
            name=op.f("ck_credit_grants_known_source"),
        ),
        sa.CheckConstraint("granted >= 0", name=op.f("ck_credit_grants_granted_not_negative")),
        sa.CheckConstraint(
            "remaining >= 0 AND remaining <= granted",
            name=op.f("ck_credit_grants_remaining_in_range"),
        ),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_credit_grants_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["operation_id"],
            ["operations.id"],
            name=op.f("fk_credit_grants_operation_id_operations"),
        ),
        sa.ForeignKeyConstraint(
            ["package_id"],
            ["credit_packages.id"],
            name=op.f("fk_credit_grants_package_id_credit_packages"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credit_grants")),
        sa.UniqueConstraint(
            "account_id", "period_start", name=op.f("uq_credit_grants_account_id_period_start")
        ),
    )
    with op.batch_alter_table("credit_grants", schema=None) as batch_op:
        batch_op.create_index(
            "ix_credit_grants_account_id", ["account_id", "expires_at"], unique=False
        )

    op.create_table(
        "refunds",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "charge_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("credits", sa.Integer(), nullable=False),
        sa.Column("reason_code", sa.String(length=40), nullable=False),
        sa.Column(
            "operation_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("credits > 0", name=op.f("ck_refunds_credits_positive")),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_refunds_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["charge_id"], ["usage_charges.id"], name=op.f("fk_refunds_charge_id_usage_charges")
        ),
        sa.ForeignKeyConstraint(
            ["operation_id"], ["operations.id"], name=op.f("fk_refunds_operation_id_operations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refunds")),
        sa.UniqueConstraint("charge_id", name=op.f("uq_refunds_charge_id")),
    )
    with op.batch_alter_table("refunds", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_refunds_account_id"), ["account_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_refunds_operation_id"), ["operation_id"], unique=False)

    op.create_table(
        "ledger_entries",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("grant_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("delta", sa.Integer(), nullable=False),
        sa.Column("charge_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column(
            "operation_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("actor_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("reference", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('plan_grant','plan_expiry','purchase','charge','refund','adjustment','reversal')",
            name=op.f("ck_ledger_entries_known_kind"),
        ),
        sa.CheckConstraint("delta <> 0", name=op.f("ck_ledger_entries_delta_not_zero")),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_ledger_entries_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["staff.id"], name=op.f("fk_ledger_entries_actor_id_staff")
        ),
        sa.ForeignKeyConstraint(
            ["charge_id"],
            ["usage_charges.id"],
            name=op.f("fk_ledger_entries_charge_id_usage_charges"),
        ),
        sa.ForeignKeyConstraint(
            ["grant_id"],
            ["credit_grants.id"],
            name=op.f("fk_ledger_entries_grant_id_credit_grants"),
        ),
        sa.ForeignKeyConstraint(
            ["operation_id"],
            ["operations.id"],
            name=op.f("fk_ledger_entries_operation_id_operations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_entries")),
    )
    with op.batch_alter_table("ledger_entries", schema=None) as batch_op:
        batch_op.create_index("ix_ledger_entries_account_id", ["account_id", "id"], unique=False)
        batch_op.create_index("ix_ledger_entries_charge_id", ["charge_id"], unique=False)
        batch_op.create_index("ix_ledger_entries_grant_id", ["grant_id"], unique=False)
        batch_op.create_index("ix_ledger_entries_operation_id", ["operation_id"], unique=False)

    op.create_table(
        "reversals",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("refund_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column(
            "adjustment_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("credits", sa.Integer(), nullable=False),
        sa.Column(
            "operation_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "(refund_id IS NULL) <> (adjustment_id IS NULL)",
            name=op.f("ck_reversals_reverses_exactly_one"),
        ),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_reversals_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["adjustment_id"],
            ["adjustments.id"],
            name=op.f("fk_reversals_adjustment_id_adjustments"),
        ),
        sa.ForeignKeyConstraint(
            ["operation_id"], ["operations.id"], name=op.f("fk_reversals_operation_id_operations")
        ),
        sa.ForeignKeyConstraint(
            ["refund_id"], ["refunds.id"], name=op.f("fk_reversals_refund_id_refunds")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reversals")),
        sa.UniqueConstraint("adjustment_id", name=op.f("uq_reversals_adjustment_id")),
        sa.UniqueConstraint("refund_id", name=op.f("uq_reversals_refund_id")),
    )
    with op.batch_alter_table("reversals", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_reversals_account_id"), ["account_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_reversals_operation_id"), ["operation_id"], unique=False
        )

    _reference_data()


def _reference_data() -> None:
    """Rows every database needs: the system actor and the platform's AI features.

    The system actor signs the entries nobody typed (period roll-overs); the
    feature codes are the ones the ad platform writes its charges with.
    """
    staff = sa.table(
        "staff",
        sa.column("username", sa.String),
        sa.column("display_name", sa.String),
        sa.column("role", sa.String),
        sa.column("active", sa.Boolean),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    op.bulk_insert(
        staff,
        [
            {
                "username": "system",
                "display_name": "Credits Desk (automatic)",
                "role": "system",
                "active": True,
                "created_at": datetime(2026, 1, 1, tzinfo=UTC),
            }
        ],
    )
    features = sa.table(
        "features",
        sa.column("code", sa.String),
        sa.column("name", sa.String),
        sa.column("description", sa.String),
        sa.column("enabled", sa.Boolean),
    )
    op.bulk_insert(
        features,
        [
            {"code": code, "name": name, "description": text, "enabled": enabled}
            for code, name, text, enabled in FEATURES
        ],
    )


FEATURES = [
    ("ad_image", "Ad image", "Generate an ad image", True),
    ("video_transcription", "Video transcription", "Transcribe a video", True),
    ("video_script", "Video script", "Create a video script", True),
    ("url_brief", "URL brief", "Analyze a URL to generate a brief", True),
    ("radar_analysis", "Radar analysis", "Analyze an ad in the account with Radar", True),
    ("review_mining", "Review mining", "Mine customer reviews", True),
    ("asset_tagging", "Asset tagging", "Tag an uploaded asset (coming soon)", False),
]


def downgrade() -> None:

    with op.batch_alter_table("reversals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reversals_operation_id"))
        batch_op.drop_index(batch_op.f("ix_reversals_account_id"))

    op.drop_table("reversals")
    with op.batch_alter_table("ledger_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_ledger_entries_operation_id")
        batch_op.drop_index("ix_ledger_entries_grant_id")
        batch_op.drop_index("ix_ledger_entries_charge_id")
        batch_op.drop_index("ix_ledger_entries_account_id")

    op.drop_table("ledger_entries")
    with op.batch_alter_table("refunds", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_refunds_operation_id"))
        batch_op.drop_index(batch_op.f("ix_refunds_account_id"))

    op.drop_table("refunds")
    with op.batch_alter_table("credit_grants", schema=None) as batch_op:
        batch_op.drop_index("ix_credit_grants_account_id")

    op.drop_table("credit_grants")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_events_at")
        batch_op.drop_index("ix_audit_events_actor")
        batch_op.drop_index(batch_op.f("ix_audit_events_account_id"))

    op.drop_table("audit_events")
    with op.batch_alter_table("approval_requests", schema=None) as batch_op:
        batch_op.drop_index("ix_approval_requests_status")
        batch_op.drop_index(batch_op.f("ix_approval_requests_account_id"))

    op.drop_table("approval_requests")
    with op.batch_alter_table("adjustments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_adjustments_operation_id"))
        batch_op.drop_index(batch_op.f("ix_adjustments_account_id"))

    op.drop_table("adjustments")
    with op.batch_alter_table("usage_charges", schema=None) as batch_op:
        batch_op.drop_index("ix_usage_charges_feature_time")
        batch_op.drop_index(
            "ix_usage_charges_failed_time",
            sqlite_where=sa.text("status = 'failed'"),
            postgresql_where=sa.text("status = 'failed'"),
        )
        batch_op.drop_index("ix_usage_charges_account_time")

    op.drop_table("usage_charges")
    with op.batch_alter_table("operations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_operations_account_id"))

    op.drop_table("operations")
    op.drop_table("feature_prices")
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_index("ix_accounts_plan_id")
        batch_op.drop_index("ix_accounts_period_end")
        batch_op.drop_index("ix_accounts_name_norm")
        batch_op.drop_index("ix_accounts_email_norm")

    op.drop_table("accounts")
    op.drop_table("staff")
    op.drop_table("settings")
    op.drop_table("plans")
    op.drop_table("features")
    op.drop_table("credit_packages")
