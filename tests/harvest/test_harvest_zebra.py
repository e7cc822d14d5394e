"""``balis harvest`` against a real Zebra, over Z39.50 and SRU, thousands of records."""

from __future__ import annotations

import json
import os
import pty
import signal
import subprocess

import pytest
from harvest_helpers import (
    BALIS,
    balis,
    checkpoint,
    empty_record,
    env,
    index_database,
    iso_ids,
    jsonl_ids,
    members,
    sample_records,
    start_balis,
    wait_for,
    write_config,
    yaz_client_dump,
)

from marc import read_file

BULK = 2000
RECORD_KEYS = {"id", "format", "title", "subtitle", "responsibility", "authors", "publisher",
               "place", "year", "edition", "extent", "language", "material_type", "isbns",
               "issns", "subjects", "classification", "call_numbers", "holdings"}


@pytest.fixture(scope="module")
def bulk(zebra) -> int:
    """The number of records in Zebra's bulk database (other modules may load more)."""
    return zebra.load_bulk(BULK)


@pytest.fixture(scope="module")
def reference(zebra, bulk) -> bytes:
    """yaz-client's dump of every bulk record: the reference harvest."""
    data = yaz_client_dump(zebra, "bulk", bulk)
    assert len(iso_ids(data)) == bulk
    # The records are UTF-8, but those converted from MARC-8 keep a blank leader/09; a
    # harvest marks every record it writes as UTF-8 ("a"), and changes nothing else.
    records = [r + b"\x1d" for r in data.split(b"\x1d") if r]
    blank = sum(r[9:10] == b" " for r in records)
    assert 0 < blank < bulk
    return b"".join(r[:9] + b"a" + r[10:] for r in records)


@pytest.fixture
def config(zebra, bulk, tmp_path):
    return write_config(tmp_path / "libraries.yaml", members(zebra, "bulk"))


@pytest.mark.parametrize("library", ["z", "s"])
def test_iso2709_equals_what_yaz_client_fetches(library, config, reference, bulk, tmp_path):
    out = tmp_path / "bulk.mrc"
    done = balis("harvest", library, "--out", str(out), "--config", config)
    assert done.returncode == 0, done.stderr
    # Zebra sends UTF-8 ISO 2709 over Z39.50, kept as it came; SRU's MARCXML is written
    # as ISO 2709 the same way, byte for byte.
    assert out.read_bytes() == reference
    assert f"{library}: {bulk} records written to {out}" in done.stderr
    state = checkpoint(out)
    assert state["done"] is True and state["hits"] == bulk and state["written"] == bulk
    assert state["output_length"] == len(reference) and state["skipped"] == 0


@pytest.mark.parametrize("library", ["z", "s"])
def test_marcxml_and_jsonl(library, config, reference, bulk, tmp_path):
    expected = [i.decode() for i in iso_ids(reference)]
    xml = tmp_path / "bulk.xml"
    done = balis("harvest", library, "--out", str(xml), "--format", "marcxml",
                 "--config", config)
    assert done.returncode == 0, done.stderr
    text = xml.read_bytes()
    assert text.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<collection xmlns='
                           b'"http://www.loc.gov/MARC21/slim">\n')
    assert text.endswith(b"</record>\n</collection>\n")
    entries = list(read_file(xml))
    assert all(e.ok for e in entries) and len(entries) == bulk
    assert [e.record["001"].data for e in entries] == expected
    assert "中国" in text.decode("utf-8")  # CJK as UTF-8 text, not character references

    lines = tmp_path / "bulk.jsonl"
    done = balis("harvest", library, "--out", str(lines), "--format", "jsonl",
                 "--config", config)
    assert done.returncode == 0, done.stderr
    assert jsonl_ids(lines.read_bytes()) == [f"{library}:{i}" for i in expected]
    first = json.loads(lines.read_bytes().splitlines()[0])
    assert set(first) >= RECORD_KEYS and first["title"]


