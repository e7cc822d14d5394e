"""How well a record's bytes fit each candidate character set.

Leader/09 and UNIMARC's 100$a are often wrong, and every 8-bit charset decodes almost any
byte string, so "it decodes" proves nothing. What does: valid UTF-8 multibyte sequences;
MARC-8 combining marks standing *before* a letter they compose with; GB18030 pairs in the
GB2312 rows that Chinese text mostly uses; Latin-1 accented letters inside Latin words.
Each candidate counts the non-ASCII characters that read plausibly (``good``) and those
that do not (``bad``); the reader takes the best, and warns when even that one has bad
characters.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from pymarc import marc8_mapping

UTF8 = "utf-8"
MARC8 = "marc-8"
GB18030 = "gb18030"
LATIN1 = "iso8859-1"

_ANSEL = marc8_mapping.CODESETS[0x45]
_COMBINING = frozenset(code for code, (_char, combining) in _ANSEL.items() if combining)
_SPACING = frozenset(code for code, (_char, combining) in _ANSEL.items()
                     if not combining and code >= 0x80)

# Ligature and double-tilde halves (t͡s): they compose with nothing, and only MARC-8 has them.
_LIGATURE_HALVES = frozenset({0xEB, 0xEC, 0xFA, 0xFB})
_NCR_AT = re.compile(rb"&#x([0-9A-Fa-f]{2,6});")


@dataclass(frozen=True, slots=True)
class Fit:
    """A candidate charset's evidence over some bytes."""

    charset: str
    good: int
    bad: int

    @property
    def score(self) -> int:
        # A misfit weighs more than a fit: one impossible sequence is strong evidence.
        return self.good - 3 * self.bad

    @property
    def clean(self) -> bool:
        return self.bad == 0


def _is_letter(byte: int) -> bool:
    return 0x41 <= byte <= 0x5A or 0x61 <= byte <= 0x7A


def fit_utf8(data: bytes) -> Fit:
    text = data.decode(UTF8, errors="replace")
    bad = text.count("\ufffd")
    good = sum(1 for ch in text if ch >= "\x80") - bad
    return Fit(UTF8, good, bad)


def fit_marc8(data: bytes) -> Fit:
    """ANSEL (MARC-8's default G1) without escapes: a combining mark, or a run of them,
    precedes a letter; a spacing special character does not touch another high byte
    unless that one is a combining mark."""
    good = bad = 0
    pos, end = 0, len(data)
    while pos < end:
        byte = data[pos]
        if byte < 0x80:
            pos += 1
            continue
        if byte in _COMBINING:
            run = pos
            while run < end and data[run] in _COMBINING:
                run += 1
            base = data[run] if run < end else None
            marks = run - pos
            # LC's lossless MARC-8 writes a letter outside MARC-8 as &#xNNNN; and its
            # accent before it, as before any letter (marc4j's Greek test records).
            ncr = _NCR_AT.match(data, run) if base == 0x26 else None
            if ncr is not None:
                code = int(ncr.group(1), 16)
                base = code if code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF else None
            if base is not None and (_is_letter(base) or ncr is not None):
                composed = chr(base) + "".join(chr(_ANSEL[b][0]) for b in data[pos:run])
                if (len(unicodedata.normalize("NFC", composed)) < len(composed)
                        or data[pos] in _LIGATURE_HALVES):
                    # Specific evidence, where Latin-1's "an accent beside a letter" is
                    # generic: it weighs double.
                    good += 2 * marks
            elif base is not None and base in _SPACING:
                pass  # a mark on a special letter (Ǿ): possible, not evidence
            else:
                bad += marks
            pos = run
            continue
        if byte in _SPACING:
            nxt = data[pos + 1] if pos + 1 < end else 0
            if nxt >= 0x80 and nxt not in _COMBINING:
                bad += 1
            else:
                good += 1
        else:
            bad += 1  # undefined in ANSEL, or a C1 control
        pos += 1
    return Fit(MARC8, good, bad)


def fit_latin1(data: bytes) -> Fit:
    """Accented letters sit inside words of ASCII letters; runs of high bytes, C1 controls
    and symbols between letters are what other charsets look like through Latin-1."""
    good = bad = 0
    end = len(data)
    for pos, byte in enumerate(data):
        if byte < 0x80:
            continue
        if byte < 0xA0:
            bad += 1
            continue
        if byte < 0xC0 or byte in (0xD7, 0xF7):
            continue  # symbols (© ° « »): neither evidence for nor against
        prev = data[pos - 1] if pos else 0x20
        nxt = data[pos + 1] if pos + 1 < end else 0x20
        if prev >= 0x80 and nxt >= 0x80:
            bad += 1
        elif _is_letter(prev) or _is_letter(nxt):
            good += 1
    return Fit(LATIN1, good, bad)


def fit_gb18030(data: bytes) -> Fit:
    """Chinese text is mostly GB2312 (both bytes 0xA1 and above). A pair whose second byte
    is ASCII (GBK's extension) is believed only away from Latin letters: MARC-8 or Latin-1
    accents inside a word decode as such pairs."""
    try:
        text = data.decode(GB18030)
    except UnicodeDecodeError:
        text = data.decode(GB18030, errors="replace")
    good = bad = 0
    prev = " "
    raw = 0  # position in ``data`` of the character being looked at
    for ch in text:
        width = len(ch.encode(GB18030)) if ch != "\ufffd" else 1
        if ch == "\ufffd":
            bad += 2  # GB18030 decodes nearly every pair: a byte it cannot place counts
        elif ch >= "\x80":
            lead = data[raw] if raw < len(data) else 0
            trail = data[raw + 1] if width == 2 and raw + 1 < len(data) else 0xA1
            cjk = "\u3000" <= ch <= "\u9fff" or "\uff00" <= ch <= "\uffef"
            if trail < 0xA1 and prev.isascii() and prev.isalpha():
                bad += 1
            elif cjk and (lead < 0xD8 or width != 2):
                # GB2312's first level (lead bytes to 0xD7) holds the common characters;
                # the rare second level is what Cyrillic 8-bit text looks like.
                good += 1
        prev = ch
        raw += width
    return Fit(GB18030, good, bad)


_FITTERS = {UTF8: fit_utf8, MARC8: fit_marc8, GB18030: fit_gb18030, LATIN1: fit_latin1}


def fit(data: bytes, charset: str) -> Fit:
    return _FITTERS[charset](data)


def best_fit(data: bytes, candidates: tuple[str, ...]) -> tuple[Fit, ...]:
    """Every candidate's fit, best first; ties go to the earlier candidate."""
    fits = [fit(data, charset) for charset in candidates]
    order = sorted(range(len(fits)), key=lambda i: (-fits[i].score, i))
    return tuple(fits[i] for i in order)


def fits_charset(data: bytes, charset: str) -> bool:
    """Whether a charset with a fitter reads ``data`` with no implausible character."""
    fitter = _FITTERS.get(charset)
    return fitter is None or fitter(data).clean
