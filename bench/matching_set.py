"""The labelled matching set (tests/data/matching/) and how a Merger scores on it.

Shared by ``bench/matching.py`` and ``tests/search/test_matching_set.py``. The records are
read through ``marc`` exactly as a connector reads them (``marc.read_file`` then
``marc.normalize`` with the library), given to a ``Merger`` one record at a time in a fixed
order (``records.tsv`` order, each file's records in file order), and the labelled pairs
are scored on the clusters that come out:

* precision = same-cluster labelled pairs labelled ``same`` / all same-cluster labelled pairs;
* recall = ``same`` pairs that ended in one cluster / all ``same`` pairs.

The set is scored in both arrival orders (forward and reversed), and the worse of the two
is the figure: a matcher must not depend on the order the libraries answer in.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from broker.search.merge import Merger
from marc import Record, normalize, read_file

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent / "tests" / "data" / "matching"
Label = Literal["same", "different"]
Order = Literal["forward", "reversed"]


@dataclass(frozen=True, slots=True)
class Pair:
    a: str  # record ids, library-qualified ("pymarc:fol05843555")
    b: str
    label: Label
    why: str


@dataclass(frozen=True, slots=True)
class MatchingSet:
    records: tuple[tuple[str, Record], ...]  # (library, record), in the fixed order
    pairs: tuple[Pair, ...]

    @property
    def ids(self) -> frozenset[str]:
        return frozenset(r.id for _, r in self.records if r.id)


@dataclass(frozen=True, slots=True)
class Score:
    order: Order
    tp: int  # labelled same, merged
    fp: int  # labelled different, merged: a false merge
    fn: int  # labelled same, not merged: a missed merge
    tn: int
    false_merges: tuple[Pair, ...]
    missed_merges: tuple[Pair, ...]
    clusters: int

    @property
    def precision(self) -> float:
        merged = self.tp + self.fp
        return self.tp / merged if merged else 1.0

    @property
    def recall(self) -> float:
        same = self.tp + self.fn
        return self.tp / same if same else 1.0


def load_records(root: Path = ROOT) -> tuple[tuple[str, Record], ...]:
    """Every record of ``records.tsv``'s files, as (library, normalized record). A 001
    repeated within one library is kept once (Merger would drop the second anyway)."""
    out: list[tuple[str, Record]] = []
    seen: set[str] = set()
    lines = (root / "records.tsv").read_text("utf-8").splitlines()[1:]
    for line in lines:
        path, library, flavour, encoding, _note = line.split("\t")
        for entry in read_file(root / path, flavour=flavour, encoding=encoding):
            if entry.record is None:
                continue
            record = normalize(entry.record, flavour=entry.flavour, library=library,
                               warnings=entry.problems)
            if record.id is None or record.id in seen:
                continue
            seen.add(record.id)
            out.append((library, record))
    return tuple(out)


def load_pairs(root: Path = ROOT) -> tuple[Pair, ...]:
    pairs = []
    for line in (root / "pairs.tsv").read_text("utf-8").splitlines()[1:]:
        a, b, label, why = line.split("\t")
        if label not in ("same", "different"):
            raise ValueError(f"pairs.tsv: {a} {b}: label {label!r}")
        pairs.append(Pair(a, b, label, why))  # type: ignore[arg-type]
    return tuple(pairs)


def load(root: Path = ROOT) -> MatchingSet:
    return MatchingSet(load_records(root), load_pairs(root))


def cluster_of(records: Iterable[tuple[str, Record]],
               merger_factory: Callable[[], Merger] = Merger) -> tuple[dict[str, int], int]:
    """Record id -> cluster number after merging ``records`` in the order given."""
    merger = merger_factory()
    for library, record in records:
        merger.add(library, [record])
    where = {}
    for number, cluster in enumerate(merger.clusters):
        for _, record in cluster.records:
            if record.id:
                where[record.id] = number
    return where, len(merger.clusters)


def score(data: MatchingSet, order: Order = "forward",
          merger_factory: Callable[[], Merger] = Merger) -> Score:
    records = data.records if order == "forward" else tuple(reversed(data.records))
    where, clusters = cluster_of(records, merger_factory)
    tp = fp = fn = tn = 0
    false_merges, missed = [], []
    for pair in data.pairs:
        together = where.get(pair.a, -1) == where.get(pair.b, -2)
        if pair.label == "same":
            if together:
                tp += 1
            else:
                fn += 1
                missed.append(pair)
        elif together:
            fp += 1
            false_merges.append(pair)
        else:
            tn += 1
    return Score(order, tp, fp, fn, tn, tuple(false_merges), tuple(missed), clusters)


def worse(scores: Iterable[Score]) -> Score:
    """The score a matcher is judged by: the lower precision, then the lower recall."""
    return min(scores, key=lambda s: (s.precision, s.recall))
