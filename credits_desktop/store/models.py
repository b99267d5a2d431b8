"""SQLAlchemy models: the shape of the shared credits database.

The schema only ever moves by Alembic migration (``store/migrations``); a test
checks that these models and the migrated schema agree.

Money tables are append-only: ledger entries, refunds, adjustments, reversals,
operations and audit events are inserted and never updated or deleted. A grant's
``remaining`` and an account's cached balances are derived values kept in the
same transaction as the ledger rows that move them; ``credits-desktop check``
proves they equal the ledger's sums. The usage rollups (``usage_daily_account``,
``usage_daily``, ``refunds_daily``) are derived the same way from the charges,
refunds and reversals (``services/rollups.py``).
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from .types import UTCDateTime

# Bigint ids on PostgreSQL (tens of millions of charges), plain INTEGER PRIMARY KEY
# on SQLite where that is the fast rowid alias.
BigId = BigInteger().with_variant(Integer(), "sqlite")

# Prefix search compares normalised text by code point; PostgreSQL must not use the
# locale's collation for that or the range trick stops being a prefix match.
SearchText = String(320).with_variant(String(320, collation="C"), "postgresql")

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


ROLES = "'support','finance','manager','admin','system'"
GRANT_SOURCES = "'plan','purchase','refund','adjustment'"
LEDGER_KINDS = "'plan_grant','plan_expiry','purchase','charge','refund','adjustment','reversal'"


class Plan(Base):
    __tablename__ = "plans"
    __table_args__ = (CheckConstraint("monthly_allotment >= 0", name="allotment_not_negative"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    monthly_allotment: Mapped[int] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))


class Staff(Base):
    __tablename__ = "staff"
    __table_args__ = (CheckConstraint(f"role IN ({ROLES})", name="known_role"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(63), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(20))
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Account(Base):
    """A customer account, with balances cached as of its last write."""

    __tablename__ = "accounts"
    __table_args__ = (
        CheckConstraint("billing_day BETWEEN 1 AND 31", name="billing_day_range"),
        CheckConstraint("status IN ('active','suspended','closed')", name="known_status"),
        CheckConstraint(
            "plan_balance >= 0 AND purchased_balance >= 0 AND refund_balance >= 0",
            name="balances_not_negative",
        ),
        CheckConstraint("unrefunded_failed >= 0", name="unrefunded_not_negative"),
        Index("ix_accounts_email_norm", "email_norm", "id"),
        Index("ix_accounts_name_norm", "name_norm", "id"),
        Index("ix_accounts_plan_id", "plan_id", "id"),
        Index("ix_accounts_period_end", "period_end"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    owner_email: Mapped[str] = mapped_column(String(320))
    name_norm: Mapped[str] = mapped_column(SearchText)
    email_norm: Mapped[str] = mapped_column(SearchText)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id"))
    billing_day: Mapped[int] = mapped_column(SmallInteger)
    status: Mapped[str] = mapped_column(String(20), default="active")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The billing period the plan grant was last made for; NULL before the first.
    period_start: Mapped[datetime | None] = mapped_column(UTCDateTime)
    period_end: Mapped[datetime | None] = mapped_column(UTCDateTime)
    plan_balance: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    purchased_balance: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    refund_balance: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    unrefunded_failed: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_activity_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Bumped by every write touching the account: open views poll it to refresh.
    change_seq: Mapped[int] = mapped_column(BigId, default=0, server_default="0")


class Feature(Base):
    __tablename__ = "features"

    code: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(String(300), default="")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))


class FeaturePrice(Base):
    """What a feature costs, per AI model or for all models (model NULL), from a time on."""

    __tablename__ = "feature_prices"
    __table_args__ = (
        UniqueConstraint("feature_code", "model", "valid_from"),
        CheckConstraint("credits >= 0", name="credits_not_negative"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    feature_code: Mapped[str] = mapped_column(ForeignKey("features.code"))
    model: Mapped[str | None] = mapped_column(String(60))
    credits: Mapped[int] = mapped_column(Integer)
    valid_from: Mapped[datetime] = mapped_column(UTCDateTime)


class CreditPackage(Base):
    __tablename__ = "credit_packages"
    __table_args__ = (CheckConstraint("credits > 0", name="credits_positive"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    credits: Mapped[int] = mapped_column(Integer)
    price_cents: Mapped[int] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))


class Operation(Base):
    """One staff or system action: who, when, why, and the idempotency key."""

    __tablename__ = "operations"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(100), unique=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(40))
    actor_id: Mapped[int] = mapped_column(ForeignKey("staff.id"))
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    reason: Mapped[str] = mapped_column(String(200))
    reference: Mapped[str | None] = mapped_column(String(200))
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # JSON of the result, returned unchanged when the same key is submitted again.
    result: Mapped[str] = mapped_column(Text, default="{}")


class CreditGrant(Base):
    """Credits given to an account from one source; ``remaining`` is the ledger sum."""

    __tablename__ = "credit_grants"
    __table_args__ = (
        CheckConstraint(f"source IN ({GRANT_SOURCES})", name="known_source"),
        CheckConstraint("granted >= 0", name="granted_not_negative"),
        CheckConstraint("remaining >= 0 AND remaining <= granted", name="remaining_in_range"),
        CheckConstraint(
            "(source = 'plan') = (expires_at IS NOT NULL)", name="only_plan_credits_expire"
        ),
        # One plan grant per account and billing period, whoever rolls it first.
        UniqueConstraint("account_id", "period_start"),
        Index("ix_credit_grants_account_id", "account_id", "expires_at"),
        # The dashboard's purchases over time (migration 0004).
        Index("ix_credit_grants_purchases", "created_at",
              postgresql_where=text("source = 'purchase'"),
              sqlite_where=text("source = 'purchase'")),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    source: Mapped[str] = mapped_column(String(20))
    granted: Mapped[int] = mapped_column(Integer)
    remaining: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    period_start: Mapped[datetime | None] = mapped_column(UTCDateTime)
    package_id: Mapped[int | None] = mapped_column(ForeignKey("credit_packages.id"))
    operation_id: Mapped[int | None] = mapped_column(ForeignKey("operations.id"))


class UsageCharge(Base):
    """A use of an AI feature, written by the platform (and by the demo data)."""

    __tablename__ = "usage_charges"
    __table_args__ = (
        CheckConstraint("credits >= 0", name="credits_not_negative"),
        CheckConstraint("status IN ('succeeded','failed')", name="known_status"),
        Index("ix_usage_charges_account_time", "account_id", "occurred_at", "id"),
        Index("ix_usage_charges_feature_time", "feature_code", "occurred_at"),
        Index(
            "ix_usage_charges_failed_time",
            "occurred_at",
            "id",
            sqlite_where=text("status = 'failed'"),
            postgresql_where=text("status = 'failed'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    external_id: Mapped[str] = mapped_column(String(100), unique=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    feature_code: Mapped[str] = mapped_column(ForeignKey("features.code"))
    model: Mapped[str | None] = mapped_column(String(60))
    credits: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20))
    failure_reason: Mapped[str | None] = mapped_column(String(500))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)


class LedgerEntry(Base):
    """One movement of credits on one grant. Append-only."""

    __tablename__ = "ledger_entries"
    __table_args__ = (
        CheckConstraint(f"kind IN ({LEDGER_KINDS})", name="known_kind"),
        CheckConstraint("delta <> 0", name="delta_not_zero"),
        Index("ix_ledger_entries_account_id", "account_id", "id"),
        Index("ix_ledger_entries_charge_id", "charge_id"),
        Index("ix_ledger_entries_grant_id", "grant_id"),
        Index("ix_ledger_entries_operation_id", "operation_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    grant_id: Mapped[int] = mapped_column(ForeignKey("credit_grants.id"))
    kind: Mapped[str] = mapped_column(String(20))
    delta: Mapped[int] = mapped_column(Integer)
    charge_id: Mapped[int | None] = mapped_column(ForeignKey("usage_charges.id"))
    # NULL only for usage charges, which are keyed by the charge's external id.
    operation_id: Mapped[int | None] = mapped_column(ForeignKey("operations.id"))
    actor_id: Mapped[int] = mapped_column(ForeignKey("staff.id"))
    reason: Mapped[str] = mapped_column(String(200))
    reference: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Refund(Base):
    __tablename__ = "refunds"
    __table_args__ = (CheckConstraint("credits > 0", name="credits_positive"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # At most one refund per charge, whatever the application does.
    charge_id: Mapped[int] = mapped_column(ForeignKey("usage_charges.id"), unique=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    credits: Mapped[int] = mapped_column(Integer)
    reason_code: Mapped[str] = mapped_column(String(40))
    operation_id: Mapped[int] = mapped_column(ForeignKey("operations.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Adjustment(Base):
    __tablename__ = "adjustments"
    __table_args__ = (CheckConstraint("delta <> 0", name="delta_not_zero"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    delta: Mapped[int] = mapped_column(Integer)
    reason_code: Mapped[str] = mapped_column(String(40))
    operation_id: Mapped[int] = mapped_column(ForeignKey("operations.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Reversal(Base):
    """The compensating entry for one earlier refund or adjustment (once each)."""

    __tablename__ = "reversals"
    __table_args__ = (
        CheckConstraint(
            "(refund_id IS NULL) <> (adjustment_id IS NULL)", name="reverses_exactly_one"
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    refund_id: Mapped[int | None] = mapped_column(ForeignKey("refunds.id"), unique=True)
    adjustment_id: Mapped[int | None] = mapped_column(ForeignKey("adjustments.id"), unique=True)
    credits: Mapped[int] = mapped_column(Integer)
    operation_id: Mapped[int] = mapped_column(ForeignKey("operations.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ApprovalRequest(Base):
    """An action above the requester's limit, waiting for a second pair of eyes."""

    __tablename__ = "approval_requests"
    __table_args__ = (
        CheckConstraint(
            "status IN ('pending','approved','rejected','failed')", name="known_status"
        ),
        CheckConstraint(
            "decided_by IS NULL OR decided_by <> requested_by", name="not_own_request"
        ),
        Index("ix_approval_requests_status", "status", "requested_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    credits: Mapped[int] = mapped_column(Integer)
    payload: Mapped[str] = mapped_column(Text)
    summary: Mapped[str] = mapped_column(String(300))
    operation_id: Mapped[int] = mapped_column(ForeignKey("operations.id"))
    requested_by: Mapped[int] = mapped_column(ForeignKey("staff.id"))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decision_comment: Mapped[str | None] = mapped_column(Text)
    result_operation_id: Mapped[int | None] = mapped_column(ForeignKey("operations.id"))
    failure_reason: Mapped[str | None] = mapped_column(String(500))


class AuditEvent(Base):
    """Every staff action, including those that were refused."""

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_at", "at"),
        Index("ix_audit_events_actor", "actor_id", "at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    action: Mapped[str] = mapped_column(String(40))
    outcome: Mapped[str] = mapped_column(String(20))
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    operation_id: Mapped[int | None] = mapped_column(ForeignKey("operations.id"))
    detail: Mapped[str] = mapped_column(Text, default="")


class Setting(Base):
    """Admin-editable settings such as the approval limits (key → JSON value)."""

    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


# -- the usage rollups (services/rollups.py keeps them; check proves them) --------------------
# Days are UTC calendar days. Every figure is an exact sum, added to in the same transaction
# as the charge, refund or reversal that changes it. Net credits used = credits -
# refunded_credits, where refunded_credits counts refunds (less reversed ones) of the
# charges of that day, whenever they were made.


class UsageDailyAccount(Base):
    """Per account, UTC day of the charge and feature: what the account's charts read."""

    __tablename__ = "usage_daily_account"
    __table_args__ = (Index("ix_usage_daily_account_day", "day"),)

    account_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("accounts.id"), primary_key=True
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    feature_code: Mapped[str] = mapped_column(String(40), primary_key=True)
    charges: Mapped[int] = mapped_column(Integer)
    credits: Mapped[int] = mapped_column(BigInteger)
    failed: Mapped[int] = mapped_column(Integer)
    failed_credits: Mapped[int] = mapped_column(BigInteger)
    refunded_credits: Mapped[int] = mapped_column(BigInteger)


class UsageDaily(Base):
    """All accounts per UTC day, feature, model ('' for none) and the account's plan."""

    __tablename__ = "usage_daily"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    feature_code: Mapped[str] = mapped_column(String(40), primary_key=True)
    model: Mapped[str] = mapped_column(String(60), primary_key=True)
    plan_code: Mapped[str] = mapped_column(String(40), primary_key=True)
    charges: Mapped[int] = mapped_column(Integer)
    credits: Mapped[int] = mapped_column(BigInteger)
    failed: Mapped[int] = mapped_column(Integer)
    failed_credits: Mapped[int] = mapped_column(BigInteger)
    refunded_credits: Mapped[int] = mapped_column(BigInteger)


class RefundsDaily(Base):
    """Refunds by the UTC day they were made (a reversal subtracts on its own day)."""

    __tablename__ = "refunds_daily"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    feature_code: Mapped[str] = mapped_column(String(40), primary_key=True)
    plan_code: Mapped[str] = mapped_column(String(40), primary_key=True)
    refunds: Mapped[int] = mapped_column(Integer)
    credits: Mapped[int] = mapped_column(BigInteger)
