"""Small text rules shared by both MARC flavours: punctuation, identifiers, years."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable

from pymarc import Field
from pymarc import Record as MarcRecord

# Non-sorting markers: C1 controls in UNIMARC (U+0088/U+0089) and in MARC21 UTF-8
# (U+0098/U+009C), around an initial article that sorting and matching skip.
NSB = ("\x88", "\x98")
NSE = ("\x89", "\x9c")
_MARKERS = dict.fromkeys(map(ord, "".join(NSB + NSE)))
_NONSORT_SPAN = re.compile("[\x88\x98].*?[\x89\x9c]", re.S)

# ISBD puts " /", " :", " ;", " =", "," and "." between elements; they are not data.
_TRAILING = re.compile(r"[\s/:;=,]+$")
# A final period is dropped unless it ends an abbreviation or an initial ("J.", "ed.").
_ABBREVIATIONS = frozenset({"ed", "eds", "etc", "inc", "co", "ltd", "jr", "sr", "cm", "mm",
                            "ca", "vol", "no", "p", "pp", "v", "dr", "st", "rev", "corp"})
_YEAR = re.compile(r"(?<!\d)(1[0-9]{3}|20[0-9]{2})(?!\d)")


class Fields:
    """A record's fields by tag, built once: normalization asks for many tags."""

    __slots__ = ("_by_tag", "leader")

    def __init__(self, record: MarcRecord) -> None:
        by_tag: dict[str, list[Field]] = defaultdict(list)
        for field in record.fields:
            by_tag[field.tag].append(field)
        self._by_tag = by_tag
        self.leader = str(record.leader)

    def get(self, *tags: str) -> list[Field]:
        if len(tags) == 1:
            return self._by_tag.get(tags[0], [])
        return [f for tag in tags for f in self._by_tag.get(tag, ())]

    def first(self, tag: str) -> Field | None:
        found = self._by_tag.get(tag)
        return found[0] if found else None

    def replace(self, tag: str, fields: list[Field]) -> None:
        self._by_tag[tag] = fields

    def __contains__(self, tag: str) -> bool:
        return bool(self._by_tag.get(tag))


def sub(field: Field | None, code: str) -> str | None:
    """The first non-empty value of subfield ``code``, or None."""
    if field is None:
        return None
    for sf in field.subfields:
        if sf.code == code:
            value = visible(sf.value)
            if value.strip():
                return value
    return None


def subs(field: Field, codes: str) -> list[str]:
    """All non-empty values of the given subfield codes, in field order."""
    values = [visible(sf.value) for sf in field.subfields if sf.code in codes]
    return [value for value in values if value.strip()]


# Format characters (Unicode category Cf: bidi embeddings and marks, BOM, soft hyphen)
# steer display, and exporters scatter them (Arabic records carry runs of U+202A); left in,
# they hide ISBD punctuation from trimming and make a subfield of nothing look like data.
# ZWNJ and ZWJ between two letters shape Persian, Arabic and Indic words, and stay.
_FORMAT = re.compile(r"[\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064"
                     r"\u2066-\u206f\ufeff\ufff9-\ufffb]")
_JOINER = re.compile(r"(?<![^\W\d_])[\u200c\u200d]|[\u200c\u200d](?![^\W\d_])")


def visible(text: str) -> str:
    """A value without format characters (the raw record keeps them)."""
    if text.isascii():
        return text
    if _FORMAT.search(text) is None:
        return text
    text = _JOINER.sub("", text)  # joiners not between letters go with the rest
    return _FORMAT.sub(lambda m: m.group(0) if m.group(0) in "\u200c\u200d" else "", text)


def strip_markers(text: str) -> str:
    if text.isascii():
        return text  # the markers are C1 controls, never ASCII
    if "\x88" in text or "\x89" in text or "\x98" in text or "\x9c" in text:
        return text.translate(_MARKERS)
    return text


_PUNCT = " /:;=,\u060c\u061b"  # with the Arabic comma and semicolon


def clean(text: str | None) -> str | None:
    """Display text: markers removed, ISBD punctuation trimmed, spaces folded; '' is None."""
    if text is None:
        return None
    text = " ".join(visible(strip_markers(text)).split()).rstrip(_PUNCT)
    if text.endswith(".") and not _keeps_period(text):
        text = text[:-1].rstrip(_PUNCT)
    return text or None


_LAST_WORD = re.compile(r"[^\s,;:(\[]*$")
_INITIALISM = re.compile(r"(?:[^\W\d_]\.)+[^\W\d_]")


