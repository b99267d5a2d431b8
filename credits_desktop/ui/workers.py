"""Run database work off the GUI thread and bring its outcome back by signal.

Every call the interface makes to a service goes through :class:`Worker`: the
function runs on a thread pool, and its result (or a plain message explaining why
it failed) arrives on the GUI thread through the :class:`Job`'s signals, so
widgets are only ever touched on the GUI thread and a slow shared database never
freezes the window.

Errors: a :class:`~credits_desktop.services.errors.CreditsDeskError` (or a domain
rule violation) carries a message written for staff and is passed on as it is.
Anything else is a fault: its traceback goes to the log and staff see a short
plain sentence, never a traceback.

Each job has a sequence number, increasing per worker, and can be discarded: a
view that starts a newer search discards the older job, whose result is then
dropped on arrival instead of overwriting the newer one.

Besides each job's own signals, the worker says when any of its jobs failed
because the database could not be reached (``connection_lost``, see
:func:`is_unreachable`: the main window shows one banner for all of them) and when
one failed for an unexpected reason (``fault``, with a details text for an error
report; see :mod:`error_report`).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import (
    QT_TRANSLATE_NOOP,
    QCoreApplication,
    QObject,
    QRunnable,
    Qt,
    QThreadPool,
    Signal,
    Slot,
)
from sqlalchemy.exc import DBAPIError, OperationalError

from credits_desktop.domain.errors import RuleViolation
from credits_desktop.services.errors import CreditsDeskError
from credits_desktop.store.engine import ConfigurationError, refusal_message

from .error_report import fault_details

__all__ = [
    "DATABASE_TROUBLE",
    "UNEXPECTED_TROUBLE",
    "Job",
    "ProgressFn",
    "Worker",
    "is_unreachable",
    "user_message",
]

log = logging.getLogger(__name__)

# What a long job (opening and filling the demo database) reports: stage, done, total.
ProgressFn = Callable[[str, int, int], None]

# The English source texts (translated where they are shown, see user_message).
DATABASE_TROUBLE = str(QT_TRANSLATE_NOOP(
    "Worker",
    "The database could not be reached or refused the request. "
    "Check the connection and try again.",
))
UNEXPECTED_TROUBLE = str(QT_TRANSLATE_NOOP(
    "Worker", "Something unexpected went wrong. The details were written to the log."
))

# Errors whose message is written for staff and is shown as it is.
_PLAIN_ERRORS: tuple[type[Exception], ...] = (CreditsDeskError, RuleViolation)


# PostgreSQL error classes meaning the server, not the request, is the trouble:
# connection exceptions (08…), and the server shutting down or still starting (57P0…).
_PG_GONE_PREFIXES = ("08", "57P01", "57P02", "57P03")
# SQLite's codes for a database file that cannot be opened or read any more.
_SQLITE_GONE_PREFIXES = ("SQLITE_CANTOPEN", "SQLITE_IOERR", "SQLITE_READONLY_DBMOVED")


def is_unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database cannot be reached (as opposed to refusing one
    request): a lost or refused connection, a server shutting down, a SQLite file
    that is gone. A wrapped error (``DatabaseUnavailable`` from a service) counts by
    its cause."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, DBAPIError) and _dbapi_unreachable(current):
            return True
        current = current.__cause__
    return False


def _dbapi_unreachable(exc: DBAPIError) -> bool:
    if exc.connection_invalidated:
        return True
    if not isinstance(exc, OperationalError):
        return False
    orig = exc.orig
    sqlite_code = getattr(orig, "sqlite_errorname", None)
    if isinstance(sqlite_code, str):
        return sqlite_code.startswith(_SQLITE_GONE_PREFIXES)
    sqlstate = getattr(orig, "sqlstate", None)
    if sqlstate is None:
        # psycopg raises OperationalError without a SQLSTATE when there is no server
        # answer at all: the connection failed or broke.
        return hasattr(orig, "sqlstate")
    return str(sqlstate).startswith(_PG_GONE_PREFIXES)


def user_message(exc: BaseException) -> str:
    """The sentence to show staff for ``exc``; faults are logged with their traceback."""
    return _describe(exc)[0]


def _describe(exc: BaseException) -> tuple[str, bool]:
    """The sentence for ``exc``, and whether it is a fault (a bug: its details go into
    an error report). The services' own sentences are shown as they are; the two of
    this module are translated (thread-safe: this runs on the pool thread)."""
    if isinstance(exc, _PLAIN_ERRORS):
        return str(getattr(exc, "message", "") or exc), False
    if isinstance(exc, ConfigurationError):
        return str(exc), False
    if isinstance(exc, DBAPIError):
        refusal = refusal_message(exc)
        if refusal is not None:
            # A busy or read-only database: staff can act on it, and it is no fault.
            log.warning("the database refused a background job: %s",
                        (str(exc.orig).strip().splitlines() or [""])[0])
            return refusal, False
        log.error("database error in a background job", exc_info=exc)
        return QCoreApplication.translate("Worker", DATABASE_TROUBLE), False
    log.error("unexpected error in a background job", exc_info=exc)
    return QCoreApplication.translate("Worker", UNEXPECTED_TROUBLE), True


@dataclass(frozen=True)
class _Failure:
    """Why a job failed, worked out on the pool thread (the exception stays there)."""

    message: str
    # The details of an unexpected fault for an error report; empty for the others.
    details: str
    # The database could not be reached.
    unreachable: bool


class Job(QObject):
    """One function running off the GUI thread; its outcome arrives on the GUI thread.

    Exactly one of ``succeeded`` (with the function's return value) or ``failed``
    (with a plain message) is emitted, then ``finished``; none of them is if the job
    was discarded first.
    """

    succeeded = Signal(object)
    failed = Signal(str)
    finished = Signal()
    # stage, done, total: only for functions started with Worker.submit_reporting.
    progressed = Signal(str, int, int)

    # Emitted on the pool thread; queued to the GUI thread that owns the job.
    _outcome = Signal(bool, object)
    _progress = Signal(str, int, int)

    def __init__(
        self,
        seq: int,
        on_settled: Callable[[Job], None],
        on_failure: Callable[[Job, _Failure], None] | None = None,
    ) -> None:
        super().__init__()
        self.seq = seq
        self._discarded = False
        self._settled = False
        self._on_settled = on_settled
        self._on_failure = on_failure
        # Queued explicitly: the emitting thread is never the one that owns the job.
        self._outcome.connect(self._deliver, Qt.ConnectionType.QueuedConnection)
        self._progress.connect(self._relay_progress, Qt.ConnectionType.QueuedConnection)

    @property
    def discarded(self) -> bool:
        return self._discarded

    @property
    def settled(self) -> bool:
        """Whether the function has finished and its outcome reached the GUI thread."""
        return self._settled

    def discard(self) -> None:
        """Drop this job's outcome: a newer job supersedes it. It still runs to the end
        (a database query cannot be interrupted safely), but nothing is emitted."""
        self._discarded = True

    def report(self, stage: str, done: int, total: int) -> None:
        """Progress from the running function; thread-safe (forwarded by signal)."""
        self._progress.emit(stage, done, total)

    @Slot(str, int, int)
    def _relay_progress(self, stage: str, done: int, total: int) -> None:
        if not self._discarded and not self._settled:
            self.progressed.emit(stage, done, total)

    @Slot(bool, object)
    def _deliver(self, ok: bool, payload: object) -> None:
        self._settled = True
        try:
            failure = payload if isinstance(payload, _Failure) else None
            if not ok and failure is not None and self._on_failure is not None:
                # Before the job's own signals: whoever shows the lost connection
                # knows of it when the views hear of their failure.
                self._on_failure(self, failure)
            if self._discarded:
                return
            if ok:
                self.succeeded.emit(payload)
            else:
                self.failed.emit(failure.message if failure is not None else str(payload))
            self.finished.emit()
        finally:
            self._on_settled(self)


class _Task(QRunnable):
    """The pool's side of a job: run the function, hand the outcome to the job."""

    def __init__(self, job: Job, work: Callable[[], object]) -> None:
        super().__init__()
        self.setAutoDelete(True)
        self._job = job
        self._work = work

    def run(self) -> None:
        try:
            value = self._work()
        except BaseException as exc:
            # Even SystemExit or KeyboardInterrupt raised in the function: the job must
            # settle, or its view would wait for it for ever.
            # Turned into words here, on the pool thread, so that the exception (and the
            # session or connection its traceback holds on to) is released right away.
            message, fault = _describe(exc)
            details = fault_details(exc) if fault else ""
            self._job._outcome.emit(False, _Failure(message, details, is_unreachable(exc)))
        else:
            self._job._outcome.emit(True, value)


class Worker(QObject):
    """Runs functions (service calls) on its own thread pool, one :class:`Job` each.

    Owned by a window or dialog; destroying it waits for its running functions, so
    none outlives the window whose database it uses.
    """

    # Some job failed because the database could not be reached (is_unreachable);
    # emitted before that job's own ``failed``, even for a discarded job.
    connection_lost = Signal()
    # Some job (not discarded) failed unexpectedly: the plain message, and the details
    # for an error report (error type and message, the end of the traceback).
    fault = Signal(str, str)

    def __init__(self, parent: QObject | None = None, *, max_threads: int = 4) -> None:
        super().__init__(parent)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(max_threads)
        self._seq = itertools.count(1)
        # Jobs whose outcome has not reached the GUI thread yet. Holding them here
        # keeps them alive whoever else lets go of them.
        self._active: set[Job] = set()

    def submit(self, work: Callable[[], object]) -> Job:
        """Run ``work()`` on the pool; connect to the returned job's signals."""
        job = Job(next(self._seq), self._settle, self._failed)
        self._active.add(job)
        self._pool.start(_Task(job, work))
        return job

    def submit_reporting(self, work: Callable[[ProgressFn], object]) -> Job:
        """Run ``work(report)``; each ``report(stage, done, total)`` it makes arrives
        as the job's ``progressed`` signal on the GUI thread."""
        job = Job(next(self._seq), self._settle, self._failed)
        self._active.add(job)
        self._pool.start(_Task(job, lambda: work(job.report)))
        return job

    @property
    def busy(self) -> bool:
        """Whether some job has not delivered its outcome yet."""
        return bool(self._active)

    def wait_for_done(self, msecs: int = -1) -> bool:
        """Block until every running function has returned (their outcomes are still
        delivered later, by the event loop). For shutdown and tests."""
        return bool(self._pool.waitForDone(msecs))

    def discard_all(self) -> None:
        """Drop the outcome of every job still under way (the window is closing)."""
        for job in self._active:
            job.discard()

    def _settle(self, job: Job) -> None:
        self._active.discard(job)

    def _failed(self, job: Job, failure: _Failure) -> None:
        if failure.unreachable:
            self.connection_lost.emit()
        if failure.details and not job.discarded:
            self.fault.emit(failure.message, failure.details)
