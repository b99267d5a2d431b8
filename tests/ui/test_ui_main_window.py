"""The main window, driven as a person would: typing, clicking headers, Enter, Ctrl+F."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, QSysInfo, Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QApplication, QMenu, QPushButton, QToolBar
from pytestqt.qtbot import QtBot
from services.factories import FEB_START, World, key

from credits_desktop.domain.permissions import Role
from credits_desktop.services.operations import Actor
from credits_desktop.services.paging import Cursor, Page
from credits_desktop.services.purchases import buy_package
from credits_desktop.services.queries import (
    AccountQuery,
    AccountRow,
    AccountSort,
    search_accounts,
)
from credits_desktop.store.database import Database
from credits_desktop.ui.accounts_model import COL_NAME, COL_TOTAL
from credits_desktop.ui.main_window import SEARCH_PLACEHOLDER, MainWindow, MessageStatusBar
from credits_desktop.ui.workers import DATABASE_TROUBLE

from .conftest import AddAccounts, MakeWindow
from .pseudo_translation import untranslated_texts
from .test_ui_accounts_model import database_without_schema


def wait_idle(qtbot: QtBot, window: MainWindow) -> None:
    qtbot.waitUntil(lambda: not window.model.is_loading)


def shown_emails(window: MainWindow) -> list[str]:
    model = window.model
    return [model.account(r).email for r in range(model.rowCount())]


def test_the_window_lists_the_accounts_and_says_who_and_where(
    qtbot: QtBot, world: World, make_window: MakeWindow, add_accounts: AddAccounts
) -> None:
    add_accounts(2)
    window = make_window()
    window.show()
    wait_idle(qtbot, window)
    assert window.model.rowCount() == 3
    assert window.search.placeholderText() == SEARCH_PLACEHOLDER
    assert window.count_label.text() == "3 accounts loaded"
    assert window.staff_label.text() == "Sam Support · Support"
    assert world.db.display_url() in window.database_label.toolTip()
    assert window.table.horizontalHeader().sortIndicatorSection() == COL_NAME
    assert not window.error_bar.isVisible()


def test_the_status_bar_never_shows_the_database_password(qtbot: QtBot) -> None:
    # Nothing listens at this address: only how it is displayed matters here.
    db = Database.open("postgresql://staff:s3cret-pw@127.0.0.1:1/credits")
    window = MainWindow(db, Actor(7, "staff", "Sam Support", Role.SUPPORT))
    qtbot.addWidget(window, before_close_func=lambda w: w.worker.wait_for_done())
    try:
        assert "s3cret-pw" not in window.status_text()
        assert "s3cret-pw" not in window.database_label.toolTip()
        assert "***" in window.database_label.text()
        with qtbot.waitSignal(window.model.load_failed, timeout=20_000):
            pass
    finally:
        window.worker.wait_for_done()
        db.close()


def test_typing_in_the_search_field_filters_after_a_pause(
    qtbot: QtBot, world: World, make_window: MakeWindow, add_accounts: AddAccounts
) -> None:
    add_accounts(12)
    add_accounts(2, prefix="Zeta", domain="zeta.test")
    searched: list[str] = []

    def search(db: Database, query: AccountQuery, after: Cursor | None,
               limit: int) -> Page[AccountRow]:
        searched.append(query.text)
        return search_accounts(db, query, after=after, limit=limit)

    window = make_window(search=search)
    window.show()
    wait_idle(qtbot, window)
    assert window.model.rowCount() == 15

    qtbot.keyClicks(window.search, "customer1")
    # Typed in one go: one search, for the whole text, after the pause.
    qtbot.waitUntil(lambda: window.model.query.text == "customer1")
    wait_idle(qtbot, window)
    assert shown_emails(window) == ["customer10@example.test", "customer11@example.test"]
    qtbot.keyClicks(window.search, "1")
    qtbot.waitUntil(lambda: window.model.query.text == "customer11")
    wait_idle(qtbot, window)
    assert shown_emails(window) == ["customer11@example.test"]
    assert searched == ["", "customer1", "customer11"]
    assert window.count_label.text() == "1 account loaded"


def test_a_search_without_matches_says_so(
    qtbot: QtBot, make_window: MakeWindow
) -> None:
    window = make_window()
    window.show()
    wait_idle(qtbot, window)
    qtbot.keyClicks(window.search, "no-such-customer")
    qtbot.keyClick(window.search, Qt.Key.Key_Return)  # searches at once
    assert window.model.query.text == "no-such-customer"
    wait_idle(qtbot, window)
    assert window.model.rowCount() == 0
    assert window.table.placeholder == "No account matches “no-such-customer”."
    assert window.count_label.text() == "0 accounts loaded"


def test_clicking_a_header_sorts_in_sql_and_again_reverses(
    qtbot: QtBot, world: World, make_window: MakeWindow, add_accounts: AddAccounts
) -> None:
    ids = add_accounts(4)
    for account_id, package in zip(ids, ["pack_2000", "pack_10000", "pack_500"], strict=False):
        buy_package(world.db, world.platform, account_id=account_id, package_code=package,
                    payment_reference=key("pay"), idempotency_key=key("buy"), at=world.t0)
    window = make_window()
    window.show()
    wait_idle(qtbot, window)
    header = window.table.horizontalHeader()

    def click_header(column: int) -> None:
        x = header.sectionViewportPosition(column) + header.sectionSize(column) // 2
        qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton,
                         pos=QPoint(x, header.height() // 2))

    def totals() -> list[int]:
        return [window.model.account(r).total for r in range(window.model.rowCount())]

    def check_order() -> None:
        descending = window.model.query.descending
        assert totals() == sorted(totals(), reverse=descending)
        expected = Qt.SortOrder.DescendingOrder if descending else Qt.SortOrder.AscendingOrder
        assert header.sortIndicatorOrder() == expected

    click_header(COL_TOTAL)
    qtbot.waitUntil(lambda: window.model.query.sort is AccountSort.TOTAL)
    wait_idle(qtbot, window)
    check_order()
    first = window.model.query.descending
    assert len(set(totals())) > 2  # an order that tells something

    click_header(COL_TOTAL)
    qtbot.waitUntil(lambda: window.model.query.descending is not first)
    wait_idle(qtbot, window)
    check_order()
    assert window.model.query.sort is AccountSort.TOTAL and window.model.rowCount() == 5


def test_scrolling_down_loads_the_next_page(
    qtbot: QtBot, make_window: MakeWindow, add_accounts: AddAccounts
) -> None:
    add_accounts(29)  # 30 accounts
    window = make_window(page_size=10)
    window.resize(900, 260)  # fewer rows fit than a page holds
    window.show()
    qtbot.waitExposed(window)
    wait_idle(qtbot, window)
    assert window.model.rowCount() == 10
    assert window.count_label.text() == "10 accounts loaded, scroll for more"
    window.table.scrollToBottom()
    qtbot.waitUntil(lambda: window.model.rowCount() == 20)
    wait_idle(qtbot, window)
    window.table.scrollToBottom()
    qtbot.waitUntil(lambda: window.model.rowCount() == 30)
    wait_idle(qtbot, window)
    assert window.model.is_complete
    assert window.count_label.text() == "30 accounts loaded"


def test_enter_on_a_row_opens_the_account_in_a_tab(
    qtbot: QtBot, world: World, make_window: MakeWindow
) -> None:
    window = make_window()
    window.show()
    wait_idle(qtbot, window)
    assert not window.tabs.isVisible()
    window.table.setFocus()
    window.table.setCurrentIndex(window.model.index(0, 1))
    qtbot.keyClick(window.table, Qt.Key.Key_Return)
    assert window.tabs.isVisible() and window.tabs.count() == 1
    detail = window.current_detail()
    assert detail is not None and detail.account_id == world.account_id
    qtbot.waitUntil(lambda: detail.summary is not None)
    # Starter's 500 plan credits of January 2026 (expired once it is over, as the
    # summary is for now) and the 500 purchased credits, which never expire.
    plan_left = 500 if datetime.now(UTC) < FEB_START else 0
    assert detail.card_text("plan") == f"{plan_left} / 500"
    assert detail.card_text("purchased") == "500"
    assert detail.card_text("total") == f"{plan_left + 500:,}"
    assert "ops@acme.test" in detail.subtitle.text()
    qtbot.waitUntil(lambda: not detail.is_loading)
    window.close_tab_action.trigger()
    assert window.tabs.count() == 0 and not window.tabs.isVisible()


def test_double_click_opens_the_account_too(
    qtbot: QtBot, world: World, make_window: MakeWindow, add_accounts: AddAccounts
) -> None:
    add_accounts(1, prefix="Zeta", domain="zeta.test")
    window = make_window()
    window.show()
    wait_idle(qtbot, window)
    where = window.table.visualRect(window.model.index(1, 0)).center()
    # A double click is a click followed by a second press, as the mouse sends it.
    qtbot.mouseClick(window.table.viewport(), Qt.MouseButton.LeftButton, pos=where)
    qtbot.mouseDClick(window.table.viewport(), Qt.MouseButton.LeftButton, pos=where)
    qtbot.waitUntil(lambda: window.current_detail() is not None)
    detail = window.current_detail()
    assert detail is not None
    qtbot.waitUntil(lambda: detail.summary is not None and not detail.is_loading)
    assert "zeta00@zeta.test" in detail.subtitle.text()
    assert detail.card_text("purchased") == "0"


def test_ctrl_f_puts_the_cursor_in_the_search_field(
    qtbot: QtBot, make_window: MakeWindow
) -> None:
    window = make_window()
    window.show()
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window)
    window.table.setFocus()
    assert not window.search.hasFocus()
    qtbot.keyClick(window.table, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    assert window.search.hasFocus()
    wait_idle(qtbot, window)


def test_a_failing_query_shows_a_plain_message_and_no_traceback(
    qtbot: QtBot, world: World, db_url: str, tmp_path: Path
) -> None:
    broken = database_without_schema(db_url, tmp_path)
    window = MainWindow(broken, world.support)
    qtbot.addWidget(window, before_close_func=lambda w: w.worker.wait_for_done())
    try:
        window.show()
        qtbot.waitUntil(lambda: window.error_bar.isVisible())
        message = window.error_text.text()
        assert message == DATABASE_TROUBLE
        assert "Traceback" not in message and "no such table" not in message
        assert window.table.placeholder == "The accounts could not be loaded."
        assert window.count_label.text() == "No accounts loaded"
        # "Try again" asks once more (and fails once more, plainly).
        with qtbot.waitSignal(window.model.load_failed):
            qtbot.mouseClick(window.findChild(QPushButton, "retry"), Qt.MouseButton.LeftButton)
        assert window.error_bar.isVisible()
    finally:
        window.worker.wait_for_done()
        broken.close()


def test_a_long_status_message_is_elided_before_the_staff_and_whole_in_its_tooltip(
    qtbot: QtBot, make_window: MakeWindow
) -> None:
    window = make_window()
    window.resize(900, 600)
    window.show()
    qtbot.waitExposed(window)
    wait_idle(qtbot, window)
    status = window.statusBar()
    assert isinstance(status, MessageStatusBar)
    message = ("This change had already been saved; it was not applied twice. Refunded "
               "1,234 credits on 12 charges of Andersson & O'Brien Marketing Co. after "
               "the incident of the image feature")
    status.showMessage(message, 10_000)
    QApplication.processEvents()
    # The message as given (the tests and screen readers read it whole), in the tooltip
    # too; on screen it ends with "…" before the signed-in staff member.
    assert status.currentMessage() == message and status.toolTip() == message
    shown = status.shown_message()
    assert shown.endswith("…") and message.startswith(shown[:-1].rstrip())
    area = status.message_rect()
    assert area.right() < window.staff_label.x()
    assert status.fontMetrics().horizontalAdvance(shown) <= area.width()
    # What is painted is the elided text: its ink ends where that text ends.
    image = status.grab().toImage()
    background = image.pixelColor(area.right(), 1)
    inked = [x for x in range(area.left(), area.right() + 1)
             if any(image.pixelColor(x, y) != background for y in range(image.height()))]
    text_end = area.left() + status.fontMetrics().horizontalAdvance(shown)
    assert inked and text_end - 12 <= inked[-1] <= text_end + 1

    # A short message is shown whole; once it goes, so does the tooltip.
    status.showMessage("Connection restored", 10_000)
    assert status.shown_message() == "Connection restored"
    status.clearMessage()
    assert status.toolTip() == "" and window.count_label.isVisible()


@pytest.mark.parametrize("role_user", ["finance", "admin"])
def test_the_status_bar_names_the_role(
    qtbot: QtBot, world: World, make_window: MakeWindow, role_user: str
) -> None:
    actor = getattr(world, role_user)
    window = make_window(actor)
    wait_idle(qtbot, window)
    assert window.staff_label.text() == f"{actor.display_name} · {role_user.title()}"


# -- the finish: shortcuts, tool bar, translation ---------------------------------------------


def menu_actions(window: MainWindow) -> list[QAction]:
    """Every action of the menu bar's menus and their submenus (no separators)."""
    found: list[QAction] = []
    menus = [a.menu() for a in window.menuBar().actions()]
    while menus:
        menu = menus.pop(0)
        assert isinstance(menu, QMenu)
        for action in menu.actions():
            if action.isSeparator():
                continue
            if action.menu() is not None:
                menus.append(action.menu())
            else:
                found.append(action)
    return found


