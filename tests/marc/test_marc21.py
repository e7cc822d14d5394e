"""MARC21 normalization, field by field, on real records.

Every expected value here was read off the raw records (``yaz-marcdump FILE``), not taken
from the program's output. Where a value needs a rule (ISBD punctuation, ISBN-13 check
digits, the non-filing indicator) the rule is the MARC21 / ISBN standard's.
"""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import pytest

from marc import Holding, Record, normalize, read_bytes, read_file
from marc.reader import Entry


def nfc(text: str | None) -> str | None:
    return unicodedata.normalize("NFC", text) if text is not None else None


def ean13_check(first12: str) -> str:
    total = sum(int(c) * (3 if i % 2 else 1) for i, c in enumerate(first12))
    return str((10 - total % 10) % 10)


def isbn13_of(isbn10: str) -> str:
    """ISBN-13 of an ISBN-10, computed here (978 prefix + EAN-13 check digit)."""
    return "978" + isbn10[:9] + ean13_check("978" + isbn10[:9])


def entries_of(path: Path, **kwargs) -> list[Entry]:
    return list(read_file(path, **kwargs))


def records_of(path: Path, library: str | None = None) -> list[Record]:
    out = []
    for entry in read_file(path):
        assert entry.record is not None, f"{path.name} {entry.position}: {entry.problems}"
        out.append(normalize(entry.record, flavour=entry.flavour, library=library,
                             warnings=entry.problems))
    return out


def only_record(path: Path, library: str | None = None) -> Record:
    (record,) = records_of(path, library)
    return record


def records_of_bytes(data: bytes, library: str | None = None) -> list[Record]:
    out = []
    for entry in read_bytes(data):
        assert entry.record is not None, f"{entry.position}: {entry.problems}"
        out.append(normalize(entry.record, flavour=entry.flavour, library=library,
                             warnings=entry.problems))
    return out


def summerland_json(marc_data: Path) -> dict:
    return json.loads((marc_data / "marc4j" / "summerland-marc-in-json.json").read_text("utf-8"))


def with_field(doc: dict, tag: str, value) -> dict:
    """A copy of a MARC-in-JSON record with every ``tag`` replaced by ``value`` (None: removed)."""
    fields = [f for f in doc["fields"] if tag not in f]
    if value is not None:
        fields.append({tag: value})
        fields.sort(key=lambda f: next(iter(f)))
    return {"leader": doc["leader"], "fields": fields}


def json_record(doc: dict, library: str | None = None) -> Record:
    (record,) = records_of_bytes(json.dumps(doc, ensure_ascii=False).encode("utf-8"), library)
    return record


# --- Summerland: one record, three serialisations ------------------------------------------


def test_summerland_three_serialisations_normalize_identically(marc_data):
    base = marc_data / "marc4j"
    iso = only_record(base / "summerland.mrc")
    xml = only_record(base / "summerland.xml")
    mij = only_record(base / "summerland-marc-in-json.json")
    assert iso == xml
    assert iso == mij
    assert iso.as_dict() == xml.as_dict() == mij.as_dict()


def test_summerland_fields(marc_data):
    r = only_record(marc_data / "marc4j" / "summerland.mrc")
    assert r.format == "marc21"
    assert r.id == "12883376"
    # 245 10 $a Summerland / $c Michael Chabon.
    assert r.title == "Summerland"
    assert r.subtitle is None
    assert r.responsibility == "Michael Chabon"
    assert r.sort_title.casefold() == "summerland"
    # 100 1_ $a Chabon, Michael.
    assert r.authors == ("Chabon, Michael",)
    # 250 $a 1st ed.  ("ed." is an abbreviation: its period stays)
    assert r.edition == "1st ed."
    # 260 $a New York : $b Miramax Books/Hyperion Books for Children, $c c2002.
    assert r.place == "New York"
    assert r.publisher == "Miramax Books/Hyperion Books for Children"
    # 008/07-10 = 2002
    assert r.year == 2002
    # 300 $a 500 p. ;
    assert r.extent == "500 p."
    # 008/35-37 = eng; leader/06-07 = "am"
    assert r.language == "eng"
    assert r.material_type == "book"
    # 020 $a 0786808772 / 020 $a 0786816155 (pbk.)
    assert r.isbns == ("9780786808779", "9780786816156")
    assert r.isbns == (isbn13_of("0786808772"), isbn13_of("0786816155"))
    assert r.issns == ()
    # 650 _1 $a Fantasy. / $a Baseball $v Fiction. / $a Magic $v Fiction.
    assert r.subjects == ("Fantasy", "Baseball -- Fiction", "Magic -- Fiction")
    assert r.classification == ()
    assert r.holdings == ()
    assert r.call_numbers == ()
    assert r.romanized is None
    assert r.warnings == ()


