#!/usr/bin/env python3
"""MARC throughput: our read + normalize against bare pymarc parsing and yaz-marcdump.

Run by hand from the repository root::

    python bench/marc_throughput.py [--records 10000] [--repeat 3] [--profile] [--keep]

It builds one ISO 2709 file of ``--records`` records by cycling through real UTF-8 records
of the repository's test data (MARC21 and CNMARC), then times, best of ``--repeat`` rounds (each
round runs every contender once, so load elsewhere on the machine hits all of them alike):

* pymarc alone: ``pymarc.MARCReader(fh, force_utf8=True, to_unicode=True)``;
* ours: ``marc.read_file`` alone, ``marc.normalize`` alone (over records read beforehand)
  and ``read_file`` + ``normalize`` together, the number that matters;
* ``yaz-marcdump -i marc -o json -f utf-8 -t utf-8 FILE > /dev/null`` (a C baseline).

Wall time is ``time.perf_counter``; CPU time is ``time.process_time`` for the Python runs
and the children's rusage for yaz. The target is ours (read + normalize) within 1.5x of
pymarc's parse time; missing it prints OVER but never fails the run. The median of the
per-round ratios is printed beside it: on a busy machine it is the steadier number (use
``--repeat 5`` or more there). Outside the timed runs every reader's record count and
content are checked against the others.

The data is ``tests/data/marc`` (as in tests/conftest.py). The file goes to a temporary
directory, or with ``--keep`` to ``bench/data/`` (git-ignored).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import itertools
import json
import os
import pstats
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import unicodedata
import warnings
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script: bench/ is on the path, the repo may not be
    sys.path.insert(0, str(REPO))

import pymarc  # noqa: E402

from marc import normalize, read_bytes, read_file  # noqa: E402

TARGET_RATIO = 1.5

# (path under testdata/marc, flavour). Every file is UTF-8 throughout, so pymarc with
# force_utf8, our reader (auto) and yaz-marcdump -f utf-8 all decode the same bytes alike.
SOURCES: tuple[tuple[str, str], ...] = (
    ("yaz/marccol1.u8.marc", "MARC21"),  # 19 LC records with CJK 880s
    ("yaz/marccol3.u8.marc", "MARC21"),
    ("yaz/marccol4.u8.marc", "MARC21"),
    ("marc4j/summerland.mrc", "MARC21"),
    ("marc4j/oclc_63111280_export_as_UTF8_from_connexion.mrc", "MARC21"),
    ("openlibrary/880_alternate_script.mrc", "MARC21"),
    ("openlibrary/880_Nihon_no_chasho.mrc", "MARC21"),
    ("openlibrary/880_arabic_french_many_linkages.mrc", "MARC21"),
    ("openlibrary/880_publisher_unlinked.mrc", "MARC21"),
    ("pymarc/diacritic.dat", "MARC21"),
    ("pymarc/utf8_with_leader_flag.dat", "MARC21"),
    ("derived/bnu_cnmarc.utf8.iso", "CNMARC"),  # 10 real BNU CNMARC records, with holdings
    ("pymarc/testunimarc.dat", "UNIMARC"),  # NSB/NSE markers; a stray LF follows the record
)


def shared_marc_dir() -> Path:
    path = REPO / "tests" / "data" / "marc"
    if not (path / "SOURCES.md").is_file():
        sys.exit(f"MARC test data not found at {path}")
    return path


# --- building the file --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PoolRecord:
    data: bytes
    source: str
    kind: str


def _records_of(data: bytes) -> Iterable[tuple[int, bytes | None]]:
    """(offset, record bytes) by each leader's length; None where that length is wrong."""
    pos, n = 0, len(data)
    while pos < n:
        if data[pos] in b"\r\n\x00\x1a\t ":
            pos += 1
            continue
        head = data[pos:pos + 5]
        length = int(head) if head.isdigit() else 0
        if length < 26 or pos + length > n or data[pos + length - 1] != 0x1D:
            yield pos, None
            return
        yield pos, data[pos:pos + length]
        pos += length


def _why_not(record: bytes) -> str | None:
    """Why a record is unfit for the benchmark file, or None if every reader takes it whole."""
    try:
        record.decode("utf-8")
    except UnicodeDecodeError:
        return "not valid UTF-8"
    if record[20:24] != b"4500":
        return f"entry map {record[20:24]!r}"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            reader = pymarc.MARCReader(io.BytesIO(record), force_utf8=True, to_unicode=True)
            parsed = list(reader)
    except Exception as exc:  # any pymarc complaint disqualifies the record
        return f"pymarc: {exc!r}"
    if len(parsed) != 1 or parsed[0] is None:
        return f"pymarc: {reader.current_exception!r}"
    ours = list(read_bytes(record))
    if len(ours) != 1 or ours[0].record is None:
        return f"ours: {[e.problems for e in ours]}"
    if ours[0].problems or ours[0].encoding != "utf-8":
        return f"ours: {ours[0].encoding} {ours[0].problems}"
    if len(ours[0].record.fields) != len(parsed[0].fields):
        return "pymarc and ours disagree on the fields"
    return None


