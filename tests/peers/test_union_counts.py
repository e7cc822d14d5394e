"""Union counts a client can rely on (issue 13, item 3): over the demo consortium served by
``balis serve --union-depth``, the hit count each front door announces is exactly what a
client nobody here wrote can present, records 1 to N, and the same on every protocol and
every time the search is made.

Clients: ``zoomsh`` (presents the whole set) and ``yaz-client`` (the last record, and the
one past it refused) over Z39.50; PyPI ``sruthi`` (iterates the whole result, SRU 1.2)
and plain SRU 2.0 requests read with lxml (``startRecord`` to the end, following
``nextRecordPosition`` until it is absent) over SRU. The demo's members run in this
process (``broker.demo.servers.DemoConsortium``, real SRU and Z39.50 servers), ``balis
serve`` in its own.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from lxml import etree

from broker.demo.servers import DemoConsortium
from connectors.sru.xml import BALIS_NS
from peers.catalogues import LoopThread
from peers.servers import free_port, free_port_range, yaz_client_run

sruthi = pytest.importorskip("sruthi")
pytestmark = pytest.mark.skipif(
    shutil.which("zoomsh") is None or shutil.which("yaz-client") is None,
    reason="zoomsh and yaz-client (Debian yaz) are needed")

# Small enough to keep the test quick, and below the demo's page size of 20 + 1, so
# large searches are paged once more (Broker.fetch_to_depth) and then cut to the depth.
DEPTH = 25
SRU2 = "{http://docs.oasis-open.org/ns/search-ws/sruResponse}"
PRECISION = "info:srw/vocabulary/resultCountPrecision/1/"
BALIS = f"{{{BALIS_NS}}}"


@dataclass(frozen=True)
class Query:
    label: str
    cql: str
    pqf: str


# Title, author, subject and any-word searches; Chinese and Latin; from none to hundreds.
QUERIES = [
    Query("title 中国", "title=中国", "@attr 1=4 中国"),
    Query("any 北京", "北京", "@attr 1=1016 北京"),
    Query("any 经济", "经济", "@attr 1=1016 经济"),
    Query("title 数据结构", "title=数据结构", "@attr 1=4 数据结构"),
    Query("title 通信原理", "title=通信原理", "@attr 1=4 通信原理"),
    Query("author 徐春", "author=徐春", "@attr 1=1003 徐春"),
    Query("author 黎毅", "author=黎毅", "@attr 1=1003 黎毅"),
    Query("subject 会计学", "subject=会计学", "@attr 1=21 会计学"),
    Query("subject 地质学", "subject=地质学", "@attr 1=21 地质学"),
    Query("subject 中国历史", "subject=中国历史", "@attr 1=21 中国历史"),
    Query("title chinese", "title=chinese", "@attr 1=4 chinese"),
    Query("title essentials", "title=essentials", "@attr 1=4 essentials"),
    Query("title imperial", "title=imperial", "@attr 1=4 imperial"),
    Query('title "signal processing"', 'title="signal processing"',
          '@attr 1=4 @attr 4=1 "signal processing"'),
    Query("author bailey", "author=bailey", "@attr 1=1003 bailey"),
    Query("subject geology", "subject=geology", "@attr 1=21 geology"),
    Query('subject "machine learning"', 'subject="machine learning"',
          '@attr 1=21 @attr 4=1 "machine learning"'),
    Query("any history", "history", "@attr 1=1016 history"),
    Query("any forest ecology", "forest and ecology",
          "@and @attr 1=1016 forest @attr 1=1016 ecology"),
    Query("title nonexistentword", "title=nonexistentword", "@attr 1=4 nonexistentword"),
]


@dataclass(frozen=True)
class FrontDoor:
    sru: str  # http://host:port/sru
    z3950_port: int


def _free_port_base(count: int = 46) -> int:
    base = free_port_range(count)
    if base is None:
        pytest.skip("no free range of ports for the demo consortium")
    return base


@pytest.fixture(scope="module")
def front_door(tmp_path_factory) -> Iterator[FrontDoor]:
    data = tmp_path_factory.mktemp("union-counts")
    thread = LoopThread()
    demo = DemoConsortium(data_dir=data, port_base=_free_port_base())
    thread.run(demo.start())
    http, z3950 = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k != "BALIS_CONFIG"}
    env["BALIS_INSTANCE"] = str(data / "instance")
    process = subprocess.Popen(
        [sys.executable, "-m", "balis", "serve", "--config", str(demo.config), "--port",
         str(http), "--z3950-port", str(z3950), "--union-depth", str(DEPTH)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    assert process.stdout is not None
    try:
        lines: list[str] = []
        began = time.monotonic()
        while time.monotonic() - began < 30:
            line = process.stdout.readline()
            lines.append(line)
            if "Press Ctrl-C" in line or (not line and process.poll() is not None):
                break
        if "Press Ctrl-C" not in "".join(lines):
            raise AssertionError("balis serve did not start:\n" + "".join(lines))
        # The server's log goes on to the pipe: keep reading it so it never blocks.
        threading.Thread(target=process.stdout.read, daemon=True).start()
        yield FrontDoor(f"http://127.0.0.1:{http}/sru", z3950)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        thread.run(demo.close())
        thread.close()


# --- the clients ------------------------------------------------------------------------------

_ZOOM_HITS = re.compile(r": (\d+) hits")
_ZOOM_RECORD = re.compile(r"^(\d+) database=(\S+) syntax=", re.M)


def zoomsh(port: int, commands: list[str], timeout: float = 120) -> str:
    script = ["set charset UTF-8", "set preferredRecordSyntax usmarc",
              f"open tcp:127.0.0.1:{port}/balis", *commands, "quit"]
    done = subprocess.run(["zoomsh"], input="\n".join(script) + "\n", capture_output=True,
                          text=True, timeout=timeout, check=False)
    return done.stdout + done.stderr


def z3950_counts(port: int, pqf: str) -> tuple[int, int, int]:
    """zoomsh: (hits, records presented from position 1 to the end, hits searched again
    in the same association)."""
    first = zoomsh(port, [f"find {pqf}"])
    (hits,) = map(int, _ZOOM_HITS.findall(first)) or [-1]
    output = zoomsh(port, [f"find {pqf}", f"show 0 {hits}", f"find {pqf}"]) if hits else first
    counts = [int(n) for n in _ZOOM_HITS.findall(output)]
    positions = [int(n) for n, _ in _ZOOM_RECORD.findall(output)]
    assert positions == list(range(len(positions))), output[-2000:]
    return hits, len(positions), counts[-1]


def yaz_client_last(port: int, pqf: str, hits: int) -> tuple[int, str]:
    """yaz-client: present the last record, then the one past it; (records written by
    the first show, the output)."""
    with tempfile.TemporaryDirectory(prefix="balis-union-counts-") as tmp:
        marc = Path(tmp) / "records"
        output = yaz_client_run("127.0.0.1", port, "balis",
                                ["format usmarc", f"find {pqf}", f"show {hits}"],
                                charset="UTF-8", marc_file=marc, timeout=120)
        data = marc.read_bytes() if marc.exists() else b""
    past = yaz_client_run("127.0.0.1", port, "balis",
                          ["format usmarc", f"find {pqf}", f"show {hits + 1}"],
                          charset="UTF-8", timeout=120)
    return data.count(b"\x1d"), output + past


def sruthi_counts(url: str, cql: str) -> tuple[int, int]:
    """PyPI sruthi (SRU 1.2): the count it read and the records it iterated."""
    records = sruthi.searchretrieve(url, query=cql, record_schema="marcxml",
                                    sru_version="1.2", maximum_records=50)
    return records.count, sum(1 for _ in records)


def sru2_pages(url: str, cql: str, maximum: int = 40) -> tuple[list[int], int, list[str]]:
    """Plain SRU 2.0: startRecord from 1, following nextRecordPosition until it is absent.
    (numberOfRecords of every page, records read, resultCountPrecision of every page)."""
    counts, precisions, read, start = [], [], 0, 1
    while True:
        query = urllib.parse.urlencode({"version": "2.0", "query": cql,
                                        "startRecord": start, "maximumRecords": maximum})
        with urllib.request.urlopen(f"{url}?{query}", timeout=120) as reply:
            root = etree.fromstring(reply.read())
        assert root.tag == f"{SRU2}searchRetrieveResponse"
        assert root.find(f"{SRU2}diagnostics") is None, etree.tostring(root)[:2000]
        counts.append(int(root.findtext(f"{SRU2}numberOfRecords")))
        precisions.append(root.findtext(f"{SRU2}resultCountPrecision"))
        positions = [int(p) for p in root.xpath("//*[local-name()='recordPosition']/text()")]
        assert positions == list(range(start, start + len(positions)))
        read += len(positions)
        following = root.findtext(f"{SRU2}nextRecordPosition")
        if following is None:
            return counts, read, precisions
        assert int(following) == start + len(positions) and positions
        start = int(following)


def sru_libraries(url: str, cql: str, version: str = "2.0") -> etree._Element:
    query = urllib.parse.urlencode({"version": version, "query": cql, "maximumRecords": 0})
    if version != "2.0":
        query += "&operation=searchRetrieve"
    with urllib.request.urlopen(f"{url}?{query}", timeout=120) as reply:
        root = etree.fromstring(reply.read())
    libraries = root.find(f".//{BALIS}libraries")
    assert libraries is not None, etree.tostring(root)[:2000]
    return libraries


# --- the proof ------------------------------------------------------------------------------


@pytest.mark.parametrize("query", QUERIES, ids=[q.label for q in QUERIES])
def test_hits_announced_are_the_records_presented_over_both_protocols(front_door, query):
    hits, presented_z, again_z = z3950_counts(front_door.z3950_port, query.pqf)
    assert hits >= 0
    assert presented_z == hits and again_z == hits
    if hits:
        written, output = yaz_client_last(front_door.z3950_port, query.pqf, hits)
        assert f"Number of hits: {hits}" in output
        assert written == 1, output
        # The record past the last is refused with a diagnostic, the association kept.
        assert f"[13] Present request out of range -- v2 addinfo 'start {hits + 1} of " \
            f"{hits} records'" in output, output
    count_sruthi, iterated = sruthi_counts(front_door.sru, query.cql)
    counts, read, precisions = sru2_pages(front_door.sru, query.cql)
    assert count_sruthi == iterated == hits
    assert set(counts) == {hits} and read == hits
    assert len(set(precisions)) == 1 and precisions[0] in {PRECISION + "exact",
                                                           PRECISION + "minimum"}
    again, _, _ = z3950_counts(front_door.z3950_port, query.pqf)
    assert again == hits
    print(f"\nCOUNTS {query.label!r}: hits {hits}, Z39.50 {presented_z}, SRU sruthi "
          f"{iterated}, SRU 2.0 {read}, {precisions[0].rsplit('/', 1)[-1]}")


def test_each_members_own_total_is_shown_with_the_depth(front_door):
    """title=中国: members with more than the depth make the count a minimum; every member
    shows its own hits and the records of it in the set (at most the depth)."""
    libraries = sru_libraries(front_door.sru, "title=中国")
    assert (libraries.get("precision"), libraries.get("depth")) == ("minimum", str(DEPTH))
    members = libraries.findall(f"{BALIS}library")
    assert len(members) == 46
    answered = [m for m in members if m.get("status") == "ok"]
    assert len(answered) == 44  # cafa times out and buu is down, on purpose
    assert {m.get("id") for m in members if m.get("status") != "ok"} == {"cafa", "buu"}
    deeper = [m for m in answered if int(m.get("hits")) > DEPTH]
    assert deeper, "no member has more than the depth: the test proves nothing"
    for member in answered:
        assert int(member.get("fetched")) == min(int(member.get("hits")), DEPTH)
    # SRU 1.2 has no resultCountPrecision: extraResponseData says it.
    old = sru_libraries(front_door.sru, "title=中国", version="1.2")
    assert old.get("precision") == "minimum"


def test_a_search_within_the_depth_is_exact(front_door):
    libraries = sru_libraries(front_door.sru, "author=徐春")
    assert libraries.get("precision") == "exact"
    for member in libraries.findall(f"{BALIS}library"):
        if member.get("status") == "ok":
            assert int(member.get("hits")) <= DEPTH
            assert member.get("fetched") == member.get("hits")
