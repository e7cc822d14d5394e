"""PQF (the native Z39.50 query of a harvest's all_records) and its config key."""

from __future__ import annotations

import textwrap

import pytest

from broker.kernel.config import DEFAULT_ALL_RECORDS, loads
from broker.kernel.errors import ConfigError, QueryError
from broker.kernel.pqf import PqfBoolean, PqfTerm, parse_pqf

CONFIG = textwrap.dedent("""\
    consortium: {name: BALIS}
    categories: [{id: c, name: C}]
    libraries:
      - id: zz
        name: Z
        category: c
        connector: {protocol: z3950, url: "z3950://127.0.0.1:9/db"ALL_Z}
      - id: ss
        name: S
        category: c
        connector: {protocol: sru, url: "http://127.0.0.1:9/db"ALL_S}
    """)


def test_string_and_numeric_attributes():
    node = parse_pqf('@attr 1=_ALLRECORDS @attr 2=103 ""')
    assert node == PqfTerm(((1, "_ALLRECORDS"), (2, 103)), "")


def test_attributes_before_an_operator_reach_every_term():
    node = parse_pqf('@attrset bib-1 @attr 1=4 @or perl "summer land"')
    assert node == PqfBoolean("or", PqfTerm(((1, 4),), "perl"),
                              PqfTerm(((1, 4),), "summer land"))


@pytest.mark.parametrize("bad", ["", "@and perl", '@attr 1=4 "open', "@attr x=4 perl",
                                 "@prox 0 1 2 3 k 2 a b", "perl extra"])
def test_bad_pqf_is_a_query_error(bad):
    with pytest.raises(QueryError):
        parse_pqf(bad)


def test_all_records_defaults_per_protocol():
    consortium = loads(CONFIG.replace("ALL_Z", "").replace("ALL_S", ""))
    assert consortium.library("zz").connector.all_records_query == DEFAULT_ALL_RECORDS["z3950"]
    assert consortium.library("ss").connector.all_records_query == "cql.allRecords=1"


def test_all_records_given_and_checked():
    good = CONFIG.replace("ALL_Z", ', all_records: "@attr 1=1016 @attr 5=1 a"').replace(
        "ALL_S", ", all_records: \"alma.all_for_ui=*\"")
    consortium = loads(good)
    assert consortium.library("zz").connector.all_records_query == "@attr 1=1016 @attr 5=1 a"
    assert consortium.library("ss").connector.all_records == "alma.all_for_ui=*"
    bad = CONFIG.replace("ALL_Z", ', all_records: "@and x"').replace("ALL_S", "")
    with pytest.raises(ConfigError) as info:
        loads(bad, "libs.yaml")
    assert "libs.yaml:7: library 'zz': all_records must be a PQF" in str(info.value)
