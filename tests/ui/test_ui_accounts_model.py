"""The accounts model: paged lazily, searched and sorted in SQL, checked by Qt's tester."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from PySide6.QtCore import QCoreApplication, QModelIndex, Qt
from pytestqt.qtbot import QtBot
from services.factories import World, charge, key

from credits_desktop.services.paging import Cursor, Page
from credits_desktop.services.purchases import buy_package
from credits_desktop.services.queries import (
    AccountQuery,
    AccountRow,
    AccountSort,
    search_accounts,
)
from credits_desktop.store.database import Database
from credits_desktop.ui import formatting as fmt
from credits_desktop.ui.accounts_model import (
    ACCOUNT_ROLE,
    COL_EMAIL,
    COL_LAST_ACTIVITY,
    COL_NAME,
    COL_NEXT_RESET,
    COL_PLAN,
    COL_PLAN_LEFT,
    COL_PURCHASED,
    COL_TOTAL,
    AccountsModel,
)
from credits_desktop.ui.workers import Worker

from .conftest import AddAccounts

RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter


@pytest.fixture
def worker(qtbot: QtBot) -> Iterator[Worker]:
    w = Worker()
    yield w
    w.wait_for_done()
    QCoreApplication.processEvents()


def make_model(world: World, worker: Worker, **options: object) -> AccountsModel:
    return AccountsModel(world.db, worker, **options)  # type: ignore[arg-type]


def wait_loaded(qtbot: QtBot, model: AccountsModel) -> None:
    qtbot.waitUntil(lambda: not model.is_loading)


def names(model: AccountsModel) -> list[str]:
    return [model.account(r).name for r in range(model.rowCount())]


def test_the_model_passes_qts_model_tester_while_pages_arrive(
    qtbot: QtBot, qtmodeltester: object, world: World, worker: Worker,
    add_accounts: AddAccounts,
) -> None:
    add_accounts(11)
    model = make_model(world, worker, page_size=5)
    qtmodeltester.check(model)  # type: ignore[attr-defined]
    # The tester stays attached: every reset and insertion below is checked too.
    model.refresh()
    wait_loaded(qtbot, model)
    while model.canFetchMore(QModelIndex()):
        model.fetchMore(QModelIndex())
        wait_loaded(qtbot, model)
    assert model.rowCount() == 12
    model.set_query("customer 1")
    qtbot.waitUntil(lambda: not model.is_loading and model.rowCount() == 1)
    qtmodeltester.check(model)  # type: ignore[attr-defined]


def test_pages_are_loaded_one_at_a_time_when_asked_for(
    qtbot: QtBot, world: World, worker: Worker, add_accounts: AddAccounts
) -> None:
    add_accounts(23)  # 24 accounts with Acme
    model = make_model(world, worker, page_size=10)
    root = QModelIndex()
    assert model.rowCount() == 0 and not model.canFetchMore(root)
    model.refresh()
    assert not model.canFetchMore(root)  # the first page is on its way
    wait_loaded(qtbot, model)
    assert model.rowCount() == 10 and model.canFetchMore(root) and not model.is_complete

    with qtbot.waitSignal(model.rowsInserted) as inserted:
        model.fetchMore(root)
        model.fetchMore(root)  # a second call while a page is under way does nothing
    assert inserted.args[1:] == [10, 19]
    wait_loaded(qtbot, model)
    assert model.rowCount() == 20

    model.fetchMore(root)
    wait_loaded(qtbot, model)
    assert model.rowCount() == 24
    assert not model.canFetchMore(root) and model.is_complete
    ids = [model.account(r).id for r in range(24)]
    assert len(set(ids)) == 24
    shown = names(model)
    assert shown == sorted(shown, key=str.casefold)


def test_loaded_rows_are_not_tracked_by_the_garbage_collector(
    qtbot: QtBot, world: World, worker: Worker, add_accounts: AddAccounts
) -> None:
    # Every full collection walks every tracked object while holding the GIL: with
    # 100,000 accounts loaded as dataclasses it stalled the GUI thread 50-120 ms while
    # scrolling. Rows kept as tuples of plain values leave the collector's lists.
    add_accounts(5)
    model = make_model(world, worker)
    model.refresh()
    wait_loaded(qtbot, model)
    gc.collect()
    stored = model._rows
    assert stored and not any(gc.is_tracked(row) for row in stored)
    account = model.account(0)
    assert isinstance(account, AccountRow) and account == model.account(0)


def test_a_search_shows_exactly_the_matching_accounts(
    qtbot: QtBot, world: World, worker: Worker, add_accounts: AddAccounts
) -> None:
    add_accounts(12)
    zeta = add_accounts(1, prefix="Zeta Works", domain="zeta.test")
    model = make_model(world, worker)
    model.set_query("  CUSTOMER1 ")
    wait_loaded(qtbot, model)
    assert [model.account(r).email for r in range(model.rowCount())] == [
        "customer10@example.test", "customer11@example.test",
    ]
    assert model.query.text == "CUSTOMER1"
    model.set_query(str(zeta[0]))  # an account id
    qtbot.waitUntil(lambda: not model.is_loading and model.query.text == str(zeta[0]))
    assert zeta[0] in [model.account(r).id for r in range(model.rowCount())]
    model.set_query("nobody at all")
    wait_loaded(qtbot, model)
    assert model.rowCount() == 0 and model.is_complete


@pytest.mark.parametrize(
    ("column", "attribute"),
    [(COL_TOTAL, "total"), (COL_PURCHASED, "purchased"), (COL_EMAIL, "email")],
)
def test_sorting_runs_a_new_query_in_sql(
    qtbot: QtBot, world: World, worker: Worker, add_accounts: AddAccounts,
    column: int, attribute: str,
) -> None:
    ids = add_accounts(6)
    for account_id, package in zip(ids, ["pack_2000", "pack_500", "pack_10000"], strict=False):
        buy_package(world.db, world.platform, account_id=account_id, package_code=package,
                    payment_reference=key("pay"), idempotency_key=key("buy"), at=world.t0)
    calls: list[AccountQuery] = []

    def search(db: Database, query: AccountQuery, after: Cursor | None,
               limit: int) -> Page[AccountRow]:
        calls.append(query)
        return search_accounts(db, query, after=after, limit=limit)

    model = make_model(world, worker, search=search, page_size=4)
    model.refresh()
    wait_loaded(qtbot, model)
    model.sort(column, Qt.SortOrder.DescendingOrder)
    qtbot.waitUntil(lambda: not model.is_loading and model.query.descending)
    while model.canFetchMore(QModelIndex()):
        model.fetchMore(QModelIndex())
        wait_loaded(qtbot, model)
    values = [getattr(model.account(r), attribute) for r in range(model.rowCount())]
    assert model.rowCount() == 7
    assert values == sorted(values, reverse=True)
    # The order came from the database: each page was asked for in that sort.
    assert calls[1].sort is AccountSort(attribute) and calls[1].descending
    assert all(c.sort is AccountSort(attribute) for c in calls[1:])


def test_an_outdated_search_result_is_discarded(
    qtbot: QtBot, world: World, worker: Worker, add_accounts: AddAccounts
) -> None:
    add_accounts(3)
    add_accounts(2, prefix="Zeta", domain="zeta.test")
    release = threading.Event()

    def search(db: Database, query: AccountQuery, after: Cursor | None,
               limit: int) -> Page[AccountRow]:
        page = search_accounts(db, query, after=after, limit=limit)
        if query.text == "zeta":
            assert release.wait(10)  # the slow, older search
        return page

    model = make_model(world, worker, search=search)
    loaded: list[str] = []
    model.page_loaded.connect(lambda: loaded.append(model.query.text))
    model.set_query("zeta")
    model.set_query("customer")
    qtbot.waitUntil(lambda: loaded == ["customer"])
    release.set()
    assert worker.wait_for_done(10_000)
    QCoreApplication.processEvents()  # the old page's outcome is delivered (and dropped)
    assert loaded == ["customer"]
    assert names(model) == ["Customer 00", "Customer 01", "Customer 02"]
    assert not model.is_loading


def test_cells_show_formatted_numbers_and_local_times(
    qtbot: QtBot, world: World, worker: Worker, add_accounts: AddAccounts
) -> None:
    buy_package(world.db, world.platform, account_id=world.account_id,
                package_code="pack_10000", payment_reference=key("pay"),
                idempotency_key=key("buy"), at=world.at(hours=2))
    charge(world, 40, status="failed", at=world.at(hours=3))
    model = make_model(world, worker)
    model.set_query("acme")
    wait_loaded(qtbot, model)
    assert model.rowCount() == 1
    row = model.account(0)
    assert isinstance(model.index(0, COL_EMAIL).data(ACCOUNT_ROLE), AccountRow)
    assert model.index(0, COL_EMAIL).data(ACCOUNT_ROLE) == row

    def cell(column: int, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        return model.index(0, column).data(role)

    assert cell(COL_NAME) == "Acme Ads"
    assert cell(COL_EMAIL) == "ops@acme.test"
    assert cell(COL_PLAN) == "Starter"
    assert cell(COL_PLAN_LEFT) == f"{row.plan_left:,} / 500"
    assert cell(COL_PURCHASED) == "10,500"
    assert cell(COL_TOTAL) == f"{row.total:,}"
    assert row.total >= 10_000
    assert cell(COL_NEXT_RESET) == fmt.local_date(row.next_reset)
    assert cell(COL_LAST_ACTIVITY) == fmt.local_datetime(row.last_activity)
    assert "UTC" in str(cell(COL_LAST_ACTIVITY, Qt.ItemDataRole.ToolTipRole))
    assert "1 failed charge not refunded" in str(cell(COL_NAME, Qt.ItemDataRole.ToolTipRole))
    for column in (COL_PLAN_LEFT, COL_PURCHASED, COL_TOTAL):
        assert cell(column, Qt.ItemDataRole.TextAlignmentRole) == RIGHT
        header = model.headerData(column, Qt.Orientation.Horizontal,
                                  Qt.ItemDataRole.TextAlignmentRole)
        assert header == RIGHT
    assert cell(COL_NAME, Qt.ItemDataRole.TextAlignmentRole) != RIGHT
    assert model.headerData(COL_PLAN_LEFT, Qt.Orientation.Horizontal) == "Plan credits left"


def test_a_failing_query_reports_a_plain_message(
    qtbot: QtBot, worker: Worker, tmp_path: object, db_url: str
) -> None:
    broken = database_without_schema(db_url, tmp_path)
    try:
        model = AccountsModel(broken, worker)
        with qtbot.waitSignal(model.load_failed) as failed:
            model.refresh()
        message = failed.args[0]
        assert message.startswith("The database could not be reached or refused the request.")
        assert "Traceback" not in message and "accounts" not in message
        assert model.has_failed and not model.is_loading
        # No retry on every scroll: only an explicit refresh asks again.
        assert not model.canFetchMore(QModelIndex())
    finally:
        worker.wait_for_done()
        broken.close()


def database_without_schema(db_url: str, tmp_path: object) -> Database:
    """A reachable database of the same kind where the Credits Desk tables are missing.

    SQLite: an empty file. PostgreSQL: the test database itself, seen through a
    search path that names no existing schema, so every table is "undefined".
    """
    from pathlib import Path

    from sqlalchemy.engine import make_url

    url = make_url(db_url)
    if url.get_backend_name() == "sqlite":
        return Database.open(f"sqlite:///{Path(str(tmp_path)) / 'empty.db'}")
    return Database.open(
        url.update_query_dict({"options": "-csearch_path=no_credits_schema_here"})
    )


def test_times_are_shown_in_the_local_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    monkeypatch.setenv("TZ", "Europe/Paris")
    time.tzset()
    try:
        moment = datetime(2026, 1, 31, 23, 30, tzinfo=UTC)
        # English (United States), as the tests' locale is (tests/ui/conftest.py); the
        # space before AM/PM is CLDR's narrow no-break space.
        assert fmt.local_date(moment) == "2/1/2026"
        assert fmt.local_datetime(moment) == "2/1/2026 12:30\u202fAM"
        assert fmt.utc_datetime(moment) == "1/31/2026 11:30\u202fPM UTC"
        assert fmt.local_date(None) == fmt.NOTHING
        assert fmt.credits_text(1234567) == "1,234,567"
        assert fmt.credit_share(320, 2000) == "320 / 2,000"
        with pytest.raises(ValueError):
            fmt.local_date(datetime(2026, 1, 1))
    finally:
        monkeypatch.undo()
        time.tzset()
