"""The consortium's own SRU server: any ``Catalogue`` as an SRU 1.2 / 2.0 target.

``handle(params, catalogues, base_url=..., database=...)`` is the whole protocol as one
async function from request parameters to ``(HTTP status, content type, body)``; it knows
no web framework, so the aiohttp ``SruServer`` below and the web front end's ``GET /sru``
share it. Operations:

explain
    A ZeeRex 2.0 record: server info, the database, our indexes (``any title author
    subject isbn issn publisher year callnumber`` in the ``balis`` context set, plus the
    ``dc``/``bath``/``cql`` names broker.kernel.cql accepts for them), the one record schema
    (MARCXML) and the paging limits.
searchRetrieve
    The reader's CQL (CONTRACTS section 3, parsed by broker.kernel.cql). ``startRecord``
    (default 1) and ``maximumRecords`` (default 10; more than 100 is silently capped at
    100, as SRU allows: a server may return fewer records than asked, and
    ``nextRecordPosition`` says where to go on). ``recordSchema``: ``marcxml``, its URI
    ``info:srw/schema/1/marcxml-v1.1`` or the MARC21 slim namespace; anything else is
    diagnostic 66, never a substitute. ``recordPacking`` ``xml``/``string`` (1.1, 1.2),
    ``recordXMLEscaping`` ``xml``/``string`` (2.0).

Versions 1.1 and 1.2 answer in ``http://www.loc.gov/zing/srw/``, 2.0 in
``http://docs.oasis-open.org/ns/search-ws/sruResponse`` (element order as YAZ writes it).
Without ``version`` a request that names an ``operation`` (a 1.x parameter) gets 1.2,
any other 2.0. Unknown parameters are ignored (``x-`` extensions included); ``sortKeys``
(80), ``stylesheet`` (110) and ``recordXPath`` (72) are refused rather than ignored,
since ignoring them would silently change the answer.

Diagnostics: 1 general system error (an unexpected failure: logged with its traceback,
never sent), 2 every member library failed (details name each one's reason), 4
unsupported operation, 5 unsupported version (details: the highest we speak), 6 bad
number or value, 7 missing query, 10 query syntax error (details: the parser's message),
16 unsupported index, 19 unsupported relation, 20 relation modifier, 22 relation not
valid for that index, 27 empty term, 28 masking other than right truncation, 36 term in
the wrong form for its index (a year), 37 prox, 46 boolean modifier, 48 a query feature
the catalogue cannot do, 61 startRecord past the end, 64 (per record) a record that
could not be made, 66 unknown schema, 71 unsupported packing, 235 unknown database (with
HTTP 404). Every other answer is HTTP 200, diagnostics included, as SRU prescribes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass

import pymarc
from aiohttp import web
from lxml import etree

from broker.kernel.cql import parse
from broker.kernel.errors import ConnectorError, QueryError, UnsupportedQuery
from connectors.catalogue import Catalogue, ResultSet
from connectors.sru.xml import (  # noqa: F401 - re-exported for callers of this module
    BALIS_CONTEXT_SET,
    BALIS_NS,
    CONTEXT_SETS,
    DEFAULT_MAXIMUM_RECORDS,
    DIAG_NS_1,
    DIAG_NS_2,
    DIAGNOSTIC_SCHEMA,
    EXPLAIN_NS,
    EXPLAIN_SCHEMA,
    MARC_NS,
    MARCXML_SCHEMA,
    MAXIMUM_RECORDS,
    NOT_SRU_POST,
    PRECISION,
    SOAP_NS,
    SRU_NS_1,
    SRU_NS_2,
    explain_record,
    marc_element,
    one_char,
    request_params,
    serialize,
    soap_envelope,
    xml_child,
    xml_text,
)

logger = logging.getLogger(__name__)

SUPPORTED_VERSIONS = ("1.1", "1.2", "2.0")
HIGHEST_VERSION = "2.0"
CONTENT_TYPE = "text/xml; charset=utf-8"
SCHEMA_NAMES = frozenset({"marcxml", MARCXML_SCHEMA.lower(), MARC_NS.lower(),
                          "info:srw/schema/1/marcxml-v1.1-light", "marc21xml"})

MESSAGES = {
    1: "General system error", 2: "System temporarily unavailable",
    4: "Unsupported operation", 5: "Unsupported version", 6: "Unsupported parameter value",
    7: "Mandatory parameter not supplied", 10: "Query syntax error",
    16: "Unsupported index", 19: "Unsupported relation",
    20: "Unsupported relation modifier", 22: "Unsupported combination of relation and index",
    27: "Empty term unsupported", 28: "Masking character not supported",
    36: "Term in invalid format for index or relation", 37: "Unsupported boolean operator",
    46: "Unsupported boolean modifier", 48: "Query feature unsupported",
    61: "First record position out of range", 64: "Record temporarily unavailable",
    66: "Unknown schema for retrieval", 71: "Unsupported record packing",
    72: "XPath retrieval unsupported", 80: "Sort not supported",
    110: "Stylesheets not supported", 235: "Database does not exist",
}

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
)

class SruDiagnostic(Exception):
    """A fatal SRU diagnostic: the request ends with it (and no records)."""

    def __init__(self, code: int, details: str | None = None, message: str | None = None,
                 *, status: int = 200) -> None:
        self.code = code
        self.details = details
        self.message = message or MESSAGES.get(code, "diagnostic")
        self.status = status
        super().__init__(f"{code} {self.message}: {details}" if details else
                         f"{code} {self.message}")


@dataclass(frozen=True, slots=True)
class _Request:
    version: str  # 1.1, 1.2 or 2.0: the answer's version
    params: Mapping[str, str]

    @property
    def v2(self) -> bool:
        return self.version.startswith("2")

    @property
    def ns(self) -> str:
        return SRU_NS_2 if self.v2 else SRU_NS_1


# --- entry point ---------------------------------------------------------------------------


async def handle(params: Mapping[str, str], catalogues: dict[str, Catalogue] | Catalogue, *,
                 base_url: str, database: str) -> tuple[int, str, bytes]:
    """One SRU request: ``params`` as sent (query string or form), for ``database``.

    ``catalogues`` maps database names to catalogues (an unknown name is HTTP 404 with
    diagnostic 235), or is the one catalogue to serve whatever the name. ``base_url`` is
    the database's own address, for explain. Never raises (except cancellation).
    """
    params = {str(k): str(v) for k, v in params.items()}
    request = _Request(_answer_version(params), params)
    try:
        version = params.get("version")
        if version is not None and _version(version) is None:
            raise SruDiagnostic(5, HIGHEST_VERSION, f"Unsupported version {version!r}: "
                                f"this server speaks SRU {', '.join(SUPPORTED_VERSIONS)}")
        operation = _operation(request)
        catalogue = _catalogue(catalogues, database, operation)
        if operation == "explain":
            return 200, CONTENT_TYPE, _explain(request, catalogue, base_url, database)
        return 200, CONTENT_TYPE, await _search_retrieve(request, catalogue)
    except SruDiagnostic as diag:
        return diag.status, CONTENT_TYPE, _failure(request, diag, params)
    except asyncio.CancelledError:
        raise
    except Exception:
        logger.exception("SRU request for database %r failed: %r", database, params)
        diag = SruDiagnostic(1, "an internal error occurred; it has been logged")
        return 500, CONTENT_TYPE, _failure(request, diag, params)


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


def _operation(request: _Request) -> str:
    operation = request.params.get("operation")
    if operation is None or operation == "":
        # SRU 2.0 has no operation parameter: a query makes it searchRetrieve.
        if "query" in request.params:
            return "searchRetrieve"
        if "scanClause" in request.params:
            raise SruDiagnostic(4, "scan", "Unsupported operation: scan")
        return "explain"
    if operation in ("searchRetrieve", "explain"):
        return operation
    raise SruDiagnostic(4, operation, f"Unsupported operation {operation!r}: this server "
                        "does explain and searchRetrieve")


def _catalogue(catalogues: dict[str, Catalogue] | Catalogue, database: str,
               operation: str) -> Catalogue:
    if not isinstance(catalogues, dict):
        return catalogues
    found = catalogues.get(database)
    if found is None:
        known = ", ".join(sorted(catalogues)) or "none"
        raise SruDiagnostic(235, database, f"Database does not exist: {database!r} "
                            f"(databases here: {known})", status=404)
    return found


# --- searchRetrieve ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Retrieval:
    start: int
    maximum: int
    packing: str  # xml | string


def _number(params: Mapping[str, str], name: str, default: int, minimum: int) -> int:
    text = params.get(name)
    if text is None or text.strip() == "":
        return default
    text = text.strip()
    if not re.fullmatch(r"\+?\d{1,9}", text) or int(text) < minimum:
        raise SruDiagnostic(6, name, f"Unsupported parameter value: {name} must be a whole "
                            f"number of at least {minimum}, not {text!r}")
    return int(text)


def _retrieval(request: _Request) -> _Retrieval:
    params = request.params
    query = params.get("query")
    if query is None or not query.strip():
        raise SruDiagnostic(7, "query", "Mandatory parameter not supplied: query")
    query_type = params.get("queryType", "cql").strip().lower()
    if query_type not in ("cql", ""):
        raise SruDiagnostic(6, "queryType", f"Unsupported parameter value: queryType "
                            f"{params['queryType']!r} (this server takes cql)")
    for name, code in (("sortKeys", 80), ("stylesheet", 110), ("recordXPath", 72)):
        if params.get(name, "").strip():
            raise SruDiagnostic(code, params[name])
    start = _number(params, "startRecord", 1, 1)
    maximum = min(_number(params, "maximumRecords", DEFAULT_MAXIMUM_RECORDS, 0),
                  MAXIMUM_RECORDS)
    schema = params.get("recordSchema", "").strip()
    if schema and schema.lower() not in SCHEMA_NAMES:
        raise SruDiagnostic(66, schema, f"Unknown schema for retrieval: {schema!r} (this "
                            f"server sends marcxml, {MARCXML_SCHEMA})")
    return _Retrieval(start, maximum, _packing(request))


def _packing(request: _Request) -> str:
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
    if value not in ("xml", "string"):
        raise SruDiagnostic(71, value, f"Unsupported record packing: {name} {value!r} "
                            "(xml or string)")
    return value


def query_diagnostic(error: QueryError) -> SruDiagnostic:
    """The SRU diagnostic for one of broker.kernel.cql's query errors."""
    message = str(error)
    for pattern, code in _QUERY_DIAGNOSTICS:
        match = pattern.search(message)
        if match:
            detail = match.groupdict().get("detail") or message
            return SruDiagnostic(code, detail, f"{MESSAGES[code]}: {message}")
    return SruDiagnostic(10, message, f"{MESSAGES[10]}: {message}")


