"""Faults: the server connection dies in the middle of a write, the acknowledgement of
a commit is lost, a SQLite file is locked by another program or may only be read.

The promise under test: no partial write ever lands; a write whose connection died
is either retried transparently and applied exactly once, or refused with a plain
message, and sending it again with the same idempotency key applies it exactly once
(a third send replays the stored result).

PostgreSQL faults are real: the backend serving the write is ended with
``pg_terminate_backend`` from an administrator connection, at a point of the
transaction chosen by an event hook on the application's own engine (the statements
still run for real; the hook only picks the moment) or while the write waits for a
row lock held by another desk. A server going down is the database refusing new
connections (``ALLOW_CONNECTIONS false``) with every session of it ended; the
server itself is shared by other test processes and is never restarted. A lost
commit acknowledgement goes through a small TCP relay that passes the COMMIT to the
server and cuts the connection instead of passing the answer back.

Each test waits for its fault instead of sleeping for it, and takes well under a
second or two.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from conftest import only_on, pg_server_url
from sqlalchemy import Engine, event, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from credits_desktop.services.errors import DatabaseUnavailable
from credits_desktop.services.incidents import IncidentScope, incident_key, run_incident
from credits_desktop.services.previews import preview_refund
from credits_desktop.services.queries import charges_page
from credits_desktop.services.refunds import RefundItem
from credits_desktop.store.database import Database
from credits_desktop.store.engine import BUSY_MESSAGE, READ_ONLY_MESSAGE
from credits_desktop.store.models import Operation, Refund

from .factories import (
    World,
    assert_invariants,
    assert_nothing_written,
    assert_plain_sentence,
    balances,
    charge,
    fetch,
    key,
    open_account,
    refund,
)

T = TypeVar("T")

# Generous bounds that only stop a hang; a healthy test is far quicker.
WAIT_S = 20.0


# -- the server, as an administrator (or a restart) sees it ------------------------------


class Server:
    """What a database administrator or a server restart does to this test's database."""

    def __init__(self, admin: Engine, name: str) -> None:
        self.admin = admin
        self.name = name

    def refuse_connections(self) -> None:
        """New connections are refused, as while a server shuts down or starts up."""
        with self.admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{self.name}" ALLOW_CONNECTIONS false'))

    def allow_connections(self) -> None:
        with self.admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{self.name}" ALLOW_CONNECTIONS true'))

    def terminate(self, pid: int) -> None:
        """End one session and wait (up to 5 s) until its process is gone."""
        with self.admin.connect() as conn:
            ended = conn.execute(text("SELECT pg_terminate_backend(:pid, 5000)"),
                                 {"pid": pid}).scalar_one()
        assert ended, f"backend {pid} did not end"

    def terminate_all(self) -> int:
        """End every session of the database (what a restart does); how many there were."""
        with self.admin.connect() as conn:
            pids = conn.execute(
                text("SELECT pid FROM pg_stat_activity WHERE datname = :name "
                     "AND pid <> pg_backend_pid()"),
                {"name": self.name},
            ).scalars().all()
            for pid in pids:
                conn.execute(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid})
        return len(pids)

    def go_down(self) -> None:
        """The server goes down: no new connections, and every session ended."""
        self.refuse_connections()
        self.terminate_all()

    def blocked_by(self, pid: int) -> list[int]:
        """Sessions waiting for a lock that session ``pid`` holds."""
        with self.admin.connect() as conn:
            return list(conn.execute(
                text("SELECT pid FROM pg_stat_activity WHERE datname = :name "
                     "AND :pid = ANY(pg_blocking_pids(pid))"),
                {"name": self.name, "pid": pid},
            ).scalars())


@pytest.fixture
def server(db_url: str, request: pytest.FixtureRequest) -> Iterator[Server]:
    """The PostgreSQL test database under an administrator's hand; whatever the test
    did, it accepts connections again afterwards."""
    admin: Engine = request.getfixturevalue("pg_admin")
    control = Server(admin, str(make_url(db_url).database))
    try:
        yield control
    finally:
        control.allow_connections()


