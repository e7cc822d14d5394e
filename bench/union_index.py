#!/usr/bin/env python3
"""The union index against the live libraries it was harvested from, through the Broker.

Run by hand from the repository root::

    python bench/union_index.py [--bulk 2000] [--repeat 7]

Starts a Zebra peer on 127.0.0.1 (``tests/peers/servers.py``) with databases ``marc21``,
``unimarc`` and ``bulk`` (``--bulk`` synthetic MARC21 records), harvests every record of
each with yaz-client into one file per library (``zm``, ``zu``, ``zb``), and builds a
union index of them (build time and records per second are shown). Then, for each query,
the same search runs through a warm Broker (one warm-up search first, so Z39.50
associations are open) over

* *live*: the three libraries on Zebra over Z39.50 (``max_records`` 20 each), and
* *local*: one ``protocol: local`` library over the union index (``max_records`` 20),

and reports the median completion time (``session.finished_at`` - just before
``Broker.search``) of ``--repeat`` searches, and live / local as a ratio. Hits differ by
design: live counts records per library, local counts clusters (the bulk copies share their
originals' ISBNs, so they cluster). Exit status 0 whatever the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

for _path in (Path(__file__).resolve().parents[1], Path(__file__).resolve().parents[1] / "tests"):
    if str(_path) not in sys.path:  # run as a script: bench/ is on the path, these are not
        sys.path.insert(0, str(_path))

from peers.servers import ZebraServer, yaz_client_fetch  # noqa: E402

from broker.kernel.config import loads  # noqa: E402
from broker.search.fanout import Broker  # noqa: E402
from broker.union_index.build import Source, build  # noqa: E402

ALL_RECORDS = '@attr 1=_ALLRECORDS @attr 2=103 ""'
LIBRARIES = {"marc21": "zm", "unimarc": "zu", "bulk": "zb"}
# Title, author, any and year only: the bulk database indexes nothing else.
QUERIES = ["title=perl", "perl", "中国", "title=中国发展报告", "author=brown",
           "year>=2000", 'title="programming perl"', "author=chabon or title=summerland",
           "synthetic and title=perl", "title=perl and year<2000"]


def consortium(zebra: ZebraServer, index: Path):
    members = [{"id": lib, "name": f"{lib}图书馆", "category": "b", "connector": {
        "protocol": "z3950", "url": zebra.z3950_url(db),
        "format": "unimarc" if db == "unimarc" else "marc21"}}
        for db, lib in LIBRARIES.items()]
    members.append({"id": "union", "name": "联合目录", "category": "b",
                    "connector": {"protocol": "local", "path": str(index)}})
    return loads(json.dumps({
        "consortium": {"name": "bench", "max_selected": 10},
        "defaults": {"timeout": 30, "max_records": 20},
        "categories": [{"id": "b", "name": "bench"}], "libraries": members}))


async def timed(broker: Broker, query: str, ids: list[str]) -> tuple[float, int]:
    gc.collect()
    began = time.monotonic()
    session = await broker.search(query, ids)
    await broker.wait(session)
    assert all(s.status == "ok" for s in session.states.values()), [
        (s.library.id, s.error) for s in session.states.values()]
    return session.finished_at - began, sum(s.hits or 0 for s in session.states.values())


async def compare(cons, repeat: int) -> None:
    live_ids, local_ids = list(LIBRARIES.values()), ["union"]
    ratios = []
    print(f"{'query':<36} {'live ms':>8} {'hits':>5} {'local ms':>9} {'hits':>5} {'ratio':>7}")
    async with Broker(cons) as broker:
        await timed(broker, "warmup", live_ids)
        await timed(broker, "warmup", local_ids)
        for query in QUERIES:
            live = [await timed(broker, query, live_ids) for _ in range(repeat)]
            local = [await timed(broker, query, local_ids) for _ in range(repeat)]
            live_ms = statistics.median(t for t, _ in live) * 1000
            local_ms = statistics.median(t for t, _ in local) * 1000
            ratios.append(live_ms / local_ms)
            print(f"{query:<36} {live_ms:>8.1f} {live[0][1]:>5} {local_ms:>9.1f} "
                  f"{local[0][1]:>5} {live_ms / local_ms:>6.1f}x")
    print(f"median ratio live / local: {statistics.median(ratios):.1f}x "
          f"(geometric mean {statistics.geometric_mean(ratios):.1f}x)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bulk", type=int, default=2000, help="synthetic records in bulk")
    parser.add_argument("--repeat", type=int, default=7, help="searches per query and side")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="balis-bench-union-") as tmp, \
            ZebraServer(bulk=args.bulk) as zebra:
        folder = Path(tmp)
        sources = []
        for db, library in LIBRARIES.items():
            records = yaz_client_fetch(zebra.host, zebra.port, db, ALL_RECORDS,
                                       count=zebra.databases[db],
                                       syntax="unimarc" if db == "unimarc" else "usmarc")
            path = folder / f"{library}.mrc"
            path.write_bytes(b"".join(records))
            sources.append(Source(library, path))
        index = folder / "union.sqlite"
        began = time.monotonic()
        result = build(sources, index)
        seconds = time.monotonic() - began
        print(f"harvested {result.records} records from Zebra; index built in {seconds:.2f} s "
              f"({result.records / seconds:.0f} records/s), {result.clusters} clusters, "
              f"{index.stat().st_size / 1e6:.1f} MB")
        asyncio.run(compare(consortium(zebra, index), args.repeat))
    return 0


if __name__ == "__main__":
    sys.exit(main())
