"""Keyset paging for the read queries: cursors, pages, and the "rows after" condition.

Lists are paged by position, never by OFFSET: a page is "the next ``limit`` rows after
the last one shown", found through an index on the sort key, so page 500 costs what
page 1 costs and rows inserted meanwhile neither repeat nor vanish. The sort key
always ends with the row's id, which makes it unique and so the order total.

A :class:`Cursor` is opaque to callers. Its first value names the list and the sort it
belongs to, so a position from one list (or one sort order) handed to another is
refused with a plain message instead of silently paging the wrong thing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, SQLColumnExpression, tuple_
from sqlalchemy.sql.elements import UnaryExpression

from .errors import InvalidInput

__all__ = [
    "MAX_LIMIT",
    "Cursor",
    "Page",
    "check_limit",
    "keyset_after",
    "keyset_order",
    "make_cursor",
    "open_cursor",
    "split_page",
]

T = TypeVar("T")
R = TypeVar("R")

# Enough for an export batch; far more rows than any screen shows at once.
MAX_LIMIT = 10_000


@dataclass(frozen=True)
class Cursor:
    """An opaque position in one list: pass it back as ``after`` to get the next page."""

    values: tuple[Any, ...]


@dataclass(frozen=True)
class Page(Generic[T]):
    """Some rows of a list and where the next page starts (None: there are no more)."""

    rows: tuple[T, ...]
    next_cursor: Cursor | None


def check_limit(limit: object) -> int:
    """The page size, refusing what is not a whole number from 1 to MAX_LIMIT."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(
            f"The page size must be a whole number from 1 to {MAX_LIMIT:,}.", "limit"
        )
    return limit


def make_cursor(tag: str, *values: Any) -> Cursor:
    return Cursor((tag, *values))


def open_cursor(after: Cursor | None, tag: str, size: int) -> tuple[Any, ...] | None:
    """The key values stored in ``after`` (None for the first page).

    ``size`` is how many values follow the tag; a cursor of another list or sort order,
    or anything else, is refused.
    """
    if after is None:
        return None
    values = after.values if isinstance(after, Cursor) else None
    if values is None or len(values) != size + 1 or values[0] != tag:
        raise InvalidInput(
            "That list position belongs to another list or sort order; "
            "start again from the first page.",
            "after",
        )
    return tuple(values[1:])


def keyset_after(
    keys: Sequence[SQLColumnExpression[Any]], values: Sequence[Any], *, descending: bool
) -> ColumnElement[bool]:
    """Rows strictly after ``values`` in the order of ``keys`` (all in one direction).

    A row-value comparison ``(k1, k2) > (v1, v2)``: both PostgreSQL and SQLite turn it
    into an index range when the keys are the trailing columns of an index. Each value
    is bound with its key's type, so a time compares as the column stores it.
    """
    if len(keys) != len(values):
        raise InvalidInput("That list position is damaged; start again from the first page.",
                           "after")
    if len(keys) == 1:
        bound: object = values[0]
        return keys[0] < bound if descending else keys[0] > bound
    # A plain tuple on the right: SQLAlchemy binds each value with its key's type.
    left = tuple_(*keys)
    right = tuple(values)
    return left < right if descending else left > right


def keyset_order(
    keys: Sequence[SQLColumnExpression[Any]], *, descending: bool
) -> list[UnaryExpression[Any]]:
    return [k.desc() if descending else k.asc() for k in keys]


def split_page(
    rows: Sequence[R], limit: int, cursor_of: Callable[[R], Cursor]
) -> tuple[tuple[R, ...], Cursor | None]:
    """Cut the ``limit + 1`` rows fetched into a page and the cursor after it.

    Fetching one row more than shown is how "no more rows" is known for certain, so a
    caller never asks for an empty last page.
    """
    shown = tuple(rows[:limit])
    if len(rows) > limit and shown:
        return shown, cursor_of(shown[-1])
    return shown, None
