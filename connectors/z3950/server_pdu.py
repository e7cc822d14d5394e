"""Z39.50 messages as a target sees them: requests read, responses built.

The client side lives in ``pdu.py``; this is its mirror for ``server.py``, on the same BER
codec and constants. Each reader and builder carries the ASN.1 of its structure
(Z39-50-APDU-1995, default EXPLICIT tagging, IMPLICIT where stated). Readers raise
ProtocolError for a request that is not what the standard says (the association is then
closed) and ``Bib1`` for a query we understand but cannot run (a diagnostic is sent).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from broker.kernel.cql import Boolean, Clause, Node
from broker.kernel.errors import ProtocolError
from connectors.z3950 import ber, pdu
from connectors.z3950.ber import CONTEXT, UNIVERSAL
from connectors.z3950.pdu import _ctx, _reference, _string

IMPLEMENTATION = (b"balis-broker", b"balis-broker Z39.50 server", b"0.1")


class Bib1(Exception):
    """A Bib-1 diagnostic condition to report to the client."""

    def __init__(self, code: int, addinfo: str = "") -> None:
        super().__init__(f"Bib-1 {code}: {addinfo}")
        self.code = code
        self.addinfo = addinfo


def dotted(value: tuple[int, ...]) -> str:
    return ".".join(map(str, value))


def _bits(node: ber.Node | None) -> frozenset[int]:
    """The positions set in a BIT STRING (bit 0 is the most significant of the first byte)."""
    if node is None:
        return frozenset()
    data = node.as_bytes()
    if not data:
        raise ProtocolError("BIT STRING without its unused-bits octet")
    return frozenset(i * 8 + bit for i, byte in enumerate(data[1:]) for bit in range(8)
                     if byte & (0x80 >> bit))


def _int(node: ber.Node, number: int, default: int | None = None) -> int:
    child = node.context(number)
    if child is None:
        if default is None:
            raise ProtocolError(f"[{node.number}] lacks its mandatory field [{number}]")
        return default
    return small_int(child)


def small_int(node: ber.Node) -> int:
    """An INTEGER of at most 64 bits (every count, position and attribute is one)."""
    if len(node.value) > 8:
        raise ProtocolError(f"INTEGER [{node.number}] of {len(node.value)} bytes")
    return node.as_int()


def _ref(node: ber.Node) -> bytes | None:
    child = node.context(2)
    return child.as_bytes() if child is not None else None


# --- Init ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InitRequest:
    reference: bytes | None
    versions: frozenset[int]
    options: frozenset[int]
    message_size: int
    record_size: int
    implementation: str
    utf8_proposed: bool  # otherInfo proposes ISO 10646 UTF-8 (CharSetandLanguageNegotiation)


def read_init_request(node: ber.Node) -> InitRequest:
    """InitializeRequest ::= SEQUENCE { referenceId [2] OPTIONAL, protocolVersion [3]
        IMPLICIT BIT STRING, options [4] IMPLICIT BIT STRING, preferredMessageSize [5]
        IMPLICIT INTEGER, exceptionalRecordSize [6] IMPLICIT INTEGER, idAuthentication [7]
        ANY OPTIONAL, implementationId [110], implementationName [111],
        implementationVersion [112] IMPLICIT InternationalString OPTIONAL,
        userInformationField [11] EXTERNAL OPTIONAL, otherInfo [201] OPTIONAL }
    """
    names = [node.context(n) for n in (110, 111, 112)]
    implementation = " ".join(n.as_bytes().decode("utf-8", "replace") for n in names if n)
    return InitRequest(_ref(node), _bits(node.context(3)), _bits(node.context(4)),
                       _int(node, 5, 1 << 20), _int(node, 6, 1 << 20), implementation,
                       _proposes_utf8(node))


def _proposes_utf8(node: ber.Node) -> bool:
    """OtherInformation ::= [201] IMPLICIT SEQUENCE OF SEQUENCE { category [1] OPTIONAL,
        information CHOICE { ..., externallyDefinedInfo [4] IMPLICIT EXTERNAL, ... } }
    The EXTERNAL (direct-reference 1.2.840.10003.15.3, single-ASN1-type [0]) holds
    CharSetandLanguageNegotiation ::= CHOICE { proposal [1] IMPLICIT OriginProposal, ... }
    OriginProposal ::= SEQUENCE { proposedCharSets [1] IMPLICIT SEQUENCE OF CHOICE {
        iso2022 [1] ..., iso10646 [2] IMPLICIT Iso10646, private [3] ... } OPTIONAL, ... }
    Iso10646 ::= SEQUENCE { collections [1] IMPLICIT OID OPTIONAL, encodingLevel [2]
        IMPLICIT OBJECT IDENTIFIER }
    """
    for unit in node.context(201).children if node.context(201) is not None else ():
        external = unit.context(4)
        reference = external.child(UNIVERSAL, ber.OID) if external is not None else None
        if reference is None or reference.as_oid() != pdu.CHARSET_NEGOTIATION:
            continue
        single = external.context(0)
        proposal = single.children[0] if single is not None and single.children else None
        charsets = proposal.context(1) if proposal and proposal.is_(CONTEXT, 1) else None
        for choice in charsets.children if charsets is not None else ():
            level = choice.context(2) if choice.is_(CONTEXT, 2) else None
            if level is not None and level.as_oid() == pdu.UTF8_ENCODING:
                return True
    return False


def init_response(*, reference: bytes | None, versions: frozenset[int],
                  options: frozenset[int], message_size: int, record_size: int,
                  utf8: bool) -> bytes:
    """InitializeResponse ::= SEQUENCE { referenceId OPTIONAL, protocolVersion [3],
        options [4], preferredMessageSize [5], exceptionalRecordSize [6], result [12]
        IMPLICIT BOOLEAN, implementationId [110] ..., implementationName [111] ...,
        implementationVersion [112] ..., userInformationField [11] OPTIONAL,
        otherInfo OtherInformation OPTIONAL }
    With ``utf8``, otherInfo answers the client's proposal:
    CharSetandLanguageNegotiation ::= CHOICE { ..., response [2] IMPLICIT TargetResponse }
    TargetResponse ::= SEQUENCE { selectedCharSets [1] CHOICE { iso2022 [1] ...,
        iso10646 [2] IMPLICIT Iso10646, private [3] ..., none [4] ... } OPTIONAL,
        selectedLanguage [2] ... OPTIONAL, recordsInSelectedCharSets [3] IMPLICIT BOOLEAN
        OPTIONAL }
    """
    parts = [*_reference(reference), ber.bit_string(versions, CONTEXT, 3),
             ber.bit_string(options, CONTEXT, 4), ber.integer(message_size, CONTEXT, 5),
             ber.integer(record_size, CONTEXT, 6), ber.boolean(True, CONTEXT, 12),
             *(_string(number, text) for number, text in zip((110, 111, 112),
                                                              IMPLEMENTATION, strict=True))]
    if utf8:
        iso10646 = ber.seq(CONTEXT, 2, [ber.oid(pdu.UTF8_ENCODING, CONTEXT, 2)])
        # TRUE as 0x01, not 0xff: YAZ reads the octet as a signed char and prints -1.
        response = ber.seq(CONTEXT, 2, [_ctx(1, iso10646), ber.tlv(CONTEXT, 3, b"\x01")])
        external = ber.seq(CONTEXT, 4, [ber.oid(pdu.CHARSET_NEGOTIATION), _ctx(0, response)])
        parts.append(ber.seq(CONTEXT, 201, [ber.seq(UNIVERSAL, ber.SEQUENCE, [external])]))
    return ber.seq(CONTEXT, pdu.INIT_RESPONSE, parts)


# --- Search -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SearchRequest:
    reference: bytes | None
    small_set: int
    large_set: int
    medium_set_present: int
    replace: bool
    result_set: str
    databases: tuple[bytes, ...]
    syntax: tuple[int, ...] | None
    query: ber.Node  # the Query CHOICE, read by read_query once the charset is known


def read_search_request(node: ber.Node) -> SearchRequest:
    """SearchRequest ::= SEQUENCE { referenceId OPTIONAL, smallSetUpperBound [13] IMPLICIT
        INTEGER, largeSetLowerBound [14] IMPLICIT INTEGER, mediumSetPresentNumber [15]
        IMPLICIT INTEGER, replaceIndicator [16] IMPLICIT BOOLEAN, resultSetName [17]
        IMPLICIT InternationalString, databaseNames [18] IMPLICIT SEQUENCE OF DatabaseName,
        smallSetElementSetNames [100] OPTIONAL, mediumSetElementSetNames [101] OPTIONAL,
        preferredRecordSyntax [104] IMPLICIT OBJECT IDENTIFIER OPTIONAL, query [21] Query,
        additionalSearchInfo [203] OPTIONAL, otherInfo OPTIONAL }
    DatabaseName ::= [105] IMPLICIT InternationalString
    """
    names, query, replace = node.context(18), node.context(21), node.context(16)
    name = node.context(17)
    if names is None or query is None or replace is None or name is None:
        raise ProtocolError("Search request without its databases, query, result set name "
                            "or replace indicator")
    syntax = node.context(104)
    return SearchRequest(
        _ref(node), _int(node, 13, 0), _int(node, 14, 1), _int(node, 15, 0), replace.as_bool(),
        name.as_bytes().decode("utf-8", "replace"),
        tuple(child.as_bytes() for child in names.children),
        syntax.as_oid() if syntax is not None else None, query.only())


USE_ATTRIBUTES = {
    1016: "any", 1017: "any", 1035: "any", 4: "title", 1003: "author", 1004: "author",
    21: "subject", 7: "isbn", 8: "issn", 1018: "publisher", 31: "year", 30: "year",
    16: "callnumber", 20: "callnumber", 53: "callnumber",
}
YEAR_RELATIONS = {1: "<", 2: "<=", 3: "=", 4: ">=", 5: ">"}
_OPERATORS = {0: "and", 1: "or", 2: "not"}
_WORD_LISTS = {6, 105, 106}  # word list, free-form text, document text: every word
_NUMERIC = {4: ("year",), 5: ("year",), 109: ("year", "isbn", "issn")}  # year, date, numeric


def read_query(query: ber.Node, decode: Callable[[bytes], str],
               stored: Callable[[str], Node | None]) -> Node:
    """Query ::= CHOICE { type-0 [0] ANY, type-1 [1] IMPLICIT RPNQuery, type-2 [2] ...,
        type-100 [100] ..., type-101 [101] IMPLICIT RPNQuery, type-102 [102] ...,
        type-104 [104] IMPLICIT EXTERNAL }
    RPNQuery ::= SEQUENCE { attributeSet AttributeSetId, rpn RPNStructure }
    ``decode`` turns a term into text (or raises Bib1); ``stored`` gives the query of a named
    result set used as an operand.
    """
    if query.cls != CONTEXT or query.number not in (1, 101):
        raise Bib1(107, f"type-{query.number}")
    if not query.constructed or len(query.children) != 2:
        raise Bib1(108, "RPNQuery needs an attribute set and an RPN structure")
    attribute_set, rpn = query.children
    if not attribute_set.is_(UNIVERSAL, ber.OID):
        raise Bib1(108, "RPNQuery without its attribute set")
    _check_set(attribute_set)
    return _structure(rpn, decode, stored, 0)


def _check_set(node: ber.Node) -> None:
    try:
        value = node.as_oid()
    except ProtocolError:
        raise Bib1(121, "unreadable attribute set") from None
    if value != pdu.BIB1_ATTRIBUTES:
        raise Bib1(121, dotted(value))


def _structure(node: ber.Node, decode: Callable[[bytes], str],
               stored: Callable[[str], Node | None], depth: int) -> Node:
    """RPNStructure ::= CHOICE { op [0] Operand, rpnRpnOp [1] IMPLICIT SEQUENCE {
        rpn1 RPNStructure, rpn2 RPNStructure, op Operator } }
    Operator ::= [46] CHOICE { and [0] IMPLICIT NULL, or [1] IMPLICIT NULL,
        and-not [2] IMPLICIT NULL, prox [3] IMPLICIT ProximityOperator }
    Operand ::= CHOICE { attrTerm AttributesPlusTerm, resultSet ResultSetId,
        resultAttr ResultSetPlusAttributes }   ResultSetId ::= [31] IMPLICIT InternationalString
    """
    if depth > 30:
        raise Bib1(6, "the query is nested too deeply")
    if node.is_(CONTEXT, 1) and node.constructed and len(node.children) == 3:
        left, right, operator = node.children
        if not operator.is_(CONTEXT, 46) or len(operator.children) != 1:
            raise Bib1(108, "boolean without an operator")
        op = operator.children[0]
        if op.cls != CONTEXT or op.number not in _OPERATORS:
            raise Bib1(110, "proximity" if op.number == 3 else f"operator [{op.number}]")
        return Boolean(_OPERATORS[op.number], _structure(left, decode, stored, depth + 1),
                       _structure(right, decode, stored, depth + 1))
    if not node.is_(CONTEXT, 0) or not node.constructed or len(node.children) != 1:
        raise Bib1(108, f"unexpected [{node.number}] in the RPN structure")
    operand = node.children[0]
    if operand.is_(CONTEXT, 102) and operand.constructed:
        return _clause(operand, decode)
    if operand.is_(CONTEXT, 31):
        name = operand.as_bytes().decode("utf-8", "replace")
        query = stored(name)
        if query is None:
            raise Bib1(30, name)
        return query
    if operand.is_(CONTEXT, 214):
        raise Bib1(18, "result set with attributes")
    raise Bib1(108, f"unexpected operand [{operand.number}]")


def _clause(node: ber.Node, decode: Callable[[bytes], str]) -> Clause:
    """AttributesPlusTerm ::= [102] IMPLICIT SEQUENCE { attributes AttributeList, term Term }
    AttributeList ::= [44] IMPLICIT SEQUENCE OF AttributeElement
    AttributeElement ::= SEQUENCE { attributeSet [1] IMPLICIT AttributeSetId OPTIONAL,
        attributeType [120] IMPLICIT INTEGER, attributeValue CHOICE {
        numeric [121] IMPLICIT INTEGER, complex [224] IMPLICIT ComplexAttribute } }
    Term ::= CHOICE { general [45] IMPLICIT OCTET STRING, numeric [215] IMPLICIT INTEGER,
        characterString [216] IMPLICIT InternationalString, oid [217] ..., dateTime [218]
        ..., external [219] ..., integerAndUnit [220] ..., null [221] ... }
    """
    attributes, term_node = node.context(44), None
    for child in node.children:
        if not child.is_(CONTEXT, 44):
            term_node = child
    if attributes is None or term_node is None:
        raise Bib1(108, "a term without its attribute list or term")
    attrs: dict[int, int] = {}
    for element in attributes.children:
        kind, value = element.context(120), element.context(121)
        if element.context(1) is not None:
            _check_set(element.context(1))
        if kind is None:
            raise Bib1(108, "attribute without its type")
        if value is None:
            raise Bib1(1024, f"complex value of attribute type {small_int(kind)}")
        attrs[small_int(kind)] = small_int(value)
    if term_node.is_(CONTEXT, 45) or term_node.is_(CONTEXT, 216):
        term = decode(term_node.as_bytes()).strip()
    elif term_node.is_(CONTEXT, 215):
        term = str(small_int(term_node))
    else:
        raise Bib1(229, f"term type [{term_node.number}]")
    if not term:
        raise Bib1(125, "empty term")
    return attributes_to_clause(attrs, term)


def attributes_to_clause(attrs: dict[int, int], term: str) -> Clause:
    """Bib-1 use (1), relation (2), position (3), structure (4), truncation (5) and
    completeness (6) attributes on a term, as one clause of our query tree."""
    for kind in attrs:
        if kind not in (1, 2, 3, 4, 5, 6):
            raise Bib1(113, str(kind))
    use = attrs.get(1, 1016)
    index = USE_ATTRIBUTES.get(use)
    if index is None:
        raise Bib1(114, str(use))
    relation_value = attrs.get(2, 3)
    if index == "year" and relation_value in YEAR_RELATIONS:
        relation = YEAR_RELATIONS[relation_value]
    elif relation_value in (3, 102):  # equal, relevance
        relation = "="
    else:
        raise Bib1(117, str(relation_value))
    if attrs.get(3, 3) != 3:
        raise Bib1(119, str(attrs[3]))
    truncation = attrs.get(5, 100)
    if truncation not in (1, 100) or (truncation == 1 and index == "year"):
        raise Bib1(120, str(truncation))
    structure = attrs.get(4)
    words = len(term.split())
    if structure in _NUMERIC:
        if index not in _NUMERIC[structure]:
            raise Bib1(118, str(structure))
    elif structure in _WORD_LISTS or (structure == 2 and words > 1):
        relation = "all" if words > 1 and index != "year" else relation
    elif structure not in (None, 1, 2):
        raise Bib1(118, str(structure))
    completeness = attrs.get(6, 1)
    if completeness not in (1, 2, 3):
        raise Bib1(122, str(completeness))
    if completeness != 1 and relation == "=" and index != "year":
        relation = "=="
    if index == "year" and not (term.isdigit() and len(term) <= 4):
        raise Bib1(126, f"year {term!r}")
    if index in ("isbn", "issn"):
        term = term.replace(" ", "")
    return Clause(index, relation, term, truncation == 1)


# --- Search and Present responses ---------------------------------------------------------


def diag_format(code: int, addinfo: str = "") -> list[bytes]:
    """DefaultDiagFormat ::= SEQUENCE { diagnosticSetId OBJECT IDENTIFIER, condition
        INTEGER, addinfo CHOICE { v2Addinfo VisibleString, v3Addinfo InternationalString } }
    (the contents: callers wrap them in a SEQUENCE or in [130])."""
    data = addinfo.encode("utf-8")
    string_tag = ber.VISIBLE_STRING if data.isascii() else ber.GENERAL_STRING
    return [ber.oid(pdu.BIB1_DIAGNOSTICS), ber.integer(code), ber.octets(data, UNIVERSAL,
                                                                      string_tag)]


def non_surrogate(code: int, addinfo: str = "") -> bytes:
    """Records ::= CHOICE { responseRecords [28] ..., nonSurrogateDiagnostic [130] IMPLICIT
        DefaultDiagFormat, multipleNonSurDiagnostics [205] ... }"""
    return ber.seq(CONTEXT, 130, diag_format(code, addinfo))


def response_records(items: list[bytes]) -> bytes:
    """responseRecords [28] IMPLICIT SEQUENCE OF NamePlusRecord"""
    return ber.seq(CONTEXT, 28, items)


def record_item(database: bytes, syntax: tuple[int, ...], data: bytes) -> bytes:
    """NamePlusRecord ::= SEQUENCE { name [0] IMPLICIT DatabaseName OPTIONAL, record [1]
        CHOICE { retrievalRecord [1] EXTERNAL, surrogateDiagnostic [2] DiagRec, ... } }
    EXTERNAL ::= [UNIVERSAL 8] IMPLICIT SEQUENCE { direct-reference OBJECT IDENTIFIER,
        encoding CHOICE { ..., octet-aligned [1] IMPLICIT OCTET STRING, ... } }
    """
    external = ber.seq(UNIVERSAL, ber.EXTERNAL, [ber.oid(syntax), ber.octets(data, CONTEXT, 1)])
    return ber.seq(UNIVERSAL, ber.SEQUENCE, [ber.octets(database, CONTEXT, 0),
                                             _ctx(1, _ctx(1, external))])


def diagnostic_item(database: bytes, code: int, addinfo: str = "") -> bytes:
    """A NamePlusRecord carrying surrogateDiagnostic [2] DiagRec (its defaultFormat)."""
    diag = ber.seq(UNIVERSAL, ber.SEQUENCE, diag_format(code, addinfo))
    return ber.seq(UNIVERSAL, ber.SEQUENCE, [ber.octets(database, CONTEXT, 0),
                                             _ctx(1, _ctx(2, diag))])


def search_response(*, reference: bytes | None, hits: int, ok: bool, returned: int = 0,
                    present_status: int | None = None, records: bytes | None = None) -> bytes:
    """SearchResponse ::= SEQUENCE { referenceId OPTIONAL, resultCount [23] IMPLICIT INTEGER,
        numberOfRecordsReturned [24] IMPLICIT INTEGER, nextResultSetPosition [25] IMPLICIT
        INTEGER, searchStatus [22] IMPLICIT BOOLEAN, resultSetStatus [26] IMPLICIT INTEGER
        { subset (1), interim (2), none (3) } OPTIONAL, presentStatus [27] IMPLICIT
        PresentStatus OPTIONAL, records Records OPTIONAL, ... }
    """
    parts = [*_reference(reference), ber.integer(hits, CONTEXT, 23),
             ber.integer(returned, CONTEXT, 24), ber.integer(returned + 1, CONTEXT, 25),
             ber.boolean(ok, CONTEXT, 22)]
    if not ok:
        parts.append(ber.integer(3, CONTEXT, 26))
    if present_status is not None:
        parts.append(ber.integer(present_status, CONTEXT, 27))
    if records is not None:
        parts.append(records)
    return ber.seq(CONTEXT, pdu.SEARCH_RESPONSE, parts)


@dataclass(frozen=True, slots=True)
class PresentRequest:
    reference: bytes | None
    result_set: str
    start: int
    count: int
    syntax: tuple[int, ...] | None


def read_present_request(node: ber.Node) -> PresentRequest:
    """PresentRequest ::= SEQUENCE { referenceId OPTIONAL, resultSetId [31] IMPLICIT
        InternationalString, resultSetStartPoint [30] IMPLICIT INTEGER,
        numberOfRecordsRequested [29] IMPLICIT INTEGER, additionalRanges [212] OPTIONAL,
        recordComposition CHOICE { simple [19] ElementSetNames, complex [209] ... } OPTIONAL,
        preferredRecordSyntax [104] IMPLICIT OBJECT IDENTIFIER OPTIONAL, ... }
    (Element set names are accepted and ignored: every record is sent whole.)
    """
    name, syntax = node.context(31), node.context(104)
    if name is None:
        raise ProtocolError("Present request without a result set name")
    return PresentRequest(_ref(node), name.as_bytes().decode("utf-8", "replace"),
                          _int(node, 30), _int(node, 29),
                          syntax.as_oid() if syntax is not None else None)


def present_response(*, reference: bytes | None, returned: int, next_position: int,
                     status: int, records: bytes | None) -> bytes:
    """PresentResponse ::= SEQUENCE { referenceId OPTIONAL, numberOfRecordsReturned [24]
        IMPLICIT INTEGER, nextResultSetPosition [25] IMPLICIT INTEGER, presentStatus [27]
        IMPLICIT PresentStatus, records Records OPTIONAL, otherInfo OPTIONAL }
    PresentStatus ::= INTEGER { success (0), partial-1 (1), partial-2 (2), partial-3 (3),
        partial-4 (4), failure (5) }
    """
    parts = [*_reference(reference), ber.integer(returned, CONTEXT, 24),
             ber.integer(next_position, CONTEXT, 25), ber.integer(status, CONTEXT, 27)]
    if records is not None:
        parts.append(records)
    return ber.seq(CONTEXT, pdu.PRESENT_RESPONSE, parts)


# --- Close --------------------------------------------------------------------------------


def close(reason: int, info: str = "", reference: bytes | None = None) -> bytes:
    """Close ::= SEQUENCE { referenceId OPTIONAL, closeReason [211] IMPLICIT INTEGER,
        diagnosticInformation [3] IMPLICIT InternationalString OPTIONAL, ... }
    (reasons as in pdu.CLOSE_REASONS: 0 finished, 1 shutdown, 2 systemProblem, 4 resources,
    6 protocolError, 7 lackOfActivity)"""
    parts = [*_reference(reference), ber.integer(reason, CONTEXT, 211)]
    if info:
        parts.append(ber.octets(info.encode("utf-8"), CONTEXT, 3))
    return ber.seq(CONTEXT, pdu.CLOSE, parts)


APDU_NAMES = {20: "initRequest", 22: "searchRequest", 24: "presentRequest",
              26: "deleteResultSetRequest", 35: "scanRequest", 43: "sortRequest",
              46: "extendedServicesRequest", 48: "close"}
