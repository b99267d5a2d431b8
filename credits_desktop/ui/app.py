"""Starting the desktop application: choose and open the database, sign in, show the
main window; and later, switching the window to another database.

:func:`run_gui` is what ``credits-desktop`` (the CLI) calls. Which database: the
one given by ``--db`` or ``CREDITS_DESK_DB``; else the connection last chosen in the
Connect dialog (its password from the system keyring); else the demo database.
The steps run in a :class:`Launcher`, one after another, without ever blocking the
GUI thread:

1. ``bootstrap.prepare_database`` in a worker, behind a progress dialog (the
   first start creates and fills the demo database, which takes a while; its
   progress reports arrive on the worker thread and are forwarded by signal);
2. a database on an older schema revision: staff are asked whether to upgrade it
   (after making a backup); the upgrade runs in the worker as step 1 did. The demo
   database is upgraded without asking (it belongs to this application alone), and
   a database newer than the application is refused;
3. the sign-in: the database login on PostgreSQL, the staff picker on SQLite;
4. the main window.

At start, a failure is shown as a plain message and the application ends with
status 2; cancelling the sign-in or the upgrade ends it with 0. When the last
connection cannot be opened (the server is down, the keyring had no password or the
server refused the one it had…), the Connect dialog opens instead, showing that
connection and the reason, so staff can fix it or choose another.

File > Connect to another database… (:attr:`MainWindow.connect_requested`) opens
the Connect dialog and runs the same steps for the chosen database; the new window
replaces the old one only once it is ready (the old window and its database are
closed after it), and a failure leaves the old window as it was, with a message.

Two environment variables make unattended runs possible (smoke tests in CI,
screenshots); people never need them:

* ``CREDITS_DESK_USER``: on SQLite, sign in as this username without the dialog
  (on PostgreSQL the database login decides, as always);
* ``CREDITS_DESK_QUIT_AFTER_START=1``: quit with status 0 as soon as the main
  window has loaded its first page, and write a failure (an outdated schema too,
  rather than asking) to stderr instead of showing a message box (status 2).

The application's look and memory: :func:`configure_application` names it (the
settings file is the one of the saved connections), puts on the Fusion style with
the light or dark palette the system uses and follows it when it changes
(:mod:`theme`). :func:`run_gui` asks Qt for unrounded scale factors before the
``QApplication`` exists (crisp at 125 % and 150 %; the icons are SVG), installs the
translations, and gives the main window the user's settings so that its layout and
open accounts come back (:mod:`remembered`); unattended runs neither read nor write
them.

Tests build :class:`~credits_desktop.ui.main_window.MainWindow` directly, or drive
a :class:`Launcher`; neither blocks.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QObject, QSettings, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QCloseEvent, QGuiApplication, QIcon
from PySide6.QtWidgets import QApplication, QDialog, QMessageBox, QProgressDialog, QWidget

from credits_desktop import __version__
from credits_desktop.bootstrap import SchemaOutdated, demo_url, prepare_database
from credits_desktop.services.accounts import sign_in
from credits_desktop.services.operations import Actor
from credits_desktop.store.database import Database

from . import formatting as fmt
from .connection_dialog import ConnectionDialog
from .error_report import install_excepthook
from .i18n import install_translations
from .main_window import MainWindow
from .profiles import SETTINGS_APPLICATION, SETTINGS_ORGANISATION, ProfileStore, to_url
from .sign_in import SignInDialog, login_from_database
from .theme import apply_theme, follow_system
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
    "upgrade_question_text",
    "user_settings",
]

log = logging.getLogger(__name__)

APP_NAME = "Credits Desk"
ICON_PATH = Path(__file__).resolve().parent / "assets" / "credits-desk.svg"
EXIT_OK, EXIT_ERROR = 0, 2
# How long opening may take before the progress dialog appears.
PROGRESS_DELAY_MS = 400
# How often a replaced window is looked at until its last query has returned.
RETIRE_POLL_MS = 50

USER_ENV = "CREDITS_DESK_USER"
QUIT_AFTER_START_ENV = "CREDITS_DESK_QUIT_AFTER_START"

# prepare_database, or a stand-in with its signature.
PrepareFn = Callable[..., Database]


def app_icon() -> QIcon:
    """The application's icon, drawn from SVG at whatever size and scale is asked."""
    return QIcon(str(ICON_PATH))


