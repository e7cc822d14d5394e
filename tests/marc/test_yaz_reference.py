"""Our MARC decoding against yaz-marcdump (Index Data's YAZ), the reference decoder.

Every ISO 2709 file of the third-party test data (pymarc's, marc4j's, ruby-marc's,
File_MARC's, YAZ's and Open Library's, see tests/data/marc/SOURCES.md) is read by us and by
``yaz-marcdump -o json``, and every record is compared field by field (tag, indicators,
subfield codes and values, NFC). yaz-marcdump decodes by the record's leader/09 (given
``-f MARC-8`` it reads a record whose leader/09 is 'a' as UTF-8 itself), so its plain run
is the reading the record declares; other runs give its reading in the charset we chose.

A difference fails the test unless it is one of these, each checked, not assumed:

* ``equivalent``: two LC-sanctioned spellings of the same text. MARC-8's ligature and
  double-tilde halves (EB/EC, FA/FB) are U+FE20..U+FE23 in LC's MARC-8 table (ours) and
  one U+0361/U+0360 in yaz; LC's lossless ``&#xNNNN;`` references we decode and yaz keeps.
* ``warned``: a field our record names in a warning (bytes replaced by U+FFFD, text
  before the first subfield code, a delimiter inside the data), or a record whose
  directory we repaired and say so; yaz trusts the directory, or drops what it cannot
  convert, silently.
* ``other charset``: we overrule leader/09 (MARC-8 bytes under 'a', Latin-1 under ' ',
  UTF-8 under ' '); our values must equal yaz's reading in our charset, and yaz's reading
  in the declared one must show the mis-decoding (U+FFFD, lost text, stray accents).
* ``known``: the few records in ``KNOWN`` below, each with its reason.

Run with ``-s`` for a summary per file.
"""

from __future__ import annotations

import functools
import json
import re
import shutil
import subprocess
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from pymarc import Record as MarcRecord

import marc
from marc import encoding as enc
from marc import evidence
from marc.reader import ISO2709, sniff_format

DATA = Path(__file__).resolve().parents[1] / "data" / "marc"
FOLDERS = ("thirdparty", "pymarc", "marc4j", "yaz", "openlibrary")
YAZ = shutil.which("yaz-marcdump")

pytestmark = pytest.mark.skipif(YAZ is None, reason="yaz-marcdump is not installed")

# (tag, indicators or None for a control field, subfields or the control field's data)
Field = tuple[str, str | None, tuple[tuple[str, str], ...] | str]

# Differences that are neither a bug of ours nor covered by a warning, with the reason.
KNOWN: dict[tuple[str, int], str] = {
    ("marc4j/cyrillic_capital_e.mrc", 2):
        "an exporter wrote Cyrillic capital E (0x7C) as 0x1F after ESC ( N; we read it as "
        "Э (ЭКСМО, the publisher Eksmo, as marc4j's test expects), yaz splits a subfield "
        "$k there",
    ("marc4j/cyrillic_capital_e.mrc", 1):
        "the same exporter fault as in record 2 (Эксмо, ЭКСМО)",
    ("thirdparty/filemarc__camel.mrc", 11):
        "007 holds subfield delimiters (pre-1990s MARC): yaz shows it as a data field, "
        "we keep the control field's bytes as they are",
}


# Records so wrecked that no reading is the better one: we must say so (a warning), and
# yaz's reading cannot show ours wrong.
WRECKED: dict[tuple[str, int], str] = {
    ("thirdparty/marc4j__pride-and-prejudice-with-many-errors.mrc", number):
        "a MARC21 record whose directory is wrecked (fields lost) is detected as UNIMARC "
        "and read as Latin-1, with a warning saying so; yaz's reading is garbage too, so "
        "neither shows the better one"
    for number in (93, 184, 268, 275, 356)
}


def _iso_files() -> list[Path]:
    found = []
    for folder in FOLDERS:
        for path in sorted((DATA / folder).iterdir()):
            if path.suffix in (".md", ".tsv", ".chr", ".xml", ".json"):
                continue
            with path.open("rb") as handle:
                if sniff_format(handle.read(64)) == ISO2709:
                    found.append(path)
    return found


FILES = _iso_files()


# --- yaz-marcdump -------------------------------------------------------------------------

