"""The read side: account search, an account's summary, grants, charges and ledger,
usage totals for charts, and the unrefunded failures queue.

Every function runs in one read transaction (``Database.read``) and returns small
frozen dataclasses, never ORM objects, so the results can cross threads to the
screens. Long lists are paged by keyset (see ``paging``), never by OFFSET.

Balances in lists come from the cached columns on ``accounts`` (the roll job,
``services.periods.roll_periods``, keeps them current as billing periods end); the
one correction made on the fly is that plan credits of a period that has already
ended count as 0, because they expired even if the roll has not yet written that
down. ``account_summary`` instead computes the balances from the account's live
grants, exact at the time asked.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    SQLColumnExpression,
    and_,
    case,
    exists,
    false,
    func,
    literal,
    literal_column,
    or_,
    select,
)
from sqlalchemy.orm import Session

from credits_desktop.domain.grants import GrantSource, GrantView, balance, is_live
from credits_desktop.domain.periods import Period, period_containing, periods_from
from credits_desktop.store.database import Database
from credits_desktop.store.models import (
    Account,
    CreditGrant,
    Feature,
    LedgerEntry,
    Plan,
    Refund,
    Staff,
    UsageCharge,
)
from credits_desktop.store.types import UTCDateTime, utcnow

from .accounts import normalise
from .errors import InvalidInput, NotFound
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
from .validation import to_utc

__all__ = [
    "AccountQuery",
    "AccountRow",
    "AccountSort",
    "AccountSummary",
    "ChargeRow",
    "Cursor",
    "FailedChargeRow",
    "GrantRow",
    "LedgerRow",
    "Page",
    "UsageBucket",
    "account_grants",
    "account_summary",
    "charges_page",
    "count_accounts",
    "id_prefix_ranges",
    "ledger_page",
    "prefix_upper_bound",
    "search_accounts",
    "unrefunded_failures",
    "usage_totals",
]

ACCOUNT_STATUSES = ("active", "suspended", "closed")
CHARGE_STATUSES = ("succeeded", "failed")
GRANULARITIES = ("day", "week", "month")

# Stand-ins for NULL times in sort keys, so that a NULL sorts like any other value and
# the keyset comparison (which is never true for NULL) still pages past it. An account
# with no period sorts after every real reset; one never active before every real
# activity. Years far from the edges: a driver converting to a local zone must not
# overflow, and a real time equal to one would still page correctly (ties go by id).
NO_RESET = datetime(9000, 1, 1, tzinfo=UTC)
NO_ACTIVITY = datetime(1900, 1, 1, tzinfo=UTC)

# Written into the SQL as a constant, not bound: the partial index on failed charges
# is only usable when the planner sees the literal its WHERE clause names.
FAILED: ColumnElement[str] = literal_column("'failed'")


# -- account search -----------------------------------------------------------------


class AccountSort(StrEnum):
    """The columns the account list can be sorted by (ties always go by id)."""

    ID = "id"
    NAME = "name"
    EMAIL = "email"
    PLAN = "plan"
    PLAN_LEFT = "plan_left"
    PURCHASED = "purchased"
    TOTAL = "total"
    NEXT_RESET = "next_reset"
    LAST_ACTIVITY = "last_activity"


@dataclass(frozen=True)
class AccountQuery:
    """What to list: ``text`` is a prefix of the email, the name or the id."""

    text: str = ""
    plan_code: str | None = None
    status: str | None = None
    low_balance_below: int | None = None
    unrefunded_failed_only: bool = False
    sort: AccountSort = AccountSort.NAME
    descending: bool = False


@dataclass(frozen=True)
class AccountRow:
    """One line of the account list; balances as shown at the query's time."""

    id: int
    name: str
    email: str
    plan_code: str
    plan_name: str
    status: str
    plan_left: int
    allotment: int
    purchased: int
    refund: int
    total: int
    next_reset: datetime | None
    last_activity: datetime | None
    unrefunded_failed: int


