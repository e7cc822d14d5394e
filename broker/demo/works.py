"""The demo's works: made-up books and serials with valid ISBNs and ISSNs.

``make_works`` draws about two thirds Chinese books (CLC classes, real publishers with their
ISBN registrant codes, ISBN-13 ``978-7-…`` from 1987 on, editions of textbooks), a quarter
Western books (LCC, English publishers) and the rest serials (each university's own 学报,
topical Chinese and Western journals), all from one ``random.Random`` so that the same
seed gives the same works. The order of its draws is part of that promise: changing it
changes every demo catalogue.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from broker.demo.vocabulary import (
    EN_GIVEN,
    EN_JOURNAL_FORMS,
    EN_JOURNAL_PLACES,
    EN_JOURNAL_PUBLISHERS,
    EN_PATTERNS,
    EN_PUBLISHERS,
    EN_SURNAMES,
    EN_TOPICS,
    GIVEN,
    SERIAL_CLASSES,
    SURNAMES,
    ZH_AREAS,
    ZH_JOURNAL_FORMS,
    ZH_JOURNAL_TOPICS,
    ZH_PUBLISHERS,
    ZH_SERIES,
    ZH_SUBTITLES,
)

WORKS = 1500  # how many works the demo has
Kind = Literal["zh", "en", "zh_serial", "en_serial"]  # Chinese or Western book or serial
_AREAS = list(ZH_AREAS)
_AREA_WEIGHTS = [ZH_AREAS[a][0] for a in _AREAS]


@dataclass(frozen=True, slots=True)
class Work:
    number: int
    kind: Kind
    area: str
    title: str
    subtitle: str | None
    authors: list[str]  # personal names as catalogued (Chinese: 王建国; Western: Smith, John)
    responsibility: str
    publisher: str
    place: str
    year: int
    clc: str
    subjects: list[str]  # headings, subdivisions separated by —
    edition: str | None = None
    isbn13: str | None = None  # digits
    isbn_hyphens: str | None = None  # as printed (978-7-302-12345-6)
    issn: str | None = None
    lcc: str | None = None
    country: str = "cc "  # MARC21 008 place code
    pages: int = 300
    height: int = 26
    price: str | None = None
    series: str | None = None
    frequency: str | None = None
    cn_number: str | None = None  # 统一刊号 of a Chinese serial
    translator: str | None = None
    owner: str | None = None  # a member's own journal
    weight: float = 1.0  # how widely held


# --- ISBNs and ISSNs ----------------------------------------------------------------------


def isbn13_check(first12: str) -> str:
    total = sum(int(c) * (3 if i % 2 else 1) for i, c in enumerate(first12))
    return str((10 - total % 10) % 10)


def isbn10_check(first9: str) -> str:
    total = sum((10 - i) * int(c) for i, c in enumerate(first9))
    check = (11 - total % 11) % 11
    return "X" if check == 10 else str(check)


def issn_check(first7: str) -> str:
    total = sum((8 - i) * int(c) for i, c in enumerate(first7))
    check = (11 - total % 11) % 11
    return "X" if check == 10 else str(check)


def _isbn(rng: random.Random, prefix: str, used: set[str]) -> tuple[str, str]:
    """(ISBN-13 digits, hyphenated) for group-registrant ``prefix`` like ``7-302``."""
    group_registrant = prefix.replace("-", "")
    width = 9 - len(group_registrant)
    while True:
        number = f"{rng.randrange(10 ** width):0{width}d}"
        digits12 = "978" + group_registrant + number
        if digits12 not in used:
            used.add(digits12)
            break
    digits = digits12 + isbn13_check(digits12)
    return digits, f"978-{prefix}-{number}-{digits[-1]}"


def isbn10_form(isbn13: str, hyphenated13: str | None = None) -> str:
    """The ISBN-10 printed on a book from before 2007 (hyphenated if the 13 is)."""
    body = isbn13[3:12]
    check = isbn10_check(body)
    if hyphenated13:
        parts = hyphenated13.split("-")[1:-1]
        return "-".join([*parts, check])
    return body + check


def _issn(rng: random.Random, used: set[str]) -> str:
    while True:
        first = f"{rng.randrange(10 ** 7):07d}"
        if first not in used:
            used.add(first)
            break
    return f"{first[:4]}-{first[4:]}{issn_check(first)}"


# --- small draws ----------------------------------------------------------------------------


def _year(rng: random.Random, low: int = 1980, high: int = 2025) -> int:
    # More recent books than old ones, as in a working collection.
    return low + int((high - low + 1) * rng.random() ** 0.7)


def _zh_name(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + rng.choice(GIVEN)


def _en_name(rng: random.Random) -> str:
    given = rng.choice(EN_GIVEN)
    if rng.random() < 0.3:
        given += f" {rng.choice('ABCDEFGHJKLMNPRSTW')}."
    return f"{rng.choice(EN_SURNAMES)}, {given}"


def _en_display(name: str) -> str:
    surname, _, given = name.partition(", ")
    return f"{given} {surname}" if given else surname


def _ordinal(n: int) -> str:
    return {2: "2nd", 3: "3rd"}.get(n, f"{n}th")


def _pick_publisher(rng: random.Random, area: str) -> tuple[str, str, str, str]:
    fitting = [p for p in ZH_PUBLISHERS if area in p[3].split()]
    return rng.choice(fitting or ZH_PUBLISHERS)


def _people(rng: random.Random, draw: Callable[[random.Random], str]) -> list[str]:
    """One to three authors, most books having one."""
    return [draw(rng) for _ in range(rng.choices((1, 2, 3), (6, 3, 1))[0])]


def _titled(text: str) -> str:
    return text[0].upper() + text[1:]


# --- the works ------------------------------------------------------------------------------


def make_works(rng: random.Random, members: list[tuple[str, str]], count: int = WORKS
               ) -> list[Work]:
    """``count`` works: about two thirds Chinese books, a quarter Western books, the rest
    serials (among them each university's own 学报)."""
    used_isbns: set[str] = set()
    used_issns: set[str] = set()
    works: list[Work] = []
    n_serials = count // 10
    n_en = count // 4
    n_zh = count - n_serials - n_en
    while len(works) < n_zh:
        _zh_book(rng, works, n_zh, used_isbns)
    while len(works) < n_zh + n_en:
        works.append(_en_book(rng, len(works), used_isbns))
    # Serials: every university's own journal, then topical ones, Chinese and Western.
    for lid, name in members:
        if len(works) >= count:
            break
        if "大学" not in name and "学院" not in name:
            continue
        school = name.removesuffix("图书馆")
        part = rng.choice(("社会科学版", "自然科学版", "哲学社会科学版"))
        works.append(_zh_serial(rng, len(works), f"{school}学报", part, school, "G",
                                used_issns, owner=lid))
    while len(works) < count:
        journal = _zh_journal(rng, works, used_issns) if rng.random() < 0.7 else \
            _en_journal(rng, works, used_issns)
        if journal is not None:
            works.append(journal)
    return works


def _zh_title(rng: random.Random, area: str, stem: str, suffix: str) -> str:
    title = stem + suffix
    if area in ("F", "D") and not stem.startswith("中国") and rng.random() < 0.25:
        title = "中国" + title
    elif rng.random() < 0.06:
        title = rng.choice(("新编", "实用", "现代")) + title
    return title


def _zh_subtitle(rng: random.Random, suffix: str) -> str | None:
    if suffix in ("研究", "问题研究", "发展研究") and rng.random() < 0.4:
        return rng.choice(ZH_SUBTITLES)
    return None


def _zh_responsibility(rng: random.Random, people: list[str]) -> str:
    """王建国，李明主编; 王建国等著 for three or more."""
    role = rng.choice(("著", "主编", "编著", "编"))
    return ("，".join(people) if len(people) < 3 else f"{people[0]}等") + role


def _zh_book(rng: random.Random, works: list[Work], limit: int, used_isbns: set[str]) -> None:
    """One Chinese book, in as many editions as it has (while ``works`` is short of
    ``limit``)."""
    area = rng.choices(_AREAS, _AREA_WEIGHTS)[0]
    _, topics, suffixes = ZH_AREAS[area]
    stem, clc, heading = rng.choice(topics)
    suffix = rng.choice(suffixes)
    title = _zh_title(rng, area, stem, suffix)
    subtitle = _zh_subtitle(rng, suffix)
    people = _people(rng, _zh_name)
    resp = _zh_responsibility(rng, people)
    publisher, place, registrant, _ = _pick_publisher(rng, area)
    textbook = any(s and s in suffix for s in ("教程", "概论", "基础", "导论", "原理"))
    editions = rng.choices((1, 2, 3), (7, 2, 1))[0] if textbook else 1
    year = _year(rng, 1980, 2025 - 4 * (editions - 1))
    subjects = [heading + ("—高等学校—教材" if textbook and rng.random() < 0.6 else "")]
    series = rng.choice(ZH_SERIES) if textbook and rng.random() < 0.3 else None
    pages = rng.randrange(120, 720)
    for ed in range(1, editions + 1):
        if len(works) >= limit:
            break
        ed_year = min(2025, year + (ed - 1) * rng.randrange(3, 7))
        isbn13 = hyphens = None
        if ed_year >= 1987:  # Chinese books have ISBNs from 1987
            isbn13, hyphens = _isbn(rng, f"7-{registrant}", used_isbns)
        works.append(Work(
            number=len(works), kind="zh", area=area, title=title, subtitle=subtitle,
            authors=people, responsibility=resp, publisher=publisher, place=place,
            year=ed_year, clc=clc, subjects=subjects,
            edition=f"第{ed}版" if ed > 1 else None, isbn13=isbn13, isbn_hyphens=hyphens,
            pages=pages + 24 * (ed - 1), height=rng.choice((21, 23, 24, 26, 26, 26)),
            price=f"CNY{rng.randrange(18, 128)}.{rng.choice(('00', '00', '50', '80'))}",
            series=series, weight=1.6 if textbook else 1.0))


def _en_book(rng: random.Random, number: int, used_isbns: set[str]) -> Work:
    topic, lcc, clc, lcsh, area = rng.choice(EN_TOPICS)
    pattern = rng.choice(EN_PATTERNS)
    title, _, subtitle = _titled(pattern.format(t=topic, T=_titled(topic))).partition(": ")
    people = _people(rng, _en_name)
    names = [_en_display(p) for p in people]
    resp = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    if pattern.startswith(("Handbook", "Readings", "Perspectives")):
        resp = f"edited by {resp}"
    publisher, place, prefix, country = rng.choice(EN_PUBLISHERS)
    ed = rng.choices((1, 2, 3), (8, 2, 1))[0]
    year = _year(rng, 1980, 2025)
    isbn13, hyphens = _isbn(rng, prefix, used_isbns)
    cutter = f"{people[0][0]}{rng.randrange(2, 99)}"
    return Work(
        number=number, kind="en", area=area, title=title, subtitle=subtitle or None,
        authors=people, responsibility=resp, publisher=publisher, place=place, year=year,
        clc=clc, subjects=[lcsh], edition=f"{_ordinal(ed)} ed." if ed > 1 else None,
        isbn13=isbn13, isbn_hyphens=hyphens, lcc=f"{lcc} {cutter} {year}",
        country=country, pages=rng.randrange(180, 860), height=rng.choice((23, 24, 25)),
        weight=0.8)


def _zh_journal(rng: random.Random, works: list[Work], used_issns: set[str]) -> Work | None:
    """A topical Chinese journal, or None if the title drawn is taken."""
    topic, area = rng.choice(ZH_JOURNAL_TOPICS)
    title = rng.choice(ZH_JOURNAL_FORMS).format(t=topic)
    if any(w.title == title for w in works):
        return None
    return _zh_serial(rng, len(works), title, None, f"《{title}》编辑部", area, used_issns)


def _en_journal(rng: random.Random, works: list[Work], used_issns: set[str]) -> Work | None:
    """A Western journal, or None if the title drawn is taken."""
    topic, lcc, clc, lcsh, area = rng.choice(EN_TOPICS)
    form = rng.choice(EN_JOURNAL_FORMS)
    title = _titled(form.format(t=topic, T=_titled(topic)))
    if any(w.title == title for w in works):
        return None
    publisher = rng.choice(EN_JOURNAL_PUBLISHERS)
    return Work(
        number=len(works), kind="en_serial", area=area, title=title, subtitle=None,
        authors=[], responsibility="", publisher=publisher,
        place=EN_JOURNAL_PLACES[publisher], year=rng.randrange(1950, 2015), clc=clc,
        subjects=[f"{lcsh} -- Periodicals"], issn=_issn(rng, used_issns), lcc=lcc,
        country="ne ", frequency=rng.choice(("Quarterly", "Bimonthly", "Monthly")),
        weight=1.3)


def _zh_serial(rng: random.Random, number: int, title: str, part: str | None,
               publisher: str, area: str, used_issns: set[str], owner: str | None = None
               ) -> Work:
    clc = SERIAL_CLASSES[area]
    region = 11  # Beijing
    return Work(
        number=number, kind="zh_serial", area=area, title=title, subtitle=part, authors=[],
        responsibility=f"{publisher}编" if owner else "", publisher=publisher,
        place="北京", year=rng.randrange(1950, 2012), clc=clc,
        subjects=[f"{title.removesuffix('学报') if owner else title}—期刊"],
        issn=_issn(rng, used_issns),
        cn_number=f"{region}-{rng.randrange(1000, 5999)}/{clc[0]}",
        frequency=rng.choice(("月刊", "双月刊", "季刊")), owner=owner,
        weight=0.5 if owner else 1.4)
