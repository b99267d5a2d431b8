"""Typed errors whose message a staff member understands.

Nothing is written when one of these is raised: each service raises them inside
its transaction, which is then rolled back.
"""

from __future__ import annotations


class CreditsDeskError(Exception):
    """Base of every error meant to be shown to a staff member as it is."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(CreditsDeskError):
    """A value given to an operation is unusable (empty, out of range, malformed)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class NotFound(CreditsDeskError):
    """The account, charge, request or staff member does not exist."""


class PermissionDenied(CreditsDeskError):
    """The acting staff member may not do this."""


class RuleBroken(CreditsDeskError):
    """The credit rules forbid this (not enough credits, already refunded, …)."""


class AlreadyRefunded(RuleBroken):
    """The charge has its one refund already."""


class IdempotencyConflict(CreditsDeskError):
    """The idempotency key was used before for a different request."""


class DatabaseUnavailable(CreditsDeskError):
    """The database could not be reached or refused the work; safe to retry."""
