"""Peak memory of the desk after browsing every account and opening twenty.

    python benchmarks/bench_memory.py --db URL [--runs N] [--opens O]

Each run is a fresh process (Qt offscreen) that starts the desk on the database the
way the application does (``Launcher``, signed in as a support member on SQLite and
as the database login on PostgreSQL), scrolls the accounts list to its end as a user
dragging the scroll bar down would (the view's ``fetchMore`` until ``canFetchMore`` is
false: every account is then loaded), opens ``--opens`` accounts spread over the list,
waiting for each one's balances and first pages, and reports its peak resident set
(``VmHWM``; see ``peak_mb`` for why not ``ru_maxrss``) and its resident set then
(``VmRSS``). A timer on the GUI thread
watches the event loop meanwhile (the longest stall).

Beside it, the floor: a process that imports the same libraries and creates the
QApplication, nothing more; app ÷ floor shows the share of the desk's own memory.
``measure(url, *, rounds)`` gives run_all.py the figures (see common.py).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from common import (  # noqa: E402
    Measure,
    StallWatch,
    fmt_number,
    make_measure,
    median,
    plural,
    rss_mb,
    support_login,
    wait_until,
)
from PySide6.QtCore import QModelIndex  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from credits_desktop.store.database import Database  # noqa: E402
from credits_desktop.store.engine import parse_url  # noqa: E402
from credits_desktop.ui.account_detail import AccountDetail  # noqa: E402
from credits_desktop.ui.app import Launcher  # noqa: E402
from credits_desktop.ui.main_window import MainWindow  # noqa: E402

TARGET_MB = 400.0
OPENS = 20
TIMEOUT_MS = 120_000


def peak_mb() -> float:
    """This process's peak resident set so far, in MB (MiB).

    VmHWM, the high-water mark of this process's own address space. ``ru_maxrss`` is
    no use here: Linux keeps it across exec, and subprocess starts the child with
    vfork, so the child's ru_maxrss starts at its parent's peak (the benchmark's
    own: every run then reported the parent's 157 MB).
    """
    found = re.search(r"^VmHWM:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.M)
    if found is None:  # not Linux
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return int(found.group(1)) / 1024


def wait_for(done: Any, signals: list[Any], what: str) -> None:
    """Runs the event loop (asleep in Qt, not holding the GIL) until ``done()``."""
    wait_until(done, signals, what, TIMEOUT_MS)


def start_desk(url: str) -> tuple[Launcher, MainWindow]:
    db = Database.open(url)
    try:
        username = support_login(db, create=False)
    finally:
        db.close()
    launcher = Launcher(url, False, username=username, unattended=True)
    codes: list[int] = []
    launcher.finished.connect(codes.append)
    launcher.start()
    wait_for(lambda: bool(codes), [launcher.finished], "the start-up")
    if codes[0] != 0 or launcher.window is None:
        raise SystemExit(f"The start-up failed with status {codes[0]}.")
    return launcher, launcher.window


def scroll_to_end(window: MainWindow) -> int:
    """Scrolls the accounts table down until every account is loaded; the rows."""
    model, table = window.model, window.table
    root = QModelIndex()
    failed: list[str] = []
    model.load_failed.connect(failed.append)
    while not failed:
        # At the bottom, the view itself asks the model for more (fetchMore).
        table.scrollToBottom()
        QApplication.processEvents()
        if not model.is_loading and model.canFetchMore(root):
            model.fetchMore(root)
        if not model.is_loading:
            if not model.canFetchMore(root):
                break
            continue
        wait_for(lambda: not model.is_loading, [model.page_loaded, model.load_failed],
                 "the next page of accounts")
    if failed:
        raise SystemExit(f"Loading the accounts failed: {failed[0]}")
    return model.rowCount()


def open_accounts(window: MainWindow, count: int) -> None:
    """Opens ``count`` accounts spread over the list, each to its first pages; the tabs
    stay open, as a support member's would."""
    rows = window.model.rowCount()
    for n in range(count):
        row = window.model.account(n * rows // count)
        wait_opened(window.open_account(row), row.id)


def wait_opened(detail: AccountDetail, account_id: int) -> None:
    """Until the summary and the first pages of grants, charges and ledger are in."""
    signals = [detail.summary_loaded, detail.grants.page_loaded,
               detail.charges.page_loaded, detail.ledger.page_loaded]
    # The reads were submitted inside open_account; their answers come through the
    # event loop, so counting from now misses none.
    seen = [False] * len(signals)
    for index, signal in enumerate(signals):
        signal.connect(lambda *_args, i=index: seen.__setitem__(i, True))
    wait_for(lambda: all(seen) or detail.message.isVisible(),
             [*signals, detail.load_failed], f"account {account_id} to open")
    if not all(seen):
        raise SystemExit(f"Account {account_id} did not load: {detail.message.text()}")


def child(url: str, opens: int) -> dict[str, float]:
    """One run, in this (fresh) process."""
    app = QApplication(sys.argv[:1])
    launcher, window = start_desk(url)
    started_mb = rss_mb()
    watch = StallWatch()
    watch.start()
    began = time.perf_counter()
    rows = scroll_to_end(window)
    scrolled_ms = (time.perf_counter() - began) * 1000
    scroll_stall = watch.take()
    open_accounts(window, opens)
    watch.stop()
    open_stall = watch.take()
    figures = {"peak_mb": peak_mb(), "rss_mb": rss_mb(), "started_mb": started_mb,
               "rows": float(rows), "scroll_ms": scrolled_ms,
               "stall_ms": max(scroll_stall, open_stall), "scroll_stall_ms": scroll_stall,
               "open_stall_ms": open_stall, "tabs": float(window.tabs.count())}
    launcher.shutdown()
    del app
    return figures


def floor(url: str) -> dict[str, float]:
    """The same libraries (this module's imports, the database driver) and a
    QApplication, nothing else."""
    if parse_url(url).get_backend_name() == "postgresql":
        import psycopg  # noqa: F401
        import sqlalchemy.dialects.postgresql.psycopg  # noqa: F401
    else:
        import sqlite3  # noqa: F401
    app = QApplication(sys.argv[:1])
    app.processEvents()
    figures = {"peak_mb": peak_mb(), "rss_mb": rss_mb()}
    del app
    return figures


def run_child(url: str, *flags: str) -> dict[str, float]:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    done = subprocess.run([sys.executable, __file__, "--db", url, *flags], env=env,
                          capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise SystemExit(f"The memory run exited {done.returncode}: "
                         f"{done.stderr.strip()[-2000:]}")
    figures: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def measure(url: str, *, rounds: int, opens: int = OPENS) -> list[Measure]:
    """``rounds`` fresh processes browsing ``url``, and as many floors."""
    runs, floors = [], []
    for _ in range(rounds):
        runs.append(run_child(url, "--child", "--opens", str(opens)))
        floors.append(run_child(url, "--floor"))
    rows = int(runs[0]["rows"])

    def middle(key: str) -> str:
        return fmt_number(median([r[key] for r in runs]))

    note = (f"{plural(len(runs), 'fresh process', 'fresh processes')}: start, scroll the "
            f"accounts list to its end ({rows:,} rows loaded in {middle('scroll_ms')} ms), "
            f"open {opens} accounts (their tabs kept open); the peak resident set "
            f"(VmHWM). Resident at the end (VmRSS) {middle('rss_mb')} MB, after the "
            f"start-up {middle('started_mb')} MB. Raw: a process with the same imports "
            f"and a QApplication. Longest stall while scrolling "
            f"{fmt_number(max(r['scroll_stall_ms'] for r in runs))} ms, while opening "
            f"{fmt_number(max(r['open_stall_ms'] for r in runs))} ms")
    return [make_measure(f"peak memory after scrolling {rows:,} accounts and opening "
                         f"{opens}", TARGET_MB, [r["peak_mb"] for r in runs],
                         [f["peak_mb"] for f in floors],
                         max(r["stall_ms"] for r in runs), note, unit="MB")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", required=True, metavar="URL")
    parser.add_argument("--runs", type=int, default=3, help="fresh processes (default 3)")
    parser.add_argument("--opens", type=int, default=OPENS)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--floor", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.db, args.opens)))
        return 0
    if args.floor:
        print(json.dumps(floor(args.db)))
        return 0
    for item in measure(args.db, rounds=args.runs, opens=args.opens):
        print(json.dumps(item, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
