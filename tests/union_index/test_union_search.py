"""Searching a union index as a ``protocol: local`` member (connectors/local/connector.py).

The hand-made harvests of ``union_data`` check what a reader sees through the Broker
(clusters carrying every holder's holdings, CJK words, traditional characters). The demo
consortium's 46 catalogues check the query semantics at scale: for each query the index must
find exactly the clusters of the records
``broker.catalogues.marc_file.LocalCatalogue`` (the demo servers'
engine, itself checked against Zebra) finds in the same files.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from union_data import consortium_of, local_member, write_harvests

from broker.catalogues.marc_file import LocalCatalogue
from broker.demo import catalogues as demo_catalogues
from broker.demo import members as demo_members
from broker.kernel.config import ConnectorConfig, Library, load
from broker.kernel.cql import parse
from broker.kernel.errors import ConfigError
from broker.search.fanout import Broker
from broker.union_index.build import Source, build, parse_source
from connectors.local.connector import LocalIndexConnector, open_index
from connectors.registry import create_connector
from marc import normalize


def _connector(index: Path, max_records: int = 20) -> LocalIndexConnector:
    library = Library("union", "联合目录", "test", connector=ConnectorConfig(
        protocol="local", url=index.as_uri(), path=str(index), max_records=max_records))
    return LocalIndexConnector(library)


def _search(connector, query: str, **kwargs):
    async def run():
        return await connector.search(parse(query), **kwargs)
    return asyncio.run(run())


@pytest.fixture()
def union(tmp_path) -> Path:
    folder = tmp_path / "harvest"
    folder.mkdir()
    index = tmp_path / "union.sqlite"
    build([parse_source(str(p)) for p in write_harvests(folder)], index)
    return index


async def _broker_search(cons, query: str, ids=None):
    async with Broker(cons) as broker:
        session = await broker.search(query, ids)
        await broker.wait(session)
        return session.snapshot(count=100)


def test_a_reader_sees_every_holder_of_each_book(union):
    cons = consortium_of(local_member("union", union))
    result = asyncio.run(_broker_search(cons, "红楼梦"))
    assert result["libraries"][0]["status"] == "ok"
    assert result["libraries"][0]["hits"] == 1
    [record] = result["records"]
    assert record["title"] == "红楼梦" and record["id"] == "a:3"
    assert record["libraries"] == ["a", "b", "c"]
    assert [(h["library"], h["barcode"]) for h in record["holdings"]] == [
        ("a", "a-3"), ("b", "b-11"), ("c", "c-20"), ("c", "c-21")]
    assert record["call_numbers"] == ["I242.4/3", "I242/9", "I242.4/1", "I242.4/1:2"]


@pytest.mark.parametrize(("query", "titles"), [
    ("title=中国经济", {"中国经济发展研究", "中國經濟史"}),  # b5's fullest record is b's
    ("title=中國經濟", {"中国经济发展研究", "中國經濟史"}),  # traditional folds to simplified
    ('title="数据结构"', {"数据结构"}),
    ("数据结构", {"数据结构"}),
    ("title=经济史", {"中國經濟史"}),
    ("title=中国的经济", set()),  # adjacent characters, not the characters anywhere
    ("title=济发", {"中国经济发展研究"}),  # a CJK word is not segmented: any substring
    ("subject=经济发展 and year>2010", {"中国经济发展研究"}),
    ("author=张伟", {"中國經濟史"}),
    ("title=comput*", {"Computer networks"}),
    ('title="networks computer"', set()),
    ("title all \"networks computer\"", {"Computer networks"}),
    ("title any \"networks 红楼梦\"", {"Computer networks", "红楼梦"}),
    ("title==红楼", set()),
    ("title==红楼梦", {"红楼梦"}),
    ("title==红楼*", {"红楼梦"}),
    ("isbn=7-302-14751-5", {"数据结构"}),  # the ISBN-10 of 9787302147510
    ("isbn=978730*", {"数据结构"}),
    ('callnumber="I242.4/1"', {"红楼梦"}),
    ("callnumber=F12*", {"中国经济发展研究", "中國經濟史"}),
    ("publisher=\"Prentice Hall\" or year<1990", {"Computer networks", "中國經濟史"}),
    ("经济 not author=王建国", {"中國經濟史"}),
    ("(title=红楼梦 or title=数据结构) and isbn=9787020065875", {"红楼梦"}),
    ("title=\"!!\"", set()),
])
def test_queries_find_clusters(union, query, titles):
    connector = _connector(union)
    page = _search(connector, query)
    assert {r.title for r in page.records} == titles
    assert page.hits == len(titles)
    asyncio.run(connector.close())


def test_paging_and_counting_only(union):
    connector = _connector(union, max_records=2)
    everything = _search(connector, "year>1900", count=10)
    assert everything.hits == 5 and len(everything.records) == 5
    first = _search(connector, "year>1900")
    assert [r.id for r in first.records] == [r.id for r in everything.records[:2]]
    rest = _search(connector, "year>1900", start=4, count=5)
    assert (rest.start, [r.id for r in rest.records]) == (4, [r.id for r in
                                                               everything.records[3:]])
    assert _search(connector, "year>1900", start=9).records == ()
    counted = _search(connector, "year>1900", count=0)
    assert (counted.hits, counted.records) == (5, ())
    asyncio.run(connector.close())


def test_a_rebuilt_index_is_searched_at_the_next_search(union, tmp_path):
    connector = _connector(union)
    assert _search(connector, "红楼梦").records[0].holdings[-1].library == "c"
    build([Source("a", tmp_path / "harvest" / "a.jsonl")], union)  # over the open one
    [record] = _search(connector, "红楼梦").records
    assert [h.library for h in record.holdings] == ["a"]
    assert _search(connector, "title=经济史").hits == 0
    # Published in rollback mode: no -wal/-shm files that could outlive their index.
    assert not list(union.parent.glob(f"{union.name}-*"))
    asyncio.run(connector.close())


def test_a_missing_index_is_that_librarys_error_only(union, tmp_path):
    cons = consortium_of(local_member("union", union),
                         local_member("gone", tmp_path / "gone.sqlite"))
    result = asyncio.run(_broker_search(cons, "红楼梦"))
    states = {lib["id"]: lib for lib in result["libraries"]}
    assert states["union"]["status"] == "ok" and states["union"]["hits"] == 1
    assert states["gone"]["status"] == "error" and states["gone"]["hits"] is None
    assert "gone.sqlite does not exist" in states["gone"]["error"]
    assert "balis index build" in states["gone"]["error"]


def test_config_local_libraries(tmp_path):
    (tmp_path / "conf").mkdir()
    path = tmp_path / "conf" / "libraries.yaml"
    path.write_text(
        "categories: [{id: t, name: 测试}]\n"
        "libraries:\n"
        "  - {id: union, name: 联合目录, category: t,\n"
        "     connector: {protocol: local, path: ../data/union.sqlite, max_records: 5}}\n"
        "  - {id: abs, name: 绝对, category: t,\n"
        f"     connector: {{protocol: local, path: {tmp_path / 'u.sqlite'}}}}}\n",
        "utf-8")
    cons = load(path)
    union = cons.library("union").connector
    assert union.path == str((tmp_path / "conf" / ".." / "data" / "union.sqlite").absolute())
    assert union.max_records == 5 and union.url.startswith("file:///")
    assert cons.library("abs").connector.path == str(tmp_path / "u.sqlite")
    assert isinstance(create_connector(cons.library("union")), LocalIndexConnector)
    path.write_text(
        "categories: [{id: t, name: 测试}]\n"
        "libraries:\n"
        "  - {id: a, name: 甲, category: t, connector: {protocol: local}}\n"
        "  - {id: b, name: 乙, category: t,\n"
        "     connector: {protocol: local, url: union.sqlite}}\n"
        "  - {id: c, name: 丙, category: t,\n"
        "     connector: {protocol: sru, url: 'http://h/x', path: union.sqlite}}\n",
        "utf-8")
    with pytest.raises(ConfigError) as caught:
        load(path)
    assert str(caught.value).splitlines() == [
        f"{path}:3: library 'a': protocol local needs path: the union index file "
        "(balis index build --out), or url: its PostgreSQL copy (balis index publish)",
        f"{path}:5: library 'b': a local library's url must be postgresql://host/database "
        "(an index published with 'balis index publish'), not 'union.sqlite'; an index file "
        "is path",
        f"{path}:7: library 'c': path is only for protocol local",
    ]


# --- the demo consortium: the same answers as LocalCatalogue -----------------------------


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The demo's catalogues, their union index, and a LocalCatalogue per member."""
    folder = tmp_path_factory.mktemp("demo-union")
    directory = demo_members.load_members()
    plans = demo_members.plan(lib.id for lib in directory.libraries)
    demo_catalogues.write(folder, plans, directory)
    index = folder / "union.sqlite"
    build([Source(p.id, folder / p.file_name) for p in plans], index)
    catalogues = {p.id: LocalCatalogue(folder / p.file_name, name=p.id) for p in plans}
    ids = {lib: [normalize(r, library=lib).id for r in cat.records]
           for lib, cat in catalogues.items()}
    db = open_index(index)
    cluster_of = {(lib, rid): c for lib, rid, c in db.execute(
        "SELECT library, record_id, cluster FROM records")}
    db.close()
    return index, catalogues, ids, cluster_of


