"""The account's Usage tab: credits used per feature over time, balances over time and
the credits forecast.

:class:`AccountCharts` reads everything for one request through the window's
:class:`~credits_desktop.ui.workers.Worker` (``services.account_charts.load_chart_data``:
the per-account usage rollup, the ledger, the forecast's inputs), never on the GUI
thread; a newer request discards the older one's result. It draws, with pyqtgraph
(helpers in :mod:`charts_common`):

* stacked bars of the credits used per feature per day, week or month, one
  colour-blind-safe colour per feature; with "Show failed and refunded apart" each
  feature's bar is what its succeeded charges cost, the failed charges' credits are
  stacked above (hatched) and the refunded credits hang below the axis (hatched), so
  the net is what is above the axis less what is below. The legend (or the Features
  menu, for the keyboard) hides and shows a feature; the tooltip gives the bar's days
  and exact figures;
* the plan, purchased, refund and total balances over the same time, as steps, with
  the billing resets as dashed lines and the forecast as a dotted line to the run-out
  date (or to the next reset when the credits last);
* the forecast in sentences a support agent can paste to a customer, with a Copy
  button.

Exports (PNG, SVG, CSV of the features shown) are rendered here and written, with an
audit row, by the worker (``services.account_charts.write_export``); only roles
allowed to export may. Days of the usage chart are UTC calendar days (the rollup's);
the axes show local dates.

The two charts stand side by side (they share the time axis) over the forecast, in a
scroll area: the tab fits a small screen (the main window can be 1280x720) and scrolls
only when there is less room than the charts need to stay legible. Axes, titles and
legends follow the palette; the failed and refunded parts take the theme's muted and
text colours, so they read on the dark palette too.

Every word shown (controls, titles, axes, legends, tooltips, the CSV header) goes
through Qt's translation, context ``"AccountCharts"``; feature names are data.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyqtgraph as pg
from PySide6.QtCore import QDate, QEvent, Qt, Signal, Slot
from PySide6.QtGui import QAction, QColor, QImage, QPainter, QShowEvent
from PySide6.QtWidgets import (
    QApplication,
    QCheckBox,
    QComboBox,
    QDateEdit,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QMenu,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from credits_desktop.domain.permissions import Action, Verdict
from credits_desktop.services.account_charts import (
    ChartData,
    Granularity,
    RangePreset,
    Usage,
    UsageSeries,
    load_chart_data,
    usage_csv_rows,
    write_export,
)
from credits_desktop.services.operations import Actor
from credits_desktop.store.database import Database

from . import formatting as fmt
from . import theme
from .charts_common import (
    FAILED_BRUSH_STYLE,
    QT_TRANSLATE_NOOP,
    REFUND_BRUSH_STYLE,
    BarSeries,
    CreditAxis,
    DateAxis,
    HoverTip,
    StackedBars,
    apply_palette,
    configure,
    counted,
    day_seconds,
    range_text,
    render_png,
    render_svg,
    series_color,
    span_text,
    step_points,
)
from .role_gate import role_decision
from .workers import Job, Worker

__all__ = [
    "FAILED_KEY",
    "GRANULARITIES",
    "RANGES",
    "REFUNDED_KEY",
    "AccountCharts",
    "ChartRequest",
]

# Labels are translated where shown (QT_TRANSLATE_NOOP only marks them).
RANGES: tuple[tuple[str, RangePreset], ...] = (
    (QT_TRANSLATE_NOOP("AccountCharts", "Current billing period"), RangePreset.CURRENT_PERIOD),
    (QT_TRANSLATE_NOOP("AccountCharts", "Last 30 days"), RangePreset.LAST_30_DAYS),
    (QT_TRANSLATE_NOOP("AccountCharts", "Last 90 days"), RangePreset.LAST_90_DAYS),
    (QT_TRANSLATE_NOOP("AccountCharts", "Last 12 months"), RangePreset.LAST_12_MONTHS),
    (QT_TRANSLATE_NOOP("AccountCharts", "Custom"), RangePreset.CUSTOM),
)
GRANULARITIES: tuple[tuple[str, Granularity], ...] = (
    (QT_TRANSLATE_NOOP("AccountCharts", "Day"), Granularity.DAY),
    (QT_TRANSLATE_NOOP("AccountCharts", "Week"), Granularity.WEEK),
    (QT_TRANSLATE_NOOP("AccountCharts", "Month"), Granularity.MONTH),
)
# What the bars of the usage chart are, in its title.
BAR_WORDS = {
    Granularity.DAY: QT_TRANSLATE_NOOP("AccountCharts", "days"),
    Granularity.WEEK: QT_TRANSLATE_NOOP("AccountCharts", "weeks"),
    Granularity.MONTH: QT_TRANSLATE_NOOP("AccountCharts", "months"),
}
# The bar size a preset reads best in; a custom range keeps the one chosen.
PRESET_GRANULARITY = {
    RangePreset.CURRENT_PERIOD: Granularity.DAY,
    RangePreset.LAST_30_DAYS: Granularity.DAY,
    RangePreset.LAST_90_DAYS: Granularity.WEEK,
    RangePreset.LAST_12_MONTHS: Granularity.MONTH,
}

# Keys of the two extra series shown with "failed and refunded apart".
FAILED_KEY = "_failed"
REFUNDED_KEY = "_refunded"

log = logging.getLogger(__name__)

RENDER_TROUBLE = QT_TRANSLATE_NOOP(
    "AccountCharts", "The charts could not be drawn for the export; nothing was written.")
# The smallest height the two charts stay legible in; with less room the tab scrolls.
CHARTS_MIN_HEIGHT = 240
EXPORT_TIP = QT_TRANSLATE_NOOP(
    "AccountCharts",
    "Save the charts ({kind}) to a file; the export is recorded in the audit log")
NO_ACTOR_TIP = QT_TRANSLATE_NOOP("AccountCharts", "Exports need a signed-in staff member.")
BALANCE_KEYS = (
    ("plan", QT_TRANSLATE_NOOP("AccountCharts", "Plan credits")),
    ("purchased", QT_TRANSLATE_NOOP("AccountCharts", "Purchased credits")),
    ("refund", QT_TRANSLATE_NOOP("AccountCharts", "Refund credits")),
    ("total", QT_TRANSLATE_NOOP("AccountCharts", "Total")),
)
# The CSV export's header, as the user reads it: the columns of
# ``services.account_charts.CSV_COLUMNS``, in their order, translated.
CSV_HEADER = (
    QT_TRANSLATE_NOOP("AccountCharts", "Bucket start (UTC day)"),
    QT_TRANSLATE_NOOP("AccountCharts", "Bucket end (UTC day, included)"),
    QT_TRANSLATE_NOOP("AccountCharts", "Feature code"),
    QT_TRANSLATE_NOOP("AccountCharts", "Feature"),
    QT_TRANSLATE_NOOP("AccountCharts", "Charges"),
    QT_TRANSLATE_NOOP("AccountCharts", "Credits charged"),
    QT_TRANSLATE_NOOP("AccountCharts", "Failed charges"),
    QT_TRANSLATE_NOOP("AccountCharts", "Failed credits"),
    QT_TRANSLATE_NOOP("AccountCharts", "Refunded credits"),
    QT_TRANSLATE_NOOP("AccountCharts", "Credits used"),
)


def _qdate(day: date) -> QDate:
    return QDate(day.year, day.month, day.day)


@dataclass(frozen=True)
class ChartRequest:
    """What the controls ask for."""

    preset: RangePreset
    granularity: Granularity
    custom: tuple[date, date] | None


class AccountCharts(QWidget):
    """The Usage tab of one account: usage bars, balance lines and the forecast."""

    # The ChartData of a request, drawn.
    loaded = Signal(object)
    # A plain message: the charts could not be read.
    load_failed = Signal(str)
    # The path of a finished export / a plain message saying why it failed.
    exported = Signal(str)
    export_failed = Signal(str)

    def __init__(self, db: Database, worker: Worker, account_id: int,
                 parent: QWidget | None = None, *, actor: Actor | None = None) -> None:
        super().__init__(parent)
        configure()
        self.setObjectName("accountCharts")
        self._db = db
        self._worker = worker
        self._actor = actor
        self.account_id = account_id
        self._job: Job | None = None
        self._export_job: Job | None = None
        self._started = False
        self._data: ChartData | None = None

        # Controls.
        self.range_combo = QComboBox()
        self.range_combo.setObjectName("usageRange")
        self.range_combo.setAccessibleName(self.tr("Usage range"))
        self.range_combo.setToolTip(self.tr("The days the charts cover"))
        for label, preset in RANGES:
            self.range_combo.addItem(self.tr(label), preset.value)
        today = datetime.now(UTC).date()
        self.date_from = QDateEdit(_qdate(today - timedelta(days=29)))
        self.date_from.setObjectName("usageFrom")
        self.date_from.setAccessibleName(self.tr("Usage from day"))
        self.date_from.setToolTip(self.tr("First day shown (UTC day)"))
        self.date_to = QDateEdit(_qdate(today))
        self.date_to.setObjectName("usageTo")
        self.date_to.setAccessibleName(self.tr("Usage to day"))
        self.date_to.setToolTip(self.tr("Last day shown, included (UTC day)"))
        for edit in (self.date_from, self.date_to):
            edit.setCalendarPopup(True)
            edit.setDisplayFormat("yyyy-MM-dd")
            edit.setEnabled(False)
            edit.dateChanged.connect(self._custom_changed)
        self.granularity_combo = QComboBox()
        self.granularity_combo.setObjectName("usageGranularity")
        self.granularity_combo.setAccessibleName(self.tr("Usage bar size"))
        self.granularity_combo.setToolTip(
            self.tr("One bar per day, week (from Monday) or month"))
        for label, grain in GRANULARITIES:
            self.granularity_combo.addItem(self.tr(label), grain.value)
        self.apart_box = QCheckBox(self.tr("Show failed and refunded apart"))
        self.apart_box.setObjectName("usageApart")
        self.apart_box.setAccessibleName(self.tr("Show failed and refunded credits apart"))
        self.apart_box.setToolTip(self.tr(
            "Split each bar: succeeded charges, failed charges (hatched, above) and "
            "refunded credits (hatched, below the axis)"))
        # A push button draws its menu arrow beside the text (a tool button's
        # overlaps it).
        self.features_button = QPushButton()
        self.features_button.setObjectName("usageFeatures")
        self.features_button.setText(self.tr("Features"))
        self.features_button.setAccessibleName(self.tr("Features shown in the usage chart"))
        self.features_button.setToolTip(
            self.tr("Show or hide features (as clicking the legend does)"))
        self.features_menu = QMenu(self.features_button)
        self.features_button.setMenu(self.features_menu)
        self.export_png_button = QPushButton(self.tr("Export PNG…"))
        self.export_png_button.setObjectName("exportChartsPng")
        self.export_png_button.setAccessibleName(self.tr("Export the charts as PNG"))
        self.export_svg_button = QPushButton(self.tr("Export SVG…"))
        self.export_svg_button.setObjectName("exportChartsSvg")
        self.export_svg_button.setAccessibleName(self.tr("Export the charts as SVG"))
        self.export_csv_button = QPushButton(self.tr("Export CSV…"))
        self.export_csv_button.setObjectName("exportUsageCsv")
        self.export_csv_button.setAccessibleName(self.tr("Export the usage figures as CSV"))
        self.export_png_button.clicked.connect(lambda: self._ask_export("png"))
        self.export_svg_button.clicked.connect(lambda: self._ask_export("svg"))
        self.export_csv_button.clicked.connect(lambda: self._ask_export("csv"))

        self.status = QLabel(self.tr("The charts load when this tab is shown."))
        self.status.setObjectName("usageStatus")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.message = QLabel()
        self.message.setObjectName("usageMessage")
        self.message.setWordWrap(True)
        self.message.hide()
        self._message_tone = "danger"

        # Charts.
        self.canvas = pg.GraphicsLayoutWidget()
        self.canvas.setObjectName("usageCharts")
        self.canvas.setAccessibleName(self.tr("Usage and balance charts"))
        self.canvas.setAccessibleDescription(self.tr(
            "Credits used per feature over time, and the balances over time with the "
            "billing resets and the forecast; the figures are in the forecast text and "
            "the CSV export"))
        self.canvas.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        # pyqtgraph keeps the view's scroll bars switched off; named all the same, as
        # every control is.
        self.canvas.horizontalScrollBar().setAccessibleName(self.tr("Charts horizontal scroll"))
        self.canvas.verticalScrollBar().setAccessibleName(self.tr("Charts vertical scroll"))
        self.canvas.setMinimumHeight(CHARTS_MIN_HEIGHT)
        self.canvas.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        # Side by side, each chart twice as tall as one above the other; each legend in
        # a row of its own under its chart, so it never hides a bar.
        self.usage_plot = self.canvas.addPlot(
            row=0, col=0, axisItems={"bottom": DateAxis(), "left": CreditAxis()})
        self.usage_legend = pg.LegendItem(colCount=3)
        self.canvas.addItem(self.usage_legend, row=1, col=0)
        self.balance_plot = self.canvas.addPlot(
            row=0, col=1, axisItems={"bottom": DateAxis(), "left": CreditAxis()})
        self.balance_legend = pg.LegendItem(colCount=3)
        self.canvas.addItem(self.balance_legend, row=1, col=1)
        self.balance_plot.setXLink(self.usage_plot)
        for column in (0, 1):
            self.canvas.ci.layout.setColumnStretchFactor(column, 1)
        for plot in (self.usage_plot, self.balance_plot):
            plot.setMenuEnabled(False)
            plot.hideButtons()
            plot.setMouseEnabled(x=True, y=False)
            plot.showGrid(x=False, y=True, alpha=0.25)
        self.bars = StackedBars(self.usage_plot, self.usage_legend, parent=self)
        # Kept from one drawing to the next (see _draw_balances); only the reset lines,
        # as many as the range has, are made anew.
        self._balance_curves: dict[str, pg.PlotDataItem] = {}
        self._reset_lines: list[pg.InfiniteLine] = []
        self._resets_entry = pg.PlotDataItem()
        self._projection = self.balance_plot.plot([], [])
        self._run_out = pg.ScatterPlotItem([], [], symbol="x", size=12)
        self.balance_plot.addItem(self._run_out)
        # The legend entries after the four balance lines (resets, forecast), in order.
        self._legend_tail: list[pg.PlotDataItem] = []
        self.balance_legend.sigSampleClicked.connect(self._balance_entry_clicked)
        self.bars.visibility_changed.connect(self._feature_toggled)
        self.usage_tip = HoverTip(self.canvas, self.usage_plot, self._usage_text, parent=self)
        self.balance_tip = HoverTip(self.canvas, self.balance_plot, self._balance_text,
                                    parent=self)

        # The forecast.
        self.forecast_text = QPlainTextEdit()
        self.forecast_text.setObjectName("forecastText")
        self.forecast_text.setAccessibleName(self.tr("Credits forecast"))
        self.forecast_text.setAccessibleDescription(self.tr(
            "Plain sentences about the account's pace, run-out date, unused plan credits "
            "and the plan that would fit, to paste into a reply"))
        self.forecast_text.setReadOnly(True)
        lines = self.forecast_text.fontMetrics().lineSpacing()
        self.forecast_text.setMinimumHeight(lines * 3 + 12)
        # Its three or four sentences; more scroll within it.
        self.forecast_text.setMaximumHeight(lines * 4 + 12)
        self.copy_button = QPushButton(self.tr("Copy"))
        self.copy_button.setObjectName("copyForecast")
        self.copy_button.setAccessibleName(self.tr("Copy the forecast"))
        self.copy_button.setToolTip(self.tr("Copy the forecast sentences to the clipboard"))
        self.copy_button.setEnabled(False)
        self.copy_button.clicked.connect(self.copy_forecast)

        controls = QHBoxLayout()
        controls.addWidget(self.range_combo)
        controls.addWidget(self.date_from)
        controls.addWidget(QLabel(self.tr("to")))
        controls.addWidget(self.date_to)
        controls.addWidget(self.granularity_combo)
        controls.addWidget(self.apart_box)
        controls.addWidget(self.features_button)
        controls.addStretch(1)
        controls.addWidget(self.export_png_button)
        controls.addWidget(self.export_svg_button)
        controls.addWidget(self.export_csv_button)
        forecast_row = QHBoxLayout()
        forecast_row.addWidget(self.forecast_text, 1)
        forecast_row.addWidget(self.copy_button, 0, Qt.AlignmentFlag.AlignTop)
        body = QWidget()
        body.setObjectName("usageBody")
        body_layout = QVBoxLayout(body)
        body_layout.setContentsMargins(0, 0, 0, 0)
        body_layout.addWidget(self.canvas, 1)
        body_layout.addLayout(forecast_row)
        # The charts and the forecast scroll when the tab is shorter than they need
        # (a 768-pixel screen); the controls above stay in view.
        self.charts_area = QScrollArea()
        self.charts_area.setObjectName("usageScroll")
        self.charts_area.setAccessibleName(self.tr("Usage charts and forecast"))
        self.charts_area.setFrameShape(QFrame.Shape.NoFrame)
        self.charts_area.setWidgetResizable(True)
        self.charts_area.setWidget(body)
        self.charts_area.horizontalScrollBar().setAccessibleName(
            self.tr("Usage charts and forecast, sideways scroll"))
        self.charts_area.verticalScrollBar().setAccessibleName(
            self.tr("Usage charts and forecast, vertical scroll"))
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 6, 0, 0)
        layout.addLayout(controls)
        layout.addWidget(self.status)
        layout.addWidget(self.message)
        layout.addWidget(self.charts_area, 1)

        self._apply_palette()
        self.range_combo.currentIndexChanged.connect(self._range_changed)
        self.granularity_combo.currentIndexChanged.connect(self._controls_changed)
        self.apart_box.toggled.connect(self._apart_toggled)
        self._update_exports()

    # -- what the view does -----------------------------------------------------------------

    @property
    def started(self) -> bool:
        """Whether the charts were asked for at least once."""
        return self._started

    @property
    def is_loading(self) -> bool:
        return self._job is not None

    @property
    def exporting(self) -> bool:
        return self._export_job is not None

    @property
    def data(self) -> ChartData | None:
        """What is drawn (None until the first answer)."""
        return self._data

    @property
    def hover_text(self) -> str:
        """The tooltip last shown over the usage chart ("" for none)."""
        return self.usage_tip.text

    def current_request(self) -> ChartRequest:
        preset = RangePreset(str(self.range_combo.currentData()))
        custom = None
        if preset is RangePreset.CUSTOM:
            first = self.date_from.date().toPython()
            last = self.date_to.date().toPython()
            assert isinstance(first, date) and isinstance(last, date)
            custom = (first, last)
        return ChartRequest(preset, Granularity(str(self.granularity_combo.currentData())),
                            custom)

    def set_range(self, preset: RangePreset, custom: tuple[date, date] | None = None) -> None:
        """Choose a range as the combo does (custom days given as first, last)."""
        if custom is not None:
            for edit, day in ((self.date_from, custom[0]), (self.date_to, custom[1])):
                edit.blockSignals(True)
                edit.setDate(_qdate(day))
                edit.blockSignals(False)
        index = self.range_combo.findData(preset.value)
        if index == self.range_combo.currentIndex():
            self._range_changed()
        else:
            self.range_combo.setCurrentIndex(index)

    def set_granularity(self, granularity: Granularity) -> None:
        self.granularity_combo.setCurrentIndex(
            self.granularity_combo.findData(granularity.value))

    @Slot()
    def load(self) -> None:
        """Read the charts for the controls' request; an older request still under way
        is discarded."""
        self._started = True
        if self._job is not None:
            self._job.discard()
        request = self.current_request()
        db, account = self._db, self.account_id
        job = self._worker.submit(lambda: load_chart_data(
            db, account, preset=request.preset, granularity=request.granularity,
            custom=request.custom))
        job.succeeded.connect(self._arrived)
        job.failed.connect(self._failed)
        self._job = job
        self.message.hide()
        self.status.setText(self.tr("Loading the usage…"))

    @Slot()
    def refresh(self) -> None:
        """Read again if the charts were shown before (F5, or a change to the account)."""
        if self._started:
            self.load()

    def shutdown(self) -> None:
        """The tab closes: results still on their way are not wanted."""
        if self._job is not None:
            self._job.discard()
            self._job = None

    def set_feature_visible(self, code: str, visible: bool) -> None:
        """Show or hide a feature's bars (as its legend entry and menu item do)."""
        self.bars.set_visible(code, visible)

    def feature_visible(self, code: str) -> bool:
        return self.bars.is_visible(code)

    def forecast_sentences(self) -> str:
        return self.forecast_text.toPlainText()

    @Slot()
    def copy_forecast(self) -> None:
        text = self.forecast_sentences()
        if text:
            QApplication.clipboard().setText(text)
            self.status.setText(self.tr("The forecast was copied to the clipboard."))

    # -- exports ------------------------------------------------------------------------------

    def export_png(self, path: str | Path) -> None:
        """Render both charts as PNG and save them to ``path`` (in the worker)."""
        self._export(path, "usage and balance charts as PNG",
                     lambda: render_png(self.canvas.ci))

    def export_svg(self, path: str | Path) -> None:
        """Render both charts as SVG and save them to ``path`` (in the worker)."""
        self._export(path, "usage and balance charts as SVG",
                     lambda: render_svg(self.canvas.ci))

    def export_csv(self, path: str | Path) -> None:
        """Save the usage figures of the features shown, bucket by bucket, as CSV."""
        def rows() -> bytes:
            assert self._data is not None
            shown = [f.code for f in self._data.series.features
                     if self.bars.is_visible(f.code)]
            rows = usage_csv_rows(self._data.series, shown)
            rows[0] = [self.tr(title) for title in CSV_HEADER]
            text = io.StringIO()
            csv.writer(text).writerows(rows)
            # With a byte order mark: spreadsheets then read accents right.
            return text.getvalue().encode("utf-8-sig")

        self._export(path, "usage figures as CSV", rows)

    def _ask_export(self, kind: str) -> None:
        if self._data is None or self._export_job is not None:
            return
        name = f"account-{self.account_id}-usage-{datetime.now().astimezone():%Y-%m-%d}"
        filters = {"png": self.tr("PNG images (*.png)"), "svg": self.tr("SVG images (*.svg)"),
                   "csv": self.tr("CSV files (*.csv)")}
        path, _kind = QFileDialog.getSaveFileName(
            self, self.tr("Export the charts as {kind}").format(kind=kind.upper()),
            str(Path.home() / f"{name}.{kind}"),
            f"{filters[kind]};;{self.tr('All files (*)')}")
        if not path:
            return
        if not Path(path).suffix:
            path += f".{kind}"
        {"png": self.export_png, "svg": self.export_svg, "csv": self.export_csv}[kind](path)

    def _export(self, path: str | Path, what: str, render: Callable[[], bytes]) -> None:
        if self._export_job is not None or self._actor is None or self._data is None:
            return
        try:
            data = render()
        except Exception as exc:
            # Drawing the chart for a file is pyqtgraph's work: a fault there is logged
            # and said plainly, and nothing is written.
            log.exception("could not render the %s", what)
            message = str(exc) if isinstance(exc, ValueError) else self.tr(RENDER_TROUBLE)
            self._show_message(message, failed=True)
            self.export_failed.emit(message)
            return
        db, actor, account = self._db, self._actor, self.account_id
        target = str(path)
        job = self._worker.submit(
            lambda: write_export(db, actor, account, target, data, what=what))
        job.succeeded.connect(self._export_done)
        job.failed.connect(self._export_error)
        self._export_job = job
        self._update_exports()

    @Slot(object)
    def _export_done(self, path: object) -> None:
        self._export_job = None
        self._update_exports()
        self._show_message(self.tr("Exported to {path}.").format(path=path), failed=False)
        self.exported.emit(str(path))

    @Slot(str)
    def _export_error(self, message: str) -> None:
        self._export_job = None
        self._update_exports()
        self._show_message(message, failed=True)
        self.export_failed.emit(message)

    def _update_exports(self) -> None:
        buttons = ((self.export_png_button, "PNG"), (self.export_svg_button, "SVG"),
                   (self.export_csv_button, "CSV"))
        if self._actor is None:
            allowed, reason = False, self.tr(NO_ACTOR_TIP)
        else:
            decision = role_decision(self._actor, Action.EXPORT)
            allowed, reason = decision.verdict is not Verdict.DENY, decision.reason
        for button, kind in buttons:
            if not allowed:
                enabled, tip = False, reason
            elif self._export_job is not None:
                enabled, tip = False, self.tr("An export is under way.")
            elif self._data is None:
                enabled, tip = False, self.tr("The charts have not loaded yet.")
            else:
                enabled, tip = True, self.tr(EXPORT_TIP).format(kind=kind)
            button.setEnabled(enabled)
            button.setToolTip(tip)
            button.setAccessibleDescription(tip)

    # -- answers ------------------------------------------------------------------------------

    @Slot(object)
    def _arrived(self, data: ChartData) -> None:
        self._job = None
        self._data = data
        self._draw()
        self._update_exports()
        self.loaded.emit(data)

    @Slot(str)
    def _failed(self, message: str) -> None:
        self._job = None
        self.status.setText("")
        self._show_message(message, failed=True)
        self.load_failed.emit(message)

    def _show_message(self, text: str, *, failed: bool) -> None:
        self._message_tone = "danger" if failed else "success"
        self._style_message()
        self.message.setText(text)
        self.message.show()

    # -- controls -----------------------------------------------------------------------------

    @Slot()
    def _range_changed(self) -> None:
        preset = RangePreset(str(self.range_combo.currentData()))
        custom = preset is RangePreset.CUSTOM
        self.date_from.setEnabled(custom)
        self.date_to.setEnabled(custom)
        grain = PRESET_GRANULARITY.get(preset)
        if grain is not None:
            self.granularity_combo.blockSignals(True)
            self.granularity_combo.setCurrentIndex(
                self.granularity_combo.findData(grain.value))
            self.granularity_combo.blockSignals(False)
        self._controls_changed()

    @Slot()
    def _custom_changed(self) -> None:
        if self.range_combo.currentData() == RangePreset.CUSTOM.value:
            self._controls_changed()

    @Slot()
    def _controls_changed(self) -> None:
        if self._started:
            self.load()

    @Slot(bool)
    def _apart_toggled(self, _checked: bool) -> None:
        if self._data is not None:
            self._draw_usage()

    @Slot(str, bool)
    def _feature_toggled(self, key: str, visible: bool) -> None:
        for action in self.features_menu.actions():
            if action.data() == key and action.isChecked() != visible:
                action.blockSignals(True)
                action.setChecked(visible)
                action.blockSignals(False)
        # The failed and refunded parts add up the features shown.
        if self.apart_box.isChecked() and key not in (FAILED_KEY, REFUNDED_KEY):
            self._draw_usage()
        self._show_summary()

    # -- drawing ------------------------------------------------------------------------------

    def _style_message(self) -> None:
        theme.set_style_sheet(self.message, f"color: {theme.css(self._message_tone)};")

    def _apply_palette(self) -> None:
        colors = apply_palette(self.canvas, self.palette(), [self.usage_plot,
                                                             self.balance_plot])
        self._fg = colors.foreground
        self._muted = colors.muted
        # The hatching of failed and refunded credits: greys of the palette in use.
        self._failed_color = theme.color("muted", self.palette())
        self._refunded_color = colors.foreground
        for legend in (self.usage_legend, self.balance_legend):
            legend.setLabelTextColor(colors.foreground)
        for plot in (self.usage_plot, self.balance_plot):
            # The bottom axis needs no "Date": its labels are dates, and the titles say
            # which clock; the room goes to the bars.
            plot.getAxis("left").setLabel(self.tr("Credits"), color=colors.foreground.name())
        self._style_message()

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if theme.is_palette_change(event):
            self._apply_palette()
            if self._data is not None:
                self._draw()

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if not self._started:
            self.load()

    def _draw(self) -> None:
        self._draw_usage()
        self._draw_balances()
        self._draw_forecast()
        self._fit_x()
        self._settle_layout()

    def _settle_layout(self) -> None:
        """Settle ranges, axis widths and the layout now, so that the next paint is the
        only one. Left to pyqtgraph, the y ranges are fitted at the paint, the credit axes
        find their label widths while painting and the layout follows new legend rows
        after it, and each of these asks for one more paint of the whole canvas."""
        self._lay_out()
        self.canvas.scene().prepareForPaint()
        image = QImage(1, 1, QImage.Format.Format_ARGB32_Premultiplied)
        painter = QPainter(image)
        try:
            for plot in (self.usage_plot, self.balance_plot):
                plot.getAxis("left").generateDrawSpecs(painter)
        finally:
            painter.end()
        self._lay_out()
        # A plot that changed size fits its y range again.
        self.canvas.scene().prepareForPaint()

    def _lay_out(self) -> None:
        # Each plot has a layout of its own inside the canvas's: the layout requests
        # pending (posted, and answered after the paint otherwise) are answered now.
        for item in (self.usage_plot, self.balance_plot, self.usage_legend,
                     self.balance_legend, self.canvas.ci):
            QApplication.sendPostedEvents(item, QEvent.Type.LayoutRequest)
        self.canvas.ci.layout.activate()

    def _series_style(self, series: UsageSeries) -> dict[str, QColor]:
        return {code: series_color(index) for index, code in enumerate(series.catalogue)}

    def _draw_usage(self) -> None:
        assert self._data is not None
        series = self._data.series
        colors = self._series_style(series)
        left = [day_seconds(b.start) for b in series.buckets]
        widths = [day_seconds(b.end) - day_seconds(b.start) for b in series.buckets]
        apart = self.apart_box.isChecked()
        bars: list[BarSeries] = []
        for feature in series.features:
            values = [v.succeeded_credits if apart else v.used for v in feature.values]
            bars.append(BarSeries(feature.code, feature.name, values, colors[feature.code]))
        if apart:
            shown = [f for f in series.features if self.bars.is_visible(f.code)]
            count = len(series.buckets)
            failed = [sum(f.values[i].failed_credits for f in shown) for i in range(count)]
            refunded = [sum(f.values[i].refunded_credits for f in shown) for i in range(count)]
            bars.append(BarSeries(FAILED_KEY, self.tr("Failed charges"), failed,
                                  self._failed_color, style=FAILED_BRUSH_STYLE))
            bars.append(BarSeries(REFUNDED_KEY, self.tr("Refunded"), refunded,
                                  self._refunded_color, below=True,
                                  style=REFUND_BRUSH_STYLE))
        self.bars.set_data(left, widths, bars)
        if apart:
            title = self.tr("Credits charged per feature, failed and refunded apart "
                            "({bars}, UTC days)")
        else:
            title = self.tr("Credits used per feature ({bars}, UTC days)")
        bar_words = self.tr(BAR_WORDS[series.granularity])
        self.usage_plot.setTitle(title.format(bars=bar_words), color=self._fg.name())
        self._fill_features_menu(series)
        self.usage_plot.enableAutoRange(axis="y")
        self._show_summary()

    def _fill_features_menu(self, series: UsageSeries) -> None:
        menu = self.features_menu
        if [a.data() for a in menu.actions()] == [f.code for f in series.features]:
            for action in menu.actions():
                action.setChecked(self.bars.is_visible(str(action.data())))
            return
        menu.clear()
        for feature in series.features:
            action = QAction(feature.name, menu)
            action.setCheckable(True)
            action.setChecked(self.bars.is_visible(feature.code))
            action.setData(feature.code)
            action.toggled.connect(
                lambda checked, code=feature.code: self.bars.set_visible(code, checked))
            menu.addAction(action)
        self.features_button.setEnabled(bool(series.features))

    def _show_summary(self) -> None:
        if self._data is None:
            return
        series = self._data.series
        shown = [f.code for f in series.features if self.bars.is_visible(f.code)]
        total = sum((f.total for f in series.features if f.code in shown), Usage())
        rng = series.range
        days = self.tr("{days} (UTC days)").format(days=range_text(rng.start, rng.last))
        if not series.features:
            self.status.setText(self.tr("No credits were used from {days}.").format(days=days))
            return
        hidden = len(series.features) - len(shown)
        note = counted(self.tr(" (%Ln feature(s) hidden)", "", hidden), hidden) if hidden else ""
        self.status.setText(self.tr(
            "{used} credits used from {days}{hidden}: {charges}, {failed} failed, "
            "{refunded} credits refunded.").format(
                used=fmt.credits_text(total.used), days=days, hidden=note,
                charges=counted(self.tr("%Ln charge(s)", "", total.charges), total.charges),
                failed=fmt.credits_text(total.failed),
                refunded=fmt.credits_text(total.refunded_credits)))

    def _draw_balances(self) -> None:
        assert self._data is not None
        plot = self.balance_plot
        history = self._data.balances
        times = [p.at.timestamp() for p in history.points]
        styles = {
            "plan": pg.mkPen(series_color(0), width=1.5),
            "purchased": pg.mkPen(series_color(3), width=1.5),
            "refund": pg.mkPen(series_color(2), width=1.5),
            "total": pg.mkPen(self._fg, width=2.5),
        }
        # The four lines and their legend entries are made once and given new points:
        # removing and adding them (and their legend rows) cost more than the drawing.
        if not self._balance_curves:
            for key, label in BALANCE_KEYS:
                # Steps are level and upright lines, which look the same without
                # antialiasing, and a busy account has thousands of them.
                curve = plot.plot([], [], pen=styles[key], antialias=False)
                self.balance_legend.addItem(curve, self.tr(label))
                self._balance_curves[key] = curve
        for key, _label in BALANCE_KEYS:
            values = [p.total if key == "total" else getattr(p, key) for p in history.points]
            xs, ys = step_points(times, values)
            self._balance_curves[key].setData(xs, ys, pen=styles[key])
        for line in self._reset_lines:
            plot.removeItem(line)
        self._reset_lines = []
        reset_pen = pg.mkPen(self._muted, width=1, style=Qt.PenStyle.DashLine)
        # The legend entry stands for every dashed line (it is never drawn itself);
        # the lines follow it when it was clicked off.
        self._resets_entry.setPen(reset_pen)
        shown = bool(self._resets_entry.isVisible())
        for reset in history.resets:
            line = pg.InfiniteLine(pos=reset.timestamp(), angle=90, pen=reset_pen,
                                   movable=False)
            line.setVisible(shown)
            plot.addItem(line)
            self._reset_lines.append(line)
        plot.setTitle(self.tr("Balances over time (local time)"), color=self._fg.name())
        plot.enableAutoRange(axis="y")

    def _set_legend_tail(self, entries: list[tuple[pg.PlotDataItem, str]]) -> None:
        """Put ``entries`` after the four balance lines in the legend, in this order;
        the legend is left alone when they are already there."""
        if [item for item, _label in entries] == self._legend_tail:
            return
        for item in self._legend_tail:
            self.balance_legend.removeItem(item)
        for item, label in entries:
            self.balance_legend.addItem(item, label)
        self._legend_tail = [item for item, _label in entries]

    @Slot(object)
    def _balance_entry_clicked(self, item: object) -> None:
        # Legend clicks show and hide a line; the reset entry does so for all of them.
        visible = bool(self._resets_entry.isVisible())
        if item is not self._resets_entry:
            return
        for line in self._reset_lines:
            line.setVisible(visible)

    def _draw_forecast(self) -> None:
        assert self._data is not None
        f = self._data.forecast
        tz = datetime.now().astimezone().tzinfo or UTC
        self.forecast_text.setPlainText("\n".join(f.sentences(tz)))
        self.copy_button.setEnabled(True)
        points = f.projection()
        history = self._data.balances
        tail: list[tuple[pg.PlotDataItem, str]] = []
        if history.resets:
            tail.append((self._resets_entry, self.tr("Billing reset")))
        fg = pg.mkPen(self._fg)
        # Only on a chart that reaches now: the projection starts from today's balance.
        if len(points) >= 2 and history.start <= points[0][0] <= history.end:
            xs = [t.timestamp() for t, _v in points]
            ys = [float(v) for _t, v in points]
            self._projection.setData(
                xs, ys, pen=pg.mkPen(self._fg, width=2, style=Qt.PenStyle.DotLine))
            tail.append((self._projection, self.tr("Forecast")))
            if f.run_out_at is not None:
                self._run_out.setData([xs[-1]], [0.0], pen=fg, brush=pg.mkBrush(self._fg))
            else:
                self._run_out.setData([], [])
        else:
            self._projection.setData([], [])
            self._run_out.setData([], [])
        self._set_legend_tail(tail)

    def _fit_x(self) -> None:
        assert self._data is not None
        rng = self._data.range
        low = day_seconds(rng.start)
        high = day_seconds(rng.end)
        points = self._data.forecast.projection()
        if points and low <= points[0][0].timestamp() <= high:
            high = max(high, points[-1][0].timestamp())
        self.usage_plot.setXRange(low, high, padding=0.01)

    # -- tooltips -------------------------------------------------------------------------------

    def _usage_text(self, x: float, _y: float) -> str | None:
        if self._data is None:
            return None
        series = self._data.series
        index = self.bars.bucket_at(x)
        if index is None:
            return None
        bucket = series.buckets[index]
        lines = [span_text(bucket.start, bucket.last)]
        shown = [f for f in series.features if self.bars.is_visible(f.code)]
        for feature in shown:
            u = feature.values[index]
            if u.charges == 0:
                continue
            lines.append(self.tr(
                "{feature}: {used} credits used ({charged} charged, {failed_credits} of them "
                "by {failed} failed; {refunded} refunded; {charges})").format(
                    feature=feature.name, used=fmt.credits_text(u.used),
                    charged=fmt.credits_text(u.credits),
                    failed_credits=fmt.credits_text(u.failed_credits),
                    failed=fmt.credits_text(u.failed),
                    refunded=fmt.credits_text(u.refunded_credits),
                    charges=counted(self.tr("%Ln charge(s)", "", u.charges), u.charges)))
        total = series.bucket_total(index, [f.code for f in shown])
        if len(lines) == 1:
            lines.append(self.tr("No credits used"))
        else:
            lines.append(self.tr("Total: {used} credits used").format(
                used=fmt.credits_text(total.used)))
        return "\n".join(lines)

    def _balance_text(self, x: float, _y: float) -> str | None:
        if self._data is None:
            return None
        history = self._data.balances
        first = history.points[0].at.timestamp()
        last = history.points[-1].at.timestamp()
        if not first <= x <= last:
            return None
        moment = datetime.fromtimestamp(x, UTC)
        point = history.at(moment)
        return "\n".join([
            f"{fmt.local_datetime(moment)} ({fmt.utc_datetime(moment)})",
            self.tr("Plan credits: {n}").format(n=fmt.credits_text(point.plan)),
            self.tr("Purchased credits: {n}").format(n=fmt.credits_text(point.purchased)),
            self.tr("Refund credits: {n}").format(n=fmt.credits_text(point.refund)),
            self.tr("Total: {n}").format(n=fmt.credits_text(point.total)),
        ])
