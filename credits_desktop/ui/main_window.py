"""The main window: find a customer account and look at it.

A search field (email, name or account id prefix; searched 200 ms after the last
keystroke) with filters beside it (plan, status, low balance, unrefunded failed
charges; see :mod:`account_filters`), the accounts table (paged, sorted in SQL by a
header click), below it the accounts opened with Enter or a double-click, one tab
each (see :mod:`account_detail`; Ctrl+W closes one, Ctrl+PgDown and Ctrl+PgUp move
between them, F5 reads the current one again), and a status bar naming the database,
the signed-in staff member and how many accounts are loaded (a message too long for
it is elided, whole in its tooltip). Every database call
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

The finish: a tool bar with the everyday actions; every menu item has a keyboard
shortcut (View > Sort accounts by: Alt+1 to Alt+8); Help has the user guide (F1) and
About (Ctrl+F1, :mod:`about_dialog`). Given a ``QSettings``, the window remembers
its size and place, tool bar, splitter, the accounts table's columns and sort order,
the account lists' columns, and the accounts open on this database
(:mod:`remembered`): they come back on the next start, an account deleted meanwhile
quietly left out. Colours come from :mod:`theme`, so light and dark both read well;
every text goes through Qt's translation (``self.tr``).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from PySide6.QtCore import (
    QT_TRANSLATE_NOOP,
    QCoreApplication,
    QEvent,
    QModelIndex,
    QObject,
    QRect,
    QSettings,
    Qt,
    QTimer,
    QUrl,
    Signal,
    Slot,
)
from PySide6.QtGui import (
    QAction,
    QActionGroup,
    QCloseEvent,
    QDesktopServices,
    QKeySequence,
    QPainter,
    QPaintEvent,
    QResizeEvent,
)
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
    QMessageBox,
    QPushButton,
    QSizeGrip,
    QSplitter,
    QStatusBar,
    QStyle,
    QStyleOption,
    QTableView,
    QTabWidget,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from credits_desktop.domain.permissions import ROLE_LABELS, Action
from credits_desktop.services.errors import NotFound
from credits_desktop.services.operations import Actor
from credits_desktop.services.queries import AccountRow, AccountSummary, account_summary
from credits_desktop.services.results import OperationResult
from credits_desktop.store.database import Database

from . import accounts_model as am
from . import formatting as fmt
from . import remembered, theme
from .about_dialog import AboutDialog
from .account_detail import AccountDetail
from .account_filters import AccountFilterBar
from .accounts_model import ACCOUNT_ROLE, AccountsModel, SearchFn
from .approvals_view import ApprovalsView
from .audit_view import AuditView
from .banner import ConnectionBanner
from .detail_models import DETAIL_PAGE_SIZE
from .error_report import ErrorReporter, set_report_database
from .failures_view import FailuresView
from .i18n import plural
from .incident_dialog import IncidentDialog
from .live import BACKOFF_SECONDS, POLL_INTERVAL_MS, ChangeWatcher
from .role_gate import gate
from .table_models import RELAYOUT_EVENTS, RowDelegate
from .workers import Worker

__all__ = ["SEARCH_DELAY_MS", "USER_GUIDE", "AccountsTable", "MainWindow", "MessageStatusBar"]

log = logging.getLogger(__name__)

# The translation context of the module's constants (the window's own is its class).
CONTEXT = "MainWindow"

# How long the status bar says "Connection restored".
RESTORED_MESSAGE_MS = 5000
# How long the outcome of a refund or adjustment stays in the status bar.
CHANGE_MESSAGE_MS = 10_000
# Long enough that typing an address runs one search, short enough to feel immediate.
SEARCH_DELAY_MS = 200
SEARCH_PLACEHOLDER = str(QT_TRANSLATE_NOOP("MainWindow", "Search by email, name or account id"))
# The share of the window's height the open accounts get when the first one opens.
DETAIL_SHARE = 0.62

# View > Sort accounts by: the columns' titles, each with its own Alt+letter (and
# Alt+1… as shortcut, in column order); the keyboard's way to what a header click does.
SORT_LABELS: dict[int, str] = {
    am.COL_NAME: str(QT_TRANSLATE_NOOP("MainWindow", "&Name")),
    am.COL_EMAIL: str(QT_TRANSLATE_NOOP("MainWindow", "&Email")),
    am.COL_PLAN: str(QT_TRANSLATE_NOOP("MainWindow", "&Plan")),
    am.COL_PLAN_LEFT: str(QT_TRANSLATE_NOOP("MainWindow", "Plan &credits left")),
    am.COL_PURCHASED: str(QT_TRANSLATE_NOOP("MainWindow", "P&urchased")),
    am.COL_TOTAL: str(QT_TRANSLATE_NOOP("MainWindow", "&Total available")),
    am.COL_NEXT_RESET: str(QT_TRANSLATE_NOOP("MainWindow", "Next &reset")),
    am.COL_LAST_ACTIVITY: str(QT_TRANSLATE_NOOP("MainWindow", "&Last activity")),
}

# The staff roles as the status bar names them (domain.permissions.ROLE_LABELS, which
# cannot use Qt, holds the same English words).
ROLE_NAMES = (
    str(QT_TRANSLATE_NOOP("Roles", "Support")),
    str(QT_TRANSLATE_NOOP("Roles", "Finance")),
    str(QT_TRANSLATE_NOOP("Roles", "Manager")),
    str(QT_TRANSLATE_NOOP("Roles", "Admin")),
    str(QT_TRANSLATE_NOOP("Roles", "System")),
)

# Help > User guide: the guide in the source tree (docs/user-guide.md), when running
# from a checkout of it.
USER_GUIDE = Path(__file__).resolve().parents[2] / "docs" / "user-guide.md"

# The settings keys of the tables' column layouts.
ACCOUNTS_HEADER_KEY = "headers/accounts"
DETAIL_HEADER_KEY = "headers/account_{kind}"

# Typical widest contents, to size the columns before any row is loaded.
_SAMPLE_TEXT = {
    am.COL_NAME: "Andersson & O'Brien Marketing Co.",
    am.COL_EMAIL: "marketing.team@northwind-creative.test",
    am.COL_PLAN: "Agency",
    am.COL_PLAN_LEFT: "20,000 / 20,000",
    am.COL_PURCHASED: "1,000,000",
    am.COL_TOTAL: "1,000,000",
}
# A wide date and time in every locale's form (two-digit day and month, an afternoon).
SAMPLE_MOMENT = datetime(2026, 12, 28, 22, 58, tzinfo=UTC)


class AccountsTable(QTableView):
    """The accounts table; says why it is empty instead of showing a blank grid.

    Its cells are painted by a :class:`~credits_desktop.ui.table_models.RowDelegate`
    (one Python call a cell instead of a ``data()`` call per role), with the padding
    between columns its own: no style sheet, which would route every cell through
    Qt's style sheet style (a quarter of the repaint's cost).
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._placeholder = ""
        self.row_delegate = RowDelegate(self)
        self.setItemDelegate(self.row_delegate)
        # The rows stay where they are when the table gets shorter (an account opens
        # below it) or taller: only the part newly shown is painted, not all of it.
        self.viewport().setAttribute(Qt.WidgetAttribute.WA_StaticContents)

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

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        model = self.model()
        if self._placeholder and (model is None or model.rowCount() == 0):
            # The placeholder is centred: it moves with the size (static contents).
            self.viewport().update()

    def changeEvent(self, event: QEvent) -> None:
        if event.type() in RELAYOUT_EVENTS:
            # Texts measured in the old font would be elided wrongly.
            self.row_delegate.forget_layout()
        super().changeEvent(event)

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


