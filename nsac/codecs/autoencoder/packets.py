"""The autoencoder codec's packet: the RVQ codes of F frames, fixed-length or range-coded, told apart by size.

One packet carries F frames (F = frames_per_packet; 20 ms each at 16 kHz with a 320-sample hop) of n_q codes
of b bits (b = log2 K, 10 for 1024-entry codebooks), each frame led by a pitch code of p bits when the
weights send the pitch (p = model.pitch_bits; none when p = 0). Two layouts, never mixed within a packet::

    fixed-length, L = ceil(F * (p + n_q * b) / 8) bytes:
        bit 0 (MSB of byte 0) ...
        | frame 0: [pitch (p bits)] code 0 (b bits) | code 1 | ... | code n_q-1 | frame 1: ... | zero bits |

    range-coded, fewer than L bytes:
        the range coder's 32-bit words (little-endian, nsac.bitstream.entropy) with trailing zero bytes
        dropped; first the F pitch codes (uniform: p bits each), then the codes frame by frame, codebook i
        coded with frequency table i (learned code counts)

The decoder knows L from the codec's bitrate and packet length, so the size alone says the layout:
``len == L`` fixed-length, ``len < L`` range-coded, ``len > L`` corrupt. The encoder range-codes a packet
only when that is shorter than L and decodes back to the same codes (checked on every packet), so a packet
is never longer than the fixed layout and the bitrate never exceeds the nominal one.

Frequency tables come from the quantiser's EMA code counts (`ResidualVectorQuantizer.usage`) through
`pmf_to_freqs` (16-bit tables, every code at least one count): integers, identical on every machine that
reads the same weights. Weights without counts (all zero) give no tables: every packet is fixed-length.
"""

from __future__ import annotations

import math

import numpy as np

from nsac.bitstream.entropy import RangeDecoder, RangeEncoder
from nsac.bitstream.entropy_models import TABLE_PRECISION_BITS, pmf_to_freqs
from nsac.errors import BitstreamError, ParameterError

#: the range coder writes whole words of this many bytes; dropped trailing zero bytes are put back
WORD_BYTES = 4


def tables_from_counts(counts: np.ndarray) -> np.ndarray | None:
    """Integer frequency tables (N, K) from per-codebook code counts (N, K); None when a row has no counts."""
    counts = np.asarray(counts, dtype=np.float64)
    if counts.ndim != 2 or not np.all(np.isfinite(counts)) or np.any(counts < 0):
        raise ParameterError(f"code counts must be finite, nonnegative, shape (codebooks, entries); got "
                             f"shape {counts.shape}")
    if np.any(counts.sum(axis=1) <= 0):
        return None
    return pmf_to_freqs(counts, precision_bits=TABLE_PRECISION_BITS)


