"""Behaviour of every write service on a real database (SQLite and PostgreSQL).

Charges, package purchases, period roll-overs, refunds, adjustments, accounts and
staff, and the idempotency of every staff write (approvals and reversals are in
``test_approvals_reversals.py``). Refusals are checked to write nothing; every test
ends by checking that the cached balances still equal the ledger.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, select, update
from sqlalchemy.orm import Session

from credits_desktop.services.accounts import (
    create_account,
    create_staff,
    set_staff_active,
    sign_in,
)
from credits_desktop.services.adjustments import adjust_purchased
from credits_desktop.services.approvals import approve_request, reject_request
from credits_desktop.services.book import (
    AccountBook,
    lock_accounts,
    open_books,
    roll_books,
)
from credits_desktop.services.charges import record_charge
from credits_desktop.services.errors import (
    AlreadyRefunded,
    IdempotencyConflict,
    InvalidInput,
    NotFound,
    PermissionDenied,
    RuleBroken,
)
from credits_desktop.services.operations import Actor, system_actor_id
from credits_desktop.services.periods import roll_periods
from credits_desktop.services.purchases import buy_package
from credits_desktop.services.refunds import RefundItem, refund_charges
from credits_desktop.services.results import ChargeResult, OperationResult, RollResult
from credits_desktop.services.reversals import reverse
from credits_desktop.store.models import (
    Account,
    Adjustment,
    ApprovalRequest,
    AuditEvent,
    CreditPackage,
    Feature,
    FeaturePrice,
    LedgerEntry,
    Operation,
    Refund,
    Staff,
)

from .factories import (
    FEB_START,
    JAN_START,
    MAR_START,
    Balances,
    World,
    adjust,
    assert_invariants,
    assert_nothing_written,
    balances,
    charge,
    denied_audits,
    fetch,
    grants_of,
    key,
    ledger_of,
    open_account,
    open_world,
    plan_grant,
    purchase_grant,
    refund,
    request_row,
    rows,
    table_counts,
)

# -- record_charge ---------------------------------------------------------------------


def test_charge_price_per_model_and_default(world: World) -> None:
    def cost(model: str | None, feature: str = "ad_image") -> int:
        return charge(world, None, status="succeeded", model=model, feature_code=feature).credits

    assert cost(None) == 40
    assert cost("imagen-ultra") == 60
    assert cost("flux-fast") == 25
    assert cost("a-model-without-its-own-price") == 40
    assert cost(None, "url_brief") == 8
    assert balances(world.db, world.account_id).plan == 500 - (40 + 60 + 25 + 40 + 8)


def test_charge_uses_the_price_valid_at_its_time(world: World) -> None:
    world.db.write(lambda s: s.add(FeaturePrice(
        feature_code="ad_image", model=None, credits=50, valid_from=world.at(days=1))))
    assert charge(world, None, at=world.at(hours=23)).credits == 40
    assert charge(world, None, at=world.at(days=1)).credits == 50
    # A model's own price still wins over a newer default price.
    assert charge(world, None, at=world.at(days=2), model="imagen-ultra").credits == 60


def test_charge_draws_plan_credits_first_then_purchased(world: World) -> None:
    plan, bought = plan_grant(world, JAN_START), purchase_grant(world)
    first = charge(world, 450, status="succeeded")
    assert first.draws == ((plan.id, 450),)
    assert balances(world.db, world.account_id).plan == 50
    second = charge(world, 100, status="succeeded")
    assert second.draws == ((plan.id, 50), (bought.id, 50))
    b = balances(world.db, world.account_id)
    assert (b.plan, b.purchased, b.refund) == (0, 450, 0)
    entries = [e for e in ledger_of(world.db, world.account_id) if e.charge_id == second.charge_id]
    assert [(e.grant_id, e.delta, e.kind) for e in entries] == [
        (plan.id, -50, "charge"), (bought.id, -50, "charge")
    ]
    # Usage is keyed by the platform's charge id, not by a staff operation.
    assert all(e.operation_id is None and e.actor_id == world.platform.staff_id
               for e in entries)


def test_charge_refused_when_unaffordable_writes_nothing(world: World) -> None:
    with assert_nothing_written(world.db), pytest.raises(RuleBroken) as err:
        charge(world, 1001)
    assert err.value.message == "The account has only 1,000 credits available; this needs 1,001."
    assert charge(world, 1000).credits == 1000
    assert balances(world.db, world.account_id).total == 0
    with assert_nothing_written(world.db), pytest.raises(RuleBroken):
        charge(world, 1)


def test_charge_replay_of_the_same_external_id_records_it_once(world: World) -> None:
    def send() -> ChargeResult:
        return record_charge(world.db, world.platform, account_id=world.account_id,
                             feature_code="ad_image", external_id="plat-77",
                             occurred_at=world.at(hours=1), status="failed",
                             failure_reason="timeout")

    first = send()
    with assert_nothing_written(world.db):
        again = send()
    assert again == ChargeResult(first.charge_id, world.account_id, 40, (), replayed=True)
    assert balances(world.db, world.account_id).unrefunded_failed == 1


def test_charge_same_external_id_with_different_data_conflicts(world: World) -> None:
    other = open_account(world.db, world.platform, name="Other Co", email="o@other.test")
    sent: dict[str, Any] = {"account_id": world.account_id, "feature_code": "ad_image",
                            "credits": 40, "status": "failed", "model": None,
                            "occurred_at": world.at(hours=1)}
    record_charge(world.db, world.platform, external_id="plat-1", **sent)
    changes: list[dict[str, Any]] = [
        {"credits": 41}, {"feature_code": "url_brief"}, {"status": "succeeded"},
        {"account_id": other}, {"model": "flux-fast"}, {"occurred_at": world.at(hours=2)},
    ]
    for change in changes:
        with assert_nothing_written(world.db), pytest.raises(IdempotencyConflict) as err:
            record_charge(world.db, world.platform, external_id="plat-1", **{**sent, **change})
        assert err.value.message == (
            "Charge id 'plat-1' was already recorded for a different use.")


def test_charge_of_a_disabled_feature_is_refused(world: World) -> None:
    with assert_nothing_written(world.db), pytest.raises(RuleBroken) as err:
        charge(world, None, feature_code="asset_tagging")
    assert err.value.message == "Asset tagging is not available yet."
    # Once switched on, it is charged at its price.
    world.db.write(lambda s: s.execute(update(Feature).where(Feature.code == "asset_tagging")
                                       .values(enabled=True)))
    assert charge(world, None, feature_code="asset_tagging").credits == 2


def test_charge_of_a_suspended_account_is_refused(world: World) -> None:
    world.db.write(lambda s: s.execute(update(Account).values(status="suspended")))
    with assert_nothing_written(world.db), pytest.raises(RuleBroken) as err:
        charge(world, 10)
    assert err.value.message == (
        f"Account #{world.account_id} is suspended; it cannot be charged."
    )


def test_zero_cost_failed_charge_is_not_an_unrefunded_failure(world: World) -> None:
    result = charge(world, 0)
    assert (result.credits, result.draws) == (0, ())
    assert balances(world.db, world.account_id).unrefunded_failed == 0


def test_staff_cannot_record_usage(world: World) -> None:
    before = denied_audits(world.db)
    with assert_nothing_written(world.db), pytest.raises(PermissionDenied) as err:
        record_charge(world.db, world.support, account_id=world.account_id,
                      feature_code="ad_image", external_id="x-1",
                      occurred_at=world.at(hours=1))
    assert err.value.message == "Usage is recorded by the ad platform, not by staff."
    assert denied_audits(world.db) == before + 1


# -- buy_package -----------------------------------------------------------------------


def test_buy_package_adds_credits_that_never_expire(db_url: str) -> None:
    with open_world(db_url, package_code=None) as w:
        result = buy_package(w.db, w.platform, account_id=w.account_id,
                             package_code="pack_2000", payment_reference="pay_9",
                             idempotency_key=key(), at=w.at(hours=2))
        assert (result.status, result.credits, result.message) == (
            "applied", 2000, "Bought 2,000 credits.")
        grant = next(g for g in grants_of(w.db, w.account_id) if g.source == "purchase")
        assert (grant.granted, grant.remaining, grant.expires_at) == (2000, 2000, None)
        assert grant.operation_id == result.operation_id
        roll_periods(w.db, w.admin, until=datetime(2027, 6, 1, tzinfo=UTC))
        b = balances(w.db, w.account_id)
        assert (b.plan, b.purchased) == (500, 2000)
        assert_invariants(w.db, full=True)


def test_buy_package_refusals(world: World) -> None:
    with assert_nothing_written(world.db), pytest.raises(NotFound) as missing:
        buy_package(world.db, world.platform, account_id=world.account_id,
                    package_code="pack_7", payment_reference="p", idempotency_key=key())
    assert missing.value.message == "There is no credit package 'pack_7'."
    world.db.write(lambda s: s.execute(update(CreditPackage).values(active=False)))
    with assert_nothing_written(world.db), pytest.raises(RuleBroken) as retired:
        buy_package(world.db, world.platform, account_id=world.account_id,
                    package_code="pack_500", payment_reference="p", idempotency_key=key())
    assert retired.value.message == "The package '500 credits' is no longer sold."
    before = denied_audits(world.db)
    with assert_nothing_written(world.db), pytest.raises(PermissionDenied):
        buy_package(world.db, world.support, account_id=world.account_id,
                    package_code="pack_500", payment_reference="p", idempotency_key=key())
    assert denied_audits(world.db) == before + 1


# -- roll_periods ----------------------------------------------------------------------


def test_roll_grants_every_period_and_expires_the_previous(world: World) -> None:
    apr = datetime(2026, 4, 1, tzinfo=UTC)
    result = roll_periods(world.db, world.admin, until=apr)
    assert result == RollResult(accounts_rolled=1, grants_created=3, credits_expired=1500)
    plans = [g for g in grants_of(world.db, world.account_id) if g.source == "plan"]
    assert [(g.period_start, g.expires_at) for g in plans] == [
        (JAN_START, FEB_START), (FEB_START, MAR_START), (MAR_START, apr),
        (apr, datetime(2026, 5, 1, tzinfo=UTC)),
    ]
    assert [g.remaining for g in plans] == [0, 0, 0, 500]
    expiries = [e for e in ledger_of(world.db, world.account_id) if e.kind == "plan_expiry"]
    assert [(e.delta, e.created_at) for e in expiries] == [
        (-500, FEB_START), (-500, MAR_START), (-500, apr)
    ]
    system = fetch(world.db, select(Staff.id).where(Staff.username == "system"))[0]
    assert all(e.actor_id == system and e.operation_id is None for e in expiries)
    account = fetch(world.db, select(Account).where(Account.id == world.account_id))[0]
    assert (account.period_start, account.plan_balance, account.purchased_balance) == (
        apr, 500, 500)
    assert_invariants(world.db, full=True)


def test_roll_is_idempotent(world: World) -> None:
    until = datetime(2026, 3, 15, tzinfo=UTC)
    assert roll_periods(world.db, world.admin, until=until).grants_created == 2
    with assert_nothing_written(world.db):
        assert roll_periods(world.db, world.admin, until=until) == RollResult(0, 0, 0)
        assert roll_periods(world.db, world.admin, until=FEB_START) == RollResult(0, 0, 0)


def test_roll_covers_every_account_in_batches(world: World) -> None:
    for n in range(3):
        open_account(world.db, world.platform, name=f"Shop {n}", email=f"s{n}@shop.test")
    result = roll_periods(world.db, world.admin, until=FEB_START, batch_size=2)
    assert result == RollResult(accounts_rolled=4, grants_created=4, credits_expired=4 * 500)


def _period_shape(w: World, account_id: int) -> tuple[Any, ...]:
    """An account's grants, ledger and cached figures, without ids or who wrote them."""
    grants = grants_of(w.db, account_id)
    position = {g.id: i for i, g in enumerate(grants)}
    account = fetch(w.db, select(Account).where(Account.id == account_id))[0]
    return (
        [(g.source, g.granted, g.remaining, g.created_at, g.expires_at, g.period_start)
         for g in grants],
        [(e.kind, e.delta, position[e.grant_id], e.created_at, e.reason)
         for e in ledger_of(w.db, account_id)],
        (account.period_start, account.period_end, account.plan_balance,
         account.purchased_balance, account.refund_balance),
    )


