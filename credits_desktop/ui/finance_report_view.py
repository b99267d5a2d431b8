"""The monthly finance report on screen, and its CSV and XLSX exports.

:class:`FinanceReportView` (a tab of the main window) asks for a range of UTC months,
builds ``services.finance_report.finance_report`` on the worker with a progress bar (a
year over millions of ledger rows takes seconds), and shows one row per month with the
opening balance, every kind of movement, the closing balance and whether the month
reconciles: a ✓, or the difference highlighted in red with the reasons spelt out above
the table. A totals row closes the table.

Exports (finance, managers, admins) write the same table: CSV, or XLSX with numbers kept
as numbers, a bold header and totals row, fitted columns and a second sheet with the
checks. Files are written on the worker (``ui.exports``).

The verdict, the warnings and the marks of the table take the theme's semantic colours
(success, warning, danger) for the palette in use, and follow it when it changes.

Every word shown goes through Qt's translation: the controls, the headers and the
words of the table (as shown and as exported), the checks sheet. The sentences of the
services (the problems and warnings found, the build's stages) are shown as written.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from functools import partial
from pathlib import Path
from typing import Any, Final

from PySide6.QtCore import (
    QAbstractTableModel,
    QCoreApplication,
    QDate,
    QEvent,
    QLocale,
    QModelIndex,
    QObject,
    Qt,
    Signal,
    Slot,
)
from PySide6.QtGui import QBrush, QFont
from PySide6.QtWidgets import (
    QDateEdit,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from credits_desktop.domain.permissions import Action, Verdict
from credits_desktop.services.dashboard import add_months
from credits_desktop.services.errors import CreditsDeskError
from credits_desktop.services.finance_report import (
    DIFFERENCE_COLUMN,
    RECONCILED_MARK,
    RECONCILES_COLUMN,
    FinanceReport,
    MonthFigures,
    finance_report,
    month_range,
    report_table,
)
from credits_desktop.services.operations import Actor
from credits_desktop.store.database import Database

from . import formatting as fmt
from . import theme
from .account_detail import CopyableTable
from .charts_common import QT_TRANSLATE_NOOP
from .exports import Cell, Sheet, write_csv, write_xlsx
from .role_gate import role_decision
from .table_models import LEFT, RIGHT, AnyIndex
from .workers import Job, ProgressFn, Worker

__all__ = ["FinanceReportModel", "FinanceReportView", "checks_sheet"]

DEFAULT_MONTHS: Final = 12

# The report's columns as the user reads them: the titles and tooltips of
# ``services.finance_report.COLUMNS``, in their order, translated where shown.
COLUMN_TEXTS: Final[tuple[tuple[str, str], ...]] = (
    (QT_TRANSLATE_NOOP("FinanceReportModel", "Month"),
     QT_TRANSLATE_NOOP("FinanceReportModel",
                       "UTC calendar month")),
    (QT_TRANSLATE_NOOP("FinanceReportModel", "Opening balance"),
     QT_TRANSLATE_NOOP("FinanceReportModel",
                       "Every account's spendable credits at the month's first instant")),
    (QT_TRANSLATE_NOOP("FinanceReportModel", "Granted by plans"),
     QT_TRANSLATE_NOOP("FinanceReportModel",
                       "Plan credits granted at the start of billing periods")),
    (QT_TRANSLATE_NOOP("FinanceReportModel", "Purchased"),
     QT_TRANSLATE_NOOP("FinanceReportModel",
                       "Credits of packages bought")),
    (QT_TRANSLATE_NOOP("FinanceReportModel", "Refunded"),
     QT_TRANSLATE_NOOP("FinanceReportModel",
                       "Credits given back for charges")),
    (QT_TRANSLATE_NOOP("FinanceReportModel", "Adjusted +"),
     QT_TRANSLATE_NOOP("FinanceReportModel",
                       "Purchased credits added by finance (manual sales, compensation)")),
    (QT_TRANSLATE_NOOP("FinanceReportModel", "Adjusted −"),
     QT_TRANSLATE_NOOP("FinanceReportModel",
                       "Purchased credits removed by finance (chargebacks, corrections)")),
    (QT_TRANSLATE_NOOP("FinanceReportModel", "Reversed"),
     QT_TRANSLATE_NOOP("FinanceReportModel",
                       "Credits given back (+) or taken back (−) by reversing a refund "
                       "or an adjustment")),
    (QT_TRANSLATE_NOOP("FinanceReportModel", "Used"),
     QT_TRANSLATE_NOOP("FinanceReportModel",
                       "Credits charged for AI features, failed generations included")),
    (QT_TRANSLATE_NOOP("FinanceReportModel", "Expired unused"),
     QT_TRANSLATE_NOOP("FinanceReportModel",
                       "Plan credits that expired unused at the end of a billing period "
                       "(breakage)")),
    (QT_TRANSLATE_NOOP("FinanceReportModel", "Closing balance"),
     QT_TRANSLATE_NOOP("FinanceReportModel",
                       "Every account's spendable credits at the month's end")),
    (QT_TRANSLATE_NOOP("FinanceReportModel", "Difference"),
     QT_TRANSLATE_NOOP("FinanceReportModel",
                       "Closing balance minus opening + granted + purchased + refunded ± "
                       "adjusted ± reversed − used − expired: 0 when the month "
                       "reconciles")),
    (QT_TRANSLATE_NOOP("FinanceReportModel", "Reconciles"),
     QT_TRANSLATE_NOOP("FinanceReportModel",
                       "✓ when the identity holds and the usage by feature and plan adds "
                       "up to the credits used; otherwise what is wrong")),
)


class FinanceReportModel(QAbstractTableModel):
    """The report's rows (months, then totals), numbers formatted, problems highlighted."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.report: FinanceReport | None = None
        self.header: list[str] = []
        self.rows: list[list[int | str]] = []

    def set_report(self, report: FinanceReport | None) -> None:
        self.beginResetModel()
        self.report = report
        self.header, self.rows = self._table(report) if report is not None else ([], [])
        self.endResetModel()

    def _table(self, report: FinanceReport) -> tuple[list[str], list[list[int | str]]]:
        """The services' table with its words translated (the numbers as they are)."""
        header, rows = report_table(report)
        header[:len(COLUMN_TEXTS)] = [self.tr(title) for title, _tip in COLUMN_TEXTS]
        extra = len(COLUMN_TEXTS)
        for offset, (_code, name) in enumerate(report.features):
            header[extra + offset] = self.tr("Used: {feature}").format(feature=name)
        extra += len(report.features)
        for offset, (_code, name) in enumerate(report.plans):
            header[extra + offset] = self.tr("Used on plan: {plan}").format(plan=name)
        for row, month in zip(rows, report.months, strict=False):
            row[RECONCILES_COLUMN] = self._reconciles_text(month)
        totals = rows[-1]
        totals[0] = self.tr("Total")
        totals[RECONCILES_COLUMN] = (RECONCILED_MARK if report.reconciles
                                     else self.tr("NO: see the problems listed"))
        return header, rows

    def _reconciles_text(self, month: MonthFigures) -> str:
        """The reconciliation cell: the mark, or in a few words what does not add up."""
        if month.reconciles:
            return RECONCILED_MARK
        if month.difference:
            return self.tr("NO: off by {difference}").format(
                difference=f"{month.difference:+,}")
        return self.tr("NO: usage by feature adds up to {credits}").format(
            credits=fmt.credits_text(month.rollup_used))

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008 (Qt default)
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.header)

    def flags(self, index: AnyIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return (Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
                | Qt.ItemFlag.ItemNeverHasChildren)

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < len(self.header):
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return self.header[section]
        if role == Qt.ItemDataRole.ToolTipRole:
            if section < len(COLUMN_TEXTS):
                return self.tr(COLUMN_TEXTS[section][1])
            return self.tr("Credits used, from the usage rollup (by the plan at the time of "
                           "the charge)")
        return None

    def _is_totals(self, row: int) -> bool:
        return row == len(self.rows) - 1

    def _month_ok(self, row: int) -> bool:
        assert self.report is not None
        if self._is_totals(row):
            return self.report.reconciles
        return self.report.months[row].reconciles

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or self.report is None:
            return None
        row, column = index.row(), index.column()
        value = self.rows[row][column]
        if role == Qt.ItemDataRole.DisplayRole:
            if column == DIFFERENCE_COLUMN and value == 0:
                return "0"
            if isinstance(value, int):
                return fmt.credits_text(value)
            return value
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return RIGHT if isinstance(value, int) else LEFT
        if role == Qt.ItemDataRole.FontRole and self._is_totals(row):
            font = QFont()
            font.setBold(True)
            return font
        bad = ((column == RECONCILES_COLUMN and not self._month_ok(row))
               or (column == DIFFERENCE_COLUMN and value != 0))
        if role == Qt.ItemDataRole.BackgroundRole and bad:
            return QBrush(theme.color("danger_background"))
        if role == Qt.ItemDataRole.ForegroundRole and bad:
            # On the red cell: the red text made to be read on it.
            return QBrush(theme.color("danger"))
        if role == Qt.ItemDataRole.ForegroundRole and column == RECONCILES_COLUMN:
            return QBrush(theme.color("success"))
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(row, column)
        return None

    def _tooltip(self, row: int, column: int) -> str | None:
        assert self.report is not None
        if self._is_totals(row):
            return self.tr("Totals of the months shown (opening: the first month's; closing: "
                           "the last's)")
        month = self.report.months[row]
        if column == RECONCILES_COLUMN:
            return self.tr(
                "Expected closing {expected}, closing {closing}; usage by feature adds up to "
                "{rollup} of {used} used ({entries} ledger entries)").format(
                    expected=fmt.credits_text(month.expected_closing),
                    closing=fmt.credits_text(month.closing),
                    rollup=fmt.credits_text(month.rollup_used), used=fmt.credits_text(month.used),
                    entries=fmt.credits_text(month.entries))
        if column == 0:
            name = QLocale().standaloneMonthName(month.month.month)
            return self.tr("{month} {year}, UTC").format(month=name, year=month.month.year)
        return None


def _tr(text: str) -> str:
    return QCoreApplication.translate("FinanceReportView", text)


def verdict_sheet(tone: str) -> str:
    """The verdict's style sheet: "success" (it reconciles), "danger" (it does not:
    loud, on a red panel) or "error" (the report could not be built)."""
    if tone == "danger":
        return (f"color: {theme.css('danger')}; background: {theme.css('danger_background')};"
                f" border: 1px solid {theme.css('danger_border')}; font-weight: bold;"
                " padding: 6px; border-radius: 4px;")
    if tone == "success":
        return f"color: {theme.css('success')}; font-weight: bold;"
    return f"color: {theme.css('danger')};"


def checks_sheet(report: FinanceReport) -> Sheet:
    """The XLSX sheet that says what was checked and what was found."""
    rows: list[list[Cell]] = [
        [_tr("Months"), _tr("{first} to {last} (UTC)").format(
            first=f"{report.first:%Y-%m}", last=f"{report.last:%Y-%m}")],
        [_tr("Made at (UTC)"), report.made_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")],
        [_tr("Every month reconciles"), _tr("yes") if report.reconciles else _tr("NO")],
        [_tr("Credits in the whole ledger"), report.ledger_total],
        [_tr("Credits the grants still hold"), report.grants_remaining],
        [_tr("Credits in the accounts' balances"), report.accounts_balance],
        [_tr("Plan grants whose expiry is not written yet"), report.pending_expiries],
        [_tr("Credits in them"), report.pending_credits],
    ]
    rows += [[_tr("Problem"), text] for text in report.problems()]
    rows += [[_tr("Warning"), text] for text in report.warnings()]
    return Sheet(_tr("Checks"), [_tr("Check"), _tr("Result")], rows)


class FinanceReportView(QWidget):
    """Build and export the finance report (see the module docstring)."""

    built = Signal(object)
    build_failed = Signal(str)
    exported = Signal(str)
    export_failed = Signal(str)

    def __init__(self, db: Database, worker: Worker, actor: Actor,
                 parent: QWidget | None = None, *, today: date | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("financeReportView")
        self._db = db
        self._worker = worker
        self._job: Job | None = None
        self._export_jobs: list[Job] = []
        decision = role_decision(actor, Action.EXPORT)
        self._may_export = decision.verdict is not Verdict.DENY
        self._export_refusal = decision.reason
        this_month = (today or datetime.now(UTC).date()).replace(day=1)
        first = add_months(this_month, 1 - DEFAULT_MONTHS)

        self.first_month = self._month_edit("financeFirstMonth",
                                            self.tr("First month of the report"), first)
        self.last_month = self._month_edit("financeLastMonth",
                                           self.tr("Last month of the report"), this_month)
        self.build_button = QPushButton(self.tr("Build report"))
        self.build_button.setObjectName("buildFinanceReport")
        self.build_button.setAccessibleName(self.tr("Build the finance report"))
        self.build_button.setToolTip(self.tr("Read the ledger for these months (may take "
                                             "seconds)"))
        self.build_button.clicked.connect(self.build)

        self.progress = QProgressBar()
        self.progress.setObjectName("financeProgress")
        self.progress.setAccessibleName(self.tr("Report progress"))
        self.progress.setTextVisible(False)
        self.progress.setMaximumWidth(200)
        self.progress.hide()
        self.stage = QLabel("")
        self.stage.setObjectName("financeStage")

        self.verdict = QLabel(self.tr("Choose the months and build the report."))
        self.verdict.setObjectName("financeVerdict")
        self.verdict.setWordWrap(True)
        self.verdict.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.warning = QLabel("")
        self.warning.setObjectName("financeWarning")
        self.warning.setWordWrap(True)
        self._verdict_tone = ""
        self._style()
        self.warning.hide()

        self.model = FinanceReportModel(self)
        self.table = CopyableTable()
        self.table.setObjectName("financeTable")
        self.table.setAccessibleName(self.tr("Finance report by month"))
        self.table.setToolTip(self.tr("One row per UTC month, then the totals"))
        self.table.setModel(self.model)
        self.table.horizontalHeader().setSectionResizeMode(
            QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(False)

        self.export_csv_button = QPushButton(self.tr("Export CSV…"))
        self.export_csv_button.setObjectName("financeExportCsv")
        self.export_csv_button.setAccessibleName(self.tr("Export the finance report as CSV"))
        self.export_csv_button.clicked.connect(lambda: self._ask_and_export(".csv"))
        self.export_xlsx_button = QPushButton(self.tr("Export XLSX…"))
        self.export_xlsx_button.setObjectName("financeExportXlsx")
        self.export_xlsx_button.setAccessibleName(self.tr("Export the finance report as XLSX"))
        self.export_xlsx_button.clicked.connect(lambda: self._ask_and_export(".xlsx"))

        controls = QHBoxLayout()
        for text, edit in ((self.tr("From:"), self.first_month),
                           (self.tr("To:"), self.last_month)):
            label = QLabel(text)
            label.setBuddy(edit)
            controls.addWidget(label)
            controls.addWidget(edit)
        controls.addWidget(self.build_button)
        controls.addWidget(self.progress)
        controls.addWidget(self.stage, 1)
        controls.addWidget(self.export_csv_button)
        controls.addWidget(self.export_xlsx_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.addLayout(controls)
        layout.addWidget(self.verdict)
        layout.addWidget(self.warning)
        layout.addWidget(self.table, 1)
        self._update_actions()

    def _style(self) -> None:
        theme.set_style_sheet(self.warning, f"color: {theme.css('warning')};")
        theme.set_style_sheet(self.verdict,
                              verdict_sheet(self._verdict_tone) if self._verdict_tone else "")

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if theme.is_palette_change(event):
            self._style()
            # The table's marks take the new colours on their next paint.
            self.table.viewport().update()

    def _month_edit(self, name: str, accessible: str, month: date) -> QDateEdit:
        edit = QDateEdit(QDate(month.year, month.month, 1))
        edit.setObjectName(name)
        edit.setAccessibleName(accessible)
        edit.setToolTip(self.tr("A UTC calendar month"))
        edit.setDisplayFormat("yyyy-MM")
        edit.setCalendarPopup(True)
        return edit

    # -- state -------------------------------------------------------------------------

    @property
    def report(self) -> FinanceReport | None:
        return self.model.report

    @property
    def is_building(self) -> bool:
        return self._job is not None

    def set_months(self, first: date, last: date) -> None:
        self.first_month.setDate(QDate(first.year, first.month, 1))
        self.last_month.setDate(QDate(last.year, last.month, 1))

    def months(self) -> tuple[date, date]:
        first = self.first_month.date().toPython()
        last = self.last_month.date().toPython()
        assert isinstance(first, date) and isinstance(last, date)
        return first.replace(day=1), last.replace(day=1)

    def shutdown(self) -> None:
        if self._job is not None:
            self._job.discard()
            self._job = None

    # -- building ------------------------------------------------------------------------

    @Slot()
    def build(self) -> Job | None:
        """Build the report for the chosen months on the worker; None if they make none."""
        first, last = self.months()
        try:
            month_range(first, last)
        except CreditsDeskError as exc:
            self._failed(exc.message)
            return None
        if self._job is not None:
            self._job.discard()

        def work(report: ProgressFn) -> FinanceReport:
            return finance_report(self._db, first_month=first, last_month=last,
                                  progress=report)

        job = self._worker.submit_reporting(work)
        job.progressed.connect(self._progressed)
        job.succeeded.connect(self._arrived)
        job.failed.connect(self._failed)
        job.finished.connect(lambda j=job: self._done(j))
        self._job = job
        self.progress.setRange(0, 0)
        self.progress.show()
        self.stage.setText(self.tr("Building the report for {first} to {last}…").format(
            first=f"{first:%Y-%m}", last=f"{last:%Y-%m}"))
        self._update_actions()
        return job

    @Slot(str, int, int)
    def _progressed(self, stage: str, done: int, total: int) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)
        self.stage.setText(f"{stage}…" if done < total else stage)

    def _done(self, job: Job) -> None:
        if self._job is job:
            self._job = None
            self.progress.hide()
        self._update_actions()

    @Slot(object)
    def _arrived(self, report: FinanceReport) -> None:
        self.model.set_report(report)
        self.stage.setText(self.tr("Built in {seconds} s.").format(
            seconds=f"{report.seconds:.1f}"))
        problems = report.problems()
        if problems:
            self._verdict_tone = "danger"
            self._style()
            self.verdict.setText(self.tr("THIS REPORT DOES NOT RECONCILE. {problems}").format(
                problems=" ".join(problems)))
        else:
            self._verdict_tone = "success"
            self._style()
            self.verdict.setText(self.tr(
                "{mark} Every month reconciles, and the ledger, the grants and the accounts' "
                "balances agree ({credits} credits).").format(
                    mark=RECONCILED_MARK, credits=fmt.credits_text(report.ledger_total)))
        warnings = report.warnings()
        self.warning.setText(" ".join(warnings))
        self.warning.setVisible(bool(warnings))
        self.built.emit(report)

    @Slot(str)
    def _failed(self, message: str) -> None:
        self._verdict_tone = "error"
        self._style()
        self.verdict.setText(message)
        self.stage.setText("")
        self.build_failed.emit(message)

    # -- exports -------------------------------------------------------------------------

    @Slot()
    def _update_actions(self) -> None:
        ready = self.report is not None
        self.build_button.setEnabled(True)
        for button in (self.export_csv_button, self.export_xlsx_button):
            button.setEnabled(self._may_export and ready)
            button.setToolTip(self._export_refusal if not self._may_export else
                              self.tr("Save the report to a file") if ready
                              else self.tr("Build the report first"))

    def _ask_and_export(self, suffix: str) -> None:
        report = self.report
        if report is None:
            return
        kind = (self.tr("CSV table (*.csv)") if suffix == ".csv"
                else self.tr("Excel workbook (*.xlsx)"))
        suggested = Path.home() / f"credits-finance-{report.first:%Y-%m}-{report.last:%Y-%m}"
        path, _filter = QFileDialog.getSaveFileName(self, self.tr("Export the finance report"),
                                                    f"{suggested}{suffix}", kind)
        if not path:
            return
        if suffix == ".csv":
            self.export_csv(path)
        else:
            self.export_xlsx(path)

    def _refuse(self) -> bool:
        if not self._may_export:
            self.export_failed.emit(self._export_refusal)
            return True
        if self.report is None:
            self.export_failed.emit(self.tr("Build the report first."))
            return True
        return False

    def export_csv(self, path: str | Path) -> Job | None:
        """Write the report table as CSV on the worker; None if refused."""
        if self._refuse():
            return None
        header, rows = list(self.model.header), [list(r) for r in self.model.rows]
        return self._write(partial(write_csv, path, header, rows))

    def export_xlsx(self, path: str | Path) -> Job | None:
        """Write the report and its checks as an XLSX workbook on the worker."""
        if self._refuse():
            return None
        report = self.report
        assert report is not None
        rows: list[list[Cell]] = [list(r) for r in self.model.rows]
        sheets = [
            Sheet(self.tr("Finance report"), self.model.header, rows, totals_rows=1,
                  notes=[*report.problems(), *report.warnings()]),
            checks_sheet(report),
        ]
        return self._write(partial(write_xlsx, path, sheets))

    def _write(self, work: Callable[[], Path]) -> Job:
        job = self._worker.submit(work)
        job.succeeded.connect(self._export_succeeded)
        job.failed.connect(self._export_error)
        job.finished.connect(lambda j=job: self._export_jobs.remove(j))
        self._export_jobs.append(job)
        self.stage.setText(self.tr("Saving…"))
        return job

    @Slot(object)
    def _export_succeeded(self, path: Path) -> None:
        self.stage.setText(self.tr("Saved {path}.").format(path=path))
        self.exported.emit(str(path))

    @Slot(str)
    def _export_error(self, message: str) -> None:
        self.stage.setText(message)
        self.export_failed.emit(message)
