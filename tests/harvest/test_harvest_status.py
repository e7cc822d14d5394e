"""``balis harvest status``, one line per expected failure, and ``balis index build``
refusing an unfinished harvest: real Zebra members, a real redis-server."""

from __future__ import annotations

import json
import os
import re
import signal
from pathlib import Path

import pytest
from harvest_helpers import balis, checkpoint, members, start_balis, wait_for, write_config

BULK = 2000
STAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ")


@pytest.fixture(scope="module")
def bulk(zebra) -> int:
    return zebra.load_bulk(BULK)


@pytest.fixture(scope="module")
def harvests(zebra, bulk, tmp_path_factory) -> dict[str, object]:
    """A directory with a finished, an unfinished (SIGKILLed) and a failed harvest."""
    tmp = tmp_path_factory.mktemp("status")
    config = write_config(tmp / "libraries.yaml", {
        "done": ("z3950", zebra.z3950_url("marc21")),
        "cut": members(zebra, "bulk")["z"],
        # A database Zebra does not have: a diagnostic, "a bad answer", never retried.
        "bad": ("z3950", zebra.z3950_url("nosuchdatabase"))})
    out = tmp / "harvest"
    finished = balis("harvest", "done", "--out", str(out / "done.mrc"), "--config", config)
    assert finished.returncode == 0, finished.stderr
    failed = balis("harvest", "bad", "--out", str(out / "bad.mrc"), "--config", config)
    # Slowed down so that the kill lands mid-way.
    cut = start_balis("harvest", "cut", "--out", str(out / "cut.mrc"), "--rate", "20",
                      "--chunk", "20", "--config", config)
    try:
        wait_for(lambda: (checkpoint(out / "cut.mrc") or {}).get("next", 0) > 100,
                 what="progress")
    finally:
        os.kill(cut.pid, signal.SIGKILL)
        cut.communicate()
    return {"dir": out, "config": config, "failed": failed,
            "cut": checkpoint(out / "cut.mrc")["written"],
            "done": checkpoint(out / "done.mrc")["written"]}


def test_an_expected_failure_is_one_line_with_its_time_and_no_traceback(harvests):
    failed = harvests["failed"]
    assert failed.returncode == 1
    lines = failed.stderr.splitlines()
    assert len(lines) == 1, failed.stderr
    assert STAMP.match(lines[0])
    assert "bad: harvest stopped after 0 records: " in lines[0]
    assert "giving up" in lines[0]
    assert "Traceback" not in failed.stderr


def test_status_as_text(harvests):
    done = balis("harvest", "status", str(harvests["dir"]))
    assert done.returncode == 0, done.stderr
    lines = {line.split()[0]: line for line in done.stdout.splitlines()}
    assert sorted(lines) == ["bad", "cut", "done"]
    assert f"{harvests['done']} of {harvests['done']} records" in lines["done"]
    assert "  done  written " in lines["done"]
    assert f"{harvests['cut']} of {BULK} records" in lines["cut"]
    assert "UNFINISHED" in lines["cut"] and "last error" not in lines["cut"]
    assert "UNFINISHED" in lines["bad"]
    assert "last error: " in lines["bad"]
    assert str(harvests["dir"] / "cut.mrc") in lines["cut"]


