"""``balis demo``: the bundled demo consortium (CONTRACTS section 1).

Starts every member's SRU or Z39.50 server in this process over made-up catalogues and
runs until Ctrl-C; ``--check`` instead runs one search through the broker over all of
them, prints what happened and exits.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from pathlib import Path

from broker.demo import members as demo_members
from broker.kernel.errors import UsageError

CHECK_QUERY = "title=中国"
DEFAULT_WEB_PORT = 5000


def register(subparsers, common: argparse.ArgumentParser) -> None:
    demo = subparsers.add_parser(
        "demo", parents=[common], help="run the bundled demo consortium on this machine",
        description="Run the bundled demo consortium: BALIS's 46 members, each with its own "
                    "SRU or Z39.50 server on 127.0.0.1 over a made-up catalogue (one member "
                    "is slow and one is down, on purpose). Searched with the libraries file "
                    f"config/demo.yaml (ports {demo_members.PORT_BASE} and up). Runs until "
                    "Ctrl-C with the web front end on http://127.0.0.1:5000; --check runs "
                    "one search over every member and exits. "
                    "(--config is not used: the demo has its own libraries file.)",
        epilog="Example: balis demo --check; balis demo & balis search --config "
               "config/demo.yaml 'title=中国'")
    demo.add_argument("--port", type=int, default=DEFAULT_WEB_PORT, metavar="P",
                      help="port of the web front end on 127.0.0.1 (default "
                           f"{DEFAULT_WEB_PORT}; 0: any free port)")
    demo.add_argument("--port-base", type=int, default=demo_members.PORT_BASE, metavar="N",
                      help="member i listens on N + i (default "
                           f"{demo_members.PORT_BASE}); another N writes a libraries file "
                           "with those ports into the data directory")
    demo.add_argument("--data-dir", type=Path, metavar="DIR",
                      help="where the members' catalogue files are cached (default: "
                           "instance/demo in the source tree)")
    demo.add_argument("--regenerate", action="store_true",
                      help="write the catalogue files again even if cached")
    demo.add_argument("--check", action="store_true",
                      help="start everything, search every member once, print a summary "
                           "and exit (0 if the demo works as it should)")
    demo.add_argument("--query", default=CHECK_QUERY, metavar="CQL",
                      help=f"the query --check runs (default: {CHECK_QUERY})")
    from balis.serve_cmd import add_log_format

    add_log_format(demo)
    demo.set_defaults(handler=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    if not 0 <= args.port < 65536:
        raise UsageError(f"--port must be a TCP port number, not {args.port}")
    if args.check:
        from broker.kernel.cql import parse

        parse(args.query)  # a bad query is exit 2 before anything starts
        return asyncio.run(_check(args))
    return _serve(args)


def _demo(args: argparse.Namespace):
    from broker.demo.servers import DemoConsortium

    return DemoConsortium(data_dir=args.data_dir, port_base=args.port_base,
                          regenerate=args.regenerate)


def _shown(path: Path) -> str:
    """A path as a reader would type it: relative to here when it is below here."""
    with contextlib.suppress(ValueError):
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    return str(path)


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def _startup_line(demo) -> str:
    made = (f"generated in {demo.generate_seconds:.1f} s into {_shown(demo.data_dir)}"
            if demo.generated else f"cached in {_shown(demo.data_dir)}")
    ready = demo.generate_seconds + demo.load_seconds + demo.start_seconds
    return (f"{len(demo.members)} member libraries, {demo.records} records "
            f"({demo.manifest.get('works', '?')} works; {made}); "
            f"all servers up {ready:.1f} s after start")


def _serve(args: argparse.Namespace) -> int:
    """The members on a background thread's loop; the web front end on this thread."""
    import threading

    from balis.serve_cmd import serve_app, setup_logging
    from broker.kernel import config as config_module

    out = sys.stdout
    began = time.monotonic()
    ready = threading.Event()
    box: dict = {}

    async def members() -> None:
        try:
            async with _demo(args) as demo:
                box["demo"] = demo
                box["stop"] = stop = asyncio.Event()
                box["loop"] = asyncio.get_running_loop()
                ready.set()
                await stop.wait()
        except BaseException as exc:  # reported on the main thread
            box["error"] = exc
            ready.set()

    thread = threading.Thread(target=asyncio.run, args=(members(),), name="demo-members")
    thread.start()
    ready.wait()
    if "error" in box:
        thread.join()
        raise box["error"]
    demo = box["demo"]

    def stop_members() -> None:
        out.write("balis demo: stopping the member servers\n")
        out.flush()
        box["loop"].call_soon_threadsafe(box["stop"].set)
        thread.join()

    try:
        setup_logging(args.log_format)
        out.write(_members_text(demo))
        from web import create_app

        # The demo's portal pages are config/portal. Found until now only "beside the
        # libraries file", so another --port-base (a libraries file in the data directory)
        # lost them; named here, an instance folder's own portal/ still comes first.
        app = create_app({"CONSORTIUM": config_module.load(demo.config),
                          "PORTAL_DEFAULTS": str(demo_members.DEMO_CONFIG.parent / "portal")})
        extra = _accounts_text(app)
    except BaseException:
        stop_members()
        raise
    try:
        name = demo.directory.name if demo.directory else "BALIS"
        serve_app(app, "127.0.0.1", args.port, banner=f"balis demo: the {name} demo "
                  f"consortium ({len(demo.members)} members)", extra=extra)
    finally:
        stop_members()
    out.write(f"balis demo: stopped after {time.monotonic() - began:.0f} s\n")
    return 0


