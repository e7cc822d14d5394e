"""SRU sorting on the union's merged set: ``sortKeys`` (SRU 1.1) and CQL's ``sortBy``
(SRU 2.0), sent by plain HTTP and read with lxml, over real members (tests/peers' Zebra:
``m`` by Z39.50 and ``ms`` by SRU hold the same books). Also the sort itself
(broker/catalogues/union_sort.py) on records made here: missing values, ties, abort.
"""

from __future__ import annotations

import re
import urllib.parse
import urllib.request

import pytest
from lxml import etree
from peers.catalogues import LoopThread, MemoryCatalogue
from peers.consortia import consortium, m, ms

from broker.catalogues.union import UnionCatalogue
from broker.catalogues.union_sort import order_records
from broker.kernel.sorting import SortError, SortKey
from broker.search.fanout import Broker
from connectors.sru.server import SruServer
from marc.model import Record

ZS1 = "http://www.loc.gov/zing/srw/"
ZS2 = "http://docs.oasis-open.org/ns/search-ws/sruResponse"
MARC = "http://www.loc.gov/MARC21/slim"


@pytest.fixture(scope="module")
def served(zebra, marc_data):
    """Our SRU server: ``union`` over m and ms; ``plain``, a catalogue that cannot sort."""
    thread = LoopThread()

    async def start():
        broker = Broker(consortium(m(zebra), ms(zebra)))
        server = SruServer({
            "union": UnionCatalogue(broker),
            "plain": MemoryCatalogue("plain", "marc21", [marc_data / "pymarc" / "test.dat"])})
        await server.start()
        return broker, server

    broker, server = thread.call(start)
    yield server
    thread.run(server.close())
    thread.run(broker.close())
    thread.close()


def _get(server, database: str = "union", **params) -> etree._Element:
    url = f"{server.url(database)}?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=60) as reply:
        return etree.fromstring(reply.read())


def _fold(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.casefold()).split())


def _rows(root: etree._Element) -> list[tuple[str, str, int | None]]:
    """(title, first author, year) of each MARCXML record, in order."""
    rows = []
    for record in root.iter(f"{{{MARC}}}record"):
        def sub(tag: str, code: str = "a", record=record) -> str:
            found = record.find(f"{{{MARC}}}datafield[@tag='{tag}']/"
                                f"{{{MARC}}}subfield[@code='{code}']")
            return found.text if found is not None and found.text else ""
        fixed = record.find(f"{{{MARC}}}controlfield[@tag='008']")
        year = fixed.text[7:11] if fixed is not None and fixed.text else ""
        title = _fold(sub("245").split("/")[0].split(":")[0])
        author = next((v for v in map(sub, ("100", "110", "111", "700")) if v), "")
        rows.append((title, _fold(author), int(year) if year.isdigit() else None))
    return rows


def _diagnostics(root: etree._Element) -> list[tuple[str, str]]:
    return [(d.findtext("{*}uri", "").rpartition("/")[2], d.findtext("{*}details", ""))
            for d in root.iter("{*}diagnostic")]


def test_sort_keys_in_sru_1_1(served):
    root = _get(served, version="1.1", operation="searchRetrieve", query="title=perl",
                maximumRecords=9, sortKeys="title,,0")
    assert root.tag == f"{{{ZS1}}}searchRetrieveResponse" and not _diagnostics(root)
    assert root.findtext(f"{{{ZS1}}}numberOfRecords") == "9"
    titles = [title for title, _, _ in _rows(root)]
    assert len(titles) == 9 and titles == sorted(titles, reverse=True), titles


def test_several_sort_keys_and_paging_through_the_sorted_set(served):
    """dc.date descending, then dc.creator: page 2 goes on where page 1 stopped."""
    pages = [_rows(_get(served, version="1.1", operation="searchRetrieve",
                        query="title=perl", startRecord=start, maximumRecords=4,
                        sortKeys="dc.date,,0 dc.creator,marcxml,1"))
             for start in (1, 5, 9)]
    rows = [row for page in pages for row in page]
    assert [len(page) for page in pages] == [4, 4, 1]
    keys = [(-(year or 0), author) for _, author, year in rows]
    assert keys == sorted(keys) and len({year for *_, year in rows}) == 2, rows


def test_sort_by_in_cql_in_sru_2_0(served):
    root = _get(served, version="2.0", query="title=perl sortBy dc.creator/sort.descending",
                maximumRecords=9)
    assert root.tag == f"{{{ZS2}}}searchRetrieveResponse" and not _diagnostics(root)
    authors = [author for _, author, _ in _rows(root)]
    assert len(authors) == 9 and authors == sorted(authors, reverse=True), authors
    assert authors[0].startswith("wall")


