"""The migrations build exactly the models' schema, from an empty database, on both."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from ill.db import Database, current_revision, migrate
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
