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

Time grows with the records, not their square: the file is written with no journal (a
failed build is thrown away whole; the file is renamed into place only when complete),
the indexes searches need are created once the records are in, and a record with an
identifier that links it to a cluster is placed without reading every cluster of the same
title (``choose``: the answer is the one ``Matcher.choose`` gives). ``balis index update``
(``broker.union_index.update``) replaces one library's records in a copy of the file.
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
from broker.search.match import Evidence, Link, Matcher, evidence
from broker.search.merge import richness
from broker.union_index.sources import Loaded, Source, parse_source, read_source
from connectors.local.index_file import (
    COLUMNS,
    LATE_INDEXES,
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
            for position, source in enumerate(sources):
                builder.load(source, report, position=position)
            result = builder.finish([(s.library, str(s.path)) for s in sources])
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
    """Writes records into an index file; the clustering follows
    ``broker.search.merge.Merger._place``. ``broker.union_index.update`` reuses it on a
    copy of an index (``fresh=False``)."""

    def __init__(self, path: Path, *, fresh: bool = True, generation: int = 1) -> None:
        self.db = sqlite3.connect(path, isolation_level=None)
        # No journal: the file is a private copy until it is renamed into place, so a
        # failure throws it away whole; a journal would only double the writes.
        self.db.execute("PRAGMA journal_mode=OFF")
        self.db.execute("PRAGMA synchronous=OFF")
        self.db.execute("PRAGMA cache_size=-131072")  # 128 MiB: the B-trees being filled
        if fresh:
            self.db.executescript(SCHEMA)
        self.db.execute("BEGIN")
        self.fresh = fresh
        self.generation = generation
        self.counts = {"records": 0, "skipped": 0, "repeated": 0}
        self.per_source: list[tuple[int, int]] = []
        self.positions: list[int] = []  # of each source loaded
        self.ordinals: dict[int, int] = {}  # records read so far at each source position
        # An update numbers clusters out of creation order (a cluster keeps its id); the
        # matcher's "oldest cluster first" then needs the order they were made in.
        self.created: dict[int, int] | None = None if fresh else {}
        self.store = _SqliteMatchStore(self.db)
        self.matcher = Matcher(self.store)
        self.clusters_made = self.db.execute("SELECT count(*) FROM clusters").fetchone()[0]
        self.last_record = self.db.execute("SELECT max(id) FROM records").fetchone()[0] or 0

    def __enter__(self) -> _Builder:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.db.in_transaction:
            self.db.rollback()
        self.db.close()

    def load(self, source: Source, report: Callable[[str], None], *,
             place: bool = True, position: int = 0) -> None:
        loaded = skipped = 0
        self.positions.append(position)
        for item in read_source(source):
            if item.record is None:
                skipped += 1
                report(f"{source.path}: {item.position}: {item.problem}; skipped")
                continue
            ordinal = self.ordinals.get(position, 0)
            self.ordinals[position] = ordinal + 1
            if self.add(source.library, item, place=place,
                        position=(position << 32) + ordinal) is not None:
                loaded += 1
            else:
                self.counts["repeated"] += 1
                report(f"{source.path}: {item.position}: record {item.record.id} was already "
                       f"loaded for {source.library}; kept once")
        self.counts["records"] += loaded
        self.counts["skipped"] += skipped
        self.per_source.append((loaded, skipped))

    def add(self, library: str, item: Loaded, *, place: bool = True,
            position: int = 0) -> int | None:
        """Adds one record (placed in its cluster unless ``place`` is false: an update
        places its records afterwards); its row id, or None for a repeated record."""
        record = item.record
        assert record is not None
        db = self.db
        if record.id is not None and db.execute(
                "SELECT 1 FROM records WHERE library = ? AND record_id = ?",
                (library, record.id)).fetchone():
            return None
        found = evidence(record)
        rich, warnings = richness(record)
        self.last_record += 1
        rowid = self.last_record
        if place:
            cluster = self.place(library, record.id, found, rowid,
                                 bool(record.title or record.isbns or record.issns))
        else:
            cluster = 0
            db.execute("INSERT INTO match_evidence VALUES (0, ?, ?, ?)",
                       (record.id, found.to_json(), rowid))
        db.execute(
            "INSERT INTO records (id, library, record_id, cluster, year, rich, warnings, "
            "data, marc, flavour, position) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (rowid, library, record.id, cluster, record.year, rich, warnings,
             json.dumps(record.as_dict(), ensure_ascii=False), item.marc, item.flavour,
             position))
        values = text_values(record)
        # ``any`` is the named indexes' values followed by the rest (place, ISBNs...).
        extra = values["any"][sum(len(values[c]) for c in COLUMNS[:-1]):]
        db.execute(f"INSERT INTO record_text (rowid, {', '.join(COLUMNS)}) "
                   "VALUES (?, ?, ?, ?, ?, ?)",
                   (rowid, *(column_text(values[c]) for c in COLUMNS[:-1]),
                    column_text(extra)))
        db.executemany("INSERT OR IGNORE INTO identifiers VALUES (?, ?, ?)",
                       [(kind, key, rowid) for kind, key in identifier_keys(record)])
        return rowid

    def place(self, library: str, record_id: str | None, found: Evidence, rowid: int,
              matchable: bool, *, new_id: int | None = None) -> int:
        """The cluster the record joins (a new one, numbered ``new_id`` if given, when
        none matches), recorded in the matcher's state."""
        choice = choose(self.matcher, self.store, record_id, found, self.created) \
            if matchable else None
        if choice is None:
            self.clusters_made += 1
            cluster = _inserted(self.db.execute(
                "INSERT INTO clusters (id, name, generation) VALUES (?, ?, ?)",
                (new_id, record_id or f"{library}:#{self.clusters_made}", self.generation)))
            if self.created is not None:
                self.created[cluster] = len(self.created)
        else:
            cluster = choice[0]
        self.store.add(cluster, record_id, found, rowid)
        return cluster

    def finish(self, sources: Sequence[tuple[str, str]]) -> BuildReport:
        db = self.db
        if self.fresh:
            for statement in filter(str.strip, LATE_INDEXES.split(";")):
                db.execute(statement)  # executescript would commit the transaction
            # The fullest description speaks for its cluster; the first of equals, as
            # max() picks.
            db.execute("""UPDATE clusters SET best = (SELECT id FROM records
                          WHERE records.cluster = clusters.id
                          ORDER BY rich DESC, warnings ASC, position ASC, id ASC LIMIT 1)""")
            db.executemany("INSERT INTO sources VALUES (?, ?, ?, ?, ?)",
                           [(library, path, loaded, skipped, position)
                            for (library, path), (loaded, skipped), position
                            in zip(sources, self.per_source, self.positions, strict=True)])
            db.executemany("INSERT INTO meta VALUES (?, ?)",
                           [("schema", str(SCHEMA_VERSION)), ("kind", "balis union index"),
                            ("generation", str(self.generation))])
            # One b-tree per term for searches; an update leaves FTS5's own merging to
            # it (an optimize would rewrite the whole text index).
            db.execute("INSERT INTO record_text (record_text) VALUES ('optimize')")
        db.execute("PRAGMA analysis_limit=2000")  # sampled statistics: seconds, not minutes
        db.execute("ANALYZE")
        db.execute("COMMIT")
        clusters = db.execute("SELECT count(*) FROM clusters").fetchone()[0]
        # Published in rollback mode: the file is replaced whole and never written in
        # place, and a WAL file's -wal/-shm companions would outlive the index they
        # belong to when the next build is renamed over it.
        db.execute("PRAGMA journal_mode=DELETE")
        return BuildReport(self.counts["records"], clusters, self.counts["skipped"],
                           self.counts["repeated"])


