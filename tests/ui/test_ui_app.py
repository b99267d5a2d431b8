"""Starting the application: choosing the database (given, last connection, demo),
progress, schema upgrades, sign-in, main window, switching databases, errors.

Saved connections live in an ini file under ``tmp_path`` and passwords in an
in-memory keyring, and the user's data folder (the demo database) points into
``tmp_path``: nothing touches the real user's settings, keyring or demo database.

There is only one schema revision so far, so an honestly *older* database is made
by giving the application a newer one: :func:`next_revision` copies the migrations
into ``tmp_path`` with one more revision after the real head, and points the
application at the copy. A database migrated to the real head is then one revision
behind, and upgrading it runs that revision for real.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import keyring
import pytest
import shiboken6
from conftest import migrated_pg_database, only_on
from PySide6.QtCore import QSettings, QSize, Qt
from PySide6.QtGui import QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication, QDialog, QMessageBox, QPushButton
from pytestqt.qtbot import QtBot
from services.factories import World, seed_world
from sqlalchemy import Engine, inspect, text
from sqlalchemy.engine import make_url

from credits_desktop import bootstrap
from credits_desktop.bootstrap import ASK_AN_ADMINISTRATOR, prepare_database
from credits_desktop.services.accounts import create_staff
from credits_desktop.store import schema
from credits_desktop.store.database import Database
from credits_desktop.store.schema import head_revision, schema_state
from credits_desktop.ui import theme
from credits_desktop.ui.app import (
    EXIT_ERROR,
    EXIT_OK,
    ICON_PATH,
    QUIT_AFTER_START_ENV,
    USER_ENV,
    Launcher,
    app_icon,
    configure_application,
    run_gui,
    upgrade_question_text,
    user_settings,
)
from credits_desktop.ui.connection_dialog import ConnectionDialog
from credits_desktop.ui.main_window import MainWindow
from credits_desktop.ui.profiles import ConnectionProfile, ProfileStore
from credits_desktop.ui.remembered import remembered_open_accounts
from credits_desktop.ui.workers import ProgressFn

from .test_ui_connection_dialog import MemoryKeyring

UNUSABLE_URL = "mysql://someone@127.0.0.1/credits"
SECRET = "kr-s3cret@/x"
NEXT_REVISION = "9999_gui_test"
PROBE_TABLE = "gui_upgrade_probe"


@pytest.fixture(autouse=True)
def user_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo database inside the test's directory, and no CREDITS_DESK_DB."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.delenv(bootstrap.ENV_VAR, raising=False)


@pytest.fixture(autouse=True)
def restored_look(qapp: QApplication) -> Iterator[None]:
    """run_gui puts the application's style and palette on the shared test application:
    put back what the other tests expect."""
    style, palette = qapp.style().name(), qapp.palette()
    yield
    if qapp.style().name() != style:
        qapp.setStyle(style)
    qapp.setPalette(palette)


@pytest.fixture
def memory_keyring() -> Iterator[MemoryKeyring]:
    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    try:
        yield backend
    finally:
        keyring.set_keyring(previous)


@pytest.fixture
def store(tmp_path: Path, memory_keyring: MemoryKeyring) -> ProfileStore:
    settings = QSettings(str(tmp_path / "credits-desktop.ini"), QSettings.Format.IniFormat)
    return ProfileStore(settings)


def profile_for(url: str, name: str) -> ConnectionProfile:
    """The saved connection that opens ``url``."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return ConnectionProfile(name=name, path=str(parsed.database))
    return ConnectionProfile(
        name=name, kind="postgresql", host=str(parsed.host or "127.0.0.1"),
        port=parsed.port or 5432, database=str(parsed.database),
        user=str(parsed.username), sslmode="disable",
    )


def unreachable_profile(name: str = "Office") -> ConnectionProfile:
    # Nothing listens on port 1.
    return ConnectionProfile(name=name, kind="postgresql", host="127.0.0.1", port=1,
                             database="credits", user="dana", sslmode="disable")


def with_login(db: Database) -> str:
    """Add staff to ``db`` (see seed_world); the username the launcher signs in with:
    on PostgreSQL the database login, made a staff member here."""
    world = seed_world(db)
    if db.is_postgresql:
        login = str(db.engine.url.username)
        create_staff(db, world.admin, username=login, display_name="Dana Whitfield",
                     role="support")
        return login
    return "sam"


