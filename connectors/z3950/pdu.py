"""Z39.50 (ANSI/NISO Z39.50-2003, version 3) messages: the ones a searching client needs.

Each builder and reader below carries the ASN.1 of its structure, written from the
standard's APDU module (Z39-50-APDU-1995, default EXPLICIT tagging, IMPLICIT where stated).
Builders return BER bytes; readers take a decoded ``ber.Node`` and return plain values.
InternationalString values stay bytes until the client decodes them with the library's
charset.
"""

from __future__ import annotations

from dataclasses import dataclass

from broker.kernel.errors import ProtocolError
from connectors.z3950 import ber
from connectors.z3950.apdu import (
    BIB1_DIAGNOSTICS,
    CHARSET_NEGOTIATION,
    INIT_REQUEST,
    INIT_RESPONSE,
    OPTION_NAMED_RESULT_SETS,
    OPTION_NEGOTIATION,
    OPTION_PRESENT,
    OPTION_SEARCH,
    PRESENT_REQUEST,
    PRESENT_RESPONSE,
    SEARCH_REQUEST,
    SEARCH_RESPONSE,
    UTF8_ENCODING,
    ctx,
    dotted,
    implementation_ids,
    implementation_text,
    iso10646_utf8,
    other_info_external,
    reference_id,
    string,
)
from connectors.z3950.ber import CONTEXT, UNIVERSAL, Node
from connectors.z3950.diagnostics import bib1_message

IMPLEMENTATION = (b"balis-broker", b"balis-broker Z39.50 client", b"0.1")


# --- Init ---------------------------------------------------------------------------------


def init_request(*, message_size: int, record_size: int, charset_proposal: bool,
                 reference: bytes | None = None) -> bytes:
    """InitializeRequest ::= SEQUENCE {
        referenceId ReferenceId OPTIONAL, protocolVersion [3] IMPLICIT BIT STRING,
        options [4] IMPLICIT BIT STRING, preferredMessageSize [5] IMPLICIT INTEGER,
        exceptionalRecordSize [6] IMPLICIT INTEGER, idAuthentication [7] ANY OPTIONAL,
        implementationId [110] IMPLICIT InternationalString OPTIONAL,
        implementationName [111] ..., implementationVersion [112] ...,
        userInformationField [11] EXTERNAL OPTIONAL, otherInfo OtherInformation OPTIONAL }
    """
    options = [OPTION_SEARCH, OPTION_PRESENT, OPTION_NAMED_RESULT_SETS]
    if charset_proposal:
        options.append(OPTION_NEGOTIATION)
    parts = [
        *reference_id(reference),
        ber.bit_string([0, 1, 2], CONTEXT, 3),
        ber.bit_string(options, CONTEXT, 4),
        ber.integer(message_size, CONTEXT, 5),
        ber.integer(record_size, CONTEXT, 6),
        *implementation_ids(IMPLEMENTATION),
    ]
    if charset_proposal:
        parts.append(other_info_external(CHARSET_NEGOTIATION, _utf8_proposal()))
    return ber.seq(CONTEXT, INIT_REQUEST, parts)


def _utf8_proposal() -> bytes:
    """CharSetandLanguageNegotiation ::= CHOICE { proposal [1] IMPLICIT OriginProposal, ... }
    OriginProposal ::= SEQUENCE { proposedCharSets [1] IMPLICIT SEQUENCE OF CHOICE {
        iso2022 [1] Iso2022, iso10646 [2] IMPLICIT Iso10646, private [3] ... } OPTIONAL,
        proposedlanguages [2] ... OPTIONAL, recordsInSelectedCharSets [3] IMPLICIT BOOLEAN
        OPTIONAL }
    (in an EXTERNAL of otherInfo)
    """
    return ber.seq(CONTEXT, 1, [ber.seq(CONTEXT, 1, [iso10646_utf8()]),
                                ber.boolean(True, CONTEXT, 3)])


@dataclass(frozen=True, slots=True)
class InitResult:
    accepted: bool
    implementation: str
    charset_utf8: bool  # the server accepted our UTF-8 proposal
    message: str | None  # why it was refused, when the server says


