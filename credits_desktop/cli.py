"""The ``credits-desktop`` command: the desktop app, and the chores around its database.

``credits-desktop`` alone (or ``gui``) opens the desktop application. The other
commands run without a display: ``demo`` fills a database with demo data,
``check`` proves that the numbers obey the rules, ``db upgrade`` / ``db current``
look after the schema, ``rollup build`` / ``rollup status`` the usage rollup the
charts read, ``roll`` runs the billing-period roll-over (the scheduler's job) and
``staff add`` adds a staff member. ``--self-test`` checks that this installation
(from source, or the one-folder bundle made by ``build.spec``) has everything the
application loads: see :func:`cmd_self_test`.

Exit status: 0 success; 1 the command ran and found a problem (``check`` found a
broken rule, ``db current`` an outdated schema, ``rollup status`` a rollup not yet
complete, ``--self-test`` a failing check); 2 the command could not run (a
plain one-line message on stderr; the traceback goes to the log file, and to
stderr too with ``-v``). A password is never printed.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, is_dataclass
from datetime import UTC, datetime
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import TextIO

import platformdirs
from sqlalchemy.exc import SQLAlchemyError

from credits_desktop import __version__
from credits_desktop.bootstrap import (
    APP_NAME,
    DEMO_ACCOUNTS,
    DEMO_MONTHS,
    DEMO_SEED,
    SchemaTooNew,
    account_count,
    check_schema,
    display_url,
    driver_message,
    fill_demo,
    open_database,
    resolve_url,
)
from credits_desktop.services.check import check_database, plural
from credits_desktop.services.errors import CreditsDeskError
from credits_desktop.services.rollups import (
    CHUNK_ROWS,
    build_rollups,
    reset_rollups,
    rollup_status,
)
from credits_desktop.store.database import Database
from credits_desktop.store.engine import ConfigurationError, hide_passwords
from credits_desktop.store.schema import schema_state, upgrade

log = logging.getLogger("credits_desktop.cli")

LOG_FILENAME = "credits-desktop.log"
LOG_MAX_BYTES = 1_000_000
LOG_BACKUPS = 5
EXIT_OK, EXIT_PROBLEM, EXIT_ERROR = 0, 1, 2
EXIT_INTERRUPTED = 130  # the shell's convention for Ctrl+C

Handler = Callable[[argparse.Namespace], int]


# -- the commands -----------------------------------------------------------------------------


def cmd_gui(args: argparse.Namespace) -> int:
    # Given neither --db nor CREDITS_DESK_DB (is_demo), the application reopens the
    # connection last chosen in it, if any, before falling back to the demo database.
    url, is_demo = resolve_url(args.db)
    try:
        # Imported here so that every other command works without Qt or a display.
        from credits_desktop.ui.app import run_gui
    except ImportError as exc:
        raise CreditsDeskError(
            f"The desktop interface could not be started ({exc}); "
            "the other commands still work, see 'credits-desktop --help'."
        ) from exc
    return int(run_gui(url, is_demo))


def cmd_demo(args: argparse.Namespace) -> int:
    for name in ("accounts", "months"):
        if getattr(args, name) < 1:
            raise CreditsDeskError(f"--{name} must be at least 1.")
    url, _ = resolve_url(args.db)
    with opened(url) as db:
        check_schema(db, upgrade_outdated=False, create_empty=True)
        existing = account_count(db)
        if existing:
            raise CreditsDeskError(
                f"The database at {db.display_url()} already holds {existing:,} accounts; "
                "demo data goes only into an empty database."
            )
        print(f"Filling {db.display_url()} with demo data: "
              f"{plural(args.accounts, 'account')} over {plural(args.months, 'month')} "
              f"(seed {args.seed}).", file=sys.stderr)
        reporter = ProgressPrinter(sys.stderr)
        started = time.perf_counter()
        summary = fill_demo(db, accounts=args.accounts, months=args.months, seed=args.seed,
                            progress=reporter, usage_percent=args.usage)
        elapsed = time.perf_counter() - started
        reporter.finish()
        print(describe_summary(summary, elapsed))
    return EXIT_OK


def cmd_check(args: argparse.Namespace) -> int:
    url, _ = resolve_url(args.db)
    with opened(url, must_exist=True) as db:
        check_schema(db, upgrade_outdated=False, create_empty=False)
        started = time.perf_counter()
        report = check_database(db)
        elapsed = time.perf_counter() - started
        print(f"Database: {db.display_url()}")
        print(report.render())
        print(f"Checked in {elapsed:.1f} s.")
    return EXIT_OK if report.ok else EXIT_PROBLEM


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    url, _ = resolve_url(args.db)
    with opened(url) as db:
        before = schema_state(db.engine)
        if before.newer_than_application:
            raise SchemaTooNew(str(before.current), before.head)
        if before.up_to_date:
            print(f"The database is already at the latest revision ({before.head}).")
            return EXIT_OK
        if before.empty:
            check_schema(db, upgrade_outdated=True, create_empty=True)
        else:
            upgrade(db.engine)
        after = schema_state(db.engine)
        print(f"Upgraded {db.display_url()} from revision {before.current or '(empty)'} "
              f"to {after.current}.")
        _rollup_hint(db)
    return EXIT_OK


def _rollup_hint(db: Database) -> None:
    """After an upgrade: say so when the existing charges still have to be rolled up."""
    status = rollup_status(db)
    if not status.ready:
        print(f"The usage rollup of the existing {plural(status.total - status.done, 'row')} "
              "of charges, refunds and reversals is not built yet: run 'credits-desktop "
              "rollup build' (staff can keep working meanwhile; it can be interrupted and "
              "resumed). Until then charts read the charges directly.")


def cmd_rollup_build(args: argparse.Namespace) -> int:
    if args.chunk < 1:
        raise CreditsDeskError("--chunk must be at least 1.")
    url, _ = resolve_url(args.db)
    with opened(url, must_exist=True) as db:
        check_schema(db, upgrade_outdated=False, create_empty=False)
        if args.rebuild:
            before = reset_rollups(db)
            print(f"Emptied the usage rollup of {db.display_url()}; rebuilding it from "
                  f"{plural(before.total, 'row')} of charges, refunds and reversals.",
                  file=sys.stderr)
        else:
            before = rollup_status(db)
        if before.ready:
            print("The usage rollup is complete; there is nothing to build.")
            return EXIT_OK
        reporter = ProgressPrinter(sys.stderr)
        started = time.perf_counter()
        try:
            status = build_rollups(db, progress=reporter, chunk_rows=args.chunk)
        except KeyboardInterrupt:
            # The chunk under way rolled back; every chunk before it is kept.
            reporter.finish()
            now = rollup_status(db)
            print(f"Interrupted with {now.done:,} of {now.total:,} rows in the usage rollup; "
                  "run 'credits-desktop rollup build' again to go on from there.",
                  file=sys.stderr)
            return EXIT_INTERRUPTED
        reporter.finish()
        elapsed = time.perf_counter() - started
        print(f"Usage rollup built: {status.done - before.done:,} rows added in "
              f"{elapsed:.1f} s. {status.describe()}")
    return EXIT_OK


def cmd_rollup_status(args: argparse.Namespace) -> int:
    url, _ = resolve_url(args.db)
    with opened(url, must_exist=True) as db:
        check_schema(db, upgrade_outdated=False, create_empty=False)
        status = rollup_status(db)
        print(f"Database: {db.display_url()}")
        print(status.describe())
        if status.total:
            for source in ("charges", "refunds", "reversals"):
                print(f"  {source}: up to id {status.position(source):,} of "
                      f"{status.watermark(source):,}")
    return EXIT_OK if status.ready else EXIT_PROBLEM


def cmd_db_current(args: argparse.Namespace) -> int:
    url, _ = resolve_url(args.db)
    with opened(url, must_exist=True) as db:
        state = schema_state(db.engine)
        print(f"Database: {db.display_url()}")
        print(f"Current revision: {state.current or '(empty: no schema yet)'}")
        print(f"Latest revision: {state.head}")
        if state.up_to_date:
            print("The database is up to date.")
            return EXIT_OK
        if state.newer_than_application:
            print("The database is newer than this version of Credits Desk; "
                  "install the newer version to use it.")
        else:
            print("The database needs an upgrade: run 'credits-desktop db upgrade'.")
    return EXIT_PROBLEM


def cmd_db_roles(args: argparse.Namespace) -> int:
    """Create or refresh the PostgreSQL group roles, grants and staff logins."""
    import os
    import re as _re

    from credits_desktop.store.db_roles import sync_roles

    def from_env(username: str) -> str | None:
        return os.environ.get("CREDITS_DESK_PASSWORD_" + _re.sub(r"\W", "_", username.upper()))

    url, _ = resolve_url(args.db)
    with opened(url, must_exist=True) as db:
        if not db.is_postgresql:
            return fail("Database roles exist on PostgreSQL only; a SQLite file has no logins.")
        check_schema(db, upgrade_outdated=False, create_empty=False)
        report = sync_roles(db.engine, prefix=args.prefix,
                            password_for=from_env if args.password_from_env else None)
        print(f"Database: {db.display_url()}")
        for line in report.lines() or ["Every role and grant was already up to date."]:
            print(line)
    return EXIT_OK


def cmd_roll(args: argparse.Namespace) -> int:
    from credits_desktop.services.accounts import sign_in
    from credits_desktop.services.book import SYSTEM_USERNAME
    from credits_desktop.services.periods import roll_periods

    until = parse_time(args.until) if args.until else None
    url, is_demo = resolve_url(args.db)
    with opened(url, must_exist=True) as db:
        check_schema(db, upgrade_outdated=is_demo, create_empty=False)
        system = sign_in(db, SYSTEM_USERNAME)
        result = roll_periods(db, system, until=until)
        when = (until or datetime.now(UTC)).strftime("%d %b %Y %H:%M UTC")
        print(f"Rolled billing periods to {when}: "
              f"{plural(result.accounts_rolled, 'account')} changed, "
              f"{plural(result.grants_created, 'plan grant')} made, "
              f"{plural(result.credits_expired, 'unused plan credit')} expired.")
    return EXIT_OK


def cmd_staff_add(args: argparse.Namespace) -> int:
    from credits_desktop.services.accounts import create_staff, sign_in

    url, is_demo = resolve_url(args.db)
    with opened(url, must_exist=True) as db:
        check_schema(db, upgrade_outdated=is_demo, create_empty=False)
        actor = sign_in(db, args.acting_as) if args.acting_as else None
        added = create_staff(db, actor, username=args.username,
                             display_name=args.display_name, role=args.role)
        print(f"Added staff member '{added.username}' ({added.display_name}, "
              f"{added.role.value}).")
    return EXIT_OK


# -- the self-test -----------------------------------------------------------------------------

# Small, so that the whole self-test takes a few seconds.
SELF_TEST_ACCOUNTS = 50
SELF_TEST_MONTHS = 2
SELF_TEST_DB = "self-test.sqlite3"
# Modules the application imports only on first use (inside functions): the start-up
# does not load them, so a bundle lacking one (or pyqtgraph) would fail only when staff
# first open that view.
LAZY_VIEWS = {
    "credits_desktop.ui.dashboard_view": "dashboard",
    "credits_desktop.ui.finance_report_view": "finance report",
    "credits_desktop.ui.account_charts": "account charts",
}


class SelfTestFailure(Exception):
    """A self-test check failed; the message is a plain sentence."""


@dataclass
class SelfTestState:
    """What one check leaves for the next: the temporary folder and demo database."""

    folder: Path
    db_url: str | None = None
    support_user: str | None = None


SelfTestCheck = Callable[[SelfTestState], str]


def cmd_self_test(args: argparse.Namespace) -> int:
    """Check this installation without touching the user's data, a line per check.

    A temporary SQLite database is created by the migrations and filled with a small
    demo; the modules the application imports only on first use (charts, XLSX export,
    the dashboard and finance report), the keyring backends and the PostgreSQL driver
    are loaded; then the real start-up opens the main window on that database and signs
    in as a demo support user, unattended (offscreen when there is no display). The
    temporary folder is deleted at the end. Exit status 0 if every check passed, else 1.
    """
    if args.db is not None:
        raise CreditsDeskError("--self-test makes its own temporary database; "
                               "give it no --db.")
    started = time.perf_counter()
    frozen = bool(getattr(sys, "frozen", False))
    where = (f"the bundle in {Path(sys.executable).resolve().parent}" if frozen
             else f"the source in {Path(__file__).resolve().parent}")
    print(f"Credits Desk {__version__} self-test, running {where}", flush=True)
    checks: list[tuple[str, SelfTestCheck]] = [
        ("version", _check_version),
        ("migrations", _check_migrations),
        ("demo data", _check_demo_data),
        ("postgresql driver", _check_postgresql_driver),
        ("keyring", _check_keyring),
        ("charts", _check_charts),
        ("spreadsheets", _check_spreadsheets),
        ("views", _check_views),
        ("main window", _check_main_window),
        ("icon", _check_icon),
    ]
    failed: list[str] = []
    # Qt reads the platform when the application object is made, in the main window check.
    no_display = not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    platform = {"QT_QPA_PLATFORM": "offscreen"} if no_display else {}
    with temporary_environment(platform), \
            tempfile.TemporaryDirectory(prefix="credits-desk-self-test-") as name:
        folder = Path(name)
        state = SelfTestState(folder)
        for check_name, check in checks:
            try:
                detail = check(state)
            except Exception as exc:  # each failure is reported, and the next check runs
                log.info("self-test: %s failed", check_name, exc_info=True)
                failed.append(check_name)
                print(f"FAIL  {check_name}: {_plain(exc)}", flush=True)
            else:
                print(f"ok    {check_name}: {detail}", flush=True)
    if folder.exists():
        failed.append("clean-up")
        print(f"FAIL  clean-up: the temporary folder {folder} is still there", flush=True)
    elapsed = time.perf_counter() - started
    if failed:
        fail(f"the self-test failed ({', '.join(failed)}); see the lines above, and "
             f"{log_path()} for the details.")
        return EXIT_PROBLEM
    print(f"Self-test passed: {len(checks)} checks in {elapsed:.1f} s; "
          "the temporary files are deleted.", flush=True)
    return EXIT_OK


@contextmanager
def temporary_environment(values: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables for the length of a block, then put back what was."""
    before = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _plain(exc: BaseException) -> str:
    """A failed check's reason in one line (the traceback goes to the log)."""
    if isinstance(exc, CreditsDeskError):
        return exc.message
    if isinstance(exc, SelfTestFailure):
        return str(exc)
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _check_version(state: SelfTestState) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        installed = version(APP_NAME)
    except PackageNotFoundError as exc:
        raise SelfTestFailure(f"the package metadata of {APP_NAME} is missing, so its "
                              "version cannot be read") from exc
    if installed != __version__:
        raise SelfTestFailure(f"the package metadata says {installed} but the code is "
                              f"{__version__}; reinstall it")
    return f"{APP_NAME} {installed} (from its package metadata)"


