"""Browse lists (Z39.50 Scan, SRU scan) of the two local catalogues: a MARC file, a union index.

A librarian scans headings, not words: whole titles, author names, subjects, publishers,
ISBNs, as catalogued. A ``HeadingList`` holds one index's headings in the folded order a
search meets them in (``keys.phrase_form``: NFKC, simplified, casefolded, punctuation
removed), so 中國經濟史 and 中国经济史 are one heading, and ``Perl`` sorts with ``perl``.
Each heading shows its most frequent spelling and counts the records (for a union index:
the merged records, the hits a search would give) that carry it.

The list is built once per catalogue (per index file, rebuilt when the file is) and then
answers every scan by bisection.
"""

from __future__ import annotations

import bisect
import re
import sqlite3
from collections import Counter
from collections.abc import Hashable, Iterable
from dataclasses import dataclass

from connectors.catalogue import ScanIndex, ScanPage, ScanTerm
from connectors.local.keys import phrase_form

MAX_TERMS = 1000  # headings in one answer at most
_IDENTIFIER_NOISE = re.compile(r"[\s\-]")
TEXT_HEADINGS: tuple[ScanIndex, ...] = ("title", "author", "subject", "publisher")


def heading_key(index: ScanIndex, value: str) -> str:
    """The order (and identity) of a heading, and of a start term, in ``index``."""
    if index in ("isbn", "issn"):
        return _IDENTIFIER_NOISE.sub("", value).upper()
    return phrase_form(value)


@dataclass(frozen=True, slots=True)
class _Heading:
    key: str
    term: str
    records: int


class HeadingList:
    """One index's headings, sorted by their folded key."""

    def __init__(self, index: ScanIndex, values: Iterable[tuple[str | None, Hashable]]
                 ) -> None:
        """``values``: (heading as catalogued, the record or cluster carrying it)."""
        spellings: dict[str, Counter[str]] = {}
        holders: dict[str, set[Hashable]] = {}
        for value, holder in values:
            text = " ".join((value or "").split())
            key = heading_key(index, text) if text else ""
            if not key:
                continue
            spellings.setdefault(key, Counter())[text] += 1
            holders.setdefault(key, set()).add(holder)
        self.index = index
        self._headings = [
            _Heading(key, spellings[key].most_common(1)[0][0], len(holders[key]))
            for key in sorted(spellings)]
        self._keys = [heading.key for heading in self._headings]

    def __len__(self) -> int:
        return len(self._headings)

    def page(self, term: str, *, count: int, position: int) -> ScanPage:
        """``count`` headings with the first at or after ``term`` at ``position`` (the
        Z39.50 clarification "Values of Position-in-response": 0 puts the start term
        just before the list, ``count + 1`` just after). An empty term starts at the
        first heading."""
        count = max(0, min(count, MAX_TERMS))
        start = bisect.bisect_left(self._keys, heading_key(self.index, term)) if term else 0
        first = start - (position - 1)
        lo, hi = max(0, first), max(0, min(len(self._headings), first + count))
        chosen = self._headings[lo:hi] if lo < hi else []
        return ScanPage(tuple(ScanTerm(h.term, h.records) for h in chosen), start - lo + 1)


# --- a union index's headings ------------------------------------------------------------

_UNION_SQL = {  # (heading, cluster) of every record; JSON as Record.as_dict writes it
    "title": "SELECT json_extract(data, '$.title'), cluster FROM records",
    "publisher": "SELECT json_extract(data, '$.publisher'), cluster FROM records",
    **{index: f"SELECT j.value, r.cluster FROM records r, json_each(r.data, '$.{key}') j"
       for index, key in (("author", "authors"), ("subject", "subjects"),
                          ("isbn", "isbns"), ("issn", "issns"))},
}


def union_headings(db: sqlite3.Connection, index: ScanIndex) -> HeadingList:
    """The headings of a union index (``index_file``), each counting merged records."""
    parts = TEXT_HEADINGS if index == "any" else (index,)
    return HeadingList(index, (row for part in parts for row in db.execute(_UNION_SQL[part])))
