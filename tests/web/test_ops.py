"""Operations (CONTRACTS section 6): liveness and readiness over a real PostgreSQL and a
real redis-server, /metrics after real searches over Zebra and yaz-ztest members, request
ids, and the reader's address from trusted proxies only (Flask's test client; the peer's
address is the WSGI environ's REMOTE_ADDR, as waitress sets it).

The metrics live in this process's one registry, shared by every app the tests make, so
each test compares counters before and after what it does.
"""

from __future__ import annotations

import logging
import re
import threading

import jsonschema
import pytest
from ill_fixtures import PASSWORD, add_user, ill_config, real_consortium, valid_form
from peers.fixtures import PROBES
from peers.servers import RedisServer, free_port
from prometheus_client.parser import text_string_to_metric_families

from broker.kernel.errors import ConfigError
from broker.kernel.logs import JsonFormatter, RequestIdFilter
from web import create_app, get_balis
from web.api import openapi_spec
from web.proxies import TrustedProxies

FAZHAN = PROBES["zh_title_fazhan_baogao"]  # 9 CNMARC records in Zebra's unimarc database


def valid(instance, name: str) -> None:
    spec = openapi_spec()
    jsonschema.validate(instance, {"$ref": f"#/components/schemas/{name}",
                                   "components": spec["components"]})


def samples(client) -> dict[tuple[str, frozenset], float]:
    """Every sample of /metrics, parsed by prometheus_client's own parser."""
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    out = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def value(metrics: dict, name: str, **labels) -> float:
    return metrics.get((name, frozenset(labels.items())), 0.0)


def small_app(tmp_path, **settings):
    """An app over the real directory, with its own SQLite ledger (no search needed)."""
    app = create_app({"TESTING": True, "CONSORTIUM": real_consortium(),
                      "SESSION_STORE": "memory", "SECRET_KEY": "test",
                      "PORTAL_DIR": str(tmp_path / "portal"),
                      **ill_config(f"sqlite:///{tmp_path / 'ill.sqlite3'}"), **settings})

    @app.get("/t/who")
    def who():
        from flask import jsonify, request
        return jsonify(addr=request.remote_addr, scheme=request.scheme, host=request.host,
                       forwarded=request.headers.get("X-Forwarded-For"))

    return app


@pytest.fixture
def captured():
    """Every record logged while the test runs, as the JSON formatter writes it."""
    lines: list[dict] = []
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            import json
            records.append(record)
            lines.append(json.loads(self.format(record)))

    handler = Keep(level=logging.DEBUG)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield lines, records
    root.removeHandler(handler)
    root.setLevel(old_level)


# --- health -----------------------------------------------------------------------------

def test_live_answers_and_ready_checks_the_database(client):
    live = client.get("/api/health/live")
    assert live.status_code == 200 and live.get_json() == {"status": "ok"}
    valid(live.get_json(), "Liveness")
    ready = client.get("/api/health/ready")
    data = ready.get_json()
    valid(data, "Readiness")
    assert ready.status_code == 200, data
    assert data["status"] == "ok" and data["checks"]["database"]["ok"] is True
    assert "redis" not in data["checks"]  # BALIS_REDIS_URL is not set here


def test_ready_fails_for_a_stopped_redis_and_an_unreachable_postgres(
        tmp_path, postgres, ill_postgres_template):
    database = postgres.create_database("ops_ready", template=ill_postgres_template)
    redis = RedisServer()
    redis.start()
    try:
        app = small_app(tmp_path, DATABASE_URL=database, REDIS_URL=redis.url)
        client = app.test_client()
        ready = client.get("/api/health/ready")
        assert ready.status_code == 200, ready.get_json()
        assert set(ready.get_json()["checks"]) == {"database", "redis"}
        redis.stop()  # by its PID
        down = client.get("/api/health/ready")
        data = down.get_json()
        valid(data, "Readiness")
        assert down.status_code == 503 and data["status"] == "unavailable"
        assert data["checks"]["database"]["ok"] is True
        assert data["checks"]["redis"]["ok"] is False
        assert "Connection" in data["checks"]["redis"]["error"]
        assert client.get("/api/health/live").status_code == 200  # alive all the same
        app.extensions["balis"].close()
        app.extensions["ill"].close()
    finally:
        redis.stop()
    nowhere = f"postgresql+psycopg://balis:secret@127.0.0.1:{free_port()}/balis"
    app = small_app(tmp_path, DATABASE_URL=nowhere, REDIS_URL=redis.url)
    try:
        data = app.test_client().get("/api/health/ready")
        checks = data.get_json()["checks"]
        assert data.status_code == 503
        assert checks["database"]["ok"] is False and checks["redis"]["ok"] is False
        assert "Connection refused" in checks["database"]["error"]
        assert "secret" not in checks["database"]["error"]  # no password in the answer
    finally:
        app.extensions["balis"].close()
        app.extensions["ill"].close()