def configure_application(app: QApplication) -> None:
    """Name, icon and look: what the window manager, settings and dialogs show; the
    light or dark palette follows the system's, also when it changes."""
    app.setOrganizationName(SETTINGS_ORGANISATION)
    app.setApplicationName(APP_NAME)
    app.setApplicationVersion(__version__)
    app.setDesktopFileName("credits-desktop")
    app.setWindowIcon(app_icon())
    apply_theme(app)
    follow_system(app)


def user_settings() -> QSettings:
    """The user's own settings (where the saved connections are too)."""
    return QSettings(SETTINGS_ORGANISATION, SETTINGS_APPLICATION)


def upgrade_question_text(current: str) -> str:
    """What staff are asked about a database on an older schema revision."""
    return QCoreApplication.translate(
        "Launcher",
        "This database uses an older layout (revision {revision}). Upgrade it now? "
        "Make sure you have a backup.").format(revision=current)


class _ProgressDialog(QProgressDialog):
    """A progress dialog that cannot be dismissed: the work it shows cannot be stopped
    half-way (the demo database is filled, or a schema upgraded, in one go)."""

    def reject(self) -> None:  # Esc
        pass

    def closeEvent(self, event: QCloseEvent) -> None:
        event.ignore()


@dataclass
class _Target:
    """A database about to be opened, and where the choice came from."""

    url: str
    is_default_demo: bool
    # The saved profile it came from: at start, a failure opens the Connect dialog on
    # it; a profile's SQLite file must exist (it is not made anew after a typo).
    profile: str | None = None
    # Staff agreed to upgrade its schema.
    upgrade: bool = False


@dataclass(frozen=True)
class _Outdated:
    """The database's schema is older than the application's (from the worker)."""

    current: str
    head: str


