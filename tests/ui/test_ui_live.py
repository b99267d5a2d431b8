"""Live data: a change made through another connection shows in the open account
within two seconds without losing the user's place; a database that goes away shows
one banner, and the window recovers when it comes back. Both databases, for real:
PostgreSQL refuses connections, SQLite's file is moved away."""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import only_on
from PySide6.QtCore import QCoreApplication, QItemSelectionModel, QModelIndex, Qt
from PySide6.QtWidgets import QApplication, QDialog, QPushButton, QTableView
from pytestqt.qtbot import QtBot
from services.factories import World, charge, refund
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from credits_desktop.services.queries import change_marks
from credits_desktop.store.database import Database
from credits_desktop.store.engine import make_engine
from credits_desktop.ui.account_detail import AccountDetail
from credits_desktop.ui.banner import ConnectionBanner
from credits_desktop.ui.live import ChangeWatcher
from credits_desktop.ui.main_window import MainWindow
from credits_desktop.ui.table_models import RowsModel
from credits_desktop.ui.workers import Worker, is_unreachable

from .conftest import MakeWindow

PAGE = 10
CHARGES = 34


# -- helpers ---------------------------------------------------------------------------


def open_acme(qtbot: QtBot, window: MainWindow) -> AccountDetail:
    window.show()
    qtbot.waitUntil(lambda: window.model.rowCount() > 0 and not window.model.is_loading)
    detail = window.open_account(window.model.account(0))
    qtbot.waitUntil(lambda: detail.summary is not None and not detail.is_loading)
    return detail


@contextmanager
def database_down(db_url: str, request: pytest.FixtureRequest) -> Iterator[None]:
    """Make the test database unreachable for real, and bring it back after.

    PostgreSQL: the database refuses new connections and its sessions are ended, as
    when a server restarts. SQLite: the file is moved away (a share disconnected);
    the engine must not create a new empty file in its place.
    """
    url = make_url(db_url)
    if url.get_backend_name() == "postgresql":
        admin: Engine = request.getfixturevalue("pg_admin")
        name = url.database
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
            conn.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                     "WHERE datname = :name AND pid <> pg_backend_pid()"),
                {"name": name},
            )
        try:
            yield
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
        return
    path = Path(str(url.database))
    away = path.with_name(path.name + ".away")
    os.replace(path, away)
    try:
        yield
        assert not path.exists(), "the engine made a new database file in place of the old"
    finally:
        os.replace(away, path)


def select_cells(table: QTableView, model: RowsModel, cells: list[tuple[int, int]]) -> None:
    selection = table.selectionModel()
    selection.clearSelection()
    for row, column in cells:
        selection.select(model.index(row, column), QItemSelectionModel.SelectionFlag.Select)


def view_place(table: QTableView, model: RowsModel) -> tuple[object, ...]:
    """What the user sees of the table: selected cells and current cell by row id, and
    the scroll position."""
    selected = sorted(
        (model.row_at(i.row()).id, i.column()) for i in table.selectionModel().selectedIndexes()
    )
    current = table.currentIndex()
    return (
        tuple(selected),
        (model.row_at(current.row()).id, current.column()),
        table.verticalScrollBar().value(),
    )


# -- the service and the watcher ---------------------------------------------------------------


def test_change_marks_move_with_every_write(world: World) -> None:
    first = change_marks(world.db, [world.account_id, 999_999])
    assert set(first) == {world.account_id}
    failed = charge(world).charge_id
    second = change_marks(world.db, [world.account_id])
    assert second[world.account_id] > first[world.account_id]
    refund(world, world.support, failed)
    third = change_marks(world.db, [world.account_id])
    assert third[world.account_id] > second[world.account_id]
    assert change_marks(world.db, []) == {}


def test_the_watcher_never_runs_two_polls_at_once(qtbot: QtBot, world: World) -> None:
    worker = Worker()
    watcher = ChangeWatcher(world.db, worker, lambda: [world.account_id],
                            interval_ms=60_000)
    try:
        watcher.start()
        for _ in range(3):
            watcher.retry_now()
        assert watcher.polling
        qtbot.waitUntil(lambda: not watcher.polling)
        worker.wait_for_done()
        QCoreApplication.processEvents()
        assert watcher.polls == 1
        assert watcher.connected
    finally:
        watcher.stop()
        worker.wait_for_done()
        QCoreApplication.processEvents()


