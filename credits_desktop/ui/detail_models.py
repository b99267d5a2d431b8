"""Table models of the account detail view: grants, charges and ledger of one account.

Grants are few per account and load in one go (:class:`GrantsModel`). Charges and
ledger entries can run into the tens of thousands, so :class:`ChargesModel` and
:class:`LedgerModel` page lazily through ``canFetchMore``/``fetchMore`` over the
services' keyset cursors, exactly as the accounts table does: every page is read
by a :class:`~credits_desktop.ui.workers.Worker` job, never on the GUI thread, and
a page of an older filter or refresh still under way is discarded on arrival.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
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
from credits_desktop.services.queries import (
    ChargeRow,
    GrantRow,
    LedgerRow,
    account_grants,
    charges_page,
    ledger_page,
)
from credits_desktop.store.database import Database

from . import formatting as fmt
from .workers import Job, Worker

__all__ = [
    "DETAIL_PAGE_SIZE",
    "ROW_ROLE",
    "ChargeFilter",
    "ChargesModel",
    "GrantsModel",
    "LedgerModel",
    "LoadingModel",
    "PagedModel",
    "signed",
]

DETAIL_PAGE_SIZE: Final = 100

# The service row (ChargeRow, LedgerRow, GrantRow) behind a table row.
ROW_ROLE: Final = Qt.ItemDataRole.UserRole + 1

_RIGHT: Final = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
_LEFT: Final = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter

AnyIndex = QModelIndex | QPersistentModelIndex

GRANT_SOURCES: Final = {
    "plan": "Plan",
    "purchase": "Purchase",
    "refund": "Refund",
    "adjustment": "Adjustment",
}
LEDGER_KINDS: Final = {
    "plan_grant": "Plan credits",
    "plan_expiry": "Plan expiry",
    "purchase": "Purchase",
    "charge": "Charge",
    "refund": "Refund",
    "adjustment": "Adjustment",
    "reversal": "Reversal",
}
CHARGE_STATUSES: Final = {"succeeded": "Succeeded", "failed": "Failed"}


def signed(delta: int) -> str:
    """A ledger change with its sign: ``+500``, ``−40`` (a true minus sign), ``0``."""
    if delta > 0:
        return f"+{delta:,}"
    if delta < 0:
        return f"\u2212{-delta:,}"
    return "0"


def _greyed() -> QBrush:
    palette = QApplication.palette()
    return QBrush(palette.color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text))


class _RowsModel(QAbstractTableModel):
    """Rows of one kind shown in fixed columns; subclasses say what each cell shows."""

    # Header title and tooltip of each column.
    COLUMNS: tuple[tuple[str, str], ...] = ()
    NUMERIC: frozenset[int] = frozenset()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._rows: list[Any] = []

    def row_at(self, row: int) -> Any:
        return self._rows[row]

    def rows(self) -> list[Any]:
        return list(self._rows)

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008 (Qt default)
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.COLUMNS)

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
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < len(self.COLUMNS):
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return self.COLUMNS[section][0]
        if role == Qt.ItemDataRole.ToolTipRole:
            return self.COLUMNS[section][1]
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return _RIGHT if section in self.NUMERIC else _LEFT
        return None

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        row = self._rows[index.row()]
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self.display(row, column)
        if role == ROW_ROLE:
            return row
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return _RIGHT if column in self.NUMERIC else _LEFT
        if role == Qt.ItemDataRole.ToolTipRole:
            return self.tooltip(row, column)
        if role == Qt.ItemDataRole.ForegroundRole:
            return self.foreground(row, column)
        return None

    def display(self, row: Any, column: int) -> str | None:
        raise NotImplementedError

    def tooltip(self, row: Any, column: int) -> str | None:
        return None

    def foreground(self, row: Any, column: int) -> QBrush | None:
        return None

    def row_key(self, row: Any) -> object:
        """What identifies a row across reloads (to keep the selection on refresh)."""
        return getattr(row, "id", None)

    def find_key(self, key: object) -> int:
        for number, row in enumerate(self._rows):
            if self.row_key(row) == key:
                return number
        return -1


class LoadingModel(_RowsModel):
    """Loading state shared by the paged models and the grants model."""

    loading_changed = Signal(bool)
    # After each page (or the whole list) has been put into the model.
    page_loaded = Signal()
    load_failed = Signal(str)

    def __init__(self, db: Database, worker: Worker, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._db = db
        self._worker = worker
        self._pending: Job | None = None
        self._started = False
        self._failed = False
        self._loading_reported = False

    @property
    def is_loading(self) -> bool:
        return self._pending is not None

    @property
    def has_failed(self) -> bool:
        return self._failed

    @property
    def started(self) -> bool:
        return self._started

    def discard(self) -> None:
        """Drop the result of the read under way (the tab is closing)."""
        if self._pending is not None:
            self._pending.discard()
            self._pending = None
            self._report_loading()

    def _submit(self, work: Callable[[], object], arrived: Callable[[Any], None]) -> None:
        if self._pending is not None:
            self._pending.discard()
        job = self._worker.submit(work)
        job.succeeded.connect(arrived)
        job.failed.connect(self._failed_now)
        self._pending = job
        self._report_loading()

    @Slot(str)
    def _failed_now(self, message: str) -> None:
        self._pending = None
        self._failed = True
        self._report_loading()
        self.load_failed.emit(message)

    def _report_loading(self) -> None:
        loading = self._pending is not None
        if loading != self._loading_reported:
            self._loading_reported = loading
            self.loading_changed.emit(loading)


class PagedModel(LoadingModel):
    """A list read a page at a time, newest first, through a keyset cursor."""

    def __init__(
        self,
        db: Database,
        worker: Worker,
        account_id: int,
        parent: QObject | None = None,
        *,
        page_size: int = DETAIL_PAGE_SIZE,
    ) -> None:
        super().__init__(db, worker, parent)
        self._account_id = account_id
        self._page_size = page_size
        self._next: Cursor | None = None
        self._complete = False
        self._pending_first = False

    @property
    def is_complete(self) -> bool:
        return self._started and self._complete and self._pending is None

    def reader(self) -> Callable[[Database, Cursor | None, int], Page[Any]]:
        """The service call for a page, with everything it needs captured now: it runs
        on the worker's thread, where the model's state must not be read."""
        raise NotImplementedError

    def refresh(self) -> None:
        """Read the first page again; the rows shown stay until it arrives."""
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
        db, limit, read = self._db, self._page_size, self.reader()
        self._pending_first = first
        self._submit(lambda: read(db, after, limit), self._page_arrived)

    @Slot(object)
    def _page_arrived(self, page: Page[Any]) -> None:
        first = self._pending_first
        # Complete the state before the views hear of the rows: they may call
        # canFetchMore/fetchMore from inside those signals.
        self._pending = None
        self._next = page.next_cursor
        self._complete = page.next_cursor is None
        if first:
            self.beginResetModel()
            self._rows = list(page.rows)
            self.endResetModel()
        elif page.rows:
            start = len(self._rows)
            self.beginInsertRows(QModelIndex(), start, start + len(page.rows) - 1)
            self._rows.extend(page.rows)
            self.endInsertRows()
        self._report_loading()
        self.page_loaded.emit()

    def _failed_now(self, message: str) -> None:
        if self._pending_first and self._rows:
            # The rows answer an older filter: showing them under the new one would mislead.
            self.beginResetModel()
            self._rows = []
            self.endResetModel()
        super()._failed_now(message)


@dataclass(frozen=True)
class ChargeFilter:
    """Which charges to list; ``start <= occurred_at < end`` (UTC, aware)."""

    feature: str | None = None
    status: str | None = None
    start: datetime | None = None
    end: datetime | None = None


COL_C_TIME, COL_C_FEATURE, COL_C_MODEL, COL_C_CREDITS, COL_C_STATUS, COL_C_REASON, \
    COL_C_REFUNDED = range(7)


class ChargesModel(PagedModel):
    """The account's usage charges, newest first, filtered in SQL."""

    COLUMNS = (
        ("Time", "When the generation ran (local time; UTC in the tooltip)"),
        ("Feature", "The AI feature used"),
        ("Model", "The model the feature ran on, if it names one"),
        ("Credits", "Credits the charge cost"),
        ("Status", "Whether the generation succeeded"),
        ("Failure reason", "Why a failed generation failed"),
        ("Refunded", "Credits given back for this charge, if any"),
    )
    NUMERIC = frozenset({COL_C_CREDITS})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._filter = ChargeFilter()

    @property
    def filter(self) -> ChargeFilter:
        return self._filter

    def set_filter(self, charge_filter: ChargeFilter) -> None:
        """List the charges matching ``charge_filter``, from the first page."""
        if self._started and charge_filter == self._filter and not self._failed:
            return
        self._filter = charge_filter
        self.refresh()

    def reader(self) -> Callable[[Database, Cursor | None, int], Page[Any]]:
        account, f = self._account_id, self._filter

        def read(db: Database, after: Cursor | None, limit: int) -> Page[Any]:
            return charges_page(db, account, feature=f.feature, status=f.status,
                                start=f.start, end=f.end, after=after, limit=limit)

        return read

    def display(self, row: ChargeRow, column: int) -> str | None:
        if column == COL_C_TIME:
            return fmt.local_datetime(row.occurred_at)
        if column == COL_C_FEATURE:
            return row.feature_name
        if column == COL_C_MODEL:
            return row.model or fmt.NOTHING
        if column == COL_C_CREDITS:
            return fmt.credits_text(row.credits)
        if column == COL_C_STATUS:
            return CHARGE_STATUSES.get(row.status, row.status)
        if column == COL_C_REASON:
            return row.failure_reason or ""
        if column == COL_C_REFUNDED:
            if row.refunded_credits is not None:
                return f"Yes, {fmt.credits_text(row.refunded_credits)}"
            # Only a failed charge is a refund candidate; a "No" on every success is noise.
            return "No" if row.status == "failed" else ""
        return None

    def tooltip(self, row: ChargeRow, column: int) -> str | None:
        if column == COL_C_TIME:
            return f"{fmt.utc_datetime(row.occurred_at)}\nCharge id: {row.external_id}"
        if column == COL_C_REFUNDED and row.refunded_at is not None:
            return f"Refunded {fmt.local_datetime(row.refunded_at)} " \
                   f"({fmt.utc_datetime(row.refunded_at)})"
        return None

    def foreground(self, row: ChargeRow, column: int) -> QBrush | None:
        if column == COL_C_STATUS and row.status == "failed":
            return QBrush(Qt.GlobalColor.darkRed)
        return None


