"""The frame of every dialog that moves credits: preview, validate, submit once.

A :class:`ChangeDialog` subclass (refund, adjustment) supplies its form, what to
preview and what to submit. The frame:

* previews the change off the GUI thread whenever the form changes (debounced; an
  older preview still running is discarded), showing the balances before and after
  and whether the change applies at once, needs approval, or is not allowed;
* keeps the OK button disabled, with the reason under the form, until the form is
  valid and the preview agrees;
* carries one idempotency key for its whole life, so a double click, or OK pressed
  again after a dropped connection, applies the change once; the dialog says so
  when the database answers with the earlier result.

The verdict and the problems are coloured with the theme's semantic colours (success,
warning, danger) for the palette in use, and follow it when it changes.

Its texts are translated in the context "ChangeDialog" whichever subclass shows
them (``QCoreApplication.translate``, not ``self.tr``, which would look them up
under the subclass's name).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from PySide6.QtCore import QCoreApplication, QEvent, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QCloseEvent, QKeyEvent
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from credits_desktop.domain.permissions import Verdict
from credits_desktop.services.operations import Actor
from credits_desktop.services.previews import Balances, ChangePreview
from credits_desktop.services.results import OperationResult
from credits_desktop.store.database import Database

from . import formatting as fmt
from . import theme
from .workers import Worker

__all__ = ["PREVIEW_DELAY_MS", "ChangeDialog", "balances_text"]

# Long enough that typing an amount previews once, short enough to feel live.
PREVIEW_DELAY_MS = 150



def balances_text(before: Balances, after: Balances) -> str:
    """Each kind of credit, before → after (only the kinds that change, and the total)."""
    parts = []
    for pattern, old, new in (
        (QCoreApplication.translate("ChangeDialog", "Plan {before} → {after}"),
         before.plan, after.plan),
        (QCoreApplication.translate("ChangeDialog", "Purchased {before} → {after}"),
         before.purchased, after.purchased),
        (QCoreApplication.translate("ChangeDialog", "Refund credits {before} → {after}"),
         before.refund, after.refund),
    ):
        if old != new:
            parts.append(pattern.format(before=fmt.credits_text(old),
                                        after=fmt.credits_text(new)))
    parts.append(QCoreApplication.translate(
        "ChangeDialog", "Total available {before} → {after}").format(
        before=fmt.credits_text(before.total), after=fmt.credits_text(after.total)))
    return " · ".join(parts)


def _working_out() -> str:
    return QCoreApplication.translate("ChangeDialog", "Working out the effect…")


class ChangeDialog(QDialog):
    """Base of the dialogs that change an account's credits (see the module docstring)."""

    # The OperationResult of the change, once the database has it.
    applied = Signal(object)
    # Emitted after every preview answer (or failure), for tests and screen readers.
    preview_updated = Signal()

    KIND = "change"

    def __init__(
        self,
        db: Database,
        actor: Actor,
        account_id: int,
        *,
        worker: Worker | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._db = db
        self._actor = actor
        self.account_id = account_id
        self.worker = worker if worker is not None else Worker(self)
        self.idempotency_key = f"{self.KIND}-{uuid.uuid4()}"
        self.preview: ChangePreview | None = None
        self.preview_problem = ""
        self.outcome: OperationResult | None = None
        self._busy = False
        self._preview_job_seq = 0
        # The verdict's semantic colour: "success" (applies at once) or "warning"
        # (needs approval).
        self._verdict_tone = "success"

        self.form = QFormLayout()
        self.form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)

        self.effect_label = QLabel(_working_out())
        self.effect_label.setObjectName("effect")
        self.effect_label.setWordWrap(True)
        self.effect_label.setAccessibleName(
            QCoreApplication.translate("ChangeDialog", "Balances before and after"))
        self.effect_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.verdict_label = QLabel()
        self.verdict_label.setObjectName("verdict")
        self.verdict_label.setWordWrap(True)
        self.verdict_label.setAccessibleName(
            QCoreApplication.translate("ChangeDialog", "What happens when you confirm"))

        self.problem_label = QLabel()
        self.problem_label.setObjectName("problem")
        self.problem_label.setWordWrap(True)
        self._restyle()
        self.problem_label.setAccessibleName(
            QCoreApplication.translate("ChangeDialog", "What still needs attention"))

        self.buttons = QDialogButtonBox()
        self.ok_button = QPushButton(QCoreApplication.translate("ChangeDialog", "OK"))
        self.ok_button.setObjectName("confirm")
        self.ok_button.setDefault(True)
        self.ok_button.setAutoDefault(True)
        self.buttons.addButton(self.ok_button, QDialogButtonBox.ButtonRole.AcceptRole)
        self.cancel_button = self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        assert self.cancel_button is not None
        self.cancel_button.setObjectName("cancel")
        self.cancel_button.setAccessibleName(
            QCoreApplication.translate("ChangeDialog", "Cancel without changing anything"))
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)

        self._preview_timer = QTimer(self)
        self._preview_timer.setSingleShot(True)
        self._preview_timer.setInterval(PREVIEW_DELAY_MS)
        self._preview_timer.timeout.connect(self._run_preview)

    # -- for subclasses -------------------------------------------------------------------

    def build(self, intro: QWidget | None = None) -> None:
        """Lay out the dialog once the subclass has filled ``self.form``."""
        layout = QVBoxLayout(self)
        if intro is not None:
            layout.addWidget(intro)
        layout.addLayout(self.form)
        layout.addWidget(self.effect_label)
        layout.addWidget(self.verdict_label)
        layout.addWidget(self.problem_label)
        layout.addWidget(self.buttons)
        self.schedule_preview()
        self.update_state()

    def preview_work(self) -> Callable[[], ChangePreview] | None:
        """The preview to run for the form as it is, or None when it cannot be previewed
        yet (say, no amount); called on the GUI thread, the callable runs in a worker."""
        raise NotImplementedError

    def submit_work(self) -> Callable[[], OperationResult]:
        """The change itself, with ``self.idempotency_key``; runs in a worker."""
        raise NotImplementedError

    def form_problem(self) -> str | None:
        """What is wrong or missing in the form, in a sentence; None when complete."""
        return None

    def ok_text(self, preview: ChangePreview | None) -> str:
        return QCoreApplication.translate("ChangeDialog", "OK")

    # -- the frame -----------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        return self._busy

    @Slot()
    def schedule_preview(self) -> None:
        """Preview again shortly (call it whenever a field that changes the effect does)."""
        self.preview = None
        self.preview_problem = ""
        self._preview_timer.start()
        self.update_state()

    @Slot()
    def update_state(self) -> None:
        """Enable OK only for a complete form whose preview allows the change."""
        # A refusal by the database outranks a missing field: no field can cure it.
        preview = self.preview
        problem = self.preview_problem
        if preview is not None and preview.verdict is Verdict.DENY:
            problem = preview.reason
        problem = problem or self.form_problem() or ""
        self.problem_label.setText(problem or "")
        self.problem_label.setVisible(bool(problem))
        self.ok_button.setText(self.ok_text(preview))
        ready = preview is not None and not problem and not self._busy
        self.ok_button.setEnabled(ready)
        self.cancel_button.setEnabled(not self._busy)
        if preview is None:
            self.effect_label.setText("" if self.preview_problem else _working_out())
            self.verdict_label.setText("")
            return
        self.effect_label.setText(balances_text(preview.before, preview.after))
        if preview.verdict is Verdict.ALLOW:
            self._verdict_tone = "success"
            self._restyle()
            self.verdict_label.setText(
                QCoreApplication.translate("ChangeDialog", "Applies at once when you confirm."))
        elif preview.verdict is Verdict.REQUEST:
            self._verdict_tone = "warning"
            self._restyle()
            self.verdict_label.setText(QCoreApplication.translate(
                "ChangeDialog",
                "Needs approval: {reason} When you confirm, a request is sent; "
                "the credits move once a colleague approves it.").format(reason=preview.reason))
        else:
            self.verdict_label.setText("")

    def _restyle(self) -> None:
        theme.set_style_sheet(self.problem_label, f"color: {theme.css('danger')};")
        theme.set_style_sheet(self.verdict_label, f"color: {theme.css(self._verdict_tone)};")

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if theme.is_palette_change(event):
            self._restyle()

    @Slot()
    def _run_preview(self) -> None:
        work = self.preview_work()
        if work is None:
            self.update_state()
            return
        self._preview_job_seq += 1
        seq = self._preview_job_seq
        job = self.worker.submit(work)
        job.succeeded.connect(lambda p, s=seq: self._preview_arrived(s, p))
        job.failed.connect(lambda m, s=seq: self._preview_failed(s, m))

    def _preview_arrived(self, seq: int, preview: ChangePreview) -> None:
        if seq != self._preview_job_seq or self._preview_timer.isActive():
            return  # an older answer, or the form changed since
        self.preview = preview
        self.preview_problem = ""
        self.on_preview(preview)
        self.update_state()
        self.preview_updated.emit()

    def _preview_failed(self, seq: int, message: str) -> None:
        if seq != self._preview_job_seq or self._preview_timer.isActive():
            return
        self.preview = None
        self.preview_problem = message
        self.update_state()
        self.preview_updated.emit()

    def on_preview(self, preview: ChangePreview) -> None:
        """A new preview arrived (subclasses show per-row detail from it)."""

    def accept(self) -> None:
        # Enter, a double click or a second press while the first is on its way: once.
        if self._busy or not self.ok_button.isEnabled():
            return
        self._busy = True
        self.ok_button.setText(QCoreApplication.translate("ChangeDialog", "Saving…"))
        self.update_state()
        job = self.worker.submit(self.submit_work())
        job.succeeded.connect(self._submitted)
        job.failed.connect(self._submit_failed)

    @Slot(object)
    def _submitted(self, result: OperationResult) -> None:
        self._busy = False
        self.outcome = result
        self.applied.emit(result)
        super().accept()

    @Slot(str)
    def _submit_failed(self, message: str) -> None:
        # The key stays: pressing OK again after a dropped connection applies once.
        self._busy = False
        self.preview_problem = ""
        self.update_state()
        self.problem_label.setText(message)
        self.problem_label.setVisible(True)
        self.ok_button.setEnabled(True)

    def reject(self) -> None:
        if self._busy:
            return  # the change is on its way; its answer must be seen
        super().reject()

    def closeEvent(self, event: QCloseEvent) -> None:
        if self._busy:
            event.ignore()
            return
        super().closeEvent(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if self._busy and event.key() == Qt.Key.Key_Escape:
            return
        super().keyPressEvent(event)
