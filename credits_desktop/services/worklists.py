"""The work queues across accounts: unrefunded failed charges, approval requests and
the audit log, with the audit log's CSV export.

Like ``queries``, every list runs in one read transaction, returns small frozen
dataclasses (never ORM objects) and pages by keyset, newest first, on
``(time, id)``; the indexes that serve each order are named where it matters. Filter
values are always bound parameters: nothing a staff member types becomes SQL.

The export is the one write here: it checks the role read from the database (support
is refused with the same sentence ``domain.permissions.decide`` gives, and the refusal
is audited), streams the matching events page by page into a CSV file, and records an
``export`` audit event, since exports are audited like every other staff action.
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import (
    ColumnElement,
    SQLColumnExpression,
    and_,
    exists,
    func,
    literal_column,
    select,
)
from sqlalchemy.orm import Session, aliased

from credits_desktop.domain.permissions import Action, Role, decide
from credits_desktop.store.database import Database
from credits_desktop.store.models import (
    Account,
    Adjustment,
    ApprovalRequest,
    AuditEvent,
    Feature,
    Operation,
    Refund,
    Staff,
    UsageCharge,
)
from credits_desktop.store.types import utcnow

from .errors import CreditsDeskError, InvalidInput, PermissionDenied
from .exports import export_path, safe_cell
from .operations import Actor, active_staff, audit_refusal
from .paging import (
    Cursor,
    Page,
    check_limit,
    keyset_after,
    keyset_order,
    make_cursor,
    open_cursor,
    split_page,
)
from .queries import ChargeRow, prefix_upper_bound
from .validation import to_utc

__all__ = [
    "AUDIT_CSV_COLUMNS",
    "REQUEST_STATUSES",
    "AuditExport",
    "AuditFilter",
    "AuditRow",
    "FailedCharge",
    "RequestRow",
    "audit_actions",
    "audit_page",
    "export_audit_csv",
    "failed_charges_page",
    "requests_page",
]

REQUEST_STATUSES = ("pending", "approved", "rejected", "failed")

# Written into the SQL as a constant, not bound: the partial index on failed charges
# (ix_usage_charges_failed_time) is only usable when the planner sees its literal.
_FAILED: ColumnElement[str] = literal_column("'failed'")

# How many audit events an export reads per query: few round trips, little memory.
EXPORT_BATCH = 2_000


# -- failed charges ----------------------------------------------------------------


@dataclass(frozen=True)
class FailedCharge:
    """A failed charge that cost credits and was never refunded, with its account:
    everything the refund dialog needs to refund it."""

    charge: ChargeRow
    account_id: int
    account_name: str

    @property
    def id(self) -> int:
        return self.charge.id


def failed_charges_page(
    db: Database,
    *,
    feature: str | None = None,
    model: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    after: Cursor | None = None,
    limit: int = 100,
) -> Page[FailedCharge]:
    """Failed charges with credits > 0 and no refund, across accounts, newest first.

    ``model`` is the start of the model's name, case-insensitively ("imagen" finds
    "Imagen-Ultra"); ``since <= occurred_at < until``. A charge whose refund was later
    reversed has its refund row and is not listed: a charge is refunded at most once.
    Walks the partial index on failed charges by (occurred_at, id).
    """
    size = check_limit(limit)
    feature_code = _optional_text(feature, "feature", "The feature")
    model_prefix = _optional_text(model, "model", "The model")
    low = _optional_time(since, "since")
    high = _optional_time(until, "until")
    tag = "failed_charges"
    position = open_cursor(after, tag, 2)

    def work(session: Session) -> Page[FailedCharge]:
        keys: list[SQLColumnExpression[Any]] = [UsageCharge.occurred_at, UsageCharge.id]
        stmt = (
            select(
                UsageCharge.id,
                UsageCharge.external_id,
                UsageCharge.occurred_at,
                UsageCharge.feature_code,
                Feature.name,
                UsageCharge.model,
                UsageCharge.credits,
                UsageCharge.failure_reason,
                UsageCharge.account_id,
                Account.name,
            )
            .join(Feature, Feature.code == UsageCharge.feature_code)
            .join(Account, Account.id == UsageCharge.account_id)
            .where(
                UsageCharge.status == _FAILED,
                UsageCharge.credits > 0,
                ~exists().where(Refund.charge_id == UsageCharge.id),
            )
            .order_by(*keyset_order(keys, descending=True))
            .limit(size + 1)
        )
        if feature_code is not None:
            stmt = stmt.where(UsageCharge.feature_code == feature_code)
        if model_prefix is not None:
            stmt = stmt.where(_prefix(func.lower(UsageCharge.model), model_prefix.lower()))
        if low is not None:
            stmt = stmt.where(UsageCharge.occurred_at >= low)
        if high is not None:
            stmt = stmt.where(UsageCharge.occurred_at < high)
        if position is not None:
            stmt = stmt.where(keyset_after(keys, position, descending=True))
        rows = [
            FailedCharge(
                charge=ChargeRow(
                    id=r[0], external_id=r[1], occurred_at=r[2], feature_code=r[3],
                    feature_name=r[4], model=r[5], credits=r[6], status="failed",
                    failure_reason=r[7], refunded_credits=None, refund_id=None,
                    refunded_at=None,
                ),
                account_id=r[8],
                account_name=r[9],
            )
            for r in session.execute(stmt)
        ]
        shown, cursor = split_page(
            rows, size, lambda f: make_cursor(tag, f.charge.occurred_at, f.charge.id)
        )
        return Page(shown, cursor)

    return db.read(work)


# -- approval requests -------------------------------------------------------------


@dataclass(frozen=True)
class RequestRow:
    """One approval request, with who asked, what, why, and what became of it.

    ``effect`` is the change to the account's available credits if it is applied
    (positive gives credits back, negative takes them); ``why`` is why it needed
    approval, in the words the requester was shown.
    """

    id: int
    kind: str
    account_id: int
    account_name: str
    credits: int
    effect: int
    summary: str
    why: str
    reason: str
    reference: str | None
    note: str | None
    status: str
    requested_by: int
    requested_by_name: str
    requested_at: datetime
    decided_by: int | None
    decided_by_name: str | None
    decided_at: datetime | None
    comment: str | None
    failure_reason: str | None


def requests_page(
    db: Database,
    *,
    status: str | None = None,
    requested_by: int | None = None,
    after: Cursor | None = None,
    limit: int = 100,
) -> Page[RequestRow]:
    """Approval requests, newest first; ``status`` one of :data:`REQUEST_STATUSES`.

    Paged on (requested_at, id), which the (status, requested_at) index serves for a
    status filter.
    """
    size = check_limit(limit)
    if status is not None and status not in REQUEST_STATUSES:
        raise InvalidInput(
            f"A request's status is one of: {', '.join(REQUEST_STATUSES)}.", "status"
        )
    requester_id = _optional_id(requested_by, "requested_by", "Choose a staff member.")
    tag = "requests"
    position = open_cursor(after, tag, 2)

    def work(session: Session) -> Page[RequestRow]:
        requester = aliased(Staff)
        decider = aliased(Staff)
        keys: list[SQLColumnExpression[Any]] = [
            ApprovalRequest.requested_at, ApprovalRequest.id,
        ]
        stmt = (
            select(
                ApprovalRequest.id,
                ApprovalRequest.kind,
                ApprovalRequest.account_id,
                Account.name,
                ApprovalRequest.credits,
                ApprovalRequest.payload,
                ApprovalRequest.summary,
                Operation.result,
                Operation.reason,
                Operation.reference,
                Operation.note,
                ApprovalRequest.status,
                ApprovalRequest.requested_by,
                requester.display_name,
                ApprovalRequest.requested_at,
                ApprovalRequest.decided_by,
                decider.display_name,
                ApprovalRequest.decided_at,
                ApprovalRequest.decision_comment,
                ApprovalRequest.failure_reason,
            )
            .join(Account, Account.id == ApprovalRequest.account_id)
            .join(Operation, Operation.id == ApprovalRequest.operation_id)
            .join(requester, requester.id == ApprovalRequest.requested_by)
            .outerjoin(decider, decider.id == ApprovalRequest.decided_by)
            .order_by(*keyset_order(keys, descending=True))
            .limit(size + 1)
        )
        if status is not None:
            stmt = stmt.where(ApprovalRequest.status == status)
        if requester_id is not None:
            stmt = stmt.where(ApprovalRequest.requested_by == requester_id)
        if position is not None:
            stmt = stmt.where(keyset_after(keys, position, descending=True))
        fetched = session.execute(stmt).all()
        payloads = [_payload(r[5]) for r in fetched]
        # A reversal of an adjustment gives back or takes away depending on the
        # adjustment's sign: one lookup for the page, not one per row.
        adjustment_ids = {
            int(p["adjustment_id"]) for r, p in zip(fetched, payloads, strict=True)
            if r[1] == "reversal" and isinstance(p.get("adjustment_id"), int)
        }
        signs: dict[int, int] = {}
        if adjustment_ids:
            signs = {
                int(a_id): (1 if delta > 0 else -1)
                for a_id, delta in session.execute(
                    select(Adjustment.id, Adjustment.delta).where(
                        Adjustment.id.in_(sorted(adjustment_ids))
                    )
                )
            }
        rows = [
            RequestRow(
                id=r[0], kind=r[1], account_id=r[2], account_name=r[3], credits=r[4],
                effect=_effect(r[1], r[4], p, signs), summary=r[6],
                why=_why(r[7], r[0]), reason=r[8], reference=r[9], note=r[10],
                status=r[11], requested_by=r[12], requested_by_name=r[13],
                requested_at=r[14], decided_by=r[15], decided_by_name=r[16],
                decided_at=r[17], comment=r[18], failure_reason=r[19],
            )
            for r, p in zip(fetched, payloads, strict=True)
        ]
        shown, cursor = split_page(
            rows, size, lambda q: make_cursor(tag, q.requested_at, q.id)
        )
        return Page(shown, cursor)

    return db.read(work)


def _payload(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _effect(kind: str, credits: int, payload: dict[str, Any], signs: dict[int, int]) -> int:
    if kind == "refund":
        return credits
    if kind == "adjustment":
        delta = payload.get("delta")
        return -credits if isinstance(delta, int) and delta < 0 else credits
    if kind == "reversal":
        if payload.get("refund_id") is not None:
            return -credits  # the refunded credits are taken back
        adjustment_id = payload.get("adjustment_id")
        if isinstance(adjustment_id, int):
            return -credits * signs.get(adjustment_id, 1)
    return 0


def _why(result: str, request_id: int) -> str:
    """Why the action needed approval: the requester's operation result says it first,
    then that the request waits (``approvals_queue.create_request`` writes it so)."""
    message = _payload(result).get("message")
    if not isinstance(message, str):
        return ""
    waits = f" Request #{request_id} is waiting for approval"
    head, found, _ = message.partition(waits)
    return head.strip() if found else message.strip()


# -- audit log ---------------------------------------------------------------------


@dataclass(frozen=True)
class AuditRow:
    """One audit event; ``staff_name`` None for an attempt made before sign-in."""

    id: int
    at: datetime
    staff_id: int | None
    staff_name: str | None
    action: str
    outcome: str
    account_id: int | None
    account_name: str | None
    operation_id: int | None
    detail: str


@dataclass(frozen=True)
class AuditFilter:
    """Which audit events to list; ``since <= at < until``."""

    staff_id: int | None = None
    action: str | None = None
    account_id: int | None = None
    since: datetime | None = None
    until: datetime | None = None


def audit_page(
    db: Database,
    *,
    staff_id: int | None = None,
    action: str | None = None,
    account_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    after: Cursor | None = None,
    limit: int = 200,
) -> Page[AuditRow]:
    """Audit events, newest first, paged on (at, id): the ``at`` index serves the whole
    log and the (actor_id, at) index one staff member's events."""
    f = _audit_filter(staff_id, action, account_id, since, until)
    size = check_limit(limit)
    position = open_cursor(after, _AUDIT_TAG, 2)
    return db.read(lambda s: _audit_rows(s, f, position, size, None))


