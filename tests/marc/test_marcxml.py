"""Alma's own MARC21 conversion of Chinese records (BNU, ``sample_marcxml.xml``).

The leaders have a blank record length (``     nam  22      i 4500``), 008 ends in
``chi^^`` and often dates ``########``, there is no 1XX, and AVA (print) or AVE (e-book)
fields carry availability. Expected values were read off the raw fields: 245 $a/$c
(never $h 电子资源), 260 $a/$b, year from 008/07-10 else 260$c, 300$a, 700$a, 020$a (the
price in $c is not an ISBN), and AVA $c/$d/$e.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest

from marc import Holding, Record, normalize, read_bytes, read_file

MARCXML = "dp2-bnu-alma-sru/sample_marcxml.xml"

INST = "86BNU_INST"
STACKS_6F = "中文库本书—A-H(主馆六层)"
STACKS_4F = "中文书—A-H(主馆四层)"
STACKS_7F = "中文库本书—IJKZ(主馆七层)"
RESERVE_B2 = "中文预约书—1986-1995(主馆地下二层戊区)"
BJUT_PRESS = "北京工业大学出版社"


def ava(location: str, call_number: str) -> Holding:
    return Holding(library=INST, location=location, call_number=call_number,
                   status="available")


@cache
def _load(path: Path) -> tuple[Record, ...]:
    out = []
    for entry in read_file(path):
        assert entry.record is not None, f"{entry.position}: {entry.problems}"
        assert entry.flavour == "marc21"
        out.append(normalize(entry.record, flavour=entry.flavour, warnings=entry.problems))
    return tuple(out)


@pytest.fixture()
def marcxml(marc_data) -> tuple[Record, ...]:
    return _load(marc_data / MARCXML)


COMMON = {
    "format": "marc21", "subtitle": None, "edition": None, "language": "chi",
    "material_type": "book", "issns": (), "subjects": (), "classification": (),
    "romanized": None, "call_numbers": (), "holdings": (), "warnings": (),
}

EXPECTED = {
    1: {  # leader/07 'a': a component part (a conference report in a yearbook)
        "id": "9911676899703961", "title": "·附录· “中国近代史上的民族主义”国际学术研讨会综述",
        "responsibility": None, "authors": (), "publisher": "社会科学文献出版社",
        "place": None, "year": 2012, "extent": None, "material_type": "article", "isbns": (),
    },
    2: {
        "id": "990006328110203961", "title": "'08中国改革跟踪报告",
        "responsibility": "国家发展和改革委员会经济体制与管理研究所课题组编", "authors": (),
        "publisher": "高等教育出版社", "place": "北京", "year": 2008, "extent": "233页",
        "isbns": ("9787040247657",), "call_numbers": ("D61 bnu201",),
        "holdings": (ava(STACKS_4F, "D61 bnu201"), ava(STACKS_6F, "D61 bnu201")),
    },
    3: {  # 008 dates '########': the year comes from 260$c
        "id": "9910666685103961", "title": "'2005中国小说排行榜",
        "responsibility": "《小说选刊》杂志社编", "authors": (), "publisher": BJUT_PRESS,
        "place": None, "year": 2006, "extent": "在线资源(414页)", "isbns": ("9787563916245",),
    },
    4: {
        "id": "9910698661303961", "title": "'2006中国散文排行榜",
        "responsibility": "周明，王宗仁主编", "authors": ("周明", "王宗仁"),
        "publisher": BJUT_PRESS, "place": None, "year": 2007, "extent": "在线资源(281页)",
        "isbns": ("9787563917372",),
    },
    5: {
        "id": "9910679586503961", "title": "'2006中国随笔排行榜",
        "responsibility": "张秀枫主编", "authors": ("张秀枫",), "publisher": BJUT_PRESS,
        "place": None, "year": 2007, "extent": "在线资源(263页)", "isbns": ("9787563917358",),
    },
    6: {
        "id": "9910679562303961", "title": "'2006中国小说排行榜",
        "responsibility": "《小说选刊》杂志社编选", "authors": (), "publisher": BJUT_PRESS,
        "place": None, "year": 2007, "extent": "在线资源(332页)", "isbns": ("9787563917365",),
    },
    7: {
        "id": "9910679562203961", "title": "'2006中国杂文排行榜",
        "responsibility": "蒋元明编", "authors": ("蒋元明",), "publisher": BJUT_PRESS,
        "place": None, "year": 2007, "extent": "在线资源(263页)", "isbns": ("9787563917389",),
    },
    8: {  # 260$c '1992.8'; 008/07-10 says 1992
        "id": "990000742440203961", "title": "'90中国犹太学研究总汇",
        "responsibility": "朱威烈,金应忠编", "authors": ("朱威烈", "金应忠"),
        "publisher": "三联书店上海分店", "place": "上海", "year": 1992, "extent": "314页",
        "isbns": ("9787542605856",), "call_numbers": ("K18 7",),
        "holdings": (ava(STACKS_7F, "K18 7"), ava(RESERVE_B2, "K18 7")),
    },
    9: {  # the e-book of record 10: same ISBN
        "id": "9910694470203961", "title": "'92中国备忘", "responsibility": "房方，周晓农编",
        "authors": ("房方", "周晓农"), "publisher": "贵州人民出版社", "place": None,
        "year": 1993, "extent": "在线资源(385页)", "isbns": ("9787221029683",),
    },
    10: {
        "id": "990002072570203961", "title": "'92中国备忘", "responsibility": None,
        "authors": ("房方", "周晓农"), "publisher": "贵州人民出版社", "place": "贵阳",
        "year": 1993, "extent": "385,[10]页", "isbns": ("9787221029683",),
        "call_numbers": ("I25 955",),
        "holdings": (ava(STACKS_6F, "I25 955"), ava(RESERVE_B2, "I25 955")),
    },
}


def test_ten_marc21_records(marc_data):
    entries = list(read_file(marc_data / MARCXML))
    assert [e.number for e in entries] == list(range(1, 11))
    assert {e.flavour for e in entries} == {"marc21"}
    assert all(e.problems == () for e in entries)


@pytest.mark.parametrize("number", range(1, 11))
def test_fields(marcxml, number):
    record = marcxml[number - 1]
    # The six 超星 e-books say so only in 245$h 电子资源; they are electronic, not books.
    kind = {"material_type": "electronic"} if record.source["245"].get("h") else {}
    want = {**COMMON, **kind, **EXPECTED[number]}
    assert {name: getattr(record, name) for name in want} == want


def test_gmd_is_not_part_of_the_title(marcxml):
    """245$h 电子资源 (general material designation) stays out of the title."""
    ebooks = [r for r in marcxml if r.source["245"].get("h")]
    assert len(ebooks) == 6
    assert not any("电子资源" in (r.title or "") for r in ebooks)
    assert {r.material_type for r in ebooks} == {"electronic"}


def test_a_surrogate_reference_skips_the_record_and_the_rest_is_read(marc_data):
    """lxml's recovering parser keeps &#xD800; in an attribute it then cannot decode."""
    text = (marc_data / "pymarc" / "batch.xml").read_text("utf-8")
    first = text.index('tag="245"')
    damaged = text[:first + 5] + "&#xD800;" + text[first + 5:]
    entries = list(read_bytes(damaged.encode("utf-8")))
    skipped = [e for e in entries if e.record is None and "not Unicode text" in e.problems[0]]
    assert len(skipped) == 1
    assert len([e for e in entries if e.record is not None]) == 1  # the other record
