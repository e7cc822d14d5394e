"""The union index's query language: a CQL tree as FTS5 MATCH expressions and SQL.

Text clauses become an FTS5 MATCH expression (a subtree of text clauses only becomes one
expression), ISBN, ISSN and call number keys a lookup in the ``identifiers`` table, years a
comparison; booleans over mixed clauses become SQL ``AND``, ``OR`` and ``AND NOT`` of
record conditions. The semantics are ``broker.catalogues.marc_file.LocalCatalogue``'s
(which the tests check against Zebra): ``=`` and ``adj`` are phrases, ``all``/``any`` each
word, ``==`` the whole value, right truncation on the last Latin word; a CJK term is found
as adjacent characters anywhere in a value (a phrase of bigrams, ``index_file.query_form``).
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from broker.kernel.cql import INDEXES, TEXT_RELATIONS, YEAR_RELATIONS, Boolean, Clause, Node
from broker.kernel.errors import UnsupportedQuery
from connectors.local.index_file import (
    COLUMNS,
    SEPARATOR,
    column_values,
    connect,
    query_form,
    text_form,
)
from connectors.local.keys import call_key
from marc.normalization.text import isbn13

_ALL_COLUMNS = f" || ' {SEPARATOR} ' || ".join(COLUMNS)
_NOTHING = "0"
_CJK_END = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff\uac00-\ud7af"
                      r"\U00020000-\U0003134f]$")


@dataclass(frozen=True, slots=True)
class Fts:
    """An FTS5 MATCH expression over ``record_text``."""

    expr: str


@dataclass(frozen=True, slots=True)
class Sql:
    """A condition on ``records r``, with its parameters; ``driver``, when set, is an FTS5
    expression the records must also match (``中国 and year>=2015``): the search reads
    the text matches and checks the condition on each, rather than every record."""

    sql: str
    params: tuple = ()
    driver: str | None = None


def translate(node: Node) -> Fts | Sql:
    """The query tree as FTS5 and SQL; UnsupportedQuery for what the index cannot answer."""
    if isinstance(node, Boolean):
        left, right = translate(node.left), translate(node.right)
        if node.op not in ("and", "or", "not"):
            raise UnsupportedQuery(f"the boolean {node.op!r} is not supported")
        if isinstance(left, Fts) and isinstance(right, Fts):
            return Fts(f"({left.expr}) {node.op.upper()} ({right.expr})")
        if node.op in ("and", "not") and isinstance(left, Fts) and isinstance(right, Sql):
            rest = as_sql(right)
            negate = "NOT " if node.op == "not" else ""
            return Sql(f"{negate}({rest.sql})", rest.params, driver=left.expr)
        if node.op == "and" and isinstance(right, Fts) and isinstance(left, Sql):
            rest = as_sql(left)
            return Sql(rest.sql, rest.params, driver=right.expr)
        a, b = as_sql(left), as_sql(right)
        joiner = {"and": "AND", "or": "OR", "not": "AND NOT"}[node.op]
        return Sql(f"({a.sql} {joiner} {b.sql})", a.params + b.params)
    if not isinstance(node, Clause):
        raise UnsupportedQuery(f"not a query: {node!r}")
    return _clause(node)


def as_sql(condition: Fts | Sql) -> Sql:
    """The condition as one SQL condition on ``records r`` (a driver folded in)."""
    if isinstance(condition, Sql):
        if condition.driver is None:
            return condition
        return Sql("(r.id IN (SELECT rowid FROM record_text WHERE record_text MATCH ?) AND "
                   f"{condition.sql})", (condition.driver, *condition.params))
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
    form, prefix = query_form(term)
    if not form:
        return None
    # A CJK term is found anywhere in a value already (a lone last character is a prefix
    # of the bigrams it starts); truncation extends a Latin word.
    ends_cjk = _CJK_END.search(form) is not None
    star = " *" if prefix or (truncated and not ends_cjk) else ""
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


