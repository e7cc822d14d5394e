"""Realistic variants of real records, each made by one stated edit (used by build.py).

Every variant keeps its source's fields except what ``change`` says; its 001 is new, and
``derived/variants.tsv`` records (variant id, derived_from, change) for each.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path

import pymarc
from pymarc import Field, Subfield

from marc import read_file
from marc.writer import iso2709

HERE = Path(__file__).resolve().parent
LIBRARY = "variants"  # the "library" the variants come from, as merge sees them


def _source(name: str, control: str) -> pymarc.Record:
    for entry in read_file(HERE / "real" / name):
        if entry.record is not None and entry.record["001"].data.strip() == control:
            return entry.record
    raise LookupError(f"{control} not in {name}")


def _set(record: pymarc.Record, tag: str, code: str, value: str) -> None:
    field = record[tag]
    field.subfields = [Subfield(s.code, value if s.code == code else s.value)
                       for s in field.subfields]
    if code not in [s.code for s in field.subfields]:
        field.subfields.append(Subfield(code, value))


def _drop(record: pymarc.Record, tag: str) -> None:
    record.remove_fields(tag)


def _title(record: pymarc.Record, **values: str) -> None:
    field = record["245"]
    codes = {s.code: s.value for s in field.subfields}
    codes.update(values)
    order = [c for c in "abnpc" if c in codes]
    field.subfields = [Subfield(c, codes[c]) for c in order]


def _isbn10(first9: str) -> str:
    """A made-up ISBN-10 with a valid check digit (a matcher may check them)."""
    total = sum((10 - i) * int(d) for i, d in enumerate(first9))
    check = (11 - total % 11) % 11
    return first9 + ("X" if check == 10 else str(check))


def _isbn(record: pymarc.Record, *isbns: str) -> None:
    _drop(record, "020")
    for isbn in isbns:
        record.add_ordered_field(Field("020", [" ", " "], [Subfield("a", isbn)]))


PERL = ("pymarc__test.dat", "fol05843579")  # Perl : the complete reference, 0072120002
PERL_PR = ("pymarc__test.dat", "fol05843555")  # Perl : programmer's reference, no ISBN
CAMEL = ("pymarc__test.dat", "fol05865967")  # Programming Perl, 3rd ed.
JOBS = ("openlibrary__880_alternate_script.mrc", None)
SUMMERLAND = ("marc4j__summerland.mrc", None)
PP_1999 = ("marc4j__pride-and-prejudice-fixed.mrc", "ocm42943498")  # large print 1999


def _first(name: str) -> pymarc.Record:
    for entry in read_file(HERE / "real" / name):
        if entry.record is not None:
            return entry.record
    raise LookupError(name)


def _no_isbn(r: pymarc.Record) -> None:
    _drop(r, "020")


def _shouting(r: pymarc.Record) -> None:
    _title(r, a="PERL", b="THE COMPLETE REFERENCE")
    r["245"].subfields = [s for s in r["245"].subfields if s.code != "c"]


def _reprint(r: pymarc.Record) -> None:
    _set(r, "260", "c", "2001, c1999.")
    r["008"].data = r["008"].data[:6] + "r20011999" + r["008"].data[15:]


def _second_edition(r: pymarc.Record) -> None:
    r.add_ordered_field(Field("250", [" ", " "], [Subfield("a", "2nd ed.")]))
    _isbn(r, _isbn10("007212673"))
    _set(r, "260", "c", "c2000.")
    r["008"].data = r["008"].data[:7] + "2000" + r["008"].data[11:]


def _third_spelled(r: pymarc.Record) -> None:
    _set(r, "250", "a", "Third edition.")


def _volume(n: int, part: str) -> Callable[[pymarc.Record], None]:
    def edit(r: pymarc.Record) -> None:
        _title(r, n=f"Vol. {n}.", p=part)
        _isbn(r, _isbn10(f"05960003{n}"), f"{_isbn10('059600039')} (set)")
    return edit


def _set_record(r: pymarc.Record) -> None:
    _isbn(r, f"{_isbn10('059600039')} (set)")
    _set(r, "300", "a", "2 v. :")


def _traditional(r: pymarc.Record) -> None:
    for field in r.get_fields("880"):
        if field["6"].startswith("245"):
            field.subfields = [Subfield(s.code, s.value.replace("乔布斯的秘密日记",
                                                                 "喬布斯的秘密日記"))
                               for s in field.subfields]


def _traditional_no_isbn(r: pymarc.Record) -> None:
    _traditional(r)
    _drop(r, "020")


def _article(r: pymarc.Record) -> None:
    """An article of the Perl Conference proceedings: its own title, the host in 773."""
    r.leader = pymarc.Leader(str(r.leader)[:7] + "a" + str(r.leader)[8:])
    _title(r, a="Perl in the enterprise /", b="", c="by a speaker.")
    r["245"].subfields = [s for s in r["245"].subfields if s.value]
    r.add_ordered_field(Field("773", ["0", " "], [
        Subfield("t", "Proceedings of the Perl Conference 4.0"),
        Subfield("z", "0596000138"), Subfield("g", "p. 45-52")]))
    _drop(r, "020")


def _summerland_pbk(r: pymarc.Record) -> None:
    """Only the paperback's ISBN (one of the two the real record lists): same edition."""
    _isbn(r, "0786816155 (pbk.)")


