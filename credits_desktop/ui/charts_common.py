"""Shared pyqtgraph pieces for the charts of Credits Desk (the account's Usage tab, the
managers' dashboard): look, axes, stacked bars, hover tooltips, legend toggles, export.

Everything here is generic: it knows numbers, colours and labels, never accounts or
services, so any chart can use it.

* :func:`configure` sets pyqtgraph's global options (antialiasing on) once;
  :func:`apply_palette` makes a chart follow the window's palette (white background
  and dark text in light mode, the reverse in dark mode) and returns the
  :class:`ChartColors` for the caller's own lines. Call it again on a palette change.
* :data:`PALETTE` and :func:`series_color`: the Okabe–Ito colours, told apart by
  people with every common form of colour blindness; :data:`FAILED_BRUSH_STYLE` and
  :data:`REFUND_BRUSH_STYLE` add hatching so that failed and refunded parts do not
  rely on colour alone.
* :class:`CreditAxis` labels credits with thousands separators (whole credits only);
  :class:`DateAxis` labels epoch seconds as local dates (:func:`date_tick`);
  :func:`day_seconds` puts a calendar day (its 00:00 UTC) on such an axis.
* :class:`StackedBars` draws several bar series stacked (``BarGraphItem`` with
  ``y0``), some above the axis and some below it, with a legend whose entries hide
  and show a series and restack the others.
* :class:`HoverTip` shows a tooltip for the point under the mouse
  (``scene().sigMouseMoved`` through a ``SignalProxy``), with the text a callback
  gives, and keeps the last text for tests and screen readers.
* :func:`step_points` turns a step series into drawable points.
* :func:`month_abbr`, :func:`bucket_label`, :func:`span_text` and :func:`range_text`
  write months, bars and spans of days in words that go through Qt's translation
  (context ``"Charts"``), so that every chart says them alike; :func:`counted` keeps
  the English forms of a translated text with a count right while no translator
  answers.
* :func:`render_png` and :func:`render_svg` render a chart (a plot, a layout such as
  ``GraphicsLayoutWidget.ci``, or a whole scene) to PNG or SVG bytes with
  pyqtgraph's ``ImageExporter`` / ``SVGExporter``, on the GUI thread; writing them
  to a file is the caller's job, off the GUI thread (the SVG exporter gets a small
  fix for the path data Qt 6.11 writes, see :func:`_tolerate_closed_paths`).

Typical use::

    configure()
    canvas = pg.GraphicsLayoutWidget()
    plot = canvas.addPlot(axisItems={"bottom": DateAxis(), "left": CreditAxis()})
    legend = pg.LegendItem(colCount=4)
    canvas.addItem(legend, row=1, col=0)
    bars = StackedBars(plot, legend)
    bars.set_data(lefts, widths, [BarSeries("a", "A", values, series_color(0))])
    tip = HoverTip(canvas, plot, lambda x, y: f"{x:.0f}")
    apply_palette(canvas, widget.palette(), [plot])
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

import pyqtgraph as pg
from pyqtgraph.exporters import ImageExporter, SVGExporter
from PySide6.QtCore import (
    QBuffer,
    QByteArray,
    QCoreApplication,
    QIODevice,
    QObject,
    QPoint,
    QPointF,
    Qt,
    Signal,
)
from PySide6.QtGui import QBrush, QColor, QImage, QImageWriter, QPalette
from PySide6.QtWidgets import QToolTip, QWidget

from .i18n import QT_TRANSLATE_NOOP, counted

__all__ = [
    "FAILED_BRUSH_STYLE",
    "PALETTE",
    "QT_TRANSLATE_NOOP",
    "REFUND_BRUSH_STYLE",
    "BarSeries",
    "ChartColors",
    "CreditAxis",
    "DateAxis",
    "HoverTip",
    "StackedBars",
    "apply_palette",
    "bucket_label",
    "configure",
    "counted",
    "credits_label",
    "date_tick",
    "day_seconds",
    "month_abbr",
    "range_text",
    "render_png",
    "render_svg",
    "series_color",
    "span_text",
    "step_points",
]

# Okabe & Ito's colour-blind-safe palette (without its black, which vanishes on a dark
# background; a mid grey takes its place, last).
PALETTE: tuple[str, ...] = (
    "#E69F00",  # orange
    "#56B4E9",  # sky blue
    "#009E73",  # bluish green
    "#0072B2",  # blue
    "#D55E00",  # vermilion
    "#CC79A7",  # reddish purple
    "#F0E442",  # yellow
    "#999999",  # grey
)
FAILED_BRUSH_STYLE = Qt.BrushStyle.BDiagPattern
REFUND_BRUSH_STYLE = Qt.BrushStyle.DiagCrossPattern

_configured = False



# Named as Qt names it: lupdate finds the texts by this name.
# The words of this module are translated in one context, whoever draws the chart.
CONTEXT = "Charts"
MONTH_ABBRS: tuple[str, ...] = (
    QT_TRANSLATE_NOOP("Charts", "Jan"), QT_TRANSLATE_NOOP("Charts", "Feb"),
    QT_TRANSLATE_NOOP("Charts", "Mar"), QT_TRANSLATE_NOOP("Charts", "Apr"),
    QT_TRANSLATE_NOOP("Charts", "May"), QT_TRANSLATE_NOOP("Charts", "Jun"),
    QT_TRANSLATE_NOOP("Charts", "Jul"), QT_TRANSLATE_NOOP("Charts", "Aug"),
    QT_TRANSLATE_NOOP("Charts", "Sep"), QT_TRANSLATE_NOOP("Charts", "Oct"),
    QT_TRANSLATE_NOOP("Charts", "Nov"), QT_TRANSLATE_NOOP("Charts", "Dec"),
)


def _tr(text: str) -> str:
    return QCoreApplication.translate(CONTEXT, text)


def month_abbr(month: int) -> str:
    """The short name of ``month`` (1-12), translated: ``3`` -> ``"Mar"``."""
    return _tr(MONTH_ABBRS[month - 1])


def bucket_label(start: date, granularity: str) -> str:
    """A short label for the bar starting on ``start`` whose size is ``granularity``
    ("day", "week" or "month"): "2026-03-05", "wk 2026-03-02", "Mar 2026"."""
    if granularity == "month":
        return _tr("{month} {year}").format(month=month_abbr(start.month), year=start.year)
    if granularity == "week":
        return _tr("wk {day}").format(day=start.isoformat())
    return start.isoformat()


def span_text(first: date, last: date) -> str:
    """The days of a bar in words, for tooltips: "2026-03-02 to 2026-03-08 (UTC)", or
    "2026-03-05 (UTC)" for one day."""
    if first == last:
        return _tr("{day} (UTC)").format(day=first.isoformat())
    return _tr("{first} to {last} (UTC)").format(first=first.isoformat(),
                                                 last=last.isoformat())


def range_text(first: date, last: date) -> str:
    """Days from ``first`` to ``last`` (included): "2026-03-01 to 2026-03-31"."""
    return _tr("{first} to {last}").format(first=first.isoformat(), last=last.isoformat())


def configure() -> None:
    """pyqtgraph's global options for every chart (antialiased lines); once per
    process, before the first chart is made."""
    global _configured
    if not _configured:
        pg.setConfigOptions(antialias=True)
        _configured = True


def series_color(index: int) -> QColor:
    """The colour of the ``index``-th series (cycles after eight)."""
    return QColor(PALETTE[index % len(PALETTE)])


def credits_label(value: float) -> str:
    """A credit amount as an axis shows it: ``12400`` -> ``"12,400"``."""
    return f"{round(value):,}"


def day_seconds(day: date) -> float:
    """00:00 UTC of ``day`` as epoch seconds: where the day starts on a :class:`DateAxis`."""
    return datetime.combine(day, time(), tzinfo=UTC).timestamp()


@dataclass(frozen=True)
class ChartColors:
    """The colours a chart takes from the palette."""

    background: QColor
    foreground: QColor
    muted: QColor


def apply_palette(view: pg.GraphicsView, palette: QPalette,
                  plots: Sequence[pg.PlotItem] = ()) -> ChartColors:
    """Paint ``view`` with the palette's base colour and the ``plots``' axes and titles
    with its text colour; returns the colours for the caller's own items."""
    colors = ChartColors(
        background=palette.color(QPalette.ColorRole.Base),
        foreground=palette.color(QPalette.ColorRole.Text),
        muted=palette.color(QPalette.ColorRole.PlaceholderText),
    )
    view.setBackground(colors.background)
    for plot in plots:
        for name in ("left", "bottom", "right", "top"):
            axis = plot.getAxis(name)
            axis.setPen(pg.mkPen(colors.foreground))
            axis.setTextPen(pg.mkPen(colors.foreground))
    return colors