def backend_pid(dbapi_connection: Any) -> int:
    pid = dbapi_connection.info.backend_pid
    assert isinstance(pid, int)
    return pid


# -- cutting a write off at a chosen point ------------------------------------------------


class KillSwitch:
    """Ends the session of the first connection of ``engine`` that reaches ``point``.

    ``point`` is ``"commit"`` (just before COMMIT is sent, with every statement of the
    transaction executed on the server; only a transaction that wrote something, so a
    read finishing meanwhile is left alone) or a predicate on each executed statement
    (the session ends right after it). The kill happens on the writer's own thread, inside
    the event, so the transaction then carries on over a dead connection exactly as it
    would after a crash of the server process. With ``down`` the whole database goes
    down at that moment instead (see :meth:`Server.go_down`).
    """

    def __init__(self, engine: Engine, server: Server,
                 point: str | Callable[[str], bool], *, down: bool = False) -> None:
        self.engine = engine
        self.server = server
        self.point = point
        self.down = down
        self.killed: list[int] = []

    def _kill(self, dbapi_connection: Any) -> None:
        if self.killed:
            return
        pid = backend_pid(dbapi_connection)
        self.killed.append(pid)
        if self.down:
            self.server.go_down()
        else:
            self.server.terminate(pid)

    def _after_statement(self, conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        assert callable(self.point)
        if not self.killed and self.point(statement):
            self._kill(conn.connection.dbapi_connection)

    def _before_commit(self, conn: Any) -> None:
        dbapi_connection = conn.connection.dbapi_connection
        # A transaction gets an id from the server when it first writes.
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SELECT pg_current_xact_id_if_assigned() IS NOT NULL")
            row = cursor.fetchone()
        if row is not None and row[0]:
            self._kill(dbapi_connection)

    def __enter__(self) -> KillSwitch:
        if self.point == "commit":
            event.listen(self.engine, "commit", self._before_commit)
        else:
            event.listen(self.engine, "after_cursor_execute", self._after_statement)
        return self

    def __exit__(self, *_: object) -> None:
        if self.point == "commit":
            event.remove(self.engine, "commit", self._before_commit)
        else:
            event.remove(self.engine, "after_cursor_execute", self._after_statement)


def inserts_into(table: str) -> Callable[[str], bool]:
    prefix = f"INSERT INTO {table} "
    return lambda statement: statement.lstrip().startswith(prefix)


def after_nth(n: int, marker: Callable[[str], bool],
              then: Callable[[str], bool]) -> Callable[[str], bool]:
    """True for the first statement matching ``then`` after ``n`` statements matched
    ``marker`` (say, the refunds of the second batch's operation)."""
    seen = [0]

    def check(statement: str) -> bool:
        if marker(statement):
            seen[0] += 1
        return seen[0] >= n and then(statement)

    return check


def wait_for(condition: Callable[[], T], what: str) -> T:
    deadline = time.monotonic() + WAIT_S
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.01)


def outcome_of(call: Callable[[], T]) -> T | Exception:
    try:
        return call()
    except Exception as exc:
        return exc


def killed_while_waiting_for_the_account(
    world: World, server: Server, call: Callable[[], T], *, down: bool = False
) -> tuple[T | Exception, list[int]]:
    """Run ``call`` (a write on the world's account) while another desk holds the
    account's row lock; end the write's session while it waits, then let go."""
    other = Database.open(world.db.engine.url)
    try:
        with other.engine.connect() as blocker:
            blocker.execute(text("SELECT id FROM accounts WHERE id = :id FOR UPDATE"),
                            {"id": world.account_id})
            holder = backend_pid(blocker.connection.dbapi_connection)
            with ThreadPoolExecutor(1) as pool:
                future = pool.submit(outcome_of, call)
                waiting = wait_for(lambda: server.blocked_by(holder), "the write to wait")
                assert len(waiting) == 1
                if down:
                    server.go_down()
                else:
                    server.terminate(waiting[0])
                # The blocker's own session may have ended with the rest.
                with suppress(DBAPIError):
                    blocker.rollback()
                return future.result(WAIT_S), waiting
    finally:
        other.close()


