"""Stateful test: random sequences of credit operations agree with a plain model.

A hypothesis ``RuleBasedStateMachine`` drives the real services on a real database
(SQLite and PostgreSQL, through ``db_url``): usage charges, package purchases, period
roll-overs, refunds, purchased-credit adjustments, approvals and rejections, reversals and
idempotent resubmissions, by staff of every role, at times that only move forward (minutes
to ~40 days, sometimes exactly onto a billing boundary), on four accounts billed on the
29th, 30th, 31st and one other day.

Beside it runs ``model.Model``, an in-memory re-statement of the product rules that calls
nothing in ``credits_desktop.domain``: grants with remaining credits and expiry,
soonest-expiring-first consumption, refunds back to live source grants else to a new
non-expiring refund grant, removals from purchased grants only, the 500/1,000 limits and
the permission table. Every operation's outcome (applied, requested, failed, or refused
with which error type) must be what the model predicts. After every step
(``CreditsMachine.agrees``) the database must hold exactly the model's grants, each one's
remaining equal to its ledger sum, the model's cached and live balances per account, its
refunds, requests and periods; the ledger must only have grown, each entry signed by the
right actor; ``queries.account_summary`` must show the live balances; and the usage
rollups must equal the sums of the charges, refunds and reversals row for row. At the end of
each example ``check.check_database`` must find nothing wrong (it costs ~25 ms, too much
for every step).

Examples: 200 on SQLite and 50 on PostgreSQL under CI (``CI=true``), 30 / 15 otherwise, or
``CREDITS_DESK_STATEFUL_EXAMPLES``. ``pytest -s`` prints how often each operation ended
which way. Hypothesis shrinks a failure to a short sequence of steps and prints it with a
``@reproduce_failure`` blob to replay it.
"""

from __future__ import annotations

import copy
import itertools
import os
import shutil
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import bindparam, case, func, select
from sqlalchemy.engine import make_url

from credits_desktop.services.accounts import create_account, create_staff, sign_in
from credits_desktop.services.adjustments import adjust_purchased
from credits_desktop.services.approvals import approve_request, reject_request
from credits_desktop.services.catalog import ensure_catalog
from credits_desktop.services.charges import record_charge
from credits_desktop.services.check import check_database
from credits_desktop.services.errors import CreditsDeskError, IdempotencyConflict
from credits_desktop.services.operations import Actor
from credits_desktop.services.periods import roll_periods
from credits_desktop.services.purchases import buy_package
from credits_desktop.services.queries import account_summary
from credits_desktop.services.refunds import RefundItem, refund_charges
from credits_desktop.services.results import ChargeResult, OperationResult
from credits_desktop.services.reversals import reverse
from credits_desktop.store.database import Database
from credits_desktop.store.engine import reader
from credits_desktop.store.models import (
    Account,
    ApprovalRequest,
    CreditGrant,
    LedgerEntry,
    Operation,
    Refund,
    UsageCharge,
)

from .model import (
    ADJUST_LIMIT,
    ADJUSTER_ROLES,
    AI_MODELS,
    APPROVER_ROLES,
    HUMAN_ROLES,
    PACKAGE_CREDITS,
    PLAN_ALLOTMENTS,
    PRICES,
    REFUND_LIMIT,
    Expect,
    MAccount,
    MAdjustment,
    MCharge,
    Model,
    MRefund,
    MRequest,
    Refused,
    period_at,
)
from .test_rollups import assert_rollups_exact

NO_SUCH_ID = 987_654
# How often each operation ended which way, printed after the run (pytest -s) to show
# what the random sequences actually exercised.
OUTCOMES: Counter[str] = Counter()

# Staff created for every example: (username, role); the first admin creates the others.
STAFF = [
    ("ada", "admin"),
    ("ann", "admin"),
    ("sam", "support"),
    ("sue", "support"),
    ("fay", "finance"),
    ("fred", "finance"),
    ("max", "manager"),
]


# ---------------------------------------------------------------------------------------
# The state machine
# ---------------------------------------------------------------------------------------

START_MIN = datetime(2026, 1, 1, tzinfo=UTC)
START_SPAN_MINUTES = 3 * 366 * 24 * 60  # up to the end of 2028, a leap year
STEP_COUNT = 30

