"""``balis db upgrade`` / ``balis db current`` (CONTRACTS section 1), the migration lock
and the schema check at start, as subprocesses on SQLite and the real PostgreSQL.

The race tests start several processes at once on one empty database (``balis db
upgrade``; web apps' first logins; ``balis serve``): they migrate once, with no error.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from peers.servers import free_port

from ill.db import MIGRATIONS, head_revision, make_engine
from ill.models import Base

CONFIG = str(Path("config/libraries.yaml").resolve())
HEAD = head_revision()
_names = itertools.count()


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request, tmp_path) -> str:
    """An empty database (no schema) on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'empty.sqlite3'}"
    return request.getfixturevalue("postgres").create_database(f"db_cmd_{next(_names)}")


@pytest.fixture
def empty_postgres_url(postgres) -> str:
    return postgres.create_database(f"db_race_{next(_names)}")


def env_for(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "BALIS_REDIS_URL", "BALIS_AUTO_MIGRATE")}
    env.update(BALIS_INSTANCE=str(tmp_path / "instance"), BALIS_SECRET_KEY="k" * 32,
               PYTHONPATH=os.pathsep.join([str(Path.cwd()), env.get("PYTHONPATH", "")]))
    env.update(extra)
    return env


def balis(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "balis", *args], capture_output=True,
                          text=True, env=env_for(tmp_path, **env), timeout=120, check=False)


def at_revision(url: str, revision: str) -> None:
    """Build the schema of an older ``revision``, as an older version of the code did."""
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            config = Config()
            config.set_main_option("script_location", str(MIGRATIONS))
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
    finally:
        engine.dispose()


def versions(url: str) -> list[str]:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return [row[0] for row in
                    connection.exec_driver_sql("SELECT version_num FROM alembic_version")]
    finally:
        engine.dispose()


def schema_diff(url: str) -> list:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    err = done.stderr.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


# -- the commands ---------------------------------------------------------------------------


def test_empty_database_upgraded_then_current_says_head(empty_url, tmp_path):
    done = balis(tmp_path, "db", "current", "--database", empty_url)
    assert (done.returncode, done.stdout) == (0, "empty (no schema; run balis db upgrade)\n")
    done = balis(tmp_path, "db", "upgrade", "--database", empty_url)
    assert (done.returncode, done.stdout) == (0, f"upgraded empty -> {HEAD}\n"), done.stderr
    assert schema_diff(empty_url) == [] and versions(empty_url) == [HEAD]
    done = balis(tmp_path, "db", "current", "--database", empty_url)
    assert (done.returncode, done.stdout) == (0, f"{HEAD} (head)\n")
    done = balis(tmp_path, "db", "upgrade", "--database", empty_url)
    assert (done.returncode, done.stdout) == (0, f"database at {HEAD} (head)\n")
    done = balis(tmp_path, "db", "current", "--json", "--database", empty_url)
    shown = json.loads(done.stdout)
    assert shown == {"database": shown["database"], "revision": HEAD, "head": HEAD,
                     "state": "current"}


def test_behind_database_is_reported_and_upgraded(empty_url, tmp_path):
    at_revision(empty_url, "0001")
    done = balis(tmp_path, "db", "current", "--database", empty_url)
    assert (done.returncode, done.stdout) == (
        0, f"0001 (behind: head is {HEAD}; run balis db upgrade)\n")
    assert schema_diff(empty_url) != []  # 0001 really lacks what 0002 adds
    done = balis(tmp_path, "db", "upgrade", "--json", "--database", empty_url)
    assert done.returncode == 0, done.stderr
    assert {k: v for k, v in json.loads(done.stdout).items() if k != "database"} == {
        "before": "0001", "after": HEAD, "upgraded": True}
    assert schema_diff(empty_url) == [] and versions(empty_url) == [HEAD]


