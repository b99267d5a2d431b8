"""The approvals queue: requests waiting for a second pair of eyes, and their outcomes.

:class:`ApprovalsView` lists approval requests newest first
(``services.worklists.requests_page``): pending ones by default, or all, approved,
rejected or failed ones, optionally only the signed-in staff member's own. Each row
says who asked, for which account, what and with what effect on the balance, why it
needed approval, and what became of it (who decided, when, their comment, or why an
approved request could not be applied).

"Approve…" and "Reject…" open a :class:`DecisionDialog` asking for a comment (required
to reject) and carrying one idempotency key for its whole life, so a double click or a
retry after a dropped connection decides once. Nobody decides on their own request,
and roles without approval rights (support) see the queue, their requests and the
outcomes, with both buttons disabled and the reason in their tooltips; the services
check both rules again. Double-clicking a row asks the main window to open its
account. Every read and write goes through the window's
:class:`~credits_desktop.ui.workers.Worker`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from html import escape
from typing import Any, Final

from PySide6.QtCore import QModelIndex, Qt, Signal, Slot
from PySide6.QtGui import QBrush, QCloseEvent, QKeyEvent, QShowEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from credits_desktop.domain.permissions import Action, Verdict, decide_approval
from credits_desktop.services import validation as v
from credits_desktop.services.approvals import approve_request, reject_request
from credits_desktop.services.errors import InvalidInput
from credits_desktop.services.operations import Actor
from credits_desktop.services.paging import Cursor, Page
from credits_desktop.services.results import OperationResult
from credits_desktop.services.worklists import RequestRow, requests_page
from credits_desktop.store.database import Database

from . import formatting as fmt
from .detail_models import signed
from .failures_view import MESSAGE_STYLE, NOTICE_STYLE, worklist_table
from .role_gate import role_decision
from .table_models import ROW_ROLE, PagedModel, greyed
from .workers import Worker

__all__ = [
    "APPROVALS_PAGE_SIZE",
    "STATUS_CHOICES",
    "ApprovalsView",
    "DecisionDialog",
    "RequestFilter",
    "RequestsModel",
]

APPROVALS_PAGE_SIZE: Final = 100

# The status filter: label and the status it lists (None: every status).
STATUS_CHOICES: Final[tuple[tuple[str, str | None], ...]] = (
    ("Pending", "pending"),
    ("All", None),
    ("Approved", "approved"),
    ("Rejected", "rejected"),
    ("Failed", "failed"),
)
STATUS_LABELS: Final = {
    "pending": "Pending",
    "approved": "Approved",
    "rejected": "Rejected",
    "failed": "Failed",
}
KIND_LABELS: Final = {
    "refund": "Refund",
    "adjustment": "Adjustment",
    "reversal": "Reversal",
}

SELECT_APPROVE_TIP = "Select a pending request to approve it."
SELECT_REJECT_TIP = "Select a pending request to reject it."
OWN_REJECT_TIP = "You cannot reject your own request; a colleague decides on it."
_ERROR_STYLE = "color: #a4161a;"


@dataclass(frozen=True)
class RequestFilter:
    """Which requests to list: a status (None for all), and whose."""

    status: str | None = "pending"
    requested_by: int | None = None


COL_REQUESTED, COL_BY, COL_ACCOUNT, COL_KIND, COL_EFFECT, COL_STATUS, COL_SUMMARY, \
    COL_WHY, COL_DECIDED_BY, COL_OUTCOME = range(10)


def effect_text(row: RequestRow) -> str:
    """The change to the account's available credits: ``+40``, ``−1,500``."""
    return signed(row.effect)


def outcome_text(row: RequestRow) -> str:
    """What became of the request, in a few words."""
    if row.status == "failed":
        return f"Could not be applied: {row.failure_reason or 'no reason recorded'}"
    if row.status == "pending":
        return "Waiting for a colleague"
    return row.comment or ""


