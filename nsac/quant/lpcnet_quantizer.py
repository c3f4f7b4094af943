"""LPCNet's 1.6 kb/s quantizer: the features of four 10 ms frames in one 64-bit packet every 40 ms.

Valin & Skoglund, "A real-time wideband neural vocoder at 1.6 kb/s using LPCNet", Interspeech 2019,
section 3. Within a packet, frames 0..3; ``L`` is the previous packet's decoded frame 3 (the memory)::

    frame 3 (end)    c0: scalar, 0.25 steps (7 bits); c1..c17: 3-stage VQ, 1024 x 17 each, M-best search (30)
    frame 1 (middle) one of the predictors (L + Q3) / 2, L, Q3 plus a signed residual codeword over all 18
                     coefficients (13 bits: sign, then 2048 + 1024 + 1024 entries, one codebook per predictor)
    frames 0 and 2   each copies one of {average of its neighbours, left neighbour, right neighbour}
                     (frame 0 between L and Q1, frame 2 between Q1 and Q3): 9 pairs less the rarest, 3 bits
    pitch            period at the packet centre on a log scale, 21 steps per octave from 32 samples (6 bits);
                     a linear slope over the 4 frames, 7 steps or "unvoiced" (3 bits)
    correlation      one value per packet, 4 levels above the voicing threshold 0.3 or 4 below it (2 bits)

Packet layout: 8 bytes, fields most significant bit first (the MSB of byte 0 is bit 0)::

    byte     |   0    |   1    |   2    |   3    |   4    |   5    |   6    |   7    |
    bit      |76543210|76543210|76543210|76543210|76543210|76543210|76543210|76543210|
    field    |EEEEEEEP|PPPPPMMM|CCaaaaaa|aaaabbbb|bbbbbbcc|cccccccc|dddddddd|dddddIII|

    E energy (c0 of frame 3) 7   P pitch 6          M modulation 3 (0 = unvoiced)   C correlation 2
    a/b/c cepstrum VQ stages 10 each                d delta (frame 1) 13            I interpolation 3

Every 64-bit pattern is a valid packet (no field has unused codes), so a decoder never rejects one. Decoding
is table look-ups and additions only; the same bytes decode to the same features in any process. A packet
depends on the previous one only through ``L`` (frames 0 and 1): after a lost packet, the decoder uses its
concealed frame 3 as ``L`` and the error stays within the next packet's first two frames.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from nsac.errors import BitstreamError, ParameterError, WeightsError
from nsac.quant import vq

N_BANDS = 18
FRAMES_PER_PACKET = 4
PACKET_BYTES = 8
PITCH_MIN_PERIOD = 32
PITCH_MAX_PERIOD = 256

FIELD_BITS: dict[str, int] = {
    "energy": 7, "pitch": 6, "modulation": 3, "correlation": 2,
    "stage1": 10, "stage2": 10, "stage3": 10, "delta": 13, "interpolation": 3,
}
"""Fields in packing order (most significant first) and their widths; they sum to 64."""
FIELD_NAMES = tuple(FIELD_BITS)

ENERGY_STEP = 0.25
"""c0 step (0.25 is about 0.6 dB of the mean band level, 0.25 * 10 / sqrt(18))."""
ENERGY_MIN = -14.0
"""c0 of code 0; digital silence has c0 = -12.5 and loud speech reaches about 16."""
PITCH_STEPS_PER_OCTAVE = 21
MODULATION_LEVELS = 3
"""The slope code m in -3..3 moves frame k's period by ``m (2k - 3) / MODULATION_DIVISOR`` of the centre."""
MODULATION_DIVISOR = 112.0
VOICING_THRESHOLD = 0.3
"""A packet whose correlation reaches this is voiced: it gets a slope and the upper correlation levels."""
VOICED_CORRELATION_STEP = 0.175
UNVOICED_CORRELATION_STEP = 0.075
STAGE_SIZES = (1024, 1024, 1024)
DELTA_SIZES = (2048, 1024, 1024)
"""Residual codebooks of the middle frame for the predictors: average, previous (L), next (Q3)."""
INTERPOLATION_CHOICES: tuple[tuple[int, int], ...] = ((0, 0), (0, 1), (0, 2), (1, 0), (1, 2), (2, 0),
                                                      (2, 1), (2, 2))
