"""Starting the desktop application: open the database, sign in, show the main window.

:func:`run_gui` is what ``credits-desktop`` (the CLI) calls. The steps run in a
:class:`Launcher`, one after another, without ever blocking the GUI thread:

1. ``bootstrap.prepare_database`` in a worker, behind a progress dialog (the
   first start creates and fills the demo database, which takes a while; its
   progress reports arrive on the worker thread and are forwarded by signal);
2. the sign-in: the database login on PostgreSQL, the staff picker on SQLite;
3. the main window.

A failure at any step is shown as a plain message and the application ends with
status 2; cancelling the sign-in ends it with 0.

Two environment variables make unattended runs possible (smoke tests in CI,
screenshots); people never need them:

* ``CREDITS_DESK_USER``: on SQLite, sign in as this username without the dialog
  (on PostgreSQL the database login decides, as always);
* ``CREDITS_DESK_QUIT_AFTER_START=1``: quit with status 0 as soon as the main
  window has loaded its first page, and write a failure to stderr instead of
  showing a message box (status 2).

Tests build :class:`~credits_desktop.ui.main_window.MainWindow` directly, or drive
a :class:`Launcher`; neither blocks.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QCloseEvent, QIcon
from PySide6.QtWidgets import QApplication, QDialog, QMessageBox, QProgressDialog

from credits_desktop import __version__
from credits_desktop.bootstrap import prepare_database
from credits_desktop.services.accounts import sign_in
from credits_desktop.services.operations import Actor
from credits_desktop.store.database import Database

from .main_window import MainWindow
from .sign_in import SignInDialog, login_from_database
from .workers import ProgressFn, Worker

__all__ = [
    "APP_NAME",
    "EXIT_ERROR",
    "EXIT_OK",
    "ICON_PATH",
    "Launcher",
    "app_icon",
    "configure_application",
    "run_gui",
]

log = logging.getLogger(__name__)

APP_NAME = "Credits Desk"
ICON_PATH = Path(__file__).resolve().parent / "assets" / "credits-desk.svg"
EXIT_OK, EXIT_ERROR = 0, 2
# How long opening may take before the progress dialog appears.
PROGRESS_DELAY_MS = 400

USER_ENV = "CREDITS_DESK_USER"
QUIT_AFTER_START_ENV = "CREDITS_DESK_QUIT_AFTER_START"

# prepare_database, or a stand-in with its signature.
PrepareFn = Callable[..., Database]


def app_icon() -> QIcon:
    return QIcon(str(ICON_PATH))


def configure_application(app: QApplication) -> None:
    """Name and icon: what the window manager, settings and dialogs show."""
    app.setApplicationName(APP_NAME)
    app.setApplicationVersion(__version__)
    app.setDesktopFileName("credits-desktop")
    app.setWindowIcon(app_icon())


class _ProgressDialog(QProgressDialog):
    """A progress dialog that cannot be dismissed: the work it shows cannot be stopped
    half-way (the demo database is filled in one go)."""

    def reject(self) -> None:  # Esc
        pass

    def closeEvent(self, event: QCloseEvent) -> None:
        event.ignore()


class Launcher(QObject):
    """Runs the start-up steps (see the module docstring); ``finished`` carries the exit
    status once the application should end before or instead of the main window."""

    finished = Signal(int)
    # The main window, shown and loading its first page.
    window_shown = Signal(object)

    def __init__(
        self,
        url: str,
        is_default_demo: bool,
        *,
        username: str | None = None,
        unattended: bool = False,
        prepare: PrepareFn = prepare_database,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._url = url
        self._is_default_demo = is_default_demo
        self._username = username or None
        self._unattended = unattended
        self._prepare = prepare
        self.worker = Worker(self)
        self.db: Database | None = None
        self.progress: QProgressDialog | None = None
        self.sign_in_dialog: SignInDialog | None = None
        self.message_box: QMessageBox | None = None
        self.window: MainWindow | None = None
        self._done = False
        self._headline = ""

    @Slot()
    def start(self) -> None:
        self._headline = (
            "Preparing the demo database (only the first time)…" if self._is_default_demo
            else "Opening the database…"
        )
        progress = _ProgressDialog(self._headline, "", 0, 0)
        progress.setObjectName("startProgress")
        progress.setWindowTitle(APP_NAME)
        progress.setCancelButton(None)  # None removes the button
        progress.setAutoClose(False)
        progress.setAutoReset(False)
        progress.setMinimumWidth(420)
        progress.setWindowFlag(Qt.WindowType.WindowCloseButtonHint, False)
        # Shown by our own timer, only if opening takes a while (a quick open must not
        # flash a dialog): QProgressDialog's own guess needs steady progress reports,
        # which a database migration does not give.
        progress.setMinimumDuration(24 * 3600 * 1000)
        progress.hide()
        self.progress = progress
        QTimer.singleShot(PROGRESS_DELAY_MS, self._show_progress)

        url, demo, prepare = self._url, self._is_default_demo, self._prepare

        def work(report: ProgressFn) -> Database:
            return prepare(url, is_default_demo=demo, progress=report)

        job = self.worker.submit_reporting(work)
        job.progressed.connect(self._progressed)
        job.succeeded.connect(self._database_ready)
        job.failed.connect(self._fail)

    def shutdown(self) -> None:
        """Wait for background work, close the window and the database (after exec)."""
        self.worker.discard_all()
        self.worker.wait_for_done()
        self._close_progress()
        if self.window is not None:
            self.window.worker.discard_all()
            self.window.worker.wait_for_done()
            self.window.close()
        if self.db is not None:
            self.db.close()

    # -- the steps -----------------------------------------------------------------------

    @Slot()
    def _show_progress(self) -> None:
        if self.progress is not None:
            self.progress.show()

    @Slot(str, int, int)
    def _progressed(self, stage: str, done: int, total: int) -> None:
        if self.progress is None:
            return
        if total > 0:
            self.progress.setRange(0, total)
            self.progress.setValue(min(done, total))
            step = f"{stage}: {done:,} of {total:,}"
        else:
            self.progress.setRange(0, 0)
            step = f"{stage}…"
        self.progress.setLabelText(f"{self._headline}\n{step}")

    @Slot(object)
    def _database_ready(self, db: Database) -> None:
        self.db = db
        self._close_progress()
        if db.is_postgresql:
            job = self.worker.submit(lambda: login_from_database(db))
        elif self._username is not None:
            username = self._username
            job = self.worker.submit(lambda: sign_in(db, username))
        else:
            dialog = SignInDialog(db)
            dialog.setWindowIcon(app_icon())
            dialog.finished.connect(self._dialog_closed)
            self.sign_in_dialog = dialog
            dialog.open()
            return
        job.succeeded.connect(self._signed_in)
        job.failed.connect(self._fail)

    @Slot(int)
    def _dialog_closed(self, result: int) -> None:
        dialog = self.sign_in_dialog
        actor = dialog.actor if dialog is not None else None
        if result == QDialog.DialogCode.Accepted and actor is not None:
            self._signed_in(actor)
        else:
            self._finish(EXIT_OK)

    @Slot(object)
    def _signed_in(self, actor: Actor) -> None:
        assert self.db is not None
        log.info("signed in as %s (%s)", actor.username, actor.role.value)
        window = MainWindow(self.db, actor)
        self.window = window
        if self._unattended:
            window.model.page_loaded.connect(lambda: self._finish(EXIT_OK))
            window.model.load_failed.connect(self._fail)
        window.show()
        app = QApplication.instance()
        if isinstance(app, QApplication):
            # From now on closing the main window ends the application.
            app.setQuitOnLastWindowClosed(True)
        self.window_shown.emit(window)

    @Slot(str)
    def _fail(self, message: str) -> None:
        self._close_progress()
        log.info("could not start: %s", message)
        if self._unattended:
            print(f"credits-desktop: {message}", file=sys.stderr)
            self._finish(EXIT_ERROR)
            return
        box = QMessageBox(
            QMessageBox.Icon.Critical, APP_NAME, message, QMessageBox.StandardButton.Close,
            self.window,
        )
        box.setObjectName("startError")
        box.finished.connect(lambda _result: self._finish(EXIT_ERROR))
        self.message_box = box
        box.open()

    def _close_progress(self) -> None:
        if self.progress is not None:
            self.progress.hide()
            self.progress.deleteLater()
            self.progress = None

    def _finish(self, code: int) -> None:
        if not self._done:
            self._done = True
            self.finished.emit(code)


def run_gui(url: str, is_default_demo: bool) -> int:
    """Run the desktop application on ``url`` until it is closed; the exit status."""
    existing = QApplication.instance()
    app = existing if isinstance(existing, QApplication) else QApplication(sys.argv[:1])
    configure_application(app)
    quit_on_close = app.quitOnLastWindowClosed()
    # Between the progress dialog and the main window no window may be open; that
    # must not end the application.
    app.setQuitOnLastWindowClosed(False)
    launcher = Launcher(
        url,
        is_default_demo,
        username=os.environ.get(USER_ENV, "").strip() or None,
        unattended=os.environ.get(QUIT_AFTER_START_ENV) == "1",
    )
    launcher.finished.connect(app.exit)
    QTimer.singleShot(0, launcher.start)
    try:
        return int(app.exec())
    finally:
        launcher.shutdown()
        app.setQuitOnLastWindowClosed(quit_on_close)
