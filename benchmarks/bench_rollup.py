"""Benchmark of the usage rollup on the 100,000-account databases: the backfill of an
existing database, and chart queries over the raw charges next to the same from the rollup,
on SQLite and PostgreSQL.

    python benchmarks/bench_rollup.py [--db URL ...] [--chunk N] [--runs R] [--accounts A]
                                      [--rebuild] [--check] [--no-write]

Without ``--db`` both benchmark databases of ``bench_browse.py`` are used (the SQLite file
``/tmp/credits_bench/bench-100k.sqlite3`` and the PostgreSQL database ``credits_bench``;
``bench_browse.py --create`` makes them). They are never dropped. A database still at
revision 0001 is upgraded to 0002 only (timed), which records the backfill's watermark, and the
backfill is then run to its end (timed, with its chunks). ``--again`` first takes a database
at 0002 back to 0001 (the downgrade drops the rollup tables and the watermark, the data
stay), so that upgrade and backfill are measured again; ``--rebuild`` instead empties the
rollup in place (the repair ``rollup build --rebuild``) and builds it again.

Then, over the twelve months up to the last charge, each as the median and the 95th
percentile of its runs (milliseconds, ``Database.read`` to the last row fetched: a
transaction, the statement and every row, as a chart's worker does):

* dashboard: credits by UTC day and feature for all accounts, from ``usage_charges``
  (counts, credits, failed charges and their credits; refunds left out, so the raw figure
  is a lower bound of what a chart needs) and from ``usage_daily`` (the same plus the
  refunded credits);
* account chart: the same for one account, from ``usage_charges`` (through its
  (account, time) index) and from ``usage_daily_account``, for ``--accounts`` sampled
  accounts and for the account with the most charges.

Every rollup answer is compared with the raw one (charges, credits, failed, failed credits
per day and feature): a difference stops the benchmark. ``--check`` also times
``credits-desktop check``, rule group by rule group. The figures replace the "Usage
rollup" section of BENCHMARKS.md (other sections are kept; the file is read again just
before it is written).
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import random
import re
import sqlite3
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from alembic import command  # noqa: E402
from sqlalchemy import case, func, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from credits_desktop.services import check as ck  # noqa: E402
from credits_desktop.services.rollups import (  # noqa: E402
    CHUNK_ROWS,
    RollupStatus,
    build_rollups,
    day_of,
    reset_rollups,
    rollup_status,
)
from credits_desktop.store.database import Database  # noqa: E402
from credits_desktop.store.engine import parse_url  # noqa: E402
from credits_desktop.store.models import (  # noqa: E402
    Account,
    Refund,
    RefundsDaily,
    Reversal,
    UsageCharge,
    UsageDaily,
    UsageDailyAccount,
)
from credits_desktop.store.schema import (  # noqa: E402
    alembic_config,
    schema_state,
    upgrade,
)

SECTION = "Usage rollup: backfill and chart queries"
DEFAULT_SQLITE = "sqlite:////tmp/credits_bench/bench-100k.sqlite3"
DEFAULT_PG_SERVER = os.environ.get("CREDITS_DESK_TEST_PG",
                                   "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
DEFAULT_PG = make_url(DEFAULT_PG_SERVER).set(database="credits_bench").render_as_string(
    hide_password=False)
TARGET_MS = 100.0
ROLLUP_REVISION = "0002"


def percentile(values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile (p95 of 20 runs is the 19th fastest)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def fmt_ms(ms: float) -> str:
    return f"{ms:,.0f}" if ms >= 100 else f"{ms:.1f}"


@dataclass
class Series:
    """Times in milliseconds."""

    values: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def p95(self) -> float:
        return percentile(self.values, 0.95)

    def text(self) -> str:
        return f"{fmt_ms(self.median)} / {fmt_ms(self.p95)}"


def timed(db: Database, stmt: Any, params: dict[str, Any]) -> tuple[float, list[tuple[Any, ...]]]:
    began = time.perf_counter()
    rows = db.read(lambda s: [tuple(r) for r in s.execute(stmt, params)])
    return (time.perf_counter() - began) * 1000, rows


# -- the queries ------------------------------------------------------------------------------


def raw_usage(dialect: str, *, account: bool) -> Any:
    uc = UsageCharge
    day = day_of(uc.occurred_at, dialect).label("day")
    failed = uc.status == "failed"
    stmt = (
        select(day, uc.feature_code, func.count(), func.sum(uc.credits),
               func.sum(case((failed, 1), else_=0)),
               func.sum(case((failed, uc.credits), else_=0)))
        .where(uc.occurred_at >= text(":start"), uc.occurred_at < text(":end"))
    )
    if account:
        stmt = stmt.where(uc.account_id == text(":account"))
    return stmt.group_by(day, uc.feature_code).order_by(day, uc.feature_code)


def rollup_all() -> Any:
    d = UsageDaily
    return (
        select(d.day, d.feature_code, func.sum(d.charges), func.sum(d.credits),
               func.sum(d.failed), func.sum(d.failed_credits), func.sum(d.refunded_credits))
        .where(d.day >= text(":first"), d.day < text(":after"))
        .group_by(d.day, d.feature_code)
        .order_by(d.day, d.feature_code)
    )


def rollup_account() -> Any:
    a = UsageDailyAccount
    return (
        select(a.day, a.feature_code, a.charges, a.credits, a.failed, a.failed_credits,
               a.refunded_credits)
        .where(a.account_id == text(":account"), a.day >= text(":first"),
               a.day < text(":after"))
        .order_by(a.day, a.feature_code)
    )


def same_figures(raw: list[tuple[Any, ...]], rolled: list[tuple[Any, ...]], what: str) -> None:
    """The rollup's charges, credits, failed and failed credits equal the raw sums."""
    def norm(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        return [(str(r[0]), r[1], *(int(x) for x in r[2:6])) for r in rows if int(r[2])]

    if norm(raw) != norm(rolled):
        raise SystemExit(f"The rollup differs from the raw sums for {what}.")


# -- one database -----------------------------------------------------------------------------


@dataclass
class Result:
    name: str
    version: str
    accounts: int
    charges: int
    refunds: int
    reversals: int
    migration_s: float | None = None
    reset_s: float | None = None
    backfill_s: float | None = None
    chunks: int = 0
    covered: int = 0
    rollup_rows: dict[str, int] = field(default_factory=dict)
    measures: list[tuple[str, int, Series, Series]] = field(default_factory=list)
    check_s: dict[str, float] = field(default_factory=dict)
    window: tuple[date, date] | None = None
    loads: list[float] = field(default_factory=list)


def count(db: Database, model: Any) -> int:
    return int(db.read(lambda s: s.scalar(select(func.count()).select_from(model))) or 0)


def back_to_0001(db: Database) -> None:
    """Drop the rollup (revision 0002's downgrade; every other row stays), as before it."""
    config = alembic_config()
    with db.engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0001")


def backfill(db: Database, result: Result, chunk: int, rebuild: bool) -> None:
    state = schema_state(db.engine)
    if state.current == "0001":
        # Only to the rollup's revision: later ones are other work, measured elsewhere.
        print(f"  upgrading to {ROLLUP_REVISION}…", flush=True)
        began = time.perf_counter()
        upgrade(db.engine, ROLLUP_REVISION)
        result.migration_s = time.perf_counter() - began
    elif state.current is None or state.current < ROLLUP_REVISION:
        raise SystemExit(f"{db.display_url()} is at revision {state.current}; this "
                         "benchmark needs 0001 or later.")
    if rebuild:
        print("  emptying the rollup…", flush=True)
        began = time.perf_counter()
        reset_rollups(db)
        result.reset_s = time.perf_counter() - began
    status = rollup_status(db)
    if status.ready:
        print("  the rollup is already built (use --rebuild to measure the backfill)")
        return
    chunks = [0]

    def progress(stage: str, done: int, total: int) -> None:
        chunks[0] += 1
        print(f"\r  {stage}: {done:,}/{total:,}   ", end="", flush=True)

    before = status.done
    began = time.perf_counter()
    final: RollupStatus = build_rollups(db, progress=progress, chunk_rows=chunk)
    result.backfill_s = time.perf_counter() - began
    print()
    result.chunks = chunks[0] - 1  # the first call reports the start
    result.covered = final.done - before
    if db.is_postgresql:
        with db.engine.connect() as conn:  # fresh statistics, as the demo load gives
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
                "ANALYZE usage_daily_account, usage_daily, refunds_daily")


