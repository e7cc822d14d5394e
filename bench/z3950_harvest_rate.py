#!/usr/bin/env python3
"""Harvest rate: our Z39.50 client and SRU connector against yaz-client and curl.

Run by hand from the repository root::

    python bench/z3950_harvest_rate.py [--records 5000] [--chunk 100] [--repeat 3] [--profile]

One run starts its own Zebra (``tests/peers/servers.py``, ``ZebraServer``) on 127.0.0.1
with a ``bulk`` database of ``--records`` synthetic MARC21 records, all of which match
``@attr 1=1016 synthetic`` (CQL ``synthetic``), and then times fetching all of them in
chunks of ``--chunk``, best of ``--repeat`` (the variants take turns within each round):

Z39.50
  * ours, raw: ``Z3950Client`` open, search, Present ``start``/``chunk`` in USMARC until
    every record is in; the clock runs from open to the last record received.
  * ours, + normalize: the same, with ``marc.read_bytes`` + ``marc.normalize`` of every
    record as it arrives (what ``Z3950Connector`` does).
  * ``Z3950Connector.search(count=N)`` for reference (its Present chunk is fixed at 50).
  * yaz-client: a command file (``format usmarc``, ``open``, ``find``, ``show 1+chunk``,
    ``show chunk+1+chunk``, ..., ``quit``) with ``-m FILE`` dumping the raw records and
    stdout to /dev/null; wall time of the whole process (start-up included; the start-up,
    init and search alone are timed too and shown as a note).
SRU (version 1.2, recordSchema marcxml, maximumRecords = chunk)
  * ours: ``SruConnector.search(start=..., count=chunk)`` page after page (records parsed
    from MARCXML and normalized: what the connector does).
  * ours, raw: aiohttp GETs of the same URLs, bodies only (one session, keep-alive).
  * curl: one ``curl -s`` process for all URLs (given in a ``-K`` config file, each with
    ``output = /dev/null``), sequential on one kept-alive connection.

Zebra's CPU time during each run is read from /proc and shown, and wall time minus it (the
client's own share, since requests go one at a time). Every timed run is checked: exactly
N records, with 001 ``bulk000001`` .. ``bulkNNNNNN`` each once (yaz-client's from its
``-m`` file, curl's from the sizes it reports against an untimed run that saved the
bodies). The target is ours (Z39.50, raw) at 0.8x yaz-client's rate or better; missing it
prints BELOW TARGET and a cProfile of our raw fetch (``--profile`` prints it in any case).
Nothing fails the run but a wrong record count.

The MARC data is the repository's own, ``tests/data/marc``.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import os
import pstats
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

REPO = Path(__file__).resolve().parent.parent
for _path in (REPO, REPO / "tests" / "peers"):
    if str(_path) not in sys.path:  # run as a script: bench/ is on the path, these are not
        sys.path.insert(0, str(_path))

import aiohttp  # noqa: E402
import yarl  # noqa: E402
from servers import HOST, ZebraServer  # noqa: E402

from broker.kernel.config import ConnectorConfig, Library  # noqa: E402
from broker.kernel.cql import parse  # noqa: E402
from connectors.sru.client import SruConnector  # noqa: E402
from connectors.z3950.client import Z3950Client  # noqa: E402
from connectors.z3950.connector import PRESENT_CHUNK, Z3950Connector  # noqa: E402
from connectors.z3950.rpn import encode_query  # noqa: E402
from marc import normalize, read_bytes  # noqa: E402

DATABASE = "bulk"
CQL = "synthetic"
PQF = "@attr 1=1016 synthetic"
TARGET_RATIO = 0.8
TIMEOUT = 120.0

_ISO_ID = re.compile(rb"\x1e(bulk\d{6})\x1e")
_XML_ID = re.compile(rb'<controlfield tag="001">(bulk\d{6})</controlfield>')


class CountError(RuntimeError):
    """A variant did not fetch exactly the N expected records."""


@dataclass
class Run:
    wall: float
    cpu: float  # the client's CPU time (our process, or the child's rusage)
    server_cpu: float = 0.0  # Zebra's CPU time during the run


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc), 0.0 if unknown."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Variant:
    key: str
    label: str
    run: Callable[[], Run]
    note: str = ""
    records: bool = True  # False: a fixed-cost run that fetches no records
    best: Run | None = None
    walls: list[float] = field(default_factory=list)

    def measure(self, server_pid: int | None) -> None:
        before = process_cpu(server_pid) if server_pid else 0.0
        result = self.run()
        self.walls.append(result.wall)
        if server_pid:
            result.server_cpu = process_cpu(server_pid) - before
        if self.best is None or result.wall < self.best.wall:
            self.best = result


def check_ids(ids: list[bytes], n: int, what: str) -> None:
    """Exactly bulk000001 .. bulkNNNNNN, each once."""
    if len(ids) != n:
        raise CountError(f"{what}: {len(ids)} records, expected {n}")
    expected = {b"bulk%06d" % i for i in range(1, n + 1)}
    if set(ids) != expected or len(set(ids)) != n:
        missing = len(expected - set(ids))
        raise CountError(f"{what}: {n} records but {missing} of the expected ids missing "
                         f"(or duplicates)")


def iso_ids(records: list[bytes], what: str) -> list[bytes]:
    ids = []
    for i, record in enumerate(records, start=1):
        found = _ISO_ID.search(record)
        if found is None:
            raise CountError(f"{what}: record {i} has no bulk 001")
        ids.append(found.group(1))
    return ids


def record_ids(records) -> list[bytes]:
    """The 001 of normalized records (their id is ``library:001``)."""
    return [(record.id or "").partition(":")[2].encode() for record in records]


def xml_ids(bodies: list[bytes]) -> list[bytes]:
    return [m for body in bodies for m in _XML_ID.findall(body)]


def chunks(n: int, chunk: int) -> list[tuple[int, int]]:
    """(start, count) of each request: 1..N in steps of ``chunk``."""
    return [(start, min(chunk, n - start + 1)) for start in range(1, n + 1, chunk)]


# --- Z39.50, ours ---------------------------------------------------------------------------


def z3950_query() -> bytes:
    return encode_query(parse(CQL), {}, "utf-8")


async def _z3950_fetch(port: int, n: int, chunk: int, normalized: bool
                       ) -> tuple[float, list[bytes], int]:
    """(seconds from open to the last record, raw records, normalized record count)."""
    query = z3950_query()
    raw: list[bytes] = []
    done = 0
    client = Z3950Client(HOST, port, DATABASE, timeout=TIMEOUT)
    started = time.perf_counter()
    await client.open()
    try:
        hits = await client.search(query)
        if hits != n:
            raise CountError(f"Z39.50 search found {hits} records, expected {n}")
        position = 1
        while position <= n:
            result = await client.present(position, min(chunk, n - position + 1),
                                          syntax="usmarc", element_set=None)
            if not result.records:
                raise CountError(f"Z39.50 Present at {position} returned no records")
            for item in result.records:
                if item.data is None:
                    raise CountError(f"Z39.50 record {item.position}: no data")
                raw.append(item.data)
                if normalized:
                    for entry in read_bytes(item.data, flavour="marc21", encoding="auto"):
                        if entry.record is None:
                            raise CountError(f"record {item.position}: {entry.problems}")
                        normalize(entry.record, flavour=entry.flavour, library="bench",
                                  warnings=entry.problems)
                        done += 1
            position += len(result.records)
        elapsed = time.perf_counter() - started
    finally:
        await client.close()
    return elapsed, raw, done


def run_z3950_ours(port: int, n: int, chunk: int, normalized: bool) -> Run:
    cpu0 = time.process_time()
    elapsed, raw, done = asyncio.run(_z3950_fetch(port, n, chunk, normalized))
    cpu = time.process_time() - cpu0
    what = "Z39.50 ours" + (" + normalize" if normalized else "")
    check_ids(iso_ids(raw, what), n, what)
    if normalized and done != n:
        raise CountError(f"{what}: {done} records normalized, expected {n}")
    return Run(elapsed, cpu)


async def _z3950_connector(port: int, n: int) -> tuple[float, list[bytes]]:
    library = Library("bench", "Bench", "bench", connector=ConnectorConfig(
        protocol="z3950", url=f"z3950://{HOST}:{port}/{DATABASE}", timeout=TIMEOUT,
        max_records=n))
    connector = Z3950Connector(library)
    try:
        started = time.perf_counter()
        page = await connector.search(parse(CQL), start=1, count=n)
        elapsed = time.perf_counter() - started
    finally:
        await connector.close()
    if page.hits != n or page.problems:
        raise CountError(f"Z3950Connector: {page.hits} hits, problems {page.problems[:3]}")
    return elapsed, record_ids(page.records)


def run_z3950_connector(port: int, n: int) -> Run:
    cpu0 = time.process_time()
    elapsed, ids = asyncio.run(_z3950_connector(port, n))
    cpu = time.process_time() - cpu0
    check_ids(ids, n, "Z3950Connector")
    return Run(elapsed, cpu)


# --- Z39.50, yaz-client ---------------------------------------------------------------------


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def yaz_client(port: int, commands: list[str], marc_file: Path, workdir: Path) -> Run:
    """Run yaz-client on a command file, stdout to /dev/null, raw records to marc_file."""
    script = workdir / "commands.yaz"
    script.write_text("\n".join(["format usmarc", f"open tcp:{HOST}:{port}/{DATABASE}",
                                 *commands, "quit"]) + "\n", "utf-8")
    marc_file.unlink(missing_ok=True)
    cpu0 = _children_cpu()
    started = time.perf_counter()
    done = subprocess.run(["yaz-client", "-m", str(marc_file), "-f", str(script)],
                          stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, timeout=TIMEOUT, check=False)
    elapsed = time.perf_counter() - started
    cpu = _children_cpu() - cpu0
    if done.returncode != 0:
        raise CountError(f"yaz-client exited with {done.returncode}: {done.stderr[-500:]!r}")
    return Run(elapsed, cpu)


def run_yaz_client(port: int, n: int, chunk: int, workdir: Path) -> Run:
    marc_file = workdir / "records.marc"
    shows = [f"show {start}+{count}" for start, count in chunks(n, chunk)]
    result = yaz_client(port, [f"find {PQF}", *shows], marc_file, workdir)
    data = marc_file.read_bytes() if marc_file.exists() else b""
    records = [part for part in data.split(b"\x1d") if part.strip()]
    check_ids(iso_ids(records, "yaz-client"), n, "yaz-client")
    return result


def run_yaz_client_overhead(port: int, workdir: Path) -> Run:
    """yaz-client start-up, init, search and quit: no records."""
    return yaz_client(port, [f"find {PQF}"], workdir / "none.marc", workdir)


# --- SRU ------------------------------------------------------------------------------------


def sru_library(base: str, chunk: int) -> Library:
    return Library("bench", "Bench", "bench", connector=ConnectorConfig(
        protocol="sru", url=base, timeout=TIMEOUT, max_records=chunk))


def sru_urls(base: str, n: int, chunk: int) -> list[str]:
    """The URLs SruConnector asks for, page by page (same parameters, same order)."""
    connector = SruConnector(sru_library(base, chunk))
    query = parse(CQL)
    return [f"{base}?{urlencode(connector.params(query, start, count))}"
            for start, count in chunks(n, chunk)]


async def _sru_ours(base: str, n: int, chunk: int) -> tuple[float, list[bytes]]:
    connector = SruConnector(sru_library(base, chunk))
    query = parse(CQL)
    ids: list[bytes] = []
    try:
        started = time.perf_counter()
        for start, count in chunks(n, chunk):
            page = await connector.search(query, start=start, count=count)
            if page.hits != n or page.problems:
                raise CountError(f"SRU ours: {page.hits} hits, problems {page.problems[:3]}")
            ids.extend(record_ids(page.records))
        elapsed = time.perf_counter() - started
    finally:
        await connector.close()
    return elapsed, ids


def run_sru_ours(base: str, n: int, chunk: int) -> Run:
    cpu0 = time.process_time()
    elapsed, ids = asyncio.run(_sru_ours(base, n, chunk))
    cpu = time.process_time() - cpu0
    check_ids(ids, n, "SRU ours")
    return Run(elapsed, cpu)


async def _sru_raw(urls: list[str]) -> tuple[float, list[bytes]]:
    bodies = []
    started = time.perf_counter()
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit_per_host=4))
    try:
        for url in urls:
            async with session.get(yarl.URL(url, encoded=True)) as reply:
                if reply.status != 200:
                    raise CountError(f"SRU raw: HTTP {reply.status} for {url}")
                bodies.append(await reply.read())
        elapsed = time.perf_counter() - started
    finally:
        await session.close()
    return elapsed, bodies


def run_sru_raw(urls: list[str], n: int) -> Run:
    cpu0 = time.process_time()
    elapsed, bodies = asyncio.run(_sru_raw(urls))
    cpu = time.process_time() - cpu0
    check_ids(xml_ids(bodies), n, "SRU raw (aiohttp)")
    return Run(elapsed, cpu)


def curl(urls: list[str], outputs: list[str], workdir: Path) -> tuple[Run, list[str]]:
    """One curl process for every URL, sequential; returns its '-w' lines too."""
    config = workdir / "curl.config"
    config.write_text("".join(f'url = "{url}"\noutput = "{out}"\n'
                              for url, out in zip(urls, outputs, strict=True)), "utf-8")
    cpu0 = _children_cpu()
    started = time.perf_counter()
    done = subprocess.run(["curl", "-s", "-S", "-w", "%{http_code} %{size_download}\\n",
                           "-K", str(config)],
                          stdin=subprocess.DEVNULL, capture_output=True, timeout=TIMEOUT,
                          check=False)
    elapsed = time.perf_counter() - started
    cpu = _children_cpu() - cpu0
    if done.returncode != 0:
        raise CountError(f"curl exited with {done.returncode}: {done.stderr[-500:]!r}")
    return Run(elapsed, cpu), done.stdout.decode().split("\n")[:len(urls)]


def curl_reference(urls: list[str], n: int, workdir: Path) -> list[str]:
    """Untimed: save every body, check the records, return the '-w' lines to expect."""
    outputs = [str(workdir / f"page{i:05d}.xml") for i in range(len(urls))]
    _run, lines = curl(urls, outputs, workdir)
    bodies = [Path(out).read_bytes() for out in outputs]
    check_ids(xml_ids(bodies), n, "SRU curl (saved bodies)")
    for out in outputs:
        os.unlink(out)
    return lines


def run_curl(urls: list[str], expected: list[str], workdir: Path) -> Run:
    result, lines = curl(urls, ["/dev/null"] * len(urls), workdir)
    if lines != expected:
        bad = sum(1 for a, b in zip(lines, expected, strict=False) if a != b)
        raise CountError(f"curl: {bad} of {len(urls)} answers differ from the checked run "
                         f"(status/size), or some are missing")
    return result


# --- profile --------------------------------------------------------------------------------


def profile_z3950(port: int, n: int, chunk: int, lines: int = 25) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    elapsed, raw, _done = asyncio.run(_z3950_fetch(port, n, chunk, False))
    profiler.disable()
    check_ids(iso_ids(raw, "profiled run"), n, "profiled run")
    out = io.StringIO()
    out.write(f"cProfile of our raw Z39.50 fetch ({n} records, chunk {chunk}; "
              f"{elapsed:.3f} s under the profiler)\n")
    stats = pstats.Stats(profiler, stream=out).strip_dirs()
    out.write("\n-- by own time (tottime)\n")
    stats.sort_stats("tottime").print_stats(lines)
    out.write("-- by cumulative time\n")
    stats.sort_stats("cumulative").print_stats(lines)
    return out.getvalue()


# --- main -----------------------------------------------------------------------------------


def table(variants: dict[str, Variant], n: int) -> str:
    rows = [("variant", "best s", "median s", "records/s", "client CPU s", "µs/rec", "Zebra CPU s",
             "wall-Zebra s", "ratio", "")]
    refs = {"z_raw": "yaz", "z_norm": "yaz", "z_conn": "yaz",
            "s_raw": "curl", "s_ours": "curl"}
    for key, variant in variants.items():
        best = variant.best
        if best is None:
            continue
        ratio = ""
        ref = variants.get(refs.get(key, ""))
        if ref is not None and ref.best is not None:
            ratio = f"{ref.best.wall / best.wall:.2f}x {ref.label.split(' ', 1)[1]}"
        rate = f"{n / best.wall:,.0f}" if variant.records else "-"
        per_record = f"{best.cpu / n * 1e6:.0f}" if variant.records else "-"
        rows.append((variant.label, f"{best.wall:.3f}", f"{statistics.median(variant.walls):.3f}",
                     rate, f"{best.cpu:.3f}", per_record,
                     f"{best.server_cpu:.2f}", f"{best.wall - best.server_cpu:.2f}", ratio,
                     variant.note))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for i, row in enumerate(rows):
        cells = [row[0].ljust(widths[0])]
        cells += [cell.rjust(width) for cell, width in zip(row[1:-1], widths[1:-1],
                                                          strict=True)]
        lines.append("  ".join(cells) + (f"  {row[-1]}" if row[-1] else ""))
        if i == 0:
            lines.append("-" * len(lines[0]))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=5000, help="records to harvest (N)")
    parser.add_argument("--chunk", type=int, default=100, help="records per request")
    parser.add_argument("--repeat", type=int, default=3, help="rounds; the best counts")
    parser.add_argument("--profile", action="store_true",
                        help="print a cProfile of our raw Z39.50 fetch even on target")
    args = parser.parse_args(argv)
    n, chunk = args.records, args.chunk
    if n < 1 or chunk < 1 or args.repeat < 1:
        parser.error("--records, --chunk and --repeat must be at least 1")
    for program in ("yaz-client", "curl"):
        if shutil.which(program) is None:
            print(f"{program} is not installed", file=sys.stderr)
            return 2

    print(f"Starting Zebra with {n} synthetic records in '{DATABASE}' ...", flush=True)
    loading = time.perf_counter()
    with ZebraServer(bulk=n) as zebra, \
            tempfile.TemporaryDirectory(prefix="balis-harvest-bench-") as tmp:
        workdir = Path(tmp)
        port = zebra.port
        base = zebra.sru_url(DATABASE)
        print(f"Zebra ready on {zebra.address} in {time.perf_counter() - loading:.1f} s "
              f"(databases {zebra.databases}); {len(chunks(n, chunk))} requests of up to "
              f"{chunk} records each, best of {args.repeat}.", flush=True)
        urls = sru_urls(base, n, chunk)
        # Untimed: warm Zebra up (both protocols) and record what curl's answers look like.
        run_yaz_client(port, n, chunk, workdir)
        curl_lines = curl_reference(urls, n, workdir)

        variants = {v.key: v for v in (
            Variant("z_raw", "Z39.50 ours, raw (Z3950Client)",
                    lambda: run_z3950_ours(port, n, chunk, False)),
            Variant("z_norm", "Z39.50 ours, + read_bytes + normalize",
                    lambda: run_z3950_ours(port, n, chunk, True)),
            Variant("z_conn", "Z39.50 Z3950Connector.search(count=N)",
                    lambda: run_z3950_connector(port, n),
                    note=f"(Present chunk fixed at {PRESENT_CHUNK})"),
            Variant("yaz", "Z39.50 yaz-client", lambda: run_yaz_client(port, n, chunk, workdir),
                    note="(whole process)"),
            Variant("s_ours", "SRU ours, SruConnector (+ parse + normalize)",
                    lambda: run_sru_ours(base, n, chunk)),
            Variant("s_raw", "SRU ours, raw (aiohttp bodies)", lambda: run_sru_raw(urls, n)),
            Variant("curl", "SRU curl", lambda: run_curl(urls, curl_lines, workdir),
                    note="(whole process)"),
            Variant("yaz0", "yaz-client start+init+search only",
                    lambda: run_yaz_client_overhead(port, workdir), note="(no records)",
                    records=False),
        )}
        for round_no in range(1, args.repeat + 1):
            for variant in variants.values():
                variant.measure(zebra.pid)
            print(f"  round {round_no}/{args.repeat} done", flush=True)
        profile = None
        z_raw, yaz = variants["z_raw"].best, variants["yaz"].best
        assert z_raw is not None and yaz is not None
        ratio = yaz.wall / z_raw.wall
        if args.profile or ratio < TARGET_RATIO:
            profile = profile_z3950(port, n, chunk)

    print()
    print(f"Harvest of {n} records in chunks of {chunk} from Zebra on 127.0.0.1 "
          f"(best of {args.repeat}; every run checked: {n} records, ids bulk000001.."
          f"bulk{n:06d} each once)")
    print()
    print(table(variants, n))
    print()
    def ratios(ours: str, ref: str) -> str:
        best_ours, best_ref = variants[ours].best, variants[ref].best
        assert best_ours is not None and best_ref is not None
        median = statistics.median(variants[ref].walls) / statistics.median(variants[ours].walls)
        return f"{best_ref.wall / best_ours.wall:.2f} best, {median:.2f} on medians"

    verdict = "on target" if ratio >= TARGET_RATIO else "BELOW TARGET"
    print(f"Z39.50 ours/yaz-client (raw):        {ratios('z_raw', 'yaz')}  "
          f"(target >= {TARGET_RATIO}: {verdict})")
    print(f"Z39.50 ours+normalize/yaz-client:    {ratios('z_norm', 'yaz')}")
    print(f"Z39.50 Z3950Connector/yaz-client:    {ratios('z_conn', 'yaz')}")
    print(f"SRU ours raw/curl:                   {ratios('s_raw', 'curl')}")
    print(f"SRU ours (connector)/curl:           {ratios('s_ours', 'curl')}")
    print("Ratios are records/s ours over records/s reference (> 1: ours is faster). "
          "yaz-client and curl times include process start-up; ours run in this process.")
    print("Requests go one at a time, so wall = Zebra's CPU + the client's own time + the "
          "wire: 'wall-Zebra' is the part a client controls, and varies far less between "
          "runs than Zebra's CPU does (which also moves with other load on the machine).")
    if profile:
        print()
        print(profile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