def _check_migrations(state: SelfTestState) -> str:
    from credits_desktop.store.schema import MIGRATIONS, known_revisions

    # Alembic reads the migrations from these files, not from imported modules.
    if not (MIGRATIONS / "env.py").is_file() or not known_revisions():
        raise SelfTestFailure(f"the migrations are missing from {MIGRATIONS}")
    url = f"sqlite:///{state.folder / SELF_TEST_DB}"
    with opened(url) as db:
        check_schema(db, upgrade_outdated=False, create_empty=True)
        after = schema_state(db.engine)
    if not after.up_to_date:
        raise SelfTestFailure(f"after the upgrade the schema is at {after.current}, "
                              f"not {after.head}")
    state.db_url = url
    return (f"Alembic created the schema from {plural(len(known_revisions()), 'revision')}, "
            f"now at {after.head}")


def _check_demo_data(state: SelfTestState) -> str:
    from credits_desktop.domain.permissions import Role
    from credits_desktop.services.demo import DEMO_STAFF

    url = _needs_database(state)
    with opened(url) as db:
        summary = fill_demo(db, accounts=SELF_TEST_ACCOUNTS, months=SELF_TEST_MONTHS,
                            seed=DEMO_SEED, progress=None)
        report = check_database(db)
    if not report.ok:
        raise SelfTestFailure("the demo data breaks a rule: " + report.render())
    state.support_user = next(username for username, _name, role, active in DEMO_STAFF
                              if role is Role.SUPPORT and active)
    charges = getattr(summary, "charges", 0)
    return (f"{plural(SELF_TEST_ACCOUNTS, 'account')} and {charges:,} charges over "
            f"{plural(SELF_TEST_MONTHS, 'month')}; every rule holds")


