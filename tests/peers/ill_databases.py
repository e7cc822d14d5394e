"""The ILL tests' databases and clock, shared by tests/ill and tests/web.

``ill_database_url`` is a fresh, migrated ILL database for each test, once on SQLite (a
copied migrated file) and once on the session's real PostgreSQL (``postgres``, copied
from a migrated template). ``Clock`` is the service's injected clock: tests move it
instead of sleeping. Registered as a pytest plugin by tests/conftest.py.
"""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ill.db import migrate

# 10:00 in Beijing on a Monday.
START = datetime(2025, 3, 3, 2, 0, tzinfo=UTC)
PASSWORD = "password-123"

_databases = itertools.count()


class Clock:
    """The ILL service's clock (``IllService(clock=...)``, the app's ``ILL_CLOCK``)."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture(scope="session")
def ill_sqlite_template(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ill-template") / "template.sqlite3"
    migrate(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def ill_postgres_template(postgres) -> str:
    """A migrated database on the session's PostgreSQL server, copied for each test."""
    name = "ill_template"
    migrate(postgres.create_database(name))
    return name


@pytest.fixture(params=["sqlite", "postgresql"])
def ill_database_url(request, tmp_path) -> Iterator[str]:
    """A fresh, migrated ILL database on each backend."""
    if request.param == "sqlite":
        path = tmp_path / "ill.sqlite3"
        shutil.copy(request.getfixturevalue("ill_sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    template = request.getfixturevalue("ill_postgres_template")
    server = request.getfixturevalue("postgres")
    name = f"ill_test_{next(_databases)}"
    yield server.create_database(name, template=template)
    server.drop_database(name)
