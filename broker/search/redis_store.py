"""Sessions in Redis, shared by several web processes (``BALIS_REDIS_URL``).

The owner (the process that started a search) keeps its live session and writes a
snapshot of its state (broker/search/state.py) after every change: each library answering
or failing, each page fetched. A process asked for a session it does not have loads the
snapshot and rebuilds a ``SearchSession`` from it: records through ``Record.from_dict``,
clusters by feeding the same ``Merger`` the records in their original order, so cluster
ids and their order come out identical. A rebuilt session serves any page, sort and facet
choice, and ``fetch_more`` through its own process's connectors (the same query from each
library's ``next_start``), writing the new state back. Each process also keeps the
sessions it has used in a local ``MemoryStore``, and reloads one when the stored revision
is newer than its copy (another process fetched more).

Redis keys (prefix ``balis:session:`` by default):

``<prefix><id>``
    A hash: ``version`` (the revision, counted up by every write) and ``data`` (the state,
    JSON). It expires ``ttl`` after the last write or read by any process (PEXPIRE on every
    access): a finished session lives ``ttl`` after its last use. One that is not finished
    cannot stay so: whoever reads it past its deadline ends it (below). No index of
    sessions is kept: the number of keys is bounded by the TTL. (For a hard bound on
    memory, run Redis with ``maxmemory`` and a ``volatile-*`` policy: an evicted session
    is one that has expired early.)
``<prefix><id>:marc``
    A hash of the records' raw MARC: field ``library \\x1f record id``, value the bytes as
    the library sent them with their flavour and encoding (``state.encode_source``). The
    owner adds the records it has not stored yet before each state write; it expires with
    the session's key. A MARC view on another process fetches only its record's fields.
``<prefix><id>:owner``
    The owner's lease: its token (host, pid, a random part), expiring ``lease`` seconds
    after the owner last renewed it. The owner renews it every ``lease / 3`` seconds while
    the first round runs and deletes it when done (cancelled, it lets it lapse).
``<prefix><id>:fetch``
    The lock a process holds while it fetches more for the session; it expires by itself.

A session not done whose lease has gone (its owner was killed, or stopped) is *taken
over* by the first reader that sets the lease to its own token (``SET NX``: one taker):
it asks the libraries still pending again, with the time left to the deadline, and
becomes the writer. With less than ``TAKEOVER_MIN`` seconds left it is not worth asking
again: the pending libraries end as ``timeout`` (reason ``interrupted``). A session whose
owner is alive but is still not done ``GRACE`` seconds after its deadline is ended the
same way (reason ``timeout``) by its reader, so no reader waits past deadline + grace.
Ending is a compare-and-set like every write: two processes ending it at once agree (the
loser reloads the winner's state).

Who writes: the owner, until the first round is done (another process's ``fetch_more``
does nothing before that, as the owner is still writing); after that, whoever holds the
fetch lock, having first reloaded the newest state. Every write is a compare-and-set on
the revision, so a stale copy never overwrites a newer state: it loses, logs a warning and
reloads on its next use.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import socket
import time
import weakref
from collections.abc import AsyncIterator
from typing import Any

from broker.kernel.config import Consortium
from broker.search.merge import Cluster
from broker.search.session import FailureReason, SearchSession
from broker.search.state import (
    apply_state,
    decode_source,
    dump_session,
    encode_source,
    give_source,
    load_session,
    source_key,
)
from broker.search.store import MAX_SESSIONS, SESSION_TTL, MemoryStore, SessionStore

logger = logging.getLogger(__name__)

FETCH_LOCK_TIMEOUT = 120.0  # seconds one process may hold a session's fetch lock
OWNER_LEASE = 3.0  # seconds an owner's lease lasts unless renewed
TAKEOVER_MIN = 1.0  # seconds left to the deadline below which a taker does not ask again
GRACE = 2.0  # seconds past the deadline a live owner has before a reader ends its search
END_TRIES = 5  # compare-and-set rounds when ending a session others are writing too

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

# Renew the lease if it is ours or has lapsed with nobody taking it; 0 when another
# process holds it now.
_RENEW = """
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""

# Delete the lease if it is still ours.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

_GONE_ERROR = ("the server running this search stopped before the library answered, "
               "too close to the search's deadline to ask it again")
_LATE_ERROR = ("the search's overall deadline passed while this library was answering "
               "(the server running the search did not end it in time)")


