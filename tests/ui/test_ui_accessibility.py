"""Accessibility and the keyboard, across the whole interface, on a real database.

Every window is built for real (the main window with an account and each work list
open, every dialog) and its widgets are walked.

The naming rule the tests hold the code to:

* Every widget a user can operate (buttons, check boxes, line and text edits, combo
  boxes, spin and date boxes, tables and lists, tab widgets and their tab bars,
  sliders) has a non-empty accessible name saying what it is ("Account search",
  "Charges of the account"): a screen reader has nothing else to say for a field
  whose label sits beside it, or for a table.
* A button may go without one when its visible text already says what it does,
  since screen readers read a button's text: the standard buttons of a dialog's
  button box (OK, Cancel, Open, Close) and buttons of two words or more ("Test
  connection", "Refund 40 credits"). A one-word button ("New", "Browse…",
  "Refresh") does not say what it acts on, so it needs a name.
* Qt's own parts of a widget are left out, their owner speaks for them: the line
  edit and list inside a combo box, the line edit inside a spin box, a table's
  headers and corner button, a tab bar's scroll and close buttons, the menu bar's
  overflow button, a date box's calendar.
* Among the widgets visible at the same time in one window, no two say the same
  thing (two "Feature filter"s are fine when they sit on different tabs).
* Mnemonics (Alt+letter) do not collide within what one window shows, and every
  menu and menu item has one.

The keyboard: Tab goes through each window in its visual order (search field,
filters, accounts table, then the open tab's contents; in a dialog the fields top to
bottom, then the buttons in the platform's order), reaches every control and never
gets stuck in a table; and the main flow (find an account, open it, move between
its lists and the open tabs, close it, sort the accounts, open a work list's row)
works with keys alone.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import keyring
import keyring.backends.fail
import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QAbstractSlider,
    QAbstractSpinBox,
    QApplication,
    QCalendarWidget,
    QComboBox,
    QDateTimeEdit,
    QDialogButtonBox,
    QLabel,
    QLineEdit,
    QMenu,
    QMenuBar,
    QPlainTextEdit,
    QTabBar,
    QTabWidget,
    QTextEdit,
    QWidget,
)
from pytestqt.qtbot import QtBot
from services.factories import World, adjust, charge, ledger_of, refund

from credits_desktop.services.previews import reversal_target
from credits_desktop.services.queries import AccountSort, ChargeRow, charges_page
from credits_desktop.services.worklists import requests_page
from credits_desktop.ui import accounts_model as am
from credits_desktop.ui.account_detail import AccountDetail
from credits_desktop.ui.adjust_dialog import AdjustDialog
from credits_desktop.ui.approvals_view import DecisionDialog
from credits_desktop.ui.change_dialog import ChangeDialog
from credits_desktop.ui.connection_dialog import ConnectionDialog
from credits_desktop.ui.error_report import ErrorDialog
from credits_desktop.ui.failures_view import FailuresView
from credits_desktop.ui.incident_dialog import IncidentDialog
from credits_desktop.ui.main_window import MainWindow
from credits_desktop.ui.profiles import ProfileStore
from credits_desktop.ui.refund_dialog import RefundDialog
from credits_desktop.ui.reverse_dialog import ReverseDialog
from credits_desktop.ui.sign_in import SignInDialog

from .conftest import AddAccounts, MakeWindow

WAIT_MS = 10_000

INTERACTIVE = (QAbstractButton, QLineEdit, QComboBox, QAbstractSpinBox, QAbstractItemView,
               QPlainTextEdit, QTextEdit, QAbstractSlider, QTabBar, QTabWidget)
# Widgets whose children are Qt's own parts of them.
OWNERS = (QComboBox, QAbstractSpinBox, QAbstractItemView, QTabBar, QLineEdit,
          QPlainTextEdit, QTextEdit, QCalendarWidget, QMenuBar, QMenu)

_MNEMONIC = re.compile(r"&([^&\s])")


# -- what the rule looks at -----------------------------------------------------------------


def own_widgets(top: QWidget) -> list[QWidget]:
    """The operable widgets of the window ``top`` that the application made."""
    found: list[QWidget] = []
    for widget in top.findChildren(QWidget):
        if not isinstance(widget, INTERACTIVE) or widget.window() is not top:
            continue
        parent = widget.parentWidget()
        part = False
        while parent is not None and parent is not top:
            if isinstance(parent, OWNERS):
                part = True
                break
            parent = parent.parentWidget()
        if not part:
            found.append(widget)
    return found


def plain(text: str) -> str:
    """Text as a screen reader says it: no mnemonic marks, no trailing ellipsis."""
    return re.sub(r"&(.)", r"\1", text).rstrip("…").strip()


def speaks_for_itself(widget: QWidget) -> bool:
    if not isinstance(widget, QAbstractButton):
        return False
    box = widget.parentWidget()
    if isinstance(box, QDialogButtonBox) and \
            box.standardButton(widget) != QDialogButtonBox.StandardButton.NoButton:
        return True
    return len(plain(widget.text()).split()) >= 2


def spoken(widget: QWidget) -> str:
    name = widget.accessibleName().strip()
    if name:
        return name
    return plain(widget.text()) if isinstance(widget, QAbstractButton) else ""


def tag(widget: QWidget) -> str:
    return widget.objectName() or f"{type(widget).__name__} {spoken(widget)!r}"


def check_names(top: QWidget) -> None:
    """The naming rule of the module docstring, for ``top`` as it is now."""
    widgets = own_widgets(top)
    assert widgets, "no widget found"
    unnamed = [tag(w) for w in widgets
               if not w.accessibleName().strip() and not speaks_for_itself(w)]
    assert unnamed == [], f"{top.objectName() or type(top).__name__}: unnamed {unnamed}"
    shown = Counter(spoken(w) for w in widgets if w.isVisible())
    assert [name for name, count in shown.items() if count > 1] == []


def mnemonics(top: QWidget, *, visible_only: bool) -> list[str]:
    """The Alt+letter keys of ``top``'s buttons, labels with a buddy, tabs and menus."""
    texts: list[str] = []
    for widget in top.findChildren(QWidget):
        if widget.window() is not top or (visible_only and not widget.isVisible()):
            continue
        if isinstance(widget, QAbstractButton | QLabel):
            if not isinstance(widget, QLabel) or widget.buddy() is not None:
                texts.append(widget.text())
        elif isinstance(widget, QTabBar):
            texts.extend(widget.tabText(i) for i in range(widget.count()))
        elif isinstance(widget, QMenuBar):
            texts.extend(a.text() for a in widget.actions())
    return [key for key in map(mnemonic, texts) if key]


