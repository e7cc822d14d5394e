"""How a harvest turns each raw record into output bytes: ISO 2709, MARCXML or JSON lines.

A writer is pure: ``header()``, ``record(...)``, ``footer()`` give bytes and the harvest
appends them. The MARCXML footer (``</collection>``) is written only when a harvest ends,
so the output of an unfinished harvest is the header plus whole records, and resuming
truncates to the last checkpoint, which never includes the footer.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import pymarc

from broker.harvest.formats import FORMATS
from broker.kernel.literals import one_of
from marc import normalize, read_bytes
from marc.flavour import Flavour
from marc.model import RawMarc

MARC_NS = "http://www.loc.gov/MARC21/slim"


@dataclass(frozen=True, slots=True)
class Converted:
    """One position of the result set: its output bytes, or why it was skipped."""

    position: int
    data: bytes | None
    problem: str | None = None


class Writer:
    """Turns raw records of one library into one output format."""

    def __init__(self, fmt: str, library: str, flavour: Flavour, encoding: str) -> None:
        chosen = one_of(fmt, FORMATS)
        if chosen is None:
            raise ValueError(f"unknown output format {fmt!r}")
        self.format = chosen
        self.library = library
        self.flavour = flavour
        self.encoding = encoding  # what to read the records in ("auto": check each)

    def header(self) -> bytes:
        if self.format == "marcxml":
            return (b'<?xml version="1.0" encoding="UTF-8"?>\n'
                    b'<collection xmlns="' + MARC_NS.encode() + b'">\n')
        return b""

    def footer(self) -> bytes:
        return b"</collection>\n" if self.format == "marcxml" else b""

    def convert(self, position: int, data: bytes) -> Converted:
        """Read one record as it came and write it out; a record that cannot be read is
        reported, with the reader's reason, instead of written."""
        good = None
        problems: list[str] = []
        for entry in read_bytes(data, flavour=self.flavour, encoding=self.encoding):
            if entry.record is None:
                problems.extend(entry.problems)
            elif good is None:
                good = entry
        if good is None:
            return Converted(position, None, "; ".join(problems) or "no MARC record")
        record = good.record
        assert record is not None
        if self.format == "iso2709":
            return Converted(position, self._iso2709(record, data, good.encoding,
                                                     good.problems))
        if self.format == "marcxml":
            return Converted(position, marcxml_record(record))
        normalized = normalize(record, flavour=good.flavour, library=self.library,
                               warnings=good.problems,
                               source=RawMarc(data, self.flavour, self.encoding))
        line = json.dumps(normalized.as_dict(), ensure_ascii=False, separators=(",", ":"))
        return Converted(position, line.encode("utf-8") + b"\n")

    @staticmethod
    def _iso2709(record: pymarc.Record, data: bytes, encoding: str | None,
                 warnings: tuple[str, ...]) -> bytes:
        # A clean record read as UTF-8 is kept byte for byte (what the server sent; writing
        # it again could only change its layout), marked as UTF-8 in leader/09: servers
        # leave a blank there on ASCII records converted from MARC-8.
        if (not warnings and encoding == "utf-8" and data.endswith(b"\x1d")
                and data.count(b"\x1d") == 1):
            return data if data[9:10] == b"a" else data[:9] + b"a" + data[10:]
        leader = str(record.leader)
        record.leader = pymarc.Leader(leader[:9] + "a" + leader[10:])
        return record.as_marc()


# XML 1.0 cannot carry C0 controls other than tab, newline and carriage return.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _text(value: str) -> str:
    value = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _NOT_XML.sub("\ufffd", value)


def _attr(value: str) -> str:
    return _text(value).replace('"', "&quot;")


def marcxml_record(record: pymarc.Record) -> bytes:
    """One ``<record>`` line in the MARC21 slim namespace of the enclosing collection,
    written as UTF-8 text (pymarc's writer turns every CJK character into ``&#...;``)."""
    parts = [f"<record><leader>{_text(str(record.leader))}</leader>"]
    for field in record.fields:
        if field.is_control_field():
            parts.append(f'<controlfield tag="{_attr(field.tag)}">{_text(field.data or "")}'
                         "</controlfield>")
            continue
        ind1, ind2 = (field.indicators or (" ", " "))[:2]
        parts.append(f'<datafield tag="{_attr(field.tag)}" ind1="{_attr(ind1 or " ")}" '
                     f'ind2="{_attr(ind2 or " ")}">')
        parts.extend(f'<subfield code="{_attr(sub.code)}">{_text(sub.value or "")}</subfield>'
                     for sub in field.subfields)
        parts.append("</datafield>")
    parts.append("</record>\n")
    return "".join(parts).encode("utf-8")
