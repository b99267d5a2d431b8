"""Live data: notice other people's changes to the open accounts, and a lost database.

Every write bumps the account's ``change_seq``. :class:`ChangeWatcher` polls the
marks of the accounts open in tabs (``services.queries.change_marks``, one primary
key lookup) every second through the window's worker, never on the GUI thread and
never two polls at once, and says which accounts moved (``accounts_changed``): the
main window reads those tabs again.

The same poll is the connection's health check. When it (or any other job of the
worker) fails because the database cannot be reached, the watcher says so once
(``connection_lost``) and retries with back-off (:data:`BACKOFF_SECONDS`, the last
value repeating), telling the banner when the next try is (``retry_scheduled``);
the first poll that succeeds again says ``connection_restored``.

:func:`capture_view` and :func:`restore_view` keep a table's selection, current
cell and scroll position across a reload of its rows, so a live refresh does not
pull the list from under the user's eyes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from PySide6.QtCore import QItemSelection, QItemSelectionModel, QObject, QTimer, Signal, Slot
from PySide6.QtWidgets import QTableView

from credits_desktop.services.queries import change_marks
from credits_desktop.store.database import Database

from .error_report import fault_details
from .table_models import RowsModel
from .workers import Job, Worker, is_unreachable

__all__ = [
    "BACKOFF_SECONDS",
    "POLL_INTERVAL_MS",
    "ChangeWatcher",
    "ViewState",
    "backoff_delay",
    "capture_view",
    "restore_view",
]

log = logging.getLogger(__name__)

# Often enough that a change made elsewhere shows within two seconds; the query is a
# primary-key lookup of the few open accounts.
POLL_INTERVAL_MS = 1000
# Seconds between tries while the database cannot be reached; the last one repeats.
BACKOFF_SECONDS: tuple[float, ...] = (1, 2, 4, 8, 16, 30)


def backoff_delay(attempt: int, schedule: Sequence[float] = BACKOFF_SECONDS) -> float:
    """Seconds to wait before try number ``attempt`` (1 is the first retry)."""
    if not schedule:
        raise ValueError("the back-off schedule is empty")
    return float(schedule[min(max(attempt, 1), len(schedule)) - 1])


@dataclass(frozen=True)
class _Poll:
    """A poll's outcome: the marks, or why there are none."""

    marks: dict[int, int] | None
    # The database could not be reached.
    lost: bool = False
    # The driver's first line, or the error's type and first line.
    reason: str = ""
    # For another failure: its details, logged once (not once a second).
    details: str = ""


def _poll(db: Database, account_ids: list[int]) -> _Poll:
    try:
        return _Poll(change_marks(db, account_ids))
    except Exception as exc:
        orig = getattr(exc, "orig", None) or exc
        first = (str(orig).strip().splitlines() or [""])[0]
        if is_unreachable(exc):
            return _Poll(None, lost=True, reason=first)
        return _Poll(None, reason=f"{type(orig).__name__}: {first}",
                     details=fault_details(exc))


