"""The harvest queue as ``balis harvest status --queue`` shows it: each job's state, the
queue's depth and the workers alive. Read only: no registry is cleaned here (RQ cleans
when asked for counts; a status must not retry anyone's job as a side effect)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, get_args

from broker.harvest.queue import QUEUE_NAME, connect

if TYPE_CHECKING:
    from rq.job import Job

JobPhase = Literal["queued", "started", "failed", "finished", "scheduled", "deferred",
                   "stopped", "canceled", "created", "rate_limited", "ready_to_enqueue",
                   "unknown"]
PHASES: tuple[JobPhase, ...] = get_args(JobPhase)


@dataclass(frozen=True, slots=True)
class JobState:
    id: str
    library: str
    output: Path | None
    status: JobPhase
    worker: str | None  # the worker running it (started) or that ran it last
    worker_alive: bool | None  # for a started job: does its worker still send heartbeats?
    retries_left: int | None
    error: str | None
    last_heartbeat: str | None  # ISO 8601 UTC
    heartbeat_age: float | None = None  # seconds since then, for a started job

    def describe(self) -> str:
        text = {"queued": "queued", "scheduled": "scheduled for a retry",
                "deferred": "waiting for another job", "finished": "finished",
                "stopped": "stopped", "canceled": "canceled", "failed": "failed",
                "started": "started"}.get(self.status, self.status.replace("_", " "))
        if self.status == "started":
            text += f" on worker {self.worker}" if self.worker else ""
            if self.heartbeat_age is not None:
                text += f", last heartbeat {self.heartbeat_age:.0f} s ago"
            if self.worker_alive is False:
                text += (f" (no heartbeat since {self.last_heartbeat}: its worker is gone; "
                         "the job is retried once a worker's maintenance sees it)")
        if self.status == "failed" and self.error:
            text += f": {self.error}"
        elif self.error and self.status != "finished":
            text += f" (last error: {self.error})"
        if self.retries_left is not None and self.status not in ("finished", "canceled"):
            text += f", {self.retries_left} {'retry' if self.retries_left == 1 else 'retries'} left"
        return text

    def as_dict(self) -> dict[str, object]:
        return {"id": self.id, "library": self.library,
                "output": str(self.output) if self.output else None, "status": self.status,
                "worker": self.worker, "worker_alive": self.worker_alive,
                "retries_left": self.retries_left, "error": self.error,
                "last_heartbeat": self.last_heartbeat, "heartbeat_age": self.heartbeat_age}


@dataclass(frozen=True, slots=True)
class WorkerState:
    name: str
    hostname: str | None
    pid: int | None
    state: str  # RQ's: idle, busy, suspended...
    job: str | None  # the job id it runs

    def as_dict(self) -> dict[str, object]:
        return {"name": self.name, "hostname": self.hostname, "pid": self.pid,
                "state": self.state, "job": self.job}


@dataclass(frozen=True, slots=True)
class QueueState:
    url: str
    depth: int  # jobs waiting for a worker
    counts: dict[str, int]  # jobs by status
    workers: tuple[WorkerState, ...]
    jobs: tuple[JobState, ...]

    def as_dict(self) -> dict[str, object]:
        return {"url": self.url, "depth": self.depth, "counts": dict(self.counts),
                "workers": [w.as_dict() for w in self.workers],
                "jobs": [j.as_dict() for j in self.jobs]}

    def summary(self) -> str:
        counts = ", ".join(f"{n} {status}" for status, n in self.counts.items() if n)
        names = ", ".join(f"{w.name} ({w.state})" for w in self.workers)
        return (f"queue {self.url}: {self.depth} waiting"
                + (f"; jobs: {counts}" if counts else "; no jobs")
                + f"; {len(self.workers)} {'worker' if len(self.workers) == 1 else 'workers'}"
                + " alive" + (f": {names}" if names else ""))


def _iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _job_state(job: Job, alive: set[str]) -> JobState:
    from broker.harvest.worker import library_of

    status = job.get_status(refresh=False)
    value: str = status.value if status is not None else "unknown"
    phase: JobPhase = value if value in PHASES else "unknown"
    try:
        output: Path | None = Path(job.args[1])
    except Exception:  # a job this version cannot unpickle is still listed
        output = None
    error = job.meta.get("last_error")
    if error is None and phase == "failed":
        result = job.latest_result()
        if result is not None and result.exc_string:
            # RQ keeps the whole traceback; its last line is the reason.
            error = result.exc_string.strip().splitlines()[-1]
    worker = job.worker_name
    age = None
    if phase == "started" and job.last_heartbeat is not None:
        beat = job.last_heartbeat
        if beat.tzinfo is None:
            beat = beat.replace(tzinfo=dt.UTC)
        age = round(max(0.0, (dt.datetime.now(dt.UTC) - beat).total_seconds()), 1)
    return JobState(job.id, library_of(job), output, phase, worker,
                    (worker in alive) if phase == "started" and worker else None,
                    job.retries_left, str(error) if error else None,
                    _iso(job.last_heartbeat), age)


def queue_state(url: str) -> QueueState:
    """Every harvest job RQ still knows of, in the order they were queued."""
    from rq import Queue, Worker
    from rq.job import Job

    connection = connect(url)
    queue = Queue(QUEUE_NAME, connection=connection)
    waiting = queue.get_job_ids()
    ids = list(waiting)
    for registry in (queue.started_job_registry, queue.scheduled_job_registry,
                     queue.deferred_job_registry, queue.failed_job_registry,
                     queue.finished_job_registry, queue.canceled_job_registry):
        ids += registry.get_job_ids(cleanup=False)
    workers = [w for w in Worker.all(queue=queue)]
    alive = {w.name for w in workers}
    jobs = []
    seen: set[str] = set()
    for job in Job.fetch_many(list(dict.fromkeys(ids)), connection=connection):
        if job is None or job.id in seen:  # expired meanwhile
            continue
        seen.add(job.id)
        jobs.append(_job_state(job, alive))
    jobs.sort(key=lambda j: (j.library, j.id))
    counts: dict[str, int] = {}
    for state in jobs:
        counts[state.status] = counts.get(state.status, 0) + 1
    return QueueState(url, len(waiting), counts,
                      tuple(WorkerState(w.name, w.hostname, w.pid, str(w.get_state()),
                                        w.get_current_job_id()) for w in workers),
                      tuple(jobs))