def test_rolling_several_books_at_once_writes_what_rolling_each_writes(world: World) -> None:
    # Two sets of accounts alike (billing days 1, 15 and 31; some credits used): one
    # rolled an account at a time, the other together, over three to four periods.
    def opened(tag: str) -> list[int]:
        ids = []
        for day in (1, 15, 31):
            account = open_account(world.db, world.platform, name=f"{tag} {day}",
                                   email=f"{tag.lower()}{day}@x.test", billing_day=day)
            charge(world, 100 + day, status="succeeded", account_id=account,
                   at=world.at(hours=2))
            ids.append(account)
        return ids

    alone, together = opened("Alone"), opened("Together")
    until = datetime(2026, 4, 20, tzinfo=UTC)

    def roll(session: Session, ids: list[int], at_once: bool) -> list[tuple[int, int]]:
        system = system_actor_id(session)
        accounts = lock_accounts(session, ids)
        books = [AccountBook(session, accounts[i], actor_id=system, operation_id=None,
                             reason="roll", reference=None) for i in ids]
        if at_once:
            return roll_books(books, until, system)
        return [book.roll_to(until, system) for book in books]

    one_by_one = world.db.write(lambda s: roll(s, alone, False))
    at_once = world.db.write(lambda s: roll(s, together, True))
    assert at_once == one_by_one
    assert [created for created, _ in at_once] == [3, 4, 3]  # Feb-Apr; Jan 15-Apr 15; Jan 31-Mar 31
    for mine, theirs in zip(alone, together, strict=True):
        assert _period_shape(world, mine) == _period_shape(world, theirs)
    assert_invariants(world.db, full=True)


