"""The incident refund dialog on a real database (SQLite and PostgreSQL).

Driven as finance would: choose the feature and the window, preview, give the
incident a reference, confirm, watch the progress, save the CSV. Cancel is tested
with the run held inside its first batch by a lock the test takes on the database,
so that "stops after the current batch" is checked without any sleeping.
"""

from __future__ import annotations

import csv
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QLineEdit,
    QProgressBar,
    QTableWidget,
    QWidget,
)
from pytestqt.qtbot import QtBot
from services.factories import World, balances, charge, fetch, table_counts
from sqlalchemy import select, text

from credits_desktop.services.incidents import IncidentSummary
from credits_desktop.services.operations import Actor
from credits_desktop.store.database import Database
from credits_desktop.store.engine import make_engine
from credits_desktop.store.models import Refund
from credits_desktop.ui import formatting as fmt
from credits_desktop.ui import theme
from credits_desktop.ui.incident_dialog import SAMPLE_ROWS_SHOWN, IncidentDialog, _from_qt

from .pseudo_translation import untranslated_texts
from .test_ui_theme import contrast

WAIT_MS = 15_000
START = datetime(2026, 1, 10, 10, 0, tzinfo=UTC)
END = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)
RUN_AT = datetime(2026, 1, 12, 9, 0, tzinfo=UTC)
_LEFT = Qt.MouseButton.LeftButton


def _outage(world: World, add_accounts: Callable[..., list[int]]) -> dict[int, list[int]]:
    """Three accounts with failed image charges in the window (Acme 4, the others 3
    each), plus charges outside it; returns the in-scope charge ids by account."""
    others = add_accounts(2, prefix="Outage")
    accounts = [world.account_id, *others]
    scope: dict[int, list[int]] = {}
    for a, count in zip(accounts, (4, 3, 3), strict=True):
        scope[a] = [
            charge(world, 40, account_id=a, at=START + timedelta(minutes=10 * i)).charge_id
            for i in range(count)
        ]
    charge(world, 40, account_id=others[0], at=END)
    charge(world, 40, account_id=others[0], status="succeeded", at=START)
    charge(world, 15, account_id=others[0], feature_code="video_script", at=START)
    return scope


@pytest.fixture
def make_dialog(qtbot: QtBot, world: World) -> Callable[..., IncidentDialog]:
    def make(actor: Actor | None = None, batch_size: int = 200) -> IncidentDialog:
        dialog = IncidentDialog(world.db, actor or world.finance, batch_size=batch_size,
                                at=lambda: RUN_AT)
        qtbot.addWidget(dialog, before_close_func=lambda d: d.worker.wait_for_done())
        dialog.show()
        return dialog

    return make


def _ready(qtbot: QtBot, dialog: IncidentDialog) -> None:
    """Wait for the features, then choose the image feature and the outage window."""
    qtbot.waitUntil(lambda: dialog.feature.findData("ad_image") >= 0, timeout=WAIT_MS)
    dialog.choose_feature("ad_image")
    dialog.set_window(START, END)


def _preview(qtbot: QtBot, dialog: IncidentDialog) -> Any:
    assert dialog.preview_button.isEnabled()
    with qtbot.waitSignal(dialog.previewed, timeout=WAIT_MS) as blocker:
        qtbot.mouseClick(dialog.preview_button, _LEFT)
    return blocker.args[0]


def _run(qtbot: QtBot, dialog: IncidentDialog) -> IncidentSummary:
    qtbot.mouseClick(dialog.run_button, _LEFT)
    assert dialog.confirm_box.isVisible()
    with qtbot.waitSignal(dialog.run_finished, timeout=WAIT_MS) as blocker:
        qtbot.mouseClick(dialog.confirm_button, _LEFT)
    summary: IncidentSummary = blocker.args[0]
    return summary


def _refunded(world: World) -> list[int]:
    return sorted(fetch(world.db, select(Refund.charge_id)))