_MARK = re.compile(r"^<!-- Record \d+ offset (\d+) ")


@dataclass(frozen=True)
class YazRun:
    records: dict[int, list[Field]]  # by byte offset
    notes: tuple[str, ...]  # what it said besides records (skipped bytes, premature EOF)


def _fields(record: dict) -> list[Field]:
    out: list[Field] = []
    for item in record["fields"]:
        ((tag, value),) = item.items()
        if isinstance(value, str):
            out.append((tag, None, _nfc(value)))
        else:
            subfields = tuple((code, _nfc(text)) for sub in value["subfields"]
                              for code, text in sub.items())
            out.append((tag, value.get("ind1", "") + value.get("ind2", ""), subfields))
    return out


@functools.cache
def run_yaz(path: Path, charset: str) -> YazRun:
    """One yaz-marcdump run over a file, its records by offset (``-p``)."""
    done = subprocess.run(
        [YAZ or "yaz-marcdump", "-p", "-f", charset, "-t", "UTF-8", "-o", "json", str(path)],
        capture_output=True, timeout=120, check=False)
    records: dict[int, list[Field]] = {}
    notes: list[str] = []
    offset: int | None = None
    lines: list[str] = []

    def flush() -> None:
        if offset is not None and lines:
            records[offset] = _fields(json.loads("\n".join(lines), strict=False))

    for line in done.stdout.decode("utf-8", "replace").splitlines():
        mark = _MARK.match(line)
        if mark or line.startswith(("<!--", "Bad Length")):
            flush()
            lines, offset = [], int(mark.group(1)) if mark else None
            if not mark:
                notes.append(line.strip("<!-> "))
        elif offset is not None:
            lines.append(line)
    flush()
    return YazRun(records, tuple(notes))


# --- our side and the comparison ----------------------------------------------------------

def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def ours(record: MarcRecord) -> list[Field]:
    out: list[Field] = []
    for item in record.fields:
        if item.control_field:
            out.append((item.tag, None, _nfc(item.data)))
        else:
            out.append((item.tag, "".join(item.indicators),
                        tuple((s.code, _nfc(s.value)) for s in item.subfields)))
    return out


_HALVES = str.maketrans({"\ufe20": "\u0361", "\ufe21": None, "\ufe22": "\u0360",
                         "\ufe23": None})
_YAZ_NCR = re.compile("&([\u0300-\u036f\ufe20-\ufe23]*)#x([0-9A-Fa-f]{2,6});")


def _ligatures(item: Field) -> Field:
    return _map(item, lambda text: _nfc(text.translate(_HALVES)))


def _ncrs(item: Field) -> Field:
    # yaz keeps &#xNNNN; and puts a preceding MARC-8 accent on its '&'.
    return _map(item, lambda text: _nfc(_YAZ_NCR.sub(
        lambda m: chr(int(m.group(2), 16)) + m.group(1), text)))


def _map(item: Field, change) -> Field:
    tag, indicators, body = item
    if isinstance(body, str):
        return (tag, indicators, change(body))
    return (tag, indicators, tuple((code, change(text)) for code, text in body))


_STRUCTURE = ("directory", "base address", "record terminator", "fields lost")


def _warned_tags(problems: tuple[str, ...]) -> set[str]:
    return {p[6:9] for p in problems if p.startswith("field ")}


def compare(mine: list[Field], ref: list[Field], problems: tuple[str, ...]) -> tuple[str, list]:
    """``identical``, ``equivalent``, ``warned``, or ``differing`` with the fields."""
    if mine == ref:
        return "identical", []
    structural = any(word in p for p in problems for word in _STRUCTURE)
    if len(mine) != len(ref):
        return ("warned", []) if structural else ("differing", [(None, mine, ref)])
    warned = _warned_tags(problems)
    kind = "equivalent"
    left = []
    for a, b in zip(mine, ref, strict=True):
        if a == b or _ligatures(a) == _ligatures(_ncrs(b)):
            continue
        if structural or a[0] in warned:
            kind = "warned"
            continue
        left.append((a[0], a, b))
    return ("differing", left) if left else (kind, [])


def _texts(item: Field) -> list[str]:
    body = item[2]
    return [body] if isinstance(body, str) else [text for _code, text in body]


