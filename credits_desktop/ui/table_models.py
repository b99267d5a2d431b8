"""The building blocks of the application's table models.

:class:`RowsModel` shows rows of one kind in fixed columns; :class:`LoadingModel`
reads them on a :class:`~credits_desktop.ui.workers.Worker` job, never on the GUI
thread; :class:`PagedModel` reads a page at a time through a service's keyset
cursor, driven by the view's ``canFetchMore``/``fetchMore``, and discards the page
of an older read still under way when a newer one starts.

:class:`RowDelegate` paints a RowsModel's cells straight from its rows. Qt's own
delegate asks ``data()`` for about seven roles per cell, each a call from C++ into
Python; on a table of 28 rows and 8 columns that was over 1,500 calls and some 20 ms
of the GUI thread per repaint (on every search result, scrolled page and account
open). The delegate makes one Python call per cell, from the same ``display``,
``alignment`` and ``foreground`` methods that ``data()`` answers with, so what is
painted and what ``data()`` says (to screen readers, copy, tests) cannot differ.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from PySide6.QtCore import (
    QAbstractTableModel,
    QCoreApplication,
    QEvent,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QSize,
    Qt,
    Signal,
    Slot,
)
from PySide6.QtGui import QBrush, QColor, QFontMetrics, QPainter, QPalette
from PySide6.QtWidgets import (
    QApplication,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionFocusRect,
    QStyleOptionViewItem,
    QWidget,
)

from credits_desktop.services.paging import MAX_LIMIT, Cursor, Page
from credits_desktop.store.database import Database

from .workers import Job, Worker

__all__ = ["CELL_PADDING", "LEFT", "RELAYOUT_EVENTS", "RIGHT", "ROW_ROLE", "AnyIndex",
           "LoadingModel", "PagedModel", "RowDelegate", "RowsModel", "greyed"]

# The service row (AccountRow, ChargeRow, …) behind a table row, for any column.
ROW_ROLE: Final = Qt.ItemDataRole.UserRole + 1

RIGHT: Final = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
LEFT: Final = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter

AnyIndex = QModelIndex | QPersistentModelIndex


def greyed() -> QBrush:
    """The disabled text colour: rows that no longer count (expired, closed)."""
    palette = QApplication.palette()
    return QBrush(palette.color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text))


class RowsModel(QAbstractTableModel):
    """Rows of one kind shown in fixed columns; subclasses say what each cell shows."""

    # Header title and tooltip of each column (more items after those are ignored),
    # in English: headerData translates them in the context TR_CONTEXT, where the
    # subclass marks them with QT_TRANSLATE_NOOP.
    COLUMNS: tuple[tuple[str, ...], ...] = ()
    TR_CONTEXT: str = "RowsModel"
    NUMERIC: frozenset[int] = frozenset()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._rows: list[Any] = []

    def row_at(self, row: int) -> Any:
        return self.unpack(self._rows[row])

    def rows(self) -> list[Any]:
        if type(self).unpack is RowsModel.unpack:
            return list(self._rows)
        return [self.unpack(stored) for stored in self._rows]

    def unpack(self, stored: Any) -> Any:
        """The row an item of ``_rows`` stands for: the item itself, unless a model keeps
        its rows in another form (``display``, ``tooltip`` and ``foreground`` are then
        given that form; see AccountsModel)."""
        return stored

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008 (Qt default)
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.COLUMNS)

    # No flags() here: QAbstractTableModel's own answers what these read-only rows need
    # (enabled, selectable, no children) without a call into Python for every cell
    # painted.

    def index(self, row: int, column: int,
              parent: AnyIndex = QModelIndex()) -> QModelIndex:  # noqa: B008
        # Qt's own index() checks the bounds by calling rowCount and columnCount, two
        # calls into Python for every cell a view paints; this is one.
        if 0 <= row < len(self._rows) and 0 <= column < len(self.COLUMNS) \
                and not parent.isValid():
            return self.createIndex(row, column)
        return QModelIndex()

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < len(self.COLUMNS):
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return QCoreApplication.translate(self.TR_CONTEXT, self.COLUMNS[section][0])
        if role == Qt.ItemDataRole.ToolTipRole:
            return QCoreApplication.translate(self.TR_CONTEXT, self.COLUMNS[section][1])
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return RIGHT if section in self.NUMERIC else LEFT
        return None

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        row = self._rows[index.row()]
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self.display(row, column)
        if role == ROW_ROLE:
            return self.unpack(row)
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return self.alignment(column)
        if role == Qt.ItemDataRole.ToolTipRole:
            return self.tooltip(row, column)
        if role == Qt.ItemDataRole.ForegroundRole:
            return self.foreground(row, column)
        return None

    def display(self, row: Any, column: int) -> str | None:
        raise NotImplementedError

    def alignment(self, column: int) -> Qt.AlignmentFlag:
        return RIGHT if column in self.NUMERIC else LEFT

    def tooltip(self, row: Any, column: int) -> str | None:
        return None

    def foreground(self, row: Any, column: int) -> QBrush | None:
        return None

    def row_key(self, row: Any) -> object:
        """What identifies a row across reloads (to keep the selection on refresh)."""
        return getattr(row, "id", None)

    def find_key(self, key: object) -> int:
        for number, stored in enumerate(self._rows):
            if self.row_key(self.unpack(stored)) == key:
                return number
        return -1


# Room left and right of a cell's text (Qt's item text margin included): a right-aligned
# number keeps clear of the left-aligned text of the next column.
CELL_PADDING: Final = (5, 9)

# Looked up once: reading a Qt enum member, or combining two, costs a Python call.
_SELECTED: Final = QStyle.StateFlag.State_Selected.value
_ENABLED: Final = QStyle.StateFlag.State_Enabled.value
_ACTIVE: Final = QStyle.StateFlag.State_Active.value
_HAS_FOCUS: Final = QStyle.StateFlag.State_HasFocus.value
_SINGLE_LINE: Final = Qt.TextFlag.TextSingleLine.value
_PANEL: Final = QStyle.PrimitiveElement.PE_PanelItemViewItem
_FOCUS_FRAME: Final = QStyle.PrimitiveElement.PE_FrameFocusRect
_FOCUS_STATE: Final = QStyle.StateFlag.State_KeyboardFocusChange | QStyle.StateFlag.State_Item
_GROUPS: Final = (QPalette.ColorGroup.Disabled, QPalette.ColorGroup.Inactive,
                  QPalette.ColorGroup.Active)
_TEXT: Final = QPalette.ColorRole.Text
_HIGHLIGHTED_TEXT: Final = QPalette.ColorRole.HighlightedText
_HIGHLIGHT: Final = QPalette.ColorRole.Highlight
_WINDOW: Final = QPalette.ColorRole.Window
# Changes after which a view's RowDelegate measures its texts again (forget_layout).
RELAYOUT_EVENTS: Final = frozenset({QEvent.Type.FontChange, QEvent.Type.StyleChange,
                                    QEvent.Type.PaletteChange})
# Texts whose width is remembered, at most (a few pages of a table's cells).
_WIDTHS_KEPT: Final = 20_000


class RowDelegate(QStyledItemDelegate):
    """Paints the cells of a :class:`RowsModel` from its rows, one Python call a cell.

    The cell's background, selection and focus frame come from the style, as Qt's own
    delegate draws them; the text, its alignment and colour from the model's
    ``display``, ``alignment`` and ``foreground`` (what ``data()`` answers), elided at
    the right as the view's text elide mode says. A model that overrides ``data()``
    itself (it may answer roles this delegate does not draw) is painted by Qt's
    delegate instead.

    The width of each text is remembered (eliding is rarely needed, and measuring costs
    as much as drawing); a view using the delegate calls :meth:`forget_layout` when its
    font or style changes.
    """

    def __init__(self, parent: QWidget | None = None,
                 padding: tuple[int, int] = CELL_PADDING) -> None:
        super().__init__(parent)
        self._left, self._right = padding
        self._metrics: QFontMetrics | None = None
        self._widths: dict[str, int] = {}
        # Text colours by (palette, colour group, selected).
        self._colors: dict[tuple[int, int, bool], QColor] = {}

    @staticmethod
    def direct(model: object) -> bool:
        """Whether cells of ``model`` are painted from its rows (else by Qt's delegate)."""
        return isinstance(model, RowsModel) and type(model).data is RowsModel.data

    def forget_layout(self) -> None:
        """The view's font or style changed: measure the texts again."""
        self._metrics = None
        self._widths = {}
        self._colors = {}

    def cell_text(self, index: AnyIndex) -> str:
        """The text the cell at ``index`` shows (before eliding to its width)."""
        model = index.model()
        if not isinstance(model, RowsModel) or not 0 <= index.row() < len(model._rows):
            return ""
        return model.display(model._rows[index.row()], index.column()) or ""

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: AnyIndex) -> None:
        model = index.model()
        if not self.direct(model):
            super().paint(painter, option, index)
            return
        assert isinstance(model, RowsModel)
        number, column = index.row(), index.column()
        rows = model._rows
        if not 0 <= number < len(rows):
            return
        row = rows[number]
        widget = option.widget
        style = widget.style() if widget is not None else QApplication.style()
        state = option.state.value
        # The selection background, as the style draws it.
        style.drawPrimitive(_PANEL, option, painter, widget)
        text = model.display(row, column)
        if text:
            selected = bool(state & _SELECTED)
            brush = None if selected else model.foreground(row, column)
            if brush is not None:
                painter.setPen(brush.color())
            else:
                painter.setPen(self._text_color(option, state, selected))
            area = option.rect.adjusted(self._left, 0, -self._right, 0)
            width = self._widths.get(text)
            if width is None:
                width = self._measure(text, option)
            if width > area.width():
                text = (self._metrics or option.fontMetrics).elidedText(
                    text, option.textElideMode, area.width())
            painter.drawText(area, model.alignment(column).value | _SINGLE_LINE, text)
        if state & _HAS_FOCUS:
            self._draw_focus(painter, option, style, widget, state)

    def _text_color(self, option: QStyleOptionViewItem, state: int, selected: bool) -> QColor:
        palette = option.palette
        # As Qt's delegate chooses: disabled, or active or inactive window.
        group = 0 if not state & _ENABLED else 2 if state & _ACTIVE else 1
        key = (palette.cacheKey(), group, selected)
        color = self._colors.get(key)
        if color is None:
            if len(self._colors) > 64:
                self._colors = {}
            color = palette.color(_GROUPS[group], _HIGHLIGHTED_TEXT if selected else _TEXT)
            self._colors[key] = color
        return color

    def _measure(self, text: str, option: QStyleOptionViewItem) -> int:
        if self._metrics is None:
            # A copy: the option (and what its members refer to) lives for one call.
            self._metrics = QFontMetrics(option.font)
        if len(self._widths) >= _WIDTHS_KEPT:
            self._widths = {}
        width = self._widths[text] = self._metrics.horizontalAdvance(text)
        return width

    @staticmethod
    def _draw_focus(painter: QPainter, option: QStyleOptionViewItem, style: QStyle,
                    widget: QWidget | None, state: int) -> None:
        # As Qt's delegate does: shown whenever the view has the focus, not only after
        # a Tab press.
        frame = QStyleOptionFocusRect()
        if widget is not None:
            frame.initFrom(widget)
        frame.rect = option.rect
        frame.palette = option.palette
        frame.state = option.state | _FOCUS_STATE
        frame.backgroundColor = option.palette.color(
            _GROUPS[2 if state & _ENABLED else 0],
            _HIGHLIGHT if state & _SELECTED else _WINDOW)
        style.drawPrimitive(_FOCUS_FRAME, frame, painter, widget)

    def sizeHint(self, option: QStyleOptionViewItem, index: AnyIndex) -> QSize:
        if not self.direct(index.model()):
            return super().sizeHint(option, index)
        metrics = option.fontMetrics
        width = metrics.horizontalAdvance(self.cell_text(index))
        return QSize(width + self._left + self._right, metrics.height() + 8)


