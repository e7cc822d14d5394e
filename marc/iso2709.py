"""ISO 2709 ("MARC exchange format") without trusting its numbers.

Real files break the rules in a few recurring ways, and each is repaired where the bytes
allow, with a warning on the record:

* Chinese ``.iso`` exports put CR/LF (or NUL padding) between records: ``marc.framing``
  splits records on the record terminator, not pymarc's reader, which stops at the first
  stray byte.
* Wrong base addresses: the directory ends at the first field terminator after the leader.
* Wrong field lengths or offsets (often counted in characters, not bytes): fields are
  recovered by their field terminators.
* A record terminator inside the data, garbage between records, a truncated last record.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from pymarc import Field, Indicators, Leader, Subfield
from pymarc import Record as MarcRecord

from broker.kernel.errors import MarcError
from marc import encoding as enc
from marc import evidence
from marc.flavour import AUTO, Flavour, FlavourChoice, detect_flavour
from marc.framing import FIELD_END, LEADER_LEN

logger = logging.getLogger(__name__)

# --- one record ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Parsed:
    record: MarcRecord
    flavour: Flavour
    encoding: str
    warnings: tuple[str, ...]


def parse_record(chunk: bytes, *, flavour: FlavourChoice = AUTO,
                 encoding: str = enc.AUTO) -> Parsed:
    """Parse one record's bytes into a pymarc record; raise MarcError if nothing is usable."""
    warnings: list[str] = []
    if len(chunk) < LEADER_LEN + 2:
        raise MarcError(f"only {len(chunk)} bytes: too short for a MARC record")
    leader = chunk[:LEADER_LEN].decode("ascii", errors="replace").replace("\ufffd", " ")
    dir_end = chunk.find(b"\x1e", LEADER_LEN)
    if dir_end < 0:
        raise MarcError("no field terminator after the leader: the directory never ends")
    base = dir_end + 1
    claimed_base = leader[12:17]
    if not claimed_base.isdigit() or int(claimed_base) != base:
        warnings.append(f"leader base address {claimed_base!r} is wrong; the data starts at {base}")

    entries = _directory_entries(chunk[LEADER_LEN:dir_end], leader, warnings)
    if not entries:
        raise MarcError("the directory lists no fields")
    body = chunk[base:]
    if body.endswith(b"\x1d"):
        body = body[:-1]
    else:
        warnings.append("no record terminator: the record may be truncated")
    detected = flavour if flavour != AUTO else detect_flavour(
        [tag for tag, _offset, _length in entries])
    choice = (enc.choose_encoding(body, detected, leader[9]) if encoding == enc.AUTO
              else enc.Choice(encoding))
    charset = choice.charset
    if choice.note:
        warnings.append(choice.note)
    charsets = enc.fallbacks_for(charset, encoding)

    record = MarcRecord()
    record.leader = Leader(leader)
    fields = record.fields
    # Controls inside the data are rare: look for them once in the record's bytes (MARC-8
    # text is still checked field by field, since its decoder can produce them).
    controls = charsets[0] == enc.MARC8 or _CONTROL_BYTES.search(body) is not None

    # Leader/10 is the indicator count; 0 (UNIMARC exports in CP866 have it) means the
    # data fields start with their first subfield. They get blank indicators here.
    no_indicators = leader[10] == "0"
    # A record whose bytes no charset fits well is read field by field, to name the fields.
    whole = charsets[0] != enc.MARC8 and choice.clean
    texts = _whole_record_text(entries, body, charset) if whole else None
    if texts is not None:
        # The usual case: one decode for the record, fields cut from the text, and odd
        # subfield codes looked for once in the whole record.
        check_codes = _ODD_CODE.search("\x1e".join(texts)) is not None
        for (tag, _offset, _length), text in zip(entries, texts, strict=True):
            if controls:
                text = _controls_marked(tag, text, warnings)
            if no_indicators and not _is_control(tag):
                text = "  " + text
            fields.append(_field_from_text(tag, text, warnings, check_codes))
        return Parsed(record, detected, charset, tuple(warnings))

    raw_fields = _field_bytes(entries, body, warnings)
    if not raw_fields:
        raise MarcError("no field could be located in the record's data")
    for tag, data in raw_fields:
        if no_indicators and not _is_control(tag):
            data = b"  " + data
        field, damaged = _make_field(tag, data, charsets, warnings, controls)
        if damaged:
            warnings.append(f"field {tag}: bytes not valid {charset} were replaced by \ufffd")
        elif not choice.clean and not evidence.fits_charset(data, charset):
            warnings.append(f"field {tag}: no character set fits its bytes well; "
                            f"read as {charset}")
        fields.append(field)
    return Parsed(record, detected, charset, tuple(warnings))


