"""Our SRU server (connectors/sru/handler.py, on aiohttp in server.py) serving small
in-test catalogues.

The answers are checked three ways: against the catalogue itself (what it finds for the
query), through our own SRU client (connectors.sru.client.SruConnector) in versions 1.1, 1.2 and
2.0, and through YAZ's yaz-client (SRW/SOAP, GET and POST), the reference client.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import shutil
import urllib.error
import urllib.parse
import urllib.request

import pymarc
import pytest
from lxml import etree
from peers.catalogues import LoopThread, MemoryCatalogue, MemoryResultSet, yaz_client_sru

from broker.catalogues.marc_file import LocalCatalogue
from broker.kernel.config import loads
from broker.kernel.cql import ALL_RECORDS_CLAUSE, parse, to_cql
from broker.kernel.errors import ConnectorError, Diagnostic, QueryError, UnsupportedQuery
from connectors.sru.client import SruConnector, parse_response
from connectors.sru.diagnostics import query_diagnostic
from connectors.sru.handler import handle
from connectors.sru.request import DEFAULT_MAXIMUM_RECORDS, MAXIMUM_RECORDS
from connectors.sru.server import SruServer
from marc import normalize
from marc.marcxml import element_to_record

ZS1 = "http://www.loc.gov/zing/srw/"
ZS2 = "http://docs.oasis-open.org/ns/search-ws/sruResponse"
ZEEREX = "http://explain.z3950.org/dtd/2.0/"
MARC = "http://www.loc.gov/MARC21/slim"


# --- fixtures -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def catalogues(marc_data):
    return {
        "marc21": MemoryCatalogue("marc21", "marc21", [marc_data / "pymarc" / "test.dat",
                                                       marc_data / "marc4j" / "summerland.mrc"]),
        "unimarc": MemoryCatalogue("unimarc", "unimarc",
                                   [marc_data / "derived" / "bnu_cnmarc.utf8.iso"]),
    }


@pytest.fixture(scope="module")
def loop_thread():
    thread = LoopThread()
    yield thread
    thread.close()


@pytest.fixture(scope="module")
def server(catalogues, loop_thread):
    sru = SruServer(catalogues)
    loop_thread.run(sru.start())
    yield sru
    loop_thread.run(sru.close())


def library(url: str, *, flavour: str = "marc21", version: str = "1.2", max_records: int = 50):
    text = json.dumps({
        "consortium": {"name": "test", "max_selected": 10},
        "categories": [{"id": "test", "name": "test"}],
        "libraries": [{"id": "ours", "name": "ours", "category": "test", "connector": {
            "protocol": "sru", "url": url, "format": flavour, "sru_version": version,
            "max_records": max_records}}],
    })
    return loads(text).libraries[0]


async def _search(lib, query: str, **kwargs):
    connector = SruConnector(lib)
    try:
        return await connector.search(parse(query), **kwargs)
    finally:
        await connector.close()


def get(url: str, **params) -> tuple[int, bytes]:
    full = f"{url}?{urllib.parse.urlencode(params)}" if params else url
    try:
        with urllib.request.urlopen(full, timeout=30) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def diagnostic_of(body: bytes) -> tuple[int | str | None, str | None]:
    (diag, *_) = parse_response(body).diagnostics
    return diag.code, diag.detail


def _ids(records) -> list[str | None]:
    return [r.id.removeprefix("ours:") if r.id else None for r in records]


# --- our own client -----------------------------------------------------------------------

QUERIES = [
    ("marc21", "title=summerland"),
    ("marc21", "title=perl"),
    ("marc21", 'subject="perl (computer program language)"'),
    ("marc21", "title=prog*"),
    ("marc21", "year>=2000"),
    ("marc21", "perl not title=programming"),
    ("marc21", "balis.author=wall or dc.title=summerland"),
    ("marc21", "title=nonexistentword"),
    ("unimarc", "title=中国发展报告"),
    ("unimarc", "publisher=中国统计出版社 and year<=1997"),
]


@pytest.mark.parametrize("version", ["1.1", "1.2", "2.0"])
@pytest.mark.parametrize(("database", "query"), QUERIES)
def test_our_connector_gets_what_the_catalogue_finds(server, catalogues, database, query,
                                                     version):
    catalogue = catalogues[database]
    expected = catalogue.matching(parse(query))
    lib = library(server.url(database), flavour=catalogue.flavour, version=version)
    page = asyncio.run(_search(lib, query))
    assert page.hits == len(expected)
    assert page.problems == ()
    assert _ids(page.records) == _ids(expected)
    assert [r.title for r in page.records] == [r.title for r in expected]
    assert all(r.format == catalogue.flavour for r in page.records)
    # Holdings survive the trip (CNMARC's 905/906, owned by the client's library now).
    def items(records):
        return [[(h.location, h.call_number, h.barcode) for h in r.holdings] for r in records]
    assert items(page.records) == items(expected)


def test_the_expected_counts_are_the_known_ones(catalogues):
    """The in-test catalogue finds what Zebra's probes find in the same records."""
    assert len(catalogues["marc21"].matching(parse("title=summerland"))) == 1
    assert len(catalogues["marc21"].matching(parse("title=perl"))) == 9
    assert len(catalogues["unimarc"].matching(parse("title=中国发展报告"))) == 9


