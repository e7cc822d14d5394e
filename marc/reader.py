"""Reading MARC from files or bytes in any of the three serialisations.

Every record, good or bad, comes out as an ``Entry`` that says where it was; a bad record
carries the reason instead of a record, and reading goes on. Nothing is skipped silently.
"""

from __future__ import annotations

import io
import logging
import mmap
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from pymarc import Record as MarcRecord

from broker.kernel.errors import MarcError, SourceOpenError
from marc import encoding as enc
from marc.flavour import AUTO, Flavour, FlavourChoice, canonical_flavour
from marc.framing import Buffer, split_records
from marc.iso2709 import parse_record
from marc.marcjson import iter_json_records
from marc.marcxml import FoundRecord, iter_xml_records

logger = logging.getLogger(__name__)

ISO2709, MARCXML, MARCJSON = "iso2709", "marcxml", "json"
_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True, slots=True)
class Entry:
    """One record read from a source, or the report of one that could not be read."""

    number: int | None  # 1-based position among the source's records; None: not a record
    offset: int | None  # byte offset (ISO 2709)
    line: int | None  # line (MARCXML, JSON)
    record: MarcRecord | None
    flavour: Flavour | None  # None exactly when record is None
    encoding: str | None
    problems: tuple[str, ...] = ()  # warnings for a record; the reason when record is None

    @property
    def ok(self) -> bool:
        return self.record is not None

    @property
    def position(self) -> str:
        parts = []
        if self.number is not None:
            parts.append(f"record {self.number}")
        if self.offset is not None:
            parts.append(f"byte {self.offset}")
        if self.line is not None:
            parts.append(f"line {self.line}")
        return ", ".join(parts) or "start of input"


def sniff_format(head: bytes) -> str:
    """ISO 2709, MARCXML or MARC-in-JSON, from a source's first bytes."""
    head = head.removeprefix(_BOM).lstrip()
    if head.startswith(b"<"):
        return MARCXML
    if head.startswith((b"{", b"[")):
        return MARCJSON
    return ISO2709


def read_file(
    path: str | os.PathLike[str], *, flavour: str = AUTO, encoding: str = enc.AUTO
) -> Iterator[Entry]:
    """Read every record of a file. Raises SourceOpenError only if the file cannot be opened."""
    flavour = canonical_flavour(flavour)
    encoding = enc.canonical_encoding(encoding)
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed in the generator below
    except OSError as exc:
        raise SourceOpenError(f"cannot open {path}: {exc.strerror or exc}") from None
    return _read_handle(handle, flavour, encoding)


def _read_handle(handle: BinaryIO, flavour: FlavourChoice, encoding: str) -> Iterator[Entry]:
    with handle:
        try:
            size = os.fstat(handle.fileno()).st_size
        except OSError:
            size = -1
        if size == 0:
            yield Entry(None, 0, None, None, None, None, ("the file is empty: no records",))
            return
        try:
            head = handle.read(64)
        except OSError as exc:
            yield Entry(None, 0, None, None, None, None, (f"cannot read: {exc}",))
            return
        kind = sniff_format(head)
        handle.seek(0)
        if kind == ISO2709 and size > 0:
            with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
                yield from _iso2709_entries(data, flavour, encoding)
        else:
            yield from read_bytes(handle.read(), flavour=flavour, encoding=encoding)


def read_bytes(data: bytes, *, flavour: str = AUTO, encoding: str = enc.AUTO) -> Iterator[Entry]:
    """Read every record in a byte string (a file's contents, a server's answer)."""
    flavour = canonical_flavour(flavour)
    encoding = enc.canonical_encoding(encoding)
    if not data.strip():
        yield Entry(None, 0, None, None, None, None, ("the input is empty: no records",))
        return
    kind = sniff_format(data[:64])
    if kind == ISO2709:
        yield from _iso2709_entries(data, flavour, encoding)
    elif kind == MARCXML:
        yield from _numbered(iter_xml_records(io.BytesIO(data), flavour=flavour))
    else:
        text, damaged = enc.decode(data.removeprefix(_BOM), (enc.UTF8,))
        entries = _numbered(iter_json_records(text, flavour=flavour))
        if damaged:
            yield Entry(None, None, None, None, None, None,
                        ("JSON input is not valid UTF-8; bad bytes were replaced",))
        yield from entries


def _numbered(found: Iterator[FoundRecord]) -> Iterator[Entry]:
    number = 0
    for item in found:
        if not item.document_error:
            number += 1
            yield Entry(number, None, item.line, item.record, item.flavour,
                        enc.UTF8 if item.record is not None else None, item.problems)
        else:
            yield Entry(None, None, item.line, None, None, None, item.problems)


def _iso2709_entries(data: Buffer, flavour: FlavourChoice, encoding: str) -> Iterator[Entry]:
    number = 0
    said = False
    for chunk in split_records(data):
        said = True
        if not chunk.is_record:
            yield Entry(None, chunk.offset, None, None, None, None,
                        (f"{len(chunk.data)} bytes that are not a MARC record skipped",))
            continue
        number += 1
        try:
            parsed = parse_record(chunk.data, flavour=flavour, encoding=encoding)
        except MarcError as exc:
            yield Entry(number, chunk.offset, None, None, None, None, (str(exc),))
            continue
        yield Entry(number, chunk.offset, None, parsed.record, parsed.flavour,
                    parsed.encoding, parsed.warnings)
    if not said:
        yield Entry(None, 0, None, None, None, None,
                    ("no MARC records: the input holds only line ends or padding",))
