"""marc.writer: what it writes, and that marc.normalize reads the same record back."""

from __future__ import annotations

import pytest
from pymarc import Field, Indicators, Subfield

from broker.kernel.errors import MarcError
from marc import Classification, Holding, Record, normalize, read_bytes
from marc.flavour import Flavour
from marc.writer import (
    as_flavour,
    build_record,
    data_field,
    heading_parts,
    holding_field,
    holding_fields,
    iso2709,
    leader,
    name_field,
    subject_field,
    title_field,
    write_record,
)

HOLDINGS = (
    Holding("bupt", "中文科技图书借阅区", "TP393/12", "C1100001"),
    Holding("bupt", "中文科技图书借阅区", "TP393/12", "C1100002", "on_loan", "2024-05-01"),
    Holding("ruc", "基藏书库", "TP393/7=2", "0130042"),
)

BOOK = Record(
    id="bupt:1", format="marc21", title="计算机网络", subtitle="原理与应用",
    responsibility="王建国, 李明著", authors=("王建国", "李明"), publisher="清华大学出版社",
    place="北京", year=2015, edition="第2版", extent="320页", language="chi",
    material_type="book", isbns=("9787302147510", "9787111544937"),
    subjects=("计算机网络 -- 高等学校 -- 教材",),
    classification=(Classification("clc", "TP393"),), holdings=HOLDINGS)

WESTERN = Record(
    id="x:2", format="marc21", title="Introduction to data structures",
    responsibility="John Smith and Mary Brown", authors=("Smith, John", "Brown, Mary"),
    publisher="MIT Press", place="Cambridge, MA", year=1998, language="eng",
    material_type="book", issns=(), subjects=("Data structures (Computer science)",),
    classification=(Classification("lcc", "QA76.9.D35 S65 1998"),
                    Classification("ddc", "005.73")))

NO_ISBN = Record(id="x:3", format="unimarc", title="中国近代史纲要", authors=("张伟",),
                 publisher="中华书局", place="北京", year=1983, language="chi",
                 material_type="book")

KEPT = ("title", "subtitle", "responsibility", "authors", "publisher", "place", "year",
        "edition", "extent", "language", "material_type", "isbns", "issns", "subjects",
        "classification")


def _same(record: Record, again: Record) -> None:
    for key in KEPT:
        want, got = getattr(record, key), getattr(again, key)
        if key == "classification":  # read back in tag order
            want, got = sorted(want, key=repr), sorted(got, key=repr)
        assert got == want, key


def _located(holdings: tuple[Holding, ...]) -> list[tuple]:
    return [(h.library, h.location, h.call_number, h.barcode) for h in holdings]


# --- whole records, round trip ------------------------------------------------------------------


@pytest.mark.parametrize("flavour", ["marc21", "unimarc"])
@pytest.mark.parametrize("record", [BOOK, WESTERN, NO_ISBN], ids=["cjk", "western", "no-isbn"])
def test_a_record_reads_back_as_it_was(flavour, record):
    marc = write_record(record, flavour)
    again = normalize(marc, flavour=flavour, library="x")
    assert again.format == flavour and not again.warnings
    _same(record, again)
    assert marc["001"].data == record.id
    assert len(str(marc.leader)) == 24
    tags = [f.tag for f in marc.fields]
    assert tags == sorted(tags)  # in tag order


def test_marc21_holdings_read_back():
    marc = write_record(BOOK, "marc21", holdings=HOLDINGS)
    assert len(marc.get_fields("852")) == 3
    again = normalize(marc, flavour="marc21")
    assert _located(again.holdings) == _located(HOLDINGS)
    assert again.call_numbers == ("TP393/12", "TP393/7=2")
    # status and due date are written ($z), though our normalizer reads no 852 $z
    loan = marc.get_fields("852")[1]
    assert loan.get_subfields("z") == ["on_loan", "due 2024-05-01"]


def test_cnmarc_holdings_read_back():
    marc = write_record(BOOK, "unimarc", holdings=HOLDINGS, holdings_layout="905/906")
    assert not marc.get_fields("852")
    shelves = marc.get_fields("905")
    assert [(f["a"], f["c"], f["d"], f["e"]) for f in shelves] == [
        ("bupt", "中文科技图书借阅区", "TP393", "12"), ("ruc", "基藏书库", "TP393", "7=2")]
    assert [(f["a"], f["b"]) for f in marc.get_fields("906")] == [
        ("bupt", "C1100001"), ("bupt", "C1100002"), ("ruc", "0130042")]
    again = normalize(marc, flavour="unimarc")
    assert _located(again.holdings) == _located(HOLDINGS)


def test_isbns_given_replace_the_records_own():
    marc = write_record(BOOK, "marc21", record_id="c7", isbns=["9780199535569"])
    assert marc["001"].data == "c7"
    assert [f["a"] for f in marc.get_fields("020")] == ["9780199535569"]


def test_a_record_without_isbn_has_no_isbn_field():
    cases: tuple[tuple[Flavour, str], ...] = (("marc21", "020"), ("unimarc", "010"))
    for flavour, tag in cases:
        marc = write_record(NO_ISBN, flavour)
        assert not marc.get_fields(tag)
        assert normalize(marc, flavour=flavour).isbns == ()


@pytest.mark.parametrize("encoding", ["utf-8", "gb18030"])
@pytest.mark.parametrize("flavour", ["marc21", "unimarc"])
def test_cjk_text_survives_iso2709(flavour, encoding):
    data = iso2709(write_record(BOOK, flavour, holdings=HOLDINGS), encoding)
    assert "计算机网络".encode(encoding) in data
    assert int(data[:5]) == len(data) and data.endswith(b"\x1d")
    (entry,) = read_bytes(data, flavour=flavour, encoding=encoding)
    assert entry.record is not None and not entry.problems
    again = normalize(entry.record, flavour=flavour)
    _same(BOOK, again)


