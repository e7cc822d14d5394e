"""Synthetic harvests for the union index benchmark (``bench/union_scale.py``).

``write(folder, records, libraries)`` writes one JSON-lines harvest per library (CONTRACTS
section 4, as ``balis harvest --format jsonl`` writes them) holding about ``records``
records in all. They are drawn from the demo's vocabulary (``broker.demo.vocabulary``):
Chinese and Western titles made of its subject stems, with place, period and topic words
around them, so common words (中国 北京 经济 历史 研究) are common and a title's rare
characters are rare; authors, publishers, subjects, years 1950-2025 and ISBNs. A work is
held by 1 to 8 libraries (as the demo weighs holders), each holder cataloguing it a little
differently (call number, barcode, sometimes a missing ISBN or subtitle), so about a third
of the records are duplicates the index clusters. Deterministic for a seed.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path

from broker.demo.holders import HOLDER_WEIGHTS, HOLDERS
from broker.demo.vocabulary import (
    EN_GIVEN,
    EN_PATTERNS,
    EN_PUBLISHERS,
    EN_SURNAMES,
    EN_TOPICS,
    GIVEN,
    SURNAMES,
    ZH_AREAS,
    ZH_PUBLISHERS,
    ZH_SUBTITLES,
)
from broker.demo.works import isbn13_check

# Words around a stem: common ones (中国, 北京) and, drawn from a large pool, rare ones.
_ZH_BEFORE = ["", "", "", "", "中国", "北京", "当代", "新编", "现代", "近代", "西方",
              "区域", "城市", "农村", "全球化背景下的", "新时代"]
_ZH_AFTER = ["研究", "发展研究", "历史研究", "问题研究", "概论", "教程", "史", "论集",
             "与改革", "的理论与实践", "发展报告", "经济分析"]
_RARE = "鼐罍甗簠彝觥斝觚爵卣尊盉匜鉴钫镈钲铙錞于磬柷敔埙篪笙竽箫笛琴瑟筑筝琵琶箜篌"
_EN_BEFORE = ["", "", "", "Modern ", "Chinese ", "Comparative ", "Applied ", "Global "]


def _zh_title(rng: random.Random) -> tuple[str, str, str]:
    area = rng.choice(list(ZH_AREAS))
    stem, clc, heading = rng.choice(ZH_AREAS[area][1])
    suffix = rng.choice(ZH_AREAS[area][2] + _ZH_AFTER)
    title = f"{rng.choice(_ZH_BEFORE)}{stem}{suffix}"
    if rng.random() < 0.15:  # a rare word: two characters no other title is likely to have
        title = f"{rng.choice(_RARE)}{rng.choice(_RARE)}{title}"
    return title, clc, heading


def _en_title(rng: random.Random) -> tuple[str, str, str]:
    topic, _lcc, clc, heading, _area = rng.choice(EN_TOPICS)
    pattern = rng.choice(EN_PATTERNS)
    topic = rng.choice(_EN_BEFORE) + topic
    return pattern.format(t=topic, T=topic[:1].upper() + topic[1:]), clc, heading


def _works(rng: random.Random) -> Iterator[dict]:
    number = 0
    while True:
        number += 1
        chinese = rng.random() < 0.7
        if chinese:
            title, clc, heading = _zh_title(rng)
            authors = [rng.choice(SURNAMES) + rng.choice(GIVEN)
                       for _ in range(rng.choice((1, 1, 1, 2, 3)))]
            publisher, place, registrant, _areas = rng.choice(ZH_PUBLISHERS)
            digits = 8 - len(registrant)
            isbn12 = f"9787{registrant}{number % 10 ** digits:0{digits}d}"
            language = "chi"
        else:
            title, clc, heading = _en_title(rng)
            authors = [f"{rng.choice(EN_SURNAMES)}, {rng.choice(EN_GIVEN)}"
                       for _ in range(rng.choice((1, 1, 2)))]
            publisher, place, prefix, _country = rng.choice(EN_PUBLISHERS)
            prefix = prefix.replace("-", "")
            digits = 12 - 3 - len(prefix)
            isbn12 = f"978{prefix}{number % 10 ** digits:0{digits}d}"
            language = "eng"
        yield {
            "number": number, "title": title, "clc": clc, "subjects": [heading],
            "authors": authors, "publisher": publisher, "place": place,
            "year": min(2025, int(rng.triangular(1950, 2026, 2018))),
            "isbn": isbn12 + isbn13_check(isbn12) if rng.random() < 0.85 else None,
            "subtitle": rng.choice(ZH_SUBTITLES) if chinese and rng.random() < 0.2 else None,
            "language": language,
        }


def _record(rng: random.Random, library: str, serial: int, work: dict) -> dict:
    call = f"{work['clc']}/{rng.randint(1, 999)}"
    return {
        "id": f"{library}:{serial:07d}", "format": "marc21" if work["language"] == "eng"
        else rng.choice(("marc21", "unimarc")),
        "title": work["title"],
        "subtitle": work["subtitle"] if rng.random() < 0.9 else None,
        "responsibility": "，".join(work["authors"]) + ("著" if work["language"] == "chi"
                                                       else ""),
        "authors": work["authors"], "publisher": work["publisher"], "place": work["place"],
        "year": work["year"], "edition": None, "extent": f"{rng.randint(80, 900)}页",
        "language": work["language"], "material_type": "book",
        "isbns": [work["isbn"]] if work["isbn"] and rng.random() < 0.95 else [],
        "issns": [], "subjects": work["subjects"],
        "classification": [{"scheme": "clc", "value": work["clc"]}],
        "call_numbers": [call],
        "holdings": [{"library": library, "location": "中文书库", "call_number": call,
                      "barcode": f"{library}{serial:08d}", "status": "available",
                      "due": None}],
    }


def library_ids(count: int) -> list[str]:
    return [f"lib{i:04d}" for i in range(count)]


def write(folder: Path, records: int, libraries: int, seed: int = 15) -> list[Path]:
    """About ``records`` records over ``libraries`` harvests ``folder/ID.jsonl``."""
    rng = random.Random(seed)
    ids = library_ids(libraries)
    # A few large libraries hold much more than the many small ones (Zipf-like shares).
    weights = [1 / (i + 1) ** 0.8 for i in range(libraries)]
    folder.mkdir(parents=True, exist_ok=True)
    handles = {lib: open(folder / f"{lib}.jsonl", "w", encoding="utf-8")  # noqa: SIM115
               for lib in ids}
    serial = written = 0
    try:
        works = _works(rng)
        while written < records:
            work = next(works)
            holders = min(libraries, rng.choices(HOLDERS, HOLDER_WEIGHTS)[0])
            chosen: set[str] = set()
            while len(chosen) < holders:
                chosen.add(rng.choices(ids, weights)[0])
            for library in sorted(chosen):
                serial += 1
                handles[library].write(json.dumps(_record(rng, library, serial, work),
                                                  ensure_ascii=False) + "\n")
                written += 1
    finally:
        for handle in handles.values():
            handle.close()
    paths = [folder / f"{lib}.jsonl" for lib in ids]
    for path in paths:  # a library that drew nothing has no harvest
        if path.stat().st_size == 0:
            path.unlink()
    return [p for p in paths if p.exists()]
