"""The SUTRS record syntax (1.2.840.10003.5.101): a record as plain text for people.

Rendered from the normalized record (``marc.normalize``), so MARC21 and CNMARC read alike:
an ISBD-like title line, then one labelled line per part, then a line per holding with
its availability. Lines are kept within ``WIDTH`` display columns, counting a CJK
character as two (a terminal shows it so), and wrapped with a hanging indent.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator, Sequence

from marc.model import Holding, Record

WIDTH = 78
_INDENT = "    "
_STATUS = {"available": "available", "on_loan": "on loan", "unavailable": "unavailable",
           "not_for_loan": "not for loan", "lost": "lost"}


def sutrs_text(record: Record, holdings: Sequence[Holding]) -> str:
    """The record as lines of text, each ending in a newline."""
    lines: list[str] = []
    for label, value in _parts(record, holdings):
        lines.extend(_wrapped(f"{label}: {value}" if label else value))
    return "".join(f"{line}\n" for line in lines)


def _parts(record: Record, holdings: Sequence[Holding]) -> Iterator[tuple[str, str]]:
    title = record.title or "[no title]"
    if record.subtitle:
        title += f" : {record.subtitle}"
    if record.responsibility:
        title += f" / {record.responsibility}"
    yield "Title", title
    for author in record.authors:
        yield "Author", author
    if record.edition:
        yield "Edition", record.edition
    published = record.place or ""
    if record.publisher:
        published += f" : {record.publisher}" if published else record.publisher
    if record.year:
        published += f", {record.year}" if published else str(record.year)
    if published:
        yield "Published", published
    if record.extent:
        yield "Extent", record.extent
    for isbn in record.isbns:
        yield "ISBN", isbn
    for value in record.issns:
        yield "ISSN", value
    for subject in record.subjects:
        yield "Subject", subject
    for holding in holdings:
        yield "Holding", _holding(holding)


def _holding(holding: Holding) -> str:
    place = " ".join(v for v in (holding.library, holding.location, holding.call_number) if v)
    if holding.barcode:
        place += f" [{holding.barcode}]"
    status = _STATUS.get(holding.status or "", "status not reported")
    if holding.due:
        status += f", due {holding.due}"
    return f"{place or 'unknown library'}: {status}"


def _columns(char: str) -> int:
    if unicodedata.combining(char):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def _wrapped(line: str) -> list[str]:
    """``line`` in pieces of at most WIDTH columns: broken at a space in the second half
    of the line where there is one, else anywhere (CJK has no spaces between words)."""
    out: list[str] = []
    prefix = ""
    rest = " ".join(line.split())  # control characters and newlines as spaces
    while rest:
        room, used, cut, space = WIDTH - len(prefix), 0, 0, 0
        for i, char in enumerate(rest):
            used += _columns(char)
            if used > room:
                break
            cut = i + 1
            if char == " " and used > room // 2:
                space = i  # a space late enough not to leave half a line empty
        else:
            out.append(prefix + rest)
            break
        if space:  # break at the last space that fits
            cut = space
        out.append(prefix + rest[:cut].rstrip())
        rest, prefix = rest[cut:].lstrip(), _INDENT
    return out
