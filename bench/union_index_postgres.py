#!/usr/bin/env python3
"""The union index on PostgreSQL next to the SQLite file it is published from.

Run by hand from the repository root::

    python bench/union_index_postgres.py --records 100000 [--records 1000000]
        [--database postgresql://user@host/db] [--work DIR] [--repeat 5]

For each size: synthetic harvests (``--libraries`` libraries; each work held by one to six
of them, so records cluster; Chinese and English titles drawn from a vocabulary with
common and rare words, authors, subjects, publishers, years, ISBNs) written as JSON lines,
built into a SQLite union index (``broker.union_index.build``), published into PostgreSQL
(``broker.union_index.publish``: the first, whole load; then a second publish with one
library's records changed, which rewrites only its clusters), and searched by both
connectors with the same 20 queries: common Chinese words, rare ones, English words,
truncation, author, subject, year, ISBN, booleans. Each query runs ``--repeat`` times after
a warm-up (first page of 20, with the count); the figures are the median and p90 over the
20 queries of each query's median, per engine, and PostgreSQL / SQLite as a ratio (the
SQLite engine, measured in the same run, is the baseline).

Without ``--database`` a private PostgreSQL is started (``tests/peers/postgres.py``:
fsync off, so publish times are a little better than on a durable server). ``--work``
keeps the generated files and index (reused when present) instead of a temporary folder.
Exit status 0 whatever the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

for _path in (Path(__file__).resolve().parents[1], Path(__file__).resolve().parents[1] / "tests"):
    if str(_path) not in sys.path:  # run as a script: bench/ is on the path, these are not
        sys.path.insert(0, str(_path))

from broker.kernel.config import ConnectorConfig, Library  # noqa: E402
from broker.kernel.cql import parse  # noqa: E402
from broker.union_index.build import Source, build  # noqa: E402
from broker.union_index.publish import publish  # noqa: E402
from connectors.local.connector import LocalIndexConnector  # noqa: E402
from connectors.local.pg_index import PgIndexConnector  # noqa: E402

COMMON = ["中国", "北京", "经济", "历史", "研究", "发展", "文化", "社会", "管理", "教育",
          "理论", "技术", "系统", "设计", "方法", "文学", "科学", "政治", "计算机", "网络"]
RARE = ["敦煌", "甲骨", "楚辞", "景泰蓝", "昆曲", "徽州", "西夏", "契丹", "漆器", "篆刻"]
ENGLISH = ["history", "economics", "computer", "networks", "theory", "introduction",
           "china", "beijing", "design", "systems", "modern", "science", "culture", "data"]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂"
PUBLISHERS = ["人民出版社", "商务印书馆", "中华书局", "清华大学出版社", "北京大学出版社",
              "科学出版社", "高等教育出版社", "Springer", "Oxford University Press",
              "Prentice Hall"]
SUBJECTS = ["经济史", "计算机科学", "中国历史", "教育理论", "社会学", "文学评论",
            "economics", "computer science", "history", "education"]


def _isbn(n: int) -> str:
    body = f"978{n % 10**9:09d}"
    check = (10 - sum((1 if i % 2 == 0 else 3) * int(c) for i, c in enumerate(body)) % 10) % 10
    return body + str(check)


def _work(rng: random.Random, n: int) -> dict:
    if rng.random() < 0.3:  # English
        words = rng.sample(ENGLISH, rng.randint(2, 4))
        title = " ".join(words).capitalize()
        author = f"{rng.choice(['Smith', 'Wang', 'Brown', 'Li', 'Taylor'])}, " \
                 f"{rng.choice('ABCDEFGH')}."
    else:
        words = rng.sample(COMMON, rng.randint(2, 3))
        if rng.random() < 0.02:
            words.insert(rng.randrange(len(words) + 1), rng.choice(RARE))
        title = "".join(words) + rng.choice(["", "研究", "概论", "史", "导论"])
        author = rng.choice(SURNAMES) + "".join(rng.sample(GIVEN, rng.randint(1, 2)))
    return {"title": title, "authors": [author], "responsibility": f"{author}著",
            "publisher": rng.choice(PUBLISHERS), "place": "北京",
            "year": rng.randint(1950, 2025), "language": "chi", "material_type": "book",
            "isbns": [_isbn(n)] if rng.random() < 0.85 else [],
            "subjects": rng.sample(SUBJECTS, rng.randint(0, 2)),
            "call_numbers": [f"{rng.choice('ABCDFGHIKTX')}{rng.randint(1, 999)}/{n % 97}"]}


def generate(folder: Path, records: int, libraries: int, reuse: bool = False,
             seed: int = 15) -> list[Source]:
    """JSON lines of normalized records, one file per library; about records in all."""
    names = [f"l{i:04d}" for i in range(libraries)]
    if reuse and all((folder / f"{n}.jsonl").exists() for n in names):
        return [Source(n, folder / f"{n}.jsonl") for n in names]
    rng = random.Random(seed)
    files = {f"l{i:04d}": (folder / f"l{i:04d}.jsonl").open("w", encoding="utf-8")
             for i in range(libraries)}
    ids = list(files)
    written = n = 0
    while written < records:
        n += 1
        work = _work(rng, n)
        for library in rng.sample(ids, min(len(ids), 1 + int(rng.expovariate(0.8)))):
            if written >= records:
                break
            number = f"{n}"
            record = {**work, "id": f"{library}:{number}", "format": "marc21",
                      "holdings": [{"library": library, "location": "中文书库",
                                    "call_number": work["call_numbers"][0],
                                    "barcode": f"{library}-{number}", "status": "available",
                                    "due": None}]}
            files[library].write(json.dumps(record, ensure_ascii=False) + "\n")
            written += 1
    for handle in files.values():
        handle.close()
    return [Source(library, folder / f"{library}.jsonl") for library in ids]


def queries(isbn: str) -> list[str]:
    return ["中国", "北京", "经济", "历史", "研究", "title=中国经济", "title=敦煌",
            "title=景泰蓝", 'title="计算机网络"', "title=history", "title=comput*",
            'title all "modern china"', "author=王*", "subject=经济史", "year>=2015",
            f"isbn={isbn}", "title=中国 and year>=2015", "title=经济 not subject=经济史",
            "title=history or title=楚辞", "publisher=中华书局 and title=文学"]


def timed(connector, query: str, repeat: int) -> tuple[float, int]:
    node = parse(query)

    async def run() -> tuple[float, int]:
        page = await connector.search(node, count=20)  # warm-up
        times = []
        for _ in range(repeat):
            began = time.perf_counter()
            page = await connector.search(node, count=20)
            times.append(time.perf_counter() - began)
        return statistics.median(times) * 1000, page.hits
    return asyncio.run(run())


def p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]


def change_one_library(sources: list[Source], folder: Path) -> list[Source]:
    """The last library's new harvest: a tenth of its records withdrawn, a tenth retitled.
    The last, so a rebuild gives every other cluster its old id (ids follow load order);
    only the clusters it touches change."""
    first = sources[-1]
    lines = first.path.read_text("utf-8").splitlines()
    kept = []
    for i, line in enumerate(lines):
        if i % 10 == 0:
            continue
        if i % 10 == 1:
            record = json.loads(line)
            record["title"] += "（修订版）"
            line = json.dumps(record, ensure_ascii=False)
        kept.append(line)
    changed = folder / f"{first.library}.changed.jsonl"
    changed.write_text("\n".join(kept) + "\n", "utf-8")
    return [*sources[:-1], Source(first.library, changed)]


def sources_for(folder: Path, records: int, libraries: int) -> list[Source]:
    """The harvests: E's shared generator (bench/union_data.py, the one bench/union_scale.py
    measures the SQLite engine on) when it is there, else ours."""
    try:
        import union_data
    except ImportError:
        return generate(folder, records, libraries, (folder / "union.sqlite").exists())
    existing = sorted(folder.glob("lib*.jsonl"))
    paths = existing if existing and (folder / "union.sqlite").exists() else \
        union_data.write(folder, records, libraries)
    return [Source(p.name.split(".")[0], p) for p in paths]


def query_list(isbn: str) -> list[str]:
    try:
        from union_scale import QUERIES
    except ImportError:
        return queries(isbn)
    return [q.format(isbn=isbn) for q in QUERIES]


def replicate(base: Path, out: Path, times: int) -> None:
    """``times`` copies of the index at ``base`` as one index (each copy's libraries renamed
    ID~k, its clusters and records renumbered), written by SQL: the build runs at ~3 ms a
    record on a busy two-core machine, so a 1M index is 10 consortia of the 100k one."""
    import shutil
    import sqlite3

    shutil.copyfile(base, out)
    db = sqlite3.connect(out, isolation_level=None)
    db.execute("PRAGMA journal_mode=OFF")
    db.execute("PRAGMA synchronous=OFF")
    records = db.execute("SELECT max(id) FROM records").fetchone()[0]
    clusters = db.execute("SELECT max(id) FROM clusters").fetchone()[0]

    def columns(table: str) -> list[str]:
        return [row[1] for row in db.execute(f"PRAGMA table_info({table})")]
    shifted = {"clusters": {"id": "id + {c}", "name": "name || '~{k}'", "best": "best + {r}"},
               "records": {"id": "id + {r}", "cluster": "cluster + {c}",
                           "library": "library || '~{k}'"},
               "identifiers": {"record": "record + {r}"}}
    db.execute("BEGIN")
    for k in range(1, times):
        for table, changes in shifted.items():
            names = columns(table)
            select = ", ".join(changes.get(n, n).format(k=k, r=k * records, c=k * clusters)
                               for n in names)
            key = "record" if table == "identifiers" else "id"
            limit = clusters if table == "clusters" else records  # the base's rows only
            db.execute(f"INSERT INTO {table} ({', '.join(names)}) SELECT {select} FROM {table} "
                       f"WHERE {key} <= {limit}")
        text = columns("record_text")
        db.execute(f"INSERT INTO record_text (rowid, {', '.join(text)}) SELECT rowid + "
                   f"{k * records}, {', '.join(text)} FROM record_text WHERE rowid <= {records}")
    db.execute("COMMIT")
    db.execute("INSERT INTO record_text (record_text) VALUES ('optimize')")
    db.close()


def refresh(index: Path, sources: list[Source], folder: Path) -> tuple[Path, float, str]:
    """The index after the last library's new harvest: ``balis index update`` when the
    SQLite engine has it (cluster ids kept), else a full rebuild; (file, seconds, how)."""
    changed = change_one_library(sources, folder)
    updated = folder / "union-updated.sqlite"
    began = time.perf_counter()
    try:
        from broker.union_index.update import update
    except ImportError:
        build(changed, updated, report=lambda line: None)
        return updated, time.perf_counter() - began, "rebuild"
    import shutil

    shutil.copyfile(index, updated)
    update(updated, changed[-1:], report=lambda line: None)
    return updated, time.perf_counter() - began, "index update"


def run_size(records: int, args, url: str, work: Path) -> None:
    folder = work / f"n{records}"
    folder.mkdir(parents=True, exist_ok=True)
    index = folder / "union.sqlite"
    times = args.replicate if records > args.build_limit else 1
    base_records = records // times
    base_folder = work / f"n{base_records}"
    base_folder.mkdir(parents=True, exist_ok=True)
    base = base_folder / "union.sqlite"
    began = time.perf_counter()
    sources = sources_for(base_folder, base_records, args.libraries)
    print(f"[{records}] {len(sources)} harvests of {base_records} records ready in "
          f"{time.perf_counter() - began:.1f} s", flush=True)
    if not base.exists():
        began = time.perf_counter()
        built = build(sources, base, report=lambda line: None)
        print(f"[{base_records}] SQLite build: {built.records} records, {built.clusters} "
              f"clusters in {time.perf_counter() - began:.1f} s, "
              f"{base.stat().st_size / 1e6:.0f} MB", flush=True)
    if times > 1 and not index.exists():
        began = time.perf_counter()
        replicate(base, index, times)
        print(f"[{records}] SQLite: {times} copies of the {base_records} index in "
              f"{time.perf_counter() - began:.1f} s, {index.stat().st_size / 1e6:.0f} MB",
              flush=True)
    target = f"{url}{'&' if '?' in url else '?'}schema=bench_{records}"
    first = publish(index, target)
    print(f"[{records}] PostgreSQL first publish: {first.records} records, {first.clusters} "
          f"clusters in {first.seconds:.1f} s", flush=True)
    import sqlite3
    db = sqlite3.connect(index)
    isbn = db.execute("SELECT value FROM identifiers WHERE kind = 'isbn' LIMIT 1").fetchone()[0]
    db.close()
    sqlite = LocalIndexConnector(Library("u", "u", "b", connector=ConnectorConfig(
        protocol="local", url=index.as_uri(), path=str(index))))
    pg = PgIndexConnector(Library("u", "u", "b", connector=ConnectorConfig(
        protocol="local", url=target)))
    rows = []
    for query in query_list(isbn):
        s_ms, s_hits = timed(sqlite, query, args.repeat)
        p_ms, p_hits = timed(pg, query, args.repeat)
        rows.append((query, s_ms, s_hits, p_ms, p_hits))
        print(f"[{records}] {query:34} sqlite {s_ms:8.1f} ms {s_hits:8d} hits | postgresql "
              f"{p_ms:8.1f} ms {p_hits:8d} hits", flush=True)
    s_med, p_med = statistics.median(r[1] for r in rows), statistics.median(r[3] for r in rows)
    s_p90, p_p90 = p90([r[1] for r in rows]), p90([r[3] for r in rows])
    print(f"[{records}] SUMMARY sqlite median {s_med:.1f} ms p90 {s_p90:.1f} ms | postgresql "
          f"median {p_med:.1f} ms p90 {p_p90:.1f} ms | ratio pg/sqlite median "
          f"{p_med / s_med:.2f} p90 {p_p90 / s_p90:.2f}", flush=True)
    asyncio.run(sqlite.close())
    asyncio.run(pg.close())
    if times > 1:
        return  # the copies share the base's harvest files: an update is measured there
    updated, seconds, how = refresh(index, sources, folder)
    print(f"[{records}] SQLite {how} with {sources[-1].library} changed: {seconds:.1f} s",
          flush=True)
    again = publish(updated, target)
    print(f"[{records}] PostgreSQL incremental publish: {again.written} clusters written, "
          f"{again.removed} removed, in {again.seconds:.1f} s ({again.records} records)",
          flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, action="append")
    parser.add_argument("--libraries", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--database", help="postgresql://... (default: a private server)")
    parser.add_argument("--work", type=Path, help="keep generated files here")
    parser.add_argument("--build-limit", type=int, default=200_000,
                        help="larger sizes are copies of a built index (default 200000)")
    parser.add_argument("--replicate", type=int, default=10,
                        help="how many copies make a size past --build-limit (default 10)")
    args = parser.parse_args()
    sizes = args.records or [100_000]
    work = args.work or Path(tempfile.mkdtemp(prefix="balis-bench-pg-"))
    if args.database:
        for size in sizes:
            run_size(size, args, args.database, work)
        return 0
    from peers.postgres import PostgresServer

    with PostgresServer() as server:
        url = server.url().replace("postgresql+psycopg://", "postgresql://")
        for size in sizes:
            run_size(size, args, url, work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
