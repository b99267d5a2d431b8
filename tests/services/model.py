"""A plain in-memory model of the credit rules, for the stateful test.

A re-statement of the product brief (``/work/shared/product/BRIEF.md``) and of the
catalogue that calls nothing in ``credits_desktop.domain``, so that the code is checked
against a second, independent reading of the rules. It keeps every grant with what is
left of it and when it expires, and says for each operation what the services must do:
apply it (and how), turn it into a request for approval, or refuse it with which error.

- Plan credits are granted each billing period (billing day 29-31 falls on the last day
  of shorter months) and expire at its end; purchased and refund credits never expire.
- A charge takes from the live credits that expire soonest; a charge the live balance
  cannot cover is refused.
- A refund returns at most the charge's cost, once; credits go back to the grants they
  came from while those are live, the rest into one new non-expiring refund grant.
- Purchased credits are added as a new grant or removed from purchased grants only,
  oldest first, never below zero.
- Permissions: the table of the brief, with its 500 (refund) and 1,000 (adjustment)
  limits; "request" means pending until a different approver approves it.
"""

from __future__ import annotations

import calendar
import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from credits_desktop.services.errors import (
    AlreadyRefunded,
    CreditsDeskError,
    InvalidInput,
    NotFound,
    PermissionDenied,
    RuleBroken,
)

# -- the rules' numbers and roles (from the brief and the catalogue) -----------------------

PLAN_ALLOTMENTS = {"starter": 500, "growth": 2_000}
PACKAGE_CREDITS = {"pack_500": 500, "pack_2000": 2_000}
# feature -> {model or None (any model): credits}
PRICES: dict[str, dict[str | None, int]] = {
    "ad_image": {None: 40, "imagen-ultra": 60, "flux-fast": 25},
    "video_transcription": {None: 12},
    "video_script": {None: 15},
    "url_brief": {None: 8},
    "radar_analysis": {None: 10},
    "review_mining": {None: 20},
    "asset_tagging": {None: 2},
}
DISABLED_FEATURES = {"asset_tagging"}  # "coming soon"
AI_MODELS: list[str | None] = [None, "imagen-ultra", "flux-fast", "some-new-model"]
REFUND_LIMIT = 500
ADJUST_LIMIT = 1_000
APPROVER_ROLES = {"finance", "manager", "admin"}
ADJUSTER_ROLES = {"finance", "admin"}
UNLIMITED_REFUNDERS = {"manager", "admin"}
HUMAN_ROLES = {"support", "finance", "manager", "admin"}
PURCHASED = {"purchase", "adjustment"}


def billing_date(year: int, month: int, day: int) -> datetime:
    """Midnight UTC of the billing day in that month, clamped to the month's last day."""
    year += (month - 1) // 12
    month = (month - 1) % 12 + 1
    return datetime(year, month, min(day, calendar.monthrange(year, month)[1]), tzinfo=UTC)


def period_at(billing_day: int, t: datetime) -> tuple[datetime, datetime]:
    """The half-open billing period [start, end) holding ``t``."""
    this_month = billing_date(t.year, t.month, billing_day)
    start = this_month if t >= this_month else billing_date(t.year, t.month - 1, billing_day)
    return start, billing_date(start.year, start.month + 1, billing_day)


def is_live(grant: MGrant, t: datetime) -> bool:
    return grant.expires_at is None or t < grant.expires_at


class Refused(Exception):
    """The model says the service must refuse, raising ``error`` (exactly that type)."""

    def __init__(self, error: type[CreditsDeskError], why: str) -> None:
        super().__init__(f"{error.__name__}: {why}")
        self.error = error


@dataclass(eq=False)
class MGrant:
    account: MAccount
    source: str  # plan, purchase, adjustment, refund
    granted: int
    remaining: int
    created_at: datetime
    expires_at: datetime | None
    seq: int  # creation order, which is the order of the database ids
    db_id: int | None = None


@dataclass(eq=False)
class MAccount:
    db_id: int
    billing_day: int
    allotment: int
    period_start: datetime
    period_end: datetime
    grants: list[MGrant] = field(default_factory=list)

    def cached(self) -> tuple[int, int, int]:
        """(plan, purchased, refund): sums of remaining, as the account row caches them."""
        return self._sums(lambda g: True)

    def live(self, t: datetime) -> tuple[int, int, int]:
        """The same, counting only grants still live at ``t``."""
        return self._sums(lambda g: is_live(g, t))

    def _sums(self, keep: Callable[[MGrant], bool]) -> tuple[int, int, int]:
        sums = {"plan": 0, "purchased": 0, "refund": 0}
        for g in self.grants:
            if keep(g):
                sums["purchased" if g.source in PURCHASED else g.source] += g.remaining
        return sums["plan"], sums["purchased"], sums["refund"]