def _demo_queries(catalogues) -> list[str]:
    """Queries over what the demo records really hold (an ISBN, an ISSN, a call number)."""
    some = next(iter(catalogues.values()))
    record = normalize(some.records[0])
    serial = next(normalize(r) for cat in catalogues.values() for r in cat.records
                  if normalize(r).issns)
    call = record.call_numbers[0] if record.call_numbers else "TP312"
    return [
        "title=中国", 'title="数据结构"', "数据结构", "title=经济*", "title=计算机 and year>=2015",
        "subject=计算机", "publisher=清华大学出版社", 'title all "中国 经济"',
        'title any "数据 网络"', "year=2000", "year<1990", "title=学报", "author=王*",
        "title=introduction", 'title="data structures"', "title=comput*",
        "title=history not subject=history", "中国 or title=journal", "title==中国经济",
        f"isbn={record.isbns[0] if record.isbns else '9787302147510'}",
        f"issn={serial.issns[0]}", f'callnumber="{call}"', "callnumber=TP3*",
        "publisher=press and title=theory", "title=研究 and title=发展",
    ]


def test_the_demo_index_answers_as_the_demo_catalogues_do(demo):
    index, catalogues, ids, cluster_of = demo
    connector = _connector(index)
    checked = 0
    for query in _demo_queries(catalogues):
        node = parse(query)
        expected = {cluster_of[(lib, ids[lib][pos])]
                    for lib, cat in catalogues.items() for pos in cat.evaluate(node)}
        page = _search(connector, query, count=0)
        assert page.hits == len(expected), query
        checked += bool(expected)
    assert checked >= 20  # the queries really find something
    asyncio.run(connector.close())


def test_the_demo_index_through_the_broker(demo):
    index, catalogues, *_ = demo
    cons = consortium_of(local_member("union", index, max_records=200))
    result = asyncio.run(_broker_search(cons, 'title="数据结构"'))
    assert result["libraries"][0]["hits"] == len(result["records"]) > 0
    for record in result["records"]:
        assert "数据结构" in record["title"] + (record["subtitle"] or "")
        # Every holder of the cluster, each with its own holdings.
        assert record["libraries"] == list(dict.fromkeys(h["library"]
                                                         for h in record["holdings"]))
        assert set(record["libraries"]) <= set(catalogues)
    assert max(len(r["libraries"]) for r in result["records"]) > 1
    assert os.path.getsize(index) > 0
