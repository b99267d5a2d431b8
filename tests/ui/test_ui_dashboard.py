"""The managers' dashboard and the finance report view, on a real database (SQLite and
PostgreSQL): rendering, switching range, plan and granularity, legend toggles, hover,
the newest request winning, opening an account, and exports read back (PNG as an
image, SVG as XML, CSV and XLSX totals against the services' figures)."""

from __future__ import annotations

import csv
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import openpyxl
import pytest
from PySide6.QtCore import QCoreApplication, Qt
from PySide6.QtGui import QColor, QImage, QPalette
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot
from services.factories import World, adjust, charge, key, open_account, refund

from credits_desktop.services.dashboard import Granularity, dashboard
from credits_desktop.services.finance_report import (
    COLUMNS,
    RECONCILED_MARK,
    RECONCILES_COLUMN,
    finance_report,
)
from credits_desktop.services.operations import Actor
from credits_desktop.services.purchases import buy_package
from credits_desktop.ui import theme
from credits_desktop.ui.dashboard_view import (
    CHART_MIN_HEIGHT,
    CUSTOM,
    LAST_12_MONTHS,
    LAST_MONTH,
    TABLE_MIN_ROWS,
    THIS_MONTH,
    DashboardView,
)
from credits_desktop.ui.finance_report_view import FinanceReportView
from credits_desktop.ui.workers import Worker

from .test_ui_accessibility import own_widgets
from .test_ui_theme import contrast

WAIT_MS = 15_000
TODAY = date(2026, 2, 20)


@pytest.fixture
def worker(qtbot: QtBot) -> Iterator[Worker]:
    w = Worker()
    yield w
    w.wait_for_done()
    QCoreApplication.processEvents()


@pytest.fixture
def usage(world: World) -> int:
    """Charges of both accounts in January and February 2026 (features, models,
    failures), refunds, purchases; returns the other account's id."""
    db = world.db
    other = open_account(db, world.platform, name="Beta Media", email="ops@beta.test",
                         plan_code="growth", created_at=datetime(2026, 1, 2, tzinfo=UTC))
    buy_package(db, world.platform, account_id=other, package_code="pack_2000",
                payment_reference=key("pay"), idempotency_key=key("buy"),
                at=datetime(2026, 1, 3, tzinfo=UTC))
    adjust(world, world.finance, 900, at=world.at(hours=1))
    plan = [
        # (UTC day, account, feature, model, credits, failed)
        (date(2026, 1, 10), world.account_id, "ad_image", "flux-fast", 25, True),
        (date(2026, 1, 12), other, "ad_image", "imagen-ultra", 60, False),
        (date(2026, 1, 20), world.account_id, "url_brief", None, 8, False),
        (date(2026, 1, 28), other, "video_script", None, 15, True),
        (date(2026, 2, 2), other, "ad_image", "flux-fast", 25, False),
        (date(2026, 2, 3), world.account_id, "ad_image", "imagen-ultra", 60, True),
        (date(2026, 2, 9), other, "review_mining", None, 20, False),
        (date(2026, 2, 16), other, "ad_image", None, 40, True),
        (date(2026, 2, 18), world.account_id, "url_brief", None, 8, False),
    ]
    ids = []
    for day, account, feature, model, credits, failed in plan:
        at = datetime(day.year, day.month, day.day, 11, tzinfo=UTC)
        ids.append(charge(world, credits, status="failed" if failed else "succeeded", at=at,
                          account_id=account, feature_code=feature, model=model).charge_id)
    refund(world, world.support, ids[0], at=datetime(2026, 1, 11, tzinfo=UTC))
    refund(world, world.support, ids[5], at=datetime(2026, 2, 4, tzinfo=UTC))
    buy_package(db, world.platform, account_id=world.account_id, package_code="pack_500",
                payment_reference=key("pay"), idempotency_key=key("buy"),
                at=datetime(2026, 2, 5, tzinfo=UTC))
    return other


