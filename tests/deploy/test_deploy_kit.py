"""The kit put together as docs/deployment.md installs it, without systemd: the settings
of deploy/balis.env.example (paths moved into a scratch folder, the URLs of the real
PostgreSQL and Redis the tests start), the db-upgrade unit's command, two processes run
with the serve unit's exact ExecStart= (%i: their ports), and a real nginx with the
sample in front (its third upstream is down). What an operator relies on: readiness
through the proxy, the reader's address and request id in the JSON logs, one /metrics for
both processes, ExecReload= reloading, KillSignal= draining within TimeoutStopSec=.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from deploy_helpers import DEPLOY, INSTALLED_BALIS, REPO, balis_command, require, script_env
from peers.servers import HOST, free_port
from test_nginx_proxy import Proxy, _wait_for
from test_samples import localized_nginx_sample, nginx_prefix, unit_settings

STARTUP = 60.0  # seconds a balis serve may take to print its addresses on a busy machine


def kit_env(folder: Path, database: str, redis: str) -> dict[str, str]:
    """The env example's settings as systemd would pass them, moved into ``folder``."""
    env = script_env()
    for line in (DEPLOY / "balis.env.example").read_text("utf-8").splitlines():
        if re.match(r"^[A-Z][A-Z0-9_]*=", line):
            key, _, value = line.partition("=")
            env[key] = value
    config = folder / "etc" / "libraries.yaml"
    config.parent.mkdir(parents=True)
    config.write_text((REPO / "config" / "libraries.yaml").read_text("utf-8"), "utf-8")
    env.update(BALIS_CONFIG=str(config), BALIS_INSTANCE=str(folder / "instance"),
               DATABASE_URL=database, BALIS_REDIS_URL=redis, BALIS_HARVEST_QUEUE=redis,
               PROMETHEUS_MULTIPROC_DIR=str(folder / "metrics"),
               BALIS_SECRET_KEY="ab" * 32)
    (folder / "metrics").mkdir()
    return env


def unit_command(unit: str, balis: Path, instance: str = "") -> list[str]:
    (line,) = unit_settings(unit)["ExecStart"]
    return [str(balis) if word == INSTALLED_BALIS else word.replace("%i", instance)
            for word in line.split()]


@dataclass
class Process:
    process: subprocess.Popen[str]
    port: int
    lines: list[str] = field(default_factory=list)

    def read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    def wait_for(self, pattern: str, timeout: float) -> str:
        end = time.monotonic() + timeout
        while True:
            ended = self.process.poll() is not None
            found = next((line for line in list(self.lines) if re.search(pattern, line)), None)
            if found is not None:
                return found
            if time.monotonic() > end or (ended and time.monotonic() > end - timeout + 1):
                break
            time.sleep(0.05)
        raise AssertionError(f"no {pattern!r} in the output:\n{''.join(self.lines)[-3000:]}")

    def json_lines(self) -> list[dict]:
        out = []
        for line in list(self.lines):
            if line.startswith("{"):
                out.append(json.loads(line))
        return out


@dataclass
class Kit:
    proxy: Proxy
    processes: list[Process]


