"""The .nsac container: round trips, overhead, and a reader that refuses every kind of bad file."""

from __future__ import annotations

import random
import struct
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nsac.bitstream.container import Header, dumps, loads
from nsac.bitstream.varint import decode_varint, encode_varint
from nsac.errors import BitstreamError, VersionError

HEADER = Header(
    codec="lpcnet",
    config={},
    sample_rate_hz=16000,
    channels=1,
    num_samples=160000,
    source_rate_hz=16000,
    weights_id=bytes(range(8)),
    nsac_version=(0, 1, 0),
)


def _packets(seed: int, n: int, size: int | None) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(size if size else rng.randint(1, 40)) for _ in range(n)]


@given(st.integers(min_value=0, max_value=(1 << 63) - 1))
def test_varint_round_trip(value):
    raw = encode_varint(value)
    assert decode_varint(raw, 0) == (value, len(raw))


@pytest.mark.parametrize("size", [8, None])
def test_round_trip_with_lost_packets(size):
    packets: list[bytes | None] = _packets(1, 100, size)
    for index in (0, 17, 18, 99):
        packets[index] = None
    parsed = loads(dumps(HEADER, packets))
    assert parsed.header == HEADER and parsed.packets == packets


def test_all_lost_and_no_packets():
    for packets in ([None, None, None], []):
        assert loads(dumps(HEADER, packets)).packets == packets


def test_overhead_at_lpcnet_rate_is_under_two_percent():
    # 10 s at 1.6 kb/s: 250 packets of 8 bytes every 40 ms, 2000 bytes of payload
    data = dumps(HEADER, _packets(2, 250, 8))
    assert (len(data) - 2000) / 2000 <= 0.02


def test_overhead_at_6_kbps_fixed_packets_is_under_two_percent():
    header = Header("opus", {"application": "voip", "bitrate": 6000}, 16000, 1, 160000, 16000, None, (0, 1, 0))
    data = dumps(header, _packets(3, 500, 15))
    assert (len(data) - 7500) / 7500 <= 0.02


def test_header_json_and_source_rate():
    header = Header("opus", {"bitrate": 12000}, 48000, 2, 44100, 44100, None, (0, 1, 0))
    parsed = loads(dumps(header, _packets(4, 3, 30)))
    assert parsed.header.source_rate_hz == 44100 and parsed.header.to_json()["weights_id"] is None


def test_refuses_foreign_file():
    with pytest.raises(BitstreamError, match="magic"):
        loads(b"RIFF....WAVEfmt ")
    with pytest.raises(BitstreamError, match="magic"):
        loads(b"")


def test_refuses_unknown_version():
    data = bytearray(dumps(HEADER, _packets(5, 4, 8)))
    data[4] = 99
    data[-4:] = struct.pack("<I", zlib.crc32(bytes(data[:-4])))
    with pytest.raises(VersionError, match="format version 99"):
        loads(bytes(data))


def test_refuses_flipped_bit_and_truncation():
    data = dumps(HEADER, _packets(6, 50, 8))
    flipped = bytearray(data)
    flipped[40] ^= 0x10
    with pytest.raises(BitstreamError, match="checksum"):
        loads(bytes(flipped))
    for cut in (5, 20, len(data) - 1):
        with pytest.raises(BitstreamError):
            loads(data[:cut])


def test_refuses_bad_payload_size_even_with_valid_checksum():
    data = bytearray(dumps(HEADER, _packets(7, 10, 8))[:-4])
    data += b"\x01\x02\x03"  # three stray bytes after ten 8-byte packets
    data += struct.pack("<I", zlib.crc32(bytes(data)))
    with pytest.raises(BitstreamError, match="whole number"):
        loads(bytes(data))


@settings(max_examples=300, deadline=1000)
@given(st.data())
def test_mutated_files_give_only_bitstream_errors(data):
    packets = _packets(data.draw(st.integers(0, 1000)), data.draw(st.integers(0, 30)),
                       data.draw(st.sampled_from([8, None])))
    raw = bytearray(dumps(HEADER, packets))
    for _ in range(data.draw(st.integers(1, 4))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    raw = raw[: data.draw(st.integers(0, len(raw)))]
    if data.draw(st.booleans()):  # re-seal so the parser behind the checksum is exercised too
        raw = raw[:-4] + struct.pack("<I", zlib.crc32(bytes(raw[:-4]))) if len(raw) >= 9 else raw
    try:
        loads(bytes(raw))
    except BitstreamError:
        pass
