"""Records as our Z39.50 server sends them: which syntax a request gets, and the bytes.

ISO 2709 goes out in the catalogue's own flavour (USMARC or UNIMARC, whichever was asked
for) and in UTF-8 or, without negotiation, the charset the catalogue speaks; MARCXML is
always UTF-8. A record that cannot be written so is a ``Bib1`` 238 for that record alone.
"""

from __future__ import annotations

import codecs
import xml.etree.ElementTree as ET

import pymarc
from pymarc.marcxml import record_to_xml_node

from broker.kernel.errors import MarcError
from connectors.catalogue import Catalogue
from connectors.z3950.apdu import SYNTAX, Z3950, dotted
from connectors.z3950.diagnostics import Bib1
from marc.writer import iso2709

USMARC, UNIMARC = SYNTAX["usmarc"], SYNTAX["unimarc"]
XML_SYNTAXES = {SYNTAX["xml"], (*Z3950, 5, 109, 3)}  # text-XML, application-XML
_XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'


def catalogue_encoding(catalogue: Catalogue) -> str:
    """What a catalogue's records and terms travel in without negotiation (an optional
    ``encoding`` attribute: LocalCatalogue plays a GB18030-speaking member with it)."""
    name = getattr(catalogue, "encoding", None) or "utf-8"
    try:
        return "utf-8" if codecs.lookup(name).name == "utf-8" else name
    except LookupError:
        return "utf-8"


def record_syntax(requested: tuple[int, ...] | None, flavour: str) -> tuple[int, ...]:
    """The syntax records of a catalogue of this flavour go out in, for the one asked."""
    native = UNIMARC if flavour == "unimarc" else USMARC
    if requested is None or requested in (USMARC, UNIMARC):
        return native  # ISO 2709 in the catalogue's own flavour, labelled as such
    if requested in XML_SYNTAXES:
        return requested
    raise Bib1(239, dotted(requested))


def encode_record(record: pymarc.Record, flavour: str, syntax: tuple[int, ...],
                  encoding: str = "utf-8") -> bytes:
    """A record in a syntax: MARCXML (UTF-8), or ISO 2709 in ``encoding`` (``marc.writer``:
    pymarc writes only UTF-8 or Latin-1). A MARC21 record's leader/09 says whether
    it is UTF-8 ('a') or not (blank); UNIMARC keeps its own. The record is not changed."""
    if syntax in XML_SYNTAXES:
        node = record_to_xml_node(record, namespace=True)
        return _XML_DECLARATION + ET.tostring(node, encoding="utf-8")
    coding = None if flavour == "unimarc" else "a" if encoding == "utf-8" else " "
    try:
        return iso2709(record, encoding, coding=coding)
    except MarcError as exc:
        raise Bib1(238, f"{exc}; ask for XML") from None
