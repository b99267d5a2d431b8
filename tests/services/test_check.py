"""``check_database``: a database built by the real services passes, and each rule fails.

The healthy database is built through the services only, once per dialect for
this module. Each corruption test then breaks one rule with raw SQL (what a bug, a
hand edit or a bad restore could do), keeping every other figure consistent, runs
the check inside that same transaction and rolls it back: the report must name
exactly that rule, so each check is proven able to fail and none fires by accident.

Some rules are also held by a database constraint (a CHECK, a foreign key, a
unique key). The corruption lifts that constraint first, inside the transaction:
PostgreSQL drops it (transactional DDL, undone by the rollback); SQLite ignores
CHECKs and defers foreign keys for the connection, and rebuilds a table without
its unique key. A corruption of the charges or refunds derives the usage rollups from
them again (``resync_rollups``), so that only the rule aimed at breaks; the rollup
rules have corruptions of their own.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import DIALECTS, migrated_pg_database
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from credits_desktop.services import check as ck
from credits_desktop.services.adjustments import adjust_purchased
from credits_desktop.services.approvals import approve_request
from credits_desktop.services.check import CheckReport, check_database, check_session
from credits_desktop.services.periods import roll_periods
from credits_desktop.services.refunds import RefundItem, refund_charges
from credits_desktop.services.reversals import reverse
from credits_desktop.services.rollups import IdRange, backfill_statements
from credits_desktop.store.database import Database
from credits_desktop.store.engine import make_engine

from .factories import World, charge, key, open_account, open_world, scalar

CHECK_AT = datetime(2026, 2, 15, tzinfo=UTC)  # inside the February period


@dataclass(frozen=True)
class Ids:
    """The rows of the healthy database that the corruptions aim at."""

    account: int
    other: int
    c1_refunded_failed: int
    c4_succeeded: int
    purchase_grant: int
    purchase_entry: int
    big_adjustment_grant: int
    feb_grant: int
    jan_grant: int
    jan_expiry_entry: int
    jan_expiry_delta: int
    c1_refund: int
    c1_refund_op: int
    c1_refund_actor: int
    added_adjustment: int
    removal_entry: int
    removal_delta: int
    system: int


def build_healthy(world: World) -> Ids:
    """One account with every kind of movement, and a second, quiet account."""
    db, a = world.db, world.account_id
    other = open_account(db, world.platform, name="Other Ads", email="ops@other.test")

    def at(day: int, hour: int = 9) -> datetime:
        return datetime(2026, 1, day, hour, tzinfo=UTC)

    c1 = charge(world, 40, status="failed", at=at(10, 10))
    c2 = charge(world, 40, status="succeeded", at=at(11))
    charge(world, 40, status="failed", at=at(12))  # stays unrefunded
    c4 = charge(world, 10, status="succeeded", at=at(13))
    charge(world, 0, status="succeeded", at=at(13, 10))
    # A succeeded charge refunded by a manager, then that refund reversed.
    refund_charges(db, world.manager, account_id=a, items=[RefundItem(c2.charge_id)],
                   reason_code="goodwill", ticket="T-2", idempotency_key=key(), at=at(20))
    r2 = scalar(db, "SELECT id FROM refunds WHERE charge_id = :c", c=c2.charge_id)
    added = adjust_purchased(db, world.finance, account_id=a, delta=300,
                             reason_code="compensation", reference="C-1",
                             idempotency_key=key(), at=at(21))
    removed = adjust_purchased(db, world.finance, account_id=a, delta=-200,
                               reason_code="correction", reference="C-2",
                               idempotency_key=key(), at=at(22))
    reverse(db, world.manager, refund_id=r2, reason="refunded by mistake",
            reference="T-2b", idempotency_key=key(), at=at(23))
    reverse(db, world.finance, adjustment_id=int(added.details["adjustment_id"] or 0),
            reason="duplicate", reference="C-1b", idempotency_key=key(), at=at(24))
    reverse(db, world.finance, adjustment_id=int(removed.details["adjustment_id"] or 0),
            reason="wrong account", reference="C-2b", idempotency_key=key(), at=at(24, 10))
    # Above finance's limit: a request, approved by an admin.
    request = adjust_purchased(db, world.finance, account_id=a, delta=5000,
                               reason_code="manual_sale", reference="INV-9",
                               idempotency_key=key(), at=at(25))
    assert request.status == "requested" and request.request_id is not None
    approve_request(db, world.admin, request_id=request.request_id, idempotency_key=key(),
                    at=at(25, 10))
    # In February, after January's plan credits expired: back as refund credits.
    refund_charges(db, world.support, account_id=a, items=[RefundItem(c1.charge_id)],
                   reason_code="failed_generation", ticket="T-1", idempotency_key=key(),
                   at=datetime(2026, 2, 5, tzinfo=UTC))
    roll_periods(db, world.admin, until=CHECK_AT)

    def one(sql: str, **params: object) -> int:
        value = scalar(db, sql, **params)
        assert value is not None, sql
        return int(value)

    purchase_entry = one("SELECT id FROM ledger_entries WHERE kind = 'purchase' "
                         "AND account_id = :a", a=a)
    c1_refund = one("SELECT id FROM refunds WHERE charge_id = :c", c=c1.charge_id)
    c1_refund_op = one("SELECT operation_id FROM refunds WHERE id = :r", r=c1_refund)
    jan_grant = one("SELECT min(id) FROM credit_grants WHERE source = 'plan' "
                    "AND account_id = :a", a=a)
    jan_expiry = one("SELECT id FROM ledger_entries WHERE kind = 'plan_expiry' "
                     "AND grant_id = :g", g=jan_grant)
    removal_entry = one("SELECT id FROM ledger_entries WHERE kind = 'adjustment' "
                        "AND delta < 0 AND account_id = :a", a=a)
    return Ids(
        account=a,
        other=other,
        c1_refunded_failed=c1.charge_id,
        c4_succeeded=c4.charge_id,
        purchase_grant=one("SELECT id FROM credit_grants WHERE source = 'purchase' "
                           "AND account_id = :a", a=a),
        purchase_entry=purchase_entry,
        big_adjustment_grant=one("SELECT id FROM credit_grants WHERE source = 'adjustment' "
                                 "AND granted = 5000"),
        feb_grant=one("SELECT id FROM credit_grants WHERE source = 'plan' AND account_id = :a "
                      "AND period_start = (SELECT period_start FROM accounts WHERE id = :a)",
                      a=a),
        jan_grant=jan_grant,
        jan_expiry_entry=jan_expiry,
        jan_expiry_delta=one("SELECT delta FROM ledger_entries WHERE id = :e", e=jan_expiry),
        c1_refund=c1_refund,
        c1_refund_op=c1_refund_op,
        c1_refund_actor=one("SELECT actor_id FROM operations WHERE id = :o", o=c1_refund_op),
        added_adjustment=int(added.details["adjustment_id"] or 0),
        removal_entry=removal_entry,
        removal_delta=one("SELECT delta FROM ledger_entries WHERE id = :e", e=removal_entry),
        system=one("SELECT id FROM staff WHERE username = 'system'"),
    )


@dataclass(frozen=True)
class Healthy:
    url: str
    ids: Ids


@pytest.fixture(scope="module", params=DIALECTS, ids=DIALECTS)
def healthy(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Healthy]:
    """The healthy database, built once per dialect for the module: the tests that use
    it only read it, or roll their changes back."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path_factory.mktemp("check") / "healthy.db"
        shutil.copyfile(template, path)
        url = f"sqlite:///{path}"
        with open_world(url) as world:
            ids = build_healthy(world)
        yield Healthy(url, ids)
        return
    admin: Engine = request.getfixturevalue("pg_admin")
    with migrated_pg_database(admin, "_check") as url:
        with open_world(url) as world:
            ids = build_healthy(world)
        yield Healthy(url, ids)


