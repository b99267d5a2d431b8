"""Credit grants and how charges, refunds and removals are spread over them.

An account's credits are held in grants: the plan allotment of each billing period (which
expires when the period ends), purchased packages and staff adjustments (which never
expire) and refund credits (which never expire either). The functions here only *plan*:
they read ``GrantView`` snapshots and say how many credits to take from or give to which
grant; the store applies the plan inside one transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from credits_desktop.domain._checks import require_int, require_utc
from credits_desktop.domain.errors import InsufficientCredits, InsufficientPurchased

__all__ = [
    "PURCHASED_SOURCES",
    "Balance",
    "Draw",
    "GrantSource",
    "GrantView",
    "Placement",
    "balance",
    "consumption_order",
    "is_live",
    "plan_charge",
    "plan_purchased_removal",
    "plan_refund",
]


class GrantSource(StrEnum):
    """Where a grant's credits came from."""

    PLAN = "plan"
    PURCHASE = "purchase"
    REFUND = "refund"
    ADJUSTMENT = "adjustment"


# Staff adjustments count as purchased credits: they add to or remove from what the
# customer bought, and only these may be removed by an adjustment.
PURCHASED_SOURCES: frozenset[GrantSource] = frozenset(
    {GrantSource.PURCHASE, GrantSource.ADJUSTMENT}
)


@dataclass(frozen=True)
class GrantView:
    """A snapshot of one grant: what is left of it and when it stops counting."""

    id: int
    source: GrantSource
    remaining: int
    expires_at: datetime | None
    created_at: datetime

    def __post_init__(self) -> None:
        # The store may hand over the raw column text; an unknown source is a ValueError.
        object.__setattr__(self, "source", GrantSource(self.source))
        require_int(self.remaining, "The remaining credits")
        if self.remaining < 0:
            raise ValueError(f"A grant cannot hold a negative balance ({self.remaining}).")
        if self.expires_at is not None:
            object.__setattr__(self, "expires_at", require_utc(self.expires_at, "The expiry"))
        object.__setattr__(self, "created_at", require_utc(self.created_at, "The creation time"))


def is_live(grant: GrantView, at: datetime) -> bool:
    """Whether the grant's credits can be used at ``at``.

    Expiry is exclusive: a grant expiring exactly at ``at`` is already gone, matching the
    half-open billing periods (the plan credits of a period are not usable at its end).
    Creation time is deliberately not checked: services stamp ``created_at`` from the clock
    and may charge "as of" an instant a moment earlier.
    """
    at = require_utc(at, "The time")
    return grant.expires_at is None or at < grant.expires_at


def consumption_order(grants: Iterable[GrantView], at: datetime) -> list[GrantView]:
    """Return the usable grants in the order a charge draws from them.

    Soonest expiry first (so plan credits are used before they lapse), non-expiring grants
    last; ties by creation time, then id, so the order is fully deterministic.
    """
    at = require_utc(at, "The time")
    usable = [g for g in grants if g.remaining > 0 and is_live(g, at)]
    return sorted(
        usable,
        key=lambda g: (
            g.expires_at is None,
            # Placeholder for non-expiring grants; they are already ordered by the flag above.
            g.expires_at if g.expires_at is not None else at,
            g.created_at,
            g.id,
        ),
    )


@dataclass(frozen=True)
class Draw:
    """Take ``credits`` from grant ``grant_id``."""

    grant_id: int
    credits: int


def _check_amount(amount: int, *, allow_zero: bool) -> int:
    require_int(amount, "The amount")
    if amount < 0 or (amount == 0 and not allow_zero):
        bound = "zero or more" if allow_zero else "more than zero"
        raise ValueError(f"The amount must be {bound} credits; got {amount}.")
    return amount


