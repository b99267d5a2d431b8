"""Migrations: an empty database reaches head, and the models agree with the result."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, text

from credits_desktop.store.engine import make_engine
from credits_desktop.store.models import Base
from credits_desktop.store.schema import alembic_config, head_revision, schema_state, upgrade


@pytest.fixture(params=["sqlite", "postgresql"], ids=["sqlite", "postgresql"])
def blank_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An engine on a brand-new database with no tables at all."""
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'blank.db'}")
        yield engine
        engine.dispose()
        return
    admin: Engine = request.getfixturevalue("pg_admin")
    name = f"credits_test_{os.getpid()}_blank"
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine = make_engine(admin.url.set(database=name))
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def test_blank_database_upgrades_to_head(blank_engine: Engine) -> None:
    before = schema_state(blank_engine)
    assert before.empty and not before.up_to_date

    upgrade(blank_engine)

    after = schema_state(blank_engine)
    assert after.up_to_date and after.current == head_revision()
    assert not after.newer_than_application
    assert set(Base.metadata.tables) <= set(inspect(blank_engine).get_table_names())

    upgrade(blank_engine)  # a second upgrade is a no-op
    assert schema_state(blank_engine).up_to_date


def test_downgrade_to_base_and_back(blank_engine: Engine) -> None:
    upgrade(blank_engine)
    config = alembic_config()
    with blank_engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "base")
    assert set(inspect(blank_engine).get_table_names()) <= {"alembic_version"}
    assert schema_state(blank_engine).empty

    upgrade(blank_engine)
    assert schema_state(blank_engine).up_to_date


# Tables the first migration fills with reference data; every other table starts empty.
SEEDED = {"staff", "features"}


@pytest.mark.parametrize("round_", [1, 2])
def test_each_test_gets_a_fresh_database_at_head(engine: Engine, round_: int) -> None:
    """Run twice per dialect: whichever round comes second proves that the rows the
    first one wrote are gone and that ids start over."""
    assert schema_state(engine).up_to_date
    with engine.begin() as conn:
        for table in Base.metadata.sorted_tables:
            count = conn.execute(text(f"SELECT count(*) FROM {table.name}")).scalar_one()
            assert (count > 0) == (table.name in SEEDED), table.name
        staff = conn.execute(text("SELECT id, username FROM staff")).all()
        assert [tuple(row) for row in staff] == [(1, "system")]

        new_id = conn.execute(
            text(
                "INSERT INTO staff (username, display_name, role, active, created_at)"
                " VALUES (:u, 'Test', 'support', true, CURRENT_TIMESTAMP) RETURNING id"
            ),
            {"u": f"round-{round_}"},
        ).scalar_one()
        assert new_id == 2
        conn.execute(text("INSERT INTO settings (key, value) VALUES ('k', '{}')"))


def test_models_match_migrated_schema(engine: Engine) -> None:
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": True}
        )
        diff = compare_metadata(context, Base.metadata)
    assert diff == []
