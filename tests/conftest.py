"""Shared fixtures: every database test runs once on SQLite and once on PostgreSQL.

``db_url`` gives each test the address of a database just as migrating an empty
one to head leaves it: the schema plus the reference rows the migrations seed
(system actor, AI features), and no customer data.

* SQLite: the schema is migrated once per session into a template file, which is
  copied for each test (a file copy is far cheaper than running the migration).
* PostgreSQL: a throw-away database ``credits_test_<pid>`` is created and migrated
  once per session, reset before each test (DELETE from every table, then the
  seeded rows put back) and dropped at the end. The server comes from
  ``CREDITS_DESK_TEST_PG``. When it cannot be reached the PostgreSQL half is skipped
  locally, but fails under CI (``CI=true``) or with ``CREDITS_DESK_REQUIRE_PG=1``, so
  a broken CI database cannot pass unnoticed.
"""

from __future__ import annotations

import os
from contextlib import contextmanager

# Before anything imports Qt: tests must never need a display.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest
from sqlalchemy import Engine, column, inspect, select, table, text
from sqlalchemy.engine import URL
from sqlalchemy.sql.expression import TableClause

from credits_desktop.store.engine import make_engine, parse_url
from credits_desktop.store.schema import upgrade

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
DIALECTS = ["sqlite", "postgresql"]


def pg_required() -> bool:
    """Whether an unreachable PostgreSQL must fail the run instead of skipping."""
    return (
        os.environ.get("CI", "").lower() == "true"
        or os.environ.get("CREDITS_DESK_REQUIRE_PG") == "1"
    )


def pg_server_url() -> URL:
    # Through parse_url so that a plain postgresql:// address gets the psycopg driver.
    return parse_url(os.environ.get("CREDITS_DESK_TEST_PG", DEFAULT_PG_URL))


def pg_unavailable(reason: str) -> NoReturn:
    message = f"PostgreSQL at {pg_server_url().render_as_string(hide_password=True)}: {reason}"
    if pg_required():
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to head, copied by ``db_url`` for each test."""
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    try:
        upgrade(engine)
        # Fold the WAL back into the main file so that copying that file alone is
        # enough. On the raw driver connection: a checkpoint cannot run inside the
        # transaction SQLAlchemy would open.
        raw = engine.raw_connection()
        try:
            raw.cursor().execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            raw.close()
    finally:
        engine.dispose()
    return path


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[Engine]:
    """An autocommit engine on the server's maintenance database, for CREATE/DROP
    DATABASE (which cannot run in a transaction). Skips or fails if unreachable."""
    admin = make_engine(pg_server_url(), pool_size=1).execution_options(
        isolation_level="AUTOCOMMIT"
    )
    try:
        with admin.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        admin.dispose()
        # The driver's own message, first line: "connection refused", "no such user"…
        detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        pg_unavailable(f"server not reachable: {detail}")
    yield admin
    admin.dispose()


def create_pg_database(admin: Engine, name: str) -> str:
    """Create an empty database (replacing a leftover of the same name); return its URL."""
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
        # Throw-away data: commits need not wait for the disk (visibility and
        # locking are unchanged; only crash durability is given up).
        conn.execute(text(f'ALTER DATABASE "{name}" SET synchronous_commit = off'))
    return pg_server_url().set(database=name).render_as_string(hide_password=False)


def drop_pg_database(admin: Engine, name: str) -> None:
    # FORCE: engines a failed test did not dispose must not keep the database alive.
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


class PgBaseline:
    """What a freshly migrated PostgreSQL database holds, to return to before each test.

    Every table is emptied with DELETE, children first, in one round trip: on the
    few rows a test writes that takes milliseconds, where TRUNCATE of every table
    took about half a second per test. The migrations seed reference rows (the
    system actor, the AI features), so those are put back, and every sequence is
    set back to where the migration left it.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        # Kept for the session: one connection instead of one per test.
        self.engine = make_engine(url, pool_size=1)
        inspector = inspect(self.engine)
        # Parents before children, so the reference rows can be inserted back.
        names = [
            name
            for name, _ in inspector.get_sorted_table_and_fkc_names()
            if name is not None and name != "alembic_version"
        ]
        self.empty_tables = "; ".join(f'DELETE FROM "{n}"' for n in reversed(names))
        self.rows: list[tuple[TableClause, list[dict[str, Any]]]] = []
        with self.engine.connect() as conn:
            for name in names:
                tbl = table(name, *(column(c["name"]) for c in inspector.get_columns(name)))
                rows = [dict(r) for r in conn.execute(select(tbl)).mappings()]
                if rows:
                    self.rows.append((tbl, rows))
            # last_value is NULL for a sequence that has not handed out a value yet:
            # such a sequence goes back to handing out 1 next.
            sequences = conn.execute(
                text("SELECT format('%I.%I', schemaname, sequencename), last_value"
                     " FROM pg_sequences")
            ).all()
        self.rewind_sequences = "; ".join(
            f"SELECT setval('{seq}', {value or 1}, {'true' if value else 'false'})"
            for seq, value in sequences
        )

    def restore(self) -> None:
        with self.engine.begin() as conn:
            # An engine an earlier test left in a transaction would block the reset
            # for ever: fail that test's successor loudly instead.
            conn.exec_driver_sql("SET LOCAL lock_timeout = '10s'")
            conn.exec_driver_sql(self.empty_tables)
            for tbl, rows in self.rows:
                conn.execute(tbl.insert(), rows)
            if self.rewind_sequences:
                conn.exec_driver_sql(self.rewind_sequences)

    def close(self) -> None:
        self.engine.dispose()