async def _search_retrieve(request: _Request, catalogue: Catalogue) -> bytes:
    retrieval = _retrieval(request)
    try:
        tree = parse(request.params["query"])
        result = await catalogue.search(tree)
    except QueryError as exc:
        raise query_diagnostic(exc) from None
    except UnsupportedQuery as exc:
        raise SruDiagnostic(48, str(exc), f"{MESSAGES[48]}: {exc}") from None
    except ConnectorError as exc:
        raise SruDiagnostic(2, str(exc), f"{MESSAGES[2]}: {exc}") from None
    hits = result.hits
    diagnostics: list[SruDiagnostic] = []
    records: list[pymarc.Record | None] = []
    start, wanted = retrieval.start, retrieval.maximum
    if wanted and start > hits and not (hits == 0 and start == 1):
        diagnostics.append(SruDiagnostic(61, str(start), f"{MESSAGES[61]}: startRecord "
                                         f"{start}, but there are {hits} records"))
    elif wanted and hits:
        try:
            records = list(await result.fetch(start, min(wanted, hits - start + 1)))
        except ConnectorError as exc:
            raise SruDiagnostic(2, str(exc), f"{MESSAGES[2]}: {exc}") from None
        hits = max(result.hits, start + len(records) - 1)  # a union's estimate firms up
    flavour = getattr(catalogue, "flavour", "marc21")
    return _search_response(request, result, hits, start, records, retrieval, flavour,
                            diagnostics)


