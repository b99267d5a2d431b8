"""Opening customer accounts and looking after staff members and sign-in."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from credits_desktop.domain.periods import validate_billing_day
from credits_desktop.domain.permissions import Action, Role, decide
from credits_desktop.store.database import Database
from credits_desktop.store.models import Account, AuditEvent, Plan, Staff
from credits_desktop.store.types import utcnow

from . import validation as v
from .errors import InvalidInput, NotFound, PermissionDenied, RuleBroken
from .operations import Actor, Outcome, WriteContext, active_staff, audit_refusal, perform
from .results import OperationResult

# The length of the indexed search columns (accounts.name_norm, email_norm).
NORM_MAX = 320


def normalise(text: str) -> str:
    """The form names and emails are searched by: case-folded, trimmed, and cut to the
    indexed column's length. Case folding can lengthen text ("ﬃ" becomes "ffi"), so a
    200-character name may fold to 600; stored and searched alike, the cut form still
    finds it by any prefix of up to 320 characters."""
    return text.strip().casefold()[:NORM_MAX]


def check_email(value: object) -> str:
    email = v.required_text(value, "email", "The email address", max_length=320)
    local, at, domain = email.rpartition("@")[0], "@" in email, email.rpartition("@")[2]
    if not at or not local or "." not in domain or any(c.isspace() for c in email):
        raise InvalidInput(f"'{email}' is not an email address.", "email")
    return email


def create_account(
    db: Database,
    actor: Actor,
    *,
    name: str,
    email: str,
    plan_code: str,
    billing_day: int,
    idempotency_key: str,
    created_at: datetime | None = None,
) -> OperationResult:
    """Open an account and grant its first period's plan credits."""
    clean_name = v.required_text(name, "name", "The account name", max_length=200)
    clean_email = check_email(email)
    if isinstance(billing_day, bool) or not isinstance(billing_day, int):
        raise InvalidInput("The billing day must be a day of the month.", "billing_day")
    try:
        validate_billing_day(billing_day)
    except ValueError as exc:
        raise InvalidInput(str(exc), "billing_day") from exc
    when = created_at or utcnow()

    def body(ctx: WriteContext) -> Outcome:
        if ctx.role is not Role.SYSTEM and not decide(ctx.role, Action.ADMINISTER).allowed:
            raise PermissionDenied("Opening accounts is for the platform or an admin.")
        plan = ctx.session.scalar(select(Plan).where(Plan.code == plan_code))
        if plan is None:
            raise NotFound(f"There is no plan '{plan_code}'.")
        account = Account(
            name=clean_name,
            owner_email=clean_email,
            name_norm=normalise(clean_name),
            email_norm=normalise(clean_email),
            plan_id=plan.id,
            billing_day=billing_day,
            status="active",
            created_at=when,
        )
        ctx.session.add(account)
        ctx.session.flush()
        ctx.accounts[account.id] = account
        ctx.operation.account_id = account.id
        ctx.book(account.id).touch(when)
        return Outcome(status="applied", message=f"Opened account #{account.id}.",
                       details={"account_id": account.id})

    return perform(
        db,
        actor,
        kind="create_account",
        idempotency_key=idempotency_key,
        request={"name": clean_name, "email": clean_email, "plan": plan_code,
                 "billing_day": billing_day},
        account_ids=[],
        reason="Account opened",
        reference=None,
        note=None,
        at=when,
        body=body,
    )


