"""Every word of the charts, the dashboard, the finance report and the work lists goes
through Qt's translation: under a pseudo-translation that brackets every text it is
asked for, no label, button, tooltip, accessible name, header, chart title, axis label,
legend, hover text or export header is left without brackets. Names from the database
(accounts, staff, plans, features, models, audit actions) are data and stay as they are.

Each view is opened on a real database (SQLite and PostgreSQL) with rows to show, as
the user would see it.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import openpyxl
import pyqtgraph as pg
import pytest
from PySide6.QtCore import QCoreApplication, QItemSelectionModel, Qt
from PySide6.QtWidgets import QWidget
from pytestqt.qtbot import QtBot
from services.factories import World, adjust, charge, key, open_account, refund

from credits_desktop.services.account_charts import CSV_COLUMNS
from credits_desktop.services.accounts import list_staff
from credits_desktop.services.catalog import list_features, list_plans
from credits_desktop.services.finance_report import COLUMNS
from credits_desktop.services.purchases import buy_package
from credits_desktop.services.worklists import audit_actions
from credits_desktop.ui.account_charts import CSV_HEADER, FAILED_KEY, AccountCharts
from credits_desktop.ui.approvals_view import ApprovalsView
from credits_desktop.ui.audit_view import AuditView
from credits_desktop.ui.charts_common import DateAxis, counted
from credits_desktop.ui.dashboard_view import CHARTS, DashboardView
from credits_desktop.ui.failures_view import FailuresView
from credits_desktop.ui.finance_report_view import COLUMN_TEXTS, FinanceReportView
from credits_desktop.ui.workers import Worker

from .pseudo_translation import OPEN, PseudoTranslator, is_translated, untranslated_texts

WAIT_MS = 15_000
TODAY = datetime.combine(datetime.now(UTC).date(), time(), tzinfo=UTC)

IsData = Callable[[str], bool]


@pytest.fixture
def worker(qtbot: QtBot) -> Iterator[Worker]:
    w = Worker()
    yield w
    w.wait_for_done()
    QCoreApplication.processEvents()


def finish(worker: Worker) -> Callable[[Any], None]:
    """What qtbot does before closing a view: wait for its queries."""

    def wait(_view: Any) -> None:
        worker.wait_for_done()

    return wait


def database_words(world: World) -> set[str]:
    """The names the database holds: staff, accounts and their emails, plans, features,
    models, audit actions."""
    db = world.db
    words = {s.display_name for s in list_staff(db, active_only=False)}
    words |= {p.name for p in list_plans(db)} | {f.name for f in list_features(db)}
    words |= set(audit_actions(db))
    words |= {"Acme Ads", "ops@acme.test", "Beta Media", "ops@beta.test", "flux-fast",
              "imagen-ultra"}
    return words


def data_of(world: World) -> IsData:
    """A predicate for untranslated_texts: the text is a name from the database."""
    words = database_words(world)

    def is_data(text: str) -> bool:
        return text in words

    return is_data


def usage_for_charts(world: World) -> int:
    """Charges of two features on recent days and on January and February 2026 (failed,
    refunded, with models), a purchase and an adjustment; a second account. Returns its
    id."""
    other = open_account(world.db, world.platform, name="Beta Media", email="ops@beta.test",
                         plan_code="growth", created_at=datetime(2026, 1, 2, tzinfo=UTC))
    for days, feature, status in ((1, "ad_image", "succeeded"), (2, "url_brief", "succeeded"),
                                  (3, "url_brief", "failed"), (4, "ad_image", "failed")):
        charge(world, 20, status=status, feature_code=feature,
               at=TODAY - timedelta(days=days, hours=-9))
    failed = charge(world, 25, at=datetime(2026, 1, 10, 11, tzinfo=UTC),
                    model="flux-fast").charge_id
    charge(world, 60, status="succeeded", at=datetime(2026, 1, 12, 11, tzinfo=UTC),
           account_id=other, model="imagen-ultra")
    charge(world, 8, status="succeeded", at=datetime(2026, 2, 18, 11, tzinfo=UTC),
           feature_code="url_brief")
    refund(world, world.support, failed, at=datetime(2026, 1, 11, tzinfo=UTC))
    buy_package(world.db, world.platform, account_id=other, package_code="pack_2000",
                payment_reference=key("pay"), idempotency_key=key("buy"),
                at=datetime(2026, 1, 3, tzinfo=UTC))
    adjust(world, world.finance, 300, at=TODAY - timedelta(days=5, hours=-9))
    return other


def lines_untranslated(text: str, data: IsData | None = None) -> list[str]:
    """The lines of a hover text or title that never met the translator."""
    return [line for line in text.splitlines() if not is_translated(line, data)]


def legend_labels(legend: pg.LegendItem) -> list[str]:
    return [label.text for _sample, label in legend.items]


def plot_texts(plot: pg.PlotItem) -> dict[str, str]:
    """The words set on a plot: its title and its axes' labels."""
    texts = {"title": plot.titleLabel.text}
    for side in ("left", "bottom"):
        axis = plot.getAxis(side)
        if axis.label.isVisible():
            texts[f"{side} axis"] = axis.labelText
    return texts