class _LeftClick:
    """What a left click on a legend entry hands its handler."""

    def button(self) -> Qt.MouseButton:
        return Qt.MouseButton.LeftButton

    def accept(self) -> None:
        pass


def make_view(qtbot: QtBot, world: World, worker: Worker,
              actor: Actor | None = None) -> DashboardView:
    view = DashboardView(world.db, worker, actor or world.manager, today=TODAY)
    qtbot.addWidget(view, before_close_func=lambda _v: worker.wait_for_done())
    view.resize(1300, 900)
    return view


def shown(qtbot: QtBot, view: DashboardView) -> DashboardView:
    with qtbot.waitSignal(view.loaded, timeout=WAIT_MS):
        view.show()
    # The plan list arrives by a job of its own.
    qtbot.waitUntil(lambda: view.plan_filter.count() == 5, timeout=WAIT_MS)
    return view


def reloaded(qtbot: QtBot, view: DashboardView, change: object) -> None:
    """Make a filter change (a callable) and wait until its figures have arrived."""
    with qtbot.waitSignal(view.loaded, timeout=WAIT_MS):
        assert callable(change)
        change()


def assert_shows_service_figures(view: DashboardView) -> None:
    """What the view shows equals a fresh call of the service for its query."""
    q = view.query
    assert q is not None and view.usage is not None
    d = dashboard(view._db, start=q.range.start, end=q.range.end, granularity=q.granularity,
                  plan_code=q.plan_code)
    assert view.usage == d.usage and view.purchases == d.purchases
    assert view.active == d.accounts.active and view.top == d.accounts.top
    assert view.tiles["used"].value.text() == f"{d.usage.used.current:,}"
    assert view.tiles["used"].previous.text() == f"previous period: {d.usage.used.previous:,}"
    assert view.tiles["refunded"].value.text() == f"{d.usage.refunded.current:,}"
    assert view.tiles["purchased"].value.text() == f"{d.purchases.sold.current:,}"
    assert view.tiles["active"].value.text() == f"{d.accounts.active.current:,}"
    rate = d.usage.failed_rate.current
    assert view.tiles["failed"].value.text() == ("—" if rate is None else f"{rate * 100:.1f}%")
    bars = view.chart["usage"].bars
    assert bars is not None and bars.keys == [f.code for f in d.usage.features]
    assert bars.bucket_count == len(d.usage.buckets)
    assert view.top_model.rowCount() == len(d.accounts.top)


# -- the dashboard ---------------------------------------------------------------------------


def test_the_dashboard_renders_the_services_figures(
    qtbot: QtBot, world: World, usage: int, worker: Worker,
) -> None:
    view = shown(qtbot, make_view(qtbot, world, worker))
    q = view.query
    assert q is not None and q.granularity is Granularity.WEEK
    # Last 90 days to 20 Feb 2026.
    assert (q.range.start, q.range.last) == (date(2025, 11, 23), TODAY)
    assert_shows_service_figures(view)
    assert view.tiles["used"].value.text() == "261"
    assert view.tiles["active"].value.text() == "2"
    assert view.tiles["purchased"].value.text() == "3,000"
    assert [view.top_model.account_at(r).name for r in range(2)] == ["Beta Media", "Acme Ads"]
    assert "2025-11-23 to 2026-02-20 (UTC days), all plans" in view.status.text()
    assert not view.is_loading


