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

from PySide6.QtCore import QT_TRANSLATE_NOOP, QCoreApplication, QObject, Qt, Slot
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
from . import theme
from .table_models import LoadingModel, PagedModel, greyed
from .workers import Worker

__all__ = [
    "CONTEXT",
    "DETAIL_PAGE_SIZE",
    "ChargeFilter",
    "ChargesModel",
    "GrantsModel",
    "LedgerModel",
    "feature_choices",
    "fill_feature_combo",
    "label",
    "signed",
]

DETAIL_PAGE_SIZE: Final = 100

# The translation context of this module's texts; the labels below are English and
# translated where shown (label()).
CONTEXT: Final = "DetailModels"

GRANT_SOURCES: Final = {
    "plan": str(QT_TRANSLATE_NOOP("DetailModels", "Plan")),
    "purchase": str(QT_TRANSLATE_NOOP("DetailModels", "Purchase")),
    "refund": str(QT_TRANSLATE_NOOP("DetailModels", "Refund")),
    "adjustment": str(QT_TRANSLATE_NOOP("DetailModels", "Adjustment")),
}
LEDGER_KINDS: Final = {
    "plan_grant": str(QT_TRANSLATE_NOOP("DetailModels", "Plan credits")),
    "plan_expiry": str(QT_TRANSLATE_NOOP("DetailModels", "Plan expiry")),
    "purchase": str(QT_TRANSLATE_NOOP("DetailModels", "Purchase")),
    "charge": str(QT_TRANSLATE_NOOP("DetailModels", "Charge")),
    "refund": str(QT_TRANSLATE_NOOP("DetailModels", "Refund")),
    "adjustment": str(QT_TRANSLATE_NOOP("DetailModels", "Adjustment")),
    "reversal": str(QT_TRANSLATE_NOOP("DetailModels", "Reversal")),
}
CHARGE_STATUSES: Final = {
    "succeeded": str(QT_TRANSLATE_NOOP("DetailModels", "Succeeded")),
    "failed": str(QT_TRANSLATE_NOOP("DetailModels", "Failed")),
}


def _tr(text: str) -> str:
    return QCoreApplication.translate(CONTEXT, text)


def label(labels: dict[str, str], code: str) -> str:
    """The translated label of ``code`` in one of the tables above (the code itself if
    the database holds one this version does not know)."""
    known = labels.get(code)
    return _tr(known) if known is not None else code


def feature_choices(features: Sequence[FeatureChoice]) -> list[tuple[str, FeatureChoice]]:
    """(label, feature) for a filter list: the features in use by name, then the
    switched-off ones, marked so: older charges may still use them."""
    ordered = sorted(features, key=lambda f: (not f.enabled, f.name.casefold()))
    return [(f.name if f.enabled else _tr("{name} (disabled)").format(name=f.name), f)
            for f in ordered]


DISABLED_FEATURE_TIP = str(QT_TRANSLATE_NOOP(
    "DetailModels", "Switched off: no new charge uses it, but older charges may."))


def fill_feature_combo(combo: QComboBox, features: Sequence[FeatureChoice]) -> bool:
    """List "All features" and then ``features`` in a filter combo, keeping the feature
    chosen before if the database still has it; False when it is gone (the combo then
    shows every feature and the caller should filter again). No signal is emitted."""
    chosen = combo.currentData()
    combo.blockSignals(True)
    try:
        combo.clear()
        combo.addItem(_tr("All features"), None)
        for text, feature in feature_choices(features):
            combo.addItem(text, feature.code)
            if not feature.enabled:
                combo.setItemData(combo.count() - 1, _tr(DISABLED_FEATURE_TIP),
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
        (str(QT_TRANSLATE_NOOP("ChargesModel", "Time")),
         str(QT_TRANSLATE_NOOP("ChargesModel",
                           "When the generation ran (local time; UTC in the tooltip)"))),
        (str(QT_TRANSLATE_NOOP("ChargesModel", "Feature")),
         str(QT_TRANSLATE_NOOP("ChargesModel", "The AI feature used"))),
        (str(QT_TRANSLATE_NOOP("ChargesModel", "Model")),
         str(QT_TRANSLATE_NOOP("ChargesModel", "The model the feature ran on, if it names one"))),
        (str(QT_TRANSLATE_NOOP("ChargesModel", "Credits")),
         str(QT_TRANSLATE_NOOP("ChargesModel", "Credits the charge cost"))),
        (str(QT_TRANSLATE_NOOP("ChargesModel", "Status")),
         str(QT_TRANSLATE_NOOP("ChargesModel", "Whether the generation succeeded"))),
        (str(QT_TRANSLATE_NOOP("ChargesModel", "Failure reason")),
         str(QT_TRANSLATE_NOOP("ChargesModel", "Why a failed generation failed"))),
        (str(QT_TRANSLATE_NOOP("ChargesModel", "Refunded")),
         str(QT_TRANSLATE_NOOP("ChargesModel", "Credits given back for this charge, if any"))),
    )
    NUMERIC = frozenset({COL_C_CREDITS})
    TR_CONTEXT = "ChargesModel"

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
            return label(CHARGE_STATUSES, row.status)
        if column == COL_C_REASON:
            return row.failure_reason or ""
        if column == COL_C_REFUNDED:
            if row.refunded_credits is not None:
                return _tr("Yes, {credits}").format(
                    credits=fmt.credits_text(row.refunded_credits))
            # Only a failed charge is a refund candidate; a "No" on every success is noise.
            return _tr("No") if row.status == "failed" else ""
        return None

    def tooltip(self, row: ChargeRow, column: int) -> str | None:
        if column == COL_C_TIME:
            return _tr("{utc}\nCharge id: {id}").format(utc=fmt.utc_datetime(row.occurred_at),
                                                        id=row.external_id)
        if column == COL_C_REFUNDED and row.refunded_at is not None:
            return _tr("Refunded {local} ({utc})").format(
                local=fmt.local_datetime(row.refunded_at), utc=fmt.utc_datetime(row.refunded_at))
        return None

    def foreground(self, row: ChargeRow, column: int) -> QBrush | None:
        if column == COL_C_STATUS and row.status == "failed":
            return QBrush(theme.color("danger"))
        return None


