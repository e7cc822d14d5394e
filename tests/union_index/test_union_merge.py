"""The merge of a union index's records (broker/search/merge.py aggregators), live and restored."""

from __future__ import annotations

import asyncio
import dataclasses
import json

from union_data import book, consortium_of, local_member, write_harvests

from broker.search.fanout import Broker
from broker.search.merge import Merger
from broker.search.store import dump_session, load_session
from broker.union_index.build import build, parse_source
from marc import Holding


def _union_record():
    """What a local index returns for 红楼梦: one record with a's, b's and c's holdings."""
    return dataclasses.replace(
        book("a", "3", "红楼梦", "曹雪芹", 2008, "9787020065875"),
        holdings=(Holding("a", "中文书库", barcode="a-3"),
                  Holding("b", "中文书库", barcode="b-11-old"),
                  Holding("c", "中文书库", barcode="c-20")))


def test_an_aggregators_holdings_keep_their_libraries_and_live_ones_win():
    merger = Merger(aggregators={"union"})
    merger.add("b", [book("b", "11", "红楼梦", "曹雪芹", 2008, "9787020065875")])
    merger.add("union", [_union_record()])
    [cluster] = merger.clusters
    assert cluster.libraries == ["b", "a", "c"]
    assert [(h.library, h.barcode) for h in cluster.holdings] == [
        ("b", "b-11"), ("a", "a-3"), ("c", "c-20")]  # b's harvested copy gives way
    assert cluster.as_dict()["libraries"] == ["b", "a", "c"]


def test_without_aggregators_a_sender_owns_its_holdings_as_before():
    merger = Merger()
    merger.add("union", [_union_record()])
    [cluster] = merger.clusters
    assert cluster.libraries == ["union"]
    assert [h.library for h in cluster.holdings] == ["union"] * 3


def test_a_stored_session_rebuilds_the_same_holders(tmp_path):
    folder = tmp_path / "harvest"
    folder.mkdir()
    index = tmp_path / "union.sqlite"
    build([parse_source(str(p)) for p in write_harvests(folder)], index)
    cons = consortium_of(local_member("union", index))

    async def run():
        async with Broker(cons) as broker:
            session = await broker.search("红楼梦 or title=经济史")
            await broker.wait(session)
            return session.snapshot(count=10), json.dumps(dump_session(session))

    snapshot, stored = asyncio.run(run())
    restored = load_session(json.loads(stored), cons).snapshot(count=10)
    assert sorted(r["libraries"] for r in snapshot["records"]) == [["a", "b", "c"], ["b", "c"]]
    assert restored["records"] == snapshot["records"]
