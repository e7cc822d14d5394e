"""``Z3950Client``: one association with one Z39.50 server, on asyncio.

Layers: ``ber`` (bytes <-> tree), ``pdu`` and ``apdu`` (tree <-> messages), this module
(framing one message off the stream, one request at a time, timeouts, errors a reader can
understand).
The connector above keeps clients open for reuse and decides what to search.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os

from broker.kernel.errors import ConnectorTimeout, Diagnostic, ProtocolError, Unreachable
from connectors.z3950 import apdu, ber, pdu

logger = logging.getLogger(__name__)

DEFAULT_MESSAGE_CAP = 32 * 1024 * 1024
_READ_SIZE = 256 * 1024


def os_reason(exc: OSError) -> str:
    """'Connection refused' rather than asyncio's "Connect call failed ('h', p)"."""
    if exc.errno:
        return os.strerror(exc.errno)
    return str(exc) or type(exc).__name__


class Z3950Client:
    """A Z39.50 origin talking to one target (host, port, database)."""

    def __init__(self, host: str, port: int, database: str, *, charset: str = "utf-8",
                 timeout: float = 10.0, message_cap: int = DEFAULT_MESSAGE_CAP) -> None:
        self.host, self.port, self.database = host, port, database
        self.charset = charset  # for terms and names unless UTF-8 is negotiated
        self.timeout = timeout
        self.message_cap = message_cap
        self.negotiated_utf8 = False
        self.server = ""
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._apdus = ber.ApduBuffer(message_cap)
        self._ids = itertools.count(1)
        self.awaiting = 0  # requests sent whose answers have not been read
        self.last_query: bytes | None = None  # the query behind the live result set
        self.last_hits = 0

    @property
    def is_open(self) -> bool:
        return (self._writer is not None and not self._writer.is_closing()
                and self._reader is not None and not self._reader.at_eof())

    @property
    def term_charset(self) -> str:
        return "utf-8" if self.negotiated_utf8 else self.charset

    async def open(self) -> pdu.InitResult:
        """Connect and initialise; raises Unreachable, ConnectorTimeout or Diagnostic."""
        try:
            async with asyncio.timeout(self.timeout):
                self._reader, self._writer = await asyncio.open_connection(self.host,
                                                                           self.port)
        except TimeoutError:
            raise ConnectorTimeout(f"no connection to {self.host}:{self.port} within "
                                   f"{self.timeout:g} s") from None
        except OSError as exc:
            raise Unreachable(f"cannot connect to {self.host}:{self.port}: "
                              f"{os_reason(exc)}") from None
        request = pdu.init_request(message_size=self.message_cap // 2,
                                   record_size=self.message_cap // 2,
                                   charset_proposal=True, reference=self._reference())
        node = await self._roundtrip(request, "Init")
        result = pdu.read_init_response(node)
        if not result.accepted:
            await self.close(send=False)
            reason = f": {result.message}" if result.message else ""
            raise Diagnostic(None, f"the server refused the connection{reason}")
        self.negotiated_utf8 = result.charset_utf8
        self.server = result.implementation
        logger.debug("init %s:%s ok (%s), utf-8 negotiated: %s", self.host, self.port,
                     self.server, self.negotiated_utf8)
        return result

    async def search(self, query: bytes, result_set: str = "default") -> int:
        """Run an encoded type-1 query; the hit count, or Diagnostic."""
        request = pdu.search_request(
            databases=[self.database.encode(self.term_charset, "replace")],
            query=query, result_set=result_set.encode("ascii"), reference=self._reference())
        result = pdu.read_search_response(await self._roundtrip(request, "Search"))
        if result.diagnostics:
            raise self._diagnostic(result.diagnostics[0])
        if not result.ok:
            raise Diagnostic(None, "the search failed without a diagnostic")
        self.last_query, self.last_hits = query, result.hits
        return result.hits

    async def present(self, start: int, count: int, *, syntax: str = "usmarc",
                      element_set: str | None = "F",
                      result_set: str = "default") -> pdu.PresentResult:
        """Fetch ``count`` records from ``start`` (1-based) of a result set."""
        await self.send_present(start, count, syntax=syntax, element_set=element_set,
                                result_set=result_set)
        return await self.receive_present(start)

    async def send_present(self, start: int, count: int, *, syntax: str = "usmarc",
                           element_set: str | None = "F", result_set: str = "default") -> None:
        """Ask for records without waiting: the caller can work while the server does."""
        request = pdu.present_request(
            result_set=result_set.encode("ascii"), start=start, count=count,
            syntax=apdu.SYNTAX[syntax], element_set=element_set.encode("ascii")
            if element_set else None, reference=self._reference())
        await self._send(request, "Present")

    async def receive_present(self, start: int) -> pdu.PresentResult:
        """The answer to the Present sent last."""
        result = pdu.read_present_response(await self._receive("Present"), start)
        if result.diagnostics and not result.records:
            raise self._diagnostic(result.diagnostics[0])
        return result

    async def close(self, *, send: bool = True) -> None:
        """Say goodbye (best effort) and drop the connection."""
        writer, self._writer, self._reader = self._writer, None, None
        self.last_query = None
        self._apdus.clear()
        self.awaiting = 0
        if writer is None:
            return
        if send and not writer.is_closing():
            with contextlib.suppress(OSError, RuntimeError):
                writer.write(apdu.close(0))
                await asyncio.wait_for(writer.drain(), 1.0)
        writer.close()
        with contextlib.suppress(OSError, TimeoutError, RuntimeError):
            await asyncio.wait_for(writer.wait_closed(), 1.0)

    # --- one request, one answer ---------------------------------------------------------

    def _reference(self) -> bytes:
        return str(next(self._ids)).encode()

    def _diagnostic(self, diagnosis: pdu.Diagnosis) -> Diagnostic:
        detail = diagnosis.addinfo.decode(self.term_charset, "replace").strip() or None
        return Diagnostic(diagnosis.code, diagnosis.message, detail)

    async def _roundtrip(self, request: bytes, operation: str) -> ber.Node:
        await self._send(request, operation)
        return await self._receive(operation)

    async def _send(self, request: bytes, operation: str) -> None:
        if self._writer is None or self._reader is None:
            raise Unreachable("the connection is not open")
        async with self._failures(operation, "did not take the request"):
            self._writer.write(request)
            self.awaiting += 1
            async with asyncio.timeout(self.timeout):
                await self._writer.drain()

    async def _receive(self, operation: str) -> ber.Node:
        if self._reader is None:
            raise Unreachable("the connection is not open")
        async with self._failures(operation, "gave no answer"):
            async with asyncio.timeout(self.timeout):
                data = await self._read_message()
            self.awaiting -= 1
            try:
                node = ber.decode(data)
            except ProtocolError as exc:
                raise ProtocolError(f"unreadable answer: {exc}") from None
        if node.is_(ber.CONTEXT, apdu.CLOSE):
            await self.close(send=False)
            raise Unreachable(f"{operation}: the server closed the association "
                              f"({apdu.read_close(node)})")
        return node

    @contextlib.asynccontextmanager
    async def _failures(self, operation: str, silence: str):
        """Any failure of the conversation drops the association (its state is unknown)
        and becomes the library's error, naming the operation."""
        try:
            yield
        except TimeoutError:
            await self.close(send=False)
            raise ConnectorTimeout(f"{operation}: {self.host}:{self.port} {silence} within "
                                   f"{self.timeout:g} s") from None
        except (ConnectionError, OSError) as exc:
            await self.close(send=False)
            raise Unreachable(f"{operation}: connection to {self.host}:{self.port} lost "
                              f"({os_reason(exc)})") from None
        except ProtocolError as exc:
            await self.close(send=False)
            raise ProtocolError(f"{operation}: {exc}") from None

    async def _read_message(self) -> bytes:
        assert self._reader is not None
        message = await self._apdus.next_from(self._reader, _READ_SIZE)
        if message is None:
            self._apdus.clear()
            raise ConnectionResetError("connection closed by the server")
        return message
