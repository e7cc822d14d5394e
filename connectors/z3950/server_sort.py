"""The Z39.50 Sort service of our server: reading a SortRequest's keys, answering it.

A Sort names one input result set and the name of the sorted one (the same name replaces
the set; another adds a set, the input kept as it was). Its keys
(``broker.kernel.sorting.SortKey``) come from each SortKeySpec: a ``sortfield`` string
(``title``, ``author``, ``date``... as ``sort_index`` reads them) or Bib-1
``sortAttributes`` whose use attribute is 4 (title), 1, 1003 or 1004 (author), 30 or 31
(date); ``sortRelation`` ascending (0) or descending (1); ``caseSensitivity``;
``missingValueAction`` abort or null (missing values last). What cannot be done is a
SortResponse with sortStatus failure and a Bib-1 diagnostic (207 for a key we cannot sort
by, 210, 211, 213, 214, 215, 230; 1025 for a database whose sets cannot be sorted),
never a Close: the association and its result sets go on.

ASN.1 as in Z39-50-APDU-1995 (default EXPLICIT tagging, IMPLICIT where stated).
"""

from __future__ import annotations

from dataclasses import dataclass

from broker.kernel.sorting import (
    MAX_SORT_KEYS,
    Missing,
    SortError,
    SortIndex,
    SortKey,
    SortProblem,
    sort_index,
)
from connectors.z3950 import ber
from connectors.z3950.apdu import reference_id
from connectors.z3950.ber import CONTEXT, UNIVERSAL
from connectors.z3950.diagnostics import Bib1
from connectors.z3950.rpn import USE
from connectors.z3950.server_pdu import diag_format, small_int
from connectors.z3950.server_services import SERVICE_UNSUPPORTED, SORT_RESPONSE

CANNOT_SORT = 207  # Bib-1: cannot sort according to sequence

# Bib-1 use attributes we sort by.
USE_SORT_INDEXES: dict[int, SortIndex] = {4: "title", 1: "author", 1003: "author",
                                          1004: "author", 30: "year", 31: "year"}
# broker.kernel.sorting's problems as Bib-1 conditions.
SORT_PROBLEMS: dict[SortProblem, int] = {
    "index": CANNOT_SORT, "syntax": CANNOT_SORT, "missing_value": CANNOT_SORT,
    "too_many": 211, "missing": 213, "direction": 214, "case": 215,
}

# SortResponse sortStatus and resultSetStatus.
SUCCESS, FAILURE = 0, 2
UNCHANGED, NONE = 3, 4


@dataclass(frozen=True, slots=True)
class SortRequest:
    reference: bytes | None
    inputs: tuple[str, ...]
    output: str
    sequence: tuple[ber.Node, ...]  # the SortKeySpecs, read by ``sort_keys``


def read_sort_request(node: ber.Node) -> SortRequest:
    """SortRequest ::= SEQUENCE { referenceId OPTIONAL, inputResultSetNames [3] IMPLICIT
        SEQUENCE OF InternationalString, sortedResultSetName [4] IMPLICIT
        InternationalString, sortSequence [5] IMPLICIT SEQUENCE OF SortKeySpec, ... }"""
    inputs, output, sequence = node.context(3), node.context(4), node.context(5)
    reference = node.context(2)
    return SortRequest(reference.as_bytes() if reference is not None else None,
                       tuple(_text(child) for child in inputs.children) if inputs else (),
                       _text(output) if output is not None else "",
                       sequence.children if sequence is not None else ())


def sort_keys(request: SortRequest) -> tuple[SortKey, ...]:
    """The request's keys in order; Bib1 for one we cannot sort by."""
    if not request.sequence:
        raise Bib1(CANNOT_SORT, "no sort keys")
    if len(request.sequence) > MAX_SORT_KEYS:
        raise Bib1(211, f"{len(request.sequence)} keys (at most {MAX_SORT_KEYS})")
    try:
        return tuple(_sort_key(spec) for spec in request.sequence)
    except SortError as exc:
        raise bib1_of(exc) from None


def bib1_of(error: SortError) -> Bib1:
    return Bib1(SORT_PROBLEMS[error.problem], error.detail or str(error))


