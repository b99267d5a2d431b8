"""What staff see of an unexpected error: a short message and details they can copy.

A fault (a bug, not a refusal such as "not enough credits") is logged with its
traceback to the log file (see ``cli.logging_to``), and the window shows a short
non-blocking dialog, :class:`ErrorDialog`, whose "Copy details" button puts a
details text on the clipboard for a support ticket: when, which version, the
database (its address without the password), the error's type and message and the
last lines of its traceback. Anything that looks like a password in that text is
masked. Several faults in a row update the one open dialog instead of stacking
dialogs.

:func:`fault_details` is plain Python: the worker calls it on its pool thread,
where the exception lives. :func:`install_excepthook` routes exceptions nobody
caught on the GUI thread (a slot that raised) through the same dialog.
"""

from __future__ import annotations

import logging
import platform
import sys
import threading
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from types import TracebackType

from PySide6 import __version__ as pyside_version
from PySide6.QtCore import QT_TRANSLATE_NOOP, QCoreApplication, QObject, QTimer, qVersion
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QStyle,
    QVBoxLayout,
    QWidget,
)

from credits_desktop import __version__
from credits_desktop.store.engine import hide_passwords

__all__ = [
    "TRACEBACK_LINES",
    "ErrorDialog",
    "ErrorReporter",
    "fault_details",
    "install_excepthook",
    "report_text",
    "scrub",
    "set_report_database",
]

log = logging.getLogger(__name__)

ExceptHook = Callable[[type[BaseException], BaseException, TracebackType | None], object]

# How much of the traceback the details keep: the end, where the fault is.
TRACEBACK_LINES = 30
COPIED_NOTE_MS = 4000

# The English source texts, translated where they are shown.
DIALOG_TEXT = str(QT_TRANSLATE_NOOP(
    "ErrorDialog", "Something unexpected went wrong. The details were written to the log."))
COPY_HINT = str(QT_TRANSLATE_NOOP(
    "ErrorDialog", "If it happens again, press Copy details and paste them into a message to "
    "whoever looks after Credits Desk."))

# The database the details name; the main window sets it.
_report_database: list[str] = []


def scrub(text: str) -> str:
    """``text`` with anything that looks like a password masked (the same rule the log
    file follows: ``store.engine.hide_passwords``)."""
    return hide_passwords(text)


def fault_details(exc: BaseException) -> str:
    """The error's type and message and the end of its traceback, passwords masked."""
    lines = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)).splitlines()
    if len(lines) > TRACEBACK_LINES:
        lines = ["  …", *lines[-TRACEBACK_LINES:]]
    name = type(exc).__qualname__
    module = type(exc).__module__
    if module not in ("builtins", "__main__"):
        name = f"{module}.{name}"
    message = str(exc).strip() or "(no message)"
    return scrub(f"Error: {name}: {message}\n\nTraceback (the last lines):\n" + "\n".join(lines))


def set_report_database(display_url: str | None) -> None:
    """Name this database (an address already without its password) in reports."""
    _report_database[:] = [scrub(display_url)] if display_url else []


def report_text(details: str, *, when: datetime | None = None, count: int = 1) -> str:
    """The text "Copy details" copies: when, versions, database, then ``details``.

    Not translated, on purpose: it is read by whoever looks after Credits Desk beside
    the log file, which is in English too, and its times are ISO so they sort.
    """
    moment = (when or datetime.now(UTC)).astimezone(UTC)
    local = moment.astimezone()
    head = [
        f"Credits Desk {__version__}: error report",
        f"Time: {moment:%Y-%m-%d %H:%M:%S} UTC ({local:%Y-%m-%d %H:%M:%S %Z} local)",
        f"Python {platform.python_version()}, Qt {qVersion()}, PySide6 {pyside_version}, "
        f"{platform.system()} {platform.release()}",
    ]
    if _report_database:
        head.append(f"Database: {_report_database[0]}")
    if count > 1:
        head.append(f"This happened {count} times; the details are of the last time.")
    return scrub("\n".join(head) + "\n\n" + details.strip() + "\n")


