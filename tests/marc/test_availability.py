"""Each copy's status and due date where the member's system says them: Koha's 952, Alma's
AVA, CNMARC 906 $z and MARC21 852 $z notes, over real records (tests/data/marc) with the
fields as those systems write them."""

from __future__ import annotations

import copy

import pymarc
import pytest

from marc import Holding, normalize, read_file
from marc.normalization.holdings import status_from_notes

ALMA_CNMARC = ("dp2-bnu-alma-sru", "sample_cnmarcxml.xml")
KOHA = ("marc4j", "1474920681_KOHA_LFL_5.xml")


def _record(marc_data, source: tuple[str, str], index: int = 0) -> tuple[pymarc.Record, str]:
    entries = list(read_file(marc_data / source[0] / source[1]))
    entry = entries[index]
    assert entry.record is not None
    return copy.deepcopy(entry.record), entry.flavour


def _field(tag: str, *pairs: tuple[str, str]) -> pymarc.Field:
    return pymarc.Field(tag, pymarc.Indicators(" ", " "),
                        [pymarc.Subfield(code, value) for code, value in pairs])


def test_koha_952_flags(marc_data):
    record, flavour = _record(marc_data, KOHA)
    for pairs in ((("a", "LFL"), ("p", "1"), ("4", "1")),       # damaged
                  (("a", "LFL"), ("p", "2"), ("7", "-1")),      # on order
                  (("a", "LFL"), ("p", "3"), ("0", "1")),       # withdrawn
                  (("a", "LFL"), ("p", "4"), ("q", "20270115")),  # on loan, no hyphens
                  (("a", "LFL"), ("p", "5"), ("7", "2"), ("q", "2027-01-15"))):
        record.add_field(_field("952", *pairs))
    held = normalize(record, flavour=flavour, library="lfl").holdings
    assert [(h.barcode, h.status, h.due) for h in held] == [
        ("1", "unavailable", None), ("2", "unavailable", None), ("3", "unavailable", None),
        ("4", "on_loan", "2027-01-15"),
        ("5", "not_for_loan", None)]  # not for loan wins over a stale due date


def test_alma_ava_status_words(marc_data):
    record, flavour = _record(marc_data, ALMA_CNMARC)
    avas = record.get_fields("AVA")
    assert len(avas) == 2
    avas[0]["e"] = "unavailable"
    avas[1]["e"] = "check_holdings"  # Alma could not tell: no guess
    held = normalize(record, flavour=flavour, library="bnu").holdings
    assert [(h.location, h.status) for h in held] == [
        ("中文库本书—A-H(主馆六层)", "unavailable"),
        ("中文预约书—1986-1995(主馆地下二层戊区)", None)]


def test_cnmarc_906_status_in_words(marc_data):
    # The same BNU record without Alma's AVA: its three 906 copies, with the status words
    # a Chinese system exports in $z.
    record, flavour = _record(marc_data, ALMA_CNMARC)
    for ava in record.get_fields("AVA"):
        record.remove_field(ava)
    copies = record.get_fields("906")
    assert [c["b"] for c in copies] == ["1683011", "1683012", "1683013"]
    copies[0].add_subfield("z", "在架")
    copies[1].add_subfield("z", "借出")
    copies[1].add_subfield("z", "应还日期 2027-01-15")
    copies[2].add_subfield("z", "不外借")
    held = normalize(record, flavour=flavour, library="bnu").holdings
    assert held == (
        Holding("bnu", None, "F124/26", "1683011", "available"),
        Holding("bnu", None, "F124/26", "1683012", "on_loan", "2027-01-15"),
        Holding("bnu", None, "F124/26", "1683013", "not_for_loan"),
    )


def test_cnmarc_906_without_status_says_nothing(marc_data):
    record, flavour = _record(marc_data, ALMA_CNMARC)
    for ava in record.get_fields("AVA"):
        record.remove_field(ava)
    held = normalize(record, flavour=flavour, library="bnu").holdings
    assert [h.status for h in held] == [None, None, None]


def test_marc21_852_public_notes(marc_data):
    record, flavour = _record(marc_data, KOHA)
    record.add_field(_field("852", ("a", "LFL"), ("h", "NA2588"), ("p", "A1"),
                            ("z", "on_loan"), ("z", "due 2027-02-01")))
    record.add_field(_field("852", ("a", "LFL"), ("p", "A2"), ("z", "Ask at the desk")))
    record.add_field(_field("852", ("a", "LFL"), ("p", "A3"), ("z", "Reference only.")))
    held = normalize(record, flavour=flavour, library="lfl").holdings
    assert [(h.barcode, h.status, h.due) for h in held] == [
        ("A1", "on_loan", "2027-02-01"), ("A2", None, None), ("A3", "not_for_loan", None)]


@pytest.mark.parametrize(("notes", "expected"), [
    (["available"], ("available", None)),
    (["on loan, due 2027-01-15"], ("on_loan", "2027-01-15")),
    (["应还日期：20270115"], ("on_loan", "2027-01-15")),
    (["已借出", "应还 2027-01-15"], ("on_loan", "2027-01-15")),
    (["在架可借"], ("available", None)),
    (["仅供阅览"], ("not_for_loan", None)),
    (["遗失"], ("lost", None)),
    (["status not reported: item 123"], (None, None)),
    (["Gift of the class of 1990"], (None, None)),
    (["available", "due 2027-01-15"], ("available", None)),
    ([], (None, None)),
])
def test_status_from_notes(notes, expected):
    assert status_from_notes(notes) == expected
