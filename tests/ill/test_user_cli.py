"""``balis user add`` (CONTRACTS section 1) and the demo accounts."""

from __future__ import annotations

import subprocess
import sys

import pytest
from sqlalchemy import func, select

from balis.cli import main
from broker.kernel.config import load
from ill import demo
from ill.db import Database
from ill.models import User
from ill.service import IllService

CONFIG = "config/libraries.yaml"


@pytest.fixture
def password_file(tmp_path):
    path = tmp_path / "pw.txt"
    path.write_text("correct horse 1\n", encoding="utf-8")
    return path


def add(url, password_file, *extra):
    return main(["--config", CONFIG, "user", "add", "--password-file", str(password_file),
                 "--database", url, *extra])


def test_user_add_creates_an_active_account_that_can_log_in(db_url, password_file, capsys):
    assert add(db_url, password_file, "--login", "zhang", "--role", "staff",
               "--library", "pku", "--name", "张三") == 0
    assert "created staff account zhang at pku" in capsys.readouterr().out
    db = Database(db_url, migrate_now=False)
    try:
        with db.session() as s:
            actor = IllService(load(CONFIG)).authenticate(s, "zhang", "correct horse 1")
        assert (actor.role, actor.library, actor.name) == ("staff", "pku", "张三")
    finally:
        db.dispose()


@pytest.mark.parametrize("args, message", [
    (["--login", "zhang", "--role", "staff", "--library", "pku"], "--login: this login is taken"),
    (["--login", "li", "--role", "boss"], "--role must be reader, staff or admin"),
    (["--login", "li", "--role", "reader"], "--library is required for a reader"),
    (["--login", "li", "--role", "staff", "--library", "mit"], "no library 'mit'"),
    (["--login", "a b", "--role", "admin"], "--login: login: 3 to 64"),
])
def test_user_add_refuses_clashes_and_bad_input_with_exit_2(db_url, password_file, capsys,
                                                            args, message):
    assert add(db_url, password_file, "--login", "zhang", "--role", "staff",
               "--library", "pku") == 0
    capsys.readouterr()
    assert add(db_url, password_file, *args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_user_add_without_a_password_file(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'x.sqlite3'}"
    assert add(url, tmp_path / "missing.txt", "--login", "li", "--role", "admin") == 2
    assert "no such password file" in capsys.readouterr().err
    empty = tmp_path / "empty.txt"
    empty.write_text("\n")
    assert add(url, empty, "--login", "li", "--role", "admin") == 2
    assert "is empty" in capsys.readouterr().err


def test_user_add_as_a_command_creates_the_default_database(tmp_path, password_file):
    """Installed console script, default location: instance/balis.sqlite3 under cwd."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "balis", "--config",
         str(__import__("pathlib").Path(CONFIG).resolve()), "user", "add", "--login",
         "admin1", "--role", "admin", "--password-file", "-"],
        input="s3cret-pass\n", capture_output=True, text=True, cwd=tmp_path, env={
            **env, "PYTHONPATH": str(__import__("pathlib").Path.cwd())}, check=False)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "instance" / "balis.sqlite3").is_file()


def test_demo_seed_is_idempotent_and_lists_its_credentials(db_url):
    consortium = load(CONFIG)
    first = demo.seed(db_url, consortium)
    again = demo.seed(db_url, consortium)
    assert first == again
    db = Database(db_url, migrate_now=False)
    try:
        with db.session() as s:
            assert s.scalar(select(func.count()).select_from(User)) == len(
                consortium.libraries) + 2
            svc = IllService(consortium)
            reader = svc.authenticate(s, demo.DEMO_READER, demo.DEMO_PASSWORD)
            staff = svc.authenticate(s, "staff-nlc", demo.DEMO_PASSWORD)
        assert (reader.role, reader.library) == ("reader", "bupt")
        assert (staff.role, staff.library) == ("staff", "nlc")
        with db.session() as s:
            # The demo reader can collect in person at once: one valid pickup card.
            card = svc.my_card(s, reader)
            assert card is not None and card.valid and card.library == "bupt"
            assert svc.check_card(s, staff, card.number).card.reader_login == "reader"
    finally:
        db.dispose()
    text = demo.credentials_text(first)
    assert "reader: reader / balis-demo" in text and "staff-<library id>" in text
