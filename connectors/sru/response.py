"""Writing our server's SRU answers: searchRetrieve responses (records, diagnostics, each
member library's state), explain responses with their ZeeRex record, and the envelope of a
request that failed. Element order is as YAZ writes it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from urllib.parse import urlsplit

import pymarc
from lxml import etree

from broker.kernel.cql import (
    CONTEXT_SETS,
    INDEX_ALIASES,
    INDEXES,
    TEXT_RELATIONS,
    YEAR_RELATIONS,
)
from connectors.catalogue import SCAN_INDEXES, Catalogue, ResultSet, scanner
from connectors.sru.diagnostics import SruDiagnostic, diagnostic_element
from connectors.sru.request import DEFAULT_MAXIMUM_RECORDS, MAXIMUM_RECORDS, Retrieval, SruRequest
from connectors.sru.scan import scan_failure
from connectors.sru.schemas import MARCXML, SCHEMAS, record_element
from connectors.sru.xml import (
    BALIS_NS,
    DIAGNOSTIC_SCHEMA,
    EXPLAIN_NS,
    EXPLAIN_SCHEMA,
    PRECISION,
    add_child,
    serialize,
    xml_text,
)

logger = logging.getLogger(__name__)


# --- searchRetrieve ------------------------------------------------------------------------


def search_response(request: SruRequest, result: ResultSet, hits: int,
                    records: Sequence[pymarc.Record | None], retrieval: Retrieval,
                    flavour: str, diagnostics: Sequence[SruDiagnostic], *,
                    library: str | None = None) -> bytes:
    """``records`` are those from ``retrieval.start`` on (None: one that could not be
    fetched), in ``retrieval.schema``; ``diagnostics`` the non-fatal ones. ``library``
    owns the holdings that name no library (DC and MODS)."""
    ns = request.ns
    start = retrieval.start
    root = etree.Element(f"{{{ns}}}searchRetrieveResponse", nsmap={"zs": ns})
    if not request.v2:
        add_child(root, ns, "version", request.version)
    add_child(root, ns, "numberOfRecords", str(hits))
    if records:
        holder = add_child(root, ns, "records")
        for offset, record in enumerate(records):
            _add_record(request, holder, record, start + offset, retrieval, flavour, library)
    following = start + len(records)
    if records and following <= hits:
        add_child(root, ns, "nextRecordPosition", str(following))
    elif not records and retrieval.maximum == 0 and start <= hits:
        add_child(root, ns, "nextRecordPosition", str(start))
    if diagnostics:
        _add_diagnostics(request, root, diagnostics)
    libraries = getattr(result, "libraries", None)
    precision = getattr(result, "precision", "exact")
    if libraries:
        _add_libraries(add_child(root, ns, "extraResponseData"), libraries,
                       depth=getattr(result, "depth", None), precision=precision)
    if request.v2:  # SRU 1.x has no resultCountPrecision: there it is in extraResponseData
        add_child(root, ns, "resultCountPrecision", PRECISION + precision)
    return serialize(root)


def _add_record(request: SruRequest, holder: etree._Element, record: pymarc.Record | None,
                position: int, retrieval: Retrieval, flavour: str, library: str | None) -> None:
    ns = request.ns
    element = None
    problem = None
    wanted = retrieval.schema
    if record is None:
        problem = "the record could not be retrieved"
    else:
        try:
            element = record_element(wanted, record, flavour=flavour, library=library)
        except Exception as exc:  # one bad record must not cost the page
            logger.exception("SRU: record %d could not be written in %s", position,
                             wanted.name)
            problem = f"the record could not be written in {wanted.name}: {exc}"
    if element is None:
        surrogate = SruDiagnostic(64, str(position), problem)
        element = diagnostic_element(surrogate, v2=request.v2)
        schema = DIAGNOSTIC_SCHEMA
    else:
        schema = wanted.identifier
    entry = add_child(holder, ns, "record")
    add_child(entry, ns, "recordSchema", schema)
    add_child(entry, ns, _packing_name(request), retrieval.packing)
    data = add_child(entry, ns, "recordData")
    if retrieval.packing == "string":
        data.text = etree.tostring(element, encoding="unicode")
    else:
        data.append(element)
    add_child(entry, ns, "recordPosition", str(position))


def _packing_name(request: SruRequest) -> str:
    return "recordXMLEscaping" if request.v2 else "recordPacking"


def _add_libraries(holder: etree._Element, libraries: list[dict], *, depth: int | None,
                   precision: str) -> None:
    """Each member library's state in a union search (CONTRACTS section 5's fields;
    ``fetched``: its records in the merged set), with the depth the set was fetched to
    and its count's precision (``exact`` or ``minimum``)."""
    element = etree.SubElement(holder, f"{{{BALIS_NS}}}libraries", nsmap={"balis": BALIS_NS})
    element.set("precision", precision)
    if depth is not None:
        element.set("depth", str(depth))
    for library in libraries:
        item = etree.SubElement(element, f"{{{BALIS_NS}}}library")
        for key in ("id", "status", "hits", "fetched", "error"):
            value = library.get(key)
            if value is not None:
                item.set(key, xml_text(str(value)))


