"""SRU's XML for the consortium's own SRU server: namespaces, the ZeeRex explain record,
MARCXML record elements, and the SOAP envelopes yaz-client sends by default."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable
from urllib.parse import urlsplit

import pymarc
from lxml import etree

from broker.kernel.cql import _INDEX_ALIASES, INDEXES, TEXT_RELATIONS, YEAR_RELATIONS
from connectors.catalogue import Catalogue
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
BALIS_NS = "urn:balis-broker:sru"  # our extraResponseData (each library's state)
# The context set of the consortium's own indexes (CONTRACTS section 3).
BALIS_CONTEXT_SET = "urn:balis-broker:cql-context-set:1.0"
CONTEXT_SETS = {
    "balis": BALIS_CONTEXT_SET,
    "dc": "info:srw/cql-context-set/1/dc-v1.1",
    "bath": "http://zing.z3950.org/cql/bath/2.0/",
    "cql": "info:srw/cql-context-set/1/cql-v1.2",
}
PRECISION = "info:srw/vocabulary/resultCountPrecision/1/"

DEFAULT_MAXIMUM_RECORDS = 10
MAXIMUM_RECORDS = 100  # larger requests are capped silently (SRU allows fewer records)
_XML_ILLEGAL = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(text: str) -> str:
    """Text XML 1.0 can carry: other control characters become U+FFFD."""
    return _XML_ILLEGAL.sub("\ufffd", text)


def xml_child(parent: etree._Element, ns: str, name: str, text: str | None = None
         ) -> etree._Element:
    element = etree.SubElement(parent, f"{{{ns}}}{name}")
    if text is not None:
        element.text = xml_text(text)
    return element


def serialize(root: etree._Element) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def one_char(text: str | None, default: str = " ") -> str:
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
                                ind1=one_char(field.indicator1), ind2=one_char(field.indicator2))
        for subfield in field.subfields:
            code, value = subfield.code, subfield.value
            element = etree.SubElement(data, f"{{{MARC_NS}}}subfield", code=one_char(code, "?"))
            element.text = xml_text(value or "")
    return root


# --- SRW: SRU over SOAP (yaz-client's default) ---------------------------------------------

def explain_record(catalogue: Catalogue, base_url: str, database: str,
                   version: str = "1.2") -> etree._Element:
    """The ZeeRex 2.0 description of one database."""
    def sub(parent: etree._Element, tag: str, text: str | None = None, /,
            **attrs: str) -> etree._Element:
        element = etree.SubElement(parent, f"{{{EXPLAIN_NS}}}{tag}", **attrs)
        if text is not None:
            element.text = xml_text(text)
        return element

    url = urlsplit(base_url)
    root = etree.Element(f"{{{EXPLAIN_NS}}}explain", nsmap={None: EXPLAIN_NS})
    server = sub(root, "serverInfo", protocol="SRU", version=version,
                 transport=url.scheme or "http", method="GET POST")
    sub(server, "host", url.hostname or "localhost")
    sub(server, "port", str(url.port or (443 if url.scheme == "https" else 80)))
    sub(server, "database", url.path.strip("/") or database)

    flavour = getattr(catalogue, "flavour", "marc21")
    info = sub(root, "databaseInfo")
    sub(info, "title", getattr(catalogue, "title", None) or catalogue.name, primary="true")
    description = getattr(catalogue, "description", None) or (
        f"{catalogue.name}: searched with CQL over the BALIS indexes; records in MARCXML")
    sub(info, "description", description, lang="en", primary="true")

    index_info = sub(root, "indexInfo")
    for name, identifier in CONTEXT_SETS.items():
        sub(index_info, "set", name=name, identifier=identifier)
    aliases: dict[str, list[str]] = {index: [] for index in INDEXES}
    for alias, index in _INDEX_ALIASES.items():
        aliases[index].append(alias)
    for index in INDEXES:
        entry = sub(index_info, "index", search="true", scan="false", sort="false",
                    id=f"balis.{index}")
        sub(entry, "title", index, lang="en")
        mapped = sub(entry, "map")
        sub(mapped, "name", index, set="balis")
        for alias in sorted(aliases[index]):
            context, _, name = alias.partition(".")
            if name and context in CONTEXT_SETS and context != "balis":
                sub(sub(entry, "map"), "name", name, set=context)
        config = sub(entry, "configInfo")
        for relation in (YEAR_RELATIONS if index == "year" else TEXT_RELATIONS):
            sub(config, "supports", relation, type="relation")

    schemas = sub(root, "schemaInfo")
    schema = sub(schemas, "schema", identifier=MARCXML_SCHEMA, name="marcxml",
                 location="http://www.loc.gov/standards/marcxml/schema/MARC21slim.xsd",
                 sort="false", retrieve="true")
    sub(schema, "title", "MARCXML (MARC21 slim)" if flavour == "marc21"
        else "MARCXML (MARC21 slim syntax, UNIMARC/CNMARC content)", lang="en")

    config = sub(root, "configInfo")
    sub(config, "default", str(DEFAULT_MAXIMUM_RECORDS), type="numberOfRecords")
    sub(config, "default", "balis", type="contextSet")
    sub(config, "default", "any", type="index")
    sub(config, "default", "=", type="relation")
    sub(config, "setting", str(MAXIMUM_RECORDS), type="maximumRecords")
    sub(config, "supports", "*", type="maskingCharacter")
    return root


# --- failures ------------------------------------------------------------------------------


SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
_SOAP_OPERATIONS = {"searchRetrieveRequest": "searchRetrieve", "explainRequest": "explain",
                    "scanRequest": "scan"}


def soap_params(body: bytes) -> dict[str, str] | None:
    """The parameters of an SRW (SOAP) request, as if sent in a query string; None when
    the body is not a SOAP envelope holding an SRU request."""
    try:
        root = etree.fromstring(body, safe_parser())
    except etree.XMLSyntaxError:
        return None
    if root.tag != f"{{{SOAP_NS}}}Envelope":
        return None
    soap_body = root.find(f"{{{SOAP_NS}}}Body")
    request = next((child for child in soap_body if isinstance(child.tag, str)), None) \
        if soap_body is not None else None
    if request is None:
        return None
    name = etree.QName(request).localname
    params = {"operation": _SOAP_OPERATIONS.get(name, name)}
    for child in request:
        if isinstance(child.tag, str) and len(child) == 0:
            params[etree.QName(child).localname] = (child.text or "").strip()
    return params


NOT_SRU_POST = "not an SRU request: a POST body must be a form or an SRW (SOAP) envelope\n"


def request_params(query: Iterable[tuple[str, object]], *, form: Iterable[tuple[str, object]] = (),
                   soap_body: bytes | None = None) -> tuple[dict[str, str], bool] | None:
    """An HTTP request's SRU parameters, whatever the web framework: the query string's
    (the first of each name) with a POSTed form's added, or, for an XML POST, the SOAP
    envelope's instead. Returns (parameters, whether SOAP); None for an XML body that is
    not an SRW request (the caller answers 400 with NOT_SRU_POST)."""
    if soap_body is not None:
        found = soap_params(soap_body)
        return None if found is None else (found, True)
    params: dict[str, str] = {}
    for key, value in itertools.chain(query, form):
        if isinstance(value, str):  # a form's file upload is no SRU parameter
            params.setdefault(key, value)
    return params, False


def soap_envelope(body: bytes) -> bytes:
    """An SRU response wrapped in a SOAP envelope."""
    envelope = etree.Element(f"{{{SOAP_NS}}}Envelope", nsmap={"SOAP-ENV": SOAP_NS})
    holder = etree.SubElement(envelope, f"{{{SOAP_NS}}}Body")
    holder.append(etree.fromstring(body, safe_parser()))
    return serialize(envelope)


# --- the aiohttp server --------------------------------------------------------------------