COL_L_TIME, COL_L_KIND, COL_L_DELTA, COL_L_GRANT, COL_L_ACTOR, COL_L_REASON, \
    COL_L_REFERENCE, COL_L_BALANCE = range(8)


class LedgerModel(PagedModel):
    """The account's ledger, newest entry first, with the running balance."""

    COLUMNS = (
        ("Time", "When the entry was written (local time; UTC in the tooltip)"),
        ("Kind", "What moved the credits"),
        ("Change", "Credits added (+) or taken (−)"),
        ("Grant", "The grant whose credits moved"),
        ("Actor", "Who made the change"),
        ("Reason", "Why"),
        ("Reference", "Ticket, invoice or payment reference"),
        ("Balance after", "The account's ledger total right after this entry"),
    )
    NUMERIC = frozenset({COL_L_DELTA, COL_L_BALANCE})

    def reader(self) -> Callable[[Database, Cursor | None, int], Page[Any]]:
        account = self._account_id

        def read(db: Database, after: Cursor | None, limit: int) -> Page[Any]:
            return ledger_page(db, account, after=after, limit=limit)

        return read

    def display(self, row: LedgerRow, column: int) -> str | None:
        if column == COL_L_TIME:
            return fmt.local_datetime(row.created_at)
        if column == COL_L_KIND:
            return LEDGER_KINDS.get(row.kind, row.kind)
        if column == COL_L_DELTA:
            return signed(row.delta)
        if column == COL_L_GRANT:
            return f"{GRANT_SOURCES.get(row.grant_source, row.grant_source)} #{row.grant_id}"
        if column == COL_L_ACTOR:
            return row.actor
        if column == COL_L_REASON:
            return row.reason
        if column == COL_L_REFERENCE:
            return row.reference or ""
        if column == COL_L_BALANCE:
            return fmt.credits_text(row.balance_after)
        return None

    def tooltip(self, row: LedgerRow, column: int) -> str | None:
        if column == COL_L_TIME:
            return fmt.utc_datetime(row.created_at)
        return None

    def foreground(self, row: LedgerRow, column: int) -> QBrush | None:
        if column == COL_L_DELTA and row.delta < 0:
            return QBrush(Qt.GlobalColor.darkRed)
        if column == COL_L_DELTA and row.delta > 0:
            return QBrush(Qt.GlobalColor.darkGreen)
        return None


