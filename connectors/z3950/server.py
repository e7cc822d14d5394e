"""``Z3950Server``: any ``Catalogue`` as a Z39.50 target, on asyncio and our own BER codec.

One association per connection: Init (ISO 10646 UTF-8 selected when the client proposes
it), Search into named result sets (type-1/101 RPN with Bib-1 attributes, read back into the
broker's query tree by ``server_rpn``), Present in any chunk (ISO 2709 in UTF-8, USMARC or
UNIMARC as asked where the catalogue can write it, or MARCXML: ``server_records``), Delete,
Close.
Scan, Sort, Extended Services and Duplicate Detection get their own responses saying
failure with a Bib-1 diagnostic (``server_services``), so the client keeps its
association and result sets. Requests are answered in order, by ``server_association``;
the messages are ``server_pdu``'s.

What cannot be done is a Bib-1 diagnostic (database 109, attributes 113-122, query type
107, out of range 13, record syntax 239 or 238, no such result set 30...). What is not
Z39.50 (bad BER, no Init first, an APDU the standard gives no response for, a request over
``max_message``) gets Close protocolError; a request not complete within ``idle_timeout``
seconds of the last answer, Close lackOfActivity; a connection beyond ``max_connections``,
Close resources at once. Each ends only that association.
"""

from __future__ import annotations

import asyncio
import logging

from connectors.catalogue import Catalogue
from connectors.z3950 import apdu
from connectors.z3950.server_association import Association
from connectors.z3950.server_records import catalogue_encoding

logger = logging.getLogger(__name__)

DEFAULT_MAX_MESSAGE = 1 << 20  # largest request accepted (a query, not records)


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
        self.utf8_only = all(catalogue_encoding(c) == "utf-8" for c in self.catalogues.values())
        self.host, self.port = host, port
        self.idle_timeout = idle_timeout
        self.max_message = max_message
        self.max_connections = max_connections
        self.max_result_sets = max_result_sets
        self._server: asyncio.Server | None = None
        self._associations: dict[asyncio.Task, Association] = {}
        self._refused: dict[asyncio.Task, Association] = {}
        self._closing = False

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        logger.info("Z39.50 server on %s:%s serving %s", self.host, self.port,
                    ", ".join(self.catalogues))

    async def stop_listening(self) -> None:
        """Refuse new connections; open associations go on (``balis serve``'s drain)."""
        if self._server is not None:
            self._server.close()

    async def close(self) -> None:
        """Stop listening; every open association gets Close shutdown."""
        self._closing = True
        if self._server is not None:
            self._server.close()
        everyone = {**self._associations, **self._refused}
        for task, association in everyone.items():
            association.goodbye = association.goodbye or apdu.close(1, "server shutdown")
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

    @property
    def closing(self) -> bool:
        """Shutting down: associations say goodbye without lingering."""
        return self._closing

    def catalogue(self, name: str) -> Catalogue | None:
        """The catalogue of a database name (exact, else ignoring case, as Zebra does)."""
        found = self.catalogues.get(name)
        if found is None and name.casefold() in self._folded:
            found = self.catalogues[self._folded[name.casefold()]]
        return found

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Our own task rather than the stream's: cancelling it at close() is then quiet.
        peer = writer.get_extra_info("peername")
        association = Association(self, reader, writer, peer)
        refuse = self._closing or len(self._associations) >= self.max_connections
        if refuse and len(self._refused) >= self.max_connections:
            writer.transport.abort()  # a flood: not even a goodbye
            return
        if refuse:  # not counted: it only says goodbye
            logger.warning("refusing %s: %d associations open", peer, len(self._associations))
            association.goodbye = apdu.close(4, "too many connections; try again later")
        task = asyncio.get_running_loop().create_task(
            association.end() if refuse else association.run())
        (self._refused if refuse else self._associations)[task] = association
        task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Task) -> None:
        self._associations.pop(task, None)
        self._refused.pop(task, None)