"""(frame 0, frame 2) choices, each 0 = average of the neighbours, 1 = left, 2 = right; the code is the
position in this list. The missing pair (1, 1), frame 0 a copy of L and frame 2 a copy of Q1, was the best
pair for only 2 % of the training packets, the rarest of the nine (nsac/codecs/lpcnet/data/*.json)."""
DEFAULT_SURVIVORS = 5
"""M of the M-best search of the end frame's cepstrum."""
INITIAL_MEMORY = np.zeros(N_BANDS)
"""``L`` of the first packet."""
INITIAL_MEMORY.setflags(write=False)


class PacketFields(NamedTuple):
    """The integer fields of one packet (ranges: ``0 .. 2**FIELD_BITS[name] - 1``)."""

    energy: int
    pitch: int
    modulation: int
    correlation: int
    stage1: int
    stage2: int
    stage3: int
    delta: int
    interpolation: int


class DequantizedFeatures(NamedTuple):
    """Features of whole packets as the decoder sees them."""

    cepstrum: NDArray[np.float64]
    """Shape (n_packets * 4, 18)."""
    pitch_period: NDArray[np.float64]
    """Samples, shape (n_packets * 4,)."""
    pitch_correlation: NDArray[np.float64]
    """Shape (n_packets * 4,)."""


@dataclass(frozen=True)
class LPCNetCodebooks:
    """The trained tables: three cepstrum stages (1024, 17) and the middle frame's three (K, 18) codebooks."""

    stages: tuple[NDArray[np.float64], ...]
    delta: tuple[NDArray[np.float64], ...]
    sha256: str = ""
    """Identity of the file they came from ("" when built in memory)."""

    TENSOR_NAMES = ("stage1", "stage2", "stage3", "delta_average", "delta_previous", "delta_next")

    @classmethod
    def from_tensors(cls, tensors: Mapping[str, ArrayLike], *, sha256: str = "") -> LPCNetCodebooks:
        """Build from named arrays (as :func:`nsac.quant.vq.load_codebooks` returns), checking every shape."""
        missing = [name for name in cls.TENSOR_NAMES if name not in tensors]
        if missing:
            raise WeightsError(f"codebooks lack {missing}")
        arrays = [np.asarray(tensors[name], dtype=np.float64) for name in cls.TENSOR_NAMES]
        expected = [(k, N_BANDS - 1) for k in STAGE_SIZES] + [(k, N_BANDS) for k in DELTA_SIZES]
        for name, array, shape in zip(cls.TENSOR_NAMES, arrays, expected):
            if array.shape != shape:
                raise WeightsError(f"codebook {name} has shape {array.shape}, expected {shape}")
        return cls(tuple(arrays[:3]), tuple(arrays[3:]), sha256)

    def to_tensors(self) -> dict[str, NDArray[np.float64]]:
        return dict(zip(self.TENSOR_NAMES, (*self.stages, *self.delta)))


# ---------------------------------------------------------------- packing

def pack_packet(fields: PacketFields | Sequence[int]) -> bytes:
    """The 8 bytes of one packet; raises ParameterError for a field out of its range."""
    value = 0
    for name, field in zip(FIELD_NAMES, fields, strict=True):
        bits = FIELD_BITS[name]
        if not 0 <= int(field) < 1 << bits:
            raise ParameterError(f"packet field {name}={field} does not fit in {bits} bits")
        value = (value << bits) | int(field)
    return value.to_bytes(PACKET_BYTES, "big")


def unpack_packet(packet: bytes) -> PacketFields:
    """The fields of one 8-byte packet; raises BitstreamError for any other length."""
    if len(packet) != PACKET_BYTES:
        raise BitstreamError(f"an LPCNet packet has {PACKET_BYTES} bytes, got {len(packet)}")
    value = int.from_bytes(packet, "big")
    fields = []
    shift = 8 * PACKET_BYTES
    for name in FIELD_NAMES:
        shift -= FIELD_BITS[name]
        fields.append((value >> shift) & ((1 << FIELD_BITS[name]) - 1))
    return PacketFields(*fields)


# ---------------------------------------------------------------- scalar parts