def read_init_response(node: Node) -> InitResult:
    """InitializeResponse ::= SEQUENCE { referenceId OPTIONAL, protocolVersion [3],
        options [4], preferredMessageSize [5], exceptionalRecordSize [6],
        result [12] IMPLICIT BOOLEAN, implementationId [110] ... OPTIONAL,
        implementationName [111] ..., implementationVersion [112] ...,
        userInformationField [11] EXTERNAL OPTIONAL, otherInfo OtherInformation OPTIONAL }
    """
    _expect(node, INIT_RESPONSE)
    result = node.context(12)
    if result is None:
        raise ProtocolError("Init response without a result")
    implementation = implementation_text(node, (111, 112))
    message = None
    info = node.context(11)
    if info is not None:
        message = _external_text(info)
    return InitResult(result.as_bool(), implementation, _utf8_accepted(node), message)


def _utf8_accepted(node: Node) -> bool:
    """Whether otherInfo carries a negotiation response selecting ISO 10646 UTF-8.

    TargetResponse ::= SEQUENCE { selectedCharSets [1] CHOICE { iso2022 [1] ...,
        iso10646 [2] IMPLICIT Iso10646, private [3] ..., none [4] IMPLICIT NULL } OPTIONAL,
        selectedLanguage [2] ..., recordsInSelectedCharSets [3] IMPLICIT BOOLEAN OPTIONAL }
    Servers differ in how they wrap it, so any Iso10646 naming UTF-8 inside a negotiation
    EXTERNAL counts.
    """
    other = node.context(201)
    if other is None:
        return False
    wanted = ber.oid(UTF8_ENCODING)[2:]
    return any(_contains_value(unit, wanted) for unit in other.children
               if _contains_value(unit, ber.oid(CHARSET_NEGOTIATION)[2:]))


def _contains_value(node: Node, value: bytes) -> bool:
    if not node.constructed:
        return node.value == value
    return any(_contains_value(child, value) for child in node.children)


def _external_text(node: Node) -> str | None:
    """Any readable text inside an EXTERNAL (servers put refusal reasons there)."""
    texts: list[str] = []

    def walk(n: Node) -> None:
        if n.constructed:
            for child in n.children:
                walk(child)
        elif n.value and n.number != ber.OID and n.value.isascii() and len(n.value) > 2:
            texts.append(n.value.decode("ascii"))

    walk(node)
    return "; ".join(texts) or None


# --- Search -------------------------------------------------------------------------------


def search_request(*, databases: list[bytes], query: bytes, result_set: bytes,
                   reference: bytes | None = None) -> bytes:
    """SearchRequest ::= SEQUENCE {
        referenceId OPTIONAL, smallSetUpperBound [13] IMPLICIT INTEGER,
        largeSetLowerBound [14] IMPLICIT INTEGER, mediumSetPresentNumber [15] IMPLICIT
        INTEGER, replaceIndicator [16] IMPLICIT BOOLEAN, resultSetName [17] IMPLICIT
        InternationalString, databaseNames [18] IMPLICIT SEQUENCE OF DatabaseName,
        smallSetElementSetNames [100] ElementSetNames OPTIONAL, mediumSetElementSetNames
        [101] ... OPTIONAL, preferredRecordSyntax [104] IMPLICIT OBJECT IDENTIFIER OPTIONAL,
        query [21] Query, ... }
    DatabaseName ::= [105] IMPLICIT InternationalString.  ``query`` is an encoded Query.
    Records are never piggybacked: small-set bound 0, large-set bound 1.
    """
    return ber.seq(CONTEXT, SEARCH_REQUEST, [
        *reference_id(reference),
        ber.integer(0, CONTEXT, 13),
        ber.integer(1, CONTEXT, 14),
        ber.integer(0, CONTEXT, 15),
        ber.boolean(True, CONTEXT, 16),
        string(17, result_set),
        ber.seq(CONTEXT, 18, [string(105, name) for name in databases]),
        ctx(21, query),
    ])


