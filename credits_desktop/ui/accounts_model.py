"""The accounts table: a lazily paged Qt model over ``services.queries.search_accounts``.

The database may hold hundreds of thousands of accounts, so the model never loads
them all: it asks for one page (200 rows), and the view asks for the next through
``canFetchMore``/``fetchMore`` when the user scrolls near the end. Every page is
read by a :class:`~credits_desktop.ui.workers.Worker` job, never on the GUI
thread, and the rows are appended when the page arrives.

Searching, filtering and sorting happen in SQL: :meth:`AccountsModel.set_query`,
:meth:`AccountsModel.set_filters` and :meth:`AccountsModel.sort` start a new first
page, each keeping what the others set; the rows on screen stay until
it arrives (no flicker), and the page of any older query still under way is
discarded, so a slow early search can never overwrite a newer one.

The rows are kept as plain tuples of the AccountRow's fields, made on the worker's
thread. Python's cycle collector walks every object it tracks on each full collection,
and an AccountRow is one it tracks; a tuple of strings, numbers and datetimes it stops
tracking. With 100,000 accounts loaded by scrolling, a full collection (every 25 %
growth of the long-lived objects, on whichever thread, holding the GIL) walked the
100,000 rows too: the GUI thread stalled 50-120 ms. ``account`` (and ``data`` for
ACCOUNT_ROLE) give an AccountRow back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields, replace
from operator import attrgetter
from typing import Any, Final

from PySide6.QtCore import QT_TRANSLATE_NOOP, QCoreApplication, QObject, Qt
from PySide6.QtGui import QBrush

from credits_desktop.services.paging import Cursor, Page
from credits_desktop.services.queries import AccountQuery, AccountRow, AccountSort, search_accounts
from credits_desktop.store.database import Database

from . import formatting as fmt
from .account_filters import AccountFilters
from .i18n import plural
from .table_models import ROW_ROLE, PagedModel, greyed
from .workers import Worker

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
ACCOUNT_ROLE: Final = ROW_ROLE

COL_NAME, COL_EMAIL, COL_PLAN, COL_PLAN_LEFT, COL_PURCHASED, COL_TOTAL, COL_NEXT_RESET, \
    COL_LAST_ACTIVITY = range(8)

# Header title, header tooltip (English; translated where shown, in the context
# "AccountsModel"), and the SQL sort the column orders by.
_C = "AccountsModel"
COLUMNS: Final[tuple[tuple[str, str, AccountSort], ...]] = (
    (str(QT_TRANSLATE_NOOP(_C, "Name")),
     str(QT_TRANSLATE_NOOP(_C, "The customer account's name")),
     AccountSort.NAME),
    (str(QT_TRANSLATE_NOOP(_C, "Email")),
     str(QT_TRANSLATE_NOOP(_C, "The account owner's email address")),
     AccountSort.EMAIL),
    (str(QT_TRANSLATE_NOOP(_C, "Plan")), str(QT_TRANSLATE_NOOP(_C, "The plan the account is on")),
     AccountSort.PLAN),
    (str(QT_TRANSLATE_NOOP(_C, "Plan credits left")),
     str(QT_TRANSLATE_NOOP(_C, "Plan credits left in this period / the plan's monthly allotment")),
     AccountSort.PLAN_LEFT),
    (str(QT_TRANSLATE_NOOP(_C, "Purchased")),
     str(QT_TRANSLATE_NOOP(_C, "Purchased credits left (they never expire)")),
     AccountSort.PURCHASED),
    (str(QT_TRANSLATE_NOOP(_C, "Total available")),
     str(QT_TRANSLATE_NOOP(_C, "Plan, purchased and refunded credits the account can spend now")),
     AccountSort.TOTAL),
    (str(QT_TRANSLATE_NOOP(_C, "Next reset")),
     str(QT_TRANSLATE_NOOP(_C, "When the current billing period ends and the plan credits "
                           "renew (local date)")),
     AccountSort.NEXT_RESET),
    (str(QT_TRANSLATE_NOOP(_C, "Last activity")),
     str(QT_TRANSLATE_NOOP(_C, "The last charge, purchase or staff change (local time)")),
     AccountSort.LAST_ACTIVITY),
)

# Account statuses as the tooltip names them.
STATUS_WORDS: Final = {
    "active": str(QT_TRANSLATE_NOOP(_C, "This account is active.")),
    "suspended": str(QT_TRANSLATE_NOOP(_C, "This account is suspended.")),
    "closed": str(QT_TRANSLATE_NOOP(_C, "This account is closed.")),
}

NUMERIC_COLUMNS: Final = frozenset({COL_PLAN_LEFT, COL_PURCHASED, COL_TOTAL})

# An AccountRow as the model keeps it: its fields' values, in their order.
Packed = tuple[Any, ...]
_FIELDS: Final = tuple(f.name for f in fields(AccountRow))
_pack_fields: Final = attrgetter(*_FIELDS)
# Where each field is in a Packed row.
(_ID, _NAME, _EMAIL, _PLAN_NAME, _STATUS, _PLAN_LEFT, _ALLOTMENT, _PURCHASED, _REFUND,
 _TOTAL, _NEXT_RESET, _LAST_ACTIVITY, _UNREFUNDED_FAILED) = (
    _FIELDS.index(name) for name in (
        "id", "name", "email", "plan_name", "status", "plan_left", "allotment",
        "purchased", "refund", "total", "next_reset", "last_activity",
        "unrefunded_failed"))


def pack(row: AccountRow) -> Packed:
    """``row`` as the model keeps it (a tuple the cycle collector does not track)."""
    packed: Packed = _pack_fields(row)
    return packed


def _packed(row: AccountRow | Packed) -> Packed:
    return row if type(row) is tuple else pack(row)  # type: ignore[arg-type]


# search_accounts, or a stand-in with its signature (tests slow it down on purpose).
SearchFn = Callable[[Database, AccountQuery, Cursor | None, int], Page[AccountRow]]


def _search_accounts(
    db: Database, query: AccountQuery, after: Cursor | None, limit: int
) -> Page[AccountRow]:
    return search_accounts(db, query, after=after, limit=limit)


class AccountsModel(PagedModel):
    """Accounts matching a search, in a SQL sort order, loaded a page at a time."""

    COLUMNS = COLUMNS
    NUMERIC = NUMERIC_COLUMNS
    TR_CONTEXT = _C

    def __init__(
        self,
        db: Database,
        worker: Worker,
        parent: QObject | None = None,
        *,
        page_size: int = PAGE_SIZE,
        search: SearchFn = _search_accounts,
    ) -> None:
        super().__init__(db, worker, parent, page_size=page_size)
        self._search = search
        self._query = AccountQuery(text="", sort=AccountSort.NAME, descending=False)

    @property
    def query(self) -> AccountQuery:
        return self._query

    def account(self, row: int) -> AccountRow:
        return AccountRow(*self._rows[row])

    def unpack(self, stored: Packed) -> AccountRow:
        return AccountRow(*stored)

    # The delegate passes the rows as kept (Packed); an AccountRow is welcome too.
    def display(self, row: AccountRow | Packed, column: int) -> str | None:
        return _display(_packed(row), column)

    def tooltip(self, row: AccountRow | Packed, column: int) -> str | None:
        return _tooltip(_packed(row), column)

    def foreground(self, row: AccountRow | Packed, column: int) -> QBrush | None:
        # Suspended and closed accounts are greyed out; the tooltip says why.
        return greyed() if _packed(row)[_STATUS] != "active" else None

    def set_query(self, text: str) -> None:
        """Show the accounts matching ``text`` (email, name or id), from the first page."""
        text = text.strip()
        if self._started and text == self._query.text and not self._failed:
            return
        self._query = replace(self._query, text=text)
        self.refresh()

    @property
    def filters(self) -> AccountFilters:
        """The filters of the list shown or being read (see :meth:`set_filters`)."""
        q = self._query
        return AccountFilters(
            plan_code=q.plan_code,
            status=q.status,
            low_balance_below=q.low_balance_below,
            unrefunded_failed_only=q.unrefunded_failed_only,
        )

    def set_filters(self, filters: AccountFilters) -> None:
        """Show the accounts matching ``filters`` (and the search text), from the first
        page, in the same sort order."""
        query = replace(
            self._query,
            plan_code=filters.plan_code,
            status=filters.status,
            low_balance_below=filters.low_balance_below,
            unrefunded_failed_only=filters.unrefunded_failed_only,
        )
        if self._started and query == self._query and not self._failed:
            return
        self._query = query
        self.refresh()

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        """Order by ``column`` in SQL (the view calls this on a header click)."""
        key = COLUMNS[column][2] if 0 <= column < len(COLUMNS) else AccountSort.NAME
        descending = order == Qt.SortOrder.DescendingOrder
        if self._started and (key, descending) == (self._query.sort, self._query.descending):
            return
        self._query = replace(self._query, sort=key, descending=descending)
        self.refresh()

    def answers(self) -> object:
        # A failed refresh of the same search keeps its rows on screen.
        return self._query

    def reader(self) -> Callable[[Database, Cursor | None, int], Page[Packed]]:
        search, query = self._search, self._query

        def read(db: Database, after: Cursor | None, limit: int) -> Page[Packed]:
            # Packed here, on the worker's thread.
            page = search(db, query, after, limit)
            return Page(tuple(map(pack, page.rows)), page.next_cursor)

        return read


def _display(row: Packed, column: int) -> str | None:
    if column == COL_NAME:
        return str(row[_NAME])
    if column == COL_EMAIL:
        return str(row[_EMAIL])
    if column == COL_PLAN:
        return str(row[_PLAN_NAME])
    if column == COL_PLAN_LEFT:
        return fmt.credit_share(row[_PLAN_LEFT], row[_ALLOTMENT])
    if column == COL_PURCHASED:
        return fmt.credits_text(row[_PURCHASED])
    if column == COL_TOTAL:
        return fmt.credits_text(row[_TOTAL])
    if column == COL_NEXT_RESET:
        return fmt.local_date(row[_NEXT_RESET])
    if column == COL_LAST_ACTIVITY:
        return fmt.local_datetime(row[_LAST_ACTIVITY])
    return None


def _tr(text: str) -> str:
    return QCoreApplication.translate(_C, text)


def _tooltip(row: Packed, column: int) -> str | None:
    if column == COL_NAME:
        lines = [_tr("{name} (account #{id})").format(name=row[_NAME], id=row[_ID])]
        if row[_STATUS] != "active":
            status = STATUS_WORDS.get(row[_STATUS])
            lines.append(_tr(status) if status else row[_STATUS])
        if row[_UNREFUNDED_FAILED]:
            lines.append(QCoreApplication.translate(
                _C, "%Ln failed charge(s) not refunded.", None, plural(row[_UNREFUNDED_FAILED])))
        return "\n".join(lines)
    if column == COL_TOTAL:
        return _tr("{plan} plan + {purchased} purchased + {refund} refunded credits").format(
            plan=fmt.credits_text(row[_PLAN_LEFT]), purchased=fmt.credits_text(row[_PURCHASED]),
            refund=fmt.credits_text(row[_REFUND]))
    if column == COL_NEXT_RESET:
        return fmt.utc_datetime(row[_NEXT_RESET]) if row[_NEXT_RESET] \
            else _tr("No billing period yet")
    if column == COL_LAST_ACTIVITY:
        return fmt.utc_datetime(row[_LAST_ACTIVITY]) if row[_LAST_ACTIVITY] \
            else _tr("No activity yet")
    return None
