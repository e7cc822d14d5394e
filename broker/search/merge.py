"""Merging the libraries' records into clusters: one per edition of one work.

Every record reaches here through the same path (marc.normalize), whatever its protocol or
flavour, so the keys below see the same values for the same book; Pazpar2 misses merges
because its two paths normalize differently.

Two records are the same edition when they share an ISBN-13, or else when their work keys
agree: title (NFKC, traditional folded to simplified, case and punctuation and spacing
removed), first author (non-Latin names kept, unlike Gold Rush keys), year and edition.
A serial never merges with a book, and different editions never merge.

A record belongs to the library that sent it, holdings and all, except that an aggregator
(a ``protocol: local`` union index, ``connectors.local.connector``) sends records that carry
the holdings of several libraries: those keep the libraries their holdings name.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import opencc

from marc import Holding, Record

_NOT_WORD = re.compile(r"[\W_]+")
_DIGITS = re.compile(r"\d+")
_CHINESE_NUMERALS = {"一": "1", "二": "2", "三": "3", "四": "4", "五": "5", "六": "6",
                     "七": "7", "八": "8", "九": "9", "十": "10"}


@functools.cache
def _t2s() -> opencc.OpenCC:
    return opencc.OpenCC("t2s")


def fold(text: str | None) -> str:
    """The matching form of a text: NFKC, simplified, casefolded, letters and digits only."""
    if not text:
        return ""
    text = unicodedata.normalize("NFKC", text)
    if not text.isascii():
        text = _t2s().convert(text)
    return _NOT_WORD.sub("", text.casefold())


def edition_key(edition: str | None) -> str:
    """'第2版', '2nd ed.', 'Ed. 2' -> '2'; '第二版' -> '2'; no statement -> ''."""
    if not edition:
        return ""
    text = unicodedata.normalize("NFKC", edition)
    for numeral, digit in _CHINESE_NUMERALS.items():
        text = text.replace(f"第{numeral}", f"第{digit}")
    digits = _DIGITS.search(text)
    key = str(int(digits.group())) if digits else fold(text)
    # A first edition is what a record without an edition statement describes too (LC
    # writes 第1版 where Chinese catalogues write nothing).
    return "" if key in ("1", "0", "firstedition", "初版") else key


def work_key(record: Record) -> str | None:
    """Title, first author, year, edition and material type (records of two types never
    merge); None without a title to match on."""
    title = fold(record.sort_title or record.title)
    if not title:
        return None
    author = fold(record.authors[0]) if record.authors else ""
    year = str(record.year or "")
    return "|".join((record.material_type, title, author, year,
                     edition_key(record.edition)))


@dataclass(slots=True)
class Cluster:
    """One merged record: the same edition as several libraries catalogued it."""

    id: str
    records: list[tuple[str, Record]] = field(default_factory=list)  # (library, record)
    isbns: set[str] = field(default_factory=set)
    keys: set[str] = field(default_factory=set)
    first_seen: int = 0  # arrival order, to keep output stable
    aggregators: frozenset[str] = frozenset()  # senders whose holdings name their libraries
    # Derived from records, cached until the next record joins (ranking asks often).
    cache: dict[str, Any] = field(default_factory=dict)

    def add(self, library: str, record: Record) -> None:
        self.records.append((library, record))
        self.cache.clear()

    @property
    def libraries(self) -> list[str]:
        return list(dict.fromkeys(holder for library, record in self.records
                                  for holder in self._holders(library, record)))

    def _holders(self, library: str, record: Record) -> list[str]:
        if library not in self.aggregators:
            return [library]
        return [h.library for h in record.holdings if h.library] or [library]

    @property
    def best(self) -> Record:
        """The fullest description among the sources (most filled-in values)."""
        best = self.cache.get("best")
        if best is None:
            best = self.cache["best"] = max((r for _, r in self.records), key=richness)
        return best

    def as_dict(self) -> dict[str, Any]:
        """CONTRACTS section 4 for the cluster, with libraries and every holding."""
        best = self.best
        data = best.as_dict()
        data["id"] = self.id
        data["isbns"] = list(dict.fromkeys([*best.isbns, *sorted(self.isbns)]))
        data["libraries"] = self.libraries
        data["holdings"] = [h.as_dict() for h in self.holdings]
        data["call_numbers"] = list(dict.fromkeys(
            c for _, r in self.records for c in r.call_numbers))
        data["sources"] = [r.id for _, r in self.records]
        return data

    @property
    def holdings(self) -> list[Holding]:
        out: list[Holding] = []
        # A library that answered itself is fresher than what an aggregator harvested.
        live = {library for library, _ in self.records if library not in self.aggregators}
        for library, record in self.records:
            if library in self.aggregators:
                out.extend(h if h.library else _owned(h, library) for h in record.holdings
                           if h.library not in live)
                if not record.holdings:
                    out.append(Holding(library=library))
                continue
            held = record.holdings or (Holding(library=library),)
            out.extend(h if h.library == library else _owned(h, library) for h in held)
        return out


def _owned(holding: Holding, library: str) -> Holding:
    return Holding(library, holding.location, holding.call_number, holding.barcode,
                   holding.status, holding.due)


def richness(record: Record) -> tuple[int, int]:
    filled = sum(1 for value in (record.title, record.subtitle, record.responsibility,
                                 record.publisher, record.place, record.year, record.edition,
                                 record.extent, record.language) if value)
    filled += bool(record.authors) + bool(record.subjects) + bool(record.classification)
    return filled, -len(record.warnings)


class Merger:
    """Clusters records as they arrive; cheap to feed one library's page at a time."""

    def __init__(self, aggregators: Iterable[str] = ()) -> None:
        self.aggregators = frozenset(aggregators)
        self.clusters: list[Cluster] = []
        self._by_isbn: dict[tuple[str, str], Cluster] = {}
        self._by_key: dict[str, Cluster] = {}
        self._seen: set[tuple[str, str | None]] = set()

    def add(self, library: str, records: list[Record] | tuple[Record, ...]) -> int:
        """Merge a library's records; returns how many were new (not already merged)."""
        added = 0
        for record in records:
            identity = (library, record.id)
            if record.id is not None and identity in self._seen:
                continue  # the same record fetched twice (a page asked for again)
            self._seen.add(identity)
            self._place(library, record)
            added += 1
        return added

    def _place(self, library: str, record: Record) -> None:
        kind = record.material_type  # an ISBN joins records of one material type only
        key = work_key(record)
        cluster = None
        for isbn in record.isbns:
            cluster = self._by_isbn.get((kind, isbn))
            if cluster is not None:
                break
        if cluster is None and key is not None:
            candidate = self._by_key.get(key)
            # A work key must not join records whose ISBNs say they are different editions.
            if candidate is not None and not (record.isbns and candidate.isbns
                                              and not candidate.isbns & set(record.isbns)):
                cluster = candidate
        if cluster is None:
            # Normalized ids already name their library ("bnu:990002180740203961").
            cluster = Cluster(id=record.id or f"{library}:#{len(self.clusters) + 1}",
                              first_seen=len(self.clusters), aggregators=self.aggregators)
            self.clusters.append(cluster)
        cluster.add(library, record)
        for isbn in record.isbns:
            cluster.isbns.add(isbn)
            self._by_isbn.setdefault((kind, isbn), cluster)
        if key is not None:
            cluster.keys.add(key)
            self._by_key.setdefault(key, cluster)

    def find(self, cluster_id: str) -> Cluster | None:
        for cluster in self.clusters:
            if cluster.id == cluster_id or cluster_id in (r.id for _, r in cluster.records):
                return cluster
        return None
