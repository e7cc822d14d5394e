"""What both ends of a Z39.50 association share: the APDU module's vocabulary.

APDU tags, object identifiers and option bits, and the parts of messages that an origin
(``pdu.py``) and a target (``server_pdu.py``) build or read alike: referenceId,
InternationalString fields, the implementation names, OtherInformation carrying an EXTERNAL
(how charset negotiation travels both ways), ISO 10646 UTF-8 as a character set, and Close,
which either side may send. ASN.1 as in Z39-50-APDU-1995 (default EXPLICIT tagging).
"""

from __future__ import annotations

from connectors.z3950 import ber
from connectors.z3950.ber import CONTEXT, UNIVERSAL, Node

# PDU ::= CHOICE { initRequest [20] IMPLICIT InitializeRequest, initResponse [21] ...,
#   searchRequest [22], searchResponse [23], presentRequest [24], presentResponse [25],
#   ..., close [48] IMPLICIT Close }
INIT_REQUEST, INIT_RESPONSE = 20, 21
SEARCH_REQUEST, SEARCH_RESPONSE = 22, 23
PRESENT_REQUEST, PRESENT_RESPONSE = 24, 25
CLOSE = 48
APDU_NAMES = {20: "initRequest", 21: "initResponse", 22: "searchRequest",
              23: "searchResponse", 24: "presentRequest", 25: "presentResponse",
              26: "deleteResultSetRequest", 27: "deleteResultSetResponse",
              28: "accessControlRequest", 29: "accessControlResponse",
              30: "resourceControlRequest", 31: "resourceControlResponse",
              32: "triggerResourceControlRequest", 33: "resourceReportRequest",
              34: "resourceReportResponse", 35: "scanRequest", 36: "scanResponse",
              43: "sortRequest", 44: "sortResponse", 45: "segmentRequest",
              46: "extendedServicesRequest", 47: "extendedServicesResponse", 48: "close",
              49: "duplicateDetectionRequest", 50: "duplicateDetectionResponse"}

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

# Options ::= BIT STRING { search (0), present (1), delSet (2), ..., scan (7), sort (8),
#   ..., namedResultSets (14), ..., negotiation (17), ... }
# ProtocolVersion ::= BIT STRING { v1 (0), v2 (1), v3 (2) }
OPTION_SEARCH, OPTION_PRESENT, OPTION_DELETE_SET, OPTION_SCAN, OPTION_SORT = 0, 1, 2, 7, 8
OPTION_NAMED_RESULT_SETS, OPTION_NEGOTIATION = 14, 17


def dotted(value: tuple[int, ...]) -> str:
    """An OBJECT IDENTIFIER as people write it: 1.2.840.10003.3.1."""
    return ".".join(map(str, value))


def ctx(number: int, contents: bytes) -> bytes:
    """An explicit context tag around one encoded value."""
    return ber.tlv(CONTEXT, number, contents, constructed=True)


def string(number: int, value: bytes) -> bytes:
    """[n] IMPLICIT InternationalString."""
    return ber.octets(value, CONTEXT, number)


def reference_id(value: bytes | None) -> list[bytes]:
    """ReferenceId ::= [2] IMPLICIT OCTET STRING (no part when there is none)."""
    return [ber.octets(value, CONTEXT, 2)] if value else []


def implementation_ids(names: tuple[bytes, bytes, bytes]) -> list[bytes]:
    """implementationId [110], implementationName [111], implementationVersion [112]
    IMPLICIT InternationalString (of an Init request or response)."""
    return [string(number, text) for number, text in zip((110, 111, 112), names, strict=True)]


def implementation_text(node: Node, numbers: tuple[int, ...]) -> str:
    """The implementation fields ``numbers`` of an Init that are present, as one line."""
    present = (node.context(number) for number in numbers)
    return " ".join(part.as_bytes().decode("utf-8", "replace") for part in present if part)


def other_info_external(direct_reference: tuple[int, ...], single_asn1: bytes) -> bytes:
    """OtherInformation ::= [201] IMPLICIT SEQUENCE OF SEQUENCE {
        category [1] IMPLICIT InfoCategory OPTIONAL,
        information CHOICE { characterInfo [2] ..., binaryInfo [3] ...,
                             externallyDefinedInfo [4] IMPLICIT EXTERNAL, oid [5] ... } }
    EXTERNAL ::= [UNIVERSAL 8] IMPLICIT SEQUENCE { direct-reference OBJECT IDENTIFIER
        OPTIONAL, indirect-reference INTEGER OPTIONAL, data-value-descriptor ObjectDescriptor
        OPTIONAL, encoding CHOICE { single-ASN1-type [0] ANY, octet-aligned [1] IMPLICIT
        OCTET STRING, arbitrary [2] IMPLICIT BIT STRING } }
    """
    external = ber.seq(CONTEXT, 4, [ber.oid(direct_reference), ctx(0, single_asn1)])
    return ber.seq(CONTEXT, 201, [ber.seq(UNIVERSAL, ber.SEQUENCE, [external])])


def iso10646_utf8() -> bytes:
    """The iso10646 [2] IMPLICIT Iso10646 choice of a character set, naming UTF-8:
    Iso10646 ::= SEQUENCE { collections [1] IMPLICIT OBJECT IDENTIFIER OPTIONAL,
        encodingLevel [2] IMPLICIT OBJECT IDENTIFIER }
    (proposed by an origin, selected by a target)."""
    return ber.seq(CONTEXT, 2, [ber.oid(UTF8_ENCODING, CONTEXT, 2)])


# --- Close --------------------------------------------------------------------------------

CLOSE_REASONS = {0: "finished", 1: "shutdown", 2: "system problem", 3: "cost limit",
                 4: "resources", 5: "security violation", 6: "protocol error",
                 7: "lack of activity", 8: "peer abort", 9: "unspecified"}


def close(reason: int = 0, info: str = "", reference: bytes | None = None) -> bytes:
    """Close ::= SEQUENCE { referenceId OPTIONAL, closeReason [211] IMPLICIT INTEGER
        { finished (0), shutdown (1), systemProblem (2), costLimit (3), resources (4),
        securityViolation (5), protocolError (6), lackOfActivity (7), peerAbort (8),
        unspecified (9) }, diagnosticInformation [3] IMPLICIT InternationalString
        OPTIONAL, ... }"""
    parts = [*reference_id(reference), ber.integer(reason, CONTEXT, 211)]
    if info:
        parts.append(string(3, info.encode("utf-8")))
    return ber.seq(CONTEXT, CLOSE, parts)


def read_close(node: Node) -> str:
    """The reason of a Close, and the peer's words on it."""
    reason = node.context(211)
    code = reason.as_int() if reason is not None else 9
    info = node.context(3)
    text = CLOSE_REASONS.get(code, f"reason {code}")
    if info is not None:
        text += ": " + info.as_bytes().decode("utf-8", "replace")
    return text
