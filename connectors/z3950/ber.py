"""A small BER codec: just what Z39.50 needs, and strict about what it reads.

Decoding turns bytes into a tree of ``Node`` values (tag class, tag number, constructed
flag, and either raw contents or children); the PDU layer picks fields out by tag. Strings
stay bytes here: Z39.50's InternationalString carries whatever charset the member speaks,
so only the layer that knows the library's encoding decodes them.

Both definite and indefinite lengths are read (Zebra and yaz-ztest send indefinite ones);
``message_length`` finds where one message ends in a byte stream, for framing.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from broker.kernel.errors import ProtocolError

if TYPE_CHECKING:
    import asyncio

# Tag classes Z39.50 uses (of four: application 1 and private 3 it has no need of).
UNIVERSAL, CONTEXT = 0, 2

# Universal tag numbers used by Z39.50.
BOOLEAN, INTEGER, BIT_STRING, OCTET_STRING, NULL, OID = 1, 2, 3, 4, 5, 6
EXTERNAL, SEQUENCE, VISIBLE_STRING, GENERAL_STRING = 8, 16, 26, 27

MAX_DEPTH = 64


class Truncated(ProtocolError):
    """The bytes end before the value does (for framing: wait for more)."""


# Not frozen: a Present answer has tens of thousands of nodes, and a frozen dataclass costs
# four times as much to create. Nothing mutates a Node after decoding.
@dataclass(slots=True)
class Node:
    cls: int
    number: int
    constructed: bool
    value: bytes = b""  # contents of a primitive node
    children: tuple[Node, ...] = ()

    def is_(self, cls: int, number: int) -> bool:
        return self.cls == cls and self.number == number

    def child(self, cls: int, number: int) -> Node | None:
        """The first child with this tag, or None."""
        for node in self.children:
            if node.cls == cls and node.number == number:
                return node
        return None

    def context(self, number: int) -> Node | None:
        return self.child(CONTEXT, number)

    def only(self) -> Node:
        """The single child of an explicitly tagged node."""
        if len(self.children) != 1:
            raise ProtocolError(f"expected one element inside [{self.number}], "
                                f"found {len(self.children)}")
        return self.children[0]

    # Primitive contents, interpreted.
    def as_int(self) -> int:
        if self.constructed or not self.value:
            raise ProtocolError(f"tag [{self.number}] is not an INTEGER")
        return int.from_bytes(self.value, "big", signed=True)

    def as_bool(self) -> bool:
        if self.constructed or len(self.value) != 1:
            raise ProtocolError(f"tag [{self.number}] is not a BOOLEAN")
        return self.value != b"\x00"

    def as_bytes(self) -> bytes:
        """Octets of a string, joining the segments of a constructed (chunked) string."""
        if not self.constructed:
            return self.value
        return b"".join(child.as_bytes() for child in self.children)

    def as_oid(self) -> tuple[int, ...]:
        return decode_oid(self.value)


# --- encoding -----------------------------------------------------------------------------


def _identifier(cls: int, number: int, constructed: bool) -> bytes:
    first = (cls << 6) | (0x20 if constructed else 0)
    if number < 31:
        return bytes([first | number])
    digits = []
    while True:
        digits.append(number & 0x7F)
        number >>= 7
        if not number:
            break
    digits.reverse()
    return bytes([first | 0x1F, *(d | 0x80 for d in digits[:-1]), digits[-1]])


def _length(size: int) -> bytes:
    if size < 0x80:
        return bytes([size])
    body = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def tlv(cls: int, number: int, contents: bytes, constructed: bool = False) -> bytes:
    return _identifier(cls, number, constructed) + _length(len(contents)) + contents


def seq(cls: int, number: int, parts: Iterable[bytes]) -> bytes:
    """A constructed value (SEQUENCE, explicit tag, implicitly tagged SEQUENCE)."""
    return tlv(cls, number, b"".join(parts), constructed=True)


def integer(value: int, cls: int = UNIVERSAL, number: int = INTEGER) -> bytes:
    size = max(1, (value.bit_length() + 8) // 8)
    return tlv(cls, number, value.to_bytes(size, "big", signed=True))


def boolean(value: bool, cls: int = UNIVERSAL, number: int = BOOLEAN) -> bytes:
    return tlv(cls, number, b"\xff" if value else b"\x00")


def octets(value: bytes, cls: int = UNIVERSAL, number: int = OCTET_STRING) -> bytes:
    return tlv(cls, number, value)


def null(cls: int = UNIVERSAL, number: int = NULL) -> bytes:
    return tlv(cls, number, b"")


def bit_string(bits: Iterable[int], cls: int = UNIVERSAL, number: int = BIT_STRING) -> bytes:
    """A BIT STRING with the given bit positions set (bit 0 is the most significant)."""
    positions = sorted(set(bits))
    size = positions[-1] // 8 + 1 if positions else 1
    data = bytearray(size)
    for bit in positions:
        data[bit // 8] |= 0x80 >> (bit % 8)
    unused = size * 8 - (positions[-1] + 1) if positions else 0
    return tlv(cls, number, bytes([unused]) + bytes(data))


def oid(value: tuple[int, ...], cls: int = UNIVERSAL, number: int = OID) -> bytes:
    if len(value) < 2:
        raise ValueError("an OBJECT IDENTIFIER needs at least two arcs")
    out = bytearray()
    for arc in (value[0] * 40 + value[1], *value[2:]):
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        out.extend(reversed(chunk))
    return tlv(cls, number, bytes(out))


@functools.lru_cache(maxsize=256)
def decode_oid(data: bytes) -> tuple[int, ...]:
    if not data:
        raise ProtocolError("empty OBJECT IDENTIFIER")
    arcs: list[int] = []
    value = 0
    for byte in data:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    if data[-1] & 0x80:
        raise ProtocolError("OBJECT IDENTIFIER ends inside an arc")
    first = arcs[0]
    head = (0, first) if first < 40 else (1, first - 40) if first < 80 else (2, first - 80)
    return (*head, *arcs[1:])


# --- decoding -----------------------------------------------------------------------------


def _header(data: bytes | memoryview, pos: int, end: int
            ) -> tuple[int, int, bool, int | None, int]:
    """(class, number, constructed, length or None if indefinite, contents start)."""
    if pos >= end:
        raise Truncated("truncated BER: missing identifier")
    first = data[pos]
    pos += 1
    cls, constructed, number = first >> 6, bool(first & 0x20), first & 0x1F
    if number == 0x1F:
        number = 0
        for _ in range(5):
            if pos >= end:
                raise Truncated("truncated BER: tag number cut off")
            byte = data[pos]
            pos += 1
            number = (number << 7) | (byte & 0x7F)
            if not byte & 0x80:
                break
        else:
            raise ProtocolError("BER tag number too large")
    if pos >= end:
        raise Truncated("truncated BER: missing length")
    first_len = data[pos]
    pos += 1
    if first_len < 0x80:
        return cls, number, constructed, first_len, pos
    if first_len == 0x80:
        if not constructed:
            raise ProtocolError("indefinite length on a primitive value")
        return cls, number, constructed, None, pos
    count = first_len & 0x7F
    if count > 4:
        raise ProtocolError(f"BER length of {count} bytes: larger than any message we accept")
    if pos + count > end:
        raise Truncated("truncated BER: length cut off")
    length = int.from_bytes(data[pos:pos + count], "big")
    return cls, number, constructed, length, pos + count


def decode(data: bytes) -> Node:
    """Decode exactly one BER value filling ``data``."""
    node, end = _decode(data, 0, len(data), 0)
    if end != len(data):
        raise ProtocolError(f"{len(data) - end} bytes left after the BER value")
    return node


def _decode(data: bytes, pos: int, end: int, depth: int) -> tuple[Node, int]:
    if depth > MAX_DEPTH:
        raise ProtocolError("BER nested too deeply")
    cls, number, constructed, length, pos = _header(data, pos, end)
    if length is not None:
        stop = pos + length
        if stop > end:
            raise Truncated("truncated BER: contents shorter than their length")
        if not constructed:
            return Node(cls, number, False, data[pos:stop]), stop
        children = []
        while pos < stop:
            child, pos = _decode(data, pos, stop, depth + 1)
            children.append(child)
        return Node(cls, number, True, b"", tuple(children)), stop
    children = []
    while True:
        if pos + 2 > end:
            raise Truncated("truncated BER: indefinite length never ends")
        if data[pos] == 0 and data[pos + 1] == 0:
            return Node(cls, number, True, b"", tuple(children)), pos + 2
        child, pos = _decode(data, pos, end, depth + 1)
        children.append(child)


def message_length(data: bytes | bytearray, limit: int) -> int | None:
    """Length of the first complete BER value in ``data``; None if more bytes are needed.

    Raises ProtocolError for bytes that cannot start a value, and for a message that
    declares (or grows) beyond ``limit`` bytes.
    """
    return Framer(limit).feed(data)


class Framer:
    """Finds where a message ends in a buffer that grows as bytes arrive.

    A definite length says so at once. An indefinite one is scanned child by child; the
    scan resumes after the last complete child when more bytes come, so a large answer
    arriving in many reads is walked about once, not once per read.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._resume = 0  # offset of the next top-level child not yet known complete

    def reset(self) -> None:
        self._resume = 0

    def feed(self, data: bytes | bytearray) -> int | None:
        view = memoryview(data)[:self.limit + 1]
        try:
            if self._resume:
                return self._scan_children(view, self._resume)
            _cls, _number, _constructed, length, start = _header(view, 0, len(view))
            if length is not None:
                if start + length > self.limit:
                    raise ProtocolError(f"message declares {start + length} bytes, over the "
                                        f"{self.limit}-byte cap")
                return start + length if start + length <= len(view) else None
            return self._scan_children(view, start)
        except Truncated:
            if len(data) > self.limit:
                raise ProtocolError(f"message larger than the {self.limit}-byte cap") from None
            return None
        finally:
            del view

    def _scan_children(self, view: memoryview, pos: int) -> int | None:
        while True:
            self._resume = pos
            if pos + 2 > len(view):
                raise Truncated("indefinite value not complete yet")
            if view[pos] == 0 and view[pos + 1] == 0:
                self._resume = 0
                return pos + 2
            pos = _span(view, pos, self.limit, 1)


