"""Pages of raw records for batch harvests: one query's result set, read in order.

``Connector.search`` gives readers normalized records; a harvest wants each record as the
server sent it, with its position, so that it can write, checkpoint and resume exactly.
A pager runs one query once (Z39.50: one result set on one association, presented in
chunks, searched again only if the server dropped it; SRU: ``startRecord`` paging) and asks
for the next page as soon as one arrives, so the server works while the harvest writes.
Requests wait for a ``RateLimiter``; the harvest decides about retries.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass

from broker.kernel.config import Library
from broker.kernel.cql import Node


@dataclass(frozen=True, slots=True)
class RawItem:
    """One position of the result set: the record's bytes, or why there are none."""

    position: int
    data: bytes | None  # ISO 2709 or MARCXML (see ``Pager.kind``)
    problem: str | None = None


@dataclass(frozen=True, slots=True)
class RawPage:
    hits: int
    items: tuple[RawItem, ...]


class RateLimiter:
    """At most ``rate`` requests a second (None: no limit), spaced evenly."""

    def __init__(self, rate: float | None) -> None:
        self.interval = 1.0 / rate if rate else 0.0
        self._next = 0.0

    def try_acquire(self) -> bool:
        now = time.monotonic()
        if now < self._next:
            return False
        self._next = max(now, self._next) + self.interval
        return True

    async def acquire(self) -> None:
        while not self.try_acquire():
            await asyncio.sleep(max(0.0, self._next - time.monotonic()))


class Pager(ABC):
    """One query's result set at one library. ``query`` is the broker's CQL tree, or a
    string in the library's own language (SRU: its CQL; Z39.50: PQF)."""

    kind = "iso2709"  # what RawItem.data holds: "iso2709" or "marcxml"

    def __init__(self, library: Library, query: Node | str, *,
                 limiter: RateLimiter | None = None) -> None:
        if library.connector is None:
            raise ValueError(f"{library.id} is not searchable (no connector)")
        self.library = library
        self.config = library.connector
        self.query = query
        self.limiter = limiter or RateLimiter(None)
        self.hits: int | None = None
        self._pending: tuple[int, int, asyncio.Task[RawPage]] | None = None

    async def fetch(self, start: int, count: int) -> RawPage:
        """Records ``start`` .. ``start + count - 1`` (fewer if the server sends fewer)."""
        pending, self._pending = self._pending, None
        if pending is not None and pending[:2] == (start, count):
            page = await pending[2]
        else:
            if pending is not None:
                await self._drop(pending[2])
            await self.limiter.acquire()
            page = await self._request(start, count)
        following = start + len(page.items)
        if page.items and following <= page.hits and self.limiter.try_acquire():
            task = asyncio.create_task(self._request(following, count))
            self._pending = (following, count, task)
            await asyncio.sleep(0)  # let it send its request before we get busy
        return page

    async def _drop(self, task: asyncio.Task[RawPage]) -> None:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        await self.reset()

    async def reset(self) -> None:
        """Forget the connection (after a fault): the next fetch starts afresh."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending[2].cancel()
            with contextlib.suppress(BaseException):
                await pending[2]

    @abstractmethod
    async def search(self) -> int:
        """Run the query (again, after a fault): the library's hit count."""

    @abstractmethod
    async def _request(self, start: int, count: int) -> RawPage: ...

    async def close(self) -> None:
        await self.reset()
