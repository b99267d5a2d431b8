"""The work-queue views on a real database (SQLite and PostgreSQL): the unrefunded
failures queue, the approvals queue and the audit log, driven as a user would.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
from PySide6.QtCore import QItemSelectionModel, Qt
from PySide6.QtGui import QBrush, QColor, QPalette
from PySide6.QtWidgets import QApplication, QFileDialog, QWidget
from pytestqt.qtbot import QtBot
from services.factories import (
    World,
    adjust,
    approve,
    charge,
    fetch,
    open_account,
    refund,
)
from sqlalchemy import select

from credits_desktop.services.operations import Actor
from credits_desktop.services.periods import roll_periods
from credits_desktop.services.worklists import AUDIT_CSV_COLUMNS, audit_page
from credits_desktop.store.models import ApprovalRequest, AuditEvent, Operation, Refund
from credits_desktop.ui import formatting as fmt
from credits_desktop.ui import theme
from credits_desktop.ui.approvals_view import ApprovalsView
from credits_desktop.ui.audit_view import AuditView, action_label
from credits_desktop.ui.failures_view import ONE_ACCOUNT_TIP, FailuresView
from credits_desktop.ui.table_models import PagedModel
from credits_desktop.ui.workers import Worker

from .test_ui_theme import contrast

WAIT_MS = 10_000
V = TypeVar("V", bound=QWidget)


@pytest.fixture
def open_view(qtbot: QtBot, world: World) -> Callable[..., Any]:
    """Show a view on the world's database with a worker of its own, loaded."""

    def make(cls: type[V], actor: Actor, **options: Any) -> V:
        worker = Worker()
        view = cls(world.db, worker, actor, **options)  # type: ignore[call-arg]
        worker.setParent(view)
        qtbot.addWidget(view, before_close_func=lambda _v: worker.wait_for_done())
        view.resize(1100, 600)
        view.show()
        loaded(qtbot, view)
        return view

    return make


@pytest.fixture
def dark(qapp: QApplication) -> Iterator[QApplication]:
    """The dark palette for the test; the application's look as it was afterwards."""
    style, palette = qapp.style().name(), qapp.palette()
    theme.apply_theme(qapp, Qt.ColorScheme.Dark)
    yield qapp
    qapp.setStyle(style)
    qapp.setPalette(palette)


def loaded(qtbot: QtBot, view: Any) -> None:
    qtbot.waitUntil(lambda: not view.is_loading and view.model.started, timeout=WAIT_MS)


def all_rows(qtbot: QtBot, view: Any) -> list[Any]:
    """Every row of the view's list, fetching the remaining pages as scrolling would."""
    model: PagedModel = view.model
    while True:
        loaded(qtbot, view)
        if model.is_complete:
            return model.rows()
        model.fetchMore(view.table.rootIndex())


def select_rows(view: Any, *rows: int) -> None:
    selection = view.table.selectionModel()
    selection.clearSelection()
    for row in rows:
        selection.select(view.model.index(row, 0),
                         QItemSelectionModel.SelectionFlag.Select
                         | QItemSelectionModel.SelectionFlag.Rows)


def row_of(view: Any, key: int) -> int:
    found = view.model.find_key(key)
    assert found >= 0, key
    return int(found)


def cell(view: Any, row: int, column: int) -> str:
    return str(view.model.index(row, column).data())


# -- unrefunded failures -----------------------------------------------------------


