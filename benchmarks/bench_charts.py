"""Benchmark of the charts: an account's 12-month Usage tab and the managers' 12-month
dashboard, each from the request to the chart drawn, next to the raw SQL it needs.

    python benchmarks/bench_charts.py [--db URL ...] [--rounds N]

Without ``--db`` the two databases of the 100,000-account / 10-million-charge run are
measured (``/tmp/credits_bench/bench-10m.sqlite3`` and ``credits_bench10``). Nothing is
written to them: the staff member acting is read, not signed in.

What is measured, in this process, with Qt offscreen (``QT_QPA_PLATFORM=offscreen``):

* account chart: an :class:`~credits_desktop.ui.account_charts.AccountCharts` widget
  (the account's Usage tab, 1280×800) for the busiest account (most charges in the
  per-account rollup) and five sampled ones (seed 1). Each is shown once on its
  default range (not timed); then, each round, the range is put back to the current
  billing period (not timed) and the timed request is ``set_range(LAST_12_MONTHS)``, as
  the range combo does, until the charts' canvas has painted the new data (the first
  paint event of its viewport after ``loaded``, and the event loop's turn after it).
* dashboard: a :class:`~credits_desktop.ui.dashboard_view.DashboardView` (1280×900,
  range "Last 12 months", all plans, the default granularity, weeks), shown once (not
  timed); each round is ``refresh()`` until, as three rows: the usage chart and the
  purchases tile are painted with the new figures; the active-accounts tile is; the
  top-accounts table is. All three count from the same request: the view reads the
  accounts after the usage, by design, so their times include the charts'.
* GUI stall (:class:`StallWatch`): a 5 ms precise timer on the GUI thread during each
  timed request; the largest lateness of a tick (gap between ticks less 5 ms) is what
  staff would feel as a frozen window (Python drawing, or a worker holding the GIL).
* raw SQL: the statements the same service calls issue (captured through SQLAlchemy's
  ``before_cursor_execute`` while calling them directly), replayed on one open DBAPI
  connection, every row fetched: the lower bound of the same answer on the same
  database. The account chart's five read transactions run one after the other, as
  in the worker; the dashboard's parts each replay their own statements.

``measure(url, rounds=N)`` returns one dict per figure (see :func:`figure`) for
``benchmarks/run_all.py``; ``--db``/``--rounds`` print them as a table.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QEvent, QEventLoop, QObject, Qt, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication, QWidget  # noqa: E402
from sqlalchemy import Engine, event, func, select  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from credits_desktop.domain.permissions import Role  # noqa: E402
from credits_desktop.services.account_charts import (  # noqa: E402
    Granularity,
    RangePreset,
    load_chart_data,
)
from credits_desktop.services.dashboard import (  # noqa: E402
    active_accounts,
    purchases_overview,
    top_accounts,
    usage_overview,
)
from credits_desktop.services.operations import Actor  # noqa: E402
from credits_desktop.store.database import Database  # noqa: E402
from credits_desktop.store.engine import make_engine  # noqa: E402
from credits_desktop.store.models import Account, Staff, UsageDailyAccount  # noqa: E402
from credits_desktop.ui.account_charts import AccountCharts  # noqa: E402
from credits_desktop.ui.dashboard_view import LAST_12_MONTHS, DashboardView  # noqa: E402
from credits_desktop.ui.workers import Worker  # noqa: E402

__all__ = [
    "Capture",
    "RawReplay",
    "StallWatch",
    "Statement",
    "figure",
    "main",
    "measure",
    "print_table",
]

DEFAULT_URLS = ("sqlite:////tmp/credits_bench/bench-10m.sqlite3",
                "postgresql+psycopg://postgres@127.0.0.1:5432/credits_bench10")
TARGET_MS = 100.0
SAMPLED_ACCOUNTS = 5
STALL_INTERVAL_MS = 5
TIMEOUT_S = 120.0
SEED = 1

Figure = dict[str, object]


def figure(measure: str, target_ms: float | None, app_ms: Sequence[float],
           raw_ms: Sequence[float], stall_ms: float | None, note: str) -> Figure:
    """One figure as ``run_all.py`` takes it: every run's milliseconds, app and raw."""
    return {"measure": measure, "target_ms": target_ms, "app_ms": list(app_ms),
            "raw_ms": list(raw_ms), "stall_ms": stall_ms, "note": note}


def ms_since(began: float, until: float | None = None) -> float:
    return ((time.perf_counter() if until is None else until) - began) * 1000


