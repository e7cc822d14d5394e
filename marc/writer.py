"""Writing MARC: a normalized record and its holdings as pymarc fields, in MARC21 or UNIMARC.

This is the one place that knows which tag, indicators and subfield codes each part of a
record takes in each flavour. It has two users, who want different things of it:

- the union front door (``broker.catalogues.union``) writes a merged record from its
  normalized form alone (``write_record``): a deliberately plain crosswalk that keeps what
  normalization keeps and nothing more;
- the demo consortium (``broker.demo.records``) writes each member's catalogue the way
  that member catalogues, which is richer than the normalized model (ISBD punctuation
  already in the values, prices, pinyin, relator terms, local fields), so it puts its
  records together from the element writers below (``title_field``, ``name_field``,
  ``holding_fields``...) and passes its habits in as arguments.

Values that are None or empty are left out, and so is a field left with no subfield. What
a reader makes of the result is ``marc.normalize``'s business; the two are meant to round
trip for what the normalized record holds.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Literal, cast, get_args

import pymarc
from pymarc import Field, Indicators, Subfield

from broker.kernel.errors import MarcError
from marc.flavour import Flavour
from marc.model import Classification, Holding, HoldingStatus, Record

FLAVOURS: tuple[Flavour, ...] = ("marc21", "unimarc")
# Where holdings go: MARC21's 852 (one per item), or CNMARC's 905 (where a call number is
# shelved) with a 906 per copy.
HoldingsLayout = Literal["852", "905/906"]
Pair = tuple[str, str | None]

# material type -> leader/06-07
_MARC21_TYPES = {"book": "am", "serial": "as", "article": "ab", "manuscript": "tm",
                 "music_score": "cm", "map": "em", "video": "gm", "audio": "im",
                 "image": "km", "electronic": "mm", "mixed": "pm", "object": "rm"}
_UNIMARC_TYPES = {"book": "am", "serial": "as", "article": "aa", "manuscript": "bm",
                  "music_score": "cm", "map": "em", "video": "gm", "audio": "im",
                  "image": "km", "electronic": "lm", "mixed": "mm", "object": "rm"}
# classification scheme -> (tag, indicators); others go to 084 (MARC21) or 686 (UNIMARC)
# with the scheme in $2.
_MARC21_CLASSES = {"lcc": ("050", " 4"), "ddc": ("082", "04"), "udc": ("080", "  ")}
_UNIMARC_CLASSES = {"clc": "690", "cas": "692", "udc": "675", "ddc": "676", "lcc": "680"}
# CNMARC 606 subdivision codes (topical x, geographical y, form j) -> MARC21 650's.
_MARC21_SUBDIVISIONS = {"a": "a", "x": "x", "y": "z", "j": "v"}
# MARC21 852 first indicator: the shelving scheme of a call number split into $h and $i.
_SHELVING_SCHEMES = {"lcc": "0"}
_HAN_LANGUAGES = ("chi", "jpn", "kor")
_STATUSES = frozenset(get_args(HoldingStatus))
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def as_flavour(name: str) -> Flavour:
    """``name`` (a catalogue's configured format, say) as a Flavour; ValueError if it is
    neither."""
    for flavour in FLAVOURS:
        if name == flavour:
            return flavour
    raise ValueError(f"unknown flavour {name!r}")


# --- fields and records ------------------------------------------------------------------


def data_field(tag: str, indicators: str, *pairs: Pair) -> Field | None:
    """A data field from (code, value) pairs; None if no value is left."""
    subfields = [Subfield(code, value) for code, value in pairs if value]
    if not subfields:
        return None
    return Field(tag, Indicators(indicators[0], indicators[1]), subfields)


def control_field(tag: str, data: str) -> Field:
    return Field(tag, data=data)


def leader(flavour: Flavour, material_type: str, *, encoding_level: str,
           cataloguing_form: str, hierarchy: str = " ", entry_map: str | None = None) -> str:
    """Leader with lengths and base address zeroed (whoever writes the bytes sets them).

    ``encoding_level`` is position 17, ``cataloguing_form`` 18 (ISBD or not),
    ``hierarchy`` 8 (UNIMARC's hierarchical level; MARC21's type of control);
    ``entry_map`` (20-23) defaults to the flavour's own, 4500 or 450 .
    """
    as_flavour(flavour)
    if flavour == "marc21":
        kind = _MARC21_TYPES.get(material_type, "am")
        return (f"00000n{kind}{hierarchy}a2200000{encoding_level}{cataloguing_form} "
                f"{entry_map or '4500'}")
    kind = _UNIMARC_TYPES.get(material_type, "am")
    return (f"00000n{kind}{hierarchy} 2200000{encoding_level}{cataloguing_form} "
            f"{entry_map or '450 '}")


def build_record(leader_text: str, fields: Iterable[Field | None], *,
                 in_tag_order: bool = False, force_utf8: bool = False) -> pymarc.Record:
    """A pymarc record of ``fields`` (Nones skipped), as given or kept in tag order."""
    record = pymarc.Record(force_utf8=force_utf8)
    record.leader = pymarc.Leader(leader_text)
    for field in fields:
        if field is None:
            continue
        if in_tag_order:
            record.add_ordered_field(field)
        else:
            record.add_field(field)
    return record


_FT, _RT, _SF = b"\x1e", b"\x1d", b"\x1f"


def iso2709(record: pymarc.Record, encoding: str = "utf-8", *,
            coding: str | None = None) -> bytes:
    """One record as ISO 2709 in ``encoding`` (pymarc writes only UTF-8 or Latin-1), its
    fields in the record's order; ``coding`` replaces leader/09 (MARC21's "a" for UTF-8).
    MarcError when a field or the record is longer than ISO 2709's lengths can say."""
    directory: list[bytes] = []
    bodies: list[bytes] = []
    offset = 0
    for f in record.fields:
        if f.is_control_field():
            body = (f.data or "").encode(encoding) + _FT
        else:
            body = (f.indicator1 + f.indicator2).encode(encoding) + b"".join(
                _SF + (sf.code + sf.value).encode(encoding)
                for sf in f.subfields) + _FT
        if len(body) > 9999:
            raise MarcError(f"field {f.tag} is too long for ISO 2709 ({len(body)} bytes)")
        directory.append(f"{f.tag:0>3}{len(body):04d}{offset:05d}".encode("ascii"))
        bodies.append(body)
        offset += len(body)
    base = 24 + 12 * len(directory) + 1
    total = base + offset + 1
    if total > 99999:
        raise MarcError(f"the record is longer than ISO 2709 allows ({total} bytes)")
    text = str(record.leader).ljust(24)[:24]
    if coding is not None:
        text = text[:9] + coding + text[10:]
    text = f"{total:05d}{text[5:12]}{base:05d}{text[17:]}"
    return text.encode("ascii", "replace") + b"".join(directory) + _FT + b"".join(bodies) + _RT