class RequestsModel(PagedModel):
    """Approval requests, newest first, filtered in SQL."""

    COLUMNS = (
        ("Requested", "When the request was made (local time; UTC in the tooltip)"),
        ("Requested by", "The staff member who asked"),
        ("Account", "The customer account it changes"),
        ("What", "The kind of change"),
        ("Effect", "Credits the account gains (+) or loses (−) if it is applied"),
        ("Status", "Pending, approved, rejected, or failed (approved but could not apply)"),
        ("Summary", "What was asked"),
        ("Why approval", "Why the change needed a colleague's approval"),
        ("Decided by", "Who approved or rejected it"),
        ("Outcome", "The decision's comment, or why an approved request could not apply"),
    )
    NUMERIC = frozenset({COL_EFFECT})

    def __init__(self, db: Database, worker: Worker, parent: Any = None, *,
                 page_size: int = APPROVALS_PAGE_SIZE) -> None:
        super().__init__(db, worker, parent, page_size=page_size)
        self._filter = RequestFilter()

    @property
    def filter(self) -> RequestFilter:
        return self._filter

    def set_filter(self, request_filter: RequestFilter) -> None:
        """List the requests matching ``request_filter``, from the first page."""
        if self._started and request_filter == self._filter and not self._failed:
            return
        self._filter = request_filter
        self.refresh()

    def answers(self) -> object:
        return self._filter

    def reader(self) -> Callable[[Database, Cursor | None, int], Page[Any]]:
        f = self._filter

        def read(db: Database, after: Cursor | None, limit: int) -> Page[Any]:
            return requests_page(db, status=f.status, requested_by=f.requested_by,
                                 after=after, limit=limit)

        return read

    def display(self, row: RequestRow, column: int) -> str | None:
        if column == COL_REQUESTED:
            return fmt.local_datetime(row.requested_at)
        if column == COL_BY:
            return row.requested_by_name
        if column == COL_ACCOUNT:
            return row.account_name
        if column == COL_KIND:
            return KIND_LABELS.get(row.kind, row.kind)
        if column == COL_EFFECT:
            return effect_text(row)
        if column == COL_SUMMARY:
            return row.summary
        if column == COL_WHY:
            return row.why
        if column == COL_STATUS:
            return STATUS_LABELS.get(row.status, row.status)
        if column == COL_DECIDED_BY:
            return row.decided_by_name or ""
        if column == COL_OUTCOME:
            return outcome_text(row)
        return None

    def tooltip(self, row: RequestRow, column: int) -> str | None:
        if column == COL_REQUESTED:
            return f"{fmt.utc_datetime(row.requested_at)}\nRequest #{row.id}"
        if column == COL_ACCOUNT:
            return f"Account #{row.account_id} (double-click to open it)"
        if column == COL_DECIDED_BY and row.decided_at is not None:
            return f"Decided {fmt.local_datetime(row.decided_at)} " \
                   f"({fmt.utc_datetime(row.decided_at)})"
        if column in (COL_SUMMARY, COL_WHY, COL_OUTCOME):
            return self.display(row, column) or None
        return None

    def foreground(self, row: RequestRow, column: int) -> QBrush | None:
        if column == COL_STATUS and row.status == "failed":
            return QBrush(Qt.GlobalColor.darkRed)
        if column == COL_STATUS and row.status == "approved":
            return QBrush(Qt.GlobalColor.darkGreen)
        if column == COL_EFFECT:
            return QBrush(Qt.GlobalColor.darkRed if row.effect < 0 else Qt.GlobalColor.darkGreen)
        if row.status == "rejected":
            return greyed()
        return None


