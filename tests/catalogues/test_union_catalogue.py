"""The union front door (broker/catalogues/union.py): the consortium as one catalogue, served by
our SRU server, over real members (tests/peers' Zebra reached by Z39.50 as ``za`` and by
SRU as ``zb``: the same books, so every record must merge into one held by both).
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import urllib.parse
import urllib.request

import pytest
from lxml import etree
from peers.catalogues import LoopThread, yaz_client_sru
from peers.consortia import consortium, dead, za, zb
from peers.fixtures import PROBES
from peers.servers import YazClientError, yaz_client_fetch, yaz_client_run

from broker.catalogues.union import UnionCatalogue, cluster_marc
from broker.kernel.config import loads
from broker.kernel.consortium import ConnectorConfig, Library
from broker.kernel.cql import parse
from broker.kernel.errors import ConnectorError, UnsupportedQuery
from broker.search.fanout import Broker
from broker.search.merge import Merger
from connectors.catalogue import Catalogue
from connectors.sru.client import SruConnector, parse_response
from connectors.sru.handler import handle
from connectors.sru.server import SruServer
from connectors.sru.xml import BALIS_NS
from connectors.z3950.connector import Z3950Connector
from connectors.z3950.server import Z3950Server
from marc import Holding, normalize, read_bytes, read_file
from marc.writer import holding_field, write_record

QUERY = "title=中国发展报告"
HITS = PROBES["zh_title_fazhan_baogao"]["hits"]  # 9 books, each in both za and zb


def client_library(url: str, *, flavour: str = "marc21", version: str = "1.2"):
    text = json.dumps({
        "consortium": {"name": "client", "max_selected": 10},
        "categories": [{"id": "c", "name": "c"}],
        "libraries": [{"id": "union", "name": "union", "category": "c", "connector": {
            "protocol": "sru", "url": url, "format": flavour, "sru_version": version,
            "max_records": 50}}],
    })
    return loads(text).libraries[0]


async def _client_search(lib, query: str, **kwargs):
    connector = SruConnector(lib)
    try:
        return await connector.search(parse(query), **kwargs)
    finally:
        await connector.close()


def holdings_852(marc) -> dict[str, list[tuple]]:
    """852 fields by library ($a): their ($b, $h, $p, $z) values."""
    out: dict[str, list[tuple]] = {}
    for field in marc.get_fields("852"):
        out.setdefault(field.get("a"), []).append(
            (field.get("b"), field.get("h"), field.get("p"), field.get("z")))
    return out


def _serving(zebra, server_class):
    """A server of ``server_class`` on a running broker over za and zb: database ``union``
    (MARC21) and ``cnmarc`` (UNIMARC)."""
    thread = LoopThread()

    async def start():
        broker = Broker(consortium(za(zebra), zb(zebra)))
        catalogues: dict[str, Catalogue] = {
            "union": UnionCatalogue(broker),
            "cnmarc": UnionCatalogue(broker, name="cnmarc", flavour="unimarc")}
        server = server_class(catalogues)
        await server.start()
        return broker, server

    broker, server = thread.call(start)
    yield server
    thread.run(server.close())
    thread.run(broker.close())
    thread.close()


@pytest.fixture(scope="module")
def union(zebra):
    """Our SRU server over the two unions."""
    yield from _serving(zebra, SruServer)


@pytest.fixture(scope="module")
def union_z3950(zebra):
    """Our Z39.50 server over the same two unions."""
    yield from _serving(zebra, Z3950Server)


# --- through SRU ----------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["1.2", "2.0"])
def test_a_client_sees_the_merged_records_with_every_librarys_holdings(union, version):
    page = asyncio.run(_client_search(client_library(union.url("union"), version=version),
                                      QUERY))
    assert page.hits == HITS == 9  # merged: not 18
    assert len(page.records) == HITS and page.problems == ()
    for record in page.records:
        assert record.format == "marc21"
        assert "中国发展报告" in record.title.replace(" ", "")
        marc = record.marc()
        assert marc.get_fields("245") and not marc.get_fields("200")
        by_library = holdings_852(marc)
        assert set(by_library) == {"za", "zb"}, by_library
        # The same items, whichever protocol brought them.
        assert sorted(by_library["za"]) == sorted(by_library["zb"])
    # BNU's real holdings (location, call number, status) are in the 852s.
    assert all(b and h and z for r in page.records if "97" not in r.title
               for items in holdings_852(r.marc()).values() for b, h, _, z in items)


def test_a_unimarc_union_keeps_the_cnmarc_records(union):
    page = asyncio.run(_client_search(client_library(union.url("cnmarc"), flavour="unimarc"),
                                      QUERY))
    assert page.hits == HITS
    for record in page.records:
        marc = record.marc()
        assert record.format == "unimarc" and marc.get_fields("200")
        assert ":" not in marc["001"].data  # the source's own 001: not written by us
        assert set(holdings_852(marc)) == {"za", "zb"}
    assert sum(bool(r.marc().get_fields("905")) for r in page.records) >= HITS - 1
    merged = asyncio.run(_client_search(client_library(union.url("union")), QUERY))
    # The MARC21 union's records are the crosswalk of the same books.
    assert sorted(r.title for r in page.records) == sorted(r.title for r in merged.records)
    assert sorted(r.year or 0 for r in page.records) == sorted(r.year or 0
                                                               for r in merged.records)


def test_the_answer_says_how_each_library_did(union):
    url = union.url("union") + "?" + urllib.parse.urlencode(
        {"version": "2.0", "query": QUERY, "maximumRecords": 0})
    with urllib.request.urlopen(url, timeout=60) as reply:
        body = reply.read()
    root = etree.fromstring(body)
    libraries = {e.get("id"): e for e in root.iter(f"{{{BALIS_NS}}}library")}
    assert set(libraries) == {"za", "zb"}
    assert {e.get("status") for e in libraries.values()} == {"ok"}
    assert {e.get("hits") for e in libraries.values()} == {str(HITS)}
    assert parse_response(body).hits == HITS
    assert root.findtext(".//{*}resultCountPrecision").endswith("/exact")


@pytest.mark.skipif(shutil.which("yaz-client") is None, reason="yaz-client not installed")
@pytest.mark.parametrize("transport", [[], ["sru get 1.2"], ["sru get 2.0"]])
def test_yaz_client_sees_the_merged_count(union, transport):
    output = yaz_client_sru(union.url("union"), [*transport, f"find {QUERY}", "show 1"])
    assert f"Number of hits: {HITS}" in output, output
    assert 'tag="852"' in output and ">za<" in output and ">zb<" in output, output


def test_paging_through_the_union(union):
    lib = client_library(union.url("union"))
    pages = [asyncio.run(_client_search(lib, QUERY, start=start, count=4))
             for start in (1, 5, 9)]
    assert [len(p.records) for p in pages] == [4, 4, 1]
    ids = [r.id for p in pages for r in p.records]
    assert len(set(ids)) == HITS


def test_query_errors_are_diagnostics(union):
    url = union.url("union") + "?" + urllib.parse.urlencode({"query": "nosuch=x"})
    with urllib.request.urlopen(url, timeout=60) as reply:
        (diag,) = parse_response(reply.read()).diagnostics
    assert (diag.code, diag.detail) == (16, "nosuch")


# --- through Z39.50: the record syntax a client asks for ------------------------------------


@pytest.mark.skipif(shutil.which("yaz-client") is None, reason="yaz-client not installed")
@pytest.mark.parametrize(("database", "syntax", "flavour"), [
    ("union", "unimarc", "unimarc"), ("union", "usmarc", "marc21"),
    ("cnmarc", "usmarc", "marc21"), ("cnmarc", "unimarc", "unimarc"),
])
def test_yaz_client_gets_the_syntax_it_asks_for_whatever_the_unions_flavour(
        union_z3950, database, syntax, flavour):
    got = yaz_client_fetch("127.0.0.1", union_z3950.port, database, "@attr 1=4 中国发展报告",
                           count=HITS, syntax=syntax, charset="UTF-8")
    assert len(got) == HITS
    for data in got:
        (entry,) = read_bytes(data, flavour=flavour, encoding="utf-8")
        marc = entry.record
        # Written in the flavour asked for: UNIMARC's 200 or MARC21's 245, never one
        # labelled as the other.
        assert bool(marc.get_fields("200")) == (flavour == "unimarc")
        assert bool(marc.get_fields("245")) == (flavour == "marc21")
        if flavour == "marc21":
            assert data[9:10] == b"a"  # leader/09: UTF-8
        assert set(holdings_852(marc)) == {"za", "zb"}
        title = normalize(marc, flavour=flavour).title or ""
        assert "中国发展报告" in title.replace(" ", "")


@pytest.mark.skipif(shutil.which("yaz-client") is None, reason="yaz-client not installed")
def test_yaz_client_is_told_of_a_syntax_the_union_has_not(union_z3950):
    with pytest.raises(YazClientError) as refused:
        yaz_client_fetch("127.0.0.1", union_z3950.port, "union", "@attr 1=4 中国发展报告",
                         syntax="grs1", charset="UTF-8")
    assert refused.value.code == 239


@pytest.mark.skipif(shutil.which("yaz-client") is None, reason="yaz-client not installed")
def test_yaz_client_sees_each_librarys_own_count_over_z3950(union_z3950):
    """The merged count, and each member's own hits in the searchResponse's
    additionalSearchInfo (searchResult-1: one part per library, yaz-client prints it)."""
    output = yaz_client_run("127.0.0.1", union_z3950.port, "union",
                            ["find @attr 1=4 中国发展报告"], charset="UTF-8")
    assert f"Number of hits: {HITS}" in output, output
    (line,) = [x for x in output.splitlines() if x.startswith("SearchResult-1:")]
    parts = {library: int(count) for count, library in re.findall(r"cnt=(\d+) id=(\w+)", line)}
    assert parts == {"za": HITS, "zb": HITS}, line
    # Our own client, federating the union as a member, reads past the extra element.
    member = Library("u", "union", "test", connector=ConnectorConfig(
        protocol="z3950", url=f"z3950://127.0.0.1:{union_z3950.port}/union", timeout=30,
        max_records=50))

    async def ours():
        connector = Z3950Connector(member)
        try:
            return await connector.search(parse(QUERY))
        finally:
            await connector.close()

    page = asyncio.run(ours())
    assert page.hits == HITS and len(page.records) == HITS


# --- the catalogue itself -------------------------------------------------------------------


def test_a_member_with_more_than_the_depth_gives_a_minimum_count_that_is_presented(zebra):
    """Pages of 3, depth 4: each library's first 4 records (of 9) make the set, fixed when
    the search is answered; paging presents exactly ``hits`` and fetches nothing."""
    async def run():
        async with Broker(consortium(za(zebra), zb(zebra), max_records=3)) as broker:
            union = UnionCatalogue(broker, depth=4)
            result = await union.search(parse(QUERY))
            assert result.precision == "minimum" and result.depth == 4
            hits = result.hits
            assert 4 <= hits <= 8
            libraries = {s["id"]: s for s in result.libraries}
            assert {lid: (s["hits"], s["fetched"], s["status"])
                    for lid, s in libraries.items()} == {"za": (HITS, 4, "ok"),
                                                         "zb": (HITS, 4, "ok")}
            arrived = len(result.session.arrivals)
            first = [r["001"].data for r in await result.fetch(1, 3)]
            records = await result.fetch(1, 50)
            assert len(records) == hits == result.hits
            assert await result.fetch(hits + 1, 5) == []
            assert [r["001"].data for r in records[:3]] == first
            assert len(result.session.arrivals) == arrived  # nothing fetched by presenting
            assert result.precision == "minimum"
            # The same search made afresh (not from the cache) gives the same books (ties
            # in rank may come in another order, and a cluster is named after whichever
            # library's record came first: the members' answers race).
            again = await UnionCatalogue(broker, depth=4, cache_ttl=0).search(parse(QUERY))
            assert again is not result and again.hits == hits

            def books(marcs):
                return sorted(r["001"].data.split(":")[-1] for r in marcs)
            assert books(await again.fetch(1, 50)) == books(records)
    asyncio.run(run())


def test_every_record_up_to_the_depth_is_merged_before_the_answer(zebra):
    """Pages of 3, default depth: both libraries are paged to their end first."""
    async def run():
        async with Broker(consortium(za(zebra), zb(zebra), max_records=3)) as broker:
            result = await UnionCatalogue(broker).search(parse(QUERY))
            assert (result.precision, result.hits, result.depth) == ("exact", HITS, 100)
            assert {s["fetched"] for s in result.libraries} == {HITS}
            assert len(await result.fetch(1, 100)) == HITS
            # A depth the pages overshoot: the last page's extra records are left out.
            deep = await UnionCatalogue(broker, depth=HITS - 1, cache_ttl=0).search(
                parse(QUERY))
            assert deep.precision == "minimum"
            assert {s["fetched"] for s in deep.libraries} == {HITS - 1}
            assert len(await deep.fetch(1, 100)) == deep.hits <= HITS
            exact = await UnionCatalogue(broker, depth=HITS, cache_ttl=0).search(parse(QUERY))
            assert (exact.precision, exact.hits) == ("exact", HITS)
    asyncio.run(run())


@pytest.mark.parametrize("depth", [0, -1, 2.5, True])
def test_the_depth_is_a_positive_integer(zebra, depth):
    async def run():
        async with Broker(consortium(za(zebra))) as broker:
            with pytest.raises(ValueError, match="depth"):
                UnionCatalogue(broker, depth=depth)
    asyncio.run(run())


def test_a_query_is_searched_once_while_cached(zebra):
    async def run():
        async with Broker(consortium(za(zebra), zb(zebra))) as broker:
            union = UnionCatalogue(broker)
            first, second = await asyncio.gather(union.search(parse(QUERY)),
                                                 union.search(parse(QUERY)))
            again = await union.search(parse(f"({QUERY})"))  # the same tree
            other = await union.search(parse("title=中国发*"))
            assert first is second is again and other is not first
            assert len(broker.store.live()) == 2
            uncached = UnionCatalogue(broker, cache_ttl=0)
            assert await uncached.search(parse(QUERY)) is not first
    asyncio.run(run())


def test_no_library_answering_is_an_error_naming_each_one():
    async def run():
        async with Broker(consortium(dead("gone"), timeout=3)) as broker:
            union = UnionCatalogue(broker)
            with pytest.raises(ConnectorError, match="gone"):
                await union.search(parse("perl"))
            status, _, body = await handle({"query": "perl"}, union,
                                           base_url="http://h/sru", database="sru")
            return status, body
    status, body = asyncio.run(run())
    (diag,) = parse_response(body).diagnostics
    assert status == 200 and diag.code == 2 and "gone" in str(diag)


def test_unknown_library_ids_fail_at_once(zebra):
    async def run():
        async with Broker(consortium(za(zebra))) as broker:
            with pytest.raises(Exception, match="nosuch"):
                UnionCatalogue(broker, ["nosuch"])
            with pytest.raises(ValueError, match="flavour"):
                UnionCatalogue(broker, flavour="mods")
    asyncio.run(run())


# --- MARC of a cluster -------------------------------------------------------------------------

KEPT = ("title", "subtitle", "authors", "publisher", "place", "year", "edition", "extent",
        "language", "material_type", "isbns", "issns", "subjects", "classification")


def _normalized(path, flavour, library):
    return [normalize(e.record, flavour=flavour, library=library)
            for e in read_file(path, flavour=flavour) if e.record is not None]


@pytest.mark.parametrize(("source", "flavour", "target"), [
    ("derived/bnu_cnmarc.utf8.iso", "unimarc", "marc21"),
    ("pymarc/test.dat", "marc21", "unimarc"),
    ("pymarc/test.dat", "marc21", "marc21"),
])
def test_the_crosswalk_keeps_what_normalization_keeps(marc_data, source, flavour, target):
    for record in _normalized(marc_data / source, flavour, "x"):
        marc = write_record(record, target)
        again = normalize(marc, flavour=target, library="x")
        assert again.format == target
        for key in KEPT:
            want, got = getattr(record, key), getattr(again, key)
            if key == "subjects":  # the crosswalk writes "a -- b" back as $a/$x
                want = tuple(s.replace(" -- ", "--") for s in want)
                got = tuple(s.replace(" -- ", "--") for s in got)
            if key == "classification":  # read back in tag order
                want, got = sorted(want, key=repr), sorted(got, key=repr)
            assert got == want, (key, record.id)
        assert len(str(marc.leader)) == 24


def test_a_cluster_uses_a_source_of_the_unions_flavour(marc_data):
    """A CNMARC record and a MARC21 one of the same book (the crosswalk of the first, by
    another library): each flavour of union gives the source in its own flavour."""
    (cnmarc, *_) = _normalized(marc_data / "derived/bnu_cnmarc.utf8.iso", "unimarc", "bnu")
    marc21 = normalize(write_record(cnmarc, "marc21", record_id="LC123"), flavour="marc21",
                       library="lc")
    merger = Merger()
    merger.add("bnu", [cnmarc])
    merger.add("lc", [marc21])
    (cluster,) = merger.clusters
    as_marc21 = cluster_marc(cluster, "marc21")
    assert as_marc21["001"].data == "LC123"
    as_unimarc = cluster_marc(cluster, "unimarc")
    assert as_unimarc.get_fields("200") and as_unimarc["001"].data == cnmarc.id.split(":")[1]
    for marc in (as_marc21, as_unimarc):
        by_library = holdings_852(marc)
        assert set(by_library) == {"bnu", "lc"}
        assert by_library["lc"] == [(None, None, None, None)]  # held, no item details
        assert len(by_library["bnu"]) == len(cnmarc.holdings)
    # The source is copied, never changed: its own MARC has no 852 from us.
    assert not cnmarc.marc().get_fields("852")


def test_a_record_without_its_marc_is_written_from_its_normalized_form(marc_data):
    (record, *_) = _normalized(marc_data / "pymarc/test.dat", "marc21", "m")
    bare = type(record)(**{**{k: getattr(record, k) for k in record.__slots__},
                           "source": None})
    merger = Merger()
    merger.add("m", [bare])
    marc = cluster_marc(merger.clusters[0], "marc21")
    assert marc["001"].data == record.id
    assert normalize(marc, flavour="marc21").title == record.title


def test_holding_field():
    field = holding_field(Holding("bupt", "中文书库", "I242.4/3", "0123456", "on_loan",
                                  "2024-05-01"))
    assert field is not None and field.tag == "852"
    assert [(s.code, s.value) for s in field.subfields] == [
        ("a", "bupt"), ("b", "中文书库"), ("h", "I242.4/3"), ("p", "0123456"),
        ("z", "on_loan"), ("z", "due 2024-05-01")]


def test_all_records_is_refused_with_a_reason_not_asked_of_every_member(zebra):
    async def run():
        async with Broker(consortium(za(zebra), zb(zebra))) as broker:
            union = UnionCatalogue(broker)
            with pytest.raises(UnsupportedQuery, match="harvest the member libraries"):
                await union.search(parse("cql.allRecords=1 not title=perl"))
            status, _, body = await handle({"query": "cql.allRecords = 1"}, union,
                                           base_url="http://h/sru", database="sru")
            assert not broker.store.live()  # no member was asked
            return status, body
    status, body = asyncio.run(run())
    (diag,) = parse_response(body).diagnostics
    assert status == 200 and diag.code == 48
