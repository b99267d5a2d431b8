"""The audit log: every staff action, including sign-ins, exports and refused attempts.

:class:`AuditView` lists audit events newest first (``services.worklists.audit_page``),
filtered by staff member, action, account id and time, paged lazily as the table
scrolls. "Export CSV…" writes every event matching the filters to a CSV file
(``services.worklists.export_audit_csv``, which audits the export); it is enabled only
for roles allowed to export, otherwise disabled with the reason
``domain.permissions.decide`` gives. The file is chosen in the system's save dialog and
written by the window's :class:`~credits_desktop.ui.workers.Worker`, like every read.
Double-clicking an event of an account asks the main window to open that account.

The frame (filters, paging, status, messages) is :class:`~credits_desktop.ui.work_list.
WorkListView`'s. Every word shown goes through Qt's translation: the actions are shown by
a plain label ("Billing period roll"), with the log's own code (``roll_periods``) in the
tooltip and in the CSV export, whose header is the services' (the file is the record);
the details are the log's own words and are shown as written.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from PySide6.QtCore import QCoreApplication, Signal, Slot
from PySide6.QtGui import QBrush, QIntValidator
from PySide6.QtWidgets import QComboBox, QFileDialog, QLineEdit, QPushButton, QWidget

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
from . import theme
from .i18n import QT_TRANSLATE_NOOP, counted
from .role_gate import role_decision
from .work_list import (
    PeriodFilter,
    WorkListModel,
    WorkListView,
    datetime_width,
    size_columns,
    worklist_table,
)
from .workers import Job, ProgressFn, Worker

__all__ = ["ACTION_LABELS", "AUDIT_PAGE_SIZE", "AuditModel", "AuditQuery", "AuditView",
           "action_label"]

AUDIT_PAGE_SIZE: Final = 200
# English sources, translated where shown.
EXPORT_TIP = QT_TRANSLATE_NOOP("AuditView", "Write every event matching the filters to a CSV file")
FILTERS_FAILED_TIP = QT_TRANSLATE_NOOP(
    "AuditView", "The choices could not be loaded: {message} Refresh to try again.")
OUTCOME_LABELS: Final = {
    "applied": QT_TRANSLATE_NOOP("AuditModel", "Applied"),
    "requested": QT_TRANSLATE_NOOP("AuditModel", "Requested"),
    "rejected": QT_TRANSLATE_NOOP("AuditModel", "Rejected"),
    "failed": QT_TRANSLATE_NOOP("AuditModel", "Failed"),
    "denied": QT_TRANSLATE_NOOP("AuditModel", "Denied"),
}
# The log's action codes in plain words; a code not listed is shown as it is.
ACTION_LABELS: Final = {
    "adjustment": QT_TRANSLATE_NOOP("AuditModel", "Adjustment"),
    "approve": QT_TRANSLATE_NOOP("AuditModel", "Approve request"),
    "create_account": QT_TRANSLATE_NOOP("AuditModel", "New account"),
    "create_staff": QT_TRANSLATE_NOOP("AuditModel", "New staff member"),
    "export": QT_TRANSLATE_NOOP("AuditModel", "Export"),
    "incident_refund": QT_TRANSLATE_NOOP("AuditModel", "Incident refund"),
    "purchase": QT_TRANSLATE_NOOP("AuditModel", "Purchase"),
    "record_charge": QT_TRANSLATE_NOOP("AuditModel", "Usage charge"),
    "refund": QT_TRANSLATE_NOOP("AuditModel", "Refund"),
    "reject": QT_TRANSLATE_NOOP("AuditModel", "Reject request"),
    "reversal": QT_TRANSLATE_NOOP("AuditModel", "Reversal"),
    "roll_periods": QT_TRANSLATE_NOOP("AuditModel", "Billing period roll"),
    "set_staff_active": QT_TRANSLATE_NOOP("AuditModel", "Staff access change"),
    "sign_in": QT_TRANSLATE_NOOP("AuditModel", "Sign-in"),
}
# The staff member the scheduler and the platform's jobs act as (the longest usual name).
AUTOMATIC_STAFF: Final = "Credits Desk (automatic)"
# An account id as typed: digits only, within what the database stores.
ACCOUNT_ID_MAX: Final = 2_147_483_647


def action_label(code: str) -> str:
    """The plain, translated words for an action code: ``roll_periods`` -> "Billing
    period roll"; an unknown code as it is."""
    label = ACTION_LABELS.get(code)
    return QCoreApplication.translate("AuditModel", label) if label is not None else code


@dataclass(frozen=True)
class AuditQuery:
    """Which audit events to list (see ``audit_page``)."""

    staff_id: int | None = None
    action: str | None = None
    account_id: int | None = None
    since: datetime | None = None
    until: datetime | None = None


COL_TIME, COL_STAFF, COL_ACTION, COL_OUTCOME, COL_ACCOUNT, COL_DETAIL = range(6)