def test_switching_range_plan_and_granularity(
    qtbot: QtBot, world: World, usage: int, worker: Worker,
) -> None:
    view = shown(qtbot, make_view(qtbot, world, worker))
    reloaded(qtbot, view, lambda: view.range_preset.setCurrentIndex(THIS_MONTH))
    assert view.query is not None and view.query.range.start == date(2026, 2, 1)
    assert_shows_service_figures(view)
    # This month to date against the same days of January.
    assert view.usage is not None and view.usage.previous.start == date(2026, 1, 1)
    assert view.tiles["used"].value.text() == f"{25 + 60 + 20 + 40 + 8:,}"
    # 1-20 January: the charges of 10, 12 and 20 January.
    assert view.tiles["used"].previous.text() == f"previous period: {25 + 60 + 8:,}"

    reloaded(qtbot, view, lambda: view.range_preset.setCurrentIndex(LAST_MONTH))
    accounts_before = (view.active, view.top)
    reloaded(qtbot, view, lambda: view.set_granularity(Granularity.DAY))
    assert_shows_service_figures(view)
    assert view.usage is not None and len(view.usage.buckets) == 31
    # Only the granularity changed: the accounts figures were not read again.
    assert view.active is accounts_before[0] and view.top is accounts_before[1]
    ticks = view.chart["usage"].plot.getAxis("bottom")._tickLevels[0]
    assert ticks[0] == (0.0, "2026-01-01") and len(ticks) <= 12

    reloaded(qtbot, view, lambda: view.set_plan("growth") or None)
    assert_shows_service_figures(view)
    assert view.usage is not None and view.usage.plan_code == "growth"
    assert [t.name for t in view.top or ()] == ["Beta Media"]
    assert "Growth" in view.chart["usage"].plot.titleLabel.text

    reloaded(qtbot, view, lambda: view.set_custom_range(date(2026, 1, 15), date(2026, 2, 4)))
    assert view.range_preset.currentIndex() == CUSTOM
    assert view.query is not None and view.query.range.end == date(2026, 2, 5)
    reloaded(qtbot, view, lambda: view.set_granularity(Granularity.MONTH))
    assert_shows_service_figures(view)
    assert [b.label for b in view.usage.buckets] == ["Jan 2026", "Feb 2026"]

    reloaded(qtbot, view, lambda: view.range_preset.setCurrentIndex(LAST_12_MONTHS))
    assert_shows_service_figures(view)
    assert view.usage.range.start == date(2025, 3, 1)


def test_a_reversed_custom_range_says_why_and_reads_nothing(
    qtbot: QtBot, world: World, worker: Worker,
) -> None:
    view = shown(qtbot, make_view(qtbot, world, worker))
    shown_query = view.query
    view.set_custom_range(date(2026, 2, 10), date(2026, 2, 1))
    qtbot.waitUntil(lambda: "must end after it starts" in view.status.text(), timeout=WAIT_MS)
    assert not view.is_loading and view.query == shown_query


def test_the_newest_request_wins(qtbot: QtBot, world: World, usage: int,
                                 worker: Worker) -> None:
    view = shown(qtbot, make_view(qtbot, world, worker))
    arrivals: list[object] = []
    view.loaded.connect(lambda: arrivals.append(view.query))
    # Three requests in a row, each discarding the one before.
    view.set_plan("starter")
    view.refresh()
    view.range_preset.setCurrentIndex(LAST_MONTH)
    view.refresh()
    view.set_plan(None)
    with qtbot.waitSignal(view.loaded, timeout=WAIT_MS):
        view.refresh()
    worker.wait_for_done()
    QCoreApplication.processEvents()
    assert len(arrivals) == 1
    assert view.usage is not None and view.usage.plan_code is None
    assert view.usage.range.start == date(2026, 1, 1)
    assert_shows_service_figures(view)