def test_sort_by_the_year_with_missing_values_and_titles(served):
    root = _get(served, query="title=perl sortby year/sort.ascending title/sort.ascending",
                maximumRecords=9)
    rows = _rows(root)
    assert [(year, title) for title, _, year in rows] == sorted(
        (year or 9999, title) for title, _, year in rows)


def test_the_query_sort_prevails_over_sort_keys(served):
    root = _get(served, version="1.1", operation="searchRetrieve",
                query="title=perl sortby title", sortKeys="title,,0", maximumRecords=9)
    assert _diagnostics(root) == [("94", "title,,0")]
    titles = [title for title, _, _ in _rows(root)]
    assert titles == sorted(titles) and len(titles) == 9


@pytest.mark.parametrize(("params", "code", "details"), [
    ({"version": "1.1", "sortKeys": "subject"}, "88", "subject"),
    ({"version": "1.1", "sortKeys": "title,nosuchschema"}, "87", "nosuchschema"),
    ({"version": "1.1", "sortKeys": "title,,up"}, "90", "up"),
    ({"version": "1.1", "sortKeys": "title,,1,x"}, "91", "x"),
    ({"version": "1.1", "sortKeys": "title,,1,0,omit"}, "92", "omit"),
    ({"version": "1.1", "sortKeys": " ".join(["title"] * 6)}, "84", "6"),
    ({"version": "2.0", "query": "title=perl sortby subject"}, "88", "subject"),
    ({"version": "2.0", "query": "title=perl sortby title/sort.missingOmit"}, "92",
     "sort.missingOmit"),
    ({"version": "2.0", "query": "title=perl sortby"}, "10", None),
])
def test_a_sort_we_cannot_do_is_its_diagnostic(served, params, code, details):
    params = {"query": "title=perl", **params}
    if params["version"] == "1.1":
        params["operation"] = "searchRetrieve"
    root = _get(served, **params)
    (diagnostic,) = _diagnostics(root)
    assert diagnostic[0] == code, diagnostic
    if details is not None:
        assert diagnostic[1] == details
    assert not _rows(root)


def test_a_catalogue_that_cannot_sort_says_so(served):
    for params in ({"version": "1.1", "operation": "searchRetrieve", "sortKeys": "title"},
                   {"version": "2.0", "query": "title=perl sortby title"}):
        root = _get(served, "plain", **{"query": "title=perl", **params})
        assert [code for code, _ in _diagnostics(root)] == ["80"]


# --- the sort itself ---------------------------------------------------------------------------


def _record(title: str | None, year: int | None, author: str | None = None) -> Record:
    return Record(id=f"x:{title}:{year}", format="marc21", title=title, year=year,
                  authors=(author,) if author else ())


BOOKS = [_record("Beta", 2001, "Li"), _record(None, 1999), _record("alpha", None, "Zhang"),
         _record("Alpha", 2001), _record("中国", 2005, "王"), _record("Zoo", 1990)]


def _order(*keys: SortKey) -> list[tuple[str | None, int | None]]:
    return [(r.title, r.year) for r in order_records(BOOKS, keys, lambda r: r)]


def test_missing_values_go_last_either_way_unless_asked():
    assert _order(SortKey("year", False)) == [
        ("中国", 2005), ("Beta", 2001), ("Alpha", 2001), (None, 1999), ("Zoo", 1990),
        ("alpha", None)]
    assert _order(SortKey("year", True))[-1] == ("alpha", None)
    assert _order(SortKey("year", True, missing="low"))[0] == ("alpha", None)
    assert _order(SortKey("year", False, missing="low"))[-1] == ("alpha", None)
    assert _order(SortKey("year", False, missing="high"))[0] == ("alpha", None)
    with pytest.raises(SortError) as caught:
        _order(SortKey("title", missing="abort"))
    assert caught.value.problem == "missing_value"


def test_titles_fold_case_and_sort_chinese_in_pinyin_among_latin():
    # alpha/Alpha tie when folded and keep their order; 中国 is "zhong1 guo2", before Zoo.
    assert _order(SortKey("title")) == [
        ("alpha", None), ("Alpha", 2001), ("Beta", 2001), ("中国", 2005), ("Zoo", 1990),
        (None, 1999)]
    # Case-sensitive: case decides the tie.
    assert _order(SortKey("title", case_sensitive=True))[:2] == [("Alpha", 2001),
                                                                 ("alpha", None)]


def test_later_keys_break_ties_of_earlier_ones():
    assert _order(SortKey("year", False), SortKey("title"))[1:3] == [("Alpha", 2001),
                                                                    ("Beta", 2001)]
    authors = [r.authors for r in order_records(BOOKS, [SortKey("author")], lambda r: r)]
    assert authors[:3] == [("Li",), ("王",), ("Zhang",)]  # wang2 before zhang1
