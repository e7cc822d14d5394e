#!/usr/bin/env python3
"""Matching: the merger's precision and recall on the labelled set in tests/data/matching/.

Run by hand from the repository root::

    python bench/matching.py [--quiet]

The set (``tests/data/matching/``: its SOURCES.md says where every record comes from, and
``build.py`` rebuilds it) is read through ``marc`` and given to ``broker.search.merge.Merger``
one record at a time, once in its fixed order and once reversed (``bench/matching_set.py``).
For each order: precision (merged pairs that are labelled same / all merged labelled pairs),
recall (labelled-same pairs merged / all labelled-same pairs), TP/FP/FN/TN and the clusters
made; then the worse order's figures against the targets (precision 1.000, recall >= 0.98),
and every false merge and every missed merge with the pair's reason, so a developer sees
what to fix (``--quiet`` leaves the lists out). The exit status is 0 whatever the figures.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script: bench/ is on the path, the repository not
    sys.path.insert(0, str(REPO))

from bench.matching_set import ROOT, Pair, Score, load, score, worse  # noqa: E402
from marc import Record  # noqa: E402

TARGET_PRECISION = 1.0
TARGET_RECALL = 0.98


def describe(record: Record | None) -> str:
    if record is None:
        return "(missing)"
    parts = [record.title or "-"]
    if record.subtitle:
        parts.append(f": {record.subtitle}")
    extra = [str(v) for v in (record.edition, record.year) if v]
    if record.isbns:
        extra.append("ISBN " + ",".join(record.isbns))
    if record.material_type != "book":
        extra.append(record.material_type)
    return " ".join(parts) + (f" [{'; '.join(extra)}]" if extra else "")


def print_pairs(title: str, pairs: tuple[Pair, ...], records: dict[str, Record]) -> None:
    print(f"\n{title} ({len(pairs)}):")
    for pair in pairs:
        print(f"  {pair.a} ~ {pair.b}: {pair.why}")
        print(f"      {describe(records.get(pair.a))}")
        print(f"      {describe(records.get(pair.b))}")


def line(s: Score) -> str:
    return (f"{s.order:<9} precision {s.precision:.3f}  recall {s.recall:.3f}  "
            f"TP {s.tp}  FP {s.fp}  FN {s.fn}  TN {s.tn}  clusters {s.clusters}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quiet", action="store_true", help="figures only, no pair lists")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    data = load()
    loaded = time.perf_counter()
    same = sum(1 for p in data.pairs if p.label == "same")
    print(f"{ROOT.relative_to(REPO)}: {len(data.records)} records, {len(data.pairs)} "
          f"labelled pairs ({same} same, {len(data.pairs) - same} different); read in "
          f"{loaded - started:.2f} s")
    scores = []
    for order in ("forward", "reversed"):
        began = time.perf_counter()
        result = score(data, order)
        scores.append(result)
        print(f"{line(result)}  ({(time.perf_counter() - began) * 1000:.0f} ms)")
    judged = worse(scores)
    print(f"\nworse order: {judged.order}")
    for name, value, target, ok in (
            ("precision", judged.precision, f"= {TARGET_PRECISION:.3f}",
             judged.precision >= TARGET_PRECISION),
            ("recall", judged.recall, f">= {TARGET_RECALL:.3f}", judged.recall >= TARGET_RECALL)):
        print(f"  {name:<10} {value:.3f}  target {target}  {'PASS' if ok else 'MISS'}")
    if not args.quiet:
        records = {r.id: r for _, r in data.records if r.id}
        for result in scores:
            print(f"\n--- {result.order}")
            print_pairs("false merges (labelled different, merged)", result.false_merges,
                        records)
            print_pairs("missed merges (labelled same, not merged)", result.missed_merges,
                        records)
    return 0


if __name__ == "__main__":
    sys.exit(main())