def test_healthy_database_passes(healthy: Healthy) -> None:
    db = Database.open(healthy.url)
    try:
        report = check_database(db, at=CHECK_AT)
        available = scalar(db, "SELECT sum(plan_balance + purchased_balance + refund_balance) "
                               "FROM accounts")
        ledger_rows = scalar(db, "SELECT count(*) FROM ledger_entries")
    finally:
        db.close()
    assert report.ok, report.render()
    assert report.violations == () and report.warnings == ()
    assert report.stats["accounts"] == 2
    assert report.stats["charges"] == 5
    assert report.stats["refunds"] == 2
    assert report.stats["adjustments"] == 3
    assert report.stats["pending_requests"] == 0
    assert report.stats["credits_available"] == available
    assert report.stats["ledger_entries"] == ledger_rows
    assert "OK" in report.render()


def test_empty_database_passes(db_url: str) -> None:
    db = Database.open(db_url)
    try:
        report = check_database(db)
    finally:
        db.close()
    assert report.ok and not report.warnings
    assert report.stats["accounts"] == 0 and report.stats["credits_available"] == 0


def test_unrolled_period_is_a_warning_until_the_roll(db_url: str) -> None:
    with open_world(db_url) as world:
        db = world.db
        open_account(db, world.platform, name="Other Ads", email="ops@other.test")
        in_january = datetime(2026, 1, 20, tzinfo=UTC)
        after_january = datetime(2026, 2, 2, tzinfo=UTC)  # both accounts' January ended
        assert check_database(db, at=in_january).warnings == ()

        report = check_database(db, at=after_january)

        assert report.ok
        assert [w.rule for w in report.warnings] == [ck.ROLL_PENDING]
        assert report.warnings[0].count == 2
        assert "credits-desktop roll" in report.render()
        # The credits of the ended period are not available any more.
        assert report.stats["credits_available"] == 500  # the purchased credits only
        assert check_database(db, at=in_january).stats["credits_available"] == 1500

        roll_periods(db, world.admin, until=after_january)
        after = check_database(db, at=after_january)
        assert after.ok and after.warnings == ()


