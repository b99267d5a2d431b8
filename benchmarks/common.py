"""Helpers shared by the benchmarks that ``run_all.py`` runs.

A benchmark module offers ``measure(url, *, rounds)`` returning a list of measures,
each a dict with the keys

* ``measure`` (str): what was measured;
* ``target_ms`` (float or None): the target, judged on the 95th percentile;
* ``app_ms`` (list of float): the application's runs;
* ``raw_ms`` (list of float): the raw SQL lower bound of the same answer (may be empty);
* ``stall_ms`` (float or None): the longest GUI-thread stall while it ran;
* ``note`` (str): anything a reader needs to read the figures right;

and optionally ``unit`` (str, default ``"ms"``): peak memory gives megabytes in the
same keys (``target_ms`` is then 400 MB, ``app_ms`` the peaks in MB).
"""

from __future__ import annotations

import math
import os
import platform
import re
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEventLoop, QObject, Qt, QTimer
from sqlalchemy import func, select, text

from credits_desktop.domain.permissions import Role
from credits_desktop.services.accounts import create_staff, database_login, sign_in
from credits_desktop.services.operations import Actor
from credits_desktop.store.database import Database
from credits_desktop.store.engine import make_engine, parse_url
from credits_desktop.store.models import Staff

Measure = dict[str, object]

STALL_INTERVAL_MS = 5


# -- figures ----------------------------------------------------------------------------


def percentile(values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile (p95 of 20 runs is the 19th fastest); NaN when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def fmt_number(value: float | None) -> str:
    """Milliseconds or megabytes: no decimals from 100 up, one below."""
    if value is None or math.isnan(value):
        return "–"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.1f}"


def plural(count: int, one: str, many: str) -> str:
    return f"{count:,} {one if count == 1 else many}"


def make_measure(measure: str, target: float | None, app: Sequence[float],
                 raw: Sequence[float], stall: float | None, note: str = "",
                 unit: str = "ms") -> Measure:
    result: Measure = {"measure": measure, "target_ms": target, "app_ms": list(app),
                       "raw_ms": list(raw), "stall_ms": stall, "note": note}
    if unit != "ms":
        result["unit"] = unit
    return result


def verdict(p95: float, target: float | None, unit: str = "ms") -> str:
    """"met, 38% under" or "missed by 12 ms", judged on the 95th percentile."""
    if target is None or math.isnan(p95):
        return "–"
    if p95 <= target:
        return f"met, {(target - p95) / target * 100:.0f}% under"
    return f"**missed** by {fmt_number(p95 - target)} {unit}"


# -- the GUI thread ---------------------------------------------------------------------


class StallWatch(QObject):
    """A precise timer on the GUI thread every 5 ms; the longest gap between two of its
    ticks, less the interval, is the longest time the event loop could not run.

    ``start``/``stop`` may be called repeatedly (the benchmark's own work between GUI
    parts is left out); ``longest_ms`` is the longest stall while started, ``take``
    returns it and starts a new count.
    """

    def __init__(self, interval_ms: int = STALL_INTERVAL_MS) -> None:
        super().__init__()
        self.interval_ms = interval_ms
        self.longest_ms = 0.0
        self._last = 0.0
        self._timer = QTimer(self)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._tick)

    def _tick(self) -> None:
        now = time.perf_counter()
        gap = (now - self._last) * 1000 - self.interval_ms
        self.longest_ms = max(self.longest_ms, gap)
        self._last = now

    def start(self) -> None:
        self._last = time.perf_counter()
        self._timer.start()

    def stop(self) -> None:
        # The time since the last tick counts too: a stall at the very end is one.
        if self._timer.isActive():
            self._tick()
        self._timer.stop()

    def take(self) -> float:
        longest, self.longest_ms = self.longest_ms, 0.0
        return longest


# -- the machine ------------------------------------------------------------------------


