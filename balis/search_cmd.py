"""``balis search``: ask member libraries one CQL query (CONTRACTS sections 1 and 5)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import TYPE_CHECKING

from broker.kernel import config as config_module
from broker.kernel.cql import parse
from broker.kernel.errors import UsageError
from broker.search.sorts import SORTS

if TYPE_CHECKING:
    from broker.search.session import SearchSession


def register(subparsers, common: argparse.ArgumentParser) -> None:
    search = subparsers.add_parser(
        "search", parents=[common], help="search member libraries with one CQL query",
        description="Search member libraries with one CQL query (indexes: any, title, "
                    "author, subject, isbn, issn, publisher, year, callnumber). Exit "
                    "status: 0 if at least one library answered, 1 if none did, 2 for a "
                    "bad query or configuration.",
        epilog='Example: balis search --library bnu \'title="中国发展报告" and year>=1995\'')
    search.add_argument("query", metavar="QUERY", help="CQL query")
    search.add_argument("--library", action="append", default=[], metavar="ID",
                        help="a library to search (repeatable; default: every searchable "
                             "member)")
    search.add_argument("--max-per-library", type=int, metavar="N",
                        help="records fetched per library (default: from the config)")
    search.add_argument("--timeout", type=float, metavar="S",
                        help="seconds each library may take (default: from the config)")
    search.add_argument("--sort", choices=SORTS, default="relevance",
                        help="relevance (default), year, -year, or title (Chinese titles in "
                             "pinyin order)")
    search.add_argument("-q", "--quiet", action="store_true",
                        help="no progress line on the terminal")
    search.add_argument("--json", action="store_true",
                        help="print the result as JSON (CONTRACTS section 5)")
    search.set_defaults(handler=run_search)


def run_search(args: argparse.Namespace) -> int:
    from balis.config_path import config_path
    from broker.search import run as searching  # the broker and every connector

    consortium = config_module.load(config_path(args))
    parse(args.query)  # a bad query is exit 2 before any library is asked
    if args.max_per_library is not None and args.max_per_library < 0:
        raise UsageError("--max-per-library must be 0 or more")
    if args.timeout is not None and args.timeout <= 0:
        raise UsageError("--timeout must be a positive number of seconds")
    live = sys.stderr.isatty() and not args.quiet
    result = asyncio.run(searching.run_search(
        consortium, args.query, args.library or None, per_library=args.max_per_library,
        timeout=args.timeout, sort=args.sort, progress=_progress_line if live else None))
    if live:
        sys.stderr.write("\r\033[K")
    if args.json:
        json.dump(result, sys.stdout, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        _print_human(result)
    return 0 if any(lib["status"] == "ok" for lib in result["libraries"]) else 1


def _progress_line(session: SearchSession) -> None:
    states = session.states.values()
    done = sum(s.finished for s in states)
    hits = sum(s.hits or 0 for s in states)
    sys.stderr.write(f"\r\033[K{done}/{len(session.states)} libraries answered, {hits} hits, "
                     f"{len(session.merger.clusters)} records so far")
    sys.stderr.flush()


def _print_human(result: dict) -> None:
    out = sys.stdout
    for lib in result["libraries"]:
        state = f"{lib['hits']} hits" if lib["status"] == "ok" else lib["status"]
        line = f"{lib['id']:<10} {lib['name']}  {state}  ({lib['elapsed_ms']} ms)"
        if lib["error"]:
            line += f": {lib['error']}"
        out.write(line + "\n")
    out.write(f"{result['total_hits']} hits in all; {len(result['records'])} records fetched\n")
    for number, record in enumerate(result["records"], start=1):
        who = ", ".join(record["authors"][:3])
        where = ", ".join(x for x in (record["publisher"], str(record["year"] or "")) if x)
        out.write(f"\n{number:>3}. {record['title'] or '(no title)'}")
        out.write(f" / {who}" if who else "")
        out.write(f"\n     {where}" if where else "")
        if record["isbns"]:
            out.write(f"  ISBN {record['isbns'][0]}")
        out.write(f"\n     [{', '.join(record['libraries'])}] {record['id']}\n")
