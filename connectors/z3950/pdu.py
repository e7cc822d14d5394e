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
from connectors.z3950.ber import CONTEXT, UNIVERSAL, Node
from connectors.z3950.diagnostics import bib1_message

# PDU ::= CHOICE { initRequest [20] IMPLICIT InitializeRequest, initResponse [21] ...,
#   searchRequest [22], searchResponse [23], presentRequest [24], presentResponse [25],
#   ..., close [48] IMPLICIT Close }
INIT_REQUEST, INIT_RESPONSE = 20, 21
SEARCH_REQUEST, SEARCH_RESPONSE = 22, 23
PRESENT_REQUEST, PRESENT_RESPONSE = 24, 25
CLOSE = 48

Z3950 = (1, 2, 840, 10003)
BIB1_ATTRIBUTES = (*Z3950, 3, 1)
BIB1_DIAGNOSTICS = (*Z3950, 4, 1)
CHARSET_NEGOTIATION = (*Z3950, 15, 3)
UTF8_ENCODING = (1, 0, 10646, 1, 0, 8)
SYNTAX = {
    "unimarc": (*Z3950, 5, 1),
    "usmarc": (*Z3950, 5, 10),
    "marc21": (*Z3950, 5, 10),
    "sutrs": (*Z3950, 5, 101),
    "opac": (*Z3950, 5, 102),
    "xml": (*Z3950, 5, 109, 10),
}
SYNTAX_NAMES = {value: name for name, value in SYNTAX.items() if name != "marc21"}

# Options ::= BIT STRING { search (0), present (1), delSet (2), ..., namedResultSets (14),
#   ..., negotiation (17), ... }     ProtocolVersion ::= BIT STRING { v1 (0), v2 (1), v3 (2) }
OPTION_SEARCH, OPTION_PRESENT, OPTION_NAMED_RESULT_SETS, OPTION_NEGOTIATION = 0, 1, 14, 17

IMPLEMENTATION = (b"balis-broker", b"balis-broker Z39.50 client", b"0.1")


def _ctx(number: int, contents: bytes) -> bytes:
    """An explicit context tag around one encoded value."""
    return ber.tlv(CONTEXT, number, contents, constructed=True)


def _string(number: int, value: bytes) -> bytes:
    """[n] IMPLICIT InternationalString."""
    return ber.octets(value, CONTEXT, number)


def _reference(reference: bytes | None) -> list[bytes]:
    # ReferenceId ::= [2] IMPLICIT OCTET STRING
    return [ber.octets(reference, CONTEXT, 2)] if reference else []


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
        *_reference(reference),
        ber.bit_string([0, 1, 2], CONTEXT, 3),
        ber.bit_string(options, CONTEXT, 4),
        ber.integer(message_size, CONTEXT, 5),
        ber.integer(record_size, CONTEXT, 6),
        _string(110, IMPLEMENTATION[0]),
        _string(111, IMPLEMENTATION[1]),
        _string(112, IMPLEMENTATION[2]),
    ]
    if charset_proposal:
        parts.append(_other_info_external(CHARSET_NEGOTIATION, _utf8_proposal()))
    return ber.seq(CONTEXT, INIT_REQUEST, parts)


def _other_info_external(direct_reference: tuple[int, ...], single_asn1: bytes) -> bytes:
    """OtherInformation ::= [201] IMPLICIT SEQUENCE OF SEQUENCE {
        category [1] IMPLICIT InfoCategory OPTIONAL,
        information CHOICE { characterInfo [2] ..., binaryInfo [3] ...,
                             externallyDefinedInfo [4] IMPLICIT EXTERNAL, oid [5] ... } }
    EXTERNAL ::= [UNIVERSAL 8] IMPLICIT SEQUENCE { direct-reference OBJECT IDENTIFIER
        OPTIONAL, indirect-reference INTEGER OPTIONAL, data-value-descriptor ObjectDescriptor
        OPTIONAL, encoding CHOICE { single-ASN1-type [0] ANY, octet-aligned [1] IMPLICIT
        OCTET STRING, arbitrary [2] IMPLICIT BIT STRING } }
    """
    external = ber.seq(CONTEXT, 4, [ber.oid(direct_reference), _ctx(0, single_asn1)])
    return ber.seq(CONTEXT, 201, [ber.seq(UNIVERSAL, ber.SEQUENCE, [external])])


def _utf8_proposal() -> bytes:
    """CharSetandLanguageNegotiation ::= CHOICE { proposal [1] IMPLICIT OriginProposal, ... }
    OriginProposal ::= SEQUENCE { proposedCharSets [1] IMPLICIT SEQUENCE OF CHOICE {
        iso2022 [1] Iso2022, iso10646 [2] IMPLICIT Iso10646, private [3] ... } OPTIONAL,
        proposedlanguages [2] ... OPTIONAL, recordsInSelectedCharSets [3] IMPLICIT BOOLEAN
        OPTIONAL }
    Iso10646 ::= SEQUENCE { collections [1] IMPLICIT OBJECT IDENTIFIER OPTIONAL,
        encodingLevel [2] IMPLICIT OBJECT IDENTIFIER }
    """
    iso10646 = ber.seq(CONTEXT, 2, [ber.oid(UTF8_ENCODING, CONTEXT, 2)])
    return ber.seq(CONTEXT, 1, [ber.seq(CONTEXT, 1, [iso10646]), ber.boolean(True, CONTEXT, 3)])


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
    name = node.context(111)
    version = node.context(112)
    implementation = " ".join(
        part.as_bytes().decode("utf-8", "replace") for part in (name, version) if part)
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
        *_reference(reference),
        ber.integer(0, CONTEXT, 13),
        ber.integer(1, CONTEXT, 14),
        ber.integer(0, CONTEXT, 15),
        ber.boolean(True, CONTEXT, 16),
        _string(17, result_set),
        ber.seq(CONTEXT, 18, [_string(105, name) for name in databases]),
        _ctx(21, query),
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
        *_reference(reference),
        _string(31, result_set),
        ber.integer(start, CONTEXT, 30),
        ber.integer(count, CONTEXT, 29),
    ]
    if element_set:
        parts.append(_ctx(19, _string(0, element_set)))
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
        return f"diagnostic {self.code} of set {'.'.join(map(str, self.diagnostic_set))}"


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


# --- Close --------------------------------------------------------------------------------


def close_request(reason: int = 0, reference: bytes | None = None) -> bytes:
    """Close ::= SEQUENCE { referenceId OPTIONAL, closeReason [211] IMPLICIT INTEGER
        { finished (0), shutdown (1), systemProblem (2), costLimit (3), resources (4),
        securityViolation (5), protocolError (6), lackOfActivity (7), peerAbort (8),
        unspecified (9) }, diagnosticInformation [3] ... OPTIONAL, ... }"""
    return ber.seq(CONTEXT, CLOSE, [*_reference(reference), ber.integer(reason, CONTEXT, 211)])


CLOSE_REASONS = {0: "finished", 1: "shutdown", 2: "system problem", 3: "cost limit",
                 4: "resources", 5: "security violation", 6: "protocol error",
                 7: "lack of activity", 8: "peer abort", 9: "unspecified"}


def read_close(node: Node) -> str:
    reason = node.context(211)
    code = reason.as_int() if reason is not None else 9
    info = node.context(3)
    text = CLOSE_REASONS.get(code, f"reason {code}")
    if info is not None:
        text += ": " + info.as_bytes().decode("utf-8", "replace")
    return text


def _expect(node: Node, number: int) -> None:
    if not node.is_(CONTEXT, number):
        raise ProtocolError(f"expected APDU [{number}], got [{node.number}]")
