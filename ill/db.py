"""Where the ILL ledger lives: engines, sessions and migrations.

SQLite (in WAL mode) under the instance folder by default, PostgreSQL when ``DATABASE_URL``
(or ``--database``) says so. Every write path in ill/ holds a row lock for the rows it
changes: ``SELECT ... FOR UPDATE`` on PostgreSQL; on SQLite every transaction starts with
``BEGIN IMMEDIATE``, which takes the database's one write lock up front, so two writers
queue instead of both reading and one failing on the upgrade to a write lock.

The schema is migrated by ``upgrade`` (``balis db upgrade``, ``balis user add``, a web
app's first open) under one lock: a PostgreSQL advisory lock, SQLite's write lock, so
processes that start at once migrate once. ``schema_status`` says where a database is
against this version's migrations; ``ensure_schema`` is the check a start makes.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sqlalchemy import Connection, Engine, create_engine, event, inspect
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session, sessionmaker

from broker.kernel.config import instance_dir
from broker.kernel.errors import BalisError, ConfigError

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
        # Not echoed: a URL that does not parse may still hold a password.
        raise ConfigError(f"the database URL is not valid: {exc}") from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(url, parsed.database)
    if backend == "postgresql":
        return create_engine(url, pool_size=pool_size, max_overflow=pool_size * 2,
                             pool_pre_ping=True)
    raise ConfigError(f"database URL {shown_url(parsed)}: only sqlite:/// and postgresql:// "
                      "are supported")


def _sqlite_engine(url: str, database: str | None) -> Engine:
    if database and database != ":memory:":
        try:
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DatabaseUnavailable(f"cannot make the folder of the ILL database {database}: "
                                      f"{exc.strerror or exc}") from None
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
            try:
                migrate(self.engine)
            except BaseException:
                self.engine.dispose()
                raise

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


# --- the schema's revision, checked and upgraded under one lock ------------------------------

SchemaState = Literal["current", "behind", "ahead", "empty"]
# pg_advisory_xact_lock's key: any fixed 64-bit number no other program of ours uses
# ("balisILL" in ASCII). Every process that migrates takes it first, so one migrates and
# the others wait, then find the schema current.
MIGRATION_LOCK_KEY = 0x62616C6973494C4C
# How long a process waits for another's migration before giving up with a message.
MIGRATION_LOCK_SECONDS = 300
# alembic.context is one module-wide object: two threads of one process must not run it at
# once (the database lock already serializes processes).
_ALEMBIC = threading.Lock()


class SchemaError(BalisError, RuntimeError):
    """The database's schema does not fit this version, and it may not or cannot be changed."""


class DatabaseUnavailable(BalisError, ConnectionError):
    """The ILL database could not be reached or opened (the message names it, no password)."""


@dataclass(frozen=True)
class SchemaStatus:
    """Where a database's schema is against this version's migrations."""

    current: str | None  # the database's revision; None: no schema at all
    head: str  # the newest revision this version knows
    state: SchemaState

    def describe(self) -> str:
        """What ``balis db current`` prints."""
        if self.state == "current":
            return f"{self.current} (head)"
        if self.state == "behind":
            return f"{self.current} (behind: head is {self.head}; run balis db upgrade)"
        if self.state == "empty":
            return "empty (no schema; run balis db upgrade)"
        return (f"{self.current} (unknown to this version, whose head is {self.head}: "
                "the database is newer than the code)")

    def refusal(self) -> str:
        """The sentence a start that may not (or cannot) migrate stops with."""
        if self.state == "ahead":
            return (f"the ILL database is at revision {self.current}, which this version "
                    f"does not know (its newest is {self.head}): the database was migrated "
                    "by a newer version; run that version, or restore a backup made before "
                    "the upgrade")
        at = "empty (no schema)" if self.current is None else f"at revision {self.current}"
        return (f"the ILL database is {at}, this version needs {self.head}: "
                "run `balis db upgrade`")


@dataclass(frozen=True)
class Upgrade:
    """What an upgrade did: ``before`` None for a database that had no schema."""

    before: str | None
    after: str

    @property
    def changed(self) -> bool:
        return self.before != self.after

    def describe(self) -> str:
        """What ``balis db upgrade`` prints (and the start's log line, after "ILL database")."""
        if not self.changed:
            return f"database at {self.after} (head)"
        return f"upgraded {self.before or 'empty'} -> {self.after}"


@functools.cache
def _scripts():
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(MIGRATIONS))


def head_revision() -> str:
    """The newest migration this version of the code has."""
    head = _scripts().get_current_head()
    assert head is not None, "ill/migrations has no revisions"
    return head


