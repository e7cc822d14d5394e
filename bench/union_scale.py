#!/usr/bin/env python3
"""The union index at scale: build time, size, and 20 queries at 100k and 1M records.

Run by hand from the repository root::

    python bench/union_scale.py [--records 100000 --records 300000 --records 1000000]
        [--libraries 1000] [--work DIR] [--repeat 5]
        [--engine sqlite|postgresql --database postgresql://user@host/db]

For each size: synthetic harvests (``bench/union_data.py``: Chinese and English titles,
authors, subjects, years, ISBNs; each work held by 1 to 8 of ``--libraries`` libraries)
are built into a SQLite union index (``broker.union_index.build``): wall and CPU seconds,
file size, time per record, and each size's build time against the first size's as a
ratio (linear growth: the ratio of the sizes). One library is then updated from a new
harvest of itself (``broker.union_index.update``). Then 20 queries (common Chinese words,
rare ones, English words, author, subject, year, ISBN, booleans) run ``--repeat`` times
each after a warm-up through the ``protocol: local`` connector (first page of 20 and the
count, then page 11): the figures are the median and p90 over the 20 queries of each
query's median. The baseline, measured in the same run on the same file, is the former
search path (every matching cluster selected, ranked and sliced in Python), printed as
old / new ratios.

``--engine postgresql --database URL`` also publishes each index into PostgreSQL
(``broker.union_index.publish.publish``) and runs the same queries through its connector
(``connectors.local.pg_index``), when those modules exist; otherwise it says they are not
available. Wall times on a shared machine vary; CPU seconds are this process's own. Exit
status 0 whatever the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

for _path in (Path(__file__).resolve().parents[1], Path(__file__).resolve().parent):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import union_data  # noqa: E402

from broker.kernel.config import ConnectorConfig, Library  # noqa: E402
from broker.kernel.cql import parse  # noqa: E402
from broker.union_index.build import build, parse_source  # noqa: E402
from broker.union_index.update import update  # noqa: E402
from connectors.base import SearchPage  # noqa: E402
from connectors.local.connector import LocalIndexConnector  # noqa: E402
from connectors.local.query import Fts, as_sql  # noqa: E402

QUERIES = [
    "中国", "北京", "经济", "历史", "研究", "title=中国经济", "title=发展研究",
    "title=鼐罍", "title=箜篌", "title=programming", 'title="machine learning"',
    "author=王伟", "author=smith", "subject=经济史", "year>=2015", "isbn={isbn}",
    "中国 and year>=2015", "title=经济 not title=中国", "title=history or title=历史",
    "title=数据结构 and publisher=清华大学出版社",
]


ISBN = ["9787302147510"]  # replaced by one the generated records hold


def _library(path: Path, url: str | None = None) -> Library:
    return Library("union", "联合目录", "bench", connector=ConnectorConfig(
        protocol="local", url=url or path.as_uri(), path=None if url else str(path),
        max_records=20))


class OldPath(LocalIndexConnector):
    """The former search path on the same file, for the baseline: every matching cluster
    selected (and ranked), the page sliced in Python, the count exact."""

    def _search(self, condition, start: int, count: int) -> SearchPage:
        db, identity = self._take()
        if isinstance(condition, Fts):
            rows = db.execute(
                "SELECT r.cluster FROM record_text f JOIN records r ON r.id = f.rowid "
                "WHERE record_text MATCH ? GROUP BY r.cluster ORDER BY min(f.rank), r.cluster",
                (condition.expr,))
        else:
            sql = as_sql(condition)
            rows = db.execute(f"SELECT DISTINCT r.cluster FROM records r WHERE {sql.sql} "
                              "ORDER BY r.cluster", sql.params)
        clusters = [c for (c,) in rows]
        page = clusters[start - 1:start - 1 + count]
        records = self._records(db, page)
        self._give(db, identity)
        return SearchPage(hits=len(clusters), start=start, records=tuple(records))


def _timed(call, repeat: int) -> tuple[float, object]:
    result = call()  # warm-up
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - began)
    return statistics.median(times), result


def _summary(times: list[float]) -> str:
    ordered = sorted(times)
    p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
    return f"median {statistics.median(ordered) * 1000:7.1f} ms  p90 {p90 * 1000:7.1f} ms"


def run_queries(connector, repeat: int, label: str, baseline=None) -> dict:
    """Each query's first page and page 11 through ``connector``, and through
    ``baseline`` (a connector too) when given."""
    async def page(query: str, start: int):
        return await connector.search(parse(query), start=start, count=20)

    loop = asyncio.new_event_loop()
    first, later, old, rows = [], [], [], []
    try:
        for query in (q.format(isbn=ISBN[0]) for q in QUERIES):
            t1, result = _timed(lambda q=query: loop.run_until_complete(page(q, 1)), repeat)
            t2, _ = _timed(lambda q=query: loop.run_until_complete(page(q, 201)), repeat)
            first.append(t1)
            later.append(t2)
            line = f"  {query:<42} {result.hits:>6} hits  {t1 * 1000:7.1f} ms  p11 " \
                   f"{t2 * 1000:7.1f} ms"
            if baseline is not None:
                t0, before = _timed(lambda q=query: loop.run_until_complete(
                    baseline.search(parse(q), start=1, count=20)), max(1, repeat // 2))
                old.append(t0)
                line += (f"  old {t0 * 1000:7.1f} ms ({before.hits} hits)  "
                         f"old/new {t0 / t1:6.1f}")
            rows.append(line)
            print(line, flush=True)
    finally:
        loop.run_until_complete(connector.close())
        if baseline is not None:
            loop.run_until_complete(baseline.close())
        loop.close()
    print(f"  {label} first page: {_summary(first)}", flush=True)
    print(f"  {label} page 11:    {_summary(later)}", flush=True)
    figures = {"first": first, "later": later}
    if old:
        print(f"  baseline (old path): {_summary(old)}; ratio of medians old/new "
              f"{statistics.median(old) / statistics.median(first):.1f}", flush=True)
        figures["old"] = old
    return figures


def bench_size(records: int, args: argparse.Namespace, work: Path) -> dict:
    folder = work / f"h{records}"
    if not folder.is_dir():
        began = time.perf_counter()
        union_data.write(folder, records, args.libraries)
        print(f"generated {records} records in {time.perf_counter() - began:.0f} s",
              flush=True)
    files = sorted(folder.glob("*.jsonl"))
    with open(files[0], encoding="utf-8") as first_file:
        ISBN[0] = next(isbn for line in first_file for isbn in json.loads(line)["isbns"])
    index = work / f"union{records}.sqlite"
    wall, cpu = time.perf_counter(), time.process_time()
    result = build([parse_source(str(p)) for p in files], index, report=lambda _: None)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    size = index.stat().st_size
    print(f"\n{records} records: {result.records} records, {result.clusters} clusters, "
          f"{len(files)} libraries; build {wall:.0f} s wall, {cpu:.0f} s CPU "
          f"({cpu / result.records * 1e6:.0f} us CPU per record); "
          f"{size / 2 ** 20:.0f} MiB ({size / result.records:.0f} bytes per record)",
          flush=True)
    # An update: the tenth largest library's harvest again, a tenth of it changed.
    target = sorted(files, key=lambda p: -p.stat().st_size)[min(9, len(files) - 1)]
    changed = work / f"{target.stem}.update.jsonl"
    lines = target.read_text("utf-8").splitlines()
    edited = []
    for number, line in enumerate(lines):
        data = json.loads(line)
        if number % 10 == 0:
            data["title"] = (data["title"] or "") + " 修订版"
        if number % 10 != 5:  # and a tenth removed
            edited.append(json.dumps(data, ensure_ascii=False))
    changed.write_text("\n".join(edited) + "\n", "utf-8")
    began = time.perf_counter()
    done = update(index, [parse_source(f"{target.stem}={changed}")], report=lambda _: None)
    print(f"update of {target.stem} ({len(lines)} records -> {len(edited)}): "
          f"{time.perf_counter() - began:.0f} s wall, {done.reclustered} records "
          f"clustered again", flush=True)
    figures = run_queries(LocalIndexConnector(_library(index)), args.repeat, "sqlite",
                          OldPath(_library(index)))
    bigrams_against_characters(index, args.repeat)
    out = {"records": result.records, "build_wall": wall, "build_cpu": cpu, "size": size,
           **figures}
    if args.engine == "postgresql":
        out["postgresql"] = bench_postgresql(index, args)
    return out


def bigrams_against_characters(index: Path, repeat: int) -> None:
    """The title text of ``index`` in two in-memory FTS5 tables, one token per CJK
    character (the index's former layout) and bigrams (its layout now), and the time of
    counting each common word's phrase matches in both: what the bigrams save."""
    import re
    import sqlite3

    from connectors.local.index_file import query_form, text_form
    from connectors.local.keys import phrase_form

    cjk = re.compile(r"([\u3400-\u9fff])")

    def characters(value: str) -> str:
        return " ".join(cjk.sub(r" \1 ", phrase_form(value)).split())

    source = sqlite3.connect(f"{index.resolve().as_uri()}?mode=ro", uri=True)
    titles = [t for (t,) in source.execute("SELECT json_extract(data, '$.title') FROM records")
              if t]
    source.close()
    db = sqlite3.connect(":memory:")
    for name, form in (("chars", characters), ("bigrams", text_form)):
        db.execute(f"CREATE VIRTUAL TABLE {name} USING fts5(t)")
        db.executemany(f"INSERT INTO {name} VALUES (?)", ((form(t),) for t in titles))
        db.execute(f"INSERT INTO {name} ({name}) VALUES ('optimize')")
    ratios = []
    for word in ("中国", "北京", "经济", "历史", "研究", "中国经济", "发展研究", "数据结构"):
        timed = {}
        for name, phrase in (("chars", characters(word)), ("bigrams", query_form(word)[0])):
            sql = f"SELECT count(*) FROM {name} WHERE {name} MATCH ?"
            timed[name] = _timed(lambda s=sql, p=phrase: db.execute(s, (f'"{p}"',)).fetchone(),
                                 repeat)
        (chars, found), (bigrams, same) = timed["chars"], timed["bigrams"]
        assert found == same, word
        ratios.append(chars / bigrams)
        print(f"  {word:<10} {found[0]:>7} titles  characters {chars * 1000:6.1f} ms  "
              f"bigrams {bigrams * 1000:6.1f} ms  ({chars / bigrams:.1f}x)", flush=True)
    print(f"  bigrams against characters: median {statistics.median(ratios):.1f}x faster "
          f"({len(titles)} titles)", flush=True)


def bench_postgresql(index: Path, args: argparse.Namespace) -> dict | None:
    if not args.database:
        print("  postgresql: give --database URL", flush=True)
        return None
    if importlib.util.find_spec("broker.union_index.publish") is None or \
            importlib.util.find_spec("connectors.local.pg_index") is None:
        print("  postgresql: not available (broker.union_index.publish or "
              "connectors.local.pg_index is missing)", flush=True)
        return None
    from broker.union_index.publish import publish
    from connectors.local.pg_index import PgIndexConnector

    began = time.perf_counter()
    publish(index, args.database)
    print(f"  postgresql: published in {time.perf_counter() - began:.0f} s", flush=True)
    return run_queries(PgIndexConnector(_library(index, args.database)), args.repeat,
                       "postgresql")


def _ratio(these: list[float], those: list[float]) -> float:
    return statistics.median(these) / statistics.median(those)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, action="append")
    parser.add_argument("--libraries", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--work", type=Path)
    parser.add_argument("--engine", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--database")
    parser.add_argument("--bigrams", type=Path, metavar="INDEX",
                        help="only compare bigrams with characters on INDEX's titles")
    args = parser.parse_args()
    if args.bigrams:
        bigrams_against_characters(args.bigrams, args.repeat)
        return 0
    sizes = args.records or [100_000, 1_000_000]
    with tempfile.TemporaryDirectory() as temporary:
        work = args.work or Path(temporary)
        work.mkdir(parents=True, exist_ok=True)
        results = [bench_size(n, args, work) for n in sizes]
    first = results[0]
    for result in results[1:]:
        print(f"\nbuild {result['records']} / {first['records']} records: "
              f"{result['records'] / first['records']:.1f}x the records, "
              f"{result['build_cpu'] / first['build_cpu']:.1f}x the CPU time, "
              f"{result['build_wall'] / first['build_wall']:.1f}x the wall time; first page "
              f"median {_ratio(result['first'], first['first']):.1f}x",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
