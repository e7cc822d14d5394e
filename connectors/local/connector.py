"""A union index (``balis index build``) searched as if it were a member library.

A library with ``protocol: local`` and ``path: union.sqlite`` answers from the harvested
records of ``broker.union_index.build`` at once, without a network. Each hit is a cluster (one
edition, as the broker's merge forms them); the record it returns is the cluster's fullest
description carrying the holdings of every library in the cluster, so the broker (which
treats a local library as an aggregator, see ``broker.search.merge``) shows every holder.

The query tree is translated into one SQL query: text clauses become an FTS5 MATCH
expression (a subtree of text clauses only becomes one expression), ISBN, ISSN and call
number keys a lookup in the ``identifiers`` table, years a comparison; booleans over mixed
clauses become SQL ``AND``, ``OR`` and ``AND NOT`` of record conditions. The semantics are
``broker.catalogues.marc_file.LocalCatalogue``'s (which the tests check against Zebra):
``=`` and ``adj`` are phrases, ``all``/``any`` each word, ``==`` the whole value, right
truncation on the last Latin word; a CJK term is found as adjacent characters anywhere in
a value.

SQLite work runs in a thread (``asyncio.to_thread``) on a small pool of read-only
connections; a rebuilt index (a new file renamed over the old) is noticed at the next
search and the pool reopened.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import re
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

from broker.kernel.config import Library
from broker.kernel.cql import INDEXES, TEXT_RELATIONS, YEAR_RELATIONS, Boolean, Clause, Node
from broker.kernel.errors import ConnectorError, IndexFileError, Unreachable, UnsupportedQuery
from connectors.base import Connector, SearchPage
from connectors.catalogue import SCAN_INDEXES, ScanIndex, ScanPage
from connectors.local.headings import HeadingList, union_headings
from connectors.local.index_file import (
    COLUMNS,
    SEPARATOR,
    column_values,
    connect,
    raw_marc,
    text_form,
)
from connectors.local.keys import call_key
from marc import Holding, Record
from marc.normalization.text import isbn13

logger = logging.getLogger(__name__)

POOL = 4  # idle connections kept (the broker runs at most 4 searches at once per member)
_ALL_COLUMNS = f" || ' {SEPARATOR} ' || ".join(COLUMNS)
_CJK_END = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff\uac00-\ud7af"
                      r"\U00020000-\U0003134f]$")
_NOTHING = "0"


@dataclass(frozen=True, slots=True)
class Fts:
    """An FTS5 MATCH expression over ``record_text``."""

    expr: str


@dataclass(frozen=True, slots=True)
class Sql:
    """A condition on ``records r``, with its parameters."""

    sql: str
    params: tuple = ()


def translate(node: Node) -> Fts | Sql:
    """The query tree as FTS5 and SQL; UnsupportedQuery for what the index cannot answer."""
    if isinstance(node, Boolean):
        left, right = translate(node.left), translate(node.right)
        if node.op not in ("and", "or", "not"):
            raise UnsupportedQuery(f"the boolean {node.op!r} is not supported")
        if isinstance(left, Fts) and isinstance(right, Fts):
            return Fts(f"({left.expr}) {node.op.upper()} ({right.expr})")
        a, b = as_sql(left), as_sql(right)
        joiner = {"and": "AND", "or": "OR", "not": "AND NOT"}[node.op]
        return Sql(f"({a.sql} {joiner} {b.sql})", a.params + b.params)
    if not isinstance(node, Clause):
        raise UnsupportedQuery(f"not a query: {node!r}")
    return _clause(node)


def as_sql(condition: Fts | Sql) -> Sql:
    if isinstance(condition, Sql):
        return condition
    return Sql("r.id IN (SELECT rowid FROM record_text WHERE record_text MATCH ?)",
               (condition.expr,))


def _clause(clause: Clause) -> Fts | Sql:
    index, relation = clause.index, clause.relation
    if index not in INDEXES:
        raise UnsupportedQuery(f"this library's catalogue cannot be searched by {index}")
    if index == "year":
        return _year(clause)
    if relation not in TEXT_RELATIONS:
        raise UnsupportedQuery(f"the relation {relation!r} is not supported for {index}")
    if index in ("isbn", "issn", "callnumber"):
        return _identifiers(clause)
    column = None if index == "any" else index
    if relation in ("all", "any"):
        words = clause.words
        phrases = [_phrase(column, w, clause.truncated and i == len(words) - 1)
                   for i, w in enumerate(words)]
        found = [p for p in phrases if p is not None]
        if not found or (relation == "all" and len(found) < len(phrases)):
            return Sql(_NOTHING)
        joiner = " AND " if relation == "all" else " OR "
        return Fts(joiner.join(f"({p})" for p in found)
                   if len(found) > 1 else found[0])
    phrase = _phrase(column, clause.term, clause.truncated)
    if phrase is None:
        return Sql(_NOTHING)  # nothing searchable in the term (punctuation only)
    if relation != "==":
        return Fts(phrase)
    # The whole value: the phrase finds candidates, then one of the values must be it.
    columns = index if column else _ALL_COLUMNS
    return Sql("r.id IN (SELECT rowid FROM record_text WHERE record_text MATCH ? "
               f"AND balis_whole({columns}, ?, ?))",
               (phrase, text_form(clause.term), int(clause.truncated)))


def _phrase(column: str | None, term: str, truncated: bool) -> str | None:
    form = text_form(term)
    if not form:
        return None
    # A CJK term is found anywhere in a value already; truncation extends a Latin word.
    star = " *" if truncated and not _CJK_END.search(form) else ""
    expr = f'"{form}"{star}'  # folded forms hold letters, digits and spaces only
    return f"{column} : {expr}" if column else expr


def _year(clause: Clause) -> Sql:
    if clause.relation not in YEAR_RELATIONS:
        raise UnsupportedQuery(f"the relation {clause.relation!r} is not supported for year")
    term = clause.term.strip()
    if clause.truncated or not term.isdigit():
        raise UnsupportedQuery(f"year must be a number like 2008, not {clause.term!r}")
    return Sql(f"r.year {clause.relation} ?", (int(term),))


def _identifiers(clause: Clause) -> Sql:
    words = clause.term.split() if clause.relation in ("all", "any") else [clause.term]
    parts = []
    for i, word in enumerate(words):
        truncated = clause.truncated and i == len(words) - 1
        if clause.index == "callnumber":
            key = call_key(word)
            keys = [key] if key else []
        else:
            key = re.sub(r"[\s\-]", "", word).upper()
            keys = [key]
            full = isbn13(key) if clause.index == "isbn" and len(key) in (10, 13) else None
            if full and not truncated:
                keys.append(full)
        if not keys:
            parts.append(Sql(_NOTHING))
        elif truncated:
            pattern = re.sub(r"([*?\[])", r"[\1]", keys[0]) + "*"
            parts.append(Sql("r.id IN (SELECT record FROM identifiers WHERE kind = ? AND "
                             "value GLOB ?)", (clause.index, pattern)))
        else:
            marks = ", ".join("?" * len(set(keys)))
            parts.append(Sql("r.id IN (SELECT record FROM identifiers WHERE kind = ? AND "
                             f"value IN ({marks}))", (clause.index, *dict.fromkeys(keys))))
    joiner = " OR " if clause.relation == "any" else " AND "
    return Sql("(" + joiner.join(p.sql for p in parts) + ")",
               tuple(v for p in parts for v in p.params))


def _whole(text: str | None, form: str, truncated: int) -> int:
    for value in column_values(text):
        if value == form or (truncated and value.startswith(form)):
            return 1
    return 0


def open_index(path: str | Path) -> sqlite3.Connection:
    """A read-only connection to a union index, with the SQL functions ``translate``'s
    conditions use; IndexFileError when it cannot be opened."""
    db = connect(path)
    db.create_function("balis_whole", 3, _whole, deterministic=True)
    return db


def matching_records(db: sqlite3.Connection, query: Node) -> list[tuple[str, str | None]]:
    """(library, record id) of every record (not cluster) matching ``query``, in index
    order: what the hits are made of, for checking against another engine."""
    condition = as_sql(translate(query))
    return db.execute(f"SELECT r.library, r.record_id FROM records r WHERE {condition.sql} "
                      "ORDER BY r.id", condition.params).fetchall()


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
            clusters = self._clusters(db, condition)
            page = clusters[start - 1:start - 1 + count] if count else []
            records = self._records(db, page)
        except sqlite3.Error as exc:
            db.close()
            raise ConnectorError(f"the union index {self.path} cannot be searched: {exc}"
                                 ) from None
        self._give(db, identity)
        return SearchPage(hits=len(clusters), start=start, records=tuple(records))

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
    def _clusters(db: sqlite3.Connection, condition: Fts | Sql) -> list[int]:
        if isinstance(condition, Fts):
            # Text only: best-ranked (bm25) clusters first, as a reader would want the
            # first page of a big answer.
            rows = db.execute(
                "SELECT r.cluster FROM record_text f JOIN records r ON r.id = f.rowid "
                "WHERE record_text MATCH ? GROUP BY r.cluster ORDER BY min(f.rank), r.cluster",
                (condition.expr,))
        else:
            rows = db.execute(f"SELECT DISTINCT r.cluster FROM records r WHERE {condition.sql} "
                              "ORDER BY r.cluster", condition.params)
        return [cluster for (cluster,) in rows]

    @staticmethod
    def _records(db: sqlite3.Connection, clusters: list[int]) -> list[Record]:
        if not clusters:
            return []
        marks = ", ".join("?" * len(clusters))
        rows = db.execute(
            "SELECT r.cluster, r.library, r.data, r.id = c.best, "
            "CASE WHEN r.id = c.best THEN r.marc END, r.flavour, c.name "
            f"FROM records r JOIN clusters c ON c.id = r.cluster WHERE r.cluster IN ({marks}) "
            "ORDER BY r.cluster, r.id", clusters)
        members: dict[int, list] = {}
        for row in rows:
            members.setdefault(row[0], []).append(row)
        return [_cluster_record(members[c]) for c in clusters if c in members]


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
