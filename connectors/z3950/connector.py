"""The Z39.50 connector: a member library's catalogue over Z39.50, with reusable connections.

Idle associations are kept for the next search (servers may close them meanwhile: a reused
one that turns out dead is replaced once, transparently). The association that ran a query
keeps its result set, so fetching the next page presents from it without searching again.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace

from broker.kernel.config import Library
from broker.kernel.cql import Node
from broker.kernel.errors import Diagnostic, ProtocolError, Unreachable, UnsupportedQuery
from connectors.base import Connector, SearchPage
from connectors.z3950 import apdu, pdu
from connectors.z3950.client import Z3950Client
from connectors.z3950.opac import OpacCopy, bibliographic_marc, opac_copies, with_circulation
from connectors.z3950.rpn import encode_query
from marc import Record, read_bytes
from marc.model import RawMarc

logger = logging.getLogger(__name__)

PRESENT_CHUNK = 100  # records per Present request
MAX_IDLE = 2  # idle associations kept per library


class Z3950Connector(Connector):
    def __init__(self, library: Library, *, max_connections: int = 4) -> None:
        super().__init__(library)
        self._idle: list[Z3950Client] = []
        self._slots = asyncio.Semaphore(max_connections)
        # gb18030 and marc-8 libraries send records in that charset; utf-8 (the default)
        # lets the reader check each record's bytes, which also catches MARC-8.
        self._record_encoding = "auto" if self.config.encoding == "utf-8" else self.config.encoding
        self._syntax = self.config.record_syntax or (
            "unimarc" if self.config.format == "unimarc" else "usmarc")

    def _new_client(self) -> Z3950Client:
        return Z3950Client(self.config.host, self.config.port, self.config.database,
                           charset=python_charset(self.config.encoding),
                           timeout=self.config.timeout)

    async def search(self, query: Node, *, start: int = 1, count: int | None = None
                     ) -> SearchPage:
        count = self.config.max_records if count is None else count
        async with self._slots:
            client, reused = self._take_idle(query)
            try:
                try:
                    page = await self._search_on(client, query, start, count)
                except Unreachable:
                    if not reused:
                        raise
                    # The server dropped the idle association: initialise a new one, once.
                    logger.info("%s: idle connection was closed; reconnecting",
                                self.library.id)
                    await client.close(send=False)
                    client = self._new_client()
                    page = await self._search_on(client, query, start, count)
            except (Diagnostic, UnsupportedQuery):
                await self._give_back(client)  # the association itself is fine
                raise
            except BaseException:
                await client.close(send=False)
                raise
            await self._give_back(client)
            return page

    async def _search_on(self, client: Z3950Client, query: Node, start: int, count: int
                         ) -> SearchPage:
        if not client.is_open:
            await client.open()
        encoded = encode_query(query, self.config.indexes, client.term_charset)
        if client.last_query == encoded:
            hits = client.last_hits
        else:
            hits = await client.search(encoded)
        records: list[Record] = []
        problems: list[str] = []
        position, last = start, min(hits, start + count - 1)
        present = {"syntax": self._syntax, "element_set": self.config.element_set}
        if position <= last:
            await client.send_present(position, min(PRESENT_CHUNK, last - position + 1),
                                      **present)
        while position <= last:
            try:
                result = await client.receive_present(position)
            except Diagnostic as exc:
                if exc.code == 13 and records:
                    break  # the result set shrank under us: keep what we have
                raise
            if not result.records:
                break
            following = position + len(result.records)
            if following <= last:
                # Ask for the next chunk before reading this one: the server fetches while
                # we decode and normalize.
                await client.send_present(following,
                                          min(PRESENT_CHUNK, last - following + 1), **present)
            for number, item in enumerate(result.records, start=1):
                records.extend(self._records_of(item, problems))
                if number % 10 == 0:
                    await asyncio.sleep(0)  # let other libraries' answers through
            position = following
        return SearchPage(hits, start, tuple(records), tuple(problems))

    def _records_of(self, item: pdu.RetrievedRecord, problems: list[str]) -> list[Record]:
        if item.diagnostic is not None:
            detail = item.diagnostic.addinfo.decode("utf-8", "replace")
            problems.append(f"record {item.position}: {item.diagnostic.message}"
                            + (f": {detail}" if detail else ""))
            return []
        data = item.data
        copies: tuple[OpacCopy, ...] = ()
        if data and item.syntax == apdu.SYNTAX["opac"]:
            # A member configured for OPAC (or answering it anyway): the MARC inside is
            # the record, and each copy's circulation is laid over the MARC's holdings.
            try:
                copies = opac_copies(data, python_charset(self.config.encoding))
                data = bibliographic_marc(data)[1]
            except ProtocolError as exc:
                problems.append(f"record {item.position}: {exc}")
                return []
        if not data:
            problems.append(f"record {item.position}: empty record")
            return []
        entries = read_bytes(data, flavour=self.config.format,
                             encoding=self._record_encoding)
        raw = RawMarc(data, self.config.format, self._record_encoding)
        records = self.normalize_entries(entries, item.position, problems, raw)
        if copies:
            records = [_circulated(r, copies, self.library.id) for r in records]
        return records

    def _take_idle(self, query: Node) -> tuple[Z3950Client, bool]:
        """An idle association, preferring the one whose result set holds this query."""
        encoded = None
        for i, client in enumerate(self._idle):
            if encoded is None:
                try:
                    encoded = encode_query(query, self.config.indexes, client.term_charset)
                except Exception:  # the search itself will report it
                    break
            if client.last_query == encoded:
                return self._idle.pop(i), True
        if self._idle:
            return self._idle.pop(), True
        return self._new_client(), False

    async def _give_back(self, client: Z3950Client) -> None:
        # An association with an answer still on its way would hand it to the next search.
        if client.is_open and not client.awaiting and len(self._idle) < MAX_IDLE:
            self._idle.append(client)
        else:
            await client.close()

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        await asyncio.gather(*(client.close() for client in idle), return_exceptions=True)


def _circulated(record: Record, copies: tuple[OpacCopy, ...], library: str) -> Record:
    """``record`` with the OPAC answer's availability, and any call number only it gave."""
    held = with_circulation(record.holdings, copies, library)
    calls = tuple(dict.fromkeys([*record.call_numbers,
                                 *(h.call_number for h in held if h.call_number)]))
    return replace(record, holdings=held, call_numbers=calls)


def python_charset(encoding: str) -> str:
    # Terms in MARC-8 are only safe as ASCII; Python has no MARC-8 encoder.
    return "ascii" if encoding == "marc-8" else encoding
