"""The union index published into PostgreSQL (broker/union_index/publish.py) and searched as
a ``protocol: local`` member with ``url: postgresql://...`` (connectors/local/pg_index.py),
on a real PostgreSQL the tests start (fixture ``postgres``, tests/peers/postgres.py).

The best proof is the cross-check: over the demo consortium's 46 catalogues and the
hand-made harvests, every query finds the same records, hits and merged records in
PostgreSQL as in the SQLite file it was published from.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import psycopg
import pytest
from union_data import HARVESTS, book, consortium_of, write_harvests, write_jsonl

from broker.demo import catalogues as demo_catalogues
from broker.demo import members as demo_members
from broker.kernel.config import ConnectorConfig, Library, loads
from broker.kernel.cql import parse
from broker.kernel.errors import ConfigError, UsageError
from broker.search.fanout import Broker
from broker.union_index.build import Source, build, parse_source
from broker.union_index.publish import PublishError, publish
from connectors.local import pg_index
from connectors.local.connector import COUNT_CAP, LocalIndexConnector, open_index
from connectors.local.connector import matching_records as sqlite_matching
from connectors.local.pg_index import PgIndexConnector, connect, matching_records
from connectors.local.pg_schema import parse_url
from connectors.registry import create_connector

ROOT = Path(__file__).resolve().parents[2]


def balis(*args: str) -> subprocess.CompletedProcess:
    """The command from this checkout (whatever an installed console script points at)."""
    return subprocess.run([sys.executable, "-m", "balis", *args], capture_output=True,
                          text=True, timeout=120, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})


_schemas = itertools.count(1)


def _url(postgres, schema: str | None = None) -> str:
    """A libpq URL of the test server, with a schema of its own for each index."""
    base = postgres.url().replace("postgresql+psycopg://", "postgresql://")
    return f"{base}?schema={schema or f'idx{next(_schemas)}'}"


def _library(url: str, max_records: int = 20) -> Library:
    return Library("union", "联合目录", "test", connector=ConnectorConfig(
        protocol="local", url=url, max_records=max_records))


def _sqlite(index: Path, max_records: int = 20) -> LocalIndexConnector:
    return LocalIndexConnector(Library("union", "联合目录", "test", connector=ConnectorConfig(
        protocol="local", url=index.as_uri(), path=str(index), max_records=max_records)))


def _search(connector, query: str, **kwargs):
    async def run():
        return await connector.search(parse(query), **kwargs)
    return asyncio.run(run())


def _close(*connectors) -> None:
    async def run():
        for connector in connectors:
            await connector.close()
    asyncio.run(run())


def _by_id(records) -> list:
    return sorted(records, key=lambda r: r.id)


def _harvest_index(tmp_path: Path, harvests: dict | None = None, name: str = "union") -> Path:
    folder = tmp_path / f"{name}-harvest"
    folder.mkdir(exist_ok=True)
    if harvests is None:
        paths = write_harvests(folder)
    else:
        paths = [write_jsonl(folder / f"{lib}.jsonl", recs) for lib, recs in harvests.items()]
    index = tmp_path / f"{name}.sqlite"
    build([parse_source(str(p)) for p in paths], index)
    return index


@pytest.fixture(scope="module")
def demo(tmp_path_factory, postgres):
    """The demo's 46 catalogues as one union index, published; (index file, URL)."""
    folder = tmp_path_factory.mktemp("demo-pg")
    directory = demo_members.load_members()
    plans = demo_members.plan(lib.id for lib in directory.libraries)
    demo_catalogues.write(folder, plans, directory)
    index = folder / "union.sqlite"
    build([Source(p.id, folder / p.file_name) for p in plans], index)
    url = _url(postgres, "demo")
    report = publish(index, url)
    assert report.created and report.written == report.clusters > 1000
    return index, url


