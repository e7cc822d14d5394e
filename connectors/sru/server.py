"""Our SRU server on aiohttp: ``connectors.sru.handler.handle`` at ``/{database}``.

The protocol itself is in ``handler`` (framework-free, shared with the web front end's
``/sru``); this module only takes HTTP requests (GET, a POSTed form, or an SRW SOAP
envelope) and hands their parameters to it.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable

from aiohttp import web

from connectors.catalogue import Catalogue
from connectors.sru.handler import handle
from connectors.sru.request import NOT_SRU_POST, request_params
from connectors.sru.xml import soap_envelope

logger = logging.getLogger(__name__)


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
        soap_body: bytes | None = None
        form: Iterable[tuple[str, object]] = ()
        if request.method == "POST":
            if "xml" in request.content_type:
                soap_body = await request.read()
            else:
                with contextlib.suppress(Exception):  # a broken form: the query string only
                    form = (await request.post()).items()
        found = request_params(request.query.items(), form=form, soap_body=soap_body)
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
