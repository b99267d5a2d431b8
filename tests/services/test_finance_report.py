"""The monthly finance report (services.finance_report) on SQLite and PostgreSQL.

Expectations are computed here straight from ``ledger_entries`` (and, for usage by
feature and plan, from the ledger's charge entries joined to their charges and
accounts), never from the code under test nor from the usage rollup it reads: so the
tests also prove the rollup's usage equal to the ledger's charges. Data comes from the
real services (a scenario with period roll-overs and every kind of movement, random
sequences with hypothesis) and from the demo generator; one test corrupts the ledger
on purpose to prove the report says loudly that a month does not reconcile.
"""

from __future__ import annotations

from collections import defaultdict
from contextlib import suppress
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from credits_desktop.services.demo import generate_demo
from credits_desktop.services.errors import InvalidInput, RuleBroken
from credits_desktop.services.finance_report import (
    COLUMNS,
    DIFFERENCE_COLUMN,
    RECONCILED_MARK,
    RECONCILES_COLUMN,
    FinanceReport,
    finance_report,
    month_range,
    report_table,
)
from credits_desktop.services.periods import roll_periods
from credits_desktop.services.purchases import buy_package
from credits_desktop.store.database import Database
from credits_desktop.store.models import (
    Account,
    LedgerEntry,
    Plan,
    Refund,
    Reversal,
    UsageCharge,
)

from .factories import (
    World,
    adjust,
    charge,
    key,
    open_account,
    open_world,
    refund,
    refund_id_of,
    reverse_adjustment,
    reverse_refund,
)

D = date
KIND_COLUMN = {"plan_grant": "granted", "purchase": "purchased", "refund": "refunded",
               "reversal": "reversed", "charge": "used", "plan_expiry": "expired"}


def month_of(moment: datetime) -> date:
    return moment.astimezone(UTC).date().replace(day=1)