def _needs_database(state: SelfTestState) -> str:
    if state.db_url is None:
        raise SelfTestFailure("not run: the temporary database could not be made")
    return state.db_url


def _check_postgresql_driver(state: SelfTestState) -> str:
    import psycopg
    from sqlalchemy import create_engine

    implementation = str(psycopg.pq.__impl__)
    if implementation == "python":
        raise SelfTestFailure("psycopg has no compiled libpq (psycopg[binary] is missing)")
    # Loads SQLAlchemy's psycopg dialect and the driver; nothing is connected to.
    create_engine("postgresql+psycopg://self-test@localhost/self-test").dispose()
    return f"psycopg {psycopg.__version__} ({implementation}), SQLAlchemy's psycopg dialect"


def _check_keyring(state: SelfTestState) -> str:
    from importlib import import_module
    from importlib.metadata import entry_points

    import keyring

    # keyring finds its backends through its package metadata's entry points.
    found = sorted(entry_points(group="keyring.backends"), key=lambda e: e.name)
    if not found:
        raise SelfTestFailure("keyring lists no backends (its package metadata is missing)")
    broken: list[str] = []
    for entry in found:
        try:
            entry.load()
        except Exception:
            log.info("keyring backend %s does not load", entry.name, exc_info=True)
            broken.append(entry.name)
    if broken:
        raise SelfTestFailure(f"the keyring backends {', '.join(broken)} do not load")
    if sys.platform.startswith("linux"):
        # The Secret Service backend (GNOME Keyring, KeePassXC…) needs these two;
        # without them it quietly drops out and passwords cannot be saved.
        for module in ("secretstorage", "jeepney"):
            import_module(module)
    chosen = keyring.get_keyring()
    return (f"{plural(len(found), 'backend')} load ({', '.join(e.name for e in found)}); "
            f"in use here: {type(chosen).__module__}")


