"""Statistics from the ledger: per library and period, the subsidy report (lending volume
per library), the courier report (shipments per route), monthly volume, CSV.

Periods are Beijing calendar days, both ends included. Definitions (the numbers the tests
check by hand):

- ``requested``: requests our readers submitted in the period (we borrow);
- ``received_requests``: requests submitted to us in the period (we lend);
- ``lent``: books we handed out in the period (shipped, or checked out at our desk);
- ``borrowed``: books our readers got in the period (arrived here, or collected there);
- ``filled`` / ``unfilled``: of the requests submitted to us in the period, those we lent
  / those we answered Unfilled (by ISO 18626 reason; ``Other`` for free text);
- ``turnaround_hours``: for our readers' requests submitted in the period, hours from
  submission until the book was at our desk (arrived) or in the reader's hands (pick-up);
  median and p90 (nearest rank);
- ``overdue``: our readers' loans due in the period that came back late or not yet.
"""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from broker.kernel.errors import Forbidden, ValidationFailed
from ill import calendar
from ill.core import ServiceCore, unit_of_work
from ill.models import Event, Request
from ill.values import Actor


class StatsMixin(ServiceCore):
    @unit_of_work
    def statistics(self, session: Session, actor: Actor, library: str | None, start: date,
                   end: date) -> dict[str, Any]:
        """The numbers above for one library (staff: their own; admins: any), or with
        ``library`` None for the whole consortium (admins only): every request is then
        both "ours" and "theirs", so requested equals received_requests."""
        whole = library is None
        if whole and not actor.is_admin:
            raise Forbidden("只有联盟管理员可以查看全联盟统计")
        self.require_staff(actor, library)
        _check_period(start, end)
        lo, hi = _bounds(start, end)
        query = select(Request) if whole else select(Request).where(
            (Request.lender == library) | (Request.borrower == library))
        reqs = {r.id: r for r in session.scalars(query)}
        events = defaultdict(list)
        if reqs:
            for e in session.scalars(select(Event).where(Event.request_id.in_(list(reqs)))
                                     .order_by(Event.id)):
                events[e.request_id].append(e)
        today = self.today()

        def within(moment: datetime) -> bool:
            return lo <= moment < hi

        ours = [r for r in reqs.values() if whole or r.borrower == library]
        theirs = [r for r in reqs.values() if whole or r.lender == library]
        lent = sum(1 for r in theirs for e in events[r.id]
                   if self._lent(e) and within(e.at) and not _undone(e, events[r.id]))
        borrowed = sum(1 for r in ours for e in events[r.id]
                       if self._got_it(e) and within(e.at) and not _undone(e, events[r.id]))
        asked = [r for r in theirs if within(r.created)]
        filled = [r for r in asked if _first(events[r.id], self._lent) is not None]
        unfilled = Counter(r.reason_code or "Other" for r in asked
                           if r.status in self.workflow.unfilled)
        turnaround = []
        for r in ours:
            if within(r.created):
                got = _first(events[r.id], self._got_it)
                if got is not None:
                    turnaround.append((got.at - r.created).total_seconds() / 3600)
        overdue = 0
        for r in ours:
            if r.due is None or not start <= r.due <= end:
                continue
            back = _first(events[r.id], lambda e: e.action in ("return", "ship_back"))
            came_back = calendar.local_date(back.at) if back is not None else None
            if (came_back is not None and came_back > r.due) or \
                    (came_back is None and r.status not in self.workflow.terminal
                     and today > r.due):
                overdue += 1
        return {
            "library": library,
            "library_name": self.consortium.name if whole else self.library_name(library),
            "start": start.isoformat(), "end": end.isoformat(),
            "requested": sum(1 for r in ours if within(r.created)),
            "received_requests": len(asked), "lent": lent, "borrowed": borrowed,
            "filled": len(filled), "unfilled": sum(unfilled.values()),
            "unfilled_by_reason": dict(sorted(unfilled.items())),
            "turnaround_hours": {"count": len(turnaround),
                                 "median": _round(statistics.median(turnaround))
                                 if turnaround else None,
                                 "p90": _round(percentile(turnaround, 90))},
            "overdue": overdue,
        }

    @unit_of_work
    def subsidy_report(self, session: Session, actor: Actor, start: date,
                       end: date) -> list[dict[str, Any]]:
        """Lending volume per library in the period (every member, most first)."""
        self.require_staff(actor)
        counts = Counter(lender for lender, _e in self._lent_in(session, start, end))
        rows = [{"library": lib.id, "library_name": lib.name, "lent": counts.get(lib.id, 0)}
                for lib in self.consortium.libraries]
        return sorted(rows, key=lambda row: (-row["lent"], row["library"]))

    @unit_of_work
    def courier_report(self, session: Session, actor: Actor, start: date,
                       end: date) -> list[dict[str, Any]]:
        """Courier shipments per route (from, to) in the period, with their batches."""
        self.require_staff(actor)
        _check_period(start, end)
        lo, hi = _bounds(start, end)
        rows = session.execute(select(Event, Request.lender, Request.borrower)
                               .join(Request, Request.id == Event.request_id)
                               .where(Event.action.in_(["ship", "ship_back"]),
                                      Event.at >= lo, Event.at < hi)).all()
        undone = self._undone_ids(session, lo)
        routes: dict[tuple[str, str], dict[str, Any]] = {}
        for event, lender, borrower in rows:
            if event.id in undone:
                continue
            key = (lender, borrower) if event.action == "ship" else (borrower, lender)
            route = routes.setdefault(key, {"from": key[0], "to": key[1], "shipments": 0,
                                            "outbound": 0, "returns": 0, "batches": set()})
            route["shipments"] += 1
            route["outbound" if event.action == "ship" else "returns"] += 1
            data = json.loads(event.data) if event.data else {}
            route["batches"].add(data.get("batch") or calendar.local_date(event.at).isoformat())
        out = []
        for route in sorted(routes.values(), key=lambda r: (-r["shipments"], r["from"], r["to"])):
            out.append({**route, "from_name": self.library_name(route["from"]),
                        "to_name": self.library_name(route["to"]),
                        "batches": len(route["batches"])})
        return out

    @unit_of_work
    def monthly_volume(self, session: Session, actor: Actor, start: date,
                       end: date, library: str | None = None) -> dict[str, Any]:
        """Books lent per month per lending library, for the chart, and the consortium's
        ``total``; with ``library``, that library's row alone (zeros if it lent nothing),
        so a chart titled with one library shows no other."""
        self.require_staff(actor)
        months = _months(start, end)
        series: dict[str, list[int]] = {}
        total = [0] * len(months)
        for lender, event in self._lent_in(session, start, end):
            month = calendar.local_date(event.at).strftime("%Y-%m")
            series.setdefault(lender, [0] * len(months))[months.index(month)] += 1
            total[months.index(month)] += 1
        if library is not None:
            series = {library: series.get(library, [0] * len(months))}
        return {"months": months, "total": total,
                "libraries": [{"library": lib, "library_name": self.library_name(lib),
                               "lent": counts} for lib, counts in sorted(series.items())]}

    def _lent_in(self, session: Session, start: date, end: date) -> list[tuple[str, Event]]:
        _check_period(start, end)
        lo, hi = _bounds(start, end)
        rows = session.execute(select(Request.lender, Event)
                               .join(Request, Request.id == Event.request_id)
                               .where(Event.action.in_(["ship", "checkout"]),
                                      Event.at >= lo, Event.at < hi)).all()
        undone = self._undone_ids(session, lo)
        return [(lender, e) for lender, e in rows if self._lent(e) and e.id not in undone]

    def _lent(self, e: Event) -> bool:
        """The lender handed the book out: shipped it, or gave it to the reader at its own
        desk (pick-up). An admin standing in for the lender counts as the lender; the
        borrower's checkout of an arrived book is not a loan by anyone new."""
        return self.workflow.starts_loan(e.action, e.from_status)

    def _got_it(self, e: Event) -> bool:
        """Our reader's book reached us, or (pick-up) the reader at the lender's desk."""
        return e.action == "receive" or (e.action == "checkout" and self._lent(e))

    @staticmethod
    def _undone_ids(session: Session, since: datetime) -> set[int]:
        ids = set()
        for data in session.scalars(select(Event.data).where(Event.action == "undo",
                                                             Event.at >= since)):
            if data:
                ids.add(json.loads(data).get("undid"))
        return ids


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile (no interpolation: a value that really occurred)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def to_csv(rows: Iterable[Mapping[str, Any]], columns: Sequence[str] | None = None, *,
           bom: bool = True) -> str:
    """CSV text of flat rows (nested values as text); a BOM so Excel reads the Chinese."""
    rows = list(rows)
    columns = list(columns or (rows[0].keys() if rows else []))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if row.get(c) is None else row.get(c) for c in columns])
    return ("\ufeff" if bom else "") + out.getvalue()


