"""``Z3950Server``: any ``Catalogue`` as a Z39.50 target, on asyncio and our own BER codec.

One association per connection: Init (ISO 10646 UTF-8 selected when the client proposes
it), Search into named result sets (type-1/101 RPN with Bib-1 attributes, read back into the
broker's query tree by ``server_pdu``), Present in any chunk (ISO 2709 in UTF-8, USMARC or
UNIMARC as the catalogue's flavour is, or MARCXML), Close. Requests are answered in order.

What cannot be done is a Bib-1 diagnostic (database 109, attributes 113-122, query type
107, out of range 13, record syntax 239, no such result set 30...). What is not Z39.50 (bad
BER, no Init first, an unsupported APDU, a request over ``max_message``) gets Close
protocolError; a request not complete within ``idle_timeout`` seconds of the last answer,
Close lackOfActivity; a connection beyond ``max_connections``, Close resources at once.
Each ends only that association.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import functools
import logging
import xml.etree.ElementTree as ET
from collections import OrderedDict
from dataclasses import dataclass

import pymarc
from pymarc.marcxml import record_to_xml_node

from broker.kernel.cql import Node
from broker.kernel.errors import ConnectorError, ProtocolError, QueryError, UnsupportedQuery
from connectors.catalogue import Catalogue, ResultSet
from connectors.z3950 import ber, pdu
from connectors.z3950 import server_pdu as spdu
from connectors.z3950.server_pdu import Bib1

logger = logging.getLogger(__name__)

USMARC, UNIMARC = pdu.SYNTAX["usmarc"], pdu.SYNTAX["unimarc"]
XML_SYNTAXES = {pdu.SYNTAX["xml"], (*pdu.Z3950, 5, 109, 3)}  # text-XML, application-XML
_XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'

DEFAULT_MAX_MESSAGE = 1 << 20  # largest request accepted (a query, not records)
MAX_RESPONSE = 16 << 20  # cap on the client's preferredMessageSize
FETCH_CHUNK = 50  # records asked of the catalogue at a time
MAX_PRESENT = 1000  # records in one response at most (partial-3 beyond)
_READ_SIZE = 64 * 1024
LINGER = 2.0  # seconds to wait for a closing client
_SUPPORTED_OPTIONS = frozenset({pdu.OPTION_SEARCH, pdu.OPTION_PRESENT,
                                pdu.OPTION_NAMED_RESULT_SETS})


def encode_record(record: pymarc.Record, flavour: str, syntax: tuple[int, ...],
                  encoding: str = "utf-8") -> bytes:
    """A record in a syntax: MARCXML (UTF-8), or ISO 2709 in ``encoding``, written here
    because pymarc writes only UTF-8 or Latin-1. A MARC21 record's leader/09 says whether
    it is UTF-8 ('a') or not (blank); UNIMARC keeps its own. The record is not changed."""
    if syntax in XML_SYNTAXES:
        node = record_to_xml_node(record, namespace=True)
        return _XML_DECLARATION + ET.tostring(node, encoding="utf-8")
    directory, fields, offset = [], [], 0
    for field in record.fields:
        data = field.as_marc(encoding=encoding)
        if len(data) > 9999:
            raise Bib1(238, f"field {field.tag} is too long for ISO 2709; ask for XML")
        directory.append(f"{field.tag:0>3}{len(data):04d}{offset:05d}".encode("ascii"))
        fields.append(data)
        offset += len(data)
    base = 24 + 12 * len(directory) + 1
    if base + offset + 1 > 99999:
        raise Bib1(238, f"the record is longer than ISO 2709 allows ({base + offset + 1} "
                        "bytes); ask for XML")
    leader = str(record.leader).ljust(24)[:24]
    coding = leader[9] if flavour == "unimarc" else "a" if encoding == "utf-8" else " "
    leader = f"{base + offset + 1:05d}{leader[5:9]}{coding}{leader[10:12]}{base:05d}{leader[17:]}"
    return (leader.encode("ascii", "replace") + b"".join(directory) + b"\x1e"
            + b"".join(fields) + b"\x1d")


def _encoding(catalogue: Catalogue) -> str:
    """What a catalogue's records and terms travel in without negotiation (an optional
    ``encoding`` attribute: LocalCatalogue plays a GB18030-speaking member with it)."""
    name = getattr(catalogue, "encoding", None) or "utf-8"
    try:
        return "utf-8" if codecs.lookup(name).name == "utf-8" else name
    except LookupError:
        return "utf-8"


@dataclass(slots=True)
class _StoredSet:
    database: bytes
    catalogue: Catalogue
    query: Node
    results: ResultSet


class Z3950Server:
    """Serves ``catalogues`` ({database name: Catalogue}) over Z39.50 on host:port."""

    def __init__(self, catalogues: dict[str, Catalogue], *, host: str = "127.0.0.1",
                 port: int = 0, idle_timeout: float = 300.0,
                 max_message: int = DEFAULT_MAX_MESSAGE, max_connections: int = 100,
                 max_result_sets: int = 20) -> None:
        if not catalogues:
            raise ValueError("a Z39.50 server needs at least one database")
        self.catalogues = dict(catalogues)
        self._folded = {name.casefold(): name for name in self.catalogues}
        # UTF-8 is negotiated only when every database speaks it (a GB18030 one does not).
        self.utf8_only = all(_encoding(c) == "utf-8" for c in self.catalogues.values())
        self.host, self.port = host, port
        self.idle_timeout = idle_timeout
        self.max_message = max_message
        self.max_connections = max_connections
        self.max_result_sets = max_result_sets
        self._server: asyncio.Server | None = None
        self._associations: dict[asyncio.Task, _Association] = {}
        self._refused: dict[asyncio.Task, _Association] = {}
        self._closing = False

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        logger.info("Z39.50 server on %s:%s serving %s", self.host, self.port,
                    ", ".join(self.catalogues))

    async def close(self) -> None:
        """Stop listening; every open association gets Close shutdown."""
        self._closing = True
        if self._server is not None:
            self._server.close()
        everyone = {**self._associations, **self._refused}
        for task, association in everyone.items():
            association.goodbye = association.goodbye or spdu.close(1, "server shutdown")
            task.cancel()
        await asyncio.gather(*everyone, return_exceptions=True)
        for association in everyone.values():  # a task cancelled before it ever ran
            if not association.writer.is_closing():
                association.writer.transport.abort()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> Z3950Server:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def connections(self) -> int:
        return len(self._associations)

    def catalogue(self, name: str) -> Catalogue | None:
        """The catalogue of a database name (exact, else ignoring case, as Zebra does)."""
        found = self.catalogues.get(name)
        if found is None and name.casefold() in self._folded:
            found = self.catalogues[self._folded[name.casefold()]]
        return found

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Our own task rather than the stream's: cancelling it at close() is then quiet.
        peer = writer.get_extra_info("peername")
        association = _Association(self, reader, writer, peer)
        refuse = self._closing or len(self._associations) >= self.max_connections
        if refuse and len(self._refused) >= self.max_connections:
            writer.transport.abort()  # a flood: not even a goodbye
            return
        if refuse:  # not counted: it only says goodbye
            logger.warning("refusing %s: %d associations open", peer, len(self._associations))
            association.goodbye = spdu.close(4, "too many connections; try again later")
        task = asyncio.get_running_loop().create_task(
            association.end() if refuse else association.run())
        (self._refused if refuse else self._associations)[task] = association
        task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Task) -> None:
        self._associations.pop(task, None)
        self._refused.pop(task, None)


class _Association:
    """One client's conversation: its state, result sets and negotiated sizes."""

    def __init__(self, server: Z3950Server, reader: asyncio.StreamReader,
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
            self.goodbye = spdu.close(2, "internal error")
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
                async with asyncio.timeout(0 if self.server._closing else LINGER):
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
                    message = await self._read_message()
                if message is None:
                    return
                reply, last = await self._dispatch(ber.decode(message))
            except TimeoutError:
                logger.info("%s idle for %g s; closing", self.peer, idle)
                self.goodbye = spdu.close(7, f"no complete request for {idle:g} seconds")
                return
            except ProtocolError as exc:
                logger.warning("%s: %s; closing", self.peer, exc)
                self.goodbye = spdu.close(6, str(exc))
                return
            self.writer.write(reply)
            async with asyncio.timeout(idle):
                await self.writer.drain()
            if last:
                return

    async def _read_message(self) -> bytes | None:
        while True:
            message = self._apdus.take()
            if message is not None:
                return message
            chunk = await self.reader.read(_READ_SIZE)
            if not chunk:
                return None
            self._apdus.add(chunk)

    async def _dispatch(self, node: ber.Node) -> tuple[bytes, bool]:
        """The reply to one request, and whether it ends the association."""
        tag = node.number if node.cls == ber.CONTEXT and node.constructed else None
        name = spdu.APDU_NAMES.get(tag, f"[{node.number}]") if tag else f"[{node.number}]"
        if not self.initialised:
            if tag != pdu.INIT_REQUEST:
                raise ProtocolError(f"the first request must be Init, not {name}")
            return self._init(node), False
        if tag == pdu.INIT_REQUEST:
            raise ProtocolError("Init again on an initialised association")
        if tag == pdu.SEARCH_REQUEST:
            return await self._search(node), False
        if tag == pdu.PRESENT_REQUEST:
            return await self._present(node), False
        if tag == pdu.CLOSE:
            logger.debug("%s closes the association", self.peer)
            return spdu.close(0), True
        raise ProtocolError(f"{name} is not supported by this server")

    def _init(self, node: ber.Node) -> bytes:
        request = spdu.read_init_request(node)
        self.initialised = True
        self.utf8 = request.utf8_proposed and self.server.utf8_only
        self.message_size = _size(request.message_size)
        self.record_size = max(_size(request.record_size), self.message_size)
        versions = request.versions & {0, 1, 2} or frozenset({1, 2})
        options = request.options & _SUPPORTED_OPTIONS
        if self.utf8:
            options |= {pdu.OPTION_NEGOTIATION}
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
            charsets = ["utf-8"] if self.utf8 else [_encoding(catalogue), "utf-8", "gb18030"]
            query = spdu.read_query(request.query, functools.partial(_decode, charsets),
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
        # Piggybacked records: all of a small set, some of a medium one (Z39.50 3.2.2.1.4).
        medium = min(max(request.medium_set_present, 0), hits)
        wanted = hits if hits <= request.small_set else medium if hits < request.large_set else 0
        if wanted == 0:
            return spdu.search_response(reference=request.reference, hits=hits, ok=True)
        try:
            records, returned, status = await self._records(stored, 1, wanted,
                                                            request.syntax)
        except Bib1 as diag:
            records, returned, status = spdu.non_surrogate(diag.code, diag.addinfo), 0, 5
        return spdu.search_response(reference=request.reference, hits=hits, ok=True,
                                    returned=returned, present_status=status,
                                    records=records)

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

    # --- Present ------------------------------------------------------------------------

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

    def _syntax(self, requested: tuple[int, ...] | None, catalogue: Catalogue
                ) -> tuple[int, ...]:
        native = UNIMARC if catalogue.flavour == "unimarc" else USMARC
        if requested is None or requested in (USMARC, UNIMARC):
            return native  # ISO 2709 in the catalogue's own flavour, labelled as such
        if requested in XML_SYNTAXES:
            return requested
        raise Bib1(239, spdu.dotted(requested))

    async def _records(self, stored: _StoredSet, start: int, count: int,
                       requested: tuple[int, ...] | None) -> tuple[bytes | None, int, int]:
        """Records ``start``.. as Records, how many, and the presentStatus.

        Stops short (partial-2) before the response outgrows the client's preferred message
        size; a record alone over it is sent alone, and one over the exceptional record size
        becomes a surrogate diagnostic. At most MAX_PRESENT records (partial-3)."""
        syntax = self._syntax(requested, stored.catalogue)
        flavour = stored.catalogue.flavour
        encoding = "utf-8" if self.utf8 else _encoding(stored.catalogue)
        last = min(stored.results.hits, start + count - 1)
        stop = min(last, start + MAX_PRESENT - 1)
        items: list[bytes] = []
        size, status, position = 0, 0, start
        while position <= stop and status == 0:
            try:
                batch = await stored.results.fetch(position,
                                                   min(FETCH_CHUNK, stop - position + 1))
            except Exception as exc:
                logger.exception("catalogue %s failed to fetch", stored.catalogue.name)
                if not items:
                    raise Bib1(14, f"the catalogue failed: {type(exc).__name__}") from None
                status = 4
                break
            if not batch:
                break
            for record in batch:
                item = self._item(stored.database, record, flavour, syntax, encoding, position)
                if items and size + len(item) > self.message_size:
                    status = 2
                    break
                if len(item) > self.record_size:
                    item = spdu.diagnostic_item(stored.database, 17,
                                                f"{len(item)} bytes")
                items.append(item)
                size += len(item)
                position += 1
                if size > self.message_size:
                    status = 2
                    break
                if len(items) % 10 == 0:
                    await asyncio.sleep(0)  # encoding is CPU work: let others run
        if status == 2 and position > last:
            status = 0  # a record sent alone, and it was the last one wanted
        if status == 0 and position <= last:
            status = 3 if position > stop else 4
        if not items:
            return None, 0, status
        return spdu.response_records(items), len(items), status

    def _item(self, database: bytes, record: pymarc.Record, flavour: str,
              syntax: tuple[int, ...], encoding: str, position: int) -> bytes:
        try:
            data = encode_record(record, flavour, syntax, encoding)
            return spdu.record_item(database, syntax, data)
        except Bib1 as diag:
            return spdu.diagnostic_item(database, diag.code, diag.addinfo)
        except Exception as exc:
            logger.warning("record %d cannot be encoded: %s", position, exc)
            return spdu.diagnostic_item(database, 14, f"record {position}: {exc}")


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