def fmt_ms(ms: float) -> str:
    if math.isnan(ms):
        return "–"
    return f"{ms:,.0f}" if ms >= 100 else f"{ms:.1f}"


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


# -- capturing and replaying the SQL ---------------------------------------------------------


@dataclass(frozen=True)
class Statement:
    sql: str
    params: Any
    many: bool


class Capture:
    """The statements the calling thread sends through SQLAlchemy while recording; a
    ``None`` entry marks the end of a transaction (commit or rollback). One instance
    per process (:meth:`get`): its listeners are global to every engine."""

    _instance: Capture | None = None

    def __init__(self) -> None:
        self._active = False
        self._thread = 0
        self._lock = threading.Lock()
        self.statements: list[Statement | None] = []
        event.listen(Engine, "before_cursor_execute", self._execute)
        event.listen(Engine, "commit", self._end)
        event.listen(Engine, "rollback", self._end)

    @classmethod
    def get(cls) -> Capture:
        if cls._instance is None:
            cls._instance = Capture()
        return cls._instance

    def _mine(self) -> bool:
        return self._active and threading.get_ident() == self._thread

    def _execute(self, _conn: Any, _cursor: Any, statement: str, parameters: Any,
                 _context: Any, executemany: bool) -> None:
        if self._mine():
            with self._lock:
                self.statements.append(Statement(statement, parameters, executemany))

    def _end(self, _conn: Any) -> None:
        if self._mine():
            with self._lock:
                if self.statements and self.statements[-1] is not None:
                    self.statements.append(None)

    @contextmanager
    def recording(self) -> Iterator[list[Statement | None]]:
        self.statements = []
        self._thread = threading.get_ident()
        self._active = True
        try:
            yield self.statements
        finally:
            self._active = False


class RawReplay:
    """Replays captured statements on one DBAPI connection, set up as the app's are
    (``store.engine.make_engine``: SQLite pragmas and explicit BEGIN; psycopg without
    auto-prepare)."""

    def __init__(self, url: str) -> None:
        self.engine = make_engine(url, pool_size=1)
        self.postgresql = self.engine.dialect.name == "postgresql"
        self._pooled = self.engine.raw_connection()
        self.conn: Any = self._pooled.driver_connection

    def run(self, statements: Sequence[Statement | None], *,
            before: Sequence[str] = ()) -> float:
        """Milliseconds to run ``statements``, fetching every row. Each transaction is
        rolled back: a replay must leave the database as it found it. ``before`` are
        statements run first, untimed, in the first transaction."""
        conn = self.conn
        cursor = conn.cursor()
        try:
            for sql in before:
                cursor.execute(sql)
            began = time.perf_counter()
            for item in statements:
                if item is None:
                    conn.rollback()
                    continue
                if item.many:
                    cursor.executemany(item.sql, item.params)
                else:
                    cursor.execute(item.sql, item.params)
                if cursor.description is not None:
                    cursor.fetchall()
            conn.rollback()
            return ms_since(began)
        except BaseException:
            conn.rollback()
            raise
        finally:
            cursor.close()

    def close(self) -> None:
        self._pooled.close()
        self.engine.dispose()


def captured(work: Callable[[], object]) -> tuple[list[Statement | None], float]:
    """The statements ``work()`` sends (on this thread), and its milliseconds."""
    with Capture.get().recording() as statements:
        began = time.perf_counter()
        work()
        elapsed = ms_since(began)
    return list(statements), elapsed


# -- the GUI thread --------------------------------------------------------------------------


class StallWatch(QObject):
    """How long the GUI thread stops answering: a precise timer ticks every
    ``interval_ms`` while started, and each tick's lateness (the gap since the
    previous tick less the interval) is kept with the time the gap began.

    The event loop must run (``QEventLoop.exec``) for the ticks to come; a tick that
    comes late means the GUI thread was busy (drawing, or waiting for the GIL).
    ``on_tick`` is called at every tick (the wait loops check their condition there).
    """

    def __init__(self, interval_ms: int = STALL_INTERVAL_MS) -> None:
        super().__init__()
        self.interval_ms = interval_ms
        self.on_tick: Callable[[], None] | None = None
        self._timer = QTimer(self)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._tick)
        self._last = time.perf_counter()
        self.gaps: list[tuple[float, float]] = []  # (when the gap began, lateness ms)

    def start(self) -> None:
        self.gaps = []
        self._last = time.perf_counter()
        self._timer.start()

    def stop(self) -> None:
        self._tick()  # the gap up to now counts as well
        self._timer.stop()

    def _tick(self) -> None:
        now = time.perf_counter()
        self.gaps.append((self._last, (now - self._last) * 1000 - self.interval_ms))
        self._last = now
        if self.on_tick is not None:
            self.on_tick()

    def max_ms(self, until: float | None = None) -> float:
        """The longest stall seen (0 if none), among gaps begun before ``until``."""
        late = [lateness for began, lateness in self.gaps if until is None or began < until]
        return max(0.0, max(late, default=0.0))