def _check_charts(state: SelfTestState) -> str:
    from importlib import import_module

    import pyqtgraph
    import pyqtgraph.exporters  # the PNG and SVG export of the charts

    import_module("credits_desktop.ui.charts_common")
    return f"pyqtgraph {pyqtgraph.__version__} with its exporters"


def _check_spreadsheets(state: SelfTestState) -> str:
    import openpyxl

    from credits_desktop.ui.exports import Sheet, write_xlsx

    path = write_xlsx(state.folder / "self-test.xlsx",
                      [Sheet("Self-test", ["Feature", "Credits"], [["video", 1234]])])
    book = openpyxl.load_workbook(path, read_only=True)
    try:
        value = book["Self-test"]["B2"].value
    finally:
        book.close()
    if value != 1234:
        raise SelfTestFailure(f"the XLSX written holds {value!r} instead of 1234")
    return f"openpyxl {openpyxl.__version__} wrote an XLSX and read it back"


def _check_views(state: SelfTestState) -> str:
    from importlib import import_module

    for module in LAZY_VIEWS:
        import_module(module)
    return "the " + ", the ".join(LAZY_VIEWS.values()) + " load"


def _check_main_window(state: SelfTestState) -> str:
    from credits_desktop.ui.app import QUIT_AFTER_START_ENV, USER_ENV, run_gui

    url = _needs_database(state)
    if state.support_user is None:
        raise SelfTestFailure("not run: the demo data could not be made")
    platform = os.environ.get("QT_QPA_PLATFORM") or "on the display"
    started = time.perf_counter()
    # The application's own unattended start: sign in without the dialog, and quit once
    # the main window has loaded its first page of accounts.
    with temporary_environment({USER_ENV: state.support_user, QUIT_AFTER_START_ENV: "1"}):
        code = run_gui(url, False)
    if code != EXIT_OK:
        raise SelfTestFailure(f"the application ended with status {code} before its main "
                              "window had loaded (the reason is above)")
    return (f"signed in as {state.support_user} (support) and loaded the first page of "
            f"accounts in {time.perf_counter() - started:.1f} s ({platform})")