def test_failures_view_shows_exactly_the_unrefunded_failed_charges(
    qtbot: QtBot, world: World, open_view: Callable[..., Any]
) -> None:
    w = world
    beta = open_account(w.db, w.platform, name="Beta Shop", email="hi@beta.test")
    wanted = [
        charge(w, 40, at=w.at(hours=1), model="imagen-ultra").charge_id,
        charge(w, 8, at=w.at(hours=2), account_id=beta, feature_code="url_brief").charge_id,
        charge(w, 25, at=w.at(hours=3), model="flux-fast").charge_id,
    ]
    charge(w, 0, at=w.at(hours=4))  # cost nothing
    charge(w, 30, status="succeeded", at=w.at(hours=5))
    done = charge(w, 20, at=w.at(hours=6)).charge_id
    refund(w, w.support, done)

    # A page of 2: the third row comes from a second page.
    view: FailuresView = open_view(FailuresView, w.support, page_size=2)
    assert [r.id for r in all_rows(qtbot, view)] == wanted[::-1]
    first = row_of(view, wanted[1])
    assert [cell(view, first, c) for c in (1, 4, 5)] == ["Beta Shop", "8", "timeout"]
    assert view.status.text() == "3 failed charges shown"

    qtbot.waitUntil(lambda: view.feature_filter.count() > 1, timeout=WAIT_MS)
    view.feature_filter.setCurrentIndex(view.feature_filter.findData("url_brief"))
    assert [r.id for r in all_rows(qtbot, view)] == [wanted[1]]
    view.feature_filter.setCurrentIndex(0)
    qtbot.keyClicks(view.model_filter, "IMAGEN")
    qtbot.waitUntil(lambda: view.model.filter.model == "IMAGEN", timeout=WAIT_MS)
    assert [r.id for r in all_rows(qtbot, view)] == [wanted[0]]

    # Double-click asks for the account.
    view.model_filter.clear()
    qtbot.waitUntil(lambda: view.model.filter.model is None, timeout=WAIT_MS)
    all_rows(qtbot, view)
    index = view.model.index(row_of(view, wanted[1]), 0)
    with qtbot.waitSignal(view.open_account_requested, timeout=WAIT_MS) as opened:
        view.table.doubleClicked.emit(index)
    assert opened.args == [beta]


def test_refund_from_the_failures_view_removes_the_row(
    qtbot: QtBot, world: World, open_view: Callable[..., Any]
) -> None:
    w = world
    beta = open_account(w.db, w.platform, name="Beta Shop", email="hi@beta.test")
    mine = charge(w, 40, at=w.at(hours=1)).charge_id
    theirs = charge(w, 8, at=w.at(hours=2), account_id=beta).charge_id
    view: FailuresView = open_view(FailuresView, w.support)
    all_rows(qtbot, view)
    button = view.refund_button
    assert not button.isEnabled()
    assert button.accessibleName() == "Refund selected charges"

    # Charges of two accounts: one account at a time.
    select_rows(view, row_of(view, mine), row_of(view, theirs))
    assert not button.isEnabled() and button.toolTip() == ONE_ACCOUNT_TIP

    select_rows(view, row_of(view, mine))
    assert button.isEnabled() and "Acme Ads" in button.toolTip()
    button.click()
    dialog = view.refund_dialog
    assert dialog is not None and dialog.isVisible()
    assert [c.id for c in dialog.charges] == [mine]
    qtbot.waitUntil(lambda: dialog.preview is not None, timeout=WAIT_MS)
    qtbot.keyClicks(dialog.ticket, "#4411")
    with qtbot.waitSignal(view.refunded, timeout=WAIT_MS) as refunded:
        dialog.ok_button.click()
        dialog.ok_button.click()
    assert refunded.args[0].status == "applied"
    qtbot.waitUntil(lambda: view.model.find_key(mine) < 0 and not view.is_loading,
                    timeout=WAIT_MS)
    assert [r.id for r in all_rows(qtbot, view)] == [theirs]
    assert fetch(w.db, select(Refund.charge_id)) == [mine]
    assert not view.refund_button.isEnabled()


# -- approvals ---------------------------------------------------------------------


def _requests(w: World) -> tuple[int, int]:
    """A support refund of a charge that did not fail, and a finance removal of more
    purchased credits than the account has (it fails when approved)."""
    ok = charge(w, 40, status="succeeded", at=w.at(hours=1)).charge_id
    r1 = refund(w, w.support, ok, ticket="#1", at=w.at(days=1)).request_id
    r2 = adjust(w, w.finance, -1_500, at=w.at(days=1, hours=1)).request_id
    assert r1 is not None and r2 is not None
    return r1, r2


def _decide(qtbot: QtBot, view: ApprovalsView, request_id: int, *, approve: bool,
            comment: str = "") -> Any:
    select_rows(view, row_of(view, request_id))
    button = view.approve_button if approve else view.reject_button
    assert button.isEnabled(), button.toolTip()
    button.click()
    dialog = view.decision_dialog
    assert dialog is not None and dialog.isVisible()
    if comment:
        qtbot.keyClicks(dialog.comment, comment)
    with qtbot.waitSignal(view.decided, timeout=WAIT_MS) as decided:
        dialog.ok_button.click()
        dialog.ok_button.click()  # a double click decides once
    loaded(qtbot, view)
    return decided.args[0]


