"""``balis search`` as a reader runs it, against the real test peers."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from peers.consortia import config_text, dead, m, member, za, zb
from peers.fixtures import PROBES

BALIS = ["balis"] if shutil.which("balis") else [sys.executable, "-m", "balis"]
RESULT_KEYS = {"query", "done", "elapsed_ms", "total_hits", "libraries", "records"}
LIBRARY_KEYS = {"id", "name", "status", "hits", "fetched", "elapsed_ms", "error"}
RECORD_KEYS = {"id", "format", "title", "subtitle", "responsibility", "authors", "publisher",
               "place", "year", "edition", "extent", "language", "material_type", "isbns",
               "issns", "subjects", "classification", "call_numbers", "holdings", "libraries"}


def balis(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "BALIS_CONFIG"}
    return subprocess.run([*BALIS, *args], capture_output=True, text=True, timeout=60,
                          env=env, check=False)


@pytest.fixture
def config(tmp_path):
    def write(*members, name="libraries.yaml", **options) -> str:
        path = tmp_path / name
        path.write_text(config_text(*members, **options), "utf-8")
        return str(path)

    return write


def test_json_result_is_contracts_section_5(zebra, config):
    path = config(za(zebra), zb(zebra), m(zebra), member("paper", None))
    done = balis("search", "--config", path, "--json", "中国")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert set(result) >= RESULT_KEYS
    assert result["query"] == "中国" and result["done"] is True
    assert isinstance(result["elapsed_ms"], int) and result["elapsed_ms"] >= 0
    # No --library: every searchable member (the one without a connector is not asked).
    assert [lib["id"] for lib in result["libraries"]] == ["za", "zb", "m"]
    for lib in result["libraries"]:
        assert set(lib) >= LIBRARY_KEYS
        assert lib["status"] == "ok" and lib["error"] is None
        assert lib["fetched"] == lib["hits"]
    assert [lib["name"] for lib in result["libraries"]] == ["甲大学图书馆", "乙大学图书馆",
                                                            "丙大学图书馆"]
    zhongguo = PROBES["zh_any_zhongguo"]["hits"]
    assert [lib["hits"] for lib in result["libraries"]] == [10, 10, zhongguo]
    assert result["total_hits"] == 20 + zhongguo
    assert len(result["records"]) == 10 + zhongguo  # every record, za and zb merged
    for record in result["records"]:
        assert set(record) >= RECORD_KEYS
        assert record["libraries"]
        assert {h["library"] for h in record["holdings"]} == set(record["libraries"])
    assert sum(sorted(r["libraries"]) == ["za", "zb"] for r in result["records"]) == 10


def test_library_option_and_sort_year(zebra, config):
    path = config(za(zebra), zb(zebra), m(zebra))
    done = balis("search", "--json", "--sort", "year", "--library", "m", "--library", "za",
                 "中国", "--config", path)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert [lib["id"] for lib in result["libraries"]] == ["m", "za"]
    years = [r["year"] for r in result["records"]]
    dated = [y for y in years if y is not None]
    assert dated == sorted(dated) and len(set(dated)) > 3
    assert years == dated + [None] * (len(years) - len(dated))


@pytest.mark.parametrize("spelling", [["--sort", "-year"], ["--sort=-year"]])
def test_sort_newest_first_in_both_spellings(zebra, config, spelling):
    path = config(za(zebra), m(zebra))
    done = balis("search", "--json", *spelling, "中国", "--config", path)
    assert done.returncode == 0, done.stderr
    dated = [r["year"] for r in json.loads(done.stdout)["records"] if r["year"] is not None]
    assert dated == sorted(dated, reverse=True) and len(set(dated)) > 3


def test_some_libraries_failing_is_still_success(zebra, config):
    path = config(m(zebra), dead("gone"))
    done = balis("search", "--config", path, "--json", "perl")
    assert done.returncode == 0, done.stderr
    libs = {lib["id"]: lib for lib in json.loads(done.stdout)["libraries"]}
    assert libs["m"]["status"] == "ok" and libs["m"]["hits"] == PROBES["any_perl"]["hits"]
    assert libs["gone"]["status"] == "error" and libs["gone"]["hits"] is None
    assert "refused" in libs["gone"]["error"].lower()


def test_human_output(zebra, config):
    path = config(m(zebra), dead("gone"))
    done = balis("search", "--config", path, "title=summerland")
    assert done.returncode == 0, done.stderr
    assert "Summerland" in done.stdout and "Chabon" in done.stdout
    assert "refused" in done.stdout.lower()


def test_no_library_answered_is_status_1(config):
    path = config(dead("gone1"), dead("gone2", "sru"))
    done = balis("search", "--config", path, "--json", "perl")
    assert done.returncode == 1
    result = json.loads(done.stdout)
    assert {lib["status"] for lib in result["libraries"]} == {"error"}
    assert result["total_hits"] == 0 and result["records"] == []


@pytest.mark.parametrize("query", ['title="unclosed', "nosuchindex=perl", "perl and"])
def test_a_bad_query_is_status_2(config, query):
    path = config(dead("gone"))
    done = balis("search", "--config", path, "--json", query)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith("balis:") and len(done.stderr.strip().splitlines()) == 1


def test_a_bad_config_is_status_2(tmp_path):
    path = tmp_path / "libraries.yaml"
    path.write_text("consortium: {name: T}\ncategories: [{id: c, name: C}]\n"
                    "libraries:\n  - {id: a, name: A, category: c, colour: red}\n", "utf-8")
    done = balis("search", "--config", str(path), "--json", "perl")
    assert done.returncode == 2
    assert done.stdout == ""
    assert "colour" in done.stderr and "libraries.yaml:4" in done.stderr
    missing = balis("search", "--config", str(tmp_path / "none.yaml"), "perl")
    assert missing.returncode == 2 and "none.yaml" in missing.stderr


def test_too_many_libraries_is_status_2(zebra, config):
    path = config(za(zebra), zb(zebra), m(zebra), max_selected=2)
    done = balis("search", "--config", path, "--library", "za", "--library", "zb",
                 "--library", "m", "perl")
    assert done.returncode == 2
    assert "at most 2" in done.stderr


def test_max_per_library_zero_counts_hits_only(zebra, config):
    path = config(m(zebra))
    done = balis("search", "--config", path, "--json", "--max-per-library", "0", "perl")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["libraries"][0]["hits"] == PROBES["any_perl"]["hits"]
    assert result["libraries"][0]["fetched"] == 0
    assert result["records"] == []