class Launcher(QObject):
    """Runs the start-up steps and later switches (see the module docstring).

    ``finished`` carries the exit status once the application should end before or
    instead of the main window. ``window_shown`` carries each main window as it is
    shown: the first, and each one that replaces it after File > Connect to another
    database…. ``store`` holds the saved connections (default: the user's own,
    read only when needed); with ``is_default_demo`` its last connection, if any, is
    opened instead of ``url``. ``settings``, if given, is where the main windows
    remember their layout and open accounts (none: nothing remembered).
    """

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
        store: ProfileStore | None = None,
        settings: QSettings | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._settings = settings
        self._url = url
        self._is_default_demo = is_default_demo
        self._username = username or None
        self._unattended = unattended
        self._prepare = prepare
        self._store = store
        self.worker = Worker(self)
        # The database and window in use (None until the first window is shown).
        self.db: Database | None = None
        self.window: MainWindow | None = None
        # A database being opened, and its Database once prepared (before sign-in).
        self._pending: _Target | None = None
        self._pending_db: Database | None = None
        # Replaced windows whose last queries have not returned yet, with their database.
        self._retired: list[tuple[MainWindow, Database]] = []
        self.progress: QProgressDialog | None = None
        self.sign_in_dialog: SignInDialog | None = None
        self.connection_dialog: ConnectionDialog | None = None
        self.upgrade_question: QMessageBox | None = None
        self.message_box: QMessageBox | None = None
        self._done = False
        self._headline = ""

    @property
    def busy(self) -> bool:
        """Whether a database is being chosen or opened (another switch must wait)."""
        return self._pending is not None or self.connection_dialog is not None

    def profiles(self) -> ProfileStore:
        """The saved connections (the user's own settings unless given)."""
        if self._store is None:
            self._store = ProfileStore()
        return self._store

    @Slot()
    def start(self) -> None:
        """Open the start-up database (``url``, or the last connection)."""
        self._open(self._initial_target())

    @Slot()
    def connect_to_another_database(self) -> None:
        """File > Connect to another database…: the Connect dialog, then the switch."""
        if self.busy or self._done:
            return
        self._ask_for_connection()

    def shutdown(self) -> None:
        """Wait for background work, close the windows and databases (after exec)."""
        # Dialogs closed from here on must not report an ending any more.
        self._done = True
        self.worker.discard_all()
        self.worker.wait_for_done()
        self._close_progress()
        if self.connection_dialog is not None:
            self.connection_dialog.done(QDialog.DialogCode.Rejected)
        if self.sign_in_dialog is not None:
            # Its staff list may still be loading from the database closed next.
            self.sign_in_dialog.worker.discard_all()
            self.sign_in_dialog.worker.wait_for_done()
        self._close_pending_db()
        for window, db in self._retired:
            window.worker.wait_for_done()
            db.close()
        self._retired.clear()
        if self.window is not None:
            self.window.worker.discard_all()
            self.window.worker.wait_for_done()
            self.window.close()
        if self.db is not None:
            self.db.close()

    # -- choosing the database -------------------------------------------------------------

    def _initial_target(self) -> _Target:
        if self._is_default_demo:
            store = self.profiles()
            name = store.last_used()
            profile = store.get(name) if name else None
            if profile is not None:
                # None when the keyring has none (or there is no keyring): the server
                # may not need one (trust, .pgpass); if it does, the refusal opens the
                # Connect dialog on this profile, asking for it.
                password = store.password(profile) if profile.is_postgresql else None
                log.info("reopening the last connection '%s'", profile.name)
                return _Target(to_url(profile, password), False, profile=profile.name)
        return _Target(self._url, self._is_default_demo)

    def _ask_for_connection(self, *, select: str | None = None, message: str = "") -> None:
        parent: QWidget | None = self.window
        dialog = ConnectionDialog(self.profiles(), parent, select=select, message=message)
        dialog.setWindowIcon(app_icon())
        dialog.finished.connect(self._connection_chosen)
        self.connection_dialog = dialog
        dialog.open()

    @Slot(int)
    def _connection_chosen(self, result: int) -> None:
        dialog = self.connection_dialog
        self.connection_dialog = None
        if dialog is None:
            return
        dialog.deleteLater()
        url = dialog.url()
        if result != QDialog.DialogCode.Accepted:
            if self.window is None:
                self._finish(EXIT_OK)
            return
        if dialog.chose_demo:
            self._open(_Target(demo_url(), True))
        elif url is not None:
            self._open(_Target(url, False, profile=dialog.profile().name))

    # -- opening it ------------------------------------------------------------------------

    def _open(self, target: _Target) -> None:
        self._pending = target
        if target.upgrade:
            self._headline = self.tr("Upgrading the database…")
        elif target.is_default_demo:
            self._headline = self.tr("Preparing the demo database (only the first time)…")
        else:
            self._headline = self.tr("Opening the database…")
        self._show_progress_later()

        prepare = self._prepare
        upgrade_outdated = target.upgrade or target.is_default_demo

        def work(report: ProgressFn) -> Database | _Outdated:
            try:
                return prepare(
                    target.url,
                    is_default_demo=target.is_default_demo,
                    upgrade_outdated=upgrade_outdated,
                    must_exist=target.profile is not None,
                    progress=report,
                )
            except SchemaOutdated as exc:
                # Not a failure: a question for staff, asked on the GUI thread.
                return _Outdated(exc.current, exc.head)

        job = self.worker.submit_reporting(work)
        job.progressed.connect(self._progressed)
        job.succeeded.connect(self._prepared)
        job.failed.connect(self._fail)

    def _show_progress_later(self) -> None:
        progress = _ProgressDialog(self._headline, "", 0, 0, self.window)
        progress.setObjectName("startProgress")
        progress.setWindowTitle(self.tr("Credits Desk"))
        progress.setCancelButton(None)  # None removes the button
        progress.setAutoClose(False)
        progress.setAutoReset(False)
        progress.setMinimumWidth(420)
        # Over the window being replaced: it must not start new work meanwhile.
        progress.setWindowModality(Qt.WindowModality.WindowModal)
        progress.setWindowFlag(Qt.WindowType.WindowCloseButtonHint, False)
        # Shown by our own timer, only if opening takes a while (a quick open must not
        # flash a dialog): QProgressDialog's own guess needs steady progress reports,
        # which a database migration does not give.
        progress.setMinimumDuration(24 * 3600 * 1000)
        progress.hide()
        self.progress = progress
        QTimer.singleShot(PROGRESS_DELAY_MS, self._show_progress)

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
            locale = fmt.app_locale()
            step = self.tr("{stage}: {done} of {total}").format(
                stage=stage, done=locale.toString(done), total=locale.toString(total))
        else:
            self.progress.setRange(0, 0)
            step = self.tr("{stage}…").format(stage=stage)
        self.progress.setLabelText(f"{self._headline}\n{step}")

    @Slot(object)
    def _prepared(self, result: Database | _Outdated) -> None:
        self._close_progress()
        if isinstance(result, _Outdated):
            if self._unattended:
                # Nobody is there to answer the question.
                self._fail(SchemaOutdated(result.current, result.head).message)
            else:
                self._ask_to_upgrade(result)
            return
        self._pending_db = result
        self._sign_in(result)

    def _ask_to_upgrade(self, outdated: _Outdated) -> None:
        box = QMessageBox(
            QMessageBox.Icon.Question, self.tr("Credits Desk"),
            upgrade_question_text(outdated.current), QMessageBox.StandardButton.NoButton,
            self.window,
        )
        box.setObjectName("upgradeQuestion")
        box.setInformativeText(self.tr(
            "This version of Credits Desk needs revision {revision}. Other people "
            "using the database will need this version too once it is upgraded."
        ).format(revision=outdated.head))
        upgrade = box.addButton(self.tr("Upgrade"), QMessageBox.ButtonRole.AcceptRole)
        upgrade.setObjectName("upgrade")
        cancel = box.addButton(QMessageBox.StandardButton.Cancel)
        # Changing a shared database is not what Enter should do by accident.
        box.setDefaultButton(cancel)
        box.setEscapeButton(cancel)
        box.finished.connect(lambda _result: self._upgrade_answered(
            box.clickedButton() is upgrade))
        self.upgrade_question = box
        box.open()

    def _upgrade_answered(self, upgrade: bool) -> None:
        self.upgrade_question = None
        target = self._pending
        if target is None:
            return
        if upgrade:
            target.upgrade = True
            self._open(target)
        else:
            self._abandon()

    # -- signing in ------------------------------------------------------------------------

    def _sign_in(self, db: Database) -> None:
        if db.is_postgresql:
            job = self.worker.submit(lambda: login_from_database(db))
        elif self._username is not None:
            username = self._username
            job = self.worker.submit(lambda: sign_in(db, username))
        else:
            dialog = SignInDialog(db, self.window)
            dialog.setWindowIcon(app_icon())
            dialog.finished.connect(self._sign_in_closed)
            self.sign_in_dialog = dialog
            dialog.open()
            return
        job.succeeded.connect(self._signed_in)
        job.failed.connect(self._fail)

    @Slot(int)
    def _sign_in_closed(self, result: int) -> None:
        dialog = self.sign_in_dialog
        self.sign_in_dialog = None
        actor = dialog.actor if dialog is not None else None
        if dialog is not None:
            dialog.deleteLater()
        if result == QDialog.DialogCode.Accepted and actor is not None:
            self._signed_in(actor)
        else:
            self._abandon()

    @Slot(object)
    def _signed_in(self, actor: Actor) -> None:
        db = self._pending_db
        if db is None:
            return
        self._pending = None
        self._pending_db = None
        log.info("signed in to %s as %s (%s)", db.display_url(), actor.username,
                 actor.role.value)
        old_window, old_db = self.window, self.db
        window = MainWindow(db, actor, settings=self._settings)
        window.connect_requested.connect(self.connect_to_another_database)
        self.window, self.db = window, db
        if old_window is not None:
            # Where the old one was, as large as it was.
            window.restoreGeometry(old_window.saveGeometry())
        if self._unattended and old_window is None:
            window.model.page_loaded.connect(lambda: self._finish(EXIT_OK))
            window.model.load_failed.connect(self._fail)
        window.show()
        app = QApplication.instance()
        if isinstance(app, QApplication):
            # From now on closing the main window ends the application.
            app.setQuitOnLastWindowClosed(True)
        if old_window is not None and old_db is not None:
            # Only now that the new window is up: a failed switch leaves the old as it was.
            self._retire(old_window, old_db)
        self.window_shown.emit(window)

    # -- endings ---------------------------------------------------------------------------

    @Slot(str)
    def _fail(self, message: str) -> None:
        self._close_progress()
        target = self._pending
        self._pending = None
        self._close_pending_db()
        log.info("could not open the database: %s", message)
        if self._unattended:
            print(f"credits-desktop: {message}", file=sys.stderr)
            self._finish(EXIT_ERROR)
            return
        if self.window is None and target is not None and target.profile is not None:
            # At start, on a saved connection: let staff fix it or choose another.
            self._ask_for_connection(select=target.profile, message=message)
            return
        box = QMessageBox(
            QMessageBox.Icon.Critical, self.tr("Credits Desk"), message,
            QMessageBox.StandardButton.Close, self.window,
        )
        box.setObjectName("startError" if self.window is None else "connectError")
        if self.window is None:
            box.finished.connect(lambda _result: self._finish(EXIT_ERROR))
        self.message_box = box
        box.open()

    def _abandon(self) -> None:
        """Staff cancelled (the sign-in or the upgrade): at start the application ends;
        on a switch the old window simply stays."""
        self._pending = None
        self._close_pending_db()
        if self.window is None:
            self._finish(EXIT_OK)

    def _retire(self, window: MainWindow, db: Database) -> None:
        window.worker.discard_all()
        window.close()
        self._retired.append((window, db))
        self._close_retired()

    @Slot()
    def _close_retired(self) -> None:
        # A replaced window's database is closed only after its last query returned
        # (checked by timer, not waited for: the GUI thread must not block on it).
        waiting: list[tuple[MainWindow, Database]] = []
        for window, db in self._retired:
            if window.worker.busy:
                waiting.append((window, db))
            else:
                db.close()
                window.deleteLater()
        self._retired = waiting
        if waiting:
            QTimer.singleShot(RETIRE_POLL_MS, self._close_retired)

    def _close_pending_db(self) -> None:
        if self._pending_db is not None:
            self._pending_db.close()
            self._pending_db = None

    def _close_progress(self) -> None:
        if self.progress is not None:
            self.progress.hide()
            self.progress.deleteLater()
            self.progress = None

    def _finish(self, code: int) -> None:
        if not self._done:
            self._done = True
            self.finished.emit(code)


