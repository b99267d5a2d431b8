"""The usage rollups: kept exact by every write, backfilled resumably, checked by ``check``.

The expected rollup is computed here in Python, straight from the charges, refunds and
reversals (:func:`expected_rollups`), and compared with the three tables row for row
(rows whose figures are all zero are left out on both sides: a refund reversed leaves
one behind, which no chart can tell from a missing row).

* maintenance: one test per write path (charge, refund, partial and multi-charge
  refund, refund on approval, incident refund, reversal of a refund) with the rows
  spelled out, refused writes and previews leaving the rollup as it was, and random
  sequences of writes (hypothesis);
* backfill: a database written before the rollup existed, made for real (history
  through the services, down to revision 0001, which drops the rollup, then up to
  0002), built in small chunks while new charges, refunds and reversals arrive,
  cancelled, failed mid-chunk, raced by a second builder, resumed: exact at the end;
* the command line: ``rollup status``, ``rollup build`` (progress, Ctrl+C, resume,
  ``--rebuild``) and the hint of ``db upgrade``.

The check's rollup rules are proven able to fail in ``test_check.py``.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from conftest import only_on
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event, select, text
from sqlalchemy.orm import Session

from credits_desktop.bootstrap import prepare_database
from credits_desktop.cli import main
from credits_desktop.services import check as ck
from credits_desktop.services import rollups
from credits_desktop.services.charges import record_charge
from credits_desktop.services.check import check_database, check_session
from credits_desktop.services.errors import (
    AlreadyRefunded,
    PermissionDenied,
    RuleBroken,
)
from credits_desktop.services.incidents import IncidentScope, run_incident
from credits_desktop.services.periods import roll_periods
from credits_desktop.services.previews import ReversalTarget, preview_refund, preview_reversal
from credits_desktop.services.refunds import RefundItem, refund_charges
from credits_desktop.services.rollups import (
    BACKFILL_KEY,
    RollupStatus,
    build_rollups,
    reset_rollups,
    rollup_status,
)
from credits_desktop.store.database import Database
from credits_desktop.store.models import (
    Account,
    Plan,
    Refund,
    RefundsDaily,
    Reversal,
    Setting,
    UsageCharge,
    UsageDaily,
    UsageDailyAccount,
)
from credits_desktop.store.schema import alembic_config, head_revision, schema_state, upgrade

from .factories import (
    World,
    adjust,
    approve,
    charge,
    key,
    open_account,
    refund,
    refund_id_of,
    reverse_refund,
    seed_world,
)

USAGE = ("charges", "credits", "failed", "failed_credits", "refunded_credits")
Rollups = dict[str, dict[tuple[Any, ...], tuple[int, ...]]]


# -- the expected rollup, from the raw rows ---------------------------------------------------


def expected_rollups(session: Session) -> Rollups:
    """The three tables as the charges, refunds and reversals say they must be."""
    plan_of: dict[int, str] = {
        account_id: code for account_id, code in session.execute(
            select(Account.id, Plan.code).join(Plan, Plan.id == Account.plan_id))}
    charges = {c.id: c for c in session.scalars(select(UsageCharge))}
    refunds = {r.id: r for r in session.scalars(select(Refund))}
    account: dict[tuple[Any, ...], list[int]] = defaultdict(lambda: [0] * 5)
    daily: dict[tuple[Any, ...], list[int]] = defaultdict(lambda: [0] * 5)
    by_refund_day: dict[tuple[Any, ...], list[int]] = defaultdict(lambda: [0, 0])

    def usage(c: UsageCharge, values: tuple[int, ...]) -> None:
        day = c.occurred_at.astimezone(UTC).date()
        for row in (account[(c.account_id, day, c.feature_code)],
                    daily[(day, c.feature_code, c.model or "", plan_of[c.account_id])]):
            for i, value in enumerate(values):
                row[i] += value

    for c in charges.values():
        failed = c.status == "failed"
        usage(c, (1, c.credits, int(failed), c.credits if failed else 0, 0))

    def refunded(r: Refund, when: datetime, sign: int) -> None:
        c = charges[r.charge_id]
        usage(c, (0, 0, 0, 0, sign * r.credits))
        row = by_refund_day[(when.astimezone(UTC).date(), c.feature_code,
                             plan_of[c.account_id])]
        row[0] += sign
        row[1] += sign * r.credits

    for r in refunds.values():
        refunded(r, r.created_at, 1)
    for v in session.scalars(select(Reversal).where(Reversal.refund_id.is_not(None))):
        assert v.refund_id is not None
        refunded(refunds[v.refund_id], v.created_at, -1)
    return _nonzero({"usage_daily_account": account, "usage_daily": daily,
                     "refunds_daily": by_refund_day})


def actual_rollups(session: Session) -> Rollups:
    """The three tables as stored."""
    a, d, r = UsageDailyAccount, UsageDaily, RefundsDaily
    usage = [getattr(a, m) for m in USAGE]
    return _nonzero({
        "usage_daily_account": {
            tuple(row[:3]): tuple(row[3:])
            for row in session.execute(select(a.account_id, a.day, a.feature_code, *usage))
        },
        "usage_daily": {
            tuple(row[:4]): tuple(row[4:])
            for row in session.execute(select(d.day, d.feature_code, d.model, d.plan_code,
                                              *(getattr(d, m) for m in USAGE)))
        },
        "refunds_daily": {
            tuple(row[:3]): tuple(row[3:])
            for row in session.execute(select(r.day, r.feature_code, r.plan_code, r.refunds,
                                              r.credits))
        },
    })


def _nonzero(tables: dict[str, Any]) -> Rollups:
    return {name: {k: tuple(int(x) for x in v) for k, v in rows.items() if any(v)}
            for name, rows in tables.items()}


def rollups_of(db: Database) -> tuple[Rollups, Rollups]:
    """(stored, expected), read in one transaction."""
    return db.read(lambda s: (actual_rollups(s), expected_rollups(s)))


def assert_rollups_exact(db: Database) -> Rollups:
    """The rollup equals the raw sums, row for row; returns it."""
    stored, expected = rollups_of(db)
    for table in expected:
        assert stored[table] == expected[table], table
    return stored


def stored(db: Database) -> Rollups:
    return db.read(actual_rollups)


@contextmanager
def unchanged_rollup(db: Database) -> Iterator[None]:
    before = stored(db)
    yield
    assert stored(db) == before


# -- maintenance: every write path ------------------------------------------------------------

JAN_10 = date(2026, 1, 10)
JAN_12 = date(2026, 1, 12)
JAN_13 = date(2026, 1, 13)


def test_a_fresh_database_is_ready_and_empty(db_url: str) -> None:
    db = Database.open(db_url)
    try:
        status = rollup_status(db)
        assert status == RollupStatus() and status.ready
        assert (status.done, status.total) == (0, 0)
        assert db.read(lambda s: s.get(Setting, BACKFILL_KEY)) is None
        assert stored(db) == {"usage_daily_account": {}, "usage_daily": {},
                              "refunds_daily": {}}
        assert build_rollups(db).ready
    finally:
        db.close()


def test_charges_are_added_by_utc_day_feature_model_and_plan(world: World) -> None:
    a = world.account_id
    charge(world, 40, status="failed", at=world.at(hours=1))
    charge(world, None, status="succeeded", model="flux-fast", at=world.at(hours=2))
    charge(world, 12, status="succeeded", feature_code="video_transcription",
           at=world.at(hours=3))
    charge(world, 0, status="succeeded", at=world.at(hours=4))
    # 01:30 on 13 January in UTC+02:00 is still 12 January in UTC.
    east = timezone(timedelta(hours=2))
    charge(world, 10, status="succeeded", at=datetime(2026, 1, 13, 1, 30, tzinfo=east))
    other = open_account(world.db, world.platform, name="Other", email="o@other.test",
                         plan_code="growth")
    charge(world, 60, status="failed", model="flux-fast", account_id=other,
           at=world.at(hours=5))

    rows = assert_rollups_exact(world.db)

    assert rows["usage_daily_account"] == {
        (a, JAN_10, "ad_image"): (3, 40 + 25 + 0, 1, 40, 0),
        (a, JAN_10, "video_transcription"): (1, 12, 0, 0, 0),
        (a, JAN_12, "ad_image"): (1, 10, 0, 0, 0),
        (other, JAN_10, "ad_image"): (1, 60, 1, 60, 0),
    }
    assert rows["usage_daily"] == {
        (JAN_10, "ad_image", "", "starter"): (2, 40, 1, 40, 0),
        (JAN_10, "ad_image", "flux-fast", "starter"): (1, 25, 0, 0, 0),
        (JAN_10, "video_transcription", "", "starter"): (1, 12, 0, 0, 0),
        (JAN_12, "ad_image", "", "starter"): (1, 10, 0, 0, 0),
        (JAN_10, "ad_image", "flux-fast", "growth"): (1, 60, 1, 60, 0),
    }
    assert rows["refunds_daily"] == {}


def test_a_charge_sent_again_is_counted_once(world: World) -> None:
    first = charge(world, 40)
    with unchanged_rollup(world.db):
        again = world.db.read(lambda s: s.get(UsageCharge, first.charge_id))
        assert again is not None
        result = record_charge(world.db, world.platform, account_id=again.account_id,
                               feature_code=again.feature_code, external_id=again.external_id,
                               occurred_at=again.occurred_at, status=again.status,
                               credits=again.credits, failure_reason=again.failure_reason)
        assert result.replayed


def test_a_refund_counts_on_the_charge_day_and_on_its_own_day(world: World) -> None:
    a = world.account_id
    c = charge(world, 40, status="failed", at=world.at(hours=1))
    refund(world, world.support, c.charge_id, at=world.at(days=3))  # 13 January

    rows = assert_rollups_exact(world.db)
    assert rows["usage_daily_account"] == {(a, JAN_10, "ad_image"): (1, 40, 1, 40, 40)}
    assert rows["usage_daily"] == {(JAN_10, "ad_image", "", "starter"): (1, 40, 1, 40, 40)}
    assert rows["refunds_daily"] == {(JAN_13, "ad_image", "starter"): (1, 40)}


def test_partial_and_multi_charge_refunds(world: World) -> None:
    a = world.account_id
    c1 = charge(world, 40, status="failed", at=world.at(hours=1))
    c2 = charge(world, 40, status="failed", at=world.at(days=2))  # 12 January
    c3 = charge(world, 12, status="failed", feature_code="video_transcription",
                at=world.at(days=2, hours=1))
    refund(world, world.support, c1.charge_id, credits=15, at=world.at(days=3))
    refund_charges(world.db, world.support, account_id=a,
                   items=[RefundItem(c2.charge_id), RefundItem(c3.charge_id, 5)],
                   reason_code="failed_generation", ticket="#1", idempotency_key=key(),
                   at=world.at(days=3, hours=2))

    rows = assert_rollups_exact(world.db)
    assert rows["usage_daily_account"] == {
        (a, JAN_10, "ad_image"): (1, 40, 1, 40, 15),
        (a, JAN_12, "ad_image"): (1, 40, 1, 40, 40),
        (a, JAN_12, "video_transcription"): (1, 12, 1, 12, 5),
    }
    assert rows["refunds_daily"] == {
        (JAN_13, "ad_image", "starter"): (2, 55),
        (JAN_13, "video_transcription", "starter"): (1, 5),
    }


def test_a_refund_counts_when_its_request_is_approved_not_before(world: World) -> None:
    c = charge(world, 40, status="succeeded")
    before = stored(world.db)
    # Support may not refund a charge that succeeded on its own: a request.
    request = refund(world, world.support, c.charge_id, at=world.at(days=1))
    assert request.status == "requested"
    assert stored(world.db) == before
    approve(world, world.manager, request.request_id, at=world.at(days=3))

    rows = assert_rollups_exact(world.db)
    assert rows["refunds_daily"] == {(JAN_13, "ad_image", "starter"): (1, 40)}
    assert rows["usage_daily_account"][(world.account_id, JAN_10, "ad_image")][4] == 40


def test_an_approval_that_fails_leaves_the_rollup_unchanged(world: World) -> None:
    c = charge(world, 40, status="succeeded")
    request = refund(world, world.support, c.charge_id, at=world.at(days=1))
    refund(world, world.manager, c.charge_id, at=world.at(days=2))  # refunded meanwhile
    with unchanged_rollup(world.db):
        result = approve(world, world.admin, request.request_id, at=world.at(days=3))
        assert result.status == "failed"
    assert_rollups_exact(world.db)


def test_an_incident_refund_counts_every_charge_it_refunds(world: World) -> None:
    other = open_account(world.db, world.platform, name="Other", email="o@other.test",
                         plan_code="pro")
    for hours, account in ((1, world.account_id), (2, other), (3, other)):
        charge(world, 40, status="failed", account_id=account, at=world.at(hours=hours))
    charge(world, 40, status="succeeded", at=world.at(hours=2))  # not in the incident
    scope = IncidentScope("ad_image", None, world.at(), world.at(hours=6))
    summary = run_incident(world.db, world.manager, scope, incident_ref="INC-1",
                           batch_size=2, at=world.at(days=3))
    assert summary.charges_refunded == 3

    rows = assert_rollups_exact(world.db)
    assert rows["refunds_daily"] == {(JAN_13, "ad_image", "starter"): (1, 40),
                                     (JAN_13, "ad_image", "pro"): (2, 80)}
    assert rows["usage_daily"][(JAN_10, "ad_image", "", "pro")] == (2, 80, 2, 80, 80)


def test_one_incident_batch_upserts_each_rollup_table_once(world: World) -> None:
    # Charges on two days, with and without a model, of accounts on two plans: many
    # rollup rows, all refunded in one batch, one statement per rollup table.
    pro = open_account(world.db, world.platform, name="Pro", email="p@pro.test",
                       plan_code="pro")
    for hours, account, model in ((1, world.account_id, None), (2, pro, "flux-fast"),
                                  (26, pro, None), (27, world.account_id, "flux-fast")):
        charge(world, 40, status="failed", account_id=account, model=model,
               at=world.at(hours=hours))
    scope = IncidentScope("ad_image", None, world.at(), world.at(days=2))
    sent: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        sent.append(" ".join(statement.split()[:3]))

    event.listen(world.db.engine, "before_cursor_execute", count)
    try:
        summary = run_incident(world.db, world.finance, scope, incident_ref="INC-2",
                               batch_size=1_000, at=world.at(days=3))
    finally:
        event.remove(world.db.engine, "before_cursor_execute", count)
    assert summary.charges_refunded == 4 and len(summary.operation_ids) == 1
    for table in ("usage_daily_account", "usage_daily", "refunds_daily"):
        assert sent.count(f"INSERT INTO {table}") == 1, table
    rows = assert_rollups_exact(world.db)
    assert rows["refunds_daily"] == {(JAN_13, "ad_image", "starter"): (2, 80),
                                     (JAN_13, "ad_image", "pro"): (2, 80)}
    assert rows["usage_daily"][(date(2026, 1, 11), "ad_image", "flux-fast", "starter")] == (
        1, 40, 1, 40, 40)


def test_a_reversed_refund_is_taken_out_on_the_reversal_day(world: World) -> None:
    a = world.account_id
    c = charge(world, 40, status="succeeded", at=world.at(hours=1))
    refund(world, world.manager, c.charge_id, at=world.at(days=2))  # 12 January
    reverse_refund(world, world.manager, refund_id_of(world, c.charge_id),
                   at=world.at(days=3))  # 13 January

    rows = assert_rollups_exact(world.db)
    assert rows["usage_daily_account"] == {(a, JAN_10, "ad_image"): (1, 40, 0, 0, 0)}
    assert rows["refunds_daily"] == {(JAN_12, "ad_image", "starter"): (1, 40),
                                     (JAN_13, "ad_image", "starter"): (-1, -40)}


def test_adjustments_purchases_and_rolls_leave_usage_alone(world: World) -> None:
    charge(world, 40)
    with unchanged_rollup(world.db):
        result = adjust(world, world.finance, 200)
        assert result.status == "applied"
        roll_periods(world.db, world.admin, until=world.at(days=40))


def test_refused_writes_and_previews_leave_the_rollup_unchanged(world: World) -> None:
    c = charge(world, 40, status="failed")
    done = charge(world, 40, status="failed")
    refund(world, world.support, done.charge_id)
    with unchanged_rollup(world.db):
        # A charge the account cannot afford; a charge of a feature not available yet.
        with pytest.raises(RuleBroken):
            charge(world, 5_000)
        with pytest.raises(RuleBroken):
            charge(world, 2, feature_code="asset_tagging")
        # A charge refunded twice; a refund by someone who may not.
        with pytest.raises(AlreadyRefunded):
            refund(world, world.support, done.charge_id)
        with pytest.raises(PermissionDenied):
            refund(world, world.platform, c.charge_id)
        # A refund and a reversal previewed: computed by the real code, rolled back.
        preview = preview_refund(world.db, world.support, account_id=world.account_id,
                                 items=[RefundItem(c.charge_id)], at=world.at(days=3))
        assert preview.credits == 40
        target = ReversalTarget(refund_id=refund_id_of(world, done.charge_id),
                                adjustment_id=None, account_id=world.account_id, credits=40,
                                description="refund")
        preview_reversal(world.db, world.manager, target, at=world.at(days=3))
    # A reversal refused because the refunded credits were spent.
    spent = charge(world, 40, status="succeeded", at=world.at(days=4))
    refund(world, world.manager, spent.charge_id, at=world.at(days=4, hours=1))
    balance = world.db.read(lambda s: s.get(Account, world.account_id))
    assert balance is not None
    left = balance.plan_balance + balance.purchased_balance + balance.refund_balance
    charge(world, left, status="succeeded", at=world.at(days=4, hours=2))
    with unchanged_rollup(world.db), pytest.raises(RuleBroken):
        reverse_refund(world, world.manager, refund_id_of(world, spent.charge_id),
                       at=world.at(days=5))
    assert_rollups_exact(world.db)


# -- random sequences of writes --------------------------------------------------------------

OPS = st.lists(
    st.tuples(
        st.sampled_from(["charge", "charge", "charge", "refund", "partial", "reverse"]),
        st.integers(0, 10_000),
        st.sampled_from(["ad_image", "video_script", "url_brief"]),
        st.sampled_from([None, "flux-fast", "imagen-ultra"]),
        st.booleans(),
        st.integers(-14, 14),  # hours of the writer's UTC offset
    ),
    min_size=1, max_size=12,
)


@settings(max_examples=8, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(ops=OPS)
def test_random_writes_keep_the_rollup_exact(world: World, ops: list[Any]) -> None:
    """Examples add to one database; after each the rollup equals the raw sums."""
    db = world.db
    done = db.read(lambda s: list(s.scalars(select(Refund.charge_id))))
    last = db.read(lambda s: s.scalar(select(UsageCharge.occurred_at)
                                      .order_by(UsageCharge.occurred_at.desc()).limit(1)))
    now = (last or world.t0) + timedelta(minutes=7)
    for op, pick, feature, model, failed, offset in ops:
        now += timedelta(minutes=37 + pick % 900)
        zone = timezone(timedelta(hours=offset))
        charges = db.read(lambda s: list(s.scalars(select(UsageCharge).where(
            UsageCharge.credits > 0).order_by(UsageCharge.id))))
        open_ = [c for c in charges if c.id not in done]
        if op == "charge" or (op in ("refund", "partial") and not open_):
            adjust(world, world.finance, 60, at=now)  # enough credits to charge
            charge(world, None, status="failed" if failed else "succeeded",
                   feature_code=feature, model=model if feature == "ad_image" else None,
                   at=now.astimezone(zone))
        elif op in ("refund", "partial"):
            c = open_[pick % len(open_)]
            amount = 1 + pick % c.credits if op == "partial" else None
            refund(world, world.manager, c.id, credits=amount,
                   at=now.astimezone(zone))
            done.append(c.id)
        else:
            refunds = db.read(lambda s: list(s.scalars(select(Refund).where(
                ~Refund.id.in_(select(Reversal.refund_id).where(
                    Reversal.refund_id.is_not(None)))))))
            if refunds:
                with suppress(RuleBroken):  # the refunded credits were spent meanwhile
                    reverse_refund(world, world.manager, refunds[pick % len(refunds)].id,
                                   at=now)
        assert_rollups_exact(db)


# -- backfill ---------------------------------------------------------------------------------


def _history(world: World) -> dict[str, int]:
    """A bit of everything through the services, on two accounts and several days."""
    other = open_account(world.db, world.platform, name="Other", email="o@other.test",
                         plan_code="growth")
    ids: dict[str, int] = {}
    for day in range(6):
        for n, account in enumerate((world.account_id, other)):
            c = charge(world, 10 + day + n, status="failed" if (day + n) % 2 else "succeeded",
                       account_id=account, model="flux-fast" if day % 3 == 0 else None,
                       feature_code="ad_image" if n == 0 else "url_brief",
                       at=world.at(days=day, hours=n))
            ids.setdefault(f"charge_{account == other}", c.charge_id)
            if day in (1, 3) and n == 0:
                refund(world, world.manager, c.charge_id, credits=5 if day == 1 else None,
                       at=world.at(days=day + 1))
    refund_charges(world.db, world.manager, account_id=other,
                   items=[RefundItem(ids["charge_True"])], reason_code="goodwill",
                   ticket="#9", idempotency_key=key(), at=world.at(days=7))
    first_refund = world.db.read(lambda s: s.scalar(select(Refund.id).order_by(Refund.id)))
    assert first_refund is not None
    reverse_refund(world, world.manager, first_refund, at=world.at(days=8))
    adjust(world, world.finance, 100, at=world.at(days=8))
    ids["other"] = other
    return ids


def _to_revision(db: Database, revision: str) -> None:
    config = alembic_config()
    with db.engine.begin() as conn:
        config.attributes["connection"] = conn
        if revision == "head":
            command.upgrade(config, revision)
        else:
            command.downgrade(config, revision)


@contextmanager
def written_before_the_rollup(db_url: str) -> Iterator[tuple[World, dict[str, int]]]:
    """A database whose history was written before the rollup existed: written through
    the services, then taken down to revision 0001 (which drops the rollup) and up again,
    as ``db upgrade`` does to a database of the previous version."""
    db = Database.open(db_url)
    try:
        world = seed_world(db)
        ids = _history(world)
        assert_rollups_exact(db)  # maintained as written
        _to_revision(db, "0001")
        try:
            assert schema_state(db.engine).current == "0001"
            upgrade(db.engine)
            yield world, ids
        finally:
            if not schema_state(db.engine).up_to_date:
                upgrade(db.engine)  # the shared PostgreSQL test database must stay at head
    finally:
        db.close()


def _maxima(db: Database) -> list[int]:
    return db.read(lambda s: [
        int(s.scalar(text(f"SELECT COALESCE(MAX(id), 0) FROM {t}")) or 0)
        for t in ("usage_charges", "refunds", "reversals")])


def test_an_upgraded_database_records_its_watermark_and_is_pending(db_url: str) -> None:
    with written_before_the_rollup(db_url) as (world, _):
        db = world.db
        status = rollup_status(db)
        charges, refunds, reversals = _maxima(db)
        assert status == RollupStatus(charges_upto=charges, refunds_upto=refunds,
                                      reversals_upto=reversals)
        assert not status.ready and status.done == 0
        assert status.total == charges + refunds + reversals
        assert "rollup build" in status.describe()
        assert stored(db) == {"usage_daily_account": {}, "usage_daily": {},
                              "refunds_daily": {}}
        # Nothing built yet: the check has nothing to compare, and says so.
        report = check_database(db, at=world.at(days=9))
        assert report.ok, report.render()
        assert [w.rule for w in report.warnings] == [ck.ROLLUP_PENDING]
        assert report.warnings[0].count == status.total
        assert "rollup build" in report.render()


def test_backfill_in_chunks_while_staff_work_cancelled_failed_and_resumed(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with written_before_the_rollup(db_url) as (world, ids):
        db = world.db
        old = db.read(lambda s: list(s.scalars(
            select(UsageCharge).where(UsageCharge.status == "failed",
                                      ~UsageCharge.id.in_(select(Refund.charge_id)))
            .order_by(UsageCharge.id))))
        old_refunds = db.read(lambda s: list(s.scalars(select(Refund.id).where(
            ~Refund.id.in_(select(Reversal.refund_id).where(Reversal.refund_id.is_not(None))))
            .order_by(Refund.id))))
        # Written after the upgrade, before any backfill: a new charge, a refund of a
        # charge from before, the reversal of a refund from before.
        charge(world, 7, status="failed", at=world.at(days=9))
        refund(world, world.manager, old[0].id, account_id=old[0].account_id,
               at=world.at(days=9, hours=1))
        reverse_refund(world, world.manager, old_refunds[-1], at=world.at(days=9, hours=2))

        chunks: list[tuple[int, int]] = []
        moment = [world.at(days=10)]

        def meanwhile(stage: str, done: int, total: int) -> None:
            """Staff at work between two chunks: a charge each time, now and then a
            refund of an old charge."""
            assert stage == rollups.STAGE
            chunks.append((done, total))
            moment[0] += timedelta(hours=1)
            charge(world, 3, status="failed", account_id=ids["other"], at=moment[0])
            if len(chunks) == 3:
                refund(world, world.manager, old[1].id, account_id=old[1].account_id,
                       at=moment[0])

        status = build_rollups(db, progress=meanwhile, cancelled=lambda: len(chunks) > 4,
                               chunk_rows=2)
        assert not status.ready and 0 < status.done < status.total
        assert [d for d, _ in chunks] == sorted(d for d, _ in chunks)
        # Half built: the check compares the part built, finds it right, and warns.
        report = check_database(db, at=moment[0])
        assert report.ok, report.render()
        assert [w.rule for w in report.warnings] == [ck.ROLLUP_PENDING]
        # ... and would find a wrong figure in the part built.
        engine = db.engine
        with Session(engine) as session, session.begin():
            session.execute(text("UPDATE usage_daily SET credits = credits + 1 WHERE day = "
                                 "(SELECT min(day) FROM usage_daily)"))
            assert check_session(session, at=moment[0]).rules() == {ck.ROLLUP_DAILY}
            session.rollback()

        # A chunk that fails half-way (its figures added, the position not yet moved)
        # leaves nothing behind.
        before_failure = rollup_status(db)
        real_save = rollups._save_status

        def broken(session: Session, status: RollupStatus) -> None:
            raise KeyboardInterrupt("Ctrl+C in the middle of a chunk")

        monkeypatch.setattr(rollups, "_save_status", broken)
        with pytest.raises(KeyboardInterrupt):
            build_rollups(db, chunk_rows=2)
        monkeypatch.setattr(rollups, "_save_status", real_save)
        assert rollup_status(db) == before_failure

        # An exception from progress stops it too, after the chunk it reports.
        def stop(stage: str, done: int, total: int) -> None:
            if done > before_failure.done:
                raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            build_rollups(db, progress=stop, chunk_rows=3)
        assert before_failure.done < rollup_status(db).done

        final = build_rollups(db, chunk_rows=2)
        assert final.ready and final.done == final.total == before_failure.total
        assert_rollups_exact(db)
        report = check_database(db, at=moment[0])
        assert report.ok and not report.warnings, report.render()
        # Built: further writes keep it exact, and building again does nothing.
        charge(world, 4, status="succeeded", at=moment[0] + timedelta(hours=1))
        assert build_rollups(db) == final
        assert_rollups_exact(db)


def test_two_builders_and_a_writer_at_once_count_everything_once(db_url: str) -> None:
    with written_before_the_rollup(db_url) as (world, ids):
        errors: list[BaseException] = []
        engines = [Database.open(db_url) for _ in range(2)]

        def guarded(work: Callable[[], object]) -> Callable[[], None]:
            def run() -> None:
                try:
                    work()
                except BaseException as exc:  # reported by the main thread
                    errors.append(exc)
            return run

        def write() -> None:
            for n in range(6):
                charge(world, 2, status="failed", account_id=ids["other"],
                       at=world.at(days=10, hours=n))

        def builder(other: Database) -> Callable[[], None]:
            return guarded(lambda: build_rollups(other, chunk_rows=1))

        threads = [threading.Thread(target=builder(e)) for e in engines]
        threads.append(threading.Thread(target=guarded(write)))
        try:
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=120)
        finally:
            for e in engines:
                e.close()
        assert not errors, errors
        assert rollup_status(world.db).ready
        assert_rollups_exact(world.db)


def test_reset_rebuilds_a_wrong_rollup(world: World) -> None:
    _history(world)
    good = assert_rollups_exact(world.db)
    with world.db.engine.begin() as conn:
        conn.execute(text("UPDATE usage_daily_account SET charges = charges + 5"))
        conn.execute(text("DELETE FROM refunds_daily"))
    assert not check_database(world.db, at=world.at(days=9)).ok

    status = reset_rollups(world.db)
    assert not status.ready and status.total == sum(_maxima(world.db))
    assert stored(world.db) == {"usage_daily_account": {}, "usage_daily": {},
                                "refunds_daily": {}}
    assert build_rollups(world.db, chunk_rows=4).ready
    assert stored(world.db) == good
    assert check_database(world.db, at=world.at(days=9)).ok


def test_status_json_round_trip_and_defaults() -> None:
    status = RollupStatus(charges_done=3, charges_upto=10, refunds_upto=2)
    assert RollupStatus.from_json(status.to_json()) == status
    assert RollupStatus.from_json(None) == RollupStatus() == RollupStatus.from_json("{}")
    assert (status.done, status.total, status.ready) == (3, 12, False)
    assert status.built("charges") == rollups.IdRange(3, 10)
    assert status.built("reversals").empty
    with pytest.raises(ValueError):
        build_rollups(None, chunk_rows=0)  # type: ignore[arg-type]


# -- the command line ---------------------------------------------------------------------------


@pytest.fixture
def user_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.delenv("CREDITS_DESK_DB", raising=False)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.usefixtures("user_folders")
def test_cli_upgrade_hint_status_build_interrupt_and_rebuild(
    db_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with written_before_the_rollup(db_url) as (world, _):
        db = world.db
        total = rollup_status(db).total
        # What `db upgrade` says after such an upgrade (here: back to 0001, up again).
        _to_revision(db, "0001")
        code, out, err = run(capsys, "--db", db_url, "db", "upgrade")
        assert code == 0, err
        assert f"from revision 0001 to {head_revision()}" in out
        assert f"{total:,} rows" in out and "credits-desktop rollup build" in out

        code, out, err = run(capsys, "--db", db_url, "rollup", "status")
        assert code == 1, err
        assert f"0 of {total:,} rows" in out and "charges: up to id 0 of" in out

        # Ctrl+C during the build: a plain message, exit 130, what was built is kept.
        from credits_desktop import cli

        calls: list[int] = []
        real_call = cli.ProgressPrinter.__call__

        def interrupted(self: Any, stage: str, done: int, total_: int) -> None:
            calls.append(done)
            if len(calls) == 3:
                raise KeyboardInterrupt
            real_call(self, stage, done, total_)

        monkeypatch.setattr(cli.ProgressPrinter, "__call__", interrupted)
        code, out, err = run(capsys, "--db", db_url, "rollup", "build", "--chunk", "2")
        assert code == 130
        assert "Interrupted with" in err and "again to go on" in err
        assert "Traceback" not in err
        kept = rollup_status(db)
        assert 0 < kept.done < total
        monkeypatch.setattr(cli.ProgressPrinter, "__call__", real_call)

        code, out, err = run(capsys, "--db", db_url, "rollup", "build", "--chunk", "3")
        assert code == 0, err
        assert f"{total - kept.done:,} rows added" in out and "complete" in out
        assert f"Building the usage rollup: {total:,}/{total:,} (100%)" in err
        assert_rollups_exact(db)

        code, out, _ = run(capsys, "--db", db_url, "rollup", "status")
        assert code == 0 and "complete" in out
        code, out, _ = run(capsys, "--db", db_url, "rollup", "build")
        assert code == 0 and "nothing to build" in out

        with db.engine.begin() as conn:
            conn.execute(text("DELETE FROM usage_daily"))
        code, out, _ = run(capsys, "--db", db_url, "check")
        assert code == 1 and ck.ROLLUP_DAILY in out
        code, out, err = run(capsys, "--db", db_url, "rollup", "build", "--rebuild")
        assert code == 0, err
        assert "Emptied the usage rollup" in err
        assert_rollups_exact(db)
        code, out, _ = run(capsys, "--db", db_url, "check")
        assert code == 0, out

        code, _, err = run(capsys, "--db", db_url, "rollup", "build", "--chunk", "0")
        assert code == 2 and "--chunk must be at least 1" in err


@pytest.mark.usefixtures("user_folders")
def test_cli_on_a_fresh_database(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--db", db_url, "rollup", "status")
    assert code == 0 and "complete" in out and "up to id" not in out
    code, out, _ = run(capsys, "--db", db_url, "rollup", "build")
    assert code == 0 and "nothing to build" in out


@only_on("sqlite")
def test_the_default_demo_database_gets_its_rollup_built_on_upgrade(db_url: str) -> None:
    """The demo database belongs to the application: upgrading it builds its rollup too."""
    with written_before_the_rollup(db_url):
        pass
    older = Database.open(db_url)
    try:
        _to_revision(older, "0001")
    finally:
        older.close()
    stages: list[tuple[str, int, int]] = []
    db = prepare_database(db_url, is_default_demo=True,
                          progress=lambda *a: stages.append(a))
    try:
        assert schema_state(db.engine).up_to_date
        assert db.read(lambda s: s.get(Setting, BACKFILL_KEY)) is not None
        assert rollup_status(db).ready
        assert stages and stages[-1][0] == rollups.STAGE and stages[-1][1] == stages[-1][2]
        assert_rollups_exact(db)
    finally:
        db.close()
