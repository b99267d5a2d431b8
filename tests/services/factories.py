"""Shared builders for service tests: a seeded database and a few checks on it.

Import from other test directories as ``from services.factories import seed_world``
(pytest puts ``tests/`` on ``sys.path`` because ``tests/conftest.py`` has no package).

* :func:`seed_world` fills a freshly migrated database (the ``db_url`` fixture) with
  the standard catalogue, one staff member of every role and one customer account
  on a plan, and returns them as a :class:`World`;
* :func:`open_world` is the same as a context manager that also opens and closes
  the :class:`Database` (what most test fixtures need);
* :func:`charge`, :func:`refund`, :func:`adjust`, :func:`approve`,
  :func:`reverse_refund`, :func:`reverse_adjustment` run one action with test
  defaults; :func:`key`, :func:`balances`, :func:`grants_of`, :func:`ledger_of`,
  :func:`fetch` read things back;
* :func:`table_counts` / :func:`assert_nothing_written` prove that a refused
  operation wrote nothing, :func:`denied_audits` counts refusal audit rows;
* :func:`assert_invariants` checks that every cached figure equals the ledger.

Everything goes through the real services on a real database: no mocks.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Select, func, select, text
from sqlalchemy.orm import Session

from credits_desktop.services.accounts import create_account, create_staff
from credits_desktop.services.adjustments import adjust_purchased
from credits_desktop.services.approvals import approve_request
from credits_desktop.services.catalog import ensure_catalog
from credits_desktop.services.charges import record_charge
from credits_desktop.services.operations import Actor
from credits_desktop.services.purchases import buy_package
from credits_desktop.services.refunds import RefundItem, refund_charges
from credits_desktop.services.results import ChargeResult, OperationResult
from credits_desktop.services.reversals import reverse
from credits_desktop.store.database import Database
from credits_desktop.store.models import (
    Account,
    ApprovalRequest,
    AuditEvent,
    Base,
    CreditGrant,
    LedgerEntry,
    Refund,
    Staff,
    UsageCharge,
)

# The seeded account opens on 10 Jan 2026 with billing day 1: its first period is
# 1 Jan - 1 Feb 2026, so every time in January is inside that period.
T0 = datetime(2026, 1, 10, 9, 0, tzinfo=UTC)
JAN_START = datetime(2026, 1, 1, tzinfo=UTC)
FEB_START = datetime(2026, 2, 1, tzinfo=UTC)
MAR_START = datetime(2026, 3, 1, tzinfo=UTC)

_counter = itertools.count(1)


@dataclass(frozen=True)
class World:
    """A seeded database: one actor per role and one account.

    ``platform`` has the 'system' role: it records usage, sells packages and opens
    accounts, as the ad platform does. ``account_id`` is on ``plan_code`` (Starter,
    500 plan credits a month, by default) and, unless asked otherwise, holds 500
    purchased credits bought at ``t0``.
    """

    db: Database
    admin: Actor
    support: Actor
    finance: Actor
    manager: Actor
    platform: Actor
    account_id: int
    t0: datetime

    def at(self, **delta: float) -> datetime:
        """``t0`` plus a timedelta, e.g. ``world.at(hours=2)``."""
        return self.t0 + timedelta(**delta)


def key(prefix: str = "k") -> str:
    """A fresh idempotency key or charge id."""
    return f"{prefix}-{next(_counter)}-{uuid.uuid4().hex[:8]}"


def open_account(
    db: Database,
    platform: Actor,
    *,
    name: str = "Acme Ads",
    email: str = "ops@acme.test",
    plan_code: str = "starter",
    billing_day: int = 1,
    created_at: datetime = T0,
) -> int:
    """Open an account through the service and return its id."""
    result = create_account(
        db,
        platform,
        name=name,
        email=email,
        plan_code=plan_code,
        billing_day=billing_day,
        idempotency_key=key("account"),
        created_at=created_at,
    )
    account_id = result.details["account_id"]
    assert isinstance(account_id, int)
    return account_id


def seed_world(
    db: Database,
    *,
    plan_code: str = "starter",
    billing_day: int = 1,
    created_at: datetime = T0,
    package_code: str | None = "pack_500",
) -> World:
    """Seed catalogue, staff of every role and one account (see :class:`World`)."""
    db.write(ensure_catalog)
    admin = create_staff(db, None, username="ada", display_name="Ada Admin", role="admin")
    support = create_staff(db, admin, username="sam", display_name="Sam Support",
                           role="support")
    finance = create_staff(db, admin, username="fay", display_name="Fay Finance",
                           role="finance")
    manager = create_staff(db, admin, username="max", display_name="Max Manager",
                           role="manager")
    platform = create_staff(db, admin, username="platform", display_name="Ad platform",
                            role="system")
    account_id = open_account(db, platform, plan_code=plan_code, billing_day=billing_day,
                              created_at=created_at)
    if package_code is not None:
        buy_package(db, platform, account_id=account_id, package_code=package_code,
                    payment_reference=key("pay"), idempotency_key=key("buy"), at=created_at)
    return World(db, admin, support, finance, manager, platform, account_id, created_at)


@contextmanager
def open_world(db_url: str, **options: Any) -> Iterator[World]:
    """Open ``db_url``, seed it with :func:`seed_world` (same options), close it after."""
    db = Database.open(db_url)
    try:
        yield seed_world(db, **options)
    finally:
        db.close()


def charge(
    world: World,
    credits: int | None = 40,
    *,
    status: str = "failed",
    at: datetime | None = None,
    account_id: int | None = None,
    feature_code: str = "ad_image",
    model: str | None = None,
) -> ChargeResult:
    """Record a charge as the platform (failed, 40 credits, an hour after ``t0`` by default)."""
    return record_charge(
        world.db,
        world.platform,
        account_id=world.account_id if account_id is None else account_id,
        feature_code=feature_code,
        external_id=key("charge"),
        occurred_at=at or world.at(hours=1),
        status=status,
        credits=credits,
        model=model,
        failure_reason="timeout" if status == "failed" else None,
    )


@dataclass(frozen=True)
class Balances:
    plan: int
    purchased: int
    refund: int
    unrefunded_failed: int

    @property
    def total(self) -> int:
        return self.plan + self.purchased + self.refund


def balances(db: Database, account_id: int) -> Balances:
    """The account's cached balances."""

    def work(session: Session) -> Balances:
        a = session.get(Account, account_id)
        assert a is not None
        return Balances(a.plan_balance, a.purchased_balance, a.refund_balance,
                        a.unrefunded_failed)

    return db.read(work)


