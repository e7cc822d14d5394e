#!/usr/bin/env python3
"""Web load: simulated readers searching the demo consortium through the web front end.

Run by hand from the repository root::

    python bench/web_load.py [--seconds 30] [--readers 50] [--threads 16] [--all-share 0.15]
                             [--think 0] [--seed 1] [--baseline replay|closed|none]

Three processes, all on 127.0.0.1 (the machine has few cores: keeping them apart lets
each one's CPU be read from /proc and keeps the load generator out of the server's GIL):

* the demo members: this script run again with ``--serve-members``, which starts
  ``broker.demo.servers.DemoConsortium`` (46 real SRU and Z39.50 servers over the cached demo
  catalogues) on a free port range and prints its libraries file;
* the web front end: ``python -m balis serve --config <that file> --port 0
  --threads N`` (waitress, the memory session store; $BALIS_REDIS_URL is removed), its
  access log written to a temporary file as a production server would;
* this process: ``--readers`` aiohttp clients for ``--seconds``, then the baseline on a
  ``Broker`` in this process, with no web in between.

Each reader loops (a closed loop; ``--think`` adds an exponential pause of that mean
between iterations) over its own seeded sequence of searches, so reader r's i-th search
is the same in every run:

1. ``GET /search?field=F&text=T&library=...`` (the search form; 302 to /results/ID).
   The query is one of ``QUERIES`` (titles, authors, subjects, publishers and words of the
   demo catalogue's vocabulary, broker/demo/vocabulary.py). The libraries are 1 to 10 members
   (uniformly many, the most a reader may choose) drawn from every member but the slow
   one (cafa: each search takes 3 s, its timeout is 2 s); with ``--all-share``
   probability none are chosen, i.e. all 46 members, cafa included. Those searches are
   reported apart: until the broker suspends cafa (after 3 timeouts in a row, for 30 s,
   then longer) they last at least its 2 s timeout, longer when more than 4 wait for its
   4 connection slots. The member that is down (buu) may be chosen: it fails at once,
   then is suspended.
2. ``GET /results/ID`` as HTML, without ``live=1``: the page waits until every chosen
   library has answered, then renders. *Page latency* is from sending step 1 to the last
   byte of this page: what a reader without JavaScript waits.
3. ``GET /api/searches/ID?count=0``: the session's own ``elapsed_ms``, the broker's
   completion time (from ``Broker.search`` to the last library's answer, on the broker's
   clock inside the server). Needed for the figures below; counted as a request.
4. Half the time, when there is a second page, ``GET /results/ID?page=2``.
5. Three times in four, one record from page 1: ``GET /record/RID?s=ID``.

Figures: requests/s (all and per kind), latency p50/p95 per kind, page latency p50/p95
against the broker's elapsed for the same searches, and the front end's overhead (page
latency - broker elapsed, per search); beside the broker's elapsed, its slowest ok
member's own time (asked to answered: the rest is waiting for a connection slot or for
the event loop). Non-2xx/3xx responses and errors are counted (there should be none), and
the libraries' outcomes (anything but ``ok``, the down member's ``error`` and the slow
one's ``timeout`` or suspension is unexpected).

The baseline (``--baseline replay``, the default) starts each search of the web run on a
fresh ``Broker`` in this process at the moment (from the run's start) the web reader
started it, then takes page 1 (and page 2 and the record when the reader did): the same
searches under the same offered load, with no HTTP, no request threads and no templates.
Web/direct of the broker's elapsed is what sharing a process with the web costs the
broker; web page latency / direct search-to-page-1 is what a reader pays for the web.
Both are also paired per search. ``--baseline closed`` instead runs the readers in a
closed loop straight on the broker (what it sustains with no web; its load differs).
CPU seconds of each process during each run are shown, and of the whole machine: other
work on it slows every figure, so compare ratios from one run, never absolute numbers
across runs. The exit status is 0 whatever the figures; 1 if the servers cannot start.
"""

from __future__ import annotations

import argparse
import asyncio
import html
import json
import logging
import os
import random
import re
import select
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script: bench/ is on the path, the repo is not
    sys.path.insert(0, str(REPO))

