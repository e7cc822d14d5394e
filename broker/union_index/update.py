"""Updating a union index from new harvests of some of its libraries (``balis index update``).

A new harvest of a library replaces every record the index holds for it: records added,
changed and removed. Only what the new and the old records can touch is clustered again,
and the result is the index a full build of the same harvests would give (the same
clusters, named alike, with the same best record):

* The matcher (``broker.search.match``) only compares a record with the clusters under its
  candidate keys (ISBN, ISSN, title), so clusters that share no key with one another never
  influence one another. The update takes the keys of the library's old clusters and of its
  new records, and closes them: every cluster under one of those keys, every key of those
  clusters, and so on. Outside that closed group nothing can change.
* Inside it, every record is placed again in the order a build would read them (the
  libraries in the order of the index's ``sources``, the replaced library where it was,
  a new one last; each library's records in file order), against the group only.

A cluster whose name (its first record's id) was in the group keeps its id; the others
are new, and the ids that are gone are listed in ``removed_clusters`` with the update's
generation, so that a copy of the index elsewhere (``broker.union_index.publish``) can
rewrite only what changed (``clusters.generation`` is the generation that last wrote it).

The work is done on a copy of the file, renamed over the index when complete: a reader
sees the old index or the new one, never half (``connectors.local`` reopens a file it
notices was replaced). One exception to the equality with a build: a record with no id
names its new cluster after the library and a number that a build would count differently.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from broker.kernel.errors import SourceOpenError, UsageError
from broker.search.match import Evidence
from broker.union_index.build import Source, _Builder
from connectors.local.index_file import connect

logger = logging.getLogger(__name__)

_CHUNK = 500  # ids per IN (...) list


@dataclass(frozen=True, slots=True)
class UpdateReport:
    generation: int
    libraries: tuple[str, ...]
    removed: int  # the libraries' records before
    records: int  # their records now
    reclustered: int  # records placed again (theirs and those of clusters they touch)
    clusters: int  # clusters in the index after
    skipped: int
    repeated: int


def update(index: str | os.PathLike[str], sources: Sequence[Source], *,
           report: Callable[[str], None] = logger.warning) -> UpdateReport:
    """Replace the records of the libraries ``sources`` name by those of their files."""
    index = Path(index)
    if not sources:
        raise UsageError("give at least one harvest file to update the index with")
    for source in sources:
        if not source.path.is_file():
            what = "is not a file" if source.path.exists() else "does not exist"
            raise SourceOpenError(f"{source.path} {what}")
    check = connect(index)  # IndexFileError: missing, not an index, another version
    try:
        generation = int(dict(check.execute("SELECT key, value FROM meta")).get(
            "generation", "1")) + 1
    finally:
        check.close()
    working = index.with_name(f".{index.name}.updating-{os.getpid()}")
    try:
        shutil.copyfile(index, working)
        with _Builder(working, fresh=False, generation=generation) as builder:
            result = _Update(builder).run(sources, report)
        os.replace(working, index)
    finally:
        for leftover in (working, *(working.with_name(working.name + s)
                                    for s in ("-wal", "-shm", "-journal"))):
            leftover.unlink(missing_ok=True)
    return result


class _Update:
    def __init__(self, builder: _Builder) -> None:
        self.builder = builder
        self.db = builder.db

    def run(self, sources: Sequence[Source], report: Callable[[str], None]) -> UpdateReport:
        db, builder = self.db, self.builder
        libraries = tuple(dict.fromkeys(s.library for s in sources))
        marks = ", ".join("?" * len(libraries))
        old = [row[0] for row in db.execute(
            f"SELECT id FROM records WHERE library IN ({marks})", libraries)]
        touched = set(self._column("SELECT DISTINCT cluster FROM records WHERE id IN ({})",
                                   old))
        keys = set(self._column("SELECT key FROM match_keys WHERE cluster IN ({})", touched))
        self._delete_records(old)
        positions = self._positions(libraries)
        for source in sources:  # new records come unplaced: cluster 0 in match_evidence
            builder.load(source, report, place=False, position=positions[source.library])
        keys.update("\x1f".join(key) for (data,) in db.execute(
            "SELECT evidence FROM match_evidence WHERE cluster = 0")
            for key in Evidence.from_json(data).blocks())
        group = self._close(touched, keys)
        self._sources(sources)
        placed = self._replace(group)
        db.execute("UPDATE meta SET value = ? WHERE key = 'generation'",
                   (str(builder.generation),))
        done = builder.finish([])
        return UpdateReport(builder.generation, libraries, len(old), builder.counts["records"],
                            placed, done.clusters, builder.counts["skipped"],
                            builder.counts["repeated"])

    def _column(self, sql: str, values: Iterable) -> list:
        values = list(values)
        out: list = []
        for at in range(0, len(values), _CHUNK):
            chunk = values[at:at + _CHUNK]
            out.extend(row[0] for row in self.db.execute(
                sql.format(", ".join("?" * len(chunk))), chunk))
        return out

    def _execute(self, sql: str, values: Iterable) -> None:
        values = list(values)
        for at in range(0, len(values), _CHUNK):
            chunk = values[at:at + _CHUNK]
            self.db.execute(sql.format(", ".join("?" * len(chunk))), chunk)

    def _delete_records(self, ids: list[int]) -> None:
        for sql in ("DELETE FROM record_text WHERE rowid IN ({})",
                    "DELETE FROM identifiers WHERE record IN ({})",
                    "DELETE FROM match_evidence WHERE record IN ({})",
                    "DELETE FROM records WHERE id IN ({})"):
            self._execute(sql, ids)

    def _close(self, clusters: set[int], keys: set[str]) -> set[int]:
        """The clusters reachable from ``clusters`` and ``keys`` through shared keys."""
        seen_keys: set[str] = set()
        group = set(clusters)
        while keys - seen_keys:
            fresh = keys - seen_keys
            seen_keys |= fresh
            found = set(self._column("SELECT cluster FROM match_keys WHERE key IN ({})",
                                     fresh)) - group
            group |= found
            keys = seen_keys | set(self._column(
                "SELECT key FROM match_keys WHERE cluster IN ({})", found))
        group.discard(0)
        return group

    def _positions(self, libraries: Sequence[str]) -> dict[str, int]:
        """Each library's source position: where its files were, a new library last."""
        known = dict(self.db.execute("SELECT library, min(position) FROM sources "
                                     "GROUP BY library"))
        last = max(known.values(), default=-1)
        out = {}
        for library in libraries:
            if library not in known:
                last += 1
            out[library] = known.get(library, last)
        return out

    def _sources(self, sources: Sequence[Source]) -> None:
        """The new files in ``sources`` in place of the libraries' old ones."""
        db, builder = self.db, self.builder
        marks = ", ".join("?" * len({s.library for s in sources}))
        db.execute(f"DELETE FROM sources WHERE library IN ({marks})",
                   list(dict.fromkeys(s.library for s in sources)))
        db.executemany("INSERT INTO sources VALUES (?, ?, ?, ?, ?)", [
            (s.library, str(s.path), loaded, skipped, position)
            for s, (loaded, skipped), position
            in zip(sources, builder.per_source, builder.positions, strict=True)])

    def _replace(self, group: set[int]) -> int:
        """Clusters the group's records and the new ones again, as a build would."""
        db, builder = self.db, self.builder
        names = dict(self._pairs("SELECT name, id FROM clusters WHERE id IN ({})", group))
        members = self._rows(
            "SELECT r.id, r.library, r.record_id, m.evidence, r.data, r.position "
            "FROM records r JOIN match_evidence m ON m.record = r.id "
            "WHERE m.cluster IN ({})", [0, *group])
        members.sort(key=lambda row: (row[5], row[0]))  # as a build reads them
        next_id = (db.execute("SELECT max(id) FROM clusters").fetchone()[0] or 0) + 1
        self._execute("DELETE FROM match_keys WHERE cluster IN ({})", group)
        self._execute("DELETE FROM match_evidence WHERE cluster IN ({})", [0, *group])
        self._execute("DELETE FROM clusters WHERE id IN ({})", group)
        builder.store.forget()
        made: list[int] = []
        for rowid, library, record_id, found, data, _ in members:
            record = json.loads(data)
            matchable = bool(record.get("title") or record.get("isbns")
                             or record.get("issns"))
            before = builder.clusters_made
            # A cluster keeps its id when its name (its first record) is the same.
            name = record_id or f"{library}:#{before + 1}"
            kept = names.pop(name, None)  # an id is given to one cluster only
            cluster = builder.place(library, record_id, Evidence.from_json(found), rowid,
                                    matchable, new_id=next_id if kept is None else kept)
            if builder.clusters_made > before:
                made.append(cluster)
                next_id += kept is None
            elif kept is not None:
                names[name] = kept  # joined a cluster: the id waits for its name
            db.execute("UPDATE records SET cluster = ? WHERE id = ?", (cluster, rowid))
        self._execute("""UPDATE clusters SET best = (SELECT id FROM records
                         WHERE records.cluster = clusters.id
                         ORDER BY rich DESC, warnings ASC, position ASC, id ASC LIMIT 1)
                         WHERE id IN ({})""", made)
        gone = group - set(made)
        db.executemany("INSERT INTO removed_clusters VALUES (?, ?)",
                       [(cluster, builder.generation) for cluster in sorted(gone)])
        return len(members)

    def _pairs(self, sql: str, values: Iterable) -> list[tuple]:
        return [tuple(row) for row in self._rows(sql, values)]

    def _rows(self, sql: str, values: Iterable) -> list[tuple]:
        values = list(values)
        out: list[tuple] = []
        for at in range(0, len(values), _CHUNK):
            chunk = values[at:at + _CHUNK]
            out.extend(self.db.execute(sql.format(", ".join("?" * len(chunk))), chunk))
        return out
