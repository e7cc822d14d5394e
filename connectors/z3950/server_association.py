"""One association of our Z39.50 server: a client's conversation, request by request.

Its state (initialised, UTF-8 negotiated, the sizes agreed), its named result sets (the
oldest dropped beyond the server's ``max_result_sets``), and the answers: Init, Search
(records piggybacked as the client's set bounds ask), Present in the chunks the client's
message sizes allow, Delete, Sort (``server_sort``: a sortable set into a new or the same
name), Scan (``server_services.answer_scan``: a catalogue's headings, or Bib-1 1025 from
one that cannot browse), Close, and the refusals of ``server_services`` (Extended
Services...: a response with a diagnostic, never a Close). A ``Bib1`` raised while answering
becomes that answer's diagnostic; a ProtocolError or timeout ends the association with a
Close saying why.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections import OrderedDict
from dataclasses import dataclass
from typing import Protocol

from broker.kernel.cql import Node
from broker.kernel.errors import ConnectorError, ProtocolError, QueryError, UnsupportedQuery
from broker.kernel.sorting import SortError
from connectors.catalogue import (
    Catalogue,
    ResultSet,
    sortable,
)
from connectors.z3950 import apdu, ber, server_sort
from connectors.z3950 import server_pdu as spdu
from connectors.z3950 import server_present as present
from connectors.z3950 import server_services as services
from connectors.z3950.diagnostics import Bib1
from connectors.z3950.server_records import catalogue_encoding
from connectors.z3950.server_rpn import read_query

logger = logging.getLogger(__name__)

MAX_RESPONSE = 16 << 20  # cap on the client's preferredMessageSize
_READ_SIZE = 64 * 1024
LINGER = 2.0  # seconds to wait for a closing client
# Scan and Sort are offered because they are answered (done, or a response with Bib-1
# 1025, "not supported for this database", where the database cannot): clients such as
# yaz-client send neither to a target that does not offer it, and the answer leaves the
# association and its result sets alone.
_SUPPORTED_OPTIONS = frozenset({apdu.OPTION_SEARCH, apdu.OPTION_PRESENT,
                                apdu.OPTION_DELETE_SET, apdu.OPTION_SCAN, apdu.OPTION_SORT,
                                apdu.OPTION_NAMED_RESULT_SETS})


class Host(Protocol):
    """What an association asks of the server that accepted it (``Z3950Server``)."""

    max_message: int
    idle_timeout: float
    utf8_only: bool
    max_result_sets: int

    @property
    def closing(self) -> bool: ...

    def catalogue(self, name: str) -> Catalogue | None: ...


@dataclass(slots=True)
class _StoredSet:
    database: bytes
    catalogue: Catalogue
    query: Node
    results: ResultSet


class Association:
    """One client's conversation: its state, result sets and negotiated sizes."""

    def __init__(self, server: Host, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter, peer: object) -> None:
        self.server, self.reader, self.writer, self.peer = server, reader, writer, peer
        self.initialised = self.utf8 = False
        self.message_size = self.record_size = 1 << 20
        self.sets: OrderedDict[str, _StoredSet] = OrderedDict()
        self.goodbye: bytes | None = None  # the Close to send when the association ends
        self._apdus = ber.ApduBuffer(server.max_message, "request")

    async def run(self) -> None:
        try:
            await self._serve()
        except TimeoutError:
            logger.info("%s does not read its answers; dropped", self.peer)
            self.writer.transport.abort()
        except (ConnectionError, OSError) as exc:
            logger.info("connection from %s lost: %s", self.peer, exc)
        except Exception:
            logger.exception("association from %s failed", self.peer)
            self.goodbye = apdu.close(2, "internal error")
        finally:
            await self.end()

    async def end(self) -> None:
        """Send the goodbye, then half-close and read what the client still sends for a
        moment before dropping: closing with unread data would reset the connection, and
        the client could lose our Close."""
        goodbye, self.goodbye = self.goodbye, None
        try:
            with contextlib.suppress(OSError, RuntimeError, TimeoutError):
                if goodbye and not self.writer.is_closing():
                    self.writer.write(goodbye)
                async with asyncio.timeout(0 if self.server.closing else LINGER):
                    await self.writer.drain()
                    if self.writer.can_write_eof():
                        self.writer.write_eof()
                    while await self.reader.read(_READ_SIZE):
                        pass
        finally:
            self.writer.close()
            try:
                await asyncio.wait_for(self.writer.wait_closed(), LINGER)
            except (OSError, RuntimeError, TimeoutError):
                self.writer.transport.abort()

    async def _serve(self) -> None:
        idle = self.server.idle_timeout
        while True:
            try:
                async with asyncio.timeout(idle):
                    message = await self._apdus.next_from(self.reader, _READ_SIZE)
                if message is None:
                    return
                reply, last = await self._dispatch(ber.decode(message))
            except TimeoutError:
                logger.info("%s idle for %g s; closing", self.peer, idle)
                self.goodbye = apdu.close(7, f"no complete request for {idle:g} seconds")
                return
            except ProtocolError as exc:
                logger.warning("%s: %s; closing", self.peer, exc)
                self.goodbye = apdu.close(6, str(exc))
                return
            self.writer.write(reply)
            async with asyncio.timeout(idle):
                await self.writer.drain()
            if last:
                return

    async def _dispatch(self, node: ber.Node) -> tuple[bytes, bool]:
        """The reply to one request, and whether it ends the association."""
        tag = node.number if node.cls == ber.CONTEXT and node.constructed else None
        name = apdu.APDU_NAMES.get(tag, f"[{node.number}]") if tag else f"[{node.number}]"
        if not self.initialised:
            if tag != apdu.INIT_REQUEST:
                raise ProtocolError(f"the first request must be Init, not {name}")
            return self._init(node), False
        if tag == apdu.INIT_REQUEST:
            raise ProtocolError("Init again on an initialised association")
        if tag == apdu.SEARCH_REQUEST:
            return await self._search(node), False
        if tag == apdu.PRESENT_REQUEST:
            return await self._present(node), False
        if tag == services.SCAN_REQUEST:
            return await self._scan(node), False
        if tag == services.SORT_REQUEST:
            return await self._sort(node), False
        if tag == apdu.CLOSE:
            logger.debug("%s closes the association", self.peer)
            return apdu.close(0), True
        refused = self._refusal(tag, node)
        if refused is not None:
            logger.info("%s: %s refused with a diagnostic", self.peer, name)
            return refused, False
        raise ProtocolError(f"{name} is not supported by this server")

    def _refusal(self, tag: int | None, node: ber.Node) -> bytes | None:
        """The answer to a request the standard lets us answer without doing it (or, for
        Delete, by doing it): the association and its result sets live on."""
        if tag == services.DELETE_REQUEST:
            return self._delete(services.read_delete_request(node))
        if tag == services.ES_REQUEST:
            return services.extended_services_refused(node)
        if tag == services.DUPLICATE_REQUEST:
            return services.duplicate_detection_refused(node)
        return None

    def _delete(self, request: services.DeleteRequest) -> bytes:
        if request.function == "all":
            self.sets.clear()
            return services.delete_response(request, {})
        statuses = {name: services.DELETED if self.sets.pop(name, None) is not None
                    else services.NO_SUCH_SET for name in request.names}
        return services.delete_response(request, statuses)

    def _init(self, node: ber.Node) -> bytes:
        request = spdu.read_init_request(node)
        self.initialised = True
        self.utf8 = request.utf8_proposed and self.server.utf8_only
        self.message_size = _size(request.message_size)
        self.record_size = max(_size(request.record_size), self.message_size)
        versions = request.versions & {0, 1, 2} or frozenset({1, 2})
        options = request.options & _SUPPORTED_OPTIONS
        if self.utf8:
            options |= {apdu.OPTION_NEGOTIATION}
        logger.info("Init from %s (%s), utf-8: %s", self.peer,
                    request.implementation or "unnamed client", self.utf8)
        return spdu.init_response(reference=request.reference, versions=versions,
                                  options=options, message_size=self.message_size,
                                  record_size=self.record_size, utf8=self.utf8)

    # --- Search -------------------------------------------------------------------------

    async def _search(self, node: ber.Node) -> bytes:
        request = spdu.read_search_request(node)
        name = request.result_set
        try:
            if not request.replace and name in self.sets:
                raise Bib1(21, name)
            database, catalogue = self._database(request.databases)
            charsets = (["utf-8"] if self.utf8
                        else [catalogue_encoding(catalogue), "utf-8", "gb18030"])
            query = read_query(request.query, functools.partial(_decode, charsets),
                               self._stored_query)
            results = await self._run(catalogue, query)
        except Bib1 as diag:
            logger.info("%s: search diagnostic %d %s", self.peer, diag.code, diag.addinfo)
            if request.replace:
                self.sets.pop(name, None)
            return spdu.search_response(reference=request.reference, hits=0, ok=False,
                                        records=spdu.non_surrogate(diag.code, diag.addinfo))
        stored = _StoredSet(database, catalogue, query, results)
        self.sets[name] = stored
        self.sets.move_to_end(name)
        while len(self.sets) > self.server.max_result_sets:
            self.sets.popitem(last=False)
        hits = max(0, int(results.hits))
        info = _per_library(results, "utf-8" if self.utf8 else catalogue_encoding(catalogue))
        # Piggybacked records: all of a small set, some of a medium one (Z39.50 3.2.2.1.4).
        medium = min(max(request.medium_set_present, 0), hits)
        wanted = hits if hits <= request.small_set else medium if hits < request.large_set else 0
        if wanted == 0:
            return spdu.search_response(reference=request.reference, hits=hits, ok=True,
                                        info=info)
        try:
            records, returned, status = await self._records(stored, 1, wanted,
                                                            request.syntax)
        except Bib1 as diag:
            records, returned, status = spdu.non_surrogate(diag.code, diag.addinfo), 0, 5
        return spdu.search_response(reference=request.reference, hits=hits, ok=True,
                                    returned=returned, present_status=status,
                                    records=records, info=info)

    async def _run(self, catalogue: Catalogue, query: Node) -> ResultSet:
        try:
            return await catalogue.search(query)
        except UnsupportedQuery as exc:
            raise Bib1(3, str(exc)) from None
        except QueryError as exc:
            raise Bib1(108, str(exc)) from None
        except ConnectorError as exc:
            raise Bib1(2, str(exc)) from None
        except Exception as exc:
            logger.exception("catalogue %s failed on a search", catalogue.name)
            raise Bib1(1, f"the catalogue failed: {type(exc).__name__}") from None

    def _database(self, names: tuple[bytes, ...]) -> tuple[bytes, Catalogue]:
        if not names:
            raise Bib1(109, "no database named")
        if len(set(names)) > 1:
            raise Bib1(111, "1")
        name = _text(names[0])
        catalogue = self.server.catalogue(name)
        if catalogue is None:
            raise Bib1(109, name)
        return names[0], catalogue

    def _stored_query(self, name: str) -> Node | None:
        stored = self.sets.get(name)
        return stored.query if stored is not None else None

    # --- Scan ---------------------------------------------------------------------------

    async def _scan(self, node: ber.Node) -> bytes:
        """A browse of the database's headings; whatever cannot be done is a failure with
        its Bib-1 diagnostic (1025 from a catalogue that cannot browse)."""
        request = services.read_scan_request(node)
        try:
            _, catalogue = self._database(request.databases)
        except Bib1 as diag:
            return services.scan_refused(request, diag.code, diag.addinfo)
        encoding = catalogue_encoding(catalogue)
        charsets = ["utf-8"] if self.utf8 else [encoding, "utf-8", "gb18030"]
        return await services.answer_scan(request, catalogue,
                                          functools.partial(_decode, charsets),
                                          "utf-8" if self.utf8 else encoding)

    # --- Sort ---------------------------------------------------------------------------

    async def _sort(self, node: ber.Node) -> bytes:
        """The input set sorted into the output name (the same name: replaced); whatever
        cannot be done is a failure with its Bib-1 diagnostic, the sets untouched."""
        request = server_sort.read_sort_request(node)
        try:
            if not request.inputs:
                raise Bib1(server_sort.CANNOT_SORT, "no input result set")
            if len(request.inputs) > 1:
                raise Bib1(230, f"{len(request.inputs)} input result sets (one is sorted)")
            stored = self.sets.get(request.inputs[0])
            if stored is None:
                raise Bib1(30, request.inputs[0])
            if not request.output:
                raise Bib1(208, "no sorted result set name")
            sorter = sortable(stored.results)
            if sorter is None:
                raise Bib1(services.SERVICE_UNSUPPORTED, "sort")
            keys = server_sort.sort_keys(request)
            try:
                results = await sorter.sort(keys)
            except SortError as exc:
                raise server_sort.bib1_of(exc) from None
        except Bib1 as diag:
            logger.info("%s: sort diagnostic %d %s", self.peer, diag.code, diag.addinfo)
            return server_sort.sort_failed(request, request.output in self.sets, diag.code,
                                           diag.addinfo)
        self.sets[request.output] = _StoredSet(stored.database, stored.catalogue,
                                               stored.query, results)
        self.sets.move_to_end(request.output)
        while len(self.sets) > self.server.max_result_sets:
            self.sets.popitem(last=False)
        return server_sort.sort_response(request, max(0, int(results.hits)))

    # --- Present ------------------------------------------------------------------------

    async def _records(self, stored: _StoredSet, start: int, count: int,
                       requested: tuple[int, ...] | None) -> tuple[bytes | None, int, int]:
        return await present.records(
            stored.database, stored.catalogue, stored.results, start, count, requested,
            utf8=self.utf8, message_size=self.message_size, record_size=self.record_size)

    async def _present(self, node: ber.Node) -> bytes:
        request = spdu.read_present_request(node)
        stored = self.sets.get(request.result_set)
        try:
            if stored is None:
                raise Bib1(30, request.result_set)
            hits = stored.results.hits
            if request.count < 0:
                raise Bib1(13, f"{request.count} records requested")
            if request.count and not 1 <= request.start <= hits:
                raise Bib1(13, f"start {request.start} of {hits} records")
            records, returned, status = await self._records(stored, request.start,
                                                            request.count, request.syntax)
        except Bib1 as diag:
            logger.info("%s: present diagnostic %d %s", self.peer, diag.code, diag.addinfo)
            return spdu.present_response(reference=request.reference, returned=0,
                                         next_position=request.start, status=5,
                                         records=spdu.non_surrogate(diag.code, diag.addinfo))
        following = request.start + returned
        return spdu.present_response(reference=request.reference, returned=returned,
                                     next_position=following if following <= hits else 0,
                                     status=status, records=records)