def _check_icon(state: SelfTestState) -> str:
    from PySide6.QtWidgets import QApplication

    from credits_desktop.ui.app import ICON_PATH, app_icon

    if not ICON_PATH.is_file():
        raise SelfTestFailure(f"the icon {ICON_PATH} is missing")
    existing = QApplication.instance()
    # Kept in a variable until drawn: the application object must outlive the drawing.
    app = existing if existing is not None else QApplication(sys.argv[:1])
    pixmap = app_icon().pixmap(64, 64)
    if pixmap.isNull():
        raise SelfTestFailure(f"the icon {ICON_PATH.name} could not be drawn "
                              "(Qt's SVG image plugin may be missing)")
    del app
    return f"{ICON_PATH.name} drawn at 64 x 64"


# -- helpers ------------------------------------------------------------------------------------


@contextmanager
def opened(url: str, *, must_exist: bool = False) -> Iterator[Database]:
    db = open_database(url, must_exist=must_exist)
    try:
        yield db
    finally:
        db.close()


def parse_time(text: str) -> datetime:
    """An ISO date or date-time; one without a time zone is taken as UTC."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise CreditsDeskError(
            f"'{text}' is not a date and time; write it like 2026-03-01T00:00."
        ) from exc
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


class ProgressPrinter:
    """Shows the demo generator's progress: one updating line on a terminal, else a
    line per stage and per tenth of it (so a log of the run stays short)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.live = stream.isatty()
        self.stage: str | None = None
        self.step = -1
        self.width = 0

    def __call__(self, stage: str, done: int, total: int) -> None:
        percent = int(100 * done / total) if total > 0 else 100
        text = f"{stage}: {done:,}/{total:,} ({percent}%)" if total > 0 else f"{stage}…"
        if self.live:
            self.stream.write("\r" + text.ljust(self.width))
            self.width = max(self.width, len(text))
            self.stream.flush()
            return
        step = percent // 10
        if stage != self.stage or step != self.step:
            self.stage, self.step = stage, step
            self.stream.write(text + "\n")
            self.stream.flush()

    def finish(self) -> None:
        if self.live and self.width:
            self.stream.write("\n")
            self.stream.flush()