@pytest.mark.parametrize("version", ["1.2", "2.0"])
def test_paging_with_start_and_count(server, catalogues, version):
    lib = library(server.url("marc21"), version=version)
    whole = asyncio.run(_search(lib, "title=perl"))
    pages = [asyncio.run(_search(lib, "title=perl", start=start, count=4))
             for start in (1, 5, 9)]
    assert [p.hits for p in pages] == [9, 9, 9]
    assert [len(p.records) for p in pages] == [4, 4, 1]
    assert _ids(r for p in pages for r in p.records) == _ids(whole.records)


@pytest.mark.parametrize(("version", "ns"), [("1.2", ZS1), ("2.0", ZS2)])
def test_positions_and_next_record_position(server, version, ns):
    status, body = get(server.url("marc21"), version=version, operation="searchRetrieve",
                       query="title=perl", startRecord=4, maximumRecords=3)
    assert status == 200
    root = etree.fromstring(body)
    assert root.tag == f"{{{ns}}}searchRetrieveResponse"
    assert root.findtext(f"{{{ns}}}numberOfRecords") == "9"
    assert [int(p) for p in root.xpath("//zs:recordPosition/text()", namespaces={"zs": ns})] \
        == [4, 5, 6]
    assert root.findtext(f"{{{ns}}}nextRecordPosition") == "7"
    if version == "1.2":
        assert root.findtext(f"{{{ns}}}version") == "1.2"
    else:
        assert root.findtext(f"{{{ns}}}resultCountPrecision").endswith("/exact")
    # The last page has no next position.
    _, body = get(server.url("marc21"), version=version, operation="searchRetrieve",
                  query="title=perl", startRecord=7, maximumRecords=3)
    last = etree.fromstring(body)
    assert last.find(f"{{{ns}}}nextRecordPosition") is None
    assert len(parse_response(body).records) == 3


def test_default_page_size_and_count_only(server):
    _, body = get(server.url("marc21"), version="1.2", operation="searchRetrieve",
                  query="perl or summerland")
    response = parse_response(body)
    assert response.hits == 11
    assert len(response.records) == DEFAULT_MAXIMUM_RECORDS == 10
    _, body = get(server.url("marc21"), version="1.2", operation="searchRetrieve",
                  query="title=perl", maximumRecords=0)
    response = parse_response(body)
    assert response.hits == 9 and response.records == () and response.diagnostics == ()


@pytest.mark.parametrize(("version", "name"), [("1.2", "recordPacking"),
                                               ("2.0", "recordXMLEscaping")])
def test_string_packing(server, catalogues, version, name):
    _, body = get(server.url("unimarc"), version=version, operation="searchRetrieve",
                  query="title=中国发展报告", maximumRecords=2, **{name: "string"})
    root = etree.fromstring(body)
    data = root.xpath("//*[local-name()='recordData']")
    assert len(data) == 2 and all(len(d) == 0 and d.text.startswith("<record") for d in data)
    assert {e.text for e in root.xpath("//*[local-name()='recordXMLEscaping' or "
                                       "local-name()='recordPacking']")} == {"string"}
    response = parse_response(body)
    read = [element_to_record(e, flavour="unimarc").record for _, e, _ in response.records]
    titles = [normalize(r, flavour="unimarc").title for r in read if r is not None]
    expected = catalogues["unimarc"].matching(parse("title=中国发展报告"))[:2]
    assert titles == [r.title for r in expected]


