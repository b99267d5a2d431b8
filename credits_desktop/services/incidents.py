"""Incident (bulk) refunds: give back every failed charge of an outage in one run.

Finance, managers and admins choose a feature (optionally one AI model) and a UTC
time window ``[start, end)``. :func:`preview_incident` counts, with set-based SQL,
the failed charges in it that cost credits and were never refunded; nothing is
written. :func:`run_incident` then refunds them.

How the run stays correct when repeated or interrupted:

* it works in batches of whole accounts, in account id order, up to ``batch_size``
  charges each (an account with more takes batches of its own); each batch is one
  :func:`~.operations.perform`: it locks its accounts in id order, records one
  operation with its ledger entries, refunds and audit rows, and lands whole or not
  at all;
* a charge already refunded is out of scope (and the ``refunds.charge_id`` unique
  constraint forbids a second refund whatever happens), so a second run, or a run
  after a Cancel or a crash, refunds only what is left: every charge exactly once;
* each batch's idempotency key is derived from the incident reference and the
  batch's accounts and charge ids, so the same batch sent twice (two people pressing Run
  at once, a retry after a lost acknowledgement) applies once;
* a charge refunded by someone else after the run read its list is skipped inside
  the batch's transaction (checked with the accounts locked), never fatal.

Why batches of several accounts rather than one transaction per account: a one-hour
outage touches one or two charges on each of thousands of accounts, and a transaction
per account spent most of its time on the commit and the operation's bookkeeping
(about 40 ms each on PostgreSQL, so over a minute for a one-hour outage of the
100,000-account demo). Each account still gets its own audit row. Within a batch the
work is set-wise too (``refunds.apply_refunds``): about 20 statements whatever its
number of charges and accounts, where refunding account by account, charge by charge,
took about 14 per charge.

Permission: the batches check :attr:`Action.INCIDENT_REFUND` (finance, manager,
admin) rather than going through ``refund_decision``. Incident refunds are allowed
outright to those roles by the brief's permission table; ``Action.REFUND`` would turn
any batch above finance's per-refund limit into a per-account approval request,
which is not what an incident refund is.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import logging
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, distinct, exists, func, insert, select
from sqlalchemy.orm import Session

from credits_desktop.domain.permissions import Action, Role, decide
from credits_desktop.store.database import Database
from credits_desktop.store.models import (
    Account,
    AuditEvent,
    Feature,
    Refund,
    UsageCharge,
)
from credits_desktop.store.types import utcnow

from . import validation as v
from .errors import (
    AlreadyRefunded,
    CreditsDeskError,
    IdempotencyConflict,
    InvalidInput,
    PermissionDenied,
    RuleBroken,
)
from .exports import export_path, safe_cell
from .operations import (
    MAX_KEY_LENGTH,
    Actor,
    Outcome,
    WriteContext,
    active_staff,
    audit_refusal,
    perform,
)
from .reasons import RefundReason
from .refunds import MAX_CHARGES_PER_REFUND, apply_refunds
from .validation import to_utc

__all__ = [
    "ACTION",
    "CSV_COLUMNS",
    "MAX_WINDOW",
    "IncidentPreview",
    "IncidentRow",
    "IncidentScope",
    "IncidentSummary",
    "SampleRow",
    "incident_key",
    "preview_incident",
    "run_incident",
    "write_incident_csv",
]

log = logging.getLogger(__name__)

ACTION = Action.INCIDENT_REFUND.value
# An outage is hours or days; a window of a whole quarter is the most one run may take.
MAX_WINDOW = timedelta(days=92)
MAX_SAMPLE = 200
DEFAULT_PREFIX = "incident"
MAX_PREFIX = 40
FAILED = "failed"

CSV_COLUMNS = (
    "account_id", "account_name", "charge_id", "occurred_at_utc", "feature_code", "model",
    "credits_refunded", "operation_id",
)


# -- the scope ------------------------------------------------------------------------


@dataclass(frozen=True)
class IncidentScope:
    """Which charges an incident covers: one feature, optionally one model, and the
    half-open UTC window ``start <= occurred_at < end``.

    Checked on construction (plain :class:`InvalidInput` messages); times are kept
    in UTC and the model trimmed (an empty model means every model).
    """

    feature_code: str
    model: str | None
    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        feature = v.required_text(self.feature_code, "feature_code", "The feature",
                                  max_length=40)
        model = v.text(self.model, "model", "The model", max_length=60, required=False)
        start = _aware(self.start, "start", "The start of the window")
        end = _aware(self.end, "end", "The end of the window")
        if start >= end:
            raise InvalidInput("The end of the window must be after its start.", "end")
        if end - start > MAX_WINDOW:
            raise InvalidInput(
                f"An incident window can be at most {MAX_WINDOW.days} days long.", "end"
            )
        object.__setattr__(self, "feature_code", feature)
        object.__setattr__(self, "model", model)
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "end", end)

    def describe(self) -> str:
        """The scope in words, for notes, audit rows and confirmations."""
        model = f" (model {self.model})" if self.model else ""
        return (
            f"failed {self.feature_code}{model} charges from "
            f"{self.start:%Y-%m-%d %H:%M} to {self.end:%Y-%m-%d %H:%M} UTC"
        )


def _aware(value: object, field_name: str, label: str) -> datetime:
    if not isinstance(value, datetime):
        raise InvalidInput(f"{label} must be a date and time.", field_name)
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput(f"{label} must carry a time zone.", field_name)
    return to_utc(value, field_name)


def _conditions(scope: IncidentScope) -> list[ColumnElement[bool]]:
    """What makes a charge part of the incident: the feature/time index finds the
    window, the rest filters it."""
    conditions: list[ColumnElement[bool]] = [
        UsageCharge.feature_code == scope.feature_code,
        UsageCharge.occurred_at >= scope.start,
        UsageCharge.occurred_at < scope.end,
        UsageCharge.status == FAILED,
        UsageCharge.credits > 0,
        ~exists().where(Refund.charge_id == UsageCharge.id),
    ]
    if scope.model is not None:
        conditions.append(UsageCharge.model == scope.model)
    return conditions


def _require_feature(session: Session, scope: IncidentScope) -> None:
    found = session.scalar(select(Feature.code).where(Feature.code == scope.feature_code))
    if found is None:
        raise InvalidInput(f"There is no feature '{scope.feature_code}'.", "feature_code")


def _check_allowed(session: Session, actor: Actor) -> None:
    """Refuse a role that may not run incident refunds (the role as stored, not as
    the caller says)."""
    staff = active_staff(session, actor)
    decision = decide(Role(staff.role), Action.INCIDENT_REFUND)
    if not decision.allowed:
        raise PermissionDenied(decision.reason)


def _read_checked(db: Database, actor: Actor, work: Callable[[Session], Any]) -> Any:
    """Run a read after the permission check; a refusal is audited, then raised."""

    def checked(session: Session) -> Any:
        _check_allowed(session, actor)
        return work(session)

    try:
        return db.read(checked)
    except PermissionDenied as exc:
        audit_refusal(db, actor, ACTION, (), exc.message, utcnow())
        raise


# -- preview --------------------------------------------------------------------------


@dataclass(frozen=True)
class SampleRow:
    """One charge of the preview's sample."""

    account_id: int
    account_name: str
    charge_id: int
    occurred_at: datetime
    model: str | None
    credits: int


