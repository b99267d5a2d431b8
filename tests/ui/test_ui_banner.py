"""The connection banner and its back-off, and the error dialog's "Copy details"
(no database needed here; the live tests use real databases)."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator

import pytest
from PySide6.QtCore import QCoreApplication, Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication, QPushButton
from pytestqt.qtbot import QtBot

from credits_desktop import __version__
from credits_desktop.services.errors import RuleBroken
from credits_desktop.ui import theme
from credits_desktop.ui.banner import ConnectionBanner, countdown_seconds
from credits_desktop.ui.error_report import (
    DIALOG_TEXT,
    ErrorDialog,
    ErrorReporter,
    fault_details,
    install_excepthook,
    report_text,
    scrub,
    set_report_database,
)
from credits_desktop.ui.live import BACKOFF_SECONDS, backoff_delay
from credits_desktop.ui.workers import UNEXPECTED_TROUBLE, Worker

from .pseudo_translation import untranslated_texts
from .test_ui_theme import contrast

SECRET = "hunter2-s3cret"


@pytest.fixture
def worker(qtbot: QtBot) -> Iterator[Worker]:
    w = Worker()
    yield w
    w.wait_for_done()
    QCoreApplication.processEvents()


@pytest.fixture(autouse=True)
def no_report_database() -> Iterator[None]:
    yield
    set_report_database(None)


def test_the_back_off_doubles_up_to_thirty_seconds_and_stays_there() -> None:
    assert [backoff_delay(n) for n in range(1, 10)] == [1, 2, 4, 8, 16, 30, 30, 30, 30]
    assert BACKOFF_SECONDS == (1, 2, 4, 8, 16, 30)
    assert backoff_delay(0) == 1
    assert [backoff_delay(n, (0.1, 0.5)) for n in (1, 2, 3)] == [0.1, 0.5, 0.5]
    with pytest.raises(ValueError):
        backoff_delay(1, ())


def test_the_countdown_rounds_up_to_whole_seconds() -> None:
    assert [countdown_seconds(ms) for ms in (8000, 7999, 7001, 7000, 1, 0)] == \
        [8, 8, 8, 7, 1, 1]


def test_the_banner_counts_down_and_offers_retry_now(qtbot: QtBot) -> None:
    banner = ConnectionBanner()
    qtbot.addWidget(banner)
    assert banner.objectName() == "connectionBanner" and banner.isHidden()
    banner.show_countdown(8)
    assert banner.isVisible()
    assert banner.text.text() == "Lost the connection to the database. Retrying in 8 s…"
    button = banner.findChild(QPushButton, "retryConnection")
    assert button.text() == "Retry now" and button.accessibleName() == "Retry connecting now"
    with qtbot.waitSignal(banner.retry_requested):
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    # A short wait runs out: the banner says a try is under way.
    banner.show_countdown(0.3)
    qtbot.waitUntil(lambda: banner.text.text().endswith("Trying to reconnect…"))
    banner.show_trying()
    assert not button.isEnabled()
    banner.dismiss()
    assert banner.isHidden()


def test_the_banner_takes_the_warning_colours_of_the_palette(qtbot: QtBot) -> None:
    app = QApplication.instance()
    assert isinstance(app, QApplication)
    style, palette = app.style().name(), app.palette()
    try:
        for scheme, name in ((Qt.ColorScheme.Dark, "dark"), (Qt.ColorScheme.Light, "light")):
            theme.apply_theme(app, scheme)
            banner = ConnectionBanner()
            qtbot.addWidget(banner)
            banner.show_trying()
            colours = theme.SEMANTIC[name]
            assert colours["warning_background"] in banner.styleSheet()
            text = banner.text.palette().color(QPalette.ColorRole.WindowText)
            assert text == QColor(colours["warning"])
            assert contrast(text, QColor(colours["warning_background"])) >= 3
        # An open banner follows a switch of the palette.
        theme.apply_theme(app, Qt.ColorScheme.Dark)
        dark = theme.SEMANTIC["dark"]["warning"]
        qtbot.waitUntil(lambda: banner.text.palette().color(QPalette.ColorRole.WindowText)
                        == QColor(dark))
    finally:
        app.setStyle(style)
        app.setPalette(palette)


def test_copy_details_copies_the_report_without_the_password(qtbot: QtBot) -> None:
    set_report_database(f"postgresql+psycopg://sam:{SECRET}@db.example/credits")
    try:
        raise RuntimeError(f"cannot use postgresql://sam:{SECRET}@db.example/credits "
                           f"(password={SECRET})")
    except RuntimeError as exc:
        details = fault_details(exc)
    reporter = ErrorReporter()
    dialog = reporter.report(UNEXPECTED_TROUBLE, details)
    qtbot.addWidget(dialog)
    assert dialog.isVisible() and dialog.objectName() == "errorDialog"
    assert "Traceback" not in dialog.message.text()
    QApplication.clipboard().clear()
    qtbot.mouseClick(dialog.findChild(QPushButton, "copyDetails"), Qt.MouseButton.LeftButton)
    copied = QApplication.clipboard().text()
    assert SECRET not in copied
    assert f"Credits Desk {__version__}" in copied
    assert "Time: " in copied and " UTC " in copied
    assert "Database: postgresql+psycopg://sam:***@db.example/credits" in copied
    assert "Error: RuntimeError: cannot use postgresql://sam:***@db.example/credits" in copied
    assert "test_copy_details_copies_the_report_without_the_password" in copied
    assert dialog.isVisible()  # copying does not close the dialog
    assert dialog.copied.isVisible()


def test_scrub_masks_passwords_in_addresses_and_connection_strings() -> None:
    assert scrub("postgresql://u:pw@h/db") == "postgresql://u:***@h/db"
    assert scrub("host=h password='a b' user=u") == "host=h password=*** user=u"
    assert scrub("nothing secret here") == "nothing secret here"
    assert SECRET not in report_text(f"Error: x: PWD={SECRET}")


def test_an_unexpected_failure_in_a_job_opens_one_dialog_a_refusal_none(
    qtbot: QtBot, worker: Worker
) -> None:
    reporter = ErrorReporter()
    worker.fault.connect(reporter.report)

    def refuse() -> None:
        raise RuleBroken("The account has only 0 credits available; this needs 40.")

    refused = worker.submit(refuse)
    with qtbot.waitSignal(refused.failed):
        pass
    assert reporter.dialog is None

    for _ in range(2):
        job = worker.submit(lambda: 1 // 0)
        with qtbot.waitSignals([worker.fault, job.failed]):
            pass
    dialog = reporter.dialog
    assert isinstance(dialog, ErrorDialog)
    qtbot.addWidget(dialog)
    assert dialog.message.text() == UNEXPECTED_TROUBLE
    assert dialog.count == 2 and "2 times" in dialog.repeated.text()
    assert "ZeroDivisionError" in dialog.details_text()
    assert "2 times" in dialog.details_text()
    dialog.reject()
    assert reporter.dialog is None


def test_the_excepthook_logs_and_shows_uncaught_errors(
    qtbot: QtBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    monkeypatch.setattr(threading, "excepthook", threading.excepthook)
    app = QApplication.instance()
    assert isinstance(app, QApplication)
    reporter = install_excepthook(app)
    assert sys.excepthook is not reporter.previous_hook
    try:
        raise KeyError("slot blew up")
    except KeyError as exc:
        sys.excepthook(type(exc), exc, exc.__traceback__)
    dialog = reporter.dialog
    assert dialog is not None
    qtbot.addWidget(dialog)
    assert dialog.isVisible()
    assert "KeyError: 'slot blew up'" in dialog.details_text()
    dialog.reject()
    reporter.deleteLater()


# -- every text goes through Qt's translation ------------------------------------------


def test_the_banner_texts_go_through_translation(
    qtbot: QtBot, pseudo_translated: object
) -> None:
    banner = ConnectionBanner()
    qtbot.addWidget(banner)
    assert banner.text.text() == "⟦Lost the connection to the database. Trying to reconnect…⟧"
    banner.show_countdown(8)
    assert banner.text.text() == "⟦Lost the connection to the database. Retrying in 8 s…⟧"
    assert untranslated_texts(banner) == []
    banner.show_trying()
    assert untranslated_texts(banner) == []


def test_the_error_dialog_texts_go_through_translation(
    qtbot: QtBot, worker: Worker, pseudo_translated: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    reporter = ErrorReporter()
    worker.fault.connect(reporter.report)
    for _ in range(2):
        job = worker.submit(lambda: 1 // 0)
        with qtbot.waitSignals([worker.fault, job.failed]):
            pass
    dialog = reporter.dialog
    assert isinstance(dialog, ErrorDialog)
    qtbot.addWidget(dialog)
    # Worded on the worker's thread, by the translator.
    assert dialog.message.text() == f"⟦{UNEXPECTED_TROUBLE}⟧"
    assert dialog.repeated.text() == "⟦This happened 2 time(s).⟧"
    dialog.copy_details()
    assert untranslated_texts(dialog) == []
    # The copied report stays English: it goes to whoever reads the log.
    assert "This happened 2 times; the details are of the last time." in dialog.details_text()
    dialog.reject()

    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    monkeypatch.setattr(threading, "excepthook", threading.excepthook)
    app = QApplication.instance()
    assert isinstance(app, QApplication)
    hooked = install_excepthook(app)
    try:
        raise KeyError("slot blew up")
    except KeyError as exc:
        sys.excepthook(type(exc), exc, exc.__traceback__)
    shown = hooked.dialog
    assert shown is not None
    qtbot.addWidget(shown)
    assert shown.message.text() == f"⟦{DIALOG_TEXT}⟧"
    assert untranslated_texts(shown) == []
    shown.reject()
    hooked.deleteLater()
