"""Deciding whether two records describe the same edition, from evidence, pair by pair.

A single work key (title + author + year + edition) merged two different books whose keys
agreed once the subtitle was left out ("Perl : programmer's reference" and "Perl : the
complete reference"), and joining clusters by ISBN *or* key chained records with different
ISBNs through a third record without one. Union catalogues decide per pair instead; so do
we:

- Identifiers first. Valid ISBNs (ISSNs) that agree say "same"; two records whose valid
  ISBN (ISSN) sets are disjoint are different, whatever else agrees: a veto.
- Hard conflicts are vetoes too: another material type, another explicit edition, another
  part or volume of the same title, another subtitle where both records have one.
- Without an agreeing identifier, the description must agree: the title (its subtitle and
  part where both records have one), the first author, the year and the edition; where
  neither record names an author, the publisher; and page counts that differ by more than
  a fifth keep records apart.

A record joins a cluster only when it matches one of the cluster's records and conflicts
with none of them, so a veto holds through any chain of records. A record that matches
several clusters on its description alone (no identifier) is ambiguous and stays on its
own: better two entries for one book than one entry that sends an ILL request for the
wrong one. Every join is explained (``Link``): the merged record says which evidence
joined each of its records.

Storage-free: ``broker.search.merge.Merger`` keeps its clusters in memory and
``broker.union_index.build`` in SQLite; both place records through one ``Matcher``.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal, Protocol

from connectors.local.keys import phrase_form
from marc import Record

_DIGITS = re.compile(r"\d+")
_PAGES = re.compile(r"(\d+)\s*(?:p\b|pp\b|pages|页|頁)", re.IGNORECASE)
_CHINESE_NUMERALS = {"一": "1", "二": "2", "三": "3", "四": "4", "五": "5", "六": "6",
                     "七": "7", "八": "8", "九": "9", "十": "10"}
_ORDINALS = re.compile(r"\b(first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth)\b",
                       re.IGNORECASE)
_ORDINAL_DIGITS = {word: str(n) for n, word in enumerate(
    ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth",
     "tenth"), start=1)}
_FIRST_EDITIONS = ("1", "0", "初版")
# Two page counts further apart than this share are two different books.
PAGE_TOLERANCE = 0.2


def fold(text: str | None) -> str:
    """The matching form of a text: NFKC, simplified, casefolded, letters and digits only:
    the local catalogues' phrase form (``connectors.local.keys``) without its spaces, so a
    search and a merge fold alike."""
    return phrase_form(text).replace(" ", "") if text else ""


def _numbered(text: str) -> str:
    """'第二册' -> '第2册': Chinese numerals as digits, for editions and parts."""
    text = unicodedata.normalize("NFKC", text)
    for numeral, digit in _CHINESE_NUMERALS.items():
        text = text.replace(f"第{numeral}", f"第{digit}")
    return _ORDINALS.sub(lambda m: _ORDINAL_DIGITS[m.group(1).casefold()], text)


def edition_key(edition: str | None) -> str:
    """'第2版', '2nd ed.', 'Ed. 2' -> '2'; '第二版' -> '2'; no statement -> ''."""
    if not edition:
        return ""
    text = _numbered(edition)
    digits = _DIGITS.search(text)
    key = str(int(digits.group())) if digits else fold(text)
    # A first edition is what a record without an edition statement describes too (LC
    # writes 第1版 where Chinese catalogues write nothing).
    return "" if key in _FIRST_EDITIONS else key


def _part_key(text: str) -> str:
    """'v. 2', '第二册', 'Part 2' -> '2'; '上册' -> '上册'."""
    if not text:
        return ""
    digits = _DIGITS.findall(_numbered(text))
    return "/".join(str(int(d)) for d in digits) if digits else fold(text)


@dataclass(frozen=True, slots=True)
class Evidence:
    """What matching looks at in one record, folded once."""

    kind: str  # material type: records of two types never match
    isbns: frozenset[str]
    issns: frozenset[str]
    title: str  # the title proper, without subtitle or part
    full: str  # title proper and subtitle, for records that keep the subtitle in $a
    subtitle: str
    part: str  # number or name of the part / volume
    author: str
    surname: str  # a Latin "Surname, Forenames" heading's surname
    initials: str
    year: int | None
    edition: str
    publisher: str
    pages: int | None

    def to_json(self) -> str:
        values = {f: getattr(self, f) for f in self.__dataclass_fields__}
        values["isbns"], values["issns"] = sorted(self.isbns), sorted(self.issns)
        return json.dumps(values, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> Evidence:
        values = json.loads(text)
        values["isbns"], values["issns"] = (frozenset(values["isbns"]),
                                            frozenset(values["issns"]))
        return cls(**values)

    def blocks(self) -> list[tuple[str, str]]:
        """The keys under which candidate clusters are looked up."""
        keys = [("isbn", i) for i in sorted(self.isbns)]
        keys += [("issn", i) for i in sorted(self.issns)]
        keys += [("title", t) for t in dict.fromkeys((self.title, self.full)) if t]
        return [(kind, f"{self.kind}|{value}") for kind, value in keys]


def evidence(record: Record) -> Evidence:
    full_title = fold(record.title)
    main = fold(record.sort_title or record.title)
    # The normalized title is "title proper. part"; its sort form is the title proper.
    at = full_title.find(main) if main else -1
    part_text = full_title[at + len(main):] if at >= 0 else ""
    if part_text and record.title:
        # Fold the part from the original words so '第二册' and 'v. 2' compare.
        head = record.title.rsplit(". ", 1)
        part_text = head[1] if len(head) == 2 else part_text
    subtitle = fold(record.subtitle)
    author = record.authors[0] if record.authors else ""
    surname, initials = _name_parts(author)
    pages = [int(n) for n in _PAGES.findall(record.extent or "")]
    return Evidence(
        kind=record.material_type, isbns=frozenset(record.isbns),
        issns=frozenset(record.issns), title=main, full=main + subtitle, subtitle=subtitle,
        part=_part_key(part_text), author=fold(author), surname=surname, initials=initials,
        year=record.year, edition=edition_key(record.edition),
        publisher=fold(record.publisher), pages=max(pages) if pages else None)


def _name_parts(name: str) -> tuple[str, str]:
    if "," not in name or not name.isascii():
        return "", ""
    surname, _, rest = name.partition(",")
    initials = "".join(word[0] for word in re.findall(r"[A-Za-z]+", rest)).casefold()
    return fold(surname), initials


Verdict = Literal["same", "conflict", "unlike"]


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome for one pair: ``conflict`` is a veto, ``unlike`` only no match."""

    verdict: Verdict
    by_identifier: bool = False
    evidence: tuple[str, ...] = ()  # what agreed (same) or what disagreed (otherwise)


