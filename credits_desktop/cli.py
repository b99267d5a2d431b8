"""The ``credits-desktop`` command: the desktop app, and the chores around its database.

``credits-desktop`` alone (or ``gui``) opens the desktop application. The other
commands run without a display: ``demo`` fills a database with demo data,
``check`` proves that the numbers obey the rules, ``db upgrade`` / ``db current``
look after the schema, ``rollup build`` / ``rollup status`` the usage rollup the
charts read, ``roll`` runs the billing-period roll-over (the scheduler's job) and
``staff add`` adds a staff member.

Exit status: 0 success; 1 the command ran and found a problem (``check`` found a
broken rule, ``db current`` an outdated schema, ``rollup status`` a rollup not yet
complete); 2 the command could not run (a
plain one-line message on stderr; the traceback goes to the log file, and to
stderr too with ``-v``). A password is never printed.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, is_dataclass
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
