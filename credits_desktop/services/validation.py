"""Checks on what staff type, shared by every operation.

Text is kept verbatim (quotes, SQL, emoji and all: it only ever reaches the
database as a bound parameter); it is only trimmed, length-limited and refused
when it holds control characters that would garble a report, or a lone surrogate
(half of a UTF-16 pair, which no database encoding can store: the driver would fail
on it half-way through the write).
"""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime
from enum import StrEnum
from typing import TypeVar

from .errors import InvalidInput

MAX_CREDITS = 1_000_000
TICKET_MAX = 100
NOTE_MAX = 2_000

E = TypeVar("E", bound=StrEnum)


def text(value: object, field: str, label: str, *, max_length: int, required: bool) -> str | None:
    """A trimmed piece of text, or None when optional and empty."""
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise InvalidInput(f"{label} must be text.", field)
    cleaned = value.strip()
    if not cleaned:
        if required:
            raise InvalidInput(f"{label} is required.", field)
        return None
    if len(cleaned) > max_length:
        raise InvalidInput(f"{label} is too long: at most {max_length:,} characters.", field)
    for ch in cleaned:
        category = unicodedata.category(ch)
        if category == "Cc" and ch not in "\n\t":
            raise InvalidInput(f"{label} contains a control character.", field)
        if category == "Cs":
            raise InvalidInput(f"{label} contains a character that cannot be stored.", field)
    return cleaned


def required_text(value: object, field: str, label: str, *, max_length: int) -> str:
    result = text(value, field, label, max_length=max_length, required=True)
    assert result is not None
    return result


def credits(value: object, field: str, label: str, *, minimum: int = 1,
            maximum: int = MAX_CREDITS) -> int:
    """A whole number of credits within bounds."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{label} must be a whole number of credits.", field)
    if value < minimum:
        if minimum == 1:
            raise InvalidInput(f"{label} must be at least 1 credit.", field)
        raise InvalidInput(f"{label} must be at least {minimum:,}.", field)
    if value > maximum:
        raise InvalidInput(f"{label} can be at most {maximum:,} credits.", field)
    return value


def choice(value: object, enum: type[E], field: str, label: str) -> E:
    try:
        if not isinstance(value, str):
            raise ValueError(value)
        return enum(value)
    except ValueError:
        options = ", ".join(e.value for e in enum)
        raise InvalidInput(f"{label} must be one of: {options}.", field) from None


def to_utc(value: datetime, field: str) -> datetime:
    """An aware time moved to UTC; the first and last days of the calendar, which
    overflow when moved from some zones, are refused in words."""
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise InvalidInput("That date is outside the range this application handles.",
                           field) from None
