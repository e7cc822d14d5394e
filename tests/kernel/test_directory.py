"""The member directory: the shipped BALIS file, pinyin matching, `balis libraries` and
`balis check-config`."""

from __future__ import annotations

import json
import re
import textwrap
from collections import Counter
from pathlib import Path

import pytest

from balis.cli import main
from broker.kernel import directory
from broker.kernel.config import load, loads
from broker.kernel.errors import UsageError

SHIPPED = Path(__file__).resolve().parents[2] / "config" / "libraries.yaml"

COUNTS = {"公共馆": 2, "工科类": 13, "经贸管理类": 3, "文科类": 4, "师范类": 2,
          "音乐艺术类": 3, "政法类": 6, "综合类": 8, "农林医类": 5}


@pytest.fixture(scope="module")
def balis():
    return load(SHIPPED)


# --- the shipped consortium -----------------------------------------------------------------


def test_shipped_file_has_46_members_in_9_categories(balis):
    assert balis.name == "BALIS" and balis.max_selected == 10
    assert len(balis.libraries) == 46
    assert len({lib.id for lib in balis.libraries}) == 46
    assert len({lib.name for lib in balis.libraries}) == 46
    assert len(balis.categories) == 9
    for category in balis.categories:
        assert re.fullmatch(r"[a-z_]+", category.id)


def test_category_counts_are_balis_own(balis):
    names = {c.id: c.name for c in balis.categories}
    counts = Counter(names[lib.category] for lib in balis.libraries)
    by_short_name = {short: n for short in COUNTS for name, n in counts.items()
                     if name.startswith(short)}
    assert by_short_name == COUNTS
    public = {lib.name for lib in balis.libraries if lib.category == "public"}
    assert public == {"国家图书馆", "首都图书馆"}


def test_named_members_are_there(balis):
    names = {lib.id: lib.name for lib in balis.libraries}
    for lid, name in {"nlc": "国家图书馆", "bupt": "北京邮电大学图书馆",
                      "buaa": "北京航空航天大学图书馆", "bjfu": "北京林业大学图书馆",
                      "bit": "北京理工大学图书馆", "pku": "北京大学图书馆",
                      "thu": "清华大学图书馆", "ruc": "中国人民大学图书馆",
                      "bnu": "北京师范大学图书馆", "cnu": "首都师范大学图书馆",
                      "ccom": "中央音乐学院图书馆", "cupl": "中国政法大学图书馆",
                      "uibe": "对外经济贸易大学图书馆", "cau": "中国农业大学图书馆",
                      "bucm": "北京中医药大学图书馆"}.items():
        assert names[lid] == name


def test_ill_policy_nlc_21_days_no_self_cancel_others_28_and_60(balis):
    for lib in balis.libraries:
        expected = (0, 21) if lib.id == "nlc" else (60, 28)
        assert (lib.ill.cancel_window_minutes, lib.ill.loan_days) == expected, lib.id


def test_searchable_members_have_valid_documented_connectors(balis):
    searchable = {lib.id: lib.connector for lib in balis.libraries if lib.searchable}
    assert set(searchable) == {"nlc", "bnu"}
    for connector in searchable.values():
        assert connector.host and connector.port and connector.database
    assert searchable["nlc"].protocol == "z3950"
    assert searchable["nlc"].format == "unimarc"
    assert searchable["bnu"].protocol == "sru"
    assert searchable["bnu"].url == "https://bnu.alma.exlibrisgroup.com/view/sru/86BNU_INST"
    # Each connector says in a comment where its endpoint is documented.
    text = SHIPPED.read_text(encoding="utf-8")
    for lid in searchable:
        block = text.split(f"  - id: {lid}\n", 1)[1].split("\n  - id: ", 1)[0]
        assert "connector:" in block
        comment = block.split("connector:")[0]
        assert re.search(r"#.*(\w+\.\w+/|[\w-]+/[\w-]+ \()", comment), lid


def test_music_schools_read_yinyue_not_yinle(balis):
    assert directory.initials(balis.library("ccom")) == "zyyyxytsg"
    assert directory.name_initials("中央音乐学院图书馆") == "zyyyxytsg"
    assert "yinyue" in directory.full_pinyin("中国音乐学院图书馆")


def test_every_name_has_initials_of_its_length(balis):
    for lib in balis.libraries:
        han = sum(1 for c in lib.name if "\u4e00" <= c <= "\u9fff")
        latin = sum(1 for c in lib.name if c.isascii() and c.isalnum())
        assert len(directory.initials(lib)) == han + latin, lib.name


# --- matching -------------------------------------------------------------------------------


def _ids(consortium, **filters):
    return [lib.id for lib in directory.libraries(consortium, **filters)]