def _status_on(connection: Connection) -> SchemaStatus:
    from alembic.runtime.migration import MigrationContext
    from alembic.util import CommandError

    head = head_revision()
    current = None
    if inspect(connection).has_table("alembic_version"):
        current = MigrationContext.configure(connection).get_current_revision()
    if current is None:
        return SchemaStatus(None, head, "empty")
    if current == head:
        return SchemaStatus(current, head, "current")
    try:
        known = _scripts().get_revision(current) is not None
    except CommandError:  # alembic's word for a revision id it has no script for
        known = False
    return SchemaStatus(current, head, "behind" if known else "ahead")


def shown_url(url: str | URL) -> str:
    """A database URL as logs and messages may show it: the password masked."""
    try:
        return (url if isinstance(url, URL) else make_url(url)).render_as_string(
            hide_password=True)
    except Exception:  # not even a URL: say so rather than echo what may hold a password
        return "(an unreadable database URL)"


def _unavailable(engine: Engine, exc: Exception) -> DatabaseUnavailable:
    """One line naming the database and the driver's own reason, password masked."""
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    text = reason[0] if reason else type(exc).__name__
    password = engine.url.password
    if password:
        text = text.replace(str(password), "***")
    return DatabaseUnavailable(f"cannot open the ILL database {shown_url(engine.url)}: {text}")


def schema_status(engine: Engine) -> SchemaStatus:
    """The database's revision against this version's head (reads only, takes no lock)."""
    from sqlalchemy.exc import DBAPIError

    try:
        with engine.connect() as connection:
            return _status_on(connection)
    except DBAPIError as exc:
        raise _unavailable(engine, exc) from None


def _lock(connection: Connection) -> None:
    """Hold the migration lock until ``connection``'s transaction ends.

    PostgreSQL: a transaction-scoped advisory lock, released by the commit (or the rollback
    of a failed migration, or the server when a process dies), so it can never be left held.
    SQLite: the engine begins every transaction with BEGIN IMMEDIATE, which already holds
    the file's one write lock; a second process waits in its busy timeout."""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SET LOCAL lock_timeout = '{MIGRATION_LOCK_SECONDS}s'")
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})")


def upgrade(target: Engine | str | None = None) -> Upgrade:
    """Create or upgrade the ILL schema to head under the migration lock (idempotent).

    The revision is read again once the lock is held: a process that waited for another's
    migration finds the schema current and changes nothing. A database newer than the code
    is refused (SchemaError), never "upgraded" to an older head."""
    from alembic import command
    from sqlalchemy.exc import DBAPIError

    engine = target if isinstance(target, Engine) else make_engine(target)
    phase: Literal["open", "lock", "migrate"] = "open"
    try:
        with _ALEMBIC, engine.begin() as connection:
            phase = "lock"
            _lock(connection)
            phase = "open"
            status = _status_on(connection)
            if status.state == "ahead":
                raise SchemaError(status.refusal())
            if status.state != "current":
                phase = "migrate"
                command.upgrade(_alembic_config(connection), "head")
    except DBAPIError as exc:
        if phase == "lock" and getattr(exc.orig, "sqlstate", None) == "55P03":
            raise SchemaError(f"another process has held the migration lock of the ILL "
                              f"database {shown_url(engine.url)} for "
                              f"{MIGRATION_LOCK_SECONDS} s: is a migration stuck? "
                              "(pg_locks shows it)") from None
        if phase != "migrate":
            raise _unavailable(engine, exc) from None
        reason = str(exc.orig or exc).strip().splitlines() or [type(exc).__name__]
        raise SchemaError(f"upgrading the ILL database {shown_url(engine.url)} from "
                          f"{status.current or 'empty'} to {status.head} failed (nothing "
                          f"was changed): {reason[0]}") from None
    finally:
        if not isinstance(target, Engine):
            engine.dispose()
    done = Upgrade(status.current, status.head)
    log.debug("ILL schema %s on %s", done.describe(), shown_url(engine.url))
    return done


def migrate(target: Engine | str | None = None) -> Upgrade:
    """The locked ``upgrade`` (the name the callers and tests have always used)."""
    return upgrade(target)


def ensure_schema(engine: Engine, *, auto: bool) -> Upgrade | None:
    """A start's check: nothing when current; behind or empty, upgrade if ``auto`` (else
    SchemaError with the sentence to act on); newer than the code, always SchemaError."""
    status = schema_status(engine)
    if status.state == "current":
        return None
    if status.state == "ahead" or not auto:
        raise SchemaError(status.refusal())
    return upgrade(engine)


def auto_migrate(setting: object = None) -> bool:
    """Whether a start may migrate: ``setting`` (an app's ILL_AUTO_MIGRATE) if given, else
    $BALIS_AUTO_MIGRATE; "0", "false", "no", "off" say no, anything else (or unset) yes."""
    value = os.environ.get("BALIS_AUTO_MIGRATE", "") if setting is None else setting
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() not in ("0", "false", "no", "off")


def current_revision(engine: Engine) -> str | None:
    """The migration the database is at (None: never migrated)."""
    return schema_status(engine).current