def mnemonic(text: str) -> str:
    """The Alt+letter key ``text`` marks with "&", lower case ("" for none)."""
    found = _MNEMONIC.search(text)
    return found.group(1).lower() if found else ""


def check_mnemonics(top: QWidget, *, visible_only: bool = False) -> None:
    keys = Counter(mnemonics(top, visible_only=visible_only))
    assert [key for key, count in keys.items() if count > 1] == []


# -- the keyboard ----------------------------------------------------------------------------


def activate(qtbot: QtBot, top: QWidget) -> None:
    top.show()
    top.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is top)


def focused() -> QWidget:
    widget = QApplication.focusWidget()
    assert widget is not None
    return widget


def tab_cycle(qtbot: QtBot, start: QWidget, *, backward: bool = False,
              limit: int = 60) -> list[QWidget]:
    """The widgets Tab (or Shift+Tab) visits from ``start`` until it comes back."""
    start.setFocus(Qt.FocusReason.TabFocusReason)
    qtbot.waitUntil(lambda: start.hasFocus())
    visited = [start]
    key = Qt.Key.Key_Backtab if backward else Qt.Key.Key_Tab
    modifier = Qt.KeyboardModifier.ShiftModifier if backward \
        else Qt.KeyboardModifier.NoModifier
    for _ in range(limit):
        qtbot.keyClick(focused(), key, modifier)
        if focused() is visited[-1] and isinstance(focused(), QDateTimeEdit):
            continue  # Tab walks a date's parts (day, month…) before leaving, as in Qt
        if focused() is start:
            return visited
        assert focused() not in visited, f"Tab is stuck: {[tag(w) for w in visited]}"
        visited.append(focused())
    raise AssertionError(f"Tab never came back: {[tag(w) for w in visited]}")


