"""balis serve and the signals operators send: SIGTERM drains live searches and exits 0,
SIGHUP reloads the libraries file (a broken one is refused) and the portal.

Real ``balis serve`` processes over yaz-ztest members; ``Default?search-delay=N`` makes a
member answer in N seconds (tests/peers).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from peers.consortia import config_text, member, slow
from peers.servers import free_port

STARTUP = 30.0  # seconds balis serve may take to print its addresses
DRAIN = 15.0  # --drain-timeout of these tests
BOUND = 10.0  # seconds past the drain limit (and the flush grace) an exit may take


def _fast(ztest, lid: str = "fast", **connector) -> dict:
    return member(lid, "z3950", ztest.z3950_url("Default"), **connector)


class Served:
    """A ``balis serve`` subprocess; its output (stdout and the log on stderr) collected by
    a thread, so a test can wait for a line."""

    def __init__(self, tmp_path: Path, *extra: str, redis: str | None = None) -> None:
        self.port = free_port()
        env = {**os.environ, "BALIS_INSTANCE": str(tmp_path / "instance")}
        env.pop("BALIS_REDIS_URL", None)
        if redis is not None:
            env["BALIS_REDIS_URL"] = redis
        self.process = subprocess.Popen(
            [sys.executable, "-m", "balis", "serve", "--config",
             str(tmp_path / "libraries.yaml"), "--port", str(self.port), *extra],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        self.lines: list[str] = []
        self._ended = False
        self._grew = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()
        try:
            self.wait_for("Press Ctrl-C", STARTUP)
        except AssertionError:
            self.process.kill()
            raise

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._grew:
                self.lines.append(line)
                self._grew.notify_all()
        with self._grew:
            self._ended = True
            self._grew.notify_all()

    @property
    def output(self) -> str:
        with self._grew:
            return "".join(self.lines)

    def wait_for(self, text: str, timeout: float = 20.0) -> str:
        """The first output line containing ``text``; AssertionError with the output if it
        does not come within ``timeout`` seconds."""
        end = time.monotonic() + timeout
        with self._grew:
            while True:
                found = next((line for line in self.lines if text in line), None)
                if found is not None:
                    return found
                left = end - time.monotonic()
                if left <= 0 or self._ended:
                    raise AssertionError(f"no line with {text!r} in:\n{''.join(self.lines)}")
                self._grew.wait(min(left, 0.5))

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def get(self, path: str, timeout: float = 60.0):
        with urllib.request.urlopen(self.url(path), timeout=timeout) as reply:
            body = reply.read()
        return json.loads(body) if body[:1] in (b"{", b"[") else body.decode("utf-8")

    def post(self, path: str, data: dict):
        request = urllib.request.Request(self.url(path), data=json.dumps(data).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as reply:
            return json.loads(reply.read())

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


@pytest.fixture
def serve(tmp_path):
    started: list[Served] = []

    def start(*extra: str, redis: str | None = None) -> Served:
        served = Served(tmp_path, *extra, redis=redis)
        started.append(served)
        return served

    yield start
    for served in started:
        served.stop()


def _write(tmp_path: Path, *members: dict) -> Path:
    path = tmp_path / "libraries.yaml"
    path.write_text(config_text(*members), encoding="utf-8")
    return path


def _in_thread(work):
    """Run ``work()`` on a thread; the returned function joins it and gives its result (or
    raises its exception)."""
    box: dict = {}

    def run() -> None:
        try:
            box["value"] = work()
        except BaseException as exc:  # handed to the test's thread
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()

    def result(timeout: float = 60.0):
        thread.join(timeout)
        assert not thread.is_alive(), "the request did not end"
        if "error" in box:
            raise box["error"]
        return box["value"]
    return result


def _statuses(data: dict) -> dict[str, str]:
    return {lib["id"]: lib["status"] for lib in data["libraries"]}


# --- SIGTERM ------------------------------------------------------------------------------


def test_sigterm_drains_live_searches_answers_requests_in_flight_and_exits_0(
        tmp_path, ztest, serve):
    _write(tmp_path, _fast(ztest), slow(ztest, delay=3))
    z3950 = free_port()
    served = serve("--drain-timeout", str(DRAIN), "--z3950-port", str(z3950))
    socket.create_connection(("127.0.0.1", z3950), timeout=5).close()
    # A live search whose fast library has answered: the long poll waits for the slow one.
    sid = served.post("/api/searches", {"q": "title=5", "libraries": ["fast", "slow"]})["id"]
    while _statuses(served.get(f"/api/searches/{sid}"))["fast"] == "pending":
        time.sleep(0.1)
    revision = served.get(f"/results/{sid}/live?rev=-1")["revision"]
    long_poll = _in_thread(lambda: served.get(f"/results/{sid}/live?rev={revision}"))
    # And a blocking search, which answers once every library is done.
    blocking = _in_thread(lambda: served.get("/api/search?q=title%3D7"))
    time.sleep(0.5)  # both requests are in flight

    stopped_at = time.monotonic()
    served.signal(signal.SIGTERM)
    served.wait_for("stopping: no new connections")
    with pytest.raises(urllib.error.URLError) as refused:
        served.get("/api/libraries", timeout=5)
    assert isinstance(refused.value.reason, ConnectionRefusedError)
    served.wait_for("Z39.50 listener on port")
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", z3950), timeout=5)

    polled = long_poll()
    assert polled["done"] is True and polled["revision"] > revision
    assert "慢图书馆" in polled["libraries"]
    answered = blocking()
    assert answered["done"] is True
    assert _statuses(answered) == {"fast": "ok", "slow": "ok"}
    assert [lib["hits"] for lib in answered["libraries"]] == [7, 7]

    served.process.wait(DRAIN + 3 + BOUND)
    assert served.process.returncode == 0, served.output
    assert time.monotonic() - stopped_at < DRAIN + 3 + BOUND
    out = served.output
    assert "draining 2 live searches, at most" in out
    assert "drained: 2 live searches finished" in out
    assert "every request answered" in out
    assert out.index("stopping: no new connections") < out.index("draining 2") < out.index(
        "drained: 2") < out.index("closing the broker")
    assert "web server stopped" in out
    assert "Traceback" not in out


def test_a_drained_search_is_read_finished_on_another_process(
        tmp_path, ztest, redis_server, serve):
    """Two processes over one Redis: the one running a search is stopped; it finishes the
    search while draining and saves it, and the other process serves its final state."""
    _write(tmp_path, _fast(ztest), slow(ztest, delay=3))
    owner = serve("--drain-timeout", str(DRAIN), redis=redis_server.url)
    other = serve(redis=redis_server.url)
    sid = owner.post("/api/searches", {"q": "title=5"})["id"]
    owner.signal(signal.SIGTERM)
    owner.wait_for("draining 1 live search, at most")
    owner.process.wait(DRAIN + 3 + BOUND)
    assert owner.process.returncode == 0, owner.output
    assert "drained: 1 live search finished" in owner.output
    seen = other.get(f"/api/searches/{sid}")
    assert seen["done"] is True
    assert {lib["id"]: (lib["status"], lib["hits"]) for lib in seen["libraries"]} == {
        "fast": ("ok", 5), "slow": ("ok", 5)}
    assert seen["merged"] > 0


def test_sigterm_with_nothing_live_exits_at_once(tmp_path, ztest, serve):
    _write(tmp_path, _fast(ztest))
    served = serve("--drain-timeout", "60")
    assert served.get("/api/search?q=title%3D3")["done"] is True
    served.signal(signal.SIGTERM)
    # Well inside the 60 s drain limit: nothing was live, so nothing was waited for.
    served.process.wait(BOUND)
    assert served.process.returncode == 0, served.output
    assert "no live searches to drain" in served.output
    assert "stopping: no new connections" in served.output


def test_sigterm_gives_up_at_the_drain_limit_with_every_library_state(tmp_path, ztest, serve):
    _write(tmp_path, _fast(ztest), slow(ztest, delay=8))
    served = serve("--drain-timeout", "1")
    blocking = _in_thread(lambda: served.get("/api/search?q=title%3D4"))
    time.sleep(0.7)
    served.signal(signal.SIGTERM)
    answered = blocking()
    assert answered["done"] is True
    by_id = {lib["id"]: lib for lib in answered["libraries"]}
    assert by_id["fast"]["status"] == "ok"
    assert by_id["slow"]["status"] == "timeout"
    assert "server stopped" in by_id["slow"]["error"]
    served.process.wait(1 + 3 + BOUND)
    assert served.process.returncode == 0, served.output
    assert "gave up on 1 search after" in served.output


def test_a_second_sigterm_stops_at_once(tmp_path, ztest, serve):
    _write(tmp_path, slow(ztest, delay=8))
    served = serve("--drain-timeout", "60")
    sid = served.post("/api/searches", {"q": "title=2"})["id"]
    assert sid
    served.signal(signal.SIGTERM)
    served.wait_for("draining 1 live search, at most")
    served.signal(signal.SIGTERM)
    served.process.wait(BOUND)  # not the 8 s search, nor the 60 s limit
    assert served.process.returncode == 0, served.output
    assert "second signal: stopping at once" in served.output


# --- SIGHUP -------------------------------------------------------------------------------


def test_sighup_reloads_the_libraries_file(tmp_path, ztest, serve):
    path = _write(tmp_path, _fast(ztest))
    served = serve()
    assert served.get("/api/search?q=title%3D3")["done"] is True  # the broker is running
    _write(tmp_path, _fast(ztest, timeout=6), _fast(ztest, "newlib"))
    served.signal(signal.SIGHUP)
    line = served.wait_for("reloaded libraries.yaml")
    assert ("reloaded libraries.yaml: 2 libraries (2 searchable), changes: added 1 (newlib), "
            "removed 0, changed 1 (fast)") in line
    assert served.process.poll() is None
    ids = [lib["id"] for lib in served.get("/api/libraries")["libraries"]]
    assert "newlib" in ids
    answered = served.get("/api/search?q=title%3D6&library=newlib")
    assert _statuses(answered) == {"newlib": "ok"}
    assert answered["libraries"][0]["hits"] == 6
    assert path.is_file()


def test_sighup_refuses_a_broken_file_and_keeps_serving_the_old_one(tmp_path, ztest, serve):
    path = _write(tmp_path, _fast(ztest))
    served = serve()
    text = path.read_text(encoding="utf-8")
    broken = text.replace('"name": "测试联盟"', '"name": "测试联盟", "colour": "red"')
    assert broken != text
    path.write_text(broken, encoding="utf-8")
    served.signal(signal.SIGHUP)
    line = served.wait_for("reload refused: ")
    assert "libraries.yaml:3:" in line and "colour" in line  # the problem and its line
    served.wait_for("still serving the 1 libraries loaded before")
    assert served.process.poll() is None
    assert [lib["id"] for lib in served.get("/api/libraries")["libraries"]] == ["fast"]
    assert _statuses(served.get("/api/search?q=title%3D2")) == {"fast": "ok"}
    assert "Traceback" not in served.output


def test_sighup_shows_an_edited_portal_page(tmp_path, ztest, serve):
    _write(tmp_path, _fast(ztest))
    page = tmp_path / "portal" / "about.md"
    page.parent.mkdir()
    page.write_text("# 关于本中心\n\n第一版的介绍。\n", encoding="utf-8")
    served = serve()
    assert "第一版的介绍" in served.get("/pages/about")
    page.write_text("# 关于本中心\n\n第二版的介绍。\n", encoding="utf-8")
    served.signal(signal.SIGHUP)
    served.wait_for("reloaded libraries.yaml")
    shown = served.get("/pages/about")
    assert "第二版的介绍" in shown and "第一版" not in shown


def test_a_generated_consortium_reloads_nothing(tmp_path, ztest, caplog):
    """balis demo serves a generated consortium (serve_app without a libraries file): its
    SIGHUP reloads nothing but says so; the portal is read on every request anyway."""
    from broker.kernel.config import loads
    from web import create_app

    cons = loads(config_text(_fast(ztest)))
    app = create_app({"CONSORTIUM": cons, "INSTANCE_PATH": str(tmp_path / "instance"),
                      "SESSION_STORE": "memory"})
    balis = app.extensions["balis"]
    try:
        with caplog.at_level("INFO", logger="web"):
            assert balis.reload(None) is False
        assert balis.consortium is cons
        assert "the libraries are generated here, not reloaded" in caplog.text
    finally:
        balis.close()