def compare(a: Evidence, b: Evidence) -> Decision:
    """Are ``a`` and ``b`` the same edition? See the module docstring for the rules."""
    if a.kind != b.kind:
        return Decision("conflict", evidence=("material type",))
    shared = _identifiers(a, b)
    if shared is None:
        return Decision("conflict", evidence=("isbn" if a.isbns and b.isbns else "issn",))
    conflict = _hard_conflict(a, b, identified=bool(shared))
    if conflict:
        return Decision("conflict", evidence=(conflict,))
    if shared:
        return Decision("same", by_identifier=True, evidence=tuple(shared))
    return _by_description(a, b)


def _identifiers(a: Evidence, b: Evidence) -> list[str] | None:
    """The identifiers both share; None when both have some of a kind and none agree."""
    shared: list[str] = []
    for kind, mine, theirs in (("isbn", a.isbns, b.isbns), ("issn", a.issns, b.issns)):
        if mine and theirs:
            common = mine & theirs
            if not common:
                return None
            shared += [f"{kind} {value}" for value in sorted(common)]
    return shared


def _hard_conflict(a: Evidence, b: Evidence, *, identified: bool) -> str | None:
    # An identifier outweighs an edition statement one cataloguer left out, not two that
    # disagree.
    if a.edition != b.edition and (not identified or (a.edition and b.edition)):
        return "edition"
    if a.title and a.title == b.title:
        if a.part != b.part:
            return "part"  # volume 1 and volume 2, or a set and one of its volumes
        if a.subtitle and b.subtitle and not _compatible(a.subtitle, b.subtitle):
            return "subtitle"
    return None


def _compatible(one: str, other: str) -> bool:
    """Equal, or one a cut-short form of the other ('理论与实践' / '理论与实践教程')."""
    short, long = sorted((one, other), key=len)
    return long.startswith(short) and len(short) >= 3


