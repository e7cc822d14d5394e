"""The demo's catalogues as a whole: generated from one seed, written once into a cache.

``generate`` makes the works, shares them out among the members and catalogues each
member's share its way (``broker.demo.records``); ``write`` puts each catalogue in a file
(ISO 2709, UTF-8 or GB18030 as the plan says) beside a manifest, and ``ensure`` does so
only when the cache is missing or was made from another plan, seed or generator.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path

from pymarc import Record

from broker.demo.holders import assign
from broker.demo.members import REPO, MemberPlan
from broker.demo.records import member_records
from broker.demo.works import WORKS, Work, make_works
from broker.kernel.config import Consortium
from marc.writer import iso2709

SEED = 20240517
GENERATOR_VERSION = 2  # 2: each copy has a status (and a loan its due date)


@dataclass(slots=True)
class DemoData:
    works: list[Work]
    records: dict[str, list[Record]]  # member id -> its catalogue
    # member id -> the work each of its records catalogues (the merge's ground truth)
    works_of: dict[str, list[Work]]

    @property
    def total_records(self) -> int:
        return sum(len(r) for r in self.records.values())


def generate(plans: list[MemberPlan], consortium: Consortium, seed: int = SEED,
             works: int = WORKS) -> DemoData:
    """Every member's catalogue, from ``seed`` alone."""
    rng = random.Random(seed)
    members = [(lib.id, lib.name) for lib in consortium.libraries]
    categories = {lib.id: lib.category for lib in consortium.libraries}
    all_works = make_works(rng, members, works)
    held = assign(rng, all_works, members, categories)
    records = {}
    for p in plans:
        member_rng = random.Random(f"{seed}:{p.id}")
        records[p.id] = member_records(member_rng, p, held[p.id])
    return DemoData(all_works, records, {p.id: held[p.id] for p in plans})


def fingerprint(plans: list[MemberPlan], seed: int = SEED) -> str:
    """What decides the files' bytes: a cache made with another is stale."""
    text = json.dumps([GENERATOR_VERSION, seed, WORKS, [asdict(p) for p in plans]],
                      sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def write(directory: Path, plans: list[MemberPlan], consortium: Consortium,
          seed: int = SEED) -> dict:
    """Generate and write every member's catalogue file and a manifest; returns it."""
    directory.mkdir(parents=True, exist_ok=True)
    data = generate(plans, consortium, seed)
    members = {}
    for p in plans:
        blob = b"".join(iso2709(r, p.file_encoding) for r in data.records[p.id])
        (directory / p.file_name).write_bytes(blob)
        members[p.id] = {"file": p.file_name, "format": p.format,
                         "file_encoding": p.file_encoding, "records": len(data.records[p.id])}
    manifest = {"fingerprint": fingerprint(plans, seed), "seed": seed,
                "works": len(data.works), "records": data.total_records, "members": members}
    (directory / "manifest.json").write_text(json.dumps(manifest, indent=1), "utf-8")
    return manifest


def ensure(directory: Path, plans: list[MemberPlan], consortium: Consortium,
           seed: int = SEED, *, force: bool = False) -> tuple[dict, bool]:
    """The catalogue files in ``directory``, written unless an up-to-date copy is there.
    Returns the manifest and whether it was (re)generated."""
    path = directory / "manifest.json"
    if not force and path.is_file():
        try:
            manifest = json.loads(path.read_text("utf-8"))
        except (OSError, ValueError):
            manifest = {}
        if manifest.get("fingerprint") == fingerprint(plans, seed) and all(
                (directory / m["file"]).is_file() for m in manifest["members"].values()):
            return manifest, False
    return write(directory, plans, consortium, seed), True


def default_data_dir() -> Path:
    """instance/demo in a source checkout; else the user's cache directory."""
    if (REPO / "pyproject.toml").is_file():
        return REPO / "instance" / "demo"
    return Path.home() / ".cache" / "balis-broker" / "demo"
