"""Where the ILL ledger lives: engines, sessions and migrations.

SQLite (in WAL mode) under the instance folder by default, PostgreSQL when ``DATABASE_URL``
(or ``--database``) says so. Every write path in ill/ holds a row lock for the rows it
changes: ``SELECT ... FOR UPDATE`` on PostgreSQL; on SQLite every transaction starts with
``BEGIN IMMEDIATE``, which takes the database's one write lock up front, so two writers
queue instead of both reading and one failing on the upgrade to a write lock.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from broker.kernel.config import instance_dir
from broker.kernel.errors import ConfigError

log = logging.getLogger(__name__)

SQLITE_NAME = "balis.sqlite3"  # in the instance folder (broker.kernel.config.instance_dir)
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# How long a SQLite writer waits for another writer's lock before giving up.
SQLITE_BUSY_SECONDS = 60


def database_url(explicit: str | None = None) -> str:
    """``explicit``, else ``$DATABASE_URL``, else SQLite ``balis.sqlite3`` in the instance
    folder ($BALIS_INSTANCE, else ``instance/`` here)."""
    url = explicit or os.environ.get("DATABASE_URL") or ""
    if not url:
        return f"sqlite:///{instance_dir() / SQLITE_NAME}"
    # Heroku-style and plain URLs name no driver; psycopg 3 is the one we install.
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def make_engine(url: str | None = None, *, pool_size: int = 10) -> Engine:
    """An engine for ``database_url(url)``; SQLite files get WAL, foreign keys, busy wait."""
    url = database_url(url)
    try:
        parsed = make_url(url)
    except Exception as exc:  # SQLAlchemy raises ArgumentError with a terse message
        raise ConfigError(f"database URL {url!r} is not valid: {exc}") from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(url, parsed.database)
    if backend == "postgresql":
        return create_engine(url, pool_size=pool_size, max_overflow=pool_size * 2,
                             pool_pre_ping=True)
    raise ConfigError(f"database URL {url!r}: only sqlite:/// and postgresql:// are supported")


def _sqlite_engine(url: str, database: str | None) -> Engine:
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_SECONDS,
                                              "check_same_thread": False},
                           pool_size=10, max_overflow=40, pool_timeout=120)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:
        # Take transaction control from the sqlite3 module so BEGIN IMMEDIATE is ours.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_SECONDS * 1000}")
        cursor.execute("PRAGMA synchronous=NORMAL")  # WAL: durable at checkpoints, safe
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


class Database:
    """One engine and its session factory; ``with db.session() as s:`` for a unit of work."""

    def __init__(self, url: str | None = None, *, migrate_now: bool = True) -> None:
        self.url = database_url(url)
        self.engine = make_engine(self.url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        if migrate_now:
            migrate(self.engine)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session; the service layer commits its own work, anything left is rolled back."""
        with self._sessions() as session:
            yield session

    @property
    def backend(self) -> str:
        return self.engine.dialect.name

    def dispose(self) -> None:
        self.engine.dispose()


def _alembic_config(connection):
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def migrate(target: Engine | str | None = None) -> None:
    """Create or upgrade the ILL schema to the newest migration (idempotent)."""
    from alembic import command

    engine = target if isinstance(target, Engine) else make_engine(target)
    try:
        with engine.begin() as connection:
            command.upgrade(_alembic_config(connection), "head")
    finally:
        if not isinstance(target, Engine):
            engine.dispose()
    log.debug("ILL schema at head on %s", engine.url.render_as_string(hide_password=True))


def current_revision(engine: Engine) -> str | None:
    """The migration the database is at (None: never migrated)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return None
        return MigrationContext.configure(connection).get_current_revision()
