"""Benchmark of browsing a 100,000-account database: start-up, search as you type and
opening an account, on SQLite and PostgreSQL, each next to the raw SQL it needs.

    python benchmarks/bench_browse.py [--db URL ...] [--create] [--accounts N]
                                      [--months M] [--seed S] [--launches L]
                                      [--rounds R] [--opens O] [--explain] [--details]
                                      [--no-write]

Without ``--db`` both default databases are measured: the SQLite file
``/tmp/credits_bench/bench-100k.sqlite3`` and the PostgreSQL database
``credits_bench`` on ``CREDITS_DESK_TEST_PG``'s server. ``--create`` first makes what is
missing: the PostgreSQL database, the schema, the demo data (``generate_demo``,
``--accounts`` over ``--months`` with ``--seed``; 100,000 accounts over one month is
about 15.5 million charges, some minutes per database) and, on PostgreSQL, a support
staff member named after the database login (the desk signs in as the login there).
A database that already holds accounts is used as it is.

What is measured, each as the median and the 95th percentile of its runs:

* launch: ``credits-desktop --db URL`` as a subprocess with ``QT_QPA_PLATFORM=offscreen``,
  ``CREDITS_DESK_QUIT_AFTER_START=1`` and ``CREDITS_DESK_USER`` (a support login), from
  its start to the moment the main window has its first page (printed by a wrapper
  around the entry point, see ``LAUNCH_WRAPPER``; the time to its exit is kept too).
  Beside it: a process that only imports the application and creates the QApplication
  (the floor of any launch), the same start-up in this process (``Launcher`` to the
  first page), and the raw SQL of the start-up.
* search: in this process, a ``MainWindow`` (offscreen) with its first page; then, for
  prefixes of the emails, names and ids of sampled accounts, typed a character at a
  time, the time from ``model.set_query(text)`` (what the 200 ms debounce calls) to the
  model's ``page_loaded``.
* open: ``MainWindow.open_account`` of sampled accounts (and of the account with the
  most charges) until the summary and the first pages of grants, charges and ledger
  are in; each tab is closed again before the next.
* next to each: the service functions called directly (no Qt), and the raw SQL lower
  bound: the statements those service calls issue, captured through SQLAlchemy's
  ``before_cursor_execute`` and replayed on one open DBAPI connection, fetching every
  row (no pool, no ORM, no result objects). The account open replays its four reads one
  after the other; the window runs them in parallel on its worker threads.

The figures replace the "Browsing 100,000 accounts" section of BENCHMARKS.md (the other
sections are kept). ``--explain`` prints the query plans of the slowest search and of
an account open (EXPLAIN ANALYZE on PostgreSQL, EXPLAIN QUERY PLAN on SQLite).
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import random
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from common import (  # noqa: E402
    Measure,
    StallWatch,
    cpu_model,
    ensure_pg_database,
    load_average,
    make_measure,
    percentile,
    plural,
    ram_gib,
    staff_actor,
    support_login,
    wait_until,
)
from common import write_section as common_write_section  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402
from sqlalchemy import Engine, Executable, event, func, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from credits_desktop.bootstrap import check_schema, open_database  # noqa: E402
from credits_desktop.services.demo import generate_demo  # noqa: E402
from credits_desktop.services.queries import (  # noqa: E402
    AccountQuery,
    AccountRow,
    AccountSort,
    account_grants,
    account_summary,
    charges_page,
    ledger_page,
    search_accounts,
)
from credits_desktop.store.database import Database  # noqa: E402
from credits_desktop.store.engine import make_engine, parse_url  # noqa: E402
from credits_desktop.store.models import Account, LedgerEntry, UsageCharge  # noqa: E402
from credits_desktop.ui.account_detail import AccountDetail  # noqa: E402
from credits_desktop.ui.app import Launcher  # noqa: E402
from credits_desktop.ui.detail_models import DETAIL_PAGE_SIZE  # noqa: E402
from credits_desktop.ui.main_window import MainWindow  # noqa: E402

SECTION = "Browsing 100,000 accounts"
DEFAULT_SQLITE = "sqlite:////tmp/credits_bench/bench-100k.sqlite3"
DEFAULT_PG_SERVER = os.environ.get("CREDITS_DESK_TEST_PG",
                                   "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
DEFAULT_PG = make_url(DEFAULT_PG_SERVER).set(database="credits_bench").render_as_string(
    hide_password=False)
PAGE = 200  # the accounts table's page (ui.accounts_model.PAGE_SIZE)
TARGETS_MS = {"launch": 1500.0, "search": 50.0, "open": 100.0}
TIMEOUT_MS = 60_000


# -- figures ----------------------------------------------------------------------------


@dataclass
class Series:
    """Times in milliseconds."""

    values: list[float] = field(default_factory=list)

    def add(self, ms: float) -> None:
        self.values.append(ms)

    @property
    def median(self) -> float:
        return statistics.median(self.values) if self.values else float("nan")

    @property
    def p95(self) -> float:
        return percentile(self.values, 0.95) if self.values else float("nan")

    def text(self) -> str:
        return f"{fmt_ms(self.median)} / {fmt_ms(self.p95)}"


def fmt_ms(ms: float) -> str:
    if math.isnan(ms):
        return "–"
    return f"{ms:,.0f}" if ms >= 100 else f"{ms:.1f}"


def ratio(a: Series, b: Series) -> str:
    if not a.values or not b.values or b.median <= 0:
        return "–"
    return f"{a.median / b.median:.1f}×"


# -- capturing and replaying the SQL ---------------------------------------------------


@dataclass(frozen=True)
class Statement:
    sql: str
    params: Any
    many: bool


class Capture:
    """The statements this thread sends through SQLAlchemy while active; a ``None``
    entry marks a commit or rollback (the end of a transaction)."""

    def __init__(self) -> None:
        self.active = False
        self.thread = threading.get_ident()
        self.statements: list[Statement | None] = []
        self.lock = threading.Lock()
        event.listen(Engine, "before_cursor_execute", self._execute)
        event.listen(Engine, "commit", self._end)
        event.listen(Engine, "rollback", self._end)

    def _mine(self) -> bool:
        return self.active and (self.thread == 0 or threading.get_ident() == self.thread)

    def _execute(self, _conn: Any, _cursor: Any, statement: str, parameters: Any,
                 _context: Any, executemany: bool) -> None:
        if self._mine():
            with self.lock:
                self.statements.append(Statement(statement, parameters, executemany))

    def _end(self, _conn: Any) -> None:
        if self._mine():
            with self.lock:
                self.statements.append(None)

    @contextmanager
    def recording(self, *, any_thread: bool = False) -> Iterator[list[Statement | None]]:
        """Records this thread's statements, or every thread's (in the order they ran;
        a statement of one thread may then fall inside another's transaction)."""
        self.statements = []
        self.thread = 0 if any_thread else threading.get_ident()
        self.active = True
        try:
            yield self.statements
        finally:
            self.active = False


class RawReplay:
    """Replays captured statements on one DBAPI connection, set up as the app's are."""

    def __init__(self, url: str) -> None:
        self.engine = make_engine(url, pool_size=1)
        self.pooled = self.engine.raw_connection()
        self.conn: Any = self.pooled.driver_connection

    def run(self, statements: Sequence[Statement | None]) -> float:
        """Milliseconds to run ``statements`` and fetch all their rows. Each transaction
        is rolled back, not committed: the start-up writes a sign-in audit event, which a
        replay must not add again (ending a read transaction costs the same either way)."""
        conn = self.conn
        began = time.perf_counter()
        cursor = conn.cursor()
        for item in statements:
            if item is None:
                conn.rollback()
                continue
            if getattr(conn, "in_transaction", False) and item.sql.startswith("BEGIN"):
                continue  # threads interleaved in a recording: one transaction is enough
            if item.many:
                cursor.executemany(item.sql, item.params)
            else:
                cursor.execute(item.sql, item.params)
            if cursor.description is not None:
                cursor.fetchall()
        conn.rollback()
        cursor.close()
        return (time.perf_counter() - began) * 1000

    def explain(self, statement: Statement, postgresql: bool) -> list[str]:
        cursor = self.conn.cursor()
        try:
            if postgresql:
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement.sql, statement.params)
            else:
                cursor.execute("EXPLAIN QUERY PLAN " + statement.sql, statement.params)
            return [" | ".join(str(c) for c in row) for row in cursor.fetchall()]
        finally:
            cursor.close()
            self.conn.rollback()

    def close(self) -> None:
        self.pooled.close()
        self.engine.dispose()


