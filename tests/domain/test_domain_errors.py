"""Tests of the rule-violation errors: messages staff read, attributes code reads."""

from __future__ import annotations

import pickle

import pytest

from credits_desktop.domain.errors import (
    InsufficientCredits,
    InsufficientPurchased,
    RuleViolation,
)


def test_rule_violation_message_is_str_and_attribute() -> None:
    exc = RuleViolation("Balances never go negative.")
    assert str(exc) == "Balances never go negative."
    assert exc.message == "Balances never go negative."
    assert isinstance(exc, Exception)


def test_insufficient_credits_message_and_attributes() -> None:
    exc = InsufficientCredits(120, 300)
    assert str(exc) == "The account has only 120 credits available; this needs 300."
    assert exc.message == str(exc)
    assert (exc.available, exc.requested) == (120, 300)
    assert isinstance(exc, RuleViolation)


def test_insufficient_credits_custom_what() -> None:
    exc = InsufficientCredits(5, 6, what="refund credits")
    assert str(exc) == "The account has only 5 refund credits available; this needs 6."


def test_insufficient_credits_large_numbers_are_grouped() -> None:
    exc = InsufficientCredits(1200, 30000)
    assert str(exc) == "The account has only 1,200 credits available; this needs 30,000."


def test_insufficient_purchased_message_and_attributes() -> None:
    exc = InsufficientPurchased(80, 100)
    assert str(exc) == "Only 80 purchased credits can be removed; 100 were asked."
    assert (exc.available, exc.requested) == (80, 100)
    assert isinstance(exc, RuleViolation)


def test_errors_can_be_caught_as_rule_violation() -> None:
    with pytest.raises(RuleViolation):
        raise InsufficientPurchased(0, 1)


@pytest.mark.parametrize(
    "exc",
    [RuleViolation("x"), InsufficientCredits(1, 2, "credits"), InsufficientPurchased(3, 4)],
)
def test_errors_pickle_round_trip(exc: RuleViolation) -> None:
    copy = pickle.loads(pickle.dumps(exc))
    assert type(copy) is type(exc)
    assert str(copy) == str(exc)
    assert copy.message == exc.message
