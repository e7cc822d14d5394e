"""UNIMARC (and CNMARC, its Chinese profile) bibliographic records to the normalized record.

CNMARC repeats each Chinese subfield as pinyin under the uppercase code ($A beside $a);
display values read lowercase codes only, and the pinyin goes to ``romanized``.
"""

from __future__ import annotations

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

# leader/06 type of record -> material type; leader/07 'a' analytic, 's' serial.
_TYPE: dict[str, MaterialType] = {
    "a": "book", "b": "manuscript", "c": "music_score", "d": "music_score",
    "e": "map", "f": "map", "g": "video", "i": "audio", "j": "audio", "k": "image",
    "l": "electronic", "m": "mixed", "r": "object",
}
_PERSONAL = ("700", "701", "702")
_AUTHOR_ORDER = ("700", "710", "701", "711", "702", "712")
_SUBJECT_TAGS = ("600", "601", "602", "604", "605", "606", "607", "608")
# Classification tags and their schemes; 692 is the Chinese Academy of Sciences scheme (科图法).
_SCHEMES = (("690", "clc"), ("692", "cas"), ("675", "udc"), ("676", "ddc"), ("680", "lcc"))


def material_type(fields: Fields) -> MaterialType:
    kind = _TYPE.get(fields.leader[6:7], "other")
    if kind == "book":
        # Chinese catalogues often leave e-books as printed text (leader/06 'a') and say
        # "electronic" only in 135 (coded data for electronic resources) or 200$b.
        if "135" in fields or _says_electronic(sub(fields.first("200"), "b")):
            return "electronic"
        level = fields.leader[7:8]
        if level == "s":
            return "serial"
        if level == "a":
            return "article"
    return kind


def _says_electronic(designation: str | None) -> bool:
    text = (designation or "").lower()
    return "电子资源" in text or "電子資源" in text or "electronic" in text


def _person(f: Field, codes: str = "ab") -> str | None:
    """Entry element $a, then the rest of the name $b: 'Smith, John'; Chinese names are $a."""
    entry = clean(sub(f, codes[0]))
    rest = clean(sub(f, codes[1]))
    return f"{entry}, {rest}" if entry and rest else entry


def _corporate(f: Field, codes: str = "ab") -> str | None:
    return clean(". ".join(clean(v) or "" for v in subs(f, codes))) or None


def _authors(fields: Fields, upper: bool = False) -> tuple[str, ...]:
    """Main entries (700/710) first, then added (701/711), then secondary (702/712)."""
    codes = "AB" if upper else "ab"
    return unique(
        _person(f, codes) if f.tag in _PERSONAL else _corporate(f, codes)
        for f in fields.get(*_AUTHOR_ORDER)
    )


def _title(f: Field | None) -> tuple[str | None, str | None, str | None, str | None]:
    """(title, subtitle, responsibility, sort title) from 200."""
    if f is None:
        return None, None, None, None
    titles = [clean(v) for v in subs(f, "a")]
    title = " ; ".join(t for t in titles if t) or None
    parts = [clean(v) for v in subs(f, "hi")]
    if parts and title:
        title = ". ".join([title, ", ".join(p for p in parts if p)])
    subtitle = " : ".join(t for t in map(clean, subs(f, "e")) if t) or None
    responsibility = " ; ".join(t for t in map(clean, subs(f, "fg")) if t) or None
    return title, subtitle, responsibility, sort_form(sub(f, "a"))


def _subjects(fields: Fields) -> tuple[str, ...]:
    found: list[str | None] = []
    for f in fields.get(*_SUBJECT_TAGS):
        head = _person(f) if f.tag == "600" else clean(" ".join(subs(f, "ab")))
        found.append(" -- ".join(x for x in [head, *map(clean, subs(f, "jxyz"))] if x))
    for f in fields.get("610"):
        found.extend(clean(v) for v in subs(f, "a"))
    return unique(found)


def _classification(fields: Fields) -> tuple[Classification, ...]:
    out: list[Classification] = []
    for tag, scheme in _SCHEMES:
        for f in fields.get(tag):
            value = " ".join(v.strip() for v in subs(f, "ab" if tag == "680" else "a"))
            if value:
                out.append(Classification(scheme, value))
    for f in fields.get("686"):
        scheme = (sub(f, "2") or "local").strip().lower()
        out.extend(Classification(scheme, v.strip()) for v in subs(f, "a"))
    return tuple(dict.fromkeys(out))


def _year(fields: Fields, pub: Field | None) -> int | None:
    general = sub(fields.first("100"), "a") or ""
    # 100$a/08 is the type of publication date, /09-12 the first date.
    year = fixed_year(general[9:13]) if len(general) >= 13 else None
    return year if year is not None else year_from(sub(pub, "d"))


def _romanized(fields: Fields, t200: Field | None) -> Romanized | None:
    """CNMARC's pinyin ($A, $C, ...) as a romanized view, when the record has it."""
    title = clean(sub(t200, "A"))
    authors = _authors(fields, upper=True)
    publisher = clean(sub(fields.first("210"), "C"))
    if not (title or authors or publisher):
        return None
    return Romanized(title, authors, publisher)


def normalize_unimarc(fields: Fields, library: str | None, warnings: list[str]) -> dict:
    """The values of a normalized record, as keyword arguments for ``Record``."""
    t200 = fields.first("200")
    title, subtitle, responsibility, sort_title = _title(t200)
    if title is None:
        warnings.append("no title (200$a) in the record")
    pub = fields.first("210") or fields.first("214")
    held = hold.holdings(fields, library, "unimarc")
    return {
        "title": title, "subtitle": subtitle, "responsibility": responsibility,
        "sort_title": sort_title, "authors": _authors(fields),
        "publisher": clean_bracketed(sub(pub, "c")), "place": clean_bracketed(sub(pub, "a")),
        "year": _year(fields, pub),
        "edition": clean(sub(fields.first("205"), "a")),
        "extent": clean(sub(fields.first("215"), "a")),
        "language": (sub(fields.first("101"), "a") or "").strip()[:3].lower() or None,
        "material_type": material_type(fields),
        "isbns": collect_isbns([("010$a", v) for f in fields.get("010") for v in subs(f, "a")],
                               warnings),
        "issns": collect_issns([("011$a", v) for f in fields.get("011") for v in subs(f, "a")],
                               warnings),
        "subjects": _subjects(fields),
        "classification": _classification(fields),
        "holdings": held,
        "call_numbers": hold.call_numbers(fields, held, ("905",)),
        "romanized": _romanized(fields, t200),
    }
