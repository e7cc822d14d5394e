"""Z39.50 messages as a target sees them: requests read, responses built.

The client side lives in ``pdu.py``; this is its mirror for the server, on the same BER
codec and the vocabulary both share (``apdu.py``, which also has Close). Each reader and
builder carries the ASN.1 of its structure (Z39-50-APDU-1995, default EXPLICIT tagging,
IMPLICIT where stated). Readers raise ProtocolError for a request that is not what the
standard says, a mandatory part missing included (the association is then closed); the
query inside a search is read by ``server_rpn`` once the charset is known.
"""

from __future__ import annotations

from dataclasses import dataclass

from broker.kernel.errors import ProtocolError
from connectors.z3950 import ber
from connectors.z3950.apdu import (
    BIB1_DIAGNOSTICS,
    CHARSET_NEGOTIATION,
    INIT_RESPONSE,
    PRESENT_RESPONSE,
    SEARCH_RESPONSE,
    SYNTAX,
    UTF8_ENCODING,
    ctx,
    implementation_ids,
    implementation_text,
    iso10646_utf8,
    other_info_external,
    reference_id,
    string,
)
from connectors.z3950.ber import CONTEXT, UNIVERSAL

IMPLEMENTATION = (b"balis-broker", b"balis-broker Z39.50 server", b"0.1")
# Record syntaxes whose records are ASN.1 values (OPAC, SUTRS), sent as single-ASN1-type:
# YAZ and others decode them only so.
ASN1_SYNTAXES = frozenset({SYNTAX["opac"], SYNTAX["sutrs"]})


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
    implementation = implementation_text(node, (110, 111, 112))
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
    other = node.context(201)
    for unit in other.children if other is not None else ():
        external = unit.context(4)
        reference = external.child(UNIVERSAL, ber.OID) if external is not None else None
        if external is None or reference is None or reference.as_oid() != CHARSET_NEGOTIATION:
            continue
        single = external.context(0)
        proposal = single.children[0] if single is not None and single.children else None
        charsets = proposal.context(1) if proposal and proposal.is_(CONTEXT, 1) else None
        for choice in charsets.children if charsets is not None else ():
            level = choice.context(2) if choice.is_(CONTEXT, 2) else None
            if level is not None and level.as_oid() == UTF8_ENCODING:
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
    parts = [*reference_id(reference), ber.bit_string(versions, CONTEXT, 3),
             ber.bit_string(options, CONTEXT, 4), ber.integer(message_size, CONTEXT, 5),
             ber.integer(record_size, CONTEXT, 6), ber.boolean(True, CONTEXT, 12),
             *implementation_ids(IMPLEMENTATION)]
    if utf8:
        # TRUE as 0x01, not 0xff: YAZ reads the octet as a signed char and prints -1.
        response = ber.seq(CONTEXT, 2, [ctx(1, iso10646_utf8()), ber.tlv(CONTEXT, 3, b"\x01")])
        parts.append(other_info_external(CHARSET_NEGOTIATION, response))
    return ber.seq(CONTEXT, INIT_RESPONSE, parts)


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


# --- Search and Present responses ---------------------------------------------------------