def search_accounts(
    db: Database,
    query: AccountQuery,
    *,
    after: Cursor | None = None,
    limit: int = 200,
    at: datetime | None = None,
) -> Page[AccountRow]:
    """One page of the accounts matching ``query``, in its sort order.

    A listing is a snapshot at one time: the cursor remembers the time of the first
    page and later pages use it, so plan credits expiring at midnight between two pages
    cannot move an account from one page to another. Giving ``at`` together with a
    cursor of another time is refused.
    """
    q = _checked_query(query)
    size = check_limit(limit)
    tag = f"accounts:{q.sort.value}:{'desc' if q.descending else 'asc'}"
    key_count = 1 if q.sort is AccountSort.ID else 2
    position = open_cursor(after, tag, key_count + 1)
    if position is None:
        when = _when(at)
    else:
        when = position[0]
        if not isinstance(when, datetime):
            raise InvalidInput("That list position is damaged; start again from the first page.",
                               "after")
        if at is not None and _when(at) != when:
            raise InvalidInput(
                "A later page is shown as of the time of the first page; "
                "start again from the first page to see another time.",
                "at",
            )

    def work(session: Session) -> Page[AccountRow]:
        plan_left = _plan_left(when)
        total = _total(plan_left)
        keys = _sort_keys(q.sort, plan_left, total)
        stmt = (
            select(
                Account.id,
                Account.name,
                Account.owner_email,
                Plan.code,
                Plan.name,
                Account.status,
                plan_left,
                Plan.monthly_allotment,
                Account.purchased_balance,
                Account.refund_balance,
                total,
                Account.period_end,
                Account.last_activity_at,
                Account.unrefunded_failed,
                *keys,
            )
            .join(Plan, Plan.id == Account.plan_id)
            .where(*_account_filters(session, q, when, with_text=False))
            .order_by(*keyset_order(keys, descending=q.descending))
            .limit(size + 1)
        )
        if position is not None:
            stmt = stmt.where(keyset_after(keys, position[1:], descending=q.descending))
        branches = _text_branches(session, q.text)
        fetched: Sequence[Any]
        if len(branches) > 1 and q.sort is not AccountSort.PLAN:
            fetched = _merged_branches(session, stmt, branches, size + 1, q.descending)
        else:
            fetched = session.execute(stmt.where(or_(*branches)) if branches else stmt).all()
        # The sort keys follow the row's 14 columns; they make the cursor.
        pairs = [(_account_row(r), tuple(r[14:])) for r in fetched]
        shown, cursor = split_page(pairs, size, lambda p: make_cursor(tag, when, *p[1]))
        return Page(tuple(row for row, _ in shown), cursor)

    return db.read(work)


def count_accounts(
    db: Database, query: AccountQuery, *, cap: int = 100_000, at: datetime | None = None
) -> int:
    """How many accounts match ``query``: exact up to ``cap``, and ``cap`` beyond.

    Counting stops at ``cap`` so that a broad search on a large database stays quick; a
    screen shows "100,000+" then. ``at`` matters only to ``low_balance_below``.
    """
    q = _checked_query(query)
    if isinstance(cap, bool) or not isinstance(cap, int) or cap < 1:
        raise InvalidInput("The count limit must be a whole number above zero.", "cap")
    when = _when(at)

    def work(session: Session) -> int:
        matching = (
            select(Account.id)
            .join(Plan, Plan.id == Account.plan_id)
            .where(*_account_filters(session, q, when))
            .limit(cap)
            .subquery()
        )
        return int(session.scalar(select(func.count()).select_from(matching)) or 0)

    return db.read(work)