def test_approve_a_request(qtbot: QtBot, world: World, open_view: Callable[..., Any]) -> None:
    w = world
    r1, r2 = _requests(w)
    view: ApprovalsView = open_view(ApprovalsView, w.manager)
    assert view.status_filter.currentText() == "Pending"
    assert [r.id for r in all_rows(qtbot, view)] == [r2, r1]
    row = row_of(view, r1)
    assert [cell(view, row, c) for c in (1, 2, 3, 4, 5)] == [
        "Sam Support", "Acme Ads", "Refund", "+40", "Pending"]
    assert cell(view, row, 7).startswith("Refunding a charge that did not fail")
    assert cell(view, row_of(view, r2), 4) == "\u22121,500"

    result = _decide(qtbot, view, r1, approve=True, comment="Checked the logs")
    assert result.status == "applied"
    assert [r.id for r in all_rows(qtbot, view)] == [r2]
    assert len(fetch(w.db, select(Refund))) == 1
    assert len(fetch(w.db, select(Operation).where(Operation.kind == "approve"))) == 1
    assert "approved" in view.message.text()
    stored = fetch(w.db, select(ApprovalRequest).where(ApprovalRequest.id == r1))[0]
    assert (stored.status, stored.decision_comment) == ("approved", "Checked the logs")


def test_reject_needs_a_comment_and_failure_shows_the_reason(
    qtbot: QtBot, world: World, open_view: Callable[..., Any]
) -> None:
    w = world
    r1, r2 = _requests(w)
    view: ApprovalsView = open_view(ApprovalsView, w.admin)
    all_rows(qtbot, view)

    select_rows(view, row_of(view, r1))
    view.reject_button.click()
    dialog = view.decision_dialog
    assert dialog is not None
    assert not dialog.ok_button.isEnabled()
    assert dialog.problem_label.text() == "A comment saying why is required."
    dialog.reject()
    result = _decide(qtbot, view, r1, approve=False, comment="Not a failure")
    assert result.status == "rejected"

    # Removing 1,500 of 500 purchased credits cannot apply: the request fails.
    failed = _decide(qtbot, view, r2, approve=True)
    assert failed.status == "failed"
    assert view.message.text().startswith(f"Request #{r2} could not be applied:")
    assert all_rows(qtbot, view) == []
    assert view.status.text() == "No request is waiting for approval."

    view.status_filter.setCurrentIndex(view.status_filter.findText("All"))
    qtbot.waitUntil(lambda: view.model.filter.status is None, timeout=WAIT_MS)
    rows = {r.id: r for r in all_rows(qtbot, view)}
    assert (rows[r1].status, rows[r1].comment) == ("rejected", "Not a failure")
    assert cell(view, row_of(view, r1), 9) == "Not a failure"
    reason = rows[r2].failure_reason
    assert reason and cell(view, row_of(view, r2), 9) == f"Could not be applied: {reason}"
    assert cell(view, row_of(view, r2), 8) == "Ada Admin"
    select_rows(view, row_of(view, r2))
    assert reason in view.detail.text()
    assert not view.approve_button.isEnabled()
    assert view.approve_button.toolTip() == f"Request #{r2} was already failed."


def test_a_colleague_deciding_first_is_shown(
    qtbot: QtBot, world: World, open_view: Callable[..., Any]
) -> None:
    w = world
    r1, r2 = _requests(w)
    view: ApprovalsView = open_view(ApprovalsView, w.manager)
    all_rows(qtbot, view)
    select_rows(view, row_of(view, r1))
    view.approve_button.click()
    dialog = view.decision_dialog
    assert dialog is not None
    approve(w, w.admin, r1)  # meanwhile, at another desk
    dialog.ok_button.click()
    qtbot.waitUntil(lambda: "already approved by Ada Admin" in dialog.problem_label.text(),
                    timeout=WAIT_MS)
    assert dialog.isVisible() and dialog.ok_button.isEnabled()
    dialog.cancel_button.click()
    qtbot.waitUntil(lambda: view.model.find_key(r1) < 0 and not view.is_loading,
                    timeout=WAIT_MS)
    assert [r.id for r in all_rows(qtbot, view)] == [r2]


