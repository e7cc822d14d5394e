"""Ordering merged records: relevance (BM25 over title, author and subject, with a boost for
being held by more libraries), year, title in pinyin order; and facets over the set."""

from __future__ import annotations

import functools
import math
import re
from collections import Counter
from collections.abc import Iterable
from typing import Any, Literal, get_args

from pypinyin import Style, lazy_pinyin

from broker.kernel.cql import Boolean, Clause, Node
from broker.kernel.literals import one_of
from broker.search.merge import Cluster, fold
from broker.search.sorts import SORTS, Sort

FIELD_WEIGHTS = {"title": 3.0, "author": 2.0, "subject": 1.0}
HOLDERS_BOOST = 0.5  # per doubling of the number of libraries holding a record
K1, B = 1.2, 0.75
_LATIN = re.compile(r"[0-9a-z]+")
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+")


def as_sort(name: str) -> Sort:
    """The sort ``name`` names (a reader's choice); ValueError listing the sorts otherwise."""
    sort = one_of(name, SORTS)
    if sort is None:
        raise ValueError(f"sort must be one of {', '.join(SORTS)}, not {name!r}")
    return sort


def tokens(text: str) -> list[str]:
    """Words for Latin scripts; character bigrams (and single characters) for CJK runs,
    which have no spaces between words."""
    text = fold_keep_spaces(text)
    out = _LATIN.findall(text)
    for run in _CJK.findall(text):
        out.extend(run)
        out.extend(run[i:i + 2] for i in range(len(run) - 1))
    return out


def fold_keep_spaces(text: str) -> str:
    return " ".join(fold(word) for word in text.split())


def query_terms(node: Node) -> list[str]:
    """The words a reader searched for, from every positive text clause."""
    if isinstance(node, Boolean):
        left = query_terms(node.left)
        return left if node.op == "not" else left + query_terms(node.right)
    if isinstance(node, Clause) and node.index in ("any", "title", "author", "subject",
                                                   "publisher"):
        return tokens(node.term)
    return []


def _fields(cluster: Cluster) -> dict[str, list[str]]:
    cached = cluster.cache.get("fields")
    if cached is None:
        cached = cluster.cache["fields"] = _tokenize(cluster)
    return cached


def _tokenize(cluster: Cluster) -> dict[str, list[str]]:
    best = cluster.best
    return {
        "title": tokens(" ".join(x for x in (best.title, best.subtitle) if x)),
        "author": tokens(" ".join(best.authors)),
        "subject": tokens(" ".join(best.subjects)),
    }


def relevance(clusters: list[Cluster], terms: list[str]) -> dict[str, float]:
    """BM25F-style score per cluster id; with no terms, only the holders boost counts."""
    docs = {c.id: _fields(c) for c in clusters}
    n = len(docs) or 1
    avg = {name: (sum(len(d[name]) for d in docs.values()) / n) or 1.0 for name in FIELD_WEIGHTS}
    unique_terms = list(dict.fromkeys(terms))
    df: Counter[str] = Counter()
    for fields in docs.values():
        present = set().union(*map(set, fields.values()))
        df.update(t for t in unique_terms if t in present)
    scores: dict[str, float] = {}
    for cluster in clusters:
        fields = docs[cluster.id]
        score = 0.0
        for term in unique_terms:
            if not df[term]:
                continue
            idf = math.log(1 + (n - df[term] + 0.5) / (df[term] + 0.5))
            weighted_tf = sum(
                weight * fields[name].count(term) / (1 - B + B * len(fields[name]) / avg[name])
                for name, weight in FIELD_WEIGHTS.items())
            score += idf * weighted_tf * (K1 + 1) / (weighted_tf + K1)
        score += HOLDERS_BOOST * math.log2(len(cluster.libraries))
        scores[cluster.id] = score
    return scores


@functools.lru_cache(maxsize=65536)
def title_key(title: str) -> str:
    """Chinese titles in pinyin order, Latin ones alphabetically, in one sequence."""
    folded = fold_keep_spaces(title)
    if folded.isascii():
        return folded
    return " ".join(lazy_pinyin(folded, style=Style.TONE3, errors="default"))


def order(clusters: list[Cluster], sort: Sort, terms: list[str]) -> list[Cluster]:
    if sort not in SORTS:
        raise ValueError(f"unknown sort {sort!r}")
    if sort == "relevance":
        scores = relevance(clusters, terms)
        return sorted(clusters, key=lambda c: (-scores[c.id], c.first_seen))
    if sort in ("year", "-year"):
        sign = 1 if sort == "year" else -1
        dated = [(year, c) for c in clusters if (year := c.best.year) is not None]
        undated = [c for c in clusters if c.best.year is None]
        dated.sort(key=lambda yc: (sign * yc[0], yc[1].first_seen))
        return [c for _year, c in dated] + undated  # records without a year last, either way
    return sorted(clusters, key=lambda c: (title_key(c.best.sort_title or c.best.title or ""),
                                           c.first_seen))


# --- facets ---------------------------------------------------------------------------------

Facet = Literal["library", "decade", "material_type", "language"]
FACETS: tuple[Facet, ...] = get_args(Facet)
# What a page narrows the set to: for each facet, the values a record must have one of.
Filters = dict[Facet, list[str]]


def decade(year: int | None) -> str | None:
    return f"{year // 10 * 10}s" if year else None


def facet_values(cluster: Cluster, facet: Facet) -> Iterable[str]:
    best = cluster.best
    if facet == "library":
        return cluster.libraries
    if facet == "decade":
        value = decade(best.year)
        return [value] if value else []
    if facet == "material_type":
        return [best.material_type]
    if facet == "language":
        return [best.language] if best.language else []
    raise ValueError(f"unknown facet {facet!r}")


def facets(clusters: list[Cluster]) -> dict[Facet, list[dict[str, Any]]]:
    """Counts of merged records per value, most frequent first."""
    out: dict[Facet, list[dict[str, Any]]] = {}
    for facet in FACETS:
        counts = Counter(v for c in clusters for v in facet_values(c, facet))
        out[facet] = [{"value": value, "count": count}
                      for value, count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
    return out


def narrow(clusters: list[Cluster], filters: Filters) -> list[Cluster]:
    """Only clusters that have one of the chosen values for every filtered facet."""
    for facet, wanted in filters.items():
        if not wanted:
            continue
        chosen = set(wanted)
        clusters = [c for c in clusters if chosen & set(facet_values(c, facet))]
    return clusters