_AUDIT_TAG = "audit"


def _audit_filter(
    staff_id: object, action: object, account_id: object, since: object, until: object
) -> AuditFilter:
    return AuditFilter(
        staff_id=_optional_id(staff_id, "staff_id", "Choose a staff member."),
        action=_optional_text(action, "action", "The action"),
        account_id=_optional_id(account_id, "account_id",
                                "An account id is a whole number."),
        since=_optional_time(since, "since"),
        until=_optional_time(until, "until"),
    )


def _audit_rows(
    session: Session,
    f: AuditFilter,
    position: tuple[Any, ...] | None,
    size: int,
    max_id: int | None,
) -> Page[AuditRow]:
    keys: list[SQLColumnExpression[Any]] = [AuditEvent.at, AuditEvent.id]
    stmt = (
        select(
            AuditEvent.id,
            AuditEvent.at,
            AuditEvent.actor_id,
            Staff.display_name,
            AuditEvent.action,
            AuditEvent.outcome,
            AuditEvent.account_id,
            Account.name,
            AuditEvent.operation_id,
            AuditEvent.detail,
        )
        .outerjoin(Staff, Staff.id == AuditEvent.actor_id)
        .outerjoin(Account, Account.id == AuditEvent.account_id)
        .order_by(*keyset_order(keys, descending=True))
        .limit(size + 1)
    )
    if f.staff_id is not None:
        stmt = stmt.where(AuditEvent.actor_id == f.staff_id)
    if f.action is not None:
        stmt = stmt.where(AuditEvent.action == f.action)
    if f.account_id is not None:
        stmt = stmt.where(AuditEvent.account_id == f.account_id)
    if f.since is not None:
        stmt = stmt.where(AuditEvent.at >= f.since)
    if f.until is not None:
        stmt = stmt.where(AuditEvent.at < f.until)
    if max_id is not None:
        stmt = stmt.where(AuditEvent.id <= max_id)
    if position is not None:
        stmt = stmt.where(keyset_after(keys, position, descending=True))
    rows = [
        AuditRow(
            id=r[0], at=r[1], staff_id=r[2], staff_name=r[3], action=r[4], outcome=r[5],
            account_id=r[6], account_name=r[7], operation_id=r[8], detail=r[9] or "",
        )
        for r in session.execute(stmt)
    ]
    shown, cursor = split_page(rows, size, lambda a: make_cursor(_AUDIT_TAG, a.at, a.id))
    return Page(shown, cursor)