def _search_response(request: _Request, result: ResultSet, hits: int, start: int,
                     records: list[pymarc.Record | None], retrieval: _Retrieval,
                     flavour: str, diagnostics: list[SruDiagnostic]) -> bytes:
    ns = request.ns
    root = etree.Element(f"{{{ns}}}searchRetrieveResponse", nsmap={"zs": ns})
    if not request.v2:
        xml_child(root, ns, "version", request.version)
    xml_child(root, ns, "numberOfRecords", str(hits))
    if records:
        holder = xml_child(root, ns, "records")
        for offset, record in enumerate(records):
            _add_record(request, holder, record, start + offset, retrieval.packing, flavour)
    following = start + len(records)
    if records and following <= hits:
        xml_child(root, ns, "nextRecordPosition", str(following))
    elif not records and retrieval.maximum == 0 and start <= hits:
        xml_child(root, ns, "nextRecordPosition", str(start))
    if diagnostics:
        _add_diagnostics(request, root, diagnostics)
    libraries = getattr(result, "libraries", None)
    if libraries:
        _add_libraries(xml_child(root, ns, "extraResponseData"), libraries)
    if request.v2:
        precision = getattr(result, "precision", "exact")
        xml_child(root, ns, "resultCountPrecision", PRECISION + precision)
    return serialize(root)


