"""MARC-8 (and records that only look like it) decoded against independent references.

YAZ's test files pair each MARC-8 ``marcN.marc`` with ``marcN.xml``, the UTF-8 MARCXML that
YAZ itself produced from it; that is the oracle here. The other expectations were read from
the raw bytes and the MARC-8 code tables (ANSEL, EACC, Basic Cyrillic, Basic Arabic).
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest
from lxml import etree

from marc import Record, normalize, read_file
from marc.reader import Entry

SLIM = "{http://www.loc.gov/MARC21/slim}"
UNKNOWN = "\ufffd"

# LC's MARC-8 table maps ANSEL EB/EC (ligature halves) to U+FE20/U+FE21 and FA/FB (double
# tilde halves) to U+FE22/U+FE23, and lists U+0361/U+0360 (one double-width mark on the first
# letter, nothing on the second) as the alternative. YAZ emits the alternative; both are
# correct, so a field that differs from YAZ only in this choice counts as matching.
_LC_ALTERNATIVE = str.maketrans({"\ufe20": "\u0361", "\ufe21": None,
                                 "\ufe22": "\u0360", "\ufe23": None})

# Field: ("001", data) for a control field, ("245", "10", ((code, value), ...)) otherwise.
Field = tuple


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def yaz_fields(path: Path) -> list[Field]:
    """The fields of the one record in one of YAZ's MARCXML files, parsed with lxml."""
    root = etree.parse(str(path)).getroot()
    (record,) = root.iter(f"{SLIM}record")
    out: list[Field] = []
    for elem in record:
        name = etree.QName(elem).localname
        if name == "controlfield":
            out.append((elem.get("tag"), nfc(elem.text or "")))
        elif name == "datafield":
            subfields = tuple((sf.get("code"), nfc(sf.text or ""))
                              for sf in elem.iter(f"{SLIM}subfield"))
            out.append((elem.get("tag"), elem.get("ind1") + elem.get("ind2"), subfields))
    return out


def our_fields(entry: Entry) -> list[Field]:
    assert entry.record is not None
    out: list[Field] = []
    for f in entry.record.fields:
        if f.is_control_field():
            out.append((f.tag, nfc(f.data)))
        else:
            subfields = tuple((sf.code, nfc(sf.value)) for sf in f.subfields)
            out.append((f.tag, f.indicator1 + f.indicator2, subfields))
    return out


def lc_alternative(field: Field) -> Field:
    if len(field) == 2:
        return field
    tag, indicators, subfields = field
    return (tag, indicators,
            tuple((code, nfc(value.translate(_LC_ALTERNATIVE))) for code, value in subfields))


def reported_unknown(field: Field, entry: Entry) -> bool:
    """The field shows U+FFFD for an unknown character and the record's problems name it."""
    values = [field[1]] if len(field) == 2 else [value for _, value in field[2]]
    return (any(UNKNOWN in value for value in values)
            and any(field[0] in problem for problem in entry.problems))


def compare_with_yaz(marc_data: Path, name: str) -> tuple[Entry, list[tuple[Field, Field]]]:
    """The entry for yaz/NAME.marc and the (ours, YAZ's) pairs that do not match."""
    entries = list(read_file(marc_data / "yaz" / f"{name}.marc"))
    assert len(entries) == 1
    (entry,) = entries
    assert entry.ok, entry.problems
    ours, theirs = our_fields(entry), yaz_fields(marc_data / "yaz" / f"{name}.xml")
    assert [f[0] for f in ours] == [f[0] for f in theirs]
    bad = [(mine, yaz) for mine, yaz in zip(ours, theirs, strict=True)
           if mine != yaz and lc_alternative(mine) != yaz and not reported_unknown(mine, entry)]
    return entry, bad


def only_record(path: Path) -> tuple[Entry, Record]:
    (entry,) = list(read_file(path))
    assert entry.record is not None, entry.problems
    return entry, normalize(entry.record, flavour=entry.flavour, warnings=entry.problems)