def data_statements(statements: Sequence[Statement | None]) -> list[Statement]:
    return [s for s in statements if s is not None and s.sql.lstrip().upper().startswith(
        ("SELECT", "WITH"))]


# -- the dataset ------------------------------------------------------------------------


@dataclass
class Dataset:
    url: str
    name: str  # SQLite or PostgreSQL
    accounts: int
    charges: int
    ledger: int
    version: str
    support: str  # the username a launch signs in as


def progress(stage: str, done: int, total: int) -> None:
    print(f"\r  {stage}: {done:,}/{total:,}   ", end="", flush=True)
    if stage == "Done":
        print()


def prepare_dataset(url: str, *, create: bool = False, accounts: int = 100_000,
                    months: int = 1, seed: int = 1, usage_percent: int = 100) -> Dataset:
    """The database at ``url``, counted. With ``create``, what is missing is made first
    (the PostgreSQL database, the schema, ``accounts`` demo accounts over ``months``
    at ``usage_percent`` of the usual usage, the PostgreSQL login as a staff member);
    a database that already holds accounts is used as it is."""
    postgresql = parse_url(url).get_backend_name() == "postgresql"
    if create:
        if postgresql:
            ensure_pg_database(url)
        else:
            path = parse_url(url).database
            assert path
            Path(path).parent.mkdir(parents=True, exist_ok=True)
    db = open_database(url, must_exist=not create)
    try:
        check_schema(db, upgrade_outdated=False, create_empty=create)
        count = db.read(lambda s: s.scalar(select(func.count()).select_from(Account))) or 0
        if count == 0:
            if not create:
                raise SystemExit(f"{db.display_url()} holds no accounts: run with --create.")
            print(f"Filling {db.display_url()}: {accounts:,} accounts, {months} "
                  f"month(s), {usage_percent}% usage, seed {seed}")
            summary = generate_demo(db, accounts=accounts, months=months, seed=seed,
                                    usage_percent=usage_percent, progress=progress)
            print(f"  {summary.charges:,} charges in {summary.seconds:.0f} s")
        support = support_login(db, create=create)
        print(f"Counting {db.display_url()}…")
        counted, charges, ledger = db.read(lambda s: (
            s.scalar(select(func.count()).select_from(Account)),
            s.scalar(select(func.count()).select_from(UsageCharge)),
            s.scalar(select(func.count()).select_from(LedgerEntry)),
        ))
        if postgresql:
            version = "PostgreSQL " + str(db.read(
                lambda s: s.scalar(text("SHOW server_version"))))
        else:
            version = f"SQLite {sqlite3.sqlite_version}"
    finally:
        db.close()
    return Dataset(url, "PostgreSQL" if postgresql else "SQLite", int(counted or 0),
                   int(charges or 0), int(ledger or 0), version.split(" (")[0], support)