def _per_library(results: ResultSet, encoding: str) -> bytes | None:
    """The union's members' own counts as additionalSearchInfo (a result set with
    ``libraries``, as ``broker.catalogues.union.UnionResultSet`` has): each member that
    answered with its hits, one that did not with its status and no count."""
    libraries = getattr(results, "libraries", None)
    if not libraries:
        return None
    return spdu.search_info([
        spdu.SubqueryCount(lib["id"] if lib.get("status") == "ok"
                           else f"{lib['id']} ({lib.get('status')})",
                           lib.get("hits") if lib.get("status") == "ok" else None)
        for lib in libraries], encoding)


def _decode(charsets: list[str], data: bytes) -> str:
    """A term in the first of ``charsets`` that fits it (a client that has not negotiated
    may send the catalogue's charset, UTF-8 or, in China, GB18030)."""
    for charset in dict.fromkeys(charsets):
        with contextlib.suppress(UnicodeDecodeError):
            return data.decode(charset)
    raise Bib1(125, f"the term is not valid {' or '.join(dict.fromkeys(charsets))}")


def _size(value: int) -> int:
    """A client's size within reason: positive, at most MAX_RESPONSE."""
    return min(value, MAX_RESPONSE) if value > 0 else 1 << 20


def _text(name: bytes) -> str:
    for charset in ("utf-8", "gb18030"):
        with contextlib.suppress(UnicodeDecodeError):
            return name.decode(charset)
    return name.decode("latin-1")