def _checked_query(query: object) -> AccountQuery:
    if not isinstance(query, AccountQuery):
        raise InvalidInput("The search is not valid.", "query")
    if not isinstance(query.text, str):
        raise InvalidInput("The search text must be text.", "text")
    try:
        sort = AccountSort(query.sort)
    except ValueError:
        options = ", ".join(s.value for s in AccountSort)
        raise InvalidInput(f"Sort by one of: {options}.", "sort") from None
    if query.status is not None and query.status not in ACCOUNT_STATUSES:
        raise InvalidInput(
            f"An account status is one of: {', '.join(ACCOUNT_STATUSES)}.", "status"
        )
    if query.plan_code is not None and not isinstance(query.plan_code, str):
        raise InvalidInput("Choose a plan by its code.", "plan_code")
    low = query.low_balance_below
    if low is not None and (isinstance(low, bool) or not isinstance(low, int)):
        raise InvalidInput("The low balance limit must be a whole number of credits.",
                           "low_balance_below")
    return AccountQuery(
        text=query.text,
        plan_code=query.plan_code,
        status=query.status,
        low_balance_below=low,
        unrefunded_failed_only=bool(query.unrefunded_failed_only),
        sort=sort,
        descending=bool(query.descending),
    )


def _plan_left(at: datetime) -> ColumnElement[int]:
    """Plan credits as shown at ``at``: 0 once the cached period has ended (they
    expired, whether or not the roll job has written that down yet)."""
    ended = Account.period_end <= literal(at, UTCDateTime())
    return case((ended, 0), else_=Account.plan_balance)


def _total(plan_left: ColumnElement[int]) -> ColumnElement[int]:
    return plan_left + Account.purchased_balance + Account.refund_balance


def _sort_keys(
    sort: AccountSort, plan_left: ColumnElement[int], total: ColumnElement[int]
) -> list[SQLColumnExpression[Any]]:
    """The sort expression followed by the id, which breaks ties and makes it total.

    Name and email sort by their normalised (case-folded) forms, which are indexed
    together with the id, so those two sorts walk the index.
    """
    if sort is AccountSort.ID:
        return [Account.id]
    key: SQLColumnExpression[Any] = {
        AccountSort.NAME: Account.name_norm,
        AccountSort.EMAIL: Account.email_norm,
        AccountSort.PLAN: Plan.name,
        AccountSort.PLAN_LEFT: plan_left,
        AccountSort.PURCHASED: Account.purchased_balance,
        AccountSort.TOTAL: total,
        AccountSort.NEXT_RESET: func.coalesce(
            Account.period_end, literal(NO_RESET, UTCDateTime())
        ),
        AccountSort.LAST_ACTIVITY: func.coalesce(
            Account.last_activity_at, literal(NO_ACTIVITY, UTCDateTime())
        ),
    }[sort]
    return [key, Account.id]


def _merged_branches(
    session: Session,
    stmt: Select[*tuple[Any, ...]],
    branches: list[ColumnElement[bool]],
    wanted: int,
    descending: bool,
) -> list[Any]:
    """The first ``wanted`` rows of ``stmt`` matching any branch, in its order.

    One query per branch (email prefix, name prefix, id ranges), each walking its own
    index and stopping at ``wanted`` rows, then merged here. A single query with OR
    lets the planner walk the sort index from its start instead: a two-letter prefix
    read 64,000 index entries for a page of 200 on 100,000 accounts. Rows are merged by
    their sort keys (the columns after the 14 of the row); only sorts whose keys
    compare in Python exactly as in the database (code points, numbers, times) come
    here, so the next page's keyset condition continues where this page stops.
    """
    seen: dict[int, Any] = {}
    for branch in branches:
        for row in session.execute(stmt.where(branch)).all():
            seen.setdefault(row[0], row)
    merged = sorted(seen.values(), key=lambda r: tuple(r[14:]), reverse=descending)
    return merged[:wanted]


def _account_filters(
    session: Session, q: AccountQuery, at: datetime, *, with_text: bool = True
) -> list[ColumnElement[bool]]:
    filters: list[ColumnElement[bool]] = []
    text = _text_filter(session, q.text) if with_text else None
    if text is not None:
        filters.append(text)
    if q.plan_code is not None:
        filters.append(Plan.code == q.plan_code)
    if q.status is not None:
        filters.append(Account.status == q.status)
    if q.low_balance_below is not None:
        # The total as shown (expired plan credits count for nothing), so the filter
        # and the numbers on screen always agree.
        filters.append(_total(_plan_left(at)) < q.low_balance_below)
    if q.unrefunded_failed_only:
        filters.append(Account.unrefunded_failed > 0)
    return filters