class PacketFormat:
    """Writes and reads one packet of codes (n_q, frames_per_packet); see the module docstring.

    Parameters
    ----------
    n_q : codebooks per frame
    frames_per_packet : F
    codebook_size : K, a power of two (the fixed layout spends log2 K bits per code)
    tables : (>= n_q, K) integer frequency tables, or None for fixed-length packets only
    pitch_bits : p, bits of the pitch code that leads each frame (0: no pitch)
    """

    def __init__(self, *, n_q: int, frames_per_packet: int, codebook_size: int,
                 tables: np.ndarray | None = None, pitch_bits: int = 0) -> None:
        if n_q < 1 or frames_per_packet < 1:
            raise ParameterError(f"n_q={n_q} and frames_per_packet={frames_per_packet} must be >= 1")
        if codebook_size < 2 or codebook_size & (codebook_size - 1):
            raise ParameterError(f"codebook_size={codebook_size} must be a power of two for fixed-length codes")
        self.n_q, self.frames = int(n_q), int(frames_per_packet)
        self.codebook_size = int(codebook_size)
        self.bits_per_code = int(math.log2(codebook_size))
        if not 0 <= pitch_bits <= 16:
            raise ParameterError(f"pitch_bits={pitch_bits} must lie in 0..16")
        self.pitch_bits = int(pitch_bits)
        # bits of each row of a frame: the pitch code (if sent), then the n_q codes
        self._widths = np.array([self.pitch_bits] * bool(self.pitch_bits) + [self.bits_per_code] * self.n_q)
        self.payload_bits = self.frames * int(self._widths.sum())
        self.fixed_bytes = -(-self.payload_bits // 8)
        self.tables: np.ndarray | None = None
        if tables is not None:
            tables = np.asarray(tables)
            if tables.ndim != 2 or tables.shape[0] < n_q or tables.shape[1] != codebook_size:
                raise ParameterError(f"tables of shape {tables.shape}; expected (>= {n_q}, {codebook_size})")
            # one table per symbol, frame-major: (frames, n_q, K)
            self.tables = np.ascontiguousarray(np.broadcast_to(tables[:n_q], (self.frames, n_q, codebook_size)))

    # --- fixed-length -----------------------------------------------------------------------------------
    def _bit_grid(self) -> tuple[np.ndarray, np.ndarray]:
        """Shifts MSB first (max width,) and the mask (rows, max width) of the bits each row keeps."""
        shifts = np.arange(int(self._widths.max()) - 1, -1, -1)
        return shifts, shifts[None, :] < self._widths[:, None]

    def _pack(self, rows: np.ndarray) -> bytes:
        shifts, keep = self._bit_grid()
        bits = (rows.T[..., None] >> shifts) & 1  # (frames, rows, max width), frame-major, MSB first
        return np.packbits(bits[:, keep].astype(np.uint8).ravel()).tobytes()

    def _unpack(self, packet: bytes) -> np.ndarray:
        bits = np.unpackbits(np.frombuffer(packet, dtype=np.uint8))
        if np.any(bits[self.payload_bits :]):
            raise BitstreamError("autoencoder packet: its padding bits are not zero; the packet is corrupt")
        shifts, keep = self._bit_grid()
        grid = np.zeros((self.frames, *keep.shape), dtype=np.int64)
        grid[:, keep] = bits[: self.payload_bits].reshape(self.frames, -1)
        return (grid @ (1 << shifts)).T  # (rows, frames)

    # --- range-coded ------------------------------------------------------------------------------------
    def _range_encode(self, rows: np.ndarray) -> bytes:
        encoder = RangeEncoder()
        if self.pitch_bits:
            encoder.encode_categorical(rows[0], np.ones(2**self.pitch_bits, dtype=np.int64))
        encoder.encode_categorical(rows[-self.n_q :].T, self.tables)
        return encoder.get_bytes().rstrip(b"\0")

    def _range_decode(self, packet: bytes) -> np.ndarray:
        if self.tables is None:
            raise BitstreamError(f"autoencoder packet of {len(packet)} bytes is shorter than the fixed "
                                 f"{self.fixed_bytes} bytes, but these weights have no entropy-coding tables: "
                                 "the packet is corrupt or belongs to other weights")
        padded = bytes(packet) + bytes(-len(packet) % WORD_BYTES)
        decoder = RangeDecoder(padded)
        rows = []
        if self.pitch_bits:
            uniform = np.ones(2**self.pitch_bits, dtype=np.int64)
            rows.append(decoder.decode_categorical(uniform, shape=(1, self.frames)))
        rows.append(decoder.decode_categorical(self.tables, shape=(self.frames, self.n_q)).T)
        return np.concatenate(rows)

    # --- the packet -------------------------------------------------------------------------------------
    def write(self, codes: np.ndarray, pitch: np.ndarray | None = None) -> bytes:
        """The packet of codes (n_q, frames_per_packet), each in 0..K-1, and, when the format has pitch_bits,
        the frames' pitch codes (frames_per_packet,): range-coded when that is shorter."""
        codes = np.asarray(codes, dtype=np.int64)
        if codes.shape != (self.n_q, self.frames):
            raise ParameterError(f"codes of shape {codes.shape}; expected ({self.n_q}, {self.frames})")
        if codes.size and (codes.min() < 0 or codes.max() >= self.codebook_size):
            raise ParameterError(f"codes must lie in 0..{self.codebook_size - 1}")
        rows = codes
        if self.pitch_bits:
            if pitch is None:
                raise ParameterError(f"this packet format leads each frame with {self.pitch_bits} pitch "
                                     "bits: give the pitch codes")
            pitch = np.asarray(pitch, dtype=np.int64)
            levels = 2**self.pitch_bits
            if pitch.shape != (self.frames,) or (pitch.size and not 0 <= pitch.min() <= pitch.max() < levels):
                raise ParameterError(f"pitch codes must be ({self.frames},) in 0..{2**self.pitch_bits - 1}")
            rows = np.concatenate([pitch[None], codes])
        elif pitch is not None:
            raise ParameterError("this packet format carries no pitch (pitch_bits 0)")
        if self.tables is not None:
            coded = self._range_encode(rows)
            if len(coded) < self.fixed_bytes and np.array_equal(self._range_decode(coded), rows):
                return coded
        return self._pack(rows)

    def read(self, packet: bytes) -> np.ndarray:
        """Codes (n_q, frames_per_packet) of a packet; BitstreamError when it cannot be one."""
        return self.read_frames(packet)[0]

    def read_frames(self, packet: bytes) -> tuple[np.ndarray, np.ndarray | None]:
        """Codes (n_q, frames_per_packet) and pitch codes (frames_per_packet,) or None without pitch_bits."""
        if not isinstance(packet, bytes | bytearray | memoryview):
            raise BitstreamError(f"autoencoder packet must be bytes, not {type(packet).__name__}")
        packet = bytes(packet)
        if len(packet) > self.fixed_bytes:
            raise BitstreamError(f"autoencoder packet of {len(packet)} bytes is longer than the "
                                 f"{self.fixed_bytes} bytes of {self.n_q} codebooks x {self.frames} frames; "
                                 "it was coded at another bitrate or packet length, or is corrupt")
        rows = self._unpack(packet) if len(packet) == self.fixed_bytes else self._range_decode(packet)
        if self.pitch_bits:
            return rows[1:], rows[0]
        return rows, None
