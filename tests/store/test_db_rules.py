"""The money rules held by PostgreSQL itself, for staff connected with their own login.

The services run unchanged as each staff login (triggers and grants of migration 0003
and ``db roles`` let every allowed operation through), and a support login with raw SQL
is refused everything the permission table forbids, with nothing written.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
from conftest import only_on
from services.factories import (
    World,
    adjust,
    approve,
    assert_invariants,
    assert_nothing_written,
    charge,
    ledger_of,
    open_world,
    refund,
    refund_id_of,
    reverse_refund,
    scalar,
)
from services.pg_logins import Login, Logins, staff_logins
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from credits_desktop.services.periods import roll_periods
from credits_desktop.services.purchases import buy_package
from credits_desktop.store.db_roles import quote, sync_roles

pytestmark = only_on("postgresql")


@pytest.fixture
def world(db_url: str) -> Iterator[World]:
    with open_world(db_url) as w:
        yield w
        assert_invariants(w.db)


@pytest.fixture
def logins(world: World, db_url: str) -> Iterator[Logins]:
    with staff_logins(world, db_url) as found:
        yield found


def as_login(w: World, login: Login) -> World:
    """``w`` seen through a login: same account and times, that login's database."""
    return replace(w, db=login.db)


def test_services_work_as_each_staff_login(world: World, logins: Logins) -> None:
    platform = as_login(world, logins.platform)
    small = charge(replace_platform(platform, logins), 40)
    big = charge(replace_platform(platform, logins), 600)
    buy_package(platform.db, logins.platform.actor, account_id=world.account_id,
                package_code="pack_500", payment_reference="PAY-9", idempotency_key="buy-9",
                at=world.at(hours=2))

    support = as_login(world, logins.support)
    assert refund(support, logins.support.actor, small.charge_id).status == "applied"
    asked = refund(support, logins.support.actor, big.charge_id)
    assert asked.status == "requested"

    finance = as_login(world, logins.finance)
    assert approve(finance, logins.finance.actor, asked.request_id).status == "applied"
    assert adjust(finance, logins.finance.actor, 300).status == "applied"
    large = adjust(finance, logins.finance.actor, 1_500)
    assert large.status == "requested"

    manager = as_login(world, logins.manager)
    assert approve(manager, logins.manager.actor, large.request_id).status == "applied"
    reversed_ = reverse_refund(manager, logins.manager.actor, refund_id_of(world, small.charge_id))
    assert reversed_.status == "applied"

    admin = as_login(world, logins.admin)
    rolled = roll_periods(admin.db, logins.admin.actor, until=world.at(days=60))
    assert rolled.grants_created >= 1
    assert_invariants(world.db, full=True)
    # Every entry carries the login that made it, or the system actor for roll-overs.
    forged = scalar(
        world.db,
        "SELECT count(*) FROM ledger_entries l JOIN staff s ON s.id = l.actor_id "
        "WHERE s.username = 'system' AND l.kind NOT IN ('plan_grant', 'plan_expiry')",
    )
    assert forged == 0
    made_by = {row.actor_id for row in ledger_of(world.db, world.account_id)}
    assert {logins.support.actor.staff_id, logins.finance.actor.staff_id,
            logins.manager.actor.staff_id, logins.platform.actor.staff_id} <= made_by


def replace_platform(w: World, logins: Logins) -> World:
    return replace(w, platform=logins.platform.actor)