def test_books_opened_together_read_grants_and_plans_in_two_queries(world: World) -> None:
    ids = [world.account_id, *(
        open_account(world.db, world.platform, name=f"Shop {n}", email=f"s{n}@shop.test",
                     plan_code="pro" if n % 2 else "starter") for n in range(4))]
    sent: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        sent.append(statement)

    def work(session: Session) -> dict[int, AccountBook]:
        accounts = lock_accounts(session, ids)
        system = system_actor_id(session)
        event.listen(world.db.engine, "before_cursor_execute", count)
        try:
            # Within January: nothing to roll, so only the reads.
            return open_books(session, list(accounts.values()), actor_id=world.admin.staff_id,
                              operation_id=None, reason="test", reference=None,
                              roll_until=world.at(days=5), system_actor_id=system)
        finally:
            event.remove(world.db.engine, "before_cursor_execute", count)

    books = world.db.write(work)
    assert len(sent) == 2
    assert sorted(books) == sorted(ids)
    assert [g.source for g in books[world.account_id].grants().values()] == ["plan", "purchase"]
    assert {books[i].plan().code for i in ids} == {"starter", "pro"}


def test_charge_at_the_exact_period_end_draws_from_the_new_period(world: World) -> None:
    before = charge(world, 30, at=FEB_START - timedelta(microseconds=1))
    assert before.draws == ((plan_grant(world, JAN_START).id, 30),)
    at_end = charge(world, 100, at=FEB_START)
    jan, feb = plan_grant(world, JAN_START), plan_grant(world, FEB_START)
    assert at_end.draws == ((feb.id, 100),)
    assert (jan.remaining, feb.remaining) == (0, 400)
    expiry = [e for e in ledger_of(world.db, world.account_id) if e.kind == "plan_expiry"]
    assert [(e.grant_id, e.delta, e.created_at) for e in expiry] == [(jan.id, -470, FEB_START)]


