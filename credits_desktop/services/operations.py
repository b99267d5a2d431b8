"""The frame every staff write runs in: one transaction, idempotency, audit.

:func:`perform` checks that the acting staff member still exists and is active
(the role is read from the database, never taken from the caller), locks the
accounts involved, answers a repeated idempotency key with the stored result,
records the operation (who, when, why, which reference), runs the body, and
writes an audit event. A refused attempt is audited in a transaction of its own
so that the refusal is on record while the refused change is not.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from credits_desktop.domain.errors import RuleViolation
from credits_desktop.domain.permissions import Limits, Role
from credits_desktop.store.database import Database
from credits_desktop.store.engine import refusal_message
from credits_desktop.store.models import Account, AuditEvent, Operation, Setting, Staff
from credits_desktop.store.types import utcnow

from .book import SYSTEM_USERNAME, AccountBook, lock_accounts
from .errors import (
    CreditsDeskError,
    DatabaseUnavailable,
    IdempotencyConflict,
    InvalidInput,
    PermissionDenied,
    RuleBroken,
)
from .results import OperationResult

log = logging.getLogger(__name__)

MAX_KEY_LENGTH = 100


@dataclass(frozen=True)
class Actor:
    """The staff member on whose behalf the application acts."""

    staff_id: int
    username: str
    display_name: str
    role: Role


@dataclass(frozen=True)
class Outcome:
    """What the body of an operation reports; :func:`perform` adds the ids."""

    status: str
    message: str
    credits: int = 0
    request_id: int | None = None
    details: dict[str, int | str | None] = field(default_factory=dict)


@dataclass
class WriteContext:
    """What an operation's body works with, inside the transaction."""

    session: Session
    staff: Staff
    role: Role
    operation: Operation
    accounts: dict[int, Account]
    at: datetime
    limits: Limits
    system_actor_id: int
    books: dict[int, AccountBook] = field(default_factory=dict)

    def book(self, account_id: int) -> AccountBook:
        """The account's book, rolled forward to the operation's time when first opened."""
        if account_id not in self.books:
            book = AccountBook(
                self.session,
                self.accounts[account_id],
                actor_id=self.staff.id,
                operation_id=self.operation.id,
                reason=self.operation.reason,
                reference=self.operation.reference,
            )
            book.roll_to(self.at, self.system_actor_id)
            self.books[account_id] = book
        return self.books[account_id]


