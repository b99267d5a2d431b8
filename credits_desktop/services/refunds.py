"""Refunding charges: support's answer to "it failed and still cost me credits".

A refund gives back at most what a charge cost, once per charge (a unique
constraint on ``refunds.charge_id`` holds that even against a buggy client).
The credits go back to the grants the charge drew from while those are live,
otherwise into a new non-expiring refund grant (``domain.grants.plan_refund``).
Within the acting role's limit (on the refund's total) a refund applies at once;
above it, or when a charge in it did not fail, it becomes a request for approval.
An applied refund also goes into the usage rollup (``services.rollups``), in the same
transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from credits_desktop.domain.grants import GrantView, plan_refund
from credits_desktop.domain.permissions import Action, Decision, Verdict, decide
from credits_desktop.store.database import Database
from credits_desktop.store.models import (
    LedgerEntry,
    Operation,
    Refund,
    Staff,
    UsageCharge,
)

from . import rollups
from . import validation as v
from .approvals_queue import create_request
from .book import grant_view
from .errors import AlreadyRefunded, InvalidInput, NotFound, PermissionDenied, RuleBroken
from .operations import Actor, Outcome, WriteContext, perform
from .reasons import RefundReason
from .results import OperationResult

MAX_CHARGES_PER_REFUND = 1_000


@dataclass(frozen=True)
class RefundItem:
    """One charge to refund; ``credits`` None means its full cost."""

    charge_id: int
    credits: int | None = None


def refund_charges(
    db: Database,
    actor: Actor,
    *,
    account_id: int,
    items: Sequence[RefundItem],
    reason_code: str,
    ticket: str,
    idempotency_key: str,
    note: str | None = None,
    at: datetime | None = None,
) -> OperationResult:
    """Refund one or several charges of one account (see the module docstring)."""
    payload = refund_payload(account_id, items, reason_code, ticket, note)
    return perform(
        db,
        actor,
        kind="refund",
        idempotency_key=idempotency_key,
        request=payload,
        account_ids=[account_id],
        reason=_reason_text(payload),
        reference=payload["ticket"],
        note=payload["note"],
        at=at,
        body=lambda ctx: _refund_or_request(ctx, payload),
    )


def refund_payload(
    account_id: int, items: Sequence[RefundItem], reason_code: str, ticket: str,
    note: str | None,
) -> dict[str, Any]:
    """Validate a refund's input into the plain dict that is stored and replayed."""
    if isinstance(account_id, bool) or not isinstance(account_id, int):
        raise InvalidInput("Choose an account.", "account_id")
    reason = v.choice(reason_code, RefundReason, "reason_code", "The refund reason")
    ticket_ref = v.required_text(ticket, "ticket", "A ticket reference", max_length=v.TICKET_MAX)
    note_text = v.text(note, "note", "The note", max_length=v.NOTE_MAX, required=False)
    if reason is RefundReason.OTHER and not note_text:
        raise InvalidInput("Say in the note why you refund with reason 'other'.", "note")
    return {
        "account_id": account_id,
        "items": refund_item_rows(items),
        "reason_code": reason.value,
        "ticket": ticket_ref,
        "note": note_text,
    }


def refund_item_rows(items: Sequence[RefundItem]) -> list[list[int | None]]:
    """Validate the charges of a refund into ``[charge_id, credits or None]`` rows."""
    if not items:
        raise InvalidInput("Choose at least one charge to refund.", "items")
    if len(items) > MAX_CHARGES_PER_REFUND:
        raise InvalidInput(
            f"Refund at most {MAX_CHARGES_PER_REFUND:,} charges at once.", "items"
        )
    seen: set[int] = set()
    rows: list[list[int | None]] = []
    for item in items:
        if isinstance(item.charge_id, bool) or not isinstance(item.charge_id, int):
            raise InvalidInput("A charge to refund is not valid.", "items")
        if item.charge_id in seen:
            raise InvalidInput(f"Charge {item.charge_id} is listed twice.", "items")
        seen.add(item.charge_id)
        amount = None
        if item.credits is not None:
            amount = v.credits(item.credits, "credits", "The amount to refund")
        rows.append([item.charge_id, amount])
    return rows


def _reason_text(payload: dict[str, Any]) -> str:
    return f"Refund: {payload['reason_code'].replace('_', ' ')}"


def refund_decision(ctx: WriteContext, plan: list[tuple[UsageCharge, int]]) -> Decision:
    """Whether the acting role may refund ``plan`` at once, must ask, or may not."""
    total = sum(amount for _, amount in plan)
    # The limit is on what one refund gives back in all, not on each charge in it:
    # otherwise many charges at once would move any amount without a second look.
    return decide(
        ctx.role,
        Action.REFUND,
        credits=total,
        charge_failed=all(charge.status == "failed" for charge, _ in plan),
        limits=ctx.limits,
    )


