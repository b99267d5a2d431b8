"""The credit book of one locked account, inside one write transaction.

Every write service locks the accounts it touches (in id order, so two staff
members never deadlock), then moves credits only through :class:`AccountBook`.
The book writes a ledger entry for every change to a grant and keeps the grant's
``remaining`` and the account's cached balances equal to the ledger's sums.
The decisions (what to draw, where a refund goes, when a period ends) come from
``domain``; the book only carries them out.

A write of many accounts (an incident refund) opens their books with
:func:`open_books`: one query for all their live grants and one for their plans, rather
than two per account. A grant the book creates is inserted empty (PostgreSQL's rules
want a new grant to start empty, its ledger entry fills it), so it needs its id before
its entry: :meth:`AccountBook.open_grant` adds it without a flush, so that a caller
creating many grants flushes once for all of them, then fills each with
:meth:`AccountBook.fill_grant`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert, or_, select
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


def live_grants(session: Session, account_ids: Iterable[int],
                also: Iterable[int] = ()) -> dict[int, list[CreditGrant]]:
    """The grants that still hold credits of several accounts, in one query, by account
    (each in id order): what :meth:`AccountBook.grants` reads for one. ``also``: ids of
    grants of these accounts wanted even if empty (those :meth:`AccountBook.grant` would
    look up one by one)."""
    ids = sorted(set(account_ids))
    found: dict[int, list[CreditGrant]] = {i: [] for i in ids}
    extra = sorted(set(also))
    if ids:
        held = CreditGrant.remaining > 0
        rows = session.scalars(
            select(CreditGrant)
            .where(CreditGrant.account_id.in_(ids),
                   or_(held, CreditGrant.id.in_(extra)) if extra else held)
            .order_by(CreditGrant.account_id, CreditGrant.id)
        )
        for grant in rows:
            found[grant.account_id].append(grant)
    return found


def open_books(
    session: Session,
    accounts: Sequence[Account],
    *,
    actor_id: int,
    operation_id: int | None,
    reason: str,
    reference: str | None,
    roll_until: datetime,
    system_actor_id: int,
    also_grants: Iterable[int] = (),
) -> dict[int, AccountBook]:
    """The books of several locked accounts, each rolled forward to ``roll_until``:
    :class:`AccountBook` and :meth:`AccountBook.roll_to` per account, with their live
    grants (and ``also_grants``: see :func:`live_grants`) and plans read in two queries
    for all of them."""
    if not accounts:
        return {}
    grants = live_grants(session, (a.id for a in accounts), also_grants)
    plans = {p.id: p for p in session.scalars(
        select(Plan).where(Plan.id.in_(sorted({a.plan_id for a in accounts}))))}
    books: dict[int, AccountBook] = {}
    for account in sorted(accounts, key=lambda a: a.id):
        book = AccountBook(session, account, actor_id=actor_id, operation_id=operation_id,
                           reason=reason, reference=reference)
        book.preload(grants[account.id], plans[account.plan_id])
        books[account.id] = book
    roll_books(list(books.values()), roll_until, system_actor_id)
    return books


def roll_books(books: Sequence[AccountBook], until: datetime,
               system_actor_id: int) -> list[tuple[int, int]]:
    """:meth:`AccountBook.roll_to` for several books at once: (grants created, credits
    expired) of each.

    Each account moves on a period at a time, as it would alone, but the accounts move
    together: the plan grants of one step go in with one flush for all of them (each
    must be inserted empty, with its account already in its period, before its ledger
    entry can name it).
    """
    if not books:
        return []
    session = books[0].session
    created = {id(book): 0 for book in books}
    expired = {id(book): 0 for book in books}
    # The ledger rows, in the order written, go in as one statement at the end.
    entries: list[dict[str, Any]] = []

    def open_periods(moves: list[tuple[AccountBook, Period]]) -> None:
        opened = [(book, period, grant) for book, period in moves
                  if (grant := book._open_period(period)) is not None]
        if opened:
            session.flush()
        for book, period, grant in opened:
            book.fill_grant(grant, period.start, kind="plan_grant",
                            reason=f"Plan credits for the period from {period.start:%d %b %Y}",
                            system_actor_id=system_actor_id, into=entries)
            created[id(book)] += 1

    open_periods([(book, period_containing(book.account.billing_day, book.account.created_at))
                  for book in books if _period_of(book.account) is None])
    while True:
        moves: list[tuple[AccountBook, Period]] = []
        for book in books:
            current = _period_of(book.account)
            if current is not None and current.end <= until:
                expired[id(book)] += book._expire(current.end, system_actor_id, into=entries)
                moves.append((book, next_period(book.account.billing_day, current)))
        if not moves:
            break
        open_periods(moves)
    for book in books:
        expired[id(book)] += book._expire(until, system_actor_id, into=entries)
    if entries:
        # Without flushing what the entries changed (grants, balances): that goes with
        # the transaction's next flush.
        with session.no_autoflush:
            session.execute(insert(LedgerEntry), entries)
    return [(created[id(book)], expired[id(book)]) for book in books]


def _period_of(account: Account) -> Period | None:
    if account.period_start is None or account.period_end is None:
        return None
    return Period(account.period_start, account.period_end)


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
        self._plan: Plan | None = None

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

    def preload(self, grants: Iterable[CreditGrant], plan: Plan) -> None:
        """Take the account's grants that still hold credits (and maybe some that do not,
        as :meth:`grant` adds them) and its plan, read by the caller with those of other
        accounts (:func:`open_books`), instead of reading them."""
        assert self._grants is None, "the book has read its grants already"
        assert plan.id == self.account.plan_id
        self._grants = {g.id: g for g in sorted(grants, key=lambda g: g.id)}
        self._plan = plan

    def plan(self) -> Plan:
        """The account's plan, read once per book (and only within its transaction:
        a plan may change between two writes)."""
        if self._plan is None:
            plan = self.session.get(Plan, self.account.plan_id)
            assert plan is not None, "every account has a plan (foreign key)"
            self._plan = plan
        return self._plan

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
        into: list[dict[str, Any]] | None = None,
    ) -> None:
        """Move ``delta`` credits on ``grant`` and record it in the ledger.

        With ``system_actor_id`` the entry is the system's own (a period roll that
        this operation happened to trigger), not part of the staff member's action.
        With ``into`` the entry's row is appended there for the caller to insert (many
        at once, see :meth:`place`) instead of being added to the session.
        """
        grant.remaining += delta
        self._move_cache(grant.source, delta)
        system = system_actor_id is not None
        row: dict[str, Any] = {
            "account_id": self.account.id,
            "grant_id": grant.id,
            "kind": kind,
            "delta": delta,
            "charge_id": charge_id,
            "operation_id": None if system else self.operation_id,
            "actor_id": system_actor_id if system_actor_id is not None else self.actor_id,
            "reason": (reason or self.reason)[:200],
            "reference": None if system else self.reference,
            "created_at": at,
        }
        if into is None:
            self.session.add(LedgerEntry(**row))
        else:
            into.append(row)

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
        """Add a grant holding ``credits``, with its ledger entry (flushes once to get
        the grant's id)."""
        grant = self.open_grant(source, credits, at, expires_at=expires_at,
                                period_start=period_start, package_id=package_id,
                                system=system_actor_id is not None)
        self.session.flush()
        self.fill_grant(grant, at, kind=kind, reason=reason, system_actor_id=system_actor_id,
                        charge_id=charge_id)
        return grant

    def open_grant(
        self,
        source: GrantSource,
        credits: int,
        at: datetime,
        *,
        expires_at: datetime | None = None,
        period_start: datetime | None = None,
        package_id: int | None = None,
        system: bool = False,
    ) -> CreditGrant:
        """Add a grant of ``credits``, still empty, to the session without flushing; it
        gets its id at the next flush, after which :meth:`fill_grant` fills it."""
        grant = CreditGrant(
            account_id=self.account.id,
            source=source.value,
            granted=credits,
            remaining=0,
            created_at=at,
            expires_at=expires_at,
            period_start=period_start,
            package_id=package_id,
            operation_id=None if system else self.operation_id,
        )
        self.session.add(grant)
        return grant

    def fill_grant(
        self,
        grant: CreditGrant,
        at: datetime,
        *,
        kind: str,
        reason: str | None = None,
        system_actor_id: int | None = None,
        charge_id: int | None = None,
        into: list[dict[str, Any]] | None = None,
    ) -> None:
        """Give a grant made by :meth:`open_grant`, flushed since, its credits with
        their ledger entry (``into``: see :meth:`_entry`)."""
        assert grant.id is not None, "flush the session after open_grant"
        assert grant.remaining == 0, "a grant is filled once"
        self.grants()[grant.id] = grant
        if grant.granted:
            self._entry(
                grant,
                kind,
                grant.granted,
                at,
                reason=reason,
                system_actor_id=system_actor_id,
                charge_id=charge_id,
                into=into,
            )

    def draw(self, draws: Sequence[Draw], kind: str, at: datetime, *, charge_id: int | None = None,
             reason: str | None = None) -> None:
        for d in draws:
            self._entry(self.grant(d.grant_id), kind, -d.credits, at, charge_id=charge_id,
                        reason=reason)

    def place(self, placements: Sequence[Placement], kind: str, at: datetime, *,
              charge_id: int | None = None, refund_grant: CreditGrant | None = None,
              into: list[dict[str, Any]] | None = None) -> None:
        """Give credits back: to live grants, or as one new non-expiring refund grant:
        ``refund_grant`` when the caller opened it (:meth:`open_grant`, then flushed),
        else one made here. With ``into``, the ledger rows are appended there for the
        caller to insert (see :meth:`_entry`)."""
        for p in placements:
            if p.grant_id is None:
                if refund_grant is None:
                    assert into is None, "a grant made here writes its entry itself"
                    self.new_grant(GrantSource.REFUND, p.credits, at, kind=kind,
                                   charge_id=charge_id)
                else:
                    assert refund_grant.granted == p.credits
                    self.fill_grant(refund_grant, at, kind=kind, charge_id=charge_id,
                                    into=into)
            else:
                self._entry(self.grant(p.grant_id), kind, p.credits, at, charge_id=charge_id,
                            into=into)

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
        return roll_books([self], until, system_actor_id)[0]

    def _open_period(self, period: Period) -> CreditGrant | None:
        """Move the account to ``period`` and open its plan grant (not flushed yet: see
        :meth:`open_grant`); None when the plan grants nothing."""
        self.account.period_start = period.start
        self.account.period_end = period.end
        allotment = self.plan().monthly_allotment
        if allotment <= 0:
            return None
        return self.open_grant(GrantSource.PLAN, allotment, period.start,
                               expires_at=period.end, period_start=period.start, system=True)

    def _expire(self, at: datetime, actor_id: int, *,
                into: list[dict[str, Any]] | None = None) -> int:
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
                    into=into,
                )
                total += amount
        return total
