"""The demo data generator: consistent with the rules, reproducible, usable afterwards.

A small data set (40 accounts over 3 months) is generated twice per dialect with the same
seed, once with ``cross_check`` (every charge also planned by ``plan_charge``, every
operation result also built by ``OperationResult``). The first copy must pass the
database check, hold every kind of record, and equal the second row for row; a fresh
copy is then worked on with the real services.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import ExitStack, closing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import DIALECTS, migrated_pg_database, pg_server_url
from sqlalchemy import Engine, inspect, text

from credits_desktop.domain.permissions import HUMAN_ROLES
from credits_desktop.services.accounts import create_account, sign_in
from credits_desktop.services.charges import record_charge
from credits_desktop.services.check import check_database
from credits_desktop.services.demo import DemoSummary, generate_demo
from credits_desktop.services.demo_store import COLUMNS, DEFERRED_TABLES
from credits_desktop.services.errors import (
    AlreadyRefunded,
    InvalidInput,
    PermissionDenied,
    RuleBroken,
)
from credits_desktop.services.purchases import buy_package
from credits_desktop.services.refunds import RefundItem, refund_charges
from credits_desktop.store.database import Database
from credits_desktop.store.schema import upgrade

NOW = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)
START = datetime(2025, 12, 15, 12, 0, tzinfo=UTC)  # NOW minus the 3 months
SIZE: dict[str, Any] = {"accounts": 40, "months": 3, "seed": 7, "now": NOW}
# The usage rollup tables, with the order of their keys.
ROLLUPS = {
    "usage_daily_account": "account_id, day, feature_code",
    "usage_daily": "day, feature_code, model, plan_code",
    "refunds_daily": "day, feature_code, plan_code",
}


def rows(db: Database, sql: str, **params: object) -> list[tuple[Any, ...]]:
    with db.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql), params)]


def one(db: Database, sql: str, **params: object) -> Any:
    return rows(db, sql, **params)[0][0]


def indexes(engine: Engine) -> dict[str, list[str]]:
    """Every index as text (a partial index's condition is an object: compare its text)."""
    inspector = inspect(engine)
    return {
        t: sorted(
            f"{ix['name']} {ix['column_names']} unique={bool(ix['unique'])} "
            + repr({k: str(v) for k, v in sorted(ix.get("dialect_options", {}).items())})
            for ix in inspector.get_indexes(t)
        )
        for t in inspector.get_table_names()
    }


def dangling_references(db: Database) -> list[str]:
    """Every foreign key value that points at no row (the load skips the per-row check)."""
    inspector = inspect(db.engine)
    found = []
    for table in inspector.get_table_names():
        for fk in inspector.get_foreign_keys(table):
            (col,), (ref,) = fk["constrained_columns"], fk["referred_columns"]
            parent = fk["referred_table"]
            count = one(db, f"SELECT count(*) FROM {table} c WHERE c.{col} IS NOT NULL AND NOT "
                            f"EXISTS (SELECT 1 FROM {parent} p WHERE p.{ref} = c.{col})")
            if count:
                found.append(f"{table}.{col} -> {parent}: {count}")
    return found


@dataclass(frozen=True)
class Pair:
    """Two databases generated with the same seed and ``now``."""

    first: Database
    second: Database
    summary: DemoSummary
    indexes_before: dict[str, list[str]]
    stages: list[tuple[str, int, int]]


@pytest.fixture(scope="module", params=DIALECTS, ids=DIALECTS)
def pair(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[Pair]:
    """Built once per dialect; the tests that use it only read, or are refused."""
    with ExitStack() as stack:
        if request.param == "sqlite":
            template: Path = request.getfixturevalue("sqlite_template")
            folder = tmp_path_factory.mktemp("demo")
            urls = []
            for name in ("first.db", "second.db"):
                shutil.copyfile(template, folder / name)
                urls.append(f"sqlite:///{folder / name}")
        else:
            admin: Engine = request.getfixturevalue("pg_admin")
            urls = [
                stack.enter_context(migrated_pg_database(admin, f"_demo_{suffix}"))
                for suffix in ("first", "second")
            ]
        first = stack.enter_context(closing(Database.open(urls[0])))
        second = stack.enter_context(closing(Database.open(urls[1])))
        before = indexes(first.engine)
        stages: list[tuple[str, int, int]] = []
        summary = generate_demo(first, **SIZE, cross_check=True,
                                progress=lambda *a: stages.append(a))
        generate_demo(second, **SIZE)
        yield Pair(first, second, summary, before, stages)


def test_demo_data_obey_every_rule(pair: Pair) -> None:
    report = check_database(pair.first, at=NOW)
    assert report.ok, report.render()
    # Rolled up to ``now``: no ended period is left with credits.
    assert not report.warnings, report.render()
    assert dangling_references(pair.first) == []
    # The indexes dropped for the load are all back, exactly as the migration made them.
    assert indexes(pair.first.engine) == pair.indexes_before
    for table in DEFERRED_TABLES:
        assert len(pair.indexes_before[table]) >= 3


def test_summary_counts_what_was_written(pair: Pair) -> None:
    db, s = pair.first, pair.summary
    assert s.accounts == SIZE["accounts"] == one(db, "SELECT count(*) FROM accounts")
    assert s.charges == one(db, "SELECT count(*) FROM usage_charges") > 5_000
    assert s.ledger_entries == one(db, "SELECT count(*) FROM ledger_entries")
    assert s.refunds == one(db, "SELECT count(*) FROM refunds")
    assert s.adjustments == one(db, "SELECT count(*) FROM adjustments")
    assert s.seconds > 0 and s.charges_per_second == s.charges / s.seconds
    stages = [stage for stage, _, _ in pair.stages]
    assert stages[0] == "Preparing the database" and stages[-1] == "Done"
    done = [d for stage, d, _ in pair.stages if stage == "Generating accounts"]
    assert done == sorted(done) and done[-1] == SIZE["accounts"]
    assert all(total == SIZE["accounts"] for _, _, total in pair.stages)


def test_same_seed_and_time_give_identical_data(pair: Pair) -> None:
    for table in ("staff", *COLUMNS):
        first = rows(pair.first, f"SELECT * FROM {table} ORDER BY id")
        assert first, table
        assert first == rows(pair.second, f"SELECT * FROM {table} ORDER BY id"), table
    for table, order in ROLLUPS.items():
        first = rows(pair.first, f"SELECT * FROM {table} ORDER BY {order}")
        assert first, table
        assert first == rows(pair.second, f"SELECT * FROM {table} ORDER BY {order}"), table


def test_staff_of_every_role(pair: Pair) -> None:
    staff = rows(pair.first, "SELECT username, display_name, role, active FROM staff")
    roles = {role for _, _, role, active in staff if active}
    assert {r.value for r in HUMAN_ROLES} <= roles
    assert ("platform", "Ad platform", "system", True) in [
        (u, d, r, bool(a)) for u, d, r, a in staff]
    inactive = [(u, r) for u, _, r, active in staff if not active]
    assert inactive == [("lee", "support")]
    names = {u: d for u, d, _, _ in staff}
    assert names["dana"] == "Dana Whitfield" and names["fay"] == "Fay Lindqvist"


def test_accounts_look_like_customers(pair: Pair) -> None:
    db = pair.first
    accounts = rows(db, "SELECT a.name, a.owner_email, p.code, a.billing_day, a.status,"
                        " a.created_at FROM accounts a JOIN plans p ON p.id = a.plan_id")
    emails = [email for _, email, *_ in accounts]
    assert len(set(emails)) == len(emails) and all("@" in e for e in emails)
    assert any(not name.isascii() for name, *_ in accounts)
    plans = [plan for _, _, plan, *_ in accounts]
    assert plans.count("starter") + plans.count("growth") > len(plans) / 2
    assert len(set(plans)) >= 3
    days = {day for _, _, _, day, *_ in accounts}
    assert len(days) > 15 and days & {29, 30, 31}
    # Most accounts existed before the window; every one has its current period.
    assert one(db, "SELECT count(*) FROM accounts WHERE created_at < :s", s=START) > 20
    assert one(db, "SELECT count(*) FROM accounts WHERE period_start > :n OR period_end <= :n",
               n=NOW) == 0


def test_usage_looks_like_the_platform(pair: Pair) -> None:
    db = pair.first
    total = one(db, "SELECT count(*) FROM usage_charges")
    failed = one(db, "SELECT count(*) FROM usage_charges WHERE status = 'failed'")
    assert 0.01 < failed / total < 0.08
    assert one(db, "SELECT count(*) FROM usage_charges WHERE status = 'failed'"
                   " AND credits = 0") > 0  # some failures cost nothing
    assert one(db, "SELECT count(*) FROM usage_charges WHERE feature_code = 'asset_tagging'") == 0
    features = dict(rows(db, "SELECT feature_code, sum(credits) FROM usage_charges"
                             " GROUP BY feature_code"))
    assert len(features) == 6 and max(features, key=features.__getitem__) == "ad_image"
    models = {m for (m,) in rows(db, "SELECT DISTINCT model FROM usage_charges")}
    assert {None, "imagen-ultra", "flux-fast"} <= models
    reasons = {r for (r,) in rows(db, "SELECT DISTINCT failure_reason FROM usage_charges"
                                      " WHERE status = 'failed'")}
    assert {"Model timeout", "GPU worker crashed", "Upstream provider 503"} <= reasons
    # Every charge costs its price at the time, or nothing for a free failure.
    wrong = one(db, """
        SELECT count(*) FROM usage_charges c
        WHERE c.credits <> 0 AND c.credits <> (
            SELECT p.credits FROM feature_prices p
            WHERE p.feature_code = c.feature_code AND (p.model = c.model OR p.model IS NULL)
            ORDER BY p.model IS NULL, p.valid_from DESC LIMIT 1)""")
    assert wrong == 0
    first, last = rows(db, "SELECT min(occurred_at), max(occurred_at) FROM usage_charges")[0]
    assert str(first) >= str(START)[:10] and str(last) < str(NOW)[:19]
    assert one(db, "SELECT count(*) FROM operations WHERE kind = 'purchase'") > 0


def test_staff_actions_of_every_kind(pair: Pair) -> None:
    db = pair.first
    failed = one(db, "SELECT count(*) FROM usage_charges WHERE status = 'failed'"
                     " AND credits > 0")
    refunded = one(db, "SELECT count(*) FROM refunds r JOIN usage_charges c"
                       " ON c.id = r.charge_id WHERE c.status = 'failed'")
    # Support refunds a good share; most failures wait in the queue.
    assert 0.2 < refunded / failed < 0.6
    assert one(db, "SELECT sum(unrefunded_failed) FROM accounts") == failed - refunded
    tickets = {ref for (ref,) in rows(db, "SELECT reference FROM operations"
                                          " WHERE kind = 'refund'")}
    assert all(t.startswith("#") and t[1:].isdigit() for t in tickets)
    assert one(db, "SELECT count(*) FROM refunds r JOIN usage_charges c ON c.id = r.charge_id"
                   " WHERE c.status = 'succeeded'") >= 2
    deltas = [d for (d,) in rows(db, "SELECT delta FROM adjustments")]
    assert any(d > 0 for d in deltas)
    assert one(db, "SELECT count(*) FROM reversals WHERE refund_id IS NOT NULL") >= 1
    assert one(db, "SELECT count(*) FROM reversals WHERE adjustment_id IS NOT NULL") >= 1
    statuses = [s for (s,) in rows(db, "SELECT status FROM approval_requests")]
    assert statuses.count("pending") >= 2
    assert "approved" in statuses and "rejected" in statuses
    # Every staff action has its operation, audited once, with a unique key.
    ops = one(db, "SELECT count(*) FROM operations")
    assert ops == one(db, "SELECT count(DISTINCT idempotency_key) FROM operations")
    assert ops == one(db, "SELECT count(*) FROM audit_events WHERE operation_id IS NOT NULL")
    assert one(db, "SELECT count(*) FROM operations WHERE result NOT LIKE '{%'") == 0
    expiries = rows(db, "SELECT actor_id, operation_id FROM ledger_entries"
                        " WHERE kind = 'plan_expiry'")
    system = one(db, "SELECT id FROM staff WHERE username = 'system'")
    assert expiries and all(e == (system, None) for e in expiries)


def test_refuses_a_database_with_accounts(pair: Pair) -> None:
    before = one(pair.first, "SELECT count(*) FROM ledger_entries")
    with pytest.raises(RuleBroken, match="already has accounts"):
        generate_demo(pair.first, **SIZE)
    assert one(pair.first, "SELECT count(*) FROM ledger_entries") == before


def test_refuses_nonsense_sizes(db_url: str) -> None:
    db = Database.open(db_url)
    try:
        for bad in ({"accounts": 0}, {"months": 0}, {"accounts": True}, {"months": 1000},
                    {"usage_percent": 0}, {"usage_percent": 1001}, {"usage_percent": 5.5}):
            with pytest.raises(InvalidInput):
                generate_demo(db, **{**SIZE, **bad})
        with pytest.raises(InvalidInput):
            generate_demo(db, now=datetime(2026, 3, 15))  # naive
        assert one(db, "SELECT count(*) FROM staff") == 1  # only the migration's system row
    finally:
        db.close()


def test_usage_percent_scales_the_charges_and_keeps_every_rule(
    db_url: str, sqlite_template: Path, tmp_path: Path
) -> None:
    db = Database.open(db_url)
    try:
        summary = generate_demo(db, accounts=40, months=3, seed=5, now=NOW, usage_percent=10)
        assert check_database(db, at=NOW).ok
    finally:
        db.close()
    # The usual usage from the same seed, on a SQLite copy (the simulation does not
    # depend on the dialect: see test_same_seed_and_time_give_identical_data).
    shutil.copyfile(sqlite_template, tmp_path / "usual.db")
    usual_db = Database.open(f"sqlite:///{tmp_path / 'usual.db'}")
    try:
        usual = generate_demo(usual_db, accounts=40, months=3, seed=5, now=NOW)
    finally:
        usual_db.close()
    assert summary.accounts == usual.accounts == 40
    # A tenth of the usage gives roughly a tenth of the charges.
    assert usual.charges * 0.05 < summary.charges < usual.charges * 0.2


def test_services_work_on_the_demo_data(db_url: str) -> None:
    db = Database.open(db_url)
    try:
        generate_demo(db, accounts=12, months=2, seed=3, now=NOW)
        later = NOW + timedelta(hours=1)
        account_id, charge_id = rows(db, """
            SELECT c.account_id, c.id FROM usage_charges c
            WHERE c.status = 'failed' AND c.credits > 0
              AND NOT EXISTS (SELECT 1 FROM refunds r WHERE r.charge_id = c.id)
            ORDER BY c.id LIMIT 1""")[0]
        waiting = one(db, "SELECT unrefunded_failed FROM accounts WHERE id = :a", a=account_id)
        dana = sign_in(db, "dana")
        result = refund_charges(db, dana, account_id=account_id, items=[RefundItem(charge_id)],
                                reason_code="failed_generation", ticket="#50001",
                                idempotency_key="after-demo-refund", at=later)
        assert result.status == "applied"
        assert one(db, "SELECT unrefunded_failed FROM accounts WHERE id = :a",
                   a=account_id) == waiting - 1
        refunded = one(db, "SELECT charge_id FROM refunds ORDER BY id LIMIT 1")
        refunded_account = one(db, "SELECT account_id FROM refunds ORDER BY id LIMIT 1")
        with pytest.raises(AlreadyRefunded):
            refund_charges(db, dana, account_id=refunded_account,
                           items=[RefundItem(refunded)], reason_code="failed_generation",
                           ticket="#50002", idempotency_key="after-demo-again", at=later)
        # New rows get fresh ids after the demo's (PostgreSQL sequences were moved on).
        platform = sign_in(db, "platform")
        active = one(db, "SELECT min(id) FROM accounts WHERE status = 'active'")
        charge = record_charge(db, platform, account_id=active, feature_code="url_brief",
                               external_id="after-demo-charge", occurred_at=later)
        assert charge.charge_id > one(db, "SELECT max(id) FROM usage_charges WHERE id <> :c",
                                      c=charge.charge_id)
        bought = buy_package(db, platform, account_id=active, package_code="pack_500",
                             payment_reference="pi_after_demo", idempotency_key="after-demo-buy",
                             at=later)
        assert bought.status == "applied"
        opened = create_account(db, platform, name="Après Demo Ltd", email="new@apres.test",
                                plan_code="starter", billing_day=30,
                                idempotency_key="after-demo-open", created_at=later)
        assert opened.details["account_id"] == 13
        with pytest.raises(PermissionDenied):
            sign_in(db, "lee")
        report = check_database(db, at=later)
        assert report.ok, report.render()
    finally:
        db.close()


# -- the demo writes exactly what the services write ----------------------------------------


@pytest.fixture
def replay_url(request: pytest.FixtureRequest, db_url: str, tmp_path: Path) -> Iterator[str]:
    """A second empty database of the same dialect as ``db_url``."""
    if db_url.startswith("sqlite"):
        template: Path = request.getfixturevalue("sqlite_template")
        shutil.copyfile(template, tmp_path / "replay.db")
        yield f"sqlite:///{tmp_path / 'replay.db'}"
        return
    admin: Engine = request.getfixturevalue("pg_admin")
    with migrated_pg_database(admin, "_demo_replay") as url:
        yield url


def demo_actions(db: Database, account_id: int) -> list[tuple[Any, ...]]:
    """The account's history as (when, order, kind, row) in the order the demo wrote it.

    Within one second, what moved credits first has the lower ledger id.
    """
    actions: list[tuple[Any, ...]] = []
    for row in rows(db, """
            SELECT c.occurred_at, (SELECT min(l.id) FROM ledger_entries l
                                   WHERE l.charge_id = c.id AND l.kind = 'charge'),
                   c.id, c.feature_code, c.external_id, c.status, c.credits, c.model,
                   c.failure_reason
            FROM usage_charges c WHERE c.account_id = :a""", a=account_id):
        actions.append((row[0], row[1] or 0, 1, row[2], "charge", row))
    for row in rows(db, """
            SELECT o.created_at, (SELECT min(l.id) FROM ledger_entries l
                                  WHERE l.operation_id = o.id),
                   o.id, o.kind, o.idempotency_key, o.actor_id, o.reason, o.reference, o.note,
                   o.result
            FROM operations o WHERE o.account_id = :a""", a=account_id):
        actions.append((row[0], row[1] or 0, 0, row[2], row[3], row))
    return sorted(actions, key=lambda a: (str(a[0]), a[1], a[2], a[3]))


def replay(demo: Database, target: Database) -> None:
    """Do everything the demo recorded again, through the real services, account by account."""
    import json

    from credits_desktop.services.adjustments import adjust_purchased
    from credits_desktop.services.approvals import approve_request, reject_request
    from credits_desktop.services.catalog import ensure_catalog
    from credits_desktop.services.periods import roll_periods
    from credits_desktop.services.reversals import reverse

    target.write(ensure_catalog)
    with target.engine.begin() as conn:  # the same staff, with the same ids, all active
        for staff in rows(demo, "SELECT id, username, display_name, role, created_at FROM "
                                "staff WHERE username <> 'system' ORDER BY id"):
            conn.execute(text("INSERT INTO staff (id, username, display_name, role, active,"
                              " created_at) VALUES (:i, :u, :d, :r, true, :c)"),
                         dict(zip("iudrc", staff, strict=True)))
    actor = {i: sign_in(target, u) for i, u in rows(demo, "SELECT id, username FROM staff")}
    platform = sign_in(target, "platform")
    packages = dict(rows(demo, "SELECT id, code FROM credit_packages"))

    def when(value: Any) -> datetime:
        if isinstance(value, str):
            return datetime.fromisoformat(value).replace(tzinfo=UTC)
        return value.astimezone(UTC)

    for account_id, name, email, plan, day, created, status in rows(demo, """
            SELECT a.id, a.name, a.owner_email, p.code, a.billing_day, a.created_at, a.status
            FROM accounts a JOIN plans p ON p.id = a.plan_id ORDER BY a.id"""):
        for at, _, _, _, kind, row in demo_actions(demo, account_id):
            at = when(at)
            if kind == "charge":
                *_, feature, ext, charge_status, credits, model, failure = row
                record_charge(target, platform, account_id=account_id, feature_code=feature,
                              external_id=ext, occurred_at=at, status=charge_status,
                              credits=0 if credits == 0 else None, model=model,
                              failure_reason=failure)
                continue
            _, _, op, _, key, actor_id, reason, reference, note, result = row
            who = actor[actor_id]
            request = rows(demo, "SELECT payload FROM approval_requests "
                                 "WHERE operation_id = :o", o=op)
            payload = json.loads(request[0][0]) if request else None
            if kind == "create_account":
                create_account(target, who, name=name, email=email, plan_code=plan,
                               billing_day=day, idempotency_key=key, created_at=when(created))
            elif kind == "purchase":
                package = one(demo, "SELECT package_id FROM credit_grants "
                                    "WHERE operation_id = :o", o=op)
                buy_package(target, who, account_id=account_id, package_code=packages[package],
                            payment_reference=reference, idempotency_key=key, at=at)
            elif kind == "refund":
                if payload is None:
                    done = rows(demo, "SELECT r.charge_id, r.credits, c.credits, r.reason_code "
                                      "FROM refunds r JOIN usage_charges c ON c.id = r.charge_id"
                                      " WHERE r.operation_id = :o ORDER BY r.id", o=op)
                    items = [RefundItem(c, None if n == cost else n) for c, n, cost, _ in done]
                    reason_code = done[0][3]
                else:
                    items = [RefundItem(c, n) for c, n in payload["items"]]
                    reason_code = payload["reason_code"]
                refund_charges(target, who, account_id=account_id, items=items,
                               reason_code=reason_code, ticket=reference, note=note,
                               idempotency_key=key, at=at)
            elif kind == "adjustment":
                if payload is None:
                    delta, code = rows(demo, "SELECT delta, reason_code FROM adjustments "
                                             "WHERE operation_id = :o", o=op)[0]
                else:
                    delta, code = payload["delta"], payload["reason_code"]
                adjust_purchased(target, who, account_id=account_id, delta=delta,
                                 reason_code=code, reference=reference, note=note,
                                 idempotency_key=key, at=at)
            elif kind == "reversal":
                refund_id, adjustment_id = rows(demo, "SELECT refund_id, adjustment_id FROM "
                                                      "reversals WHERE operation_id = :o", o=op)[0]
                reverse(target, who, reason=reason.removeprefix("Reversal: "),
                        reference=reference, idempotency_key=key, refund_id=refund_id,
                        adjustment_id=adjustment_id, at=at)
            elif kind == "approve":
                approve_request(target, who, request_id=json.loads(result)["request_id"],
                                idempotency_key=key, comment=note, at=at)
            elif kind == "reject":
                reject_request(target, who, request_id=json.loads(result)["request_id"],
                               comment=note, idempotency_key=key, at=at)
            else:
                raise AssertionError(f"no replay for {kind}")
        # The scheduler brings the account up to date before the next one is opened.
        roll_periods(target, actor[one(demo, "SELECT id FROM staff WHERE username = 'system'")],
                     until=NOW)
        with target.engine.begin() as conn:  # no service suspends or closes an account
            conn.execute(text("UPDATE accounts SET status = :s WHERE id = :a"),
                         {"s": status, "a": account_id})
    with target.engine.begin() as conn:
        conn.execute(text("UPDATE staff SET active = false WHERE username = 'lee'"))


def test_the_services_would_have_written_the_same_rows(db_url: str, replay_url: str) -> None:
    demo, target = Database.open(db_url), Database.open(replay_url)
    try:
        # A seed whose five accounts do a bit of everything with few charges (a replay
        # through the services is slow).
        generate_demo(demo, accounts=5, months=1, seed=49, now=NOW)
        replay(demo, target)
        for table, columns in COLUMNS.items():
            if table == "audit_events":
                continue
            # change_seq counts polls-worth of writes; the scheduler's rolls bump it
            # differently when they run at each period end.
            shown = ", ".join(c for c in columns if c != "change_seq")
            sql = f"SELECT {shown} FROM {table} ORDER BY id"
            assert rows(target, sql) == rows(demo, sql), table
        # The usage rollups: built set-based by the demo, kept row by row by the services.
        for table, order in ROLLUPS.items():
            sql = f"SELECT * FROM {table} ORDER BY {order}"
            assert rows(target, sql) == rows(demo, sql), table
            assert rows(demo, sql), table
        audit = ("SELECT operation_id, at, actor_id, action, outcome, account_id, detail "
                 "FROM audit_events WHERE operation_id IS NOT NULL ORDER BY operation_id")
        assert rows(target, audit) == rows(demo, audit)
        kinds = {k for (k,) in rows(demo, "SELECT DISTINCT kind FROM operations")}
        assert kinds == {"create_account", "purchase", "refund", "adjustment", "reversal",
                         "approve", "reject"}
        assert len(rows(demo, "SELECT DISTINCT refund_id IS NULL FROM reversals")) == 2
        assert {s for (s,) in rows(demo, "SELECT status FROM approval_requests")} == {
            "pending", "approved", "rejected"}
    finally:
        demo.close()
        target.close()


def test_an_exception_from_progress_cancels_and_keeps_nothing(db_url: str) -> None:
    db = Database.open(db_url)

    def cancel(stage: str, done: int, total: int) -> None:
        if stage == "Generating accounts":
            raise KeyboardInterrupt("cancelled")

    try:
        with pytest.raises(KeyboardInterrupt):
            generate_demo(db, accounts=150, months=1, now=NOW, progress=cancel)
        for table in (*COLUMNS, *ROLLUPS):
            assert one(db, f"SELECT count(*) FROM {table}") == 0, table
        # The staff and catalogue stay; a second attempt goes through.
        assert generate_demo(db, accounts=3, months=1, now=NOW).accounts == 3
        assert check_database(db, at=NOW).ok
    finally:
        db.close()


def test_postgresql_login_that_is_not_a_superuser(request: pytest.FixtureRequest) -> None:
    """Desk logins are ordinary roles: the load then checks foreign keys row by row."""
    admin: Engine = request.getfixturevalue("pg_admin")
    name = f"credits_test_{os.getpid()}_demo_role"
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'DROP ROLE IF EXISTS "{name}"'))
        conn.execute(text(f'CREATE ROLE "{name}" LOGIN'))
        conn.execute(text(f'CREATE DATABASE "{name}" OWNER "{name}"'))
    try:
        db = Database.open(pg_server_url().set(username=name, password=None, database=name))
        try:
            upgrade(db.engine)
            assert not one(db, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
            summary = generate_demo(db, accounts=6, months=1, seed=5, now=NOW)
            assert summary.charges > 100
            assert check_database(db, at=NOW).ok
        finally:
            db.close()
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'DROP ROLE IF EXISTS "{name}"'))


def test_a_plan_without_credits_gets_no_plan_grants(db_url: str) -> None:
    db = Database.open(db_url)
    try:
        with db.engine.begin() as conn:
            conn.execute(text("INSERT INTO plans (code, name, monthly_allotment, active) "
                              "VALUES ('free', 'Free', 0, true)"))
        generate_demo(db, accounts=30, months=1, seed=2, now=NOW)
        free = [a for (a,) in rows(db, "SELECT a.id FROM accounts a JOIN plans p "
                                       "ON p.id = a.plan_id WHERE p.code = 'free'")]
        assert free
        assert one(db, "SELECT count(*) FROM credit_grants g JOIN accounts a ON a.id = "
                       "g.account_id JOIN plans p ON p.id = a.plan_id WHERE p.code = 'free' "
                       "AND g.source = 'plan'") == 0
        report = check_database(db, at=NOW)
        assert report.ok and not report.warnings, report.render()
    finally:
        db.close()
