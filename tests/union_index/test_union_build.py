"""Building a union index (broker/union_index/build.py) and its statistics
(broker/union_index/stats.py)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from union_data import CLUSTERS, HARVESTS, HOLDERS, SHARED, UNIQUE, write_harvests, write_jsonl

from broker.demo import catalogues as demo_catalogues
from broker.demo import members as demo_members
from broker.kernel.errors import IndexFileError, SourceOpenError, UsageError
from broker.search.merge import Merger
from broker.union_index.build import Source, build, connect, parse_source, raw_marc, read_source
from broker.union_index.stats import render, stats
from marc import Record, read_file

# The files of the Zebra test peer's databases (tests/peers/servers.py), as harvests.
MARC_FILES = {
    "lc": "yaz/marccol1.u8.marc", "lc3": "yaz/marccol3.u8.marc", "lc4": "yaz/marccol4.u8.marc",
    "oclc": "marc4j/oclc_63111280_export_as_UTF8_from_connexion.mrc",
    "summer": "marc4j/summerland.mrc", "perl": "pymarc/test.dat",
    "ol": "openlibrary/880_alternate_script.mrc", "alma": "dp2-bnu-alma-sru/sample_marcxml.xml",
    "bnu": "derived/bnu_cnmarc.utf8.iso", "it": "pymarc/testunimarc.dat",
}


def _dump(path: Path) -> list:
    """Everything an index holds, in a comparable form."""
    db = sqlite3.connect(path)
    try:
        tables = ("clusters", "records", "identifiers", "match_keys", "match_evidence",
                  "meta")
        out = [list(db.execute(f"SELECT * FROM {t} ORDER BY 1, 2")) for t in tables]
        out.append(list(db.execute("SELECT rowid, * FROM record_text ORDER BY rowid")))
        return out
    finally:
        db.close()


def _clusters(path: Path) -> list[tuple[str, list[tuple[str, str]]]]:
    """(cluster name, [(library, record id)...]) in cluster order."""
    db = connect(path)
    rows = db.execute("SELECT c.name, r.library, r.record_id FROM clusters c JOIN records r "
                      "ON r.cluster = c.id ORDER BY c.id, r.id").fetchall()
    db.close()
    out: dict[str, list] = {}
    for name, library, record_id in rows:
        out.setdefault(name, []).append((library, record_id))
    return list(out.items())


def _merger_clusters(harvests: list[tuple[str, list[Record]]]):
    merger = Merger()
    for library, records in harvests:
        merger.add(library, records)
    return [(c.id, [(lib, r.id) for lib, r in c.records]) for c in merger.clusters]


@pytest.fixture()
def harvests(tmp_path) -> list[Path]:
    folder = tmp_path / "harvest"
    folder.mkdir()
    return write_harvests(folder)


def test_overlap_is_counted_in_clusters_as_worked_out_by_hand(harvests, tmp_path):
    index = tmp_path / "union.sqlite"
    result = build([parse_source(str(p)) for p in harvests], index)
    assert (result.records, result.clusters, result.skipped) == (10, 5, 0)
    numbers = stats(index)
    assert (numbers.records, numbers.clusters) == (10, 5)
    assert {lib.id: lib.records for lib in numbers.libraries} == {"a": 4, "b": 3, "c": 3}
    assert {lib.id: lib.clusters for lib in numbers.libraries} == CLUSTERS
    assert {lib.id: lib.unique for lib in numbers.libraries} == UNIQUE
    assert numbers.shared == SHARED
    assert numbers.holders == HOLDERS
    assert numbers.share("a", "b") == pytest.approx(2 / 4)
    assert numbers.share("b", "a") == pytest.approx(2 / 3)
    assert numbers.share("c", "b") == pytest.approx(1.0)
    assert numbers.share("a", "c") == pytest.approx(1 / 4)
    data = numbers.as_dict()
    assert data["overlap"]["b"]["c"] == {"shared": 2, "share": 0.6667}
    assert data["overlap"]["c"]["a"] == {"shared": 1, "share": 0.5}
    assert data["holders"] == {"1": 2, "2": 2, "3": 1}
    text = render(numbers)
    assert "10 records in 5 clusters from 3 libraries" in text
    rows = {line.split()[0]: line.split()[1:] for line in text.splitlines()[-3:]}
    assert rows == {"a": ["-", "50", "25"], "b": ["67", "-", "67"], "c": ["50", "100", "-"]}


def test_clusters_are_the_brokers_merge_of_the_same_records(harvests, tmp_path):
    index = tmp_path / "union.sqlite"
    build([parse_source(str(p)) for p in harvests], index)
    assert _clusters(index) == _merger_clusters(list(HARVESTS.items()))


def test_real_marc_files_cluster_as_the_merger_does(marc_data, tmp_path):
    sources = [Source(lib, marc_data / name) for lib, name in MARC_FILES.items()]
    index = tmp_path / "union.sqlite"
    result = build(sources, index)
    expected = {lib: [e for e in read_file(marc_data / name) if e.record is not None]
                for lib, name in MARC_FILES.items()}
    assert result.records == sum(map(len, expected.values())) == 55
    loaded = [(s.library, [item.record for item in read_source(s)]) for s in sources]
    assert _clusters(index) == _merger_clusters(loaded)
    db = connect(index)
    # The MARC is kept and reads back as the record it came from.
    for blob, flavour, data in db.execute("SELECT marc, flavour, data FROM records"):
        marc = raw_marc(blob, flavour).parse()
        assert marc is not None and marc["001"].data.strip() in json.loads(data)["id"]
    db.close()


def test_the_demo_catalogues_cluster_as_the_merger_does(tmp_path):
    directory = demo_members.load_members()
    plans = demo_members.plan(lib.id for lib in directory.libraries)
    demo_catalogues.write(tmp_path / "demo", plans, directory)
    files = [tmp_path / "demo" / p.file_name for p in plans]
    index = tmp_path / "demo.sqlite"
    result = build([parse_source(str(f)) for f in files], index)
    loaded = [(p.id, [item.record for item in read_source(Source(p.id, f))])
              for p, f in zip(plans, files, strict=True)]
    assert result.records == sum(len(records) for _, records in loaded) > 4000
    assert _clusters(index) == _merger_clusters(loaded)
    assert stats(index).clusters == result.clusters


def test_building_twice_gives_the_same_index_and_a_rebuild_replaces_it(harvests, tmp_path):
    first, second = tmp_path / "one.sqlite", tmp_path / "two.sqlite"
    sources = [parse_source(str(p)) for p in harvests]
    build(sources, first)
    build(sources, second)
    assert _dump(first) == _dump(second)
    build(sources, first)  # over itself
    assert _dump(first) == _dump(second)
    build(sources[:2], first)  # without c
    assert [lib.id for lib in stats(first).libraries] == ["a", "b"]
    assert stats(first).clusters == 5  # b5 is still b's
    assert not list(tmp_path.glob(".*building*"))


def test_a_bad_record_is_reported_with_its_position_and_the_rest_loaded(marc_data, tmp_path):
    records = (marc_data / "pymarc/test.dat").read_bytes().split(b"\x1d")[:-1]
    damaged = b"ABCDE" + records[3][5:]  # a record length that is not a number
    path = tmp_path / "perl.mrc"
    path.write_bytes(b"\x1d".join([*records[:3], damaged, *records[4:]]) + b"\x1d")
    problems: list[str] = []
    result = build([parse_source(str(path))], tmp_path / "u.sqlite", report=problems.append)
    assert (result.records, result.skipped) == (9, 2)
    assert problems == [
        f"{path}: byte 2007: 10 bytes that are not a MARC record skipped; skipped",
        f"{path}: record 4, byte 2017: no field could be located in the record's data; "
        "skipped",
    ]


def test_bad_json_lines_are_reported_by_line(tmp_path):
    path = write_jsonl(tmp_path / "a.jsonl", HARVESTS["a"])
    lines = path.read_text("utf-8").splitlines()
    bad = json.loads(lines[1])
    bad["authors"] = "not a list"
    lines[1] = json.dumps(bad)
    lines.insert(3, "{not json")
    lines.insert(4, "")
    path.write_text("\n".join(lines) + "\n", "utf-8")
    problems: list[str] = []
    result = build([parse_source(str(path))], tmp_path / "u.sqlite", report=problems.append)
    assert (result.records, result.skipped) == (3, 2)
    assert problems == [
        f"{path}: line 2: not a normalized record: 'authors' must be a list; skipped",
        f"{path}: line 4: not a normalized record: Expecting property name enclosed in "
        "double quotes; skipped",
    ]


def test_the_same_record_twice_is_kept_once(tmp_path):
    path = write_jsonl(tmp_path / "b.jsonl", HARVESTS["b"] + HARVESTS["b"][:1])
    problems: list[str] = []
    result = build([parse_source(str(path))], tmp_path / "u.sqlite", report=problems.append)
    assert (result.records, result.repeated) == (3, 1)
    assert problems == [f"{path}: line 4: record b:10 was already loaded for b; kept once"]


def test_nothing_is_written_when_a_file_is_missing_or_nothing_can_be_read(harvests, tmp_path):
    index = tmp_path / "union.sqlite"
    build([parse_source(str(harvests[0]))], index)
    before = _dump(index)
    with pytest.raises(SourceOpenError, match=r"nope\.mrc does not exist"):
        build([parse_source(str(harvests[1])), parse_source(str(tmp_path / "nope.mrc"))],
              index)
    empty = tmp_path / "c.mrc"
    empty.write_bytes(b"")
    garbage = tmp_path / "d.mrc"
    garbage.write_bytes(b"\n\n")
    with pytest.raises(UsageError, match="no readable record in 2 files"):
        build([parse_source(str(empty)), parse_source(str(garbage))], index)
    assert _dump(index) == before
    with pytest.raises(UsageError, match="does not exist"):
        build([parse_source(str(harvests[0]))], tmp_path / "no" / "where.sqlite")
    with pytest.raises(UsageError, match="at least one"):
        build([], index)


def test_which_library_a_file_came_from():
    assert parse_source("harvest/bupt.mrc") == Source("bupt", Path("harvest/bupt.mrc"))
    assert parse_source("h/bnu.2024-05.iso") == Source("bnu", Path("h/bnu.2024-05.iso"))
    assert parse_source("pku=h/2024.xml") == Source("pku", Path("h/2024.xml"))
    assert parse_source("a=b=c.mrc") == Source("a", Path("b=c.mrc"))
    for unnamed in ("h/2024.mrc", "h/Big.mrc", "h/.hidden", "h/a=b.mrc"):
        with pytest.raises(UsageError, match="cannot tell which library"):
            parse_source(unnamed)


def test_an_index_that_cannot_be_read_is_one_clear_error(tmp_path):
    with pytest.raises(IndexFileError, match="does not exist"):
        connect(tmp_path / "none.sqlite")
    with pytest.raises(IndexFileError, match="is not a file"):
        connect(tmp_path)
    text = tmp_path / "notes.txt"
    text.write_text("hello " * 200)
    with pytest.raises(IndexFileError, match="cannot be read as a union index"):
        connect(text)
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE meta (key TEXT, value TEXT)")
    with pytest.raises(IndexFileError, match="is not a union index"):
        connect(other)
    with sqlite3.connect(other) as db:
        db.executemany("INSERT INTO meta VALUES (?, ?)",
                       [("kind", "balis union index"), ("schema", "0")])
    with pytest.raises(IndexFileError, match="another version"):
        stats(other)
