"""The main window on 100,000 accounts: it loads a page, not the table.

The accounts are bulk-inserted straight into the ``accounts`` table (multi-row INSERTs
through the SQLAlchemy connection) with their cached balances and billing period, which
is all the list reads; making them through the services would take minutes. The window gets the real
``search_accounts`` wrapped to count its calls, so the test sees every page the view
asks for.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from pytestqt.qtbot import QtBot
from services.factories import World
from sqlalchemy import Connection, func, select

from credits_desktop.services.accounts import normalise
from credits_desktop.services.paging import Cursor, Page
from credits_desktop.services.queries import AccountQuery, AccountRow, search_accounts
from credits_desktop.store.database import Database
from credits_desktop.store.models import Account
from credits_desktop.ui.accounts_model import PAGE_SIZE
from credits_desktop.ui.main_window import MainWindow

from .conftest import MakeWindow

ACCOUNTS = 100_000
ROWS_PER_INSERT = 100
BULK_COLUMNS = (
    "name", "owner_email", "name_norm", "email_norm", "plan_id", "billing_day", "status",
    "created_at", "period_start", "period_end", "plan_balance", "purchased_balance",
    "refund_balance", "unrefunded_failed", "last_activity_at", "change_seq",
)
# Long enough for the view's zero-delay "fill the viewport" timer and any layout pass to
# run: a page the view asked for then shows in the counted calls.
SETTLE_MS = 150


def bulk_name(i: int) -> str:
    return f"Bulk Customer {i:06d}"


def bulk_email(i: int) -> str:
    return f"c{i:06d}@bulk.test"


def insert_accounts(db: Database, plan_id: int, count: int) -> None:
    """``count`` active accounts on ``plan_id`` in the current monthly period (no
    grants or ledger rows: the list does not read them).

    Multi-row INSERTs of ``ROWS_PER_INSERT`` rows through one ``executemany`` on the
    SQLAlchemy connection, as the demo loader does on SQLite: one statement the driver
    parses once. Row-at-a-time ``executemany`` took ~8 s on PostgreSQL, and SQLAlchemy's
    own multi-row forms re-parse their long text for every batch, which is slower still.
    """
    now = datetime.now(UTC)
    start = datetime(now.year, now.month, 1, tzinfo=UTC)
    end = datetime(now.year + now.month // 12, now.month % 12 + 1, 1, tzinfo=UTC)
    with db.engine.begin() as conn:
        # Every row has the same times: converted to their stored form once.
        first_day, next_month = (stored(conn, "period_start", t) for t in (start, end))
        mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
        one = "(" + ", ".join([mark] * len(BULK_COLUMNS)) + ")"
        statement = (f"INSERT INTO accounts ({', '.join(BULK_COLUMNS)}) VALUES "
                     + ", ".join([one] * ROWS_PER_INSERT))
        params: list[tuple[Any, ...]] = []
        flat: list[Any] = []
        for i in range(count):
            name, email = bulk_name(i), bulk_email(i)
            flat += (name, email, normalise(name), normalise(email), plan_id, 1, "active",
                     first_day, first_day, next_month, i % 500, (i * 7) % 1000, 0, 0,
                     first_day, 0)
            if (i + 1) % ROWS_PER_INSERT == 0:
                params.append(tuple(flat))
                flat = []
        assert not flat, "count must be a multiple of ROWS_PER_INSERT"
        conn.exec_driver_sql(statement, params)
        if conn.dialect.name == "postgresql":
            # As after a real load: the planner must know the table is big.
            conn.exec_driver_sql("ANALYZE accounts")


def stored(conn: Connection, name: str, value: object) -> object:
    """``value`` as the driver gets it for the column ``accounts.name``."""
    kind = Account.__table__.c[name].type.dialect_impl(conn.dialect)
    processor = kind.bind_processor(conn.dialect)
    return processor(value) if processor is not None else value


class CountingSearch:
    """The real ``search_accounts``, remembering each call's search text and cursor."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Cursor | None]] = []
        self._lock = threading.Lock()

    def __call__(self, db: Database, query: AccountQuery, after: Cursor | None,
                 limit: int) -> Page[AccountRow]:
        with self._lock:
            self.calls.append((query.text, after))
        return search_accounts(db, query, after=after, limit=limit)


