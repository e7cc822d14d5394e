"""A catalogue over a MARC file: the demo consortium's members, tests and benchmarks.

``LocalCatalogue`` reads a file once (any format ``marc.read_file`` reads), normalizes each
record once, and keeps a small inverted index per index of CONTRACTS section 3. A query
tree (``broker.kernel.cql``) is evaluated against it: ``and``/``or``/``not``; ``=`` (a phrase when
the term has several words), ``adj``, ``==`` (the whole field), ``all`` and ``any``; right
truncation; year relations; ``cql.allRecords`` (every record). Text is indexed as
``broker.search.rank.tokens`` sees it: Latin words casefolded, CJK runs as characters and
bigrams. A longer CJK term or a phrase is found by its tokens first and then checked as
adjacent text in the folded field, so ``中国经济`` finds 中国经济发展 but not 中国的经济.

The protocol servers (connectors/sru/server.py, connectors/z3950/server.py) serve it
through the ``Catalogue`` interface of ``connectors.catalogue``.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import operator
import os
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import pymarc

from broker.kernel.cql import INDEXES, TEXT_RELATIONS, YEAR_RELATIONS, Boolean, Clause, Node
from broker.kernel.errors import UnsupportedQuery
from connectors.catalogue import SCAN_INDEXES, ScanIndex, ScanPage
from connectors.local.headings import TEXT_HEADINGS, HeadingList
from connectors.local.keys import (
    CJK_CHAR,
    RUN,
    TEXT_INDEXES,
    call_key,
    isbn_keys,
    phrase_form,
    text_values,
    tokens_of,
)
from marc import Record, normalize, read_file
from marc.flavour import MARC21, UNIMARC, detect_flavour
from marc.normalization.text import isbn13

logger = logging.getLogger(__name__)

_LATIN_EDGE = re.compile(r"[0-9a-z]")
_YEAR_COMPARE = {"=": operator.eq, "<": operator.lt, ">": operator.gt, "<=": operator.le,
                 ">=": operator.ge}


@dataclass(slots=True)
class _Postings:
    """One index: token -> positions, the sorted vocabulary for truncation, and each
    record's folded field values for phrase checks."""

    terms: dict[str, set[int]]
    vocabulary: list[str]
    texts: dict[int, str]  # position -> folded values, one per line

    def lookup(self, key: str, truncated: bool = False) -> set[int]:
        if not truncated:
            return set(self.terms.get(key, ()))
        found: set[int] = set()
        i = bisect.bisect_left(self.vocabulary, key)
        while i < len(self.vocabulary) and self.vocabulary[i].startswith(key):
            found |= self.terms[self.vocabulary[i]]
            i += 1
        return found


class LocalResultSet:
    """The records of one search, in file order; positions are 1-based."""

    def __init__(self, records: list[pymarc.Record]) -> None:
        self._records = records
        self.hits = len(records)

    async def fetch(self, start: int, count: int) -> list[pymarc.Record]:
        if start < 1 or count <= 0:
            return []
        return self._records[start - 1:start - 1 + count]