def test_marcxml_is_valid_and_utf8(server):
    """MARC-8 records leave as Unicode MARCXML saying so (leader/09 'a')."""
    _, body = get(server.url("marc21"), query="title=summerland", recordSchema=
                  "info:srw/schema/1/marcxml-v1.1")
    root = etree.fromstring(body)
    (record,) = root.iter(f"{{{MARC}}}record")
    leader = record.findtext(f"{{{MARC}}}leader")
    assert len(leader) == 24 and leader[9] == "a"
    assert record.xpath("m:datafield[@tag='245']/m:subfield[@code='a']/text()",
                        namespaces={"m": MARC}) == ["Summerland /"]
    assert root.findtext(f".//{{{ZS2}}}recordSchema") == "info:srw/schema/1/marcxml-v1.1"


def test_version_defaults(server):
    """No version: 1.2 for a request naming an operation (a 1.x parameter), else 2.0."""
    _, body = get(server.url("marc21"), operation="searchRetrieve", query="perl")
    assert etree.fromstring(body).tag == f"{{{ZS1}}}searchRetrieveResponse"
    _, body = get(server.url("marc21"), query="perl")
    assert etree.fromstring(body).tag == f"{{{ZS2}}}searchRetrieveResponse"


def test_form_post(server):
    data = urllib.parse.urlencode({"version": "1.2", "operation": "searchRetrieve",
                                   "query": "title=summerland"}).encode()
    with urllib.request.urlopen(urllib.request.Request(server.url("marc21"), data=data),
                                timeout=30) as reply:
        assert parse_response(reply.read()).hits == 1


# --- explain ------------------------------------------------------------------------------


@pytest.mark.parametrize(("params", "ns"), [({}, ZS2),
                                            ({"version": "1.2", "operation": "explain"}, ZS1),
                                            ({"version": "2.0"}, ZS2)])
def test_explain_lists_our_indexes_and_schema(server, params, ns):
    status, body = get(server.url("marc21"), **params)
    assert status == 200
    root = etree.fromstring(body)
    assert root.tag == f"{{{ns}}}explainResponse"
    (explain,) = root.iter(f"{{{ZEEREX}}}explain")
    z = {"z": ZEEREX}
    server_info = explain.find("z:serverInfo", z)
    assert server_info.get("protocol") == "SRU"
    assert server_info.findtext("z:host", namespaces=z) == "127.0.0.1"
    assert server_info.findtext("z:port", namespaces=z) == str(server.port)
    assert server_info.findtext("z:database", namespaces=z) == "marc21"
    sets = {s.get("name"): s.get("identifier") for s in explain.iterfind("z:indexInfo/z:set", z)}
    assert {"balis", "dc", "bath"} <= set(sets)
    ours = explain.xpath("z:indexInfo/z:index/z:map/z:name[@set='balis']/text()", namespaces=z)
    assert ours == ["any", "title", "author", "subject", "isbn", "issn", "publisher", "year",
                    "callnumber"]
    title = explain.xpath("z:indexInfo/z:index[z:title='title']", namespaces=z)[0]
    assert {(n.get("set"), n.text) for n in title.iterfind("z:map/z:name", z)} >= {
        ("balis", "title"), ("dc", "title"), ("bath", "title")}
    # Every name explain lists is one our CQL accepts.
    for name in explain.iterfind("z:indexInfo/z:index/z:map/z:name", z):
        parse(f'{name.get("set")}.{name.text} = "2000"')
    schemas = {s.get("name"): s.get("identifier")
               for s in explain.iterfind("z:schemaInfo/z:schema", z)}
    assert schemas == {"marcxml": "info:srw/schema/1/marcxml-v1.1",
                       "dc": "info:srw/schema/1/dc-v1.1",
                       "mods": "info:srw/schema/1/mods-v3.6"}
    assert explain.xpath("z:configInfo/z:setting[@type='maximumRecords']/text()",
                         namespaces=z) == [str(MAXIMUM_RECORDS)]


# --- diagnostics --------------------------------------------------------------------------


