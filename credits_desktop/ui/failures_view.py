"""The support team's to-do list: failed charges that still cost the customer credits.

:class:`FailuresView` lists, across every account and newest first, the failed charges
with credits > 0 that were never refunded (``services.worklists.failed_charges_page``),
filtered by feature, model and time, paged lazily as the table scrolls. Selecting
charges of one account and pressing "Refund selected…" opens the
:class:`~credits_desktop.ui.refund_dialog.RefundDialog` for them; once the refund is
applied the list is read again and the refunded charges are gone from it. A refund
covers one account, so a selection spanning several accounts keeps the button
disabled and says why. Double-clicking a row asks the main window to open its account.

The frame (filters, paging, status, messages) is :class:`~credits_desktop.ui.work_list.
WorkListView`'s; :class:`PeriodFilter`, :func:`worklist_table` and
:func:`local_midnight` live there too and are named here as before. Every read goes
through the window's :class:`~credits_desktop.ui.workers.Worker`; every word shown
goes through Qt's translation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from PySide6.QtCore import QCoreApplication, Signal, Slot
from PySide6.QtWidgets import QComboBox, QLineEdit, QPushButton, QWidget

from credits_desktop.domain.permissions import Action, Verdict
from credits_desktop.services.catalog import FeatureChoice, list_features
from credits_desktop.services.operations import Actor
from credits_desktop.services.paging import Cursor, Page
from credits_desktop.services.results import OperationResult
from credits_desktop.services.worklists import FailedCharge, failed_charges_page
from credits_desktop.store.database import Database

from . import formatting as fmt
from .detail_models import fill_feature_combo
from .i18n import QT_TRANSLATE_NOOP, counted
from .refund_dialog import RefundDialog
from .role_gate import role_decision
from .work_list import (
    TYPING_DELAY_MS,
    PeriodFilter,
    WorkListModel,
    WorkListView,
    datetime_width,
    local_midnight,
    size_columns,
    worklist_table,
)
from .workers import Worker

__all__ = [
    "FAILURES_PAGE_SIZE",
    "TYPING_DELAY_MS",
    "FailureFilter",
    "FailuresModel",
    "FailuresView",
    "PeriodFilter",
    "local_midnight",
    "worklist_table",
]

FAILURES_PAGE_SIZE: Final = 100

# English sources, translated where shown (context "FailuresView").
REFUND_TIP = QT_TRANSLATE_NOOP(
    "FailuresView", "Refund the selected failed charges (all of one account)")
SELECT_TIP = QT_TRANSLATE_NOOP(
    "FailuresView", "Select one or more charges of one account to refund them.")
ONE_ACCOUNT_TIP = QT_TRANSLATE_NOOP(
    "FailuresView",
    "Refund one account at a time: the selected charges belong to several accounts.")
FEATURE_TIP = QT_TRANSLATE_NOOP("FailuresView", "Only failed charges of this AI feature")
FEATURES_FAILED_TIP = QT_TRANSLATE_NOOP(
    "FailuresView", "The features could not be loaded: {message} Refresh to try again.")


def _tr(text: str) -> str:
    return QCoreApplication.translate("FailuresView", text)


@dataclass(frozen=True)
class FailureFilter:
    """Which failed charges to list (see ``failed_charges_page``)."""

    feature: str | None = None
    model: str | None = None
    since: datetime | None = None
    until: datetime | None = None


COL_TIME, COL_ACCOUNT, COL_FEATURE, COL_MODEL, COL_CREDITS, COL_REASON = range(6)


class FailuresModel(WorkListModel):
    """Unrefunded failed charges across accounts, newest first, filtered in SQL."""

    TR_CONTEXT = "FailuresModel"
    COLUMNS = (
        (QT_TRANSLATE_NOOP("FailuresModel", "Time"),
         QT_TRANSLATE_NOOP("FailuresModel",
                           "When the generation ran (local time; UTC in the tooltip)")),
        (QT_TRANSLATE_NOOP("FailuresModel", "Account"),
         QT_TRANSLATE_NOOP("FailuresModel", "The customer account charged")),
        (QT_TRANSLATE_NOOP("FailuresModel", "Feature"),
         QT_TRANSLATE_NOOP("FailuresModel", "The AI feature used")),
        (QT_TRANSLATE_NOOP("FailuresModel", "Model"),
         QT_TRANSLATE_NOOP("FailuresModel", "The model the feature ran on, if it names one")),
        (QT_TRANSLATE_NOOP("FailuresModel", "Credits"),
         QT_TRANSLATE_NOOP("FailuresModel", "Credits the failed generation cost")),
        (QT_TRANSLATE_NOOP("FailuresModel", "Failure reason"),
         QT_TRANSLATE_NOOP("FailuresModel", "Why the generation failed")),
    )
    NUMERIC = frozenset({COL_CREDITS})

    def __init__(self, db: Database, worker: Worker, parent: Any = None, *,
                 page_size: int = FAILURES_PAGE_SIZE) -> None:
        super().__init__(db, worker, parent, page_size=page_size, wanted=FailureFilter())

    @property
    def filter(self) -> FailureFilter:
        wanted = self.wanted
        assert isinstance(wanted, FailureFilter)
        return wanted

    def set_filter(self, failure_filter: FailureFilter) -> None:
        """List the failed charges matching ``failure_filter``, from the first page."""
        self.ask(failure_filter)

    def reader(self) -> Callable[[Database, Cursor | None, int], Page[Any]]:
        f = self.filter

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
            return self.tr("{utc}\nCharge id: {charge}").format(
                utc=fmt.utc_datetime(row.charge.occurred_at), charge=row.charge.external_id)
        if column == COL_ACCOUNT:
            return self.tr("Account #{id} (double-click to open it)").format(id=row.account_id)
        if column == COL_REASON:
            return row.charge.failure_reason or None
        return None


class FailuresView(WorkListView):
    """The "failed and still charged" queue (see the module docstring).

    The list is read the first time the view is shown (or on :meth:`refresh`).
    """

    model: FailuresModel

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
        super().__init__(db, worker, actor, parent, name="failuresView", prefix="failures")
        self.refund_dialog: RefundDialog | None = None

        self.model = FailuresModel(db, worker, self, page_size=page_size)

        self.feature_filter = QComboBox()
        self.feature_filter.setObjectName("failuresFeature")
        self.feature_filter.setAccessibleName(self.tr("Feature filter"))
        self.feature_filter.setToolTip(self.tr(FEATURE_TIP))
        self.feature_filter.addItem(self.tr("All features"), None)
        self.feature_filter.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.feature_filter.currentIndexChanged.connect(self._filters_changed)

        self.model_filter = QLineEdit()
        self.model_filter.setObjectName("failuresModel")
        self.model_filter.setAccessibleName(self.tr("Model filter"))
        self.model_filter.setToolTip(
            self.tr("Only charges whose model name starts with this text"))
        self.model_filter.setPlaceholderText(self.tr("Model"))
        self.model_filter.setClearButtonEnabled(True)
        self.model_filter.setMaxLength(60)
        self._typed_filter(self.model_filter)

        self.period = PeriodFilter("failuresPeriod", self.tr("Charges"))
        self.period.changed.connect(self._filters_changed)

        self.refresh_button.setAccessibleName(self.tr("Refresh the failed charges"))

        self.refund_button = QPushButton(self.tr("Refund selected…"))
        self.refund_button.setObjectName("refundSelected")
        self.refund_button.setAccessibleName(self.tr("Refund selected charges"))
        self.refund_button.clicked.connect(self.refund_selected)

        self.table = worklist_table(
            self.model, "failuresTable", self.tr("Failed charges not refunded"),
            self.tr("Failed charges that cost credits and were never refunded, newest first"),
        )
        self.table.selectionModel().selectionChanged.connect(self._update_actions)
        self.model.modelReset.connect(self._update_actions)

        self.status.setObjectName("failuresStatus")
        self.status.setWordWrap(True)
        self._lay_out([self.feature_filter, self.model_filter, self.period],
                      [self.refund_button])
        self._size_columns()
        self._update_actions()

    # -- what the view does -------------------------------------------------------------

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

    # -- the work list ------------------------------------------------------------------

    def wanted(self) -> FailureFilter:
        since, until = self.period.bounds()
        return FailureFilter(
            feature=self.feature_filter.currentData(),
            model=self.model_filter.text().strip() or None,
            since=since,
            until=until,
        )

    def loading_text(self) -> str:
        return self.tr("Loading the failed charges…")

    def empty_text(self) -> str:
        return self.tr("No failed charge is waiting for a refund.")

    def count_text(self, count: int) -> str:
        return counted(self.tr("%Ln failed charge(s) shown", "", count), count)

    def account_of(self, row: object) -> int | None:
        return row.account_id if isinstance(row, FailedCharge) else None

    def choices_work(self) -> Callable[[], object]:
        db = self._db
        return lambda: list_features(db)

    def choices_arrived(self, choices: Any) -> None:
        features: list[FeatureChoice] = choices
        kept = fill_feature_combo(self.feature_filter, features)
        self.feature_filter.setToolTip(self.tr(FEATURE_TIP))
        if not kept:
            self._filters_changed()

    def choices_failed(self, message: str) -> None:
        self.feature_filter.setToolTip(self.tr(FEATURES_FAILED_TIP).format(message=message))

    # -- events -------------------------------------------------------------------------

    @Slot(object)
    def _refund_applied(self, result: OperationResult) -> None:
        self.show_message(result.message, failed=False)
        # The refunded charges leave the list; a request leaves them until approved.
        self.model.refresh(rows=self.model.rowCount())
        self.refunded.emit(result)

    def _dialog_closed(self, dialog: RefundDialog) -> None:
        if self.refund_dialog is dialog:
            self.refund_dialog = None
        dialog.deleteLater()

    @Slot()
    def _update_actions(self) -> None:
        decision = role_decision(self._actor, Action.REFUND)
        chosen = self.selected_charges()
        accounts = {c.account_id for c in chosen}
        if decision.verdict is Verdict.DENY:
            enabled, tip = False, decision.reason
        elif not chosen:
            enabled, tip = False, self.tr(SELECT_TIP)
        elif len(accounts) > 1:
            enabled, tip = False, self.tr(ONE_ACCOUNT_TIP)
        else:
            count = len(chosen)
            credits = sum(c.charge.credits for c in chosen)
            enabled = True
            tip = self.tr("{action}: {charges} of {account}, {credits} credits").format(
                action=self.tr(REFUND_TIP),
                charges=counted(self.tr("%Ln charge(s)", "", count), count),
                account=chosen[0].account_name, credits=fmt.credits_text(credits))
        self.refund_button.setEnabled(enabled)
        self.refund_button.setToolTip(tip)
        self.refund_button.setAccessibleDescription(tip)

    def _size_columns(self) -> None:
        # Times as the locale writes them ("11/23/2026 5:41 PM" is longer than ISO).
        size_columns(self.table, {
            COL_TIME: datetime_width(self.table.fontMetrics()),
            COL_ACCOUNT: "Andersson & O'Brien Marketing", COL_FEATURE: "Video transcription",
            COL_MODEL: "imagen-ultra", COL_CREDITS: fmt.credits_text(10_000)})