def audit_actions(db: Database) -> list[str]:
    """Every action the audit log holds, sorted, for a filter list.

    A DISTINCT over the whole log: run it once when the view opens, off the GUI thread.
    """

    def work(session: Session) -> list[str]:
        found = session.scalars(select(AuditEvent.action).distinct())
        return sorted({str(a) for a in found})

    return db.read(work)


# -- audit export ------------------------------------------------------------------

AUDIT_CSV_COLUMNS = (
    "event_id", "time_utc", "staff_id", "staff", "action", "outcome", "account_id",
    "account", "operation_id", "detail",
)

# A spreadsheet treats a cell starting with one of these as a formula; text that
# staff or customers typed must never run as one when finance opens the file.


@dataclass(frozen=True)
class AuditExport:
    """What an export wrote."""

    path: Path
    rows: int


def export_audit_csv(
    db: Database,
    actor: Actor,
    path: str | os.PathLike[str],
    *,
    staff_id: int | None = None,
    action: str | None = None,
    account_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    batch_size: int = EXPORT_BATCH,
    progress: Callable[[int], None] | None = None,
) -> AuditExport:
    """Write every audit event matching the filters (as :func:`audit_page` lists them,
    newest first) to a CSV file at ``path``, and audit the export.

    Only roles allowed to export may (the role is read from the database); a refusal is
    audited and nothing is written. The events are read ``batch_size`` at a time and
    the file is written beside ``path`` first and moved into place at the end, so a
    failed export never leaves half a file. Events recorded while the export runs are
    left out: it is the log as it stood when the export began. Text cells that a
    spreadsheet would run as a formula get a leading apostrophe. ``progress`` is told
    the running row count after each batch.
    """
    f = _audit_filter(staff_id, action, account_id, since, until)
    size = check_limit(batch_size)
    target = export_path(path)
    started = utcnow()

    def check(session: Session) -> int:
        staff = active_staff(session, actor)
        decision = decide(Role(staff.role), Action.EXPORT)
        if not decision.allowed:
            raise PermissionDenied(decision.reason)
        return int(session.scalar(select(func.coalesce(func.max(AuditEvent.id), 0))) or 0)

    try:
        max_id = db.read(check)
    except PermissionDenied as exc:
        audit_refusal(db, actor, "export", _one(f.account_id), exc.message, started)
        raise

    written = _write_csv(db, f, size, max_id, target, progress)

    def audit(session: Session) -> None:
        account = f.account_id
        if account is not None and session.get(Account, account) is None:
            account = None
        session.add(AuditEvent(
            at=utcnow(), actor_id=actor.staff_id, action="export", outcome="applied",
            account_id=account,
            detail=f"Exported {written:,} audit event{'s' if written != 1 else ''} "
                   f"to {target.name}{_filter_text(f)}."[:2000],
        ))

    db.write(audit)
    return AuditExport(target, written)


