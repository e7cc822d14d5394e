"""SRU's XML, for our client and our server alike: the namespaces, reading elements by local
name, writing elements with text XML can carry, MARCXML record elements, and the SOAP
envelope yaz-client expects around an answer to an SRW request.

Answers are read by local names so that the three SRU versions' namespaces (and their
diagnostics') need no special cases.
"""

from __future__ import annotations

import re

import pymarc
from lxml import etree

from marc.marcxml import safe_parser

SRU_NS_1 = "http://www.loc.gov/zing/srw/"
SRU_NS_2 = "http://docs.oasis-open.org/ns/search-ws/sruResponse"
DIAG_NS_1 = "http://www.loc.gov/zing/srw/diagnostic/"
DIAG_NS_2 = "http://docs.oasis-open.org/ns/search-ws/diagnostic"
EXPLAIN_NS = "http://explain.z3950.org/dtd/2.0/"
EXPLAIN_SCHEMA = "http://explain.z3950.org/dtd/2.0/"
MARC_NS = "http://www.loc.gov/MARC21/slim"
MARCXML_SCHEMA = "info:srw/schema/1/marcxml-v1.1"
DIAGNOSTIC_SCHEMA = "info:srw/schema/1/diagnostics-v1.1"
SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
BALIS_NS = "urn:balis-broker:sru"  # our extraResponseData (each library's state)
PRECISION = "info:srw/vocabulary/resultCountPrecision/1/"

_XML_ILLEGAL = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


# --- reading -------------------------------------------------------------------------------


def local_name(tag: object) -> str:
    """An element's name without its namespace; "" for comments and processing
    instructions (whose tag is not a string)."""
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""


def find_child(elem: etree._Element, name: str) -> etree._Element | None:
    """The first child called ``name`` in whatever namespace."""
    for child in elem:
        if local_name(child.tag) == name:
            return child
    return None


def child_text(elem: etree._Element, name: str) -> str | None:
    """The stripped text of the first child called ``name``; None if absent or empty."""
    child = find_child(elem, name)
    return child.text.strip() if child is not None and child.text else None


# --- writing -------------------------------------------------------------------------------


def xml_text(text: str) -> str:
    """Text XML 1.0 can carry: other control characters become U+FFFD."""
    return _XML_ILLEGAL.sub("\ufffd", text)


def add_child(parent: etree._Element, ns: str, name: str, text: str | None = None, /,
              **attrs: str) -> etree._Element:
    """A new last child of ``parent``; its text made safe for XML (``attrs`` are taken as
    they are: the callers' own values)."""
    element = etree.SubElement(parent, f"{{{ns}}}{name}", **attrs)
    if text is not None:
        element.text = xml_text(text)
    return element


def serialize(root: etree._Element) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _one_char(text: str | None, default: str = " ") -> str:
    value = xml_text(text or "")[:1]
    return value if value.strip() or value == " " else default


def marc_element(record: pymarc.Record, *, flavour: str = "marc21") -> etree._Element:
    """A pymarc record as a MARC21-slim ``record`` element (UNIMARC content keeps its tags).

    A MARC21 leader says UTF-8 (leader/09 ``a``): the text is Unicode now, whatever the
    record was read from. Characters XML cannot carry become U+FFFD.
    """
    root = etree.Element(f"{{{MARC_NS}}}record", nsmap={None: MARC_NS})
    leader = xml_text(str(record.leader or "")).ljust(24)[:24]
    if flavour == "marc21":
        leader = leader[:9] + "a" + leader[10:]
    etree.SubElement(root, f"{{{MARC_NS}}}leader").text = leader
    for field in record.fields:
        tag = xml_text(str(field.tag))
        if field.is_control_field():
            control = etree.SubElement(root, f"{{{MARC_NS}}}controlfield", tag=tag)
            control.text = xml_text(field.data or "")
            continue
        data = etree.SubElement(root, f"{{{MARC_NS}}}datafield", tag=tag,
                                ind1=_one_char(field.indicator1),
                                ind2=_one_char(field.indicator2))
        for subfield in field.subfields:
            code, value = subfield.code, subfield.value
            element = etree.SubElement(data, f"{{{MARC_NS}}}subfield",
                                       code=_one_char(code, "?"))
            element.text = xml_text(value or "")
    return root


def soap_envelope(body: bytes) -> bytes:
    """An SRU response wrapped in a SOAP envelope (the answer to an SRW request)."""
    envelope = etree.Element(f"{{{SOAP_NS}}}Envelope", nsmap={"SOAP-ENV": SOAP_NS})
    holder = etree.SubElement(envelope, f"{{{SOAP_NS}}}Body")
    holder.append(etree.fromstring(body, safe_parser()))
    return serialize(envelope)
