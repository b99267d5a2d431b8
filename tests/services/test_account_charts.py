"""An account's charts (services.account_charts) on SQLite and PostgreSQL.

The data is made with the real write services; every expectation is recomputed straight
from the charges, refunds, reversals and ledger entries, never from the rollup the code
under test reads.
"""

from __future__ import annotations

import csv
import io
import itertools
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from credits_desktop.domain.forecast import WINDOW_DAYS, Pace
from credits_desktop.services.account_charts import (
    CSV_COLUMNS,
    BalanceHistory,
    BalanceStep,
    DateRange,
    Granularity,
    RangePreset,
    UsageSeries,
    balance_history,
    default_granularity,
    forecast_inputs,
    load_chart_data,
    preset_range,
    usage_csv_rows,
    usage_series,
    write_export,
)
from credits_desktop.services.errors import InvalidInput, NotFound, PermissionDenied
from credits_desktop.services.periods import roll_periods
from credits_desktop.services.queries import account_summary
from credits_desktop.store.database import Database
from credits_desktop.store.models import (
    AuditEvent,
    CreditGrant,
    LedgerEntry,
    Refund,
    Reversal,
    UsageCharge,
)

from .factories import (
    World,
    adjust,
    balances,
    charge,
    fetch,
    open_account,
    refund,
    refund_id_of,
    reverse_refund,
)

FEATURES = ("ad_image", "url_brief", "video_script", "review_mining")
_emails = itertools.count(1)