def test_unknown_flavour():
    with pytest.raises(ValueError, match="mods"):
        write_record(BOOK, "mods")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="mods"):
        as_flavour("mods")
    assert as_flavour("unimarc") == "unimarc"


# --- the parts ------------------------------------------------------------------------------------


def test_data_field_leaves_out_empty_values():
    field = data_field("260", "  ", ("a", "北京"), ("b", None), ("c", ""))
    assert field is not None and [(s.code, s.value) for s in field.subfields] == [("a", "北京")]
    assert data_field("250", "  ", ("a", None)) is None


def test_leaders():
    assert leader("marc21", "serial", encoding_level="3", cataloguing_form="u") == \
        "00000nas a22000003u 4500"
    assert leader("unimarc", "book", encoding_level=" ", cataloguing_form=" ",
                  hierarchy="0") == "00000nam0 2200000   450 "
    assert leader("unimarc", "map", encoding_level="3", cataloguing_form="n")[6:8] == "em"


def test_build_record_keeps_the_order_given_unless_asked():
    fields = [Field("690", data=None), Field("680", data=None), None, Field("001", data="1")]
    given = build_record("00000nam0 2200000   450 ", fields)
    assert [f.tag for f in given.fields] == ["690", "680", "001"]
    ordered = build_record("00000nam0 2200000   450 ", fields, in_tag_order=True)
    assert [f.tag for f in ordered.fields] == ["001", "680", "690"]


def test_headings_with_places_and_forms():
    parts = heading_parts("经济发展—研究—中国 -- 教材", separators=("—", " -- "),
                          places=("中国",), forms=("教材",))
    assert parts == [("a", "经济发展"), ("x", "研究"), ("y", "中国"), ("j", "教材")]
    cnmarc = subject_field("unimarc", parts)
    assert (cnmarc.tag, cnmarc.indicators) == ("606", ("0", " "))
    assert [s.code for s in cnmarc.subfields] == ["a", "x", "y", "j"]
    marc21 = subject_field("marc21", parts, lcsh=True)
    assert (marc21.tag, marc21.indicator2) == ("650", "0")
    assert [s.code for s in marc21.subfields] == ["a", "x", "z", "v"]
    assert heading_parts("a --  -- b ") == [("a", "a"), ("x", "b")]


def test_titles():
    t245 = title_field("marc21", "学报.", part="社会科学版.", main_entry=False)
    assert t245 is not None and t245.indicators == ("0", "0")
    assert [(s.code, s.value) for s in t245.subfields] == [("a", "学报."), ("p", "社会科学版.")]
    t200 = title_field("unimarc", "红楼梦研究", romanized="Hong Lou Meng Yan Jiu",
                       subtitle="论集", responsibility="张伟著")
    assert t200 is not None and [s.code for s in t200.subfields] == ["a", "A", "e", "f"]


def test_names():
    main = name_field("marc21", "Smith, John", main=True, relator="author")
    assert main is not None and (main.tag, main.indicator1, main["e"]) == ("100", "1", "author")
    chinese = name_field("marc21", "王建国", main=False)
    assert chinese is not None and (chinese.tag, chinese.indicator1) == ("700", "0")
    split = name_field("unimarc", "Smith, John", main=False, relator="著", split_inverted=True)
    assert split is not None and (split.tag, split.indicators) == ("701", (" ", "1"))
    assert [(s.code, s.value) for s in split.subfields] == [
        ("a", "Smith"), ("b", "John"), ("4", "著")]
    assert normalize(build_record("00000nam0 2200000   450 ", [split]),
                     flavour="unimarc").authors == ("Smith, John",)


def test_an_lc_call_number_is_split_into_class_and_item():
    field = holding_field(Holding("bupt", "外文书库", "QA76.9.D35 S65 2020", "0110001"),
                          scheme="lcc")
    assert field is not None and field.indicator1 == "0"
    assert (field["h"], field["i"]) == ("QA76.9.D35", "S65 2020")
    again = normalize(build_record("00000nam a2200000 i 4500", [field]), flavour="marc21")
    assert again.holdings[0].call_number == "QA76.9.D35 S65 2020"


def test_holding_fields_skip_nothing_and_keep_order():
    fields = holding_fields(HOLDINGS)
    assert [f["p"] for f in fields] == ["C1100001", "C1100002", "0130042"]
    assert holding_fields((), "905/906") == []


def test_iso2709_refuses_what_its_lengths_cannot_say():
    record = write_record(BOOK, "marc21")
    record.add_field(Field(tag="500", indicators=Indicators(" ", " "),
                           subfields=[Subfield("a", "长" * 4000)]))
    with pytest.raises(MarcError, match="field 500 is too long"):
        iso2709(record)
    record = write_record(BOOK, "marc21")
    for _ in range(30):
        record.add_field(Field(tag="500", indicators=Indicators(" ", " "),
                               subfields=[Subfield("a", "x" * 4000)]))
    with pytest.raises(MarcError, match="longer than ISO 2709 allows"):
        iso2709(record)


def test_iso2709_sets_the_coding_it_is_told():
    data = iso2709(write_record(BOOK, "marc21"), "utf-8", coding="a")
    assert data[9:10] == b"a"
    assert iso2709(write_record(BOOK, "marc21"), "gb18030", coding=" ")[9:10] == b" "