def test_bjyddx_finds_bupt_and_nothing_else(balis):
    assert _ids(balis, match="bjyddx") == ["bupt"]
    assert _ids(balis, match="bjydd") == ["bupt"]  # a part of the initials is enough
    assert _ids(balis, match="BJ YD DX") == ["bupt"]  # case and spaces ignored
    assert directory.match(balis.library("bupt"), "bjyddx")
    assert not directory.match(balis.library("buaa"), "bjyddx")


def test_match_by_id_name_and_full_pinyin(balis):
    assert _ids(balis, match="bupt") == ["bupt"]
    assert _ids(balis, match="北京邮电大学图书馆") == ["bupt"]
    assert _ids(balis, match="邮电") == ["bupt"]
    assert _ids(balis, match="beijing youdian") == ["bupt"]
    assert _ids(balis, match="国家图书馆") == ["nlc"]
    assert _ids(balis, match="中国石油大学(北京)") == ["cup"]  # ASCII parentheses too
    assert _ids(balis, match="qqq") == []
    assert len(_ids(balis, match="")) == 46


def test_category_by_id_or_chinese_name(balis):
    assert len(_ids(balis, category="engineering")) == 13
    assert _ids(balis, category="工科类院校图书馆") == _ids(balis, category="engineering")
    assert _ids(balis, category="工科类") == _ids(balis, category="engineering")
    assert _ids(balis, category="公共馆") == ["nlc", "clcn"]
    assert _ids(balis, category="arts", match="yinyue") == ["ccom", "ccmusic"]
    with pytest.raises(UsageError, match="no category 'nowhere'"):
        directory.libraries(balis, category="nowhere")


POLYPHONIC = textwrap.dedent("""\
    consortium: {name: Test, max_selected: 10}
    categories:
      - {id: research, name: 研究机构}
    libraries:
      - id: tibet
        name: 中国藏学研究中心图书馆
        category: research
        initials: ZGZXYJZXTSG
      - id: plain
        name: 中国藏学研究中心图书馆
        category: research
    """)


def test_initials_override_wins_over_pypinyin():
    # pypinyin reads 藏学 as cang xue; the centre is Zang (Tibetan) studies.
    consortium = loads(POLYPHONIC)
    tibet, plain = consortium.libraries
    assert directory.name_initials(tibet.name) == "zgcxyjzxtsg"
    assert directory.initials(tibet) == "zgzxyjzxtsg"
    assert directory.initials(plain) == "zgcxyjzxtsg"
    assert _ids(consortium, match="zgzx") == ["tibet"]
    assert directory.library_dict(tibet)["initials"] == "zgzxyjzxtsg"


# --- balis libraries ------------------------------------------------------------------------


def _run(capsys, *argv):
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_libraries_json_shape(capsys):
    status, out, err = _run(capsys, "libraries", "--json", "--config", str(SHIPPED))
    assert status == 0 and err == ""
    data = json.loads(out)
    assert set(data) == {"categories", "libraries"}
    assert len(data["categories"]) == 9
    assert sum(c["count"] for c in data["categories"]) == 46
    assert all(set(c) == {"id", "name", "count"} for c in data["categories"])
    assert len(data["libraries"]) == 46
    keys = {"id", "name", "category", "initials", "searchable", "protocol", "contact", "ill",
            "address", "hours"}
    for lib in data["libraries"]:
        assert set(lib) == keys
        assert set(lib["contact"]) == {"name", "phone", "email"}
        assert set(lib["ill"]) == {"cancel_window_minutes", "loan_days"}
        assert lib["searchable"] == (lib["protocol"] is not None)
    by_id = {lib["id"]: lib for lib in data["libraries"]}
    assert by_id["nlc"]["ill"] == {"cancel_window_minutes": 0, "loan_days": 21}
    assert by_id["nlc"]["protocol"] == "z3950" and by_id["bnu"]["protocol"] == "sru"
    assert by_id["bupt"]["initials"] == "bjyddxtsg" and not by_id["bupt"]["searchable"]


def test_libraries_category_and_match(capsys):
    status, out, _ = _run(capsys, "--config", str(SHIPPED), "libraries", "--category",
                          "law", "--json")
    data = json.loads(out)
    assert status == 0
    assert data["categories"] == [{"id": "law", "name": "政法类院校图书馆", "count": 6}]
    assert {lib["category"] for lib in data["libraries"]} == {"law"}

    status, out, _ = _run(capsys, "libraries", "--match", "bjyddx", "--json",
                          "--config", str(SHIPPED))
    data = json.loads(out)
    assert [lib["name"] for lib in data["libraries"]] == ["北京邮电大学图书馆"]
    assert data["categories"] == [{"id": "engineering", "name": "工科类院校图书馆",
                                   "count": 1}]