def raw_usage(db: Database, account_id: int) -> dict[tuple[date, str], list[int]]:
    """(UTC day, feature) -> [charges, credits, failed credits, refunded credits], summed
    from the charges and their refunds less reversed ones."""

    def work(session: object) -> dict[tuple[date, str], list[int]]:
        from sqlalchemy.orm import Session

        assert isinstance(session, Session)
        reversed_ids = set(session.scalars(select(Reversal.refund_id)
                                           .where(Reversal.refund_id.is_not(None))))
        refunds = {
            r.charge_id: (0 if r.id in reversed_ids else r.credits)
            for r in session.scalars(select(Refund).where(Refund.account_id == account_id))
        }
        sums: dict[tuple[date, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
        for c in session.scalars(select(UsageCharge).where(UsageCharge.account_id == account_id)):
            s = sums[(c.occurred_at.astimezone(UTC).date(), c.feature_code)]
            s[0] += 1
            s[1] += c.credits
            s[2] += c.credits if c.status == "failed" else 0
            s[3] += refunds.get(c.id, 0)
        return dict(sums)

    return db.read(work)


def check_series(series: UsageSeries, raw: dict[tuple[date, str], list[int]]) -> None:
    """Each bucket and feature of ``series`` equals the raw sums of its days."""
    rng = series.range
    for number, bucket in enumerate(series.buckets):
        for code in FEATURES:
            want = [0, 0, 0, 0]
            for (day, feature), sums in raw.items():
                if feature == code and bucket.start <= day < bucket.end:
                    want = [a + b for a, b in zip(want, sums, strict=True)]
            got = series.feature(code).values[number]
            assert [got.charges, got.credits, got.failed_credits, got.refunded_credits] == want
            assert got.used == want[1] - want[3]
    in_range = [s for (day, _f), s in raw.items() if rng.start <= day < rng.end]
    assert series.total.used == sum(s[1] - s[3] for s in in_range)
    assert {f.code for f in series.features} == {
        f for (day, f) in raw if rng.start <= day < rng.end}


def ledger_balances(db: Database, account_id: int, until: datetime) -> tuple[int, int, int]:
    """Plan, purchased and refund credits: the ledger's sums up to ``until`` included."""
    kinds = {"plan": 0, "purchased": 0, "refund": 0}
    grants = {g.id: g.source for g in fetch(db, select(CreditGrant)
                                            .where(CreditGrant.account_id == account_id))}
    for e in fetch(db, select(LedgerEntry).where(LedgerEntry.account_id == account_id)):
        if e.created_at <= until:
            source = grants[e.grant_id]
            kinds["purchased" if source in ("purchase", "adjustment") else source] += e.delta
    return kinds["plan"], kinds["purchased"], kinds["refund"]


def check_history(db: Database, account_id: int, history: BalanceHistory,
                  now: datetime) -> None:
    """Every step is the ledger's sum at its instant (less plan credits of ended periods
    the roll has not expired yet), and the last one is what the cards show."""
    pending = {
        (g.expires_at, g.remaining)
        for g in fetch(db, select(CreditGrant).where(
            CreditGrant.account_id == account_id, CreditGrant.source == "plan",
            CreditGrant.remaining > 0, CreditGrant.expires_at <= now))
    }
    assert history.points[0].at == history.start
    for number, point in enumerate(history.points):
        plan, purchased, refund_ = ledger_balances(db, account_id, point.at)
        expired = sum(r for t, r in pending if t <= point.at)
        if number == 0:
            # The opening point is before any entry made at that very instant.
            plan, purchased, refund_ = ledger_balances(
                db, account_id, point.at - timedelta(microseconds=1))
            expired = sum(r for t, r in pending if t < point.at)
        assert (point.plan, point.purchased, point.refund) == (plan - expired, purchased,
                                                               refund_), point
    times = [p.at for p in history.points]
    assert times == sorted(times)
    if history.end >= now:
        summary = account_summary(db, account_id, at=now)
        last = history.points[-1]
        assert last.at == now
        assert (last.plan, last.purchased, last.refund) == (
            summary.plan_left, summary.purchased, summary.refund)
        assert last.total == summary.total


# -- usage series ----------------------------------------------------------------------------


def test_buckets_are_aligned_and_empty_ones_are_zero(world: World) -> None:
    # t0 is Saturday 10 Jan 2026, 09:00 UTC.
    charge(world, 40, status="succeeded", at=world.at(hours=1))
    charge(world, 8, status="succeeded", at=world.at(days=2), feature_code="url_brief")
    failed = charge(world, 40, at=world.at(days=3)).charge_id
    refund(world, world.support, failed, at=world.at(days=4))
    series = usage_series(world.db, world.account_id, start=date(2026, 1, 7),
                          end=date(2026, 1, 21), granularity="day")
    assert len(series.buckets) == 14
    assert all(b.end - b.start == timedelta(days=1) for b in series.buckets)
    image = series.feature("ad_image")
    assert image.name == "Ad image" or image.name  # the catalogue's name
    by_day = {b.start: image.values[i] for i, b in enumerate(series.buckets)}
    assert by_day[date(2026, 1, 10)].used == 40
    assert by_day[date(2026, 1, 13)].credits == 40
    assert by_day[date(2026, 1, 13)].failed_credits == 40
    assert by_day[date(2026, 1, 13)].refunded_credits == 40
    assert by_day[date(2026, 1, 13)].used == 0
    assert by_day[date(2026, 1, 8)].charges == 0
    assert [f.code for f in series.features] == sorted(
        ["ad_image", "url_brief"], key=lambda c: series.catalogue.index(c))

    weeks = usage_series(world.db, world.account_id, start=date(2026, 1, 7),
                         end=date(2026, 1, 21), granularity=Granularity.WEEK)
    # Wednesday 7 Jan: the first week is cut to the range, the others start on Monday.
    assert [(b.start, b.end) for b in weeks.buckets] == [
        (date(2026, 1, 7), date(2026, 1, 12)),
        (date(2026, 1, 12), date(2026, 1, 19)),
        (date(2026, 1, 19), date(2026, 1, 21)),
    ]
    assert weeks.feature("ad_image").values[0].used == 40
    assert weeks.feature("ad_image").values[1].used == 0
    assert weeks.feature("url_brief").values[1].used == 8

    months = usage_series(world.db, world.account_id, start=date(2025, 12, 15),
                          end=date(2026, 3, 1), granularity="month")
    assert [b.start for b in months.buckets] == [date(2025, 12, 15), date(2026, 1, 1),
                                                 date(2026, 2, 1)]
    assert [v.used for v in months.feature("ad_image").values] == [0, 40, 0]
    assert months.total.used == 48 and months.total.charges == 3


def test_an_account_without_usage_has_every_bucket_at_zero(world: World) -> None:
    series = usage_series(world.db, world.account_id, start=date(2026, 1, 1),
                          end=date(2026, 2, 1), granularity="week")
    assert series.features == ()
    assert len(series.buckets) == 5
    assert series.bucket_total(0).used == 0
    assert series.total.charges == 0


def test_other_accounts_are_left_out(world: World) -> None:
    other = open_account(world.db, world.platform, name="Other", email="o@other.test")
    charge(world, 10, status="succeeded", at=world.at(hours=2), account_id=other)
    charge(world, 7, status="succeeded", at=world.at(hours=2))
    series = usage_series(world.db, world.account_id, start=date(2026, 1, 1),
                          end=date(2026, 2, 1))
    assert series.total.used == 7


def test_bad_requests_are_refused(world: World) -> None:
    day = date(2026, 1, 1)
    with pytest.raises(NotFound):
        usage_series(world.db, 999_999, start=day, end=day + timedelta(days=1))
    with pytest.raises(NotFound):
        usage_series(world.db, 2**40, start=day, end=day + timedelta(days=1))
    with pytest.raises(InvalidInput, match="end after it starts"):
        usage_series(world.db, world.account_id, start=day, end=day)
    with pytest.raises(InvalidInput, match="days, weeks or months"):
        usage_series(world.db, world.account_id, start=day, end=day + timedelta(days=1),
                     granularity="hour")
    with pytest.raises(InvalidInput, match="Choose an account"):
        usage_series(world.db, True, start=day, end=day + timedelta(days=1))
    with pytest.raises(InvalidInput, match="end after it starts"):
        balance_history(world.db, world.account_id, start=day, end=day)
    with pytest.raises(InvalidInput, match="time zone"):
        balance_history(world.db, world.account_id, start=datetime(2026, 1, 1), end=day)
    with pytest.raises(NotFound):
        balance_history(world.db, 999_999, start=day, end=day + timedelta(days=1))


@st.composite
def activity(draw: st.DrawFn) -> list[tuple[str, int, int, str, int]]:
    """Charges as (feature, day offset, minutes, status, credits)."""
    return draw(st.lists(
        st.tuples(st.sampled_from(FEATURES), st.integers(0, 75), st.integers(0, 1439),
                  st.sampled_from(["succeeded", "failed"]), st.integers(0, 30)),
        min_size=0, max_size=12))


@settings(max_examples=10, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(charges=activity(), refunds=st.lists(st.booleans(), min_size=12, max_size=12),
       reversals=st.lists(st.booleans(), min_size=12, max_size=12),
       top_up=st.integers(-300, 300))
def test_series_and_balances_equal_the_raw_sums_for_random_data(
    world: World, charges: list[tuple[str, int, int, str, int]], refunds: list[bool],
    reversals: list[bool], top_up: int,
) -> None:
    # A fresh account per example: the examples share the test's database.
    n = next(_emails)
    account = open_account(world.db, world.platform, name=f"Random {n}",
                           email=f"random{n}@example.test")
    made = []
    for feature, days, minutes, status, credits in sorted(charges, key=lambda c: c[1:3]):
        at = world.t0 + timedelta(days=days, minutes=minutes)
        made.append((charge(world, credits, status=status, at=at, account_id=account,
                            feature_code=feature), at))
    for (result, at), wanted, undo in zip(made, refunds, reversals, strict=False):
        if wanted and result.credits > 0:
            refund(world, world.manager, result.charge_id, account_id=account,
                   at=at + timedelta(days=1))
            if undo:
                reverse_refund(world, world.manager, refund_id_of(world, result.charge_id),
                               at=at + timedelta(days=2))
    if top_up:
        from credits_desktop.services.adjustments import adjust_purchased

        adjust_purchased(world.db, world.finance, account_id=account, delta=abs(top_up),
                         reason_code="manual_sale", reference="INV-9",
                         idempotency_key=f"top-up-{n}", at=world.at(days=20))
    raw = raw_usage(world.db, account)
    for grain, (start, end) in itertools.product(
        Granularity, [(date(2026, 1, 1), date(2026, 4, 1)), (date(2026, 1, 14),
                                                             date(2026, 2, 19))]
    ):
        check_series(usage_series(world.db, account, start=start, end=end,
                                  granularity=grain), raw)
    now = datetime.now(UTC)
    for (start, end), step in itertools.product(
        [(date(2026, 1, 1), now.date() + timedelta(days=2)),
         (date(2026, 1, 20), date(2026, 2, 20))], BalanceStep,
    ):
        check_history(world.db, account, balance_history(world.db, account, start=start,
                                                         end=end, at=now, step=step), now)


# -- balances over time ------------------------------------------------------------------------


def test_the_history_steps_with_the_ledger_and_marks_the_resets(world: World) -> None:
    charge(world, 100, status="succeeded", at=world.at(days=1))
    failed = charge(world, 40, at=world.at(days=2)).charge_id
    adjust(world, world.finance, 250, at=world.at(days=3))
    # February: a new plan grant; the January one expires unused (360 left).
    charge(world, 30, status="succeeded", at=datetime(2026, 2, 3, tzinfo=UTC))
    # Refunding a January charge in February: its plan grant has expired, so the
    # credits come back as refund credits.
    refund(world, world.support, failed, at=datetime(2026, 2, 4, tzinfo=UTC))
    now = datetime.now(UTC)
    history = balance_history(world.db, world.account_id, start=date(2026, 1, 1),
                              end=date(2026, 3, 1), at=now)
    check_history(world.db, world.account_id, history, now)
    opening = history.points[0]
    assert (opening.plan, opening.purchased, opening.refund) == (0, 0, 0)
    assert history.at(world.at(days=1)).plan == 400
    assert history.at(world.at(days=3)).purchased == 750
    assert history.at(datetime(2026, 2, 1, tzinfo=UTC)).plan == 500
    assert history.at(datetime(2026, 2, 5, tzinfo=UTC)).refund == 40
    assert history.resets == (datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC),
                              datetime(2026, 3, 1, tzinfo=UTC))
    # The February period ended without the roll job writing its expiry down.
    assert history.pending_expiries == (datetime(2026, 3, 1, tzinfo=UTC),)


@pytest.mark.parametrize("step", list(BalanceStep))
def test_coarser_steps_keep_every_point_exact(world: World, step: BalanceStep) -> None:
    # Three charges in one hour, two in another hour of the same day, one the next day.
    for minutes in (0, 10, 50, 70, 80, 60 * 24):
        charge(world, 7, status="succeeded", at=world.at(days=1, minutes=minutes))
    now = datetime.now(UTC)
    history = balance_history(world.db, world.account_id, start=date(2026, 1, 11),
                              end=date(2026, 1, 14), at=now, step=step)
    check_history(world.db, world.account_id, history, now)
    changes = [p.at for p in history.points[1:-1]]
    first = world.at(days=1)
    expected = {
        BalanceStep.ENTRY: [first + timedelta(minutes=m) for m in (0, 10, 50, 70, 80, 1440)],
        BalanceStep.HOUR: [first + timedelta(minutes=m) for m in (50, 80, 1440)],
        BalanceStep.DAY: [first + timedelta(minutes=m) for m in (80, 1440)],
    }
    assert changes == expected[step]
    assert history.points[-2].total == history.points[0].total - 42
    with pytest.raises(InvalidInput, match="hours or days"):
        balance_history(world.db, world.account_id, start=date(2026, 1, 11),
                        end=date(2026, 1, 14), step="minute")


def test_the_history_ends_on_the_cached_balances_once_rolled(world: World) -> None:
    charge(world, 120, status="succeeded", at=world.at(days=1))
    adjust(world, world.finance, -100, at=world.at(days=2))
    now = datetime.now(UTC)
    roll_periods(world.db, world.admin, until=now)
    history = balance_history(world.db, world.account_id, start=date(2025, 12, 1),
                              end=now.date() + timedelta(days=40), at=now)
    check_history(world.db, world.account_id, history, now)
    assert history.pending_expiries == ()
    cached = balances(world.db, world.account_id)
    last = history.points[-1]
    assert (last.plan, last.purchased, last.refund) == (cached.plan, cached.purchased,
                                                        cached.refund)
    # A reset on the first of every month from January to after today.
    assert history.resets[0] == datetime(2026, 1, 1, tzinfo=UTC)
    assert all(r.day == 1 and r.hour == 0 for r in history.resets)
    assert history.resets[-1] > now


def test_a_history_before_the_account_opened_is_flat_at_zero(world: World) -> None:
    history = balance_history(world.db, world.account_id, start=date(2025, 1, 1),
                              end=date(2025, 6, 1), at=datetime.now(UTC))
    assert [(p.total) for p in history.points] == [0, 0]
    assert history.resets == ()


# -- ranges -----------------------------------------------------------------------------------


def test_presets_cover_the_days_they_say() -> None:
    today = date(2026, 11, 25)
    start = datetime(2026, 11, 7, tzinfo=UTC)
    end = datetime(2026, 12, 7, tzinfo=UTC)
    assert preset_range("current_period", today=today, period_start=start,
                        period_end=end) == DateRange(date(2026, 11, 7), date(2026, 12, 7))
    # No period yet: the last 30 days.
    assert preset_range(RangePreset.CURRENT_PERIOD, today=today) == DateRange(
        date(2026, 10, 27), date(2026, 11, 26))
    assert preset_range(RangePreset.LAST_30_DAYS, today=today).days == 30
    assert preset_range(RangePreset.LAST_90_DAYS, today=today) == DateRange(
        date(2026, 8, 28), date(2026, 11, 26))
    assert preset_range(RangePreset.LAST_12_MONTHS, today=today) == DateRange(
        date(2025, 12, 1), date(2026, 11, 26))
    assert preset_range(RangePreset.CUSTOM, today=today,
                        custom=(date(2026, 1, 5), date(2026, 1, 5))) == DateRange(
        date(2026, 1, 5), date(2026, 1, 6))
    with pytest.raises(InvalidInput, match="on or after"):
        preset_range(RangePreset.CUSTOM, today=today, custom=(date(2026, 1, 5),
                                                              date(2026, 1, 4)))
    with pytest.raises(InvalidInput, match="first and last day"):
        preset_range(RangePreset.CUSTOM, today=today)
    with pytest.raises(InvalidInput, match="from the list"):
        preset_range("yesterday", today=today)


def test_the_default_granularity_follows_the_length() -> None:
    day = date(2026, 1, 1)
    assert default_granularity(DateRange(day, day + timedelta(days=31))) is Granularity.DAY
    assert default_granularity(DateRange(day, day + timedelta(days=90))) is Granularity.WEEK
    assert default_granularity(DateRange(day, day + timedelta(days=365))) is Granularity.MONTH


# -- the forecast's inputs ----------------------------------------------------------------------


def test_forecast_inputs_gather_recent_days_periods_and_the_catalogue(world: World) -> None:
    at = datetime(2026, 3, 15, 12, tzinfo=UTC)
    charge(world, 50, status="succeeded", at=world.at(days=2))  # January
    charge(world, 200, status="succeeded", at=datetime(2026, 2, 10, tzinfo=UTC))
    refunded = charge(world, 30, at=datetime(2026, 2, 20, tzinfo=UTC)).charge_id
    refund(world, world.support, refunded, at=datetime(2026, 2, 21, tzinfo=UTC))
    charge(world, 15, status="succeeded", at=datetime(2026, 3, 14, 23, tzinfo=UTC))
    charge(world, 99, status="succeeded", at=datetime(2026, 3, 15, 8, tzinfo=UTC))  # today
    inputs = forecast_inputs(world.db, world.account_id, at)
    assert inputs.at == at
    assert len(inputs.recent_daily) == WINDOW_DAYS
    # The 28 days before 15 March: 15 Feb to 14 March.
    assert inputs.recent_daily[-1] == 15
    assert inputs.recent_daily[5] == 0  # 20 Feb: charged and refunded
    assert sum(inputs.recent_daily) == 15
    # January (opened on the 10th) and February, oldest first.
    assert inputs.period_usage == (50, 200)
    summary = account_summary(world.db, world.account_id, at=at)
    assert (inputs.plan_left, inputs.purchased, inputs.refund) == (
        summary.plan_left, summary.purchased, summary.refund)
    assert inputs.next_reset == datetime(2026, 4, 1, tzinfo=UTC)
    assert inputs.allotment == 500 and inputs.plan_code == "starter"
    assert [p.code for p in inputs.plans] == ["starter", "growth", "pro", "agency"]
    assert [p.credits for p in inputs.packages] == [500, 2_000, 10_000]


def test_a_young_account_counts_only_its_own_days(world: World) -> None:
    at = world.at(days=3)
    charge(world, 20, status="succeeded", at=world.at(hours=1))
    inputs = forecast_inputs(world.db, world.account_id, at)
    # Opened on 10 Jan: 10, 11 and 12 January are complete.
    assert inputs.recent_daily == (20, 0, 0)
    assert inputs.period_usage == ()
    opened_today = forecast_inputs(world.db, world.account_id, world.at(hours=2))
    assert opened_today.recent_daily == ()


def test_forecast_inputs_exactly_at_a_reset_look_at_the_new_period(world: World) -> None:
    at = datetime(2026, 2, 1, tzinfo=UTC)
    charge(world, 70, status="succeeded", at=world.at(days=1))
    inputs = forecast_inputs(world.db, world.account_id, at)
    assert inputs.next_reset == datetime(2026, 3, 1, tzinfo=UTC)
    assert inputs.period_usage == (70,)
    # The January plan credits expired at that instant.
    assert inputs.plan_left == 0


def test_load_chart_data_reads_one_screen(world: World) -> None:
    charge(world, 40, status="succeeded", at=world.at(hours=3))
    at = world.at(days=5)
    data = load_chart_data(world.db, world.account_id, preset="current_period", at=at)
    assert data.range == DateRange(date(2026, 1, 1), date(2026, 2, 1))
    assert data.series.granularity is Granularity.DAY
    assert data.series.total.used == 40
    assert data.balances.points[-1].at == at
    assert data.forecast.pace is Pace.USING
    assert data.forecast.next_reset == datetime(2026, 2, 1, tzinfo=UTC)
    months = load_chart_data(world.db, world.account_id, preset="last_12_months",
                             granularity="month", at=at)
    assert months.series.granularity is Granularity.MONTH
    assert len(months.series.buckets) == 12


# -- exports ----------------------------------------------------------------------------------


def test_the_csv_rows_add_up_to_the_chart(world: World) -> None:
    charge(world, 40, status="succeeded", at=world.at(hours=1))
    failed = charge(world, 25, at=world.at(days=1), feature_code="review_mining").charge_id
    refund(world, world.support, failed, credits=10, at=world.at(days=2))
    series = usage_series(world.db, world.account_id, start=date(2026, 1, 1),
                          end=date(2026, 2, 1), granularity="week")
    rows = usage_csv_rows(series)
    assert tuple(rows[0]) == CSV_COLUMNS
    body = rows[1:]
    assert len(body) == len(series.buckets) * 2
    used = CSV_COLUMNS.index("Credits used")
    assert sum(int(r[used]) for r in body) == series.total.used == 55
    only = usage_csv_rows(series, ["review_mining"])
    assert sum(int(r[used]) for r in only[1:]) == 15


def test_exports_are_written_and_audited_for_roles_that_may(world: World,
                                                            tmp_path: Path) -> None:
    tmp_path = tmp_path / "exports"
    tmp_path.mkdir()
    target = tmp_path / "usage.csv"
    text = io.StringIO()
    csv.writer(text).writerows([["a", "b"], ["1", "2"]])
    written = write_export(world.db, world.finance, world.account_id, target,
                           text.getvalue().encode("utf-8-sig"), what="usage chart as CSV")
    assert written == target and target.read_bytes().startswith(b"\xef\xbb\xbf")
    events = fetch(world.db, select(AuditEvent).where(AuditEvent.action == "export"))
    assert [(e.outcome, e.account_id) for e in events] == [("applied", world.account_id)]
    assert "usage chart as CSV" in events[0].detail

    refused = tmp_path / "refused.png"
    with pytest.raises(PermissionDenied):
        write_export(world.db, world.support, world.account_id, refused, b"x",
                     what="usage chart as PNG")
    assert not refused.exists()
    denied = fetch(world.db, select(func.count()).select_from(AuditEvent).where(
        AuditEvent.action == "export", AuditEvent.outcome == "denied"))
    assert denied == [1]
    with pytest.raises(InvalidInput, match="does not exist"):
        write_export(world.db, world.finance, world.account_id,
                     tmp_path / "missing" / "x.png", b"x", what="chart")
    with pytest.raises(InvalidInput, match="folder"):
        write_export(world.db, world.finance, world.account_id, tmp_path, b"x", what="chart")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["usage.csv"]
