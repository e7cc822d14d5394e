"""``balis harvest status [DIR] [--queue URL] [--json]`` (CONTRACTS section 1): what each
member's harvest has done, from its checkpoint, and with ``--queue`` its job on the queue.

Exit status 0 whatever the harvests' states (the states are the answer); 2 for a DIR that
is not there or a queue that cannot be reached, as for every user error.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

from broker.kernel.errors import UsageError

if TYPE_CHECKING:
    from broker.harvest.queue_status import JobState, QueueState
    from broker.harvest.status import HarvestState

# Which of several jobs for one output file says most about it now.
_RELEVANCE = ("started", "queued", "scheduled", "deferred", "failed", "stopped", "finished")


def run_status(args: argparse.Namespace) -> int:
    from broker.harvest.status import HarvestState, scan

    directory: Path = args.directory or Path(".")
    if not directory.exists():
        raise UsageError(f"{directory} does not exist (give the directory of the harvests, "
                         "as given to --out)")
    harvests = scan(directory)
    queue = None
    if args.queue:
        from broker.harvest.queue_status import queue_state

        queue = queue_state(args.queue)
    jobs = _jobs_by_output(queue)
    here = {_key(h.output) for h in harvests}
    root = _key(directory if directory.is_dir() else directory.parent)
    for key, job in sorted(jobs.items()):
        # A queued job has no checkpoint before a worker starts it: still its member's row.
        if key not in here and Path(key).parent == Path(root):
            harvests.append(HarvestState(Path(key), job.library, "not-started"))
    harvests.sort(key=lambda h: (h.library or "", str(h.output)))
    if args.json:
        print(json.dumps(_as_json(directory, harvests, jobs, queue), ensure_ascii=False))
        return 0
    if not harvests:
        print(f"no harvests in {directory} (no *.checkpoint files"
              + (", and no job on the queue for it)" if queue else ")"))
    for harvest in harvests:
        print(_line(harvest))
        found = jobs.get(_key(harvest.output))
        if found is not None:
            print(f"    job {found.id}: {found.describe()}")
    if queue is not None:
        print(queue.summary())
    return 0


def _key(path: Path) -> str:
    return str(Path(path).resolve())


def _jobs_by_output(queue: QueueState | None) -> dict[str, JobState]:
    if queue is None:
        return {}
    best: dict[str, JobState] = {}
    for job in queue.jobs:
        if job.output is None:
            continue
        key = _key(job.output)
        current = best.get(key)
        if current is None or _rank(job) < _rank(current):
            best[key] = job
    return best


def _rank(job: JobState) -> int:
    return _RELEVANCE.index(job.status) if job.status in _RELEVANCE else len(_RELEVANCE)


def _line(harvest: HarvestState) -> str:
    parts = [harvest.library or "?", str(harvest.output)]
    if harvest.format:
        parts.append(harvest.format)
    if harvest.phase in ("done", "unfinished") or harvest.records:
        of = f" of {harvest.hits}" if harvest.hits is not None else ""
        parts.append(f"{harvest.records}{of} records"
                     + (f" ({harvest.skipped} skipped)" if harvest.skipped else ""))
    parts.append({"done": "done", "unfinished": "UNFINISHED", "damaged": "DAMAGED",
                  "not-started": "not started"}[harvest.phase])
    if harvest.updated is not None:
        parts.append("written " + time.strftime("%Y-%m-%d %H:%M:%S",
                                                time.localtime(harvest.updated)))
    line = "  ".join(parts)
    if harvest.error:
        line += f"  {'last error' if harvest.phase != 'corrupt' else 'problem'}: {harvest.error}"
    return line


def _as_json(directory: Path, harvests: list[HarvestState], jobs: dict[str, JobState],
             queue: QueueState | None) -> dict[str, object]:
    rows = []
    for harvest in harvests:
        row = harvest.as_dict()
        job = jobs.get(_key(harvest.output))
        row["job"] = job.as_dict() if job is not None else None
        rows.append(row)
    return {"directory": str(directory), "harvests": rows,
            "queue": queue.as_dict() if queue is not None else None}
