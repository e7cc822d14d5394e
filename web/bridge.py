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
        future = asyncio.run_coroutine_threadsafe(_awaited(work(broker)), self.loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError(f"the search service did not answer in {timeout:g} s") from None

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


async def _make(factory: Callable[[], T]) -> T:
    return factory()


async def _awaited(awaitable: Awaitable[T]) -> T:
    return await awaitable
