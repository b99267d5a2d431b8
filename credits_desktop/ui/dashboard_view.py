"""The managers' dashboard over all accounts: usage, failures, refunds, purchases, top accounts.

:class:`DashboardView` (a tab of the main window) has filters (plan, a range preset or a
custom range of UTC days, days / weeks / months), headline tiles that set each figure of
the chosen period beside the previous period's (``services.dashboard.previous_range``),
five charts (usage per feature as stacked bars, each feature's share, the failed rate per
feature or per model of one feature, refunds and purchases over time) and the accounts
that used the most credits (double-click or Enter opens one: ``open_account_requested``).

The figures arrive as four worker jobs run at once (``usage_overview``,
``purchases_overview``, ``active_accounts``, ``top_accounts``): the charts come from the
small rollups and show first; the active accounts and then the top accounts table, which
read the per-account rollup, follow. A newer request discards the jobs of an older one,
and changing only the granularity keeps the accounts figures, which do not depend on it.

Every chart exports as PNG and SVG, with its data as CSV; the accounts table exports as
CSV. Pictures are drawn on the GUI thread; files are written on the worker
(``ui.exports``). Exports need the export permission (not support's).

Days are UTC calendar days (the rollups count by them); the charts say so.

The charts and the table share the height by a splitter: the charts shrink first, the
table keeps at least six rows, and the first show gives the table about two fifths of
the room. The chart's export buttons sit beside its tabs. Colours (the status line,
the charts' axes and titles) follow the light or dark palette.

Every word shown (filters, tiles, chart titles, axes, legends, tooltips, the table's
headers, CSV headers) goes through Qt's translation; names of features, plans and
accounts are data.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, Final

import pyqtgraph as pg
from PySide6.QtCore import (
    QCoreApplication,
    QDate,
    QEvent,
    QModelIndex,
    QObject,
    QPointF,
    Qt,
    QTimer,
    Signal,
    Slot,
)
from PySide6.QtGui import QColor, QPalette, QShowEvent
from PySide6.QtWidgets import (
    QComboBox,
    QDateEdit,
    QFileDialog,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from credits_desktop.domain.permissions import Action, Verdict
from credits_desktop.services.catalog import PlanChoice, list_plans
from credits_desktop.services.dashboard import (
    Bucket,
    Change,
    DateRange,
    Granularity,
    PurchasesOverview,
    RateChange,
    TopAccount,
    UsageOverview,
    active_accounts,
    add_months,
    check_range,
    previous_range,
    purchases_overview,
    top_accounts,
    usage_overview,
)
from credits_desktop.services.errors import CreditsDeskError
from credits_desktop.services.operations import Actor
from credits_desktop.store.database import Database

from . import formatting as fmt
from . import theme
from .account_detail import CopyableTable
from .charts_common import (
    QT_TRANSLATE_NOOP,
    BarSeries,
    CreditAxis,
    HoverTip,
    StackedBars,
    apply_palette,
    bucket_label,
    configure,
    counted,
    range_text,
    render_png,
    render_svg,
    series_color,
    span_text,
)
from .exports import Cell, write_bytes, write_csv
from .role_gate import role_decision
from .table_models import AnyIndex, RowsModel
from .workers import Job, Worker

__all__ = [
    "CHARTS",
    "GRANULARITIES",
    "PRESETS",
    "DashboardQuery",
    "DashboardView",
    "TopAccountsModel",
    "preset_range",
]

# The texts of these tables are translated where shown (context "DashboardView").
PRESETS: Final = (
    QT_TRANSLATE_NOOP("DashboardView", "This month"),
    QT_TRANSLATE_NOOP("DashboardView", "Last month"),
    QT_TRANSLATE_NOOP("DashboardView", "Last 90 days"),
    QT_TRANSLATE_NOOP("DashboardView", "Last 12 months"),
    QT_TRANSLATE_NOOP("DashboardView", "Custom range"),
)
THIS_MONTH, LAST_MONTH, LAST_90_DAYS, LAST_12_MONTHS, CUSTOM = range(5)
GRANULARITIES: Final = (
    (QT_TRANSLATE_NOOP("DashboardView", "Days"), Granularity.DAY),
    (QT_TRANSLATE_NOOP("DashboardView", "Weeks"), Granularity.WEEK),
    (QT_TRANSLATE_NOOP("DashboardView", "Months"), Granularity.MONTH),
)
# What one bar covers, in the charts' titles ("by week, …").
BAR_WORDS: Final = {
    Granularity.DAY: QT_TRANSLATE_NOOP("DashboardView", "by day"),
    Granularity.WEEK: QT_TRANSLATE_NOOP("DashboardView", "by week"),
    Granularity.MONTH: QT_TRANSLATE_NOOP("DashboardView", "by month"),
}
# (key, tab title, accessible name)
CHARTS: Final = (
    ("usage", QT_TRANSLATE_NOOP("DashboardView", "Usage per feature"),
     QT_TRANSLATE_NOOP("DashboardView", "Credits used per feature over time")),
    ("share", QT_TRANSLATE_NOOP("DashboardView", "Share per feature"),
     QT_TRANSLATE_NOOP("DashboardView", "Share of credits used per feature")),
    ("failed", QT_TRANSLATE_NOOP("DashboardView", "Failed rate"),
     QT_TRANSLATE_NOOP("DashboardView", "Failed-generation rate over time")),
    ("refunds", QT_TRANSLATE_NOOP("DashboardView", "Refunds"),
     QT_TRANSLATE_NOOP("DashboardView", "Credits refunded over time")),
    ("purchases", QT_TRANSLATE_NOOP("DashboardView", "Purchases"),
     QT_TRANSLATE_NOOP("DashboardView", "Purchased credits sold over time")),
)
BUCKET_COLUMNS: Final = (
    QT_TRANSLATE_NOOP("DashboardView", "Bucket start"),
    QT_TRANSLATE_NOOP("DashboardView", "Bucket end (included)"),
)
FILTER_DELAY_MS: Final = 150
# The longest the accounts reads wait for the first picture to be painted (a window
# that is minimised paints nothing).
PICTURE_WAIT_MS: Final = 250
MAX_TICKS: Final = 12
# The least the charts shrink to, and the rows of top accounts always in view.
CHART_MIN_HEIGHT: Final = 120
TABLE_MIN_ROWS: Final = 6
# The share of the splitter's height the table gets when the dashboard is first shown.
TABLE_SHARE: Final = 0.42
UP, DOWN = "▲", "▼"


def preset_range(preset: int, today: date, first: date | None = None,
                 last: date | None = None) -> DateRange:
    """The UTC days a preset covers, ``today`` included; CUSTOM uses ``first``..``last``
    (both included) and raises InvalidInput when they make no range."""
    month = today.replace(day=1)
    tomorrow = today + timedelta(days=1)
    if preset == THIS_MONTH:
        return DateRange(month, tomorrow)
    if preset == LAST_MONTH:
        return DateRange(add_months(month, -1), month)
    if preset == LAST_90_DAYS:
        return DateRange(today - timedelta(days=89), tomorrow)
    if preset == LAST_12_MONTHS:
        return DateRange(add_months(month, -11), tomorrow)
    assert first is not None and last is not None
    return check_range(first, last + timedelta(days=1))


@dataclass(frozen=True)
class DashboardQuery:
    range: DateRange
    granularity: Granularity
    plan_code: str | None

    @property
    def accounts_key(self) -> tuple[DateRange, str | None]:
        """What the accounts figures depend on (not the granularity)."""
        return self.range, self.plan_code


# -- small formatting helpers -------------------------------------------------------------


def _tr(text: str) -> str:
    """``text`` translated in the dashboard's context (for helpers outside a QObject)."""
    return QCoreApplication.translate("DashboardView", text)


