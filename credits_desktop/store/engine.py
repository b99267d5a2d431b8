"""Engine set-up per dialect, and the transaction runner every write goes through.

SQLite: WAL journal (readers never wait for the writer), a busy timeout, and
``BEGIN IMMEDIATE`` for write transactions so that concurrent writers queue for
the write lock up front instead of failing with "database is locked" when a
read transaction tries to upgrade. The pysqlite driver's own transaction
handling is switched off for that (SQLAlchemy's documented recipe).

PostgreSQL: READ COMMITTED with row locks taken by the services
(``SELECT … FOR UPDATE`` on accounts in id order); deadlocks and serialization
failures (SQLSTATE 40P01/40001) are retried, and so is a transaction whose
connection was lost (a server restart, a terminated session): the idempotency key
makes that safe. Dead pooled connections are replaced on checkout (``pool_pre_ping``).

:func:`refusal_message` words the two refusals that are not faults of the
application and that staff can act on: a database busy for longer than the busy
timeout, and one that may only be read.
"""

from __future__ import annotations

import logging
import os
import random
import re
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, IntegrityError
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

T = TypeVar("T")

SQLITE_BUSY_TIMEOUT_MS = 30_000
RETRYABLE_SQLSTATES = {"40001", "40P01"}

BUSY_MESSAGE = (
    "The database is busy with another change that is taking too long, so nothing was "
    "applied. Try again in a moment."
)
READ_ONLY_MESSAGE = (
    "This database only allows reading (a read-only file or server), so nothing was "
    "changed. Ask whoever manages the database for write access."
)
# PostgreSQL: lock_not_available (a lock timeout), and read_only_sql_transaction (a
# standby server, or default_transaction_read_only).
_PG_BUSY_SQLSTATES = {"55P03"}
_PG_READ_ONLY_SQLSTATES = {"25006"}

# Each SQLite engine's busy timeout in seconds: a "database is locked" that came only
# after the driver had waited that long is not worth another wait of the same length.
_busy_timeouts: weakref.WeakKeyDictionary[Engine, float] = weakref.WeakKeyDictionary()


class ConfigurationError(Exception):
    """The database address is not usable; the message says why in plain words."""


def parse_url(url: str) -> URL:
    """Parse a database address, refusing what this application cannot use."""
    text = (url or "").strip()
    if not text:
        raise ConfigurationError("No database address was given.")
    try:
        parsed = make_url(text)
    except Exception as exc:  # the parser raises several types for junk
        # The text itself is not repeated: it may hold a password, and what the parser
        # could not read cannot be masked reliably.
        raise ConfigurationError(
            "That is not a database address: use postgresql://user@host/database or "
            "sqlite:///path/to/file."
        ) from exc
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        if parsed.drivername not in ("postgresql", "postgresql+psycopg"):
            raise ConfigurationError("PostgreSQL is reached with the psycopg driver only.")
        return _password_out_of_query(parsed.set(drivername="postgresql+psycopg"))
    if backend == "sqlite":
        if parsed.drivername != "sqlite" and parsed.drivername != "sqlite+pysqlite":
            raise ConfigurationError("SQLite is reached with the built-in driver only.")
        if not parsed.database or parsed.database == ":memory:":
            raise ConfigurationError("A SQLite database must be a file on disk.")
        return parsed
    raise ConfigurationError(f"Unsupported database kind '{backend}': use SQLite or PostgreSQL.")


def _password_out_of_query(url: URL) -> URL:
    """Move a ``?password=`` parameter to the address's password (where it wins over
    any other, as libpq would have it win), so that every display of the address,
    which hides the password but shows the parameters, hides it too."""
    if "password" not in url.query:
        return url
    value = url.query["password"]
    # Given twice (?password=a&password=b), libpq takes the last.
    password = value[-1] if isinstance(value, tuple) else value
    return url.difference_update_query(["password"]).set(password=password)