# --- coded data ----------------------------------------------------------------------------


def fixed_length_data(*, entered: str, date_type: str, date1: str, date2: str, place: str,
                      material: str, language: str, source: str = "d") -> str:
    """MARC21 008: ``material`` is positions 18-34 (17 characters, by type of material)."""
    return f"{entered}{date_type}{date1}{date2}{place}{material}{language} {source}"


def general_processing_data(*, entered: str, date_type: str, date1: str, date2: str,
                            language: str, audience: str = "km ", charset: str = "50  ") -> str:
    """UNIMARC 100 $a: date entered, type of date, dates, audience, government,
    modified, cataloguing language, transliteration, character sets (50: Unicode), and
    the script of the title (Han for Chinese, Japanese, Korean, else Latin)."""
    script = "ea" if language in _HAN_LANGUAGES else "ba"
    return (f"{entered}{date_type}{date1}{date2}{audience}y0{language}y{charset}    "
            f"{script}")


def language_field(language: str | None) -> Field | None:
    """UNIMARC 101 (MARC21 says the language in 008)."""
    return data_field("101", "0 ", ("a", language))


# --- description -----------------------------------------------------------------------------


def isbn_field(flavour: Flavour, isbn: str | None, *, price: str | None = None) -> Field | None:
    """020 $a $c / 010 $a $d: the ISBN and its terms of availability (None without an
    ISBN: a price alone says nothing)."""
    if not isbn:
        return None
    if flavour == "marc21":
        return data_field("020", "  ", ("a", isbn), ("c", price))
    return data_field("010", "  ", ("a", isbn), ("d", price))