@contextmanager
def migrated_pg_database(admin: Engine, suffix: str = "") -> Iterator[str]:
    """A new PostgreSQL database of this test process, migrated to head; dropped after."""
    name = f"credits_test_{os.getpid()}{suffix}"
    url = create_pg_database(admin, name)
    try:
        engine = make_engine(url, pool_size=1)
        try:
            upgrade(engine)
        finally:
            engine.dispose()
        yield url
    finally:
        drop_pg_database(admin, name)


@pytest.fixture(scope="session")
def pg_database(pg_admin: Engine) -> Iterator[PgBaseline]:
    """The session's PostgreSQL database, migrated to head once."""
    with migrated_pg_database(pg_admin) as url:
        baseline = PgBaseline(url)
        yield baseline
        baseline.close()


@pytest.fixture(params=DIALECTS, ids=DIALECTS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The address of a database just as migration to head leaves it (no customer
    data; only the reference rows the migrations seed), fresh for this test.

    A test about one dialect only narrows it with ``only_on("sqlite")`` rather than
    skipping the other: a skipped PostgreSQL test counts as a failure in CI.
    """
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "credits.db"
        shutil.copyfile(template, path)
        return f"sqlite:///{path}"
    baseline: PgBaseline = request.getfixturevalue("pg_database")
    baseline.restore()
    return baseline.url


def only_on(dialect: str) -> pytest.MarkDecorator:
    """Run a ``db_url`` test on one dialect only (a behaviour that only it has)."""
    assert dialect in DIALECTS
    return pytest.mark.parametrize("db_url", [dialect], indirect=True, ids=[dialect])


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    try:
        yield eng
    finally:
        eng.dispose()


# Passed tests per dialect, counted from the reports themselves so the CI check
# does not depend on the terminal reporter being active.
_passed = {"postgresql": 0, "sqlite": 0}
_skipped_pg: list[str] = []


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def _pg_missing_in_ci(config: pytest.Config) -> bool:
    """Under CI, PostgreSQL coverage must be whole: no test of it skipped, some passed."""
    return (
        _in_ci()
        and (_passed["postgresql"] == 0 or bool(_skipped_pg))
        and not config.option.collectonly
    )


def _dialect_of(nodeid: str) -> str | None:
    for dialect in DIALECTS:
        # The dialect id may be combined with other parameters: [sqlite-x], [x-sqlite].
        if re.search(rf"[\[-]{dialect}[\]-]", nodeid):
            return dialect
    return None


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    dialect = _dialect_of(report.nodeid)
    if dialect is None:
        return
    if report.when == "call" and report.passed:
        _passed[dialect] += 1
    elif report.skipped and dialect == "postgresql":
        _skipped_pg.append(report.nodeid)


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config
) -> None:
    terminalreporter.write_line(
        f"postgresql tests passed: {_passed['postgresql']}, "
        f"sqlite tests passed: {_passed['sqlite']}"
    )
    if _pg_missing_in_ci(config):
        why = (
            f"{len(_skipped_pg)} PostgreSQL test(s) were skipped (first: {_skipped_pg[0]})"
            if _skipped_pg
            else "no PostgreSQL test passed"
        )
        terminalreporter.write_line(
            f"FAILED: CI=true but {why}, so the run fails.", red=True, bold=True
        )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # Under CI a run where PostgreSQL tests did not all run is a failure even when
    # nothing else failed: otherwise a missing server would quietly halve the coverage.
    # With pytest-xdist only the controller, which hears every worker's reports, judges.
    if hasattr(session.config, "workerinput"):
        return
    if _pg_missing_in_ci(session.config) and session.exitstatus == 0:
        session.exitstatus = 1