def _members_text(demo) -> str:
    last = demo.port_base + len(demo.members) - 1
    lines = [f"balis demo: {_startup_line(demo)}\n",
             f"Members listen on {demo.host}:{demo.port_base}-{last}:\n"]
    for m in demo.members:
        p = m.plan
        state = ("DOWN on purpose (nothing listens)" if p.down else
                 f"slow on purpose ({p.delay:g} s a search, timeout {p.timeout:g} s)"
                 if p.delay else "")
        codes = p.format + (f" {p.encoding}" if p.encoding != "utf-8" else "")
        lines.append(f"  {p.id:<9} {p.url(demo.port_base, demo.host):<38} {codes:<17} "
                     f"{len(m.catalogue):>4} records  {state}".rstrip() + "\n")
    config = _shown(demo.config)
    lines.append(f"\nLibraries file: {config}\nSearch the demo from another terminal:\n"
                 f"  balis search --config {config} {_quoted(CHECK_QUERY)}\n"
                 f"  balis search --config {config} --library bupt --library nlc "
                 f"{_quoted('title=数据结构 and year>=2010')}\n\n")
    return "".join(lines)


def _accounts_text(app) -> str:
    """The demo's accounts (web.ill_context.demo_accounts)."""
    from web import ill_context

    return ill_context.demo_accounts(app)


async def _check(args: argparse.Namespace) -> int:
    from broker.kernel import config as config_module
    from broker.search import run as searching

    out = sys.stdout
    async with _demo(args) as demo:
        out.write(f"balis demo --check: {_startup_line(demo)}\n")
        consortium = config_module.load(demo.config)
        began = time.monotonic()
        result = await searching.run_search(consortium, args.query, None)
        seconds = time.monotonic() - began
        plans = {p.id: p for p in demo.plans}
    libraries = result["libraries"]
    by_status: dict[str, list[dict]] = {}
    for lib in libraries:
        by_status.setdefault(lib["status"], []).append(lib)
    ok = by_status.get("ok", [])
    fetched = sum(lib["fetched"] or 0 for lib in libraries)
    merged = result["records"]
    shared = sum(1 for r in merged if len(r["libraries"]) > 1)
    out.write(f"Searched {len(libraries)} libraries for {args.query} in {seconds:.1f} s "
              f"(libraries file {_shown(demo.config)}):\n")
    out.write(f"  ok {len(ok)} ({result['total_hits']} hits), "
              f"timeout {len(by_status.get('timeout', []))}, "
              f"error {len(by_status.get('error', []))}\n")
    for status in ("timeout", "error", "pending"):
        for lib in by_status.get(status, []):
            out.write(f"  {status:<8} {lib['id']:<8} {lib['name']}: {lib['error']}\n")
    out.write(f"  {fetched} records fetched, merged into {len(merged)} "
              f"({shared} held by more than one library)\n")
    for number, record in enumerate(merged[:3], start=1):
        who = ", ".join(record["authors"][:2])
        out.write(f"  {number}. {record['title']}{' / ' + who if who else ''}"
                  f" ({record['publisher'] or '?'}, {record['year'] or '?'}) "
                  f"held by {', '.join(record['libraries'])}\n")
    problems = _surprises(libraries, plans)
    if merged and len(merged) >= fetched:
        problems.append("no record was held by two libraries: de-duplication did not show")
    damaged = [r for r in merged if r.get("warnings")]
    if damaged:  # the demo's records are clean: a warning means they were garbled on the way
        problems.append(f"{len(damaged)} records came with warnings, e.g. {damaged[0]['id']}: "
                        f"{damaged[0]['warnings'][0]}")
    if problems:
        for problem in problems:
            out.write(f"PROBLEM: {problem}\n")
        return 1
    out.write("OK: the demo consortium works. Run it with `balis demo` and search it with\n"
              f"  balis search --config {_shown(demo.config)} {_quoted(CHECK_QUERY)}\n")
    return 0


def _surprises(libraries: list[dict], plans: dict) -> list[str]:
    """What the check did not expect: every member answers but the slow one (timeout) and
    the one that is down (error)."""
    out = []
    for lib in libraries:
        p = plans.get(lib["id"])
        expected = "timeout" if p is not None and p.delay else (
            "error" if p is not None and p.down else "ok")
        if lib["status"] != expected:
            reason = f": {lib['error']}" if lib["error"] else ""
            out.append(f"{lib['id']} ended {lib['status']}, expected {expected}{reason}")
    return out
