"""Staff logins on the test PostgreSQL server, for tests that act as a staff member.

Roles are cluster-wide while each test process has its own database, so the seeded
staff (``ada``, ``sam``, ``fay``, ``max``, ``platform`` and the ``system`` actor) are
renamed with a suffix unique to this process, the group roles get a prefix unique to it,
and :func:`staff_logins` drops every role it made when the test ends.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.engine import make_url

from credits_desktop.services.book import SYSTEM_USERNAME
from credits_desktop.services.operations import Actor
from credits_desktop.store.database import Database
from credits_desktop.store.db_roles import EVERYONE, drop_roles, sync_roles

from .factories import World


@dataclass
class Login:
    """One staff member connected with their own database login."""

    actor: Actor
    db: Database
    url: str

    def sql(self, statement: str, **params: object) -> list[tuple[object, ...]]:
        """Run one raw statement in its own transaction, as this login."""
        with self.db.engine.begin() as conn:
            result = conn.execute(text(statement), params)
            return [tuple(r) for r in result] if result.returns_rows else []


@dataclass
class Logins:
    support: Login
    finance: Login
    manager: Login
    admin: Login
    platform: Login
    prefix: str

    def of(self, role: str) -> Login:
        login: Login = getattr(self, role)
        return login


SUFFIX = f"_t{os.getpid()}"
PREFIX = f"ct{os.getpid()}_"


@contextmanager
def staff_logins(world: World, db_url: str) -> Iterator[Logins]:
    """Give every staff member of ``world`` a login (renamed, see the module docstring)."""
    owner = world.db
    with owner.engine.begin() as conn:
        conn.execute(text("UPDATE staff SET username = username || :s WHERE username <> :system"),
                     {"s": SUFFIX, "system": SYSTEM_USERNAME})
        names = list(conn.scalars(text("SELECT username FROM staff WHERE username <> :system"),
                                    {"system": SYSTEM_USERNAME}))
    groups = [f"{PREFIX}{g}" for g in EVERYONE]
    drop_roles(owner.engine, [*names, *groups])
    sync_roles(owner.engine, prefix=PREFIX, usernames=names)
    opened: list[Database] = []
    try:
        logins = {}
        for role in ("support", "finance", "manager", "admin", "platform"):
            base: Actor = getattr(world, role)
            username = base.username + SUFFIX
            url = make_url(db_url).set(username=username, password=None)
            db = Database.open(url)
            opened.append(db)
            actor = Actor(base.staff_id, username, base.display_name, base.role)
            logins[role] = Login(actor, db, url.render_as_string(hide_password=False))
        yield Logins(**logins, prefix=PREFIX)
    finally:
        for db in opened:
            db.close()
        drop_roles(owner.engine, [*names, *groups])
