"""Every benchmark of issue 7 against SQLite and PostgreSQL, written to BENCHMARKS.md.

    python benchmarks/run_all.py [--db URL ...] [--create] [--rounds N] [--launches L]
                                 [--opens O] [--memory-runs M] [--only PART ...]
                                 [--accounts N] [--months M] [--usage PERCENT]
                                 [--out PATH]

Without ``--db`` both default databases are measured: the SQLite file
``/tmp/credits_bench/bench-10m.sqlite3`` and the PostgreSQL database ``credits_bench10``
on ``CREDITS_DESK_TEST_PG``'s server. ``--create`` first makes what is missing: the
PostgreSQL database, the schema, the demo data (100,000 accounts over 12 months at 6 %
of the usual usage, about 10.8 million charges; what ``credits-desktop demo --accounts
100000 --months 12 --usage 6`` makes) and, on PostgreSQL, a support staff member named
after the database login (the desk signs in as the login there). A database that
already holds accounts is used as it is (``--accounts``, ``--months`` and ``--usage``
change what ``--create`` makes, for trying the script on a small database).

Per database, in this order (the writes last: they change the data):

* ``bench_browse``: launch to an interactive main window, search as you type, opening
  an account (sampled ones and the busiest);
* ``bench_charts``: an account's 12-month chart and the all-accounts dashboard;
* ``bench_memory``: peak memory after scrolling through every account and opening 20;
* ``bench_writes``: one refund, and an incident refund of 10,000 charges;

then the longest GUI-thread stall over all of them. A module that is missing or fails
is named in the output and the others still run. Each measure is a median and a 95th
percentile beside the raw SQL lower bound of the same answer (see common.py); targets
are judged on the 95th percentile. The section "Issue 7: …" of ``--out`` (default
BENCHMARKS.md at the repository root) is replaced; the other sections are kept.
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import shlex
import sqlite3
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import PySide6  # noqa: E402
from common import (  # noqa: E402
    Measure,
    backend,
    cpu_model,
    fmt_number,
    load_average,
    make_measure,
    median,
    percentile,
    plural,
    ram_gib,
    verdict,
    write_section,
)
from PySide6.QtWidgets import QApplication  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from credits_desktop.store.engine import parse_url  # noqa: E402

SECTION = "Issue 7: 100,000 accounts, 10 million charges"
DEFAULT_SQLITE = "sqlite:////tmp/credits_bench/bench-10m.sqlite3"
DEFAULT_PG_SERVER = os.environ.get("CREDITS_DESK_TEST_PG",
                                   "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
DEFAULT_PG = make_url(DEFAULT_PG_SERVER).set(database="credits_bench10").render_as_string(
    hide_password=False)
ACCOUNTS, MONTHS, USAGE_PERCENT, SEED = 100_000, 12, 6, 1
STALL_TARGET_MS = 50.0
PARTS = ("browse", "charts", "memory", "writes")


@dataclass
class DatabaseRun:
    """What was measured on one database, and what could not be."""

    url: str
    name: str
    version: str = ""
    counts: tuple[int, int, int] | None = None  # accounts, charges, ledger entries
    measures: list[Measure] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    load: tuple[float, float] = (float("nan"), float("nan"))


# -- running the modules ----------------------------------------------------------------


def checked(item: object, module: str) -> Measure:
    """``item`` if it has the shape of a measure (common.py); ValueError otherwise."""
    if not isinstance(item, dict):
        raise ValueError(f"{module} returned {type(item).__name__}, not a dict")

    def numbers(key: str) -> list[float]:
        values = item.get(key)
        if not isinstance(values, list | tuple) or not all(
                isinstance(v, int | float) for v in values):
            raise ValueError(f"{module}: '{key}' is not a list of numbers")
        return [float(v) for v in values]

    def optional_number(key: str) -> float | None:
        value = item.get(key)
        if value is None:
            return None
        if not isinstance(value, int | float):
            raise ValueError(f"{module}: '{key}' is not a number")
        return float(value)

    return make_measure(str(item.get("measure", "?")), optional_number("target_ms"),
                        numbers("app_ms"), numbers("raw_ms"), optional_number("stall_ms"),
                        str(item.get("note", "")), str(item.get("unit", "ms")))


def run_part(run: DatabaseRun, module: str, call: Callable[[ModuleType], object]) -> None:
    """Imports ``module`` now (a missing one is reported, not fatal) and adds the
    measures ``call(module)`` returns; a failure is reported and the run goes on."""
    print(f"{run.name}: {module}…", flush=True)
    try:
        loaded = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name != module:
            raise
        run.problems.append(f"`benchmarks/{module}.py` is missing: not measured.")
        print(f"  {module} is missing", flush=True)
        return
    try:
        items = call(loaded)
        if not isinstance(items, list):
            raise ValueError(f"{module}.measure returned {type(items).__name__}, not a list")
        run.measures += [checked(item, module) for item in items]
    except (Exception, SystemExit) as exc:  # one benchmark must not stop all
        traceback.print_exc()
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        run.problems.append(f"`{module}` failed: {message}")


def measure_database(url: str, args: argparse.Namespace) -> DatabaseRun:
    import bench_browse  # the dataset helpers; the module is ours, so always there

    run = DatabaseRun(url, backend(url))
    try:
        data = bench_browse.prepare_dataset(url, create=args.create, accounts=args.accounts,
                                            months=args.months, seed=SEED,
                                            usage_percent=args.usage)
    except (Exception, SystemExit) as exc:
        run.problems.append(f"The database could not be prepared: {exc}")
        return run
    run.version = data.version
    run.counts = (data.accounts, data.charges, data.ledger)
    before = load_average()

    def browse(module: ModuleType) -> object:
        return module.browse_measures(data, rounds=args.rounds, launches=args.launches,
                                      opens=args.opens, seed=SEED)

    def uniform(module: ModuleType) -> object:
        return module.measure(url, rounds=args.rounds)

    def memory(module: ModuleType) -> object:
        return module.measure(url, rounds=args.memory_runs, opens=args.opens)

    def writes(module: ModuleType) -> object:
        return module.measure(url, rounds=args.write_rounds)

    for module, call in (("bench_browse", browse), ("bench_charts", uniform),
                         ("bench_memory", memory), ("bench_writes", writes)):
        if not args.only or module.removeprefix("bench_") in args.only:
            run_part(run, module, call)
    run.load = (before, load_average())
    return run


# -- the report -------------------------------------------------------------------------


def series(values: list[float]) -> str:
    if not values:
        return "–"
    return f"{fmt_number(median(values))} / {fmt_number(percentile(values, 0.95))}"


def ratio(app: list[float], raw: list[float]) -> str:
    if not app or not raw or median(raw) <= 0:
        return "–"
    return f"{median(app) / median(raw):,.1f}×"


def table_row(name: str, item: Measure) -> str:
    unit = str(item.get("unit", "ms"))
    target = item["target_ms"]
    app = item["app_ms"]
    raw = item["raw_ms"]
    stall = item["stall_ms"]
    assert isinstance(app, list) and isinstance(raw, list)
    assert target is None or isinstance(target, float)
    assert stall is None or isinstance(stall, float)
    shown_target = "–" if target is None else f"{target:,g} {unit}"
    runs = f" ({plural(len(app), 'run', 'runs')})" if app else ""
    return (f"| {name} | {item['measure']}{runs} | {shown_target} | {series(app)} | "
            f"{series(raw)} | {ratio(app, raw)} | {fmt_number(stall)} | "
            f"{verdict(percentile(app, 0.95), target, unit)} |")


def stall_row(run: DatabaseRun) -> str:
    stalls = [(float(s), str(m["measure"])) for m in run.measures
              if isinstance(s := m["stall_ms"], float)]
    if not stalls:
        return f"| {run.name} | longest GUI-thread stall, all of the above | 50 ms | – | – " \
               "| – | – | – |"
    longest, where = max(stalls)
    return (f"| {run.name} | **longest GUI-thread stall, all of the above** (in: {where}) | "
            f"{STALL_TARGET_MS:,g} ms | {fmt_number(longest)} | – | – | "
            f"{fmt_number(longest)} | {verdict(longest, STALL_TARGET_MS)} |")


def render(runs: list[DatabaseRun], args: argparse.Namespace, command: str,
           started: datetime) -> str:
    versions = [r.version for r in runs if r.version]
    if not any(v.startswith("SQLite") for v in versions):
        versions.insert(0, f"SQLite {sqlite3.sqlite_version}")
    lines = [
        f"## {SECTION}",
        "",
        f"Measured on {started:%Y-%m-%d} from {started:%H:%M} UTC by `{command}` "
        f"({plural(args.rounds, 'round', 'rounds')}, "
        f"{plural(args.launches, 'launch', 'launches')}, "
        f"{plural(args.opens, 'account', 'accounts')} opened, "
        f"{plural(args.memory_runs, 'memory run', 'memory runs')}"
        f"{'; only ' + ', '.join(args.only) if args.only else ''}). Machine: "
        f"{os.cpu_count()} cores ({cpu_model()}), {ram_gib():.0f} GiB RAM, {platform.system()} "
        f"{platform.release()}; Python {platform.python_version()}, PySide6 "
        f"{PySide6.__version__} (Qt offscreen), {', '.join(versions)}.",
        "",
        f"Datasets, counted before measuring (made by the demo generator, as "
        f"`credits-desktop demo --accounts {ACCOUNTS} --months {MONTHS} --usage "
        f"{USAGE_PERCENT}` does, seed {SEED}: about 10.8 million charges):",
        "",
    ]
    for run in runs:
        where = parse_url(run.url).render_as_string(hide_password=True)
        if run.counts is None:
            lines.append(f"- {run.name} (`{where}`): not measured.")
            continue
        accounts, charges, ledger = run.counts
        lines.append(f"- {run.name} (`{where}`): {accounts:,} accounts, {charges:,} charges, "
                     f"{ledger:,} ledger entries. Load average (1 min) {run.load[0]:.2f} at "
                     f"the start, {run.load[1]:.2f} at the end.")
    lines += [
        "",
        "Median / p95 of the runs, in milliseconds (memory in MB). *App*: the desk (its "
        "GUI, worker threads and services) from the request to the answer shown. *Raw "
        "SQL*: the lower bound of the same answer, the statements run straight on one "
        "open connection (memory: a process with the same imports and a QApplication). "
        "*÷ raw*: app median / raw median, the figure that matters. *GUI stall*: the "
        "longest time the event loop could not run during the measure (a 5 ms timer on "
        "the GUI thread, its longest gap less 5 ms; – where nothing is on screen). "
        "Targets are judged on the p95.",
        "",
        "| database | measure | target | app | raw SQL | ÷ raw | GUI stall | target met |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    notes: list[str] = []
    for run in runs:
        for item in run.measures:
            lines.append(table_row(run.name, item))
            if item["note"]:
                notes.append(f"- {run.name}, {item['measure']}: "
                             f"{str(item['note']).rstrip('.')}.")
        if run.measures:
            lines.append(stall_row(run))
    lines += ["", "Notes:", "", *notes]
    problems = [f"- {run.name}: {problem}" for run in runs for problem in run.problems]
    if problems:
        lines += ["", "Not measured:", "", *problems]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", action="append", metavar="URL",
                        help="a database to measure (repeatable; default: the SQLite file "
                             f"{DEFAULT_SQLITE} and {make_url(DEFAULT_PG).render_as_string()})")
    parser.add_argument("--create", action="store_true",
                        help="create and fill the databases that are missing or empty")
    parser.add_argument("--accounts", type=int, default=ACCOUNTS,
                        help=f"accounts --create makes (default {ACCOUNTS:,})")
    parser.add_argument("--months", type=int, default=MONTHS,
                        help=f"months of history --create makes (default {MONTHS})")
    parser.add_argument("--usage", type=int, default=USAGE_PERCENT, metavar="PERCENT",
                        help="usage --create makes, in percent of the demo's usual "
                             f"(default {USAGE_PERCENT})")
    parser.add_argument("--rounds", type=int, default=5,
                        help="times each measure is repeated (default 5)")
    parser.add_argument("--launches", type=int, default=10,
                        help="application launches (default 10)")
    parser.add_argument("--opens", type=int, default=20,
                        help="accounts opened by the browse and memory measures (default 20)")
    parser.add_argument("--memory-runs", type=int, default=3,
                        help="fresh processes for the peak memory (default 3)")
    parser.add_argument("--write-rounds", type=int, default=3,
                        help="rounds of the write measures (default 3): each incident round "
                             "refunds 10,000 failed charges for good, so a database allows "
                             "only a few")
    parser.add_argument("--only", action="append", choices=PARTS, metavar="PART",
                        help=f"run only this part (repeatable; one of {', '.join(PARTS)})")
    parser.add_argument("--out", type=Path, default=ROOT / "BENCHMARKS.md",
                        help="the Markdown file whose section is replaced "
                             "(default BENCHMARKS.md)")
    args = parser.parse_args(argv)
    for name in ("rounds", "launches", "opens", "memory_runs", "write_rounds"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1.")
    started = datetime.now(UTC)
    command = "python benchmarks/run_all.py " + shlex.join(sys.argv[1:] if argv is None
                                                           else argv)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    runs = [measure_database(url, args) for url in args.db or [DEFAULT_SQLITE, DEFAULT_PG]]
    body = render(runs, args, command.strip(), started)
    print()
    print(body)
    print(f"Updated {write_section(args.out, SECTION, body)}")
    del app
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