def load_average() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def ram_gib() -> float:
    try:
        found = re.search(r"^MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text(), re.M)
    except OSError:
        return float("nan")
    return int(found.group(1)) / 1024 / 1024 if found else float("nan")


def rss_mb() -> float:
    """This process's resident set now (VmRSS), in MB (MiB)."""
    try:
        found = re.search(r"^VmRSS:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.M)
    except OSError:
        return float("nan")
    return int(found.group(1)) / 1024 if found else float("nan")


# -- the database -----------------------------------------------------------------------


def backend(url: str) -> str:
    return "PostgreSQL" if parse_url(url).get_backend_name() == "postgresql" else "SQLite"


def ensure_pg_database(url: str) -> bool:
    """Creates the PostgreSQL database of ``url`` when missing; whether it did."""
    parsed = parse_url(url)
    admin = make_engine(parsed.set(database="postgres"), pool_size=1).execution_options(
        isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            found = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"),
                                 {"n": parsed.database}).first()
            if found is None:
                print(f"Creating the PostgreSQL database {parsed.database}")
                conn.execute(text(f'CREATE DATABASE "{parsed.database}"'))
                return True
            return False
    finally:
        admin.dispose()


def support_login(db: Database, *, create: bool) -> str:
    """Who the desk signs in as: an active support member on SQLite; on PostgreSQL the
    database login, which must be a staff member (added as support with ``create``)."""
    if not db.is_postgresql:
        name = db.read(lambda s: s.scalar(
            select(Staff.username).where(Staff.role == Role.SUPPORT.value,
                                         Staff.active.is_(True)).order_by(Staff.username)))
        if name is None:
            raise SystemExit("The database has no active support staff member to sign in as.")
        return str(name)
    login = str(db.read(lambda s: s.scalar(select(func.session_user()))))
    exists = db.read(lambda s: s.scalar(select(Staff.id).where(Staff.username == login)))
    if exists is None:
        if not create:
            raise SystemExit(f"The login '{login}' is not a staff member: run with --create.")
        admin = db.read(lambda s: s.scalar(
            select(Staff.username).where(Staff.role == Role.ADMIN.value,
                                         Staff.active.is_(True)).order_by(Staff.username)))
        if admin is None:
            raise SystemExit("The database has no active admin to add the login as staff.")
        create_staff(db, sign_in(db, str(admin)), username=login,
                     display_name="Benchmark login", role=Role.SUPPORT.value)
        print(f"  added the login '{login}' as a support staff member")
    return login


def staff_actor(db: Database, username: str) -> Actor:
    return database_login(db) if db.is_postgresql else sign_in(db, username)


# -- BENCHMARKS.md ----------------------------------------------------------------------


def write_section(path: Path, title: str, body: str) -> Path:
    """Replaces the section ``## title`` of the Markdown file ``path`` (up to the next
    ``## `` heading) with ``body``, or appends it; the other sections are kept."""
    current = path.read_text() if path.exists() else "# Benchmarks\n"
    pattern = re.compile(rf"^## {re.escape(title)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(current):
        updated = pattern.sub(lambda _: body.rstrip("\n") + "\n\n", current, count=1)
    else:
        updated = current.rstrip("\n") + "\n\n" + body
    path.write_text(updated.rstrip("\n") + "\n")
    return path


def wait_until(done: Callable[[], bool], signals: Sequence[Any], what: str,
               timeout_ms: int = 120_000) -> None:
    """Run the event loop until ``done()``, checked whenever one of ``signals`` fires.

    A QEventLoop sleeps in Qt until an event comes; a Python loop of processEvents
    would hold the GIL and slow down the worker thread that runs the query.
    """
    if done():
        return
    loop = QEventLoop()
    expired: list[bool] = []

    def check(*_args: Any) -> None:
        if done():
            loop.quit()

    def give_up() -> None:
        expired.append(True)
        loop.quit()

    for signal in signals:
        signal.connect(check)
    timer = QTimer()
    timer.setSingleShot(True)
    timer.timeout.connect(give_up)
    timer.start(timeout_ms)
    try:
        loop.exec()
    finally:
        timer.stop()
        for signal in signals:
            signal.disconnect(check)
    if expired and not done():
        raise SystemExit(f"Timed out waiting for {what}.")
