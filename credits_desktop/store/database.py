"""A handle on one database: its engine, its dialect and how to run work on it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from sqlalchemy import Engine
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session

from .engine import SQLITE_BUSY_TIMEOUT_MS, make_engine, parse_url, reader, run_in_transaction

T = TypeVar("T")


@dataclass
class Database:
    """The engine plus helpers; cheap to share between threads (sessions are not)."""

    engine: Engine
    _reader: Engine = field(init=False)

    def __post_init__(self) -> None:
        self._reader = reader(self.engine)

    @classmethod
    def open(cls, url: str | URL, *, busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS) -> Database:
        """Open ``url``; ``busy_timeout_ms`` is how long a SQLite write waits for another
        writer (see :func:`~credits_desktop.store.engine.make_engine`)."""
        parsed = parse_url(url) if isinstance(url, str) else url
        return cls(make_engine(parsed, busy_timeout_ms=busy_timeout_ms))

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def is_postgresql(self) -> bool:
        return self.dialect == "postgresql"

    def display_url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    def write(self, work: Callable[[Session], T]) -> T:
        """Run ``work`` in one write transaction (retried on conflicts)."""
        return run_in_transaction(self.engine, work)

    def read(self, work: Callable[[Session], T]) -> T:
        """Run ``work`` in one read-only transaction."""
        with Session(self._reader, expire_on_commit=False) as session, session.begin():
            return work(session)

    def close(self) -> None:
        self.engine.dispose()