def _text_filter(session: Session, text: str) -> ColumnElement[bool] | None:
    """Prefix match on the normalised email or name, or on the id for digits."""
    if not normalise(text):
        return None
    return or_(*_text_branches(session, text))


def _text_branches(session: Session, text: str) -> list[ColumnElement[bool]]:
    """The ways ``text`` can match, one per index: email prefix, name prefix, id ranges
    (none for an empty search; ``[false()]`` when nothing can match).

    Only range comparisons on the indexed columns, with the text as a bound
    parameter: no LIKE, so ``%`` and ``_`` are ordinary characters, and nothing the
    staff member types is ever part of the SQL.
    """
    needle = normalise(text)
    if not needle:
        return []
    terms: list[ColumnElement[bool]] = []
    if _storable(needle):
        upper = prefix_upper_bound(needle)
        for column in (Account.email_norm, Account.name_norm):
            if upper is None:
                terms.append(column >= needle)
            else:
                terms.append(and_(column >= needle, column < upper))
    if needle.isascii() and needle.isdigit():
        max_id = session.scalar(select(func.max(Account.id))) or 0
        ranges = id_prefix_ranges(needle, max_id)
        if ranges:
            terms.append(or_(*(Account.id.between(low, high) for low, high in ranges)))
    return terms or [false()]


def _storable(text: str) -> bool:
    """Whether a stored name or email could start with ``text``. A NUL or a lone
    surrogate can be in neither (and PostgreSQL refuses NUL even as a parameter)."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def prefix_upper_bound(prefix: str) -> str | None:
    """The least string above every string that starts with ``prefix``.

    The last character is replaced by the next code point (skipping the surrogate
    block, which no stored text contains); trailing U+10FFFF are dropped first. None
    means no bound exists: everything from ``prefix`` up matches. Comparison is by
    code point, which is how SQLite (BINARY) and PostgreSQL (COLLATE "C" on the
    norm columns) order UTF-8 text.
    """
    chars = list(prefix)
    while chars:
        code = ord(chars[-1])
        if code < 0x10FFFF:
            code += 1
            if 0xD800 <= code <= 0xDFFF:
                code = 0xE000
            chars[-1] = chr(code)
            return "".join(chars)
        chars.pop()
    return None


def id_prefix_ranges(digits: str, max_id: int) -> list[tuple[int, int]]:
    """Inclusive id ranges whose decimal form starts with ``digits``, up to ``max_id``.

    "12" gives 12-12, 120-129, 1200-1299, ...: one index range per length instead of
    turning every id into text.
    """
    if not digits or not (digits.isascii() and digits.isdigit()) or digits[0] == "0":
        return []
    # Checked before int(): a 10,000-digit search must neither overflow nor be slow.
    if max_id < 1 or len(digits) > len(str(max_id)):
        return []
    value = int(digits)
    ranges: list[tuple[int, int]] = []
    scale = 1
    while value * scale <= max_id:
        ranges.append((value * scale, min((value + 1) * scale - 1, max_id)))
        scale *= 10
    return ranges


def _account_row(r: Sequence[Any]) -> AccountRow:
    return AccountRow(
        id=r[0],
        name=r[1],
        email=r[2],
        plan_code=r[3],
        plan_name=r[4],
        status=r[5],
        plan_left=int(r[6]),
        allotment=r[7],
        purchased=r[8],
        refund=r[9],
        total=int(r[10]),
        next_reset=r[11],
        last_activity=r[12],
        unrefunded_failed=r[13],
    )


# -- one account --------------------------------------------------------------------


@dataclass(frozen=True)
class AccountSummary:
    """An account's header: balances computed from its live grants at ``at``."""

    id: int
    name: str
    email: str
    plan_code: str
    plan_name: str
    status: str
    billing_day: int
    allotment: int
    plan_left: int
    purchased: int
    refund: int
    total: int
    period_start: datetime | None
    next_reset: datetime | None
    unrefunded_failed: int
    last_activity: datetime | None
    change_seq: int


