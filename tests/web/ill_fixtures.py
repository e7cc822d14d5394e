"""Shared pieces of the ILL web tests (test_ill_api.py, test_ill_pages.py,
test_ill_browser.py): a fresh migrated ILL database per test on SQLite and on a real
PostgreSQL (tests/peers/postgres.py), an app over it, a clock the tests move, and accounts.

The app runs with a cheap scrypt cost (``ILL_SETTINGS``): the production cost takes a
second or more per hash on the test machine, and the cost itself is the ILL tests' concern.
"""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from broker import config as config_module
from broker.config import Consortium
from ill.db import migrate
from ill.service import IllSettings
from ill.views import Actor

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "password-123"
QUICK = IllSettings(scrypt_n=2**4)
# 10:00 in Beijing on a Monday.
START = datetime(2025, 3, 3, 2, 0, tzinfo=UTC)

_databases = itertools.count()


class Clock:
    """The ILL service's clock (``ILL_CLOCK``); tests move it instead of sleeping."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


def real_consortium() -> Consortium:
    """The real BALIS directory (config/libraries.yaml): nlc lets no reader cancel."""
    return config_module.load(REPO / "config" / "libraries.yaml")


@pytest.fixture(scope="session")
def sqlite_ill_template(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("web-ill-template") / "template.sqlite3"
    migrate(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_ill_template(postgres) -> str:
    """A migrated database on the shared PostgreSQL server, copied for each test."""
    name = "web_ill_template"
    migrate(postgres.create_database(name))
    return name


@pytest.fixture(params=["sqlite", "postgresql"])
def ill_database_url(request, tmp_path) -> Iterator[str]:
    """A fresh, migrated ILL database on each backend."""
    if request.param == "sqlite":
        path = tmp_path / "ill.sqlite3"
        shutil.copy(request.getfixturevalue("sqlite_ill_template"), path)
        yield f"sqlite:///{path}"
        return
    template = request.getfixturevalue("postgres_ill_template")
    server = request.getfixturevalue("postgres")
    name = f"web_ill_{next(_databases)}"
    yield server.create_database(name, template=template)
    server.drop_database(name)


def ill_config(url: str, clock: Clock | None = None) -> dict:
    """The app settings that put the ILL part on ``url`` with the quick password hash."""
    config = {"DATABASE_URL": url, "ILL_SETTINGS": QUICK}
    if clock is not None:
        config["ILL_CLOCK"] = clock
    return config


def add_user(app, login: str, role: str, library: str | None, *, name: str | None = None,
             status: str = "active") -> Actor:
    """An account made through the service, as ``balis user add`` makes one."""
    web = app.extensions["ill"]
    with web.session() as s:
        user = web.service.create_user(s, login=login, password=PASSWORD, role=role,
                                       library=library, name=name or f"{login}-name",
                                       phone="13800000000", card_number=f"C-{login}"
                                       if role == "reader" else None)
    return Actor(user.id, user.login, user.role, user.library, user.name)


def valid_form(**overrides) -> dict:
    """A valid request (to pku by courier) with ``overrides``."""
    data = {"title": "红楼梦", "author": "曹雪芹", "publisher": "人民文学出版社", "year": "2008",
            "isbn": "9787020065875", "call_number": "I242.4/3", "lender": "pku",
            "material_type": "book", "delivery": "courier", "note": "急用"}
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}
