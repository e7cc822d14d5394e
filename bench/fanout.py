#!/usr/bin/env python3
"""Fan-out: one search over a whole consortium, and many at once, through the Broker.

Run by hand from the repository root::

    python bench/fanout.py [--members 46] [--concurrent 30] [--repeat 3] [--bulk 300]
                           [--profile] [--verbose]

One run starts its own peers on 127.0.0.1 (``tests/peers/servers.py``): one Zebra with
databases ``marc21``, ``unimarc`` and ``bulk`` (``--bulk`` synthetic MARC21 records) and
two yaz-ztest processes, and builds a consortium of ``--members`` libraries (a YAML text
read by ``broker.kernel.config.loads``; ``max_selected`` = members, ``max_records`` 20):

* about half Zebra members: SRU (MARCXML) and Z39.50 (USMARC/UNIMARC ISO 2709, or XML),
  on the ``bulk``, ``marc21`` and ``unimarc`` (format ``unimarc``) databases;
* about half yaz-ztest members over Z39.50, with ``Default?search-delay=D`` spread evenly
  from 0 to 1.5 s (alternating between the two yaz-ztest processes);
* one dead member (a closed port: ``error``), one slower than its timeout (yaz-ztest
  ``search-delay=3``, ``timeout: 1``: ``timeout``).

Every search is ``synthetic or perl or 中国 or N`` with a new N each time, so no result
set is ever reused: Zebra's bulk finds every synthetic record, marc21/unimarc their Perl
and Chinese books, and yaz-ztest gives N hits (N >= 101; its first numeric term decides).

Figures (times on ``time.monotonic``; ``t0`` is taken just before ``Broker.search``):

1. broker overhead = completion - slowest answering member. *Completion* is
   ``session.finished_at - t0`` (every library ok, error or timeout). *Slowest answering
   member* is the largest ``elapsed_ms`` among libraries whose status is ``ok``. A
   member's ``elapsed_ms`` is taken by the broker around its connector call (connect,
   init, search, present, parse and normalize of its records): the member's latency as
   seen from our side, which includes any time its task waited for the event loop while
   other members' records were being parsed. The timeout and dead members are left out:
   the first ends at its own 1 s timeout, the second at once, and both end before the
   slowest ok member (1.5 s) anyway. Target < 100 ms.
2. first merged records = (the first moment the session has merged clusters, as a waiter
   on ``session.changed()`` sees it, minus ``t0``) - the fastest ``ok`` member that
   returned records (smallest ``elapsed_ms``). Target < 50 ms.
3. CPU per record = ``time.process_time()`` of this process over the whole search
   (t0 to completion), divided by the records fetched (sum of ``fetched``): connectors,
   MARC parsing, normalizing, merging, garbage collection, the event loop. The peers are
   separate processes, so ``process_time`` never includes their CPU (their figure "with
   the servers excluded" is this one); their CPU is read from /proc and shown apart.
   Target < 0.4 ms (Pazpar2, in C, ~0.8 ms).
4. ``--concurrent`` searches started back to back on a fresh Broker (warmed by one
   search), each with its own N: the median completion over the completion of a single
   search on the same Broker just before (target <= 2x). Every library of every session
   must end ``ok`` with min(hits, 20) records fetched, the dead member ``error``, the slow
   one ``timeout``; anything else (``pending``, an ok member that timed out, the slow one
   answering ``ok`` after its timeout) counts as lost.

Figures 1-3 are shown *cold* (a fresh Broker per search: new TCP connections, Z39.50
inits and HTTP sessions) and *warm* (one Broker, after a warm-up search: idle Z39.50
associations and HTTP keep-alive reused), best and median of ``--repeat``; the verdict
(PASS/OVER) is on the median. ``gc.collect()`` runs before every measured search (outside
the clock), so no search pays for an earlier one's garbage; each search's own GC time
(``gc.callbacks``) is shown. On a warm Broker the dead and slow members are suspended
after three failures in a row (health), so they may end ``error: temporarily
suspended``: expected too.

Diagnostics: each concurrent round prints its lost library answers grouped by reason, and
the first round a timeline (every 2 s: event-loop lag, connection budget held and waited
for, Z39.50 connections and searches queued on a member's own connection cap, SRU requests
queued in aiohttp's per-host pool; read from private attributes, "?" when absent). When a
target is missed (or with ``--profile``) the CPU of warm single searches is split by stage
(timed wrappers around the parse/normalize/merge functions, this process only), the delay
between the first records being merged and the waiter seeing them is shown, and cProfile
listings of warm single searches and of one concurrent round follow. The exit status is 0
whatever the figures; 1 only if the peers cannot be started.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import functools
import gc
import importlib
import inspect
import io
import itertools
import logging
import os
import pstats
import statistics
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
for _path in (REPO, REPO / "tests" / "peers"):
    if str(_path) not in sys.path:  # run as a script: bench/ is on the path, these are not
        sys.path.insert(0, str(_path))

from servers import HOST, PeerError, YazZtest, ZebraServer, free_port  # noqa: E402

from broker.kernel.config import Consortium, loads  # noqa: E402
from broker.search.fanout import DEFAULT_BUDGET, Broker  # noqa: E402
from broker.search.session import SearchSession  # noqa: E402
from connectors.z3950.connector import Z3950Connector  # noqa: E402

MAX_RECORDS = 20
DEFAULT_TIMEOUT = 10
MAX_DELAY = 1.5  # the slowest yaz-ztest member's search delay
SLOW_DELAY, SLOW_TIMEOUT = 3.0, 1.0
TARGETS = {  # figure -> (limit, unit)
    "overhead": (100.0, "ms"),
    "first": (50.0, "ms"),
    "cpu": (0.4, "ms/rec"),
    "concurrency": (2.0, "x"),
}

# Zebra member variants, taken in turn: (protocol, database, format, extra connector keys)
ZEBRA_VARIANTS: tuple[tuple[str, str, str, dict[str, str]], ...] = (
    ("sru", "bulk", "marc21", {}),
    ("z3950", "bulk", "marc21", {}),
    ("sru", "marc21", "marc21", {}),
    ("z3950", "unimarc", "unimarc", {}),
    ("z3950", "bulk", "marc21", {"record_syntax": "xml", "element_set": "marcxml"}),
    ("sru", "unimarc", "unimarc", {}),
    ("z3950", "marc21", "marc21", {}),
    ("sru", "bulk", "marc21", {"sru_version": "1.1"}),
)


# --- the consortium -----------------------------------------------------------------------


@dataclass
class Member:
    id: str
    kind: str  # zebra | ztest | dead | slow
    protocol: str
    url: str
    fmt: str = "marc21"
    extra: dict[str, str] = field(default_factory=dict)
    timeout: float | None = None
    note: str = ""

    def expected(self, status: str, error: str | None) -> bool:
        if self.kind == "dead":
            return status == "error"
        if self.kind == "slow":
            return status == "timeout" or (status == "error" and _suspended(error))
        return status == "ok"


def _suspended(error: str | None) -> bool:
    return bool(error and error.startswith("temporarily suspended"))


def plan_members(n: int, zebra: ZebraServer, ztests: list[YazZtest]) -> list[Member]:
    """``n`` members: half Zebra, half yaz-ztest with delays, one dead, one too slow."""
    if n < 4:
        raise SystemExit("--members must be at least 4")
    rest = n - 2
    n_zebra = rest // 2
    n_ztest = rest - n_zebra
    members: list[Member] = []
    for i in range(n_zebra):
        protocol, db, fmt, extra = ZEBRA_VARIANTS[i % len(ZEBRA_VARIANTS)]
        url = zebra.sru_url(db) if protocol == "sru" else zebra.z3950_url(db)
        detail = " ".join(f"{k}={v}" for k, v in extra.items())
        members.append(Member(f"zebra{i + 1:02d}-{protocol}-{db}", "zebra", protocol, url,
                              fmt, dict(extra), note=f"{protocol} {db} {fmt} {detail}".strip()))
    for i in range(n_ztest):
        delay = round(MAX_DELAY * i / max(1, n_ztest - 1), 2)
        server = ztests[i % len(ztests)]
        db = f"Default?search-delay={delay:g}" if delay else "Default"
        members.append(Member(f"ztest{i + 1:02d}-d{round(delay * 1000):04d}", "ztest", "z3950",
                              server.z3950_url(db), note=f"z3950 delay {delay:.2f} s"))
    members.append(Member("dead", "dead", "z3950", f"z3950://{HOST}:{free_port()}/Default",
                          note="closed port"))
    members.append(Member("slow", "slow", "z3950",
                          ztests[0].z3950_url(f"Default?search-delay={SLOW_DELAY:g}"),
                          timeout=SLOW_TIMEOUT,
                          note=f"z3950 delay {SLOW_DELAY:g} s, timeout {SLOW_TIMEOUT:g} s"))
    return members


def consortium_yaml(members: list[Member]) -> str:
    lines = [
        "consortium:",
        "  name: fan-out bench",
        f"  max_selected: {len(members)}",
        "defaults:",
        f"  timeout: {DEFAULT_TIMEOUT}",
        f"  max_records: {MAX_RECORDS}",
        "categories:",
        "  - {id: bench, name: bench}",
        "libraries:",
    ]
    for m in members:
        lines += [f"  - id: {m.id}", f"    name: {m.id}", "    category: bench",
                  "    connector:", f"      protocol: {m.protocol}", f'      url: "{m.url}"',
                  f"      format: {m.fmt}"]
        lines += [f"      {key}: \"{value}\"" for key, value in m.extra.items()]
        if m.timeout is not None:
            lines.append(f"      timeout: {m.timeout:g}")
    return "\n".join(lines) + "\n"


_numbers = itertools.count(101)


def next_query() -> str:
    """A query no earlier search has used (yaz-ztest: N hits; Zebra: its own counts)."""
    return f"synthetic or perl or 中国 or {next(_numbers)}"


# --- measuring ----------------------------------------------------------------------------


def process_cpu(pid: int | None) -> float:
    """User + system CPU seconds of a process so far (Linux /proc), 0.0 if unknown."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class GcMeter:
    """Process CPU spent in the cyclic garbage collector (a gc.callbacks hook)."""

    def __init__(self) -> None:
        self.spent = 0.0  # seconds
        self.full = 0  # generation-2 collections
        self._began = 0.0

    def __call__(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._began = time.process_time()
        else:
            self.spent += time.process_time() - self._began
            self.full += info.get("generation") == 2

    def reading(self) -> tuple[float, int]:
        return self.spent, self.full


GC = GcMeter()


@dataclass(frozen=True)
class Lost:
    """A library that did not end as expected in one session."""

    library: str
    status: str
    elapsed_ms: int | None
    error: str | None

    def __str__(self) -> str:
        return (f"{self.library}: {self.status} after {self.elapsed_ms} ms"
                + (f" ({self.error})" if self.error else ""))

    @property
    def reason(self) -> str:
        """The kind of loss, for grouping."""
        if self.error is None:
            return f"{self.status} (expected {'timeout' if self.library == 'slow' else 'ok'})"
        if "overall deadline" in self.error:
            return f"{self.status}: the session's overall deadline passed"
        return f"{self.status}: {self.error[:70]}"


@dataclass
class Result:
    """One search, all times in ms from t0 (just before Broker.search)."""

    completion: float
    first: float | None
    slowest_ok: float
    fastest_ok: float
    fetched: int
    merged: int
    hits: int
    cpu: float = 0.0  # our process, ms
    server_cpu: float = 0.0  # the peers, ms
    gc: float = 0.0  # ms of our CPU in the garbage collector
    gc_full: int = 0  # full (generation 2) collections
    started: float = 0.0  # t0, time.monotonic()
    session_id: str = ""
    lost: list[Lost] = field(default_factory=list)
    states: dict[str, tuple[str, int | None, int, int | None]] = field(default_factory=dict)

    @property
    def overhead(self) -> float:
        return self.completion - self.slowest_ok

    @property
    def first_gap(self) -> float | None:
        return None if self.first is None else self.first - self.fastest_ok

    @property
    def cpu_per_record(self) -> float:
        return self.cpu / self.fetched if self.fetched else float("nan")


async def watch(session: SearchSession, t0: float) -> float | None:
    """Follow a session to the end; ms from t0 to the first merged records (None: none)."""
    first = None
    while True:
        if first is None and session.merger.clusters:
            first = (time.monotonic() - t0) * 1000
        if session.done:
            return first
        await session.changed(1.0)


def judge(session: SearchSession, members: dict[str, Member], t0: float,
          first: float | None) -> Result:
    """The figures of a finished session, and every library that did not end as expected."""
    lost = []
    ok = [s for s in session.states.values() if s.status == "ok"]
    for lid, s in session.states.items():
        member = members[lid]
        if not member.expected(s.status, s.error):
            lost.append(Lost(lid, s.status, s.elapsed_ms, s.error))
        elif s.status == "ok" and s.fetched != min(s.hits or 0, MAX_RECORDS):
            lost.append(Lost(lid, "ok", s.elapsed_ms,
                             f"fetched {s.fetched} of min({s.hits}, {MAX_RECORDS})"))
    with_records = [s for s in ok if s.fetched]
    assert session.finished_at is not None
    return Result(
        completion=(session.finished_at - t0) * 1000,
        first=first,
        slowest_ok=max((s.elapsed_ms or 0 for s in ok), default=0),
        fastest_ok=min((s.elapsed_ms or 0 for s in with_records), default=0),
        fetched=sum(s.fetched for s in session.states.values()),
        merged=len(session.merger.clusters),
        hits=sum(s.hits or 0 for s in session.states.values()),
        started=t0,
        session_id=session.id,
        lost=lost,
        states={lid: (s.status, s.hits, s.fetched, s.elapsed_ms)
                for lid, s in session.states.items()},
    )


async def single(broker: Broker, members: dict[str, Member], pids: list[int],
                 profiler: cProfile.Profile | None = None) -> Result:
    """One search over every member, measured from start to completion."""
    query = next_query()
    gc.collect()  # earlier runs' garbage is not this search's cost
    servers_before = sum(process_cpu(p) for p in pids)
    gc_before, full_before = GC.reading()
    if profiler is not None:
        profiler.enable()
    cpu0 = time.process_time()
    t0 = time.monotonic()
    session = await broker.search(query, list(members))
    first = await watch(session, t0)
    cpu = (time.process_time() - cpu0) * 1000
    if profiler is not None:
        profiler.disable()
    gc_after, full_after = GC.reading()
    servers = (sum(process_cpu(p) for p in pids) - servers_before) * 1000
    await broker.wait(session)
    result = judge(session, members, t0, first)
    result.cpu, result.server_cpu = cpu, servers
    result.gc, result.gc_full = (gc_after - gc_before) * 1000, full_after - full_before
    return result


@dataclass(frozen=True)
class Pressure:
    """Where a concurrent round's library searches are at one moment (private attributes
    read for diagnosis only: None when the broker no longer has them)."""

    at: float  # s since the round started
    budget_used: int | None  # global connection budget slots held
    budget_waiting: int | None  # library searches waiting for one ("pending")
    z_used: int | None  # Z39.50 connection slots held, over all members
    z_waiting: int | None  # holding a budget slot, queued on a member's own connection cap
    http_waiting: int | None  # SRU requests queued in aiohttp's per-host pool
    done: int  # sessions finished
    lag: float = 0.0  # s the sampler woke late: how far behind the event loop runs


# The Z39.50 connector's per-member connection cap (its constructor's default).
Z_CAP = inspect.signature(Z3950Connector.__init__).parameters["max_connections"].default


def _waiters(lock: object) -> int:
    return len(getattr(lock, "_waiters", None) or ())


def pressure(broker: Broker, sessions: list[SearchSession], began: float,
             lag: float = 0.0) -> Pressure:
    budget = getattr(broker, "_budget", None)
    z_used = z_waiting = http_waiting = None
    conns = getattr(broker, "_connectors", None)
    if isinstance(conns, dict):
        slots = [c._slots for c in conns.values() if hasattr(c, "_slots")]
        z_waiting = sum(_waiters(slot) for slot in slots)
        z_used = sum(Z_CAP - slot._value for slot in slots)
    http = getattr(broker, "_http", None)
    waiting = getattr(getattr(http, "connector", None), "_waiters", None)
    if isinstance(waiting, dict):
        http_waiting = sum(len(q) for q in waiting.values())
    return Pressure(
        at=time.monotonic() - began,
        budget_used=(DEFAULT_BUDGET - budget._value) if budget is not None else None,
        budget_waiting=_waiters(budget) if budget is not None else None,
        z_used=z_used, z_waiting=z_waiting, http_waiting=http_waiting,
        done=sum(s.done for s in sessions),
        lag=lag,
    )


async def sample(broker: Broker, sessions: list[SearchSession], began: float,
                 into: list[Pressure], every: float = 0.5) -> None:
    """Until every session is done."""
    lag = 0.0
    while True:
        into.append(pressure(broker, sessions, began, lag))
        if all(s.done for s in sessions):
            return
        asleep = time.monotonic()
        await asyncio.sleep(every)
        lag = time.monotonic() - asleep - every


@dataclass
class Round:
    single: Result
    sessions: list[Result]
    wall: float  # ms from the first search() to the last completion
    cpu: float  # ms, our process, whole batch
    server_cpu: float
    gc: float = 0.0  # ms of cpu in the garbage collector
    gc_full: int = 0
    samples: list[Pressure] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(r.completion for r in self.sessions)

    @property
    def ratio(self) -> float:
        return self.median / self.single.completion

    @property
    def fetched(self) -> int:
        return sum(r.fetched for r in self.sessions)


async def concurrent(consortium: Consortium, members: dict[str, Member], pids: list[int],
                     how_many: int, profiler: cProfile.Profile | None = None) -> Round:
    """A fresh Broker, one warm-up search, one single search, then ``how_many`` at once."""
    async with Broker(consortium) as broker:
        await single(broker, members, pids)  # warm-up
        alone = await single(broker, members, pids)
        gc.collect()
        servers_before = sum(process_cpu(p) for p in pids)
        gc_before, full_before = GC.reading()
        if profiler is not None:
            profiler.enable()
        cpu0 = time.process_time()
        start = time.monotonic()
        started: list[tuple[SearchSession, float]] = []
        for _ in range(how_many):
            t0 = time.monotonic()
            started.append((await broker.search(next_query(), list(members)), t0))
        samples: list[Pressure] = []
        _, *firsts = await asyncio.gather(
            sample(broker, [s for s, _ in started], start, samples),
            *(watch(s, t0) for s, t0 in started))
        wall = (time.monotonic() - start) * 1000
        cpu = (time.process_time() - cpu0) * 1000
        if profiler is not None:
            profiler.disable()
        gc_after, full_after = GC.reading()
        servers = (sum(process_cpu(p) for p in pids) - servers_before) * 1000
        for session, _t0 in started:
            await broker.wait(session)
        results = [judge(s, members, t0, f) for (s, t0), f in zip(started, firsts, strict=True)]
    return Round(alone, results, wall, cpu, servers, (gc_after - gc_before) * 1000,
                 full_after - full_before, samples)


# --- reporting ----------------------------------------------------------------------------


def best_median(values: list[float]) -> tuple[float, float]:
    return min(values), statistics.median(values)


def verdict(figure: str, value: float) -> str:
    limit, _unit = TARGETS[figure]
    return "PASS" if value < limit or (figure == "concurrency" and value <= limit) else "OVER"


def fmt(value: float, unit: str) -> str:
    if unit == "ms/rec":
        return f"{value:.3f} ms"
    if unit == "x":
        return f"{value:.2f}x"
    return f"{value:.0f} ms"


def describe(members: list[Member]) -> str:
    kinds: dict[str, int] = {}
    for m in members:
        key = m.note if m.kind == "zebra" else m.kind
        kinds[key] = kinds.get(key, 0) + 1
    zebra = ", ".join(f"{n} x {k}" for k, n in kinds.items() if k not in ("ztest", "dead", "slow"))
    delays = [m.note.split()[2] for m in members if m.kind == "ztest"]
    return (f"{len(members)} members: {sum(m.kind == 'zebra' for m in members)} Zebra "
            f"({zebra}); {kinds.get('ztest', 0)} yaz-ztest Z39.50, search delays "
            f"{delays[0]}..{delays[-1]} s; 1 dead (closed port); 1 slow (delay "
            f"{SLOW_DELAY:g} s, timeout {SLOW_TIMEOUT:g} s). max_records {MAX_RECORDS}, "
            f"default timeout {DEFAULT_TIMEOUT} s, connection budget {DEFAULT_BUDGET}.")


def print_states(result: Result, members: dict[str, Member]) -> None:
    print(f"    {'library':<26} {'status':<8} {'hits':>5} {'fetched':>7} {'ms':>6}  member")
    for lid, (status, hits, fetched, elapsed) in result.states.items():
        print(f"    {lid:<26} {status:<8} {hits if hits is not None else '-':>5} "
              f"{fetched:>7} {elapsed if elapsed is not None else '-':>6}  {members[lid].note}")


def print_run(label: str, r: Result) -> None:
    first = f"{r.first:.0f}" if r.first is not None else "-"
    print(f"{label}: completion {r.completion:.0f} ms (slowest ok {r.slowest_ok:.0f}: "
          f"overhead {r.overhead:.0f}), first records {first} ms (fastest ok "
          f"{r.fastest_ok:.0f}), {r.fetched} records -> {r.merged} merged, CPU {r.cpu:.0f} ms "
          f"= {r.cpu_per_record:.3f} ms/rec, of which GC {r.gc:.0f} ms ({r.gc_full} full); "
          f"peers {r.server_cpu:.0f} ms")
    if r.lost:
        print_lost(r.lost)


def print_lost(lost: list[Lost]) -> None:
    """Losses grouped by kind: how many, which libraries, when they ended."""
    groups: dict[str, list[Lost]] = {}
    for item in lost:
        groups.setdefault(item.reason, []).append(item)
    for reason, items in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        libraries = sorted({i.library for i in items})
        ended = [i.elapsed_ms for i in items if i.elapsed_ms is not None]
        when = f", ended {min(ended)}..{max(ended)} ms after asking" if ended else ""
        shown = ", ".join(libraries[:6]) + (f" +{len(libraries) - 6}" if len(libraries) > 6
                                            else "")
        print(f"    {len(items):>4} x {reason} [{shown}]{when}")


def print_pressure(samples: list[Pressure], every: float = 2.0) -> None:
    """The round's timeline: loop lag, budget, member connection caps, aiohttp's pool."""
    print(f"      t(s)  max loop lag  budget held  waiting for budget  Z39.50 conns  "
          f"queued on member cap ({Z_CAP})  SRU queued  sessions done")
    next_at, lag = 0.0, 0.0
    for n, p in enumerate(samples):
        lag = max(lag, p.lag)
        if p.at + 1e-9 < next_at and n != len(samples) - 1:
            continue
        next_at = p.at + every
        print(f"    {p.at:>6.1f}  {lag:>11.2f}s  {_n(p.budget_used):>11}  "
              f"{_n(p.budget_waiting):>18}  {_n(p.z_used):>12}  {_n(p.z_waiting):>28}  "
              f"{_n(p.http_waiting):>10}  {p.done:>13}")
        lag = 0.0


def _n(value: int | None) -> str:
    return "?" if value is None else str(value)


def print_profile(title: str, profiler: cProfile.Profile, top: int = 25) -> None:
    print(f"\n--- cProfile: {title} (broker process only; cProfile slows it several times)")
    for key in ("tottime", "cumulative"):
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out).strip_dirs().sort_stats(key)
        stats.print_stats(top)
        text = out.getvalue()
        body = text[text.find("   ncalls"):] if "   ncalls" in text else text
        print(f"\nby {key}:\n{body.rstrip()}")


