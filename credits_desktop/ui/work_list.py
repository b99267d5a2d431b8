"""What the work-list views (failed charges, approvals, audit log) have in common.

:class:`WorkListView` is a list of service rows read a page at a time: a row of filters
ending in "Refresh", a message line, the table, and a status line ("3 requests shown
(scroll for more)") beside the view's own buttons. It reads on first show or
:meth:`~WorkListView.refresh`, re-reads when a filter changes (typed filters shortly
after the last keystroke), reads the filters' choices (staff, actions, features) in a
job of its own, shows a failed read as a plain message, and asks the main window to
open the account of a double-clicked row. A subclass says what it asks for
(:meth:`~WorkListView.wanted`), how to count its rows in words, and which account a row
belongs to.

:class:`WorkListModel` is the paged model such a view shows: one "wanted" value (a
frozen filter) that its reads answer. Also here: :class:`PeriodFilter` (any time,
today, the last 7 or 30 days, or a custom range of local dates), :func:`worklist_table`,
:func:`local_midnight`, and :func:`datetime_width` and :func:`size_columns`, which size
columns from sample texts as the locale writes them.

The message line's colour is a semantic one of :mod:`~credits_desktop.ui.theme`
("danger" for a failure, "success" for what was done), made again when the palette
changes, so it reads in the light and the dark palette alike.

Every read goes through the window's :class:`~credits_desktop.ui.workers.Worker`; every
word shown goes through Qt's translation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final

from PySide6.QtCore import (
    QCoreApplication,
    QDate,
    QEvent,
    QModelIndex,
    QObject,
    Qt,
    QTimer,
    Signal,
    Slot,
)
from PySide6.QtGui import QFontMetrics, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDateEdit,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from credits_desktop.services.operations import Actor
from credits_desktop.store.database import Database

from . import formatting as fmt
from . import theme
from .account_detail import CopyableTable
from .i18n import QT_TRANSLATE_NOOP
from .table_models import ROW_ROLE, LoadingModel, PagedModel
from .workers import Job, Worker

__all__ = [
    "COLUMN_PADDING",
    "PERIODS",
    "TYPING_DELAY_MS",
    "PeriodFilter",
    "WorkListModel",
    "WorkListView",
    "datetime_width",
    "local_midnight",
    "size_columns",
    "tone_sheet",
    "worklist_table",
]

# Typing in a text filter reads once, shortly after the last keystroke.
TYPING_DELAY_MS: Final = 300

# Room around a cell's text: the cell's margins and the sort indicator's.
COLUMN_PADDING: Final = 24

# The period presets: label (translated where shown) and how many days before today
# they start (None: no bound; the last one is the custom range).
PERIODS: Final[tuple[tuple[str, int | None], ...]] = (
    (QT_TRANSLATE_NOOP("PeriodFilter", "Any time"), None),
    (QT_TRANSLATE_NOOP("PeriodFilter", "Today"), 0),
    (QT_TRANSLATE_NOOP("PeriodFilter", "Last 7 days"), 6),
    (QT_TRANSLATE_NOOP("PeriodFilter", "Last 30 days"), 29),
    (QT_TRANSLATE_NOOP("PeriodFilter", "Custom range"), None),
)


def _tr(text: str) -> str:
    # The base class's own words: one context, whichever view shows them.
    return QCoreApplication.translate("WorkListView", text)


def local_midnight(day: date) -> datetime:
    """The start of a local calendar day, as an aware UTC time."""
    return datetime.combine(day, time()).astimezone().astimezone(UTC)


def tone_sheet(tone: str | None) -> str:
    """The style sheet of a text in the semantic colour ``tone`` ("danger",
    "success"…) of the palette in use; none for None."""
    return f"color: {theme.css(tone)};" if tone else ""


def datetime_width(metrics: QFontMetrics) -> int:
    """How wide a local date and time is in the locale's format ("12/28/2026 10:58 PM",
    "28.12.2026 22:58"): the widest of a morning and an evening of a two-digit day."""
    samples = (datetime(2026, 12, 28, 10, 58), datetime(2026, 12, 28, 22, 58))
    # A naive time's astimezone() takes it as local: the sample reads as written.
    return max(metrics.horizontalAdvance(fmt.local_datetime(s.astimezone())) for s in samples)


def size_columns(table: QTableView, samples: dict[int, str | int], *,
                 stretch: Sequence[int] = ()) -> None:
    """Size each column of ``samples`` for its sample text (or that many pixels of
    text), and never narrower than its title; ``stretch`` columns share what is left
    of the width (their long texts are elided; the tooltips have them whole)."""
    model = table.model()
    header = table.horizontalHeader()
    metrics, titles = table.fontMetrics(), header.fontMetrics()
    for column, sample in samples.items():
        text = sample if isinstance(sample, int) else metrics.horizontalAdvance(sample)
        title = str(model.headerData(column, Qt.Orientation.Horizontal))
        header.resizeSection(column, max(text, titles.horizontalAdvance(title))
                             + COLUMN_PADDING)
    if stretch:
        header.setStretchLastSection(False)
        for column in stretch:
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.Stretch)


def worklist_table(model: LoadingModel, name: str, accessible: str, tip: str,
                   *, multi: bool = True) -> CopyableTable:
    """A read-only table selecting whole rows; Ctrl+C copies the selected cells."""
    table = CopyableTable()
    table.setObjectName(name)
    table.setAccessibleName(accessible)
    table.setToolTip(tip)
    table.setModel(model)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(
        QAbstractItemView.SelectionMode.ExtendedSelection if multi
        else QAbstractItemView.SelectionMode.SingleSelection
    )
    return table


class PeriodFilter(QWidget):
    """A time window of local calendar days: a preset, or a custom range.

    ``changed`` says the window changed; :meth:`bounds` gives it as aware UTC times,
    ``since <= t < until``, either None for no bound. ``what`` names the rows
    filtered, already translated ("Events", "Charges").
    """

    changed = Signal()

    def __init__(self, name: str, what: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName(name)
        self.preset = QComboBox()
        self.preset.setObjectName(f"{name}Preset")
        self.preset.setAccessibleName(self.tr("{rows} period").format(rows=what))
        self.preset.setToolTip(self.tr("Only {rows} in this period (local dates)").format(
            rows=what.lower()))
        for label, _days in PERIODS:
            self.preset.addItem(self.tr(label))
        today = QDate.currentDate()
        self.date_from = QDateEdit(today.addDays(-29))
        self.date_from.setObjectName(f"{name}From")
        self.date_from.setAccessibleName(self.tr("{rows} from date").format(rows=what))
        self.date_from.setToolTip(
            self.tr("First day shown (local date); choose \"Custom range\""))
        self.date_to = QDateEdit(today)
        self.date_to.setObjectName(f"{name}To")
        self.date_to.setAccessibleName(self.tr("{rows} to date").format(rows=what))
        self.date_to.setToolTip(
            self.tr("Last day shown, included (local date); choose \"Custom range\""))
        for edit in (self.date_from, self.date_to):
            edit.setCalendarPopup(True)
            edit.setDisplayFormat("yyyy-MM-dd")
            edit.setEnabled(False)
            edit.dateChanged.connect(self._dates_changed)
        self.preset.currentIndexChanged.connect(self._preset_changed)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.preset)
        layout.addWidget(self.date_from)
        layout.addWidget(QLabel(self.tr("to")))
        layout.addWidget(self.date_to)

    @property
    def custom(self) -> bool:
        return self.preset.currentIndex() == len(PERIODS) - 1

    def set_custom(self, first: date, last: date) -> None:
        """Choose a custom range of local days, ``last`` included."""
        for edit, day in ((self.date_from, first), (self.date_to, last)):
            edit.blockSignals(True)
            edit.setDate(QDate(day.year, day.month, day.day))
            edit.blockSignals(False)
        if self.custom:
            self.changed.emit()
        else:
            self.preset.setCurrentIndex(len(PERIODS) - 1)

    def bounds(self) -> tuple[datetime | None, datetime | None]:
        if self.custom:
            first = self.date_from.date().toPython()
            last = self.date_to.date().toPython()
            assert isinstance(first, date) and isinstance(last, date)
            return local_midnight(first), local_midnight(last + timedelta(days=1))
        days = PERIODS[self.preset.currentIndex()][1]
        if days is None:
            return None, None
        today = datetime.now(UTC).astimezone().date()
        return local_midnight(today - timedelta(days=days)), None

    @Slot()
    def _preset_changed(self) -> None:
        self.date_from.setEnabled(self.custom)
        self.date_to.setEnabled(self.custom)
        self.changed.emit()

    @Slot()
    def _dates_changed(self) -> None:
        if self.custom:
            self.changed.emit()


class WorkListModel(PagedModel):
    """A paged list whose reads answer one "wanted" value (a frozen filter); the
    subclass's :meth:`reader` reads it from :attr:`wanted`."""

    def __init__(self, db: Database, worker: Worker, parent: QObject | None, *,
                 page_size: int, wanted: object) -> None:
        super().__init__(db, worker, parent, page_size=page_size)
        self._wanted = wanted

    @property
    def wanted(self) -> object:
        return self._wanted

    def ask(self, wanted: object) -> None:
        """List the rows answering ``wanted``, from the first page (nothing to do when
        they are already listed)."""
        if self._started and wanted == self._wanted and not self._failed:
            return
        self._wanted = wanted
        self.refresh()

    def answers(self) -> object:
        return self._wanted


