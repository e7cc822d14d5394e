"""Reading one Z39.50 result set in order for a harvest (``connectors.paging.Pager``).

One query runs once on one association and is presented in chunks; it is searched again
only if the server dropped the set or the connection.
"""

from __future__ import annotations

import logging

from broker.kernel.config import Library
from broker.kernel.cql import Node
from broker.kernel.errors import Diagnostic
from broker.kernel.pqf import parse_pqf
from connectors.paging import Pager, RawItem, RawPage
from connectors.z3950 import pdu
from connectors.z3950.client import Z3950Client
from connectors.z3950.connector import python_charset
from connectors.z3950.rpn import encode_pqf, encode_query

logger = logging.getLogger(__name__)

# Bib-1 27 "result set no longer exists", 30 "specified result set does not exist".
_RESULT_SET_GONE = {27, 30}


class Z3950Pager(Pager):
    def __init__(self, library: Library, query: Node | str, **kwargs) -> None:
        super().__init__(library, query, **kwargs)
        marc_syntax = "unimarc" if self.config.format == "unimarc" else "usmarc"
        # A harvest keeps MARC only: an OPAC member's circulation would be stale in a file.
        self._syntax = (marc_syntax if self.config.record_syntax in (None, "opac")
                        else self.config.record_syntax)
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
                             charset=python_charset(self.config.encoding),
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
