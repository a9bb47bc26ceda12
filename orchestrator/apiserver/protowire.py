"""The protocol buffers wire format, as far as Kubernetes' messages use it (pure).

A message is a sequence of (key, value) pairs; the key is `field_number << 3 | wire_type`, as a
varint. Wire types: 0 varint, 1 fixed 64-bit, 2 length-delimited (strings, bytes, messages,
packed repeated scalars), 5 fixed 32-bit. Negative int32/int64 values are sent as ten-byte
two's-complement varints (proto2 `int32`/`int64`, which is what Kubernetes' generated.proto uses).

Readers raise `WireError` on anything truncated or out of range; they never read past the buffer.
"""

from __future__ import annotations

import struct
from typing import Iterator

VARINT, FIXED64, LENGTH, FIXED32 = 0, 1, 2, 5
MAX_VARINT_BYTES = 10


class WireError(ValueError):
    """The bytes are not a well-formed protobuf message."""


def read_varint(data: bytes, pos: int) -> tuple[int, int]:
    value, shift = 0, 0
    for i in range(pos, min(pos + MAX_VARINT_BYTES, len(data))):
        byte = data[i]
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value & 0xFFFFFFFFFFFFFFFF, i + 1
        shift += 7
    raise WireError("a varint is truncated or longer than 10 bytes")


def iter_fields(data: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """(field number, wire type, value): an int for varints and fixed-size values (raw bits), bytes
    for length-delimited ones."""
    pos, end = 0, len(data)
    while pos < end:
        key, pos = read_varint(data, pos)
        number, wire = key >> 3, key & 7
        if number == 0 or number > 536_870_911:
            raise WireError(f"field number {number} is out of range")
        if wire == VARINT:
            value, pos = read_varint(data, pos)
        elif wire == LENGTH:
            length, pos = read_varint(data, pos)
            if length > end - pos:
                raise WireError(f"field {number} claims {length} bytes, {end - pos} are left")
            value, pos = data[pos:pos + length], pos + length
        elif wire in (FIXED64, FIXED32):
            size = 8 if wire == FIXED64 else 4
            if pos + size > end:
                raise WireError(f"field {number} is truncated")
            value, pos = int.from_bytes(data[pos:pos + size], "little"), pos + size
        else:
            raise WireError(f"field {number} has wire type {wire}, which Kubernetes never sends")
        yield number, wire, value


def signed(value: int, bits: int) -> int:
    """The two's-complement reading of a varint's low `bits` bits (Go's int32(v) / int64(v))."""
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


def unpack_varints(data: bytes) -> list[int]:
    """A packed repeated varint field's values."""
    out, pos = [], 0
    while pos < len(data):
        value, pos = read_varint(data, pos)
        out.append(value)
    return out


def as_double(bits: int) -> float:
    return struct.unpack("<d", bits.to_bytes(8, "little"))[0]


# --- writing ------------------------------------------------------------------------------------


def varint(value: int) -> bytes:
    value &= 0xFFFFFFFFFFFFFFFF  # negative numbers: two's complement in 64 bits
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def key(number: int, wire: int) -> bytes:
    return varint(number << 3 | wire)


def field_varint(number: int, value: int) -> bytes:
    return key(number, VARINT) + varint(value)


def field_bytes(number: int, payload: bytes) -> bytes:
    return key(number, LENGTH) + varint(len(payload)) + payload


def field_double(number: int, value: float) -> bytes:
    return key(number, FIXED64) + struct.pack("<d", value)