def energy_value(index: ArrayLike) -> NDArray[np.float64]:
    return ENERGY_MIN + ENERGY_STEP * np.asarray(index, dtype=np.float64)


def pitch_centre(index: ArrayLike) -> NDArray[np.float64]:
    """Period at the packet centre, samples: ``32 * 2^(index / 21)``."""
    return PITCH_MIN_PERIOD * 2.0 ** (np.asarray(index, dtype=np.float64) / PITCH_STEPS_PER_OCTAVE)


def pitch_values(pitch: ArrayLike, modulation: ArrayLike, correlation: ArrayLike) -> tuple[NDArray, NDArray]:
    """Decoded periods (P, 4) and correlations (P, 4) from the pitch fields of P packets."""
    pitch = np.asarray(pitch)
    modulation = np.asarray(modulation)
    correlation = np.asarray(correlation, dtype=np.float64)
    voiced = modulation > 0
    slope = np.where(voiced, modulation - (MODULATION_LEVELS + 1), 0)
    position = 2.0 * np.arange(FRAMES_PER_PACKET) - (FRAMES_PER_PACKET - 1)
    period = pitch_centre(pitch)[..., None] * (1.0 + slope[..., None] * position / MODULATION_DIVISOR)
    period = np.clip(period, PITCH_MIN_PERIOD, PITCH_MAX_PERIOD)
    value = np.where(voiced, VOICING_THRESHOLD + VOICED_CORRELATION_STEP * (correlation + 0.5),
                     UNVOICED_CORRELATION_STEP * (correlation + 0.5))
    return period, np.repeat(value[..., None], FRAMES_PER_PACKET, axis=-1)


def quantize_pitch(period: ArrayLike, correlation: ArrayLike,
                   c0: ArrayLike) -> tuple[NDArray, NDArray, NDArray]:
    """Pitch fields of P packets from per-frame periods, correlations and c0 (each (P, 4)).

    Frames are weighted by their energy (from c0, normalised per packet). The correlation is the weighted
    mean; the period is a weighted least-squares line over the frames, coded as its value at the packet
    centre and, in voiced packets, its slope.

    Returns
    -------
    (pitch, modulation, correlation) index arrays, shape (P,)
    """
    period = np.asarray(period, dtype=np.float64)
    correlation = np.asarray(correlation, dtype=np.float64)
    level = np.asarray(c0, dtype=np.float64) / np.sqrt(N_BANDS)
    weight = 10.0 ** (level - level.max(axis=-1, keepdims=True))
    t = np.arange(FRAMES_PER_PACKET) - 0.5 * (FRAMES_PER_PACKET - 1)
    sw = weight.sum(-1)
    st = (weight * t).sum(-1)
    stt = (weight * t * t).sum(-1)
    sp = (weight * period).sum(-1)
    stp = (weight * t * period).sum(-1)
    denominator = sw * stt - st * st
    well_posed = denominator > 1e-9 * sw * sw  # not all the weight on one frame
    slope = np.where(well_posed, (sw * stp - st * sp) / np.maximum(denominator, 1e-300), 0.0)
    centre = (sp - slope * st) / sw
    packet_correlation = (weight * correlation).sum(-1) / sw
    voiced = packet_correlation >= VOICING_THRESHOLD
    pitch = np.clip(np.rint(PITCH_STEPS_PER_OCTAVE * np.log2(np.maximum(centre, 1.0) / PITCH_MIN_PERIOD)),
                    0, (1 << FIELD_BITS["pitch"]) - 1).astype(np.int64)
    relative = slope * MODULATION_DIVISOR / 2.0 / pitch_centre(pitch)
    step = np.clip(np.rint(relative), -MODULATION_LEVELS, MODULATION_LEVELS).astype(np.int64)
    modulation = np.where(voiced, step + MODULATION_LEVELS + 1, 0)
    levels = 1 << FIELD_BITS["correlation"]
    voiced_index = np.floor((packet_correlation - VOICING_THRESHOLD) / VOICED_CORRELATION_STEP)
    unvoiced_index = np.floor(np.maximum(packet_correlation, 0.0) / UNVOICED_CORRELATION_STEP)
    correlation_index = np.clip(np.where(voiced, voiced_index, unvoiced_index), 0, levels - 1)
    correlation_index = correlation_index.astype(np.int64)
    return pitch, modulation, correlation_index


