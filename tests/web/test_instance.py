"""One instance folder for the whole installation: an account made with ``balis user add``
logs in to the web app started from the same directory, with no DATABASE_URL set."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from broker.kernel import config as config_module
from web import create_app

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "config" / "libraries.yaml"


def test_user_add_and_the_web_app_share_the_instance_database(tmp_path, monkeypatch):
    (tmp_path / "password").write_text("a-long-password\n", encoding="utf-8")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-m", "balis", "--config", str(CONFIG), "user", "add",
         "--login", "lisi", "--password-file", "password", "--role", "reader",
         "--library", "pku", "--name", "李四"],
        capture_output=True, text=True, cwd=tmp_path, env=env, check=False)
    assert done.returncode == 0, done.stderr
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("BALIS_INSTANCE", raising=False)
    app = create_app({"TESTING": True, "CONSORTIUM": config_module.load(CONFIG),
                      "SESSION_STORE": "memory"})
    try:
        assert Path(app.instance_path) == tmp_path / "instance"
        response = app.test_client().post("/api/tokens", json={
            "login": "lisi", "password": "a-long-password"})
        assert response.status_code == 200, response.get_json()
        assert (tmp_path / "instance" / "secret_key").is_file()  # kept beside it
    finally:
        app.extensions["balis"].close()
        app.extensions["ill"].close()
