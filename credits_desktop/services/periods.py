"""Rolling billing periods forward for every account (the scheduler's job).

Each account is rolled in a short transaction of its own under its row lock, so
the job can run while staff work, be interrupted, and run again or concurrently
with another copy: a period's plan grant is unique per account, and rolling an
account that is already current does nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from credits_desktop.domain.permissions import Action, Role, decide
from credits_desktop.store.database import Database
from credits_desktop.store.models import Account, AuditEvent
from credits_desktop.store.types import utcnow

from .book import AccountBook, lock_accounts
from .errors import InvalidInput, PermissionDenied
from .operations import Actor, active_staff, audit_refusal, system_actor_id
from .results import RollResult

BATCH = 200


def roll_detail(accounts: int, until: datetime) -> str:
    """The audit log's words for a roll up to ``until``: "Rolled 12 accounts to
    2026-11-25" (a UTC day; with the time, to the minute, when it is not midnight)."""
    moment = until.astimezone(UTC)
    when = f"{moment:%Y-%m-%d}" if moment.time() == datetime.min.time() \
        else f"{moment:%Y-%m-%d %H:%M} UTC"
    return f"Rolled {accounts} {'account' if accounts == 1 else 'accounts'} to {when}"


def roll_periods(
    db: Database, actor: Actor, *, until: datetime | None = None, batch_size: int = BATCH
) -> RollResult:
    """Expire ended plan grants and grant new periods for all accounts up to ``until``."""
    when = until or utcnow()
    if when.tzinfo is None:
        raise InvalidInput("Times must carry a time zone.", "until")

    def check(session: Session) -> None:
        staff = active_staff(session, actor)
        decision = decide(Role(staff.role), Action.ROLL_PERIODS)
        if not decision.allowed:
            raise PermissionDenied(decision.reason)

    try:
        db.read(check)
    except PermissionDenied as exc:
        audit_refusal(db, actor, "roll_periods", (), exc.message, utcnow())
        raise
    accounts = grants = expired = 0
    after = 0
    while True:
        ids = db.read(partial(_due, when=when, after=after, limit=batch_size))
        if not ids:
            break
        after = ids[-1]
        done = db.write(partial(_roll_batch, ids=ids, when=when))
        accounts += done[0]
        grants += done[1]
        expired += done[2]

    def audit(session: Session) -> None:
        session.add(AuditEvent(at=utcnow(), actor_id=actor.staff_id, action="roll_periods",
                               outcome="applied",
                               detail=roll_detail(accounts, when)))

    db.write(audit)
    return RollResult(accounts_rolled=accounts, grants_created=grants, credits_expired=expired)


def _due(session: Session, when: datetime, after: int, limit: int) -> list[int]:
    stmt = (
        select(Account.id)
        .where(
            Account.id > after,
            or_(Account.period_end.is_(None), Account.period_end <= when),
        )
        .order_by(Account.id)
        .limit(limit)
    )
    return list(session.scalars(stmt))


def _roll_batch(session: Session, ids: list[int], when: datetime) -> tuple[int, int, int]:
    system = system_actor_id(session)
    rolled = created = expired = 0
    for account in lock_accounts(session, ids).values():
        book = AccountBook(session, account, actor_id=system, operation_id=None,
                           reason="Billing period roll-over", reference=None)
        c, e = book.roll_to(when, system)
        if c or e:
            rolled += 1
            account.change_seq += 1
        created += c
        expired += e
    return rolled, created, expired
