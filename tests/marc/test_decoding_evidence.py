"""Decoding by evidence (issue 13, item 4), against third-party files and yaz-marcdump."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from test_broken import fields_of

from marc import normalize, read_bytes, read_file
from marc.encoding import choose_encoding
from marc.evidence import fit_gb18030, fit_latin1, fit_marc8

THIRD = "thirdparty"


def only(path):
    entries = [e for e in read_file(path)]
    assert len(entries) == 1, [e.problems for e in entries]
    return entries[0]


def test_marc8_under_leader_a_is_not_gb18030(marc_data):
    entry = only(marc_data / THIRD / "rubymarc__marc8_accented_chars.marc")
    assert entry.encoding == "marc-8"
    record = normalize(entry.record, flavour=entry.flavour)
    assert record.title == 'Histoire du "nouveau théâtre."'
    assert "Serreau, Geneviève" in record.authors[0]
    # Overruling leader/09 is never silent.
    assert any("leader/09" in p and "marc-8" in p for p in entry.problems)


@pytest.mark.skipif(shutil.which("yaz-marcdump") is None, reason="yaz-marcdump not installed")
def test_latin1_is_not_marc8_and_agrees_with_yaz(marc_data):
    path = marc_data / THIRD / "yaz__marc10.marc"
    entry = only(path)
    assert entry.encoding == "iso8859-1"
    assert entry.record["245"]["a"] == "Tegnsæt-test til Indvandrerbiblioteket."
    yaz = subprocess.run(["yaz-marcdump", "-f", "ISO-8859-1", "-t", "UTF-8", "-o", "line",
                          str(path)], capture_output=True, check=True).stdout.decode()
    line = next(x for x in yaz.splitlines() if x.startswith("245"))
    assert "Tegnsæt-test til Indvandrerbiblioteket." in line


def test_the_evidence_itself():
    assert fit_marc8(b"th\xe2e\xe3atre").clean and fit_marc8(b"th\xe2e\xe3atre").good
    assert not fit_gb18030(b"th\xe2e\xe3atre").clean
    assert not fit_marc8("Tegnsæt-test, café ".encode("latin-1")).clean
    assert fit_latin1("Tegnsæt-test, café ".encode("latin-1")).clean
    assert fit_gb18030("中国统计出版社".encode("gb18030")).clean
    assert not fit_latin1("中国统计出版社".encode("gb18030")).clean
    assert choose_encoding("中国统计出版社".encode("gb18030"), "unimarc", " ").charset == "gb18030"


def test_no_charset_fits_names_the_fields(marc_data):
    entries = list(read_file(marc_data / "pymarc" / "1251.dat"))
    assert len(entries) == 6
    for entry in entries:
        assert entry.encoding == "marc-8"  # the leader's claim stands when nothing fits
        assert any(p.startswith("field 245") for p in entry.problems), entry.problems


def test_bidi_controls_leave_normalized_values_not_the_raw_record(marc_data):
    entries = list(read_file(marc_data / THIRD / "pymarc__regression106.dat"))
    assert len(entries) == 146
    first = entries[0]
    record = normalize(first.record, flavour=first.flavour)
    assert record.title == "هل يجوز للمسلم أن يعتبر المسيحي مشركاً أو كافراً"
    assert record.publisher == "المطبعة الكاثوليكية"
    assert record.place == "بيروت"  # the junk $a before $6 is not the place
    assert "\u202a" in str(first.record)  # the raw MARC keeps them
    for entry in entries:
        r = normalize(entry.record, flavour=entry.flavour)
        for value in (r.title, r.publisher, r.place, *r.authors):
            assert value is None or "\u202a" not in value


def test_zero_width_joiners_inside_words_stay():
    from marc.normalization.text import visible
    assert visible("می\u200cخواهم") == "می\u200cخواهم"
    assert visible("\u200cabc\u200d ") == "abc "


def test_marc8_numeric_character_references(marc_data):
    entry = only(marc_data / THIRD / "marc4j__marc8-unicode-numeric-ref.mrc")
    assert entry.encoding == "marc-8"
    assert "&#x" not in str(entry.record)
    assert entry.record["260"]["a"] == "Rio de Janeiro escaped replacement char: C ."


def test_marc_in_json_with_raw_newlines(marc_data):
    entries = list(read_file(marc_data / THIRD / "pymarc__test.json"))
    assert entries and all(e.ok for e in entries)
    record = normalize(entries[0].record, flavour=entries[0].flavour)
    assert record.title.startswith("The freewheelin' Bob Dylan")


def test_padding_after_the_last_record_is_not_a_record(marc_data):
    entries = list(read_file(marc_data / THIRD / "pymarc__bad_indicator.dat"))
    assert len(entries) == 1 and entries[0].ok
    data = (marc_data / "pymarc" / "utf8_with_leader_flag.dat").read_bytes()
    for pad in (b" " * 300, b"\x00" * 40, b"\r\n", b"\x1a", b" \x1a\n"):
        read = list(read_bytes(data + pad))
        assert [e.ok for e in read] == [True], pad


def test_leader_indicator_count_zero(marc_data):
    data = (marc_data / "pymarc" / "utf8_with_leader_flag.dat").read_bytes()
    # The same record without indicators, leader/10 saying 0.
    leader, fields = fields_of(data)
    directory, body = b"", b""
    for tag, value in fields:
        if tag >= b"010":
            value = value[2:]
        directory += tag + b"%04d" % (len(value) + 1) + b"%05d" % len(body)
        body += value + b"\x1e"
    base = 24 + len(directory) + 1
    head = leader[5:10] + b"0" + leader[11:12]
    record = b"%05d" % (base + len(body) + 1) + head + b"%05d" % base + leader[17:]
    (entry,) = read_bytes(record + directory + b"\x1e" + body + b"\x1d")
    assert entry.ok, entry.problems
    assert not any("indicator" in p for p in entry.problems), entry.problems
    (original,) = read_bytes(data)
    for mine, theirs in zip(entry.record.fields, original.record.fields, strict=True):
        assert mine.tag == theirs.tag
        if not mine.is_control_field():
            assert mine.subfields == theirs.subfields
