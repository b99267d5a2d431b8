"""Tests of grants: liveness, consumption order, charges, refunds, removals, balances."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from credits_desktop.domain.errors import InsufficientCredits, InsufficientPurchased
from credits_desktop.domain.grants import (
    PURCHASED_SOURCES,
    Balance,
    Draw,
    GrantSource,
    GrantView,
    Placement,
    balance,
    consumption_order,
    is_live,
    plan_charge,
    plan_purchased_removal,
    plan_refund,
)

NOW = datetime(2026, 3, 10, 12, tzinfo=UTC)
T0 = datetime(2026, 1, 1, tzinfo=UTC)
PERIOD_END = datetime(2026, 3, 31, tzinfo=UTC)


def grant(
    gid: int,
    source: GrantSource = GrantSource.PURCHASE,
    remaining: int = 100,
    expires_at: datetime | None = None,
    created_at: datetime = T0,
) -> GrantView:
    return GrantView(gid, source, remaining, expires_at, created_at)


def plan(gid: int, remaining: int, expires_at: datetime = PERIOD_END) -> GrantView:
    return grant(gid, GrantSource.PLAN, remaining, expires_at)


# --- GrantSource / GrantView ------------------------------------------------------------


def test_sources_and_purchased_sources() -> None:
    assert [s.value for s in GrantSource] == ["plan", "purchase", "refund", "adjustment"]
    assert frozenset({GrantSource.PURCHASE, GrantSource.ADJUSTMENT}) == PURCHASED_SOURCES
    assert isinstance(PURCHASED_SOURCES, frozenset)


def test_grant_view_coerces_source_text() -> None:
    g = GrantView(1, "plan", 5, PERIOD_END, T0)  # type: ignore[arg-type]
    assert g.source is GrantSource.PLAN


def test_grant_view_rejects_bad_values() -> None:
    with pytest.raises(ValueError):
        GrantView(1, "gift", 5, None, T0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="negative"):
        grant(1, remaining=-1)
    with pytest.raises(ValueError, match="time zone"):
        grant(1, expires_at=datetime(2026, 3, 31))
    with pytest.raises(ValueError, match="time zone"):
        grant(1, created_at=datetime(2026, 1, 1))


def test_grant_view_normalises_to_utc() -> None:
    plus1 = timezone(timedelta(hours=1))
    g = grant(1, expires_at=datetime(2026, 3, 31, 1, tzinfo=plus1))
    assert g.expires_at == PERIOD_END
    assert g.expires_at is not None and g.expires_at.tzinfo is UTC


# --- is_live ----------------------------------------------------------------------------


def test_is_live_expiry_is_exclusive() -> None:
    g = plan(1, 10)
    assert is_live(g, PERIOD_END - timedelta(microseconds=1))
    assert not is_live(g, PERIOD_END)  # expires_at == at: already gone
    assert not is_live(g, PERIOD_END + timedelta(days=1))


def test_non_expiring_grants_are_always_live() -> None:
    g = grant(1, expires_at=None)
    assert is_live(g, datetime(9999, 1, 1, tzinfo=UTC))


def test_is_live_rejects_naive() -> None:
    with pytest.raises(ValueError):
        is_live(plan(1, 10), datetime(2026, 3, 1))


def test_is_live_ignores_zero_remaining() -> None:
    # Liveness is about expiry; an empty grant is still live (it can receive refunds).
    assert is_live(plan(1, 0), NOW)


# --- consumption_order ------------------------------------------------------------------


def test_consumption_order_soonest_expiry_first_non_expiring_last() -> None:
    purchased = grant(1, GrantSource.PURCHASE, 50, None)
    refund = grant(2, GrantSource.REFUND, 50, None, created_at=T0 - timedelta(days=1))
    late_plan = plan(3, 10, PERIOD_END + timedelta(days=30))
    soon_plan = plan(4, 10, PERIOD_END)
    order = consumption_order([purchased, refund, late_plan, soon_plan], NOW)
    assert [g.id for g in order] == [4, 3, 2, 1]


def test_consumption_order_ties_by_created_at_then_id() -> None:
    a = grant(5, GrantSource.PURCHASE, 10, None, created_at=T0 + timedelta(hours=1))
    b = grant(9, GrantSource.ADJUSTMENT, 10, None, created_at=T0)
    c = grant(2, GrantSource.REFUND, 10, None, created_at=T0 + timedelta(hours=1))
    d = grant(7, GrantSource.PLAN, 10, PERIOD_END, created_at=T0 + timedelta(hours=2))
    e = grant(3, GrantSource.PLAN, 10, PERIOD_END, created_at=T0 + timedelta(hours=2))
    f = grant(8, GrantSource.PLAN, 10, PERIOD_END, created_at=T0)
    order = consumption_order([a, b, c, d, e, f], NOW)
    assert [g.id for g in order] == [8, 3, 7, 9, 2, 5]


def test_consumption_order_drops_expired_and_empty() -> None:
    expired = plan(1, 10, NOW)  # expires exactly now
    empty = grant(2, remaining=0)
    live = grant(3, remaining=1)
    assert consumption_order([expired, empty, live], NOW) == [live]


def test_consumption_order_does_not_depend_on_input_order() -> None:
    grants = [grant(i, remaining=1, created_at=T0 + timedelta(minutes=i % 3)) for i in range(6)]
    forward = consumption_order(grants, NOW)
    assert consumption_order(list(reversed(grants)), NOW) == forward


def test_consumption_order_accepts_iterators() -> None:
    assert [g.id for g in consumption_order(iter([grant(1)]), NOW)] == [1]


# --- plan_charge ------------------------------------------------------------------------


def test_charge_draws_plan_credits_first() -> None:
    grants = [grant(1, remaining=500), plan(2, 100)]
    assert plan_charge(grants, 30, NOW) == [Draw(2, 30)]


def test_charge_spills_over_into_purchased() -> None:
    grants = [grant(1, remaining=500), plan(2, 100)]
    assert plan_charge(grants, 130, NOW) == [Draw(2, 100), Draw(1, 30)]


def test_charge_exactly_the_balance() -> None:
    grants = [grant(1, remaining=500), plan(2, 100), grant(3, GrantSource.REFUND, 7)]
    draws = plan_charge(grants, 607, NOW)
    assert sum(d.credits for d in draws) == 607
    assert draws[0] == Draw(2, 100)


def test_charge_skips_expired_plan_credits() -> None:
    grants = [plan(1, 100, NOW), grant(2, remaining=50)]
    assert plan_charge(grants, 10, NOW) == [Draw(2, 10)]


def test_charge_larger_than_balance_is_refused() -> None:
    grants = [plan(1, 100, NOW), plan(2, 70), grant(3, remaining=50)]
    with pytest.raises(InsufficientCredits) as info:
        plan_charge(grants, 121, NOW)
    assert (info.value.available, info.value.requested) == (120, 121)
    assert str(info.value) == "The account has only 120 credits available; this needs 121."


def test_charge_on_empty_account_is_refused() -> None:
    with pytest.raises(InsufficientCredits):
        plan_charge([], 1, NOW)


def test_charge_of_zero_is_empty() -> None:
    assert plan_charge([], 0, NOW) == []
    assert plan_charge([grant(1)], 0, NOW) == []


@pytest.mark.parametrize("amount", [-1, -100])
def test_negative_charge_is_a_value_error(amount: int) -> None:
    with pytest.raises(ValueError):
        plan_charge([grant(1)], amount, NOW)


def test_charge_rejects_non_int_and_naive() -> None:
    with pytest.raises(ValueError):
        plan_charge([grant(1)], 1.5, NOW)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        plan_charge([grant(1)], True, NOW)
    with pytest.raises(ValueError):
        plan_charge([grant(1)], 1, datetime(2026, 3, 1))


def test_charge_never_draws_from_empty_grants() -> None:
    grants = [plan(1, 0), grant(2, remaining=5)]
    assert plan_charge(grants, 5, NOW) == [Draw(2, 5)]


# --- plan_refund ------------------------------------------------------------------------


def test_full_refund_to_live_grants_in_reverse_draw_order() -> None:
    p, b = plan(1, 0), grant(2, remaining=0)
    placements = plan_refund([(p, 100), (b, 30)], 130, NOW)
    assert placements == [Placement(2, 30), Placement(1, 100)]


def test_partial_refund_returns_longest_lived_credits_first() -> None:
    p, b = plan(1, 0), grant(2, remaining=0)
    assert plan_refund([(p, 100), (b, 30)], 20, NOW) == [Placement(2, 20)]
    assert plan_refund([(p, 100), (b, 30)], 50, NOW) == [Placement(2, 30), Placement(1, 20)]


def test_refund_of_expired_plan_credits_becomes_refund_credits() -> None:
    expired = plan(1, 0, expires_at=NOW)  # expired exactly at the refund instant
    b = grant(2, remaining=0)
    placements = plan_refund([(expired, 100), (b, 30)], 130, NOW)
    assert placements == [Placement(2, 30), Placement(None, 100)]


def test_partial_refund_reaching_an_expired_grant() -> None:
    expired = plan(1, 0, expires_at=NOW - timedelta(days=1))
    b = grant(2, remaining=0)
    assert plan_refund([(expired, 100), (b, 30)], 45, NOW) == [
        Placement(2, 30),
        Placement(None, 15),
    ]


def test_partial_refund_not_reaching_the_expired_grant() -> None:
    expired = plan(1, 0, expires_at=NOW - timedelta(days=1))
    b = grant(2, remaining=0)
    assert plan_refund([(expired, 100), (b, 30)], 30, NOW) == [Placement(2, 30)]


def test_expired_credits_merge_into_one_placement_last() -> None:
    old1 = plan(1, 0, expires_at=NOW - timedelta(days=40))
    old2 = plan(2, 0, expires_at=NOW - timedelta(days=10))
    live_plan = plan(3, 0)
    b = grant(4, remaining=0)
    draws = [(old1, 10), (old2, 20), (live_plan, 30), (b, 40)]
    assert plan_refund(draws, 100, NOW) == [
        Placement(4, 40),
        Placement(3, 30),
        Placement(None, 30),
    ]


def test_all_expired_refund_is_one_new_grant() -> None:
    old1 = plan(1, 0, expires_at=NOW - timedelta(days=40))
    old2 = plan(2, 0, expires_at=NOW - timedelta(days=10))
    assert plan_refund([(old1, 10), (old2, 20)], 25, NOW) == [Placement(None, 25)]


def test_refund_skips_zero_draws_and_makes_no_zero_placements() -> None:
    p, b = plan(1, 0), grant(2, remaining=0)
    placements = plan_refund([(p, 10), (b, 0)], 10, NOW)
    assert placements == [Placement(1, 10)]
    assert all(x.credits > 0 for x in placements)


def test_refund_to_grant_live_until_just_after_now() -> None:
    p = plan(1, 0, expires_at=NOW + timedelta(microseconds=1))
    assert plan_refund([(p, 5)], 5, NOW) == [Placement(1, 5)]


@pytest.mark.parametrize("amount", [0, -1, 131])
def test_refund_amount_must_be_positive_and_at_most_the_charge(amount: int) -> None:
    draws = [(plan(1, 0), 100), (grant(2, remaining=0), 30)]
    with pytest.raises(ValueError):
        plan_refund(draws, amount, NOW)


def test_refund_of_a_charge_that_drew_nothing_is_refused() -> None:
    with pytest.raises(ValueError):
        plan_refund([], 1, NOW)


def test_refund_rejects_negative_draws_and_naive_time() -> None:
    with pytest.raises(ValueError):
        plan_refund([(plan(1, 0), -5), (grant(2), 10)], 5, NOW)
    with pytest.raises(ValueError):
        plan_refund([(plan(1, 0), 5)], 5, datetime(2026, 3, 1))


# --- plan_purchased_removal -------------------------------------------------------------


def test_removal_touches_only_purchased_and_adjustment_grants_oldest_first() -> None:
    grants = [
        plan(1, 1000),
        grant(2, GrantSource.REFUND, 1000, created_at=T0 - timedelta(days=9)),
        grant(3, GrantSource.PURCHASE, 30, created_at=T0 + timedelta(days=2)),
        grant(4, GrantSource.ADJUSTMENT, 20, created_at=T0 + timedelta(days=1)),
        grant(5, GrantSource.PURCHASE, 50, created_at=T0 + timedelta(days=1)),
    ]
    assert plan_purchased_removal(grants, 80, NOW) == [Draw(4, 20), Draw(5, 50), Draw(3, 10)]


def test_removal_of_all_purchased_credits() -> None:
    grants = [grant(1, remaining=30), grant(2, GrantSource.ADJUSTMENT, 50)]
    assert plan_purchased_removal(grants, 80, NOW) == [Draw(1, 30), Draw(2, 50)]


def test_removal_never_below_zero() -> None:
    grants = [plan(1, 1000), grant(2, remaining=30), grant(3, GrantSource.ADJUSTMENT, 50)]
    with pytest.raises(InsufficientPurchased) as info:
        plan_purchased_removal(grants, 100, NOW)
    assert (info.value.available, info.value.requested) == (80, 100)
    assert str(info.value) == "Only 80 purchased credits can be removed; 100 were asked."


def test_removal_from_account_without_purchases() -> None:
    with pytest.raises(InsufficientPurchased) as info:
        plan_purchased_removal([plan(1, 1000), grant(2, GrantSource.REFUND, 9)], 1, NOW)
    assert info.value.available == 0


def test_removal_skips_empty_grants() -> None:
    grants = [grant(1, remaining=0), grant(2, remaining=5, created_at=T0 + timedelta(days=1))]
    assert plan_purchased_removal(grants, 5, NOW) == [Draw(2, 5)]


@pytest.mark.parametrize("amount", [0, -1])
def test_removal_amount_must_be_positive(amount: int) -> None:
    with pytest.raises(ValueError):
        plan_purchased_removal([grant(1)], amount, NOW)


def test_removal_rejects_naive_time() -> None:
    with pytest.raises(ValueError):
        plan_purchased_removal([grant(1)], 1, datetime(2026, 3, 1))


# --- balance ----------------------------------------------------------------------------


def test_balance_by_kind_live_only() -> None:
    grants = [
        plan(1, 100),
        plan(2, 999, expires_at=NOW),  # expired exactly now
        grant(3, GrantSource.PURCHASE, 40),
        grant(4, GrantSource.ADJUSTMENT, 10),
        grant(5, GrantSource.REFUND, 7),
    ]
    assert balance(grants, NOW) == Balance(plan=100, purchased=50, refund=7)
    assert balance(grants, NOW).total == 157


def test_balance_just_before_expiry_counts_plan_credits() -> None:
    grants = [plan(1, 100, expires_at=NOW + timedelta(microseconds=1))]
    assert balance(grants, NOW) == Balance(100, 0, 0)


def test_balance_of_no_grants_is_zero() -> None:
    assert balance([], NOW) == Balance(0, 0, 0)
    assert balance([], NOW).total == 0


def test_balance_rejects_naive_time() -> None:
    with pytest.raises(ValueError):
        balance([], datetime(2026, 3, 1))


def test_balance_agrees_with_charge_limit() -> None:
    grants = [plan(1, 100), grant(2, remaining=40), grant(3, GrantSource.REFUND, 7)]
    total = balance(grants, NOW).total
    assert sum(d.credits for d in plan_charge(grants, total, NOW)) == total
    with pytest.raises(InsufficientCredits):
        plan_charge(grants, total + 1, NOW)