def _codes(item: Field) -> list[str]:
    body = item[2]
    return [] if isinstance(body, str) else [code for code, _text in body]


def _flaws(texts: list[str]) -> int:
    """U+FFFD, subfields emptied (yaz drops what does not convert) and accents that NFC
    could not put on their letter: what a wrong charset leaves."""
    return sum(text.count("\ufffd") + (text == "")
               + sum(1 for ch in text if unicodedata.combining(ch)) for text in texts)


def misreadings(reading: list[Field], mine: list[Field]) -> tuple[int, int]:
    """Over the fields where another reading differs from ours: its flaws plus the
    accented letters of ours it lost, against our own flaws."""
    theirs = own = 0
    for a, b in zip(mine, reading, strict=False):
        if a == b:
            continue
        ours_texts, their_texts = _texts(a), _texts(b)
        theirs += _flaws(their_texts)
        own += _flaws(ours_texts)
        # Subfield codes count too: a UTF-8 letter as a code is two MARC-8 characters.
        letters = Counter(ch for text in [*ours_texts, *_codes(a)] for ch in text
                          if not ch.isascii() and ch.isalpha())
        letters.subtract(ch for text in [*their_texts, *_codes(b)] for ch in text)
        theirs += sum(n for n in letters.values() if n > 0)
    return theirs, own


def _with_blank_leader9(path: Path, offsets: list[int], tmp: Path) -> Path:
    """A copy whose records at ``offsets`` say MARC-8, so yaz reads them as MARC-8."""
    data = bytearray(path.read_bytes())
    for offset in offsets:
        data[offset + 9] = 0x20
    copy = tmp / path.name
    copy.write_bytes(bytes(data))
    return copy


_YAZ_CHARSET = {enc.MARC8: "MARC-8", enc.UTF8: "UTF-8", enc.LATIN1: "ISO-8859-1",
                enc.GB18030: "GB18030"}


@dataclass
class Tally:
    counts: Counter = field(default_factory=Counter)
    skipped: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def check_file(path: Path, tmp: Path) -> Tally:
    name = str(path.relative_to(DATA))
    tally = Tally()
    declared_run = run_yaz(path, "MARC-8")
    entries = list(marc.read_file(path))
    to_marc8 = [e.offset for e in entries if e.ok and e.offset is not None
                and e.record.leader[9] == "a" and e.encoding == enc.MARC8]
    runs: dict[str, YazRun] = {}

    def reading(charset: str) -> YazRun:
        if charset not in runs:
            if charset == enc.MARC8:
                runs[charset] = run_yaz(_with_blank_leader9(path, to_marc8, tmp), "MARC-8")
            else:
                runs[charset] = run_yaz(path, _YAZ_CHARSET[charset])
        return runs[charset]

    seen = set()
    for entry in entries:
        where = f"{name} {entry.position}"
        if entry.offset is not None:
            seen.add(entry.offset)
        if not entry.ok:
            if entry.number is None and entry.offset not in declared_run.records:
                continue  # bytes between records that neither reader takes for one
            tally.counts["skipped"] += 1
            yaz_says = ("read it" if entry.offset in declared_run.records
                        else "; ".join(declared_run.notes) or "no record there")
            tally.skipped.append(f"{where}: ours: {'; '.join(entry.problems)} | yaz: {yaz_says}")
            continue
        tally.counts["records"] += 1
        declared_fields = declared_run.records.get(entry.offset)
        if declared_fields is None:
            tally.counts["skipped"] += 1
            tally.skipped.append(f"{where}: ours: read ({'; '.join(entry.problems[:2]) or 'clean'})"
                                 f" | yaz: {'; '.join(declared_run.notes) or 'no record there'}")
            continue
        mine = ours(entry.record)
        leader9 = entry.record.leader[9]
        # UNIMARC has no leader/09 charset: we take UTF-8 for its word, yaz reads MARC-8.
        declared = enc.UTF8 if leader9 == "a" or entry.flavour != "marc21" else enc.MARC8
        if entry.encoding == declared:
            ref = declared_fields if leader9 == "a" or declared == enc.MARC8 else (
                reading(enc.UTF8).records.get(entry.offset, []))
            kind, left = compare(mine, ref, entry.problems)
        else:
            kind, left = _other_charset(entry, mine, declared_fields, reading, where, tally)
        known = KNOWN.get((name, entry.number or 0))
        if kind == "differing" and known:
            kind = "known"
        tally.counts[kind] += 1
        for tag, a, b in left:
            if kind == "differing":
                tally.failures.append(f"{where} field {tag}: ours {a!r} yaz {b!r}")
    for offset in declared_run.records:
        if offset not in seen:
            tally.counts["yaz only"] += 1
            tally.skipped.append(f"{name} byte {offset}: yaz reads a record there, we do not")
    return tally


