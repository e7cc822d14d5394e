"""The one place where Flask's threads meet the broker's event loop.

The broker keeps pooled connections (an aiohttp session, idle Z39.50 associations) and
live search sessions whose tasks run on an event loop. A fresh loop per request would
orphan all of that, so the web front end runs one ``Broker`` on one background thread's
loop for the life of the process, and request threads hand it coroutines through
``BrokerBridge.call``. Nothing else in web/ touches asyncio.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import TypeVar

from broker.kernel.config import Consortium
from broker.search.fanout import Broker
from broker.search.lifecycle import ConsortiumChanges, DrainReport, consortium_changes
from broker.search.store import SessionStore

logger = logging.getLogger(__name__)

T = TypeVar("T")

CLOSE_TIMEOUT = 10.0  # seconds to let the broker close its connections at shutdown


class BridgeClosed(RuntimeError):
    """The bridge was closed; no more broker calls can be made."""


class BrokerBridge:
    """A ``Broker`` on a background event loop, callable from any thread.

    Started lazily by the first call, so building an app (in tests, or a management
    command) starts no thread. ``store_factory`` is called on the loop's thread to make the
    session store (a Redis client must be created on the loop that uses it).
    """

    def __init__(self, consortium: Consortium,
                 store_factory: Callable[[], SessionStore | None] | None = None) -> None:
        self.consortium = consortium
        self._store_factory = store_factory
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._broker: Broker | None = None
        self._closed = False

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        self._start()
        assert self._loop is not None
        return self._loop

    @property
    def started(self) -> bool:
        return self._loop is not None

    def _start(self) -> None:
        if self._loop is not None:
            return
        with self._lock:
            if self._closed:
                raise BridgeClosed("the search service has been shut down")
            if self._loop is not None:
                return
            loop = asyncio.new_event_loop()
            ready = threading.Event()

            def run() -> None:
                asyncio.set_event_loop(loop)
                loop.call_soon(ready.set)
                loop.run_forever()

            thread = threading.Thread(target=run, name="balis-broker-loop", daemon=True)
            thread.start()
            ready.wait()
            store = None
            if self._store_factory is not None:
                store = asyncio.run_coroutine_threadsafe(
                    _make(self._store_factory), loop).result()
            self._broker = asyncio.run_coroutine_threadsafe(
                _make(lambda: Broker(self.consortium, store=store)), loop).result()
            self._thread, self._loop = thread, loop
            logger.info("broker loop started for %s (%d libraries)", self.consortium.name,
                        len(self.consortium.libraries))

    @property
    def broker(self) -> Broker:
        self._start()
        assert self._broker is not None
        return self._broker

    def call(self, work: Callable[[Broker], Awaitable[T]], timeout: float | None = None) -> T:
        """Run ``work(broker)`` on the broker's loop and wait for its result.

        On ``timeout`` the work is cancelled and TimeoutError raised. Exceptions from the
        work come back as they are.
        """
        broker = self.broker
        # The work runs in a copy of the calling thread's context (call_soon_threadsafe
        # copies it, and the task inherits it): the request id of its log lines and how
        # its search came in go with it (tests/web/test_ops.py checks).
        future = asyncio.run_coroutine_threadsafe(_awaited(work(broker)), self.loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError(f"the search service did not answer in {timeout:g} s") from None

    def reload(self, consortium: Consortium) -> ConsortiumChanges:
        """Give the broker a reloaded consortium (on its loop: its searches and connectors
        live there); before the first search, only remember it for the broker to come."""
        with self._lock:
            started = self._loop is not None
            if not started:
                changes = consortium_changes(self.consortium, consortium)
            self.consortium = consortium
        if not started:
            return changes
        return self.call(lambda broker: broker.reload(consortium), timeout=30)

    def drain(self, limit: float) -> concurrent.futures.Future[DrainReport | None]:
        """Start draining the broker's live searches (``Broker.drain``) on its loop, logging
        each step; the future's result is the report (None when no broker ever started)."""
        with self._lock:
            loop, broker = self._loop, self._broker
        if loop is None or broker is None:
            done: concurrent.futures.Future[DrainReport | None] = concurrent.futures.Future()
            done.set_result(None)
            logger.info("no live searches to drain")
            return done
        return asyncio.run_coroutine_threadsafe(_drain(broker, limit), loop)

    def close(self) -> None:
        """Close the broker (its connections and sessions) and stop the loop thread."""
        with self._lock:
            self._closed = True
            loop, thread, broker = self._loop, self._thread, self._broker
            self._loop = self._thread = self._broker = None
        if loop is None:
            return
        if broker is not None:
            try:
                asyncio.run_coroutine_threadsafe(broker.close(), loop).result(CLOSE_TIMEOUT)
            except Exception:  # shutting down: log it, still stop the loop
                logger.exception("closing the broker failed")
        loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(CLOSE_TIMEOUT)
        if not loop.is_running():
            loop.close()


async def _drain(broker: Broker, limit: float) -> DrainReport | None:
    running = broker.running()
    if not running:
        logger.info("no live searches to drain")
        return None
    bound = min(limit, max(broker.time_left(s) for s in running))
    logger.info("draining %d live search%s, at most %.0f s", len(running),
                "" if len(running) == 1 else "es", bound)
    report = await broker.drain(limit)
    if report.gave_up:
        logger.warning("drained %d, gave up on %d search%s after %.0f s (their pending "
                       "libraries saved as timed out)", report.drained, report.gave_up,
                       "" if report.gave_up == 1 else "es", report.seconds)
    else:
        logger.info("drained: %d live search%s finished in %.1f s", report.drained,
                    "" if report.drained == 1 else "es", report.seconds)
    return report


async def _make(factory: Callable[[], T]) -> T:
    return factory()


async def _awaited(awaitable: Awaitable[T]) -> T:
    return await awaitable
