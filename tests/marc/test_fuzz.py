"""Property tests: damaged real records never make reading or normalizing raise.

Real ISO 2709 records (MARC21 UTF-8, MARC21 MARC-8, CNMARC UTF-8, CNMARC GBK) and real
MARCXML / MARC-in-JSON documents are mutated byte by byte. Whatever comes out, every Entry
has a record or a reason, every record normalizes, and non-empty input is never met with
silence. The runs are derandomized so a failure is reproducible.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from marc import normalize, read_bytes, read_file

ISO_SOURCES = {
    "marc21-utf8": ["yaz/marccol1.u8.marc",
                    "marc4j/oclc_63111280_export_as_UTF8_from_connexion.mrc"],
    "marc21-marc8": ["pymarc/test.dat", "pymarc/marc8.dat", "yaz/marc12.marc", "yaz/marc9.marc",
                     "marc4j/cyrillic_capital_e.mrc", "marc4j/chinese_mangled_multibyte.mrc"],
    "cnmarc-utf8": ["derived/bnu_cnmarc.utf8.iso"],
    "cnmarc-gbk": ["derived/bnu_cnmarc.gbk.iso"],
}
XML_SOURCES = ["pymarc/batch.xml", "marc4j/summerland.xml", "yaz/marc12.xml", "yaz/marc9.xml",
               "marc4j/1474920681_KOHA_LFL_5.xml", "pymarc/utf8.xml"]
JSON_SOURCES = ["pymarc/batch.json", "marc4j/summerland-marc-in-json.json"]

FUZZ = settings(max_examples=200, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# Bytes that mean something in ISO 2709, MARC-8 or the multibyte charsets.
SPECIAL_BYTES = [0x1D, 0x1E, 0x1F, 0x1B, 0x24, 0x28, 0x31, 0x00, 0x0A, 0x0D, 0x30, 0x39,
                 0x7F, 0x80, 0xA1, 0xC3, 0xE4, 0xFE, 0xFF]
XML_SNIPPETS = [
    "<", ">", "&", "&amp;", "&#0;", "&#x1F;", "&#xD800;", '"', "'", "\x00", "\x1f", "\ufffd",
    "中", "</record>", "<record>", "</collection>", "<leader>", "</leader>",
    '<datafield tag="245" ind1="1" ind2="0">', '<subfield code="a">', "</subfield>",
    '<controlfield tag="001">', '<subfield code="">', '<datafield tag="">', "<![CDATA[", "]]>",
    "<!DOCTYPE r [<!ENTITY e SYSTEM 'file:///etc/passwd'>]>", "&e;", "<?xml version='1.0'?>",
    "<!--", "-->",
]
JSON_SNIPPETS = ["{", "}", "[", "]", ",", ":", '"', "null", "0", '{"245": 1}', '"fields"',
                 '{"subfields": [{"a": null}]}', "\\u0000", "\\ud800", "中"]


def _load(marc_data: Path, names: list[str]) -> list[bytes]:
    out = []
    for name in names:
        data = (marc_data / name).read_bytes()
        out.extend(chunk + b"\x1d" for chunk in data.split(b"\x1d") if len(chunk.strip()) > 24)
    return out


@pytest.fixture(scope="module")
def iso_records(marc_data) -> list[bytes]:
    records = []
    for kind, names in ISO_SOURCES.items():
        found = _load(marc_data, names)
        assert found, kind
        records.extend(found)
    return records


@pytest.fixture(scope="module")
def scratch_file(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz") / "input.bin"


def check(entries, data: bytes) -> None:
    """The property: nothing raised so far, and every entry is a record or a reason."""
    entries = list(entries)
    for entry in entries:
        if entry.record is None:
            assert entry.problems, f"{entry.position}: no record and no reason"
        else:
            normalize(entry.record, flavour=entry.flavour, warnings=entry.problems)
            normalize(entry.record)  # and with the flavour left to detection
    if data.strip():
        assert len(entries) >= 1, "non-empty input produced no record and no problem"


def check_both(data: bytes, scratch: Path) -> None:
    check(read_bytes(data), data)
    scratch.write_bytes(data)  # read_file maps ISO 2709 files instead of reading them
    check(read_file(scratch), data)


MUTATION = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 1 << 20), st.integers(0, 7)),
    st.tuples(st.just("set"), st.integers(0, 1 << 20), st.sampled_from(SPECIAL_BYTES)),
    st.tuples(st.just("insert"), st.integers(0, 1 << 20),
              st.binary(min_size=1, max_size=6) | st.sampled_from(SPECIAL_BYTES).map(
                  lambda b: bytes([b]))),
    st.tuples(st.just("delete"), st.integers(0, 1 << 20), st.integers(1, 40)),
    st.tuples(st.just("truncate"), st.integers(0, 1 << 20), st.none()),
    st.tuples(st.just("splice"), st.integers(0, 1 << 20), st.integers(0, 1 << 20)),
    st.tuples(st.just("append"), st.integers(0, 1 << 20), st.none()),
    st.tuples(st.just("digits"), st.integers(0, 1 << 20), st.integers(0, 99999)),
)


def mutate(data: bytes, ops, records: list[bytes]) -> bytes:
    buf = bytearray(data)
    for op, at, arg in ops:
        pos = at % (len(buf) + 1)
        if op == "flip" and buf:
            buf[pos % len(buf)] ^= 1 << arg
        elif op == "set" and buf:
            buf[pos % len(buf)] = arg
        elif op == "insert":
            buf[pos:pos] = arg
        elif op == "delete":
            del buf[pos:pos + arg]
        elif op == "truncate":
            del buf[pos:]
        elif op == "splice":  # the tail of another record from some point on
            other = records[arg % len(records)]
            buf[pos:] = other[(arg // len(records)) % len(other):]
        elif op == "append":  # a whole other record: multi-record input
            buf += records[at % len(records)]
        elif op == "digits":  # rewrite a leader or directory number with other digits
            buf[pos:pos + 5] = b"%05d" % arg
    return bytes(buf)


@FUZZ
@given(data=st.data())
def test_mutated_iso2709_never_raises(iso_records, scratch_file, data):
    original = data.draw(st.sampled_from(iso_records), label="record")
    ops = data.draw(st.lists(MUTATION, min_size=1, max_size=6), label="mutations")
    check_both(mutate(original, ops, iso_records), scratch_file)


@FUZZ
@given(data=st.data())
def test_mutated_iso2709_files_never_raise(iso_records, scratch_file, data):
    """Several records in a row, with damage anywhere in the file."""
    picks = data.draw(st.lists(st.sampled_from(iso_records), min_size=2, max_size=5),
                      label="records")
    filler = data.draw(st.sampled_from([b"", b"\r\n", b"\n", b"\x00"]), label="filler")
    ops = data.draw(st.lists(MUTATION, min_size=1, max_size=4), label="mutations")
    check_both(mutate(filler.join(picks), ops, iso_records), scratch_file)


@pytest.mark.parametrize("encoding", ["auto", "utf-8", "marc-8", "gb18030"])
@settings(max_examples=50, deadline=None, derandomize=True, database=None)
@given(data=st.data())
def test_forced_encodings_never_raise(iso_records, encoding, data):
    original = data.draw(st.sampled_from(iso_records), label="record")
    ops = data.draw(st.lists(MUTATION, max_size=3), label="mutations")
    damaged = mutate(original, ops, iso_records)
    check(read_bytes(damaged, encoding=encoding), damaged)
    check(read_bytes(damaged, encoding=encoding, flavour="unimarc"), damaged)


TEXT_MUTATION = st.one_of(
    st.tuples(st.just("insert"), st.integers(0, 1 << 20), st.sampled_from(XML_SNIPPETS)),
    st.tuples(st.just("delete"), st.integers(0, 1 << 20), st.integers(1, 200)),
    st.tuples(st.just("truncate"), st.integers(0, 1 << 20), st.none()),
    st.tuples(st.just("duplicate"), st.integers(0, 1 << 20), st.integers(1, 400)),
    st.tuples(st.just("swap"), st.integers(0, 1 << 20), st.integers(0, 1 << 20)),
    st.tuples(st.just("byte"), st.integers(0, 1 << 20), st.sampled_from(SPECIAL_BYTES)),
)


def mutate_text(text: str, ops) -> bytes:
    for op, at, arg in ops:
        pos = at % (len(text) + 1)
        if op == "insert":
            text = text[:pos] + arg + text[pos:]
        elif op == "delete":
            text = text[:pos] + text[pos + arg:]
        elif op == "truncate":
            text = text[:pos]
        elif op == "duplicate":
            text = text[:pos + arg] + text[pos:]
        elif op == "swap":
            a, b = sorted((pos, arg % (len(text) + 1)))
            mid = (a + b) // 2
            text = text[:a] + text[mid:b] + text[a:mid] + text[b:]
    raw = bytearray(text.encode("utf-8", "surrogatepass"))
    for op, at, arg in ops:
        if op == "byte" and raw:
            raw[at % len(raw)] = arg  # invalid UTF-8 or a stray control byte
    return bytes(raw)


@FUZZ
@given(data=st.data())
def test_mutated_marcxml_never_raises(marc_data, scratch_file, data):
    name = data.draw(st.sampled_from(XML_SOURCES), label="file")
    text = (marc_data / name).read_text("utf-8")
    ops = data.draw(st.lists(TEXT_MUTATION, min_size=1, max_size=5), label="mutations")
    check_both(mutate_text(text, ops), scratch_file)


JSON_MUTATION = st.one_of(
    st.tuples(st.just("insert"), st.integers(0, 1 << 20), st.sampled_from(JSON_SNIPPETS)),
    st.tuples(st.just("delete"), st.integers(0, 1 << 20), st.integers(1, 60)),
    st.tuples(st.just("truncate"), st.integers(0, 1 << 20), st.none()),
    st.tuples(st.just("byte"), st.integers(0, 1 << 20), st.sampled_from(SPECIAL_BYTES)),
)


@settings(max_examples=100, deadline=None, derandomize=True, database=None)
@given(data=st.data())
def test_mutated_marc_in_json_never_raises(marc_data, data):
    name = data.draw(st.sampled_from(JSON_SOURCES), label="file")
    text = (marc_data / name).read_text("utf-8")
    ops = data.draw(st.lists(JSON_MUTATION, min_size=1, max_size=4), label="mutations")
    damaged = mutate_text(text, ops)
    check(read_bytes(damaged), damaged)


def test_fuzz_sources_cover_every_kind(iso_records, marc_data):
    """The corpus really holds all four kinds of ISO 2709 record."""
    for kind, names in ISO_SOURCES.items():
        entries = [e for n in names for e in read_bytes((marc_data / n).read_bytes())]
        assert entries and all(e.ok for e in entries), kind
        flavours = {e.flavour for e in entries}
        assert flavours == ({"unimarc"} if kind.startswith("cnmarc") else {"marc21"}), kind
        if kind == "cnmarc-gbk":
            assert {e.encoding for e in entries} == {"gb18030"}
        if kind.endswith("utf8"):
            assert {e.encoding for e in entries} == {"utf-8"}