QUERIES = [
    # CJK words, single characters, phrases, traditional characters
    "title=中国", "中国", "title=中", "title=国", "title=中國", "title=经济", "title=中国经济",
    "title=中国的经济", "title=学报", 'title="数据结构"', "数据结构", "title=研究",
    "北京", "title=历史",
    # phrases, truncation, whole values, all/any
    'title="data structures"', "title=introduction", "title=comput*", "title=经济*",
    'title all "中国 经济"', 'title any "数据 网络"', 'title all "计算机 网络 原理"',
    "title==中国经济", "title==数据结构*", "any==红楼梦", "title=the",
    # author, subject, publisher
    "author=王*", "author=张", "subject=计算机", "subject=history", "publisher=清华大学出版社",
    "publisher=press",
    # years, booleans, not
    "year=2000", "year<1990", "year>=2015", "year<=1985", "year>2020",
    "title=计算机 and year>=2015", "title=history not subject=history",
    "中国 or title=journal", "publisher=press and title=theory",
    "title=研究 and title=发展", "(title=中国 or title=北京) not year<2000",
    "subject=计算机 not title=网络", "year>=2010 and year<2012",
    # identifiers
    "callnumber=TP3*", "callnumber=I*", "isbn=978*",
]


def _identifier_queries(index: Path) -> list[str]:
    """An ISBN (both forms), an ISSN and a call number the demo records really hold."""
    db = open_index(index)
    isbn = db.execute("SELECT value FROM identifiers WHERE kind = 'isbn' AND "
                      "length(value) = 10 LIMIT 1").fetchone()[0]
    issn = db.execute("SELECT value FROM identifiers WHERE kind = 'issn' LIMIT 1").fetchone()[0]
    call = db.execute("SELECT value FROM identifiers WHERE kind = 'callnumber' AND "
                      "value LIKE '%/%' LIMIT 1").fetchone()[0]
    db.close()
    return [f"isbn={isbn}", f"issn={issn}", f'callnumber="{call}"', f"issn={issn[:4]}-*"]


def test_every_query_finds_the_same_records_as_the_sqlite_engine(demo):
    index, url = demo
    sqlite_db = open_index(index)
    pg = connect(parse_url(url))
    found = 0
    for query in [*QUERIES, *_identifier_queries(index)]:
        expected = sqlite_matching(sqlite_db, parse(query))
        assert matching_records(pg, parse(query)) == expected, query
        found += bool(expected)
    assert found >= len(QUERIES) - 3  # nearly every query really finds something
    pg.close()
    sqlite_db.close()


def test_the_same_hits_and_merged_records_as_the_sqlite_engine(demo):
    index, url = demo
    ours, theirs = PgIndexConnector(_library(url)), _sqlite(index)
    for query in ["title=中国", 'title="数据结构"', "title=comput*", "year<1990",
                  "subject=计算机 not title=网络", "publisher=press and title=theory"]:
        a = _search(ours, query, count=2000)
        b = _search(theirs, query, count=2000)
        assert a.hits == b.hits == len(a.records) > 0, query
        # Every cluster as the same Record: best record, every holder's holdings, MARC.
        assert _by_id(a.records) == _by_id(b.records), query
        assert any(r.source is not None for r in a.records)
    _close(ours, theirs)


def test_pages_continue_one_another_in_one_order(demo):
    _, url = demo
    connector = PgIndexConnector(_library(url))
    whole = _search(connector, "title=中国", count=500)
    assert whole.hits == len(whole.records) > 45
    pages = [_search(connector, "title=中国", start=start, count=20)
             for start in range(1, whole.hits + 1, 20)]
    assert {p.hits for p in pages} == {whole.hits}
    assert [r.id for p in pages for r in p.records] == [r.id for r in whole.records]
    assert _search(connector, "title=中国", start=whole.hits + 1).records == ()
    _close(connector)