def measure(db: Database, result: Result, runs: int, sample: int) -> None:
    dialect = db.dialect
    last = db.read(lambda s: s.scalar(select(func.max(UsageCharge.occurred_at))))
    assert last is not None
    after = last.astimezone(UTC).date() + timedelta(days=1)
    first = after - timedelta(days=365)
    result.window = (first, after)
    start = datetime(first.year, first.month, first.day, tzinfo=UTC)
    end = datetime(after.year, after.month, after.day, tzinfo=UTC)
    times = {"start": _bind_time(db, start), "end": _bind_time(db, end)}
    days: dict[str, Any] = {"first": first, "after": after}
    if not db.is_postgresql:  # SQLite's Date columns hold ISO text
        days = {k: v.isoformat() for k, v in days.items()}

    print("  dashboard, all accounts…", flush=True)
    raw, rolled = Series(), Series()
    raw_rows: list[tuple[Any, ...]] = []
    for _ in range(runs):
        ms, raw_rows = timed(db, raw_usage(dialect, account=False), times)
        raw.values.append(ms)
    rolled_rows: list[tuple[Any, ...]] = []
    for _ in range(runs * 10):
        ms, rolled_rows = timed(db, rollup_all(), days)
        rolled.values.append(ms)
    same_figures(raw_rows, rolled_rows, "all accounts")
    result.measures.append((f"dashboard: 12 months, all accounts, by day and feature "
                            f"({len(rolled_rows):,} rows)", runs, raw, rolled))

    rng = random.Random(1)
    top = db.read(lambda s: s.execute(
        select(UsageCharge.account_id, func.count()).group_by(UsageCharge.account_id)
        .order_by(func.count().desc()).limit(1)).one())
    ids = db.read(lambda s: list(s.scalars(select(Account.id))))
    sampled = rng.sample(ids, min(sample, len(ids)))
    for label, accounts in ((f"account chart: 12 months, by day and feature ({len(sampled)} "
                             "sampled accounts)", sampled),
                            (f"account chart, the busiest account (#{top[0]}, "
                             f"{top[1]:,} charges)", [top[0]])):
        print(f"  {label}…", flush=True)
        raw, rolled = Series(), Series()
        repeat = max(3, runs) if len(accounts) == 1 else 3
        for account in accounts:
            for _ in range(repeat):
                ms, raw_rows = timed(db, raw_usage(dialect, account=True),
                                     {**times, "account": account})
                raw.values.append(ms)
                ms, rolled_rows = timed(db, rollup_account(), {**days, "account": account})
                rolled.values.append(ms)
            same_figures(raw_rows, rolled_rows, f"account #{account}")
        result.measures.append((label, len(raw.values), raw, rolled))