# --- where the CPU goes -------------------------------------------------------------------

# (label, module, attribute, the result is a generator to be consumed inside the timer)
STAGES: tuple[tuple[str, str, str, bool], ...] = (
    ("Z39.50 BER decode (ber.decode)", "connectors.z3950.ber", "decode", False),
    ("Z39.50 Present response (pdu)", "connectors.z3950.pdu", "read_present_response", False),
    ("Z39.50 record read: ISO 2709/XML -> pymarc", "connectors.z3950.connector", "read_bytes",
     True),
    ("Z39.50 normalize (marc.normalize)", "connectors.base", "normalize", False),
    ("SRU response XML parse (lxml)", "connectors.sru.client", "parse_response", False),
    ("SRU record read: MARCXML -> pymarc", "connectors.sru.client", "element_to_record", False),
    ("SRU normalize (marc.normalize)", "connectors.sru.client", "normalize", False),
    ("merge (Merger.add)", "broker.search.merge", "Merger.add", False),
)


async def breakdown(consortium: Consortium, members: dict[str, Member], pids: list[int],
                    runs: int) -> None:
    """Warm single searches with the stages above timed (process CPU), and GC time."""
    patches: list[tuple[object, str, object]] = []
    slots: dict[str, list[float]] = {}

    def patch(owner: object, name: str, label: str, materialize: bool) -> None:
        original = getattr(owner, name)
        slot = slots.setdefault(label, [0.0, 0])

        @functools.wraps(original)
        def timed(*args, **kwargs):
            began = time.process_time()
            try:
                result = original(*args, **kwargs)
                return list(result) if materialize else result
            finally:
                slot[0] += time.process_time() - began
                slot[1] += 1

        setattr(owner, name, timed)
        patches.append((owner, name, original))

    first_merge: dict[str, float] = {}
    original_add = SearchSession.add_records

    def add_records(self, library, start, records, *args, **kwargs):
        original_add(self, library, start, records, *args, **kwargs)
        if records and self.id not in first_merge:
            first_merge[self.id] = time.monotonic()

    for label, module_name, attribute, materialize in STAGES:
        owner: object = importlib.import_module(module_name)
        name = attribute
        if "." in attribute:
            cls, name = attribute.split(".")
            owner = getattr(owner, cls)
        patch(owner, name, label, materialize)
    SearchSession.add_records = add_records  # type: ignore[method-assign]
    # Z39.50 read + normalize per record, by where the record came from (Zebra's UTF-8
    # records or yaz-ztest's MARC-8 ones).
    z_module = importlib.import_module("connectors.z3950.connector")
    z_records_of = z_module.Z3950Connector._records_of
    by_source: dict[str, list[float]] = {}

    def records_of(self, item, problems):
        began = time.process_time()
        try:
            return z_records_of(self, item, problems)
        finally:
            member = members[self.library.id]
            source = ("yaz-ztest (MARC-8 USMARC)" if member.kind != "zebra"
                      else f"Zebra {self.config.record_syntax or self.config.format}")
            slot = by_source.setdefault(source, [0.0, 0])
            slot[0] += time.process_time() - began
            slot[1] += 1

    z_module.Z3950Connector._records_of = records_of
    patches.append((z_module.Z3950Connector, "_records_of", z_records_of))
    results: list[Result] = []
    try:
        async with Broker(consortium) as broker:
            await single(broker, members, pids)
            for slot in (*slots.values(), *by_source.values()):
                slot[:] = [0.0, 0]
            for _ in range(runs):
                results.append(await single(broker, members, pids))
    finally:
        SearchSession.add_records = original_add  # type: ignore[method-assign]
        for owner, name, original in reversed(patches):
            setattr(owner, name, original)

    cpu = sum(r.cpu for r in results) / 1000
    fetched = sum(r.fetched for r in results)
    print(f"\n--- where this process's CPU goes: {runs} warm single searches, {fetched} records, "
          f"{cpu * 1000 / runs:.0f} ms CPU per search ({cpu * 1000 / fetched:.3f} ms/record)")
    print(f"    {'stage':<46} {'calls':>7} {'us/call':>8} {'ms/search':>10} {'ms/record':>10} "
          f"{'share':>6}")
    counted = 0.0
    for label, (spent, calls) in slots.items():
        counted += spent
        print(f"    {label:<46} {calls / runs:>7.0f} {spent * 1e6 / max(1, calls):>8.0f} "
              f"{spent * 1000 / runs:>10.1f} {spent * 1000 / fetched:>10.3f} {spent / cpu:>6.0%}")
    rest = cpu - counted
    print(f"    {'everything else (asyncio, sockets, aiohttp, ...)':<46} {'':>7} {'':>8} "
          f"{rest * 1000 / runs:>10.1f} {rest * 1000 / fetched:>10.3f} {rest / cpu:>6.0%}")
    spent = sum(r.gc for r in results) / 1000
    print(f"    {'  of all the above: garbage collection':<46} {'':>7} {'':>8} "
          f"{spent * 1000 / runs:>10.1f} {spent * 1000 / fetched:>10.3f} "
          f"{spent / cpu:>6.0%}  ({sum(r.gc_full for r in results)} full collections)")
    print("    (stage times include any collection that happened inside them; a call of the "
          "record read,\n    normalize and MARCXML stages is one record)")
    print("    Z39.50 read + normalize per record, by source:")
    for source, (spent, calls) in sorted(by_source.items()):
        print(f"      {source:<44} {calls / runs:>7.0f} {spent * 1e6 / max(1, calls):>8.0f} us")
    for r in results:
        merged = first_merge.get(r.session_id)
        if merged is None or r.first is None:
            continue
        merged_ms = (merged - r.started) * 1000
        print(f"    first records: fastest ok member done at {r.fastest_ok:.0f} ms, its records "
              f"merged at {merged_ms:.0f} ms, the waiter woke at {r.first:.0f} ms "
              f"({r.first - merged_ms:.0f} ms in the event loop's queue)")