def describe_summary(summary: object, elapsed: float) -> str:
    """The demo generator's summary in one or two lines, with the charges per second."""
    fields: dict[str, object] = {}
    if is_dataclass(summary) and not isinstance(summary, type):
        fields = asdict(summary)
    elif summary is not None and hasattr(summary, "__dict__"):
        fields = dict(vars(summary))
    parts = [
        f"{value:,} {name.replace('_', ' ')}"
        for name, value in fields.items()
        if isinstance(value, int) and not isinstance(value, bool)
    ]
    lines = ["Demo data written: " + (", ".join(parts) if parts else str(summary)) + "."]
    charges = fields.get("charges")
    rate = ""
    if isinstance(charges, int) and elapsed > 0:
        rate = f" ({charges / elapsed:,.0f} charges per second)"
    lines.append(f"Took {elapsed:.1f} s{rate}.")
    return "\n".join(lines)


# -- the parser and main ----------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=APP_NAME,
        description="Credits Desk: look after customers' AI credits. Without a command, "
        "opens the desktop application.",
        epilog="The database is --db, else the CREDITS_DESK_DB environment variable, else "
        "(for the desktop application) the connection last chosen in it, else the demo "
        "database in your data folder. Addresses: sqlite:///path/to/file.sqlite3 "
        "or postgresql://user@host/dbname.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--db", metavar="URL", help="database address (see below)")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="also write the log, with tracebacks, to the terminal")
    parser.add_argument("--self-test", action="store_true",
                        help="check this installation (or bundle) and exit: make a small "
                        "temporary demo database with the migrations, load the keyring "
                        "backends, the PostgreSQL driver, the charts, the XLSX export and "
                        "the dashboard, open the main window unattended (offscreen without a "
                        "display), then delete the temporary files; one line per check, "
                        "exit status 1 if any failed")
    parser.set_defaults(handler=cmd_gui)
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    gui = commands.add_parser("gui", help="open the desktop application (the default)")
    gui.set_defaults(handler=cmd_gui)

    demo = commands.add_parser("demo", help="fill an empty database with demo data")
    demo.add_argument("--accounts", type=int, default=DEMO_ACCOUNTS, metavar="N",
                      help=f"number of customer accounts (default {DEMO_ACCOUNTS})")
    demo.add_argument("--months", type=int, default=DEMO_MONTHS, metavar="M",
                      help=f"months of history (default {DEMO_MONTHS})")
    demo.add_argument("--seed", type=int, default=DEMO_SEED, metavar="S",
                      help=f"random seed, for the same data every time (default {DEMO_SEED})")
    demo.add_argument("--usage", type=int, default=100, metavar="PERCENT",
                      help="how much of their allotment accounts use, in percent of the "
                           "usual (default 100; the 10-million-charge benchmark uses less)")
    demo.set_defaults(handler=cmd_demo)

    check = commands.add_parser(
        "check", help="check that every balance equals the ledger and every rule holds "
        "(exit status 1 if not)"
    )
    check.set_defaults(handler=cmd_check)

    db = commands.add_parser("db", help="the database schema")
    db_commands = db.add_subparsers(title="db commands", metavar="COMMAND", required=True)
    db_upgrade = db_commands.add_parser("upgrade", help="upgrade the schema to this version")
    db_upgrade.set_defaults(handler=cmd_db_upgrade)
    db_current = db_commands.add_parser(
        "current", help="show the schema revision (exit status 1 if not up to date)"
    )
    db_current.set_defaults(handler=cmd_db_current)
    db_roles = db_commands.add_parser(
        "roles", help="create or refresh the PostgreSQL roles, grants and staff logins"
    )
    db_roles.add_argument("--prefix", default="credits_",
                          help="prefix of the group role names (default: credits_)")
    db_roles.add_argument("--password-from-env", action="store_true",
                          help="set each login's password from CREDITS_DESK_PASSWORD_<USERNAME>")
    db_roles.set_defaults(handler=cmd_db_roles)

    rollup = commands.add_parser("rollup", help="the per-day usage rollup the charts read")
    rollup_commands = rollup.add_subparsers(title="rollup commands", metavar="COMMAND",
                                            required=True)
    rollup_build = rollup_commands.add_parser(
        "build", help="add the charges from before the rollup existed (resumable; staff "
        "can keep working)"
    )
    rollup_build.add_argument("--rebuild", action="store_true",
                              help="empty the rollup first and build it all again (a repair)")
    rollup_build.add_argument("--chunk", type=int, default=CHUNK_ROWS, metavar="N",
                              help=f"rows per transaction (default {CHUNK_ROWS:,})")
    rollup_build.set_defaults(handler=cmd_rollup_build)
    rollup_state = rollup_commands.add_parser(
        "status", help="how far the rollup is built (exit status 1 if not complete)"
    )
    rollup_state.set_defaults(handler=cmd_rollup_status)

    roll = commands.add_parser(
        "roll", help="expire ended plan credits and grant new billing periods"
    )
    roll.add_argument("--until", metavar="WHEN",
                      help="roll up to this ISO date-time (UTC unless it says; default now)")
    roll.set_defaults(handler=cmd_roll)

    staff = commands.add_parser("staff", help="staff members")
    staff_commands = staff.add_subparsers(title="staff commands", metavar="COMMAND",
                                          required=True)
    staff_add = staff_commands.add_parser(
        "add", help="add a staff member (the first one needs no --as)"
    )
    staff_add.add_argument("username")
    staff_add.add_argument("display_name", metavar="DISPLAY_NAME")
    staff_add.add_argument("role", choices=["support", "finance", "manager", "admin"])
    staff_add.add_argument("--as", dest="acting_as", metavar="USERNAME",
                           help="the admin adding the staff member")
    staff_add.set_defaults(handler=cmd_staff_add)
    return parser