def _keeps_period(text: str) -> bool:
    """An ellipsis, an initial (one capital letter: 'J.'), or a known abbreviation."""
    if text.endswith("..."):
        return True
    # The pattern matches the empty string too: there is always a (possibly empty) last word.
    last = _LAST_WORD.search(text, 0, len(text) - 1)
    word = last.group() if last else ""
    if len(word) == 1 and word.isupper():
        return True
    if word.lower() in _ABBREVIATIONS:
        return True
    return "." in word and _INITIALISM.fullmatch(word) is not None  # D.C., U.S.A.


def clean_bracketed(text: str | None) -> str | None:
    """Like ``clean``, and also drops brackets cataloguers put around supplied data."""
    text = clean(text)
    if text and text.startswith("[") and text.endswith("]") and text.count("[") == 1:
        text = text[1:-1].strip() or None
    return text


def sort_form(text: str | None, skip: int = 0) -> str | None:
    """The filing form of a title: non-sorting span (or ``skip`` characters) removed."""
    if not text:
        return None
    if any(m in text for m in NSB):
        text = _NONSORT_SPAN.sub("", text)
    elif 0 < skip < len(text):
        text = text[skip:]
    text = clean(strip_markers(text))
    return text.casefold() if text else None


def year_from(text: str | None) -> int | None:
    """The first plausible four-digit year in a date statement ("c2008.", "2008.5")."""
    if not text:
        return None
    match = _YEAR.search(text)
    return int(match.group(1)) if match else None


def fixed_year(text: str) -> int | None:
    """A year from a fixed-length date position: four digits or nothing."""
    if len(text) == 4 and text.isdigit():
        year = int(text)
        if 500 <= year <= 2100:
            return year
    return None


# --- identifiers --------------------------------------------------------------------------

_ISBN_CANDIDATE = re.compile(r"[0-9][0-9\-\s]{8,16}[0-9Xx]")


def isbn13(raw: str) -> str | None:
    """ISBN-13 digits for a valid ISBN-10 or ISBN-13 anywhere in ``raw``, else None."""
    match = _ISBN_CANDIDATE.search(raw)
    if not match:
        return None
    digits = re.sub(r"[\s-]", "", match.group()).upper()
    if len(digits) == 10:
        if not digits[:9].isdigit():
            return None
        total = sum((10 - i) * int(c) for i, c in enumerate(digits[:9]))
        check = (11 - total % 11) % 11
        if digits[9] != ("X" if check == 10 else str(check)):
            return None
        digits = "978" + digits[:9]
        return digits + _check13(digits)
    if len(digits) == 13 and digits.isdigit() and digits[:3] in ("978", "979"):
        return digits if _check13(digits[:12]) == digits[12] else None
    return None


def _check13(first12: str) -> str:
    total = sum(int(c) * (3 if i % 2 else 1) for i, c in enumerate(first12))
    return str((10 - total % 10) % 10)


_ISSN = re.compile(r"(\d{4})\s*-?\s*(\d{3}[\dXx])")


def issn(raw: str) -> str | None:
    """A valid ISSN as NNNN-NNNC, else None."""
    match = _ISSN.search(raw)
    if not match:
        return None
    digits = (match.group(1) + match.group(2)).upper()
    total = sum((8 - i) * int(c) for i, c in enumerate(digits[:7]))
    check = (11 - total % 11) % 11
    if digits[7] != ("X" if check == 10 else str(check)):
        return None
    return f"{digits[:4]}-{digits[4:]}"


def collect_isbns(values: list[tuple[str, str]], warnings: list[str]) -> tuple[str, ...]:
    """Valid ISBN-13s from (where, raw) pairs; each invalid one is reported, not kept."""
    return _collect(values, isbn13, "ISBN", warnings)


def collect_issns(values: list[tuple[str, str]], warnings: list[str]) -> tuple[str, ...]:
    """Valid ISSNs (NNNN-NNNC) from (where, raw) pairs; invalid ones reported, not kept."""
    return _collect(values, issn, "ISSN", warnings)


def _collect(values: list[tuple[str, str]], check: Callable[[str], str | None], kind: str,
             warnings: list[str]) -> tuple[str, ...]:
    out: list[str] = []
    for where, raw in values:
        value = check(raw)
        if value is None:
            warnings.append(f"invalid {kind} {raw.strip()!r} in {where} left out")
        elif value not in out:
            out.append(value)
    return tuple(out)


def unique(values: Iterable[str | None]) -> tuple[str, ...]:
    """Non-empty values, first occurrence kept, order kept.

    Values with undecodable bytes (U+FFFD) are all kept: two different names can look
    alike once damaged, and merging them would lose one silently.
    """
    out: list[str] = []
    seen: set[str] = set()
    for value in values:
        if not value:
            continue
        if "\ufffd" in value:
            out.append(value)
        elif value not in seen:
            seen.add(value)
            out.append(value)
    return tuple(out)
