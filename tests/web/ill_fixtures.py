"""Shared pieces of the ILL web tests (test_ill_api.py, test_ill_pages.py,
test_ill_browser.py): the app settings over an ILL database (the databases and the clock
are tests/peers/ill_databases.py), the real directory, and accounts.

The app runs with a cheap scrypt cost (``ILL_SETTINGS``): the production cost takes a
second or more per hash on the test machine, and the cost itself is the ILL tests' concern.
"""

from __future__ import annotations

from pathlib import Path

from peers.ill_databases import PASSWORD, Clock

from broker.kernel import config as config_module
from broker.kernel.config import Consortium
from ill.service import IllSettings
from ill.values import Actor

REPO = Path(__file__).resolve().parents[2]
QUICK = IllSettings(scrypt_n=2**4)
def real_consortium() -> Consortium:
    """The real BALIS directory (config/libraries.yaml): nlc lets no reader cancel."""
    return config_module.load(REPO / "config" / "libraries.yaml")


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