class PaintProbe(QObject):
    """Notes when ``widget`` has been painted while ``ready()`` held: the first paint
    event after the data arrived, and the event loop's next turn after that paint
    (``done_at``), when the frame is complete."""

    def __init__(self, widget: QWidget, ready: Callable[[], bool]) -> None:
        super().__init__()
        self._widget = widget
        self._ready = ready
        self.painted_at: float | None = None
        self.done_at: float | None = None
        widget.installEventFilter(self)

    def eventFilter(self, watched: QObject, ev: QEvent) -> bool:
        if (ev.type() == QEvent.Type.Paint and self.painted_at is None
                and self._ready()):
            self.painted_at = time.perf_counter()
            QTimer.singleShot(0, self._finished)
        return False

    def _finished(self) -> None:
        self.done_at = time.perf_counter()

    def finished(self) -> bool:
        return self.done_at is not None

    def remove(self) -> None:
        self._widget.removeEventFilter(self)


def run_until(watch: StallWatch, done: Callable[[], bool], what: str,
              timeout_s: float = TIMEOUT_S) -> None:
    """Run the event loop until ``done()`` (checked at each of the watch's ticks, which
    must be running)."""
    if done():
        return
    loop = QEventLoop()
    deadline = time.perf_counter() + timeout_s
    expired: list[bool] = []

    def check() -> None:
        if done():
            loop.quit()
        elif time.perf_counter() > deadline:
            expired.append(True)
            loop.quit()

    watch.on_tick = check
    try:
        loop.exec()
    finally:
        watch.on_tick = None
    if expired and not done():
        raise SystemExit(f"Timed out waiting for {what}.")


def settle(watch: StallWatch, ms: int = 30) -> None:
    """Let queued events (repaints, finished jobs) run, untimed."""
    ends = time.perf_counter() + ms / 1000
    watch.start()
    run_until(watch, lambda: time.perf_counter() >= ends, "the event loop")
    watch.stop()


def changed(current: Callable[[], object], old: object) -> Callable[[], bool]:
    """A condition: ``current()`` is no longer ``old`` (new data arrived)."""
    return lambda: current() is not old


def either(first: Callable[[], bool], failures: Sequence[str]) -> Callable[[], bool]:
    return lambda: first() or bool(failures)


# -- the database ---------------------------------------------------------------------------


def read_actor(db: Database, roles: Sequence[Role]) -> Actor:
    """An active staff member of the first of ``roles`` found, read (not signed in:
    this benchmark writes nothing)."""
    for role in roles:
        stmt = (select(Staff.id, Staff.username, Staff.display_name, Staff.role)
                .where(Staff.role == role.value, Staff.active.is_(True)).order_by(Staff.id))
        row = db.read(partial(first_row, stmt))
        if row is not None:
            return Actor(int(row[0]), str(row[1]), str(row[2]), Role(str(row[3])))
    raise SystemExit(f"{db.display_url()} has no active staff member to act as.")


def first_row(stmt: Any, session: Session) -> Any:
    return session.execute(stmt).first()


def busiest_account(db: Database) -> tuple[int, int]:
    """The account with the most charges in the per-account rollup, and how many."""
    row = db.read(lambda s: s.execute(
        select(UsageDailyAccount.account_id, func.sum(UsageDailyAccount.charges))
        .group_by(UsageDailyAccount.account_id)
        .order_by(func.sum(UsageDailyAccount.charges).desc()).limit(1)).one())
    return int(row[0]), int(row[1])


def charges_of(db: Database, account_ids: Sequence[int]) -> dict[int, int]:
    rows = db.read(lambda s: s.execute(
        select(UsageDailyAccount.account_id, func.sum(UsageDailyAccount.charges))
        .where(UsageDailyAccount.account_id.in_(list(account_ids)))
        .group_by(UsageDailyAccount.account_id)).all())
    found = {int(a): int(n or 0) for a, n in rows}
    return {a: found.get(a, 0) for a in account_ids}


