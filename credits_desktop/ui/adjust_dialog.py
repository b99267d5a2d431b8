"""The adjustment dialog: add or remove an account's purchased credits (finance).

Purchased credits never expire, so adding them is how a manual sale or a
compensation is booked, and removing them is how a chargeback or a correction
is. The dialog asks for the direction, a whole number of credits, a reason code,
an external reference and an optional note; it previews the balance after, says
how many credits can be removed at most (a removal never takes the balance below
zero) and, above the role's limit, that the change becomes a request for approval.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from html import escape

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QRadioButton,
    QSpinBox,
    QWidget,
)

from credits_desktop.domain.permissions import Verdict
from credits_desktop.services import validation as v
from credits_desktop.services.adjustments import adjust_purchased
from credits_desktop.services.errors import InvalidInput
from credits_desktop.services.operations import Actor
from credits_desktop.services.previews import ChangePreview, preview_adjustment
from credits_desktop.services.reasons import REASON_LABELS, AdjustmentReason
from credits_desktop.services.results import OperationResult
from credits_desktop.store.database import Database

from . import formatting as fmt
from .change_dialog import ChangeDialog
from .i18n import plural
from .workers import Worker

__all__ = ["AdjustDialog"]


class AdjustDialog(ChangeDialog):
    """Add or remove purchased credits of one account (see the module docstring)."""

    KIND = "adjustment"

    def __init__(
        self,
        db: Database,
        actor: Actor,
        account_id: int,
        account_name: str,
        *,
        worker: Worker | None = None,
        at: Callable[[], datetime | None] = lambda: None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(db, actor, account_id, worker=worker, parent=parent)
        self._at = at
        # Known from the first preview; until then a removal cannot be checked.
        self.removable: int | None = None
        self.setWindowTitle(self.tr("Adjust purchased credits of {name}").format(
            name=account_name))
        self.setObjectName("adjustDialog")
        self.setMinimumWidth(520)

        intro = QLabel(
            self.tr("Add or remove purchased credits of <b>{name}</b>. "
                    "Purchased credits never expire.").format(name=escape(account_name))
        )
        intro.setTextFormat(Qt.TextFormat.RichText)
        intro.setWordWrap(True)

        self.add_button = QRadioButton(self.tr("&Add credits"))
        self.add_button.setObjectName("adjustAdd")
        self.add_button.setAccessibleName(self.tr("Add purchased credits"))
        self.remove_button = QRadioButton(self.tr("Re&move credits"))
        self.remove_button.setObjectName("adjustRemove")
        self.remove_button.setAccessibleName(self.tr("Remove purchased credits"))
        self.add_button.setChecked(True)
        self.direction = QButtonGroup(self)
        self.direction.addButton(self.add_button)
        self.direction.addButton(self.remove_button)
        self.direction.buttonToggled.connect(self._direction_changed)
        direction_row = QWidget()
        row = QHBoxLayout(direction_row)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.add_button)
        row.addWidget(self.remove_button)
        row.addStretch(1)

        self.amount = QSpinBox()
        self.amount.setObjectName("adjustAmount")
        self.amount.setAccessibleName(self.tr("Credits to add or remove"))
        self.amount.setGroupSeparatorShown(True)
        self.amount.setRange(0, v.MAX_CREDITS)
        self.amount.setSpecialValueText(self.tr("Enter an amount"))
        self.amount.setSuffix(self.tr(" credits", "after the amount: 300 credits"))
        self.amount.valueChanged.connect(self.schedule_preview)

        self.removable_label = QLabel()
        self.removable_label.setObjectName("removable")
        # One line: a wrapped label in a form row was squeezed to half its height.
        self.removable_label.setWordWrap(False)

        self.reason = QComboBox()
        self.reason.setObjectName("adjustReason")
        self.reason.setAccessibleName(self.tr("Adjustment reason"))
        for code in AdjustmentReason:
            self.reason.addItem(REASON_LABELS[code], code.value)

        self.reference = QLineEdit()
        self.reference.setObjectName("reference")
        self.reference.setAccessibleName(self.tr("External reference"))
        self.reference.setPlaceholderText(self.tr("Invoice, order or ticket number"))
        self.reference.setMaxLength(v.TICKET_MAX)
        self.reference.textChanged.connect(self.update_state)

        self.note = QPlainTextEdit()
        self.note.setObjectName("note")
        self.note.setAccessibleName(self.tr("Note"))
        self.note.setPlaceholderText(self.tr("Optional"))
        self.note.setTabChangesFocus(True)
        self.note.setFixedHeight(self.note.fontMetrics().lineSpacing() * 4)
        self.note.textChanged.connect(self.update_state)

        self.form.addRow(self.tr("Direction:"), direction_row)
        self.form.addRow(self.tr("Am&ount:"), self.amount)
        self.form.addRow("", self.removable_label)
        self.form.addRow(self.tr("&Reason:"), self.reason)
        self.form.addRow(self.tr("R&eference:"), self.reference)
        self.form.addRow(self.tr("&Note:"), self.note)
        self.build(intro)
        self.amount.setFocus()
        self.amount.selectAll()

    def delta(self) -> int:
        amount = self.amount.value()
        return -amount if self.remove_button.isChecked() else amount

    def form_problem(self) -> str | None:
        amount = self.amount.value()
        if amount <= 0:
            return self.tr("Enter how many credits to add or remove.")
        if self.remove_button.isChecked() and self.removable is not None \
                and amount > self.removable:
            return self.tr("Only {credits} purchased credit(s) can be removed; "
                           "the balance never goes below zero.", "",
                           plural(self.removable)).format(
                credits=fmt.credits_text(self.removable))
        try:
            v.required_text(self.reference.text(), "reference", "A reference",
                            max_length=v.TICKET_MAX)
            v.text(self.note.toPlainText(), "note", "The note", max_length=v.NOTE_MAX,
                   required=False)
        except InvalidInput as exc:
            return exc.message
        return None

    def preview_work(self) -> Callable[[], ChangePreview] | None:
        db, actor, account_id, at = self._db, self._actor, self.account_id, self._at()
        delta = self.delta()
        if self.removable is not None and -delta > self.removable:
            delta = 0  # the form already says why; still refresh the balances
        return lambda: preview_adjustment(db, actor, account_id=account_id, delta=delta, at=at)

    def submit_work(self) -> Callable[[], OperationResult]:
        db, actor, account_id, at = self._db, self._actor, self.account_id, self._at()
        delta, key = self.delta(), self.idempotency_key
        reason = str(self.reason.currentData())
        reference, note = self.reference.text(), self.note.toPlainText()
        return lambda: adjust_purchased(
            db, actor, account_id=account_id, delta=delta, reason_code=reason,
            reference=reference, note=note, idempotency_key=key, at=at,
        )

    def ok_text(self, preview: ChangePreview | None) -> str:
        amount = self.amount.value()
        if not amount:
            return self.tr("Adjust credits")
        request = preview is not None and preview.verdict is Verdict.REQUEST
        if self.remove_button.isChecked():
            text = (self.tr("Request to remove {credits} credit(s)", "", plural(amount))
                    if request else self.tr("Remove {credits} credit(s)", "", plural(amount)))
        else:
            text = (self.tr("Request to add {credits} credit(s)", "", plural(amount))
                    if request else self.tr("Add {credits} credit(s)", "", plural(amount)))
        return text.format(credits=fmt.credits_text(amount))

    def on_preview(self, preview: ChangePreview) -> None:
        self.removable = preview.removable
        self.removable_label.setText(
            self.tr("{credits} purchased credit(s) now: at most {credits} can be removed.",
                    "", plural(preview.removable)).format(
                credits=fmt.credits_text(preview.removable))
        )

    def _direction_changed(self) -> None:
        self.schedule_preview()
