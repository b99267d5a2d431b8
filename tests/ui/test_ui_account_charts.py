"""The account's Usage tab: bars, balances, forecast, hover, legend toggles and exports,
drawn from a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import csv
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest
from PySide6.QtCore import QCoreApplication, QEvent, QObject, QPoint, QPointF, Qt
from PySide6.QtGui import QColor, QImage, QPalette
from PySide6.QtWidgets import QApplication, QWidget
from pytestqt.qtbot import QtBot
from services.factories import World, adjust, charge, refund
from sqlalchemy import select

from credits_desktop.services.account_charts import (
    CSV_COLUMNS,
    ChartData,
    Granularity,
    RangePreset,
    usage_series,
)
from credits_desktop.services.operations import Actor
from credits_desktop.store.models import AuditEvent
from credits_desktop.ui import theme
from credits_desktop.ui.account_charts import (
    CHARTS_MIN_HEIGHT,
    FAILED_KEY,
    REFUNDED_KEY,
    AccountCharts,
)
from credits_desktop.ui.charts_common import date_tick, day_seconds, step_points
from credits_desktop.ui.workers import Worker

from .conftest import MakeWindow
from .test_ui_theme import contrast

WAIT_MS = 10_000
NOW = datetime.now(UTC)
# Midnight (UTC) starting today: the usage is put on whole days before it, so that which
# day a charge falls on never depends on the time the tests run.
TODAY = datetime.combine(NOW.date(), time(), tzinfo=UTC)


@pytest.fixture
def worker(qtbot: QtBot) -> Iterator[Worker]:
    w = Worker()
    yield w
    w.wait_for_done()
    QCoreApplication.processEvents()


def recent_usage(world: World) -> None:
    """Charges of two features over the last days, one failed and refunded, one failed
    and not: every day and week of the current month has something to show."""
    for days in (1, 2, 4, 8):
        charge(world, 40, status="succeeded", at=TODAY - timedelta(days=days, hours=-9))
    charge(world, 8, status="succeeded", at=TODAY - timedelta(days=2, hours=-10),
           feature_code="url_brief")
    failed = charge(world, 25, at=TODAY - timedelta(days=3, hours=-9),
                    feature_code="url_brief").charge_id
    refund(world, world.support, failed, at=TODAY - timedelta(days=3, hours=-12))
    charge(world, 12, at=TODAY - timedelta(days=1, hours=-3), feature_code="url_brief")
    adjust(world, world.finance, 300, at=TODAY - timedelta(days=5, hours=-9))


def make_charts(qtbot: QtBot, world: World, worker: Worker,
                actor: Actor | None = None) -> AccountCharts:
    charts = AccountCharts(world.db, worker, world.account_id,
                           actor=actor if actor is not None else world.finance)
    qtbot.addWidget(charts, before_close_func=lambda _w: worker.wait_for_done())
    charts.resize(1100, 800)
    assert charts.current_request().preset is RangePreset.CURRENT_PERIOD
    # The last 30 days hold the usage whatever the day of the month the tests run on.
    charts.set_range(RangePreset.LAST_30_DAYS)
    assert not charts.started
    return charts


def shown(qtbot: QtBot, charts: AccountCharts) -> ChartData:
    with qtbot.waitSignal(charts.loaded, timeout=WAIT_MS) as blocker:
        charts.show()
    data = blocker.args[0]
    assert isinstance(data, ChartData)
    return data


def reload(qtbot: QtBot, charts: AccountCharts, change: object) -> ChartData:
    with qtbot.waitSignal(charts.loaded, timeout=WAIT_MS) as blocker:
        assert callable(change)
        change()
    data = blocker.args[0]
    assert isinstance(data, ChartData)
    return data


def heights(charts: AccountCharts, key: str) -> list[float]:
    return [top - bottom for bottom, top in charts.bars.drawn(key)]


def test_the_tab_loads_when_first_shown_and_draws_the_rollup(
    qtbot: QtBot, world: World, worker: Worker
) -> None:
    recent_usage(world)
    charts = make_charts(qtbot, world, worker)
    assert not charts.started and charts.data is None
    data = shown(qtbot, charts)
    assert charts.started and not charts.is_loading
    assert data.range.days == 30 and data.range.last == datetime.now(UTC).date()
    assert data.series.granularity is Granularity.DAY
    expected = usage_series(world.db, world.account_id, start=data.range.start,
                            end=data.range.end, granularity="day")
    assert data.series == expected
    for feature in expected.features:
        assert heights(charts, feature.code) == [float(v.used) for v in feature.values]
    # The stack: url_brief sits on ad_image (catalogue order by name).
    codes = [f.code for f in expected.features]
    assert codes == ["ad_image", "url_brief"]
    first = charts.bars.drawn("ad_image")
    second = charts.bars.drawn("url_brief")
    assert all(b2 == t1 for (_b1, t1), (b2, _t2) in zip(first, second, strict=True))
    # One day per bar, on the day's UTC midnight.
    item = charts.bars.item("ad_image")
    assert item.opts["x0"][0] > day_seconds(data.range.start)
    assert item.opts["x0"][0] < day_seconds(data.range.start + timedelta(days=1))
    # The balances end on the cards' figures; the forecast is written out.
    assert data.balances.points[-1].total == data.summary.total
    text = charts.forecast_sentences()
    assert text.startswith("At your recent pace of about")
    assert "plan resets on" in text or "plan reset on" in text
    assert charts.copy_button.isEnabled()
    labels = [label.text for _sample, label in charts.balance_legend.items]
    assert labels == ["Plan credits", "Purchased credits", "Refund credits", "Total",
                      "Billing reset", "Forecast"]
    titles = charts.usage_plot.titleLabel.text
    assert "Credits used per feature" in titles
    assert "credits used from" in charts.status.text()


def test_the_chart_follows_the_palette(qtbot: QtBot, world: World, worker: Worker) -> None:
    charts = make_charts(qtbot, world, worker)
    base = charts.palette().color(QPalette.ColorRole.Base)
    assert charts.canvas.backgroundBrush().color() == base
    palette = charts.palette()
    palette.setColor(QPalette.ColorRole.Base, Qt.GlobalColor.black)
    palette.setColor(QPalette.ColorRole.Text, Qt.GlobalColor.white)
    charts.setPalette(palette)
    assert charts.canvas.backgroundBrush().color() == Qt.GlobalColor.black
    axis = charts.usage_plot.getAxis("left")
    assert axis.textPen().color() == Qt.GlobalColor.white


def test_switching_range_and_granularity_redraws(
    qtbot: QtBot, world: World, worker: Worker
) -> None:
    recent_usage(world)
    charts = make_charts(qtbot, world, worker)
    shown(qtbot, charts)
    weeks = reload(qtbot, charts, lambda: charts.set_granularity(Granularity.WEEK))
    assert weeks.series.granularity is Granularity.WEEK
    assert all(b.start.weekday() == 0 for b in weeks.series.buckets[1:])
    assert charts.bars.bucket_count == len(weeks.series.buckets)
    assert sum(heights(charts, "ad_image")) == weeks.series.feature("ad_image").total.used

    year = reload(qtbot, charts, lambda: charts.set_range(RangePreset.LAST_12_MONTHS))
    # A year reads by month: the granularity follows the preset.
    assert charts.current_request().granularity is Granularity.MONTH
    assert year.series.granularity is Granularity.MONTH
    assert len(year.series.buckets) == 12
    assert heights(charts, "ad_image")[-1] >= 0
    assert sum(heights(charts, "ad_image")) == 160.0

    first, last = TODAY.date() - timedelta(days=3), TODAY.date()
    custom = reload(qtbot, charts,
                    lambda: charts.set_range(RangePreset.CUSTOM, (first, last)))
    assert charts.date_from.isEnabled() and charts.date_to.isEnabled()
    assert custom.range.start == first and custom.range.last == last
    # A custom range keeps the bar size chosen.
    assert custom.series.granularity is Granularity.MONTH
    days = reload(qtbot, charts, lambda: charts.set_granularity(Granularity.DAY))
    assert len(days.series.buckets) == 4

    # A range in the past has no forecast line (it starts from today's balance).
    past = reload(qtbot, charts, lambda: charts.set_range(
        RangePreset.CUSTOM, (date(2026, 1, 1), date(2026, 1, 31))))
    assert past.series.total.charges == 0
    labels = [label.text for _sample, label in charts.balance_legend.items]
    assert "Forecast" not in labels and "Billing reset" in labels

    # The current billing period: from the account's period start to its next reset.
    period = reload(qtbot, charts, lambda: charts.set_range(RangePreset.CURRENT_PERIOD))
    assert period.summary.period_start is not None and period.summary.next_reset is not None
    assert period.range.start == period.summary.period_start.date()
    assert period.range.end == period.summary.next_reset.date()
    assert period.series.granularity is Granularity.DAY
    # A later request makes the older one's answer unwanted.
    charts.load()
    older = charts._job
    charts.load()
    assert older is not None and older.discarded
    qtbot.waitUntil(lambda: not charts.is_loading, timeout=WAIT_MS)


def test_a_reversed_custom_range_says_why(qtbot: QtBot, world: World, worker: Worker) -> None:
    charts = make_charts(qtbot, world, worker)
    shown(qtbot, charts)
    with qtbot.waitSignal(charts.load_failed, timeout=WAIT_MS) as blocker:
        charts.set_range(RangePreset.CUSTOM, (date(2026, 3, 5), date(2026, 3, 1)))
    assert blocker.args == ["The range must end on or after the day it starts."]
    assert charts.message.text() == blocker.args[0]


def click_legend(qtbot: QtBot, charts: AccountCharts, label: str) -> None:
    found = [sample for sample, text in charts.usage_legend.items if text.text == label]
    assert len(found) == 1, f"no legend entry {label!r}"
    sample = found[0]

    def where() -> QPoint:
        return charts.canvas.mapFromScene(sample.sceneBoundingRect().center())

    # The legend sits in the charts' layout, which settles after the drawing.
    qtbot.waitUntil(lambda: charts.canvas.itemAt(where()) is sample, timeout=WAIT_MS)
    qtbot.mouseClick(charts.canvas.viewport(), Qt.MouseButton.LeftButton, pos=where())


def test_legend_and_menu_toggle_features(qtbot: QtBot, world: World, worker: Worker) -> None:
    recent_usage(world)
    charts = make_charts(qtbot, world, worker)
    data = shown(qtbot, charts)
    image = [float(v.used) for v in data.series.feature("ad_image").values]
    brief = [float(v.used) for v in data.series.feature("url_brief").values]
    tops = [charts.bars.top(i) for i in range(len(image))]
    assert tops == [a + b for a, b in zip(image, brief, strict=True)]

    click_legend(qtbot, charts, "Ad image")
    qtbot.waitUntil(lambda: not charts.feature_visible("ad_image"), timeout=WAIT_MS)
    assert heights(charts, "ad_image") == [0.0] * len(image)
    assert not charts.bars.item("ad_image").isVisible()
    # url_brief drops to the axis.
    assert [bottom for bottom, _top in charts.bars.drawn("url_brief")] == [0.0] * len(brief)
    assert [charts.bars.top(i) for i in range(len(image))] == brief
    menu = {a.data(): a for a in charts.features_menu.actions()}
    assert not menu["ad_image"].isChecked() and menu["url_brief"].isChecked()
    assert "1 feature hidden" in charts.status.text()

    # The menu (the keyboard's way) shows it again.
    menu["ad_image"].setChecked(True)
    assert charts.feature_visible("ad_image")
    assert [charts.bars.top(i) for i in range(len(image))] == tops
    charts.set_feature_visible("url_brief", False)
    assert not menu["url_brief"].isChecked()
    assert [charts.bars.top(i) for i in range(len(image))] == image
    # A hidden feature stays hidden when the data is read again.
    reload(qtbot, charts, lambda: charts.set_granularity(Granularity.WEEK))
    assert not charts.feature_visible("url_brief")
    assert heights(charts, "url_brief") == [0.0] * charts.bars.bucket_count


class PaintCounter(QObject):
    """Counts the paint events of a widget."""

    def __init__(self, widget: QWidget) -> None:
        super().__init__()
        self.count = 0
        widget.installEventFilter(self)

    def eventFilter(self, _watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Paint:
            self.count += 1
        return False


def layout_state(charts: AccountCharts) -> list[object]:
    """Where the two plots are and what they show: what a late relayout or range fit
    would change after the drawing."""
    return [(plot.vb.sceneBoundingRect(), plot.vb.viewRange(),
             plot.getAxis("left").geometry())
            for plot in (charts.usage_plot, charts.balance_plot)]


def test_a_redraw_is_settled_before_it_is_painted(
    qtbot: QtBot, world: World, worker: Worker
) -> None:
    recent_usage(world)
    charts = make_charts(qtbot, world, worker)
    charts.resize(1100, 700)
    shown(qtbot, charts)
    curves = [sample.item for sample, _label in charts.balance_legend.items[:4]]
    paints = PaintCounter(charts.canvas.viewport())
    settled: list[tuple[int, list[object]]] = []
    charts.loaded.connect(
        lambda _data: settled.append((paints.count, layout_state(charts))))

    year = reload(qtbot, charts, lambda: charts.set_range(RangePreset.LAST_12_MONTHS))
    qtbot.waitUntil(lambda: paints.count > settled[-1][0], timeout=WAIT_MS)
    QApplication.sendPostedEvents()
    QApplication.processEvents()
    # The ranges, axis widths and layout were final when the drawing ended: the paint
    # changed none of them (each change would have cost another paint of the canvas).
    assert layout_state(charts) == settled[-1][1]
    top = charts.balance_plot.vb.viewRange()[1][1]
    assert top >= max(p.total for p in year.balances.points)

    # The balance lines are the same items with new points, listed once each.
    labels = [label.text for _sample, label in charts.balance_legend.items]
    assert labels == ["Plan credits", "Purchased credits", "Refund credits", "Total",
                      "Billing reset", "Forecast"]
    assert [sample.item for sample, _label in charts.balance_legend.items[:4]] == curves
    total = curves[3].getData()
    assert list(total[1]) == step_points([p.at.timestamp() for p in year.balances.points],
                                         [p.total for p in year.balances.points])[1]


def test_failed_and_refunded_apart(qtbot: QtBot, world: World, worker: Worker) -> None:
    recent_usage(world)
    charts = make_charts(qtbot, world, worker)
    data = shown(qtbot, charts)
    charts.apart_box.setChecked(True)
    assert charts.bars.keys == ["ad_image", "url_brief", FAILED_KEY, REFUNDED_KEY]
    series = data.series
    count = len(series.buckets)
    failed = heights(charts, FAILED_KEY)
    refunded = charts.bars.drawn(REFUNDED_KEY)
    for i in range(count):
        total = series.bucket_total(i)
        assert failed[i] == total.failed_credits
        # Refunds hang below the axis.
        assert refunded[i] == (-float(total.refunded_credits), 0.0)
        # What is above the axis less what is below is what was used.
        assert charts.bars.top(i) - total.refunded_credits == total.used
    assert sum(failed) == 37 and -sum(b for b, _t in refunded) == 25
    assert "failed and refunded apart" in charts.usage_plot.titleLabel.text
    # Hiding url_brief takes its failed and refunded credits out too.
    charts.set_feature_visible("url_brief", False)
    assert sum(heights(charts, FAILED_KEY)) == 0
    assert sum(heights(charts, REFUNDED_KEY)) == 0
    charts.set_feature_visible("url_brief", True)
    charts.apart_box.setChecked(False)
    assert charts.bars.keys == ["ad_image", "url_brief"]


# Showing a tooltip raises its window, which the offscreen platform says it cannot do.
@pytest.mark.qt_log_ignore(r"This plugin does not support raise\(\)")
def test_hovering_a_bar_gives_its_days_and_figures(
    qtbot: QtBot, world: World, worker: Worker
) -> None:
    recent_usage(world)
    charts = make_charts(qtbot, world, worker)
    data = shown(qtbot, charts)
    series = data.series
    day = (TODAY - timedelta(days=2)).date()
    index = next(i for i, b in enumerate(series.buckets) if b.start == day)
    bucket = series.buckets[index]
    x = day_seconds(bucket.start) + 43_200
    y = charts.bars.top(index) / 2
    scene = charts.usage_plot.vb.mapViewToScene(QPointF(x, y))
    charts.usage_plot.scene().sigMouseMoved.emit(scene)
    qtbot.waitUntil(lambda: charts.hover_text != "", timeout=WAIT_MS)
    text = charts.hover_text
    assert text.splitlines()[0] == bucket.span_text
    assert "Ad image: 40 credits used (40 charged, 0 of them by 0 failed; 0 refunded; " \
           "1 charge)" in text
    assert "Total: 48 credits used" in text
    # Away from the bars: no tooltip.
    outside = charts.usage_plot.vb.mapViewToScene(
        QPointF(day_seconds(data.range.end) + 10 * 86_400, y))
    charts.usage_plot.scene().sigMouseMoved.emit(outside)
    qtbot.waitUntil(lambda: charts.hover_text == "", timeout=WAIT_MS)
    # The balance chart says the balances at that moment.
    point = data.balances.points[-1]
    scene = charts.balance_plot.vb.mapViewToScene(
        QPointF(point.at.timestamp() - 60, float(point.total)))
    charts.balance_plot.scene().sigMouseMoved.emit(scene)
    qtbot.waitUntil(lambda: charts.balance_tip.text != "", timeout=WAIT_MS)
    assert f"Total: {point.total:,}" in charts.balance_tip.text


def test_exports_png_svg_and_csv(qtbot: QtBot, world: World, worker: Worker,
                                 tmp_path: Path) -> None:
    recent_usage(world)
    charts = make_charts(qtbot, world, worker)
    data = shown(qtbot, charts)
    assert charts.export_png_button.isEnabled()

    png = tmp_path / "charts.png"
    with qtbot.waitSignal(charts.exported, timeout=WAIT_MS):
        charts.export_png(png)
    image = QImage(str(png))
    assert not image.isNull() and image.width() >= 1200 and image.height() > 100

    svg = tmp_path / "charts.svg"
    with qtbot.waitSignal(charts.exported, timeout=WAIT_MS):
        charts.export_svg(svg)
    root = ET.parse(svg).getroot()
    assert root.tag.endswith("svg")

    charts.set_feature_visible("url_brief", False)
    table = tmp_path / "usage.csv"
    with qtbot.waitSignal(charts.exported, timeout=WAIT_MS):
        charts.export_csv(table)
    with table.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle))
    assert tuple(rows[0]) == CSV_COLUMNS
    used = CSV_COLUMNS.index("Credits used")
    # The features shown: ad_image only.
    assert {r[2] for r in rows[1:]} == {"ad_image"}
    assert sum(int(r[used]) for r in rows[1:]) == data.series.feature("ad_image").total.used
    assert sum(int(r[used]) for r in rows[1:]) == sum(heights(charts, "ad_image"))
    events = world.db.read(lambda s: list(s.scalars(
        select(AuditEvent.detail).where(AuditEvent.action == "export"))))
    assert len(events) == 3 and all(f"account #{world.account_id}" in e for e in events)
    assert "Exported to" in charts.message.text()


def test_support_cannot_export(qtbot: QtBot, world: World, worker: Worker) -> None:
    charts = make_charts(qtbot, world, worker, actor=world.support)
    shown(qtbot, charts)
    for button in (charts.export_png_button, charts.export_svg_button,
                   charts.export_csv_button):
        assert not button.isEnabled()
        assert "export" in button.toolTip().lower()


def test_copy_puts_the_forecast_on_the_clipboard(
    qtbot: QtBot, world: World, worker: Worker
) -> None:
    recent_usage(world)
    charts = make_charts(qtbot, world, worker)
    data = shown(qtbot, charts)
    qtbot.mouseClick(charts.copy_button, Qt.MouseButton.LeftButton)
    text = QApplication.clipboard().text()
    assert text == charts.forecast_sentences()
    local = datetime.now().astimezone().tzinfo
    assert local is not None
    assert text.splitlines() == data.forecast.sentences(local)


def test_the_account_detail_has_a_lazy_usage_tab(
    qtbot: QtBot, world: World, make_window: MakeWindow
) -> None:
    recent_usage(world)
    window = make_window(world.manager)
    window.show()
    qtbot.waitUntil(lambda: window.model.rowCount() > 0 and not window.model.is_loading,
                    timeout=WAIT_MS)
    detail = window.open_account(window.model.account(0))
    qtbot.waitUntil(lambda: detail.summary is not None and not detail.is_loading,
                    timeout=WAIT_MS)
    assert detail.lists.tabText(3) == "&Usage"
    assert detail.lists.widget(3) is detail.usage_tab
    # Not even built (nor pyqtgraph imported) until the tab is shown.
    assert detail.usage is None
    detail.lists.setCurrentIndex(3)
    usage = detail.usage
    assert usage is not None
    qtbot.waitUntil(lambda: usage.data is not None, timeout=WAIT_MS)
    assert usage.data is not None and usage.data.series.total.used > 0
    # F5 reads the charts again with the rest.
    with qtbot.waitSignal(usage.loaded, timeout=WAIT_MS):
        detail.refresh()
    # The tab fits a 768-pixel screen: the window can be 1280x720 with it shown, and
    # the charts keep a legible height (what does not fit scrolls, the controls stay).
    assert window.minimumSizeHint().height() <= 720
    window.resize(1280, 720)
    qtbot.waitUntil(lambda: window.height() == 720, timeout=WAIT_MS)
    assert usage.canvas.height() >= CHARTS_MIN_HEIGHT
    assert usage.range_combo.isVisible() and usage.export_png_button.isVisible()
    bar = usage.charts_area.verticalScrollBar()
    bar.setValue(bar.maximum())
    assert usage.copy_button.isVisible()
    window.worker.wait_for_done()


def test_the_features_menu_arrow_has_room(qtbot: QtBot, world: World, worker: Worker) -> None:
    charts = make_charts(qtbot, world, worker)
    button = charts.features_button
    assert button.menu() is charts.features_menu
    # The arrow is drawn beside the text, not over it.
    text = button.fontMetrics().horizontalAdvance(button.text())
    assert button.sizeHint().width() >= text + 24


@pytest.fixture
def dark(qapp: QApplication) -> Iterator[QApplication]:
    """The dark palette for the test; the application's look as it was afterwards."""
    style, palette = qapp.style().name(), qapp.palette()
    theme.apply_theme(qapp, Qt.ColorScheme.Dark)
    yield qapp
    qapp.setStyle(style)
    qapp.setPalette(palette)


