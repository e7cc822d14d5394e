"""Hostile servers: faults that real Zebra and yaz-ztest never produce.

These are fakes on purpose (and only here): small asyncio servers on 127.0.0.1 that send
garbage, truncated or gigantic BER, hang, or close mid-message; and HTTP servers that send
HTML, entity bombs or endless bodies. Every case must end as that library's error within
its timeout, with no crash and no connection or task left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest

from broker.kernel.config import ConnectorConfig, Library
from broker.kernel.consortium import Protocol
from broker.kernel.cql import parse
from broker.kernel.errors import ConnectorTimeout, ProtocolError, Unreachable
from connectors.sru.client import SruConnector
from connectors.z3950 import ber
from connectors.z3950.ber import CONTEXT
from connectors.z3950.connector import Z3950Connector

TIMEOUT = 1.0


def _library(protocol: Protocol, url: str) -> Library:
    return Library("hostile", "Hostile", "test",
                   connector=ConnectorConfig(protocol=protocol, url=url, timeout=TIMEOUT,
                                             max_records=5))


def _init_response() -> bytes:
    return ber.seq(CONTEXT, 21, [ber.bit_string([0, 1, 2], CONTEXT, 3),
                                 ber.bit_string([0, 1, 14], CONTEXT, 4),
                                 ber.integer(1 << 20, CONTEXT, 5),
                                 ber.integer(1 << 20, CONTEXT, 6),
                                 ber.boolean(True, CONTEXT, 12)])


def _search_response(hits: int) -> bytes:
    return ber.seq(CONTEXT, 23, [ber.integer(hits, CONTEXT, 23), ber.integer(0, CONTEXT, 24),
                                 ber.integer(1, CONTEXT, 25), ber.boolean(True, CONTEXT, 22)])


class FakeZ3950:
    """Answers each request with the next scripted action."""

    def __init__(self, script: list) -> None:
        self.script = script
        self.closed_by_client = asyncio.Event()
        self.server: asyncio.Server | None = None
        self.port = 0

    async def __aenter__(self) -> FakeZ3950:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            for action in self.script:
                if action == "hang":
                    # Say nothing; return once the client gives up and closes.
                    while await reader.read(65536):
                        pass
                    break
                if action == "close":
                    break
                if isinstance(action, bytes) and action.startswith(b"!now"):
                    writer.write(action[4:])
                    await writer.drain()
                    continue
                # Wait for one request before answering.
                data = await reader.read(65536)
                if not data:
                    break
                writer.write(action)
                await writer.drain()
            else:
                while await reader.read(65536):
                    pass
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self.closed_by_client.set()
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


async def _run_z3950(script: list) -> tuple[BaseException | None, float, FakeZ3950]:
    async with FakeZ3950(script) as fake:
        connector = Z3950Connector(_library("z3950", f"z3950://127.0.0.1:{fake.port}/db"))
        started = time.perf_counter()
        error: BaseException | None = None
        try:
            await connector.search(parse("title=x"))
        except Exception as exc:
            error = exc
        elapsed = time.perf_counter() - started
        await connector.close()
        await asyncio.wait_for(fake.closed_by_client.wait(), 2.0)
        leftover = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()
                    and not getattr(t.get_coro(), "__qualname__", "").startswith(
                        ("FakeZ3950", "Server"))]
        assert leftover == [], f"tasks left running: {leftover}"
        return error, elapsed, fake


HALF_SEARCH = _search_response(5)[:7]


@pytest.mark.parametrize(("name", "script", "expected", "words"), [
    ("garbage instead of Init", [b"HTTP/1.0 400 Bad Request\r\n\r\n"], ProtocolError,
     "not a Z39.50 message"),
    ("non-BER binary noise", [bytes(range(256)) * 4], ProtocolError, "Init"),
    ("BER that is not an APDU", [ber.seq(CONTEXT, 21, [b"\x02\x81"])], ProtocolError,
     "unreadable"),
    ("a length field of gigabytes", [b"\xb5\x84\x7f\xff\xff\xff" + b"\x00" * 32],
     ProtocolError, "cap"),
    ("truncated Init then close", [_init_response()[:10], "close"], Unreachable, "lost"),
    ("hang after connect", ["hang"], ConnectorTimeout, "within"),
    ("hang mid-message in Search", [_init_response(), HALF_SEARCH, "hang"], ConnectorTimeout,
     "Search"),
    ("close mid-message in Search", [_init_response(), HALF_SEARCH, "close"], Unreachable,
     "Search"),
    ("hang on Present", [_init_response(), _search_response(3), "hang"], ConnectorTimeout,
     "Present"),
    ("close instead of answering Present", [_init_response(), _search_response(3), "close"],
     Unreachable, "Present"),
])
def test_z3950_faults_end_as_the_librarys_error(name, script, expected, words):
    error, elapsed, _fake = asyncio.run(_run_z3950(script))
    assert isinstance(error, expected), f"{name}: got {error!r}"
    assert words in str(error)
    # Within its timeout (each step has TIMEOUT; a margin for a loaded machine).
    assert elapsed < 3 * TIMEOUT + 2


def test_z3950_init_refused_is_reported():
    refused = ber.seq(CONTEXT, 21, [ber.bit_string([0, 1, 2], CONTEXT, 3),
                                    ber.bit_string([0], CONTEXT, 4),
                                    ber.integer(1024, CONTEXT, 5), ber.integer(1024, CONTEXT, 6),
                                    ber.boolean(False, CONTEXT, 12)])
    error, _, _ = asyncio.run(_run_z3950([refused]))
    assert "refused" in str(error)


# --- SRU ----------------------------------------------------------------------------------


class FakeHttp:
    """One canned HTTP answer per connection (or a hang)."""

    def __init__(self, status: str, body: bytes, content_type: str = "text/xml",
                 hang: bool = False, chunks: int = 1) -> None:
        self.head = (f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
                     "Connection: close\r\n").encode()
        self.body, self.hang, self.chunks = body, hang, chunks
        self.port = 0
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> FakeHttp:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    async def _handle(self, reader, writer) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            if self.hang:
                await asyncio.sleep(3600)
            if self.chunks == 1:
                writer.write(self.head + f"Content-Length: {len(self.body)}\r\n\r\n".encode()
                             + self.body)
            else:  # an endless-looking chunked body, to test the size cap
                writer.write(self.head + b"Transfer-Encoding: chunked\r\n\r\n")
                for _ in range(self.chunks):
                    writer.write(f"{len(self.body):x}\r\n".encode() + self.body + b"\r\n")
                    await writer.drain()
                writer.write(b"0\r\n\r\n")
            await writer.drain()
        except (ConnectionError, asyncio.CancelledError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
<!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
<!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
<!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
<!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
<!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">]>
<searchRetrieveResponse xmlns="http://www.loc.gov/zing/srw/"><version>1.2</version>
<numberOfRecords>&lol9;</numberOfRecords></searchRetrieveResponse>"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<searchRetrieveResponse xmlns="http://www.loc.gov/zing/srw/"><version>1.2</version>
<numberOfRecords>1</numberOfRecords><records><record><recordSchema>marcxml</recordSchema>
<recordData><record xmlns="http://www.loc.gov/MARC21/slim"><leader>00000nam a2200000 a 4500</leader>
<datafield tag="245" ind1="0" ind2="0"><subfield code="a">&secret;</subfield></datafield>
</record></recordData></record></records></searchRetrieveResponse>"""