@dataclass(frozen=True)
class IncidentPreview:
    """What a run would refund now; nothing was written to find out."""

    scope: IncidentScope
    charges: int
    accounts: int
    credits: int
    sample: tuple[SampleRow, ...]


def preview_incident(db: Database, actor: Actor, scope: IncidentScope, *,
                     sample: int = 20) -> IncidentPreview:
    """Count the charges an incident run would refund, with a sample (oldest first)."""
    if isinstance(sample, bool) or not isinstance(sample, int) or not 0 <= sample <= MAX_SAMPLE:
        raise InvalidInput(f"The sample holds 0 to {MAX_SAMPLE} rows.", "sample")
    conditions = _conditions(scope)

    def work(session: Session) -> IncidentPreview:
        _require_feature(session, scope)
        count, accounts, credits = session.execute(
            select(
                func.count(UsageCharge.id),
                func.count(distinct(UsageCharge.account_id)),
                func.coalesce(func.sum(UsageCharge.credits), 0),
            ).where(*conditions)
        ).one()
        rows: list[SampleRow] = []
        if sample and count:
            stmt = (
                select(UsageCharge.account_id, Account.name, UsageCharge.id,
                       UsageCharge.occurred_at, UsageCharge.model, UsageCharge.credits)
                .join(Account, Account.id == UsageCharge.account_id)
                .where(*conditions)
                .order_by(UsageCharge.occurred_at, UsageCharge.id)
                .limit(sample)
            )
            rows = [
                SampleRow(account_id=r[0], account_name=r[1], charge_id=r[2],
                          occurred_at=r[3], model=r[4], credits=int(r[5]))
                for r in session.execute(stmt)
            ]
        return IncidentPreview(scope=scope, charges=int(count), accounts=int(accounts),
                               credits=int(credits), sample=tuple(rows))

    result: IncidentPreview = _read_checked(db, actor, work)
    return result