def test_a_count_past_the_cap_is_the_cap_and_pages_in_build_order(demo, monkeypatch):
    index, url = demo
    connector, theirs = PgIndexConnector(_library(url)), _sqlite(index)
    exact = _search(connector, "year>=1900", count=0).hits
    assert exact < COUNT_CAP
    monkeypatch.setattr(pg_index, "COUNT_CAP", 50)
    first = _search(connector, "year>=1900", count=30)
    second = _search(connector, "year>=1900", start=31, count=30)
    assert first.hits == second.hits == 50  # a minimum, as the SQLite engine counts
    ids = [r.id for r in (*first.records, *second.records)]
    assert len(set(ids)) == 60
    whole = _search(connector, "year>=1900", count=60)
    assert [r.id for r in whole.records] == ids  # build order, one page after another
    # Ranked below RANK_LIMIT, build order above: the same clusters either way.
    monkeypatch.setattr(pg_index, "COUNT_CAP", 100_000)
    monkeypatch.setattr(pg_index, "RANK_LIMIT", 0)
    unranked = _search(connector, "title=中国", count=500)
    monkeypatch.setattr(pg_index, "RANK_LIMIT", 100_000)
    ranked = _search(connector, "title=中国", count=500)
    assert _by_id(unranked.records) == _by_id(ranked.records)
    assert ranked.hits == _search(theirs, "title=中国", count=0).hits
    _close(connector, theirs)


def test_a_reader_sees_every_holder_through_the_broker(tmp_path, postgres):
    url = _url(postgres)
    publish(_harvest_index(tmp_path), url)
    cons = consortium_of({"id": "union", "name": "联合目录", "category": "test",
                          "connector": {"protocol": "local", "url": url}})
    assert isinstance(create_connector(cons.library("union")), PgIndexConnector)

    async def run():
        async with Broker(cons) as broker:
            session = await broker.search("红楼梦")
            await broker.wait(session)
            return session.snapshot(count=100)
    result = asyncio.run(run())
    assert result["libraries"][0]["status"] == "ok" and result["libraries"][0]["hits"] == 1
    [record] = result["records"]
    assert record["id"] == "a:3" and record["libraries"] == ["a", "b", "c"]
    assert [(h["library"], h["barcode"]) for h in record["holdings"]] == [
        ("a", "a-3"), ("b", "b-11"), ("c", "c-20"), ("c", "c-21")]


def _changed_harvests() -> dict:
    """c's new harvest: c:21 withdrawn, c:22 recatalogued under a new title."""
    harvests = {lib: list(recs) for lib, recs in HARVESTS.items()}
    harvests["c"] = [harvests["c"][0],
                     book("c", "22", "中国古代经济史", "张伟", 1986, call="F129/8")]
    return harvests


def _xmins(url: str) -> dict[int, str]:
    target = parse_url(url)
    with psycopg.connect(target.conninfo) as db:
        return dict(db.execute(f"SELECT id, xmin::text FROM {target.schema}.clusters"))


def test_a_second_publish_rewrites_only_the_clusters_that_changed(tmp_path, postgres):
    url = _url(postgres)
    first = publish(_harvest_index(tmp_path), url)
    assert (first.created, first.clusters, first.records) == (True, 5, 10)
    again = publish(_harvest_index(tmp_path), url)
    assert (again.created, again.written, again.removed) == (False, 0, 0)
    before = _xmins(url)
    update = publish(_harvest_index(tmp_path, _changed_harvests(), "new"), url)
    after = _xmins(url)
    # 红楼梦 (c:21 gone) and 中国经济史 (c:22 left it) change, c:22 is a new cluster.
    assert (update.written, update.removed, update.clusters, update.records) == (3, 0, 6, 9)
    assert {c for c in after if after[c] == before.get(c)} == {1, 2, 4}
    connector = PgIndexConnector(_library(url))
    assert _search(connector, "title=红楼梦").records[0].holdings[-1].barcode == "c-20"
    assert [r.id for r in _search(connector, "title=古代").records] == ["c:22"]
    assert _search(connector, "title=中国经济史").hits == 1  # b's alone now
    _close(connector)
    gone = publish(_harvest_index(tmp_path, {"a": HARVESTS["a"]}, "only-a"), url)
    assert (gone.written, gone.removed, gone.clusters, gone.records) == (2, 2, 4, 4)


