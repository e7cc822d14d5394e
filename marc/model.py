"""The normalized bibliographic record (CONTRACTS section 4) and what travels with it.

These are plain frozen values: the broker merges them, the web shows them, the ILL form is
prefilled from them. Raw MARC stays a ``pymarc.Record``; only ``marc.normalize`` turns one
into the other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import pymarc

from marc.flavour import Flavour

# The material types a record can have; the broker never merges two different ones.
MaterialType = Literal[
    "book", "serial", "article", "manuscript", "music_score", "map", "video", "audio",
    "image", "electronic", "mixed", "object", "other",
]
MATERIAL_TYPES: tuple[MaterialType, ...] = get_args(MaterialType)

# Holding status values; ``None`` means the source did not say.
HoldingStatus = Literal["available", "on_loan", "unavailable", "not_for_loan", "lost"]


@dataclass(frozen=True, slots=True)
class Holding:
    library: str | None
    location: str | None = None
    call_number: str | None = None
    barcode: str | None = None
    status: HoldingStatus | None = None
    due: str | None = None  # ISO date, when the item is on loan

    def as_dict(self) -> dict[str, Any]:
        return {
            "library": self.library, "location": self.location,
            "call_number": self.call_number, "barcode": self.barcode,
            "status": self.status, "due": self.due,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Holding:
        """The inverse of ``as_dict``."""
        return cls(data.get("library"), data.get("location"), data.get("call_number"),
                   data.get("barcode"), data.get("status"), data.get("due"))


@dataclass(frozen=True, slots=True)
class Classification:
    scheme: str  # clc, lcc, ddc, udc, cas (科图法), or the record's own $2 code
    value: str

    def as_dict(self) -> dict[str, str]:
        return {"scheme": self.scheme, "value": self.value}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Classification:
        """The inverse of ``as_dict``."""
        return cls(data["scheme"], data["value"])


@dataclass(frozen=True, slots=True)
class Romanized:
    """The transliterated forms, kept when 880 fields supplied the original script."""

    title: str | None
    authors: tuple[str, ...]
    publisher: str | None

    def as_dict(self) -> dict[str, Any]:
        return {"title": self.title, "authors": list(self.authors), "publisher": self.publisher}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Romanized:
        """The inverse of ``as_dict``."""
        return cls(data.get("title"), tuple(data.get("authors") or ()), data.get("publisher"))


@dataclass(frozen=True, slots=True)
class RawMarc:
    """A record's MARC as it arrived (ISO 2709 or MARCXML bytes), parsed on demand.

    Search results keep their source this way: a parsed pymarc record is about a hundred
    objects the garbage collector must walk again and again while a broker holds thousands
    of results; bytes are one object it never looks at.
    """

    data: bytes
    flavour: str
    encoding: str = "auto"

    def parse(self) -> pymarc.Record | None:
        from marc.reader import read_bytes  # the readers build on this module

        for entry in read_bytes(self.data, flavour=self.flavour, encoding=self.encoding):
            if entry.record is not None:
                return entry.record
        return None


@dataclass(frozen=True, slots=True)
class Record:
    id: str | None
    format: Flavour
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
    material_type: MaterialType = "other"
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
    # The MARC this was made from (a pymarc record, or the raw bytes to parse again when
    # someone asks to see it); not part of the JSON.
    source: pymarc.Record | RawMarc | None = field(default=None, compare=False, repr=False)

    def marc(self) -> pymarc.Record | None:
        """The source MARC record, parsed if it was kept as bytes."""
        return self.source.parse() if isinstance(self.source, RawMarc) else self.source

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

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Record:
        """The inverse of ``as_dict`` (lists back to tuples; ``source`` is None).

        Keys ``as_dict`` does not write are ignored, so a merged record (CONTRACTS section
        5, with ``libraries`` and ``sources``) reads too; a missing key takes its default.
        """
        romanized = data.get("romanized")
        return cls(
            id=data.get("id"), format=data["format"], title=data.get("title"),
            subtitle=data.get("subtitle"), responsibility=data.get("responsibility"),
            authors=tuple(data.get("authors") or ()), publisher=data.get("publisher"),
            place=data.get("place"), year=data.get("year"), edition=data.get("edition"),
            extent=data.get("extent"), language=data.get("language"),
            material_type=data.get("material_type", "other"),
            isbns=tuple(data.get("isbns") or ()), issns=tuple(data.get("issns") or ()),
            subjects=tuple(data.get("subjects") or ()),
            classification=tuple(Classification.from_dict(c)
                                 for c in data.get("classification") or ()),
            call_numbers=tuple(data.get("call_numbers") or ()),
            holdings=tuple(Holding.from_dict(h) for h in data.get("holdings") or ()),
            sort_title=data.get("sort_title"),
            romanized=Romanized.from_dict(romanized) if romanized is not None else None,
            warnings=tuple(data.get("warnings") or ()),
        )