def test_summerland_as_dict_has_every_contract_key(marc_data):
    d = only_record(marc_data / "marc4j" / "summerland.mrc").as_dict()
    for key in ("id", "format", "title", "subtitle", "responsibility", "authors", "publisher",
                "place", "year", "edition", "extent", "language", "material_type", "isbns",
                "issns", "subjects", "classification", "call_numbers", "holdings"):
        assert key in d, key
    json.dumps(d)  # plain JSON values only


# --- pymarc/test.dat: ten LC records (MARC-8 declared, ASCII content) ----------------------

# (001, title, subtitle, responsibility, authors, publisher, year, edition, ISBN-10s, LCC)
TEST_DAT = [
    ("fol05731351", "ActivePerl with ASP and ADO", None, "Tobias Martinsson",
     ("Martinsson, Tobias",), "John Wiley & Sons", 2000, None, ["0471383147"],
     "QA76.73.P22 M33 2000"),
    ("fol05754809", "Programming the Perl DBI", None, "Alligator Descartes and Tim Bunce",
     ("Descartes, Alligator", "Bunce, Tim"), "O'Reilly", 2000, None, ["1565926994"],
     "QA76.73.P22 D47 2000"),
    ("fol05843555", "Perl", "programmer's reference", "Martin C. Brown",
     ("Brown, Martin C.",), "Osborne/McGraw-Hill", 1999, None, [],
     "QA76.73.P22 B763 1999"),
    ("fol05843579", "Perl", "the complete reference", "Martin C. Brown",
     ("Brown, Martin C.",), "Osborne/McGraw-Hill", 1999, None, ["0072120002"],
     "QA76.73.P22 B762 1999"),
    ("fol05848297", "CGI programming with Perl", None,
     "Scott Guelich, Shishir Gundavaram & Gunther Birznieks",
     ("Guelich, Scott", "Gundavaram, Shishir", "Birznieks, Gunther"), "O'Reilly", 2000,
     "2nd ed., expanded & updated", ["1565924193"], "QA76.73.P22 G84 2000"),
    ("fol05865950", "Proceedings of the Perl Conference 4.0",
     "July 17-20, 2000, Monterey, California", None, ("Perl Conference 4.0",), "O'Reilly",
     2000, "1st ed.", ["0596000138"], "QA76.73.P22 P475 2000"),
    ("fol05865956", "Perl for system administration", None, "David N. Blank-Edelman",
     ("Blank-Edelman, David N.",), "O'Reilly", 2000, None, ["1565926099"],
     "QA76.73.P22 B43 2000"),
    ("fol05865967", "Programming Perl", None, "Larry Wall, Tom Christiansen & Jon Orwant",
     ("Wall, Larry", "Christiansen, Tom", "Orwant, Jon"), "O'Reilly", 2000, "3rd ed.",
     ["0596000278"], "QA76.73.P22 W35 2000"),
    ("fol05872355", "Perl programmer's interactive workbook", None, "Vincent Lowe",
     ("Lowe, Vincent",), "Prentice Hall PTP", 1999, None, ["013020868X"],
     "QA76.73.P22 L69 1999"),
    ("fol05882032", "Cross-platform Perl", None, "Eric F. Johnson",
     ("Foster-Johnson, Eric",), "IDG Books Worldwide", 2000, None, ["0764547291"],
     "QA76.73.P22 F64 2000"),
]


def test_test_dat_has_ten_records_in_order(marc_data):
    entries = entries_of(marc_data / "pymarc" / "test.dat")
    assert [e.number for e in entries] == list(range(1, 11))
    assert all(e.ok and e.problems == () for e in entries)
    assert [e.flavour for e in entries] == ["marc21"] * 10
    # Offsets are where each record starts: the sum of the previous leader lengths.
    data = (marc_data / "pymarc" / "test.dat").read_bytes()
    offsets, pos = [], 0
    while pos < len(data):
        offsets.append(pos)
        pos += int(data[pos:pos + 5])
    assert [e.offset for e in entries] == offsets


