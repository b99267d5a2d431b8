"""The accounts browser's filter bar, on its own and in the main window, and the account
detail's feature list read from the database, on both databases.

The accounts are made with the real services; their plan credits are those of January
2026 (long expired), so each account's total available is what it bought.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QCoreApplication, QPoint, Qt
from PySide6.QtWidgets import QComboBox, QWidget
from pytestqt.qtbot import QtBot
from services.factories import World, charge, key, open_account, refund
from sqlalchemy import CheckConstraint, text

from credits_desktop.services.paging import Cursor, Page
from credits_desktop.services.purchases import buy_package
from credits_desktop.services.queries import (
    AccountQuery,
    AccountRow,
    AccountSort,
    search_accounts,
)
from credits_desktop.store.database import Database
from credits_desktop.store.models import Account
from credits_desktop.ui.account_detail import AccountDetail
from credits_desktop.ui.account_filters import (
    DEFAULT_LOW_BALANCE,
    LOW_BALANCE_MAX,
    LOW_BALANCE_MIN,
    AccountFilterBar,
    AccountFilters,
)
from credits_desktop.ui.accounts_model import COL_TOTAL, AccountsModel
from credits_desktop.ui.main_window import MainWindow
from credits_desktop.ui.workers import DATABASE_TROUBLE, Worker

from .conftest import MakeWindow
from .pseudo_translation import untranslated_texts
from .test_ui_accounts_model import database_without_schema


@pytest.fixture
def worker(qtbot: QtBot) -> Iterator[Worker]:
    w = Worker()
    yield w
    w.wait_for_done()
    QCoreApplication.processEvents()


def make_bar(qtbot: QtBot, db: Database, worker: Worker) -> AccountFilterBar:
    bar = AccountFilterBar(db, worker)
    qtbot.addWidget(bar)
    return bar


def combo_items(combo: QComboBox) -> list[tuple[str, object]]:
    return [(combo.itemText(i), combo.itemData(i)) for i in range(combo.count())]


def raw(db: Database, sql: str) -> list[tuple[object, ...]]:
    return db.read(lambda s: [tuple(r) for r in s.execute(text(sql))])


# -- the bar on its own ---------------------------------------------------------------


def test_the_bar_lists_the_plans_of_the_database_off_the_gui_thread(
    qtbot: QtBot, world: World, worker: Worker
) -> None:
    world.db.write(lambda s: s.execute(text(
        "INSERT INTO plans (code, name, monthly_allotment, active) "
        "VALUES ('legacy', 'Legacy', 1000, false)")))
    bar = make_bar(qtbot, world.db, worker)
    assert combo_items(bar.plan) == [("All plans", None)]  # nothing read yet
    with qtbot.waitSignal(bar.plans_loaded):
        bar.load()
        assert bar.is_loading
    assert not bar.is_loading
    plans = sorted(raw(world.db, "SELECT code, name, monthly_allotment FROM plans"),
                   key=lambda r: (r[2], r[0]))
    assert combo_items(bar.plan) == [("All plans", None)] + [(r[1], r[0]) for r in plans]
    assert [code for _, code in combo_items(bar.plan)[1:]] == [
        "starter", "legacy", "growth", "pro", "agency"]
    assert bar.plan.itemData(1, Qt.ItemDataRole.ToolTipRole) == (
        "Starter: 500 plan credits a month")
    # Every status the schema allows, and no other.
    check = next(c for c in Account.__table__.constraints
                 if isinstance(c, CheckConstraint) and "status IN" in str(c.sqltext))
    allowed = re.findall(r"'(\w+)'", str(check.sqltext))
    assert combo_items(bar.status) == [("All statuses", None)] + [
        (code.capitalize(), code) for code in allowed]
    assert allowed == ["active", "suspended", "closed"]


def test_the_bar_emits_what_is_chosen_and_clears(
    qtbot: QtBot, world: World, worker: Worker
) -> None:
    bar = make_bar(qtbot, world.db, worker)
    bar.show()
    qtbot.waitExposed(bar)
    with qtbot.waitSignal(bar.plans_loaded):
        bar.load()
    emitted: list[AccountFilters] = []
    bar.filters_changed.connect(emitted.append)
    assert bar.filters == AccountFilters() and not AccountFilters().active
    assert bar.clear_button.isHidden()
    assert not bar.threshold.isEnabled()
    assert bar.threshold.value() == DEFAULT_LOW_BALANCE == 100
    assert (bar.threshold.minimum(), bar.threshold.maximum()) == (
        LOW_BALANCE_MIN, LOW_BALANCE_MAX) == (1, 10_000_000)

    bar.plan.setCurrentIndex(bar.plan.findData("pro"))
    assert emitted[-1] == AccountFilters(plan_code="pro")
    assert not bar.clear_button.isHidden()
    bar.status.setCurrentIndex(bar.status.findData("suspended"))
    assert emitted[-1] == AccountFilters(plan_code="pro", status="suspended")

    # The threshold counts only once "Low balance" is ticked.
    with qtbot.assertNotEmitted(bar.filters_changed):
        bar.threshold.setValue(250)
    qtbot.mouseClick(bar.low_balance, Qt.MouseButton.LeftButton,
                     pos=QPoint(8, bar.low_balance.height() // 2))
    assert bar.low_balance.isChecked() and bar.threshold.isEnabled()
    assert emitted[-1] == AccountFilters("pro", "suspended", 250, False)

    # Typing a number runs one search, when it is entered, not one per digit.
    count = len(emitted)
    bar.threshold.setFocus()
    bar.threshold.selectAll()
    qtbot.keyClicks(bar.threshold, "5000")
    assert len(emitted) == count
    qtbot.keyClick(bar.threshold, Qt.Key.Key_Return)
    assert len(emitted) == count + 1
    assert emitted[-1].low_balance_below == 5000

    qtbot.mouseClick(bar.unrefunded, Qt.MouseButton.LeftButton,
                     pos=QPoint(8, bar.unrefunded.height() // 2))
    assert emitted[-1] == AccountFilters("pro", "suspended", 5000, True)
    assert emitted[-1].active

    with qtbot.waitSignal(bar.filters_changed) as cleared:
        qtbot.mouseClick(bar.clear_button, Qt.MouseButton.LeftButton)
    assert cleared.args == [AccountFilters()]
    assert bar.filters == AccountFilters()
    assert bar.clear_button.isHidden()
    assert (bar.plan.currentIndex(), bar.status.currentIndex()) == (0, 0)
    assert not bar.low_balance.isChecked() and not bar.unrefunded.isChecked()
    assert not bar.threshold.isEnabled() and bar.threshold.value() == 5000  # kept
    # The same filters twice are announced once.
    with qtbot.assertNotEmitted(bar.filters_changed):
        bar.clear()


def test_every_control_is_named_and_explained(
    qtbot: QtBot, world: World, worker: Worker
) -> None:
    bar = make_bar(qtbot, world.db, worker)
    expected = {
        "planFilter": "Plan filter",
        "accountStatusFilter": "Status filter",
        "lowBalanceFilter": "Low balance filter",
        "lowBalanceThreshold": "Low balance threshold",
        "unrefundedFilter": "Only accounts with unrefunded failed charges",
        "clearFilters": "Clear filters",
    }
    for object_name, accessible in expected.items():
        widget = bar.findChild(QWidget, object_name)
        assert widget is not None, object_name
        assert widget.accessibleName() == accessible
        assert widget.toolTip()
    # The words say what the query does: strictly below the total available.
    assert "below" in bar.threshold.prefix() and "total available" in bar.low_balance.toolTip()


def test_set_filters_shows_them_and_a_plan_chosen_early_survives_the_load(
    qtbot: QtBot, world: World, worker: Worker
) -> None:
    bar = make_bar(qtbot, world.db, worker)
    wanted = AccountFilters("growth", "closed", 42, True)
    with qtbot.waitSignal(bar.filters_changed) as changed:
        bar.set_filters(wanted)
    assert changed.args == [wanted]
    with qtbot.waitSignal(bar.plans_loaded), qtbot.assertNotEmitted(bar.filters_changed):
        bar.load()
    assert bar.plan.currentData() == "growth"
    assert bar.filters == wanted
    assert bar.status.currentText() == "Closed"
    assert bar.threshold.value() == 42 and bar.threshold.isEnabled()


def test_every_text_of_the_bar_goes_through_translation(
    qtbot: QtBot, world: World, worker: Worker, pseudo_translated: object, db_url: str,
    tmp_path: Path,
) -> None:
    bar = make_bar(qtbot, world.db, worker)
    with qtbot.waitSignal(bar.plans_loaded):
        bar.load()
    bar.set_filters(AccountFilters(plan_code="growth", status="closed", low_balance_below=42,
                                   unrefunded_failed_only=True))
    assert bar.filters.active and not bar.clear_button.isHidden()
    assert untranslated_texts(bar, combos=True, data=lambda text: text in {
        bar.plan.itemText(i) for i in range(1, bar.plan.count())}) == []
    assert bar.plan.itemText(0) == "⟦All plans⟧"
    assert bar.status.itemText(3) == "⟦Closed⟧"
    assert bar.threshold.prefix() == "⟦below ⟧" and bar.threshold.suffix() == "⟦ credits⟧"
    assert bar.plan.itemData(1, Qt.ItemDataRole.ToolTipRole) == (
        "⟦{plan}: {credits} plan credits a month⟧".format(plan="Starter", credits="500"))

    # The plans could not be read: the reason in the tooltip is translated too.
    broken = database_without_schema(db_url, tmp_path)
    try:
        failing = make_bar(qtbot, broken, worker)
        with qtbot.waitSignal(failing.plans_failed):
            failing.load()
        assert failing.plan.toolTip().startswith("⟦The plans could not be loaded: ⟦")
        assert untranslated_texts(failing, combos=True) == []
    finally:
        worker.wait_for_done()
        QCoreApplication.processEvents()
        broken.close()


# A popup on the offscreen platform: it cannot raise it or grab the keyboard for it.
@pytest.mark.qt_log_ignore(r"This plugin does not support (raise|grabbing the keyboard)")
def test_plans_that_cannot_be_read_leave_all_plans_and_a_plain_reason(
    qtbot: QtBot, world: World, worker: Worker, db_url: str, tmp_path: Path
) -> None:
    broken = database_without_schema(db_url, tmp_path)
    try:
        bar = make_bar(qtbot, broken, worker)
        bar.show()
        qtbot.waitExposed(bar)
        with qtbot.waitSignal(bar.plans_failed) as failed:
            bar.load()
        assert failed.args == [DATABASE_TROUBLE]
        assert combo_items(bar.plan) == [("All plans", None)]
        assert DATABASE_TROUBLE in bar.plan.toolTip()
        assert "Traceback" not in bar.plan.toolTip()
        # Opening the list asks again.
        with qtbot.waitSignal(bar.plans_failed):
            bar.plan.showPopup()
        bar.plan.hidePopup()
    finally:
        worker.wait_for_done()
        broken.close()


# -- the main window ------------------------------------------------------------------


def buy(world: World, account_id: int, package: str) -> None:
    buy_package(world.db, world.platform, account_id=account_id, package_code=package,
                payment_reference=key("pay"), idempotency_key=key("buy"), at=world.t0)


def set_status(world: World, account_id: int, status: str) -> None:
    # No service changes an account's status yet.
    world.db.write(lambda s: s.execute(
        text("UPDATE accounts SET status = :status WHERE id = :id"),
        {"status": status, "id": account_id}))


@pytest.fixture
def accounts(world: World) -> dict[str, int]:
    """Six accounts on every plan; totals 0 to 10,000; three with an unrefunded
    failed charge, one whose failed charge was refunded; one suspended, one closed."""

    def new(name: str, email: str, plan: str) -> int:
        return open_account(world.db, world.platform, name=name, email=email, plan_code=plan)

    ids = {
        "acme": world.account_id,  # Starter, 500 purchased
        "acme_eu": new("Acme Europe", "eu@acme.test", "starter"),
        "bravo": new("Bravo Media", "hi@bravo.test", "growth"),
        "charlie": new("Charlie Co", "c@charlie.test", "pro"),
        "delta": new("Delta Shop", "d@delta.test", "pro"),
        "echo": new("Echo Ads", "e@echo.test", "agency"),
    }
    buy(world, ids["acme_eu"], "pack_500")
    buy(world, ids["charlie"], "pack_2000")
    buy(world, ids["delta"], "pack_10000")
    for name in ("acme_eu", "bravo", "delta"):
        charge(world, 40, status="failed", account_id=ids[name])
    refunded = [charge(world, credits, status="failed", account_id=ids["charlie"]).charge_id
                for credits in (40, 30)]
    refund(world, world.support, *refunded, account_id=ids["charlie"])
    set_status(world, ids["delta"], "suspended")
    set_status(world, ids["echo"], "closed")
    return ids


def open_window(qtbot: QtBot, make_window: MakeWindow, **options: object) -> MainWindow:
    window = make_window(**options)
    window.show()
    qtbot.waitUntil(lambda: not window.model.is_loading and not window.filter_bar.is_loading)
    return window


def shown(window: MainWindow) -> list[str]:
    model = window.model
    return [model.account(r).name for r in range(model.rowCount())]


def choose(qtbot: QtBot, window: MainWindow, combo: QComboBox, data: object) -> None:
    index = combo.findData(data)
    assert index >= 0, data
    combo.setCurrentIndex(index)
    qtbot.waitUntil(lambda: not window.model.is_loading)


def tick(qtbot: QtBot, window: MainWindow, box: QWidget) -> None:
    qtbot.mouseClick(box, Qt.MouseButton.LeftButton, pos=QPoint(8, box.height() // 2))
    qtbot.waitUntil(lambda: not window.model.is_loading)


def expected_names(world: World, where: str) -> list[str]:
    """Account names straight from the table, in the list's default order (by name)."""
    rows = raw(world.db, "SELECT a.name FROM accounts a JOIN plans p ON p.id = a.plan_id "
                         f"WHERE {where}")
    return sorted((str(r[0]) for r in rows), key=str.casefold)