from broker.demo import members as demo_members  # noqa: E402

HOST = "127.0.0.1"
PER_PAGE = 20  # web.pages.PER_PAGE
START_TIMEOUT = 120.0  # seconds for a server to say it is listening
QUERIES = (  # (form field, text): words the demo catalogues hold (broker/demo/vocabulary.py)
    ("title", "数据结构"), ("title", "计算机网络"), ("title", "操作系统"), ("title", "人工智能"),
    ("title", "机器学习"), ("title", "高等数学"), ("title", "线性代数"), ("title", "中国经济"),
    ("title", "国际贸易"), ("title", "中国近代史"), ("title", "红楼梦"), ("title", "唐诗"),
    ("title", "宪法学"), ("title", "现代汉语"), ("title", "中医基础理论"), ("title", "教程"),
    ("title", "中国"), ("title", "machine learning"), ("title", "data structures"),
    ("title", "introduction"), ("title", "Chinese literature"), ("title", "学报"),
    ("author", "王"), ("author", "李"), ("author", "Smith"), ("author", "Chen"),
    ("subject", "经济史"), ("subject", "计算机网络"), ("subject", "Machine learning"),
    ("subject", "International trade"), ("subject", "高等学校"),
    ("publisher", "清华大学出版社"), ("publisher", "中华书局"),
    ("publisher", "Oxford University Press"), ("any", "Python"), ("any", "算法"),
    ("any", "历史"), ("any", "linguistics"),
)
RECORD_LINK = re.compile(r'href="(/record/[^"]+)"')


@dataclass(frozen=True, slots=True)
class Plan:
    """One reader's search: the same in the web run and the baseline."""
    key: tuple[int, int]  # (reader, iteration)
    field: str
    text: str
    libraries: tuple[str, ...]  # empty: every member
    page2: bool
    record: int | None  # which of page 1's records to open, if any
    think: float

    @property
    def group(self) -> str:
        return "all" if not self.libraries else "chosen"


def plans(args: argparse.Namespace, reader: int, choosable: list[str]) -> Iterator[Plan]:
    rng = random.Random(f"{args.seed}:{reader}")
    for i in range(10**9):
        field_, text = rng.choice(QUERIES)
        libraries: tuple[str, ...] = ()
        if rng.random() >= args.all_share:
            libraries = tuple(rng.sample(choosable, rng.randint(1, 10)))
        page2 = rng.random() < 0.5
        record = rng.randrange(PER_PAGE) if rng.random() < 0.75 else None
        think = rng.expovariate(1 / args.think) if args.think > 0 else 0.0
        yield Plan((reader, i), field_, text, libraries, page2, record, think)


# --- results ------------------------------------------------------------------------------

@dataclass(slots=True)
class Search:
    plan: Plan
    page_ms: float  # web: /search sent to /results read; direct: search to page 1 snapshot
    broker_ms: float  # the session's elapsed_ms (the broker's completion)
    merged: int
    outcomes: list[tuple[str, str]]  # (library, status)
    slowest_ms: float  # the slowest ok member's own elapsed_ms (asked to answered)
    started: float = 0.0  # seconds from the run's start to sending the search


@dataclass(slots=True)
class Run:
    name: str
    requests: list[tuple[str, float]] = field(default_factory=list)  # (kind, seconds)
    failures: Counter = field(default_factory=Counter)  # "kind: status/reason"
    searches: list[Search] = field(default_factory=list)
    seconds: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)  # process -> CPU seconds
    machine: float = 0.0  # CPU seconds every process on the machine used meanwhile


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..1); nan for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def search_of(plan: Plan, page_ms: float, data: dict, broker_ms: float, started: float
              ) -> Search:
    libraries = data["libraries"]
    slowest = max((lib["elapsed_ms"] for lib in libraries if lib["status"] == "ok"
                   and lib["elapsed_ms"] is not None), default=0)
    return Search(plan, page_ms, broker_ms, data["merged"],
                  [(lib["id"], lib["status"]) for lib in libraries], slowest, started)


