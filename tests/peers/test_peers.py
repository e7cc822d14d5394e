"""The test peers work: checked with yaz-client and plain HTTP only, never with our code."""

from __future__ import annotations

import socket
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
from lxml import etree
from pymarc import MARCReader

from peers.fixtures import PROBES
from peers.servers import (
    MARC_NS,
    PeerError,
    YazClientError,
    YazZtest,
    ZebraServer,
    yaz_client_fetch,
    yaz_client_hits,
    yaz_client_run,
)

pytest_plugins = ["peers.fixtures"]

SRU_NS = {"srw": "http://www.loc.gov/zing/srw/",
          "diag": "http://www.loc.gov/zing/srw/diagnostic/",
          "marc": MARC_NS}


def sru(server, database: str, query: str, **params: object) -> etree._Element:
    """An SRU 1.2 searchRetrieve over HTTP GET; the parsed response."""
    args = {"version": "1.2", "operation": "searchRetrieve", "query": query,
            "maximumRecords": 0, **params}
    url = f"{server.sru_url(database)}?{urllib.parse.urlencode(args)}"
    with urllib.request.urlopen(url, timeout=30) as response:
        assert response.status == 200
        return etree.fromstring(response.read())


def number_of_records(response: etree._Element) -> int:
    diag = response.findtext(".//diag:message", namespaces=SRU_NS)
    assert diag is None, f"SRU diagnostic: {diag}"
    return int(response.findtext("srw:numberOfRecords", namespaces=SRU_NS))


def test_probes_cover_the_brief():
    chinese = [p for p in PROBES.values() if any("\u4e00" <= c <= "\u9fff" for c in p["pqf"])]
    ranges = [p for p in PROBES.values() if "@attr 2=" in p["pqf"]]
    assert len(PROBES) >= 15
    assert {p["db"] for p in PROBES.values()} == {"marc21", "unimarc"}
    assert len(chinese) >= 3 and len(ranges) >= 2


def test_databases_loaded(zebra):
    assert zebra.databases["marc21"] == 44
    assert zebra.databases["unimarc"] == 11
    everything = '@attr 1=_ALLRECORDS @attr 2=103 ""'
    for db, count in zebra.databases.items():
        assert yaz_client_hits(zebra.host, zebra.port, db, everything) == count


@pytest.mark.parametrize("name", PROBES)
def test_probe_z3950(zebra, name):
    probe = PROBES[name]
    assert yaz_client_hits(zebra.host, zebra.port, probe["db"], probe["pqf"]) == probe["hits"]


@pytest.mark.parametrize("name", PROBES)
def test_probe_sru(zebra, name):
    probe = PROBES[name]
    assert number_of_records(sru(zebra, probe["db"], probe["cql"])) == probe["hits"]


def test_chinese_query_under_negotiated_gb18030(zebra):
    # yaz-client sends the term in GB18030; Zebra accepts the negotiation and converts it
    probe = PROBES["zh_title_fazhan_baogao"]
    hits = yaz_client_hits(zebra.host, zebra.port, "unimarc", probe["pqf"], charset="GB18030")
    assert hits == probe["hits"]


def test_year_relation_needs_numeric_structure(zebra):
    # ICU word registers only do equality: a range without 4=109 (or 4=4) is refused
    with pytest.raises(YazClientError) as err:
        yaz_client_hits(zebra.host, zebra.port, "marc21", "@attr 1=31 @attr 2=4 2000")
    assert err.value.code == 117
    year_structure = "@attr 1=31 @attr 2=4 @attr 4=4 2000"
    assert yaz_client_hits(zebra.host, zebra.port, "marc21", year_structure) == 17


def test_usmarc_retrieval(zebra):
    records = yaz_client_fetch(zebra.host, zebra.port, "marc21", "@attr 1=4 perl", count=3)
    assert len(records) == 3
    parsed = [next(iter(MARCReader(r, to_unicode=True, force_utf8=True))) for r in records]
    assert all(r.leader[9] == "a" for r in parsed)  # UTF-8
    assert all("perl" in r["245"]["a"].lower() for r in parsed)


def test_unimarc_retrieval_keeps_chinese(zebra):
    records = yaz_client_fetch(zebra.host, zebra.port, "unimarc", "@attr 1=4 中国发展报告",
                               syntax="unimarc", count=2)
    assert len(records) == 2
    for raw in records:
        assert int(raw[:5]) == len(raw)  # ISO 2709 record length in bytes
        record = next(iter(MARCReader(raw, to_unicode=True, force_utf8=True)))
        assert "中国发展报告" in record["200"]["a"]


def test_marcxml_retrieval_z3950(zebra):
    records = yaz_client_fetch(zebra.host, zebra.port, "marc21", "@attr 1=4 乔布斯的秘密日记",
                               syntax="xml", elementset="marcxml")
    assert len(records) == 1
    root = etree.fromstring(records[0])
    assert root.tag == f"{{{MARC_NS}}}record"
    titles = root.xpath("//m:datafield[@tag='880']/m:subfield[@code='a']/text()",
                        namespaces={"m": MARC_NS})
    assert any("乔布斯的秘密日记" in t for t in titles)
    assert "乔布斯".encode() in records[0]  # UTF-8, not character references


