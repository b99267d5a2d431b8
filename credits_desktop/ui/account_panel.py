"""A read-only side panel with one account's summary: balances and billing period.

It stands in for the full account screen (grants, charges, ledger, refunds),
which comes later; it shows ``services.queries.account_summary``, whose balances
are computed from the account's live grants at the moment asked.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from credits_desktop.services.queries import AccountSummary

from . import formatting as fmt

__all__ = ["AccountPanel"]

STATUS_LABELS = {"active": "Active", "suspended": "Suspended", "closed": "Closed"}


class AccountPanel(QFrame):
    """Shows the account being looked at, or why it cannot be shown."""

    close_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("accountPanel")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setMinimumWidth(300)
        self._account_id: int | None = None

        self._title = QLabel()
        self._title.setObjectName("accountTitle")
        self._title.setWordWrap(True)
        font = self._title.font()
        font.setPointSizeF(font.pointSizeF() * 1.25)
        font.setBold(True)
        self._title.setFont(font)
        self._title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        close = QToolButton()
        close.setObjectName("closeAccount")
        close.setText("✕")
        close.setAutoRaise(True)
        close.setToolTip("Close the account summary (Esc)")
        close.clicked.connect(self.close_requested)

        header = QHBoxLayout()
        header.addWidget(self._title, 1)
        header.addWidget(close, 0, Qt.AlignmentFlag.AlignTop)

        self._message = QLabel()
        self._message.setObjectName("accountMessage")
        self._message.setWordWrap(True)

        self._values: dict[str, QLabel] = {}
        form = QFormLayout()
        form.setLabelAlignment(Qt.AlignmentFlag.AlignLeft)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        for key, label in (
            ("id", "Account"),
            ("email", "Email"),
            ("plan", "Plan"),
            ("billing_day", "Billing day"),
            ("status", "Status"),
            ("plan_left", "Plan credits left"),
            ("purchased", "Purchased credits"),
            ("refund", "Refunded credits"),
            ("total", "Total available"),
            ("period", "Current period"),
            ("next_reset", "Next reset"),
            ("failed", "Unrefunded failures"),
            ("last_activity", "Last activity"),
        ):
            value = QLabel()
            value.setObjectName(f"summary_{key}")
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            # Kept on one line: the panel widens to fit an address rather than cut it.
            self._values[key] = value
            form.addRow(label, value)
        self._form = QWidget()
        self._form.setLayout(form)

        note = QLabel("The full account view with charges, ledger and refunds comes later.")
        note.setWordWrap(True)
        note.setEnabled(False)

        layout = QVBoxLayout(self)
        layout.addLayout(header)
        layout.addWidget(self._message)
        layout.addWidget(self._form)
        layout.addStretch(1)
        layout.addWidget(note)

    @property
    def account_id(self) -> int | None:
        return self._account_id

    def value_text(self, key: str) -> str:
        """The text shown for one field (``plan_left``, ``total``, …)."""
        return self._values[key].text()

    def message_text(self) -> str:
        return self._message.text() if self._message.isVisibleTo(self) else ""

    def show_loading(self, account_id: int, name: str) -> None:
        self._account_id = account_id
        self._title.setText(name)
        self._say("Loading the account…")

    def show_error(self, message: str) -> None:
        self._say(message)

    def show_summary(self, summary: AccountSummary) -> None:
        self._account_id = summary.id
        self._title.setText(summary.name)
        self._message.hide()
        v = self._values
        v["id"].setText(f"#{summary.id}")
        v["email"].setText(summary.email)
        v["plan"].setText(
            f"{summary.plan_name} · {fmt.credits_text(summary.allotment)} credits a month"
        )
        v["billing_day"].setText(f"Day {summary.billing_day} of each month")
        v["status"].setText(STATUS_LABELS.get(summary.status, summary.status))
        v["plan_left"].setText(fmt.credit_share(summary.plan_left, summary.allotment))
        v["purchased"].setText(fmt.credits_text(summary.purchased))
        v["refund"].setText(fmt.credits_text(summary.refund))
        v["total"].setText(fmt.credits_text(summary.total))
        if summary.period_start is not None and summary.next_reset is not None:
            v["period"].setText(
                f"{fmt.local_date(summary.period_start)} – {fmt.local_date(summary.next_reset)}"
            )
        else:
            v["period"].setText(fmt.NOTHING)
        v["next_reset"].setText(fmt.local_datetime(summary.next_reset))
        v["next_reset"].setToolTip(fmt.utc_datetime(summary.next_reset))
        count = summary.unrefunded_failed
        v["failed"].setText(
            "None" if count == 0 else f"{count:,} failed charge{'s' if count != 1 else ''}"
        )
        v["last_activity"].setText(fmt.local_datetime(summary.last_activity))
        v["last_activity"].setToolTip(fmt.utc_datetime(summary.last_activity))
        self._form.show()

    def _say(self, message: str) -> None:
        self._message.setText(message)
        self._message.show()
        self._form.hide()
