"""The consortium as one SRU target at ``/sru``, served by the web app itself.

The protocol work is ``connectors.sru.handler.handle`` (framework-free); this view only
collects the request's parameters (query string, form, or an SRW/SOAP envelope) and runs
it on the broker's loop over the union catalogue (``broker.catalogues.union``).
"""

from __future__ import annotations

import threading

from flask import Blueprint, Response, current_app, request

from broker.catalogues.union import DEFAULT_DEPTH, UnionCatalogue
from connectors.sru.handler import handle
from connectors.sru.request import NOT_SRU_POST, request_params
from connectors.sru.xml import soap_envelope
from web import get_balis

bp = Blueprint("sru", __name__)

_lock = threading.Lock()
SRU_TIMEOUT = 120.0  # seconds: a union search waits for the slowest library


def union_catalogue(broker) -> UnionCatalogue:
    """The one union catalogue of this app (SRU's and, with ``balis serve --z3950-port``,
    Z39.50's), made on first use; its searches run on the broker's loop. ``UNION_DEPTH``
    in the app's config: records of each library merged into a result set."""
    balis = get_balis()
    config = current_app.config
    with _lock:
        if balis.union is None:
            balis.union = UnionCatalogue(broker, flavour=config.get("SRU_FLAVOUR", "marc21"),
                                         depth=config.get("UNION_DEPTH", DEFAULT_DEPTH))
    return balis.union


@bp.route("/sru", methods=["GET", "POST"])
def sru():
    xml_post = request.method == "POST" and "xml" in (request.mimetype or "")
    found = request_params(request.args.items(multi=True),
                           form=request.form.items(multi=True) if request.method == "POST"
                           else (), soap_body=request.get_data() if xml_post else None)
    if found is None:
        return Response(NOT_SRU_POST, status=400, mimetype="text/plain")
    params, soap = found
    balis = get_balis()
    base_url = request.base_url
    union = union_catalogue(balis.bridge.broker)

    async def work(broker):
        return await handle(params, union, base_url=base_url, database="sru")

    status, content_type, body = balis.bridge.call(work, timeout=SRU_TIMEOUT)
    if soap:
        body = soap_envelope(body)
    return Response(body, status=status, content_type=content_type)