def choose(matcher: Matcher, store: _SqliteMatchStore, record_id: str | None,
           found: Evidence, created: dict[int, int] | None = None
           ) -> tuple[int, Link] | None:
    """``matcher.choose(record_id, found)``, reading the clusters under the record's
    identifiers first: ``choose`` takes the oldest cluster linked by an identifier, and
    such a cluster shares one of the record's ISBN or ISSN keys, so when one is found
    among those the many clusters of the same title need not be read. ``created``: the
    order clusters were made in, when it is not their ids' (an update); then only a
    description can link the record otherwise, which no order changes."""
    keys = [key for key in found.blocks() if key[0] != "title"]
    if keys:
        candidates = {c for key in keys for c in store.clusters(key)}
        order = (lambda c: created.get(c, -1)) if created is not None else None
        for cluster in sorted(candidates, key=order):
            link = matcher._against(record_id, found, store.members(cluster))
            if link is not None and link.by_identifier:
                return cluster, link
    return matcher.choose(record_id, found)


class _SqliteMatchStore:
    """``broker.search.match.MatchStore`` in the index being built; the evidence of
    recently read clusters is kept parsed (a cluster is compared again and again while
    records of its title arrive)."""

    CACHED = 20_000  # clusters whose parsed evidence is kept

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self._members: dict[int, list[tuple[str | None, Evidence]]] = {}

    def clusters(self, key: tuple[str, str]) -> list[int]:
        return [row[0] for row in self.db.execute(
            "SELECT cluster FROM match_keys WHERE key = ?", ("\x1f".join(key),))]

    def members(self, cluster: int) -> list[tuple[str | None, Evidence]]:
        found = self._members.get(cluster)
        if found is None:
            found = [(record_id, Evidence.from_json(data)) for record_id, data in
                     self.db.execute("SELECT record_id, evidence FROM match_evidence "
                                     "WHERE cluster = ? ORDER BY rowid", (cluster,))]
            if len(self._members) >= self.CACHED:
                self._members.clear()
            self._members[cluster] = found
        return found

    def add(self, cluster: int, record_id: str | None, found: Evidence,
            record: int | None = None) -> None:
        self.db.execute("INSERT INTO match_evidence VALUES (?, ?, ?, ?)",
                        (cluster, record_id, found.to_json(), record))
        self.db.executemany("INSERT OR IGNORE INTO match_keys VALUES (?, ?)",
                            [("\x1f".join(key), cluster) for key in found.blocks()])
        cached = self._members.get(cluster)
        if cached is not None:
            cached.append((record_id, found))

    def forget(self) -> None:
        self._members.clear()


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