def test_expired_plan_credits_cannot_pay_a_charge_at_the_period_end(db_url: str) -> None:
    # Only the plan grant is left; at its end it is gone and the new period's grant pays.
    with open_world(db_url, package_code=None, plan_code="starter") as w:
        charge(w, 500, at=FEB_START - timedelta(seconds=1))
        assert charge(w, 500, at=FEB_START).draws == ((plan_grant(w, FEB_START).id, 500),)
        with pytest.raises(RuleBroken):
            charge(w, 1, at=FEB_START)
        assert_invariants(w.db)


@pytest.mark.parametrize(
    ("year", "february_end"), [(2026, 28), (2028, 29)], ids=["2026", "leap-2028"]
)
def test_billing_day_31_falls_on_the_last_day_of_short_months(
    db_url: str, year: int, february_end: int
) -> None:
    def day(month: int, d: int) -> datetime:
        return datetime(year, month, d, tzinfo=UTC)

    with open_world(db_url, billing_day=31, created_at=day(1, 31) + timedelta(hours=10)) as w:
        roll_periods(w.db, w.admin, until=day(5, 31))
        plans = [g for g in grants_of(w.db, w.account_id) if g.source == "plan"]
        assert [(g.period_start, g.expires_at) for g in plans] == [
            (day(1, 31), day(2, february_end)),
            (day(2, february_end), day(3, 31)),
            (day(3, 31), day(4, 30)),
            (day(4, 30), day(5, 31)),
            (day(5, 31), day(6, 30)),
        ]
        assert_invariants(w.db)


# -- refund_charges --------------------------------------------------------------------


def test_full_refund_goes_back_to_the_live_grant(world: World) -> None:
    c = charge(world, 40)
    assert balances(world.db, world.account_id) == Balances(460, 500, 0, 1)
    result = refund(world, world.support, c.charge_id)
    assert (result.status, result.credits, result.message) == (
        "applied", 40, "Refunded 40 credits on 1 charge(s).")
    b = balances(world.db, world.account_id)
    assert (b.plan, b.purchased, b.refund, b.unrefunded_failed) == (500, 500, 0, 0)
    row = fetch(world.db, select(Refund))[0]
    assert (row.charge_id, row.credits, row.reason_code, row.operation_id) == (
        c.charge_id, 40, "failed_generation", result.operation_id)
    entry = ledger_of(world.db, world.account_id)[-1]
    assert (entry.kind, entry.delta, entry.grant_id, entry.charge_id) == (
        "refund", 40, plan_grant(world, JAN_START).id, c.charge_id)
    assert (entry.actor_id, entry.operation_id, entry.reference) == (
        world.support.staff_id, result.operation_id, "#4411")


