"""Closures and the due-date rule (还书时间顺延).

The consortium (``library`` None) and each library declare closures: winter and summer
breaks, public holidays. A lender that is closed today takes no new requests (the reader
is told the reopening date); a due date inside the borrower's or the lender's closure
moves to the first day on which neither is closed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from ill.models import Closure

# Beijing keeps no daylight saving time: a fixed offset needs no tz database.
BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")
# Looking further than this for an open day means the closures are wrong, not long.
MAX_CLOSED_DAYS = 400


@dataclass(frozen=True, slots=True)
class ClosureView:
    id: int
    library: str | None  # None: the whole consortium
    start: date
    end: date
    name: str

    def as_dict(self) -> dict:
        return {"id": self.id, "library": self.library, "start": self.start.isoformat(),
                "end": self.end.isoformat(), "name": self.name}


def local_date(moment: datetime, tz: timezone = BEIJING) -> date:
    """The calendar day in Beijing of an aware moment."""
    return moment.astimezone(tz).date()


def utc_now() -> datetime:
    return datetime.now(UTC)


def closures_for(session: Session, libraries: Iterable[str], since: date) -> list[ClosureView]:
    """Closures of these libraries and of the consortium that end on or after ``since``."""
    rows = session.scalars(
        select(Closure).where(
            or_(Closure.library.is_(None), Closure.library.in_(list(libraries))),
            Closure.end >= since,
        ).order_by(Closure.start)
    )
    return [view(c) for c in rows]


def first_open_day(day: date, closures: Sequence[ClosureView]) -> date:
    """``day`` itself if no closure covers it, else the first day after that none covers."""
    for _ in range(MAX_CLOSED_DAYS):
        covering = [c for c in closures if c.start <= day <= c.end]
        if not covering:
            return day
        day = max(c.end for c in covering) + timedelta(days=1)
    return day


def closure_on(day: date, closures: Sequence[ClosureView]) -> ClosureView | None:
    for closure in closures:
        if closure.start <= day <= closure.end:
            return closure
    return None


def reopening(session: Session, library: str, today: date) -> tuple[ClosureView, date] | None:
    """(the closure, the reopening day) when ``library`` is closed ``today``, else None."""
    closures = closures_for(session, [library], today)
    closure = closure_on(today, closures)
    if closure is None:
        return None
    return closure, first_open_day(today, closures)


def due_date(session: Session, start: date, days: int,
             libraries: Iterable[str]) -> tuple[date, date | None]:
    """(due, the unshifted due if a closure moved it, else None) for a loan of ``days``."""
    due = start + timedelta(days=days)
    shifted = first_open_day(due, closures_for(session, libraries, due))
    return shifted, (due if shifted != due else None)


def view(closure: Closure) -> ClosureView:
    return ClosureView(closure.id, closure.library, closure.start, closure.end, closure.name)
