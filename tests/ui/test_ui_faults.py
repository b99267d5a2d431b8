"""Faults seen from the window: a refund whose connection drops, a server restart while
the application is open, a read-only SQLite file.

A PostgreSQL restart is simulated on this test's own database, never done for real:
the server is shared by the other test processes on the machine (each with its own
database), and restarting it would cut them all off mid-test. What a restart does
to one application is what these tests do to its database: the database stops
accepting connections (``ALLOW_CONNECTIONS false``, as while the server shuts down
and starts up), every session of it is ended (``pg_terminate_backend``, as the
shutdown ends them), and then it accepts connections again. The application sees
the same: its pooled connections are dead, new ones are refused for a while, then
they succeed.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import only_on
from PySide6.QtCore import QItemSelectionModel
from pytestqt.qtbot import QtBot
from services.factories import (
    World,
    assert_invariants,
    assert_plain_sentence,
    balances,
    charge,
    fetch,
)
from services.test_faults import KillSwitch, Server, read_only_copy_of, write_lock_held
from sqlalchemy import Engine, select, text
from sqlalchemy.engine import make_url

from credits_desktop.store.database import Database
from credits_desktop.store.engine import BUSY_MESSAGE, READ_ONLY_MESSAGE
from credits_desktop.store.models import Refund
from credits_desktop.ui.account_detail import AccountDetail
from credits_desktop.ui.main_window import MainWindow
from credits_desktop.ui.refund_dialog import RefundDialog
from credits_desktop.ui.workers import Worker

from .conftest import MakeWindow

WAIT_MS = 10_000


@pytest.fixture
def server(db_url: str, request: pytest.FixtureRequest) -> Iterator[Server]:
    """The PostgreSQL test database under an administrator's hand (see the module
    docstring); it accepts connections again after the test whatever happened."""
    admin: Engine = request.getfixturevalue("pg_admin")
    control = Server(admin, str(make_url(db_url).database))
    try:
        yield control
    finally:
        control.allow_connections()


@contextmanager
def sqlite_file_gone(db_url: str) -> Iterator[None]:
    """The SQLite file is moved away (a network share dropped), then put back."""
    path = Path(str(make_url(db_url).database))
    away = path.with_name(path.name + ".away")
    os.replace(path, away)
    try:
        yield
    finally:
        os.replace(away, path)


def open_acme(qtbot: QtBot, window: MainWindow) -> AccountDetail:
    window.show()
    qtbot.waitUntil(lambda: window.model.rowCount() > 0 and not window.model.is_loading,
                    timeout=WAIT_MS)
    detail = window.open_account(window.model.account(0))
    qtbot.waitUntil(lambda: detail.summary is not None and not detail.is_loading,
                    timeout=WAIT_MS)
    return detail


def refund_dialog_for(qtbot: QtBot, detail: AccountDetail, charge_id: int) -> RefundDialog:
    """Select the charge in the tab, open the refund dialog on it, fill in a ticket."""
    model = detail.charges
    row = next(r for r in range(model.rowCount()) if model.row_at(r).id == charge_id)
    selection = detail.charges_table.selectionModel()
    selection.clearSelection()
    selection.select(model.index(row, 0), QItemSelectionModel.SelectionFlag.Select
                     | QItemSelectionModel.SelectionFlag.Rows)
    detail.open_refund_dialog()
    dialog = detail.dialog
    assert isinstance(dialog, RefundDialog)
    qtbot.waitUntil(lambda: dialog.preview is not None, timeout=WAIT_MS)
    qtbot.keyClicks(dialog.ticket, "#4411")
    assert dialog.ok_button.isEnabled()
    return dialog


def refund_count(world: World) -> int:
    return len(fetch(world.db, select(Refund.id)))


def press_ok_and_wait_for_failure(qtbot: QtBot, dialog: RefundDialog) -> str:
    """Press OK; the submit fails: the message the dialog then shows."""
    key = dialog.idempotency_key
    dialog.ok_button.click()
    assert dialog.busy
    qtbot.waitUntil(lambda: not dialog.busy, timeout=WAIT_MS)
    assert dialog.outcome is None and dialog.isVisible()
    # The same submission stays ready to be sent again.
    assert dialog.idempotency_key == key
    assert dialog.ok_button.isEnabled()
    assert dialog.problem_label.isVisible()
    return dialog.problem_label.text()


# -- a refund whose connection drops -----------------------------------------------------------


def test_a_refund_whose_connection_drops_keeps_its_key_and_applies_once_when_back(
    qtbot: QtBot, world: World, make_window: MakeWindow, db_url: str,
    request: pytest.FixtureRequest,
) -> None:
    failed = charge(world, 40).charge_id
    before = balances(world.db, world.account_id)
    window = make_window(poll_interval_ms=60_000)
    detail = open_acme(qtbot, window)
    dialog = refund_dialog_for(qtbot, detail, failed)

    if make_url(db_url).get_backend_name() == "postgresql":
        # The connection drops while the refund commits, and the server does not take
        # the retry: the whole refund is refused, not half of it kept.
        srv: Server = request.getfixturevalue("server")
        with KillSwitch(world.db.engine, srv, "commit", down=True) as switch:
            message = press_ok_and_wait_for_failure(qtbot, dialog)
        assert len(switch.killed) == 1
        srv.allow_connections()
    else:
        with sqlite_file_gone(db_url):
            message = press_ok_and_wait_for_failure(qtbot, dialog)
    assert message == (
        "The database could not complete the change; nothing was applied. Check the "
        "connection and try again: the same submission applies only once."
    )
    assert_plain_sentence(message)
    assert refund_count(world) == 0
    assert balances(world.db, world.account_id) == before

    # The database is back: OK again sends the same key, which applies once.
    resend = dialog.submit_work()  # the very submission OK sends (read before it closes)
    with qtbot.waitSignal(dialog.applied, timeout=WAIT_MS) as applied:
        dialog.ok_button.click()
    result = applied.args[0]
    assert result.status == "applied" and not result.replayed
    assert refund_count(world) == 1
    # January's plan grant has expired by now: the credits come back as refund credits.
    after = balances(world.db, world.account_id)
    assert after.refund == 40 and after.unrefunded_failed == 0
    # Had the answer been lost instead, the key would find this very refund.
    again = resend()
    assert again.replayed and again.operation_id == result.operation_id
    assert refund_count(world) == 1
    assert_invariants(world.db)


# -- a server restart --------------------------------------------------------------------------


@only_on("postgresql")
def test_a_server_restart_while_the_window_is_open_is_recovered_from_on_its_own(
    qtbot: QtBot, world: World, make_window: MakeWindow, server: Server
) -> None:
    """The server goes down and comes back while an account is open and a refund is
    half filled in. The window shows the banner, hides it by itself once the server is
    back, reads the account again, and the refund refused during the outage applies
    once when sent again.

    The restart is simulated on this test's database only: the PostgreSQL server is
    shared with the other test processes, and a real restart would cut them off too.
    Refusing connections to the database and ending every session of it is what a
    restart does to this application (see the module docstring)."""
    failed = charge(world, 40).charge_id
    # Polls often, retries after a fifth of a second: nobody presses Retry now.
    window = make_window(poll_interval_ms=100, backoff=(0.2,))
    detail = open_acme(qtbot, window)
    banner = window.connection_banner
    dialog = refund_dialog_for(qtbot, detail, failed)

    server.go_down()
    qtbot.waitUntil(banner.isVisible, timeout=WAIT_MS)
    assert not window.watcher.connected
    message = press_ok_and_wait_for_failure(qtbot, dialog)
    assert_plain_sentence(message)
    assert window.error_bar.isHidden()

    server.allow_connections()
    qtbot.waitUntil(banner.isHidden, timeout=WAIT_MS)
    assert window.watcher.connected
    assert window.statusBar().currentMessage() == "Connection restored"
    polls = window.watcher.polls
    qtbot.waitUntil(lambda: window.watcher.polls > polls + 2, timeout=WAIT_MS)
    assert window.watcher.connected and banner.isHidden()

    with qtbot.waitSignal(detail.changed, timeout=WAIT_MS):
        dialog.ok_button.click()
    assert refund_count(world) == 1
    qtbot.waitUntil(lambda: detail.card_text("refund") == "40" and not detail.is_loading,
                    timeout=WAIT_MS)
    assert window.error_bar.isHidden() and detail.message.isHidden()
    assert_invariants(world.db)


@only_on("postgresql")
def test_a_refund_sent_right_after_every_session_was_ended_applies_once(
    qtbot: QtBot, world: World, make_window: MakeWindow, server: Server
) -> None:
    """A restart too quick to notice: the pooled connections are dead, the application
    replaces them by itself, and the refund sent right then applies once without any
    message. Simulated by ending every session of this test's database with new ones
    allowed at once, since the shared server must not be restarted under the other
    test processes."""
    failed = charge(world, 40).charge_id
    window = make_window(poll_interval_ms=100, backoff=(0.2,))
    detail = open_acme(qtbot, window)
    dialog = refund_dialog_for(qtbot, detail, failed)
    resend = dialog.submit_work()

    assert server.terminate_all() > 0
    with qtbot.waitSignal(detail.changed, timeout=WAIT_MS) as changed:
        dialog.ok_button.click()
    result = changed.args[0]
    assert result.status == "applied" and not result.replayed
    assert refund_count(world) == 1
    assert resend().replayed
    assert refund_count(world) == 1

    # The window goes on by itself: polls succeed and the tab shows the refund.
    polls = window.watcher.polls
    qtbot.waitUntil(lambda: window.watcher.polls > polls + 2, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: window.connection_banner.isHidden() and window.watcher.connected,
                    timeout=WAIT_MS)
    qtbot.waitUntil(lambda: detail.card_text("refund") == "40" and not detail.is_loading,
                    timeout=WAIT_MS)
    assert window.error_bar.isHidden() and detail.message.isHidden()


# -- a read-only SQLite file -------------------------------------------------------------------


@only_on("sqlite")
def test_a_read_only_sqlite_file_is_browsed_and_the_refund_dialog_says_why_not(
    qtbot: QtBot, world: World, db_url: str
) -> None:
    failed = charge(world, 40).charge_id
    with read_only_copy_of(Path(str(make_url(db_url).database))) as read_only:
        window = MainWindow(read_only, world.support, poll_interval_ms=100)
        qtbot.addWidget(window, before_close_func=lambda w: w.worker.wait_for_done())
        detail = open_acme(qtbot, window)
        # Browsing works: the account, its charges.
        assert detail.charges.rowCount() == 1 and detail.charges.row_at(0).id == failed
        model = detail.charges
        selection = detail.charges_table.selectionModel()
        selection.select(model.index(0, 0), QItemSelectionModel.SelectionFlag.Select
                         | QItemSelectionModel.SelectionFlag.Rows)
        detail.open_refund_dialog()
        dialog = detail.dialog
        assert isinstance(dialog, RefundDialog)
        # The preview already needs to write (and roll back): it says why it cannot.
        qtbot.waitUntil(lambda: bool(dialog.preview_problem), timeout=WAIT_MS)
        assert dialog.preview_problem == READ_ONLY_MESSAGE
        qtbot.keyClicks(dialog.ticket, "#4411")
        assert dialog.problem_label.text() == READ_ONLY_MESSAGE
        assert not dialog.ok_button.isEnabled()
        # Not a lost connection: no banner, polling goes on.
        polls = window.watcher.polls
        qtbot.waitUntil(lambda: window.watcher.polls > polls + 2, timeout=WAIT_MS)
        assert window.connection_banner.isHidden() and window.watcher.connected
        dialog.reject()
        window.close()
    assert refund_count(world) == 0


@only_on("sqlite")
def test_the_worker_words_a_busy_or_read_only_database_plainly(
    qtbot: QtBot, world: World, db_url: str
) -> None:
    """A write that bypasses the services' wording (any background job) still tells
    staff why, in their words, and neither is taken for a lost connection."""
    path = Path(str(make_url(db_url).database))
    worker = Worker()
    lost: list[bool] = []
    worker.connection_lost.connect(lambda: lost.append(True))

    def message_of(db: Database) -> str:
        job = worker.submit(lambda: db.write(lambda s: s.execute(text(
            "INSERT INTO settings (key, value) VALUES ('fault-test', '{}')"))))
        with qtbot.waitSignal(job.failed, timeout=WAIT_MS) as failed:
            pass
        return str(failed.args[0])

    busy = Database.open(db_url, busy_timeout_ms=100)
    try:
        with write_lock_held(path):
            assert message_of(busy) == BUSY_MESSAGE
        with read_only_copy_of(path) as read_only:
            assert message_of(read_only) == READ_ONLY_MESSAGE
    finally:
        worker.wait_for_done()
        busy.close()
    assert lost == []
    assert world.db.read(lambda s: s.execute(text(
        "SELECT count(*) FROM settings WHERE key = 'fault-test'")).scalar_one()) == 0