def test_partial_refund_and_only_once(world: World) -> None:
    c = charge(world, 40)
    assert refund(world, world.support, c.charge_id, credits=15).credits == 15
    assert balances(world.db, world.account_id).plan == 475
    with assert_nothing_written(world.db), pytest.raises(AlreadyRefunded):
        refund(world, world.support, c.charge_id, credits=25)


def test_refund_of_several_charges_in_one_operation(world: World) -> None:
    a, b, c = charge(world, 40), charge(world, 25), charge(world, 12)
    result = refund_charges(
        world.db, world.support, account_id=world.account_id,
        items=[RefundItem(a.charge_id), RefundItem(b.charge_id, 10)],
        reason_code="duplicate_charge", ticket="#9", idempotency_key=key(),
        at=world.at(days=1),
    )
    assert (result.credits, result.message) == (50, "Refunded 50 credits on 2 charge(s).")
    refunds = fetch(world.db, select(Refund).order_by(Refund.charge_id))
    assert [(r.charge_id, r.credits, r.operation_id) for r in refunds] == [
        (a.charge_id, 40, result.operation_id), (b.charge_id, 10, result.operation_id)]
    assert balances(world.db, world.account_id).unrefunded_failed == 1
    assert c.charge_id not in {r.charge_id for r in refunds}


def test_refund_of_expired_plan_credits_becomes_a_non_expiring_refund_grant(
    world: World,
) -> None:
    c = charge(world, 100, at=world.at(days=10))
    result = refund(world, world.support, c.charge_id, at=FEB_START + timedelta(days=4))
    new = grants_of(world.db, world.account_id)[-1]
    assert (new.source, new.granted, new.remaining, new.expires_at) == ("refund", 100, 100, None)
    assert new.operation_id == result.operation_id
    b = balances(world.db, world.account_id)
    # February's own plan grant is untouched; the refund does not expire with it.
    assert (b.plan, b.purchased, b.refund) == (500, 500, 100)
    roll_periods(world.db, world.admin, until=datetime(2026, 6, 1, tzinfo=UTC))
    assert balances(world.db, world.account_id).refund == 100


def test_refund_splits_between_a_live_purchase_and_an_expired_plan_grant(world: World) -> None:
    c = charge(world, 600, at=world.at(days=10))
    assert c.draws == ((plan_grant(world, JAN_START).id, 500), (purchase_grant(world).id, 100))
    refund(world, world.manager, c.charge_id, at=FEB_START + timedelta(days=4))
    b = balances(world.db, world.account_id)
    assert (b.plan, b.purchased, b.refund) == (500, 500, 500)
    # A partial refund returns the longest-lived credits first: the purchased ones.
    d = charge(world, 700, at=FEB_START + timedelta(days=5))
    refund(world, world.support, d.charge_id, credits=150, at=MAR_START + timedelta(days=1))
    b = balances(world.db, world.account_id)
    assert (b.purchased, b.refund) == (300 + 150, 500)
    assert_invariants(world.db, full=True)


def test_already_refunded_message_names_when_who_and_ticket(world: World) -> None:
    c = charge(world, 40)
    refund(world, world.support, c.charge_id, ticket="#4411", at=world.at(days=2))
    with assert_nothing_written(world.db), pytest.raises(AlreadyRefunded) as err:
        refund(world, world.finance, c.charge_id, ticket="#4412", at=world.at(days=5))
    assert err.value.message == (
        f"Charge {c.charge_id} was already refunded on 12 Jan 2026 by Sam Support "
        "(ticket #4411)."
    )


def test_refund_of_another_accounts_charge_is_refused(world: World) -> None:
    other = open_account(world.db, world.platform, name="Other", email="o@other.test")
    c = charge(world, 40, account_id=other)
    with assert_nothing_written(world.db), pytest.raises(RuleBroken) as err:
        refund(world, world.support, c.charge_id)
    assert err.value.message == (
        f"Charge {c.charge_id} belongs to another account (#{other}); "
        "refund it from that account."
    )


def test_refund_of_a_zero_cost_charge_is_refused(world: World) -> None:
    c = charge(world, 0)
    with assert_nothing_written(world.db), pytest.raises(RuleBroken) as err:
        refund(world, world.support, c.charge_id)
    assert err.value.message == (
        f"Charge {c.charge_id} cost nothing, so there is nothing to refund."
    )


def test_partial_refund_above_the_cost_is_refused(world: World) -> None:
    c = charge(world, 40)
    with assert_nothing_written(world.db), pytest.raises(RuleBroken) as err:
        refund(world, world.manager, c.charge_id, credits=41)
    assert err.value.message == (
        f"Charge {c.charge_id} cost 40 credits; a refund of 41 would return more than it cost."
    )


