"""deploy/backup/balis-backup.sh and balis-restore.sh for real: an installation's data
written, backed up, lost, restored and read back, on SQLite and on the PostgreSQL the
tests start (its own pg_dump and pg_restore); the MANIFEST checked, a damaged backup
refused before anything is touched, old backups pruned."""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from deploy_helpers import BACKUP, REPO, RESTORE, balis_command, require, script_env

from balis.cli import main


@dataclass(frozen=True)
class Installation:
    """A balis installation's files in a scratch folder, as deploy/balis.env.example
    lays them out under /var/lib/balis and /etc/balis."""

    root: Path
    balis: Path

    @property
    def instance(self) -> Path:
        return self.root / "lib" / "instance"

    @property
    def config(self) -> Path:
        return self.root / "etc" / "libraries.yaml"

    @property
    def harvest(self) -> Path:
        return self.root / "lib" / "harvest"

    @property
    def union(self) -> Path:
        return self.root / "lib" / "union" / "union.sqlite"

    @property
    def backups(self) -> Path:
        return self.root / "backups"

    def env(self, **extra: str) -> dict[str, str]:
        return script_env(BALIS_INSTANCE=str(self.instance), BALIS_CONFIG=str(self.config),
                          BALIS_HARVEST_DIR=str(self.harvest),
                          BALIS_UNION_DIR=str(self.union.parent),
                          BALIS_BACKUP_DIR=str(self.backups), BALIS_BIN=str(self.balis),
                          **extra)

    def add_user(self, login: str, database: str) -> None:
        password = self.root / "pw.txt"
        password.write_text("correct horse 1\n", encoding="utf-8")
        assert main(["--config", str(self.config), "user", "add", "--login", login,
                     "--role", "admin", "--password-file", str(password),
                     "--database", database]) == 0

    def write_files(self) -> None:
        """What must survive besides the database: key, portal, harvests, union index."""
        (self.instance / "portal").mkdir(parents=True, exist_ok=True)
        (self.instance / "secret_key").write_text("k" * 64 + "\n", encoding="utf-8")
        (self.instance / "portal" / "news.md").write_text("# 通知\n闭馆\n", encoding="utf-8")
        (self.config.parent / "portal").mkdir(exist_ok=True)
        (self.config.parent / "portal" / "guide.md").write_text("# 使用指南\n", "utf-8")
        self.harvest.mkdir(parents=True, exist_ok=True)
        (self.harvest / "bnu.mrc").write_bytes(b"00026nam  2200025   4500\x1e\x1d")
        (self.harvest / "bnu.mrc.checkpoint").write_text('{"done": true}', "utf-8")
        self.union.parent.mkdir(parents=True, exist_ok=True)
        with sqlite3.connect(self.union) as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("CREATE TABLE clusters (id INTEGER PRIMARY KEY, title TEXT)")
            db.execute("INSERT INTO clusters (title) VALUES ('红楼梦')")
        db.close()

    def lose_files(self) -> None:
        for path in (self.instance, self.config.parent / "portal", self.harvest,
                     self.union.parent):
            shutil.rmtree(path)

    def files_are_back(self) -> None:
        assert (self.instance / "secret_key").read_text("utf-8") == "k" * 64 + "\n"
        assert (self.instance / "portal" / "news.md").read_text("utf-8") == "# 通知\n闭馆\n"
        assert (self.config.parent / "portal" / "guide.md").read_text("utf-8") == "# 使用指南\n"
        assert (self.harvest / "bnu.mrc.checkpoint").read_text("utf-8") == '{"done": true}'
        assert (self.harvest / "bnu.mrc").read_bytes().endswith(b"\x1d")
        with sqlite3.connect(self.union) as db:
            assert db.execute("SELECT title FROM clusters").fetchall() == [("红楼梦",)]
        db.close()

    def backup(self, *args: str, **env: str) -> Path:
        done = subprocess.run(["bash", str(BACKUP), *args], env=self.env(**env),
                              capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 0, done.stderr
        return Path(done.stdout.strip().splitlines()[-1])

    def restore(self, backup: Path, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["bash", str(RESTORE), "--no-services", "--yes", str(backup)],
                              env=self.env(**env), capture_output=True, text=True,
                              timeout=300, check=False)

    def schema_state(self, **env: str) -> str:
        done = subprocess.run([str(self.balis), "db", "current"], env=self.env(**env),
                              cwd=REPO, capture_output=True, text=True, timeout=120,
                              check=False)
        assert done.returncode == 0, done.stderr
        return done.stdout


@pytest.fixture
def site(tmp_path) -> Installation:
    require("tar", "tar")
    require("sha256sum", "coreutils")
    site = Installation(tmp_path, balis_command(tmp_path))
    site.config.parent.mkdir(parents=True)
    shutil.copy(REPO / "config" / "libraries.yaml", site.config)
    site.write_files()
    return site


def manifest_files(backup: Path) -> dict[str, tuple[str, int]]:
    out = {}
    for line in (backup / "MANIFEST").read_text("utf-8").splitlines():
        if line.startswith("file "):
            _, digest, size, name = line.split(" ", 3)
            out[name] = (digest, int(size))
    return out


def test_the_manifest_gives_each_files_size_and_sha256(site):
    site.add_user("zhang", f"sqlite:///{site.instance / 'balis.sqlite3'}")
    # balis index update at work: its copy is half an index, never backed up.
    shutil.copy(site.union, site.union.with_name(f".{site.union.name}.updating-4242"))
    backup = site.backup()
    listed = manifest_files(backup)
    assert set(listed) == {"database.sqlite3", "files.tar.gz", "union/union.sqlite"}
    for name, (digest, size) in listed.items():
        data = (backup / name).read_bytes()
        assert (hashlib.sha256(data).hexdigest(), len(data)) == (digest, size)
    archived = subprocess.run(["tar", "-tzf", str(backup / "files.tar.gz")], check=True,
                              capture_output=True, text=True).stdout.splitlines()
    for path in (site.instance / "secret_key", site.harvest / "bnu.mrc.checkpoint",
                 site.config, site.config.parent / "portal" / "guide.md"):
        assert str(path).lstrip("/") in archived
    # The ledger and the union index are copied online, never as live files in the tar.
    assert not [n for n in archived if n.endswith(("balis.sqlite3", "union.sqlite"))]
    assert not [n for n in archived if ".updating-" in n]
    # Checkpoints first: a harvest in the backup is never behind its checkpoint.
    assert archived[0].endswith(".checkpoint")


def _logins_sqlite(path: Path) -> list[str]:
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT login FROM users ORDER BY login").fetchall()
    db.close()
    return [r[0] for r in rows]


@pytest.mark.parametrize("sqlite3_cli", ["sqlite3", "/nonexistent/sqlite3"],
                         ids=["sqlite3", "python-fallback"])
def test_sqlite_round_trip(site, sqlite3_cli):
    if sqlite3_cli == "sqlite3":
        require("sqlite3", "sqlite3")
    ledger = site.instance / "balis.sqlite3"
    url = f"sqlite:///{ledger}"
    site.add_user("zhang", url)
    backup = site.backup(SQLITE3=sqlite3_cli)
    site.add_user("lisi", url)  # after the backup: gone once it is restored
    site.lose_files()
    assert not ledger.exists()

    done = site.restore(backup)
    assert done.returncode == 0, done.stderr
    assert _logins_sqlite(ledger) == ["zhang"]
    site.files_are_back()
    assert "3 files match the MANIFEST" in done.stderr and "balis db upgrade" in done.stderr
    assert "head" in site.schema_state()


def test_a_damaged_backup_is_refused_before_anything_is_touched(site):
    ledger = site.instance / "balis.sqlite3"
    site.add_user("zhang", f"sqlite:///{ledger}")
    backup = site.backup()
    site.add_user("lisi", f"sqlite:///{ledger}")
    archive = backup / "files.tar.gz"
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0xFF
    archive.write_bytes(bytes(data))
    done = site.restore(backup)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "balis-restore: files.tar.gz: sha256 differs from the MANIFEST"]
    assert _logins_sqlite(ledger) == ["lisi", "zhang"]


