"""One demo member's catalogue: each of its works catalogued the member's way, as MARC.

A member catalogues either in MARC21 (852 holdings; Western books shelved by LCC) or in
CNMARC (200/210/215/606/690/701, pinyin ``$A`` at some members, 905/906 holdings), with
its own record numbers, call numbers (CLC with its own 种次号), locations and barcodes:
its ``MemberStyle``, drawn once per member. The fields themselves are written by
``marc.writer``, the same writer the union front door uses; what is the demo's own here is
what its members put in them (ISBD punctuation, prices, the cataloguing agency, notes) and
a few local fields.

Every draw from ``rng`` is in a fixed order, so that one seed gives the same bytes: the
date catalogued first, then (CNMARC) whether a book gets a summary, then the call number
and the copies.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from pymarc import Field, Record
from pypinyin import lazy_pinyin

from broker.demo.holders import circulation
from broker.demo.members import MemberPlan
from broker.demo.vocabulary import SCIENCE_AREAS, ZH_LOCATIONS
from broker.demo.works import Work, isbn10_form
from marc.model import Holding
from marc.writer import (
    build_record,
    classification_field,
    control_field,
    data_field,
    edition_field,
    extent_field,
    fixed_length_data,
    frequency_field,
    general_processing_data,
    heading_parts,
    holding_fields,
    isbn_field,
    issn_field,
    language_field,
    leader,
    name_field,
    publication_field,
    series_field,
    subject_field,
    title_field,
)

# How the members' subject headings read: subdivisions after — (or LCSH's --); these
# places are geographical subdivisions, these forms form subdivisions.
_HEADING_SEPARATORS = ("—", " -- ")
_PLACES = ("中国", "北京", "西方国家")
_FORMS = ("教材", "期刊", "Periodicals")
# MARC21 008/18-34 of a book: illustrated, not a conference, has an index, nonfiction.
_BOOK_008 = "a   " + " " * 6 + " 001 0 "
_FREQUENCIES = {"月刊": "m", "双月刊": "b", "季刊": "q", "Monthly": "m", "Bimonthly": "b",
                "Quarterly": "q"}
assert len(_BOOK_008) == 17


@dataclass(slots=True)
class MemberStyle:
    """How one member catalogues: its code, numbering, locations, habits; and its
    counters (record numbers, barcodes, the last 种次号 of each class) as it goes."""

    id: str
    code: str
    flavour: str
    number_base: int
    barcode_prefix: str
    pinyin: bool
    isbn_hyphens: bool
    locations: dict[str, str] = field(default_factory=dict)
    next_number: int = 1
    next_barcode: int = 1
    shelf: dict[str, int] = field(default_factory=dict)  # CLC class -> last 种次号


def _style(rng: random.Random, p: MemberPlan) -> MemberStyle:
    return MemberStyle(
        id=p.id, code=p.id.upper(), flavour=p.format,
        number_base=(p.position + 1) * 10_000_000 + rng.randrange(100_000, 900_000),
        barcode_prefix=rng.choice(("", "0", "C", "1")) + f"{p.position + 11:02d}",
        pinyin=p.format == "unimarc" and rng.random() < 0.6,
        isbn_hyphens=rng.random() < 0.5,
        locations={"sci": rng.choice(ZH_LOCATIONS["sci"]), "soc": rng.choice(ZH_LOCATIONS["soc"]),
                   "en": rng.choice(("外文图书借阅区", "外文书库", "外文图书阅览室")),
                   "serial": rng.choice(("期刊阅览室", "中外文期刊阅览区", "过刊库"))})


def member_records(rng: random.Random, p: MemberPlan, works: list[Work]) -> list[Record]:
    style = _style(rng, p)
    if p.format == "unimarc":
        charset = "0120" if p.file_encoding == "gb18030" else "50  "
        return [unimarc_record(rng, style, w, charset) for w in works]
    return [marc21_record(rng, style, w) for w in works]


# --- what every record needs -----------------------------------------------------------------


def _call_number(rng: random.Random, style: MemberStyle, work: Work) -> tuple[str, str]:
    """(class part, item part) of the member's call number: CLC with its own 种次号 for
    Chinese books, an author mark for Western ones; MARC21 members shelve Western books by
    LCC."""
    if work.kind == "en" and style.flavour == "marc21" and work.lcc:
        cls, _, item = work.lcc.partition(" ")
        return cls, item
    if work.kind.endswith("serial"):
        return work.clc, f"{rng.randrange(1, 400)}"
    if work.kind == "en":
        return work.clc, f"{work.authors[0][0]}{rng.randrange(100, 999)}"
    number = style.shelf.get(work.clc, rng.randrange(0, 60)) + rng.randrange(1, 4)
    style.shelf[work.clc] = number
    item = str(number)
    if work.edition:
        item += f"={work.edition.strip('第版')}"
    return work.clc, item


def _copies(rng: random.Random, style: MemberStyle, work: Work) -> list[str]:
    n = 1 if work.kind.endswith("serial") else rng.choices((1, 2, 3), (6, 3, 1))[0]
    out = []
    for _ in range(n):
        out.append(f"{style.barcode_prefix}{style.next_barcode:06d}")
        style.next_barcode += rng.randrange(1, 40)
    return out


def _location(style: MemberStyle, work: Work) -> str:
    if work.kind.endswith("serial"):
        return style.locations["serial"]
    if work.kind == "en":
        return style.locations["en"]
    return style.locations["sci" if work.area in SCIENCE_AREAS else "soc"]


def _holdings(rng: random.Random, style: MemberStyle, work: Work, call_number: str
              ) -> list[Holding]:
    location = _location(style, work)
    serial = work.kind.endswith("serial")
    return [Holding(style.code, location, call_number, barcode,
                    *circulation(style.id, barcode, serial=serial))
            for barcode in _copies(rng, style, work)]


def _catalogued(rng: random.Random, work: Work) -> tuple[str, str]:
    """(yyyymmdd, yyyymmddhhmmss.0) when the member catalogued the work."""
    year = min(2025, max(work.year, 1995) + rng.randrange(0, 3))
    day = f"{year}{rng.randrange(1, 13):02d}{rng.randrange(1, 29):02d}"
    return day, f"{day}{rng.randrange(8, 18):02d}{rng.randrange(60):02d}{rng.randrange(60):02d}.0"


def _record_number(style: MemberStyle) -> Field:
    number = style.number_base + style.next_number
    style.next_number += 1
    return control_field("001", str(number))


def _printed_isbn(work: Work, style: MemberStyle) -> str | None:
    if not work.isbn13:
        return None
    hyphens = work.isbn_hyphens if style.isbn_hyphens else None
    if work.year < 2007:  # the book says ISBN-10
        return isbn10_form(work.isbn13, hyphens)
    return hyphens or work.isbn13


def _pinyin(text: str) -> str:
    syllables = [s for s in lazy_pinyin(text, errors="ignore") if s.strip()]
    return " ".join(s[:1].upper() + s[1:] for s in syllables)


def _subject_parts(heading: str) -> list[tuple[str, str]]:
    return heading_parts(heading, separators=_HEADING_SEPARATORS, places=_PLACES,
                         forms=_FORMS)


def _serial(work: Work) -> bool:
    return work.kind.endswith("serial")


def _chinese(work: Work) -> bool:
    return work.kind.startswith("zh")


def _language(work: Work) -> str:
    return "chi" if _chinese(work) else "eng"


# --- MARC21 -------------------------------------------------------------------------------------


def marc21_record(rng: random.Random, style: MemberStyle, work: Work) -> Record:
    entered, stamp = _catalogued(rng, work)
    head = leader("marc21", "serial" if _serial(work) else "book", encoding_level=" ",
                  cataloguing_form="i")
    return build_record(head, [
        *_marc21_control(style, work, entered, stamp),
        *_marc21_access(style, work),
        *_marc21_description(work),
        *(subject_field("marc21", _subject_parts(h), lcsh=not _chinese(work))
          for h in work.subjects),
        *(name_field("marc21", name, main=False) for name in work.authors[1:]),
        *_marc21_holdings(rng, style, work),
    ])


def _marc21_control(style: MemberStyle, work: Work, entered: str, stamp: str) -> list[Field]:
    if _serial(work):
        frequency = _FREQUENCIES[work.frequency or "月刊"]
        material = f"{frequency}r p{' ' * 7}0{' ' * 4}0"  # regular, periodical
        date_type, date2 = "c", "9999"  # currently published
    else:
        material, date_type, date2 = _BOOK_008, "s", "    "
    fixed = fixed_length_data(entered=entered[2:], date_type=date_type, date1=str(work.year),
                              date2=date2, place="cc " if _chinese(work) else work.country,
                              material=material, language=_language(work))
    return [_record_number(style), control_field("003", style.code),
            control_field("005", stamp), control_field("008", fixed)]


def _marc21_access(style: MemberStyle, work: Work) -> list[Field | None]:
    """Identifiers, the cataloguing source, classification, the main entry."""
    lcc, _, item = (work.lcc or "").partition(" ")
    first = work.authors[0] if work.authors else None
    return [
        isbn_field("marc21", _printed_isbn(work, style), price=work.price),
        issn_field("marc21", work.issn, international=True),
        data_field("040", "  ", ("a", style.code), ("b", _language(work)), ("c", style.code),
                   ("e", "rda" if work.year >= 2013 else None)),
        classification_field("marc21", "lcc", lcc, item=item or None) if lcc else None,
        classification_field("marc21", "clc", work.clc),
        name_field("marc21", first, main=True, relator=None if _chinese(work) else "author")
        if first else None,
    ]


def _marc21_title(work: Work) -> Field | None:
    """245 with ISBD punctuation; a university's journal has its part (社会科学版) in $p."""
    resp = work.responsibility + "." if work.responsibility else None
    end = " /" if resp else "."
    if work.owner:
        return title_field("marc21", f"{work.title}.", part=(work.subtitle or "") + end,
                           responsibility=resp)
    return title_field("marc21", work.title + (" :" if work.subtitle else end),
                       subtitle=work.subtitle + end if work.subtitle else None,
                       responsibility=resp, main_entry=bool(work.authors))