def log_path() -> Path:
    return platformdirs.user_log_path(APP_NAME, appauthor=False) / LOG_FILENAME


class PasswordHidingFormatter(logging.Formatter):
    """Log lines with any password masked, tracebacks included: an exception's message
    can quote a database address, and the log file outlives the session."""

    def format(self, record: logging.LogRecord) -> str:
        return hide_passwords(super().format(record))


@contextmanager
def logging_to(verbose: bool) -> Iterator[None]:
    """Log to the user's log file (and to stderr with -v) for the length of a command."""
    root = logging.getLogger()
    handlers: list[logging.Handler] = []
    formatter = PasswordHidingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        path = log_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        # Rotated, so a desktop left running for months cannot fill the disk.
        handlers.append(RotatingFileHandler(path, maxBytes=LOG_MAX_BYTES,
                                            backupCount=LOG_BACKUPS, encoding="utf-8"))
    except OSError:
        pass  # no log file: the command itself still works
    if verbose:
        handlers.append(logging.StreamHandler(sys.stderr))
    previous = root.level
    for handler in handlers:
        handler.setFormatter(formatter)
        handler.setLevel(logging.DEBUG if verbose else logging.INFO)
        root.addHandler(handler)
    if root.level == logging.NOTSET or root.level > logging.INFO:
        root.setLevel(logging.DEBUG if verbose else logging.INFO)
    try:
        yield
    finally:
        root.setLevel(previous)
        for handler in handlers:
            root.removeHandler(handler)
            handler.close()