def machine_cpu() -> float:
    """CPU seconds all processes have used (/proc/stat: everything but idle and iowait)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(values[:8]) - values[3] - values[4]) / os.sysconf("SC_CLK_TCK")


def unexpected(outcomes: list[tuple[str, str]]) -> list[str]:
    out = []
    for lid, status in outcomes:
        expected = ("timeout" if lid in demo_members.SLOW else
                    "error" if lid in demo_members.DOWN else "ok")
        # A slow member suspended after its timeouts fails at once: expected too.
        if status != expected and not (lid in demo_members.SLOW and status == "error"):
            out.append(f"{lid} {status}")
    return out


# --- the processes ------------------------------------------------------------------------

class Child:
    """A server process this script started, stopped by its own PID."""

    def __init__(self, name: str, argv: list[str], log: Path) -> None:
        self.name = name
        self.log = log
        self._pending = b""
        env = {k: v for k, v in os.environ.items() if k != "BALIS_REDIS_URL"}
        with open(log, "wb") as err:
            self.proc = subprocess.Popen(argv, cwd=REPO, env=env, stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=err)

    def line(self, pattern: str, timeout: float = START_TIMEOUT) -> re.Match:
        """The first stdout line matching ``pattern``; RuntimeError if none comes."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        # Raw reads with our own line buffer: a buffered readline would keep lines that
        # came in the same write, and select would then wait for them in vain.
        while time.monotonic() < deadline:
            while b"\n" in self._pending:
                line, self._pending = self._pending.split(b"\n", 1)
                found = re.search(pattern, line.decode("utf-8", "replace"))
                if found:
                    return found
            ready, _, _ = select.select([fd], [], [], 0.5)
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                self._pending += chunk
            elif self.proc.poll() is not None:
                break
        raise RuntimeError(f"{self.name} did not start: {self.tail()}")

    def tail(self, lines: int = 15) -> str:
        text = self.log.read_text("utf-8", "replace").splitlines()
        return "\n".join(text[-lines:]) or "(nothing on stderr)"

    def cpu(self) -> float:
        """User + system CPU seconds so far (/proc/PID/stat)."""
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return float("nan")
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.proc.poll() is None:
            if self.proc.stdin is not None:
                self.proc.stdin.close()  # the members' process stops at end of input
            self.proc.terminate()  # balis serve stops cleanly on SIGTERM
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def serve_members(data_dir: Path | None) -> int:
    """--serve-members: the demo's member servers on a free port range until stdin ends."""
    from broker.demo.servers import DemoConsortium
    from broker.kernel.errors import UsageError

    async def main() -> int:
        for _ in range(20):
            base = random.randrange(20000, 60000)
            try:
                async with DemoConsortium(port_base=base, data_dir=data_dir) as demo:
                    print(json.dumps({"config": str(demo.config), "port_base": base,
                                      "records": demo.records}), flush=True)
                    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
                    return 0
            except UsageError:  # a port in the range is taken: try another range
                continue
        print("no free port range for the demo members", file=sys.stderr)
        return 1
    return asyncio.run(main())


# --- the readers --------------------------------------------------------------------------