def _span(data: bytes | memoryview, pos: int, limit: int, depth: int) -> int:
    """End offset of the value starting at ``pos``; Truncated if it is not all there."""
    if depth > MAX_DEPTH:
        raise ProtocolError("BER nested too deeply")
    _cls, _number, _constructed, length, start = _header(data, pos, len(data))
    if length is not None:
        if start + length > limit:
            raise ProtocolError(f"message declares {start + length} bytes, over the "
                                f"{limit}-byte cap")
        if start + length > len(data):
            raise Truncated("value not complete yet")
        return start + length
    pos = start
    while True:
        if pos + 2 > len(data):
            raise Truncated("indefinite value not complete yet")
        if data[pos] == 0 and data[pos + 1] == 0:
            return pos + 2
        pos = _span(data, pos, limit, depth + 1)


class ApduBuffer:
    """Complete Z39.50 APDUs cut off the bytes of a connection, as they arrive.

    Every APDU is a constructed, context-tagged value ([20]..[48]); bytes that start
    anything else are not Z39.50, and waiting for "the rest" of them would only time out.
    ``kind`` names what is expected in that error ("message", "request").
    """

    def __init__(self, limit: int, kind: str = "message") -> None:
        self._buffer = bytearray()
        self._framer = Framer(limit)
        self._kind = kind

    def add(self, chunk: bytes) -> None:
        self._buffer += chunk

    def take(self) -> bytes | None:
        """The next complete APDU, or None until more bytes come."""
        if not self._buffer:
            return None
        if self._buffer[0] & 0xE0 != 0xA0:
            raise ProtocolError(f"not a Z39.50 {self._kind} (first byte "
                                f"0x{self._buffer[0]:02x})")
        size = self._framer.feed(self._buffer)
        if size is None:
            return None
        message = bytes(self._buffer[:size])
        del self._buffer[:size]
        return message

    async def next_from(self, reader: asyncio.StreamReader, read_size: int) -> bytes | None:
        """The next complete APDU, reading ``reader`` as needed; None if it ends first."""
        while True:
            message = self.take()
            if message is not None:
                return message
            chunk = await reader.read(read_size)
            if not chunk:
                return None
            self.add(chunk)

    def clear(self) -> None:
        self._buffer.clear()
        self._framer.reset()
