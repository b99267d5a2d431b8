"""The accounts table: a lazily paged Qt model over ``services.queries.search_accounts``.

The database may hold hundreds of thousands of accounts, so the model never loads
them all: it asks for one page (200 rows), and the view asks for the next through
``canFetchMore``/``fetchMore`` when the user scrolls near the end. Every page is
read by a :class:`~credits_desktop.ui.workers.Worker` job, never on the GUI
thread, and the rows are appended when the page arrives.

Searching and sorting happen in SQL: :meth:`AccountsModel.set_query` and
:meth:`AccountsModel.sort` start a new first page; the rows on screen stay until
it arrives (no flicker), and the page of any older query still under way is
discarded, so a slow early search can never overwrite a newer one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any, Final

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    Signal,
    Slot,
)
from PySide6.QtGui import QBrush, QPalette
from PySide6.QtWidgets import QApplication

from credits_desktop.services.paging import Cursor, Page
from credits_desktop.services.queries import AccountQuery, AccountRow, AccountSort, search_accounts
from credits_desktop.store.database import Database

from . import formatting as fmt
from .workers import Job, Worker

__all__ = [
    "ACCOUNT_ROLE",
    "COLUMNS",
    "COL_EMAIL",
    "COL_LAST_ACTIVITY",
    "COL_NAME",
    "COL_NEXT_RESET",
    "COL_PLAN",
    "COL_PLAN_LEFT",
    "COL_PURCHASED",
    "COL_TOTAL",
    "PAGE_SIZE",
    "AccountsModel",
    "SearchFn",
]

PAGE_SIZE: Final = 200

# The AccountRow behind a row, for views that act on the account (any column).
ACCOUNT_ROLE: Final = Qt.ItemDataRole.UserRole + 1

COL_NAME, COL_EMAIL, COL_PLAN, COL_PLAN_LEFT, COL_PURCHASED, COL_TOTAL, COL_NEXT_RESET, \
    COL_LAST_ACTIVITY = range(8)

# Header title, header tooltip, and the SQL sort the column orders by.
COLUMNS: Final[tuple[tuple[str, str, AccountSort], ...]] = (
    ("Name", "The customer account's name", AccountSort.NAME),
    ("Email", "The account owner's email address", AccountSort.EMAIL),
    ("Plan", "The plan the account is on", AccountSort.PLAN),
    ("Plan credits left", "Plan credits left in this period / the plan's monthly allotment",
     AccountSort.PLAN_LEFT),
    ("Purchased", "Purchased credits left (they never expire)", AccountSort.PURCHASED),
    ("Total available", "Plan, purchased and refunded credits the account can spend now",
     AccountSort.TOTAL),
    ("Next reset", "When the current billing period ends and the plan credits renew "
     "(local date)", AccountSort.NEXT_RESET),
    ("Last activity", "The last charge, purchase or staff change (local time)",
     AccountSort.LAST_ACTIVITY),
)

NUMERIC_COLUMNS: Final = frozenset({COL_PLAN_LEFT, COL_PURCHASED, COL_TOTAL})

_RIGHT: Final = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
_LEFT: Final = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter

# search_accounts, or a stand-in with its signature (tests slow it down on purpose).
SearchFn = Callable[[Database, AccountQuery, Cursor | None, int], Page[AccountRow]]

AnyIndex = QModelIndex | QPersistentModelIndex


def _search_accounts(
    db: Database, query: AccountQuery, after: Cursor | None, limit: int
) -> Page[AccountRow]:
    return search_accounts(db, query, after=after, limit=limit)


class AccountsModel(QAbstractTableModel):
    """Accounts matching a search, in a SQL sort order, loaded a page at a time."""

    # Whether a page is being read (the status bar shows "Loading…").
    loading_changed = Signal(bool)
    # After each page has been put into the model (also when it added no rows).
    page_loaded = Signal()
    # A plain message for staff; the rows already shown stay.
    load_failed = Signal(str)

    def __init__(
        self,
        db: Database,
        worker: Worker,
        parent: QObject | None = None,
        *,
        page_size: int = PAGE_SIZE,
        search: SearchFn = _search_accounts,
    ) -> None:
        super().__init__(parent)
        self._db = db
        self._worker = worker
        self._page_size = page_size
        self._search = search
        self._query = AccountQuery(text="", sort=AccountSort.NAME, descending=False)
        self._rows: list[AccountRow] = []
        # The query the rows on screen answer (None before the first page).
        self._shown: AccountQuery | None = None
        self._next: Cursor | None = None
        self._complete = False
        self._started = False
        # After a failed page the view must not retry on every scroll: only refresh().
        self._failed = False
        # The one page read under way; a new query discards it.
        self._pending: Job | None = None
        self._pending_first = False
        self._pending_query = self._query
        self._loading_reported = False

    # -- what the model shows ---------------------------------------------------

    @property
    def query(self) -> AccountQuery:
        return self._query

    @property
    def is_loading(self) -> bool:
        return self._pending is not None

    @property
    def is_complete(self) -> bool:
        """Whether every matching account is loaded (no page left to fetch)."""
        return self._started and self._complete and self._pending is None

    @property
    def has_failed(self) -> bool:
        return self._failed

    def account(self, row: int) -> AccountRow:
        return self._rows[row]

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008 (Qt default)
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def flags(self, index: AnyIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return (
            Qt.ItemFlag.ItemIsEnabled
            | Qt.ItemFlag.ItemIsSelectable
            | Qt.ItemFlag.ItemNeverHasChildren
        )

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < len(COLUMNS):
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section][0]
        if role == Qt.ItemDataRole.ToolTipRole:
            return COLUMNS[section][1]
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return _RIGHT if section in NUMERIC_COLUMNS else _LEFT
        return None

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        row = self._rows[index.row()]
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return _display(row, column)
        if role == ACCOUNT_ROLE:
            return row
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return _RIGHT if column in NUMERIC_COLUMNS else _LEFT
        if role == Qt.ItemDataRole.ToolTipRole:
            return _tooltip(row, column)
        if role == Qt.ItemDataRole.ForegroundRole and row.status != "active":
            # Suspended and closed accounts are greyed out; the tooltip says why.
            palette = QApplication.palette()
            return QBrush(palette.color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text))
        return None

    # -- loading ------------------------------------------------------------------

    def set_query(self, text: str) -> None:
        """Show the accounts matching ``text`` (email, name or id), from the first page."""
        text = text.strip()
        if self._started and text == self._query.text and not self._failed:
            return
        self._query = replace(self._query, text=text)
        self.refresh()

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        """Order by ``column`` in SQL (the view calls this on a header click)."""
        key = COLUMNS[column][2] if 0 <= column < len(COLUMNS) else AccountSort.NAME
        descending = order == Qt.SortOrder.DescendingOrder
        if self._started and (key, descending) == (self._query.sort, self._query.descending):
            return
        self._query = replace(self._query, sort=key, descending=descending)
        self.refresh()

    def refresh(self) -> None:
        """Read the first page of the current query again (new rows, new balances)."""
        self._started = True
        self._failed = False
        self._start(first=True, after=None)

    def canFetchMore(self, parent: AnyIndex) -> bool:
        return (
            not parent.isValid()
            and self._started
            and not self._complete
            and not self._failed
            and self._pending is None
        )

    def fetchMore(self, parent: AnyIndex) -> None:
        if self.canFetchMore(parent):
            self._start(first=False, after=self._next)

    def _start(self, *, first: bool, after: Cursor | None) -> None:
        if self._pending is not None:
            self._pending.discard()
        db, query, limit, search = self._db, self._query, self._page_size, self._search
        job = self._worker.submit(lambda: search(db, query, after, limit))
        job.succeeded.connect(self._page_arrived)
        job.failed.connect(self._page_failed)
        self._pending = job
        self._pending_first = first
        self._pending_query = query
        self._report_loading()

    @Slot(object)
    def _page_arrived(self, page: Page[AccountRow]) -> None:
        first, query = self._pending_first, self._pending_query
        # The state is complete before the views hear of the new rows: a view (or the
        # model tester) may call canFetchMore/fetchMore from inside those signals.
        self._pending = None
        self._next = page.next_cursor
        self._complete = page.next_cursor is None
        if first:
            self.beginResetModel()
            self._rows = list(page.rows)
            self._shown = query
            self.endResetModel()
        elif page.rows:
            start = len(self._rows)
            self.beginInsertRows(QModelIndex(), start, start + len(page.rows) - 1)
            self._rows.extend(page.rows)
            self.endInsertRows()
        self._report_loading()
        self.page_loaded.emit()

    @Slot(str)
    def _page_failed(self, message: str) -> None:
        first, query = self._pending_first, self._pending_query
        self._pending = None
        self._failed = True
        if first and query != self._shown and self._rows:
            # The rows answer another search: showing them under this one would mislead.
            self.beginResetModel()
            self._rows = []
            self._shown = None
            self.endResetModel()
        self._report_loading()
        self.load_failed.emit(message)

    def _report_loading(self) -> None:
        loading = self._pending is not None
        if loading != self._loading_reported:
            self._loading_reported = loading
            self.loading_changed.emit(loading)


def _display(row: AccountRow, column: int) -> str | None:
    if column == COL_NAME:
        return row.name
    if column == COL_EMAIL:
        return row.email
    if column == COL_PLAN:
        return row.plan_name
    if column == COL_PLAN_LEFT:
        return fmt.credit_share(row.plan_left, row.allotment)
    if column == COL_PURCHASED:
        return fmt.credits_text(row.purchased)
    if column == COL_TOTAL:
        return fmt.credits_text(row.total)
    if column == COL_NEXT_RESET:
        return fmt.local_date(row.next_reset)
    if column == COL_LAST_ACTIVITY:
        return fmt.local_datetime(row.last_activity)
    return None


def _tooltip(row: AccountRow, column: int) -> str | None:
    if column == COL_NAME:
        lines = [f"{row.name} (account #{row.id})"]
        if row.status != "active":
            lines.append(f"This account is {row.status}.")
        if row.unrefunded_failed:
            count = row.unrefunded_failed
            lines.append(f"{count:,} failed charge{'s' if count != 1 else ''} not refunded.")
        return "\n".join(lines)
    if column == COL_TOTAL:
        return (
            f"{fmt.credits_text(row.plan_left)} plan + {fmt.credits_text(row.purchased)} "
            f"purchased + {fmt.credits_text(row.refund)} refunded credits"
        )
    if column == COL_NEXT_RESET:
        return fmt.utc_datetime(row.next_reset) if row.next_reset else "No billing period yet"
    if column == COL_LAST_ACTIVITY:
        return fmt.utc_datetime(row.last_activity) if row.last_activity else "No activity yet"
    return None