@pytest.fixture
def money(world: World, logins: Logins) -> dict[str, int]:
    """A failed 40-credit charge refunded by support, a failed 520-credit charge, a
    pending request of support (refund of a charge that did not fail), one of finance
    (a large adjustment), and the ids the raw statements need."""
    platform = replace_platform(as_login(world, logins.platform), logins)
    small = charge(platform, 40)
    big = charge(platform, 520)
    support = as_login(world, logins.support)
    refund(support, logins.support.actor, small.charge_id)
    other = charge(platform, 100, status="succeeded")
    asked = refund(support, logins.support.actor, other.charge_id)
    assert asked.request_id is not None
    own = adjust(as_login(world, logins.finance), logins.finance.actor, 1_500)
    assert own.request_id is not None
    return {
        "own": own.request_id,
        "acct": world.account_id,
        "small": small.charge_id,
        "big": big.charge_id,
        "req": asked.request_id,
        "sam": logins.support.actor.staff_id,
        "ada": logins.admin.actor.staff_id,
        "fay": logins.finance.actor.staff_id,
    }


OP = ("INSERT INTO operations (idempotency_key, fingerprint, kind, actor_id, account_id, "
      "reason, created_at, result) VALUES ('raw-' || gen_random_uuid(), 'x', '{kind}', "
      ":ada, :acct, 'raw', now(), '{{}}') RETURNING id")

# What a support login must not do with raw SQL: (what, statements run in one transaction).
FORBIDDEN: dict[str, list[str]] = {
    "adjust purchased credits": [
        f"WITH op AS ({OP.format(kind='adjustment')}) INSERT INTO adjustments "
        "(account_id, delta, reason_code, operation_id, created_at) "
        "SELECT :acct, 100, 'manual_sale', id, now() FROM op",
    ],
    "add purchased credits with a bare ledger entry": [
        f"WITH op AS ({OP.format(kind='adjustment')}), g AS (INSERT INTO credit_grants "
        "(account_id, source, granted, remaining, created_at) VALUES "
        "(:acct, 'adjustment', 100, 0, now()) RETURNING id) "
        "INSERT INTO ledger_entries (account_id, grant_id, kind, delta, operation_id, "
        "actor_id, reason, created_at) SELECT :acct, g.id, 'adjustment', 100, op.id, :sam, "
        "'raw', now() FROM op, g",
    ],
    "refund above the limit": [
        f"WITH op AS ({OP.format(kind='refund')}) INSERT INTO refunds (charge_id, account_id, "
        "credits, reason_code, operation_id, created_at) "
        "SELECT :big, :acct, 520, 'failed_generation', id, now() FROM op",
    ],
    "refund a charge twice": [
        f"WITH op AS ({OP.format(kind='refund')}) INSERT INTO refunds (charge_id, account_id, "
        "credits, reason_code, operation_id, created_at) "
        "SELECT :small, :acct, 40, 'failed_generation', id, now() FROM op",
    ],
    "refund credits without a refund row": [
        f"WITH op AS ({OP.format(kind='refund')}), g AS (INSERT INTO credit_grants "
        "(account_id, source, granted, remaining, created_at) VALUES "
        "(:acct, 'refund', 40, 0, now()) RETURNING id) "
        "INSERT INTO ledger_entries (account_id, grant_id, kind, delta, charge_id, "
        "operation_id, actor_id, reason, created_at) SELECT :acct, g.id, 'refund', 40, :big, "
        "op.id, :sam, 'raw', now() FROM op, g",
        "UPDATE credit_grants SET remaining = 40 WHERE source = 'refund' AND remaining = 0 "
        "AND account_id = :acct",
        "UPDATE accounts SET refund_balance = refund_balance + 40 WHERE id = :acct",
    ],
    "approve its own request": [
        "UPDATE approval_requests SET status = 'approved', decided_by = :fay, "
        "decided_at = now() WHERE id = :req",
    ],
    "drive a balance negative": [
        "UPDATE accounts SET purchased_balance = -1 WHERE id = :acct",
    ],
    "bump a grant's remaining by hand": [
        "UPDATE credit_grants SET remaining = remaining + 1 WHERE account_id = :acct "
        "AND source = 'plan' AND remaining < granted",
        "UPDATE accounts SET plan_balance = plan_balance + 1 WHERE id = :acct",
    ],
    "mint plan credits for a made-up period": [
        "INSERT INTO credit_grants (account_id, source, granted, remaining, created_at, "
        "expires_at, period_start) VALUES (:acct, 'plan', 500, 0, now(), "
        "'2031-01-01', '2030-12-01')",
    ],
    "update a ledger entry": ["UPDATE ledger_entries SET delta = delta * 10"],
    "delete a ledger entry": ["DELETE FROM ledger_entries"],
    "update a refund": ["UPDATE refunds SET credits = credits + 1"],
    "delete a refund": ["DELETE FROM refunds"],
    "update an audit event": ["UPDATE audit_events SET detail = 'nothing happened'"],
    "delete an audit event": ["DELETE FROM audit_events"],
    "truncate the ledger": ["TRUNCATE ledger_entries CASCADE"],
    "rewrite an operation's reason": ["UPDATE operations SET reason = 'x'"],
    "record usage": [
        "INSERT INTO usage_charges (external_id, account_id, feature_code, credits, status, "
        "occurred_at) VALUES ('raw', :acct, 'ad_image', 1, 'succeeded', now())",
    ],
    "change the limits": [
        "INSERT INTO settings (key, value) VALUES ('limits', '{\"refund_limit\": 99999}')",
    ],
    "make itself an admin": ["UPDATE staff SET role = 'admin' WHERE id = :sam"],
}