time_steps = st.one_of(
    st.integers(min_value=1, max_value=180).map(lambda m: timedelta(minutes=m)),
    st.integers(min_value=1, max_value=72).map(lambda h: timedelta(hours=h)),
    st.tuples(st.integers(1, 40), st.integers(0, 24 * 60 - 1)).map(
        lambda dm: timedelta(days=dm[0], minutes=dm[1])
    ),
)
charge_credits = st.one_of(
    st.none(),  # the feature's price
    st.just(0),
    st.integers(min_value=1, max_value=80),
    st.sampled_from([REFUND_LIMIT, REFUND_LIMIT + 1]),
    st.integers(min_value=300, max_value=900),
)
adjust_sizes = st.one_of(
    st.integers(min_value=1, max_value=ADJUST_LIMIT),
    st.sampled_from([ADJUST_LIMIT, ADJUST_LIMIT + 1]),
    st.integers(min_value=ADJUST_LIMIT + 1, max_value=3_000),
)


# The statements the checks run after every step, built once (building a statement costs
# more than running it on these few rows).
NEW_GRANTS = (
    select(CreditGrant.id, CreditGrant.account_id, CreditGrant.source, CreditGrant.granted,
           CreditGrant.created_at, CreditGrant.expires_at)
    .where(CreditGrant.id > bindparam("after"))
    .order_by(CreditGrant.id)
)
REFUNDS_OF_OPERATION = select(Refund.charge_id, Refund.id).where(
    Refund.operation_id == bindparam("operation_id")
)
ACCOUNT_ROWS = select(
    Account.id, Account.plan_balance, Account.purchased_balance, Account.refund_balance,
    Account.unrefunded_failed, Account.period_start, Account.period_end,
).order_by(Account.id)
GRANT_ROWS = (
    select(
        CreditGrant.id, CreditGrant.account_id, CreditGrant.source, CreditGrant.granted,
        CreditGrant.remaining, CreditGrant.expires_at,
        func.coalesce(func.sum(LedgerEntry.delta), 0),
        # Ledger entries booked on another account than their grant's: must be none.
        func.coalesce(func.sum(
            case((LedgerEntry.account_id != CreditGrant.account_id, 1), else_=0)
        ), 0),
    )
    .outerjoin(LedgerEntry, LedgerEntry.grant_id == CreditGrant.id)
    .group_by(CreditGrant.id)
    .order_by(CreditGrant.id)
)
REFUND_ROWS = (
    select(Refund.id, Refund.charge_id, Refund.credits, UsageCharge.credits)
    .join(UsageCharge, UsageCharge.id == Refund.charge_id)
    .order_by(Refund.id)
)
CHARGE_MOVES = (
    select(LedgerEntry.charge_id, LedgerEntry.kind, func.sum(LedgerEntry.delta))
    .where(LedgerEntry.charge_id.is_not(None))
    .group_by(LedgerEntry.charge_id, LedgerEntry.kind)
)
REQUEST_ROWS = select(ApprovalRequest.id, ApprovalRequest.status).order_by(ApprovalRequest.id)
NEW_LEDGER = (
    select(LedgerEntry.id, LedgerEntry.account_id, LedgerEntry.grant_id, LedgerEntry.kind,
           LedgerEntry.delta, LedgerEntry.charge_id, LedgerEntry.operation_id,
           LedgerEntry.actor_id, LedgerEntry.reason, LedgerEntry.created_at)
    .where(LedgerEntry.id > bindparam("after"))
    .order_by(LedgerEntry.id)
)
# Refused operations must leave no trace but an audit row: count what they could leave.
ROW_COUNTS = select(
    select(func.count()).select_from(Operation).scalar_subquery(),
    select(func.count()).select_from(UsageCharge).scalar_subquery(),
)


def rarely(data: st.DataObject, label: str) -> bool:
    """True about one time in 16. (Not 0: hypothesis draws the bounds far more often.)"""
    return data.draw(st.integers(0, 15), label=label) == 9


@dataclass
class Submitted:
    """An accepted submission, to send again with the same key (and to misuse the key)."""

    again: Callable[[], OperationResult | ChargeResult]
    conflicting: Callable[[], object]
    result: OperationResult | ChargeResult


