"""The proof: a search outlives the process that started it.

Several real ``balis serve`` processes share one Redis (``redis_server``) and one real
PostgreSQL (``postgres``, the ILL ledger), as docs/deployment.md deploys them, over a
small consortium of real member servers: Zebra's two databases answering at once, and
yaz-ztest with a 60 s search delay that never answers within its 3 s timeout. A search is
started on one process, which is then killed (SIGKILL) or stopped (SIGTERM: a drain that
lets the search finish, or not; the test holds either way). The reader polls the other
processes: the search ends by its deadline (and a short grace) with every library's final
state, and the record's MARC (the MARC page, ``/api/records/ID?format=marcxml``) shows on
every process, not only on the one whose connectors fetched it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import pytest
import redis

from peers.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
# Zebra marc21: 13 records, unimarc: the BNU ones; with 20 a library, the first round
# brings them all, so no reader pages further with its own connectors (which would bring
# it MARC of its own instead of the store's).
QUERY = "中国"
TIMEOUT = 4  # seconds, every library's (the slow one: SLOW_TIMEOUT)
SLOW_TIMEOUT = 3
DEADLINE = TIMEOUT + 10  # the first round's deadline (broker.search.session.DEADLINE_MARGIN)
PAGE = 100  # records per page asked for: every one (the first round brings them all)
GRACE = 2.0  # redis_store.GRACE: a reader never waits longer past the deadline
SLACK = 1.5  # this test's polling and the processes' own steps
MARC_MISSING = "该记录的原始 MARC 已不在本服务器上"  # the page's words (catalogue key marc_missing)

CONFIG = """
consortium: {{name: 多进程测试联盟, max_selected: 10}}
defaults: {{timeout: {timeout}, max_records: 20}}
categories: [{{id: t, name: 测试图书馆}}]
libraries:
  - {{id: zm, name: 甲馆, category: t, connector: {{protocol: z3950, url: "{zm}"}}}}
  - {{id: zu, name: 乙馆, category: t,
     connector: {{protocol: z3950, url: "{zu}", format: unimarc}}}}
  - {{id: slow, name: 慢馆, category: t,
     connector: {{protocol: z3950, url: "{slow}", timeout: {slow_timeout}}}}}
"""


class Serve:
    """One ``balis serve`` subprocess; its output is read all along (kept in ``lines``)."""

    def __init__(self, config: Path, env: dict[str, str], instance: Path) -> None:
        self.port = free_port()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "balis", "serve", "--config", str(config), "--port",
             str(self.port), "--threads", "4"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT,
            env={**env, "BALIS_INSTANCE": str(instance)})
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def wait_ready(self, seconds: float = 40) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if self.process.poll() is not None:
                break
            try:
                with urllib.request.urlopen(self.url("/api/libraries"), timeout=5) as reply:
                    if reply.status == 200:
                        return
            except (OSError, urllib.error.URLError):
                time.sleep(0.2)
        raise AssertionError(f"balis serve did not start:\n{self.output}")

    def get(self, path: str) -> tuple[int, bytes, dict[str, str]]:
        try:
            with urllib.request.urlopen(self.url(path), timeout=30) as reply:
                return reply.status, reply.read(), dict(reply.headers)
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read(), dict(exc.headers)

    def json(self, path: str) -> dict:
        status, body, _headers = self.get(path)
        assert status == 200, (status, body[:500])
        return json.loads(body)

    def start_search(self) -> str:
        request = urllib.request.Request(
            self.url("/api/searches"), method="POST",
            data=json.dumps({"q": QUERY, "libraries": ["zm", "zu", "slow"]}).encode(),
            headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as reply:
            assert reply.status == 202
            return json.loads(reply.read())["id"]

    def stop(self) -> None:
        """Ends the process this test started (by its PID), however it is by then."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._reader.join(5)


@pytest.fixture
def cluster_env(tmp_path, zebra, ztest, redis_server, postgres, ill_postgres_template):
    """The configuration and environment every process shares."""
    config = tmp_path / "libraries.yaml"
    config.write_text(CONFIG.format(
        timeout=TIMEOUT, slow_timeout=SLOW_TIMEOUT, zm=zebra.z3950_url("marc21"),
        zu=zebra.z3950_url("unimarc"), slow=ztest.z3950_url("Default?search-delay=60")),
        encoding="utf-8")
    database = postgres.create_database(f"multi_{uuid.uuid4().hex[:8]}",
                                        ill_postgres_template)
    env = {k: v for k, v in os.environ.items() if not k.startswith("BALIS_")}
    env.update({"BALIS_REDIS_URL": redis_server.url, "DATABASE_URL": database,
                "BALIS_SECRET_KEY": "multi-process-test-" + uuid.uuid4().hex,
                "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH"))
                                              if p)})
    return config, env, tmp_path


