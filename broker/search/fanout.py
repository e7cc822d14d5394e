"""The broker: one query to many member libraries in parallel, merged as they answer.

It owns what connectors do not: deadlines (each library's own timeout, and an overall one),
the connection budget across all concurrent searches (a library waiting for it is
``pending``, never dropped), member health and suspension, and the sessions readers page
through, kept in a ``broker.search.store`` (this process's memory, or Redis shared by several
web processes). It never imports Flask or a database; the web and the CLI drive it on one
event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from typing import Any, Literal

from broker.kernel.config import Consortium, Library
from broker.kernel.cql import parse
from broker.kernel.errors import (
    ConnectorError,
    ConnectorTimeout,
    Diagnostic,
    ProtocolError,
    Unreachable,
    UnsupportedQuery,
    UsageError,
)
from broker.search import metrics, rank
from broker.search.health import HealthReport, LibraryHealth
from broker.search.lifecycle import ConsortiumChanges, DrainReport, consortium_changes, give_up
from broker.search.members import MemberConnectors
from broker.search.session import FailureReason, SearchSession
from broker.search.store import MAX_SESSIONS, SESSION_TTL, MemoryStore, SessionStore
from connectors.base import Connector

logger = logging.getLogger(__name__)

DEFAULT_BUDGET = 256  # library searches running at once, over all sessions
MEMBER_CONNECTIONS = 4  # searches running at once at one member (its connector's limit)
DEADLINE_MARGIN = 10.0  # overall deadline: the slowest library's timeout plus this
MISSING_DATABASE = frozenset({109, 235})  # Bib-1 and SRU: database unavailable / does not exist
# Seconds between looks at a session another process runs: the first, and at most (a
# follower grows the pause by half each time, so a long poll costs Redis ~1 read a second).
FOLLOW_FIRST = 0.1
FOLLOW_MAX = 1.0
ADOPT_GRACE = 2.1  # past its deadline, a reader ends it (just past redis_store.GRACE)
CANCEL_GRACE = 2.0  # seconds a library request cancelled at the deadline has to stop


class Broker:
    def __init__(self, consortium: Consortium, *, budget: int = DEFAULT_BUDGET,
                 store: SessionStore | None = None, session_ttl: float = SESSION_TTL,
                 max_sessions: int = MAX_SESSIONS) -> None:
        """``store``: where sessions live (default: a MemoryStore with ``session_ttl`` and
        ``max_sessions``; ``broker.search.store.store_from_env()`` for Redis when configured). The
        broker closes it when it closes."""
        self.consortium = consortium
        self._budget = asyncio.Semaphore(budget)
        self.store = store if store is not None else MemoryStore(session_ttl, max_sessions)
        self.health = {lib.id: LibraryHealth(lib.id) for lib in consortium.libraries}
        self.connectors = MemberConnectors(consortium.libraries)
        self._member_slots: dict[str, asyncio.Semaphore] = {}

    # --- lifetime -----------------------------------------------------------------------

    async def __aenter__(self) -> Broker:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        for session in self.store.live():
            if session.task is not None and not session.task.done():
                session.task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await session.task
        await self.connectors.close()
        await self.store.close()

    def _slots(self, library: Library) -> asyncio.Semaphore:
        slots = self._member_slots.get(library.id)
        if slots is None:
            slots = self._member_slots[library.id] = asyncio.Semaphore(MEMBER_CONNECTIONS)
        return slots

    def _connector(self, library: Library) -> Connector:
        return self.connectors.get(library)

    # --- choosing libraries -------------------------------------------------------------

    def select(self, library_ids: list[str] | None) -> list[Library]:
        """The libraries of a search; without a choice, every searchable member."""
        if not library_ids:
            chosen = [lib for lib in self.consortium.libraries if lib.searchable]
            if not chosen:
                raise UsageError("no library in the configuration can be searched")
            return chosen
        unique = list(dict.fromkeys(library_ids))
        if len(unique) > self.consortium.max_selected:
            raise UsageError(f"choose at most {self.consortium.max_selected} libraries per "
                             f"search ({len(unique)} chosen)")
        return [self.consortium.library(lid) for lid in unique]

    # --- searching ----------------------------------------------------------------------

    async def search(self, query_text: str, library_ids: list[str] | None = None, *,
                     per_library: int | None = None, timeout: float | None = None,
                     sort: str = "relevance") -> SearchSession:
        """Start a search and return its session at once; it fills in as libraries answer.

        ``sort`` is remembered as the session's order for pages that name none. Raises
        QueryError for a bad query, UsageError/ConfigError for a bad selection or sort.
        """
        try:
            chosen = rank.as_sort(sort)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        query = parse(query_text)
        libraries = self.select(library_ids)
        session = SearchSession(secrets.token_hex(8), query_text, query, libraries,
                                per_library=per_library, timeout=timeout)
        session.sort = chosen
        await self.store.add(session)
        session.task = asyncio.create_task(self._run(session), name=f"search-{session.id}")
        metrics.search_started()
        return session

    async def get(self, session_id: str) -> SearchSession | None:
        """The session with its newest state (it may have been started by another process
        sharing the store); None when unknown or expired. A session whose process stopped
        before its first round was over is taken over here, or ended past its deadline."""
        session = await self.store.get(session_id, self.consortium)
        if session is not None:
            await self._adopt(session)
        return session

    async def _adopt(self, session: SearchSession) -> None:
        if session.task is None and not session.done and await self.store.adopt(session):
            session.task = asyncio.create_task(self._run(session), name=f"search-{session.id}")

    @staticmethod
    def _deadline(session: SearchSession) -> float:
        """Seconds the first round may take: the slowest library's timeout and a margin."""
        return session.deadline - session.started  # session.first_round_seconds

    async def _run(self, session: SearchSession) -> None:
        # Every library at first; after a take-over (broker.search.redis_store) the ones
        # its first owner left pending, in the time left to the same deadline.
        tasks = {asyncio.create_task(self._ask(session, state.library, start=1)): lid
                 for lid, state in session.states.items() if not state.finished}
        async with self.store.running(session):
            await self._first_round(session, tasks)

    async def _first_round(self, session: SearchSession,
                           tasks: dict[asyncio.Task[None], str]) -> None:
        late: set[asyncio.Task[None]] = set()
        if tasks:
            _done, late = await asyncio.wait(
                tasks, timeout=max(0.0, session.deadline - time.monotonic()))
        for task in late:
            task.cancel()
        if late:
            # A request that does not stop when cancelled must not hold the whole search
            # (and its waiters) past the deadline: it is left behind, its library timed out.
            _stopped, stuck = await asyncio.wait(late, timeout=CANCEL_GRACE)
            for task in stuck:
                logger.warning("session %s: %s did not stop when cancelled at the deadline",
                               session.id, tasks[task])
        for task in late:
            state = session.states[tasks[task]]
            if not state.finished:
                state.status = "timeout"
                state.reason = "timeout" if state.asked else "busy"
                metrics.library_done(state.library.id, "timeout", state.reason, None)
                state.error = (
                    "the search's overall deadline passed while this library was answering"
                    if state.asked else "the search's overall deadline passed before this "
                    "library could be asked (the consortium is busy)")
        session.touch()
        await self.store.save(session)

    async def _ask(self, session: SearchSession, library: Library, *, start: int) -> None:
        """One request to one library, recorded in the session and saved; never raises."""
        await self._request(session, library, start=start)
        await self.store.save(session)

    async def _request(self, session: SearchSession, library: Library, *, start: int) -> None:
        state = session.states[library.id]
        health = self.health[library.id]
        if library.connector is None:
            state.status, state.error = "error", "this library cannot be searched yet"
            state.reason = "not_searchable"
            session.touch()
            return
        pause = health.suspended_for()
        if pause and start == 1:
            state.status, state.reason = "error", "suspended"
            metrics.library_done(library.id, "error", "suspended", None)
            state.error = (f"temporarily suspended after {health.consecutive_failures} failed "
                           f"searches in a row (last: {health.last_error}); tried again in "
                           f"{pause:.0f} s")
            session.touch()
            return
        limit = session.timeout or library.connector.timeout
        # per_library 0 asks for hit counts only; pages after that use the usual size.
        count = session.per_library
        if count is None or (count == 0 and start > 1):
            count = library.connector.max_records
        # Waiting for the member's own connection slot, then for the consortium's budget,
        # the library shows as pending; its timeout starts only when it is really asked.
        async with self._slots(library), self._budget:
            began = time.monotonic()
            state.asked = True
            try:
                async with asyncio.timeout(limit), self.connectors.using(library) as connector:
                    page = await connector.search(session.query, start=start, count=count)
            except (TimeoutError, ConnectorTimeout) as exc:
                self._failed(session, library, "timeout", str(exc) if isinstance(
                    exc, ConnectorTimeout) else f"no answer within {limit:g} s", began,
                    reason="timeout")
                return
            except (Diagnostic, UnsupportedQuery) as exc:
                # The library answered: its catalogue cannot do this query. Except that a
                # database it does not have is a broken member, as an SRU 404 is.
                broken = isinstance(exc, Diagnostic) and exc.code in MISSING_DATABASE
                reason: FailureReason = ("missing_database" if broken else "diagnostic"
                                         if isinstance(exc, Diagnostic) else "unsupported")
                self._failed(session, library, "error", str(exc), began, healthy=not broken,
                             reason=reason)
                return
            except ConnectorError as exc:
                self._failed(session, library, "error", str(exc), began,
                             reason=_reason_of(exc))
                return
            except Exception as exc:  # a bug must cost one library, not the search
                logger.exception("%s: unexpected failure", library.id)
                self._failed(session, library, "error", f"internal error: {exc}", began,
                             reason="internal")
                return
        seconds = time.monotonic() - began
        health.record(True, seconds)
        if start == 1:
            state.status, state.hits = "ok", page.hits
            state.elapsed_ms = round(seconds * 1000)
            metrics.library_done(library.id, "ok", None, seconds)
        for problem in page.problems:
            logger.warning("%s: %s", library.id, problem)
        session.add_records(library.id, start, page.records, page.problems, requested=count)
        metrics.records_merged(len(page.records))

    def _failed(self, session: SearchSession, library: Library,
                status: Literal["timeout", "error"], error: str, began: float, *,
                reason: FailureReason, healthy: bool = False) -> None:
        seconds = time.monotonic() - began
        self.health[library.id].record(healthy, seconds, None if healthy else error)
        state = session.states[library.id]
        if state.status == "pending":  # a failed fetch-more keeps the first answer's state
            state.status, state.error, state.reason = status, error, reason
            metrics.library_done(library.id, status, reason, seconds)
            state.elapsed_ms = round(seconds * 1000)
        else:
            state.problems.append(f"fetching more failed: {error}")
        session.touch()

    async def fetch_more(self, session: SearchSession, wanted: int) -> None:
        """Make at least ``wanted`` merged records available if the libraries have them.

        Asks each library that has more for its next page (Z39.50 presents from the result
        set it already has, another process's search from ``next_start``); finished work is
        never repeated.
        """
        async with session.fetch_lock, self.store.fetching(session):
            if session.task is None and not session.done:
                return  # another process runs this search's first round, and saves it
            while len(session.merger.clusters) < wanted:
                more = [s.library for s in session.states.values() if s.has_more]
                if not more:
                    return
                before = sum(s.fetched for s in session.states.values())
                await asyncio.gather(*(
                    self._ask(session, lib, start=session.states[lib.id].next_start)
                    for lib in more))
                if sum(s.fetched for s in session.states.values()) == before:
                    return  # nothing came: do not loop

    async def fetch_to_depth(self, session: SearchSession, depth: int) -> None:
        """Page every library that has more until it has sent min(its hits, ``depth``)
        records, after the first round (``wait``).

        The union front door fixes its result set from this before it answers, so a
        client is told a count it can present. Pages are the usual size, so the last one
        may bring more than ``depth``: the caller keeps what it needs. A library whose
        page fails or brings nothing is not asked again (its failure is in its
        ``problems``), so this ends within a few of each library's timeouts.
        """
        if depth < 1:
            raise ValueError(f"depth must be a positive integer, not {depth!r}")
        async with session.fetch_lock, self.store.fetching(session):
            if session.task is None and not session.done:
                return  # another process runs this search's first round, and saves it
            stalled: set[str] = set()
            while True:
                short = [s for s in session.states.values()
                         if s.has_more and s.fetched < depth and s.library.id not in stalled]
                if not short:
                    return
                before = {s.library.id: s.fetched for s in short}
                await asyncio.gather(*(self._ask(session, s.library, start=s.next_start)
                                       for s in short))
                stalled.update(lid for lid, fetched in before.items()
                               if session.states[lid].fetched == fetched)

    async def page(self, session: SearchSession, *, start: int = 1, count: int = 20,
                   sort: rank.Sort = "relevance", filters: rank.Filters | None = None
                   ) -> dict[str, Any]:
        """A page of the merged set (CONTRACTS section 5); paging past what was fetched asks
        the libraries that have more, once they have all answered the first time."""
        if session.done and start + count - 1 > len(session.merger.clusters):
            await self.fetch_more(session, start + count - 1)
        return session.snapshot(start=start, count=count, sort=sort, filters=filters)

    async def wait(self, session: SearchSession) -> SearchSession:
        """Until every library is done or timed out."""
        while session.task is None and not session.done:
            await self.follow(session, FOLLOW_MAX)  # run by another process
        if session.task is not None:
            # Bounded, so a first round that outruns its deadline (it should not) still
            # leaves its waiter at the deadline and a grace, with every library's state.
            limit = max(0.0, session.deadline - time.monotonic()) + 2 * CANCEL_GRACE + 1
            try:
                await asyncio.wait_for(asyncio.shield(session.task), limit)
            except TimeoutError:
                logger.warning("session %s: its first round outran its deadline; ended "
                               "without the libraries still pending", session.id)
                session.end_pending("timeout", "no answer before the search's deadline")
                await self.store.save(session)
            except asyncio.CancelledError:
                # The search was stopped (a drain gave up on it and made its state final):
                # the waiter gets that state; only the waiter's own cancellation propagates.
                current = asyncio.current_task()
                if not session.task.cancelled() or (current and current.cancelling()):
                    raise
        return session

    async def follow(self, session: SearchSession, timeout: float) -> None:
        """Until the session changes, is done, or ``timeout`` seconds pass.

        A session run here wakes its waiters itself. One run by another process is looked
        at in the store, first soon, then less often (FOLLOW_FIRST growing to FOLLOW_MAX
        seconds: one cheap read of its revision each time), and never later than its
        deadline: past it (or once its process stopped) it is ended or taken over here
        (``store.adopt``), so a reader never waits past the deadline and a short grace.
        """
        if session.task is not None or session.done:
            if not session.done:
                await session.changed(timeout)
            return
        end = time.monotonic() + timeout
        seen, pause = session.version, FOLLOW_FIRST
        while True:
            await self.store.refresh(session)
            if session.version != seen or session.done:
                return
            await self._adopt(session)
            if session.done or session.task is not None:
                return  # ended, or taken over: now run here
            now = time.monotonic()
            if now >= end:
                return
            # Wake at the deadline too (and its grace), when the session must be ended.
            due = [when - now for when in (session.deadline, session.deadline + ADOPT_GRACE)
                   if when > now]
            await asyncio.sleep(min([pause, end - now, *due]))
            pause = min(pause * 1.5, FOLLOW_MAX)

    # --- reloading and stopping (SIGHUP and SIGTERM of balis serve) --------------------

    async def reload(self, consortium: Consortium) -> ConsortiumChanges:
        """Take a reloaded libraries file: new searches use its libraries and connectors;
        searches already running finish with the libraries they began with. Connectors of
        removed or changed libraries are closed once no request uses them."""
        changes = consortium_changes(self.consortium, consortium)
        self.consortium = consortium
        for library in consortium.libraries:
            self.health.setdefault(library.id, LibraryHealth(library.id))
        await self.connectors.replace(consortium.libraries, (*changes.removed, *changes.changed))
        return changes

    def running(self) -> list[SearchSession]:
        """The searches whose first round runs on this broker now."""
        return [s for s in self.store.live() if s.task is not None and not s.task.done()]

    def time_left(self, session: SearchSession) -> float:
        """Seconds until ``session``'s first round reaches its deadline."""
        return max(0.0, session.started + self._deadline(session) - time.monotonic())

    async def drain(self, timeout: float) -> DrainReport:
        """Let the searches running here finish, each within its own deadline, for at most
        ``timeout`` seconds (searches started meanwhile too); then give up on the rest:
        their pending libraries time out, and that final state is saved to the store."""
        began = time.monotonic()
        drained = 0
        while (running := self.running()) and (left := began + timeout - time.monotonic()) > 0:
            done, _ = await asyncio.wait([s.task for s in running if s.task], timeout=left)
            drained += len(done)
        late = self.running()
        for session in late:
            assert session.task is not None
            give_up(session)  # first: its waiters, woken by the cancel, read the final state
            session.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await session.task
            await self.store.save(session)
        return DrainReport(drained, len(late), time.monotonic() - began)

    # --- upkeep -------------------------------------------------------------------------

    def health_report(self) -> list[HealthReport]:
        return [self.health[lib.id].report() for lib in self.consortium.libraries]


def _reason_of(exc: ConnectorError) -> FailureReason:
    """The reason code of a connector's failure (what the reader is told, in words)."""
    if isinstance(exc, Unreachable):
        return "unreachable"
    if isinstance(exc, ProtocolError):
        return "protocol"
    return "failed"