def _percent(value: float | None, digits: int = 1) -> str:
    return fmt.NOTHING if value is None else f"{value * 100:.{digits}f}%"


def _change_text(change: Change) -> str:
    if change.delta == 0:
        return _tr("no change")
    arrow = UP if change.delta > 0 else DOWN
    ratio = "" if change.ratio is None else f" ({change.ratio * 100:+.1f}%)"
    return f"{arrow} {change.delta:+,}{ratio}"


def _rate_change_text(change: RateChange) -> str:
    if change.delta is None:
        return fmt.NOTHING
    if round(change.delta * 1000) == 0:
        return _tr("no change")
    arrow = UP if change.delta > 0 else DOWN
    return _tr("{arrow} {delta} points").format(arrow=arrow,
                                                delta=f"{change.delta * 100:+.1f}")


def _bucket_cells(bucket: Bucket) -> list[Cell]:
    return [bucket.start.isoformat(), bucket.last.isoformat()]


def _bucket_labels(buckets: Sequence[Bucket]) -> list[str]:
    """The category axis' labels: "2026-03-05", "wk 2026-03-02", "Mar 2026"."""
    return [bucket_label(b.start, b.granularity.value) for b in buckets]


def _span(bucket: Bucket) -> str:
    """A bar's days, first line of its tooltip: "2026-03-02 to 2026-03-08 (UTC)"."""
    return span_text(bucket.start, bucket.last)


class _PercentAxis(pg.AxisItem):  # type: ignore[misc]
    """A value axis in percent: "12.5%"."""

    def __init__(self, orientation: str) -> None:
        super().__init__(orientation)
        self.enableAutoSIPrefix(False)

    def tickStrings(self, values: list[float], scale: float, spacing: float) -> list[str]:
        digits = 0 if spacing >= 1 else 1
        return [f"{v * scale:.{digits}f}%" for v in values]


# -- one chart ----------------------------------------------------------------------------


class _Chart(QWidget):
    """One chart: a plot with its legend in a row of its own below (it never hides a
    bar), a hover tooltip, and the figures behind it (for CSV). Built from
    :mod:`charts_common`, like the account's charts, so both look and export alike.

    Categories (the buckets, or the features of the share chart) sit at 0..n-1.
    """

    def __init__(self, key: str, accessible: str, *, percent: bool = False,
                 horizontal: bool = False, stacked: bool = False,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.key = key
        self.title = accessible
        self.horizontal = horizontal
        self.canvas = pg.GraphicsLayoutWidget()
        self.canvas.setObjectName(f"{key}Chart")
        self.canvas.setAccessibleName(accessible)
        self.canvas.horizontalScrollBar().setAccessibleName(
            self.tr("{chart}, sideways scroll").format(chart=accessible))
        self.canvas.verticalScrollBar().setAccessibleName(
            self.tr("{chart}, vertical scroll").format(chart=accessible))
        self.canvas.setMinimumHeight(CHART_MIN_HEIGHT)
        side = "bottom" if horizontal else "left"
        value_axis = _PercentAxis(side) if percent else CreditAxis(side)
        self.plot = self.canvas.addPlot(row=0, col=0, axisItems={side: value_axis})
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.showGrid(x=horizontal, y=not horizontal, alpha=0.25)
        self.legend = pg.LegendItem(colCount=4)
        self.canvas.addItem(self.legend, row=1, col=0)
        self.bars = StackedBars(self.plot, self.legend, parent=self) if stacked else None
        self.tip = HoverTip(self.canvas, self.plot, self._text_at, parent=self)
        self.describe: Callable[[float, float], str] = lambda x, y: ""
        self.header: list[str] = []
        self.rows: list[list[Cell]] = []
        self._items: list[Any] = []
        self._heading = ""
        self._value_label = ""
        self._foreground = self.palette().color(QPalette.ColorRole.Text)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.canvas)
        self.follow_palette()

    # -- drawing ------------------------------------------------------------------------

    def follow_palette(self) -> None:
        colors = apply_palette(self.canvas, self.palette(), [self.plot])
        self._foreground = colors.foreground
        self.legend.setLabelTextColor(colors.foreground)
        self._label()

    def _label(self) -> None:
        colour = self._foreground.name()
        self.plot.setTitle(self._heading, color=colour, size="11pt")
        self.plot.setLabel("bottom" if self.horizontal else "left", self._value_label,
                           color=colour)

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if theme.is_palette_change(event):
            self.follow_palette()

    def reset(self, heading: str, value_label: str, *, legend_columns: int = 6) -> None:
        """Take away what was drawn (the stacked bars are replaced by set_data)."""
        for item in self._items:
            self.plot.removeItem(item)
            self.legend.removeItem(item)
        self._items = []
        self.legend.setColumnCount(legend_columns)
        self._heading = heading
        self._value_label = value_label
        self._label()
        self.header, self.rows = [], []

    def set_category_ticks(self, labels: Sequence[str]) -> None:
        """Label the categories at 0..n-1, at most MAX_TICKS of them on a long axis."""
        step = max(1, math.ceil(len(labels) / MAX_TICKS))
        ticks = [(float(i), label) for i, label in enumerate(labels) if i % step == 0]
        if self.horizontal:
            self.plot.getAxis("left").setTicks([ticks, []])
            self.plot.setYRange(-0.6, max(len(labels), 1) - 0.4, padding=0)
        else:
            self.plot.getAxis("bottom").setTicks([ticks, []])
            self.plot.setXRange(-0.6, max(len(labels), 1) - 0.4, padding=0)

    def fit_values(self, top: float) -> None:
        """Show values from 0 to a little above ``top``."""
        if self.horizontal:
            self.plot.setXRange(0, top * 1.05 if top > 0 else 1, padding=0)
        else:
            self.plot.setYRange(0, top * 1.08 if top > 0 else 1, padding=0)

    def set_stacked(self, series: Sequence[BarSeries]) -> None:
        assert self.bars is not None
        count = len(series[0].values) if series else 0
        self.bars.set_data([i - 0.5 for i in range(count)], [1.0] * count, series)

    def add_bars(self, name: str, values: Sequence[float],
                 colour: QColor | Sequence[QColor]) -> None:
        """Bars at 0..n-1: one colour (a series, in the legend) or one per bar."""
        if not values:
            return  # pyqtgraph 0.14 fails on an empty list of pens
        positions = list(range(len(values)))
        single = isinstance(colour, QColor)
        colours = [colour] * len(values) if isinstance(colour, QColor) else list(colour)
        look: dict[str, Any] = {"brushes": [pg.mkBrush(c) for c in colours],
                                "pens": [pg.mkPen(c.darker(130)) for c in colours]}
        if self.horizontal:
            bars = pg.BarGraphItem(x0=0, y=positions, width=list(values), height=0.7, **look)
        else:
            bars = pg.BarGraphItem(x=positions, height=list(values), width=0.8, **look)
        self.plot.addItem(bars)
        self._items.append(bars)
        if single:
            self.legend.addItem(bars, name)

    def add_line(self, name: str, values: Sequence[float | None], colour: QColor) -> None:
        ys = [math.nan if v is None else v for v in values]
        # A dot per point while they can be told apart (and lone points show at all).
        dots: dict[str, Any] = {"symbol": "o", "symbolSize": 5,
                                "symbolBrush": pg.mkBrush(colour),
                                "symbolPen": pg.mkPen(colour)} if len(ys) <= 62 else {}
        line = pg.PlotDataItem(list(range(len(ys))), ys, pen=pg.mkPen(colour, width=2),
                               connect="finite", **dots)
        self.plot.addItem(line)
        self.legend.addItem(line, name)
        self._items.append(line)

    def note_empty(self, text: str) -> None:
        label = pg.TextItem(text, color=self._foreground, anchor=(0.5, 0.5))
        self.plot.addItem(label)
        label.setPos(0, 0.5)
        self._items.append(label)

    # -- hover ---------------------------------------------------------------------------

    def _text_at(self, x: float, y: float) -> str:
        return self.describe(x, y)

    @property
    def hover_text(self) -> str:
        return self.tip.text

    def hover_at(self, x: float, y: float = 0.0) -> str:
        """Hover the mouse over data position (x, y) of the shown chart; the tooltip."""
        self.tip.show_at(self.plot.vb.mapViewToScene(QPointF(x, y)))
        return self.tip.text

    # -- export --------------------------------------------------------------------------

    def png(self) -> bytes:
        return render_png(self.canvas.ci)

    def svg(self) -> bytes:
        return render_svg(self.canvas.ci)