def test_a_reader_during_a_publish_sees_the_old_index_or_the_new(tmp_path, postgres):
    url = _url(postgres)
    publish(_harvest_index(tmp_path), url)
    connector = PgIndexConnector(_library(url))
    old = _by_id(_search(connector, "title=红楼梦 or title=经济").records)
    target = parse_url(url)
    blocker = psycopg.connect(target.conninfo)
    # Holding SHARE on clusters stops the publish after it has deleted and rewritten
    # records, before it can touch clusters: its transaction is half done, uncommitted.
    blocker.execute(f"LOCK TABLE {target.schema}.clusters IN SHARE MODE")
    outcome: list[object] = []
    writer = threading.Thread(target=lambda: outcome.append(
        publish(_harvest_index(tmp_path, _changed_harvests(), "new"), url)))
    writer.start()
    with psycopg.connect(target.conninfo, autocommit=True) as watcher:
        for _ in range(200):
            waiting = watcher.execute("SELECT count(*) FROM pg_locks WHERE NOT granted"
                                      ).fetchone()
            if waiting and waiting[0]:
                break
            writer.join(0.05)
        assert waiting and waiting[0], "the publish never waited for the lock"
    during = _by_id(_search(connector, "title=红楼梦 or title=经济").records)
    blocker.rollback()
    blocker.close()
    writer.join(60)
    assert outcome and outcome[0].written == 3
    new = _by_id(_search(connector, "title=红楼梦 or title=经济").records)
    assert during == old != new
    assert [len(r.holdings) for r in new if r.title == "红楼梦"] == [3]
    _close(connector)


def test_two_brokers_and_a_command_line_search_share_one_index(tmp_path, postgres):
    url = _url(postgres)
    publish(_harvest_index(tmp_path), url)
    entry = {"id": "union", "name": "联合目录", "category": "test",
             "connector": {"protocol": "local", "url": url}}

    async def run():
        async with Broker(consortium_of(entry)) as one, Broker(consortium_of(entry)) as two:
            sessions = [await one.search("title=中国经济"), await two.search("author=曹雪芹")]
            for broker, session in zip((one, two), sessions, strict=True):
                await broker.wait(session)
            return [s.snapshot(count=10) for s in sessions]
    first, second = asyncio.run(run())
    assert first["libraries"][0]["hits"] == 2 and second["libraries"][0]["hits"] == 1
    config = tmp_path / "libraries.yaml"
    config.write_text(json.dumps({
        "categories": [{"id": "test", "name": "测试"}], "libraries": [entry]},
        ensure_ascii=False), "utf-8")
    done = balis("search", "--config", str(config), "--json", "-q", "title=数据结构")
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert [r["id"] for r in answer["records"]] == ["a:1"]


def test_a_server_that_is_down_is_the_librarys_error_not_a_crash(tmp_path, postgres):
    from peers.servers import free_port

    down = f"postgresql://balis:secret@127.0.0.1:{free_port('127.0.0.1')}/x"
    missing = _url(postgres, "never_published")

    async def run():
        cons = consortium_of(
            {"id": "down", "name": "甲", "category": "test",
             "connector": {"protocol": "local", "url": down, "timeout": 3}},
            {"id": "missing", "name": "乙", "category": "test",
             "connector": {"protocol": "local", "url": missing}})
        async with Broker(cons) as broker:
            session = await broker.search("中国")
            await broker.wait(session)
            return session.snapshot(count=10)
    result = asyncio.run(run())
    states = {lib["id"]: lib for lib in result["libraries"]}
    assert states["down"]["status"] == "error" and states["down"]["hits"] is None
    assert "cannot be reached" in states["down"]["error"]
    assert "secret" not in states["down"]["error"]
    assert "has been published" in states["missing"]["error"]
    with pytest.raises(PublishError, match="cannot reach") as caught:
        publish(_harvest_index(tmp_path), down)
    assert "secret" not in str(caught.value) and "***" in str(caught.value)


