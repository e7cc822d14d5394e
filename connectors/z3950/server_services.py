"""The Z39.50 services our server answers besides Init, Search, Present and Close.

Delete is done (named result sets are ours to drop). Scan is answered from a catalogue that
can browse its indexes (``connectors.catalogue.ScannableCatalogue``: the MARC-file
catalogues, a union with a union index member), with Bib-1 1025 from one that cannot.
Sort is done by
connectors/z3950/server_sort.py for a result set that can be sorted. Extended Services and
Duplicate Detection are refused, each with its own response and a Bib-1 diagnostic, because
a Close would end the association and with it the client's result sets: the standard gives
every one of these requests a response that can say "failure", so a refusal is never a
reason to hang up. Bib-1 has no "scan not supported" or "sort not supported" condition;
1025 "service not supported for this database" is the one YAZ names for it, and 221 the
one for an extended service.

ASN.1 as in Z39-50-APDU-1995 (default EXPLICIT tagging, IMPLICIT where stated).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from broker.kernel.errors import ConnectorError, ProtocolError, UnsupportedQuery
from connectors.catalogue import SCAN_INDEXES, Catalogue, ScanIndex, ScanPage, scanner
from connectors.z3950 import ber
from connectors.z3950.apdu import BIB1_ATTRIBUTES, dotted, reference_id
from connectors.z3950.ber import CONTEXT, UNIVERSAL
from connectors.z3950.diagnostics import Bib1
from connectors.z3950.rpn import COMPLETENESS, POSITION, RELATION, STRUCTURE, TRUNCATION, USE
from connectors.z3950.server_pdu import diag_format, small_int
from connectors.z3950.server_rpn import USE_ATTRIBUTES

SCAN_REQUEST, SCAN_RESPONSE = 35, 36
SORT_REQUEST, SORT_RESPONSE = 43, 44
DELETE_REQUEST, DELETE_RESPONSE = 26, 27
ES_REQUEST, ES_RESPONSE = 46, 47
DUPLICATE_REQUEST, DUPLICATE_RESPONSE = 49, 50

SERVICE_UNSUPPORTED = 1025  # Bib-1: service not supported for this database
ES_TYPE_UNSUPPORTED = 221  # Bib-1: ES: extended service type not supported
MAX_SCAN_TERMS = 200  # headings in one Scan response at most (partial-4 beyond)

logger = logging.getLogger(__name__)


def reference(node: ber.Node) -> bytes | None:
    """referenceId [2] IMPLICIT OCTET STRING OPTIONAL, which every response echoes."""
    child = node.context(2)
    return child.as_bytes() if child is not None else None


def _diag_recs(number: int, code: int, addinfo: str) -> bytes:
    """[number] IMPLICIT SEQUENCE OF DiagRec, one DiagRec ::= CHOICE { defaultFormat
    DefaultDiagFormat, ... } long."""
    return ber.seq(CONTEXT, number, [ber.seq(UNIVERSAL, ber.SEQUENCE,
                                             diag_format(code, addinfo))])


def _text(node: ber.Node) -> str:
    return node.as_bytes().decode("utf-8", "replace")


# --- Scan ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScanRequest:
    reference: bytes | None
    databases: tuple[bytes, ...]
    attribute_set: ber.Node | None
    start: ber.Node | None  # the AttributesPlusTerm, read by scan_start once the charset is known
    step_size: int
    count: int
    position: int


def read_scan_request(node: ber.Node) -> ScanRequest:
    """ScanRequest ::= SEQUENCE { referenceId OPTIONAL, databaseNames [3] IMPLICIT SEQUENCE
        OF DatabaseName, attributeSet AttributeSetId OPTIONAL, termListAndStartPoint
        AttributesPlusTerm, stepSize [5] IMPLICIT INTEGER OPTIONAL, numberOfTermsRequested
        [6] IMPLICIT INTEGER, preferredPositionInResponse [7] IMPLICIT INTEGER OPTIONAL,
        otherInfo OPTIONAL }
    A missing part is a diagnostic in the response (``answer_scan``), not a Close."""
    names = node.context(3)

    def number(tag: int, default: int) -> int:
        child = node.context(tag)
        return small_int(child) if child is not None else default

    return ScanRequest(reference(node),
                       tuple(child.as_bytes() for child in names.children) if names else (),
                       node.child(UNIVERSAL, ber.OID), node.context(102),
                       number(5, 0), number(6, -1), number(7, 1))


def scan_start(request: ScanRequest, decode: Callable[[bytes], str]) -> tuple[ScanIndex, str]:
    """The index and start term of a scan, from Bib-1 attributes as a search reads them
    (server_rpn); what a browse list cannot honour is the diagnostic a search would get."""
    _check_bib1(request.attribute_set)
    start = request.start
    if start is None or not start.constructed:
        raise Bib1(228, "no termListAndStartPoint")
    attributes, term_node = start.context(44), None
    for child in start.children:
        if not child.is_(CONTEXT, 44):
            term_node = child
    attrs: dict[int, int] = {}
    for element in attributes.children if attributes is not None else ():
        kind, value = element.context(120), element.context(121)
        _check_bib1(element.context(1))
        if kind is None:
            raise Bib1(228, "attribute without its type")
        if value is None:
            raise Bib1(1024, f"complex value of attribute type {small_int(kind)}")
        attrs[small_int(kind)] = small_int(value)
    if term_node is None:
        term = ""
    elif term_node.is_(CONTEXT, 45) or term_node.is_(CONTEXT, 216):
        term = decode(term_node.as_bytes()).strip()
    elif term_node.is_(CONTEXT, 215):
        term = str(small_int(term_node))
    else:
        raise Bib1(229, f"term type [{term_node.number}]")
    return _scan_index(attrs), term


def _check_bib1(attribute_set: ber.Node | None) -> None:
    if attribute_set is None:
        return
    try:
        value = attribute_set.as_oid()
    except ProtocolError:
        raise Bib1(121, "unreadable attribute set") from None
    if value != BIB1_ATTRIBUTES:
        raise Bib1(121, dotted(value))


def _scan_index(attrs: dict[int, int]) -> ScanIndex:
    """A heading list is found by its use attribute; the others only say how to match a
    term, and a browse list of whole headings matches every way but a relation other than
    equal or greater (where the list starts) and left truncation."""
    for kind, value in attrs.items():
        if kind not in _SCAN_ATTRIBUTES:
            raise Bib1(113, str(kind))
        if _SCAN_ATTRIBUTES[kind] and value not in _SCAN_ATTRIBUTES[kind]:
            raise Bib1(_ATTRIBUTE_DIAGNOSTICS[kind], str(value))
    index = USE_ATTRIBUTES.get(attrs.get(USE, 1016))
    if index not in SCAN_INDEXES:
        raise Bib1(114, str(attrs.get(USE, 1016)))  # year, call number: no headings
    return index


_SCAN_ATTRIBUTES: dict[int, frozenset[int]] = {  # type -> the values accepted (empty: any)
    USE: frozenset(), RELATION: frozenset({3, 4, 102}), POSITION: frozenset({1, 2, 3}),
    STRUCTURE: frozenset({1, 2, 3, 6, 101, 105, 106}), TRUNCATION: frozenset({1, 100}),
    COMPLETENESS: frozenset({1, 2, 3})}
_ATTRIBUTE_DIAGNOSTICS = {RELATION: 117, POSITION: 119, STRUCTURE: 118, TRUNCATION: 120,
                          COMPLETENESS: 122}


def scan_response(request: ScanRequest, page: ScanPage, encoding: str, *,
                  truncated: bool = False) -> bytes:
    """ScanResponse ::= SEQUENCE { referenceId OPTIONAL, stepSize [3] IMPLICIT INTEGER
        OPTIONAL, scanStatus [4] IMPLICIT INTEGER { success (0), partial-1 (1), ...,
        partial-5 (5), failure (6) }, numberOfEntriesReturned [5] IMPLICIT INTEGER,
        positionOfTerm [6] IMPLICIT INTEGER OPTIONAL, entries [7] IMPLICIT ListEntries
        OPTIONAL, attributeSet [8] ... OPTIONAL, otherInfo OPTIONAL }
    ListEntries ::= SEQUENCE { entries [1] IMPLICIT SEQUENCE OF Entry OPTIONAL,
        nonsurrogateDiagnostics [2] IMPLICIT SEQUENCE OF DiagRec OPTIONAL }
    Entry ::= CHOICE { termInfo [1] IMPLICIT TermInfo, surrogateDiagnostic [2] DiagRec }
    TermInfo ::= SEQUENCE { term Term, displayTerm [0] ... OPTIONAL, suggestedAttributes
        ... OPTIONAL, alternativeTerm [4] ... OPTIONAL, globalOccurrences [2] IMPLICIT
        INTEGER OPTIONAL, byAttributes [3] ... OPTIONAL, otherTermInfo OPTIONAL }
    Fewer terms than asked because the list ends is partial-5 (as YAZ's backends say
    it); ``truncated`` (more asked than we answer at once) is partial-4, the target's
    resource control."""
    entries = [ber.seq(CONTEXT, 1, [
        ber.octets(term.term.encode(encoding, "replace"), CONTEXT, 45),
        ber.integer(term.records, CONTEXT, 2)]) for term in page.terms]
    status = 4 if truncated else 5 if len(entries) < request.count else 0
    return ber.seq(CONTEXT, SCAN_RESPONSE, [
        *reference_id(request.reference), ber.integer(0, CONTEXT, 3),
        ber.integer(status, CONTEXT, 4), ber.integer(len(entries), CONTEXT, 5),
        ber.integer(page.position, CONTEXT, 6),
        ber.seq(CONTEXT, 7, [ber.seq(CONTEXT, 1, entries)])])


async def answer_scan(request: ScanRequest, catalogue: Catalogue,
                      decode: Callable[[bytes], str], encoding: str) -> bytes:
    """The ScanResponse to a request on ``catalogue``: its headings, or a failure with the
    Bib-1 diagnostic saying why (1025 from a catalogue that cannot browse; 114 for an
    index it cannot; 205 for a step size; 233 for a start term placed outside the list).
    ``decode`` reads the term (the association's charsets); ``encoding`` writes terms."""
    try:
        browser = scanner(catalogue)
        if browser is None:
            raise Bib1(SERVICE_UNSUPPORTED, "scan")
        index, term = scan_start(request, decode)
        if request.step_size != 0:
            raise Bib1(205, str(request.step_size))
        if request.count < 0:
            raise Bib1(228, "no numberOfTermsRequested")
        count = min(request.count, MAX_SCAN_TERMS)
        if not -count <= request.position - 1 <= count:
            raise Bib1(233, str(request.position))
        page = await browser.scan(index, term, count=count, position=request.position)
    except Bib1 as diag:
        logger.info("scan diagnostic %d %s", diag.code, diag.addinfo)
        return scan_refused(request, diag.code, diag.addinfo)
    except UnsupportedQuery as exc:  # an index this catalogue cannot browse
        return scan_refused(request, 114, str(exc))
    except ConnectorError as exc:
        return scan_refused(request, 2, str(exc))
    except Exception as exc:
        logger.exception("catalogue %s failed on a scan", catalogue.name)
        return scan_refused(request, 1, f"the catalogue failed: {type(exc).__name__}")
    return scan_response(request, page, encoding, truncated=request.count > MAX_SCAN_TERMS)


def scan_refused(request: ScanRequest, code: int = SERVICE_UNSUPPORTED,
                 addinfo: str = "scan") -> bytes:
    """A ScanResponse saying failure (6), no entries, and the reason as a
    nonsurrogateDiagnostic: the association and its result sets live on."""
    entries = ber.seq(CONTEXT, 7, [_diag_recs(2, code, addinfo)])
    return ber.seq(CONTEXT, SCAN_RESPONSE, [
        *reference_id(request.reference), ber.integer(6, CONTEXT, 4),
        ber.integer(0, CONTEXT, 5), entries])


# --- Sort ---------------------------------------------------------------------------------
# connectors/z3950/server_sort.py (SORT_REQUEST above names its request).


# --- Delete -------------------------------------------------------------------------------

# DeleteSetStatus ::= [33] IMPLICIT INTEGER { success (0), resultSetDidNotExist (1), ...,
#   notAllRequestedResultSetsDeleted (9), ... }
DELETED, NO_SUCH_SET, NOT_ALL_DELETED = 0, 1, 9


@dataclass(frozen=True, slots=True)
class DeleteRequest:
    reference: bytes | None
    function: Literal["list", "all"]
    names: tuple[str, ...]


def read_delete_request(node: ber.Node) -> DeleteRequest:
    """DeleteResultSetRequest ::= SEQUENCE { referenceId OPTIONAL, deleteFunction [32]
        IMPLICIT INTEGER { list (0), all (1) }, resultSetList SEQUENCE OF ResultSetId
        OPTIONAL, otherInfo OPTIONAL }     ResultSetId ::= [31] IMPLICIT InternationalString
    """
    function = node.context(32)
    if function is None:
        raise ProtocolError("Delete request without its deleteFunction")
    listed = node.child(UNIVERSAL, ber.SEQUENCE)
    names = tuple(_text(child) for child in listed.children) if listed is not None else ()
    return DeleteRequest(reference(node), "all" if function.as_int() == 1 else "list", names)


def delete_response(request: DeleteRequest, statuses: dict[str, int]) -> bytes:
    """DeleteResultSetResponse ::= SEQUENCE { referenceId OPTIONAL, deleteOperationStatus
        [0] IMPLICIT DeleteSetStatus, deleteListStatuses [1] IMPLICIT ListStatuses OPTIONAL,
        numberNotDeleted [34] IMPLICIT INTEGER OPTIONAL, ... }
    ListStatuses ::= SEQUENCE OF SEQUENCE { id ResultSetId, status DeleteSetStatus }
    ``statuses``: each named set's status (a list delete's names, in order)."""
    failed = sum(status != DELETED for status in statuses.values())
    parts = [*reference_id(request.reference),
             ber.integer(NOT_ALL_DELETED if failed else DELETED, CONTEXT, 0)]
    if request.function == "list":
        parts.append(ber.seq(CONTEXT, 1, [
            ber.seq(UNIVERSAL, ber.SEQUENCE, [ber.octets(name.encode("utf-8"), CONTEXT, 31),
                                              ber.integer(status, CONTEXT, 33)])
            for name, status in statuses.items()]))
    if failed:
        parts.append(ber.integer(failed, CONTEXT, 34))
    return ber.seq(CONTEXT, DELETE_RESPONSE, parts)


# --- Extended Services, Duplicate Detection ---------------------------------------------


def extended_services_refused(node: ber.Node) -> bytes:
    """ExtendedServicesResponse ::= SEQUENCE { referenceId OPTIONAL, operationStatus [3]
        IMPLICIT INTEGER { done (1), accepted (2), failure (3) }, diagnostics [4] IMPLICIT
        SEQUENCE OF DiagRec OPTIONAL, taskPackage [5] ... OPTIONAL, otherInfo OPTIONAL }
    """
    return ber.seq(CONTEXT, ES_RESPONSE, [
        *reference_id(reference(node)), ber.integer(3, CONTEXT, 3),
        _diag_recs(4, ES_TYPE_UNSUPPORTED, "no extended services")])


def duplicate_detection_refused(node: ber.Node) -> bytes:
    """DuplicateDetectionResponse ::= SEQUENCE { referenceId OPTIONAL, status [3] IMPLICIT
        INTEGER { success (0), failure (1) }, resultSetCount [4] ... OPTIONAL,
        diagnostics [5] IMPLICIT SEQUENCE OF DiagRec OPTIONAL, otherInfo OPTIONAL }
    """
    return ber.seq(CONTEXT, DUPLICATE_RESPONSE, [
        *reference_id(reference(node)), ber.integer(1, CONTEXT, 3),
        _diag_recs(5, SERVICE_UNSUPPORTED, "duplicate detection")])