# -- Qt helpers -------------------------------------------------------------------------


@contextmanager
def counting(signals: Sequence[Any]) -> Iterator[list[int]]:
    """Counts emissions of ``signals`` (one counter each) while the block runs."""
    counts = [0] * len(signals)
    slots = []
    for index, signal in enumerate(signals):
        def slot(*_args: Any, i: int = index) -> None:
            counts[i] += 1
        signal.connect(slot)
        slots.append((signal, slot))
    try:
        yield counts
    finally:
        for signal, slot in slots:
            signal.disconnect(slot)


# -- launch -----------------------------------------------------------------------------


READY = "CREDITS-BENCH-READY"
# ``credits-desktop --db URL`` as its entry script runs it, plus one line: the moment
# the main window has its first page (``Launcher._finish``, which the unattended start
# calls then) is printed on the monotonic clock, shared by every process. Timing to
# the process's exit would add Qt's and Python's tear-down (up to seconds on a busy
# machine), which no one waits for.
LAUNCH_WRAPPER = f"""
import sys, time
from credits_desktop.ui import app
finish = app.Launcher._finish
def announce(self, code):
    print("{READY}", time.monotonic(), flush=True)
    finish(self, code)
app.Launcher._finish = announce
from credits_desktop.cli import main
sys.exit(main(sys.argv[1:]))
"""
FLOOR = f"""
import time
from credits_desktop.ui.app import run_gui
from PySide6.QtWidgets import QApplication
application = QApplication([])
print("{READY}", time.monotonic(), flush=True)
"""