def test_ready_is_503_while_draining(app, client):
    balis = app.extensions["balis"]
    balis.draining = True
    try:
        response = client.get("/api/health/ready")
        assert response.status_code == 503 and response.get_json()["status"] == "draining"
        valid(response.get_json(), "Readiness")
    finally:
        balis.draining = False
    assert client.get("/api/health/ready").status_code == 200


# --- request ids ------------------------------------------------------------------------

def test_request_ids_are_passed_through_or_made(client):
    mine = client.get("/api/health/live", headers={"X-Request-ID": "nginx-0af3.9_Z"})
    assert mine.headers["X-Request-ID"] == "nginx-0af3.9_Z"
    made = [client.get("/api/health/live").headers["X-Request-ID"] for _ in range(2)]
    assert all(re.fullmatch(r"[0-9a-f]{32}", rid) for rid in made) and made[0] != made[1]
    for insane in ("x" * 129, "two words", "a\u00e9b", "id;rm", ""):
        rid = client.get("/api/health/live", headers={"X-Request-ID": insane}
                         ).headers["X-Request-ID"]
        assert rid != insane and re.fullmatch(r"[0-9a-f]{32}", rid)
    # Errors carry it too.
    assert client.get("/api/nothing-here", headers={"X-Request-ID": "e1"}
                      ).headers["X-Request-ID"] == "e1"


def test_log_lines_of_a_request_carry_its_id_on_the_broker_loop_too(tmp_path, captured):
    lines, records = captured
    app = small_app(tmp_path)

    @app.get("/t/loop")
    def on_the_loop():
        async def work(broker):
            logging.getLogger("broker.search.test").warning("on the loop for %s", "me")
            return threading.current_thread().name
        logging.getLogger("web.test").warning("in the request thread")
        return {"thread": get_balis().bridge.call(work, timeout=10)}

    try:
        client = app.test_client()
        answer = client.get("/t/loop", headers={"X-Request-ID": "req-42"})
        assert answer.get_json()["thread"] == "balis-broker-loop"
        ours = {line["logger"]: line for line in lines if line.get("request_id") == "req-42"}
        assert ours["web.test"]["message"] == "in the request thread"
        assert ours["broker.search.test"]["message"] == "on the loop for me"
        loop_record = next(r for r in records if r.name == "broker.search.test")
        assert loop_record.threadName == "balis-broker-loop"
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z",
                            ours["web.test"]["ts"])
        assert ours["web.test"]["level"] == "WARNING"
        # The next request, on the same thread, has its own id: nothing leaks.
        lines.clear()
        client.get("/t/loop")
        ids = {line.get("request_id") for line in lines
               if line["logger"] in ("web.test", "broker.search.test")}
        assert len(ids) == 1 and "req-42" not in ids and None not in ids
    finally:
        app.extensions["balis"].close()
        app.extensions["ill"].close()


# --- trusted proxies --------------------------------------------------------------------

