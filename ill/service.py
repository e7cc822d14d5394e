"""``IllService``: the whole ILL service layer behind one object.

Build one per process and share it (it holds no per-request state)::

    from ill.db import Database
    from ill.service import IllService

    db = Database()                              # DATABASE_URL or instance/balis.sqlite3
    ill = IllService(consortium)                 # broker.kernel.config.Consortium
    with db.session() as s:
        actor = ill.authenticate(s, "reader1", "secret")
        request = ill.create_request(s, actor, form_fields)

Every method takes the session first and (where someone acts) the ``Actor`` second; each
call commits its own work. Errors (broker.kernel.errors): ValidationFailed (``.errors`` field ->
message, 422), Conflict (409), Forbidden (403), NotFound (404), AuthenticationFailed /
Throttled (401 / 429).
"""

from __future__ import annotations

import functools
import inspect

from ill.accounts import AccountsMixin
from ill.core import IllSettings
from ill.notices import NoticesMixin
from ill.requests import ReaderMixin
from ill.staff import QueueItem, StaffMixin
from ill.stats import StatsMixin, statistics_rows, to_csv


def _one_transaction(method):
    """End whatever transaction the call left open, commit done or not.

    A method commits its own work; what remains (reads after the commit, or a failure's
    half-done changes) is rolled back, so no call leaves SQLite's write lock held or a
    PostgreSQL transaction idle while the caller renders its answer."""

    @functools.wraps(method)
    def call(self, session, *args, **kwargs):
        try:
            return method(self, session, *args, **kwargs)
        finally:
            if session.in_transaction():
                session.rollback()

    return call


def _units(cls):
    for name in dir(cls):
        attr = getattr(cls, name)
        if name.startswith("_") or not inspect.isfunction(attr):
            continue
        params = list(inspect.signature(attr).parameters)
        if params[:2] == ["self", "session"]:
            setattr(cls, name, _one_transaction(attr))
    return cls


@_units
class IllService(AccountsMixin, ReaderMixin, StaffMixin, NoticesMixin, StatsMixin):
    """Accounts, reader requests, staff actions and queues, notices, statistics."""


__all__ = ["IllService", "IllSettings", "QueueItem", "statistics_rows", "to_csv"]