def untranslated_plot(plot: pg.PlotItem, legend: pg.LegendItem, data: IsData) -> list[str]:
    found = [f"{where}: {text}" for where, text in plot_texts(plot).items()
             if text and not is_translated(text, data)]
    found += [f"legend: {text}" for text in legend_labels(legend)
              if not is_translated(text, data)]
    return found


def read_csv(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.reader(handle))


# -- the tables of texts are the services' columns, in their order ------------------------


def test_the_translated_headers_are_the_services_columns() -> None:
    # No translator here: the English sources must be the services' own headers.
    assert CSV_HEADER == CSV_COLUMNS
    assert COLUMN_TEXTS == COLUMNS


def test_counted_keeps_english_forms_until_a_translation_answers(
    qapp: Any, pseudo_translated: PseudoTranslator,
) -> None:
    assert counted("1 charge(s)", 1) == "1 charge"
    assert counted("3 charge(s)", 3) == "3 charges"
    translated = QCoreApplication.translate("Test", "%n charge(s)", "", 2)
    assert translated.startswith(OPEN) and "%n" not in translated


# -- the account's Usage tab ----------------------------------------------------------------


# The hover tooltip is raised over the chart, which the offscreen platform cannot do.
@pytest.mark.qt_log_ignore(r"This plugin does not support raise\(\)")
def test_the_usage_tab_is_translated(qtbot: QtBot, world: World, worker: Worker,
                                     pseudo_translated: PseudoTranslator,
                                     tmp_path: Path) -> None:
    usage_for_charts(world)
    is_data = data_of(world)
    charts = AccountCharts(world.db, worker, world.account_id, actor=world.finance)
    qtbot.addWidget(charts, before_close_func=finish(worker))
    charts.resize(1100, 800)
    charts.set_range(charts.current_request().preset.LAST_30_DAYS)
    with qtbot.waitSignal(charts.loaded, timeout=WAIT_MS):
        charts.show()
    charts.apart_box.setChecked(True)  # the failed and refunded series too
    assert charts.bars.is_visible(FAILED_KEY)

    assert untranslated_texts(charts, is_data, combos=True) == []
    assert charts.status.text().startswith(OPEN)
    for plot, legend in ((charts.usage_plot, charts.usage_legend),
                         (charts.balance_plot, charts.balance_legend)):
        assert untranslated_plot(plot, legend, is_data) == []
        # The time axis has no title: its labels are dates, the chart's title says the
        # clock.
        assert set(plot_texts(plot)) == {"title", "left axis"}
    assert "Billing reset" not in legend_labels(charts.balance_legend)
    assert any(OPEN in label for label in legend_labels(charts.usage_legend))

    # The hover texts of both charts, over yesterday's bar.
    yesterday = (TODAY - timedelta(days=1) + timedelta(hours=12)).timestamp()
    usage_text = charts._usage_text(yesterday, 1)
    assert usage_text and lines_untranslated(usage_text) == []
    balance_text = charts._balance_text(yesterday, 1)
    assert balance_text is not None
    # Its first line is the moment, written by ui.formatting.
    assert lines_untranslated(balance_text)[1:] == []
    assert len(balance_text.splitlines()) == 5
    # Dates on the time axis: month names are words.
    axis = charts.usage_plot.getAxis("bottom")
    assert isinstance(axis, DateAxis)
    assert all(OPEN in t for t in axis.tickStrings([yesterday], 1.0, 5 * 86_400))

    with qtbot.waitSignal(charts.exported, timeout=WAIT_MS):
        charts.export_csv(tmp_path / "usage.csv")
    header = read_csv(tmp_path / "usage.csv")[0]
    assert [h for h in header if not is_translated(h)] == []
    assert charts.message.text().startswith(OPEN)


# -- the dashboard --------------------------------------------------------------------------


