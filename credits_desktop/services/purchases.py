"""Buying a credit package (the platform's checkout): purchased credits never expire."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from credits_desktop.domain.grants import GrantSource
from credits_desktop.domain.permissions import Action, decide
from credits_desktop.store.database import Database
from credits_desktop.store.models import CreditPackage

from . import validation as v
from .errors import InvalidInput, NotFound, PermissionDenied, RuleBroken
from .operations import Actor, Outcome, WriteContext, perform
from .results import OperationResult


def buy_package(
    db: Database,
    actor: Actor,
    *,
    account_id: int,
    package_code: str,
    payment_reference: str,
    idempotency_key: str,
    at: datetime | None = None,
) -> OperationResult:
    if isinstance(account_id, bool) or not isinstance(account_id, int):
        raise InvalidInput("Choose an account.", "account_id")
    code = v.required_text(package_code, "package_code", "The package", max_length=40)
    ref = v.required_text(payment_reference, "payment_reference", "The payment reference",
                          max_length=v.TICKET_MAX)

    def body(ctx: WriteContext) -> Outcome:
        decision = decide(ctx.role, Action.BUY_PACKAGE)
        if not decision.allowed:
            raise PermissionDenied(decision.reason)
        package = ctx.session.scalar(select(CreditPackage).where(CreditPackage.code == code))
        if package is None:
            raise NotFound(f"There is no credit package '{code}'.")
        if not package.active:
            raise RuleBroken(f"The package '{package.name}' is no longer sold.")
        book = ctx.book(account_id)
        book.add_purchased(GrantSource.PURCHASE, package.credits, ctx.at, kind="purchase",
                           package_id=package.id)
        book.touch(ctx.at)
        return Outcome(status="applied", message=f"Bought {package.name}.",
                       credits=package.credits)

    return perform(
        db,
        actor,
        kind="purchase",
        idempotency_key=idempotency_key,
        request={"account_id": account_id, "package_code": code, "reference": ref},
        account_ids=[account_id],
        reason=f"Package purchase: {code}",
        reference=ref,
        note=None,
        at=at,
        body=body,
    )
