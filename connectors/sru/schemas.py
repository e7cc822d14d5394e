"""The record schemas our SRU server offers: MARCXML, Dublin Core and MODS.

MARCXML is the record as the catalogue holds it (``connectors.sru.xml.marc_element``).
Dublin Core (SRU's ``srw_dc:dc``) and MODS are our own mappings from the normalized record
(CONTRACTS section 4, ``marc.normalize``), not LoC's MARC stylesheets: the normalized
record is where MARC21 and CNMARC already mean the same thing, so one mapping serves both
flavours and a CNMARC book's DC says what its MARC21 twin's says.

Holdings: a union record carries every library's holdings as 852 fields ($a library, $b
location, $h call number, $p barcode, $z status, a second $z ``due YYYY-MM-DD``; see
broker/catalogues/union.py), in a UNIMARC union too, where ``marc.normalize`` reads no 852.
``normalized`` reads them (``marc.writer.served_holdings``, as the Z39.50 OPAC record does)
in either flavour, status and due date included, so MODS can
say where a book is and whether it is on the shelf.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace

import pymarc
from lxml import etree

from connectors.sru.xml import MARC_NS, MARCXML_SCHEMA, marc_element, xml_text
from marc import Holding, Record, normalize
from marc.model import MaterialType
from marc.writer import served_holdings

logger = logging.getLogger(__name__)

DC_SCHEMA = "info:srw/schema/1/dc-v1.1"
SRW_DC_NS = "info:srw/schema/1/dc-schema"
DC_NS = "http://purl.org/dc/elements/1.1/"
MODS_SCHEMA = "info:srw/schema/1/mods-v3.6"
MODS_NS = "http://www.loc.gov/mods/v3"
MODS_VERSION = "3.6"



@dataclass(frozen=True, slots=True)
class Schema:
    """One record schema: its short name, SRU identifier, namespace, and the names a
    client may ask for it by (compared casefolded)."""

    name: str
    identifier: str
    namespace: str
    location: str
    title: str
    aliases: frozenset[str]

    def known_as(self, asked: str) -> bool:
        return asked.strip().casefold() in self.aliases


def _schema(name: str, identifier: str, namespace: str, location: str, title: str,
            *others: str) -> Schema:
    names = {name, identifier, namespace, *others}
    return Schema(name, identifier, namespace, location, title,
                  frozenset(n.casefold() for n in names))


MARCXML = _schema("marcxml", MARCXML_SCHEMA, MARC_NS,
                  "http://www.loc.gov/standards/marcxml/schema/MARC21slim.xsd",
                  "MARCXML (MARC21 slim)", "info:srw/schema/1/marcxml-v1.1-light",
                  "marc21xml")
DUBLIN_CORE = _schema("dc", DC_SCHEMA, SRW_DC_NS,
                      "http://www.loc.gov/standards/sru/recordSchemas/dc-schema.xsd",
                      "Dublin Core (SRU srw_dc)", "info:srw/schema/1/dc-schema", DC_NS)
MODS = _schema("mods", MODS_SCHEMA, MODS_NS,
               "http://www.loc.gov/standards/mods/v3/mods-3-6.xsd",
               "MODS version 3.6", "mods3", "mods-v3.6")
SCHEMAS: tuple[Schema, ...] = (MARCXML, DUBLIN_CORE, MODS)


def schema_named(asked: str) -> Schema | None:
    """The schema a client's ``recordSchema`` names (empty: MARCXML); None if unknown."""
    if not asked.strip():
        return MARCXML
    return next((schema for schema in SCHEMAS if schema.known_as(asked)), None)


def record_element(schema: Schema, record: pymarc.Record, *, flavour: str = "marc21",
                   library: str | None = None) -> etree._Element:
    """One catalogue record in ``schema``. ``library`` is the library a holding that
    names none belongs to (a member's own catalogue)."""
    if schema is MARCXML:
        return marc_element(record, flavour=flavour)
    writer = _WRITERS[schema.name]
    return writer(normalized(record, flavour=flavour, library=library))


def normalized(record: pymarc.Record, *, flavour: str = "marc21",
               library: str | None = None) -> Record:
    """The normalized record of a catalogue's MARC, with the union's 852 holdings read
    in either flavour (and their status), and ``library`` for a holding naming none."""
    found = normalize(record, flavour=flavour)
    held = served_holdings(record, found)
    if library:
        held = tuple(h if h.library else replace(h, library=library) for h in held)
    return replace(found, holdings=held)


# --- Dublin Core ---------------------------------------------------------------------------

# Our material types in the DCMI Type Vocabulary (a map is an image to DC).
_DCMI_TYPES: dict[MaterialType, str] = {
    "book": "Text", "serial": "Text", "article": "Text", "manuscript": "Text",
    "music_score": "Text", "map": "StillImage", "image": "StillImage",
    "video": "MovingImage", "audio": "Sound", "electronic": "Software",
    "mixed": "Collection", "object": "PhysicalObject",
}


