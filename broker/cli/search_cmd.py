"""``balis search``: ask member libraries one CQL query (CONTRACTS sections 1 and 5)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from broker import config as config_module
from broker.cql import parse
from broker.errors import UsageError
from broker.search import search_libraries

SORTS = ("relevance", "year", "-year", "title")


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
                        help="a library to search (repeatable)")
    search.add_argument("--max-per-library", type=int, metavar="N",
                        help="records fetched per library (default: from the config)")
    search.add_argument("--timeout", type=float, metavar="S",
                        help="seconds each library may take (default: from the config)")
    search.add_argument("--sort", choices=SORTS, default="relevance",
                        help="order of records (only 'relevance' = library order until "
                             "the broker merges results)")
    search.add_argument("--json", action="store_true",
                        help="print the result as JSON (CONTRACTS section 5)")
    search.set_defaults(handler=run_search)


def run_search(args: argparse.Namespace) -> int:
    from broker.cli import config_path

    consortium = config_module.load(config_path(args))
    query = parse(args.query)
    if not args.library:
        raise UsageError("give --library ID: searching every library at once arrives with "
                         "the broker's fan-out (not built yet)")
    if len(args.library) > consortium.max_selected:
        raise UsageError(f"at most {consortium.max_selected} libraries per search, "
                         f"not {len(args.library)}")
    libraries = [consortium.library(lid) for lid in dict.fromkeys(args.library)]
    if args.max_per_library is not None and args.max_per_library < 0:
        raise UsageError("--max-per-library must be 0 or more")
    result = asyncio.run(search_libraries(libraries, query, args.query,
                                          count=args.max_per_library, timeout=args.timeout))
    if args.json:
        json.dump(result, sys.stdout, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        _print_human(result)
    return 0 if any(lib["status"] == "ok" for lib in result["libraries"]) else 1


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
