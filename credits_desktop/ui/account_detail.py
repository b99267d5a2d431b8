"""One open account: its header, balance cards, and grants, charges and ledger tabs.

The main window shows one :class:`AccountDetail` per open account, in tabs. The
header and the cards come from ``services.queries.account_summary`` (balances
computed from the live grants at the moment asked); the three lists are the
models of :mod:`detail_models`, the long ones paged lazily. The charges' feature
filter lists the features the database holds (``services.catalog.list_features``),
read when the account opens. Every read goes through the window's
:class:`~credits_desktop.ui.workers.Worker`.

Opening an account must feel immediate: every list is read at once, but only the
grants (the first tab) get their widgets then; the charges and ledger pages are
built the first time they are shown or used, and the usage charts likewise. The
lists are painted by :class:`~credits_desktop.ui.table_models.RowDelegate`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING

from PySide6.QtCore import (
    QT_TRANSLATE_NOOP,
    QCoreApplication,
    QDate,
    QEvent,
    QModelIndex,
    Qt,
    Signal,
    Slot,
)
from PySide6.QtGui import QKeyEvent, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QComboBox,
    QDateEdit,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from credits_desktop.domain.permissions import Action, Verdict
from credits_desktop.services.catalog import FeatureChoice, list_features
from credits_desktop.services.operations import Actor
from credits_desktop.services.previews import ReversalTarget, reversal_target
from credits_desktop.services.queries import AccountSummary, ChargeRow, LedgerRow, account_summary
from credits_desktop.services.results import OperationResult
from credits_desktop.store.database import Database

from . import formatting as fmt
from . import theme
from .adjust_dialog import AdjustDialog
from .change_dialog import ChangeDialog
from .detail_models import (
    CHARGE_STATUSES,
    COL_C_REASON,
    COL_L_REASON,
    DETAIL_PAGE_SIZE,
    ChargeFilter,
    ChargesModel,
    GrantsModel,
    LedgerModel,
    fill_feature_combo,
    label,
)
from .i18n import plural
from .live import ViewState, capture_view, restore_view
from .refund_dialog import RefundDialog, refundable
from .reverse_dialog import ReverseDialog
from .role_gate import gate, role_decision
from .table_models import RELAYOUT_EVENTS, LoadingModel, PagedModel, RowDelegate
from .workers import Job, Worker

if TYPE_CHECKING:
    from .account_charts import AccountCharts

__all__ = [
    "PRESETS",
    "AccountDetail",
    "CopyableTable",
    "reset_text",
]

# Ledger entry kinds that "Reverse…" can undo.
REVERSIBLE = frozenset({"refund", "adjustment"})

# The translation context of this module's texts. The constants below are English;
# they are translated where shown, with QCoreApplication.translate(CONTEXT, text).
CONTEXT = "AccountDetail"

STATUS_LABELS = {
    "active": str(QT_TRANSLATE_NOOP("AccountDetail", "Active")),
    "suspended": str(QT_TRANSLATE_NOOP("AccountDetail", "Suspended")),
    "closed": str(QT_TRANSLATE_NOOP("AccountDetail", "Closed")),
}

FEATURE_TIP = str(QT_TRANSLATE_NOOP("AccountDetail", "Only charges of this AI feature"))
FEATURES_FAILED_TIP = str(QT_TRANSLATE_NOOP(
    "AccountDetail", "The features could not be loaded: {message} Refresh (F5) to try again."))

# Date range presets of the charges filter: label, days back (None = any time / custom).
PRESETS: tuple[tuple[str, int | None], ...] = (
    (str(QT_TRANSLATE_NOOP("AccountDetail", "Any time")), None),
    (str(QT_TRANSLATE_NOOP("AccountDetail", "Today")), 0),
    (str(QT_TRANSLATE_NOOP("AccountDetail", "Last 7 days")), 6),
    (str(QT_TRANSLATE_NOOP("AccountDetail", "Last 30 days")), 29),
    (str(QT_TRANSLATE_NOOP("AccountDetail", "Custom range")), None),
)
CUSTOM = len(PRESETS) - 1

# Room between a right-aligned number and the left-aligned text of the next column, in
# tables painted by Qt's delegate (see CopyableTable).
TABLE_STYLE = "QTableView::item { padding-left: 2px; padding-right: 6px; }"


def _tr(text: str) -> str:
    return QCoreApplication.translate(CONTEXT, text)


def reset_text(next_reset: datetime | None, now: datetime | None = None) -> str:
    """"resets in 12 days, on 6 Dec", counted in local calendar days from ``now``."""
    if next_reset is None:
        return _tr("no billing period yet")
    today = (now or datetime.now(UTC)).astimezone().date()
    day = next_reset.astimezone().date()
    days = (day - today).days
    on = f"{day.day} {day.strftime('%b')}"
    if day.year != today.year:
        on += f" {day.year}"
    if days <= 0:
        return _tr("resets today, on {day}").format(day=on)
    if days == 1:
        return _tr("resets tomorrow, on {day}").format(day=on)
    return QCoreApplication.translate(CONTEXT, "resets in %n day(s), on {day}", None,
                                      plural(days)).format(day=on)


def _local_midnight(day: date) -> datetime:
    """The start of a local calendar day, as an aware UTC time."""
    return datetime.combine(day, time()).astimezone().astimezone(UTC)


class CopyableTable(QTableView):
    """A read-only table whose selected cells Ctrl+C copies as tab-separated text.

    Enter emits ``enter_pressed`` with the current cell, so that a list can do with the
    keyboard what a double-click does (``activated`` would fire for both).
    """

    enter_pressed = Signal(QModelIndex)

    def __init__(self, parent: QWidget | None = None, *, row_delegate: bool = False) -> None:
        super().__init__(parent)
        # With ``row_delegate`` (for a RowsModel) the cells are painted from the rows
        # with one Python call each, padded by the delegate; otherwise by Qt's delegate,
        # padded by a style sheet (which routes every cell through Qt's style sheet
        # style: slower, but right for any model).
        self.row_delegate: RowDelegate | None = None
        if row_delegate:
            self.row_delegate = RowDelegate(self)
            self.setItemDelegate(self.row_delegate)
        else:
            self.setStyleSheet(TABLE_STYLE)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectItems)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setAlternatingRowColors(True)
        self.setWordWrap(False)
        self.setShowGrid(False)
        self.setCornerButtonEnabled(False)
        # Tab leaves the table (the arrows move within it), instead of walking every cell.
        self.setTabKeyNavigation(False)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        vertical = self.verticalHeader()
        vertical.hide()
        vertical.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        vertical.setDefaultSectionSize(self.fontMetrics().height() + 8)
        header = self.horizontalHeader()
        header.setHighlightSections(False)
        header.setStretchLastSection(True)
        header.setDefaultAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)

    def selected_text(self) -> str:
        """The selected cells, rows by lines and columns by tabs, in screen order."""
        indexes = sorted(self.selectedIndexes(), key=lambda i: (i.row(), i.column()))
        if not indexes:
            return ""
        columns = sorted({i.column() for i in indexes})
        cells = {(i.row(), i.column()): str(i.data() or "") for i in indexes}
        lines = []
        for row in sorted({i.row() for i in indexes}):
            lines.append("\t".join(cells.get((row, c), "") for c in columns))
        return "\n".join(lines)

    def changeEvent(self, event: QEvent) -> None:
        if self.row_delegate is not None and event.type() in RELAYOUT_EVENTS:
            # Texts measured in the old font would be elided wrongly.
            self.row_delegate.forget_layout()
        super().changeEvent(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.matches(QKeySequence.StandardKey.Copy):
            text = self.selected_text()
            if text:
                QApplication.clipboard().setText(text)
            event.accept()
            return
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) \
                and self.currentIndex().isValid():
            self.enter_pressed.emit(self.currentIndex())
            event.accept()
            return
        super().keyPressEvent(event)


class BalanceCard(QFrame):
    """One balance: a title, a big number and a line saying what it means."""

    def __init__(self, key: str, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName(f"card_{key}")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self._restyle()
        self.title = QLabel(title)
        self.title.setEnabled(False)
        self.value = QLabel(fmt.NOTHING)
        self.value.setObjectName(f"value_{key}")
        font = self.value.font()
        font.setPointSizeF(font.pointSizeF() * 1.6)
        font.setBold(True)
        self.value.setFont(font)
        self.value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.note = QLabel("")
        self.note.setObjectName(f"note_{key}")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 8, 12, 8)
        layout.setSpacing(2)
        layout.addWidget(self.title)
        layout.addWidget(self.value)
        layout.addWidget(self.note)

    def _restyle(self) -> None:
        theme.set_style_sheet(
            self, f"#{self.objectName()} {{ background: {theme.css('card')}; "
                  f"border: 1px solid {theme.css('card_border')}; border-radius: 6px; }}")

    def changeEvent(self, event: QEvent) -> None:
        # The light or dark palette was switched: the card's colours follow.
        if theme.is_palette_change(event):
            self._restyle()
        super().changeEvent(event)


def list_table(model: LoadingModel, name: str, accessible: str) -> CopyableTable:
    """A list of the account, painted from its rows (see RowDelegate)."""
    table = CopyableTable(row_delegate=True)
    table.setObjectName(name)
    table.setAccessibleName(accessible)
    table.setModel(model)
    return table


def _page(name: str) -> QWidget:
    """An empty tab page; its list is put in it the first time it is shown."""
    page = QWidget()
    page.setObjectName(name)
    layout = QVBoxLayout(page)
    layout.setContentsMargins(0, 0, 0, 0)
    return page


@dataclass(frozen=True)
class _ChargesPage:
    """The Charges tab's widgets, once built."""

    table: CopyableTable
    feature_filter: QComboBox
    status_filter: QComboBox
    period_filter: QComboBox
    date_from: QDateEdit
    date_to: QDateEdit
    refund_button: QPushButton


