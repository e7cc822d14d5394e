"""Merging the libraries' records into clusters: one per edition of one work.

Every record reaches here through the same path (marc.normalize), whatever its protocol or
flavour, so matching sees the same values for the same book; Pazpar2 misses merges because
its two paths normalize differently. Whether two records are one edition is decided pair
by pair from their evidence (``broker.search.match``): agreeing ISBNs, or a description
that agrees (title with subtitle and part, first author, year, edition), with conflicting
ISBNs, editions, parts or subtitles as vetoes. Each cluster remembers why each of its
records joined (``Cluster.links``).

A record belongs to the library that sent it, holdings and all, except that an aggregator
(a ``protocol: local`` union index, ``connectors.local.connector``) sends records that carry
the holdings of several libraries: those keep the libraries their holdings name.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from broker.search.match import Link, Matcher, edition_key, evidence, fold
from marc import Holding, Record

__all__ = ["Cluster", "Merger", "edition_key", "fold", "richness"]


@dataclass(slots=True)
class Cluster:
    """One merged record: the same edition as several libraries catalogued it."""

    id: str
    records: list[tuple[str, Record]] = field(default_factory=list)  # (library, record)
    isbns: set[str] = field(default_factory=set)
    links: list[Link] = field(default_factory=list)  # why each record after the first joined
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
        data["match"] = [link.as_dict() for link in self.links]
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
        self._matcher = Matcher()
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
        found = evidence(record)
        choice = self._matcher.choose(record.id, found) if record.title or record.isbns \
            or record.issns else None
        if choice is None:
            number = len(self.clusters)
            # Normalized ids already name their library ("bnu:990002180740203961").
            cluster = Cluster(id=record.id or f"{library}:#{number + 1}", first_seen=number,
                              aggregators=self.aggregators)
            self.clusters.append(cluster)
        else:
            number, link = choice
            cluster = self.clusters[number]
            cluster.links.append(link)
        cluster.add(library, record)
        cluster.isbns.update(record.isbns)
        self._matcher.add(number, record.id, found)

    def find(self, cluster_id: str) -> Cluster | None:
        for cluster in self.clusters:
            if cluster.id == cluster_id or cluster_id in (r.id for _, r in cluster.records):
                return cluster
        return None