def test_database_newer_than_the_code_is_refused_and_left_alone(empty_url, tmp_path):
    at_revision(empty_url, "head")
    engine = make_engine(empty_url)
    with engine.begin() as connection:
        connection.exec_driver_sql("UPDATE alembic_version SET version_num = '0099'")
    engine.dispose()
    done = balis(tmp_path, "db", "current", "--database", empty_url)
    assert done.returncode == 0 and done.stdout.startswith("0099 (unknown to this version")
    done = balis(tmp_path, "db", "upgrade", "--database", empty_url)
    assert done.returncode == 1 and done.stdout == ""
    err = one_line(done)
    assert "0099" in err and HEAD in err
    assert versions(empty_url) == ["0099"]


@pytest.mark.parametrize("action", ["current", "upgrade"])
def test_unreachable_database_is_one_line_without_the_password(tmp_path, action):
    url = f"postgresql://balis:s3cret-pw@127.0.0.1:{free_port()}/balis"
    for args in (["--database", url], []):
        done = balis(tmp_path, "db", action, *args, DATABASE_URL=url)
        assert done.returncode == 1 and done.stdout == ""
        err = one_line(done)
        assert "cannot open the ILL database" in err and "127.0.0.1" in err
        assert "s3cret-pw" not in err and "***" in err
    done = balis(tmp_path, "db", action, "--database", "mysql://root:s3cret-pw@db/x")
    assert done.returncode == 1 and "s3cret-pw" not in one_line(done)


def test_default_database_is_the_instance_file_the_web_app_opens(tmp_path):
    done = balis(tmp_path, "db", "current")
    assert done.stdout.startswith("empty") and not (tmp_path / "instance").exists()
    done = balis(tmp_path, "db", "upgrade")
    assert done.returncode == 0, done.stderr
    assert versions(f"sqlite:///{tmp_path / 'instance' / 'balis.sqlite3'}") == [HEAD]


# -- several processes at once ----------------------------------------------------------------


def start_all(argvs: list[list[str]], env: dict[str, str]) -> list[subprocess.Popen[str]]:
    return [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=env) for argv in argvs]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_four_upgrades_at_once_migrate_once(backend, request, tmp_path):
    url = (f"sqlite:///{tmp_path / 'race.sqlite3'}" if backend == "sqlite"
           else request.getfixturevalue("empty_postgres_url"))
    argv = [sys.executable, "-m", "balis", "db", "upgrade", "--database", url]
    processes = start_all([argv] * 4, env_for(tmp_path))
    results = [(p.wait(120), *p.communicate()) for p in processes]
    assert [code for code, _out, _err in results] == [0] * 4, results
    assert all(err == "" for _code, _out, err in results), results
    outs = sorted(out for _code, out, _err in results)
    assert outs == [f"database at {HEAD} (head)\n"] * 3 + [f"upgraded empty -> {HEAD}\n"]
    assert versions(url) == [HEAD] and schema_diff(url) == []


FIRST_LOGIN = """
import json, sys, time
from pathlib import Path
from web import create_app
app = create_app({"BALIS_CONFIG": sys.argv[1], "DATABASE_URL": sys.argv[2],
                  "SESSION_STORE": "memory"})
print("ready", flush=True)
while not Path(sys.argv[3]).exists():
    time.sleep(0.01)
reply = app.test_client().post("/api/tokens", json={"login": "nobody", "password": "x"})
print(reply.status_code, flush=True)
"""


def test_three_web_apps_first_logins_at_once_on_an_empty_postgres(empty_postgres_url,
                                                                     tmp_path):
    go = tmp_path / "go"
    argv = [sys.executable, "-c", FIRST_LOGIN, CONFIG, empty_postgres_url, str(go)]
    processes = start_all([argv] * 3, env_for(tmp_path))
    for process in processes:  # every app built and waiting: then all log in at once
        assert process.stdout is not None
        assert process.stdout.readline() == "ready\n", process.communicate()
    go.touch()
    results = [(p.wait(120), *p.communicate()) for p in processes]
    # 401: no such account, which every process could look up (before: two 500s).
    assert [(code, out) for code, out, _err in results] == [(0, "401\n")] * 3, results
    assert versions(empty_postgres_url) == [HEAD]


def serve(tmp_path: Path, url: str, *extra: str, **env: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "balis", "serve", "--config", CONFIG, "--port", str(port),
         *extra], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env=env_for(tmp_path, DATABASE_URL=url, **env))
    return process, port


