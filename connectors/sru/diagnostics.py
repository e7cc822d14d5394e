"""SRU diagnostics (``info:srw/diagnostic/1/N``), one table for both sides.

Our client turns a member library's diagnostic into a message a reader can follow
(``reader_message``: the condition's name, lower case, with a hint where the name alone says
little); our server sends the condition's name as SRU words it (``SruDiagnostic``), with
details saying what to fix. The ``diagnostic`` element is written and read here too, so the
URI scheme lives in one place.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lxml import etree

from broker.kernel.errors import Diagnostic, QueryError
from broker.kernel.sorting import SortError, SortProblem
from connectors.sru.xml import DIAG_NS_1, DIAG_NS_2, add_child, child_text, find_child, local_name

DIAGNOSTIC_URI = "info:srw/diagnostic/1/"


@dataclass(frozen=True, slots=True)
class Condition:
    """One SRU diagnostic condition."""

    name: str  # as the SRU standard words it: what our server sends
    hint: str | None = None  # for a reader, when a member library sends it


CONDITIONS: dict[int, Condition] = {
    1: Condition("General system error"),
    2: Condition("System temporarily unavailable"),
    4: Condition("Unsupported operation"),
    5: Condition("Unsupported version"),
    6: Condition("Unsupported parameter value"),
    7: Condition("Mandatory parameter not supplied"),
    10: Condition("Query syntax error"),
    15: Condition("Unsupported context set"),
    16: Condition("Unsupported index", "this field is not searchable here"),
    19: Condition("Unsupported relation"),
    20: Condition("Unsupported relation modifier"),
    22: Condition("Unsupported combination of relation and index"),
    27: Condition("Empty term unsupported"),
    28: Condition("Masking character not supported"),
    29: Condition("Masked words too short"),
    35: Condition("Term contains only stop words"),
    36: Condition("Term in invalid format for index or relation"),
    37: Condition("Unsupported boolean operator"),
    46: Condition("Unsupported boolean modifier"),
    48: Condition("Query feature unsupported"),
    61: Condition("First record position out of range"),
    64: Condition("Record temporarily unavailable"),
    66: Condition("Unknown schema for retrieval"),
    68: Condition("Not authorised to send record"),
    71: Condition("Unsupported record packing"),
    72: Condition("XPath retrieval unsupported"),
    80: Condition("Sort not supported"),
    84: Condition("Too many sort keys to sort"),
    87: Condition("Unsupported schema for sort"),
    88: Condition("Unsupported path for sort"),
    90: Condition("Unsupported direction"),
    91: Condition("Unsupported case"),
    92: Condition("Unsupported missing value action"),
    93: Condition("Sort ended due to missing value"),
    94: Condition("Sort spec included both in query and protocol: query prevails"),
    110: Condition("Stylesheets not supported"),
    235: Condition("Database does not exist"),
}


def condition_name(code: int) -> str:
    """SRU's name of the condition ``code`` ("diagnostic" for one we do not know)."""
    condition = CONDITIONS.get(code)
    return condition.name if condition is not None else "diagnostic"


def reader_message(code: int | None) -> str | None:
    """What a member library's diagnostic ``code`` means, for a reader; None if unknown."""
    condition = CONDITIONS.get(code) if code is not None else None
    if condition is None:
        return None
    name = condition.name.lower()
    return f"{name} ({condition.hint})" if condition.hint else name


def code_of(uri: str) -> int | None:
    """The number that ends a diagnostic URI (servers differ on the prefix, so any)."""
    tail = uri.rstrip("/").rpartition("/")[2]
    return int(tail) if tail.isdigit() else None


# --- our server's side ---------------------------------------------------------------------


class SruDiagnostic(Exception):
    """A fatal SRU diagnostic: the request ends with it (and no records)."""

    def __init__(self, code: int, details: str | None = None, message: str | None = None,
                 *, status: int = 200) -> None:
        self.code = code
        self.details = details
        self.message = message or condition_name(code)
        self.status = status
        super().__init__(f"{code} {self.message}: {details}" if details else
                         f"{code} {self.message}")


