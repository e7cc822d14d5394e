"""The small text rules: ISBD trimming, identifiers, years, filing forms."""

from __future__ import annotations

import pytest

from marc.encoding import canonical_encoding, decode, guess_encoding, marc8_to_text
from marc.normalization.text import (
    clean,
    clean_bracketed,
    fixed_year,
    isbn13,
    issn,
    sort_form,
    year_from,
)


@pytest.mark.parametrize(("raw", "expected"), [
    ("7-5037-1744-0", "9787503717444"),           # CNMARC 010$a with hyphens
    ("020161622X (pbk.)", "9780201616224"),       # MARC21 020$a with a qualifier
    ("978-7-02-006587-5", "9787020065875"),
    ("7-80127-555-1", "9787801275554"),
    ("080442957X", "9780804429573"),              # check digit X
    ("7-5037-1744-1", None),                      # wrong ISBN-10 check digit
    ("9787020065876", None),                      # wrong ISBN-13 check digit
    ("CNY68.00", None),
    ("", None),
])
def test_isbn13(raw, expected):
    assert isbn13(raw) == expected


@pytest.mark.parametrize(("raw", "expected"), [
    ("0028-0836", "0028-0836"), ("0317-8471", "0317-8471"), ("1050-124x", "1050-124X"),
    ("0028-0837", None), ("ISSN", None),
])
def test_issn(raw, expected):
    assert issn(raw) == expected


@pytest.mark.parametrize(("raw", "expected"), [
    ("The pragmatic programmer :", "The pragmatic programmer"),
    ("Andrew Hunt, David Thomas.", "Andrew Hunt, David Thomas"),
    ("Hunt, Andrew,", "Hunt, Andrew"),
    ("Smith, J.", "Smith, J."),                   # an initial keeps its period
    ("1st ed.", "1st ed."),                       # so does an abbreviation
    ("Lost in thought ...", "Lost in thought ..."),
    ("   spaced    out  /", "spaced out"),
    ("中国统计出版社", "中国统计出版社"),
    ("\x88L'\x89altra faccia", "L'altra faccia"),  # UNIMARC NSB/NSE removed for display
    (" :/", None),
])
def test_clean(raw, expected):
    assert clean(raw) == expected


def test_clean_bracketed_drops_supplied_brackets_only_when_whole():
    assert clean_bracketed("[S.l.] :") == "S.l."
    assert clean_bracketed("New York [etc.]") == "New York [etc.]"


def test_sort_form_skips_nonfiling_characters_and_marked_spans():
    assert sort_form("The pragmatic programmer :", skip=4) == "pragmatic programmer"
    assert sort_form("\x88L'\x89altra faccia") == "altra faccia"
    assert sort_form("\x98The \x9cHobbit") == "hobbit"


@pytest.mark.parametrize(("raw", "expected"), [
    ("c2008.", 2008), ("2008.5", 2008), ("[1994?]", 1994), ("民国25年 [1936]", 1936),
    ("12345", None), ("n.d.", None), (None, None),
])
def test_year_from(raw, expected):
    assert year_from(raw) == expected


def test_fixed_year_needs_four_plausible_digits():
    assert fixed_year("1994") == 1994
    assert fixed_year("19uu") is None
    assert fixed_year("####") is None
    assert fixed_year("0000") is None


def test_encoding_names():
    assert canonical_encoding("GBK") == "gb18030"
    assert canonical_encoding("UTF8") == "utf-8"
    assert canonical_encoding("marc8") == "marc-8"
    assert canonical_encoding("cp1251") == "cp1251"


def test_guess_encoding_by_bytes():
    chinese = "中国统计出版社".encode()
    assert guess_encoding(chinese, "unimarc", " ") == "utf-8"
    assert guess_encoding("中国统计出版社".encode("gb18030"), "unimarc", " ") == "gb18030"
    # MARC21 with a blank leader/09 but UTF-8 bytes and no MARC-8 escape: UTF-8.
    assert guess_encoding("Società".encode(), "marc21", " ") == "utf-8"
    assert guess_encoding(b"Soci\xe2et\xe2e", "marc21", " ") == "marc-8"


def test_decode_marks_bad_bytes_and_keeps_the_rest():
    text, damaged = decode(b"abc\xffdef", ("utf-8",))
    assert (text, damaged) == ("abc\ufffddef", True)
    # A GB18030 field in a UTF-8 record is recovered when it reads as Chinese.
    text, damaged = decode("北京".encode("gb18030"), ("utf-8", "gb18030"))
    assert (text, damaged) == ("北京", False)


def test_marc8_combining_diacritic_follows_its_letter():
    assert marc8_to_text(b"Soci\xe2et\xe2e") == ("Société", False)


def test_marc8_unknown_escape_is_marked_not_dropped_silently():
    text, damaged = marc8_to_text(b"Soci\x1bt\xe2e")
    assert damaged
    assert text == "Soci\ufffdté"