def _whole_record_text(
    entries: list[tuple[str, int | None, int | None]], body: bytes, charset: str
) -> list[str] | None:
    """Each field's text, when the directory describes the data exactly (fields back to
    back, each ending in the one terminator it has) and the whole record decodes cleanly;
    otherwise None, and the record is read field by field with repairs."""
    expected = 0
    for _tag, offset, length in entries:
        if (offset != expected or not length or offset + length > len(body)
                or body[offset + length - 1] != FIELD_END):
            return None
        expected += length
    if expected != len(body) or body.count(b"\x1e") != len(entries):
        return None
    try:
        text = body.decode(charset)
    except (UnicodeDecodeError, LookupError):
        return None
    texts = enc.nfc(text).split("\x1e")
    texts.pop()  # what follows the last terminator: nothing
    return texts


_ENTRY_4500 = re.compile(rb"(...)(\d{4})(\d{5})", re.S)


def _directory_entries(
    directory: bytes, leader: str, warnings: list[str]
) -> list[tuple[str, int | None, int | None]]:
    """(tag, offset, length) per entry; numbers None where the entry is not digits."""
    len_digits, start_digits = 4, 5
    if leader[20:22].isdigit() and leader[20:22] != "45":
        # A record that declares another entry map; honour it when the directory agrees.
        a, b = int(leader[20]), int(leader[21])
        if a and b and len(directory) % (3 + a + b) == 0:
            len_digits, start_digits = a, b
    size = 3 + len_digits + start_digits
    if len(directory) % size:
        warnings.append(f"directory has {len(directory) % size} stray bytes at its end")
    if size == 12 and directory.isascii():
        # The usual case, all in one go: a whole directory of well-formed 4500 entries.
        found = _ENTRY_4500.findall(directory)
        if len(found) * 12 == len(directory):
            return [(tag.decode("ascii"), int(offset), int(length))
                    for tag, length, offset in found]
    entries: list[tuple[str, int | None, int | None]] = []
    for i in range(0, len(directory) - size + 1, size):
        entry = directory[i:i + size]
        tag = entry[:3].decode("ascii", errors="replace")
        length_b, offset_b = entry[3:3 + len_digits], entry[3 + len_digits:size]
        length = int(length_b) if length_b.isdigit() else None
        offset = int(offset_b) if offset_b.isdigit() else None
        entries.append((tag, offset, length))
    return entries


def _field_bytes(
    entries: list[tuple[str, int | None, int | None]], body: bytes, warnings: list[str]
) -> list[tuple[str, bytes]]:
    """Each field's bytes (without its terminator), trusting the directory only if it fits."""
    out: list[tuple[str, bytes]] = []
    for tag, offset, length in entries:
        if offset is None or length is None or length < 1:
            break
        stop = offset + length
        if stop > len(body) or body[stop - 1] != FIELD_END:
            break
        out.append((tag, body[offset:stop - 1]))
    else:
        return out

    # The directory's numbers do not match the data; the terminators do.
    pieces = body.split(b"\x1e")
    if pieces and not pieces[-1]:
        pieces.pop()
    if len(pieces) == len(entries):
        order = sorted(range(len(entries)), key=lambda i: (entries[i][1] is None, entries[i][1]))
        if all(entries[i][1] is not None for i in order):
            warnings.append("directory lengths or offsets are wrong; fields recovered by their "
                            "terminators")
            result: list[tuple[str, bytes]] = [("", b"")] * len(entries)
            for piece, i in zip(pieces, order, strict=True):
                result[i] = (entries[i][0], piece)
            return result
    # Counts disagree: take each field from its offset to the next terminator.
    out = []
    lost = []
    for tag, offset, _length in entries:
        if offset is None or offset >= len(body):
            lost.append(tag)
            continue
        stop = body.find(b"\x1e", offset)
        out.append((tag, body[offset:stop if stop >= 0 else len(body)]))
    warnings.append("directory does not match the data; fields read from their offsets")
    if lost:
        warnings.append(f"fields lost (offset outside the record): {', '.join(lost)}")
    return out


# C0 controls that may not appear inside field text (0x1F, the delimiter, is split on).
_CONTROLS = re.compile("[\x00-\x1e]")
_CONTROL_BYTES = re.compile(rb"[\x00-\x1d]")


