#!/usr/bin/env python3
"""Rebuild the labelled matching set (run by hand, from the repository root)::

    python tests/data/matching/build.py [--no-demo]

What it writes, and where the labels come from:

* ``real/``: byte-for-byte copies of third-party and project test files (SOURCES.md);
* ``derived/variants.mrc``: realistic variants made by editing one real record each, with
  ``derived/variants.tsv`` saying which record each came from and what was changed
  (``derive.py``);
* ``demo/``: records of the demo consortium as they came back through our own SRU and
  Z39.50 connectors from the demo's running servers, one file per member (MARCXML for
  SRU, ISO 2709 for Z39.50, as the bytes arrived). Which demo work each record catalogues
  is known from the generator itself (``broker.demo``), so those labels are facts, not
  guesses;
* ``records.tsv``: every file, the library its records belong to (as ``Merger.add`` sees
  it) and how to read it;
* ``pairs.tsv``: the labelled pairs (``label.py``).

``--no-demo`` keeps the captured demo files as they are (no servers are started) and
rebuilds the rest. The output is deterministic: the same inputs give the same files.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

SHARED = Path("/work/shared/testdata/marc")  # where the third-party copies were taken from
OURS = REPO / "tests" / "data" / "marc"

# (copy in real/, taken from (under tests/data/marc, else SHARED), library, flavour, encoding)
REAL: tuple[tuple[str, str, str, str, str], ...] = (
    ("pymarc__test.dat", "pymarc/test.dat", "pymarc", "marc21", "auto"),
    ("filemarc__camel.mrc", "thirdparty/filemarc__camel.mrc", "filemarc", "marc21", "auto"),
    ("marc4j__pride-and-prejudice-fixed.mrc",
     "thirdparty/marc4j__pride-and-prejudice-fixed.mrc", "austen", "marc21", "auto"),
    ("marc4j__summerland.mrc", "marc4j/summerland.mrc", "sl-iso", "marc21", "auto"),
    ("marc4j__summerland.xml", "marc4j/summerland.xml", "sl-xml", "marc21", "auto"),
    ("marc4j__summerland-marc-in-json.json", "marc4j/summerland-marc-in-json.json",
     "sl-json", "marc21", "auto"),
    ("filemarc__wronglen.mrc", "thirdparty/filemarc__wronglen.mrc", "fm-wronglen",
     "marc21", "auto"),
    ("filemarc__xmlescape.mrc", "thirdparty/filemarc__xmlescape.mrc", "fm-xmlescape",
     "marc21", "auto"),
    ("bnu_cnmarc.gbk.iso", "derived/bnu_cnmarc.gbk.iso", "bnu-gbk", "unimarc", "gb18030"),
    ("dp2__sample_cnmarcxml.xml", "dp2-bnu-alma-sru/sample_cnmarcxml.xml", "bnu-sru",
     "unimarc", "auto"),
    ("dp2__sample_marcxml.xml", "dp2-bnu-alma-sru/sample_marcxml.xml", "bnu-alma",
     "marc21", "auto"),
    ("openlibrary__880_alternate_script.mrc", "openlibrary/880_alternate_script.mrc",
     "openlibrary", "marc21", "auto"),
    ("marc4j__greekmissingcharsetchange.mrc",
     "thirdparty/marc4j__greekmissingcharsetchange.mrc", "greek", "marc21", "auto"),
    ("marc4j__cyrillic_capital_e.mrc", "marc4j/cyrillic_capital_e.mrc", "cyrillic",
     "marc21", "auto"),
)


def copy_real() -> list[tuple[str, str, str, str, str]]:
    """Copy the real files into real/; manifest rows (path, library, flavour, encoding,
    note)."""
    (HERE / "real").mkdir(exist_ok=True)
    rows = []
    for name, source, library, flavour, encoding in REAL:
        origin = OURS / source if (OURS / source).is_file() else SHARED / source
        shutil.copyfile(origin, HERE / "real" / name)
        rows.append((f"real/{name}", library, flavour, encoding, f"copy of {source}"))
    return rows


# --- the demo consortium --------------------------------------------------------------------

# Demo works to capture, by number: families of one title in several editions (the hard
# "different" cases), serials whose titles are shared by another part (自然科学版 and
# 社会科学版 of one 学报), and widely held books catalogued by MARC21 and CNMARC members.
DEMO_WORKS_WANTED = 60
DEMO_SERIALS_WANTED = 12


def demo_ground_truth() -> tuple[dict[tuple[str, str], int], dict[int, object], list]:
    """(member, 001) -> work number for every demo record, the works, and the plans:
    recomputed exactly as ``broker.demo.catalogues.generate`` does."""
    from broker.demo import catalogues as dc
    from broker.demo import members as dm
    from broker.demo.holders import assign
    from broker.demo.records import member_records
    from broker.demo.works import WORKS, make_works

    directory = dm.load_members()
    plans = dm.plan(lib.id for lib in directory.libraries)
    rng = random.Random(dc.SEED)
    members = [(lib.id, lib.name) for lib in directory.libraries]
    categories = {lib.id: lib.category for lib in directory.libraries}
    works = make_works(rng, members, WORKS)
    held = assign(rng, works, members, categories)
    truth: dict[tuple[str, str], int] = {}
    for p in plans:
        records = member_records(random.Random(f"{dc.SEED}:{p.id}"), p, held[p.id])
        for work, record in zip(held[p.id], records, strict=True):
            truth[(p.id, record["001"].data)] = work.number
    return truth, {w.number: w for w in works}, plans


def choose_demo_works(truth: dict[tuple[str, str], int], works: dict[int, object],
                      plans: list) -> list[int]:
    """Title families (editions, serial parts) held by two or more live members, taken in
    work order until DEMO_WORKS_WANTED works; every member of a family comes along."""
    live = {p.id for p in plans if not p.down and not p.delay}  # the slow one times out
    holders: dict[int, set[str]] = {}
    for (member, _), number in truth.items():
        if member in live:
            holders.setdefault(number, set()).add(member)
    families: dict[str, list[int]] = {}
    for number, work in sorted(works.items()):
        families.setdefault(work.title, []).append(number)  # type: ignore[attr-defined]
    chosen: list[int] = []
    serials: list[int] = []
    for numbers in families.values():
        if len(numbers) < 2 or not all(len(holders.get(n, ())) >= 2 for n in numbers):
            continue
        if len(chosen) < DEMO_WORKS_WANTED and "serial" not in works[numbers[0]].kind:  # type: ignore[attr-defined]
            chosen.extend(numbers)
    # Serial titles are each a member's own, so no families: the widely held ones instead.
    for number, work in sorted(works.items()):
        if "serial" in work.kind and len(holders.get(number, ())) >= 3:  # type: ignore[attr-defined]
            serials.append(number)
            if len(serials) >= DEMO_SERIALS_WANTED:
                break
    return sorted(chosen + serials)


async def capture_demo(chosen: list[int], truth: dict[tuple[str, str], int],
                       works: dict[int, object]) -> list[tuple[str, str, str, str, str]]:
    """Search each holder of each chosen work over its own protocol for the work's title
    and keep the bytes of the records that are the chosen works' (by 001)."""
    from broker.demo.servers import DemoConsortium
    from broker.kernel import config
    from broker.kernel.cql import parse
    from connectors.registry import create_connector

    wanted = {key: number for key, number in truth.items() if number in chosen}
    by_member: dict[str, dict[str, bytes]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        async with DemoConsortium(data_dir=Path(scratch),
                                  port_base=random.Random(len(chosen)).randrange(
                                      30000, 60000 - 64)) as demo:
            assert demo.config is not None
            consortium = config.load(demo.config)
            libraries = {lib.id: lib for lib in consortium.libraries}
            plans = {m.plan.id: m.plan for m in demo.members}
            for member in sorted({m for m, _ in wanted}):
                if plans[member].down or plans[member].delay:
                    continue
                connector = create_connector(libraries[member])
                try:
                    for title in sorted({works[n].title  # type: ignore[attr-defined]
                                         for (m, _), n in wanted.items() if m == member}):
                        page = await connector.search(parse(f'title="{title}"'), count=100)
                        for record in page.records:
                            number = (record.id or "").partition(":")[2]
                            if (member, number) in wanted and record.source is not None:
                                raw = record.source
                                by_member.setdefault(member, {})[number] = raw.data
                finally:
                    await connector.close()
    out_dir = HERE / "demo"
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir()
    rows = []
    for member, found in sorted(by_member.items()):
        protocol = plans[member].protocol
        fmt = plans[member].format
        blobs = [found[n] for n in sorted(found, key=int)]
        if protocol == "sru":
            name = f"{member}.sru.xml"
            body = b"".join(b.split(b"?>", 1)[1] if b.startswith(b"<?xml") else b
                            for b in blobs)
            (out_dir / name).write_bytes(
                b'<?xml version="1.0" encoding="UTF-8"?>\n'
                b'<collection xmlns="http://www.loc.gov/MARC21/slim">' + body
                + b"</collection>\n")
        else:
            name = f"{member}.z3950.mrc"
            (out_dir / name).write_bytes(b"".join(blobs))
        encoding = "gb18030" if protocol == "z3950" and plans[member].encoding == "gb18030" \
            else "auto"
        rows.append((f"demo/{name}", member, fmt, encoding,
                     f"demo member {member}: {protocol} {fmt}, {len(blobs)} records"))
    return rows


def write_demo_truth(rows: list[tuple[str, str, str, str, str]],
                     truth: dict[tuple[str, str], int], works: dict[int, object]) -> None:
    """demo/works.tsv: each captured record's work (the labels' ground truth)."""
    from marc import read_file

    lines = ["record\twork\ttitle\tedition_or_part\tyear\tisbn_or_issn"]
    for path, member, flavour, encoding, _ in rows:
        for entry in read_file(HERE / path, flavour=flavour, encoding=encoding):
            if entry.record is None:
                continue
            number = entry.record["001"].data
            work = works[truth[(member, number)]]
            lines.append("\t".join((
                f"{member}:{number}", str(work.number), work.title,  # type: ignore[attr-defined]
                work.edition or work.subtitle or "",  # type: ignore[attr-defined]
                str(work.year), work.isbn13 or work.issn or "")))  # type: ignore[attr-defined]
    (HERE / "demo" / "works.tsv").write_text("\n".join(lines) + "\n", "utf-8")


def demo_rows() -> list[tuple[str, str, str, str, str]]:
    """records.tsv rows for the captured files in demo/ (how the demo serves each member)."""
    from broker.demo import members as dm

    plans = {p.id: p for p in dm.plan(lib.id for lib in dm.load_members().libraries)}
    rows = []
    for path in sorted((HERE / "demo").glob("*.*.*")):
        member, protocol, _ = path.name.split(".")
        p = plans[member]
        encoding = "gb18030" if protocol == "z3950" and p.encoding == "gb18030" else "auto"
        rows.append((f"demo/{path.name}", member, p.format, encoding,
                     f"demo member {member} over {protocol}, {p.format}"))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-demo", action="store_true",
                        help="keep the captured demo files; start no servers")
    args = parser.parse_args(argv)
    import derive
    import label

    rows = copy_real()
    rows += derive.write(HERE / "derived")
    if not args.no_demo:
        truth, works, plans = demo_ground_truth()
        chosen = choose_demo_works(truth, works, plans)
        write_demo_truth(asyncio.run(capture_demo(chosen, truth, works)), truth, works)
    rows += demo_rows()
    lines = ["path\tlibrary\tflavour\tencoding\tnote"]
    lines += ["\t".join(row) for row in rows]
    (HERE / "records.tsv").write_text("\n".join(lines) + "\n", "utf-8")
    count = label.write(HERE)
    print(f"{len(rows)} files, {count} labelled pairs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
