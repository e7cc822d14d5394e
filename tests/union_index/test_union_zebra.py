"""A union index of records harvested from a real Zebra, searched as a ``protocol: local``
member and checked against Zebra itself.

The records are fetched from the Zebra peer (tests/peers) with yaz-client, every record of
its ``marc21`` and ``unimarc`` databases, and written as the harvest files of two libraries,
``zm`` and ``zu``. For the probe queries of ``peers.fixtures.PROBES`` the records the index
finds must be exactly the records Zebra finds, except where the engines differ by design
(``DIFFERENCES``, the same ones ``broker.catalogues.marc_file`` has against Zebra;
asserted exactly, so the
list cannot go stale), and the index's hit count must be the number of clusters those
records form.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from peers.fixtures import PROBES
from peers.servers import yaz_client_fetch
from union_data import consortium_of, local_member, member

from broker.kernel.config import ConnectorConfig, Library
from broker.kernel.cql import parse
from broker.search.fanout import Broker
from broker.union_index.build import Source, build
from connectors.local.connector import LocalIndexConnector, matching_records, open_index
from connectors.z3950.connector import Z3950Connector

ALL_RECORDS = '@attr 1=_ALLRECORDS @attr 2=103 ""'
LIBRARY = {"marc21": "zm", "unimarc": "zu"}
OURS = {name: probe for name, probe in PROBES.items() if not probe["cql"].startswith("rec.")}

# probe -> (why, 001s only Zebra finds, 001s only the index finds)
DIFFERENCES: dict[str, tuple[str, frozenset[str], frozenset[str]]] = {
    "zh_any_zhongguo": (
        "the index folds traditional to simplified (中國 titles found); Zebra's any is every "
        "subfield, ours the normalized fields (no series)",
        frozenset({"86124229"}),
        frozenset({"86125443", "86154542 /ACN/r86", "ocm63111280"})),
    "zh_traditional_not_folded": (
        "the index folds 中國 to 中国 and finds every 中国 record; Zebra does not fold, and "
        "finds one 中國 that is only in a series",
        frozenset({"86125348 /ACN"}),
        frozenset({"84231405", "86122256 /ACN", "990000742440203961", "990002072570203961",
                   "990006328110203961", "9910666685103961", "9910679562203961",
                   "9910679562303961", "9910679586503961", "9910694470203961",
                   "9910698661303961", "9911676899703961"})),
    "zh_author_corporate": (
        "our author index includes the statement of responsibility (200 $f 国家统计局编)",
        frozenset(), frozenset({"990002181050203961"})),
    "pinyin_not_in_author": (
        "our author index includes the romanized (CNMARC 7XX $A pinyin) names",
        frozenset(), frozenset({"990000953830203961", "990002181050203961",
                                "990004545720203961"})),
}


@pytest.fixture(scope="module")
def harvest(zebra, tmp_path_factory) -> Path:
    """Zebra's records as two libraries' harvest files, indexed."""
    folder = tmp_path_factory.mktemp("zebra-harvest")
    sources = []
    for db, library in LIBRARY.items():
        syntax = "unimarc" if db == "unimarc" else "usmarc"
        records = yaz_client_fetch(zebra.host, zebra.port, db, ALL_RECORDS,
                                   count=zebra.databases[db],
                                   syntax=syntax)
        assert len(records) == zebra.databases[db]
        path = folder / f"{library}.{'iso' if db == 'unimarc' else 'mrc'}"
        path.write_bytes(b"".join(records))
        sources.append(Source(library, path))
    index = folder / "union.sqlite"
    build(sources, index)
    return index


def _zebra_ids(zebra, db: str, cql: str, hits: int) -> set[str]:
    """The 001s of every record Zebra finds, through our Z39.50 connector."""
    library = Library("zz", "Zebra", "test", connector=ConnectorConfig(
        protocol="z3950", url=zebra.z3950_url(db), format=db,
        indexes={"callnumber": "1=16"}))

    async def run():
        connector = Z3950Connector(library)
        try:
            page = await connector.search(parse(cql), start=1, count=max(hits, 1))
        finally:
            await connector.close()
        assert page.hits == hits
        return {r.id.split(":", 1)[1] for r in page.records}

    return asyncio.run(run()) if hits else set()


def _local(index: Path) -> LocalIndexConnector:
    return LocalIndexConnector(Library("union", "联合目录", "test", connector=ConnectorConfig(
        protocol="local", url=index.as_uri(), path=str(index), max_records=100)))


@pytest.mark.parametrize("name", sorted(OURS))
def test_the_index_finds_the_records_zebra_finds(name, zebra, harvest):
    probe = OURS[name]
    library = LIBRARY[probe["db"]]
    theirs = _zebra_ids(zebra, probe["db"], probe["cql"], probe["hits"])
    db = open_index(harvest)
    try:
        found = matching_records(db, parse(probe["cql"]))
        cluster_of = dict(((lib, rid), c) for lib, rid, c in db.execute(
            "SELECT library, record_id, cluster FROM records"))
    finally:
        db.close()
    # The probe's database is one library's harvest; the other's records may match too.
    ours = {rid.split(":", 1)[1] for lib, rid in found if lib == library}
    _why, zebra_only, local_only = DIFFERENCES.get(name, ("", frozenset(), frozenset()))
    assert (theirs - ours, ours - theirs) == (zebra_only, local_only)
    # Through the connector: one hit per cluster of the records found.
    connector = _local(harvest)
    try:
        page = asyncio.run(connector.search(parse(probe["cql"]), count=100))
    finally:
        asyncio.run(connector.close())
    clusters = {cluster_of[key] for key in found}
    assert page.hits == len(page.records) == len(clusters)
    if not zebra_only | local_only and all(lib == library for lib, _ in found):
        zebras = {cluster_of[(library, f"{library}:{number}")] for number in theirs}
        assert page.hits == len(zebras) <= probe["hits"]


def test_a_local_member_beside_the_live_library_it_harvested(zebra, harvest):
    """Searched together, the live library's holdings win over its harvested copy: each
    book is one record held by zu, not two, and holdings are not doubled."""
    cons = consortium_of(local_member("union", harvest),
                         member("zu", "z3950", zebra.z3950_url("unimarc"), format="unimarc"))

    async def run(ids):
        async with Broker(cons) as broker:
            session = await broker.search("title=中国发展报告", ids)
            await broker.wait(session)
            return session.snapshot(count=100)

    live = run_sync(run(["zu"]))
    alone = run_sync(run(["union"]))
    both = run_sync(run(["union", "zu"]))
    assert [lib["status"] for lib in both["libraries"]] == ["ok", "ok"]
    assert alone["libraries"][0]["hits"] == len(alone["records"]) == 9
    assert all(r["libraries"] == ["zu"] for r in alone["records"])
    assert len(both["records"]) == len(live["records"]) == 9
    live_holdings = {r["id"]: r["holdings"] for r in live["records"]}
    for record in both["records"]:
        assert record["libraries"] == ["zu"]
        assert record["sources"] == [record["id"], record["id"]]  # zu's, and the union's
        assert record["holdings"] == live_holdings[record["id"]]
    # Alone, the union's records carry zu's harvested holdings, the same as zu's own.
    assert {r["id"]: r["holdings"] for r in alone["records"]} == live_holdings


def run_sync(coro):
    return asyncio.run(coro)
