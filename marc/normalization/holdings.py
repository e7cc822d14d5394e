"""Holdings and call numbers from the places library systems put them.

A record may describe the same copies in several ways (Alma adds AVA availability beside
the CNMARC 905/906 fields it migrated); the most specific source wins, in this order:
Koha items (952), Alma availability (AVA), CNMARC items (906), MARC21 holdings (852),
CNMARC call number only (905). Call numbers are collected from all of them.
"""

from __future__ import annotations

import re

from pymarc import Field

from marc.flavour import Flavour
from marc.model import Holding, HoldingStatus
from marc.normalization.text import Fields, clean, sub, subs

# Alma's AVA $e; "check_holdings" (Alma could not tell) stays unknown.
_AVA_STATUS: dict[str, HoldingStatus] = {"available": "available", "unavailable": "unavailable"}

# How systems word a copy's status in a public note (852 $z, CNMARC 906 $z, an OPAC
# record's publicNote), folded to lower case; our own codes first (marc.writer writes them).
_NOTE_STATUS: dict[str, HoldingStatus] = {
    "available": "available", "on_loan": "on_loan", "unavailable": "unavailable",
    "not_for_loan": "not_for_loan", "lost": "lost",
    "on loan": "on_loan", "checked out": "on_loan", "on shelf": "available",
    "not for loan": "not_for_loan", "reference only": "not_for_loan", "library use only":
    "not_for_loan", "missing": "lost", "withdrawn": "unavailable", "in processing":
    "unavailable", "在架": "available", "在架可借": "available", "可借": "available",
    "入藏": "available", "借出": "on_loan", "已借出": "on_loan", "外借": "on_loan",
    "不外借": "not_for_loan", "仅供阅览": "not_for_loan", "阅览": "not_for_loan",
    "丢失": "lost", "遗失": "lost", "剔除": "unavailable", "注销": "unavailable",
    "修补": "unavailable", "编目中": "unavailable", "加工中": "unavailable",
}
_DUE_NOTE = re.compile(r"^(?:due|应还日期|应还|还书日期)\s*[:：]?\s*(\d{4}-?\d{2}-?\d{2})$",
                       re.IGNORECASE)


def status_from_notes(notes: list[str]) -> tuple[HoldingStatus | None, str | None]:
    """(status, due date) from a copy's notes: each note a status word or a due date
    ('due 2027-01-15', '应还日期 20270115'), or a sentence that starts with one ('on loan,
    due 2027-01-15'); other notes are ignored. A due date alone means on loan."""
    status: HoldingStatus | None = None
    due = None
    for note in notes:
        for part in re.split(r"[,，;；]", note):
            part = part.strip().rstrip(".。").strip()
            found = _NOTE_STATUS.get(part.casefold())
            if found and status is None:
                status = found
            match = _DUE_NOTE.match(part)
            if match:
                due = _iso_date(match.group(1))
    if due and status is None:
        status = "on_loan"
    return status, due if status == "on_loan" else None


def _koha_952(f: Field, library: str | None) -> Holding:
    """Koha's item: $1 lost, $0 withdrawn, $4 damaged, $7 not for loan (negative: on
    order), $q the due date of a copy on loan ('onloan'). Every copy Koha exports has
    its status, so no flag set means on the shelf."""
    status: HoldingStatus = "available"
    due = None
    flags = {code: (sub(f, code) or "0").strip() or "0" for code in "1047"}
    if flags["1"] != "0":
        status = "lost"
    elif flags["0"] != "0" or flags["4"] != "0":
        status = "unavailable"  # withdrawn or damaged
    elif flags["7"].startswith("-"):
        status = "unavailable"  # ordered, not yet here
    elif flags["7"] != "0":
        status = "not_for_loan"
    elif sub(f, "q"):
        status, due = "on_loan", _iso_date(sub(f, "q"))
    return Holding(
        library=library or sub(f, "a") or sub(f, "b"),
        location=clean(sub(f, "c")) or clean(sub(f, "b")),
        call_number=clean(sub(f, "o")),
        barcode=clean(sub(f, "p")),
        status=status,
        due=due,
    )


