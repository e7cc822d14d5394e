"""A union index's pages, counts and Chinese bigrams (connectors/local/connector.py, query.py,
index_file.py): pages are taken with a LIMIT in one order, counts stop at a cap.

The cap and the size of a ranked answer are module constants; tests lower them
(monkeypatch) so that the hand-made harvests of ``union_data`` cross them.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from union_data import book, write_harvests, write_jsonl

from broker.kernel.config import ConnectorConfig, Library
from broker.kernel.cql import parse
from broker.union_index.build import build, parse_source
from connectors.local import connector as local
from connectors.local.index_file import query_form, text_form
from connectors.local.query import Fts, Sql, translate


def _connector(index: Path) -> local.LocalIndexConnector:
    return local.LocalIndexConnector(Library("union", "联合目录", "test", connector=ConnectorConfig(
        protocol="local", url=index.as_uri(), path=str(index), max_records=20)))


def _search(connector, query: str, **kwargs):
    return asyncio.run(connector.search(parse(query), **kwargs))


@pytest.fixture()
def union(tmp_path) -> Path:
    folder = tmp_path / "harvest"
    folder.mkdir()
    index = tmp_path / "union.sqlite"
    build([parse_source(str(p)) for p in write_harvests(folder)], index)
    return index


@pytest.fixture()
def many(tmp_path) -> Path:
    """Thirty editions of 中国经济 (one library each holding ten; no two cluster: distinct
    ISBNs and years), and ten other books."""
    records = {lib: [book(lib, str(n), f"中国经济问题{lib}{n}", f"作者{n}", 1980 + n + 10 * i,
                          f"9787000{i}{n:04d}0")
                     for n in range(10)] for i, lib in enumerate("xyz")}
    records["x"] += [book("x", f"o{n}", f"Other book {n}", "Smith, J.", 1950 + n)
                     for n in range(10)]
    paths = [write_jsonl(tmp_path / f"{lib}.jsonl", recs) for lib, recs in records.items()]
    index = tmp_path / "many.sqlite"
    result = build([parse_source(str(p)) for p in paths], index)
    assert result.clusters == 40
    return index


@pytest.mark.parametrize("query", ["中国经济", "title=中国经济 and year>=1985",
                                   "year>=1980", "title=中国经济 or author=smith"])
@pytest.mark.parametrize("ranked", [1000, 5])
def test_pages_continue_one_another_in_one_order(many, monkeypatch, query, ranked):
    monkeypatch.setattr(local, "RANKED", ranked)  # 5: text answers read newest first
    connector = _connector(many)
    whole = _search(connector, query, count=100)
    assert whole.hits == len(whole.records) > 10
    ids = [r.id for r in whole.records]
    assert len(set(ids)) == len(ids)
    pages = [_search(connector, query, start=s, count=7) for s in range(1, whole.hits + 1, 7)]
    assert [r.id for page in pages for r in page.records] == ids
    assert {page.hits for page in pages} == {whole.hits}
    assert _search(connector, query, start=whole.hits + 1).records == ()
    asyncio.run(connector.close())


def test_a_large_text_answer_is_read_newest_first_and_a_small_one_by_rank(many, monkeypatch):
    connector = _connector(many)
    ranked = [r.id for r in _search(connector, "中国经济", count=30).records]
    monkeypatch.setattr(local, "RANKED", 5)
    newest = [r.id for r in _search(connector, "中国经济", count=30).records]
    assert sorted(ranked) == sorted(newest)
    assert newest[:3] == ["z:9", "z:8", "z:7"]  # the last loaded records first
    asyncio.run(connector.close())


def test_counts_stop_at_the_cap_and_pages_within_it_still_come(many, monkeypatch):
    monkeypatch.setattr(local, "COUNT_CAP", 12)
    connector = _connector(many)
    for query in ("中国经济", "year>=1980", "中国经济 and year>=1980"):
        page = _search(connector, query, start=11, count=5)
        assert page.hits == 12, query  # at least 12: a minimum, as the cap says
        assert len(page.records) == 2, query  # up to the count it reported
    assert _search(connector, "title=other", count=0).hits == 10  # under the cap: exact
    asyncio.run(connector.close())


def test_text_with_a_condition_is_driven_by_the_text():
    condition = translate(parse("title=中国 and year>=2015"))
    assert isinstance(condition, Sql) and condition.driver == 'title : "中国"'
    assert condition.params == (2015,)
    negated = translate(parse("中国 not year<2000"))
    assert isinstance(negated, Sql) and negated.sql.startswith("NOT (")
    assert isinstance(translate(parse("中国 or year<2000")), Sql)
    assert translate(parse("中国 or year<2000")).driver is None  # type: ignore[union-attr]
    assert isinstance(translate(parse("中国 and 经济")), Fts)


# --- bigrams --------------------------------------------------------------------------------


def test_cjk_runs_are_indexed_as_bigrams_and_their_last_character():
    assert text_form("中國經濟發展") == "中国 国经 经济 济发 发展 展"
    # Punctuation goes first, so 设计（第 is one run.
    assert text_form("C语言程序设计（第2版）") == "c 语言 言程 程序 序设 设计 计第 第 2 版"
    assert text_form("Computer networks") == "computer networks"
    assert query_form("中国经济") == ("中国 国经 经济", False)  # the value may go on
    assert query_form("经") == ("经", True)  # a prefix: 经济, 经 at a run's end
    assert query_form("第2版") == ("第 2 版", True)
    assert query_form("c语言x") == ("c 语言 言 x", False)  # a run inside ends there


@pytest.mark.parametrize(("query", "titles"), [
    ("title=济", {"中国经济发展研究", "中國經濟史"}),  # one character, inside a word
    ("title=梦", {"红楼梦"}),  # a value's last character
    ("title=红", {"红楼梦"}),  # its first
    ("title=史", {"中國經濟史"}),
    ("title=经济史", {"中國經濟史"}),
    ("title=中国的经济", set()),
    ("title=楼梦", {"红楼梦"}),
    ("author=国王", set()),  # 王建国 _ 王建国: a phrase never runs into the next value
    ("author=王建国", {"中国经济发展研究"}),
    ("any=北京出版社", set()),  # place 北京, publisher 出版社: two columns
    ('title="梦红"', set()),
])
def test_bigram_semantics(union, query, titles):
    connector = _connector(union)
    page = _search(connector, query)
    assert {r.title for r in page.records} == titles
    assert page.hits == len(titles)
    asyncio.run(connector.close())


def test_the_index_holds_bigrams_not_single_characters(union):
    db = sqlite3.connect(union)
    [(title,)] = db.execute("SELECT title FROM record_text t JOIN records r ON r.id = t.rowid "
                            "WHERE r.record_id = 'a:3'").fetchall()
    db.close()
    assert title == "红楼 楼梦 梦"
