"""Reading one SRU result set in order for a harvest (``connectors.paging.Pager``):
``startRecord`` paging over ``searchRetrieve``, each record kept as the XML it came in."""

from __future__ import annotations

import logging

import aiohttp
from lxml import etree

from broker.kernel.config import Library
from broker.kernel.cql import Node
from broker.kernel.errors import ProtocolError
from connectors.paging import Pager, RawItem, RawPage
from connectors.sru.client import SruConnector

logger = logging.getLogger(__name__)


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