# --- failures ------------------------------------------------------------------------------


def failure_response(request: SruRequest, diag: SruDiagnostic) -> bytes:
    """A fatal diagnostic in the envelope of the operation that was asked for."""
    if request.asked_operation == "scan" or (
            "scanClause" in request.params and "operation" not in request.params):
        return scan_failure(request, diag)  # in scan's envelope (connectors/sru/scan.py)
    ns = request.ns
    explain = request.asked_operation == "explain"
    name = "explainResponse" if explain else "searchRetrieveResponse"
    root = etree.Element(f"{{{ns}}}{name}", nsmap={"zs": ns})
    if explain or not request.v2:
        add_child(root, ns, "version", request.version)
    if not explain:
        add_child(root, ns, "numberOfRecords", "0")
    _add_diagnostics(request, root, [diag])
    return serialize(root)


def _add_diagnostics(request: SruRequest, parent: etree._Element,
                     diagnostics: Sequence[SruDiagnostic]) -> None:
    holder = add_child(parent, request.ns, "diagnostics")
    for diag in diagnostics:
        holder.append(diagnostic_element(diag, v2=request.v2))


# --- explain -------------------------------------------------------------------------------


def explain_response(request: SruRequest, catalogue: Catalogue, base_url: str,
                     database: str) -> bytes:
    ns = request.ns
    root = etree.Element(f"{{{ns}}}explainResponse", nsmap={"zs": ns})
    add_child(root, ns, "version", request.version)
    record = add_child(root, ns, "record")
    add_child(record, ns, "recordSchema", EXPLAIN_SCHEMA)
    add_child(record, ns, _packing_name(request), "xml")
    data = add_child(record, ns, "recordData")
    data.append(explain_record(catalogue, base_url, database, request.version))
    add_child(record, ns, "recordPosition", "1")
    return serialize(root)


def explain_record(catalogue: Catalogue, base_url: str, database: str,
                   version: str = "1.2") -> etree._Element:
    """The ZeeRex 2.0 description of one database."""
    def sub(parent: etree._Element, tag: str, text: str | None = None, /,
            **attrs: str) -> etree._Element:
        return add_child(parent, EXPLAIN_NS, tag, text, **attrs)

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
        f"{catalogue.name}: searched with CQL over the BALIS indexes; records in MARCXML, "
        "Dublin Core or MODS")
    sub(info, "description", description, lang="en", primary="true")

    index_info = sub(root, "indexInfo")
    for name, identifier in CONTEXT_SETS.items():
        sub(index_info, "set", name=name, identifier=identifier)
    aliases: dict[str, list[str]] = {index: [] for index in INDEXES}
    for alias, index in INDEX_ALIASES.items():
        aliases[index].append(alias)
    browses = scanner(catalogue) is not None
    for index in INDEXES:
        scan = "true" if browses and index in SCAN_INDEXES else "false"
        entry = sub(index_info, "index", search="true", scan=scan, sort="false",
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
    for offered in SCHEMAS:
        schema = sub(schemas, "schema", identifier=offered.identifier, name=offered.name,
                     location=offered.location, sort="false", retrieve="true")
        title = offered.title
        if offered is MARCXML and flavour != "marc21":
            title = "MARCXML (MARC21 slim syntax, UNIMARC/CNMARC content)"
        sub(schema, "title", title, lang="en")

    config = sub(root, "configInfo")
    sub(config, "default", str(DEFAULT_MAXIMUM_RECORDS), type="numberOfRecords")
    sub(config, "default", "balis", type="contextSet")
    sub(config, "default", "any", type="index")
    sub(config, "default", "=", type="relation")
    sub(config, "setting", str(MAXIMUM_RECORDS), type="maximumRecords")
    sub(config, "supports", "*", type="maskingCharacter")
    return root
