"""``balis harvest`` (CONTRACTS section 1) and ``balis worker``: batch harvests of members.

One library into one file, every searchable member into a directory in parallel, or every
member as a job on a Redis queue that ``balis worker`` processes on any number of machines.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from broker.harvest.formats import EXTENSIONS, FORMATS
from broker.harvest.queue_limits import DEAD_AFTER, HEARTBEAT
from broker.kernel import config as config_module
from broker.kernel.cql import parse
from broker.kernel.errors import BalisError, UsageError

if TYPE_CHECKING:
    from broker.harvest.harvester import HarvestOptions, HarvestResult, Progress

# The harvester (and with it every connector) is imported when a harvest runs, not when
# the parser is built: balis --help stays fast.


def register(subparsers, common: argparse.ArgumentParser) -> None:
    harvest = subparsers.add_parser(
        "harvest", parents=[common], help="copy a member's catalogue into a file",
        usage="%(prog)s LIBRARY --out PATH [options] | --all --out DIR [options] | "
              "status [DIR] [--queue URL] [--json]",
        description="Harvest a member's whole catalogue (its all_records query, or --query) "
                    "into a file, resumably: after a crash or Ctrl-C, --resume goes on from "
                    "the last checkpoint. Exit status: 0 done, 1 failed (resumable), 2 for a "
                    "bad command line or configuration. 'balis harvest status [DIR]' lists "
                    "the harvests in DIR (default: the current directory) from their "
                    "checkpoints: records, done or not, last error; with --queue, each "
                    "member's job, the queue's depth and the workers alive (exit status 0).",
        epilog="Examples: balis harvest bnu --out bnu.mrc --rate 2; "
               "balis harvest --all --out harvests/ --jobs 4; "
               "balis harvest status harvests/ --queue redis://127.0.0.1:6379/0")
    # 'status' in the LIBRARY place is the status subcommand (a real subparser would take
    # every LIBRARY for a subcommand name); a member with that id is harvested by --all.
    harvest.add_argument("library", nargs="?", metavar="LIBRARY",
                         help="the member's id, or 'status'")
    harvest.add_argument("directory", nargs="?", metavar="DIR", type=Path,
                         help="with status: the directory of harvests (default: .)")
    harvest.add_argument("--all", action="store_true",
                         help="every searchable member, into DIR/ID.mrc (.xml, .jsonl)")
    harvest.add_argument("--out", type=Path, metavar="PATH",
                         help="output file (with --all: a directory); required")
    harvest.add_argument("--query", metavar="CQL",
                         help="harvest only what this CQL query finds (default: every record, "
                              "by the connector's all_records query)")
    harvest.add_argument("--format", choices=FORMATS, default="iso2709",
                         help="iso2709 (UTF-8, default), marcxml, or jsonl (normalized records)")
    harvest.add_argument("--resume", action="store_true",
                         help="continue an interrupted harvest from its checkpoint")
    harvest.add_argument("--rate", type=float, metavar="R",
                         help="at most R requests a second to each member")
    harvest.add_argument("--chunk", type=int, default=100, metavar="N",
                         help="records per request (default 100)")
    harvest.add_argument("--timeout", type=float, default=60.0, metavar="SECONDS",
                         help="seconds to wait for each answer (default 60; a member's own "
                              "search timeout is for readers, and is used when longer)")
    harvest.add_argument("--jobs", type=int, default=4, metavar="N",
                         help="with --all: members harvested at the same time (default 4)")
    harvest.add_argument("--queue", metavar="URL",
                         help="with --all: put one job per member on this Redis queue "
                              "(redis://host:port/db) for 'balis worker' instead; with "
                              "status: show that queue's jobs and workers")
    harvest.add_argument("--json", action="store_true",
                         help="with status: print JSON (docs/contracts.md)")
    harvest.add_argument("-q", "--quiet", action="store_true",
                         help="no progress bar on the terminal")
    harvest.set_defaults(handler=run_harvest)

    worker = subparsers.add_parser(
        "worker", parents=[common], help="process queued harvests (balis harvest --queue)",
        description="Take harvest jobs from a Redis queue and run them; start one on each "
                    "machine that should share the work.")
    worker.add_argument("--queue", required=True, metavar="URL",
                        help="the Redis queue (redis://host:port/db)")
    worker.add_argument("--burst", action="store_true",
                        help="exit when the queue is empty")
    worker.add_argument("--heartbeat", type=int, default=HEARTBEAT, metavar="SECONDS",
                        help=f"seconds between a running job's heartbeats (default "
                             f"{HEARTBEAT})")
    worker.add_argument("--dead-after", type=int, default=DEAD_AFTER, metavar="SECONDS",
                        help="a job whose last heartbeat is this old is taken as abandoned "
                             "(its worker died) and queued again; checked every half of it "
                             f"(default {DEAD_AFTER}: a dead machine's job is retried within "
                             f"{DEAD_AFTER * 3 // 2} s)")
    worker.set_defaults(handler=run_worker)


def _options(args: argparse.Namespace) -> HarvestOptions:
    from broker.harvest.harvester import HarvestOptions

    if args.query is not None:
        parse(args.query)  # a bad query is exit 2 before any library is asked
    if args.rate is not None and args.rate <= 0:
        raise UsageError("--rate must be a positive number of requests a second")
    if args.chunk < 1:
        raise UsageError("--chunk must be at least 1")
    if args.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    if not args.timeout > 0:
        raise UsageError("--timeout must be a positive number of seconds")
    return HarvestOptions(format=args.format, query=args.query, rate=args.rate,
                          chunk=args.chunk, timeout=args.timeout)


def run_harvest(args: argparse.Namespace) -> int:
    from balis.config_path import config_path
    from broker.harvest.harvester import Harvest

    if args.library == "status" and not args.all:
        from balis.harvest_status_cmd import run_status

        if args.out is not None:
            raise UsageError("'balis harvest status' takes the directory as DIR, not --out "
                             "(a member whose id is 'status' is harvested with --all)")

        return run_status(args)
    if args.directory is not None:
        raise UsageError(f"unexpected argument {str(args.directory)!r} (DIR goes with "
                         "'balis harvest status')")
    if args.json:
        raise UsageError("--json goes with 'balis harvest status'")
    if args.out is None:
        raise UsageError("--out is required: the output file (with --all, a directory)")
    consortium = config_module.load(config_path(args))
    options = _options(args)
    if args.all == bool(args.library):
        raise UsageError("give either LIBRARY or --all")
    if args.queue and not args.all:
        raise UsageError("--queue goes with --all")
    display = _Display(enabled=sys.stderr.isatty() and not args.quiet)
    try:
        if not args.all:
            library = consortium.library(args.library)
            harvest = Harvest(library, args.out, options, resume=args.resume,
                              report=display.report, progress=display.single)
            result = asyncio.run(harvest.run())
            display.clear()
            _summary(result)
            return 0 if result.done else 1
        members = [lib for lib in consortium.libraries if lib.connector is not None
                   and lib.connector.protocol in ("sru", "z3950")]  # not local indexes
        if not members:
            raise UsageError(f"no searchable members in {consortium.path}")
        if args.out.exists() and not args.out.is_dir():
            raise UsageError(f"--out {args.out} must be a directory with --all")
        jobs = [(lib, args.out / f"{lib.id}{EXTENSIONS[options.format]}") for lib in members]
        if args.queue:
            return _enqueue(args, jobs, options)
        results = asyncio.run(_harvest_all(jobs, options, args, display))
    except KeyboardInterrupt:
        display.clear()
        print("balis: interrupted; run the same command with --resume to go on",
              file=sys.stderr)
        return 1
    except OSError as exc:  # the disk, not a bug: full, read-only, no such directory
        display.clear()
        print(f"{_now()} balis: cannot write {exc.filename or args.out}: "
              f"{exc.strerror or exc}; giving up", file=sys.stderr)
        return 1
    display.clear()
    for result in results:
        _summary(result)
    failed = [r for r in results if not r.done]
    print(f"{len(results) - len(failed)} of {len(results)} members harvested into "
          f"{args.out}" + (f"; failed: {', '.join(r.library for r in failed)}" if failed
                           else ""), file=sys.stderr)
    return 1 if failed else 0


async def _harvest_all(jobs, options: HarvestOptions, args: argparse.Namespace,
                       display: _Display) -> list[HarvestResult]:
    from broker.harvest.harvester import Harvest, HarvestResult

    slots = asyncio.Semaphore(args.jobs)

    async def one(library, out: Path) -> HarvestResult:
        async with slots:
            started = time.monotonic()
            try:
                harvest = Harvest(library, out, options, resume=args.resume,
                                  report=display.report, progress=display.many)
                return await harvest.run()
            except BalisError as exc:  # this member's problem; the others go on
                return HarvestResult(library.id, out, False, None, 0, 0, (),
                                     time.monotonic() - started, str(exc))

    args.out.mkdir(parents=True, exist_ok=True)
    display.total = len(jobs)
    return list(await asyncio.gather(*(one(lib, out) for lib, out in jobs)))


def _enqueue(args: argparse.Namespace, jobs, options: HarvestOptions) -> int:
    from broker.harvest.harvester import Checkpoint, checkpoint_path
    from broker.harvest.queue import enqueue

    args.out.mkdir(parents=True, exist_ok=True)
    for _library, out in jobs:
        # Queued jobs always continue from a checkpoint (that is how a retry resumes), so
        # without --resume the old ones are dealt with here, as a single harvest would.
        marker = checkpoint_path(out)
        previous = Checkpoint.load(marker)
        if previous is not None and not args.resume:
            if not previous.done:
                raise UsageError(f"{out} is an unfinished harvest: give --resume to go on "
                                 f"with it, or delete {marker.name} to start over")
            marker.unlink()
    ids = enqueue(args.queue, jobs, options)
    for (library, out), job_id in zip(jobs, ids, strict=True):
        print(f"{library.id}\t{out}\tjob {job_id}")
    print(f"{len(ids)} harvest jobs queued on {args.queue}; run 'balis worker --queue "
          f"{args.queue}' to process them", file=sys.stderr)
    return 0


def run_worker(args: argparse.Namespace) -> int:
    import logging

    from broker.harvest.queue import work

    # Worker lines are read later, from a journal or a log file: each with its time.
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s",
                                  "%Y-%m-%dT%H:%M:%S%z")
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.StreamHandler())
    for handler in root.handlers:
        handler.setFormatter(formatter)
    # RQ's and our job lines are INFO; the rest of balis stays at the level -v chose.
    for name in ("rq", "broker.harvest"):
        logger = logging.getLogger(name)
        if logger.getEffectiveLevel() > logging.INFO:
            logger.setLevel(logging.INFO)
    work(args.queue, burst=args.burst, heartbeat=args.heartbeat,
         dead_after=args.dead_after)
    return 0


def _summary(result: HarvestResult) -> None:
    from broker.harvest.harvester import checkpoint_path

    out = sys.stderr
    if result.already_done:
        out.write(f"{result.library}: already complete: {result.written} records in "
                  f"{result.path}\n")
        return
    rate = result.written / result.elapsed if result.elapsed > 0 else 0.0
    if result.done:
        out.write(f"{result.library}: {result.written} records written to {result.path} "
                  f"in {result.elapsed:.1f} s ({rate:,.0f} records/s this run)")
    else:
        out.write(f"{_now()} {result.library}: harvest stopped after {result.written} "
                  f"records: {result.error}; giving up: run again with --resume to go on")
    if result.skipped:
        out.write(f"; {result.skipped} bad records skipped:\n")
        for problem in result.problems[:20]:
            out.write(f"  {problem}\n")
        if result.skipped > 20:
            out.write(f"  ... and {result.skipped - 20} more (listed in "
                      f"{checkpoint_path(result.path)})\n")
    else:
        out.write("\n")


class _Display:
    """Progress on a terminal (one line, redrawn); messages printed above it."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.total = 1
        self.states: dict[str, Progress] = {}
        self._shown = False

    def clear(self) -> None:
        if self._shown:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()
            self._shown = False

    def report(self, message: str) -> None:
        self.clear()
        print(f"{_now()} balis: {message}", file=sys.stderr, flush=True)

    def single(self, state: Progress) -> None:
        if not self.enabled:
            return
        done = state.written + state.skipped
        hits = max(state.hits or 0, 0)
        width = 30
        filled = int(width * min(done, hits) / hits) if hits else width
        bar = "#" * filled + "." * (width - filled)
        self._draw(f"{state.library} [{bar}] {done}/{hits} {_rate_eta(state)}")

    def many(self, state: Progress) -> None:
        if not self.enabled:
            return
        self.states[state.library] = state
        records = sum(s.written + s.skipped for s in self.states.values())
        hits = sum(max(s.hits or 0, 0) for s in self.states.values())
        finished = sum(1 for s in self.states.values()
                       if s.hits is not None and s.position > s.hits >= 0)
        self._draw(f"{finished}/{self.total} members done, {records}/{hits} records "
                   f"(of the {len(self.states)} started)")

    def _draw(self, line: str) -> None:
        sys.stderr.write("\r\033[K" + line)
        sys.stderr.flush()
        self._shown = True


def _now() -> str:
    """The time a harvest's message is printed: runs take hours, and are read later."""
    return time.strftime("%Y-%m-%d %H:%M:%S")


def _rate_eta(state: Progress) -> str:
    elapsed = time.monotonic() - state.started
    done_now = state.written + state.skipped - state.done_at_start
    if elapsed <= 0 or done_now <= 0:
        return ""
    rate = done_now / elapsed
    remaining = max(0, (state.hits or 0) - state.position + 1)
    eta = int(remaining / rate)
    return f"{rate:,.0f} rec/s ETA {eta // 3600}:{eta // 60 % 60:02d}:{eta % 60:02d}"
