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

The frame (filters, paging, status, messages) is :class:`~credits_desktop.ui.work_list.
WorkListView`'s. Every word shown goes through Qt's translation; what the services
wrote (summaries, reasons, comments, refusals) is shown as written.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from html import escape
from typing import Any, Final

from PySide6.QtCore import QCoreApplication, QEvent, Qt, Signal, Slot
from PySide6.QtGui import QBrush, QCloseEvent, QKeyEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
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
from . import theme
from .detail_models import signed
from .i18n import QT_TRANSLATE_NOOP, counted
from .role_gate import role_decision
from .table_models import greyed
from .work_list import (
    WorkListModel,
    WorkListView,
    datetime_width,
    size_columns,
    tone_sheet,
    worklist_table,
)
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

# The words of these tables are translated where shown (context "Approvals").
# The status filter: label and the status it lists (None: every status).
STATUS_CHOICES: Final[tuple[tuple[str, str | None], ...]] = (
    (QT_TRANSLATE_NOOP("Approvals", "Pending"), "pending"),
    (QT_TRANSLATE_NOOP("Approvals", "All"), None),
    (QT_TRANSLATE_NOOP("Approvals", "Approved"), "approved"),
    (QT_TRANSLATE_NOOP("Approvals", "Rejected"), "rejected"),
    (QT_TRANSLATE_NOOP("Approvals", "Failed"), "failed"),
)
STATUS_LABELS: Final = {
    "pending": QT_TRANSLATE_NOOP("Approvals", "Pending"),
    "approved": QT_TRANSLATE_NOOP("Approvals", "Approved"),
    "rejected": QT_TRANSLATE_NOOP("Approvals", "Rejected"),
    "failed": QT_TRANSLATE_NOOP("Approvals", "Failed"),
}
KIND_LABELS: Final = {
    "refund": QT_TRANSLATE_NOOP("Approvals", "Refund"),
    "adjustment": QT_TRANSLATE_NOOP("Approvals", "Adjustment"),
    "reversal": QT_TRANSLATE_NOOP("Approvals", "Reversal"),
}
# Why a decided request has both buttons disabled, by its status ({id}: the request).
ALREADY_DECIDED: Final = {
    "approved": QT_TRANSLATE_NOOP("Approvals", "Request #{id} was already approved."),
    "rejected": QT_TRANSLATE_NOOP("Approvals", "Request #{id} was already rejected."),
    "failed": QT_TRANSLATE_NOOP("Approvals", "Request #{id} was already failed."),
}

SELECT_APPROVE_TIP = QT_TRANSLATE_NOOP("Approvals", "Select a pending request to approve it.")
SELECT_REJECT_TIP = QT_TRANSLATE_NOOP("Approvals", "Select a pending request to reject it.")
OWN_REJECT_TIP = QT_TRANSLATE_NOOP(
    "Approvals", "You cannot reject your own request; a colleague decides on it.")


def _tr(text: str) -> str:
    return QCoreApplication.translate("Approvals", text)


def _label(labels: dict[str, str], code: str) -> str:
    """The translated label of ``code`` (a status or kind), or the code itself."""
    label = labels.get(code)
    return _tr(label) if label is not None else code


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
        return _tr("Could not be applied: {reason}").format(
            reason=row.failure_reason or _tr("no reason recorded"))
    if row.status == "pending":
        return _tr("Waiting for a colleague")
    return row.comment or ""