def run_gui(url: str, is_default_demo: bool, *, store: ProfileStore | None = None,
            settings: QSettings | None = None) -> int:
    """Run the desktop application until it is closed; the exit status.

    ``url`` is the database given (``--db``, ``CREDITS_DESK_DB``), or the demo
    database when ``is_default_demo``: then the last connection saved in ``store``
    (default: the user's settings), if any, is opened instead. The window's layout
    is remembered in ``settings`` (default: the user's settings; an unattended run
    keeps none, and always starts with the default layout).
    """
    existing = QApplication.instance()
    if isinstance(existing, QApplication):
        app = existing
    else:
        # Before the application exists, or Qt ignores it: scale factors such as 1.25
        # and 1.5 are used as they are, not rounded (text and SVG icons stay sharp,
        # and the window is the size the user's display settings ask for).
        QGuiApplication.setHighDpiScaleFactorRoundingPolicy(
            Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
        app = QApplication(sys.argv[:1])
        # The user's language and number formats; an application given (tests) has
        # its own already.
        install_translations(app)
    configure_application(app)
    unattended = os.environ.get(QUIT_AFTER_START_ENV) == "1"
    if settings is None and not unattended:
        settings = user_settings()
    hook_before, thread_hook_before = sys.excepthook, threading.excepthook
    install_excepthook(app)
    quit_on_close = app.quitOnLastWindowClosed()
    # Between the progress dialog and the main window no window may be open; that
    # must not end the application.
    app.setQuitOnLastWindowClosed(False)
    launcher = Launcher(
        url,
        is_default_demo,
        username=os.environ.get(USER_ENV, "").strip() or None,
        unattended=unattended,
        store=store,
        settings=settings,
    )
    launcher.finished.connect(app.exit)
    QTimer.singleShot(0, launcher.start)
    try:
        return int(app.exec())
    finally:
        launcher.shutdown()
        app.setQuitOnLastWindowClosed(quit_on_close)
        sys.excepthook, threading.excepthook = hook_before, thread_hook_before
