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
    serve.add_argument("--no-migrate", action="store_true",
                       help="refuse to start when the ILL database's schema is behind "
                            "(default: upgrade it at start, as $BALIS_AUTO_MIGRATE=0 "
                            "also turns off); run balis db upgrade instead")
    add_log_format(serve)
    serve.add_argument("--trusted-proxy", action="append", type=trusted_network,
                       default=[], metavar="ADDR",
                       help="a proxy (address or CIDR network, e.g. 127.0.0.1 or "
                            "10.0.0.0/8) whose X-Forwarded-For/-Proto/-Host headers are "
                            "believed; repeatable. From any other peer they are ignored")
    serve.add_argument("--drain-timeout", type=seconds, default=DRAIN_TIMEOUT, metavar="S",
                       help="on SIGTERM or Ctrl-C, seconds live searches and requests in "
                            f"flight may take to finish before the server exits (default "
                            f"{DRAIN_TIMEOUT:g}); a second signal stops at once")
    serve.set_defaults(handler=run_serve)


DRAIN_TIMEOUT = 15.0  # web.server's default, repeated so --help needs no web import


def seconds(text: str) -> float:
    """argparse's type for a duration in seconds (0 or more)."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < 86400:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, not {text!r}")
    return value


def add_log_format(parser: argparse.ArgumentParser) -> None:
    """``--log-format``, shared with ``balis demo``."""
    parser.add_argument("--log-format", choices=("text", "json"), default="text",
                        help="log lines on stderr as text (default) or one JSON object "
                             "per line, each with the request id inside a request")


def trusted_network(text: str) -> str:
    """argparse's type for --trusted-proxy: an IPv4/IPv6 address or network."""
    import ipaddress

    try:
        return str(ipaddress.ip_network(text.strip(), strict=False))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be an IP address or network such as 10.0.0.0/8, not {text!r}") from None


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


def setup_logging(log_format: str = "text") -> None:
    """A server logs what it does: every request (balis.access) and the web's own notes,
    on stderr with timestamps (text, or JSON lines with ``log_format="json"``), each with
    its request id inside a request, whatever -v asked for the rest."""
    from broker.kernel import logs

    logs.configure("json" if log_format == "json" else "text",
                   info_loggers=("balis.access", "web", "waitress"))


def run_serve(args: argparse.Namespace) -> int:
    from balis.config_path import config_path

    check_port("--port", args.port)
    check_port("--z3950-port", args.z3950_port)
    if args.threads < 1:
        raise UsageError(f"--threads must be at least 1, not {args.threads}")
    consortium = config_module.load(config_path(args))
    setup_logging(args.log_format)
    from web import create_app

    settings: dict = {"CONSORTIUM": consortium, "SRU_FLAVOUR": args.flavour,
                      "TRUSTED_PROXIES": args.trusted_proxy}
    if args.union_depth is not None:
        settings["UNION_DEPTH"] = args.union_depth
    if args.no_migrate:
        settings["ILL_AUTO_MIGRATE"] = False
    app = create_app(settings)
    try:  # the ILL schema checked once at start: behind, upgraded; not fitting, refused
        app.extensions["ill"].check_at_start()
    except BaseException:
        app.extensions["balis"].close()
        raise
    return serve_app(app, args.host, args.port, z3950_port=args.z3950_port,
                     drain_timeout=args.drain_timeout, config_file=str(config_path(args)),
                     threads=args.threads, banner=f"balis serve: {consortium.name}, "
                     f"{sum(1 for lib in consortium.libraries if lib.searchable)} searchable "
                     "libraries")


def serve_app(app, host: str, port: int, *, z3950_port: int | None = None,
              threads: int = 16, banner: str = "", extra: str = "",
              drain_timeout: float = DRAIN_TIMEOUT, config_file: str | None = None) -> int:
    """Serve ``app`` (and Z39.50) until SIGTERM or Ctrl-C, then drain (web.server.run);
    SIGHUP reloads ``config_file`` (None: a generated consortium, ``balis demo``: nothing to
    reload but the portal, which is read on every request). Prints the addresses first."""
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
    out.flush()

    def ready() -> None:  # signals are handled from now on
        out.write("Press Ctrl-C to stop.\n")
        out.flush()

    log = logging.getLogger("web.serve")

    def drain(limit: float):
        if z3950 is not None:  # no new associations; the open ones are closed at stop
            balis.bridge.call(lambda broker: z3950.stop_listening(), timeout=10)
            log.info("stopping: Z39.50 listener on port %s closed", z3950.port)
        return balis.bridge.drain(limit)

    def stop() -> None:
        log.info("closing the broker%s and the databases",
                 " and the Z39.50 associations" if z3950 is not None else "")
        if z3950 is not None:
            balis.bridge.call(lambda broker: z3950.close(), timeout=10)
        balis.close()
        log.info("stopped")

    if z3950 is not None:
        balis.on_reload(lambda: _renew_union(balis, app, z3950))
    server.run(http, on_stop=stop, drain=drain, reload=lambda: balis.reload(config_file),
               drain_timeout=drain_timeout, ready=ready)
    out.write(f"{banner.split(':', 1)[0]}: web server stopped\n")
    return 0


def _renew_union(balis, app, z3950) -> None:
    """After a reload, the Z39.50 front door's databases over the new libraries (new
    associations and searches use it; the Web's SRU makes its own on its next request)."""
    from web.union_sru import union_catalogue

    with app.app_context():
        union = union_catalogue(balis.bridge.broker)
    z3950.catalogues = {"balis": union, "Default": union}


def _start_z3950(balis, app, host: str, port: int, http):
    from connectors.z3950.server import Z3950Server
    from web.union_sru import union_catalogue

    with app.app_context():
        union = union_catalogue(balis.bridge.broker)

    async def start(broker):
        from broker.search import metrics

        metrics.ORIGIN.set("z3950")  # the server's connections inherit this context
        z3950 = Z3950Server({"balis": union, "Default": union}, host=host, port=port)
        await z3950.start()
        return z3950

    try:
        return balis.bridge.call(start, timeout=30)
    except OSError as exc:
        http.close()
        balis.close()
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