@dataclass(frozen=True)
class _LedgerPage:
    """The Ledger tab's widgets, once built."""

    table: CopyableTable
    reverse_button: QPushButton


class AccountDetail(QWidget):
    """Everything about one account; :meth:`refresh` reads it all again."""

    # The summary arrived (the header and cards show it).
    summary_loaded = Signal(object)
    # A plain message: the summary could not be read.
    load_failed = Signal(str)
    # A refund, adjustment or reversal made from this tab (its OperationResult).
    changed = Signal(object)
    # A list's page was built (kind, its QHeaderView): see headers().
    header_ready = Signal(str, object)

    def __init__(
        self,
        db: Database,
        worker: Worker,
        account_id: int,
        name: str,
        parent: QWidget | None = None,
        *,
        actor: Actor,
        page_size: int = DETAIL_PAGE_SIZE,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("accountDetail")
        self._db = db
        self._worker = worker
        self._actor = actor
        # The refund, adjustment or reversal dialog open from this tab, if any.
        self.dialog: ChangeDialog | None = None
        self.account_id = account_id
        self.name = name
        self._summary: AccountSummary | None = None
        self._summary_job: Job | None = None
        self._features_job: Job | None = None
        # Per table being refreshed, its selection and scroll position to put back when
        # the new rows arrive (None until they are about to replace the old ones).
        self._keep: dict[QTableView, ViewState | None] = {}

        # Header.
        self.title = QLabel(name)
        self.title.setObjectName("accountTitle")
        font = self.title.font()
        font.setPointSizeF(font.pointSizeF() * 1.4)
        font.setBold(True)
        self.title.setFont(font)
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.subtitle = QLabel(self.tr("Loading the account…"))
        self.subtitle.setObjectName("accountSubtitle")
        self.subtitle.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.adjust_button = QPushButton(self.tr("Adjust purchased credits…"))
        self.adjust_button.setObjectName("adjustPurchased")
        self.adjust_button.setAccessibleName(self.tr("Adjust purchased credits"))
        self.adjust_button.clicked.connect(self.open_adjust_dialog)
        gate(self.adjust_button, actor, Action.ADJUST_PURCHASED,
             allowed_tip=self.tr("Add or remove purchased credits (manual sale, "
                                 "compensation, chargeback, correction)"))
        self.message = QLabel()
        self.message.setObjectName("accountMessage")
        self.message.setWordWrap(True)
        self._style_message()
        self.message.hide()

        # Balance cards.
        self.cards = {
            "plan": BalanceCard("plan", self.tr("Plan credits left")),
            "purchased": BalanceCard("purchased", self.tr("Purchased credits")),
            "refund": BalanceCard("refund", self.tr("Refund credits")),
            "total": BalanceCard("total", self.tr("Total available")),
        }
        cards = QGridLayout()
        cards.setHorizontalSpacing(10)
        for column, card in enumerate(self.cards.values()):
            cards.addWidget(card, 0, column)
            cards.setColumnStretch(column, 1)

        # Lists. The models read as the account opens; the Charges and Ledger pages are
        # built the first time they are shown or used (see _charges_page): many account
        # views never leave the grants, and they were two thirds of building the tab.
        self.grants = GrantsModel(db, worker, account_id, self)
        self.charges = ChargesModel(db, worker, account_id, self, page_size=page_size)
        self.ledger = LedgerModel(db, worker, account_id, self, page_size=page_size)
        self.grants_table = self._table(self.grants, "grantsTable",
                                        self.tr("Grants of the account"))
        self.grants_table.setAccessibleDescription(self.tr(
            "Where the account's credits come from: plan periods, purchases, refunds"))
        self._charges: _ChargesPage | None = None
        self._ledger: _LedgerPage | None = None
        # What the feature filter lists (or why it could not), kept for the charges
        # page until it is built.
        self._features: list[FeatureChoice] | None = None
        self._features_tip = _tr(FEATURE_TIP)
        self._refund_allowed = role_decision(actor, Action.REFUND).verdict is not Verdict.DENY
        self.charges_tab = _page("chargesTab")
        self.ledger_tab = _page("ledgerTab")

        self.lists = QTabWidget()
        self.lists.setObjectName("accountLists")
        self.lists.setAccessibleName(self.tr("Lists of the account"))
        self.lists.tabBar().setAccessibleName(self.tr("Grants, charges, ledger and usage"))
        self.lists.tabBar().setAccessibleDescription(self.tr(
            "Ctrl+Tab and Ctrl+Shift+Tab switch between the lists; Alt+G, Alt+C, "
            "Alt+L and Alt+U open one"))
        self.lists.setDocumentMode(True)
        # Alt+G, Alt+C, Alt+L go straight to a list.
        self.lists.addTab(self.grants_table, self.tr("&Grants"))
        self.lists.addTab(self.charges_tab, self.tr("&Charges"))
        self.lists.addTab(self.ledger_tab, self.tr("&Ledger"))
        # The charts are built (and pyqtgraph imported, half a second) the first time
        # the tab is shown, not before: most account views never need them.
        self.usage: AccountCharts | None = None
        self.usage_tab = _page("usageTab")
        self.lists.addTab(self.usage_tab, self.tr("&Usage"))
        self.lists.currentChanged.connect(self._list_shown)

        heading = QHBoxLayout()
        heading.addWidget(self.title, 1)
        heading.addWidget(self.adjust_button, 0, Qt.AlignmentFlag.AlignTop)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.addLayout(heading)
        layout.addWidget(self.subtitle)
        layout.addWidget(self.message)
        layout.addLayout(cards)
        layout.addWidget(self.lists, 1)

        for model in (self.grants, self.charges, self.ledger):
            model.load_failed.connect(self._show_message)
        self._size_columns(self.grants_table)

    # -- the pages built on first use ------------------------------------------------------

    @property
    def charges_table(self) -> CopyableTable:
        return self._charges_page().table

    @property
    def feature_filter(self) -> QComboBox:
        return self._charges_page().feature_filter

    @property
    def status_filter(self) -> QComboBox:
        return self._charges_page().status_filter

    @property
    def period_filter(self) -> QComboBox:
        return self._charges_page().period_filter

    @property
    def date_from(self) -> QDateEdit:
        return self._charges_page().date_from

    @property
    def date_to(self) -> QDateEdit:
        return self._charges_page().date_to

    @property
    def refund_button(self) -> QPushButton:
        return self._charges_page().refund_button

    @property
    def ledger_table(self) -> CopyableTable:
        return self._ledger_page().table

    @property
    def reverse_button(self) -> QPushButton:
        return self._ledger_page().reverse_button

    @property
    def built_lists(self) -> list[str]:
        """The kinds of list whose page is built ("grants" always; "charges" and
        "ledger" once shown or used)."""
        return ["grants", *(["charges"] if self._charges is not None else []),
                *(["ledger"] if self._ledger is not None else [])]

    def _charges_page(self) -> _ChargesPage:
        if self._charges is None:
            page = self._charges = self._build_charges()
            self._hook_table(page.table, self.charges)
            page.feature_filter.setToolTip(self._features_tip)
            if self._features is not None:
                fill_feature_combo(page.feature_filter, self._features)
            for combo in (page.feature_filter, page.status_filter, page.period_filter):
                combo.currentIndexChanged.connect(self._filters_changed)
            for edit in (page.date_from, page.date_to):
                edit.dateChanged.connect(self._filters_changed)
            page.refund_button.clicked.connect(self.open_refund_dialog)
            gate(page.refund_button, self._actor, Action.REFUND)
            page.table.selectionModel().selectionChanged.connect(self._update_actions)
            self.charges.modelReset.connect(self._update_actions)
            self._size_columns(page.table)
            self.stretch_reason(page.table.horizontalHeader())
            self._update_actions()
            self.header_ready.emit("charges", page.table.horizontalHeader())
        return self._charges

    def _ledger_page(self) -> _LedgerPage:
        if self._ledger is None:
            page = self._ledger = self._build_ledger()
            self._hook_table(page.table, self.ledger)
            page.reverse_button.clicked.connect(self.open_reverse_dialog)
            page.table.selectionModel().selectionChanged.connect(self._update_actions)
            self.ledger.modelReset.connect(self._update_actions)
            self._size_columns(page.table)
            header = page.table.horizontalHeader()
            self.stretch_reason(header)
            self._update_actions()
            self.header_ready.emit("ledger", header)
        return self._ledger

    # -- what the view does ---------------------------------------------------------

    @property
    def summary(self) -> AccountSummary | None:
        return self._summary

    def card_text(self, key: str) -> str:
        """The number shown on a card (``plan``, ``purchased``, ``refund``, ``total``)."""
        return self.cards[key].value.text()

    def card_note(self, key: str) -> str:
        return self.cards[key].note.text()

    @property
    def is_loading(self) -> bool:
        return (
            self._summary_job is not None
            or self._features_job is not None
            or any(m.is_loading for m in (self.grants, self.charges, self.ledger))
        )

    def load(self) -> None:
        """Read the summary and every list for the first time."""
        self._load_summary()
        self._load_features()
        self.grants.refresh()
        self.charges.set_filter(self._current_filter())
        self.ledger.refresh()

    @Slot()
    def refresh(self) -> None:
        """Read the summary and the lists again, keeping each list's selected cells and
        scroll position (F5, and live when someone else changes the account)."""
        self.message.hide()
        self._load_summary()
        # Cheap, and a feature switched on or renamed since shows up.
        self._load_features()
        for table, model in (
            (self.grants_table, self.grants),
            (self._charges.table if self._charges is not None else None, self.charges),
            (self._ledger.table if self._ledger is not None else None, self.ledger),
        ):
            if table is not None:
                self._keep[table] = None
            if isinstance(model, PagedModel):
                # As many rows as are loaded: a list scrolled past its first page
                # keeps its place.
                model.refresh(rows=model.rowCount())
            else:
                model.refresh()
        if self.usage is not None:
            self.usage.refresh()

    # -- staff actions -------------------------------------------------------------------

    def selected_charges(self) -> list[ChargeRow]:
        """The charges with a selected cell, top to bottom."""
        if self._charges is None:
            return []  # never shown: nothing selected
        rows = sorted({i.row() for i in self._charges.table.selectionModel().selectedIndexes()})
        return [self.charges.row_at(r) for r in rows if r < self.charges.rowCount()]

    def selected_ledger_entry(self) -> LedgerRow | None:
        """The ledger entry with the current selection, if exactly one row is selected."""
        if self._ledger is None:
            return None  # never shown: nothing selected
        rows = {i.row() for i in self._ledger.table.selectionModel().selectedIndexes()}
        if len(rows) != 1:
            return None
        row = rows.pop()
        return self.ledger.row_at(row) if row < self.ledger.rowCount() else None

    @Slot()
    def open_refund_dialog(self) -> None:
        """Refund the selected charges that can still be refunded."""
        charges = [c for c in self.selected_charges() if refundable(c)]
        if not charges or not self._refund_allowed or self.dialog is not None:
            return
        self._show_dialog(RefundDialog(self._db, self._actor, self.account_id, self.name,
                                       charges, worker=self._worker, parent=self))

    @Slot()
    def open_adjust_dialog(self) -> None:
        if not self.adjust_button.isEnabled() or self.dialog is not None:
            return
        self._show_dialog(AdjustDialog(self._db, self._actor, self.account_id, self.name,
                                       worker=self._worker, parent=self))

    @Slot()
    def open_reverse_dialog(self) -> None:
        """Find what the selected ledger entry belongs to, then offer to reverse it."""
        entry = self.selected_ledger_entry()
        if entry is None or entry.kind not in REVERSIBLE or self.dialog is not None:
            return
        db = self._db
        job = self._worker.submit(lambda: reversal_target(db, entry.id))
        job.succeeded.connect(self._reversal_target_arrived)
        job.failed.connect(self._show_message)

    @Slot(object)
    def _reversal_target_arrived(self, target: ReversalTarget) -> None:
        if self.dialog is None:
            self._show_dialog(ReverseDialog(self._db, self._actor, target, self.name,
                                            worker=self._worker, parent=self))

    def _show_dialog(self, dialog: ChangeDialog) -> None:
        self.dialog = dialog
        dialog.applied.connect(self._applied)
        dialog.finished.connect(lambda _result, d=dialog: self._dialog_closed(d))
        dialog.open()

    def _dialog_closed(self, dialog: ChangeDialog) -> None:
        if self.dialog is dialog:
            self.dialog = None
        dialog.deleteLater()

    @Slot(object)
    def _applied(self, result: OperationResult) -> None:
        self.refresh()
        self.changed.emit(result)

    @Slot()
    def _update_actions(self) -> None:
        # Only the pages built have buttons to update (they are updated when built).
        if self._charges is not None and self._refund_allowed:
            button = self._charges.refund_button
            charges = self.selected_charges()
            usable = [c for c in charges if refundable(c)]
            button.setEnabled(bool(usable))
            if usable:
                total = sum(c.credits for c in usable)
                button.setToolTip(self.tr(
                    "Refund %Ln selected charge(s), {credits} credits (Ctrl+R)", "",
                    plural(len(usable))).format(credits=fmt.credits_text(total)))
            elif charges:
                button.setToolTip(
                    self.tr("The selected charges were already refunded or cost nothing."))
            else:
                button.setToolTip(
                    self.tr("Select one or more charges to refund them (Ctrl+R)."))
        if self._ledger is not None:
            entry = self.selected_ledger_entry()
            can_reverse = entry is not None and entry.kind in REVERSIBLE
            button = self._ledger.reverse_button
            button.setEnabled(can_reverse)
            button.setToolTip(
                self.tr("Undo the selected refund or adjustment with a compensating entry")
                if can_reverse
                else self.tr("Select one refund or adjustment entry in the ledger."))

    def shutdown(self) -> None:
        """The tab closes: results still on their way are not wanted."""
        if self._summary_job is not None:
            self._summary_job.discard()
            self._summary_job = None
        if self._features_job is not None:
            self._features_job.discard()
            self._features_job = None
        for model in (self.grants, self.charges, self.ledger):
            model.discard()
        if self.usage is not None:
            self.usage.shutdown()

    @Slot(int)
    def _list_shown(self, index: int) -> None:
        shown = self.lists.widget(index)
        if shown is self.charges_tab:
            self._charges_page()
        elif shown is self.ledger_tab:
            self._ledger_page()
        elif self.usage is None and shown is self.usage_tab:
            from .account_charts import AccountCharts

            self.usage = AccountCharts(self._db, self._worker, self.account_id,
                                       actor=self._actor)
            layout = self.usage_tab.layout()
            assert layout is not None
            layout.addWidget(self.usage)

    # -- set-up ---------------------------------------------------------------------------

    def _build_charges(self) -> _ChargesPage:
        table = list_table(self.charges, "chargesTable", self.tr("Charges of the account"))
        table.setAccessibleDescription(self.tr(
            "What the account's generations cost, newest first; Ctrl+R refunds the "
            "selected charges"))
        feature_filter = QComboBox()
        feature_filter.setObjectName("featureFilter")
        feature_filter.addItem(self.tr("All features"), None)
        feature_filter.setAccessibleName(self.tr("Feature filter"))
        # The features arrive from the database when the account opens (load()).
        feature_filter.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        status_filter = QComboBox()
        status_filter.setObjectName("statusFilter")
        status_filter.setAccessibleName(self.tr("Charge status filter"))
        status_filter.setToolTip(self.tr("Only charges with this outcome"))
        status_filter.addItem(self.tr("Any status"), None)
        for code in CHARGE_STATUSES:
            status_filter.addItem(label(CHARGE_STATUSES, code), code)
        period_filter = QComboBox()
        period_filter.setObjectName("periodFilter")
        period_filter.setAccessibleName(self.tr("Charges period"))
        period_filter.setToolTip(self.tr("Only charges in this period (local dates)"))
        for preset, _days in PRESETS:
            period_filter.addItem(_tr(preset))
        today = QDate.currentDate()
        date_from = QDateEdit(today.addDays(-29))
        date_from.setObjectName("dateFrom")
        date_from.setAccessibleName(self.tr("Charges from date"))
        date_to = QDateEdit(today)
        date_to.setObjectName("dateTo")
        date_to.setAccessibleName(self.tr("Charges to date"))
        for edit in (date_from, date_to):
            edit.setCalendarPopup(True)
            edit.setDisplayFormat(fmt.date_format())
            edit.setEnabled(False)
        date_from.setToolTip(self.tr("First day shown (local date)"))
        date_to.setToolTip(self.tr("Last day shown, included (local date)"))
        refund_button = QPushButton(self.tr("Refund selected…"))
        refund_button.setObjectName("refundSelected")
        refund_button.setAccessibleName(self.tr("Refund selected charges"))

        filters = QHBoxLayout()
        filters.addWidget(feature_filter)
        filters.addWidget(status_filter)
        filters.addWidget(period_filter)
        filters.addWidget(date_from)
        filters.addWidget(QLabel(self.tr("to")))
        filters.addWidget(date_to)
        filters.addStretch(1)
        filters.addWidget(refund_button)
        content = QWidget()
        layout = QVBoxLayout(content)
        layout.setContentsMargins(0, 6, 0, 0)
        layout.addLayout(filters)
        layout.addWidget(table, 1)
        self._fill_page(self.charges_tab, content)
        self._follow_tabs(feature_filter, status_filter, period_filter, date_from, date_to,
                          refund_button, table)
        return _ChargesPage(table, feature_filter, status_filter, period_filter, date_from,
                            date_to, refund_button)

    def _build_ledger(self) -> _LedgerPage:
        table = list_table(self.ledger, "ledgerTable", self.tr("Ledger of the account"))
        table.setAccessibleDescription(self.tr(
            "Every change of the account's credits, newest first"))
        reverse_button = QPushButton(self.tr("Reverse…"))
        reverse_button.setObjectName("reverseEntry")
        reverse_button.setAccessibleName(self.tr("Reverse the selected refund or adjustment"))
        bar = QHBoxLayout()
        bar.addWidget(QLabel(self.tr("Every change is an entry; a mistake is undone by "
                                     "a compensating entry, never by editing.")), 1)
        bar.addWidget(reverse_button)
        content = QWidget()
        layout = QVBoxLayout(content)
        layout.setContentsMargins(0, 6, 0, 0)
        layout.addLayout(bar)
        layout.addWidget(table, 1)
        self._fill_page(self.ledger_tab, content)
        self._follow_tabs(reverse_button, table)
        return _LedgerPage(table, reverse_button)

    @staticmethod
    def _fill_page(page: QWidget, content: QWidget) -> None:
        layout = page.layout()
        assert layout is not None
        layout.addWidget(content)
        # Now, not when the event loop gets to it (as a layout shows a widget added to
        # a page on screen): the page is usable at once, from the keyboard too.
        content.show()

    def _follow_tabs(self, *widgets: QWidget) -> None:
        """Tab goes from the lists' tabs to ``widgets`` in turn: a page built later
        would otherwise come last in the window's Tab order."""
        previous: QWidget = self.lists.tabBar()
        for widget in widgets:
            QWidget.setTabOrder(previous, widget)
            previous = widget

    def _table(self, model: LoadingModel, name: str, accessible: str) -> CopyableTable:
        table = list_table(model, name, accessible)
        self._hook_table(table, model)
        return table

    def _hook_table(self, table: CopyableTable, model: LoadingModel) -> None:
        """Keep the table's selection and scroll position across a refresh."""
        model.modelAboutToBeReset.connect(lambda t=table, m=model: self._capture_view(t, m))
        model.page_loaded.connect(lambda t=table, m=model: self._restore_current(t, m))
        model.load_failed.connect(lambda _message, t=table: self._keep.pop(t, None))

    def _size_columns(self, table: CopyableTable) -> None:
        """Widths for typical contents, before any row is loaded."""
        metrics = self.fontMetrics()
        # A wide date and time in the locale's form (two-digit day and month, afternoon).
        moment = datetime(2026, 12, 28, 22, 58, tzinfo=UTC)
        day, when = fmt.local_date(moment), fmt.local_datetime(moment)
        model = table.model()
        texts: tuple[str, ...] = ()
        if model is self.grants:
            texts = ("Adjustment #100000", "1,000,000", "1,000,000", day, when)
        elif model is self.charges:
            texts = (when, "Video transcription", "imagen-ultra", "1,000", "Succeeded",
                     "provider_timeout", "Yes, 1,000")
        elif model is self.ledger:
            texts = (when, "Plan credits", "+100,000", "Adjustment #100000",
                     "Ada Administrator", "Usage: Video transcription", "vtr_0000004000",
                     "1,000,000")
        header = table.horizontalHeader()
        for column, sample in enumerate(texts):
            title = str(model.headerData(column, Qt.Orientation.Horizontal))
            width = max(metrics.horizontalAdvance(sample),
                        header.fontMetrics().horizontalAdvance(title)) + 24
            header.resizeSection(column, width)

    # -- loading ---------------------------------------------------------------------------

    def _load_summary(self) -> None:
        if self._summary_job is not None:
            self._summary_job.discard()
        db, account = self._db, self.account_id
        job = self._worker.submit(lambda: account_summary(db, account))
        job.succeeded.connect(self._summary_arrived)
        job.failed.connect(self._summary_failed)
        self._summary_job = job

    @Slot(object)
    def _summary_arrived(self, summary: AccountSummary) -> None:
        self._summary_job = None
        self._summary = summary
        self.name = summary.name
        self.title.setText(summary.name)
        known = STATUS_LABELS.get(summary.status)
        status = _tr(known) if known is not None else summary.status
        self.subtitle.setText(
            self.tr("{email}  ·  {plan} plan, {allotment} credits a month  ·  {status}  ·  "
                    "account #{id}").format(
                email=summary.email, plan=summary.plan_name,
                allotment=fmt.credits_text(summary.allotment), status=status, id=summary.id)
        )
        cards = self.cards
        cards["plan"].value.setText(fmt.credit_share(summary.plan_left, summary.allotment))
        cards["plan"].note.setText(reset_text(summary.next_reset))
        cards["plan"].note.setToolTip(
            self.tr("Next reset: {local} ({utc})").format(
                local=fmt.local_datetime(summary.next_reset),
                utc=fmt.utc_datetime(summary.next_reset))
        )
        cards["purchased"].value.setText(fmt.credits_text(summary.purchased))
        cards["purchased"].note.setText(self.tr("never expire"))
        cards["refund"].value.setText(fmt.credits_text(summary.refund))
        failed = summary.unrefunded_failed
        cards["refund"].note.setText(
            self.tr("no failed charge waiting") if failed == 0
            else self.tr("%Ln failed charge(s) not refunded", "", plural(failed))
        )
        cards["total"].value.setText(fmt.credits_text(summary.total))
        cards["total"].note.setText(self.tr("plan + purchased + refund"))
        self.summary_loaded.emit(summary)

    @Slot(str)
    def _summary_failed(self, message: str) -> None:
        self._summary_job = None
        self._show_message(message)
        self.load_failed.emit(message)

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
        self._features = list(features)
        self._features_tip = _tr(FEATURE_TIP)
        if self._charges is None:
            return  # listed when the charges page is built
        combo = self._charges.feature_filter
        kept = fill_feature_combo(combo, features)
        combo.setToolTip(self._features_tip)
        if not kept:
            # The chosen feature is gone from the database: list every feature.
            self._filters_changed()

    @Slot(str)
    def _features_failed(self, message: str) -> None:
        # The charges still list (all features); only the choice is missing.
        self._features_job = None
        self._features_tip = _tr(FEATURES_FAILED_TIP).format(message=message)
        if self._charges is not None:
            self._charges.feature_filter.setToolTip(self._features_tip)

    def _style_message(self) -> None:
        theme.set_style_sheet(self.message, f"color: {theme.css('danger')};")

    def changeEvent(self, event: QEvent) -> None:
        # The light or dark palette was switched: the message's colour follows.
        if theme.is_palette_change(event):
            self._style_message()
        super().changeEvent(event)

    def stretch_reason(self, header: QHeaderView) -> None:
        """Let the reason column of the charges or the ledger take the room left (the
        longest text), not the last column ("Refunded", the running balance: short).
        Again after a remembered layout is restored: it may come from a version that
        stretched the last column."""
        model = header.model()
        column = COL_C_REASON if model is self.charges else \
            COL_L_REASON if model is self.ledger else None
        if column is not None:
            header.setStretchLastSection(False)
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.Stretch)

    def headers(self) -> dict[str, QHeaderView]:
        """The headers of the lists built so far by kind ("grants", "charges",
        "ledger"): their widths and order are remembered per kind, for every account
        alike. A list built later announces its header with ``header_ready``."""
        tables = {"grants": self.grants_table,
                  "charges": self._charges.table if self._charges is not None else None,
                  "ledger": self._ledger.table if self._ledger is not None else None}
        return {kind: table.horizontalHeader() for kind, table in tables.items()
                if table is not None}

    @Slot(str)
    def _show_message(self, message: str) -> None:
        self.message.setText(message)
        self.message.show()

    def _capture_view(self, table: QTableView, model: LoadingModel) -> None:
        # Taken when the refreshed rows are about to replace the old ones, not when
        # the refresh started: the user may have moved on meanwhile.
        if table in self._keep and self._keep[table] is None:
            self._keep[table] = capture_view(table, model)

    def _restore_current(self, table: QTableView, model: LoadingModel) -> None:
        state = self._keep.pop(table, None)
        if state is not None:
            restore_view(table, model, state)

    # -- filters ---------------------------------------------------------------------------

    def _current_filter(self) -> ChargeFilter:
        page = self._charges
        if page is None:
            # The filters' first choices: every feature and status, any time.
            return ChargeFilter()
        preset = page.period_filter.currentIndex()
        start: datetime | None = None
        end: datetime | None = None
        today = datetime.now(UTC).astimezone().date()
        if preset == CUSTOM:
            first = page.date_from.date().toPython()
            last = page.date_to.date().toPython()
            assert isinstance(first, date) and isinstance(last, date)
            start = _local_midnight(first)
            end = _local_midnight(last + timedelta(days=1))
        else:
            days = PRESETS[preset][1]
            if days is not None:
                start = _local_midnight(today - timedelta(days=days))
        return ChargeFilter(
            feature=page.feature_filter.currentData(),
            status=page.status_filter.currentData(),
            start=start,
            end=end,
        )

    @Slot()
    def _filters_changed(self) -> None:
        custom = self.period_filter.currentIndex() == CUSTOM
        self.date_from.setEnabled(custom)
        self.date_to.setEnabled(custom)
        self.message.hide()
        # Other charges: the place in the old list means nothing in the new one.
        self._keep.pop(self.charges_table, None)
        self.charges.set_filter(self._current_filter())
