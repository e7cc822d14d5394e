"""Records as our Z39.50 server sends them: which syntax a request gets, and the bytes.

ISO 2709 goes out in the flavour asked for (USMARC/MARC21 or UNIMARC) when the catalogue
can give it (``connectors.catalogue.catalogue_flavours``: the union writes either, a MARC
file only its own); a request for a flavour the catalogue does not have is a Bib-1 238
whose addinfo is the syntax it has (Bib-1's "suggested alternative syntax"), never records
labelled as one flavour and written in the other. No syntax asked: the catalogue's own.
ISO 2709 is in UTF-8 or, without negotiation, the charset the catalogue speaks; MARCXML is
always UTF-8. A record that cannot be written so is a ``Bib1`` 238 for that record alone.

OPAC (``opac.py``) carries the catalogue's own MARC with every library's holdings and their
availability; SUTRS (``sutrs.py``) is the normalized record as text. Both go in the same
charset as ISO 2709, and both take their holdings from the record's 852s where it has
them (the union writes every library's there, with status and due date:
``marc.writer.served_holdings``), else from what ``marc.normalize`` reads (a member's 852,
or CNMARC's 905/906).
"""

from __future__ import annotations

import codecs
import xml.etree.ElementTree as ET

import pymarc
from pymarc.marcxml import record_to_xml_node

from broker.kernel.errors import MarcError
from connectors.catalogue import Catalogue
from connectors.z3950 import ber
from connectors.z3950.apdu import SYNTAX, Z3950, dotted
from connectors.z3950.ber import UNIVERSAL
from connectors.z3950.diagnostics import Bib1
from connectors.z3950.opac import opac_record
from connectors.z3950.server_pdu import ASN1_SYNTAXES
from connectors.z3950.sutrs import sutrs_text
from marc import normalize
from marc.writer import iso2709, served_holdings

USMARC, UNIMARC = SYNTAX["usmarc"], SYNTAX["unimarc"]
OPAC, SUTRS = SYNTAX["opac"], SYNTAX["sutrs"]
_ISO2709 = {"marc21": USMARC, "unimarc": UNIMARC}  # flavour -> its record syntax
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


def record_syntax(requested: tuple[int, ...] | None, flavours: tuple[str, ...]
                  ) -> tuple[tuple[int, ...], str]:
    """The syntax records go out in for the one asked, and the flavour they are written
    in, from a catalogue that can write ``flavours`` (its own first)."""
    native = flavours[0]
    if requested is None or requested in XML_SYNTAXES or requested in ASN1_SYNTAXES:
        return requested or _ISO2709[native], native
    wanted = next((flavour for flavour, oid in _ISO2709.items() if oid == requested), None)
    if wanted is None:
        raise Bib1(239, dotted(requested))
    if wanted not in flavours:
        raise Bib1(238, dotted(_ISO2709[native]))
    return requested, wanted


def encode_record(record: pymarc.Record, flavour: str, syntax: tuple[int, ...],
                  encoding: str = "utf-8") -> bytes:
    """A record in a syntax: MARCXML (UTF-8), OPAC or SUTRS (their encoded ASN.1 value),
    or ISO 2709 in ``encoding`` (``marc.writer``:
    pymarc writes only UTF-8 or Latin-1). A MARC21 record's leader/09 says whether
    it is UTF-8 ('a') or not (blank); UNIMARC keeps its own. The record is not changed."""
    if syntax in XML_SYNTAXES:
        node = record_to_xml_node(record, namespace=True)
        return _XML_DECLARATION + ET.tostring(node, encoding="utf-8")
    if syntax == OPAC:
        marc = encode_record(record, flavour, _ISO2709[flavour], encoding)
        held = served_holdings(record, normalize(record, flavour=flavour))
        return opac_record(marc, _ISO2709[flavour], held, encoding)
    if syntax == SUTRS:
        normalized = normalize(record, flavour=flavour)
        text = sutrs_text(normalized, served_holdings(record, normalized))
        # SUTRS ::= InternationalString, as a GeneralString.
        return ber.octets(text.encode(encoding, "replace"), UNIVERSAL, ber.GENERAL_STRING)
    coding = None if flavour == "unimarc" else "a" if encoding == "utf-8" else " "
    try:
        return iso2709(record, encoding, coding=coding)
    except MarcError as exc:
        raise Bib1(238, f"{exc}; ask for XML") from None
