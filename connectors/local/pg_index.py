"""A union index published into PostgreSQL (``balis index publish``), searched as a member.

A library with ``protocol: local`` and ``url: postgresql://host/db[?schema=NAME]`` answers
like one with ``path:`` (``connectors.local.connector``): each hit is a cluster, returned as
its fullest record carrying the holdings of every library in the cluster, built by the same
function, so the broker cannot tell the engines apart. Readers' processes on any number of
machines share the one index.

The query tree becomes one SQL condition on ``records r`` with the SQLite engine's
semantics (``connectors.local.connector``): text clauses a tsquery on the field's tsvector
(``pg_schema``: phrases with ``<->``, a CJK word its bigrams, right truncation ``:*``),
``==`` the phrase and then one folded value equal to the term, ISBN, ISSN and call number
keys a lookup in ``identifiers``, years a comparison; booleans SQL ``AND``, ``OR``,
``AND NOT``.

Counts are the SQLite engine's: exact up to ``COUNT_CAP`` clusters, and a larger answer
reports ``COUNT_CAP`` (a minimum), so the time of a search no longer follows its hit count.
An answer of fewer than ``RANK_LIMIT`` clusters is ranked (``ts_rank`` of its text
clauses, then build order); a larger one comes in build order (cluster id), which a walk of
the ``records_cluster`` index gives without reading every hit. Each search runs in one
read-only REPEATABLE READ transaction, so its count, page and records come from one state
of the index while a publish commits.

The database work runs in a thread (``asyncio.to_thread``) on a small pool of connections,
closed at ``close()``.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from dataclasses import dataclass

import psycopg
from psycopg import sql

from broker.kernel.config import Library
from broker.kernel.cql import INDEXES, TEXT_RELATIONS, YEAR_RELATIONS, Boolean, Clause, Node
from broker.kernel.errors import ConnectorError, Unreachable, UnsupportedQuery
from connectors.base import Connector, SearchPage
from connectors.local.connector import COUNT_CAP, _cluster_record
from connectors.local.keys import call_key
from connectors.local.pg_schema import (
    ANY,
    PG_SCHEMA_VERSION,
    VALUE_COLUMNS,
    PgTarget,
    parse_url,
    pg_form,
    phrase_query,
)
from marc import Record
from marc.normalization.text import isbn13

logger = logging.getLogger(__name__)

POOL = 4  # idle connections kept (the broker runs at most 4 searches at once per member)
# Ranking reads every hit's tsvector: done when there are few, else build order.
RANK_LIMIT = 500
_SAMPLE = 3  # records read per cluster counted, before counting distinct clusters of all
_ALL_VALUES = " || ".join(f"r.{c}_values" for c in VALUE_COLUMNS)


@dataclass(frozen=True, slots=True)
class Where:
    """A condition on ``records r`` with its parameters, and the (column, tsquery) pairs
    of its positive text clauses, which rank an answer."""

    sql: str
    params: tuple = ()
    ranks: tuple[tuple[str, str], ...] = ()


_NOTHING = Where("FALSE")


def translate(node: Node) -> Where:
    """The query tree as SQL; UnsupportedQuery for what the index cannot answer."""
    if isinstance(node, Boolean):
        if node.op not in ("and", "or", "not"):
            raise UnsupportedQuery(f"the boolean {node.op!r} is not supported")
        a, b = translate(node.left), translate(node.right)
        joiner = {"and": "AND", "or": "OR", "not": "AND NOT"}[node.op]
        ranks = a.ranks + (b.ranks if node.op != "not" else ())
        return Where(f"({a.sql} {joiner} {b.sql})", a.params + b.params, ranks)
    if not isinstance(node, Clause):
        raise UnsupportedQuery(f"not a query: {node!r}")
    return _clause(node)


def _clause(clause: Clause) -> Where:
    index, relation = clause.index, clause.relation
    if index not in INDEXES:
        raise UnsupportedQuery(f"this library's catalogue cannot be searched by {index}")
    if index == "year":
        return _year(clause)
    if relation not in TEXT_RELATIONS:
        raise UnsupportedQuery(f"the relation {relation!r} is not supported for {index}")
    if index in ("isbn", "issn", "callnumber"):
        return _identifiers(clause)
    column = ANY if index == "any" else index
    if relation in ("all", "any"):
        words = clause.words
        queries = [phrase_query(pg_form(w), clause.truncated and i == len(words) - 1)
                   for i, w in enumerate(words)]
        each = [q for q in queries if q is not None]
        if not each or (relation == "all" and len(each) < len(queries)):
            return _NOTHING
        return _matches(column, (" & " if relation == "all" else " | ").join(
            f"({q})" for q in each))
    form = pg_form(clause.term)
    phrase = phrase_query(form, clause.truncated)
    if phrase is None:
        return _NOTHING  # nothing searchable in the term (punctuation only)
    found = _matches(column, phrase)
    if relation != "==":
        return found
    # The whole value: the phrase finds candidates, then one of the values must be it.
    values = _ALL_VALUES if index == "any" else f"r.{index}_values"
    if clause.truncated:
        whole = f"EXISTS (SELECT 1 FROM unnest({values}) v WHERE starts_with(v, %s))"
    else:
        whole = f"%s = ANY({values})"
    return Where(f"({found.sql} AND {whole})", (*found.params, form), found.ranks)


def _matches(column: str, query: str) -> Where:
    return Where(f"r.{column} @@ %s::tsquery", (query,), ((column, query),))


def _year(clause: Clause) -> Where:
    if clause.relation not in YEAR_RELATIONS:
        raise UnsupportedQuery(f"the relation {clause.relation!r} is not supported for year")
    term = clause.term.strip()
    if clause.truncated or not term.isdigit():
        raise UnsupportedQuery(f"year must be a number like 2008, not {clause.term!r}")
    return Where(f"r.year {clause.relation} %s", (int(term),))


def _identifiers(clause: Clause) -> Where:
    words = clause.term.split() if clause.relation in ("all", "any") else [clause.term]
    parts: list[Where] = []
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
            parts.append(_NOTHING)
        elif truncated:
            prefix = re.sub(r"([\\%_])", r"\\\1", keys[0]) + "%"
            parts.append(Where("r.id IN (SELECT record FROM identifiers WHERE kind = %s AND "
                               "value LIKE %s)", (clause.index, prefix)))
        else:
            parts.append(Where("r.id IN (SELECT record FROM identifiers WHERE kind = %s AND "
                               "value = ANY(%s))", (clause.index, list(dict.fromkeys(keys)))))
    joiner = " OR " if clause.relation == "any" else " AND "
    return Where("(" + joiner.join(p.sql for p in parts) + ")",
                 tuple(v for p in parts for v in p.params))


def connect(target: PgTarget, timeout: float = 10.0) -> psycopg.Connection:
    """A read-only connection whose ``search_path`` is the index's schema; Unreachable
    (one sentence, no password) when the server cannot be reached or the index is not
    there, or not of this version."""
    try:
        db = psycopg.connect(target.conninfo, connect_timeout=max(1, int(timeout)),
                             prepare_threshold=None)
    except psycopg.Error as exc:
        raise Unreachable(f"the union index database {target.shown} cannot be reached: "
                          f"{_reason(exc)}") from None
    try:
        db.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(target.schema)))
        row = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        db.commit()  # keeps the search_path for the session
    except psycopg.errors.UndefinedTable:
        db.close()
        raise Unreachable(f"no union index has been published to {target.shown} (run "
                          "'balis index publish')") from None
    except psycopg.Error as exc:
        db.close()
        raise Unreachable(f"the union index at {target.shown} cannot be read: "
                          f"{_reason(exc)}") from None
    if row is None or row[0] != str(PG_SCHEMA_VERSION):
        db.close()
        raise Unreachable(f"the union index at {target.shown} is of another version "
                          f"({row[0] if row else None}); publish it again")
    db.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    db.read_only = True
    return db


def _reason(exc: BaseException) -> str:
    """The first line of a driver error (libpq's messages name host and port, never the
    password)."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def matching_records(db: psycopg.Connection, query: Node) -> list[tuple[str, str | None]]:
    """(library, record id) of every record (not cluster) matching ``query``, in index
    order: for checking against the SQLite engine's ``matching_records``."""
    where = translate(query)
    rows = db.execute(f"SELECT r.library, r.record_id FROM records r WHERE {where.sql} "
                      "ORDER BY r.id", where.params).fetchall()
    db.rollback()
    return rows


