"""The pages' words (web/translations/*/LC_MESSAGES/messages.po): every key a template or
view asks for is in both languages, with the same placeholders, and the Chinese words are
Chinese (no English left in the Chinese interface but names and codes)."""

from __future__ import annotations

import re
import string
from pathlib import Path

from web.i18n import LANGUAGES, catalogue

WEB = Path(__file__).resolve().parents[2] / "web"
# _("key") / _('key') in templates and views; keys built at run time (value_label's
# "mt." + code, "st." + status...) are listed by their prefixes below.
_CALL = re.compile(r"""\b_\(\s*(['"])([A-Za-z0-9_.\-]+)\1""")
# Latin words a Chinese page may show: codes and names readers know in this form.
ALLOWED_LATIN = {"ISBN", "ISSN", "CQL", "MARC", "MARC21", "CNMARC", "UNIMARC", "ID", "BALIS",
                 "CALIS", "SRU", "Z39", "PDF", "CSV", "E", "mail", "OPAC", "MARCXML", "JSON",
                 "API", "ILL", "RSS", "URL", "QQ", "and", "or", "not", "title", "author",
                 "year", "subject", "isbn", "any", "publisher", "python", "bjyddx", "pinyin",
                 "CCBY", "SQL", "XML", "bupt", "pku", "h", "s", "min", "km", "YYYY", "MM", "DD"}
# Keys whose Chinese is not Chinese on purpose: the link to the other language.
NOT_CHINESE = {"other_language"}


def used_keys() -> set[str]:
    keys: set[str] = set()
    for path in [*WEB.glob("templates/*.html"), *WEB.glob("*.py")]:
        keys.update(match.group(2) for match in _CALL.finditer(path.read_text("utf-8")))
    return keys


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_both_languages_have_the_same_keys_and_placeholders():
    zh, en = catalogue("zh"), catalogue("en")
    assert LANGUAGES == ("zh", "en")
    assert set(zh) == set(en), (set(zh) ^ set(en))
    for key in zh:
        assert _fields(zh[key]) == _fields(en[key]), key


def test_every_key_the_pages_ask_for_exists():
    keys = set(catalogue("zh"))
    # A prefix ("st." ~ status) must start some keys; "key" is the docstring's example.
    missing = sorted(k for k in used_keys() - keys - {"key"}
                     if not (k.endswith((".", "_")) and any(x.startswith(k) for x in keys)))
    assert not missing, missing


def test_the_chinese_words_are_chinese():
    offending = {}
    for key, text in catalogue("zh").items():
        if key in NOT_CHINESE:
            continue
        plain = re.sub(r"\{\w+\}", "", text)
        words = set(re.findall(r"[A-Za-z][A-Za-z0-9]*", plain)) - ALLOWED_LATIN
        if words:
            offending[key] = (text, sorted(words))
    assert not offending, offending