class AuditModel(WorkListModel):
    """Audit events, newest first, filtered in SQL."""

    TR_CONTEXT = "AuditModel"
    COLUMNS = (
        (QT_TRANSLATE_NOOP("AuditModel", "Time"),
         QT_TRANSLATE_NOOP("AuditModel", "When it happened (local time; UTC in the tooltip)")),
        (QT_TRANSLATE_NOOP("AuditModel", "Staff"), QT_TRANSLATE_NOOP("AuditModel", "Who did it")),
        (QT_TRANSLATE_NOOP("AuditModel", "Action"),
         QT_TRANSLATE_NOOP("AuditModel", "What they did or tried")),
        (QT_TRANSLATE_NOOP("AuditModel", "Outcome"),
         QT_TRANSLATE_NOOP("AuditModel",
                           "Applied, requested, rejected, failed, or denied (not allowed)")),
        (QT_TRANSLATE_NOOP("AuditModel", "Account"),
         QT_TRANSLATE_NOOP("AuditModel", "The customer account concerned, if one")),
        (QT_TRANSLATE_NOOP("AuditModel", "Detail"),
         QT_TRANSLATE_NOOP("AuditModel", "What happened, in words")),
    )

    def __init__(self, db: Database, worker: Worker, parent: Any = None, *,
                 page_size: int = AUDIT_PAGE_SIZE) -> None:
        super().__init__(db, worker, parent, page_size=page_size, wanted=AuditQuery())

    @property
    def query(self) -> AuditQuery:
        wanted = self.wanted
        assert isinstance(wanted, AuditQuery)
        return wanted

    def set_query(self, query: AuditQuery) -> None:
        """List the events matching ``query``, from the first page."""
        self.ask(query)

    def reader(self) -> Callable[[Database, Cursor | None, int], Page[Any]]:
        q = self.query

        def read(db: Database, after: Cursor | None, limit: int) -> Page[Any]:
            return audit_page(db, staff_id=q.staff_id, action=q.action,
                              account_id=q.account_id, since=q.since, until=q.until,
                              after=after, limit=limit)

        return read

    def display(self, row: AuditRow, column: int) -> str | None:
        if column == COL_TIME:
            return fmt.local_datetime(row.at)
        if column == COL_STAFF:
            return row.staff_name or self.tr("(nobody signed in)")
        if column == COL_ACTION:
            return action_label(row.action)
        if column == COL_OUTCOME:
            label = OUTCOME_LABELS.get(row.outcome)
            return self.tr(label) if label is not None else row.outcome
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
            return self.tr("{utc}\nEvent #{id}").format(utc=fmt.utc_datetime(row.at), id=row.id)
        if column == COL_DETAIL:
            return row.detail or None
        if column == COL_ACTION:
            # The log's own code, as the CSV export writes it.
            return self.tr("{action} (recorded as “{code}”)").format(
                action=action_label(row.action), code=row.action)
        if column == COL_ACCOUNT and row.account_id is not None:
            return self.tr("Account #{id} (double-click to open it)").format(id=row.account_id)
        return None

    def foreground(self, row: AuditRow, column: int) -> QBrush | None:
        if column == COL_OUTCOME and row.outcome in ("denied", "failed"):
            return QBrush(theme.color("danger"))
        return None


