"""LocalCatalogue: a MARC file as a searchable catalogue (broker/catalogues/marc_file.py)."""

from __future__ import annotations

import asyncio
import time

import pytest
from pymarc import Field, Indicators, Record, Subfield

from broker.catalogues.marc_file import LocalCatalogue, isbn_keys, phrase_form
from broker.kernel.cql import Boolean, Clause, parse
from broker.kernel.errors import UnsupportedQuery
from marc.normalization.text import isbn13
from marc.writer import iso2709


def _f(tag: str, *pairs: str, ind: str = "  ") -> Field:
    return Field(tag, Indicators(ind[0], ind[1]),
                 [Subfield(pairs[i], pairs[i + 1]) for i in range(0, len(pairs), 2)])


def marc21(number: int, title: str, *, author: str | None = None, year: int = 2010,
           isbn: str | None = None, issn: str | None = None, subject: str | None = None,
           publisher: str = "清华大学出版社", call: str | None = None, lang: str = "chi",
           subtitle: str | None = None) -> Record:
    record = Record(leader="00000nam a2200000 i 4500")
    record.add_field(Field("001", data=str(number)))
    record.add_field(Field("008", data=f"200101s{year}    cc a          000 0 {lang} d"))
    if isbn:
        record.add_field(_f("020", "a", isbn))
    if issn:
        record.add_field(_f("022", "a", issn))
    if author:
        record.add_field(_f("100", "a", author, ind="1 "))
    record.add_field(_f("245", "a", title, *(("b", subtitle) if subtitle else ()), ind="10"))
    record.add_field(_f("260", "a", "北京", "b", publisher, "c", str(year)))
    if subject:
        record.add_field(_f("650", "a", subject, ind=" 4"))
    if call:
        record.add_field(_f("852", "a", "T", "b", "中文书库", "h", call, "p", f"B{number}"))
    return record


RECORDS = [
    marc21(1, "中国经济发展研究", author="王建国", year=2015, isbn="9787302123453",
           subject="经济发展", call="F124/45"),
    marc21(2, "中国的经济", author="李明", year=1998, subject="经济", call="F12/3"),
    marc21(3, "中國經濟史", author="張偉", year=1985, call="F129/7"),  # traditional
    marc21(4, "Data structures", subtitle="a modern approach", author="Smith, John",
           year=2020, isbn="978-0-19-881337-8", lang="eng", publisher="Oxford University Press",
           subject="Data structures (Computer science)", call="QA76.9.D35 S65 2020"),
    marc21(5, "Metadata structures for libraries", author="Jones, Mary", year=2005,
           lang="eng", publisher="Routledge", call="Z666.5 J66 2005"),
    marc21(6, "Computing history", author="Brown, Alan", year=2010, lang="eng",
           publisher="MIT Press", isbn="0262011530"),
    marc21(7, "计算机网络", author="谢希仁", year=2008, isbn="7-121-05390-X",
           subject="计算机网络", call="TP393/112"),
    marc21(8, "计算机学报", year=1978, issn="0254-4164", publisher="科学出版社",
           call="TP3/1"),
]


@pytest.fixture(scope="module")
def catalogue() -> LocalCatalogue:
    return LocalCatalogue(RECORDS, name="test", flavour="marc21")


def numbers(catalogue: LocalCatalogue, query: str) -> list[int]:
    result = asyncio.run(catalogue.search(parse(query)))
    records = asyncio.run(result.fetch(1, 100))
    assert result.hits == len(records)
    return [int(r["001"].data) for r in records]


def test_valid_fixtures():
    assert isbn13("9787302123453") and isbn13("978-0-19-881337-8")
    assert isbn13("0262011530") and isbn13("7-121-05390-X")


@pytest.mark.parametrize(("query", "expected"), [
    ("title=中国", [1, 2, 3]),  # 中國 folds to 中国
    ("title=中国经济", [1, 3]),  # adjacent characters, not 中国的经济
    ('title="中国 经济"', [1, 3]),  # spaces between CJK words do not matter
    ("title=经济", [1, 2, 3]),
    ("title=国", [1, 2, 3]),  # one character
    ('title all "中国 经济"', [1, 2, 3]),
    ('title any "网络 经济史"', [3, 7]),
    ("title=中国经济发展研究", [1]),
    ("title=发展中国", []),
    ("title=經濟史", [3]),  # traditional in the query too
    ("any=经济发展", [1]),  # subject, through any
    ("subject=经济", [1, 2]),
    ("author=王建国", [1]),
    ("author=张伟", [3]),
    ("publisher=清华", [1, 2, 3, 7]),
    ("publisher=清华大学出版社", [1, 2, 3, 7]),
])
def test_chinese(catalogue, query, expected):
    assert numbers(catalogue, query) == expected