class CreditAxis(pg.AxisItem):  # type: ignore[misc]
    """A value axis labelled in whole credits with thousands separators."""

    def __init__(self, orientation: str = "left", **kwargs: Any) -> None:
        super().__init__(orientation, **kwargs)
        self.enableAutoSIPrefix(False)

    def tickStrings(self, values: list[float], scale: float, spacing: float) -> list[str]:
        return [credits_label(v * scale) for v in values]

    def tickSpacing(self, minVal: float, maxVal: float, size: float) -> Any:
        # Whole credits: never a tick between two of them.
        levels = super().tickSpacing(minVal, maxVal, size)
        return [(max(step, 1.0), offset) for step, offset in levels]


class DateAxis(pg.DateAxisItem):  # type: ignore[misc]
    """A time axis (epoch seconds) labelled with local dates: "4 Sep", "Sep 2026",
    "2026", or times of day when zoomed in that far. Every label says its own day and
    month (pyqtgraph's own shows "30" beside "Sep" for 1 September, which reads as 30
    September)."""

    def __init__(self, orientation: str = "bottom", **kwargs: Any) -> None:
        super().__init__(orientation=orientation, **kwargs)

    def tickStrings(self, values: list[float], scale: float, spacing: float) -> list[str]:
        return [date_tick(v, spacing) for v in values]


