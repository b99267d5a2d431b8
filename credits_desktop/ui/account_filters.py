"""The filter bar of the accounts browser: plan, status, low balance, unrefunded failures.

:class:`AccountFilterBar` is one compact row meant to sit beside the search field.
Whenever the staff member changes a filter it emits ``filters_changed`` with an
:class:`AccountFilters`, which :meth:`AccountsModel.set_filters
<credits_desktop.ui.accounts_model.AccountsModel.set_filters>` turns into the SQL
query (``services.queries.AccountQuery``). The plans offered come from the
database (``services.catalog.list_plans``), read by the window's
:class:`~credits_desktop.ui.workers.Worker`, never on the GUI thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from PySide6.QtCore import QT_TRANSLATE_NOOP, QCoreApplication, Qt, Signal, Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QSizePolicy,
    QSpinBox,
    QToolButton,
    QWidget,
)

from credits_desktop.services.catalog import PlanChoice, list_plans
from credits_desktop.services.queries import ACCOUNT_STATUSES
from credits_desktop.store.database import Database

from . import formatting as fmt
from .account_detail import STATUS_LABELS
from .workers import Job, Worker

__all__ = [
    "DEFAULT_LOW_BALANCE",
    "LOW_BALANCE_MAX",
    "LOW_BALANCE_MIN",
    "AccountFilterBar",
    "AccountFilters",
]

# "Low balance" means a total available below this many credits unless changed.
DEFAULT_LOW_BALANCE: Final = 100
LOW_BALANCE_MIN: Final = 1
LOW_BALANCE_MAX: Final = 10_000_000

# The tooltips' English source texts, translated when the bar is made (see _tr).
_CONTEXT = "AccountFilterBar"
PLAN_TIP = str(QT_TRANSLATE_NOOP("AccountFilterBar", "Only accounts on this plan"))
PLANS_FAILED_TIP = str(QT_TRANSLATE_NOOP(
    "AccountFilterBar",
    "The plans could not be loaded: {message} Open this list to try again."))
STATUS_TIP = str(QT_TRANSLATE_NOOP(
    "AccountFilterBar",
    "Only accounts with this status (suspended and closed ones are greyed out)"))
LOW_TIP = str(QT_TRANSLATE_NOOP(
    "AccountFilterBar",
    "Only accounts whose total available credits (plan credits left, purchased and "
    "refund credits) are below the number beside it"))
THRESHOLD_TIP = str(QT_TRANSLATE_NOOP(
    "AccountFilterBar",
    "Total available below this many credits (tick “Low balance” to use it)"))
UNREFUNDED_TIP = str(QT_TRANSLATE_NOOP(
    "AccountFilterBar",
    "Only accounts with at least one failed charge that cost credits and has not been "
    "refunded yet"))
CLEAR_TIP = str(QT_TRANSLATE_NOOP(
    "AccountFilterBar", "Show every account again (the search text stays)"))


def _tr(source: str) -> str:
    """One of the texts above in the user's language."""
    return QCoreApplication.translate(_CONTEXT, source)


@dataclass(frozen=True)
class AccountFilters:
    """The filters chosen in the bar; the defaults filter nothing.

    ``low_balance_below`` keeps the accounts whose total available credits (as the
    list shows them: expired plan credits count for nothing) are strictly below it.
    """

    plan_code: str | None = None
    status: str | None = None
    low_balance_below: int | None = None
    unrefunded_failed_only: bool = False

    @property
    def active(self) -> bool:
        """Whether any filter is set (the list may hide accounts)."""
        return self != AccountFilters()


class _PlanCombo(QComboBox):
    """The plan choice; opening it after the plans failed to load tries again."""

    opening = Signal()

    def showPopup(self) -> None:
        self.opening.emit()
        super().showPopup()