async def web_reader(args, reader: int, choosable: list[str], base: str, http, origin: float,
                     run: Run) -> None:
    import aiohttp

    async def get(kind: str, path: str, expect: int = 200) -> tuple[int, str, str | None]:
        began = time.monotonic()
        try:
            async with http.get(base + path, allow_redirects=False) as resp:
                body = await resp.text()
                status, location = resp.status, resp.headers.get("Location")
        except (aiohttp.ClientError, TimeoutError) as exc:
            run.failures[f"{kind}: {type(exc).__name__} {exc}"[:120]] += 1
            return 0, "", None
        run.requests.append((kind, time.monotonic() - began))
        if status != expect:
            run.failures[f"{kind}: HTTP {status} {body[:80]!r}"] += 1
        return status, body, location

    for plan in plans(args, reader, choosable):
        if time.monotonic() >= origin + args.seconds:
            return
        query = [("field", plan.field), ("text", plan.text)]
        query += [("library", lid) for lid in plan.libraries]
        began = time.monotonic()
        status, _, location = await get("search", "/search?" + urlencode(query), 302)
        if status != 302 or not location:
            continue
        results = location.split("?")[0].replace(base, "")
        status, page, _ = await get("results", results)
        page_ms = (time.monotonic() - began) * 1000
        sid = results.rsplit("/", 1)[-1]
        status_api, body, _ = await get("api state", f"/api/searches/{sid}?count=0")
        if status != 200 or status_api != 200:
            continue
        state = json.loads(body)
        if not state["done"]:
            run.failures["results: page rendered before the search was done"] += 1
        run.searches.append(search_of(plan, page_ms, state, state["elapsed_ms"],
                                      began - origin))
        if plan.page2 and state["merged"] > PER_PAGE:
            await get("results p2", f"{results}?page=2")
        links = RECORD_LINK.findall(page)
        if plan.record is not None and links:
            await get("record", html.unescape(links[plan.record % len(links)]))
        if plan.think:
            await asyncio.sleep(plan.think)


async def direct_search(plan: Plan, broker, run: Run, origin: float) -> None:
    """One reader's search (and its page 2 and record) straight on the broker."""
    from web.pages import field_query

    began = time.monotonic()
    try:
        session = await broker.search(field_query(plan.field, plan.text),
                                      list(plan.libraries) or None)
        await broker.wait(session)
        data = await broker.page(session, start=1, count=PER_PAGE)
    except Exception as exc:  # counted, as a web error would be
        run.failures[f"search: {type(exc).__name__} {exc}"[:120]] += 1
        return
    page_ms = (time.monotonic() - began) * 1000
    run.requests.append(("search+page 1", page_ms / 1000))
    run.searches.append(search_of(plan, page_ms, data, session.elapsed_ms(), began - origin))
    if plan.page2 and data["merged"] > PER_PAGE:
        t = time.monotonic()
        await broker.page(session, start=PER_PAGE + 1, count=PER_PAGE)
        run.requests.append(("page 2", time.monotonic() - t))
    if plan.record is not None and data["records"]:
        t = time.monotonic()
        rid = data["records"][plan.record % len(data["records"])]["id"]
        cluster = session.merger.find(rid)
        if cluster is None:
            run.failures["record: not found in its own session"] += 1
        else:
            cluster.as_dict()
        run.requests.append(("record", time.monotonic() - t))


async def web_run(args, choosable: list[str], base: str, children: list[Child]) -> Run:
    import aiohttp

    run = Run("web")
    connector = aiohttp.TCPConnector(limit=0)  # one keep-alive connection per reader
    timeout = aiohttp.ClientTimeout(total=120)
    cpu0 = {c.name: c.cpu() for c in children}
    self0, machine0 = time.process_time(), machine_cpu()
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        began = time.monotonic()
        await asyncio.gather(*(web_reader(args, r, choosable, base, http, began, run)
                               for r in range(args.readers)))
        run.seconds = time.monotonic() - began
    run.cpu = {c.name: c.cpu() - cpu0[c.name] for c in children}
    run.cpu["bench client"] = time.process_time() - self0
    run.machine = machine_cpu() - machine0
    return run


async def direct_run(args, choosable: list[str], consortium, members: Child,
                     web: Run | None) -> Run:
    """The baseline on a fresh Broker in this process: with ``web``, each of its searches
    started at the moment it was started in the web run (the same offered load); without,
    the same readers in a closed loop."""
    from broker.search.fanout import Broker

    run = Run("direct")
    cpu0 = members.cpu()
    self0, machine0 = time.process_time(), machine_cpu()

    async def replay(search: Search, broker, origin: float) -> None:
        await asyncio.sleep(max(0.0, origin + search.started - time.monotonic()))
        await direct_search(search.plan, broker, run, origin)

    async def reader(number: int, broker, origin: float) -> None:
        for plan in plans(args, number, choosable):
            if time.monotonic() >= origin + args.seconds:
                return
            await direct_search(plan, broker, run, origin)
            if plan.think:
                await asyncio.sleep(plan.think)

    async with Broker(consortium) as broker:
        origin = time.monotonic()
        if web is not None:
            await asyncio.gather(*(replay(s, broker, origin) for s in web.searches))
        else:
            await asyncio.gather(*(reader(r, broker, origin) for r in range(args.readers)))
        run.seconds = time.monotonic() - origin
    run.cpu = {members.name: members.cpu() - cpu0,
               "bench (broker + readers)": time.process_time() - self0}
    run.machine = machine_cpu() - machine0
    return run