def test_the_filter_bar_sits_beside_the_search_field(
    qtbot: QtBot, world: World, make_window: MakeWindow
) -> None:
    window = open_window(qtbot, make_window)
    bar = window.filter_bar
    assert bar.isVisible()
    search = window.search.geometry()
    where = bar.geometry()
    assert abs(where.center().y() - search.center().y()) <= search.height()
    assert where.left() >= search.right()
    assert window.search.width() > 200  # the search field keeps the room left


def test_each_filter_shows_exactly_the_matching_accounts(
    qtbot: QtBot, world: World, accounts: dict[str, int], make_window: MakeWindow
) -> None:
    window = open_window(qtbot, make_window)
    bar = window.filter_bar
    everyone = expected_names(world, "1 = 1")
    assert shown(window) == everyone and len(everyone) == 6

    choose(qtbot, window, bar.plan, "pro")
    assert shown(window) == expected_names(world, "p.code = 'pro'") == [
        "Charlie Co", "Delta Shop"]
    choose(qtbot, window, bar.plan, None)
    assert shown(window) == everyone

    choose(qtbot, window, bar.status, "suspended")
    assert shown(window) == expected_names(world, "a.status = 'suspended'") == ["Delta Shop"]
    choose(qtbot, window, bar.status, "closed")
    assert shown(window) == ["Echo Ads"]
    choose(qtbot, window, bar.status, "active")
    assert shown(window) == expected_names(world, "a.status = 'active'")
    assert len(shown(window)) == 4
    choose(qtbot, window, bar.status, None)

    # Total available below 100 (the default), then below 600.
    tick(qtbot, window, bar.low_balance)
    assert window.model.query.low_balance_below == 100
    totals = "a.purchased_balance + a.refund_balance"
    assert shown(window) == expected_names(world, f"{totals} < 100") == [
        "Bravo Media", "Echo Ads"]
    bar.threshold.setValue(600)
    qtbot.waitUntil(lambda: window.model.query.low_balance_below == 600
                    and not window.model.is_loading)
    assert shown(window) == expected_names(world, f"{totals} < 600") == [
        "Acme Ads", "Acme Europe", "Bravo Media", "Echo Ads"]
    # Strictly below: 500 is not below 500.
    bar.threshold.setValue(500)
    qtbot.waitUntil(lambda: window.model.query.low_balance_below == 500
                    and not window.model.is_loading)
    assert shown(window) == ["Bravo Media", "Echo Ads"]
    tick(qtbot, window, bar.low_balance)
    assert shown(window) == everyone

    tick(qtbot, window, bar.unrefunded)
    assert window.model.query.unrefunded_failed_only
    # Charlie's failed charges were refunded; Acme Ads and Echo never failed.
    unrefunded = expected_names(world, (
        "EXISTS (SELECT 1 FROM usage_charges c WHERE c.account_id = a.id "
        "AND c.status = 'failed' AND c.credits > 0 "
        "AND NOT EXISTS (SELECT 1 FROM refunds r WHERE r.charge_id = c.id))"))
    assert shown(window) == unrefunded == ["Acme Europe", "Bravo Media", "Delta Shop"]