def subfield(entry: Entry, tag: str, code: str, link: str | None = None) -> str:
    """NFC value of the first ``$code`` of the first ``tag`` (whose $6 starts with ``link``)."""
    assert entry.record is not None
    for f in entry.record.get_fields(tag):
        if link is not None and not (f.get("6") or "").startswith(link):
            continue
        return nfc(f.get(code))
    raise AssertionError(f"no {tag} {link or ''}")


# --- YAZ as the oracle ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["marc6", "marc7", "marc8", "marc9", "marc12"])
def test_marc8_fields_match_yaz(marc_data, name):
    _, bad = compare_with_yaz(marc_data, name)
    report = "\n".join(f"ours {mine!r}\n yaz {yaz!r}" for mine, yaz in bad)
    assert not bad, f"{len(bad)} field(s) of {name} differ from YAZ:\n{report}"


@pytest.mark.parametrize("name", ["marc7", "marc8", "marc9", "marc12"])
def test_marc8_records_detected_as_marc8(marc_data, name):
    # Each has MARC-8 escape sequences (ESC p, ESC b, ESC ( 3, ESC $ 1); marc8's leader/09 is
    # '^' and marc9's and marc7's are blank. Escapes are 7-bit, so "all ASCII" is no proof of
    # UTF-8.
    (entry,) = list(read_file(marc_data / "yaz" / f"{name}.marc"))
    assert entry.encoding == "marc-8"


def test_no_escape_sequence_survives_decoding(marc_data):
    for name in ("marc7", "marc8", "marc9", "marc12"):
        (entry,) = list(read_file(marc_data / "yaz" / f"{name}.marc"))
        assert entry.record is not None
        leftovers = [str(f) for f in entry.record.fields if "\x1b" in str(f)]
        assert not leftovers, f"{name}: {leftovers[:3]}"


def test_marc12_unknown_eacc_bytes_marked_not_spaced(marc_data):
    # 880 $6 500-00/$1: EACC for 本书荣获2018年金鼎奖图书 then two bytes 0xFD 0xFD that are in
    # no MARC-8 set, then 画奖. pymarc turns such characters into spaces; we must not.
    (entry,) = list(read_file(marc_data / "yaz" / "marc12.marc"))
    value = subfield(entry, "880", "a", "500-00")
    assert " " not in value.split('"')[1]
    assert value.startswith('"本书荣获2018年金鼎奖图书')
    assert value.endswith('画奖"--page [4] of cover.')
    assert UNKNOWN in value
    assert any("880" in p for p in entry.problems)


def test_marc12_normalized_from_eacc_880s(marc_data):
    _, r = only_record(marc_data / "yaz" / "marc12.marc")
    # 880 10 $6 245-02/$1 $a 车票去哪儿了 / $c 刘旭恭著绘.  (YAZ's reading of the EACC)
    assert r.title == "车票去哪儿了"
    assert r.responsibility == "刘旭恭著绘"
    assert r.authors == ("刘旭恭",)
    # 880 _1 $6 264-04/$1 $a [武汉] : $b 长江少年儿童出版社, $c 2020.
    assert r.publisher == "长江少年儿童出版社"
    assert r.place == "武汉"
    assert r.edition == "第1版"
    assert r.year == 2020
    assert r.romanized is not None
    assert r.romanized.title == "Che piao qu na er le"


def test_marc9_arabic_880s(marc_data):
    _, r = only_record(marc_data / "yaz" / "marc9.marc")
    # 880 00 $6 245-01/(3/r $a قضاء الأسرة : $b مجلة متخصصة / $c وزارة العدل.
    assert r.title == "قضاء الأسرة"
    assert r.subtitle == "مجلة متخصصة"
    assert r.material_type == "serial"  # leader 02075cas


# --- other MARC-8 files -----------------------------------------------------------------------

SOLITUDE = "De la solitude à la communauté."


def test_pymarc_marc8_ansel_diacritics(marc_data):
    # 240 10 $a De la solitude \xe1a la communaut\xe2e.  (ANSEL E1 grave, E2 acute, before
    # the letter they modify)
    entry, r = only_record(marc_data / "pymarc" / "marc8.dat")
    assert entry.encoding == "marc-8"
    assert entry.problems == ()
    assert subfield(entry, "240", "a") == SOLITUDE
    assert subfield(entry, "500", "a") == "Translation of " + SOLITUDE
    assert r.title == "Escape from loneliness"
    assert r.year == 1962