@pytest.mark.parametrize("expected", TEST_DAT, ids=[row[0] for row in TEST_DAT])
def test_test_dat_record(marc_data, expected):
    (ident, title, subtitle, resp, authors, publisher, year, edition, isbn10s, lcc) = expected
    by_id = {r.id: r for r in records_of(marc_data / "pymarc" / "test.dat")}
    r = by_id[ident]
    assert r.title == title
    assert r.subtitle == subtitle
    assert r.responsibility == resp
    assert r.authors == authors
    assert r.publisher == publisher
    assert r.year == year
    assert r.edition == edition
    assert r.isbns == tuple(isbn13_of(i) for i in isbn10s)
    assert r.language == "eng"
    assert r.material_type == "book"
    assert r.classification[0].as_dict() == {"scheme": "lcc", "value": lcc}
    assert r.sort_title == title.casefold()  # 245 ind2 is 0 throughout
    assert r.romanized is None
    assert r.warnings == ()


def test_test_dat_dewey_prime_marks_dropped(marc_data):
    # 082 00 $a 005.13/3: the slash is a segmentation mark, not part of the number.
    first = records_of(marc_data / "pymarc" / "test.dat")[0]
    ddc = [c.value for c in first.classification if c.scheme == "ddc"]
    assert ddc == ["005.133"]


def test_test_dat_isbn_with_qualifier_and_x_check_digit(marc_data):
    by_id = {r.id: r for r in records_of(marc_data / "pymarc" / "test.dat")}
    # 020 $a 0471383147 (paper/cd-rom : alk. paper)
    assert by_id["fol05731351"].isbns == ("9780471383147",)
    # 020 $a 013020868X: X check digit, ISBN-13 check digit recomputed
    assert by_id["fol05872355"].isbns == ("9780130208682",)


def test_test_dat_places(marc_data):
    by_id = {r.id: r for r in records_of(marc_data / "pymarc" / "test.dat")}
    assert by_id["fol05731351"].place == "New York"
    assert by_id["fol05843555"].place == "Berkeley"
    assert by_id["fol05872355"].place == "Upper Saddle River, NJ"
    assert by_id["fol05882032"].place == "Foster City, CA"


# --- pymarc/batch.xml and batch.json: the same two records ---------------------------------


def test_batch_xml_and_json_normalize_identically(marc_data):
    xml = records_of(marc_data / "pymarc" / "batch.xml")
    mij = records_of(marc_data / "pymarc" / "batch.json")
    assert len(xml) == 2
    assert xml == mij


def test_batch_sound_recording(marc_data):
    r = records_of(marc_data / "pymarc" / "batch.xml")[0]
    assert r.id == "5637241"
    # 245 04 $a The Great Ray Charles $h [sound recording].  ind2=4 skips "The "
    assert r.title == "The Great Ray Charles"
    assert r.sort_title.casefold() == "great ray charles"
    # leader 00925njm: j = musical sound recording
    assert r.material_type == "audio"
    # 008 910926s1957 ... eng
    assert r.year == 1957
    assert r.language == "eng"
    # 260 $a New York, N.Y. : $b Atlantic, $c [1957?]
    assert r.publisher == "Atlantic"
    # 700 1_ $a Charles, Ray, $d 1930- $4 prf
    assert r.authors == ("Charles, Ray",)
    assert r.subjects == ("Jazz -- 1951-1960", "Piano with jazz ensemble")
    assert r.isbns == ()


def test_batch_computer_file(marc_data):
    r = records_of(marc_data / "pymarc" / "batch.xml")[1]
    assert r.id == "12149120"
    assert r.title == "The White House"
    assert r.sort_title.casefold() == "white house"
    # leader 01832cmma: m = computer file
    assert r.material_type == "electronic"
    # 008 000407m19949999: date type m, date1 1994
    assert r.year == 1994
    assert r.publisher == "White House Web Team"
    assert r.place == "Washington, D.C."
    assert r.authors == ("White House Web Team",)
    assert [c.as_dict() for c in r.classification] == [
        {"scheme": "lcc", "value": "F204.W5"}, {"scheme": "ddc", "value": "975.3"}]


# --- holdings -------------------------------------------------------------------------------


def test_lc_906_is_not_a_holding(marc_data):
    # In MARC21, 906 is LC's local processing field ($a 0 $b ibc $c copycat $d 1 $e ncip ...),
    # not an item: only CNMARC uses 905/906 for call numbers and copies.
    r = records_of(marc_data / "pymarc" / "batch.xml")[1]
    assert r.holdings == ()
    assert r.call_numbers == ()