class CreditsMachine(RuleBasedStateMachine):
    """Random credit operations on a fresh database, checked against ``Model``.

    The test sets ``fresh`` and ``staff_actors`` on a subclass: ``fresh`` puts the database
    back to its seeded state (catalogue and staff, no customer data) for each example and
    returns it; ``staff_actors`` are the seeded staff and the platform's 'system' actor.
    """

    fresh: ClassVar[Callable[[], Database]]
    staff_actors: ClassVar[list[Actor]]

    def __init__(self) -> None:
        super().__init__()
        self.db = type(self).fresh()
        self.reader = reader(self.db.engine)  # read-only transactions on SQLite too
        self.staff: list[Actor] = list(type(self).staff_actors)
        self.system = next(a for a in self.staff if a.role == "system")
        self.humans = [a for a in self.staff if a is not self.system]
        self.model = Model({a.staff_id: a.role.value for a in self.staff})
        self.now = START_MIN
        self.keys = itertools.count(1)
        self.last_grant_id = 0
        self.submitted: list[Submitted] = []
        self.ledger: list[tuple[Any, ...]] = []  # every ledger entry so far, as written
        self.operations = 0  # staff operations the database must have recorded
        self.steps = 0
        self.touched: int | None = None  # db id of the account the step acted on

    def teardown(self) -> None:
        # Only on success: a failing step's own error must not be masked.
        if sys.exc_info()[0] is None and self.model.accounts:
            self.final_checks()

    def key(self, kind: str) -> str:
        return f"{kind}-{next(self.keys)}"

    # -- running an operation against both sides ---------------------------------------

    def both(
        self, operation: str, model_args: tuple[Any, ...], call: Callable[[], Any]
    ) -> tuple[Expect, Any] | None:
        """Run the operation on a copy of the model and on the database; check they agree.

        Returns (expected, actual) when both accepted it (the copy becomes the model), or
        None when both refused it with the same error type.
        """
        trial, args = copy.deepcopy((self.model, model_args))
        try:
            expected: Expect | None = getattr(trial, operation)(*args)
            refusal: Refused | None = None
        except Refused as exc:
            expected, refusal = None, exc
        try:
            actual = call()
        except CreditsDeskError as exc:
            assert refusal is not None, (
                f"{operation}: the service refused ({type(exc).__name__}: {exc}) "
                f"but the model expected {expected}"
            )
            assert type(exc) is refusal.error, (
                f"{operation}: the service raised {type(exc).__name__} ({exc}); "
                f"the model expected {refusal}"
            )
            OUTCOMES[f"{operation}: refused, {refusal}"] += 1
            return None
        assert refusal is None, (
            f"{operation}: the service accepted it ({actual}) but the model expected {refusal}"
        )
        self.model = trial
        if operation not in ("charge", "roll_all"):  # these write no operations row
            self.operations += 1
        self.sync_grants()
        self.sync_ledger(model_args[0], getattr(actual, "operation_id", None))
        OUTCOMES[f"{operation}: {expected.status if expected else 'applied'}"] += 1
        if expected is None:  # roll_periods reports no outcome
            return None
        if isinstance(actual, OperationResult):
            assert not actual.replayed
            assert (actual.status, actual.credits) == (expected.status, expected.credits), (
                f"{operation}: got {actual}, expected {expected.status} {expected.credits}"
            )
        if expected.request is not None:
            assert actual.request_id is not None
            expected.request.db_id = actual.request_id
        if expected.refunds:
            self.link_refunds(actual.operation_id, expected.refunds)
        if expected.adjustment is not None:
            expected.adjustment.db_id = int(actual.details["adjustment_id"])
        return expected, actual

    def sync_grants(self) -> None:
        """Pair the grants the database created with those the model created, in order."""
        with self.reader.connect() as conn:
            rows = conn.execute(NEW_GRANTS, {"after": self.last_grant_id}).all()
        pending = [g for g in self.model.grants if g.db_id is None]
        described = [(g.account.db_id, g.source, g.granted, g.created_at, g.expires_at)
                     for g in pending]
        assert [tuple(r[1:]) for r in rows] == described, (
            f"new grants in the database {[tuple(r) for r in rows]}, model {described}"
        )
        for row, grant in zip(rows, pending, strict=True):
            grant.db_id = row[0]
            self.last_grant_id = row[0]

    def sync_ledger(self, actor_id: int, operation_id: int | None) -> None:
        """Check who and when the ledger entries an operation just wrote say, and keep them
        (``agrees`` then proves that no entry is ever edited or deleted)."""
        with self.reader.connect() as conn:
            rows = conn.execute(NEW_LEDGER, {"after": self.ledger[-1][0] if self.ledger else 0})
            new = [tuple(r) for r in rows]
        grants = {g.db_id: g for g in self.model.grants}
        for _, _, grant_id, kind, _, charge_id, op_id, actor, reason, at in new:
            grant = grants[grant_id]
            if kind in ("plan_grant", "plan_expiry"):
                # The roll's own entries, whoever's action triggered the roll.
                assert (actor, op_id) == (self.system.staff_id, None), f"{kind} {actor} {op_id}"
                assert at == (grant.created_at if kind == "plan_grant" else grant.expires_at)
            elif kind == "charge":
                assert (actor, op_id) == (actor_id, None) and charge_id is not None
                assert at == self.now
            else:
                assert (actor, op_id) == (actor_id, operation_id), f"{kind} {actor} {op_id}"
                assert at == self.now and reason
        self.ledger += new

    def link_refunds(self, operation_id: int, refunds: list[MRefund]) -> None:
        with self.reader.connect() as conn:
            found = conn.execute(REFUNDS_OF_OPERATION, {"operation_id": operation_id}).all()
        by_charge = {charge_id: refund_id for charge_id, refund_id in found}
        assert sorted(by_charge) == sorted(r.charge.db_id for r in refunds)  # type: ignore[type-var]
        for refund in refunds:
            assert refund.charge.db_id is not None
            refund.db_id = by_charge[refund.charge.db_id]

    def remember(
        self, again: Callable[[], Any], conflicting: Callable[[], object], result: Any
    ) -> None:
        self.submitted.append(Submitted(again, conflicting, result))

    # -- set-up --------------------------------------------------------------------------

    @initialize(data=st.data())
    def open_accounts(self, data: st.DataObject) -> None:
        self.now = START_MIN + timedelta(
            minutes=data.draw(st.integers(0, START_SPAN_MINUTES), label="start minute")
        )
        # The month-end billing days every example, and one ordinary day.
        days = [*data.draw(st.permutations([29, 30, 31]), label="month-end days"),
                data.draw(st.integers(1, 28), label="other day")]
        for number, day in enumerate(days, start=1):
            plan = data.draw(st.sampled_from(sorted(PLAN_ALLOTMENTS)), label="plan")
            result = create_account(
                self.db, self.system, name=f"Account {number}", email=f"a{number}@ads.test",
                plan_code=plan, billing_day=day, idempotency_key=self.key("open"),
                created_at=self.now,
            )
            account_id = int(result.details["account_id"])  # type: ignore[arg-type]
            self.model.open_account(account_id, day, plan, self.now)
            self.operations += 1
        self.sync_grants()
        self.sync_ledger(self.system.staff_id, None)
        # Some first usage, so that refunds have something to work on from the start.
        for account in list(self.model.accounts):
            self.burst(data, account.db_id, data.draw(st.integers(0, 1), label="charges"))

    # -- time --------------------------------------------------------------------------

    @rule(step=time_steps)
    def time_passes(self, step: timedelta) -> None:
        self.now += step

    @rule(data=st.data())
    def time_reaches_a_billing_boundary(self, data: st.DataObject) -> None:
        account = data.draw(st.sampled_from(self.model.accounts), label="account")
        self.touched = account.db_id
        self.now = period_at(account.billing_day, self.now)[1]

    # -- the platform --------------------------------------------------------------------

    def platform_or_anyone(self, data: st.DataObject) -> Actor:
        # Mostly the platform; now and then a staff member who must be refused.
        if rarely(data, "not the platform"):
            return data.draw(st.sampled_from(self.humans), label="actor")
        return self.system

    def staff_member(self, data: st.DataObject, usually: set[str]) -> Actor:
        """Mostly someone whose role may do the action; anyone (even 'system') otherwise."""
        if data.draw(st.integers(0, 3), label="any role") == 1:
            return data.draw(st.sampled_from(self.staff), label="actor")
        fit = [a for a in self.staff if a.role in usually]
        return data.draw(st.sampled_from(fit), label="actor")

    @rule(data=st.data(), count=st.integers(1, 3))
    def usage_is_charged(self, data: st.DataObject, count: int) -> None:
        account_id = data.draw(st.sampled_from(self.model.accounts), label="account").db_id
        self.touched = account_id
        self.burst(data, account_id, count)

    def burst(self, data: st.DataObject, account_id: int, count: int) -> None:
        """Charges on one account, minutes apart or at the same instant."""
        for _ in range(count):
            self.now += timedelta(minutes=data.draw(st.integers(0, 30), label="minutes later"))
            self.charge(
                self.platform_or_anyone(data),
                # Looked up again each time: every accepted charge replaces the model.
                next(a for a in self.model.accounts if a.db_id == account_id),
                data.draw(st.sampled_from(sorted(PRICES)), label="feature"),
                data.draw(st.sampled_from(AI_MODELS), label="AI model"),
                data.draw(charge_credits, label="credits"),
                data.draw(st.booleans(), label="failed"),
            )

    def charge(
        self, actor: Actor, account: MAccount, feature: str, ai_model: str | None,
        credits: int | None, failed: bool,
    ) -> None:
        kwargs: dict[str, Any] = {
            "account_id": account.db_id, "feature_code": feature,
            "external_id": self.key("charge"), "occurred_at": self.now,
            "status": "failed" if failed else "succeeded", "credits": credits, "model": ai_model,
            "failure_reason": "generation timed out" if failed else None,
        }
        outcome = self.both(
            "charge", (actor.staff_id, account, feature, ai_model, credits, failed, self.now),
            lambda: record_charge(self.db, actor, **kwargs),
        )
        if outcome is None:
            return
        expected, actual = outcome
        charge = expected.charge
        assert charge is not None and isinstance(actual, ChargeResult)
        charge.db_id = actual.charge_id
        assert actual.credits == charge.cost
        assert list(actual.draws) == [(g.db_id, n) for g, n in charge.draws]
        other_feature = "video_script" if feature != "video_script" else "url_brief"
        self.remember(
            lambda: record_charge(self.db, actor, **kwargs),
            lambda: record_charge(self.db, actor, **{**kwargs, "feature_code": other_feature}),
            actual,
        )

    @rule(data=st.data(), package=st.sampled_from(sorted(PACKAGE_CREDITS)))
    def package_is_bought(self, data: st.DataObject, package: str) -> None:
        actor = self.platform_or_anyone(data)
        account = data.draw(st.sampled_from(self.model.accounts), label="account")
        self.touched = account.db_id
        kwargs: dict[str, Any] = {
            "account_id": account.db_id, "package_code": package,
            "payment_reference": f"pay-{next(self.keys)}", "idempotency_key": self.key("buy"),
            "at": self.now,
        }
        outcome = self.both(
            "buy", (actor.staff_id, account, package, self.now),
            lambda: buy_package(self.db, actor, **kwargs),
        )
        if outcome is not None:
            self.remember(
                lambda: buy_package(self.db, actor, **kwargs),
                lambda: buy_package(self.db, actor, **{**kwargs, "payment_reference": "other"}),
                outcome[1],
            )

    @rule(data=st.data())
    def periods_are_rolled(self, data: st.DataObject) -> None:
        actor = self.staff_member(data, {"admin", "system"})
        self.both(
            "roll_all", (actor.staff_id, self.now),
            lambda: roll_periods(self.db, actor, until=self.now, batch_size=2),
        )

    # -- staff: refunds, adjustments, reversals, approvals -----------------------------

    @precondition(lambda self: bool(self.model.charges))
    @rule(data=st.data())
    def charges_are_refunded(self, data: st.DataObject) -> None:
        actor = self.staff_member(data, HUMAN_ROLES)
        charges = self.model.charges
        # Mostly charges that can still be refunded; any charge now and then.
        open_ = [c for c in charges if c.refund is None and c.cost > 0]
        pool = open_ if open_ and not rarely(data, "any charge") else charges
        first = data.draw(st.sampled_from(pool), label="charge")
        account = first.account
        if rarely(data, "from another account"):
            account = data.draw(st.sampled_from(self.model.accounts), label="account")
        self.touched = account.db_id
        chosen: list[MCharge | None] = [first]
        for _ in range(data.draw(st.integers(0, 2), label="more charges")):
            mates = [c for c in pool if c not in chosen and c.account is first.account]
            if mates:
                chosen.append(data.draw(st.sampled_from(mates), label="charge"))
        if rarely(data, "unknown charge"):
            chosen.append(None)
        items: list[tuple[MCharge | None, int | None]] = []
        for charge in chosen:
            amount = None  # the full cost
            if data.draw(st.booleans(), label="partial"):
                cost = charge.cost if charge is not None else 10
                if rarely(data, "above the cost"):
                    amount = cost + data.draw(st.integers(1, 50), label="excess")
                elif rarely(data, "zero"):
                    amount = 0
                else:
                    amount = min(cost, data.draw(st.one_of(
                        st.integers(1, max(cost, 1)),
                        st.sampled_from([REFUND_LIMIT, REFUND_LIMIT + 1]),  # at the limit
                    ), label="amount")) or 1
            items.append((charge, amount))
        reason = data.draw(st.sampled_from(
            ["failed_generation", "duplicate_charge", "quality_problem", "goodwill"]
        ), label="reason")
        refund_items = [
            RefundItem(c.db_id if c is not None else NO_SUCH_ID, amount)  # type: ignore[arg-type]
            for c, amount in items
        ]
        kwargs: dict[str, Any] = {
            "account_id": account.db_id, "items": refund_items, "reason_code": reason,
            "ticket": f"T-{next(self.keys)}", "idempotency_key": self.key("refund"),
            "at": self.now,
        }
        outcome = self.both(
            "refund", (actor.staff_id, account, items, self.now),
            lambda: refund_charges(self.db, actor, **kwargs),
        )
        if outcome is not None:
            self.remember(
                lambda: refund_charges(self.db, actor, **kwargs),
                lambda: refund_charges(self.db, actor, **{**kwargs, "ticket": "T-other"}),
                outcome[1],
            )

    @rule(data=st.data(), size=adjust_sizes, remove=st.booleans())
    def purchased_credits_are_adjusted(
        self, data: st.DataObject, size: int, remove: bool
    ) -> None:
        actor = self.staff_member(data, ADJUSTER_ROLES)
        account = data.draw(st.sampled_from(self.model.accounts), label="account")
        self.touched = account.db_id
        delta = -size if remove else size
        if rarely(data, "zero"):
            delta = 0
        reason = data.draw(st.sampled_from(
            ["manual_sale", "compensation", "chargeback", "correction"]
        ), label="reason")
        kwargs: dict[str, Any] = {
            "account_id": account.db_id, "delta": delta, "reason_code": reason,
            "reference": f"R-{next(self.keys)}", "idempotency_key": self.key("adjust"),
            "at": self.now,
        }
        outcome = self.both(
            "adjust", (actor.staff_id, account, delta, self.now),
            lambda: adjust_purchased(self.db, actor, **kwargs),
        )
        if outcome is not None:
            self.remember(
                lambda: adjust_purchased(self.db, actor, **kwargs),
                lambda: adjust_purchased(self.db, actor, **{**kwargs, "reference": "R-other"}),
                outcome[1],
            )

    # Only while something can still be reversed; already-reversed ones are tried too.
    @precondition(lambda self: any(
        not t.reversed for t in [*self.model.refunds, *self.model.adjustments]
    ))
    @rule(data=st.data())
    def a_refund_or_adjustment_is_reversed(self, data: st.DataObject) -> None:
        targets: list[MRefund | MAdjustment] = [*self.model.refunds, *self.model.adjustments]
        open_ = [t for t in targets if not t.reversed]
        pool = open_ if open_ and not rarely(data, "any target") else targets
        target: MRefund | MAdjustment | None = data.draw(st.sampled_from(pool), "target")
        assert target is not None
        if isinstance(target, MRefund):
            which, account = "refund_id", target.charge.account
            actor = self.staff_member(data, HUMAN_ROLES)
        else:
            which, account = "adjustment_id", target.account
            actor = self.staff_member(data, ADJUSTER_ROLES)
        self.touched = account.db_id
        target_id = target.db_id
        if rarely(data, "unknown target"):
            target, target_id = None, NO_SUCH_ID
        kwargs: dict[str, Any] = {
            which: target_id, "reason": "entered by mistake",
            "reference": f"C-{next(self.keys)}", "idempotency_key": self.key("reverse"),
            "at": self.now,
        }
        outcome = self.both(
            "reverse", (actor.staff_id, target, self.now),
            lambda: reverse(self.db, actor, **kwargs),
        )
        if outcome is not None:
            self.remember(
                lambda: reverse(self.db, actor, **kwargs),
                lambda: reverse(self.db, actor, **{**kwargs, "reference": "C-other"}),
                outcome[1],
            )

    def request_and_approver(self, data: st.DataObject) -> tuple[MRequest | None, Actor]:
        requests = self.model.requests
        pending = [r for r in requests if r.status == "pending"]
        request: MRequest | None = data.draw(
            st.sampled_from(pending) if pending and not rarely(data, "any request")
            else st.sampled_from(requests),
            label="request",
        )
        if rarely(data, "unknown request"):
            request = None
        if request is not None:
            self.touched = request.account.db_id
        if request is not None and data.draw(st.integers(0, 3), label="anyone") != 1:
            colleagues = [a for a in self.humans
                          if a.role in APPROVER_ROLES and a.staff_id != request.requester]
            return request, data.draw(st.sampled_from(colleagues), label="approver")
        return request, data.draw(st.sampled_from(self.staff), label="approver")

    # Only while a request is pending; decided ones are tried too.
    @precondition(lambda self: any(r.status == "pending" for r in self.model.requests))
    @rule(data=st.data())
    def a_request_is_approved(self, data: st.DataObject) -> None:
        request, actor = self.request_and_approver(data)
        kwargs: dict[str, Any] = {
            "request_id": request.db_id if request is not None else NO_SUCH_ID,
            "idempotency_key": self.key("approve"), "at": self.now,
        }
        outcome = self.both(
            "decide", (actor.staff_id, request, True, self.now),
            lambda: approve_request(self.db, actor, **kwargs),
        )
        if outcome is not None:
            self.remember(
                lambda: approve_request(self.db, actor, **kwargs),
                lambda: approve_request(self.db, actor, **{**kwargs, "comment": "changed"}),
                outcome[1],
            )

    @precondition(lambda self: any(r.status == "pending" for r in self.model.requests))
    @rule(data=st.data())
    def a_request_is_rejected(self, data: st.DataObject) -> None:
        request, actor = self.request_and_approver(data)
        kwargs: dict[str, Any] = {
            "request_id": request.db_id if request is not None else NO_SUCH_ID,
            "comment": "not justified", "idempotency_key": self.key("reject"), "at": self.now,
        }
        outcome = self.both(
            "decide", (actor.staff_id, request, False, self.now),
            lambda: reject_request(self.db, actor, **kwargs),
        )
        if outcome is not None:
            self.remember(
                lambda: reject_request(self.db, actor, **kwargs),
                lambda: reject_request(self.db, actor, **{**kwargs, "comment": "changed"}),
                outcome[1],
            )

    @precondition(lambda self: bool(self.submitted))
    @rule(data=st.data(), misuse=st.booleans())
    def a_submission_is_sent_again(self, data: st.DataObject, misuse: bool) -> None:
        """Same key, same change: the stored answer, nothing applied twice. Same key,
        another change: refused."""
        sent = data.draw(st.sampled_from(self.submitted), label="submission")
        if misuse:
            with pytest.raises(IdempotencyConflict):
                sent.conflicting()
            return
        again = sent.again()
        first = sent.result
        assert again.replayed
        if isinstance(first, ChargeResult):
            assert isinstance(again, ChargeResult)
            assert (again.charge_id, again.credits) == (first.charge_id, first.credits)
        else:
            assert isinstance(again, OperationResult)
            assert again == OperationResult(**{**first.__dict__, "replayed": True})

    # -- the checks after every step -----------------------------------------------------

    @invariant()
    def agrees(self) -> None:
        """The database holds exactly the model's credits, and its own sums add up."""
        now = self.now
        model = self.model

        # One read transaction, so that the figures are consistent with each other.
        with self.reader.connect() as conn:
            db = {
                name: conn.execute(statement).all()
                for name, statement in (
                    ("accounts", ACCOUNT_ROWS), ("grants", GRANT_ROWS),
                    ("refunds", REFUND_ROWS), ("charge_moves", CHARGE_MOVES),
                    ("requests", REQUEST_ROWS), ("counts", ROW_COUNTS),
                )
            }
            ledger = [tuple(r) for r in conn.execute(NEW_LEDGER, {"after": 0})]
        # Append-only: every entry is still there, unchanged, and nothing else was added.
        assert ledger == self.ledger, "the ledger differs from the entries written so far"
        assert tuple(db["counts"][0]) == (self.operations, len(model.charges)), (
            "operations and charges recorded (database, then model)"
        )

        # Accounts: cached balances, failed-charge count and current period.
        by_id = {a.db_id: a for a in model.accounts}
        assert [row[0] for row in db["accounts"]] == sorted(by_id)
        for acc_id, plan, purchased, refund, unrefunded, start, end in db["accounts"]:
            account = by_id[acc_id]
            assert min(plan, purchased, refund) >= 0
            assert (plan, purchased, refund) == account.cached(), f"account #{acc_id}"
            assert unrefunded == model.unrefunded_failed(account), f"account #{acc_id}"
            assert (start, end) == (account.period_start, account.period_end)

        # Grants: every one known to the model, remaining = its ledger sum = the model's.
        grants = {g.db_id: g for g in model.grants}
        assert [row[0] for row in db["grants"]] == sorted(grants)  # type: ignore[type-var]
        live: dict[int, list[int]] = {a.db_id: [0, 0, 0] for a in model.accounts}
        for grant_id, acc_id, source, granted, remaining, expires, ledger, misplaced in db[
            "grants"
        ]:
            grant = grants[grant_id]
            assert remaining == ledger, f"grant {grant_id}: remaining is not the ledger sum"
            assert 0 <= remaining <= granted
            assert misplaced == 0, f"grant {grant_id} has entries booked on another account"
            assert (acc_id, remaining) == (grant.account.db_id, grant.remaining), (
                f"grant {grant_id} holds {remaining}, the model says {grant.remaining}"
            )
            if expires is None or now < expires:
                live[acc_id][0 if source == "plan" else 2 if source == "refund" else 1] += (
                    remaining
                )
        # Balances usable now (what a screen shows before the next roll).
        for account in model.accounts:
            assert tuple(live[account.db_id]) == account.live(now), f"#{account.db_id}"

        # Refunds: one per charge at most, never above its cost, matching the ledger.
        assert [(r[0], r[1], r[2]) for r in db["refunds"]] == [
            (r.db_id, r.charge.db_id, r.credits) for r in model.refunds
        ]
        assert all(0 < refunded <= cost for _, _, refunded, cost in db["refunds"])
        moves = {(charge_id, kind): int(total) for charge_id, kind, total in db["charge_moves"]}
        for charge in model.charges:
            refund = charge.refund
            assert -moves.get((charge.db_id, "charge"), 0) == charge.cost
            assert moves.get((charge.db_id, "refund"), 0) == (refund.credits if refund else 0)
            taken_back = refund.credits if refund is not None and refund.reversed else 0
            assert -moves.get((charge.db_id, "reversal"), 0) == taken_back

        # Approval requests and their state.
        assert [tuple(r) for r in db["requests"]] == sorted(
            (r.db_id, r.status) for r in model.requests
        )

        # The usage rollups: row for row the sums of the charges, refunds and reversals.
        assert_rollups_exact(self.db)

        # The screens' own summary: of the account this step acted on, else of each
        # account in turn (after a time step: expired, not yet rolled). All at the end.
        self.steps += 1
        accounts = model.accounts
        chosen = self.touched or accounts[self.steps % len(accounts)].db_id
        self.summary_matches(next(a for a in accounts if a.db_id == chosen))
        self.touched = None

    def summary_matches(self, account: MAccount) -> None:
        summary = account_summary(self.db, account.db_id, at=self.now)
        live_now = account.live(self.now)
        shown = (summary.plan_left, summary.purchased, summary.refund)
        assert shown == live_now, f"account_summary of #{account.db_id}: {summary}"
        assert summary.total == sum(live_now)
        assert summary.unrefunded_failed == self.model.unrefunded_failed(account)
        assert (summary.period_start, summary.next_reset) == period_at(
            account.billing_day, self.now
        )

    def final_checks(self) -> None:
        """The slower whole-database checks, once per example on its final state."""
        for account in self.model.accounts:
            self.summary_matches(account)
        report = check_database(self.db, at=self.now)
        assert report.ok, report.render()


