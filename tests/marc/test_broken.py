"""Broken input: every record that can be read is read, everything else is reported.

Real broken files first (pymarc's bad_records.mrc, counted byte by byte), then damage done
in tmp_path to real records: cut, padded, misnumbered, oversized, mis-encoded. Nothing here
may raise; every Entry has a record or a reason.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path

import pytest

from marc import Record, normalize, read_bytes, read_file
from marc.reader import Entry

FT, RT, SF = b"\x1e", b"\x1d", b"\x1f"


def consume(entries) -> list[tuple[Entry, Record | None]]:
    """Read every entry and normalize every record; fail on an entry with neither."""
    out = []
    for entry in entries:
        if entry.record is None:
            assert entry.problems, f"{entry.position}: no record and no reason"
            out.append((entry, None))
        else:
            out.append((entry, normalize(entry.record, flavour=entry.flavour,
                                         warnings=entry.problems)))
    return out


def split_file(data: bytes) -> list[bytes]:
    """The records of a well-formed ISO 2709 file, cut by their leader lengths."""
    records, pos = [], 0
    while pos < len(data) and data[pos:pos + 5].isdigit():
        length = int(data[pos:pos + 5])
        records.append(data[pos:pos + length])
        pos += length
    return records


def fields_of(record: bytes) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """Leader and (tag, data without terminator) of a well-formed record."""
    base = int(record[12:17])
    directory = record[24:base - 1]
    fields = []
    for i in range(0, len(directory), 12):
        entry = directory[i:i + 12]
        length, start = int(entry[3:7]), int(entry[7:12])
        fields.append((entry[:3], record[base + start:base + start + length - 1]))
    return record[:24], fields


def build(leader: bytes, fields: list[tuple[bytes, bytes]],
          count: Callable[[bytes], int] = len) -> bytes:
    """An ISO 2709 record; ``count`` measures lengths and offsets (bytes unless told)."""
    directory, body = b"", b""
    for tag, data in fields:
        directory += tag + b"%04d%05d" % (count(data + FT), count(body))
        body += data + FT
    base = 24 + len(directory) + 1
    total = base + count(body) + 1
    return b"%05d" % total + leader[5:12] + b"%05d" % base + leader[17:] + directory + FT \
        + body + RT


def field_values(entry: Entry) -> list[str]:
    assert entry.record is not None
    return [str(f) for f in entry.record.fields]


def good_entries(data: bytes) -> list[Entry]:
    entries = list(read_bytes(data))
    assert all(e.ok and not e.problems for e in entries)
    return entries


@pytest.fixture(scope="module")
def test_dat(marc_data) -> list[bytes]:
    records = split_file((marc_data / "pymarc" / "test.dat").read_bytes())
    assert len(records) == 10
    return records


# --- pymarc/bad_records.mrc -------------------------------------------------------------------
#
# 918 bytes, 8 record terminators, then one LF. Each chunk is the same one-field record
# (245 "The pragmatic programmer : ..."), damaged differently:
#   offset 0    127 bytes  intact
#   offset 127  127 bytes  leader base address 99937 (the data starts at 37)
#   offset 254  127 bytes  base address 00000
#   offset 381  128 bytes  directory of 13 bytes: "2450089000001" (one stray digit)
#   offset 509  128 bytes  directory "245\xc3\xb908900001": 'ù' where the length should be
#   offset 637  127 bytes  base address "f0037"
#   offset 764   26 bytes  a leader and an empty directory: no fields at all
#   offset 790  127 bytes  intact
#   offset 917    1 byte   "\n" after the last terminator (filler, not a chunk)

BAD_OFFSETS = [0, 127, 254, 381, 509, 637, 764, 790]


def test_bad_records_every_chunk_accounted_for(marc_data):
    path = marc_data / "pymarc" / "bad_records.mrc"
    data = path.read_bytes()
    assert len(data) == 918 and data.count(RT) == 8
    read = consume(read_file(path))
    assert [e.offset for e, _ in read] == BAD_OFFSETS
    records = [r for _, r in read if r is not None]
    failed = [e for e, r in read if r is None]
    assert len(records) == 7
    assert len(failed) == 1
    assert all(r.title == "The pragmatic programmer" for r in records)
    assert all(r.subtitle == "from journeyman to master" for r in records)


def test_bad_records_repairs_are_reported(marc_data):
    read = consume(read_file(marc_data / "pymarc" / "bad_records.mrc"))
    problems = {e.offset: e.problems for e, _ in read}
    assert problems[0] == ()
    assert problems[790] == ()
    for offset in (127, 254, 637):  # wrong base address
        assert any("base address" in p for p in problems[offset]), problems[offset]
    for offset in (381, 509):  # malformed directory
        assert any("directory" in p for p in problems[offset]), problems[offset]


def test_bad_records_empty_record_has_reason_and_position(marc_data):
    read = consume(read_file(marc_data / "pymarc" / "bad_records.mrc"))
    (failed,) = [e for e, r in read if r is None]
    assert failed.offset == 764
    assert "byte 764" in failed.position
    assert failed.problems


def test_bad_records_read_file_and_read_bytes_agree(marc_data):
    path = marc_data / "pymarc" / "bad_records.mrc"
    from_file = [(e.number, e.offset, e.ok, e.problems) for e in read_file(path)]
    from_bytes = [(e.number, e.offset, e.ok, e.problems) for e in read_bytes(path.read_bytes())]
    assert from_file == from_bytes


# --- damage between and around records ---------------------------------------------------------


def test_truncated_file(tmp_path, test_dat):
    data = b"".join(test_dat)
    cut = sum(map(len, test_dat[:2])) + len(test_dat[2]) // 2  # middle of record 3
    path = tmp_path / "truncated.mrc"
    path.write_bytes(data[:cut])
    read = consume(read_file(path))
    assert [r.id for _, r in read[:2]] == ["fol05731351", "fol05754809"]
    assert read[0][0].problems == read[1][0].problems == ()
    assert len(read) == 3
    last, record = read[2]
    assert last.offset == sum(map(len, test_dat[:2]))
    assert last.problems, "a cut record must say so"
    if record is not None:
        assert record.id == "fol05843555"


def test_truncated_inside_leader(tmp_path, test_dat):
    path = tmp_path / "short.mrc"
    path.write_bytes(test_dat[0] + test_dat[1][:15])
    read = consume(read_file(path))
    assert read[0][1] is not None and read[0][1].id == "fol05731351"
    assert len(read) == 2
    assert read[1][1] is None
    assert read[1][0].offset == len(test_dat[0])


def test_garbage_between_records(tmp_path, test_dat):
    garbage = b"GARBAGE\xff\xfe 1234 !!"
    path = tmp_path / "garbage.mrc"
    path.write_bytes(test_dat[0] + garbage + b"".join(test_dat[1:]))
    read = consume(read_file(path))
    ids = [r.id for _, r in read if r is not None]
    assert ids == [f"fol0{n}" for n in (
        "5731351", "5754809", "5843555", "5843579", "5848297", "5865950", "5865956",
        "5865967", "5872355", "5882032")]
    skipped = [e for e, r in read if r is None]
    assert len(skipped) == 1
    assert skipped[0].offset == len(test_dat[0])
    assert skipped[0].problems


@pytest.mark.parametrize("filler", [b"\r\n", b"\n", b"\x00\x00", b"\x1a"])
def test_filler_between_records(tmp_path, test_dat, filler):
    path = tmp_path / "padded.mrc"
    path.write_bytes(filler.join(test_dat) + filler)
    read = consume(read_file(path))
    assert len(read) == 10
    assert all(r is not None and e.problems == () for e, r in read)


def test_record_terminator_inside_data_keeps_record_whole(test_dat):
    # The leader length is right; a 0x1D byte replaced the "D" of "Descartes" in field 100.
    damaged = test_dat[1].replace(b"Descartes", b"\x1descartes", 1)
    assert len(damaged) == len(test_dat[1]) and damaged.count(RT) == 2
    read = consume(read_bytes(test_dat[0] + damaged + test_dat[2]))
    assert [r.id for _, r in read] == ["fol05731351", "fol05754809", "fol05843555"]
    entry, record = read[1]
    assert record.title == "Programming the Perl DBI"
    original = field_values(good_entries(test_dat[1])[0])
    changed = [(a, b) for a, b in zip(original, field_values(entry), strict=True) if a != b]
    assert [a[:4] for a, _ in changed] == ["=100"]


def test_record_terminator_inside_data_is_reported(test_dat):
    damaged = test_dat[1].replace(b"Descartes", b"\x1descartes", 1)
    entries = list(read_bytes(test_dat[0] + damaged + test_dat[2]))
    assert any("100" in p for p in entries[1].problems), entries[1].problems


def test_record_terminator_inside_data_and_wrong_leader_length(test_dat):
    damaged = b"00999" + test_dat[1].replace(b"Descartes", b"\x1descartes", 1)[5:]
    read = consume(read_bytes(test_dat[0] + damaged + test_dat[2]))
    assert [r.id for _, r in read] == ["fol05731351", "fol05754809", "fol05843555"]
    assert read[1][1].title == "Programming the Perl DBI"


def test_wrong_base_address(test_dat):
    damaged = test_dat[1][:12] + b"00300" + test_dat[1][17:]
    read = consume(read_bytes(test_dat[0] + damaged + test_dat[2]))
    assert len(read) == 3
    entry, _ = read[1]
    assert field_values(entry) == field_values(good_entries(test_dat[1])[0])
    assert any("base address" in p for p in entry.problems)
    assert read[0][0].problems == read[2][0].problems == ()


def test_directory_counted_in_characters_for_utf8_chinese(tmp_path, marc_data):
    # A writer that measured the UTF-8 Chinese 880s in characters, not bytes: every length,
    # offset and the record length are too small.
    name = "oclc_63111280_export_as_UTF8_from_connexion.mrc"
    original = (marc_data / "marc4j" / name).read_bytes()
    leader, fields = fields_of(original)
    assert build(leader, fields) == original
    damaged = build(leader, fields, count=lambda b: len(b.decode("utf-8")))
    assert damaged != original
    path = tmp_path / "chars.mrc"
    path.write_bytes(damaged + damaged + original)
    entries = list(read_file(path))
    assert len(entries) == 3
    expected = field_values(good_entries(original)[0])
    for entry in entries[:2]:
        assert field_values(entry) == expected
        assert entry.problems
    assert entries[2].problems == ()
    r = normalize(entries[0].record, flavour=entries[0].flavour)
    assert r.title == "日本民俗·信仰·藝能·與中國文化"
    assert r.publisher == "大新書局"


def test_empty_file(tmp_path):
    path = tmp_path / "empty.mrc"
    path.write_bytes(b"")
    (entry,) = list(read_file(path))
    assert entry.record is None and entry.problems
    (entry,) = list(read_bytes(b""))
    assert entry.record is None and entry.problems


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_bytes(tmp_path, seed):
    data = random.Random(seed).randbytes(5000)
    path = tmp_path / "random.bin"
    path.write_bytes(data)
    read = consume(read_file(path))
    assert read
    assert all(r is None for _, r in read)


@pytest.mark.parametrize("data", [
    b"\r\n\r\n",          # only line ends
    b"\x00" * 64,         # NUL padding
    b"<foo/>",            # well-formed XML, no record
    b'<collection xmlns="http://www.loc.gov/MARC21/slim"/>',
    b"[]",                # JSON, no record
], ids=["crlf", "nul", "xml", "empty-collection", "json-array"])
def test_input_without_records_is_reported(data):
    entries = list(read_bytes(data))
    assert entries, "non-empty input must yield at least one Entry saying why nothing came"
    assert all(e.record is None and e.problems for e in entries)


def test_huge_field(tmp_path, marc_data):
    # A 120,000-byte 520 in a real record. Lengths above 9999 and offsets above 99999 do not
    # fit the directory, so the writer kept their low digits; the leader says 99999.
    original = (marc_data / "pymarc" / "utf8_with_leader_flag.dat").read_bytes()
    leader, fields = fields_of(original)
    huge = b"  " + SF + b"a" + b"0123456789" * 12_000
    fields = [*fields[:15], (b"520", huge), *fields[15:]]
    directory, body = b"", b""
    for tag, data in fields:
        directory += tag + (b"%04d" % len(data + FT))[-4:] + (b"%05d" % len(body))[-5:]
        body += data + FT
    base = 24 + len(directory) + 1
    record = b"99999" + leader[5:12] + b"%05d" % base + leader[17:] + directory + FT + body + RT
    assert len(record) > 100_000
    path = tmp_path / "huge.mrc"
    path.write_bytes(record + original)
    entries = list(read_file(path))
    assert len(entries) == 2
    first, second = entries
    assert first.record is not None
    assert first.problems
    (f520,) = first.record.get_fields("520")
    assert f520.get("a") == "0123456789" * 12_000
    others = [str(f) for f in first.record.fields if f.tag != "520"]
    assert others == field_values(good_entries(original)[0])
    assert second.ok and second.problems == ()
    assert normalize(first.record).title == "Escape from loneliness"


def test_invalid_utf8_in_one_field(marc_data):
    original = (marc_data / "pymarc" / "utf8_with_leader_flag.dat").read_bytes()
    leader, fields = fields_of(original)
    fields = [(t, d.replace(b"Escape", b"Esc\xffpe")) if t == b"245" else (t, d)
              for t, d in fields]
    (entry,) = list(read_bytes(build(leader, fields)))
    assert entry.record is not None
    assert entry.encoding == "utf-8"
    assert entry.record.get("245").get("a") == "Esc\ufffdpe from loneliness /"
    assert any("245" in p for p in entry.problems)
    assert not any(tag in p for p in entry.problems for tag in ("240", "260", "500", "730"))
    before = field_values(good_entries(original)[0])
    after = field_values(entry)
    assert [a for a, b in zip(before, after, strict=True) if a != b] == [
        f for f in before if f.startswith("=245")]


def test_invalid_utf8_in_one_chinese_field(marc_data):
    # The last byte of 大 (E5 A4 A7) in 880 $6 260-03 replaced by "A".
    name = "oclc_63111280_export_as_UTF8_from_connexion.mrc"
    original = (marc_data / "marc4j" / name).read_bytes()
    leader, fields = fields_of(original)
    big = "大".encode()
    damaged = [(t, d.replace(big, big[:2] + b"A")) if b"260-03" in d else (t, d)
               for t, d in fields]
    (entry,) = list(read_bytes(build(leader, damaged)))
    assert entry.record is not None
    (f880,) = [f for f in entry.record.get_fields("880") if f.get("6") == "260-03"]
    assert "\ufffd" in f880.get("b")
    assert f880.get("b").endswith("新書局,")
    assert f880.get("a") == "台北市 :"
    assert any("880" in p for p in entry.problems)
    before = field_values(good_entries(original)[0])
    changed = [a for a, b in zip(before, field_values(entry), strict=True) if a != b]
    assert len(changed) == 1 and "260-03" in changed[0]


def test_replacement_character_as_subfield_code(marc_data):
    # utf8_invalid.mrc: 260 $a [Washington, D.C.: \x1f\xef\xbf\xbd bAssociation ...]: an
    # earlier conversion left U+FFFD where a subfield code belongs. The record is kept, the
    # damage is reported.
    (entry,) = list(read_file(marc_data / "pymarc" / "utf8_invalid.mrc"))
    assert entry.record is not None
    r = normalize(entry.record, flavour=entry.flavour, warnings=entry.problems)
    assert r.title == "The coming revolution in teacher licensure"
    assert r.year == 1994
    assert any("260" in p for p in entry.problems), entry.problems


# --- MARCXML and MARC-in-JSON ------------------------------------------------------------------


def batch_xml(marc_data: Path) -> bytes:
    return (marc_data / "pymarc" / "batch.xml").read_bytes()


def line_of(data: bytes, index: int) -> int:
    return data[:index].count(b"\n") + 1


def test_truncated_xml_keeps_records_before_the_error(tmp_path, marc_data):
    data = batch_xml(marc_data)
    second = data.index(b"<marc:record>", data.index(b"</marc:record>"))
    cut = data.index(b'<marc:datafield tag="256"', second) + len(b"<marc:data")
    path = tmp_path / "cut.xml"
    path.write_bytes(data[:cut])
    read = consume(read_file(path))
    first_entry, first = read[0]
    assert first is not None and first.id == "5637241"
    assert first.title == "The Great Ray Charles"
    assert first_entry.problems == ()
    errors = [e for e, r in read if r is None]
    assert errors
    assert all(e.line is not None and e.line >= line_of(data, cut) for e in errors)


def test_record_cut_by_xml_error_is_flagged(tmp_path, marc_data):
    # The file ends inside record 2, in the tag after its 245: the record lost its 256,
    # 260, 300, 5XX, 6XX and 7XX. If it is returned at all, its entry must say so.
    data = batch_xml(marc_data)
    second = data.index(b"<marc:record>", data.index(b"</marc:record>"))
    cut = data.index(b'<marc:datafield tag="256"', second) + len(b"<marc:data")
    read = consume(read_bytes(data[:cut]))
    for entry, record in read[1:]:
        if record is not None:
            assert entry.problems, f"record {record.id} is incomplete but has no problem"


def test_malformed_tag_inside_xml(marc_data):
    data = batch_xml(marc_data)
    second = data.index(b"<marc:record>", data.index(b"</marc:record>"))
    at = data.index(b'<marc:datafield tag="245"', second)
    broken = data[:at] + b"<marc:datafield <<" + data[at:]
    read = consume(read_bytes(broken))
    assert read[0][1] is not None and read[0][1].title == "The Great Ray Charles"
    errors = [e for e, r in read if r is None]
    assert any(e.line == line_of(broken, at) for e in errors), [
        (e.line, e.problems) for e in errors]
    for entry, record in read[1:]:
        if record is not None and record.title != "The White House":
            assert entry.problems, "damaged record returned without a problem"


def test_xml_missing_end_of_collection(marc_data):
    data = batch_xml(marc_data).replace(b"</marc:collection>", b"")
    read = consume(read_bytes(data))
    assert [r.id for _, r in read if r is not None] == ["5637241", "12149120"]
    assert [r.title for _, r in read if r is not None] == ["The Great Ray Charles",
                                                          "The White House"]
    assert any(r is None and e.line is not None for e, r in read)


@pytest.mark.parametrize("text", [
    '{"foo": 1}',
    '[1, 2, 3]',
    '{"leader": "00714cam a2200205 a 4500", "fields": "none"}',
    '{"leader": "00714cam a2200205 a 4500", "fields": []}',
    '[{"leader": "00714cam a2200205 a 4500", "fields": [{"245": 7}]}]',
    '{"leader": ',
    '{"a": 1}\n{"b": 2}\n',
    '"a string"',
    'null',
], ids=["object", "numbers", "fields-string", "no-fields", "bad-field", "cut", "json-lines",
        "string", "null"])
def test_json_that_is_not_marc(text):
    read = consume(read_bytes(text.encode("utf-8")))
    assert read
    assert all(r is None for _, r in read)


def test_json_records_around_a_bad_one(marc_data):
    good = json.loads((marc_data / "marc4j" / "summerland-marc-in-json.json").read_text("utf-8"))
    text = json.dumps([good, {"nothing": "here"}, good], ensure_ascii=False)
    read = consume(read_bytes(text.encode("utf-8")))
    assert [r.title if r else None for _, r in read] == ["Summerland", None, "Summerland"]
