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
import logging
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass

import aiohttp
from lxml import etree

from broker.config import Library
from broker.cql import Node
from broker.errors import Diagnostic, ProtocolError
from broker.pqf import parse_pqf
from connectors.sru import SruConnector
from connectors.z3950 import pdu
from connectors.z3950.client import Z3950Client
from connectors.z3950.connector import _python_charset
from connectors.z3950.rpn import encode_pqf, encode_query

logger = logging.getLogger(__name__)

# Bib-1 27 "result set no longer exists", 30 "specified result set does not exist".
_RESULT_SET_GONE = {27, 30}


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

    async def _drop(self, task: asyncio.Task) -> None:
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
    async def _request(self, start: int, count: int) -> RawPage: ...

    async def close(self) -> None:
        await self.reset()


class Z3950Pager(Pager):
    def __init__(self, library: Library, query: Node | str, **kwargs) -> None:
        super().__init__(library, query, **kwargs)
        self._syntax = self.config.record_syntax or (
            "unimarc" if self.config.format == "unimarc" else "usmarc")
        self.kind = "marcxml" if self._syntax == "xml" else "iso2709"
        self._native = parse_pqf(query) if isinstance(query, str) else None
        self._client: Z3950Client | None = None

    def _encoded(self, charset: str) -> bytes:
        if self._native is not None:
            return encode_pqf(self._native, charset)
        assert not isinstance(self.query, str)
        return encode_query(self.query, self.config.indexes, charset)

    async def search(self) -> int:
        """(Re)open the association and run the query: the hit count."""
        if self._client is not None:
            await self._client.close(send=False)
        client = Z3950Client(self.config.host, self.config.port, self.config.database,
                             charset=_python_charset(self.config.encoding),
                             timeout=self.config.timeout)
        self._client = client
        await client.open()
        self.hits = await client.search(self._encoded(client.term_charset))
        return self.hits

    async def _request(self, start: int, count: int) -> RawPage:
        if self._client is None or not self._client.is_open or self.hits is None:
            logger.info("%s: searching (again) before reading from %d", self.library.id, start)
            await self.search()
        try:
            result = await self._present(start, count)
        except Diagnostic as exc:
            if exc.code not in _RESULT_SET_GONE:
                raise
            logger.info("%s: the server dropped the result set (%s); searching again",
                        self.library.id, exc)
            await self.search()
            result = await self._present(start, count)
        items = tuple(_z3950_item(record) for record in result.records)
        assert self.hits is not None
        return RawPage(self.hits, items)

    async def _present(self, start: int, count: int) -> pdu.PresentResult:
        assert self._client is not None and self.hits is not None
        count = max(0, min(count, self.hits - start + 1))
        if count == 0:
            return pdu.PresentResult(0, start, 0, (), ())
        return await self._client.present(start, count, syntax=self._syntax,
                                          element_set=self.config.element_set)

    async def reset(self) -> None:
        await super().reset()
        client, self._client = self._client, None
        if client is not None:
            await client.close(send=False)

    async def close(self) -> None:
        await Pager.reset(self)
        client, self._client = self._client, None
        if client is not None:
            await client.close()


def _z3950_item(record: pdu.RetrievedRecord) -> RawItem:
    if record.diagnostic is not None:
        detail = record.diagnostic.addinfo.decode("utf-8", "replace").strip()
        why = record.diagnostic.message + (f": {detail}" if detail else "")
        return RawItem(record.position, None, f"the server sent a diagnostic: {why}")
    if not record.data:
        return RawItem(record.position, None, "the server sent an empty record")
    return RawItem(record.position, record.data)


class SruPager(Pager):
    kind = "marcxml"

    def __init__(self, library: Library, query: Node | str,
                 session: aiohttp.ClientSession | None = None, **kwargs) -> None:
        super().__init__(library, query, **kwargs)
        self._connector = SruConnector(library, session)
        self._cql = query if isinstance(query, str) else self._connector.query_string(query)

    async def search(self) -> int:
        await self.limiter.acquire()
        response = await self._connector.fetch_raw(self._cql, 1, 0)
        if response.diagnostics:
            raise response.diagnostics[0]
        self.hits = response.hits
        return self.hits

    async def _request(self, start: int, count: int) -> RawPage:
        response = await self._connector.fetch_raw(self._cql, start, count)
        if response.diagnostics and not response.records:
            raise response.diagnostics[0]
        for diagnostic in response.diagnostics:
            logger.warning("%s: %s", self.library.id, diagnostic)
        items = []
        for position, element, why in response.records:
            if element is None:
                items.append(RawItem(position, None, why))
            else:
                items.append(RawItem(position, etree.tostring(element, encoding="utf-8")))
        if not items and start <= response.hits:
            raise ProtocolError(f"no records at position {start} of {response.hits}")
        self.hits = response.hits
        return RawPage(response.hits, tuple(items))

    async def close(self) -> None:
        await super().close()
        await self._connector.close()


def create_pager(library: Library, query: Node | str, *, limiter: RateLimiter | None = None,
                 session: aiohttp.ClientSession | None = None) -> Pager:
    """The pager for a library's protocol."""
    if library.connector is None:
        raise ValueError(f"{library.id} is not searchable (no connector)")
    if library.connector.protocol == "sru":
        return SruPager(library, query, session, limiter=limiter)
    return Z3950Pager(library, query, limiter=limiter)