@pytest.fixture
def many_accounts(world: World) -> Iterator[int]:
    """100,000 bulk accounts besides the world's; yields how many accounts there are."""
    plan_id = world.db.read(
        lambda s: s.scalar(select(Account.plan_id).where(Account.id == world.account_id)))
    assert plan_id is not None
    insert_accounts(world.db, plan_id, ACCOUNTS)
    low, high, total = world.db.read(lambda s: s.execute(
        select(func.min(Account.id), func.max(Account.id), func.count())).one())
    # Contiguous ids from 1: the id search below knows which ids match.
    assert (low, high, total) == (1, ACCOUNTS + 1, ACCOUNTS + 1)
    yield int(total)
    if world.db.is_postgresql:
        # The next test's reset DELETEs every row, and deleting 100,000 accounts checks
        # each against every table that refers to accounts: about 10 s. TRUNCATE takes
        # milliseconds; the reset puts back the seeded rows it removes. (The window and
        # its queries are gone by now: pytest-qt closes widgets before fixtures end.)
        with world.db.engine.begin() as conn:
            conn.exec_driver_sql("TRUNCATE accounts CASCADE")


def settle(qtbot: QtBot, window: MainWindow) -> None:
    """Let the view run its pending timers and layout, then wait for any read it began."""
    qtbot.wait(SETTLE_MS)
    qtbot.waitUntil(lambda: not window.model.is_loading, timeout=10_000)


def shown_names(window: MainWindow) -> list[str]:
    model = window.model
    return [model.account(r).name for r in range(model.rowCount())]


def test_a_hundred_thousand_accounts_load_a_page_at_a_time(
    qtbot: QtBot, many_accounts: int, make_window: MakeWindow
) -> None:
    search = CountingSearch()
    window = make_window(search=search)
    model = window.model
    with qtbot.waitSignal(model.page_loaded, timeout=10_000):
        window.show()
    settle(qtbot, window)
    # One page fills the viewport; nothing else was read.
    assert search.calls == [("", None)]
    assert model.rowCount() == PAGE_SIZE < many_accounts
    assert model.canFetchMore(window.table.rootIndex())  # so the list is not complete
    assert window.count_label.text() == f"{PAGE_SIZE} accounts loaded, scroll for more"
    # Sorted by name: Acme Ads of the world first, then the bulk accounts in order.
    assert shown_names(window) == ["Acme Ads", *(bulk_name(i) for i in range(PAGE_SIZE - 1))]

    # Scrolling to the bottom asks for the next page only, after the last row shown.
    with qtbot.waitSignal(model.page_loaded, timeout=10_000):
        window.table.scrollToBottom()
    settle(qtbot, window)
    assert len(search.calls) == 2
    assert search.calls[1][1] is not None
    assert model.rowCount() == 2 * PAGE_SIZE
    assert shown_names(window)[PAGE_SIZE:] == [
        bulk_name(i) for i in range(PAGE_SIZE - 1, 2 * PAGE_SIZE - 1)
    ]

    # A search narrows the list to its matches, in one page that is complete.
    for text, expected in (
        ("c04321", [bulk_name(i) for i in range(43210, 43220)]),  # email prefix
        ("BULK customer 09999", [bulk_name(i) for i in range(99990, 100_000)]),  # name
    ):
        before = len(search.calls)
        with qtbot.waitSignal(model.page_loaded, timeout=10_000):
            window.search.setText(text)
        settle(qtbot, window)
        assert search.calls[before:] == [(text, None)]
        assert shown_names(window) == expected
        assert model.is_complete
        assert window.count_label.text() == f"{len(expected)} accounts loaded"

    # An id prefix: 1000, 10000-10009 and 100000-100001 (the ids run from 1 to 100,001).
    before = len(search.calls)
    with qtbot.waitSignal(model.page_loaded, timeout=10_000):
        window.search.setText("1000")
    settle(qtbot, window)
    assert search.calls[before:] == [("1000", None)]
    ids = sorted(model.account(r).id for r in range(model.rowCount()))
    assert ids == [1000, *range(10_000, 10_010), 100_000, 100_001]