@dataclass(eq=False)
class MCharge:
    account: MAccount
    cost: int
    failed: bool
    feature: str
    draws: list[tuple[MGrant, int]]  # in the order drawn
    db_id: int | None = None
    refund: MRefund | None = None


@dataclass(eq=False)
class MRefund:
    charge: MCharge
    credits: int
    placements: list[tuple[MGrant, int]]  # where the credits went back to
    db_id: int | None = None
    reversed: bool = False


@dataclass(eq=False)
class MAdjustment:
    account: MAccount
    delta: int
    db_id: int | None = None
    reversed: bool = False


@dataclass(eq=False)
class MRequest:
    kind: str  # refund, adjustment, reversal
    account: MAccount
    requester: int
    credits: int
    # refund: list of (charge, amount or None); adjustment: delta; reversal: the target.
    payload: Any
    status: str = "pending"
    db_id: int | None = None


@dataclass
class Expect:
    """What the model says an accepted operation reports, and what it created."""

    status: str
    credits: int
    charge: MCharge | None = None
    refunds: list[MRefund] = field(default_factory=list)
    adjustment: MAdjustment | None = None
    request: MRequest | None = None


class Model:
    """The credits of a few accounts, as the rules say they must be.

    Operations raise ``Refused`` for what the services must refuse; the machine runs
    them on a copy and keeps the copy only when the operation was accepted, which is the
    model's "transaction".
    """

    def __init__(self, roles: dict[int, str]) -> None:
        self.roles = roles  # staff id -> role
        self.accounts: list[MAccount] = []
        self.grants: list[MGrant] = []
        self.charges: list[MCharge] = []
        self.refunds: list[MRefund] = []
        self.adjustments: list[MAdjustment] = []
        self.requests: list[MRequest] = []

    # -- grants and periods ------------------------------------------------------------

    def _grant(
        self, account: MAccount, source: str, credits: int, at: datetime,
        expires_at: datetime | None = None,
    ) -> MGrant:
        grant = MGrant(account, source, credits, credits, at, expires_at, len(self.grants))
        self.grants.append(grant)
        account.grants.append(grant)
        return grant

    def open_account(self, db_id: int, billing_day: int, plan: str, at: datetime) -> MAccount:
        start, end = period_at(billing_day, at)
        account = MAccount(db_id, billing_day, PLAN_ALLOTMENTS[plan], start, end)
        self.accounts.append(account)
        self._grant(account, "plan", account.allotment, start, end)
        return account

    def roll(self, account: MAccount, t: datetime) -> None:
        """Expire ended plan grants and grant every period begun by ``t``."""
        while account.period_end <= t:
            self._expire(account, account.period_end)
            start, end = period_at(account.billing_day, account.period_end)
            account.period_start, account.period_end = start, end
            self._grant(account, "plan", account.allotment, start, end)
        self._expire(account, t)

    @staticmethod
    def _expire(account: MAccount, t: datetime) -> None:
        for g in account.grants:
            if g.expires_at is not None and g.expires_at <= t:
                g.remaining = 0

    @staticmethod
    def spending_order(account: MAccount, t: datetime) -> list[MGrant]:
        """Live grants holding credits, soonest expiry first, never-expiring last."""
        usable = [g for g in account.grants if g.remaining > 0 and is_live(g, t)]
        return sorted(
            usable,
            key=lambda g: (g.expires_at is None, g.expires_at or t, g.created_at, g.seq),
        )

    def _remove_purchased(self, account: MAccount, amount: int) -> None:
        """Take ``amount`` from purchased grants only, oldest first, or refuse."""
        candidates = sorted(
            (g for g in account.grants if g.source in PURCHASED and g.remaining > 0),
            key=lambda g: (g.created_at, g.seq),
        )
        if sum(g.remaining for g in candidates) < amount:
            raise Refused(RuleBroken, "not enough purchased credits")
        for g in candidates:
            take = min(g.remaining, amount)
            g.remaining -= take
            amount -= take

    def _role(self, staff: int) -> str:
        return self.roles[staff]

    # -- the platform --------------------------------------------------------------------

    def charge(
        self, staff: int, account: MAccount, feature: str, ai_model: str | None,
        credits: int | None, failed: bool, t: datetime,
    ) -> Expect:
        if self._role(staff) != "system":
            raise Refused(PermissionDenied, "usage comes from the platform")
        if feature in DISABLED_FEATURES:
            raise Refused(RuleBroken, "feature not available")
        prices = PRICES[feature]
        cost = credits if credits is not None else prices.get(ai_model, prices[None])
        self.roll(account, t)
        order = self.spending_order(account, t)
        if sum(g.remaining for g in order) < cost:
            raise Refused(RuleBroken, "not enough credits")
        draws: list[tuple[MGrant, int]] = []
        left = cost
        for g in order:
            if left == 0:
                break
            take = min(g.remaining, left)
            g.remaining -= take
            draws.append((g, take))
            left -= take
        charge = MCharge(account, cost, failed, feature, draws)
        self.charges.append(charge)
        return Expect("applied", cost, charge=charge)

    def buy(self, staff: int, account: MAccount, package: str, t: datetime) -> Expect:
        if self._role(staff) != "system":
            raise Refused(PermissionDenied, "customers buy through the platform")
        self.roll(account, t)
        self._grant(account, "purchase", PACKAGE_CREDITS[package], t)
        return Expect("applied", PACKAGE_CREDITS[package])

    def roll_all(self, staff: int, t: datetime) -> None:
        if self._role(staff) not in ("admin", "system"):
            raise Refused(PermissionDenied, "rolling periods needs admin")
        for account in sorted(self.accounts, key=lambda a: a.db_id):
            self.roll(account, t)

    # -- refunds -------------------------------------------------------------------------

    def _checked_refund(
        self, account: MAccount, items: Sequence[tuple[MCharge | None, int | None]]
    ) -> list[tuple[MCharge, int]]:
        plan = []
        for charge, wanted in items:
            if charge is None:
                raise Refused(NotFound, "no such charge")
            if charge.account is not account:
                raise Refused(RuleBroken, "charge of another account")
            if charge.refund is not None:
                raise Refused(AlreadyRefunded, "already refunded")
            if charge.cost == 0:
                raise Refused(RuleBroken, "charge cost nothing")
            amount = charge.cost if wanted is None else wanted
            if amount > charge.cost:
                raise Refused(RuleBroken, "refund above cost")
            plan.append((charge, amount))
        return plan

    def refund(
        self, staff: int, account: MAccount,
        items: Sequence[tuple[MCharge | None, int | None]], t: datetime,
    ) -> Expect:
        if any(amount is not None and amount < 1 for _, amount in items):
            raise Refused(InvalidInput, "refund amount below 1")
        role = self._role(staff)
        plan = self._checked_refund(account, items)
        if role not in HUMAN_ROLES:
            raise Refused(PermissionDenied, "the system account does not refund")
        total = sum(amount for _, amount in plan)
        # "Up to 500 credits per refund": the limit is on the refund's total, whatever
        # the number of charges in it.
        if role not in UNLIMITED_REFUNDERS and (
            total > REFUND_LIMIT or not all(charge.failed for charge, _ in plan)
        ):
            request = MRequest("refund", account, staff, total, list(items))
            self.requests.append(request)
            return Expect("requested", total, request=request)
        return self._apply_refund(account, plan, t)

    def _apply_refund(
        self, account: MAccount, plan: list[tuple[MCharge, int]], t: datetime
    ) -> Expect:
        self.roll(account, t)
        made = []
        for charge, amount in plan:
            placements: list[tuple[MGrant, int]] = []
            left, expired = amount, 0
            # Back in reverse draw order: the longest-lived credits come back first.
            for g, drawn in reversed(charge.draws):
                give = min(drawn, left)
                left -= give
                if give and is_live(g, t):
                    g.remaining += give
                    placements.append((g, give))
                else:
                    expired += give
            if expired:
                placements.append((self._grant(account, "refund", expired, t), expired))
            refund = MRefund(charge, amount, placements)
            charge.refund = refund
            self.refunds.append(refund)
            made.append(refund)
        return Expect("applied", sum(r.credits for r in made), refunds=made)

    # -- adjustments ---------------------------------------------------------------------

    def adjust(self, staff: int, account: MAccount, delta: int, t: datetime) -> Expect:
        if delta == 0:
            raise Refused(InvalidInput, "zero adjustment")
        if self._role(staff) not in ADJUSTER_ROLES:
            raise Refused(PermissionDenied, "adjusting needs finance or admin")
        if abs(delta) > ADJUST_LIMIT:
            request = MRequest("adjustment", account, staff, abs(delta), delta)
            self.requests.append(request)
            return Expect("requested", abs(delta), request=request)
        return self._apply_adjustment(account, delta, t)

    def _apply_adjustment(self, account: MAccount, delta: int, t: datetime) -> Expect:
        self.roll(account, t)
        if delta > 0:
            self._grant(account, "adjustment", delta, t)
        else:
            self._remove_purchased(account, -delta)
        adjustment = MAdjustment(account, delta)
        self.adjustments.append(adjustment)
        return Expect("applied", delta, adjustment=adjustment)

    # -- reversals -----------------------------------------------------------------------

    def reverse(self, staff: int, target: MRefund | MAdjustment | None, t: datetime) -> Expect:
        if target is None:
            raise Refused(NotFound, "nothing to reverse")
        if target.reversed:
            raise Refused(RuleBroken, "already reversed")
        role = self._role(staff)
        if isinstance(target, MRefund):
            size, account = target.credits, target.charge.account
            if role not in HUMAN_ROLES:
                raise Refused(PermissionDenied, "the system account does not refund")
            needs_request = role not in UNLIMITED_REFUNDERS and size > REFUND_LIMIT
        else:
            size, account = abs(target.delta), target.account
            if role not in ADJUSTER_ROLES:
                raise Refused(PermissionDenied, "adjusting needs finance or admin")
            needs_request = size > ADJUST_LIMIT
        if needs_request:
            request = MRequest("reversal", account, staff, size, target)
            self.requests.append(request)
            return Expect("requested", size, request=request)
        return self._apply_reversal(target, t)

    def _apply_reversal(self, target: MRefund | MAdjustment, t: datetime) -> Expect:
        if target.reversed:
            raise Refused(RuleBroken, "already reversed")
        if isinstance(target, MRefund):
            account = target.charge.account
            self.roll(account, t)
            takes: dict[MGrant, int] = {}
            left = target.credits
            # First from where the refund put the credits, while live ...
            for g, placed in target.placements:
                take = min(left, placed, g.remaining) if is_live(g, t) else 0
                if take:
                    takes[g] = take
                    left -= take
            # ... then from any live credits, in spending order.
            for g in self.spending_order(account, t):
                take = min(left, g.remaining - takes.get(g, 0))
                if take > 0:
                    takes[g] = takes.get(g, 0) + take
                    left -= take
            if left:
                raise Refused(RuleBroken, "refunded credits were spent")
            for g, take in takes.items():
                g.remaining -= take
            target.reversed = True
            return Expect("applied", -target.credits)
        self.roll(target.account, t)
        if target.delta > 0:
            self._remove_purchased(target.account, target.delta)
        else:
            self._grant(target.account, "adjustment", -target.delta, t)
        target.reversed = True
        return Expect("applied", -target.delta)

    # -- approvals -----------------------------------------------------------------------

    def decide(self, staff: int, request: MRequest | None, approve: bool, t: datetime) -> Expect:
        if request is None:
            raise Refused(NotFound, "no such request")
        if staff == request.requester:
            raise Refused(PermissionDenied, "own request")
        if self._role(staff) not in APPROVER_ROLES:
            raise Refused(PermissionDenied, "approving needs finance, manager or admin")
        if request.status != "pending":
            raise Refused(RuleBroken, "request already decided")
        if not approve:
            request.status = "rejected"
            return Expect("rejected", 0)
        # The service applies the request in a savepoint: a refusal leaves only the
        # request marked failed. Try it on a copy first, the same way.
        trial, trial_request = copy.deepcopy((self, request))
        try:
            trial._apply_request(trial_request, t)
        except Refused:
            request.status = "failed"
            return Expect("failed", 0)
        outcome = self._apply_request(request, t)
        request.status = "approved"
        return outcome

    def _apply_request(self, request: MRequest, t: datetime) -> Expect:
        if request.kind == "refund":
            plan = self._checked_refund(request.account, request.payload)
            return self._apply_refund(request.account, plan, t)
        if request.kind == "adjustment":
            return self._apply_adjustment(request.account, request.payload, t)
        return self._apply_reversal(request.payload, t)

    # -- derived figures -----------------------------------------------------------------

    def unrefunded_failed(self, account: MAccount) -> int:
        return sum(
            1 for c in self.charges
            if c.account is account and c.failed and c.cost > 0 and c.refund is None
        )