def _bind_time(db: Database, when: datetime) -> Any:
    # Bound through text(): SQLite compares the stored naive UTC text.
    if db.is_postgresql:
        return when
    return when.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")


def time_check(db: Database, result: Result) -> None:
    """``check_database``'s work, group by group of rules, in one read transaction."""
    def work(session: Session) -> None:
        if db.is_postgresql:
            session.connection(execution_options={"isolation_level": "REPEATABLE READ",
                                                  "postgresql_readonly": True})
            session.execute(text(f"SET LOCAL work_mem = '{ck.PG_WORK_MEM}'"))
            session.execute(text("SET LOCAL jit = off"))
        checker = ck._Checker(session, datetime.now(UTC))
        for step in ck.CHECKS:
            print(f"  check: {step.__name__}…", flush=True)
            began = time.perf_counter()
            step(checker)
            result.check_s[step.__name__] = time.perf_counter() - began
        if checker.violations:
            raise SystemExit("check found problems: "
                             + "; ".join(f.rule for f in checker.violations))

    db.read(work)


def run_database(url: str, args: argparse.Namespace) -> Result:
    postgresql = parse_url(url).get_backend_name() == "postgresql"
    db = Database.open(url)
    try:
        print(f"{db.display_url()}:", flush=True)
        if postgresql:
            version = "PostgreSQL " + str(db.read(lambda s: s.scalar(text("SHOW server_version"))))
        else:
            version = f"SQLite {sqlite3.sqlite_version}"
        result = Result("PostgreSQL" if postgresql else "SQLite", version.split(" (")[0],
                        count(db, Account), count(db, UsageCharge), count(db, Refund),
                        count(db, Reversal))
        result.loads.append(os.getloadavg()[0])
        if args.again and schema_state(db.engine).current == "0002":
            print("  back to revision 0001…", flush=True)
            back_to_0001(db)
        backfill(db, result, args.chunk, args.rebuild)
        result.rollup_rows = {m.__tablename__: count(db, m)
                              for m in (UsageDailyAccount, UsageDaily, RefundsDaily)}
        measure(db, result, args.runs, args.accounts)
        if args.check:
            time_check(db, result)
        result.loads.append(os.getloadavg()[0])
        return result
    finally:
        db.close()