# -- headline tiles -----------------------------------------------------------------------


class _Tile(QFrame):
    """A headline figure: title, value for the period, previous period and the change."""

    def __init__(self, key: str, title: str, meaning: str,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName(f"tile_{key}")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setStyleSheet(
            f"#tile_{key} {{ border: 1px solid palette(mid); border-radius: 6px; }}")
        self.setToolTip(meaning)
        self.title = QLabel(title)
        self.title.setEnabled(False)
        self.value = QLabel(fmt.NOTHING)
        self.value.setObjectName(f"tileValue_{key}")
        self.value.setAccessibleName(title)
        font = self.value.font()
        font.setPointSizeF(font.pointSizeF() * 1.6)
        font.setBold(True)
        self.value.setFont(font)
        self.value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.previous = QLabel("")
        self.previous.setObjectName(f"tilePrevious_{key}")
        self.previous.setAccessibleName(self.tr("{tile}, previous period").format(tile=title))
        self.change = QLabel("")
        self.change.setObjectName(f"tileChange_{key}")
        self.change.setAccessibleName(self.tr("{tile}, change").format(tile=title))
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 6, 12, 6)
        layout.setSpacing(1)
        layout.addWidget(self.title)
        layout.addWidget(self.value)
        layout.addWidget(self.previous)
        layout.addWidget(self.change)

    def show_figure(self, value: str, previous: str, change: str, tip: str) -> None:
        self.value.setText(value)
        self.previous.setText(self.tr("previous period: {figure}").format(figure=previous))
        self.change.setText(change)
        self.value.setToolTip(tip)

    def show_waiting(self) -> None:
        self.value.setText("…")


# -- the top accounts table -----------------------------------------------------------------


class TopAccountsModel(RowsModel):
    """The accounts that used the most credits in the range, most first."""

    # Translated by RowsModel.headerData, in TR_CONTEXT.
    TR_CONTEXT = "TopAccountsModel"
    COLUMNS = (
        ("#",
         QT_TRANSLATE_NOOP("TopAccountsModel", "Rank by credits used")),
        (QT_TRANSLATE_NOOP("TopAccountsModel", "Account"),
         QT_TRANSLATE_NOOP("TopAccountsModel", "The customer account")),
        (QT_TRANSLATE_NOOP("TopAccountsModel", "Plan"),
         QT_TRANSLATE_NOOP("TopAccountsModel", "The plan the account is on now")),
        (QT_TRANSLATE_NOOP("TopAccountsModel", "Credits used"),
         QT_TRANSLATE_NOOP("TopAccountsModel",
                           "Credits charged in the range, failed generations included")),
        (QT_TRANSLATE_NOOP("TopAccountsModel", "Refunded"),
         QT_TRANSLATE_NOOP("TopAccountsModel", "Credits refunded so far for those charges")),
        (QT_TRANSLATE_NOOP("TopAccountsModel", "Net used"),
         QT_TRANSLATE_NOOP("TopAccountsModel", "Credits used less refunded")),
        (QT_TRANSLATE_NOOP("TopAccountsModel", "Charges"),
         QT_TRANSLATE_NOOP("TopAccountsModel", "Uses of AI features in the range")),
        (QT_TRANSLATE_NOOP("TopAccountsModel", "Failed"),
         QT_TRANSLATE_NOOP("TopAccountsModel", "Failed generations in the range")),
        (QT_TRANSLATE_NOOP("TopAccountsModel", "Failed rate"),
         QT_TRANSLATE_NOOP("TopAccountsModel", "Failed generations / charges")),
    )
    NUMERIC = frozenset({0, 3, 4, 5, 6, 7, 8})
    CSV_HEADER = (
        QT_TRANSLATE_NOOP("TopAccountsModel", "Rank"),
        QT_TRANSLATE_NOOP("TopAccountsModel", "Account id"),
        QT_TRANSLATE_NOOP("TopAccountsModel", "Account"),
        QT_TRANSLATE_NOOP("TopAccountsModel", "Plan"),
        QT_TRANSLATE_NOOP("TopAccountsModel", "Credits used"),
        QT_TRANSLATE_NOOP("TopAccountsModel", "Refunded"),
        QT_TRANSLATE_NOOP("TopAccountsModel", "Net used"),
        QT_TRANSLATE_NOOP("TopAccountsModel", "Charges"),
        QT_TRANSLATE_NOOP("TopAccountsModel", "Failed"),
        QT_TRANSLATE_NOOP("TopAccountsModel", "Failed rate"),
    )

    def set_accounts(self, accounts: Sequence[TopAccount]) -> None:
        self.beginResetModel()
        self._rows = list(enumerate(accounts, start=1))
        self.endResetModel()

    def account_at(self, row: int) -> TopAccount:
        return self._rows[row][1]  # type: ignore[no-any-return]

    def row_key(self, row: Any) -> object:
        return row[1].account_id

    def values(self, row: Any) -> list[Cell]:
        rank, a = row
        rate = None if a.charges == 0 else a.failed / a.charges
        return [rank, f"{a.name} (#{a.account_id})", a.plan_name, a.credits,
                a.refunded_credits, a.net_credits, a.charges, a.failed, rate]

    def display(self, row: Any, column: int) -> str | None:
        value = self.values(row)[column]
        if column == 8:
            return _percent(value if isinstance(value, float) else None)
        if isinstance(value, int):
            return fmt.credits_text(value)
        return None if value is None else str(value)

    def tooltip(self, row: Any, column: int) -> str | None:
        a: TopAccount = row[1]
        return self.tr("{name}, account #{id}: double-click or press Enter to open it").format(
            name=a.name, id=a.account_id)

    def csv_table(self) -> tuple[list[str], list[list[Cell]]]:
        header = [self.tr(title) for title in self.CSV_HEADER]
        rows: list[list[Cell]] = []
        for rank, a in self._rows:
            rate = None if a.charges == 0 else round(a.failed / a.charges, 6)
            rows.append([rank, a.account_id, a.name, a.plan_name, a.credits,
                         a.refunded_credits, a.net_credits, a.charges, a.failed, rate])
        return header, rows


# -- the view ------------------------------------------------------------------------------


