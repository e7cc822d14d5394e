"""Search keys of the two local catalogues (a MARC file, a union index): how text, ISBNs
and call numbers are folded so that a query term and an indexed value meet.

``broker.catalogues.marc_file.LocalCatalogue`` and the union index
(``broker.union_index.build`` writes it, ``connectors.local`` reads it) fold the same way,
so the two answer a query alike; the tests check both against Zebra.
"""

from __future__ import annotations

import functools
import re
import unicodedata

import opencc

from marc import Record

TEXT_INDEXES = ("any", "title", "author", "subject", "publisher")
CJK = "\u3400-\u9fff\uf900-\ufaff"
CJK_CHAR = re.compile(rf"[{CJK}]")
RUN = re.compile(rf"[{CJK}]+|[0-9a-z]+")
_SPACE_BY_CJK = re.compile(rf"(?<=[{CJK}]) | (?=[{CJK}])")
_CALL_SPLIT = re.compile(r"[\s/]+")
_NOT_WORD = re.compile(r"[^\w\s]+|_+")


@functools.cache
def _t2s() -> opencc.OpenCC:
    return opencc.OpenCC("t2s")


@functools.lru_cache(maxsize=65536)
def phrase_form(text: str) -> str:
    """The text a phrase is looked for in: folded as ``broker.search.match.fold`` folds a word
    (NFKC, traditional to simplified, casefolded, letters and digits only), one space
    between Latin words and none beside CJK characters (CJK text has no spaces)."""
    text = unicodedata.normalize("NFKC", text)
    if not text.isascii():
        text = _t2s().convert(text)
    text = " ".join(_NOT_WORD.sub("", text.casefold()).split())
    return _SPACE_BY_CJK.sub("", text)


@functools.lru_cache(maxsize=65536)
def tokens_of(form: str) -> tuple[str, ...]:
    return tuple(form_tokens(form))


def form_tokens(form: str) -> list[str]:
    """The index keys of a phrase form, as ``broker.search.rank.tokens`` makes them: Latin words;
    each CJK run's characters and bigrams."""
    out: list[str] = []
    for run in RUN.findall(form):
        if CJK_CHAR.match(run):
            out.extend(run)
            out.extend(run[i:i + 2] for i in range(len(run) - 1))
        else:
            out.append(run)
    return out


def isbn_keys(isbn: str) -> list[str]:
    """An ISBN-13 and, for the 978 prefix, its ISBN-10 form."""
    keys = [isbn]
    if isbn.startswith("978") and len(isbn) == 13:
        body = isbn[3:12]
        total = sum((10 - i) * int(c) for i, c in enumerate(body))
        check = (11 - total % 11) % 11
        keys.append(body + ("X" if check == 10 else str(check)))
    return keys


def call_key(value: str) -> str:
    return _CALL_SPLIT.sub("/", value.strip()).casefold()


def text_values(rec: Record) -> dict[str, list[str]]:
    rom = rec.romanized
    title = [rec.title or "", rec.subtitle or "", *([rom.title] if rom and rom.title else [])]
    author = [*rec.authors, rec.responsibility or "", *(rom.authors if rom else ())]
    subject = list(rec.subjects)
    publisher = [rec.publisher or "", *([rom.publisher] if rom and rom.publisher else [])]
    extra = [rec.place or "", rec.edition or "", *rec.isbns, *rec.issns, *rec.call_numbers,
             *(c.value for c in rec.classification)]
    values = {"title": title, "author": author, "subject": subject, "publisher": publisher,
              "any": [*title, *author, *subject, *publisher, *extra]}
    return {name: [v for v in vals if v] for name, vals in values.items()}