def _alma_ava(f: Field, library: str | None) -> Holding:
    return Holding(
        library=library or sub(f, "a") or sub(f, "b"),
        location=clean(sub(f, "c")) or clean(sub(f, "q")),
        call_number=clean(sub(f, "d")),
        status=_AVA_STATUS.get((sub(f, "e") or "").strip().lower()),
    )


def cnmarc_call_number(f: Field) -> str | None:
    """905/906 call number: $s whole, else class number $d / book number $e (F124/26)."""
    whole = sub(f, "s")
    if whole:
        return clean(whole)
    parts = [p.strip() for p in (sub(f, "d"), sub(f, "e")) if p and p.strip()]
    return "/".join(parts) or None


def _cnmarc_906(f: Field, library: str | None, locations: dict[str, str | None]) -> Holding:
    """A CNMARC copy: $b barcode, $d/$e or $s call number, $z its status and due date
    in words (the notes ``status_from_notes`` reads), where the system exports them."""
    status, due = status_from_notes(subs(f, "z"))
    return Holding(
        library=library or sub(f, "a"),
        location=locations.get(cnmarc_call_number(f) or ""),
        call_number=cnmarc_call_number(f),
        barcode=clean(sub(f, "b")),
        status=status,
        due=due,
    )


def _cnmarc_905(f: Field, library: str | None) -> Holding:
    return Holding(library=library or sub(f, "a"), location=clean(sub(f, "c")),
                   call_number=cnmarc_call_number(f))


def _marc21_852(f: Field, library: str | None) -> Holding:
    """852: $b/$c location, $h$i call number, $p barcode; $z public notes, read for a
    status or due date only when a note is one (any other note says nothing of it)."""
    status, due = status_from_notes(subs(f, "z"))
    return Holding(
        library=library or sub(f, "a") or sub(f, "b"),
        location=" ".join(subs(f, "bc")) or None,
        call_number=marc21_call_number(f),
        barcode=clean(sub(f, "p")),
        status=status,
        due=due,
    )


def marc21_call_number(f: Field) -> str | None:
    """852 call number: prefix, classification part, item part, suffix."""
    return " ".join(v.strip() for v in subs(f, "khim")) or None


def holdings(fields: Fields, library: str | None, flavour: Flavour) -> tuple[Holding, ...]:
    if "952" in fields:
        return tuple(_koha_952(f, library) for f in fields.get("952"))
    if "AVA" in fields:
        return tuple(_alma_ava(f, library) for f in fields.get("AVA"))
    if flavour != "unimarc":
        # 905/906 are CNMARC's local holdings; in MARC21, 906 is LC's processing data.
        return tuple(_marc21_852(f, library) for f in fields.get("852"))
    if "906" in fields:
        # 905 says where a call number is shelved; 906 lists the copies.
        locations = {cnmarc_call_number(f) or "": clean(sub(f, "c")) for f in fields.get("905")}
        return tuple(_cnmarc_906(f, library, locations) for f in fields.get("906"))
    if "905" in fields:
        return tuple(_cnmarc_905(f, library) for f in fields.get("905"))
    return ()


def call_numbers(fields: Fields, held: tuple[Holding, ...], local_tags: tuple[str, ...]) -> tuple:
    """Distinct call numbers: the record's own call-number fields, then its holdings'.

    'F124/26' and Alma's 'F124 26' are the same call number; the first form seen is kept.
    """
    found: list[str] = []
    for tag in local_tags:
        for f in fields.get(tag):
            if tag in ("905", "906"):
                found.append(cnmarc_call_number(f) or "")
            elif tag == "852":
                found.append(marc21_call_number(f) or "")
            else:  # 090/099 local call numbers: $a class, $b item
                found.append(" ".join(v.strip() for v in subs(f, "ab")))
    found.extend(h.call_number or "" for h in held)
    seen: dict[str, str] = {}
    for value in found:
        key = re.sub(r"[\s/]+", "/", value.strip()).casefold()
        if key and key not in seen:
            seen[key] = value.strip()
    return tuple(seen.values())


def _iso_date(text: str | None) -> str | None:
    if not text:
        return None
    match = re.search(r"(\d{4})-?(\d{2})-?(\d{2})", text)
    return f"{match.group(1)}-{match.group(2)}-{match.group(3)}" if match else None