class LoadingModel(RowsModel):
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


def _read_at_least(
    read: Callable[[Database, Cursor | None, int], Page[Any]],
    db: Database,
    after: Cursor | None,
    wanted: int,
) -> Page[Any]:
    """``wanted`` rows (or all there are) as one page, in as few reads as the services'
    page size limit allows."""
    page = read(db, after, min(wanted, MAX_LIMIT))
    rows = list(page.rows)
    while page.next_cursor is not None and len(rows) < wanted:
        page = read(db, page.next_cursor, min(wanted - len(rows), MAX_LIMIT))
        rows.extend(page.rows)
    return Page(tuple(rows), page.next_cursor)


class PagedModel(LoadingModel):
    """A list read a page at a time, newest first, through a keyset cursor."""

    def __init__(
        self,
        db: Database,
        worker: Worker,
        parent: QObject | None = None,
        *,
        page_size: int,
    ) -> None:
        super().__init__(db, worker, parent)
        self._page_size = page_size
        self._next: Cursor | None = None
        self._complete = False
        self._pending_first = False
        # What the read under way answers, and what the rows on screen answer.
        self._pending_answers: object = None
        self._shown_answers: object = None

    @property
    def is_complete(self) -> bool:
        return self._started and self._complete and self._pending is None

    def reader(self) -> Callable[[Database, Cursor | None, int], Page[Any]]:
        """The service call for a page, with everything it needs captured now: it runs
        on the worker's thread, where the model's state must not be read."""
        raise NotImplementedError

    def answers(self) -> object:
        """What the next read answers (a search, a filter). When the first page of a
        read fails, rows that answer something else are cleared: showing them under
        the new question would mislead. By default every read is a new question."""
        return object()

    def refresh(self, *, rows: int = 0) -> None:
        """Read the first page again; the rows shown stay until it arrives. With
        ``rows``, read at least that many (a live refresh reads as many rows as are
        loaded, so that a view scrolled past the first page keeps its place)."""
        self._started = True
        self._failed = False
        self._start(first=True, after=None, at_least=rows)

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

    def _start(self, *, first: bool, after: Cursor | None, at_least: int = 0) -> None:
        db, limit, read = self._db, self._page_size, self.reader()
        self._pending_first = first
        self._pending_answers = self.answers()
        if at_least <= limit:
            self._submit(lambda: read(db, after, limit), self._page_arrived)
        else:
            self._submit(lambda: _read_at_least(read, db, after, at_least),
                         self._page_arrived)

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
            self._shown_answers = self._pending_answers
            self.endResetModel()
        elif page.rows:
            start = len(self._rows)
            self.beginInsertRows(QModelIndex(), start, start + len(page.rows) - 1)
            self._rows.extend(page.rows)
            self.endInsertRows()
        self._report_loading()
        self.page_loaded.emit()

    def _failed_now(self, message: str) -> None:
        if self._pending_first and self._rows and self._pending_answers != self._shown_answers:
            self.beginResetModel()
            self._rows = []
            self._shown_answers = None
            self.endResetModel()
        super()._failed_now(message)
