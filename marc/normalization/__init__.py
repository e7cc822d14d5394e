"""One normalization path for every source: MARC21 or UNIMARC, any transport or encoding."""

from __future__ import annotations

from pymarc import Record as MarcRecord

from marc.flavour import AUTO, MARC21, UNIMARC, canonical_flavour, detect_flavour
from marc.model import RawMarc, Record
from marc.normalization.marc21 import normalize_marc21
from marc.normalization.text import Fields, clean
from marc.normalization.unimarc import normalize_unimarc

__all__ = ["normalize"]


def normalize(
    record: MarcRecord,
    *,
    flavour: str = AUTO,
    library: str | None = None,
    warnings: tuple[str, ...] = (),
    source: RawMarc | None = None,
) -> Record:
    """The normalized record (CONTRACTS section 4) of one pymarc record.

    ``library`` is the member library the record came from: it prefixes the id
    (``bupt:000123``) and owns the holdings. ``warnings`` are what reading already found.
    ``source`` keeps the raw MARC instead of the pymarc record (for results held long).
    """
    flavour = canonical_flavour(flavour)
    fields = Fields(record)
    if flavour == AUTO:
        flavour = detect_flavour([f.tag for f in record.fields])
    found: list[str] = list(warnings)
    if flavour == UNIMARC:
        values = normalize_unimarc(fields, library, found)
    else:
        flavour = MARC21
        values = normalize_marc21(fields, library, found)
    control = fields.first("001")
    number = clean(control.data) if control is not None and control.data else None
    record_id = f"{library}:{number}" if library and number else number
    return Record(id=record_id, format=flavour, warnings=tuple(found),
                  source=source or record, **values)