# What a finance login, which holds the INSERT privileges, must not do: the triggers refuse.
FINANCE_FORBIDDEN: dict[str, list[str]] = {
    "adjust above the limit": [FORBIDDEN["adjust purchased credits"][0].replace("100", "1500")],
    "approve its own request": [
        "UPDATE approval_requests SET status = 'approved' WHERE id = :own",
    ],
    "refund above the limit": FORBIDDEN["refund above the limit"],
    "take a request without deciding it": [
        "UPDATE approval_requests SET decided_at = now() WHERE id = :req",
    ],
    "record a request as someone else's decision": [
        "UPDATE approval_requests SET status = 'rejected', decided_by = :ada WHERE id = :own",
    ],
}
# The reason each attempt is refused: the database's own words.
DENIED = "permission denied for table"
WHY = {
    "adjust purchased credits": DENIED,
    "add purchased credits with a bare ledger entry": "needs the finance or admin role",
    "refund above the limit": "Refunds above 500 credits need approval",
    "refund a charge twice": "uq_refunds_charge_id",
    "refund credits without a refund row": "where the refund row says",
    "approve its own request": "Approving requests needs the finance, manager or admin role",
    "drive a balance negative": "ck_accounts_balances_not_negative",
    "bump a grant's remaining by hand": "credits only move with a ledger entry",
    "mint plan credits for a made-up period": "only for the account's current period",
    **{what: DENIED for what in (
        "update a ledger entry", "delete a ledger entry", "update a refund", "delete a refund",
        "update an audit event", "delete an audit event", "truncate the ledger",
        "rewrite an operation's reason", "record usage", "change the limits",
        "make itself an admin")},
    "finance: adjust above the limit": "Adjustments above 1000 credits need approval",
    "finance: approve its own request": "You cannot approve your own request",
    "finance: refund above the limit": "Refunds above 500 credits need approval",
    "finance: take a request without deciding it": "was taken without being decided",
    "finance: record a request as someone else's decision": "cannot approve your own request",
}
CASES = [("support", w) for w in FORBIDDEN] + [("finance", w) for w in FINANCE_FORBIDDEN]


