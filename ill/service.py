"""``IllService``: the whole ILL service layer behind one object.

Build one per process and share it (it holds no per-request state)::

    from ill.db import Database
    from ill.service import IllService

    db = Database()                              # DATABASE_URL or instance/balis.sqlite3
    ill = IllService(consortium)                 # broker.kernel.config.Consortium
    with db.session() as s:
        actor = ill.authenticate(s, "reader1", "secret")
        request = ill.create_request(s, actor, form_fields)

Every method that reads or writes the ledger takes the session first and (where someone
acts) the ``Actor`` second, and is marked ``@unit_of_work`` where it is defined
(ill.core.unit_of_work): it commits its own work and rolls back whatever it left open.
Errors (broker.kernel.errors): ValidationFailed (``.errors`` field -> message, 422),
Conflict (409), Forbidden (403), NotFound (404), AuthenticationFailed / Throttled
(401 / 429).

The methods live with their subject: ill/accounts.py, ill/requests.py (the reader's side),
ill/staff.py, ill/notices.py, ill/stats.py, ill/cards.py (the self-pickup card), ill/mail.py
(e-mail); ill/transitions.py and ill/core.py hold what they share.
"""

from __future__ import annotations

from ill.accounts import AccountsMixin
from ill.cards import CardSettings, CardsMixin
from ill.core import IllSettings
from ill.mail import MailMixin, MailSettings
from ill.notices import NoticesMixin
from ill.requests import ReaderMixin
from ill.staff import QueueItem, StaffMixin
from ill.stats import StatsMixin, statistics_rows, to_csv


class IllService(MailMixin, CardsMixin, AccountsMixin, ReaderMixin, StaffMixin, NoticesMixin,
                 StatsMixin):
    """Accounts, reader requests, staff actions and queues, notices, statistics; the
    self-pickup card (ill/cards.py) and e-mail (ill/mail.py) come first, as they extend
    the request form's checks and the status messages."""


__all__ = ["CardSettings", "IllService", "IllSettings", "MailSettings", "QueueItem",
           "statistics_rows", "to_csv"]
