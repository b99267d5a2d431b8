"""Several staff machines writing at once: the rules hold under real concurrency.

Each thread opens its own :class:`Database` (its own engine and connections, as a
separate desk would), connects, then waits at a barrier so that all of them send
their write at the same moment. Every test runs on both databases, which
serialise writers differently:

* PostgreSQL (the production case): READ COMMITTED, with the services locking
  the account rows (``SELECT ... FOR UPDATE``) before they read anything they
  decide on, and a unique index as the last line for idempotency keys;
* SQLite (the single-desk default, also shared over a network drive by small
  teams): ``BEGIN IMMEDIATE`` takes the write lock up front, so the writers queue.

After each run the invariants are checked (``check_database`` included).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

from sqlalchemy import func, select, text

from credits_desktop.services.accounts import create_account
from credits_desktop.services.adjustments import adjust_purchased
from credits_desktop.services.approvals import approve_request
from credits_desktop.services.charges import record_charge
from credits_desktop.services.errors import AlreadyRefunded, RuleBroken
from credits_desktop.services.periods import roll_periods
from credits_desktop.services.refunds import RefundItem, refund_charges
from credits_desktop.services.results import ChargeResult, OperationResult
from credits_desktop.store.database import Database
from credits_desktop.store.models import Account, CreditGrant, Operation, Refund, UsageCharge

from .factories import (
    assert_invariants,
    balances,
    charge,
    fetch,
    open_world,
)

THREADS = 8
# Generous: a healthy run takes well under a second; these only stop a hang.
BARRIER_TIMEOUT = 30
JOIN_TIMEOUT = 60

T = TypeVar("T")


def run_together(db_url: str, work: Callable[[Database, int], T],
                 threads: int = THREADS) -> list[T | BaseException]:
    """Run ``work(db, i)`` in ``threads`` threads released at once; results in order."""
    barrier = threading.Barrier(threads)
    results: list[T | BaseException | None] = [None] * threads

    def run(i: int) -> None:
        db = Database.open(db_url)
        try:
            # Connect first, so that the barrier releases writes, not connection set-up.
            db.read(lambda s: s.execute(text("SELECT 1")))
            barrier.wait(BARRIER_TIMEOUT)
            results[i] = work(db, i)
        except BaseException as exc:
            results[i] = exc
        finally:
            db.close()

    pool = [threading.Thread(target=run, args=(i,), name=f"desk-{i}") for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(JOIN_TIMEOUT)
    assert not any(t.is_alive() for t in pool), "a writer hung"
    assert all(r is not None for r in results)
    return results  # type: ignore[return-value]


def count(db: Database, model: type, *where: object) -> int:
    stmt = select(func.count()).select_from(model).where(*where)  # type: ignore[arg-type]
    return int(db.read(lambda s: s.scalar(stmt)) or 0)


def test_refunds_of_the_same_charge_at_once_apply_once(db_url: str) -> None:
    with open_world(db_url) as w:
        c = charge(w, 40)

        def work(db: Database, i: int) -> OperationResult:
            return refund_charges(db, w.support, account_id=w.account_id,
                                  items=[RefundItem(c.charge_id)],
                                  reason_code="failed_generation", ticket=f"#{i}",
                                  idempotency_key=f"refund-{i}", at=w.at(days=1))

        results = run_together(db_url, work)
        applied = [r for r in results if isinstance(r, OperationResult)]
        refused = [r for r in results if not isinstance(r, OperationResult)]
        assert len(applied) == 1 and applied[0].status == "applied", results
        assert len(refused) == THREADS - 1
        assert all(isinstance(r, AlreadyRefunded) for r in refused), refused
        winner = applied[0].operation_id
        ticket = fetch(w.db, select(Operation.reference).where(Operation.id == winner))[0]
        for exc in refused:
            assert isinstance(exc, AlreadyRefunded)
            assert exc.message.endswith(f"by Sam Support (ticket {ticket}).")
        assert count(w.db, Refund) == 1
        b = balances(w.db, w.account_id)
        assert (b.plan, b.unrefunded_failed) == (500, 0)
        assert_invariants(w.db, full=True)


def test_charges_at_once_never_overdraw(db_url: str) -> None:
    # 500 plan credits and nothing else: exactly five charges of 100 fit.
    with open_world(db_url, package_code=None) as w:
        fits = 5
        attempts = 2

        def work(db: Database, i: int) -> list[ChargeResult | RuleBroken]:
            done: list[ChargeResult | RuleBroken] = []
            for n in range(attempts):
                try:
                    done.append(record_charge(
                        db, w.platform, account_id=w.account_id, feature_code="ad_image",
                        external_id=f"plat-{i}-{n}", occurred_at=w.at(hours=2),
                        status="succeeded", credits=100))
                except RuleBroken as exc:
                    done.append(exc)
            return done

        results = run_together(db_url, work)
        outcomes = [o for r in results for o in (r if isinstance(r, list) else [r])]
        assert len(outcomes) == THREADS * attempts
        charged = [o for o in outcomes if isinstance(o, ChargeResult)]
        refused = [o for o in outcomes if isinstance(o, RuleBroken)]
        assert len(charged) == fits, outcomes
        assert len(refused) == THREADS * attempts - fits, outcomes
        assert {e.message for e in refused} == {
            "The account has only 0 credits available; this needs 100."}
        assert balances(w.db, w.account_id).total == 0
        assert count(w.db, UsageCharge) == fits
        assert_invariants(w.db, full=True)


def test_the_same_key_at_once_applies_once(db_url: str) -> None:
    with open_world(db_url) as w:

        def work(db: Database, i: int) -> OperationResult:
            return adjust_purchased(db, w.finance, account_id=w.account_id, delta=100,
                                    reason_code="compensation", reference="T-1",
                                    idempotency_key="one-click", at=w.at(days=1))

        results = run_together(db_url, work)
        assert all(isinstance(r, OperationResult) for r in results), results
        done = [r for r in results if isinstance(r, OperationResult)]
        first = [r for r in done if not r.replayed]
        assert len(first) == 1 and first[0].status == "applied"
        assert {(r.operation_id, r.message, r.credits) for r in done} == {
            (first[0].operation_id, "Added 100 purchased credits.", 100)}
        assert count(w.db, Operation, Operation.idempotency_key == "one-click") == 1
        assert balances(w.db, w.account_id).purchased == 600
        assert_invariants(w.db, full=True)


def test_the_same_key_at_once_without_an_account_lock_applies_once(db_url: str) -> None:
    # Opening an account locks no account row: the unique idempotency key is what
    # stops the duplicates, and the losers' retry answers with the winner's result.
    with open_world(db_url) as w:

        def work(db: Database, i: int) -> OperationResult:
            return create_account(db, w.platform, name="Race Ltd", email="r@race.test",
                                  plan_code="growth", billing_day=7,
                                  idempotency_key="open-race", created_at=w.at(days=1))

        results = run_together(db_url, work)
        assert all(isinstance(r, OperationResult) for r in results), results
        done = [r for r in results if isinstance(r, OperationResult)]
        assert sum(not r.replayed for r in done) == 1
        assert len({(r.operation_id, r.details["account_id"]) for r in done}) == 1
        assert count(w.db, Account, Account.name == "Race Ltd") == 1
        assert_invariants(w.db, full=True)


def test_approvals_of_the_same_request_at_once_apply_once(db_url: str) -> None:
    with open_world(db_url) as w:
        asked = adjust_purchased(w.db, w.finance, account_id=w.account_id, delta=5000,
                                 reason_code="manual_sale", reference="INV-1",
                                 idempotency_key="ask", at=w.at(days=1))
        assert asked.request_id is not None
        approvers = [w.manager, w.admin]

        def work(db: Database, i: int) -> OperationResult:
            assert asked.request_id is not None
            return approve_request(db, approvers[i % 2], request_id=asked.request_id,
                                   idempotency_key=f"approve-{i}", at=w.at(days=2))

        results = run_together(db_url, work)
        applied = [r for r in results if isinstance(r, OperationResult)]
        refused = [r for r in results if not isinstance(r, OperationResult)]
        assert len(applied) == 1 and applied[0].status == "applied", results
        assert all(isinstance(r, RuleBroken) and "was already approved by" in r.message
                   for r in refused), refused
        assert balances(w.db, w.account_id).purchased == 5500
        assert_invariants(w.db, full=True)


def test_period_rolls_and_charges_at_once_grant_each_period_once(db_url: str) -> None:
    with open_world(db_url) as w:
        until = datetime(2026, 4, 1, tzinfo=UTC)

        def work(db: Database, i: int) -> object:
            if i % 2:
                return roll_periods(db, w.admin, until=until)
            return record_charge(db, w.platform, account_id=w.account_id,
                                 feature_code="url_brief", external_id=f"late-{i}",
                                 occurred_at=datetime(2026, 3, 15, tzinfo=UTC))

        results = run_together(db_url, work)
        assert not [r for r in results if isinstance(r, BaseException)], results
        starts = fetch(w.db, select(CreditGrant.period_start).where(
            CreditGrant.account_id == w.account_id, CreditGrant.source == "plan")
            .order_by(CreditGrant.period_start))
        assert starts == [datetime(2026, m, 1, tzinfo=UTC) for m in (1, 2, 3, 4)]
        assert count(w.db, UsageCharge) == THREADS // 2
        assert_invariants(w.db, full=True)
