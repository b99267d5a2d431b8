"""PostgreSQL group roles, staff logins and grants (``credits-desktop db roles``).

Every staff member connects with a login role of the same name as their ``staff.username``
(``services.accounts.database_login``), member of exactly one NOLOGIN group role per staff
role. The groups may read every table the screens read and write only what the services
write; the money rules themselves are triggers (migration 0003), which take the staff
member and the role from ``session_user`` and the staff table, never from a grant, so a
role change in the staff table binds at once and ``db roles`` only brings the groups and
logins in line.

This runs as the schema owner (who needs CREATEROLE), in one transaction, and can run
again at any time: it creates what is missing and corrects what drifted. It sets no
password unless asked to (``passwords``): the administrator sets them, or uses
certificate or SSO authentication in ``pg_hba.conf``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from sqlalchemy import Connection, Engine, text

from .models import Base

DEFAULT_PREFIX = "credits_"
# staff.role -> group suffix
GROUP_OF_ROLE = {
    "support": "support",
    "finance": "finance",
    "manager": "manager",
    "admin": "admin",
    "system": "platform",
}
SYSTEM_ROW = "system"
HUMANS = ("support", "finance", "manager", "admin")
EVERYONE = (*HUMANS, "platform")

_ACCOUNT_CACHE = ("plan_balance, purchased_balance, refund_balance, unrefunded_failed, "
                  "last_activity_at, change_seq, period_start, period_end")
_DECISION = "status, decided_by, decided_at, decision_comment, result_operation_id, " \
            "failure_reason"
ROLLUPS = ("usage_daily_account", "usage_daily", "refunds_daily")

# (privilege, table, groups): everything a group may do beyond SELECT. Nobody may
# UPDATE or DELETE ledger entries, refunds, adjustments, reversals or audit events,
# nobody may DELETE or TRUNCATE anything.
WRITE_GRANTS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("INSERT", "operations", EVERYONE),
    ("UPDATE (result, account_id)", "operations", EVERYONE),
    ("INSERT", "audit_events", EVERYONE),
    ("INSERT", "ledger_entries", EVERYONE),
    ("INSERT", "credit_grants", EVERYONE),
    ("UPDATE (remaining)", "credit_grants", EVERYONE),
    (f"UPDATE ({_ACCOUNT_CACHE})", "accounts", EVERYONE),
    *(("INSERT, UPDATE", t, EVERYONE) for t in ROLLUPS),
    ("INSERT", "refunds", HUMANS),
    ("INSERT", "reversals", HUMANS),
    ("INSERT", "approval_requests", HUMANS),
    # Support and the platform need the privilege to lock a request (the service locks
    # it before saying no); the trigger refuses their decision.
    (f"UPDATE ({_DECISION})", "approval_requests", EVERYONE),
    ("INSERT", "adjustments", ("finance", "manager", "admin")),
    ("INSERT", "usage_charges", ("platform",)),
    ("INSERT", "accounts", ("platform", "admin")),
    ("INSERT", "staff", ("admin",)),
    ("UPDATE (display_name, role, active)", "staff", ("admin",)),
    *(("INSERT, UPDATE", t, ("admin",))
      for t in ("settings", "plans", "credit_packages", "features", "feature_prices")),
)

# Helpers the triggers call as the connected login.
TRIGGER_HELPERS = (
    "credits_is_owner()", "credits_me()", "credits_limit(text, integer)",
    "credits_refuse(text)", "credits_my_operation(bigint, integer)",
    "credits_approving(text, integer, integer)", "credits_check_grant(bigint)",
)

_SAFE_NAME = re.compile(r"^[A-Za-z0-9._-]{1,63}$")


@dataclass
class RolesReport:
    """What ``sync_roles`` did, for the command line to print."""

    groups_created: list[str] = field(default_factory=list)
    logins_created: list[str] = field(default_factory=list)
    logins_updated: list[str] = field(default_factory=list)
    logins_disabled: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    passwords_set: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = []
        for label, names in (
            ("Group roles created", self.groups_created),
            ("Staff logins created", self.logins_created),
            ("Staff logins brought up to date", self.logins_updated),
            ("Staff logins disabled (deactivated staff)", self.logins_disabled),
            ("Passwords set", self.passwords_set),
            ("Left alone (superuser or schema owner)", self.skipped),
        ):
            if names:
                out.append(f"{label}: {', '.join(names)}.")
        return out


def group_name(prefix: str, role: str) -> str:
    return f"{prefix}{GROUP_OF_ROLE[role]}"


def quote(name: str) -> str:
    """A role name as an SQL identifier; only names a staff username may have."""
    if not _SAFE_NAME.match(name):
        raise ValueError(f"'{name}' cannot be a database login name.")
    return f'"{name}"'


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def sync_roles(
    bind: Engine | Connection,
    *,
    prefix: str = DEFAULT_PREFIX,
    password_for: Callable[[str], str | None] | None = None,
    usernames: Iterable[str] | None = None,
) -> RolesReport:
    """Create or refresh the group roles, the grants and every staff member's login.

    ``usernames`` limits the logins touched (the tests, which share one cluster); the
    groups and grants are always brought up to date.
    """
    if isinstance(bind, Engine):
        with bind.begin() as conn:
            return sync_roles(conn, prefix=prefix, password_for=password_for,
                              usernames=usernames)
    conn = bind
    if conn.dialect.name != "postgresql":
        raise ValueError("Database roles exist on PostgreSQL only.")
    report = RolesReport()
    groups = {g: f"{prefix}{g}" for g in EVERYONE}
    for name in groups.values():
        quote(name)
        exists = conn.scalar(text("SELECT 1 FROM pg_roles WHERE rolname = :n"), {"n": name})
        if not exists:
            conn.execute(text(f"CREATE ROLE {quote(name)} NOLOGIN"))
            report.groups_created.append(name)
    _grant(conn, groups)
    _logins(conn, groups, report, password_for,
            None if usernames is None else set(usernames))
    return report


def _grant(conn: Connection, groups: dict[str, str]) -> None:
    tables = [t.name for t in Base.metadata.sorted_tables] + ["alembic_version"]
    every = ", ".join(quote(g) for g in groups.values())
    database = str(conn.scalar(text("SELECT current_database()")))
    conn.execute(text(f'GRANT CONNECT ON DATABASE "{database}" TO {every}'))
    conn.execute(text("REVOKE CREATE ON SCHEMA public FROM PUBLIC"))
    conn.execute(text(f"GRANT USAGE ON SCHEMA public TO {every}"))
    for tbl in tables:
        conn.execute(text(f"REVOKE ALL ON public.{tbl} FROM PUBLIC, {every}"))
        conn.execute(text(f"GRANT SELECT ON public.{tbl} TO {every}"))
    for privilege, tbl, which in WRITE_GRANTS:
        names = ", ".join(quote(groups[g]) for g in which)
        conn.execute(text(f"GRANT {privilege} ON public.{tbl} TO {names}"))
    conn.execute(text(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM PUBLIC, {every}"))
    conn.execute(text(f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {every}"))
    for helper in TRIGGER_HELPERS:
        conn.execute(text(f"GRANT EXECUTE ON FUNCTION public.{helper} TO {every}"))


def _logins(
    conn: Connection,
    groups: dict[str, str],
    report: RolesReport,
    password_for: Callable[[str], str | None] | None,
    only: set[str] | None,
) -> None:
    owner = conn.scalar(text(
        "SELECT pg_get_userbyid(relowner) FROM pg_class "
        "WHERE oid = 'public.ledger_entries'::regclass"))
    staff = conn.execute(text("SELECT username, role, active FROM staff ORDER BY username"))
    for username, role, active in staff.all():
        # The 'system' row is the actor of period roll-overs, not a person: no login.
        if username == SYSTEM_ROW or (only is not None and username not in only):
            continue
        found = conn.execute(
            text("SELECT rolsuper, rolcanlogin FROM pg_roles WHERE rolname = :n"),
            {"n": username},
        ).first()
        # Never demote the administrator's own roles by a staff row of the same name.
        if username == owner or (found is not None and found[0]):
            report.skipped.append(username)
            continue
        login = quote(username)
        mine = groups[GROUP_OF_ROLE[role]]
        others = [g for g in groups.values() if g != mine]
        if not active:
            if found is not None:
                conn.execute(text(f"ALTER ROLE {login} NOLOGIN"))
                conn.execute(text(
                    f"REVOKE {', '.join(quote(g) for g in groups.values())} FROM {login}"))
                report.logins_disabled.append(username)
            continue
        if found is None:
            conn.execute(text(f"CREATE ROLE {login} LOGIN"))
            report.logins_created.append(username)
        else:
            conn.execute(text(f"ALTER ROLE {login} LOGIN"))
            report.logins_updated.append(username)
        conn.execute(text(f"REVOKE {', '.join(quote(g) for g in others)} FROM {login}"))
        conn.execute(text(f"GRANT {quote(mine)} TO {login}"))
        password = password_for(username) if password_for is not None else None
        if password:
            conn.execute(text(f"ALTER ROLE {login} PASSWORD {_literal(password)}"))
            report.passwords_set.append(username)


def drop_roles(bind: Engine, names: Iterable[str]) -> None:
    """Drop roles and what they own or were granted in this database (test clean-up).

    A role with privileges in another database cannot be dropped; that is left as is.
    """
    with bind.begin() as conn:
        for name in names:
            exists = conn.scalar(text("SELECT 1 FROM pg_roles WHERE rolname = :n"), {"n": name})
            if exists:
                conn.execute(text(f"DROP OWNED BY {quote(name)}"))
                conn.execute(text(f"DROP ROLE {quote(name)}"))
