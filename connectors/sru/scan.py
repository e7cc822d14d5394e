"""SRU ``scan`` on our server: an index's headings from a catalogue that can browse.

``scanClause`` is one CQL clause, index and start term (``title = perl``; ``dc.title``,
``bath.name`` and the other names broker.kernel.cql knows are the same indexes);
``maximumTerms`` (default 20, at most 200: SRU lets a server return fewer) and
``responsePosition`` (default 1; 0 .. maximumTerms + 1) place the start term as Z39.50's
Scan does. Headings and their counts are the catalogue's (``ScannableCatalogue``).
Diagnostics: 4 for a catalogue that cannot browse (a union without a union index), 7 a
missing scanClause, 6 a bad number, 10 a clause that is not one, 16 an index without
headings (year, call number), 19 a relation other than ``=``/``==``/``>=``, 120 a
response position outside the list.

Versions 1.1 and 1.2 answer in ``http://www.loc.gov/zing/srw/``, 2.0 in its scan
namespace; a failure is a scanResponse with the diagnostic.
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from broker.kernel.cql import Clause, parse
from broker.kernel.errors import ConnectorError, QueryError, UnsupportedQuery
from broker.kernel.pqf import PqfTerm, parse_pqf
from connectors.catalogue import SCAN_INDEXES, Catalogue, ScanIndex, ScanPage, scanner
from connectors.sru.diagnostics import (
    SruDiagnostic,
    diagnostic_element,
    explained,
    query_diagnostic,
)
from connectors.sru.request import SruRequest
from connectors.sru.xml import add_child, serialize
from connectors.z3950.server_rpn import USE_ATTRIBUTES

SCAN_NS_2 = "http://docs.oasis-open.org/ns/search-ws/scan"
DEFAULT_TERMS = 20
MAXIMUM_TERMS = 200
_START_RELATIONS = ("=", "==", ">=", "scr", "exact", "adj")


@dataclass(frozen=True, slots=True)
class ScanAsk:
    index: ScanIndex
    term: str
    count: int
    position: int


def scan_ask(request: SruRequest) -> ScanAsk:
    params = request.params
    count = min(_number(params, "maximumTerms", DEFAULT_TERMS, 1), MAXIMUM_TERMS)
    position = _number(params, "responsePosition", 1, 0)
    if position > count + 1:
        raise SruDiagnostic(120, str(position), f"Response position out of range: "
                            f"{position} for {count} terms")
    clause_text = params.get("scanClause", "")
    if not clause_text.strip() and params.get("x-pScanClause", "").strip():
        return ScanAsk(*_from_pqf(params["x-pScanClause"]), count, position)
    if not clause_text.strip():
        raise SruDiagnostic(7, "scanClause", "Mandatory parameter not supplied: scanClause")
    try:
        clause = parse(clause_text)
    except QueryError as exc:
        raise query_diagnostic(exc) from None  # as searchRetrieve words it
    if not isinstance(clause, Clause):
        raise explained(10, clause_text, "a scanClause is one index, relation and term")
    if clause.index not in SCAN_INDEXES:
        raise explained(16, clause.index, f"{clause.index} has no headings to browse")
    if clause.relation not in _START_RELATIONS:
        raise explained(19, clause.relation, f"scan starts at a term: {clause.relation!r}")
    index: ScanIndex = clause.index  # narrowed by the check above
    return ScanAsk(index, clause.term, count, position)


def _from_pqf(text: str) -> tuple[ScanIndex, str]:
    """YAZ's ``x-pScanClause`` (what zoomsh and yaz-client send for a PQF scan over SRU:
    ``@attr 1=4 perl``): the Bib-1 use attribute names the index as in a Z39.50 Scan; the
    others only say how to match, which whole headings ignore."""
    try:
        start = parse_pqf(text)
    except QueryError as exc:
        raise explained(10, text, str(exc)) from None
    if not isinstance(start, PqfTerm):
        raise explained(10, text, "a scan clause is one term")
    use = dict(start.attributes).get(1, 1016)
    index = USE_ATTRIBUTES.get(use) if isinstance(use, int) else None
    if index not in SCAN_INDEXES:
        raise explained(16, str(use), f"the Bib-1 use attribute {use} has no headings")
    return index, start.term


def _number(params, name: str, default: int, minimum: int) -> int:
    text = (params.get(name) or "").strip()
    if not text:
        return default
    if not text.isdigit() or int(text) < minimum or len(text) > 9:
        raise SruDiagnostic(6, name, f"Unsupported parameter value: {name} must be a whole "
                            f"number of at least {minimum}, not {text!r}")
    return int(text)


async def scan_answer(request: SruRequest, catalogue: Catalogue) -> bytes:
    """The scanResponse: the catalogue's headings, or raises the SruDiagnostic."""
    browser = scanner(catalogue)
    if browser is None:
        raise SruDiagnostic(4, "scan", "Unsupported operation: this database cannot be "
                            "browsed (scan needs a union index or a local catalogue)")
    ask = scan_ask(request)
    try:
        page = await browser.scan(ask.index, ask.term, count=ask.count, position=ask.position)
    except UnsupportedQuery as exc:
        raise explained(16, ask.index, str(exc)) from None
    except ConnectorError as exc:
        raise explained(2, str(exc), str(exc)) from None
    return serialize(_envelope(request, page))


def scan_failure(request: SruRequest, diag: SruDiagnostic) -> bytes:
    root = _envelope(request, None)
    holder = add_child(root, _ns(request), "diagnostics")
    holder.append(diagnostic_element(diag, v2=request.v2))
    return serialize(root)


def _ns(request: SruRequest) -> str:
    return SCAN_NS_2 if request.v2 else request.ns


def _envelope(request: SruRequest, page: ScanPage | None) -> etree._Element:
    ns = _ns(request)
    root = etree.Element(f"{{{ns}}}scanResponse", nsmap={"zs": ns})
    add_child(root, ns, "version", request.version)  # 2.0 keeps it in scan, as YAZ does
    if page is not None and page.terms:
        terms = add_child(root, ns, "terms")
        for found in page.terms:
            term = add_child(terms, ns, "term")
            add_child(term, ns, "value", found.term)
            add_child(term, ns, "numberOfRecords", str(found.records))
    return root