def ledger_by_month(db: Database) -> dict[date, dict[str, int]]:
    """Per UTC month, the report's columns summed straight from the ledger."""

    def work(s: Session) -> dict[date, dict[str, int]]:
        found: dict[date, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for at, kind, delta in s.execute(
                select(LedgerEntry.created_at, LedgerEntry.kind, LedgerEntry.delta)):
            sums = found[month_of(at)]
            sums["movement"] += delta
            if kind == "adjustment":
                sums["adjusted_added" if delta > 0 else "adjusted_removed"] += abs(delta)
            elif kind in ("charge", "plan_expiry"):
                sums[KIND_COLUMN[kind]] -= delta
            else:
                sums[KIND_COLUMN[kind]] += delta
        return found

    return db.read(work)


def usage_from_ledger(db: Database) -> tuple[dict[date, dict[str, int]],
                                             dict[date, dict[str, int]]]:
    """Credits used per month by feature and by plan: the ledger's charge entries
    joined to their charges and accounts (not the rollup)."""

    def work(s: Session) -> tuple[dict[date, dict[str, int]], dict[date, dict[str, int]]]:
        features: dict[date, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        plans: dict[date, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        rows = s.execute(
            select(LedgerEntry.created_at, UsageCharge.feature_code, Plan.code,
                   LedgerEntry.delta)
            .join(UsageCharge, UsageCharge.id == LedgerEntry.charge_id)
            .join(Account, Account.id == LedgerEntry.account_id)
            .join(Plan, Plan.id == Account.plan_id)
            .where(LedgerEntry.kind == "charge"))
        for at, feature, plan, delta in rows:
            features[month_of(at)][feature] -= delta
            plans[month_of(at)][plan] -= delta
        return features, plans

    return db.read(work)


def assert_report_matches_ledger(db: Database, report: FinanceReport) -> None:
    """Every figure of every month equals the ledger's own sums."""
    ledger = ledger_by_month(db)
    features, plans = usage_from_ledger(db)
    opening = sum(v["movement"] for m, v in ledger.items() if m < report.first)
    for m in report.months:
        sums = ledger.get(m.month, {})
        assert m.opening == opening, m.label
        for column in ("granted", "purchased", "refunded", "adjusted_added",
                       "adjusted_removed", "reversed", "used", "expired"):
            assert getattr(m, column) == sums.get(column, 0), (m.label, column)
        opening += sums.get("movement", 0)
        assert m.closing == opening, m.label
        assert m.difference == 0 and m.unexplained == () and m.reconciles, m.label
        assert dict(m.used_by_feature) == {k: v for k, v in features[m.month].items() if v}
        assert dict(m.used_by_plan) == {k: v for k, v in plans[m.month].items() if v}
    total = sum(v["movement"] for v in ledger.values())
    assert report.ledger_total == total == report.grants_remaining == report.accounts_balance
    assert report.books_agree and report.reconciles and report.problems() == []


# -- validation ------------------------------------------------------------------------------


def test_a_range_of_months() -> None:
    assert month_range(D(2026, 1, 17), D(2026, 3, 2)) == (D(2026, 1, 1), D(2026, 4, 1))
    assert month_range(D(2025, 12, 31), D(2025, 12, 1)) == (D(2025, 12, 1), D(2026, 1, 1))
    for first, last in ((D(2026, 3, 1), D(2026, 2, 1)), (D(2010, 1, 1), D(2026, 2, 1)),
                        (datetime(2026, 1, 1, tzinfo=UTC), D(2026, 2, 1)), ("2026-01", None)):
        with pytest.raises(InvalidInput):
            month_range(first, last)


# -- a scenario with every kind of movement --------------------------------------------------


def build_history(world: World) -> int:
    """Three months on two accounts: charges that roll periods (grants and expiries),
    purchases, refunds (one into an expired grant, so a refund grant), adjustments
    both ways, reversals of a refund and of adjustments both ways."""
    db = world.db
    other = open_account(db, world.platform, name="Beta Media", email="b@beta.test",
                         plan_code="growth", billing_day=15)
    first = charge(world, 300, status="failed", at=world.at(days=1))
    charge(world, 60, status="succeeded", feature_code="url_brief", at=world.at(days=2),
           account_id=other)
    added = adjust(world, world.finance, 250, at=world.at(days=3))
    removed = adjust(world, world.finance, -100, at=world.at(days=4))
    # February: the January grant expired (breakage) and February's was granted.
    feb = charge(world, 120, status="failed", feature_code="video_script",
                 at=world.at(days=25))
    refund(world, world.support, first.charge_id, credits=200, at=world.at(days=26))
    refund(world, world.support, feb.charge_id, at=world.at(days=27))
    buy_package(db, world.platform, account_id=other, package_code="pack_2000",
                payment_reference=key("pay"), idempotency_key=key("buy"),
                at=world.at(days=28))
    reverse_refund(world, world.manager, refund_id_of(world, feb.charge_id),
                   at=world.at(days=29))
    # March.
    charge(world, 90, status="succeeded", feature_code="review_mining",
           at=world.at(days=52), account_id=other)
    reverse_adjustment(world, world.finance, added.details["adjustment_id"],
                       at=world.at(days=53))
    reverse_adjustment(world, world.finance, removed.details["adjustment_id"],
                       at=world.at(days=54))
    roll_periods(db, world.platform, until=datetime(2026, 4, 1, tzinfo=UTC))
    return other


def test_every_figure_equals_the_ledger(world: World) -> None:
    build_history(world)
    stages: list[tuple[str, int, int]] = []
    report = finance_report(world.db, first_month=D(2026, 1, 1), last_month=D(2026, 3, 1),
                            progress=lambda *a: stages.append(a))
    assert [m.label for m in report.months] == ["2026-01", "2026-02", "2026-03"]
    assert_report_matches_ledger(world.db, report)
    assert stages[0][1] == 0 and stages[-1] == ("Done", 4, 4)
    jan, feb, mar = report.months
    # Spelled out, so that a mistake shared by the code and the expectation shows.
    # January: Starter's 500 on 1 Jan; Growth's 2,000 for 15 Dec-15 Jan (granted on
    # 15 Dec: before the report) and 2,000 on 15 Jan.
    assert jan.opening == 2_000 and jan.granted == 500 + 2_000
    assert jan.purchased == 500 and jan.used == 360
    assert (jan.adjusted_added, jan.adjusted_removed, jan.adjusted) == (250, 100, 150)
    assert feb.refunded == 200 + 120 and feb.reversed == -120
    assert feb.purchased == 2_000 and feb.used == 120
    assert mar.reversed == -250 + 100 and mar.used == 90
    assert jan.used_by_feature == (("ad_image", 300), ("url_brief", 60))
    assert jan.used_by_plan == (("growth", 60), ("starter", 300))
    assert all(m.expired > 0 for m in report.months)
    assert report.pending_expiries == 0 and report.warnings() == []
    assert [c for c, _ in report.plans] == ["starter", "growth"]
    # The report's months are a window: a later window opens where this one closes.
    later = finance_report(world.db, first_month=D(2026, 3, 1), last_month=D(2026, 4, 1))
    assert later.months[0].opening == feb.closing
    assert later.months[0] == mar


def test_the_report_as_a_table(world: World) -> None:
    build_history(world)
    report = finance_report(world.db, first_month=D(2026, 1, 1), last_month=D(2026, 3, 1))
    header, rows = report_table(report)
    assert header[:len(COLUMNS)] == [c for c, _ in COLUMNS]
    assert header[len(COLUMNS):] == ["Used: Ad image", "Used: Review mining", "Used: URL brief",
                                     "Used: Video script", "Used on plan: Starter",
                                     "Used on plan: Growth"]
    assert len(rows) == 4 and rows[-1][0] == "Total"
    months, totals = rows[:3], rows[3]
    for column in range(2, 10):  # the flows add up to the totals row
        assert totals[column] == sum(int(r[column]) for r in months)
    assert totals[1] == months[0][1] and totals[10] == months[-1][10]
    assert [r[RECONCILES_COLUMN] for r in rows] == [RECONCILED_MARK] * 4
    assert [r[DIFFERENCE_COLUMN] for r in rows] == [0] * 4
    # Usage by feature adds up to the credits used, in every row.
    for row in rows:
        assert sum(int(v) for v in row[len(COLUMNS):len(COLUMNS) + 4]) == row[8]
        assert sum(int(v) for v in row[len(COLUMNS) + 4:]) == row[8]
    assert all(isinstance(v, int) for r in rows for v in r[1:RECONCILES_COLUMN])


def test_an_expiry_the_roll_has_not_written_is_reported(world: World) -> None:
    charge(world, 40, status="succeeded", at=world.at(days=1))
    report = finance_report(world.db, first_month=D(2026, 1, 1), last_month=D(2026, 2, 1))
    # January's plan grant ended on 1 Feb with 460 credits; nothing rolled the account.
    assert (report.pending_expiries, report.pending_credits) == (1, 460)
    assert "460 credits whose expiry the billing roll has not written" in report.warnings()[0]
    assert report.reconciles  # the ledger itself adds up; only the breakage is late
    roll_periods(world.db, world.platform, until=datetime(2026, 2, 10, tzinfo=UTC))
    rolled = finance_report(world.db, first_month=D(2026, 1, 1), last_month=D(2026, 2, 1))
    assert rolled.pending_expiries == 0 and rolled.months[1].expired == 460
    assert_report_matches_ledger(world.db, rolled)


def test_a_month_that_does_not_reconcile_says_so_loudly(db_url: str) -> None:
    """A ledger entry no column explains (a charge that adds credits, here written
    behind the services' back) breaks its month and the books."""
    with open_world(db_url) as world:
        charge(world, 40, status="succeeded", at=world.at(days=1))
        grant_id = world.db.read(lambda s: s.scalar(text(
            "SELECT id FROM credit_grants ORDER BY id LIMIT 1")))

        def corrupt(s: Session) -> None:
            s.add(LedgerEntry(account_id=world.account_id, grant_id=grant_id, kind="charge",
                              delta=7, actor_id=world.platform.staff_id, reason="bad",
                              created_at=datetime(2026, 2, 3, tzinfo=UTC)))

        world.db.write(corrupt)
        report = finance_report(world.db, first_month=D(2026, 1, 1),
                                last_month=D(2026, 3, 1))
        jan, feb, mar = report.months
        assert jan.reconciles and mar.reconciles
        assert not feb.reconciles and feb.difference == 7
        assert feb.unexplained == (("charge", 1, 7, 1),)
        assert not report.reconciles and not report.books_agree
        problems = report.problems()
        assert problems[0].startswith("2026-02 does not reconcile")
        assert "unexplained: 1 charge entry that adds 7 credits." in problems[0]
        assert "run credits-desktop check" in problems[-1]
        _header, rows = report_table(report)
        assert rows[1][RECONCILES_COLUMN] == "NO: off by +7"
        assert rows[1][DIFFERENCE_COLUMN] == 7
        assert str(rows[-1][RECONCILES_COLUMN]).startswith("NO")


# -- the demo data ---------------------------------------------------------------------------

NOW = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)


def test_every_month_of_the_demo_reconciles(db_url: str) -> None:
    db = Database.open(db_url)
    try:
        generate_demo(db, accounts=12, months=3, seed=3, now=NOW)
        # The demo's scheduler rolled accounts up to its ``now``; roll what has ended
        # since, so that the last month's breakage is complete too.
        roll_periods(db, _platform(db), until=datetime(2026, 4, 1, tzinfo=UTC))
        report = finance_report(db, first_month=D(2025, 11, 1), last_month=D(2026, 3, 1))
        assert_report_matches_ledger(db, report)
        assert report.pending_expiries == 0
        assert sum(m.used for m in report.months) > 0
        assert sum(m.expired for m in report.months) > 0
        assert sum(m.refunded for m in report.months) > 0
    finally:
        db.close()


def _platform(db: Database) -> Any:
    from credits_desktop.services.accounts import sign_in

    return sign_in(db, "platform")


# -- random data (hypothesis) ----------------------------------------------------------------

OPS = st.lists(
    st.tuples(
        st.sampled_from(["charge", "charge", "refund", "adjust", "reverse", "buy"]),
        st.integers(0, 10_000),
        st.sampled_from(["ad_image", "video_script", "url_brief"]),
        st.booleans(),
    ),
    min_size=3, max_size=10,
)


# No shrinking: the examples add to one database (see test_dashboard.py).
@settings(max_examples=6, deadline=None, derandomize=True, phases=[Phase.generate],
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(ops=OPS)
def test_random_data_the_report_equals_the_ledger(world: World, ops: list[Any]) -> None:
    db = world.db
    last = db.read(lambda s: s.scalar(select(LedgerEntry.created_at)
                                      .order_by(LedgerEntry.created_at.desc()).limit(1)))
    now = max(last or world.t0, world.t0) + timedelta(minutes=5)
    for op, pick, feature, failed in ops:
        # Up to five days a step: examples cross month ends and roll periods.
        now += timedelta(hours=1 + pick % 120)
        if op == "charge":
            adjust(world, world.finance, 80, at=now)
            charge(world, 1 + pick % 80, status="failed" if failed else "succeeded",
                   feature_code=feature, at=now + timedelta(minutes=1))
        elif op == "buy":
            buy_package(db, world.platform, account_id=world.account_id,
                        package_code="pack_500", payment_reference=key("pay"),
                        idempotency_key=key("buy"), at=now)
        elif op == "adjust":
            with suppress(RuleBroken):  # not enough purchased credits to remove
                adjust(world, world.finance, (1 + pick % 300) * (1 if failed else -1), at=now)
        elif op == "refund":
            open_ = db.read(lambda s: list(s.scalars(select(UsageCharge.id).where(
                UsageCharge.id.not_in(select(Refund.charge_id))).order_by(UsageCharge.id))))
            if open_:
                refund(world, world.manager, open_[pick % len(open_)], at=now)
        else:
            refunds = db.read(lambda s: list(s.scalars(select(Refund.id).where(
                Refund.id.not_in(select(Reversal.refund_id).where(
                    Reversal.refund_id.is_not(None)))).order_by(Refund.id))))
            if refunds:
                with suppress(RuleBroken):
                    reverse_refund(world, world.manager, refunds[pick % len(refunds)], at=now)
    last_month = month_of(now)
    report = finance_report(db, first_month=D(2026, 1, 1), last_month=last_month)
    assert_report_matches_ledger(db, report)
