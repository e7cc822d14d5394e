"""Updating a union index from a new harvest (broker/union_index/update.py, ``balis index
update``), and the statistics summary over many libraries (broker/union_index/stats.py).

The proof of an update is a fresh build of the same harvests: the same clusters, named
alike, with the same members and the same best record, on the hand-made harvests and on
the demo consortium's 46 catalogues.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import shutil
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from union_data import HARVESTS, book, write_harvests, write_jsonl

from broker.demo import catalogues as demo_catalogues
from broker.demo import members as demo_members
from broker.kernel.config import ConnectorConfig, Library
from broker.kernel.cql import parse
from broker.kernel.errors import IndexFileError, SourceOpenError
from broker.union_index.build import Source, build, parse_source, read_source
from broker.union_index.stats import render, stats
from broker.union_index.update import update
from connectors.local.connector import LocalIndexConnector

BALIS = ["balis"] if shutil.which("balis") else [sys.executable, "-m", "balis"]


def _clusters(path: Path) -> dict[str, tuple[list[tuple[str, str]], tuple[str, str]]]:
    """cluster name -> ([(library, record id)...] in the order a build reads them, best
    record). Not the clusters' integer ids: an update keeps those it can, a build
    numbers afresh."""
    db = sqlite3.connect(path)
    rows = db.execute("SELECT c.name, r.library, r.record_id, b.library, b.record_id "
                      "FROM clusters c JOIN records r ON r.cluster = c.id "
                      "JOIN records b ON b.id = c.best ORDER BY c.id, r.position").fetchall()
    db.close()
    out: dict[str, tuple[list, tuple]] = {}
    for name, library, record_id, best_library, best_id in rows:
        out.setdefault(name, ([], (best_library, best_id)))[0].append((library, record_id))
    return out


def _new_c() -> list:
    """c's next harvest: one 红楼梦 copy gone, 中国经济史 retitled (it leaves b's cluster),
    数据结构 acquired (joins a's), and a new book."""
    c = HARVESTS["c"]
    retitled = dataclasses.replace(c[2], title="中国经济通史")
    return [c[0], retitled,
            book("c", "23", "数据结构", "严蔚敏", 2007, "9787302147510", call="TP311/1"),
            book("c", "24", "唐诗鉴赏辞典", "萧涤非", 1983, "9787532600112", call="I207/2")]


@pytest.fixture()
def harvest(tmp_path) -> Path:
    folder = tmp_path / "harvest"
    folder.mkdir()
    write_harvests(folder)
    write_jsonl(tmp_path / "c-next.jsonl", _new_c())
    return folder


def _search(index: Path, query: str):
    connector = LocalIndexConnector(Library("u", "联合目录", "t", connector=ConnectorConfig(
        protocol="local", url=index.as_uri(), path=str(index), max_records=50)))

    async def run():
        try:
            return await connector.search(parse(query))
        finally:
            await connector.close()
    return asyncio.run(run())


def test_an_update_gives_the_index_a_fresh_build_gives(harvest, tmp_path):
    index, fresh = tmp_path / "union.sqlite", tmp_path / "fresh.sqlite"
    build([parse_source(str(harvest / f"{lib}.jsonl")) for lib in "abc"], index)
    before = _clusters(index)
    assert before["b:12"][0] == [("b", "b:12"), ("c", "c:22")]
    result = update(index, [Source("c", tmp_path / "c-next.jsonl")])
    assert (result.generation, result.libraries, result.removed, result.records) == (
        2, ("c",), 3, 4)
    build([Source("a", harvest / "a.jsonl"), Source("b", harvest / "b.jsonl"),
           Source("c", tmp_path / "c-next.jsonl")], fresh)
    assert _clusters(index) == _clusters(fresh)
    after = _clusters(index)
    assert after["a:1"][0] == [("a", "a:1"), ("c", "c:23")]
    assert after["b:12"][0] == [("b", "b:12")] and after["c:22"][0] == [("c", "c:22")]
    assert after["a:3"][0] == [("a", "a:3"), ("b", "b:11"), ("c", "c:20")]
    # Searches and statistics agree too.
    for query in ("红楼梦", "title=中国经济", "数据结构", "title=唐诗", "isbn=9787302147510",
                  "year<1990"):
        updated, built = _search(index, query), _search(fresh, query)
        assert updated.hits == built.hits > 0, query
        assert [(r.id, [h.library for h in r.holdings]) for r in updated.records] == \
            [(r.id, [h.library for h in r.holdings]) for r in built.records], query
    assert stats(index).as_dict() | {"index": ""} == stats(fresh).as_dict() | {"index": ""}
    # Nothing of c's old records is left for text or identifier searches.
    assert _search(index, 'callnumber="I242.4/1:2"').hits == 0
    assert not list(tmp_path.glob(".*updating*"))


def test_an_update_marks_what_it_changed(harvest, tmp_path):
    index = tmp_path / "union.sqlite"
    build([parse_source(str(harvest / f"{lib}.jsonl")) for lib in "abc"], index)
    db = sqlite3.connect(index)
    ids_before = dict(db.execute("SELECT name, id FROM clusters"))
    db.close()
    update(index, [Source("c", tmp_path / "c-next.jsonl")])
    db = sqlite3.connect(index)
    meta = dict(db.execute("SELECT key, value FROM meta"))
    generation = dict(db.execute("SELECT name, generation FROM clusters"))
    ids_after = dict(db.execute("SELECT name, id FROM clusters"))
    removed = db.execute("SELECT id, generation FROM removed_clusters").fetchall()
    sources = db.execute("SELECT library, path, records FROM sources ORDER BY rowid").fetchall()
    db.close()
    assert meta["generation"] == "2"
    # Computer networks (a, b) shares no key with c's records: untouched.
    assert generation["a:2"] == 1 and ids_after["a:2"] == ids_before["a:2"]
    assert {name for name, g in generation.items() if g == 2} >= {"a:1", "a:3", "b:12",
                                                                  "c:22", "c:24"}
    # A cluster keeps its id when its name does; none was lost here, so none is removed.
    assert all(ids_after[name] == ids_before[name] for name in ids_before)
    assert removed == []
    assert [s[0] for s in sources] == ["a", "b", "c"] and sources[2][2] == 4
    # A second update that drops c's new book removes that cluster, and says so.
    write_jsonl(tmp_path / "c-3.jsonl", _new_c()[:3])
    update(index, [Source("c", tmp_path / "c-3.jsonl")])
    db = sqlite3.connect(index)
    assert db.execute("SELECT id, generation FROM removed_clusters").fetchall() == [
        (ids_after["c:24"], 3)]
    assert db.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone() == ("3",)
    db.close()


def test_a_new_library_comes_last_and_equals_a_build(harvest, tmp_path):
    index, fresh = tmp_path / "union.sqlite", tmp_path / "fresh.sqlite"
    build([parse_source(str(harvest / f"{lib}.jsonl")) for lib in "ab"], index)
    update(index, [Source("c", harvest / "c.jsonl")])
    build([parse_source(str(harvest / f"{lib}.jsonl")) for lib in "abc"], fresh)
    assert _clusters(index) == _clusters(fresh)


def _demo_records(source: Source) -> list:
    return [item.record for item in read_source(source) if item.record is not None]


def test_an_update_of_demo_catalogues_equals_a_fresh_build(tmp_path):
    directory = demo_members.load_members()
    plans = demo_members.plan(lib.id for lib in directory.libraries)
    demo_catalogues.write(tmp_path / "demo", plans, directory)
    sources = [Source(p.id, tmp_path / "demo" / p.file_name) for p in plans]
    index, fresh = tmp_path / "union.sqlite", tmp_path / "fresh.sqlite"
    build(sources, index)
    changed = []
    for source in (sources[2], sources[10], sources[30]):  # three members harvest again
        records = _demo_records(source)
        kept = [dataclasses.replace(r, title=f"{r.title}（修订版）") if i % 5 == 0 else r
                for i, r in enumerate(records) if i % 7 != 3]
        changed.append(Source(source.library, write_jsonl(
            tmp_path / f"{source.library}-next.jsonl", kept)))
    result = update(index, changed)
    assert result.reclustered < 4000  # not the whole index again
    replaced = {s.library: s for s in changed}
    build([replaced.get(s.library, s) for s in sources], fresh)
    assert _clusters(index) == _clusters(fresh)


def test_a_reader_sees_the_old_index_or_the_new_one_never_half(harvest, tmp_path):
    index = tmp_path / "union.sqlite"
    build([parse_source(str(harvest / f"{lib}.jsonl")) for lib in "abc"], index)
    old_holders, new_holders = ["a", "b", "c", "c"], ["a", "b", "c"]
    held = sqlite3.connect(f"{index.as_uri()}?mode=ro", uri=True)  # open across the update
    connector = LocalIndexConnector(Library("u", "联合目录", "t", connector=ConnectorConfig(
        protocol="local", url=index.as_uri(), path=str(index), max_records=50)))
    seen: list[list[str]] = []
    done = threading.Event()

    def reader() -> None:
        loop = asyncio.new_event_loop()
        while not done.is_set() or len(seen) < 3:
            page = loop.run_until_complete(connector.search(parse("红楼梦")))
            seen.append([h.library for r in page.records for h in r.holdings])
        loop.run_until_complete(connector.close())
        loop.close()

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for round_ in range(4):  # back and forth, so readers cross several renames
            update(index, [Source("c", tmp_path / "c-next.jsonl" if round_ % 2 == 0
                                  else harvest / "c.jsonl")])
    finally:
        done.set()
        thread.join(60)
    assert len(seen) >= 3 and all(holders in (old_holders, new_holders) for holders in seen)
    # The last update put c's first harvest back (a search begun before it may have
    # read the file before; the next one reads this).
    page = _search(index, "红楼梦")
    assert [h.library for r in page.records for h in r.holdings] == old_holders
    # A connection opened before still reads the file it opened, whole.
    assert held.execute("SELECT count(*) FROM records WHERE library = 'c'").fetchone() == (3,)
    held.close()


def test_an_update_that_cannot_run_changes_nothing(harvest, tmp_path):
    index = tmp_path / "union.sqlite"
    with pytest.raises(IndexFileError, match="does not exist"):
        update(index, [Source("c", harvest / "c.jsonl")])
    build([parse_source(str(harvest / f"{lib}.jsonl")) for lib in "abc"], index)
    before = index.read_bytes()
    with pytest.raises(SourceOpenError, match=r"gone\.jsonl does not exist"):
        update(index, [Source("c", tmp_path / "gone.jsonl")])
    assert index.read_bytes() == before


# --- statistics over many libraries ---------------------------------------------------------


def test_stats_summary_lists_the_largest_libraries_and_their_overlap(harvest, tmp_path):
    index = tmp_path / "union.sqlite"
    build([parse_source(str(harvest / f"{lib}.jsonl")) for lib in "abc"], index)
    summary = stats(index, top=2)
    assert summary.library_count == 3 and (summary.records, summary.clusters) == (10, 5)
    assert [lib.id for lib in summary.libraries] == ["a", "b"]  # 4 records, then 3 (b < c)
    assert summary.shared == {("a", "b"): 2, ("b", "a"): 2}
    assert summary.holders == {1: 2, 2: 2, 3: 1}  # of every library
    text = render(summary)
    assert "10 records in 5 clusters from 3 libraries" in text
    assert "... the 2 largest of 3 libraries (--all lists every one" in text
    assert text.count("\n") < 15
    assert stats(index).library_count == 3 and len(stats(index).libraries) == 3
    listed = stats(index, compare=2)  # --all: every library, the overlap of the largest
    assert [lib.id for lib in listed.libraries] == ["a", "b", "c"]
    assert listed.shared == summary.shared and listed.compared == ("a", "b")
    assert "(the 2 largest libraries)" in render(listed)


def _balis(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*BALIS, *args], capture_output=True, text=True, timeout=120)


def test_the_update_and_stats_commands(harvest, tmp_path):
    index = tmp_path / "union.sqlite"
    build([parse_source(str(harvest / f"{lib}.jsonl")) for lib in "abc"], index)
    done = _balis("index", "update", str(index), f"c={tmp_path / 'c-next.jsonl'}")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{index}: generation 2: c: 3 records replaced by 4, ")
    assert done.stdout.endswith(" clusters\n") and done.stderr == ""
    top = _balis("index", "stats", str(index), "--top", "1")
    assert top.returncode == 0, top.stderr
    assert "... the 1 largest of 3 libraries" in top.stdout
    every = _balis("index", "stats", str(index), "--all")
    assert "largest" not in every.stdout and every.stdout.count("\n") > 10
    data = json.loads(_balis("index", "stats", str(index), "--json").stdout)
    assert [lib["id"] for lib in data["libraries"]] == ["a", "b", "c"]
    missing = _balis("index", "update", str(tmp_path / "none.sqlite"), str(harvest / "c.jsonl"))
    assert missing.returncode == 2 and len(missing.stderr.splitlines()) == 1
    assert "does not exist" in missing.stderr and missing.stdout == ""
