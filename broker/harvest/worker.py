"""The RQ worker that runs harvest jobs: fast dead-worker recovery, one line per failure.

Imported only by ``balis worker`` (it loads RQ). What it changes in RQ's worker, and why:

- Heartbeats: RQ keeps a running job's started-registry entry valid for its monitoring
  interval + 60 s (90 s) and looks for lapsed entries only in its maintenance, every 10
  minutes, and an idle worker blocks up to ``worker_ttl - 15`` (405 s) between two looks.
  Here a job's entry is valid ``dead_after`` s, the maintenance runs every
  ``dead_after / 2`` s (also while a job runs), and an idle worker waits no longer than
  that for a job: a job whose whole machine died is queued again at most
  ``1.5 * dead_after`` s after its last heartbeat.
- Failures: RQ logs a failed job's traceback. A ``BalisError`` is an expected failure (the
  member is down, timed out, answered badly), and so is an ``OSError`` (the disk): one
  line with the library, the reason and "will retry (N left)" or "giving up", and the
  reason kept in the job's meta for ``balis harvest status``. Anything else is a bug
  and keeps its traceback.
"""

from __future__ import annotations

import logging
from typing import Any

from redis import Redis
from rq import Queue, Worker
from rq.exceptions import AbandonedJobError
from rq.job import Job
from rq.job_lifecycle import call_exception_handlers

from broker.kernel.errors import BalisError

logger = logging.getLogger(__name__)

# RQ's own lines for the failures that ours replace (they name a job id, not a library),
# and its maintenance lines, which run 20 times as often as RQ's default here.
_REPLACED = ("Work horse killed for job %s: retpid=%s, ret_val=%s",
             "Worker %s: job %s failed (%s)",
             "%s cleanup: %s %s",
             "Worker %s: cleaning registries for queue: %s",
             "Worker %s: cleaning group registries")


class _DropReplaced(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.msg not in _REPLACED


def library_of(job: Job) -> str:
    """The member a harvest job is for (its first argument is the library's config)."""
    try:
        return str(job.args[0].id)
    except Exception:  # a job that cannot be unpickled here still gets a name
        return job.description or job.id


def outcome(job: Job) -> str:
    """What RQ does next with a job that just failed (its retry has not been counted)."""
    left = job.retries_left or 0
    return f"will retry ({left - 1} left)" if left > 0 else "giving up"


def record_failure(job: Job, reason: str) -> None:
    """One line for an expected failure, and its reason kept with the job."""
    logger.warning("%s: %s; %s (job %s)", library_of(job), reason, outcome(job), job.id)
    job.meta["last_error"] = reason
    try:
        job.save_meta()
    except Exception:  # the line above is what matters; the queue may be in trouble
        logger.debug("cannot save job %s's meta", job.id, exc_info=True)


class HarvestQueue(Queue):
    """RQ's queue, with a maintenance lock that lapses with the maintenance interval: RQ's
    own lasts 15 minutes, so a machine dying while it cleans would hold off every other
    worker's maintenance that long."""

    lock_seconds = 60

    def acquire_maintenance_lock(self) -> bool:
        return bool(self.connection.set(self.registry_cleaning_key, 1, nx=True,
                                        ex=self.lock_seconds))


class HarvestWorker(Worker):
    def __init__(self, *args: Any, dead_after: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.dead_after = dead_after

    def get_heartbeat_ttl(self, job: Job, working_time: float = 0.0) -> int:
        # How long this heartbeat keeps the job "started": past it, maintenance retries it.
        return self.dead_after

    def maintain_heartbeats(self, job: Job, execution: Any) -> None:
        super().maintain_heartbeats(job, execution)
        # RQ runs maintenance only between jobs; a busy worker (harvests take hours) would
        # otherwise leave a dead machine's job "started" until it is free again.
        if self.should_run_maintenance_tasks:
            self.run_maintenance_tasks()

    def handle_exception(self, job: Job, *exc_info: Any) -> None:
        error = exc_info[1] if len(exc_info) > 1 else None
        # The member's failures, and the disk's (full, read-only): not bugs.
        if not isinstance(error, BalisError | OSError):
            super().handle_exception(job, *exc_info)  # a bug: RQ's traceback
            return
        if isinstance(error, OSError) and not isinstance(error, BalisError):
            record_failure(job, f"cannot write {error.filename}: {error.strerror or error}")
        else:
            record_failure(job, str(error))
        call_exception_handlers(self._exc_handlers, job, *exc_info)


def _horse_killed(job: Job, retpid: int, ret_val: int, rusage: Any) -> None:
    import os

    how = (f"signal {os.WTERMSIG(ret_val)}" if ret_val and os.WIFSIGNALED(ret_val)
           else f"exit status {ret_val}")
    record_failure(job, f"the work process died ({how}); the retry goes on from the "
                        "checkpoint")


def _abandoned(job: Job, exc_type: Any, exc: Any, tb: Any) -> bool | None:
    if isinstance(exc, AbandonedJobError):
        worker = f"worker {job.worker_name}" if job.worker_name else "its worker"
        record_failure(job, f"{worker} stopped sending heartbeats (its machine or process "
                            "died); the retry goes on from the checkpoint")
    return None  # the next handler, if any, still runs


def harvest_worker(connection: Redis, queue_name: str, *, heartbeat: int,
                   dead_after: int) -> HarvestWorker:
    maintenance = max(1, dead_after // 2)
    for name in ("rq.worker", "rq.registry"):
        logging.getLogger(name).addFilter(_DropReplaced())
    queue = HarvestQueue(queue_name, connection=connection)
    queue.lock_seconds = max(maintenance, 5)
    worker = HarvestWorker(
        [queue], connection=connection, queue_class=HarvestQueue, dead_after=dead_after,
        job_monitoring_interval=heartbeat, maintenance_interval=maintenance,
        # An idle worker blocks for a job at most worker_ttl - 15 s before it looks again.
        worker_ttl=maintenance + 15, work_horse_killed_handler=_horse_killed,
        exception_handlers=[_abandoned])
    return worker