def test_libraries_table_is_grouped_with_counts(capsys):
    status, out, err = _run(capsys, "libraries", "--config", str(SHIPPED))
    assert status == 0 and err == ""
    assert "公共馆 (public): 2" in out
    assert "工科类院校图书馆 (engineering): 13" in out
    nlc = next(line for line in out.splitlines() if line.split()[:1] == ["nlc"])
    assert "国家图书馆" in nlc and "yes (z3950)" in nlc and "21 days" in nlc
    assert "no self-cancel" in nlc
    bupt = next(line for line in out.splitlines() if line.split()[:1] == ["bupt"])
    assert "not yet" in bupt and "28 days, cancel within 60 min" in bupt
    assert out.rstrip().endswith("46 libraries in 9 categories; 2 searchable")


def test_libraries_unknown_category_is_exit_2_with_one_line(capsys):
    status, out, err = _run(capsys, "libraries", "--category", "nowhere",
                            "--config", str(SHIPPED))
    assert status == 2 and out == ""
    assert len(err.strip().splitlines()) == 1
    assert "no category 'nowhere'" in err and "engineering" in err


def test_libraries_missing_config_is_exit_2(capsys, tmp_path):
    status, _, err = _run(capsys, "libraries", "--config", str(tmp_path / "none.yaml"))
    assert status == 2 and "no such file" in err


# --- balis check-config ---------------------------------------------------------------------


def test_check_config_ok_on_the_shipped_file(capsys):
    status, out, err = _run(capsys, "check-config", str(SHIPPED))
    assert status == 0 and err == ""
    assert out.strip() == "OK: 46 libraries in 9 categories (2 searchable)"


def test_check_config_defaults_to_the_config_option(capsys, monkeypatch):
    monkeypatch.delenv("BALIS_CONFIG", raising=False)
    for argv in (["--config", str(SHIPPED), "check-config"],
                 ["check-config", "--config", str(SHIPPED)]):
        status, out, _ = _run(capsys, *argv)
        assert status == 0 and out.startswith("OK: 46 libraries")
    monkeypatch.setenv("BALIS_CONFIG", str(SHIPPED))
    status, out, _ = _run(capsys, "check-config")
    assert status == 0 and out.startswith("OK: 46 libraries")


def _line_of(text: str, needle: str) -> int:
    return text[:text.index(needle)].count("\n") + 1


def test_check_config_reports_every_problem_with_its_line(capsys, tmp_path):
    text = SHIPPED.read_text(encoding="utf-8")
    broken = (text.replace("format: unimarc\n      encoding: gb18030",
                           "format: cnmarcx\n      encoding: gb18030")
                  .replace("  - id: ruc\n", "  - id: RUC\n")
                  .replace("category: normal\n    ill:", "category: teachers\n    ill:", 1)
                  .replace("url: https://bnu.alma", "url: ftp://bnu.alma"))
    bad = tmp_path / "libraries.yaml"
    bad.write_text(broken, encoding="utf-8")
    status, out, err = _run(capsys, "check-config", str(bad))
    assert status == 2 and out == ""
    lines = err.splitlines()
    expected = {
        _line_of(broken, "format: cnmarcx"): "format must be marc21 or unimarc",
        _line_of(broken, "id: RUC"): "lowercase ASCII",
        _line_of(broken, "category: teachers"): "unknown category 'teachers'",
        _line_of(broken, "url: ftp://"): "must start with http:// or https://",
    }
    for number, message in expected.items():
        assert any(line.startswith(f"{bad}:{number}:") and message in line
                   for line in lines), (number, message, lines)
    assert "Traceback" not in err


def test_check_config_bad_yaml_is_exit_2_with_its_line(capsys, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("consortium: {name: BALIS\nlibraries: [\n", encoding="utf-8")
    status, _, err = _run(capsys, "check-config", str(bad))
    assert status == 2
    assert re.search(rf"{re.escape(str(bad))}:\d+: not valid YAML", err)


def test_check_config_warns_about_duplicate_names_but_passes(capsys, tmp_path):
    text = SHIPPED.read_text(encoding="utf-8")
    dup = text.replace("    name: 首都图书馆\n", "    name: 国家图书馆\n")
    path = tmp_path / "dup.yaml"
    path.write_text(dup, encoding="utf-8")
    status, out, err = _run(capsys, "check-config", str(path))
    assert status == 0 and out.startswith("OK: 46 libraries")
    line = dup.index("    name: 国家图书馆\n", dup.index("id: clcn"))
    assert f"{path}:{dup[:line].count(chr(10)) + 1}: warning: library 'clcn'" in err
