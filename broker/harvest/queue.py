"""Harvests spread over machines: one RQ job per member on a Redis-backed queue.

``balis harvest --all --queue redis://...`` enqueues; ``balis worker --queue redis://...``
on each machine takes jobs. A job carries the library's whole config entry, so workers
need the package but not the libraries file; the output paths must mean the same place to
every worker (a shared directory). A job always continues from the checkpoint it finds,
so RQ's retry of a job whose worker died, or whose member failed, goes on where it left
off. (RQ counts a job as abandoned once its worker's heartbeat lapses: about 90 s.)
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from broker.harvest.harvester import HarvestOptions, harvest_sync
from broker.kernel.config import Library
from broker.kernel.errors import ConnectorError, UsageError

if TYPE_CHECKING:
    from redis import Redis

logger = logging.getLogger(__name__)

QUEUE_NAME = "balis-harvest"
JOB_RETRIES = 3


def harvest_job(library: Library, out: str, options: dict[str, Any]) -> dict[str, Any]:
    """One member's harvest, run by a worker; raises (so RQ retries) unless it finished."""
    result = harvest_sync(library, Path(out), HarvestOptions(**options), resume=True)
    if not result.done:
        raise ConnectorError(f"{library.id}: {result.error} (resumable: the retry goes on "
                             "from the checkpoint)")
    logger.info("%s: %d records written to %s, %d skipped", library.id, result.written,
                out, result.skipped)
    return {"library": library.id, "out": out, "written": result.written,
            "skipped": result.skipped, "hits": result.hits}


def _redis(url: str) -> Redis:
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

    queue = Queue(QUEUE_NAME, connection=_redis(url))
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


def work(url: str, *, burst: bool = False) -> bool:
    """Run an RQ worker on the harvest queue (until stopped, or until empty with burst)."""
    from rq import Queue, Worker

    connection = _redis(url)
    worker = Worker([Queue(QUEUE_NAME, connection=connection)], connection=connection)
    return worker.work(burst=burst, logging_level="INFO")