@pytest.mark.parametrize(("params", "code", "detail"), [
    ({"query": "title=perl", "recordSchema": "nosuch"}, 66, "nosuch"),
    ({"query": "title=perl", "recordSchema": "info:srw/schema/1/onix-v2.1"}, 66,
     "info:srw/schema/1/onix-v2.1"),
    ({"query": 'title="unterminated'}, 10, "unterminated quoted term starting at position 7"),
    ({"query": "title=perl and"}, 10, None),
    ({"query": "nosuch=perl"}, 16, "nosuch"),
    ({"query": "title within perl"}, 19, "within"),
    ({"query": "title<perl"}, 22, "<"),
    ({"operation": "searchRetrieve", "version": "1.2"}, 7, "query"),
    ({"query": "   "}, 7, "query"),
    ({"query": "title=perl", "startRecord": "10"}, 61, "10"),
    ({"query": "title=perl", "startRecord": "0"}, 6, "startRecord"),
    ({"query": "title=perl", "startRecord": "x"}, 6, "startRecord"),
    ({"query": "title=perl", "maximumRecords": "-1"}, 6, "maximumRecords"),
    ({"query": "title=perl", "version": "3.0"}, 5, "2.0"),
    ({"query": "title=perl", "version": "1.0"}, 5, "2.0"),
    ({"operation": "update", "version": "1.2"}, 4, "update"),
    ({"query": "title=perl", "version": "1.2", "recordPacking": "json"}, 71, "json"),
    ({"query": "title=perl", "version": "2.0", "recordXMLEscaping": "json"}, 71, "json"),
    ({"query": "title=perl", "sortKeys": "title"}, 80, "title"),
    ({"query": "title=perl", "queryType": "pqf"}, 6, "queryType"),
])
@pytest.mark.parametrize("version", ["1.2", "2.0"])
def test_diagnostics(server, params, code, detail, version):
    params = {"version": version, **params}
    if "operation" not in params and version == "1.2":
        params["operation"] = "searchRetrieve"
    status, body = get(server.url("marc21"), **params)
    assert status == 200
    root = etree.fromstring(body)
    answered = params["version"] if params["version"] in ("1.2", "2.0") else (
        "1.2" if params["version"].startswith("1") else "2.0")
    ns = ZS2 if answered == "2.0" else ZS1
    diag_ns = ("http://docs.oasis-open.org/ns/search-ws/diagnostic" if answered == "2.0"
               else "http://www.loc.gov/zing/srw/diagnostic/")
    assert root.tag.startswith(f"{{{ns}}}")
    (diag,) = root.iter(f"{{{diag_ns}}}diagnostic")
    assert diag.findtext(f"{{{diag_ns}}}uri") == f"info:srw/diagnostic/1/{code}"
    assert diag.findtext(f"{{{diag_ns}}}message")
    got_code, got_detail = diagnostic_of(body)
    assert got_code == code
    if detail is not None:
        assert got_detail == detail
    assert b"Traceback" not in body


def test_start_past_the_end_still_counts(server):
    _, body = get(server.url("marc21"), query="title=perl", startRecord=10)
    root = etree.fromstring(body)
    assert root.findtext(f"{{{ZS2}}}numberOfRecords") == "9"
    assert diagnostic_of(body)[0] == 61
    # No hits at all: position 1 is not out of range, it is an empty answer.
    _, body = get(server.url("marc21"), query="title=nonexistentword")
    response = parse_response(body)
    assert (response.hits, response.diagnostics) == (0, ())


def test_maximum_records_is_capped_silently():
    """More than MAXIMUM_RECORDS asked: that many come, and nextRecordPosition goes on."""
    class Big:
        name, flavour = "big", "marc21"

        async def search(self, query):
            record = pymarc.Record()
            record.add_field(pymarc.Field(tag="245", indicators=pymarc.Indicators("0", "0"),
                                          subfields=[pymarc.Subfield("a", "x")]))
            return MemoryResultSet([record] * 250)

    status, _, body = asyncio.run(handle(
        {"query": "x", "maximumRecords": "1000", "version": "1.2"}, Big(),
        base_url="http://h/big", database="big"))
    root = etree.fromstring(body)
    assert status == 200
    assert root.findtext(f"{{{ZS1}}}numberOfRecords") == "250"
    assert len(root.findall(f"{{{ZS1}}}records/{{{ZS1}}}record")) == MAXIMUM_RECORDS
    assert root.findtext(f"{{{ZS1}}}nextRecordPosition") == str(MAXIMUM_RECORDS + 1)
    assert root.find(f"{{{ZS1}}}diagnostics") is None