COL_G_SOURCE, COL_G_GRANTED, COL_G_REMAINING, COL_G_CREATED, COL_G_EXPIRES = range(5)


class GrantsModel(LoadingModel):
    """Every grant of the account (a few dozen at most), newest first."""

    COLUMNS = (
        ("Source", "Where the credits came from"),
        ("Granted", "Credits the grant gave"),
        ("Remaining", "Credits of the grant not spent yet"),
        ("Created", "When the grant was made (local date)"),
        ("Expires", "When its credits expire (local time); purchases never do"),
    )
    NUMERIC = frozenset({COL_G_GRANTED, COL_G_REMAINING})

    def __init__(
        self, db: Database, worker: Worker, account_id: int, parent: QObject | None = None
    ) -> None:
        super().__init__(db, worker, parent)
        self._account_id = account_id

    def refresh(self) -> None:
        self._started = True
        self._failed = False
        db, account = self._db, self._account_id
        self._submit(lambda: account_grants(db, account), self._arrived)

    @Slot(object)
    def _arrived(self, rows: Sequence[GrantRow]) -> None:
        self._pending = None
        self.beginResetModel()
        self._rows = list(rows)
        self.endResetModel()
        self._report_loading()
        self.page_loaded.emit()

    def display(self, row: GrantRow, column: int) -> str | None:
        if column == COL_G_SOURCE:
            return f"{GRANT_SOURCES.get(row.source, row.source)} #{row.id}"
        if column == COL_G_GRANTED:
            return fmt.credits_text(row.granted)
        if column == COL_G_REMAINING:
            return fmt.credits_text(row.remaining)
        if column == COL_G_CREATED:
            return fmt.local_date(row.created_at)
        if column == COL_G_EXPIRES:
            return "Never" if row.expires_at is None else fmt.local_datetime(row.expires_at)
        return None

    def tooltip(self, row: GrantRow, column: int) -> str | None:
        if column == COL_G_EXPIRES and row.expires_at is not None:
            return fmt.utc_datetime(row.expires_at)
        if column == COL_G_SOURCE and not row.live:
            return "These credits no longer count: expired or used up."
        return None

    def foreground(self, row: GrantRow, column: int) -> QBrush | None:
        # Expired or spent grants are history: greyed out.
        return None if row.live else _greyed()
