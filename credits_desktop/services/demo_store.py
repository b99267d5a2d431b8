"""Bulk writers for the demo data: many rows per round trip, in one transaction.

The ORM would spend most of the demo's time building objects; these writers hand row
tuples straight to the driver instead. SQLite gets multi-row ``INSERT`` statements through
``executemany`` on a connection of its own; PostgreSQL gets ``COPY ... FROM STDIN``. Both
load everything in one transaction, so a failed run leaves the database as it was.

Foreign keys are not checked row by row during the load (SQLite's ``foreign_keys`` pragma
is off on the loading connection; PostgreSQL skips its referential triggers with
``session_replication_role = replica`` when the login may set it): the rows come from one
simulation that assigns every id itself, and the tests check the references afterwards.
Most secondary indexes of the two big tables are rebuilt once at the end of the load
(``DEFERRED_TABLES``).
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Sequence
from itertools import chain
from typing import Any, Protocol

from psycopg import sql as pgsql
from sqlalchemy import Engine

log = logging.getLogger(__name__)

__all__ = ["COLUMNS", "BulkWriter", "PostgresWriter", "SqliteWriter", "open_writer"]

COLUMNS: dict[str, tuple[str, ...]] = {
    "accounts": (
        "id", "name", "owner_email", "name_norm", "email_norm", "plan_id", "billing_day",
        "status", "created_at", "period_start", "period_end", "plan_balance",
        "purchased_balance", "refund_balance", "unrefunded_failed", "last_activity_at",
        "change_seq",
    ),
    "operations": (
        "id", "idempotency_key", "fingerprint", "kind", "actor_id", "account_id", "reason",
        "reference", "note", "created_at", "result",
    ),
    "credit_grants": (
        "id", "account_id", "source", "granted", "remaining", "created_at", "expires_at",
        "period_start", "package_id", "operation_id",
    ),
    "usage_charges": (
        "id", "external_id", "account_id", "feature_code", "model", "credits", "status",
        "failure_reason", "occurred_at",
    ),
    "ledger_entries": (
        "id", "account_id", "grant_id", "kind", "delta", "charge_id", "operation_id",
        "actor_id", "reason", "reference", "created_at",
    ),
    "refunds": ("id", "charge_id", "account_id", "credits", "reason_code", "operation_id",
                "created_at"),
    "adjustments": ("id", "account_id", "delta", "reason_code", "operation_id", "created_at"),
    "reversals": ("id", "account_id", "refund_id", "adjustment_id", "credits", "operation_id",
                  "created_at"),
    "approval_requests": (
        "id", "kind", "account_id", "credits", "payload", "summary", "operation_id",
        "requested_by", "requested_at", "status", "decided_by", "decided_at",
        "decision_comment", "result_operation_id", "failure_reason",
    ),
    "audit_events": ("id", "at", "actor_id", "action", "outcome", "account_id",
                     "operation_id", "detail"),
}

# Index maintenance during the load is the largest cost after the rows themselves, so some
# indexes are dropped for the load and built again at its end, in the same transaction
# (sorting once beats updating an index row by row; BENCHMARKS.md has the figures).
# PostgreSQL: every non-unique index of the two big tables, since each index insert there
# also writes WAL. SQLite: the same but for the (account, time) index of the charges, which
# grows at its end as the accounts are loaded one after the other and so costs little.
# Unique and primary key indexes always stay.
DEFERRED_TABLES: tuple[str, ...] = ("usage_charges", "ledger_entries")
SQLITE_KEPT: tuple[str, ...] = ("ix_usage_charges_account_time",)

# SQLite binds at most 32,766 parameters per statement; fewer rows per statement already
# amortise the per-statement cost, and the CHECK constraints' IN lists are built once per
# statement instead of once per row.
SQLITE_ROWS_PER_STATEMENT = 100


class BulkWriter(Protocol):
    """What the demo needs from a database for its one bulk transaction."""

    times_as_text: bool  # SQLite text ('YYYY-MM-DD HH:MM:SS.ffffff') or datetimes

    def begin(self) -> None: ...
    def has_accounts(self) -> bool: ...
    def max_id(self, table: str) -> int: ...
    def prepare(self, table: str, rows: Sequence[tuple[Any, ...]]) -> Any: ...
    def write(self, table: str, prepared: Any) -> None: ...
    def run(self, statements: Sequence[str]) -> None: ...
    def commit(self, last_ids: dict[str, int]) -> None: ...
    def rollback(self) -> None: ...


class SqliteWriter:
    """Multi-row INSERTs on a dedicated sqlite3 connection (BEGIN IMMEDIATE ... COMMIT)."""

    # store.types.UTCDateTime stores naive UTC text with microseconds on SQLite.
    times_as_text = True

    def __init__(self, path: str) -> None:
        self.conn = sqlite3.connect(path, timeout=30, isolation_level=None,
                                    check_same_thread=False)
        self._sql: dict[tuple[str, int], str] = {}

    def begin(self) -> None:
        execute = self.conn.execute
        execute("PRAGMA busy_timeout = 30000")
        execute("PRAGMA foreign_keys = OFF")
        # Only this connection and only for the load: a crash mid-load loses nothing that
        # matters (the transaction rolls back); durability returns with the pragma below.
        execute("PRAGMA synchronous = OFF")
        execute("PRAGMA cache_size = -262144")  # 256 MiB of page cache for the indexes
        execute("PRAGMA temp_store = MEMORY")  # rebuilding the indexes sorts in memory
        execute("PRAGMA threads = 2")  # ... on helper threads
        execute("BEGIN IMMEDIATE")
        # Named in SQL (no autoindex of a constraint), not unique, and not kept.
        found = execute(
            "SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'index'"
            " AND sql IS NOT NULL AND sql NOT LIKE 'CREATE UNIQUE%' ORDER BY name"
        ).fetchall()
        self.deferred = [(name, sql) for name, table, sql in found
                         if table in DEFERRED_TABLES and name not in SQLITE_KEPT]
        for name, _sql in self.deferred:
            execute(f'DROP INDEX "{name}"')

    def has_accounts(self) -> bool:
        return self.conn.execute("SELECT 1 FROM accounts LIMIT 1").fetchone() is not None

    def max_id(self, table: str) -> int:
        return int(self.conn.execute(f"SELECT COALESCE(MAX(id), 0) FROM {table}").fetchone()[0])

    def _statement(self, table: str, count: int) -> str:
        key = (table, count)
        if key not in self._sql:
            columns = COLUMNS[table]
            one = "(" + ",".join("?" * len(columns)) + ")"
            self._sql[key] = (f"INSERT INTO {table} ({','.join(columns)}) VALUES "
                              + ",".join([one] * count))
        return self._sql[key]

    def prepare(self, table: str, rows: Sequence[tuple[Any, ...]]
                ) -> tuple[list[list[Any]], list[Any], int]:
        """The parameters of each multi-row statement, flattened on the producer's thread
        (the writer's thread is the busier one)."""
        per = SQLITE_ROWS_PER_STATEMENT
        full = len(rows) - len(rows) % per
        chunks = [list(chain.from_iterable(rows[i:i + per])) for i in range(0, full, per)]
        return chunks, list(chain.from_iterable(rows[full:])), len(rows) - full

    def write(self, table: str, prepared: tuple[list[list[Any]], list[Any], int]) -> None:
        chunks, rest, rest_rows = prepared
        if chunks:
            self.conn.executemany(self._statement(table, SQLITE_ROWS_PER_STATEMENT), chunks)
        if rest_rows:
            self.conn.execute(self._statement(table, rest_rows), rest)

    def run(self, statements: Sequence[str]) -> None:
        """Run SQL statements (without parameters) in the load's transaction."""
        for statement in statements:
            self.conn.execute(statement)

    def commit(self, last_ids: dict[str, int]) -> None:
        began = time.perf_counter()
        for _name, definition in self.deferred:
            self.conn.execute(definition)
        rebuilt = time.perf_counter()
        # INTEGER PRIMARY KEY takes max(id) + 1 by itself: no sequence to move on.
        self.conn.execute("COMMIT")
        committed = time.perf_counter()
        self._close(checkpoint=True)
        log.info("demo load: indexes rebuilt in %.2f s, commit %.2f s, checkpoint %.2f s",
                 rebuilt - began, committed - rebuilt, time.perf_counter() - committed)

    def rollback(self) -> None:
        try:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
        finally:
            self._close(checkpoint=False)

    def _close(self, *, checkpoint: bool) -> None:
        try:
            if checkpoint:
                # Fold the load into the main file now rather than on some later commit.
                self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            self.conn.close()


class PostgresWriter:
    """Binary COPY FROM STDIN on a pooled psycopg connection, one transaction for the load."""

    times_as_text = False

    def __init__(self, engine: Engine) -> None:
        self.pooled = engine.raw_connection()
        self.conn: Any = self.pooled.driver_connection

    def begin(self) -> None:
        conn = self.conn
        conn.execute("SET LOCAL synchronous_commit = off")
        try:
            with conn.transaction():  # a savepoint: a refusal must not end the load
                conn.execute("SET LOCAL session_replication_role = replica")
        except Exception as exc:  # not a superuser: the foreign keys are checked per row
            log.info("demo load checks foreign keys row by row: %s", exc)
            # The database rules' commit-time checks (migration 0003) would otherwise
            # queue an event per row, and PostgreSQL refuses to rebuild an index of a
            # table with pending trigger events. Checked per statement instead (they
            # pass at once for the owner, who loads the demo).
            conn.execute("SET CONSTRAINTS ALL IMMEDIATE")
        # No one may open an account while the demo fills the database.
        conn.execute("LOCK TABLE accounts IN SHARE ROW EXCLUSIVE MODE")
        conn.execute("SET LOCAL maintenance_work_mem = '256MB'")  # for rebuilding indexes
        self.deferred = conn.execute(
            "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x"
            " JOIN pg_class i ON i.oid = x.indexrelid"
            " WHERE x.indrelid = ANY(%s::regclass[]) AND NOT x.indisunique"
            " AND NOT x.indisprimary ORDER BY i.relname",
            (list(DEFERRED_TABLES),),
        ).fetchall()
        for name, _sql in self.deferred:
            conn.execute(pgsql.SQL("DROP INDEX {}").format(pgsql.Identifier(name)))
        # Binary COPY needs every column's exact type (an int8 is not an int4 on the wire).
        self.types = {
            table: [conn.execute(
                "SELECT atttypid FROM pg_attribute WHERE attrelid = %s::regclass"
                " AND attname = %s", (table, column)).fetchone()[0] for column in columns]
            for table, columns in COLUMNS.items()
        }

    def has_accounts(self) -> bool:
        return self.conn.execute("SELECT 1 FROM accounts LIMIT 1").fetchone() is not None

    def max_id(self, table: str) -> int:
        row = self.conn.execute(f"SELECT COALESCE(MAX(id), 0) FROM {table}").fetchone()
        return int(row[0])

    def prepare(self, table: str, rows: Sequence[tuple[Any, ...]]
                ) -> Sequence[tuple[Any, ...]]:
        return rows

    def write(self, table: str, prepared: Sequence[tuple[Any, ...]]) -> None:
        rows = prepared
        if not rows:
            return
        statement = f"COPY {table} ({', '.join(COLUMNS[table])}) FROM STDIN (FORMAT BINARY)"
        with self.conn.cursor() as cursor, cursor.copy(statement) as copy:
            copy.set_types(self.types[table])
            write_row = copy.write_row
            for row in rows:
                write_row(row)

    def run(self, statements: Sequence[str]) -> None:
        """Run SQL statements (without parameters) in the load's transaction."""
        for statement in statements:
            self.conn.execute(statement)

    def commit(self, last_ids: dict[str, int]) -> None:
        conn = self.conn
        began = time.perf_counter()
        for _name, definition in self.deferred:
            conn.execute(definition)
        rebuilt = time.perf_counter()
        try:
            # COPY bypassed the id sequences: move them past the ids the demo used.
            for table, last in last_ids.items():
                sequence = conn.execute("SELECT pg_get_serial_sequence(%s, 'id')",
                                        (table,)).fetchone()[0]
                if sequence is not None and last > 0:
                    conn.execute("SELECT setval(%s, %s)", (sequence, last))
            conn.commit()
            committed = time.perf_counter()
            # Fresh statistics, so the desk's first queries get sensible plans.
            conn.execute("ANALYZE")
            conn.commit()
            log.info("demo load: indexes rebuilt in %.2f s, commit %.2f s, analyze %.2f s",
                     rebuilt - began, committed - rebuilt, time.perf_counter() - committed)
        finally:
            self.pooled.close()

    def rollback(self) -> None:
        try:
            self.conn.rollback()
        finally:
            self.pooled.close()


def open_writer(engine: Engine) -> SqliteWriter | PostgresWriter:
    """The bulk writer for the engine's database."""
    if engine.dialect.name == "sqlite":
        path = engine.url.database
        assert path, "the SQLite database is a file"
        return SqliteWriter(path)
    return PostgresWriter(engine)