def test_lc_906_does_not_hide_the_852(marc_data):
    # utf8_errors.dat has both LC's 906 ($a 7 $b cbc $c orignew ...) and a real 852:
    # 852 $a Library of Congress $b Prints and Photographs Division $e Washington, D.C. ...
    r = only_record(marc_data / "pymarc" / "utf8_errors.dat", library="loc")
    assert r.holdings == (Holding(library="loc", location="Prints and Photographs Division"),)
    assert r.call_numbers == ()


def test_koha_export_without_items_has_no_holdings(marc_data):
    # The Koha export carries 942 (item type) and 999 (biblionumber) but no 952 items.
    r = only_record(marc_data / "marc4j" / "1474920681_KOHA_LFL_5.xml", library="lfl")
    assert r.id == "lfl:121564"
    assert r.title == "Cinema and architecture : from historical to digital"
    assert r.responsibility == "edited by Francois Penz and Maureen Thomas"
    assert r.authors == ("Penz, Francois",)
    assert r.publisher == "BFI (British Film Institute) Publishing"
    assert r.place == "London"
    assert r.year == 1996
    assert r.extent == "192 p."
    assert r.isbns == (isbn13_of("0851705774"),)
    assert r.holdings == ()


KOHA_ITEMS = """
  <datafield ind1=" " ind2=" " tag="952">
    <subfield code="a">LFL</subfield><subfield code="b">LFL</subfield>
    <subfield code="c">GEN</subfield><subfield code="o">NA2588 .C56 1996</subfield>
    <subfield code="p">31234000123456</subfield><subfield code="y">BK</subfield>
  </datafield>
  <datafield ind1=" " ind2=" " tag="952">
    <subfield code="a">LFL</subfield><subfield code="b">LFL</subfield>
    <subfield code="c">GEN</subfield><subfield code="o">NA2588 .C56 1996 c.2</subfield>
    <subfield code="p">31234000123457</subfield><subfield code="q">2016-02-15</subfield>
  </datafield>
  <datafield ind1=" " ind2=" " tag="952">
    <subfield code="a">LFL</subfield><subfield code="p">31234000123458</subfield>
    <subfield code="1">1</subfield>
  </datafield>
  <datafield ind1=" " ind2=" " tag="952">
    <subfield code="a">LFL</subfield><subfield code="c">REF</subfield>
    <subfield code="p">31234000123459</subfield><subfield code="7">1</subfield>
  </datafield>
</record>"""


def test_koha_952_items_become_holdings(marc_data):
    # The real Koha record with Koha's item field added (952: $a home branch, $c shelving
    # location, $o call number, $p barcode, $q due date, $1 lost, $7 not for loan).
    text = (marc_data / "marc4j" / "1474920681_KOHA_LFL_5.xml").read_text("utf-8")
    assert text.rstrip().endswith("</record>")
    text = text.rstrip().removesuffix("</record>") + KOHA_ITEMS
    (r,) = records_of_bytes(text.encode("utf-8"), library="lfl")
    assert r.holdings == (
        Holding(library="lfl", location="GEN", call_number="NA2588 .C56 1996",
                barcode="31234000123456", status="available"),
        Holding(library="lfl", location="GEN", call_number="NA2588 .C56 1996 c.2",
                barcode="31234000123457", status="on_loan", due="2016-02-15"),
        Holding(library="lfl", barcode="31234000123458", status="lost"),
        Holding(library="lfl", location="REF", barcode="31234000123459",
                status="not_for_loan"),
    )
    assert "NA2588 .C56 1996" in r.call_numbers
    assert "NA2588 .C56 1996 c.2" in r.call_numbers


def test_nihon_no_chasho_852_holding(marc_data):
    # 852 81 $b off,eax $h 082 $i T66 v.201, 206
    r = only_record(marc_data / "openlibrary" / "880_Nihon_no_chasho.mrc", library="nnc")
    assert r.holdings == (
        Holding(library="nnc", location="off,eax", call_number="082 T66 v.201, 206"),)
    assert r.call_numbers[0] == "082 T66 v.201, 206"


# --- 880 alternate graphic representation ---------------------------------------------------


