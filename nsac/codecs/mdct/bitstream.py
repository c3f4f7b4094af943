"""The mdct codec's packet (one per frame): a two-byte header with a check, then range-coded data.

Packet layout, version `BITSTREAM_VERSION`::

      byte 0              byte 1      [byte 2, short frames]   then 4k bytes (k >= 1): range coder words
    +------+---+--------+-----------+-----+--------------+   +----------------------------------------------+
    | type |M/S| check  |  check    |  0  |   groups     |   | energies, steps     | coefficients           |
    | 7..6 | 5 | 12..8  |  7..0     |  7  |   6..0       |   | Laplace, n_ch x 2 x | Laplace, one per       |
    +------+---+--------+-----------+-----+--------------+   | n_bands             | position of the bands  |
                                                              |                     | with SNR index >= 1    |
                                                              +----------------------------------------------+
      type:   window type 0 long, 1 start, 2 short, 3 stop
      M/S:    1 if the two channels are mid and side (always 0 for mono)
      check:  13 bits of the CRC-32 of byte 0's top three bits and every byte after byte 1: a damaged or
              foreign packet passes it once in 8192
      groups: bit j set if short block j + 1 starts a new group (bit 7 is 0)
      words:  the range coder's 32-bit words, little-endian (:mod:`nsac.bitstream.entropy`), possibly followed
              by zero words that stuff the packet to the constant rate (the decoder never reads them)

The band layout (how many bands, which coefficients each holds) follows from the window type and the
groups (:mod:`nsac.codecs.mdct.framing`); per channel the energy indices then the step indices of every
band (:mod:`nsac.codecs.mdct.coefficient_coding`); then the coefficients of every band whose SNR index
(from its energy and step index, :mod:`nsac.codecs.mdct.quantizer`) is >= 1, channel after channel, in
coding order. A bad check, a wrong length, a set reserved bit or values out of range raise BitstreamError.
The header is raw bits rather than range-coded symbols because parsing it costs nothing that way. Bump
`BITSTREAM_VERSION` whenever any of this, or a constant of the quantizer or of the coefficient coding that
the decoder uses, changes.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from nsac.bitstream.entropy import RangeDecoder, RangeEncoder
from nsac.codecs.mdct import coefficient_coding as _cc
from nsac.codecs.mdct import quantizer as _q
from nsac.codecs.mdct.framing import N_BLOCKS, Geometry
from nsac.dsp.mdct import WINDOW_TYPES
from nsac.errors import BitstreamError

BITSTREAM_VERSION = 1
HEADER_BYTES = 2
WORD_BYTES = 4
CHECK_BITS = 13
_CHECK_MASK = (1 << CHECK_BITS) - 1
_TYPE_SHIFT, _MID_SIDE_BIT = 6, 0x20
#: the range coder's flush beyond the ideal code length of its symbols, in bits: 16 on average, at most a word
#: and its alignment
FLUSH_AVERAGE_BITS, FLUSH_MAX_BITS = 16, 33
#: bits of a packet besides its range-coded symbols (short frames: one byte more), on average and at most
PACKET_OVERHEAD_BITS = 8 * HEADER_BYTES + FLUSH_AVERAGE_BITS
PACKET_MAX_OVERHEAD_BITS = 8 * HEADER_BYTES + FLUSH_MAX_BITS


@dataclass
class FrameData:
    """The content of one packet."""

    window_type: str
    mid_side: bool
    groups: tuple[int, ...]
    """Short frames: the lengths of the groups of short blocks (sum 8); () otherwise."""
    energy: list[np.ndarray]
    """Per channel, the energy index of each band."""
    step: list[np.ndarray]
    """Per channel, the step index of each band."""
    values: list[np.ndarray]
    """Per channel, the quantized coefficients of its bands with SNR index >= 1, in coding order."""

    def snr(self, channel: int) -> np.ndarray:
        """SNR index of each band of a channel, 0 for silent and noise-filled bands."""
        e = self.energy[channel]
        s = _q.snr_index(e, self.step[channel])
        return np.where(e > _q.ENERGY_MIN_INDEX, np.maximum(s, 0), 0)


def groups_to_code(groups: tuple[int, ...]) -> int:
    code, block = 0, 0
    for length in groups[:-1]:
        block += length
        code |= 1 << (block - 1)
    return code


def code_to_groups(code: int) -> tuple[int, ...]:
    groups, length = [], 1
    for j in range(N_BLOCKS - 1):
        if code >> j & 1:
            groups.append(length)
            length = 1
        else:
            length += 1
    groups.append(length)
    return tuple(groups)


def _quantized_positions(widths: np.ndarray, snr: np.ndarray) -> np.ndarray:
    """SNR index of each coded position of the bands with SNR index >= 1."""
    return np.repeat(snr, np.where(snr >= 1, widths, 0))


def _check(first_byte: int, rest: bytes) -> int:
    return zlib.crc32(rest, zlib.crc32(bytes([first_byte & 0xE0]))) & _CHECK_MASK


def write_packet(frame: FrameData, geometry: Geometry, *, padding_words: int = 0) -> bytes:
    """The bytes of one packet, stuffed with `padding_words` zero words after the coded data."""
    layout = geometry.layout(frame.window_type, frame.groups)
    short = frame.window_type == "short"
    enc = RangeEncoder()
    _cc.encode_side(enc, frame.energy, frame.step, short=short)
    positions = [_quantized_positions(layout.widths, frame.snr(c)) for c in range(len(frame.energy))]
    _cc.encode_values(enc, np.concatenate(frame.values), np.concatenate(positions))
    rest = (bytes([groups_to_code(frame.groups)]) if short else b"") + enc.get_bytes()
    rest += bytes(WORD_BYTES * padding_words)
    first = WINDOW_TYPES.index(frame.window_type) << _TYPE_SHIFT | (_MID_SIDE_BIT if frame.mid_side else 0)
    check = _check(first, rest)
    return bytes([first | check >> 8, check & 0xFF]) + rest


def read_packet(packet: bytes, geometry: Geometry, *, channels: int) -> FrameData:
    """Parse one packet; BitstreamError if it is damaged, truncated or not an mdct packet of this geometry."""
    if len(packet) < HEADER_BYTES + WORD_BYTES:
        raise BitstreamError(f"mdct packet of {len(packet)} bytes is shorter than any the encoder writes; "
                             f"it is truncated or foreign")
    first = packet[0]
    window_type = WINDOW_TYPES[first >> _TYPE_SHIFT]
    short = window_type == "short"
    rest = bytes(packet[HEADER_BYTES:])
    if (len(rest) - short) % WORD_BYTES or len(rest) - short < WORD_BYTES:
        raise BitstreamError(f"mdct packet of {len(packet)} bytes: its data is not whole 32-bit words; it is "
                             f"truncated or foreign")
    if _check(first, rest) != ((first & 0x1F) << 8 | packet[1]):
        raise BitstreamError("mdct packet: check mismatch; the packet is damaged")
    mid_side = bool(first & _MID_SIDE_BIT)
    if mid_side and channels != 2:
        raise BitstreamError("mdct packet: mid/side flag set in a mono stream; the packet is foreign")
    groups: tuple[int, ...] = ()
    if short:
        if rest[0] & 0x80:
            raise BitstreamError("mdct packet: reserved bit set in the groups byte; the packet is foreign")
        groups = code_to_groups(rest[0])
    layout = geometry.layout(window_type, groups)
    dec = RangeDecoder(rest[short:])
    energy, step = _cc.decode_side(dec, n_bands=layout.n_bands, n_channels=channels, short=short)
    frame = FrameData(window_type=window_type, mid_side=mid_side, groups=groups, energy=energy, step=step,
                      values=[])
    snr = [frame.snr(c) for c in range(channels)]
    if max(int(s.max(initial=0)) for s in snr) > _q.SNR_MAX_INDEX:
        raise BitstreamError(f"mdct packet: an SNR index above {_q.SNR_MAX_INDEX}; the packet is corrupt")
    positions = [_quantized_positions(layout.widths, s) for s in snr]
    flat = _cc.decode_values(dec, np.concatenate(positions))
    frame.values = np.split(flat, np.cumsum([p.size for p in positions])[:-1])
    return frame


__all__ = ["BITSTREAM_VERSION", "PACKET_MAX_OVERHEAD_BITS", "PACKET_OVERHEAD_BITS", "WORD_BYTES", "FrameData",
           "code_to_groups", "groups_to_code", "read_packet", "write_packet"]