POINTS = ["waiting for the account lock", "after the refund row was written",
          "just before COMMIT"]


def refund_under_fault(world: World, server: Server, point: str, charge_id: int,
                       idem: str, *, down: bool = False) -> tuple[Any, list[int]]:
    """Refund ``charge_id`` with key ``idem``, its session ended at ``point``."""

    def call() -> Any:
        return refund(world, world.support, charge_id, idempotency_key=idem)

    if point == POINTS[0]:
        return killed_while_waiting_for_the_account(world, server, call, down=down)
    where: str | Callable[[str], bool] = (
        inserts_into("refunds") if point == POINTS[1] else "commit")
    with KillSwitch(world.db.engine, server, where, down=down) as switch:
        outcome = outcome_of(call)
    return outcome, switch.killed


def refunds_of(world: World) -> list[int]:
    ids: list[int] = fetch(world.db, select(Refund.charge_id).order_by(Refund.charge_id))
    return ids


def operations_with_key(world: World, idem: str) -> int:
    return int(world.db.read(lambda s: s.scalar(
        select(func.count()).select_from(Operation).where(Operation.idempotency_key == idem)
    )) or 0)


# -- a refund --------------------------------------------------------------------------------


@only_on("postgresql")
@pytest.mark.parametrize("point", POINTS)
def test_a_refund_whose_session_is_killed_is_retried_and_applies_once(
    world: World, server: Server, point: str
) -> None:
    failed = charge(world, 40).charge_id
    before = balances(world.db, world.account_id)
    idem = key("refund")

    result, killed = refund_under_fault(world, server, point, failed, idem)

    # The service noticed the dead connection and ran the whole write again on a new one.
    assert len(killed) == 1
    assert not isinstance(result, Exception), result
    assert result.status == "applied" and not result.replayed
    assert refunds_of(world) == [failed]
    assert operations_with_key(world, idem) == 1
    after = balances(world.db, world.account_id)
    assert after.total == before.total + 40
    assert after.unrefunded_failed == before.unrefunded_failed - 1
    assert_invariants(world.db)
    # Sent again (a second press, a retry after a lost answer): the stored result.
    again = refund(world, world.support, failed, idempotency_key=idem)
    assert again == dataclasses.replace(result, replayed=True)
    assert balances(world.db, world.account_id) == after
    assert refunds_of(world) == [failed]


@only_on("postgresql")
@pytest.mark.parametrize("point", POINTS)
def test_a_refund_cut_off_by_a_server_going_down_writes_nothing_and_applies_once_later(
    world: World, server: Server, point: str
) -> None:
    failed = charge(world, 40).charge_id
    before = balances(world.db, world.account_id)
    idem = key("refund")

    with assert_nothing_written(world.db):
        outcome, killed = refund_under_fault(world, server, point, failed, idem, down=True)
        assert len(killed) == 1
        # The retry found the database refusing connections: a plain refusal.
        assert isinstance(outcome, DatabaseUnavailable), outcome
        assert_plain_sentence(outcome.message)
        assert "nothing was applied" in outcome.message
        server.allow_connections()
    assert refunds_of(world) == []
    assert operations_with_key(world, idem) == 0

    # The server is back: the same submission applies once, then replays.
    first = refund(world, world.support, failed, idempotency_key=idem)
    assert first.status == "applied" and not first.replayed
    second = refund(world, world.support, failed, idempotency_key=idem)
    assert second.replayed and second.operation_id == first.operation_id
    assert refunds_of(world) == [failed]
    assert operations_with_key(world, idem) == 1
    assert balances(world.db, world.account_id).total == before.total + 40
    assert_invariants(world.db)


# -- a lost commit acknowledgement ---------------------------------------------------------