# -- the run --------------------------------------------------------------------------


@dataclass(frozen=True)
class IncidentRow:
    """One charge the run refunded: a line of the CSV."""

    account_id: int
    account_name: str
    charge_id: int
    occurred_at: datetime
    feature_code: str
    model: str | None
    credits: int
    operation_id: int


@dataclass(frozen=True)
class IncidentSummary:
    """What one run did.

    ``skipped`` counts charges that were in scope when the run started but were no
    longer refundable when their batch came (someone refunded them meanwhile).
    ``failed`` counts charges whose batch the database refused for another reason
    (``problems`` says why); a later run picks them up again. ``stopped_by`` is the
    message of the error that ended the run early, if one did; ``cancelled`` says a
    Cancel ended it. Either way the batches done before stay done.
    """

    incident_ref: str
    scope: IncidentScope
    total: int
    charges_refunded: int
    accounts: int
    credits: int
    skipped: int
    cancelled: bool
    rows: tuple[IncidentRow, ...]
    failed: int = 0
    problems: tuple[str, ...] = ()
    stopped_by: str | None = None
    operation_ids: tuple[int, ...] = field(default_factory=tuple)

    @property
    def complete(self) -> bool:
        """Whether every charge of the scope was dealt with."""
        return not self.cancelled and self.stopped_by is None and self.failed == 0

    def text(self) -> str:
        """The outcome in plain sentences."""
        done = (
            f"Refunded {self.charges_refunded:,} charge(s), {self.credits:,} credits, on "
            f"{self.accounts:,} account(s) for incident {self.incident_ref}."
        )
        parts = [done]
        if self.cancelled:
            dealt = self.charges_refunded + self.skipped + self.failed
            parts.insert(0, f"Cancelled after {dealt:,} of {self.total:,} charge(s).")
        if self.stopped_by:
            parts.insert(0, f"Stopped early: {self.stopped_by}")
        if self.skipped:
            parts.append(f"{self.skipped:,} charge(s) had been refunded meanwhile by someone "
                         "else and were skipped.")
        if self.failed:
            parts.append(f"{self.failed:,} charge(s) could not be refunded: "
                         f"{self.problems[0] if self.problems else 'see the log'}")
        if not self.complete:
            parts.append("Run it again with the same scope to finish: charges already "
                         "refunded are not refunded twice.")
        return " ".join(parts)


ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True)
class _Batch:
    """The charges one transaction refunds: whole accounts in id order, up to the batch
    size in all (an account with more charges than that takes batches of its own)."""

    charges: tuple[tuple[int, tuple[int, ...]], ...]  # (account id, its charge ids)

    @property
    def account_ids(self) -> list[int]:
        return [account_id for account_id, _ in self.charges]

    @property
    def size(self) -> int:
        return sum(len(ids) for _, ids in self.charges)