@pytest.mark.parametrize(("query", "expected"), [
    ("title=structures", [4, 5]),
    ('title="data structures"', [4]),  # a phrase is whole words: not metadata structures
    ("title=data", [4]),
    ('title="structures for"', [5]),
    ("title=modern", [4]),  # the subtitle is title too
    ("title=DATA", [4]),
    ("author=smith", [4]),
    ('author="Smith, John"', [4]),
    ('author="John Smith"', []),
    ("subject=computer", [4]),
])
def test_latin_words_and_phrases(catalogue, query, expected):
    assert numbers(catalogue, query) == expected


@pytest.mark.parametrize(("query", "expected"), [
    ("title=comput*", [6]),
    ("any=comput*", [4, 6]),  # subject: Data structures (Computer science)
    ("title=struct*", [4, 5]),
    ('title="data struct*"', [4]),
    ('title="metadata struc*"', [5]),
    ("title=dat*", [4]),
    ("title=计算*", [7, 8]),  # a CJK term is matched anywhere already
    ("title=zzz*", []),
    ("isbn=978730*", [1]),
    ("callnumber=TP3*", [7, 8]),
    ("callnumber=QA76*", [4]),
])
def test_right_truncation(catalogue, query, expected):
    assert numbers(catalogue, query) == expected


@pytest.mark.parametrize(("query", "expected"), [
    ("isbn=9787302123453", [1]),
    ("isbn=978-7-302-12345-3", [1]),
    ("isbn=7302123454", [1]),  # its ISBN-10
    ("isbn=7-302-12345-4", [1]),
    ("isbn=9787121053900", [7]),  # recorded as 7-121-05390-X
    ("isbn=712105390X", [7]),
    ("isbn=712105390x", [7]),
    ("isbn=0262011530", [6]),
    ("isbn=9780262011532", [6]),
    ("isbn=0198813376", [4]),
    ("isbn=9780198813378", [4]),
    ("isbn=9780198813379", []),  # a wrong check digit finds nothing
    ("isbn=9787302123453 or isbn=0262011530", [1, 6]),
    ("any=9787302123453", [1]),
    ("issn=0254-4164", [8]),
    ("issn=02544164", [8]),
    ("issn=0254-416X", []),
])
def test_identifiers(catalogue, query, expected):
    assert numbers(catalogue, query) == expected


@pytest.mark.parametrize(("query", "expected"), [
    ("year=2010", [6]),
    ("year>2010", [1, 4]),
    ("year>=2010", [1, 4, 6]),
    ("year<1990", [3, 8]),
    ("year<=1998", [2, 3, 8]),
    ("year>=1990 and year<2010", [2, 5, 7]),
    ("title=中国 and year>1990", [1, 2]),
])
def test_years(catalogue, query, expected):
    assert numbers(catalogue, query) == expected


@pytest.mark.parametrize(("query", "expected"), [
    ("title=中国 and author=王建国", [1]),
    ("title=中国 or title=data", [1, 2, 3, 4]),
    ("title=中国 not title=经济史", [1, 2]),
    ("title=中国 not (year<1990 or author=李明)", [1]),
    ("(title=计算机 or title=structures) and year>=2005", [4, 5, 7]),
    ("title==计算机网络", [7]),  # the whole title
    ("title==计算机", []),
    ("title==计算*", [7, 8]),
    ('title=="data structures"', [4]),
    ('title==data', []),
    ('callnumber="TP393/112"', [7]),
    ('callnumber="TP393 112"', [7]),
    ("callnumber=TP393", [7]),
    ("callnumber=F12", [2]),
    ('callnumber="QA76.9.D35 S65 2020"', [4]),
    ("中国", [1, 2, 3]),
])
def test_booleans_and_other_relations(catalogue, query, expected):
    assert numbers(catalogue, query) == expected


@pytest.mark.parametrize("clause", [
    Clause("title", "<", "abc"),
    Clause("title", "within", "abc"),
    Clause("shelf", "=", "abc"),
    Clause("year", "any", "2008"),
    Clause("year", "=", "about 2008"),
    Clause("year", "=", "200", truncated=True),
    Boolean("near", Clause("title", "=", "a"), Clause("title", "=", "b")),
])
def test_unsupported_queries(catalogue, clause):
    with pytest.raises(UnsupportedQuery):
        asyncio.run(catalogue.search(clause))


def test_an_index_the_catalogue_does_not_have():
    catalogue = LocalCatalogue(RECORDS[:2], name="x", indexes=("title", "any"))
    assert numbers(catalogue, "title=中国") == [1, 2]
    with pytest.raises(UnsupportedQuery, match="callnumber"):
        asyncio.run(catalogue.search(parse("callnumber=F124")))