def tab_stops(top: QWidget) -> set[QWidget]:
    """The widgets of ``top`` that Tab must reach: shown, enabled, taking Tab focus."""
    return {w for w in own_widgets(top)
            if w.isVisible() and w.isEnabled()
            and w.focusPolicy() & Qt.FocusPolicy.TabFocus
            and not isinstance(w, QTabWidget)}  # its tab bar takes the focus


def check_tab_order(qtbot: QtBot, top: QWidget, start: QWidget) -> list[str]:
    """Tab from ``start`` reaches every control once, Shift+Tab goes back the same way;
    returns the order, by object name (or spoken name)."""
    forward = tab_cycle(qtbot, start)
    missed = tab_stops(top) - set(forward)
    assert not missed, f"never reached with Tab: {[tag(w) for w in missed]}"
    backward = tab_cycle(qtbot, start, backward=True)
    assert backward == [start, *reversed(forward[1:])]
    return [tag(w) for w in forward]


def buttons_in_visual_order(box: QDialogButtonBox) -> list[str]:
    shown = [b for b in box.buttons() if b.isVisible() and b.isEnabled()]
    return [tag(b) for b in sorted(shown, key=lambda b: b.geometry().x())]


# -- building the windows ----------------------------------------------------------------------


def _loaded(qtbot: QtBot, window: MainWindow) -> None:
    qtbot.waitUntil(lambda: window.model.rowCount() > 0 and not window.model.is_loading,
                    timeout=WAIT_MS)


def _opened(qtbot: QtBot, window: MainWindow) -> AccountDetail:
    detail = window.open_account(window.model.account(0))
    qtbot.waitUntil(lambda: detail.summary is not None and not detail.is_loading,
                    timeout=WAIT_MS)
    return detail


def _charges(world: World) -> list[ChargeRow]:
    return list(charges_page(world.db, world.account_id, limit=100).rows)


def _dialog(qtbot: QtBot, dialog: QWidget) -> QWidget:
    worker = getattr(dialog, "worker", None)
    qtbot.addWidget(dialog, before_close_func=lambda _d: worker.wait_for_done()
                    if worker is not None else None)
    activate(qtbot, dialog)
    return dialog


def _previewed(qtbot: QtBot, dialog: ChangeDialog) -> None:
    qtbot.waitUntil(lambda: dialog.preview is not None, timeout=WAIT_MS)


@pytest.fixture
def no_keyring() -> Iterator[None]:
    """Nothing may reach the real user's keyring (the connection dialog)."""
    previous = keyring.get_keyring()
    keyring.set_keyring(keyring.backends.fail.Keyring())
    try:
        yield
    finally:
        keyring.set_keyring(previous)


# -- names -----------------------------------------------------------------------------------


