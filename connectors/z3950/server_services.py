"""The Z39.50 services our server answers besides Init, Search, Present and Close.

Delete is done (named result sets are ours to drop). Scan, Sort, Extended Services and
Duplicate Detection are refused, each with its own response and a Bib-1 diagnostic, because
a Close would end the association and with it the client's result sets: the standard gives
every one of these requests a response that can say "failure", so a refusal is never a
reason to hang up. Bib-1 has no "scan not supported" or "sort not supported" condition;
1025 "service not supported for this database" is the one YAZ names for it, and 221 the
one for an extended service.

ASN.1 as in Z39-50-APDU-1995 (default EXPLICIT tagging, IMPLICIT where stated).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from broker.kernel.errors import ProtocolError
from connectors.z3950 import ber
from connectors.z3950.apdu import reference_id
from connectors.z3950.ber import CONTEXT, UNIVERSAL
from connectors.z3950.server_pdu import diag_format

SCAN_REQUEST, SCAN_RESPONSE = 35, 36
SORT_REQUEST, SORT_RESPONSE = 43, 44
DELETE_REQUEST, DELETE_RESPONSE = 26, 27
ES_REQUEST, ES_RESPONSE = 46, 47
DUPLICATE_REQUEST, DUPLICATE_RESPONSE = 49, 50

SERVICE_UNSUPPORTED = 1025  # Bib-1: service not supported for this database
ES_TYPE_UNSUPPORTED = 221  # Bib-1: ES: extended service type not supported


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


def scan_refused(node: ber.Node, addinfo: str = "scan") -> bytes:
    """ScanResponse ::= SEQUENCE { referenceId OPTIONAL, stepSize [3] IMPLICIT INTEGER
        OPTIONAL, scanStatus [4] IMPLICIT INTEGER { success (0), partial-1 (1), ...,
        partial-5 (5), failure (6) }, numberOfEntriesReturned [5] IMPLICIT INTEGER,
        positionOfTerm [6] IMPLICIT INTEGER OPTIONAL, entries [7] IMPLICIT ListEntries
        OPTIONAL, attributeSet [8] ... OPTIONAL, otherInfo OPTIONAL }
    ListEntries ::= SEQUENCE { entries [1] IMPLICIT SEQUENCE OF Entry OPTIONAL,
        nonsurrogateDiagnostics [2] IMPLICIT SEQUENCE OF DiagRec OPTIONAL }
    """
    entries = ber.seq(CONTEXT, 7, [_diag_recs(2, SERVICE_UNSUPPORTED, addinfo)])
    return ber.seq(CONTEXT, SCAN_RESPONSE, [
        *reference_id(reference(node)), ber.integer(6, CONTEXT, 4),
        ber.integer(0, CONTEXT, 5), entries])


# --- Sort ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SortRequest:
    reference: bytes | None
    inputs: tuple[str, ...]
    output: str


def read_sort_request(node: ber.Node) -> SortRequest:
    """SortRequest ::= SEQUENCE { referenceId OPTIONAL, inputResultSetNames [3] IMPLICIT
        SEQUENCE OF InternationalString, sortedResultSetName [4] IMPLICIT
        InternationalString, sortSequence [5] IMPLICIT SEQUENCE OF SortKeySpec, ... }
    (Only the names are read: the sort is refused whatever its keys.)"""
    inputs, output = node.context(3), node.context(4)
    return SortRequest(reference(node),
                       tuple(_text(child) for child in inputs.children) if inputs else (),
                       _text(output) if output is not None else "")


def sort_refused(request: SortRequest, output_exists: bool, addinfo: str = "sort") -> bytes:
    """SortResponse ::= SEQUENCE { referenceId OPTIONAL, sortStatus [3] IMPLICIT INTEGER
        { success (0), partial-1 (1), failure (2) }, resultSetStatus [4] IMPLICIT INTEGER
        { empty (1), interim (2), unchanged (3), none (4) } OPTIONAL, diagnostics [5]
        IMPLICIT SEQUENCE OF DiagRec OPTIONAL, resultCount [6] ... OPTIONAL, ... }
    resultSetStatus is the sorted set's: ``unchanged`` when it names a set that exists
    (nothing of it was touched), else ``none``."""
    return ber.seq(CONTEXT, SORT_RESPONSE, [
        *reference_id(request.reference), ber.integer(2, CONTEXT, 3),
        ber.integer(3 if output_exists else 4, CONTEXT, 4),
        _diag_recs(5, SERVICE_UNSUPPORTED, addinfo)])


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
