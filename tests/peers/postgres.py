"""A throwaway PostgreSQL server for the tests (Debian ``postgresql``), on 127.0.0.1.

``PostgresServer`` runs ``initdb`` into a private temporary directory and starts
``postgres`` on a free loopback port, its unix socket in that directory too, with fsync
off (the data is thrown away). PostgreSQL refuses to run as root, so when the tests run
as root (CI) the directory is handed to the ``postgres`` system user and the server runs
as that user (``subprocess.Popen(user=...)``, so the PID we hold is the server's own).
It is stopped by that PID (SIGINT: PostgreSQL's fast shutdown), then SIGKILL.

``url(database)`` gives a SQLAlchemy URL (psycopg 3); ``create_database(name, template)``
makes a fresh database, cheaply copied from a migrated template.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from peers.servers import HOST, PeerError, free_port

SUPERUSER = "balis"


def postgres_bindir() -> Path | None:
    """The newest installed PostgreSQL's bin directory (Debian layout), or pg_config's."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class PostgresServer:
    def __init__(self, *, startup_timeout: float = 30.0) -> None:
        self.bindir = postgres_bindir()
        if self.bindir is None:
            raise PeerError("PostgreSQL is not installed (Debian package postgresql)")
        self.startup_timeout = startup_timeout
        self.host = HOST
        self.port = 0
        self.workdir: Path | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self._user: str | None = None
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                raise PeerError("running as root and there is no postgres user to run "
                                "PostgreSQL as") from None
            self._user = "postgres"

    # -- lifecycle
    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def data_dir(self) -> Path:
        assert self.workdir is not None
        return self.workdir / "data"

    @property
    def log_path(self) -> Path:
        assert self.workdir is not None
        return self.workdir / "postgres.log"

    def start(self) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="balis-postgres-"))
        if self._user:
            shutil.chown(self.workdir, self._user, self._user)
        self._run([str(self.bindir / "initdb"), "-D", str(self.data_dir), "-U", SUPERUSER,
                   "--auth=trust", "--encoding=UTF8", "--no-locale", "--no-sync"])
        for _attempt in range(5):
            self.port = free_port(self.host)
            if self._spawn_and_wait():
                return
        raise PeerError(f"postgres could not bind a port on {self.host}\n{self.log_tail()}")

    def _run(self, argv: list[str]) -> None:
        done = subprocess.run(argv, capture_output=True, user=self._user, group=self._user,
                              extra_groups=[] if self._user else None, cwd=self.workdir,
                              check=False, timeout=120)
        if done.returncode:
            raise PeerError(f"{argv[0]} failed ({done.returncode}):\n"
                            f"{(done.stdout + done.stderr).decode('utf-8', 'replace')}")

    def _spawn_and_wait(self) -> bool:
        assert self.workdir is not None
        argv = [str(self.bindir / "postgres"), "-D", str(self.data_dir), "-h", self.host,
                "-p", str(self.port), "-k", str(self.workdir), "-F",
                "-c", "max_connections=300", "-c", "full_page_writes=off",
                "-c", "synchronous_commit=off"]
        log = open(self.log_path, "wb")  # noqa: SIM115 - the server writes it while it runs
        with log:
            self.process = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                user=self._user, group=self._user,
                extra_groups=[] if self._user else None, cwd=self.workdir)
        import psycopg

        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.process = None
                if "could not bind" in self.log_tail(50) or "in use" in self.log_tail(50):
                    return False
                raise PeerError(f"postgres exited at start:\n{self.log_tail()}")
            try:
                with psycopg.connect(host=self.host, port=self.port, user=SUPERUSER,
                                     dbname="postgres", connect_timeout=2):
                    return True
            except psycopg.OperationalError:
                time.sleep(0.1)
        self.stop()
        raise PeerError(f"postgres did not start within {self.startup_timeout:g} s:\n"
                        f"{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text("utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 10.0) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGINT)  # fast shutdown: roll back, close, exit
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)

    def close(self) -> None:
        self.stop()
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    def __enter__(self) -> PostgresServer:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- databases
    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{SUPERUSER}@{self.host}:{self.port}/{database}"

    def create_database(self, name: str, template: str | None = None) -> str:
        """A new database (copied from ``template``); returns its URL."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(host=self.host, port=self.port, user=SUPERUSER, dbname="postgres",
                             autocommit=True) as conn:
            query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
            if template:
                query = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(name), sql.Identifier(template))
            conn.execute(query)
        return self.url(name)

    def drop_database(self, name: str) -> None:
        import psycopg
        from psycopg import sql

        with contextlib.suppress(psycopg.Error), psycopg.connect(
                host=self.host, port=self.port, user=SUPERUSER, dbname="postgres",
                autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)))