# --- main ---------------------------------------------------------------------------------


async def run(args: argparse.Namespace, consortium: Consortium, members: list[Member],
              pids: list[int]) -> None:
    gc.callbacks.append(GC)
    try:
        await measure(args, consortium, members, pids)
    finally:
        gc.callbacks.remove(GC)


async def measure(args: argparse.Namespace, consortium: Consortium, members: list[Member],
                  pids: list[int]) -> None:
    by_id = {m.id: m for m in members}
    print(describe(members))
    print("Queries: 'synthetic or perl or 中国 or N', a new N (>= 101) for every search.\n")

    cold: list[Result] = []
    for i in range(args.repeat):
        async with Broker(consortium) as broker:
            result = await single(broker, by_id, pids)
        cold.append(result)
        print_run(f"cold {i + 1}", result)
    if args.verbose:
        print_states(cold[-1], by_id)

    warm: list[Result] = []
    async with Broker(consortium) as broker:
        await single(broker, by_id, pids)  # warm-up: connections open, nothing measured
        for i in range(args.repeat):
            result = await single(broker, by_id, pids)
            warm.append(result)
            print_run(f"warm {i + 1}", result)
        if args.verbose:
            print_states(warm[-1], by_id)

    rounds: list[Round] = []
    for i in range(args.repeat):
        rnd = await concurrent(consortium, by_id, pids, args.concurrent)
        rounds.append(rnd)
        lost = [item for r in rnd.sessions for item in r.lost]
        completions = sorted(r.completion for r in rnd.sessions)
        print(f"concurrent {i + 1}: {args.concurrent} searches, completion median "
              f"{rnd.median:.0f} ms (min {completions[0]:.0f}, max {completions[-1]:.0f}), "
              f"single just before {rnd.single.completion:.0f} ms -> {rnd.ratio:.2f}x; "
              f"{rnd.fetched} records, CPU {rnd.cpu:.0f} ms = "
              f"{rnd.cpu / max(1, rnd.fetched):.3f} ms/rec, of which GC {rnd.gc:.0f} ms "
              f"({rnd.gc_full} full); peers {rnd.server_cpu:.0f} ms; "
              f"{len(lost)} library answers lost")
        print_lost(lost)
        if i == 0 or args.verbose:
            print_pressure(rnd.samples)

    # --- the table
    rows = []
    over = set()
    for mode, results in (("cold", cold), ("warm", warm)):
        figures = {
            "overhead": [r.overhead for r in results],
            "first": [r.first_gap for r in results if r.first_gap is not None],
            "cpu": [r.cpu_per_record for r in results],
        }
        for figure, values in figures.items():
            if not values:
                rows.append((figure, mode, "-", "-", "no data", "OVER"))
                over.add(figure)
                continue
            best, median = best_median(values)
            limit, unit = TARGETS[figure]
            mark = verdict(figure, median)
            if mark == "OVER":
                over.add(figure)
            rows.append((figure, mode, fmt(best, unit), fmt(median, unit),
                         f"< {fmt(limit, unit)}", mark))
    ratios = [r.ratio for r in rounds]
    best, median = best_median(ratios)
    lost_total = sum(len(s.lost) for r in rounds for s in r.sessions)
    pending = sum(1 for r in rounds for s in r.sessions for st in s.states.values()
                  if st[0] == "pending")
    mark = verdict("concurrency", median)
    if mark == "OVER" or lost_total:
        over.add("concurrency")
    rows.append(("concurrency", f"{args.concurrent} at once", fmt(best, "x"), fmt(median, "x"),
                 "<= 2.00x", mark))
    rows.append(("  nothing lost", f"{args.concurrent}x{len(members)}x{len(rounds)}",
                 f"{lost_total} lost", f"{pending} pending", "0 lost",
                 "PASS" if not lost_total else "OVER"))

    names = {
        "overhead": "1 broker overhead",
        "first": "2 first merged records",
        "cpu": "3 CPU per record",
        "concurrency": "4 concurrent/single",
    }
    print(f"\n{'figure':<24} {'mode':<14} {'best':>11} {'median':>11} {'target':>11}  verdict")
    print("-" * 82)
    for figure, mode, b, m, target, mark in rows:
        print(f"{names.get(figure, figure):<24} {mode:<14} {b:>11} {m:>11} {target:>11}  {mark}")
    cpu_all = [r.cpu for r in cold + warm]
    peers_all = [r.server_cpu for r in cold + warm]
    records = [r.fetched for r in cold + warm]
    peers_per_record = statistics.median(
        p / max(1, n) for p, n in zip(peers_all, records, strict=True))
    print(f"\nrecords per search: {statistics.median(records):.0f} fetched; our CPU per search "
          f"median {statistics.median(cpu_all):.0f} ms. CPU figures are this process only "
          f"(time.process_time): the peers are other processes and are never in it. The "
          f"peers' own CPU (from /proc) was median {statistics.median(peers_all):.0f} ms per "
          f"search, i.e. {peers_per_record:.3f} ms/record, shown for reference only.")
    print(f"concurrency median ratio uses each round's median completion over the single "
          f"search on the same warm Broker just before it; with {args.concurrent} at once "
          f"the CPU was {statistics.median(r.cpu / max(1, r.fetched) for r in rounds):.3f} "
          f"ms/record.")

    if over or args.profile:
        await breakdown(consortium, by_id, pids, max(1, args.repeat))
        profiler = cProfile.Profile()
        async with Broker(consortium) as broker:
            await single(broker, by_id, pids)
            for _ in range(max(1, args.repeat)):
                await single(broker, by_id, pids, profiler)
        print_profile(f"{max(1, args.repeat)} warm single searches over {len(members)}",
                      profiler)
        if "concurrency" in over or args.profile:
            profiler = cProfile.Profile()
            await concurrent(consortium, by_id, pids, args.concurrent, profiler)
            print_profile(f"{args.concurrent} concurrent searches", profiler)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=46)
    parser.add_argument("--concurrent", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--bulk", type=int, default=300,
                        help="synthetic records in Zebra's bulk database")
    parser.add_argument("--profile", action="store_true",
                        help="print the cProfile even when every target is met")
    parser.add_argument("--verbose", action="store_true", help="print each library's state")
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.concurrent < 1:
        parser.error("--repeat and --concurrent must be at least 1")
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")

    with ExitStack() as stack:
        try:
            started = time.monotonic()
            zebra = stack.enter_context(ZebraServer(bulk=args.bulk))
            ztests = [stack.enter_context(YazZtest()) for _ in range(2)]
        except PeerError as exc:
            print(f"cannot start the peers: {exc}", file=sys.stderr)
            return 1
        databases = ", ".join(f"{db} {n}" for db, n in zebra.databases.items())
        print(f"Peers on {HOST}: Zebra :{zebra.port} ({databases} records), yaz-ztest "
              f":{ztests[0].port} and :{ztests[1].port} "
              f"(started in {time.monotonic() - started:.1f} s)")
        members = plan_members(args.members, zebra, ztests)
        consortium = loads(consortium_yaml(members), "<bench consortium>")
        pids = [p for p in (zebra.pid, *(z.pid for z in ztests)) if p is not None]
        asyncio.run(run(args, consortium, members, pids))
    return 0


if __name__ == "__main__":
    sys.exit(main())
