"""Serving the app: waitress (a production WSGI server, multi-threaded, pure Python) with
an access log, started by ``balis serve`` and ``balis demo``.

One process, many threads: every request thread shares the app's one broker loop
(web.bridge). For several processes behind a proxy, run ``balis serve`` more than once
with ``BALIS_REDIS_URL`` set so they share search sessions.
"""

from __future__ import annotations

import concurrent.futures
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING, Any, cast

from flask import Flask
from waitress import wasyncore
from waitress.channel import HTTPChannel
from waitress.server import BaseWSGIServer, MultiSocketServer, create_server

if TYPE_CHECKING:
    from _typeshed import OptExcInfo
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

logger = logging.getLogger(__name__)
access_log = logging.getLogger("balis.access")

DEFAULT_THREADS = 16  # request threads: a live results page holds one while it waits


class AccessLog:
    """WSGI middleware: one line per request (client, method, path, status, size, time,
    and the request id)."""

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
            # REMOTE_ADDR as web.proxies left it (the reader, behind a trusted proxy), the
            # id web.request_ids gave the request; the same fields apart for JSON logs.
            path = environ.get("PATH_INFO", "")
            query = environ.get("QUERY_STRING") or ""
            client = environ.get("REMOTE_ADDR") or "-"
            ms = round((time.monotonic() - began) * 1000)
            size = seen.get("size", "-")
            access_log.info(
                "%s %s %s%s %s %s %dms", client, environ.get("REQUEST_METHOD"), path,
                f"?{query}" if query else "", seen.get("status", "-"), size, ms,
                extra={"request_id": environ.get("balis.request_id"),
                       "method": environ.get("REQUEST_METHOD"), "path": path,
                       "query": query, "status": _number(seen.get("status")),
                       "bytes": _number(size), "ms": ms, "client": client})


def _number(text: str | None) -> int | None:
    return int(text) if text and text.isdigit() else None


def make_server(app: Flask, host: str, port: int, threads: int = DEFAULT_THREADS
                ) -> MultiSocketServer | BaseWSGIServer:
    """A waitress server bound to host:port (port 0: any free one; ``bound_port``).
    Raises OSError when the address cannot be used."""
    # Proxy headers are web.proxies' business (create_app installs it on every app: it
    # believes them from TRUSTED_PROXIES only and removes them otherwise), so waitress
    # passes them through instead of dropping them from every peer.
    return create_server(AccessLog(app.wsgi_app), host=host, port=port, threads=threads,
                         ident="balis-broker", channel_timeout=120,
                         connection_limit=1000, clear_untrusted_proxy_headers=False)


def bound_port(server: MultiSocketServer | BaseWSGIServer) -> int:
    """The port ``server`` listens on (the free one it took when asked for port 0)."""
    if isinstance(server, MultiSocketServer):  # a host name with several addresses
        return server.effective_listen[0][1]
    # types-waitress leaves effective_port out; BaseWSGIServer.__init__ sets it.
    port: int = server.effective_port  # type: ignore[attr-defined]
    return port


DRAIN_TIMEOUT = 15.0  # seconds SIGTERM lets live searches and requests in flight finish
FLUSH_GRACE = 3.0  # seconds more for the last answers to be written once searches drained
LOOP_TURN = 0.25  # seconds one turn of the serving loop may wait: how soon a signal acts
DRAIN_TURN = 0.05  # the same while draining, to notice the end of the drain soon


@dataclass(slots=True)
class _Signals:
    """What the handlers saw. They only count: the serving loop acts between its turns, as
    a handler runs wherever the main thread was (perhaps inside waitress, holding a lock)."""

    stops: int = 0
    reloads: int = 0

    def handle(self, signum: int, frame: FrameType | None) -> None:
        if signum == signal.SIGHUP:
            self.reloads += 1
        else:
            self.stops += 1


