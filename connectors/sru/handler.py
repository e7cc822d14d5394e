"""The consortium's own SRU server: any ``Catalogue`` as an SRU 1.2 / 2.0 target.

``handle(params, catalogues, base_url=..., database=...)`` is the whole protocol as one
async function from request parameters to ``(HTTP status, content type, body)``; it knows
no web framework, so the aiohttp ``connectors.sru.server.SruServer`` and the web front
end's ``GET /sru`` share it. Operations (and ``scan``: ``connectors.sru.scan``, an index's
headings from a catalogue that can browse, diagnostic 4 from one that cannot):

explain
    A ZeeRex 2.0 record: server info, the database, our indexes (``any title author
    subject isbn issn publisher year callnumber`` in the ``balis`` context set, plus the
    ``dc``/``bath``/``cql`` names broker.kernel.cql accepts for them), the record schemas
    (MARCXML, Dublin Core, MODS) and the paging limits.
searchRetrieve
    The reader's CQL (CONTRACTS section 3, parsed by broker.kernel.cql; ``cql.allRecords``
    and prefix maps naming the context sets we know included). ``startRecord``
    (default 1) and ``maximumRecords`` (default 10; more than 100 is silently capped at
    100, as SRU allows: a server may return fewer records than asked, and
    ``nextRecordPosition`` says where to go on). ``recordSchema`` (default MARCXML):
    ``marcxml`` (``info:srw/schema/1/marcxml-v1.1``), ``dc``
    (``info:srw/schema/1/dc-v1.1``, ``srw_dc:dc``) or ``mods``
    (``info:srw/schema/1/mods-v3.6``), by short name, identifier or namespace; DC and MODS
    are our own mappings from the normalized record (connectors/sru/schemas.py). Anything
    else is diagnostic 66, never a substitute. ``recordPacking`` ``xml``/``string`` (1.1, 1.2),
    ``recordXMLEscaping`` ``xml``/``string`` (2.0).

Versions 1.1 and 1.2 answer in ``http://www.loc.gov/zing/srw/``, 2.0 in
``http://docs.oasis-open.org/ns/search-ws/sruResponse`` (element order as YAZ writes it).
Without ``version`` a request that names an ``operation`` (a 1.x parameter) gets 1.2,
any other 2.0. Unknown parameters are ignored (``x-`` extensions included); a ``sortBy``
parameter (80: not SRU; CQL's ``sortBy`` clause is the way), ``stylesheet`` (110) and
``recordXPath`` (72) are refused rather than ignored, since ignoring them would silently
change the answer.

Sorting: CQL's ``sortBy`` clause and the ``sortKeys`` parameter (any version; both: the
query's wins, with the non-fatal 94) sort the result when its catalogue's sets can be
sorted (``connectors.catalogue.SortableResultSet``: the union), else diagnostic 80; a sort
the catalogue cannot do is 84, 87, 88, 90-93 (connectors/sru/diagnostics.py).

Diagnostics: 1 general system error (an unexpected failure: logged with its traceback,
never sent), 2 every member library failed (details name each one's reason), 4
unsupported operation, 5 unsupported version (details: the highest we speak), 6 bad
number or value, 7 missing query, 10 query syntax error (details: the parser's message),
15 a prefix map naming a context set we do not know, 16 unsupported index, 19
unsupported relation, 20 relation modifier, 22 relation not
valid for that index, 27 empty term, 28 masking other than right truncation, 36 term in
the wrong form for its index (a year), 37 prox, 46 boolean modifier, 48 a query feature
the catalogue cannot do, 61 startRecord past the end, 64 (per record) a record that
could not be made, 66 unknown schema, 71 unsupported packing, 235 unknown database (with
HTTP 404). Every other answer is HTTP 200, diagnostics included, as SRU prescribes.

Reading the request is ``connectors.sru.request``, writing the answer
``connectors.sru.response``, the diagnostics ``connectors.sru.diagnostics``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

import pymarc

from broker.kernel.cql import parse_with_sort
from broker.kernel.errors import ConnectorError, QueryError, UnsupportedQuery
from broker.kernel.sorting import SortError, SortKey
from connectors.catalogue import Catalogue, ResultSet, sortable
from connectors.sru.diagnostics import (
    SruDiagnostic,
    explained,
    query_diagnostic,
    sort_diagnostic,
)
from connectors.sru.request import SruRequest, check_version, operation, retrieval
from connectors.sru.response import explain_response, failure_response, search_response
from connectors.sru.scan import scan_answer

logger = logging.getLogger(__name__)

CONTENT_TYPE = "text/xml; charset=utf-8"


async def handle(params: Mapping[str, str], catalogues: dict[str, Catalogue] | Catalogue, *,
                 base_url: str, database: str) -> tuple[int, str, bytes]:
    """One SRU request: ``params`` as sent (query string or form), for ``database``.

    ``catalogues`` maps database names to catalogues (an unknown name is HTTP 404 with
    diagnostic 235), or is the one catalogue to serve whatever the name. ``base_url`` is
    the database's own address, for explain. Never raises (except cancellation).
    """
    request = SruRequest.of(params)
    try:
        check_version(request)
        asked = operation(request)
        catalogue = _catalogue(catalogues, database)
        if asked == "explain":
            return 200, CONTENT_TYPE, explain_response(request, catalogue, base_url, database)
        if asked == "scan":
            return 200, CONTENT_TYPE, await scan_answer(request, catalogue)
        return 200, CONTENT_TYPE, await _search_retrieve(request, catalogue)
    except SruDiagnostic as diag:
        return diag.status, CONTENT_TYPE, failure_response(request, diag)
    except asyncio.CancelledError:
        raise
    except Exception:
        logger.exception("SRU request for database %r failed: %r", database, request.params)
        internal = SruDiagnostic(1, "an internal error occurred; it has been logged")
        return 500, CONTENT_TYPE, failure_response(request, internal)


async def _sorted(result: ResultSet, keys: tuple[SortKey, ...], asked: str) -> ResultSet:
    """The result in the order of ``keys`` (CQL sortBy, or sortKeys): diagnostic 80 when
    the catalogue's sets cannot be sorted, another of 80-93 for a sort it cannot do."""
    sorter = sortable(result)
    if sorter is None:
        raise SruDiagnostic(80, asked, "Sort not supported: this database's result sets "
                            "cannot be sorted")
    try:
        return await sorter.sort(keys)
    except SortError as exc:
        raise sort_diagnostic(exc) from None