# ---------------------------------------------------------------- cepstrum parts

def _end_frames(energy: NDArray, stages: NDArray, codebooks: LPCNetCodebooks) -> NDArray[np.float64]:
    """Decoded frame 3 of P packets, (P, 18), from energy (P,) and stage indices (P, 3)."""
    shape = vq.msvq_decode(stages, codebooks.stages)
    return np.concatenate([energy_value(energy)[:, None], shape], axis=1)


def _middle_predictions(left: NDArray, right: NDArray) -> NDArray[np.float64]:
    """The three predictors of frame 1, shape (P, 3, 18): average, left (L), right (Q3)."""
    return np.stack([0.5 * (left + right), left, right], axis=1)


def _delta_fields(target: NDArray, index: NDArray, sign: NDArray) -> NDArray[np.int64]:
    offsets = np.concatenate([[0], np.cumsum(DELTA_SIZES)[:-1]])
    return np.where(sign < 0, sum(DELTA_SIZES), 0) + offsets[target] + index


def _middle_frames(delta: NDArray, left: NDArray, right: NDArray, codebooks: LPCNetCodebooks) -> NDArray:
    """Decoded frame 1, (P, 18), from the delta fields (P,)."""
    delta = np.asarray(delta, dtype=np.int64)
    total = sum(DELTA_SIZES)
    sign = np.where(delta >= total, -1.0, 1.0)
    entry = delta % total
    target = np.searchsorted(np.cumsum(DELTA_SIZES), entry, side="right")
    table = np.concatenate(codebooks.delta, axis=0)
    prediction = _middle_predictions(left, right)[np.arange(len(delta)), target]
    return prediction + sign[:, None] * table[entry]


def _interpolation_candidates(left: NDArray, middle: NDArray, right: NDArray) -> tuple[NDArray, NDArray]:
    """Candidates for frame 0 (between L and Q1) and frame 2 (between Q1 and Q3), each (P, 3, 18)."""
    return _middle_predictions(left, middle), _middle_predictions(middle, right)


# ---------------------------------------------------------------- whole packets

def quantize_packets(cepstrum: ArrayLike, pitch_period: ArrayLike, pitch_correlation: ArrayLike, *,
                     codebooks: LPCNetCodebooks, memory: ArrayLike = INITIAL_MEMORY,
                     survivors: int = DEFAULT_SURVIVORS) -> NDArray[np.int64]:
    """Fields of consecutive packets from the features of ``4 P`` frames.

    Parameters
    ----------
    cepstrum : shape (4 P, 18)
    pitch_period : samples, shape (4 P,)
    pitch_correlation : shape (4 P,)
    codebooks : the trained tables
    memory : decoded frame 3 of the packet before the first one, shape (18,)
    survivors : M of the M-best search (1 is greedy)

    Returns
    -------
    fields : shape (P, 9), columns in ``FIELD_NAMES`` order
    """
    cepstrum = np.asarray(cepstrum, dtype=np.float64)
    n_frames = cepstrum.shape[0]
    if cepstrum.ndim != 2 or cepstrum.shape[1] != N_BANDS or n_frames % FRAMES_PER_PACKET or n_frames == 0:
        raise ParameterError(f"cepstrum must have shape (4 P, {N_BANDS}) with P > 0, got {cepstrum.shape}")
    n_packets = n_frames // FRAMES_PER_PACKET
    frames = cepstrum.reshape(n_packets, FRAMES_PER_PACKET, N_BANDS)
    period = np.asarray(pitch_period, dtype=np.float64)
    correlation = np.asarray(pitch_correlation, dtype=np.float64)
    if period.shape != (n_frames,) or correlation.shape != (n_frames,):
        raise ParameterError(f"pitch_period and pitch_correlation must have shape ({n_frames},), got "
                             f"{period.shape} and {correlation.shape}")
    period = period.reshape(n_packets, FRAMES_PER_PACKET)
    correlation = correlation.reshape(n_packets, FRAMES_PER_PACKET)
    pitch, modulation, correlation_index = quantize_pitch(period, correlation, frames[..., 0])

    end = frames[:, 3]
    energy = np.clip(np.rint((end[:, 0] - ENERGY_MIN) / ENERGY_STEP), 0, (1 << FIELD_BITS["energy"]) - 1)
    energy = energy.astype(np.int64)
    stages, _ = vq.msvq_search(end[:, 1:], codebooks.stages, m=survivors)
    q_end = _end_frames(energy, stages, codebooks)
    left = np.concatenate([np.asarray(memory, dtype=np.float64)[None, :], q_end[:-1]], axis=0)

    targets = frames[:, 1][:, None, :] - _middle_predictions(left, q_end)
    found = vq.switched_search(targets, codebooks.delta, signed=True)
    delta = _delta_fields(found.target, found.index, found.sign)
    q_middle = _middle_frames(delta, left, q_end, codebooks)

    first, third = _interpolation_candidates(left, q_middle, q_end)
    error_first = np.sum((first - frames[:, 0][:, None, :]) ** 2, axis=-1)
    error_third = np.sum((third - frames[:, 2][:, None, :]) ** 2, axis=-1)
    choices = np.asarray(INTERPOLATION_CHOICES)
    total = error_first[:, choices[:, 0]] + error_third[:, choices[:, 1]]
    interpolation = np.argmin(total, axis=1)

    return np.stack([energy, pitch, modulation, correlation_index, stages[:, 0], stages[:, 1], stages[:, 2],
                     delta, interpolation], axis=1).astype(np.int64)


