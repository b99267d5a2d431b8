"""Errors raised when an operation would break a credits rule.

Their messages are shown to staff as they are, so they are plain sentences about the
account, not about the code.
"""

from __future__ import annotations


class RuleViolation(Exception):
    """An operation was refused because it would break a business rule."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InsufficientCredits(RuleViolation):
    """A charge (or other draw) needs more credits than the account has available."""

    def __init__(self, available: int, requested: int, what: str = "credits") -> None:
        super().__init__(
            f"The account has only {available:,} {what} available; this needs {requested:,}."
        )
        self.available = available
        self.requested = requested
        self.what = what

    def __reduce__(self) -> tuple[type[InsufficientCredits], tuple[int, int, str]]:
        # Exceptions pickle by re-calling __init__ with self.args (the message), which does
        # not match this signature; keep them picklable for worker threads and logging.
        return (type(self), (self.available, self.requested, self.what))


class InsufficientPurchased(RuleViolation):
    """A removal asks for more purchased credits than the account holds."""

    def __init__(self, available: int, requested: int) -> None:
        super().__init__(
            f"Only {available:,} purchased credits can be removed; {requested:,} were asked."
        )
        self.available = available
        self.requested = requested

    def __reduce__(self) -> tuple[type[InsufficientPurchased], tuple[int, int]]:
        return (type(self), (self.available, self.requested))