def _by_description(a: Evidence, b: Evidence) -> Decision:
    agreed: list[str] = []
    if not (a.title and b.title):
        return Decision("unlike", evidence=("title",))
    if a.title == b.title:
        agreed.append("title")
        if a.subtitle and b.subtitle:
            agreed.append("subtitle")
        if a.part:
            agreed.append("part")
    elif a.full == b.full or a.full in (b.title, b.full) or b.full in (a.title, a.full):
        agreed += ["title", "subtitle"]
    else:
        return Decision("unlike", evidence=("title",))
    if a.author and b.author:
        if not _same_author(a, b):
            return Decision("unlike", evidence=("author",))
        agreed.append("author")
    elif a.publisher and b.publisher:
        # Without authors to compare, the publisher must agree instead.
        if not (a.publisher.startswith(b.publisher) or b.publisher.startswith(a.publisher)):
            return Decision("unlike", evidence=("publisher",))
        agreed.append("publisher")
    if a.year != b.year:
        return Decision("unlike", evidence=("year",))
    if a.year is not None:
        agreed.append("year")
    if a.edition:
        agreed.append("edition")
    if a.pages and b.pages:
        if abs(a.pages - b.pages) > PAGE_TOLERANCE * max(a.pages, b.pages):
            return Decision("unlike", evidence=("extent",))
        agreed.append("extent")
    return Decision("same", evidence=tuple(agreed))


def _same_author(a: Evidence, b: Evidence) -> bool:
    if a.author == b.author:
        return True
    short, long = sorted((a.author, b.author), key=len)
    if len(short) >= 2 and long.startswith(short):
        return True  # "国家统计局" / "国家统计局编", "Brown, Martin" / "Brown, Martin C."
    if a.surname and a.surname == b.surname:
        mine, theirs = sorted((a.initials, b.initials), key=len)
        return bool(mine) and theirs.startswith(mine)  # "Brown, M. C." / "Brown, Martin C."
    return False


# --- placing records in clusters --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Link:
    """Why a record joined its cluster: the record it matched and the evidence."""

    record: str | None
    matched: str | None
    evidence: tuple[str, ...]
    by_identifier: bool

    def as_dict(self) -> dict[str, object]:
        return {"record": self.record, "matched": self.matched,
                "evidence": list(self.evidence),
                "rule": "identifier" if self.by_identifier else "description"}


class MatchStore(Protocol):
    """Where a Matcher keeps its candidate keys and each cluster's evidence."""

    def clusters(self, key: tuple[str, str]) -> Iterable[int]: ...

    def members(self, cluster: int) -> list[tuple[str | None, Evidence]]: ...

    def add(self, cluster: int, record_id: str | None, found: Evidence) -> None: ...


@dataclass(slots=True)
class MemoryStore:
    """A MatchStore in dictionaries: a search's merged set."""

    blocks: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    clustered: dict[int, list[tuple[str | None, Evidence]]] = field(default_factory=dict)

    def clusters(self, key: tuple[str, str]) -> Iterable[int]:
        return self.blocks.get(key, ())

    def members(self, cluster: int) -> list[tuple[str | None, Evidence]]:
        return self.clustered[cluster]

    def add(self, cluster: int, record_id: str | None, found: Evidence) -> None:
        self.clustered.setdefault(cluster, []).append((record_id, found))
        for key in found.blocks():
            listed = self.blocks.setdefault(key, [])
            if cluster not in listed:
                listed.append(cluster)


class Matcher:
    """Candidate lookup and the join rule, over clusters numbered by their owner."""

    def __init__(self, store: MatchStore | None = None) -> None:
        self.store: MatchStore = store if store is not None else MemoryStore()

    def choose(self, record_id: str | None, found: Evidence) -> tuple[int, Link] | None:
        """The cluster ``found`` joins and why, or None for a cluster of its own."""
        by_identifier: list[tuple[int, Link]] = []
        by_description: list[tuple[int, Link]] = []
        for cluster in self._candidates(found):
            link = self._against(record_id, found, self.store.members(cluster))
            if link is not None:
                (by_identifier if link.by_identifier else by_description).append(
                    (cluster, link))
        if by_identifier:
            return by_identifier[0]
        if len(by_description) == 1:
            return by_description[0]
        return None  # no match, or ambiguous between clusters

    def add(self, cluster: int, record_id: str | None, found: Evidence) -> None:
        self.store.add(cluster, record_id, found)

    def _candidates(self, found: Evidence) -> list[int]:
        seen: set[int] = set()
        for key in found.blocks():
            seen.update(self.store.clusters(key))
        return sorted(seen)  # the oldest cluster first, as clusters are numbered
    @staticmethod
    def _against(record_id: str | None, found: Evidence,
                 members: list[tuple[str | None, Evidence]]) -> Link | None:
        best: tuple[str | None, Decision] | None = None
        for member_id, theirs in members:
            decision = compare(found, theirs)
            if decision.verdict == "conflict":
                return None
            if decision.verdict == "same" and (
                    best is None or (decision.by_identifier and not best[1].by_identifier)):
                best = (member_id, decision)
        if best is None:
            return None
        member_id, decision = best
        return Link(record_id, member_id, decision.evidence, decision.by_identifier)
