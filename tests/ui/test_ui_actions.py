"""Staff actions from the main window: role rules, refund, adjust and reverse, work lists.

Driven through the real window on both databases: the role decides which actions
are enabled (with the reason as tooltip), and a refund made from an open account
reaches the database once and shows in the tab and the status bar.
"""

from __future__ import annotations

import pytest
from PySide6.QtCore import QItemSelectionModel, Qt
from pytestqt.qtbot import QtBot
from services.factories import World, adjust, balances, charge, fetch, refund
from sqlalchemy import select

from credits_desktop.domain.permissions import Role
from credits_desktop.services.operations import Actor
from credits_desktop.services.queries import account_summary
from credits_desktop.store.models import Refund, Reversal
from credits_desktop.ui.account_detail import AccountDetail
from credits_desktop.ui.adjust_dialog import AdjustDialog
from credits_desktop.ui.approvals_view import ApprovalsView
from credits_desktop.ui.audit_view import AuditView
from credits_desktop.ui.failures_view import FailuresView
from credits_desktop.ui.main_window import MainWindow
from credits_desktop.ui.refund_dialog import RefundDialog
from credits_desktop.ui.reverse_dialog import ReverseDialog

from .conftest import MakeWindow

WAIT_MS = 10_000
ADJUST_DENIED = "Adjusting purchased credits needs the finance or admin role."


def _actor(world: World, role: Role) -> Actor:
    return {Role.SUPPORT: world.support, Role.FINANCE: world.finance,
            Role.MANAGER: world.manager, Role.ADMIN: world.admin}[role]


def _open(qtbot: QtBot, make_window: MakeWindow, actor: Actor | None = None
          ) -> tuple[MainWindow, AccountDetail]:
    window = make_window(actor)
    window.show()
    qtbot.waitUntil(lambda: window.model.rowCount() > 0 and not window.model.is_loading,
                    timeout=WAIT_MS)
    detail = window.open_account(window.model.account(0))
    qtbot.waitUntil(lambda: detail.summary is not None and not detail.is_loading,
                    timeout=WAIT_MS)
    return window, detail


def _select_rows(table: object, *rows: int) -> None:
    view = table  # a QTableView
    selection = view.selectionModel()  # type: ignore[attr-defined]
    selection.clearSelection()
    model = view.model()  # type: ignore[attr-defined]
    for row in rows:
        selection.select(model.index(row, 0), QItemSelectionModel.SelectionFlag.Select
                         | QItemSelectionModel.SelectionFlag.Rows)


@pytest.mark.parametrize("role", [Role.SUPPORT, Role.FINANCE, Role.MANAGER, Role.ADMIN])
def test_the_role_decides_which_actions_are_enabled(
    qtbot: QtBot, world: World, make_window: MakeWindow, role: Role
) -> None:
    window, detail = _open(qtbot, make_window, _actor(world, role))
    may_adjust = role in (Role.FINANCE, Role.ADMIN)
    assert window.adjust_action.isEnabled() is may_adjust
    assert detail.adjust_button.isEnabled() is may_adjust
    if not may_adjust:
        assert window.adjust_action.toolTip() == ADJUST_DENIED
        assert detail.adjust_button.toolTip() == ADJUST_DENIED
    # Everyone may refund (above the limit it becomes a request), once charges are chosen.
    assert window.refund_action.isEnabled()
    assert not detail.refund_button.isEnabled()
    assert "Select one or more charges" in detail.refund_button.toolTip()


def test_refund_from_the_charges_tab_applies_once_and_shows_everywhere(
    qtbot: QtBot, world: World, make_window: MakeWindow
) -> None:
    ids = [charge(world, 40).charge_id, charge(world, 25, status="succeeded").charge_id]
    window, detail = _open(qtbot, make_window)
    rows = [r for r in range(detail.charges.rowCount())
            if detail.charges.row_at(r).id == ids[0]]
    _select_rows(detail.charges_table, *rows)
    assert detail.refund_button.isEnabled()
    assert "40 credits" in detail.refund_button.toolTip()
    detail.charges_table.setFocus()
    qtbot.keyClick(window, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)
    dialog = detail.dialog
    assert isinstance(dialog, RefundDialog)
    assert [c.id for c in dialog.charges] == [ids[0]]
    qtbot.waitUntil(lambda: dialog.preview is not None, timeout=WAIT_MS)
    qtbot.keyClicks(dialog.ticket, "#4411")
    with qtbot.waitSignal(detail.changed, timeout=WAIT_MS):
        dialog.ok_button.click()
        dialog.ok_button.click()
    assert len(fetch(world.db, select(Refund))) == 1
    # January's plan grant has expired by now: the credits come back as refund credits.
    assert balances(world.db, world.account_id).refund == 40
    total = account_summary(world.db, world.account_id).total
    qtbot.waitUntil(lambda: detail.card_text("total") == f"{total:,}", timeout=WAIT_MS)
    assert detail.card_text("refund") == "40"
    assert window.statusBar().currentMessage() == "Refunded 40 credits on 1 charge(s)."
    # The refunded charge can no longer be chosen for a refund.
    qtbot.waitUntil(lambda: not detail.is_loading, timeout=WAIT_MS)
    row = next(r for r in range(detail.charges.rowCount())
               if detail.charges.row_at(r).id == ids[0])
    _select_rows(detail.charges_table, row)
    assert not detail.refund_button.isEnabled()
    assert "already refunded" in detail.refund_button.toolTip()


