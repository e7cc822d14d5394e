"""The nginx sample does what docs/deployment.md says, on a real nginx: HTTP redirected to
HTTPS, the proxy headers (X-Request-ID passed through or made), the body limit, /metrics
only for the allowed network, another upstream tried when one is down, gzip and cached
static files.

The upstreams are three small HTTP servers of the test's own that answer with the headers
they received (what nginx sends is the thing under test, and a real ``balis serve`` does
not echo its headers); the sample is changed only where it must be to run here: ports,
certificate and log paths.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from deploy_helpers import require
from peers.servers import HOST, free_port
from test_samples import localized_nginx_sample, nginx_prefix

SERVER_NAME = "balis.example.edu.cn"


class Echo(BaseHTTPRequestHandler):
    """Answers every request with its own port and the headers it received."""

    def do_GET(self) -> None:  # the stdlib's name for it
        body = json.dumps({"port": self.server.server_address[1], "path": self.path,
                           "headers": {k.lower(): v for k, v in self.headers.items()},
                           "padding": "balis " * 400}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET

    def log_message(self, *args) -> None:
        pass


class Proxy:
    def __init__(self, http_port: int, https_port: int, upstreams: list[ThreadingHTTPServer]):
        self.http_port, self.https_port, self.upstreams = http_port, https_port, upstreams

    def get(self, path: str, *, headers: dict[str, str] | None = None, source: str = HOST,
            method: str = "GET", body: bytes | None = None, tls: bool = True
            ) -> tuple[int, dict[str, str], bytes]:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        conn: http.client.HTTPConnection
        if tls:
            conn = http.client.HTTPSConnection(HOST, self.https_port, timeout=30,
                                               source_address=(source, 0), context=context)
        else:
            conn = http.client.HTTPConnection(HOST, self.http_port, timeout=30,
                                              source_address=(source, 0))
        try:
            conn.request(method, path, body=body,
                         headers={"Host": SERVER_NAME, **(headers or {})})
            answer = conn.getresponse()
            headers: dict[str, str] = {}
            for key, value in answer.getheaders():  # a repeated header: its values joined
                key = key.lower()
                headers[key] = f"{headers[key]}, {value}" if key in headers else value
            return answer.status, headers, answer.read()
        finally:
            conn.close()

    def echo(self, path: str = "/", **kwargs) -> dict:
        status, _headers, body = self.get(path, **kwargs)
        assert status == 200, body[:300]
        return json.loads(body)


@pytest.fixture(scope="module")
def proxy(tmp_path_factory) -> Iterator[Proxy]:
    nginx = require("nginx", "nginx-light")
    folder = tmp_path_factory.mktemp("nginx")
    upstreams = [ThreadingHTTPServer((HOST, 0), Echo) for _ in range(3)]
    for server in upstreams:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    http_port, https_port = free_port(), free_port()
    text = localized_nginx_sample(folder)
    for number, server in zip((5001, 5002, 5003), upstreams, strict=True):
        text = text.replace(f"127.0.0.1:{number} ", f"127.0.0.1:{server.server_address[1]} ")
    text = (text.replace("listen [::]:80;\n", "").replace("listen [::]:443 ssl http2;\n", "")
            .replace("listen 80;", f"listen 0.0.0.0:{http_port};")
            .replace("listen 443 ssl http2;", f"listen 0.0.0.0:{https_port} ssl http2;"))
    main = nginx_prefix(folder, text)
    # One process, in the foreground, as this user: stopped by its PID below.
    process = subprocess.Popen([nginx, "-p", str(folder), "-c", str(main),
                                "-g", "daemon off; master_process off;"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_for(process, https_port)
        yield Proxy(http_port, https_port, upstreams)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        for server in upstreams:
            server.shutdown()
            server.server_close()


def _wait_for(process: subprocess.Popen, port: int) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"nginx exited: {process.stderr.read().decode()}")
        try:
            socket.create_connection((HOST, port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("nginx did not listen within 20 s")


def test_plain_http_is_redirected_to_https(proxy):
    status, headers, _ = proxy.get("/search?q=title%3Dpython", tls=False)
    assert status == 301
    assert headers["location"] == f"https://{SERVER_NAME}/search?q=title%3Dpython"


def test_the_proxy_headers_reach_balis(proxy):
    seen = proxy.echo("/libraries", headers={"X-Request-ID": "reader-42"})["headers"]
    assert seen["host"] == SERVER_NAME
    assert seen["x-forwarded-proto"] == "https"
    assert seen["x-forwarded-for"] == HOST
    assert seen["x-request-id"] == "reader-42"


def test_a_request_without_an_id_gets_one_from_nginx(proxy):
    first = proxy.echo("/")["headers"]["x-request-id"]
    second = proxy.echo("/")["headers"]["x-request-id"]
    assert len(first) == 32 and int(first, 16) >= 0 and first != second


def test_a_forwarded_for_sent_by_the_client_stays_left_of_the_real_address(proxy):
    """balis walks X-Forwarded-For from the right (web/proxies.py): the reader's claim is
    never the rightmost entry."""
    seen = proxy.echo("/", headers={"X-Forwarded-For": "203.0.113.9"})["headers"]
    assert seen["x-forwarded-for"] == f"203.0.113.9, {HOST}"


def test_bodies_over_the_apps_limit_are_refused_by_nginx(proxy):
    assert proxy.get("/api/searches", method="POST", body=b"x" * 1000)[0] == 200
    assert proxy.get("/api/searches", method="POST", body=b"x" * ((1 << 20) + 1))[0] == 413


def test_metrics_only_for_the_allowed_addresses(proxy):
    assert proxy.get("/metrics")[0] == 200  # 127.0.0.1 is allowed
    assert proxy.get("/metrics", source="127.0.0.2")[0] == 403
    assert proxy.get("/api/libraries", source="127.0.0.2")[0] == 200


def test_requests_are_spread_and_a_process_that_is_down_is_skipped(proxy):
    ports = {proxy.echo("/api/libraries")["port"] for _ in range(9)}
    assert ports == {s.server_address[1] for s in proxy.upstreams}
    down = proxy.upstreams[0]
    down_port = down.server_address[1]
    down.shutdown()
    down.server_close()  # refuses connections, as a drained balis serve does
    answers = [proxy.echo("/api/libraries")["port"] for _ in range(9)]
    assert down_port not in answers and len(answers) == 9


def test_gzip_and_cached_static_files(proxy):
    status, headers, _ = proxy.get("/static/style.css", headers={"Accept-Encoding": "gzip"})
    assert status == 200
    assert headers.get("content-encoding") == "gzip"
    assert headers.get("cache-control") == "max-age=86400" and "expires" in headers
    # Every answer over HTTPS tells the browser to stay on HTTPS, static files included.
    assert headers["strict-transport-security"] == "max-age=31536000"
    assert "max-age" in proxy.get("/")[1]["strict-transport-security"]