def test_unknown_database_is_404_with_diagnostic_235(server):
    for params in ({"query": "perl"}, {"version": "1.2", "operation": "explain"}, {}):
        status, body = get(server.url("nosuchdb"), **params)
        assert status == 404
        assert diagnostic_of(body) == (235, "nosuchdb")


def test_our_connector_reports_the_missing_database(server):
    with pytest.raises(Diagnostic) as caught:
        asyncio.run(_search(library(server.url("nosuchdb")), "perl"))
    assert caught.value.code == 235


@pytest.mark.parametrize(("query", "code"), [
    ("nosuch=x", 16), ("title within x", 19), ("year adj 2000", 22), ("title<x", 22),
    ("title =/stem x", 20), ("a and/rel.algorithm=cql b", 46), ("a prox b", 37),
    ("title=a*b", 28), ("title=pe?l", 28), ('title=""', 27), ("year=19x", 36),
    ("year=2000*", 36), ("(a", 10), ("a)", 10), ("=a", 10), ("title=", 10), ("and", 10),
    ('"abc', 10), ("a " * 1001, 10),
    ("dc.title any/stem fish", 20), ("title all/relevant fish", 20),
    ("title=fish sortBy dc.date/sort.descending", 80), ("fish sortby title", 80),
    ('> x = "urn:nosuch" x.title = fish', 15), ('> "urn:nosuch" title = fish', 15),
    ("> = fish", 10),
])
def test_each_parser_message_has_its_diagnostic(query, code):
    """Pins broker.kernel.cql's messages to SRU codes: a reworded message fails here."""
    with pytest.raises(QueryError) as caught:
        parse(query)
    assert query_diagnostic(caught.value).code == code, str(caught.value)


DC = "info:srw/cql-context-set/1/dc-v1.1"


@pytest.mark.parametrize(("query", "same_as"), [
    (f'> dc = "{DC}" dc.title = perl', "title = perl"),
    (f'> d = "{DC}" d.creator = wall and d.title = perl', "author = wall and title = perl"),
    (f'> "{DC}" creator = wall', "author = wall"),
    (f'> "{DC}" title = perl', "title = perl"),  # ours when the set has no such index
    (f'(> d = "{DC}" d.title = perl) or title = x', "title = perl or title = x"),
    (f'> c = "{DC.upper()}/" c.subject = x', "subject = x"),
    ("> b = 'urn:balis-broker:cql-context-set:1.0' b.isbn = 1".replace("'", '"'),
     "isbn = 1"),
])
def test_prefix_maps_of_context_sets_we_know(query, same_as):
    assert parse(query) == parse(same_as)


def test_a_prefix_holds_only_inside_its_parentheses():
    with pytest.raises(QueryError, match=r"unknown index 'd\.title'"):
        parse(f'(> d = "{DC}" d.title = perl) or d.title = x')


@pytest.mark.parametrize("query", ["cql.allRecords=1", "cql.allRecords = 1",
                                   "CQL.allrecords = x", "allRecords=1",
                                   '> c = "info:srw/cql-context-set/1/cql-v1.1" c.allRecords=1'])
def test_all_records_is_one_clause(query):
    assert parse(query) == ALL_RECORDS_CLAUSE and ALL_RECORDS_CLAUSE.matches_all
    assert parse(to_cql(parse(query))) == ALL_RECORDS_CLAUSE


class _Failing:
    name, flavour = "failing", "marc21"

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc

    async def search(self, query):
        raise self.exc


@pytest.mark.parametrize(("exc", "status", "code"), [
    (RuntimeError("secret internals"), 500, 1),
    (UnsupportedQuery("this catalogue cannot search call numbers"), 200, 48),
    (ConnectorError("no member library answered (za: timeout)"), 200, 2),
    (QueryError("unknown index 'x': use one of ..."), 200, 16),
])
def test_catalogue_failures(exc, status, code, caplog):
    with caplog.at_level(logging.ERROR, logger="connectors.sru.handler"):
        got_status, kind, body = asyncio.run(handle(
            {"query": "perl"}, {"db": _Failing(exc)}, base_url="http://h/db", database="db"))
    assert (got_status, diagnostic_of(body)[0]) == (status, code)
    assert kind.startswith("text/xml")
    assert b"Traceback" not in body and b"secret" not in body
    if code == 1:
        assert "secret internals" in caplog.text  # logged, with its traceback
    else:
        assert str(exc) in str(parse_response(body).diagnostics[0])