def test_adjust_and_reverse_from_the_account_tab(
    qtbot: QtBot, world: World, make_window: MakeWindow
) -> None:
    window, detail = _open(qtbot, make_window, world.finance)
    window.adjust_action.trigger()
    dialog = detail.dialog
    assert isinstance(dialog, AdjustDialog)
    qtbot.waitUntil(lambda: dialog.preview is not None, timeout=WAIT_MS)
    dialog.amount.setValue(250)
    qtbot.keyClicks(dialog.reference, "INV-7")
    qtbot.waitUntil(lambda: dialog.ok_button.isEnabled(), timeout=WAIT_MS)
    with qtbot.waitSignal(detail.changed, timeout=WAIT_MS):
        dialog.ok_button.click()
    assert balances(world.db, world.account_id).purchased == 750
    qtbot.waitUntil(lambda: detail.card_text("purchased") == "750", timeout=WAIT_MS)

    # The newest ledger entry is the adjustment: reverse it.
    qtbot.waitUntil(lambda: not detail.is_loading and detail.ledger.rowCount() > 0,
                    timeout=WAIT_MS)
    assert detail.ledger.row_at(0).kind == "adjustment"
    _select_rows(detail.ledger_table, 0)
    assert detail.reverse_button.isEnabled()
    detail.reverse_button.click()
    qtbot.waitUntil(lambda: isinstance(detail.dialog, ReverseDialog), timeout=WAIT_MS)
    reverse = detail.dialog
    assert isinstance(reverse, ReverseDialog)
    qtbot.waitUntil(lambda: reverse.preview is not None, timeout=WAIT_MS)
    assert "Purchased 750 → 500" in reverse.effect_label.text()
    qtbot.keyClicks(reverse.reason, "Invoice was cancelled")
    qtbot.keyClicks(reverse.reference, "INV-7")
    with qtbot.waitSignal(detail.changed, timeout=WAIT_MS):
        reverse.ok_button.click()
    assert len(fetch(world.db, select(Reversal))) == 1
    assert balances(world.db, world.account_id).purchased == 500


def test_a_charge_entry_cannot_be_reversed(
    qtbot: QtBot, world: World, make_window: MakeWindow
) -> None:
    charge(world, 10, status="succeeded")
    _window, detail = _open(qtbot, make_window)
    qtbot.waitUntil(lambda: detail.ledger.rowCount() > 0, timeout=WAIT_MS)
    row = next(r for r in range(detail.ledger.rowCount())
               if detail.ledger.row_at(r).kind == "charge")
    _select_rows(detail.ledger_table, row)
    assert not detail.reverse_button.isEnabled()
    assert detail.reverse_button.toolTip() == (
        "Select one refund or adjustment entry in the ledger.")


def test_work_lists_open_as_tabs_and_lead_to_accounts(
    qtbot: QtBot, world: World, make_window: MakeWindow
) -> None:
    failed = charge(world, 40)
    adjust(world, world.finance, 5_000)  # above the limit: a pending request
    refund(world, world.support, charge(world, 10).charge_id)
    window = make_window(world.manager)
    window.show()
    window.failures_action.trigger()
    failures = window.tabs.currentWidget()
    assert isinstance(failures, FailuresView)
    window.approvals_action.trigger()
    assert isinstance(window.tabs.currentWidget(), ApprovalsView)
    window.audit_action.trigger()
    assert isinstance(window.tabs.currentWidget(), AuditView)
    window.dashboard_action.trigger()
    assert type(window.tabs.currentWidget()).__name__ == "DashboardView"
    window.finance_action.trigger()
    assert type(window.tabs.currentWidget()).__name__ == "FinanceReportView"
    # Opening a list again switches to its tab instead of adding one.
    window.failures_action.trigger()
    assert window.tabs.currentWidget() is failures and window.tabs.count() == 5
    failures.open_account_requested.emit(world.account_id)
    detail = window.current_detail()
    assert detail is not None and detail.account_id == world.account_id
    qtbot.waitUntil(lambda: detail.summary is not None, timeout=WAIT_MS)
    assert window.tabs.tabText(window.tabs.currentIndex()) == "Acme Ads"
    assert failed.charge_id > 0


# Raising the open dialog again is a window-manager request the offscreen platform
# cannot carry out; it says so, which is not a fault of ours.
@pytest.mark.qt_log_ignore(r"This plugin does not support raise\(\)")
@pytest.mark.parametrize("role", [Role.SUPPORT, Role.FINANCE])
def test_incident_refund_is_for_finance_and_up(
    qtbot: QtBot, world: World, make_window: MakeWindow, role: Role
) -> None:
    window = make_window(_actor(world, role))
    window.show()
    if role is Role.SUPPORT:
        assert not window.incident_action.isEnabled()
        assert window.incident_action.toolTip().endswith("role.")
        window.open_incident_dialog()
        assert window.incident_dialog is None
        return
    assert window.incident_action.isEnabled()
    window.incident_action.trigger()
    dialog = window.incident_dialog
    assert dialog is not None and dialog.isVisible()
    window.incident_action.trigger()  # a second one is not opened
    assert window.incident_dialog is dialog
    dialog.reject()
    qtbot.waitUntil(lambda: window.incident_dialog is None, timeout=WAIT_MS)


def test_an_ampersand_in_a_name_is_shown_not_taken_for_a_shortcut(
    qtbot: QtBot, world: World, make_window: MakeWindow
) -> None:
    from services.factories import open_account

    account = open_account(world.db, world.platform, name="Bloom & Grove",
                           email="grace@bloomgrove.test")
    window = make_window()
    window.show()
    detail = window.open_account_id(account, "Bloom & Grove")
    qtbot.waitUntil(lambda: detail.summary is not None, timeout=WAIT_MS)
    # A single "&" would underline the next letter and vanish from the tab.
    assert window.tabs.tabText(window.tabs.currentIndex()) == "Bloom && Grove"
