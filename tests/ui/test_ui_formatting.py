"""Numbers and times in the user's locale: English (United States), German, French, and
the C locale; negative numbers and zero; the local time zone, across a change to
summer time.

The tests run in English (United States) (tests/ui/conftest.py); a test that
needs another locale sets it with ``in_locale`` and gets English back afterwards.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
from PySide6.QtCore import QLocale

from credits_desktop.ui import formatting as fmt

NNBSP = "\u202f"  # narrow no-break space: French digit groups, US time before AM/PM
# 23:30 UTC on 31 January is already 1 February in Paris.
LATE = datetime(2026, 1, 31, 23, 30, tzinfo=UTC)


@pytest.fixture
def in_locale() -> Iterator[Callable[[QLocale], None]]:
    before = QLocale()

    def use(locale: QLocale) -> None:
        QLocale.setDefault(locale)

    yield use
    QLocale.setDefault(before)


@pytest.fixture
def paris(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "Europe/Paris")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_the_tests_run_in_english_united_states() -> None:
    assert QLocale().name() == "en_US"
    assert fmt.app_locale().name() == "en_US"


def test_credits_in_english_united_states() -> None:
    assert fmt.credits_text(12_400) == "12,400"
    assert fmt.credits_text(1_234_567) == "1,234,567"
    assert fmt.credits_text(999) == "999"
    assert fmt.credits_text(0) == "0"
    assert fmt.credits_text(-40) == "-40"
    assert fmt.credits_text(-1_234_567) == "-1,234,567"
    assert fmt.credits_text(10**12) == "1,000,000,000,000"  # beyond a C int
    assert fmt.credit_share(320, 2_000) == "320 / 2,000"
    assert fmt.credit_share(0, 0) == "0 / 0"


def test_credits_in_german_and_french(in_locale: Callable[[QLocale], None]) -> None:
    in_locale(QLocale(QLocale.Language.German, QLocale.Country.Germany))
    assert fmt.credits_text(12_400) == "12.400"
    assert fmt.credits_text(-1_234_567) == "-1.234.567"
    assert fmt.credits_text(0) == "0"
    assert fmt.credit_share(320, 2_000) == "320 / 2.000"

    in_locale(QLocale(QLocale.Language.French, QLocale.Country.France))
    assert fmt.credits_text(12_400) == f"12{NNBSP}400"
    assert fmt.credits_text(-1_234_567) == f"-1{NNBSP}234{NNBSP}567"
    assert fmt.credits_text(0) == "0"


def test_the_c_locale_is_shown_as_english_united_states(
    in_locale: Callable[[QLocale], None], paris: None
) -> None:
    in_locale(QLocale.c())
    assert fmt.app_locale().name() == "en_US"
    # Qt's C locale would write "12400" and "31 01 2026".
    assert fmt.credits_text(12_400) == "12,400"
    assert fmt.local_date(LATE) == "2/1/2026"


def test_dates_and_times_in_english_united_states(paris: None) -> None:
    assert fmt.local_date(LATE) == "2/1/2026"
    assert fmt.local_datetime(LATE) == f"2/1/2026 12:30{NNBSP}AM"
    assert fmt.utc_datetime(LATE) == f"1/31/2026 11:30{NNBSP}PM UTC"
    assert fmt.date_format() == "M/d/yyyy"
    assert fmt.datetime_format() == f"M/d/yyyy h:mm{NNBSP}Ap"


def test_dates_and_times_in_german_and_french(
    in_locale: Callable[[QLocale], None], paris: None
) -> None:
    in_locale(QLocale(QLocale.Language.German, QLocale.Country.Germany))
    assert fmt.local_date(LATE) == "01.02.2026"
    assert fmt.local_datetime(LATE) == "01.02.2026 00:30"
    assert fmt.utc_datetime(LATE) == "31.01.2026 23:30 UTC"
    assert fmt.datetime_format() == "dd.MM.yyyy HH:mm"

    in_locale(QLocale(QLocale.Language.French, QLocale.Country.France))
    assert fmt.local_date(LATE) == "01/02/2026"
    assert fmt.local_datetime(LATE) == "01/02/2026 00:30"


def test_a_two_digit_year_always_becomes_four_digits(
    in_locale: Callable[[QLocale], None], paris: None
) -> None:
    # Korean writes the year first, in two digits: "26. 2. 1."
    korean = QLocale(QLocale.Language.Korean, QLocale.Country.SouthKorea)
    assert korean.dateFormat(QLocale.FormatType.ShortFormat) == "yy. M. d."
    assert fmt.date_format(korean) == "yyyy. M. d."
    in_locale(korean)
    assert fmt.local_date(LATE) == "2026. 2. 1."
    # Quoted text in a pattern is words, not fields.
    assert fmt._four_digit_year("d 'yy' MM yy") == "d 'yy' MM yyyy"
    assert fmt._four_digit_year("dd.MM.yyyy") == "dd.MM.yyyy"


def test_times_follow_summer_time_without_moving_twice(paris: None) -> None:
    # Paris moves from 02:00 CET to 03:00 CEST at 01:00 UTC on 29 March 2026.
    before = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)
    after = datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    assert fmt.local_datetime(before) == f"3/29/2026 1:30{NNBSP}AM"
    assert fmt.local_datetime(after) == f"3/29/2026 3:30{NNBSP}AM"
    assert fmt.utc_datetime(after) == f"3/29/2026 1:30{NNBSP}AM UTC"


def test_no_time_is_a_dash_and_a_time_without_a_zone_is_refused() -> None:
    for show in (fmt.local_date, fmt.local_datetime, fmt.utc_datetime):
        assert show(None) == fmt.NOTHING
        with pytest.raises(ValueError, match="time zone"):
            show(datetime(2026, 1, 1, 12, 0))