@dataclass(frozen=True, slots=True)
class SearchResult:
    hits: int
    ok: bool  # searchStatus
    diagnostics: tuple[Diagnosis, ...]


def read_search_response(node: Node) -> SearchResult:
    """SearchResponse ::= SEQUENCE { referenceId OPTIONAL, resultCount [23] IMPLICIT INTEGER,
        numberOfRecordsReturned [24] IMPLICIT INTEGER, nextResultSetPosition [25] IMPLICIT
        INTEGER, searchStatus [22] IMPLICIT BOOLEAN, resultSetStatus [26] IMPLICIT INTEGER
        OPTIONAL, presentStatus [27] IMPLICIT INTEGER OPTIONAL, records Records OPTIONAL, ...}
    """
    _expect(node, SEARCH_RESPONSE)
    count = node.context(23)
    status = node.context(22)
    if count is None or status is None:
        raise ProtocolError("Search response without a result count or status")
    return SearchResult(count.as_int(), status.as_bool(), _records_diagnostics(node))


# --- Present ------------------------------------------------------------------------------


def present_request(*, result_set: bytes, start: int, count: int, syntax: tuple[int, ...],
                    element_set: bytes | None, reference: bytes | None = None) -> bytes:
    """PresentRequest ::= SEQUENCE { referenceId OPTIONAL, resultSetId [31] IMPLICIT
        InternationalString, resultSetStartPoint [30] IMPLICIT INTEGER,
        numberOfRecordsRequested [29] IMPLICIT INTEGER, additionalRanges [212] ... OPTIONAL,
        recordComposition CHOICE { simple [19] ElementSetNames, complex [209] ... }
        OPTIONAL, preferredRecordSyntax [104] IMPLICIT OBJECT IDENTIFIER OPTIONAL, ... }
    ElementSetNames ::= CHOICE { genericElementSetName [0] IMPLICIT InternationalString,
        databaseSpecific [1] ... }
    """
    parts = [
        *reference_id(reference),
        string(31, result_set),
        ber.integer(start, CONTEXT, 30),
        ber.integer(count, CONTEXT, 29),
    ]
    if element_set:
        parts.append(ctx(19, string(0, element_set)))
    parts.append(ber.oid(syntax, CONTEXT, 104))
    return ber.seq(CONTEXT, PRESENT_REQUEST, parts)


@dataclass(frozen=True, slots=True)
class Diagnosis:
    """DefaultDiagFormat ::= SEQUENCE { diagnosticSetId OBJECT IDENTIFIER, condition INTEGER,
        addinfo CHOICE { v2Addinfo VisibleString, v3Addinfo InternationalString } }"""

    code: int | None
    addinfo: bytes
    diagnostic_set: tuple[int, ...] | None

    @property
    def message(self) -> str:
        if self.diagnostic_set in (None, BIB1_DIAGNOSTICS):
            return bib1_message(self.code)
        return f"diagnostic {self.code} of set {dotted(self.diagnostic_set)}"


@dataclass(frozen=True, slots=True)
class RetrievedRecord:
    """NamePlusRecord ::= SEQUENCE { name [0] IMPLICIT DatabaseName OPTIONAL,
        record [1] CHOICE { retrievalRecord [1] EXTERNAL, surrogateDiagnostic [2] DiagRec,
        startingFragment [3] ..., intermediateFragment [4] ..., finalFragment [5] ... } }
    """

    position: int
    syntax: tuple[int, ...] | None
    data: bytes | None  # octet-aligned record, or the single-ASN1-type contents
    diagnostic: Diagnosis | None


@dataclass(frozen=True, slots=True)
class PresentResult:
    returned: int
    next_position: int
    status: int  # presentStatus: 0 success, 1-4 partial, 5 failure
    records: tuple[RetrievedRecord, ...]
    diagnostics: tuple[Diagnosis, ...]


