"""Fixtures of the service tests: a seeded world whose invariants hold after each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .factories import World, assert_invariants, open_world


@pytest.fixture
def world(db_url: str) -> Iterator[World]:
    """Catalogue, one staff member per role and one account; checked after the test."""
    with open_world(db_url) as w:
        yield w
        assert_invariants(w.db)