def sample_accounts(db: Database, count: int, exclude: int) -> list[int]:
    ids = db.read(lambda s: [int(i) for i in s.scalars(select(Account.id).order_by(Account.id))])
    ids = [i for i in ids if i != exclude]
    return random.Random(SEED).sample(ids, min(count, len(ids)))


# -- the account chart ----------------------------------------------------------------------


def account_chart_runs(db: Database, worker: Worker, actor: Actor, account_id: int,
                       rounds: int, watch: StallWatch) -> tuple[list[float], float]:
    """Each round's milliseconds from ``set_range(LAST_12_MONTHS)`` to the new charts
    painted, and the longest GUI stall seen during them."""
    view = AccountCharts(db, worker, account_id, actor=actor)
    failures: list[str] = []
    view.load_failed.connect(failures.append)
    view.resize(1280, 800)
    view.show()  # the first show loads the default range (the current billing period)
    watch.start()
    run_until(watch, either(lambda: view.data is not None, failures),
              f"account {account_id}'s charts")
    watch.stop()
    times: list[float] = []
    stall = 0.0

    def data() -> object:
        return view.data

    try:
        for _ in range(rounds):
            if failures:
                break
            # Back to the current period first, so that the timed request changes the
            # picture (new bars, new lines) as picking it in the combo does.
            current = either(changed(data, view.data), failures)
            view.set_range(RangePreset.CURRENT_PERIOD)
            watch.start()
            run_until(watch, current, f"account {account_id}'s current period")
            watch.stop()
            settle(watch)
            probe = PaintProbe(view.canvas.viewport(), changed(data, view.data))
            drawn = either(probe.finished, failures)
            watch.start()
            began = time.perf_counter()
            view.set_range(RangePreset.LAST_12_MONTHS)
            run_until(watch, drawn, f"account {account_id}'s 12-month charts")
            watch.stop()
            probe.remove()
            if probe.done_at is not None:
                times.append(ms_since(began, probe.done_at))
                stall = max(stall, watch.max_ms(probe.done_at))
    finally:
        view.shutdown()
        view.close()
        view.deleteLater()
        worker.wait_for_done()
        settle(watch)
    if failures:
        raise SystemExit(f"Account {account_id}'s charts failed: {failures[0]}")
    shown = view.data
    assert shown is not None and shown.range.days > 300, "the 12-month range was drawn"
    return times, stall


def account_chart_raw(db: Database, replay: RawReplay, account_id: int,
                      rounds: int) -> tuple[list[float], list[float], int]:
    """Raw SQL milliseconds of the chart's reads (each round), the service calls'
    milliseconds without Qt, and how many statements."""
    def work() -> object:
        return load_chart_data(db, account_id, preset=RangePreset.LAST_12_MONTHS,
                               granularity=Granularity.MONTH)

    statements, _first = captured(work)
    services = []
    raw = []
    for _ in range(rounds):
        began = time.perf_counter()
        work()
        services.append(ms_since(began))
        raw.append(replay.run(statements))
    return raw, services, sum(1 for s in statements if s is not None)


# -- the dashboard --------------------------------------------------------------------------


@dataclass
class DashboardRuns:
    charts: list[float]
    active: list[float]
    top: list[float]
    stall_charts: float = 0.0
    stall_active: float = 0.0
    stall_top: float = 0.0
    trouble: str = ""  # what the view's status said, if it showed an error