def fingerprint(kind: str, request: Mapping[str, Any]) -> str:
    """A digest of what was asked, to tell a retry from a reused key."""
    canonical = json.dumps({"kind": kind, **request}, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def check_key(key: str) -> str:
    key = (key or "").strip()
    if not key:
        raise InvalidInput("Every change needs an idempotency key.", "idempotency_key")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidInput("The idempotency key is too long.", "idempotency_key")
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput("The idempotency key is not valid text.", "idempotency_key") from None
    return key


def load_limits(session: Session) -> Limits:
    value = session.scalar(select(Setting.value).where(Setting.key == "limits"))
    if not value:
        return Limits()
    data = json.loads(value)
    return Limits(
        refund_limit=int(data.get("refund_limit", Limits.refund_limit)),
        adjust_limit=int(data.get("adjust_limit", Limits.adjust_limit)),
    )


def system_actor_id(session: Session) -> int:
    found = session.scalar(select(Staff.id).where(Staff.username == SYSTEM_USERNAME))
    if found is None:
        raise CreditsDeskError(
            "This database has no system staff row; run 'credits-desktop db upgrade'."
        )
    return found


def active_staff(session: Session, actor: Actor) -> Staff:
    """The acting staff row, refusing a removed or deactivated staff member."""
    staff = session.get(Staff, actor.staff_id)
    if staff is None or staff.username != actor.username:
        raise PermissionDenied("Your staff account was not found; please sign in again.")
    if not staff.active:
        raise PermissionDenied(
            f"The staff account '{staff.username}' is deactivated; ask an admin to restore it."
        )
    return staff


Body = Callable[[WriteContext], Outcome]

# The times a write may carry: the demo and tests write in the past; far outside
# these years a write would roll thousands of billing periods first (or overflow).
EARLIEST_YEAR, LATEST_YEAR = 1970, 2200


def check_when(at: datetime | None) -> datetime:
    """The write's time: now, or ``at`` if it is an aware time in a sane range."""
    if at is None:
        return utcnow()
    if not isinstance(at, datetime) or at.tzinfo is None or at.utcoffset() is None:
        raise InvalidInput("Times must carry a time zone.", "at")
    if not EARLIEST_YEAR <= at.year <= LATEST_YEAR:
        raise InvalidInput(
            f"The time must be between {EARLIEST_YEAR} and {LATEST_YEAR}.", "at")
    return at
T = TypeVar("T")


def _open_context(
    session: Session, staff: Staff, operation: Operation, accounts: dict[int, Account],
    when: datetime,
) -> WriteContext:
    """Record ``operation`` (its id is needed by the ledger rows) and build the context
    its body runs in; shared by real writes and dry runs."""
    session.add(operation)
    session.flush()
    return WriteContext(
        session=session,
        staff=staff,
        role=Role(staff.role),
        operation=operation,
        accounts=accounts,
        at=when,
        limits=load_limits(session),
        system_actor_id=system_actor_id(session),
    )


def _run_body(body: Callable[[WriteContext], T], ctx: WriteContext) -> T:
    """Run an operation's body; a broken domain rule becomes the services' refusal."""
    try:
        return body(ctx)
    except RuleViolation as exc:
        raise RuleBroken(exc.message) from exc


class _RollBack(Exception, Generic[T]):
    """Carries a dry run's answer out of the transaction, which it rolls back."""

    def __init__(self, value: T) -> None:
        super().__init__("dry run")
        self.value = value


def dry_run(
    db: Database,
    actor: Actor,
    *,
    kind: str,
    account_ids: Iterable[int],
    at: datetime | None,
    body: Callable[[WriteContext], T],
) -> T:
    """Run ``body`` exactly as :func:`perform` would, then roll everything back.

    Previews use it so that what a dialog promises ("the balance after will be …")
    is computed by the very code that will do it, not by a second copy of the rules.
    Nothing is audited: a preview is not an attempt.
    """
    when = at or utcnow()
    ids = tuple(sorted(set(account_ids)))

    def work(session: Session) -> T:
        staff = active_staff(session, actor)
        accounts = lock_accounts(session, ids)
        operation = Operation(
            # Never committed; unique only so that the flush cannot collide.
            idempotency_key=f"dry-run-{uuid.uuid4()}",
            fingerprint="",
            kind=kind,
            actor_id=staff.id,
            account_id=ids[0] if len(ids) == 1 else None,
            reason=f"Preview of {kind}",
            reference=None,
            note=None,
            created_at=when,
            result="{}",
        )
        ctx = _open_context(session, staff, operation, accounts, when)
        value = _run_body(body, ctx)
        session.flush()
        raise _RollBack(value)

    try:
        db.write(work)
    except _RollBack as done:
        return done.value  # type: ignore[no-any-return]
    except CreditsDeskError:
        raise
    except DBAPIError as exc:
        refusal = refusal_message(exc)
        if refusal is not None:
            log.warning("the database refused a preview of %s: %s", kind, _first_line(exc))
            raise DatabaseUnavailable(refusal) from exc
        log.exception("database error in a preview of %s", kind)
        raise DatabaseUnavailable(
            "The database could not be reached to prepare the preview. "
            "Check the connection and try again."
        ) from exc
    raise AssertionError("a dry run always rolls back")  # pragma: no cover


def perform(
    db: Database,
    actor: Actor,
    *,
    kind: str,
    idempotency_key: str,
    request: Mapping[str, Any],
    account_ids: Iterable[int],
    reason: str,
    reference: str | None,
    note: str | None,
    at: datetime | None,
    body: Body,
) -> OperationResult:
    """Run one staff write (see the module docstring)."""
    key = check_key(idempotency_key)
    when = check_when(at)
    digest = fingerprint(kind, request)
    ids = tuple(sorted(set(account_ids)))

    def work(session: Session) -> OperationResult:
        staff = active_staff(session, actor)
        accounts = lock_accounts(session, ids)
        existing = session.scalar(select(Operation).where(Operation.idempotency_key == key))
        if existing is not None:
            if existing.fingerprint != digest:
                raise IdempotencyConflict(
                    "This submission key was already used for a different change; "
                    "nothing was applied. Open the dialog again to make a new change."
                )
            return OperationResult.from_json(existing.result, replayed=True)
        operation = Operation(
            idempotency_key=key,
            fingerprint=digest,
            kind=kind,
            actor_id=staff.id,
            account_id=ids[0] if len(ids) == 1 else None,
            reason=reason[:200],
            reference=reference,
            note=note,
            created_at=when,
            result="{}",
        )
        ctx = _open_context(session, staff, operation, accounts, when)
        outcome = _run_body(body, ctx)
        result = OperationResult(
            operation_id=operation.id,
            kind=kind,
            status=outcome.status,
            message=outcome.message,
            account_ids=ids,
            credits=outcome.credits,
            request_id=outcome.request_id,
            details=outcome.details,
        )
        operation.result = result.to_json()
        for account in accounts.values():
            account.change_seq += 1
        session.add(
            AuditEvent(
                at=when,
                actor_id=staff.id,
                action=kind,
                outcome=outcome.status,
                account_id=operation.account_id,
                operation_id=operation.id,
                detail=outcome.message[:2000],
            )
        )
        return result

    try:
        return db.write(work)
    except PermissionDenied as exc:
        audit_refusal(db, actor, kind, ids, exc.message, when)
        raise
    except CreditsDeskError:
        raise
    except IntegrityError as exc:
        log.exception("integrity error in %s", kind)
        raise RuleBroken(
            "The database refused this change because it conflicts with another one; "
            "nothing was applied. Refresh and try again."
        ) from exc
    except DBAPIError as exc:
        refusal = refusal_message(exc)
        if refusal is not None:
            # Busy or read-only: the database's state, not a fault, so no traceback.
            log.warning("the database refused %s: %s", kind, _first_line(exc))
            raise DatabaseUnavailable(refusal) from exc
        log.exception("database error in %s", kind)
        raise DatabaseUnavailable(
            "The database could not complete the change; nothing was applied. "
            "Check the connection and try again: the same submission applies only once."
        ) from exc


def _first_line(exc: DBAPIError) -> str:
    return (str(exc.orig).strip().splitlines() or [""])[0]


def audit_refusal(
    db: Database, actor: Actor | None, action: str, account_ids: tuple[int, ...], message: str,
    at: datetime,
) -> None:
    """Record a refused attempt (best effort: a failure here must not hide the refusal).

    ``actor`` is None for an attempt made before anyone signed in (adding the first admin).
    """

    def work(session: Session) -> None:
        exists = actor is not None and session.get(Staff, actor.staff_id) is not None
        account_id = account_ids[0] if len(account_ids) == 1 else None
        if account_id is not None and session.get(Account, account_id) is None:
            account_id = None
        session.add(
            AuditEvent(
                at=at,
                actor_id=actor.staff_id if actor is not None and exists else None,
                action=action,
                outcome="denied",
                account_id=account_id,
                detail=message[:2000],
            )
        )

    try:
        db.write(work)
    except Exception:
        log.exception("could not audit a refused %s", action)