def load_pool(marc_dir: Path) -> list[PoolRecord]:
    pool: list[PoolRecord] = []
    for rel, kind in SOURCES:
        path = marc_dir / rel
        if not path.is_file():
            print(f"  skipped {rel}: missing")
            continue
        for offset, record in _records_of(path.read_bytes()):
            why = "leader length does not reach a record terminator" if record is None \
                else _why_not(record)
            if why:
                print(f"  skipped {rel} @ byte {offset}: {why}")
                continue
            pool.append(PoolRecord(record, rel, kind))
    if not pool:
        sys.exit("no usable records in the test data")
    return pool


def build_file(pool: list[PoolRecord], count: int, path: Path) -> Counter:
    """Write ``count`` records cycled from the pool, back to back; return the mix by kind."""
    mix: Counter = Counter()
    with open(path, "wb") as out:
        for rec in itertools.islice(itertools.cycle(pool), count):
            out.write(rec.data)
            mix[rec.kind] += 1
    return mix


# --- the contenders -----------------------------------------------------------------------


def pymarc_parse(path: Path) -> int:
    n = 0
    with open(path, "rb") as fh:
        for record in pymarc.MARCReader(fh, force_utf8=True, to_unicode=True):
            if record is not None:
                n += 1
    return n


def ours_read(path: Path) -> int:
    n = 0
    for entry in read_file(path):
        if entry.record is not None:
            n += 1
    return n


def ours_read_normalize(path: Path) -> int:
    n = 0
    for entry in read_file(path):
        if entry.record is not None:
            normalize(entry.record, flavour=entry.flavour, warnings=entry.problems)
            n += 1
    return n


def ours_normalize_only(entries: list) -> Callable[[], int]:
    def run() -> int:
        for entry in entries:
            normalize(entry.record, flavour=entry.flavour, warnings=entry.problems)
        return len(entries)
    return run


def yaz_command(yaz: str, path: Path) -> list[str]:
    return [yaz, "-i", "marc", "-o", "json", "-f", "utf-8", "-t", "utf-8", str(path)]


def yaz_to_null(yaz: str, path: Path) -> Callable[[], int]:
    def run() -> int:
        with open(os.devnull, "wb") as null:
            subprocess.run(yaz_command(yaz, path), stdout=null, check=True)
        return -1  # counted outside the timed runs
    return run


# --- timing -------------------------------------------------------------------------------


@dataclass
class Timing:
    """One contender and its runs."""

    name: str
    label: str  # short, for the per-round lines
    run: Callable[[], int]
    child: bool = False  # a subprocess: CPU time is the children's rusage
    count: int | None = None  # None: the run cannot count (yaz, counted separately)
    walls: list[float] = field(default_factory=list)
    cpus: list[float] = field(default_factory=list)

    @property
    def wall(self) -> float:
        return min(self.walls)

    @property
    def cpu(self) -> float:
        return min(self.cpus)

    def measure(self) -> float:
        gc.collect()
        c0 = _children_cpu() if self.child else time.process_time()
        t0 = time.perf_counter()
        count = self.run()
        t1 = time.perf_counter()
        c1 = _children_cpu() if self.child else time.process_time()
        if count >= 0:
            self.count = count
        self.walls.append(t1 - t0)
        self.cpus.append(c1 - c0)
        return t1 - t0


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_rounds(timings: list[Timing], repeat: int) -> None:
    """Each round runs every contender once, so a burst of load elsewhere on the machine
    lands on one round of all of them rather than on all runs of one."""
    for i in range(1, repeat + 1):
        walls = [f"{t.label} {t.measure():.3f}s" for t in timings]
        print(f"  round {i}: " + ", ".join(walls), flush=True)


def time_normalize_alone(path: Path, repeat: int) -> Timing:
    """normalize over records read beforehand. The records are frozen out of the garbage
    collector's view, so they cost its scans no more than a streaming run's would."""
    entries = [e for e in read_file(path) if e.record is not None]
    gc.collect()
    gc.freeze()
    try:
        timing = Timing("ours normalize (records read before)", "normalize",
                        ours_normalize_only(entries))
        for _ in range(repeat):
            timing.measure()
    finally:
        gc.unfreeze()
    del entries
    gc.collect()
    return timing


