"""A search session: one query over chosen libraries, filling in as they answer.

The session holds each library's state and the merged clusters; ``snapshot`` renders the
current view (CONTRACTS section 5) for any page, sort and facet choice, while libraries are
still answering or after. Waiters (the live web view, the terminal's progress line) are
woken by ``changed``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from broker.kernel.config import Library
from broker.kernel.cql import Node
from broker.search import rank
from broker.search.merge import Cluster, Merger
from marc import Record

# A library's part in a search (CONTRACTS: the ``status`` of each library): not answered
# yet, answered, no answer in time, failed.
LibraryStatus = Literal["pending", "ok", "timeout", "error"]

# Why a library did not answer, as a code the web words in the reader's language (the
# ``error`` text beside it is the technical detail, for staff and the command line).
FailureReason = Literal[
    "timeout",           # the library did not answer within its timeout
    "busy",              # the search's deadline passed before the library could be asked
    "unreachable",       # no connection: refused, closed, or the index file is missing
    "suspended",         # left out for a while after failing several searches in a row
    "diagnostic",        # the catalogue answered with an error (SRU/Bib-1 diagnostic)
    "unsupported",       # the catalogue cannot express this query
    "missing_database",  # the server does not have the configured database
    "protocol",          # the answer was not valid SRU or Z39.50
    "not_searchable",    # the library has no connector (it lends but cannot be searched)
    "internal",          # a bug of ours (logged with its traceback)
    "interrupted",       # the server running the search stopped before the library answered
    "failed",            # any other failure the connector reported
]
FAILURE_REASONS: tuple[FailureReason, ...] = get_args(FailureReason)

DEADLINE_MARGIN = 10.0  # the first round's deadline: the slowest library's timeout plus this


def first_round_seconds(libraries: list[Library], timeout: float | None) -> float:
    """Seconds a search's first round may take: the slowest library's timeout (or the
    search's own) and a margin."""
    timeouts = [timeout or (lib.connector.timeout if lib.connector else 0)
                for lib in libraries]
    return max(timeouts, default=0) + DEADLINE_MARGIN


@dataclass(slots=True)
class LibraryState:
    library: Library
    status: LibraryStatus = "pending"
    hits: int | None = None
    fetched: int = 0
    elapsed_ms: int | None = None
    error: str | None = None
    reason: FailureReason | None = None  # set with ``error`` when the library failed
    next_start: int = 1  # the next record position to fetch for paging
    asked: bool = False  # the request went out (it is not waiting for a connection)
    problems: list[str] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return self.status != "pending"

    @property
    def has_more(self) -> bool:
        return self.status == "ok" and self.hits is not None and self.next_start <= self.hits

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.library.id, "name": self.library.name, "status": self.status,
                "hits": self.hits, "fetched": self.fetched, "elapsed_ms": self.elapsed_ms,
                "error": self.error, "reason": self.reason}


class SearchSession:
    def __init__(self, session_id: str, query_text: str, query: Node,
                 libraries: list[Library], *, per_library: int | None,
                 timeout: float | None) -> None:
        self.id = session_id
        self.query_text = query_text
        self.query = query
        self.per_library = per_library
        self.timeout = timeout
        # The order the searcher asked for (pages may choose another).
        self.sort: rank.Sort = "relevance"
        self.states = {lib.id: LibraryState(lib) for lib in libraries}
        # A union index (protocol local) sends records with every holder's holdings.
        self.merger = Merger(lib.id for lib in libraries
                             if lib.connector is not None and lib.connector.protocol == "local")
        # Every record given to the merger, in order: feeding them again to a new Merger
        # rebuilds the same clusters (broker.search.store does, in another process).
        self.arrivals: list[tuple[str, Record]] = []
        self.version = 0  # the revision of this session's stored state (broker.search.store)
        self.terms = rank.query_terms(query)
        self.started = time.monotonic()
        # When the first round must be over (monotonic; stored as wall-clock time, so that
        # any process sharing the session can end it if the one running it stopped).
        self.deadline = self.started + first_round_seconds(libraries, timeout)
        self.finished_at: float | None = None
        self.last_access = self.started
        self.task: asyncio.Task[None] | None = None
        self.fetch_lock = asyncio.Lock()
        self._changed = asyncio.Event()

    # --- filling in ---------------------------------------------------------------------

    def add_records(self, library: str, start: int, records: tuple[Record, ...],
                    problems: tuple[str, ...] = (), *, requested: int = 1) -> None:
        state = self.states[library]
        self.arrivals.extend((library, record) for record in records)
        self.merger.add(library, records)
        state.fetched += len(records)
        state.next_start = max(state.next_start, start + len(records))
        if requested and not records and state.hits is not None:
            state.next_start = state.hits + 1  # asked for records, none came: no more
        state.problems.extend(problems)
        self.touch()

    def touch(self) -> None:
        if self.finished_at is None and all(s.finished for s in self.states.values()):
            self.finished_at = time.monotonic()
        self._changed.set()

    async def changed(self, timeout: float | None = None) -> None:
        """Wait until something changes (or the timeout passes)."""
        self._changed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), timeout)

    @property
    def done(self) -> bool:
        return self.finished_at is not None

    def end_pending(self, reason: FailureReason, error: str) -> list[str]:
        """Give up on every library still pending (status ``timeout``, with ``reason``):
        the first round is over. The ids given up on; the session is done after this."""
        given_up = [lid for lid, state in self.states.items() if not state.finished]
        for lid in given_up:
            state = self.states[lid]
            state.status, state.reason, state.error = "timeout", reason, error
        if self.finished_at is None and given_up:
            # Ended late by a reader (the process running it stopped): the search took
            # until its deadline, not until whenever someone happened to look.
            self.finished_at = min(time.monotonic(), self.deadline)
        self.touch()
        return given_up

    # --- reading ------------------------------------------------------------------------

    def elapsed_ms(self) -> int:
        end = self.finished_at if self.finished_at is not None else time.monotonic()
        return round((end - self.started) * 1000)

    def ordered(self, sort: rank.Sort = "relevance",
                filters: rank.Filters | None = None) -> list[Cluster]:
        clusters = rank.narrow(list(self.merger.clusters), filters or {})
        return rank.order(clusters, sort, self.terms)

    def snapshot(self, *, start: int = 1, count: int = 20, sort: rank.Sort = "relevance",
                 filters: rank.Filters | None = None) -> dict[str, Any]:
        """CONTRACTS section 5 for records ``start`` .. ``start + count - 1`` (1-based)."""
        self.last_access = time.monotonic()
        ordered = self.ordered(sort, filters)
        page = ordered[max(0, start - 1):max(0, start - 1) + count]
        states = list(self.states.values())
        return {
            "id": self.id,
            "query": self.query_text,
            "done": self.done,
            "elapsed_ms": self.elapsed_ms(),
            "total_hits": sum(s.hits or 0 for s in states),
            "progress": {"done": sum(s.finished for s in states), "total": len(states)},
            "libraries": [s.as_dict() for s in states],
            "sort": sort,
            "start": start,
            "count": len(page),
            "merged": len(ordered),
            "fetched": sum(s.fetched for s in states),
            "more_available": any(s.has_more for s in states),
            "facets": rank.facets(list(self.merger.clusters)),
            "records": [cluster.as_dict() for cluster in page],
        }
