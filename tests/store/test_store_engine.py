"""Engine set-up: SQLite pragmas, concurrent writers, and refusing unusable addresses."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError

from credits_desktop.store.engine import (
    SQLITE_BUSY_TIMEOUT_MS,
    ConfigurationError,
    make_engine,
    parse_url,
)

THREADS = 4
WRITES_PER_THREAD = 50


def test_sqlite_connection_pragmas(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'pragmas.db'}")
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar_one() == "wal"
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar_one() == 30_000
            assert SQLITE_BUSY_TIMEOUT_MS == 30_000
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar_one() == 1
    finally:
        engine.dispose()


def test_foreign_keys_are_enforced(engine: Engine) -> None:
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO accounts (name, owner_email, name_norm, email_norm, plan_id,"
                " billing_day, status, created_at) VALUES ('a', 'a@x', 'a', 'a@x', 999, 1,"
                " 'active', CURRENT_TIMESTAMP)"
            )
        )


def test_concurrent_writers_do_not_fail(db_url: str) -> None:
    """Separate engines (as separate staff machines would have) writing at once.

    Each transaction reads before it writes: with SQLite's default deferred BEGIN
    that read-then-write pattern is what fails with "database is locked".
    """
    barrier = threading.Barrier(THREADS)
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        engine = make_engine(db_url)
        try:
            barrier.wait()
            for i in range(WRITES_PER_THREAD):
                with engine.begin() as conn:
                    conn.execute(text("SELECT count(*) FROM settings")).scalar_one()
                    conn.execute(
                        text("INSERT INTO settings (key, value) VALUES (:k, :v)"),
                        {"k": f"writer-{n}-{i}", "v": "{}"},
                    )
        except BaseException as exc:
            errors.append(exc)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []

    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            count = conn.execute(text("SELECT count(*) FROM settings")).scalar_one()
    finally:
        engine.dispose()
    assert count == THREADS * WRITES_PER_THREAD


@pytest.mark.parametrize("url", ["", "   ", "foo", "mysql://x", "sqlite://", "sqlite:///:memory:"])
def test_parse_url_rejects_junk(url: str) -> None:
    with pytest.raises(ConfigurationError):
        parse_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:secret@h:notaport/db",
        "postgresql//u:secret@h/db",
        "u:secret@h/db",
        "postgresql+asyncpg://u:secret@h/db",
        "mysql://u:secret@h/db",
    ],
)
def test_parse_url_error_hides_password(url: str) -> None:
    with pytest.raises(ConfigurationError) as excinfo:
        parse_url(url)
    assert "secret" not in str(excinfo.value)


def test_parse_url_accepts_supported_addresses(tmp_path: Path) -> None:
    assert parse_url("postgresql://u:pw@h/db").drivername == "postgresql+psycopg"
    assert parse_url("postgresql+psycopg://u@h/db").drivername == "postgresql+psycopg"
    assert parse_url(f"sqlite:///{tmp_path / 'x.db'}").database == str(tmp_path / "x.db")
