"""``balis marc dump``: read MARC files and print them, raw or normalized."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from broker.kernel.errors import SourceOpenError, UsageError
from marc.encoding import ENCODINGS, canonical_encoding
from marc.flavour import FLAVOURS, canonical_flavour


def register(subparsers, common: argparse.ArgumentParser) -> None:
    marc = subparsers.add_parser("marc", parents=[common], help="read and inspect MARC files",
                                 description="Read and inspect MARC files.")
    marc_sub = marc.add_subparsers(dest="marc_command", metavar="SUBCOMMAND", required=True)
    dump = marc_sub.add_parser(
        "dump", parents=[common], help="print the records of MARC files",
        description="Read ISO 2709, MARCXML or MARC-in-JSON files and print each record: "
                    "as readable MARC, or with --json as one normalized record per line. "
                    "Bad records are reported on stderr with their position; the rest are "
                    "still read.",
    )
    dump.add_argument("files", nargs="+", metavar="FILE", type=Path)
    dump.add_argument("--flavour", default="auto", type=_checked(canonical_flavour),
                      help=f"{' | '.join(FLAVOURS)} (default: auto, from each record)")
    dump.add_argument("--encoding", default="auto", type=_checked(canonical_encoding),
                      help=f"{' | '.join(ENCODINGS)} or another Python codec "
                           "(default: auto, from each record's bytes)")
    dump.add_argument("--json", action="store_true",
                      help="print normalized records (CONTRACTS section 4), one per line")
    dump.add_argument("--library", metavar="ID",
                      help="the member library the records come from (prefixes ids, owns "
                           "holdings)")
    dump.set_defaults(handler=run_dump)


def _checked(convert):
    """An argparse type from one of our converters, keeping our error's own words."""

    def check(value: str) -> str:
        try:
            return convert(value)
        except UsageError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return check


def run_dump(args: argparse.Namespace) -> int:
    from marc import normalize, read_file

    status = 0
    out = sys.stdout
    for path in args.files:
        try:
            entries = read_file(path, flavour=args.flavour, encoding=args.encoding)
        except SourceOpenError as exc:
            print(f"balis: {exc}", file=sys.stderr)
            status = 2
            continue
        good = bad = 0
        for entry in entries:
            where = f"{path}: {entry.position}"
            if entry.record is None:
                bad += 1
                for problem in entry.problems:
                    print(f"{where}: {problem}", file=sys.stderr)
                continue
            good += 1
            for problem in entry.problems:
                print(f"{where}: warning: {problem}", file=sys.stderr)
            if args.json:
                record = normalize(entry.record, flavour=entry.flavour, library=args.library,
                                   warnings=entry.problems)
                for problem in record.warnings[len(entry.problems):]:
                    print(f"{where}: warning: {problem}", file=sys.stderr)
                out.write(json.dumps(record.as_dict(), ensure_ascii=False) + "\n")
            else:
                out.write(f"{entry.record}\n\n")
        if bad:
            print(f"{path}: {good} records read, {bad} could not be read", file=sys.stderr)
    return status