def _sort_key(spec: ber.Node) -> SortKey:
    """SortKeySpec ::= SEQUENCE { sortElement SortElement, sortRelation [1] IMPLICIT
        INTEGER { ascending (0), descending (1), ascendingByFrequency (3),
        descendingByfrequency (4) }, caseSensitivity [2] IMPLICIT INTEGER {
        caseSensitive (0), caseInsensitive (1) }, missingValueAction [3] CHOICE {
        abort [1] IMPLICIT NULL, null [2] IMPLICIT NULL, missingValueData [3] IMPLICIT
        OCTET STRING } OPTIONAL }
    SortElement ::= CHOICE { generic [1] SortKey, databaseSpecific [2] IMPLICIT ... }
    (sortElement's [1] and [2] are constructed, sortRelation's and caseSensitivity's
    primitive: that tells them apart.)"""
    if not spec.children or not spec.children[0].constructed:
        raise Bib1(CANNOT_SORT, "a sort key without its sortElement")
    element, rest = spec.children[0], spec.children[1:]
    if element.is_(CONTEXT, 2):
        raise Bib1(210, "database specific sort keys are not supported")
    if not element.is_(CONTEXT, 1):
        raise Bib1(CANNOT_SORT, f"sortElement [{element.number}]")
    index = _generic_key(element.only())
    ascending, case_sensitive = True, False
    missing: Missing = "last"
    for part in rest:
        if part.is_(CONTEXT, 1) and not part.constructed:
            relation = small_int(part)
            if relation not in (0, 1):
                raise Bib1(214, f"sortRelation {relation}")
            ascending = relation == 0
        elif part.is_(CONTEXT, 2) and not part.constructed:
            case = small_int(part)
            if case not in (0, 1):
                raise Bib1(215, f"caseSensitivity {case}")
            case_sensitive = case == 0
        elif part.is_(CONTEXT, 3):
            missing = _missing(part)
    return SortKey(index, ascending, case_sensitive, missing)


def _generic_key(key: ber.Node) -> SortIndex:
    """SortKey ::= CHOICE { sortfield [0] IMPLICIT InternationalString, elementSpec [1]
        IMPLICIT Specification, sortAttributes [2] IMPLICIT SEQUENCE { id
        AttributeSetId, list AttributeList } }"""
    if key.is_(CONTEXT, 0):
        return sort_index(_text(key))
    if key.is_(CONTEXT, 2):
        attributes = key.context(44)
        use = None
        for element in attributes.children if attributes is not None else ():
            kind, value = element.context(120), element.context(121)
            if kind is not None and value is not None and small_int(kind) == USE:
                use = small_int(value)
        if use is None:
            raise Bib1(CANNOT_SORT, "sort attributes without a use attribute")
        found = USE_SORT_INDEXES.get(use)
        if found is None:
            raise Bib1(CANNOT_SORT, f"use attribute {use}: sort by 1=4 (title), "
                       "1=1003 (author) or 1=31 (date)")
        return found
    raise Bib1(CANNOT_SORT, "elementSpec sort keys are not supported")


def _missing(part: ber.Node) -> Missing:
    choice = part.only() if part.constructed and part.children else part
    if choice.is_(CONTEXT, 1):
        return "abort"
    if choice.is_(CONTEXT, 2):
        return "last"  # null: a missing value sorts as none, which is last
    raise Bib1(213, "missingValueData")


def _text(node: ber.Node) -> str:
    return node.as_bytes().decode("utf-8", "replace")


def _diag_recs(number: int, code: int, addinfo: str) -> bytes:
    return ber.seq(CONTEXT, number, [ber.seq(UNIVERSAL, ber.SEQUENCE,
                                             diag_format(code, addinfo))])


def sort_response(request: SortRequest, hits: int) -> bytes:
    """SortResponse ::= SEQUENCE { referenceId OPTIONAL, sortStatus [3] IMPLICIT INTEGER
        { success (0), partial-1 (1), failure (2) }, resultSetStatus [4] IMPLICIT INTEGER
        { empty (1), interim (2), unchanged (3), none (4) } OPTIONAL, diagnostics [5]
        IMPLICIT SEQUENCE OF DiagRec OPTIONAL, resultCount [6] IMPLICIT INTEGER OPTIONAL,
        otherInfo OPTIONAL }
    Success, with the sorted set's size (resultSetStatus is for failures only)."""
    return ber.seq(CONTEXT, SORT_RESPONSE, [
        *reference_id(request.reference), ber.integer(SUCCESS, CONTEXT, 3),
        ber.integer(hits, CONTEXT, 6)])


def sort_failed(request: SortRequest, output_exists: bool, code: int = SERVICE_UNSUPPORTED,
                addinfo: str = "sort") -> bytes:
    """A failed sort: resultSetStatus is the sorted set's, ``unchanged`` when it names a
    set that exists (nothing of it was touched), else ``none``."""
    return ber.seq(CONTEXT, SORT_RESPONSE, [
        *reference_id(request.reference), ber.integer(FAILURE, CONTEXT, 3),
        ber.integer(UNCHANGED if output_exists else NONE, CONTEXT, 4),
        _diag_recs(5, code, addinfo)])