def _large_print_no_isbn(r: pymarc.Record) -> None:
    _drop(r, "020")


# (variant 001, source file, source 001 or None for the file's first, edit, change)
VARIANTS: tuple[tuple[str, str, str | None, Callable[[pymarc.Record], None], str], ...] = (
    ("perl-noisbn", *PERL, _no_isbn, "020 removed (a catalogue without the ISBN)"),
    ("perl-shouting", *PERL, _shouting,
     "245 upper-cased, ISBD punctuation and $c removed"),
    ("perl-reprint", *PERL, _reprint, "260 $c and 008 say a 2001 printing of the 1999 text"),
    ("perl-2nd", *PERL, _second_edition,
     "250 2nd ed., another ISBN, 2000: a new edition"),
    ("pr-shouting", *PERL_PR, lambda r: _title(r, a="PERL :", b="PROGRAMMER'S REFERENCE /"),
     "245 $a $b upper-cased"),
    ("camel-third", *CAMEL, _third_spelled, "250 '3rd ed.' spelled 'Third edition.'"),
    ("camel-v1", *CAMEL, _volume(1, "Language."),
     "245 $n Vol. 1 $p Language; the volume's ISBN and the set's"),
    ("camel-v2", *CAMEL, _volume(2, "Library."),
     "245 $n Vol. 2 $p Library; the volume's ISBN and the set's"),
    ("camel-v1-b", *CAMEL, _volume(1, "Language."), "the same as camel-v1 (a second library)"),
    ("camel-set", *CAMEL, _set_record, "the set record: only the set ISBN, 300 '2 v.'"),
    ("jobs-trad", JOBS[0], None, _traditional, "880 245 in traditional characters"),
    ("jobs-trad-noisbn", JOBS[0], None, _traditional_no_isbn,
     "880 245 in traditional characters and 020 removed"),
    ("perlconf-article", "pymarc__test.dat", "fol05865950", _article,
     "leader/07 a, an article's own title, 773 to the proceedings"),
    ("summerland-pbk", SUMMERLAND[0], None, _summerland_pbk, "020: the paperback ISBN only"),
    ("austen-lp-noisbn", *PP_1999, _large_print_no_isbn, "020 removed"),
)


def write(directory: Path) -> list[tuple[str, str, str, str, str]]:
    directory.mkdir(exist_ok=True)
    blobs, lines = [], ["variant\tderived_from\tchange"]
    for control, name, source_id, edit, change in VARIANTS:
        source = _source(name, source_id) if source_id else _first(name)
        record = copy.deepcopy(source)
        edit(record)
        origin = source["001"].data.strip()
        record["001"].data = control
        blobs.append(iso2709(record, "utf-8", coding="a"))
        lines.append(f"{LIBRARY}:{control}\t{name}#{origin}\t{change}")
    (directory / "variants.mrc").write_bytes(b"".join(blobs))
    (directory / "variants.tsv").write_text("\n".join(lines) + "\n", "utf-8")
    return [("derived/variants.mrc", LIBRARY, "marc21", "utf-8",
             "variants of real records: derived/variants.tsv")]
