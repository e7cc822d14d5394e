"""Where search sessions live between a reader's requests: in this process, or in Redis.

A session is a live object with asyncio parts (its search task, its locks, the event its
waiters sleep on), so the process that starts a search *owns* it and runs its first round
to the end. What other processes need is the session's state, which is plain data:

``MemoryStore`` (the default)
    Sessions in an ordered dict in this process. A session expires ``ttl`` seconds after
    its last use once its libraries are done; past ``max_sessions`` the least recently used
    goes (a search still running is cancelled).
``RedisStore(url, ttl)`` (``store_from_env()`` picks it when ``BALIS_REDIS_URL`` is set)
    Several web processes share sessions. The owner keeps its live session and writes a
    snapshot of its state after every change (each library answering or failing, each page
    fetched). A process asked for a session it does not have loads the snapshot and
    rebuilds a ``SearchSession`` from it: records through ``Record.from_dict``, clusters by
    feeding the same ``Merger`` the records in their original order, so cluster ids and
    their order come out identical. A rebuilt session serves any page, sort and facet
    choice, and ``fetch_more`` through its own process's connectors (the same query from
    each library's ``next_start``), writing the new state back. Each process also keeps
    the sessions it has used in a local ``MemoryStore``, and reloads one when the stored
    revision is newer than its copy (another process fetched more).

Redis keys (prefix ``balis:session:`` by default):

``<prefix><id>``
    A hash: ``version`` (the revision, counted up by every write) and ``data`` (the state,
    JSON, below). It expires ``ttl`` after the last write or read by any process (PEXPIRE
    on every access). No index of sessions is kept: the number of keys is bounded by the
    TTL, i.e. by the searches started or used in the last ``ttl`` seconds. (For a hard
    bound on memory, run Redis with ``maxmemory`` and a ``volatile-*`` policy: an evicted
    session is one that has expired early.)
``<prefix><id>:fetch``
    The lock a process holds while it fetches more for the session; it expires by itself.

Who writes: the owner, until the first round is done (another process's ``fetch_more``
does nothing before that, as the owner is still writing); after that, whoever holds the
fetch lock, having first reloaded the newest state. Every write is a compare-and-set on
the revision, so a stale copy never overwrites a newer state: it loses, logs a warning and
reloads on its next use.

The state (``"format": 1``)::

    {"format": 1, "id": ..., "query": "title=perl", "per_library": null, "timeout": null,
     "sort": "relevance" (the searcher's order; absent in older states),
     "started": 1767171600.25 (wall clock), "finished": true, "elapsed_ms": 812,
     "libraries": [{"id", "name", "status", "hits", "fetched", "elapsed_ms", "error",
                    "reason" (absent in older states), "next_start", "problems"}],
     "clusters": [{"id": "bnu:123", "records": [[arrival, library, record dict], ...]}]}

``arrival`` numbers the records in the order the merger took them (0, 1, 2...): a
rebuild feeds them in that order, which is what makes the clusters the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
import weakref
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping
from typing import Any

from broker.kernel.config import Consortium
from broker.kernel.cql import parse
from broker.kernel.literals import one_of
from broker.search.merge import Merger
from broker.search.session import FAILURE_REASONS, SearchSession
from marc import Record

logger = logging.getLogger(__name__)

SESSION_TTL = 900.0  # seconds a session lives after its last use
MAX_SESSIONS = 500  # sessions kept in one process
EXPIRE_INTERVAL = 1.0  # seconds between looks for expired sessions
FETCH_LOCK_TIMEOUT = 120.0  # seconds one process may hold a session's fetch lock
STATE_FORMAT = 1
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


# --- the stored state ---------------------------------------------------------------------


def dump_session(session: SearchSession) -> dict[str, Any]:
    """The session's state as JSON-ready data (the module docstring's format)."""
    first: dict[int, int] = {}  # record object -> the first time the merger was given it
    for n, (_library, record) in enumerate(session.arrivals):
        first.setdefault(id(record), n)
    merged = sorted(first[id(record)] for cluster in session.merger.clusters
                    for _library, record in cluster.records)
    arrival = {n: i for i, n in enumerate(merged)}  # numbered 0, 1, 2... without gaps
    finished = session.done
    return {
        "format": STATE_FORMAT,
        "id": session.id,
        "query": session.query_text,
        "per_library": session.per_library,
        "timeout": session.timeout,
        "sort": session.sort,
        "started": time.time() - (time.monotonic() - session.started),
        "finished": finished,
        "elapsed_ms": session.elapsed_ms() if finished else None,
        "libraries": [{
            "id": lid, "name": state.library.name, "status": state.status,
            "hits": state.hits, "fetched": state.fetched, "elapsed_ms": state.elapsed_ms,
            "error": state.error, "reason": state.reason, "next_start": state.next_start,
            "problems": list(state.problems),
        } for lid, state in session.states.items()],
        "clusters": [{
            "id": cluster.id,
            "records": [[arrival[first[id(record)]], library, record.as_dict()]
                        for library, record in cluster.records],
        } for cluster in session.merger.clusters],
    }


def load_session(data: Mapping[str, Any], consortium: Consortium) -> SearchSession:
    """A new SearchSession from a stored state; its libraries come from ``consortium``.

    Raises ValueError for a state this code cannot read (another format, or a library
    this process's configuration does not have).
    """
    if data.get("format") != STATE_FORMAT:
        raise ValueError(f"stored session format {data.get('format')!r}, not {STATE_FORMAT}")
    known = {lib.id: lib for lib in consortium.libraries}
    missing = [entry["id"] for entry in data["libraries"] if entry["id"] not in known]
    if missing:
        raise ValueError(f"libraries not in this configuration: {', '.join(missing)}")
    session = SearchSession(data["id"], data["query"], parse(data["query"]),
                            [known[entry["id"]] for entry in data["libraries"]],
                            per_library=data["per_library"], timeout=data["timeout"])
    session.sort = data.get("sort", "relevance")  # states saved before sorts were kept
    apply_state(session, data)
    return session


def apply_state(session: SearchSession, data: Mapping[str, Any]) -> None:
    """Make ``session`` (same id and libraries) hold the stored state."""
    session.started = time.monotonic() - (time.time() - data["started"])
    session.finished_at = (session.started + data["elapsed_ms"] / 1000
                           if data["finished"] else None)
    for entry in data["libraries"]:
        state = session.states[entry["id"]]
        state.status, state.hits, state.fetched = entry["status"], entry["hits"], entry["fetched"]
        state.elapsed_ms, state.error = entry["elapsed_ms"], entry["error"]
        state.reason = one_of(entry.get("reason"), FAILURE_REASONS)  # older states: none
        state.next_start, state.problems = entry["next_start"], list(entry["problems"])
    entries = sorted((tuple(entry) for cluster in data["clusters"]
                      for entry in cluster["records"]), key=lambda entry: entry[0])
    session.merger, session.arrivals = Merger(session.merger.aggregators), []
    for _arrival, library, record_data in entries:
        record = Record.from_dict(record_data)
        session.arrivals.append((library, record))
        session.merger.add(library, (record,))
    stored_ids = [cluster["id"] for cluster in data["clusters"]]
    if [cluster.id for cluster in session.merger.clusters] != stored_ids:
        # Only if the writer merged by other rules (another version of this code).
        logger.warning("session %s: rebuilt clusters differ from the stored ones", session.id)
    session.touch()  # wake anyone waiting on the session


# --- Redis ----------------------------------------------------------------------------------

# Write the state if the stored revision is still the one this copy was made from (or the
# key has gone); returns {1, new revision} or {0, the newer stored revision}.
_WRITE = """
local stored = redis.call('HGET', KEYS[1], 'version')
if stored and tonumber(stored) ~= tonumber(ARGV[1]) then
  return {0, tonumber(stored)}
end
local version = tonumber(ARGV[1]) + 1
redis.call('HSET', KEYS[1], 'version', version, 'data', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {1, version}
"""


class RedisStore(SessionStore):
    def __init__(self, url: str, ttl: float = SESSION_TTL, *,
                 max_sessions: int = MAX_SESSIONS, prefix: str = "balis:session:",
                 fetch_lock_timeout: float = FETCH_LOCK_TIMEOUT) -> None:
        import redis.asyncio  # here: the in-memory store must not pay for importing it
        import redis.exceptions

        self.url = url
        self.ttl = ttl
        self.prefix = prefix
        self.fetch_lock_timeout = fetch_lock_timeout
        self.redis = redis.asyncio.Redis.from_url(url)  # connects on first use
        self._errors = redis.exceptions.RedisError
        self._write_script = self.redis.register_script(_WRITE)
        self.local = MemoryStore(ttl, max_sessions)  # the sessions this process holds
        self._write_locks: weakref.WeakKeyDictionary[SearchSession, asyncio.Lock] = \
            weakref.WeakKeyDictionary()
        self._writes: set[asyncio.Future] = set()

    def key(self, session_id: str) -> str:
        return f"{self.prefix}{session_id}"

    @property
    def _ttl_ms(self) -> int:
        return max(1, round(self.ttl * 1000))

    # --- writing

    async def add(self, session: SearchSession) -> None:
        self.local.put(session)
        await self.save(session)

    async def save(self, session: SearchSession) -> None:
        # Shielded: a search cancelled at its deadline must not leave a write half done
        # (the revision would be counted in Redis but not here).
        write = asyncio.ensure_future(self._write(session))
        self._writes.add(write)
        write.add_done_callback(self._writes.discard)
        await asyncio.shield(write)

    async def _write(self, session: SearchSession) -> None:
        lock = self._write_locks.setdefault(session, asyncio.Lock())
        async with lock:  # one write at a time per session, each with the newest state
            data = json.dumps(dump_session(session), ensure_ascii=False,
                              separators=(",", ":"))
            try:
                written, version = await self._write_script(
                    keys=[self.key(session.id)], args=[session.version, data, self._ttl_ms])
            except self._errors as exc:
                logger.warning("session %s not saved to Redis: %s", session.id, exc)
                return
            if written:
                session.version = int(version)
            else:
                logger.warning("session %s: revision %s in Redis is newer than this copy's "
                               "(%s); the stored state wins", session.id, version,
                               session.version)

    # --- reading

    async def get(self, session_id: str, consortium: Consortium) -> SearchSession | None:
        local = self.local.lookup(session_id)
        key = self.key(session_id)
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.hget(key, "version")
                pipe.pexpire(key, self._ttl_ms)
                stored, _refreshed = await pipe.execute()
            if stored is None:
                if local is not None:  # gone from Redis while still in use here
                    await self.save(local)
                return local
            if local is not None:
                if int(stored) > local.version:
                    await self.refresh(local)
                return local
            loaded = await self._load(key)
        except self._errors as exc:
            if local is None:
                raise
            logger.warning("session %s: Redis not reachable (%s); using this process's copy",
                           session_id, exc)
            return local
        if loaded is None:
            return None
        version, data = loaded
        try:
            session = load_session(data, consortium)
        except (ValueError, KeyError, TypeError) as exc:
            logger.warning("session %s in Redis cannot be rebuilt here: %s", session_id, exc)
            return None
        session.version = version
        self.local.put(session)
        return session

    async def refresh(self, session: SearchSession) -> None:
        if session.fetch_lock.locked():
            return  # this process is fetching more for it, and writes when done
        await self._reload(session)

    async def _reload(self, session: SearchSession) -> None:
        if session.task is not None and not session.task.done():
            return  # its first round runs here: this process is its writer
        loaded = await self._load(self.key(session.id))
        if loaded is not None and loaded[0] > session.version:
            apply_state(session, loaded[1])
            session.version = loaded[0]

    async def _load(self, key: str) -> tuple[int, dict[str, Any]] | None:
        version, data = await self.redis.hmget(key, ["version", "data"])
        if version is None or data is None:
            return None
        return int(version), json.loads(data)

    # --- fetching more, across processes

    @contextlib.asynccontextmanager
    async def fetching(self, session: SearchSession) -> AsyncIterator[None]:
        lock = self.redis.lock(f"{self.key(session.id)}:fetch",
                               timeout=self.fetch_lock_timeout,
                               blocking_timeout=self.fetch_lock_timeout)
        try:
            held = await lock.acquire()
        except self._errors as exc:
            logger.warning("session %s: no fetch lock (%s)", session.id, exc)
            held = False
        try:
            with contextlib.suppress(self._errors):
                await self._reload(session)  # another process may have fetched more
            yield
        finally:
            if held:
                with contextlib.suppress(self._errors):
                    await lock.release()

    # --- lifetime

    def live(self) -> list[SearchSession]:
        return self.local.live()

    async def close(self) -> None:
        if self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)
        await self.redis.aclose()


def store_from_env(environ: Mapping[str, str] = os.environ, *, ttl: float = SESSION_TTL,
                   max_sessions: int = MAX_SESSIONS) -> SessionStore:
    """RedisStore when ``BALIS_REDIS_URL`` is set (``redis://host:6379/0``), else
    MemoryStore."""
    url = environ.get(REDIS_URL_VARIABLE, "").strip()
    if url:
        return RedisStore(url, ttl, max_sessions=max_sessions)
    return MemoryStore(ttl, max_sessions)
