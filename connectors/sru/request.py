"""Reading an SRU request for our server: its parameters (query string, form, or an SRW
SOAP envelope), the version to answer in, the operation, and searchRetrieve's paging,
schema and packing. A request we cannot serve raises the ``SruDiagnostic`` that says why.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from lxml import etree

from broker.kernel.sorting import (
    Missing,
    SortError,
    SortKey,
    SortProblem,
    checked,
    sort_index,
)
from connectors.sru.diagnostics import SruDiagnostic, sort_diagnostic
from connectors.sru.schemas import MARCXML, SCHEMAS, Schema, schema_named
from connectors.sru.xml import SOAP_NS, SRU_NS_1, SRU_NS_2, local_name
from marc.marcxml import safe_parser

SUPPORTED_VERSIONS = ("1.1", "1.2", "2.0")
HIGHEST_VERSION = "2.0"
DEFAULT_MAXIMUM_RECORDS = 10
MAXIMUM_RECORDS = 100  # larger requests are capped silently (SRU allows fewer records)
NOT_SRU_POST = "not an SRU request: a POST body must be a form or an SRW (SOAP) envelope\n"

Operation = Literal["explain", "searchRetrieve", "scan"]
Packing = Literal["xml", "string"]

_SOAP_OPERATIONS = {"searchRetrieveRequest": "searchRetrieve", "explainRequest": "explain",
                    "scanRequest": "scan"}


# --- parameters ----------------------------------------------------------------------------


def request_params(query: Iterable[tuple[str, object]], *,
                   form: Iterable[tuple[str, object]] = (),
                   soap_body: bytes | None = None) -> tuple[dict[str, str], bool] | None:
    """An HTTP request's SRU parameters, whatever the web framework: the query string's
    (the first of each name) with a POSTed form's added, or, for an XML POST, the SOAP
    envelope's instead. Returns (parameters, whether SOAP); None for an XML body that is
    not an SRW request (the caller answers 400 with NOT_SRU_POST)."""
    if soap_body is not None:
        found = soap_params(soap_body)
        return None if found is None else (found, True)
    params: dict[str, str] = {}
    for key, value in itertools.chain(query, form):
        if isinstance(value, str):  # a form's file upload is no SRU parameter
            params.setdefault(key, value)
    return params, False


def soap_params(body: bytes) -> dict[str, str] | None:
    """The parameters of an SRW (SOAP) request, as if sent in a query string; None when
    the body is not a SOAP envelope holding an SRU request."""
    try:
        root = etree.fromstring(body, safe_parser())
    except etree.XMLSyntaxError:
        return None
    if root.tag != f"{{{SOAP_NS}}}Envelope":
        return None
    soap_body = root.find(f"{{{SOAP_NS}}}Body")
    request = next((child for child in soap_body if isinstance(child.tag, str)), None) \
        if soap_body is not None else None
    if request is None:
        return None
    name = local_name(request.tag)
    params = {"operation": _SOAP_OPERATIONS.get(name, name)}
    for child in request:
        if isinstance(child.tag, str) and len(child) == 0:
            params[local_name(child.tag)] = (child.text or "").strip()
    return params


# --- the request ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SruRequest:
    version: str  # 1.1, 1.2 or 2.0: the answer's version
    params: Mapping[str, str]

    @classmethod
    def of(cls, params: Mapping[str, object]) -> SruRequest:
        """The request for ``params`` as sent (any value types), answered in the version it
        asks for, or the one its parameters suggest."""
        found = {str(k): str(v) for k, v in params.items()}
        return cls(_answer_version(found), found)

    @property
    def v2(self) -> bool:
        return self.version.startswith("2")

    @property
    def ns(self) -> str:
        return SRU_NS_2 if self.v2 else SRU_NS_1

    @property
    def asked_operation(self) -> str:
        """The operation the request names or implies, served or not: a failure is
        answered in its envelope."""
        return self.params.get("operation") or ("searchRetrieve" if "query" in self.params
                                                else "explain")


def _version(text: str) -> str | None:
    text = text.strip()
    return text if text in SUPPORTED_VERSIONS else None


def _answer_version(params: Mapping[str, str]) -> str:
    asked = params.get("version")
    if asked is None:
        # operation is an SRU 1.x parameter; a request without either is SRU 2.0.
        return "1.2" if "operation" in params else "2.0"
    known = _version(asked)
    if known:
        return known
    return "1.2" if asked.strip().startswith(("0", "1")) else "2.0"


def check_version(request: SruRequest) -> None:
    """Diagnostic 5 for a version we do not speak (the answer is in the nearest we do)."""
    version = request.params.get("version")
    if version is not None and _version(version) is None:
        raise SruDiagnostic(5, HIGHEST_VERSION, f"Unsupported version {version!r}: "
                            f"this server speaks SRU {', '.join(SUPPORTED_VERSIONS)}")


def operation(request: SruRequest) -> Operation:
    asked = request.params.get("operation")
    if asked is None or asked == "":
        # SRU 2.0 has no operation parameter: a query makes it searchRetrieve.
        if "query" in request.params:
            return "searchRetrieve"
        if "scanClause" in request.params:
            return "scan"
        return "explain"
    match asked:
        case "searchRetrieve" | "explain" | "scan":
            return asked
    raise SruDiagnostic(4, asked, f"Unsupported operation {asked!r}: this server "
                        "does explain, searchRetrieve and scan")


# --- searchRetrieve ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Retrieval:
    """Which records a searchRetrieve wants, and how."""

    start: int
    maximum: int
    packing: Packing
    schema: Schema = MARCXML
    sort_keys: tuple[SortKey, ...] = ()  # the sortKeys parameter's (a CQL sortBy's apart)


def retrieval(request: SruRequest) -> Retrieval:
    params = request.params
    query = params.get("query")
    if query is None or not query.strip():
        raise SruDiagnostic(7, "query", "Mandatory parameter not supplied: query")
    query_type = params.get("queryType", "cql").strip().lower()
    if query_type not in ("cql", ""):
        raise SruDiagnostic(6, "queryType", f"Unsupported parameter value: queryType "
                            f"{params['queryType']!r} (this server takes cql)")
    # Refused rather than ignored: ignoring them would silently change the answer.
    # (sortBy as a parameter is not SRU, but clients that mean CQL's sortBy send it.)
    for name, code in (("sortBy", 80), ("stylesheet", 110), ("recordXPath", 72)):
        if params.get(name, "").strip():
            raise SruDiagnostic(code, params[name])
    start = _number(params, "startRecord", 1, 1)
    maximum = min(_number(params, "maximumRecords", DEFAULT_MAXIMUM_RECORDS, 0),
                  MAXIMUM_RECORDS)
    asked = params.get("recordSchema", "").strip()
    schema = schema_named(asked)
    if schema is None:
        offered = "; ".join(f"{s.name}, {s.identifier}" for s in SCHEMAS)
        raise SruDiagnostic(66, asked, f"Unknown schema for retrieval: {asked!r} (this "
                            f"server sends {offered})")
    return Retrieval(start, maximum, _packing(request), schema,
                     sort_keys(params.get("sortKeys", "")))


def sort_keys(text: str) -> tuple[SortKey, ...]:
    """SRU 1.1's ``sortKeys`` (also sent in 1.2 and 2.0): space-separated keys, each
    ``path,schema,ascending,caseSensitive,missingValue`` with the trailing parts optional
    (ascending and case-insensitive by default). The path is one of our sort indexes'
    names (``title``, ``dc.title``, ``dc.creator``, ``dc.date``...) for any schema we
    serve: they mean the same record whichever schema it is sent in."""
    keys = []
    try:
        for spec in text.split():
            path, schema, ascending, case, missing, *rest = [*spec.split(","), "", "", "", ""]
            if any(rest):
                raise SortError(f"a sort key has at most five parts: {spec!r}", "syntax",
                                spec)
            if schema.strip() and schema_named(schema.strip()) is None:
                raise SruDiagnostic(87, schema, f"Unsupported schema for sort: {schema!r}")
            keys.append(SortKey(sort_index(path.strip().strip('"')),
                                _flag(ascending, "direction", True),
                                _flag(case, "case", False), _missing_value(missing)))
        return checked(keys) if keys else ()
    except SortError as exc:
        raise sort_diagnostic(exc) from None


def _flag(text: str, problem: SortProblem, default: bool) -> bool:
    """A sortKeys ``1``/``0`` part (``true``/``false`` understood too)."""
    value = text.strip().lower()
    if not value:
        return default
    if value in ("1", "true"):
        return True
    if value in ("0", "false"):
        return False
    raise SortError(f"{'ascending' if problem == 'direction' else 'caseSensitive'} must be "
                    f"1 or 0, not {text!r}", problem, text)


_MISSING_VALUES: dict[str, Missing] = {"abort": "abort", "highvalue": "high",
                                       "lowvalue": "low"}


def _missing_value(text: str) -> Missing:
    """missingValue: abort, highValue, lowValue (omit and a constant are not done)."""
    value = text.strip()
    if not value:
        return "last"
    found = _MISSING_VALUES.get(value.lower())
    if found is None:
        raise SortError(f"missingValue {value!r} is not supported: abort, highValue or "
                        "lowValue", "missing", value)
    return found


def _number(params: Mapping[str, str], name: str, default: int, minimum: int) -> int:
    text = params.get(name)
    if text is None or text.strip() == "":
        return default
    text = text.strip()
    if not re.fullmatch(r"\+?\d{1,9}", text) or int(text) < minimum:
        raise SruDiagnostic(6, name, f"Unsupported parameter value: {name} must be a whole "
                            f"number of at least {minimum}, not {text!r}")
    return int(text)


def _packing(request: SruRequest) -> Packing:
    params = request.params
    if request.v2:
        # 2.0: recordXMLEscaping says xml/string; recordPacking means packed/unpacked.
        # A 1.x-minded client sending recordPacking=xml/string is understood too.
        packing = params.get("recordPacking", "").strip()
        escaping = params.get("recordXMLEscaping", "").strip()
        if packing in ("xml", "string") and not escaping:
            escaping, packing = packing, ""
        if packing not in ("", "packed"):
            raise SruDiagnostic(71, packing, f"Unsupported record packing {packing!r} "
                                "(this server sends packed records)")
        value = escaping or "xml"
        name = "recordXMLEscaping"
    else:
        value = params.get("recordPacking", "").strip() or params.get(
            "recordXMLEscaping", "").strip() or "xml"
        name = "recordPacking"
    match value:
        case "xml" | "string":
            return value
    raise SruDiagnostic(71, value, f"Unsupported record packing: {name} {value!r} "
                        "(xml or string)")