def plan_charge(grants: Iterable[GrantView], amount: int, at: datetime) -> list[Draw]:
    """Plan a charge of ``amount`` credits at ``at``.

    Draws in ``consumption_order``. The charge is all or nothing: if the live balance is
    short, InsufficientCredits is raised and nothing is drawn, so balances never go negative.
    """
    _check_amount(amount, allow_zero=True)
    ordered = consumption_order(grants, at)
    if amount == 0:
        return []
    available = sum(g.remaining for g in ordered)
    if amount > available:
        raise InsufficientCredits(available, amount)
    draws: list[Draw] = []
    left = amount
    for grant in ordered:
        take = min(grant.remaining, left)
        draws.append(Draw(grant.id, take))
        left -= take
        if left == 0:
            break
    return draws


@dataclass(frozen=True)
class Placement:
    """Give ``credits`` back to grant ``grant_id``; ``None`` means a new non-expiring
    refund grant."""

    grant_id: int | None
    credits: int


def plan_refund(
    draws: Sequence[tuple[GrantView, int]], amount: int, at: datetime
) -> list[Placement]:
    """Plan where the credits of a refund go.

    ``draws`` are the grants the charge drew from, in the order drawn, with the credits drawn
    from each; ``amount`` is the part of the charge refunded (a partial refund is allowed).
    Credits go back in reverse draw order, so the longest-lived credits come back first,
    which is best for the customer. A grant still live at ``at`` gets its credits back;
    credits whose grant has expired are not lost but come back together as one non-expiring
    refund grant, placed last.
    """
    at = require_utc(at, "The time")
    _check_amount(amount, allow_zero=False)
    drawn_total = 0
    for _grant, credits in draws:
        require_int(credits, "The credits drawn")
        if credits < 0:
            raise ValueError(f"A charge cannot have drawn a negative amount ({credits}).")
        drawn_total += credits
    if amount > drawn_total:
        raise ValueError(
            f"A refund can return at most what the charge cost ({drawn_total:,} credits); "
            f"{amount:,} were asked."
        )
    placements: list[Placement] = []
    expired = 0
    left = amount
    for grant, credits in reversed(draws):
        if left == 0:
            break
        give = min(credits, left)
        if give == 0:
            continue
        left -= give
        if is_live(grant, at):
            placements.append(Placement(grant.id, give))
        else:
            expired += give
    if expired:
        placements.append(Placement(None, expired))
    return placements


def plan_purchased_removal(grants: Iterable[GrantView], amount: int, at: datetime) -> list[Draw]:
    """Plan the removal of ``amount`` purchased credits by a staff adjustment.

    Only purchased and adjustment grants are touched (plan and refund credits are never
    removed this way), oldest first. Raises InsufficientPurchased rather than leaving a
    grant, or the purchased balance, below zero.
    """
    at = require_utc(at, "The time")
    _check_amount(amount, allow_zero=False)
    # Purchased grants never expire; the liveness check only keeps the available figure
    # identical to balance().purchased should one ever carry an expiry.
    candidates = sorted(
        (g for g in grants if g.source in PURCHASED_SOURCES and g.remaining > 0 and is_live(g, at)),
        key=lambda g: (g.created_at, g.id),
    )
    available = sum(g.remaining for g in candidates)
    if amount > available:
        raise InsufficientPurchased(available, amount)
    draws: list[Draw] = []
    left = amount
    for grant in candidates:
        take = min(grant.remaining, left)
        draws.append(Draw(grant.id, take))
        left -= take
        if left == 0:
            break
    return draws


@dataclass(frozen=True)
class Balance:
    """Credits usable right now, by kind."""

    plan: int
    purchased: int
    refund: int

    @property
    def total(self) -> int:
        return self.plan + self.purchased + self.refund


def balance(grants: Iterable[GrantView], at: datetime) -> Balance:
    """Return the live balance at ``at``; expired grants count for nothing."""
    at = require_utc(at, "The time")
    totals = dict.fromkeys(GrantSource, 0)
    for grant in grants:
        if is_live(grant, at):
            totals[grant.source] += grant.remaining
    return Balance(
        plan=totals[GrantSource.PLAN],
        purchased=totals[GrantSource.PURCHASE] + totals[GrantSource.ADJUSTMENT],
        refund=totals[GrantSource.REFUND],
    )