def _marc21_extent(work: Work) -> list[Field | None]:
    if _serial(work):
        chinese = _chinese(work)
        return [extent_field("marc21", "册" if chinese else "volumes",
                             size="26cm" if chinese else "26 cm"),
                frequency_field("marc21", work.frequency)]
    if _chinese(work):
        return [extent_field("marc21", f"{work.pages}页 :", details="图 ;",
                             size=f"{work.height}cm")]
    pages = f"xii, {work.pages} pages" if work.year >= 2013 else f"xii, {work.pages} p."
    return [extent_field("marc21", f"{pages} :", details="illustrations ;",
                         size=f"{work.height} cm")]


def _marc21_description(work: Work) -> list[Field | None]:
    """Title to notes: 245, 250, 260/264, 300 (310), 336, 490, 504."""
    publication = publication_field(
        "marc21", f"{work.place} :", f"{work.publisher},",
        f"{work.year}{'-' if _serial(work) else '.'}", rda=work.year >= 2012)
    rda = work.year >= 2013
    return [
        _marc21_title(work),
        edition_field("marc21", work.edition),
        publication,
        *_marc21_extent(work),
        data_field("336", "  ", ("a", "text"), ("b", "txt"), ("2", "rdacontent"))
        if rda else None,
        series_field("marc21", work.series),
        data_field("504", "  ", ("a", "Includes bibliographical references and index."))
        if work.kind == "en" else None,
    ]


