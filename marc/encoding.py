"""Character sets of MARC records: naming, detection and per-field decoding.

Chinese catalogues send UTF-8 or GB18030 (a superset of GBK and GB2312) and rarely say
which: UNIMARC's 100$a/26-29 is filled in carelessly, so ``auto`` trusts the bytes. MARC21
says so in leader/09, but records are often UTF-8 with a blank leader/09, so ``auto`` also
checks that claim against the bytes.

Decoding is per field: one undecodable byte costs that field's character (replaced by
U+FFFD, and reported), never the record.
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from dataclasses import dataclass

from pymarc import marc8_mapping

from broker.kernel.errors import UsageError
from marc import evidence
from marc.flavour import Flavour

AUTO = "auto"
UTF8 = "utf-8"
MARC8 = "marc-8"
GB18030 = "gb18030"
LATIN1 = evidence.LATIN1
ENCODINGS = (AUTO, UTF8, MARC8, GB18030)

_ALIASES = {
    "utf8": UTF8, "utf-8": UTF8, "marc8": MARC8, "marc-8": MARC8, "ansel": MARC8,
    "gb18030": GB18030, "gbk": GB18030, "gb2312": GB18030, "cp936": GB18030,
    "gb-18030": GB18030, "auto": AUTO,
}

REPLACEMENT = "\ufffd"


def canonical_encoding(name: str) -> str:
    """The canonical name of a record encoding; any other Python codec is accepted too."""
    key = name.strip().lower().replace("_", "-")
    if key in _ALIASES:
        return _ALIASES[key]
    try:
        return codecs.lookup(key).name
    except LookupError:
        raise UsageError(
            f"unknown encoding {name!r}: use one of {', '.join(ENCODINGS)} "
            "(or another Python codec name such as cp1251)"
        ) from None


def is_strict(data: bytes, encoding: str) -> bool:
    try:
        data.decode(encoding)
    except UnicodeDecodeError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class Choice:
    """A record's charset and what the bytes said about it."""

    charset: str
    clean: bool = True  # False: even the best candidate reads some bytes implausibly
    note: str | None = None  # a warning for the record, when the choice overrules its leader


def guess_encoding(data: bytes, flavour: Flavour, leader9: str) -> str:
    """A record's encoding from its raw bytes (``auto``); see ``choose_encoding``."""
    return choose_encoding(data, flavour, leader9).charset


def choose_encoding(data: bytes, flavour: Flavour, leader9: str) -> Choice:
    """Decide a record's encoding from its raw bytes, by evidence when they are not clear.

    Clear cases need no scoring: ASCII; valid UTF-8 with non-ASCII text (MARC-8's ANSEL
    and EACC bytes, GB18030 and Latin-1 text are almost never valid UTF-8, and records that
    lie about leader/09 are common); MARC21 with MARC-8 escapes and no claim to UTF-8.
    Otherwise every candidate is scored (``marc.evidence``) and the best wins, the record's
    own claim first on a tie.
    """
    declared = UTF8 if flavour != "marc21" or leader9 == "a" else MARC8
    if data.isascii():
        # MARC-8 is 7-bit in its escapes and its &#x...; references: taken at its word.
        return Choice(declared)
    if declared == MARC8 and b"\x1b" in data:
        return Choice(MARC8)
    if is_strict(data, UTF8):
        return Choice(UTF8)
    if flavour == "marc21":
        candidates = (declared, *(c for c in (UTF8, MARC8, GB18030, LATIN1) if c != declared))
    else:
        # UNIMARC is never MARC-8; Chinese catalogues send GB18030 when not UTF-8.
        candidates = (GB18030, UTF8, LATIN1)
    best = evidence.best_fit(data, candidates)[0]
    if not best.clean and best.good < 4 * best.bad:
        # Nothing reads these bytes well (a charset we have no candidate for, such as
        # cp1251): the record's own claim stands, and the misfit fields are named.
        return Choice(declared, clean=False)
    note = None
    if flavour == "marc21" and best.charset != declared:
        note = (f"leader/09 {leader9!r} says {declared}, but the bytes read as "
                f"{best.charset}: decoded as {best.charset}")
    elif flavour != "marc21" and best.charset == LATIN1:
        # UNIMARC says its charset in 100 $a, which Chinese and European systems alike
        # leave wrong; Latin-1 is the candidate of last resort, never a silent one.
        note = ("neither UTF-8 nor GB18030 reads this UNIMARC record; decoded as "
                f"{LATIN1}, which may be wrong")
    return Choice(best.charset, best.clean, note)