# --- checking that everybody read the same records ----------------------------------------


def _nfc(text: str | None) -> str | None:
    # Ours stores NFC text (as MARC-8 decoding gives); pymarc and yaz keep the bytes' form.
    return unicodedata.normalize("NFC", text) if text else text


def _field_shape(tag: str, data: str | None, ind1: str = "", ind2: str = "",
                 subfields: Iterable[tuple[str, str]] = ()) -> tuple:
    return (tag, _nfc(data), ind1, ind2, tuple((c, _nfc(v)) for c, v in subfields))


def _pymarc_shape(record: pymarc.Record) -> tuple:
    return tuple(
        _field_shape(f.tag, f.data) if f.is_control_field()
        else _field_shape(f.tag, None, f.indicator1, f.indicator2,
                          ((s.code, s.value) for s in f.subfields))
        for f in record.fields
    )


def _yaz_shape(obj: dict) -> tuple:
    out = []
    for item in obj["fields"]:
        ((tag, value),) = item.items()
        if isinstance(value, str):
            out.append(_field_shape(tag, value))
        else:
            subfields = (next(iter(s.items())) for s in value["subfields"])
            out.append(_field_shape(tag, None, value["ind1"], value["ind2"], subfields))
    return tuple(out)


def yaz_records(yaz: str, path: Path, workdir: Path) -> tuple[list[dict], str]:
    """Every top-level JSON object yaz-marcdump writes (it concatenates them), and stderr."""
    out_path = workdir / "yaz.json"
    with open(out_path, "wb") as out:
        proc = subprocess.run(yaz_command(yaz, path), stdout=out, stderr=subprocess.PIPE,
                              check=False)
    text = out_path.read_text(encoding="utf-8")
    out_path.unlink()
    decoder = json.JSONDecoder()
    objects, pos = [], 0
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            break
        obj, pos = decoder.raw_decode(text, pos)
        objects.append(obj)
    err = proc.stderr.decode("utf-8", "replace").strip()
    if proc.returncode:
        err = f"exit status {proc.returncode}; {err}"
    return objects, err


def check_counts(path: Path, yaz: str | None, workdir: Path, expected: int) -> bool:
    """Counts and content (compared as NFC) of all readers, outside the timings."""
    with open(path, "rb") as fh:
        reader = pymarc.MARCReader(fh, force_utf8=True, to_unicode=True)
        theirs = [_pymarc_shape(r) if r is not None else None for r in reader]
    entries = list(read_file(path))
    ours = [_pymarc_shape(e.record) for e in entries if e.record is not None]
    with_problems = sum(1 for e in entries if e.problems)

    differ_ours = sum(a != b for a, b in zip(ours, theirs, strict=False))
    # (reader, records, records whose content differs from pymarc's, note)
    rows: list[tuple[str, int, int, str]] = [
        ("pymarc MARCReader", sum(r is not None for r in theirs), 0,
         f"{sum(r is None for r in theirs)} unparsable"),
        ("ours read_file", len(ours), differ_ours,
         f"{len(entries) - len(ours)} failed, {with_problems} with problems, "
         f"{differ_ours} differ from pymarc"),
    ]
    if yaz:
        objects, err = yaz_records(yaz, path, workdir)
        shapes = [_yaz_shape(o) for o in objects if "leader" in o]
        differ = sum(a != b for a, b in zip(shapes, theirs, strict=False))
        note = f"{len(objects)} JSON objects, {differ} differ from pymarc"
        if err:
            note += f"; stderr: {err.splitlines()[0][:60]} ({len(err.splitlines())} lines)"
        rows.append(("yaz-marcdump -o json", len(shapes), differ, note))
    print(f"\nRecord counts, and records whose content (as NFC) differs (expected {expected:,}):")
    all_ok = True
    for name, count, differ, note in rows:
        ok = count == expected and not differ
        all_ok = all_ok and ok
        print(f"  {name:<24} {count:>8,}  {'ok ' if ok else 'BAD'}  {note}")
    return all_ok


# --- report -------------------------------------------------------------------------------


def print_table(timings: list[Timing], baseline: Timing, records: int, size: int) -> None:
    print(f"\n{records:,} records, {size / 1e6:.1f} MB; best of the runs (median wall beside):")
    print(f"  {'':<38} {'wall s':>8} {'median':>8} {'records/s':>11} {'MB/s':>7} {'CPU s':>8} "
          f"{'x pymarc':>9}")
    for t in timings:
        n = records if t.count is None else t.count  # yaz's count is checked afterwards
        print(f"  {t.name:<38} {t.wall:8.3f} {statistics.median(t.walls):8.3f} "
              f"{n / t.wall:11,.0f} {size / 1e6 / t.wall:7.1f} {t.cpu:8.3f} "
              f"{t.wall / baseline.wall:8.2f}x")


