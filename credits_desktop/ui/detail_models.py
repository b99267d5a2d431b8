"""Table models of the account detail view: grants, charges and ledger of one account.

Grants are few per account and load in one go (:class:`GrantsModel`). Charges and
ledger entries can run into the tens of thousands, so :class:`ChargesModel` and
:class:`LedgerModel` page lazily through ``canFetchMore``/``fetchMore`` over the
services' keyset cursors, with the same PagedModel as the accounts table: every page is read
by a :class:`~credits_desktop.ui.workers.Worker` job, never on the GUI thread, and
a page of an older filter or refresh still under way is discarded on arrival.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from PySide6.QtCore import (
    QObject,
    Qt,
    Slot,
)
from PySide6.QtGui import QBrush
from PySide6.QtWidgets import QComboBox

from credits_desktop.services.catalog import FeatureChoice
from credits_desktop.services.paging import Cursor, Page
from credits_desktop.services.queries import (
    ChargeRow,
    GrantRow,
    LedgerRow,
    account_grants,
    charges_page,
    ledger_page,
)
from credits_desktop.store.database import Database

from . import formatting as fmt
from .table_models import LoadingModel, PagedModel, greyed
from .workers import Worker

__all__ = [
    "DETAIL_PAGE_SIZE",
    "ChargeFilter",
    "ChargesModel",
    "GrantsModel",
    "LedgerModel",
    "feature_choices",
    "fill_feature_combo",
    "signed",
]

DETAIL_PAGE_SIZE: Final = 100


GRANT_SOURCES: Final = {
    "plan": "Plan",
    "purchase": "Purchase",
    "refund": "Refund",
    "adjustment": "Adjustment",
}
LEDGER_KINDS: Final = {
    "plan_grant": "Plan credits",
    "plan_expiry": "Plan expiry",
    "purchase": "Purchase",
    "charge": "Charge",
    "refund": "Refund",
    "adjustment": "Adjustment",
    "reversal": "Reversal",
}
CHARGE_STATUSES: Final = {"succeeded": "Succeeded", "failed": "Failed"}


def feature_choices(features: Sequence[FeatureChoice]) -> list[tuple[str, FeatureChoice]]:
    """(label, feature) for a filter list: the features in use by name, then the
    switched-off ones, marked so: older charges may still use them."""
    ordered = sorted(features, key=lambda f: (not f.enabled, f.name.casefold()))
    return [(f.name if f.enabled else f"{f.name} (disabled)", f) for f in ordered]


DISABLED_FEATURE_TIP = "Switched off: no new charge uses it, but older charges may."


def fill_feature_combo(combo: QComboBox, features: Sequence[FeatureChoice]) -> bool:
    """List "All features" and then ``features`` in a filter combo, keeping the feature
    chosen before if the database still has it; False when it is gone (the combo then
    shows every feature and the caller should filter again). No signal is emitted."""
    chosen = combo.currentData()
    combo.blockSignals(True)
    try:
        combo.clear()
        combo.addItem("All features", None)
        for label, feature in feature_choices(features):
            combo.addItem(label, feature.code)
            if not feature.enabled:
                combo.setItemData(combo.count() - 1, DISABLED_FEATURE_TIP,
                                  Qt.ItemDataRole.ToolTipRole)
        index = combo.findData(chosen) if chosen is not None else 0
        combo.setCurrentIndex(max(index, 0))
    finally:
        combo.blockSignals(False)
    return chosen is None or index >= 0


def signed(delta: int) -> str:
    """A ledger change with its sign: ``+500``, ``−40`` (a true minus sign), ``0``."""
    if delta > 0:
        return f"+{delta:,}"
    if delta < 0:
        return f"\u2212{-delta:,}"
    return "0"


class _AccountListModel(PagedModel):
    """A paged list of one account's rows."""

    def __init__(
        self,
        db: Database,
        worker: Worker,
        account_id: int,
        parent: QObject | None = None,
        *,
        page_size: int = DETAIL_PAGE_SIZE,
    ) -> None:
        super().__init__(db, worker, parent, page_size=page_size)
        self._account_id = account_id


