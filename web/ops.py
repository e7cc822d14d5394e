"""What operators and their machines ask of a running process (CONTRACTS section 6):

- ``GET /api/health/live``: 200 while the process answers (a restart is no cure otherwise);
- ``GET /api/health/ready``: 200 only when every configured dependency answers (the ILL
  database, and Redis when ``BALIS_REDIS_URL`` is set), else 503 naming each failing one;
  503 ``draining`` while the process stops (SIGTERM), so a balancer sends no new readers;
- ``GET /metrics``: Prometheus text (broker/search/metrics.py), with the harvest queue's
  depth read at scrape time when a queue is configured.

``init_app`` also installs what every request goes through: its id (web.request_ids), the
reader's address from trusted proxies (web.proxies, setting ``TRUSTED_PROXIES``), and the
HTTP metrics. ``/api/health`` (each library's health) stays in web/api.py.

Settings: ``TRUSTED_PROXIES`` (addresses or networks), ``REDIS_URL`` (default
$BALIS_REDIS_URL), ``HARVEST_QUEUE`` (default $BALIS_HARVEST_QUEUE: the RQ queue's Redis).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from flask import Blueprint, Flask, Response, current_app, g, jsonify, request

from broker.search import metrics
from broker.search.store import REDIS_URL_VARIABLE
from web.proxies import TrustedProxies
from web.request_ids import RequestIds

logger = logging.getLogger(__name__)

bp = Blueprint("ops", __name__)

CHECK_SECONDS = 2.0  # each readiness check's bound
QUEUE_VARIABLE = "BALIS_HARVEST_QUEUE"
METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# How a search came in, by the blueprint of the request that started it.
_ORIGINS = {"api": "api", "sru": "sru"}


def init_app(app: Flask) -> None:
    """Request ids and trusted proxies around the app, HTTP metrics, this blueprint."""
    try:
        trusted = list(app.config.get("TRUSTED_PROXIES") or ())
        app.wsgi_app = RequestIds(TrustedProxies(app.wsgi_app, trusted))  # type: ignore[method-assign]
    except ValueError as exc:
        from broker.kernel.errors import ConfigError

        raise ConfigError(str(exc)) from None
    metrics.enable()
    app.extensions["balis"].on_close(metrics.process_exited)

    @app.before_request
    def _began() -> None:
        g.balis_began = time.monotonic()
        metrics.ORIGIN.set(_ORIGINS.get(request.blueprint or "", "web"))

    @app.after_request
    def _answered(response: Response) -> Response:
        began = g.get("balis_began")
        if began is not None:
            # The route's pattern, not the path: one series per route, whatever ids.
            route = request.url_rule.rule if request.url_rule is not None else "(unmatched)"
            metrics.http_request(route, request.method, response.status_code,
                                 time.monotonic() - began)
        return response

    app.register_blueprint(bp)


@bp.get("/api/health/live")
def live():
    return jsonify(status="ok")


@bp.get("/api/health/ready")
def ready():
    if getattr(current_app.extensions["balis"], "draining", False):
        return jsonify(status="draining", checks={}), 503
    checks = {name: _bounded(name, check) for name, check in _checks(current_app)}
    ok = all(c["ok"] for c in checks.values())
    return jsonify(status="ok" if ok else "unavailable", checks=checks), 200 if ok else 503


@bp.get("/metrics")
def metrics_text():
    queue = current_app.config.get("HARVEST_QUEUE") or os.environ.get(QUEUE_VARIABLE, "")
    extra = [QueueDepth(queue.strip())] if queue.strip() else []
    body, _type = metrics.exposition(extra)
    return Response(body, mimetype=None, content_type=METRICS_CONTENT_TYPE)


# --- readiness checks -----------------------------------------------------------------

def _checks(app: Flask) -> Iterator[tuple[str, Callable[[], None]]]:
    ill_web = app.extensions.get("ill")
    if ill_web is not None:
        yield "database", lambda: _database(ill_web)
    redis_url = app.config.get("REDIS_URL") or os.environ.get(REDIS_URL_VARIABLE, "")
    if redis_url.strip():
        yield "redis", lambda: _redis(redis_url.strip())


def _database(ill_web: Any) -> None:
    from sqlalchemy import text

    # The ILL service's own engine (opened, and migrated, on first use like any request).
    with ill_web.db.engine.connect() as connection:
        connection.execute(text("SELECT 1"))


def _redis(url: str) -> None:
    from redis import Redis

    client = Redis.from_url(url, socket_connect_timeout=CHECK_SECONDS,
                            socket_timeout=CHECK_SECONDS)
    try:
        client.ping()
    finally:
        client.close()


_in_flight: dict[str, threading.Thread] = {}  # a check that outlived its bound, by name


def _bounded(name: str, check: Callable[[], None]) -> dict[str, Any]:
    """Run ``check`` on a daemon thread for at most CHECK_SECONDS: a dependency that hangs
    (a firewall dropping packets) makes the answer 503, not a hung probe. While such a
    check still hangs, the next probes fail at once instead of piling up threads."""
    outcome: dict[str, Any] = {}
    began = time.monotonic()
    previous = _in_flight.get(name)
    if previous is not None and previous.is_alive():
        return {"ok": False, "error": "the previous check has not answered yet", "ms": 0}

    def run() -> None:
        try:
            check()
            outcome["ok"] = True
        except Exception as exc:
            outcome["error"] = _short(exc)

    worker = threading.Thread(target=run, name="balis-ready-check", daemon=True)
    worker.start()
    worker.join(CHECK_SECONDS)
    if worker.is_alive():
        _in_flight[name] = worker
    ms = round((time.monotonic() - began) * 1000)
    if outcome.get("ok"):
        return {"ok": True, "error": None, "ms": ms}
    error = outcome.get("error") or f"no answer within {CHECK_SECONDS:g} s"
    logger.warning("not ready: %s", error)
    return {"ok": False, "error": error, "ms": ms}


def _short(exc: BaseException) -> str:
    """One line a person can read: SQLAlchemy's wrapped driver message without its
    SQL and background link."""
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    first = text[0] if text else ""
    return f"{type(exc).__name__}: {first}"[:300]


# --- the harvest queue at scrape time ---------------------------------------------------

class QueueDepth:
    """A Prometheus collector: jobs waiting on the harvest queue, read when scraped
    (``balis_harvest_queue_jobs``), and whether the queue's Redis answered
    (``balis_harvest_queue_up``)."""

    def __init__(self, url: str) -> None:
        self.url = url

    def describe(self) -> list:
        return []  # read at scrape time only: nothing to check at registration

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        depth, up = None, 0.0
        try:
            depth = _queue_length(self.url)
            up = 1.0
        except Exception as exc:
            logger.warning("cannot read the harvest queue at %s: %s", self.url, _short(exc))
        yield GaugeMetricFamily("balis_harvest_queue_up", "1 when the harvest queue's "
                                "Redis answered at this scrape, else 0.", value=up)
        if depth is not None:
            yield GaugeMetricFamily("balis_harvest_queue_jobs", "Harvest jobs waiting on the "
                                    "RQ queue (not yet taken by a worker).", value=depth)


def _queue_length(url: str) -> int:
    from redis import Redis
    from rq import Queue

    from broker.harvest.queue import QUEUE_NAME

    connection = Redis.from_url(url, socket_connect_timeout=CHECK_SECONDS,
                                socket_timeout=CHECK_SECONDS)
    try:
        return int(Queue(QUEUE_NAME, connection=connection).count)
    finally:
        connection.close()
