"""Undoing a refund or an adjustment by a compensating entry (nothing is edited).

Each refund or adjustment can be reversed once (unique constraints on
``reversals``). Reversing takes credits back, so it is subject to the same
permission and limit as the original action:

- a refund's credits are taken back from the grants they were placed into,
  then from other live credits in consumption order; never below zero;
- an added adjustment is removed from purchased credits (never below zero);
- a removal is given back as a new non-expiring purchased grant.

Reversing a refund also takes it out of the usage rollup (``services.rollups``), in the
same transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select

from credits_desktop.domain.errors import InsufficientCredits, InsufficientPurchased
from credits_desktop.domain.grants import (
    Draw,
    GrantSource,
    consumption_order,
    plan_purchased_removal,
)
from credits_desktop.domain.permissions import Action, Decision, Verdict, decide
from credits_desktop.store.database import Database
from credits_desktop.store.models import Adjustment, LedgerEntry, Refund, Reversal, UsageCharge

from . import rollups
from . import validation as v
from .approvals_queue import create_request
from .errors import InvalidInput, NotFound, PermissionDenied, RuleBroken
from .operations import Actor, Outcome, WriteContext, perform
from .results import OperationResult


def reverse(
    db: Database,
    actor: Actor,
    *,
    reason: str,
    reference: str,
    idempotency_key: str,
    refund_id: int | None = None,
    adjustment_id: int | None = None,
    at: datetime | None = None,
) -> OperationResult:
    """Reverse one refund or one adjustment with its own reason and reference."""
    payload = reversal_payload(refund_id, adjustment_id, reason, reference)
    account_id = db.read(lambda s: _account_of(s, payload))
    payload["account_id"] = account_id
    return perform(
        db,
        actor,
        kind="reversal",
        idempotency_key=idempotency_key,
        request=payload,
        account_ids=[account_id],
        reason=f"Reversal: {payload['reason']}",
        reference=payload["reference"],
        note=None,
        at=at,
        body=lambda ctx: _reverse_or_request(ctx, payload),
    )


def reversal_payload(
    refund_id: int | None, adjustment_id: int | None, reason: str, reference: str
) -> dict[str, Any]:
    if (refund_id is None) == (adjustment_id is None):
        raise InvalidInput("Choose one refund or one adjustment to reverse.", "target")
    for value in (refund_id, adjustment_id):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise InvalidInput("The entry to reverse is not valid.", "target")
    return {
        "refund_id": refund_id,
        "adjustment_id": adjustment_id,
        "reason": v.required_text(reason, "reason", "A reason", max_length=200),
        "reference": v.required_text(
            reference, "reference", "A ticket or reference", max_length=v.TICKET_MAX
        ),
    }


def _account_of(session: Any, payload: dict[str, Any]) -> int:
    if payload["refund_id"] is not None:
        refund = session.get(Refund, payload["refund_id"])
        if refund is None:
            raise NotFound(f"There is no refund with id {payload['refund_id']}.")
        return int(refund.account_id)
    adjustment = session.get(Adjustment, payload["adjustment_id"])
    if adjustment is None:
        raise NotFound(f"There is no adjustment with id {payload['adjustment_id']}.")
    return int(adjustment.account_id)


def _target(ctx: WriteContext, payload: dict[str, Any]) -> tuple[Refund | Adjustment, int]:
    if payload["refund_id"] is not None:
        refund = ctx.session.get(Refund, payload["refund_id"])
        assert refund is not None
        taken = select(Reversal).where(Reversal.refund_id == refund.id)
        target: Refund | Adjustment = refund
        size = refund.credits
    else:
        adjustment = ctx.session.get(Adjustment, payload["adjustment_id"])
        assert adjustment is not None
        taken = select(Reversal).where(Reversal.adjustment_id == adjustment.id)
        target = adjustment
        size = abs(adjustment.delta)
    earlier = ctx.session.scalar(taken)
    if earlier is not None:
        raise RuleBroken(
            f"This was already reversed on {earlier.created_at:%d %b %Y}; "
            "it can be reversed only once."
        )
    return target, size


def reversal_decision(ctx: WriteContext, payload: dict[str, Any]) -> Decision:
    """The same permission and limit as the action being undone."""
    target, size = _target(ctx, payload)
    if isinstance(target, Refund):
        return decide(ctx.role, Action.REFUND, credits=size, limits=ctx.limits)
    return decide(ctx.role, Action.ADJUST_PURCHASED, credits=size, limits=ctx.limits)


def _reverse_or_request(ctx: WriteContext, payload: dict[str, Any]) -> Outcome:
    target, size = _target(ctx, payload)
    decision = reversal_decision(ctx, payload)
    if decision.verdict is Verdict.DENY:
        raise PermissionDenied(decision.reason)
    if decision.verdict is Verdict.REQUEST:
        what = "refund" if isinstance(target, Refund) else "adjustment"
        return create_request(
            ctx,
            kind="reversal",
            account_id=payload["account_id"],
            credits=size,
            payload=payload,
            summary=f"Reverse {what} #{target.id} ({size:,} credits), "
            f"reference {payload['reference']}",
            why=decision.reason,
        )
    return apply_reversal(ctx, payload)


def apply_reversal(ctx: WriteContext, payload: dict[str, Any]) -> Outcome:
    """Carry out a validated reversal (also used when a request is approved)."""
    target, size = _target(ctx, payload)
    book = ctx.book(payload["account_id"])
    if isinstance(target, Refund):
        draws = _take_back_refund(ctx, target)
        # The charge keeps its (reversed) refund: it counts as handled, not as an
        # unrefunded failure, since a charge is refunded at most once.
        book.draw(draws, "reversal", ctx.at, charge_id=target.charge_id)
        reversal = Reversal(account_id=target.account_id, refund_id=target.id, credits=-size,
                            operation_id=ctx.operation.id, created_at=ctx.at)
        message = f"Reversed refund #{target.id}: took back {size:,} credits."
        delta = -size
        charge = ctx.session.get(UsageCharge, target.charge_id)
        assert charge is not None, "a refund's charge exists (foreign key)"
        rollups.add_refund_reversal(
            ctx.session, charge, size,
            rollups.plan_code_of(ctx.session, ctx.accounts[target.account_id]), ctx.at,
        )
    elif target.delta > 0:
        try:
            draws = plan_purchased_removal(book.views(), size, ctx.at)
        except InsufficientPurchased as exc:
            raise RuleBroken(
                f"The {size:,} added credits have been spent; "
                f"only {exc.available:,} purchased credits are left to take back."
            ) from exc
        book.draw(draws, "reversal", ctx.at)
        reversal = Reversal(account_id=target.account_id, adjustment_id=target.id,
                            credits=-size, operation_id=ctx.operation.id, created_at=ctx.at)
        message = f"Reversed adjustment #{target.id}: removed {size:,} purchased credits."
        delta = -size
    else:
        book.add_purchased(GrantSource.ADJUSTMENT, size, ctx.at, kind="reversal")
        reversal = Reversal(account_id=target.account_id, adjustment_id=target.id,
                            credits=size, operation_id=ctx.operation.id, created_at=ctx.at)
        message = f"Reversed adjustment #{target.id}: gave back {size:,} purchased credits."
        delta = size
    ctx.session.add(reversal)
    book.touch(ctx.at)
    return Outcome(status="applied", message=message, credits=delta)


def _take_back_refund(ctx: WriteContext, refund: Refund) -> list[Draw]:
    """Draws that take a refund's credits back: first where they were placed."""
    book = ctx.book(refund.account_id)
    placed = ctx.session.execute(
        select(LedgerEntry.grant_id, LedgerEntry.delta).where(
            LedgerEntry.operation_id == refund.operation_id,
            LedgerEntry.charge_id == refund.charge_id,
            LedgerEntry.kind == "refund",
        )
    ).all()
    left = refund.credits
    draws: dict[int, int] = {}
    for grant_id, delta in placed:
        grant = book.grant(grant_id)
        live = grant.expires_at is None or ctx.at < grant.expires_at
        take = min(left, delta, grant.remaining) if live else 0
        if take > 0:
            draws[grant_id] = take
            left -= take
    if left > 0:
        for view in consumption_order(book.views(), ctx.at):
            room = view.remaining - draws.get(view.id, 0)
            take = min(left, room)
            if take > 0:
                draws[view.id] = draws.get(view.id, 0) + take
                left -= take
            if left == 0:
                break
    if left > 0:
        available = refund.credits - left
        raise RuleBroken(
            str(InsufficientCredits(available, refund.credits))
            + " The refunded credits have been spent, so the refund cannot be reversed."
        )
    return [Draw(grant_id, credits) for grant_id, credits in draws.items()]