# The tooltip is raised over the chart, which the offscreen platform says it cannot do.
@pytest.mark.qt_log_ignore(r"This plugin does not support raise\(\)")
def test_legend_toggles_and_hover_tooltips(qtbot: QtBot, world: World, usage: int,
                                          worker: Worker) -> None:
    view = shown(qtbot, make_view(qtbot, world, worker))
    reloaded(qtbot, view, lambda: view.range_preset.setCurrentIndex(LAST_MONTH))
    reloaded(qtbot, view, lambda: view.set_granularity(Granularity.DAY))
    chart = view.chart["usage"]
    assert chart.bars is not None
    jan_12 = 11  # the bucket of 12 January
    text = chart.hover_at(jan_12, 10)
    assert text.startswith("2026-01-12 (UTC)")
    assert "Ad image: 60 credits (1 charge, 0 failed, 0 refunded)" in text
    assert "Total shown: 60 credits" in text
    # The legend hides a feature: the others close up and the tooltip leaves it out.
    chart.bars.set_visible("ad_image", False)
    assert chart.bars.drawn("url_brief")[19] == (0.0, 8.0)
    assert "Ad image" not in chart.hover_at(jan_12, 5)
    assert chart.bars.top(9) == 0  # 10 January had only ad_image
    # A click on its legend entry shows it again (the legend's own click handler).
    sample = next(s for s, label in chart.legend.items if label.text == "Ad image")
    sample.mouseClickEvent(_LeftClick())
    assert chart.bars.is_visible("ad_image")
    assert "Ad image: 60 credits" in chart.hover_at(jan_12, 5)
    sample.mouseClickEvent(_LeftClick())
    assert not chart.bars.is_visible("ad_image")
    assert chart.hover_at(-3, 10) == ""  # outside the bars

    view.show_chart("share")
    share = view.chart["share"]
    top = len(view.usage.features) - 1 if view.usage else 0  # the largest at the top
    assert share.hover_at(20, top) == "Ad image: 85 credits, 78.7% of the 108 credits used"

    view.show_chart("failed")
    assert view.breakdown.isVisible()
    failed = view.chart["failed"]
    assert "Ad image: 100.0% (1 failed of 1)" in failed.hover_at(9, 50)
    assert view.set_breakdown("ad_image")
    labels = [label.text for _s, label in failed.legend.items]
    assert labels == ["imagen-ultra", "flux-fast"]
    assert "flux-fast: 100.0% (1 failed of 1)" in failed.hover_at(9, 50)
    assert not view.set_breakdown("no_such_feature")

    view.show_chart("refunds")
    assert view.chart["refunds"].hover_at(10, 5) == "2026-01-11 (UTC)\n1 refund, 25 credits"


def test_double_click_or_enter_opens_an_account(qtbot: QtBot, world: World, usage: int,
                                               worker: Worker) -> None:
    view = shown(qtbot, make_view(qtbot, world, worker))
    table = view.table
    first = view.top_model.index(0, 1)
    rect = table.visualRect(first)
    with qtbot.waitSignal(view.open_account_requested, timeout=WAIT_MS) as blocker:
        # A double click is a click followed by a second press, as the mouse sends it.
        qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
        qtbot.mouseDClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert blocker.args == [usage]
    table.setCurrentIndex(view.top_model.index(1, 0))
    with qtbot.waitSignal(view.open_account_requested, timeout=WAIT_MS) as blocker:
        qtbot.keyClick(table, Qt.Key.Key_Return)
    assert blocker.args == [world.account_id]


