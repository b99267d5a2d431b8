"""Tests of billing periods: month-end clamping, leap years, half-open boundaries."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from credits_desktop.domain.periods import (
    Period,
    add_months,
    next_period,
    period_containing,
    periods_from,
    validate_billing_day,
)


def utc(y: int, m: int, d: int, hh: int = 0, mm: int = 0, ss: int = 0, us: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, ss, us, tzinfo=UTC)


def p(start: date, end: date) -> Period:
    return Period(utc(start.year, start.month, start.day), utc(end.year, end.month, end.day))


# --- validate_billing_day ---------------------------------------------------------------


@pytest.mark.parametrize("day", [1, 15, 28, 29, 30, 31])
def test_validate_billing_day_accepts_1_to_31(day: int) -> None:
    assert validate_billing_day(day) == day


@pytest.mark.parametrize("day", [0, -1, 32, 100])
def test_validate_billing_day_rejects_out_of_range(day: int) -> None:
    with pytest.raises(ValueError, match="1 to 31"):
        validate_billing_day(day)


@pytest.mark.parametrize("day", [True, 1.0, "5", None])
def test_validate_billing_day_rejects_non_int(day: object) -> None:
    with pytest.raises(ValueError):
        validate_billing_day(day)  # type: ignore[arg-type]


# --- add_months -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("d", "months", "billing_day", "expected"),
    [
        (date(2026, 1, 31), 1, 31, date(2026, 2, 28)),
        (date(2026, 2, 28), 1, 31, date(2026, 3, 31)),  # not chained: back to the 31st
        (date(2026, 1, 31), 2, 31, date(2026, 3, 31)),
        (date(2026, 1, 31), 3, 31, date(2026, 4, 30)),
        (date(2028, 1, 29), 1, 29, date(2028, 2, 29)),  # leap year
        (date(2027, 1, 29), 1, 29, date(2027, 2, 28)),  # non-leap year
        (date(2027, 1, 30), 1, 30, date(2027, 2, 28)),
        (date(2028, 1, 30), 1, 30, date(2028, 2, 29)),
        (date(2026, 12, 15), 1, 15, date(2027, 1, 15)),  # year rollover
        (date(2026, 1, 15), -1, 15, date(2025, 12, 15)),  # negative, year rollback
        (date(2026, 3, 31), -1, 31, date(2026, 2, 28)),
        (date(2026, 5, 10), 0, 31, date(2026, 5, 31)),  # day of d is ignored
        (date(2026, 5, 10), 24, 10, date(2028, 5, 10)),
        (date(2026, 5, 10), -25, 10, date(2024, 4, 10)),
        (date(2100, 1, 29), 1, 29, date(2100, 2, 28)),  # 2100 is not a leap year
        (date(2000, 1, 29), 1, 29, date(2000, 2, 29)),  # 2000 is
    ],
)
def test_add_months(d: date, months: int, billing_day: int, expected: date) -> None:
    assert add_months(d, months, billing_day) == expected


def test_add_months_rejects_bad_billing_day() -> None:
    with pytest.raises(ValueError):
        add_months(date(2026, 1, 1), 1, 0)


# --- Period -----------------------------------------------------------------------------


def test_period_is_half_open() -> None:
    period = Period(utc(2026, 1, 31), utc(2026, 2, 28))
    assert period.contains(utc(2026, 1, 31))
    assert period.contains(utc(2026, 2, 27, 23, 59, 59, 999999))
    assert not period.contains(utc(2026, 2, 28))
    assert not period.contains(utc(2026, 1, 30, 23, 59, 59, 999999))


def test_period_rejects_naive_and_empty() -> None:
    with pytest.raises(ValueError, match="time zone"):
        Period(datetime(2026, 1, 1), utc(2026, 2, 1))
    with pytest.raises(ValueError, match="time zone"):
        Period(utc(2026, 1, 1), datetime(2026, 2, 1))
    with pytest.raises(ValueError, match="end after"):
        Period(utc(2026, 1, 1), utc(2026, 1, 1))
    with pytest.raises(ValueError, match="end after"):
        Period(utc(2026, 2, 1), utc(2026, 1, 1))


def test_period_contains_rejects_naive() -> None:
    with pytest.raises(ValueError):
        Period(utc(2026, 1, 1), utc(2026, 2, 1)).contains(datetime(2026, 1, 5))


def test_period_normalises_other_zones_to_utc() -> None:
    plus2 = timezone(timedelta(hours=2))
    period = Period(datetime(2026, 1, 1, 2, tzinfo=plus2), datetime(2026, 2, 1, 2, tzinfo=plus2))
    assert period == Period(utc(2026, 1, 1), utc(2026, 2, 1))
    assert period.start.tzinfo is UTC


def test_period_is_frozen() -> None:
    period = Period(utc(2026, 1, 1), utc(2026, 2, 1))
    with pytest.raises(AttributeError):
        period.start = utc(2025, 1, 1)  # type: ignore[misc]


# --- period_containing ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("billing_day", "at", "start", "end"),
    [
        (31, utc(2026, 1, 31), date(2026, 1, 31), date(2026, 2, 28)),
        (31, utc(2026, 2, 27, 23, 59), date(2026, 1, 31), date(2026, 2, 28)),
        (31, utc(2026, 2, 28), date(2026, 2, 28), date(2026, 3, 31)),
        (31, utc(2026, 3, 30, 12), date(2026, 2, 28), date(2026, 3, 31)),
        (31, utc(2026, 3, 31), date(2026, 3, 31), date(2026, 4, 30)),
        (31, utc(2026, 1, 30, 23, 59, 59), date(2025, 12, 31), date(2026, 1, 31)),
        (29, utc(2028, 2, 29), date(2028, 2, 29), date(2028, 3, 29)),  # leap
        (29, utc(2028, 2, 28, 23), date(2028, 1, 29), date(2028, 2, 29)),
        (29, utc(2027, 2, 28), date(2027, 2, 28), date(2027, 3, 29)),  # non-leap
        (29, utc(2027, 2, 27), date(2027, 1, 29), date(2027, 2, 28)),
        (30, utc(2027, 3, 1), date(2027, 2, 28), date(2027, 3, 30)),
        (1, utc(2026, 1, 1), date(2026, 1, 1), date(2026, 2, 1)),
        (1, utc(2025, 12, 31, 23, 59, 59, 999999), date(2025, 12, 1), date(2026, 1, 1)),
        (15, utc(2026, 1, 10), date(2025, 12, 15), date(2026, 1, 15)),
        (15, utc(2026, 12, 20), date(2026, 12, 15), date(2027, 1, 15)),
    ],
)
def test_period_containing(billing_day: int, at: datetime, start: date, end: date) -> None:
    period = period_containing(billing_day, at)
    assert period == p(start, end)
    assert period.contains(at)


def test_instant_of_period_end_belongs_to_next_period() -> None:
    first = period_containing(31, utc(2026, 2, 1))
    second = period_containing(31, first.end)
    assert second.start == first.end
    assert not first.contains(first.end)
    assert second.contains(first.end)


def test_period_boundaries_are_midnight_utc() -> None:
    period = period_containing(17, utc(2026, 6, 20, 15, 30))
    assert period.start == utc(2026, 6, 17)
    assert period.end == utc(2026, 7, 17)


def test_period_containing_uses_utc_not_local_date() -> None:
    # 23:30 on 14 March in UTC-5 is already 15 March in UTC: the new period has begun.
    minus5 = timezone(timedelta(hours=-5))
    period = period_containing(15, datetime(2026, 3, 14, 23, 30, tzinfo=minus5))
    assert period.start == utc(2026, 3, 15)


def test_period_containing_rejects_naive_and_bad_day() -> None:
    with pytest.raises(ValueError):
        period_containing(1, datetime(2026, 1, 1))
    with pytest.raises(ValueError):
        period_containing(32, utc(2026, 1, 1))


# --- next_period / periods_from ---------------------------------------------------------


def test_next_period_day_31_is_not_chained() -> None:
    period = p(date(2026, 1, 31), date(2026, 2, 28))
    nxt = next_period(31, period)
    assert nxt == p(date(2026, 2, 28), date(2026, 3, 31))
    assert next_period(31, nxt) == p(date(2026, 3, 31), date(2026, 4, 30))


def test_next_period_29_leap_and_non_leap() -> None:
    leap = next_period(29, p(date(2028, 1, 29), date(2028, 2, 29)))
    assert leap == p(date(2028, 2, 29), date(2028, 3, 29))
    plain = next_period(29, p(date(2027, 1, 29), date(2027, 2, 28)))
    assert plain == p(date(2027, 2, 28), date(2027, 3, 29))


def test_next_period_after_billing_day_change_has_no_gap_or_overlap() -> None:
    # Old billing day 10, new billing day 20: one shorter period bridges to the new cycle.
    old = p(date(2026, 1, 10), date(2026, 2, 10))
    bridge = next_period(20, old)
    assert bridge == p(date(2026, 2, 10), date(2026, 2, 20))
    assert next_period(20, bridge) == p(date(2026, 2, 20), date(2026, 3, 20))


@pytest.mark.parametrize(
    ("billing_day", "year", "expected"),
    [
        (
            31,
            2026,
            [
                date(2026, 1, 31), date(2026, 2, 28), date(2026, 3, 31), date(2026, 4, 30),
                date(2026, 5, 31), date(2026, 6, 30), date(2026, 7, 31), date(2026, 8, 31),
                date(2026, 9, 30), date(2026, 10, 31), date(2026, 11, 30), date(2026, 12, 31),
                date(2027, 1, 31),
            ],
        ),
        (
            30,
            2028,
            [
                date(2028, 1, 30), date(2028, 2, 29), date(2028, 3, 30), date(2028, 4, 30),
                date(2028, 5, 30), date(2028, 6, 30), date(2028, 7, 30), date(2028, 8, 30),
                date(2028, 9, 30), date(2028, 10, 30), date(2028, 11, 30), date(2028, 12, 30),
                date(2029, 1, 30),
            ],
        ),
        (
            29,
            2027,
            [
                date(2027, 1, 29), date(2027, 2, 28), date(2027, 3, 29), date(2027, 4, 29),
                date(2027, 5, 29), date(2027, 6, 29), date(2027, 7, 29), date(2027, 8, 29),
                date(2027, 9, 29), date(2027, 10, 29), date(2027, 11, 29), date(2027, 12, 29),
                date(2028, 1, 29),
            ],
        ),
        (
            29,
            2028,
            [
                date(2028, 1, 29), date(2028, 2, 29), date(2028, 3, 29), date(2028, 4, 29),
                date(2028, 5, 29), date(2028, 6, 29), date(2028, 7, 29), date(2028, 8, 29),
                date(2028, 9, 29), date(2028, 10, 29), date(2028, 11, 29), date(2028, 12, 29),
                date(2029, 1, 29),
            ],
        ),
    ],
)  # fmt: skip
def test_full_year_of_periods(billing_day: int, year: int, expected: list[date]) -> None:
    first = period_containing(billing_day, utc(year, 1, billing_day))
    periods = periods_from(billing_day, first, utc(year, 12, 31, 23, 59))
    boundaries = [period.start.date() for period in periods] + [periods[-1].end.date()]
    assert boundaries == expected
    # Each period also agrees with period_containing at its start and just before its end.
    for period in periods:
        assert period_containing(billing_day, period.start) == period
        assert period_containing(billing_day, period.end - timedelta(microseconds=1)) == period


def test_periods_from_includes_period_starting_exactly_at_until() -> None:
    first = p(date(2026, 1, 15), date(2026, 2, 15))
    periods = periods_from(15, first, utc(2026, 3, 15))
    assert [x.start for x in periods] == [utc(2026, 1, 15), utc(2026, 2, 15), utc(2026, 3, 15)]


def test_periods_from_until_inside_first_returns_only_first() -> None:
    first = p(date(2026, 1, 15), date(2026, 2, 15))
    assert periods_from(15, first, utc(2026, 2, 14, 23)) == [first]


def test_periods_from_until_before_first_is_empty() -> None:
    first = p(date(2026, 1, 15), date(2026, 2, 15))
    assert periods_from(15, first, utc(2026, 1, 14)) == []


def test_periods_from_rejects_naive_until() -> None:
    first = p(date(2026, 1, 15), date(2026, 2, 15))
    with pytest.raises(ValueError):
        periods_from(15, first, datetime(2026, 3, 1))


@pytest.mark.parametrize("billing_day", range(1, 32))
def test_every_billing_day_tiles_five_years(billing_day: int) -> None:
    first = period_containing(billing_day, utc(2024, 1, 1))
    periods = periods_from(billing_day, first, utc(2029, 1, 1))
    assert periods[0].start <= utc(2024, 1, 1) < periods[-1].end
    assert periods[-1].start <= utc(2029, 1, 1)
    for before, after in itertools.pairwise(periods):
        assert before.end == after.start  # no gap, no overlap
    for period in periods:
        start = period.start.date()
        assert (period.start.hour, period.start.minute, period.start.second) == (0, 0, 0)
        assert start.day == min(billing_day, _last_day(start))
        assert 28 <= (period.end - period.start).days <= 31


def _last_day(d: date) -> int:
    nxt = date(d.year + d.month // 12, d.month % 12 + 1, 1)
    return (nxt - timedelta(days=1)).day
