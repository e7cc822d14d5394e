"""Reading harvest files for the union index (``broker.union_index.build``).

A harvest file is ISO 2709, MARCXML or MARC-in-JSON (read by ``marc.read_file`` and
normalized for its library), or JSON lines of normalized records (CONTRACTS section 4, as
``balis harvest --format jsonl`` writes them), told apart by the first line's keys. Each
file comes from one library, named on the command line or by the file's name.
"""

from __future__ import annotations

import json
import logging
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pymarc import Record as MarcRecord
from pymarc import record_to_xml

from broker.kernel.errors import SourceOpenError, UsageError
from marc import Record, normalize, read_file
from marc.flavour import Flavour

logger = logging.getLogger(__name__)

_LIBRARY_ID = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")
_JSON_RECORD_KEYS = {"format", "title"}


@dataclass(frozen=True, slots=True)
class Source:
    """One harvest file and the library its records came from."""

    library: str
    path: Path


def parse_source(argument: str) -> Source:
    """``ID=FILE``, or ``FILE`` named after its library (``harvest/bupt.mrc``, as ``balis
    harvest`` names them): the file name up to its first dot is the library id."""
    library, sep, path = argument.partition("=")
    if sep and _LIBRARY_ID.match(library):
        return Source(library, Path(path))
    name = Path(argument).name.split(".", 1)[0]
    if not _LIBRARY_ID.match(name):
        raise UsageError(f"{argument}: cannot tell which library this file came from; name "
                         "it ID.ext (bupt.mrc) or write ID=FILE (bupt=harvest.mrc)")
    return Source(name, Path(argument))


@dataclass(frozen=True, slots=True)
class Loaded:
    """A record read from a harvest file, or (record None) why one could not be."""

    position: str
    record: Record | None
    marc: bytes | None = None  # the MARC as MARCXML, zlib-compressed
    flavour: Flavour | None = None
    problem: str | None = None


def read_source(source: Source) -> Iterator[Loaded]:
    """Every record of one harvest file, normalized for its library. SourceOpenError if the
    file cannot be opened; a bad record is a ``Loaded`` with its problem."""
    try:
        with open(source.path, "rb") as handle:
            head = handle.read(4096)
    except OSError as exc:
        raise SourceOpenError(f"cannot open {source.path}: {exc.strerror or exc}") from None
    if _is_normalized_jsonl(head):
        yield from _read_jsonl(source)
        return
    for entry in read_file(source.path):
        if entry.record is None:
            yield Loaded(entry.position, None, problem="; ".join(entry.problems))
            continue
        record = normalize(entry.record, flavour=entry.flavour, library=source.library,
                           warnings=entry.problems)
        yield Loaded(entry.position, record, _marc_blob(entry.record, source, entry.position),
                     entry.flavour)


def _marc_blob(record: MarcRecord, source: Source, position: str) -> bytes | None:
    """The record's MARC to show on request: ISO 2709 in UTF-8 (MARCXML for a record too
    long for ISO 2709), compressed."""
    try:
        record.force_utf8 = True  # the text was decoded when read; write it as UTF-8
        return zlib.compress(record.as_marc())
    except Exception:  # pymarc raises plain Exceptions (a record over 99999 bytes)
        pass
    try:
        return zlib.compress(record_to_xml(record, namespace=True))
    except Exception as exc:  # the record is still searchable without its MARC view
        logger.warning("%s: %s: MARC not kept: %s", source.path, position, exc)
        return None


def _is_normalized_jsonl(head: bytes) -> bool:
    """JSON lines of normalized records start with an object that has ``format`` and
    ``title``; MARC-in-JSON has ``leader`` and ``fields``."""
    first = head.lstrip(b"\xef\xbb\xbf \t\r\n").split(b"\n", 1)[0]
    if not first.startswith(b"{"):
        return False
    keys = set(re.findall(rb'"(\w+)"\s*:', first))
    return {k.encode() for k in _JSON_RECORD_KEYS} <= keys and b"leader" not in keys


def _read_jsonl(source: Source) -> Iterator[Loaded]:
    with open(source.path, encoding="utf-8-sig", errors="replace") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            position = f"line {number}"
            try:
                data = json.loads(line)
                _check_normalized(data)
                record = Record.from_dict(data)
            except (ValueError, TypeError, KeyError) as exc:
                reason = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
                yield Loaded(position, None, problem=f"not a normalized record: {reason}")
                continue
            yield Loaded(position, record)


_TEXT_KEYS = ("id", "title", "subtitle", "responsibility", "publisher", "place", "edition",
              "extent", "language")
_LIST_KEYS = ("authors", "isbns", "issns", "subjects", "classification", "call_numbers",
              "holdings")


def _check_normalized(data: object) -> None:
    if not isinstance(data, dict):
        raise ValueError("a line must be one JSON object")
    if not isinstance(data.get("format"), str):
        raise ValueError("'format' is missing")
    for key in _TEXT_KEYS:
        if not isinstance(data.get(key), str | None):
            raise ValueError(f"{key!r} must be text or null")
    for key in _LIST_KEYS:
        if not isinstance(data.get(key), list | None):
            raise ValueError(f"{key!r} must be a list")
    for key in ("authors", "isbns", "issns", "subjects", "call_numbers"):
        if not all(isinstance(v, str) for v in data.get(key) or ()):
            raise ValueError(f"{key!r} must be a list of texts")
    for key in ("classification", "holdings"):
        if not all(isinstance(v, dict) for v in data.get(key) or ()):
            raise ValueError(f"{key!r} must be a list of objects")
    year = data.get("year")
    if year is not None and (not isinstance(year, int) or isinstance(year, bool)):
        raise ValueError("'year' must be a whole number or null")