# ---------------------------------------------------------------------------------------
# The test
# ---------------------------------------------------------------------------------------


def example_count(dialect: str) -> int:
    """200 / 50 examples under CI, fewer locally unless CREDITS_DESK_STATEFUL_EXAMPLES."""
    chosen = os.environ.get("CREDITS_DESK_STATEFUL_EXAMPLES")
    if chosen:
        return int(chosen)
    ci = os.environ.get("CI", "").lower() == "true"
    if dialect == "sqlite":
        return 200 if ci else 30
    return 50 if ci else 15


def seed(db: Database) -> list[Actor]:
    """The catalogue and one or two staff members of every role; returns them and the
    platform's 'system' actor. Done once per test: every example starts from a copy."""
    db.write(ensure_catalog)
    (name, role), *others = STAFF
    first = create_staff(db, None, username=name, display_name=name.title(), role=role)
    staff = [first] + [
        create_staff(db, first, username=name, display_name=name.title(), role=role)
        for name, role in others
    ]
    return [*staff, sign_in(db, "system")]


def test_random_operations_agree_with_the_model(
    db_url: str, request: pytest.FixtureRequest
) -> None:
    dialect = make_url(db_url).get_backend_name()
    if dialect == "sqlite":
        # Seed the fresh database once; before each example copy that file over the one
        # the examples use. The engine is kept (only its connections are closed): a new
        # engine per example would compile every statement again.
        seeded = Path(str(make_url(db_url).database))
        seeding = Database.open(db_url)
        try:
            actors = seed(seeding)
        finally:
            seeding.close()  # the last connection folds the WAL back into the file
        assert not Path(f"{seeded}-wal").exists()
        work = seeded.with_name("example.db")
        shared = Database.open(f"sqlite:///{work}")
        request.addfinalizer(shared.close)

        def fresh() -> Database:
            shared.engine.dispose()
            for leftover in (Path(f"{work}-wal"), Path(f"{work}-shm")):
                leftover.unlink(missing_ok=True)
            shutil.copyfile(seeded, work)
            return shared

    else:
        # Seed once, then snapshot that state with conftest's PgBaseline: its restore()
        # TRUNCATEs every table but alembic_version (RESTART IDENTITY) and puts the rows
        # and sequence values back, before each example.
        shared = Database.open(db_url)
        request.addfinalizer(shared.close)
        actors = seed(shared)
        baseline = type(request.getfixturevalue("pg_database"))(db_url)
        request.addfinalizer(baseline.close)

        def fresh() -> Database:
            baseline.restore()
            return shared

    machine = type(
        "CreditsMachineOn" + dialect.title(),
        (CreditsMachine,),
        {"fresh": staticmethod(fresh), "staff_actors": actors},
    )
    OUTCOMES.clear()
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=example_count(dialect),
            stateful_step_count=STEP_COUNT,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
            print_blob=True,
        ),
    )
    print(f"\nOutcomes on {dialect}:")
    for outcome, count in sorted(OUTCOMES.items()):
        print(f"{count:7d}  {outcome}")
