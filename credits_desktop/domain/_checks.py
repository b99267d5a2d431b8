"""Small argument checks shared by the domain modules.

Kept private: callers of the domain only see the ValueErrors these raise.
"""

from __future__ import annotations

from datetime import UTC, datetime


def require_utc(value: datetime, name: str) -> datetime:
    """Return ``value`` as a UTC datetime; raise ValueError if it is naive.

    A naive datetime is ambiguous (local time? UTC?) and a period boundary or an expiry
    compared against the wrong zone silently moves credits between periods, so it is refused
    rather than guessed. Aware datetimes in another zone are converted, which keeps every
    value that leaves the domain in one zone.
    """
    if not isinstance(value, datetime):
        raise ValueError(f"{name} must be a date and time, not {type(value).__name__}.")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must carry a time zone (UTC); got a naive date and time.")
    return value.astimezone(UTC)


def require_int(value: int, name: str) -> int:
    """Return ``value`` if it is a whole number (bool excluded); raise ValueError otherwise."""
    # bool is a subclass of int; True credits would be a bug upstream, not a quantity.
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be a whole number of credits, not {value!r}.")
    return value