def _make_field(
    tag: str, data: bytes, charsets: tuple[str, ...], warnings: list[str],
    controls: bool = True,
) -> tuple[Field, bool]:
    if tag < "010" and tag.isdigit():
        text, damaged = enc.decode(data, charsets)
        if controls:
            text = _controls_marked(tag, text, warnings)
        return _control_field(tag, text), damaged

    if charsets[0] == enc.MARC8:
        # MARC-8 escapes are scoped to a subfield and the decoder drops controls, so the
        # delimiters are found in the bytes first.
        damaged = False
        texts = []
        for part in _marc8_parts(tag, data, warnings):
            text, bad = enc.decode(part, charsets)
            texts.append(_controls_marked(tag, text, warnings))
            damaged = damaged or bad
    else:
        # 0x1F never occurs inside a UTF-8 or GB18030 character: decode once, then split.
        if data.isascii():
            whole, damaged = data.decode("ascii"), False
        else:
            whole, damaged = enc.decode(data, charsets)
        texts = (_controls_marked(tag, whole, warnings) if controls else whole).split("\x1f")

    return _data_field_from(tag, texts, warnings), damaged


def _is_control(tag: str) -> bool:
    return tag < "010" and tag.isdigit()


def _field_from_text(tag: str, text: str, warnings: list[str], check_codes: bool) -> Field:
    if tag < "010" and tag.isdigit():
        return _control_field(tag, text)
    texts = text.split("\x1f")
    head = texts[0]
    if len(head) == 2 and not check_codes:
        # The usual case, with no per-subfield checks left to make.
        del texts[0]
        return _data_field(tag, _new_tuple(Indicators, head),
                           [_new_tuple(Subfield, (t[0], t[1:])) for t in texts if t])
    return _data_field_from(tag, texts, warnings)


# A subfield delimiter followed by something other than an ASCII letter or digit.
_ODD_CODE = re.compile("\x1f(?:[^0-9A-Za-z]|$)")


def _data_field_from(tag: str, texts: list[str], warnings: list[str]) -> Field:
    """A data field from its text cut at the subfield delimiters (indicators first)."""
    head = texts[0]
    if len(head) == 2:
        indicators = _new_tuple(Indicators, head)
    else:
        indicators = Indicators(*(head + "  ")[:2])
        if len(head) > 2:
            # Text before the first delimiter (a field with no subfield code at all).
            texts.insert(1, "a" + head[2:])
            warnings.append(f"field {tag}: data before the first subfield code kept as $a")
        else:
            warnings.append(f"field {tag}: missing indicators, taken as blank")
    del texts[0]
    subfields = [_new_tuple(Subfield, (text[0], text[1:])) for text in texts if text]
    codes = "".join([text[:1] for text in texts])
    if codes and not (codes.isascii() and codes.isalnum()):
        for subfield in subfields:
            if not (subfield.code.isascii() and subfield.code.isalnum()):
                warnings.append(f"field {tag}: subfield code {subfield.code!r} is not a letter "
                                "or digit")
    return _data_field(tag, indicators, subfields)


# Subfield and Indicators are named tuples: tuple.__new__ skips their keyword handling.
_new_tuple = tuple.__new__
_new_field = Field.__new__


def _control_field(tag: str, data: str) -> Field:
    """Field(tag=..., data=...) without its argument checks."""
    field = _new_field(Field)
    field.tag = tag
    field.subfields = []
    field._indicators = None
    field.data = data
    field.control_field = True
    return field


def _data_field(tag: str, indicators: Indicators, subfields: list[Subfield]) -> Field:
    """Field(tag=..., indicators=..., subfields=...) without its argument checks, which our
    own parsing already guarantees."""
    field = _new_field(Field)
    field.tag = tag
    field.subfields = subfields
    field._indicators = indicators
    field.data = None
    field.control_field = False
    return field


def _controls_marked(tag: str, text: str, warnings: list[str]) -> str:
    """Control characters inside text (a stray record terminator...) become U+FFFD."""
    if not _CONTROLS.search(text):
        return text
    warnings.append(f"field {tag}: control characters inside the data replaced by \ufffd")
    return _CONTROLS.sub("\ufffd", text)


def _marc8_parts(tag: str, data: bytes, warnings: list[str]) -> list[bytes]:
    """A MARC-8 field's indicator part and subfields.

    Two exporter faults are known: Cyrillic capital E (0x7C) written as 0x1F right after
    the escape to Cyrillic, and a 0x1F that no subfield code follows (an escape, a space,
    a control byte) standing for a character that could not be written. Neither is a
    delimiter.
    """
    if b"\x1b(N\x1f" in data:
        data = data.replace(b"\x1b(N\x1f", b"\x1b(N\x7c")
    parts = data.split(b"\x1f")
    merged = [parts[0]]
    for part in parts[1:]:
        if part and (part[0] < 0x21 or part[0] > 0x7E):
            merged[-1] += b"\x1a" + part  # a substitute character: decoded as U+FFFD
            warnings.append(f"field {tag}: a subfield delimiter inside the data was read "
                            "as an unknown character")
        else:
            merged.append(part)
    return merged