@pytest.mark.qt_log_ignore(r"This plugin does not support raise\(\)")
def test_the_dashboard_is_translated(qtbot: QtBot, world: World, worker: Worker,
                                     pseudo_translated: PseudoTranslator,
                                     tmp_path: Path) -> None:
    usage_for_charts(world)
    is_data = data_of(world)
    view = DashboardView(world.db, worker, world.manager, today=date(2026, 2, 20))
    qtbot.addWidget(view, before_close_func=finish(worker))
    view.resize(1300, 900)
    with qtbot.waitSignal(view.loaded, timeout=WAIT_MS):
        view.show()
    qtbot.waitUntil(lambda: view.plan_filter.count() > 1 and view.top is not None,
                    timeout=WAIT_MS)
    assert view.top_model.rowCount() == 2
    for key_, _title, _name in CHARTS:
        view.show_chart(key_)
        view.ensure_drawn(key_)
    view.show_chart("failed")

    assert untranslated_texts(view, is_data, combos=True) == []
    for tile in view.tiles.values():
        # The change is an arrow and a number ("▲ +93"), or words.
        assert tile.value.toolTip().startswith(OPEN) and is_translated(tile.change.text())
    assert view.top_heading.text().startswith(OPEN)
    assert view.status.text().startswith(OPEN)

    hovers = {"usage": (6, 10), "share": (5, 0), "failed": (6, 50), "refunds": (6, 5),
              "purchases": (5, 5)}
    for key_, chart in view.chart.items():
        assert untranslated_plot(chart.plot, chart.legend, is_data) == [], key_
        assert chart.plot.titleLabel.text.startswith(OPEN), key_
        ticks = [label for _x, label in chart.plot.getAxis(
            "left" if chart.horizontal else "bottom")._tickLevels[0]]
        assert ticks and [t for t in ticks if not is_translated(t, is_data)] == [], key_
        assert chart.header and [h for h in chart.header if not is_translated(h, is_data)] == []
        x, y = hovers[key_]
        text = chart.hover_at(x, y) if not chart.horizontal else chart.hover_at(y, x)
        assert lines_untranslated(text) == [], key_
    # Weeks: each bar's label says so, in words that can be translated.
    assert all(label.startswith(OPEN) for _x, label in
               view.chart["usage"].plot.getAxis("bottom")._tickLevels[0])
    assert view.chart["usage"].hover_at(6, 10).count(OPEN) >= 2

    with qtbot.waitSignal(view.exported, timeout=WAIT_MS):
        view.export_top_accounts(tmp_path / "top.csv")
    assert [h for h in read_csv(tmp_path / "top.csv")[0] if not is_translated(h)] == []
    with qtbot.waitSignal(view.exported, timeout=WAIT_MS):
        view.export_chart_data(tmp_path / "usage.csv", key="usage")
    header = read_csv(tmp_path / "usage.csv")[0]
    assert [h for h in header if not is_translated(h, is_data)] == []


# -- the finance report ---------------------------------------------------------------------


def test_the_finance_report_is_translated(qtbot: QtBot, world: World, worker: Worker,
                                          pseudo_translated: PseudoTranslator,
                                          tmp_path: Path) -> None:
    usage_for_charts(world)
    is_data = data_of(world)
    view = FinanceReportView(world.db, worker, world.finance, today=date(2026, 2, 20))
    qtbot.addWidget(view, before_close_func=finish(worker))
    view.resize(1300, 600)
    view.show()
    assert untranslated_texts(view, is_data) == []
    view.set_months(date(2026, 1, 1), date(2026, 2, 1))
    with qtbot.waitSignal(view.built, timeout=WAIT_MS):
        view.build()

    report = view.report
    assert report is not None
    # The warnings found are the services' sentences, shown as they write them.
    warnings = " ".join(report.warnings())
    assert untranslated_texts(view, lambda text: is_data(text) or text == warnings) == []
    model = view.model
    tips = [model.headerData(c, Qt.Orientation.Horizontal, Qt.ItemDataRole.ToolTipRole)
            for c in range(model.columnCount())]
    assert [t for t in tips if not is_translated(t)] == []
    assert model.columnCount() > len(COLUMNS)  # used per feature and per plan
    last = model.rowCount() - 1
    assert model.index(last, 0).data().startswith(OPEN)  # "Total"
    assert model.index(0, 0).data(Qt.ItemDataRole.ToolTipRole).startswith(OPEN)
    assert view.verdict.text().startswith(OPEN) and view.stage.text().startswith(OPEN)

    with qtbot.waitSignal(view.exported, timeout=WAIT_MS):
        view.export_csv(tmp_path / "finance.csv")
    rows = read_csv(tmp_path / "finance.csv")
    assert [h for h in rows[0] if not is_translated(h)] == []
    assert rows[-1][0].startswith(OPEN)
    with qtbot.waitSignal(view.exported, timeout=WAIT_MS):
        view.export_xlsx(tmp_path / "finance.xlsx")
    book = openpyxl.load_workbook(tmp_path / "finance.xlsx")
    assert all(name.startswith(OPEN) for name in book.sheetnames)
    checks = book[book.sheetnames[1]]
    words = [cell for row in checks.iter_rows(values_only=True) for cell in row[:1]]
    assert words and all(isinstance(w, str) and w.startswith(OPEN) for w in words)