# user:password@ in an address, and password=… in a connection string. SQLAlchemy
# writes a login and password with spaces and '+' as they are (only '@', ':', '/' and
# the like are escaped), so both run to the last '@' before the host, on one line: a
# little too much masked is better than part of a password shown.
_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^:/@\n]*):[^/\n]*@")
# A quoted value may hold its quote escaped with a backslash (libpq's conninfo).
_KEY_PASSWORD = re.compile(
    r"(?P<head>\b(?:password|passwd|pwd)\s*[=:]\s*)"
    r"(?:'(?:[^'\\\n]|\\.)*'|\"(?:[^\"\\\n]|\\.)*\"|\S+)",
    re.IGNORECASE,
)


def hide_passwords(text: str) -> str:
    """``text`` (a message, a traceback, a log line) with anything that looks like a
    password in a database address or connection string replaced by ``***``."""
    text = _URL_PASSWORD.sub(lambda m: f"{m.group('head')}:***@", text)
    return _KEY_PASSWORD.sub(lambda m: f"{m.group('head')}***", text)


def make_engine(
    url: str | URL, *, pool_size: int = 5, busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS
) -> Engine:
    """Create an engine set up for the dialect of ``url``.

    ``busy_timeout_ms`` (SQLite only) is how long a write waits for another writer to
    finish before it gives up with :data:`BUSY_MESSAGE`.
    """
    parsed = parse_url(url) if isinstance(url, str) else url
    if parsed.get_backend_name() == "sqlite":
        if busy_timeout_ms < 0:
            raise ValueError("the busy timeout cannot be negative")
        engine = create_engine(
            parsed,
            connect_args={"timeout": busy_timeout_ms / 1000, "check_same_thread": False},
        )
        _configure_sqlite(engine, busy_timeout_ms)
        _guard_sqlite_file(engine, parsed)
        _busy_timeouts[engine] = busy_timeout_ms / 1000
        return engine
    return create_engine(
        parsed,
        pool_pre_ping=True,
        pool_size=pool_size,
        max_overflow=pool_size,
        # prepare_threshold None: psycopg would otherwise prepare a statement after five
        # runs, and PostgreSQL then drifts to a generic plan that ignores the search
        # prefix (7 ms searches became 90 ms after a dozen keystrokes).
        connect_args={"connect_timeout": 10, "application_name": "credits-desktop",
                      "prepare_threshold": None},
    )