@dataclass(frozen=True)
class ChargeFilter:
    """Which charges to list; ``start <= occurred_at < end`` (UTC, aware)."""

    feature: str | None = None
    status: str | None = None
    start: datetime | None = None
    end: datetime | None = None


COL_C_TIME, COL_C_FEATURE, COL_C_MODEL, COL_C_CREDITS, COL_C_STATUS, COL_C_REASON, \
    COL_C_REFUNDED = range(7)


class ChargesModel(_AccountListModel):
    """The account's usage charges, newest first, filtered in SQL."""

    COLUMNS = (
        ("Time", "When the generation ran (local time; UTC in the tooltip)"),
        ("Feature", "The AI feature used"),
        ("Model", "The model the feature ran on, if it names one"),
        ("Credits", "Credits the charge cost"),
        ("Status", "Whether the generation succeeded"),
        ("Failure reason", "Why a failed generation failed"),
        ("Refunded", "Credits given back for this charge, if any"),
    )
    NUMERIC = frozenset({COL_C_CREDITS})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._filter = ChargeFilter()

    @property
    def filter(self) -> ChargeFilter:
        return self._filter

    def set_filter(self, charge_filter: ChargeFilter) -> None:
        """List the charges matching ``charge_filter``, from the first page."""
        if self._started and charge_filter == self._filter and not self._failed:
            return
        self._filter = charge_filter
        self.refresh()

    def reader(self) -> Callable[[Database, Cursor | None, int], Page[Any]]:
        account, f = self._account_id, self._filter

        def read(db: Database, after: Cursor | None, limit: int) -> Page[Any]:
            return charges_page(db, account, feature=f.feature, status=f.status,
                                start=f.start, end=f.end, after=after, limit=limit)

        return read

    def display(self, row: ChargeRow, column: int) -> str | None:
        if column == COL_C_TIME:
            return fmt.local_datetime(row.occurred_at)
        if column == COL_C_FEATURE:
            return row.feature_name
        if column == COL_C_MODEL:
            return row.model or fmt.NOTHING
        if column == COL_C_CREDITS:
            return fmt.credits_text(row.credits)
        if column == COL_C_STATUS:
            return CHARGE_STATUSES.get(row.status, row.status)
        if column == COL_C_REASON:
            return row.failure_reason or ""
        if column == COL_C_REFUNDED:
            if row.refunded_credits is not None:
                return f"Yes, {fmt.credits_text(row.refunded_credits)}"
            # Only a failed charge is a refund candidate; a "No" on every success is noise.
            return "No" if row.status == "failed" else ""
        return None

    def tooltip(self, row: ChargeRow, column: int) -> str | None:
        if column == COL_C_TIME:
            return f"{fmt.utc_datetime(row.occurred_at)}\nCharge id: {row.external_id}"
        if column == COL_C_REFUNDED and row.refunded_at is not None:
            return f"Refunded {fmt.local_datetime(row.refunded_at)} " \
                   f"({fmt.utc_datetime(row.refunded_at)})"
        return None

    def foreground(self, row: ChargeRow, column: int) -> QBrush | None:
        if column == COL_C_STATUS and row.status == "failed":
            return QBrush(Qt.GlobalColor.darkRed)
        return None


COL_L_TIME, COL_L_KIND, COL_L_DELTA, COL_L_GRANT, COL_L_ACTOR, COL_L_REASON, \
    COL_L_REFERENCE, COL_L_BALANCE = range(8)


