"""The union index file: its SQLite schema, how text is folded into it, and opening it.

``broker.union_index.build`` writes the file; ``connectors.local`` searches it as if it
were a member library. The format lives here, below both, so the reader and the writer
cannot drift apart.

FTS5's unicode61 tokenizer does not segment Chinese, so ``text_form`` folds text as the
local catalogues do (``connectors.local.keys.phrase_form``: NFKC, simplified, casefolded,
punctuation removed) and writes each run of CJK characters as its overlapping bigrams
followed by the run's last character alone: 中国经济 is ``中国 国经 经济 济``. A CJK word
of two characters or more is then an FTS5 phrase of its bigrams (``query_form``), found
as adjacent characters anywhere in a value, and ``title=中国经济`` does not find 中国的经济
(no ``国经``). A single character is a prefix query (``经*`` finds 经济 and a run ending
in 经); a run inside a query (between Latin words) ends with its last character, as the
value's run must. Bigrams rather than characters: a common character's posting list is
the size of the index, a bigram's a fraction of it, so phrases of common words cost less.
A field's several values (two authors) are separated by the token ``_``, which no folded
query contains, so a phrase never runs from one value into the next.

Version 2 adds the bigrams, ``generation`` markers (``meta.generation``: the build is 1,
each ``balis index update`` adds one; ``clusters.generation``: the generation that last
wrote the cluster; ``removed_clusters``: ids an update deleted, with its generation), and
``match_evidence.record`` (the record each evidence row belongs to, for updates), and
``records.position`` / ``sources.position`` (the order a build reads records in).
"""

from __future__ import annotations

import os
import re
import sqlite3
import zlib
from collections.abc import Sequence
from pathlib import Path

from broker.kernel.errors import IndexFileError
from connectors.local.keys import phrase_form
from marc.model import RawMarc

SCHEMA_VERSION = 2
COLUMNS = ("title", "author", "subject", "publisher", "extra")
SEPARATOR = "_"
_CJK = "\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff\uac00-\ud7af\U00020000-\U0003134f"
_CJK_CHAR = re.compile(f"[{_CJK}]")

SCHEMA = f"""
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
-- position: the file's place in the order records are clustered in (a build's command
-- line; an update keeps a library's place, a new library comes last)
CREATE TABLE sources (library TEXT NOT NULL, path TEXT NOT NULL, records INTEGER NOT NULL,
                      skipped INTEGER NOT NULL, position INTEGER NOT NULL DEFAULT 0);
CREATE TABLE clusters (id INTEGER PRIMARY KEY, name TEXT NOT NULL, best INTEGER,
                       generation INTEGER NOT NULL DEFAULT 1);
CREATE TABLE removed_clusters (id INTEGER NOT NULL, generation INTEGER NOT NULL);
CREATE TABLE records (id INTEGER PRIMARY KEY, library TEXT NOT NULL, record_id TEXT,
                      cluster INTEGER NOT NULL, year INTEGER, rich INTEGER NOT NULL,
                      warnings INTEGER NOT NULL, data TEXT NOT NULL, marc BLOB,
                      flavour TEXT, position INTEGER NOT NULL DEFAULT 0);
-- records.position: its source's position * 2^32 + its place in the file, the order a
-- build reads records in (an updated library's new records get new ids, not new places)
CREATE UNIQUE INDEX records_identity ON records (library, record_id);
-- isbn, issn and callnumber keys of each record
CREATE TABLE identifiers (kind TEXT NOT NULL, value TEXT NOT NULL, record INTEGER NOT NULL,
                          PRIMARY KEY (kind, value, record)) WITHOUT ROWID;
-- the matching state of broker.search.match.Matcher: each cluster under its candidate
-- keys (ISBN, ISSN, title), and the evidence of each of its records
CREATE TABLE match_keys (key TEXT NOT NULL, cluster INTEGER NOT NULL,
                         PRIMARY KEY (key, cluster)) WITHOUT ROWID;
CREATE TABLE match_evidence (cluster INTEGER NOT NULL, record_id TEXT, evidence TEXT NOT NULL,
                             record INTEGER);
CREATE INDEX match_evidence_cluster ON match_evidence (cluster);
CREATE VIRTUAL TABLE record_text USING fts5({", ".join(COLUMNS)},
    tokenize="unicode61 remove_diacritics 0 tokenchars '{SEPARATOR}'");
"""
# Created after the records are loaded (a B-tree built once, not kept in order per row).
LATE_INDEXES = """
-- year beside cluster: a year condition is checked in the index while clusters are read
-- in order (a page or a count stops after the clusters it needs)
CREATE INDEX records_cluster ON records (cluster, year, library);
CREATE INDEX records_year ON records (year);
CREATE INDEX identifiers_record ON identifiers (record);
CREATE INDEX match_keys_cluster ON match_keys (cluster);
CREATE INDEX match_evidence_record ON match_evidence (record);
"""
_RUNS = re.compile(f"[{_CJK}]+|[^{_CJK}]+")


