"""Schema revisions: upgrade a database, and tell where it stands.

Alembic is driven programmatically so the bundle needs no ``alembic.ini`` on disk
beside the executable. It is imported only to upgrade: telling where a database
stands needs only the ``alembic_version`` row and the revision ids written at the
top of each migration file, and importing Alembic (with Mako and Pygments) cost a
tenth of a second of every start-up. A test checks that this reading of the
migration files agrees with Alembic's own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, inspect, text

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).with_name("migrations")

_ASSIGNMENT = re.compile(
    r"^(revision|down_revision)\s*(?::[^=]*)?=\s*(?:None|[\"']([^\"']+)[\"'])\s*$",
    re.MULTILINE,
)


def alembic_config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def known_revisions() -> dict[str, str | None]:
    """Every revision the application's migrations hold, with the one it follows."""
    found: dict[str, str | None] = {}
    for path in sorted((MIGRATIONS / "versions").glob("*.py")):
        values = {m.group(1): m.group(2) for m in _ASSIGNMENT.finditer(path.read_text("utf-8"))}
        revision = values.get("revision")
        if revision:
            found[revision] = values.get("down_revision")
    return found


def head_revision() -> str:
    """The newest revision: the one no other revision follows."""
    revisions = known_revisions()
    followed = {down for down in revisions.values() if down is not None}
    heads = [r for r in revisions if r not in followed]
    if len(heads) != 1:
        raise RuntimeError(f"The migrations must form one line; heads found: {heads}.")
    return heads[0]


@dataclass(frozen=True)
class SchemaState:
    current: str | None
    head: str

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head

    @property
    def empty(self) -> bool:
        return self.current is None

    @property
    def newer_than_application(self) -> bool:
        if self.current is None or self.current == self.head:
            return False
        return self.current not in known_revisions()


def schema_state(engine: Engine) -> SchemaState:
    with engine.connect() as conn:
        current = None
        if inspect(conn).has_table("alembic_version"):
            current = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    return SchemaState(current=current, head=head_revision())


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate the database to ``revision`` in one transaction."""
    from alembic import command

    config = alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, revision)