def test_sru_marcxml_records(zebra):
    response = sru(zebra, "unimarc", "title=中国发展报告", maximumRecords=3,
                   recordSchema="marcxml")
    assert number_of_records(response) == 9
    records = response.findall(".//srw:recordData/marc:record", namespaces=SRU_NS)
    assert len(records) == 3
    schemas = response.findall(".//srw:record/srw:recordSchema", namespaces=SRU_NS)
    assert {s.text for s in schemas} == {"info:srw/schema/1/marcxml-v1.1"}
    assert "中国发展报告" in records[0].findtext("m:datafield[@tag='200']/m:subfield[@code='a']",
                                             namespaces={"m": MARC_NS})


def test_sru_unknown_database_is_http_404(zebra):
    url = f"{zebra.sru_url('nosuchdb')}?version=1.2&operation=searchRetrieve&query=x"
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(url, timeout=30)
    assert err.value.code == 404
    assert err.value.headers.get_content_type() == "text/html"
    assert b"Error: 404" in err.value.read()


def test_sru_start_beyond_hits_is_diagnostic_61(zebra):
    response = sru(zebra, "marc21", "perl", maximumRecords=1, startRecord=50)
    assert response.findtext(".//diag:uri", namespaces=SRU_NS) == "info:srw/diagnostic/1/61"


def test_z3950_unknown_database_is_diagnostic_109(zebra):
    with pytest.raises(YazClientError) as err:
        yaz_client_hits(zebra.host, zebra.port, "nosuchdb", "@attr 1=4 perl")
    assert err.value.code == 109


def test_present_out_of_range_is_diagnostic_13(zebra):
    output = yaz_client_run(zebra.host, zebra.port, "marc21", ["find @attr 1=4 summerland",
                                                                "show 5+1"])
    assert "Number of hits: 1" in output
    assert "[13] Present request out of range" in output


def test_bulk_database(zebra):
    have = zebra.load_bulk(60)  # more when another test of the session loaded more first
    assert have >= 60
    assert zebra.load_bulk(30) == have  # already there
    assert yaz_client_hits(zebra.host, zebra.port, "bulk", "@attr 1=1016 synthetic") == have
    assert yaz_client_hits(zebra.host, zebra.port, "bulk", "@attr 1=12 bulk000060") == 1
    # distinct titles: copy 45 is the second clone of the first marc21 record
    assert yaz_client_hits(zebra.host, zebra.port, "bulk", '@attr 1=4 @attr 4=1 "copy 45"') == 1
    assert number_of_records(sru(zebra, "bulk", "cql.allRecords=1")) == have


def test_ztest_term_digits_give_hit_count(ztest):
    assert yaz_client_hits(ztest.host, ztest.port, "Default", "@attr 1=4 42") == 42
    assert yaz_client_hits(ztest.host, ztest.port, "db1", "5000") == 5000


def test_ztest_search_delay(ztest):
    started = time.monotonic()
    yaz_client_hits(ztest.host, ztest.port, "Default", "7")
    quick = time.monotonic() - started
    started = time.monotonic()
    assert yaz_client_hits(ztest.host, ztest.port, "Default?search-delay=1.5", "7") == 7
    slow = time.monotonic() - started
    assert quick < 1.0
    assert slow >= 1.5


def test_ztest_unknown_database_is_diagnostic_109(ztest):
    with pytest.raises(YazClientError) as err:
        yaz_client_hits(ztest.host, ztest.port, "nosuch", "1")
    assert err.value.code == 109


def test_ztest_sru(ztest):
    assert number_of_records(sru(ztest, "Default", "12")) == 12


def test_servers_stop_by_pid():
    with YazZtest() as server:
        process, port = server.process, server.port
        assert process is not None and server.pid == process.pid
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        time.sleep(0.2)  # SIGTERM right after accept() is ignored (then SIGKILL, 3 s later)
        started = time.monotonic()
    assert time.monotonic() - started < 2  # SIGTERM was enough
    assert process.poll() is not None  # our process is gone, and the port is closed
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_start_failure_reports_the_log(tmp_path):
    with socket.socket() as holder:  # the port is taken by someone else
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        server = YazZtest(port=holder.getsockname()[1], workdir=tmp_path, startup_timeout=5)
        try:
            with pytest.raises(PeerError, match="Address already in use"):
                server.start()
            assert server.process is None  # nothing left running
        finally:
            server.close()


def test_zebra_server_is_a_context_manager(tmp_path):
    # a second, independent Zebra (own port, own directory), e.g. with GB18030 MARC output
    with ZebraServer(workdir=tmp_path, marc_charset="gb18030") as other:
        records = yaz_client_fetch(other.host, other.port, "unimarc", "@attr 1=4 中国发展报告")
        assert "中国发展报告".encode("gb18030") in records[0]
    assert other.process is None