def _add_record(request: _Request, holder: etree._Element, record: pymarc.Record | None,
                position: int, packing: str, flavour: str) -> None:
    ns = request.ns
    element = None
    problem = None
    if record is None:
        problem = "the record could not be retrieved"
    else:
        try:
            element = marc_element(record, flavour=flavour)
        except Exception as exc:  # one bad record must not cost the page
            logger.exception("SRU: record %d could not be written as MARCXML", position)
            problem = f"the record could not be written as MARCXML: {exc}"
    if element is None:
        element = _diagnostic_element(request, SruDiagnostic(64, str(position), problem))
        schema = DIAGNOSTIC_SCHEMA
    else:
        schema = MARCXML_SCHEMA
    entry = xml_child(holder, ns, "record")
    xml_child(entry, ns, "recordSchema", schema)
    xml_child(entry, ns, "recordXMLEscaping" if request.v2 else "recordPacking", packing)
    data = xml_child(entry, ns, "recordData")
    if packing == "string":
        data.text = etree.tostring(element, encoding="unicode")
    else:
        data.append(element)
    xml_child(entry, ns, "recordPosition", str(position))


def _add_libraries(holder: etree._Element, libraries: list[dict]) -> None:
    """Each member library's state in a union search (CONTRACTS section 5's fields)."""
    element = etree.SubElement(holder, f"{{{BALIS_NS}}}libraries", nsmap={"balis": BALIS_NS})
    for library in libraries:
        item = etree.SubElement(element, f"{{{BALIS_NS}}}library")
        for key in ("id", "status", "hits", "fetched", "error"):
            value = library.get(key)
            if value is not None:
                item.set(key, xml_text(str(value)))


# --- explain -------------------------------------------------------------------------------


def _explain(request: _Request, catalogue: Catalogue, base_url: str, database: str) -> bytes:
    ns = request.ns
    root = etree.Element(f"{{{ns}}}explainResponse", nsmap={"zs": ns})
    xml_child(root, ns, "version", request.version)
    record = xml_child(root, ns, "record")
    xml_child(record, ns, "recordSchema", EXPLAIN_SCHEMA)
    xml_child(record, ns, "recordXMLEscaping" if request.v2 else "recordPacking", "xml")
    data = xml_child(record, ns, "recordData")
    data.append(explain_record(catalogue, base_url, database, request.version))
    xml_child(record, ns, "recordPosition", "1")
    return serialize(root)