def incident_key(prefix: str, incident_ref: str,
                 charges: Sequence[tuple[int, Sequence[int]]]) -> str:
    """The idempotency key of one batch: the same incident and the same charges of the
    same accounts give the same key, so the batch applies once however often it is sent."""
    parts = sorted((account_id, sorted(ids)) for account_id, ids in charges)
    listing = ";".join(f"{a}:{','.join(str(i) for i in ids)}" for a, ids in parts)
    digest = hashlib.sha256(f"{incident_ref}\x1f{listing}".encode()).hexdigest()
    first = parts[0][0] if parts else 0
    key = f"{prefix}:{first}:{digest[:40]}"
    assert len(key) <= MAX_KEY_LENGTH
    return key


def _batches(pairs: Sequence[tuple[int, int]], size: int) -> Iterator[_Batch]:
    """Batches (see :class:`_Batch`) from (account id, charge id) pairs sorted by account."""
    by_account: list[tuple[int, list[int]]] = []
    for account_id, charge_id in pairs:
        if not by_account or by_account[-1][0] != account_id:
            by_account.append((account_id, []))
        by_account[-1][1].append(charge_id)
    current: list[tuple[int, tuple[int, ...]]] = []
    count = 0
    for account_id, ids in by_account:
        for first in range(0, len(ids), size):
            chunk = tuple(ids[first:first + size])
            if count + len(chunk) > size and current:
                yield _Batch(tuple(current))
                current, count = [], 0
            current.append((account_id, chunk))
            count += len(chunk)
    if current:
        yield _Batch(tuple(current))


class _NothingLeft(AlreadyRefunded):
    """Every charge of a batch was refunded meanwhile: roll back, write nothing."""


def _refund_batch(ctx: WriteContext, request: dict[str, Any],
                  captured: list[IncidentRow]) -> Outcome:
    """The body of one batch: refund what is still refundable, skip the rest."""
    # The role as stored now: a role taken away mid-run stops the next batch.
    decision = decide(ctx.role, Action.INCIDENT_REFUND)
    if not decision.allowed:
        raise PermissionDenied(decision.reason)
    captured.clear()  # the body runs again if the transaction is retried
    wanted: list[tuple[int, list[int]]] = request["charges"]
    ids = [charge_id for _, charge_ids in wanted for charge_id in charge_ids]
    # The accounts are locked: nobody can refund their charges until this commits.
    charges: dict[int, UsageCharge] = {}
    refunded: set[int] = set()
    for loaded, refund_of in ctx.session.execute(
        select(UsageCharge, Refund.charge_id)
        .outerjoin(Refund, Refund.charge_id == UsageCharge.id)
        .where(UsageCharge.id.in_(ids))
    ):
        charges[loaded.id] = loaded
        if refund_of is not None:
            refunded.add(loaded.id)
    skipped: list[int] = []
    work: list[tuple[int, list[tuple[UsageCharge, int]]]] = []
    for account_id, charge_ids in wanted:
        plan = []
        for charge_id in charge_ids:
            charge = charges.get(charge_id)
            if (charge is None or charge.account_id != account_id or charge_id in refunded
                    or charge.status != FAILED or charge.credits <= 0):
                skipped.append(charge_id)
                continue
            plan.append((charge, charge.credits))
        if plan:
            work.append((account_id, plan))
    # All the batch's accounts at once: a few statements for the whole batch rather
    # than a dozen per charge (see refunds.apply_refunds).
    outcomes = apply_refunds(ctx, request["reason_code"], work) if work else []
    total = 0
    audits: list[dict[str, Any]] = []
    for (account_id, plan), outcome in zip(work, outcomes, strict=True):
        total += outcome.credits
        name = ctx.accounts[account_id].name
        captured.extend(
            IncidentRow(account_id=account_id, account_name=name, charge_id=c.id,
                        occurred_at=c.occurred_at, feature_code=c.feature_code,
                        model=c.model, credits=amount, operation_id=ctx.operation.id)
            for c, amount in plan
        )
        audits.append({
            "at": ctx.at, "actor_id": ctx.staff.id, "action": ACTION, "outcome": "applied",
            "account_id": account_id, "operation_id": ctx.operation.id,
            "detail": f"Incident {request['ticket']}: {outcome.message}"[:2000],
        })
    if len(wanted) > 1 and audits:
        # perform() audits an operation of several accounts without an account; each
        # account's own audit trail still shows what happened to it. One statement
        # with a list of rows (they are not read back in this transaction), without
        # flushing the balances first: they are written once, at commit.
        with ctx.session.no_autoflush:
            ctx.session.execute(insert(AuditEvent), audits)
    if not captured:
        raise _NothingLeft("Every charge of this batch was refunded meanwhile.")
    return Outcome(
        status="applied",
        message=f"Incident {request['ticket']}: refunded {total:,} credits on "
                f"{len(captured):,} charge(s) of {len(wanted):,} account(s).",
        credits=total,
        details={"skipped": ",".join(str(i) for i in skipped), "refunded": len(captured)},
    )


