"""Adjusting purchased credits: manual sales, compensation, chargebacks, corrections.

Adding credits creates a non-expiring purchased grant; removing takes credits
from purchased grants only, never below zero (``domain.grants``). Above the
acting role's limit the adjustment becomes a request for approval.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from credits_desktop.domain.grants import GrantSource, plan_purchased_removal
from credits_desktop.domain.permissions import Action, Verdict, decide
from credits_desktop.store.database import Database
from credits_desktop.store.models import Adjustment

from . import validation as v
from .approvals_queue import create_request
from .errors import InvalidInput, PermissionDenied
from .operations import Actor, Outcome, WriteContext, perform
from .reasons import REASON_LABELS, AdjustmentReason
from .results import OperationResult


def adjust_purchased(
    db: Database,
    actor: Actor,
    *,
    account_id: int,
    delta: int,
    reason_code: str,
    reference: str,
    idempotency_key: str,
    note: str | None = None,
    at: datetime | None = None,
) -> OperationResult:
    """Add (``delta`` > 0) or remove (``delta`` < 0) purchased credits."""
    payload = adjustment_payload(account_id, delta, reason_code, reference, note)
    return perform(
        db,
        actor,
        kind="adjustment",
        idempotency_key=idempotency_key,
        request=payload,
        account_ids=[account_id],
        reason=f"Adjustment: {REASON_LABELS[payload['reason_code']]}",
        reference=payload["reference"],
        note=payload["note"],
        at=at,
        body=lambda ctx: _adjust_or_request(ctx, payload),
    )


def adjustment_payload(
    account_id: int, delta: int, reason_code: str, reference: str, note: str | None
) -> dict[str, Any]:
    if isinstance(account_id, bool) or not isinstance(account_id, int):
        raise InvalidInput("Choose an account.", "account_id")
    if isinstance(delta, bool) or not isinstance(delta, int):
        raise InvalidInput("The adjustment must be a whole number of credits.", "delta")
    if delta == 0:
        raise InvalidInput("The adjustment must add or remove at least 1 credit.", "delta")
    v.credits(abs(delta), "delta", "The adjustment")
    reason = v.choice(reason_code, AdjustmentReason, "reason_code", "The adjustment reason")
    ref = v.required_text(reference, "reference", "A reference", max_length=v.TICKET_MAX)
    note_text = v.text(note, "note", "The note", max_length=v.NOTE_MAX, required=False)
    return {
        "account_id": account_id,
        "delta": delta,
        "reason_code": reason.value,
        "reference": ref,
        "note": note_text,
    }


def _adjust_or_request(ctx: WriteContext, payload: dict[str, Any]) -> Outcome:
    size = abs(payload["delta"])
    decision = decide(ctx.role, Action.ADJUST_PURCHASED, credits=size, limits=ctx.limits)
    if decision.verdict is Verdict.DENY:
        raise PermissionDenied(decision.reason)
    if decision.verdict is Verdict.REQUEST:
        verb = "Add" if payload["delta"] > 0 else "Remove"
        return create_request(
            ctx,
            kind="adjustment",
            account_id=payload["account_id"],
            credits=size,
            payload=payload,
            summary=f"{verb} {size:,} purchased credits ({payload['reason_code']}), "
            f"reference {payload['reference']}",
            why=decision.reason,
        )
    return apply_adjustment(ctx, payload)


def apply_adjustment(ctx: WriteContext, payload: dict[str, Any]) -> Outcome:
    """Carry out a validated adjustment (also used when a request is approved)."""
    account_id = payload["account_id"]
    delta = payload["delta"]
    book = ctx.book(account_id)
    if delta > 0:
        book.add_purchased(GrantSource.ADJUSTMENT, delta, ctx.at, kind="adjustment")
        message = f"Added {delta:,} purchased credits."
    else:
        draws = plan_purchased_removal(book.views(), -delta, ctx.at)
        book.draw(draws, "adjustment", ctx.at)
        message = f"Removed {-delta:,} purchased credits."
    adjustment = Adjustment(
        account_id=account_id,
        delta=delta,
        reason_code=payload["reason_code"],
        operation_id=ctx.operation.id,
        created_at=ctx.at,
    )
    ctx.session.add(adjustment)
    ctx.session.flush()
    book.touch(ctx.at)
    return Outcome(
        status="applied",
        message=message,
        credits=delta,
        details={"adjustment_id": adjustment.id},
    )
