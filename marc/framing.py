"""Finding the records in an ISO 2709 file: where each starts and ends, without trusting
its numbers, and what lies between them.

Chinese ``.iso`` exports put CR/LF (or NUL padding) between records, so records are split
on the record terminator here, not by pymarc's reader, which stops at the first stray byte.
A record terminator inside the data, garbage between records and a truncated last record
are told apart; padding (spaces to a block's end, ^Z) is no record and no garbage.
``marc.iso2709`` reads each record found.
"""

from __future__ import annotations

import mmap
import re
from collections.abc import Iterator
from dataclasses import dataclass

RECORD_END = 0x1D
FIELD_END = 0x1E
LEADER_LEN = 24

# Bytes that exporters put between records; never the start of a leader.
_FILLER = b"\r\n\x00\x1a\t"
# What exporters pad a file's last block with; never data, wherever it stands.
_PADDING = _FILLER + b" "
# Where a record can start inside garbage: a leader's record length, then its base address
# twelve bytes in, then the entry map at 20-21.
_LEADER_RE = re.compile(rb"\d{5}[\x20-\x7e]{7}\d{5}[\x20-\x7e]{3}\d\d")


# bytes, or an mmap of a file: both index to ints and have find().
Buffer = bytes | mmap.mmap


@dataclass(frozen=True, slots=True)
class Chunk:
    """One stretch of a file: a record's bytes, or bytes that are not a record."""

    offset: int
    data: bytes
    is_record: bool


def split_records(data: Buffer) -> Iterator[Chunk]:
    """Cut a file's bytes into record chunks and report what lies between them."""
    n = len(data)
    pos = 0
    while pos < n:
        while pos < n and data[pos] in _FILLER:
            pos += 1
        if pos >= n:
            return
        end = _record_end(data, pos, n)
        head = bytes(data[pos:pos + 5])
        if not head.isdigit():
            # Not a leader here: look for one further on before calling it garbage.
            found = _LEADER_RE.search(bytes(data[pos:end]))
            start = pos + found.start() if found else end
            if start > pos and not bytes(data[pos:start]).strip(_PADDING):
                pos = start  # padding (spaces to a block's end, ^Z): holds nothing
                continue
            if start > pos:
                yield Chunk(pos, bytes(data[pos:start]), is_record=False)
                pos = start
                continue
        yield Chunk(pos, bytes(data[pos:end]), is_record=True)
        pos = end


def _record_end(data: Buffer, pos: int, n: int) -> int:
    """End (exclusive) of the record starting at ``pos``."""
    head = bytes(data[pos:pos + 5])
    if head.isdigit():
        claimed = int(head)
        # A right leader length wins, even over a record terminator inside the data.
        if claimed > LEADER_LEN and pos + claimed <= n and data[pos + claimed - 1] == RECORD_END:
            return pos + claimed
    end = data.find(b"\x1d", pos, n)
    if end < 0:
        return n
    # A terminator inside the data and a wrong leader length: the directory says how far
    # the fields reach, and if that is past this terminator (and no leader starts right
    # after it) the record goes on to a later terminator.
    reach = _directory_reach(bytes(data[pos:min(n, pos + 100_000)]))
    while reach is not None and pos + reach > end + 1 and end + 1 < n:
        following = bytes(data[end + 1:end + 41])
        if _LEADER_RE.match(following.lstrip(_FILLER)):
            break
        nxt = data.find(b"\x1d", end + 1, n)
        if nxt < 0:
            return n
        end = nxt
    return end + 1


def _directory_reach(chunk: bytes) -> int | None:
    """How many bytes the directory says the record spans, or None if it cannot say."""
    dir_end = chunk.find(b"\x1e", LEADER_LEN)
    if dir_end < 0:
        return None
    directory = chunk[LEADER_LEN:dir_end]
    reach = 0
    for i in range(0, len(directory) - 11, 12):
        entry = directory[i:i + 12]
        if not entry[3:12].isdigit():
            return None
        reach = max(reach, int(entry[7:12]) + int(entry[3:7]))
    return dir_end + 1 + reach + 1
