"""Benchmark of the demo data generator on a fresh SQLite file and a fresh PostgreSQL database.

    python benchmarks/bench_demo.py [--accounts N] [--months M] [--seed S] [--repeat R]
                                    [--pg URL] [--skip-sqlite] [--skip-postgresql]
                                    [--compare-indexes] [--check] [--no-write]

Each run migrates an empty database, times ``generate_demo`` end to end (catalogue and
staff, simulation, bulk load, index rebuild, commit, and the SQLite checkpoint or the
PostgreSQL ANALYZE), and drops the database afterwards. The figures replace the
"Demo data generation" section of BENCHMARKS.md at the repository root (the other
sections are kept). ``--compare-indexes`` adds a run per database that keeps every index
up to date during the load instead of rebuilding them at the end.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import re
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from common import cpu_model, load_average  # noqa: E402
from sqlalchemy import text  # noqa: E402

from credits_desktop.services import demo_store  # noqa: E402
from credits_desktop.services.check import check_database  # noqa: E402
from credits_desktop.services.demo import DemoSummary, generate_demo  # noqa: E402
from credits_desktop.store.database import Database  # noqa: E402
from credits_desktop.store.engine import make_engine, parse_url  # noqa: E402
from credits_desktop.store.schema import upgrade  # noqa: E402

SECTION = "Demo data generation"
DEFAULT_PG = os.environ.get("CREDITS_DESK_TEST_PG",
                            "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
# A fixed "now" keeps runs comparable: the same seed gives the same data every time.
NOW = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)


@dataclass(frozen=True)
class Run:
    database: str
    variant: str
    summary: DemoSummary
    load: float  # 1-minute load average when the run started
    check_seconds: float | None
    check_ok: bool | None


def progress(stage: str, done: int, total: int) -> None:
    print(f"\r  {stage}: {done:,}/{total:,}   ", end="", flush=True)
    if stage == "Done":
        print()


@contextmanager
def sqlite_database() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="demo-bench-") as folder:
        yield f"sqlite:///{Path(folder) / 'demo.db'}"


@contextmanager
def postgres_database(server: str) -> Iterator[str]:
    admin = make_engine(parse_url(server), pool_size=1).execution_options(
        isolation_level="AUTOCOMMIT")
    name = f"demo_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield parse_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def run_once(url: str, database: str, variant: str, args: argparse.Namespace) -> Run:
    db = Database.open(url)
    try:
        upgrade(db.engine)
        load = load_average()
        print(f"{database} ({variant}), load average {load:.2f}:")
        summary = generate_demo(db, accounts=args.accounts, months=args.months, seed=args.seed,
                                now=NOW, progress=progress)
        print(f"  {summary.charges:,} charges, {summary.ledger_entries:,} ledger rows in "
              f"{summary.seconds:.1f} s: {summary.charges_per_second:,.0f} charges/s")
        check_seconds = check_ok = None
        if args.check:
            began = time.perf_counter()
            report = check_database(db, at=NOW)
            check_seconds, check_ok = time.perf_counter() - began, report.ok
            print(f"  check: {'OK' if report.ok else 'PROBLEMS'} in {check_seconds:.1f} s")
        return Run(database, variant, summary, load, check_seconds, check_ok)
    finally:
        db.close()


def run_all(args: argparse.Namespace) -> list[Run]:
    chosen = demo_store.DEFERRED_TABLES
    variants: list[tuple[str, tuple[str, ...]]] = [("rebuilt at the end", chosen)]
    if args.compare_indexes:
        variants.append(("kept up to date", ()))
    runs = []
    # Rounds of every configuration in turn, so that a busy spell on the machine does not
    # fall on one configuration only.
    for _ in range(args.repeat):
        for variant, tables in variants:
            demo_store.DEFERRED_TABLES = tables
            try:
                if not args.skip_sqlite:
                    with sqlite_database() as url:
                        runs.append(run_once(url, "SQLite", variant, args))
                if not args.skip_postgresql:
                    with postgres_database(args.pg) as url:
                        runs.append(run_once(url, "PostgreSQL", variant, args))
            finally:
                demo_store.DEFERRED_TABLES = chosen
    return runs


def medians(runs: list[Run]) -> list[tuple[Run, list[Run]]]:
    """Per database and configuration, the median run (by time) and all its runs."""
    groups: dict[tuple[str, str], list[Run]] = {}
    for run in runs:
        groups.setdefault((run.database, run.variant), []).append(run)
    result = []
    for group in groups.values():
        ordered = sorted(group, key=lambda r: r.summary.seconds)
        result.append((ordered[(len(ordered) - 1) // 2], group))
    return result


def postgres_version(server: str) -> str:
    engine = make_engine(parse_url(server), pool_size=1)
    try:
        with engine.connect() as conn:
            return str(conn.execute(text("SHOW server_version")).scalar())
    except Exception:
        return "unknown"
    finally:
        engine.dispose()


def render(runs: list[Run], args: argparse.Namespace) -> str:
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    lines = [
        f"## {SECTION}",
        "",
        f"Measured on {today}: {os.cpu_count()} cores ({cpu_model()}), Python "
        f"{platform.python_version()}, SQLite {sqlite3.sqlite_version}, PostgreSQL "
        f"{postgres_version(args.pg)}.",
        "",
        f"`python benchmarks/bench_demo.py --accounts {args.accounts} --months {args.months}`"
        f" (seed {args.seed}): {args.accounts:,} accounts, {args.months} months of history. "
        f"Each figure is the median of {args.repeat} run(s) of `generate_demo` end to end on "
        "a freshly migrated database: "
        "catalogue and staff, simulation, bulk load, index rebuild, commit, and the SQLite "
        "WAL checkpoint or the PostgreSQL ANALYZE. The load average (1 minute) is taken as "
        "each run starts, so it includes the run before; the generator keeps both cores "
        "busy, so the rates drop roughly in proportion when other work takes one.",
        "",
        "| database | indexes | charges | ledger rows | seconds | charges/s | ledger rows/s "
        "| all runs (charges/s) | load averages |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for run, group in medians(runs):
        s = run.summary
        rates = ", ".join(f"{r.summary.charges_per_second:,.0f}" for r in group)
        loads = ", ".join(f"{r.load:.2f}" for r in group)
        lines.append(
            f"| {run.database} | {run.variant} | {s.charges:,} | {s.ledger_entries:,} | "
            f"{s.seconds:.1f} | {s.charges_per_second:,.0f} | "
            f"{s.ledger_entries / s.seconds:,.0f} | {rates} | {loads} |"
        )
    checked = [r for r, _ in medians(runs) if r.check_seconds is not None]
    if checked:
        lines.append("")
        lines.extend(
            f"- `check_database` on the {r.database} result ({r.variant}): "
            f"{'no violation' if r.check_ok else 'VIOLATIONS'} in {r.check_seconds:.1f} s."
            for r in checked
        )
    lines += [
        "",
        "How it is fast: each account is simulated in memory, in time order, from integer "
        "epoch seconds and precomputed time values, with the common charge (one grant covers it) "
        "decided inline and everything else planned by `domain.grants`; rows go to the "
        "database as tuples, on a writer thread so that the database works while the next "
        "accounts are simulated (SQLite: multi-row `INSERT` through `executemany`, foreign "
        "keys unchecked on the loading connection, `synchronous=OFF` for the load only; "
        "PostgreSQL: binary `COPY ... FROM STDIN`, `session_replication_role = replica` "
        "when the login may set it, otherwise the foreign keys are checked row by row). "
        "The non-unique indexes of `usage_charges` and `ledger_entries` are "
        "dropped for the load and built again before the commit, in the same transaction "
        "(\"rebuilt at the end\"; on SQLite `ix_usage_charges_account_time`, which grows "
        "at its end, is kept up to date); \"kept up to date\" is the same load with every "
        "index maintained row by row.",
        "",
    ]
    return "\n".join(lines)


def write_section(body: str) -> Path:
    path = ROOT / "BENCHMARKS.md"
    current = path.read_text() if path.exists() else "# Benchmarks\n"
    pattern = re.compile(rf"^## {re.escape(SECTION)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(current):
        updated = pattern.sub(lambda _: body.rstrip("\n") + "\n\n", current, count=1)
    else:
        updated = current.rstrip("\n") + "\n\n" + body
    path.write_text(updated.rstrip("\n") + "\n")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=2000)
    parser.add_argument("--months", type=int, default=6)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--pg", default=DEFAULT_PG, help="a PostgreSQL server address")
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument("--skip-postgresql", action="store_true")
    parser.add_argument("--compare-indexes", action="store_true",
                        help="also run with every index kept up to date during the load")
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs of each configuration; the median is reported")
    parser.add_argument("--check", action="store_true", help="run check_database afterwards")
    parser.add_argument("--no-write", action="store_true", help="leave BENCHMARKS.md alone")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="  %(message)s")
    runs = run_all(args)
    if not args.no_write and runs:
        print(f"Updated {write_section(render(runs, args))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