def timed_process(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Milliseconds from the start of ``command`` to its ready line (or its exit when
    it prints none) and to its exit."""
    began = time.monotonic()
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    ended = time.monotonic()
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command[:2])}… exited {done.returncode}: "
                         f"{done.stderr.strip()[-2000:]}")
    ready = ended
    for line in done.stdout.splitlines():
        if line.startswith(READY):
            ready = float(line.split()[1])
    return (ready - began) * 1000, (ended - began) * 1000


def measure_launch(data: Dataset, runs: int, capture: Capture, replay: RawReplay
                   ) -> dict[str, Series]:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", CREDITS_DESK_QUIT_AFTER_START="1",
               CREDITS_DESK_USER=data.support)
    command = [sys.executable, "-c", LAUNCH_WRAPPER, "--db", data.url]
    floor_command = [sys.executable, "-c", FLOOR]
    process, exited, floor, inside, raw = Series(), Series(), Series(), Series(), Series()
    timed_process(command, env)  # warm-up: disk cache, bytecode
    for _ in range(runs):
        ready_ms, exit_ms = timed_process(command, env)
        process.add(ready_ms)
        exited.add(exit_ms)
        floor.add(timed_process(floor_command, env)[0])
    statements: list[Statement | None] = []
    for run in range(runs):
        with capture.recording(any_thread=True) as captured:
            inside.add(launch_in_process(data))
        if run == 0:
            statements = list(captured)
    for _ in range(runs):
        raw.add(replay.run(statements))
    return {"process": process, "exit": exited, "floor": floor, "inside": inside, "raw": raw}


def launch_in_process(data: Dataset) -> float:
    """Milliseconds from Launcher.start to the main window's first page, here."""
    launcher = Launcher(data.url, False, username=data.support, unattended=True)
    codes: list[int] = []
    launcher.finished.connect(codes.append)
    began = time.perf_counter()
    launcher.start()
    wait_until(lambda: bool(codes), [launcher.finished], "the in-process start-up")
    elapsed = (time.perf_counter() - began) * 1000
    if codes[0] != 0:
        raise SystemExit(f"The in-process start-up failed with status {codes[0]}.")
    launcher.shutdown()
    if launcher.window is not None:
        launcher.window.deleteLater()
    QApplication.processEvents()
    return elapsed


# -- search -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    id: int
    name: str
    email: str


def sample_accounts(db: Database, count: int, rng: random.Random) -> list[Sample]:
    low, high = db.read(lambda s: s.execute(select(func.min(Account.id),
                                                   func.max(Account.id))).one())
    found: dict[int, Sample] = {}
    while len(found) < count:
        wanted = [rng.randint(low, high) for _ in range(count * 2)]
        chosen = select(Account.id, Account.name, Account.owner_email).where(
            Account.id.in_(wanted))
        rows = db.read(partial(run_all, chosen))
        for row in rows:
            if len(found) < count:
                found.setdefault(row[0], Sample(row[0], row[1], row[2]))
    return sorted(found.values(), key=lambda a: a.id)


def run_all(statement: Executable, session: Session) -> Sequence[Any]:
    return session.execute(statement).all()


def typed(value: str, longest: int) -> list[str]:
    """What the search field holds after each keystroke typing ``value``."""
    return [value[:n] for n in range(1, min(len(value), longest) + 1)]


def search_texts(samples: Sequence[Sample]) -> dict[str, list[str]]:
    return {
        "email prefix": [t for a in samples for t in typed(a.email, 8)],
        "name prefix": [t for a in samples for t in typed(a.name, 8)],
        "id prefix": [t for a in samples for t in typed(str(a.id), 6)],
    }


@dataclass
class Timing:
    ui: Series = field(default_factory=Series)
    # Until the event loop has also handled what the results queued: the repaint.
    shown: Series = field(default_factory=Series)
    service: Series = field(default_factory=Series)
    raw: Series = field(default_factory=Series)
    rows: list[int] = field(default_factory=list)
    # Per search text or account: app, service and raw SQL times (--details).
    each: dict[str, tuple[Series, Series, Series]] = field(default_factory=dict)
    # Slowest raw replay: milliseconds, label, statements.
    slowest: tuple[float, str, list[Statement | None]] = (0.0, "", [])
    # The longest GUI-thread stall while the window was driven (not the services).
    stall: float = 0.0


def measure_search(window: MainWindow, db: Database, texts: dict[str, list[str]],
                   rounds: int, capture: Capture, replay: RawReplay) -> dict[str, Timing]:
    model = window.model
    results: dict[str, Timing] = {}
    watch = StallWatch()
    for kind, sequence in texts.items():
        timing = results[kind] = Timing()
        watch.start()
        for _ in range(rounds):
            # Back to the full list between sequences, as clearing the field does.
            set_query(window, "")
            for value in sequence:
                measured = set_query(window, value)
                if measured is None:
                    continue  # a trailing space: the same search, nothing is read
                ms, shown_ms = measured
                timing.ui.add(ms)
                timing.shown.add(shown_ms)
                timing.rows.append(model.rowCount())
                timing.each.setdefault(value, (Series(), Series(), Series()))[0].add(ms)
        watch.stop()
        timing.stall = watch.take()
        for value in dict.fromkeys(sequence):
            if value not in timing.each:
                continue
            query = AccountQuery(text=value, sort=AccountSort.NAME)
            with capture.recording() as captured:
                search_accounts(db, query, limit=PAGE)
            statements = list(captured)
            for _ in range(rounds):
                began = time.perf_counter()
                search_accounts(db, query, limit=PAGE)
                service_ms = (time.perf_counter() - began) * 1000
                timing.service.add(service_ms)
                ms = replay.run(statements)
                timing.raw.add(ms)
                timing.each[value][1].add(service_ms)
                timing.each[value][2].add(ms)
                if ms > timing.slowest[0]:
                    timing.slowest = (ms, value, statements)
    return results


def drain() -> None:
    """Handle every pending event (repaints of the last result), so that the next
    measurement starts on an idle window."""
    for _ in range(3):
        QApplication.processEvents()


def set_query(window: MainWindow, value: str) -> tuple[float, float] | None:
    """Milliseconds from set_query to page_loaded, and to the repaint after it; None
    when the text is the one shown (set_query then reads nothing)."""
    model = window.model
    if model.query.text == value.strip() and not model.is_loading:
        return None
    drain()
    with counting([model.page_loaded, model.load_failed]) as counts:
        began = time.perf_counter()
        model.set_query(value)
        wait_until(lambda: sum(counts) > 0, [model.page_loaded, model.load_failed],
                   f"the search '{value}'")
        loaded = time.perf_counter()
    drain()
    shown = time.perf_counter()
    if counts[1]:
        raise SystemExit(f"The search '{value}' failed.")
    return (loaded - began) * 1000, (shown - began) * 1000


# -- account open -----------------------------------------------------------------------


def account_row(db: Database, account_id: int) -> AccountRow:
    """The account's row as the accounts table holds it."""
    page = search_accounts(db, AccountQuery(text=str(account_id), sort=AccountSort.ID),
                           limit=PAGE)
    for row in page.rows:
        if row.id == account_id:
            return row
    raise SystemExit(f"Account {account_id} was not found by its id.")


def open_once(window: MainWindow, row: AccountRow) -> tuple[float, float]:
    """Milliseconds from open_account to the summary and the first pages of grants,
    charges and ledger, and to the repaint after them; the tab is closed afterwards."""
    drain()
    began = time.perf_counter()
    detail: AccountDetail = window.open_account(row)
    signals = [detail.summary_loaded, detail.grants.page_loaded, detail.charges.page_loaded,
               detail.ledger.page_loaded]
    # The reads were submitted inside open_account; their results come back through
    # the event loop, so connecting now misses none of them.
    with counting(signals) as counts:
        wait_until(lambda: all(counts) or bool(detail.message.isVisible()),
                   [*signals, detail.load_failed], f"account {row.id} to open")
        elapsed = (time.perf_counter() - began) * 1000
    drain()
    shown = (time.perf_counter() - began) * 1000
    if not all(counts):
        raise SystemExit(f"Account {row.id} did not load: {detail.message.text()}")
    window.close_account_tab(window.tabs.indexOf(detail))
    drain()
    return elapsed, shown


def open_services(db: Database, account_id: int) -> None:
    """The reads an account tab makes, one after the other."""
    account_summary(db, account_id)
    account_grants(db, account_id)
    charges_page(db, account_id, limit=DETAIL_PAGE_SIZE)
    ledger_page(db, account_id, limit=DETAIL_PAGE_SIZE)


def measure_open(window: MainWindow, db: Database, ids: Sequence[int], rounds: int,
                 capture: Capture, replay: RawReplay) -> Timing:
    timing = Timing()
    rows = [account_row(db, account_id) for account_id in ids]
    watch = StallWatch()
    watch.start()
    for _ in range(rounds):
        for row in rows:
            ms, shown_ms = open_once(window, row)
            timing.ui.add(ms)
            timing.shown.add(shown_ms)
            timing.each.setdefault(str(row.id), (Series(), Series(), Series()))[0].add(ms)
    watch.stop()
    timing.stall = watch.take()
    for row in rows:
        with capture.recording() as captured:
            open_services(db, row.id)
        statements = list(captured)
        for _ in range(rounds):
            began = time.perf_counter()
            open_services(db, row.id)
            service_ms = (time.perf_counter() - began) * 1000
            timing.service.add(service_ms)
            ms = replay.run(statements)
            timing.raw.add(ms)
            timing.each[str(row.id)][1].add(service_ms)
            timing.each[str(row.id)][2].add(ms)
            if ms > timing.slowest[0]:
                timing.slowest = (ms, f"account {row.id}", statements)
    return timing


def busiest_account(db: Database) -> tuple[int, int]:
    """The account with the most charges, and how many (one scan of an index)."""
    row = db.read(lambda s: s.execute(
        select(UsageCharge.account_id, func.count()).group_by(UsageCharge.account_id)
        .order_by(func.count().desc()).limit(1)).one())
    return int(row[0]), int(row[1])


# -- one database -----------------------------------------------------------------------


@dataclass
class Result:
    data: Dataset
    launch: dict[str, Series]
    search: dict[str, Timing]
    open: Timing
    open_busiest: Timing
    busiest: tuple[int, int]
    sample_charges: list[int]
    load: tuple[float, float]  # load average at the start and the end


def measure_database(data: Dataset, *, launches: int, rounds: int, opens: int, seed: int,
                     show_details: bool = False, show_plans: bool = False) -> Result:
    """Launch, search and open on ``data``'s database, each beside its raw SQL."""
    capture = shared_capture()
    print(f"{data.name}: {data.accounts:,} accounts, {data.charges:,} charges")
    load_before = load_average()
    replay = RawReplay(data.url)
    db = Database.open(data.url)
    try:
        print("  launch…")
        launch = measure_launch(data, launches, capture, replay)
        rng = random.Random(seed)
        samples = sample_accounts(db, 3 + opens, rng)
        busiest = busiest_account(db)
        window = MainWindow(db, staff_actor(db, data.support))
        window.show()
        wait_until(lambda: window.model.rowCount() > 0, [window.model.page_loaded],
                   "the first page")
        print("  search…")
        search = measure_search(window, db, search_texts(samples[:3]), rounds,
                                capture, replay)
        print("  open…")
        opened = measure_open(window, db, [a.id for a in samples[3:]], rounds,
                              capture, replay)
        opened_busiest = measure_open(window, db, [busiest[0]], rounds * 4, capture,
                                      replay)
        counts = db.read(lambda s: [int(c) for c in s.scalars(
            select(func.count()).select_from(UsageCharge)
            .where(UsageCharge.account_id.in_([a.id for a in samples[3:]]))
            .group_by(UsageCharge.account_id))])
        window.worker.wait_for_done()
        window.close()
        window.deleteLater()
        QApplication.processEvents()
        result = Result(data, launch, search, opened, opened_busiest, busiest, counts,
                        (load_before, load_average()))
        if show_details:
            details(result)
        if show_plans:
            explain(result, replay, data.name == "PostgreSQL")
        return result
    finally:
        replay.close()
        db.close()


_CAPTURE: list[Capture] = []


def shared_capture() -> Capture:
    """One capture per process: each listens on every engine."""
    if not _CAPTURE:
        _CAPTURE.append(Capture())
    return _CAPTURE[0]


def all_searches(result: Result) -> Timing:
    everything = Timing()
    for timing in result.search.values():
        for mine, theirs in ((everything.ui, timing.ui), (everything.shown, timing.shown),
                             (everything.service, timing.service),
                             (everything.raw, timing.raw)):
            mine.values += theirs.values
        everything.rows += timing.rows
        everything.stall = max(everything.stall, timing.stall)
    return everything


def measures_of(result: Result) -> list[Measure]:
    """The figures of ``result`` as run_all's measures (see common.py)."""
    launch = result.launch
    searches = all_searches(result)
    kinds = ", ".join(f"{kind} {t.ui.p95:.1f}" for kind, t in result.search.items())
    charges = statistics.median(result.sample_charges) if result.sample_charges else 0
    return [
        make_measure(
            "launch to an interactive main window", TARGETS_MS["launch"],
            launch["process"].values, launch["raw"].values, None,
            f"{plural(len(launch['process'].values), 'launch', 'launches')} of "
            "`credits-desktop --db URL` offscreen, from the process's start to the main "
            "window's first page; of which Python, imports and QApplication "
            f"{fmt_ms(launch['floor'].median)} ms, the start-up itself (in process) "
            f"{fmt_ms(launch['inside'].median)} ms; to the process's exit "
            f"{fmt_ms(launch['exit'].median)} ms"),
        make_measure(
            "search as you type, keystroke to rows shown", TARGETS_MS["search"],
            searches.ui.values, searches.raw.values, searches.stall,
            f"{len(searches.ui.values)} searches (email, name and id prefixes typed a "
            f"character at a time; median {statistics.median(searches.rows or [0]):,.0f} "
            f"rows); p95 by kind: {kinds} ms; with the repaint after it "
            f"{searches.shown.text()} ms"),
        make_measure(
            "open an account: balances and first pages", TARGETS_MS["open"],
            result.open.ui.values, result.open.raw.values, result.open.stall,
            f"{len(result.open.each)} sampled accounts (median {charges:,.0f} charges) "
            "opened " + plural(len(result.open.ui.values) // max(1, len(result.open.each)),
                               "time", "times")),
        make_measure(
            f"open the busiest account (#{result.busiest[0]}, {result.busiest[1]:,} "
            "charges)", TARGETS_MS["open"],
            result.open_busiest.ui.values, result.open_busiest.raw.values,
            result.open_busiest.stall, "raw SQL: its four reads one after the other"),
    ]


def browse_measures(data: Dataset, *, rounds: int, launches: int = 10, opens: int = 20,
                    seed: int = 1) -> list[Measure]:
    """Launch, search and open on ``data``'s database as run_all's measures."""
    return measures_of(measure_database(data, launches=launches, rounds=rounds,
                                        opens=opens, seed=seed))


def measure(url: str, *, rounds: int, launches: int = 10, opens: int = 20,
            seed: int = 1) -> list[Measure]:
    """The same for the database at ``url`` (its support login must exist)."""
    return browse_measures(prepare_dataset(url), rounds=rounds, launches=launches,
                           opens=opens, seed=seed)


def details(result: Result) -> None:
    """Every search text and account opened: app, services and raw SQL medians."""
    parts = [*result.search.items(), ("open", result.open), ("busiest", result.open_busiest)]
    for kind, timing in parts:
        print(f"\n== {result.data.name}: {kind} (median ms: app, services, raw SQL) ==")
        for label, (ui, service, raw) in timing.each.items():
            print(f"  {label!r:>28}  {fmt_ms(ui.median):>7} {fmt_ms(service.median):>7} "
                  f"{fmt_ms(raw.median):>7}")


def explain(result: Result, replay: RawReplay, postgresql: bool) -> None:
    worst = max(result.search.values(), key=lambda t: t.slowest[0])
    for title, (ms, label, statements) in (("slowest search", worst.slowest),
                                           ("slowest account open", result.open.slowest)):
        print(f"\n== {result.data.name}: {title} ({label}, {ms:.1f} ms raw) ==")
        for statement in data_statements(statements):
            print(statement.sql.strip()[:2000])
            print(f"  params: {statement.params!r}"[:400])
            for line in replay.explain(statement, postgresql):
                print("   ", line)
            print()


# -- the report -------------------------------------------------------------------------


def verdict(series: Series, target: str) -> str:
    return "met" if series.p95 <= TARGETS_MS[target] else "**missed**"


def render(results: list[Result], args: argparse.Namespace) -> str:
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    versions = ", ".join(r.data.version for r in results)
    lines = [
        f"## {SECTION}",
        "",
        f"Measured on {today}: {os.cpu_count()} cores ({cpu_model()}), {ram_gib():.0f} GiB, "
        f"Python "
        f"{platform.python_version()}, {versions}; Qt offscreen. "
        f"`python benchmarks/bench_browse.py --launches {args.launches} --rounds "
        f"{args.rounds} --opens {args.opens}` (`--create` makes the databases first).",
        "",
        f"Datasets, made by the demo generator (seed {args.seed}) with {args.months} "
        "month(s) of history, so that 100,000 accounts are made in minutes (the database "
        "files stay in the OS page cache):",
        "",
    ]
    for r in results:
        lines.append(f"- {r.data.name}: {r.data.accounts:,} accounts, {r.data.charges:,} "
                     f"charges, {r.data.ledger:,} ledger entries. Load average (1 min) "
                     f"{r.load[0]:.2f} at the start, {r.load[1]:.2f} at the end.")
    lines += [
        "",
        "Milliseconds, median / p95. *App*: launch: the `credits-desktop` process from its "
        "start to the first page; search: `set_query` to `page_loaded`; open: "
        "`open_account` to the summary and the first pages of grants, charges and ledger. "
        "*+ repaint*: until the event loop has also handled what the results queued (the "
        "repaint). *Services*: the same service calls without Qt (launch: the start-up "
        "in this process, `Launcher.start` to the first page). *Raw SQL*: the statements "
        "the services send, replayed on one open connection, every row fetched. "
        "*÷ raw*: app median / raw SQL median. *GUI stall*: the longest time the event "
        "loop could not run while the window was driven (a 5 ms timer's longest gap, "
        "less 5 ms).",
        "",
        "| database | measure | target p95 | app | app + repaint | services | raw SQL "
        "| ÷ raw | GUI stall | target |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in results:
        name = r.data.name
        launch = r.launch
        lines.append(
            f"| {name} | launch ({len(launch['process'].values)} runs) | 1,500 | "
            f"{launch['process'].text()} | – | {launch['inside'].text()} | "
            f"{launch['raw'].text()} | {ratio(launch['process'], launch['raw'])} | – | "
            f"{verdict(launch['process'], 'launch')} |")
        for kind, timing in r.search.items():
            lines.append(row_of(name, f"search, {kind} ({len(timing.ui.values)} searches, "
                                f"median {statistics.median(timing.rows):,.0f} rows)",
                                timing, "search"))
        lines.append(row_of(name, "search, all", all_searches(r), "search"))
        charges = statistics.median(r.sample_charges) if r.sample_charges else 0
        lines.append(row_of(name, f"open account ({len(r.open.each)} accounts × "
                            f"{args.rounds}, median {charges:,.0f} charges)", r.open, "open"))
        lines.append(row_of(name, f"open the busiest account (#{r.busiest[0]}, "
                            f"{r.busiest[1]:,} charges)", r.open_busiest, "open"))
    lines += [
        "",
        "Launch floor: a process that only imports the application and creates the "
        "QApplication takes "
        + "; ".join(f"{r.launch['floor'].text()} ms beside {r.data.name}" for r in results)
        + " (median / p95), before any database work.",
        "",
    ]
    return "\n".join(lines)


def row_of(name: str, measure: str, timing: Timing, target: str) -> str:
    return (f"| {name} | {measure} | {TARGETS_MS[target]:,.0f} | {timing.ui.text()} | "
            f"{timing.shown.text()} | {timing.service.text()} | {timing.raw.text()} | "
            f"{ratio(timing.ui, timing.raw)} | {fmt_ms(timing.stall)} | "
            f"{verdict(timing.ui, target)} |")


def write_section(body: str) -> Path:
    return common_write_section(ROOT / "BENCHMARKS.md", SECTION, body)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", action="append", metavar="URL",
                        help="a database to measure (repeatable; default: the SQLite file "
                             f"{DEFAULT_SQLITE} and {make_url(DEFAULT_PG).render_as_string()})")
    parser.add_argument("--create", action="store_true",
                        help="create and fill the databases that are missing or empty")
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--months", type=int, default=1)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--launches", type=int, default=10, help="process launches")
    parser.add_argument("--rounds", type=int, default=5,
                        help="times each search sequence and each account open is repeated")
    parser.add_argument("--opens", type=int, default=20, help="sampled accounts to open")
    parser.add_argument("--explain", action="store_true",
                        help="print the plans of the slowest search and account open")
    parser.add_argument("--details", action="store_true",
                        help="print the figures of every search text and account opened")
    parser.add_argument("--no-write", action="store_true", help="leave BENCHMARKS.md alone")
    args = parser.parse_args(argv)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    urls = args.db or [DEFAULT_SQLITE, DEFAULT_PG]
    datasets = [prepare_dataset(url, create=args.create, accounts=args.accounts,
                                months=args.months, seed=args.seed) for url in urls]
    results = [measure_database(data, launches=args.launches, rounds=args.rounds,
                                opens=args.opens, seed=args.seed, show_details=args.details,
                                show_plans=args.explain) for data in datasets]
    body = render(results, args)
    print()
    print(body)
    if not args.no_write:
        print(f"Updated {write_section(body)}")
    del app
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
