"""The refund and adjustment dialogs on a real database (SQLite and PostgreSQL).

They are driven as a user would: type into the fields, press the confirm button,
and the test checks what the database then holds, that the preview told the truth,
and that a second press applies nothing more.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot
from services.factories import (
    World,
    adjust,
    balances,
    charge,
    fetch,
    ledger_of,
    refund,
    rows,
)
from sqlalchemy import select

from credits_desktop.services.previews import reversal_target
from credits_desktop.services.queries import ChargeRow, charges_page
from credits_desktop.services.refunds import RefundItem, refund_charges
from credits_desktop.store.models import ApprovalRequest, Refund
from credits_desktop.ui import theme
from credits_desktop.ui.adjust_dialog import AdjustDialog
from credits_desktop.ui.change_dialog import ChangeDialog
from credits_desktop.ui.refund_dialog import RefundDialog
from credits_desktop.ui.reverse_dialog import ReverseDialog

from .pseudo_translation import untranslated_texts
from .test_ui_theme import contrast

WAIT_MS = 10_000


def _charges(world: World, *ids: int) -> list[ChargeRow]:
    page = charges_page(world.db, world.account_id, limit=100)
    by_id = {row.id: row for row in page.rows}
    return [by_id[i] for i in ids]


def _previewed(qtbot: QtBot, dialog: ChangeDialog) -> None:
    qtbot.waitUntil(lambda: dialog.preview is not None or bool(dialog.preview_problem),
                    timeout=WAIT_MS)


def _confirm(qtbot: QtBot, dialog: ChangeDialog) -> object:
    with qtbot.waitSignal(dialog.applied, timeout=WAIT_MS) as blocker:
        dialog.ok_button.click()
        # A second press while the first is on its way does nothing.
        dialog.ok_button.click()
        dialog.accept()
    return blocker.args[0]


@pytest.fixture
def refund_dialog(qtbot: QtBot, world: World) -> Callable[..., RefundDialog]:
    def make(*charge_ids: int, actor: object = None,
             at: datetime | None = None) -> RefundDialog:
        dialog = RefundDialog(world.db, actor or world.support, world.account_id, "Acme Ads",
                              _charges(world, *charge_ids),
                              at=lambda: at or world.at(days=2))
        qtbot.addWidget(dialog)
        dialog.show()
        _previewed(qtbot, dialog)
        return dialog

    return make


def test_refund_dialog_previews_then_refunds_once(
    qtbot: QtBot, world: World, refund_dialog: Callable[..., RefundDialog]
) -> None:
    c = charge(world, 40)
    dialog = refund_dialog(c.charge_id)
    assert dialog.where_text(0).startswith("Plan credits (expire 2/1/2026")
    assert "Total available 960 → 1,000" in dialog.effect_label.text()
    assert dialog.verdict_label.text() == "Applies at once when you confirm."
    assert not dialog.ok_button.isEnabled()
    assert dialog.problem_label.text() == "A ticket reference is required."
    qtbot.keyClicks(dialog.ticket, "#4411")
    assert dialog.ok_button.isEnabled() and dialog.ok_button.text() == "Refund 40 credits"
    result = _confirm(qtbot, dialog)
    assert result.status == "applied" and not result.replayed  # type: ignore[attr-defined]
    assert balances(world.db, world.account_id).total == 1_000
    assert len(fetch(world.db, select(Refund))) == 1
    # Pressing OK again after a dropped connection re-sends the same key: applied once.
    again = dialog.submit_work()()
    assert again.replayed and len(fetch(world.db, select(Refund))) == 1


def test_partial_refund_of_one_charge(
    qtbot: QtBot, world: World, refund_dialog: Callable[..., RefundDialog]
) -> None:
    c = charge(world, 40)
    dialog = refund_dialog(c.charge_id)
    assert dialog.amount.maximum() == 40  # never more than it cost
    dialog.amount.setValue(15)
    _previewed(qtbot, dialog)
    qtbot.waitUntil(lambda: "Total available 960 → 975" in dialog.effect_label.text(),
                    timeout=WAIT_MS)
    qtbot.keyClicks(dialog.ticket, "#1")
    assert dialog.ok_button.text() == "Refund 15 credits"
    _confirm(qtbot, dialog)
    assert fetch(world.db, select(Refund.credits)) == [15]


def test_refund_of_a_charge_that_did_not_fail_becomes_a_request(
    qtbot: QtBot, world: World, refund_dialog: Callable[..., RefundDialog]
) -> None:
    ok = charge(world, 40, status="succeeded")
    dialog = refund_dialog(ok.charge_id)
    assert dialog.verdict_label.text().startswith("Needs approval: Refunding a charge that did")
    qtbot.keyClicks(dialog.ticket, "#77")
    assert dialog.ok_button.text() == "Request refund of 40 credits"
    result = _confirm(qtbot, dialog)
    assert result.status == "requested"  # type: ignore[attr-defined]
    assert len(fetch(world.db, select(ApprovalRequest))) == 1
    assert fetch(world.db, select(Refund)) == []


def test_the_verdict_reads_in_light_and_dark(
    qtbot: QtBot, world: World, refund_dialog: Callable[..., RefundDialog], qapp: QApplication
) -> None:
    ok = charge(world, 40, status="succeeded")
    style, palette = qapp.style().name(), qapp.palette()
    try:
        for scheme in (Qt.ColorScheme.Dark, Qt.ColorScheme.Light):
            theme.apply_theme(qapp, scheme)
            dialog = refund_dialog(ok.charge_id)
            window = dialog.palette().color(QPalette.ColorRole.Window)
            # "Needs approval": the warning colour of the palette in use.
            verdict = dialog.verdict_label.palette().color(QPalette.ColorRole.WindowText)
            assert verdict == theme.color("warning") and contrast(verdict, window) >= 3
            problem = dialog.problem_label.palette().color(QPalette.ColorRole.WindowText)
            assert problem == theme.color("danger") and contrast(problem, window) >= 3
            dialog.reject()
    finally:
        qapp.setStyle(style)
        qapp.setPalette(palette)


def test_refund_dialog_refuses_an_already_refunded_charge(
    qtbot: QtBot, world: World, refund_dialog: Callable[..., RefundDialog]
) -> None:
    c = charge(world, 40)
    dialog = refund_dialog(c.charge_id)
    refund(world, world.finance, c.charge_id, ticket="#9", at=world.at(days=1))
    dialog.amount.setValue(39)  # any change previews again
    qtbot.waitUntil(lambda: "already refunded" in dialog.problem_label.text(),
                    timeout=WAIT_MS)
    qtbot.keyClicks(dialog.ticket, "#1")
    assert "by Fay Finance (ticket #9)" in dialog.problem_label.text()
    assert not dialog.ok_button.isEnabled()


def test_reason_other_needs_a_note_and_text_is_stored_verbatim(
    qtbot: QtBot, world: World, refund_dialog: Callable[..., RefundDialog]
) -> None:
    a, b = charge(world, 40), charge(world, 10)
    dialog = refund_dialog(a.charge_id, b.charge_id)
    assert [dialog.where_text(i)[:12] for i in (0, 1)] == ["Plan credits"] * 2
    ticket = "'; drop table accounts; -- 🎉"
    dialog.ticket.setText(ticket)  # pasted: QTest cannot type characters beyond the BMP
    dialog.reason.setCurrentIndex(dialog.reason.findData("other"))
    assert "reason 'Other'" in dialog.problem_label.text()
    assert not dialog.ok_button.isEnabled()
    dialog.note.setPlainText("Customer 👩‍💻 said \"it's broken\"")
    assert dialog.ok_button.isEnabled()
    assert dialog.ok_button.text() == "Refund 50 credits"
    _confirm(qtbot, dialog)
    assert rows(world.db, "SELECT reference, note FROM operations WHERE kind = 'refund'") == [
        (ticket, "Customer 👩‍💻 said \"it's broken\"")]


@pytest.fixture
def adjust_dialog(qtbot: QtBot, world: World) -> Callable[..., AdjustDialog]:
    def make(actor: object = None) -> AdjustDialog:
        dialog = AdjustDialog(world.db, actor or world.finance, world.account_id, "Acme Ads",
                              at=lambda: world.at(days=2))
        qtbot.addWidget(dialog)
        dialog.show()
        _previewed(qtbot, dialog)
        return dialog

    return make


def test_adjust_dialog_adds_credits(
    qtbot: QtBot, world: World, adjust_dialog: Callable[..., AdjustDialog]
) -> None:
    dialog = adjust_dialog()
    assert dialog.removable == 500
    assert dialog.problem_label.text() == "Enter how many credits to add or remove."
    dialog.amount.setValue(300)
    qtbot.waitUntil(lambda: "Purchased 500 → 800" in dialog.effect_label.text(),
                    timeout=WAIT_MS)
    qtbot.keyClicks(dialog.reference, "INV-2026-001")
    assert dialog.ok_button.isEnabled() and dialog.ok_button.text() == "Add 300 credits"
    result = _confirm(qtbot, dialog)
    assert result.status == "applied"  # type: ignore[attr-defined]
    assert balances(world.db, world.account_id).purchased == 800


def test_adjust_dialog_removal_is_bounded_by_the_purchased_balance(
    qtbot: QtBot, world: World, adjust_dialog: Callable[..., AdjustDialog]
) -> None:
    dialog = adjust_dialog()
    dialog.remove_button.setChecked(True)
    dialog.amount.setValue(501)
    qtbot.keyClicks(dialog.reference, "CB-1")
    assert dialog.problem_label.text().startswith("Only 500 purchased credits can be removed")
    assert not dialog.ok_button.isEnabled()
    dialog.amount.setValue(200)
    qtbot.waitUntil(lambda: "Purchased 500 → 300" in dialog.effect_label.text(),
                    timeout=WAIT_MS)
    assert dialog.ok_button.text() == "Remove 200 credits"
    _confirm(qtbot, dialog)
    assert balances(world.db, world.account_id).purchased == 300


def test_adjust_dialog_above_the_limit_is_a_request_and_support_may_not(
    qtbot: QtBot, world: World, adjust_dialog: Callable[..., AdjustDialog]
) -> None:
    dialog = adjust_dialog()
    dialog.amount.setValue(5_000)
    qtbot.waitUntil(lambda: dialog.verdict_label.text().startswith("Needs approval"),
                    timeout=WAIT_MS)
    qtbot.keyClicks(dialog.reference, "INV-9")
    assert dialog.ok_button.text() == "Request to add 5,000 credits"
    assert _confirm(qtbot, dialog).status == "requested"  # type: ignore[attr-defined]
    assert balances(world.db, world.account_id).purchased == 500

    support = adjust_dialog(world.support)
    support.amount.setValue(10)
    qtbot.keyClicks(support.reference, "X")
    qtbot.waitUntil(lambda: "finance or admin role" in support.problem_label.text(),
                    timeout=WAIT_MS)
    assert not support.ok_button.isEnabled()


def test_a_failed_submit_keeps_the_dialog_open_with_the_reason(
    qtbot: QtBot, world: World, refund_dialog: Callable[..., RefundDialog]
) -> None:
    c = charge(world, 40)
    dialog = refund_dialog(c.charge_id)
    qtbot.keyClicks(dialog.ticket, "#5")
    # Someone else refunds it between the preview and the click.
    refund_charges(world.db, world.manager, account_id=world.account_id,
                   items=[RefundItem(c.charge_id)], reason_code="goodwill", ticket="#6",
                   idempotency_key="other-desk", at=world.at(days=1))
    dialog.ok_button.click()
    qtbot.waitUntil(lambda: "already refunded" in dialog.problem_label.text(),
                    timeout=WAIT_MS)
    assert dialog.isVisible() and dialog.outcome is None
    assert dialog.cancel_button.isEnabled()
    adjust(world, world.finance, 1)  # the database still works as usual


# -- every text goes through Qt's translation ------------------------------------------


def test_the_change_dialogs_show_only_translated_texts(
    qtbot: QtBot, world: World, pseudo_translated: object,
    refund_dialog: Callable[..., RefundDialog], adjust_dialog: Callable[..., AdjustDialog],
) -> None:
    a, b = charge(world, 40), charge(world, 10)
    one = refund_dialog(a.charge_id)
    qtbot.keyClicks(one.ticket, "#4411")
    several = refund_dialog(a.charge_id, b.charge_id)
    qtbot.keyClicks(several.ticket, "#4412")
    request = refund_dialog(charge(world, 40, status="succeeded").charge_id)
    qtbot.keyClicks(request.ticket, "#4413")

    adding = adjust_dialog()
    adding.amount.setValue(300)
    qtbot.keyClicks(adding.reference, "INV-1")
    above_limit = adjust_dialog()
    above_limit.amount.setValue(5_000)
    qtbot.keyClicks(above_limit.reference, "INV-2")
    removing = adjust_dialog()
    removing.remove_button.setChecked(True)
    removing.amount.setValue(501)  # more than there is: the form says so
    qtbot.keyClicks(removing.reference, "CB-1")
    refused = adjust_dialog(world.support)
    refused.amount.setValue(10)
    qtbot.keyClicks(refused.reference, "X")

    adjust(world, world.finance, 100)
    entry = next(e for e in ledger_of(world.db, world.account_id) if e.kind == "adjustment")
    reverse = ReverseDialog(world.db, world.finance, reversal_target(world.db, entry.id),
                            "Acme Ads", at=lambda: world.at(days=3))
    qtbot.addWidget(reverse)
    reverse.show()
    qtbot.keyClicks(reverse.reason, "Booked twice")
    qtbot.keyClicks(reverse.reference, "#7")

    dialogs: list[ChangeDialog] = [one, several, request, adding, above_limit, removing,
                                   refused, reverse]
    for dialog in dialogs:
        _previewed(qtbot, dialog)
        assert dialog.preview is not None, dialog.preview_problem
    qtbot.waitUntil(lambda: "Only" in removing.problem_label.text(), timeout=WAIT_MS)
    # The refusal is the services' sentence (data, like the account's name).
    denial = refused.problem_label.text()
    assert "finance or admin role" in denial

    def data(text: str) -> bool:
        return text == denial

    assert refused.preview is not None and refused.preview.reason == denial
    for dialog in dialogs:
        assert untranslated_texts(dialog, data=data) == [], dialog.objectName()
    # The texts shown are the translator's (the pseudo-translation's brackets).
    assert one.ok_button.text() == "⟦Refund 40 credit(s)⟧"
    assert request.verdict_label.text().startswith("⟦Needs approval: ")
    assert "⟦Purchased 500 → 800⟧" in adding.effect_label.text()
    assert one.where_text(0).startswith("⟦Plan credits (expire 2/1/2026)⟧")