class PgIndexConnector(Connector):
    """Searches a union index in PostgreSQL; hits are clusters."""

    def __init__(self, library: Library) -> None:
        super().__init__(library)
        self.target = parse_url(self.config.url)
        self._idle: list[psycopg.Connection] = []
        self._lock = threading.Lock()
        self._closed = False

    async def search(self, query: Node, *, start: int = 1, count: int | None = None
                     ) -> SearchPage:
        where = translate(query)  # bad queries fail here, before any thread
        count = self.config.max_records if count is None else count
        return await asyncio.to_thread(self._search, where, max(1, start), max(0, count))

    async def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for db in idle:
            db.close()

    # --- in the worker thread -----------------------------------------------------------

    def _search(self, where: Where, start: int, count: int, *, fresh: bool = False
                ) -> SearchPage:
        db, reused = self._take(fresh)
        try:
            with db.transaction():
                hits = _count(db, where)
                ranked = hits < RANK_LIMIT
                clusters = _page(db, where, start, count, ranked=ranked) if count else []
                records = _records(db, clusters)
        except psycopg.OperationalError as exc:
            db.close()
            if reused:  # an idle connection the server dropped (a restart): once more
                return self._search(where, start, count, fresh=True)
            raise Unreachable(f"the union index database {self.target.shown} failed: "
                              f"{_reason(exc)}") from None
        except psycopg.Error as exc:
            db.close()
            raise ConnectorError(f"the union index at {self.target.shown} cannot be "
                                 f"searched: {_reason(exc)}") from None
        self._give(db)
        return SearchPage(hits=hits, start=start, records=tuple(records))

    def _take(self, fresh: bool = False) -> tuple[psycopg.Connection, bool]:
        """A connection, and whether it was idle in the pool (may have been dropped)."""
        with self._lock:
            if self._closed:
                raise ConnectorError("the connector is closed")
            db = self._idle.pop() if self._idle and not fresh else None
        if db is not None and not db.closed:
            return db, True
        return connect(self.target, self.config.timeout), False

    def _give(self, db: psycopg.Connection) -> None:
        with self._lock:
            if not self._closed and len(self._idle) < POOL and not db.closed:
                self._idle.append(db)
                return
        db.close()


