"""The union index file: its SQLite schema, how text is folded into it, and opening it.

``broker.union_index.build`` writes the file; ``connectors.local`` searches it as if it
were a member library. The format lives here, below both, so the reader and the writer
cannot drift apart.

FTS5's unicode61 tokenizer does not segment Chinese, so ``text_form`` folds text as the
local catalogues do (``connectors.local.keys.phrase_form``: NFKC, simplified, casefolded,
punctuation removed) and writes every CJK character as its own token: a CJK word is then
an FTS5 phrase of adjacent characters. A field's several values (two authors) are
separated by the token ``_``, which no folded query contains, so a phrase never runs from
one value into the next.
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

SCHEMA_VERSION = 1
COLUMNS = ("title", "author", "subject", "publisher", "extra")
SEPARATOR = "_"
_CJK = "\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff\uac00-\ud7af\U00020000-\U0003134f"
_CJK_CHAR = re.compile(f"[{_CJK}]")

SCHEMA = f"""
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE sources (library TEXT NOT NULL, path TEXT NOT NULL, records INTEGER NOT NULL,
                      skipped INTEGER NOT NULL);
CREATE TABLE clusters (id INTEGER PRIMARY KEY, name TEXT NOT NULL, best INTEGER);
CREATE TABLE records (id INTEGER PRIMARY KEY, library TEXT NOT NULL, record_id TEXT,
                      cluster INTEGER NOT NULL, year INTEGER, rich INTEGER NOT NULL,
                      warnings INTEGER NOT NULL, data TEXT NOT NULL, marc BLOB,
                      flavour TEXT);
CREATE INDEX records_cluster ON records (cluster, library);
CREATE INDEX records_year ON records (year);
CREATE UNIQUE INDEX records_identity ON records (library, record_id);
-- isbn, issn and callnumber keys of each record
CREATE TABLE identifiers (kind TEXT NOT NULL, value TEXT NOT NULL, record INTEGER NOT NULL,
                          PRIMARY KEY (kind, value, record)) WITHOUT ROWID;
-- the matching state of broker.search.match.Matcher while building: each cluster under its
-- candidate keys (ISBN, ISSN, title), and the evidence of each of its records
CREATE TABLE match_keys (key TEXT NOT NULL, cluster INTEGER NOT NULL,
                         PRIMARY KEY (key, cluster)) WITHOUT ROWID;
CREATE TABLE match_evidence (cluster INTEGER NOT NULL, record_id TEXT, evidence TEXT NOT NULL);
CREATE INDEX match_evidence_cluster ON match_evidence (cluster);
CREATE VIRTUAL TABLE record_text USING fts5({", ".join(COLUMNS)},
    tokenize="unicode61 remove_diacritics 0 tokenchars '{SEPARATOR}'");
"""


def text_form(value: str) -> str:
    """A value as the index holds it (and a query term as it is looked for): folded as
    ``broker.catalogues.marc_file.phrase_form``, every CJK character a token of its own."""
    form = phrase_form(value)
    if _CJK_CHAR.search(form):
        form = " ".join(_CJK_CHAR.sub(r" \g<0> ", form).split())
    return form


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