def test_forwarded_headers_are_believed_from_trusted_proxies_only(tmp_path):
    app = small_app(tmp_path, TRUSTED_PROXIES=["10.0.0.0/8", "127.0.0.1"])
    client = app.test_client()

    def who(peer: str, **headers) -> dict:
        return client.get("/t/who", headers=headers,
                          environ_base={"REMOTE_ADDR": peer}).get_json()

    try:
        # A reader straight from the internet cannot claim another address, scheme or host.
        forged = who("203.0.113.5", **{"X-Forwarded-For": "1.2.3.4",
                                       "X-Forwarded-Proto": "https",
                                       "X-Forwarded-Host": "evil.example"})
        assert forged["addr"] == "203.0.113.5" and forged["scheme"] == "http"
        assert forged["host"] != "evil.example" and forged["forwarded"] is None
        # Through the proxy: the reader's address, the proxy's scheme and host.
        proxied = who("10.1.2.3", **{"X-Forwarded-For": "198.51.100.7",
                                     "X-Forwarded-Proto": "https",
                                     "X-Forwarded-Host": "opac.balis.example"})
        assert proxied == {"addr": "198.51.100.7", "scheme": "https",
                           "host": "opac.balis.example", "forwarded": None}
        # Walked from the right: trusted hops skipped, a reader's own forged entry ignored.
        assert who("10.1.2.3", **{"X-Forwarded-For": "6.6.6.6, 198.51.100.7, 10.9.9.9"}
                   )["addr"] == "198.51.100.7"
        assert who("127.0.0.1", **{"X-Forwarded-For": "10.0.0.5, 10.0.0.6"}
                   )["addr"] == "10.0.0.5"  # all trusted: the farthest
        assert who("10.1.2.3", **{"X-Forwarded-For": "[2001:db8::1]:4711"}
                   )["addr"] == "2001:db8::1"
        assert who("10.1.2.3", **{"X-Forwarded-For": "198.51.100.8:5000"}
                   )["addr"] == "198.51.100.8"
        # What the reader wrote left of the nearest untrusted hop does not matter...
        assert who("10.1.2.3", **{"X-Forwarded-For": "garbage, , 5.6.7.8"}
                   )["addr"] == "5.6.7.8"
        # ...but a malformed nearest entry makes the header worthless: ignored, no error.
        for bad in ("garbage", "5.6.7.8, ", "999.1.1.1", ",", "\u4e2d\u6587",
                    "5.6.7.8, 10.0.0.1 junk"):
            response = client.get("/t/who", headers={"X-Forwarded-For": bad,
                                                     "X-Forwarded-Proto": "gopher",
                                                     "X-Forwarded-Host": "a b/c"},
                                  environ_base={"REMOTE_ADDR": "10.1.2.3"})
            assert response.status_code == 200, bad
            data = response.get_json()
            assert data["addr"] == "10.1.2.3" and data["scheme"] == "http"
            assert data["host"] == "localhost"
    finally:
        app.extensions["balis"].close()
        app.extensions["ill"].close()


def test_without_trusted_proxies_nobody_is_believed(tmp_path):
    app = small_app(tmp_path)
    try:
        data = app.test_client().get("/t/who", headers={"X-Forwarded-For": "1.2.3.4"},
                                     environ_base={"REMOTE_ADDR": "127.0.0.1"}).get_json()
        assert data["addr"] == "127.0.0.1" and data["forwarded"] is None
    finally:
        app.extensions["balis"].close()
        app.extensions["ill"].close()
    with pytest.raises(ConfigError, match="not-an-address"):
        small_app(tmp_path, TRUSTED_PROXIES=["not-an-address"])


def test_client_address_walk():
    proxies = TrustedProxies(lambda environ, start: [], ["10.0.0.0/8", "::1"])
    assert proxies.client("1.1.1.1, 10.0.0.1") == "1.1.1.1"
    assert proxies.client("::ffff:10.0.0.9") == "10.0.0.9"
    assert proxies.client("") is None and proxies.client("x, 10.0.0.1") is None
    assert proxies.is_trusted("::1") and not proxies.is_trusted("::2")
    assert not proxies.is_trusted(None) and not proxies.is_trusted("unix-socket")


# --- metrics ----------------------------------------------------------------------------

def test_metrics_after_real_searches(client):
    before = samples(client)
    data = client.get("/api/search", query_string={
        "q": FAZHAN["cql"], "library": ["za", "zb", "dead"]}).get_json()
    states = {lib["id"]: lib["status"] for lib in data["libraries"]}
    assert states == {"za": "ok", "zb": "ok", "dead": "error"}
    assert client.get("/search", query_string={"cql": FAZHAN["cql"], "library": "za"}
                      ).status_code == 302
    sru = client.get("/sru", query_string={"version": "1.2", "operation": "searchRetrieve",
                                           "query": FAZHAN["cql"], "maximumRecords": "1"})
    assert sru.status_code == 200
    after = samples(client)

    def grew(name: str, **labels) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("balis_searches_started_total", via="api") == 1
    assert grew("balis_searches_started_total", via="web") == 1
    assert grew("balis_searches_started_total", via="sru") == 1
    assert grew("balis_library_results_total", library="za", status="ok", reason="none") >= 2
    assert grew("balis_library_results_total", library="zb", status="ok", reason="none") >= 1
    assert grew("balis_library_results_total", library="dead", status="error",
                reason="unreachable") >= 1
    assert grew("balis_library_search_seconds_count", library="zb", status="ok") >= 1
    assert grew("balis_library_search_seconds_bucket", library="zb", status="ok",
                le="+Inf") >= 1
    # za and zb each sent their 9 records to the api search alone.
    assert grew("balis_records_merged_total") >= 2 * FAZHAN["hits"]
    assert grew("balis_http_requests_total", route="/api/search", method="GET",
                status="200") == 1
    assert grew("balis_http_requests_total", route="/search", method="GET",
                status="302") == 1
    assert grew("balis_http_request_seconds_count", route="/sru") == 1
    assert value(after, "balis_process_start_time_seconds") > 1.7e9
    assert value(after, "process_start_time_seconds") > 0  # each process for itself


