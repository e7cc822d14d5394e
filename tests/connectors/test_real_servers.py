"""Our SRU and Z39.50 connectors against real Zebra and yaz-ztest servers on loopback.

For every probe query (tests/peers/fixtures.py, counts checked against the records) our
hit count must equal the known count and yaz-client's count for our own translation of the
query; records must equal what yaz-client fetches, normalized the same way.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from peers.fixtures import PROBES
from peers.servers import YazZtest, ZebraServer, yaz_client_fetch, yaz_client_hits

from broker.kernel.config import ConnectorConfig, Library
from broker.kernel.cql import parse
from broker.kernel.errors import ConnectorTimeout, Diagnostic, ProtocolError
from connectors.sru.client import SruConnector
from connectors.z3950.client import Z3950Client
from connectors.z3950.connector import Z3950Connector
from connectors.z3950.rpn import to_pqf
from marc import normalize, read_bytes

Z_INDEXES = {"callnumber": "1=16"}
SRU_INDEXES = {"callnumber": "bath.callNumber"}
# Probes whose CQL uses an index outside the broker's language.
OURS = {name: probe for name, probe in PROBES.items() if not probe["cql"].startswith("rec.")}


def _library(protocol: str, url: str, fmt: str = "marc21", **options) -> Library:
    indexes = Z_INDEXES if protocol == "z3950" else SRU_INDEXES
    config = ConnectorConfig(protocol=protocol, url=url, format=fmt, timeout=10,
                             max_records=20, indexes=indexes, **options)
    return Library("peer", "Peer", "test", connector=config)


def _fmt(db: str) -> str:
    return "unimarc" if db == "unimarc" else "marc21"


def _search(connector, query: str, **kwargs):
    async def run():
        try:
            return await connector.search(parse(query), **kwargs)
        finally:
            await connector.close()

    return asyncio.run(run())


@pytest.mark.parametrize("name", sorted(OURS))
def test_z3950_hit_counts_match_the_probes_and_yaz_client(zebra, name):
    probe = OURS[name]
    library = _library("z3950", zebra.z3950_url(probe["db"]), _fmt(probe["db"]))
    page = _search(Z3950Connector(library), probe["cql"], count=0)
    assert page.hits == probe["hits"]
    pqf = to_pqf(parse(probe["cql"]), Z_INDEXES)
    assert yaz_client_hits(zebra.host, zebra.port, probe["db"], pqf) == page.hits, pqf


@pytest.mark.parametrize("name", sorted(OURS))
def test_sru_hit_counts_match_the_probes(zebra, name):
    probe = OURS[name]
    library = _library("sru", zebra.sru_url(probe["db"]), _fmt(probe["db"]))
    assert _search(SruConnector(library), probe["cql"], count=0).hits == probe["hits"]


@pytest.mark.parametrize(("db", "query", "syntax"), [
    ("unimarc", "title=中国发展报告", "unimarc"),
    ("marc21", "subject=fiction", "usmarc"),
    ("marc21", "中国", "usmarc"),
])
def test_z3950_records_equal_yaz_clients(zebra, db, query, syntax):
    library = _library("z3950", zebra.z3950_url(db), _fmt(db))
    page = _search(Z3950Connector(library), query, count=50)
    assert len(page.records) == page.hits > 0
    assert page.problems == ()
    pqf = to_pqf(parse(query), Z_INDEXES)
    raw = yaz_client_fetch(zebra.host, zebra.port, db, pqf, start=1, count=page.hits,
                           syntax=syntax)
    theirs = []
    for data in raw:
        theirs.extend(normalize(e.record, flavour=_fmt(db), library="peer")
                      for e in read_bytes(data) if e.record is not None)
    assert [r.as_dict() for r in page.records] == [r.as_dict() for r in theirs]


def test_chinese_records_arrive_whole(zebra):
    library = _library("z3950", zebra.z3950_url("unimarc"), "unimarc")
    page = _search(Z3950Connector(library), 'title="中国发展报告" and year>=1995', count=20)
    assert page.hits == len(page.records) > 0
    for record in page.records:
        assert "中国发展报告" in record.title.replace(" ", "")
        assert record.year >= 1995
        assert not record.warnings
        assert record.id.startswith("peer:")


def test_sru_and_z3950_give_the_same_normalized_records(zebra):
    z = _search(Z3950Connector(_library("z3950", zebra.z3950_url("unimarc"), "unimarc")),
                "subject=经济发展", count=20)
    s = _search(SruConnector(_library("sru", zebra.sru_url("unimarc"), "unimarc")),
                "subject=经济发展", count=20)
    assert z.hits == s.hits == len(z.records) == len(s.records)
    assert [r.as_dict() for r in z.records] == [r.as_dict() for r in s.records]


def test_xml_record_syntax(zebra):
    library = _library("z3950", zebra.z3950_url("marc21"), record_syntax="xml",
                       element_set="marcxml")
    xml = _search(Z3950Connector(library), "title=perl", count=20)
    iso = _search(Z3950Connector(_library("z3950", zebra.z3950_url("marc21"))),
                  "title=perl", count=20)
    assert xml.hits == iso.hits == 9
    assert [r.title for r in xml.records] == [r.title for r in iso.records]


def test_paging_presents_from_the_same_result_set(zebra, monkeypatch):
    searches = []
    original = Z3950Client.search

    async def counting(self, query, result_set="default"):
        searches.append(query)
        return await original(self, query, result_set)

    monkeypatch.setattr(Z3950Client, "search", counting)
    connector = Z3950Connector(_library("z3950", zebra.z3950_url("marc21")))

    async def run():
        first = await connector.search(parse("year>=2000"), start=1, count=5)
        second = await connector.search(parse("year>=2000"), start=6, count=5)
        last = await connector.search(parse("year>=2000"), start=16, count=5)
        beyond = await connector.search(parse("year>=2000"), start=40, count=5)
        await connector.close()
        return first, second, last, beyond

    first, second, last, beyond = asyncio.run(run())
    assert len(searches) == 1, "paging must not search again"
    assert first.hits == 17
    assert (len(first.records), len(second.records), len(last.records)) == (5, 5, 2)
    ids = [r.id for r in first.records + second.records + last.records]
    assert len(set(ids)) == 12
    assert beyond.records == () and beyond.hits == 17


def test_utf8_negotiation(zebra, ztest):
    async def negotiate(server):
        client = Z3950Client(server.host, server.port, "Default")
        await client.open()
        await client.close()
        return client.negotiated_utf8

    assert asyncio.run(negotiate(zebra)) is True
    assert asyncio.run(negotiate(ztest)) is False  # yaz-ztest declines; we still work


def test_unknown_database(zebra):
    with pytest.raises(Diagnostic) as z:
        _search(Z3950Connector(_library("z3950", zebra.z3950_url("nosuchdb"))), "title=x")
    assert z.value.code == 109 and "nosuchdb" in str(z.value)
    with pytest.raises(ProtocolError, match="HTTP 404"):
        _search(SruConnector(_library("sru", zebra.sru_url("nosuchdb"))), "title=x")


def test_unsupported_index_is_a_readable_diagnostic(zebra):
    library = _library("z3950", zebra.z3950_url("marc21"))
    library = Library("peer", "Peer", "test", connector=ConnectorConfig(
        protocol="z3950", url=zebra.z3950_url("marc21"), indexes={"title": "1=9999"}))
    with pytest.raises(Diagnostic) as info:
        _search(Z3950Connector(library), "title=perl")
    assert info.value.code == 114 and "use attribute" in str(info.value)


def test_query_a_library_cannot_express(zebra):
    from broker.kernel.errors import UnsupportedQuery

    plain = Library("peer", "Peer", "test", connector=ConnectorConfig(
        protocol="z3950", url=zebra.z3950_url("marc21")))
    with pytest.raises(UnsupportedQuery, match="call"):
        _search(Z3950Connector(plain), "callnumber=QA76")


def test_gb18030_server(tmp_path):
    with ZebraServer(marc_charset="gb18030", workdir=tmp_path) as server:
        library = _library("z3950", server.z3950_url("unimarc"), "unimarc",
                           encoding="gb18030")
        page = _search(Z3950Connector(library), "publisher=中国统计出版社", count=20)
    assert page.hits == 9 == len(page.records)
    assert all(r.publisher == "中国统计出版社" and not r.warnings for r in page.records)


def test_slow_member_times_out(ztest):
    library = _library("z3950", ztest.z3950_url("Default?search-delay=3"))
    library = Library("slow", "Slow", "test", connector=ConnectorConfig(
        protocol="z3950", url=ztest.z3950_url("Default?search-delay=3"), timeout=1))
    started = time.perf_counter()
    with pytest.raises(ConnectorTimeout):
        _search(Z3950Connector(library), "title=5")
    assert time.perf_counter() - started < 2.5


def test_ztest_hit_counts(ztest):
    library = _library("z3950", ztest.z3950_url("Default"))
    page = _search(Z3950Connector(library), "title=42", count=30)
    assert page.hits == 42 and len(page.records) == 30


def test_idle_connection_is_reused_and_replaced_when_the_server_closed_it(tmp_path, caplog):
    caplog.set_level("INFO", logger="connectors.z3950.connector")
    first = YazZtest(workdir=tmp_path)
    first.start()
    port = first.port
    library = Library("peer", "Peer", "test", connector=ConnectorConfig(
        protocol="z3950", url=f"z3950://127.0.0.1:{port}/Default"))
    connector = Z3950Connector(library)

    async def run():
        a = await connector.search(parse("title=3"))
        idle_after_a = list(connector._idle)
        b = await connector.search(parse("title=4"))
        idle_after_b = list(connector._idle)
        # The server goes away and comes back: the idle association is now dead.
        first.stop()
        with YazZtest(workdir=tmp_path / "again", port=port):
            c = await connector.search(parse("title=5"))
            await connector.close()
        return a, b, c, idle_after_a, idle_after_b

    try:
        a, b, c, idle_after_a, idle_after_b = asyncio.run(run())
    finally:
        first.close()
    assert (a.hits, b.hits, c.hits) == (3, 4, 5)
    assert len(idle_after_a) == 1 and idle_after_a == idle_after_b  # the same association
    assert "idle connection was closed; reconnecting" in caplog.text


@pytest.mark.parametrize("version", ["1.1", "1.2", "2.0"])
def test_sru_versions(zebra, version):
    library = _library("sru", zebra.sru_url("unimarc"), "unimarc", sru_version=version)
    page = _search(SruConnector(library), "title=中国发展报告", count=3)
    assert page.hits == 9 and len(page.records) == 3
    assert all("中国发展报告" in r.title for r in page.records)


def test_sru_string_packing_from_zebra(zebra):
    """recordPacking=string: the record is escaped text inside recordData."""
    import urllib.parse
    import urllib.request

    from connectors.sru.client import parse_response

    params = urllib.parse.urlencode({
        "version": "1.2", "operation": "searchRetrieve", "query": "dc.title=summerland",
        "maximumRecords": "1", "recordSchema": "marcxml", "recordPacking": "string"})
    with urllib.request.urlopen(f"{zebra.sru_url('marc21')}?{params}", timeout=10) as reply:
        body = reply.read()
    assert b"&lt;record" in body  # really escaped
    response = parse_response(body)
    assert response.hits == 1
    ((position, element, why),) = response.records
    assert why is None and position == 1
    from marc.marcxml import element_to_record

    record = normalize(element_to_record(element).record)
    assert record.title == "Summerland"


@pytest.mark.parametrize("protocol", ["z3950", "sru"])
def test_results_keep_their_marc_as_bytes_and_parse_it_on_demand(zebra, protocol):
    from marc.model import RawMarc

    url = zebra.z3950_url("unimarc") if protocol == "z3950" else zebra.sru_url("unimarc")
    connector = (Z3950Connector if protocol == "z3950" else SruConnector)(
        _library(protocol, url, "unimarc"))
    page = _search(connector, "title=中国发展报告", count=3)
    for record in page.records:
        assert isinstance(record.source, RawMarc)
        marc = record.marc()
        assert normalize(marc, flavour="unimarc", library="peer").as_dict() == record.as_dict()
