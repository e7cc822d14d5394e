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

from flask import Flask
from waitress.server import create_server

logger = logging.getLogger(__name__)
access_log = logging.getLogger("balis.access")

DEFAULT_THREADS = 16  # request threads: a live results page holds one while it waits


class AccessLog:
    """WSGI middleware: one line per request (method, path, status, size, time)."""

    def __init__(self, app: Callable) -> None:
        self.app = app

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        began = time.monotonic()
        seen: dict[str, str] = {}

        def recording_start(status: str, headers: list, exc_info=None):
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


def make_server(app: Flask, host: str, port: int, threads: int = DEFAULT_THREADS):
    """A waitress server bound to host:port (port 0: any free one; ``.effective_port``).
    Raises OSError when the address cannot be used."""
    return create_server(AccessLog(app.wsgi_app), host=host, port=port, threads=threads,
                         ident="balis-broker", channel_timeout=120,
                         connection_limit=1000, clear_untrusted_proxy_headers=True)


def run(server, on_stop: Callable[[], None] | None = None) -> None:
    """Serve until Ctrl-C or SIGTERM, then close the server and call ``on_stop``."""
    def terminate(signum, frame):
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