# -- corruptions ------------------------------------------------------------------------------

Statements = Callable[[Ids], list[str]]


@dataclass(frozen=True)
class Corruption:
    name: str
    rules: frozenset[str]
    statements: Statements
    # Constraints that would refuse the corruption, lifted first ("table.constraint").
    lift: tuple[str, ...] = ()
    # The corruption changes charges or refunds: derive the usage rollups from them again,
    # so that only the rule aimed at breaks (the rollup rules have corruptions of their own).
    resync_rollups: bool = False


def _move_purchase_entry_to_other_grant(i: Ids) -> list[str]:
    # Both grants are purchased credits and keep their remaining: only the per-grant
    # ledger sums disagree.
    return [f"UPDATE ledger_entries SET grant_id = {i.big_adjustment_grant} "
            f"WHERE id = {i.purchase_entry}"]


def _second_refund_operation(i: Ids) -> list[str]:
    # Ten more credits given back for an already refunded charge by another operation,
    # booked consistently on a purchased grant (which has room) and the account's cache.
    return [
        "INSERT INTO ledger_entries (account_id, grant_id, kind, delta, charge_id, "
        "operation_id, actor_id, reason, reference, created_at) "
        f"SELECT account_id, grant_id, 'refund', 10, {i.c1_refunded_failed}, operation_id, "
        f"actor_id, 'Refund again', reference, created_at FROM ledger_entries "
        f"WHERE id = {i.purchase_entry}",
        f"UPDATE credit_grants SET remaining = remaining + 10 WHERE id = {i.purchase_grant}",
        f"UPDATE accounts SET purchased_balance = purchased_balance + 10 WHERE id = {i.account}",
    ]


def _refund_above_cost(i: Ids) -> list[str]:
    # The refund row says 50 for a 40-credit charge, and the ledger agrees with the row.
    return [
        "INSERT INTO credit_grants (account_id, source, granted, remaining, created_at, "
        "expires_at, period_start, package_id, operation_id) "
        f"SELECT account_id, 'refund', 10, 10, created_at, NULL, NULL, NULL, "
        f"{i.c1_refund_op} FROM credit_grants WHERE id = {i.purchase_grant}",
        "INSERT INTO ledger_entries (account_id, grant_id, kind, delta, charge_id, "
        "operation_id, actor_id, reason, reference, created_at) "
        f"SELECT {i.account}, (SELECT max(id) FROM credit_grants), 'refund', 10, "
        f"{i.c1_refunded_failed}, {i.c1_refund_op}, {i.c1_refund_actor}, 'Refund', 'T-1', "
        f"created_at FROM credit_grants WHERE id = {i.purchase_grant}",
        f"UPDATE accounts SET refund_balance = refund_balance + 10 WHERE id = {i.account}",
        f"UPDATE refunds SET credits = credits + 10 WHERE id = {i.c1_refund}",
    ]