# -- the report -------------------------------------------------------------------------------


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def report(results: list[Result], args: argparse.Namespace) -> str:
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    versions = ", ".join(dict.fromkeys(r.version for r in results))
    lines = [
        f"## {SECTION}",
        "",
        f"Measured on {today}: {os.cpu_count()} cores ({cpu_name()}),"
        f" Python {platform.python_version()}, {versions}. `python benchmarks/bench_rollup.py"
        f" --runs {args.runs} --accounts {args.accounts}{' --again' if args.again else ''}"
        f"{' --rebuild' if args.rebuild else ''}{' --check' if args.check else ''}` on the"
        " databases of the browsing benchmark (demo data, seed 1, 100,000 accounts, one month"
        " of history). Other work shared the two cores; load average (1 min) at the start"
        " and end of each database's run is given.",
        "",
        "Backfill (`credits-desktop db upgrade`, then `credits-desktop rollup build`, chunks"
        f" of {args.chunk:,} rows, each one transaction):",
        "",
    ]
    for r in results:
        parts = [f"- {r.name}: {r.accounts:,} accounts, {r.charges:,} charges, "
                 f"{r.refunds:,} refunds, {r.reversals:,} reversals."]
        if r.migration_s is not None:
            parts.append(f"Migration 0001 → 0002 (tables and watermark): {r.migration_s:.1f} s.")
        if r.reset_s is not None:
            parts.append(f"Emptying the rollup (`--rebuild`): {r.reset_s:.1f} s.")
        if r.backfill_s is not None:
            rate = r.covered / r.backfill_s if r.backfill_s else 0
            parts.append(f"Backfill: {r.covered:,} rows in {r.chunks:,} chunks, "
                         f"{r.backfill_s:.0f} s ({rate:,.0f} rows/s).")
        else:
            parts.append("Backfill: already built before this run (not measured).")
        parts.append("Rollup rows: " + ", ".join(f"`{t}` {n:,}"
                                                 for t, n in r.rollup_rows.items()) + ".")
        parts.append("Load average " + " → ".join(f"{x:.2f}" for x in r.loads) + ".")
        lines.append(" ".join(parts))
    assert results[0].window is not None
    first, after = results[0].window
    lines += [
        "",
        f"Chart queries over {first:%d %b %Y} – {after - timedelta(days=1):%d %b %Y} "
        "(twelve months up to the last charge; the data hold one month), milliseconds, "
        "median / p95 of the runs, from `Database.read` to the last row fetched. *Raw*: "
        "`GROUP BY` UTC day and feature over `usage_charges` (without refunds, which would "
        "cost a join more). *Rollup*: the same figures and the refunded credits from "
        "`usage_daily` / `usage_daily_account`; each answer was checked equal to the raw "
        "one.",
        "",
        f"| database | measure | runs | raw | rollup | raw ÷ rollup | rollup within "
        f"{TARGET_MS:.0f} ms (p95) |",
        "| --- | --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in results:
        for label, runs, raw, rolled in r.measures:
            met = "met" if rolled.p95 <= TARGET_MS else "**missed**"
            lines.append(f"| {r.name} | {label} | {runs} / {len(rolled.values)} | "
                         f"{raw.text()} | {rolled.text()} | {raw.median / rolled.median:,.0f}×"
                         f" | {met} |")
    if any(r.check_s for r in results):
        lines += ["", "`credits-desktop check` on the same data, seconds per group of rules "
                  "(`check_rollups` holds the three new rules):", ""]
        names = list(dict.fromkeys(n for r in results for n in r.check_s))
        lines.append("| database | " + " | ".join(f"`{n}`" for n in names) + " | total |")
        lines.append("| --- |" + " ---: |" * (len(names) + 1))
        for r in results:
            if r.check_s:
                lines.append(f"| {r.name} | " + " | ".join(
                    f"{r.check_s.get(n, 0):.1f}" for n in names)
                    + f" | {sum(r.check_s.values()):.1f} |")
    return "\n".join(lines) + "\n"


def write_section(body: str) -> Path:
    """Replace this benchmark's section of BENCHMARKS.md, keeping every other section;
    the file is read just before it is written (other benchmarks write theirs too)."""
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
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--db", action="append", metavar="URL",
                        help="a database to measure (repeatable; default: the SQLite file "
                             f"{DEFAULT_SQLITE} and {make_url(DEFAULT_PG).render_as_string()})")
    parser.add_argument("--chunk", type=int, default=CHUNK_ROWS,
                        help=f"rows per backfill transaction (default {CHUNK_ROWS:,})")
    parser.add_argument("--runs", type=int, default=5,
                        help="runs of each all-accounts raw query (the rollup gets 10×)")
    parser.add_argument("--accounts", type=int, default=20, help="sampled accounts")
    parser.add_argument("--again", action="store_true",
                        help="take a database at 0002 back to 0001 (dropping the rollup, "
                             "keeping the data) to measure the upgrade and backfill again")
    parser.add_argument("--rebuild", action="store_true",
                        help="empty a built rollup (the repair, `rollup build --rebuild`) "
                             "and measure its backfill again")
    parser.add_argument("--check", action="store_true",
                        help="also time credits-desktop check, group by group of rules")
    parser.add_argument("--no-write", action="store_true", help="leave BENCHMARKS.md alone")
    args = parser.parse_args(argv)
    urls = args.db or [DEFAULT_SQLITE, DEFAULT_PG]
    results = [run_database(url, args) for url in urls]
    body = report(results, args)
    print()
    print(body)
    if not args.no_write:
        print(f"Wrote {write_section(body)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