def fallbacks_for(encoding: str, declared: str) -> tuple[str, ...]:
    """The charsets tried, in order, for one field of a record decoded as ``encoding``.

    With ``auto`` a field that is not valid in the record's charset gets a second chance in
    the other Chinese charset; an explicit encoding is applied as given.
    """
    if declared != AUTO or encoding not in (UTF8, GB18030):
        return (encoding,)
    return (encoding, GB18030 if encoding == UTF8 else UTF8)


def decode(data: bytes, charsets: tuple[str, ...]) -> tuple[str, bool]:
    """Decode one field's bytes: the first charset that fits, else the first with U+FFFD.

    Returns the text and whether anything had to be replaced.
    """
    first, *second = charsets
    if first == MARC8:
        if data.isascii() and b"\x1b" not in data and b"&#x" not in data:
            return data.decode("ascii"), False
        return marc8_to_text(data)
    if data.isascii():
        return data.decode("ascii"), False
    try:
        return nfc(data.decode(first)), False
    except UnicodeDecodeError:
        pass
    for charset in second:
        try:
            text = data.decode(charset)
        except UnicodeDecodeError:
            continue
        # GB18030 decodes almost any byte string; believe it only for plausible Chinese.
        if charset != GB18030 or _plausible_chinese(data, text):
            return nfc(text), False
    return nfc(data.decode(first, errors="replace")), True


def nfc(text: str) -> str:
    """NFC, as MARC-8 text already is: the same record must compare equal from any source."""
    if unicodedata.is_normalized("NFC", text):
        return text
    return unicodedata.normalize("NFC", text)


def _plausible_chinese(data: bytes, text: str) -> bool:
    """Text whose every character is in GBK's repertoire, with at least one ideograph, and
    no GBK pair that is more likely a Latin accent inside a word."""
    try:
        text.encode("gbk")
    except UnicodeEncodeError:
        return False
    return any("\u4e00" <= ch <= "\u9fff" for ch in text) and evidence.fit_gb18030(data).clean


# --- MARC-8 -------------------------------------------------------------------------------
# pymarc's own translator silently turns characters missing from its tables into spaces and
# writes to stderr; ours marks them with U+FFFD and tells the caller, using pymarc's tables.

_BASIC_LATIN, _ANSEL, _EACC = 0x42, 0x45, 0x31
_G0_INTERMEDIATES = b"(,"
_G1_INTERMEDIATES = b")-"
# Single-byte "technique" sets selected by ESC + final byte (greek symbols, subscript,
# superscript), and ESC s back to ASCII.
_TECHNIQUE = {0x67: 0x67, 0x62: 0x62, 0x70: 0x70, 0x73: _BASIC_LATIN}


def _lookup(charset: int, code: int) -> tuple[int, int] | None:
    table = marc8_mapping.CODESETS.get(charset)
    if table is None:
        return None
    hit = table.get(code)
    if hit is None and charset != _EACC:
        # A G0 set designated as G1 (or the reverse) arrives with the high bit flipped.
        hit = table.get(code ^ 0x80)
    if hit is None and charset == _EACC:
        hit = table.get(code & 0x7F7F7F)
    if hit is None:
        odd = marc8_mapping.ODD_MAP.get(code)
        if odd is not None:
            return odd, 0
    return hit