def diag_format(code: int, addinfo: str = "") -> list[bytes]:
    """DefaultDiagFormat ::= SEQUENCE { diagnosticSetId OBJECT IDENTIFIER, condition
        INTEGER, addinfo CHOICE { v2Addinfo VisibleString, v3Addinfo InternationalString } }
    (the contents: callers wrap them in a SEQUENCE or in [130])."""
    data = addinfo.encode("utf-8")
    string_tag = ber.VISIBLE_STRING if data.isascii() else ber.GENERAL_STRING
    return [ber.oid(BIB1_DIAGNOSTICS), ber.integer(code), ber.octets(data, UNIVERSAL, string_tag)]


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
        encoding CHOICE { single-ASN1-type [0] ANY, octet-aligned [1] IMPLICIT OCTET
        STRING, ... } }
    ``data`` is the record's octets, or for an ASN1_SYNTAXES record its encoded value.
    """
    encoded = ctx(0, data) if syntax in ASN1_SYNTAXES else ber.octets(data, CONTEXT, 1)
    external = ber.seq(UNIVERSAL, ber.EXTERNAL, [ber.oid(syntax), encoded])
    return ber.seq(UNIVERSAL, ber.SEQUENCE, [ber.octets(database, CONTEXT, 0),
                                             ctx(1, ctx(1, external))])


def diagnostic_item(database: bytes, code: int, addinfo: str = "") -> bytes:
    """A NamePlusRecord carrying surrogateDiagnostic [2] DiagRec (its defaultFormat)."""
    diag = ber.seq(UNIVERSAL, ber.SEQUENCE, diag_format(code, addinfo))
    return ber.seq(UNIVERSAL, ber.SEQUENCE, [ber.octets(database, CONTEXT, 0),
                                             ctx(1, ctx(2, diag))])


# The userInfoFormat searchResult-1 (Z39.50-1995 Appendix USR.1): counts of a search's parts.
SEARCH_RESULT_1 = (1, 2, 840, 10003, 10, 1)


@dataclass(frozen=True, slots=True)
class SubqueryCount:
    """One line of a searchResponse's additionalSearchInfo: a part of the search (for the
    union: one member library) and its own count, when it has one."""

    name: str
    count: int | None


def search_info(parts: list[SubqueryCount], encoding: str = "utf-8") -> bytes:
    """additionalSearchInfo [203] IMPLICIT OtherInformation: one externallyDefinedInfo [4]
    holding a SearchInfoReport ::= SEQUENCE OF SEQUENCE { subqueryId [1] IMPLICIT
    InternationalString OPTIONAL, fullQuery [2] IMPLICIT BOOLEAN, ..., subqueryCount [6]
    IMPLICIT INTEGER OPTIONAL, ... }. yaz-client prints it as "SearchResult-1: ... cnt=N
    id=NAME" per part."""
    report = ber.seq(UNIVERSAL, ber.SEQUENCE, [
        ber.seq(UNIVERSAL, ber.SEQUENCE, [
            string(1, part.name.encode(encoding, "replace")), ber.boolean(True, CONTEXT, 2),
            *([] if part.count is None else [ber.integer(part.count, CONTEXT, 6)])])
        for part in parts])
    external = ber.seq(CONTEXT, 4, [ber.oid(SEARCH_RESULT_1), ctx(0, report)])
    return ber.seq(CONTEXT, 203, [ber.seq(UNIVERSAL, ber.SEQUENCE, [external])])


def search_response(*, reference: bytes | None, hits: int, ok: bool, returned: int = 0,
                    present_status: int | None = None, records: bytes | None = None,
                    info: bytes | None = None) -> bytes:
    """SearchResponse ::= SEQUENCE { referenceId OPTIONAL, resultCount [23] IMPLICIT INTEGER,
        numberOfRecordsReturned [24] IMPLICIT INTEGER, nextResultSetPosition [25] IMPLICIT
        INTEGER, searchStatus [22] IMPLICIT BOOLEAN, resultSetStatus [26] IMPLICIT INTEGER
        { subset (1), interim (2), none (3) } OPTIONAL, presentStatus [27] IMPLICIT
        PresentStatus OPTIONAL, records Records OPTIONAL, ... }
    """
    parts = [*reference_id(reference), ber.integer(hits, CONTEXT, 23),
             ber.integer(returned, CONTEXT, 24), ber.integer(returned + 1, CONTEXT, 25),
             ber.boolean(ok, CONTEXT, 22)]
    if not ok:
        parts.append(ber.integer(3, CONTEXT, 26))
    if present_status is not None:
        parts.append(ber.integer(present_status, CONTEXT, 27))
    if records is not None:
        parts.append(records)
    if info is not None:
        parts.append(info)  # additionalSearchInfo, after the records
    return ber.seq(CONTEXT, SEARCH_RESPONSE, parts)


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
    parts = [*reference_id(reference), ber.integer(returned, CONTEXT, 24),
             ber.integer(next_position, CONTEXT, 25), ber.integer(status, CONTEXT, 27)]
    if records is not None:
        parts.append(records)
    return ber.seq(CONTEXT, PRESENT_RESPONSE, parts)
