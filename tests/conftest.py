"""Shared fixtures: where the repository's MARC test data lives."""

from __future__ import annotations

from pathlib import Path

import pytest

# Real Z39.50/SRU servers for the tests (tests/peers): fixtures zebra and ztest.
pytest_plugins = ["peers.fixtures", "peers.ill_databases"]

# Kept in the repository (see its SOURCES.md and LICENSES.md), so a clone tests on its own.
MARC_DATA = Path(__file__).resolve().parent / "data" / "marc"


@pytest.fixture(scope="session")
def marc_data() -> Path:
    """The real MARC files of tests/data/marc (see its SOURCES.md)."""
    if not (MARC_DATA / "SOURCES.md").is_file():
        pytest.fail(f"MARC test data not found at {MARC_DATA}", pytrace=False)
    return MARC_DATA