def test_own_request_cannot_be_decided(
    qtbot: QtBot, world: World, open_view: Callable[..., Any]
) -> None:
    w = world
    r1, r2 = _requests(w)
    view: ApprovalsView = open_view(ApprovalsView, w.finance)
    all_rows(qtbot, view)
    select_rows(view, row_of(view, r2))  # finance's own
    assert not view.approve_button.isEnabled()
    assert view.approve_button.toolTip() == "You cannot approve your own request."
    assert not view.reject_button.isEnabled()
    select_rows(view, row_of(view, r1))  # support's
    assert view.approve_button.isEnabled() and view.reject_button.isEnabled()


def test_support_sees_own_requests_and_outcomes_but_cannot_decide(
    qtbot: QtBot, world: World, open_view: Callable[..., Any]
) -> None:
    w = world
    r1, r2 = _requests(w)
    view: ApprovalsView = open_view(ApprovalsView, w.support)
    role_tip = "Approving requests needs the finance, manager or admin role."
    assert [r.id for r in all_rows(qtbot, view)] == [r2, r1]
    select_rows(view, row_of(view, r2))
    for button in (view.approve_button, view.reject_button):
        assert not button.isEnabled() and button.toolTip() == role_tip

    view.only_mine.setChecked(True)
    view.status_filter.setCurrentIndex(view.status_filter.findText("All"))
    qtbot.waitUntil(lambda: view.model.filter.status is None
                    and view.model.filter.requested_by == w.support.staff_id,
                    timeout=WAIT_MS)
    assert [r.id for r in all_rows(qtbot, view)] == [r1]
    assert view.only_mine.accessibleName() and view.only_mine.toolTip()


# -- audit log ---------------------------------------------------------------------


def _audit_ids(w: World) -> list[int]:
    return list(fetch(w.db, select(AuditEvent.id).order_by(AuditEvent.at.desc(),
                                                           AuditEvent.id.desc())))


def test_audit_view_filters(qtbot: QtBot, world: World, open_view: Callable[..., Any]) -> None:
    w = world
    c = charge(w, 40).charge_id
    refund(w, w.support, c, at=w.at(days=1))
    adjust(w, w.finance, 100, at=w.at(days=2))
    view: AuditView = open_view(AuditView, w.finance, page_size=3)
    assert [r.id for r in all_rows(qtbot, view)] == _audit_ids(w)

    qtbot.waitUntil(lambda: view.staff_filter.count() > 1, timeout=WAIT_MS)
    view.staff_filter.setCurrentIndex(view.staff_filter.findData(w.support.staff_id))
    qtbot.waitUntil(lambda: view.model.query.staff_id == w.support.staff_id, timeout=WAIT_MS)
    rows = all_rows(qtbot, view)
    assert [r.action for r in rows] == ["refund"]
    assert [cell(view, 0, col) for col in (1, 2, 3, 4)] == [
        "Sam Support", "Refund", "Applied", f"Acme Ads (#{w.account_id})"]

    view.staff_filter.setCurrentIndex(0)
    view.action_filter.setCurrentIndex(view.action_filter.findData("adjustment"))
    qtbot.waitUntil(lambda: view.model.query == view.current_query()
                    and view.model.query.action == "adjustment", timeout=WAIT_MS)
    assert [r.staff_id for r in all_rows(qtbot, view)] == [w.finance.staff_id]

    view.action_filter.setCurrentIndex(0)
    qtbot.keyClicks(view.account_filter, "99999")
    qtbot.waitUntil(lambda: view.model.query.account_id == 99999, timeout=WAIT_MS)
    assert all_rows(qtbot, view) == []
    assert view.status.text() == "No event matches the filters."
    view.account_filter.clear()
    qtbot.keyClicks(view.account_filter, "x-1")  # only digits get in
    assert view.account_filter.text() == "1"


