"""Tests of the read side (services.queries) on SQLite and PostgreSQL.

The data is made with the real write services; every expectation is recomputed
straight from the tables (or from the services' own results), never from the code
under test.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, text, update

from credits_desktop.services.accounts import create_account, create_staff, normalise
from credits_desktop.services.adjustments import adjust_purchased
from credits_desktop.services.catalog import ensure_catalog
from credits_desktop.services.charges import record_charge
from credits_desktop.services.errors import InvalidInput, NotFound
from credits_desktop.services.operations import Actor
from credits_desktop.services.periods import roll_periods
from credits_desktop.services.purchases import buy_package
from credits_desktop.services.queries import (
    AccountQuery,
    AccountRow,
    AccountSort,
    Cursor,
    Page,
    account_grants,
    account_summary,
    charges_page,
    count_accounts,
    id_prefix_ranges,
    ledger_page,
    prefix_upper_bound,
    search_accounts,
    unrefunded_failures,
    usage_totals,
)
from credits_desktop.services.refunds import RefundItem, refund_charges
from credits_desktop.services.reversals import reverse
from credits_desktop.store.database import Database
from credits_desktop.store.models import (
    Account,
    CreditGrant,
    LedgerEntry,
    Plan,
    Refund,
    Staff,
    UsageCharge,
)

T0 = datetime(2026, 1, 10, 10, tzinfo=UTC)
# Accounts with a billing day from 11 to 25 have a cached period ending on or before
# this instant (one exactly at it): their plan credits must show as expired.
AT = datetime(2026, 1, 25, tzinfo=UTC)


@dataclass
class Env:
    db: Database
    admin: Actor
    platform: Actor
    support: Actor
    finance: Actor
    keys: Iterator[int]

    def key(self) -> str:
        return f"k{next(self.keys)}"

    def account(self, name: str, email: str, *, plan: str = "starter", billing_day: int = 1,
                at: datetime = T0) -> int:
        result = create_account(self.db, self.platform, name=name, email=email,
                                plan_code=plan, billing_day=billing_day,
                                idempotency_key=self.key(), created_at=at)
        return int(result.details["account_id"])  # type: ignore[arg-type]

    def charge(self, account_id: int, at: datetime, *, feature: str = "ad_image",
               status: str = "succeeded", credits: int | None = None,
               reason: str | None = None, model: str | None = None) -> int:
        if status == "failed" and reason is None:
            reason = "timeout"
        return record_charge(self.db, self.platform, account_id=account_id,
                             feature_code=feature, external_id=self.key(), occurred_at=at,
                             status=status, credits=credits, failure_reason=reason,
                             model=model).charge_id

    def buy(self, account_id: int, at: datetime, package: str = "pack_500") -> None:
        buy_package(self.db, self.platform, account_id=account_id, package_code=package,
                    payment_reference=self.key(), idempotency_key=self.key(), at=at)

    def refund(self, account_id: int, charge_id: int, at: datetime,
               actor: Actor | None = None) -> int:
        result = refund_charges(self.db, actor or self.support, account_id=account_id,
                                items=[RefundItem(charge_id)], reason_code="failed_generation",
                                ticket="#1", idempotency_key=self.key(), at=at)
        assert result.status == "applied", result.message
        refund_id = self.db.read(
            lambda s: s.scalar(select(Refund.id).where(Refund.charge_id == charge_id))
        )
        assert refund_id is not None
        return int(refund_id)

    def sql(self, statement: Any) -> None:
        self.db.write(lambda s: s.execute(statement))


@pytest.fixture
def env(db_url: str) -> Iterator[Env]:
    db = Database.open(db_url)
    try:
        db.write(ensure_catalog)
        admin = create_staff(db, None, username="ada", display_name="Ada Admin", role="admin")
        yield Env(
            db=db,
            admin=admin,
            platform=create_staff(db, admin, username="platform", display_name="Ad platform",
                                  role="system"),
            support=create_staff(db, admin, username="sam", display_name="Sam Support",
                                 role="support"),
            finance=create_staff(db, admin, username="fay", display_name="Fay Finance",
                                 role="finance"),
            keys=itertools.count(1),
        )
    finally:
        db.close()


# -- the account list -----------------------------------------------------------------

# Hostile, accented, case-twin and tie-making names: the list must page them all.
WORLD = [
    ("Acme Ads", "ops@acme.test"),
    ("ACME Ads Europe", "eu@acme.test"),
    ("100% Real Ads", "hundred@pct.test"),
    ("100 Real Ads", "hundred@plain.test"),
    ("1000 Leads", "leads@thousand.test"),
    ("a_b Agency", "a_b@under.test"),
    ("axb Agency", "axb@under.test"),
    ("O'Brien & Co", "o'brien@irish.test"),
    ("'; drop table accounts; --", "bobby@tables.test"),
    ("Ärzte Studio", "praxis@aerzte.test"),
    ("Straße Media", "info@strasse.test"),
    ("Émile Créations", "emile@creations.test"),
    ("🚀 Rocket Ads", "rocket@space.test"),
    ("zed", "z@z.test"),
    ("Zed", "zed@z.test"),
    ("Beta Shop", "hello@beta.test"),
    ("Gamma Shop", "hello@gamma.test"),
    ("Delta Shop", "hello@delta.test"),
    ("Same Name", "one@same.test"),
    ("Same Name", "two@same.test"),
    ("Same Name", "three@same.test"),
    ("Kappa", "k@kappa.test"),
    ("Lambda", "l@lambda.test"),
    ("Mu", "m@mu.test"),
    ("Nu", "n@nu.test"),
    ("Xi", "x@xi.test"),
    ("Omicron", "o@omicron.test"),
    ("Pi", "p@pi.test"),
    ("Rho", "r@rho.test"),
    ("Sigma 100", "1sigma@sigma.test"),
]
PLANS = ["starter", "growth", "pro", "agency"]
BILLING_DAYS = [1, 5, 10, 11, 15, 20, 25, 26, 28, 31]


def build_world(env: Env) -> list[int]:
    ids = []
    for i, (name, email) in enumerate(WORLD):
        aid = env.account(name, email, plan=PLANS[i % 4], billing_day=BILLING_DAYS[i % 10],
                          at=T0 + timedelta(minutes=i))
        ids.append(aid)
        if i % 3 == 0:
            env.buy(aid, T0 + timedelta(hours=1), "pack_500" if i % 2 else "pack_2000")
        if i % 4 == 1:
            env.charge(aid, T0 + timedelta(hours=2 + i), credits=40 + i % 3)
        if i % 5 == 2:
            env.charge(aid, T0 + timedelta(hours=3), status="failed", credits=15)
    # No service leaves these NULL today (an import might, and the columns allow it),
    # and no service changes an account's status yet: set them directly so that the
    # NULL handling of the sorts and the status filter are exercised.
    env.sql(update(Account).where(Account.id.in_([ids[2], ids[16], ids[21]]))
            .values(last_activity_at=None))
    env.sql(update(Account).where(Account.id.in_([ids[4], ids[16], ids[28]]))
            .values(period_start=None, period_end=None))
    env.sql(update(Account).where(Account.id.in_([ids[7], ids[19]])).values(status="suspended"))
    env.sql(update(Account).where(Account.id == ids[23]).values(status="closed"))
    return ids


def expected_rows(db: Database, at: datetime) -> dict[int, AccountRow]:
    """Every account as the list must show it at ``at``, from the raw tables."""

    def work(session: Any) -> dict[int, AccountRow]:
        out = {}
        for a, p in session.execute(select(Account, Plan).join(Plan, Plan.id == Account.plan_id)):
            expired = a.period_end is not None and a.period_end <= at
            plan_left = 0 if expired else a.plan_balance
            out[a.id] = AccountRow(
                id=a.id, name=a.name, email=a.owner_email, plan_code=p.code, plan_name=p.name,
                status=a.status, plan_left=plan_left, allotment=p.monthly_allotment,
                purchased=a.purchased_balance, refund=a.refund_balance,
                total=plan_left + a.purchased_balance + a.refund_balance,
                next_reset=a.period_end, last_activity=a.last_activity_at,
                unrefunded_failed=a.unrefunded_failed,
            )
        return out

    return db.read(work)


FAR = datetime(9999, 1, 1, tzinfo=UTC)
NEVER = datetime(1, 1, 1, tzinfo=UTC)

# The order each sort promises: ties by id; no reset sorts after every reset, never
# active before every activity.
SORT_KEYS: dict[AccountSort, Callable[[AccountRow], tuple[Any, ...]]] = {
    AccountSort.ID: lambda r: (r.id,),
    AccountSort.NAME: lambda r: (normalise(r.name), r.id),
    AccountSort.EMAIL: lambda r: (normalise(r.email), r.id),
    AccountSort.PLAN: lambda r: (r.plan_name, r.id),
    AccountSort.PLAN_LEFT: lambda r: (r.plan_left, r.id),
    AccountSort.PURCHASED: lambda r: (r.purchased, r.id),
    AccountSort.TOTAL: lambda r: (r.total, r.id),
    AccountSort.NEXT_RESET: lambda r: (r.next_reset or FAR, r.id),
    AccountSort.LAST_ACTIVITY: lambda r: (r.last_activity or NEVER, r.id),
}


def page_all(db: Database, query: AccountQuery, *, limit: int = 7,
             at: datetime = AT) -> list[AccountRow]:
    rows: list[AccountRow] = []
    page = search_accounts(db, query, limit=limit, at=at)
    while True:
        assert len(page.rows) <= limit
        rows.extend(page.rows)
        if page.next_cursor is None:
            return rows
        assert len(page.rows) == limit, "only the last page may be short"
        page = search_accounts(db, query, after=page.next_cursor, limit=limit)


def test_paging_every_sort_both_ways_lists_each_account_once_in_order(env: Env) -> None:
    build_world(env)
    expected = expected_rows(env.db, AT)
    assert len(expected) == len(WORLD)
    # The data must make the interesting cases happen, or the test proves little.
    assert any(r.next_reset is None for r in expected.values())
    assert any(r.last_activity is None for r in expected.values())
    assert any(r.next_reset == AT for r in expected.values())
    assert any(r.plan_left == 0 and r.next_reset is not None for r in expected.values())
    for sort in AccountSort:
        for descending in (False, True):
            got = page_all(env.db, AccountQuery(sort=sort, descending=descending))
            want = sorted(expected.values(), key=SORT_KEYS[sort], reverse=descending)
            assert [r.id for r in got] == [r.id for r in want], (sort, descending)
            assert got == want, (sort, descending)


def test_search_text_pages_every_sort_both_ways_in_order(env: Env) -> None:
    """A text matching names, emails and ids at once is searched one index at a time
    and merged; every sort must still page in order, each account once."""
    build_world(env)
    expected = expected_rows(env.db, AT)
    firsts = {normalise(r.name)[:1] for r in expected.values()}
    firsts |= {normalise(r.email)[:1] for r in expected.values()} | {"1"}

    def matches(r: AccountRow, prefix: str) -> bool:
        return (normalise(r.name).startswith(prefix) or normalise(r.email).startswith(prefix)
                or str(r.id).startswith(prefix))

    assert any(sum(1 for r in expected.values() if matches(r, t)) > 3 for t in firsts)
    for prefix in sorted(firsts):
        for sort in AccountSort:
            for descending in (False, True):
                got = page_all(env.db, AccountQuery(text=prefix, sort=sort,
                                                    descending=descending), limit=3)
                want = sorted((r for r in expected.values() if matches(r, prefix)),
                              key=SORT_KEYS[sort], reverse=descending)
                assert [r.id for r in got] == [r.id for r in want], (prefix, sort, descending)


def test_later_pages_keep_the_time_of_the_first(env: Env) -> None:
    build_world(env)
    query = AccountQuery(sort=AccountSort.PLAN_LEFT)
    first = search_accounts(env.db, query, limit=5, at=AT)
    assert first.next_cursor is not None
    # No ``at``: the cursor's time is used (the real clock is far from AT).
    second = search_accounts(env.db, query, after=first.next_cursor, limit=5)
    want = sorted(expected_rows(env.db, AT).values(), key=SORT_KEYS[AccountSort.PLAN_LEFT])
    assert [r.id for r in first.rows + second.rows] == [r.id for r in want[:10]]
    same = search_accounts(env.db, query, after=first.next_cursor, limit=5, at=AT)
    assert same == second
    with pytest.raises(InvalidInput):
        search_accounts(env.db, query, after=first.next_cursor, limit=5,
                        at=AT + timedelta(days=1))
    # A position from another sort order or another list is refused, not misread.
    with pytest.raises(InvalidInput):
        search_accounts(env.db, AccountQuery(sort=AccountSort.TOTAL), after=first.next_cursor)
    with pytest.raises(InvalidInput):
        search_accounts(env.db, query, after=Cursor(("charges", AT, 1)))


def test_filters_and_counts(env: Env) -> None:
    ids = build_world(env)
    expected = expected_rows(env.db, AT)
    by_name = sorted(expected.values(), key=SORT_KEYS[AccountSort.NAME])

    def check(query: AccountQuery, keep: Callable[[AccountRow], bool]) -> None:
        want = [r for r in by_name if keep(r)]
        assert want, f"the data gives {query} nothing to find"
        assert page_all(env.db, query) == want, query
        assert count_accounts(env.db, query, at=AT) == len(want), query
        assert count_accounts(env.db, query, cap=2, at=AT) == min(2, len(want)), query

    check(AccountQuery(plan_code="pro"), lambda r: r.plan_code == "pro")
    check(AccountQuery(status="suspended"), lambda r: r.status == "suspended")
    check(AccountQuery(status="active"), lambda r: r.status == "active")
    # The total as shown: plan credits of an ended period no longer count.
    check(AccountQuery(low_balance_below=600), lambda r: r.total < 600)
    check(AccountQuery(unrefunded_failed_only=True), lambda r: r.unrefunded_failed > 0)
    check(AccountQuery(plan_code="starter", low_balance_below=2_000),
          lambda r: r.plan_code == "starter" and r.total < 2_000)
    check(AccountQuery(text="  "), lambda r: True)
    assert any(r.unrefunded_failed > 0 for r in expected.values())
    # Some account is below 600 only because its ended period's plan credits are
    # still in the cached plan balance: the filter must go by the total shown.
    cached: dict[int, int] = env.db.read(
        lambda s: dict(s.execute(select(Account.id, Account.plan_balance)).all())
    )
    assert any(r.total < 600 <= r.total + cached[r.id] for r in expected.values()
               if r.next_reset is not None and r.next_reset <= AT)
    assert page_all(env.db, AccountQuery(plan_code="no-such-plan")) == []
    assert count_accounts(env.db, AccountQuery(), at=AT) == len(ids)
    with pytest.raises(InvalidInput):
        search_accounts(env.db, AccountQuery(status="gone"))
    with pytest.raises(InvalidInput):
        search_accounts(env.db, AccountQuery(sort="balance"))  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        search_accounts(env.db, AccountQuery(), limit=0)
    with pytest.raises(InvalidInput):
        search_accounts(env.db, AccountQuery(), at=datetime(2026, 1, 1))
    with pytest.raises(InvalidInput):
        count_accounts(env.db, AccountQuery(), cap=0)
    # A plain string names a sort as well as the enum does.
    assert page_all(env.db, AccountQuery(sort="email")) == page_all(  # type: ignore[arg-type]
        env.db, AccountQuery(sort=AccountSort.EMAIL))


def names(db: Database, text_: str) -> list[str]:
    return [r.name for r in page_all(db, AccountQuery(text=text_, sort=AccountSort.ID))]


def test_search_text_is_a_literal_prefix(env: Env) -> None:
    build_world(env)
    assert names(env.db, "100%") == ["100% Real Ads"]
    assert names(env.db, "100") == ["100% Real Ads", "100 Real Ads", "1000 Leads"]
    assert names(env.db, "a_b") == ["a_b Agency"]
    assert names(env.db, "%") == []
    assert names(env.db, "_") == []
    assert names(env.db, "a%") == []
    assert names(env.db, "O'B") == ["O'Brien & Co"]
    assert names(env.db, "'; drop table accounts; --") == ["'; drop table accounts; --"]
    assert names(env.db, "'; DROP TABLE accounts; --") == ["'; drop table accounts; --"]
    assert names(env.db, "x' OR '1'='1") == []
    assert names(env.db, "  ACME  ") == ["Acme Ads", "ACME Ads Europe"]
    assert names(env.db, "acme ads e") == ["ACME Ads Europe"]
    assert names(env.db, "ops@ACME.test") == ["Acme Ads"]
    assert names(env.db, "hello@") == ["Beta Shop", "Gamma Shop", "Delta Shop"]
    # Case-folded like the stored form: ß folds to ss.
    assert names(env.db, "STRASSE") == ["Straße Media"]
    assert names(env.db, "straße m") == ["Straße Media"]
    assert names(env.db, "ärzte") == ["Ärzte Studio"]
    assert names(env.db, "🚀") == ["🚀 Rocket Ads"]
    assert names(env.db, "same name") == ["Same Name"] * 3
    # Text no stored value can hold, or no value starts with: no match, no error.
    for odd in ["a\x00", "\x00", "\ud800", "acme\U0010ffff", "\U0010ffff", "x" * 10_000,
                "1" * 10_000, "a" * 10_000, "z" * 321, "\\", "[a]", "*"]:
        assert names(env.db, odd) == [], odd
        assert count_accounts(env.db, AccountQuery(text=odd)) == 0
    # The table is still there, whole.
    assert count_accounts(env.db, AccountQuery()) == len(WORLD)


def test_search_by_id_prefix(env: Env) -> None:
    build_world(env)
    rows = expected_rows(env.db, AT).values()
    for digits in ["1", "2", "3", "12", "30", "31", "0", "007", "100", "1sigma"]:
        want = [
            r.id for r in sorted(rows, key=lambda r: r.id)
            if str(r.id).startswith(digits) or normalise(r.name).startswith(digits)
            or normalise(r.email).startswith(digits)
        ]
        got = [r.id for r in page_all(env.db, AccountQuery(text=digits, sort=AccountSort.ID))]
        assert got == want, digits
    assert len([r for r in rows if str(r.id).startswith("1")]) == 11  # 1 and 10-19
    # Other scripts' digits are not ids.
    assert names(env.db, "١") == []


def test_id_prefix_ranges_and_prefix_bounds() -> None:
    assert id_prefix_ranges("12", 1300) == [(12, 12), (120, 129), (1200, 1299)]
    assert id_prefix_ranges("12", 1250) == [(12, 12), (120, 129), (1200, 1250)]
    assert id_prefix_ranges("12", 11) == []
    assert id_prefix_ranges("9", 9) == [(9, 9)]
    assert id_prefix_ranges("1", 0) == []
    assert id_prefix_ranges("0", 1000) == []
    assert id_prefix_ranges("1" * 10_000, 2**31 - 1) == []
    for digits, top in [("7", 5_000), ("34", 99_999), ("1", 1_000)]:
        ranges = id_prefix_ranges(digits, top)
        covered = {i for lo, hi in ranges for i in range(lo, hi + 1)}
        assert covered == {i for i in range(1, top + 1) if str(i).startswith(digits)}
    assert prefix_upper_bound("ab") == "ac"
    assert prefix_upper_bound("a\U0010ffff") == "b"
    assert prefix_upper_bound("\U0010ffff") is None
    assert prefix_upper_bound("\ud7ff") == "\ue000"


# -- one account ----------------------------------------------------------------------


def ledger_balances(db: Database, account_id: int, at: datetime) -> dict[str, int]:
    """Plan / purchased / refund credits live at ``at``, summed from the ledger itself."""

    def work(session: Any) -> dict[str, int]:
        per_grant: dict[int, int] = defaultdict(int)
        for grant_id, delta in session.execute(
            select(LedgerEntry.grant_id, LedgerEntry.delta)
            .where(LedgerEntry.account_id == account_id)
        ):
            per_grant[grant_id] += delta
        out = {"plan": 0, "purchased": 0, "refund": 0}
        for g in session.scalars(select(CreditGrant).where(CreditGrant.account_id == account_id)):
            if g.expires_at is None or at < g.expires_at:
                kind = {"plan": "plan", "refund": "refund"}.get(g.source, "purchased")
                out[kind] += per_grant[g.id]
        return out

    return db.read(work)


def busy_account(env: Env) -> tuple[int, list[int]]:
    """The smoke script's story: billing day 31, a purchase, charges, a refund that
    lands after the plan grant expired, an approved adjustment and a reversal."""
    t0 = datetime(2026, 1, 31, 10, tzinfo=UTC)
    aid = env.account("Acme Ads", "ops@acme.test", billing_day=31, at=t0)
    env.buy(aid, t0 + timedelta(hours=1))
    failed = env.charge(aid, t0 + timedelta(days=1), status="failed")
    env.charge(aid, t0 + timedelta(days=30), credits=490)
    env.charge(aid, t0 + timedelta(days=31), status="failed", credits=5)
    env.refund(aid, failed, t0 + timedelta(days=40))
    adjust_purchased(env.db, env.finance, account_id=aid, delta=700, reason_code="manual_sale",
                     reference="INV-1", idempotency_key=env.key(), at=t0 + timedelta(days=41))
    adjust_purchased(env.db, env.finance, account_id=aid, delta=-300, reason_code="correction",
                     reference="COR-1", idempotency_key=env.key(), at=t0 + timedelta(days=43))
    adjustment_id = env.db.read(lambda s: s.scalar(text("SELECT max(id) FROM adjustments")))
    reverse(env.db, env.finance, adjustment_id=int(adjustment_id), reason="typo",
            reference="COR-2", idempotency_key=env.key(), at=t0 + timedelta(days=44))
    return aid, [failed]


def test_account_summary_matches_the_ledger(env: Env) -> None:
    aid, _ = busy_account(env)
    other = env.account("Other", "other@x.test", plan="pro", billing_day=3)
    env.charge(other, T0 + timedelta(days=1))
    # Inside the period the last write rolled to (28 Feb - 31 Mar), then after it
    # ended with no roll yet: the plan credits must count as expired.
    for at in [datetime(2026, 3, 20, tzinfo=UTC), datetime(2026, 4, 2, tzinfo=UTC)]:
        s = account_summary(env.db, aid, at=at)
        want = ledger_balances(env.db, aid, at)
        assert (s.plan_left, s.purchased, s.refund) == (
            want["plan"], want["purchased"], want["refund"]), at
        assert s.total == sum(want.values())
        row = search_accounts(env.db, AccountQuery(text=str(aid), sort=AccountSort.ID),
                              at=at).rows[0]
        assert (row.plan_left, row.purchased, row.refund, row.total) == (
            s.plan_left, s.purchased, s.refund, s.total), at
    early = account_summary(env.db, aid, at=datetime(2026, 3, 20, tzinfo=UTC))
    assert early.plan_left == 5  # 500 granted on 28 Feb, 490 + 5 charged
    assert (early.period_start, early.next_reset) == (
        datetime(2026, 2, 28, tzinfo=UTC), datetime(2026, 3, 31, tzinfo=UTC))
    late = account_summary(env.db, aid, at=datetime(2026, 4, 2, tzinfo=UTC))
    assert late.plan_left == 0
    # The period the roll will reach, not the ended one.
    assert (late.period_start, late.next_reset) == (
        datetime(2026, 3, 31, tzinfo=UTC), datetime(2026, 4, 30, tzinfo=UTC))
    account = env.db.read(lambda s: s.get(Account, aid))
    assert account is not None
    assert late.unrefunded_failed == account.unrefunded_failed == 1
    assert late.change_seq == account.change_seq
    assert late.last_activity == account.last_activity_at
    assert (late.name, late.email, late.plan_code, late.plan_name, late.billing_day,
            late.allotment, late.status) == (
        "Acme Ads", "ops@acme.test", "starter", "Starter", 31, 500, "active")
    # Once the roll has run, the cached figures agree with the summary too.
    roll_periods(env.db, env.admin, until=datetime(2026, 4, 2, tzinfo=UTC))
    rolled = account_summary(env.db, aid, at=datetime(2026, 4, 2, tzinfo=UTC))
    assert rolled.plan_left == 500
    assert rolled.total == sum(ledger_balances(env.db, aid, datetime(2026, 4, 2,
                                                                     tzinfo=UTC)).values())
    with pytest.raises(NotFound):
        account_summary(env.db, 9_999)
    with pytest.raises(InvalidInput):
        account_summary(env.db, "1")  # type: ignore[arg-type]


def test_account_grants_newest_first_with_liveness(env: Env) -> None:
    aid, _ = busy_account(env)
    at = datetime(2026, 3, 20, tzinfo=UTC)
    grants = account_grants(env.db, aid, at=at)

    def raw(session: Any) -> list[tuple[Any, ...]]:
        return [
            (g.id, g.source, g.granted, g.remaining, g.created_at, g.expires_at,
             g.expires_at is None or at < g.expires_at)
            for g in session.scalars(select(CreditGrant).where(CreditGrant.account_id == aid))
        ]

    want = sorted(env.db.read(raw), key=lambda g: (g[4], g[0]), reverse=True)
    assert [(g.id, g.source, g.granted, g.remaining, g.created_at, g.expires_at, g.live)
            for g in grants] == want
    assert {g.source for g in grants} == {"plan", "purchase", "refund", "adjustment"}
    assert [g.live for g in grants if g.source == "plan"] == [True, False]
    with pytest.raises(NotFound):
        account_grants(env.db, 9_999)


def test_ledger_balance_after_is_the_running_sum(env: Env) -> None:
    aid, _ = busy_account(env)
    # Another account's entries interleave by id and must not leak into the sums.
    other = env.account("Other", "other@x.test", plan="pro", billing_day=3,
                        at=datetime(2026, 2, 1, tzinfo=UTC))
    env.charge(other, datetime(2026, 3, 1, tzinfo=UTC), credits=7)
    env.charge(aid, datetime(2026, 3, 21, tzinfo=UTC), credits=3)
    roll_periods(env.db, env.admin, until=datetime(2026, 5, 2, tzinfo=UTC))

    def raw(session: Any) -> list[tuple[Any, ...]]:
        staff = {s.id: s.display_name for s in session.scalars(select(Staff))}
        grants = {g.id: g.source for g in session.scalars(select(CreditGrant))}
        return [
            (e.id, e.created_at, e.kind, e.delta, e.grant_id, grants[e.grant_id], e.charge_id,
             staff[e.actor_id], e.reason, e.reference, e.operation_id)
            for e in session.scalars(select(LedgerEntry).where(LedgerEntry.account_id == aid)
                                     .order_by(LedgerEntry.id))
        ]

    entries = env.db.read(raw)
    running, want = 0, []
    for e in entries:
        running += e[3]
        want.append((*e, running))
    want.reverse()
    assert len(want) > 12
    for limit in (4, 5, 100):
        got: list[tuple[Any, ...]] = []
        page = ledger_page(env.db, aid, limit=limit)
        while True:
            got.extend(
                (r.id, r.created_at, r.kind, r.delta, r.grant_id, r.grant_source, r.charge_id,
                 r.actor, r.reason, r.reference, r.operation_id, r.balance_after)
                for r in page.rows
            )
            if page.next_cursor is None:
                break
            page = ledger_page(env.db, aid, after=page.next_cursor, limit=limit)
        assert got == want, limit
    assert {r[7] for r in want} >= {"Sam Support", "Fay Finance", "Ad platform"}
    account = env.db.read(lambda s: s.get(Account, aid))
    assert account is not None
    # After the roll the ledger total is exactly the cached balances.
    assert want[0][-1] == (account.plan_balance + account.purchased_balance
                           + account.refund_balance)
    with pytest.raises(NotFound):
        ledger_page(env.db, 9_999)
    with pytest.raises(InvalidInput):
        ledger_page(env.db, aid, after=Cursor(("charges", T0, 1)))


def test_charges_page_filters_and_keyset(env: Env) -> None:
    aid = env.account("Acme Ads", "ops@acme.test", plan="agency", billing_day=10)
    other = env.account("Other", "other@x.test", plan="agency", billing_day=10)
    same_time = T0 + timedelta(days=2)
    ids = []
    for i in range(14):
        # Groups of three at the same instant: the id must break the tie.
        at = same_time + timedelta(hours=i // 3)
        feature = ["ad_image", "url_brief", "video_script"][i % 3]
        status = "failed" if i % 4 == 0 else "succeeded"
        ids.append(env.charge(aid, at, feature=feature, status=status,
                              model="flux-fast" if i == 5 else None))
        env.charge(other, at, feature=feature)
    env.refund(aid, ids[0], T0 + timedelta(days=5))
    env.refund(aid, ids[4], T0 + timedelta(days=6))
    env.refund(aid, ids[7], T0 + timedelta(days=6), actor=env.admin)  # a succeeded charge

    def raw(session: Any) -> list[tuple[Any, ...]]:
        refunds = {r.charge_id: r for r in session.scalars(select(Refund))}
        out = []
        for c in session.scalars(select(UsageCharge).where(UsageCharge.account_id == aid)):
            r = refunds.get(c.id)
            out.append((c.id, c.external_id, c.occurred_at, c.feature_code, c.model, c.credits,
                        c.status, c.failure_reason, r.credits if r else None,
                        r.id if r else None, r.created_at if r else None))
        return sorted(out, key=lambda c: (c[2], c[0]), reverse=True)

    charges = env.db.read(raw)
    db_names: dict[str, str] = env.db.read(
        lambda s: dict(s.execute(text("SELECT code, name FROM features")).all())
    )
    mid = same_time + timedelta(hours=1)
    cases: list[tuple[dict[str, Any], Callable[[tuple[Any, ...]], bool]]] = [
        ({}, lambda c: True),
        ({"feature": "url_brief"}, lambda c: c[3] == "url_brief"),
        ({"status": "failed"}, lambda c: c[6] == "failed"),
        ({"status": "succeeded", "feature": "ad_image"},
         lambda c: c[6] == "succeeded" and c[3] == "ad_image"),
        ({"start": mid}, lambda c: c[2] >= mid),
        ({"end": mid}, lambda c: c[2] < mid),
        ({"start": mid, "end": mid + timedelta(hours=2)},
         lambda c: mid <= c[2] < mid + timedelta(hours=2)),
        ({"refunded": True}, lambda c: c[9] is not None),
        ({"refunded": False}, lambda c: c[9] is None),
        ({"refunded": False, "status": "failed"}, lambda c: c[9] is None and c[6] == "failed"),
        ({"feature": "asset_tagging"}, lambda c: False),
    ]
    for filters, keep in cases:
        want = [c for c in charges if keep(c)]
        got: list[tuple[Any, ...]] = []
        page = charges_page(env.db, aid, limit=3, **filters)
        while True:
            assert len(page.rows) <= 3
            for r in page.rows:
                assert r.feature_name == db_names[r.feature_code]
                got.append((r.id, r.external_id, r.occurred_at, r.feature_code, r.model,
                            r.credits, r.status, r.failure_reason, r.refunded_credits,
                            r.refund_id, r.refunded_at))
            if page.next_cursor is None:
                break
            page = charges_page(env.db, aid, limit=3, after=page.next_cursor, **filters)
        assert got == want, filters
    assert sum(1 for c in charges if c[8] is not None) == 3
    one = charges_page(env.db, aid, limit=14)
    assert len(one.rows) == 14 and one.next_cursor is None
    with pytest.raises(InvalidInput):
        charges_page(env.db, aid, status="pending")
    with pytest.raises(InvalidInput):
        charges_page(env.db, aid, start=datetime(2026, 1, 1))
    with pytest.raises(NotFound):
        charges_page(env.db, 9_999)


# -- across accounts ------------------------------------------------------------------


def test_usage_totals_equal_a_plain_sum_of_the_charges(env: Env) -> None:
    a = env.account("A", "a@x.test", plan="agency", billing_day=1,
                    at=datetime(2026, 2, 1, tzinfo=UTC))
    b = env.account("B", "b@x.test", plan="agency", billing_day=15,
                    at=datetime(2026, 2, 1, tzinfo=UTC))
    # Around midnight, a Sunday/Monday (1-2 March 2026), and month ends.
    times = [
        datetime(2026, 2, 27, 23, 59, 59, 999_999, tzinfo=UTC),
        datetime(2026, 2, 28, 0, 0, tzinfo=UTC),
        datetime(2026, 2, 28, 23, 59, 59, tzinfo=UTC),
        datetime(2026, 3, 1, 12, tzinfo=UTC),
        datetime(2026, 3, 1, 23, 59, 59, tzinfo=UTC),
        datetime(2026, 3, 2, 0, 0, tzinfo=UTC),
        datetime(2026, 3, 8, 9, tzinfo=UTC),
        datetime(2026, 3, 9, 9, tzinfo=UTC),
        datetime(2026, 3, 31, 23, 0, tzinfo=UTC),
        datetime(2026, 4, 1, 1, 0, tzinfo=UTC),
    ]
    charge_ids = []
    for i, at in enumerate(times):
        for account in (a, b):
            status = "failed" if (i + account) % 3 == 0 else "succeeded"
            feature = ["ad_image", "url_brief", "review_mining"][(i + account) % 3]
            charge_ids.append((account, env.charge(account, at, feature=feature,
                                                   status=status)))
    refund_at = datetime(2026, 4, 5, tzinfo=UTC)
    failed = env.db.read(lambda s: list(s.scalars(
        select(UsageCharge.id).where(UsageCharge.status == "failed"))))
    for account, cid in charge_ids:
        if cid in failed[::2]:
            env.refund(account, cid, refund_at)
    # A refunded charge that did not fail counts in refunded_credits too.
    succeeded = next((acc, cid) for acc, cid in charge_ids if cid not in failed)
    env.refund(*succeeded, refund_at, actor=env.admin)

    def raw(session: Any) -> list[tuple[Any, ...]]:
        refunds = {r.charge_id: r.credits for r in session.scalars(select(Refund))}
        return [(c.account_id, c.occurred_at, c.feature_code, c.credits, c.status,
                 refunds.get(c.id, 0))
                for c in session.scalars(select(UsageCharge))]

    charges = env.db.read(raw)
    assert any(r for *_, r in charges if r) and any(s == "failed" for *_, s, _ in charges)

    def plain(start: datetime, end: datetime, granularity: str,
              account_id: int | None) -> list[tuple[Any, ...]]:
        sums: dict[tuple[date, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
        for acc, at, feature, credits, status, refunded in charges:
            if not start <= at < end or (account_id is not None and acc != account_id):
                continue
            day = at.astimezone(UTC).date()
            if granularity == "week":
                day -= timedelta(days=day.weekday())
            elif granularity == "month":
                day = day.replace(day=1)
            s = sums[(day, feature)]
            s[0] += credits
            s[1] += 1
            s[2] += credits if status == "failed" else 0
            s[3] += refunded
        return [(k[0], k[1], *v) for k, v in sorted(sums.items())]

    ranges = [
        (datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 5, 1, tzinfo=UTC)),
        # Start inclusive and end exclusive, both exactly on a charge.
        (times[1], times[5]),
        (times[0], times[0] + timedelta(microseconds=1)),
    ]
    for start, end in ranges:
        for granularity in ("day", "week", "month"):
            for account_id in (None, a, b):
                got = [
                    (u.start, u.feature_code, u.credits, u.charges, u.failed_credits,
                     u.refunded_credits)
                    for u in usage_totals(env.db, start=start, end=end,
                                          granularity=granularity, account_id=account_id)
                ]
                assert got == plain(start, end, granularity, account_id), (
                    start, end, granularity, account_id)
    weeks = {u.start for u in usage_totals(env.db, start=ranges[0][0], end=ranges[0][1],
                                           granularity="week")}
    assert weeks == {date(2026, 2, 23), date(2026, 3, 2), date(2026, 3, 9), date(2026, 3, 30)}
    assert usage_totals(env.db, start=times[5], end=times[1]) == []
    with pytest.raises(InvalidInput):
        usage_totals(env.db, start=times[0], end=times[5], granularity="year")
    with pytest.raises(InvalidInput):
        usage_totals(env.db, start=datetime(2026, 1, 1), end=times[5])


def test_unrefunded_failures_leaves_out_refunded_and_free_ones(env: Env) -> None:
    a = env.account("Acme Ads", "ops@acme.test", plan="agency", billing_day=10)
    b = env.account("Beta Shop", "hi@beta.test", plan="agency", billing_day=10)
    t = T0 + timedelta(days=1)
    refunded = env.charge(a, t, status="failed")
    open_a = env.charge(a, t + timedelta(hours=1), status="failed", model="flux-fast",
                        reason="model overloaded")
    env.charge(a, t + timedelta(hours=2), status="failed", credits=0)  # cost nothing
    env.charge(a, t + timedelta(hours=3))  # succeeded
    reversed_ = env.charge(a, t + timedelta(hours=4), status="failed")
    open_b = env.charge(b, t + timedelta(hours=4), status="failed", feature="url_brief")
    tie_b = env.charge(b, t + timedelta(hours=4), status="failed", feature="url_brief")
    env.refund(a, refunded, t + timedelta(days=1))
    refund_id = env.refund(a, reversed_, t + timedelta(days=1))
    # A reversed refund still counts as the charge's one refund.
    reverse(env.db, env.finance, refund_id=refund_id, reason="refunded by mistake",
            reference="#2", idempotency_key=env.key(), at=t + timedelta(days=2))

    def collect(feature: str | None, limit: int) -> list[int]:
        got: list[int] = []
        page: Page[Any] = unrefunded_failures(env.db, feature=feature, limit=limit)
        while True:
            got.extend(r.charge_id for r in page.rows)
            if page.next_cursor is None:
                return got
            page = unrefunded_failures(env.db, feature=feature, after=page.next_cursor,
                                       limit=limit)

    for limit in (1, 2, 100):
        assert collect(None, limit) == [tie_b, open_b, open_a]
        assert collect("url_brief", limit) == [tie_b, open_b]
    assert collect("radar_analysis", 5) == []
    row = unrefunded_failures(env.db, limit=100).rows[-1]
    assert (row.charge_id, row.account_id, row.account_name, row.occurred_at, row.feature_code,
            row.model, row.credits, row.failure_reason) == (
        open_a, a, "Acme Ads", t + timedelta(hours=1), "ad_image", "flux-fast", 25,
        "model overloaded")
    # The per-account count agrees with the list.
    rows = expected_rows(env.db, AT)
    assert (rows[a].unrefunded_failed, rows[b].unrefunded_failed) == (1, 2)


# -- the catalogue as choice lists --------------------------------------------------


def test_list_plans_reads_every_plan_smallest_allotment_first(env: Env) -> None:
    from credits_desktop.services.catalog import PlanChoice, list_plans

    # A retired plan, one cheaper than every standard plan, and an allotment tie.
    env.sql(text("INSERT INTO plans (code, name, monthly_allotment, active) VALUES "
                 "('legacy', 'Legacy', 2000, false), ('trial', 'trial', 0, true)"))
    raw = env.db.read(lambda s: [tuple(r) for r in s.execute(
        text("SELECT code, name, monthly_allotment FROM plans"))])
    assert len(raw) == 6
    expected = [PlanChoice(code, name, allotment)
                for code, name, allotment in sorted(raw, key=lambda r: (r[2], r[0]))]
    assert list_plans(env.db) == expected
    assert [p.code for p in list_plans(env.db)] == [
        "trial", "starter", "growth", "legacy", "pro", "agency"]


def test_list_features_reads_the_table_switched_off_ones_too(env: Env) -> None:
    from credits_desktop.services.catalog import FeatureChoice, list_features

    env.sql(text("UPDATE features SET enabled = false WHERE code = 'radar_analysis'"))
    env.sql(text("INSERT INTO features (code, name, description, enabled) VALUES "
                 "('ab_test', 'a/b test', 'Compare two ads', true)"))
    raw = env.db.read(lambda s: {r[0]: (r[1], bool(r[2])) for r in s.execute(
        text("SELECT code, name, enabled FROM features"))})
    got = list_features(env.db)
    assert {f.code: (f.name, f.enabled) for f in got} == raw
    assert len(got) == len(raw) == 8
    # By name whatever the case (byte order would put 'a/b test' after 'Video script').
    assert [f.name.casefold() for f in got] == sorted(name.casefold() for name, _ in raw.values())
    assert got[0] == FeatureChoice("ab_test", "a/b test", True)
    disabled = {f.code for f in got if not f.enabled}
    assert disabled == {"asset_tagging", "radar_analysis"}