def test_a_record_that_cannot_be_written_is_a_surrogate_diagnostic():
    class Broken:
        name, flavour = "broken", "marc21"

        async def search(self, query):
            good = pymarc.Record()
            good.add_field(pymarc.Field(tag="001", data="1"))
            return MemoryResultSet([good, None])

    _, _, body = asyncio.run(handle({"query": "x", "version": "1.2"}, Broken(),
                                    base_url="http://h/b", database="b"))
    response = parse_response(body)
    assert response.hits == 2
    (_, first, _), (_, second, why) = response.records
    assert first is not None and second is None and "64" in (why or "")


def test_one_catalogue_answers_any_database_name(catalogues):
    _, _, body = asyncio.run(handle({"query": "title=summerland"}, catalogues["marc21"],
                                    base_url="http://h/sru", database="sru"))
    assert parse_response(body).hits == 1


# --- Dublin Core and MODS -----------------------------------------------------------------

SRW_DC = "info:srw/schema/1/dc-schema"
DCE = "http://purl.org/dc/elements/1.1/"
MODS = "http://www.loc.gov/mods/v3"
SCHEMA_NS = {"d": DCE, "m": MODS}


def records_of(body: bytes) -> list[tuple[str, etree._Element]]:
    """Each record's schema and element, whatever its packing (a string is parsed)."""
    root = etree.fromstring(body)
    out = []
    for record in root.xpath("//*[local-name()='record' and *[local-name()='recordData']]"):
        schema = record.xpath("string(*[local-name()='recordSchema'])")
        (data,) = record.xpath("*[local-name()='recordData']")
        out.append((schema, data[0] if len(data) else etree.fromstring(data.text.encode())))
    return out


def dc_values(element: etree._Element) -> dict[str, list[str]]:
    assert element.tag == f"{{{SRW_DC}}}dc"
    values: dict[str, list[str]] = {}
    for child in element:
        assert child.tag.startswith(f"{{{DCE}}}"), child.tag
        values.setdefault(etree.QName(child).localname, []).append(child.text)
    return values


def mods_text(element: etree._Element, path: str) -> list[str]:
    return element.xpath(f"{path}/text()", namespaces=SCHEMA_NS)


@pytest.mark.parametrize(("version", "packing"), [("1.2", {"recordPacking": "xml"}),
                                                  ("1.2", {"recordPacking": "string"}),
                                                  ("2.0", {}),
                                                  ("2.0", {"recordXMLEscaping": "string"})])
@pytest.mark.parametrize("schema", ["dc", "info:srw/schema/1/dc-v1.1"])
def test_dublin_core_of_a_western_record(server, version, packing, schema):
    _, body = get(server.url("marc21"), version=version, operation="searchRetrieve",
                  query="title=summerland", recordSchema=schema, **packing)
    ((identifier, element),) = records_of(body)
    assert identifier == "info:srw/schema/1/dc-v1.1"
    dc = dc_values(element)
    assert dc["title"] == ["Summerland"]
    assert dc["creator"] == ["Chabon, Michael"]
    assert dc["publisher"] == ["Miramax Books/Hyperion Books for Children"]
    assert dc["date"] == ["2002"]
    assert dc["identifier"] == ["URN:ISBN:9780786808779", "URN:ISBN:9780786816156"]
    assert {"Fantasy", "Baseball -- Fiction"} <= set(dc["subject"])
    assert dc["language"] == ["eng"] and dc["format"] == ["500 p."]
    assert dc["type"] == ["Text", "book"]


def test_dublin_core_of_a_cnmarc_record(server):
    _, body = get(server.url("unimarc"), query="title=中国发展报告", recordSchema="dc",
                  maximumRecords=1)
    ((_, element),) = records_of(body)
    dc = dc_values(element)
    assert dc["title"] == ["'94中国发展报告"]
    assert dc["creator"] == ["叶震", "李强", "国家统计局"]
    assert dc["publisher"] == ["中国统计出版社"] and dc["date"] == ["1994"]
    assert dc["identifier"] == ["URN:ISBN:9787503717444"]
    assert dc["language"] == ["chi"] and dc["format"] == ["320页"]
    assert "F124" in dc["subject"]