def issn_field(flavour: Flavour, issn: str | None, *, international: bool = False
               ) -> Field | None:
    """022 / 011; ``international``: first indicator 0, of international interest."""
    indicators = "0 " if international else "  "
    return data_field("022" if flavour == "marc21" else "011", indicators, ("a", issn))


def title_field(flavour: Flavour, title: str | None, *, subtitle: str | None = None,
                part: str | None = None, responsibility: str | None = None,
                romanized: str | None = None, main_entry: bool = False) -> Field | None:
    """245 (a b p c) / 200 (a A e i f). ``main_entry``: a 1XX names the work (245 ind1);
    ``romanized`` is CNMARC's pinyin $A (UNIMARC only)."""
    if flavour == "unimarc":
        return data_field("200", "1 ", ("a", title), ("A", romanized), ("e", subtitle),
                          ("i", part), ("f", responsibility))
    return data_field("245", f"{'1' if main_entry else '0'}0", ("a", title), ("b", subtitle),
                      ("p", part), ("c", responsibility))


def edition_field(flavour: Flavour, edition: str | None) -> Field | None:
    return data_field("250" if flavour == "marc21" else "205", "  ", ("a", edition))


def publication_field(flavour: Flavour, place: str | None, publisher: str | None,
                      date: str | None, *, rda: bool = False) -> Field | None:
    """260 (or RDA's 264 _1) $a $b $c / 210 $a $c $d."""
    if flavour == "unimarc":
        return data_field("210", "  ", ("a", place), ("c", publisher), ("d", date))
    tag, indicators = ("264", " 1") if rda else ("260", "  ")
    return data_field(tag, indicators, ("a", place), ("b", publisher), ("c", date))


def extent_field(flavour: Flavour, extent: str | None, *, details: str | None = None,
                 size: str | None = None) -> Field | None:
    """300 $a $b $c / 215 $a $c $d: extent, other physical details, dimensions."""
    if flavour == "marc21":
        return data_field("300", "  ", ("a", extent), ("b", details), ("c", size))
    return data_field("215", "  ", ("a", extent), ("c", details), ("d", size))


def frequency_field(flavour: Flavour, frequency: str | None) -> Field | None:
    return data_field("310" if flavour == "marc21" else "326", "  ", ("a", frequency))


def series_field(flavour: Flavour, series: str | None) -> Field | None:
    """490 0_ (not traced) / 225 2_ (no added entry)."""
    if flavour == "marc21":
        return data_field("490", "0 ", ("a", series))
    return data_field("225", "2 ", ("a", series))


def classification_field(flavour: Flavour, scheme: str, value: str | None, *,
                         item: str | None = None, edition: str | None = None) -> Field | None:
    """050/082/080 or 084 $2 / 690/692/675/676/680 or 686 $2: $a class, $b item part,
    $v edition of the scheme."""
    if flavour == "marc21":
        tag, indicators = _MARC21_CLASSES.get(scheme, ("084", "  "))
        source = scheme if tag == "084" else None
    else:
        tag, indicators = _UNIMARC_CLASSES.get(scheme, "686"), "  "
        source = scheme if tag == "686" else None
    return data_field(tag, indicators, ("a", value), ("b", item), ("v", edition),
                      ("2", source))


def name_field(flavour: Flavour, name: str, *, main: bool, relator: str | None = None,
               romanized: str | None = None, split_inverted: bool = False) -> Field | None:
    """A personal name: 100 (``main``) or 700, first indicator 1 for 'Surname, Given';
    UNIMARC 700 (``main``) or 701, with CNMARC's pinyin $A, or with an inverted name as
    $a surname / $b given when ``split_inverted``. ``relator`` is $e / $4."""
    if flavour == "marc21":
        return data_field("100" if main else "700", "1 " if "," in name else "0 ",
                          ("a", name), ("e", relator))
    tag = "700" if main else "701"
    if split_inverted and "," in name:
        surname, _, given = name.partition(", ")
        return data_field(tag, " 1", ("a", surname), ("b", given), ("4", relator))
    return data_field(tag, " 0", ("a", name), ("A", romanized), ("4", relator))


# --- subjects ---------------------------------------------------------------------------------