def account_summary(
    db: Database, account_id: int, *, at: datetime | None = None
) -> AccountSummary:
    """The account's balances and billing period at ``at`` (default now).

    Balances are the live grants' remaining credits (``domain.grants.balance``), so a
    plan grant whose period has ended counts for nothing even before the roll job
    runs. The period is the one containing ``at`` that the roll would reach from the
    cached one. Grants hold their current remaining, so ``at`` means "now"; it is not
    a way to look at the past.
    """
    aid = _check_id(account_id)
    when = _when(at)

    def work(session: Session) -> AccountSummary:
        row = session.execute(
            select(Account, Plan).join(Plan, Plan.id == Account.plan_id).where(
                Account.id == aid
            )
        ).one_or_none()
        if row is None:
            raise NotFound(f"There is no account with id {aid}.")
        account, plan = row
        views = [
            GrantView(id=g.id, source=GrantSource(g.source), remaining=g.remaining,
                      expires_at=g.expires_at, created_at=g.created_at)
            for g in session.execute(
                select(CreditGrant.id, CreditGrant.source, CreditGrant.remaining,
                       CreditGrant.expires_at, CreditGrant.created_at)
                .where(CreditGrant.account_id == aid, CreditGrant.remaining > 0)
            )
        ]
        live = balance(views, when)
        period = _period_at(account, when)
        return AccountSummary(
            id=account.id,
            name=account.name,
            email=account.owner_email,
            plan_code=plan.code,
            plan_name=plan.name,
            status=account.status,
            billing_day=account.billing_day,
            allotment=plan.monthly_allotment,
            plan_left=live.plan,
            purchased=live.purchased,
            refund=live.refund,
            total=live.total,
            period_start=period.start if period else None,
            next_reset=period.end if period else None,
            unrefunded_failed=account.unrefunded_failed,
            last_activity=account.last_activity_at,
            change_seq=account.change_seq,
        )

    return db.read(work)


def _period_at(account: Account, at: datetime) -> Period | None:
    """The billing period at ``at``, chained from the cached one as the roll does."""
    if account.period_start is None or account.period_end is None:
        first = period_containing(account.billing_day, account.created_at)
    else:
        first = Period(account.period_start, account.period_end)
    if at < first.end:
        return first
    return periods_from(account.billing_day, first, at)[-1]


@dataclass(frozen=True)
class GrantRow:
    """One grant; ``live`` says whether its credits count at the query's time."""

    id: int
    source: str
    granted: int
    remaining: int
    created_at: datetime
    expires_at: datetime | None
    live: bool


def account_grants(
    db: Database, account_id: int, *, at: datetime | None = None
) -> list[GrantRow]:
    """Every grant of the account, newest first."""
    aid = _check_id(account_id)
    when = _when(at)

    def work(session: Session) -> list[GrantRow]:
        _require_account(session, aid)
        rows = session.execute(
            select(CreditGrant.id, CreditGrant.source, CreditGrant.granted,
                   CreditGrant.remaining, CreditGrant.created_at, CreditGrant.expires_at)
            .where(CreditGrant.account_id == aid)
            .order_by(CreditGrant.created_at.desc(), CreditGrant.id.desc())
        ).all()
        return [
            GrantRow(
                id=r.id,
                source=r.source,
                granted=r.granted,
                remaining=r.remaining,
                created_at=r.created_at,
                expires_at=r.expires_at,
                live=is_live(
                    GrantView(r.id, GrantSource(r.source), r.remaining, r.expires_at,
                              r.created_at),
                    when,
                ),
            )
            for r in rows
        ]

    return db.read(work)


@dataclass(frozen=True)
class ChargeRow:
    """A usage charge with its refund, if it has one."""

    id: int
    external_id: str
    occurred_at: datetime
    feature_code: str
    feature_name: str
    model: str | None
    credits: int
    status: str
    failure_reason: str | None
    refunded_credits: int | None
    refund_id: int | None
    refunded_at: datetime | None