@pytest.mark.parametrize("schema", ["mods", "info:srw/schema/1/mods-v3.6", MODS])
def test_mods_of_a_western_record(server, schema):
    _, body = get(server.url("marc21"), version="1.2", operation="searchRetrieve",
                  query="title=summerland", recordSchema=schema)
    ((identifier, mods),) = records_of(body)
    assert identifier == "info:srw/schema/1/mods-v3.6"
    assert mods.tag == f"{{{MODS}}}mods" and mods.get("version") == "3.6"
    assert all(e.tag.startswith(f"{{{MODS}}}") for e in mods.iter(etree.Element))
    assert mods_text(mods, "m:titleInfo/m:title") == ["Summerland"]
    assert mods_text(mods, "m:name[@usage='primary']/m:namePart") == ["Chabon, Michael"]
    assert mods_text(mods, "m:name/m:role/m:roleTerm") == ["creator"]
    assert mods_text(mods, "m:originInfo/m:place/m:placeTerm") == ["New York"]
    assert mods_text(mods, "m:originInfo/m:dateIssued") == ["2002"]
    assert mods_text(mods, "m:originInfo/m:edition") == ["1st ed."]
    assert mods_text(mods, "m:physicalDescription/m:extent") == ["500 p."]
    assert mods_text(mods, "m:language/m:languageTerm") == ["eng"]
    assert mods_text(mods, "m:identifier[@type='isbn']") == ["9780786808779",
                                                            "9780786816156"]
    assert "Fantasy" in mods_text(mods, "m:subject/m:topic")


def test_mods_of_a_cnmarc_record_with_its_holdings(server):
    _, body = get(server.url("unimarc"), query="title=中国发展报告", recordSchema="mods",
                  recordXMLEscaping="string", maximumRecords=1)
    ((_, mods),) = records_of(body)
    assert mods_text(mods, "m:titleInfo[not(@type)]/m:title") == ["'94中国发展报告"]
    assert mods_text(mods, "m:titleInfo[@type='alternative']/m:title") == [
        "'94Zhong Guo Fa Zhan Bao Gao"]
    assert mods_text(mods, "m:name/m:namePart") == ["叶震", "李强", "国家统计局"]
    assert mods_text(mods, "m:originInfo/m:publisher") == ["中国统计出版社"]
    assert mods_text(mods, "m:originInfo/m:place/m:placeTerm") == ["北京"]
    assert mods_text(mods, "m:classification[@authority='clc']") == ["F124"]
    assert mods_text(mods, "m:identifier[@type='isbn']") == ["9787503717444"]
    assert mods_text(mods, "m:location/m:physicalLocation") == ["86BNU_INST"] * 2
    assert mods_text(mods, "m:location/m:shelfLocator") == ["F124 26"] * 2
    assert mods_text(mods, "m:location/m:holdingSimple/m:copyInformation/m:subLocation")[0] \
        == "中文库本书—A-H(主馆六层)"


@pytest.mark.parametrize("flavour", ["marc21", "unimarc"])
def test_a_union_records_852_holdings_in_mods(flavour):
    """The union's 852s (every library's items, status and due date) read in either
    flavour, a UNIMARC union's too (whose normalizer reads no 852)."""
    from connectors.sru.schemas import MODS as MODS_SCHEMA
    from connectors.sru.schemas import record_element
    from marc import Holding
    from marc.writer import holding_fields  # what broker/catalogues/union.py writes

    record = pymarc.Record()
    record.add_field(pymarc.Field(tag="001", data="c1"))
    title = "200" if flavour == "unimarc" else "245"
    record.add_field(pymarc.Field(tag=title, indicators=pymarc.Indicators("1", "0"),
                                  subfields=[pymarc.Subfield("a", "Perl")]))
    for field in holding_fields([
            Holding("bupt", "Stacks", "TP312/45", "bupt-1", "on_loan", "2031-05-01"),
            Holding("pku", "Stacks", "TP312/45", "pku-1", "available")]):
        record.add_field(field)
    mods = record_element(MODS_SCHEMA, record, flavour=flavour, library="union")
    assert mods_text(mods, "m:location/m:physicalLocation") == ["bupt", "pku"]
    assert mods_text(mods, "m:location/m:shelfLocator") == ["TP312/45"] * 2
    copy = "m:location/m:holdingSimple/m:copyInformation"
    assert mods_text(mods, f"{copy}/m:note[@type='availability']") == [
        "on_loan, due 2031-05-01", "available"]
    assert mods_text(mods, f"{copy}/m:itemIdentifier") == ["bupt-1", "pku-1"]


