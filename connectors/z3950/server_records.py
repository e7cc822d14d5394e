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

from connectors.catalogue import Catalogue
from connectors.z3950.apdu import SYNTAX, Z3950, dotted
from connectors.z3950.diagnostics import Bib1

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
    """A record in a syntax: MARCXML (UTF-8), or ISO 2709 in ``encoding``, written here
    because pymarc writes only UTF-8 or Latin-1. A MARC21 record's leader/09 says whether
    it is UTF-8 ('a') or not (blank); UNIMARC keeps its own. The record is not changed."""
    if syntax in XML_SYNTAXES:
        node = record_to_xml_node(record, namespace=True)
        return _XML_DECLARATION + ET.tostring(node, encoding="utf-8")
    directory, fields, offset = [], [], 0
    for field in record.fields:
        data = field.as_marc(encoding=encoding)
        if len(data) > 9999:
            raise Bib1(238, f"field {field.tag} is too long for ISO 2709; ask for XML")
        directory.append(f"{field.tag:0>3}{len(data):04d}{offset:05d}".encode("ascii"))
        fields.append(data)
        offset += len(data)
    base = 24 + 12 * len(directory) + 1
    if base + offset + 1 > 99999:
        raise Bib1(238, f"the record is longer than ISO 2709 allows ({base + offset + 1} "
                        "bytes); ask for XML")
    leader = str(record.leader).ljust(24)[:24]
    coding = leader[9] if flavour == "unimarc" else "a" if encoding == "utf-8" else " "
    leader = f"{base + offset + 1:05d}{leader[5:9]}{coding}{leader[10:12]}{base:05d}{leader[17:]}"
    return (leader.encode("ascii", "replace") + b"".join(directory) + b"\x1e"
            + b"".join(fields) + b"\x1d")
