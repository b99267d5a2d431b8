"""Fixtures for the interface tests: a seeded database, and windows that clean up.

Every test runs on SQLite and PostgreSQL (the ``db_url`` fixture) with data made
by the real services. Windows are registered with qtbot so they are closed after
the test, and their background queries are waited for first: a query still
running would hold a PostgreSQL lock that the next test's reset has to wait for.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pytestqt.qtbot import QtBot
from services.factories import World, open_account, seed_world

from credits_desktop.services.operations import Actor
from credits_desktop.store.database import Database
from credits_desktop.ui.main_window import MainWindow

HERE = Path(__file__).resolve().parent

# The offscreen platform (tests have no display) says this whenever a main window
# or dialog is shown; it is about the platform plugin, not about our code, so it
# must not fail the test as other Qt warnings do.
OFFSCREEN_NOISE = r"This plugin does not support propagateSizeHints\(\)"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.qt_log_ignore(OFFSCREEN_NOISE))


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database.open(db_url)
    try:
        yield database
    finally:
        database.close()


@pytest.fixture
def world(db: Database) -> World:
    """Catalogue, one staff member per role, and the account 'Acme Ads' (ops@acme.test)."""
    return seed_world(db)


AddAccounts = Callable[..., list[int]]


@pytest.fixture
def add_accounts(world: World) -> AddAccounts:
    """Open accounts named ``{prefix} 00``, ``{prefix} 01``… with emails
    ``{prefix}00@{domain}``; returns their ids."""

    def add(count: int, prefix: str = "Customer", domain: str = "example.test",
            plan_code: str = "starter") -> list[int]:
        slug = prefix.lower().replace(" ", "")
        return [
            open_account(world.db, world.platform, name=f"{prefix} {i:02d}",
                         email=f"{slug}{i:02d}@{domain}", plan_code=plan_code)
            for i in range(count)
        ]

    return add


MakeWindow = Callable[..., MainWindow]


@pytest.fixture
def make_window(qtbot: QtBot, world: World) -> MakeWindow:
    """Build a MainWindow on the world's database (signed in as support by default)."""

    def make(actor: Actor | None = None, **options: Any) -> MainWindow:
        window = MainWindow(world.db, actor or world.support, **options)
        qtbot.addWidget(window, before_close_func=_wait_for_queries)
        return window

    return make


def _wait_for_queries(window: Any) -> None:
    window.worker.wait_for_done()



# The pseudo-translation fixture (see pseudo_translation.py), for every UI test module.
from .pseudo_translation import pseudo_translated  # noqa: E402,F401


@pytest.fixture(autouse=True, scope="session")
def _english_us_locale(qapp: Any) -> None:
    """Numbers and dates in English (United States) whatever the machine's locale (a
    developer's may be German), with the translators the application installs at
    start-up (the English plural forms: "1 charge", "2 charges")."""
    # Imported here: this fixture was added below the module's imports.
    from PySide6.QtCore import QLocale

    from credits_desktop.ui.i18n import install_translations

    install_translations(qapp, QLocale(QLocale.Language.English, QLocale.Country.UnitedStates))