def test_880_chinese_original_script(marc_data):
    r = only_record(marc_data / "openlibrary" / "880_alternate_script.mrc")
    assert r.id == "ocn613515810"
    # 880 10 $6 245-01/$1 $a 乔布斯的秘密日记 / $c 丹尼尔・莱昂斯著 ; 刘宁译.
    assert r.title == "乔布斯的秘密日记"
    assert r.responsibility == "丹尼尔・莱昂斯著 ; 刘宁译"
    assert r.sort_title == "乔布斯的秘密日记"
    # 880 $6 250-02/$1 $a 第1版.
    assert r.edition == "第1版"
    # 880 $6 260-03/$1 $a 北京市 : $b 中信出版社, $c 2010.
    assert r.place == "北京市"
    assert r.publisher == "中信出版社"
    # 100 has no 880, 700 $6 880-04 -> 880 $a 刘宁.
    assert r.authors == ("Lyons, Daniel", "刘宁")
    assert r.year == 2010
    assert r.language == "chi"
    # 020 9787508617725 and 020 750861772X are the same book
    assert r.isbns == ("9787508617725",)
    assert r.romanized is not None
    assert r.romanized.title == "Qiaobusi de mi mi ri ji"
    assert r.romanized.authors == ("Lyons, Daniel", "Liu, Ning")
    assert r.romanized.publisher == "Zhong xin chu ban she"
    assert r.call_numbers == ("PS3562.Y4483 O6712 2010",)


def test_880_japanese_original_script(marc_data):
    r = only_record(marc_data / "openlibrary" / "880_Nihon_no_chasho.mrc")
    # 880 00 $6 245-01/$1 $a 日本 の 茶書 / $c 林屋 辰三郎, 横井 清, 楢林 忠男 編注.
    assert r.title == "日本 の 茶書"
    assert r.responsibility == "林屋 辰三郎, 横井 清, 楢林 忠男 編注"
    # 880 $6 260-02/$1 $a 東京 : $b 平凡社, $c 昭和 46-47 [1971-1972]
    assert r.place == "東京"
    assert r.publisher == "平凡社"
    # 008 980202t19711972
    assert r.year == 1971
    assert r.language == "jpn"
    assert r.romanized is not None
    assert nfc(r.romanized.title) == "Nihon no chasho"
    assert nfc(r.romanized.publisher) == "Heibonsha"
    assert tuple(map(nfc, r.romanized.authors)) == (
        "Hayashiya, Tatsusaburō", "Yokoi, Kiyoshi", "Narabayashi, Tadao")


def test_880_unlinked_publisher_stands_in_for_missing_260(marc_data):
    r = only_record(marc_data / "openlibrary" / "880_publisher_unlinked.mrc")
    # 880 10 $6 245-01 $a זה גדול! : $b ספר על הדברים הגדולים באמת / $c בן הילמן ; ...
    assert r.title == "זה גדול!"
    assert r.subtitle == "ספר על הדברים הגדולים באמת"
    assert r.responsibility == "בן הילמן ; מאנגלית אורי שגיא"
    # No 260 at all; 880 $6 260-00 $a אור יהודה : $b כנרת, $c 2011.
    assert r.publisher == "כנרת"
    assert r.place == "אור יהודה"
    assert r.year == 2011
    assert r.language == "heb"
    # 100/700 have no 880: the romanized names stay
    assert tuple(map(nfc, r.authors)) == ("Hailman, Ben", "Śagi, Uri")
    assert r.romanized is not None
    assert r.romanized.title == "Zeh gadol?"
    assert r.romanized.publisher is None


def test_880_traditional_chinese_oclc(marc_data):
    name = "oclc_63111280_export_as_UTF8_from_connexion.mrc"
    r = only_record(marc_data / "marc4j" / name)
    assert r.id == "ocm63111280"
    # 880 10 $6 245-02 $a 日本民俗·信仰·藝能·與中國文化 / $c 葉漢鰲著.
    assert r.title == "日本民俗·信仰·藝能·與中國文化"
    assert r.responsibility == "葉漢鰲著"
    # 880 1_ $6 100-01 $a 葉漢鰲, $d 1952-
    assert r.authors == ("葉漢鰲",)
    # 880 $6 260-03 $a 台北市 : $b 大新書局, $c [2005]
    assert r.place == "台北市"
    assert r.publisher == "大新書局"
    assert r.year == 2005
    assert r.language == "chi"
    # 020 9867271033 and 020 9789867271037: one book
    assert r.isbns == (isbn13_of("9867271033"),) == ("9789867271037",)
    assert r.romanized is not None
    assert r.romanized.title == "Riben min su, xin yang, yi neng, yu Zhongguo wen hua"
    assert r.romanized.authors == ("Ye, Hanao",)
    assert r.romanized.publisher == "Da xin shu ju"
    assert [c.as_dict() for c in r.classification] == [
        {"scheme": "lcc", "value": "DS821.5.C5 Y4 2005"}]


