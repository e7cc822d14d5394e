"""Real CNMARC from a BALIS member: Beijing Normal University's Alma (SRU answers).

The ten records of ``dp2-bnu-alma-sru/sample_cnmarcxml.xml`` arrive five ways: as
``cnmarcxml`` and ``unimarcxml`` (same content, different namespaces) and as ISO 2709 in
UTF-8 and in GBK (``derived/``). Every way must give the same normalized records, and the
expected values below were read off the raw fields (not copied from the program's output):

* title 200$a, subtitle 200$e, responsibility 200$f; authors 701/711 $a (never the
  uppercase pinyin $A, which only feeds ``romanized``);
* publisher 210$c, place 210$a, year 100$a/09-12, else 210$d (record 4 has ``####``);
* ISBN-13 from 010$a (the price in 010$d is not an ISBN), language 101$a, extent 215$a;
* subjects 606 $a with $x/$y/$z joined by " -- "; classification 690 (CLC) and 692 (科图法);
* call number 905$s, holdings from Alma's AVA ($c location, $d call number, $e status).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest

from marc import (
    Classification,
    Entry,
    Holding,
    Record,
    Romanized,
    normalize,
    read_bytes,
    read_file,
)

BNU = "dp2-bnu-alma-sru"
CNMARCXML = f"{BNU}/sample_cnmarcxml.xml"
UNIMARCXML = f"{BNU}/sample_unimarcxml.xml"
ISO_UTF8 = "derived/bnu_cnmarc.utf8.iso"
ISO_GBK = "derived/bnu_cnmarc.gbk.iso"

# Every way the ten records can be read correctly: (file, encoding argument).
SOURCES = {
    "cnmarcxml": (CNMARCXML, "auto"),
    "unimarcxml": (UNIMARCXML, "auto"),
    "iso-utf8": (ISO_UTF8, "auto"),
    "iso-gbk": (ISO_GBK, "auto"),
    "iso-gbk-as-gb18030": (ISO_GBK, "gb18030"),
    "iso-gbk-as-gbk": (ISO_GBK, "gbk"),
}


def load(path: Path, **options) -> list[tuple[Entry, Record]]:
    """(entry, normalized record) for every entry of a file; every entry must be a record."""
    pairs = []
    for entry in read_file(path, **options):
        assert entry.record is not None, f"{path.name} {entry.position}: {entry.problems}"
        record = normalize(entry.record, flavour=entry.flavour, warnings=entry.problems)
        pairs.append((entry, record))
    return pairs


@cache
def _records(path: Path, encoding: str) -> tuple[Record, ...]:
    return tuple(record for _entry, record in load(path, encoding=encoding))


def records(marc_data: Path, source: str) -> tuple[Record, ...]:
    """The normalized records of one of SOURCES, read once per session."""
    path, encoding = SOURCES[source]
    return _records(marc_data / path, encoding)


# --- what the raw fields say -------------------------------------------------------------

INST = "86BNU_INST"  # AVA $a: Alma's institution code, the holding library when none is given
STACKS_6F = "中文库本书—A-H(主馆六层)"
STACKS_4F = "中文书—A-H(主馆四层)"
RESERVE_B2 = "中文预约书—1986-1995(主馆地下二层戊区)"
PETTY_LIBRARY = "中外文书-配第书馆(国民核算研究院，前主楼B区524室)"
STATS_BUREAU = "国家统计局"
STATS_PRESS = "中国统计出版社"


def ava(location: str, call_number: str = "F124 26") -> Holding:
    return Holding(library=INST, location=location, call_number=call_number,
                   status="available")


def clc(value: str) -> Classification:
    return Classification("clc", value)


def cas(value: str) -> Classification:
    return Classification("cas", value)


# Defaults shared by the ten records (all Chinese monographs from the same publisher).
COMMON = {
    "format": "unimarc", "subtitle": None, "responsibility": "国家统计局编",
    "publisher": STATS_PRESS, "place": "北京", "edition": None, "language": "chi",
    "material_type": "book", "issns": (), "call_numbers": ("F124/26",),
}

EXPECTED = {
    1: {
        "id": "990002180740203961", "title": "'94中国发展报告",
        "authors": ("叶震", "李强", STATS_BUREAU), "year": 1994, "extent": "320页",
        "isbns": ("9787503717444",), "subjects": ("经济发展 -- 概况 -- 中国 -- 1994",),
        "classification": (clc("F124"),),
        "holdings": (ava(STACKS_6F), ava(RESERVE_B2)),
    },
    2: {
        "id": "990002181190203961", "title": "'95中国发展报告",
        "authors": (STATS_BUREAU,), "year": 1995, "extent": "306页",
        "isbns": ("9787503720208",), "subjects": ("经济发展 -- 概况 -- 中国 -- 1995",),
        "classification": (clc("F124"), cas("28.24")),
        "holdings": (ava(STACKS_4F), ava(STACKS_6F), ava(PETTY_LIBRARY)),
    },
    3: {
        "id": "990002181050203961", "title": "'96 中国发展报告", "subtitle": "中国的“八五”",
        "authors": ("张塞",), "year": 1996, "extent": "422,图版[40]页",
        "isbns": ("9787503722912",), "subjects": ("经济发展 -- 概况 -- 中国 -- 1996",),
        "classification": (clc("F124"),),
        "holdings": (ava(STACKS_4F), ava(STACKS_6F), ava(PETTY_LIBRARY)),
    },
    4: {  # the e-book (超星): no 210$a, 100$a dates '########', no 905, only AVE
        "id": "9910637057203961", "title": "'97中国发展报告",
        "authors": (STATS_BUREAU,), "place": None, "year": 1997, "extent": "在线资源(393页)",
        "isbns": ("9787503726231",), "subjects": ("经济发展 概况 中国 1997",),
        "classification": (clc("F124"),), "call_numbers": (), "holdings": (),
        # Printed-text leader, but 135 and 200$b 电子资源 say it is electronic.
        "material_type": "electronic",
    },
    5: {
        "id": "990001379280203961", "title": "'97中国发展报告",
        "authors": (STATS_BUREAU,), "year": 1997, "extent": "393页",
        "isbns": ("9787503726231",),
        "subjects": ("经济发展 -- 中国 -- 1997", "社会发展 -- 中国 -- 1997"),
        "classification": (clc("F124"), cas("28.2")),
        "holdings": (ava(STACKS_6F), ava(PETTY_LIBRARY)),
    },
    6: {
        "id": "990001379150203961", "title": "'98中国发展报告",
        "authors": (STATS_BUREAU,), "year": 1998, "extent": "397页",
        "isbns": ("9787503727900",), "subjects": ("经济发展 -- 概况 -- 中国 -- 1998",),
        "classification": (clc("F124"), cas("29.972"), cas("28.24")),
        "holdings": (ava(STACKS_6F), ava(PETTY_LIBRARY)),
    },
    7: {
        "id": "990001379140203961", "title": "'99中国发展报告",
        "authors": (STATS_BUREAU,), "year": 1999, "extent": "387页",
        "isbns": ("9787503728990",),
        "subjects": ("经济发展 -- 概况 -- 中国 -- 1998", "社会发展 -- 概况 -- 中国 -- 1998"),
        "classification": (clc("F124"), clc("F12")),
        "holdings": (ava(STACKS_4F), ava(STACKS_6F)),
    },
    8: {
        "id": "990002264090203961", "title": "’92中国发展报告",
        "authors": (STATS_BUREAU,), "year": 1993, "extent": "350页",
        "isbns": ("9787503707582",), "subjects": ("社会分析 -- 中国",),
        "classification": (clc("D668"),), "call_numbers": ("D668/4",),
        "holdings": (ava(STACKS_6F, "D668 4"), ava(PETTY_LIBRARY, "D668 4")),
    },
    9: {
        "id": "990000953830203961", "title": "`93中国发展报告",
        "authors": ("张塞", STATS_BUREAU), "year": 1994, "extent": "277页",
        "isbns": ("9787503714252",), "subjects": ("经济发展 -- 概况 -- 中国 -- 1993",),
        "classification": (clc("F124"),),
        "holdings": (ava(RESERVE_B2), ava(STACKS_6F), ava(PETTY_LIBRARY)),
    },
    10: {
        "id": "990004545720203961", "title": "1999 年中国发展状况与趋势",
        "responsibility": "主编季野, 张西明, 张弢...[等]",
        "authors": ("季野", "张西明", "曲克敏"), "publisher": "经济日报出版社",
        "year": 1999, "extent": "10, 374页", "isbns": ("9787801275554",),
        "subjects": ("社会发展 -- 概况 -- 中国", "社会发展 -- 预测 -- 中国",
                     "经济发展趋势 -- 中国"),
        "classification": (clc("D668"), clc("F124")), "call_numbers": ("D668/bnu4",),
        "holdings": (ava(STACKS_6F, "D668 bnu4"),),
    },
}

# 200$A and the 7XX $A, in author order; no 210 has $C.
ROMANIZED = {
    1: Romanized("'94Zhong Guo Fa Zhan Bao Gao", ("Xie Zhen", "Li Qiang", "Guo Jia Tong Ji Ju"),
                 None),
    2: Romanized("'95 Zhong Guo Fa Zhan Bao Gao", ("Guo Jia Tong Ji Ju",), None),
    3: Romanized("'96 Zhong Guo Fa Zhan Bao Gao", ("Zhang Sai",), None),
    4: None,  # the e-book record has no pinyin at all
    5: Romanized("'97 Zhong Guo Fa Zhan Bao Gao", ("Guo Jia Tong Ji Ju",), None),
    6: Romanized("'98 zhong guo fa zhan bao gao", ("guo jia tong ji ju",), None),
    7: Romanized("'99 Zhong Guo Fa Zhan Bao Gao", ("Guo Jia Tong Ji Ju",), None),
    8: Romanized("92 zhongguo fazhan baogao", ("guojia tongjiju",), None),
    9: Romanized("`93 Zhong Guo Fa Zhan Bao Gao", ("Zhang Sai", "Guo Jia Tong Ji Ju"), None),
    10: Romanized("1999 Nian Zhong Guo Fa Zhan Zhuang Kuang Yu Qu Shi",
                  ("Ji Ye", "Zhang Xi Ming", "Qu Ke Min"), None),
}


def expected(number: int) -> dict:
    return {**COMMON, **EXPECTED[number]}


# --- reading ------------------------------------------------------------------------------


@pytest.mark.parametrize("source", SOURCES)
def test_ten_unimarc_records_in_order(marc_data, source):
    path, encoding = SOURCES[source]
    entries = [entry for entry, _record in load(marc_data / path, encoding=encoding)]
    assert [e.number for e in entries] == list(range(1, 11))
    assert {e.flavour for e in entries} == {"unimarc"}
    assert all(e.problems == () for e in entries)


@pytest.mark.parametrize(("source", "charset"), [
    ("cnmarcxml", "utf-8"), ("iso-utf8", "utf-8"), ("iso-gbk", "gb18030"),
    ("iso-gbk-as-gb18030", "gb18030"),
])
def test_encoding_reported(marc_data, source, charset):
    path, encoding = SOURCES[source]
    assert {e.encoding for e, _r in load(marc_data / path, encoding=encoding)} == {charset}


# --- field by field -----------------------------------------------------------------------


@pytest.mark.parametrize("number", range(1, 11))
@pytest.mark.parametrize("source", SOURCES)
def test_fields(marc_data, source, number):
    record = records(marc_data, source)[number - 1]
    want = expected(number)
    got = {name: getattr(record, name) for name in want}
    assert got == want


@pytest.mark.parametrize("number", range(1, 11))
@pytest.mark.parametrize("source", SOURCES)
def test_romanized_is_the_pinyin(marc_data, source, number):
    assert records(marc_data, source)[number - 1].romanized == ROMANIZED[number]


@pytest.mark.parametrize("source", ["cnmarcxml", "unimarcxml"])
def test_year_falls_back_to_210d_when_100_has_no_date(marc_data, source):
    record = records(marc_data, source)[3]
    general = record.source["100"]["a"]
    assert general[8:17] == "d########"  # the data this test is about
    assert record.source["210"]["d"] == "1997"
    assert record.year == 1997


@pytest.mark.parametrize("source", ["cnmarcxml", "iso-gbk"])
def test_price_in_010d_is_not_an_isbn(marc_data, source):
    for record in records(marc_data, source):
        assert len(record.isbns) == 1
        assert not any("ISBN" in warning for warning in record.warnings)
    # record 5 has 'CNY赠90.00' (a gift, with its price) in 010$d
    assert records(marc_data, source)[4].source["010"]["d"] == "CNY赠90.00"


def _uppercase_values(record: Record) -> set[str]:
    return {sf.value.strip() for field in record.source.get_fields()
            if not field.is_control_field()
            for sf in field.subfields if sf.code.isupper() and sf.value.strip()}


def _strings(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list | tuple):
        return [s for v in value for s in _strings(v)]
    return []


@pytest.mark.parametrize("source", SOURCES)
def test_pinyin_only_in_romanized(marc_data, source):
    """No value outside ``romanized`` carries text from an uppercase ($A, $E, $F) subfield."""
    checked = 0
    for record in records(marc_data, source):
        pinyin = _uppercase_values(record)
        shown = {k: v for k, v in record.as_dict().items() if k != "romanized"}
        for text in _strings(shown):
            leaked = [p for p in pinyin if p in text]
            assert not leaked, f"{record.id}: {text!r} contains pinyin {leaked}"
        checked += len(pinyin)
    assert checked > 50  # the records do have pinyin to leak


# --- the same records, whatever the transport ---------------------------------------------


@pytest.mark.parametrize("source", [s for s in SOURCES if s != "cnmarcxml"])
def test_same_records_as_cnmarcxml(marc_data, source):
    reference = [r.as_dict() for r in records(marc_data, "cnmarcxml")]
    assert [r.as_dict() for r in records(marc_data, source)] == reference


def test_library_owns_id_and_holdings(marc_data):
    entries = list(read_file(marc_data / CNMARCXML))
    record = normalize(entries[0].record, flavour=entries[0].flavour, library="bnu")
    assert record.id == "bnu:990002180740203961"
    assert [h.library for h in record.holdings] == ["bnu", "bnu"]
    assert [h.location for h in record.holdings] == [STACKS_6F, RESERVE_B2]


# --- damage and filler --------------------------------------------------------------------


@pytest.fixture(scope="module")
def gbk_read_as_utf8(marc_data):
    return load(marc_data / ISO_GBK, encoding="utf-8")


def test_gbk_read_as_utf8_keeps_every_record(gbk_read_as_utf8):
    assert [entry.number for entry, _r in gbk_read_as_utf8] == list(range(1, 11))
    assert {entry.encoding for entry, _r in gbk_read_as_utf8} == {"utf-8"}


def test_gbk_read_as_utf8_marks_the_damage(gbk_read_as_utf8):
    for entry, record in gbk_read_as_utf8:
        assert "\ufffd" in record.title, record.title
        assert "\ufffd" in record.publisher
        assert any("field 200" in p and "utf-8" in p for p in entry.problems), entry.problems
        assert record.warnings == entry.problems


def test_gbk_read_as_utf8_keeps_ascii_values(marc_data, gbk_read_as_utf8):
    """What is ASCII in the record (ids, ISBNs, dates, classes) survives the wrong charset."""
    ascii_fields = ("id", "format", "year", "language", "material_type", "isbns",
                    "classification", "call_numbers")
    clean = records(marc_data, "iso-gbk")
    for (_entry, damaged), good in zip(gbk_read_as_utf8, clean, strict=True):
        for name in ascii_fields:
            assert getattr(damaged, name) == getattr(good, name), (good.id, name)
        assert [h.call_number for h in damaged.holdings] == [
            h.call_number for h in good.holdings]


def test_gbk_read_as_utf8_does_not_merge_damaged_values(marc_data, gbk_read_as_utf8):
    """Three different 701 names that all decode to U+FFFD runs are still three authors."""
    clean = records(marc_data, "iso-gbk")
    for (_entry, damaged), good in zip(gbk_read_as_utf8, clean, strict=True):
        assert len(damaged.authors) == len(good.authors), (good.id, damaged.authors)
        assert len(damaged.subjects) == len(good.subjects), (good.id, damaged.subjects)
        assert len(damaged.holdings) == len(good.holdings), good.id


@pytest.mark.parametrize("filler", [b"\r\n", b"\n"], ids=["crlf", "lf"])
def test_line_breaks_between_records(marc_data, tmp_path, filler):
    """Chinese .iso exports put CR/LF after each record terminator; pymarc loses 9 of 10."""
    data = (marc_data / ISO_GBK).read_bytes()
    assert data.count(b"\x1d") == 10
    path = tmp_path / "bnu_cnmarc.gbk.crlf.iso"
    path.write_bytes(data.replace(b"\x1d", b"\x1d" + filler))
    pairs = load(path)
    assert [entry.number for entry, _r in pairs] == list(range(1, 11))
    assert all(entry.problems == () for entry, _r in pairs)
    reference = [r.as_dict() for r in records(marc_data, "iso-gbk")]
    assert [r.as_dict() for _e, r in pairs] == reference
    # The same from bytes in memory (a Z39.50 answer), not only from a mapped file.
    from_bytes = list(read_bytes(path.read_bytes()))
    assert [e.number for e in from_bytes] == list(range(1, 11))
    assert all(e.record is not None for e in from_bytes)


# --- SRU answers that hold no MARC -------------------------------------------------------


@pytest.mark.parametrize("name", ["sample_dc.xml", "sample_isohold.xml"])
def test_non_marc_sru_schemas_yield_no_records(marc_data, name):
    entries = list(read_file(marc_data / BNU / name))
    assert [e for e in entries if e.record is not None] == []
    assert all(e.number is None for e in entries)
    # Not silent: the reader says there was no MARC in the document.
    assert [e.problems for e in entries] == [("no MARC records in this XML document",)]
