"""Z39.50 Scan (connectors/z3950/server_services.py) over the catalogues that can browse.

A union index built here from hand-made harvests, served through the union front door
(broker/catalogues/union.py) as ``balis serve`` serves it, and a MARC-file catalogue as the
demo's members serve it, are browsed by YAZ's yaz-client and zoomsh, clients nobody here
wrote: whole headings in folded order with their record counts, the start term where the
client asked for it, and every request we cannot honour answered with its Bib-1
diagnostic in a ScanResponse while the association and its result sets live on. A union
without a union index member answers 1025, "not supported for this database".
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from peers.servers import yaz_client_run

from broker.catalogues.marc_file import LocalCatalogue
from broker.catalogues.union import UnionCatalogue
from broker.kernel.config import loads
from broker.search.fanout import Broker
from broker.union_index.build import build, parse_source
from connectors.z3950.server import Z3950Server
from marc import Holding, Record

HOST = "127.0.0.1"


def _book(library: str, number: str, title: str, authors: tuple[str, ...], year: int,
          isbn: str | None = None, subjects: tuple[str, ...] = ()) -> Record:
    return Record(
        id=f"{library}:{number}", format="marc21", title=title, authors=authors,
        responsibility=authors[0], publisher="出版社", place="北京", year=year,
        language="chi", material_type="book", isbns=(isbn,) if isbn else (),
        subjects=subjects, call_numbers=("X/1",),
        holdings=(Holding(library, "书库", "X/1", f"{library}-{number}", "available"),))


# Two libraries; 红楼梦 and Computer networks are held by both (one merged record each),
# 中國經濟史 (traditional at b) and 中国经济史 (simplified at a) are one heading.
HARVESTS = {
    "a": [
        _book("a", "1", "数据结构", ("严蔚敏",), 2007, "9787302147510", ("数据结构", "算法")),
        _book("a", "2", "Computer networks", ("Tanenbaum, Andrew S.",), 2011, "9780132126953",
              ("Computer networks",)),
        _book("a", "3", "红楼梦", ("曹雪芹",), 2008, "9787020065875", ("小说",)),
        _book("a", "4", "中国经济史", ("张伟",), 1985, subjects=("经济史",)),
        _book("a", "5", "Perl cookbook", ("Christiansen, Tom", "Torkington, Nathan"), 1998,
              "9781565922433", ("Perl (Computer program language)",)),
    ],
    "b": [
        _book("b", "10", "Computer networks", ("Tanenbaum, Andrew S.",), 2011,
              "9780132126953"),
        _book("b", "11", "红楼梦", ("曹雪芹",), 2008, "9787020065875"),
        _book("b", "12", "中國經濟史", ("張偉",), 1985, subjects=("經濟史",)),
        _book("b", "13", "Programming Perl", ("Wall, Larry", "Christiansen, Tom"), 2000,
              "9780596000271", ("Perl (Computer program language)",)),
    ],
}


def _consortium(*libraries: dict):
    return loads(json.dumps({
        "consortium": {"name": "测试联盟", "max_selected": 10},
        "defaults": {"timeout": 10, "max_records": 50},
        "categories": [{"id": "test", "name": "测试图书馆"}],
        "libraries": list(libraries),
    }, ensure_ascii=False))


def _member(library_id: str, connector: dict) -> dict:
    return {"id": library_id, "name": f"{library_id}图书馆", "category": "test",
            "connector": connector}


@pytest.fixture(scope="module")
def union_index(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("scan")
    paths = []
    for library, records in HARVESTS.items():
        path = folder / f"{library}.jsonl"
        path.write_text("".join(json.dumps(r.as_dict(), ensure_ascii=False) + "\n"
                                for r in records), "utf-8")
        paths.append(path)
    index = folder / "union.sqlite"
    build([parse_source(str(p)) for p in paths], index)
    return index


@contextlib.contextmanager
def _loop() -> Iterator[asyncio.AbstractEventLoop]:
    """An event loop in a thread: yaz-client and zoomsh block the test's own."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield loop
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def _run(loop: asyncio.AbstractEventLoop, coroutine):
    return asyncio.run_coroutine_threadsafe(coroutine, loop).result(30)