class WorkListView(QWidget):
    """The frame of a work list (see the module docstring).

    A subclass makes :attr:`model` and its widgets, then calls :meth:`_lay_out`; it
    implements :meth:`wanted`, :meth:`loading_text`, :meth:`empty_text`,
    :meth:`count_text` and :meth:`account_of`, and, for filters with choices read from
    the database, :meth:`choices_work`, :meth:`choices_arrived` and
    :meth:`choices_failed`.
    """

    # The account of the double-clicked row, by id.
    open_account_requested = Signal(int)

    model: WorkListModel
    table: CopyableTable

    def __init__(self, db: Database, worker: Worker, actor: Actor,
                 parent: QWidget | None, *, name: str, prefix: str) -> None:
        super().__init__(parent)
        self.setObjectName(name)
        self._db = db
        self._worker = worker
        self._actor = actor
        self._choices_job: Job | None = None
        self._typing = QTimer(self)
        self._typing.setSingleShot(True)
        self._typing.setInterval(TYPING_DELAY_MS)
        self._typing.timeout.connect(self._filters_changed)

        self.refresh_button = QPushButton(_tr("Refresh"))
        self.refresh_button.setObjectName(f"{prefix}Refresh")
        self.refresh_button.setToolTip(_tr("Read the list again"))
        self.refresh_button.clicked.connect(self.refresh)
        self.status = QLabel()
        self.message = QLabel()
        self.message.setObjectName(f"{prefix}Message")
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.message.hide()
        self._message_tone: str | None = None

    # -- what a subclass says -------------------------------------------------------------

    def wanted(self) -> object:
        """What the filters ask for now (the model's ``wanted``)."""
        raise NotImplementedError

    def loading_text(self) -> str:
        raise NotImplementedError

    def empty_text(self) -> str:
        raise NotImplementedError

    def count_text(self, count: int) -> str:
        """``count`` rows in words: "3 requests shown"."""
        raise NotImplementedError

    def account_of(self, row: object) -> int | None:
        """The account of a row (None: none to open)."""
        raise NotImplementedError

    def choices_work(self) -> Callable[[], object] | None:
        """The read of the filters' choices (run on the worker), if they have any."""
        return None

    def choices_arrived(self, choices: Any) -> None:
        """Put the choices read into the filters."""

    def choices_failed(self, message: str) -> None:
        """Say that the choices could not be read."""

    # -- building -----------------------------------------------------------------------

    def _typed_filter(self, edit: QLineEdit) -> None:
        """Filter by ``edit`` shortly after the last keystroke, or at once on Enter."""
        edit.textChanged.connect(self._typing.start)
        edit.returnPressed.connect(self._filters_changed)

    def _lay_out(self, filters: Sequence[QWidget], actions: Sequence[QWidget],
                 below: Sequence[QWidget] = ()) -> None:
        """Filters and Refresh above the table, the message line, the table, ``below``
        it, and the status line beside the ``actions``; and listen to the model."""
        top = QHBoxLayout()
        for widget in filters:
            top.addWidget(widget)
        top.addStretch(1)
        top.addWidget(self.refresh_button)
        bottom = QHBoxLayout()
        bottom.addWidget(self.status, 1)
        for widget in actions:
            bottom.addWidget(widget)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.addLayout(top)
        layout.addWidget(self.message)
        layout.addWidget(self.table, 1)
        for widget in below:
            layout.addWidget(widget)
        layout.addLayout(bottom)
        self.table.doubleClicked.connect(self._open_account)
        self.table.enter_pressed.connect(self._open_account)
        self.model.page_loaded.connect(self._show_count)
        self.model.loading_changed.connect(self._show_count)
        self.model.load_failed.connect(self._load_failed)

    # -- what the view does -------------------------------------------------------------

    @Slot()
    def refresh(self) -> None:
        """Read the filters' choices and the list again (as many rows as are loaded)."""
        self._read_choices()
        wanted = self.wanted()
        if self.model.started and self.model.wanted == wanted:
            self.model.refresh(rows=self.model.rowCount())
        else:
            self.model.ask(wanted)

    def shutdown(self) -> None:
        """The tab closes: results still on their way are not wanted."""
        if self._choices_job is not None:
            self._choices_job.discard()
            self._choices_job = None
        self.model.discard()

    @property
    def is_loading(self) -> bool:
        return self._choices_job is not None or self.model.is_loading

    def show_message(self, text: str, *, failed: bool) -> None:
        """A sentence above the table: what went wrong, or what was done."""
        self._message_tone = "danger" if failed else "success"
        theme.set_style_sheet(self.message, tone_sheet(self._message_tone))
        self.message.setText(text)
        self.message.show()

    # -- events -------------------------------------------------------------------------

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if theme.is_palette_change(event):
            theme.set_style_sheet(self.message, tone_sheet(self._message_tone))

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if not self.model.started:
            self.refresh()

    @Slot(QModelIndex)
    def _open_account(self, index: QModelIndex) -> None:
        account = self.account_of(index.data(ROW_ROLE))
        if account is not None:
            self.open_account_requested.emit(account)

    @Slot()
    def _show_count(self) -> None:
        count = self.model.rowCount()
        if self.model.is_loading:
            text = self.loading_text()
        elif count == 0 and self.model.started and not self.model.has_failed:
            text = self.empty_text()
        elif self.model.is_complete:
            text = self.count_text(count)
        else:
            text = _tr("{rows} (scroll for more)").format(rows=self.count_text(count))
        self.status.setText(text)

    @Slot(str)
    def _load_failed(self, message: str) -> None:
        self.show_message(message, failed=True)
        self._show_count()

    @Slot()
    def _filters_changed(self) -> None:
        self._typing.stop()
        if not self.model.started:
            return  # the first read, when shown, takes the filters as they are then
        self.message.hide()
        self.model.ask(self.wanted())

    # -- filter choices -----------------------------------------------------------------

    def _read_choices(self) -> None:
        work = self.choices_work()
        if work is None:
            return
        if self._choices_job is not None:
            self._choices_job.discard()
        job = self._worker.submit(work)
        job.succeeded.connect(self._choices_read)
        job.failed.connect(self._choices_not_read)
        self._choices_job = job

    @Slot(object)
    def _choices_read(self, choices: object) -> None:
        self._choices_job = None
        self.choices_arrived(choices)

    @Slot(str)
    def _choices_not_read(self, message: str) -> None:
        self._choices_job = None
        self.choices_failed(message)
