"""Previews of refunds and adjustments: exact, and nothing written (SQLite and PostgreSQL).

Each preview is compared with what the real operation then does, so the dialog's
promise ("balance after", "goes back to …") is proven to be kept.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from credits_desktop.domain.permissions import Verdict
from credits_desktop.services.accounts import set_staff_active
from credits_desktop.services.errors import (
    AlreadyRefunded,
    InvalidInput,
    NotFound,
    PermissionDenied,
    RuleBroken,
)
from credits_desktop.services.previews import Balances as PreviewBalances
from credits_desktop.services.previews import preview_adjustment, preview_refund
from credits_desktop.services.refunds import RefundItem

from .factories import (
    FEB_START,
    JAN_START,
    World,
    adjust,
    assert_nothing_written,
    balances,
    charge,
    grants_of,
    open_account,
    plan_grant,
    refund,
)


def _now(b: object) -> PreviewBalances:
    return PreviewBalances(b.plan, b.purchased, b.refund)  # type: ignore[attr-defined]


def test_refund_preview_names_the_grant_and_equals_the_refund(world: World) -> None:
    c = charge(world, 40)
    before = balances(world.db, world.account_id)
    with assert_nothing_written(world.db):
        p = preview_refund(world.db, world.support, account_id=world.account_id,
                           items=[RefundItem(c.charge_id)], at=world.at(days=2))
    assert (p.verdict, p.credits, p.reason) == (Verdict.ALLOW, 40, "")
    assert p.applies_at_once and not p.needs_approval
    assert p.before == _now(before)
    assert p.after == PreviewBalances(before.plan + 40, before.purchased, before.refund)
    assert [(x.charge_id, x.grant_id, x.source, x.credits, x.new_grant)
            for x in p.placements] == [
        (c.charge_id, plan_grant(world, JAN_START).id, "plan", 40, False)]
    refund(world, world.support, c.charge_id, at=world.at(days=2))
    assert _now(balances(world.db, world.account_id)) == p.after


def test_refund_preview_of_expired_credits_shows_a_new_refund_grant(world: World) -> None:
    c = charge(world, 100, at=world.at(days=10))
    when = FEB_START + timedelta(days=4)
    grants_before = len(grants_of(world.db, world.account_id))
    p = preview_refund(world.db, world.support, account_id=world.account_id,
                       items=[RefundItem(c.charge_id)], at=when)
    # The preview rolled into February as the refund will, and then rolled it back.
    assert len(grants_of(world.db, world.account_id)) == grants_before
    assert [(x.source, x.credits, x.new_grant, x.expires_at) for x in p.placements] == [
        ("refund", 100, True, None)]
    assert p.before.plan == 500  # February's fresh allotment
    assert p.after.refund == p.before.refund + 100
    refund(world, world.support, c.charge_id, at=when)
    assert _now(balances(world.db, world.account_id)) == p.after


def test_refund_preview_says_when_approval_is_needed(world: World) -> None:
    ok = charge(world, 40, status="succeeded")
    p = preview_refund(world.db, world.support, account_id=world.account_id,
                       items=[RefundItem(ok.charge_id)], at=world.at(days=2))
    assert p.verdict is Verdict.REQUEST and p.needs_approval
    assert "did not fail" in p.reason
    # The effect if approved is still shown.
    assert p.after.total == p.before.total + 40
    big = charge(world, 600)
    p = preview_refund(world.db, world.finance, account_id=world.account_id,
                       items=[RefundItem(big.charge_id)], at=world.at(days=2))
    assert p.verdict is Verdict.REQUEST and "above 500" in p.reason
    p = preview_refund(world.db, world.manager, account_id=world.account_id,
                       items=[RefundItem(big.charge_id)], at=world.at(days=2))
    assert p.verdict is Verdict.ALLOW


def test_refund_preview_refuses_like_the_refund(world: World) -> None:
    c = charge(world, 40)
    free = charge(world, 0)
    other = open_account(world.db, world.platform, name="Other", email="o@x.test")
    theirs = charge(world, 10, account_id=other)
    small = charge(world, 5)
    refund(world, world.support, c.charge_id, at=world.at(days=2))

    def preview(*items: RefundItem) -> None:
        preview_refund(world.db, world.support, account_id=world.account_id,
                       items=list(items), at=world.at(days=3))

    with assert_nothing_written(world.db):
        with pytest.raises(AlreadyRefunded, match=r"already refunded .* by Sam Support"):
            preview(RefundItem(c.charge_id))
        with pytest.raises(RuleBroken, match="cost nothing"):
            preview(RefundItem(free.charge_id))
        with pytest.raises(RuleBroken, match="another account"):
            preview(RefundItem(theirs.charge_id))
        with pytest.raises(RuleBroken, match="more than it cost"):
            preview(RefundItem(small.charge_id, 6))
        with pytest.raises(NotFound):
            preview(RefundItem(10**9))
        with pytest.raises(InvalidInput, match="at least one charge"):
            preview()


def test_adjustment_preview_add_remove_and_limit(world: World) -> None:
    before = balances(world.db, world.account_id)
    with assert_nothing_written(world.db):
        add = preview_adjustment(world.db, world.finance, account_id=world.account_id,
                                 delta=300, at=world.at(days=2))
    assert add.verdict is Verdict.ALLOW
    assert add.after == PreviewBalances(before.plan, before.purchased + 300, before.refund)
    assert [(x.source, x.credits, x.new_grant) for x in add.placements] == [
        ("adjustment", 300, True)]
    assert add.removable == before.purchased
    adjust(world, world.finance, 300, at=world.at(days=2))
    assert _now(balances(world.db, world.account_id)) == add.after

    remove = preview_adjustment(world.db, world.finance, account_id=world.account_id,
                                delta=-200, at=world.at(days=3))
    assert remove.after.purchased == remove.before.purchased - 200
    assert all(x.credits < 0 for x in remove.placements)

    big = preview_adjustment(world.db, world.finance, account_id=world.account_id,
                             delta=5_000, at=world.at(days=3))
    assert big.verdict is Verdict.REQUEST and "above 1,000" in big.reason


def test_adjustment_preview_refusals(world: World) -> None:
    purchased = balances(world.db, world.account_id).purchased
    with assert_nothing_written(world.db):
        with pytest.raises(RuleBroken, match=f"{purchased}"):
            preview_adjustment(world.db, world.finance, account_id=world.account_id,
                               delta=-(purchased + 1), at=world.at(days=2))
        denied = preview_adjustment(world.db, world.support, account_id=world.account_id,
                                    delta=10, at=world.at(days=2))
        assert denied.verdict is Verdict.DENY and "finance" in denied.reason
        assert denied.after == denied.before and denied.placements == ()
        with pytest.raises(InvalidInput):
            preview_adjustment(world.db, world.finance, account_id=world.account_id,
                               delta="10", at=world.at(days=2))  # type: ignore[arg-type]
        zero = preview_adjustment(world.db, world.finance, account_id=world.account_id,
                                  delta=0, at=world.at(days=2))
        assert zero.removable == purchased and zero.after == zero.before


def test_preview_by_a_deactivated_staff_member_is_refused(world: World) -> None:
    set_staff_active(world.db, world.admin, username="sam", active=False)
    with pytest.raises(PermissionDenied, match="deactivated"):
        preview_adjustment(world.db, world.support, account_id=world.account_id,
                           delta=1, at=world.at(days=2))


def test_reversal_target_and_preview_of_a_refund(world: World) -> None:
    from credits_desktop.services.previews import preview_reversal, reversal_target
    from credits_desktop.services.reversals import reverse

    from .factories import key, ledger_of

    c = charge(world, 40)
    refund(world, world.support, c.charge_id, at=world.at(days=2))
    entry = ledger_of(world.db, world.account_id)[-1]
    target = reversal_target(world.db, entry.id)
    assert (target.credits, target.adjustment_id) == (40, None)
    assert target.description.startswith(f"refund #{target.refund_id} of 40 credits")
    with assert_nothing_written(world.db):
        p = preview_reversal(world.db, world.support, target, at=world.at(days=3))
    assert p.verdict is Verdict.ALLOW and p.after.total == p.before.total - 40
    reverse(world.db, world.support, reason="Refunded by mistake", reference="#1",
            idempotency_key=key(), refund_id=target.refund_id, at=world.at(days=3))
    assert _now(balances(world.db, world.account_id)) == p.after
    with pytest.raises(RuleBroken, match="already reversed"):
        preview_reversal(world.db, world.support, target, at=world.at(days=4))
    charge_entry = next(e for e in ledger_of(world.db, world.account_id) if e.kind == "charge")
    with pytest.raises(InvalidInput, match="Only refunds and adjustments"):
        reversal_target(world.db, charge_entry.id)
    with pytest.raises(NotFound):
        reversal_target(world.db, 10**9)


def test_reversal_preview_of_an_adjustment_follows_the_role(world: World) -> None:
    from credits_desktop.services.previews import preview_reversal, reversal_target

    from .factories import ledger_of

    adjust(world, world.finance, 300, at=world.at(days=2))
    target = reversal_target(world.db, ledger_of(world.db, world.account_id)[-1].id)
    assert target.adjustment_id is not None and "adding 300" in target.description
    p = preview_reversal(world.db, world.finance, target, at=world.at(days=3))
    assert p.verdict is Verdict.ALLOW and p.after.purchased == p.before.purchased - 300
    denied = preview_reversal(world.db, world.support, target, at=world.at(days=3))
    assert denied.verdict is Verdict.DENY and "finance" in denied.reason