def _marc21_holdings(rng: random.Random, style: MemberStyle, work: Work) -> list[Field | None]:
    """852 a copy: a CLC call number whole in $h; an LCC one as $h class, $i item."""
    cls, item = _call_number(rng, style, work)
    clc = cls == work.clc
    holdings = _holdings(rng, style, work, f"{cls}/{item}" if clc else f"{cls} {item}")
    fields: list[Field | None] = [*holding_fields(holdings, "852",
                                                  scheme=None if clc else "lcc")]
    if _serial(work):
        fields.append(data_field("866", " 0", ("a", f"{max(work.year, 1995)}-")))
    return fields


# --- CNMARC -------------------------------------------------------------------------------------


def unimarc_record(rng: random.Random, style: MemberStyle, work: Work,
                   charset: str = "50  ") -> Record:
    entered, stamp = _catalogued(rng, work)
    # The entry map says 4500 as in MARC21: the demo's CNMARC records always have.
    head = leader("unimarc", "serial" if _serial(work) else "book", encoding_level=" ",
                  cataloguing_form=" ", hierarchy="0", entry_map="4500")
    return build_record(head, [
        *_unimarc_coded(style, work, entered, stamp, charset),
        *_unimarc_description(rng, style, work),
        *(subject_field("unimarc", _subject_parts(h)) for h in work.subjects),
        # 690 before 680: the members' habit (and the files' bytes) since the start.
        classification_field("unimarc", "clc", work.clc, edition="5"),
        _unimarc_lcc(work),
        *(_unimarc_name(style, work, name) for name in work.authors),
        data_field("801", " 0", ("a", "CN"), ("b", style.code), ("c", entered)),
        *_unimarc_holdings(rng, style, work),
    ])