def _rows_of_operation(db: Database, operation_id: int) -> list[IncidentRow]:
    """The rows of a batch that had already been applied (its key was replayed)."""

    def work(session: Session) -> list[IncidentRow]:
        stmt = (
            select(Refund.account_id, Account.name, UsageCharge.id, UsageCharge.occurred_at,
                   UsageCharge.feature_code, UsageCharge.model, Refund.credits)
            .join(UsageCharge, UsageCharge.id == Refund.charge_id)
            .join(Account, Account.id == Refund.account_id)
            .where(Refund.operation_id == operation_id)
            .order_by(UsageCharge.id)
        )
        return [
            IncidentRow(account_id=r[0], account_name=r[1], charge_id=r[2], occurred_at=r[3],
                        feature_code=r[4], model=r[5], credits=int(r[6]),
                        operation_id=operation_id)
            for r in session.execute(stmt)
        ]

    return db.read(work)


def run_incident(
    db: Database,
    actor: Actor,
    scope: IncidentScope,
    *,
    incident_ref: str,
    idempotency_prefix: str | None = None,
    batch_size: int = 200,
    progress: ProgressCallback | None = None,
    cancelled: Callable[[], bool] | None = None,
    at: datetime | None = None,
) -> IncidentSummary:
    """Refund every charge in ``scope`` (see the module docstring).

    ``cancelled()`` is asked before each batch, and a True answer ends the run
    cleanly with the batches done so far. ``progress(done, total)`` is called before
    each batch, once that answer let it start (with the charges dealt with so far),
    and once at the end. Refusals of the whole run (bad input, a
    role that may not) raise; trouble in the middle ends the run early and is
    reported in the summary's ``stopped_by``.
    """
    ref = v.required_text(incident_ref, "incident_ref", "An incident reference",
                          max_length=v.TICKET_MAX)
    prefix = v.required_text(idempotency_prefix or DEFAULT_PREFIX, "idempotency_prefix",
                             "The key prefix", max_length=MAX_PREFIX)
    if (isinstance(batch_size, bool) or not isinstance(batch_size, int)
            or not 1 <= batch_size <= MAX_CHARGES_PER_REFUND):
        raise InvalidInput(
            f"A batch holds 1 to {MAX_CHARGES_PER_REFUND:,} charges.", "batch_size"
        )
    if at is not None and (at.tzinfo is None or at.utcoffset() is None):
        raise InvalidInput("Times must carry a time zone.", "at")
    conditions = _conditions(scope)
    note = f"Incident refund of {scope.describe()}."

    def listing(session: Session) -> list[tuple[int, int]]:
        _require_feature(session, scope)
        stmt = (
            select(UsageCharge.account_id, UsageCharge.id)
            .where(*conditions)
            .order_by(UsageCharge.account_id, UsageCharge.id)
        )
        return [(int(a), int(c)) for a, c in session.execute(stmt)]

    pairs: list[tuple[int, int]] = _read_checked(db, actor, listing)
    total = len(pairs)
    done = refunded_count = credits = skipped = failed = 0
    accounts: set[int] = set()
    rows: list[IncidentRow] = []
    problems: list[str] = []
    operations: list[int] = []
    was_cancelled = False
    stopped_by: str | None = None

    for batch in _batches(pairs, batch_size):
        if cancelled is not None and cancelled():
            was_cancelled = True
            break
        # Reported once the batch is sure to run: a Cancel seen after this report
        # stops the run after this batch, never before it.
        if progress is not None:
            progress(done, total)
        request = {
            "charges": [[account_id, list(ids)] for account_id, ids in batch.charges],
            "reason_code": RefundReason.FAILED_GENERATION.value,
            "ticket": ref,
        }
        captured: list[IncidentRow] = []
        try:
            result = perform(
                db,
                actor,
                kind=ACTION,
                idempotency_key=incident_key(prefix, ref, batch.charges),
                request=request,
                account_ids=batch.account_ids,
                reason="Incident refund: failed generation",
                reference=ref,
                note=note,
                at=at,
                body=functools.partial(_refund_batch, request=request, captured=captured),
            )
        except _NothingLeft:
            skipped += batch.size
        except (RuleBroken, IdempotencyConflict) as exc:
            # About this batch only (say, a conflicting write): the others go on, and a
            # later run picks these charges up again.
            failed += batch.size
            first = batch.account_ids[0]
            problems.append(exc.message)
            log.warning("incident %s: batch from account %d refused: %s", ref, first,
                        exc.message)
        except CreditsDeskError as exc:
            # About the run (role taken away, database gone): the next batches would
            # fail the same way, so stop with what is done.
            stopped_by = exc.message
            break
        else:
            batch_rows = _rows_of_operation(db, result.operation_id) if result.replayed \
                else captured
            rows.extend(batch_rows)
            operations.append(result.operation_id)
            refunded_count += len(batch_rows)
            credits += sum(r.credits for r in batch_rows)
            skipped += batch.size - len(batch_rows)
            accounts.update(r.account_id for r in batch_rows)
        done += batch.size
    if progress is not None:
        progress(done, total)

    summary = IncidentSummary(
        incident_ref=ref, scope=scope, total=total, charges_refunded=refunded_count,
        accounts=len(accounts), credits=credits, skipped=skipped, cancelled=was_cancelled,
        rows=tuple(rows), failed=failed, problems=tuple(problems), stopped_by=stopped_by,
        operation_ids=tuple(operations),
    )
    _audit_run(db, actor, summary, at or utcnow())
    return summary


