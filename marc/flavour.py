"""Telling MARC21 from UNIMARC (CNMARC is UNIMARC) by what a record contains."""

from __future__ import annotations

from collections.abc import Collection
from typing import Final, Literal

from broker.kernel.errors import UsageError

# What a record is; and what a reader is told to take records for (auto: each record's
# own tags decide).
Flavour = Literal["marc21", "unimarc"]
FlavourChoice = Literal["auto", "marc21", "unimarc"]

AUTO: Final = "auto"
MARC21: Final = "marc21"
UNIMARC: Final = "unimarc"
FLAVOURS: tuple[FlavourChoice, ...] = (AUTO, MARC21, UNIMARC)

_ALIASES: dict[str, FlavourChoice] = {
    "auto": AUTO, "marc21": MARC21, "usmarc": MARC21, "marc": MARC21,
    "unimarc": UNIMARC, "cnmarc": UNIMARC,
}

# Tags that only one of the two formats defines for bibliographic data.
_UNIMARC_ONLY = frozenset({"200", "210", "215", "225", "101", "102", "105", "106", "690", "801"})
_MARC21_ONLY = frozenset({"008", "040", "245", "250", "260", "264", "300", "650", "082"})


def canonical_flavour(name: str) -> FlavourChoice:
    key = name.strip().lower()
    if key not in _ALIASES:
        raise UsageError(f"unknown MARC flavour {name!r}: use one of {', '.join(FLAVOURS)}")
    return _ALIASES[key]


def detect_flavour(tags: Collection[str], default: Flavour = MARC21) -> Flavour:
    """MARC21 or UNIMARC, from the record's tags.

    The title field decides when present (245 against 200); otherwise the count of tags
    that only one format uses. Leaders cannot decide: both formats fill leader/05-07 alike.
    """
    if "245" in tags:
        return MARC21
    if "200" in tags:
        return UNIMARC
    unimarc = sum(1 for tag in tags if tag in _UNIMARC_ONLY)
    marc21 = sum(1 for tag in tags if tag in _MARC21_ONLY)
    if unimarc == marc21:
        return default
    return UNIMARC if unimarc > marc21 else MARC21
