"""Searches as the web sees them: start one, read a page of it (now or when done), find a
record. Every broker call goes through the bridge; the pages and the JSON API share this.
"""

from __future__ import annotations

import itertools
import logging
import time
from dataclasses import dataclass
from typing import Any

from broker.kernel.literals import one_of
from broker.search import rank
from broker.search.fanout import Broker
from broker.search.health import HealthReport
from broker.search.merge import Cluster
from broker.search.session import SearchSession
from web.bridge import BrokerBridge

logger = logging.getLogger(__name__)

MAX_COUNT = 100  # records per page a client may ask for
LIVE_WAIT = 20.0  # seconds a live request waits for news before answering anyway


class SearchGone(LookupError):
    """The search session is unknown or has expired."""


@dataclass(frozen=True, slots=True)
class PageRequest:
    start: int = 1
    count: int = 20
    sort: rank.Sort | None = None  # None: the order the search was started with
    filters: tuple[tuple[rank.Facet, str], ...] = ()

    def filter_dict(self) -> rank.Filters:
        out: rank.Filters = {}
        for facet, value in self.filters:
            out.setdefault(facet, []).append(value)
        return out


def parse_filters(values: list[str]) -> tuple[tuple[rank.Facet, str], ...]:
    """``facet:value`` strings (``library:bupt``); raises ValueError naming a bad one."""
    out: list[tuple[rank.Facet, str]] = []
    for text in values:
        name, sep, value = text.partition(":")
        facet = one_of(name, rank.FACETS)
        if not sep or facet is None or not value:
            raise ValueError(f"filter {text!r} must be FACET:VALUE with FACET one of "
                             f"{', '.join(rank.FACETS)}")
        out.append((facet, value))
    return tuple(dict.fromkeys(out))


def page_request(start: str | None, count: str | None, sort: str | None,
                 filters: list[str] | None = None, *, default_count: int = 20) -> PageRequest:
    """A PageRequest from query-string values; ValueError with a readable reason."""
    def number(text: str | None, name: str, default: int, low: int, high: int) -> int:
        if text in (None, ""):
            return default
        try:
            value = int(text)
        except ValueError:
            raise ValueError(f"{name} must be a whole number, not {text!r}") from None
        if not low <= value <= high:
            raise ValueError(f"{name} must be between {low} and {high}, not {value}")
        return value

    chosen = rank.as_sort(sort) if sort else None
    return PageRequest(start=number(start, "start", 1, 1, 1_000_000),
                       count=number(count, "count", default_count, 0, MAX_COUNT),
                       sort=chosen, filters=parse_filters(filters or []))


def page_window(current: int, pages: int, around: int = 2) -> list[int | None]:
    """The page numbers a pager links to: the first and last, and ``around`` either side
    of the current one; None where numbers are left out (shown as …). A gap of a single
    page is that page instead: "1 … 3" would hide no more than "1 2 3"."""
    if pages <= 1:
        return [1]
    shown = {1, pages, *range(max(1, current - around), min(pages, current + around) + 1)}
    out: list[int | None] = []
    previous = 0
    for number in sorted(shown):
        if number - previous == 2:
            out.append(number - 1)
        elif number - previous > 2:
            out.append(None)
        out.append(number)
        previous = number
    return out


class Searches:
    """The web's view of the broker's search sessions."""

    def __init__(self, bridge: BrokerBridge) -> None:
        self.bridge = bridge

    def start(self, query: str, libraries: list[str] | None, sort: str = "relevance") -> str:
        """Start a search; its id. Raises QueryError / UsageError / ConfigError."""
        async def work(broker: Broker):
            session = await broker.search(query, libraries or None, sort=sort)
            return session.id
        return self.bridge.call(work, timeout=30)

    def page(self, session_id: str, request: PageRequest, *, wait: bool = False
             ) -> dict[str, Any]:
        """CONTRACTS section 5 for one page; with ``wait``, once every library is done."""
        async def work(broker: Broker):
            session = await self._session(broker, session_id)
            if wait:
                await broker.wait(session)
            return await _page_of(broker, session, request)
        return self.bridge.call(work, timeout=self._budget())

    def search(self, query: str, libraries: list[str] | None, request: PageRequest
               ) -> dict[str, Any]:
        """Start, wait for every library, and give one page (the blocking API)."""
        return self.page(self.start(query, libraries, request.sort or "relevance"), request,
                         wait=True)

    def live(self, session_id: str, seen: int, request: PageRequest) -> dict[str, Any]:
        """The page once the session has moved past revision ``seen`` (or is done, or
        LIVE_WAIT passed): the long poll behind the streaming results page."""
        async def work(broker: Broker):
            session = await self._session(broker, session_id)
            if not session.done and revision(session) <= seen:
                # Run here, its own event wakes this; run by another process, the store
                # is looked at (and the search ended or taken over past its deadline).
                await broker.follow(session, LIVE_WAIT)
            data = await _page_of(broker, session, request)
            data["revision"] = revision(session)
            return data
        return self.bridge.call(work, timeout=LIVE_WAIT + 30)

    def record(self, record_id: str, session_id: str | None = None, *, marc: bool = False
               ) -> tuple[Cluster, SearchSession]:
        """The merged record ``record_id`` (a cluster id or any of its sources' ids) from
        the given session, else from any live one; SearchGone if none has it. With
        ``marc``, its sources' raw MARC too where the store has it (a session rebuilt from
        another process's state has none until asked)."""
        async def work(broker: Broker):
            own = await broker.get(session_id) if session_id else None
            # The reader's own session nearly always has it: the others (hundreds, up to
            # the store's limit) are looked through only when it does not.
            others = (s for s in broker.store.live() if s is not own)
            for session in itertools.chain([own] if own is not None else [], others):
                cluster = session.merger.find(record_id)
                if cluster is not None:
                    session.last_access = time.monotonic()
                    if marc:
                        await broker.store.attach_sources(session, cluster)
                    return cluster, session
            raise SearchGone(f"record {record_id} is not in any current search "
                             "(searches expire after a while): search again to see it")
        return self.bridge.call(work, timeout=30)

    def health(self) -> dict[str, HealthReport]:
        """Each library's health report, by id (empty before the first search). Read on
        the broker's loop, which is the thread that updates it."""
        if not self.bridge.started:
            return {}

        async def work(broker: Broker):
            return broker.health_report()
        return {r["library"]: r for r in self.bridge.call(work, timeout=30)}

    async def _session(self, broker: Broker, session_id: str) -> SearchSession:
        session = await broker.get(session_id)
        if session is None:
            raise SearchGone(f"search {session_id} is unknown or has expired: search again")
        return session

    def _budget(self) -> float:
        timeouts = [lib.connector.timeout for lib in self.bridge.consortium.libraries
                    if lib.connector is not None]
        return max(timeouts, default=10.0) + 60.0


async def _page_of(broker: Broker, session: SearchSession, request: PageRequest) -> dict[str, Any]:
    """The page ``request`` asks for; without a sort, in the order the search began with."""
    return await broker.page(session, start=request.start, count=request.count,
                             sort=request.sort or session.sort, filters=request.filter_dict())


def revision(session: SearchSession) -> int:
    """A number that grows whenever the session's visible state changes."""
    return sum(s.finished for s in session.states.values()) * 1_000_000 + sum(
        s.fetched for s in session.states.values())

