"""libraries.yaml: valid files load; every problem is reported with its line."""

from __future__ import annotations

import textwrap

import pytest

from broker.kernel.config import loads
from broker.kernel.errors import ConfigError

GOOD = textwrap.dedent("""\
    consortium: {name: BALIS, max_selected: 10}
    defaults: {timeout: 10, max_records: 20}
    categories:
      - {id: engineering, name: 工科类院校图书馆}
    libraries:
      - id: bupt
        name: 北京邮电大学图书馆
        category: engineering
        contact: {name: 张三, phone: 010-62282123, email: ill@example.edu.cn}
        ill: {cancel_window_minutes: 60, loan_days: 28}
        connector:
          protocol: z3950
          url: z3950://127.0.0.1:9999/Default?search-delay=2
          format: unimarc
          encoding: gb18030
          timeout: 8
          indexes: {title: "1=4", isbn: "1=7"}
      - id: nlc
        name: 国家图书馆
        category: engineering
        ill: {cancel_window_minutes: 0, loan_days: 21}
    """)


def test_contract_example_loads():
    consortium = loads(GOOD)
    bupt = consortium.library("bupt")
    assert bupt.connector.database == "Default?search-delay=2"
    assert (bupt.connector.host, bupt.connector.port) == ("127.0.0.1", 9999)
    assert bupt.connector.timeout == 8.0 and bupt.connector.max_records == 20
    assert bupt.connector.indexes == {"title": "1=4", "isbn": "1=7"}
    assert bupt.contact.phone == "010-62282123"
    nlc = consortium.library("nlc")
    assert not nlc.searchable
    assert (nlc.ill.cancel_window_minutes, nlc.ill.loan_days) == (0, 21)


def _problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        loads(text, "libs.yaml")
    return str(info.value).splitlines()


def test_every_problem_is_reported_with_its_line():
    bad = GOOD.replace("format: unimarc", "format: cnmarcx").replace(
        "timeout: 8", "timout: 8").replace("id: nlc", "id: BUPT").replace(
        "category: engineering\n    ill", "category: public\n    ill")
    problems = _problems(bad)
    assert any(p.startswith("libs.yaml:14:") and "format must be marc21 or unimarc" in p
               for p in problems)
    assert any(p.startswith("libs.yaml:16:") and "unknown key 'timout'" in p for p in problems)
    assert any(p.startswith("libs.yaml:18:") and "lowercase ASCII" in p for p in problems)
    assert len(problems) >= 3


def test_duplicate_ids_and_bad_urls():
    dup = GOOD.replace("id: nlc", "id: bupt").replace("z3950://127.0.0.1:9999", "http://x")
    problems = _problems(dup)
    assert any("given twice" in p for p in problems)
    assert any("must start with z3950://" in p for p in problems)


def test_unknown_category_and_missing_name():
    text = GOOD.replace("category: engineering\n    ill", "category: nowhere\n    ill")
    text = text.replace("    name: 国家图书馆\n", "")
    problems = _problems(text)
    assert any("unknown category 'nowhere'" in p for p in problems)
    assert any("name is required" in p for p in problems)


def test_not_yaml_is_one_clear_line():
    problems = _problems("libraries: [\n  - id: x\n")
    assert len(problems) == 1 and problems[0].startswith("libs.yaml:") and "YAML" in problems[0]


def test_unknown_library_lookup():
    with pytest.raises(ConfigError, match="no library 'zzz'"):
        loads(GOOD).library("zzz")
