"""Which database to open, and getting it ready to use: schema and demo data.

The address comes from ``--db``, else the ``CREDITS_DESK_DB`` environment
variable, else a SQLite file in the user's data folder: the *default demo
database*, which is created, migrated and filled with demo data on first use,
and upgraded automatically when a new version of the application arrives (it
belongs to this application alone; an upgrade that adds the usage rollup also
builds it there).

A shared database is never upgraded behind its owners' backs: an outdated schema
is reported (:class:`SchemaOutdated`) unless the caller asks for the upgrade
(``upgrade_outdated``: the GUI does once staff have agreed to it), and a schema
newer than this application (a colleague runs a newer version) is refused, since
this version would not know its rules. An upgrade the database login may not make
says to ask a database administrator (:class:`UpgradeNotPermitted`). Both the GUI
and the command line come through here, and every failure is a
:class:`BootstrapError` whose ``message`` is a plain sentence without a traceback
or a password.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

import platformdirs
from sqlalchemy import func, inspect, select
from sqlalchemy.engine import URL, Engine
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from credits_desktop.services.catalog import ensure_catalog
from credits_desktop.services.errors import CreditsDeskError
from credits_desktop.store.database import Database
from credits_desktop.store.engine import ConfigurationError, parse_url, sqlite_file_of
from credits_desktop.store.models import Account
from credits_desktop.store.schema import SchemaState, schema_state, upgrade

log = logging.getLogger(__name__)

APP_NAME = "credits-desktop"
ENV_VAR = "CREDITS_DESK_DB"
DEMO_FILENAME = "credits-demo.sqlite3"

# The size of the demo data set put into the default database on first start.
# Small enough to be made in seconds on first start (about 150 charges per account
# and month, ~300,000 in all); `credits-desktop demo` makes bigger ones.
DEMO_ACCOUNTS = 350
DEMO_MONTHS = 6
DEMO_SEED = 1

Progress = Callable[[str, int, int], None]


class BootstrapError(CreditsDeskError):
    """The database cannot be opened or used as it is; ``message`` says why."""


class DatabaseUnreachable(BootstrapError):
    """The database could not be reached, or the address is unusable."""


class SchemaMissing(BootstrapError):
    """The database has no Credits Desk schema (and it was not to be created)."""


class SchemaOutdated(BootstrapError):
    """The schema is older than this application: ``credits-desktop db upgrade``."""

    def __init__(self, current: str, head: str) -> None:
        super().__init__(
            f"The database schema is at revision {current} but this version of Credits Desk "
            f"needs revision {head}; run 'credits-desktop db upgrade' to upgrade it."
        )
        self.current = current
        self.head = head


class SchemaTooNew(BootstrapError):
    """The schema was made by a newer version of the application."""

    def __init__(self, current: str, head: str) -> None:
        super().__init__(
            f"This database uses a newer layout (revision {current}): it is newer than this "
            f"version of Credits Desk, which knows revision {head}. Update Credits Desk to "
            "use this database."
        )
        self.current = current
        self.head = head


ASK_AN_ADMINISTRATOR = (
    "Ask a database administrator to upgrade this database (credits-desktop db upgrade)."
)


class UpgradeNotPermitted(BootstrapError):
    """The schema needs creating or upgrading but the login (or file) may not change it."""


def default_demo_path() -> Path:
    """Where the default demo database lives (the user's data folder)."""
    return platformdirs.user_data_path(APP_NAME, appauthor=False) / DEMO_FILENAME


def demo_url() -> str:
    """The address of the default demo database."""
    return f"sqlite:///{default_demo_path()}"


def resolve_url(cli_value: str | None) -> tuple[str, bool]:
    """The database address to use, and whether it is the default demo database.

    (The desktop application, given neither, first reopens the last connection
    chosen in it, if any: see ``credits_desktop.ui.app``.)
    """
    if cli_value is not None and cli_value.strip():
        return cli_value.strip(), False
    from_env = os.environ.get(ENV_VAR, "").strip()
    if from_env:
        return from_env, False
    return demo_url(), True


def display_url(url: str | URL) -> str:
    """An address as it may be shown or logged: never with its password."""
    try:
        parsed = parse_url(url) if isinstance(url, str) else url
    except ConfigurationError:
        return "(an unusable address)"
    return parsed.render_as_string(hide_password=True)


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite address, None for any other database."""
    try:
        parsed = parse_url(url)
    except ConfigurationError:
        return None
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    # A URI filename (sqlite:///file:/path?mode=ro&uri=true) holds the path inside it.
    return Path(sqlite_file_of(parsed))


def open_database(url: str, *, must_exist: bool = False) -> Database:
    """Open ``url`` and make sure it answers; ``must_exist`` refuses a missing SQLite file
    (SQLite would silently create an empty one, say after a typo in the path)."""
    try:
        parsed = parse_url(url)
    except ConfigurationError as exc:
        raise DatabaseUnreachable(str(exc)) from exc
    path = sqlite_path(url)
    if path is not None:
        if must_exist and not path.exists():
            raise DatabaseUnreachable(f"There is no database file at {path}.")
        if not path.parent.exists():
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise DatabaseUnreachable(
                    f"The folder {path.parent} cannot be created ({exc.strerror})."
                ) from exc
    db = Database.open(parsed)
    try:
        with db.engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except DBAPIError as exc:
        db.close()
        raise unreachable(exc, parsed) from exc
    return db


def unreachable(exc: DBAPIError, url: URL) -> DatabaseUnreachable:
    """A plain message for a database that cannot be reached (logged in full)."""
    log.info("could not open %s", url.render_as_string(hide_password=True), exc_info=exc)
    return DatabaseUnreachable(
        f"Could not open the database at {url.render_as_string(hide_password=True)}: "
        f"{driver_message(exc, url)}"
    )


def driver_message(exc: BaseException, url: URL | None = None) -> str:
    """The first line of a driver's error, with any password in it hidden."""
    detail = str(getattr(exc, "orig", None) or exc).strip()
    line = detail.splitlines()[0] if detail else type(exc).__name__
    line = " ".join(line.replace("FATAL:", "").split())
    if url is not None and url.password:
        line = line.replace(str(url.password), "***")
    return line if line.endswith(".") else line + "."


def lacks_rights(exc: DBAPIError) -> bool:
    """Whether the database refused a change for lack of rights: PostgreSQL's
    insufficient privilege (permission denied, must be owner), or a read-only SQLite
    file."""
    orig = exc.orig
    if getattr(orig, "sqlstate", None) == "42501":
        return True
    if isinstance(orig, sqlite3.Error):
        name = str(getattr(orig, "sqlite_errorname", ""))
        return name.startswith("SQLITE_READONLY") or "readonly database" in str(orig)
    return False


def _upgrade(db: Database) -> None:
    try:
        upgrade(db.engine)
    except DBAPIError as exc:
        if not lacks_rights(exc):
            raise
        log.info("no rights to upgrade %s", db.display_url(), exc_info=exc)
        raise UpgradeNotPermitted(
            f"The database at {db.display_url()} could not be upgraded: "
            f"{driver_message(exc, db.engine.url)} {ASK_AN_ADMINISTRATOR}"
        ) from exc


def check_schema(db: Database, *, upgrade_outdated: bool, create_empty: bool) -> SchemaState:
    """Bring the schema to head where allowed, else raise why it cannot be used.

    An empty database is migrated when ``create_empty``; an outdated one only when
    ``upgrade_outdated`` (the default demo database, or staff agreed to it); a newer
    one never. Returns the state found before any upgrade.
    """
    try:
        state = schema_state(db.engine)
        if state.empty:
            # A database holding someone else's tables is not an empty one.
            if inspect(db.engine).get_table_names():
                raise SchemaMissing(
                    f"The database at {db.display_url()} holds other tables but no Credits "
                    "Desk schema; use an empty database or one made by Credits Desk."
                )
            if not create_empty:
                raise SchemaMissing(
                    f"The database at {db.display_url()} has no Credits Desk schema yet; "
                    "run 'credits-desktop db upgrade' to create it."
                )
            log.info("creating the schema in %s", db.display_url())
            _upgrade(db)
        elif state.newer_than_application:
            raise SchemaTooNew(str(state.current), state.head)
        elif not state.up_to_date:
            if not upgrade_outdated:
                raise SchemaOutdated(str(state.current), state.head)
            log.info("upgrading %s from %s to %s", db.display_url(), state.current, state.head)
            _upgrade(db)
    except DBAPIError as exc:
        raise unreachable(exc, db.engine.url) from exc
    return state


def account_count(db: Database) -> int:
    return int(db.read(lambda s: s.scalar(select(func.count()).select_from(Account))) or 0)


def prepare_database(
    url: str,
    *,
    is_default_demo: bool,
    upgrade_outdated: bool | None = None,
    must_exist: bool = False,
    progress: Progress | None = None,
) -> Database:
    """Open ``url`` ready for the application (see the module docstring).

    The default demo database gets its schema and, while it has no accounts, the
    demo data set (which takes a while: ``progress`` hears of it). Any other
    database gets its schema only if it is empty, and is otherwise used as it is.
    An outdated schema is upgraded when ``upgrade_outdated`` (by default only the
    demo database's), else :class:`SchemaOutdated` is raised. ``must_exist``
    refuses a missing SQLite file instead of creating it.
    """
    if upgrade_outdated is None:
        upgrade_outdated = is_default_demo
    db = open_database(url, must_exist=must_exist)
    try:
        check_schema(db, upgrade_outdated=upgrade_outdated, create_empty=True)
        if is_default_demo and account_count(db) == 0:
            fill_demo(db, accounts=DEMO_ACCOUNTS, months=DEMO_MONTHS, seed=DEMO_SEED,
                      progress=progress)
        elif is_default_demo:
            _finish_rollup(db, progress)
        ensure_search_statistics(db.engine)
    except BaseException:
        db.close()
        raise
    return db


def ensure_search_statistics(engine: Engine) -> None:
    """Give SQLite's planner statistics for the account search, once per file.

    Without them SQLite guesses, and a two-digit id search scans the whole name
    index (150 ms on 100,000 accounts instead of 2 ms). Only the small tables are
    analysed (50 ms); a full ANALYZE of the charges would take seconds at start-up.
    PostgreSQL keeps its own statistics (autovacuum).
    """
    if engine.dialect.name != "sqlite":
        return
    try:
        with engine.begin() as conn:
            has_table = conn.exec_driver_sql(
                "SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'").first()
            known = has_table is not None and conn.exec_driver_sql(
                "SELECT 1 FROM sqlite_stat1 WHERE tbl = 'accounts'").first() is not None
            if not known:
                conn.exec_driver_sql("ANALYZE accounts")
                conn.exec_driver_sql("ANALYZE plans")
    except DBAPIError:
        # A read-only file still works, only its searches may be slower.
        log.info("could not analyse the accounts for the search planner", exc_info=True)


def _finish_rollup(db: Database, progress: Progress | None) -> None:
    """Build the usage rollup of a demo database that an upgrade gave one (it belongs to
    this application, like its upgrades; it takes seconds at the demo's size)."""
    from credits_desktop.services.rollups import build_rollups, rollup_status

    try:
        if not rollup_status(db).ready:
            build_rollups(db, progress=progress)
    except DBAPIError as exc:
        raise unreachable(exc, db.engine.url) from exc


def fill_demo(
    db: Database, *, accounts: int, months: int, seed: int, progress: Progress | None,
    usage_percent: int = 100,
) -> object:
    """Put the catalogue and the demo data set into ``db``; returns the demo's summary."""
    # Imported here: the demo generator is only needed the first time.
    try:
        from credits_desktop.services.demo import generate_demo
    except ImportError as exc:
        log.exception("the demo generator could not be loaded")
        raise BootstrapError("The demo data generator is missing from this installation.") \
            from exc

    try:
        db.write(ensure_catalog)
        return generate_demo(db, accounts=accounts, months=months, seed=seed,
                             progress=progress, usage_percent=usage_percent)
    except DBAPIError as exc:
        raise unreachable(exc, db.engine.url) from exc
    except SQLAlchemyError as exc:
        log.exception("demo data could not be written")
        raise BootstrapError(
            f"The demo data could not be written: {driver_message(exc)}"
        ) from exc
