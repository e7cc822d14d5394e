"""Publishing a union index into PostgreSQL, where readers on several machines share it.

The SQLite file ``balis index build`` writes stays the build's working state (the matcher's
keys and evidence live there); ``publish`` copies what searches need into the PostgreSQL
schema the URL names (``connectors.local.pg_schema``): clusters, records with their text as
tsvectors under GIN indexes, identifiers.

The first publish creates the tables, loads them with COPY and then builds the indexes, in
one transaction. A later one rewrites only the clusters that changed: each cluster's
digest (of its name, best record and every record's columns) is kept beside it, clusters
whose digest differs or that are new are deleted and copied again, clusters that are gone
are deleted, all in one transaction, so a reader sees the old index or the new one, never
half. It works whether the file was updated in place (``balis index update``) or rebuilt;
an update keeps cluster ids, so only what it touched is rewritten. Two publishers of one
schema take turns (an advisory lock).

The text indexed is computed here from each record's normalized JSON with the functions the
SQLite build uses (``connectors.local.keys.text_values`` and ``phrase_form``), not
read from the SQLite engine's FTS table, whose layout is its own business.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from broker.kernel.errors import IndexFileError
from connectors.local.index_file import connect as connect_sqlite
from connectors.local.keys import text_values
from connectors.local.pg_schema import (
    ANY,
    PG_SCHEMA_VERSION,
    TEXT_COLUMNS,
    VALUE_COLUMNS,
    PgTarget,
    bigram_form,
    indexes_ddl,
    parse_url,
    pg_form,
    tables_ddl,
)
from marc import Record

logger = logging.getLogger(__name__)

__all__ = ["PublishError", "PublishReport", "publish"]

_RECORD_COLUMNS = ("id", "library", "record_id", "cluster", "year", "data", "marc", "flavour",
                   *TEXT_COLUMNS, ANY, *(f"{c}_values" for c in VALUE_COLUMNS))
_CHUNK = 500  # record ids per identifiers lookup


class PublishError(IndexFileError):
    """The index could not be published (the server, the schema); one sentence."""


@dataclass(frozen=True, slots=True)
class PublishReport:
    target: str  # the URL, without its password
    schema: str
    created: bool  # the first publish: tables created and loaded whole
    clusters: int  # in the published index now
    records: int
    written: int  # clusters copied (new or changed)
    removed: int  # clusters deleted (gone from the file; not counting rewritten ones)
    seconds: float


@dataclass(frozen=True, slots=True)
class _Cluster:
    id: int
    name: str
    best: int | None
    digest: bytes
    records: tuple[tuple, ...]  # (id, library, record_id, cluster, year, data, marc, flavour)


def publish(sqlite_path: str | os.PathLike[str], url: str, *,
            report: Callable[[str], None] = logger.info) -> PublishReport:
    """Copy the union index at ``sqlite_path`` into PostgreSQL at ``url`` (see the module's
    docstring); PublishError (one sentence, no password) when the server cannot be reached
    or the schema cannot be written, IndexFileError when the file is not an index."""
    import psycopg

    target = parse_url(url)
    began = time.monotonic()
    source = connect_sqlite(Path(sqlite_path))
    try:
        try:
            pg = psycopg.connect(target.conninfo, connect_timeout=10, prepare_threshold=None)
        except psycopg.Error as exc:
            raise PublishError(f"cannot reach {target.shown}: {_reason(exc)}") from None
        try:
            with pg:
                created, written, removed = _publish(source, pg, target, report)
                counts = pg.execute("SELECT (SELECT count(*) FROM clusters), "
                                    "(SELECT count(*) FROM records)").fetchone()
                pg.commit()
                if created or written or removed:
                    # Fresh statistics, or the planner guesses every text query's size.
                    pg.autocommit = True
                    pg.execute("ANALYZE clusters, records, identifiers")
        except psycopg.Error as exc:
            raise PublishError(f"publishing to {target.shown} failed: {_reason(exc)}"
                               ) from None
    finally:
        source.close()
    assert counts is not None
    return PublishReport(target.shown, target.schema, created, counts[0], counts[1], written,
                         removed, time.monotonic() - began)


def _publish(source: sqlite3.Connection, pg, target: PgTarget,
             report: Callable[[str], None]) -> tuple[bool, int, int]:
    from psycopg import errors, sql

    schema = sql.Identifier(target.schema)
    pg.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"balis index {target.schema}",))
    version = None
    try:
        with pg.transaction():  # a savepoint: a missing schema is not a failed publish
            row = pg.execute(sql.SQL("SELECT value FROM {}.meta WHERE key = 'schema'")
                             .format(schema)).fetchone()
            version = row[0] if row else None
    except (errors.UndefinedTable, errors.InvalidSchemaName):
        pass
    if version is not None and version != str(PG_SCHEMA_VERSION):
        report(f"{target.shown}: schema {target.schema} holds an index of another version "
               f"({version}); replacing it")
        pg.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(schema))
        version = None
    if version is None:
        pg.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(schema))
        pg.execute(sql.SQL("SET search_path TO {}").format(schema))
        for statement in tables_ddl():
            pg.execute(statement)
        written = _copy(source, pg, _clusters(source))
        pg.execute("SET LOCAL maintenance_work_mem = '256MB'")
        for statement in indexes_ddl():
            pg.execute(statement)
        _meta(pg, source, created=True)
        return True, written, 0
    pg.execute(sql.SQL("SET search_path TO {}").format(schema))
    published = dict(pg.execute("SELECT id, digest FROM clusters").fetchall())
    changed: set[int] = set()
    present: set[int] = set()
    for cluster in _clusters(source, with_records=False):
        present.add(cluster.id)
        old = published.get(cluster.id)
        if old is None or bytes(old) != cluster.digest:
            changed.add(cluster.id)
    gone = [c for c in published if c not in present]
    stale = [c for c in published if c in changed] + gone
    if stale:
        pg.execute("CREATE TEMPORARY TABLE stale (id bigint PRIMARY KEY) ON COMMIT DROP")
        with pg.cursor().copy("COPY stale (id) FROM STDIN") as copy:
            for cluster_id in stale:
                copy.write_row((cluster_id,))
        pg.execute("DELETE FROM identifiers i USING records r, stale s "
                   "WHERE i.record = r.id AND r.cluster = s.id")
        pg.execute("DELETE FROM records r USING stale s WHERE r.cluster = s.id")
        pg.execute("DELETE FROM clusters c USING stale s WHERE c.id = s.id")
    written = _copy(source, pg, (c for c in _clusters(source) if c.id in changed)) \
        if changed else 0
    _meta(pg, source, created=False)
    return False, written, len(gone)


def _clusters(source: sqlite3.Connection, *, with_records: bool = True) -> Iterator[_Cluster]:
    """Every cluster of the file with its digest (and its records), in id order."""
    rows = source.execute(
        "SELECT c.id, c.name, c.best, r.id, r.library, r.record_id, r.cluster, r.year, "
        "r.data, r.marc, r.flavour FROM clusters c JOIN records r ON r.cluster = c.id "
        "ORDER BY c.id, r.id")
    current: list[tuple] = []
    head: tuple | None = None
    for row in rows:
        if head is not None and row[0] != head[0]:
            yield _cluster(head, current, with_records)
            current = []
        head = row
        current.append(row[3:])
    if head is not None:
        yield _cluster(head, current, with_records)


def _cluster(head: tuple, records: list[tuple], with_records: bool) -> _Cluster:
    digest = hashlib.blake2b(digest_size=16)
    digest.update(repr((head[1], head[2])).encode())
    for record in records:
        digest.update(repr(record).encode())
    return _Cluster(head[0], head[1], head[2], digest.digest(),
                    tuple(records) if with_records else ())


def _copy(source: sqlite3.Connection, pg, clusters: Iterator[_Cluster]) -> int:
    """COPY the clusters, their records and the records' identifiers; how many clusters.
    One connection runs one COPY at a time: records stream, clusters wait in a list."""
    heads: list[tuple] = []
    record_ids: list[int] = []
    with pg.cursor().copy(f"COPY records ({', '.join(_RECORD_COLUMNS)}) FROM STDIN") as copy:
        for cluster in clusters:
            heads.append((cluster.id, cluster.name, cluster.best, cluster.digest))
            for record in cluster.records:
                copy.write_row((*record, *_text_columns(record[5])))
                record_ids.append(record[0])
    with pg.cursor().copy("COPY clusters (id, name, best, digest) FROM STDIN") as copy:
        for head in heads:
            copy.write_row(head)
    with pg.cursor().copy("COPY identifiers (kind, value, record) FROM STDIN") as copy:
        for i in range(0, len(record_ids), _CHUNK):
            chunk = record_ids[i:i + _CHUNK]
            marks = ", ".join("?" * len(chunk))
            for row in source.execute("SELECT kind, value, record FROM identifiers "
                                      f"WHERE record IN ({marks})", chunk):
                copy.write_row(row)
    return len(heads)


def _text_columns(data: str) -> tuple:
    """A record's tsvectors (title, author, subject, publisher, any) and its fields'
    folded values (title, author, subject, publisher, extra), as the SQLite build indexes
    them (broker.union_index.build: ``any`` is the named fields, then the rest)."""
    values = text_values(Record.from_dict(json.loads(data)))
    named = sum(len(values[c]) for c in TEXT_COLUMNS)
    fields = {c: values[c] for c in TEXT_COLUMNS}
    fields["extra"] = values["any"][named:]
    forms = {c: [f for f in map(pg_form, v) if f] for c, v in fields.items()}
    every = [f for c in VALUE_COLUMNS for f in forms[c]]
    return (*(bigram_form(forms[c]) for c in TEXT_COLUMNS), bigram_form(every),
            *(_array(forms[c]) for c in VALUE_COLUMNS))


def _array(values: list[str]) -> str:
    """A text[] in PostgreSQL's input syntax (cheaper than the driver's adaptation)."""
    return "{" + ",".join('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
                          for v in values) + "}"


def _meta(pg, source: sqlite3.Connection, *, created: bool) -> None:
    own = dict(source.execute("SELECT key, value FROM meta"))
    values = {"schema": str(PG_SCHEMA_VERSION), "kind": "balis union index",
              "published": datetime.now(UTC).isoformat(timespec="seconds"),
              # The file's own marker, when it has one (an update's generation).
              "source_generation": own.get("generation", "")}
    if created:
        values["created"] = values["published"]
    for key, value in values.items():
        pg.execute("INSERT INTO meta (key, value) VALUES (%s, %s) ON CONFLICT (key) "
                   "DO UPDATE SET value = EXCLUDED.value", (key, value))


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__