def test_every_control_of_the_main_window_is_named(
    qtbot: QtBot, world: World, make_window: MakeWindow, add_accounts: AddAccounts
) -> None:
    charge(world, 40)
    add_accounts(1, prefix="Zeta", domain="zeta.test")
    window = make_window(world.finance)
    activate(qtbot, window)
    _loaded(qtbot, window)
    check_names(window)

    detail = _opened(qtbot, window)
    for index in range(detail.lists.count()):
        detail.lists.setCurrentIndex(index)
        check_names(window)
        check_mnemonics(window, visible_only=True)
    assert detail.charges_table.accessibleName() == "Charges of the account"
    assert detail.date_from.accessibleName() == "Charges from date"
    assert detail.date_to.accessibleName() == "Charges to date"
    assert window.search.accessibleName() == "Account search"
    assert window.table.accessibleName() == "Accounts"
    assert window.tabs.accessibleName() == "Open accounts"

    # A second account beside the first: the same names, but never both shown.
    second = window.open_account(window.model.account(1))
    assert second is not detail and window.tabs.count() == 2
    check_names(window)
    for action in (window.failures_action, window.approvals_action, window.audit_action):
        action.trigger()
        qtbot.waitUntil(lambda: not getattr(window.tabs.currentWidget(), "is_loading", False),
                        timeout=WAIT_MS)
        check_names(window)
        check_mnemonics(window, visible_only=True)

    # The connection banner, while the database cannot be reached.
    window.connection_banner.show_countdown(30)
    check_names(window)
    window.connection_banner.dismiss()
    window.worker.wait_for_done()


def test_every_menu_and_menu_item_has_a_mnemonic(
    qtbot: QtBot, world: World, make_window: MakeWindow
) -> None:
    window = make_window()
    menus = [a for a in window.menuBar().actions() if a.menu() is not None]
    assert len(menus) == 5  # File, View, Account, Work, Help
    titles = [a.text() for a in menus]
    keys = [mnemonic(t) for t in titles]
    assert "" not in keys and len(set(keys)) == len(keys), titles
    while menus:  # the menus, then their submenus
        menu_action = menus.pop()
        menu = menu_action.menu()
        assert isinstance(menu, QMenu)
        menus.extend(a for a in menu.actions() if a.menu() is not None)
        items = [a.text() for a in menu.actions() if not a.isSeparator()]
        assert items
        lacking = [t for t in items if not mnemonic(t)]
        assert lacking == [], f"{menu_action.text()}: {lacking}"
        keys = [mnemonic(t) for t in items]
        assert len(set(keys)) == len(keys), f"{menu_action.text()}: {items}"
    _loaded(qtbot, window)


def test_the_accounts_can_be_sorted_without_the_mouse(
    qtbot: QtBot, world: World, make_window: MakeWindow
) -> None:
    window = make_window()
    _loaded(qtbot, window)
    header = window.table.horizontalHeader()
    assert sorted(window.sort_actions) == list(range(len(am.COLUMNS)))
    assert window.sort_actions[am.COL_NAME].isChecked()

    window.sort_actions[am.COL_EMAIL].trigger()
    qtbot.waitUntil(lambda: window.model.query.sort is AccountSort.EMAIL
                    and not window.model.is_loading, timeout=WAIT_MS)
    assert not window.model.query.descending
    assert header.sortIndicatorSection() == am.COL_EMAIL
    # Chosen again: the other way round, as a second header click.
    window.sort_actions[am.COL_EMAIL].trigger()
    qtbot.waitUntil(lambda: window.model.query.descending and not window.model.is_loading,
                    timeout=WAIT_MS)
    assert header.sortIndicatorOrder() == Qt.SortOrder.DescendingOrder
    # A header click shows in the menu.
    header.setSortIndicator(am.COL_TOTAL, Qt.SortOrder.DescendingOrder)
    assert window.sort_actions[am.COL_TOTAL].isChecked()
    assert not window.sort_actions[am.COL_EMAIL].isChecked()
    qtbot.waitUntil(lambda: window.model.query.sort is AccountSort.TOTAL
                    and not window.model.is_loading, timeout=WAIT_MS)


