"""The ``credits-desktop`` command line and the database bootstrap, on both databases.

Commands run in-process through ``main([...])`` (one test runs ``python -m
credits_desktop`` for real). The user's folders (log file, default demo database)
point into the test's temporary directory.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from credits_desktop import bootstrap
from credits_desktop.bootstrap import (
    BootstrapError,
    SchemaOutdated,
    SchemaTooNew,
    prepare_database,
    resolve_url,
)
from credits_desktop.cli import main
from credits_desktop.store.database import Database
from credits_desktop.store.engine import make_engine
from credits_desktop.store.schema import SchemaState, head_revision, schema_state
from credits_desktop.store.schema import upgrade as real_upgrade

from services.factories import charge, open_world, scalar, seed_world  # isort: skip


@pytest.fixture(autouse=True)
def user_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The user's data and log folders inside the test's directory; no CREDITS_DESK_DB."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.delenv(bootstrap.ENV_VAR, raising=False)
    return tmp_path


@pytest.fixture(params=["sqlite", "postgresql"], ids=["sqlite", "postgresql"])
def blank_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An existing database with no tables at all."""
    if request.param == "sqlite":
        path = tmp_path / "blank.sqlite3"
        path.touch()  # an empty file is an empty SQLite database
        yield f"sqlite:///{path}"
        return
    admin: Engine = request.getfixturevalue("pg_admin")
    name = f"credits_test_{os.getpid()}_cli_blank"
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin.url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_plain_error(err: str) -> None:
    """One line on stderr, no traceback."""
    assert err.startswith("credits-desktop: "), err
    assert err.count("\n") == 1, err
    assert "Traceback" not in err and 'File "' not in err, err


def set_revision(url: str, revision: str) -> None:
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = :r"), {"r": revision})
    finally:
        engine.dispose()


@pytest.fixture
def future_url(db_url: str) -> Iterator[str]:
    """``db_url`` stamped with a revision this application does not know. Put back after:
    the PostgreSQL test database is shared by the session and its reset keeps the stamp."""
    set_revision(db_url, "ffff_future")
    try:
        yield db_url
    finally:
        set_revision(db_url, head_revision())


# -- db current / db upgrade ------------------------------------------------------------------


def test_db_current_and_upgrade_on_an_empty_database(
    blank_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "--db", blank_url, "db", "current")
    assert code == 1
    assert "no schema yet" in out and "db upgrade" in out

    code, out, _ = run(capsys, "--db", blank_url, "db", "upgrade")
    assert code == 0
    assert f"from revision (empty) to {head_revision()}" in out

    code, out, _ = run(capsys, "--db", blank_url, "db", "current")
    assert code == 0
    assert f"Current revision: {head_revision()}" in out and "up to date" in out

    code, out, _ = run(capsys, "--db", blank_url, "db", "upgrade")
    assert code == 0 and "already at the latest revision" in out


def test_db_current_on_a_migrated_database(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "--db", db_url, "db", "current")
    assert code == 0, err
    assert "up to date" in out
    assert "password" not in out.lower()