class RedisStore(SessionStore):
    def __init__(self, url: str, ttl: float = SESSION_TTL, *,
                 max_sessions: int = MAX_SESSIONS, prefix: str = "balis:session:",
                 fetch_lock_timeout: float = FETCH_LOCK_TIMEOUT,
                 lease: float = OWNER_LEASE) -> None:
        import redis.asyncio  # here: the in-memory store must not pay for importing it
        import redis.exceptions

        self.url = url
        self.ttl = ttl
        self.prefix = prefix
        self.fetch_lock_timeout = fetch_lock_timeout
        self.lease = lease
        # Who this store is, in the owner leases it holds: one per process (and store).
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self.redis = redis.asyncio.Redis.from_url(url)  # connects on first use
        self._errors = redis.exceptions.RedisError
        self._write_script = self.redis.register_script(_WRITE)
        self._renew_script = self.redis.register_script(_RENEW)
        self._release_script = self.redis.register_script(_RELEASE)
        self.local = MemoryStore(ttl, max_sessions)  # the sessions this process holds
        self._write_locks: weakref.WeakKeyDictionary[SearchSession, asyncio.Lock] = \
            weakref.WeakKeyDictionary()
        # The MARC fields each session has in Redis already (written or read by us).
        self._marc_stored: weakref.WeakKeyDictionary[SearchSession, set[str]] = \
            weakref.WeakKeyDictionary()
        self._writes: set[asyncio.Future] = set()

    def key(self, session_id: str) -> str:
        return f"{self.prefix}{session_id}"

    @property
    def _ttl_ms(self) -> int:
        return max(1, round(self.ttl * 1000))

    @property
    def _lease_ms(self) -> int:
        return max(1, round(self.lease * 1000))

    # --- writing

    async def add(self, session: SearchSession) -> None:
        self.local.put(session)
        try:  # the lease first: no reader sees the session without an owner
            await self.redis.set(f"{self.key(session.id)}:owner", self.owner,
                                 px=self._lease_ms)
        except self._errors as exc:
            logger.warning("session %s: no owner lease in Redis: %s", session.id, exc)
        await self.save(session)

    async def save(self, session: SearchSession) -> None:
        # Shielded: a search cancelled at its deadline must not leave a write half done
        # (the revision would be counted in Redis but not here).
        write = asyncio.ensure_future(self._write(session))
        self._writes.add(write)
        write.add_done_callback(self._writes.discard)
        await asyncio.shield(write)

    async def _write(self, session: SearchSession) -> bool:
        """Write the state (compare-and-set); False when a newer one was stored, or Redis
        could not be reached."""
        lock = self._write_locks.setdefault(session, asyncio.Lock())
        async with lock:  # one write at a time per session, each with the newest state
            key = self.key(session.id)
            data = json.dumps(dump_session(session), ensure_ascii=False,
                              separators=(",", ":"))
            try:
                # The MARC before the state that names its records: a reader never sees a
                # record whose MARC is still to come.
                await self._write_marc(session)
                written, version = await self._write_script(
                    keys=[key], args=[session.version, data, self._ttl_ms])
            except self._errors as exc:
                logger.warning("session %s not saved to Redis: %s", session.id, exc)
                return False
            if written:
                session.version = int(version)
                return True
            logger.warning("session %s: revision %s in Redis is newer than this copy's "
                           "(%s); the stored state wins", session.id, version,
                           session.version)
            return False

    async def _write_marc(self, session: SearchSession) -> None:
        stored = self._marc_stored.setdefault(session, set())
        new: dict[str, bytes] = {}
        for library, record in session.arrivals:
            field = source_key(library, record)
            if field is None or field in stored or field in new:
                continue
            value = encode_source(record)
            if value is not None:
                new[field] = value
        marc = f"{self.key(session.id)}:marc"
        async with self.redis.pipeline(transaction=False) as pipe:
            if new:
                pipe.hset(marc, mapping=new)  # type: ignore[arg-type]
            pipe.pexpire(marc, self._ttl_ms)
            await pipe.execute()
        stored.update(new)

    # --- reading

    async def get(self, session_id: str, consortium: Consortium) -> SearchSession | None:
        local = self.local.lookup(session_id)
        key = self.key(session_id)
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.hget(key, "version")
                pipe.pexpire(key, self._ttl_ms)  # a use: the session lives ttl from now
                pipe.pexpire(f"{key}:marc", self._ttl_ms)
                stored, *_refreshed = await pipe.execute()
            if stored is None:
                if local is not None:  # gone from Redis while still in use here
                    self._marc_stored.pop(local, None)
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
        if session.task is not None and not session.task.done():
            return  # its first round runs here: this process is its writer
        try:
            # Only the revision, to poll cheaply: the state is loaded when it is newer.
            stored = await self.redis.hget(self.key(session.id), "version")
            if stored is not None and int(stored) > session.version:
                await self._reload(session)
        except self._errors as exc:
            logger.warning("session %s: Redis not reachable (%s); using this process's copy",
                           session.id, exc)

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

    async def attach_sources(self, session: SearchSession, cluster: Cluster) -> None:
        wanted = [(library, record, field) for library, record in cluster.records
                  if record.source is None
                  and (field := source_key(library, record)) is not None]
        if not wanted:
            return
        try:
            values = await self.redis.hmget(f"{self.key(session.id)}:marc",
                                            [field for *_, field in wanted])
        except self._errors as exc:
            logger.warning("session %s: MARC not read from Redis: %s", session.id, exc)
            return
        for (library, record, field), value in zip(wanted, values, strict=True):
            source = decode_source(value) if isinstance(value, bytes) else None
            if source is None:
                continue  # not stored (its owner had none), or expired
            give_source(session, cluster, library, record, source)
            self._marc_stored.setdefault(session, set()).add(field)

    # --- the owner's lease, and the searches whose owner stopped

    @contextlib.asynccontextmanager
    async def running(self, session: SearchSession) -> AsyncIterator[None]:
        lease = f"{self.key(session.id)}:owner"
        renewing = asyncio.create_task(self._renew(session.id, lease),
                                       name=f"lease-{session.id}")
        try:
            yield
        finally:
            renewing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewing
            # Done: the lease goes at once. Cancelled (this process is stopping), it is
            # left to lapse: a drain saves the search's final state right after, before
            # another process could take it over and ask its libraries again.
            if session.done:
                with contextlib.suppress(self._errors):
                    await self._release_script(keys=[lease], args=[self.owner])

    async def _renew(self, session_id: str, lease: str) -> None:
        while True:
            try:
                held = await self._renew_script(keys=[lease], args=[self.owner, self._lease_ms])
            except self._errors as exc:
                logger.warning("session %s: owner lease not renewed: %s", session_id, exc)
            else:
                if not held:
                    logger.warning("session %s: another process took this search over "
                                   "(this one was too slow to renew its lease)", session_id)
                    return
            await asyncio.sleep(self.lease / 3)

    async def adopt(self, session: SearchSession) -> bool:
        if session.done or (session.task is not None and not session.task.done()):
            return False
        lease = f"{self.key(session.id)}:owner"
        left = session.deadline - time.monotonic()
        try:
            alive = bool(await self.redis.exists(lease))
            if alive:
                if left > -GRACE:
                    return False
                await self._end(session, "timeout", _LATE_ERROR)
                return False
            if left <= TAKEOVER_MIN:
                await self._end(session, "interrupted", _GONE_ERROR)
                return False
            if not await self.redis.set(lease, self.owner, nx=True, px=self._lease_ms):
                return False  # another reader took it over first
            await self._reload(session)  # the newest state, now that nobody else writes
        except self._errors as exc:
            logger.warning("session %s: Redis not reachable (%s)", session.id, exc)
            if left <= -GRACE:  # the reader is not kept waiting by Redis either
                session.end_pending("timeout", _LATE_ERROR)
            return False
        if session.done:  # its owner finished after all, just before the lease went
            with contextlib.suppress(self._errors):
                await self._release_script(keys=[lease], args=[self.owner])
            return False
        pending = [lid for lid, state in session.states.items() if not state.finished]
        logger.warning("session %s: the process running it stopped; taking it over: "
                       "asking %s again with %.1f s left", session.id, ", ".join(pending),
                       left)
        return True

    async def _end(self, session: SearchSession, reason: FailureReason, error: str) -> None:
        """End the first round: every library still pending gives up as ``timeout`` with
        ``reason``, written with compare-and-set (another process may end it too)."""
        for _ in range(END_TRIES):
            await self._reload(session)
            if session.done:
                return  # ended by its owner, or by another reader
            given_up = session.end_pending(reason, error)
            if await self._write(session):
                logger.warning("session %s ended past its deadline (%s): %s gave no answer",
                               session.id, reason, ", ".join(given_up))
                return
            # Lost to a newer state: reloaded next round (a state with the libraries
            # still pending is ended again; an ended one is taken as it is).
            session.finished_at = None

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