class RequestsModel(WorkListModel):
    """Approval requests, newest first, filtered in SQL."""

    TR_CONTEXT = "RequestsModel"
    COLUMNS = (
        (QT_TRANSLATE_NOOP("RequestsModel", "Requested"),
         QT_TRANSLATE_NOOP("RequestsModel",
                           "When the request was made (local time; UTC in the tooltip)")),
        (QT_TRANSLATE_NOOP("RequestsModel", "Requested by"),
         QT_TRANSLATE_NOOP("RequestsModel", "The staff member who asked")),
        (QT_TRANSLATE_NOOP("RequestsModel", "Account"),
         QT_TRANSLATE_NOOP("RequestsModel", "The customer account it changes")),
        (QT_TRANSLATE_NOOP("RequestsModel", "What"),
         QT_TRANSLATE_NOOP("RequestsModel", "The kind of change")),
        (QT_TRANSLATE_NOOP("RequestsModel", "Effect"),
         QT_TRANSLATE_NOOP("RequestsModel",
                           "Credits the account gains (+) or loses (−) if it is applied")),
        (QT_TRANSLATE_NOOP("RequestsModel", "Status"),
         QT_TRANSLATE_NOOP("RequestsModel",
                           "Pending, approved, rejected, or failed (approved but could not "
                           "apply)")),
        (QT_TRANSLATE_NOOP("RequestsModel", "Summary"),
         QT_TRANSLATE_NOOP("RequestsModel", "What was asked")),
        (QT_TRANSLATE_NOOP("RequestsModel", "Why approval"),
         QT_TRANSLATE_NOOP("RequestsModel", "Why the change needed a colleague's approval")),
        (QT_TRANSLATE_NOOP("RequestsModel", "Decided by"),
         QT_TRANSLATE_NOOP("RequestsModel", "Who approved or rejected it")),
        (QT_TRANSLATE_NOOP("RequestsModel", "Outcome"),
         QT_TRANSLATE_NOOP("RequestsModel",
                           "The decision's comment, or why an approved request could not apply")),
    )
    NUMERIC = frozenset({COL_EFFECT})

    def __init__(self, db: Database, worker: Worker, parent: Any = None, *,
                 page_size: int = APPROVALS_PAGE_SIZE) -> None:
        super().__init__(db, worker, parent, page_size=page_size, wanted=RequestFilter())

    @property
    def filter(self) -> RequestFilter:
        wanted = self.wanted
        assert isinstance(wanted, RequestFilter)
        return wanted

    def set_filter(self, request_filter: RequestFilter) -> None:
        """List the requests matching ``request_filter``, from the first page."""
        self.ask(request_filter)

    def reader(self) -> Callable[[Database, Cursor | None, int], Page[Any]]:
        f = self.filter

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
            return _label(KIND_LABELS, row.kind)
        if column == COL_EFFECT:
            return effect_text(row)
        if column == COL_SUMMARY:
            return row.summary
        if column == COL_WHY:
            return row.why
        if column == COL_STATUS:
            return _label(STATUS_LABELS, row.status)
        if column == COL_DECIDED_BY:
            return row.decided_by_name or ""
        if column == COL_OUTCOME:
            return outcome_text(row)
        return None

    def tooltip(self, row: RequestRow, column: int) -> str | None:
        if column == COL_REQUESTED:
            return self.tr("{utc}\nRequest #{id}").format(
                utc=fmt.utc_datetime(row.requested_at), id=row.id)
        if column == COL_ACCOUNT:
            return self.tr("Account #{id} (double-click to open it)").format(id=row.account_id)
        if column == COL_DECIDED_BY and row.decided_at is not None:
            return self.tr("Decided {local} ({utc})").format(
                local=fmt.local_datetime(row.decided_at), utc=fmt.utc_datetime(row.decided_at))
        if column in (COL_SUMMARY, COL_WHY, COL_OUTCOME):
            return self.display(row, column) or None
        return None

    def foreground(self, row: RequestRow, column: int) -> QBrush | None:
        # The palette's own red and green: readable in light and dark alike.
        if column == COL_STATUS and row.status == "failed":
            return QBrush(theme.color("danger"))
        if column == COL_STATUS and row.status == "approved":
            return QBrush(theme.color("success"))
        if column == COL_EFFECT:
            return QBrush(theme.color("danger" if row.effect < 0 else "success"))
        if row.status == "rejected":
            return greyed()
        return None