def test_the_change_dialogs_name_every_control(qtbot: QtBot, world: World) -> None:
    charge(world, 40)
    charge(world, 25)
    rows = _charges(world)
    one = RefundDialog(world.db, world.support, world.account_id, "Acme Ads", rows[:1],
                       at=lambda: world.at(days=2))
    several = RefundDialog(world.db, world.support, world.account_id, "Acme Ads", rows,
                           at=lambda: world.at(days=2))
    adjust_dialog = AdjustDialog(world.db, world.finance, world.account_id, "Acme Ads",
                                 at=lambda: world.at(days=2))
    adjust(world, world.finance, 100)
    entry = next(e for e in ledger_of(world.db, world.account_id) if e.kind == "adjustment")
    reverse = ReverseDialog(world.db, world.finance, reversal_target(world.db, entry.id),
                            "Acme Ads", at=lambda: world.at(days=3))
    for dialog in (one, several, adjust_dialog, reverse):
        _dialog(qtbot, dialog)
        _previewed(qtbot, dialog)
        check_names(dialog)
        check_mnemonics(dialog)


def test_the_other_dialogs_name_every_control_and_tab_in_order(
    qtbot: QtBot, world: World, tmp_path: Path, no_keyring: None
) -> None:
    incident = IncidentDialog(world.db, world.finance)
    _dialog(qtbot, incident)
    qtbot.waitUntil(lambda: incident.feature.count() > 1, timeout=WAIT_MS)
    check_names(incident)
    check_mnemonics(incident)
    # Run waits for a preview.
    assert check_tab_order(qtbot, incident, incident.feature) == [
        "incidentFeature", "incidentModel", "incidentStart", "incidentEnd",
        "incidentPreview", "incidentSample", "incidentReference", "incidentClose"]

    sign_in = SignInDialog(world.db)
    _dialog(qtbot, sign_in)
    qtbot.waitUntil(lambda: sign_in.staff_list.count() > 0, timeout=WAIT_MS)
    check_names(sign_in)
    check_mnemonics(sign_in)
    assert sign_in.select_username("sam")
    assert check_tab_order(qtbot, sign_in, sign_in.staff_list) == [
        "staffList", *buttons_in_visual_order(sign_in.buttons)]

    store = ProfileStore(QSettings(str(tmp_path / "a11y.ini"), QSettings.Format.IniFormat))
    connection = ConnectionDialog(store)
    _dialog(qtbot, connection)
    for index in range(connection.kind_combo.count()):  # SQLite, then PostgreSQL
        connection.kind_combo.setCurrentIndex(index)
        check_names(connection)
        check_mnemonics(connection)

    # A refund of a charge that did not fail waits for approval.
    refund(world, world.support, charge(world, 40, status="succeeded").charge_id)
    request = requests_page(world.db, status="pending", limit=10).rows[0]
    for approve in (True, False):
        # On the incident dialog's worker, which its clean-up waits for.
        decision = DecisionDialog(world.db, world.manager, request, approve=approve,
                                  worker=incident.worker)
        _dialog(qtbot, decision)
        check_names(decision)
        check_mnemonics(decision)
        if not approve:  # a rejection needs a comment before it can be confirmed
            qtbot.keyClicks(decision.comment, "Not a failed generation")
        assert check_tab_order(qtbot, decision, decision.comment) == [
            "decisionComment", *buttons_in_visual_order(decision.buttons)]

    error = ErrorDialog("Something went wrong.", "details")
    _dialog(qtbot, error)
    check_names(error)
    check_mnemonics(error)
    assert len(check_tab_order(qtbot, error, error.copy_button)) == 2


# -- Tab order -----------------------------------------------------------------------------


FILTERS = ["planFilter", "accountStatusFilter", "lowBalanceFilter", "unrefundedFilter"]