def dequantize_packets(fields: ArrayLike, *, codebooks: LPCNetCodebooks,
                       memory: ArrayLike = INITIAL_MEMORY) -> DequantizedFeatures:
    """Features of ``4 P`` frames from the fields (P, 9) of consecutive packets (:func:`quantize_packets`)."""
    fields = np.asarray(fields, dtype=np.int64)
    if fields.ndim != 2 or fields.shape[1] != len(FIELD_NAMES):
        raise ParameterError(f"fields must have shape (P, {len(FIELD_NAMES)}), got {fields.shape}")
    limits = np.array([1 << FIELD_BITS[name] for name in FIELD_NAMES])
    if np.any(fields < 0) or np.any(fields >= limits):
        raise ParameterError("a packet field is out of its range (see FIELD_BITS)")
    column = {name: fields[:, i] for i, name in enumerate(FIELD_NAMES)}
    q_end = _end_frames(column["energy"], fields[:, 4:7], codebooks)
    left = np.concatenate([np.asarray(memory, dtype=np.float64)[None, :], q_end[:-1]], axis=0)
    q_middle = _middle_frames(column["delta"], left, q_end, codebooks)
    first, third = _interpolation_candidates(left, q_middle, q_end)
    choice = np.asarray(INTERPOLATION_CHOICES)[column["interpolation"]]
    rows = np.arange(fields.shape[0])
    cepstrum = np.stack([first[rows, choice[:, 0]], q_middle, third[rows, choice[:, 1]], q_end], axis=1)
    period, correlation = pitch_values(column["pitch"], column["modulation"], column["correlation"])
    return DequantizedFeatures(cepstrum.reshape(-1, N_BANDS), period.reshape(-1), correlation.reshape(-1))


def encode(cepstrum: ArrayLike, pitch_period: ArrayLike, pitch_correlation: ArrayLike, *,
           codebooks: LPCNetCodebooks, memory: ArrayLike = INITIAL_MEMORY,
           survivors: int = DEFAULT_SURVIVORS) -> list[bytes]:
    """Packets of 8 bytes for ``4 P`` frames of features (see :func:`quantize_packets`)."""
    fields = quantize_packets(cepstrum, pitch_period, pitch_correlation, codebooks=codebooks, memory=memory,
                              survivors=survivors)
    return [pack_packet(row) for row in fields.tolist()]


def decode(packets: Sequence[bytes], *, codebooks: LPCNetCodebooks,
           memory: ArrayLike = INITIAL_MEMORY) -> DequantizedFeatures:
    """Features of ``4 len(packets)`` frames from consecutive 8-byte packets."""
    if not packets:
        raise ParameterError("decode needs at least one packet")
    fields = np.array([unpack_packet(packet) for packet in packets], dtype=np.int64)
    return dequantize_packets(fields, codebooks=codebooks, memory=memory)