def test_filters_combine_with_the_search_and_the_sort_and_clear_restores(
    qtbot: QtBot, world: World, accounts: dict[str, int], make_window: MakeWindow
) -> None:
    searched: list[AccountQuery] = []

    def search(db: Database, query: AccountQuery, after: Cursor | None,
               limit: int) -> Page[AccountRow]:
        searched.append(query)
        return search_accounts(db, query, after=after, limit=limit)

    window = open_window(qtbot, make_window, search=search)
    bar = window.filter_bar
    header = window.table.horizontalHeader()
    header.setSortIndicator(COL_TOTAL, Qt.SortOrder.DescendingOrder)
    qtbot.waitUntil(lambda: window.model.query.sort is AccountSort.TOTAL
                    and not window.model.is_loading)

    tick(qtbot, window, bar.unrefunded)
    # Still by total, largest first.
    assert shown(window) == ["Delta Shop", "Acme Europe", "Bravo Media"]
    totals = [window.model.account(r).total for r in range(window.model.rowCount())]
    assert totals == [10_000, 500, 0]

    qtbot.keyClicks(window.search, "acme")
    qtbot.keyClick(window.search, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: not window.model.is_loading)
    assert shown(window) == ["Acme Europe"]

    # A filter change keeps the search text and the sort.
    tick(qtbot, window, bar.unrefunded)
    # 500 each: a tie on the total goes by id, here the newer account first.
    assert shown(window) == ["Acme Europe", "Acme Ads"]
    tick(qtbot, window, bar.low_balance)
    bar.threshold.setValue(600)
    qtbot.waitUntil(lambda: window.model.query.low_balance_below == 600
                    and not window.model.is_loading)
    choose(qtbot, window, bar.status, "active")
    assert shown(window) == ["Acme Europe", "Acme Ads"]
    last = searched[-1]
    assert (last.text, last.sort, last.descending) == ("acme", AccountSort.TOTAL, True)
    assert (last.status, last.low_balance_below, last.plan_code) == ("active", 600, None)
    assert header.sortIndicatorSection() == COL_TOTAL

    # Nothing matches: the placeholder says the filters are why.
    choose(qtbot, window, bar.plan, "agency")
    assert shown(window) == []
    assert window.table.placeholder == "No account matches “acme” with these filters."
    window.search.clear()
    qtbot.keyClick(window.search, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: window.model.query.text == "" and not window.model.is_loading)
    assert shown(window) == []  # Echo Ads is closed, and has 0 credits
    assert window.table.placeholder == "No account matches the filters."

    qtbot.mouseClick(bar.clear_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not window.model.is_loading)
    assert window.model.filters == AccountFilters()
    assert [window.model.account(r).total for r in range(6)] == [
        10_000, 2_000, 500, 500, 0, 0]
    assert window.model.query.sort is AccountSort.TOTAL
    assert bar.clear_button.isHidden()
    assert not window.model.filters.active and window.model.query.text == ""


