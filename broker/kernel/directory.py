"""The member directory: find libraries by category, id, name or pinyin.

A reader looks a library up the way people in Beijing say it: by its id (``bupt``), by any
part of its name (邮电), by its full pinyin (``beijingyoudian``) or by the first letters of
that pinyin (``bjyddx`` finds 北京邮电大学图书馆). Pinyin comes from pypinyin, which reads
polyphonic characters from its phrase dictionary; where it still reads a name differently
from the library itself (朝阳 is Chaoyang, not Zhaoyang), the libraries file gives the
initials (``initials:``) and they win.

No Flask and no database here: the web front end and the command line both build on this.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from functools import lru_cache

from pypinyin import Style, lazy_pinyin

from broker.kernel.config import Category, Consortium, Library
from broker.kernel.errors import UsageError


def _ascii_alnum(text: str) -> str:
    return "".join(c for c in text.lower() if c.isascii() and c.isalnum())


def _keep_non_han(text: str) -> str:
    # pypinyin hands over runs of non-Chinese text: keep their letters and digits
    # ("中国石油大学（北京）" has parentheses, a name may have "MBA"), drop the rest
    # (an empty answer is no syllable).
    return _ascii_alnum(unicodedata.normalize("NFKC", text))


@lru_cache(maxsize=4096)
def _syllables(name: str, style: Style) -> tuple[str, ...]:
    # The whole name at once, so that phrases decide polyphonic readings (音乐 yin yue).
    return tuple(s for s in lazy_pinyin(name, style=style, errors=_keep_non_han) if s)


def full_pinyin(name: str) -> str:
    """The name's pinyin without tones or spaces: 北京邮电大学图书馆 -> beijingyoudian..."""
    return "".join(_syllables(name, Style.NORMAL))


def name_initials(name: str) -> str:
    """The first letter of each syllable, as pypinyin reads the name: bjyddxtsg."""
    return "".join(_syllables(name, Style.FIRST_LETTER))


def initials(library: Library) -> str:
    """The library's pinyin initials: its own (``initials:``) where given, else pypinyin's."""
    return library.initials or name_initials(library.name)


def _fold(text: str) -> str:
    """Case-insensitive, width-insensitive, spaces ignored."""
    return "".join(unicodedata.normalize("NFKC", text).casefold().split())


def match(library: Library, text: str) -> bool:
    """Whether TEXT is part of the library's id, name, full pinyin or pinyin initials.

    Case and spaces are ignored; any substring will do (``bjydd``, ``邮电``, ``youdian``).
    Empty text matches every library.
    """
    wanted = _fold(text)
    if not wanted:
        return True
    haystacks = (library.id, library.name, full_pinyin(library.name), initials(library))
    return any(wanted in _fold(hay) for hay in haystacks)


_matches = match  # libraries() has a parameter of the same name


def find_category(consortium: Consortium, key: str) -> Category:
    """A category by its id (``engineering``) or Chinese name (工科类院校图书馆, or the
    start of it: 工科类); a clear UsageError naming the choices otherwise."""
    wanted = _fold(key)
    for category in consortium.categories:
        if wanted in (_fold(category.id), _fold(category.name)):
            return category
    prefixed = [c for c in consortium.categories if wanted and _fold(c.name).startswith(wanted)]
    if len(prefixed) == 1:
        return prefixed[0]
    choices = ", ".join(f"{c.id} ({c.name})" for c in consortium.categories)
    if len(prefixed) > 1:
        raise UsageError(f"category {key!r} is ambiguous: say one of {choices}")
    raise UsageError(f"no category {key!r}; the categories are: {choices}")


def libraries(consortium: Consortium, category: str | None = None,
              match: str | None = None) -> list[Library]:
    """The members, in the file's order, of one category (id or name) and/or matching TEXT."""
    wanted = find_category(consortium, category).id if category is not None else None
    chosen = []
    for library in consortium.libraries:
        if wanted is not None and library.category != wanted:
            continue
        if match is not None and not _matches(library, match):
            continue
        chosen.append(library)
    return chosen


def grouped(consortium: Consortium,
            members: Iterable[Library]) -> list[tuple[Category, list[Library]]]:
    """MEMBERS by category, in the file's category order; empty categories left out."""
    by_category: dict[str, list[Library]] = {}
    for library in members:
        by_category.setdefault(library.category, []).append(library)
    return [(c, by_category[c.id]) for c in consortium.categories if c.id in by_category]


def library_dict(library: Library) -> dict:
    """One member as the directory's JSON shows it (``balis libraries --json``)."""
    connector = library.connector
    return {
        "id": library.id,
        "name": library.name,
        "category": library.category,
        "initials": initials(library),
        "searchable": connector is not None,
        "protocol": connector.protocol if connector is not None else None,
        "contact": {"name": library.contact.name, "phone": library.contact.phone,
                    "email": library.contact.email},
        "address": library.address,
        "hours": library.hours,
        "ill": {"cancel_window_minutes": library.ill.cancel_window_minutes,
                "loan_days": library.ill.loan_days},
    }


def directory_dict(consortium: Consortium, members: Iterable[Library] | None = None,
                   *, all_categories: bool = True) -> dict:
    """The directory as JSON: categories with their counts, then the libraries.

    With ``all_categories`` every category is listed (count 0 where none of MEMBERS is in
    it); otherwise only the categories MEMBERS fall in.
    """
    members = list(consortium.libraries if members is None else members)
    counts: dict[str, int] = {}
    for library in members:
        counts[library.category] = counts.get(library.category, 0) + 1
    categories = [{"id": c.id, "name": c.name, "count": counts.get(c.id, 0)}
                  for c in consortium.categories if all_categories or c.id in counts]
    return {"categories": categories, "libraries": [library_dict(lib) for lib in members]}