def _failure(request: _Request, diag: SruDiagnostic, params: Mapping[str, str]) -> bytes:
    """A fatal diagnostic in the envelope of the operation that was asked for."""
    ns = request.ns
    operation = params.get("operation") or ("searchRetrieve" if "query" in params
                                            else "explain")
    name = "explainResponse" if operation == "explain" else "searchRetrieveResponse"
    root = etree.Element(f"{{{ns}}}{name}", nsmap={"zs": ns})
    if name == "explainResponse" or not request.v2:
        xml_child(root, ns, "version", request.version)
    if name == "searchRetrieveResponse":
        xml_child(root, ns, "numberOfRecords", "0")
    _add_diagnostics(request, root, [diag])
    return serialize(root)


def _add_diagnostics(request: _Request, parent: etree._Element,
                     diagnostics: list[SruDiagnostic]) -> None:
    holder = xml_child(parent, request.ns, "diagnostics")
    for diag in diagnostics:
        holder.append(_diagnostic_element(request, diag))


def _diagnostic_element(request: _Request, diag: SruDiagnostic) -> etree._Element:
    ns = DIAG_NS_2 if request.v2 else DIAG_NS_1
    element = etree.Element(f"{{{ns}}}diagnostic", nsmap={"diag": ns})
    xml_child(element, ns, "uri", f"info:srw/diagnostic/1/{diag.code}")
    if diag.details:
        xml_child(element, ns, "details", diag.details)
    xml_child(element, ns, "message", diag.message)
    return element


# --- XML -----------------------------------------------------------------------------------


class SruServer:
    """An aiohttp server answering SRU at ``/{database}`` for each catalogue.

    ``catalogues``: a dict of database names to catalogues, or one catalogue (served at
    ``/{catalogue.name}``, and at ``/`` too). ``port`` 0 takes a free port; ``.port`` and
    ``.url(database)`` tell where it listens once started.
    """

    def __init__(self, catalogues: dict[str, Catalogue] | Catalogue, host: str = "127.0.0.1",
                 port: int = 0) -> None:
        if isinstance(catalogues, dict):
            self.catalogues = dict(catalogues)
            self._default = None
        else:
            self.catalogues = {catalogues.name: catalogues}
            self._default = catalogues
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None

    def url(self, database: str | None = None) -> str:
        name = database if database is not None else next(iter(self.catalogues), "")
        return f"http://{self.host}:{self.port}/{name}"

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("GET", "/", self._serve)
        app.router.add_route("POST", "/", self._serve)
        app.router.add_route("GET", "/{database}", self._serve)
        app.router.add_route("POST", "/{database}", self._serve)
        return app

    async def _serve(self, request: web.Request) -> web.Response:
        soap_body, form = None, {}
        if request.method == "POST":
            if "xml" in request.content_type:
                soap_body = await request.read()
            else:
                with contextlib.suppress(Exception):  # a broken form: the query string only
                    form = await request.post()
        found = request_params(request.query.items(), form=form.items(), soap_body=soap_body)
        if found is None:
            return web.Response(status=400, text=NOT_SRU_POST)
        params, soap = found
        database = request.match_info.get("database", "")
        catalogues: dict[str, Catalogue] | Catalogue = self.catalogues
        if not database and self._default is not None:
            catalogues = self._default
        base_url = f"{request.scheme}://{request.host}/{database}"
        status, content_type, body = await handle(params, catalogues, base_url=base_url,
                                                  database=database)
        if soap:
            body = soap_envelope(body)
        kind, _, charset = content_type.partition("; charset=")
        return web.Response(status=status, body=body, content_type=kind,
                            charset=charset or None)

    async def start(self) -> SruServer:
        if self._runner is not None:
            raise RuntimeError("the SRU server is already running")
        runner = web.AppRunner(self.app(), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        for address in runner.addresses:
            if isinstance(address, tuple):
                self.port = address[1]
                break
        logger.info("SRU server on %s:%d (%s)", self.host, self.port,
                    ", ".join(self.catalogues))
        return self

    async def close(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> SruServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
