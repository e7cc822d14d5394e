"""Chinese by default, English on request: the pages' own words in two languages.

The language comes from ``?lang=zh|en`` (remembered in a cookie) or the cookie alone;
library names and catalogue data are shown as the libraries wrote them. Templates call
``_("key")``; the words are gettext catalogues, one per language
(web/translations/{zh,en}/LC_MESSAGES/messages.po, keyed by msgid), which translators edit
without touching code. A key missing from a catalogue shows itself, so a forgotten one is
visible, and tests/web/test_translations.py finds it first.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Literal, get_args

from babel.messages.pofile import read_po
from flask import Flask, Response, g, request

Language = Literal["zh", "en"]
LANGUAGES: tuple[Language, ...] = get_args(Language)
COOKIE = "lang"

CATALOGUES = Path(__file__).with_name("translations")


@functools.cache
def catalogue(lang: Language) -> dict[str, str]:
    """The words of one language: web/translations/LANG/LC_MESSAGES/messages.po, read
    once per process (Babel's reader: no compile step, the .po is the source)."""
    path = CATALOGUES / lang / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as f:
        messages = read_po(f, locale=None)
    return {str(m.id): str(m.string) for m in messages if m.id and m.string}


def init_app(app: Flask) -> None:
    @app.before_request
    def choose_language() -> None:
        wanted = request.args.get("lang")
        g.lang_changed = wanted in LANGUAGES and wanted != request.cookies.get(COOKIE)
        g.lang = wanted if wanted in LANGUAGES else request.cookies.get(COOKIE, "zh")
        if g.lang not in LANGUAGES:
            g.lang = "zh"

    @app.after_request
    def remember_language(response: Response) -> Response:
        if getattr(g, "lang_changed", False):
            response.set_cookie(COOKIE, g.lang, max_age=365 * 86400, samesite="Lax",
                                httponly=True)
        return response

    app.jinja_env.globals["_"] = translate
    app.jinja_env.globals["value_label"] = value_label
    app.jinja_env.globals["current_lang"] = lambda: getattr(g, "lang", "zh")
    app.jinja_env.globals["in_lang"] = in_lang


def translate(key: str, **values: object) -> str:
    lang: Language = "en" if getattr(g, "lang", "zh") == "en" else "zh"
    text = catalogue(lang).get(key)
    if text is None:
        return key
    return text.format(**values) if values else text


def in_lang(zh: str | None, en: str | None) -> str:
    """Words kept in two languages outside the catalogues (ill/states.yaml's labels):
    the English where the page is English and there is one."""
    if getattr(g, "lang", "zh") == "en" and en:
        return en
    return zh or en or ""


def value_label(kind: str, value: str | None) -> str:
    """A coded value by its name (``mt``: material type, ``lang``: language), or the
    value itself where the table has no name for it."""
    if value is None:
        return ""
    return translate(f"{kind}.{value}") if f"{kind}.{value}" in catalogue("zh") else value