def charges_page(
    db: Database,
    account_id: int,
    *,
    feature: str | None = None,
    status: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    refunded: bool | None = None,
    after: Cursor | None = None,
    limit: int = 100,
) -> Page[ChargeRow]:
    """The account's charges, newest first; ``start <= occurred_at < end``.

    ``refunded`` True keeps the charges that have a refund, False those that have
    none. Paged on (occurred_at, id), which the (account, time, id) index serves.
    """
    aid = _check_id(account_id)
    size = check_limit(limit)
    if status is not None and status not in CHARGE_STATUSES:
        raise InvalidInput("A charge either succeeded or failed.", "status")
    low = _optional_time(start, "start")
    high = _optional_time(end, "end")
    tag = "charges"
    position = open_cursor(after, tag, 2)

    def work(session: Session) -> Page[ChargeRow]:
        _require_account(session, aid)
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
                UsageCharge.status,
                UsageCharge.failure_reason,
                Refund.credits,
                Refund.id,
                Refund.created_at,
            )
            .join(Feature, Feature.code == UsageCharge.feature_code)
            .outerjoin(Refund, Refund.charge_id == UsageCharge.id)
            .where(UsageCharge.account_id == aid)
            .order_by(*keyset_order(keys, descending=True))
            .limit(size + 1)
        )
        if feature is not None:
            stmt = stmt.where(UsageCharge.feature_code == feature)
        if status is not None:
            stmt = stmt.where(UsageCharge.status == status)
        if low is not None:
            stmt = stmt.where(UsageCharge.occurred_at >= low)
        if high is not None:
            stmt = stmt.where(UsageCharge.occurred_at < high)
        if refunded is not None:
            stmt = stmt.where(Refund.id.is_not(None) if refunded else Refund.id.is_(None))
        if position is not None:
            stmt = stmt.where(keyset_after(keys, position, descending=True))
        rows = [
            ChargeRow(
                id=r[0], external_id=r[1], occurred_at=r[2], feature_code=r[3],
                feature_name=r[4], model=r[5], credits=r[6], status=r[7],
                failure_reason=r[8], refunded_credits=r[9], refund_id=r[10],
                refunded_at=r[11],
            )
            for r in session.execute(stmt)
        ]
        shown, cursor = split_page(rows, size, lambda c: make_cursor(tag, c.occurred_at, c.id))
        return Page(shown, cursor)

    return db.read(work)


@dataclass(frozen=True)
class LedgerRow:
    """One ledger entry; ``balance_after`` is the account's ledger total right after it."""

    id: int
    created_at: datetime
    kind: str
    delta: int
    grant_id: int
    grant_source: str
    charge_id: int | None
    actor: str
    reason: str
    reference: str | None
    operation_id: int | None
    balance_after: int


def ledger_page(
    db: Database, account_id: int, *, after: Cursor | None = None, limit: int = 100
) -> Page[LedgerRow]:
    """The account's ledger, newest entry first (by id, the order of writing).

    ``balance_after`` is the sum of every delta of the account up to and including the
    entry: one aggregate for the page's newest entry, then each older entry's delta is
    subtracted going down the page. It counts plan credits until their expiry entry is
    written, which is the ledger's own view of the balance.
    """
    aid = _check_id(account_id)
    size = check_limit(limit)
    tag = "ledger"
    position = open_cursor(after, tag, 1)

    def work(session: Session) -> Page[LedgerRow]:
        _require_account(session, aid)
        stmt = (
            select(
                LedgerEntry.id,
                LedgerEntry.created_at,
                LedgerEntry.kind,
                LedgerEntry.delta,
                LedgerEntry.grant_id,
                CreditGrant.source,
                LedgerEntry.charge_id,
                Staff.display_name,
                LedgerEntry.reason,
                LedgerEntry.reference,
                LedgerEntry.operation_id,
            )
            .join(CreditGrant, CreditGrant.id == LedgerEntry.grant_id)
            .join(Staff, Staff.id == LedgerEntry.actor_id)
            .where(LedgerEntry.account_id == aid)
            .order_by(LedgerEntry.id.desc())
            .limit(size + 1)
        )
        if position is not None:
            stmt = stmt.where(LedgerEntry.id < position[0])
        fetched = session.execute(stmt).all()
        running = 0
        if fetched:
            running = int(
                session.scalar(
                    select(func.coalesce(func.sum(LedgerEntry.delta), 0)).where(
                        LedgerEntry.account_id == aid, LedgerEntry.id <= fetched[0][0]
                    )
                )
                or 0
            )
        rows: list[LedgerRow] = []
        for r in fetched:
            rows.append(
                LedgerRow(
                    id=r[0], created_at=r[1], kind=r[2], delta=r[3], grant_id=r[4],
                    grant_source=r[5], charge_id=r[6], actor=r[7], reason=r[8],
                    reference=r[9], operation_id=r[10], balance_after=running,
                )
            )
            running -= r[3]
        shown, cursor = split_page(rows, size, lambda e: make_cursor(tag, e.id))
        return Page(shown, cursor)

    return db.read(work)


