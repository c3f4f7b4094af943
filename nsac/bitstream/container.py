"""The .nsac container: header and packets to bytes and back, with every check a reader owes its user.

The layout is specified in FORMAT.md beside this file, which is normative; this module implements format
version 1. Little-endian throughout, no pickle, no eval: the only structured field is a small JSON object.
"""

from __future__ import annotations

import json
import struct
import zlib
from dataclasses import dataclass, field
from typing import Any

from nsac.bitstream.varint import decode_varint, encode_varint
from nsac.errors import BitstreamError, VersionError

MAGIC = b"NSAC"
FORMAT_VERSION = 1
#: the versions this reader understands
READABLE_VERSIONS = (1,)
#: bytes of the weights id: the first 8 bytes of the weights file's sha256
WEIGHTS_ID_BYTES = 8
_CRC_BYTES = 4
#: sanity bounds that keep a corrupt header from making a reader allocate or loop without end
MAX_SAMPLE_RATE_HZ = 768_000
MAX_CHANNELS = 64
MAX_NAME_BYTES = 64
MAX_CONFIG_BYTES = 4096
#: packet_layout value for variable-size packets; k > 0 means every packet has k bytes
_VARIABLE_LAYOUT = 0


@dataclass(frozen=True)
class Header:
    """Everything a decoder needs besides the packets.

    sample_rate_hz is the codec's rate; source_rate_hz and num_samples describe the audio the encoder was
    given, which the decoder returns (resampled back when the two rates differ).
    """

    codec: str
    config: dict[str, Any]
    sample_rate_hz: int
    channels: int
    num_samples: int
    source_rate_hz: int
    weights_id: bytes | None = None
    nsac_version: tuple[int, int, int] = (0, 0, 0)

    def to_json(self) -> dict[str, Any]:
        return {
            "codec": self.codec,
            "config": self.config,
            "sample_rate_hz": self.sample_rate_hz,
            "source_rate_hz": self.source_rate_hz,
            "channels": self.channels,
            "num_samples": self.num_samples,
            "weights_id": self.weights_id.hex() if self.weights_id else None,
            "nsac_version": ".".join(str(v) for v in self.nsac_version),
        }


@dataclass(frozen=True)
class NsacFile:
    header: Header
    packets: list[bytes | None]
    format_version: int = FORMAT_VERSION
    #: bytes that are not packet payload: magic, header, lengths, loss list, checksum
    overhead_bytes: int = field(default=0, compare=False)


def _encode_str(text: str) -> bytes:
    raw = text.encode("utf-8")
    return encode_varint(len(raw)) + raw


def _fixed_packet_bytes(packets: list[bytes | None]) -> int | None:
    sizes = {len(p) for p in packets if p is not None}
    if len(sizes) == 1 and 0 not in sizes:
        return sizes.pop()
    return None


def dumps(header: Header, packets: list[bytes | None]) -> bytes:
    """Serialise a header and its packets (None = lost) into the bytes of a .nsac file."""
    config = json.dumps(header.config, sort_keys=True, separators=(",", ":"), allow_nan=False)
    config_raw = b"" if config == "{}" else config.encode("utf-8")
    weights = header.weights_id or b""
    if weights and len(weights) != WEIGHTS_ID_BYTES:
        raise ValueError(f"weights_id must be {WEIGHTS_ID_BYTES} bytes, got {len(weights)}")
    source_rate = 0 if header.source_rate_hz == header.sample_rate_hz else header.source_rate_hz
    out = bytearray(MAGIC)
    out.append(FORMAT_VERSION)
    out += _encode_str(header.codec)
    out += encode_varint(len(config_raw)) + config_raw
    out += encode_varint(len(weights)) + weights
    for value in (header.sample_rate_hz, source_rate, header.channels, header.num_samples, *header.nsac_version):
        out += encode_varint(value)
    packet_bytes = _fixed_packet_bytes(packets)
    if packet_bytes is not None:
        # fixed layout: no length per packet; lost packets are listed once, as gaps between their indices
        out += encode_varint(packet_bytes)
        lost = [i for i, p in enumerate(packets) if p is None]
        out += encode_varint(len(lost))
        previous = -1
        for index in lost:
            out += encode_varint(index - previous - 1)
            previous = index
        for packet in packets:
            if packet is not None:
                out += packet
    else:
        out += encode_varint(_VARIABLE_LAYOUT)
        for packet in packets:
            out += encode_varint(0 if packet is None else len(packet) + 1)
            if packet is not None:
                out += packet
    out += struct.pack("<I", zlib.crc32(out))
    return bytes(out)


