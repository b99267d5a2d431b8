"""Refunding charges: support's answer to "it failed and still cost me credits".

A refund gives back at most what a charge cost, once per charge (a unique
constraint on ``refunds.charge_id`` holds that even against a buggy client).
The credits go back to the grants the charge drew from while those are live,
otherwise into a new non-expiring refund grant (``domain.grants.plan_refund``).
Within the acting role's limit (on the refund's total) a refund applies at once;
above it, or when a charge in it did not fail, it becomes a request for approval.
An applied refund also goes into the usage rollup (``services.rollups``), in the same
transaction. :func:`apply_refunds` carries out the refunds of many accounts at once (an
incident batch) in a number of statements that does not grow with them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select

from credits_desktop.domain.grants import GrantSource, GrantView, Placement, plan_refund
from credits_desktop.domain.permissions import Action, Decision, Verdict, decide
from credits_desktop.store.database import Database
from credits_desktop.store.models import (
    CreditGrant,
    LedgerEntry,
    Operation,
    Refund,
    Staff,
    UsageCharge,
)

from . import rollups
from . import validation as v
from .approvals_queue import create_request
from .book import AccountBook, grant_view, open_books
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
    charges: dict[int, UsageCharge] = {}
    done: dict[int, Refund] = {}
    # The charges with their refunds, if any, in one query.
    for loaded, made in ctx.session.execute(
        select(UsageCharge, Refund)
        .outerjoin(Refund, Refund.charge_id == UsageCharge.id)
        .where(UsageCharge.id.in_(ids))
    ):
        charges[loaded.id] = loaded
        if made is not None:
            done[loaded.id] = made
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
    return apply_refunds(ctx, payload["reason_code"], [(payload["account_id"], plan)])[0]


def apply_refunds(
    ctx: WriteContext,
    reason_code: str,
    work: Sequence[tuple[int, Sequence[tuple[UsageCharge, int]]]],
) -> list[Outcome]:
    """Carry out validated refunds of one or several locked accounts: ``work`` holds,
    per account, its ``(charge, credits to refund)``; one outcome per account comes back.

    The rows are those of refunding each charge in turn, but the statements do not grow
    with the number of charges or accounts: the charges' draws and the accounts' grants
    and plans are read in a few queries; the refunds go in as one statement (a list of
    rows), the new refund grants with one flush (empty, as the database wants them:
    their ledger entries fill them), then one upsert per rollup table and the ledger
    entries as one statement; the grants' and accounts' new figures are written by the
    transaction's last flush, with what the caller adds.
    """
    session = ctx.session
    charges = [charge for _, plan in work for charge, _ in plan]
    drawn = _drawn(ctx, charges)
    # The drawn grants that have been emptied since come with the books' grants.
    missing = sorted({a for a, _ in work if a not in ctx.books})
    ctx.books.update(open_books(
        session, [ctx.accounts[a] for a in missing], actor_id=ctx.staff.id,
        operation_id=ctx.operation.id, reason=ctx.operation.reason,
        reference=ctx.operation.reference, roll_until=ctx.at,
        system_actor_id=ctx.system_actor_id,
        also_grants=(grant for rows in drawn.values() for grant, _ in rows),
    ))
    draws = _draws(ctx, charges, drawn)
    steps: list[tuple[AccountBook, UsageCharge, list[Placement], CreditGrant | None]] = []
    refunds: list[dict[str, Any]] = []
    rolled: list[tuple[UsageCharge, int, str]] = []
    for account_id, plan in work:
        book = ctx.books[account_id]
        for charge, amount in plan:
            placements = plan_refund(draws[charge.id], amount, ctx.at)
            # Credits whose grant has expired come back in a new refund grant: opened
            # now, filled once the flush below has given it an id.
            fresh = next((book.open_grant(GrantSource.REFUND, p.credits, ctx.at)
                          for p in placements if p.grant_id is None), None)
            steps.append((book, charge, placements, fresh))
            refunds.append({
                "charge_id": charge.id, "account_id": account_id, "credits": amount,
                "reason_code": reason_code, "operation_id": ctx.operation.id,
                "created_at": ctx.at,
            })
            rolled.append((charge, amount, book.plan().code))
    # The refund rows as one statement with a list of rows: nothing reads them back as
    # objects in this transaction, and the session would add a cost per object. Then
    # the rollup, which flushes (the new grants get their ids) and wants its source rows
    # in first. The balances only change after it, so that each account is updated
    # once, at commit, rather than here and again then.
    if refunds:
        session.execute(insert(Refund), refunds)
    rollups.add_refunds_of(session, rolled, ctx.at)
    entries: list[dict[str, Any]] = []
    for book, charge, placements, fresh in steps:
        book.place(placements, "refund", ctx.at, charge_id=charge.id, refund_grant=fresh,
                   into=entries)
        if charge.status == "failed":
            book.account.unrefunded_failed -= 1
    if entries:
        # Like the refunds, one statement with a list of rows; the grants and balances
        # they change are written at commit (the database checks them against the
        # ledger then).
        with session.no_autoflush:
            session.execute(insert(LedgerEntry), entries)
    for account_id, _ in work:
        ctx.books[account_id].touch(ctx.at)
    outcomes = []
    for _, plan in work:
        total = sum(amount for _, amount in plan)
        outcomes.append(Outcome(status="applied", credits=total,
                                message=f"Refunded {total:,} credits on {len(plan)} charge(s)."))
    return outcomes


def _drawn(ctx: WriteContext, charges: Sequence[UsageCharge]) -> dict[int, list[tuple[int, int]]]:
    """For each charge, the grants it drew from, in the order drawn, with the credits
    from each: (grant id, credits), in one query."""
    found: dict[int, list[tuple[int, int]]] = {c.id: [] for c in charges}
    if charges:
        rows = ctx.session.execute(
            select(LedgerEntry.charge_id, LedgerEntry.grant_id, LedgerEntry.delta)
            .where(LedgerEntry.charge_id.in_(sorted(found)), LedgerEntry.kind == "charge")
            .order_by(LedgerEntry.charge_id, LedgerEntry.id)
        )
        for charge_id, grant_id, delta in rows:
            if charge_id is not None:
                found[charge_id].append((grant_id, -delta))
    return found


def _draws(ctx: WriteContext, charges: Sequence[UsageCharge],
           drawn: dict[int, list[tuple[int, int]]]) -> dict[int, list[tuple[GrantView, int]]]:
    """``drawn`` with each grant's view, as ``plan_refund`` takes it. A drawn grant that
    a book does not hold (one opened before, without it) is read with the others in one
    query."""
    account_of = {c.id: c.account_id for c in charges}
    unheld = sorted({grant for charge_id, rows in drawn.items() for grant, _ in rows
                     if grant not in ctx.books[account_of[charge_id]].grants()})
    # While referenced here the identity map holds them (weakly otherwise), so
    # AccountBook.grant below takes each from it without a query.
    loaded = list(ctx.session.scalars(
        select(CreditGrant).where(CreditGrant.id.in_(unheld)))) if unheld else []
    assert len(loaded) == len(unheld), "every drawn grant exists (foreign key)"
    return {
        charge_id: [(grant_view(ctx.books[account_of[charge_id]].grant(grant)), credits)
                    for grant, credits in rows]
        for charge_id, rows in drawn.items()
    }