def heading_parts(heading: str, *, separators: Sequence[str] = (" -- ",),
                  places: Iterable[str] = (), forms: Iterable[str] = ()
                  ) -> list[tuple[str, str]]:
    """'经济发展 -- 研究 -- 中国' -> [('a', 经济发展), ('x', 研究), ('y', 中国)] in CNMARC's
    codes: a subdivision in ``places`` is $y, one in ``forms`` $j, any other $x."""
    first, *others = separators
    for separator in others:
        heading = heading.replace(separator, first)
    head, *rest = [part.strip() for part in heading.split(first)]
    place_set, form_set = frozenset(places), frozenset(forms)
    return [("a", head), *(("y" if p in place_set else "j" if p in form_set else "x", p)
                           for p in rest if p)]


def subject_field(flavour: Flavour, parts: Sequence[tuple[str, str]], *,
                  lcsh: bool = False) -> Field:
    """650 (second indicator 0 for LCSH, else 4) / 606 from ``heading_parts``, every part
    written as given."""
    if flavour == "unimarc":
        return Field("606", Indicators("0", " "), [Subfield(c, v) for c, v in parts])
    return Field("650", Indicators(" ", "0" if lcsh else "4"),
                 [Subfield(_MARC21_SUBDIVISIONS[c], v) for c, v in parts])


# --- holdings ---------------------------------------------------------------------------------


def holding_field(holding: Holding, *, scheme: str | None = None) -> Field | None:
    """852: $a library, $b location, $h call number, $p barcode, $z status (and due).

    With a shelving ``scheme`` (lcc) the call number is split at its first space into
    $h classification part and $i item part, as LC call numbers are."""
    call, item = holding.call_number, None
    if scheme is not None and call:
        call, _, rest = call.partition(" ")
        item = rest or None
    due = f"due {holding.due}" if holding.due else None
    return data_field("852", f"{_SHELVING_SCHEMES.get(scheme or '', ' ')} ",
                      ("a", holding.library), ("b", holding.location), ("h", call),
                      ("i", item), ("p", holding.barcode), ("z", holding.status), ("z", due))


def _shelf(call_number: str | None) -> tuple[Pair, Pair]:
    """'TP312/45' -> 905/906 $d class number TP312, $e book number 45."""
    number, _, book = (call_number or "").partition("/")
    return ("d", number or None), ("e", book or None)


def _cnmarc_holdings(holdings: Sequence[Holding]) -> list[Field | None]:
    """A 905 for each place a call number is shelved, then a 906 for each copy."""
    shelved = dict.fromkeys((h.library, h.location, h.call_number) for h in holdings)
    out = [data_field("905", "  ", ("a", library), ("c", location), *_shelf(call))
           for library, location, call in shelved]
    out += [data_field("906", "  ", ("a", h.library), ("b", h.barcode), *_shelf(h.call_number))
            for h in holdings]
    return out


def holding_fields(holdings: Sequence[Holding], layout: HoldingsLayout = "852", *,
                   scheme: str | None = None) -> list[Field]:
    """Every holding's fields, in ``layout``. 905/906 carry library, location, call number
    ('class/book', as ``marc.normalize`` reads them back) and barcode, not status; a 906
    has no location of its own, so copies of one call number in two places read back as
    in the last."""
    if layout == "905/906":
        fields = _cnmarc_holdings(holdings)
    else:
        fields = [holding_field(h, scheme=scheme) for h in holdings]
    return [f for f in fields if f is not None]


def holdings_of(record: pymarc.Record) -> tuple[Holding, ...]:
    """The holdings ``holding_field`` wrote, read back from a record's 852s in either
    flavour (the union puts them in UNIMARC records too), status and due date included:
    ``marc.normalize`` reads 852 from MARC21 only. A $z that is neither a status nor a
    due date (another system's public note) is left out."""
    found = []
    for field in record.get_fields("852"):
        status, due = None, None
        for note in field.get_subfields("z"):
            note = note.strip()
            if note in _STATUSES:
                status = cast(HoldingStatus, note)
            elif note.startswith("due ") and _ISO_DATE.fullmatch(note[4:].strip()):
                due = note[4:].strip()
        found.append(Holding(
            library=_joined(field, "a"), location=_joined(field, "bc"),
            call_number=_joined(field, "khim"), barcode=_joined(field, "p"),
            status=status, due=due))
    return tuple(found)