def test_a_newer_schema_is_refused(
    future_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    db_url = future_url

    code, out, _ = run(capsys, "--db", db_url, "db", "current")
    assert code == 1 and "newer than this version" in out

    for command in (["check"], ["db", "upgrade"], ["roll"]):
        code, _, err = run(capsys, "--db", db_url, *command)
        assert code == 2, command
        assert_plain_error(err)
        assert "newer than this version" in err


def test_check_refuses_a_database_without_schema(
    blank_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "--db", blank_url, "check")
    assert code == 2
    assert_plain_error(err)
    assert "db upgrade" in err


# -- check and roll ---------------------------------------------------------------------------


def test_check_passes_then_finds_a_corruption(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with open_world(db_url) as world:
        charge(world, 40, status="failed")
        charge(world, 25, status="succeeded")

    code, out, err = run(capsys, "--db", db_url, "check")
    assert code == 0, out + err
    assert "OK" in out and "1 account, 2 charges" in out

    engine = make_engine(db_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("UPDATE accounts SET purchased_balance = purchased_balance + 7"))
    finally:
        engine.dispose()

    code, out, err = run(capsys, "--db", db_url, "check")
    assert code == 1
    assert "PROBLEMS" in out and "purchased balance" in out
    assert err == ""


def test_roll_expires_and_grants_periods(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with open_world(db_url) as world:  # opened 10 Jan 2026, billing day 1, Starter plan
        account_id = world.account_id

    code, out, err = run(capsys, "--db", db_url, "roll", "--until", "2026-03-15T12:00")
    assert code == 0, err
    # January's and February's credits expired unused, February's and March's granted.
    assert "1 account changed, 2 plan grants made, 1,000 unused plan credits expired" in out
    assert "15 Mar 2026 12:00 UTC" in out

    db = Database.open(db_url)
    try:
        start = scalar(db, "SELECT period_start FROM accounts WHERE id = :a", a=account_id)
    finally:
        db.close()
    assert str(start).startswith("2026-03-01")

    code, out, _ = run(capsys, "--db", db_url, "roll", "--until", "2026-03-15T12:00")
    assert code == 0 and "0 accounts changed" in out
    code, out, _ = run(capsys, "--db", db_url, "check")
    assert code == 0, out


def test_roll_refuses_a_bad_time(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "--db", db_url, "roll", "--until", "next tuesday")
    assert code == 2
    assert_plain_error(err)
    assert "'next tuesday' is not a date and time" in err


# -- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://clerk:hunter2secret@127.0.0.1:1/credits", "Could not open the database"),
        ("mysql://clerk:hunter2secret@localhost/credits", "Unsupported database kind"),
        ("not a url at all", "is not a database address"),
        ("sqlite:///{tmp}/missing.sqlite3", "There is no database file at"),
    ],
    ids=["unreachable", "unsupported", "junk", "missing-file"],
)
def test_bad_address_is_one_plain_line(
    url: str, expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "--db", url.format(tmp=tmp_path), "check")
    assert code == 2
    assert out == ""
    assert_plain_error(err)
    assert expected in err
    assert "hunter2secret" not in err
    # The details are in the log file, still without the password.
    log = (tmp_path / "state" / "credits-desktop" / "log" / "credits-desktop.log").read_text()
    assert "hunter2secret" not in log
    assert not (tmp_path / "missing.sqlite3").exists()


def test_verbose_sends_the_traceback_to_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "-v", "--db", "postgresql://clerk:pw9secret@127.0.0.1:1/x",
                       "check")
    assert code == 2
    assert "Traceback" in err and "pw9secret" not in err


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["no-such-command"]) == 2
    assert main(["db"]) == 2
    assert main(["--help"]) == 0
    capsys.readouterr()


def test_staff_add(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "--db", db_url, "staff", "add", "ada", "Ada Admin", "admin")
    assert code == 0, err
    assert "Added staff member 'ada'" in out

    code, _, err = run(capsys, "--db", db_url, "staff", "add", "sam", "Sam", "support")
    assert code == 2
    assert_plain_error(err)
    assert "Only an admin" in err

    code, out, err = run(capsys, "--db", db_url, "staff", "add", "sam", "Sam Support",
                         "support", "--as", "ada")
    assert code == 0, err
    code, _, err = run(capsys, "--db", db_url, "staff", "add", "fay", "Fay", "finance",
                       "--as", "sam")
    assert code == 2 and "admin" in err


# -- demo -------------------------------------------------------------------------------------


