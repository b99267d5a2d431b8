"""Starting the application: database, progress, sign-in, main window, errors."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from conftest import only_on
from PySide6.QtWidgets import QApplication, QDialog
from pytestqt.qtbot import QtBot
from services.factories import World

from credits_desktop.bootstrap import prepare_database
from credits_desktop.services.accounts import create_staff
from credits_desktop.store.database import Database
from credits_desktop.ui.app import (
    EXIT_ERROR,
    EXIT_OK,
    ICON_PATH,
    QUIT_AFTER_START_ENV,
    USER_ENV,
    Launcher,
    app_icon,
    run_gui,
)
from credits_desktop.ui.main_window import MainWindow
from credits_desktop.ui.workers import ProgressFn

UNUSABLE_URL = "mysql://someone@127.0.0.1/credits"


@pytest.fixture
def launchers() -> Iterator[list[Launcher]]:
    """Launchers made by a test, shut down after it (workers, window, database)."""
    made: list[Launcher] = []
    yield made
    for launcher in made:
        launcher.shutdown()


def launch(launchers: list[Launcher], url: str, **options: object) -> Launcher:
    launcher = Launcher(url, False, **options)  # type: ignore[arg-type]
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

    def slow_prepare(url: str, *, is_default_demo: bool, progress: ProgressFn) -> Database:
        progress("Writing demo accounts", 120, 2000)
        assert release.wait(10)
        return prepare_database(url, is_default_demo=is_default_demo, progress=progress)

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