# -- across accounts ----------------------------------------------------------------


@dataclass(frozen=True)
class UsageBucket:
    """Charges of one feature in one day, ISO week (starting Monday) or month.

    ``refunded_credits`` is what was refunded on the bucket's charges, failed or not,
    so ``credits - refunded_credits`` is what the customers were finally charged.
    """

    start: date
    feature_code: str
    credits: int
    charges: int
    failed_credits: int
    refunded_credits: int


def usage_totals(
    db: Database,
    *,
    start: datetime,
    end: datetime,
    granularity: str = "day",
    account_id: int | None = None,
) -> list[UsageBucket]:
    """Charges with ``start <= occurred_at < end`` summed per UTC period and feature.

    The database sums per UTC day (a few rows per day whatever the number of charges);
    days are folded into weeks or months here, so the SQL stays the same on both
    dialects apart from the day expression. Sorted by period, then feature.
    """
    if granularity not in GRANULARITIES:
        raise InvalidInput(f"Group usage by one of: {', '.join(GRANULARITIES)}.",
                           "granularity")
    low = _required_time(start, "start")
    high = _required_time(end, "end")
    aid = None if account_id is None else _check_id(account_id)

    def work(session: Session) -> list[tuple[Any, ...]]:
        day = _utc_day(session)
        failed_credits = case((UsageCharge.status == FAILED, UsageCharge.credits), else_=0)
        stmt = (
            select(
                day,
                UsageCharge.feature_code,
                func.sum(UsageCharge.credits),
                func.count(UsageCharge.id),
                func.sum(failed_credits),
                func.sum(func.coalesce(Refund.credits, 0)),
            )
            .outerjoin(Refund, Refund.charge_id == UsageCharge.id)
            .where(UsageCharge.occurred_at >= low, UsageCharge.occurred_at < high)
            .group_by(day, UsageCharge.feature_code)
        )
        if aid is not None:
            stmt = stmt.where(UsageCharge.account_id == aid)
        return [tuple(r) for r in session.execute(stmt)]

    if low >= high:
        return []
    totals: dict[tuple[date, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for day_value, feature_code, credits, count, failed, refunded in db.read(work):
        key = (_bucket_start(_as_date(day_value), granularity), feature_code)
        sums = totals[key]
        sums[0] += int(credits or 0)
        sums[1] += int(count or 0)
        sums[2] += int(failed or 0)
        sums[3] += int(refunded or 0)
    return [
        UsageBucket(start=k[0], feature_code=k[1], credits=s[0], charges=s[1],
                    failed_credits=s[2], refunded_credits=s[3])
        for k, s in sorted(totals.items())
    ]


def _utc_day(session: Session) -> ColumnElement[Any]:
    """The UTC calendar day of a charge, as SQL (constants inline, not bound, so
    PostgreSQL sees the GROUP BY expression as the selected one)."""
    if session.get_bind().dialect.name == "postgresql":
        utc = func.timezone(literal_column("'UTC'"), UsageCharge.occurred_at)
        return func.date_trunc(literal_column("'day'"), utc)
    # SQLite stores the naive UTC time as text 'YYYY-MM-DD HH:MM:SS.ffffff'.
    return func.substr(UsageCharge.occurred_at, literal_column("1"), literal_column("10"))


def _as_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def _bucket_start(day: date, granularity: str) -> date:
    if granularity == "week":
        return day - timedelta(days=day.weekday())
    if granularity == "month":
        return day.replace(day=1)
    return day


@dataclass(frozen=True)
class FailedChargeRow:
    """A failed charge that cost credits and has not been refunded."""

    charge_id: int
    account_id: int
    account_name: str
    occurred_at: datetime
    feature_code: str
    model: str | None
    credits: int
    failure_reason: str | None


def unrefunded_failures(
    db: Database,
    *,
    feature: str | None = None,
    after: Cursor | None = None,
    limit: int = 100,
) -> Page[FailedChargeRow]:
    """Failed charges with credits > 0 and no refund, across accounts, newest first.

    A charge whose refund was later reversed has a refund row and so is not listed:
    it was handled, and a charge is refunded at most once.
    """
    size = check_limit(limit)
    tag = "failures"
    position = open_cursor(after, tag, 2)

    def work(session: Session) -> Page[FailedChargeRow]:
        keys: list[SQLColumnExpression[Any]] = [UsageCharge.occurred_at, UsageCharge.id]
        stmt = (
            select(
                UsageCharge.id,
                UsageCharge.account_id,
                Account.name,
                UsageCharge.occurred_at,
                UsageCharge.feature_code,
                UsageCharge.model,
                UsageCharge.credits,
                UsageCharge.failure_reason,
            )
            .join(Account, Account.id == UsageCharge.account_id)
            .where(
                UsageCharge.status == FAILED,
                UsageCharge.credits > 0,
                ~exists().where(Refund.charge_id == UsageCharge.id),
            )
            .order_by(*keyset_order(keys, descending=True))
            .limit(size + 1)
        )
        if feature is not None:
            stmt = stmt.where(UsageCharge.feature_code == feature)
        if position is not None:
            stmt = stmt.where(keyset_after(keys, position, descending=True))
        rows = [
            FailedChargeRow(
                charge_id=r[0], account_id=r[1], account_name=r[2], occurred_at=r[3],
                feature_code=r[4], model=r[5], credits=r[6], failure_reason=r[7],
            )
            for r in session.execute(stmt)
        ]
        shown, cursor = split_page(
            rows, size, lambda c: make_cursor(tag, c.occurred_at, c.charge_id)
        )
        return Page(shown, cursor)

    return db.read(work)


# -- shared checks ------------------------------------------------------------------


def _when(at: datetime | None) -> datetime:
    if at is None:
        return utcnow()
    return _required_time(at, "at")


def _required_time(value: object, field: str) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput("Times must be given with a time zone.", field)
    return to_utc(value, field)


def _optional_time(value: object, field: str) -> datetime | None:
    return None if value is None else _required_time(value, field)


def _check_id(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput("Choose an account.", "account_id")
    return value


def _require_account(session: Session, account_id: int) -> None:
    if session.scalar(select(Account.id).where(Account.id == account_id)) is None:
        raise NotFound(f"There is no account with id {account_id}.")



# -- live refresh ---------------------------------------------------------------------


def change_marks(db: Database, account_ids: Sequence[int]) -> dict[int, int]:
    """Each listed account's ``change_seq`` (bumped by every write touching it), by id.

    One primary-key lookup, cheap enough to poll every second: an open view compares
    the marks with the ones it last saw and reads again the accounts whose mark moved.
    Ids of accounts that do not exist are left out. With no ids the query still runs,
    so the call doubles as a check that the database answers.
    """
    ids = sorted({_check_id(i) for i in account_ids})

    def work(session: Session) -> dict[int, int]:
        rows = session.execute(
            select(Account.id, Account.change_seq).where(Account.id.in_(ids))
        )
        return {int(r[0]): int(r[1]) for r in rows}

    return db.read(work)