def test_preview_run_and_save_the_csv(
    qtbot: QtBot, world: World, add_accounts: Callable[..., list[int]],
    make_dialog: Callable[..., IncidentDialog], tmp_path: Path,
) -> None:
    scope = _outage(world, add_accounts)
    expected = sorted(c for ids in scope.values() for c in ids)
    acme_before = balances(world.db, world.account_id).total
    dialog = make_dialog()
    _ready(qtbot, dialog)
    assert not dialog.run_button.isEnabled()  # not previewed yet

    counts = table_counts(world.db)
    preview = _preview(qtbot, dialog)
    assert table_counts(world.db) == counts  # a preview writes nothing
    assert (preview.charges, preview.accounts, preview.credits) == (10, 3, 400)
    assert dialog.preview_label.text() == (
        "A run would refund 10 failed charges (400 credits) on 3 accounts.")
    assert dialog.sample_table.rowCount() == 10
    names = {dialog.sample_table.item(r, 0).text() for r in range(10)}  # type: ignore[union-attr]
    assert names == {"Acme Ads", "Outage 00", "Outage 01"}

    # Run stays off until there is a reference, and says why.
    assert not dialog.run_button.isEnabled()
    assert dialog.problem_label.text() == "An incident reference is required."
    qtbot.keyClicks(dialog.reference, "INC-2026-031")
    assert dialog.run_button.isEnabled() and not dialog.problem_label.isVisible()

    # The confirm step states the numbers; Back leaves everything as it was.
    qtbot.mouseClick(dialog.run_button, _LEFT)
    assert "Refund 10 failed charges (400 credits) on 3 accounts" in (
        dialog.confirm_label.text())
    assert "INC-2026-031" in dialog.confirm_label.text()
    assert dialog.confirm_button.text() == "Refund 10 charges now"
    qtbot.mouseClick(dialog.back_button, _LEFT)
    assert not dialog.confirm_box.isVisible() and _refunded(world) == []

    summary = _run(qtbot, dialog)
    assert summary.charges_refunded == 10 and summary.complete
    assert _refunded(world) == expected
    assert balances(world.db, world.account_id).total == acme_before + 4 * 40
    assert dialog.progress.value() == dialog.progress.maximum() == 10
    assert dialog.summary_label.text().startswith(
        "Refunded 10 charge(s), 400 credits, on 3 account(s) for incident INC-2026-031.")
    assert not dialog.run_button.isEnabled()  # a new run needs a new preview
    assert dialog.close_button.isEnabled()

    # Save CSV…: the file dialog does not block; choosing a file writes it in the worker.
    qtbot.mouseClick(dialog.save_button, _LEFT)
    file_dialog = dialog.file_dialog
    assert file_dialog is not None and file_dialog.isVisible()
    target = tmp_path / "inc.csv"
    with qtbot.waitSignal(dialog.csv_saved, timeout=WAIT_MS):
        file_dialog.selectFile(str(target))
        file_dialog.accept()
    with target.open(encoding="utf-8", newline="") as handle:
        lines = list(csv.DictReader(handle))
    assert sorted(int(r["charge_id"]) for r in lines) == expected
    assert sum(int(r["credits_refunded"]) for r in lines) == 400
    assert "Saved 10 rows to" in dialog.summary_label.text()

    # Previewing again finds nothing left, and Run stays off.
    again = _preview(qtbot, dialog)
    assert again.charges == 0 and dialog.preview_label.text().startswith("Nothing to refund")
    assert not dialog.run_button.isEnabled()


def test_changing_the_scope_needs_a_new_preview_and_bad_windows_are_refused(
    qtbot: QtBot, world: World, add_accounts: Callable[..., list[int]],
    make_dialog: Callable[..., IncidentDialog],
) -> None:
    _outage(world, add_accounts)
    dialog = make_dialog()
    _ready(qtbot, dialog)
    _preview(qtbot, dialog)
    dialog.reference.setText("INC-1")
    assert dialog.run_button.isEnabled()
    qtbot.keyClicks(dialog.model, "flux-fast")
    assert not dialog.run_button.isEnabled()
    assert dialog.preview_label.text() == "The scope changed: preview again before running."
    preview = _preview(qtbot, dialog)
    assert preview.scope.model == "flux-fast" and preview.charges == 0

    dialog.set_window(END, START)
    assert not dialog.preview_button.isEnabled()
    assert dialog.problem_label.text() == "The end of the window must be after its start."
    dialog.set_window(START, START + timedelta(days=100))
    assert dialog.problem_label.text() == "An incident window can be at most 92 days long."
    assert _refunded(world) == []