@pytest.mark.parametrize(("role", "what"), CASES)
def test_login_cannot_with_raw_sql(
    role: str, what: str, world: World, logins: Logins, money: dict[str, int]
) -> None:
    statements = (FORBIDDEN if role == "support" else FINANCE_FORBIDDEN)[what]
    audits = scalar(world.db, "SELECT count(*) FROM audit_events")
    with (assert_nothing_written(world.db), pytest.raises(DBAPIError) as refused,
          logins.of(role).db.engine.begin() as conn):
        for statement in statements:
            conn.execute(text(statement), money)
    assert scalar(world.db, "SELECT count(*) FROM audit_events") == audits
    # Refused by a privilege, a trigger or a constraint: never a syntax slip of the test.
    assert WHY[what if role == "support" else f"finance: {what}"] in str(refused.value.orig)
    assert refused.value.orig is not None
    assert getattr(refused.value.orig, "sqlstate", "")[:2] in {"42", "23"}, refused.value
    assert getattr(refused.value.orig, "sqlstate", "") not in {"42601", "42703", "42P01"}


def test_actor_is_the_login_whatever_the_client_sends(
    world: World, logins: Logins, money: dict[str, int]
) -> None:
    with logins.support.db.engine.begin() as conn:
        conn.execute(text("INSERT INTO audit_events (at, actor_id, action, outcome, detail) "
                          "VALUES (now(), :ada, 'sign_in', 'applied', 'forged')"), money)
        forging = OP.format(kind="note").replace("RETURNING id", "RETURNING actor_id")
        op_actor = conn.scalar(text(forging), money)
    assert op_actor == money["sam"]
    forged = scalar(world.db, "SELECT actor_id FROM audit_events WHERE detail = 'forged'")
    assert forged == money["sam"]


def test_finance_cannot_decide_or_apply_beyond_a_request(
    world: World, logins: Logins, money: dict[str, int]
) -> None:
    """An approver taking a request can apply only what it asked, and must close it."""
    with (assert_nothing_written(world.db), pytest.raises(DBAPIError),
          logins.finance.db.engine.begin() as conn):
        conn.execute(text("UPDATE approval_requests SET decided_by = :fay WHERE id = :req"),
                     money)
    approve(as_login(world, logins.finance), logins.finance.actor, money["req"])


def test_deactivated_staff_lose_their_login(world: World, logins: Logins) -> None:
    username = logins.support.actor.username
    with world.db.engine.begin() as conn:
        conn.execute(text("UPDATE staff SET active = false WHERE username = :u"),
                     {"u": username})
    report = sync_roles(world.db.engine, prefix=logins.prefix, usernames=[username])
    assert report.logins_disabled == [username]
    assert scalar(world.db, "SELECT rolcanlogin FROM pg_roles WHERE rolname = :u",
                  u=username) is False
    with pytest.raises(DBAPIError), logins.support.db.engine.connect() as conn:
        conn.execute(text("SELECT 1"))


def test_roles_refresh_is_idempotent_and_moves_a_login_between_groups(
    world: World, logins: Logins
) -> None:
    username = logins.support.actor.username
    with world.db.engine.begin() as conn:
        conn.execute(text("UPDATE staff SET role = 'finance' WHERE username = :u"),
                     {"u": username})
    sync_roles(world.db.engine, prefix=logins.prefix, usernames=[username])
    report = sync_roles(world.db.engine, prefix=logins.prefix, usernames=[username])
    assert report.groups_created == [] and report.logins_updated == [username]
    groups = scalar(
        world.db,
        "SELECT string_agg(g.rolname, ',') FROM pg_auth_members m "
        "JOIN pg_roles g ON g.oid = m.roleid JOIN pg_roles u ON u.oid = m.member "
        "WHERE u.rolname = :u", u=username)
    assert groups == f"{logins.prefix}finance"
    assert quote(username) == f'"{username}"'


def test_db_roles_command(world: World, logins: Logins, db_url: str,
                          capsys: pytest.CaptureFixture[str]) -> None:
    from credits_desktop.cli import main

    assert main(["--db", db_url, "db", "roles", "--prefix", logins.prefix]) == 0
    out = capsys.readouterr().out
    assert "brought up to date" in out and logins.support.actor.username in out
    assert "system," not in out
    # The login still works for what support may do.
    assert logins.support.sql("SELECT count(*) FROM accounts") == [(1,)]
