"""``balis serve``: the consortium as one catalogue, over SRU (``/sru``) and Z39.50.

The web front end and JSON API are not built yet; until they are, ``serve`` runs the union
front door alone: SRU at http://HOST:PORT/sru and, with ``--z3950-port``, Z39.50 with the
database ``balis`` (any database name is accepted as the same union).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys

from broker import config as config_module
from broker.errors import UsageError


def register(subparsers, common: argparse.ArgumentParser) -> None:
    serve = subparsers.add_parser(
        "serve", parents=[common], help="serve the consortium as one SRU and Z39.50 target",
        description="Serve the consortium as one catalogue: SRU searchRetrieve and explain "
                    "at /sru, and with --z3950-port a Z39.50 target; each search goes through "
                    "the broker to every searchable member and returns merged records with "
                    "every library's holdings in 852 fields. (The web front end and JSON API "
                    "are not built yet.)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on "
                       "(default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=5000, help="HTTP port (default 5000)")
    serve.add_argument("--z3950-port", type=int, metavar="N",
                       help="also serve Z39.50 on this port")
    serve.add_argument("--flavour", choices=("marc21", "unimarc"), default="marc21",
                       help="the MARC flavour of records served (default marc21)")
    serve.set_defaults(handler=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    from broker.cli import config_path

    for name, port in (("--port", args.port), ("--z3950-port", args.z3950_port)):
        if port is not None and not 0 < port < 65536:
            raise UsageError(f"{name} must be a TCP port number, not {port}")
    consortium = config_module.load(config_path(args))
    return asyncio.run(_serve(consortium, args))


async def _serve(consortium, args: argparse.Namespace) -> int:
    from broker.broker import Broker
    from broker.frontdoor import UnionCatalogue
    from broker.store import store_from_env
    from connectors.sru_server import SruServer
    from connectors.z3950.server import Z3950Server

    out = sys.stdout
    async with Broker(consortium, store=store_from_env()) as broker:
        union = UnionCatalogue(broker, flavour=args.flavour)
        try:
            sru = SruServer({"sru": union}, host=args.host, port=args.port)
            await sru.start()
        except OSError as exc:
            raise UsageError(f"cannot listen on {args.host}:{args.port}: {exc.strerror}") from None
        z3950 = None
        try:
            if args.z3950_port is not None:
                z3950 = Z3950Server({"balis": union, "Default": union}, host=args.host,
                                    port=args.z3950_port)
                try:
                    await z3950.start()
                except OSError as exc:
                    raise UsageError(f"cannot listen on {args.host}:{args.z3950_port}: "
                                     f"{exc.strerror}") from None
            searchable = sum(1 for lib in consortium.libraries if lib.searchable)
            out.write(f"balis serve: {consortium.name}, {searchable} searchable libraries\n"
                      f"  SRU:    http://{args.host}:{sru.port}/sru\n")
            if z3950 is not None:
                out.write(f"  Z39.50: {args.host}:{z3950.port}/balis\n")
            out.write("The web front end is not built yet. Press Ctrl-C to stop.\n")
            out.flush()
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.add_signal_handler(sig, stop.set)
            await stop.wait()
        finally:
            if z3950 is not None:
                await z3950.close()
            await sru.close()
    out.write("balis serve: stopped\n")
    return 0