def request_details(row: RequestRow) -> str:
    """Everything about a request, as rich text for the detail pane and the dialog."""
    lines = [
        f"<b>Request #{row.id}</b> · {escape(KIND_LABELS.get(row.kind, row.kind))} · "
        f"{escape(row.account_name)} (account #{row.account_id}) · "
        f"effect <b>{escape(effect_text(row))}</b> credits",
        escape(row.summary),
        f"Asked by {escape(row.requested_by_name)} on "
        f"{escape(fmt.local_datetime(row.requested_at))}: {escape(row.reason)}"
        + (f" — “{escape(row.note)}”" if row.note else ""),
    ]
    if row.why:
        lines.append(f"Why approval: {escape(row.why)}")
    status = STATUS_LABELS.get(row.status, row.status)
    if row.status == "pending":
        lines.append("Status: Pending, waiting for a colleague.")
    else:
        by = f" by {escape(row.decided_by_name)}" if row.decided_by_name else ""
        when = f" on {escape(fmt.local_datetime(row.decided_at))}" if row.decided_at else ""
        outcome = f"Status: <b>{escape(status)}</b>{by}{when}."
        if row.comment:
            outcome += f" Comment: “{escape(row.comment)}”"
        if row.status == "failed" and row.failure_reason:
            outcome += f" It could not be applied: {escape(row.failure_reason)}"
        lines.append(outcome)
    return "<br>".join(lines)


