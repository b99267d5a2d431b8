"""The monthly finance report: where every credit came from and went, month by month.

For each UTC calendar month of the chosen range: the opening balance (every account's
spendable credits at the month's first instant), credits granted by plans, purchased,
refunded, adjusted (added and removed), moved by reversals, used, expired unused
(breakage), and the closing balance, with

    opening + granted + purchased + refunded + adjusted + reversed − used − expired = closing

checked for every month. The source is the ledger (``ledger_entries``), read in one
set-based query grouped by month, kind and the sign of the movement; the closing
balance is the opening plus *every* movement of the month whatever its kind, while the
columns count only movements of the kind and direction they stand for (a plan grant adds,
a charge takes away…). So a month whose ledger holds a movement no column explains
(a charge that adds credits, an unknown kind) does not reconcile, and the report says so.

Used credits by feature and by plan come from the usage rollup (``usage_daily``: the
ledger does not keep the feature, and the account's plan may have changed since); the
report checks their sum against the ledger's charges month by month. And beyond the
months: the whole ledger must sum to the credits the grants still hold and to the
accounts' cached balances, and plan grants whose expiry the billing roll has not yet
written are reported, since their months' breakage will change when it runs.

A year over ~16 million ledger rows takes seconds: run it off the GUI thread, with
``progress``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import String, func, literal_column, select
from sqlalchemy.orm import Session

from credits_desktop.store.database import Database
from credits_desktop.store.models import (
    Account,
    CreditGrant,
    LedgerEntry,
    Plan,
    UsageDaily,
)
from credits_desktop.store.types import utcnow

from .dashboard import _as_date, _catalogue, add_months, rollup_gap, snapshot
from .errors import InvalidInput

__all__ = [
    "COLUMNS",
    "MAX_MONTHS",
    "FinanceReport",
    "MonthFigures",
    "finance_report",
    "month_range",
    "reconciles_text",
    "report_table",
]

Progress = Callable[[str, int, int], None]

MAX_MONTHS = 120
# The aggregate hashes a few hundred groups; the sort for the month key wants room.
REPORT_WORK_MEM = "256MB"
STEPS = 4

# (kind, sign) -> the column a ledger movement counts in. Anything else is unexplained.
COLUMN_OF: dict[tuple[str, int], str] = {
    ("plan_grant", 1): "granted",
    ("purchase", 1): "purchased",
    ("refund", 1): "refunded",
    ("adjustment", 1): "adjusted_added",
    ("adjustment", -1): "adjusted_removed",
    ("reversal", 1): "reversed",
    ("reversal", -1): "reversed",
    ("charge", -1): "used",
    ("plan_expiry", -1): "expired",
}


@dataclass(frozen=True)
class MonthFigures:
    """One month of the report; every figure a whole number of credits, all positive
    except ``reversed`` (reversals both give back and take back)."""

    month: date  # the month's first day (UTC)
    opening: int
    granted: int
    purchased: int
    refunded: int
    adjusted_added: int
    adjusted_removed: int
    reversed: int
    used: int
    expired: int
    # Opening plus every ledger movement of the month, whatever its kind.
    closing: int
    entries: int
    # Ledger movements that fit no column: ((kind, sign), credits, entries).
    unexplained: tuple[tuple[str, int, int, int], ...]
    # From the usage rollup: credits charged by feature code and by plan code.
    used_by_feature: tuple[tuple[str, int], ...]
    used_by_plan: tuple[tuple[str, int], ...]

    @property
    def adjusted(self) -> int:
        return self.adjusted_added - self.adjusted_removed

    @property
    def expected_closing(self) -> int:
        return (self.opening + self.granted + self.purchased + self.refunded + self.adjusted
                + self.reversed - self.used - self.expired)

    @property
    def difference(self) -> int:
        """Closing balance minus what the columns explain; 0 when the month reconciles."""
        return self.closing - self.expected_closing

    @property
    def rollup_used(self) -> int:
        return sum(c for _, c in self.used_by_feature)

    @property
    def rollup_agrees(self) -> bool:
        return self.rollup_used == self.used and sum(c for _, c in self.used_by_plan) == self.used

    @property
    def reconciles(self) -> bool:
        return self.difference == 0 and self.rollup_agrees

    @property
    def label(self) -> str:
        return f"{self.month:%Y-%m}"

    def used_of_feature(self, code: str) -> int:
        return dict(self.used_by_feature).get(code, 0)

    def used_of_plan(self, code: str) -> int:
        return dict(self.used_by_plan).get(code, 0)


@dataclass(frozen=True)
class FinanceReport:
    months: tuple[MonthFigures, ...]
    # Every feature and plan that used credits in the range: (code, name), name order.
    features: tuple[tuple[str, str], ...]
    plans: tuple[tuple[str, str], ...]
    # The whole ledger, the grants' remaining credits and the accounts' cached balances:
    # three records of the same money, which must agree.
    ledger_total: int
    grants_remaining: int
    accounts_balance: int
    # Plan grants past their expiry (before the report's end) still holding credits:
    # their expiry is not in the ledger yet.
    pending_expiries: int
    pending_credits: int
    made_at: datetime
    seconds: float
    # None when the usage rollup is complete; else why usage by feature falls short.
    rollup_incomplete: str | None = None

    @property
    def first(self) -> date:
        return self.months[0].month

    @property
    def last(self) -> date:
        return self.months[-1].month

    @property
    def books_agree(self) -> bool:
        return self.ledger_total == self.grants_remaining == self.accounts_balance

    @property
    def reconciles(self) -> bool:
        return self.books_agree and all(m.reconciles for m in self.months)

    def problems(self) -> list[str]:
        """Plain sentences, one per thing that does not add up (empty when all does)."""
        found: list[str] = []
        for m in self.months:
            if m.difference:
                what = ", ".join(
                    f"{n:,} {kind} entr{'y' if n == 1 else 'ies'} that "
                    f"{'add' if sign > 0 else 'remove'}{'s' if n == 1 else ''} "
                    f"{abs(c):,} credits"
                    for kind, sign, c, n in m.unexplained
                )
                found.append(
                    f"{m.label} does not reconcile: the closing balance is {m.closing:,} "
                    f"but the columns give {m.expected_closing:,} (off by {m.difference:+,})"
                    + (f"; unexplained: {what}." if what else ".")
                )
            if not m.rollup_agrees and self.rollup_incomplete is None:
                found.append(
                    f"{m.label}: the usage rollup counts {m.rollup_used:,} credits used "
                    f"but the ledger's charges {m.used:,}; run credits-desktop check."
                )
        if not self.books_agree:
            found.append(
                f"The ledger sums to {self.ledger_total:,} credits, the grants hold "
                f"{self.grants_remaining:,} and the accounts' balances "
                f"{self.accounts_balance:,}; run credits-desktop check."
            )
        return found

    def warnings(self) -> list[str]:
        found: list[str] = []
        if self.rollup_incomplete is not None:
            found.append(f"{self.rollup_incomplete} Until then the credits used by feature "
                         "and by plan fall short of the credits used.")
        if self.pending_expiries:
            found.append(
                f"{self.pending_expiries:,} plan grant(s) ended before {self.last_end:%Y-%m-%d}"
                f" with {self.pending_credits:,} credits whose expiry the billing roll has not "
                "written yet: the expired figures will grow when it runs.")
        return found

    @property
    def last_end(self) -> date:
        return add_months(self.last, 1)


def month_range(first: object, last: object) -> tuple[date, date]:
    """Validate a range of months (any day of each; both included) into the first days
    of the first month and of the month after the last."""
    for value, name in ((first, "first_month"), (last, "last_month")):
        if not isinstance(value, date) or isinstance(value, datetime):
            raise InvalidInput("Choose the months as calendar dates.", name)
    assert isinstance(first, date) and isinstance(last, date)
    start = first.replace(day=1)
    end = add_months(last.replace(day=1), 1)
    count = (end.year - start.year) * 12 + end.month - start.month
    if count < 1:
        raise InvalidInput("The last month must not come before the first.", "last_month")
    if count > MAX_MONTHS:
        raise InvalidInput(f"Choose at most {MAX_MONTHS} months.", "last_month")
    return start, end


def finance_report(
    db: Database, *, first_month: date, last_month: date, progress: Progress | None = None,
) -> FinanceReport:
    """The report for every UTC month from ``first_month`` to ``last_month`` included."""
    start, end = month_range(first_month, last_month)
    report = progress or (lambda stage, done, total: None)

    def work(session: Session) -> FinanceReport:
        snapshot(session, work_mem=REPORT_WORK_MEM)
        return read_report(session, start, end, report)

    return db.read(work)


def _month_key(session: Session) -> Any:
    column = LedgerEntry.created_at
    if session.get_bind().dialect.name == "sqlite":
        # Stored as naive UTC text 'YYYY-MM-DD HH:MM:SS.ffffff'.
        return func.substr(column, 1, 7, type_=String())
    # date_trunc of the UTC wall time: about a third faster than to_char over millions
    # of rows; the key is made text in Python (:func:`_key_text`).
    return func.date_trunc(literal_column("'month'"),
                           func.timezone(literal_column("'UTC'"), column))


def _key_text(value: object) -> str:
    """'YYYY-MM' from what the month key query returns on either database."""
    if isinstance(value, datetime | date):
        return f"{value:%Y-%m}"
    return str(value)[:7]


def _months(start: date, end: date) -> list[date]:
    found = []
    month = start
    while month < end:
        found.append(month)
        month = add_months(month, 1)
    return found


def read_report(session: Session, start: date, end: date,
                progress: Progress) -> FinanceReport:
    """:func:`finance_report` inside a read transaction the caller holds."""
    began = time.perf_counter()
    made_at = utcnow()
    months = _months(start, end)
    keys = {f"{m:%Y-%m}": m for m in months}

    progress("Reading the ledger", 0, STEPS)
    g = LedgerEntry
    moves = select(
        _month_key(session).label("month"),
        g.kind.label("kind"),
        (g.delta > 0).label("adds"),
        g.delta.label("delta"),
    ).subquery()
    # Grouped by the month over the whole ledger (no index helps a sum over all of it):
    # months before the range make the opening balance, those after it the check
    # against the grants' remaining credits.
    ledger = session.execute(
        select(moves.c.month, moves.c.kind, moves.c.adds, func.sum(moves.c.delta),
               func.count())
        .group_by(moves.c.month, moves.c.kind, moves.c.adds)
    ).all()
    first_key = f"{start:%Y-%m}"
    opening = 0
    ledger_total = 0
    flows: dict[date, dict[tuple[str, int], tuple[int, int]]] = {m: {} for m in months}
    for month_key, kind, adds, total, count in ledger:
        sign = 1 if adds else -1
        credits = int(total or 0)
        ledger_total += credits
        key = _key_text(month_key)
        if key < first_key:
            opening += credits
        elif key in keys:
            flows[keys[key]][(str(kind), int(sign))] = (credits, int(count))

    progress("Reading usage by feature and plan", 1, STEPS)
    u = UsageDaily
    usage = session.execute(
        select(u.day, u.feature_code, u.plan_code, func.sum(u.credits))
        .where(u.day >= start, u.day < end)
        .group_by(u.day, u.feature_code, u.plan_code)
    ).all()
    by_feature: dict[date, dict[str, int]] = {m: {} for m in months}
    by_plan: dict[date, dict[str, int]] = {m: {} for m in months}
    for day_value, feature, plan, credits in usage:
        month = _as_date(day_value).replace(day=1)
        amount = int(credits or 0)
        by_feature[month][feature] = by_feature[month].get(feature, 0) + amount
        by_plan[month][plan] = by_plan[month].get(plan, 0) + amount

    progress("Checking the balances", 2, STEPS)
    grants_remaining = int(session.scalar(select(func.coalesce(
        func.sum(CreditGrant.remaining), 0))) or 0)
    accounts_balance = int(session.scalar(select(func.coalesce(func.sum(
        Account.plan_balance + Account.purchased_balance + Account.refund_balance), 0)))
        or 0)
    until = min(made_at, datetime.combine(end, datetime.min.time(), tzinfo=UTC))
    pending = session.execute(
        select(func.count(), func.coalesce(func.sum(CreditGrant.remaining), 0)).where(
            CreditGrant.expires_at.is_not(None), CreditGrant.expires_at < until,
            CreditGrant.remaining > 0)
    ).one()

    progress("Adding up the months", 3, STEPS)
    figures: list[MonthFigures] = []
    for month in months:
        columns = dict.fromkeys(
            ("granted", "purchased", "refunded", "adjusted_added", "adjusted_removed",
             "reversed", "used", "expired"), 0)
        movement = entries = 0
        unexplained: list[tuple[str, int, int, int]] = []
        for (kind, sign), (credits, count) in sorted(flows[month].items()):
            movement += credits
            entries += count
            column = COLUMN_OF.get((kind, sign))
            if column is None:
                unexplained.append((kind, sign, credits, count))
            elif column in ("adjusted_removed", "used", "expired"):
                columns[column] += -credits
            else:
                columns[column] += credits
        closing = opening + movement
        figures.append(MonthFigures(
            month=month, opening=opening, closing=closing, entries=entries,
            unexplained=tuple(unexplained),
            used_by_feature=tuple(sorted(by_feature[month].items())),
            used_by_plan=tuple(sorted(by_plan[month].items())),
            **columns,
        ))
        opening = closing

    catalogue = _catalogue(session)
    used_features = {code for m in figures for code, _ in m.used_by_feature}
    features = tuple((c, n) for c, n in catalogue if c in used_features)
    features += tuple((c, c) for c in sorted(used_features - {c for c, _ in catalogue}))
    plan_rows = session.execute(select(Plan.code, Plan.name, Plan.monthly_allotment)).all()
    plan_order = sorted(plan_rows, key=lambda r: (r[2], r[0]))
    used_plans = {code for m in figures for code, _ in m.used_by_plan}
    plans = tuple((str(c), str(n)) for c, n, _ in plan_order if c in used_plans)
    plans += tuple((c, c) for c in sorted(used_plans - {str(r[0]) for r in plan_rows}))
    progress("Done", STEPS, STEPS)
    return FinanceReport(
        months=tuple(figures),
        features=features,
        plans=plans,
        ledger_total=ledger_total,
        grants_remaining=grants_remaining,
        accounts_balance=accounts_balance,
        pending_expiries=int(pending[0] or 0),
        pending_credits=int(pending[1] or 0),
        made_at=made_at,
        seconds=time.perf_counter() - began,
        rollup_incomplete=rollup_gap(session),
    )


# -- as a table (the view, CSV and XLSX all show the same) ----------------------------------

# Title and what it means, for headers and tooltips.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("Month", "UTC calendar month"),
    ("Opening balance", "Every account's spendable credits at the month's first instant"),
    ("Granted by plans", "Plan credits granted at the start of billing periods"),
    ("Purchased", "Credits of packages bought"),
    ("Refunded", "Credits given back for charges"),
    ("Adjusted +", "Purchased credits added by finance (manual sales, compensation)"),
    ("Adjusted −", "Purchased credits removed by finance (chargebacks, corrections)"),
    ("Reversed", "Credits given back (+) or taken back (−) by reversing a refund or an "
                 "adjustment"),
    ("Used", "Credits charged for AI features, failed generations included"),
    ("Expired unused", "Plan credits that expired unused at the end of a billing period "
                       "(breakage)"),
    ("Closing balance", "Every account's spendable credits at the month's end"),
    ("Difference", "Closing balance minus opening + granted + purchased + refunded "
                   "± adjusted ± reversed − used − expired: 0 when the month reconciles"),
    ("Reconciles", "✓ when the identity holds and the usage by feature and plan adds up "
                   "to the credits used; otherwise what is wrong"),
)
DIFFERENCE_COLUMN = len(COLUMNS) - 2
RECONCILES_COLUMN = len(COLUMNS) - 1
RECONCILED_MARK = "✓"
TOTALS_LABEL = "Total"


def reconciles_text(month: MonthFigures) -> str:
    """The reconciliation cell: the mark, or in a few words what does not add up."""
    if month.reconciles:
        return RECONCILED_MARK
    if month.difference:
        return f"NO: off by {month.difference:+,}"
    return f"NO: usage by feature adds up to {month.rollup_used:,}"


def report_table(report: FinanceReport) -> tuple[list[str], list[list[int | str]]]:
    """The report as a header and rows (one per month, then the totals row): numbers
    stay numbers. After the main columns, used credits by feature and by plan."""
    header = [title for title, _ in COLUMNS]
    header += [f"Used: {name}" for _, name in report.features]
    header += [f"Used on plan: {name}" for _, name in report.plans]
    rows: list[list[int | str]] = []
    for m in report.months:
        rows.append([
            m.label, m.opening, m.granted, m.purchased, m.refunded, m.adjusted_added,
            m.adjusted_removed, m.reversed, m.used, m.expired, m.closing, m.difference,
            reconciles_text(m),
            *(m.used_of_feature(code) for code, _ in report.features),
            *(m.used_of_plan(code) for code, _ in report.plans),
        ])
    ms = report.months

    def total(attr: str) -> int:
        return sum(int(getattr(m, attr)) for m in ms)

    rows.append([
        TOTALS_LABEL, ms[0].opening, total("granted"), total("purchased"), total("refunded"),
        total("adjusted_added"), total("adjusted_removed"), total("reversed"), total("used"),
        total("expired"), ms[-1].closing, total("difference"),
        RECONCILED_MARK if report.reconciles else "NO: see the problems listed",
        *(sum(m.used_of_feature(code) for m in ms) for code, _ in report.features),
        *(sum(m.used_of_plan(code) for m in ms) for code, _ in report.plans),
    ])
    return header, rows