# --- yaz-client ---------------------------------------------------------------------------

needs_yaz = pytest.mark.skipif(shutil.which("yaz-client") is None,
                               reason="yaz-client not installed (Debian yaz)")


@needs_yaz
@pytest.mark.parametrize("transport", [[], ["sru get 1.2"], ["sru post 1.1"],
                                       ["sru get 2.0"]])
@pytest.mark.parametrize(("database", "query", "hits", "shown"), [
    ("marc21", "title=summerland", 1, "Summerland /"),
    ("marc21", "title=perl", 9, "Perl"),
    ("unimarc", "title=中国发展报告", 9, "中国发展报告"),
])
def test_yaz_client_gets_the_same_answer(server, transport, database, query, hits, shown):
    output = yaz_client_sru(server.url(database), [*transport, f"find {query}", "show 1"])
    assert f"Number of hits: {hits}" in output, output
    assert shown in output.replace(" ", "") or shown in output, output
    assert "pos=1 schema=info:srw/schema/1/marcxml-v1.1" in output, output


@needs_yaz
def test_yaz_client_sees_our_diagnostics(server):
    output = yaz_client_sru(server.url("marc21"), ["sru get 1.2", "find nosuch=perl"])
    assert "16" in output and "nosuch" in output, output


@pytest.fixture(scope="module")
def local_server(marc_data, loop_thread):
    """A LocalCatalogue (what the demo's SRU members serve) behind our SRU server."""
    catalogue = LocalCatalogue(marc_data / "pymarc" / "test.dat", name="local")
    sru = SruServer({"local": catalogue})
    loop_thread.run(sru.start())
    yield sru, len(catalogue)
    loop_thread.run(sru.close())


@needs_yaz
@pytest.mark.parametrize("transport", [["sru get 1.2"], ["sru post 1.1"], ["sru get 2.0"]])
def test_yaz_client_harvests_with_all_records(local_server, transport):
    sru, size = local_server
    output = yaz_client_sru(sru.url("local"), [*transport, "find cql.allRecords=1",
                                                f"show {size}"])
    assert f"Number of hits: {size}" in output, output
    assert f"pos={size} schema=info:srw/schema/1/marcxml-v1.1" in output, output


@needs_yaz
def test_yaz_client_gets_unsupported_not_syntax_error(local_server):
    sru, _ = local_server
    finds = ["find title=perl sortBy dc.date/sort.descending", "find dc.title any/stem perl",
             'find > x = "urn:nosuch" x.title = perl',
             f'find > d = "{DC}" d.title = perl']
    output = yaz_client_sru(sru.url("local"), ["sru get 1.2", *finds])
    codes = re.findall(r"SRW diagnostic info:srw/diagnostic/1/(\d+)", output)
    assert codes == ["80", "20", "15"], output
    assert "syntax error" not in output.lower(), output
    assert output.rstrip().count("Number of hits:") == 4, output
    last = output.split("Received SRW SearchRetrieve Response")[-1]
    assert "Number of hits: 9" in last and "diagnostic" not in last, output  # prefix map


def test_sort_keys_and_a_sortby_parameter_are_refused(local_server):
    sru, _ = local_server
    for name in ("sortKeys", "sortBy"):
        _, body = get(sru.url("local"), query="title=perl", **{name: "title"})
        assert diagnostic_of(body) == (80, "title")


@needs_yaz
@pytest.mark.parametrize("transport", [["sru get 1.2"], ["sru post 1.1"], ["sru get 2.0"]])
def test_yaz_client_gets_dublin_core_and_mods(server, transport):
    """yaz-client's ``schema`` is SRU's recordSchema: each record in the schema asked."""
    output = yaz_client_sru(server.url("unimarc"), [
        *transport, "schema dc", "find title=中国发展报告", "show 1", "schema mods", "show 2",
        "schema nosuch", "show 3"])
    assert "pos=1 schema=info:srw/schema/1/dc-v1.1" in output, output
    assert "<dc:title>'94中国发展报告</dc:title>" in output, output
    assert "pos=2 schema=info:srw/schema/1/mods-v3.6" in output, output
    assert "<title>'95中国发展报告</title>" in output, output
    assert "info:srw/diagnostic/1/66" in output, output