def test_status_as_json(harvests):
    done = balis("harvest", "status", str(harvests["dir"]), "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["queue"] is None
    rows = {row["library"]: row for row in data["harvests"]}
    assert sorted(rows) == ["bad", "cut", "done"]
    assert set(rows["done"]) == {"library", "output", "format", "state", "records",
                                 "skipped", "hits", "error", "updated", "job"}
    assert (rows["done"]["state"], rows["done"]["records"]) == ("done", harvests["done"])
    assert rows["done"]["hits"] == harvests["done"] and rows["done"]["error"] is None
    assert rows["cut"]["state"] == "unfinished" and rows["cut"]["hits"] == BULK
    assert 100 <= rows["cut"]["records"] < BULK
    assert rows["bad"]["state"] == "unfinished" and rows["bad"]["error"]
    assert rows["bad"]["format"] == "iso2709" and rows["bad"]["job"] is None
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", rows["done"]["updated"])


def test_a_damaged_checkpoint_is_reported_not_a_crash(tmp_path):
    (tmp_path / "x.mrc").write_bytes(b"")
    (tmp_path / "x.mrc.checkpoint").write_text('{"version": 1, "library": "x"', "utf-8")
    (tmp_path / "y.mrc.checkpoint").write_text('{"version": 1, "library": "y"}', "utf-8")
    done = balis("harvest", "status", str(tmp_path), "--json")
    assert done.returncode == 0, done.stderr
    rows = {row["library"]: row for row in json.loads(done.stdout)["harvests"]}
    assert rows["x"]["state"] == rows["y"]["state"] == "damaged"
    assert "not JSON" in rows["x"]["error"]
    text = balis("harvest", "status", str(tmp_path))
    assert text.returncode == 0 and "Traceback" not in text.stderr
    assert text.stdout.count("DAMAGED") == 2


def test_status_of_a_directory_not_there_is_one_line(tmp_path):
    done = balis("harvest", "status", str(tmp_path / "missing"))
    assert done.returncode == 2
    assert done.stderr.startswith("balis: ") and len(done.stderr.splitlines()) == 1


def test_library_harvests_still_parse_beside_status(harvests, tmp_path):
    done = balis("harvest", "done", "--out", str(tmp_path / "again.mrc"), "--config",
                 str(harvests["config"]))
    assert done.returncode == 0, done.stderr
    stray = balis("harvest", "done", "extra", "--out", str(tmp_path / "x.mrc"))
    assert stray.returncode == 2 and "unexpected argument 'extra'" in stray.stderr
    missing = balis("harvest", "done")
    assert missing.returncode == 2 and "--out is required" in missing.stderr


def test_status_with_the_queue_shows_each_members_job(zebra, bulk, redis_server, tmp_path):
    from redis import Redis

    url = redis_server.url.rpartition("/")[0] + "/9"
    Redis.from_url(url).flushdb()
    config = write_config(tmp_path / "libraries.yaml", {
        "m": ("z3950", zebra.z3950_url("marc21")), **members(zebra, "bulk")})
    out = tmp_path / "harvests"
    queued = balis("harvest", "--all", "--out", str(out), "--queue", url, "--config", config)
    assert queued.returncode == 0, queued.stderr
    # No worker yet: every member's job waits, and no harvest has a checkpoint.
    before = json.loads(balis("harvest", "status", str(out), "--queue", url, "--json").stdout)
    assert before["queue"]["depth"] == 3 and before["queue"]["workers"] == []
    assert sorted((r["library"], r["state"], r["job"]["status"], r["job"]["retries_left"])
                  for r in before["harvests"]) == [
        ("m", "not-started", "queued", 3), ("s", "not-started", "queued", 3),
        ("z", "not-started", "queued", 3)]
    worker = balis("worker", "--queue", url, "--burst", timeout=300)
    assert worker.returncode == 0, worker.stderr
    after = balis("harvest", "status", str(out), "--queue", url)
    assert after.returncode == 0, after.stderr
    lines = after.stdout.splitlines()
    assert sum(": finished" in line for line in lines) == 3
    assert sum("  done  written " in line for line in lines) == 3
    assert lines[-1].startswith(f"queue {url}: 0 waiting; jobs: 3 finished; 0 workers alive")
    # Worker lines carry their time.
    assert all(re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", line)
               for line in worker.stderr.splitlines() if line.strip())
    assert "Traceback" not in worker.stderr


def test_a_failing_job_is_one_line_per_attempt_then_giving_up(zebra, redis_server, tmp_path):
    from redis import Redis

    url = redis_server.url.rpartition("/")[0] + "/10"
    Redis.from_url(url).flushdb()
    config = write_config(tmp_path / "libraries.yaml",
                          {"bad": ("z3950", zebra.z3950_url("nosuchdatabase"))})
    out = tmp_path / "harvests"
    assert balis("harvest", "--all", "--out", str(out), "--queue", url,
                 "--config", config).returncode == 0
    worker = balis("worker", "--queue", url, "--burst", timeout=300)
    assert worker.returncode == 0, worker.stderr
    assert "Traceback" not in worker.stderr
    failures = [line for line in worker.stderr.splitlines()
                if "bad: harvest stopped after 0 records" in line]
    assert [line.rsplit("; ", 1)[1].split(" (job")[0] for line in failures] == [
        "will retry (2 left)", "will retry (1 left)", "will retry (0 left)", "giving up"]
    status = json.loads(balis("harvest", "status", str(out), "--queue", url,
                              "--json").stdout)
    [row] = status["harvests"]
    assert row["job"]["status"] == "failed" and row["job"]["retries_left"] == 0
    assert "harvest stopped after 0 records" in row["job"]["error"]
    assert row["state"] == "unfinished" and row["error"]


def test_index_build_refuses_an_unfinished_harvest(harvests, tmp_path):
    folder: Path = harvests["dir"]  # type: ignore[assignment]
    index = tmp_path / "union.sqlite"
    refused = balis("index", "build", str(folder / "done.mrc"), str(folder / "cut.mrc"),
                    "--out", str(index))
    assert refused.returncode == 2, refused.stderr
    assert not index.exists()
    assert (f"{folder / 'cut.mrc'}: unfinished harvest ({harvests['cut']} records, "
            f"checkpoint done: false); finish it with balis harvest cut --out "
            f"{folder / 'cut.mrc'} --resume, or pass --allow-partial") in refused.stderr
    assert "done.mrc" not in refused.stderr.replace(str(folder / "cut.mrc"), "")
    assert "Traceback" not in refused.stderr
    partial = balis("index", "build", str(folder / "done.mrc"), str(folder / "cut.mrc"),
                    "--out", str(index), "--allow-partial")
    assert partial.returncode == 0, partial.stderr
    assert "cut.mrc: unfinished harvest" in partial.stderr and "indexed anyway" in partial.stderr
    assert index.exists()
    assert f"{harvests['done'] + harvests['cut']} records of 2 libraries" in partial.stdout
    # An update would replace the library's records by part of them: refused alike.
    before = index.read_bytes()
    update = balis("index", "update", str(index), str(folder / "cut.mrc"))
    assert update.returncode == 2, update.stderr
    assert "cut.mrc: unfinished harvest" in update.stderr and "--allow-partial" in update.stderr
    assert index.read_bytes() == before


def test_index_build_refuses_a_harvest_changed_after_it_finished(harvests, tmp_path):
    copy = tmp_path / "done.mrc"
    folder: Path = harvests["dir"]  # type: ignore[assignment]
    copy.write_bytes((folder / "done.mrc").read_bytes()[:-100])
    (tmp_path / "done.mrc.checkpoint").write_bytes(
        (folder / "done.mrc.checkpoint").read_bytes())
    refused = balis("index", "build", str(copy), "--out", str(tmp_path / "u.sqlite"))
    assert refused.returncode == 2
    assert "changed after the harvest finished" in refused.stderr


def test_an_output_that_cannot_be_written_is_one_line(harvests, tmp_path):
    (tmp_path / "file").write_text("not a directory", "utf-8")
    done = balis("harvest", "done", "--out", str(tmp_path / "file" / "x.mrc"), "--config",
                 str(harvests["config"]))
    assert done.returncode == 1
    assert len(done.stderr.splitlines()) == 1 and "Traceback" not in done.stderr
    assert STAMP.match(done.stderr) and "cannot write" in done.stderr
