"""Harvests spread over machines: one RQ job per member on a Redis-backed queue.

``balis harvest --all --queue redis://...`` enqueues; ``balis worker --queue redis://...``
on each machine takes jobs. A job carries the library's whole config entry, so workers
need the package but not the libraries file; the output paths must mean the same place to
every worker (a shared directory). A job always continues from the checkpoint it finds,
so RQ's retry of a job whose worker died, or whose member failed, goes on where it left
off.

A job whose whole worker machine dies stays "started" until some worker's maintenance
finds its heartbeat lapsed. RQ's defaults make that up to 10 minutes (maintenance every
600 s, a job's heartbeat valid 90 s); ``HarvestWorker`` sends a heartbeat every
``HEARTBEAT`` s, counts a job abandoned ``DEAD_AFTER`` s after its last one, and runs the
maintenance every ``DEAD_AFTER / 2`` s, idle or busy: a dead machine's job is queued again
within ``DEAD_AFTER * 1.5`` s (90 s by default) and the next free worker takes it.

An expected failure (the member down, a timeout, a bad answer) is one log line with the
library, the reason and what happens next ("will retry (2 left)", "giving up"); RQ's
traceback is kept for bugs.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from broker.harvest.harvester import HarvestOptions, harvest_sync
from broker.harvest.queue_limits import DEAD_AFTER, HEARTBEAT
from broker.kernel.config import Library
from broker.kernel.errors import ConnectorError, UsageError

if TYPE_CHECKING:
    from redis import Redis

logger = logging.getLogger(__name__)

QUEUE_NAME = "balis-harvest"
JOB_RETRIES = 3


class HarvestStopped(ConnectorError):
    """A harvest job that ended before the end for a reason we expect (the member down,
    timing out, answering badly): the worker logs it on one line, and RQ retries it."""

    def __init__(self, library: str, written: int, reason: str) -> None:
        super().__init__(f"harvest stopped after {written} records: {reason}")
        self.library, self.written, self.reason = library, written, reason


def harvest_job(library: Library, out: str, options: dict[str, Any]) -> dict[str, Any]:
    """One member's harvest, run by a worker; raises (so RQ retries) unless it finished."""
    result = harvest_sync(library, Path(out), HarvestOptions(**options), resume=True)
    if not result.done:
        raise HarvestStopped(library.id, result.written, result.error or "unknown reason")
    logger.info("%s: %d records written to %s, %d skipped", library.id, result.written,
                out, result.skipped)
    return {"library": library.id, "out": out, "written": result.written,
            "skipped": result.skipped, "hits": result.hits}


def connect(url: str) -> Redis:
    from redis import Redis

    try:
        connection = Redis.from_url(url)
        connection.ping()
    except Exception as exc:
        raise UsageError(f"cannot reach the queue at {url}: {exc}") from None
    return connection


def enqueue(url: str, jobs: list[tuple[Library, Path]], options: HarvestOptions) -> list[str]:
    """Put one job per (library, output path) on the queue; their ids."""
    from rq import Queue, Retry

    queue = Queue(QUEUE_NAME, connection=connect(url))
    ids = []
    for library, out in jobs:
        job = queue.enqueue(
            "broker.harvest.queue.harvest_job", library, str(Path(out).resolve()),
            asdict(options), retry=Retry(max=JOB_RETRIES),
            job_timeout=-1,  # a catalogue takes as long as it takes; heartbeats show life
            result_ttl=7 * 86400, failure_ttl=7 * 86400,
            description=f"harvest {library.id} into {out}")
        ids.append(job.id)
    return ids


def work(url: str, *, burst: bool = False, heartbeat: int = HEARTBEAT,
         dead_after: int = DEAD_AFTER) -> bool:
    """Run a worker on the harvest queue (until stopped, or until empty with burst)."""
    from broker.harvest.worker import harvest_worker

    if heartbeat < 1:
        raise UsageError("--heartbeat must be at least 1 second")
    if dead_after < 2 * heartbeat + 1:
        raise UsageError("--dead-after must be more than twice --heartbeat, or a slow "
                         "heartbeat would count a live job as abandoned")
    connection = connect(url)
    worker = harvest_worker(connection, QUEUE_NAME, heartbeat=heartbeat,
                            dead_after=dead_after)
    return worker.work(burst=burst, logging_level="INFO")
