"""SRU ``scan`` (connectors/sru/scan.py) on our SRU server, from YAZ's clients and by hand.

The headings are those the Z39.50 Scan gives (tests/connectors/test_z3950_scan.py): a
MARC-file catalogue's, and the union front door's over a union index member; a catalogue
that cannot browse answers diagnostic 4, every bad parameter its own diagnostic, in a
scanResponse of the version asked (2.0: its scan namespace).
"""

from __future__ import annotations

import re
import subprocess
import urllib.parse
import urllib.request

import pytest
from lxml import etree
from peers.catalogues import LoopThread, MemoryCatalogue
from test_z3950_scan import HARVESTS, _consortium, _member

from broker.catalogues.marc_file import LocalCatalogue
from broker.catalogues.union import UnionCatalogue
from broker.search.fanout import Broker
from broker.union_index.build import build, parse_source
from connectors.sru.server import SruServer

ZS1 = "http://www.loc.gov/zing/srw/"
SCAN2 = "http://docs.oasis-open.org/ns/search-ws/scan"
DIAG1 = "http://www.loc.gov/zing/srw/diagnostic/"
DIAG2 = "http://docs.oasis-open.org/ns/search-ws/diagnostic"


@pytest.fixture(scope="module")
def server(tmp_path_factory, marc_data):
    import json

    folder = tmp_path_factory.mktemp("sru-scan")
    paths = []
    for library, records in HARVESTS.items():
        path = folder / f"{library}.jsonl"
        path.write_text("".join(json.dumps(r.as_dict(), ensure_ascii=False) + "\n"
                                for r in records), "utf-8")
        paths.append(path)
    index = folder / "union.sqlite"
    build([parse_source(str(p)) for p in paths], index)
    broker = Broker(_consortium(_member("union", {"protocol": "local", "path": str(index)})))
    thread = LoopThread()
    sru = SruServer({
        "local": LocalCatalogue(marc_data / "pymarc" / "test.dat", name="local"),
        "union": UnionCatalogue(broker, ["union"]),
        "memory": MemoryCatalogue("memory", "marc21", [marc_data / "pymarc" / "test.dat"]),
    })
    thread.run(sru.start())
    yield sru
    thread.run(sru.close())
    thread.run(broker.close())
    thread.close()


def _get(url: str, **params) -> etree._Element:
    with urllib.request.urlopen(f"{url}?{urllib.parse.urlencode(params)}", timeout=30) as r:
        assert r.status == 200
        return etree.fromstring(r.read())


def _terms(root: etree._Element, ns: str) -> list[tuple[str, int]]:
    return [(term.findtext(f"{{{ns}}}value"), int(term.findtext(f"{{{ns}}}numberOfRecords")))
            for term in root.iter(f"{{{ns}}}term")]


def test_scan_in_each_version(server):
    one = _get(server.url("local"), operation="scan", version="1.2",
               scanClause="dc.title = perl", maximumTerms=3, responsePosition=2)
    assert one.tag == f"{{{ZS1}}}scanResponse" and one.findtext(f"{{{ZS1}}}version") == "1.2"
    assert _terms(one, ZS1) == [("Cross-platform Perl", 1), ("Perl", 2),
                                ("Perl for system administration", 1)]
    two = _get(server.url("local"), scanClause="author=brown", maximumTerms=2)
    assert two.tag == f"{{{SCAN2}}}scanResponse"
    assert _terms(two, SCAN2) == [("Brown, Martin C.", 2), ("Bunce, Tim", 1)]


def test_scan_over_the_union_index(server):
    root = _get(server.url("union"), operation="scan", version="1.2",
                scanClause='title="红楼梦"', responsePosition=2, maximumTerms=3)
    assert _terms(root, ZS1) == [("数据结构", 1), ("红楼梦", 1)]


@pytest.mark.parametrize(("params", "code", "details"), [
    ({"scanClause": "year=1999"}, 16, "year"),
    ({"scanClause": "callnumber=QA76"}, 16, "callnumber"),
    ({"scanClause": "title within perl"}, 19, "within"),
    ({"scanClause": "title=perl and author=wall"}, 10, None),
    ({"scanClause": "title=perl", "maximumTerms": "0"}, 6, "maximumTerms"),
    ({"scanClause": "title=perl", "maximumTerms": "x"}, 6, "maximumTerms"),
    ({"scanClause": "title=perl", "maximumTerms": "3", "responsePosition": "5"}, 120, "5"),
    ({"scanClause": ""}, 7, "scanClause"),
])
@pytest.mark.parametrize("version", ["1.2", "2.0"])
def test_what_scan_cannot_do_is_a_diagnostic(server, params, code, details, version):
    extra = {"operation": "scan"} if version == "1.2" else {}
    root = _get(server.url("local"), version=version, **extra, **params)
    ns, diag_ns = (ZS1, DIAG1) if version == "1.2" else (SCAN2, DIAG2)
    assert root.tag == f"{{{ns}}}scanResponse"
    (diag,) = root.iter(f"{{{diag_ns}}}diagnostic")
    assert diag.findtext(f"{{{diag_ns}}}uri") == f"info:srw/diagnostic/1/{code}"
    if details is not None:
        assert diag.findtext(f"{{{diag_ns}}}details") == details
    assert not _terms(root, ns)


def test_a_catalogue_that_cannot_browse_says_unsupported_operation(server):
    root = _get(server.url("memory"), operation="scan", version="1.2", scanClause="title=x")
    assert root.findtext(f".//{{{DIAG1}}}uri") == "info:srw/diagnostic/1/4"


def test_yaz_client_scans_over_sru(server):
    commands = (f"open {server.url('local')}\nsru get 1.2\nquerytype cql\nscansize 3\n"
                "scan title=perl\nquerytype prefix\nscan @attr 1=1003 brown\nquit\n")
    done = subprocess.run(["yaz-client"], input=commands.encode(), capture_output=True,
                          timeout=30, check=False)
    output = done.stdout.decode("utf-8", "replace")
    assert output.count("Received SRW Scan Response") == 2, output
    assert re.findall(r"^(.+): (\d+)$", output, re.M) == [
        ("Perl", "2"), ("Perl for system administration", "1"),
        ("Perl programmer's interactive workbook", "1"), ("Brown, Martin C.", "2"),
        ("Bunce, Tim", "1"), ("Christiansen, Tom", "1")], output


def test_zoomsh_scans_over_sru(server):
    commands = (f"set sru get\nconnect {server.url('union')}\nset number 3\n"
                "scan @attr 1=4 红\nquit\n")
    done = subprocess.run(["zoomsh"], input=commands.encode(), capture_output=True,
                          timeout=30, check=False)
    output = done.stdout.decode("utf-8", "replace")
    assert [line for line in output.splitlines() if re.fullmatch(r".+ \d+", line)] == [
        "红楼梦 1"], output


def test_explain_says_which_indexes_can_be_scanned(server):
    zeerex = "http://explain.z3950.org/dtd/2.0/"
    for database, scannable in (("local", {"title", "author", "isbn", "any"}),
                                ("memory", set())):
        root = _get(server.url(database), operation="explain", version="1.2")
        scan = {entry.get("id").removeprefix("balis."): entry.get("scan")
                for entry in root.iter(f"{{{zeerex}}}index")}
        assert {name for name, value in scan.items() if value == "true"} >= scannable
        assert scan["year"] == scan["callnumber"] == "false"
        if not scannable:
            assert set(scan.values()) == {"false"}
