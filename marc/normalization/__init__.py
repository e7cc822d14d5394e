"""One normalization path for every source: MARC21 or UNIMARC, any transport or encoding."""

from __future__ import annotations

from pymarc import Record as MarcRecord

from marc.flavour import AUTO, UNIMARC, Flavour, canonical_flavour, detect_flavour
from marc.model import RawMarc, Record
from marc.normalization.marc21 import normalize_marc21
from marc.normalization.text import Fields, clean
from marc.normalization.unimarc import normalize_unimarc

__all__ = ["normalize"]


def normalize(
    record: MarcRecord,
    *,
    flavour: str | None = AUTO,
    library: str | None = None,
    warnings: tuple[str, ...] = (),
    source: RawMarc | None = None,
) -> Record:
    """The normalized record (CONTRACTS section 4) of one pymarc record.

    ``flavour``: the record's flavour (or an alias: cnmarc, usmarc); ``auto``, or None for
    not known, has the record's tags decide. (A reader's ``Entry`` holds the flavour it
    read the record as, so ``flavour=entry.flavour`` is the usual call; None there goes
    only with no record.)
    ``library`` is the member library the record came from: it prefixes the id
    (``bupt:000123``) and owns the holdings. ``warnings`` are what reading already found.
    ``source`` keeps the raw MARC instead of the pymarc record (for results held long).
    """
    chosen = AUTO if flavour is None else canonical_flavour(flavour)
    fields = Fields(record)
    found: list[str] = list(warnings)
    kind: Flavour = (detect_flavour([f.tag for f in record.fields]) if chosen == AUTO
                     else chosen)
    if kind == UNIMARC:
        values = normalize_unimarc(fields, library, found)
    else:
        values = normalize_marc21(fields, library, found)
    control = fields.first("001")
    number = clean(control.data) if control is not None and control.data else None
    record_id = f"{library}:{number}" if library and number else number
    return Record(id=record_id, format=kind, warnings=tuple(found),
                  source=source or record, **values)
