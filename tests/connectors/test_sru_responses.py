"""Real SRU answers from a BALIS member (BNU's Alma), read by the SRU connector's parser."""

from __future__ import annotations

import pytest

from connectors.sru.client import parse_response
from marc.marcxml import element_to_record
from marc.normalization import normalize

BNU = "dp2-bnu-alma-sru"


@pytest.mark.parametrize(("name", "flavour"), [("sample_cnmarcxml.xml", "unimarc"),
                                               ("sample_unimarcxml.xml", "unimarc"),
                                               ("sample_marcxml.xml", "marc21")])
def test_alma_responses(marc_data, name, flavour):
    response = parse_response((marc_data / BNU / name).read_bytes())
    assert response.hits == (239392 if name == "sample_marcxml.xml" else 42)
    assert len(response.records) == 10
    assert response.diagnostics == ()
    records = []
    for _position, element, why in response.records:
        assert why is None
        found = element_to_record(element)
        assert found.flavour == flavour
        records.append(normalize(found.record, flavour=found.flavour))
    assert all(r.title for r in records)


def test_non_marc_schema_is_reported_per_record(marc_data):
    response = parse_response((marc_data / BNU / "sample_dc.xml").read_bytes())
    assert response.hits == 42
    assert all(element is None and "no MARC record" in why
               for _, element, why in response.records)


def test_sru_diagnostic_becomes_a_typed_error():
    body = b"""<searchRetrieveResponse xmlns="http://docs.oasis-open.org/ns/search-ws/sruResponse">
      <numberOfRecords>0</numberOfRecords>
      <diagnostics><diagnostic xmlns="http://docs.oasis-open.org/ns/search-ws/diagnostic">
        <uri>info:srw/diagnostic/1/16</uri><details>alma.nosuch</details>
      </diagnostic></diagnostics></searchRetrieveResponse>"""
    response = parse_response(body)
    (diagnostic,) = response.diagnostics
    assert diagnostic.code == 16
    assert str(diagnostic) == ("unsupported index (this field is not searchable here) "
                               "(diagnostic 16): alma.nosuch")