class MessageStatusBar(QStatusBar):
    """A status bar whose messages (``showMessage``) are elided to the room left of the
    permanent widgets, instead of being cut off by them; the whole message is its
    tooltip while shown."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        # QStatusBar does not tell which widgets are permanent; they are kept here.
        self._permanent: list[QWidget] = []
        self.messageChanged.connect(self.setToolTip)

    def message_rect(self) -> QRect:
        """Where the message is written: as QStatusBar places it, up to the first
        permanent widget shown (or the size grip)."""
        rtl = self.layoutDirection() == Qt.LayoutDirection.RightToLeft
        left, right = 6, self.width() - 12
        grip = self.findChild(QSizeGrip)
        if grip is not None and grip.isVisible():
            if rtl:
                left = grip.x() + grip.width()
            else:
                right = grip.x()
        permanent = [w for w in self._permanent if w.isVisible()]
        if permanent:
            first = max(permanent, key=lambda w: w.x()) if rtl \
                else min(permanent, key=lambda w: w.x())
            if rtl:
                left = max(left, first.x() + first.width() + 8)
            else:
                right = min(right, first.x() - 8)
        return QRect(left, 0, max(right - left, 0), self.height())

    def addPermanentWidget(self, widget: QWidget, stretch: int | None = 0) -> None:
        super().addPermanentWidget(widget, stretch or 0)
        self._permanent.append(widget)

    def removeWidget(self, widget: QWidget) -> None:
        super().removeWidget(widget)
        if widget in self._permanent:
            self._permanent.remove(widget)

    def shown_message(self) -> str:
        """The message as written on screen (elided to fit)."""
        message = self.currentMessage()
        if not message:
            return ""
        return self.fontMetrics().elidedText(message, Qt.TextElideMode.ElideRight,
                                             self.message_rect().width())

    def paintEvent(self, event: QPaintEvent) -> None:
        if not self.currentMessage():
            super().paintEvent(event)
            return
        # What QStatusBar paints with a message, but elided: its panel, the frames of
        # the permanent widgets (the others are hidden meanwhile), then the message.
        painter = QPainter(self)
        option = QStyleOption()
        option.initFrom(self)
        style = self.style()
        style.drawPrimitive(QStyle.PrimitiveElement.PE_PanelStatusBar, option, painter, self)
        for widget in self._permanent:
            if widget.isVisible():
                frame = QStyleOption()
                frame.rect = widget.geometry().adjusted(-2, -1, 2, 1)
                frame.palette = self.palette()
                style.drawPrimitive(QStyle.PrimitiveElement.PE_FrameStatusBarItem, frame,
                                    painter, widget)
        painter.setPen(self.palette().windowText().color())
        painter.drawText(self.message_rect(),
                         int(Qt.AlignmentFlag.AlignLeading | Qt.AlignmentFlag.AlignVCenter
                             | Qt.TextFlag.TextSingleLine), self.shown_message())
        painter.end()


class MainWindow(QMainWindow):
    """Credits Desk's main window for one database and one signed-in staff member."""

    # File > Connect to another database…: the launcher opens the connection dialog.
    connect_requested = Signal()
    # The accounts open at the last close are open again (settings given).
    accounts_reopened = Signal()

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
        settings: QSettings | None = None,
    ) -> None:
        super().__init__(parent)
        self._db = db
        self._actor = actor
        # Where the layout is remembered; None: nothing is read or saved (tests).
        self._settings = settings
        # The splitter's remembered sizes are put back the first time a tab shows.
        self._splitter_restored = False
        self.worker = worker if worker is not None else Worker(self)
        self._detail_page_size = detail_page_size
        # Enter or Down in the search field while the results load: select the
        # first result when it arrives.
        self._first_row_wanted = False

        self.setWindowTitle(self.tr("Credits Desk"))
        self.resize(1280, 760)

        extra = {} if search is None else {"search": search}
        self.model = AccountsModel(db, self.worker, self, page_size=page_size, **extra)

        self.search = QLineEdit()
        self.search.setObjectName("search")
        self.search.setAccessibleName(self.tr("Account search"))
        self.search.setAccessibleDescription(self.tr(
            "Type the start of an email address, a name or an account id; Enter or Down "
            "moves to the accounts found"
        ))
        self.search.setPlaceholderText(_tr(SEARCH_PLACEHOLDER))
        self.search.setClearButtonEnabled(True)
        self.search.setToolTip(self.tr(
            "Type the start of an email address, a name or an account id (Ctrl+F)"
        ))
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
        self._style_error_bar()
        self.error_text = QLabel()
        self.error_text.setObjectName("errorText")
        self.error_text.setWordWrap(True)
        retry = QPushButton(self.tr("Try again"))
        retry.setObjectName("retry")
        retry.setAccessibleName(self.tr("Try loading the accounts again"))
        retry.clicked.connect(self._retry)
        bar = QHBoxLayout(self.error_bar)
        bar.setContentsMargins(10, 6, 6, 6)
        bar.addWidget(self.error_text, 1)
        bar.addWidget(retry)
        self.error_bar.hide()

        self.table = AccountsTable()
        self.table.setObjectName("accounts")
        self.table.setAccessibleName(self.tr("Accounts"))
        self.table.setAccessibleDescription(
            self.tr("Accounts found; Enter opens the selected one in a tab below"))
        self.table.setModel(self.model)
        self._set_up_table()
        self.table.activated.connect(self._open_account)

        self.tabs = QTabWidget()
        self.tabs.setObjectName("openAccounts")
        self.tabs.setAccessibleName(self.tr("Open accounts"))
        self.tabs.tabBar().setAccessibleName(self.tr("Open account tabs"))
        self.tabs.tabBar().setAccessibleDescription(self.tr(
            "Accounts and work lists opened; Ctrl+Page Down and Ctrl+Page Up switch, "
            "Ctrl+W closes one"))
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
        self._set_up_tool_bar()
        self._set_up_status_bar()

        self.model.loading_changed.connect(self._update_state)
        self.model.page_loaded.connect(self._page_loaded)
        self.model.load_failed.connect(self._show_error)
        self.model.modelReset.connect(self._update_state)
        self.model.rowsInserted.connect(self._update_state)

        # Setting the sort indicator before enabling sorting makes the view's first
        # sort() call (which enabling triggers) load the first page by name, or in the
        # order remembered with the columns: the rows come sorted, in SQL, either way.
        header = self.table.horizontalHeader()
        header.setSortIndicator(am.COL_NAME, Qt.SortOrder.AscendingOrder)
        if settings is not None:
            remembered.keep_header(header, settings, ACCOUNTS_HEADER_KEY)
            remembered.restore_window(self, settings)
        self.table.setSortingEnabled(True)
        self._sorted_by(header.sortIndicatorSection(), header.sortIndicatorOrder())
        self._update_state()
        self.search.setFocus()
        self._set_up_live(poll_interval_ms, backoff)
        self.about_dialog: AboutDialog | None = None
        self.guide_message: QMessageBox | None = None
        if settings is not None:
            self._reopen_accounts(settings)

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
        samples = {**_SAMPLE_TEXT, am.COL_NEXT_RESET: fmt.local_date(SAMPLE_MOMENT),
                   am.COL_LAST_ACTIVITY: fmt.local_datetime(SAMPLE_MOMENT)}
        for column, sample in samples.items():
            title = str(self.model.headerData(column, Qt.Orientation.Horizontal))
            # Room for the text, the cell padding and the header's sort arrow.
            width = max(metrics.horizontalAdvance(sample) + 24,
                        header_metrics.horizontalAdvance(title) + 36)
            header.resizeSection(column, width)

    def _action(self, text: str, keys: str | QKeySequence.StandardKey | list[QKeySequence],
                slot: Callable[[], object]) -> QAction:
        action = QAction(text, self)
        if isinstance(keys, list):
            action.setShortcuts(keys)
        else:
            action.setShortcut(QKeySequence(keys))
        action.triggered.connect(lambda _checked=False: slot())
        return action

    def _set_up_actions(self) -> None:
        tr = self.tr
        find = self._action(tr("&Find account"), QKeySequence.StandardKey.Find,
                            self.focus_search)
        # F5 on every platform: the platform's "Refresh" is Ctrl+R on some, the refund.
        refresh = self._action(tr("&Refresh"), "F5", self.refresh)
        # Ctrl+W everywhere, with the platform's own "close" keys (once each: a key
        # listed twice would be ambiguous and do nothing).
        keys = [QKeySequence("Ctrl+W")]
        for sequence in QKeySequence.keyBindings(QKeySequence.StandardKey.Close):
            if sequence not in keys:
                keys.append(sequence)
        close_tab = self._action(tr("&Close tab"), keys, self._close_current_tab)
        # Ctrl+Q everywhere (Windows has no standard "quit" key).
        quit_action = self._action(tr("&Quit"), "Ctrl+Q", self.close)
        # Between the open accounts and work lists, as in a browser; Ctrl+Tab stays
        # Qt's own: inside an account it moves between its grants, charges and ledger.
        next_tab = self._action(tr("&Next tab"), "Ctrl+PgDown", lambda: self._step_tab(1))
        previous_tab = self._action(tr("&Previous tab"), "Ctrl+PgUp",
                                    lambda: self._step_tab(-1))
        self.next_tab_action, self.previous_tab_action = next_tab, previous_tab

        connect_other = self._action(tr("&Connect to another database…"), "Ctrl+Shift+O",
                                     self.connect_requested.emit)
        self.connect_action = connect_other

        refund = self._action(tr("&Refund selected charges…"), "Ctrl+R",
                              lambda: self._with_detail(AccountDetail.open_refund_dialog))
        refund.setIconText(tr("Refund…"))
        adjust = self._action(tr("&Adjust purchased credits…"), "Ctrl+Shift+A",
                              lambda: self._with_detail(AccountDetail.open_adjust_dialog))
        adjust.setIconText(tr("Adjust…"))
        gate(adjust, self._actor, Action.ADJUST_PURCHASED)
        reverse = self._action(tr("Re&verse selected ledger entry…"), "Ctrl+Shift+E",
                               lambda: self._with_detail(AccountDetail.open_reverse_dialog))
        failures = self._action(tr("&Failed charges not refunded"), "Ctrl+1",
                                lambda: self.open_worklist("failures"))
        failures.setIconText(tr("Failures"))
        approvals = self._action(tr("A&pprovals"), "Ctrl+2",
                                 lambda: self.open_worklist("approvals"))
        approvals.setIconText(tr("Approvals"))
        audit = self._action(tr("Au&dit log"), "Ctrl+3", lambda: self.open_worklist("audit"))
        audit.setIconText(tr("Audit"))
        incident = self._action(tr("&Incident refund…"), "Ctrl+Shift+I",
                                self.open_incident_dialog)
        gate(incident, self._actor, Action.INCIDENT_REFUND,
             allowed_tip=tr("Refund every failed charge of a feature in a time window"))
        self.incident_action = incident
        self.incident_dialog: IncidentDialog | None = None
        self.refund_action, self.adjust_action, self.reverse_action = refund, adjust, reverse
        dashboard = self._action(tr("Dash&board"), "Ctrl+4",
                                 lambda: self.open_worklist("dashboard"))
        dashboard.setIconText(tr("Dashboard"))
        finance = self._action(tr("Fi&nance report"), "Ctrl+5",
                               lambda: self.open_worklist("finance"))
        self.failures_action, self.approvals_action, self.audit_action = (
            failures, approvals, audit)
        self.dashboard_action, self.finance_action = dashboard, finance
        guide = self._action(tr("&User guide"), "F1", self.open_user_guide)
        about = self._action(tr("&About Credits Desk"), "Ctrl+F1", self.open_about)
        self.guide_action, self.about_action = guide, about

        file_menu = self.menuBar().addMenu(tr("&File"))
        file_menu.addAction(connect_other)
        file_menu.addSeparator()
        file_menu.addAction(quit_action)
        view_menu = self.menuBar().addMenu(tr("&View"))
        view_menu.addAction(find)
        view_menu.addAction(refresh)
        view_menu.addAction(close_tab)
        view_menu.addSeparator()
        view_menu.addAction(next_tab)
        view_menu.addAction(previous_tab)
        view_menu.addSeparator()
        view_menu.addMenu(self._sort_menu())
        account_menu = self.menuBar().addMenu(tr("&Account"))
        account_menu.setToolTipsVisible(True)
        for action in (refund, adjust, reverse):
            account_menu.addAction(action)
        work_menu = self.menuBar().addMenu(tr("&Work"))
        work_menu.setToolTipsVisible(True)
        for action in (failures, approvals, audit):
            work_menu.addAction(action)
        work_menu.addSeparator()
        work_menu.addAction(dashboard)
        work_menu.addAction(finance)
        work_menu.addSeparator()
        work_menu.addAction(incident)
        help_menu = self.menuBar().addMenu(tr("&Help"))
        help_menu.addAction(guide)
        help_menu.addSeparator()
        help_menu.addAction(about)
        self.work_menu = work_menu
        self.find_action = find
        self.refresh_action = refresh
        self.close_tab_action = close_tab
        self.quit_action = quit_action

    def _set_up_tool_bar(self) -> None:
        """The everyday actions, one click away; the same actions as the menus."""
        tool_bar = QToolBar(self.tr("Main tool bar"), self)
        # Its name is how saveState() finds it again on the next start.
        tool_bar.setObjectName("mainToolBar")
        # Text only: words need no explaining and stay crisp at any scale.
        tool_bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        tool_bar.setMovable(True)
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, tool_bar)
        # What a screen reader says for each button (the short texts alone do not
        # say what they act on).
        spoken = [
            (self.refresh_action, self.tr("Refresh the accounts and the open tab")),
            (self.find_action, self.tr("Find an account")),
            None,
            (self.refund_action, self.tr("Refund the selected charges")),
            (self.adjust_action, self.tr("Adjust the purchased credits")),
            None,
            (self.failures_action, self.tr("Open the failed charges not refunded")),
            (self.approvals_action, self.tr("Open the approvals")),
            (self.audit_action, self.tr("Open the audit log")),
            (self.dashboard_action, self.tr("Open the dashboard")),
        ]
        self.find_action.setIconText(self.tr("Find"))
        for entry in spoken:
            if entry is None:
                tool_bar.addSeparator()
                continue
            action, name = entry
            tool_bar.addAction(action)
            button = tool_bar.widgetForAction(action)
            if button is not None:
                button.setAccessibleName(name)
                button.setObjectName(f"tool_{action.iconText().rstrip('…').lower()}")
        # The button Qt shows when the window is too narrow for every button.
        extension = tool_bar.findChild(QWidget, "qt_toolbar_ext_button")
        if extension is not None:
            extension.setAccessibleName(self.tr("More tool bar buttons"))
        tool_bar.toggleViewAction().setText(self.tr("Show the &tool bar"))
        self.tool_bar = tool_bar

    def _sort_menu(self) -> QMenu:
        menu = QMenu(self.tr("&Sort accounts by"), self)
        menu.setToolTipsVisible(True)
        group = QActionGroup(self)
        self.sort_actions: dict[int, QAction] = {}
        for number, (column, label) in enumerate(SORT_LABELS.items(), start=1):
            action = QAction(_tr(label), self)
            action.setCheckable(True)
            action.setShortcut(QKeySequence(f"Alt+{number}"))
            action.setToolTip(self.tr("Choose it again to reverse the order"))
            action.triggered.connect(lambda _checked=False, c=column: self.sort_by(c))
            group.addAction(action)
            menu.addAction(action)
            self.sort_actions[column] = action
        # A header click shows in the menu too.
        self.table.horizontalHeader().sortIndicatorChanged.connect(self._sorted_by)
        return menu

    def _set_up_status_bar(self) -> None:
        status = MessageStatusBar(self)
        status.setObjectName("statusBar")
        self.setStatusBar(status)
        url = self._db.display_url()
        self.database_label = QLabel(_elide_middle(url, 70))
        self.database_label.setObjectName("statusDatabase")
        self.database_label.setToolTip(self.tr("Database: {url}").format(url=url))
        role = ROLE_LABELS.get(self._actor.role, str(self._actor.role))
        self.staff_label = QLabel(self.tr("{name} · {role}").format(
            name=self._actor.display_name, role=QCoreApplication.translate("Roles", role)))
        self.staff_label.setObjectName("statusStaff")
        self.staff_label.setToolTip(
            self.tr("Signed in as {username}").format(username=self._actor.username))
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
        return self.open_account_id(
            row.id, row.name, self.tr("{name} ({email})").format(name=row.name, email=row.email))

    def open_account_id(self, account_id: int, name: str = "", tooltip: str = ""
                        ) -> AccountDetail:
        """Show the account ``account_id`` (from a work list, which knows only its id)."""
        existing = self.detail_for(account_id)
        if existing is not None:
            self.tabs.setCurrentWidget(existing)
            return existing
        name = name or self.tr("Account #{id}").format(id=account_id)
        detail = AccountDetail(self._db, self.worker, account_id, name, actor=self._actor,
                               page_size=self._detail_page_size)
        if self._settings is not None:
            # Column widths and order per list kind, the same for every account; the
            # charges and ledger as their pages are built (on first show).
            settings = self._settings

            def keep(kind: str, header: QHeaderView, d: AccountDetail = detail) -> None:
                remembered.keep_header(header, settings, DETAIL_HEADER_KEY.format(kind=kind))
                d.stretch_reason(header)

            for kind, header in detail.headers().items():
                keep(kind, header)
            detail.header_ready.connect(keep)
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
            return (self.tr("Failed, not refunded"),
                    self.tr("Failed charges across all accounts that were never refunded"),
                    failures)
        if kind == "approvals":
            approvals = ApprovalsView(db, worker, actor)
            approvals.open_account_requested.connect(self.open_account_id)
            approvals.decided.connect(self._account_changed_here)
            return (self.tr("Approvals"), self.tr("Requests waiting for a second pair of eyes"),
                    approvals)
        if kind == "audit":
            audit = AuditView(db, worker, actor)
            audit.open_account_requested.connect(self.open_account_id)
            return (self.tr("Audit log"), self.tr("Every staff action, including refused "
                                                  "attempts"), audit)
        if kind == "dashboard":
            # Imported on first use: the charts (pyqtgraph) need not slow the start-up.
            from .dashboard_view import DashboardView

            dashboard = DashboardView(db, worker, actor)
            dashboard.open_account_requested.connect(self.open_account_id)
            return (self.tr("Dashboard"),
                    self.tr("Usage, failures, refunds and sales across all accounts"),
                    dashboard)
        if kind == "finance":
            from .finance_report_view import FinanceReportView

            return (self.tr("Finance report"),
                    self.tr("Credits granted, purchased, used, refunded and expired per "
                            "month, reconciled"), FinanceReportView(db, worker, actor))
        raise ValueError(f"unknown work list {kind!r}")

    def _add_tab(self, widget: QWidget, title: str, tooltip: str) -> None:
        index = self.tabs.addTab(widget, title)
        self.tabs.setTabToolTip(index, tooltip)
        self.tabs.setCurrentIndex(index)
        if not self.tabs.isVisible():
            self.tabs.show()
            if not self._restore_splitter():
                height = self.splitter.height()
                detail_height = int(height * DETAIL_SHARE)
                self.splitter.setSizes([max(height - detail_height, 1), detail_height])

    def _restore_splitter(self) -> bool:
        """The remembered split between the accounts and the tabs, the first time the
        tabs show (later the user's own split of this session stays)."""
        if self._settings is None or self._splitter_restored:
            return False
        self._splitter_restored = True
        return remembered.restore_splitter(self.splitter, self._settings)

    @Slot(object)
    def _account_changed_here(self, result: OperationResult) -> None:
        """A change made from this window: say what happened and show it everywhere."""
        message = result.message
        if result.replayed:
            message = self.tr("This change had already been saved; it was not applied "
                              "twice. {message}").format(message=message)
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
            self.statusBar().showMessage(self.tr("Open an account first (Enter on a row)."),
                                         CHANGE_MESSAGE_MS)
            return
        method(detail)

    def closeEvent(self, event: QCloseEvent) -> None:
        if self._settings is not None and self.isVisible():
            # Only a window on screen has a layout worth keeping (a replaced window
            # is closed once more when the application ends).
            self.save_layout()
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

    def changeEvent(self, event: QEvent) -> None:
        # The light or dark palette was switched: the error bar's colours follow.
        if theme.is_palette_change(event):
            self._style_error_bar()
        super().changeEvent(event)

    def _style_error_bar(self) -> None:
        theme.set_style_sheet(
            self.error_bar,
            f"#errorBar {{ background: {theme.css('danger_background')}; "
            f"border: 1px solid {theme.css('danger_border')}; border-radius: 4px; }}"
            f"#errorBar QLabel {{ color: {theme.css('danger')}; }}"
        )

    # -- help ---------------------------------------------------------------------------

    @Slot()
    def open_about(self) -> AboutDialog:
        """Help > About: the versions and the database, with "Copy" for a ticket."""
        if self.about_dialog is not None:
            self.about_dialog.raise_()
            self.about_dialog.activateWindow()
            return self.about_dialog
        dialog = AboutDialog(self._db, self.worker, self)
        dialog.finished.connect(lambda _r, d=dialog: self._about_closed(d))
        self.about_dialog = dialog
        dialog.open()
        return dialog

    def _about_closed(self, dialog: AboutDialog) -> None:
        if self.about_dialog is dialog:
            self.about_dialog = None
        dialog.deleteLater()

    @Slot()
    def open_user_guide(self) -> None:
        """Help > User guide: docs/user-guide.md of the source tree, in the program the
        system opens such files with; else say where the guide is."""
        guide = USER_GUIDE
        if guide.is_file() and QDesktopServices.openUrl(QUrl.fromLocalFile(str(guide))):
            return
        if guide.is_file():
            text = self.tr("The user guide could not be opened with another program. It "
                           "is the file {path}").format(path=str(guide))
        else:
            text = self.tr("The user guide is not installed with this copy of Credits "
                           "Desk. It is docs/user-guide.md in the Credits Desk source; ask "
                           "whoever installed Credits Desk for it.")
        box = QMessageBox(QMessageBox.Icon.Information, self.tr("User guide"), text,
                          QMessageBox.StandardButton.Close, self)
        box.setObjectName("guideMessage")
        box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.guide_message = box
        box.open()

    # -- the remembered layout -------------------------------------------------------------

    def save_layout(self) -> None:
        """Remember the window, its tables and the open accounts (also done on close)."""
        settings = self._settings
        if settings is None:
            return
        remembered.remember_window(self, settings)
        remembered.remember_header(self.table.horizontalHeader(), settings,
                                   ACCOUNTS_HEADER_KEY)
        if self.tabs.isVisible():
            remembered.remember_splitter(self.splitter, settings)
        # The account lists' headers were saved as they changed (keep_header): the
        # last one changed wins, whichever account it belonged to.
        current = self.current_detail()
        remembered.remember_open_accounts(
            settings, self._db.display_url(),
            remembered.OpenAccounts(tuple(d.account_id for d in self.open_details()),
                                    current.account_id if current is not None else None),
        )
        settings.sync()

    def _reopen_accounts(self, settings: QSettings) -> None:
        """Open the accounts open on this database last time, in the same order; those
        deleted since (or unreadable now) are left out without a word."""
        wanted = remembered.remembered_open_accounts(settings, self._db.display_url())
        if not wanted.ids:
            return
        db, ids = self._db, wanted.ids

        def read() -> list[AccountSummary]:
            found = []
            for account_id in ids:
                # Deleted since: left out.
                with contextlib.suppress(NotFound):
                    found.append(account_summary(db, account_id))
            return found

        job = self.worker.submit(read)
        job.succeeded.connect(lambda found: self._reopened(found, wanted.current))
        job.failed.connect(lambda message: log.info("open accounts not reopened: %s",
                                                    message))

    def _reopened(self, found: list[AccountSummary], current: int | None) -> None:
        for summary in found:
            self.open_account_id(summary.id, summary.name,
                                 self.tr("{name} ({email})").format(name=summary.name,
                                                                    email=summary.email))
        detail = self.detail_for(current) if current is not None else None
        if detail is not None:
            self.tabs.setCurrentWidget(detail)
        self.accounts_reopened.emit()

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
        self.statusBar().showMessage(self.tr("Connection restored"), RESTORED_MESSAGE_MS)

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
        if model.is_loading and count == 0:
            text = self.tr("Loading accounts…")
        elif model.has_failed and count == 0:
            text = self.tr("No accounts loaded")
        elif model.is_loading:
            text = self.tr("%Ln account(s) loaded, loading…", "", plural(count))
        elif not model.is_complete and not model.has_failed:
            text = self.tr("%Ln account(s) loaded, scroll for more", "", plural(count))
        else:
            text = self.tr("%Ln account(s) loaded", "", plural(count))
        self.count_label.setText(text)
        self.table.set_placeholder(self._empty_text())

    def _empty_text(self) -> str:
        model = self.model
        if model.is_loading:
            return self.tr("Loading accounts…")
        if model.has_failed:
            return self.tr("The accounts could not be loaded.")
        if model.filters.active:
            if model.query.text:
                return self.tr("No account matches “{text}” with these filters.").format(
                    text=model.query.text)
            return self.tr("No account matches the filters.")
        if model.query.text:
            return self.tr("No account matches “{text}”.").format(text=model.query.text)
        return self.tr("There are no accounts in this database yet.")


def _tr(text: str) -> str:
    """A constant of this module, translated."""
    return QCoreApplication.translate(CONTEXT, text)


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