def dashboard_runs(db: Database, worker: Worker, actor: Actor, rounds: int,
                   watch: StallWatch) -> tuple[DashboardRuns, DashboardView]:
    view = DashboardView(db, worker, actor)
    view.range_preset.setCurrentIndex(LAST_12_MONTHS)  # not started: reads nothing yet
    view.resize(1280, 900)
    loads = [0]
    view.loaded.connect(lambda: loads.__setitem__(0, loads[0] + 1))
    view.show()  # the first show reads everything (not timed: caches warm up)
    watch.start()
    run_until(watch, lambda: loads[0] > 0 and view.top is not None, "the dashboard")
    watch.stop()
    if view.usage is None or view.top is None or view.active is None:
        raise SystemExit(f"The dashboard did not load: {view.status.text()}")
    runs = DashboardRuns([], [], [])
    for _ in range(rounds):
        settle(watch)
        usage, purchases, active, top = view.usage, view.purchases, view.active, view.top
        chart = PaintProbe(view.chart["usage"].canvas.viewport(),
                           changed(lambda: view.usage, usage))
        sold = PaintProbe(view.tiles["purchased"].value,
                          changed(lambda: view.purchases, purchases))
        tile = PaintProbe(view.tiles["active"].value, changed(lambda: view.active, active))
        table = PaintProbe(view.table.viewport(), changed(lambda: view.top, top))
        probes = (chart, sold, tile, table)
        loaded = loads[0]

        def complete() -> bool:
            return loads[0] > loaded and all(p.finished() for p in probes)  # noqa: B023

        watch.start()
        began = time.perf_counter()
        view.refresh()
        run_until(watch, complete, "the dashboard refresh")
        watch.stop()
        for probe in probes:
            probe.remove()
        assert chart.done_at and sold.done_at and tile.done_at and table.done_at
        charts_at = max(chart.done_at, sold.done_at)
        runs.charts.append(ms_since(began, charts_at))
        runs.active.append(ms_since(began, tile.done_at))
        runs.top.append(ms_since(began, table.done_at))
        runs.stall_charts = max(runs.stall_charts, watch.max_ms(charts_at))
        runs.stall_active = max(runs.stall_active, watch.max_ms(tile.done_at))
        runs.stall_top = max(runs.stall_top, watch.max_ms(table.done_at))
        if "58151c" in view.status.styleSheet():  # the view's error style
            runs.trouble = view.status.text()
    return runs, view


# -- one database ---------------------------------------------------------------------------


def measure(url: str, *, rounds: int) -> list[Figure]:
    """The figures of one database (see the module docstring)."""
    app = QApplication.instance() or QApplication(sys.argv[:1])
    db = Database.open(url)
    replay = RawReplay(url)
    worker = Worker()
    watch = StallWatch()
    figures: list[Figure] = []
    try:
        name = "PostgreSQL" if db.is_postgresql else "SQLite"
        print(f"{name} {db.display_url()}: charts…", flush=True)
        support = read_actor(db, (Role.SUPPORT, Role.MANAGER, Role.ADMIN))
        busiest, busiest_charges = busiest_account(db)
        sampled = sample_accounts(db, SAMPLED_ACCOUNTS, busiest)
        counts = charges_of(db, sampled)

        print("  account chart, the busiest account…", flush=True)
        app_ms, stall = account_chart_runs(db, worker, support, busiest, rounds, watch)
        raw_ms, service_ms, statements = account_chart_raw(db, replay, busiest, rounds)
        figures.append(figure(
            f"account 12-month chart (busiest account #{busiest}, {busiest_charges:,} "
            "charges in the rollup)", TARGET_MS, app_ms, raw_ms, stall,
            f"set_range(Last 12 months) on the Usage tab to the canvas painted; services "
            f"(load_chart_data, no Qt) median {fmt_ms(median(service_ms))} ms; raw: its "
            f"{statements} statements replayed"))

        print(f"  account chart, {len(sampled)} sampled accounts…", flush=True)
        app_all: list[float] = []
        raw_all: list[float] = []
        service_all: list[float] = []
        stall_all = 0.0
        for account_id in sampled:
            app_ms, stall = account_chart_runs(db, worker, support, account_id, rounds, watch)
            raw_ms, service_ms, _n = account_chart_raw(db, replay, account_id, rounds)
            app_all += app_ms
            raw_all += raw_ms
            service_all += service_ms
            stall_all = max(stall_all, stall)
        figures.append(figure(
            f"account 12-month chart ({len(sampled)} sampled accounts × {rounds}, median "
            f"{statistics.median(counts.values()):,.0f} charges)", TARGET_MS, app_all,
            raw_all, stall_all,
            f"accounts {', '.join(f'#{a}' for a in sampled)}; services median "
            f"{fmt_ms(median(service_all))} ms"))

        print("  dashboard…", flush=True)
        manager = read_actor(db, (Role.MANAGER, Role.ADMIN, Role.FINANCE, Role.SUPPORT))
        runs, view = dashboard_runs(db, worker, manager, rounds, watch)
        query = view.current_query()
        view.shutdown()
        view.close()
        view.deleteLater()
        worker.wait_for_done()
        settle(watch)
        rng, grain = query.range, query.granularity

        def charts_work() -> object:
            usage_overview(db, start=rng.start, end=rng.end, granularity=grain)
            return purchases_overview(db, start=rng.start, end=rng.end, granularity=grain)

        parts: list[tuple[Callable[[], object], list[float], list[float]]] = []
        for work in (charts_work,
                     lambda: active_accounts(db, start=rng.start, end=rng.end),
                     lambda: top_accounts(db, start=rng.start, end=rng.end)):
            statements_of, _first = captured(work)
            services, raws = [], []
            for _ in range(rounds):
                began = time.perf_counter()
                work()
                services.append(ms_since(began))
                raws.append(replay.run(statements_of))
            parts.append((work, services, raws))
        scope = f"{rng} (UTC), all plans, by {grain.value}"
        figures.append(figure(
            f"dashboard 12 months, all accounts: charts drawn ({rng.days} days)", TARGET_MS,
            runs.charts, parts[0][2], runs.stall_charts,
            f"refresh() to the usage chart and the purchases tile painted; {scope}; services "
            f"(usage_overview + purchases_overview) median {fmt_ms(median(parts[0][1]))} ms"
            + (f"; THE VIEW SAID: {runs.trouble}" if runs.trouble else "")))
        figures.append(figure(
            "dashboard 12 months: active-accounts tile", TARGET_MS, runs.active,
            parts[1][2], runs.stall_active,
            "from the same refresh() to the tile painted (the view starts the accounts "
            "reads once the usage has arrived); raw: active_accounts' statements alone; "
            f"services (active_accounts) median {fmt_ms(median(parts[1][1]))} ms"))
        figures.append(figure(
            "dashboard 12 months: top-accounts table", TARGET_MS, runs.top,
            parts[2][2], runs.stall_top,
            "from the same refresh() to the table painted; raw: top_accounts' statements "
            f"alone; services (top_accounts) median {fmt_ms(median(parts[2][1]))} ms"))
    finally:
        worker.wait_for_done()
        settle(watch)
        replay.close()
        db.close()
    assert app is not None  # kept alive until here
    return figures


