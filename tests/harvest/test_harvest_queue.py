"""``balis harvest --all --queue`` and ``balis worker``: a real redis-server, real workers."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from harvest_helpers import (
    balis,
    checkpoint,
    iso_ids,
    members,
    start_balis,
    wait_for,
    write_config,
    yaz_client_dump,
)

from broker.harvest.queue import JOB_RETRIES, QUEUE_NAME

BULK = 2000


@pytest.fixture(scope="module")
def bulk(zebra) -> int:
    return zebra.load_bulk(BULK)


def queue_url(redis_server, db: int) -> str:
    """A Redis database of this test's own, emptied (the server is shared by the session)."""
    from redis import Redis

    url = redis_server.url.rpartition("/")[0] + f"/{db}"
    Redis.from_url(url).flushdb()
    return url


def jobs(url: str):
    from redis import Redis
    from rq import Queue

    queue = Queue(QUEUE_NAME, connection=Redis.from_url(url))
    return queue, [queue.fetch_job(job_id) for job_id in _all_ids(queue)]


def _all_ids(queue) -> list[str]:
    return (queue.job_ids + queue.started_job_registry.get_job_ids()
            + queue.finished_job_registry.get_job_ids() + queue.failed_job_registry.get_job_ids())


def children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (our worker's work horse)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(stat[1]) == pid:
            found.append(int(entry.name))
    return found


def test_two_workers_share_the_members(zebra, bulk, redis_server, tmp_path):
    url = queue_url(redis_server, 5)
    config = write_config(tmp_path / "libraries.yaml", {
        **members(zebra, "bulk"), "m": ("z3950", zebra.z3950_url("marc21"))})
    out = tmp_path / "harvests"
    queued = balis("harvest", "--all", "--out", str(out), "--queue", url, "--config", config)
    assert queued.returncode == 0, queued.stderr
    assert "3 harvest jobs queued" in queued.stderr
    assert [line.split("\t")[0] for line in queued.stdout.splitlines()] == ["z", "s", "m"]

    workers = [start_balis("worker", "--queue", url, "--burst") for _ in range(2)]
    for worker in workers:
        _stdout, stderr = worker.communicate(timeout=180)
        assert worker.returncode == 0, stderr
    _queue, found = jobs(url)
    assert sorted(job.get_status() for job in found) == ["finished"] * 3
    assert sorted(job.return_value()["library"] for job in found) == ["m", "s", "z"]
    reference = yaz_client_dump(zebra, "bulk", bulk)
    assert iso_ids((out / "z.mrc").read_bytes()) == iso_ids(reference)
    assert (out / "s.mrc").read_bytes() == (out / "z.mrc").read_bytes()
    assert checkpoint(out / "m.mrc")["written"] == zebra.databases["marc21"]


def test_a_job_whose_worker_process_dies_is_retried_from_its_checkpoint(
        zebra, bulk, redis_server, tmp_path):
    url = queue_url(redis_server, 6)
    config = write_config(tmp_path / "libraries.yaml", {"z": members(zebra, "bulk")["z"]})
    whole = tmp_path / "whole.mrc"
    assert balis("harvest", "z", "--out", str(whole), "--config", config).returncode == 0
    out = tmp_path / "harvests"
    # Slowed down so that the kill lands mid-way.
    queued = balis("harvest", "--all", "--out", str(out), "--queue", url, "--rate", "20",
                   "--chunk", "20", "--config", config)
    assert queued.returncode == 0, queued.stderr
    target = out / "z.mrc"
    worker = start_balis("worker", "--queue", url, "--burst")
    try:
        wait_for(lambda: (checkpoint(target) or {}).get("next", 0) > 300, what="progress")
        # The work horse, forked by our worker, runs the job: SIGKILL it mid-harvest.
        horses = children(worker.pid)
        assert len(horses) == 1
        os.kill(horses[0], signal.SIGKILL)
        cut = checkpoint(target)["next"]
        # RQ sees its horse die, fails the job and retries it (Retry(max=3)); the retry
        # goes on from the checkpoint, in the same burst.
        _stdout, stderr = worker.communicate(timeout=180)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.communicate()
    assert worker.returncode == 0, stderr
    _queue, found = jobs(url)
    assert [job.get_status() for job in found] == ["finished"]
    assert found[0].retries_left == JOB_RETRIES - 1
    assert 300 < cut < bulk
    assert f"z: resuming at record {cut} of {bulk}" in stderr
    assert target.read_bytes() == whole.read_bytes()
    assert checkpoint(target)["written"] == bulk
