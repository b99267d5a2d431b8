"""The support team's to-do list: failed charges that still cost the customer credits.

:class:`FailuresView` lists, across every account and newest first, the failed charges
with credits > 0 that were never refunded (``services.worklists.failed_charges_page``),
filtered by feature, model and time, paged lazily as the table scrolls. Selecting
charges of one account and pressing "Refund selected…" opens the
:class:`~credits_desktop.ui.refund_dialog.RefundDialog` for them; once the refund is
applied the list is read again and the refunded charges are gone from it. A refund
covers one account, so a selection spanning several accounts keeps the button
disabled and says why. Double-clicking a row asks the main window to open its account.

Also here, shared with the audit view: :class:`PeriodFilter` (any time, today, the
last 7 or 30 days, or a custom range of local dates) and :func:`worklist_table`.
Every read goes through the window's :class:`~credits_desktop.ui.workers.Worker`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final

from PySide6.QtCore import QDate, QModelIndex, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDateEdit,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from credits_desktop.domain.permissions import Action, Verdict
from credits_desktop.services.catalog import FeatureChoice, list_features
from credits_desktop.services.operations import Actor
from credits_desktop.services.paging import Cursor, Page
from credits_desktop.services.results import OperationResult
from credits_desktop.services.worklists import FailedCharge, failed_charges_page
from credits_desktop.store.database import Database

from . import formatting as fmt
from .account_detail import PRESETS, CopyableTable
from .detail_models import fill_feature_combo
from .refund_dialog import RefundDialog
from .role_gate import role_decision
from .table_models import ROW_ROLE, LoadingModel, PagedModel
from .workers import Job, Worker

__all__ = [
    "FAILURES_PAGE_SIZE",
    "FailureFilter",
    "FailuresModel",
    "FailuresView",
    "PeriodFilter",
    "local_midnight",
    "worklist_table",
]

FAILURES_PAGE_SIZE: Final = 100
# Typing a model name filters once, shortly after the last keystroke.
TYPING_DELAY_MS: Final = 300

MESSAGE_STYLE = "color: #58151c;"
NOTICE_STYLE = "color: #1b5e20;"

REFUND_TIP = "Refund the selected failed charges (all of one account)"
SELECT_TIP = "Select one or more charges of one account to refund them."
ONE_ACCOUNT_TIP = (
    "Refund one account at a time: the selected charges belong to several accounts."
)
FEATURE_TIP = "Only failed charges of this AI feature"
FEATURES_FAILED_TIP = "The features could not be loaded: {message} Refresh to try again."


def local_midnight(day: date) -> datetime:
    """The start of a local calendar day, as an aware UTC time."""
    return datetime.combine(day, time()).astimezone().astimezone(UTC)


def worklist_table(model: LoadingModel, name: str, accessible: str, tip: str,
                   *, multi: bool = True) -> CopyableTable:
    """A read-only table selecting whole rows; Ctrl+C copies the selected cells."""
    table = CopyableTable()
    table.setObjectName(name)
    table.setAccessibleName(accessible)
    table.setToolTip(tip)
    table.setModel(model)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(
        QAbstractItemView.SelectionMode.ExtendedSelection if multi
        else QAbstractItemView.SelectionMode.SingleSelection
    )
    return table


class PeriodFilter(QWidget):
    """A time window of local calendar days: a preset, or a custom range.

    ``changed`` says the window changed; :meth:`bounds` gives it as aware UTC times,
    ``since <= t < until``, either None for no bound.
    """

    changed = Signal()

    def __init__(self, name: str, what: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName(name)
        self.preset = QComboBox()
        self.preset.setObjectName(f"{name}Preset")
        self.preset.setAccessibleName(f"{what} period")
        self.preset.setToolTip(f"Only {what.lower()} in this period (local dates)")
        for label, _days in PRESETS:
            self.preset.addItem(label)
        today = QDate.currentDate()
        self.date_from = QDateEdit(today.addDays(-29))
        self.date_from.setObjectName(f"{name}From")
        self.date_from.setAccessibleName(f"{what} from date")
        self.date_from.setToolTip("First day shown (local date); choose \"Custom range\"")
        self.date_to = QDateEdit(today)
        self.date_to.setObjectName(f"{name}To")
        self.date_to.setAccessibleName(f"{what} to date")
        self.date_to.setToolTip("Last day shown, included (local date); choose \"Custom range\"")
        for edit in (self.date_from, self.date_to):
            edit.setCalendarPopup(True)
            edit.setDisplayFormat("yyyy-MM-dd")
            edit.setEnabled(False)
            edit.dateChanged.connect(self._dates_changed)
        self.preset.currentIndexChanged.connect(self._preset_changed)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.preset)
        layout.addWidget(self.date_from)
        layout.addWidget(QLabel("to"))
        layout.addWidget(self.date_to)

    @property
    def custom(self) -> bool:
        return self.preset.currentIndex() == len(PRESETS) - 1

    def set_custom(self, first: date, last: date) -> None:
        """Choose a custom range of local days, ``last`` included."""
        for edit, day in ((self.date_from, first), (self.date_to, last)):
            edit.blockSignals(True)
            edit.setDate(QDate(day.year, day.month, day.day))
            edit.blockSignals(False)
        if self.custom:
            self.changed.emit()
        else:
            self.preset.setCurrentIndex(len(PRESETS) - 1)

    def bounds(self) -> tuple[datetime | None, datetime | None]:
        if self.custom:
            first = self.date_from.date().toPython()
            last = self.date_to.date().toPython()
            assert isinstance(first, date) and isinstance(last, date)
            return local_midnight(first), local_midnight(last + timedelta(days=1))
        days = PRESETS[self.preset.currentIndex()][1]
        if days is None:
            return None, None
        today = datetime.now(UTC).astimezone().date()
        return local_midnight(today - timedelta(days=days)), None

    @Slot()
    def _preset_changed(self) -> None:
        self.date_from.setEnabled(self.custom)
        self.date_to.setEnabled(self.custom)
        self.changed.emit()

    @Slot()
    def _dates_changed(self) -> None:
        if self.custom:
            self.changed.emit()


@dataclass(frozen=True)
class FailureFilter:
    """Which failed charges to list (see ``failed_charges_page``)."""

    feature: str | None = None
    model: str | None = None
    since: datetime | None = None
    until: datetime | None = None


COL_TIME, COL_ACCOUNT, COL_FEATURE, COL_MODEL, COL_CREDITS, COL_REASON = range(6)


class FailuresModel(PagedModel):
    """Unrefunded failed charges across accounts, newest first, filtered in SQL."""

    COLUMNS = (
        ("Time", "When the generation ran (local time; UTC in the tooltip)"),
        ("Account", "The customer account charged"),
        ("Feature", "The AI feature used"),
        ("Model", "The model the feature ran on, if it names one"),
        ("Credits", "Credits the failed generation cost"),
        ("Failure reason", "Why the generation failed"),
    )
    NUMERIC = frozenset({COL_CREDITS})

    def __init__(self, db: Database, worker: Worker, parent: Any = None, *,
                 page_size: int = FAILURES_PAGE_SIZE) -> None:
        super().__init__(db, worker, parent, page_size=page_size)
        self._filter = FailureFilter()

    @property
    def filter(self) -> FailureFilter:
        return self._filter

    def set_filter(self, failure_filter: FailureFilter) -> None:
        """List the failed charges matching ``failure_filter``, from the first page."""
        if self._started and failure_filter == self._filter and not self._failed:
            return
        self._filter = failure_filter
        self.refresh()

    def answers(self) -> object:
        return self._filter

    def reader(self) -> Callable[[Database, Cursor | None, int], Page[Any]]:
        f = self._filter

        def read(db: Database, after: Cursor | None, limit: int) -> Page[Any]:
            return failed_charges_page(db, feature=f.feature, model=f.model, since=f.since,
                                       until=f.until, after=after, limit=limit)

        return read

    def display(self, row: FailedCharge, column: int) -> str | None:
        c = row.charge
        if column == COL_TIME:
            return fmt.local_datetime(c.occurred_at)
        if column == COL_ACCOUNT:
            return row.account_name
        if column == COL_FEATURE:
            return c.feature_name
        if column == COL_MODEL:
            return c.model or fmt.NOTHING
        if column == COL_CREDITS:
            return fmt.credits_text(c.credits)
        if column == COL_REASON:
            return c.failure_reason or ""
        return None

    def tooltip(self, row: FailedCharge, column: int) -> str | None:
        if column == COL_TIME:
            return f"{fmt.utc_datetime(row.charge.occurred_at)}\nCharge id: " \
                   f"{row.charge.external_id}"
        if column == COL_ACCOUNT:
            return f"Account #{row.account_id} (double-click to open it)"
        if column == COL_REASON:
            return row.charge.failure_reason or None
        return None


class FailuresView(QWidget):
    """The "failed and still charged" queue (see the module docstring).

    The list is read the first time the view is shown (or on :meth:`refresh`).
    """

    # The account of the double-clicked charge, by id.
    open_account_requested = Signal(int)
    # The OperationResult of a refund made from this view (applied or requested).
    refunded = Signal(object)

    def __init__(
        self,
        db: Database,
        worker: Worker,
        actor: Actor,
        parent: QWidget | None = None,
        *,
        page_size: int = FAILURES_PAGE_SIZE,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("failuresView")
        self._db = db
        self._worker = worker
        self._actor = actor
        self._features_job: Job | None = None
        self.refund_dialog: RefundDialog | None = None

        self.model = FailuresModel(db, worker, self, page_size=page_size)

        self.feature_filter = QComboBox()
        self.feature_filter.setObjectName("failuresFeature")
        self.feature_filter.setAccessibleName("Feature filter")
        self.feature_filter.setToolTip(FEATURE_TIP)
        self.feature_filter.addItem("All features", None)
        self.feature_filter.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.feature_filter.currentIndexChanged.connect(self._filters_changed)

        self.model_filter = QLineEdit()
        self.model_filter.setObjectName("failuresModel")
        self.model_filter.setAccessibleName("Model filter")
        self.model_filter.setToolTip("Only charges whose model name starts with this text")
        self.model_filter.setPlaceholderText("Model")
        self.model_filter.setClearButtonEnabled(True)
        self.model_filter.setMaxLength(60)
        self._typing = QTimer(self)
        self._typing.setSingleShot(True)
        self._typing.setInterval(TYPING_DELAY_MS)
        self._typing.timeout.connect(self._filters_changed)
        self.model_filter.textChanged.connect(self._typing.start)
        self.model_filter.returnPressed.connect(self._filters_changed)

        self.period = PeriodFilter("failuresPeriod", "Charges")
        self.period.changed.connect(self._filters_changed)

        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.setObjectName("failuresRefresh")
        self.refresh_button.setAccessibleName("Refresh the failed charges")
        self.refresh_button.setToolTip("Read the list again")
        self.refresh_button.clicked.connect(self.refresh)

        self.refund_button = QPushButton("Refund selected…")
        self.refund_button.setObjectName("refundSelected")
        self.refund_button.setAccessibleName("Refund selected charges")
        self.refund_button.clicked.connect(self.refund_selected)

        self.table = worklist_table(
            self.model, "failuresTable", "Failed charges not refunded",
            "Failed charges that cost credits and were never refunded, newest first",
        )
        self.table.doubleClicked.connect(self._open_account)
        self.table.enter_pressed.connect(self._open_account)
        self.table.selectionModel().selectionChanged.connect(self._update_actions)
        self.model.modelReset.connect(self._update_actions)

        self.status = QLabel()
        self.status.setObjectName("failuresStatus")
        self.status.setWordWrap(True)
        self.message = QLabel()
        self.message.setObjectName("failuresMessage")
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.message.hide()

        filters = QHBoxLayout()
        filters.addWidget(self.feature_filter)
        filters.addWidget(self.model_filter)
        filters.addWidget(self.period)
        filters.addStretch(1)
        filters.addWidget(self.refresh_button)
        actions = QHBoxLayout()
        actions.addWidget(self.status, 1)
        actions.addWidget(self.refund_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.addLayout(filters)
        layout.addWidget(self.message)
        layout.addWidget(self.table, 1)
        layout.addLayout(actions)

        self.model.page_loaded.connect(self._show_count)
        self.model.loading_changed.connect(self._show_count)
        self.model.load_failed.connect(self._load_failed)
        self._size_columns()
        self._update_actions()

    # -- what the view does -------------------------------------------------------------

    @Slot()
    def refresh(self) -> None:
        """Read the features and the list again (as many rows as are loaded)."""
        self._load_features()
        if self.model.started and self.model.filter == self._current_filter():
            self.model.refresh(rows=self.model.rowCount())
        else:
            self.model.set_filter(self._current_filter())

    def shutdown(self) -> None:
        """The tab closes: results still on their way are not wanted."""
        if self._features_job is not None:
            self._features_job.discard()
            self._features_job = None
        self.model.discard()

    @property
    def is_loading(self) -> bool:
        return self._features_job is not None or self.model.is_loading

    def selected_charges(self) -> list[FailedCharge]:
        """The selected rows, in list order."""
        rows = sorted({i.row() for i in self.table.selectionModel().selectedRows()})
        return [self.model.row_at(r) for r in rows]

    @Slot()
    def refund_selected(self) -> None:
        """Open the refund dialog for the selected charges (all of one account)."""
        chosen = self.selected_charges()
        if not chosen or len({c.account_id for c in chosen}) != 1 \
                or not self.refund_button.isEnabled():
            return
        first = chosen[0]
        dialog = RefundDialog(self._db, self._actor, first.account_id, first.account_name,
                              [c.charge for c in chosen], worker=self._worker, parent=self)
        dialog.applied.connect(self._refund_applied)
        dialog.finished.connect(lambda _code, d=dialog: self._dialog_closed(d))
        self.refund_dialog = dialog
        dialog.open()

    # -- events -------------------------------------------------------------------------

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if not self.model.started:
            self.refresh()

    @Slot(object)
    def _refund_applied(self, result: OperationResult) -> None:
        self.message.setStyleSheet(NOTICE_STYLE)
        self.message.setText(result.message)
        self.message.show()
        # The refunded charges leave the list; a request leaves them until approved.
        self.model.refresh(rows=self.model.rowCount())
        self.refunded.emit(result)

    def _dialog_closed(self, dialog: RefundDialog) -> None:
        if self.refund_dialog is dialog:
            self.refund_dialog = None
        dialog.deleteLater()

    @Slot(QModelIndex)
    def _open_account(self, index: QModelIndex) -> None:
        row = index.data(ROW_ROLE)
        if isinstance(row, FailedCharge):
            self.open_account_requested.emit(row.account_id)

    @Slot()
    def _update_actions(self) -> None:
        decision = role_decision(self._actor, Action.REFUND)
        chosen = self.selected_charges()
        accounts = {c.account_id for c in chosen}
        if decision.verdict is Verdict.DENY:
            enabled, tip = False, decision.reason
        elif not chosen:
            enabled, tip = False, SELECT_TIP
        elif len(accounts) > 1:
            enabled, tip = False, ONE_ACCOUNT_TIP
        else:
            count = len(chosen)
            credits = sum(c.charge.credits for c in chosen)
            enabled = True
            tip = (f"{REFUND_TIP}: {count} charge{'s' if count != 1 else ''} of "
                   f"{chosen[0].account_name}, {fmt.credits_text(credits)} credits")
        self.refund_button.setEnabled(enabled)
        self.refund_button.setToolTip(tip)
        self.refund_button.setAccessibleDescription(tip)

    @Slot()
    def _show_count(self) -> None:
        count = self.model.rowCount()
        if self.model.is_loading:
            text = "Loading the failed charges…"
        elif count == 0 and self.model.started and not self.model.has_failed:
            text = "No failed charge is waiting for a refund."
        else:
            more = "" if self.model.is_complete else " (scroll for more)"
            text = f"{count:,} failed charge{'s' if count != 1 else ''} shown{more}"
        self.status.setText(text)

    @Slot(str)
    def _load_failed(self, message: str) -> None:
        self.message.setStyleSheet(MESSAGE_STYLE)
        self.message.setText(message)
        self.message.show()
        self._show_count()

    # -- filters ------------------------------------------------------------------------

    def _current_filter(self) -> FailureFilter:
        since, until = self.period.bounds()
        return FailureFilter(
            feature=self.feature_filter.currentData(),
            model=self.model_filter.text().strip() or None,
            since=since,
            until=until,
        )

    @Slot()
    def _filters_changed(self) -> None:
        self._typing.stop()
        if not self.model.started:
            return  # the first read, when shown, takes the filters as they are then
        self.message.hide()
        self.model.set_filter(self._current_filter())

    def _load_features(self) -> None:
        if self._features_job is not None:
            self._features_job.discard()
        db = self._db
        job = self._worker.submit(lambda: list_features(db))
        job.succeeded.connect(self._features_arrived)
        job.failed.connect(self._features_failed)
        self._features_job = job

    @Slot(object)
    def _features_arrived(self, features: list[FeatureChoice]) -> None:
        self._features_job = None
        kept = fill_feature_combo(self.feature_filter, features)
        self.feature_filter.setToolTip(FEATURE_TIP)
        if not kept:
            self._filters_changed()

    @Slot(str)
    def _features_failed(self, message: str) -> None:
        self._features_job = None
        self.feature_filter.setToolTip(FEATURES_FAILED_TIP.format(message=message))

    def _size_columns(self) -> None:
        metrics = self.fontMetrics()
        samples = ("2026-12-31 23:59", "Andersson & O'Brien Marketing", "Video transcription",
                   "imagen-ultra", "10,000")
        header = self.table.horizontalHeader()
        for column, sample in enumerate(samples):
            title = str(self.model.headerData(column, Qt.Orientation.Horizontal))
            width = max(metrics.horizontalAdvance(sample),
                        header.fontMetrics().horizontalAdvance(title)) + 24
            header.resizeSection(column, width)