@contextmanager
def _hold_the_database(db: Database, account_id: int) -> Iterator[Callable[[], None]]:
    """Block every refund of ``account_id`` until the returned function is called:
    SQLite's write lock (the whole database), or the account row's lock on PostgreSQL."""
    if db.is_postgresql:
        engine = make_engine(db.engine.url, pool_size=1)
        conn = engine.connect()
        tx = conn.begin()
        conn.execute(text("SELECT id FROM accounts WHERE id = :a FOR UPDATE"),
                     {"a": account_id})
        release: Callable[[], None] = tx.rollback
        try:
            yield release
        finally:
            if tx.is_active:
                tx.rollback()
            conn.close()
            engine.dispose()
        return
    path = db.engine.url.database
    assert path is not None
    raw = sqlite3.connect(path, isolation_level=None)
    raw.execute("BEGIN IMMEDIATE")
    released = False

    def let_go() -> None:
        nonlocal released
        if not released:
            raw.execute("ROLLBACK")
            released = True

    try:
        yield let_go
    finally:
        let_go()
        raw.close()


def test_cancel_stops_after_the_current_batch_and_a_rerun_finishes(
    qtbot: QtBot, world: World, add_accounts: Callable[..., list[int]],
    make_dialog: Callable[..., IncidentDialog],
) -> None:
    scope = _outage(world, add_accounts)
    expected = sorted(c for ids in scope.values() for c in ids)
    dialog = make_dialog(batch_size=3)  # batches: Acme 3, Acme 1, 3, 3
    _ready(qtbot, dialog)
    _preview(qtbot, dialog)
    dialog.reference.setText("INC-77")
    qtbot.mouseClick(dialog.run_button, _LEFT)

    with _hold_the_database(world.db, world.account_id) as release:
        # The first report comes once the first batch is sure to run; the lock then
        # holds the run inside that batch while Cancel is pressed.
        with qtbot.waitSignal(dialog.progressed, timeout=WAIT_MS) as first:
            qtbot.mouseClick(dialog.confirm_button, _LEFT)
        assert first.args == [0, 10]
        assert dialog.running and dialog.cancel_run_button.isVisible()
        assert not dialog.close_button.isEnabled()
        dialog.reject()  # closing now would hide the outcome: refused, with a reason
        assert dialog.isVisible() and "press Cancel run" in dialog.problem_label.text()
        qtbot.mouseClick(dialog.cancel_run_button, _LEFT)
        assert dialog.cancel_run_button.text() == "Cancelling…"
        with qtbot.waitSignal(dialog.run_finished, timeout=WAIT_MS) as done:
            release()
    summary: IncidentSummary = done.args[0]
    assert summary.cancelled and summary.charges_refunded == 3
    assert dialog.summary_label.text().startswith("Cancelled after 3 of 10 charge(s).")
    assert not dialog.cancel_run_button.isVisible()
    assert _refunded(world) == scope[world.account_id][:3]

    # Run again: the rest, and nothing twice.
    preview = _preview(qtbot, dialog)
    assert preview.charges == 7
    rest = _run(qtbot, dialog)
    assert rest.charges_refunded == 7 and rest.complete
    assert _refunded(world) == expected


def test_support_is_told_they_cannot_run_incident_refunds(
    qtbot: QtBot, world: World, add_accounts: Callable[..., list[int]],
    make_dialog: Callable[..., IncidentDialog],
) -> None:
    _outage(world, add_accounts)
    counts = table_counts(world.db)
    dialog = make_dialog(actor=world.support)
    assert dialog.refused
    assert dialog.preview_label.text().startswith(
        "Incident refunds need the finance, manager or admin role.")
    for widget in (dialog.feature, dialog.model, dialog.start_edit, dialog.end_edit,
                   dialog.preview_button, dialog.run_button, dialog.reference):
        assert not widget.isEnabled()
    dialog.run_preview()
    dialog.ask_confirmation()
    assert not dialog.worker.busy and not dialog.confirm_box.isVisible()
    assert table_counts(world.db) == counts


def test_every_interactive_widget_has_an_accessible_name(
    qtbot: QtBot, world: World, make_dialog: Callable[..., IncidentDialog],
) -> None:
    dialog = make_dialog()
    _ready(qtbot, dialog)
    kinds = (QAbstractButton, QLineEdit, QComboBox, QAbstractSpinBox, QTableWidget,
             QProgressBar)
    widgets = [w for w in dialog.findChildren(QWidget) if isinstance(w, kinds)
               # The line edits inside combo boxes and spin boxes speak for their owner;
               # Qt's own parts of a table (corner button) are named by Qt.
               and not isinstance(w.parent(), QComboBox | QAbstractSpinBox)
               and not w.objectName().startswith("qt_")]
    assert len(widgets) >= 14
    unnamed = [w.objectName() or type(w).__name__ for w in widgets if not w.accessibleName()]
    assert unnamed == []