@pytest.mark.parametrize("library", ["z", "s"])
def test_killed_harvest_resumes_to_the_same_bytes(library, config, reference, bulk, tmp_path):
    out = tmp_path / "bulk.mrc"
    # Slowed down (10 requests a second, 20 records each) so that the kill lands mid-way.
    process = start_balis("harvest", library, "--out", str(out), "--rate", "10", "--chunk",
                          "20", "--config", config)
    try:
        wait_for(lambda: (checkpoint(out) or {}).get("next", 0) > 300, what="progress")
    finally:
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=30)
    state = checkpoint(out)
    assert not state["done"] and 300 < state["next"] <= bulk
    assert out.stat().st_size >= state["output_length"]

    again = balis("harvest", library, "--out", str(out), "--config", config)
    assert again.returncode == 2 and "--resume" in again.stderr  # never overwritten silently

    resumed = balis("harvest", library, "--out", str(out), "--resume", "--config", config)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming at record {state['next']} of {bulk}" in resumed.stderr
    assert out.read_bytes() == reference
    assert checkpoint(out)["written"] == bulk

    twice = balis("harvest", library, "--out", str(out), "--resume", "--config", config)
    assert twice.returncode == 0 and "already complete" in twice.stderr
    assert out.read_bytes() == reference


def test_killed_marcxml_harvest_resumes_to_the_same_bytes(config, bulk, tmp_path):
    whole = tmp_path / "whole.xml"
    assert balis("harvest", "s", "--out", str(whole), "--format", "marcxml",
                 "--config", config).returncode == 0
    out = tmp_path / "cut.xml"
    process = start_balis("harvest", "s", "--out", str(out), "--format", "marcxml",
                          "--rate", "10", "--chunk", "20", "--config", config)
    try:
        wait_for(lambda: (checkpoint(out) or {}).get("next", 0) > 200, what="progress")
    finally:
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=30)
    assert not out.read_bytes().endswith(b"</collection>\n")
    resumed = balis("harvest", "s", "--out", str(out), "--format", "marcxml", "--resume",
                    "--config", config)
    assert resumed.returncode == 0, resumed.stderr
    assert out.read_bytes() == whole.read_bytes()


@pytest.mark.parametrize("library", ["z", "s"])
def test_query_option_harvests_what_it_finds(library, config, tmp_path):
    out = tmp_path / "perl.jsonl"
    done = balis("harvest", library, "--out", str(out), "--format", "jsonl", "--query",
                 "title=perl", "--config", config)
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in out.read_text("utf-8").splitlines()]
    assert records and all("perl" in r["title"].lower() for r in records)
    assert len(records) == checkpoint(out)["hits"]


@pytest.mark.parametrize("library", ["z", "s"])
def test_bad_record_is_reported_and_skipped(library, zebra, tmp_path):
    if "harvestbad" not in zebra.databases:
        good = sample_records(5)
        index_database(zebra, "harvestbad", [*good[:2], empty_record(), *good[2:]])
    config = write_config(tmp_path / "libraries.yaml", members(zebra, "harvestbad"))
    out = tmp_path / "bad.mrc"
    done = balis("harvest", library, "--out", str(out), "--config", config)
    assert done.returncode == 0, done.stderr
    state = checkpoint(out)
    assert (state["hits"], state["written"], state["skipped"]) == (6, 5, 1)
    why = "the directory lists no fields" if library == "z" else "record has no fields"
    assert state["problems"] == [f"record 3: {why}"]
    assert f"{library}: record 3: {why} (skipped)" in done.stderr  # as it came
    assert "1 bad records skipped" in done.stderr and f"  record 3: {why}" in done.stderr
    assert len(list(read_file(out))) == 5


def test_hit_count_change_on_resume_is_reported(zebra, tmp_path):
    database = f"grow{tmp_path.name[-6:]}".replace("-", "")
    index_database(zebra, database, sample_records(19) * 20)  # 380 records
    config = write_config(tmp_path / "libraries.yaml", members(zebra, database))
    out = tmp_path / "grow.mrc"
    process = start_balis("harvest", "z", "--out", str(out), "--rate", "10", "--chunk", "10",
                          "--config", config)
    try:
        wait_for(lambda: (checkpoint(out) or {}).get("next", 0) > 50, what="progress")
    finally:
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=30)
    index_database(zebra, database, sample_records(10))
    resumed = balis("harvest", "z", "--out", str(out), "--resume", "--config", config)
    assert resumed.returncode == 0, resumed.stderr
    assert "the hit count changed from 380 to 390" in resumed.stderr
    assert checkpoint(out)["written"] == 390


