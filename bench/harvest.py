#!/usr/bin/env python3
"""Harvest rate: ``balis harvest`` against yaz-client dumping the same records.

Run by hand from the repository root::

    python bench/harvest.py [--records 5000] [--chunk 100] [--repeat 3]

One run starts its own Zebra with a ``bulk`` database of ``--records`` synthetic records
(``tests/peers/servers.py``) and times, best of ``--repeat`` (variants take turns):

* ``Harvest`` (broker/harvest/harvester.py) in this process, query ``synthetic``, ISO 2709 into a
  file: every batch appended, fsynced and checkpointed, as ``balis harvest`` does; over
  Z39.50 and over SRU. MARCXML and JSON lines over Z39.50 for reference.
* ``balis harvest`` as a whole process (Z39.50, ISO 2709): start-up included.
* yaz-client dumping the same records with ``-m`` (Z39.50: ``format usmarc``, ``find
  @attr 1=1016 synthetic``, ``show`` in chunks; SRU: ``open http://...``, ``sru get 1.2``,
  ``querytype cql``, ``find synthetic``, ``show`` in chunks), a whole process each time.

Every timed run is checked: exactly N records with 001 ``bulk000001`` .. ``bulkNNNNNN``
each once. Ratios are records/s ours over records/s yaz-client, same protocol, same run;
the aim is 0.8 or better. Raw fetch rates (no file, no checkpoints) are in
``bench/z3950_harvest_rate.py``, whose helpers this script shares.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
for _path in (REPO, REPO / "tests" / "peers", REPO / "bench"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from servers import HOST, ZebraServer  # noqa: E402
from z3950_harvest_rate import (  # noqa: E402
    CQL,
    DATABASE,
    TIMEOUT,
    CountError,
    Run,
    Variant,
    check_ids,
    chunks,
    iso_ids,
    run_yaz_client,
)

from broker.harvest.harvester import Harvest, HarvestOptions  # noqa: E402
from broker.kernel.config import ConnectorConfig, Library  # noqa: E402

TARGET_RATIO = 0.8
_XML_ID = re.compile(rb"<controlfield tag=\"001\">(bulk\d{6})</controlfield>")
_JSON_ID = re.compile(rb'"id":"bench:(bulk\d{6})"')


def library(protocol: str, port: int) -> Library:
    url = (f"z3950://{HOST}:{port}/{DATABASE}" if protocol == "z3950"
           else f"http://{HOST}:{port}/{DATABASE}")
    return Library("bench", "Bench", "bench", connector=ConnectorConfig(
        protocol=protocol, url=url, timeout=TIMEOUT))


def run_ours(protocol: str, port: int, n: int, chunk: int, fmt: str, workdir: Path) -> Run:
    out = workdir / f"ours.{fmt}"
    for stale in (out, out.with_name(out.name + ".checkpoint")):
        stale.unlink(missing_ok=True)
    options = HarvestOptions(format=fmt, query=CQL, chunk=chunk)
    cpu0 = time.process_time()
    started = time.perf_counter()
    result = asyncio.run(Harvest(library(protocol, port), out, options).run())
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu0
    if not result.done or result.skipped:
        raise CountError(f"harvest {protocol} {fmt}: {result.error or result.problems[:3]}")
    data = out.read_bytes()
    if fmt == "iso2709":
        ids = iso_ids([r for r in data.split(b"\x1d") if r.strip()], "ours")
    else:
        ids = (_XML_ID if fmt == "marcxml" else _JSON_ID).findall(data)
    check_ids(ids, n, f"balis harvest {protocol} {fmt}")
    return Run(wall, cpu)


def run_cli(port: int, n: int, chunk: int, workdir: Path) -> Run:
    config = workdir / "libraries.yaml"
    config.write_text(
        "consortium: {name: Bench}\ncategories: [{id: c, name: C}]\nlibraries:\n"
        f"  - {{id: bench, name: B, category: c, connector: {{protocol: z3950, "
        f"url: \"z3950://{HOST}:{port}/{DATABASE}\", timeout: {TIMEOUT}}}}}\n", "utf-8")
    out = workdir / "cli.mrc"
    for stale in (out, out.with_name(out.name + ".checkpoint")):
        stale.unlink(missing_ok=True)
    balis = shutil.which("balis")
    argv = [balis] if balis else [sys.executable, "-m", "balis"]
    started = time.perf_counter()
    done = subprocess.run([*argv, "harvest", "bench", "--config", str(config), "--out",
                           str(out), "--query", CQL, "--chunk", str(chunk), "-q"],
                          capture_output=True, timeout=TIMEOUT, check=False)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise CountError(f"balis harvest exited {done.returncode}: {done.stderr[-500:]!r}")
    records = [r for r in out.read_bytes().split(b"\x1d") if r.strip()]
    check_ids(iso_ids(records, "balis harvest CLI"), n, "balis harvest CLI")
    return Run(wall, 0.0)


def run_yaz_sru(port: int, n: int, chunk: int, workdir: Path) -> Run:
    script = workdir / "sru.yaz"
    shows = [f"show {start}+{count}" for start, count in chunks(n, chunk)]
    script.write_text("\n".join([f"open http://{HOST}:{port}/{DATABASE}", "sru get 1.2",
                                 "querytype cql", "format xml", "elements marcxml",
                                 f"find {CQL}", *shows, "quit"]) + "\n", "utf-8")
    dump = workdir / "sru.xml"
    dump.unlink(missing_ok=True)
    started = time.perf_counter()
    done = subprocess.run(["yaz-client", "-m", str(dump), "-f", str(script)],
                          stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, timeout=TIMEOUT, check=False)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise CountError(f"yaz-client exited with {done.returncode}")
    check_ids(_XML_ID.findall(dump.read_bytes()), n, "yaz-client SRU")
    return Run(wall, 0.0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=5000)
    parser.add_argument("--chunk", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    n, chunk = args.records, args.chunk
    if shutil.which("yaz-client") is None:
        print("yaz-client is not installed", file=sys.stderr)
        return 2
    print(f"Starting Zebra with {n} synthetic records ...", flush=True)
    with ZebraServer(bulk=n) as zebra, \
            tempfile.TemporaryDirectory(prefix="balis-harvest-bench-") as tmp:
        workdir, port = Path(tmp), zebra.port
        run_yaz_client(port, n, chunk, workdir)  # untimed warm-up of Zebra
        variants = {v.key: v for v in (
            Variant("z_iso", "Z39.50 balis Harvest, iso2709",
                    lambda: run_ours("z3950", port, n, chunk, "iso2709", workdir)),
            Variant("z_cli", "Z39.50 balis harvest CLI, iso2709", lambda: run_cli(
                port, n, chunk, workdir), note="(whole process)"),
            Variant("z_yaz", "Z39.50 yaz-client -m", lambda: run_yaz_client(
                port, n, chunk, workdir), note="(whole process)"),
            Variant("z_xml", "Z39.50 balis Harvest, marcxml",
                    lambda: run_ours("z3950", port, n, chunk, "marcxml", workdir)),
            Variant("z_json", "Z39.50 balis Harvest, jsonl",
                    lambda: run_ours("z3950", port, n, chunk, "jsonl", workdir)),
            Variant("s_iso", "SRU balis Harvest, iso2709",
                    lambda: run_ours("sru", port, n, chunk, "iso2709", workdir)),
            Variant("s_yaz", "SRU yaz-client -m", lambda: run_yaz_sru(port, n, chunk, workdir),
                    note="(whole process)"),
        )}
        for round_no in range(1, args.repeat + 1):
            for variant in variants.values():
                variant.measure(zebra.pid)
            print(f"  round {round_no}/{args.repeat} done", flush=True)
    print(f"\nHarvest of {n} records in requests of {chunk} from Zebra on 127.0.0.1, best of "
          f"{args.repeat} (every run checked: {n} records, each id once)\n")
    print(f"{'variant':<36} {'best s':>7} {'median s':>9} {'records/s':>10} {'Zebra CPU s':>12}")
    for variant in variants.values():
        best = variant.best
        assert best is not None
        print(f"{variant.label:<36} {best.wall:7.3f} {statistics.median(variant.walls):9.3f} "
              f"{n / best.wall:10,.0f} {best.server_cpu:12.2f}  {variant.note}")
    print()
    for ours, ref in (("z_iso", "z_yaz"), ("z_cli", "z_yaz"), ("z_xml", "z_yaz"),
                      ("z_json", "z_yaz"), ("s_iso", "s_yaz")):
        a, b = variants[ours], variants[ref]
        assert a.best is not None and b.best is not None
        ratio = b.best.wall / a.best.wall
        median = statistics.median(b.walls) / statistics.median(a.walls)
        verdict = "" if ours in ("z_xml", "z_json") else (
            "  on target" if ratio >= TARGET_RATIO else "  BELOW TARGET")
        print(f"{a.label} / {b.label}: {ratio:.2f} best, {median:.2f} on medians{verdict}")
    print(f"(target: >= {TARGET_RATIO} of yaz-client's records/s; ours writes, fsyncs and "
          "checkpoints every batch, yaz-client only dumps)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