# -- live refresh ------------------------------------------------------------------------------


def test_a_change_made_elsewhere_shows_within_two_seconds_and_the_place_is_kept(
    qtbot: QtBot, world: World, make_window: MakeWindow, db_url: str
) -> None:
    failed_ids = []
    for minute in range(CHARGES):
        status = "failed" if minute % 3 == 0 else "succeeded"
        made = charge(world, 5, status=status, at=world.at(minutes=minute))
        if status == "failed":
            failed_ids.append(made.charge_id)
    # The real poll interval: this is the two-second promise.
    window = make_window(detail_page_size=PAGE)
    window.resize(1100, 700)
    detail = open_acme(qtbot, window)
    detail.lists.setCurrentIndex(1)
    table, model = detail.charges_table, detail.charges
    while model.canFetchMore(QModelIndex()):
        model.fetchMore(QModelIndex())
        qtbot.waitUntil(lambda: not model.is_loading)
    assert model.rowCount() == CHARGES > 3 * PAGE

    # Select cells on the third page (past what a plain refresh would read again),
    # one of them a failed charge, and scroll the list down to them.
    rows = [i for i in range(2 * PAGE, CHARGES) if model.row_at(i).id in failed_ids]
    target_row = rows[0]
    target = model.row_at(target_row).id
    select_cells(table, model, [(target_row, 1), (target_row, 2), (target_row + 1, 2)])
    table.selectionModel().setCurrentIndex(model.index(target_row + 1, 2),
                                           QItemSelectionModel.SelectionFlag.NoUpdate)
    bar = table.verticalScrollBar()
    qtbot.waitUntil(lambda: bar.maximum() > 0)
    bar.setValue(bar.maximum() // 2 + 7)
    before = view_place(table, model)
    assert detail.summary is not None
    seq_before = detail.summary.change_seq
    assert before[2] > 0
    assert model.row_at(target_row).refunded_credits is None

    # Another staff member's desktop refunds the selected charge.
    other = Database.open(db_url)
    try:
        refund(dataclasses.replace(world, db=other), world.support, target)
    finally:
        other.close()
    changed = time.monotonic()

    def refunded() -> bool:
        return any(r.id == target and r.refunded_credits is not None for r in model.rows())

    qtbot.waitUntil(refunded, timeout=2000)
    assert time.monotonic() - changed < 2.0
    qtbot.waitUntil(lambda: not detail.is_loading)
    assert detail.summary is not None and detail.summary.change_seq > seq_before
    assert model.rowCount() == CHARGES
    assert view_place(table, model) == before
    assert table.isVisible()


def test_rows_arriving_above_do_not_move_the_rows_the_user_is_looking_at(
    qtbot: QtBot, world: World, make_window: MakeWindow, db_url: str
) -> None:
    for minute in range(CHARGES):
        charge(world, 5, status="succeeded", at=world.at(minutes=minute))
    window = make_window(detail_page_size=PAGE, poll_interval_ms=100)
    window.resize(1100, 700)
    detail = open_acme(qtbot, window)
    detail.lists.setCurrentIndex(2)
    table, model = detail.ledger_table, detail.ledger
    while model.rowCount() < 2 * PAGE:
        model.fetchMore(QModelIndex())
        qtbot.waitUntil(lambda: not model.is_loading)
    loaded = model.rowCount()
    bar = table.verticalScrollBar()
    qtbot.waitUntil(lambda: bar.maximum() > 0)
    bar.setValue(bar.maximum() // 2 + 5)
    top = table.rowAt(0)
    top_id, offset = model.row_at(top).id, table.rowViewportPosition(top)
    select_cells(table, model, [(top + 1, 0)])
    selected_id = model.row_at(top + 1).id
    newest = model.row_at(0).id

    # A charge made elsewhere puts a new ledger entry on top of the list.
    other = Database.open(db_url)
    try:
        charge(dataclasses.replace(world, db=other), 5, status="succeeded",
               at=world.at(days=1))
    finally:
        other.close()
    qtbot.waitUntil(lambda: model.row_at(0).id > newest and not detail.is_loading,
                    timeout=3000)
    # As many rows as were loaded are read again; the oldest one is now on the next page.
    assert model.rowCount() == loaded and model.canFetchMore(QModelIndex())
    # The same entry is at the top of the view, as far scrolled into as before.
    top_now = table.rowAt(0)
    assert model.row_at(top_now).id == top_id
    assert table.rowViewportPosition(top_now) == offset
    assert [model.row_at(i.row()).id for i in table.selectionModel().selectedIndexes()] \
        == [selected_id]


# -- a lost database -------------------------------------------------------------------------


def test_a_lost_database_shows_one_banner_and_the_window_recovers(
    qtbot: QtBot, world: World, make_window: MakeWindow, db_url: str,
    request: pytest.FixtureRequest,
) -> None:
    # Polls often; retries only when asked (Retry now), so the test steers them.
    window = make_window(poll_interval_ms=100, backoff=(600.0,))
    detail = open_acme(qtbot, window)
    banner = window.findChild(ConnectionBanner, "connectionBanner")
    assert banner is window.connection_banner and banner.isHidden()
    retry = banner.findChild(QPushButton, "retryConnection")
    assert retry.accessibleName() == "Retry connecting now"

    with database_down(db_url, request):
        qtbot.waitUntil(banner.isVisible, timeout=5000)
        qtbot.waitUntil(lambda: "Retrying in" in banner.text.text())
        assert banner.text.text() == \
            "Lost the connection to the database. Retrying in 600 s…"
        assert not window.watcher.connected and window.watcher.attempt == 1

        # The window still works: a search runs (and fails) without a second message.
        window.search.setText("Acme")
        qtbot.waitUntil(lambda: window.model.query.text == "Acme"
                        and not window.model.is_loading)
        assert window.model.has_failed
        assert window.error_bar.isHidden()
        # Retry now tries at once; the database is still gone: the next wait is longer.
        qtbot.mouseClick(retry, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: window.watcher.attempt == 2 and not window.watcher.polling)
        assert banner.isVisible()
        # One banner, no dialogs.
        assert len(window.findChildren(ConnectionBanner)) == 1
        assert not [w for w in QApplication.topLevelWidgets()
                    if isinstance(w, QDialog) and w.isVisible()]

    qtbot.mouseClick(retry, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(banner.isHidden, timeout=5000)
    assert window.watcher.connected
    assert window.statusBar().currentMessage() == "Connection restored"
    qtbot.waitUntil(lambda: window.model.rowCount() == 1 and not window.model.is_loading
                    and not detail.is_loading)
    assert window.error_bar.isHidden()
    assert detail.message.isHidden()
    assert detail.summary is not None and detail.grants.rowCount() > 0


def test_a_query_that_cannot_reach_the_database_starts_the_outage_at_once(
    qtbot: QtBot, world: World, make_window: MakeWindow, db_url: str,
    request: pytest.FixtureRequest,
) -> None:
    # No poll for a minute: only the failing search can tell the window.
    window = make_window(poll_interval_ms=60_000, backoff=(0.2, 0.4))
    open_acme(qtbot, window)
    with database_down(db_url, request):
        with qtbot.waitSignal(window.worker.connection_lost, timeout=5000):
            window.search.setText("nobody")
        qtbot.waitUntil(window.connection_banner.isVisible)
        qtbot.waitUntil(lambda: window.watcher.attempt >= 2, timeout=5000)
        assert window.error_bar.isHidden()
    # The back-off retries find the database again by themselves.
    qtbot.waitUntil(window.connection_banner.isHidden, timeout=5000)
    qtbot.waitUntil(lambda: not window.model.is_loading and not window.model.has_failed)


@only_on("sqlite")
def test_a_moved_sqlite_file_is_an_error_not_a_new_empty_database(db_url: str) -> None:
    engine = make_engine(db_url)
    path = Path(str(make_url(db_url).database))
    away = path.with_name("moved.db")
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM features")).scalar_one() > 0
        os.replace(path, away)
        with pytest.raises(OperationalError) as caught, engine.connect() as conn:
            conn.execute(text("SELECT count(*) FROM features"))
        assert is_unreachable(caught.value)
        assert not path.exists()
        os.replace(away, path)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM features")).scalar_one() > 0
    finally:
        engine.dispose()
        if away.exists():
            os.replace(away, path)
