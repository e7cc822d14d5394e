"""The service's Prometheus metrics, in one place (served by web/ops.py at ``/metrics``).

Nothing is recorded until ``enable()`` (the web app calls it): until then every function
here returns at once and prometheus_client is not even imported, so ``balis search`` and
the other commands start as fast as before. The broker, the ILL service and the web call
these functions at the point where something happened; none of them needs Flask.

Several ``balis serve`` processes on one machine: set ``PROMETHEUS_MULTIPROC_DIR`` (an
empty directory, the same for all of them, emptied before they start) and any process's
``/metrics`` answers for all of them (prometheus_client's multiprocess mode). Without it
each process answers for itself, with the usual ``process_*`` figures.
"""

from __future__ import annotations

import contextvars
import logging
import os
import threading
import time
from collections.abc import Iterable
from typing import Any

logger = logging.getLogger(__name__)

MULTIPROCESS_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"

# How a search was started: the web sets web/api/sru per request, the Z39.50 front door
# z3950; anything else (a command, a test) is "other". A context variable, because the
# search starts on the broker's loop in the caller's context.
ORIGIN: contextvars.ContextVar[str] = contextvars.ContextVar("balis_search_origin",
                                                            default="other")

LIBRARY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 10.0, 15.0, 20.0, 30.0)
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class _Metrics:
    """The metric objects; made once per process by ``enable``."""

    def __init__(self) -> None:
        import prometheus_client
        from prometheus_client import Counter, Gauge, Histogram

        # No *_created series beside every counter and histogram: twice the series for a
        # timestamp nobody graphs (multiprocess mode has none either).
        prometheus_client.disable_created_metrics()

        self.searches = Counter(
            "balis_searches_started", "Federated searches started, by how they came in "
            "(web pages, JSON API, SRU front door, Z39.50 front door, other).", ["via"])
        self.library_seconds = Histogram(
            "balis_library_search_seconds", "Time one member library took to answer one "
            "search request, by library and outcome.", ["library", "status"],
            buckets=LIBRARY_BUCKETS)
        self.library_results = Counter(
            "balis_library_results", "Final state of each library in each search: ok, "
            "timeout or error, with the reason code (timeout, busy, suspended, "
            "unreachable, protocol, diagnostic, ...; none for ok).",
            ["library", "status", "reason"])
        self.suspensions = Counter(
            "balis_library_suspensions", "Times a member was suspended after failing "
            "searches in a row.", ["library"])
        self.records_merged = Counter(
            "balis_records_merged", "Records the libraries sent that went into merged "
            "result sets.")
        self.ill_actions = Counter(
            "balis_ill_actions", "Interlibrary loan actions applied to requests (accept, "
            "ship, receive, ...), by action.", ["action"])
        self.http_requests = Counter(
            "balis_http_requests", "HTTP requests answered, by route pattern, method and "
            "status.", ["route", "method", "status"])
        self.http_seconds = Histogram(
            "balis_http_request_seconds", "Time to answer HTTP requests, by route pattern.",
            ["route"], buckets=HTTP_BUCKETS)
        started = Gauge(
            "balis_process_start_time_seconds", "When this balis process started (Unix "
            "time); in multiprocess mode one series per live process (pid label).",
            multiprocess_mode="liveall")
        started.set(_process_start())


_metrics: _Metrics | None = None
_lock = threading.Lock()


def enable() -> None:
    """Start recording (idempotent). With PROMETHEUS_MULTIPROC_DIR set, its directory is
    made if missing (prometheus_client writes a file per process there)."""
    global _metrics
    if _metrics is not None:
        return
    with _lock:
        if _metrics is not None:
            return
        directory = multiprocess_dir()
        if directory:
            os.makedirs(directory, exist_ok=True)
        _metrics = _Metrics()
        logger.debug("metrics enabled%s", f" (multiprocess: {directory})" if directory else "")


def enabled() -> bool:
    return _metrics is not None


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROCESS_VARIABLE, "").strip() or None


# --- recording (each a no-op until enable) ----------------------------------------------

def search_started() -> None:
    if _metrics is not None:
        _metrics.searches.labels(via=ORIGIN.get()).inc()


def library_done(library: str, status: str, reason: str | None,
                 seconds: float | None) -> None:
    """A library's final state in one search; ``seconds`` None when it was never asked
    (suspended, or the deadline passed while it waited for a connection)."""
    if _metrics is None:
        return
    _metrics.library_results.labels(library=library, status=status,
                                    reason=reason or "none").inc()
    if seconds is not None:
        _metrics.library_seconds.labels(library=library, status=status).observe(seconds)


def member_suspended(library: str) -> None:
    if _metrics is not None:
        _metrics.suspensions.labels(library=library).inc()


def records_merged(count: int) -> None:
    if _metrics is not None and count > 0:
        _metrics.records_merged.inc(count)


def ill_action(action: str) -> None:
    if _metrics is not None:
        _metrics.ill_actions.labels(action=action).inc()


def http_request(route: str, method: str, status: int, seconds: float) -> None:
    if _metrics is not None:
        _metrics.http_requests.labels(route=route, method=method, status=str(status)).inc()
        _metrics.http_seconds.labels(route=route).observe(seconds)


# --- serving --------------------------------------------------------------------------

def exposition(extra: Iterable[Any] = ()) -> tuple[bytes, str]:
    """The text format of every metric (all processes' in multiprocess mode) and of the
    ``extra`` collectors (read now: the harvest queue's depth); with its content type."""
    from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

    enable()
    if multiprocess_dir():
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    text = generate_latest(registry)
    extras = CollectorRegistry()
    for collector in extra:
        extras.register(collector)
    return text + generate_latest(extras), CONTENT_TYPE_LATEST


def process_exited() -> None:
    """In multiprocess mode, drop this process's live-only series (at shutdown)."""
    directory = multiprocess_dir()
    if directory and _metrics is not None:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(os.getpid(), directory)


def _process_start() -> float:
    """This process's start (Linux: from /proc; elsewhere: now, when metrics began)."""
    try:
        with open("/proc/self/stat", encoding="ascii") as stat:
            ticks = float(stat.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/stat", encoding="ascii") as boot:
            booted = next(float(line.split()[1]) for line in boot if line.startswith("btime"))
        return booted + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return time.time()