class ChangeWatcher(QObject):
    """Polls the open accounts' change marks; doubles as the connection's health check."""

    # Ids of open accounts someone changed since they were last read.
    accounts_changed = Signal(list)
    # The database stopped answering (once per outage).
    connection_lost = Signal()
    # The next try is in this many seconds.
    retry_scheduled = Signal(float)
    # A try is under way (while the connection is lost).
    retrying = Signal()
    # The database answers again.
    connection_restored = Signal()
    # A poll failed for another reason (plain message); polling goes on.
    poll_failed = Signal(str)

    def __init__(
        self,
        db: Database,
        worker: Worker,
        accounts: Callable[[], Iterable[int]],
        parent: QObject | None = None,
        *,
        interval_ms: int = POLL_INTERVAL_MS,
        backoff: Sequence[float] = BACKOFF_SECONDS,
    ) -> None:
        super().__init__(parent)
        if not backoff:
            raise ValueError("the back-off schedule is empty")
        self._db = db
        self._worker = worker
        self._accounts = accounts
        self._interval_ms = interval_ms
        self._backoff = tuple(backoff)
        self._marks: dict[int, int] = {}
        self._job: Job | None = None
        self._connected = True
        self._attempt = 0
        self._running = False
        self._last_failure = ""
        self.polls = 0  # polls finished, for tests and diagnostics
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self._tick)

    # -- control ---------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """False from a failure to reach the database until a poll succeeds again."""
        return self._connected

    @property
    def attempt(self) -> int:
        """Retries that failed in the current outage (0 while connected)."""
        return self._attempt

    @property
    def polling(self) -> bool:
        return self._job is not None

    def start(self) -> None:
        self._running = True
        if self._job is None:
            self._timer.start(self._interval_ms)

    def stop(self) -> None:
        """No more polls; a poll under way is not wanted (the window closes)."""
        self._running = False
        self._timer.stop()
        if self._job is not None:
            self._job.discard()
            self._job = None

    def note_seen(self, account_id: int, mark: int) -> None:
        """A view has read ``account_id`` as of ``mark``: a later poll that finds a
        different mark reports it. The lower mark wins, so a view read before a change
        the watcher already saw still gets refreshed."""
        known = self._marks.get(account_id)
        self._marks[account_id] = mark if known is None else min(known, mark)

    @Slot()
    def report_lost(self) -> None:
        """Some other job could not reach the database: start the outage now."""
        if not self._connected or not self._running:
            return
        if self._job is not None:
            # The poll under way decides; the banner shows meanwhile.
            self._connected = False
            self._attempt = 0
            self.connection_lost.emit()
            return
        self._lost("a query could not reach the database")

    @Slot()
    def retry_now(self) -> None:
        """Poll at once (the banner's Retry now); nothing if a poll is under way."""
        if self._running and self._job is None:
            self._timer.stop()
            self._tick()

    # -- polling ---------------------------------------------------------------------

    @Slot()
    def _tick(self) -> None:
        if not self._running or self._job is not None:
            return
        db, ids = self._db, sorted(set(self._accounts()))
        if not self._connected:
            self.retrying.emit()
        job = self._worker.submit(lambda: _poll(db, ids))
        job.succeeded.connect(self._arrived)
        job.failed.connect(self._failed)
        self._job = job

    @Slot(object)
    def _arrived(self, outcome: _Poll) -> None:
        self._job = None
        self.polls += 1
        if not self._running:
            return
        if outcome.lost:
            self._lost(outcome.reason)
            return
        if outcome.marks is None:
            self._poll_went_wrong(outcome)
            return
        self._last_failure = ""
        if not self._connected:
            log.info("the database answers again")
            self._connected = True
            self._attempt = 0
            self.connection_restored.emit()
        changed = self._compare(outcome.marks)
        self._timer.start(self._interval_ms)
        if changed:
            self.accounts_changed.emit(changed)

    @Slot(str)
    def _failed(self, message: str) -> None:
        # Only something _poll does not catch (the worker logged it): keep watching.
        self._job = None
        self.polls += 1
        if self._running:
            self._timer.start(self._interval_ms)
            self.poll_failed.emit(message)

    def _poll_went_wrong(self, outcome: _Poll) -> None:
        # Not the connection (a damaged schema, a bug): it would fail the same way every
        # second, so it is logged when it first happens and polling goes on.
        if outcome.reason != self._last_failure:
            self._last_failure = outcome.reason
            log.error("could not read the open accounts' change marks\n%s", outcome.details)
        self._timer.start(self._interval_ms)
        self.poll_failed.emit(outcome.reason)

    def _lost(self, reason: str) -> None:
        if self._connected:
            log.warning("lost the connection to the database: %s", reason)
            self._connected = False
            self._attempt = 0
            self.connection_lost.emit()
        self._attempt += 1
        delay = backoff_delay(self._attempt, self._backoff)
        self._timer.start(max(1, round(delay * 1000)))
        self.retry_scheduled.emit(delay)

    def _compare(self, marks: dict[int, int]) -> list[int]:
        open_ids = set(self._accounts())
        changed = []
        for account_id, mark in marks.items():
            known = self._marks.get(account_id)
            if known is not None and known != mark and account_id in open_ids:
                changed.append(account_id)
            self._marks[account_id] = mark
        # Forget closed accounts: reopened, they are read afresh anyway.
        for account_id in [a for a in self._marks if a not in open_ids]:
            del self._marks[account_id]
        return sorted(changed)


