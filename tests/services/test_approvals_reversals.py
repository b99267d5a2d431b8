"""Approvals and reversals: the second pair of eyes, and undoing by compensation.

An approved request is applied in the approver's operation, atomically, or marked
failed with the reason when it no longer fits; nobody approves their own request.
A reversal takes back exactly what a refund or adjustment moved, once, never
below zero, with the same permission as the original action.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select

from credits_desktop.services.approvals import approve_request, reject_request
from credits_desktop.services.errors import (
    InvalidInput,
    PermissionDenied,
    RuleBroken,
)
from credits_desktop.services.operations import Actor
from credits_desktop.services.purchases import buy_package
from credits_desktop.services.refunds import RefundItem, refund_charges
from credits_desktop.store.models import (
    ApprovalRequest,
    LedgerEntry,
    Refund,
    Reversal,
    Setting,
)

from .factories import (
    FEB_START,
    JAN_START,
    World,
    adjust,
    approve,
    assert_invariants,
    assert_nothing_written,
    assert_plain_sentence,
    balances,
    charge,
    denied_audits,
    fetch,
    grants_of,
    key,
    ledger_of,
    plan_grant,
    purchase_grant,
    refund,
    refund_id_of,
    request_row,
    reverse_adjustment,
    reverse_refund,
    table_counts,
)

# -- approvals -------------------------------------------------------------------------


def test_approval_applies_the_request_in_the_approvers_operation(world: World) -> None:
    c = charge(world, 600)
    asked = refund(world, world.support, c.charge_id)
    counts = table_counts(world.db)
    result = approve(world, world.finance, asked.request_id)
    assert (result.status, result.credits, result.request_id) == ("applied", 600, asked.request_id)
    assert result.message == f"Request #{asked.request_id} approved. Refunded 600 credits on 1 " \
        "charge(s)."
    req = request_row(world, asked.request_id)
    assert (req.status, req.decided_by, req.result_operation_id) == (
        "approved", world.finance.staff_id, result.operation_id)
    assert req.decided_at == world.at(days=3)
    row = fetch(world.db, select(Refund))[0]
    assert row.operation_id == result.operation_id
    entries = [e for e in ledger_of(world.db, world.account_id) if e.kind == "refund"]
    assert {(e.operation_id, e.actor_id, e.reference) for e in entries} == {
        (result.operation_id, world.finance.staff_id, "#4411")}
    assert table_counts(world.db)["refunds"] == counts["refunds"] + 1
    assert balances(world.db, world.account_id).total == 1000


@pytest.mark.parametrize("role", ["admin", "finance"])
def test_nobody_approves_their_own_request(world: World, role: str) -> None:
    actor: Actor = getattr(world, role)
    asked = adjust(world, actor, 5000)
    before = denied_audits(world.db)
    with assert_nothing_written(world.db), pytest.raises(PermissionDenied) as err:
        approve(world, actor, asked.request_id)
    assert err.value.message == "You cannot approve your own request."
    assert denied_audits(world.db) == before + 1
    assert request_row(world, asked.request_id).status == "pending"
    other = world.manager
    assert approve(world, other, asked.request_id).status == "applied"
    assert balances(world.db, world.account_id).purchased == 5500


def test_support_cannot_approve(world: World) -> None:
    asked = adjust(world, world.finance, 5000)
    with assert_nothing_written(world.db), pytest.raises(PermissionDenied) as err:
        approve(world, world.support, asked.request_id)
    assert err.value.message == "Approving requests needs the finance, manager or admin role."


def test_a_decided_request_cannot_be_decided_again(world: World) -> None:
    asked = adjust(world, world.finance, 5000)
    approve(world, world.manager, asked.request_id)
    with assert_nothing_written(world.db), pytest.raises(RuleBroken) as err:
        approve(world, world.admin, asked.request_id)
    assert err.value.message == f"Request #{asked.request_id} was already approved by Max Manager."
    assert asked.request_id is not None
    with assert_nothing_written(world.db), pytest.raises(RuleBroken):
        reject_request(world.db, world.admin, request_id=asked.request_id, comment="late",
                       idempotency_key=key(), at=world.at(days=4))
    assert balances(world.db, world.account_id).purchased == 5500


def test_approved_request_that_no_longer_fits_fails_without_moving_credits(
    world: World,
) -> None:
    buy_package(world.db, world.platform, account_id=world.account_id, package_code="pack_2000",
                payment_reference="p2", idempotency_key=key(), at=world.at(hours=1))
    asked = adjust(world, world.finance, -1500, reason_code="chargeback")
    assert asked.status == "requested"
    charge(world, 1600, status="succeeded", at=world.at(days=2, hours=1))  # 500 plan + 1100
    counts, money = table_counts(world.db), balances(world.db, world.account_id)
    result = approve(world, world.manager, asked.request_id)
    reason = "Only 1,400 purchased credits can be removed; 1,500 were asked."
    assert result.status == "failed"
    assert result.message == f"Request #{asked.request_id} could not be applied: {reason}"
    req = request_row(world, asked.request_id)
    assert (req.status, req.failure_reason, req.decided_by) == (
        "failed", reason, world.manager.staff_id)
    assert balances(world.db, world.account_id) == money
    # Only the approver's operation is recorded; no ledger row, grant or adjustment.
    assert table_counts(world.db) == {**counts, "operations": counts["operations"] + 1}
    assert_invariants(world.db, full=True)


def test_approved_refund_request_fails_when_refunded_in_the_meantime(world: World) -> None:
    c = charge(world, 600)
    asked = refund(world, world.support, c.charge_id)
    refund(world, world.manager, c.charge_id, ticket="#77")
    counts = table_counts(world.db)
    result = approve(world, world.finance, asked.request_id)
    assert result.status == "failed"
    assert "was already refunded on 12 Jan 2026 by Max Manager (ticket #77)." in result.message
    assert table_counts(world.db) == {**counts, "operations": counts["operations"] + 1}
    assert fetch(world.db, select(Refund.credits)) == [600]


def test_reject_needs_a_comment_and_moves_nothing(world: World) -> None:
    asked = adjust(world, world.finance, 5000)
    assert asked.request_id is not None
    for comment in ("", "   "):
        with assert_nothing_written(world.db), pytest.raises(InvalidInput) as err:
            reject_request(world.db, world.manager, request_id=asked.request_id,
                           comment=comment, idempotency_key=key(), at=world.at(days=3))
        assert err.value.message == "A comment saying why is required."
    counts = table_counts(world.db)
    result = reject_request(world.db, world.manager, request_id=asked.request_id,
                            comment="No invoice attached.", idempotency_key=key(),
                            at=world.at(days=3))
    assert (result.status, result.message) == (
        "rejected", f"Request #{asked.request_id} was rejected.")
    req = request_row(world, asked.request_id)
    assert (req.status, req.decision_comment) == ("rejected", "No invoice attached.")
    assert table_counts(world.db) == {**counts, "operations": counts["operations"] + 1}
    assert balances(world.db, world.account_id).purchased == 500


# -- reversals -------------------------------------------------------------------------


def test_refund_reversal_takes_the_credits_back_where_they_were_placed(world: World) -> None:
    c = charge(world, 40)
    refund(world, world.support, c.charge_id)
    rid = refund_id_of(world, c.charge_id)
    result = reverse_refund(world, world.support, rid)
    assert (result.status, result.credits, result.message) == (
        "applied", -40, f"Reversed refund #{rid}: took back 40 credits.")
    entry = ledger_of(world.db, world.account_id)[-1]
    assert (entry.kind, entry.delta, entry.grant_id, entry.charge_id) == (
        "reversal", -40, plan_grant(world, JAN_START).id, c.charge_id)
    rev = fetch(world.db, select(Reversal))[0]
    assert (rev.refund_id, rev.adjustment_id, rev.credits) == (rid, None, -40)
    b = balances(world.db, world.account_id)
    # The charge still counts as handled: it had its one refund.
    assert (b.plan, b.unrefunded_failed) == (460, 0)


def test_refund_reversal_takes_back_from_the_refund_grant(world: World) -> None:
    c = charge(world, 100, at=world.at(days=10))
    refund(world, world.support, c.charge_id, at=FEB_START + timedelta(days=1))
    reverse_refund(world, world.support, refund_id_of(world, c.charge_id),
                   at=FEB_START + timedelta(days=2))
    b = balances(world.db, world.account_id)
    assert (b.plan, b.purchased, b.refund) == (500, 500, 0)


def test_adjustment_reversals_of_both_signs(world: World) -> None:
    added = adjust(world, world.finance, 300)
    removed = adjust(world, world.finance, -200, reason_code="correction")
    assert balances(world.db, world.account_id).purchased == 600
    first = reverse_adjustment(world, world.finance, added.details["adjustment_id"])
    assert (first.credits, balances(world.db, world.account_id).purchased) == (-300, 300)
    second = reverse_adjustment(world, world.finance, removed.details["adjustment_id"])
    assert (second.credits, balances(world.db, world.account_id).purchased) == (200, 500)
    assert second.message == (
        f"Reversed adjustment #{removed.details['adjustment_id']}: gave back 200 purchased "
        "credits.")
    assert grants_of(world.db, world.account_id)[-1].source == "adjustment"


def test_a_reversal_happens_only_once(world: World) -> None:
    added = adjust(world, world.finance, 300)
    reverse_adjustment(world, world.finance, added.details["adjustment_id"])
    with assert_nothing_written(world.db), pytest.raises(RuleBroken) as err:
        reverse_adjustment(world, world.admin, added.details["adjustment_id"],
                           at=world.at(days=9))
    assert err.value.message == "This was already reversed on 14 Jan 2026; it can be reversed " \
        "only once."


def test_a_reversal_never_takes_the_balance_below_zero(world: World) -> None:
    added = adjust(world, world.finance, 300)
    charge(world, 1100, status="succeeded", at=world.at(days=3))  # 200 purchased left
    with assert_nothing_written(world.db), pytest.raises(RuleBroken) as err:
        reverse_adjustment(world, world.finance, added.details["adjustment_id"])
    assert err.value.message == (
        "The 300 added credits have been spent; only 200 purchased credits are left to take "
        "back.")
    c = charge(world, 40, at=world.at(days=3))
    refund(world, world.support, c.charge_id, at=world.at(days=3))
    charge(world, 200, status="succeeded", at=world.at(days=3, hours=1))  # everything
    with assert_nothing_written(world.db), pytest.raises(RuleBroken) as spent:
        reverse_refund(world, world.support, refund_id_of(world, c.charge_id))
    assert spent.value.message.endswith(
        "The refunded credits have been spent, so the refund cannot be reversed.")
    assert_plain_sentence(spent.value.message)


def test_reversal_needs_the_permission_of_the_original(world: World) -> None:
    added = adjust(world, world.finance, 1500 - 1000)
    big = adjust(world, world.admin, 1500)
    assert big.status == "requested"
    big_applied = approve(world, world.finance, big.request_id)
    with assert_nothing_written(world.db), pytest.raises(PermissionDenied):
        reverse_adjustment(world, world.support, added.details["adjustment_id"])
    asked = reverse_adjustment(world, world.finance, big_applied.details["adjustment_id"])
    assert asked.status == "requested"
    assert balances(world.db, world.account_id).purchased == 2500
    assert approve(world, world.manager, asked.request_id, at=world.at(days=5)).credits == -1500
    assert balances(world.db, world.account_id).purchased == 1000
    c = charge(world, 600)
    refund(world, world.manager, c.charge_id)
    assert reverse_refund(world, world.support, refund_id_of(world, c.charge_id)).status == \
        "requested"
    assert_invariants(world.db, full=True)


def test_approval_of_several_charges_is_all_or_nothing(world: World) -> None:
    # One charge did not fail, so support's refund of both becomes one request.
    a, b = charge(world, 40, status="succeeded"), charge(world, 300)
    asked = refund_charges(world.db, world.support, account_id=world.account_id,
                           items=[RefundItem(a.charge_id), RefundItem(b.charge_id)],
                           reason_code="failed_generation", ticket="#8", idempotency_key=key(),
                           at=world.at(days=1))
    assert (asked.status, asked.credits) == ("requested", 340)
    refund(world, world.manager, b.charge_id, ticket="#9")
    counts = table_counts(world.db)
    result = approve(world, world.finance, asked.request_id)
    assert result.status == "failed"
    # The charge that could still be refunded was not refunded on its own.
    assert fetch(world.db, select(Refund.charge_id)) == [b.charge_id]
    assert table_counts(world.db) == {**counts, "operations": counts["operations"] + 1}
    assert balances(world.db, world.account_id).total == 1000 - 40


def test_the_refund_limit_applies_to_the_whole_refund(world: World) -> None:
    # "Up to 500 credits per refund" caps what one refund gives back in all: two
    # charges of 400 and 300 refunded together need a second pair of eyes.
    a, b = charge(world, 400), charge(world, 300)
    asked = refund_charges(world.db, world.support, account_id=world.account_id,
                           items=[RefundItem(a.charge_id), RefundItem(b.charge_id)],
                           reason_code="failed_generation", ticket="#8", idempotency_key=key(),
                           at=world.at(days=1))
    assert (asked.status, asked.credits) == ("requested", 700)
    alone = refund_charges(world.db, world.support, account_id=world.account_id,
                           items=[RefundItem(a.charge_id)], reason_code="failed_generation",
                           ticket="#9", idempotency_key=key(), at=world.at(days=1))
    assert (alone.status, alone.credits) == ("applied", 400)


def test_approval_keeps_the_comment_and_signs_with_the_approver(world: World) -> None:
    asked = adjust(world, world.finance, 1500, reference="INV-77")
    assert asked.request_id is not None
    result = approve_request(world.db, world.manager, request_id=asked.request_id,
                             comment="Invoice checked.", idempotency_key=key(),
                             at=world.at(days=3))
    req = request_row(world, asked.request_id)
    assert (req.decision_comment, req.decided_by) == ("Invoice checked.", world.manager.staff_id)
    entry = ledger_of(world.db, world.account_id)[-1]
    assert (entry.kind, entry.delta, entry.actor_id, entry.operation_id, entry.reference) == (
        "adjustment", 1500, world.manager.staff_id, result.operation_id, "INV-77")
    # The stored request is the validated payload: what is approved is what was asked.
    assert json.loads(req.payload) == {"account_id": world.account_id, "delta": 1500,
                                       "reason_code": "manual_sale", "reference": "INV-77",
                                       "note": None}


def test_approval_in_a_later_period_rolls_the_account_first(world: World) -> None:
    c = charge(world, 600, at=world.at(days=1))  # 500 plan (January) + 100 purchased
    asked = refund(world, world.support, c.charge_id)
    result = approve(world, world.finance, asked.request_id, at=FEB_START + timedelta(days=2))
    assert result.status == "applied"
    b = balances(world.db, world.account_id)
    # January's credits came back as refund credits, the purchased ones where they were.
    assert (b.plan, b.purchased, b.refund) == (500, 500, 500)
    assert_invariants(world.db, full=True)


def test_limits_set_by_an_admin_apply(world: World) -> None:
    world.db.write(lambda s: s.add(Setting(
        key="limits", value=json.dumps({"refund_limit": 100, "adjust_limit": 50}))))
    c = charge(world, 150)
    assert refund(world, world.support, c.charge_id).status == "requested"
    assert adjust(world, world.finance, 51).status == "requested"
    assert adjust(world, world.finance, 50).status == "applied"
    small = charge(world, 100)
    assert refund(world, world.support, small.charge_id).status == "applied"


def test_a_rejected_request_cannot_then_be_approved(world: World) -> None:
    asked = adjust(world, world.finance, 5000)
    assert asked.request_id is not None
    reject_request(world.db, world.admin, request_id=asked.request_id, comment="Duplicate.",
                   idempotency_key=key(), at=world.at(days=3))
    with assert_nothing_written(world.db), pytest.raises(RuleBroken) as err:
        approve(world, world.manager, asked.request_id)
    assert err.value.message == f"Request #{asked.request_id} was already rejected by Ada Admin."


def test_the_requester_cannot_reject_their_own_request_either(world: World) -> None:
    asked = adjust(world, world.finance, 5000)
    assert asked.request_id is not None
    before = denied_audits(world.db)
    with assert_nothing_written(world.db), pytest.raises(PermissionDenied):
        reject_request(world.db, world.finance, request_id=asked.request_id, comment="Oops.",
                       idempotency_key=key(), at=world.at(days=3))
    assert denied_audits(world.db) == before + 1


def test_reversal_of_a_partial_refund_takes_back_only_the_refunded_part(world: World) -> None:
    c = charge(world, 40)
    refund(world, world.support, c.charge_id, credits=15)
    result = reverse_refund(world, world.support, refund_id_of(world, c.charge_id))
    assert result.credits == -15
    assert balances(world.db, world.account_id).plan == 460


def test_reversal_of_a_split_refund_takes_back_from_both_grants(world: World) -> None:
    c = charge(world, 600, at=world.at(days=1))
    refund(world, world.manager, c.charge_id, at=FEB_START + timedelta(days=1))
    assert balances(world.db, world.account_id).refund == 500
    reverse_refund(world, world.manager, refund_id_of(world, c.charge_id),
                   at=FEB_START + timedelta(days=2))
    b = balances(world.db, world.account_id)
    assert (b.plan, b.purchased, b.refund) == (500, 400, 0)
    takes = {(e.grant_id, e.delta) for e in ledger_of(world.db, world.account_id)
             if e.kind == "reversal"}
    refund_grant = grants_of(world.db, world.account_id)[-1]
    assert refund_grant.source == "refund"
    assert takes == {(purchase_grant(world).id, -100), (refund_grant.id, -500)}


def test_reversal_after_the_refunded_grant_expired_takes_live_credits(world: World) -> None:
    c = charge(world, 40)
    refund(world, world.support, c.charge_id)  # back into January's plan grant
    reverse_refund(world, world.support, refund_id_of(world, c.charge_id),
                   at=FEB_START + timedelta(days=1))
    feb = plan_grant(world, FEB_START)
    assert feb.remaining == 460
    assert plan_grant(world, JAN_START).remaining == 0


def test_a_reversal_request_that_no_longer_fits_fails(world: World) -> None:
    added = adjust(world, world.admin, 800)
    asked = reverse_adjustment(world, world.finance,
                               added.details["adjustment_id"])
    assert asked.status == "applied"  # 800 is within finance's limit
    big = adjust(world, world.admin, 1200)
    big_done = approve(world, world.finance, big.request_id)
    reversal = reverse_adjustment(world, world.finance, big_done.details["adjustment_id"])
    assert reversal.status == "requested"
    charge(world, 1500, status="succeeded", at=world.at(days=4, hours=1))  # 700 purchased left
    counts = table_counts(world.db)
    result = approve(world, world.manager, reversal.request_id, at=world.at(days=5))
    assert result.status == "failed"
    assert result.message.endswith(
        "The 1,200 added credits have been spent; only 700 purchased credits are left to "
        "take back.")
    assert table_counts(world.db) == {**counts, "operations": counts["operations"] + 1}
    assert fetch(world.db, select(Reversal.adjustment_id)) == [added.details["adjustment_id"]]


def test_approving_refund_above_the_limit_needs_an_approver_not_the_requester(
    world: World,
) -> None:
    c = charge(world, 600)
    asked = refund(world, world.finance, c.charge_id)
    assert asked.status == "requested"
    with pytest.raises(PermissionDenied):
        approve(world, world.finance, asked.request_id)
    assert approve(world, world.admin, asked.request_id).status == "applied"
    assert fetch(world.db, select(ApprovalRequest.status)) == ["approved"]
    placed = fetch(world.db, select(LedgerEntry.delta).where(LedgerEntry.kind == "refund"))
    assert sorted(placed) == [100, 500]  # back to the purchased and the plan grant