def wait_started(process: subprocess.Popen) -> str:
    """The output up to the banner's last line; AssertionError with it if the start fails."""
    assert process.stdout is not None
    lines = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        lines.append(line)
        if "Press Ctrl-C" in line:
            return "".join(lines)
        if not line and process.poll() is not None:
            break
    process.kill()
    raise AssertionError("balis serve did not start:\n" + "".join(lines))


def stop(process: subprocess.Popen) -> str:
    """Stop the server; the rest of its output."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        out, _ = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        out, _ = process.communicate()
    return out or ""


def login(port: int, password: str) -> int:
    body = json.dumps({"login": "zhang", "password": password}).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/tokens", data=body,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            assert json.load(reply)["token"]
            return reply.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_three_servers_starting_at_once_migrate_once_and_all_log_in(empty_postgres_url,
                                                                     tmp_path):
    servers = [serve(tmp_path, empty_postgres_url) for _ in range(3)]
    try:
        outputs = [wait_started(process) for process, _port in servers]
        upgraded = [out for out in outputs if f"ILL database upgraded empty -> {HEAD}" in out]
        assert len(upgraded) == 1, outputs
        assert not any("Traceback" in out or "ERROR" in out for out in outputs), outputs
        assert versions(empty_postgres_url) == [HEAD]
        (tmp_path / "pw").write_text("correct horse 1\n", encoding="utf-8")
        done = balis(tmp_path, "--config", CONFIG, "user", "add", "--login", "zhang",
                     "--password-file", str(tmp_path / "pw"), "--role", "reader",
                     "--library", "bupt", "--database", empty_postgres_url)
        assert done.returncode == 0, done.stderr
        assert [login(port, "correct horse 1") for _process, port in servers] == [200] * 3
    finally:
        for process, _port in servers:
            stop(process)


# -- the check at start ------------------------------------------------------------------------


@pytest.mark.parametrize("how", [("--no-migrate",), ("BALIS_AUTO_MIGRATE", "0")])
def test_serve_told_not_to_migrate_refuses_a_behind_database(tmp_path, how):
    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    at_revision(url, "0001")
    extra, env = (how, {}) if how[0].startswith("--") else ((), {how[0]: how[1]})
    process, _port = serve(tmp_path, url, *extra, **env)
    out, _ = process.communicate(timeout=60)
    assert process.returncode != 0
    assert (f"the ILL database is at revision 0001, this version needs {HEAD}: "
            "run `balis db upgrade`") in out
    assert "Traceback" not in out and "Press Ctrl-C" not in out
    assert versions(url) == ["0001"]


def test_serve_upgrades_a_behind_database_at_start_with_one_line(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    at_revision(url, "0001")
    process, _port = serve(tmp_path, url)
    try:
        out = wait_started(process)
    finally:
        stop(process)
    assert out.count(f"ILL database upgraded 0001 -> {HEAD}") == 1, out
    assert versions(url) == [HEAD]


def test_serve_refuses_a_database_newer_than_the_code(tmp_path):
    url = f"sqlite:///{tmp_path / 'new.sqlite3'}"
    at_revision(url, "head")
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.exec_driver_sql("UPDATE alembic_version SET version_num = '0099'")
    engine.dispose()
    process, _port = serve(tmp_path, url)
    out, _ = process.communicate(timeout=60)
    assert process.returncode != 0 and "Traceback" not in out
    assert "the ILL database is at revision 0099" in out and HEAD in out


def test_serve_starts_without_its_database_and_says_so(tmp_path):
    url = f"postgresql://balis:s3cret-pw@127.0.0.1:{free_port()}/balis"
    process, port = serve(tmp_path, url)
    out = ""
    try:
        out = wait_started(process)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/libraries",
                                    timeout=30) as reply:
            assert reply.status == 200  # catalogue search needs no ILL database
        assert login(port, "whatever") == 503  # told to come back, not a 500
    finally:
        out += stop(process)
    assert "cannot open the ILL database" in out and "starting anyway" in out
    assert "s3cret-pw" not in out and "Traceback" not in out