# -- the work lists -------------------------------------------------------------------------


def open_view(qtbot: QtBot, world: World, cls: type[Any], actor: Any) -> Any:
    worker = Worker()
    view = cls(world.db, worker, actor)
    worker.setParent(view)
    qtbot.addWidget(view, before_close_func=finish(worker))
    view.resize(1100, 600)
    view.show()
    qtbot.waitUntil(lambda: not view.is_loading and view.model.started, timeout=WAIT_MS)
    return view


def select_row(view: Any, row: int) -> None:
    view.table.selectionModel().select(
        view.model.index(row, 0),
        QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows)


def cells(view: Any, columns: range) -> list[str]:
    model = view.model
    return [str(model.index(r, c).data()) for r in range(model.rowCount()) for c in columns]


def work_lists_world(world: World) -> None:
    """Failed charges not refunded, a refund and an adjustment waiting for approval, and
    the audit events all of it leaves."""
    charge(world, 40, at=world.at(hours=1), model="imagen-ultra")
    charge(world, 25, at=world.at(hours=2), feature_code="url_brief")
    ok = charge(world, 40, status="succeeded", at=world.at(hours=3)).charge_id
    refund(world, world.support, ok, ticket="#1", at=world.at(days=1))
    adjust(world, world.finance, -1_500, at=world.at(days=1, hours=1))


def test_the_work_lists_are_translated(qtbot: QtBot, world: World,
                                       pseudo_translated: PseudoTranslator) -> None:
    work_lists_world(world)
    is_data = data_of(world)

    failures = open_view(qtbot, world, FailuresView, world.manager)
    qtbot.waitUntil(lambda: failures.feature_filter.count() > 1, timeout=10_000)
    assert failures.model.rowCount() == 2
    select_row(failures, 0)
    assert failures.refund_button.isEnabled()
    assert untranslated_texts(failures, is_data, combos=True) == []
    assert failures.status.text().startswith(OPEN)
    tips = [failures.model.index(0, c).data(Qt.ItemDataRole.ToolTipRole) for c in (0, 1)]
    assert all(t.startswith(OPEN) for t in tips)

    approvals = open_view(qtbot, world, ApprovalsView, world.admin)
    assert approvals.model.rowCount() == 2
    assert untranslated_texts(approvals, is_data, combos=True) == []  # nothing selected
    select_row(approvals, 0)
    assert approvals.approve_button.isEnabled()
    assert untranslated_texts(approvals, is_data, combos=True) == []
    assert approvals.detail.text().startswith(OPEN)
    # The words of the rows: kind, status, outcome.
    assert all(OPEN in text for text in cells(approvals, range(3, 4)))
    assert all(OPEN in text for text in cells(approvals, range(5, 6)))
    assert all(OPEN in text for text in cells(approvals, range(9, 10)))
    approvals.approve_button.click()
    dialog = approvals.decision_dialog
    assert dialog is not None and dialog.isVisible()
    assert untranslated_texts(dialog, is_data) == []
    dialog.reject()

    audit = open_view(qtbot, world, AuditView, world.manager)
    qtbot.waitUntil(lambda: audit.staff_filter.count() > 1, timeout=10_000)
    assert audit.model.rowCount() > 0
    assert untranslated_texts(audit, is_data, combos=True) == []
    assert audit.status.text().startswith(OPEN)
    outcomes = cells(audit, range(3, 4))
    assert outcomes and all(OPEN in text for text in outcomes)
    assert audit.period.preset.count() == 5


def test_a_plain_english_view_without_translator(qtbot: QtBot, world: World) -> None:
    """Without any translator the sources are shown, with English plurals."""
    work_lists_world(world)
    failures = open_view(qtbot, world, FailuresView, world.manager)
    assert failures.status.text() == "2 failed charges shown"
    select_row(failures, 0)
    assert ": 1 charge of Acme Ads, " in failures.refund_button.toolTip()
    widgets: list[QWidget] = [failures]
    assert untranslated_texts(widgets, data_of(world))  # English: not through a translator
