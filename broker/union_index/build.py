"""The union index: harvested records of many libraries in one SQLite file, de-duplicated.

``build`` loads harvest files (ISO 2709, MARCXML or MARC-in-JSON through ``marc.read_file``,
or JSON lines of normalized records, CONTRACTS section 4; ``broker.union_index.sources`` reads
them), each from a named library, and writes a fresh index beside the target, then
renames it into place: a broker searching the old file never sees half an index, and
building twice from the same files gives the same index. Records are clustered as
``broker.search.merge.Merger`` clusters a search's results (the same ``broker.search.match``
rules, same cluster ids), but with the matcher's candidate keys and evidence in SQLite, so a
large harvest is never held in memory.

Text is indexed in an FTS5 table, one column per text index of CONTRACTS section 3 (``any``
is every column). FTS5's unicode61 tokenizer does not segment Chinese, so
``connectors.local.index_file.text_form`` folds text as ``broker.catalogues.marc_file``
does (NFKC, simplified, casefolded, punctuation removed) and writes every CJK character as
its own token: a CJK word is then an FTS5 phrase of adjacent characters, and
``title=中国`` finds 中国经济 but ``title=中国经济`` does not find 中国的经济. A field's
several values (two authors) are separated by the token ``_``, which no folded query
contains, so a phrase never runs from one value into the next.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from broker.kernel.errors import SourceOpenError, UsageError
from broker.search.match import Evidence, Matcher, evidence
from broker.search.merge import richness
from broker.union_index.sources import Loaded, Source, parse_source, read_source
from connectors.local.index_file import (
    COLUMNS,
    SCHEMA,
    SCHEMA_VERSION,
    column_text,
    connect,
    raw_marc,
)
from connectors.local.keys import call_key, isbn_keys, text_values
from marc import Record

logger = logging.getLogger(__name__)

__all__ = ["BuildReport", "Source", "build", "connect", "parse_source", "raw_marc",
           "read_source"]

# --- building ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BuildReport:
    records: int  # records in the index
    clusters: int
    skipped: int  # records that could not be read
    repeated: int  # a record id a library's files had already given (kept once)


def build(sources: Sequence[Source], out: str | os.PathLike[str], *,
          report: Callable[[str], None] = logger.warning) -> BuildReport:
    """Index the records of ``sources`` into a new index at ``out`` (replacing it).

    Every file is checked first (UsageError, SourceOpenError: nothing is written); a bad
    record is passed to ``report`` with its file and position, and skipped."""
    out = Path(out)
    if not sources:
        raise UsageError("give at least one harvest file to index")
    if not out.parent.is_dir():
        raise UsageError(f"{out}: the directory {out.parent} does not exist")
    if out.is_dir():
        raise UsageError(f"{out} is a directory; give the index file's path")
    for source in sources:
        if not source.path.is_file():
            what = "is not a file" if source.path.exists() else "does not exist"
            raise SourceOpenError(f"{source.path} {what}")
    building = out.with_name(f".{out.name}.building-{os.getpid()}")
    building.unlink(missing_ok=True)
    try:
        with _Builder(building) as builder:
            for source in sources:
                builder.load(source, report)
            result = builder.finish(sources)
        if not result.records:
            raise UsageError(f"no readable record in {len(sources)} "
                             f"file{'s' if len(sources) > 1 else ''}; {out} was not written")
        os.replace(building, out)
    finally:
        for leftover in (building, *(building.with_name(building.name + s)
                                     for s in ("-wal", "-shm", "-journal"))):
            leftover.unlink(missing_ok=True)
    return result


class _Builder:
    """Writes one new index file; the clustering follows ``broker.search.merge.Merger._place``."""

    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=OFF")  # a failed build is thrown away whole
        self.db.executescript(SCHEMA)
        self.db.execute("BEGIN")
        self.counts = {"records": 0, "skipped": 0, "repeated": 0}
        self.per_source: list[tuple[int, int]] = []
        self.matcher = Matcher(_SqliteMatchStore(self.db))

    def __enter__(self) -> _Builder:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.db.in_transaction:
            self.db.rollback()
        self.db.close()

    def load(self, source: Source, report: Callable[[str], None]) -> None:
        loaded = skipped = 0
        for item in read_source(source):
            if item.record is None:
                skipped += 1
                report(f"{source.path}: {item.position}: {item.problem}; skipped")
                continue
            if self._add(source.library, item):
                loaded += 1
            else:
                self.counts["repeated"] += 1
                report(f"{source.path}: {item.position}: record {item.record.id} was already "
                       f"loaded for {source.library}; kept once")
        self.counts["records"] += loaded
        self.counts["skipped"] += skipped
        self.per_source.append((loaded, skipped))

    def _add(self, library: str, item: Loaded) -> bool:
        record = item.record
        assert record is not None
        db = self.db
        if record.id is not None and db.execute(
                "SELECT 1 FROM records WHERE library = ? AND record_id = ?",
                (library, record.id)).fetchone():
            return False
        cluster = self._place(library, record)
        rich, warnings = richness(record)
        rowid = _inserted(db.execute(
            "INSERT INTO records (library, record_id, cluster, year, rich, warnings, data, "
            "marc, flavour) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (library, record.id, cluster, record.year, rich, warnings,
             json.dumps(record.as_dict(), ensure_ascii=False), item.marc, item.flavour),
        ))
        values = text_values(record)
        # ``any`` is the named indexes' values followed by the rest (place, ISBNs...).
        extra = values["any"][sum(len(values[c]) for c in COLUMNS[:-1]):]
        db.execute(f"INSERT INTO record_text (rowid, {', '.join(COLUMNS)}) "
                   "VALUES (?, ?, ?, ?, ?, ?)",
                   (rowid, *(column_text(values[c]) for c in COLUMNS[:-1]),
                    column_text(extra)))
        db.executemany("INSERT OR IGNORE INTO identifiers VALUES (?, ?, ?)",
                       [(kind, key, rowid) for kind, key in identifier_keys(record)])
        return True

    def _place(self, library: str, record: Record) -> int:
        found = evidence(record)
        choice = self.matcher.choose(record.id, found) if record.title or record.isbns \
            or record.issns else None
        if choice is None:
            number = self.db.execute("SELECT count(*) FROM clusters").fetchone()[0]
            cluster = _inserted(self.db.execute("INSERT INTO clusters (name) VALUES (?)",
                                                (record.id or f"{library}:#{number + 1}",)))
        else:
            cluster = choice[0]
        self.matcher.add(cluster, record.id, found)
        return cluster

    def finish(self, sources: Sequence[Source]) -> BuildReport:
        db = self.db
        # The fullest description speaks for its cluster; the first of equals, as max() picks.
        db.execute("""UPDATE clusters SET best = (SELECT id FROM records
                      WHERE records.cluster = clusters.id
                      ORDER BY rich DESC, warnings ASC, id ASC LIMIT 1)""")
        db.executemany("INSERT INTO sources VALUES (?, ?, ?, ?)",
                       [(s.library, str(s.path), loaded, skipped)
                        for s, (loaded, skipped) in zip(sources, self.per_source, strict=True)])
        db.executemany("INSERT INTO meta VALUES (?, ?)",
                       [("schema", str(SCHEMA_VERSION)), ("kind", "balis union index")])
        db.execute("INSERT INTO record_text (record_text) VALUES ('optimize')")
        db.execute("COMMIT")
        clusters = db.execute("SELECT count(*) FROM clusters").fetchone()[0]
        # Built in WAL mode, published in rollback mode: the file is replaced whole and
        # never written in place, and a WAL file's -wal/-shm companions would outlive the
        # index they belong to when the next build is renamed over it.
        db.execute("PRAGMA journal_mode=DELETE")
        return BuildReport(self.counts["records"], clusters, self.counts["skipped"],
                           self.counts["repeated"])


class _SqliteMatchStore:
    """``broker.search.match.MatchStore`` in the index being built."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def clusters(self, key: tuple[str, str]) -> list[int]:
        return [row[0] for row in self.db.execute(
            "SELECT cluster FROM match_keys WHERE key = ?", ("\x1f".join(key),))]

    def members(self, cluster: int) -> list[tuple[str | None, Evidence]]:
        return [(record_id, Evidence.from_json(data)) for record_id, data in self.db.execute(
            "SELECT record_id, evidence FROM match_evidence WHERE cluster = ? ORDER BY rowid",
            (cluster,))]

    def add(self, cluster: int, record_id: str | None, found: Evidence) -> None:
        self.db.execute("INSERT INTO match_evidence VALUES (?, ?, ?)",
                        (cluster, record_id, found.to_json()))
        self.db.executemany("INSERT OR IGNORE INTO match_keys VALUES (?, ?)",
                            [("\x1f".join(key), cluster) for key in found.blocks()])


def _inserted(cursor: sqlite3.Cursor) -> int:
    """The rowid of the row an INSERT just added (never None after one)."""
    if cursor.lastrowid is None:
        raise sqlite3.InterfaceError("an INSERT gave no rowid")
    return cursor.lastrowid


def identifier_keys(record: Record) -> list[tuple[str, str]]:
    """(index, key) pairs, as ``broker.catalogues.marc_file.LocalCatalogue`` indexes them."""
    keys = [("isbn", key) for isbn in record.isbns for key in isbn_keys(isbn)]
    keys += [("issn", issn.replace("-", "").upper()) for issn in record.issns]
    for value in (*record.call_numbers, *(c.value for c in record.classification)):
        key = call_key(value)
        if key:
            keys.append(("callnumber", key))
            keys.extend(("callnumber", part) for part in key.split("/"))
    return keys