async def warm_up(consortium, choosable: list[str]) -> None:
    """One search at every member but the slow one, not measured: the members' process
    pays its first-use costs before either run."""
    from broker.search.fanout import Broker

    async with Broker(consortium) as broker:
        for i in range(0, len(choosable), 10):
            await broker.wait(await broker.search("title=中国", choosable[i:i + 10]))


# --- the report ---------------------------------------------------------------------------

def ms(value: float) -> str:
    return "-" if value != value else f"{value:.0f}"  # nan: no data


def in_app(log: Path) -> dict[str, list[float]]:
    """Each request's time inside the app by kind, from the server's access log (web.server
    AccessLog: from the app being called to its return, so without waiting for a thread)."""
    line = re.compile(r"balis\.access: \S+ GET (\S+) \S+ \S+ (\d+)ms$")
    out: dict[str, list[float]] = defaultdict(list)
    for text in log.read_text("utf-8", "replace").splitlines():
        found = line.search(text)
        if found:
            path = found.group(1)
            kind = ("search" if path.startswith("/search?") else
                    "results p2" if path.startswith("/results/") and "page=2" in path else
                    "results" if path.startswith("/results/") else
                    "api state" if path.startswith("/api/searches/") else
                    "record" if path.startswith("/record/") else "other")
            out[kind].append(float(found.group(2)))
    return out


def print_requests(run: Run, app: dict[str, list[float]] | None = None) -> None:
    by_kind: dict[str, list[float]] = defaultdict(list)
    for kind, seconds in run.requests:
        by_kind[kind].append(seconds * 1000)
    failed = sum(run.failures.values())
    print(f"  requests: {len(run.requests)} in {run.seconds:.1f} s = "
          f"{len(run.requests) / run.seconds:.1f}/s; failed or unexpected status: {failed}")
    extra = f"{'in app p50':>12}{'p95':>6}" if app else ""
    print(f"  {'kind':<16}{'count':>7}{'per s':>8}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}"
          + extra)
    for kind, values in by_kind.items():
        inside = (f"{ms(pct(app[kind], .5)):>12}{ms(pct(app[kind], .95)):>6}"
                  if app and kind in app else "")
        print(f"  {kind:<16}{len(values):>7}{len(values) / run.seconds:>8.1f}"
              f"{ms(pct(values, .5)):>9}{ms(pct(values, .95)):>9}{ms(max(values)):>9}"
              + inside)
    if app:
        print("  (in app: the access log's time inside the app; the rest of a request's "
              "time is waiting for one of the server's threads, and the network)")
    for reason, count in run.failures.most_common(10):
        print(f"  FAILED {count}x {reason}")