class CommitAnswerCutter:
    """A TCP relay to PostgreSQL that, once armed, passes the next COMMIT on to the
    server and then cuts that connection instead of passing the server's answer back:
    the transaction is committed, but the application never hears so."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.armed = threading.Event()
        self.cut = threading.Event()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True, name="relay-accept").start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            with self._lock:
                if self._closed:
                    client.close()
                    server.close()
                    return
                self._sockets += [client, server]
            drop_answer = threading.Event()
            threading.Thread(target=self._pump, args=(client, server, drop_answer, True),
                             daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, drop_answer, False),
                             daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, drop_answer: threading.Event,
              from_client: bool) -> None:
        try:
            while data := source.recv(65536):
                if from_client and self.armed.is_set() and b"COMMIT\x00" in data:
                    # Before the COMMIT goes on: its answer cannot arrive unseen.
                    self.armed.clear()
                    drop_answer.set()
                elif not from_client and drop_answer.is_set():
                    self.cut.set()
                    break
                sink.sendall(data)
        except OSError:
            pass
        for sock in (source, sink):
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            sockets = list(self._sockets)
        self.listener.close()
        for sock in sockets:
            with suppress(OSError):
                sock.close()


@only_on("postgresql")
def test_a_refund_whose_commit_answer_is_lost_returns_the_stored_result(
    world: World, db_url: str
) -> None:
    real = pg_server_url()
    relay = CommitAnswerCutter(real.host or "127.0.0.1", real.port or 5432)
    desk = Database.open(make_url(db_url).set(host="127.0.0.1", port=relay.port))
    try:
        remote = dataclasses.replace(world, db=desk)
        failed = charge(world, 40).charge_id
        before = balances(world.db, world.account_id)
        idem = key("refund")
        relay.armed.set()
        result = refund(remote, world.support, failed, idempotency_key=idem)
        assert relay.cut.is_set(), "the relay never saw the refund's COMMIT"
        # The first attempt did commit; the retry on a new connection found it by its key.
        assert result.status == "applied" and result.replayed
        assert refunds_of(world) == [failed]
        assert operations_with_key(world, idem) == 1
        assert balances(world.db, world.account_id).total == before.total + 40
        again = refund(remote, world.support, failed, idempotency_key=idem)
        assert again == result
        assert refunds_of(world) == [failed]
        assert_invariants(world.db)
    finally:
        desk.close()
        relay.close()


# -- an incident refund ----------------------------------------------------------------------

START = datetime(2026, 1, 10, 10, 0, tzinfo=UTC)
SCOPE = IncidentScope("ad_image", None, START, START + timedelta(hours=2))
INCIDENT = "INC-77"
BATCHES = 4


def outage(world: World) -> list[tuple[int, tuple[int, int]]]:
    """Four accounts with two failed image charges each in the window, in account order:
    with batches of two charges, one batch per account."""
    accounts = [world.account_id] + [
        open_account(world.db, world.platform, name=f"Outage {i}", email=f"o{i}@x.test")
        for i in range(BATCHES - 1)
    ]
    made = []
    for account in sorted(accounts):
        ids = tuple(charge(world, 30, account_id=account,
                           at=START + timedelta(minutes=10 * (n + 1))).charge_id
                    for n in range(2))
        made.append((account, (ids[0], ids[1])))
    return made


def run(world: World) -> Any:
    return run_incident(world.db, world.finance, SCOPE, incident_ref=INCIDENT, batch_size=2,
                        at=datetime(2026, 1, 12, 9, 0, tzinfo=UTC))


# The second batch's refunds: the first statement inserting refunds after the
# second batch's operation row.
def in_the_second_batch() -> Callable[[str], bool]:
    return after_nth(2, inserts_into("operations"), inserts_into("refunds"))


@only_on("postgresql")
def test_an_incident_run_whose_session_is_killed_in_batch_two_refunds_each_charge_once(
    world: World, server: Server
) -> None:
    batches = outage(world)
    every = sorted(c for _, ids in batches for c in ids)
    with KillSwitch(world.db.engine, server, in_the_second_batch()) as switch:
        summary = run(world)
    assert len(switch.killed) == 1
    # Batch two was run again on a new connection and landed once.
    assert summary.complete and summary.stopped_by is None
    assert summary.charges_refunded == len(every) and summary.skipped == 0
    assert len(summary.operation_ids) == BATCHES
    assert refunds_of(world) == every
    assert_invariants(world.db)
    assert run(world).total == 0


@only_on("postgresql")
def test_an_incident_run_cut_off_in_batch_two_keeps_batch_one_and_finishes_when_run_again(
    world: World, server: Server
) -> None:
    batches = outage(world)
    every = sorted(c for _, ids in batches for c in ids)
    first_batch = sorted(batches[0][1])
    second_key = incident_key("incident", INCIDENT, [batches[1]])

    with KillSwitch(world.db.engine, server, in_the_second_batch(), down=True) as switch:
        summary = run(world)
    server.allow_connections()
    assert len(switch.killed) == 1
    # Batch one landed; batch two did not land even in part; the run stopped plainly.
    assert not summary.complete and summary.stopped_by is not None
    assert_plain_sentence(summary.stopped_by)
    assert summary.charges_refunded == 2
    assert "Run it again with the same scope to finish" in summary.text()
    assert refunds_of(world) == first_batch
    assert operations_with_key(world, second_key) == 0
    assert_invariants(world.db)

    # Run again: it finishes what is left, and refunds nothing twice.
    again = run(world)
    assert again.complete and again.total == len(every) - 2
    assert again.charges_refunded == len(every) - 2
    assert refunds_of(world) == every
    assert operations_with_key(world, second_key) == 1
    assert run(world).total == 0
    assert_invariants(world.db)


# -- SQLite: a locked file, a read-only file --------------------------------------------------


def sqlite_file(db_url: str) -> Path:
    return Path(str(make_url(db_url).database))


@contextmanager
def write_lock_held(path: Path) -> Iterator[sqlite3.Connection]:
    """Another program holds the database's write lock (``BEGIN IMMEDIATE``) until the
    block ends or the yielded connection rolls back."""
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        other.execute("BEGIN IMMEDIATE")
        yield other
    finally:
        if other.in_transaction:
            other.rollback()
        other.close()


def count_write_transactions(engine: Engine) -> list[str]:
    """A list that grows at each write transaction ``engine`` tries to begin (each
    ``BEGIN IMMEDIATE`` sent, whether it gets the lock or not)."""
    begun: list[str] = []

    def sent(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement == "BEGIN IMMEDIATE":
            begun.append(statement)

    event.listen(engine, "before_cursor_execute", sent)
    return begun


@only_on("sqlite")
def test_a_locked_sqlite_database_gives_a_plain_message_and_writes_nothing(
    world: World, db_url: str
) -> None:
    failed = charge(world, 40).charge_id
    idem = key("refund")
    # A desk whose writes wait a third of a second for the lock (30 s in real use).
    desk_db = Database.open(db_url, busy_timeout_ms=300)
    try:
        desk = dataclasses.replace(world, db=desk_db)
        attempts = count_write_transactions(desk_db.engine)
        with write_lock_held(sqlite_file(db_url)), assert_nothing_written(world.db):
            with pytest.raises(DatabaseUnavailable) as caught:
                refund(desk, world.support, failed, idempotency_key=idem)
            # Readers are not held up by the writer (WAL).
            assert balances(desk_db, world.account_id).unrefunded_failed == 1
        assert caught.value.message == BUSY_MESSAGE
        assert_plain_sentence(caught.value.message)
        # It waited once for the lock: not again and again after the whole timeout.
        assert len(attempts) == 1

        # The other program is done: the same submission applies once.
        result = refund(desk, world.support, failed, idempotency_key=idem)
        assert result.status == "applied" and not result.replayed
        assert refund(desk, world.support, failed, idempotency_key=idem).replayed
        assert refunds_of(world) == [failed]
    finally:
        desk_db.close()


@only_on("sqlite")
def test_a_write_waits_for_a_lock_released_within_the_busy_timeout(
    world: World, db_url: str
) -> None:
    failed = charge(world, 40).charge_id
    desk_db = Database.open(db_url, busy_timeout_ms=10_000)
    try:
        desk = dataclasses.replace(world, db=desk_db)
        with write_lock_held(sqlite_file(db_url)) as other:
            release = threading.Timer(0.2, other.rollback)
            release.start()
            try:
                result = refund(desk, world.support, failed)
            finally:
                release.join()
        assert result.status == "applied"
        assert refunds_of(world) == [failed]
    finally:
        desk_db.close()


@contextmanager
def read_only_copy_of(path: Path) -> Iterator[Database]:
    """The database file write-protected, opened as the application opens it then.

    The file is made read-only (mode 444). That stops every user but root, and tests
    may run as root, so the file is also opened with SQLite's ``mode=ro``: the very
    state SQLite puts a connection in when the operating system refuses to open the
    file for writing (it falls back to read-only; writes then fail with
    SQLITE_READONLY), so the application sees the same thing either way.
    """
    mode = path.stat().st_mode
    os.chmod(path, 0o444)
    db = Database.open(f"sqlite:///file:{path}?mode=ro&uri=true")
    try:
        yield db
    finally:
        db.close()
        os.chmod(path, mode)


@only_on("sqlite")
def test_a_read_only_sqlite_file_is_read_and_refuses_changes_plainly(
    world: World, db_url: str
) -> None:
    failed = charge(world, 40).charge_id
    expected = balances(world.db, world.account_id)
    with read_only_copy_of(sqlite_file(db_url)) as read_only:
        desk = dataclasses.replace(world, db=read_only)
        # Reading works: balances, lists.
        assert balances(read_only, world.account_id) == expected
        page = charges_page(read_only, world.account_id)
        assert [row.id for row in page.rows] == [failed]

        with assert_nothing_written(read_only):
            with pytest.raises(DatabaseUnavailable) as caught:
                refund(desk, world.support, failed)
            # The dialog's preview says the same, before anyone presses OK.
            with pytest.raises(DatabaseUnavailable) as previewed:
                preview_refund(read_only, world.support, account_id=world.account_id,
                               items=[RefundItem(failed)], at=world.at(days=2))
        assert caught.value.message == previewed.value.message == READ_ONLY_MESSAGE
        assert_plain_sentence(caught.value.message)
    assert refunds_of(world) == []
    assert_invariants(world.db)


@only_on("sqlite")
def test_a_read_only_address_notices_its_file_moving_away(world: World, db_url: str) -> None:
    """A ``file:…?mode=ro`` address is watched like any other: a pooled connection to a
    file moved away is not quietly read from, and nothing new is created in its place."""
    path = sqlite_file(db_url)
    with read_only_copy_of(path) as read_only:
        expected = balances(read_only, world.account_id)
        away = path.with_name("moved.db")
        os.replace(path, away)
        try:
            with pytest.raises(DBAPIError):
                balances(read_only, world.account_id)
            assert not path.exists()
        finally:
            os.replace(away, path)
        assert balances(read_only, world.account_id) == expected


@only_on("postgresql")
def test_a_postgresql_database_that_only_allows_reading_refuses_changes_plainly(
    world: World, server: Server
) -> None:
    """A standby server, or a database set read-only by its administrator: reads work,
    a change is refused with the read-only message and writes nothing."""
    failed = charge(world, 40).charge_id
    expected = balances(world.db, world.account_id)
    with server.admin.connect() as conn:
        conn.execute(text(f'ALTER DATABASE "{server.name}" SET default_transaction_read_only'
                          " = on"))
    try:
        # The setting applies to new sessions: end the open ones.
        server.terminate_all()
        assert balances(world.db, world.account_id) == expected
        with pytest.raises(DatabaseUnavailable) as caught:
            refund(world, world.support, failed)
        assert caught.value.message == READ_ONLY_MESSAGE
        assert_plain_sentence(caught.value.message)
    finally:
        with server.admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{server.name}" RESET '
                              "default_transaction_read_only"))
        server.terminate_all()
    assert refunds_of(world) == []
    assert refund(world, world.support, failed).status == "applied"
