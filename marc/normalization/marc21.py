"""MARC21 bibliographic records to the normalized record."""

from __future__ import annotations

import re
from collections import defaultdict

from pymarc import Field

from marc.model import Classification, MaterialType, Romanized
from marc.normalization import holdings as hold
from marc.normalization.text import (
    Fields,
    clean,
    clean_bracketed,
    collect_isbns,
    collect_issns,
    fixed_year,
    sort_form,
    sub,
    subs,
    unique,
    year_from,
)

# leader/06 type of record -> material type; leader/07 refines language material.
_TYPE: dict[str, MaterialType] = {
    "a": "book", "t": "manuscript", "c": "music_score", "d": "music_score",
    "e": "map", "f": "map", "g": "video", "i": "audio", "j": "audio", "k": "image",
    "m": "electronic", "o": "mixed", "p": "mixed", "r": "object",
}
_SERIAL_LEVELS = "si"  # serial, integrating resource (b, a serial's part, is an article)
_DATE_TYPES = "bcdeikmnpqrstu|"

# Fields whose original script an 880 may carry, for title, authors and publisher.
_LINKABLE = ("245", "100", "110", "111", "700", "710", "711", "250", "260", "264")
_LINK = re.compile(r"(\d{3})-(\d{2})")


def material_type(fields: Fields) -> MaterialType:
    leader = fields.leader
    kind = _TYPE.get(leader[6:7], "other")
    level = leader[7:8]
    if kind == "book":
        # Text that is online or otherwise electronic: 008/23 form of item o, q or s, or
        # the old general material designation in 245$h.
        f008 = fields.first("008")
        form = (f008.data or "")[23:24] if f008 is not None else ""
        gmd = (sub(fields.first("245"), "h") or "").lower()
        if form in ("o", "q", "s") or "electronic" in gmd or "电子资源" in gmd:
            return "electronic"
        if level in _SERIAL_LEVELS:
            return "serial"
        if level in "ab":
            return "article"
    return kind


def _swap_880(fields: Fields) -> bool:
    """Put each 880's original script in place of the field it is linked to.

    An unlinked 880 (occurrence 00) stands in only where the record lacks that field.
    Returns whether anything was swapped.
    """
    linked: dict[tuple[str, str], Field] = {}
    unlinked: dict[str, list[Field]] = defaultdict(list)
    for alt in fields.get("880"):
        match = _LINK.match((sub(alt, "6") or "").strip())
        if not match:
            continue
        tag, occurrence = match.groups()
        if occurrence == "00":
            unlinked[tag].append(alt)
        else:
            linked[(tag, occurrence)] = alt
    swapped = False
    for tag in _LINKABLE:
        current = fields.get(tag)
        if not current:
            if unlinked.get(tag):
                fields.replace(tag, unlinked[tag])
                swapped = True
            continue
        new = []
        for field in current:
            match = _LINK.match((sub(field, "6") or "").strip())
            linked_alt = (linked.get((tag, match.group(2)))
                          if match and match.group(1) == "880" else None)
            new.append(linked_alt or field)
            swapped = swapped or linked_alt is not None
        fields.replace(tag, new)
    return swapped


def _title(fields: Fields) -> tuple[str | None, str | None, str | None, str | None]:
    """(title, subtitle, responsibility, sort title) from 245."""
    f = fields.first("245")
    if f is None:
        return None, None, None, None
    main = sub(f, "a") or ""
    parts = [clean(p) for p in subs(f, "np")]
    title = clean(main)
    if parts:
        title = ". ".join(p for p in [title, ", ".join(p for p in parts if p)] if p)
    skip = int(f.indicator2) if (f.indicator2 or " ").isdigit() else 0
    return title, clean(sub(f, "b")), clean(sub(f, "c")), sort_form(main, skip)


def _authors(fields: Fields) -> tuple[str, ...]:
    names = []
    for f in fields.get("100", "110", "111", "700", "710", "711", "720"):
        # An 880 standing in for its field says in $6 which field that is.
        tag = (sub(f, "6") or "")[:3] if f.tag == "880" else f.tag
        if tag in ("110", "710"):
            name = ". ".join(clean(v) or "" for v in subs(f, "ab"))
        else:
            name = " ".join(subs(f, "ab"))
        names.append(clean(name))
    return unique(names)