def _write_csv(
    db: Database,
    f: AuditFilter,
    size: int,
    max_id: int,
    target: Path,
    progress: Callable[[int], None] | None,
) -> int:
    try:
        handle, temp_name = tempfile.mkstemp(
            prefix=f".{target.name}.", suffix=".part", dir=target.parent
        )
    except OSError as exc:
        raise _file_error(target, exc) from exc
    temp = Path(temp_name)
    written = 0
    try:
        # utf-8 with a byte order mark: spreadsheets then read accents and emoji right.
        with os.fdopen(handle, "w", encoding="utf-8-sig", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(AUDIT_CSV_COLUMNS)
            position: tuple[Any, ...] | None = None
            while True:
                page = db.read(partial(_audit_rows, f=f, position=position, size=size,
                                       max_id=max_id))
                writer.writerows(_csv_row(r) for r in page.rows)
                written += len(page.rows)
                if progress is not None:
                    progress(written)
                if page.next_cursor is None:
                    break
                position = tuple(page.next_cursor.values[1:])
        os.replace(temp, target)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise _file_error(target, exc) from exc
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return written


def _csv_row(r: AuditRow) -> list[str]:
    return [
        str(r.id),
        r.at.astimezone(UTC).isoformat(timespec="seconds"),
        "" if r.staff_id is None else str(r.staff_id),
        safe_cell(r.staff_name or ""),
        safe_cell(r.action),
        safe_cell(r.outcome),
        "" if r.account_id is None else str(r.account_id),
        safe_cell(r.account_name or ""),
        "" if r.operation_id is None else str(r.operation_id),
        safe_cell(r.detail),
    ]


def _file_error(target: Path, exc: OSError) -> CreditsDeskError:
    why = exc.strerror or "the file could not be written"
    return CreditsDeskError(
        f"The export could not be written to '{target}': {why.rstrip('.')}. "
        "Nothing was exported; choose another place and try again."
    )


def _filter_text(f: AuditFilter) -> str:
    parts = []
    if f.staff_id is not None:
        parts.append(f"staff #{f.staff_id}")
    if f.action is not None:
        parts.append(f"action {f.action}")
    if f.account_id is not None:
        parts.append(f"account #{f.account_id}")
    if f.since is not None:
        parts.append(f"from {f.since:%Y-%m-%d %H:%M} UTC")
    if f.until is not None:
        parts.append(f"before {f.until:%Y-%m-%d %H:%M} UTC")
    return f" ({', '.join(parts)})" if parts else ""


def _one(account_id: int | None) -> tuple[int, ...]:
    return () if account_id is None else (account_id,)


# -- shared checks -----------------------------------------------------------------


def _prefix(column: ColumnElement[str], prefix: str) -> ColumnElement[bool]:
    """``column`` starts with ``prefix``, as a range (no LIKE: ``%`` and ``_`` are
    ordinary characters)."""
    upper = prefix_upper_bound(prefix)
    if upper is None:
        return column >= prefix
    return and_(column >= prefix, column < upper)


def _optional_text(value: object, field: str, label: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"{label} must be text.", field)
    cleaned = value.strip()
    if "\x00" in cleaned:
        raise InvalidInput(f"{label} contains a control character.", field)
    try:
        cleaned.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(f"{label} contains a character that cannot be stored.",
                           field) from None
    return cleaned or None


def _optional_id(value: object, field: str, message: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(message, field)
    return value


def _optional_time(value: object, field: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput("Times must be given with a time zone.", field)
    return to_utc(value, field)