def test_tab_goes_from_the_search_through_the_filters_to_the_accounts_and_the_open_tab(
    qtbot: QtBot, world: World, make_window: MakeWindow
) -> None:
    window = make_window(world.finance)
    activate(qtbot, window)
    _loaded(qtbot, window)
    assert window.search.hasFocus()  # where the window starts
    order = check_tab_order(qtbot, window, window.search)
    assert order == ["search", *FILTERS, "accounts"]

    # With the low balance filter on, its threshold and "Clear filters" join in place.
    window.filter_bar.low_balance.setChecked(True)
    window.filter_bar.unrefunded.setChecked(True)
    qtbot.waitUntil(lambda: not window.model.is_loading, timeout=WAIT_MS)
    order = check_tab_order(qtbot, window, window.search)
    assert order == ["search", "planFilter", "accountStatusFilter", "lowBalanceFilter",
                     "lowBalanceThreshold", "unrefundedFilter", "clearFilters", "accounts"]
    window.filter_bar.clear()
    qtbot.waitUntil(lambda: window.model.rowCount() > 0 and not window.model.is_loading,
                    timeout=WAIT_MS)

    # An open account comes after the accounts table: its tab, the adjust button in its
    # heading, its lists' tabs, then the list shown.
    detail = _opened(qtbot, window)
    order = check_tab_order(qtbot, window, window.search)
    assert order == ["search", *FILTERS, "accounts", "qt_tabwidget_tabbar",
                     "adjustPurchased", "qt_tabwidget_tabbar", "grantsTable"]
    detail.lists.setCurrentIndex(1)
    order = check_tab_order(qtbot, window, window.search)
    # The refund button waits for a selection, the dates for "Custom range".
    assert order[-6:] == ["adjustPurchased", "qt_tabwidget_tabbar", "featureFilter",
                          "statusFilter", "periodFilter", "chargesTable"]

    # The banner shown while the database is away comes first, as it sits on top.
    window.connection_banner.show_countdown(30)
    window.search.setFocus()
    qtbot.keyClick(window.search, Qt.Key.Key_Backtab, Qt.KeyboardModifier.ShiftModifier)
    assert focused() is window.connection_banner.retry_button
    qtbot.keyClick(focused(), Qt.Key.Key_Tab)
    assert focused() is window.search
    window.connection_banner.dismiss()
    window.worker.wait_for_done()


def test_tab_in_the_refund_dialog_goes_through_the_fields_then_the_buttons(
    qtbot: QtBot, world: World
) -> None:
    charge(world, 40)
    dialog = RefundDialog(world.db, world.support, world.account_id, "Acme Ads",
                          _charges(world), at=lambda: world.at(days=2))
    _dialog(qtbot, dialog)
    _previewed(qtbot, dialog)
    assert dialog.ticket.hasFocus()  # the one field that must be filled in
    qtbot.keyClicks(dialog.ticket, "#4411")
    qtbot.waitUntil(dialog.ok_button.isEnabled, timeout=WAIT_MS)
    order = check_tab_order(qtbot, dialog, dialog.table)
    fields = ["refundCharges", "refundAmount", "refundReason", "ticket", "note"]
    assert order == fields + buttons_in_visual_order(dialog.buttons)
    # The confirm button comes straight after the last field.
    assert order[len(fields)] == "confirm" or order[-1] == "confirm"
    # Tab in the note leaves it (a tab character there would help no one).
    dialog.note.setFocus()
    qtbot.keyClick(dialog.note, Qt.Key.Key_Tab)
    assert dialog.note.toPlainText() == ""