@pytest.fixture(scope="module")
def kit(tmp_path_factory, postgres, redis_server) -> Iterator[Kit]:
    nginx = require("nginx", "nginx-light")
    folder = tmp_path_factory.mktemp("kit")
    balis = balis_command(folder)
    database = postgres.create_database("deploy_kit")
    env = kit_env(folder, database, redis_server.url)
    upgrade = subprocess.run(unit_command("balis-db-upgrade.service", balis), env=env,
                             cwd=folder, capture_output=True, text=True, timeout=300,
                             check=False)
    assert upgrade.returncode == 0, upgrade.stderr
    processes: list[Process] = []
    nginx_process = None
    try:
        for _ in range(2):
            port = free_port()
            popen = subprocess.Popen(unit_command("balis-serve@.service", balis, str(port)),
                                     env=env, cwd=folder, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
            served = Process(popen, port)
            threading.Thread(target=served.read, daemon=True).start()
            processes.append(served)
        for served in processes:
            served.wait_for("Press Ctrl-C", STARTUP)
        text = localized_nginx_sample(folder)
        for number, port in ((5001, processes[0].port), (5002, processes[1].port),
                             (5003, free_port())):
            text = text.replace(f"127.0.0.1:{number} ", f"127.0.0.1:{port} ")
        http_port, https_port = free_port(), free_port()
        text = (text.replace("listen [::]:80;\n", "").replace("listen [::]:443 ssl http2;\n", "")
                .replace("listen 80;", f"listen 0.0.0.0:{http_port};")
                .replace("listen 443 ssl http2;", f"listen 0.0.0.0:{https_port} ssl http2;"))
        main = nginx_prefix(folder, text)
        nginx_process = subprocess.Popen([nginx, "-p", str(folder), "-c", str(main),
                                          "-g", "daemon off; master_process off;"],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _wait_for(nginx_process, https_port)
        yield Kit(Proxy(http_port, https_port, []), processes)
    finally:
        if nginx_process is not None:
            _stop(nginx_process)
        for served in processes:
            _stop(served.process)
        postgres.drop_database("deploy_kit")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def test_readiness_through_the_proxy_sees_the_database_and_redis(kit):
    status, _headers, body = kit.proxy.get("/api/health/ready")
    assert status == 200, body
    answer = json.loads(body)
    assert answer["status"] == "ok"
    assert len(answer["checks"]) == 2, answer  # the database and Redis, both configured


def test_the_readers_address_and_request_id_reach_the_json_logs(kit):
    status, headers, _ = kit.proxy.get("/api/libraries", source="127.0.0.2",
                                       headers={"X-Request-ID": "kit-drill-1"})
    assert status == 200 and headers["x-request-id"] == "kit-drill-1"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        lines = [line for served in kit.processes for line in served.json_lines()
                 if line.get("request_id") == "kit-drill-1" and line.get("path")]
        if lines:
            break
        time.sleep(0.05)
    assert lines, "no access log line with the request id"
    assert lines[0]["client"] == "127.0.0.2"  # nginx is trusted, the reader is logged
    assert {"ts", "level", "logger", "message"} <= set(lines[0])


def _counter(text: str, route: str) -> float:
    return sum(float(m.group(1)) for m in re.finditer(
        rf'^balis_http_requests_total{{[^}}]*route="{re.escape(route)}"[^}}]*}} (\S+)$',
        text, re.M))


def test_one_process_answers_metrics_for_both(kit):
    first, second = kit.processes
    for _ in range(5):
        with urllib.request.urlopen(f"http://{HOST}:{second.port}/api/health/live",
                                    timeout=30) as answer:
            assert answer.status == 200
    with urllib.request.urlopen(f"http://{HOST}:{first.port}/metrics", timeout=30) as answer:
        text = answer.read().decode()
    assert _counter(text, "/api/health/live") >= 5
    status, _headers, body = kit.proxy.get("/metrics")  # 127.0.0.1: allowed
    assert status == 200 and b"balis_http_requests_total" in body


def test_static_files_are_cached_by_nginxs_rule_not_the_apps(kit):
    status, headers, body = kit.proxy.get("/static/style.css",
                                          headers={"Accept-Encoding": "gzip"})
    assert status == 200 and headers.get("content-encoding") == "gzip" and body
    assert headers["cache-control"] == "max-age=86400"  # the app's no-cache hidden
    assert "strict-transport-security" in headers


def test_exec_reload_reloads_and_the_process_goes_on(kit):
    served = kit.processes[0]
    (reload,) = unit_settings("balis-serve@.service")["ExecReload"]
    subprocess.run(reload.replace("$MAINPID", str(served.process.pid)).split(), check=True)
    served.wait_for(r"reloaded libraries\.yaml", 30)
    with urllib.request.urlopen(f"http://{HOST}:{served.port}/api/health/ready",
                                timeout=30) as answer:
        assert answer.status == 200


def test_kill_signal_drains_and_exits_0_within_the_stop_timeout(kit):
    served = kit.processes[1]
    settings = unit_settings("balis-serve@.service")
    served.process.send_signal(getattr(signal, settings["KillSignal"][0]))
    assert served.process.wait(float(settings["TimeoutStopSec"][0])) == 0
    served.wait_for("stopping", 5)
    # The proxy goes on with the process that is left.
    assert all(kit.proxy.get("/api/libraries")[0] == 200 for _ in range(4))