def test_every_menu_item_has_its_own_keyboard_shortcut(
    qtbot: QtBot, make_window: MakeWindow
) -> None:
    window = make_window()
    actions = menu_actions(window)
    assert len(actions) >= 25  # File, View (and its Sort submenu), Account, Work, Help
    lacking = [a.text() for a in actions if not a.shortcuts()]
    assert lacking == []
    keys = [key.toString() for a in actions for key in a.shortcuts()]
    assert sorted(k for k in set(keys) if keys.count(k) > 1) == []
    by_text = {a.text(): a.shortcut().toString() for a in actions}
    assert by_text["&Quit"] == "Ctrl+Q"
    assert by_text["&Connect to another database…"] == "Ctrl+Shift+O"
    assert by_text["&User guide"] == "F1"
    assert by_text["&Refresh"] == "F5"
    assert by_text["&Name"] == "Alt+1"
    wait_idle(qtbot, window)


def test_the_tool_bar_holds_the_everyday_actions(
    qtbot: QtBot, world: World, make_window: MakeWindow
) -> None:
    window = make_window(world.finance)
    window.show()
    wait_idle(qtbot, window)
    bar = window.findChild(QToolBar, "mainToolBar")
    assert bar is window.tool_bar and bar.isVisible()
    shown = [a for a in bar.actions() if not a.isSeparator()]
    assert shown == [window.refresh_action, window.find_action, window.refund_action,
                     window.adjust_action, window.failures_action, window.approvals_action,
                     window.audit_action, window.dashboard_action]
    assert [bar.widgetForAction(a).text() for a in shown] == [
        "Refresh", "Find", "Refund…", "Adjust…", "Failures", "Approvals", "Audit", "Dashboard"]
    # A click on a button does what the menu item does.
    qtbot.mouseClick(bar.widgetForAction(window.failures_action), Qt.MouseButton.LeftButton)
    assert window.tabs.currentWidget().property("worklist") == "failures"
    window.worker.wait_for_done()


