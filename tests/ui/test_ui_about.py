"""Help > About and Help > User guide."""

from __future__ import annotations

import platform
from pathlib import Path

import PySide6
import pytest
import sqlalchemy
from PySide6.QtCore import QObject, QUrl, Slot, qVersion
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QApplication, QMessageBox
from pytestqt.qtbot import QtBot
from services.factories import World

from credits_desktop import __version__
from credits_desktop.domain.permissions import Role
from credits_desktop.services.operations import Actor
from credits_desktop.store.database import Database
from credits_desktop.store.schema import schema_state
from credits_desktop.ui import main_window
from credits_desktop.ui.about_dialog import AboutDialog
from credits_desktop.ui.workers import Worker

from .conftest import MakeWindow


# Raising the About box a second time: the offscreen platform cannot, and says so.
@pytest.mark.qt_log_ignore("This plugin does not support raise")
def test_about_names_the_version_the_database_and_what_it_runs_on(
    qtbot: QtBot, world: World, make_window: MakeWindow
) -> None:
    window = make_window()
    window.show()
    window.about_action.trigger()
    about = window.about_dialog
    assert isinstance(about, AboutDialog) and about.isVisible()
    # Read off the GUI thread, by the window's worker.
    qtbot.waitUntil(lambda: not about.loading)
    revision = schema_state(world.db.engine).current
    assert revision and about.revision.text() == revision
    lines = about.support_text().splitlines()
    assert lines == [
        f"Credits Desk {__version__}",
        f"Database: {world.db.display_url()}",
        f"Schema revision: {revision}",
        f"Python: {platform.python_version()}",
        f"Qt: {qVersion()}",
        f"PySide6: {PySide6.__version__}",
        f"SQLAlchemy: {sqlalchemy.__version__}",
        lines[-1],
    ]
    assert lines[-1].startswith("Operating system: ")
    # "Copy" puts exactly those lines on the clipboard, for a support ticket.
    QApplication.clipboard().clear()
    qtbot.mouseClick(about.copy_button, PySide6.QtCore.Qt.MouseButton.LeftButton)
    assert QApplication.clipboard().text() == about.support_text()
    assert about.copied.text()
    # Help > About again raises the one open.
    assert window.open_about() is about
    about.reject()
    qtbot.waitUntil(lambda: window.about_dialog is None)
    window.worker.wait_for_done()


def test_about_never_shows_a_password_and_survives_a_database_that_is_away(
    qtbot: QtBot
) -> None:
    # Nothing listens at this address: the revision cannot be read.
    db = Database.open("postgresql://staff:s3cret-pw@127.0.0.1:1/credits")
    worker = Worker()
    try:
        about = AboutDialog(db, worker)
        qtbot.addWidget(about)
        qtbot.waitUntil(lambda: not about.loading, timeout=20_000)
        text = about.support_text()
        assert "s3cret-pw" not in text and "***" in about.database.text()
        assert about.revision.text().startswith("could not be read: ")
        assert "Traceback" not in about.revision.text()
    finally:
        worker.wait_for_done()
        db.close()


def test_a_revision_known_already_is_not_read_again(qtbot: QtBot, world: World) -> None:
    class NoWork(Worker):
        def submit(self, work: object) -> object:  # type: ignore[override]
            raise AssertionError("nothing should be read")

    about = AboutDialog(world.db, NoWork(), revision="0007_example")
    qtbot.addWidget(about)
    assert not about.loading and about.revision.text() == "0007_example"


class UrlCatcher(QObject):
    """Stands in for the desktop's file opener."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[QUrl] = []

    @Slot(QUrl)
    def open(self, url: QUrl) -> None:
        self.urls.append(url)


@pytest.fixture
def opened_files() -> object:
    catcher = UrlCatcher()
    QDesktopServices.setUrlHandler("file", catcher, "open")
    yield catcher
    QDesktopServices.unsetUrlHandler("file")


def test_the_user_guide_opens_from_the_source_tree(
    qtbot: QtBot, make_window: MakeWindow, tmp_path: Path, opened_files: UrlCatcher,
    monkeypatch: pytest.MonkeyPatch
) -> None:
    # The real one: the guide that ships in the repository's docs/ folder.
    assert main_window.USER_GUIDE.parent.name == "docs"
    assert main_window.USER_GUIDE.parent.parent == Path(main_window.__file__).parents[2]
    guide = tmp_path / "docs" / "user-guide.md"
    guide.parent.mkdir()
    guide.write_text("# Credits Desk user guide\n", encoding="utf-8")
    monkeypatch.setattr(main_window, "USER_GUIDE", guide)
    window = make_window()
    window.guide_action.trigger()
    assert [u.toLocalFile() for u in opened_files.urls] == [str(guide)]
    assert window.guide_message is None
    window.worker.wait_for_done()


def test_without_the_guide_staff_are_told_where_it_is(
    qtbot: QtBot, make_window: MakeWindow, tmp_path: Path, opened_files: UrlCatcher,
    monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(main_window, "USER_GUIDE", tmp_path / "missing" / "user-guide.md")
    window = make_window()
    window.show()
    window.guide_action.trigger()
    box = window.guide_message
    assert isinstance(box, QMessageBox) and box.isVisible()
    assert "docs/user-guide.md" in box.text()
    assert opened_files.urls == []
    box.done(0)
    window.worker.wait_for_done()


def test_an_empty_database_has_no_revision_yet(qtbot: QtBot, tmp_path: Path) -> None:
    db = Database.open(f"sqlite:///{tmp_path / 'empty.db'}")
    try:
        window = main_window.MainWindow(db, Actor(7, "sam", "Sam Support", Role.SUPPORT))
        qtbot.addWidget(window, before_close_func=lambda w: w.worker.wait_for_done())
        about = window.open_about()
        qtbot.waitUntil(lambda: not about.loading)
        # An empty database has no revision yet; said so, not left blank.
        assert about.revision.text() == "none (an empty database)"
        window.worker.wait_for_done()
    finally:
        db.close()