def print_searches(run: Run) -> None:
    label = "page latency" if run.name == "web" else "search to page 1"
    for group in ("chosen", "all"):
        found = [s for s in run.searches if s.plan.group == group]
        if not found:
            continue
        page = [s.page_ms for s in found]
        broker = [s.broker_ms for s in found]
        members = sum(len(s.plan.libraries) for s in found) / len(found) if group == "chosen" \
            else 46
        print(f"  {group} libraries: {len(found)} searches = {len(found) / run.seconds:.2f}/s, "
              f"{members:.1f} members each, median {pct([s.merged for s in found], .5):.0f} "
              "merged records")
        print(f"    {label:<26} p50 {ms(pct(page, .5)):>6} ms  p95 {ms(pct(page, .95)):>6} ms")
        print(f"    {'broker elapsed':<26} p50 {ms(pct(broker, .5)):>6} ms  "
              f"p95 {ms(pct(broker, .95)):>6} ms")
        slowest = [s.slowest_ms for s in found]
        print(f"    {'  its slowest ok member':<26} p50 {ms(pct(slowest, .5)):>6} ms  "
              f"p95 {ms(pct(slowest, .95)):>6} ms (asked to answered; the rest is waiting for a "
              "connection slot or for the event loop)")
        if run.name == "web":
            over = [s.page_ms - s.broker_ms for s in found]
            ratio = [s.page_ms / max(1.0, s.broker_ms) for s in found]
            print(f"    {'overhead (page - broker)':<26} p50 {ms(pct(over, .5)):>6} ms  "
                  f"p95 {ms(pct(over, .95)):>6} ms;  page/broker per search p50 "
                  f"{pct(ratio, .5):.2f}x p95 {pct(ratio, .95):.2f}x")
    outcomes = Counter(status for s in run.searches for _, status in s.outcomes)
    odd = Counter(x for s in run.searches for x in unexpected(s.outcomes))
    print("  library answers: " + ", ".join(f"{k} {v}" for k, v in outcomes.most_common())
          + f"; unexpected: {sum(odd.values())}"
          + ("" if not odd else " (" + ", ".join(f"{k} x{v}" for k, v in odd.most_common(8))
             + ")"))


def print_cpu(run: Run) -> None:
    ours = sum(run.cpu.values())
    print("  CPU: " + ", ".join(f"{name} {sec:.1f} s ({sec / run.seconds:.0%} of a core)"
                                for name, sec in run.cpu.items())
          + f"; the whole machine {run.machine / run.seconds:.0%} of a core, other "
          f"processes {(run.machine - ours) / run.seconds:.0%} (of {os.cpu_count()} cores)")


def compare(web: Run, direct: Run) -> None:
    print("\n== web / direct (the same searches; ratio > 1: slower through the web) ==")
    print(f"  {'figure':<40}{'web':>9}{'direct':>9}{'ratio':>8}")
    rows = [("searches/s", len(web.searches) / web.seconds,
             len(direct.searches) / direct.seconds)]
    for group in ("chosen", "all"):
        w = [s for s in web.searches if s.plan.group == group]
        d = [s for s in direct.searches if s.plan.group == group]
        if not w or not d:
            continue
        for q in (.5, .95):
            tag = f"p{round(q * 100)}"
            rows.append((f"{group}: broker elapsed {tag} ms", pct([s.broker_ms for s in w], q),
                         pct([s.broker_ms for s in d], q)))
            rows.append((f"{group}: page latency / completion {tag} ms",
                         pct([s.page_ms for s in w], q), pct([s.page_ms for s in d], q)))
    for name, a, b in rows:
        print(f"  {name:<40}{a:>9.1f}{b:>9.1f}{a / b if b else float('nan'):>7.2f}x")
    pairs = {s.plan.key: s for s in direct.searches if s.plan.group == "chosen"}
    paired = [(s, pairs[s.plan.key]) for s in web.searches if s.plan.key in pairs]
    if paired:
        # Differences, not ratios: a direct search of a few ms makes a ratio meaningless.
        page = [w.page_ms - d.page_ms for w, d in paired]
        broker = [w.broker_ms - d.broker_ms for w, d in paired]
        print(f"  paired per search (chosen, {len(paired)} in both runs): web page latency - "
              f"direct search to page 1 p50 {ms(pct(page, .5))} ms p95 {ms(pct(page, .95))} "
              f"ms; broker elapsed web - direct p50 {ms(pct(broker, .5))} ms p95 "
              f"{ms(pct(broker, .95))} ms")


def server_problems(log: Path) -> list[str]:
    lines = log.read_text("utf-8", "replace").splitlines()
    return [line for line in lines if " ERROR " in line or line.startswith("Traceback")]


