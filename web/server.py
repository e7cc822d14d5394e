"""Serving the app: waitress (a production WSGI server, multi-threaded, pure Python) with
an access log, started by ``balis serve`` and ``balis demo``.

One process, many threads: every request thread shares the app's one broker loop
(web.bridge). For several processes behind a proxy, run ``balis serve`` more than once
with ``BALIS_REDIS_URL`` set so they share search sessions.
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable, Iterable
from types import FrameType
from typing import TYPE_CHECKING

from flask import Flask
from waitress.server import BaseWSGIServer, MultiSocketServer, create_server

if TYPE_CHECKING:
    from _typeshed import OptExcInfo
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

logger = logging.getLogger(__name__)
access_log = logging.getLogger("balis.access")

DEFAULT_THREADS = 16  # request threads: a live results page holds one while it waits


class AccessLog:
    """WSGI middleware: one line per request (method, path, status, size, time)."""

    def __init__(self, app: WSGIApplication) -> None:
        self.app = app

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse
                 ) -> Iterable[bytes]:
        began = time.monotonic()
        seen: dict[str, str] = {}

        def recording_start(status: str, headers: list[tuple[str, str]],
                            exc_info: OptExcInfo | None = None, /
                            ) -> Callable[[bytes], object]:
            seen["status"] = status.split(" ", 1)[0]
            seen["size"] = next((v for k, v in headers if k.lower() == "content-length"), "-")
            return start_response(status, headers, exc_info)

        try:
            return self.app(environ, recording_start)
        finally:
            path = environ.get("PATH_INFO", "")
            query = environ.get("QUERY_STRING")
            access_log.info("%s %s %s%s %s %s %.0fms", environ.get("REMOTE_ADDR", "-"),
                            environ.get("REQUEST_METHOD"), path, f"?{query}" if query else "",
                            seen.get("status", "-"), seen.get("size", "-"),
                            (time.monotonic() - began) * 1000)


def make_server(app: Flask, host: str, port: int, threads: int = DEFAULT_THREADS
                ) -> MultiSocketServer | BaseWSGIServer:
    """A waitress server bound to host:port (port 0: any free one; ``bound_port``).
    Raises OSError when the address cannot be used."""
    return create_server(AccessLog(app.wsgi_app), host=host, port=port, threads=threads,
                         ident="balis-broker", channel_timeout=120,
                         connection_limit=1000, clear_untrusted_proxy_headers=True)


def bound_port(server: MultiSocketServer | BaseWSGIServer) -> int:
    """The port ``server`` listens on (the free one it took when asked for port 0)."""
    if isinstance(server, MultiSocketServer):  # a host name with several addresses
        return server.effective_listen[0][1]
    # types-waitress leaves effective_port out; BaseWSGIServer.__init__ sets it.
    port: int = server.effective_port  # type: ignore[attr-defined]
    return port


def run(server: MultiSocketServer | BaseWSGIServer,
        on_stop: Callable[[], None] | None = None) -> None:
    """Serve until Ctrl-C or SIGTERM, then close the server and call ``on_stop``."""
    def terminate(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        server.close()
        if on_stop is not None:
            on_stop()
