"""``balis serve --log-format json --trusted-proxy``, and /metrics of several processes
(PROMETHEUS_MULTIPROC_DIR): real ``balis serve`` subprocesses over real Zebra members,
spoken to over HTTP from 127.0.0.1."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from peers.fixtures import PROBES
from peers.servers import free_port
from prometheus_client.parser import text_string_to_metric_families

FAZHAN = PROBES["zh_title_fazhan_baogao"]

CONFIG = """
consortium: {{name: 日志测试, max_selected: 10}}
defaults: {{timeout: 10, max_records: 20}}
categories: [{{id: t, name: 测试}}]
libraries:
  - {{id: za, name: 甲馆, category: t, connector: {{protocol: z3950, url: "{z}", format: unimarc}}}}
  - {{id: zb, name: 乙馆, category: t, connector: {{protocol: sru, url: "{s}", format: unimarc}}}}
"""


class Serve:
    """One ``balis serve`` subprocess; its log (stderr) in a file."""

    def __init__(self, tmp_path: Path, zebra, *args: str, env: dict | None = None,
                 name: str = "serve") -> None:
        config = tmp_path / "libraries.yaml"
        if not config.exists():
            config.write_text(CONFIG.format(z=zebra.z3950_url("unimarc"),
                                            s=zebra.sru_url("unimarc")), encoding="utf-8")
        self.port = free_port()
        self.log_path = tmp_path / f"{name}.log"
        environ = {**os.environ, "BALIS_INSTANCE": str(tmp_path / f"{name}-instance"),
                   **(env or {})}
        environ.pop("BALIS_REDIS_URL", None)
        with open(self.log_path, "w") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "balis", "serve", "--config", str(config),
                 "--port", str(self.port), *args],
                stdout=subprocess.PIPE, stderr=log, text=True, env=environ)
        started = time.monotonic()
        seen = []
        while time.monotonic() - started < 30:
            line = self.process.stdout.readline()
            seen.append(line)
            if "Press Ctrl-C" in line:
                return
            if not line and self.process.poll() is not None:
                break
        self.process.kill()
        raise AssertionError("balis serve did not start:\n" + "".join(seen) + self.log())

    def get(self, path: str, headers: dict | None = None):
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}",
                                         headers=headers or {})
        with urllib.request.urlopen(request, timeout=60) as reply:
            return reply.status, reply.headers, reply.read()  # names in any case

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8")

    def stop(self) -> str:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.communicate()
        return self.log()


def access_lines(text: str) -> list[dict]:
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    return [line for line in lines if line["logger"] == "balis.access"]


def test_json_logs_with_request_ids_and_the_reader_behind_a_trusted_proxy(tmp_path, zebra):
    serve = Serve(tmp_path, zebra, "--log-format", "json", "--trusted-proxy", "127.0.0.1")
    try:
        status, headers, _ = serve.get("/api/libraries", {
            "X-Request-ID": "nginx-7f3a", "X-Forwarded-For": "198.51.100.7",
            "X-Forwarded-Proto": "https"})
        assert status == 200 and headers["X-Request-ID"] == "nginx-7f3a"
        query = "q=" + urllib.request.quote(FAZHAN["cql"]) + "&library=za"
        status, headers, body = serve.get(f"/api/search?{query}")
        assert status == 200 and json.loads(body)["libraries"][0]["status"] == "ok"
        made = headers["X-Request-ID"]
        assert re.fullmatch(r"[0-9a-f]{32}", made)
        time.sleep(0.2)  # the access line is written as the answer leaves
        text = serve.log()
    finally:
        text = serve.stop()
    everything = [json.loads(line) for line in text.splitlines() if line.strip()]
    assert all({"ts", "level", "logger", "message"} <= set(line) for line in everything)
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["ts"])
               for line in everything)
    access = access_lines(text)
    assert len(access) == 2  # one line per request
    first, second = access
    assert first["request_id"] == "nginx-7f3a" and first["client"] == "198.51.100.7"
    assert (first["method"], first["path"], first["query"], first["status"]) == (
        "GET", "/api/libraries", "", 200)
    assert first["bytes"] > 0 and isinstance(first["ms"], int)
    assert second["request_id"] == made and second["path"] == "/api/search"
    assert second["query"] == query and second["client"] == "127.0.0.1"  # no proxy header
    # Lines other than the access log's carry the id of the request they were logged in:
    # the first search starts the broker's loop, and says so.
    inside = [line for line in everything if line.get("request_id") == made
              and line["logger"] != "balis.access"]
    assert any("broker loop started" in line["message"] for line in inside), inside


def test_without_a_trusted_proxy_the_peer_is_the_client(tmp_path, zebra):
    serve = Serve(tmp_path, zebra)  # text logs, no proxy trusted
    try:
        status, headers, _ = serve.get("/api/health/live", {
            "X-Forwarded-For": "198.51.100.7", "X-Request-ID": "abc-1"})
        assert status == 200 and headers["X-Request-ID"] == "abc-1"
        time.sleep(0.2)
    finally:
        text = serve.stop()
    line = next(line for line in text.splitlines() if "balis.access" in line)
    assert "127.0.0.1 GET /api/health/live 200" in line and line.endswith("[abc-1]")
    assert "198.51.100.7" not in text


def test_bad_options_are_usage_errors(tmp_path):
    for args in (["--trusted-proxy", "10.0.0.0/33"], ["--log-format", "xml"]):
        done = subprocess.run([sys.executable, "-m", "balis", "serve", *args],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 2, done.stderr
        assert "Traceback" not in done.stderr and args[0] in done.stderr


def metrics_of(serve: Serve) -> dict:
    _, headers, body = serve.get("/metrics")
    assert headers["Content-Type"].startswith("text/plain")
    out: dict = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((sample.labels, sample.value))
    return out


def total(metrics: dict, name: str, **labels) -> float:
    return sum(v for found, v in metrics.get(name, ())
               if all(found.get(k) == want for k, want in labels.items()))


@pytest.mark.parametrize("shared", [True, False], ids=["multiprocess", "each-for-itself"])
def test_metrics_of_two_processes(tmp_path, zebra, shared):
    env = {}
    if shared:
        directory = tmp_path / "prometheus"
        directory.mkdir()
        env["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    first = Serve(tmp_path, zebra, env=env, name="first")
    try:
        second = Serve(tmp_path, zebra, env=env, name="second")
        try:
            query = "q=" + urllib.request.quote(FAZHAN["cql"]) + "&library=za&library=zb"
            for _ in range(2):
                assert first.get(f"/api/search?{query}")[0] == 200
            assert second.get(f"/api/search?{query}")[0] == 200
            seen_by_second = metrics_of(second)
            seen_by_first = metrics_of(first)
        finally:
            second.stop()
        after_second = metrics_of(first)
    finally:
        first.stop()
    if shared:  # either process answers for both
        for seen in (seen_by_first, seen_by_second):
            assert total(seen, "balis_searches_started_total", via="api") == 3
            assert total(seen, "balis_library_results_total", library="za", status="ok") == 3
            assert total(seen, "balis_http_requests_total", route="/api/search",
                         status="200") == 3
            pids = {labels.get("pid") for labels, _ in
                    seen.get("balis_process_start_time_seconds", ())}
            assert pids == {str(first.process.pid), str(second.process.pid)}
        # A stopped process leaves its counts, not its live-only series.
        assert total(after_second, "balis_searches_started_total", via="api") == 3
        assert {labels.get("pid") for labels, _ in after_second.get(
            "balis_process_start_time_seconds", ())} == {str(first.process.pid)}
    else:  # each for itself
        assert total(seen_by_first, "balis_searches_started_total", via="api") == 2
        assert total(seen_by_second, "balis_searches_started_total", via="api") == 1
        assert total(seen_by_second, "balis_library_search_seconds_count", library="zb") == 1
        assert total(seen_by_first, "process_start_time_seconds") > 0


def test_searches_over_the_z3950_front_door_are_counted_as_such(tmp_path, zebra):
    from peers.servers import yaz_client_hits

    z3950 = free_port()
    serve = Serve(tmp_path, zebra, "--z3950-port", str(z3950))
    try:
        assert yaz_client_hits("127.0.0.1", z3950, "balis", "@attr 1=4 中国发展报告") == 9
        seen = metrics_of(serve)
    finally:
        serve.stop()
    assert total(seen, "balis_searches_started_total", via="z3950") == 1
    assert total(seen, "balis_searches_started_total", via="api") == 0


def test_balis_search_does_not_load_prometheus_client(tmp_path, zebra):
    config = tmp_path / "libraries.yaml"
    config.write_text(CONFIG.format(z=zebra.z3950_url("unimarc"), s=zebra.sru_url("unimarc")),
                      encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "balis", "search", "--config", str(config),
         "--library", "za", FAZHAN["cql"]], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "broker.search.metrics" in done.stderr  # the search ran through the broker
    assert "prometheus_client" not in done.stderr
