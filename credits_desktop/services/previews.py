"""What a refund or an adjustment would do, before anyone commits to it.

A dialog shows the staff member where every credit goes, the balances before and
after, and whether the change applies at once or becomes a request for approval.
The preview runs the real operation in a transaction that is rolled back
(:func:`~credits_desktop.services.operations.dry_run`), so the promise and the
outcome come from the same code. A charge that cannot be refunded (already
refunded, cost nothing, another account's) is refused with the same message the
refund itself would give.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from credits_desktop.domain.grants import plan_purchased_removal
from credits_desktop.domain.permissions import Action, Decision, Verdict, decide
from credits_desktop.store.database import Database
from credits_desktop.store.models import Account, Adjustment, CreditGrant, LedgerEntry, Refund

from .adjustments import apply_adjustment
from .errors import InvalidInput, NotFound
from .operations import Actor, WriteContext, dry_run
from .refunds import RefundItem, apply_refund, checked_items, refund_decision, refund_item_rows
from .reversals import apply_reversal, reversal_decision

__all__ = [
    "Balances",
    "ChangePreview",
    "Placement",
    "ReversalTarget",
    "preview_adjustment",
    "preview_refund",
    "preview_reversal",
    "reversal_target",
]


@dataclass(frozen=True)
class Balances:
    """An account's spendable credits by kind."""

    plan: int
    purchased: int
    refund: int

    @property
    def total(self) -> int:
        return self.plan + self.purchased + self.refund

    @classmethod
    def of(cls, account: Account) -> Balances:
        return cls(account.plan_balance, account.purchased_balance, account.refund_balance)


@dataclass(frozen=True)
class Placement:
    """Credits moved into (positive) or out of (negative) one grant."""

    charge_id: int | None
    grant_id: int
    source: str
    expires_at: datetime | None
    credits: int
    new_grant: bool


@dataclass(frozen=True)
class ChangePreview:
    """The effect of a change if it were applied now, and what the role may do."""

    verdict: Verdict
    reason: str
    credits: int
    before: Balances
    after: Balances
    placements: tuple[Placement, ...]
    # Purchased credits that could be removed at most (for the adjustment dialog).
    removable: int

    @property
    def applies_at_once(self) -> bool:
        return self.verdict is Verdict.ALLOW

    @property
    def needs_approval(self) -> bool:
        return self.verdict is Verdict.REQUEST


def preview_refund(
    db: Database,
    actor: Actor,
    *,
    account_id: int,
    items: Sequence[RefundItem],
    at: datetime | None = None,
) -> ChangePreview:
    """What refunding ``items`` of ``account_id`` would do (nothing is written)."""
    _check_account_id(account_id)
    payload = {"account_id": account_id, "items": refund_item_rows(items),
               "reason_code": "failed_generation"}

    def body(ctx: WriteContext) -> ChangePreview:
        account = ctx.accounts[account_id]
        ctx.book(account_id)  # rolls the period forward first, as the refund will
        before = Balances.of(account)
        plan = checked_items(ctx, payload)
        decision = refund_decision(ctx, plan)
        if decision.verdict is not Verdict.DENY:
            apply_refund(ctx, payload, plan)
        return _preview(ctx, account, before, decision, sum(a for _, a in plan))

    return dry_run(db, actor, kind="refund", account_ids=[account_id], at=at, body=body)


def preview_adjustment(
    db: Database,
    actor: Actor,
    *,
    account_id: int,
    delta: int,
    at: datetime | None = None,
) -> ChangePreview:
    """What adding (positive ``delta``) or removing purchased credits would do.

    A removal larger than the purchased balance is refused with how much could be
    removed; a ``delta`` of 0 previews nothing but still answers ``removable``.
    """
    _check_account_id(account_id)
    if isinstance(delta, bool) or not isinstance(delta, int):
        raise InvalidInput("The adjustment must be a whole number of credits.", "delta")

    def body(ctx: WriteContext) -> ChangePreview:
        account = ctx.accounts[account_id]
        book = ctx.book(account_id)
        before = Balances.of(account)
        decision = decide(ctx.role, Action.ADJUST_PURCHASED, credits=abs(delta),
                          limits=ctx.limits)
        if delta < 0:
            # Raises the plain "only N purchased credits can be removed" refusal.
            plan_purchased_removal(book.views(), -delta, ctx.at)
        if delta != 0 and decision.verdict is not Verdict.DENY:
            apply_adjustment(ctx, {"account_id": account_id, "delta": delta,
                                   "reason_code": "correction"})
        return _preview(ctx, account, before, decision, delta)

    return dry_run(db, actor, kind="adjustment", account_ids=[account_id], at=at, body=body)