def _count(db: psycopg.Connection, where: Where) -> int:
    """Distinct clusters matching, counted up to COUNT_CAP. First the clusters of at most
    ``_SAMPLE`` times COUNT_CAP matching records (a LIMIT, so the scan stops there, in
    whatever order the GIN or B-tree index gives them): enough for the cap as clusters
    hold a few records; only an answer of large clusters needs the DISTINCT of every
    match."""
    row = db.execute(f"SELECT count(*), count(DISTINCT cluster) FROM (SELECT r.cluster FROM "
                     f"records r WHERE {where.sql} LIMIT {_SAMPLE * COUNT_CAP}) m",
                     where.params).fetchone()
    assert row is not None
    records, clusters = row
    if clusters >= COUNT_CAP or records < _SAMPLE * COUNT_CAP:
        return int(min(clusters, COUNT_CAP))
    row = db.execute(f"SELECT count(*) FROM (SELECT DISTINCT r.cluster FROM records r "
                     f"WHERE {where.sql} LIMIT {COUNT_CAP}) m", where.params).fetchone()
    assert row is not None
    return int(row[0])


def _page(db: psycopg.Connection, where: Where, start: int, count: int, *, ranked: bool
          ) -> list[int]:
    params: tuple = where.params
    if ranked and where.ranks:
        rank = " + ".join(f"ts_rank(r.{column}, %s::tsquery)" for column, _ in where.ranks)
        order = f"max({rank}) DESC, r.cluster"
        params += tuple(query for _, query in where.ranks)
    else:
        order = "r.cluster"
    rows = db.execute(f"SELECT r.cluster FROM records r WHERE {where.sql} GROUP BY r.cluster "
                      f"ORDER BY {order} LIMIT %s OFFSET %s", (*params, count, start - 1))
    return [cluster for (cluster,) in rows]


def _records(db: psycopg.Connection, clusters: list[int]) -> list[Record]:
    if not clusters:
        return []
    rows = db.execute(
        "SELECT r.cluster, r.library, r.data, r.id = c.best, "
        "CASE WHEN r.id = c.best THEN r.marc END, r.flavour, c.name "
        "FROM records r JOIN clusters c ON c.id = r.cluster WHERE r.cluster = ANY(%s) "
        "ORDER BY r.cluster, r.id", (clusters,))
    members: dict[int, list] = {}
    for row in rows:
        members.setdefault(row[0], []).append(row)
    return [_cluster_record(members[c]) for c in clusters if c in members]
