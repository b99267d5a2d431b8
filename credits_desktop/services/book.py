"""The credit book of one locked account, inside one write transaction.

Every write service locks the accounts it touches (in id order, so two staff
members never deadlock), then moves credits only through :class:`AccountBook`.
The book writes a ledger entry for every change to a grant and keeps the grant's
``remaining`` and the account's cached balances equal to the ledger's sums.
The decisions (what to draw, where a refund goes, when a period ends) come from
``domain``; the book only carries them out.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from credits_desktop.domain.grants import (
    PURCHASED_SOURCES,
    Draw,
    GrantSource,
    GrantView,
    Placement,
)
from credits_desktop.domain.periods import Period, next_period, period_containing
from credits_desktop.store.models import Account, CreditGrant, LedgerEntry, Plan

from .errors import NotFound

SYSTEM_USERNAME = "system"
MAX_ACCOUNT_ID = 2**31 - 1


def lock_accounts(session: Session, account_ids: Iterable[int]) -> dict[int, Account]:
    """Load and lock accounts in ascending id order (FOR UPDATE on PostgreSQL).

    SQLite needs no row lock: BEGIN IMMEDIATE already gave us the database.
    """
    ids = sorted(set(account_ids))
    if not ids:
        return {}
    # Account ids are INTEGER: PostgreSQL refuses to even compare a larger number
    # with them ("integer out of range"), and no such account can exist anyway.
    impossible = [i for i in ids if not 0 < i <= MAX_ACCOUNT_ID]
    if impossible:
        raise NotFound(f"There is no account with id {impossible[0]}.")
    stmt = select(Account).where(Account.id.in_(ids)).order_by(Account.id)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    accounts = {a.id: a for a in session.scalars(stmt)}
    missing = [i for i in ids if i not in accounts]
    if missing:
        raise NotFound(f"There is no account with id {missing[0]}.")
    return accounts


def grant_view(grant: CreditGrant) -> GrantView:
    return GrantView(
        id=grant.id,
        source=GrantSource(grant.source),
        remaining=grant.remaining,
        expires_at=grant.expires_at,
        created_at=grant.created_at,
    )


class AccountBook:
    """Moves credits on one account that the caller has locked."""

    def __init__(
        self,
        session: Session,
        account: Account,
        *,
        actor_id: int,
        operation_id: int | None,
        reason: str,
        reference: str | None,
    ) -> None:
        self.session = session
        self.account = account
        self.actor_id = actor_id
        self.operation_id = operation_id
        self.reason = reason
        self.reference = reference
        self._grants: dict[int, CreditGrant] | None = None

    # -- reading ---------------------------------------------------------------

    def grants(self) -> dict[int, CreditGrant]:
        """All grants of the account that still hold credits, by id."""
        if self._grants is None:
            rows = self.session.scalars(
                select(CreditGrant)
                .where(CreditGrant.account_id == self.account.id, CreditGrant.remaining > 0)
                .order_by(CreditGrant.id)
            )
            self._grants = {g.id: g for g in rows}
        return self._grants

    def grant(self, grant_id: int) -> CreditGrant:
        grants = self.grants()
        if grant_id not in grants:
            found = self.session.get(CreditGrant, grant_id)
            if found is None or found.account_id != self.account.id:
                raise NotFound(f"Grant {grant_id} does not belong to this account.")
            grants[grant_id] = found
        return grants[grant_id]

    def views(self) -> list[GrantView]:
        return [grant_view(g) for g in self.grants().values()]

    # -- writing ---------------------------------------------------------------

    def _entry(
        self,
        grant: CreditGrant,
        kind: str,
        delta: int,
        at: datetime,
        *,
        charge_id: int | None = None,
        reason: str | None = None,
        system_actor_id: int | None = None,
    ) -> None:
        """Move ``delta`` credits on ``grant`` and record it in the ledger.

        With ``system_actor_id`` the entry is the system's own (a period roll that
        this operation happened to trigger), not part of the staff member's action.
        """
        grant.remaining += delta
        self._move_cache(grant.source, delta)
        system = system_actor_id is not None
        self.session.add(
            LedgerEntry(
                account_id=self.account.id,
                grant_id=grant.id,
                kind=kind,
                delta=delta,
                charge_id=charge_id,
                operation_id=None if system else self.operation_id,
                actor_id=system_actor_id if system_actor_id is not None else self.actor_id,
                reason=(reason or self.reason)[:200],
                reference=None if system else self.reference,
                created_at=at,
            )
        )

    def _move_cache(self, source: str, delta: int) -> None:
        if source == GrantSource.PLAN:
            self.account.plan_balance += delta
        elif source == GrantSource.REFUND:
            self.account.refund_balance += delta
        else:
            self.account.purchased_balance += delta

    def new_grant(
        self,
        source: GrantSource,
        credits: int,
        at: datetime,
        *,
        kind: str,
        expires_at: datetime | None = None,
        period_start: datetime | None = None,
        package_id: int | None = None,
        reason: str | None = None,
        system_actor_id: int | None = None,
        charge_id: int | None = None,
    ) -> CreditGrant:
        grant = CreditGrant(
            account_id=self.account.id,
            source=source.value,
            granted=credits,
            remaining=0,
            created_at=at,
            expires_at=expires_at,
            period_start=period_start,
            package_id=package_id,
            operation_id=None if system_actor_id is not None else self.operation_id,
        )
        self.session.add(grant)
        self.session.flush()
        self.grants()[grant.id] = grant
        if credits:
            self._entry(
                grant,
                kind,
                credits,
                at,
                reason=reason,
                system_actor_id=system_actor_id,
                charge_id=charge_id,
            )
        return grant

    def draw(self, draws: Sequence[Draw], kind: str, at: datetime, *, charge_id: int | None = None,
             reason: str | None = None) -> None:
        for d in draws:
            self._entry(self.grant(d.grant_id), kind, -d.credits, at, charge_id=charge_id,
                        reason=reason)

    def place(self, placements: Sequence[Placement], kind: str, at: datetime, *,
              charge_id: int | None = None) -> None:
        """Give credits back: to live grants, or as one new non-expiring refund grant."""
        for p in placements:
            if p.grant_id is None:
                self.new_grant(GrantSource.REFUND, p.credits, at, kind=kind, charge_id=charge_id)
            else:
                self._entry(self.grant(p.grant_id), kind, p.credits, at, charge_id=charge_id)

    def add_purchased(self, source: GrantSource, credits: int, at: datetime, *, kind: str,
                      package_id: int | None = None) -> CreditGrant:
        assert source in PURCHASED_SOURCES
        return self.new_grant(source, credits, at, kind=kind, package_id=package_id)

    def touch(self, at: datetime) -> None:
        self.account.change_seq += 1
        if self.account.last_activity_at is None or at > self.account.last_activity_at:
            self.account.last_activity_at = at

    # -- billing periods -------------------------------------------------------

    def roll_to(self, until: datetime, system_actor_id: int) -> tuple[int, int]:
        """Expire ended plan grants and grant every period that has begun by ``until``.

        Returns (grants created, credits expired). Idempotent: a second call with
        the same time does nothing. These entries are the system's, not the
        staff member's whose action happened to trigger them.
        """
        account = self.account
        allotment = self.session.scalar(
            select(Plan.monthly_allotment).where(Plan.id == account.plan_id)
        )
        assert allotment is not None
        created = expired = 0
        if account.period_start is None or account.period_end is None:
            first = period_containing(account.billing_day, account.created_at)
            created += self._open_period(first, allotment, system_actor_id)
        assert account.period_start is not None and account.period_end is not None
        current = Period(account.period_start, account.period_end)
        while current.end <= until:
            expired += self._expire(current.end, system_actor_id)
            current = next_period(account.billing_day, current)
            created += self._open_period(current, allotment, system_actor_id)
        expired += self._expire(until, system_actor_id)
        return created, expired

    def _open_period(self, period: Period, allotment: int, actor_id: int) -> int:
        self.account.period_start = period.start
        self.account.period_end = period.end
        if allotment <= 0:
            return 0
        self.new_grant(
            GrantSource.PLAN,
            allotment,
            period.start,
            kind="plan_grant",
            expires_at=period.end,
            period_start=period.start,
            reason=f"Plan credits for the period from {period.start:%d %b %Y}",
            system_actor_id=actor_id,
        )
        return 1

    def _expire(self, at: datetime, actor_id: int) -> int:
        total = 0
        for grant in list(self.grants().values()):
            if grant.expires_at is not None and grant.expires_at <= at and grant.remaining > 0:
                amount = grant.remaining
                self._entry(
                    grant,
                    "plan_expiry",
                    -amount,
                    grant.expires_at,
                    reason="Unused plan credits expired at the end of the billing period",
                    system_actor_id=actor_id,
                )
                total += amount
        return total
