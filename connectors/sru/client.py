"""The SRU connector: searchRetrieve over HTTP GET, versions 1.1, 1.2 and 2.0.

Responses are read by local element names, so the three versions' namespaces (and the
diagnostics' namespaces) need no special cases. Bodies are read up to a size cap and
parsed without entity resolution or network access. A body that is not an SRU response
(Zebra answers an unknown database with an HTML 404 page) is a clear error.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import aiohttp
from lxml import etree

from broker.kernel.config import Library
from broker.kernel.cql import Boolean, Node, to_cql
from broker.kernel.errors import (
    ConnectorTimeout,
    Diagnostic,
    ProtocolError,
    Unreachable,
    UnsupportedQuery,
)
from connectors.base import Connector, SearchPage
from connectors.sru.diagnostics import read_diagnostic, read_diagnostics
from connectors.sru.xml import child_text, find_child, local_name
from connectors.z3950.client import os_reason
from marc.flavour import AUTO, canonical_flavour
from marc.marcxml import element_to_record, is_marc, safe_parser
from marc.model import RawMarc, Record
from marc.normalization import normalize

logger = logging.getLogger(__name__)

MAX_RESPONSE = 32 * 1024 * 1024
DEFAULT_INDEXES = {
    "any": "cql.serverChoice", "title": "dc.title", "author": "dc.creator",
    "subject": "dc.subject", "isbn": "bath.isbn", "issn": "bath.issn",
    "publisher": "dc.publisher", "year": "dc.date",
    # call numbers have no common CQL index: a library that supports them says which.
}


@dataclass(frozen=True, slots=True)
class SruResponse:
    hits: int
    records: tuple[tuple[int, etree._Element | None, str | None], ...]  # position, MARC, why
    diagnostics: tuple[Diagnostic, ...]


class SruConnector(Connector):
    def __init__(self, library: Library, session: aiohttp.ClientSession | None = None) -> None:
        super().__init__(library)
        self._session = session
        self._own_session = session is None
        indexes = dict(DEFAULT_INDEXES)
        indexes.update(self.config.indexes)
        self._indexes = indexes
        self._flavour = canonical_flavour(self.config.format)

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(limit_per_host=4)
            self._session = aiohttp.ClientSession(connector=connector)
        return self._session

    def query_string(self, query: Node) -> str:
        missing = _unmapped(query, self._indexes)
        if missing:
            raise UnsupportedQuery(f"this library's catalogue cannot be searched by {missing}")
        return to_cql(query, self._indexes)

    def params(self, query: Node, start: int, count: int) -> dict[str, str]:
        return self.cql_params(self.query_string(query), start, count)

    def cql_params(self, cql: str, start: int, count: int) -> dict[str, str]:
        """The searchRetrieve parameters for a query already in the server's own CQL."""
        version = self.config.sru_version
        params = {"version": version, "operation": "searchRetrieve",
                  "query": cql, "startRecord": str(start),
                  # Always sent: Zebra's default is 0 records.
                  "maximumRecords": str(count), "recordSchema": self.config.record_schema}
        if version.startswith("2"):
            params["recordXMLEscaping"] = "xml"
            params["queryType"] = "cql"
        else:
            params["recordPacking"] = "xml"
        return params

    async def search(self, query: Node, *, start: int = 1, count: int | None = None
                     ) -> SearchPage:
        count = self.config.max_records if count is None else count
        params = self.params(query, start, count)
        body = await self._get(params)
        response = parse_response(body)
        if response.diagnostics and not response.records:
            raise response.diagnostics[0]
        records: list[Record] = []
        problems: list[str] = []
        for position, element, why in response.records:
            if element is None:
                problems.append(f"record {position}: {why}")
                continue
            found = element_to_record(element, flavour=self._flavour)
            if found.record is None:
                problems.append(f"record {position}: {'; '.join(found.problems)}")
                continue
            raw = RawMarc(etree.tostring(element, encoding="utf-8"), self.config.format,
                          "utf-8")
            records.append(normalize(found.record, flavour=found.flavour or AUTO,
                                     library=self.library.id, warnings=found.problems,
                                     source=raw))
            if len(records) % 10 == 0:
                await asyncio.sleep(0)  # let other libraries' answers through
        return SearchPage(response.hits, start, tuple(records), tuple(problems))

    async def fetch_raw(self, cql: str, start: int, count: int) -> SruResponse:
        """One searchRetrieve in the server's own CQL, records left as MARCXML elements
        (for batch harvests, which keep what the server sent)."""
        return parse_response(await self._get(self.cql_params(cql, start, count)))

    async def _get(self, params: dict[str, str]) -> bytes:
        url = self.config.url
        timeout = aiohttp.ClientTimeout(total=self.config.timeout)
        try:
            async with self._client().get(url, params=params, timeout=timeout) as reply:
                body = await _read_capped(reply)
                kind = reply.headers.get("Content-Type", "")
                if reply.status != 200 and not _looks_like_xml(body):
                    raise ProtocolError(
                        f"HTTP {reply.status} {reply.reason or ''} from {url}: not an SRU "
                        "answer (wrong address or database name?)".replace("  ", " "))
                if "html" in kind.lower() and not _looks_like_xml(body):
                    raise ProtocolError(f"{url} answered with an HTML page, not SRU")
                return body
        except TimeoutError:
            raise ConnectorTimeout(f"no answer from {url} within "
                                   f"{self.config.timeout:g} s") from None
        except aiohttp.ClientConnectorError as exc:
            raise Unreachable(f"cannot connect to {url}: {os_reason(exc.os_error)}") from None
        except aiohttp.ClientError as exc:
            raise Unreachable(f"connection to {url} failed: {exc}") from None

    async def close(self) -> None:
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None