@pytest.fixture
def other_url(db_url: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A second database of ``db_url``'s kind, migrated to the real head, with staff."""
    with ExitStack() as stack:
        if db_url.startswith("sqlite"):
            template: Path = request.getfixturevalue("sqlite_template")
            path = tmp_path / "other.sqlite3"
            shutil.copyfile(template, path)
            url = f"sqlite:///{path}"
        else:
            admin: Engine = request.getfixturevalue("pg_admin")
            url = stack.enter_context(migrated_pg_database(admin, "_other"))
        db = Database.open(url)
        try:
            with_login(db)
        finally:
            db.close()
        yield url


@pytest.fixture
def next_revision(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """Make the application one schema revision newer than the real one (see the
    module docstring); returns the new head revision."""
    real_head = head_revision()
    copy = tmp_path / "migrations"
    shutil.copytree(schema.MIGRATIONS, copy, ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "versions" / f"{NEXT_REVISION}.py").write_text(
        f'''"""A revision after the real head, for the GUI upgrade tests."""

import sqlalchemy as sa
from alembic import op

revision = "{NEXT_REVISION}"
down_revision = "{real_head}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("{PROBE_TABLE}", sa.Column("id", sa.Integer(), primary_key=True))


def downgrade() -> None:
    op.drop_table("{PROBE_TABLE}")
''',
        encoding="utf-8",
    )
    monkeypatch.setattr(schema, "MIGRATIONS", copy)
    assert head_revision() == NEXT_REVISION
    return NEXT_REVISION


def revision_of(url: str) -> str | None:
    db = Database.open(url)
    try:
        return schema_state(db.engine).current
    finally:
        db.close()


def has_table(url: str, name: str) -> bool:
    db = Database.open(url)
    try:
        return name in inspect(db.engine).get_table_names()
    finally:
        db.close()


def set_revision(url: str, revision: str) -> None:
    db = Database.open(url)
    try:
        with db.engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = :r"), {"r": revision})
    finally:
        db.close()


@pytest.fixture
def launchers() -> Iterator[list[Launcher]]:
    """Launchers made by a test, shut down after it (workers, window, database)."""
    made: list[Launcher] = []
    yield made
    for launcher in made:
        launcher.shutdown()


def launch(
    launchers: list[Launcher], url: str, *, demo: bool = False, **options: object
) -> Launcher:
    launcher = Launcher(url, demo, **options)  # type: ignore[arg-type]
    launchers.append(launcher)
    return launcher


def staff_login(world: World) -> str:
    """The username the launcher signs in with: the database login on PostgreSQL."""
    if world.db.is_postgresql:
        login = str(world.db.engine.url.username)
        create_staff(world.db, world.admin, username=login, display_name="Dana Whitfield",
                     role="support")
        return login
    return "sam"


def test_the_launcher_opens_the_database_signs_in_and_shows_the_main_window(
    qtbot: QtBot, world: World, db_url: str, launchers: list[Launcher]
) -> None:
    username = staff_login(world)
    launcher = launch(launchers, db_url, username=username)
    with qtbot.waitSignal(launcher.window_shown, timeout=20_000) as shown:
        launcher.start()
    window = shown.args[0]
    assert isinstance(window, MainWindow) and window.isVisible()
    assert window.actor.username == username
    qtbot.waitUntil(lambda: not window.model.is_loading)
    assert window.model.rowCount() == 1
    assert launcher.db is not None
    assert window.database_label.toolTip() == f"Database: {launcher.db.display_url()}"


@only_on("sqlite")
def test_on_sqlite_the_staff_member_signs_in_with_the_dialog(
    qtbot: QtBot, world: World, db_url: str, launchers: list[Launcher]
) -> None:
    launcher = launch(launchers, db_url)
    launcher.start()
    qtbot.waitUntil(lambda: launcher.sign_in_dialog is not None
                    and launcher.sign_in_dialog.staff_list.count() > 0)
    dialog = launcher.sign_in_dialog
    assert dialog is not None and dialog.isVisible()
    assert dialog.select_username("fay")
    with qtbot.waitSignal(launcher.window_shown) as shown:
        dialog.accept()
    assert shown.args[0].actor == world.finance


@only_on("sqlite")
def test_cancelling_the_sign_in_ends_the_application_quietly(
    qtbot: QtBot, world: World, db_url: str, launchers: list[Launcher]
) -> None:
    launcher = launch(launchers, db_url)
    launcher.start()
    qtbot.waitUntil(lambda: launcher.sign_in_dialog is not None)
    with qtbot.waitSignal(launcher.finished) as finished:
        launcher.sign_in_dialog.reject()  # type: ignore[union-attr]
    assert finished.args == [EXIT_OK]
    assert launcher.window is None


def test_progress_of_a_long_preparation_is_shown_while_the_window_stays_responsive(
    qtbot: QtBot, world: World, db_url: str, launchers: list[Launcher]
) -> None:
    release = threading.Event()

    def slow_prepare(url: str, *, progress: ProgressFn, **options: bool) -> Database:
        progress("Writing demo accounts", 120, 2000)
        assert release.wait(10)
        return prepare_database(url, progress=progress, **options)

    launcher = launch(launchers, db_url, username=staff_login(world), prepare=slow_prepare)
    launcher.start()
    # The GUI thread keeps turning (waitUntil runs its event loop) and shows progress.
    qtbot.waitUntil(lambda: launcher.progress is not None
                    and launcher.progress.labelText().endswith(
                        "\nWriting demo accounts: 120 of 2,000"))
    progress = launcher.progress
    assert progress is not None
    assert (progress.value(), progress.maximum()) == (120, 2000)
    # Opening takes a while: the dialog shows itself.
    qtbot.waitUntil(progress.isVisible)
    with qtbot.waitSignal(launcher.window_shown, timeout=20_000):
        release.set()
    assert launcher.progress is None


def test_a_database_that_cannot_be_opened_is_explained_and_ends_with_status_2(
    qtbot: QtBot, launchers: list[Launcher]
) -> None:
    launcher = launch(launchers, UNUSABLE_URL)
    launcher.start()
    qtbot.waitUntil(lambda: launcher.message_box is not None
                    and launcher.message_box.isVisible())
    box = launcher.message_box
    assert box is not None
    assert box.text() == "Unsupported database kind 'mysql': use SQLite or PostgreSQL."
    with qtbot.waitSignal(launcher.finished) as finished:
        box.done(QDialog.DialogCode.Rejected)
    assert finished.args == [EXIT_ERROR]


def test_run_gui_unattended_starts_and_quits(
    qtbot: QtBot, world: World, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(QUIT_AFTER_START_ENV, "1")
    monkeypatch.setenv(USER_ENV, staff_login(world))
    app = QApplication.instance()
    assert isinstance(app, QApplication)
    quit_on_close = app.quitOnLastWindowClosed()
    assert run_gui(db_url, False) == EXIT_OK
    assert app.applicationName() == "Credits Desk"
    assert app.quitOnLastWindowClosed() == quit_on_close


def test_run_gui_unattended_reports_a_failure_on_stderr(
    qtbot: QtBot, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(QUIT_AFTER_START_ENV, "1")
    assert run_gui(UNUSABLE_URL, False) == EXIT_ERROR
    err = capsys.readouterr().err
    assert "use SQLite or PostgreSQL" in err and "Traceback" not in err


def test_the_application_icon_is_shipped(qtbot: QtBot) -> None:
    assert ICON_PATH.is_file()
    assert not app_icon().isNull()
    assert not app_icon().pixmap(32, 32).isNull()


def test_the_icon_is_drawn_sharp_on_a_high_dpi_screen(qtbot: QtBot) -> None:
    # SVG: drawn at the pixels asked for, not a small picture scaled up.
    assert ICON_PATH.suffix == ".svg"
    pixmap = app_icon().pixmap(QSize(32, 32), 2.0)
    assert pixmap.devicePixelRatio() == 2.0
    assert (pixmap.width(), pixmap.height()) == (64, 64)
    image = pixmap.toImage()
    # Drawn at 64 x 64: more distinct colours than a 32 x 32 picture scaled up has.
    small = app_icon().pixmap(QSize(32, 32), 1.0).toImage()
    assert (small.width(), small.height()) == (32, 32)
    colours = {image.pixel(x, y) for x in range(64) for y in range(64)}
    assert len(colours) > len({small.pixel(x, y) for x in range(32) for y in range(32)})
    # Scale factors such as 1.5 are used as they are (run_gui sets it for a new
    # application; the tests' application has the same, Qt 6's default).
    assert QGuiApplication.highDpiScaleFactorRoundingPolicy() == \
        Qt.HighDpiScaleFactorRoundingPolicy.PassThrough


def test_configure_application_names_it_and_puts_on_the_theme(qapp: QApplication) -> None:
    configure_application(qapp)
    assert qapp.organizationName() == "Credits Desk"
    assert qapp.applicationName() == "Credits Desk"
    assert qapp.style().name().lower() == "fusion"
    scheme = theme.system_scheme()
    expected = theme.palette(scheme).color(QPalette.ColorRole.Window)
    assert qapp.palette().color(QPalette.ColorRole.Window) == expected
    settings = user_settings()
    assert (settings.organizationName(), settings.applicationName()) == (
        "Credits Desk", "credits-desktop")


def test_the_launcher_gives_its_windows_the_settings_to_remember_in(
    qtbot: QtBot, world: World, db_url: str, launchers: list[Launcher], tmp_path: Path
) -> None:
    path = tmp_path / "layout.ini"
    settings = QSettings(str(path), QSettings.Format.IniFormat)
    launcher = launch(launchers, db_url, username=staff_login(world), settings=settings)
    window = start_on(qtbot, launcher)
    detail = window.open_account_id(world.account_id)
    qtbot.waitUntil(lambda: detail.summary is not None and not detail.is_loading)
    assert launcher.db is not None
    url = launcher.db.display_url()
    launcher.shutdown()
    launchers.remove(launcher)
    again = QSettings(str(path), QSettings.Format.IniFormat)
    assert remembered_open_accounts(again, url).ids == (world.account_id,)


# -- which database: the last connection, the Connect dialog, the demo -------------------


def wait_for_message(qtbot: QtBot, launcher: Launcher) -> QMessageBox:
    qtbot.waitUntil(lambda: launcher.message_box is not None
                    and launcher.message_box.isVisible(), timeout=20_000)
    assert launcher.message_box is not None
    return launcher.message_box


def wait_for_upgrade_question(qtbot: QtBot, launcher: Launcher) -> QMessageBox:
    qtbot.waitUntil(lambda: launcher.upgrade_question is not None
                    and launcher.upgrade_question.isVisible(), timeout=20_000)
    assert launcher.upgrade_question is not None
    return launcher.upgrade_question


def wait_for_connect_dialog(qtbot: QtBot, launcher: Launcher) -> ConnectionDialog:
    qtbot.waitUntil(lambda: launcher.connection_dialog is not None
                    and launcher.connection_dialog.isVisible(), timeout=20_000)
    assert launcher.connection_dialog is not None
    return launcher.connection_dialog


def start_on(qtbot: QtBot, launcher: Launcher) -> MainWindow:
    with qtbot.waitSignal(launcher.window_shown, timeout=20_000) as shown:
        launcher.start()
    window = shown.args[0]
    assert isinstance(window, MainWindow)
    qtbot.waitUntil(lambda: not window.model.is_loading)
    return window


def test_the_last_connection_is_reopened_with_its_password_from_the_keyring(
    qtbot: QtBot, world: World, db_url: str, store: ProfileStore, launchers: list[Launcher]
) -> None:
    username = staff_login(world)
    profile = profile_for(db_url, "Office")
    store.save(profile)
    store.set_last_used("Office")
    if profile.is_postgresql:
        assert store.store_password(profile, SECRET)
    # Nothing given on the command line: the launcher is told of the demo database.
    launcher = launch(launchers, bootstrap.demo_url(), demo=True, username=username,
                      store=store)
    window = start_on(qtbot, launcher)
    assert launcher.db is not None
    opened = launcher.db.engine.url
    assert opened.database == make_url(db_url).database
    if profile.is_postgresql:
        # The test server trusts local logins; what shows the keyring was read is the
        # password in the address the application opened.
        assert opened.password == SECRET
    assert window.actor.username == username
    assert window.model.rowCount() == 1
    assert not bootstrap.default_demo_path().exists()


def test_without_a_last_connection_the_demo_database_is_opened(
    qtbot: QtBot, store: ProfileStore, launchers: list[Launcher],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(bootstrap, "DEMO_ACCOUNTS", 3)
    monkeypatch.setattr(bootstrap, "DEMO_MONTHS", 1)
    store.save(unreachable_profile())  # saved, but not the last one used
    launcher = launch(launchers, bootstrap.demo_url(), demo=True, username="sam",
                      store=store)
    window = start_on(qtbot, launcher)
    assert launcher.db is not None
    assert launcher.db.engine.url.database == str(bootstrap.default_demo_path())
    assert window.model.rowCount() == 3


def test_a_last_connection_that_cannot_be_opened_brings_up_the_connect_dialog(
    qtbot: QtBot, store: ProfileStore, launchers: list[Launcher]
) -> None:
    profile = unreachable_profile()
    store.save(profile)
    store.set_last_used(profile.name)
    assert store.store_password(profile, SECRET)
    launcher = launch(launchers, bootstrap.demo_url(), demo=True, store=store)
    launcher.start()
    dialog = wait_for_connect_dialog(qtbot, launcher)
    # The connection, its password, and why it could not be opened.
    assert dialog.profile() == profile
    assert dialog.password_edit.text() == SECRET
    message = dialog.status.text()
    assert message.startswith("Could not open the database at postgresql+psycopg://dana:")
    assert "127.0.0.1:1" in message
    assert SECRET not in message and "Traceback" not in message
    assert launcher.window is None and launcher.message_box is None
    # Cancelling ends the application quietly; the demo database was never made.
    with qtbot.waitSignal(launcher.finished) as finished:
        dialog.reject()
    assert finished.args == [EXIT_OK]
    assert not bootstrap.default_demo_path().exists()


def test_the_connect_dialog_goes_back_to_the_demo_database(
    qtbot: QtBot, store: ProfileStore, launchers: list[Launcher],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(bootstrap, "DEMO_ACCOUNTS", 3)
    monkeypatch.setattr(bootstrap, "DEMO_MONTHS", 1)
    profile = unreachable_profile()
    store.save(profile)
    store.set_last_used(profile.name)
    launcher = launch(launchers, bootstrap.demo_url(), demo=True, username="sam",
                      store=store)
    launcher.start()
    dialog = wait_for_connect_dialog(qtbot, launcher)
    with qtbot.waitSignal(launcher.window_shown, timeout=60_000) as shown:
        qtbot.mouseClick(dialog.demo_button, Qt.MouseButton.LeftButton)
    assert launcher.db is not None
    assert launcher.db.engine.url.database == str(bootstrap.default_demo_path())
    assert shown.args[0].actor.username == "sam"
    # The next start opens the demo database too; the saved connection stays saved.
    assert store.last_used() is None
    assert store.profiles() == [profile]


# -- File > Connect to another database… ----------------------------------------------------


def test_connecting_to_another_database_replaces_the_window(
    qtbot: QtBot, world: World, db_url: str, other_url: str, store: ProfileStore,
    launchers: list[Launcher],
) -> None:
    store.save(profile_for(other_url, "Other"))
    launcher = launch(launchers, db_url, username=staff_login(world), store=store)
    old = start_on(qtbot, launcher)
    old_db = launcher.db
    old.connect_action.trigger()
    dialog = wait_for_connect_dialog(qtbot, launcher)
    assert dialog.parent() is old
    assert dialog.select_profile("Other")
    with qtbot.waitSignal(launcher.window_shown, timeout=20_000) as shown:
        qtbot.mouseClick(dialog.open_button, Qt.MouseButton.LeftButton)
    new = shown.args[0]
    assert isinstance(new, MainWindow)
    assert new is launcher.window and new is not old and new.isVisible()
    assert launcher.db is not None and launcher.db is not old_db
    assert launcher.db.engine.url.database == make_url(other_url).database
    assert new.database_label.toolTip() == f"Database: {launcher.db.display_url()}"
    qtbot.waitUntil(lambda: not new.model.is_loading)
    assert new.model.rowCount() == 1  # the other database's own account
    # The old window closes and, once its last query has returned, is gone for good.
    qtbot.waitUntil(lambda: not shiboken6.isValid(old))
    assert store.last_used() == "Other"
    assert not launcher.busy


def test_a_switch_that_fails_keeps_the_old_window_and_says_why(
    qtbot: QtBot, world: World, db_url: str, store: ProfileStore, launchers: list[Launcher]
) -> None:
    store.save(unreachable_profile())
    launcher = launch(launchers, db_url, username=staff_login(world), store=store)
    ended: list[int] = []
    launcher.finished.connect(ended.append)
    old = start_on(qtbot, launcher)
    old_db = launcher.db
    old.connect_action.trigger()
    dialog = wait_for_connect_dialog(qtbot, launcher)
    assert dialog.select_profile("Office")
    qtbot.mouseClick(dialog.open_button, Qt.MouseButton.LeftButton)
    box = wait_for_message(qtbot, launcher)
    assert box.text().startswith("Could not open the database at postgresql+psycopg://")
    assert "Traceback" not in box.text()
    box.done(QMessageBox.StandardButton.Close.value)
    assert launcher.window is old and old.isVisible() and launcher.db is old_db
    assert not launcher.busy and ended == []
    # The old window still works, and can try again.
    old.refresh()
    qtbot.waitUntil(lambda: not old.model.is_loading)
    assert old.model.rowCount() == 1
    old.connect_action.trigger()
    wait_for_connect_dialog(qtbot, launcher).reject()
    assert ended == []


# -- schema revisions ---------------------------------------------------------------------------


def test_an_outdated_database_is_upgraded_only_when_staff_agree(
    qtbot: QtBot, other_url: str, next_revision: str, launchers: list[Launcher]
) -> None:
    before = revision_of(other_url)
    assert before is not None and before != next_revision

    launcher = launch(launchers, other_url, username="sam")
    launcher.start()
    box = wait_for_upgrade_question(qtbot, launcher)
    assert box.text() == (
        f"This database uses an older layout (revision {before}). Upgrade it now? "
        "Make sure you have a backup."
    )
    assert box.text() == upgrade_question_text(before)
    with qtbot.waitSignal(launcher.finished) as finished:
        box.button(QMessageBox.StandardButton.Cancel).click()
    assert finished.args == [EXIT_OK]
    assert launcher.window is None
    assert revision_of(other_url) == before and not has_table(other_url, PROBE_TABLE)

    launcher = launch(launchers, other_url, username="sam")
    launcher.start()
    box = wait_for_upgrade_question(qtbot, launcher)
    upgrade = box.findChild(QPushButton, "upgrade")
    assert isinstance(upgrade, QPushButton) and upgrade.text() == "Upgrade"
    with qtbot.waitSignal(launcher.window_shown, timeout=20_000):
        upgrade.click()
    assert revision_of(other_url) == next_revision
    assert has_table(other_url, PROBE_TABLE)


def test_cancelling_the_upgrade_of_another_database_returns_to_the_old_window(
    qtbot: QtBot, world: World, db_url: str, other_url: str, store: ProfileStore,
    launchers: list[Launcher], request: pytest.FixtureRequest,
) -> None:
    store.save(profile_for(other_url, "Other"))
    launcher = launch(launchers, db_url, username=staff_login(world), store=store)
    ended: list[int] = []
    launcher.finished.connect(ended.append)
    old = start_on(qtbot, launcher)
    # Only now does the application become newer than the other database.
    next_revision = request.getfixturevalue("next_revision")
    old.connect_action.trigger()
    dialog = wait_for_connect_dialog(qtbot, launcher)
    assert dialog.select_profile("Other")
    qtbot.mouseClick(dialog.open_button, Qt.MouseButton.LeftButton)
    box = wait_for_upgrade_question(qtbot, launcher)
    assert box.parent() is old
    box.button(QMessageBox.StandardButton.Cancel).click()
    assert launcher.window is old and old.isVisible()
    assert not launcher.busy and ended == []
    assert revision_of(other_url) != next_revision


@pytest.fixture
def read_only_url(other_url: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """``other_url`` opened so that it can be read but its layout not changed: a
    read-only SQLite file; on PostgreSQL a login that may only read the tables."""
    parsed = make_url(other_url)
    if parsed.get_backend_name() == "sqlite":
        # Tests run as root, for whom file permissions do not stop writing.
        yield f"sqlite:///file:{parsed.database}?mode=ro&uri=true"
        return
    admin: Engine = request.getfixturevalue("pg_admin")
    role = f"credits_test_reader_{os.getpid()}"
    with admin.connect() as conn:
        conn.execute(text(f'DROP ROLE IF EXISTS "{role}"'))
        conn.execute(text(f'CREATE ROLE "{role}" LOGIN'))
    owner = Database.open(other_url)
    try:
        with owner.engine.begin() as conn:
            conn.execute(text(f'GRANT SELECT ON ALL TABLES IN SCHEMA public TO "{role}"'))
        yield parsed.set(username=role, password=None).render_as_string(hide_password=False)
    finally:
        with owner.engine.begin() as conn:
            conn.execute(text(f'DROP OWNED BY "{role}"'))
        owner.close()
        with admin.connect() as conn:
            conn.execute(text(f'DROP ROLE IF EXISTS "{role}"'))


def test_without_the_rights_to_upgrade_staff_are_told_to_ask_an_administrator(
    qtbot: QtBot, launchers: list[Launcher], read_only_url: str, other_url: str,
    next_revision: str,
) -> None:
    launcher = launch(launchers, read_only_url, username="sam")
    launcher.start()
    box = wait_for_upgrade_question(qtbot, launcher)
    upgrade = box.findChild(QPushButton, "upgrade")
    assert isinstance(upgrade, QPushButton)
    upgrade.click()
    message = wait_for_message(qtbot, launcher)
    assert message.text().endswith(
        "Ask a database administrator to upgrade this database (credits-desktop db upgrade).")
    assert message.text().endswith(ASK_AN_ADMINISTRATOR)
    assert "Traceback" not in message.text()
    with qtbot.waitSignal(launcher.finished) as finished:
        message.done(QMessageBox.StandardButton.Close.value)
    assert finished.args == [EXIT_ERROR]
    assert revision_of(other_url) != next_revision


def test_a_database_newer_than_the_application_is_refused(
    qtbot: QtBot, other_url: str, launchers: list[Launcher]
) -> None:
    set_revision(other_url, "ffff_future")
    launcher = launch(launchers, other_url, username="sam")
    launcher.start()
    box = wait_for_message(qtbot, launcher)
    assert box.text() == (
        "This database uses a newer layout (revision ffff_future): it is newer than this "
        f"version of Credits Desk, which knows revision {head_revision()}. Update Credits "
        "Desk to use this database."
    )
    assert launcher.upgrade_question is None
    with qtbot.waitSignal(launcher.finished) as finished:
        box.done(QMessageBox.StandardButton.Close.value)
    assert finished.args == [EXIT_ERROR]
    assert revision_of(other_url) == "ffff_future"


def test_unattended_an_outdated_database_fails_instead_of_asking(
    qtbot: QtBot, other_url: str, next_revision: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(QUIT_AFTER_START_ENV, "1")
    monkeypatch.setenv(USER_ENV, "sam")
    assert run_gui(other_url, False) == EXIT_ERROR
    err = capsys.readouterr().err
    assert f"needs revision {next_revision}" in err
    assert "credits-desktop db upgrade" in err and "Traceback" not in err
    assert revision_of(other_url) != next_revision


def test_the_demo_database_is_upgraded_without_asking(
    qtbot: QtBot, store: ProfileStore, launchers: list[Launcher],
    request: pytest.FixtureRequest,
) -> None:
    bootstrap.default_demo_path().parent.mkdir(parents=True)
    demo = Database.open(bootstrap.demo_url())
    try:
        schema.upgrade(demo.engine)
        seed_world(demo)  # has its data already: no demo data is generated
    finally:
        demo.close()
    next_revision = request.getfixturevalue("next_revision")
    launcher = launch(launchers, bootstrap.demo_url(), demo=True, username="sam",
                      store=store)
    # Were it asked, the question would wait for an answer and no window would come.
    start_on(qtbot, launcher)
    assert revision_of(bootstrap.demo_url()) == next_revision