def marc8_to_text(data: bytes) -> tuple[str, bool]:
    """Translate one subfield of MARC-8 to NFC text; True if a character was unknown."""
    g0, g1 = _BASIC_LATIN, _ANSEL
    out: list[str] = []
    combining: list[str] = []
    damaged = False
    pos, end = 0, len(data)
    while pos < end:
        byte = data[pos]
        if byte == 0x1B:
            nxt = data[pos + 1] if pos + 1 < end else None
            if nxt is None:
                damaged = True
                break
            if nxt == 0x24:  # ESC $: a multibyte set, to G0 unless ) or - follows
                if pos + 2 >= end:
                    damaged, pos = True, end
                    continue
                inter = data[pos + 2]
                if inter in _G1_INTERMEDIATES and pos + 3 < end:
                    g1, pos = data[pos + 3], pos + 4
                elif inter in _G0_INTERMEDIATES and pos + 3 < end:
                    g0, pos = data[pos + 3], pos + 4
                else:
                    g0, pos = inter, pos + 3
                continue
            if nxt in _G0_INTERMEDIATES or nxt in _G1_INTERMEDIATES:
                if pos + 2 >= end:
                    damaged, pos = True, end
                    continue
                if nxt in _G0_INTERMEDIATES:
                    g0 = data[pos + 2]
                else:
                    g1 = data[pos + 2]
                pos += 3
                continue
            if nxt in _TECHNIQUE:
                g0, pos = _TECHNIQUE[nxt], pos + 2
                continue
            # An escape we do not know: mark where it was and read on from the next byte.
            damaged, pos = True, pos + 1
            out.append(REPLACEMENT)
            continue
        if byte < 0x21 or byte == 0x7F or (0x80 <= byte < 0xA0 and g1 != _ANSEL):
            # Space and controls are always single bytes; C1 controls (NSB/NSE) are kept,
            # C0 controls are not text: marked as damage.
            if byte == 0x20 or byte >= 0x80:
                out.append(chr(byte))
            else:
                out.append(REPLACEMENT)
                damaged = True
            out.extend(combining)
            combining.clear()
            pos += 1
            continue
        if byte == 0x26 and combining and g0 != _EACC:
            # Accents before a &#xNNNN; reference belong to the character it stands for,
            # not to its '&' (which would also hide the reference from the pass below).
            ref = _NCR_BYTES.match(data, pos)
            if ref is not None:
                out.append(_reference(ref))
                out.extend(combining)
                combining.clear()
                pos = ref.end()
                continue
        if g0 == _EACC and byte < 0x80:
            if pos + 3 > end:
                damaged, pos = True, end
                continue
            code, charset, pos = int.from_bytes(data[pos:pos + 3], "big"), _EACC, pos + 3
        elif byte >= 0x80:
            code, charset, pos = byte, g1, pos + 1
        else:
            code, charset, pos = byte, g0, pos + 1
        hit = _lookup(charset, code)
        if hit is None:
            damaged = True
            out.append(REPLACEMENT)
            continue
        char, is_combining = chr(hit[0]), hit[1]
        if is_combining:
            combining.append(char)
        else:
            out.append(char)
            if combining:
                out.extend(combining)
                combining.clear()
    out.extend(combining)
    text = "".join(out)
    if "&#x" in text:
        # LC's lossless MARC-8 writes characters outside MARC-8 as &#xNNNN; references.
        text = _NCR.sub(_reference, text)
    return unicodedata.normalize("NFC", text), damaged


# The closing ';' is sometimes lost where an exporter cut the subfield.
_NCR = re.compile(r"&#x([0-9A-Fa-f]{2,6})(?:;|$)")
_NCR_BYTES = re.compile(rb"&#x([0-9A-Fa-f]{2,6});")


def _reference(match: re.Match) -> str:
    code = int(match.group(1), 16)
    if code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF:
        return chr(code)
    whole = match.group(0)
    return whole if isinstance(whole, str) else whole.decode("ascii")