# yaz/marccol1.u8.marc: (001, 880 title, romanized title, year from 008, language 008/35-37)
# Word division in these LC records is U+3000 (ideographic space); display text folds it.
MARCCOL1 = [
    ("70813420 /AJ/r86", "半田 市誌", "Handa shishi", 1968, "jpn"),
    ("75840215 /ACN/r86", "歷叢", "Li tsʻung", 1900, "chi"),
    ("84226659 /ACN", "艺术家 与 德育", "I shu chia yü te yü", 1983, "chi"),
    ("84231405", "整党 学习 材料", "Zheng dang xue xi cai liao", 1984, "chi"),
    ("85174785 /ACN", "河北 氱间 故事 选", "Ho-pei min chien ku shih hsüan", 1983, "chi"),
    ("86116930 /ACN", "文学 基础 知识", "Wen hsüeh chi chʻu chih shih", 1984, "chi"),
    ("86117080 /ACN", "陕甘宁青 四省(区) 强 地震 目录",
     "Shan Kan Ning Chʻing ssu sheng (chʻü) chʻiang ti chen mu lu", 1985, "chi"),
    ("86118651 /ACN/r88", "森林學 名詞 辭典", "Sen lin hsüeh ming tzʻu tzʻu tien", 1985, "chi"),
    ("86118679 /ACN", "星星 的 項練", "Hsing hsing ti hsiang lien", 1985, "chi"),
    ("86119726", "簡明 宋 史", "Jian ming Song shi", 1985, "chi"),
    ("86122256 /ACN", "中国 现代 诗歌 论", "Chung-kuo hsien tai shih ko lun", 1984, "chi"),
    ("86124008 /ACN", "在 维吾尔 之 乡", "Tsai Wei-wu-erh chih hsiang", 1985, "chi"),
    ("86124229", "谐铎", "Xie duo", 1985, "chi"),
    ("86124531 /ACN/r93", "青工 政治 轮训 教材",
     "Chʻing kung cheng chih lun hsün chiao tsʻai", 1985, "chi"),
    ("86125160 /ACN", "五束 花", "Wu shu hua", 1985, "chi"),
    ("86125348 /ACN", "外交 思痛 錄", "Wai chiao ssu tʻung lu", 1985, "chi"),
    ("86125443", "中國 哲學 新論", "Zhongguo zhe xue xin lun", 1985, "chi"),
    ("86154542 /ACN/r86", "中國 古代 經濟 著述 選讀",
     "Chung-kuo ku tai ching chi chu shu hsüan tu", 1985, "chi"),
    ("86159478 /AK", "들어라, 딸들 아", "Tŭrŏra, ttaltŭl a", 1984, "kor"),
]


def test_marccol1_reads_nineteen_utf8_records(marc_data):
    entries = entries_of(marc_data / "yaz" / "marccol1.u8.marc")
    assert len(entries) == 19
    assert all(e.ok and e.encoding == "utf-8" and e.problems == () for e in entries)


@pytest.mark.parametrize("expected", MARCCOL1, ids=[row[0] for row in MARCCOL1])
def test_marccol1_record(marc_data, expected):
    ident, title, romanized, year, language = expected
    by_id = {r.id: r for r in records_of(marc_data / "yaz" / "marccol1.u8.marc")}
    r = by_id[ident]
    assert r.title == title
    assert r.romanized is not None
    assert nfc(r.romanized.title) == romanized
    assert r.year == year
    assert r.language == language
    assert r.material_type == "book"
    assert r.warnings == ()


def test_marccol1_publishers_from_880(marc_data):
    by_id = {r.id: r for r in records_of(marc_data / "yaz" / "marccol1.u8.marc")}
    # 880 0_ $6 260-02/$1 $a [半田市] : $b 半田市, $c ...
    assert by_id["70813420 /AJ/r86"].publisher == "半田市"
    assert by_id["70813420 /AJ/r86"].place == "半田市"
    # 880 $6 260-04/$1 $a 北京 : $b 人民　文学　出版社 : $b 新华　书店 ...
    assert by_id["86124229"].publisher == "人民 文学 出版社"
    assert by_id["86124229"].edition == "北京 第1版"
    # Korean: 880 0_ $6 260-03/$1 $a 서울 : $b 청년사, $c 1984
    assert by_id["86159478 /AK"].publisher == "청년사"
    assert by_id["86159478 /AK"].place == "서울"


def test_cjk_single_character_given_name_loses_its_period(marc_data):
    """'横井 清.' ends with ISBD's full stop, not with an initial: CJK names have none."""
    by_id = {r.id: r for r in records_of(marc_data / "yaz" / "marccol1.u8.marc")}
    # 880 1_ $6 700-04/$1 $a 周　宝珠.  /  880 1_ $6 700-05/$1 $a 陈　振.
    assert by_id["86119726"].authors == ("周 宝珠", "陈 振")
    # 880 10 $6 100-01/$1 $a 辛　涉.
    assert by_id["86124008 /ACN"].authors == ("辛 涉",)
    # 880 10 $6 100-01/$1 $a 晓　晴.
    assert by_id["86125160 /ACN"].authors == ("晓 晴",)
    nihon = only_record(marc_data / "openlibrary" / "880_Nihon_no_chasho.mrc")
    assert nihon.authors == ("林屋 辰三郎", "横井 清", "楢林 忠男")


def test_normalized_text_is_nfc(marc_data):
    """UTF-8 MARC21 is usually decomposed (NFD); MARC-8 decodes to NFC. Normalized values
    must not depend on which the source sent, or the broker cannot match them."""
    nihon = only_record(marc_data / "openlibrary" / "880_Nihon_no_chasho.mrc")
    assert nihon.romanized is not None
    assert nihon.romanized.authors[0] == "Hayashiya, Tatsusaburō"  # NFC ō (U+014D)
    arabic = only_record(marc_data / "openlibrary" / "880_arabic_french_many_linkages.mrc")
    assert arabic.romanized is not None
    # 700 1_ $a Bin-Ḥāddah, ʻAbd al-Raḥīm.  -- the final period is ISBD's, not an initial's
    assert arabic.romanized.authors == (
        "El Moudden, Abderrahmane", "Bin-Ḥāddah, ʻAbd al-Raḥīm", "Gharbi, Mohamed Lazhar",
        "Jāmiʻat Muḥammad al-Khāmis. Kullīyat al-Ādāb wa-al-ʻUlūm al-Insānīyah")
    for value in (arabic.romanized.title, *arabic.romanized.authors, *arabic.subjects):
        assert unicodedata.is_normalized("NFC", value), value


# --- ISBNs ------------------------------------------------------------------------------------


def test_invalid_isbn13_left_out_and_reported(marc_data):
    # 020 $a 9789655220613: the EAN-13 check digit of 978965522061 is 2, not 3.
    r = only_record(marc_data / "openlibrary" / "880_publisher_unlinked.mrc")
    assert ean13_check("978965522061") == "2"
    assert r.isbns == ()
    assert any("9789655220613" in w for w in r.warnings)


def test_isbn_forms(marc_data):
    doc = summerland_json(marc_data)
    isbns = [
        "0786808773",           # ISBN-10 with a wrong check digit
        "978-0-7868-0877-9",    # hyphenated ISBN-13
        "0-7868-1615-5 (pbk.)",  # hyphenated ISBN-10 with a qualifier
        "not an isbn",
    ]
    doc["fields"] = [f for f in doc["fields"] if "020" not in f]
    doc["fields"][3:3] = [{"020": {"ind1": " ", "ind2": " ", "subfields": [{"a": v}]}}
                          for v in isbns]
    r = json_record(doc)
    assert r.isbns == ("9780786808779", "9780786816156")
    assert any("0786808773" in w for w in r.warnings)
    assert any("not an isbn" in w for w in r.warnings)
    assert not any("978-0-7868-0877-9" in w for w in r.warnings)


# --- 245 non-filing characters ---------------------------------------------------------------


@pytest.mark.parametrize(("ind2", "text", "sort"), [
    ("0", "Summerland /", "summerland"),
    ("4", "The Summerland /", "summerland"),
    ("2", "A Summerland /", "summerland"),
    ("3", "La Summerland /", "summerland"),
    (" ", "The Summerland /", "the summerland"),
])
def test_nonfiling_indicator(marc_data, ind2, text, sort):
    doc = with_field(summerland_json(marc_data), "245", {
        "ind1": "1", "ind2": ind2, "subfields": [{"a": text}, {"c": "Michael Chabon."}]})
    r = json_record(doc)
    assert r.title == text.removesuffix(" /")
    assert r.sort_title is not None
    assert r.sort_title.casefold() == sort


def test_nonsort_markers_in_245(marc_data):
    # MARC21 UTF-8 brackets a non-filing article with U+0098 ... U+009C.
    doc = with_field(summerland_json(marc_data), "245", {
        "ind1": "1", "ind2": "0", "subfields": [{"a": "\x98The \x9cSummerland /"}]})
    r = json_record(doc)
    assert r.title == "The Summerland"
    assert r.sort_title is not None
    assert r.sort_title.casefold() == "summerland"


# --- year, language, material type --------------------------------------------------------------


def test_year_from_008_wins_over_260c(marc_data):
    doc = with_field(summerland_json(marc_data), "260", {
        "ind1": " ", "ind2": " ",
        "subfields": [{"a": "New York :"}, {"b": "Miramax,"}, {"c": "c1999."}]})
    assert json_record(doc).year == 2002


@pytest.mark.parametrize("f008", [
    "020805s        nyu    j      000 1 eng  ",   # date 1 blank
    "020805suuuu    nyu    j      000 1 eng  ",   # date 1 unknown
    "020805s20uu    nyu    j      000 1 eng  ",   # decade unknown
    "020805|||||||||nyu    j      000 1 eng  ",   # no attempt to code
    None,                                         # no 008 at all
])
def test_year_falls_back_to_260c(marc_data, f008):
    # 260 $c c2002.
    assert json_record(with_field(summerland_json(marc_data), "008", f008)).year == 2002


def test_year_fallback_on_alma_records(marc_data):
    # Alma's CNMARC->MARC21 conversion writes 008 "190611s########": 260 $c has the year.
    path = marc_data / "dp2-bnu-alma-sru" / "sample_marcxml.xml"
    years = [r.year for r in records_of(path)]
    # 260 $c per record: 2012, 2008, 2006, 2007, 2007, 2007, 2007, 1992.8, 1993, 1993.3
    assert years == [2012, 2008, 2006, 2007, 2007, 2007, 2007, 1992, 1993, 1993]


def test_language_from_008(marc_data):
    assert only_record(marc_data / "openlibrary" / "880_Nihon_no_chasho.mrc").language == "jpn"
    doc = with_field(summerland_json(marc_data), "008",
                     "020805s2002    nyu    j      000 1 ger  ")
    assert json_record(doc).language == "ger"


# leader/06 type of record, leader/07 bibliographic level (MARC21 Bibliographic, Leader).
@pytest.mark.parametrize(("code", "kind"), [
    ("am", "book"), ("ac", "book"), ("ad", "book"),
    ("as", "serial"), ("ai", "serial"), ("ab", "article"), ("aa", "article"),
    ("tm", "manuscript"), ("cm", "music_score"), ("dm", "music_score"),
    ("em", "map"), ("fm", "map"), ("gm", "video"), ("im", "audio"), ("jm", "audio"),
    ("km", "image"), ("mm", "electronic"), ("om", "mixed"), ("pc", "mixed"),
    ("rm", "object"),
])
def test_material_type_from_leader(marc_data, code, kind):
    doc = summerland_json(marc_data)
    doc["leader"] = doc["leader"][:6] + code + doc["leader"][8:]
    assert json_record(doc).material_type == kind


def test_material_type_on_real_leaders(marc_data):
    video = marc_data / "marc4j" / "chinese_mangled_multibyte.mrc"
    assert [r.material_type for r in records_of(video)] == ["video"] * 4   # 03319cgm
    assert only_record(marc_data / "pymarc" / "utf8_errors.dat").material_type == "image"
    article = records_of(marc_data / "dp2-bnu-alma-sru" / "sample_marcxml.xml")[0]
    assert article.material_type == "article"  # leader "     naa  22 ..."


def test_vernacular_subject_headings_are_kept_beside_romanized(marc_data):
    """An 880 linked to a 6XX gives the heading in its own script too (LC 84231405)."""
    records = [normalize(e.record, flavour=e.flavour)
               for e in read_file(marc_data / "yaz" / "marccol1.u8.marc")]
    (record,) = [r for r in records if (r.id or "").strip() == "84231405"]
    assert "Zhongguo gong chan dang -- Party work" in record.subjects
    assert "中国 共产党 -- Party work" in record.subjects  # the ideographic space folded