def create_staff(
    db: Database, actor: Actor | None, *, username: str, display_name: str, role: str
) -> Actor:
    """Add a staff member. Only an admin may, except for the very first staff member."""
    user = v.required_text(username, "username", "The username", max_length=63)
    if not all(c.isalnum() or c in "._-" for c in user):
        raise InvalidInput("A username has only letters, digits, '.', '_' and '-'.", "username")
    shown = v.required_text(display_name, "display_name", "The display name", max_length=100)
    chosen = v.choice(role, Role, "role", "The role")

    def work(session: Session) -> Actor:
        humans = session.scalar(select(func.count()).select_from(Staff).where(
            Staff.role != Role.SYSTEM.value)) or 0
        if actor is None:
            if humans:
                raise PermissionDenied("Only an admin can add staff members.")
        else:
            staff = active_staff(session, actor)
            if not decide(Role(staff.role), Action.ADMINISTER).allowed:
                raise PermissionDenied("Adding staff members needs the admin role.")
        if session.scalar(select(Staff.id).where(Staff.username == user)) is not None:
            raise RuleBroken(f"There is already a staff member '{user}'.")
        row = Staff(username=user, display_name=shown, role=chosen.value, active=True,
                    created_at=utcnow())
        session.add(row)
        session.flush()
        # The first admin signs their own creation: nobody else exists yet.
        session.add(AuditEvent(at=row.created_at,
                               actor_id=actor.staff_id if actor is not None else row.id,
                               action="create_staff", outcome="applied",
                               detail=f"Added {chosen.value} staff member '{user}'."))
        return Actor(row.id, row.username, row.display_name, Role(row.role))

    try:
        return db.write(work)
    except PermissionDenied as exc:
        audit_refusal(db, actor, "create_staff", (), exc.message, utcnow())
        raise


def set_staff_active(db: Database, actor: Actor, *, username: str, active: bool) -> None:
    if not isinstance(active, bool):
        raise InvalidInput("Say whether the staff member is active or not.", "active")

    def work(session: Session) -> None:
        staff = active_staff(session, actor)
        if not decide(Role(staff.role), Action.ADMINISTER).allowed:
            raise PermissionDenied("Changing staff members needs the admin role.")
        row = session.scalar(select(Staff).where(Staff.username == username))
        if row is None:
            raise NotFound(f"There is no staff member '{username}'.")
        if row.id == staff.id and not active:
            raise RuleBroken("You cannot deactivate yourself.")
        row.active = active
        verb = "Reactivated" if active else "Deactivated"
        session.add(AuditEvent(at=utcnow(), actor_id=staff.id, action="set_staff_active",
                               outcome="applied", detail=f"{verb} staff member '{username}'."))

    try:
        db.write(work)
    except PermissionDenied as exc:
        audit_refusal(db, actor, "set_staff_active", (), exc.message, utcnow())
        raise


def sign_in(db: Database, username: str) -> Actor:
    """The staff member called ``username``, if active (the SQLite sign-in).

    Every sign-in is audited, a refused one (deactivated staff) as denied.
    """

    def work(session: Session) -> Actor:
        row = session.scalar(select(Staff).where(Staff.username == username))
        if row is None:
            raise NotFound(f"There is no staff member '{username}'.")
        if not row.active:
            raise PermissionDenied(f"The staff account '{username}' is deactivated.")
        session.add(AuditEvent(at=utcnow(), actor_id=row.id, action="sign_in",
                               outcome="applied", detail=f"{row.display_name} signed in"))
        return Actor(row.id, row.username, row.display_name, Role(row.role))

    try:
        return db.write(work)
    except PermissionDenied as exc:
        refused = db.read(lambda s: s.scalar(select(Staff).where(Staff.username == username)))
        actor = (Actor(refused.id, refused.username, refused.display_name, Role(refused.role))
                 if refused is not None else None)
        audit_refusal(db, actor, "sign_in", (), exc.message, utcnow())
        raise


def database_login(db: Database) -> Actor:
    """On PostgreSQL the staff member is the database login (``session_user``)."""
    def work(session: Session) -> str:
        return str(session.scalar(select(func.session_user())))

    return sign_in(db, db.read(work))


def list_staff(db: Database, *, active_only: bool = True) -> list[Actor]:
    def work(session: Session) -> list[Actor]:
        stmt = select(Staff).where(Staff.role != Role.SYSTEM.value).order_by(Staff.display_name)
        if active_only:
            stmt = stmt.where(Staff.active.is_(True))
        return [Actor(s.id, s.username, s.display_name, Role(s.role))
                for s in session.scalars(stmt)]

    return db.read(work)