async def _run_sru(fake: FakeHttp, cap: int | None = None):
    async with fake:
        connector = SruConnector(_library("sru", f"http://127.0.0.1:{fake.port}/db"))
        started = time.perf_counter()
        result: object
        try:
            result = await connector.search(parse("title=x"))
        except Exception as exc:
            result = exc
        elapsed = time.perf_counter() - started
        await connector.close()
        return result, elapsed


def test_sru_html_404_is_a_clear_error():
    page = b"<html><head><title>404</title></head><body>Not Found</body></html>"
    result, _ = asyncio.run(_run_sru(FakeHttp("404 Not Found", page, "text/html")))
    assert isinstance(result, ProtocolError)
    assert "HTTP 404" in str(result) and "not an SRU answer" in str(result)


def test_sru_html_200_is_not_sru():
    page = b"<!DOCTYPE html><html><body>Welcome to our OPAC</body></html>"
    result, _ = asyncio.run(_run_sru(FakeHttp("200 OK", page, "text/html")))
    assert isinstance(result, ProtocolError)


def test_sru_entity_bomb_is_not_expanded():
    result, elapsed = asyncio.run(_run_sru(FakeHttp("200 OK", BILLION_LAUGHS)))
    assert isinstance(result, ProtocolError)
    assert "numberOfRecords" in str(result) or "XML" in str(result)
    assert elapsed < 5