def _publication(fields: Fields) -> Field | None:
    for f in fields.get("264"):
        if f.indicator2 == "1":
            return f
    return fields.first("260") or fields.first("264")


_SUBJECT_TAGS = ("600", "610", "611", "630", "648", "650", "651")


def _subjects(fields: Fields) -> tuple[str, ...]:
    found: list[str | None] = []
    # Headings in their original script (880s linked to 6XX) come beside the romanized
    # ones, so a reader can search a Chinese subject either way.
    vernacular = [f for f in fields.get("880") if (sub(f, "6") or "")[:3] in _SUBJECT_TAGS]
    for f in [*fields.get(*_SUBJECT_TAGS), *vernacular]:
        head = clean(" ".join(subs(f, "abcdqtnp")))
        found.append(" -- ".join(x for x in [head, *map(clean, subs(f, "vxyz"))] if x))
    for f in fields.get("653"):
        found.extend(clean(v) for v in subs(f, "a"))
    return unique(found)


def _classification(fields: Fields) -> tuple[Classification, ...]:
    out: list[Classification] = []
    for f in fields.get("050"):
        value = " ".join(v.strip() for v in subs(f, "ab"))
        if value:
            out.append(Classification("lcc", value))
    for f in fields.get("082"):
        for value in subs(f, "a"):
            out.append(Classification("ddc", value.replace("/", "").replace("'", "").strip()))
    for f in fields.get("080"):
        out.extend(Classification("udc", v.strip()) for v in subs(f, "a"))
    for f in fields.get("084"):
        source = (sub(f, "2") or "local").strip().lower()
        scheme = "clc" if source.startswith("clc") else source
        out.extend(Classification(scheme, v.strip()) for v in subs(f, "a"))
    return tuple(dict.fromkeys(out))


def _language(fields: Fields) -> str | None:
    f008 = fields.first("008")
    code = (f008.data or "")[35:38] if f008 is not None else ""
    if len(code) == 3 and code.isalpha() and code.islower():
        return code
    first = sub(fields.first("041"), "a")
    return first.strip()[:3].lower() if first else None


def _year(fields: Fields, pub: Field | None) -> int | None:
    f008 = fields.first("008")
    data = (f008.data or "") if f008 is not None else ""
    if len(data) >= 11 and data[6] in _DATE_TYPES:
        year = fixed_year(data[7:11])
        if year is not None:
            return year
    return year_from(sub(pub, "c"))


def normalize_marc21(fields: Fields, library: str | None, warnings: list[str]) -> dict:
    """The values of a normalized record, as keyword arguments for ``Record``."""
    heading, authors, pub = _title(fields), _authors(fields), _publication(fields)
    romanized = None
    if "880" in fields and _swap_880(fields):
        romanized = Romanized(heading[0], authors, clean_bracketed(sub(pub, "b")))
        heading, authors, pub = _title(fields), _authors(fields), _publication(fields)
    title, subtitle, responsibility, sort_title = heading
    if title is None:
        warnings.append("no title (245) in the record")
    held = hold.holdings(fields, library, "marc21")
    edition = fields.first("250")
    return {
        "title": title, "subtitle": subtitle, "responsibility": responsibility,
        "sort_title": sort_title, "authors": authors,
        "publisher": clean_bracketed(sub(pub, "b")), "place": clean_bracketed(sub(pub, "a")),
        "year": _year(fields, pub),
        "edition": clean(" ".join(subs(edition, "ab"))) if edition is not None else None,
        "extent": clean(sub(fields.first("300"), "a")),
        "language": _language(fields),
        "material_type": material_type(fields),
        "isbns": collect_isbns([("020$a", v) for f in fields.get("020") for v in subs(f, "a")],
                               warnings),
        "issns": collect_issns([("022$a", v) for f in fields.get("022") for v in subs(f, "a")],
                               warnings),
        "subjects": _subjects(fields),
        "classification": _classification(fields),
        "holdings": held,
        "call_numbers": hold.call_numbers(fields, held, ("852", "090", "099")),
        "romanized": romanized,
    }