def test_suspensions_are_counted(client):
    before = samples(client)
    for _ in range(4):
        client.get("/api/search", query_string={"q": "title=x", "library": ["dead"]})
    after = samples(client)
    assert value(after, "balis_library_suspensions_total", library="dead") > value(
        before, "balis_library_suspensions_total", library="dead")
    assert value(after, "balis_library_results_total", library="dead", status="error",
                 reason="suspended") > value(before, "balis_library_results_total",
                                             library="dead", status="error",
                                             reason="suspended")


def test_ill_actions_are_counted(app, client):
    add_user(app, "ops-reader", "reader", "za")
    add_user(app, "ops-staff", "staff", "zb")

    def token(login: str) -> dict:
        answer = client.post("/api/tokens", json={"login": login, "password": PASSWORD})
        return {"Authorization": f"Bearer {answer.get_json()['token']}"}

    before = samples(client)
    created = client.post("/api/ill/requests", headers=token("ops-reader"),
                          json=valid_form(lender="zb"))
    assert created.status_code == 201, created.get_json()
    accepted = client.post(f"/api/ill/requests/{created.get_json()['id']}/actions",
                           headers=token("ops-staff"), json={"action": "accept"})
    assert accepted.status_code == 200, accepted.get_json()
    after = samples(client)
    assert value(after, "balis_ill_actions_total", action="accept") - value(
        before, "balis_ill_actions_total", action="accept") == 1


def test_harvest_queue_depth_is_read_at_scrape_time(app, client, redis_server):
    from redis import Redis
    from rq import Queue

    from broker.harvest.queue import QUEUE_NAME

    connection = Redis.from_url(redis_server.url)
    queue = Queue(QUEUE_NAME, connection=connection)
    queue.empty()
    app.config["HARVEST_QUEUE"] = redis_server.url
    try:
        assert value(samples(client), "balis_harvest_queue_jobs") == 0
        for n in range(3):
            queue.enqueue("broker.harvest.queue.harvest_job", f"lib{n}", "/nowhere", {})
        metrics = samples(client)
        assert value(metrics, "balis_harvest_queue_jobs") == 3
        assert value(metrics, "balis_harvest_queue_up") == 1
        app.config["HARVEST_QUEUE"] = f"redis://127.0.0.1:{free_port()}/0"
        metrics = samples(client)
        assert value(metrics, "balis_harvest_queue_up") == 0
        assert ("balis_harvest_queue_jobs", frozenset()) not in metrics
    finally:
        app.config.pop("HARVEST_QUEUE")
        queue.empty()
        connection.close()
    assert ("balis_harvest_queue_up", frozenset()) not in samples(client)


def test_json_lines_keep_extra_fields_and_tracebacks():
    formatter = JsonFormatter()
    try:
        raise ValueError("boom")
    except ValueError:
        import sys
        record = logging.LogRecord("balis.test", logging.ERROR, __file__, 1, "failed %s",
                                   ("中文",), sys.exc_info())
    record.status = 503
    record.odd = object()  # written as text, never an error
    import json
    line = json.loads(formatter.format(record))
    assert line["message"] == "failed 中文" and line["level"] == "ERROR"
    assert line["status"] == 503 and line["odd"].startswith("<object")
    assert "ValueError: boom" in line["exc"] and "request_id" not in line


def test_ready_is_503_when_redis_accepts_but_never_answers(tmp_path):
    # A fake: a listener that takes the connection and says nothing, as a hung or
    # firewalled Redis does (a real redis-server answers or refuses).
    import socket

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    app = small_app(tmp_path, REDIS_URL=f"redis://127.0.0.1:{silent.getsockname()[1]}/0")
    try:
        client = app.test_client()
        for _ in range(2):  # the second while the first may still hang: no pile-up, no error
            response = client.get("/api/health/ready")
            checks = response.get_json()["checks"]
            assert response.status_code == 503
            assert checks["redis"]["ok"] is False and checks["redis"]["error"]
            assert checks["database"]["ok"] is True
    finally:
        silent.close()
        app.extensions["balis"].close()
        app.extensions["ill"].close()
