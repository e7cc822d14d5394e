"""What a union index holds: records, clusters, and how much the libraries overlap.

Overlap is counted in clusters (editions), not records: library A's share of B is the part
of A's clusters that B holds too, so a library that catalogued one book twice still counts
it once. The shares are not symmetric: a small library may hold little of a big one while
the big one holds most of the small one.

Over a consortium's thousand libraries the full overlap is a million pairs: by default
(``top``) the report lists the largest libraries and their overlap with one another, with
the totals of all; ``top=None`` gives every library and every pair (``--json``, ``--all``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from broker.union_index.build import connect


@dataclass(frozen=True, slots=True)
class LibraryStats:
    id: str
    records: int
    clusters: int
    unique: int  # clusters no other library holds


@dataclass(frozen=True, slots=True)
class IndexStats:
    path: str
    records: int
    clusters: int
    libraries: tuple[LibraryStats, ...]
    shared: dict[tuple[str, str], int]  # (a, b) -> clusters both hold, a != b
    holders: dict[int, int]  # number of libraries -> clusters held by that many
    library_count: int = 0  # libraries in the index (``libraries`` may list fewer)
    compared: tuple[str, ...] | None = None  # the libraries ``shared`` covers (None: all)

    def share(self, library: str, other: str) -> float:
        """The part of ``library``'s clusters that ``other`` holds too (0 .. 1)."""
        mine = next(lib.clusters for lib in self.libraries if lib.id == library)
        return self.shared.get((library, other), 0) / mine if mine else 0.0

    def as_dict(self) -> dict[str, Any]:
        ids = [lib.id for lib in self.libraries]
        # The overlap only among the libraries it was counted for (all, or the largest).
        compared = ids if self.compared is None else [i for i in self.compared if i in ids]
        return {
            "index": self.path, "records": self.records, "clusters": self.clusters,
            "library_count": self.library_count,
            "holders": {str(n): count for n, count in sorted(self.holders.items())},
            "libraries": [{"id": lib.id, "records": lib.records, "clusters": lib.clusters,
                           "unique": lib.unique} for lib in self.libraries],
            "compared": list(self.compared) if self.compared is not None else None,
            "overlap": {a: {b: {"shared": self.shared.get((a, b), 0),
                                "share": round(self.share(a, b), 4)}
                            for b in compared if b != a} for a in compared},
        }


def stats(path: str | os.PathLike[str], *, top: int | None = None,
          compare: int | None = None) -> IndexStats:
    """The numbers of one index: every library, or the ``top`` largest (by records), and
    the overlap among the ``compare`` largest (default: those listed); IndexFileError
    when it cannot be read."""
    db = connect(path)
    try:
        records = db.execute("SELECT count(*) FROM records").fetchone()[0]
        clusters = db.execute("SELECT count(*) FROM clusters").fetchone()[0]
        db.execute("CREATE TEMP TABLE held AS SELECT DISTINCT cluster, library FROM records")
        db.execute("CREATE INDEX temp.held_cluster ON held (cluster)")
        holders = dict(db.execute(
            "SELECT n, count(*) FROM (SELECT count(*) AS n FROM held GROUP BY cluster) "
            "GROUP BY n"))
        unique = dict(db.execute(
            "SELECT library, count(*) FROM held WHERE cluster IN "
            "(SELECT cluster FROM held GROUP BY cluster HAVING count(*) = 1) GROUP BY library"))
        every = db.execute("SELECT library, count(*), count(DISTINCT cluster) FROM records "
                           "GROUP BY library ORDER BY library").fetchall()
        total = len(every)
        largest = sorted(every, key=lambda row: (-row[1], row[0]))
        if top is not None and len(every) > top:
            every = largest[:top]
        compare = top if compare is None else compare
        compared = None
        if compare is not None and total > compare:
            compared = tuple(row[0] for row in largest[:compare])
            marks = ", ".join("?" * len(compared))
            db.execute(f"DELETE FROM held WHERE library NOT IN ({marks})", compared)
        libraries = tuple(LibraryStats(library, count, distinct, unique.get(library, 0))
                          for library, count, distinct in every)
        shared = {(a, b): n for a, b, n in db.execute(
            "SELECT a.library, b.library, count(*) FROM held a JOIN held b "
            "ON a.cluster = b.cluster AND a.library <> b.library GROUP BY 1, 2")}
    finally:
        db.close()
    return IndexStats(str(Path(path)), records, clusters, libraries, shared, holders,
                      total, compared)


def render(result: IndexStats) -> str:
    """The plain-text report: totals, one line per library, the overlap table."""
    lines = [f"{result.path}: {result.records} records in {result.clusters} clusters "
             f"from {result.library_count} libraries"]
    if result.holders:
        lines.append("clusters held by " + ", ".join(
            f"{n} {'library' if n == 1 else 'libraries'}: {count}"
            for n, count in sorted(result.holders.items())))
    if not result.libraries:
        return "\n".join(lines) + "\n"
    ids = [lib.id for lib in result.libraries]
    width = max(7, *(len(i) for i in ids))
    lines += ["", f"{'library':<{width}}  records  clusters  only here"]
    lines += [f"{lib.id:<{width}}  {lib.records:>7}  {lib.clusters:>8}  {lib.unique:>9}"
              for lib in result.libraries]
    if result.library_count > len(ids):
        lines.append(f"... the {len(ids)} largest of {result.library_count} libraries "
                     "(--all lists every one, --json gives every one and all overlaps)")
    if result.compared is not None:
        ids = [i for i in ids if i in result.compared]
    if len(ids) > 1:
        column = max(4, *(len(i) for i in ids))
        lines += ["", "overlap: % of the row library's clusters that the column library "
                      "also holds" + (f" (the {len(ids)} largest libraries)"
                                      if result.library_count > len(ids) else "")]
        lines.append(" " * width + "".join(f"  {i:>{column}}" for i in ids))
        for a in ids:
            cells = ("-" if a == b else f"{round(100 * result.share(a, b))}" for b in ids)
            lines.append(f"{a:<{width}}" + "".join(f"  {c:>{column}}" for c in cells))
    return "\n".join(lines) + "\n"