def _unimarc_coded(style: MemberStyle, work: Work, entered: str, stamp: str, charset: str
                   ) -> list[Field | None]:
    """001, 005, identifiers and the coded data fields (100-106)."""
    serial, chinese = _serial(work), _chinese(work)
    general = general_processing_data(
        entered=entered, date_type="a" if serial else "d", date1=str(work.year),
        date2="9999" if serial else "    ", language=_language(work), audience="em ",
        charset=charset)
    return [
        _record_number(style),
        control_field("005", stamp),
        isbn_field("unimarc", _printed_isbn(work, style), price=work.price),
        issn_field("unimarc", work.issn),
        data_field("091", "  ", ("a", work.cn_number)),
        data_field("100", "  ", ("a", general)),
        language_field(_language(work)),
        data_field("102", "  ", ("a", "CN" if chinese else "US"),
                   ("b", "110000" if chinese else None)),
        None if serial else data_field("105", "  ", ("a", "a   z   000yy")),
        data_field("106", "  ", ("a", "r")),
    ]


def _unimarc_description(rng: random.Random, style: MemberStyle, work: Work
                         ) -> list[Field | None]:
    """200 to 330: title, edition, numbering, publication, extent, series, frequency or a
    summary (of a third of the Chinese books)."""
    serial, chinese = _serial(work), _chinese(work)
    romanized = _pinyin(work.title) if style.pinyin and chinese else None
    fields = [
        title_field("unimarc", work.title, romanized=romanized,
                    subtitle=None if work.owner else work.subtitle,
                    part=work.subtitle if work.owner else None,
                    responsibility=work.responsibility or None),
        edition_field("unimarc", work.edition),
        data_field("207", " 0", ("a", f"{work.year},no.1-")) if serial and chinese else None,
        publication_field("unimarc", work.place, work.publisher, str(work.year)),
        _unimarc_extent(work),
        series_field("unimarc", work.series),
    ]
    if serial:
        fields.append(frequency_field("unimarc", work.frequency))
    elif chinese and rng.random() < 0.35:
        topic = work.subjects[0].split("—")[0]
        summary = f"本书系统介绍了{topic}的基本概念、基本原理和主要方法。"
        fields.append(data_field("330", "  ", ("a", summary)))
    return fields


def _unimarc_extent(work: Work) -> Field | None:
    chinese = _chinese(work)
    if _serial(work):
        return extent_field("unimarc", "册" if chinese else "v.", size="26cm")
    return extent_field("unimarc", f"{work.pages}页" if chinese else f"xii, {work.pages} p.",
                        details="图" if chinese else "ill.", size=f"{work.height}cm")


def _unimarc_lcc(work: Work) -> Field | None:
    if not work.lcc:
        return None
    cls, _, item = work.lcc.partition(" ")
    return classification_field("unimarc", "lcc", cls, item=item or None)


def _unimarc_name(style: MemberStyle, work: Work, name: str) -> Field | None:
    """701 for every author (none as 700): a Western name as $a surname, $b given; a
    Chinese one with its pinyin at the members that add it, and the role from the
    statement of responsibility (主编, 编著, 著...)."""
    if "," in name:
        return name_field("unimarc", name, main=False, relator="著", split_inverted=True)
    resp = work.responsibility
    role = resp[-2:] if resp.endswith(("主编", "编著")) else resp[-1:]
    romanized = _pinyin(name) if style.pinyin and _chinese(work) else None
    return name_field("unimarc", name, main=False, relator=role, romanized=romanized)


# How the demo's CNMARC systems word a copy's status in 906 $z.
_CNMARC_STATUS = {"available": "在架", "on_loan": "借出", "not_for_loan": "不外借"}


def _unimarc_holdings(rng: random.Random, style: MemberStyle, work: Work) -> list[Field]:
    """905 where the call number is shelved, a 906 a copy with its status in $z (and the
    due date of a copy on loan), as the members' Chinese systems export them."""
    cls, item = _call_number(rng, style, work)
    holdings = _holdings(rng, style, work, f"{cls}/{item}")
    fields = holding_fields(holdings, "905/906")
    for copy, holding in zip([f for f in fields if f.tag == "906"], holdings, strict=True):
        if holding.status in _CNMARC_STATUS:
            copy.add_subfield("z", _CNMARC_STATUS[holding.status])
        if holding.due:
            copy.add_subfield("z", f"应还日期 {holding.due}")
    return fields