class LocalCatalogue:
    """A ``Catalogue`` over MARC records held in memory.

    ``source`` is a path (ISO 2709, MARCXML or MARC-in-JSON, any encoding ``marc`` reads) or
    pymarc records. ``flavour`` is what ``fetch`` returns (``auto``: decided from the
    records). ``delay`` seconds are slept at each search, to play a slow member.
    ``encoding`` is what a protocol server should send this catalogue's records and expect
    its query terms in (a GB18030-speaking Z39.50 target); reading the file always
    detects its encoding. ``indexes`` limits what can be searched (default: every index).
    """

    def __init__(self, source: str | os.PathLike[str] | Iterable[pymarc.Record], *,
                 name: str, flavour: str = "auto", delay: float = 0.0,
                 encoding: str = "utf-8", indexes: Iterable[str] = INDEXES) -> None:
        self.name = name
        self.delay = float(delay)
        self.encoding = encoding
        self.indexes = tuple(indexes)
        self.problems: list[str] = []  # records in the file that could not be read
        records, flavours = self._read(source)
        if flavour == "auto":
            flavour = _majority(flavours) or MARC21
        if flavour not in (MARC21, UNIMARC):
            raise ValueError(f"flavour must be marc21, unimarc or auto, not {flavour!r}")
        self.flavour = flavour
        self.records: list[pymarc.Record] = records
        self._build([normalize(r, flavour=f, library=name)
                     for r, f in zip(records, flavours, strict=True)])

    def __len__(self) -> int:
        return len(self.records)

    def __repr__(self) -> str:
        return f"LocalCatalogue({self.name!r}, {len(self.records)} records, {self.flavour})"

    # --- loading ------------------------------------------------------------------------

    def _read(self, source) -> tuple[list[pymarc.Record], list[str]]:
        records: list[pymarc.Record] = []
        flavours: list[str] = []
        if isinstance(source, (str, os.PathLike)):
            for entry in read_file(source):
                if entry.record is None:
                    self.problems.append(f"{source}: {entry.position}: "
                                         f"{'; '.join(entry.problems)}")
                    continue
                records.append(entry.record)
                flavours.append(entry.flavour or MARC21)
            for problem in self.problems:
                logger.warning("%s: %s", self.name, problem)
        else:
            for record in source:
                records.append(record)
                flavours.append(detect_flavour([f.tag for f in record.fields]))
        return records, flavours

    def _build(self, normalized: list[Record]) -> None:
        terms: dict[str, dict[str, set[int]]] = {name: defaultdict(set) for name in INDEXES}
        texts: dict[str, dict[int, str]] = {name: {} for name in TEXT_INDEXES}
        self._years: dict[int, int] = {}
        self._heading_values: dict[ScanIndex, list[tuple[str | None, int]]] = {
            name: [] for name in SCAN_INDEXES if name != "any"}
        self._headings: dict[ScanIndex, HeadingList] = {}
        for pos, rec in enumerate(normalized):
            _collect_headings(self._heading_values, rec, pos)
            for name, values in text_values(rec).items():
                forms = [f for f in map(phrase_form, values) if f]
                postings = terms[name]
                for token in {t for form in forms for t in tokens_of(form)}:
                    postings[token].add(pos)
                texts[name][pos] = "\n".join(forms)
            for isbn in rec.isbns:
                for key in isbn_keys(isbn):
                    terms["isbn"][key].add(pos)
            for issn in rec.issns:
                terms["issn"][issn.replace("-", "").upper()].add(pos)
            for value in (*rec.call_numbers, *(c.value for c in rec.classification)):
                key = call_key(value)
                if key:
                    terms["callnumber"][key].add(pos)
                    for part in key.split("/"):
                        terms["callnumber"][part].add(pos)
            if rec.year is not None:
                self._years[pos] = rec.year
        self._index = {
            name: _Postings(dict(terms[name]), sorted(terms[name]), texts.get(name, {}))
            for name in INDEXES if name != "year"}

    # --- browsing (Z39.50 Scan, SRU scan) ------------------------------------------------

    async def scan(self, index: ScanIndex, term: str, *, count: int, position: int
                   ) -> ScanPage:
        """Headings of ``index`` around ``term`` (connectors.catalogue.ScannableCatalogue),
        each counting its records; an index this catalogue cannot search cannot be browsed."""
        if index not in SCAN_INDEXES or (index != "any" and index not in self.indexes):
            raise UnsupportedQuery(f"this library's catalogue cannot be browsed by {index}")
        headings = self._headings.get(index)
        if headings is None:
            parts = TEXT_HEADINGS if index == "any" else (index,)
            headings = self._headings[index] = HeadingList(
                index, (pair for part in parts for pair in self._heading_values[part]))
        return headings.page(term, count=count, position=position)

    # --- searching ----------------------------------------------------------------------

    async def search(self, query: Node) -> LocalResultSet:
        """The records matching ``query``, in file order. UnsupportedQuery for an index,
        relation or term this catalogue cannot answer."""
        if self.delay > 0:
            await asyncio.sleep(self.delay)
        found = self.evaluate(query)
        return LocalResultSet([self.records[pos] for pos in sorted(found)])

    def evaluate(self, node: Node) -> set[int]:
        """Positions (0-based, in file order) of the records matching ``node``."""
        if isinstance(node, Boolean):
            left = self.evaluate(node.left)
            right = self.evaluate(node.right)
            if node.op == "and":
                return left & right
            if node.op == "or":
                return left | right
            if node.op == "not":
                return left - right
            raise UnsupportedQuery(f"the boolean {node.op!r} is not supported")
        if not isinstance(node, Clause):
            raise UnsupportedQuery(f"not a query: {node!r}")
        return self._clause(node)

    def _clause(self, clause: Clause) -> set[int]:
        if clause.matches_all:  # cql.allRecords, Bib-1 _ALLRECORDS: a harvest
            return set(range(len(self.records)))
        index, relation = clause.index, clause.relation
        if index not in INDEXES or index not in self.indexes:
            raise UnsupportedQuery(f"this library's catalogue cannot be searched by {index}")
        if index == "year":
            return self._year(clause)
        if relation not in TEXT_RELATIONS:
            raise UnsupportedQuery(f"the relation {relation!r} is not supported for {index}")
        if index in ("isbn", "issn"):
            return self._identifier(clause)
        if index == "callnumber":
            words = clause.term.split() if relation in ("all", "any") else [clause.term]
            return self._combine(relation, [
                self._callnumber(w, clause.truncated and i == len(words) - 1)
                for i, w in enumerate(words)])
        postings = self._index[index]
        if relation in ("all", "any"):
            words = clause.words
            return self._combine(relation, [
                self._text(postings, w, clause.truncated and i == len(words) - 1)
                for i, w in enumerate(words)])
        return self._text(postings, clause.term, clause.truncated, whole=relation == "==")

    @staticmethod
    def _combine(relation: str, sets: list[set[int]]) -> set[int]:
        if not sets:
            return set()
        if relation == "any":
            return set().union(*sets)
        out = sets[0]
        for other in sets[1:]:
            out = out & other
        return out

    def _year(self, clause: Clause) -> set[int]:
        if clause.relation not in YEAR_RELATIONS:
            raise UnsupportedQuery(f"the relation {clause.relation!r} is not supported for year")
        term = clause.term.strip()
        if clause.truncated or not term.isdigit():
            raise UnsupportedQuery(f"year must be a number like 2008, not {clause.term!r}")
        compare = _YEAR_COMPARE[clause.relation]
        year = int(term)
        return {pos for pos, value in self._years.items() if compare(value, year)}

    def _identifier(self, clause: Clause) -> set[int]:
        postings = self._index[clause.index]
        found: set[int] = set()
        words = clause.term.split() if clause.relation in ("all", "any") else [clause.term]
        sets = []
        for word in words:
            key = re.sub(r"[\s\-]", "", word).upper()
            if clause.truncated:
                sets.append(postings.lookup(key, truncated=True))
                continue
            found = postings.lookup(key)
            if clause.index == "isbn":
                full = isbn13(key) if len(key) in (10, 13) else None
                if full:
                    found |= postings.lookup(full)
            sets.append(found)
        return self._combine("all" if clause.relation == "all" else "any", sets)

    def _callnumber(self, term: str, truncated: bool) -> set[int]:
        key = call_key(term)
        if not key:
            return set()
        return self._index["callnumber"].lookup(key, truncated)

    def _text(self, postings: _Postings, term: str, truncated: bool, *,
              whole: bool = False) -> set[int]:
        form = phrase_form(term)
        if not form:
            return set()  # nothing searchable in the term (punctuation only)
        words = form.split(" ")
        latin_last = _LATIN_EDGE.fullmatch(form[-1]) is not None
        truncate = truncated and latin_last  # a CJK term is matched anywhere already
        # Candidates from the tokens: every word and bigram must be there.
        found: set[int] | None = None
        for i, word in enumerate(words):
            last = i == len(words) - 1
            for key, prefix in _keys(word, truncate and last):
                hits = postings.lookup(key, prefix)
                found = hits if found is None else found & hits
                if not found:
                    return set()
        if found is None:
            return set()
        single = len(words) == 1 and (not CJK_CHAR.search(form) or (
            len(form) <= 2 and CJK_CHAR.fullmatch(form[0]) is not None
            and CJK_CHAR.fullmatch(form[-1]) is not None))
        if single and not whole:
            return found
        pattern = _phrase_pattern(form, truncated if whole else truncate, whole)
        return {pos for pos in found if pattern.search(postings.texts.get(pos, ""))}