def _final_state(readers: list[Serve], session_id: str, began: float) -> tuple[dict, float]:
    """Poll the readers in turn until the search is done (or well past its deadline)."""
    turn = 0
    while True:
        state = readers[turn % len(readers)].json(f"/api/searches/{session_id}?count={PAGE}")
        if state["done"]:
            return state, time.monotonic() - began
        assert time.monotonic() - began < DEADLINE + GRACE + 10, state["libraries"]
        turn += 1
        time.sleep(0.25)


def _check_round(owner: Serve, readers: list[Serve], how: signal.Signals,
                 raw: redis.Redis) -> None:
    began = time.monotonic()
    session_id = owner.start_search()
    owner.process.send_signal(how)  # by its PID: the process that runs the search
    state, took = _final_state(readers, session_id, began)
    owner.process.wait(timeout=DEADLINE + 20)

    # Done by the deadline (and the grace), with every library's final state.
    assert took <= DEADLINE + GRACE + SLACK, (took, state["libraries"])
    libraries = {lib["id"]: lib for lib in state["libraries"]}
    assert libraries["zm"]["status"] == "ok" and libraries["zm"]["hits"] == 13
    assert libraries["zu"]["status"] == "ok" and libraries["zu"]["hits"] > 0
    assert all(lib["fetched"] == lib["hits"] for lib in (libraries["zm"], libraries["zu"]))
    assert libraries["slow"]["status"] == "timeout"
    assert libraries["slow"]["reason"] in ("timeout", "interrupted")
    assert libraries["slow"]["error"]
    if how == signal.SIGKILL:  # nobody else could have ended it: a reader's process did
        assert any(f"session {session_id}: the process running it stopped" in r.output
                   or f"session {session_id} ended past its deadline" in r.output
                   for r in readers)
    print(f"{how.name}: done after {took:.1f} s (deadline {DEADLINE} s)")
    # Every reader sees the same final state.
    for reader in readers:
        again = reader.json(f"/api/searches/{session_id}?count={PAGE}")
        assert again["libraries"] == state["libraries"]
        assert [r["id"] for r in again["records"]] == [r["id"] for r in state["records"]]
    # The long poll of the live results page answers at once for a finished search.
    live = readers[-1].json(f"/results/{session_id}/live?rev=-1")
    assert live["done"] is True

    # The MARC of a record of each fast library, on every reader.
    records = state["records"]
    assert records
    chosen = [next(r for r in records if lib in r["libraries"]) for lib in ("zm", "zu")]
    for reader in readers:
        for record in chosen:
            quoted = urllib.parse.quote(record["id"])
            status, body, headers = reader.get(
                f"/api/records/{quoted}?session={session_id}&format=marcxml")
            assert status == 200, (reader.port, status, body[:300])
            assert headers["Content-Type"].startswith("application/marcxml+xml")
            assert body.count(b"<record") == len(record["sources"]) > 0
            assert b"not available" not in body and "X-Missing-Sources" not in headers
            status, page, _headers = reader.get(f"/marc/{quoted}?s={session_id}")
            text = page.decode()
            assert status == 200 and 'class="marc-fields"' in text
            assert MARC_MISSING not in text
            assert record["sources"][0] in text

    # With the stored MARC gone (expired, evicted), a reader that never fetched a record
    # itself says so: 503 with an error, never an empty collection.
    raw.delete(f"balis:session:{session_id}:marc")
    takers = [r for r in readers if f"session {session_id}: the process running it stopped"
              in r.output]
    bystander = next(r for r in readers if r not in takers)
    unseen = [r for r in records if r["id"] not in {c["id"] for c in chosen}]
    if unseen:
        quoted = urllib.parse.quote(unseen[0]["id"])
        status, body, _headers = bystander.get(
            f"/api/records/{quoted}?session={session_id}&format=marcxml")
        assert status == 503, (status, body[:300])
        assert "not available" in json.loads(body)["error"]
        status, page, _headers = bystander.get(f"/marc/{quoted}?s={session_id}")
        assert status == 200 and MARC_MISSING in page.decode()


def test_a_search_outlives_its_process(cluster_env, redis_server):
    config, env, tmp_path = cluster_env
    raw = redis.Redis.from_url(redis_server.url)
    servers: list[Serve] = []
    try:
        # Four at once (the fourth for the SIGTERM round), on a migrated database.
        servers = [Serve(config, env, tmp_path / f"instance-{n}") for n in range(4)]
        for server in servers:
            server.wait_ready()
        first, second, third, fourth = servers
        _check_round(first, [second, third], signal.SIGKILL, raw)
        assert first.process.returncode == -signal.SIGKILL

        # Again with SIGTERM, the fourth process running the search.
        _check_round(fourth, [second, third], signal.SIGTERM, raw)
        assert fourth.process.returncode is not None
    finally:
        for server in servers:
            server.stop()
        raw.close()