def _removal_from_plan_credits(i: Ids) -> list[str]:
    # The removal's entry moved onto the current plan grant, every figure kept consistent.
    d = -i.removal_delta
    return [
        f"UPDATE ledger_entries SET grant_id = {i.feb_grant} WHERE id = {i.removal_entry}",
        f"UPDATE credit_grants SET remaining = remaining + {d} WHERE id = {i.purchase_grant}",
        f"UPDATE credit_grants SET remaining = remaining - {d} WHERE id = {i.feb_grant}",
        f"UPDATE accounts SET purchased_balance = purchased_balance + {d}, "
        f"plan_balance = plan_balance - {d} WHERE id = {i.account}",
    ]


def _expired_credits_kept(i: Ids) -> list[str]:
    # January's expiry entry removed, with the grant and the cache following it.
    d = -i.jan_expiry_delta
    return [
        f"DELETE FROM ledger_entries WHERE id = {i.jan_expiry_entry}",
        f"UPDATE credit_grants SET remaining = remaining + {d} WHERE id = {i.jan_grant}",
        f"UPDATE accounts SET plan_balance = plan_balance + {d} WHERE id = {i.account}",
    ]


def _second_plan_grant(i: Ids) -> list[str]:
    # An empty plan grant ending with February's (another start, so no unique clash).
    return [
        "INSERT INTO credit_grants (account_id, source, granted, remaining, created_at, "
        "expires_at, period_start, package_id, operation_id) "
        "SELECT g.account_id, 'plan', 0, 0, g.created_at, g.expires_at, a.created_at, NULL, "
        f"NULL FROM credit_grants g JOIN accounts a ON a.id = g.account_id "
        f"WHERE g.id = {i.feb_grant}",
    ]


def _duplicate_refund_row(i: Ids) -> list[str]:
    # The same refund recorded twice (its ledger entries are those of the first).
    return [
        "INSERT INTO refunds (id, charge_id, account_id, credits, reason_code, operation_id, "
        "created_at) SELECT (SELECT max(id) + 1 FROM refunds), charge_id, account_id, "
        f"credits, reason_code, operation_id, created_at FROM refunds WHERE id = {i.c1_refund}",
    ]


