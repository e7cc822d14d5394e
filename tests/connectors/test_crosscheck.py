"""Our own connectors, pointed at a local catalogue, answer as Zebra does over the same records.

A ``LocalCatalogue`` (broker/catalogues/marc_file.py) is built over exactly the records
the Zebra peer's
``marc21`` and ``unimarc`` databases hold (the same files, converted by the same function,
``peers.servers.marcxml_records``) and served by our ``Z3950Server`` and ``SruServer`` on
127.0.0.1. For every probe of ``peers.fixtures.PROBES`` in the broker's own CQL (``rec.id``
is not one of our indexes), our ``Z3950Connector`` and ``SruConnector`` ask both our servers
and Zebra: the hit counts and the records (001 ids of the first 20) must be the same, and
yaz-client must count the same for the probe's PQF against our Z39.50 server as against
Zebra.

Where the engines differ by design the probe is listed in ``EXPECTED_DIFFERENCES`` with its
reason and exactly which records only one side finds; the test asserts that difference, so
the list cannot go stale (a difference that disappears, or changes, fails).
"""

from __future__ import annotations

import asyncio
from typing import NamedTuple

import pytest
from peers.catalogues import LoopThread
from peers.fixtures import PROBES
from peers.servers import DATABASES, marcxml_records, write_collection, yaz_client_hits

from broker.catalogues.marc_file import LocalCatalogue
from broker.kernel.config import ConnectorConfig, Library
from broker.kernel.cql import parse
from connectors.sru.client import SruConnector
from connectors.sru.server import SruServer
from connectors.z3950.connector import Z3950Connector
from connectors.z3950.server import Z3950Server

HOST = "127.0.0.1"
FIRST = 20  # records compared per search
INDEXES = {"z3950": {"callnumber": "1=16"}, "sru": {"callnumber": "bath.callNumber"}}
CONNECTORS = {"z3950": Z3950Connector, "sru": SruConnector}
# Probes in the broker's CQL (rec.id, Zebra's 001 index, is not one of ours).
OURS = {name: probe for name, probe in PROBES.items() if not probe["cql"].startswith("rec.")}


class Difference(NamedTuple):
    reason: str
    zebra_only: frozenset[str]  # 001s (stripped) that only Zebra finds
    local_only: frozenset[str]  # 001s (stripped) that only the local catalogue finds


EXPECTED_DIFFERENCES: dict[str, Difference] = {
    "zh_any_zhongguo": Difference(
        "ours folds traditional to simplified (中國 titles found); Zebra's any is every "
        "subfield, ours the normalized fields (no series)",
        zebra_only=frozenset({
            "86124229",  # 中国 only in the 880 of 440 (series)
        }),
        local_only=frozenset({"86125443", "86154542 /ACN/r86", "ocm63111280"}),  # 中國 titles
    ),
    "zh_traditional_not_folded": Difference(
        "ours folds 中國 to 中国 (finds every 中国 record); Zebra does not fold, and finds "
        "one 中國 that is only in series (880 of 490/830)",
        zebra_only=frozenset({"86125348 /ACN"}),
        local_only=frozenset({
            "84231405",  # its 880 subject 中国共产党 (Zebra indexes it as written: 中国)
            "86122256 /ACN", "990000742440203961", "990002072570203961", "990006328110203961",
            "9910666685103961", "9910679562203961", "9910679562303961", "9910679586503961",
            "9910694470203961", "9910698661303961", "9911676899703961",
        }),
    ),
    "zh_author_corporate": Difference(
        "our author index includes the statement of responsibility (200 $f 国家统计局编); "
        "Zebra's author is 7XX only and this record has no 711",
        zebra_only=frozenset(),
        local_only=frozenset({"990002181050203961"}),
    ),
    "pinyin_not_in_author": Difference(
        "our author index includes the romanized (CNMARC 7XX $A pinyin) names, so "
        "author=zhang finds Zhang Sai / Zhang Xi Ming; Zebra puts pinyin in any only",
        zebra_only=frozenset(),
        local_only=frozenset({"990000953830203961", "990002181050203961",
                              "990004545720203961"}),
    ),
}


class Servers(NamedTuple):
    z3950: Z3950Server
    sru: SruServer
    catalogues: dict[str, LocalCatalogue]

    def url(self, protocol: str, db: str) -> str:
        if protocol == "z3950":
            return f"z3950://{self.z3950.host}:{self.z3950.port}/{db}"
        return self.sru.url(db)


