"""Recording an action as pending approval (the "request" of the permission table)."""

from __future__ import annotations

import json
from typing import Any

from credits_desktop.store.models import ApprovalRequest

from .operations import Outcome, WriteContext


def create_request(
    ctx: WriteContext,
    *,
    kind: str,
    account_id: int,
    credits: int,
    payload: dict[str, Any],
    summary: str,
    why: str,
) -> Outcome:
    """Store the validated payload; it is applied only when a colleague approves it."""
    request = ApprovalRequest(
        kind=kind,
        account_id=account_id,
        credits=credits,
        payload=json.dumps(payload, sort_keys=True),
        summary=summary[:300],
        operation_id=ctx.operation.id,
        requested_by=ctx.staff.id,
        requested_at=ctx.at,
        status="pending",
    )
    ctx.session.add(request)
    ctx.session.flush()
    return Outcome(
        status="requested",
        message=f"{why} Request #{request.id} is waiting for approval; nothing changes "
        "until a colleague approves it.",
        credits=credits,
        request_id=request.id,
    )