def _refund_or_request(ctx: WriteContext, payload: dict[str, Any]) -> Outcome:
    plan = checked_items(ctx, payload)
    total = sum(amount for _, amount in plan)
    decision = refund_decision(ctx, plan)
    if decision.verdict is Verdict.DENY:
        raise PermissionDenied(decision.reason)
    if decision.verdict is Verdict.REQUEST:
        return create_request(
            ctx,
            kind="refund",
            account_id=payload["account_id"],
            credits=total,
            payload=payload,
            summary=f"Refund {total:,} credits on {len(plan)} charge(s), ticket "
            f"{payload['ticket']}",
            why=decision.reason,
        )
    return apply_refund(ctx, payload, plan)


def checked_items(ctx: WriteContext, payload: dict[str, Any]) -> list[tuple[UsageCharge, int]]:
    """The charges with the amount to refund, refusing anything that breaks a rule."""
    account_id = payload["account_id"]
    ids = [row[0] for row in payload["items"]]
    charges = {
        c.id: c
        for c in ctx.session.scalars(select(UsageCharge).where(UsageCharge.id.in_(ids)))
    }
    done = {
        r.charge_id: r
        for r in ctx.session.scalars(select(Refund).where(Refund.charge_id.in_(ids)))
    }
    plan: list[tuple[UsageCharge, int]] = []
    for charge_id, wanted in payload["items"]:
        charge = charges.get(charge_id)
        if charge is None:
            raise NotFound(f"There is no charge with id {charge_id}.")
        if charge.account_id != account_id:
            raise RuleBroken(
                f"Charge {charge_id} belongs to another account (#{charge.account_id}); "
                "refund it from that account."
            )
        if charge_id in done:
            raise AlreadyRefunded(_already_refunded_message(ctx, charge, done[charge_id]))
        if charge.credits == 0:
            raise RuleBroken(f"Charge {charge_id} cost nothing, so there is nothing to refund.")
        amount = charge.credits if wanted is None else wanted
        if amount > charge.credits:
            raise RuleBroken(
                f"Charge {charge_id} cost {charge.credits:,} credits; "
                f"a refund of {amount:,} would return more than it cost."
            )
        plan.append((charge, amount))
    return plan


def _already_refunded_message(ctx: WriteContext, charge: UsageCharge, refund: Refund) -> str:
    op = ctx.session.get(Operation, refund.operation_id)
    who = ctx.session.get(Staff, op.actor_id) if op else None
    name = who.display_name if who else "someone"
    ticket = f" (ticket {op.reference})" if op and op.reference else ""
    return (
        f"Charge {charge.id} was already refunded on {refund.created_at:%d %b %Y} "
        f"by {name}{ticket}."
    )


def apply_refund(
    ctx: WriteContext,
    payload: dict[str, Any],
    plan: list[tuple[UsageCharge, int]] | None = None,
) -> Outcome:
    """Carry out a validated refund (also used when a request is approved)."""
    if plan is None:
        plan = checked_items(ctx, payload)
    account_id = payload["account_id"]
    book = ctx.book(account_id)
    total = 0
    for charge, amount in plan:
        draws = _draws_of(ctx, charge)
        placements = plan_refund(draws, amount, ctx.at)
        book.place(placements, "refund", ctx.at, charge_id=charge.id)
        ctx.session.add(
            Refund(
                charge_id=charge.id,
                account_id=account_id,
                credits=amount,
                reason_code=payload["reason_code"],
                operation_id=ctx.operation.id,
                created_at=ctx.at,
            )
        )
        if charge.status == "failed":
            ctx.accounts[account_id].unrefunded_failed -= 1
        total += amount
    book.touch(ctx.at)
    account = ctx.accounts[account_id]
    rollups.add_refunds(ctx.session, plan, rollups.plan_code_of(ctx.session, account), ctx.at)
    return Outcome(
        status="applied",
        message=f"Refunded {total:,} credits on {len(plan)} charge(s).",
        credits=total,
    )


def _draws_of(ctx: WriteContext, charge: UsageCharge) -> list[tuple[GrantView, int]]:
    """The grants a charge drew from, in the order drawn, with the credits from each."""
    rows = ctx.session.execute(
        select(LedgerEntry.grant_id, LedgerEntry.delta)
        .where(LedgerEntry.charge_id == charge.id, LedgerEntry.kind == "charge")
        .order_by(LedgerEntry.id)
    ).all()
    book = ctx.book(charge.account_id)
    return [(grant_view(book.grant(grant_id)), -delta) for grant_id, delta in rows]