def test_an_outdated_filtered_read_is_discarded(
    qtbot: QtBot, world: World, accounts: dict[str, int], worker: Worker
) -> None:
    release = threading.Event()

    def search(db: Database, query: AccountQuery, after: Cursor | None,
               limit: int) -> Page[AccountRow]:
        page = search_accounts(db, query, after=after, limit=limit)
        if query.plan_code == "pro":
            assert release.wait(10)  # the slow, older read
        return page

    model = AccountsModel(world.db, worker, search=search)
    model.set_query("acme")
    qtbot.waitUntil(lambda: not model.is_loading)
    loaded: list[AccountFilters] = []
    model.page_loaded.connect(lambda: loaded.append(model.filters))
    model.set_filters(AccountFilters(plan_code="pro"))
    model.set_filters(AccountFilters(unrefunded_failed_only=True))
    qtbot.waitUntil(lambda: len(loaded) == 1)
    release.set()
    assert worker.wait_for_done(10_000)
    QCoreApplication.processEvents()  # the old page's outcome is delivered (and dropped)
    assert loaded == [AccountFilters(unrefunded_failed_only=True)]
    assert [model.account(r).name for r in range(model.rowCount())] == ["Acme Europe"]
    assert model.query.text == "acme"


# -- the account detail's features --------------------------------------------------