def test_sru_external_entity_is_not_resolved():
    result, _ = asyncio.run(_run_sru(FakeHttp("200 OK", EXTERNAL_ENTITY)))
    # Either refused or read without the file's content: never /etc/passwd in a title.
    if not isinstance(result, Exception):
        assert all("root:" not in (r.title or "") for r in result.records)


def test_sru_hang_times_out():
    result, elapsed = asyncio.run(_run_sru(FakeHttp("200 OK", b"", hang=True)))
    assert isinstance(result, ConnectorTimeout)
    assert elapsed < TIMEOUT + 2


def test_sru_body_over_the_cap_is_refused(monkeypatch):
    import connectors.sru.client as sru

    monkeypatch.setattr(sru, "MAX_RESPONSE", 256 * 1024)
    result, _ = asyncio.run(_run_sru(FakeHttp("200 OK", b"<a>" + b"x" * 65536, chunks=8)))
    assert isinstance(result, ProtocolError)
    assert "cap" in str(result)


def test_sru_refused_connection_is_unreachable():
    async def scenario():
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        connector = SruConnector(_library("sru", f"http://127.0.0.1:{port}/db"))
        try:
            await connector.search(parse("title=x"))
        except Exception as exc:
            return exc
        finally:
            await connector.close()

    error = asyncio.run(scenario())
    assert isinstance(error, Unreachable)
    assert "refused" in str(error).lower()


def _indefinite(tag: int, parts: list[bytes]) -> bytes:
    """A constructed context-tagged value with an indefinite length, as some servers send."""
    return bytes([0xA0 | tag]) + b"\x80" + b"".join(parts) + b"\x00\x00"


def test_indefinite_length_answers_are_understood():
    """Not a fault: a server that sends indefinite-length BER (allowed, and seen in the
    wild) must be read like any other. Records come as EXTERNAL single-ASN1-type."""
    record = (b"00074nam a2200049 a 4500001000900000245001500009\x1e"
              b"rec00001\x1e10\x1faIndefinite\x1e\x1d")
    init = _indefinite(21, [ber.bit_string([0, 1, 2], CONTEXT, 3),
                            ber.bit_string([0, 1, 14], CONTEXT, 4),
                            ber.integer(1 << 20, CONTEXT, 5), ber.integer(1 << 20, CONTEXT, 6),
                            ber.boolean(True, CONTEXT, 12)])
    search = _indefinite(23, [ber.integer(1, CONTEXT, 23), ber.integer(0, CONTEXT, 24),
                              ber.integer(1, CONTEXT, 25), ber.boolean(True, CONTEXT, 22)])
    external = ber.seq(0, ber.EXTERNAL, [ber.oid((1, 2, 840, 10003, 5, 10)),
                                         ber.tlv(CONTEXT, 0, ber.octets(record), True)])
    named = ber.seq(0, ber.SEQUENCE, [ber.tlv(CONTEXT, 1, ber.tlv(CONTEXT, 1, external, True),
                                              True)])
    present = _indefinite(25, [ber.integer(1, CONTEXT, 24), ber.integer(0, CONTEXT, 25),
                               ber.integer(0, CONTEXT, 27), ber.seq(CONTEXT, 28, [named])])

    async def scenario():
        async with FakeZ3950([init, search, present]) as fake:
            connector = Z3950Connector(_library("z3950", f"z3950://127.0.0.1:{fake.port}/db"))
            page = await connector.search(parse("title=x"))
            await connector.close()
            return page

    page = asyncio.run(scenario())
    assert page.hits == 1
    assert [r.title for r in page.records] == ["Indefinite"]
    assert page.records[0].warnings == ()