def _catalogue(catalogues: dict[str, Catalogue] | Catalogue, database: str) -> Catalogue:
    if not isinstance(catalogues, dict):
        return catalogues
    found = catalogues.get(database)
    if found is None:
        known = ", ".join(sorted(catalogues)) or "none"
        raise SruDiagnostic(235, database, f"Database does not exist: {database!r} "
                            f"(databases here: {known})", status=404)
    return found


async def _search_retrieve(request: SruRequest, catalogue: Catalogue) -> bytes:
    wanted = retrieval(request)
    diagnostics: list[SruDiagnostic] = []
    try:
        tree, keys = parse_with_sort(request.params["query"])
        result = await catalogue.search(tree)
    except QueryError as exc:
        raise query_diagnostic(exc) from None
    except UnsupportedQuery as exc:
        raise explained(48, str(exc), str(exc)) from None
    except ConnectorError as exc:
        raise explained(2, str(exc), str(exc)) from None
    if keys and wanted.sort_keys:
        diagnostics.append(SruDiagnostic(94, request.params.get("sortKeys")))
    keys = keys or wanted.sort_keys
    if keys:
        result = await _sorted(result, keys, request.params.get("sortKeys") or "sortBy")
    hits = result.hits
    records: list[pymarc.Record | None] = []
    start, maximum = wanted.start, wanted.maximum
    if maximum and start > hits and not (hits == 0 and start == 1):
        diagnostics.append(explained(61, str(start),
                                     f"startRecord {start}, but there are {hits} records"))
    elif maximum and hits:
        try:
            records = list(await result.fetch(start, min(maximum, hits - start + 1)))
        except ConnectorError as exc:
            raise explained(2, str(exc), str(exc)) from None
        hits = max(result.hits, start + len(records) - 1)  # a union's estimate firms up
    flavour = getattr(catalogue, "flavour", "marc21")
    return search_response(request, result, hits, records, wanted, flavour, diagnostics,
                           library=getattr(catalogue, "name", None))
