"""``balis serve``: the web front end, the JSON API and the SRU front door (CONTRACTS
section 1), and with ``--z3950-port`` the consortium as a Z39.50 target too.

The command line is the edge where the broker meets the web: Flask and waitress are
imported here only when ``serve`` runs, never by the broker itself.
"""

from __future__ import annotations

import argparse
import logging
import sys

from broker.kernel import config as config_module
from broker.kernel.consortium import FORMATS
from broker.kernel.errors import UsageError


def register(subparsers, common: argparse.ArgumentParser) -> None:
    serve = subparsers.add_parser(
        "serve", parents=[common], help="serve the web front end, JSON API and SRU",
        description="Serve the readers' web front end, the JSON API (/api/...) and the "
                    "consortium as one SRU target (/sru) with a multi-threaded WSGI server "
                    "(waitress); with --z3950-port also a Z39.50 target (database balis). "
                    "Searches go through the broker to the chosen members.")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on "
                       "(default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=5000, help="HTTP port (default 5000)")
    serve.add_argument("--z3950-port", type=int, metavar="N",
                       help="also serve Z39.50 on this port")
    serve.add_argument("--flavour", choices=FORMATS, default="marc21",
                       help="the MARC flavour of union records served over SRU and Z39.50 "
                            "(default marc21)")
    serve.add_argument("--threads", type=int, default=16, metavar="N",
                       help="request threads (default 16)")
    serve.add_argument("--union-depth", type=positive_integer, default=None, metavar="N",
                       help="records of each library merged into a union result set over "
                            "SRU and Z39.50, fixed when the search is answered (default "
                            "100); a member with more makes the count a minimum")
    serve.set_defaults(handler=run_serve)


def positive_integer(text: str) -> int:
    """argparse's type for counts: its usage error (exit 2) names the option."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {text!r}")
    return value


def check_port(name: str, port: int | None) -> None:
    if port is not None and not 0 <= port < 65536:
        raise UsageError(f"{name} must be a TCP port number, not {port}")


def setup_logging() -> None:
    """A server logs what it does: every request (balis.access) and the web's own notes,
    on stderr with timestamps, whatever -v asked for the rest."""
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:
        handler.setFormatter(logging.Formatter(
            "%(asctime)s %(levelname)s %(name)s: %(message)s"))
    for name in ("balis.access", "web", "waitress"):
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET or logger.level > logging.INFO:
            logger.setLevel(logging.INFO)


def run_serve(args: argparse.Namespace) -> int:
    from balis.config_path import config_path

    check_port("--port", args.port)
    check_port("--z3950-port", args.z3950_port)
    if args.threads < 1:
        raise UsageError(f"--threads must be at least 1, not {args.threads}")
    consortium = config_module.load(config_path(args))
    setup_logging()
    from web import create_app

    settings: dict = {"CONSORTIUM": consortium, "SRU_FLAVOUR": args.flavour}
    if args.union_depth is not None:
        settings["UNION_DEPTH"] = args.union_depth
    app = create_app(settings)
    return serve_app(app, args.host, args.port, z3950_port=args.z3950_port,
                     threads=args.threads, banner=f"balis serve: {consortium.name}, "
                     f"{sum(1 for lib in consortium.libraries if lib.searchable)} searchable "
                     "libraries")


def serve_app(app, host: str, port: int, *, z3950_port: int | None = None,
              threads: int = 16, banner: str = "", extra: str = "") -> int:
    """Serve ``app`` (and Z39.50) until Ctrl-C; prints the addresses first."""
    from web import server

    balis = app.extensions["balis"]
    try:
        http = server.make_server(app, host, port, threads)
    except OSError as exc:
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    z3950 = None
    if z3950_port is not None:
        z3950 = _start_z3950(balis, app, host, z3950_port, http)
    base = f"http://{host}:{server.bound_port(http)}"
    out = sys.stdout
    out.write(f"{banner}\n  Web:    {base}/\n  API:    {base}/api/libraries "
              f"(OpenAPI: {base}/api/openapi.json)\n  SRU:    {base}/sru\n")
    if z3950 is not None:
        out.write(f"  Z39.50: {host}:{z3950.port}/balis\n")
    out.write(extra)
    out.write("Press Ctrl-C to stop.\n")
    out.flush()

    def stop() -> None:
        if z3950 is not None:
            balis.bridge.call(lambda broker: z3950.close(), timeout=10)
        balis.close()

    server.run(http, on_stop=stop)
    out.write(f"{banner.split(':', 1)[0]}: web server stopped\n")
    return 0


def _start_z3950(balis, app, host: str, port: int, http):
    from connectors.z3950.server import Z3950Server
    from web.union_sru import union_catalogue

    with app.app_context():
        union = union_catalogue(balis.bridge.broker)

    async def start(broker):
        z3950 = Z3950Server({"balis": union, "Default": union}, host=host, port=port)
        await z3950.start()
        return z3950

    try:
        return balis.bridge.call(start, timeout=30)
    except OSError as exc:
        http.close()
        balis.close()
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