def test_restore_refuses_without_yes_when_nobody_can_answer(site):
    backup = site.backup()
    done = subprocess.run(["bash", str(RESTORE), "--no-services", str(backup)],
                          env=site.env(), stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 1 and "--yes" in done.stderr


def test_old_backups_are_pruned_to_keep(site):
    made = [site.backup("--keep", "2") for _ in range(3)]
    left = sorted(p.name for p in site.backups.iterdir() if p.name.startswith("balis-"))
    assert left == sorted(p.name for p in made[1:])


def _logins_postgres(postgres, database: str) -> list[str]:
    import psycopg

    with psycopg.connect(host=postgres.host, port=postgres.port, user="balis",
                         dbname=database) as conn:
        return [r[0] for r in conn.execute("SELECT login FROM users ORDER BY login")]


def test_postgresql_round_trip(site, postgres):
    name = f"deploy_{uuid.uuid4().hex[:8]}"
    url = postgres.create_database(name)
    tools = {"PG_DUMP": str(postgres.bindir / "pg_dump"),
             "PG_RESTORE": str(postgres.bindir / "pg_restore"), "DATABASE_URL": url}
    try:
        site.add_user("zhang", url)
        backup = site.backup(**tools)
        assert set(manifest_files(backup)) == {"database.pgdump", "files.tar.gz",
                                               "union/union.sqlite"}
        assert "database postgresql" in (backup / "MANIFEST").read_text("utf-8")

        # Into the database as it is now (--clean): what came after the backup goes.
        site.add_user("lisi", url)
        done = site.restore(backup, **tools)
        assert done.returncode == 0, done.stderr
        assert _logins_postgres(postgres, name) == ["zhang"]

        # The database dropped, made again empty, the files lost: all of it comes back.
        postgres.drop_database(name)
        postgres.create_database(name)
        site.lose_files()
        done = site.restore(backup, **tools)
        assert done.returncode == 0, done.stderr
        assert _logins_postgres(postgres, name) == ["zhang"]
        site.files_are_back()
        assert "head" in site.schema_state(DATABASE_URL=url)
    finally:
        postgres.drop_database(name)


def test_a_postgresql_backup_needs_a_postgresql_url_to_restore(site, postgres):
    name = f"deploy_{uuid.uuid4().hex[:8]}"
    url = postgres.create_database(name)
    try:
        site.add_user("zhang", url)
        backup = site.backup(PG_DUMP=str(postgres.bindir / "pg_dump"), DATABASE_URL=url)
        done = site.restore(backup)
        assert done.returncode == 1
        assert "DATABASE_URL names no PostgreSQL database" in done.stderr
    finally:
        postgres.drop_database(name)


def test_settings_from_an_env_file_as_systemd_reads_it(site, tmp_path):
    """--env FILE: KEY=VALUE lines, never run by a shell (an & in a value is just a
    character), quotes dropped; the file itself goes into the backup."""
    env_file = tmp_path / "balis.env"
    env_file.write_text(
        "# the settings\n"
        f"BALIS_INSTANCE={site.instance}\n"
        f'BALIS_CONFIG="{site.config}"\n'
        f"BALIS_HARVEST_DIR={site.harvest}\n"
        f"BALIS_UNION_DIR={site.union.parent}\n"
        f"BALIS_BACKUP_DIR={tmp_path / 'elsewhere'}\n"
        "BALIS_SITE_URL=https://balis.example.edu.cn/?a=1&b=2\n", encoding="utf-8")
    done = subprocess.run(["bash", str(BACKUP), "--env", str(env_file)],
                          env=script_env(BALIS_BIN=str(site.balis)), capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    backup = Path(done.stdout.strip().splitlines()[-1])
    assert backup.parent == tmp_path / "elsewhere"
    manifest = (backup / "MANIFEST").read_text("utf-8")
    assert f"files {env_file}" in manifest and f"path config {site.config}" in manifest
    archived = subprocess.run(["tar", "-tzf", str(backup / "files.tar.gz")], check=True,
                              capture_output=True, text=True).stdout.splitlines()
    assert str(env_file).lstrip("/") in archived
