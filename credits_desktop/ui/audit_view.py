"""The audit log: every staff action, including sign-ins, exports and refused attempts.

:class:`AuditView` lists audit events newest first (``services.worklists.audit_page``),
filtered by staff member, action, account id and time, paged lazily as the table
scrolls. "Export CSV…" writes every event matching the filters to a CSV file
(``services.worklists.export_audit_csv``, which audits the export); it is enabled only
for roles allowed to export, otherwise disabled with the reason
``domain.permissions.decide`` gives. The file is chosen in the system's save dialog and
written by the window's :class:`~credits_desktop.ui.workers.Worker`, like every read.
Double-clicking an event of an account asks the main window to open that account.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from PySide6.QtCore import QModelIndex, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QBrush, QIntValidator, QShowEvent
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from credits_desktop.domain.permissions import Action, Verdict
from credits_desktop.services.accounts import list_staff
from credits_desktop.services.operations import Actor
from credits_desktop.services.paging import Cursor, Page
from credits_desktop.services.worklists import (
    AuditExport,
    AuditRow,
    audit_actions,
    audit_page,
    export_audit_csv,
)
from credits_desktop.store.database import Database

from . import formatting as fmt
from .failures_view import (
    MESSAGE_STYLE,
    NOTICE_STYLE,
    TYPING_DELAY_MS,
    PeriodFilter,
    worklist_table,
)
from .role_gate import role_decision
from .table_models import ROW_ROLE, PagedModel
from .workers import Job, ProgressFn, Worker

__all__ = ["AUDIT_PAGE_SIZE", "AuditModel", "AuditQuery", "AuditView"]

AUDIT_PAGE_SIZE: Final = 200
EXPORT_TIP = "Write every event matching the filters to a CSV file"
FILTERS_FAILED_TIP = "The choices could not be loaded: {message} Refresh to try again."
OUTCOME_LABELS: Final = {
    "applied": "Applied",
    "requested": "Requested",
    "rejected": "Rejected",
    "failed": "Failed",
    "denied": "Denied",
}
# An account id as typed: digits only, within what the database stores.
ACCOUNT_ID_MAX: Final = 2_147_483_647


@dataclass(frozen=True)
class AuditQuery:
    """Which audit events to list (see ``audit_page``)."""

    staff_id: int | None = None
    action: str | None = None
    account_id: int | None = None
    since: datetime | None = None
    until: datetime | None = None


COL_TIME, COL_STAFF, COL_ACTION, COL_OUTCOME, COL_ACCOUNT, COL_DETAIL = range(6)


class AuditModel(PagedModel):
    """Audit events, newest first, filtered in SQL."""

    COLUMNS = (
        ("Time", "When it happened (local time; UTC in the tooltip)"),
        ("Staff", "Who did it"),
        ("Action", "What they did or tried"),
        ("Outcome", "Applied, requested, rejected, failed, or denied (not allowed)"),
        ("Account", "The customer account concerned, if one"),
        ("Detail", "What happened, in words"),
    )

    def __init__(self, db: Database, worker: Worker, parent: Any = None, *,
                 page_size: int = AUDIT_PAGE_SIZE) -> None:
        super().__init__(db, worker, parent, page_size=page_size)
        self._query = AuditQuery()

    @property
    def query(self) -> AuditQuery:
        return self._query

    def set_query(self, query: AuditQuery) -> None:
        """List the events matching ``query``, from the first page."""
        if self._started and query == self._query and not self._failed:
            return
        self._query = query
        self.refresh()

    def answers(self) -> object:
        return self._query

    def reader(self) -> Callable[[Database, Cursor | None, int], Page[Any]]:
        q = self._query

        def read(db: Database, after: Cursor | None, limit: int) -> Page[Any]:
            return audit_page(db, staff_id=q.staff_id, action=q.action,
                              account_id=q.account_id, since=q.since, until=q.until,
                              after=after, limit=limit)

        return read

    def display(self, row: AuditRow, column: int) -> str | None:
        if column == COL_TIME:
            return fmt.local_datetime(row.at)
        if column == COL_STAFF:
            return row.staff_name or "(nobody signed in)"
        if column == COL_ACTION:
            return row.action
        if column == COL_OUTCOME:
            return OUTCOME_LABELS.get(row.outcome, row.outcome)
        if column == COL_ACCOUNT:
            if row.account_id is None:
                return ""
            return f"{row.account_name or ''} (#{row.account_id})".strip()
        if column == COL_DETAIL:
            # One line in the table; the tooltip has it all.
            return " ".join(row.detail.split())
        return None

    def tooltip(self, row: AuditRow, column: int) -> str | None:
        if column == COL_TIME:
            return f"{fmt.utc_datetime(row.at)}\nEvent #{row.id}"
        if column == COL_DETAIL:
            return row.detail or None
        if column == COL_ACCOUNT and row.account_id is not None:
            return f"Account #{row.account_id} (double-click to open it)"
        return None

    def foreground(self, row: AuditRow, column: int) -> QBrush | None:
        if column == COL_OUTCOME and row.outcome in ("denied", "failed"):
            return QBrush(Qt.GlobalColor.darkRed)
        return None


class AuditView(QWidget):
    """The audit log (see the module docstring).

    The list and the filter choices are read the first time the view is shown (or on
    :meth:`refresh`).
    """

    # The account of the double-clicked event, by id.
    open_account_requested = Signal(int)
    # The AuditExport of a finished export.
    exported = Signal(object)

    def __init__(
        self,
        db: Database,
        worker: Worker,
        actor: Actor,
        parent: QWidget | None = None,
        *,
        page_size: int = AUDIT_PAGE_SIZE,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("auditView")
        self._db = db
        self._worker = worker
        self._actor = actor
        self._choices_job: Job | None = None
        self._export_job: Job | None = None

        self.model = AuditModel(db, worker, self, page_size=page_size)

        self.staff_filter = QComboBox()
        self.staff_filter.setObjectName("auditStaff")
        self.staff_filter.setAccessibleName("Staff member filter")
        self.staff_filter.setToolTip("Only what this staff member did")
        self.staff_filter.addItem("All staff", None)
        self.staff_filter.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.staff_filter.currentIndexChanged.connect(self._filters_changed)

        self.action_filter = QComboBox()
        self.action_filter.setObjectName("auditAction")
        self.action_filter.setAccessibleName("Action filter")
        self.action_filter.setToolTip("Only this kind of action")
        self.action_filter.addItem("All actions", None)
        self.action_filter.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.action_filter.currentIndexChanged.connect(self._filters_changed)

        self.account_filter = QLineEdit()
        self.account_filter.setObjectName("auditAccount")
        self.account_filter.setAccessibleName("Account id filter")
        self.account_filter.setToolTip("Only events of the account with this id")
        self.account_filter.setPlaceholderText("Account id")
        self.account_filter.setClearButtonEnabled(True)
        self.account_filter.setValidator(QIntValidator(1, ACCOUNT_ID_MAX, self.account_filter))
        self.account_filter.setMaximumWidth(
            self.account_filter.fontMetrics().horizontalAdvance("Account id 0000") + 40)
        self._typing = QTimer(self)
        self._typing.setSingleShot(True)
        self._typing.setInterval(TYPING_DELAY_MS)
        self._typing.timeout.connect(self._filters_changed)
        self.account_filter.textChanged.connect(self._typing.start)
        self.account_filter.returnPressed.connect(self._filters_changed)

        self.period = PeriodFilter("auditPeriod", "Events")
        self.period.changed.connect(self._filters_changed)

        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.setObjectName("auditRefresh")
        self.refresh_button.setAccessibleName("Refresh the audit log")
        self.refresh_button.setToolTip("Read the log again")
        self.refresh_button.clicked.connect(self.refresh)

        self.export_button = QPushButton("Export CSV…")
        self.export_button.setObjectName("exportAudit")
        self.export_button.setAccessibleName("Export the audit log to CSV")
        self.export_button.clicked.connect(self.export_csv)

        self.table = worklist_table(
            self.model, "auditTable", "Audit log",
            "Every staff action, newest first; double-click one to open its account",
        )
        self.table.doubleClicked.connect(self._open_account)
        self.table.enter_pressed.connect(self._open_account)
        header = self.table.horizontalHeader()
        header.setStretchLastSection(True)
        for column, width in ((COL_TIME, 130), (COL_STAFF, 150), (COL_ACTION, 130),
                              (COL_OUTCOME, 90), (COL_ACCOUNT, 200)):
            header.resizeSection(column, width)
        header.setSectionResizeMode(COL_DETAIL, QHeaderView.ResizeMode.Stretch)

        self.status = QLabel()
        self.status.setObjectName("auditStatusText")
        self.message = QLabel()
        self.message.setObjectName("auditMessage")
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.message.hide()

        filters = QHBoxLayout()
        filters.addWidget(self.staff_filter)
        filters.addWidget(self.action_filter)
        filters.addWidget(self.account_filter)
        filters.addWidget(self.period)
        filters.addStretch(1)
        filters.addWidget(self.refresh_button)
        actions = QHBoxLayout()
        actions.addWidget(self.status, 1)
        actions.addWidget(self.export_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.addLayout(filters)
        layout.addWidget(self.message)
        layout.addWidget(self.table, 1)
        layout.addLayout(actions)

        self.model.page_loaded.connect(self._show_count)
        self.model.loading_changed.connect(self._show_count)
        self.model.load_failed.connect(self._load_failed)
        self._update_export()

    # -- what the view does -------------------------------------------------------------

    @Slot()
    def refresh(self) -> None:
        """Read the filter choices and the list again (as many rows as are loaded)."""
        self._load_choices()
        wanted = self.current_query()
        if self.model.started and self.model.query == wanted:
            self.model.refresh(rows=self.model.rowCount())
        else:
            self.model.set_query(wanted)

    def shutdown(self) -> None:
        """The tab closes: results still on their way are not wanted (an export under
        way still finishes: its file and audit row are written by the worker)."""
        if self._choices_job is not None:
            self._choices_job.discard()
            self._choices_job = None
        self.model.discard()

    @property
    def is_loading(self) -> bool:
        return self._choices_job is not None or self.model.is_loading

    @property
    def exporting(self) -> bool:
        return self._export_job is not None

    def current_query(self) -> AuditQuery:
        since, until = self.period.bounds()
        text = self.account_filter.text().strip()
        return AuditQuery(
            staff_id=self.staff_filter.currentData(),
            action=self.action_filter.currentData(),
            account_id=int(text) if text.isdigit() else None,
            since=since,
            until=until,
        )

    @Slot()
    def export_csv(self) -> None:
        """Ask where to save, then export the events matching the filters."""
        if self._export_job is not None or not self.export_button.isEnabled():
            return
        suggested = str(Path.home() / f"audit-log-{datetime.now().astimezone():%Y-%m-%d}.csv")
        path, _kind = QFileDialog.getSaveFileName(
            self, "Export the audit log", suggested, "CSV files (*.csv);;All files (*)"
        )
        if not path:
            return
        if not Path(path).suffix:
            path += ".csv"
        self.export_to(path)

    def export_to(self, path: str) -> None:
        """Export the events matching the filters to ``path``, in the worker."""
        if self._export_job is not None:
            return
        db, actor, q = self._db, self._actor, self.current_query()

        def work(report: ProgressFn) -> AuditExport:
            return export_audit_csv(
                db, actor, path, staff_id=q.staff_id, action=q.action,
                account_id=q.account_id, since=q.since, until=q.until,
                progress=lambda written: report("export", written, 0),
            )

        job = self._worker.submit_reporting(work)
        job.progressed.connect(self._export_progressed)
        job.succeeded.connect(self._export_done)
        job.failed.connect(self._export_failed)
        self._export_job = job
        self.message.hide()
        self._update_export()

    # -- events -------------------------------------------------------------------------

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if not self.model.started:
            self.refresh()

    @Slot(str, int, int)
    def _export_progressed(self, _stage: str, written: int, _total: int) -> None:
        self.status.setText(f"Exporting… {written:,} events written")

    @Slot(object)
    def _export_done(self, done: AuditExport) -> None:
        self._export_job = None
        self._update_export()
        self.message.setStyleSheet(NOTICE_STYLE)
        self.message.setText(
            f"Exported {done.rows:,} audit event{'s' if done.rows != 1 else ''} "
            f"to {done.path}."
        )
        self.message.show()
        # The export is itself on record: show it.
        self.refresh()
        self.exported.emit(done)

    @Slot(str)
    def _export_failed(self, message: str) -> None:
        self._export_job = None
        self._update_export()
        self.message.setStyleSheet(MESSAGE_STYLE)
        self.message.setText(message)
        self.message.show()
        # A refused export is on record too.
        self.refresh()

    def _update_export(self) -> None:
        decision = role_decision(self._actor, Action.EXPORT)
        if decision.verdict is Verdict.DENY:
            enabled, tip = False, decision.reason
        elif self._export_job is not None:
            enabled, tip = False, "An export is under way."
        else:
            enabled, tip = True, EXPORT_TIP
        self.export_button.setText("Exporting…" if self._export_job is not None
                                   else "Export CSV…")
        self.export_button.setEnabled(enabled)
        self.export_button.setToolTip(tip)
        self.export_button.setAccessibleDescription(tip)

    @Slot(QModelIndex)
    def _open_account(self, index: QModelIndex) -> None:
        row = index.data(ROW_ROLE)
        if isinstance(row, AuditRow) and row.account_id is not None:
            self.open_account_requested.emit(row.account_id)

    @Slot()
    def _show_count(self) -> None:
        count = self.model.rowCount()
        if self.model.is_loading:
            text = "Loading the audit log…"
        elif count == 0 and self.model.started and not self.model.has_failed:
            text = "No event matches the filters."
        else:
            more = "" if self.model.is_complete else " (scroll for more)"
            text = f"{count:,} event{'s' if count != 1 else ''} shown{more}"
        self.status.setText(text)

    @Slot(str)
    def _load_failed(self, message: str) -> None:
        self.message.setStyleSheet(MESSAGE_STYLE)
        self.message.setText(message)
        self.message.show()
        self._show_count()

    @Slot()
    def _filters_changed(self) -> None:
        self._typing.stop()
        if not self.model.started:
            return  # the first read, when shown, takes the filters as they are then
        self.message.hide()
        self.model.set_query(self.current_query())

    # -- filter choices -----------------------------------------------------------------

    def _load_choices(self) -> None:
        if self._choices_job is not None:
            self._choices_job.discard()
        db = self._db

        def work() -> tuple[list[Actor], list[str]]:
            return list_staff(db, active_only=False), audit_actions(db)

        job = self._worker.submit(work)
        job.succeeded.connect(self._choices_arrived)
        job.failed.connect(self._choices_failed)
        self._choices_job = job

    @Slot(object)
    def _choices_arrived(self, choices: tuple[list[Actor], list[str]]) -> None:
        self._choices_job = None
        staff, actions = choices
        lost = False
        lost |= _refill(self.staff_filter, "All staff",
                        [(s.display_name, s.staff_id) for s in staff])
        lost |= _refill(self.action_filter, "All actions", [(a, a) for a in actions])
        self.staff_filter.setToolTip("Only what this staff member did")
        self.action_filter.setToolTip("Only this kind of action")
        if lost:
            self._filters_changed()

    @Slot(str)
    def _choices_failed(self, message: str) -> None:
        self._choices_job = None
        tip = FILTERS_FAILED_TIP.format(message=message)
        self.staff_filter.setToolTip(tip)
        self.action_filter.setToolTip(tip)


def _refill(combo: QComboBox, everything: str, items: list[tuple[str, object]]) -> bool:
    """Put ``items`` in ``combo`` after the "everything" choice, keeping the chosen one;
    True when the chosen one is gone (the list then shows everything)."""
    chosen = combo.currentData()
    combo.blockSignals(True)
    try:
        combo.clear()
        combo.addItem(everything, None)
        for label, data in items:
            combo.addItem(label, data)
        index = combo.findData(chosen) if chosen is not None else 0
        combo.setCurrentIndex(max(index, 0))
    finally:
        combo.blockSignals(False)
    return chosen is not None and index < 0