def test_all_members_in_parallel(zebra, bulk, reference, tmp_path):
    config = write_config(tmp_path / "libraries.yaml", {
        **members(zebra, "bulk"), "gone": ("z3950", zebra.z3950_url("nosuchdb"))})
    out = tmp_path / "harvests"
    done = balis("harvest", "--all", "--out", str(out), "--jobs", "2", "--config", config)
    assert done.returncode == 1  # one member failed
    assert (out / "z.mrc").read_bytes() == reference == (out / "s.mrc").read_bytes()
    assert "gone: harvest stopped after 0 records: database unavailable" in done.stderr
    assert "2 of 3 members harvested" in done.stderr


def test_failures_are_resumable_exit_1_and_user_errors_exit_2(zebra, config, tmp_path):
    out = tmp_path / "x.mrc"
    assert balis("harvest", "nobody", "--out", str(out), "--config", config).returncode == 2
    bad_query = balis("harvest", "z", "--out", str(out), "--query", "title=(", "--config",
                      config)
    assert bad_query.returncode == 2 and "Traceback" not in bad_query.stderr
    assert balis("harvest", "--out", str(out), "--config", config).returncode == 2
    gone = write_config(tmp_path / "gone.yaml", members(zebra, "nosuchdb"))
    done = balis("harvest", "z", "--out", str(out), "--config", gone)
    assert done.returncode == 1 and "diagnostic 109" in done.stderr
    assert "--resume" in done.stderr


def test_ctrl_c_and_a_second_harvest_on_the_same_file(config, reference, bulk, tmp_path):
    out = tmp_path / "bulk.mrc"
    process = start_balis("harvest", "z", "--out", str(out), "--rate", "10", "--chunk", "20",
                          "--config", config)
    try:
        wait_for(lambda: (checkpoint(out) or {}).get("next", 0) > 100, what="progress")
        second = balis("harvest", "z", "--out", str(out), "--resume", "--config", config)
        assert second.returncode == 2 and "another harvest is writing" in second.stderr
        process.send_signal(signal.SIGINT)
        _stdout, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 1 and "interrupted" in stderr and "--resume" in stderr
    assert "Traceback" not in stderr
    resumed = balis("harvest", "z", "--out", str(out), "--resume", "--config", config)
    assert resumed.returncode == 0, resumed.stderr
    assert out.read_bytes() == reference


def test_progress_bar_only_on_a_terminal(config, bulk, tmp_path):
    piped = start_balis("harvest", "s", "--out", str(tmp_path / "s.mrc"), "--config", config)
    _stdout, piped_err = piped.communicate(timeout=120)
    assert "rec/s" not in piped_err and "\r" not in piped_err

    terminal, follower = pty.openpty()
    on_tty = subprocess.Popen([*BALIS, "harvest", "s", "--out", str(tmp_path / "t.mrc"),
                               "--config", config], stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=follower, env=env())
    os.close(follower)
    seen = b""
    while True:
        try:
            chunk = os.read(terminal, 65536)
        except OSError:  # the terminal's other end closed: the harvest is over
            break
        if not chunk:
            break
        seen += chunk
    on_tty.wait(timeout=120)
    os.close(terminal)
    text = seen.decode("utf-8", "replace")
    assert on_tty.returncode == 0
    assert "\r\x1b[K" in text and "rec/s ETA" in text and f"/{bulk}" in text
    assert f"s: {bulk} records written" in text


def test_a_local_index_library_is_not_harvested(tmp_path):
    config = tmp_path / "local.yaml"
    config.write_text(
        "consortium: {name: T, max_selected: 10}\ncategories: [{id: c, name: C}]\n"
        "libraries:\n  - {id: idx, name: 索引, category: c,\n"
        "     connector: {protocol: local, path: union.sqlite}}\n", encoding="utf-8")
    done = balis("harvest", "idx", "--out", str(tmp_path / "x.mrc"), "--config", str(config))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "harvest the members themselves" in done.stderr
    everyone = balis("harvest", "--all", "--out", str(tmp_path / "all"), "--config", str(config))
    assert everyone.returncode == 2 and "no searchable members" in everyone.stderr
