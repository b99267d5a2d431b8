"""Approving or rejecting requests: the second pair of eyes.

An approver is never the requester (checked here, in ``domain.permissions`` and
by a CHECK constraint). An approved request is applied in the same transaction
that marks it approved; if the account no longer allows it (credits spent in
the meantime, charge refunded by someone else), the request is marked failed
with the reason instead and nothing else changes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from credits_desktop.domain.errors import RuleViolation
from credits_desktop.domain.permissions import decide_approval
from credits_desktop.store.database import Database
from credits_desktop.store.models import ApprovalRequest, Staff

from . import validation as v
from .adjustments import apply_adjustment
from .errors import CreditsDeskError, NotFound, PermissionDenied, RuleBroken
from .operations import Actor, Outcome, WriteContext, perform
from .refunds import apply_refund
from .results import OperationResult
from .reversals import apply_reversal

APPLIERS: dict[str, Callable[[WriteContext, dict[str, Any]], Outcome]] = {
    "refund": apply_refund,
    "adjustment": apply_adjustment,
    "reversal": apply_reversal,
}


def approve_request(
    db: Database,
    actor: Actor,
    *,
    request_id: int,
    idempotency_key: str,
    comment: str | None = None,
    at: datetime | None = None,
) -> OperationResult:
    return _decide(db, actor, request_id, True, comment, idempotency_key, at)


def reject_request(
    db: Database,
    actor: Actor,
    *,
    request_id: int,
    comment: str,
    idempotency_key: str,
    at: datetime | None = None,
) -> OperationResult:
    v.required_text(comment, "comment", "A comment saying why", max_length=v.NOTE_MAX)
    return _decide(db, actor, request_id, False, comment, idempotency_key, at)


def _decide(
    db: Database,
    actor: Actor,
    request_id: int,
    approve: bool,
    comment: str | None,
    idempotency_key: str,
    at: datetime | None,
) -> OperationResult:
    comment_text = v.text(comment, "comment", "The comment", max_length=v.NOTE_MAX,
                          required=False)
    header = db.read(lambda s: _header(s, request_id))
    return perform(
        db,
        actor,
        kind="approve" if approve else "reject",
        idempotency_key=idempotency_key,
        request={"request_id": request_id, "comment": comment_text},
        account_ids=[header["account_id"]],
        reason=header["reason"],
        reference=header["reference"],
        note=comment_text,
        at=at,
        body=lambda ctx: _body(ctx, request_id, approve, comment_text),
    )


def _header(session: Session, request_id: int) -> dict[str, Any]:
    if isinstance(request_id, bool) or not isinstance(request_id, int):
        raise NotFound("Choose a request.")
    request = session.get(ApprovalRequest, request_id)
    if request is None:
        raise NotFound(f"There is no request #{request_id}.")
    payload = json.loads(request.payload)
    reference = payload.get("ticket") or payload.get("reference")
    return {
        "account_id": request.account_id,
        "reason": f"Approval of request #{request.id}: {request.summary}"[:200],
        "reference": reference,
    }


def _body(ctx: WriteContext, request_id: int, approve: bool, comment: str | None) -> Outcome:
    stmt = select(ApprovalRequest).where(ApprovalRequest.id == request_id)
    if ctx.session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    request = ctx.session.scalars(stmt).one()
    decision = decide_approval(ctx.role, ctx.staff.id, request.requested_by)
    if not decision.allowed:
        raise PermissionDenied(decision.reason)
    if request.status != "pending":
        who = ctx.session.get(Staff, request.decided_by) if request.decided_by else None
        by = f" by {who.display_name}" if who else ""
        raise RuleBroken(f"Request #{request.id} was already {request.status}{by}.")
    request.decided_by = ctx.staff.id
    request.decided_at = ctx.at
    request.decision_comment = comment
    if not approve:
        request.status = "rejected"
        return Outcome(status="rejected", message=f"Request #{request.id} was rejected.",
                       request_id=request.id)
    payload = json.loads(request.payload)
    savepoint = ctx.session.begin_nested()
    try:
        outcome = APPLIERS[request.kind](ctx, payload)
        savepoint.commit()
    except (CreditsDeskError, RuleViolation) as exc:
        savepoint.rollback()
        ctx.books.clear()  # the rolled-back savepoint invalidated what they hold
        reason = exc.message
        request.status = "failed"
        request.failure_reason = reason[:500]
        return Outcome(
            status="failed",
            message=f"Request #{request.id} could not be applied: {reason}",
            request_id=request.id,
        )
    request.status = "approved"
    request.result_operation_id = ctx.operation.id
    return Outcome(
        status="applied",
        message=f"Request #{request.id} approved. {outcome.message}",
        credits=outcome.credits,
        request_id=request.id,
        details=outcome.details,
    )