class DecisionDialog(QDialog):
    """Approve or reject one request with a comment (required to reject).

    One idempotency key for the dialog's whole life: OK pressed twice, or again after
    a dropped connection, decides once.
    """

    # The OperationResult of the decision, once the database has it.
    decided = Signal(object)

    def __init__(
        self,
        db: Database,
        actor: Actor,
        request: RequestRow,
        *,
        approve: bool,
        worker: Worker,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._db = db
        self._actor = actor
        self._worker = worker
        self.request = request
        self.approve = approve
        verb = "approve" if approve else "reject"
        self.idempotency_key = f"{verb}-{uuid.uuid4()}"
        self.outcome: OperationResult | None = None
        # The last refusal or failure the database answered with ("" for none).
        self.last_error = ""
        self._busy = False
        self.setObjectName("decisionDialog")
        self.setWindowTitle(f"{verb.capitalize()} request #{request.id}")
        self.setMinimumWidth(520)

        self.details = QLabel(request_details(request))
        self.details.setObjectName("decisionDetails")
        self.details.setTextFormat(Qt.TextFormat.RichText)
        self.details.setWordWrap(True)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.details.setAccessibleName("The request")

        if approve:
            explain = ("Approving applies the change at once. If the account no longer "
                       "allows it, the request is marked failed with the reason and "
                       "nothing changes.")
        else:
            explain = "Rejecting changes nothing; the requester sees your comment."
        self.explain = QLabel(explain)
        self.explain.setWordWrap(True)

        self.comment = QPlainTextEdit()
        self.comment.setObjectName("decisionComment")
        self.comment.setAccessibleName("Comment")
        self.comment.setToolTip(
            "Why you approve (optional)" if approve else "Why you reject it (required)"
        )
        self.comment.setPlaceholderText("Optional comment" if approve
                                        else "Say why (required)")
        self.comment.setTabChangesFocus(True)
        self.comment.setFixedHeight(self.comment.fontMetrics().lineSpacing() * 4)
        self.comment.textChanged.connect(self.update_state)

        self.problem_label = QLabel()
        self.problem_label.setObjectName("decisionProblem")
        self.problem_label.setWordWrap(True)
        self.problem_label.setStyleSheet(_ERROR_STYLE)
        self.problem_label.setAccessibleName("What still needs attention")

        self.buttons = QDialogButtonBox()
        self.ok_button = QPushButton(f"{verb.capitalize()} request #{request.id}")
        self.ok_button.setObjectName("confirmDecision")
        self.ok_button.setAccessibleName(f"{verb.capitalize()} the request")
        self.ok_button.setDefault(True)
        self.buttons.addButton(self.ok_button, QDialogButtonBox.ButtonRole.AcceptRole)
        cancel = self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        assert cancel is not None
        self.cancel_button = cancel
        self.cancel_button.setObjectName("cancelDecision")
        self.cancel_button.setAccessibleName("Cancel without deciding")
        self.cancel_button.setToolTip("Close without deciding")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addWidget(self.details)
        layout.addWidget(self.explain)
        comment_label = QLabel("C&omment:")
        comment_label.setBuddy(self.comment)
        layout.addWidget(comment_label)
        layout.addWidget(self.comment)
        layout.addWidget(self.problem_label)
        layout.addWidget(self.buttons)
        self.comment.setFocus()
        self.update_state()

    @property
    def busy(self) -> bool:
        return self._busy

    def form_problem(self) -> str | None:
        try:
            if self.approve:
                v.text(self.comment.toPlainText(), "comment", "The comment",
                       max_length=v.NOTE_MAX, required=False)
            else:
                v.required_text(self.comment.toPlainText(), "comment",
                                "A comment saying why", max_length=v.NOTE_MAX)
        except InvalidInput as exc:
            return exc.message
        return None

    @Slot()
    def update_state(self) -> None:
        problem = self.form_problem() or ""
        self.problem_label.setText(problem)
        self.problem_label.setVisible(bool(problem))
        self.ok_button.setEnabled(not problem and not self._busy)
        self.ok_button.setToolTip(problem or self.ok_button.text())
        self.cancel_button.setEnabled(not self._busy)

    def submit_work(self) -> Callable[[], OperationResult]:
        """The decision itself, with this dialog's idempotency key; runs in a worker."""
        db, actor, request_id, key = (self._db, self._actor, self.request.id,
                                      self.idempotency_key)
        comment = self.comment.toPlainText()
        if self.approve:
            return lambda: approve_request(db, actor, request_id=request_id,
                                           idempotency_key=key, comment=comment)
        return lambda: reject_request(db, actor, request_id=request_id, comment=comment,
                                      idempotency_key=key)

    def accept(self) -> None:
        # Enter, a double click or a second press while the first is on its way: once.
        if self._busy or not self.ok_button.isEnabled():
            return
        self._busy = True
        self.ok_button.setText("Saving…")
        self.update_state()
        job = self._worker.submit(self.submit_work())
        job.succeeded.connect(self._submitted)
        job.failed.connect(self._submit_failed)

    @Slot(object)
    def _submitted(self, result: OperationResult) -> None:
        self._busy = False
        self.outcome = result
        self.decided.emit(result)
        super().accept()

    @Slot(str)
    def _submit_failed(self, message: str) -> None:
        # The key stays: pressing OK again after a dropped connection decides once.
        self._busy = False
        self.last_error = message
        verb = "Approve" if self.approve else "Reject"
        self.ok_button.setText(f"{verb} request #{self.request.id}")
        self.update_state()
        self.problem_label.setText(message)
        self.problem_label.setVisible(True)

    def reject(self) -> None:
        if self._busy:
            return  # the decision is on its way; its answer must be seen
        super().reject()

    def closeEvent(self, event: QCloseEvent) -> None:
        if self._busy:
            event.ignore()
            return
        super().closeEvent(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if self._busy and event.key() == Qt.Key.Key_Escape:
            return
        super().keyPressEvent(event)


class ApprovalsView(QWidget):
    """The approvals queue (see the module docstring).

    The list is read the first time the view is shown (or on :meth:`refresh`).
    """

    # The account of the double-clicked request, by id.
    open_account_requested = Signal(int)
    # The OperationResult of a decision made here (applied, rejected or failed).
    decided = Signal(object)

    def __init__(
        self,
        db: Database,
        worker: Worker,
        actor: Actor,
        parent: QWidget | None = None,
        *,
        page_size: int = APPROVALS_PAGE_SIZE,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("approvalsView")
        self._db = db
        self._worker = worker
        self._actor = actor
        self.decision_dialog: DecisionDialog | None = None

        self.model = RequestsModel(db, worker, self, page_size=page_size)

        self.status_filter = QComboBox()
        self.status_filter.setObjectName("approvalsStatus")
        self.status_filter.setAccessibleName("Request status filter")
        self.status_filter.setToolTip("Which requests to list, by status")
        for label, status in STATUS_CHOICES:
            self.status_filter.addItem(label, status)
        self.status_filter.currentIndexChanged.connect(self._filters_changed)

        self.only_mine = QCheckBox("Only my requests")
        self.only_mine.setObjectName("onlyMine")
        self.only_mine.setAccessibleName("Only my requests")
        self.only_mine.setToolTip("List only the requests you made, to follow their outcome")
        self.only_mine.toggled.connect(self._filters_changed)

        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.setObjectName("approvalsRefresh")
        self.refresh_button.setAccessibleName("Refresh the requests")
        self.refresh_button.setToolTip("Read the list again")
        self.refresh_button.clicked.connect(self.refresh)

        self.approve_button = QPushButton("Approve…")
        self.approve_button.setObjectName("approveRequest")
        self.approve_button.setAccessibleName("Approve the selected request")
        self.approve_button.clicked.connect(self.approve_selected)
        self.reject_button = QPushButton("Reject…")
        self.reject_button.setObjectName("rejectRequest")
        self.reject_button.setAccessibleName("Reject the selected request")
        self.reject_button.clicked.connect(self.reject_selected)

        self.table = worklist_table(
            self.model, "approvalsTable", "Approval requests",
            "Approval requests, newest first; double-click one to open its account",
            multi=False,
        )
        self.table.doubleClicked.connect(self._open_account)
        self.table.enter_pressed.connect(self._open_account)
        self._size_columns()
        self.table.selectionModel().selectionChanged.connect(self._selection_changed)
        self.model.modelReset.connect(self._selection_changed)

        self.detail = QLabel()
        self.detail.setObjectName("requestDetail")
        self.detail.setTextFormat(Qt.TextFormat.RichText)
        self.detail.setWordWrap(True)
        self.detail.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.detail.setAccessibleName("The selected request")

        self.status = QLabel()
        self.status.setObjectName("approvalsStatusText")
        self.message = QLabel()
        self.message.setObjectName("approvalsMessage")
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.message.hide()

        filters = QHBoxLayout()
        status_label = QLabel("&Status:")
        status_label.setBuddy(self.status_filter)
        filters.addWidget(status_label)
        filters.addWidget(self.status_filter)
        filters.addWidget(self.only_mine)
        filters.addStretch(1)
        filters.addWidget(self.refresh_button)
        actions = QHBoxLayout()
        actions.addWidget(self.status, 1)
        actions.addWidget(self.approve_button)
        actions.addWidget(self.reject_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.addLayout(filters)
        layout.addWidget(self.message)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.detail)
        layout.addLayout(actions)

        self.model.page_loaded.connect(self._show_count)
        self.model.loading_changed.connect(self._show_count)
        self.model.load_failed.connect(self._load_failed)
        self._selection_changed()

    # -- what the view does -------------------------------------------------------------

    @Slot()
    def refresh(self) -> None:
        """Read the list again (as many rows as are loaded)."""
        wanted = self._current_filter()
        if self.model.started and self.model.filter == wanted:
            self.model.refresh(rows=self.model.rowCount())
        else:
            self.model.set_filter(wanted)

    def shutdown(self) -> None:
        """The tab closes: results still on their way are not wanted."""
        self.model.discard()

    @property
    def is_loading(self) -> bool:
        return self.model.is_loading

    def selected_request(self) -> RequestRow | None:
        rows = self.table.selectionModel().selectedRows()
        if len(rows) != 1:
            return None
        row = self.model.row_at(rows[0].row())
        return row if isinstance(row, RequestRow) else None

    @Slot()
    def approve_selected(self) -> None:
        self._decide(approve=True)

    @Slot()
    def reject_selected(self) -> None:
        self._decide(approve=False)

    def _size_columns(self) -> None:
        metrics = self.fontMetrics()
        samples = {
            COL_REQUESTED: "2026-12-31 23:59", COL_BY: "Ada Administrator",
            COL_ACCOUNT: "Andersson & O'Brien Co.", COL_KIND: "Adjustment",
            COL_EFFECT: "\u221210,000", COL_SUMMARY: "Refund 40 credits on 1 charge(s), ticket",
            COL_WHY: "Refunds above 500 credits need approval by", COL_STATUS: "Rejected",
            COL_DECIDED_BY: "Ada Administrator",
        }
        header = self.table.horizontalHeader()
        for column, sample in samples.items():
            title = str(self.model.headerData(column, Qt.Orientation.Horizontal))
            header.resizeSection(column, max(metrics.horizontalAdvance(sample),
                                             header.fontMetrics().horizontalAdvance(title)) + 24)

    # -- decisions ----------------------------------------------------------------------

    def _decide(self, *, approve: bool) -> None:
        button = self.approve_button if approve else self.reject_button
        request = self.selected_request()
        if request is None or not button.isEnabled():
            return
        dialog = DecisionDialog(self._db, self._actor, request, approve=approve,
                                worker=self._worker, parent=self)
        dialog.decided.connect(self._decided)
        dialog.finished.connect(lambda _code, d=dialog: self._dialog_closed(d))
        self.decision_dialog = dialog
        dialog.open()

    @Slot(object)
    def _decided(self, result: OperationResult) -> None:
        failed = result.status == "failed"
        self.message.setStyleSheet(MESSAGE_STYLE if failed else NOTICE_STYLE)
        self.message.setText(result.message)
        self.message.show()
        self.model.refresh(rows=self.model.rowCount())
        self.decided.emit(result)

    def _dialog_closed(self, dialog: DecisionDialog) -> None:
        if self.decision_dialog is dialog:
            self.decision_dialog = None
        if dialog.outcome is None and dialog.last_error:
            # Refused (a colleague decided first, say): show the request as it now is.
            self.model.refresh(rows=self.model.rowCount())
        dialog.deleteLater()

    def _button_states(self, request: RequestRow | None) -> tuple[tuple[bool, str], ...]:
        role = role_decision(self._actor, Action.APPROVE)
        if role.verdict is Verdict.DENY:
            return (False, role.reason), (False, role.reason)
        if request is None:
            return (False, SELECT_APPROVE_TIP), (False, SELECT_REJECT_TIP)
        own = decide_approval(self._actor.role, self._actor.staff_id, request.requested_by)
        if not own.allowed:
            return (False, own.reason), (False, OWN_REJECT_TIP)
        if request.status != "pending":
            status = STATUS_LABELS.get(request.status, request.status).lower()
            tip = f"Request #{request.id} was already {status}."
            return (False, tip), (False, tip)
        return (
            (True, f"Approve request #{request.id}: it applies at once if the account "
                   "still allows it."),
            (True, f"Reject request #{request.id} (say why in a comment)."),
        )

    # -- events -------------------------------------------------------------------------

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if not self.model.started:
            self.refresh()

    @Slot()
    def _selection_changed(self) -> None:
        request = self.selected_request()
        (approve_on, approve_tip), (reject_on, reject_tip) = self._button_states(request)
        for button, on, tip in ((self.approve_button, approve_on, approve_tip),
                                (self.reject_button, reject_on, reject_tip)):
            button.setEnabled(on)
            button.setToolTip(tip)
            button.setAccessibleDescription(tip)
        if request is None:
            self.detail.setText("Select a request to see everything about it.")
        else:
            self.detail.setText(request_details(request))

    @Slot(QModelIndex)
    def _open_account(self, index: QModelIndex) -> None:
        row = index.data(ROW_ROLE)
        if isinstance(row, RequestRow):
            self.open_account_requested.emit(row.account_id)

    @Slot()
    def _show_count(self) -> None:
        count = self.model.rowCount()
        if self.model.is_loading:
            text = "Loading the requests…"
        elif count == 0 and self.model.started and not self.model.has_failed:
            text = "No request to show." if self.model.filter.status != "pending" \
                else "No request is waiting for approval."
        else:
            more = "" if self.model.is_complete else " (scroll for more)"
            text = f"{count:,} request{'s' if count != 1 else ''} shown{more}"
        self.status.setText(text)

    @Slot(str)
    def _load_failed(self, message: str) -> None:
        self.message.setStyleSheet(MESSAGE_STYLE)
        self.message.setText(message)
        self.message.show()
        self._show_count()

    def _current_filter(self) -> RequestFilter:
        return RequestFilter(
            status=self.status_filter.currentData(),
            requested_by=self._actor.staff_id if self.only_mine.isChecked() else None,
        )

    @Slot()
    def _filters_changed(self) -> None:
        if not self.model.started:
            return  # the first read, when shown, takes the filters as they are then
        self.message.hide()
        self.model.set_filter(self._current_filter())