def _configure_sqlite(engine: Engine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy (below) emit BEGIN itself.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        mode = connection.get_execution_options().get("sqlite_begin", "IMMEDIATE")
        connection.exec_driver_sql(f"BEGIN {mode}")


def _guard_sqlite_file(engine: Engine, url: URL) -> None:
    """Notice a database file that went away instead of quietly working around it.

    SQLite creates a missing file on connect, and a pooled connection keeps reading a
    file that was moved or deleted (it holds it open). Either would show staff a
    wrong, empty or stale database after the file is moved, deleted or its share
    disconnected. So once the engine has opened the file, later connections open it
    with ``mode=rw`` (an error if it is missing, never a new empty file), and a
    pooled connection whose file is no longer the one at the path is dropped on
    checkout: the pool then reconnects, which fails while the file is gone.

    An address that is a URI filename (``sqlite:///file:/path?mode=ro&uri=true``)
    keeps its own mode; the file it names is watched all the same.
    """
    path = Path(os.path.abspath(sqlite_file_of(url)))
    opened: list[bool] = []

    def identity() -> tuple[int, int] | None:
        try:
            found = path.stat()
        except OSError:
            return None
        return found.st_dev, found.st_ino

    @event.listens_for(engine, "do_connect")
    def _do_connect(_dialect: Any, _record: Any, cargs: list[Any], cparams: dict[str, Any]) -> None:
        if opened and cargs and not cparams.get("uri"):
            cargs[0] = f"{path.as_uri()}?mode=rw"
            cparams["uri"] = True

    @event.listens_for(engine, "connect")
    def _on_connect(_dbapi_connection: Any, record: Any) -> None:
        if not opened:
            opened.append(True)
        record.info["sqlite_file"] = identity()

    @event.listens_for(engine, "checkout")
    def _on_checkout(_dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        if record.info.get("sqlite_file") != identity():
            raise DisconnectionError(f"the database file {path} was moved or deleted")


def sqlite_file_of(url: URL) -> str:
    """The file a SQLite address names, also when it is a URI filename."""
    database = str(url.database)
    if url.query.get("uri") == "true" and database.startswith("file:"):
        return unquote(urlsplit(database).path)
    return database


def reader(engine: Engine) -> Engine:
    """The same engine for read-only work: on SQLite it does not take the write lock."""
    if engine.dialect.name == "sqlite":
        return engine.execution_options(sqlite_begin="DEFERRED")
    return engine


def is_retryable(exc: BaseException) -> bool:
    """Whether a failed transaction can simply be run again."""
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    orig = exc.orig
    sqlstate = getattr(orig, "sqlstate", None)
    if sqlstate in RETRYABLE_SQLSTATES:
        return True
    message = str(orig).lower()
    return "database is locked" in message or "database table is locked" in message


def _sqlite_code(exc: BaseException) -> str:
    return str(getattr(getattr(exc, "orig", None), "sqlite_errorname", "") or "")


def _is_sqlite_lock(exc: BaseException) -> bool:
    code = _sqlite_code(exc)
    if code:
        return code.startswith("SQLITE_BUSY") or code.startswith("SQLITE_LOCKED")
    message = str(getattr(exc, "orig", exc)).lower()
    return "database is locked" in message or "database table is locked" in message


def refusal_message(exc: BaseException) -> str | None:
    """A plain message for a database that refused work because it is busy or may only
    be read (see the module docstring); None for any other error. Follows causes, so a
    service's wrapped error is recognised too."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, DBAPIError):
            code = _sqlite_code(current)
            sqlstate = getattr(current.orig, "sqlstate", None)
            # SQLITE_READONLY_DBMOVED is a file that went away, not a read-only one.
            if (code.startswith("SQLITE_READONLY") and code != "SQLITE_READONLY_DBMOVED") \
                    or sqlstate in _PG_READ_ONLY_SQLSTATES:
                return READ_ONLY_MESSAGE
            if _is_sqlite_lock(current) or sqlstate in _PG_BUSY_SQLSTATES:
                return BUSY_MESSAGE
        current = current.__cause__
    return None


def run_in_transaction(
    engine: Engine, work: Callable[[Session], T], *, attempts: int = 6
) -> T:
    """Run ``work`` in one transaction, retrying conflicts a bounded number of times.

    Safe because every write is keyed by an idempotency key: a retry after a
    commit whose acknowledgement was lost finds the first attempt's result.
    An IntegrityError is retried once too: two sessions racing on the same
    idempotency key collide there, and the retry returns the winner's result.
    A SQLite "database is locked" is retried only when it came quickly: after the
    whole busy timeout another writer holds the file, and waiting that long again
    (and again) would only keep staff staring at "Saving…".
    """
    integrity_retried = False
    busy_timeout = _busy_timeouts.get(engine)
    for attempt in range(1, attempts + 1):
        started = time.monotonic()
        try:
            with Session(engine, expire_on_commit=False) as session, session.begin():
                return work(session)
        except IntegrityError:
            if integrity_retried:
                raise
            integrity_retried = True
            log.info("integrity conflict, retrying once")
        except DBAPIError as exc:
            if attempt == attempts or not is_retryable(exc):
                raise
            if busy_timeout is not None and _is_sqlite_lock(exc) \
                    and time.monotonic() - started >= busy_timeout:
                raise
            delay = min(0.5, 0.01 * 2**attempt) * (0.5 + random.random())
            log.info("retrying transaction after %s (attempt %d)", type(exc.orig).__name__, attempt)
            time.sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover
