"""``balis index build`` and ``balis index stats``: output, exit status, one-line errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from union_data import HARVESTS, write_harvests, write_jsonl

BALIS = ["balis"] if shutil.which("balis") else [sys.executable, "-m", "balis"]


def balis(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*BALIS, *args], capture_output=True, text=True, timeout=120,
                          cwd=cwd)


@pytest.fixture()
def harvest(tmp_path) -> Path:
    folder = tmp_path / "harvest"
    folder.mkdir()
    write_harvests(folder)
    return folder


def test_build_then_stats_as_text_and_json(harvest, tmp_path):
    index = tmp_path / "union.sqlite"
    done = balis("index", "build", *sorted(map(str, harvest.glob("*.jsonl"))),
                 "--out", str(index))
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"{index}: 10 records of 3 libraries in 5 clusters\n"
    assert done.stderr == ""
    text = balis("index", "stats", str(index))
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert lines[0] == f"{index}: 10 records in 5 clusters from 3 libraries"
    assert lines[1] == "clusters held by 1 library: 2, 2 libraries: 2, 3 libraries: 1"
    assert lines[3:7] == ["library  records  clusters  only here",
                          "a              4         4          2",
                          "b              3         3          0",
                          "c              3         2          0"]
    assert [line.split() for line in lines[-4:]] == [
        ["a", "b", "c"], ["a", "-", "50", "25"], ["b", "67", "-", "67"],
        ["c", "50", "100", "-"]]
    data = json.loads(balis("index", "stats", str(index), "--json").stdout)
    assert (data["records"], data["clusters"]) == (10, 5)
    assert data["overlap"]["a"]["b"] == {"shared": 2, "share": 0.5}
    assert data["libraries"][2] == {"id": "c", "records": 3, "clusters": 2, "unique": 0}
    # --json lists every library, but the overlap of only the --top largest (a thousand
    # libraries' every pair is 40 MB), unless --all.
    top = json.loads(balis("index", "stats", str(index), "--json", "--top", "2").stdout)
    assert [lib["id"] for lib in top["libraries"]] == ["a", "b", "c"]
    assert top["compared"] == ["a", "b"]
    assert top["overlap"] == {"a": {"b": {"shared": 2, "share": 0.5}},
                              "b": {"a": {"shared": 2, "share": 0.6667}}}
    every = json.loads(balis("index", "stats", str(index), "--json", "--all",
                             "--top", "2").stdout)
    assert every["compared"] is None and set(every["overlap"]) == {"a", "b", "c"}


def test_files_named_by_library_or_id_equals_file(harvest, tmp_path):
    renamed = tmp_path / "2024-05.jsonl"
    (harvest / "c.jsonl").rename(renamed)
    index = tmp_path / "u.sqlite"
    done = balis("index", "build", str(harvest / "a.jsonl"), f"c={renamed}",
                 "--out", str(index))
    assert done.returncode == 0, done.stderr
    assert "7 records of 2 libraries in 5 clusters" in done.stdout
    stats = json.loads(balis("index", "stats", str(index), "--json").stdout)
    assert [lib["id"] for lib in stats["libraries"]] == ["a", "c"]
    unnamed = balis("index", "build", str(renamed), "--out", str(index))
    assert unnamed.returncode == 2
    assert unnamed.stderr.startswith(f"balis: {renamed}: cannot tell which library")
    assert len(unnamed.stderr.splitlines()) == 1


def test_bad_records_are_reported_and_the_rest_indexed(tmp_path):
    path = write_jsonl(tmp_path / "b.jsonl", HARVESTS["b"])
    path.write_text(path.read_text("utf-8") + '{"format": "unimarc", "title": 5}\n', "utf-8")
    done = balis("index", "build", str(path), "--out", str(tmp_path / "u.sqlite"))
    assert done.returncode == 0
    assert done.stderr == (f"{path}: line 4: not a normalized record: 'title' must be text "
                           "or null; skipped\n")
    assert done.stdout.endswith("3 records of 1 library in 3 clusters, 1 unreadable records "
                                "skipped\n")


@pytest.mark.parametrize(("args", "message"), [
    (["index", "build", "{missing}", "--out", "{index}"], "balis: {missing} does not exist"),
    (["index", "build", "{harvest}/a.jsonl", "--out", "{tmp}/no/u.sqlite"],
     "balis: {tmp}/no/u.sqlite: the directory {tmp}/no does not exist"),
    (["index", "build", "{harvest}/a.jsonl", "--out", "{tmp}"],
     "balis: {tmp} is a directory; give the index file's path"),
    (["index", "build", "{empty}", "--out", "{index}"],
     "{empty}: byte 0: the file is empty: no records; skipped\n"
     "balis: no readable record in 1 file; {index} was not written"),
    (["index", "stats", "{missing}"],
     "balis: the union index {missing} does not exist (build it with 'balis index build')"),
    (["index", "stats", "{harvest}/a.jsonl"],
     "balis: {harvest}/a.jsonl cannot be read as a union index: file is not a database"),
])
def test_user_errors_are_one_line_and_status_2(harvest, tmp_path, args, message):
    empty = tmp_path / "e.mrc"
    empty.write_bytes(b"")
    names = {"missing": tmp_path / "gone.mrc", "index": tmp_path / "u.sqlite",
             "harvest": harvest, "tmp": tmp_path, "empty": empty}
    done = balis(*(a.format(**names) for a in args))
    assert done.returncode == 2
    assert done.stderr == message.format(**names) + "\n"
    assert done.stdout == ""
    assert not (tmp_path / "u.sqlite").exists()