class _Reader:
    """A cursor over the header bytes that turns every overrun into a BitstreamError."""

    def __init__(self, data: bytes, offset: int, end: int) -> None:
        self.data, self.offset, self.end = data, offset, end

    def varint(self, what: str, *, maximum: int) -> int:
        value, self.offset = decode_varint(self.data[: self.end], self.offset)
        if value > maximum:
            raise BitstreamError(f"malformed header: {what}={value} exceeds {maximum}")
        return value

    def take(self, n: int, what: str) -> bytes:
        if self.offset + n > self.end:
            raise BitstreamError(f"truncated: the data ends inside the {what}")
        chunk = self.data[self.offset : self.offset + n]
        self.offset += n
        return chunk


def loads(data: bytes) -> NsacFile:
    """Parse .nsac bytes; BitstreamError (or VersionError) with a one-line reason for anything wrong."""
    data = bytes(data)
    if len(data) < len(MAGIC) or data[: len(MAGIC)] != MAGIC:
        raise BitstreamError("not an .nsac file: it does not start with the NSAC magic")
    if len(data) < len(MAGIC) + 1:
        raise BitstreamError("truncated: the file ends before its format version")
    version = data[len(MAGIC)]
    if version not in READABLE_VERSIONS:
        raise VersionError(
            f"format version {version} is not readable by this nsac (reads {READABLE_VERSIONS}); "
            "upgrade nsac to decode it"
        )
    if len(data) < len(MAGIC) + 1 + _CRC_BYTES:
        raise BitstreamError("truncated: the file is shorter than its fixed fields")
    (stored_crc,) = struct.unpack("<I", data[-_CRC_BYTES:])
    if zlib.crc32(data[:-_CRC_BYTES]) != stored_crc:
        raise BitstreamError("checksum mismatch: the file is corrupt or truncated")
    end = len(data) - _CRC_BYTES
    reader = _Reader(data, len(MAGIC) + 1, end)
    try:
        codec = reader.take(reader.varint("codec name length", maximum=MAX_NAME_BYTES), "codec name").decode("ascii")
        config_raw = reader.take(reader.varint("config length", maximum=MAX_CONFIG_BYTES), "codec config")
        config = json.loads(config_raw) if config_raw else {}
    except (UnicodeDecodeError, ValueError) as exc:
        raise BitstreamError(f"malformed header: {exc}") from None
    if not isinstance(config, dict):
        raise BitstreamError("malformed header: the codec config is not a JSON object")
    n_weights = reader.varint("weights id length", maximum=WEIGHTS_ID_BYTES)
    if n_weights not in (0, WEIGHTS_ID_BYTES):
        raise BitstreamError(f"malformed header: weights id of {n_weights} bytes")
    weights_id = reader.take(n_weights, "weights id") or None
    sample_rate = reader.varint("sample rate", maximum=MAX_SAMPLE_RATE_HZ)
    source_rate = reader.varint("source rate", maximum=MAX_SAMPLE_RATE_HZ) or sample_rate
    channels = reader.varint("channels", maximum=MAX_CHANNELS)
    if sample_rate == 0 or channels == 0:
        raise BitstreamError("malformed header: zero sample rate or channels")
    num_samples = reader.varint("number of samples", maximum=1 << 40)
    nsac_version = tuple(reader.varint("nsac version", maximum=1 << 16) for _ in range(3))
    header = Header(codec, config, sample_rate, channels, num_samples, source_rate, weights_id, nsac_version)
    packets = _read_packets(reader)
    payload = sum(len(p) for p in packets if p is not None)
    return NsacFile(header, packets, version, overhead_bytes=len(data) - payload)


def _read_packets(reader: _Reader) -> list[bytes | None]:
    packet_bytes = reader.varint("packet layout", maximum=1 << 24)
    packets: list[bytes | None] = []
    if packet_bytes == _VARIABLE_LAYOUT:
        while reader.offset < reader.end:
            code = reader.varint("packet length", maximum=1 << 24)
            packets.append(None if code == 0 else reader.take(code - 1, "packet"))
        return packets
    n_lost = reader.varint("lost packet count", maximum=reader.end)
    lost, index = [], -1
    for _ in range(n_lost):
        index += reader.varint("lost packet gap", maximum=reader.end) + 1
        lost.append(index)
    payload = reader.end - reader.offset
    if payload % packet_bytes:
        raise BitstreamError(f"truncated: {payload} payload bytes are not a whole number of {packet_bytes}-byte packets")
    n_packets = payload // packet_bytes + n_lost
    if lost and lost[-1] >= n_packets:
        raise BitstreamError("malformed: a lost packet index lies past the last packet")
    lost_set = set(lost)
    for i in range(n_packets):
        packets.append(None if i in lost_set else reader.take(packet_bytes, "packet"))
    return packets
