"""The main window: find a customer account and look at it.

A search field (email, name or account id prefix; searched 200 ms after the last
keystroke) with filters beside it (plan, status, low balance, unrefunded failed
charges; see :mod:`account_filters`), the accounts table (paged, sorted in SQL by a
header click), below it the accounts opened with Enter or a double-click, one tab
each (see :mod:`account_detail`; Ctrl+W closes one, Ctrl+PgDown and Ctrl+PgUp move
between them, F5 reads the current one again), and a status bar naming the database,
the signed-in staff member and how many accounts are loaded. Every database call
runs through the window's :class:`~credits_desktop.ui.workers.Worker`; failures are
shown as a plain message in a bar above the table, with a button to try again.

Everything works from the keyboard: Ctrl+F to the search, Enter or Down to the first
result, Enter to open it; Tab goes search, filters, accounts, then the open tab;
View > Sort accounts by does what a header click does. Every control has an
accessible name for screen readers (the rule is in tests/ui/test_ui_accessibility.py).

Live data (see :mod:`live`): the open accounts are read again when someone else
changes them, keeping each list's selection and scroll position. While the
database cannot be reached a banner at the top says so and counts down to the
next try (:mod:`banner`); when it answers again everything is read again. An
unexpected fault in a background job opens the error dialog with "Copy details"
(:mod:`error_report`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from PySide6.QtCore import QEvent, QModelIndex, QObject, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QKeySequence, QPainter, QPaintEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMenu,
    QPushButton,
    QSplitter,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from credits_desktop.domain.permissions import ROLE_LABELS, Action
from credits_desktop.services.operations import Actor
from credits_desktop.services.queries import AccountRow
from credits_desktop.services.results import OperationResult
from credits_desktop.store.database import Database

from . import accounts_model as am
from .account_detail import AccountDetail
from .account_filters import AccountFilterBar
from .accounts_model import ACCOUNT_ROLE, AccountsModel, SearchFn
from .approvals_view import ApprovalsView
from .audit_view import AuditView
from .banner import ConnectionBanner
from .detail_models import DETAIL_PAGE_SIZE
from .error_report import ErrorReporter, set_report_database
from .failures_view import FailuresView
from .incident_dialog import IncidentDialog
from .live import BACKOFF_SECONDS, POLL_INTERVAL_MS, ChangeWatcher
from .role_gate import gate
from .workers import Worker

__all__ = ["SEARCH_DELAY_MS", "AccountsTable", "MainWindow"]

# How long the status bar says "Connection restored".
RESTORED_MESSAGE_MS = 5000
# How long the outcome of a refund or adjustment stays in the status bar.
CHANGE_MESSAGE_MS = 10_000
# Long enough that typing an address runs one search, short enough to feel immediate.
SEARCH_DELAY_MS = 200
SEARCH_PLACEHOLDER = "Search by email, name or account id"
# The share of the window's height the open accounts get when the first one opens.
DETAIL_SHARE = 0.62

# Room between a right-aligned number and the left-aligned text of the next column.
TABLE_STYLE = "QTableView::item { padding-left: 2px; padding-right: 6px; }"

# View > Sort accounts by: the columns' titles, each with its own Alt+letter; the
# keyboard's way to what a header click does.
SORT_LABELS: dict[int, str] = {
    am.COL_NAME: "&Name",
    am.COL_EMAIL: "&Email",
    am.COL_PLAN: "&Plan",
    am.COL_PLAN_LEFT: "Plan &credits left",
    am.COL_PURCHASED: "P&urchased",
    am.COL_TOTAL: "&Total available",
    am.COL_NEXT_RESET: "Next &reset",
    am.COL_LAST_ACTIVITY: "&Last activity",
}

# Typical widest contents, to size the columns before any row is loaded.
_SAMPLE_TEXT = {
    am.COL_NAME: "Andersson & O'Brien Marketing Co.",
    am.COL_EMAIL: "marketing.team@northwind-creative.test",
    am.COL_PLAN: "Agency",
    am.COL_PLAN_LEFT: "20,000 / 20,000",
    am.COL_PURCHASED: "1,000,000",
    am.COL_TOTAL: "1,000,000",
    am.COL_NEXT_RESET: "2026-12-31",
    am.COL_LAST_ACTIVITY: "2026-12-31 23:59",
}


class AccountsTable(QTableView):
    """The accounts table; says why it is empty instead of showing a blank grid."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._placeholder = ""

    def set_placeholder(self, text: str) -> None:
        if text != self._placeholder:
            self._placeholder = text
            # Only an empty table shows it: repainting a full one for nothing cost
            # 25 ms of the GUI thread on every search.
            model = self.model()
            if model is None or model.rowCount() == 0:
                self.viewport().update()

    @property
    def placeholder(self) -> str:
        return self._placeholder

    def paintEvent(self, event: QPaintEvent) -> None:
        super().paintEvent(event)
        model = self.model()
        if self._placeholder and (model is None or model.rowCount() == 0):
            painter = QPainter(self.viewport())
            painter.setPen(self.palette().placeholderText().color())
            rect = self.viewport().rect().adjusted(24, 24, -24, -24)
            painter.drawText(
                rect,
                int(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop
                    | Qt.TextFlag.TextWordWrap),
                self._placeholder,
            )
            painter.end()