def test_audit_export(qtbot: QtBot, world: World, open_view: Callable[..., Any],
                      tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    w = world
    c = charge(w, 40).charge_id
    refund(w, w.support, c, at=w.at(days=1))
    target = tmp_path / "exports" / "refunds"
    asked: list[str] = []

    def save_as(_parent: object, caption: str, *_args: object) -> tuple[str, str]:
        asked.append(caption)
        return str(target), "CSV files (*.csv)"

    monkeypatch.setattr(QFileDialog, "getSaveFileName", save_as)
    view: AuditView = open_view(AuditView, w.manager)
    all_rows(qtbot, view)
    qtbot.waitUntil(lambda: view.action_filter.findData("refund") > 0, timeout=WAIT_MS)
    view.action_filter.setCurrentIndex(view.action_filter.findData("refund"))
    qtbot.waitUntil(lambda: view.model.query.action == "refund", timeout=WAIT_MS)
    assert view.export_button.isEnabled()
    # The folder does not exist yet: a plain message, and the button comes back.
    view.export_button.click()
    qtbot.waitUntil(lambda: not view.exporting, timeout=WAIT_MS)
    assert "does not exist" in view.message.text() and view.export_button.isEnabled()
    target.parent.mkdir()
    with qtbot.waitSignal(view.exported, timeout=WAIT_MS) as exported:
        view.export_button.click()
    assert asked == ["Export the audit log"] * 2
    written = target.with_suffix(".csv")
    assert exported.args[0].path == written and exported.args[0].rows == 1
    with written.open(encoding="utf-8-sig", newline="") as handle:
        table = list(csv.reader(handle))
    assert tuple(table[0]) == AUDIT_CSV_COLUMNS
    assert [r[4] for r in table[1:]] == ["refund"]
    assert "Exported 1 audit event to" in view.message.text()
    # The export is on record, and the list shows it once the filter allows.
    view.action_filter.setCurrentIndex(0)
    qtbot.waitUntil(lambda: view.action_filter.findData("export") > 0, timeout=WAIT_MS)
    exports = audit_page(w.db, action="export").rows
    assert [(e.outcome, e.staff_id) for e in exports] == [("applied", w.manager.staff_id)]


def test_export_disabled_for_support(
    qtbot: QtBot, world: World, open_view: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch
) -> None:
    def never(*_args: object) -> tuple[str, str]:
        raise AssertionError("no file dialog for a role that may not export")

    monkeypatch.setattr(QFileDialog, "getSaveFileName", never)
    view: AuditView = open_view(AuditView, world.support)
    button = view.export_button
    assert not button.isEnabled()
    assert button.toolTip() == "Exports need the finance, manager or admin role."
    assert button.accessibleName() == "Export the audit log to CSV"
    view.export_csv()  # even called directly, nothing happens
    assert not view.exporting


# -- how the lists look ---------------------------------------------------------------


def text_fits(view: Any, column: int, row: int = 0) -> bool:
    """Whether the cell's text fits its column, as the table draws it (no "…")."""
    text = cell(view, row, column)
    room = view.table.horizontalHeader().sectionSize(column) - 8
    return bool(view.table.fontMetrics().horizontalAdvance(text) <= room)


def test_times_and_names_fit_their_columns(
    qtbot: QtBot, world: World, open_view: Callable[..., Any]
) -> None:
    w = world
    # An evening of a two-digit day and month: the longest "11/28/2026 10:58 PM".
    evening = datetime(2026, 11, 28, 22, 58).astimezone()
    c = charge(w, 40, at=evening).charge_id
    roll_periods(w.db, w.platform, until=datetime(2026, 3, 1, tzinfo=UTC))
    failures: FailuresView = open_view(FailuresView, w.support)
    assert cell(failures, 0, 0) == fmt.local_datetime(evening)
    assert text_fits(failures, 0)
    refund(w, w.support, c, at=evening)
    audit: AuditView = open_view(AuditView, w.finance)
    rows = all_rows(qtbot, audit)
    assert all(text_fits(audit, column, r) for column in (0, 1, 2, 3)
               for r in range(len(rows)))
    approvals: ApprovalsView = open_view(ApprovalsView, w.manager)
    _requests(w)
    approvals.refresh()
    loaded(qtbot, approvals)
    assert all(text_fits(approvals, column) for column in range(6))


def test_the_approvals_table_fits_the_window(
    qtbot: QtBot, world: World, open_view: Callable[..., Any]
) -> None:
    _requests(world)
    view: ApprovalsView = open_view(ApprovalsView, world.manager)
    view.resize(1264, 600)  # a 1280-pixel main window
    qtbot.waitUntil(lambda: view.table.viewport().width() < 1264, timeout=WAIT_MS)
    header = view.table.horizontalHeader()
    used = sum(header.sectionSize(c) for c in range(header.count()))
    # Every column is in view: "Decided by" and "Outcome" need no sideways scrolling.
    assert used <= view.table.viewport().width()
    assert not view.table.horizontalScrollBar().isVisible()
    # A long free text is elided, and whole in its tooltip.
    row = all_rows(qtbot, view)[0]
    summary = view.model.index(0, 6)
    assert summary.data(Qt.ItemDataRole.ToolTipRole) == row.summary


def test_the_audit_log_names_actions_in_words(
    qtbot: QtBot, world: World, open_view: Callable[..., Any], tmp_path: Path
) -> None:
    w = world
    roll_periods(w.db, w.platform, until=datetime(2026, 3, 1, tzinfo=UTC))
    rolled = audit_page(w.db, action="roll_periods").rows
    # A plain date, not a raw timestamp.
    assert [e.detail for e in rolled] == ["Rolled 1 account to 2026-03-01"]
    view: AuditView = open_view(AuditView, w.finance)
    all_rows(qtbot, view)
    row = row_of(view, rolled[0].id)
    assert cell(view, row, 2) == "Billing period roll"
    assert cell(view, row, 5) == "Rolled 1 account to 2026-03-01"
    tip = view.model.index(row, 2).data(Qt.ItemDataRole.ToolTipRole)
    assert "roll_periods" in tip
    # The filter lists the actions by their words, and filters by their codes.
    qtbot.waitUntil(lambda: view.action_filter.findData("roll_periods") > 0, timeout=WAIT_MS)
    index = view.action_filter.findData("roll_periods")
    assert view.action_filter.itemText(index) == "Billing period roll"
    view.action_filter.setCurrentIndex(index)
    qtbot.waitUntil(lambda: view.model.query.action == "roll_periods", timeout=WAIT_MS)
    assert [r.id for r in all_rows(qtbot, view)] == [rolled[0].id]
    # An action code nobody named is shown as it is.
    assert action_label("something_new") == "something_new"
    # The CSV keeps the log's own codes.
    path = tmp_path / "audit.csv"
    with qtbot.waitSignal(view.exported, timeout=WAIT_MS):
        view.export_to(str(path))
    with path.open(encoding="utf-8-sig", newline="") as handle:
        assert [r[4] for r in list(csv.reader(handle))[1:]] == ["roll_periods"]


def test_the_lists_colours_read_on_the_dark_palette(
    qtbot: QtBot, world: World, open_view: Callable[..., Any], dark: QApplication
) -> None:
    w = world
    _requests(w)
    failed = charge(w, 40, status="succeeded", at=w.at(hours=2)).charge_id
    request = refund(w, w.support, failed, ticket="#2", at=w.at(days=2)).request_id
    approvals: ApprovalsView = open_view(ApprovalsView, w.manager)
    approvals.status_filter.setCurrentIndex(approvals.status_filter.findData(None))
    approvals_rows = all_rows(qtbot, approvals)
    assert approvals_rows
    # Coloured cells: the effects (+ and −), approved and failed statuses.
    _decide(qtbot, approvals, request or 0, approve=True)
    approvals_rows = all_rows(qtbot, approvals)
    base = approvals.table.palette().color(QPalette.ColorRole.Base)
    coloured = [approvals.model.index(r, c).data(Qt.ItemDataRole.ForegroundRole)
                for r in range(len(approvals_rows)) for c in range(10)]
    colours = {b.color().name() for b in coloured if isinstance(b, QBrush)}
    assert theme.css("danger") in colours and theme.css("success") in colours
    assert all(contrast(QColor(c), base) >= 3 for c in colours), colours

    approvals.show_message("It could not be applied.", failed=True)
    window = approvals.palette().color(QPalette.ColorRole.Window)
    shown = approvals.message.palette().color(QPalette.ColorRole.WindowText)
    assert shown == theme.color("danger") and contrast(shown, window) >= 3
    approvals.show_message("Done.", failed=False)
    shown = approvals.message.palette().color(QPalette.ColorRole.WindowText)
    assert shown == theme.color("success") and contrast(shown, window) >= 3

    # Back to light while the view is open: the message follows.
    theme.apply_theme(dark, Qt.ColorScheme.Light)
    qtbot.waitUntil(lambda: approvals.message.palette().color(QPalette.ColorRole.WindowText)
                    == QColor(theme.SEMANTIC["light"]["success"]), timeout=WAIT_MS)

    theme.apply_theme(dark, Qt.ColorScheme.Dark)
    audit: AuditView = open_view(AuditView, w.finance)
    assert all_rows(qtbot, audit)
    denied = [audit.model.index(r, 3).data(Qt.ItemDataRole.ForegroundRole)
              for r in range(audit.model.rowCount())]
    base = audit.table.palette().color(QPalette.ColorRole.Base)
    assert all(contrast(b.color(), base) >= 3 for b in denied if isinstance(b, QBrush))