def test_tab_in_the_other_change_dialogs_follows_the_form(
    qtbot: QtBot, world: World
) -> None:
    dialog = AdjustDialog(world.db, world.finance, world.account_id, "Acme Ads",
                          at=lambda: world.at(days=2))
    _dialog(qtbot, dialog)
    _previewed(qtbot, dialog)
    assert dialog.amount.hasFocus()
    dialog.amount.setValue(10)
    qtbot.keyClicks(dialog.reference, "INV-1")
    qtbot.waitUntil(dialog.ok_button.isEnabled, timeout=WAIT_MS)
    order = check_tab_order(qtbot, dialog, dialog.add_button)
    # The direction is one stop: the arrows move between "Add" and "Remove".
    assert order == ["adjustAdd", "adjustAmount", "adjustReason", "reference", "note",
                     *buttons_in_visual_order(dialog.buttons)]

    adjust(world, world.finance, 100)
    entry = next(e for e in ledger_of(world.db, world.account_id) if e.kind == "adjustment")
    reverse = ReverseDialog(world.db, world.finance, reversal_target(world.db, entry.id),
                            "Acme Ads", at=lambda: world.at(days=3))
    _dialog(qtbot, reverse)
    _previewed(qtbot, reverse)
    assert reverse.reason.hasFocus()
    qtbot.keyClicks(reverse.reason, "Wrong amount")
    qtbot.keyClicks(reverse.reference, "INV-1")
    qtbot.waitUntil(reverse.ok_button.isEnabled, timeout=WAIT_MS)
    order = check_tab_order(qtbot, reverse, reverse.reason)
    assert order == ["reverseReason", "reference", *buttons_in_visual_order(reverse.buttons)]


def test_tab_in_the_connection_dialog_reaches_every_field(
    qtbot: QtBot, tmp_path: Path, no_keyring: None
) -> None:
    store = ProfileStore(QSettings(str(tmp_path / "a11y.ini"), QSettings.Format.IniFormat))
    dialog = ConnectionDialog(store)
    _dialog(qtbot, dialog)
    order = check_tab_order(qtbot, dialog, dialog.profile_list)
    assert order[:6] == ["profileList", "newProfile", "profileName", "profileKind",
                         "sqlitePath", "browseSqlite"]
    dialog.kind_combo.setCurrentIndex(dialog.kind_combo.findData("postgresql"))
    order = check_tab_order(qtbot, dialog, dialog.profile_list)
    assert order[:11] == ["profileList", "newProfile", "profileName", "profileKind",
                          "pgHost", "pgPort", "pgDatabase", "pgUser", "pgPassword",
                          "pgSslMode", "pgCaFile"]


# -- the keyboard alone ------------------------------------------------------------------------


