"""The migrations build exactly the models' schema, from an empty database, on both; the
schema check a start makes, and migrating once when several threads open it at once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

import ill.db
from ill.db import (
    Database,
    SchemaError,
    _alembic_config,
    auto_migrate,
    current_revision,
    ensure_schema,
    head_revision,
    make_engine,
    migrate,
    schema_status,
    upgrade,
)
from ill.models import Base


def test_migrated_schema_matches_the_models(db_url):
    db = Database(db_url, migrate_now=False)
    try:
        with db.engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            diff = compare_metadata(context, Base.metadata)
        assert diff == []
        assert current_revision(db.engine) == "0002"
        tables = set(inspect(db.engine).get_table_names())
        assert set(Base.metadata.tables) <= tables
    finally:
        db.dispose()


def test_empty_database_is_created_and_migrating_twice_changes_nothing(tmp_path):
    url = f"sqlite:///{tmp_path / 'sub' / 'new.sqlite3'}"
    db = Database(url)  # creates the folder, the file and the schema
    try:
        assert current_revision(db.engine) == "0002"
        migrate(db.engine)
        assert current_revision(db.engine) == "0002"
        with db.engine.connect() as connection:
            mode = connection.exec_driver_sql("PRAGMA journal_mode").scalar()
            keys = connection.exec_driver_sql("PRAGMA foreign_keys").scalar()
        assert (mode, keys) == ("wal", 1)
    finally:
        db.dispose()


def test_postgres_url_without_driver_gets_psycopg(monkeypatch, tmp_path):
    from ill.db import database_url

    monkeypatch.setenv("DATABASE_URL", "postgres://u@127.0.0.1/x")
    assert database_url() == "postgresql+psycopg://u@127.0.0.1/x"
    monkeypatch.delenv("DATABASE_URL")
    monkeypatch.delenv("BALIS_INSTANCE", raising=False)
    monkeypatch.chdir(tmp_path)
    assert database_url() == f"sqlite:///{tmp_path / 'instance' / 'balis.sqlite3'}"
    monkeypatch.setenv("BALIS_INSTANCE", str(tmp_path / "elsewhere"))
    assert database_url() == f"sqlite:///{tmp_path / 'elsewhere' / 'balis.sqlite3'}"
    assert database_url("sqlite:///a.db") == "sqlite:///a.db"


def test_schema_status_and_the_start_check_on_both(tmp_path, request):
    """empty -> behind (0001) -> current, and what a start told not to migrate says."""
    head = head_revision()
    for url in (f"sqlite:///{tmp_path / 'status.sqlite3'}",
                request.getfixturevalue("postgres").create_database("status_check")):
        engine = make_engine(url)
        try:
            assert schema_status(engine).state == "empty"
            with pytest.raises(SchemaError, match=rf"is empty .*needs {head}: run `balis db"):
                ensure_schema(engine, auto=False)
            with engine.begin() as connection:
                command.upgrade(_alembic_config(connection), "0001")
            status = schema_status(engine)
            assert (status.current, status.head, status.state) == ("0001", head, "behind")
            with pytest.raises(SchemaError, match="at revision 0001, this version needs"):
                ensure_schema(engine, auto=False)
            assert schema_status(engine).current == "0001"  # refused: left alone
            done = ensure_schema(engine, auto=True)
            assert done is not None and (done.before, done.after) == ("0001", head)
            assert ensure_schema(engine, auto=False) is None  # current: nothing to do
        finally:
            engine.dispose()


def test_threads_of_one_process_opening_an_empty_database_migrate_once(postgres):
    """alembic's context is process-wide: threads queue for it as processes do for the
    database's lock, and only the first finds anything to do."""
    engine = make_engine(postgres.create_database("threads_race"))
    try:
        with ThreadPoolExecutor(4) as pool:
            done = list(pool.map(lambda _i: upgrade(engine), range(4)))
        assert sorted(d.before or "" for d in done) == ["", head_revision(),
                                                        head_revision(), head_revision()]
        with engine.connect() as connection:
            rows = connection.exec_driver_sql("SELECT count(*) FROM alembic_version").scalar()
        assert rows == 1
    finally:
        engine.dispose()


def test_auto_migrate_setting(monkeypatch):
    monkeypatch.delenv("BALIS_AUTO_MIGRATE", raising=False)
    assert auto_migrate() is True
    for off in ("0", "false", "No", " off "):
        monkeypatch.setenv("BALIS_AUTO_MIGRATE", off)
        assert auto_migrate() is False
    monkeypatch.setenv("BALIS_AUTO_MIGRATE", "1")
    assert auto_migrate() is True
    assert auto_migrate(False) is False  # the app's setting (serve --no-migrate) wins


def test_upgrade_waits_for_the_migration_lock_and_says_when_it_gives_up(postgres, monkeypatch):
    """While another session holds the advisory lock nothing migrates; past the wait, one
    sentence (a real lock held by a real second session, a shortened wait)."""
    url = postgres.create_database("lock_held")
    holder, engine = make_engine(url), make_engine(url)
    monkeypatch.setattr(ill.db, "MIGRATION_LOCK_SECONDS", 1)
    try:
        with holder.connect() as other:
            other.exec_driver_sql(f"SELECT pg_advisory_lock({ill.db.MIGRATION_LOCK_KEY})")
            with pytest.raises(SchemaError, match=r"another process has held the migration "
                                                  r"lock .* for 1 s"):
                upgrade(engine)
            assert schema_status(engine).state == "empty"
            other.exec_driver_sql(f"SELECT pg_advisory_unlock({ill.db.MIGRATION_LOCK_KEY})")
        assert upgrade(engine).describe() == f"upgraded empty -> {head_revision()}"
    finally:
        holder.dispose()
        engine.dispose()