def test_the_detail_feature_list_comes_from_the_database(
    qtbot: QtBot, world: World, make_window: MakeWindow
) -> None:
    world.db.write(lambda s: s.execute(text(
        "UPDATE features SET enabled = false WHERE code = 'radar_analysis'")))
    world.db.write(lambda s: s.execute(text(
        "INSERT INTO features (code, name, description, enabled) "
        "VALUES ('brand_kit', 'Brand kit', 'Build a brand kit', true)")))
    charge(world, status="succeeded", feature_code="url_brief")
    charge(world, status="succeeded", feature_code="ad_image")
    window = open_window(qtbot, make_window)
    detail = window.open_account(window.model.account(0))
    assert isinstance(detail, AccountDetail)
    assert combo_items(detail.feature_filter)[0] == ("All features", None)
    qtbot.waitUntil(lambda: detail.summary is not None and not detail.is_loading)

    features = raw(world.db, "SELECT code, name, enabled FROM features")
    in_use = sorted((r for r in features if r[2]), key=lambda r: str(r[1]).casefold())
    switched_off = sorted((r for r in features if not r[2]),
                          key=lambda r: str(r[1]).casefold())
    assert combo_items(detail.feature_filter) == (
        [("All features", None)]
        + [(str(r[1]), r[0]) for r in in_use]
        + [(f"{r[1]} (disabled)", r[0]) for r in switched_off]
    )
    assert ("Brand kit", "brand_kit") in combo_items(detail.feature_filter)
    assert [c for _, c in combo_items(detail.feature_filter)[-2:]] == [
        "asset_tagging", "radar_analysis"]
    last = detail.feature_filter.count() - 1
    assert "older charges" in str(detail.feature_filter.itemData(
        last, Qt.ItemDataRole.ToolTipRole))
    assert detail.feature_filter.accessibleName() == "Feature filter"

    detail.feature_filter.setCurrentIndex(detail.feature_filter.findData("url_brief"))
    qtbot.waitUntil(lambda: detail.charges.filter.feature == "url_brief"
                    and not detail.is_loading)
    assert [detail.charges.row_at(r).feature_code
            for r in range(detail.charges.rowCount())] == ["url_brief"]

    # Read again on refresh: a feature added since appears, the choice stays.
    world.db.write(lambda s: s.execute(text(
        "INSERT INTO features (code, name, description, enabled) "
        "VALUES ('copy_check', 'Copy check', 'Check ad copy', true)")))
    detail.refresh()
    qtbot.waitUntil(lambda: not detail.is_loading)
    assert ("Copy check", "copy_check") in combo_items(detail.feature_filter)
    assert detail.feature_filter.currentData() == "url_brief"
    assert detail.charges.filter.feature == "url_brief"
