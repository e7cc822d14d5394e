"""The normalized bibliographic record (CONTRACTS section 4) and what travels with it.

These are plain frozen values: the broker merges them, the web shows them, the ILL form is
prefilled from them. Raw MARC stays a ``pymarc.Record``; only ``marc.normalize`` turns one
into the other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pymarc

# The material types a record can have; the broker never merges two different ones.
MATERIAL_TYPES = (
    "book", "serial", "article", "manuscript", "music_score", "map", "video", "audio",
    "image", "electronic", "mixed", "object", "other",
)

# Holding status values; ``None`` means the source did not say.
HOLDING_STATUSES = ("available", "on_loan", "unavailable", "not_for_loan", "lost")


@dataclass(frozen=True, slots=True)
class Holding:
    library: str | None
    location: str | None = None
    call_number: str | None = None
    barcode: str | None = None
    status: str | None = None
    due: str | None = None  # ISO date, when the item is on loan

    def as_dict(self) -> dict[str, Any]:
        return {
            "library": self.library, "location": self.location,
            "call_number": self.call_number, "barcode": self.barcode,
            "status": self.status, "due": self.due,
        }


@dataclass(frozen=True, slots=True)
class Classification:
    scheme: str  # clc, lcc, ddc, udc, cas (科图法), or the record's own $2 code
    value: str

    def as_dict(self) -> dict[str, str]:
        return {"scheme": self.scheme, "value": self.value}


@dataclass(frozen=True, slots=True)
class Romanized:
    """The transliterated forms, kept when 880 fields supplied the original script."""

    title: str | None
    authors: tuple[str, ...]
    publisher: str | None

    def as_dict(self) -> dict[str, Any]:
        return {"title": self.title, "authors": list(self.authors), "publisher": self.publisher}


@dataclass(frozen=True, slots=True)
class Record:
    id: str | None
    format: str  # "marc21" or "unimarc"
    title: str | None
    subtitle: str | None = None
    responsibility: str | None = None
    authors: tuple[str, ...] = ()
    publisher: str | None = None
    place: str | None = None
    year: int | None = None
    edition: str | None = None
    extent: str | None = None
    language: str | None = None
    material_type: str = "other"
    isbns: tuple[str, ...] = ()
    issns: tuple[str, ...] = ()
    subjects: tuple[str, ...] = ()
    classification: tuple[Classification, ...] = ()
    call_numbers: tuple[str, ...] = ()
    holdings: tuple[Holding, ...] = ()
    # Title without its non-filing part (leading article, NSB/NSE span): for sorting and
    # matching, never for display.
    sort_title: str | None = None
    romanized: Romanized | None = None
    # What normalization had to repair or leave out (bad ISBN, undecodable bytes, ...).
    warnings: tuple[str, ...] = ()
    # The MARC record this was made from; not part of the JSON.
    source: pymarc.Record | None = field(default=None, compare=False, repr=False)

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape of CONTRACTS section 4: every key present, absent = null or []."""
        return {
            "id": self.id, "format": self.format, "title": self.title,
            "subtitle": self.subtitle, "responsibility": self.responsibility,
            "authors": list(self.authors), "publisher": self.publisher, "place": self.place,
            "year": self.year, "edition": self.edition, "extent": self.extent,
            "language": self.language, "material_type": self.material_type,
            "isbns": list(self.isbns), "issns": list(self.issns),
            "subjects": list(self.subjects),
            "classification": [c.as_dict() for c in self.classification],
            "call_numbers": list(self.call_numbers),
            "holdings": [h.as_dict() for h in self.holdings],
            "sort_title": self.sort_title,
            "romanized": self.romanized.as_dict() if self.romanized else None,
            "warnings": list(self.warnings),
        }