class LedgerModel(_AccountListModel):
    """The account's ledger, newest entry first, with the running balance."""

    COLUMNS = (
        ("Time", "When the entry was written (local time; UTC in the tooltip)"),
        ("Kind", "What moved the credits"),
        ("Change", "Credits added (+) or taken (−)"),
        ("Grant", "The grant whose credits moved"),
        ("Actor", "Who made the change"),
        ("Reason", "Why"),
        ("Reference", "Ticket, invoice or payment reference"),
        ("Balance after", "The account's ledger total right after this entry"),
    )
    NUMERIC = frozenset({COL_L_DELTA, COL_L_BALANCE})

    def reader(self) -> Callable[[Database, Cursor | None, int], Page[Any]]:
        account = self._account_id

        def read(db: Database, after: Cursor | None, limit: int) -> Page[Any]:
            return ledger_page(db, account, after=after, limit=limit)

        return read

    def display(self, row: LedgerRow, column: int) -> str | None:
        if column == COL_L_TIME:
            return fmt.local_datetime(row.created_at)
        if column == COL_L_KIND:
            return LEDGER_KINDS.get(row.kind, row.kind)
        if column == COL_L_DELTA:
            return signed(row.delta)
        if column == COL_L_GRANT:
            return f"{GRANT_SOURCES.get(row.grant_source, row.grant_source)} #{row.grant_id}"
        if column == COL_L_ACTOR:
            return row.actor
        if column == COL_L_REASON:
            return row.reason
        if column == COL_L_REFERENCE:
            return row.reference or ""
        if column == COL_L_BALANCE:
            return fmt.credits_text(row.balance_after)
        return None

    def tooltip(self, row: LedgerRow, column: int) -> str | None:
        if column == COL_L_TIME:
            return fmt.utc_datetime(row.created_at)
        return None

    def foreground(self, row: LedgerRow, column: int) -> QBrush | None:
        if column == COL_L_DELTA and row.delta < 0:
            return QBrush(Qt.GlobalColor.darkRed)
        if column == COL_L_DELTA and row.delta > 0:
            return QBrush(Qt.GlobalColor.darkGreen)
        return None


COL_G_SOURCE, COL_G_GRANTED, COL_G_REMAINING, COL_G_CREATED, COL_G_EXPIRES = range(5)


class GrantsModel(LoadingModel):
    """Every grant of the account (a few dozen at most), newest first."""

    COLUMNS = (
        ("Source", "Where the credits came from"),
        ("Granted", "Credits the grant gave"),
        ("Remaining", "Credits of the grant not spent yet"),
        ("Created", "When the grant was made (local date)"),
        ("Expires", "When its credits expire (local time); purchases never do"),
    )
    NUMERIC = frozenset({COL_G_GRANTED, COL_G_REMAINING})

    def __init__(
        self, db: Database, worker: Worker, account_id: int, parent: QObject | None = None
    ) -> None:
        super().__init__(db, worker, parent)
        self._account_id = account_id

    def refresh(self) -> None:
        self._started = True
        self._failed = False
        db, account = self._db, self._account_id
        self._submit(lambda: account_grants(db, account), self._arrived)

    @Slot(object)
    def _arrived(self, rows: Sequence[GrantRow]) -> None:
        self._pending = None
        self.beginResetModel()
        self._rows = list(rows)
        self.endResetModel()
        self._report_loading()
        self.page_loaded.emit()

    def display(self, row: GrantRow, column: int) -> str | None:
        if column == COL_G_SOURCE:
            return f"{GRANT_SOURCES.get(row.source, row.source)} #{row.id}"
        if column == COL_G_GRANTED:
            return fmt.credits_text(row.granted)
        if column == COL_G_REMAINING:
            return fmt.credits_text(row.remaining)
        if column == COL_G_CREATED:
            return fmt.local_date(row.created_at)
        if column == COL_G_EXPIRES:
            return "Never" if row.expires_at is None else fmt.local_datetime(row.expires_at)
        return None

    def tooltip(self, row: GrantRow, column: int) -> str | None:
        if column == COL_G_EXPIRES and row.expires_at is not None:
            return fmt.utc_datetime(row.expires_at)
        if column == COL_G_SOURCE and not row.live:
            return "These credits no longer count: expired or used up."
        return None

    def foreground(self, row: GrantRow, column: int) -> QBrush | None:
        # Expired or spent grants are history: greyed out.
        return None if row.live else greyed()
