"""What the deployment kit's tests share: where deploy/ is, the tools they need (skipped,
with the reason, when one is not installed; CI installs them through scripts/test.sh), and
a `balis` that runs this checkout with this interpreter."""

from __future__ import annotations

import os
import shutil
import stat
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
UNITS = DEPLOY / "systemd"
BACKUP = DEPLOY / "backup" / "balis-backup.sh"
RESTORE = DEPLOY / "backup" / "balis-restore.sh"
INSTALLED_BALIS = "/opt/balis/venv/bin/balis"  # where the units expect the command


def require(tool: str, package: str) -> str:
    """The tool's path, or skip the test naming the Debian package that brings it."""
    found = shutil.which(tool) or next(
        (str(p) for p in (Path("/usr/sbin") / tool, Path("/sbin") / tool) if p.exists()), None)
    if found is None:
        pytest.skip(f"{tool} is not installed (Debian package {package})")
    return found


def balis_command(folder: Path) -> Path:
    """An executable `balis` for the units and the scripts: this interpreter running this
    checkout (the console script may belong to another installation)."""
    path = folder / "balis"
    path.write_text(f"#!/bin/sh\nPYTHONPATH={REPO}${{PYTHONPATH:+:$PYTHONPATH}} "
                    f"exec {sys.executable} -m balis \"$@\"\n", encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def script_env(**extra: str) -> dict[str, str]:
    """The environment for the backup scripts: this one, without the settings of whatever
    installation runs the tests, plus ``extra``."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("BALIS_") and key != "DATABASE_URL"}
    env.update(extra)
    return env