def statistics_rows(stats: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One library's statistics as (measure, value) rows for CSV."""
    rows = [{"measure": k, "value": stats[k]} for k in
            ("requested", "received_requests", "lent", "borrowed", "filled", "unfilled",
             "overdue")]
    rows += [{"measure": f"unfilled:{code}", "value": n}
             for code, n in stats["unfilled_by_reason"].items()]
    rows += [{"measure": f"turnaround_hours:{k}", "value": v}
             for k, v in stats["turnaround_hours"].items()]
    return rows


def _first(events: list[Event], test) -> Event | None:
    for e in events:
        if test(e) and not _undone(e, events):
            return e
    return None


def _undone(event: Event, events: list[Event]) -> bool:
    return any(e.action == "undo" and e.data and json.loads(e.data).get("undid") == event.id
               for e in events)


def _check_period(start: date, end: date) -> None:
    if not isinstance(start, date) or not isinstance(end, date) or end < start:
        raise ValidationFailed({"end": "结束日期不能早于开始日期"},
                               {"end": "the period ends before it starts"})


def _bounds(start: date, end: date) -> tuple[datetime, datetime]:
    lo = datetime.combine(start, time(), tzinfo=calendar.BEIJING)
    return lo, datetime.combine(end + timedelta(days=1), time(), tzinfo=calendar.BEIJING)


def _months(start: date, end: date) -> list[str]:
    months, year, month = [], start.year, start.month
    while (year, month) <= (end.year, end.month):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def _round(value: float | None) -> float | None:
    return round(value, 1) if value is not None else None