def served_holdings(record: pymarc.Record, normalized: Record) -> tuple[Holding, ...]:
    """The copies a front door shows for ``record``: its 852s read back whole
    (``holdings_of``: the union writes every library's there, status included), unless it
    has none or is a MARC21 record whose items are in Koha's 952 or Alma's AVA; else what
    normalization read (``normalized.holdings``: a member's 852, CNMARC's 905/906)."""
    tags = {field.tag for field in record.fields}
    if "852" in tags and (normalized.format == "unimarc" or not tags & {"952", "AVA"}):
        return holdings_of(record)
    return normalized.holdings


def _joined(field: Field, codes: str) -> str | None:
    return " ".join(v.strip() for v in field.get_subfields(*codes) if v.strip()) or None


# --- a normalized record ------------------------------------------------------------------------


def write_record(record: Record, flavour: Flavour = "marc21", *, record_id: str | None = None,
                 isbns: Sequence[str] | None = None, holdings: Sequence[Holding] = (),
                 holdings_layout: HoldingsLayout = "852") -> pymarc.Record:
    """A plain MARC21 or UNIMARC record (abbreviated level) of a normalized record, in tag
    order: 001 (``record_id`` or the record's id), identifiers (``isbns`` instead of the
    record's when given), title, responsibility, edition, publication, extent, subjects,
    classification, authors, language and material type, then ``holdings``. What
    normalization does not keep (notes, 880 links, local fields) it cannot write."""
    as_flavour(flavour)
    identifier = record_id or record.id
    isbns = record.isbns if isbns is None else tuple(isbns)
    if flavour == "marc21":
        head = leader(flavour, record.material_type, encoding_level="3", cataloguing_form="u")
        body = _marc21_fields(record, isbns)
    else:
        head = leader(flavour, record.material_type, encoding_level="3", cataloguing_form="n")
        body = _unimarc_fields(record, isbns)
    return build_record(head, [control_field("001", identifier) if identifier else None,
                               *body, *holding_fields(holdings, holdings_layout)],
                        in_tag_order=True, force_utf8=True)


def _year_text(record: Record) -> str | None:
    return str(record.year) if record.year else None


def _classification(flavour: Flavour, entries: Iterable[Classification]) -> list[Field | None]:
    return [classification_field(flavour, e.scheme, e.value) for e in entries]


def _language_code(record: Record) -> str:
    return (record.language or "und")[:3].ljust(3)


def _marc21_fields(record: Record, isbns: Sequence[str]) -> list[Field | None]:
    fixed = fixed_length_data(
        entered="000000", date_type="s" if record.year else "n",
        date1=f"{record.year:04d}" if record.year else "uuuu", date2="    ", place="xx ",
        material=" " * 17, language=_language_code(record))
    authors = record.authors
    return [
        control_field("008", fixed),
        *(isbn_field("marc21", isbn) for isbn in isbns),
        *(issn_field("marc21", issn) for issn in record.issns),
        *_classification("marc21", record.classification),
        name_field("marc21", authors[0], main=True) if authors else None,
        title_field("marc21", record.title, subtitle=record.subtitle,
                    responsibility=record.responsibility, main_entry=bool(authors)),
        edition_field("marc21", record.edition),
        publication_field("marc21", record.place, record.publisher, _year_text(record)),
        extent_field("marc21", record.extent),
        *(subject_field("marc21", heading_parts(s)) for s in record.subjects),
        *(name_field("marc21", author, main=False) for author in authors[1:]),
    ]


def _unimarc_fields(record: Record, isbns: Sequence[str]) -> list[Field | None]:
    general = general_processing_data(
        entered="00000000", date_type="d" if record.year else "u",
        date1=f"{record.year:04d}" if record.year else "    ", date2="    ",
        language=_language_code(record))
    return [
        *(isbn_field("unimarc", isbn) for isbn in isbns),
        *(issn_field("unimarc", issn) for issn in record.issns),
        data_field("100", "  ", ("a", general)),
        language_field(record.language),
        title_field("unimarc", record.title, subtitle=record.subtitle,
                    responsibility=record.responsibility),
        edition_field("unimarc", record.edition),
        publication_field("unimarc", record.place, record.publisher, _year_text(record)),
        extent_field("unimarc", record.extent),
        *(subject_field("unimarc", heading_parts(s)) for s in record.subjects),
        *_classification("unimarc", record.classification),
        *(name_field("unimarc", author, main=i == 0) for i, author in enumerate(record.authors)),
    ]