def profile(path: Path, top: int) -> None:
    prof = cProfile.Profile()
    prof.enable()
    ours_read_normalize(path)
    prof.disable()
    for key in ("cumulative", "tottime"):
        print(f"\n=== cProfile of read_file + normalize: top {top} by {key} ===")
        stream = io.StringIO()
        stats = pstats.Stats(prof, stream=stream)
        stats.strip_dirs().sort_stats(key).print_stats(top)
        # Drop pstats' preamble up to the column header.
        text = stream.getvalue()
        print(text[text.find("   ncalls"):].rstrip())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=10_000, help="records in the file")
    parser.add_argument("--repeat", type=int, default=3, help="runs per contender (best kept)")
    parser.add_argument("--profile", action="store_true",
                        help="also cProfile one read + normalize run")
    parser.add_argument("--top", type=int, default=25, help="functions shown by --profile")
    parser.add_argument("--keep", action="store_true",
                        help="write the file to bench/data/ (git-ignored) and keep it")
    parser.add_argument("--no-yaz", action="store_true", help="skip yaz-marcdump")
    args = parser.parse_args(argv)
    if args.records < 1 or args.repeat < 1:
        parser.error("--records and --repeat must be at least 1")

    yaz = None if args.no_yaz else shutil.which("yaz-marcdump")
    if not args.no_yaz and yaz is None:
        print("yaz-marcdump not found (Debian package 'yaz'): its run is skipped")

    marc_dir = shared_marc_dir()
    print(f"Python {sys.version.split()[0]}, pymarc {metadata.version('pymarc')}, data {marc_dir}")
    pool = load_pool(marc_dir)
    kinds = Counter(r.kind for r in pool)
    print(f"Pool: {len(pool)} records from {len({r.source for r in pool})} files "
          f"({', '.join(f'{k} {v}' for k, v in sorted(kinds.items()))})")

    with tempfile.TemporaryDirectory(prefix="marc_throughput_") as tmp:
        workdir = Path(tmp)
        if args.keep:
            data_dir = REPO / "bench" / "data"
            data_dir.mkdir(parents=True, exist_ok=True)
            path = data_dir / f"marc_throughput_{args.records}.mrc"
        else:
            path = workdir / f"marc_throughput_{args.records}.mrc"
        mix = build_file(pool, args.records, path)
        size = path.stat().st_size
        print(f"File: {path} ({size:,} bytes, {args.records:,} records: "
              f"{', '.join(f'{k} {v:,}' for k, v in sorted(mix.items()))})")

        print(f"\nTimings: {args.repeat} rounds, each running every contender once")
        base = Timing("pymarc MARCReader parse", "pymarc", lambda: pymarc_parse(path))
        read = Timing("ours read_file", "read", lambda: ours_read(path))
        both = Timing("ours read_file + normalize", "read+normalize",
                      lambda: ours_read_normalize(path))
        yaz_t = None
        if yaz:
            yaz_t = Timing("yaz-marcdump -o json > /dev/null", "yaz", yaz_to_null(yaz, path),
                           child=True)
        contenders = [base, read, both] + ([yaz_t] if yaz_t else [])
        run_rounds(contenders, args.repeat)
        norm = time_normalize_alone(path, args.repeat)
        timings = [base, read, norm, both] + ([yaz_t] if yaz_t else [])
        print_table(timings, base, args.records, size)
        ratio = both.wall / base.wall
        verdict = "PASS" if ratio <= TARGET_RATIO else "OVER"
        print(f"\n  ours (read + normalize) / pymarc parse: {ratio:.2f}x wall, "
              f"{both.cpu / base.cpu:.2f}x CPU  (target <= {TARGET_RATIO}x: {verdict})")
        if args.repeat > 1:
            # Runs of one round are seconds apart: their ratio shrugs off slow drifts in load.
            rounds = [b / a for a, b in zip(base.walls, both.walls, strict=True)]
            print(f"  the same, median of the per-round ratios: {statistics.median(rounds):.2f}x"
                  f"  (rounds: {', '.join(f'{r:.2f}' for r in rounds)})")
        print(f"  ours (read alone) / pymarc parse:       {read.wall / base.wall:.2f}x wall")
        if yaz_t:
            print(f"  yaz-marcdump / pymarc parse:            {yaz_t.wall / base.wall:.2f}x wall")

        check_counts(path, yaz, workdir, args.records)

        if args.profile:
            profile(path, args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