@pytest.mark.parametrize("query", ["cql.allRecords=1", "cql.allRecords = 1", "allRecords=1",
                                   'CQL.ALLRECORDS = ""'])
def test_all_records_is_every_record_in_file_order(catalogue, query):
    """What a harvest sends (broker.kernel.consortium.DEFAULT_ALL_RECORDS["sru"])."""
    assert numbers(catalogue, query) == [int(r["001"].data) for r in RECORDS]


def test_all_records_combines_and_ignores_the_index_limit(catalogue):
    every = [int(r["001"].data) for r in RECORDS]
    assert numbers(catalogue, "cql.allRecords=1 not 中国") == [
        n for n in every if n not in numbers(catalogue, "中国")]
    limited = LocalCatalogue(RECORDS[:2], name="x", indexes=("title",))
    assert numbers(limited, "cql.allRecords=1") == every[:2]


def test_terms_with_nothing_searchable_find_nothing(catalogue):
    assert numbers(catalogue, 'title="—"') == []


def test_paging(catalogue):
    result = asyncio.run(catalogue.search(parse("title=中国 or title=计算机")))
    assert result.hits == 5
    assert [r["001"].data for r in asyncio.run(result.fetch(2, 2))] == ["2", "3"]
    assert [r["001"].data for r in asyncio.run(result.fetch(5, 10))] == ["8"]
    assert asyncio.run(result.fetch(6, 10)) == []
    assert asyncio.run(result.fetch(0, 10)) == []


def test_delay_is_slept_at_each_search():
    catalogue = LocalCatalogue(RECORDS, name="slow", delay=0.3)
    began = time.monotonic()
    result = asyncio.run(catalogue.search(parse("title=中国")))
    assert time.monotonic() - began >= 0.3
    assert result.hits == 3


def test_a_slow_catalogue_does_not_block_the_loop():
    slow = LocalCatalogue(RECORDS, name="slow", delay=0.5)
    fast = LocalCatalogue(RECORDS, name="fast")

    async def both():
        task = asyncio.create_task(slow.search(parse("title=中国")))
        began = time.monotonic()
        await fast.search(parse("title=中国"))
        quick = time.monotonic() - began
        await task
        return quick

    assert asyncio.run(both()) < 0.2


def test_reads_a_cnmarc_file_in_gb18030(tmp_path):
    record = Record(leader="00000nam0 2200000   450 ")
    record.add_field(Field("001", data="42"))
    record.add_field(_f("010", "a", "7-302-12345-4", "d", "CNY45.00"))
    record.add_field(_f("100", "a", "20050101d2005    em y0chiy0120    ea"))
    record.add_field(_f("101", "a", "chi", ind="0 "))
    record.add_field(_f("200", "a", "数据结构", "A", "Shu Ju Jie Gou", "f", "严蔚敏著", ind="1 "))
    record.add_field(_f("210", "a", "北京", "c", "清华大学出版社", "d", "2005"))
    record.add_field(_f("606", "a", "数据结构", "j", "教材", ind="0 "))
    record.add_field(_f("690", "a", "TP311.12", "v", "5"))
    record.add_field(_f("701", "a", "严蔚敏", "A", "Yan Wei Min", "4", "著", ind=" 0"))
    record.add_field(_f("905", "a", "T", "c", "中文书库", "d", "TP311.12", "e", "12"))
    data = iso2709(record, "gb18030")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    path = tmp_path / "cnmarc.iso"
    path.write_bytes(data + b"\r\n" + b"garbage that is not a record" + b"\x1d")
    catalogue = LocalCatalogue(path, name="t")
    assert catalogue.flavour == "unimarc" and len(catalogue) == 1
    assert catalogue.problems  # the garbage is reported, not silently dropped
    assert numbers(catalogue, "title=数据结构") == [42]
    assert numbers(catalogue, 'title="shu ju jie gou"') == [42]  # the pinyin $A
    assert numbers(catalogue, "author=严蔚敏") == [42]
    assert numbers(catalogue, "author=yan") == [42]
    assert numbers(catalogue, "isbn=9787302123453") == [42]
    assert numbers(catalogue, 'callnumber="TP311.12/12"') == [42]
    assert numbers(catalogue, "year=2005") == [42]
    assert numbers(catalogue, "subject=教材") == [42]


def test_phrase_form_and_isbn_keys():
    assert phrase_form("中国 经济 (C++ 版)") == "中国经济c版"
    assert phrase_form("Data  Structures: A Modern Approach") == "data structures a modern approach"
    assert phrase_form("中國經濟") == "中国经济"
    assert isbn_keys("9787302123453") == ["9787302123453", "7302123454"]
    assert isbn_keys("9791032300824") == ["9791032300824"]
