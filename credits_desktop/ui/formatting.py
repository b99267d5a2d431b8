"""How numbers and times look on screen, in one place so every view agrees.

Everything follows the user's locale (``QLocale()``, which
:func:`credits_desktop.ui.i18n.install_translations` sets at start-up): credits are
whole numbers with the locale's group separator ("12,400" in the United States,
"12.400" in Germany, "12 400" with a narrow no-break space in France), dates and
times use the locale's short formats, always with a four-digit year (a two-digit
year is ambiguous in a ledger that spans decades) and times to the minute. The C
(POSIX) locale, which names no country, is shown as English (United States).

Times are stored in UTC and shown in the local time zone of the computer, with the
UTC time kept for tooltips, so a support agent and a customer in different zones
can still compare notes. The local time is worked out by Python (``astimezone``,
which follows ``TZ``); Qt only lays out the digits, so it never moves a time
across a daylight-saving change a second time.
"""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime

from PySide6.QtCore import QDate, QDateTime, QLocale, QTime, QTimeZone

from .i18n import effective_locale

__all__ = [
    "NOTHING",
    "app_locale",
    "credit_share",
    "credits_text",
    "date_format",
    "datetime_format",
    "local_date",
    "local_datetime",
    "utc_datetime",
]

# Shown where a time is unknown (no period yet, no activity yet).
NOTHING = "—"

# A year field of one or two letters ("yy"), not part of "yyyy".
_SHORT_YEAR = re.compile(r"(?<!y)y{1,2}(?!y)")


def app_locale() -> QLocale:
    """The locale numbers and dates are shown in: the default one, except that the C
    locale (no language, no grouping of digits) means English (United States)."""
    return effective_locale(QLocale())


# Tables format thousands of dates while painting: the pattern is rewritten once.
@functools.lru_cache(maxsize=64)
def _four_digit_year(pattern: str) -> str:
    """``pattern`` with a short year field widened to four digits; quoted literal text
    (``'de'`` in some locales' patterns) is left alone."""
    parts = pattern.split("'")
    # Even-numbered parts are outside quotes.
    return "'".join(_SHORT_YEAR.sub("yyyy", part) if i % 2 == 0 else part
                    for i, part in enumerate(parts))


def date_format(locale: QLocale | None = None) -> str:
    """The locale's short date pattern with a four-digit year (``M/d/yyyy`` in en_US)."""
    locale = locale or app_locale()
    return _four_digit_year(locale.dateFormat(QLocale.FormatType.ShortFormat))


def datetime_format(locale: QLocale | None = None) -> str:
    """The locale's short date and time pattern with a four-digit year, to the minute
    (``M/d/yyyy h:mm AP`` in en_US); also the display format of date-time fields."""
    locale = locale or app_locale()
    return _four_digit_year(locale.dateTimeFormat(QLocale.FormatType.ShortFormat))


def credits_text(value: int) -> str:
    """A credit amount with the locale's group separator: ``12400`` -> ``"12,400"``."""
    return app_locale().toString(value)


def credit_share(part: int, whole: int) -> str:
    """A part of an allotment: ``(320, 500)`` -> ``"320 / 500"``."""
    return f"{credits_text(part)} / {credits_text(whole)}"


def _local(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        # The store only hands out aware times; a naive one would be a bug upstream,
        # and guessing its zone silently would show a wrong time.
        raise ValueError("A time without a time zone cannot be shown.")
    return moment.astimezone()


def _wall_clock(moment: datetime) -> QDateTime:
    """The date and time ``moment`` reads (already in the zone to show), as a QDateTime
    Qt will not convert: in its UTC no hour is skipped or repeated."""
    return QDateTime(QDate(moment.year, moment.month, moment.day),
                     QTime(moment.hour, moment.minute), QTimeZone.utc())


def local_date(moment: datetime | None) -> str:
    """The local calendar date of a UTC time in the locale's short form with a
    four-digit year, ``3/1/2026`` in en_US; a dash for none."""
    if moment is None:
        return NOTHING
    local = _local(moment)
    locale = app_locale()
    return locale.toString(QDate(local.year, local.month, local.day), date_format(locale))


def local_datetime(moment: datetime | None) -> str:
    """The local date and time to the minute, ``3/1/2026 2:05 PM`` in en_US; a dash
    for none."""
    if moment is None:
        return NOTHING
    locale = app_locale()
    return locale.toString(_wall_clock(_local(moment)), datetime_format(locale))


def utc_datetime(moment: datetime | None) -> str:
    """The same moment in UTC, for tooltips: ``3/1/2026 1:05 PM UTC`` in en_US."""
    if moment is None:
        return NOTHING
    if moment.tzinfo is None:
        raise ValueError("A time without a time zone cannot be shown.")
    locale = app_locale()
    text = locale.toString(_wall_clock(moment.astimezone(UTC)), datetime_format(locale))
    return f"{text} UTC"
