"""Transient faults: retried with backoff, and the harvest still comes out whole.

A dropped connection in the middle of an answer is a fault a real server does not produce
on demand, so ``CuttingProxy`` (a TCP relay in front of the real Zebra) makes one: it
cuts the first ``cuts`` connections after ``after`` bytes of the server's answers. A
refused connection is real: a loopback port nobody listens on.
"""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from harvest_helpers import iso_ids
from peers.servers import HOST, free_port

from broker.harvest.harvester import Harvest, HarvestOptions
from broker.kernel.config import ConnectorConfig, Library

FAST = {"backoff": 0.01, "backoff_cap": 0.05}


class CuttingProxy:
    def __init__(self, port: int, *, after: int, cuts: int = 1) -> None:
        self.port, self.after, self.cuts = port, after, cuts
        self.connections = 0
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> CuttingProxy:
        self.server = await asyncio.start_server(self._handle, HOST, 0)
        self.listen_port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc_info) -> None:
        assert self.server is not None
        self.server.close()

    async def _handle(self, reader, writer) -> None:
        self.connections += 1
        limit = self.after if self.connections <= self.cuts else None
        up_reader, up_writer = await asyncio.open_connection(HOST, self.port)
        await asyncio.gather(self._pipe(reader, up_writer, None, writer),
                             self._pipe(up_reader, writer, limit, up_writer),
                             return_exceptions=True)

    @staticmethod
    async def _pipe(source, sink, limit: int | None, other) -> None:
        sent = 0
        try:
            while data := await source.read(65536):
                if limit is not None and sent + len(data) >= limit:
                    sink.write(data[:limit - sent])  # half an answer, then the line drops
                    break
                sink.write(data)
                await sink.drain()
                sent += len(data)
        finally:
            for stream in (sink, other):
                with contextlib.suppress(Exception):
                    stream.close()


def library(protocol: str, port: int, database: str = "bulk") -> Library:
    url = (f"z3950://{HOST}:{port}/{database}" if protocol == "z3950"
           else f"http://{HOST}:{port}/{database}")
    return Library("cut", "Cut", "c", connector=ConnectorConfig(protocol=protocol, url=url,
                                                                 timeout=20))


@pytest.mark.parametrize("protocol", ["z3950", "sru"])
def test_a_dropped_connection_is_retried_and_nothing_is_lost(protocol, zebra, tmp_path):
    count = zebra.load_bulk(2000)
    whole = tmp_path / "whole.mrc"
    reference = asyncio.run(Harvest(library(protocol, zebra.port), whole,
                                    HarvestOptions()).run())
    assert reference.done and reference.written == count
    messages: list[str] = []

    async def cut_harvest():
        # Cut twice, well inside the answers (an SRU page of 100 records is ~300 kB).
        async with CuttingProxy(zebra.port, after=150_000, cuts=2) as proxy:
            out = tmp_path / "cut.mrc"
            harvest = Harvest(library(protocol, proxy.listen_port), out,
                              HarvestOptions(**FAST), report=messages.append)
            return await harvest.run(), proxy.connections

    result, connections = asyncio.run(cut_harvest())
    assert result.done and result.error is None, result.error
    assert sum("will retry" in m for m in messages) == 2, messages
    assert connections >= 3
    assert (tmp_path / "cut.mrc").read_bytes() == whole.read_bytes()
    assert len(iso_ids(whole.read_bytes())) == count


def test_an_unreachable_member_fails_after_its_retries(tmp_path):
    messages: list[str] = []
    out = tmp_path / "gone.mrc"
    harvest = Harvest(library("z3950", free_port()), out,
                      HarvestOptions(retries=3, **FAST), report=messages.append)
    result = asyncio.run(harvest.run())
    assert not result.done and "Connection refused" in (result.error or "")
    assert "(still failing after 3 retries)" in (result.error or "")
    retries = [m for m in messages if "will retry" in m]
    assert [m.rsplit("(", 1)[1] for m in retries] == [
        "1 of 3, 2 left)", "2 of 3, 1 left)", "3 of 3, 0 left)"]


def test_a_diagnostic_is_not_retried(zebra, tmp_path):
    messages: list[str] = []
    harvest = Harvest(library("z3950", zebra.port, "nosuchdb"), tmp_path / "x.mrc",
                      HarvestOptions(**FAST), report=messages.append)
    result = asyncio.run(harvest.run())
    assert not result.done and "diagnostic 109" in (result.error or "")
    assert not any("will retry" in m for m in messages)
