"""Billing periods: from the account's billing date to the same day next month.

A billing day of 29-31 falls on the last day of shorter months, and every boundary is at
00:00 UTC of the billing date. Periods are half-open ``[start, end)``: the instant a period
ends belongs to the next one, so the periods of an account tile time with no gap and no
overlap.

Boundaries are always derived from the billing day itself, never by chaining clamped dates:
for billing day 31 the period after 28 February ends on 31 March, not 28 March.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, date, datetime

from credits_desktop.domain._checks import require_utc

__all__ = [
    "Period",
    "add_months",
    "next_period",
    "period_containing",
    "periods_from",
    "validate_billing_day",
]


def validate_billing_day(day: int) -> int:
    """Return ``day`` if it is a valid billing day (1 to 31); raise ValueError otherwise."""
    if isinstance(day, bool) or not isinstance(day, int) or not 1 <= day <= 31:
        raise ValueError(f"The billing day must be a day of the month from 1 to 31; got {day!r}.")
    return day


def add_months(d: date, months: int, billing_day: int) -> date:
    """Return the billing date ``months`` months after the month of ``d``.

    Only the year and month of ``d`` matter; the day is ``billing_day``, or the last day of
    the target month when that month is shorter. ``months`` may be negative or zero.
    """
    validate_billing_day(billing_day)
    # Count months from year 0 so negative offsets and year changes need no special cases.
    index = d.year * 12 + (d.month - 1) + months
    year, month0 = divmod(index, 12)
    month = month0 + 1
    last_day = calendar.monthrange(year, month)[1]
    return date(year, month, min(billing_day, last_day))


def _midnight(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=UTC)


@dataclass(frozen=True)
class Period:
    """One billing period, ``start`` inclusive and ``end`` exclusive, both in UTC."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        # Normalise to UTC so equal periods compare and hash equal whatever zone they came in.
        object.__setattr__(self, "start", require_utc(self.start, "The period start"))
        object.__setattr__(self, "end", require_utc(self.end, "The period end"))
        if not self.start < self.end:
            raise ValueError("A billing period must end after it starts.")

    def contains(self, t: datetime) -> bool:
        """Whether ``t`` lies in the period; the end instant belongs to the next period."""
        return self.start <= require_utc(t, "The time") < self.end


def period_containing(billing_day: int, at: datetime) -> Period:
    """Return the billing period that contains the instant ``at``."""
    validate_billing_day(billing_day)
    at = require_utc(at, "The time")
    this_month = _midnight(add_months(at.date(), 0, billing_day))
    # Before this month's billing date we are still in the period that began last month.
    start = this_month if at >= this_month else _midnight(add_months(at.date(), -1, billing_day))
    end = _midnight(add_months(start.date(), 1, billing_day))
    return Period(start, end)


def next_period(billing_day: int, period: Period) -> Period:
    """Return the period that starts when ``period`` ends.

    The end is the first billing boundary after ``period.end``. For a period computed with
    the same billing day that is simply the next period; if the account's billing day has
    changed since, the result is the shorter period up to the first boundary of the new
    billing day, so periods still never overlap or leave a gap.
    """
    validate_billing_day(billing_day)
    return Period(period.end, period_containing(billing_day, period.end).end)


def periods_from(billing_day: int, first: Period, until: datetime) -> list[Period]:
    """Return ``first`` and the periods after it, keeping those whose start is <= ``until``.

    ``first`` itself is subject to the same test: if it starts after ``until`` the list is
    empty, so a caller can never be handed a period that has not begun yet.
    """
    validate_billing_day(billing_day)
    until = require_utc(until, "The end time")
    result: list[Period] = []
    period = first
    while period.start <= until:
        result.append(period)
        period = next_period(billing_day, period)
    return result
