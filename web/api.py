"""The JSON API (CONTRACTS section 6): the directory, searches and records.

Errors are ``{"error": "…"}`` (a bad query adds ``code`` and ``position``, see
docs/contracts.md) with 400 for the caller's mistake (a bad query, too many
libraries, a bad parameter), 404 for an unknown or expired search or record, 503 when
the search service cannot answer in time.
"""

from __future__ import annotations

import logging
from importlib import resources
from typing import Any

import pymarc
import yaml
from flask import Blueprint, Response, jsonify, request, url_for

from broker.kernel import directory
from broker.kernel.errors import BalisError, QueryError
from web import get_balis
from web.searching import SearchGone, page_request

logger = logging.getLogger(__name__)

bp = Blueprint("api", __name__, url_prefix="/api")


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@bp.errorhandler(ApiError)
def _api_error(exc: ApiError):
    return jsonify(error=str(exc)), exc.status


@bp.errorhandler(SearchGone)
def _gone(exc: SearchGone):
    return jsonify(error=str(exc)), 404


@bp.errorhandler(BalisError)
def _balis_error(exc: BalisError):
    if isinstance(exc, QueryError):  # its code (and position) for clients that word it
        position = exc.params.get("position")
        return jsonify(error=str(exc), code=exc.code,
                       **({"position": position} if position is not None else {})), 400
    if isinstance(exc, ValueError):  # UsageError, ConfigError: the caller's
        return jsonify(error=str(exc)), 400
    logger.exception("API request failed")
    return jsonify(error=str(exc)), 500


@bp.errorhandler(TimeoutError)
def _timeout(exc: TimeoutError):
    return jsonify(error=str(exc)), 503


def _page():
    try:
        return page_request(request.args.get("start"), request.args.get("count"),
                            request.args.get("sort"), request.args.getlist("filter"))
    except ValueError as exc:
        raise ApiError(400, str(exc)) from None


def _query(text: str | None) -> str:
    if text is None or not text.strip():
        raise ApiError(400, "q (the CQL query) is required, e.g. q=title=python")
    return text


def _libraries(values: object) -> list[str]:
    if values is None:
        return []
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise ApiError(400, "libraries must be a list of library ids")
    return values


@bp.get("/libraries")
def libraries():
    balis = get_balis()
    data = directory.directory_dict(balis.consortium)
    health = balis.searches.health()
    for lib in data["libraries"]:
        report = health.get(lib["id"])
        paused = bool(report and report["suspended_seconds"])
        lib["searchable_now"] = lib["searchable"] and not paused
    return jsonify(consortium={"name": balis.consortium.name,
                               "max_selected": balis.consortium.max_selected}, **data)


@bp.get("/search")
def search():
    query = _query(request.args.get("q"))
    page = _page()
    result = get_balis().searches.search(query, request.args.getlist("library"), page)
    return jsonify(result)


@bp.post("/searches")
def start_search():
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(400, 'send a JSON object: {"q": "title=python", "libraries": '
                            '["bupt"], "sort": "relevance"}')
    query = _query(body.get("q") if isinstance(body.get("q"), str) else None)
    sort = body.get("sort", "relevance")
    if not isinstance(sort, str):
        raise ApiError(400, "sort must be a string")
    session_id = get_balis().searches.start(query, _libraries(body.get("libraries")), sort)
    location = url_for("api.search_state", session_id=session_id)
    response = jsonify(id=session_id, url=location)
    response.status_code = 202
    response.headers["Location"] = location
    return response


@bp.get("/searches/<session_id>")
def search_state(session_id: str):
    return jsonify(get_balis().searches.page(session_id, _page()))


@bp.get("/records/<path:record_id>")
def record(record_id: str):
    wanted = request.args.get("format", "json")
    if wanted not in ("json", "marcxml"):
        raise ApiError(400, f"format must be json or marcxml, not {wanted!r}")
    cluster, _session = get_balis().searches.record(record_id, request.args.get("session"),
                                                    marc=wanted == "marcxml")
    if wanted == "json":
        return jsonify(cluster.as_dict())
    sources = [(library, record.id, record.marc()) for library, record in cluster.records]
    missing = [f"{library} {source_id}" for library, source_id, marc in sources if marc is None]
    if len(missing) == len(sources):
        # Never an empty collection that looks like an answer: none of its MARC is here.
        raise ApiError(503, f"the source MARC of record {record_id} is not available on this "
                            f"server ({', '.join(missing)}): search again to fetch it")
    response = Response(marcxml_collection(sources), mimetype="application/marcxml+xml")
    if missing:  # the collection has the others: say which ones it lacks
        response.headers["X-Missing-Sources"] = ", ".join(missing)
    return response


def marcxml_collection(sources: list[tuple[str, str | None, pymarc.Record | None]]) -> bytes:
    """Each library's source record of a cluster (library, record id, its MARC or None),
    as one MARCXML collection."""
    parts = [b'<?xml version="1.0" encoding="UTF-8"?>\n',
             b'<collection xmlns="http://www.loc.gov/MARC21/slim">\n']
    for library, source_id, marc in sources:
        if marc is None:
            parts.append(f"<!-- {library} {source_id}: source MARC not available -->\n"
                         .encode())
            continue
        parts.append(pymarc.record_to_xml(marc, namespace=False) + b"\n")
    parts.append(b"</collection>\n")
    return b"".join(parts)


@bp.get("/health")
def health():
    return jsonify(libraries=list(get_balis().searches.health().values()))


@bp.get("/openapi.json")
def openapi():
    return jsonify(openapi_spec())


def openapi_spec() -> dict[str, Any]:
    text = resources.files("web").joinpath("openapi.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)