def date_tick(value: float, spacing: float) -> str:
    """The label of a tick at ``value`` (epoch seconds) on a time axis whose ticks are
    ``spacing`` seconds apart, in local time."""
    try:
        moment = datetime.fromtimestamp(value, UTC).astimezone()
    except (OverflowError, OSError, ValueError):
        return ""
    day = 86_400
    month = month_abbr(moment.month)
    if spacing >= 360 * day:
        return f"{moment.year}"
    if spacing >= 28 * day:
        return _tr("{month} {year}").format(month=month, year=moment.year)
    if spacing >= day:
        return _tr("{day} {month}").format(day=moment.day, month=month)
    if spacing >= 60:
        if moment.hour == moment.minute == 0:
            return _tr("{day} {month} {time}").format(day=moment.day, month=month,
                                                      time=f"{moment:%H:%M}")
        return f"{moment:%H:%M}"
    return f"{moment:%H:%M:%S}"


# -- stacked bars ---------------------------------------------------------------------------


@dataclass(frozen=True)
class BarSeries:
    """One series of a stacked bar chart: a value per bucket.

    ``below`` series stack downwards from the axis (drawn negative), the others
    upwards. ``style`` is the brush style (hatching for failed or refunded parts).
    """

    key: str
    label: str
    values: Sequence[float]
    color: QColor
    below: bool = False
    style: Qt.BrushStyle = Qt.BrushStyle.SolidPattern


