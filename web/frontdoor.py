"""The consortium as one SRU target at ``/sru``, served by the web app itself.

The protocol work is ``connectors.sru_server.handle`` (framework-free); this view only
collects the request's parameters (query string, form, or an SRW/SOAP envelope) and runs
it on the broker's loop over the union catalogue (``broker.frontdoor``).
"""

from __future__ import annotations

import threading

from flask import Blueprint, Response, current_app, request

from broker.frontdoor import UnionCatalogue
from connectors.sru_server import handle
from connectors.sru_xml import soap_envelope, soap_params
from web import get_balis

bp = Blueprint("sru", __name__)

_lock = threading.Lock()
SRU_TIMEOUT = 120.0  # seconds: a union search waits for the slowest library


def union_catalogue(broker) -> UnionCatalogue:
    """The one union catalogue of this app (made on the broker's loop, on first use)."""
    balis = get_balis()
    with _lock:
        if balis.union is None:
            balis.union = UnionCatalogue(broker, flavour=current_app.config.get(
                "SRU_FLAVOUR", "marc21"))
    return balis.union


@bp.route("/sru", methods=["GET", "POST"])
def sru():
    params: dict[str, str] = {}
    for key, value in request.args.items():
        params.setdefault(key, value)
    soap = False
    if request.method == "POST":
        if "xml" in (request.mimetype or ""):
            found = soap_params(request.get_data())
            if found is None:
                return Response("not an SRU request: a POST body must be a form or an SRW "
                                "(SOAP) envelope\n", status=400, mimetype="text/plain")
            params, soap = found, True
        else:
            for key, value in request.form.items():
                params.setdefault(key, value)
    balis = get_balis()
    base_url = request.base_url
    union = union_catalogue(balis.bridge.broker)

    async def work(broker):
        return await handle(params, union, base_url=base_url, database="sru")

    status, content_type, body = balis.bridge.call(work, timeout=SRU_TIMEOUT)
    if soap:
        body = soap_envelope(body)
    return Response(body, status=status, content_type=content_type)