def fetch(db: Database, stmt: Select[Any]) -> list[Any]:
    """The ORM objects (or values) a select returns, loaded and detached."""
    return db.read(lambda s: list(s.scalars(stmt)))


def grants_of(db: Database, account_id: int) -> list[CreditGrant]:
    """The account's grants, oldest first."""
    return fetch(db, select(CreditGrant).where(CreditGrant.account_id == account_id)
                 .order_by(CreditGrant.id))


def ledger_of(db: Database, account_id: int) -> list[LedgerEntry]:
    """The account's ledger entries in the order written."""
    return fetch(db, select(LedgerEntry).where(LedgerEntry.account_id == account_id)
                 .order_by(LedgerEntry.id))


def rows(db: Database, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    """Rows of a read-only SQL query (for assertions on what was stored)."""
    return db.read(lambda s: [tuple(r) for r in s.execute(text(sql), params)])


def scalar(db: Database, sql: str, **params: Any) -> Any:
    return db.read(lambda s: s.execute(text(sql), params).scalar())


# -- staff actions with test defaults ---------------------------------------------------
# Each has a fresh idempotency key and a time a day or more after ``t0`` (still in
# January, the seeded account's first period) unless told otherwise.


def plan_grant(w: World, period_start: datetime) -> CreditGrant:
    """The account's plan grant for the period starting at ``period_start``."""
    found = [g for g in grants_of(w.db, w.account_id) if g.period_start == period_start]
    assert len(found) == 1
    return found[0]


def purchase_grant(w: World) -> CreditGrant:
    """The account's one purchased-package grant."""
    found = [g for g in grants_of(w.db, w.account_id) if g.source == "purchase"]
    assert len(found) == 1
    return found[0]


def refund(
    w: World,
    actor: Actor,
    *charge_ids: int,
    credits: int | None = None,
    ticket: str = "#4411",
    at: datetime | None = None,
    account_id: int | None = None,
    idempotency_key: str | None = None,
) -> OperationResult:
    """Refund charges (each in full, or ``credits`` of each) for a failed generation."""
    return refund_charges(
        w.db,
        actor,
        account_id=w.account_id if account_id is None else account_id,
        items=[RefundItem(c, credits) for c in charge_ids],
        reason_code="failed_generation",
        ticket=ticket,
        idempotency_key=idempotency_key or key("refund"),
        at=at or w.at(days=2),
    )


def adjust(
    w: World, actor: Actor, delta: int, *, at: datetime | None = None,
    reason_code: str = "manual_sale", reference: str = "INV-1",
) -> OperationResult:
    """Add (``delta`` > 0) or remove purchased credits."""
    return adjust_purchased(
        w.db, actor, account_id=w.account_id, delta=delta, reason_code=reason_code,
        reference=reference, idempotency_key=key("adjust"), at=at or w.at(days=2),
    )


def approve(w: World, actor: Actor, request_id: int | None,
            at: datetime | None = None) -> OperationResult:
    """Approve a request (``request_id`` may come straight from a result)."""
    assert request_id is not None
    return approve_request(w.db, actor, request_id=request_id, idempotency_key=key("approve"),
                           at=at or w.at(days=3))


def request_row(w: World, request_id: int | None) -> ApprovalRequest:
    assert request_id is not None
    found: list[ApprovalRequest] = fetch(
        w.db, select(ApprovalRequest).where(ApprovalRequest.id == request_id))
    return found[0]


def refund_id_of(w: World, charge_id: int) -> int:
    """The id of the refund of a charge."""
    ids: list[int] = fetch(w.db, select(Refund.id).where(Refund.charge_id == charge_id))
    return ids[0]


def reverse_refund(w: World, actor: Actor, refund_id: int,
                   at: datetime | None = None) -> OperationResult:
    return reverse(w.db, actor, refund_id=refund_id, reason="Refunded by mistake",
                   reference="#5000", idempotency_key=key("rev"), at=at or w.at(days=4))


def reverse_adjustment(w: World, actor: Actor, adjustment_id: object,
                       at: datetime | None = None) -> OperationResult:
    """Reverse an adjustment (``adjustment_id`` may come from a result's details)."""
    assert isinstance(adjustment_id, int)
    return reverse(w.db, actor, adjustment_id=adjustment_id, reason="Wrong amount",
                   reference="COR-1", idempotency_key=key("rev"), at=at or w.at(days=4))


# -- nothing written ---------------------------------------------------------------

# Refused attempts are audited on purpose (one 'denied' row), so the audit log is
# left out of the "nothing written" snapshot and checked on its own.
UNSNAPSHOTTED = frozenset({"audit_events"})


def _counts(session: Session) -> dict[str, int]:
    # One statement of scalar subqueries: a single round trip however many tables.
    tables = [t for t in Base.metadata.sorted_tables if t.name not in UNSNAPSHOTTED]
    row = session.execute(select(*(
        select(func.count()).select_from(t).scalar_subquery().label(t.name) for t in tables
    ))).one()
    return {t.name: int(n) for t, n in zip(tables, row, strict=True)}


def table_counts(db: Database) -> dict[str, int]:
    """Row count of every table of the schema except the audit log."""
    return db.read(_counts)


# The rows a write may update rather than insert: all of them are compared too.
_MUTABLE = (
    (Account, Account.id),
    (CreditGrant, CreditGrant.id),
    (ApprovalRequest, ApprovalRequest.id),
    (Staff, Staff.id),
)


def _snapshot(session: Session) -> tuple[dict[str, int], list[tuple[Any, ...]]]:
    states: list[tuple[Any, ...]] = []
    for model, order in _MUTABLE:
        columns = model.__table__.columns
        states.extend(tuple(r) for r in session.execute(select(*columns).order_by(order)))
    return _counts(session), states


@contextmanager
def assert_nothing_written(db: Database) -> Iterator[None]:
    """Fail unless every table (but the audit log) keeps its row count and every
    account, grant, request and staff row is unchanged."""
    counts, states = db.read(_snapshot)
    yield
    after_counts, after_states = db.read(_snapshot)
    assert after_counts == counts
    assert after_states == states


def denied_audits(db: Database) -> int:
    def work(session: Session) -> int:
        stmt = select(func.count()).select_from(AuditEvent).where(
            AuditEvent.outcome == "denied"
        )
        return int(session.scalar(stmt) or 0)

    return db.read(work)


def assert_plain_sentence(message: str) -> None:
    """A message for staff: one plain sentence or two, no code or traceback in it."""
    assert message and message[0].isupper(), message
    assert message.rstrip().endswith((".", "?")), message
    for leak in ("Traceback", 'File "', "sqlalchemy", "psycopg", "sqlite3", "Error:",
                 "None", "\n"):
        assert leak not in message, message


# -- invariants --------------------------------------------------------------------


def assert_invariants(db: Database, *, full: bool = False) -> None:
    """Every cached figure equals the ledger (rules 4, 5 and 8 of the brief).

    With ``full`` it also runs ``credits_desktop.services.check.check_database``
    (every rule of the brief; it costs about half a second on a fresh engine, as
    its many queries are compiled once per engine, so it is kept for the tests that
    stress the rules: concurrency and the end-to-end scenarios).
    """
    db.read(_check_sums)
    if not full:
        return
    try:
        from credits_desktop.services import check
    except ImportError:
        return
    report = check.check_database(db)
    assert report.ok, report.render()


def _check_sums(session: Session) -> None:
    ledger = dict(
        session.execute(
            select(LedgerEntry.grant_id, func.sum(LedgerEntry.delta)).group_by(
                LedgerEntry.grant_id
            )
        ).all()
    )
    cached: dict[int, dict[str, int]] = {}
    for g in session.scalars(select(CreditGrant)):
        assert g.remaining == (ledger.get(g.id) or 0), f"grant {g.id}"
        assert 0 <= g.remaining <= g.granted, f"grant {g.id}"
        per = cached.setdefault(g.account_id, {"plan": 0, "purchased": 0, "refund": 0})
        kind = "purchased" if g.source in ("purchase", "adjustment") else g.source
        per[kind] += g.remaining
    for a in session.scalars(select(Account)):
        per = cached.get(a.id, {"plan": 0, "purchased": 0, "refund": 0})
        assert (a.plan_balance, a.purchased_balance, a.refund_balance) == (
            per["plan"], per["purchased"], per["refund"]
        ), f"account {a.id}"
        unrefunded = session.scalar(
            select(func.count())
            .select_from(UsageCharge)
            .where(
                UsageCharge.account_id == a.id,
                UsageCharge.status == "failed",
                UsageCharge.credits > 0,
                ~select(Refund.id).where(Refund.charge_id == UsageCharge.id).exists(),
            )
        )
        assert a.unrefunded_failed == unrefunded, f"account {a.id}"
    drawn = dict(
        session.execute(
            select(LedgerEntry.charge_id, func.sum(LedgerEntry.delta))
            .where(LedgerEntry.kind == "charge")
            .group_by(LedgerEntry.charge_id)
        ).all()
    )
    for c in session.scalars(select(UsageCharge)):
        assert -(drawn.get(c.id) or 0) == c.credits, f"charge {c.id}"
    for r in session.scalars(select(Refund)):
        placed = session.scalar(
            select(func.sum(LedgerEntry.delta)).where(
                LedgerEntry.kind == "refund",
                LedgerEntry.charge_id == r.charge_id,
                LedgerEntry.operation_id == r.operation_id,
            )
        )
        charged = session.scalar(select(UsageCharge.credits).where(
            UsageCharge.id == r.charge_id))
        assert placed == r.credits, f"refund {r.id}"
        assert charged is not None and r.credits <= charged, f"refund {r.id}"