def test_every_text_of_the_window_goes_through_the_translation(
    qtbot: QtBot, world: World, make_window: MakeWindow, add_accounts: AddAccounts,
    pseudo_translated: object
) -> None:
    add_accounts(2)
    # An administrator: nothing is refused (refusals are the services' own sentences).
    window = make_window(world.admin)
    window.show()
    qtbot.waitUntil(lambda: window.model.rowCount() == 3 and not window.model.is_loading)
    detail = window.open_account(window.model.account(0))
    qtbot.waitUntil(lambda: detail.summary is not None and not detail.is_loading)
    # Selections and filters change tooltips: these too. (Selecting builds the charges
    # and ledger pages, which wait for their first showing otherwise.)
    detail.charges_table.selectAll()
    detail.ledger_table.selectRow(0)
    about = window.open_about()
    qtbot.waitUntil(lambda: not about.loading)
    data = {world.db.display_url(), about.revision.text()}
    for number in range(window.model.rowCount()):
        account = window.model.account(number)
        data |= {account.name, account.email, account.plan_name}
    summary = detail.summary
    assert summary is not None

    url = world.db.display_url()

    def is_data(text: str) -> bool:
        start, _, end = text.partition("…")  # a long address, shortened in the middle
        return (text in data or text.startswith(f"{summary.name} (")
                or text == QSysInfo.prettyProductName()
                or (bool(end) and url.startswith(start) and url.endswith(end)))

    found = untranslated_texts([window, about], is_data)
    assert found == []
    assert window.search.placeholderText().startswith("⟦")
    assert window.count_label.text().startswith("⟦")
    assert about.support_text().startswith("⟦Credits Desk")
    window.worker.wait_for_done()