def test_every_text_goes_through_translation(
    qtbot: QtBot, world: World, add_accounts: Callable[..., list[int]],
    make_dialog: Callable[..., IncidentDialog], pseudo_translated: object, tmp_path: Path,
) -> None:
    _outage(world, add_accounts)
    window = {fmt.utc_datetime(START), fmt.utc_datetime(END)}
    # The services' sentence for an empty reference (the services have no Qt).
    required = "An incident reference is required."

    def data(text: str) -> bool:
        # The window's UTC times in the date fields' tooltips are data, not words.
        return text in window or text == required

    dialog = make_dialog()
    _ready(qtbot, dialog)
    assert dialog.start_edit.toolTip() in window
    assert untranslated_texts(dialog, data=data) == []

    preview = _preview(qtbot, dialog)
    assert preview.charges == 10
    assert dialog.preview_label.text().startswith("⟦A run would refund ")
    assert untranslated_texts(dialog, data=data) == []
    qtbot.keyClicks(dialog.reference, "INC-7")
    qtbot.mouseClick(dialog.run_button, _LEFT)
    assert dialog.confirm_box.isVisible()
    assert dialog.confirm_button.text() == "⟦Refund 10 charge(s) now⟧"
    assert untranslated_texts(dialog, data=data) == []

    with qtbot.waitSignal(dialog.run_finished, timeout=WAIT_MS):
        qtbot.mouseClick(dialog.confirm_button, _LEFT)
    with qtbot.waitSignal(dialog.csv_saved, timeout=WAIT_MS):
        dialog.save_csv_to(str(tmp_path / "inc.csv"))
    # The run's summary is the services' sentence; what the dialog adds is translated.
    assert "⟦Saved 10 row(s) to " in dialog.summary_label.text()
    assert untranslated_texts(dialog, data=data) == []

    refused = make_dialog(world.support)
    assert refused.preview_label.text().startswith("⟦")
    # Its window is the last hour: the fields' tooltips are those times in UTC.
    shown = {fmt.utc_datetime(_from_qt(edit.dateTime()))
             for edit in (refused.start_edit, refused.end_edit)}
    assert untranslated_texts(refused, data=lambda text: text in shown) == []


@pytest.fixture
def dark(qapp: QApplication) -> Iterator[QApplication]:
    """The dark palette for the test; the application's look as it was afterwards."""
    style, palette = qapp.style().name(), qapp.palette()
    theme.apply_theme(qapp, Qt.ColorScheme.Dark)
    yield qapp
    qapp.setStyle(style)
    qapp.setPalette(palette)


def test_the_sample_is_compact_and_its_sentences_read_on_the_dark_palette(
    qtbot: QtBot, world: World, add_accounts: Callable[..., list[int]],
    make_dialog: Callable[..., IncidentDialog], dark: QApplication,
) -> None:
    _outage(world, add_accounts)
    dialog = make_dialog()
    dialog.resize(820, dialog.sizeHint().height())
    _ready(qtbot, dialog)
    _preview(qtbot, dialog)
    table = dialog.sample_table
    # Compact rows, as in the main window's lists: ten of them in view at once.
    row_height = table.rowHeight(0)
    assert row_height <= table.fontMetrics().height() + 8
    assert table.viewport().height() >= SAMPLE_ROWS_SHOWN * row_height
    # The account takes the spare width; the credits column only what it needs.
    header = table.horizontalHeader()
    widths = [header.sectionSize(c) for c in range(header.count())]
    assert widths[0] == max(widths)
    assert widths[4] < table.viewport().width() / 5

    # The coloured sentences use the dark palette's own colours.
    window = dialog.palette().color(QPalette.ColorRole.Window)
    dialog.model.setText("imagen")  # the scope changed: a warning
    warning = dialog.preview_label.palette().color(QPalette.ColorRole.WindowText)
    assert warning == theme.color("warning") and contrast(warning, window) >= 3
    dialog.reference.clear()
    dialog._show_problem("An incident reference is required.")
    problem = dialog.problem_label.palette().color(QPalette.ColorRole.WindowText)
    assert problem == theme.color("danger") and contrast(problem, window) >= 3
