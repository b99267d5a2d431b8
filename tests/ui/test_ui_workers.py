"""The worker layer: functions run off the GUI thread, outcomes come back on it."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import pytest
from PySide6.QtCore import QCoreApplication, QThread
from pytestqt.qtbot import QtBot
from sqlalchemy.exc import DBAPIError

from credits_desktop.domain.errors import InsufficientCredits
from credits_desktop.services.errors import RuleBroken
from credits_desktop.ui.workers import DATABASE_TROUBLE, UNEXPECTED_TROUBLE, Job, Worker


@pytest.fixture
def worker(qtbot: QtBot) -> Iterator[Worker]:
    w = Worker()
    yield w
    w.wait_for_done()
    QCoreApplication.processEvents()


def test_the_function_runs_off_the_gui_thread_and_the_result_arrives_on_it(
    qtbot: QtBot, worker: Worker
) -> None:
    gui_thread = QThread.currentThread()
    ran_on: list[QThread] = []
    python_threads: list[threading.Thread] = []
    delivered_on: list[QThread] = []

    def work() -> int:
        ran_on.append(QThread.currentThread())
        python_threads.append(threading.current_thread())
        return 42

    job = worker.submit(work)
    job.succeeded.connect(lambda _value: delivered_on.append(QThread.currentThread()))
    with qtbot.waitSignal(job.succeeded) as blocker:
        pass
    assert blocker.args == [42]
    assert ran_on and ran_on[0] is not gui_thread
    assert python_threads[0] is not threading.main_thread()
    assert delivered_on == [gui_thread]
    assert job.settled and not worker.busy


def test_a_message_for_staff_is_passed_on_as_it_is(qtbot: QtBot, worker: Worker) -> None:
    def refuse() -> None:
        raise RuleBroken("This charge was already refunded.")

    job = worker.submit(refuse)
    with qtbot.waitSignal(job.failed) as blocker:
        pass
    assert blocker.args == ["This charge was already refunded."]


def test_a_domain_rule_message_is_passed_on_too(qtbot: QtBot, worker: Worker) -> None:
    def refuse() -> None:
        raise InsufficientCredits(100, 250)

    job = worker.submit(refuse)
    with qtbot.waitSignal(job.failed) as blocker:
        pass
    assert blocker.args == ["The account has only 100 credits available; this needs 250."]


def test_a_fault_is_logged_with_its_traceback_and_shown_as_a_plain_sentence(
    qtbot: QtBot, worker: Worker, caplog: pytest.LogCaptureFixture
) -> None:
    def broken() -> None:
        {}["missing"]  # the fault under test

    job = worker.submit(broken)
    succeeded: list[object] = []
    job.succeeded.connect(succeeded.append)
    with caplog.at_level(logging.ERROR), qtbot.waitSignal(job.failed) as blocker:
        pass
    message = blocker.args[0]
    assert message == UNEXPECTED_TROUBLE
    assert "Traceback" not in message and "KeyError" not in message
    assert succeeded == []
    logged = [r for r in caplog.records if r.exc_info]
    assert logged and logged[0].exc_info[0] is KeyError  # type: ignore[index]


def test_every_job_has_a_later_sequence_number(worker: Worker) -> None:
    jobs = [worker.submit(lambda: None) for _ in range(3)]
    assert [j.seq for j in jobs] == sorted({j.seq for j in jobs})


def test_a_discarded_job_delivers_nothing_even_when_it_finishes_last(
    qtbot: QtBot, worker: Worker
) -> None:
    release = threading.Event()

    def slow() -> str:
        # Bounded so that a broken test cannot hang the run.
        assert release.wait(10)
        return "old"

    old = worker.submit(slow)
    new = worker.submit(lambda: "new")
    arrived: list[tuple[int, object]] = []
    for job in (old, new):
        job.succeeded.connect(lambda value, seq=job.seq: arrived.append((seq, value)))
        job.failed.connect(lambda message, seq=job.seq: arrived.append((seq, message)))
    old.discard()
    with qtbot.waitSignal(new.succeeded):
        pass
    release.set()
    assert worker.wait_for_done(10_000)
    QCoreApplication.processEvents()  # delivers the old job's queued outcome, if any
    assert arrived == [(new.seq, "new")]
    assert old.discarded and old.settled
    assert not worker.busy


def test_progress_reports_arrive_in_order_before_the_result(
    qtbot: QtBot, worker: Worker
) -> None:
    events: list[tuple[object, ...]] = []

    def work(report: object) -> str:
        assert callable(report)
        for done in range(3):
            report("Writing charges", done, 2)
        return "done"

    job: Job = worker.submit_reporting(work)
    job.progressed.connect(lambda *args: events.append(("progress", *args)))
    job.succeeded.connect(lambda value: events.append(("result", value)))
    with qtbot.waitSignal(job.finished):
        pass
    assert events == [
        ("progress", "Writing charges", 0, 2),
        ("progress", "Writing charges", 1, 2),
        ("progress", "Writing charges", 2, 2),
        ("result", "done"),
    ]


def test_signals_emitted_from_python_cannot_use_up_the_references_to_true() -> None:
    # PySide6 6.12.0 drops a reference to True on every emit; on Python 3.11 that
    # aborts the interpreter after a few thousand emits. pyproject.toml keeps that
    # release out; this test catches a PySide6 with the same bug.
    import sys

    from PySide6.QtCore import QObject, Signal

    class Probe(QObject):
        ping = Signal(object)

    probe = Probe()
    before = sys.getrefcount(True)
    for _ in range(1000):
        probe.ping.emit(1)
    lost = before - sys.getrefcount(True)
    assert lost <= 0


def test_the_workers_own_sentences_are_translated_and_faults_keep_their_details(
    qtbot: QtBot, worker: Worker, pseudo_translated: object
) -> None:
    def database_trouble() -> None:
        raise DBAPIError("SELECT 1", {}, ValueError("the driver's own words"))

    job = worker.submit(database_trouble)
    with qtbot.waitSignal(job.failed) as blocker:
        pass
    assert blocker.args == [f"⟦{DATABASE_TROUBLE}⟧"]

    faults: list[tuple[str, str]] = []
    worker.fault.connect(lambda message, details: faults.append((message, details)))
    job = worker.submit(lambda: 1 // 0)
    with qtbot.waitSignal(job.failed) as blocker:
        pass
    assert blocker.args == [f"⟦{UNEXPECTED_TROUBLE}⟧"]
    # A fault is still known as one when its sentence is translated.
    assert len(faults) == 1 and faults[0][0] == f"⟦{UNEXPECTED_TROUBLE}⟧"
    assert "ZeroDivisionError" in faults[0][1]
    # A message written for staff by the services is passed on as it is.
    def refuse() -> None:
        raise RuleBroken("Not enough credits.")

    refused = worker.submit(refuse)
    with qtbot.waitSignal(refused.failed) as blocker:
        pass
    assert blocker.args == ["Not enough credits."]