def test_find_open_browse_and_close_an_account_with_the_keyboard_alone(
    qtbot: QtBot, world: World, make_window: MakeWindow, add_accounts: AddAccounts
) -> None:
    add_accounts(3, prefix="Zeta", domain="zeta.test")
    window = make_window()
    activate(qtbot, window)
    _loaded(qtbot, window)
    window.table.setFocus()

    qtbot.keyClick(focused(), Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    assert focused() is window.search
    qtbot.keyClicks(window.search, "ops@ac")
    # Enter searches at once and moves to the results; the first is selected when
    # they arrive, so a second Enter opens it.
    qtbot.keyClick(window.search, Qt.Key.Key_Return)
    assert focused() is window.table
    qtbot.waitUntil(lambda: window.model.rowCount() == 1 and not window.model.is_loading
                    and window.table.currentIndex().isValid(), timeout=WAIT_MS)
    qtbot.keyClick(window.table, Qt.Key.Key_Return)
    detail = window.current_detail()
    assert detail is not None and detail.account_id == world.account_id
    qtbot.waitUntil(lambda: detail.summary is not None and not detail.is_loading,
                    timeout=WAIT_MS)

    # Into the account: Tab from the accounts reaches its tab, then its lists.
    qtbot.keyClick(focused(), Qt.Key.Key_Tab)
    assert focused() is window.tabs.tabBar()
    while focused() is not detail.grants_table:
        qtbot.keyClick(focused(), Qt.Key.Key_Tab)
        assert focused() is not window.search, "Tab missed the grants"
    # Ctrl+Tab and Ctrl+Shift+Tab move between grants, charges and ledger.
    qtbot.keyClick(focused(), Qt.Key.Key_Tab, Qt.KeyboardModifier.ControlModifier)
    assert detail.lists.currentIndex() == 1
    qtbot.keyClick(focused(), Qt.Key.Key_Tab, Qt.KeyboardModifier.ControlModifier)
    assert detail.lists.currentIndex() == 2
    qtbot.keyClick(focused(), Qt.Key.Key_Backtab,
                   Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert detail.lists.currentIndex() == 1
    # Alt+letter goes straight to one.
    qtbot.keyClick(focused(), Qt.Key.Key_L, Qt.KeyboardModifier.AltModifier)
    assert detail.lists.currentIndex() == 2
    qtbot.keyClick(focused(), Qt.Key.Key_G, Qt.KeyboardModifier.AltModifier)
    assert detail.lists.currentIndex() == 0

    # A work list beside it (Ctrl+1); Ctrl+PgUp and Ctrl+PgDown move between the tabs.
    qtbot.keyClick(focused(), Qt.Key.Key_1, Qt.KeyboardModifier.ControlModifier)
    assert window.tabs.count() == 2 and window.tabs.currentIndex() == 1
    qtbot.keyClick(focused(), Qt.Key.Key_PageUp, Qt.KeyboardModifier.ControlModifier)
    assert window.tabs.currentWidget() is detail
    qtbot.keyClick(focused(), Qt.Key.Key_PageDown, Qt.KeyboardModifier.ControlModifier)
    assert window.tabs.currentIndex() == 1
    assert focused().isVisible()  # never left in the tab just hidden

    # Ctrl+W closes the work list, then the account; the focus goes back to the list.
    qtbot.keyClick(focused(), Qt.Key.Key_W, Qt.KeyboardModifier.ControlModifier)
    assert window.tabs.currentWidget() is detail
    qtbot.keyClick(focused(), Qt.Key.Key_W, Qt.KeyboardModifier.ControlModifier)
    assert window.tabs.count() == 0
    assert focused() is window.table
    window.worker.wait_for_done()


def test_down_in_the_search_field_selects_the_first_result(
    qtbot: QtBot, world: World, make_window: MakeWindow, add_accounts: AddAccounts
) -> None:
    add_accounts(2, prefix="Zeta", domain="zeta.test")
    window = make_window()
    activate(qtbot, window)
    _loaded(qtbot, window)
    qtbot.keyClicks(window.search, "zeta01")
    qtbot.keyClick(window.search, Qt.Key.Key_Down)
    assert focused() is window.table
    qtbot.waitUntil(lambda: window.model.rowCount() == 1 and not window.model.is_loading
                    and window.table.currentIndex().isValid(), timeout=WAIT_MS)
    assert window.model.account(window.table.currentIndex().row()).email == \
        "zeta01@zeta.test"


def test_enter_on_a_work_list_row_opens_its_account(
    qtbot: QtBot, world: World, make_window: MakeWindow
) -> None:
    charge(world, 40)
    window = make_window()
    activate(qtbot, window)
    _loaded(qtbot, window)
    window.failures_action.trigger()
    view = window.tabs.currentWidget()
    assert isinstance(view, FailuresView)
    table = view.table
    qtbot.waitUntil(lambda: table.model().rowCount() == 1, timeout=WAIT_MS)
    table.setFocus()
    qtbot.keyClick(table, Qt.Key.Key_Down)
    assert table.currentIndex().isValid()
    qtbot.keyClick(table, Qt.Key.Key_Return)
    detail = window.current_detail()
    assert detail is not None and detail.account_id == world.account_id
    assert window.tabs.count() == 2
    # A double click asks once (it also "activates" the row).
    opened: list[int] = []
    view.open_account_requested.connect(opened.append)
    where = table.visualRect(table.currentIndex()).center()
    # A double click is a click followed by a second press, as the mouse sends it.
    qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=where)
    qtbot.mouseDClick(table.viewport(), Qt.MouseButton.LeftButton, pos=where)
    # QTest leaves the button down after a double click; a mouse lets it go.
    qtbot.mouseRelease(table.viewport(), Qt.MouseButton.LeftButton, pos=where)
    assert opened == [world.account_id]
    qtbot.waitUntil(lambda: not detail.is_loading, timeout=WAIT_MS)
    window.worker.wait_for_done()