@pytest.fixture(scope="module")
def served(union_index, marc_data):
    """One server, three databases: ``union`` (the union front door over a union index
    member and a live Z39.50 member), ``live`` (a union of the live member only) and
    ``local`` (a MARC file, as the demo's members are served)."""
    with _loop() as loop:
        member = Z3950Server({"member": LocalCatalogue(marc_data / "pymarc" / "test.dat",
                                                       name="member")})
        _run(loop, member.start())
        consortium = _consortium(
            _member("union", {"protocol": "local", "path": str(union_index)}),
            _member("live", {"protocol": "z3950",
                             "url": f"z3950://{HOST}:{member.port}/member"}))
        broker = Broker(consortium)
        server = Z3950Server({
            "union": UnionCatalogue(broker, ["live", "union"]),
            "live": UnionCatalogue(broker, ["live"], name="live"),
            "index": UnionCatalogue(broker, ["union"], name="index"),
            "local": LocalCatalogue(marc_data / "pymarc" / "test.dat", name="local"),
        })
        _run(loop, server.start())
        yield server
        _run(loop, server.close())
        _run(loop, member.close())
        _run(loop, broker.close())


def _entries(output: str) -> list[tuple[bool, str, int]]:
    """yaz-client's scan entries: (the start term's mark, term, records)."""
    return [(mark == "*", term, int(count)) for mark, term, count in
            re.findall(r"^([* ]) (.+) \((\d+)\)$", output, re.M)]


def _scans(output: str) -> list[str]:
    """yaz-client's output cut at each ScanResponse."""
    return output.split("Received ScanResponse")[1:]


def test_yaz_client_browses_the_union_index_through_the_union(served):
    output = yaz_client_run(HOST, served.port, "union", [
        "scan @attr 1=4 0", "scansize 3", "scanpos 2", "scan @attr 1=4 红楼梦",
        "scan @attr 1=1003 tanenbaum", "scan @attr 1=21 经济史", "scan @attr 1=7 9787",
        "scansize 20", "scanpos 1", "scan @attr 1=1016 perl"])
    assert "scan" in output.split("Options:")[1].split("\n")[0], output
    titles, red, authors, subjects, isbns, anything = _scans(output)
    # Whole titles in folded order (Latin before CJK), each counting merged records.
    assert _entries(titles) == [
        (True, "Computer networks", 1), (False, "Perl cookbook", 1),
        (False, "Programming Perl", 1), (False, "中国经济史", 1), (False, "数据结构", 1),
        (False, "红楼梦", 1)], titles
    assert "6 entries, position=1" in titles and "Scan returned code 5" in titles, titles
    # Traditional and simplified are one heading, shown as one library wrote it.
    assert _entries(red) == [(False, "数据结构", 1), (True, "红楼梦", 1)], red
    assert "Scan returned code 5" in red, red  # the list ends after 红楼梦
    assert _entries(authors) == [(False, "Christiansen, Tom", 2),
                                 (True, "Tanenbaum, Andrew S.", 1),
                                 (False, "Torkington, Nathan", 1)], authors
    assert "3 entries, position=2" in authors and "code" not in authors, authors
    # One merged record (simplified at a, traditional at b) under one subject heading.
    assert _entries(subjects) in ([(False, "算法", 1), (True, "经济史", 1)],
                                  [(False, "算法", 1), (True, "經濟史", 1)]), subjects
    assert [term for _, term, _ in _entries(isbns)] == [
        "9781565922433", "9787020065875", "9787302147510"], isbns
    assert _entries(anything)[:3] == [(True, "Perl (Computer program language)", 2),
                                      (False, "Perl cookbook", 1),
                                      (False, "Programming Perl", 1)], anything


def test_a_scanned_heading_finds_its_records(served):
    """Each heading searched as a whole field finds as many merged records as it counts."""
    for use in (4, 1003, 21, 7):
        output = yaz_client_run(HOST, served.port, "index",
                                ["scansize 50", f"scan @attr 1={use} 0"])
        entries = _entries(output)
        assert len(entries) >= 5, output
        searches = [f'find @attr 1={use} @attr 6=3 "{term}"' for _, term, _ in entries]
        found = yaz_client_run(HOST, served.port, "index", searches)
        hits = [int(n) for n in re.findall(r"Number of hits: (\d+)", found)]
        assert hits == [count for _, _, count in entries], (entries, found)