class AuditView(WorkListView):
    """The audit log (see the module docstring).

    The list and the filter choices are read the first time the view is shown (or on
    :meth:`refresh`). Closing the tab (:meth:`shutdown`) lets an export under way
    finish: its file and audit row are written by the worker.
    """

    model: AuditModel

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
        super().__init__(db, worker, actor, parent, name="auditView", prefix="audit")
        self._export_job: Job | None = None

        self.model = AuditModel(db, worker, self, page_size=page_size)

        self.staff_filter = QComboBox()
        self.staff_filter.setObjectName("auditStaff")
        self.staff_filter.setAccessibleName(self.tr("Staff member filter"))
        self.staff_filter.setToolTip(self.tr("Only what this staff member did"))
        self.staff_filter.addItem(self.tr("All staff"), None)
        self.staff_filter.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.staff_filter.currentIndexChanged.connect(self._filters_changed)

        self.action_filter = QComboBox()
        self.action_filter.setObjectName("auditAction")
        self.action_filter.setAccessibleName(self.tr("Action filter"))
        self.action_filter.setToolTip(self.tr("Only this kind of action"))
        self.action_filter.addItem(self.tr("All actions"), None)
        self.action_filter.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.action_filter.currentIndexChanged.connect(self._filters_changed)

        self.account_filter = QLineEdit()
        self.account_filter.setObjectName("auditAccount")
        self.account_filter.setAccessibleName(self.tr("Account id filter"))
        self.account_filter.setToolTip(self.tr("Only events of the account with this id"))
        self.account_filter.setPlaceholderText(self.tr("Account id"))
        self.account_filter.setClearButtonEnabled(True)
        self.account_filter.setValidator(QIntValidator(1, ACCOUNT_ID_MAX, self.account_filter))
        self.account_filter.setMaximumWidth(self.account_filter.fontMetrics().horizontalAdvance(
            self.account_filter.placeholderText() + " 0000") + 40)
        self._typed_filter(self.account_filter)

        self.period = PeriodFilter("auditPeriod", self.tr("Events"))
        self.period.changed.connect(self._filters_changed)

        self.refresh_button.setAccessibleName(self.tr("Refresh the audit log"))
        self.refresh_button.setToolTip(self.tr("Read the log again"))

        self.export_button = QPushButton(self.tr("Export CSV…"))
        self.export_button.setObjectName("exportAudit")
        self.export_button.setAccessibleName(self.tr("Export the audit log to CSV"))
        self.export_button.clicked.connect(self.export_csv)

        self.table = worklist_table(
            self.model, "auditTable", self.tr("Audit log"),
            self.tr("Every staff action, newest first; double-click one to open its account"),
        )
        self._size_columns()

        self.status.setObjectName("auditStatusText")
        self._lay_out([self.staff_filter, self.action_filter, self.account_filter, self.period],
                      [self.export_button])
        self._update_export()

    # -- what the view does -------------------------------------------------------------

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
            self, self.tr("Export the audit log"), suggested,
            self.tr("CSV files (*.csv);;All files (*)"),
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

    def _size_columns(self) -> None:
        metrics = self.table.fontMetrics()

        def widest(texts: list[str]) -> int:
            return max(metrics.horizontalAdvance(t) for t in texts)

        size_columns(self.table, {
            COL_TIME: datetime_width(metrics), COL_STAFF: AUTOMATIC_STAFF,
            COL_ACTION: widest([action_label(code) for code in ACTION_LABELS]),
            COL_OUTCOME: widest([self.model.tr(label) for label in OUTCOME_LABELS.values()]),
            COL_ACCOUNT: "Andersson & O'Brien Co. (#12345)",
        }, stretch=(COL_DETAIL,))

    # -- the work list ------------------------------------------------------------------

    def wanted(self) -> AuditQuery:
        return self.current_query()

    def loading_text(self) -> str:
        return self.tr("Loading the audit log…")

    def empty_text(self) -> str:
        return self.tr("No event matches the filters.")

    def count_text(self, count: int) -> str:
        return counted(self.tr("%Ln event(s) shown", "", count), count)

    def account_of(self, row: object) -> int | None:
        return row.account_id if isinstance(row, AuditRow) else None

    def choices_work(self) -> Callable[[], object]:
        db = self._db

        def work() -> tuple[list[Actor], list[str]]:
            return list_staff(db, active_only=False), audit_actions(db)

        return work

    def choices_arrived(self, choices: Any) -> None:
        staff, actions = choices
        lost = False
        lost |= _refill(self.staff_filter, self.tr("All staff"),
                        [(s.display_name, s.staff_id) for s in staff])
        labelled = sorted((action_label(a), a) for a in actions)
        lost |= _refill(self.action_filter, self.tr("All actions"), labelled)
        self.staff_filter.setToolTip(self.tr("Only what this staff member did"))
        self.action_filter.setToolTip(self.tr("Only this kind of action"))
        if lost:
            self._filters_changed()

    def choices_failed(self, message: str) -> None:
        tip = self.tr(FILTERS_FAILED_TIP).format(message=message)
        self.staff_filter.setToolTip(tip)
        self.action_filter.setToolTip(tip)

    # -- exports ------------------------------------------------------------------------

    @Slot(str, int, int)
    def _export_progressed(self, _stage: str, written: int, _total: int) -> None:
        self.status.setText(counted(self.tr("Exporting… %Ln event(s) written", "", written),
                                    written))

    @Slot(object)
    def _export_done(self, done: AuditExport) -> None:
        self._export_job = None
        self._update_export()
        self.show_message(counted(self.tr("Exported %Ln audit event(s) to {path}.", "",
                                          done.rows), done.rows).format(path=done.path),
                          failed=False)
        # The export is itself on record: show it.
        self.refresh()
        self.exported.emit(done)

    @Slot(str)
    def _export_failed(self, message: str) -> None:
        self._export_job = None
        self._update_export()
        self.show_message(message, failed=True)
        # A refused export is on record too.
        self.refresh()

    def _update_export(self) -> None:
        decision = role_decision(self._actor, Action.EXPORT)
        if decision.verdict is Verdict.DENY:
            enabled, tip = False, decision.reason
        elif self._export_job is not None:
            enabled, tip = False, self.tr("An export is under way.")
        else:
            enabled, tip = True, self.tr(EXPORT_TIP)
        self.export_button.setText(self.tr("Exporting…") if self._export_job is not None
                                   else self.tr("Export CSV…"))
        self.export_button.setEnabled(enabled)
        self.export_button.setToolTip(tip)
        self.export_button.setAccessibleDescription(tip)


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