class ErrorDialog(QDialog):
    """A short "something went wrong" with a Copy details button; never a traceback."""

    def __init__(self, message: str, details: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("errorDialog")
        self.setWindowTitle(self.tr("Credits Desk: something went wrong"))
        self.count = 1
        self._details = details
        self._when = datetime.now(UTC)

        icon = QLabel()
        size = self.style().pixelMetric(QStyle.PixelMetric.PM_MessageBoxIconSize)
        icon.setPixmap(
            self.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxCritical).pixmap(size)
        )
        self.message = QLabel(message)
        self.message.setObjectName("errorMessage")
        self.message.setWordWrap(True)
        hint = QLabel(QCoreApplication.translate("ErrorDialog", COPY_HINT))
        hint.setWordWrap(True)
        self.repeated = QLabel()
        self.repeated.setObjectName("errorRepeated")
        self.repeated.hide()
        self.copied = QLabel(self.tr("The details are on the clipboard."))
        self.copied.setObjectName("errorCopied")
        self.copied.hide()

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.copy_button = QPushButton(self.tr("Copy &details"))
        self.copy_button.setObjectName("copyDetails")
        self.copy_button.setAccessibleName(self.tr("Copy the error details"))
        self.copy_button.setToolTip(self.tr("Copy the time, version and error details to the "
                                            "clipboard (no passwords)"))
        # ActionRole: the button acts without closing the dialog.
        buttons.addButton(self.copy_button, QDialogButtonBox.ButtonRole.ActionRole)
        self.copy_button.clicked.connect(self.copy_details)
        buttons.rejected.connect(self.reject)
        self.close_button = buttons.button(QDialogButtonBox.StandardButton.Close)

        text = QVBoxLayout()
        text.addWidget(self.message)
        text.addWidget(hint)
        text.addWidget(self.repeated)
        text.addWidget(self.copied)
        top = QHBoxLayout()
        top.addWidget(icon, 0)
        top.addLayout(text, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(buttons)
        self.setMinimumWidth(420)

        self._copied_timer = QTimer(self)
        self._copied_timer.setSingleShot(True)
        self._copied_timer.setInterval(COPIED_NOTE_MS)
        self._copied_timer.timeout.connect(self.copied.hide)

    def details_text(self) -> str:
        """What Copy details copies."""
        return report_text(self._details, when=self._when, count=self.count)

    def happened_again(self, message: str, details: str) -> None:
        """Another fault while the dialog is open: one dialog, the latest details."""
        self.count += 1
        self._details = details
        self._when = datetime.now(UTC)
        self.message.setText(message)
        self.repeated.setText(self.tr("This happened %n time(s).", "", self.count))
        self.repeated.show()

    def copy_details(self) -> None:
        QApplication.clipboard().setText(self.details_text())
        self.copied.show()
        self._copied_timer.start()


class ErrorReporter(QObject):
    """Shows faults in one :class:`ErrorDialog` at a time, over ``window`` (or whichever
    window is active, when there is none)."""

    def __init__(self, window: QWidget | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent if parent is not None else window)
        self._window = window
        self.dialog: ErrorDialog | None = None
        # The sys.excepthook that install_excepthook replaced.
        self.previous_hook: ExceptHook | None = None

    def report(self, message: str, details: str) -> ErrorDialog:
        dialog = self.dialog
        if dialog is not None and dialog.isVisible():
            dialog.happened_again(message, details)
            return dialog
        if dialog is not None:
            dialog.deleteLater()
        parent = self._window if self._window is not None else QApplication.activeWindow()
        dialog = ErrorDialog(message, details, parent)
        dialog.finished.connect(lambda _code, d=dialog: self._closed(d))
        self.dialog = dialog
        # open(), not exec(): no nested event loop; the application keeps running.
        dialog.open()
        return dialog

    def _closed(self, dialog: ErrorDialog) -> None:
        if self.dialog is dialog:
            self.dialog = None
        dialog.deleteLater()


def install_excepthook(app: QApplication) -> ErrorReporter:
    """Log every exception nobody caught (with its traceback) and, on the GUI thread,
    show it in the error dialog instead of letting it vanish on stderr.

    Returns the reporter; the hook it replaced is kept as ``reporter.previous_hook``.
    """
    reporter = ErrorReporter(None, app)
    previous: ExceptHook = sys.excepthook
    reporter.previous_hook = previous

    def hook(
        exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None
    ) -> None:
        if issubclass(exc_type, KeyboardInterrupt):
            previous(exc_type, exc, tb)
            return
        log.critical("unexpected error", exc_info=(exc_type, exc, tb))
        if threading.current_thread() is not threading.main_thread():
            return  # widgets belong to the GUI thread; the log has it
        try:
            reporter.report(QCoreApplication.translate("ErrorDialog", DIALOG_TEXT),
                            fault_details(exc.with_traceback(tb)))
        except Exception:  # the report must never raise from inside the hook
            log.exception("could not show the error report")

    def thread_hook(args: threading.ExceptHookArgs) -> None:
        if args.exc_value is not None:
            log.critical("unexpected error in thread %s", getattr(args.thread, "name", "?"),
                         exc_info=(args.exc_type, args.exc_value, args.exc_traceback))

    sys.excepthook = hook
    threading.excepthook = thread_hook
    return reporter