def dc_element(record: Record) -> etree._Element:
    """``srw_dc:dc``: the record in the fifteen DC elements, oai_dc style."""
    root = etree.Element(f"{{{SRW_DC_NS}}}dc", nsmap={"srw_dc": SRW_DC_NS, "dc": DC_NS})

    def dc(name: str, value: str | None) -> None:
        if value and value.strip():
            etree.SubElement(root, f"{{{DC_NS}}}{name}").text = xml_text(value.strip())

    dc("title", full_title(record))
    for author in record.authors:
        dc("creator", author)
    for subject in record.subjects:
        dc("subject", subject)
    for classification in record.classification:
        dc("subject", classification.value)
    dc("publisher", record.publisher)
    dc("date", str(record.year) if record.year is not None else None)
    dc("type", _DCMI_TYPES.get(record.material_type))
    dc("type", record.material_type if record.material_type != "other" else None)
    dc("format", record.extent)
    for isbn in record.isbns:
        dc("identifier", f"URN:ISBN:{isbn}")
    for issn in record.issns:
        dc("identifier", f"URN:ISSN:{issn}")
    dc("language", record.language)
    return root


def full_title(record: Record) -> str | None:
    """Title and subtitle as ISBD joins them: DC has one title element."""
    if record.title and record.subtitle:
        return f"{record.title} : {record.subtitle}"
    return record.title or record.subtitle


# --- MODS ----------------------------------------------------------------------------------

_RESOURCE_TYPES: dict[MaterialType, str] = {
    "book": "text", "serial": "text", "article": "text", "manuscript": "text",
    "music_score": "notated music", "map": "cartographic", "image": "still image",
    "video": "moving image", "audio": "sound recording",
    "electronic": "software, multimedia", "mixed": "mixed material",
    "object": "three dimensional object",
}
_ISSUANCE: dict[MaterialType, str] = {"book": "monographic", "serial": "serial"}


def mods_element(record: Record) -> etree._Element:
    """A MODS 3.6 ``mods`` record (the top-level elements in the order LoC's examples
    use; MODS allows any)."""
    root = etree.Element(f"{{{MODS_NS}}}mods", nsmap={None: MODS_NS}, version=MODS_VERSION)

    def add(parent: etree._Element, name: str, text: str | None = None,
            **attrs: str) -> etree._Element:
        element = etree.SubElement(parent, f"{{{MODS_NS}}}{name}", **attrs)
        if text is not None:
            element.text = xml_text(text.strip())
        return element

    if record.title or record.subtitle:
        title = add(root, "titleInfo")
        if record.title:
            add(title, "title", record.title)
        if record.subtitle:
            add(title, "subTitle", record.subtitle)
    if record.romanized and record.romanized.title:
        add(add(root, "titleInfo", type="alternative", displayLabel="romanized"),
            "title", record.romanized.title)
    for position, author in enumerate(record.authors):
        name = add(root, "name", **({"usage": "primary"} if position == 0 else {}))
        add(name, "namePart", author)
        add(add(name, "role"), "roleTerm", "creator", type="text", authority="marcrelator")
    resource = _RESOURCE_TYPES.get(record.material_type)
    if resource:
        add(root, "typeOfResource", resource,
            **({"manuscript": "yes"} if record.material_type == "manuscript" else {}))
    _origin(record, root, add)
    if record.language:
        add(add(root, "language"), "languageTerm", record.language, type="code",
            authority="iso639-2b")
    if record.extent:
        add(add(root, "physicalDescription"), "extent", record.extent)
    if record.responsibility:
        add(root, "note", record.responsibility, type="statement of responsibility")
    for subject in record.subjects:
        add(add(root, "subject"), "topic", subject)
    for classification in record.classification:
        add(root, "classification", classification.value, authority=classification.scheme)
    for isbn in record.isbns:
        add(root, "identifier", isbn, type="isbn")
    for issn in record.issns:
        add(root, "identifier", issn, type="issn")
    for holding in record.holdings:
        _location(holding, root, add)
    if record.id:
        add(add(root, "recordInfo"), "recordIdentifier", record.id)
    return root


_Add = Callable[..., etree._Element]


def _origin(record: Record, root: etree._Element, add: _Add) -> None:
    issuance = _ISSUANCE.get(record.material_type)
    if not (record.place or record.publisher or record.year is not None
            or record.edition or issuance):
        return
    origin = add(root, "originInfo")
    if record.place:
        add(add(origin, "place"), "placeTerm", record.place, type="text")
    if record.publisher:
        add(origin, "publisher", record.publisher)
    if record.year is not None:
        add(origin, "dateIssued", str(record.year), encoding="w3cdtf", keyDate="yes")
    if record.edition:
        add(origin, "edition", record.edition)
    if issuance:
        add(origin, "issuance", issuance)


def _location(holding: Holding, root: etree._Element, add: _Add) -> None:
    """One holding as a MODS location: the library, its call number, and the copy (its
    place in the library, barcode, availability) as holdingSimple."""
    location = add(root, "location")
    if holding.library:
        add(location, "physicalLocation", holding.library)
    if holding.call_number:
        add(location, "shelfLocator", holding.call_number)
    if not (holding.location or holding.barcode or holding.status):
        return
    copy = add(add(location, "holdingSimple"), "copyInformation")
    if holding.location:
        add(copy, "subLocation", holding.location)
    if holding.status:
        note = holding.status + (f", due {holding.due}" if holding.due else "")
        add(copy, "note", note, type="availability")
    if holding.barcode:
        add(copy, "itemIdentifier", holding.barcode, type="barcode")


_WRITERS: dict[str, Callable[[Record], etree._Element]] = {
    DUBLIN_CORE.name: dc_element, MODS.name: mods_element,
}