@dataclass(frozen=True)
class ReversalTarget:
    """The refund or adjustment a ledger entry belongs to, which "Reverse…" undoes."""

    refund_id: int | None
    adjustment_id: int | None
    account_id: int
    credits: int
    description: str


def reversal_target(db: Database, ledger_entry_id: int) -> ReversalTarget:
    """What reversing the ledger entry ``ledger_entry_id`` would undo.

    Only refund and adjustment entries can be reversed; anything else is refused
    with a sentence saying what can.
    """
    if isinstance(ledger_entry_id, bool) or not isinstance(ledger_entry_id, int):
        raise InvalidInput("Choose a ledger entry to reverse.", "target")

    def work(session: Session) -> ReversalTarget:
        entry = session.get(LedgerEntry, ledger_entry_id)
        if entry is None:
            raise NotFound(f"There is no ledger entry with id {ledger_entry_id}.")
        if entry.kind == "refund" and entry.charge_id is not None:
            refund = session.scalar(select(Refund).where(Refund.charge_id == entry.charge_id))
            if refund is not None:
                return ReversalTarget(
                    refund.id, None, refund.account_id, refund.credits,
                    f"refund #{refund.id} of {refund.credits:,} credits "
                    f"on charge {refund.charge_id}",
                )
        if entry.kind == "adjustment" and entry.operation_id is not None:
            adjustment = session.scalar(
                select(Adjustment).where(Adjustment.operation_id == entry.operation_id))
            if adjustment is not None:
                verb = "adding" if adjustment.delta > 0 else "removing"
                return ReversalTarget(
                    None, adjustment.id, adjustment.account_id, abs(adjustment.delta),
                    f"adjustment #{adjustment.id}, {verb} {abs(adjustment.delta):,} "
                    "purchased credits",
                )
        raise InvalidInput(
            "Only refunds and adjustments can be reversed; choose a refund or an "
            "adjustment entry in the ledger.", "target")

    return db.read(work)


def preview_reversal(
    db: Database, actor: Actor, target: ReversalTarget, *, at: datetime | None = None
) -> ChangePreview:
    """What reversing ``target`` would do (nothing is written)."""
    payload = {"refund_id": target.refund_id, "adjustment_id": target.adjustment_id,
               "account_id": target.account_id}

    def body(ctx: WriteContext) -> ChangePreview:
        account = ctx.accounts[target.account_id]
        ctx.book(target.account_id)
        before = Balances.of(account)
        decision = reversal_decision(ctx, payload)
        if decision.verdict is not Verdict.DENY:
            apply_reversal(ctx, payload)
        return _preview(ctx, account, before, decision, target.credits)

    return dry_run(db, actor, kind="reversal", account_ids=[target.account_id], at=at,
                   body=body)


def _check_account_id(account_id: int) -> None:
    if isinstance(account_id, bool) or not isinstance(account_id, int):
        raise InvalidInput("Choose an account.", "account_id")


def _preview(
    ctx: WriteContext, account: Account, before: Balances, decision: Decision, credits: int
) -> ChangePreview:
    ctx.session.flush()
    rows = ctx.session.execute(
        select(LedgerEntry.charge_id, LedgerEntry.grant_id, LedgerEntry.delta,
               CreditGrant.source, CreditGrant.expires_at, CreditGrant.operation_id)
        .join(CreditGrant, CreditGrant.id == LedgerEntry.grant_id)
        .where(LedgerEntry.operation_id == ctx.operation.id)
        .order_by(LedgerEntry.id)
    ).all()
    placements = tuple(
        Placement(
            charge_id=charge_id,
            grant_id=grant_id,
            source=source,
            expires_at=expires_at,
            credits=delta,
            new_grant=grant_operation == ctx.operation.id,
        )
        for charge_id, grant_id, delta, source, expires_at, grant_operation in rows
    )
    return ChangePreview(
        verdict=decision.verdict,
        reason=decision.reason,
        credits=credits,
        before=before,
        after=Balances.of(account),
        placements=placements,
        removable=before.purchased,
    )
