"""The ``balis`` command (CONTRACTS section 1).

Each subcommand lives in its own module with ``register(subparsers, common)``; this module
only builds the parser and turns user errors into one clean line (``balis.config_path``
says which libraries file a command reads).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from importlib import metadata

from balis import (
    db_cmd,
    demo_cmd,
    directory_cmd,
    harvest_cmd,
    index_cmd,
    mail_cmd,
    marc_cmd,
    search_cmd,
    serve_cmd,
    user_cmd,
)
from balis.config_path import DEFAULT_CONFIG
from broker.kernel.errors import BalisError

_COMMANDS = (directory_cmd, marc_cmd, search_cmd, harvest_cmd, demo_cmd, serve_cmd,
             index_cmd, user_cmd, mail_cmd, db_cmd)


def build_parser() -> argparse.ArgumentParser:
    # --config is accepted on the main parser and on every subcommand; SUPPRESS keeps a
    # subcommand's absent option from hiding one given before the subcommand name.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="PATH", default=argparse.SUPPRESS,
                        help="libraries file (default: $BALIS_CONFIG, else "
                             f"{DEFAULT_CONFIG})")
    common.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS,
                        help="log more (repeat for debug detail)")
    parser = argparse.ArgumentParser(
        prog="balis", parents=[common],
        description="balis-broker: federated catalogue search and interlibrary loan "
                    "for a library consortium.",
        epilog="Run 'balis COMMAND --help' for a command's options.",
    )
    try:  # the installed distribution's, so it is the version pip and the changelog name
        version = metadata.version("balis-broker")
    except metadata.PackageNotFoundError:  # a source tree run without being installed
        version = "unknown (not installed)"
    parser.add_argument("--version", action="version", version=f"%(prog)s {version}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in _COMMANDS:
        module.register(subparsers, common)
    return parser


def _joined_sort(argv: Sequence[str]) -> list[str]:
    """``--sort -year`` as ``--sort=-year``: argparse takes a value that starts with a dash
    for an option, and CONTRACTS section 1 promises both spellings."""
    out: list[str] = []
    waiting = False
    for arg in argv:
        if waiting and arg.startswith("-") and arg != "--":
            out[-1] = f"--sort={arg}"
        else:
            out.append(arg)
        waiting = arg == "--sort"
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(_joined_sort(sys.argv[1:] if argv is None else argv))
    level = {0: logging.WARNING, 1: logging.INFO}.get(getattr(args, "verbose", 0), logging.DEBUG)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    for stream in (sys.stdout, sys.stderr):
        # Records are Chinese more often than not; never let a C locale turn them into errors.
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(encoding="utf-8", errors="replace")
    try:
        return args.handler(args)
    except BalisError as exc:
        print(f"balis: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("balis: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader of our output went away (| head): not an error worth a traceback.
        sys.stderr.close()
        return 0