class MainWindow(QMainWindow):
    """Credits Desk's main window for one database and one signed-in staff member."""

    # File > Connect to another database…: the launcher opens the connection dialog.
    connect_requested = Signal()

    def __init__(
        self,
        db: Database,
        actor: Actor,
        *,
        worker: Worker | None = None,
        page_size: int = am.PAGE_SIZE,
        detail_page_size: int = DETAIL_PAGE_SIZE,
        search: SearchFn | None = None,
        parent: QWidget | None = None,
        poll_interval_ms: int = POLL_INTERVAL_MS,
        backoff: Sequence[float] = BACKOFF_SECONDS,
    ) -> None:
        super().__init__(parent)
        self._db = db
        self._actor = actor
        self.worker = worker if worker is not None else Worker(self)
        self._detail_page_size = detail_page_size
        # Enter or Down in the search field while the results load: select the
        # first result when it arrives.
        self._first_row_wanted = False

        self.setWindowTitle("Credits Desk")
        self.resize(1280, 760)

        extra = {} if search is None else {"search": search}
        self.model = AccountsModel(db, self.worker, self, page_size=page_size, **extra)

        self.search = QLineEdit()
        self.search.setObjectName("search")
        self.search.setAccessibleName("Account search")
        self.search.setAccessibleDescription(
            "Type the start of an email address, a name or an account id; Enter or Down "
            "moves to the accounts found"
        )
        self.search.setPlaceholderText(SEARCH_PLACEHOLDER)
        self.search.setClearButtonEnabled(True)
        self.search.setToolTip(
            "Type the start of an email address, a name or an account id (Ctrl+F)"
        )
        self.search.installEventFilter(self)

        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(SEARCH_DELAY_MS)
        self._debounce.timeout.connect(self._run_search)
        self.search.textChanged.connect(self._debounce.start)
        self.search.returnPressed.connect(self._search_now_and_go_to_table)

        # Plan, status, low balance and unrefunded failures, beside the search field.
        self.filter_bar = AccountFilterBar(db, self.worker)
        self.filter_bar.filters_changed.connect(self.model.set_filters)
        self.filter_bar.load()

        self.error_bar = QFrame()
        self.error_bar.setObjectName("errorBar")
        self.error_bar.setStyleSheet(
            "#errorBar { background: #fdecea; border: 1px solid #f1aeb5; border-radius: 4px; }"
            "#errorBar QLabel { color: #58151c; }"
        )
        self.error_text = QLabel()
        self.error_text.setObjectName("errorText")
        self.error_text.setWordWrap(True)
        retry = QPushButton("Try again")
        retry.setObjectName("retry")
        retry.setAccessibleName("Try loading the accounts again")
        retry.clicked.connect(self._retry)
        bar = QHBoxLayout(self.error_bar)
        bar.setContentsMargins(10, 6, 6, 6)
        bar.addWidget(self.error_text, 1)
        bar.addWidget(retry)
        self.error_bar.hide()

        self.table = AccountsTable()
        self.table.setObjectName("accounts")
        self.table.setAccessibleName("Accounts")
        self.table.setAccessibleDescription(
            "Accounts found; Enter opens the selected one in a tab below")
        self.table.setModel(self.model)
        self._set_up_table()
        self.table.activated.connect(self._open_account)

        self.tabs = QTabWidget()
        self.tabs.setObjectName("openAccounts")
        self.tabs.setAccessibleName("Open accounts")
        self.tabs.tabBar().setAccessibleName("Open account tabs")
        self.tabs.tabBar().setAccessibleDescription(
            "Accounts and work lists opened; Ctrl+Page Down and Ctrl+Page Up switch, "
            "Ctrl+W closes one")
        self.tabs.setTabsClosable(True)
        self.tabs.setMovable(True)
        self.tabs.setDocumentMode(True)
        self.tabs.tabCloseRequested.connect(self.close_account_tab)
        self.tabs.hide()

        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.addWidget(self.table)
        self.splitter.addWidget(self.tabs)
        self.splitter.setStretchFactor(0, 1)
        self.splitter.setStretchFactor(1, 0)
        self.splitter.setChildrenCollapsible(False)

        # Made here, not with the rest of the live set-up: the order widgets join the
        # layout is the Tab order, and the banner's button is the first thing shown.
        self.connection_banner = ConnectionBanner()

        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(8, 8, 8, 0)
        layout.addWidget(self.connection_banner)
        search_row = QHBoxLayout()
        search_row.setSpacing(12)
        search_row.addWidget(self.search, 1)
        search_row.addWidget(self.filter_bar)
        layout.addLayout(search_row)
        layout.addWidget(self.error_bar)
        layout.addWidget(self.splitter, 1)
        self.setCentralWidget(central)

        self._set_up_actions()
        self._set_up_status_bar()

        self.model.loading_changed.connect(self._update_state)
        self.model.page_loaded.connect(self._page_loaded)
        self.model.load_failed.connect(self._show_error)
        self.model.modelReset.connect(self._update_state)
        self.model.rowsInserted.connect(self._update_state)

        # Setting the sort indicator before enabling sorting makes the view's first
        # sort() call (which enabling triggers) load the first page by name.
        header = self.table.horizontalHeader()
        header.setSortIndicator(am.COL_NAME, Qt.SortOrder.AscendingOrder)
        self.table.setSortingEnabled(True)
        self._update_state()
        self.search.setFocus()
        self._set_up_live(poll_interval_ms, backoff)

    # -- set-up -----------------------------------------------------------------------

    def _set_up_table(self) -> None:
        table = self.table
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.setAlternatingRowColors(True)
        table.setWordWrap(False)
        table.setTextElideMode(Qt.TextElideMode.ElideRight)
        table.setShowGrid(False)
        table.setCornerButtonEnabled(False)
        # Tab leaves the table (the arrows move within it), instead of walking every cell.
        table.setTabKeyNavigation(False)
        table.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        table.setStyleSheet(TABLE_STYLE)
        vertical = table.verticalHeader()
        vertical.hide()
        vertical.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        vertical.setDefaultSectionSize(table.fontMetrics().height() + 10)
        header = table.horizontalHeader()
        header.setHighlightSections(False)
        header.setSectionsMovable(True)
        header.setStretchLastSection(True)
        header.setDefaultAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        metrics = table.fontMetrics()
        header_metrics = header.fontMetrics()
        for column, sample in _SAMPLE_TEXT.items():
            title = am.COLUMNS[column][0]
            # Room for the text, the cell padding and the header's sort arrow.
            width = max(metrics.horizontalAdvance(sample) + 24,
                        header_metrics.horizontalAdvance(title) + 36)
            header.resizeSection(column, width)

    def _set_up_actions(self) -> None:
        find = QAction("&Find account", self)
        find.setShortcut(QKeySequence.StandardKey.Find)
        find.triggered.connect(self.focus_search)
        refresh = QAction("&Refresh", self)
        refresh.setShortcut(QKeySequence.StandardKey.Refresh)
        refresh.triggered.connect(self.refresh)
        close_tab = QAction("&Close tab", self)
        # Ctrl+W everywhere, with the platform's own "close" keys (once each: a key
        # listed twice would be ambiguous and do nothing).
        keys = [QKeySequence("Ctrl+W")]
        for sequence in QKeySequence.keyBindings(QKeySequence.StandardKey.Close):
            if sequence not in keys:
                keys.append(sequence)
        close_tab.setShortcuts(keys)
        close_tab.triggered.connect(self._close_current_tab)
        quit_action = QAction("&Quit", self)
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        # Between the open accounts and work lists, as in a browser; Ctrl+Tab stays
        # Qt's own: inside an account it moves between its grants, charges and ledger.
        next_tab = QAction("&Next tab", self)
        next_tab.setShortcut(QKeySequence("Ctrl+PgDown"))
        next_tab.triggered.connect(lambda: self._step_tab(1))
        previous_tab = QAction("&Previous tab", self)
        previous_tab.setShortcut(QKeySequence("Ctrl+PgUp"))
        previous_tab.triggered.connect(lambda: self._step_tab(-1))
        self.next_tab_action, self.previous_tab_action = next_tab, previous_tab

        connect_other = QAction("&Connect to another database…", self)
        connect_other.triggered.connect(lambda: self.connect_requested.emit())
        self.connect_action = connect_other

        refund = QAction("&Refund selected charges…", self)
        refund.setShortcut(QKeySequence("Ctrl+R"))
        refund.triggered.connect(lambda: self._with_detail(AccountDetail.open_refund_dialog))
        adjust = QAction("&Adjust purchased credits…", self)
        adjust.setShortcut(QKeySequence("Ctrl+Shift+A"))
        adjust.triggered.connect(lambda: self._with_detail(AccountDetail.open_adjust_dialog))
        gate(adjust, self._actor, Action.ADJUST_PURCHASED)
        reverse = QAction("Re&verse selected ledger entry…", self)
        reverse.triggered.connect(lambda: self._with_detail(AccountDetail.open_reverse_dialog))
        failures = QAction("&Failed charges not refunded", self)
        failures.setShortcut(QKeySequence("Ctrl+1"))
        failures.triggered.connect(lambda: self.open_worklist("failures"))
        approvals = QAction("A&pprovals", self)
        approvals.setShortcut(QKeySequence("Ctrl+2"))
        approvals.triggered.connect(lambda: self.open_worklist("approvals"))
        audit = QAction("Au&dit log", self)
        audit.setShortcut(QKeySequence("Ctrl+3"))
        audit.triggered.connect(lambda: self.open_worklist("audit"))
        incident = QAction("&Incident refund…", self)
        incident.triggered.connect(self.open_incident_dialog)
        gate(incident, self._actor, Action.INCIDENT_REFUND,
             allowed_tip="Refund every failed charge of a feature in a time window")
        self.incident_action = incident
        self.incident_dialog: IncidentDialog | None = None
        self.refund_action, self.adjust_action, self.reverse_action = refund, adjust, reverse
        dashboard = QAction("Dash&board", self)
        dashboard.setShortcut(QKeySequence("Ctrl+4"))
        dashboard.triggered.connect(lambda: self.open_worklist("dashboard"))
        finance = QAction("Fi&nance report", self)
        finance.setShortcut(QKeySequence("Ctrl+5"))
        finance.triggered.connect(lambda: self.open_worklist("finance"))
        self.failures_action, self.approvals_action, self.audit_action = (
            failures, approvals, audit)
        self.dashboard_action, self.finance_action = dashboard, finance

        file_menu = self.menuBar().addMenu("&File")
        file_menu.addAction(connect_other)
        file_menu.addSeparator()
        file_menu.addAction(quit_action)
        view_menu = self.menuBar().addMenu("&View")
        view_menu.addAction(find)
        view_menu.addAction(refresh)
        view_menu.addAction(close_tab)
        view_menu.addSeparator()
        view_menu.addAction(next_tab)
        view_menu.addAction(previous_tab)
        view_menu.addSeparator()
        view_menu.addMenu(self._sort_menu())
        account_menu = self.menuBar().addMenu("&Account")
        account_menu.setToolTipsVisible(True)
        for action in (refund, adjust, reverse):
            account_menu.addAction(action)
        work_menu = self.menuBar().addMenu("&Work")
        work_menu.setToolTipsVisible(True)
        for action in (failures, approvals, audit):
            work_menu.addAction(action)
        work_menu.addSeparator()
        work_menu.addAction(dashboard)
        work_menu.addAction(finance)
        work_menu.addSeparator()
        work_menu.addAction(incident)
        self.work_menu = work_menu
        self.find_action = find
        self.refresh_action = refresh
        self.close_tab_action = close_tab

    def _sort_menu(self) -> QMenu:
        menu = QMenu("&Sort accounts by", self)
        menu.setToolTipsVisible(True)
        group = QActionGroup(self)
        self.sort_actions: dict[int, QAction] = {}
        for column, label in SORT_LABELS.items():
            action = QAction(label, self)
            action.setCheckable(True)
            action.setToolTip("Choose it again to reverse the order")
            action.triggered.connect(lambda _checked=False, c=column: self.sort_by(c))
            group.addAction(action)
            menu.addAction(action)
            self.sort_actions[column] = action
        # A header click shows in the menu too.
        self.table.horizontalHeader().sortIndicatorChanged.connect(self._sorted_by)
        return menu

    def _set_up_status_bar(self) -> None:
        status = self.statusBar()
        url = self._db.display_url()
        self.database_label = QLabel(_elide_middle(url, 70))
        self.database_label.setObjectName("statusDatabase")
        self.database_label.setToolTip(f"Database: {url}")
        role = ROLE_LABELS.get(self._actor.role, str(self._actor.role))
        self.staff_label = QLabel(f"{self._actor.display_name} · {role}")
        self.staff_label.setObjectName("statusStaff")
        self.staff_label.setToolTip(f"Signed in as {self._actor.username}")
        self.count_label = QLabel()
        self.count_label.setObjectName("statusCount")
        status.addWidget(self.count_label, 1)
        status.addPermanentWidget(self.staff_label)
        status.addPermanentWidget(_separator())
        status.addPermanentWidget(self.database_label)

    # -- what the window does ----------------------------------------------------------

    @property
    def actor(self) -> Actor:
        return self._actor

    def sort_by(self, column: int) -> None:
        """Order the accounts by ``column``, as a header click does: the column sorted
        by already is reversed, another one starts ascending."""
        header = self.table.horizontalHeader()
        order = Qt.SortOrder.AscendingOrder
        if header.sortIndicatorSection() == column \
                and header.sortIndicatorOrder() == Qt.SortOrder.AscendingOrder:
            order = Qt.SortOrder.DescendingOrder
        header.setSortIndicator(column, order)

    @Slot(int, Qt.SortOrder)
    def _sorted_by(self, column: int, _order: Qt.SortOrder) -> None:
        action = self.sort_actions.get(column)
        if action is not None:
            action.setChecked(True)

    @Slot()
    def focus_search(self) -> None:
        self.search.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.search.selectAll()

    @Slot()
    def refresh(self) -> None:
        """Read the accounts again, and the account in the current tab."""
        if not self.watcher.connected:
            self.watcher.retry_now()
        self.error_bar.hide()
        self.model.refresh()
        detail = self.current_detail()
        if detail is not None:
            detail.refresh()

    def status_text(self) -> str:
        """What the status bar says, left to right (for tests and screen readers)."""
        return " | ".join(
            (self.count_label.text(), self.staff_label.text(), self.database_label.text())
        )

    def open_account(self, row: AccountRow) -> AccountDetail:
        """Show ``row``'s account in its tab: a new one, or the one already open."""
        return self.open_account_id(row.id, row.name, f"{row.name} ({row.email})")

    def open_account_id(self, account_id: int, name: str = "", tooltip: str = ""
                        ) -> AccountDetail:
        """Show the account ``account_id`` (from a work list, which knows only its id)."""
        existing = self.detail_for(account_id)
        if existing is not None:
            self.tabs.setCurrentWidget(existing)
            return existing
        name = name or f"Account #{account_id}"
        detail = AccountDetail(self._db, self.worker, account_id, name, actor=self._actor,
                               page_size=self._detail_page_size)
        detail.summary_loaded.connect(lambda _s, d=detail: self._retitle(d))
        detail.summary_loaded.connect(
            lambda s, d=detail: self.watcher.note_seen(d.account_id, s.change_seq)
        )
        detail.changed.connect(self._account_changed_here)
        self._add_tab(detail, _tab_title(name), tooltip or name)
        detail.load()
        return detail

    def open_worklist(self, kind: str) -> QWidget:
        """Show a work list ("failures", "approvals", "audit") in its tab."""
        for i in range(self.tabs.count()):
            widget = self.tabs.widget(i)
            if widget is not None and widget.property("worklist") == kind:
                self.tabs.setCurrentWidget(widget)
                return widget
        title, tip, view = self._make_worklist(kind)
        view.setProperty("worklist", kind)
        self._add_tab(view, title, tip)
        return view

    def _make_worklist(self, kind: str) -> tuple[str, str, QWidget]:
        db, worker, actor = self._db, self.worker, self._actor
        if kind == "failures":
            failures = FailuresView(db, worker, actor)
            failures.open_account_requested.connect(self.open_account_id)
            failures.refunded.connect(self._account_changed_here)
            return ("Failed, not refunded", "Failed charges across all accounts that were "
                    "never refunded", failures)
        if kind == "approvals":
            approvals = ApprovalsView(db, worker, actor)
            approvals.open_account_requested.connect(self.open_account_id)
            approvals.decided.connect(self._account_changed_here)
            return "Approvals", "Requests waiting for a second pair of eyes", approvals
        if kind == "audit":
            audit = AuditView(db, worker, actor)
            audit.open_account_requested.connect(self.open_account_id)
            return "Audit log", "Every staff action, including refused attempts", audit
        if kind == "dashboard":
            # Imported on first use: the charts (pyqtgraph) need not slow the start-up.
            from .dashboard_view import DashboardView

            dashboard = DashboardView(db, worker, actor)
            dashboard.open_account_requested.connect(self.open_account_id)
            return "Dashboard", "Usage, failures, refunds and sales across all accounts", \
                dashboard
        if kind == "finance":
            from .finance_report_view import FinanceReportView

            return ("Finance report", "Credits granted, purchased, used, refunded and "
                    "expired per month, reconciled", FinanceReportView(db, worker, actor))
        raise ValueError(f"unknown work list {kind!r}")

    def _add_tab(self, widget: QWidget, title: str, tooltip: str) -> None:
        index = self.tabs.addTab(widget, title)
        self.tabs.setTabToolTip(index, tooltip)
        self.tabs.setCurrentIndex(index)
        if not self.tabs.isVisible():
            self.tabs.show()
            height = self.splitter.height()
            detail_height = int(height * DETAIL_SHARE)
            self.splitter.setSizes([max(height - detail_height, 1), detail_height])

    @Slot(object)
    def _account_changed_here(self, result: OperationResult) -> None:
        """A change made from this window: say what happened and show it everywhere."""
        message = result.message
        if result.replayed:
            message = ("This change had already been saved; it was not applied twice. "
                       + message)
        self.statusBar().showMessage(message, CHANGE_MESSAGE_MS)
        self.model.refresh(rows=self.model.rowCount())
        for account_id in result.account_ids:
            detail = self.detail_for(account_id)
            if detail is not None and detail is not self.sender():
                detail.refresh()

    def open_details(self) -> list[AccountDetail]:
        """The open account tabs, left to right."""
        found = [self.tabs.widget(i) for i in range(self.tabs.count())]
        return [d for d in found if isinstance(d, AccountDetail)]

    def detail_for(self, account_id: int) -> AccountDetail | None:
        for detail in self.open_details():
            if detail.account_id == account_id:
                return detail
        return None

    def current_detail(self) -> AccountDetail | None:
        widget = self.tabs.currentWidget()
        return widget if isinstance(widget, AccountDetail) else None

    @Slot(int)
    def close_account_tab(self, index: int) -> None:
        widget = self.tabs.widget(index)
        if widget is None:
            return
        shutdown = getattr(widget, "shutdown", None)
        if callable(shutdown):
            shutdown()
        self.tabs.removeTab(index)
        widget.deleteLater()
        if self.tabs.count() == 0:
            self.tabs.hide()
            self.table.setFocus()

    @Slot()
    def open_incident_dialog(self) -> None:
        """The incident refund (one at a time; it may run for a while)."""
        if not self.incident_action.isEnabled():
            return
        if self.incident_dialog is not None:
            self.incident_dialog.raise_()
            self.incident_dialog.activateWindow()
            return
        dialog = IncidentDialog(self._db, self._actor, worker=self.worker, parent=self)
        dialog.run_finished.connect(self._incident_finished)
        dialog.finished.connect(lambda _r, d=dialog: self._incident_closed(d))
        self.incident_dialog = dialog
        dialog.open()

    def _incident_closed(self, dialog: IncidentDialog) -> None:
        if self.incident_dialog is dialog:
            self.incident_dialog = None
        dialog.deleteLater()

    @Slot(object)
    def _incident_finished(self, _summary: object) -> None:
        self.model.refresh(rows=self.model.rowCount())
        for detail in self.open_details():
            detail.refresh()

    def _with_detail(self, method: Callable[[AccountDetail], None]) -> None:
        detail = self.current_detail()
        if detail is None:
            self.statusBar().showMessage("Open an account first (Enter on a row).",
                                         CHANGE_MESSAGE_MS)
            return
        method(detail)

    def closeEvent(self, event: QCloseEvent) -> None:
        # Queries still running finish on their own; their results are not wanted.
        self._debounce.stop()
        self.watcher.stop()
        self.worker.discard_all()
        super().closeEvent(event)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        # Down arrow in the search field moves to the results, as in a browser's list
        # (searching at once for text typed just now, as Enter does).
        if (
            watched is self.search
            and event.type() == QEvent.Type.KeyPress
            and event.key() == Qt.Key.Key_Down  # type: ignore[attr-defined]
        ):
            self._search_now_and_go_to_table()
            return True
        return super().eventFilter(watched, event)

    # -- live data and the connection --------------------------------------------------

    def _set_up_live(self, poll_interval_ms: int, backoff: Sequence[float]) -> None:
        self.watcher = ChangeWatcher(
            self._db, self.worker, lambda: [d.account_id for d in self.open_details()], self,
            interval_ms=poll_interval_ms, backoff=backoff,
        )
        self.watcher.accounts_changed.connect(self._accounts_changed)
        self.watcher.connection_lost.connect(self._connection_lost)
        self.watcher.retrying.connect(self.connection_banner.show_trying)
        self.watcher.retry_scheduled.connect(self.connection_banner.show_countdown)
        self.watcher.connection_restored.connect(self._connection_restored)
        self.connection_banner.retry_requested.connect(self.watcher.retry_now)
        # Any query of the window that cannot reach the database starts the outage.
        self.worker.connection_lost.connect(self.watcher.report_lost)

        self.error_reporter = ErrorReporter(self)
        self.worker.fault.connect(self.error_reporter.report)
        set_report_database(self._db.display_url())
        self.watcher.start()

    @Slot(list)
    def _accounts_changed(self, account_ids: list[int]) -> None:
        for account_id in account_ids:
            detail = self.detail_for(account_id)
            if detail is not None:
                detail.refresh()

    @Slot()
    def _connection_lost(self) -> None:
        self.error_bar.hide()
        self.connection_banner.show_trying()

    @Slot()
    def _connection_restored(self) -> None:
        self.connection_banner.dismiss()
        self.error_bar.hide()
        self.model.refresh()
        if self.filter_bar.plans_missing:
            self.filter_bar.load()
        for detail in self.open_details():
            detail.refresh()
        self.statusBar().showMessage("Connection restored", RESTORED_MESSAGE_MS)

    # -- slots -------------------------------------------------------------------------

    @Slot()
    def _run_search(self) -> None:
        self.error_bar.hide()
        self.model.set_query(self.search.text())

    @Slot()
    def _search_now_and_go_to_table(self) -> None:
        if self._debounce.isActive():
            self._debounce.stop()
            self._run_search()
        self._go_to_table()

    def _go_to_table(self) -> None:
        self.table.setFocus(Qt.FocusReason.OtherFocusReason)
        # Results still on their way replace the rows shown (and the current row):
        # the first of them is selected when they arrive, so that Enter opens it.
        self._first_row_wanted = self.model.is_loading
        self._select_first_row()

    def _select_first_row(self) -> None:
        if not self.table.currentIndex().isValid() and self.model.rowCount() > 0:
            self.table.setCurrentIndex(self.model.index(0, 0))

    @Slot()
    def _retry(self) -> None:
        self.refresh()

    @Slot(QModelIndex)
    def _open_account(self, index: QModelIndex) -> None:
        row = index.data(ACCOUNT_ROLE)
        if isinstance(row, AccountRow):
            self.open_account(row)

    def _step_tab(self, step: int) -> None:
        count = self.tabs.count()
        if count > 1:
            self.tabs.setCurrentIndex((self.tabs.currentIndex() + step) % count)
            focus = QApplication.focusWidget()
            if focus is None or not focus.isVisible():
                # The focus was in the page just hidden: the tab bar says where we are.
                self.tabs.tabBar().setFocus(Qt.FocusReason.TabFocusReason)

    @Slot()
    def _close_current_tab(self) -> None:
        if self.tabs.count() > 0:
            self.close_account_tab(self.tabs.currentIndex())

    def _retitle(self, detail: AccountDetail) -> None:
        index = self.tabs.indexOf(detail)
        if index >= 0:
            self.tabs.setTabText(index, _tab_title(detail.name))

    @Slot()
    def _page_loaded(self) -> None:
        self.error_bar.hide()
        self._update_state()
        if self._first_row_wanted and not self.model.is_loading:
            self._first_row_wanted = False
            if self.table.hasFocus():
                self._select_first_row()

    @Slot(str)
    def _show_error(self, message: str) -> None:
        if not self.watcher.connected:
            # The banner already says the database is gone; one message is enough.
            self._update_state()
            return
        self.error_text.setText(message)
        self.error_bar.show()
        self._update_state()

    @Slot()
    def _update_state(self) -> None:
        model = self.model
        count = model.rowCount()
        noun = "account" if count == 1 else "accounts"
        if model.is_loading and count == 0:
            text = "Loading accounts…"
        elif model.has_failed and count == 0:
            text = "No accounts loaded"
        else:
            text = f"{count:,} {noun} loaded"
            if model.is_loading:
                text += ", loading…"
            elif not model.is_complete and not model.has_failed:
                text += ", scroll for more"
        self.count_label.setText(text)
        self.table.set_placeholder(self._empty_text())

    def _empty_text(self) -> str:
        model = self.model
        if model.is_loading:
            return "Loading accounts…"
        if model.has_failed:
            return "The accounts could not be loaded."
        if model.filters.active:
            if model.query.text:
                return f"No account matches “{model.query.text}” with these filters."
            return "No account matches the filters."
        if model.query.text:
            return f"No account matches “{model.query.text}”."
        return "There are no accounts in this database yet."


def _tab_title(name: str) -> str:
    """A tab's text: shortened, with "&" doubled so that "Bloom & Grove" is not read as
    a keyboard mnemonic (and shown as "Bloom _Grove")."""
    short = name if len(name) <= 28 else f"{name[:27]}…"
    return short.replace("&", "&&")


def _separator() -> QFrame:
    line = QFrame()
    line.setFrameShape(QFrame.Shape.VLine)
    line.setFrameShadow(QFrame.Shadow.Sunken)
    return line


def _elide_middle(text: str, limit: int) -> str:
    """Shorten a long address in the middle, where the least telling part is."""
    if len(text) <= limit:
        return text
    keep = (limit - 1) // 2
    return f"{text[:keep]}…{text[-(limit - 1 - keep):]}"