def diagnostic_element(diag: SruDiagnostic, *, v2: bool) -> etree._Element:
    """A ``diagnostic`` element in the namespace of the answer's SRU version."""
    ns = DIAG_NS_2 if v2 else DIAG_NS_1
    element = etree.Element(f"{{{ns}}}diagnostic", nsmap={"diag": ns})
    add_child(element, ns, "uri", f"{DIAGNOSTIC_URI}{diag.code}")
    if diag.details:
        add_child(element, ns, "details", diag.details)
    add_child(element, ns, "message", diag.message)
    return element


# broker.kernel.cql's messages -> SRU diagnostics; the first match wins, the rest is 10. The
# details are what a client is told to fix: the index, the relation, or the message.
# (tests/connectors/test_sru_server.py pins each message to its code.)
_QUERY_DIAGNOSTICS: tuple[tuple[re.Pattern[str], int], ...] = (
    (re.compile(r"^unknown index '(?P<detail>.*?)'"), 16),
    (re.compile(r"^the relation '(?P<detail>.*?)' is not supported"), 19),
    (re.compile(r"^\w+ takes the relations .*, not '(?P<detail>.*?)'$"), 22),
    (re.compile(r"^relation modifiers are not supported"), 20),
    (re.compile(r"^boolean modifiers are not supported"), 46),
    (re.compile(r"^the prox operator is not supported"), 37),
    (re.compile(r"^only right truncation is supported"), 28),
    (re.compile(r"^empty search term"), 27),
    (re.compile(r"^year must be a number"), 36),
    (re.compile(r"^unknown context set '(?P<detail>.*?)' in a prefix map"), 15),
    (re.compile(r"^sortBy is not supported"), 80),
)


# broker.kernel.sorting's problems -> SRU diagnostics (sortKeys and CQL's sortBy alike).
_SORT_DIAGNOSTICS: dict[SortProblem, int] = {
    "index": 88, "direction": 90, "case": 91, "missing": 92, "missing_value": 93,
    "too_many": 84, "syntax": 80,
}


def sort_diagnostic(error: SortError) -> SruDiagnostic:
    """The SRU diagnostic for a sort we cannot do (details: what the client sent)."""
    return explained(_SORT_DIAGNOSTICS[error.problem], error.detail or str(error), str(error))


def query_diagnostic(error: QueryError) -> SruDiagnostic:
    """The SRU diagnostic for one of broker.kernel.cql's query errors."""
    if isinstance(error, SortError):
        return sort_diagnostic(error)
    message = str(error)
    for pattern, code in _QUERY_DIAGNOSTICS:
        match = pattern.search(message)
        if match:
            detail = match.groupdict().get("detail") or message
            return explained(code, detail, message)
    return explained(10, message, message)


def explained(code: int, details: str, explanation: str) -> SruDiagnostic:
    """Diagnostic ``code`` whose message is its name followed by what went wrong."""
    return SruDiagnostic(code, details, f"{condition_name(code)}: {explanation}")


# --- our client's side ---------------------------------------------------------------------


def read_diagnostics(root: etree._Element) -> list[Diagnostic]:
    """The diagnostics of a response (in its ``diagnostics`` child), as typed errors."""
    holder = find_child(root, "diagnostics")
    if holder is None:
        return []
    return [read_diagnostic(d) for d in holder if local_name(d.tag) == "diagnostic"]


def read_diagnostic(elem: etree._Element) -> Diagnostic:
    """One ``diagnostic`` element from a member library: its own message if it sent one,
    else what the code means, else the URI."""
    uri = child_text(elem, "uri") or ""
    code = code_of(uri)
    message = (child_text(elem, "message") or reader_message(code) or uri or "diagnostic")
    return Diagnostic(code, message, child_text(elem, "details"), diagnostic_set="sru")