def test_utf8_without_leader_flag_is_read_as_utf8(marc_data):
    # leader/09 is blank, yet the bytes are UTF-8 (a\xcc\x80 = a + U+0300): auto must see it.
    entry, _ = only_record(marc_data / "pymarc" / "utf8_without_leader_flag.dat")
    assert entry.encoding == "utf-8"
    assert subfield(entry, "240", "a") == SOLITUDE
    everything = "".join(str(f) for f in entry.record.fields)
    assert not re.search("[\u00c0-\u00ff][\u0080-\u00ff\u0300-\u036f]", everything)  # mojibake


def test_same_record_in_three_encodings(marc_data):
    """marc8.dat, utf8_with_leader_flag.dat and utf8_without_leader_flag.dat are one record."""
    names = ["marc8.dat", "utf8_with_leader_flag.dat", "utf8_without_leader_flag.dat"]
    read = [only_record(marc_data / "pymarc" / name) for name in names]
    fields = [our_fields(entry) for entry, _ in read]
    assert fields[0] == fields[1] == fields[2]
    records = [r for _, r in read]
    assert records[0] == records[1] == records[2]


def test_bad_eacc_japanese_title(marc_data):
    # 880 00 $6 245-01/$1 $a (EACC) 米国の統治の仕組 then three 3-byte codes in no table.
    entry, r = only_record(marc_data / "pymarc" / "bad_eacc_encoding.dat")
    assert entry.encoding == "marc-8"
    assert r.title is not None
    assert r.title.startswith("米国の統治の仕組")
    rest = r.title.removeprefix("米国の統治の仕組")
    assert set(rest) <= {UNKNOWN}, f"unknown EACC became {rest!r}"
    if rest:
        assert any("880" in p for p in entry.problems)
    assert r.romanized is not None
    assert nfc(r.romanized.title) == "Beikoku no tōchi no shikumi"
    assert r.language == "jpn"


def test_table_of_contents_romanized_russian(marc_data):
    # Leader 00963cam  2200253Ia: blank leader/09, ANSEL bytes.
    entry, r = only_record(marc_data / "openlibrary" / "880_table_of_contents.mrc")
    assert entry.encoding == "marc-8"
    assert entry.problems == ()
    # 245 $a Zhizn\xa7 \xe7eto teatr : -- A7 = U+02B9 (miagkii znak), E7 = combining dot above
    assert r.title == "Zhiznʹ ėto teatr"
    assert r.subtitle == "[rasskazy, roman]"
    # $c L\xebi\xecudmila Petrushevska\xebi\xeca -- EB/EC = ligature halves U+FE20/U+FE21
    assert r.responsibility == "Li\ufe20u\ufe21dmila Petrushevskai\ufe20a\ufe21"
    assert r.authors == ("Petrushevskai\ufe20a\ufe21, Li\ufe20u\ufe21dmila",)
    assert r.publisher == "Amfora"
    assert r.place == "Sankt-Peterburg"
    assert r.year == 2006
    assert r.language == "rus"
    # 020 536700279X and 020 9785367002799: one book
    assert r.isbns == ("9785367002799",)
    # $6 880-0N point at 880s the record does not have
    assert r.romanized is None


CHE_LUN = "車輪滾滾"


def test_chinese_mangled_multibyte_marc8_and_utf8_copies(marc_data):
    # Record 2 is MARC-8 EACC, record 4 the same record in UTF-8 (leader/09 'a').
    entries = list(read_file(marc_data / "marc4j" / "chinese_mangled_multibyte.mrc"))
    assert len(entries) == 4
    assert all(e.ok for e in entries)
    assert entries[1].encoding == "marc-8"
    assert entries[3].encoding == "utf-8"
    second, fourth = (normalize(e.record, flavour=e.flavour, warnings=e.problems)
                      for e in (entries[1], entries[3]))
    # 880 00 $6 245-01/$1 $a 車輪滾滾 $h [videorecording] / $c 长春电影制片厂 ; 编剧, ...
    assert second.title == CHE_LUN
    assert fourth.title == CHE_LUN
    assert fourth.responsibility == "长春电影制片厂 ; 编剧, 薛寿先；导演, 尹一青"
    # 880 $6 260-02/$1 $a [济南] : $b 齐鲁音像出版社 : $b 广州俏佳人文化传播有限公司, $c [2003]
    assert fourth.place == "济南"
    assert fourth.publisher == "齐鲁音像出版社"
    assert fourth.year == 2003
    assert second == fourth


def test_chinese_mangled_first_copy_is_not_silent(marc_data):
    # Record 1's EACC multibyte sequences are mangled: whatever comes out, it must not pass
    # as a clean record.
    first = next(iter(read_file(marc_data / "marc4j" / "chinese_mangled_multibyte.mrc")))
    assert first.record is not None
    r = normalize(first.record, flavour=first.flavour, warnings=first.problems)
    if r.title != CHE_LUN:
        assert first.problems, f"title {r.title!r} decoded without a warning"
        assert "\x1b" not in (r.title or "")


def test_marc8_numeric_character_references(marc_data):
    # Record 3 uses MARC-8 "lossless conversion" (MARC 21 Specifications, character sets):
    # characters outside MARC-8 written as &#xNNNN; -- they are part of the encoding and
    # stand for 車輪滾滾.
    entries = list(read_file(marc_data / "marc4j" / "chinese_mangled_multibyte.mrc"))
    third = entries[2]
    assert third.record is not None
    r = normalize(third.record, flavour=third.flavour, warnings=third.problems)
    assert r.title == CHE_LUN
    assert r.publisher == "齐鲁音像出版社"


def test_cyrillic_880s(marc_data):
    entries = list(read_file(marc_data / "marc4j" / "cyrillic_capital_e.mrc"))
    assert len(entries) == 2
    assert [e.encoding for e in entries] == ["marc-8", "marc-8"]
    first, second = (normalize(e.record, flavour=e.flavour, warnings=e.problems)
                     for e in entries)
    # ESC ( N: Basic Cyrillic, where ASCII lowercase positions are uppercase Cyrillic.
    # 880 10 $6 245-02/(N $a \e(NwOR\e(B, \e(N[PION I UBIJCA \e(B/ $c \e(N`RIJ bUJDA\e(B.
    assert first.title == "Вор, шпион и убийца"
    assert first.responsibility == "Юрий Буйда"
    assert first.authors == ("Буйда, Юрий",)
    assert first.place == "Москва"
    assert second.title == "Синдром Петрушки"
    assert second.subtitle == "роман"
    assert second.authors == ("Рубина, Дина",)


def test_cyrillic_capital_e_written_as_delimiter(marc_data):
    # The exporting system wrote Э (Basic Cyrillic 0x7C) as 0x1F right after ESC ( N:
    # "$b\e(N\x1fKSMO". A subfield delimiter cannot follow an escape sequence that has not
    # selected anything yet; marc4j's permissive reader repairs it, and so must we:
    # 264 -> Эксмо / ЭКСМО (marc4j PermissiveReaderTest.testCyrillicEFix).
    entries = list(read_file(marc_data / "marc4j" / "cyrillic_capital_e.mrc"))
    publishers = [normalize(e.record, flavour=e.flavour, warnings=e.problems).publisher
                  for e in entries]
    assert [(p or "").casefold() for p in publishers] == ["эксмо", "эксмо"]


def test_marc5_greek_record_survives_a_field_without_delimiter(marc_data):
    # UTF-8 Greek record; field 250 has no subfield delimiter, so its "indicators" are the
    # first bytes of a UTF-8 character. pymarc loses the whole record here.
    entry, r = only_record(marc_data / "yaz" / "marc5.marc")
    assert entry.encoding == "utf-8"
    assert r.title == "Ελληνικόν κρυπτογραφικόν λεξικόν"
    assert r.responsibility == "Κωνστ. Ι. Μαρούδης"
    assert r.authors == ("Μαρούδης, Κωνσταντίνος Ιω",)
    assert r.place == "Αθήνα"
    assert r.year == 1894
    assert r.language == "gre"
    assert any("250" in p for p in entry.problems)