def _other_charset(entry, mine, declared_fields, reading, where, tally) -> tuple[str, list]:
    """We overruled leader/09: say so, agree with yaz in our charset, and yaz's declared
    reading must be visibly wrong."""
    tally.counts[f"as {entry.encoding}"] += 1
    wrecked = WRECKED.get((where.split(" record ")[0], entry.number or 0))
    if wrecked:
        if not any("which may be wrong" in p for p in entry.problems):
            tally.failures.append(f"{where}: read as {entry.encoding} without a warning")
        tally.skipped.append(f"{where}: known, {wrecked}")
        return "known", []
    if entry.encoding != enc.UTF8 and not any("leader/09" in p for p in entry.problems):
        tally.failures.append(f"{where}: decoded as {entry.encoding} against leader/09 "
                              "without a warning")
    ref = reading(entry.encoding).records.get(entry.offset)
    if ref is None:
        tally.failures.append(f"{where}: yaz has no {entry.encoding} reading")
        return "differing", []
    kind, left = compare(mine, ref, entry.problems)
    theirs, own = misreadings(declared_fields, mine)
    if theirs <= own:
        tally.failures.append(f"{where}: yaz's reading as leader/09 says shows no "
                              f"mis-decoding ({theirs} flaws, ours {own}) against ours "
                              f"as {entry.encoding}")
    return kind, left


_SUMMARY: list[str] = []


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(DATA)) for p in FILES])
def test_decoding_matches_yaz_marcdump(path: Path, tmp_path: Path) -> None:
    tally = check_file(path, tmp_path)
    c = tally.counts
    print(f"\n{path.relative_to(DATA)}: records {c['records']}, identical {c['identical']}, "
          f"equivalent {c['equivalent']}, warned {c['warned']}, known {c['known']}, "
          f"differing {c['differing']}, skipped {c['skipped'] + c['yaz only']}"
          + "".join(f", {k} {v}" for k, v in sorted(c.items()) if k.startswith("as ")))
    for line in tally.skipped:
        print(f"  skipped {line}")
    assert not tally.failures, "\n".join(tally.failures[:20])


def test_yaz_reads_leader9_a_as_utf8_whatever_it_is_told() -> None:
    """The declared run is per record only because yaz honours leader/09 'a' itself."""
    path = DATA / "thirdparty" / "rubymarc__marc8_accented_chars.marc"
    assert run_yaz(path, "MARC-8").records == run_yaz(path, "UTF-8").records


# --- the fixes this comparison found --------------------------------------------------------

def test_marc8_accent_before_a_numeric_reference_goes_on_its_character() -> None:
    # marc4j's greekmissingcharsetchange.mrc: ESC-less Greek written as references, the
    # accent (E2, acute) before the reference as before a letter.
    assert enc.marc8_to_text(b"\xe2&#x03B1;") == ("\u03ac", False)
    assert enc.marc8_to_text(b"\xe2&#x03B1") == ("&\u0301#x03B1", False)  # no ';': left


def test_marc8_evidence_counts_an_accent_before_a_reference_for_marc8() -> None:
    fit = evidence.fit_marc8(b"\x1fa&#x0397; &#x03B1;&#x03B3;&#x03BF;&#x03C1;\xe2&#x03B1;")
    assert fit.clean and fit.good > 0


def test_greek_record_with_references_is_read_as_marc8_not_latin1() -> None:
    path = DATA / "thirdparty" / "marc4j__greekmissingcharsetchange.mrc"
    second = next(e for e in marc.read_file(path) if e.number == 2)
    assert second.encoding == enc.MARC8 and not second.problems
    assert "Η αγορά στη Μεσόγειο" in second.record["880"]["a"]
    assert second.record["245"]["a"].startswith("Hē agora stē")
