"""Which lenders are closed today, for the pages that show libraries: the directory, the
member list, the results list and a record's holdings. A reader should see 闭馆中 with
the reopening day before choosing a closed lender's copy, not after filling in the form
(the ILL service refuses such a request anyway: ill/requests.py).

The closures are the ILL ledger's (ill/calendar.py, entered on the staff's calendar
page); a closure of the whole consortium closes every lender. Read once per HTTP request
(kept on ``flask.g``) whatever the number of libraries on the page.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date

from flask import g
from sqlalchemy.exc import SQLAlchemyError

from ill import calendar
from web.ill_context import ill

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Closed:
    """A lender closed today: the closure's name and the first day it takes requests."""

    library: str
    name: str
    reopens: date


def closed_lenders() -> dict[str, Closed]:
    """Every lender closed today, by library id (empty when the ledger cannot be read:
    the pages still show, and the request form still refuses a closed lender)."""
    cached = getattr(g, "closed_lenders", None)
    if cached is not None:
        return cached
    found: dict[str, Closed] = {}
    try:
        service = ill().service
        today = service.today()
        with ill().session() as s:
            closures = service.closures(s, None, today)
        for lib in service.consortium.libraries:
            mine = [c for c in closures if c.library in (None, lib.id)]
            closure = calendar.closure_on(today, mine)
            if closure is not None:
                found[lib.id] = Closed(lib.id, closure.name,
                                       calendar.first_open_day(today, mine))
    except SQLAlchemyError as exc:
        logger.warning("closures: cannot read the ILL calendar: %s", exc)
    g.closed_lenders = found
    return found