def test_the_command_publishes_and_says_what_changed(tmp_path, postgres):
    url = _url(postgres)
    index = _harvest_index(tmp_path)
    done = balis("index", "publish", str(index), url)
    assert done.returncode == 0, done.stderr
    assert "created and loaded; 10 records in 5 clusters" in done.stdout
    newer = _harvest_index(tmp_path, _changed_harvests(), "new")
    done = balis("index", "publish", str(newer), url)
    assert "3 clusters written, 0 removed; 9 records in 6 clusters" in done.stdout
    done = balis("index", "publish", str(index), "postgresql://u:pw@127.0.0.1:1/x")
    assert done.returncode == 2 and done.stdout == ""
    [line] = done.stderr.splitlines()
    assert line.startswith("balis: cannot reach postgresql://u:***@127.0.0.1:1/x") and ":pw@" \
        not in line


def test_the_config_takes_a_path_or_a_postgresql_url():
    def entry(**connector):
        return {"id": "u", "name": "联合", "category": "test",
                "connector": {"protocol": "local", **connector}}
    cons = consortium_of(entry(url="postgresql://h/db?schema=x"))
    library = cons.library("u")
    assert library.connector.url == "postgresql://h/db?schema=x"
    assert library.connector.path is None
    for bad, message in [
            ({"url": "postgresql://h/db", "path": "u.sqlite"}, "not both"),
            ({"url": "http://h/db"}, "must be postgresql://host/database"),
            ({}, "needs path")]:
        with pytest.raises(ConfigError, match=message):
            loads(json.dumps({"categories": [{"id": "test", "name": "测"}],
                              "libraries": [entry(**bad)]}))
    with pytest.raises(UsageError, match="schema"):
        parse_url("postgresql://h/db?schema=Bad-Name")


def test_cjk_bigrams_single_and_last_characters_and_value_boundaries(tmp_path, postgres):
    url = _url(postgres)
    publish(_harvest_index(tmp_path), url)
    connector = PgIndexConnector(_library(url))
    hits = {query: _search(connector, query, count=0).hits for query in [
        "title=梦", "title=楼", "title=红楼梦", "title=红梦",  # last, middle, whole, gapped
        "author=曹雪芹", "author=芹曹",  # 曹雪芹 twice (author, responsibility): no phrase across
        "title=数据结构", "title=结构", "title=构", "title=据结"]}
    assert hits == {"title=梦": 1, "title=楼": 1, "title=红楼梦": 1, "title=红梦": 0,
                    "author=曹雪芹": 1, "author=芹曹": 0, "title=数据结构": 1,
                    "title=结构": 1, "title=构": 1, "title=据结": 1}
    _close(connector)


def test_clusters_of_many_records_are_counted_exactly_below_the_cap(tmp_path, postgres,
                                                                   monkeypatch):
    url = _url(postgres)
    publish(_harvest_index(tmp_path), url)
    connector = PgIndexConnector(_library(url))
    # 5 records in 2 clusters (红楼梦 has 4): the records read first (3) reach the sample
    # but give fewer clusters than the cap, so the clusters of every match are counted.
    monkeypatch.setattr(pg_index, "COUNT_CAP", 3)
    monkeypatch.setattr(pg_index, "_SAMPLE", 1)
    assert _search(connector, "title=红楼梦 or title=数据结构").hits == 2
    assert _search(connector, "year>=1900").hits == 3  # 5 clusters: the cap
    _close(connector)