def read_present_response(node: Node, start: int) -> PresentResult:
    """PresentResponse ::= SEQUENCE { referenceId OPTIONAL, numberOfRecordsReturned [24]
        IMPLICIT INTEGER, nextResultSetPosition [25] IMPLICIT INTEGER, presentStatus [27]
        IMPLICIT INTEGER, records Records OPTIONAL, otherInfo OPTIONAL }
    Records ::= CHOICE { responseRecords [28] IMPLICIT SEQUENCE OF NamePlusRecord,
        nonSurrogateDiagnostic [130] IMPLICIT DefaultDiagFormat,
        multipleNonSurDiagnostics [205] IMPLICIT SEQUENCE OF DiagRec }
    """
    _expect(node, PRESENT_RESPONSE)
    returned, nxt, status = node.context(24), node.context(25), node.context(27)
    if returned is None or status is None:
        raise ProtocolError("Present response without a record count or status")
    records = []
    response_records = node.context(28)
    if response_records is not None:
        for offset, item in enumerate(response_records.children):
            records.append(_named_record(item, start + offset))
    return PresentResult(returned.as_int(), nxt.as_int() if nxt is not None else 0,
                         status.as_int(), tuple(records), _records_diagnostics(node))


def _named_record(item: Node, position: int) -> RetrievedRecord:
    holder = item.context(1)
    if holder is None or not holder.children:
        raise ProtocolError(f"record {position}: NamePlusRecord without a record")
    choice = holder.children[0]
    if choice.is_(CONTEXT, 2):
        return RetrievedRecord(position, None, None, _diag_rec(choice.only()))
    if not choice.is_(CONTEXT, 1):
        raise ProtocolError(f"record {position}: fragments ([{choice.number}]) not supported")
    external = choice.only()
    syntax, data = read_external(external)
    return RetrievedRecord(position, syntax, data, None)


def read_external(node: Node) -> tuple[tuple[int, ...] | None, bytes]:
    """The direct-reference OID and the data of an EXTERNAL.

    octet-aligned [1] gives its octets; single-ASN1-type [0] gives the contents of the one
    value inside (an OCTET STRING record, or the encoded structure itself, e.g. SUTRS).
    """
    syntax = None
    for child in node.children:
        if child.is_(UNIVERSAL, ber.OID):
            syntax = child.as_oid()
        elif child.is_(CONTEXT, 1):
            return syntax, child.as_bytes()
        elif child.is_(CONTEXT, 0):
            inner = child.only()
            if inner.constructed and not inner.is_(UNIVERSAL, ber.OCTET_STRING):
                return syntax, _reencode(inner)
            return syntax, inner.as_bytes()
    raise ProtocolError("EXTERNAL without an encoding")


def _reencode(node: Node) -> bytes:
    if not node.constructed:
        return ber.tlv(node.cls, node.number, node.value)
    return ber.seq(node.cls, node.number, [_reencode(child) for child in node.children])


def _diag_rec(node: Node) -> Diagnosis:
    """DiagRec ::= CHOICE { defaultFormat DefaultDiagFormat, externallyDefined EXTERNAL }"""
    if node.is_(UNIVERSAL, ber.SEQUENCE):
        diagnostic_set = code = None
        addinfo = b""
        for child in node.children:
            if child.is_(UNIVERSAL, ber.OID):
                diagnostic_set = child.as_oid()
            elif child.is_(UNIVERSAL, ber.INTEGER):
                code = child.as_int()
            elif not child.constructed:
                addinfo = child.value
            else:
                addinfo = child.as_bytes()
        return Diagnosis(code, addinfo, diagnostic_set)
    text = _external_text(node) or ""
    return Diagnosis(None, text.encode(), None)


def _records_diagnostics(node: Node) -> tuple[Diagnosis, ...]:
    single = node.context(130)
    if single is not None:
        return (_diag_rec(Node(UNIVERSAL, ber.SEQUENCE, True, b"", single.children)),)
    multiple = node.context(205)
    if multiple is not None:
        return tuple(_diag_rec(child) for child in multiple.children)
    return ()


def _expect(node: Node, number: int) -> None:
    if not node.is_(CONTEXT, number):
        raise ProtocolError(f"expected APDU [{number}], got [{node.number}]")
