"""Shared fixtures: where the consortium's shared test data lives."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Real Z39.50/SRU servers for the tests (tests/peers): fixtures zebra and ztest.
pytest_plugins = ["peers.fixtures", "peers.ill_databases"]

REPO = Path(__file__).resolve().parent.parent


def _shared_dir() -> Path:
    # CI and developers have ../shared beside the clone; BALIS_SHARED points elsewhere.
    return Path(os.environ.get("BALIS_SHARED", REPO.parent / "shared"))


@pytest.fixture(scope="session")
def marc_data() -> Path:
    """The real MARC files of ../shared/testdata/marc (see its SOURCES.md)."""
    path = _shared_dir() / "testdata" / "marc"
    if not (path / "SOURCES.md").is_file():
        pytest.fail(f"shared MARC test data not found at {path}; set BALIS_SHARED", pytrace=False)
    return path
