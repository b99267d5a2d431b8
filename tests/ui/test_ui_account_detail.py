"""The account detail view: balance cards, grants, lazily paged charges and ledger,
filters, tabs, copying and refreshing, on both databases."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from PySide6.QtCore import QCoreApplication, QDate, QItemSelectionModel, QModelIndex, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QHeaderView
from pytestqt.qtbot import QtBot
from services.factories import World, charge, refund

from credits_desktop.services.queries import account_summary, ledger_page
from credits_desktop.ui import formatting as fmt
from credits_desktop.ui.account_detail import CUSTOM, AccountDetail, reset_text
from credits_desktop.ui.detail_models import (
    COL_C_REASON,
    COL_C_REFUNDED,
    ChargeFilter,
    ChargesModel,
    GrantsModel,
    LedgerModel,
    signed,
)
from credits_desktop.ui.main_window import MainWindow
from credits_desktop.ui.table_models import LoadingModel
from credits_desktop.ui.workers import Worker

from .conftest import AddAccounts, MakeWindow

PAGE = 3


@pytest.fixture
def worker(qtbot: QtBot) -> Iterator[Worker]:
    w = Worker()
    yield w
    w.wait_for_done()
    QCoreApplication.processEvents()


def wait_loaded(qtbot: QtBot, model: LoadingModel) -> None:
    qtbot.waitUntil(lambda: model.started and not model.is_loading)


def fetch_all(qtbot: QtBot, model: ChargesModel | LedgerModel) -> None:
    wait_loaded(qtbot, model)
    while model.canFetchMore(QModelIndex()):
        model.fetchMore(QModelIndex())
        wait_loaded(qtbot, model)


def with_charges(world: World) -> None:
    """Four succeeded charges (two features) and three failed ones, one refunded."""
    for minutes in range(4):
        charge(world, status="succeeded", at=world.at(minutes=minutes),
               feature_code="ad_image" if minutes % 2 else "url_brief")
    failed = [charge(world, at=world.at(hours=2, minutes=m)).charge_id for m in range(3)]
    refund(world, world.support, failed[0])


def open_first(qtbot: QtBot, make_window: MakeWindow) -> tuple[MainWindow, AccountDetail]:
    window = make_window(detail_page_size=PAGE)
    window.show()
    qtbot.waitUntil(lambda: window.model.rowCount() > 0 and not window.model.is_loading)
    detail = window.open_account(window.model.account(0))
    qtbot.waitUntil(lambda: detail.summary is not None and not detail.is_loading)
    return window, detail


def test_opening_an_account_shows_the_services_balances(
    qtbot: QtBot, world: World, make_window: MakeWindow
) -> None:
    with_charges(world)
    window, detail = open_first(qtbot, make_window)
    expected = account_summary(world.db, world.account_id)
    assert expected.purchased > 0
    assert detail.card_text("plan") == fmt.credit_share(expected.plan_left, expected.allotment)
    assert detail.card_text("purchased") == fmt.credits_text(expected.purchased)
    assert detail.card_text("refund") == fmt.credits_text(expected.refund)
    assert detail.card_text("total") == fmt.credits_text(expected.total)
    assert detail.card_note("plan") == reset_text(expected.next_reset)
    assert detail.card_note("purchased") == "never expire"
    assert "ops@acme.test" in detail.subtitle.text()
    assert "Starter" in detail.subtitle.text()
    assert window.tabs.tabText(window.tabs.currentIndex()) == "Acme Ads"


def test_the_reset_line_counts_local_days_from_now() -> None:
    now = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    reset = (now + timedelta(days=12)).astimezone()
    local_day = reset.date()
    days = (local_day - now.astimezone().date()).days
    text = reset_text(reset.astimezone(UTC), now)
    assert text == f"resets in {days} days, on {local_day.day} {local_day.strftime('%b')}"
    assert reset_text(None, now) == "no billing period yet"


def test_expired_grants_are_greyed_and_live_ones_are_not(
    qtbot: QtBot, world: World, worker: Worker
) -> None:
    model = GrantsModel(world.db, worker, world.account_id)
    model.refresh()
    wait_loaded(qtbot, model)
    rows = model.rows()
    assert {r.source for r in rows} == {"plan", "purchase"}
    for number, row in enumerate(rows):
        brush = model.index(number, 0).data(Qt.ItemDataRole.ForegroundRole)
        assert (brush is None) == row.live
        assert row.live == (row.source == "purchase" or datetime.now(UTC) < row.expires_at)
    purchase = next(i for i, r in enumerate(rows) if r.source == "purchase")
    assert model.index(purchase, 4).data() == "Never"


def test_charges_page_lazily(qtbot: QtBot, world: World, worker: Worker) -> None:
    with_charges(world)
    # Without a view, which would fetch pages by itself to fill its viewport.
    model = ChargesModel(world.db, worker, world.account_id, page_size=PAGE)
    assert not model.canFetchMore(QModelIndex())  # nothing asked yet
    model.set_filter(ChargeFilter())
    wait_loaded(qtbot, model)
    assert model.rowCount() == PAGE
    assert model.canFetchMore(QModelIndex())
    model.fetchMore(QModelIndex())
    qtbot.waitUntil(lambda: model.rowCount() == 2 * PAGE)
    fetch_all(qtbot, model)
    assert model.rowCount() == 7
    assert model.is_complete and not model.canFetchMore(QModelIndex())
    times = [model.row_at(r).occurred_at for r in range(7)]
    assert times == sorted(times, reverse=True)
    # The refunded charge says so; local time shown, UTC in the tooltip.
    refunded = sorted(model.index(r, 6).data() for r in range(7))
    assert refunded == ["", "", "", "", "No", "No", "Yes, 40"]
    first = model.row_at(0)
    assert model.index(0, 0).data() == fmt.local_datetime(first.occurred_at)
    assert fmt.utc_datetime(first.occurred_at) in model.index(0, 0).data(
        Qt.ItemDataRole.ToolTipRole)


def test_filters_by_status_feature_and_dates(
    qtbot: QtBot, world: World, make_window: MakeWindow
) -> None:
    with_charges(world)
    _window, detail = open_first(qtbot, make_window)
    model = detail.charges

    detail.status_filter.setCurrentIndex(detail.status_filter.findData("failed"))
    qtbot.waitUntil(lambda: model.filter.status == "failed")
    fetch_all(qtbot, model)
    assert [model.row_at(r).status for r in range(model.rowCount())] == ["failed"] * 3
    assert model.index(0, 4).data() == "Failed"

    detail.status_filter.setCurrentIndex(detail.status_filter.findData("succeeded"))
    detail.feature_filter.setCurrentIndex(detail.feature_filter.findData("url_brief"))
    qtbot.waitUntil(lambda: model.filter == ChargeFilter(feature="url_brief",
                                                         status="succeeded"))
    fetch_all(qtbot, model)
    assert model.rowCount() == 2
    assert {model.row_at(r).feature_code for r in range(2)} == {"url_brief"}

    # A custom range of local days: the day of the charges, then the day after.
    detail.feature_filter.setCurrentIndex(0)
    detail.status_filter.setCurrentIndex(0)
    day = world.t0.astimezone().date()
    detail.date_from.setDate(QDate(day.year, day.month, day.day))
    detail.date_to.setDate(QDate(day.year, day.month, day.day))
    detail.period_filter.setCurrentIndex(CUSTOM)
    assert detail.date_from.isEnabled()
    qtbot.waitUntil(lambda: model.filter.start is not None)
    fetch_all(qtbot, model)
    assert model.rowCount() == 7
    detail.date_from.setDate(detail.date_from.date().addDays(1))
    detail.date_to.setDate(detail.date_to.date().addDays(1))
    qtbot.waitUntil(lambda: model.filter.start is not None
                    and model.filter.start > world.t0 and not model.is_loading)
    wait_loaded(qtbot, model)
    assert model.rowCount() == 0


def test_the_charges_and_ledger_pages_are_built_when_first_shown(
    qtbot: QtBot, world: World, make_window: MakeWindow
) -> None:
    with_charges(world)
    window, detail = open_first(qtbot, make_window)
    # The grants show first; the charges and the ledger are read as the account opens,
    # but their pages wait until they are shown.
    assert detail.lists.currentIndex() == 0
    assert detail.built_lists == ["grants"]
    assert detail.charges.rowCount() == PAGE and detail.ledger.rowCount() == PAGE
    assert detail.selected_charges() == [] and detail.selected_ledger_entry() is None
    assert list(detail.headers()) == ["grants"]
    built: list[str] = []
    detail.header_ready.connect(lambda kind, _header: built.append(kind))

    # Alt+C: the charges page, usable at once (shown, its filters listing the features
    # read when the account opened, the charges already loaded).
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window)
    QTest.keyClick(detail.lists, Qt.Key.Key_C, Qt.KeyboardModifier.AltModifier)
    assert detail.lists.currentIndex() == 1 and built == ["charges"]
    assert detail.charges_table.isVisible() and detail.feature_filter.isVisible()
    assert detail.feature_filter.findData("url_brief") > 0
    assert detail.charges_table.model() is detail.charges
    assert not detail.refund_button.isEnabled()
    detail.charges_table.selectRow(detail.charges.rowCount() - 1)
    assert detail.selected_charges() == [detail.charges.row_at(detail.charges.rowCount() - 1)]

    # Used before it is shown (F5 keeps its place, a shortcut acts on it): built then.
    assert detail.reverse_button is not None and built == ["charges", "ledger"]
    assert list(detail.headers()) == ["grants", "charges", "ledger"]
    detail.lists.setCurrentIndex(2)
    assert detail.ledger_table.isVisible() and built == ["charges", "ledger"]


def test_the_failure_reason_takes_the_room_left_not_refunded(
    qtbot: QtBot, world: World, make_window: MakeWindow
) -> None:
    with_charges(world)
    window, detail = open_first(qtbot, make_window)
    window.resize(1400, 800)
    detail.lists.setCurrentIndex(1)
    QApplication.processEvents()
    header = detail.charges_table.horizontalHeader()
    assert not header.stretchLastSection()
    assert header.sectionResizeMode(COL_C_REASON) == QHeaderView.ResizeMode.Stretch
    assert header.sectionSize(COL_C_REASON) > header.sectionSize(COL_C_REFUNDED)
    # The last column ends where the table does: no empty space, no cut-off column.
    last = header.sectionViewportPosition(COL_C_REFUNDED) + header.sectionSize(COL_C_REFUNDED)
    assert last == detail.charges_table.viewport().width()
    assert "Yes, 40" in [detail.charges.index(r, COL_C_REFUNDED).data()
                         for r in range(detail.charges.rowCount())]


def test_a_newer_filter_wins_over_an_older_one_still_loading(
    qtbot: QtBot, world: World, worker: Worker
) -> None:
    with_charges(world)
    model = ChargesModel(world.db, worker, world.account_id, page_size=PAGE)
    model.set_filter(ChargeFilter(status="failed"))
    model.set_filter(ChargeFilter(status="succeeded"))
    fetch_all(qtbot, model)
    worker.wait_for_done()
    QCoreApplication.processEvents()
    assert [model.row_at(r).status for r in range(model.rowCount())] == ["succeeded"] * 4


def test_the_ledger_shows_the_services_running_balance(
    qtbot: QtBot, world: World, make_window: MakeWindow
) -> None:
    with_charges(world)
    _window, detail = open_first(qtbot, make_window)
    model = detail.ledger
    fetch_all(qtbot, model)
    expected = ledger_page(world.db, world.account_id, limit=500).rows
    assert model.rowCount() == len(expected) > 2 * PAGE  # several pages were joined
    for number, entry in enumerate(expected):
        assert model.index(number, 7).data() == fmt.credits_text(entry.balance_after)
        assert model.index(number, 2).data() == signed(entry.delta)
    assert signed(-40) == "\u221240" and signed(500) == "+500"


def test_two_accounts_open_in_two_tabs_and_reopening_switches(
    qtbot: QtBot, world: World, make_window: MakeWindow, add_accounts: AddAccounts
) -> None:
    add_accounts(1, prefix="Zeta", domain="zeta.test")
    window = make_window()
    window.show()
    qtbot.waitUntil(lambda: window.model.rowCount() == 2 and not window.model.is_loading)
    acme, zeta = window.model.account(0), window.model.account(1)
    first = window.open_account(acme)
    second = window.open_account(zeta)
    assert window.tabs.count() == 2 and window.current_detail() is second
    assert window.open_account(acme) is first
    assert window.tabs.count() == 2 and window.current_detail() is first
    qtbot.waitUntil(lambda: not first.is_loading and not second.is_loading)
    assert second.summary is not None and second.summary.email == "zeta00@zeta.test"
    # Ctrl+W closes the current tab only.
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window)
    qtbot.keyClick(window.table, Qt.Key.Key_W, Qt.KeyboardModifier.ControlModifier)
    assert window.open_details() == [second]


def test_ctrl_c_copies_the_selected_cells(
    qtbot: QtBot, world: World, make_window: MakeWindow
) -> None:
    with_charges(world)
    _window, detail = open_first(qtbot, make_window)
    detail.lists.setCurrentIndex(2)
    table, model = detail.ledger_table, detail.ledger
    selection = table.selectionModel()
    flag = QItemSelectionModel.SelectionFlag.Select
    for row in (0, 1):
        for column in (1, 2):
            selection.select(model.index(row, column), flag)
    table.setFocus()
    QApplication.clipboard().clear()
    qtbot.keyClick(table, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    expected = "\n".join(
        f"{model.index(r, 1).data()}\t{model.index(r, 2).data()}" for r in (0, 1)
    )
    assert QApplication.clipboard().text() == expected
    assert "\t" in expected and expected.count("\n") == 1


def test_f5_reads_the_account_again_and_keeps_the_selected_row(
    qtbot: QtBot, world: World, make_window: MakeWindow
) -> None:
    with_charges(world)
    window, detail = open_first(qtbot, make_window)
    table, model = detail.ledger_table, detail.ledger
    table.setCurrentIndex(model.index(1, 0))
    kept, newest = model.row_at(1).id, model.row_at(0).id
    assert detail.summary is not None
    before = detail.summary.change_seq
    charge(world, status="succeeded", at=world.at(days=3), feature_code="url_brief")
    window.refresh_action.trigger()
    qtbot.waitUntil(lambda: not detail.is_loading and model.row_at(0).id > newest)
    assert detail.summary.change_seq > before
    # The new charge's entry is on top; the selected entry moved down and stays selected.
    assert model.row_at(table.currentIndex().row()).id == kept
    assert table.currentIndex().row() == 2


def test_the_models_pass_qts_model_tester(
    qtbot: QtBot, qtmodeltester: object, world: World, worker: Worker
) -> None:
    with_charges(world)
    check = qtmodeltester.check  # type: ignore[attr-defined]
    charges = ChargesModel(world.db, worker, world.account_id, page_size=PAGE)
    ledger = LedgerModel(world.db, worker, world.account_id, page_size=PAGE)
    grants = GrantsModel(world.db, worker, world.account_id)
    for model in (charges, ledger, grants):
        check(model)
    charges.set_filter(ChargeFilter())
    ledger.refresh()
    grants.refresh()
    fetch_all(qtbot, charges)
    fetch_all(qtbot, ledger)
    wait_loaded(qtbot, grants)
    charges.set_filter(ChargeFilter(status="failed"))
    wait_loaded(qtbot, charges)
    for model in (charges, ledger, grants):
        check(model)
    assert charges.rowCount() == 3 and ledger.rowCount() > 2 * PAGE and grants.rowCount() == 2