def _audit_run(db: Database, actor: Actor, summary: IncidentSummary, at: datetime) -> None:
    """One audit row for the run as a whole (each batch has its own already).

    Best effort: the refunds are committed whatever happens here.
    """
    outcome = ("cancelled" if summary.cancelled
               else "applied" if summary.complete else "partial")
    detail = f"{summary.text()} Scope: {summary.scope.describe()}."

    def work(session: Session) -> None:
        session.add(AuditEvent(at=at, actor_id=actor.staff_id, action=ACTION,
                               outcome=outcome, account_id=None, operation_id=None,
                               detail=detail[:2000]))

    try:
        db.write(work)
    except Exception:
        log.exception("could not audit incident run %s", summary.incident_ref)


# -- the report -----------------------------------------------------------------------


def write_incident_csv(summary: IncidentSummary, path: str | Path) -> int:
    """Write what the run refunded as CSV (UTF-8, one row per charge); returns the
    number of rows. Call it off the GUI thread: it is file work. The file appears
    whole or not at all (written beside it, then moved into place), and text cells
    cannot run as spreadsheet formulas."""
    target = export_path(path)
    temp: Path | None = None
    try:
        handle, temp_name = tempfile.mkstemp(prefix=".incident-", suffix=".csv",
                                             dir=target.parent)
        temp = Path(temp_name)
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(CSV_COLUMNS)
            for row in summary.rows:
                writer.writerow([
                    row.account_id, safe_cell(row.account_name), row.charge_id,
                    row.occurred_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
                    safe_cell(row.feature_code), safe_cell(row.model or ""), row.credits,
                    row.operation_id,
                ])
        os.replace(temp, target)
        temp = None
    except OSError as exc:
        raise InvalidInput(
            f"The CSV could not be written to {target}: {exc.strerror or exc}.", "path"
        ) from exc
    finally:
        if temp is not None:
            temp.unlink(missing_ok=True)
    return len(summary.rows)