def test_demo_fills_an_empty_database_once(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("credits_desktop.services.demo")

    code, out, err = run(capsys, "--db", db_url, "demo", "--accounts", "5", "--months", "2")
    assert code == 0, err
    assert "Demo data written" in out and "charges per second" in out
    assert "5 accounts over 2 months" in err  # the progress report on stderr

    code, out, err = run(capsys, "--db", db_url, "check")
    assert code == 0, out + err
    assert "Checked 5 accounts" in out

    code, _, err = run(capsys, "--db", db_url, "demo", "--accounts", "5", "--months", "2")
    assert code == 2
    assert_plain_error(err)
    assert "already holds 5 accounts" in err


def test_demo_migrates_a_new_sqlite_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("credits_desktop.services.demo")
    url = f"sqlite:///{tmp_path / 'new' / 'demo.sqlite3'}"

    code, _, err = run(capsys, "--db", url, "demo", "--accounts", "3", "--months", "1")
    assert code == 0, err
    code, out, _ = run(capsys, "--db", url, "db", "current")
    assert code == 0 and "up to date" in out


# -- bootstrap --------------------------------------------------------------------------------


def test_resolve_url_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url, is_demo = resolve_url(None)
    assert is_demo
    assert url == f"sqlite:///{tmp_path / 'data' / 'credits-desktop' / 'credits-demo.sqlite3'}"

    monkeypatch.setenv(bootstrap.ENV_VAR, "postgresql://desk@db/credits")
    assert resolve_url(None) == ("postgresql://desk@db/credits", False)
    assert resolve_url("sqlite:///x.sqlite3") == ("sqlite:///x.sqlite3", False)


def test_prepare_migrates_an_empty_shared_database_without_demo_data(blank_url: str) -> None:
    db = prepare_database(blank_url, is_default_demo=False)
    try:
        assert schema_state(db.engine).up_to_date
        assert scalar(db, "SELECT count(*) FROM accounts") == 0
    finally:
        db.close()


def _older_head(monkeypatch: pytest.MonkeyPatch) -> list[Engine]:
    """Make the database's (real, known) revision look older than the application's head
    (there is only one migration so far, so a really older database cannot be made).
    Returns the list of engines that bootstrap upgrades from then on."""
    upgraded: list[Engine] = []

    def state(engine: Engine) -> SchemaState:
        return SchemaState(current=schema_state(engine).current, head="9999_next")

    def upgrade(engine: Engine) -> None:
        upgraded.append(engine)
        real_upgrade(engine)

    monkeypatch.setattr(bootstrap, "schema_state", state)
    monkeypatch.setattr(bootstrap, "upgrade", upgrade)
    return upgraded


def test_outdated_shared_database_is_refused(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    upgraded = _older_head(monkeypatch)
    with pytest.raises(SchemaOutdated) as caught:
        prepare_database(db_url, is_default_demo=False)
    assert caught.value.current == head_revision()
    assert "credits-desktop db upgrade" in caught.value.message
    assert upgraded == []


def test_outdated_demo_database_is_upgraded(monkeypatch: pytest.MonkeyPatch) -> None:
    url, is_demo = resolve_url(None)
    # A demo database that already has its data (so no demo data is generated).
    bootstrap.default_demo_path().parent.mkdir(parents=True)
    seeded = Database.open(url)
    try:
        real_upgrade(seeded.engine)
        seed_world(seeded)
    finally:
        seeded.close()
    upgraded = _older_head(monkeypatch)

    db = prepare_database(url, is_default_demo=is_demo)
    db.close()
    assert len(upgraded) == 1


def test_outdated_shared_database_is_upgraded_when_asked(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the desktop application does once staff have agreed to the upgrade."""
    upgraded = _older_head(monkeypatch)
    db = prepare_database(db_url, is_default_demo=False, upgrade_outdated=True)
    db.close()
    assert len(upgraded) == 1


def test_a_missing_file_is_refused_rather_than_created_when_it_must_exist(
    tmp_path: Path,
) -> None:
    missing = tmp_path / "moved-away.sqlite3"
    with pytest.raises(BootstrapError) as caught:
        prepare_database(f"sqlite:///{missing}", is_default_demo=False, must_exist=True)
    assert caught.value.message == f"There is no database file at {missing}."
    assert not missing.exists()


def test_a_sqlite_uri_address_is_opened_without_making_stray_folders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "shared" / "credits.sqlite3"
    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///file:{path}?mode=rwc&uri=true"
    assert bootstrap.sqlite_path(url) == path
    db = prepare_database(url, is_default_demo=False)
    db.close()
    assert path.is_file()
    # Not a folder named "file:" beside wherever the application was started.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shared"]


def test_newer_database_is_refused_even_for_the_demo(future_url: str) -> None:
    for is_demo in (False, True):
        with pytest.raises(SchemaTooNew) as caught:
            prepare_database(future_url, is_default_demo=is_demo)
        assert "newer than this version" in caught.value.message


def test_foreign_tables_are_not_taken_for_an_empty_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'other.sqlite3'}"
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE invoices (id INTEGER PRIMARY KEY)"))
    finally:
        engine.dispose()
    with pytest.raises(BootstrapError) as caught:
        prepare_database(url, is_default_demo=False)
    assert "no Credits Desk schema" in caught.value.message


def test_default_demo_database_is_created_and_filled(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    pytest.importorskip("credits_desktop.services.demo")
    monkeypatch.setattr(bootstrap, "DEMO_ACCOUNTS", 3)
    monkeypatch.setattr(bootstrap, "DEMO_MONTHS", 1)
    url, is_demo = resolve_url(None)
    stages: list[str] = []

    db = prepare_database(url, is_default_demo=is_demo,
                          progress=lambda stage, done, total: stages.append(stage))
    try:
        assert scalar(db, "SELECT count(*) FROM accounts") == 3
    finally:
        db.close()
    assert stages
    # Opening it again keeps the data as it is.
    again = prepare_database(url, is_default_demo=is_demo)
    try:
        assert scalar(again, "SELECT count(*) FROM accounts") == 3
    finally:
        again.close()


# -- python -m ----------------------------------------------------------------------------------


def test_python_m_runs_the_command_line(tmp_path: Path) -> None:
    path = tmp_path / "run.sqlite3"
    path.touch()
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state")}
    done = subprocess.run(
        [sys.executable, "-m", "credits_desktop", "--db", f"sqlite:///{path}", "db", "current"],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )
    assert done.returncode == 1, done.stderr
    assert "Latest revision" in done.stdout
    assert "no schema yet" in done.stdout
    assert (tmp_path / "state" / "credits-desktop" / "log" / "credits-desktop.log").exists()


def test_no_command_opens_the_desktop_app(tmp_path: Path) -> None:
    """Without a command the GUI starts (headless here, and told to quit once shown)."""
    url = f"sqlite:///{tmp_path / 'gui.sqlite3'}"
    db = Database.open(url)
    try:
        real_upgrade(db.engine)
        seed_world(db)  # has the admin 'ada'
    finally:
        db.close()
    env = {
        **os.environ,
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "QT_QPA_PLATFORM": "offscreen",
        "CREDITS_DESK_QUIT_AFTER_START": "1",
        "CREDITS_DESK_USER": "ada",
    }
    done = subprocess.run(
        [sys.executable, "-m", "credits_desktop", "--db", url],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr


def test_sqlite_gets_search_statistics_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'stats.db'}"
    fresh = Database.open(url)
    real_upgrade(fresh.engine)
    fresh.close()
    with open_world(url) as world:
        def stats() -> list[tuple[object, ...]]:
            return world.db.read(lambda s: [tuple(r) for r in s.execute(text(
                "SELECT tbl, idx FROM sqlite_stat1 WHERE tbl = 'accounts' ORDER BY idx"))])

        bootstrap.ensure_search_statistics(world.db.engine)
        first = stats()
        # One row per index of the accounts table: the planner now knows their shape.
        assert len(first) >= 2
        world.db.write(lambda s: s.execute(text(
            "UPDATE sqlite_stat1 SET stat = '7 1' WHERE tbl = 'accounts'")))
        bootstrap.ensure_search_statistics(world.db.engine)
        # Known statistics are left alone (start-up stays quick on a big file).
        assert {r[0] for r in stats()} == {"accounts"}
        assert world.db.read(lambda s: s.execute(text(
            "SELECT count(*) FROM sqlite_stat1 WHERE stat = '7 1'")).scalar()) == len(first)


# -- the self-test ------------------------------------------------------------------------------

SELF_TEST_CHECKS = ("version", "migrations", "demo data", "postgresql driver", "keyring",
                    "charts", "spreadsheets", "views", "main window", "icon")


def test_self_test_from_source_passes_and_leaves_nothing_behind(tmp_path: Path) -> None:
    """The whole self-test, as `.ci/run` runs it on the bundle: a line per check, status 0,
    and the temporary folder gone."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {key: value for key, value in os.environ.items()
           if key not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM", bootstrap.ENV_VAR)}
    env |= {"XDG_STATE_HOME": str(tmp_path / "state"), "XDG_DATA_HOME": str(tmp_path / "data"),
            "TMPDIR": str(scratch)}
    done = subprocess.run(
        [sys.executable, "-m", "credits_desktop", "--self-test"],
        capture_output=True, text=True, env=env, timeout=180, check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("Credits Desk ") and "the source in" in lines[0]
    assert [line.split(":")[0] for line in lines[1:-1]] == [
        f"ok    {name}" for name in SELF_TEST_CHECKS
    ], done.stdout
    assert "signed in as dana (support)" in done.stdout
    assert "(offscreen)" in done.stdout  # no display: Qt was told to draw off screen
    assert lines[-1].startswith(f"Self-test passed: {len(SELF_TEST_CHECKS)} checks")
    assert "Traceback" not in done.stderr
    assert list(scratch.iterdir()) == []
    # The user's own demo database is not made or touched.
    assert not (tmp_path / "data").exists()


def test_a_failing_self_test_check_is_reported_and_the_others_still_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    """One broken check: a plain FAIL line, the rest still run, status 1, nothing left."""
    from credits_desktop import cli

    def broken(state: cli.SelfTestState) -> str:
        from importlib import import_module

        import_module("keyring.backends.not_there")  # as if the bundle had left it out
        return "unreachable"

    def stand_in(state: cli.SelfTestState) -> str:
        assert state.folder.is_dir()
        return "stood in"

    monkeypatch.setattr(cli, "_check_keyring", broken)
    # The Qt checks run in the subprocess test above; here they would share this process.
    monkeypatch.setattr(cli, "_check_main_window", stand_in)
    monkeypatch.setattr(cli, "_check_icon", stand_in)
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    code, out, err = run(capsys, "--self-test")
    assert code == 1
    assert "FAIL  keyring: ModuleNotFoundError: No module named 'keyring.backends.not_there'" \
        in out.splitlines()
    assert "ok    migrations:" in out and "ok    main window: stood in" in out
    assert_plain_error(err)
    assert "the self-test failed (keyring)" in err
    assert list(tmp_path.glob("credits-desk-self-test-*")) == []


def test_self_test_takes_no_command_or_database(capsys: pytest.CaptureFixture[str]) -> None:
    code, _out, err = run(capsys, "--self-test", "check")
    assert code == 2
    assert_plain_error(err)
    code, _out, err = run(capsys, "--db", "sqlite:///elsewhere.sqlite3", "--self-test")
    assert code == 2
    assert_plain_error(err)
    assert "temporary database" in err
    code, out, _err = run(capsys, "--help")
    assert code == 0 and "--self-test" in out
