"""Sorting the union's merged set (Z39.50 Sort, SRU ``sortKeys`` and CQL ``sortBy``).

A sort gives a new result set over the same clusters (``SortedUnionResultSet``); the set
it came from keeps its relevance order, so a Z39.50 client that sorts into a new name still
presents the old one as it was. A merged record sorts by its cluster's best record, the
one the reader is shown: ``title`` by its filing title folded as the reader's title sort
folds it (``broker.search.rank.title_key``: ISBD punctuation and case gone, Chinese in
pinyin), ``author`` by the first author folded the same way, ``year`` by the year.

Keys apply in order through stable sorts, last key first, so records equal under every
key keep the order they had (relevance, or the previous sort's). Records without a key's
value go where ``SortKey.missing`` says (last by default, either direction).

The sorted set holds exactly the records of the set it sorts (the union's set is fixed
when the search is answered), so its count is the same and is what it presents.

``order_records`` knows nothing of clusters, so any catalogue with normalized records can
sort with it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import TypeVar

import pymarc

from broker.catalogues.union import UnionResultSet, cluster_marc
from broker.kernel.sorting import SortError, SortIndex, SortKey
from broker.search import rank
from broker.search.merge import Cluster
from marc.model import Record
from marc.writer import FLAVOURS

T = TypeVar("T")
Value = str | int | tuple[str, str]


def sort_value(record: Record, key: SortKey) -> Value | None:
    """What ``record`` sorts by under ``key``; None when it has no such value."""
    index: SortIndex = key.index
    if index == "year":
        return record.year
    if index == "title":
        text = record.sort_title or record.title or ""
    else:
        text = record.authors[0] if record.authors else ""
    folded = rank.title_key(text) if text.strip() else ""
    if not folded:
        return None
    # Case-sensitive: case decides only between values equal when folded.
    return (folded, text) if key.case_sensitive else folded


def order_records(items: Sequence[T], keys: Sequence[SortKey],
                  record_of: Callable[[T], Record]) -> list[T]:
    """``items`` ordered by ``keys`` (each item's record from ``record_of``); stable.
    SortError ``missing_value`` when a key says to abort on a missing value and one is."""
    ordered = list(items)
    for key in reversed(keys):
        valued: list[tuple[Value, T]] = []
        missing: list[T] = []
        for item in ordered:
            value = sort_value(record_of(item), key)
            if value is None:
                missing.append(item)
            else:
                valued.append((value, item))
        if missing and key.missing == "abort":
            raise SortError(f"{len(missing)} record(s) have no {key.index} to sort by",
                            "missing_value", key.index)
        # reverse=True keeps equal values in their order, as the ascending sort does.
        valued.sort(key=lambda pair: pair[0], reverse=not key.ascending)
        present = [item for _, item in valued]
        ordered = missing + present if key.missing_first else present + missing
    return ordered


async def sort_union(result: UnionResultSet, clusters: Sequence[Cluster],
                     keys: Sequence[SortKey]) -> SortedUnionResultSet:
    """The union set ``result`` (its ``clusters`` in its order) sorted by ``keys``."""
    return SortedUnionResultSet(result, order_records(clusters, keys, _best), tuple(keys))


def _best(cluster: Cluster) -> Record:
    return cluster.best


class SortedUnionResultSet:
    """A sorted union set: the same merged records in another, fixed order."""

    def __init__(self, source: UnionResultSet, clusters: list[Cluster],
                 keys: tuple[SortKey, ...]) -> None:
        self.source = source
        self.catalogue = source.catalogue
        self.keys = keys
        self._order = clusters

    @property
    def hits(self) -> int:
        return len(self._order)

    @property
    def precision(self) -> str:
        return self.source.precision  # the same records: as complete as they were

    @property
    def libraries(self) -> list[dict]:
        return self.source.libraries

    async def fetch(self, start: int, count: int, flavour: str | None = None
                    ) -> list[pymarc.Record]:
        """Records ``start``.. of the sorted order, in ``flavour`` (default: the union's)."""
        flavour = flavour or self.catalogue.flavour
        if flavour not in FLAVOURS:
            raise ValueError(f"flavour must be one of {', '.join(FLAVOURS)}, not {flavour!r}")
        if start < 1 or count <= 0:
            return []
        records = []
        for cluster in self._order[start - 1:start - 1 + count]:
            records.append(cluster_marc(cluster, flavour))
            if len(records) % 10 == 0:
                await asyncio.sleep(0)  # writing MARC is CPU work: let others run
        return records

    async def sort(self, keys: tuple[SortKey, ...]) -> SortedUnionResultSet:
        """Sorted again: ties under the new keys keep this set's order."""
        return SortedUnionResultSet(self.source, order_records(self._order, keys, _best),
                                    tuple(keys))