def test_the_charts_read_on_the_dark_palette(
    qtbot: QtBot, world: World, worker: Worker, dark: QApplication
) -> None:
    recent_usage(world)
    charts = make_charts(qtbot, world, worker)
    shown(qtbot, charts)
    charts.apart_box.setChecked(True)
    background = charts.canvas.backgroundBrush().color()
    assert background == theme.palette(Qt.ColorScheme.Dark).color(QPalette.ColorRole.Base)
    # Axes, titles and legends in the palette's text colour.
    for plot in (charts.usage_plot, charts.balance_plot):
        for side in ("left", "bottom"):
            assert contrast(plot.getAxis(side).textPen().color(), background) >= 3
    assert contrast(QColor(charts.usage_plot.titleLabel.opts["color"]), background) >= 3
    # The failed and refunded parts are greys of the dark palette, not near-black.
    for key in (FAILED_KEY, REFUNDED_KEY):
        assert contrast(charts.bars.series(key).color, background) >= 3, key
    # A message above the charts, in the palette's red.
    charts._show_message("The charts could not be read.", failed=True)
    shown_colour = charts.message.palette().color(QPalette.ColorRole.WindowText)
    assert shown_colour == theme.color("danger")
    assert contrast(shown_colour, charts.palette().color(QPalette.ColorRole.Window)) >= 3


def test_shared_helpers_label_dates_and_draw_steps() -> None:
    local = datetime(2026, 9, 4, 12, tzinfo=UTC).astimezone()
    stamp = local.timestamp()
    assert date_tick(stamp, 5 * 86_400) == f"{local.day} {local:%b}"
    assert date_tick(stamp, 31 * 86_400) == f"{local:%b} {local.year}"
    assert date_tick(stamp, 366 * 86_400) == str(local.year)
    assert date_tick(stamp, 3_600) == f"{local:%H:%M}"
    assert step_points([0, 10, 20], [5, 7, 3]) == (
        [0, 10, 10, 20, 20], [5, 5, 7, 7, 3])
    assert step_points([], []) == ([], [])