COL_L_TIME, COL_L_KIND, COL_L_DELTA, COL_L_GRANT, COL_L_ACTOR, COL_L_REASON, \
    COL_L_REFERENCE, COL_L_BALANCE = range(8)


class LedgerModel(_AccountListModel):
    """The account's ledger, newest entry first, with the running balance."""

    COLUMNS = (
        (str(QT_TRANSLATE_NOOP("LedgerModel", "Time")),
         str(QT_TRANSLATE_NOOP("LedgerModel",
                           "When the entry was written (local time; UTC in the tooltip)"))),
        (str(QT_TRANSLATE_NOOP("LedgerModel", "Kind")),
         str(QT_TRANSLATE_NOOP("LedgerModel", "What moved the credits"))),
        (str(QT_TRANSLATE_NOOP("LedgerModel", "Change")),
         str(QT_TRANSLATE_NOOP("LedgerModel", "Credits added (+) or taken (−)"))),
        (str(QT_TRANSLATE_NOOP("LedgerModel", "Grant")),
         str(QT_TRANSLATE_NOOP("LedgerModel", "The grant whose credits moved"))),
        (str(QT_TRANSLATE_NOOP("LedgerModel", "Actor")),
         str(QT_TRANSLATE_NOOP("LedgerModel", "Who made the change"))),
        (str(QT_TRANSLATE_NOOP("LedgerModel", "Reason")),
         str(QT_TRANSLATE_NOOP("LedgerModel", "Why"))),
        (str(QT_TRANSLATE_NOOP("LedgerModel", "Reference")),
         str(QT_TRANSLATE_NOOP("LedgerModel", "Ticket, invoice or payment reference"))),
        (str(QT_TRANSLATE_NOOP("LedgerModel", "Balance after")),
         str(QT_TRANSLATE_NOOP("LedgerModel",
                               "The account's ledger total right after this entry"))),
    )
    NUMERIC = frozenset({COL_L_DELTA, COL_L_BALANCE})
    TR_CONTEXT = "LedgerModel"

    def reader(self) -> Callable[[Database, Cursor | None, int], Page[Any]]:
        account = self._account_id

        def read(db: Database, after: Cursor | None, limit: int) -> Page[Any]:
            return ledger_page(db, account, after=after, limit=limit)

        return read

    def display(self, row: LedgerRow, column: int) -> str | None:
        if column == COL_L_TIME:
            return fmt.local_datetime(row.created_at)
        if column == COL_L_KIND:
            return label(LEDGER_KINDS, row.kind)
        if column == COL_L_DELTA:
            return signed(row.delta)
        if column == COL_L_GRANT:
            return _tr("{source} #{id}").format(source=label(GRANT_SOURCES, row.grant_source),
                                               id=row.grant_id)
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
            return QBrush(theme.color("danger"))
        if column == COL_L_DELTA and row.delta > 0:
            return QBrush(theme.color("success"))
        return None


COL_G_SOURCE, COL_G_GRANTED, COL_G_REMAINING, COL_G_CREATED, COL_G_EXPIRES = range(5)


class GrantsModel(LoadingModel):
    """Every grant of the account (a few dozen at most), newest first."""

    COLUMNS = (
        (str(QT_TRANSLATE_NOOP("GrantsModel", "Source")),
         str(QT_TRANSLATE_NOOP("GrantsModel", "Where the credits came from"))),
        (str(QT_TRANSLATE_NOOP("GrantsModel", "Granted")),
         str(QT_TRANSLATE_NOOP("GrantsModel", "Credits the grant gave"))),
        (str(QT_TRANSLATE_NOOP("GrantsModel", "Remaining")),
         str(QT_TRANSLATE_NOOP("GrantsModel", "Credits of the grant not spent yet"))),
        (str(QT_TRANSLATE_NOOP("GrantsModel", "Created")),
         str(QT_TRANSLATE_NOOP("GrantsModel", "When the grant was made (local date)"))),
        (str(QT_TRANSLATE_NOOP("GrantsModel", "Expires")),
         str(QT_TRANSLATE_NOOP("GrantsModel",
                           "When its credits expire (local time); purchases never do"))),
    )
    NUMERIC = frozenset({COL_G_GRANTED, COL_G_REMAINING})
    TR_CONTEXT = "GrantsModel"

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
            return _tr("{source} #{id}").format(source=label(GRANT_SOURCES, row.source),
                                               id=row.id)
        if column == COL_G_GRANTED:
            return fmt.credits_text(row.granted)
        if column == COL_G_REMAINING:
            return fmt.credits_text(row.remaining)
        if column == COL_G_CREATED:
            return fmt.local_date(row.created_at)
        if column == COL_G_EXPIRES:
            return _tr("Never") if row.expires_at is None else fmt.local_datetime(row.expires_at)
        return None

    def tooltip(self, row: GrantRow, column: int) -> str | None:
        if column == COL_G_EXPIRES and row.expires_at is not None:
            return fmt.utc_datetime(row.expires_at)
        if column == COL_G_SOURCE and not row.live:
            return _tr("These credits no longer count: expired or used up.")
        return None

    def foreground(self, row: GrantRow, column: int) -> QBrush | None:
        # Expired or spent grants are history: greyed out.
        return None if row.live else greyed()
