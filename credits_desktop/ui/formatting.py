"""How numbers and times look on screen, in one place so every view agrees.

Credits are whole numbers with thousands separators ("12,400"), the same form the
services use in their messages. Times are stored in UTC and shown in the local
time zone of the computer, with the UTC time kept for tooltips, so a support
agent and a customer in different zones can still compare notes.
"""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = [
    "NOTHING",
    "credit_share",
    "credits_text",
    "local_date",
    "local_datetime",
    "utc_datetime",
]

# Shown where a time is unknown (no period yet, no activity yet).
NOTHING = "—"


def credits_text(value: int) -> str:
    """A credit amount: ``12400`` -> ``"12,400"``."""
    return f"{value:,}"


def credit_share(part: int, whole: int) -> str:
    """A part of an allotment: ``(320, 500)`` -> ``"320 / 500"``."""
    return f"{part:,} / {whole:,}"


def _local(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        # The store only hands out aware times; a naive one would be a bug upstream,
        # and guessing its zone silently would show a wrong time.
        raise ValueError("A time without a time zone cannot be shown.")
    return moment.astimezone()


def local_date(moment: datetime | None) -> str:
    """The local calendar date of a UTC time, ``2026-03-01``; a dash for none."""
    if moment is None:
        return NOTHING
    return _local(moment).strftime("%Y-%m-%d")


def local_datetime(moment: datetime | None) -> str:
    """The local date and time to the minute, ``2026-03-01 14:05``; a dash for none."""
    if moment is None:
        return NOTHING
    return _local(moment).strftime("%Y-%m-%d %H:%M")


def utc_datetime(moment: datetime | None) -> str:
    """The same moment in UTC, for tooltips: ``2026-03-01 13:05 UTC``."""
    if moment is None:
        return NOTHING
    if moment.tzinfo is None:
        raise ValueError("A time without a time zone cannot be shown.")
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