class AccountFilterBar(QWidget):
    """One row of account filters; emits ``filters_changed(AccountFilters)``."""

    # The filters, each time the staff member changes them (never twice the same).
    filters_changed = Signal(object)
    # The plans from the database are in the plan list.
    plans_loaded = Signal()
    # A plain message: the plans could not be read (the list offers "All plans" only).
    plans_failed = Signal(str)

    def __init__(self, db: Database, worker: Worker, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("accountFilters")
        self._db = db
        self._worker = worker
        self._plans_job: Job | None = None
        self._plans_failed = False
        # The source of truth for the plan: the combo may not list it yet while the
        # plans are loading (set_filters can name one before they arrive).
        self._plan_code: str | None = None
        self._emitted = AccountFilters()

        self.plan = _PlanCombo()
        self.plan.setObjectName("planFilter")
        self.plan.addItem(self.tr("All plans"), None)
        self.plan.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.plan.opening.connect(self._retry_plans)

        self.status = QComboBox()
        self.status.setObjectName("accountStatusFilter")
        self.status.addItem(self.tr("All statuses"), None)
        for code in ACCOUNT_STATUSES:
            # The account view's words for the statuses, in its translation context.
            label = STATUS_LABELS.get(code)
            self.status.addItem(
                QCoreApplication.translate("AccountDetail", str(label)) if label is not None
                else code.capitalize(), code)
        self.status.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)

        self.low_balance = QCheckBox(self.tr("Low balance"))
        self.low_balance.setObjectName("lowBalanceFilter")
        self.threshold = QSpinBox()
        self.threshold.setObjectName("lowBalanceThreshold")
        self.threshold.setRange(LOW_BALANCE_MIN, LOW_BALANCE_MAX)
        self.threshold.setValue(DEFAULT_LOW_BALANCE)
        self.threshold.setPrefix(self.tr("below ", "before the threshold: below 100 credits"))
        self.threshold.setSuffix(self.tr(" credits", "after the threshold: below 100 credits"))
        self.threshold.setGroupSeparatorShown(True)
        # Typing "5000" must not run four searches: the value counts on Enter, on
        # leaving the field, or at once for the arrows.
        self.threshold.setKeyboardTracking(False)
        self.threshold.setEnabled(False)

        self.unrefunded = QCheckBox(self.tr("Has unrefunded failed charges"))
        self.unrefunded.setObjectName("unrefundedFilter")

        self.clear_button = QToolButton()
        self.clear_button.setObjectName("clearFilters")
        self.clear_button.setText(self.tr("Clear filters"))
        self.clear_button.setAutoRaise(True)
        self.clear_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        # Its room stays when hidden, so the search field does not jump when it shows.
        policy = self.clear_button.sizePolicy()
        policy.setRetainSizeWhenHidden(True)
        self.clear_button.setSizePolicy(policy)
        self.clear_button.hide()

        for widget, name, tip in (
            (self.plan, self.tr("Plan filter"), PLAN_TIP),
            (self.status, self.tr("Status filter"), STATUS_TIP),
            (self.low_balance, self.tr("Low balance filter"), LOW_TIP),
            (self.threshold, self.tr("Low balance threshold"), THRESHOLD_TIP),
            (self.unrefunded, self.tr("Only accounts with unrefunded failed charges"),
             UNREFUNDED_TIP),
            (self.clear_button, self.tr("Clear filters"), CLEAR_TIP),
        ):
            widget.setAccessibleName(name)
            widget.setToolTip(_tr(tip))

        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(6)
        layout.addWidget(self.plan)
        layout.addWidget(self.status)
        layout.addSpacing(6)
        layout.addWidget(self.low_balance)
        layout.addWidget(self.threshold)
        layout.addSpacing(6)
        layout.addWidget(self.unrefunded)
        layout.addWidget(self.clear_button)
        # As wide as its contents: the search field beside it takes the rest.
        self.setSizePolicy(QSizePolicy.Policy.Maximum, QSizePolicy.Policy.Fixed)

        self.plan.currentIndexChanged.connect(self._plan_chosen)
        self.status.currentIndexChanged.connect(self._changed)
        self.low_balance.toggled.connect(self._low_balance_toggled)
        self.threshold.valueChanged.connect(self._changed)
        self.unrefunded.toggled.connect(self._changed)
        self.clear_button.clicked.connect(self.clear)

    # -- what the bar does ---------------------------------------------------------------

    @property
    def filters(self) -> AccountFilters:
        """The filters as the widgets show them now."""
        return AccountFilters(
            plan_code=self._plan_code,
            status=self.status.currentData(),
            low_balance_below=self.threshold.value() if self.low_balance.isChecked() else None,
            unrefunded_failed_only=self.unrefunded.isChecked(),
        )

    @property
    def is_loading(self) -> bool:
        """Whether the plans are being read."""
        return self._plans_job is not None

    @property
    def plans_missing(self) -> bool:
        """Whether the last read of the plans failed (the list holds only "All plans")."""
        return self._plans_failed

    def load(self) -> None:
        """Read the plans (again) on the worker; the list fills when they arrive."""
        if self._plans_job is not None:
            self._plans_job.discard()
        db = self._db
        job = self._worker.submit(lambda: list_plans(db))
        job.succeeded.connect(self._plans_arrived)
        job.failed.connect(self._plans_not_loaded)
        self._plans_job = job

    def set_filters(self, filters: AccountFilters) -> None:
        """Show ``filters`` in the widgets; emits ``filters_changed`` once if they differ."""
        widgets = (self.plan, self.status, self.low_balance, self.threshold, self.unrefunded)
        for widget in widgets:
            widget.blockSignals(True)
        try:
            self._plan_code = filters.plan_code
            self._select_plan()
            self.status.setCurrentIndex(max(self.status.findData(filters.status), 0))
            low = filters.low_balance_below
            self.low_balance.setChecked(low is not None)
            self.threshold.setEnabled(low is not None)
            if low is not None:
                self.threshold.setValue(low)
            self.unrefunded.setChecked(filters.unrefunded_failed_only)
        finally:
            for widget in widgets:
                widget.blockSignals(False)
        self._changed()

    @Slot()
    def clear(self) -> None:
        """Back to every account; the low balance threshold is kept for next time."""
        self.set_filters(AccountFilters())

    # -- slots -------------------------------------------------------------------------------

    @Slot(object)
    def _plans_arrived(self, plans: list[PlanChoice]) -> None:
        self._plans_job = None
        self._plans_failed = False
        self.plan.blockSignals(True)
        try:
            self.plan.clear()
            self.plan.addItem(self.tr("All plans"), None)
            for plan in plans:
                self.plan.addItem(plan.name, plan.code)
                self.plan.setItemData(
                    self.plan.count() - 1,
                    self.tr("{plan}: {credits} plan credits a month").format(
                        plan=plan.name, credits=fmt.credits_text(plan.allotment)),
                    Qt.ItemDataRole.ToolTipRole,
                )
        finally:
            self.plan.blockSignals(False)
        self.plan.setToolTip(_tr(PLAN_TIP))
        known = self._select_plan()
        self.plans_loaded.emit()
        if not known:
            # A plan chosen before the list arrived that the database does not have.
            self._plan_code = None
            self._changed()

    @Slot(str)
    def _plans_not_loaded(self, message: str) -> None:
        self._plans_job = None
        self._plans_failed = True
        self.plan.setToolTip(_tr(PLANS_FAILED_TIP).format(message=message))
        self.plans_failed.emit(message)

    @Slot()
    def _retry_plans(self) -> None:
        if self._plans_failed and self._plans_job is None:
            self.load()

    @Slot(int)
    def _plan_chosen(self, index: int) -> None:
        self._plan_code = self.plan.itemData(index)
        self._changed()

    @Slot(bool)
    def _low_balance_toggled(self, checked: bool) -> None:
        self.threshold.setEnabled(checked)
        self._changed()

    @Slot()
    def _changed(self) -> None:
        filters = self.filters
        self.clear_button.setVisible(filters.active)
        if filters != self._emitted:
            self._emitted = filters
            self.filters_changed.emit(filters)

    def _select_plan(self) -> bool:
        """Select ``_plan_code`` in the list (signals blocked); whether it is listed."""
        index = self.plan.findData(self._plan_code) if self._plan_code is not None else 0
        self.plan.blockSignals(True)
        try:
            self.plan.setCurrentIndex(max(index, 0))
        finally:
            self.plan.blockSignals(False)
        return index >= 0
