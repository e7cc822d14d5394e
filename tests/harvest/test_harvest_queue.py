"""``balis harvest --all --queue`` and ``balis worker``: a real redis-server, real workers."""

from __future__ import annotations

import json
import os
import re
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
    # cleanup=False: RQ's registries clean themselves when read, and a test that looks must
    # not be the one that retries an abandoned job (the workers' maintenance is under test).
    return (queue.job_ids + queue.started_job_registry.get_job_ids(cleanup=False)
            + queue.finished_job_registry.get_job_ids(cleanup=False)
            + queue.failed_job_registry.get_job_ids(cleanup=False))


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
    # One line of ours for the dead horse (RQ's two lines about it are replaced).
    assert "z: the work process died (signal 9)" in stderr
    assert "will retry (2 left)" in stderr and "Work horse killed" not in stderr
    assert target.read_bytes() == whole.read_bytes()
    assert checkpoint(target)["written"] == bulk


def _finished(url: str) -> bool:
    _queue, found = jobs(url)
    return bool(found) and all(job.get_status() == "finished" for job in found)


def test_a_job_whose_whole_worker_dies_is_taken_up_by_another_worker(
        zebra, bulk, redis_server, tmp_path):
    """The worker and its work horse SIGKILLed, as when their machine dies: nothing tells
    RQ, the job stays "started" until its heartbeat lapses; another worker's maintenance
    then queues it again and the retry goes on from the checkpoint. Short intervals
    (--heartbeat 1 --dead-after 4) stand for the defaults (15 s, 60 s: within 90 s)."""
    url = queue_url(redis_server, 7)
    config = write_config(tmp_path / "libraries.yaml", {"z": members(zebra, "bulk")["z"]})
    whole = tmp_path / "whole.mrc"
    assert balis("harvest", "z", "--out", str(whole), "--config", config).returncode == 0
    out = tmp_path / "harvests"
    queued = balis("harvest", "--all", "--out", str(out), "--queue", url, "--rate", "10",
                   "--chunk", "20", "--config", config)
    assert queued.returncode == 0, queued.stderr
    target = out / "z.mrc"
    fast = ("--heartbeat", "1", "--dead-after", "4")
    first = start_balis("worker", "--queue", url, *fast, start_new_session=True)
    try:
        wait_for(lambda: (checkpoint(target) or {}).get("next", 0) > 300, what="progress")
        horses = children(first.pid)
        assert len(horses) == 1
        # The horse runs in a process group of its own (RQ's setpgrp): kill both groups.
        for group in (first.pid, horses[0]):
            os.killpg(group, signal.SIGKILL)
        first.communicate()
        cut = checkpoint(target)["next"]
        _queue, found = jobs(url)
        assert [job.get_status() for job in found] == ["started"]  # nobody knows yet
        shown = balis("harvest", "status", str(out), "--queue", url, "--json")
        assert shown.returncode == 0, shown.stderr
        [row] = json.loads(shown.stdout)["harvests"]
        assert (row["state"], row["job"]["status"]) == ("unfinished", "started")
        assert row["job"]["heartbeat_age"] >= 0 and row["job"]["worker"]
        text = balis("harvest", "status", str(out), "--queue", url).stdout
        assert f"started on worker {row['job']['worker']}, last heartbeat " in text
    finally:
        if first.poll() is None:
            first.kill()
            first.communicate()
    second = start_balis("worker", "--queue", url, *fast)
    try:
        wait_for(lambda: _finished(url), timeout=120, what="the job to finish elsewhere")
    finally:
        second.send_signal(signal.SIGTERM)  # RQ's warm shutdown: it is idle by now
        _stdout, stderr = second.communicate(timeout=60)
    _queue, found = jobs(url)
    assert found[0].retries_left == JOB_RETRIES - 1
    assert 300 < cut < bulk
    assert f"z: resuming at record {cut} of {bulk}" in stderr
    abandoned_lines = [line for line in stderr.splitlines()
                       if "stopped sending heartbeats" in line]
    assert len(abandoned_lines) == 1, stderr
    abandoned = abandoned_lines[0]
    assert "z: " in abandoned and "will retry (2 left)" in abandoned
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", abandoned)
    assert "Traceback" not in stderr
    assert target.read_bytes() == whole.read_bytes()  # no duplicate, no gap
    assert checkpoint(target)["written"] == bulk
