"""``balis index build`` and ``balis index stats``: the union index of harvested records."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(subparsers, common: argparse.ArgumentParser) -> None:
    index = subparsers.add_parser(
        "index", parents=[common], help="build and inspect the union index of harvests",
        description="The union index: harvested records of many libraries in one SQLite "
                    "file, de-duplicated, searchable by a library with 'protocol: local'.")
    sub = index.add_subparsers(dest="index_command", metavar="SUBCOMMAND", required=True)
    make = sub.add_parser(
        "build", parents=[common], help="index harvest files (replaces the index)",
        description="Read harvest files (ISO 2709, MARCXML, MARC-in-JSON, or JSON lines "
                    "of normalized records) and write a new union index. Each FILE says "
                    "which library it came from: ID=FILE (bupt=harvest/2024.mrc), or a "
                    "file named after the library, as 'balis harvest' names them "
                    "(harvest/bupt.mrc: the name up to its first dot). A bad record is "
                    "reported on stderr with its position and skipped. The new index "
                    "replaces INDEX only when complete.")
    make.add_argument("files", nargs="+", metavar="FILE", help="ID=FILE, or DIR/ID.ext")
    make.add_argument("--out", required=True, metavar="INDEX", type=Path,
                      help="the index file to write (e.g. data/union.sqlite)")
    make.set_defaults(handler=run_build)
    show = sub.add_parser(
        "stats", parents=[common], help="records, clusters and overlap of an index",
        description="Report the index's records and clusters, and the overlap between "
                    "libraries: which share of each library's titles (clusters) each "
                    "other library holds too.")
    show.add_argument("index", metavar="INDEX", type=Path)
    show.add_argument("--json", action="store_true", help="print the numbers as JSON")
    show.set_defaults(handler=run_stats)


def run_build(args: argparse.Namespace) -> int:
    from broker.union_index.build import build, parse_source

    sources = [parse_source(argument) for argument in args.files]

    def report(problem: str) -> None:
        print(problem, file=sys.stderr)

    result = build(sources, args.out, report=report)
    libraries = len({s.library for s in sources})
    skipped = f", {result.skipped} unreadable records skipped" if result.skipped else ""
    repeated = f", {result.repeated} repeated records kept once" if result.repeated else ""
    print(f"{args.out}: {result.records} records of {libraries} "
          f"{'library' if libraries == 1 else 'libraries'} in {result.clusters} clusters"
          f"{skipped}{repeated}")
    return 0


def run_stats(args: argparse.Namespace) -> int:
    from broker.union_index.stats import render, stats

    result = stats(args.index)
    if args.json:
        print(json.dumps(result.as_dict(), ensure_ascii=False))
    else:
        sys.stdout.write(render(result))
    return 0