# -- keeping a table's place across a reload ----------------------------------------------


@dataclass(frozen=True)
class ViewState:
    """Where a table was: rows by key (rows move when others arrive above them)."""

    current: tuple[object, int] | None
    selected: tuple[tuple[object, int], ...]
    # The key of the row at the top of the viewport and how far it was scrolled into;
    # None when the table was scrolled to the very top (new rows then show).
    anchor: object | None
    anchor_offset: int
    vertical: int
    horizontal: int


def capture_view(table: QTableView, model: RowsModel) -> ViewState:
    """The table's current cell, selected cells and scroll position."""

    def key(row: int) -> object:
        return model.row_key(model.row_at(row))

    count = model.rowCount()
    current = table.currentIndex()
    current_key = (
        (key(current.row()), current.column())
        if current.isValid() and current.row() < count else None
    )
    selected = tuple(
        (key(index.row()), index.column())
        for index in table.selectionModel().selectedIndexes()
        if index.row() < count
    )
    vertical = table.verticalScrollBar().value()
    top = table.rowAt(0)
    anchor: object | None = None
    offset = 0
    if vertical > 0 and 0 <= top < count:
        anchor = key(top)
        offset = -table.rowViewportPosition(top)
    return ViewState(current_key, selected, anchor, offset, vertical,
                     table.horizontalScrollBar().value())


def restore_view(table: QTableView, model: RowsModel, state: ViewState) -> None:
    """Select again the rows of ``state`` that are still there and scroll back."""
    positions: dict[object, int] = {}
    for number, row in enumerate(model.rows()):
        positions.setdefault(model.row_key(row), number)
    selection_model = table.selectionModel()
    columns: dict[int, set[int]] = {}
    for row_key, column in state.selected:
        row = positions.get(row_key)
        if row is not None:
            columns.setdefault(row, set()).add(column)
    selection = QItemSelection()
    for first, last, cols in _runs(columns):
        for left, right in _spans(cols):
            selection.select(model.index(first, left), model.index(last, right))
    selection_model.select(selection, QItemSelectionModel.SelectionFlag.ClearAndSelect)
    if state.current is not None:
        row = positions.get(state.current[0])
        if row is not None:
            selection_model.setCurrentIndex(
                model.index(row, state.current[1]), QItemSelectionModel.SelectionFlag.NoUpdate
            )
    # The reset only scheduled the layout; the scroll range must be right now.
    table.doItemsLayout()
    vertical = state.vertical
    if state.anchor is not None:
        row = positions.get(state.anchor)
        if row is not None:
            vertical = table.verticalHeader().sectionPosition(row) + state.anchor_offset
    table.verticalScrollBar().setValue(vertical)
    table.horizontalScrollBar().setValue(state.horizontal)


def _runs(columns: dict[int, set[int]]) -> list[tuple[int, int, frozenset[int]]]:
    """Consecutive rows with the same selected columns, as (first, last, columns)."""
    runs: list[tuple[int, int, frozenset[int]]] = []
    for row in sorted(columns):
        cols = frozenset(columns[row])
        if runs and runs[-1][1] == row - 1 and runs[-1][2] == cols:
            runs[-1] = (runs[-1][0], row, cols)
        else:
            runs.append((row, row, cols))
    return runs


def _spans(columns: Iterable[int]) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    for column in sorted(columns):
        if spans and spans[-1][1] == column - 1:
            spans[-1] = (spans[-1][0], column)
        else:
            spans.append((column, column))
    return spans