def _keys(word: str, truncated: bool) -> list[tuple[str, bool]]:
    """The index keys a folded word must all have: Latin words, and CJK bigrams (or the
    character of a one-character run); only the last Latin word may be a prefix."""
    out: list[tuple[str, bool]] = []
    for run in RUN.findall(word):
        if CJK_CHAR.match(run):
            if len(run) == 1:
                out.append((run, False))
            else:
                out.extend((run[i:i + 2], False) for i in range(len(run) - 1))
        else:
            out.append((run, False))
    if truncated and out and not CJK_CHAR.match(out[-1][0]):
        out[-1] = (out[-1][0], True)
    return out


def _phrase_pattern(form: str, truncated: bool, whole: bool) -> re.Pattern[str]:
    body = re.escape(form)
    if whole:
        return re.compile(rf"^{body}{'' if truncated else '$'}", re.M)
    start = r"(?<![0-9a-z])" if _LATIN_EDGE.fullmatch(form[0]) else ""
    end = r"(?![0-9a-z])" if _LATIN_EDGE.fullmatch(form[-1]) and not truncated else ""
    return re.compile(start + body + end)


def _collect_headings(values: dict[ScanIndex, list[tuple[str | None, int]]], rec: Record,
                      pos: int) -> None:
    """A record's headings as catalogued: the main title, every author, subject and
    ISBN, the publisher."""
    values["title"].append((rec.title, pos))
    values["publisher"].append((rec.publisher, pos))
    lists: tuple[tuple[ScanIndex, tuple[str, ...]], ...] = (
        ("author", rec.authors), ("subject", rec.subjects), ("isbn", rec.isbns),
        ("issn", rec.issns))
    for name, found in lists:
        values[name].extend((value, pos) for value in found)


def _majority(flavours: list[str]) -> str | None:
    if not flavours:
        return None
    return max((MARC21, UNIMARC), key=flavours.count)