class StackedBars(QObject):
    """Stacked bar series on a plot, with a legend that hides and shows them.

    Buckets are given by their left edge and width (any unit, epoch seconds on a
    :class:`DateAxis`); each bar fills ``fill`` of its bucket. Hidden series are
    left out of the stack, so the others close up. A series stays hidden across
    :meth:`set_data` calls (by key), until shown again by its legend entry or
    :meth:`set_visible`.
    """

    # key, now visible: a legend click or set_visible changed a series.
    visibility_changed = Signal(str, bool)

    def __init__(self, plot: pg.PlotItem, legend: pg.LegendItem | None = None, *,
                 fill: float = 0.8, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._plot = plot
        self._legend = legend
        self._fill = fill
        self._left: list[float] = []
        self._widths: list[float] = []
        self._series: list[BarSeries] = []
        self._items: dict[str, pg.BarGraphItem] = {}
        self.hidden: set[str] = set()
        if legend is not None:
            legend.sigSampleClicked.connect(self._sample_clicked)

    @property
    def keys(self) -> list[str]:
        return [s.key for s in self._series]

    @property
    def bucket_count(self) -> int:
        return len(self._left)

    def series(self, key: str) -> BarSeries:
        for s in self._series:
            if s.key == key:
                return s
        raise KeyError(key)

    def item(self, key: str) -> pg.BarGraphItem:
        """The bar item drawing ``key`` (for tests and exports)."""
        return self._items[key]

    def set_data(self, left: Sequence[float], widths: Sequence[float],
                 series: Sequence[BarSeries]) -> None:
        """Draw ``series`` over buckets starting at ``left`` and ``widths`` wide. Items
        are kept when the keys are the same as before (a legend entry may be the one
        being clicked), and rebuilt otherwise."""
        if len(left) != len(widths) or any(len(s.values) != len(left) for s in series):
            raise ValueError("Every series needs one value per bucket.")
        self._left = [float(x) for x in left]
        self._widths = [float(w) for w in widths]
        same = [s.key for s in series] == self.keys
        self._series = list(series)
        if not same:
            self._rebuild()
        else:
            for s in self._series:
                self._items[s.key].setOpts(**self._look(s))
        self._restack()

    def clear(self) -> None:
        self.set_data([], [], [])

    def is_visible(self, key: str) -> bool:
        return key not in self.hidden

    def set_visible(self, key: str, visible: bool) -> None:
        """Show or hide a series (as its legend entry does) and restack the others."""
        if visible == self.is_visible(key):
            return
        if visible:
            self.hidden.discard(key)
        else:
            self.hidden.add(key)
        if key in self._items:
            self._items[key].setVisible(visible)
            self._restack()
            self._repaint_legend()
        self.visibility_changed.emit(key, visible)

    def drawn(self, key: str) -> list[tuple[float, float]]:
        """(bottom, top) of each bar of ``key`` as drawn; (0, 0) while it is hidden."""
        if not self.is_visible(key) or key not in self._items:
            return [(0.0, 0.0)] * len(self._left)
        opts = self._items[key].opts
        return [(float(y0), float(y0) + float(h)) for y0, h in
                zip(opts["y0"], opts["height"], strict=True)]

    def top(self, index: int) -> float:
        """The top of the visible stack above the axis in bucket ``index``."""
        return sum(float(s.values[index]) for s in self._series
                   if not s.below and self.is_visible(s.key))

    def bucket_at(self, x: float) -> int | None:
        """The bucket whose span contains ``x``, if any."""
        for index, (left, width) in enumerate(zip(self._left, self._widths, strict=True)):
            if left <= x < left + width:
                return index
        return None

    # -- inside ------------------------------------------------------------------------

    def _look(self, s: BarSeries) -> dict[str, Any]:
        margin = [(1 - self._fill) / 2 * w for w in self._widths]
        zeros = [0.0] * len(self._left)
        return {
            # Heights go with the positions (the bucket count may have changed);
            # the restack that follows sets the real ones.
            "y0": zeros,
            "height": zeros,
            "x0": [x + m for x, m in zip(self._left, margin, strict=True)],
            "width": [w * self._fill for w in self._widths],
            "brush": QBrush(s.color, s.style),
            "pen": pg.mkPen(s.color.darker(130), width=1),
        }

    def _rebuild(self) -> None:
        for item in self._items.values():
            self._plot.removeItem(item)
            if self._legend is not None:
                self._legend.removeItem(item)
        self._items = {}
        for s in self._series:
            look = self._look(s)
            item = pg.BarGraphItem(**look)
            self._plot.addItem(item)
            if self._legend is not None:
                self._legend.addItem(item, s.label)
            self._items[s.key] = item

    def _restack(self) -> None:
        up = [0.0] * len(self._left)
        down = [0.0] * len(self._left)
        for s in self._series:
            item = self._items[s.key]
            visible = self.is_visible(s.key)
            item.setVisible(visible)
            values = [max(0.0, float(v)) for v in s.values]
            if s.below:
                y0 = [d - v for d, v in zip(down, values, strict=True)]
                if visible:
                    down = y0
            else:
                y0 = list(up)
                if visible:
                    up = [u + v for u, v in zip(up, values, strict=True)]
            item.setOpts(y0=y0, height=values)

    def _repaint_legend(self) -> None:
        if self._legend is not None:
            for sample, _label in self._legend.items:
                sample.update()

    def _sample_clicked(self, item: object) -> None:
        # The legend has already flipped the item's visibility: follow it.
        for key in list(self._items):
            if self._items[key] is item:
                visible = bool(self._items[key].isVisible())
                if visible:
                    self.hidden.discard(key)
                else:
                    self.hidden.add(key)
                self._restack()
                self.visibility_changed.emit(key, visible)
                return


# -- hover ------------------------------------------------------------------------------------


class HoverTip(QObject):
    """A tooltip for the point of ``plot`` under the mouse.

    ``text_at(x, y)`` gives the text for a point in the plot's own coordinates (None
    or "" for nothing); mouse moves are rate-limited with a ``SignalProxy``. The last
    text is kept in :attr:`text` and announced by :attr:`changed`.
    """

    changed = Signal(str)

    def __init__(self, view: QWidget, plot: pg.PlotItem,
                 text_at: Callable[[float, float], str | None], *, rate: int = 30,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._view = view
        self._plot = plot
        self._text_at = text_at
        self.text = ""
        self._proxy = pg.SignalProxy(plot.scene().sigMouseMoved, rateLimit=rate,
                                     slot=self._moved)

    def _moved(self, event: tuple[Any, ...]) -> None:
        self.show_at(QPointF(event[0]))

    def show_at(self, scene_pos: QPointF) -> None:
        """Show the tooltip for a point of the scene (what a mouse move does)."""
        box = self._plot.vb.sceneBoundingRect()
        text = ""
        if box.contains(scene_pos):
            point = self._plot.vb.mapSceneToView(scene_pos)
            text = self._text_at(float(point.x()), float(point.y())) or ""
        if text == self.text:
            return
        self.text = text
        if text:
            graphics_view = self._plot.scene().views()[0]
            local = graphics_view.mapFromScene(scene_pos)
            where = graphics_view.viewport().mapToGlobal(QPoint(local.x(), local.y()))
            QToolTip.showText(where + QPoint(14, 14), text, self._view)
        else:
            QToolTip.hideText()
        self.changed.emit(text)


# -- lines --------------------------------------------------------------------------------


def step_points(times: Sequence[float], values: Sequence[float]) -> tuple[list[float],
                                                                          list[float]]:
    """Points drawing ``values[i]`` from ``times[i]`` until ``times[i + 1]``: each change
    is a vertical step, never a slope."""
    xs: list[float] = []
    ys: list[float] = []
    for index, (t, v) in enumerate(zip(times, values, strict=True)):
        if index:
            xs.append(t)
            ys.append(ys[-1])
        xs.append(t)
        ys.append(v)
    return xs, ys


# -- export -------------------------------------------------------------------------------


def render_png(item: Any, *, min_width: int = 1200) -> bytes:
    """``item`` (a plot, a layout such as ``GraphicsLayoutWidget.ci``, or a scene)
    rendered as PNG bytes, at least ``min_width`` pixels wide. GUI thread only."""
    exporter = ImageExporter(item)
    params = exporter.parameters()
    if int(params["width"]) <= 0 or int(params["height"]) <= 0:
        raise ValueError(_tr("The chart has not been laid out yet; show it first."))
    if int(params["width"]) < min_width:
        params["width"] = min_width
    image = exporter.export(toBytes=True)
    assert isinstance(image, QImage)
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    writer = QImageWriter(buffer, QByteArray(b"png"))
    written = writer.write(image)
    buffer.close()
    if not written:
        raise ValueError(_tr("The chart could not be drawn as PNG: {reason}.").format(
            reason=writer.errorString()))
    return bytes(data.data())


def render_svg(item: Any) -> bytes:
    """``item`` rendered as SVG (UTF-8 XML bytes). GUI thread only."""
    _tolerate_closed_paths()
    exporter = SVGExporter(item)
    params = exporter.parameters()
    if float(params["width"]) <= 0 or math.isnan(float(params["width"])):
        raise ValueError(_tr("The chart has not been laid out yet; show it first."))
    data = exporter.export(toBytes=True)
    assert isinstance(data, bytes)
    return data


def _tolerate_closed_paths() -> None:
    """Let pyqtgraph's SVG exporter read the paths Qt 6.11 writes.

    The exporter moves every path into place by reading its ``d`` attribute token by
    token as "x,y" pairs, but Qt now closes a path with a bare "Z" token, which it
    cannot split (pyqtgraph 0.14, issue #3485), so every export failed. The closing
    tokens are taken out before it reads a path and put back at their places after;
    a version of pyqtgraph that copes needs nothing, and this changes nothing for it.
    """
    module: Any = sys.modules[SVGExporter.__module__]
    original = module.correctCoordinates
    if getattr(original, "_keeps_closed_paths", False):
        return

    def correct(node: Any, defs: Any, item: Any, options: Any) -> Any:
        closed: list[tuple[Any, list[int]]] = []
        for path in node.getElementsByTagName("path"):
            tokens = path.getAttribute("d").split()
            marks = [i for i, token in enumerate(tokens) if token in ("Z", "z")]
            if marks:
                path.setAttribute("d", " ".join(t for t in tokens if t not in ("Z", "z")))
                closed.append((path, marks))
        result = original(node, defs, item, options)
        for path, marks in closed:
            tokens = path.getAttribute("d").split()
            for index in marks:
                tokens.insert(index, "Z")
            path.setAttribute("d", " ".join(tokens))
        return result

    correct._keeps_closed_paths = True  # type: ignore[attr-defined]
    module.correctCoordinates = correct
