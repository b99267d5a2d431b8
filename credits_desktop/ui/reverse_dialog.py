"""The "Reverse…" dialog: undo a refund or an adjustment by a compensating entry.

Nothing in the ledger is edited or deleted; the reversal is a new entry with its
own reason and reference, linked to the one it undoes, and each refund or
adjustment can be reversed once. Reversing takes the same permission and limit
as the original action, so above the limit it becomes a request for approval,
which the dialog says before anyone confirms.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from html import escape

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QLineEdit, QWidget

from credits_desktop.domain.permissions import Verdict
from credits_desktop.services import validation as v
from credits_desktop.services.errors import InvalidInput
from credits_desktop.services.operations import Actor
from credits_desktop.services.previews import ChangePreview, ReversalTarget, preview_reversal
from credits_desktop.services.results import OperationResult
from credits_desktop.services.reversals import reverse
from credits_desktop.store.database import Database

from .change_dialog import ChangeDialog
from .workers import Worker

__all__ = ["ReverseDialog"]

REASON_MAX = 200


class ReverseDialog(ChangeDialog):
    """Reverse ``target`` (see the module docstring)."""

    KIND = "reversal"

    def __init__(
        self,
        db: Database,
        actor: Actor,
        target: ReversalTarget,
        account_name: str,
        *,
        worker: Worker | None = None,
        at: Callable[[], datetime | None] = lambda: None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(db, actor, target.account_id, worker=worker, parent=parent)
        self.target = target
        self._at = at
        self.setWindowTitle(self.tr("Reverse a change of {name}").format(name=account_name))
        self.setObjectName("reverseDialog")
        self.setMinimumWidth(520)

        # The description ("the refund of 40 credits on …") is the services' words.
        intro = QLabel(
            self.tr("Reverse {change} of <b>{name}</b>. A compensating entry is added to "
                    "the ledger; the original stays as it is.").format(
                change=escape(target.description), name=escape(account_name))
        )
        intro.setTextFormat(Qt.TextFormat.RichText)
        intro.setWordWrap(True)

        self.reason = QLineEdit()
        self.reason.setObjectName("reverseReason")
        self.reason.setAccessibleName(self.tr("Why it is reversed"))
        self.reason.setPlaceholderText(self.tr("e.g. Refunded the wrong charge"))
        self.reason.setMaxLength(REASON_MAX)
        self.reason.textChanged.connect(self.update_state)
        self.reference = QLineEdit()
        self.reference.setObjectName("reference")
        self.reference.setAccessibleName(self.tr("Ticket or reference"))
        self.reference.setMaxLength(v.TICKET_MAX)
        self.reference.textChanged.connect(self.update_state)

        self.form.addRow(self.tr("&Reason:"), self.reason)
        self.form.addRow(self.tr("R&eference:"), self.reference)
        self.build(intro)
        self.reason.setFocus()

    def form_problem(self) -> str | None:
        try:
            v.required_text(self.reason.text(), "reason", "A reason", max_length=REASON_MAX)
            v.required_text(self.reference.text(), "reference", "A ticket or reference",
                            max_length=v.TICKET_MAX)
        except InvalidInput as exc:
            return exc.message
        return None

    def preview_work(self) -> Callable[[], ChangePreview] | None:
        db, actor, target, at = self._db, self._actor, self.target, self._at()
        return lambda: preview_reversal(db, actor, target, at=at)

    def submit_work(self) -> Callable[[], OperationResult]:
        db, actor, target, at = self._db, self._actor, self.target, self._at()
        reason, reference, key = self.reason.text(), self.reference.text(), self.idempotency_key
        return lambda: reverse(
            db, actor, reason=reason, reference=reference, idempotency_key=key,
            refund_id=target.refund_id, adjustment_id=target.adjustment_id, at=at,
        )

    def ok_text(self, preview: ChangePreview | None) -> str:
        if preview is not None and preview.verdict is Verdict.REQUEST:
            return self.tr("Request the reversal")
        # Two words, not "Reverse": the button's text is what a screen reader says.
        return self.tr("Reverse the refund") if self.target.refund_id is not None \
            else self.tr("Reverse the adjustment")
