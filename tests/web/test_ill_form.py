"""The request form takes the copy the reader clicked on the record page."""

from __future__ import annotations

from web.ill_pages import _chosen_holding

RECORD = {"holdings": [
    {"library": "pku", "call_number": "I242.4/3"},
    {"library": "thu", "call_number": "I242.4/9"},
    {"library": "thu", "call_number": "I242.4/9:2"},
]}


def test_the_clicked_copy_of_the_lender():
    assert _chosen_holding(RECORD, "thu", "2")["call_number"] == "I242.4/9:2"
    assert _chosen_holding(RECORD, "thu", "1")["call_number"] == "I242.4/9"


def test_a_copy_of_another_library_or_a_bad_position_is_ignored():
    assert _chosen_holding(RECORD, "thu", "0") is None  # pku's copy, not the lender's
    for bad in ("3", "-1", "x", "", "²", "1.5"):
        assert _chosen_holding(RECORD, "thu", bad) is None
    assert _chosen_holding(None, "thu", "1") is None
    assert _chosen_holding({"holdings": []}, "thu", "0") is None
