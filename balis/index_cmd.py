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
    make.add_argument("--allow-partial", action="store_true",
                      help="index a harvest whose checkpoint says it is unfinished (warns); "
                           "without it such a source is refused (exit status 2)")
    make.add_argument("--out", required=True, metavar="INDEX", type=Path,
                      help="the index file to write (e.g. data/union.sqlite)")
    make.set_defaults(handler=run_build)
    show = sub.add_parser(
        "stats", parents=[common], help="records, clusters and overlap of an index",
        description="Report the index's records and clusters, and the overlap between "
                    "libraries: which share of each library's titles (clusters) each "
                    "other library holds too.")
    show.add_argument("index", metavar="INDEX", type=Path)
    show.add_argument("--json", action="store_true",
                      help="print every library as JSON, with the overlap of the --top "
                           "largest (of all of them with --all)")
    show.add_argument("--all", action="store_true",
                      help="list every library (default: the largest --top; the overlap "
                           "table is of those)")
    show.add_argument("--top", type=int, default=20, metavar="N",
                      help="libraries listed, and compared for overlap (default 20)")
    show.set_defaults(handler=run_stats)
    renew = sub.add_parser(
        "update", parents=[common], help="replace some libraries' records from new harvests",
        description="Replace every record INDEX holds for the libraries the FILEs come from "
                    "(named as for 'build') by the records of those files: added, changed "
                    "and removed records, clustering again only what they touch; the result "
                    "is the index a full build would give. The updated index replaces INDEX "
                    "only when complete; readers see the old index or the new one.")
    renew.add_argument("index", metavar="INDEX", type=Path, help="the index to update")
    renew.add_argument("files", nargs="+", metavar="FILE", help="ID=FILE, or DIR/ID.ext")
    renew.add_argument("--allow-partial", action="store_true",
                       help="take a harvest whose checkpoint says it is unfinished (warns)")
    renew.set_defaults(handler=run_update)
    share = sub.add_parser(
        "publish", parents=[common], help="copy the index into PostgreSQL (only what changed)",
        description="Copy a union index into PostgreSQL, where readers' processes on "
                    "several machines share it (a library with 'protocol: local' and "
                    "'url: postgresql://...'). The first publish loads it whole; later ones "
                    "rewrite only the clusters that changed and delete those gone, in one "
                    "transaction. ?schema=NAME in the URL keeps several indexes in one "
                    "database (default balis_union).")
    share.add_argument("index", metavar="INDEX", type=Path, help="the index file")
    share.add_argument("url", metavar="URL", help="postgresql://user@host:port/database")
    share.set_defaults(handler=run_publish)


def run_build(args: argparse.Namespace) -> int:
    from broker.union_index.build import build, parse_source

    sources = [parse_source(argument) for argument in args.files]
    _check_harvests_finished([source.path for source in sources], args.allow_partial)

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


def _check_harvests_finished(paths: list[Path], allow_partial: bool) -> None:
    """Refuse (exit 2: the command as given cannot be carried out) to index a harvest that
    its checkpoint says is unfinished or damaged: an index of 70 of 95 records looks
    complete to every reader. --allow-partial indexes it with a warning."""
    from broker.harvest.status import unfinished_sources
    from broker.kernel.errors import UsageError

    unfinished = unfinished_sources(paths)
    for state in unfinished:
        advice = (f"finish it with balis harvest {state.library} --out {state.output} "
                  "--resume" if state.phase == "unfinished" else "harvest it again")
        if allow_partial:
            print(f"balis: warning: {state.output}: {state.describe()}; indexed anyway "
                  "(--allow-partial)", file=sys.stderr)
        else:
            print(f"{state.output}: {state.describe()}; {advice}, or pass --allow-partial",
                  file=sys.stderr)
    if unfinished and not allow_partial:
        raise UsageError(f"{len(unfinished)} of {len(paths)} sources are not finished "
                         "harvests; nothing was indexed")


def run_update(args: argparse.Namespace) -> int:
    from broker.union_index.build import parse_source
    from broker.union_index.update import update

    sources = [parse_source(argument) for argument in args.files]
    # An unfinished harvest would replace a library's whole holding by part of it.
    _check_harvests_finished([source.path for source in sources], args.allow_partial)

    def report(problem: str) -> None:
        print(problem, file=sys.stderr)

    result = update(args.index, sources, report=report)
    skipped = f", {result.skipped} unreadable records skipped" if result.skipped else ""
    print(f"{args.index}: generation {result.generation}: {', '.join(result.libraries)}: "
          f"{result.removed} records replaced by {result.records}, {result.reclustered} "
          f"records clustered again, {result.clusters} clusters{skipped}")
    return 0


def run_stats(args: argparse.Namespace) -> int:
    from broker.kernel.errors import UsageError
    from broker.union_index.stats import render, stats

    if args.top < 1:
        raise UsageError(f"--top must be at least 1, not {args.top}")
    if args.json:
        # Every library's counts, but the overlap of only the --top largest unless --all:
        # over a thousand libraries the whole overlap is a million pairs (40 MB).
        print(json.dumps(stats(args.index, compare=None if args.all else args.top)
                         .as_dict(), ensure_ascii=False))
    else:
        sys.stdout.write(render(stats(args.index, top=None if args.all else args.top,
                                      compare=args.top)))
    return 0


def run_publish(args: argparse.Namespace) -> int:
    from broker.union_index.publish import publish

    result = publish(args.index, args.url,
                     report=lambda line: print(line, file=sys.stderr))
    what = ("created and loaded" if result.created else
            f"{result.written} clusters written, {result.removed} removed"
            if result.written or result.removed else "unchanged")
    print(f"{result.target} (schema {result.schema}): {what}; {result.records} records in "
          f"{result.clusters} clusters ({result.seconds:.1f} s)")
    return 0