class DashboardView(QWidget):
    """The dashboard (see the module docstring). Reads on first show or :meth:`refresh`."""

    open_account_requested = Signal(int)
    # Every part of the latest request has arrived (or failed).
    loaded = Signal()
    # An export finished: the path written; or why it failed, in a sentence.
    exported = Signal(str)
    export_failed = Signal(str)

    def __init__(self, db: Database, worker: Worker, actor: Actor,
                 parent: QWidget | None = None, *, today: date | None = None) -> None:
        super().__init__(parent)
        configure()
        self.setObjectName("dashboardView")
        self._db = db
        self._worker = worker
        self._actor = actor
        self._today = today
        self._jobs: dict[str, Job] = {}
        self._plans_job: Job | None = None
        self._started = False
        self._accounts_key: tuple[DateRange, str | None] | None = None
        self._export_jobs: list[Job] = []
        self._failure: str | None = None
        # The status line's semantic colour (None: the palette's text colour).
        self._status_tone: str | None = None
        self._split = False
        # Charts whose figures arrived after they were last drawn.
        self._stale: set[str] = set()
        # The account figures to read once the usage has arrived: (start, end, plan).
        self._accounts_waiting: tuple[date, date, str | None] | None = None
        # The chart's viewport whose next paint starts the accounts reads.
        self._picture: QWidget | None = None
        self.usage: UsageOverview | None = None
        self.purchases: PurchasesOverview | None = None
        self.active: Change | None = None
        self.top: tuple[TopAccount, ...] | None = None
        self.query: DashboardQuery | None = None
        export = role_decision(actor, Action.EXPORT)
        self._may_export = export.verdict is not Verdict.DENY
        self._export_refusal = export.reason

        self._build_filters()
        self._build_tiles()
        self._build_charts()
        self._build_table()

        self.status = QLabel("")
        self.status.setObjectName("dashboardStatus")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(FILTER_DELAY_MS)
        self._timer.timeout.connect(self._request)
        self._picture_timer = QTimer(self)
        self._picture_timer.setSingleShot(True)
        self._picture_timer.setInterval(PICTURE_WAIT_MS)
        self._picture_timer.timeout.connect(self._accounts_due)

        lower = self._lower = QWidget()
        lower_layout = QVBoxLayout(lower)
        lower_layout.setContentsMargins(0, 0, 0, 0)
        heading = QHBoxLayout()
        self.top_heading = QLabel(self.tr("Top accounts by credits used"))
        heading.addWidget(self.top_heading, 1)
        heading.addWidget(self.export_table_button)
        lower_layout.addLayout(heading)
        lower_layout.addWidget(self.table, 1)
        # The chart's actions beside its tabs: the room of a row goes to the chart.
        chart_actions = QWidget()
        chart_actions.setObjectName("chartActions")
        actions_layout = QHBoxLayout(chart_actions)
        actions_layout.setContentsMargins(8, 0, 0, 2)
        actions_layout.addWidget(self.breakdown_label)
        actions_layout.addWidget(self.breakdown)
        actions_layout.addSpacing(12)
        actions_layout.addWidget(self.export_png_button)
        actions_layout.addWidget(self.export_svg_button)
        actions_layout.addWidget(self.export_data_button)
        self.charts.setCornerWidget(chart_actions, Qt.Corner.TopRightCorner)
        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.setObjectName("dashboardSplitter")
        self.splitter.setChildrenCollapsible(False)
        self.splitter.addWidget(self.charts)
        self.splitter.addWidget(lower)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.addLayout(self._filters)
        layout.addWidget(self.status)
        layout.addLayout(self._tiles)
        layout.addWidget(self.splitter, 1)
        self._update_actions()

    # -- building -----------------------------------------------------------------------

    def _build_filters(self) -> None:
        self.plan_filter = QComboBox()
        self.plan_filter.setObjectName("dashboardPlan")
        self.plan_filter.setAccessibleName(self.tr("Plan filter"))
        self.plan_filter.setToolTip(self.tr(
            "Only accounts on this plan (usage and refunds: the plan when the charge was "
            "made; purchases and accounts: the plan now)"))
        self.plan_filter.addItem(self.tr("All plans"), None)
        self.plan_filter.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.plan_filter.currentIndexChanged.connect(self._filters_changed)

        self.range_preset = QComboBox()
        self.range_preset.setObjectName("dashboardRange")
        self.range_preset.setAccessibleName(self.tr("Dashboard period"))
        self.range_preset.setToolTip(self.tr("The UTC days shown, compared with the period "
                                             "before"))
        self.range_preset.addItems([self.tr(preset) for preset in PRESETS])
        self.range_preset.setCurrentIndex(LAST_90_DAYS)
        self.range_preset.currentIndexChanged.connect(self._preset_changed)

        today = self.today()
        self.date_from = QDateEdit(QDate(today.year, today.month, 1))
        self.date_from.setObjectName("dashboardFrom")
        self.date_from.setAccessibleName(self.tr("Dashboard from date"))
        self.date_from.setToolTip(self.tr("First UTC day shown; choose \"Custom range\""))
        self.date_to = QDateEdit(QDate(today.year, today.month, today.day))
        self.date_to.setObjectName("dashboardTo")
        self.date_to.setAccessibleName(self.tr("Dashboard to date"))
        self.date_to.setToolTip(self.tr("Last UTC day shown, included; choose \"Custom range\""))
        for edit in (self.date_from, self.date_to):
            edit.setCalendarPopup(True)
            edit.setDisplayFormat("yyyy-MM-dd")
            edit.setEnabled(False)
            edit.dateChanged.connect(self._dates_changed)

        self.granularity = QComboBox()
        self.granularity.setObjectName("dashboardGranularity")
        self.granularity.setAccessibleName(self.tr("Chart granularity"))
        self.granularity.setToolTip(self.tr("What one bar of the charts covers"))
        for title, value in GRANULARITIES:
            self.granularity.addItem(self.tr(title), value.value)
        self.granularity.setCurrentIndex(1)
        self.granularity.currentIndexChanged.connect(self._filters_changed)

        self.refresh_button = QPushButton(self.tr("Refresh"))
        self.refresh_button.setObjectName("dashboardRefresh")
        self.refresh_button.setAccessibleName(self.tr("Refresh the dashboard"))
        self.refresh_button.setToolTip(self.tr("Read every figure again"))
        self.refresh_button.clicked.connect(self.refresh)

        self._filters = QHBoxLayout()
        for text, widget in ((self.tr("Plan:"), self.plan_filter),
                             (self.tr("Period:"), self.range_preset)):
            label = QLabel(text)
            label.setBuddy(widget)
            self._filters.addWidget(label)
            self._filters.addWidget(widget)
        self._filters.addWidget(self.date_from)
        self._filters.addWidget(QLabel(self.tr("to")))
        self._filters.addWidget(self.date_to)
        by = QLabel(self.tr("By:"))
        by.setBuddy(self.granularity)
        self._filters.addWidget(by)
        self._filters.addWidget(self.granularity)
        self._filters.addStretch(1)
        self._filters.addWidget(self.refresh_button)

    def _build_tiles(self) -> None:
        self.tiles = {
            "used": _Tile("used", self.tr("Credits used"), self.tr(
                "Credits charged for AI features, failed generations included")),
            "refunded": _Tile("refunded", self.tr("Credits refunded"), self.tr(
                "Credits refunded in the period (by the day of the refund)")),
            "purchased": _Tile("purchased", self.tr("Purchased credits sold"),
                               self.tr("Credits of the packages bought in the period")),
            "active": _Tile("active", self.tr("Active accounts"),
                            self.tr("Accounts with at least one charge in the period")),
            "failed": _Tile("failed", self.tr("Failed rate"),
                            self.tr("Failed generations / charges in the period")),
        }
        self._tiles = QGridLayout()
        for column, tile in enumerate(self.tiles.values()):
            self._tiles.addWidget(tile, 0, column)

    def _build_charts(self) -> None:
        self.charts = QTabWidget()
        self.charts.setObjectName("dashboardCharts")
        self.charts.setAccessibleName(self.tr("Dashboard charts"))
        self.charts.tabBar().setAccessibleName(self.tr("Choose a chart"))
        self.chart: dict[str, _Chart] = {}
        for key, title, accessible in CHARTS:
            chart = _Chart(key, self.tr(accessible), percent=key == "failed",
                           horizontal=key == "share", stacked=key == "usage")
            self.chart[key] = chart
            self.charts.addTab(chart, self.tr(title))
        self.charts.currentChanged.connect(self._update_actions)
        self.charts.currentChanged.connect(self._draw_current)

        self.breakdown_label = QLabel(self.tr("Failed rate of:"))
        self.breakdown = QComboBox()
        self.breakdown.setObjectName("failedBreakdown")
        self.breakdown.setAccessibleName(self.tr("Failed rate breakdown"))
        self.breakdown.setToolTip(self.tr("Every feature, or the models of one feature"))
        self.breakdown.addItem(self.tr("Every feature"), None)
        self.breakdown.currentIndexChanged.connect(self._breakdown_changed)
        self.breakdown_label.setBuddy(self.breakdown)

        self.export_png_button = QPushButton(self.tr("Export PNG…"))
        self.export_png_button.setObjectName("exportChartPng")
        self.export_png_button.setAccessibleName(self.tr("Export the chart as a PNG image"))
        self.export_png_button.clicked.connect(lambda: self._ask_and_export("png"))
        self.export_svg_button = QPushButton(self.tr("Export SVG…"))
        self.export_svg_button.setObjectName("exportChartSvg")
        self.export_svg_button.setAccessibleName(self.tr("Export the chart as an SVG drawing"))
        self.export_svg_button.clicked.connect(lambda: self._ask_and_export("svg"))
        self.export_data_button = QPushButton(self.tr("Export data…"))
        self.export_data_button.setObjectName("exportChartData")
        self.export_data_button.setAccessibleName(self.tr("Export the chart's figures as CSV"))
        self.export_data_button.clicked.connect(lambda: self._ask_and_export("data"))

    def _build_table(self) -> None:
        self.top_model = TopAccountsModel(self)
        self.table = CopyableTable()
        self.table.setObjectName("topAccounts")
        self.table.setAccessibleName(self.tr("Top accounts by credits used"))
        self.table.setToolTip(self.tr("The accounts that used the most credits in the period; "
                                      "double-click or press Enter to open one"))
        self.table.setModel(self.top_model)
        self.table.setSelectionBehavior(CopyableTable.SelectionBehavior.SelectRows)
        self.table.doubleClicked.connect(self._open_account)
        self.table.enter_pressed.connect(self._open_account)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        header.setStretchLastSection(False)
        # Six rows stay in view however small the window: the charts give way first.
        rows = self.table.verticalHeader().defaultSectionSize() * TABLE_MIN_ROWS
        frame = 2 * self.table.frameWidth()
        self.table.setMinimumHeight(header.sizeHint().height() + rows + frame)
        self.export_table_button = QPushButton(self.tr("Export CSV…"))
        self.export_table_button.setObjectName("exportTopAccounts")
        self.export_table_button.setAccessibleName(self.tr("Export the top accounts as CSV"))
        self.export_table_button.clicked.connect(lambda: self._ask_and_export("table"))

    # -- state -------------------------------------------------------------------------

    def today(self) -> date:
        """Today's UTC date (fixed by the ``today`` argument for tests)."""
        return self._today or datetime.now(UTC).date()

    @property
    def is_loading(self) -> bool:
        return bool(self._jobs) or self._accounts_waiting is not None

    def current_query(self) -> DashboardQuery:
        """What the filters ask for; InvalidInput when the custom range makes none."""
        preset = self.range_preset.currentIndex()
        first = self.date_from.date().toPython()
        last = self.date_to.date().toPython()
        assert isinstance(first, date) and isinstance(last, date)
        rng = preset_range(preset, self.today(), first, last)
        # Qt hands the enum back as its plain string value.
        grain = Granularity(str(self.granularity.currentData()))
        plan = self.plan_filter.currentData()
        return DashboardQuery(rng, grain, plan if isinstance(plan, str) else None)

    def set_custom_range(self, first: date, last: date) -> None:
        """Choose a custom range of UTC days (``last`` included)."""
        for edit, day in ((self.date_from, first), (self.date_to, last)):
            edit.blockSignals(True)
            edit.setDate(QDate(day.year, day.month, day.day))
            edit.blockSignals(False)
        if self.range_preset.currentIndex() == CUSTOM:
            self._filters_changed()
        else:
            self.range_preset.setCurrentIndex(CUSTOM)

    def set_plan(self, plan_code: str | None) -> bool:
        """Choose a plan by code (None: all plans); False if the list lacks it."""
        index = self.plan_filter.findData(plan_code)
        if index < 0:
            return False
        self.plan_filter.setCurrentIndex(index)
        return True

    def set_granularity(self, granularity: Granularity) -> None:
        self.granularity.setCurrentIndex(self.granularity.findData(granularity.value))

    # -- reading -----------------------------------------------------------------------

    @Slot()
    def refresh(self) -> None:
        """Read the plans and every figure again."""
        self._started = True
        self._load_plans()
        self._accounts_key = None
        self._timer.stop()
        self._request()

    def shutdown(self) -> None:
        """The tab closes: results on their way are not wanted."""
        self._timer.stop()
        self._accounts_waiting = None
        self._forget_picture()
        for job in self._jobs.values():
            job.discard()
        self._jobs.clear()
        if self._plans_job is not None:
            self._plans_job.discard()
            self._plans_job = None

    def _load_plans(self) -> None:
        if self._plans_job is not None:
            self._plans_job.discard()
        job = self._worker.submit(partial(list_plans, self._db))
        job.succeeded.connect(self._plans_arrived)
        job.finished.connect(lambda j=job: self._plans_done(j))
        self._plans_job = job

    def _plans_done(self, job: Job) -> None:
        if self._plans_job is job:
            self._plans_job = None

    @Slot(object)
    def _plans_arrived(self, plans: list[PlanChoice]) -> None:
        chosen = self.plan_filter.currentData()
        self.plan_filter.blockSignals(True)
        self.plan_filter.clear()
        self.plan_filter.addItem(self.tr("All plans"), None)
        for plan in plans:
            self.plan_filter.addItem(plan.name, plan.code)
        index = self.plan_filter.findData(chosen)
        self.plan_filter.setCurrentIndex(max(index, 0))
        self.plan_filter.blockSignals(False)
        if index < 0 and chosen is not None:
            self._filters_changed()

    @Slot()
    def _filters_changed(self) -> None:
        if self._started:
            self._timer.start()

    @Slot()
    def _preset_changed(self) -> None:
        custom = self.range_preset.currentIndex() == CUSTOM
        self.date_from.setEnabled(custom)
        self.date_to.setEnabled(custom)
        self._filters_changed()

    @Slot()
    def _dates_changed(self) -> None:
        if self.range_preset.currentIndex() == CUSTOM:
            self._filters_changed()

    @Slot()
    def _request(self) -> None:
        try:
            query = self.current_query()
        except CreditsDeskError as exc:
            self._show_status(exc.message, error=True)
            return
        self.query = query
        self._failure = None
        for name in ("usage", "purchases"):
            old = self._jobs.pop(name, None)
            if old is not None:
                old.discard()
        start, end, plan = query.range.start, query.range.end, query.plan_code
        self._submit("usage", partial(usage_overview, self._db, start=start, end=end,
                                      granularity=query.granularity, plan_code=plan),
                     self._usage_arrived)
        self._submit("purchases", partial(purchases_overview, self._db, start=start, end=end,
                                          granularity=query.granularity, plan_code=plan),
                     self._purchases_arrived)
        if self._accounts_key != query.accounts_key:
            for name in ("active", "top"):
                old = self._jobs.pop(name, None)
                if old is not None:
                    old.discard()
            self._accounts_key = query.accounts_key
            # Read once the charts' figures are in: on two cores, queries running beside
            # the usage job would only slow the first picture down.
            self._accounts_waiting = (start, end, plan)
            self.top_heading.setText(self.tr("Top accounts by credits used (loading…)"))
        for name, tile in self.tiles.items():
            if name != "active" or self._accounts_waiting is not None:
                tile.show_waiting()
        self._show_status(self.tr("Loading {days} (UTC)…").format(
            days=range_text(query.range.start, query.range.last)))

    def _submit(self, name: str, work: Callable[[], object],
                arrived: Callable[[Any], None]) -> None:
        job = self._worker.submit(work)
        job.succeeded.connect(arrived)
        job.failed.connect(lambda message, n=name: self._part_failed(n, message))
        job.finished.connect(lambda j=job, n=name: self._part_done(n, j))
        self._jobs[name] = job

    def _accounts_after_picture(self) -> None:
        """Start the accounts reads once the chart on show has been painted.

        On PostgreSQL those reads are heavy for the server (parallel workers over the
        per-account rollup): started beside the first paint, they took the cores from
        the GUI thread and froze the window for up to 90 ms. The paint comes within a
        turn or two of the event loop; the reads start on the turn after it (or after
        PICTURE_WAIT_MS if no paint comes), so they lose little time."""
        self._forget_picture()
        viewport = self.current_chart().canvas.viewport()
        if not viewport.isVisible():
            self._start_accounts()
            return
        self._picture = viewport
        viewport.installEventFilter(self)
        viewport.update()  # a paint comes even when nothing new was drawn
        self._picture_timer.start()

    def _forget_picture(self) -> None:
        self._picture_timer.stop()
        if self._picture is not None:
            self._picture.removeEventFilter(self)
            self._picture = None

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self._picture and event.type() == QEvent.Type.Paint:
            self._forget_picture()
            # Queued: the paint (and the rest of this frame) happens first.
            QTimer.singleShot(0, self, self._accounts_due)
        return super().eventFilter(watched, event)

    @Slot()
    def _accounts_due(self) -> None:
        self._forget_picture()
        if self._accounts_waiting is not None and "usage" not in self._jobs:
            self._start_accounts()

    def _start_accounts(self) -> None:
        assert self._accounts_waiting is not None
        start, end, plan = self._accounts_waiting
        self._accounts_waiting = None
        # Apart: the tile's quick count must not wait for the slow top list.
        self._submit("active", partial(active_accounts, self._db, start=start, end=end,
                                       plan_code=plan), self._active_arrived)
        self._submit("top", partial(top_accounts, self._db, start=start, end=end,
                                    plan_code=plan), self._top_arrived)

    def _part_done(self, name: str, job: Job) -> None:
        if self._jobs.get(name) is job:
            del self._jobs[name]
            if name == "usage" and self._accounts_waiting is not None:
                self._accounts_after_picture()
        if not self._jobs and self._accounts_waiting is None:
            if self._failure is None:
                self._show_loaded()
            self._update_actions()
            self.loaded.emit()

    def _part_failed(self, name: str, message: str) -> None:
        if name in ("active", "top"):
            self._accounts_key = None
        self._failure = message
        self._show_status(message, error=True)

    def _show_status(self, text: str, *, error: bool = False,
                     done: bool = False) -> None:
        self._status_tone = "danger" if error else "success" if done else None
        self._style_status()
        self.status.setText(text)

    def _style_status(self) -> None:
        tone = self._status_tone
        theme.set_style_sheet(self.status, f"color: {theme.css(tone)};" if tone else "")

    def _show_loaded(self) -> None:
        if self.usage is None:
            return
        usage = self.usage
        plan = self.plan_filter.currentText() if usage.plan_code else self.tr("all plans")
        text = self.tr("{days} (UTC days), {plan}; compared with {before}.").format(
            days=range_text(usage.range.start, usage.range.last), plan=plan,
            before=range_text(usage.previous.start, usage.previous.last))
        if usage.incomplete:
            # Loud: until the backfill finishes every usage figure here is short.
            self._show_status(self.tr("{figures} Figures are incomplete. {why}").format(
                figures=text, why=usage.incomplete), error=True)
        else:
            self._show_status(text)

    # -- showing -----------------------------------------------------------------------

    def _scope(self) -> str:
        query = self.query
        if query is None:
            return ""
        plan = self.plan_filter.currentText() if query.plan_code else self.tr("all plans")
        return self.tr("{bars}, {days} (UTC), {plan}").format(
            bars=self.tr(BAR_WORDS[query.granularity]),
            days=range_text(query.range.start, query.range.last), plan=plan)

    def _bucket_header(self) -> list[str]:
        return [self.tr(title) for title in BUCKET_COLUMNS]

    def _previous_text(self, days: DateRange | None) -> str:
        """ "Previous period: 2026-01-01 to 2026-01-31 (UTC)", for a tile's tooltip."""
        shown = "" if days is None else range_text(days.start, days.last)
        return self.tr("Previous period: {days} (UTC)").format(days=shown)

    @Slot(object)
    def _usage_arrived(self, usage: UsageOverview) -> None:
        self.usage = usage
        prev = self.tr("{days} (UTC)").format(
            days=range_text(usage.previous.start, usage.previous.last))
        charges = usage.charges.current
        self.tiles["used"].show_figure(
            fmt.credits_text(usage.used.current), fmt.credits_text(usage.used.previous),
            _change_text(usage.used), self.tr("{charges}; before: {days}").format(
                charges=counted(self.tr("%Ln charge(s)", "", charges), charges), days=prev))
        self.tiles["refunded"].show_figure(
            fmt.credits_text(usage.refunded.current), fmt.credits_text(usage.refunded.previous),
            _change_text(usage.refunded), self._previous_text(usage.previous))
        rate = usage.failed_rate
        charges = rate.current_charges
        self.tiles["failed"].show_figure(
            _percent(rate.current), _percent(rate.previous), _rate_change_text(rate),
            self.tr("{failed} failed of {charges}; before: {failed_before} of "
                    "{charges_before} ({days})").format(
                failed=fmt.credits_text(rate.current_failed),
                charges=counted(self.tr("%Ln charge(s)", "", charges), charges),
                failed_before=fmt.credits_text(rate.previous_failed),
                charges_before=fmt.credits_text(rate.previous_charges), days=prev))
        self._fill_breakdown(usage)
        # Only the chart on show is drawn now; the others when their tab is opened
        # (or exported): the first picture comes sooner.
        self._stale.update(("usage", "share", "failed", "refunds"))
        self._draw_current()

    @Slot(object)
    def _purchases_arrived(self, purchases: PurchasesOverview) -> None:
        self.purchases = purchases
        bought = purchases.count.current
        self.tiles["purchased"].show_figure(
            fmt.credits_text(purchases.sold.current), fmt.credits_text(purchases.sold.previous),
            _change_text(purchases.sold),
            self.tr("{bought} bought; before: {before} ({days} UTC)").format(
                bought=counted(self.tr("%Ln package(s)", "", bought), bought),
                before=fmt.credits_text(purchases.count.previous),
                days=range_text(purchases.previous.start, purchases.previous.last)))
        self._stale.add("purchases")
        self._draw_current()

    @Slot(object)
    def _active_arrived(self, active: Change) -> None:
        self.active = active
        before = previous_range(self._accounts_key[0]) if self._accounts_key else None
        self.tiles["active"].show_figure(
            fmt.credits_text(active.current), fmt.credits_text(active.previous),
            _change_text(active), self._previous_text(before))

    @Slot(object)
    def _top_arrived(self, top: tuple[TopAccount, ...]) -> None:
        self.top = top
        self.top_model.set_accounts(top)
        days = self._accounts_key[0] if self._accounts_key else None
        span = "" if days is None else range_text(days.start, days.last)
        self.top_heading.setText(counted(self.tr(
            "Top %Ln account(s) by credits used, {days} (UTC)", "", len(top)), len(top)).format(
                days=span))
        self._update_actions()

    def _colour(self, code: str) -> QColor:
        """A feature's colour: by its place in the catalogue, as in the account charts."""
        catalogue = [c for c, _ in self.usage.catalogue] if self.usage else []
        return series_color(catalogue.index(code) if code in catalogue else len(catalogue))

    def _draw_usage(self, usage: UsageOverview) -> None:
        chart = self.chart["usage"]
        chart.reset(self.tr("Credits used per feature, {scope}").format(scope=self._scope()),
                    self.tr("Credits"))
        chart.set_category_ticks(_bucket_labels(usage.buckets))
        # Largest at the bottom of each stack, where it is easiest to read.
        chart.set_stacked([BarSeries(f.code, f.name, f.series.credits, self._colour(f.code))
                           for f in usage.features])
        totals = [sum(f.series.credits[i] for f in usage.features)
                  for i in range(len(usage.buckets))]
        chart.fit_values(max(totals, default=0))
        if not usage.features:
            chart.note_empty(self.tr("No usage in this period"))
        chart.header = [*self._bucket_header(), *(f.name for f in usage.features),
                        self.tr("Total")]
        chart.rows = [
            [*_bucket_cells(b), *(f.series.credits[i] for f in usage.features),
             sum(f.series.credits[i] for f in usage.features)]
            for i, b in enumerate(usage.buckets)
        ]

        def describe(x: float, _y: float) -> str:
            i = round(x)
            if not 0 <= i < len(usage.buckets):
                return ""
            lines = [_span(usage.buckets[i])]
            total = 0
            assert chart.bars is not None
            for f in usage.features:
                if not chart.bars.is_visible(f.code):
                    continue
                s = f.series
                total += s.credits[i]
                if s.charges[i]:
                    n = s.charges[i]
                    lines.append(self.tr(
                        "{feature}: {credits} credits ({charges}, {failed} failed, "
                        "{refunded} refunded)").format(
                            feature=f.name, credits=fmt.credits_text(s.credits[i]),
                            charges=counted(self.tr("%Ln charge(s)", "", n), n),
                            failed=fmt.credits_text(s.failed[i]),
                            refunded=fmt.credits_text(s.refunded_credits[i])))
            lines.append(self.tr("Total shown: {credits} credits").format(
                credits=fmt.credits_text(total)))
            return "\n".join(lines)

        chart.describe = describe

    def _draw_share(self, usage: UsageOverview) -> None:
        chart = self.chart["share"]
        chart.reset(self.tr("Share of credits used per feature, {scope}").format(
            scope=self._scope()), self.tr("% of credits used"))
        shares = list(reversed(usage.shares()))  # the largest at the top
        chart.set_category_ticks([s.name for s in shares])
        chart.add_bars(self.tr("Share"), [s.share * 100 for s in shares],
                       [self._colour(s.code) for s in shares])
        chart.fit_values(max((s.share * 100 for s in shares), default=0))
        if not shares:
            chart.note_empty(self.tr("No usage in this period"))
        chart.header = [self.tr("Feature"), self.tr("Credits used"), self.tr("Share")]
        chart.rows = [[s.name, s.credits, round(s.share, 6)] for s in usage.shares()]

        def describe(_x: float, y: float) -> str:
            i = round(y)
            if not 0 <= i < len(shares):
                return ""
            s = shares[i]
            return self.tr("{feature}: {credits} credits, {share} of the {used} credits "
                           "used").format(feature=s.name, credits=fmt.credits_text(s.credits),
                                          share=f"{s.share * 100:.1f}%",
                                          used=fmt.credits_text(usage.used.current))

        chart.describe = describe

    def _fill_breakdown(self, usage: UsageOverview) -> None:
        chosen = self.breakdown.currentData()
        self.breakdown.blockSignals(True)
        self.breakdown.clear()
        self.breakdown.addItem(self.tr("Every feature"), None)
        for feature in usage.features:
            self.breakdown.addItem(self.tr("Models of {feature}").format(feature=feature.name),
                                   feature.code)
        self.breakdown.setCurrentIndex(max(self.breakdown.findData(chosen), 0))
        self.breakdown.blockSignals(False)

    def set_breakdown(self, feature_code: str | None) -> bool:
        """Show the failed rate per feature (None) or per model of one feature."""
        index = self.breakdown.findData(feature_code)
        if index < 0:
            return False
        self.breakdown.setCurrentIndex(index)
        self._breakdown_changed()
        return True

    @Slot()
    def _breakdown_changed(self) -> None:
        self._stale.add("failed")
        self._draw_current()

    @Slot()
    def _draw_current(self) -> None:
        self.ensure_drawn(CHARTS[self.charts.currentIndex()][0])

    def ensure_drawn(self, key: str) -> None:
        """Draw chart ``key`` if figures arrived since it was last drawn."""
        if key not in self._stale:
            return
        if key == "purchases":
            if self.purchases is not None:
                self._stale.discard(key)
                self._draw_purchases(self.purchases)
            return
        usage = self.usage
        if usage is None:
            return
        self._stale.discard(key)
        if key == "usage":
            self._draw_usage(usage)
        elif key == "share":
            self._draw_share(usage)
        elif key == "failed":
            self._draw_failed()
        else:
            self._draw_refunds(usage)

    @Slot()
    def _draw_failed(self) -> None:
        usage = self.usage
        if usage is None:
            return
        chart = self.chart["failed"]
        feature = self.breakdown.currentData()
        if feature is None:
            title = self.tr("Failed-generation rate per feature, {scope}").format(
                scope=self._scope())
            lines = [(f.name, f.series, self._colour(f.code)) for f in usage.features]
        else:
            title = self.tr("Failed-generation rate per model of {feature}, {scope}").format(
                feature=usage.feature_name(feature), scope=self._scope())
            lines = [(m.model_label, m.series, series_color(i))
                     for i, m in enumerate(usage.models_of(feature))]
        rates_of = [series.failed_rates() for _, series, _ in lines]
        chart.reset(title, self.tr("Failed charges / charges"), legend_columns=3)
        chart.set_category_ticks(_bucket_labels(usage.buckets))
        highest = 0.0
        for (name, _series, colour), rates_of_line in zip(lines, rates_of, strict=True):
            rates = [None if r is None else r * 100 for r in rates_of_line]
            chart.add_line(name, rates, colour)
            highest = max([highest, *(r for r in rates if r is not None)])
        chart.fit_values(highest)
        if not lines:
            chart.note_empty(self.tr("No usage in this period"))
        chart.header = [*self._bucket_header(), self.tr("Series"), self.tr("Charges"),
                        self.tr("Failed"), self.tr("Failed rate")]
        chart.rows = []
        for i, bucket in enumerate(usage.buckets):
            for (name, series, _), line_rates in zip(lines, rates_of, strict=True):
                rate = line_rates[i]
                chart.rows.append([*_bucket_cells(bucket), name, series.charges[i],
                                   series.failed[i], None if rate is None else round(rate, 6)])

        def describe(x: float, _y: float) -> str:
            i = round(x)
            if not 0 <= i < len(usage.buckets):
                return ""
            text = [_span(usage.buckets[i])]
            for (name, series, _), line_rates in zip(lines, rates_of, strict=True):
                if series.charges[i]:
                    text.append(self.tr("{series}: {rate} ({failed} failed of {charges})").format(
                        series=name, rate=_percent(line_rates[i]),
                        failed=fmt.credits_text(series.failed[i]),
                        charges=fmt.credits_text(series.charges[i])))
            return "\n".join(text)

        chart.describe = describe

    def _draw_refunds(self, usage: UsageOverview) -> None:
        chart = self.chart["refunds"]
        chart.reset(self.tr("Credits refunded (by the day of the refund), {scope}").format(
            scope=self._scope()), self.tr("Credits"))
        chart.set_category_ticks(_bucket_labels(usage.buckets))
        chart.add_bars(self.tr("Credits refunded"), usage.refund_credits, series_color(4))
        chart.fit_values(max(usage.refund_credits, default=0))
        chart.header = [*self._bucket_header(), self.tr("Refunds"),
                        self.tr("Credits refunded")]
        chart.rows = [[*_bucket_cells(b), usage.refund_counts[i], usage.refund_credits[i]]
                      for i, b in enumerate(usage.buckets)]

        def describe(x: float, _y: float) -> str:
            i = round(x)
            if not 0 <= i < len(usage.buckets):
                return ""
            n = usage.refund_counts[i]
            return "\n".join([_span(usage.buckets[i]), self.tr("{refunds}, {credits} credits")
                              .format(refunds=counted(self.tr("%Ln refund(s)", "", n), n),
                                      credits=fmt.credits_text(usage.refund_credits[i]))])

        chart.describe = describe

    def _draw_purchases(self, purchases: PurchasesOverview) -> None:
        chart = self.chart["purchases"]
        chart.reset(self.tr("Purchased credits sold, {scope}").format(scope=self._scope()),
                    self.tr("Credits"))
        chart.set_category_ticks(_bucket_labels(purchases.buckets))
        chart.add_bars(self.tr("Purchased credits"), purchases.credits, series_color(2))
        chart.fit_values(max(purchases.credits, default=0))
        chart.header = [*self._bucket_header(), self.tr("Packages bought"),
                        self.tr("Credits sold")]
        chart.rows = [[*_bucket_cells(b), purchases.purchases[i], purchases.credits[i]]
                      for i, b in enumerate(purchases.buckets)]

        def describe(x: float, _y: float) -> str:
            i = round(x)
            if not 0 <= i < len(purchases.buckets):
                return ""
            n = purchases.purchases[i]
            return "\n".join([
                _span(purchases.buckets[i]),
                self.tr("{packages}, {credits} credits").format(
                    packages=counted(self.tr("%Ln package(s)", "", n), n),
                    credits=fmt.credits_text(purchases.credits[i]))])

        chart.describe = describe

    # -- actions -------------------------------------------------------------------------

    @Slot()
    def _update_actions(self) -> None:
        key = CHARTS[self.charts.currentIndex()][0]
        self.breakdown.setVisible(key == "failed")
        self.breakdown_label.setVisible(key == "failed")
        has_chart = self.usage is not None if key != "purchases" else self.purchases is not None
        for button, ready in ((self.export_png_button, has_chart),
                              (self.export_svg_button, has_chart),
                              (self.export_data_button, has_chart),
                              (self.export_table_button, self.top is not None)):
            button.setEnabled(self._may_export and ready)
            button.setToolTip(self._export_refusal if not self._may_export else
                              self.tr("Save to a file") if ready
                              else self.tr("Nothing to export yet"))

    @Slot(QModelIndex)
    def _open_account(self, index: AnyIndex) -> None:
        if index.isValid():
            self.open_account_requested.emit(self.top_model.account_at(index.row()).account_id)

    def current_chart(self) -> _Chart:
        return self.chart[CHARTS[self.charts.currentIndex()][0]]

    def show_chart(self, key: str) -> None:
        self.charts.setCurrentIndex([k for k, _, _ in CHARTS].index(key))

    def _ask_and_export(self, what: str) -> None:
        chart = self.current_chart()
        stamp = self.query.range.start.isoformat() if self.query else "dashboard"
        suffix, kind = {"png": (".png", self.tr("PNG image (*.png)")),
                        "svg": (".svg", self.tr("SVG drawing (*.svg)")),
                        "data": (".csv", self.tr("CSV table (*.csv)")),
                        "table": (".csv", self.tr("CSV table (*.csv)"))}[what]
        name = "top-accounts" if what == "table" else chart.key
        path, _filter = QFileDialog.getSaveFileName(
            self, self.tr("Export"), str(Path.home() / f"credits-{name}-{stamp}{suffix}"), kind)
        if not path:
            return
        if what == "table":
            self.export_top_accounts(path)
        elif what == "data":
            self.export_chart_data(path)
        else:
            self.export_chart(path, what)

    def _refuse_export(self) -> bool:
        if self._may_export:
            return False
        self.export_failed.emit(self._export_refusal)
        return True

    def export_chart(self, path: str | Path, kind: str = "png",
                     key: str | None = None) -> Job | None:
        """Save a chart (the one shown, or ``key``) as "png" or "svg"; None if refused."""
        if self._refuse_export():
            return None
        chart = self.chart[key] if key else self.current_chart()
        self.ensure_drawn(chart.key)
        try:
            data = chart.svg() if kind == "svg" else chart.png()
        except ValueError as exc:  # not laid out yet: nothing on screen to draw
            self._export_error(self.tr("The chart could not be drawn: {reason}").format(
                reason=exc))
            return None
        return self._write(partial(write_bytes, path, data, f".{kind}"))

    def export_chart_data(self, path: str | Path, key: str | None = None) -> Job | None:
        """Save the figures behind a chart as CSV."""
        if self._refuse_export():
            return None
        chart = self.chart[key] if key else self.current_chart()
        self.ensure_drawn(chart.key)
        return self._write(partial(write_csv, path, list(chart.header),
                                   [list(r) for r in chart.rows]))

    def export_top_accounts(self, path: str | Path) -> Job | None:
        """Save the top accounts table as CSV."""
        if self._refuse_export():
            return None
        header, rows = self.top_model.csv_table()
        return self._write(partial(write_csv, path, header, rows))

    def _write(self, work: Callable[[], Path]) -> Job:
        job = self._worker.submit(work)
        job.succeeded.connect(self._export_succeeded)
        job.failed.connect(self._export_error)
        job.finished.connect(lambda j=job: self._export_jobs.remove(j))
        self._export_jobs.append(job)
        return job

    @Slot(object)
    def _export_succeeded(self, path: Path) -> None:
        self._show_status(self.tr("Saved {path}.").format(path=path), done=True)
        self.exported.emit(str(path))

    @Slot(str)
    def _export_error(self, message: str) -> None:
        self._show_status(message, error=True)
        self.export_failed.emit(message)

    # -- events ------------------------------------------------------------------------

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if not self._split:
            # Once, when the splitter first has its height: about two fifths for the
            # table (never fewer rows than its minimum), the rest for the charts.
            self._split = True
            total = sum(self.splitter.sizes())
            if total > 0:
                lower = max(round(total * TABLE_SHARE),
                            self._lower.minimumSizeHint().height())
                self.splitter.setSizes([max(total - lower, 0), lower])
        if not self._started:
            self.refresh()

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if theme.is_palette_change(event):
            self._style_status()