def test_exports_are_written_and_read_back(qtbot: QtBot, world: World, usage: int,
                                          worker: Worker, tmp_path: Path) -> None:
    view = shown(qtbot, make_view(qtbot, world, worker))
    assert view.usage is not None and view.top is not None
    for name in ("usage", "share", "failed", "refunds", "purchases"):
        view.show_chart(name)
        assert view.export_png_button.isEnabled()
        with qtbot.waitSignal(view.exported, timeout=WAIT_MS) as blocker:
            view.export_chart(tmp_path / name, "png")
        assert blocker.args == [str(tmp_path / f"{name}.png")]
        image = QImage(str(tmp_path / f"{name}.png"))
        assert not image.isNull() and image.width() >= 1200
        with qtbot.waitSignal(view.exported, timeout=WAIT_MS):
            view.export_chart(tmp_path / f"{name}.svg", "svg")
        root = ET.parse(tmp_path / f"{name}.svg").getroot()
        assert root.tag.endswith("svg")

    view.show_chart("usage")
    with qtbot.waitSignal(view.exported, timeout=WAIT_MS):
        view.export_chart_data(tmp_path / "usage.csv")
    with open(tmp_path / "usage.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[0][:2] == ["Bucket start", "Bucket end (included)"] and rows[0][-1] == "Total"
    assert sum(int(r[-1]) for r in rows[1:]) == view.usage.used.current
    assert len(rows) - 1 == len(view.usage.buckets)

    with qtbot.waitSignal(view.exported, timeout=WAIT_MS):
        view.export_chart_data(tmp_path / "refunds.csv", key="refunds")
    with open(tmp_path / "refunds.csv", newline="", encoding="utf-8") as f:
        refunds = list(csv.DictReader(f))
    assert sum(int(r["Credits refunded"]) for r in refunds) == view.usage.refunded.current

    with qtbot.waitSignal(view.exported, timeout=WAIT_MS):
        view.export_top_accounts(tmp_path / "top.csv")
    with open(tmp_path / "top.csv", newline="", encoding="utf-8") as f:
        top = list(csv.DictReader(f))
    assert [(int(r["Account id"]), int(r["Credits used"])) for r in top] == [
        (a.account_id, a.credits) for a in view.top]

    # A folder that does not exist: a plain sentence, no file.
    with qtbot.waitSignal(view.export_failed, timeout=WAIT_MS) as failed:
        view.export_top_accounts(tmp_path / "missing" / "top.csv")
    assert failed.args[0] == f"The folder {tmp_path / 'missing'} does not exist."
    assert failed.args[0] in view.status.text()


def test_support_cannot_export(qtbot: QtBot, world: World, worker: Worker,
                               tmp_path: Path) -> None:
    out = tmp_path / "exports"
    out.mkdir()
    view = shown(qtbot, make_view(qtbot, world, worker, world.support))
    for button in (view.export_png_button, view.export_svg_button, view.export_data_button,
                   view.export_table_button):
        assert not button.isEnabled() and "export" in button.toolTip().lower()
    with qtbot.waitSignal(view.export_failed, timeout=WAIT_MS):
        assert view.export_chart(out / "x.png") is None
    assert not list(out.iterdir())


def test_every_control_has_an_accessible_name(qtbot: QtBot, world: World,
                                             worker: Worker) -> None:
    view = shown(qtbot, make_view(qtbot, world, worker))
    report = FinanceReportView(world.db, worker, world.finance, today=TODAY)
    qtbot.addWidget(report, before_close_func=lambda _v: worker.wait_for_done())
    report.show()
    for top in (view, report):
        unnamed = [w.objectName() or type(w).__name__ for w in own_widgets(top)
                   if not w.accessibleName()]
        assert unnamed == []


# -- the finance report ----------------------------------------------------------------------


def test_the_finance_report_builds_and_exports(
    qtbot: QtBot, world: World, usage: int, worker: Worker, tmp_path: Path,
) -> None:
    view = FinanceReportView(world.db, worker, world.finance, today=TODAY)
    qtbot.addWidget(view, before_close_func=lambda _v: worker.wait_for_done())
    view.resize(1300, 600)
    view.show()
    assert view.months() == (date(2025, 3, 1), date(2026, 2, 1))
    assert not view.export_csv_button.isEnabled()
    view.set_months(date(2025, 12, 1), date(2026, 2, 1))
    stages: list[str] = []
    with qtbot.waitSignal(view.built, timeout=WAIT_MS) as blocker:
        job = view.build()
        assert job is not None
        job.progressed.connect(lambda stage, _d, _t: stages.append(stage))
    report = blocker.args[0]
    fresh = finance_report(world.db, first_month=date(2025, 12, 1), last_month=date(2026, 2, 1))
    assert report.months == fresh.months and report.reconciles
    assert [m.label for m in report.months] == ["2025-12", "2026-01", "2026-02"]
    assert view.model.rowCount() == 4
    assert view.model.index(3, 0).data() == "Total"
    assert view.model.index(1, RECONCILES_COLUMN).data() == RECONCILED_MARK
    assert view.verdict.text().startswith(f"{RECONCILED_MARK} Every month reconciles")
    assert stages and view.export_csv_button.isEnabled()
    used_jan = report.months[1].used
    assert view.model.index(1, 8).data() == f"{used_jan:,}"

    with qtbot.waitSignal(view.exported, timeout=WAIT_MS):
        view.export_csv(tmp_path / "finance")
    with open(tmp_path / "finance.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[0][:len(COLUMNS)] == [c for c, _ in COLUMNS]
    months, totals = rows[1:-1], rows[-1]
    assert totals[0] == "Total"
    for column in range(2, 10):
        assert int(totals[column]) == sum(int(r[column]) for r in months)
    assert int(totals[8]) == sum(m.used for m in report.months)
    assert [r[RECONCILES_COLUMN] for r in rows[1:]] == [RECONCILED_MARK] * 4

    with qtbot.waitSignal(view.exported, timeout=WAIT_MS):
        view.export_xlsx(tmp_path / "finance.xlsx")
    book = openpyxl.load_workbook(tmp_path / "finance.xlsx")
    sheet = book["Finance report"]
    values = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert values[0][:len(COLUMNS)] == [c for c, _ in COLUMNS]
    assert values[4][0] == "Total" and sheet.cell(row=5, column=1).font.bold
    assert sheet.cell(row=1, column=2).font.bold and sheet.freeze_panes == "A2"
    for column in range(2, 10):
        assert all(isinstance(r[column], int) for r in values[1:5])
        assert values[4][column] == sum(r[column] for r in values[1:4])
    assert values[4][8] == sum(m.used for m in report.months)
    assert sheet.column_dimensions["B"].width >= len("Opening balance")
    checks = {r[0]: r[1] for r in book["Checks"].iter_rows(min_row=2, values_only=True)}
    assert checks["Every month reconciles"] == "yes"
    assert checks["Credits in the whole ledger"] == report.ledger_total


def test_the_finance_report_refuses_reversed_months_and_support_exports(
    qtbot: QtBot, world: World, worker: Worker, tmp_path: Path,
) -> None:
    out = tmp_path / "exports"
    out.mkdir()
    view = FinanceReportView(world.db, worker, world.support, today=TODAY)
    qtbot.addWidget(view, before_close_func=lambda _v: worker.wait_for_done())
    view.show()
    view.set_months(date(2026, 2, 1), date(2026, 1, 1))
    with qtbot.waitSignal(view.build_failed, timeout=WAIT_MS) as blocker:
        assert view.build() is None
    assert blocker.args == ["The last month must not come before the first."]
    view.set_months(date(2026, 1, 1), date(2026, 2, 1))
    with qtbot.waitSignal(view.built, timeout=WAIT_MS):
        view.build()
    assert not view.export_csv_button.isEnabled()
    assert not view.export_xlsx_button.isEnabled()
    with qtbot.waitSignal(view.export_failed, timeout=WAIT_MS):
        assert view.export_xlsx(out / "x.xlsx") is None
    assert not list(out.iterdir())


# -- how it looks ----------------------------------------------------------------------------


def rows_in_view(view: DashboardView) -> float:
    return view.table.viewport().height() / view.table.verticalHeader().defaultSectionSize()


def test_the_table_keeps_six_rows_and_the_charts_give_way(
    qtbot: QtBot, world: World, usage: int, worker: Worker
) -> None:
    view = make_view(qtbot, world, worker)
    # The dashboard's room in a 1280x800 main window.
    view.resize(1264, 580)
    shown(qtbot, view)
    assert view.top_model.rowCount() > 0
    # First shown: the table gets about two fifths, never fewer than six rows.
    assert rows_in_view(view) >= TABLE_MIN_ROWS
    assert view.chart["usage"].canvas.height() > view.table.height()
    # The chart's actions sit beside its tabs, not in a row of their own.
    corner = view.charts.cornerWidget(Qt.Corner.TopRightCorner)
    assert corner is not None and corner.isAncestorOf(view.export_png_button)
    # However the splitter is dragged, six rows stay; the charts shrink first.
    view.splitter.setSizes([10_000, 1])
    assert rows_in_view(view) >= TABLE_MIN_ROWS
    view.splitter.setSizes([1, 10_000])
    assert view.chart["usage"].canvas.height() >= CHART_MIN_HEIGHT
    # Small enough for a 768-pixel screen (the main window's own rows come on top).
    assert view.minimumSizeHint().height() <= 500


@pytest.fixture
def dark(qapp: QApplication) -> Iterator[QApplication]:
    """The dark palette for the test; the application's look as it was afterwards."""
    style, palette = qapp.style().name(), qapp.palette()
    theme.apply_theme(qapp, Qt.ColorScheme.Dark)
    yield qapp
    qapp.setStyle(style)
    qapp.setPalette(palette)


def test_the_dashboard_and_the_report_read_on_the_dark_palette(
    qtbot: QtBot, world: World, usage: int, worker: Worker, dark: QApplication
) -> None:
    view = make_view(qtbot, world, worker)
    shown(qtbot, view)
    chart = view.chart["usage"]
    background = chart.canvas.backgroundBrush().color()
    assert background == theme.palette(Qt.ColorScheme.Dark).color(QPalette.ColorRole.Base)
    for side in ("left", "bottom"):
        assert contrast(chart.plot.getAxis(side).textPen().color(), background) >= 3
    assert contrast(QColor(chart.plot.titleLabel.opts["color"]), background) >= 3
    window = view.palette().color(QPalette.ColorRole.Window)
    view._show_status("The figures could not be read.", error=True)
    assert view.status.palette().color(QPalette.ColorRole.WindowText) == theme.color("danger")
    view._show_status("Saved.", done=True)
    done = view.status.palette().color(QPalette.ColorRole.WindowText)
    assert done == theme.color("success") and contrast(done, window) >= 3
    # Back to light with the view open: the status line follows.
    theme.apply_theme(dark, Qt.ColorScheme.Light)
    qtbot.waitUntil(lambda: view.status.palette().color(QPalette.ColorRole.WindowText)
                    == QColor(theme.SEMANTIC["light"]["success"]), timeout=WAIT_MS)
    theme.apply_theme(dark, Qt.ColorScheme.Dark)

    report = FinanceReportView(world.db, worker, world.finance, today=TODAY)
    qtbot.addWidget(report, before_close_func=lambda _v: worker.wait_for_done())
    report.show()
    report.set_months(date(2026, 1, 1), date(2026, 2, 1))
    with qtbot.waitSignal(report.built, timeout=WAIT_MS):
        report.build()
    window = report.palette().color(QPalette.ColorRole.Window)
    verdict = report.verdict.palette().color(QPalette.ColorRole.WindowText)
    assert verdict == theme.color("success") and contrast(verdict, window) >= 3
    mark = report.model.index(0, RECONCILES_COLUMN).data(Qt.ItemDataRole.ForegroundRole)
    base = report.table.palette().color(QPalette.ColorRole.Base)
    assert contrast(mark.color(), base) >= 3
    # The loud "does not reconcile" panel: red text on its own red background.
    report._verdict_tone = "danger"
    report._style()
    panel = report.verdict.palette()
    assert contrast(panel.color(QPalette.ColorRole.WindowText),
                    theme.color("danger_background")) >= 3
    assert theme.css("danger_background") in report.verdict.styleSheet()
