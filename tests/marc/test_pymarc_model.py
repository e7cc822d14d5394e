"""Our reader builds pymarc fields without Field.__init__ (for speed): pin that the result
is indistinguishable from fields built the ordinary way, on the pymarc version we run."""

from __future__ import annotations

import unicodedata

import pytest
from pymarc import Field, MARCReader

from marc import read_file


@pytest.mark.parametrize("name", ["marc4j/summerland.mrc", "yaz/marccol1.u8.marc",
                                  "derived/bnu_cnmarc.utf8.iso"])
def test_fields_equal_ordinary_pymarc_fields(marc_data, name):
    ours = [e.record for e in read_file(marc_data / name)]
    with open(marc_data / name, "rb") as handle:
        theirs = list(MARCReader(handle, force_utf8=True))
    assert len(ours) == len(theirs)
    for mine, reference in zip(ours, theirs, strict=True):
        for field in mine.fields:
            rebuilt = (Field(tag=field.tag, data=field.data) if field.control_field else
                       Field(tag=field.tag, indicators=field.indicators,
                             subfields=list(field.subfields)))
            assert str(field) == str(rebuilt)
            assert field.control_field == rebuilt.control_field
            assert field.indicators == rebuilt.indicators
            assert field.subfields == rebuilt.subfields
            assert field.as_marc("utf-8") == rebuilt.as_marc("utf-8")
            if not field.control_field:
                assert field.get_subfields("a") == rebuilt.get_subfields("a")
                assert field.indicator1 == rebuilt.indicator1
        # The whole record reads as pymarc's own parse of the same bytes, but for NFC
        # (we compose characters, as MARC-8 text always is; pymarc keeps the bytes' form).
        nfc = [unicodedata.normalize("NFC", str(f)) for f in reference.fields]
        assert [str(f) for f in mine.fields] == nfc