def request_details(row: RequestRow) -> str:
    """Everything about a request, as rich text for the detail pane and the dialog."""
    asked = _tr("Asked by {who} on {when}: {reason}").format(
        who=escape(row.requested_by_name), when=escape(fmt.local_datetime(row.requested_at)),
        reason=escape(row.reason))
    if row.note:
        asked = _tr("{asked} — “{note}”").format(asked=asked, note=escape(row.note))
    lines = [
        _tr("<b>Request #{id}</b> · {kind} · {account} (account #{account_id}) · effect "
            "<b>{effect}</b> credits").format(
                id=row.id, kind=escape(_label(KIND_LABELS, row.kind)),
                account=escape(row.account_name), account_id=row.account_id,
                effect=escape(effect_text(row))),
        escape(row.summary),
        asked,
    ]
    if row.why:
        lines.append(_tr("Why approval: {why}").format(why=escape(row.why)))
    status = _label(STATUS_LABELS, row.status)
    if row.status == "pending":
        lines.append(_tr("Status: Pending, waiting for a colleague."))
    else:
        outcome = _tr("Status: <b>{status}</b>").format(status=escape(status))
        if row.decided_by_name:
            outcome = _tr("{outcome} by {who}").format(outcome=outcome,
                                                       who=escape(row.decided_by_name))
        if row.decided_at:
            outcome = _tr("{outcome} on {when}").format(
                outcome=outcome, when=escape(fmt.local_datetime(row.decided_at)))
        outcome += "."
        if row.comment:
            outcome += _tr(" Comment: “{comment}”").format(comment=escape(row.comment))
        if row.status == "failed" and row.failure_reason:
            outcome += _tr(" It could not be applied: {reason}").format(
                reason=escape(row.failure_reason))
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
        self.idempotency_key = f"{'approve' if approve else 'reject'}-{uuid.uuid4()}"
        self.outcome: OperationResult | None = None
        # The last refusal or failure the database answered with ("" for none).
        self.last_error = ""
        self._busy = False
        self.setObjectName("decisionDialog")
        self.setWindowTitle(self._ok_text())
        self.setMinimumWidth(520)

        self.details = QLabel(request_details(request))
        self.details.setObjectName("decisionDetails")
        self.details.setTextFormat(Qt.TextFormat.RichText)
        self.details.setWordWrap(True)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.details.setAccessibleName(self.tr("The request"))

        if approve:
            explain = self.tr("Approving applies the change at once. If the account no longer "
                              "allows it, the request is marked failed with the reason and "
                              "nothing changes.")
        else:
            explain = self.tr("Rejecting changes nothing; the requester sees your comment.")
        self.explain = QLabel(explain)
        self.explain.setWordWrap(True)

        self.comment = QPlainTextEdit()
        self.comment.setObjectName("decisionComment")
        self.comment.setAccessibleName(self.tr("Comment"))
        self.comment.setToolTip(
            self.tr("Why you approve (optional)") if approve
            else self.tr("Why you reject it (required)"))
        self.comment.setPlaceholderText(self.tr("Optional comment") if approve
                                        else self.tr("Say why (required)"))
        self.comment.setTabChangesFocus(True)
        self.comment.setFixedHeight(self.comment.fontMetrics().lineSpacing() * 4)
        self.comment.textChanged.connect(self.update_state)

        self.problem_label = QLabel()
        self.problem_label.setObjectName("decisionProblem")
        self.problem_label.setWordWrap(True)
        theme.set_style_sheet(self.problem_label, tone_sheet("danger"))
        self.problem_label.setAccessibleName(self.tr("What still needs attention"))

        self.buttons = QDialogButtonBox()
        self.ok_button = QPushButton(self._ok_text())
        self.ok_button.setObjectName("confirmDecision")
        self.ok_button.setAccessibleName(self.tr("Approve the request") if approve
                                         else self.tr("Reject the request"))
        self.ok_button.setDefault(True)
        self.buttons.addButton(self.ok_button, QDialogButtonBox.ButtonRole.AcceptRole)
        cancel = self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        assert cancel is not None
        self.cancel_button = cancel
        self.cancel_button.setObjectName("cancelDecision")
        self.cancel_button.setAccessibleName(self.tr("Cancel without deciding"))
        self.cancel_button.setToolTip(self.tr("Close without deciding"))
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addWidget(self.details)
        layout.addWidget(self.explain)
        comment_label = QLabel(self.tr("C&omment:"))
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

    def _ok_text(self) -> str:
        """ "Approve request #12" or "Reject request #12": the title and the OK button."""
        if self.approve:
            return self.tr("Approve request #{id}").format(id=self.request.id)
        return self.tr("Reject request #{id}").format(id=self.request.id)

    def form_problem(self) -> str | None:
        try:
            # The services' sentences ("… is required."), shown as they write them.
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
        self.ok_button.setText(self.tr("Saving…"))
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
        self.ok_button.setText(self._ok_text())
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

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if theme.is_palette_change(event):
            theme.set_style_sheet(self.problem_label, tone_sheet("danger"))


