"""Record.from_dict is the exact inverse of as_dict, over every real record we have.

Sessions shared between web processes travel as JSON (broker/search/store.py), so a record must
come back from its dict equal, field for field and type for type (tuples, not lists).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import pytest

from marc import Classification, Holding, Record, Romanized, normalize, read_file

# Every readable file of tests/data/marc (the broken ones too: what they still
# yield is a record like any other).
SUFFIXES = (".mrc", ".dat", ".marc", ".iso", ".xml", ".json")


@cache
def _all_records(marc_data: Path) -> tuple[tuple[str, Record], ...]:
    out = []
    for path in sorted(marc_data.rglob("*")):
        if path.suffix not in SUFFIXES or path.name == "sample_dc.xml":
            continue
        for entry in read_file(path):
            if entry.record is None:
                continue
            record = normalize(entry.record, flavour=entry.flavour, warnings=entry.problems,
                               library="lib")
            out.append((f"{path.relative_to(marc_data)} #{entry.position}", record))
    return tuple(out)


@pytest.fixture(scope="module")
def records(marc_data) -> tuple[tuple[str, Record], ...]:
    found = _all_records(marc_data)
    assert len(found) > 100, "expected the shared test data's records"
    return found


def _assert_same(back: Record, record: Record, where: str) -> None:
    assert back == record, where
    assert back.source is None
    for name in ("authors", "isbns", "issns", "subjects", "classification", "call_numbers",
                 "holdings", "warnings"):
        assert type(getattr(back, name)) is tuple, f"{where}: {name}"
    assert all(type(h) is Holding for h in back.holdings)
    assert all(type(c) is Classification for c in back.classification)
    if back.romanized is not None:
        assert type(back.romanized) is Romanized
        assert type(back.romanized.authors) is tuple
    assert back.as_dict() == record.as_dict(), where


def test_round_trip_every_real_record(records):
    for where, record in records:
        _assert_same(Record.from_dict(record.as_dict()), record, where)


def test_round_trip_through_json_text(records):
    for where, record in records:
        text = json.dumps(record.as_dict(), ensure_ascii=False)
        _assert_same(Record.from_dict(json.loads(text)), record, where)


def test_the_data_exercises_every_part(records):
    """The round trip above is only worth something if the records have these."""
    every = [r for _, r in records]
    assert any(r.holdings for r in every)
    assert any(r.classification for r in every)
    assert any(r.romanized is not None for r in every)
    assert any(r.romanized is not None and r.romanized.authors for r in every)
    assert any(r.warnings for r in every)
    assert any(r.format == "unimarc" for r in every)


def test_parts_round_trip():
    holding = Holding("bnu", "中文书库", "F124/26", "0123", "on_loan", "2026-01-31")
    assert Holding.from_dict(holding.as_dict()) == holding
    assert Holding.from_dict(Holding(None).as_dict()) == Holding(None)
    assert Classification.from_dict(Classification("clc", "I242.4").as_dict()) == \
        Classification("clc", "I242.4")
    romanized = Romanized("Hong lou meng", ("Cao, Xueqin",), None)
    assert Romanized.from_dict(romanized.as_dict()) == romanized


def test_merged_record_reads_too():
    """A merged record (CONTRACTS section 5) has extra keys; they are ignored."""
    record = Record("bnu:1", "unimarc", "红楼梦", isbns=("9787020065875",))
    data = {**record.as_dict(), "libraries": ["bnu"], "sources": ["bnu:1"]}
    assert Record.from_dict(data) == record