def text_form(value: str) -> str:
    """A value as the index holds it: folded as ``keys.phrase_form``, each CJK run as its
    bigrams and its last character."""
    form = phrase_form(value)
    if not _CJK_CHAR.search(form):
        return form
    return " ".join(_run_tokens(form, whole=True))


def query_form(term: str) -> tuple[str, bool]:
    """A query term as a phrase of index tokens, and whether its last token is a prefix
    (a term ending in one CJK character: 经 finds 经济). The last CJK run of the term
    leaves out its lone last character: the value's run may go on."""
    form = phrase_form(term)
    if not _CJK_CHAR.search(form):
        return form, False
    tokens = _run_tokens(form, whole=False)
    return " ".join(tokens), bool(_CJK_CHAR.match(form[-1])) and len(
        _RUNS.findall(form.replace(" ", ""))[-1]) == 1


def _run_tokens(form: str, *, whole: bool) -> list[str]:
    out: list[str] = []
    pieces = _RUNS.findall(form)
    for at, piece in enumerate(pieces):
        if not _CJK_CHAR.match(piece):
            out.extend(piece.split())
            continue
        out.extend(piece[i:i + 2] for i in range(len(piece) - 1))
        if whole or at < len(pieces) - 1 or len(piece) == 1:
            out.append(piece[-1])
    return out


def column_text(values: Sequence[str]) -> str:
    forms = [f for f in map(text_form, values) if f]
    return f" {SEPARATOR} ".join(forms)


def column_values(text: str | None) -> list[str]:
    """The inverse of ``column_text``: each value's ``text_form``."""
    return text.split(f" {SEPARATOR} ") if text else []


def connect(path: str | os.PathLike[str]) -> sqlite3.Connection:
    """A read-only connection to an existing index; IndexFileError (one sentence) when it is
    missing, unreadable, or not an index of this version."""
    path = Path(path)
    if not path.is_file():
        what = "is not a file" if path.exists() else "does not exist"
        raise IndexFileError(f"the union index {path} {what} (build it with 'balis index "
                             "build')")
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True,
                             check_same_thread=False)
        rows = dict(db.execute("SELECT key, value FROM meta"))
    except sqlite3.Error as exc:
        raise IndexFileError(f"{path} cannot be read as a union index: {exc}") from None
    if rows.get("kind") != "balis union index":
        db.close()
        raise IndexFileError(f"{path} is not a union index")
    if rows.get("schema") != str(SCHEMA_VERSION):
        db.close()
        raise IndexFileError(f"{path} is a union index of another version "
                             f"({rows.get('schema')}); build it again")
    return db


def raw_marc(blob: bytes | None, flavour: str | None) -> RawMarc | None:
    if blob is None:
        return None
    return RawMarc(zlib.decompress(blob), flavour or "auto", "utf-8")
