"""Unsigned LEB128 varints: 7 bits a byte, low bits first, high bit set on every byte but the last."""

from __future__ import annotations

from nsac.errors import BitstreamError

#: the most bytes a varint may take: enough for any 63-bit value, and a bound on how long a reader loops
MAX_VARINT_BYTES = 9


def encode_varint(value: int) -> bytes:
    if value < 0 or value >= 1 << (7 * MAX_VARINT_BYTES):
        raise ValueError(f"varint value {value} out of range")
    out = bytearray()
    while True:
        low7 = value & 0x7F
        value >>= 7
        if value:
            out.append(low7 | 0x80)
        else:
            out.append(low7)
            return bytes(out)


def decode_varint(data: bytes | memoryview, offset: int) -> tuple[int, int]:
    """Return (value, offset just past it); BitstreamError when the data ends first or it is too long."""
    value = 0
    for i in range(MAX_VARINT_BYTES):
        if offset + i >= len(data):
            raise BitstreamError("truncated: the data ends inside a length or count field")
        byte = data[offset + i]
        value |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            return value, offset + i + 1
    raise BitstreamError(f"malformed: a varint runs past {MAX_VARINT_BYTES} bytes")
