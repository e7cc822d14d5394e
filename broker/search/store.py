"""Where search sessions live between a reader's requests: in this process, or in Redis.

A session is a live object with asyncio parts (its search task, its locks, the event its
waiters sleep on), so the process that starts a search *owns* it and runs its first round
to the end. What other processes need is the session's state, which is plain data
(broker/search/state.py):

``MemoryStore`` (the default)
    Sessions in an ordered dict in this process. A session expires ``ttl`` seconds after
    its last use once its libraries are done; past ``max_sessions`` the least recently used
    goes (a search still running is cancelled).
``RedisStore(url, ttl)`` (broker/search/redis_store.py; ``store_from_env()`` picks it when
``BALIS_REDIS_URL`` is set)
    Several web processes share sessions: the owner writes the state after every change,
    and the raw MARC of its records beside it; any other process rebuilds the session from
    it, pages it further, shows its MARC, and ends it (or takes it over) when its owner
    stopped before the first round was over. Details in that module.
"""

from __future__ import annotations

import contextlib
import os
import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Mapping

from broker.kernel.config import Consortium
from broker.search.merge import Cluster
from broker.search.session import SearchSession

# The stored state's format lives in broker.search.state; these names stay importable here.
from broker.search.state import STATE_FORMAT, apply_state, dump_session, load_session

__all__ = ["MAX_SESSIONS", "SESSION_TTL", "STATE_FORMAT", "MemoryStore", "RedisStore",
           "SessionStore", "apply_state", "dump_session", "load_session", "store_from_env"]

SESSION_TTL = 900.0  # seconds a session lives after its last use
MAX_SESSIONS = 500  # sessions kept in one process
EXPIRE_INTERVAL = 1.0  # seconds between looks for expired sessions
REDIS_URL_VARIABLE = "BALIS_REDIS_URL"


class SessionStore(ABC):
    """What the Broker needs from a place that keeps sessions."""

    ttl: float

    @abstractmethod
    async def add(self, session: SearchSession) -> None:
        """A session this process has just started."""

    @abstractmethod
    async def get(self, session_id: str, consortium: Consortium) -> SearchSession | None:
        """The session, its newest state; None when unknown or expired. Counts as a use."""

    async def save(self, session: SearchSession) -> None:  # noqa: B027 (optional hook)
        """Called after every change to the session (nothing to do in memory)."""

    def fetching(self, session: SearchSession) -> contextlib.AbstractAsyncContextManager:
        """Held while this process fetches more for the session."""
        return contextlib.nullcontext()

    async def refresh(self, session: SearchSession) -> None:  # noqa: B027 (optional hook)
        """Bring a session run by another process up to its newest stored state."""

    def running(self, session: SearchSession) -> contextlib.AbstractAsyncContextManager:
        """Held while this process runs the session's first round (in Redis: the owner's
        lease, by which the others know it is still alive)."""
        return contextlib.nullcontext()

    async def adopt(self, session: SearchSession) -> bool:
        """For a session another process runs: end it if its first round is over by its
        deadline (or its runner stopped too late to ask again), or take it over. True when
        this process now owns it and must ask the libraries still pending."""
        return False

    async def attach_sources(self, session: SearchSession, cluster: Cluster) -> None:  # noqa: B027
        """Give the cluster's records the raw MARC this process does not hold (from the
        shared store); a record whose MARC is nowhere keeps ``source`` None."""

    @abstractmethod
    def live(self) -> list[SearchSession]:
        """The sessions this process holds (its searches are cancelled on close)."""

    async def close(self) -> None:  # noqa: B027 (optional hook)
        """Release connections; the broker calls this when it closes."""


class MemoryStore(SessionStore):
    def __init__(self, ttl: float = SESSION_TTL, max_sessions: int = MAX_SESSIONS) -> None:
        self.ttl = ttl
        self.max_sessions = max_sessions
        self.sessions: OrderedDict[str, SearchSession] = OrderedDict()
        self._next_sweep = 0.0

    async def add(self, session: SearchSession) -> None:
        self.put(session)

    async def get(self, session_id: str, consortium: Consortium | None = None
                  ) -> SearchSession | None:
        return self.lookup(session_id)

    def live(self) -> list[SearchSession]:
        return list(self.sessions.values())

    # The synchronous core (RedisStore keeps its local sessions in one of these too).

    def put(self, session: SearchSession) -> None:
        self.expire()
        self.sessions[session.id] = session
        self.sessions.move_to_end(session.id)

    def lookup(self, session_id: str) -> SearchSession | None:
        self.expire()
        session = self.sessions.get(session_id)
        if session is not None:
            self.sessions.move_to_end(session_id)
            session.last_access = time.monotonic()
        return session

    def expire(self) -> None:
        now = time.monotonic()
        # The TTL is minutes: looking at every session once a second is plenty (a scan on
        # every lookup cost ~3% of a busy web process with a full store).
        if now >= self._next_sweep:
            self._next_sweep = now + min(EXPIRE_INTERVAL, self.ttl / 4)
            self._drop_stale(now)
        while len(self.sessions) > self.max_sessions:
            _sid, oldest = self.sessions.popitem(last=False)
            if oldest.task is not None and not oldest.task.done():
                oldest.task.cancel()

    def _drop_stale(self, now: float) -> None:
        for sid, session in list(self.sessions.items()):
            # A search still running here stays; one run elsewhere (no task) may go.
            if now - session.last_access > self.ttl and (session.done or session.task is None):
                del self.sessions[sid]


def store_from_env(environ: Mapping[str, str] = os.environ, *, ttl: float = SESSION_TTL,
                   max_sessions: int = MAX_SESSIONS) -> SessionStore:
    """RedisStore when ``BALIS_REDIS_URL`` is set (``redis://host:6379/0``), else
    MemoryStore."""
    url = environ.get(REDIS_URL_VARIABLE, "").strip()
    if url:
        return RedisStore(url, ttl, max_sessions=max_sessions)
    return MemoryStore(ttl, max_sessions)


# Below the names it builds on (it imports this module): the Redis half of the store.
from broker.search.redis_store import RedisStore  # noqa: E402