@pytest.mark.parametrize("role", ["support", "finance"])
def test_refund_above_the_limit_is_requested(world: World, role: str) -> None:
    c = charge(world, 600)
    counts = table_counts(world.db)
    actor: Actor = getattr(world, role)
    result = refund(world, actor, c.charge_id)
    assert result.status == "requested"
    assert result.message == (
        "Refunds above 500 credits need approval by a finance, manager or admin colleague. "
        f"Request #{result.request_id} is waiting for approval; nothing changes until a "
        "colleague approves it."
    )
    req = request_row(world, result.request_id)
    assert (req.kind, req.status, req.credits, req.requested_by) == (
        "refund", "pending", 600, actor.staff_id)
    after = table_counts(world.db)
    assert after == {**counts, "operations": counts["operations"] + 1,
                     "approval_requests": counts["approval_requests"] + 1}
    assert balances(world.db, world.account_id).unrefunded_failed == 1


def test_support_refund_at_the_limit_applies(world: World) -> None:
    c = charge(world, 500)
    assert refund(world, world.support, c.charge_id).status == "applied"


def test_refund_of_a_succeeded_charge_needs_approval_by_support(world: World) -> None:
    c = charge(world, 40, status="succeeded")
    counts = table_counts(world.db)
    result = refund(world, world.support, c.charge_id)
    assert result.status == "requested"
    assert result.message.startswith(
        "Refunding a charge that did not fail needs approval by a finance, manager or admin "
        "colleague.")
    assert table_counts(world.db)["ledger_entries"] == counts["ledger_entries"]
    assert table_counts(world.db)["refunds"] == 0


@pytest.mark.parametrize("role", ["manager", "admin"])
def test_manager_and_admin_refund_anything_at_once(world: World, role: str) -> None:
    c = charge(world, 600, status="succeeded")
    assert refund(world, getattr(world, role), c.charge_id).status == "applied"
    assert balances(world.db, world.account_id).total == 1000


# -- adjust_purchased ------------------------------------------------------------------


def test_adjustment_adds_a_purchased_grant(world: World) -> None:
    result = adjust(world, world.finance, 300, reference="INV-88")
    assert (result.status, result.credits, result.message) == (
        "applied", 300, "Added 300 purchased credits.")
    grant = grants_of(world.db, world.account_id)[-1]
    assert (grant.source, grant.granted, grant.expires_at) == ("adjustment", 300, None)
    adj = fetch(world.db, select(Adjustment))[0]
    assert (adj.id, adj.delta, adj.reason_code, adj.operation_id) == (
        result.details["adjustment_id"], 300, "manual_sale", result.operation_id)
    entry = ledger_of(world.db, world.account_id)[-1]
    assert (entry.kind, entry.delta, entry.reference, entry.reason) == (
        "adjustment", 300, "INV-88", "Adjustment: Manual sale or invoice")
    assert balances(world.db, world.account_id).purchased == 800


def test_adjustment_removes_purchased_credits_only_never_below_zero(world: World) -> None:
    assert adjust(world, world.finance, -200, reason_code="chargeback").credits == -200
    b = balances(world.db, world.account_id)
    assert (b.plan, b.purchased) == (500, 300)
    with assert_nothing_written(world.db), pytest.raises(RuleBroken) as err:
        adjust(world, world.finance, -400, reason_code="correction")
    assert err.value.message == "Only 300 purchased credits can be removed; 400 were asked."
    adjust(world, world.admin, -300, reason_code="correction")
    b = balances(world.db, world.account_id)
    assert (b.plan, b.purchased) == (500, 0)


@pytest.mark.parametrize("role", ["support", "manager"])
def test_support_and_manager_cannot_adjust(world: World, role: str) -> None:
    before = denied_audits(world.db)
    with assert_nothing_written(world.db), pytest.raises(PermissionDenied) as err:
        adjust(world, getattr(world, role), 10)
    assert err.value.message == "Adjusting purchased credits needs the finance or admin role."
    assert denied_audits(world.db) == before + 1


@pytest.mark.parametrize(("role", "delta", "status"), [
    ("finance", 1000, "applied"), ("finance", 1001, "requested"), ("admin", 1000, "applied"),
    ("admin", 1001, "requested"), ("admin", -1001, "requested"),
])
def test_adjustment_limit(world: World, role: str, delta: int, status: str) -> None:
    buy_package(world.db, world.platform, account_id=world.account_id, package_code="pack_2000",
                payment_reference="p2", idempotency_key=key(), at=world.at(hours=1))
    before = balances(world.db, world.account_id)
    result = adjust(world, getattr(world, role), delta)
    assert result.status == status
    after = balances(world.db, world.account_id)
    assert after.purchased - before.purchased == (delta if status == "applied" else 0)
    if status == "requested":
        assert result.message.startswith(
            "Adjustments above 1,000 credits need approval by a finance, manager or admin "
            "colleague.")


