"""Bib-1 diagnostic conditions (the standard's diagnostic set 1): readable messages for the
codes a server sends, and ``Bib1``, how our own server's code reports one to its client.
"""

from __future__ import annotations

_BIB1 = {
    1: "permanent system error", 2: "temporary system error", 3: "unsupported search",
    4: "the search used only stop words", 5: "too many words in the query",
    6: "too many boolean operators", 7: "too many truncated words",
    8: "too many incomplete subfields", 9: "truncated words too short",
    10: "invalid record number format", 11: "too many characters in the query",
    12: "too many records retrieved", 13: "present request out of range",
    14: "system error in presenting records", 15: "record not authorized to be sent",
    16: "record exceeds the preferred message size",
    17: "record exceeds the exceptional record size",
    18: "result set not supported as a search term",
    19: "only a single result set as search term supported",
    20: "only ANDing of a single result set supported",
    21: "result set exists and replace indicator off",
    22: "result set naming not supported",
    23: "this combination of databases is not supported",
    24: "element set names not supported",
    25: "element set name not valid for this database",
    26: "only the generic form of element set name is supported",
    27: "result set no longer exists: deleted by the server",
    28: "result set is in use", 29: "one of the databases is locked",
    30: "result set does not exist", 31: "resources exhausted: no results available",
    100: "unspecified error", 101: "access control failure",
    102: "challenge required, could not be issued", 103: "challenge required, not answered",
    105: "terminated at the origin's request", 106: "no abstract syntaxes agreed",
    107: "query type not supported", 108: "malformed query", 109: "database unavailable",
    110: "operator unsupported", 111: "too many databases specified",
    112: "too many result sets created", 113: "unsupported attribute type",
    114: "unsupported use attribute (this index is not searchable here)",
    115: "unsupported term value for use attribute",
    116: "use attribute required but not supplied", 117: "unsupported relation attribute",
    118: "unsupported structure attribute", 119: "unsupported position attribute",
    120: "unsupported truncation attribute", 121: "unsupported attribute set",
    122: "unsupported completeness attribute", 123: "unsupported attribute combination",
    124: "unsupported coded value for term", 125: "malformed search term",
    126: "illegal term value for attribute", 127: "unparsable format for un-normalized value",
    128: "illegal result set name", 129: "proximity search of sets not supported",
    130: "illegal result set in proximity search", 131: "unsupported proximity relation",
    132: "unsupported proximity unit code",
    201: "proximity not supported with this attribute combination",
    202: "unsupported distance for proximity", 203: "ordered flag not supported for proximity",
    205: "only zero step size supported for scan",
    206: "specified step size not supported for scan",
    207: "cannot sort according to sequence", 208: "no result set name supplied on sort",
    211: "too many sort keys", 213: "unsupported missing data action",
    221: "extended service type not supported",
    227: "no data available in the requested record syntax",
    228: "scan: malformed scan", 229: "term type not supported",
    232: "scan: term list not supported",
    233: "scan: unsupported value of position-in-response",
    234: "too many index terms processed",
    235: "database does not exist", 236: "access to the database denied",
    237: "sort: illegal sort", 238: "record not available in the requested syntax",
    239: "record syntax not supported",
    241: "scan: beginning or end of term list",
    1005: "response records in the search response not supported",
    1016: "init: blocked network address",
    1022: "init: password has expired", 1024: "unsupported attribute",
    1025: "service not supported for this database",
    1026: "record cannot be opened", 1027: "SQL error",
}


def bib1_message(code: int | None) -> str:
    if code is None:
        return "the server reported a problem"
    return _BIB1.get(code, f"Bib-1 diagnostic {code}")


class Bib1(Exception):
    """A Bib-1 diagnostic condition to report to the client (the association goes on)."""

    def __init__(self, code: int, addinfo: str = "") -> None:
        super().__init__(f"Bib-1 {code}: {addinfo}")
        self.code = code
        self.addinfo = addinfo