@pytest.fixture(scope="module")
def local(zebra, tmp_path_factory):
    """Our Z39.50 and SRU servers over LocalCatalogues of Zebra's own records."""
    folder = tmp_path_factory.mktemp("crosscheck")
    catalogues = {}
    for db, (_dom, sources) in DATABASES.items():
        records = [record for name, charset in sources
                   for record in marcxml_records(zebra.marc_dir / name, charset)]
        path = folder / f"{db}.xml"
        write_collection(records, path)
        catalogues[db] = LocalCatalogue(path, name=db, flavour=db)
    thread = LoopThread()
    z3950, sru = Z3950Server(catalogues, host=HOST), SruServer(catalogues, host=HOST)
    try:
        thread.run(z3950.start())
        thread.run(sru.start())
        yield Servers(z3950, sru, catalogues)
    finally:
        thread.run(z3950.close())
        thread.run(sru.close())
        thread.close()


def _search(protocol: str, url: str, db: str, cql: str) -> tuple[int, frozenset[str]]:
    """(hits, stripped 001s of the first FIRST records) through our connector."""
    config = ConnectorConfig(protocol=protocol, url=url, format=db, timeout=10,
                             max_records=FIRST, indexes=INDEXES[protocol])
    connector = CONNECTORS[protocol](Library("peer", "Peer", "test", connector=config))

    async def run():
        try:
            return await connector.search(parse(cql), count=FIRST)
        finally:
            await connector.close()

    page = asyncio.run(run())
    assert not page.problems
    ids = []
    for record in page.records:
        source = record.marc()
        assert source is not None and source["001"] is not None
        ids.append(source["001"].data.strip())
    assert len(ids) == min(page.hits, FIRST)
    return page.hits, frozenset(ids)


def test_the_local_catalogues_hold_zebras_records(zebra, local):
    for db, catalogue in local.catalogues.items():
        assert not catalogue.problems
        assert len(catalogue) == zebra.databases[db], db
    assert {db: len(c) for db, c in local.catalogues.items()} == {"marc21": 44, "unimarc": 11}


def test_expected_differences_name_real_probes():
    assert set(EXPECTED_DIFFERENCES) <= set(OURS)
    for difference in EXPECTED_DIFFERENCES.values():
        assert difference.reason and (difference.zebra_only or difference.local_only)
        assert not difference.zebra_only & difference.local_only


@pytest.mark.parametrize("protocol", ["z3950", "sru"])
@pytest.mark.parametrize("name", sorted(OURS))
def test_our_connector_gets_the_same_answer_from_both(zebra, local, name, protocol):
    probe = OURS[name]
    db = probe["db"]
    zebra_url = zebra.z3950_url(db) if protocol == "z3950" else zebra.sru_url(db)
    zebra_hits, zebra_ids = _search(protocol, zebra_url, db, probe["cql"])
    local_hits, local_ids = _search(protocol, local.url(protocol, db), db, probe["cql"])
    assert zebra_hits == probe["hits"]  # the peer is what the probes say it is
    expected = EXPECTED_DIFFERENCES.get(name)
    if expected is None:
        assert local_hits == zebra_hits, probe["cql"]
        assert local_ids == zebra_ids, probe["cql"]
        return
    # Both answers are complete here, so the sets say exactly where the engines part.
    assert max(local_hits, zebra_hits) <= FIRST
    assert {"zebra_only": zebra_ids - local_ids, "local_only": local_ids - zebra_ids} == {
        "zebra_only": expected.zebra_only, "local_only": expected.local_only}, expected.reason
    assert local_hits - zebra_hits == len(expected.local_only) - len(expected.zebra_only)


@pytest.mark.parametrize("name", sorted(OURS))
def test_yaz_client_counts_the_same_on_both(zebra, local, name):
    probe = OURS[name]
    theirs = yaz_client_hits(zebra.host, zebra.port, probe["db"], probe["pqf"])
    ours = yaz_client_hits(local.z3950.host, local.z3950.port, probe["db"], probe["pqf"])
    expected = EXPECTED_DIFFERENCES.get(name)
    delta = len(expected.local_only) - len(expected.zebra_only) if expected else 0
    assert ours - theirs == delta, (probe["pqf"], expected and expected.reason)
