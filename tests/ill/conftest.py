"""Fixtures for the ILL tests: every database test runs on SQLite and on PostgreSQL.

PostgreSQL is the real server the session starts (fixture ``postgres``); each test gets
a fresh database copied from one migrated template (SQLite: a copied migrated file). The
clock is injected, so cancel windows, throttling and overdue days need no sleeping.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from ill_helpers import CONSORTIUM_YAML, PASSWORD, Clock, People

from broker.kernel.config import Consortium, loads
from ill.db import Database
from ill.service import IllService, IllSettings


@pytest.fixture(scope="session")
def consortium() -> Consortium:
    return loads(CONSORTIUM_YAML, "test-consortium")


@pytest.fixture
def db_url(ill_database_url) -> str:
    """A fresh, migrated database on each backend (tests/peers/ill_databases.py)."""
    return ill_database_url


@pytest.fixture
def db(db_url) -> Iterator[Database]:
    database = Database(db_url, migrate_now=False)
    yield database
    database.dispose()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def settings() -> IllSettings:
    # A cheap scrypt cost keeps account setup quick; the production cost is tested apart.
    return IllSettings(scrypt_n=2**4)


@pytest.fixture
def svc(consortium, settings, clock) -> IllService:
    return IllService(consortium, settings, clock=clock)


@pytest.fixture
def people(db, svc) -> People:
    made = {}
    with db.session() as s:
        for key, login, role, library in (
                ("reader", "wang", "reader", "bupt"), ("reader2", "zhao", "reader", "bupt"),
                ("reader_pku", "qian", "reader", "pku"), ("bupt", "s-bupt", "staff", "bupt"),
                ("pku", "s-pku", "staff", "pku"), ("pku2", "s-pku-2", "staff", "pku"),
                ("nlc", "s-nlc", "staff", "nlc"), ("cnu", "s-cnu", "staff", "cnu"),
                ("admin", "root", "admin", None)):
            svc.create_user(s, login=login, password=PASSWORD, role=role, library=library,
                            name=f"{login}-name", phone="13800000000")
            made[key] = svc.authenticate(s, login, PASSWORD)
    return People(**made)