def test_zoomsh_browses_the_union(served):
    commands = (f"connect tcp:{HOST}:{served.port}/union\nset number 4\nset position 1\n"
                "scan @attr 1=4 programming\nscan @attr 1=1003 张\nquit\n")
    done = subprocess.run(["zoomsh"], input=commands.encode(), capture_output=True,
                          timeout=30, check=False)
    output = done.stdout.decode("utf-8", "replace")
    lines = [line for line in output.splitlines() if re.fullmatch(r".+ \d+", line)]
    # Titles from "programming" on; authors from 张: 张伟/張偉 (one heading), 曹雪芹.
    assert lines[:4] == ["Programming Perl 1", "中国经济史 1", "数据结构 1", "红楼梦 1"], output
    assert lines[4:] in (["张伟 1", "曹雪芹 1"], ["張偉 1", "曹雪芹 1"]), output


def test_a_union_without_a_union_index_says_scan_is_not_supported(served):
    """1025 in a ScanResponse; the result set searched before is still there."""
    output = yaz_client_run(HOST, served.port, "live", [
        "find @attr 1=4 perl", "scan @attr 1=4 perl", "show 1"])
    assert "Number of hits: 9" in output, output
    assert "Scan returned code 6" in output, output
    assert "[1025] Service not supported for this database" in output, output
    assert "v2 addinfo 'scan'" in output, output
    assert "Records: 1" in output.split("Received ScanResponse")[1], output


@pytest.mark.parametrize(("commands", "code", "addinfo"), [
    (["scan @attr 1=31 1999"], 114, "31"),  # year: no headings
    (["scan @attr 1=16 QA76"], 114, "16"),  # call number
    (["scan @attr 1=9999 x"], 114, "9999"),
    (["scan @attr 2=5 @attr 1=4 perl"], 117, "5"),
    (["scan @attr 5=2 @attr 1=4 perl"], 120, "2"),  # left truncation
    (["scan @attr 7=1 @attr 1=4 perl"], 113, "7"),
    (["scan @attrset exp1 @attr 1=4 perl"], 121, "1.2.840.10003.3.2"),
    (["scanstep 1", "scan @attr 1=4 perl"], 205, "1"),
    (["scansize 5", "scanpos 9", "scan @attr 1=4 perl"], 233, "9"),
])
def test_what_a_scan_cannot_do_is_a_diagnostic(served, commands, code, addinfo):
    output = yaz_client_run(HOST, served.port, "local",
                            ["find @attr 1=4 perl", *commands, "show 1"])
    answer = output.split("Received ScanResponse")[1]
    assert "Scan returned code 6" in answer, output
    assert re.search(rf"\[{code}\] .* -- v2 addinfo '{re.escape(addinfo)}'", answer), output
    assert "Records: 1" in answer, output  # the association and its result set live on


def test_yaz_client_browses_a_marc_file_catalogue(served):
    output = yaz_client_run(HOST, served.port, "local", [
        "scansize 4", "scanpos 2", "scan @attr 1=4 perl", "scan @attr 1=1003 brown",
        "scanpos 0", "scan @attr 1=4 perl", "scanpos 5", "scan @attr 1=4 perl",
        "scanpos 3", "scan @attr 1=4 zzz", "scanpos 1", "scan @attr 1=21 perl"])
    at, authors, after, before, end, subjects = _scans(output)
    assert _entries(at) == [(False, "Cross-platform Perl", 1), (True, "Perl", 2),
                            (False, "Perl for system administration", 1),
                            (False, "Perl programmer's interactive workbook", 1)], at
    assert [t for _, t, _ in _entries(authors)][0:2] == ["Blank-Edelman, David N.",
                                                         "Brown, Martin C."], authors
    # position 0: the start term just before the list; 5 of 4: just after it.
    assert "4 entries, position=0" in after and _entries(after)[0][1] == (
        "Perl for system administration"), after
    assert "3 entries, position=4" in before and _entries(before)[-1][1] == (
        "Cross-platform Perl"), before  # only three titles come before it
    assert "2 entries, position=3" in end and "Scan returned code 5" in end, end
    assert _entries(subjects)[0][:2] == (True, "Perl (Computer program language)"), subjects
