"""The BER codec: round trips, indefinite lengths, framing, and refusal of bad bytes."""

from __future__ import annotations

import pytest

from broker.kernel.errors import ProtocolError
from connectors.z3950 import ber
from connectors.z3950.ber import CONTEXT, UNIVERSAL


@pytest.mark.parametrize("value", [0, 1, 127, 128, 255, 256, -1, -129, 2**31, 10**12])
def test_integer_round_trip(value):
    assert ber.decode(ber.integer(value)).as_int() == value


def test_high_tag_numbers_and_long_lengths():
    payload = b"x" * 300
    node = ber.decode(ber.octets(payload, CONTEXT, 216))
    assert (node.cls, node.number, node.value) == (CONTEXT, 216, payload)
    assert ber.octets(payload, CONTEXT, 216)[:5] == b"\x9f\x81\x58\x82\x01"


@pytest.mark.parametrize("arcs", [(1, 2, 840, 10003, 5, 10), (1, 0, 10646, 1, 0, 8),
                                  (2, 999, 1), (0, 9, 2342)])
def test_oid_round_trip(arcs):
    assert ber.decode(ber.oid(arcs)).as_oid() == arcs


def test_oid_known_encoding():
    # USMARC's record syntax OID as every Z39.50 implementation sends it.
    assert ber.oid((1, 2, 840, 10003, 5, 10)) == bytes.fromhex("06072a8648ce13050a")


def test_bit_string_sets_bits_from_the_most_significant():
    encoded = ber.bit_string([0, 1, 14], CONTEXT, 4)
    assert encoded == bytes.fromhex("8403" + "01" + "c002")


def test_indefinite_length_is_decoded_and_framed():
    inner = ber.integer(5, CONTEXT, 23) + ber.boolean(True, CONTEXT, 22)
    message = b"\xb7\x80" + inner + b"\x00\x00"  # [23] constructed, indefinite length
    node = ber.decode(message)
    count, status = node.context(23), node.context(22)
    assert count is not None and status is not None
    assert count.as_int() == 5 and status.as_bool() is True
    assert ber.message_length(message + b"\xb7", 1 << 20) == len(message)
    for cut in range(1, len(message)):
        assert ber.message_length(message[:cut], 1 << 20) is None


def test_nested_indefinite_lengths():
    message = b"\xb9\x80\xbc\x80" + ber.integer(1) + b"\x00\x00\x00\x00"
    assert ber.message_length(message, 1 << 20) == len(message)
    assert ber.decode(message).children[0].children[0].as_int() == 1


def test_constructed_string_segments_are_joined():
    chunked = b"\x24\x80" + ber.octets(b"abc") + ber.octets(b"def") + b"\x00\x00"
    assert ber.decode(chunked).as_bytes() == b"abcdef"


def test_definite_length_over_the_cap_is_refused_before_reading_it():
    header = b"\xb5\x84\x7f\xff\xff\xff"
    with pytest.raises(ProtocolError, match="cap"):
        ber.message_length(header, 1 << 20)


def test_indefinite_message_growing_past_the_cap_is_refused():
    endless = b"\xb5\x80" + ber.octets(b"x" * 100) * 50
    with pytest.raises(ProtocolError, match="cap"):
        ber.message_length(endless, 1000)


@pytest.mark.parametrize("data", [b"", b"\x30", b"\x30\x05\x02\x01", b"\x04\x80abc",
                                  b"\x30\x85\x01\x02\x03\x04\x05", b"\x1f\xff\xff\xff\xff\xff"])
def test_malformed_ber_raises_protocol_error(data):
    with pytest.raises(ProtocolError):
        ber.decode(data)


def test_trailing_bytes_are_an_error():
    with pytest.raises(ProtocolError, match="left after"):
        ber.decode(ber.integer(1) + b"\x00")


def test_deep_nesting_is_refused():
    data = b"".join(b"\x30\x80" for _ in range(100)) + b"\x00\x00" * 100
    with pytest.raises(ProtocolError, match="deeply"):
        ber.decode(data)


def test_node_accessors_check_types():
    node = ber.decode(ber.seq(UNIVERSAL, ber.SEQUENCE, [ber.integer(1)]))
    with pytest.raises(ProtocolError):
        node.as_int()
    with pytest.raises(ProtocolError):
        ber.decode(ber.integer(300)).as_bool()


def test_framer_resumes_on_a_growing_buffer():
    """Bytes arrive a few at a time into one bytearray (as from a socket): the framer must
    find the end exactly when it arrives, and never pin the buffer against growing."""
    children = b"".join(ber.octets(bytes([i]) * 300) for i in range(20))
    message = b"\xb9\x80" + children + b"\x00\x00"
    follower = ber.integer(7, CONTEXT, 1)
    framer = ber.Framer(1 << 20)
    buffer = bytearray()
    found = None
    for i in range(0, len(message) + len(follower), 37):
        buffer += (message + follower)[i:i + 37]
        found = framer.feed(buffer)
        if found is not None:
            break
    assert found == len(message)
    assert len(buffer) >= len(message)
    # What came after the message is the start of the next one, framed from scratch.
    del buffer[:found]
    assert follower.startswith(bytes(buffer))
    buffer += follower[len(buffer):]
    assert framer.feed(buffer) == len(follower)