# -- accounts and staff ----------------------------------------------------------------


def test_create_account_opens_the_first_period(world: World) -> None:
    opened = datetime(2026, 3, 20, 8, tzinfo=UTC)
    result = create_account(world.db, world.admin, name="  Élan Studio  ",
                            email="Hello@Elan.test", plan_code="growth", billing_day=15,
                            idempotency_key="acct-elan", created_at=opened)
    account_id = result.details["account_id"]
    assert (result.status, result.message) == ("applied", f"Opened account #{account_id}.")
    account = fetch(world.db, select(Account).where(Account.id == account_id))[0]
    assert (account.name, account.name_norm, account.email_norm) == (
        "Élan Studio", "élan studio", "hello@elan.test")
    assert (account.period_start, account.period_end, account.plan_balance) == (
        datetime(2026, 3, 15, tzinfo=UTC), datetime(2026, 4, 15, tzinfo=UTC), 2000)
    again = create_account(world.db, world.admin, name="Élan Studio", email="Hello@Elan.test",
                           plan_code="growth", billing_day=15, idempotency_key="acct-elan",
                           created_at=opened)
    assert again.replayed and again.details == result.details


@pytest.mark.parametrize("role", ["support", "finance", "manager"])
def test_only_the_platform_or_an_admin_opens_accounts(world: World, role: str) -> None:
    with assert_nothing_written(world.db), pytest.raises(PermissionDenied):
        open_account(world.db, getattr(world, role))


def test_create_account_refusals(world: World) -> None:
    with assert_nothing_written(world.db), pytest.raises(NotFound) as err:
        open_account(world.db, world.platform, plan_code="platinum")
    assert err.value.message == "There is no plan 'platinum'."
    for day in (0, 32):
        with assert_nothing_written(world.db), pytest.raises(InvalidInput):
            open_account(world.db, world.platform, billing_day=day)
    with assert_nothing_written(world.db), pytest.raises(InvalidInput) as bad:
        open_account(world.db, world.platform, email="not an email")
    assert bad.value.message == "'not an email' is not an email address."


def test_create_staff_rules(db_url: str) -> None:
    with open_world(db_url) as w:
        with pytest.raises(PermissionDenied):
            create_staff(w.db, None, username="eve", display_name="Eve", role="admin")
        with pytest.raises(PermissionDenied):
            create_staff(w.db, w.finance, username="eve", display_name="Eve", role="support")
        with pytest.raises(RuleBroken):
            create_staff(w.db, w.admin, username="sam", display_name="Sam 2", role="support")
        with pytest.raises(InvalidInput):
            create_staff(w.db, w.admin, username="eve smith", display_name="Eve", role="support")
        with pytest.raises(InvalidInput):
            create_staff(w.db, w.admin, username="eve", display_name="Eve", role="owner")
        assert fetch(w.db, select(Staff.username).where(Staff.username == "eve")) == []
        eve = create_staff(w.db, w.admin, username="eve", display_name="Eve", role="manager")
        assert sign_in(w.db, "eve") == eve


def test_the_first_staff_member_needs_no_actor(db_url: str) -> None:
    from credits_desktop.store.database import Database

    db = Database.open(db_url)
    try:
        first = create_staff(db, None, username="root", display_name="Root", role="admin")
        assert first.role == "admin"
        with pytest.raises(PermissionDenied):
            create_staff(db, None, username="second", display_name="Second", role="admin")
    finally:
        db.close()


def test_sign_in_and_deactivation(world: World) -> None:
    assert sign_in(world.db, "sam") == world.support
    with pytest.raises(NotFound):
        sign_in(world.db, "nobody")
    with pytest.raises(PermissionDenied):
        set_staff_active(world.db, world.manager, username="sam", active=False)
    with pytest.raises(RuleBroken):
        set_staff_active(world.db, world.admin, username="ada", active=False)
    with pytest.raises(NotFound):
        set_staff_active(world.db, world.admin, username="nobody", active=False)
    set_staff_active(world.db, world.admin, username="sam", active=False)
    with pytest.raises(PermissionDenied) as err:
        sign_in(world.db, "sam")
    assert err.value.message == "The staff account 'sam' is deactivated."
    c = charge(world, 40)
    with assert_nothing_written(world.db), pytest.raises(PermissionDenied) as denied:
        refund(world, world.support, c.charge_id)
    assert denied.value.message == (
        "The staff account 'sam' is deactivated; ask an admin to restore it.")
    set_staff_active(world.db, world.admin, username="sam", active=True)
    assert refund(world, world.support, c.charge_id).status == "applied"
    audits = fetch(world.db, select(AuditEvent.detail).where(
        AuditEvent.action == "set_staff_active", AuditEvent.outcome == "applied")
        .order_by(AuditEvent.id))
    assert audits == ["Deactivated staff member 'sam'.", "Reactivated staff member 'sam'."]
    sign_ins = rows(world.db, "SELECT actor_id, outcome FROM audit_events "
                              "WHERE action = 'sign_in' ORDER BY id")
    assert sign_ins == [(world.support.staff_id, "applied"), (world.support.staff_id, "denied")]