async def _read_capped(reply: aiohttp.ClientResponse) -> bytes:
    declared = reply.content_length
    if declared is not None and declared > MAX_RESPONSE:
        raise ProtocolError(f"the answer is {declared} bytes, over the {MAX_RESPONSE} cap")
    chunks = []
    size = 0
    async for chunk in reply.content.iter_chunked(65536):
        size += len(chunk)
        if size > MAX_RESPONSE:
            raise ProtocolError(f"the answer is larger than the {MAX_RESPONSE}-byte cap")
        chunks.append(chunk)
    return b"".join(chunks)


def _looks_like_xml(body: bytes) -> bool:
    head = body.lstrip(b"\xef\xbb\xbf \t\r\n")[:200].lower()
    return head.startswith(b"<?xml") or (head.startswith(b"<") and b"<html" not in head
                                         and b"<!doctype html" not in head)


def parse_response(body: bytes) -> SruResponse:
    """A searchRetrieveResponse of any SRU version; ProtocolError if it is not one."""
    try:
        root = etree.fromstring(body, safe_parser())
    except etree.XMLSyntaxError as exc:
        raise ProtocolError(f"the answer is not well-formed XML: {exc.msg}") from None
    name = local_name(root.tag)
    diagnostics = tuple(read_diagnostics(root))
    if name != "searchRetrieveResponse":
        if diagnostics:
            return SruResponse(0, (), diagnostics)
        raise ProtocolError(f"expected an SRU searchRetrieveResponse, got <{name}>")
    count_text = child_text(root, "numberOfRecords")
    if count_text is None or not count_text.isdigit():
        if diagnostics:
            return SruResponse(0, (), diagnostics)
        raise ProtocolError(f"numberOfRecords is missing or not a number: {count_text!r}")
    records = []
    holder = find_child(root, "records")
    for index, record in enumerate(holder if holder is not None else (), start=1):
        if local_name(record.tag) != "record":
            continue
        position = int(child_text(record, "recordPosition") or index)
        records.append((position, *_record_data(record)))
    return SruResponse(int(count_text), tuple(records), diagnostics)


def _record_data(record: etree._Element) -> tuple[etree._Element | None, str | None]:
    data = find_child(record, "recordData")
    if data is None:
        return None, "record without recordData"
    inner = [child for child in data if isinstance(child.tag, str)]
    if inner:
        first = inner[0]
        if local_name(first.tag) == "diagnostic":
            return None, str(read_diagnostic(first))
        if local_name(first.tag) == "record" and is_marc(first):
            return first, None
        return None, (f"recordData holds <{local_name(first.tag)}>, no MARC record "
                      "(is recordSchema right?)")
    text = (data.text or "").strip()
    if text.startswith("<"):
        # recordPacking=string: the MARCXML is escaped text.
        if len(text) > MAX_RESPONSE:
            return None, "escaped record over the size cap"
        try:
            root = etree.fromstring(text.encode("utf-8"), safe_parser())
        except etree.XMLSyntaxError as exc:
            return None, f"escaped record is not well-formed XML: {exc.msg}"
        if local_name(root.tag) == "record":
            return root, None
        inner_record = next(root.iter("{*}record"), None)
        if inner_record is not None:
            return inner_record, None
    return None, "recordData holds no MARC record (is recordSchema right?)"


def _unmapped(node: Node, indexes: dict[str, str]) -> str | None:
    if isinstance(node, Boolean):
        return _unmapped(node.left, indexes) or _unmapped(node.right, indexes)
    return None if node.index in indexes else node.index
