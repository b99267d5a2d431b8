"""The credits forecast: pace, run-out, unused plan credits, the plan advice, the sentences."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from credits_desktop.domain.forecast import (
    WINDOW_DAYS,
    Forecast,
    ForecastInputs,
    Pace,
    PackageOption,
    PlanOption,
    cheapest_packages,
    forecast,
    recommend_plan,
)

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
RESET = datetime(2026, 12, 7, tzinfo=UTC)  # 11.5 days after NOW

PLANS = (
    PlanOption("starter", "Starter", 500),
    PlanOption("growth", "Growth", 2_000),
    PlanOption("pro", "Pro", 6_000),
    PlanOption("agency", "Agency", 20_000),
)
PACKAGES = (
    PackageOption("pack_500", "500 credits", 500, 2_500),
    PackageOption("pack_2000", "2,000 credits", 2_000, 9_000),
    PackageOption("pack_10000", "10,000 credits", 10_000, 40_000),
)


def inputs(**changes: Any) -> ForecastInputs:
    base: dict[str, Any] = {
        "at": NOW,
        "recent_daily": (120,) * WINDOW_DAYS,
        "plan_left": 1_000,
        "purchased": 300,
        "refund": 0,
        "next_reset": RESET,
        "plan_code": "growth",
        "allotment": 2_000,
        "period_usage": (1_500, 1_800, 1_730),
        "plans": PLANS,
        "packages": PACKAGES,
    }
    base.update(changes)
    return ForecastInputs(**base)


# -- the pace and the run-out ------------------------------------------------------------------


def test_the_pace_is_the_mean_of_the_recent_days() -> None:
    f = forecast(inputs(recent_daily=(0, 10, 20, 30)))
    assert f.pace is Pace.USING
    assert f.per_day == Fraction(15)
    assert f.days_observed == 4


def test_credits_running_out_before_the_reset_give_the_date() -> None:
    # 1,300 credits at 120 a day: 10.83 days, before the reset 11.5 days away.
    f = forecast(inputs())
    assert f.runs_out_before_reset
    assert f.run_out_at == NOW + timedelta(days=1300 / 120)
    assert f.unused_at_reset == 0
    # The plan credits go first, after 1,000 / 120 days; the purchased ones after them.
    assert f.plan_used_up_at == NOW + timedelta(days=1000 / 120)
    assert f.sentences() == [
        "At your recent pace of about 120 credits a day, your credits will last until "
        "6 Dec, before your plan resets on 7 Dec.",
        "Your plan credits will all be used by about 3 Dec, before your plan resets on "
        "7 Dec; after that your other credits are used.",
        "Your current Growth plan (2,000 credits a month) is the smallest that would have "
        "covered your last three months (your busiest used 1,800 credits).",
    ]


def test_credits_lasting_past_the_reset_leave_plan_credits_unused() -> None:
    # 11.5 days at 40 a day use 460 of the 800 plan credits: 340 expire at the reset.
    f = forecast(inputs(recent_daily=(40,) * WINDOW_DAYS, plan_left=800))
    assert not f.runs_out_before_reset and f.run_out_at is None
    assert f.unused_at_reset == 340
    assert f.plan_used_up_at is None
    assert f.sentences()[:2] == [
        "At your recent pace of about 40 credits a day, your credits will last past your "
        "plan reset on 7 Dec.",
        "About 340 plan credits will be left unused when your plan resets on 7 Dec; "
        "unused plan credits do not carry over.",
    ]


def test_running_out_exactly_at_the_reset_counts_as_lasting() -> None:
    # 11.5 days at 100 a day is exactly 1,150 credits: the new plan credits arrive then.
    exact = forecast(inputs(recent_daily=(100,) * WINDOW_DAYS, plan_left=1_150, purchased=0))
    assert exact.run_out_at is None
    assert exact.unused_at_reset == 0
    assert "last past your plan reset on 7 Dec" in exact.sentences()[0]
    # One credit fewer and they run out just before it.
    short = forecast(inputs(recent_daily=(100,) * WINDOW_DAYS, plan_left=1_149, purchased=0))
    assert short.run_out_at is not None and short.run_out_at < RESET
    assert RESET - short.run_out_at == timedelta(minutes=14, seconds=24)
    assert short.sentences()[0].endswith("your credits will last until 6 Dec, before your "
                                         "plan resets on 7 Dec.")


def test_the_forecast_cannot_be_made_at_or_after_the_reset() -> None:
    with pytest.raises(ValueError, match="after the forecast time"):
        inputs(next_reset=NOW)
    with pytest.raises(ValueError, match="after the forecast time"):
        inputs(next_reset=NOW - timedelta(seconds=1))


def test_a_forecast_made_just_after_a_reset_looks_a_whole_period_ahead() -> None:
    at = RESET
    f = forecast(inputs(at=at, next_reset=datetime(2027, 1, 7, tzinfo=UTC), plan_left=2_000,
                        purchased=0, recent_daily=(50,) * WINDOW_DAYS))
    # 31 days at 50 a day use 1,550 of 2,000.
    assert f.unused_at_reset == 450
    assert f.sentences()[0].endswith("last past your plan reset on 7 Jan 2027.")


def test_zero_usage_never_runs_out_and_leaves_every_plan_credit() -> None:
    f = forecast(inputs(recent_daily=(0,) * WINDOW_DAYS, period_usage=(0, 0, 0)))
    assert f.pace is Pace.IDLE
    assert f.run_out_at is None and f.plan_used_up_at is None
    assert f.unused_at_reset == 1_000
    assert f.projection() == ((NOW, 1_300), (RESET, 1_300))
    rec = f.recommendation
    assert rec is not None and rec.plan.code == "starter" and not rec.packages
    assert f.sentences() == [
        "You have not used any credits in the last 28 days, so at this pace your "
        "1,300 credits will not run out.",
        "Your 1,000 plan credits left will go unused when your plan resets on 7 Dec; "
        "unused plan credits do not carry over.",
        "The Starter plan (500 credits a month) would have covered your last three months "
        "(you used no credits in them).",
    ]


def test_a_young_idle_account_says_since_it_opened() -> None:
    f = forecast(inputs(recent_daily=(0, 0, 0), period_usage=()))
    assert f.sentences()[0].startswith("You have not used any credits since your account "
                                       "opened")
    assert f.sentences()[-1] == ("There is not yet a full billing month of usage to "
                                 "recommend a plan from.")


def test_no_history_gives_no_pace_and_no_guess() -> None:
    f = forecast(inputs(recent_daily=(), period_usage=()))
    assert f.pace is Pace.NO_HISTORY and f.per_day is None
    assert f.run_out_at is None and f.unused_at_reset is None
    assert f.recommendation is None
    assert f.projection() == ()
    assert f.sentences() == [
        "There is no usage history yet, so there is no pace to forecast from; you have "
        "1,300 credits available right now."
    ]
    empty = forecast(inputs(recent_daily=(), plan_left=0, purchased=0, period_usage=()))
    assert empty.sentences() == [
        "There is no usage history yet, so there is no pace to forecast from; you have no "
        "credits left right now."
    ]


def test_huge_usage_runs_out_today() -> None:
    f = forecast(inputs(recent_daily=(1_000_000,) * WINDOW_DAYS,
                        period_usage=(30_000_000, 29_000_000, 31_000_000)))
    assert f.run_out_at is not None
    assert f.run_out_at - NOW == timedelta(days=1300 / 1_000_000)
    assert f.unused_at_reset == 0
    sentences = f.sentences()
    assert sentences[0] == (
        "At your recent pace of about 1,000,000 credits a day, your credits will run out "
        "today (25 Nov), before your plan resets on 7 Dec.")
    rec = f.recommendation
    assert rec is not None and rec.plan.code == "agency"
    # 10,000,000 + 9,000,000 + 11,000,000 beyond 20,000 a month, in 10,000s.
    assert rec.shortfall == 90_000_000 - 3 * 20_000
    assert rec.package_credits >= rec.shortfall
    assert rec.packages == ((PACKAGES[2], 8_994),)
    assert sentences[-1] == (
        "The Agency plan (20,000 credits a month) plus packages of 8,994 × 10,000 credits "
        "would have covered your last three months (your busiest used 31,000,000 credits).")


def test_no_credits_left_says_so_and_when_they_come_back() -> None:
    f = forecast(inputs(plan_left=0, purchased=0))
    assert f.run_out_at == NOW
    assert f.sentences()[0] == ("You have no credits left right now; your plan resets on "
                                "7 Dec, adding 2,000 credits.")
    none = forecast(inputs(plan_left=0, purchased=0, allotment=0, next_reset=None))
    assert none.sentences()[0] == "You have no credits left right now."


def test_without_a_known_reset_the_credits_run_out_on_a_date() -> None:
    f = forecast(inputs(next_reset=None, recent_daily=(100,) * WINDOW_DAYS))
    assert f.run_out_at == NOW + timedelta(days=13)
    assert f.unused_at_reset is None
    assert f.sentences()[0] == ("At your recent pace of about 100 credits a day, your "
                                "credits will last until 8 Dec.")
    assert f.projection() == ((NOW, 1_300), (NOW + timedelta(days=13), 0))


def test_a_tiny_pace_without_a_reset_stays_within_the_calendar() -> None:
    f = forecast(inputs(next_reset=None, recent_daily=(1,) + (0,) * 27, purchased=10**9))
    assert f.run_out_at is not None and f.run_out_at.year < 2200


def test_slow_paces_are_shown_with_a_decimal() -> None:
    assert "about 0.5 credits a day" in forecast(
        inputs(recent_daily=(1, 0))).sentences()[0]
    assert "about 1 credit a day" in forecast(inputs(recent_daily=(1,))).sentences()[0]
    assert "about 2.3 credits a day" in forecast(
        inputs(recent_daily=(2, 2, 3))).sentences()[0]
    assert "less than one credit a day" in forecast(
        inputs(recent_daily=(1,) + (0,) * 27)).sentences()[0]


def test_dates_follow_the_zone_asked_for() -> None:
    f = forecast(inputs(recent_daily=(40,) * WINDOW_DAYS, plan_left=800))
    # 00:00 UTC on 7 Dec is still 6 Dec west of Greenwich.
    west = f.sentences(timezone(timedelta(hours=-5)))
    assert "plan reset on 6 Dec" in west[0]


def test_the_projection_ends_at_the_run_out_or_the_reset() -> None:
    out = forecast(inputs())
    assert out.projection() == ((NOW, 1_300), (out.run_out_at, 0))
    lasting = forecast(inputs(recent_daily=(40,) * WINDOW_DAYS, plan_left=800))
    # 1,100 less 11.5 days at 40.
    assert lasting.projection() == ((NOW, 1_100), (RESET, 640))


# -- the plan advice ---------------------------------------------------------------------------


def test_the_smallest_plan_covering_the_busiest_month_is_advised() -> None:
    rec = recommend_plan((400, 1_900, 700), PLANS, PACKAGES, current_code="pro")
    assert rec is not None
    assert rec.plan.code == "growth" and rec.packages == () and rec.peak == 1_900
    assert not rec.is_current
    f = forecast(inputs(plan_code="pro", allotment=6_000, period_usage=(400, 1_900, 700)))
    assert f.sentences()[-1] == ("The Growth plan (2,000 credits a month) would have covered "
                                 "your last three months (your busiest used 1,900 credits).")


def test_an_exact_fit_covers() -> None:
    rec = recommend_plan((2_000,), PLANS, PACKAGES)
    assert rec is not None and rec.plan.code == "growth"


def test_the_current_plan_wins_a_tie_on_allotment() -> None:
    twins = (*PLANS, PlanOption("growth_old", "Growth (2024)", 2_000))
    rec = recommend_plan((1_000,), twins, PACKAGES, current_code="growth_old")
    assert rec is not None and rec.plan.code == "growth_old" and rec.is_current


def test_usage_beyond_every_plan_adds_the_cheapest_packages() -> None:
    rec = recommend_plan((21_000, 25_000, 19_000), PLANS, PACKAGES)
    assert rec is not None and rec.plan.code == "agency"
    assert rec.shortfall == 6_000
    # 3 × 2,000 (27,000) beats 10,000 (40,000) and 12 × 500 (30,000).
    assert rec.packages == ((PACKAGES[1], 3),)
    assert rec.package_cost_cents == 27_000
    f = forecast(inputs(period_usage=(21_000, 25_000)))
    assert f.sentences()[-1] == (
        "The Agency plan (20,000 credits a month) plus packages of 3 × 2,000 credits would "
        "have covered your last two months (your busiest used 25,000 credits).")


def test_one_month_of_history_is_said_as_such() -> None:
    f = forecast(inputs(period_usage=(300,)))
    assert f.sentences()[-1] == ("The Starter plan (500 credits a month) would have covered "
                                 "your last month (you used 300 credits).")


def test_with_plan_prices_the_cheapest_total_wins() -> None:
    priced = (
        PlanOption("starter", "Starter", 500, 1_000),
        PlanOption("growth", "Growth", 2_000, 5_000),
    )
    # One busy month: Starter plus packages (3 × 1,000 + 2,000 credits at 9,000) is
    # cheaper than three months of Growth (15,000).
    rec = recommend_plan((400, 2_500, 450), priced, PACKAGES)
    assert rec is not None and rec.plan.code == "starter"
    assert rec.packages == ((PACKAGES[1], 1),)
    # Busy every month: Growth is cheaper (Starter would need 4,350 credits more).
    rec = recommend_plan((1_900, 2_000, 1_950), priced, PACKAGES)
    assert rec is not None and rec.plan.code == "growth" and rec.packages == ()


def test_priced_plans_with_a_shortfall_and_no_package_are_left_out() -> None:
    priced = (PlanOption("starter", "Starter", 500, 1), PlanOption("big", "Big", 5_000, 100))
    rec = recommend_plan((4_000,), priced, ())
    assert rec is not None and rec.plan.code == "big"
    assert recommend_plan((9_000,), priced, ()) is None


def test_nothing_to_recommend_from() -> None:
    assert recommend_plan((), PLANS, PACKAGES) is None
    assert recommend_plan((100,), (), PACKAGES) is None
    # No plan is big enough and nothing can be bought.
    assert recommend_plan((30_000,), PLANS, ()) is None


# -- packages --------------------------------------------------------------------------------


def test_cheapest_packages_edges() -> None:
    assert cheapest_packages(0, PACKAGES) == ()
    assert cheapest_packages(-5, PACKAGES) == ()
    assert cheapest_packages(1, ()) is None
    assert cheapest_packages(1, PACKAGES) == ((PACKAGES[0], 1),)
    assert cheapest_packages(10_000, PACKAGES) == ((PACKAGES[2], 1),)
    assert cheapest_packages(4_000, PACKAGES) == ((PACKAGES[1], 2),)
    with pytest.raises(ValueError):
        cheapest_packages(True, PACKAGES)


def _brute(need: int, packages: tuple[PackageOption, ...]) -> int:
    best = None
    limits = [need // p.credits + 1 for p in packages]
    for counts in itertools.product(*(range(n + 1) for n in limits)):
        credits = sum(c * p.credits for c, p in zip(counts, packages, strict=True))
        if credits >= need:
            cost = sum(c * p.price_cents for c, p in zip(counts, packages, strict=True))
            best = cost if best is None else min(best, cost)
    assert best is not None
    return best


@settings(max_examples=60, deadline=None)
@given(
    need=st.integers(1, 60),
    sizes=st.lists(st.tuples(st.integers(1, 25), st.integers(0, 200)), min_size=1, max_size=3,
                   unique_by=lambda t: t[0]),
)
def test_cheapest_packages_match_brute_force(need: int, sizes: list[tuple[int, int]]) -> None:
    packages = tuple(PackageOption(f"p{c}", f"{c} credits", c, price) for c, price in sizes)
    found = cheapest_packages(need, packages)
    assert found is not None
    assert sum(p.credits * n for p, n in found) >= need
    assert sum(p.price_cents * n for p, n in found) == _brute(need, packages)


def test_very_large_needs_are_bought_mostly_in_the_best_value_package() -> None:
    found = cheapest_packages(10**9 + 1, PACKAGES)
    assert found is not None
    assert sum(p.credits * n for p, n in found) >= 10**9 + 1
    assert found[0][0] is PACKAGES[2]


# -- inputs ----------------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["plan_left", "purchased", "refund", "allotment"])
def test_negative_balances_are_refused(field: str) -> None:
    with pytest.raises(ValueError, match="cannot be negative"):
        inputs(**{field: -1})


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="time zone"):
        inputs(at=datetime(2026, 11, 25))
    with pytest.raises(ValueError, match="whole number"):
        inputs(plan_left=True)
    with pytest.raises(ValueError, match="cannot be negative"):
        inputs(recent_daily=(1, -1))
    with pytest.raises(ValueError):
        PackageOption("p", "p", 0, 1)
    with pytest.raises(ValueError):
        PlanOption("p", "p", -1)


def test_times_in_other_zones_are_kept_in_utc() -> None:
    paris = timezone(timedelta(hours=1))
    f = inputs(at=NOW.astimezone(paris), next_reset=RESET.astimezone(paris))
    assert f.at.tzinfo is UTC and f.next_reset is not None and f.next_reset.tzinfo is UTC
    assert f.total == 1_300


@settings(max_examples=100, deadline=None)
@given(
    daily=st.lists(st.integers(0, 5_000), max_size=WINDOW_DAYS),
    plan=st.integers(0, 20_000),
    purchased=st.integers(0, 50_000),
    hours=st.integers(1, 31 * 24),
)
def test_the_forecast_is_consistent(daily: list[int], plan: int, purchased: int,
                                    hours: int) -> None:
    reset = NOW + timedelta(hours=hours)
    f: Forecast = forecast(replace(inputs(), recent_daily=tuple(daily), plan_left=plan,
                                   purchased=purchased, next_reset=reset))
    if f.run_out_at is not None:
        assert NOW <= f.run_out_at < reset
        assert f.unused_at_reset == 0
    if f.unused_at_reset is not None:
        assert 0 <= f.unused_at_reset <= plan
    if f.plan_used_up_at is not None:
        assert NOW <= f.plan_used_up_at < reset
    assert all(s and s[0].isupper() and s.endswith(".") for s in f.sentences())
    points = f.projection()
    assert all(value >= 0 for _t, value in points)