def run(server: MultiSocketServer | BaseWSGIServer,
        on_stop: Callable[[], None] | None = None, *,
        drain: Callable[[float], concurrent.futures.Future[Any]] | None = None,
        reload: Callable[[], object] | None = None,
        drain_timeout: float = DRAIN_TIMEOUT,
        ready: Callable[[], None] | None = None) -> None:
    """Serve until SIGTERM or Ctrl-C (SIGINT), then stop gracefully and call ``on_stop``.

    Stopping: the listening sockets are closed (new connections are refused); ``drain``
    is called with ``drain_timeout`` (the caller's live searches: the loop watches the
    future it returns); connections already open are served until their requests are
    answered and the drain is done, for at most ``drain_timeout`` + FLUSH_GRACE seconds;
    idle keep-alive connections are closed. A second SIGTERM or SIGINT stops at once.
    SIGHUP calls ``reload`` on this thread, between turns of the loop. ``ready`` is called
    once the signals are handled (a supervisor may send them from then on).
    """
    seen = _Signals()
    previous: dict[signal.Signals, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for name in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            previous[name] = signal.signal(name, seen.handle)
    if ready is not None:
        ready()
    socket_map = _socket_map(server)
    patience = 5  # seconds waitress waits for its request threads at the end
    try:
        _serve(server, socket_map, seen, reload)
        give_up = time.monotonic() + drain_timeout + FLUSH_GRACE
        _stop_listening(socket_map)
        logger.info("stopping: no new connections; %d requests in flight",
                    _busy(socket_map))
        future = drain(drain_timeout) if drain is not None else None
        if not _finish(socket_map, seen, future, give_up):
            patience = 1
    finally:
        server.task_dispatcher.shutdown(timeout=patience)
        wasyncore.close_all(socket_map)
        try:
            if on_stop is not None:
                on_stop()
        finally:
            for name, handler in previous.items():
                signal.signal(name, signal.SIG_DFL if handler is None else handler)


def _socket_map(server: MultiSocketServer | BaseWSGIServer) -> dict[int, Any]:
    # waitress keeps its dispatchers (listeners, trigger, connections) in this map.
    if isinstance(server, MultiSocketServer):
        return cast(dict[int, Any], server.map)
    return cast(dict[int, Any], server._map)  # type: ignore[attr-defined]


def _serve(server: MultiSocketServer | BaseWSGIServer, socket_map: dict[int, Any],
           seen: _Signals, reload: Callable[[], object] | None) -> None:
    """waitress's own loop (server.run), a turn at a time so signals act in between."""
    use_poll = server.adj.asyncore_use_poll
    while not seen.stops:
        wasyncore.loop(timeout=LOOP_TURN, use_poll=use_poll, map=socket_map, count=1)
        if seen.reloads and not seen.stops:
            seen.reloads = 0
            if reload is None:
                logger.info("SIGHUP: nothing to reload here")
                continue
            try:
                reload()
            except Exception:  # a failed reload must not stop the service
                logger.exception("reload failed; still serving what was loaded before")


def _stop_listening(socket_map: dict[int, Any]) -> None:
    for dispatcher in list(socket_map.values()):
        if isinstance(dispatcher, BaseWSGIServer):
            # The listening socket only: the server's trigger stays in the map, as request
            # threads pull it to have their answers written.
            dispatcher.accepting = False
            wasyncore.dispatcher.close(dispatcher)


def _busy(socket_map: dict[int, Any]) -> int:
    """Connections with a request being read, run or written; idle keep-alive ones are
    marked to close (the loop's next turn closes them): during a drain nothing new starts."""
    busy = 0
    for channel in list(socket_map.values()):
        if not isinstance(channel, HTTPChannel):
            continue
        if channel.requests or channel.request is not None or channel.total_outbufs_len:
            busy += 1
        elif not channel.will_close:
            channel.will_close = True
    return busy


def _finish(socket_map: dict[int, Any], seen: _Signals,
            future: concurrent.futures.Future[Any] | None, give_up: float) -> bool:
    """Serve the open connections until they are answered and ``future`` is done; False
    when stopped early (a second signal, or past ``give_up``)."""
    began = time.monotonic()
    while True:
        busy = _busy(socket_map)
        draining = future is not None and not future.done()
        if not busy and not draining:
            if future is not None and future.exception() is not None:
                logger.error("draining the searches failed: %s", future.exception())
            logger.info("stopped serving after %.1f s: every request answered",
                        time.monotonic() - began)
            return True
        if seen.stops > 1:
            logger.warning("second signal: stopping at once (%d requests in flight%s)",
                           busy, ", searches still draining" if draining else "")
            return False
        if time.monotonic() >= give_up:
            logger.warning("gave up on %d requests in flight after %.0f s", busy,
                           time.monotonic() - began)
            return False
        wasyncore.loop(timeout=DRAIN_TURN, map=socket_map, count=1)
