"""A union index (``balis index build``) searched as if it were a member library.

A library with ``protocol: local`` and ``path: union.sqlite`` answers from the harvested
records of ``broker.union_index.build`` at once, without a network. Each hit is a cluster (one
edition, as the broker's merge forms them); the record it returns is the cluster's fullest
description carrying the holdings of every library in the cluster, so the broker (which
treats a local library as an aggregator, see ``broker.search.merge``) shows every holder.

The query tree is translated by ``connectors.local.query`` into FTS5 and SQL. A search
takes only the clusters of the page it is asked for, with a LIMIT, in an order that is the
same for every page: a text query of at most ``RANKED`` clusters by FTS5's bm25 rank (a
cluster at its best record's rank, then that record's id); a larger one, whose ranking
would cost the time of reading every match, newest records first (record id descending,
an order FTS5 reads in and can stop), as is text and a condition (``中国 and
year>=2015``: the text matches are read and the condition checked on each); other queries
(years, identifiers, other booleans) by cluster id. The broker ranks what it fetches in
any case. The hit count is exact up to ``COUNT_CAP`` clusters; a larger answer is
counted as ``COUNT_CAP`` (a minimum, as the union result set's ``minimum`` precision:
the reader sees "2000" and narrows the query), so neither a page nor its count costs more
for a query that matches half the index.

SQLite work runs in a thread (``asyncio.to_thread``) on a small pool of read-only
connections; a rebuilt or updated index (a new file renamed over the old) is noticed at
the next search and the pool reopened.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import sqlite3
import threading
from pathlib import Path

from broker.kernel.config import Library
from broker.kernel.cql import Node
from broker.kernel.errors import ConnectorError, IndexFileError, Unreachable, UnsupportedQuery
from connectors.base import Connector, SearchPage
from connectors.catalogue import SCAN_INDEXES, ScanIndex, ScanPage
from connectors.local.headings import HeadingList, union_headings
from connectors.local.index_file import raw_marc
from connectors.local.query import Fts, Sql, matching_records, open_index, translate
from marc import Holding, Record

logger = logging.getLogger(__name__)

__all__ = ["COUNT_CAP", "LocalIndexConnector", "matching_records", "open_index",
           "translate"]

POOL = 4  # idle connections kept (the broker runs at most 4 searches at once per member)
COUNT_CAP = 2_000  # clusters counted exactly; a larger answer reports this many
RANKED = 1_000  # text answers of at most this many clusters are ordered by relevance
_FIRST_ROWS = 64  # records ranked for a first page; grown when clusters repeat


class LocalIndexConnector(Connector):
    """Searches a union index file; hits are clusters, best matches first."""

    def __init__(self, library: Library) -> None:
        super().__init__(library)
        self.path = Path(self.config.path or "")
        self._idle: list[sqlite3.Connection] = []
        self._identity: tuple[int, int, int] | None = None
        self._lock = threading.Lock()
        self._closed = False
        self._headings: dict[ScanIndex, HeadingList] = {}  # of the file self._identity names

    async def search(self, query: Node, *, start: int = 1, count: int | None = None
                     ) -> SearchPage:
        condition = translate(query)  # bad queries fail here, before any thread
        count = self.config.max_records if count is None else count
        return await asyncio.to_thread(self._search, condition, max(1, start), max(0, count))

    async def scan(self, index: ScanIndex, term: str, *, count: int, position: int
                   ) -> ScanPage:
        """The index's headings around ``term`` (connectors.catalogue.ScannableCatalogue):
        the first scan of an index reads its headings from the file, later ones bisect."""
        if index not in SCAN_INDEXES:
            raise UnsupportedQuery(f"the union index cannot be browsed by {index}")
        headings = await asyncio.to_thread(self._heading_list, index)
        return headings.page(term, count=count, position=position)

    async def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for db in idle:
            db.close()

    # --- in the worker thread -----------------------------------------------------------

    def _heading_list(self, index: ScanIndex) -> HeadingList:
        db, identity = self._take()  # a rebuilt file has dropped the old headings
        with self._lock:
            found = self._headings.get(index)
        if found is None:
            try:
                found = union_headings(db, index)
            except sqlite3.Error as exc:
                db.close()
                raise ConnectorError(f"the union index {self.path} cannot be browsed: {exc}"
                                     ) from None
            with self._lock:
                if identity == self._identity:
                    self._headings[index] = found
        self._give(db, identity)
        return found

    def _search(self, condition: Fts | Sql, start: int, count: int) -> SearchPage:
        db, identity = self._take()
        try:
            hits = _count(db, condition)
            # No record past the count reported (a capped count is where the answer
            # stops for a client, as SRU's numberOfRecords).
            count = min(count, hits - start + 1)
            page = _page(db, condition, start, count, ranked=hits <= RANKED) \
                if count > 0 else []
            records = self._records(db, page)
        except sqlite3.Error as exc:
            db.close()
            raise ConnectorError(f"the union index {self.path} cannot be searched: {exc}"
                                 ) from None
        self._give(db, identity)
        return SearchPage(hits=hits, start=start, records=tuple(records))

    def _take(self) -> tuple[sqlite3.Connection, tuple[int, int, int]]:
        try:
            stat = self.path.stat()
        except OSError:
            raise Unreachable(f"the union index {self.path} does not exist (build it with "
                              "'balis index build')") from None
        identity = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        with self._lock:
            if self._closed:
                raise ConnectorError("the connector is closed")
            if identity != self._identity:  # rebuilt: connections to the old file go
                stale, self._idle, self._identity = self._idle, [], identity
                self._headings = {}
            else:
                stale = []
            db = self._idle.pop() if self._idle else None
        for old in stale:
            old.close()
        if db is None:
            try:
                db = open_index(self.path)
            except IndexFileError as exc:
                raise Unreachable(str(exc)) from None
        return db, identity

    def _give(self, db: sqlite3.Connection, identity: tuple[int, int, int]) -> None:
        with self._lock:
            if identity == self._identity and not self._closed and len(self._idle) < POOL:
                self._idle.append(db)
                return
        db.close()

    @staticmethod
    def _records(db: sqlite3.Connection, clusters: list[int]) -> list[Record]:
        if not clusters:
            return []
        marks = ", ".join("?" * len(clusters))
        rows = db.execute(
            "SELECT r.cluster, r.library, r.data, r.id = c.best, "
            "CASE WHEN r.id = c.best THEN r.marc END, r.flavour, c.name "
            f"FROM records r JOIN clusters c ON c.id = r.cluster WHERE r.cluster IN ({marks}) "
            "ORDER BY r.cluster, r.position, r.id", clusters)
        members: dict[int, list] = {}
        for row in rows:
            members.setdefault(row[0], []).append(row)
        return [_cluster_record(members[c]) for c in clusters if c in members]


def _count(db: sqlite3.Connection, condition: Fts | Sql) -> int:
    """Distinct clusters matching, counted up to ``COUNT_CAP`` (the scan stops there)."""
    if isinstance(condition, Fts):
        sql = ("SELECT DISTINCT r.cluster FROM record_text t JOIN records r ON r.id = t.rowid "
               "WHERE record_text MATCH ?")
        params: tuple = (condition.expr,)
    elif condition.driver is not None:
        sql = ("SELECT DISTINCT r.cluster FROM record_text t JOIN records r ON r.id = t.rowid "
               f"WHERE record_text MATCH ? AND {condition.sql}")
        params = (condition.driver, *condition.params)
    else:
        sql = f"SELECT DISTINCT r.cluster FROM records r WHERE {condition.sql}"
        params = condition.params
    found = db.execute(f"SELECT count(*) FROM ({sql} LIMIT ?)",
                       (*params, COUNT_CAP)).fetchone()[0]
    return int(found)


def _page(db: sqlite3.Connection, condition: Fts | Sql, start: int, count: int, *,
          ranked: bool) -> list[int]:
    """The clusters at ``start`` .. ``start + count - 1`` of the answer's order."""
    if isinstance(condition, Sql) and condition.driver is None:
        return [c for (c,) in db.execute(
            f"SELECT DISTINCT r.cluster FROM records r WHERE {condition.sql} "
            "ORDER BY r.cluster LIMIT ? OFFSET ?", (*condition.params, count, start - 1))]
    # Text: the best records first; a cluster takes its best record's place. Only as
    # many records are read as the page needs (more when clusters repeat in them).
    if isinstance(condition, Sql):  # text and a condition: newest matches first
        sql = ("SELECT r.cluster FROM record_text t JOIN records r ON r.id = t.rowid "
               f"WHERE record_text MATCH ? AND {condition.sql} ORDER BY t.rowid DESC LIMIT ?")
        params: tuple = (condition.driver, *condition.params)
    elif ranked:
        sql = ("SELECT r.cluster FROM (SELECT rowid AS id, rank AS score FROM record_text "
               "WHERE record_text MATCH ? ORDER BY rank, rowid LIMIT ?) t "
               "JOIN records r ON r.id = t.id ORDER BY t.score, t.id")
        params = (condition.expr,)
    else:
        sql = ("SELECT r.cluster FROM record_text t JOIN records r ON r.id = t.rowid "
               "WHERE record_text MATCH ? ORDER BY t.rowid DESC LIMIT ?")
        params = (condition.expr,)
    need = start - 1 + count
    limit = max(_FIRST_ROWS, 2 * need)
    while True:
        rows = db.execute(sql, (*params, limit)).fetchall()
        clusters = list(dict.fromkeys(c for (c,) in rows))
        if len(clusters) >= need or len(rows) < limit:
            return clusters[start - 1:need]
        limit *= 4


def _cluster_record(rows: list) -> Record:
    """The cluster's fullest record, carrying every member record's holdings and ISBNs."""
    # Only the best record becomes a Record; of the others (a cluster may hold dozens)
    # only holdings, ISBNs and call numbers are read.
    members = [(library, json.loads(data)) for _, library, data, *_ in rows]
    best_at = next((i for i, row in enumerate(rows) if row[3]), 0)
    best = Record.from_dict(members[best_at][1])
    holdings: list[Holding] = []
    for library, data in members:
        held = [Holding.from_dict(h) for h in data.get("holdings") or ()]
        # As broker.search.merge credits them: a holding belongs to the library that sent it.
        holdings.extend(h if h.library == library else dataclasses.replace(h, library=library)
                        for h in held or (Holding(library=library),))
    isbns = {isbn for _, data in members for isbn in data.get("isbns") or ()}
    best_row = rows[best_at]
    return dataclasses.replace(
        best, id=best_row[6],
        isbns=tuple(dict.fromkeys([*best.isbns, *sorted(isbns)])),
        call_numbers=tuple(dict.fromkeys(c for _, data in members
                                         for c in data.get("call_numbers") or ())),
        holdings=tuple(holdings),
        source=raw_marc(best_row[4], best_row[5]))