# --- main ---------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each run")
    parser.add_argument("--readers", type=int, default=50, help="concurrent readers")
    parser.add_argument("--threads", type=int, default=16,
                        help="the web server's request threads (balis serve --threads)")
    parser.add_argument("--all-share", type=float, default=0.15,
                        help="share of searches with no library chosen (all members)")
    parser.add_argument("--think", type=float, default=0.0,
                        help="mean pause in seconds between a reader's searches")
    parser.add_argument("--seed", default="1")
    parser.add_argument("--data-dir", type=Path, help="the demo's catalogue cache")
    parser.add_argument("--baseline", choices=("replay", "closed", "none"), default="replay",
                        help="the direct run on a Broker in this process: the web run's "
                             "searches at the moments they were started (default), the "
                             "readers in a closed loop, or none")
    parser.add_argument("--serve-members", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_members:
        return serve_members(args.data_dir)
    if args.seconds <= 0 or args.readers < 1 or args.threads < 1 or \
            not 0 <= args.all_share <= 1 or args.think < 0:
        parser.error("--seconds, --readers and --threads must be positive, --all-share "
                     "between 0 and 1, --think at least 0")
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    from broker.kernel import config as config_module

    logs = Path(tempfile.mkdtemp(prefix="web_load-"))
    children: list[Child] = []
    try:
        member_argv = [sys.executable, __file__, "--serve-members"]
        if args.data_dir:
            member_argv += ["--data-dir", str(args.data_dir)]
        started = time.monotonic()
        members = Child("members", member_argv, logs / "members.log")
        children.append(members)
        info = json.loads(members.line(r"^\{.*\}\s*$").group(0))
        consortium = config_module.load(info["config"])
        web = Child("web server", [sys.executable, "-m", "balis", "serve", "--config",
                                   info["config"], "--host", HOST, "--port", "0",
                                   "--threads", str(args.threads)], logs / "web.log")
        children.append(web)
        base = web.line(r"Web:\s+(http://\S+?)/?\s*$").group(1)
    except RuntimeError as exc:
        print(f"cannot start the servers: {exc} (logs in {logs})", file=sys.stderr)
        for child in reversed(children):
            child.stop()
        return 1
    keep = True  # the servers' logs, unless the web run went as it should
    try:
        choosable = [lib.id for lib in consortium.libraries
                     if lib.searchable and lib.id not in demo_members.SLOW]
        print(f"Demo members: {len(consortium.libraries)} ({info['records']} records) on "
              f"{HOST}:{info['port_base']}-{info['port_base'] + len(consortium.libraries) - 1}"
              f" (pid {members.proc.pid}); web: balis serve --threads {args.threads} at "
              f"{base} (pid {web.proc.pid}); up in {time.monotonic() - started:.1f} s.")
        print(f"{args.readers} readers, {args.seconds:g} s per run, think time "
              f"{args.think:g} s; {args.all_share:.0%} of searches over all members (with "
              f"the slow {', '.join(demo_members.SLOW)}), the rest over 1-10 of the "
              f"{len(choosable)} others; {os.cpu_count()} CPUs.")
        asyncio.run(warm_up(consortium, choosable))

        print("\n== web: through balis serve ==")
        web_result = asyncio.run(web_run(args, choosable, base, children))
        print_requests(web_result, in_app(web.log))
        print_searches(web_result)
        print_cpu(web_result)
        problems = server_problems(web.log)
        print(f"  server log: {len(problems)} errors" + "".join(
            f"\n    {line[:160]}" for line in problems[:5]))
        keep = bool(problems or web_result.failures)
        if args.baseline == "none":
            return 0

        how = ("each search started when it was in the web run" if args.baseline == "replay"
               else f"{args.readers} readers in a closed loop")
        print(f"\n== direct: the same searches on a Broker in this process, no web ({how}) ==")
        direct = asyncio.run(direct_run(args, choosable, consortium, members,
                                        web_result if args.baseline == "replay" else None))
        print_requests(direct)
        print_searches(direct)
        print_cpu(direct)
        compare(web_result, direct)
    finally:
        for child in reversed(children):
            child.stop()
        if keep:
            print(f"The servers' logs are kept in {logs}")
        else:
            shutil.rmtree(logs, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