class ApprovalsView(WorkListView):
    """The approvals queue (see the module docstring).

    The list is read the first time the view is shown (or on :meth:`refresh`).
    """

    model: RequestsModel

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
        super().__init__(db, worker, actor, parent, name="approvalsView", prefix="approvals")
        self.decision_dialog: DecisionDialog | None = None

        self.model = RequestsModel(db, worker, self, page_size=page_size)

        self.status_filter = QComboBox()
        self.status_filter.setObjectName("approvalsStatus")
        self.status_filter.setAccessibleName(self.tr("Request status filter"))
        self.status_filter.setToolTip(self.tr("Which requests to list, by status"))
        for label, status in STATUS_CHOICES:
            self.status_filter.addItem(_tr(label), status)
        self.status_filter.currentIndexChanged.connect(self._filters_changed)

        self.only_mine = QCheckBox(self.tr("Only my requests"))
        self.only_mine.setObjectName("onlyMine")
        self.only_mine.setAccessibleName(self.tr("Only my requests"))
        self.only_mine.setToolTip(
            self.tr("List only the requests you made, to follow their outcome"))
        self.only_mine.toggled.connect(self._filters_changed)

        self.refresh_button.setAccessibleName(self.tr("Refresh the requests"))

        self.approve_button = QPushButton(self.tr("Approve…"))
        self.approve_button.setObjectName("approveRequest")
        self.approve_button.setAccessibleName(self.tr("Approve the selected request"))
        self.approve_button.clicked.connect(self.approve_selected)
        self.reject_button = QPushButton(self.tr("Reject…"))
        self.reject_button.setObjectName("rejectRequest")
        self.reject_button.setAccessibleName(self.tr("Reject the selected request"))
        self.reject_button.clicked.connect(self.reject_selected)

        self.table = worklist_table(
            self.model, "approvalsTable", self.tr("Approval requests"),
            self.tr("Approval requests, newest first; double-click one to open its account"),
            multi=False,
        )
        self._size_columns()
        self.table.selectionModel().selectionChanged.connect(self._selection_changed)
        self.model.modelReset.connect(self._selection_changed)

        self.detail = QLabel()
        self.detail.setObjectName("requestDetail")
        self.detail.setTextFormat(Qt.TextFormat.RichText)
        self.detail.setWordWrap(True)
        self.detail.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.detail.setAccessibleName(self.tr("The selected request"))

        self.status.setObjectName("approvalsStatusText")
        status_label = QLabel(self.tr("&Status:"))
        status_label.setBuddy(self.status_filter)
        self._lay_out([status_label, self.status_filter, self.only_mine],
                      [self.approve_button, self.reject_button], below=[self.detail])
        self._selection_changed()

    # -- what the view does -------------------------------------------------------------

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
        # The short columns fit their longest usual text; the free texts (summary, why,
        # outcome) share the rest, elided, whole in their tooltips and the pane below:
        # every column fits the window, none needs scrolling sideways.
        metrics = self.table.fontMetrics()
        labels = [_tr(label) for label in (*KIND_LABELS.values(), *STATUS_LABELS.values())]
        size_columns(self.table, {
            COL_REQUESTED: datetime_width(metrics), COL_BY: "Ada Administrator",
            COL_ACCOUNT: "Andersson & O'Brien Co.",
            COL_KIND: max(metrics.horizontalAdvance(t) for t in labels[:len(KIND_LABELS)]),
            COL_EFFECT: signed(-10_000),
            COL_STATUS: max(metrics.horizontalAdvance(t) for t in labels[len(KIND_LABELS):]),
            COL_DECIDED_BY: "Ada Administrator",
        }, stretch=(COL_SUMMARY, COL_WHY, COL_OUTCOME))

    # -- the work list ------------------------------------------------------------------

    def wanted(self) -> RequestFilter:
        return RequestFilter(
            status=self.status_filter.currentData(),
            requested_by=self._actor.staff_id if self.only_mine.isChecked() else None,
        )

    def loading_text(self) -> str:
        return self.tr("Loading the requests…")

    def empty_text(self) -> str:
        if self.model.filter.status == "pending":
            return self.tr("No request is waiting for approval.")
        return self.tr("No request to show.")

    def count_text(self, count: int) -> str:
        return counted(self.tr("%Ln request(s) shown", "", count), count)

    def account_of(self, row: object) -> int | None:
        return row.account_id if isinstance(row, RequestRow) else None

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
        self.show_message(result.message, failed=result.status == "failed")
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
            return (False, _tr(SELECT_APPROVE_TIP)), (False, _tr(SELECT_REJECT_TIP))
        own = decide_approval(self._actor.role, self._actor.staff_id, request.requested_by)
        if not own.allowed:
            return (False, own.reason), (False, _tr(OWN_REJECT_TIP))
        if request.status != "pending":
            sentence = ALREADY_DECIDED.get(request.status)
            tip = (_tr(sentence).format(id=request.id) if sentence is not None else
                   _tr("Request #{id} was already {status}.").format(id=request.id,
                                                                     status=request.status))
            return (False, tip), (False, tip)
        return (
            (True, self.tr("Approve request #{id}: it applies at once if the account still "
                           "allows it.").format(id=request.id)),
            (True, self.tr("Reject request #{id} (say why in a comment).").format(
                id=request.id)),
        )

    # -- events -------------------------------------------------------------------------

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
            self.detail.setText(self.tr("Select a request to see everything about it."))
        else:
            self.detail.setText(request_details(request))