CORRUPTIONS = [
    Corruption("grant-ledger", frozenset({ck.GRANT_LEDGER}),
               _move_purchase_entry_to_other_grant),
    Corruption("grant-range", frozenset({ck.GRANT_RANGE}),
               lambda i: [f"UPDATE credit_grants SET granted = remaining - 1 "
                          f"WHERE id = {i.big_adjustment_grant}"],
               lift=("credit_grants.ck_credit_grants_remaining_in_range",)),
    Corruption("plan-cache", frozenset({ck.PLAN_CACHE}),
               lambda i: [f"UPDATE accounts SET plan_balance = plan_balance + 1 "
                          f"WHERE id = {i.account}"]),
    Corruption("purchased-cache", frozenset({ck.PURCHASED_CACHE}),
               lambda i: [f"UPDATE accounts SET purchased_balance = purchased_balance + 1 "
                          f"WHERE id = {i.account}"]),
    Corruption("refund-cache", frozenset({ck.REFUND_CACHE}),
               lambda i: [f"UPDATE accounts SET refund_balance = refund_balance - 1 "
                          f"WHERE id = {i.account}"]),
    # A negative cached balance cannot also equal the grants (which never go below 0).
    Corruption("negative-balance", frozenset({ck.NEGATIVE_BALANCE, ck.PLAN_CACHE}),
               lambda i: [f"UPDATE accounts SET plan_balance = -5 WHERE id = {i.other}"],
               lift=("accounts.ck_accounts_balances_not_negative",)),
    Corruption("account-ledger", frozenset({ck.ACCOUNT_LEDGER}),
               lambda i: [f"UPDATE ledger_entries SET account_id = {i.other} "
                          f"WHERE id = {i.purchase_entry}"]),
    Corruption("charge-ledger", frozenset({ck.CHARGE_LEDGER}),
               lambda i: [f"UPDATE usage_charges SET credits = credits + 1 "
                          f"WHERE id = {i.c4_succeeded}"],
               resync_rollups=True),
    Corruption("charge-account", frozenset({ck.CHARGE_ACCOUNT}),
               lambda i: [f"UPDATE usage_charges SET account_id = {i.other} "
                          f"WHERE id = {i.c4_succeeded}"],
               resync_rollups=True),
    Corruption("refunded-twice", frozenset({ck.REFUNDED_TWICE}), _second_refund_operation),
    Corruption("refunded-twice-rows", frozenset({ck.REFUNDED_TWICE}), _duplicate_refund_row,
               lift=("refunds.uq_refunds_charge_id",),
               resync_rollups=True),
    Corruption("refund-above-cost", frozenset({ck.REFUND_ABOVE_COST}), _refund_above_cost,
               resync_rollups=True),
    Corruption("refund-ledger", frozenset({ck.REFUND_LEDGER}),
               lambda i: [f"UPDATE refunds SET credits = credits - 1 "
                          f"WHERE id = {i.c1_refund}"],
               resync_rollups=True),
    Corruption("unrecorded", frozenset({ck.UNRECORDED}),
               lambda i: [f"UPDATE ledger_entries SET kind = 'adjustment' "
                          f"WHERE id = {i.purchase_entry}"]),
    Corruption("reversal-ledger", frozenset({ck.REVERSAL_LEDGER}),
               lambda i: ["UPDATE reversals SET credits = credits + 1 "
                          "WHERE id = (SELECT min(id) FROM reversals)"]),
    Corruption("adjustment-ledger", frozenset({ck.ADJUSTMENT_LEDGER}),
               lambda i: [f"UPDATE adjustments SET delta = delta + 1 "
                          f"WHERE id = {i.added_adjustment}"]),
    Corruption("removal-source", frozenset({ck.REMOVAL_SOURCE}), _removal_from_plan_credits),
    Corruption("unrefunded-count", frozenset({ck.UNREFUNDED_COUNT}),
               lambda i: [f"UPDATE accounts SET unrefunded_failed = unrefunded_failed + 1 "
                          f"WHERE id = {i.other}"]),
    Corruption("expired-counted", frozenset({ck.EXPIRED_COUNTED}), _expired_credits_kept),
    Corruption("plan-per-period", frozenset({ck.PLAN_PER_PERIOD}), _second_plan_grant),
    Corruption("no-actor", frozenset({ck.NO_ACTOR}),
               lambda i: ["UPDATE ledger_entries SET actor_id = 9999 WHERE id = "
                          "(SELECT min(id) FROM ledger_entries WHERE kind = 'charge')"],
               lift=("ledger_entries.fk_ledger_entries_actor_id_staff",)),
    Corruption("no-reason", frozenset({ck.NO_REASON}),
               lambda i: [f"UPDATE ledger_entries SET reason = '   ' "
                          f"WHERE id = {i.removal_entry}"]),
    Corruption("wrong-actor", frozenset({ck.WRONG_ACTOR}),
               lambda i: [f"UPDATE ledger_entries SET actor_id = {i.system} "
                          f"WHERE id = {i.purchase_entry}"]),
    Corruption("own-approval", frozenset({ck.OWN_APPROVAL}),
               lambda i: ["UPDATE approval_requests SET decided_by = requested_by"],
               lift=("approval_requests.ck_approval_requests_not_own_request",)),
    # The rollups: a figure changed, a row lost, a row made up.
    Corruption("rollup-account", frozenset({ck.ROLLUP_ACCOUNT}),
               lambda i: [f"UPDATE usage_daily_account SET credits = credits + 1 "
                          f"WHERE account_id = {i.account} AND day = (SELECT min(day) FROM "
                          f"usage_daily_account WHERE account_id = {i.account})"]),
    Corruption("rollup-account-row-lost", frozenset({ck.ROLLUP_ACCOUNT}),
               lambda i: [f"DELETE FROM usage_daily_account WHERE account_id = {i.account} "
                          f"AND day = (SELECT max(day) FROM usage_daily_account "
                          f"WHERE account_id = {i.account})"]),
    Corruption("rollup-daily", frozenset({ck.ROLLUP_DAILY}),
               lambda i: ["UPDATE usage_daily SET failed = failed + 1, "
                          "refunded_credits = refunded_credits - 2 "
                          "WHERE day = (SELECT min(day) FROM usage_daily)"]),
    Corruption("rollup-daily-row-made-up", frozenset({ck.ROLLUP_DAILY}),
               lambda i: ["INSERT INTO usage_daily (day, feature_code, model, plan_code, "
                          "charges, credits, failed, failed_credits, refunded_credits) "
                          "VALUES ('2026-01-02', 'ad_image', '', 'starter', 1, 10, 0, 0, 0)"]),
    Corruption("rollup-refunds", frozenset({ck.ROLLUP_REFUNDS}),
               lambda i: ["UPDATE refunds_daily SET refunds = refunds + 1 "
                          "WHERE day = (SELECT max(day) FROM refunds_daily)"]),
]