def fail(message: str) -> int:
    print(f"{APP_NAME}: {message}", file=sys.stderr)
    return EXIT_ERROR


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (see the module docstring)."""
    parser = build_parser()
    try:
        args = parser.parse_args(list(argv) if argv is not None else None)
    except SystemExit as exc:  # --help, --version, or a usage error already printed
        return exc.code if isinstance(exc.code, int) else EXIT_ERROR
    handler: Handler = args.handler
    if args.self_test:
        if handler is not cmd_gui:
            return fail("--self-test runs on its own; give it no command.")
        handler = cmd_self_test
    with logging_to(args.verbose):
        log.info("credits-desktop %s: %s", __version__,
                 " ".join(_safe_argv(argv if argv is not None else sys.argv[1:])))
        try:
            return handler(args)
        except CreditsDeskError as exc:
            log.info("refused: %s", exc.message, exc_info=True)
            return fail(exc.message)
        except ConfigurationError as exc:
            log.info("unusable address: %s", exc, exc_info=True)
            return fail(str(exc))
        except SQLAlchemyError as exc:
            log.exception("database error")
            return fail(f"The database could not do this: {driver_message(exc)}")
        except KeyboardInterrupt:
            fail("Interrupted.")
            return EXIT_INTERRUPTED
        except Exception:
            # A fault, not a refusal: the traceback is for the log (and for -v).
            log.exception("unexpected error")
            return fail(f"An unexpected error stopped the command; the details are in "
                        f"{log_path()}.")


def _safe_argv(argv: Sequence[str]) -> list[str]:
    """The arguments as they may be logged: database addresses without their password."""
    out: list[str] = []
    hide_next = False
    for arg in argv:
        if hide_next:
            out.append(display_url(arg))
            hide_next = False
        elif arg == "--db":
            out.append(arg)
            hide_next = True
        elif arg.startswith("--db="):
            out.append("--db=" + display_url(arg[5:]))
        else:
            out.append(arg)
    return out


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