# -- idempotency of staff writes -------------------------------------------------------

Submit = Callable[[World, str, bool], OperationResult]


def _submit_buy(w: World, k: str, variant: bool) -> OperationResult:
    return buy_package(w.db, w.platform, account_id=w.account_id,
                       package_code="pack_2000" if variant else "pack_500",
                       payment_reference="pay-1", idempotency_key=k, at=w.at(hours=5))


def _submit_refund(w: World, k: str, variant: bool) -> OperationResult:
    charge_id = fetch(w.db, select(LedgerEntry.charge_id).where(LedgerEntry.kind == "charge")
                      .order_by(LedgerEntry.charge_id))[0]
    return refund(w, w.support, charge_id, credits=10 if variant else None, idempotency_key=k)


def _submit_adjust(w: World, k: str, variant: bool) -> OperationResult:
    return adjust_purchased(w.db, w.finance, account_id=w.account_id, delta=300,
                            reason_code="compensation", reference="T-2" if variant else "T-1",
                            idempotency_key=k, at=w.at(days=2))


def _submit_request(w: World, k: str, variant: bool) -> OperationResult:
    return adjust_purchased(w.db, w.finance, account_id=w.account_id,
                            delta=5001 if variant else 5000, reason_code="manual_sale",
                            reference="INV-5", idempotency_key=k, at=w.at(days=2))


def _submit_approve(w: World, k: str, variant: bool) -> OperationResult:
    ids = fetch(w.db, select(ApprovalRequest.id).order_by(ApprovalRequest.id))
    return approve_request(w.db, w.manager, request_id=ids[1] if variant else ids[0],
                           idempotency_key=k, at=w.at(days=3))


def _submit_reject(w: World, k: str, variant: bool) -> OperationResult:
    ids = fetch(w.db, select(ApprovalRequest.id).order_by(ApprovalRequest.id))
    return reject_request(w.db, w.manager, request_id=ids[0], idempotency_key=k,
                          comment="No." if variant else "No invoice.", at=w.at(days=3))


def _submit_reverse(w: World, k: str, variant: bool) -> OperationResult:
    ids = fetch(w.db, select(Adjustment.id).order_by(Adjustment.id))
    return reverse(w.db, w.finance, adjustment_id=ids[0], reason="Typo",
                   reference="R-2" if variant else "R-1", idempotency_key=k, at=w.at(days=4))


def _submit_account(w: World, k: str, variant: bool) -> OperationResult:
    return create_account(w.db, w.platform, name="Twice Ltd", email="t@twice.test",
                          plan_code="pro" if variant else "growth", billing_day=3,
                          idempotency_key=k, created_at=w.at(days=1))


SUBMITS: dict[str, Submit] = {
    "buy_package": _submit_buy,
    "refund": _submit_refund,
    "adjustment": _submit_adjust,
    "request": _submit_request,
    "approve": _submit_approve,
    "reject": _submit_reject,
    "reversal": _submit_reverse,
    "create_account": _submit_account,
}


@pytest.mark.parametrize("kind", list(SUBMITS))
def test_same_key_applies_once_and_a_different_payload_conflicts(
    world: World, kind: str
) -> None:
    charge(world, 40)
    for n in (1, 2):
        adjust_purchased(world.db, world.admin, account_id=world.account_id, delta=2000 + n,
                         reason_code="manual_sale", reference=f"BIG-{n}",
                         idempotency_key=f"big-{n}", at=world.at(days=1))
    adjust(world, world.finance, 100, at=world.at(days=1))
    submit = SUBMITS[kind]
    first = submit(world, "the-key", False)
    assert not first.replayed and first.status in ("applied", "requested", "rejected")
    with assert_nothing_written(world.db):
        second = submit(world, "the-key", False)
        # Surrounding whitespace is not part of the key.
        third = submit(world, "  the-key ", False)
    assert second.replayed and third.replayed
    assert second == OperationResult(**{**first.__dict__, "replayed": True})
    assert third.operation_id == first.operation_id
    with assert_nothing_written(world.db), pytest.raises(IdempotencyConflict) as err:
        submit(world, "the-key", True)
    assert err.value.message.startswith(
        "This submission key was already used for a different change; nothing was applied.")
    ops = fetch(world.db, select(Operation.id).where(Operation.idempotency_key == "the-key"))
    assert ops == [first.operation_id]