def test_every_rule_has_a_corruption() -> None:
    covered = set().union(*(c.rules for c in CORRUPTIONS))
    assert covered == set(ck.RULES)


@contextmanager
def corrupted(healthy: Healthy, corruption: Corruption | None = None,
              statements: Sequence[str] = ()) -> Iterator[Session]:
    """A transaction in which the database is corrupted behind the application's back;
    rolled back at the end, so the module's healthy database stays healthy."""
    engine = make_engine(healthy.url)
    try:
        with Session(engine) as session, session.begin():
            for lifted in corruption.lift if corruption else ():
                lift_constraint(session, lifted)
            for statement in [*(corruption.statements(healthy.ids) if corruption else ()),
                              *statements]:
                session.execute(text(statement))
            if corruption is not None and corruption.resync_rollups:
                resync_rollups(session)
            yield session
            session.rollback()
    finally:
        engine.dispose()


def resync_rollups(session: Session) -> None:
    """Derive the usage rollups from the (corrupted) charges and refunds again."""
    dialect = session.get_bind().dialect.name
    for table in ("usage_daily_account", "usage_daily", "refunds_daily"):
        session.execute(text(f"DELETE FROM {table}"))
    last = {name: int(session.scalar(text(f"SELECT COALESCE(MAX(id), 0) FROM {table}")) or 0)
            for name, table in (("charges", "usage_charges"), ("refunds", "refunds"),
                                ("reversals", "reversals"))}
    for statement in backfill_statements(
            dialect, **{name: IdRange(0, hi) for name, hi in last.items()}):
        session.execute(statement)


def lift_constraint(session: Session, lifted: str) -> None:
    table, name = lifted.split(".")
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(f'ALTER TABLE "{table}" DROP CONSTRAINT "{name}"'))
        return
    if name.startswith("ck_"):
        session.execute(text("PRAGMA ignore_check_constraints = ON"))
    elif name.startswith("fk_"):
        session.execute(text("PRAGMA defer_foreign_keys = ON"))
    else:
        # SQLite cannot drop a table's own unique key: copy the table without it.
        session.execute(text("PRAGMA defer_foreign_keys = ON"))
        create = session.scalar(text("SELECT sql FROM sqlite_master WHERE name = :t"),
                                {"t": table})
        assert isinstance(create, str)
        without, found = re.subn(rf",\s*CONSTRAINT {name} UNIQUE \([^)]*\)", "", create)
        assert found == 1, create
        session.execute(text(without.replace(f"TABLE {table}", "TABLE lifted_copy", 1)))
        session.execute(text(f"INSERT INTO lifted_copy SELECT * FROM {table}"))
        session.execute(text(f"DROP TABLE {table}"))
        session.execute(text(f"ALTER TABLE lifted_copy RENAME TO {table}"))


@pytest.mark.parametrize("corruption", CORRUPTIONS, ids=[c.name for c in CORRUPTIONS])
def test_corruption_is_found(healthy: Healthy, corruption: Corruption) -> None:
    # (The database is healthy before: see test_healthy_database_passes.)
    with corrupted(healthy, corruption) as session:
        report = check_session(session, at=CHECK_AT)

    assert not report.ok
    assert report.rules() == corruption.rules, report.render()
    for finding in report.violations:
        assert finding.count >= 1
        assert 1 <= len(finding.examples) <= ck.MAX_EXAMPLES
    assert report.warnings == ()
    assert "PROBLEMS" in report.render()
    for rule in corruption.rules:
        assert rule in report.render()


def test_examples_are_capped_and_counted(healthy: Healthy) -> None:
    with corrupted(healthy, statements=["UPDATE ledger_entries SET reason = ''"]) as session:
        total = session.scalar(text("SELECT count(*) FROM ledger_entries"))
        report = check_session(session, at=CHECK_AT)

    [finding] = report.violations
    assert finding.rule == ck.NO_REASON
    assert finding.count == total
    assert len(finding.examples) == ck.MAX_EXAMPLES
    assert "…" in report.render()


def test_report_is_a_frozen_value() -> None:
    report = CheckReport(violations=(), warnings=(), stats={})
    with pytest.raises(AttributeError):
        report.violations = ()  # type: ignore[misc]
    assert report.ok
