"""Property tests (hypothesis) of the credits rules over many generated accounts."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from credits_desktop.domain.errors import InsufficientCredits, InsufficientPurchased
from credits_desktop.domain.grants import (
    PURCHASED_SOURCES,
    GrantSource,
    GrantView,
    balance,
    consumption_order,
    is_live,
    plan_charge,
    plan_purchased_removal,
    plan_refund,
)
from credits_desktop.domain.periods import next_period, period_containing, periods_from

NOW = datetime(2026, 6, 15, 12, tzinfo=UTC)

instants = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31), timezones=st.just(UTC)
)
billing_days = st.integers(min_value=1, max_value=31)


@st.composite
def grant_lists(draw: st.DrawFn) -> list[GrantView]:
    """Accounts of up to 8 grants: some expired, some expiring exactly at NOW, some live."""
    count = draw(st.integers(min_value=0, max_value=8))
    grants = []
    for gid in range(1, count + 1):
        source = draw(st.sampled_from(list(GrantSource)))
        if source is GrantSource.PLAN:
            offset = draw(st.integers(min_value=-3, max_value=3))
            expires_at: datetime | None = NOW + timedelta(days=offset)
        else:
            expires_at = None
        created_at = NOW - timedelta(days=draw(st.integers(min_value=0, max_value=3)))
        remaining = draw(st.integers(min_value=0, max_value=300))
        grants.append(GrantView(gid, source, remaining, expires_at, created_at))
    return grants


# --- periods ----------------------------------------------------------------------------


@given(billing_days, instants)
def test_period_containing_contains_and_neighbours_touch(day: int, at: datetime) -> None:
    period = period_containing(day, at)
    assert period.contains(at)
    assert period.start.time() == datetime.min.time()
    assert 28 <= (period.end - period.start).days <= 31
    after = next_period(day, period)
    assert after.start == period.end
    assert period_containing(day, period.end) == after
    assert period_containing(day, period.start - timedelta(microseconds=1)).end == period.start


@settings(max_examples=50)
@given(billing_days, st.integers(min_value=2000, max_value=2095))
def test_periods_tile_several_years(day: int, year: int) -> None:
    start = datetime(year, 1, 1, tzinfo=UTC)
    until = datetime(year + 4, 12, 31, tzinfo=UTC)
    periods = periods_from(day, period_containing(day, start), until)
    assert periods[0].contains(start)
    assert periods[-1].contains(until)
    for before, after in itertools.pairwise(periods):
        assert before.end == after.start
    assert len(periods) in (60, 61)


# --- charges ----------------------------------------------------------------------------


@given(grant_lists(), st.integers(min_value=0, max_value=3000))
def test_charge_draws_sum_to_amount_within_remaining(grants: list[GrantView], amount: int) -> None:
    by_id = {g.id: g for g in grants}
    available = balance(grants, NOW).total
    if amount > available:
        with pytest.raises(InsufficientCredits) as info:
            plan_charge(grants, amount, NOW)
        assert info.value.available == available
        return
    draws = plan_charge(grants, amount, NOW)
    assert sum(d.credits for d in draws) == amount
    assert len({d.grant_id for d in draws}) == len(draws)
    for d in draws:
        assert 0 < d.credits <= by_id[d.grant_id].remaining
        assert is_live(by_id[d.grant_id], NOW)
    # Every grant except the last one drawn is emptied, in consumption order.
    order = [g.id for g in consumption_order(grants, NOW)]
    assert [d.grant_id for d in draws] == order[: len(draws)]
    for d in draws[:-1]:
        assert d.credits == by_id[d.grant_id].remaining


@given(grant_lists(), st.integers(min_value=1, max_value=3000))
def test_charge_uses_expiring_credits_before_non_expiring(
    grants: list[GrantView], amount: int
) -> None:
    try:
        draws = plan_charge(grants, amount, NOW)
    except InsufficientCredits:
        return
    by_id = {g.id: g for g in grants}
    if any(by_id[d.grant_id].expires_at is None for d in draws):
        # Non-expiring credits are touched only once no live expiring credits are left.
        drawn = {d.grant_id: d.credits for d in draws}
        for g in grants:
            if g.expires_at is not None and is_live(g, NOW):
                assert drawn.get(g.id, 0) == g.remaining


# --- refunds ----------------------------------------------------------------------------


@given(grant_lists(), st.data())
def test_refund_sums_to_amount_and_never_exceeds_draws(
    grants: list[GrantView], data: st.DataObject
) -> None:
    # The charge happened in the past, when all grants were live; the refund is at NOW.
    charged_at = NOW - timedelta(days=5)
    total = balance(grants, charged_at).total
    if total == 0:
        return
    charge = data.draw(st.integers(min_value=1, max_value=total))
    by_id = {g.id: g for g in grants}
    draws = [(by_id[d.grant_id], d.credits) for d in plan_charge(grants, charge, charged_at)]
    amount = data.draw(st.integers(min_value=1, max_value=charge))
    placements = plan_refund(draws, amount, NOW)
    assert sum(p.credits for p in placements) == amount
    assert all(p.credits > 0 for p in placements)
    drawn = Counter({g.id: credits for g, credits in draws})
    for p in placements:
        if p.grant_id is not None:
            assert p.credits <= drawn[p.grant_id]
            assert is_live(by_id[p.grant_id], NOW)
    # At most one new refund grant, and it comes last.
    new = [i for i, p in enumerate(placements) if p.grant_id is None]
    assert new in ([], [len(placements) - 1])
    # The new grant holds exactly the credits of expired grants being returned.
    if new:
        expired_drawn = sum(c for g, c in draws if not is_live(g, NOW))
        assert 0 < placements[-1].credits <= expired_drawn


@given(grant_lists(), st.data())
def test_full_refund_restores_the_balance(grants: list[GrantView], data: st.DataObject) -> None:
    total = balance(grants, NOW).total
    if total == 0:
        return
    charge = data.draw(st.integers(min_value=1, max_value=total))
    by_id = {g.id: g for g in grants}
    draws = [(by_id[d.grant_id], d.credits) for d in plan_charge(grants, charge, NOW)]
    placements = plan_refund(draws, charge, NOW)
    # Refunded at the same instant, every source is live: credits go home exactly.
    assert all(p.grant_id is not None for p in placements)
    assert Counter({p.grant_id: p.credits for p in placements}) == Counter(
        {g.id: c for g, c in draws}
    )


# --- purchased removal ------------------------------------------------------------------


@given(grant_lists(), st.integers(min_value=1, max_value=3000))
def test_purchased_removal_never_below_zero(grants: list[GrantView], amount: int) -> None:
    by_id = {g.id: g for g in grants}
    purchased = balance(grants, NOW).purchased
    if amount > purchased:
        with pytest.raises(InsufficientPurchased) as info:
            plan_purchased_removal(grants, amount, NOW)
        assert info.value.available == purchased
        return
    draws = plan_purchased_removal(grants, amount, NOW)
    assert sum(d.credits for d in draws) == amount
    for d in draws:
        g = by_id[d.grant_id]
        assert g.source in PURCHASED_SOURCES
        assert 0 < d.credits <= g.remaining


# --- balance ----------------------------------------------------------------------------


@given(grant_lists(), instants)
def test_balance_parts_sum_to_live_remaining(grants: list[GrantView], at: datetime) -> None:
    b = balance(grants, at)
    assert b.total == sum(g.remaining for g in grants if is_live(g, at))
    assert min(b.plan, b.purchased, b.refund) >= 0
