"""The refund dialog: give back the credits of one or several charges of an account.

It lists the chosen charges with their cost and where each credit goes back (the
grant it came from while that is live, otherwise new refund credits that never
expire), shows the balances before and after, and asks for a ticket reference
and a reason. A single charge may be refunded in part. Within the role's limit
the refund applies at once; above it, or for a charge that did not fail, it is
sent for approval, and the dialog says so before anyone confirms.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from html import escape

from PySide6.QtCore import QT_TRANSLATE_NOOP, QCoreApplication, Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QWidget,
)

from credits_desktop.domain.permissions import Verdict
from credits_desktop.services import validation as v
from credits_desktop.services.errors import InvalidInput
from credits_desktop.services.operations import Actor
from credits_desktop.services.previews import ChangePreview, Placement, preview_refund
from credits_desktop.services.queries import ChargeRow
from credits_desktop.services.reasons import REASON_LABELS, RefundReason
from credits_desktop.services.refunds import RefundItem, refund_charges
from credits_desktop.services.results import OperationResult
from credits_desktop.store.database import Database

from .change_dialog import ChangeDialog
from .formatting import credits_text, local_date, local_datetime, utc_datetime
from .i18n import plural
from .workers import Worker

__all__ = ["RefundDialog", "placement_text", "refundable"]

# The headers' English source texts, translated when the table is made.
COLUMNS = (
    str(QT_TRANSLATE_NOOP("RefundDialog", "Time")),
    str(QT_TRANSLATE_NOOP("RefundDialog", "Feature")),
    str(QT_TRANSLATE_NOOP("RefundDialog", "Model")),
    str(QT_TRANSLATE_NOOP("RefundDialog", "Status")),
    str(QT_TRANSLATE_NOOP("RefundDialog", "Cost")),
    str(QT_TRANSLATE_NOOP("RefundDialog", "Refund")),
    str(QT_TRANSLATE_NOOP("RefundDialog", "Goes back to")),
)
COL_REFUND, COL_WHERE = 5, 6


def refundable(row: ChargeRow) -> bool:
    """Whether a charge can be offered for a refund at all."""
    return row.refund_id is None and row.credits > 0


def placement_text(placement: Placement) -> str:
    """Where refunded credits land, in words: "Plan credits (expire 12/7/2026)"."""
    if placement.source == "plan":
        return QCoreApplication.translate("RefundDialog", "Plan credits (expire {date})").format(
            date=local_date(placement.expires_at))
    if placement.source == "refund" and placement.new_grant:
        return QCoreApplication.translate("RefundDialog", "New refund credits (never expire)")
    if placement.source == "refund":
        return QCoreApplication.translate("RefundDialog", "Refund credits (never expire)")
    return QCoreApplication.translate("RefundDialog", "Purchased credits (never expire)")


class RefundDialog(ChangeDialog):
    """Refund the given charges of one account (see the module docstring)."""

    KIND = "refund"

    def __init__(
        self,
        db: Database,
        actor: Actor,
        account_id: int,
        account_name: str,
        charges: Sequence[ChargeRow],
        *,
        worker: Worker | None = None,
        at: Callable[[], datetime | None] = lambda: None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(db, actor, account_id, worker=worker, parent=parent)
        self.charges = list(charges)
        self._at = at
        count = len(self.charges)
        self.setWindowTitle(self.tr("Refund %Ln charge(s) of {name}", "", count).format(
            name=account_name))
        self.setObjectName("refundDialog")
        self.setMinimumWidth(720)

        # A name ending in a full stop ("Acme Ltd.") takes no second one.
        intro_text = (self.tr("Refund %Ln charge(s) of <b>{name}</b>", "", count)
                      if account_name.endswith(".")
                      else self.tr("Refund %Ln charge(s) of <b>{name}</b>.", "", count))
        intro = QLabel(intro_text.format(name=escape(account_name)))
        intro.setTextFormat(Qt.TextFormat.RichText)

        self.table = QTableWidget(count, len(COLUMNS))
        self.table.setObjectName("refundCharges")
        self.table.setAccessibleName(self.tr("Charges to refund"))
        self.table.setHorizontalHeaderLabels(
            [QCoreApplication.translate("RefundDialog", column) for column in COLUMNS])
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        # Tab goes on to the fields (the arrows move within the table).
        self.table.setTabKeyNavigation(False)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.horizontalHeader().setSectionResizeMode(
            QHeaderView.ResizeMode.ResizeToContents)
        self.table.setMaximumHeight(min(60 + 28 * count, 260))
        for r, row in enumerate(self.charges):
            cells = (local_datetime(row.occurred_at), row.feature_name, row.model or "",
                     self.tr("Failed") if row.status == "failed" else self.tr("Succeeded"),
                     credits_text(row.credits), credits_text(row.credits), "…")
            for c, value in enumerate(cells):
                item = QTableWidgetItem(value)
                if c in (4, 5):
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight
                                          | Qt.AlignmentFlag.AlignVCenter)
                if c == 0:
                    item.setToolTip(utc_datetime(row.occurred_at))
                self.table.setItem(r, c, item)

        self.amount = QSpinBox()
        self.amount.setObjectName("refundAmount")
        self.amount.setAccessibleName(self.tr("Credits to refund"))
        self.amount.setGroupSeparatorShown(True)
        if count == 1:
            cost = self.charges[0].credits
            self.amount.setRange(1, max(cost, 1))
            self.amount.setValue(cost)
            self.amount.setSuffix(
                self.tr(" of {credits} credit(s)", "after the amount: 15 of 40 credits",
                        plural(cost)).format(credits=credits_text(cost)))
            self.amount.setToolTip(self.tr("Refund part of the charge by lowering this amount."))
            self.amount.valueChanged.connect(self.schedule_preview)

        self.reason = QComboBox()
        self.reason.setObjectName("refundReason")
        self.reason.setAccessibleName(self.tr("Refund reason"))
        for code in RefundReason:
            self.reason.addItem(REASON_LABELS[code], code.value)
        self.reason.currentIndexChanged.connect(self.update_state)

        self.ticket = QLineEdit()
        self.ticket.setObjectName("ticket")
        self.ticket.setAccessibleName(self.tr("Ticket reference"))
        self.ticket.setPlaceholderText(self.tr("e.g. #4411"))
        self.ticket.setMaxLength(v.TICKET_MAX)
        self.ticket.textChanged.connect(self.update_state)

        self.note = QPlainTextEdit()
        self.note.setObjectName("note")
        self.note.setAccessibleName(self.tr("Note"))
        self.note.setPlaceholderText(self.tr("Optional; required for reason 'Other'"))
        self.note.setTabChangesFocus(True)
        self.note.setFixedHeight(self.note.fontMetrics().lineSpacing() * 4)
        self.note.textChanged.connect(self.update_state)

        self.form.addRow(self.table)
        if count == 1:
            self.form.addRow(self.tr("&Amount:"), self.amount)
        self.form.addRow(self.tr("&Reason:"), self.reason)
        self.form.addRow(self.tr("&Ticket:"), self.ticket)
        self.form.addRow(self.tr("&Note:"), self.note)
        self.build(intro)
        self.ticket.setFocus()

    # -- what is refunded -------------------------------------------------------------

    def items(self) -> list[RefundItem]:
        if len(self.charges) == 1:
            return [RefundItem(self.charges[0].id, self.amount.value())]
        return [RefundItem(row.id) for row in self.charges]

    def total(self) -> int:
        return sum(item.credits or row.credits for item, row in zip(
            self.items(), self.charges, strict=True))

    def form_problem(self) -> str | None:
        try:
            v.required_text(self.ticket.text(), "ticket", "A ticket reference",
                            max_length=v.TICKET_MAX)
            note = v.text(self.note.toPlainText(), "note", "The note",
                          max_length=v.NOTE_MAX, required=False)
        except InvalidInput as exc:
            return exc.message
        if self.reason.currentData() == RefundReason.OTHER.value and not note:
            return self.tr("Say in the note why you refund with reason 'Other'.")
        return None

    def preview_work(self) -> Callable[[], ChangePreview] | None:
        db, actor, account_id, items, at = (self._db, self._actor, self.account_id,
                                            self.items(), self._at())
        return lambda: preview_refund(db, actor, account_id=account_id, items=items, at=at)

    def submit_work(self) -> Callable[[], OperationResult]:
        db, actor, account_id, items, at = (self._db, self._actor, self.account_id,
                                            self.items(), self._at())
        reason = str(self.reason.currentData())
        ticket, note = self.ticket.text(), self.note.toPlainText()
        key = self.idempotency_key
        return lambda: refund_charges(
            db, actor, account_id=account_id, items=items, reason_code=reason,
            ticket=ticket, note=note, idempotency_key=key, at=at,
        )

    def ok_text(self, preview: ChangePreview | None) -> str:
        total = self.total()
        if preview is not None and preview.verdict is Verdict.REQUEST:
            text = self.tr("Request refund of {credits} credit(s)", "", plural(total))
        else:
            text = self.tr("Refund {credits} credit(s)", "", plural(total))
        return text.format(credits=credits_text(total))

    def on_preview(self, preview: ChangePreview) -> None:
        by_charge: dict[int | None, list[Placement]] = {}
        for placement in preview.placements:
            by_charge.setdefault(placement.charge_id, []).append(placement)
        for r, row in enumerate(self.charges):
            placements = by_charge.get(row.id, [])
            amount = sum(p.credits for p in placements)
            where = "; ".join(
                self.tr("{credits} to {where}", "credits going back to a kind of credit").format(
                    credits=credits_text(p.credits), where=placement_text(p))
                if len(placements) > 1 else placement_text(p)
                for p in placements
            )
            refund_item = self.table.item(r, COL_REFUND)
            where_item = self.table.item(r, COL_WHERE)
            if refund_item is not None:
                refund_item.setText(credits_text(amount) if placements else "—")
            if where_item is not None:
                where_item.setText(where or "—")
                where_item.setToolTip(where)

    def where_text(self, row: int) -> str:
        """What the "Goes back to" cell of ``row`` says (for tests)."""
        item = self.table.item(row, COL_WHERE)
        return item.text() if item is not None else ""
