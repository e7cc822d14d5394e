"""The balis command: options anywhere, clean errors, marc dump's output and status."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap

import pytest

from balis.cli import build_parser, main
from balis.config_path import config_path


def test_config_accepted_before_and_after_the_subcommand(monkeypatch):
    monkeypatch.delenv("BALIS_CONFIG", raising=False)
    parser = build_parser()
    before = parser.parse_args(["--config", "a.yaml", "marc", "dump", "x"])
    after = parser.parse_args(["marc", "dump", "x", "--config", "b.yaml"])
    neither = parser.parse_args(["marc", "dump", "x"])
    assert str(config_path(before)) == "a.yaml"
    assert str(config_path(after)) == "b.yaml"
    assert str(config_path(neither)) == "config/libraries.yaml"


def test_config_falls_back_to_environment(monkeypatch):
    monkeypatch.setenv("BALIS_CONFIG", "/etc/balis/libraries.yaml")
    args = build_parser().parse_args(["marc", "dump", "x"])
    assert str(config_path(args)) == "/etc/balis/libraries.yaml"


def test_dump_json_prints_one_normalized_record_per_line(marc_data, capsys):
    status = main(["marc", "dump", "--json", str(marc_data / "derived/bnu_cnmarc.gbk.iso")])
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert status == 0
    assert len(lines) == 10
    first = json.loads(lines[0])
    assert first["title"] == "'94中国发展报告"
    assert first["format"] == "unimarc"
    assert err == ""


def test_dump_library_prefixes_ids_and_owns_holdings(marc_data, capsys):
    main(["marc", "dump", "--json", "--library", "bnu",
          str(marc_data / "derived/bnu_cnmarc.utf8.iso")])
    first = json.loads(capsys.readouterr().out.splitlines()[0])
    assert first["id"] == "bnu:990002180740203961"
    assert {h["library"] for h in first["holdings"]} == {"bnu"}


def test_dump_without_json_prints_readable_marc(marc_data, capsys):
    main(["marc", "dump", str(marc_data / "marc4j/summerland.mrc")])
    out = capsys.readouterr().out
    assert "=245  10$aSummerland /$cMichael Chabon." in out
    assert out.startswith("=LDR  ")


def test_bad_records_reported_with_position_and_rest_still_read(marc_data, capsys):
    status = main(["marc", "dump", "--json", str(marc_data / "pymarc/bad_records.mrc")])
    out, err = capsys.readouterr()
    assert status == 0
    assert out.count("\n") >= 2
    # Every stderr line names the file and a record number with its byte offset.
    for line in err.splitlines():
        if "could not be read" not in line:
            assert "bad_records.mrc: record " in line and ", byte " in line


def test_missing_file_is_exit_2_with_one_line_and_others_still_read(marc_data, capsys):
    status = main(["marc", "dump", "--json", "/nonexistent/file.mrc",
                   str(marc_data / "marc4j/summerland.mrc")])
    out, err = capsys.readouterr()
    assert status == 2
    assert err.strip() == "balis: cannot open /nonexistent/file.mrc: No such file or directory"
    assert json.loads(out)["title"] == "Summerland"


def test_unknown_encoding_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["marc", "dump", "--encoding", "klingon", "x.mrc"])
    assert exit_info.value.code == 2
    assert "unknown encoding 'klingon'" in capsys.readouterr().err


def test_empty_file_is_reported_not_silent(tmp_path, capsys):
    empty = tmp_path / "empty.mrc"
    empty.write_bytes(b"")
    status = main(["marc", "dump", str(empty)])
    assert status == 0
    assert "empty" in capsys.readouterr().err


@pytest.mark.skipif(shutil.which("balis") is None, reason="console script not installed")
def test_installed_console_script_runs_without_traceback(marc_data):
    done = subprocess.run(["balis", "marc", "dump", "--json", "/nonexistent.mrc"],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("balis: cannot open")


def test_help_lists_marc_dump():
    done = subprocess.run([sys.executable, "-m", "balis", "marc", "dump", "--help"],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0
    assert "--encoding" in done.stdout and "--flavour" in done.stdout


def test_the_parser_loads_no_subcommand_machinery():
    """balis --help builds every subcommand's parser; the broker, the connectors, the web
    and the ledger are imported only by the command that runs them."""
    heavy = ["aiohttp", "flask", "sqlalchemy", "pypinyin", "opencc", "redis", "rq",
             "connectors", "web", "ill", "broker.search.fanout", "broker.harvest.harvester"]
    code = textwrap.dedent(f"""
        import sys
        import balis.cli
        balis.cli.build_parser()
        heavy = {heavy!r}
        print(sorted(m for m in sys.modules
                     if any(m == h or m.startswith(h + ".") for h in heavy)))
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "[]"