# -- the table ------------------------------------------------------------------------------


def percentile(values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile (p95 of 20 runs is the 19th fastest)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def print_table(results: Sequence[tuple[str, Sequence[Figure]]]) -> None:
    """The figures of each database as a Markdown table, notes below it."""
    print("\n| database | measure | target | app median / p95 | raw median / p95 | ÷ raw "
          "| GUI stall | target |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |")
    notes: list[str] = []
    for name, figures in results:
        for fig in figures:
            app = [float(v) for v in fig["app_ms"]]  # type: ignore[attr-defined]
            raw = [float(v) for v in fig["raw_ms"]]  # type: ignore[attr-defined]
            target = fig["target_ms"]
            stall = fig["stall_ms"]
            p95 = percentile(app, 0.95)
            verdict = "–" if not isinstance(target, float) else (
                "met" if p95 <= target else "**missed**")
            ratio = f"{median(app) / median(raw):.1f}×" if raw and median(raw) > 0 else "–"
            print(f"| {name} | {fig['measure']} | "
                  f"{fmt_ms(target) if isinstance(target, float) else '–'} | "
                  f"{fmt_ms(median(app))} / {fmt_ms(p95)} | "
                  f"{fmt_ms(median(raw))} / {fmt_ms(percentile(raw, 0.95))} | {ratio} | "
                  f"{fmt_ms(stall) if isinstance(stall, float) else '–'} | {verdict} |")
            notes.append(f"- {name}, {fig['measure']}: {fig['note']}")
    print()
    print("\n".join(notes))


def database_name(url: str) -> str:
    return "PostgreSQL" if url.startswith("postgresql") else "SQLite"


def main(argv: list[str] | None = None,
         measure_fn: Callable[..., list[Figure]] = measure,
         description: str | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=description or (__doc__ or "").split("\n\n")[0])
    parser.add_argument("--db", action="append", metavar="URL",
                        help="a database to measure (repeatable; default: "
                             + " and ".join(DEFAULT_URLS) + ")")
    parser.add_argument("--rounds", type=int, default=5, help="runs of each measure")
    args = parser.parse_args(argv)
    urls = args.db or list(DEFAULT_URLS)
    results = []
    started = datetime.now(UTC)
    for url in urls:
        results.append((database_name(url), measure_fn(url, rounds=args.rounds)))
    print(f"\nMeasured {started:%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.2f}, --rounds {args.rounds}.")
    print_table(results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
