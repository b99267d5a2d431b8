"""Recording a usage charge, as the ad platform does (the demo data and tests too).

A charge draws from the soonest-expiring credits first and is refused when the
account cannot afford it, so balances never go negative. The platform's own id
for the charge (``external_id``) is the idempotency key: sending the same
charge twice records it once. The charge is added to the usage rollup in the same
transaction (``services.rollups``).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from credits_desktop.domain.errors import RuleViolation
from credits_desktop.domain.grants import plan_charge
from credits_desktop.domain.permissions import Action, Role, decide
from credits_desktop.store.database import Database
from credits_desktop.store.models import Feature, FeaturePrice, UsageCharge

from . import rollups
from . import validation as v
from .book import AccountBook, lock_accounts
from .errors import IdempotencyConflict, InvalidInput, NotFound, PermissionDenied, RuleBroken
from .operations import Actor, active_staff, audit_refusal, system_actor_id
from .results import ChargeResult

STATUSES = ("succeeded", "failed")


def record_charge(
    db: Database,
    actor: Actor,
    *,
    account_id: int,
    feature_code: str,
    external_id: str,
    occurred_at: datetime,
    status: str = "succeeded",
    credits: int | None = None,
    model: str | None = None,
    failure_reason: str | None = None,
) -> ChargeResult:
    """Record one use of a feature; ``credits`` None means the feature's price."""
    if isinstance(account_id, bool) or not isinstance(account_id, int):
        raise InvalidInput("Choose an account.", "account_id")
    ext = v.required_text(external_id, "external_id", "The charge id", max_length=100)
    feature_code = v.required_text(feature_code, "feature_code", "The feature", max_length=40)
    if status not in STATUSES:
        raise InvalidInput("A charge either succeeded or failed.", "status")
    if credits is not None:
        credits = v.credits(credits, "credits", "The charge", minimum=0)
    model_name = v.text(model, "model", "The model", max_length=60, required=False)
    failure = v.text(failure_reason, "failure_reason", "The failure reason", max_length=500,
                     required=False)
    if failure and status != "failed":
        raise InvalidInput("Only a failed charge has a failure reason.", "failure_reason")
    if occurred_at.tzinfo is None:
        raise InvalidInput("Times must carry a time zone.", "occurred_at")

    def work(session: Session) -> ChargeResult:
        staff = active_staff(session, actor)
        decision = decide(Role(staff.role), Action.RECORD_USAGE)
        if not decision.allowed:
            raise PermissionDenied(decision.reason)
        account = lock_accounts(session, [account_id])[account_id]
        existing = session.scalar(select(UsageCharge).where(UsageCharge.external_id == ext))
        if existing is not None:
            return _replay(session, existing, account_id, feature_code, credits, status,
                           model_name, occurred_at)
        if account.status != "active":
            raise RuleBroken(f"Account #{account_id} is {account.status}; it cannot be charged.")
        feature = session.get(Feature, feature_code)
        if feature is None:
            raise NotFound(f"There is no AI feature '{feature_code}'.")
        if not feature.enabled:
            raise RuleBroken(f"{feature.name} is not available yet.")
        cost = credits if credits is not None else price_of(
            session, feature_code, model_name, occurred_at
        )
        book = AccountBook(session, account, actor_id=staff.id, operation_id=None,
                           reason=f"Usage: {feature.name}", reference=ext)
        book.roll_to(occurred_at, system_actor_id(session))
        try:
            draws = plan_charge(book.views(), cost, occurred_at)
        except RuleViolation as exc:
            raise RuleBroken(exc.message) from exc
        charge = UsageCharge(
            external_id=ext,
            account_id=account_id,
            feature_code=feature_code,
            model=model_name,
            credits=cost,
            status=status,
            failure_reason=failure,
            occurred_at=occurred_at,
        )
        session.add(charge)
        session.flush()
        book.draw(draws, "charge", occurred_at, charge_id=charge.id)
        if status == "failed" and cost > 0:
            account.unrefunded_failed += 1
        book.touch(occurred_at)
        rollups.add_charge(session, charge, rollups.plan_code_of(session, account))
        return ChargeResult(
            charge_id=charge.id,
            account_id=account_id,
            credits=cost,
            draws=tuple((d.grant_id, d.credits) for d in draws),
        )

    try:
        return db.write(work)
    except PermissionDenied as exc:
        audit_refusal(db, actor, "record_charge", (account_id,), exc.message, occurred_at)
        raise


def _replay(
    session: Session, existing: UsageCharge, account_id: int, feature_code: str,
    credits: int | None, status: str, model: str | None, occurred_at: datetime,
) -> ChargeResult:
    # Every fact of the charge must match: a resend is the same use, not a new one.
    same = (
        existing.account_id == account_id
        and existing.feature_code == feature_code
        and (credits is None or credits == existing.credits)
        and existing.status == status
        and existing.model == model
        and existing.occurred_at == occurred_at
    )
    if not same:
        raise IdempotencyConflict(
            f"Charge id '{existing.external_id}' was already recorded for a different use."
        )
    return ChargeResult(
        charge_id=existing.id,
        account_id=existing.account_id,
        credits=existing.credits,
        draws=(),
        replayed=True,
    )


def price_of(session: Session, feature_code: str, model: str | None, at: datetime) -> int:
    """The feature's price at ``at``: the model's own price if it has one, else the default."""
    stmt = (
        select(FeaturePrice.credits)
        .where(
            FeaturePrice.feature_code == feature_code,
            FeaturePrice.valid_from <= at,
            or_(FeaturePrice.model == model, FeaturePrice.model.is_(None)),
        )
        # A model's own price wins over the default; the newest price wins.
        .order_by(FeaturePrice.model.is_(None), FeaturePrice.valid_from.desc())
        .limit(1)
    )
    price = session.scalar(stmt)
    if price is None:
        raise RuleBroken(f"'{feature_code}' has no price at {at:%d %b %Y}.")
    return price
