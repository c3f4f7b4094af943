"""LPCNet features at 1.47 kb/s with feature-predictive coding: one 176-bit super-packet every 120 ms.

After Yang, Lim & Kim (ICASSP 2023): a small GRU predicts the features of the coming frame from the features
the decoder has already *reconstructed*, and only the prediction residual is quantized, so that fewer bits
give the same feature error. Here the predicted frame is the end frame (frame 3) of each 40 ms sub-packet;
everything else is the 1.6 kb/s quantizer of :mod:`nsac.quant.lpcnet_quantizer` (its pitch fields, its
middle-frame delta codebooks and its interpolation of frames 0 and 2, the shipped tables)::

    sub-packet j of 3 (40 ms, frames 0..3; L = the previous sub-packet's decoded frame 3)
    pitch, modulation, correlation   as the 1.6 kb/s quantizer (6 + 3 + 2 bits), decoded first
    predictor        h_j = GRU(h_{j-1}, [decoded frames 0..3 of sub-packet j-1, its pitch, this pitch])
                     prediction P_j = L + W h_j + b   (c0..c17 of frame 3)
    frame 3 (end)    residual c0: trained scalar levels (5 bits); residual c1..c17: multi-stage VQ (9 + 9 + 9
                     bits in sub-packets 0 and 1, 9 + 9 + 8 in sub-packet 2; see BitAllocation), M-best
                     search; Q3 = clip(P_j + residual) to the training range of each coefficient
    frame 1 (middle) 13-bit signed switched-predictor delta around (L + Q3) / 2, L or Q3 (1.6 kb/s tables)
    frames 0 and 2   3-bit interpolation choice (1.6 kb/s)

Super-packet layout: 22 bytes, three sub-packets one after the other, fields most significant bit first
(the MSB of byte 0 is bit 0); with the default allocation::

    bit      0         1         2         3         4         5         6
             0123456789012345678901234567890123456789012345678901234567890
    sub 0    PPPPPPMMMCCEEEEEaaaaaaaaabbbbbbbbbcccccccccdddddddddddddIII      bits   0..58  (59)
    sub 1    PPPPPPMMMCCEEEEEaaaaaaaaabbbbbbbbbcccccccccdddddddddddddIII      bits  59..117 (59)
    sub 2    PPPPPPMMMCCEEEEEaaaaaaaaabbbbbbbbbccccccccdddddddddddddIII       bits 118..175 (58)

    P pitch 6   M modulation 3 (0 = unvoiced)   C correlation 2   E c0 residual 5
    a/b/c residual VQ stages (512, 512, 512 entries; 256 for stage c of sub-packet 2)
    d delta (frame 1) 13   I interpolation 3                     3 x 27 + 95 = 176 bits = 22 bytes

Where the 16 bits saved per 120 ms come from: the end frames get 95 bits per 120 ms instead of 111
(37 per 40 ms). The split between c0 and the VQ was chosen on validation speakers (the cepstral distance of
decoded vs. clean features, all frames; shorter training than the shipped tables, one closed-loop round):
a c0 residual of 4, 5 or 6 bits gave 2.106, 2.090 and 2.105 dB. With the shipped tables: 2.080 dB (speech
frames 2.106, spectral shape only 1.944), against 2.098 dB (2.130, 1.968) for the 1.6 kb/s quantizer on the
same frames, and 2.213 dB with the predictor's output zeroed (their JSON note has the details). Part of the
gain is in the encoder alone: it chooses the end frame among candidates by the error of the whole
sub-packet (:func:`encode_subpacket`), which the 1.6 kb/s encoder does not do.

Every 176-bit pattern is a valid super-packet (no field has unused codes). The encoder and the decoder carry
the same :class:`PredictorState` (GRU state, the previous sub-packet's decoded frames and pitch); decoding
is the GRU step in float64 numpy and table look-ups, so the same bytes and state give the same features.

Losses. Unlike the 1.6 kb/s quantizer, a sub-packet depends on all the past through the predictor. After a
lost super-packet the decoder feeds concealment features through the same GRU step
(:meth:`PredictiveDecoder.conceal`), so its state stays a plausible one, but not the encoder's: each later
end frame is the encoder's residual added to the decoder's prediction, and the mismatch of the predictions
fades only as fast as the predictor forgets its input, slowly for ``L + W h``, which integrates. Measured on
validation speech (``loss_recovery`` in the tables' JSON note: one lost super-packet, the last decoded frame
held as the predictor's input): 7.9 dB more feature distance than the loss-free decoding in the next 40 ms,
4.1 dB after 200 ms, then 2.3 to 2.9 dB up to 1 s; it does not vanish within the second measured.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from nsac.errors import BitstreamError, ParameterError, WeightsError
from nsac.quant import lpcnet_quantizer as lq
from nsac.quant import vq

N_BANDS = lq.N_BANDS
SUBPACKETS = 3
FRAMES_PER_SUBPACKET = lq.FRAMES_PER_PACKET
FRAMES_PER_SUPERPACKET = SUBPACKETS * FRAMES_PER_SUBPACKET
SUPERPACKET_BYTES = 22
SUPERPACKET_BITS = 8 * SUPERPACKET_BYTES
DEFAULT_SURVIVORS = 16
"""M of the M-best search of the residual VQ (encoder only)."""
ENERGY_CANDIDATES = 2
"""c0 levels tried for the end frame (the nearest ones), encoder only."""
LAST_STAGE_CANDIDATES = 8
"""Last-stage entries tried for the end frame, encoder only."""
END_FRAME_WEIGHT = 2.0
"""Weight of the end frame's squared error against frames 0..2 when choosing among the candidates."""
PITCH_INPUTS = 2
"""Pitch features of a sub-packet: ``(mean period - 100) / 50`` and ``mean correlation - 0.5``."""
PREDICTOR_INPUTS = FRAMES_PER_SUBPACKET * N_BANDS + 2 * PITCH_INPUTS


@dataclass(frozen=True)
class BitAllocation:
    """Bits of the end frame's residual: ``energy_bits`` for c0, ``stage_bits[j]`` per VQ stage of sub-packet j.

    Only the last stage may differ between sub-packets (the earlier stages share their codebooks).
    """

    energy_bits: int = 5
    stage_bits: tuple[tuple[int, ...], ...] = ((9, 9, 9), (9, 9, 9), (9, 9, 8))

    def __post_init__(self) -> None:
        if len(self.stage_bits) != SUBPACKETS or len({len(s) for s in self.stage_bits}) != 1:
            raise ParameterError(f"stage_bits needs {SUBPACKETS} sub-packets with the same number of stages")
        if len({s[:-1] for s in self.stage_bits}) != 1:
            raise ParameterError("only the last VQ stage may have a different size between sub-packets")
        if sum(self.subpacket_bits(j) for j in range(SUBPACKETS)) != SUPERPACKET_BITS:
            raise ParameterError(f"the allocation {self} does not fill {SUPERPACKET_BITS} bits exactly")

    def field_bits(self, j: int) -> dict[str, int]:
        """Fields of sub-packet j in packing order and their widths."""
        bits = {"pitch": lq.FIELD_BITS["pitch"], "modulation": lq.FIELD_BITS["modulation"],
                "correlation": lq.FIELD_BITS["correlation"], "energy": self.energy_bits}
        bits.update({f"stage{s + 1}": b for s, b in enumerate(self.stage_bits[j])})
        bits.update({"delta": lq.FIELD_BITS["delta"], "interpolation": lq.FIELD_BITS["interpolation"]})
        return bits

    def subpacket_bits(self, j: int) -> int:
        return sum(self.field_bits(j).values())

    @property
    def n_stages(self) -> int:
        return len(self.stage_bits[0])

    def codebook_names(self) -> list[str]:
        """Names of the VQ tables: ``stage{s}_{entries}`` for every (stage, size) in use."""
        names = []
        for bits in self.stage_bits:
            for s, b in enumerate(bits):
                name = f"stage{s + 1}_{1 << b}"
                if name not in names:
                    names.append(name)
        return names


DEFAULT_ALLOCATION = BitAllocation()
FIELD_NAMES = tuple(DEFAULT_ALLOCATION.field_bits(0))
"""Per sub-packet, in packing order (the same names in every sub-packet)."""


@dataclass(frozen=True)
class PredictorWeights:
    """A one-layer GRU (torch's gate order r, z, n) and a linear output, float64."""

    input_mean: NDArray[np.float64]
    """(PREDICTOR_INPUTS,), subtracted from the raw input."""
    input_scale: NDArray[np.float64]
    """(PREDICTOR_INPUTS,), multiplies the centred input."""
    weight_ih: NDArray[np.float64]
    """(3 H, PREDICTOR_INPUTS)"""
    weight_hh: NDArray[np.float64]
    """(3 H, H)"""
    bias_ih: NDArray[np.float64]
    bias_hh: NDArray[np.float64]
    weight_out: NDArray[np.float64]
    """(18, H)"""
    bias_out: NDArray[np.float64]

    TENSOR_NAMES = ("input_mean", "input_scale", "weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_out",
                    "bias_out")

    @property
    def hidden_units(self) -> int:
        return int(self.weight_hh.shape[1])


@dataclass(frozen=True)
class PredictiveTables:
    """Everything the predictive quantizer needs: the predictor, the residual tables, the 1.6 kb/s tables."""

    predictor: PredictorWeights
    energy: NDArray[np.float64]
    """c0 residual levels, (2**energy_bits,)."""
    stages: dict[str, NDArray[np.float64]]
    """``stage{s}_{K}`` -> (K, 17)."""
    cepstrum_min: NDArray[np.float64]
    """(18,): decoded end frames are clipped to [cepstrum_min, cepstrum_max] (the training range)."""
    cepstrum_max: NDArray[np.float64]
    base: lq.LPCNetCodebooks
    """The 1.6 kb/s codebooks (middle-frame deltas)."""
    allocation: BitAllocation = DEFAULT_ALLOCATION
    sha256: str = ""

    @classmethod
    def from_tensors(cls, tensors: Mapping[str, ArrayLike], *, base: lq.LPCNetCodebooks,
                     allocation: BitAllocation = DEFAULT_ALLOCATION, sha256: str = "") -> PredictiveTables:
        """Build from named arrays (``predictor.<name>``, ``energy``, ``stage*``, ``cepstrum_min/max``)."""
        wanted = ([f"predictor.{n}" for n in PredictorWeights.TENSOR_NAMES] + ["energy", "cepstrum_min",
                                                                              "cepstrum_max"]
                  + allocation.codebook_names())
        missing = [name for name in wanted if name not in tensors]
        if missing:
            raise WeightsError(f"predictive quantizer tables lack {missing}")
        arrays = {name: np.asarray(tensors[name], dtype=np.float64) for name in wanted}
        predictor = PredictorWeights(*(arrays[f"predictor.{n}"] for n in PredictorWeights.TENSOR_NAMES))
        h = predictor.weight_hh.shape[-1]
        expected = {"input_mean": (PREDICTOR_INPUTS,), "input_scale": (PREDICTOR_INPUTS,),
                    "weight_ih": (3 * h, PREDICTOR_INPUTS), "weight_hh": (3 * h, h), "bias_ih": (3 * h,),
                    "bias_hh": (3 * h,), "weight_out": (N_BANDS, h), "bias_out": (N_BANDS,)}
        for name, shape in expected.items():
            if getattr(predictor, name).shape != shape:
                raise WeightsError(f"predictor {name} has shape {getattr(predictor, name).shape}, "
                                   f"expected {shape}")
        if arrays["energy"].shape != (1 << allocation.energy_bits,):
            raise WeightsError(f"energy table has shape {arrays['energy'].shape}, expected "
                               f"({1 << allocation.energy_bits},)")
        stages = {}
        for name in allocation.codebook_names():
            size = int(name.split("_")[1])
            if arrays[name].shape != (size, N_BANDS - 1):
                raise WeightsError(f"codebook {name} has shape {arrays[name].shape}, expected "
                                   f"({size}, {N_BANDS - 1})")
            stages[name] = arrays[name]
        for name in ("cepstrum_min", "cepstrum_max"):
            if arrays[name].shape != (N_BANDS,):
                raise WeightsError(f"{name} has shape {arrays[name].shape}, expected ({N_BANDS},)")
        return cls(predictor, arrays["energy"], stages, arrays["cepstrum_min"], arrays["cepstrum_max"], base,
                   allocation, sha256)

    def to_tensors(self) -> dict[str, NDArray[np.float64]]:
        out = {f"predictor.{n}": getattr(self.predictor, n) for n in PredictorWeights.TENSOR_NAMES}
        out.update({"energy": self.energy, "cepstrum_min": self.cepstrum_min, "cepstrum_max": self.cepstrum_max})
        out.update(self.stages)
        return out

    def books(self, j: int) -> list[NDArray[np.float64]]:
        """The VQ stages of sub-packet j, in order."""
        return [self.stages[f"stage{s + 1}_{1 << b}"] for s, b in enumerate(self.allocation.stage_bits[j])]


@dataclass(frozen=True)
class PredictorState:
    """What the encoder and the decoder both carry from one sub-packet to the next (leading batch dims allowed).

    ``frames[..., -1, :]`` is the memory ``L`` of the 1.6 kb/s quantizer.
    """

    hidden: NDArray[np.float64]
    """GRU state, (..., H)."""
    frames: NDArray[np.float64]
    """Decoded cepstra of the previous sub-packet, (..., 4, 18)."""
    pitch: NDArray[np.float64]
    """Pitch features of the previous sub-packet, (..., 2)."""
    position: int = 0
    """Index of the next sub-packet within its super-packet (0..2)."""


def initial_state(tables: PredictiveTables, batch: tuple[int, ...] = ()) -> PredictorState:
    """The state before the first sub-packet: zero GRU state, zero cepstra (as the 1.6 kb/s memory), zero pitch."""
    h = tables.predictor.hidden_units
    return PredictorState(np.zeros(batch + (h,)), np.zeros(batch + (FRAMES_PER_SUBPACKET, N_BANDS)),
                          np.zeros(batch + (PITCH_INPUTS,)))


class SubpacketResult(NamedTuple):
    fields: NDArray[np.int64]
    """(..., 9) in ``FIELD_NAMES`` order."""
    frames: NDArray[np.float64]
    """Decoded cepstra (..., 4, 18)."""
    period: NDArray[np.float64]
    correlation: NDArray[np.float64]
    state: PredictorState
    residual: NDArray[np.float64]
    """The end frame minus its prediction, before quantization (..., 18); NaN when decoding."""


# ---------------------------------------------------------------- predictor

def _sigmoid(x: NDArray) -> NDArray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def gru_step(weights: PredictorWeights, hidden: NDArray[np.float64], x: NDArray[np.float64]) -> NDArray:
    """One GRU step (torch's equations), hidden (..., H), raw input x (..., PREDICTOR_INPUTS) -> (..., H)."""
    x = (x - weights.input_mean) * weights.input_scale
    gi = x @ weights.weight_ih.T + weights.bias_ih
    gh = hidden @ weights.weight_hh.T + weights.bias_hh
    h = hidden.shape[-1]
    r = _sigmoid(gi[..., :h] + gh[..., :h])
    z = _sigmoid(gi[..., h:2 * h] + gh[..., h:2 * h])
    n = np.tanh(gi[..., 2 * h:] + r * gh[..., 2 * h:])
    return (1.0 - z) * n + z * hidden


def pitch_features(period: ArrayLike, correlation: ArrayLike) -> NDArray[np.float64]:
    """(..., 2) from the decoded periods (samples) and correlations of a sub-packet's frames (..., 4)."""
    period = np.asarray(period, dtype=np.float64)
    correlation = np.asarray(correlation, dtype=np.float64)
    return np.stack([(period.mean(-1) - 100.0) / 50.0, correlation.mean(-1) - 0.5], axis=-1)


def predictor_input(state: PredictorState, pitch: NDArray[np.float64]) -> NDArray[np.float64]:
    """Raw predictor input: the previous decoded frames, their pitch and this sub-packet's pitch."""
    frames = state.frames.reshape(state.frames.shape[:-2] + (FRAMES_PER_SUBPACKET * N_BANDS,))
    return np.concatenate([frames, state.pitch, pitch], axis=-1)


def predict(tables: PredictiveTables, state: PredictorState,
            pitch: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(new GRU state (..., H), predicted end frame (..., 18)) for the sub-packet whose pitch features are given."""
    w = tables.predictor
    hidden = gru_step(w, state.hidden, predictor_input(state, pitch))
    return hidden, state.frames[..., -1, :] + hidden @ w.weight_out.T + w.bias_out


def advance(tables: PredictiveTables, state: PredictorState, frames: ArrayLike, period: ArrayLike,
            correlation: ArrayLike) -> PredictorState:
    """The state after a sub-packet whose features (frames (..., 4, 18)) did not come from its bits (concealment).

    Runs the same GRU step as decoding, on the pitch of the given features.
    """
    pitch = pitch_features(period, correlation)
    hidden, _ = predict(tables, state, pitch)
    return PredictorState(hidden, np.asarray(frames, dtype=np.float64), pitch, (state.position + 1) % SUBPACKETS)


# ---------------------------------------------------------------- one sub-packet

def _pitch_fields(period: NDArray, correlation: NDArray, c0: NDArray) -> NDArray[np.int64]:
    shape = period.shape[:-1]
    p, m, c = lq.quantize_pitch(period.reshape(-1, FRAMES_PER_SUBPACKET),
                                correlation.reshape(-1, FRAMES_PER_SUBPACKET), c0.reshape(-1, FRAMES_PER_SUBPACKET))
    return np.stack([p, m, c], axis=-1).reshape(shape + (3,))


def _end_frame(tables: PredictiveTables, prediction: NDArray, energy: NDArray, stages: NDArray,
               j: int) -> NDArray[np.float64]:
    shape = np.concatenate([tables.energy[energy][..., None], vq.msvq_decode(stages, tables.books(j))], axis=-1)
    return np.clip(prediction + shape, tables.cepstrum_min, tables.cepstrum_max)


def _rest_of_subpacket(tables: PredictiveTables, state: PredictorState, fields: NDArray[np.int64],
                       hidden: NDArray, pitch: NDArray, q_end: NDArray, residual: NDArray) -> SubpacketResult:
    """Frames 0..2 from the delta and interpolation fields, and the new state (batch (B,))."""
    left = state.frames[:, -1]
    q_middle = lq._middle_frames(fields[:, -2], left, q_end, tables.base)
    first, third = lq._interpolation_candidates(left, q_middle, q_end)
    choice = np.asarray(lq.INTERPOLATION_CHOICES)[fields[:, -1]]
    rows = np.arange(fields.shape[0])
    frames = np.stack([first[rows, choice[:, 0]], q_middle, third[rows, choice[:, 1]], q_end], axis=1)
    period, correlation = lq.pitch_values(fields[:, 0], fields[:, 1], fields[:, 2])
    new_state = PredictorState(hidden, frames, pitch, (state.position + 1) % SUBPACKETS)
    return SubpacketResult(fields, frames, period, correlation, new_state, residual)


def _end_candidates(tables: PredictiveTables, prediction: NDArray, residual: NDArray, j: int, survivors: int,
                    energy_candidates: int, last_stage_candidates: int) -> tuple[NDArray, NDArray, NDArray]:
    """Candidate end frames: energy (B, C), stages (B, C, S), decoded end frames (B, C, 18)."""
    books = tables.books(j)
    if energy_candidates < 1 or last_stage_candidates < 1:
        raise ParameterError("energy_candidates and last_stage_candidates must be at least 1")
    batch = residual.shape[0]
    n_energy = min(energy_candidates, tables.energy.size)
    energy = np.argsort(np.abs(residual[:, :1] - tables.energy[None, :]), axis=1, kind="stable")[:, :n_energy]
    m = min(survivors, min(b.shape[0] for b in books))
    stages, _ = vq.msvq_search(residual[:, 1:], books, m=m)
    n_last = min(last_stage_candidates, books[-1].shape[0])
    left = residual[:, 1:] - vq.msvq_decode(stages[:, :-1], books[:-1])
    last, _ = vq.m_best(left, books[-1], m=n_last)
    # keep the M-best path's own last entry first
    last = np.where(np.any(last == stages[:, -1:], axis=1, keepdims=True), last,
                    np.concatenate([stages[:, -1:], last[:, :-1]], axis=1))
    n_candidates = n_energy * n_last
    energy = np.repeat(energy, n_last, axis=1)
    paths = np.repeat(stages[:, None, :], n_candidates, axis=1)
    paths[:, :, -1] = np.tile(last, (1, n_energy))
    q_end = _end_frame(tables, prediction[:, None, :], energy, paths, j)
    assert q_end.shape == (batch, n_candidates, N_BANDS)
    return energy, paths, q_end


def encode_subpacket(tables: PredictiveTables, state: PredictorState, cepstrum: ArrayLike, period: ArrayLike,
                     correlation: ArrayLike, *, survivors: int = DEFAULT_SURVIVORS,
                     energy_candidates: int = ENERGY_CANDIDATES,
                     last_stage_candidates: int = LAST_STAGE_CANDIDATES) -> SubpacketResult:
    """Quantize one sub-packet of B streams at once (the sub-packet position is ``state.position``).

    The end frame is chosen by its effect on the whole sub-packet: among the candidates (the
    ``energy_candidates`` nearest c0 levels times the ``last_stage_candidates`` best last-stage entries after
    the M-best search of the earlier stages), the one whose frames 0..3, once the middle frame and the
    interpolation are coded around it, have the least squared error (the end frame's own error counted
    ``END_FRAME_WEIGHT`` times, as the next sub-packet builds on it). The decoder does not depend on this.

    Parameters
    ----------
    tables : the trained tables
    state : the encoder's state, batch (B,)
    cepstrum : clean frames 0..3, (B, 4, 18)
    period : samples, (B, 4)
    correlation : (B, 4)
    survivors : M of the M-best search of the residual VQ
    energy_candidates, last_stage_candidates : end-frame candidates tried (1 and 1: the nearest end frame)

    Returns
    -------
    SubpacketResult with the fields, the decoded features (what the decoder will have) and the next state
    """
    frames = np.asarray(cepstrum, dtype=np.float64)
    period = np.asarray(period, dtype=np.float64)
    correlation = np.asarray(correlation, dtype=np.float64)
    batch = frames.shape[0]
    if frames.shape != (batch, FRAMES_PER_SUBPACKET, N_BANDS) or period.shape != (batch, FRAMES_PER_SUBPACKET) \
            or correlation.shape != period.shape or state.hidden.shape[:-1] != (batch,):
        raise ParameterError(f"encode_subpacket needs cepstrum (B, 4, 18), period and correlation (B, 4) and a "
                             f"state of batch (B,); got {frames.shape}, {period.shape}, {correlation.shape}, "
                             f"{state.hidden.shape[:-1]}")
    j = state.position
    pitch_fields = _pitch_fields(period, correlation, frames[..., 0])
    q_period, q_correlation = lq.pitch_values(pitch_fields[:, 0], pitch_fields[:, 1], pitch_fields[:, 2])
    pitch = pitch_features(q_period, q_correlation)
    hidden, prediction = predict(tables, state, pitch)

    residual = frames[:, 3] - prediction
    energy, stages, q_end = _end_candidates(tables, prediction, residual, j, survivors, energy_candidates,
                                            last_stage_candidates)
    n_candidates = q_end.shape[1]
    left = np.repeat(state.frames[:, -1], n_candidates, axis=0)
    flat_end = q_end.reshape(-1, N_BANDS)
    clean = np.repeat(frames, n_candidates, axis=0)
    targets = clean[:, 1][:, None, :] - lq._middle_predictions(left, flat_end)
    found = vq.switched_search(targets, tables.base.delta, signed=True)
    delta = lq._delta_fields(found.target, found.index, found.sign)
    q_middle = lq._middle_frames(delta, left, flat_end, tables.base)
    first, third = lq._interpolation_candidates(left, q_middle, flat_end)
    error_first = np.sum((first - clean[:, 0][:, None, :]) ** 2, axis=-1)
    error_third = np.sum((third - clean[:, 2][:, None, :]) ** 2, axis=-1)
    choices = np.asarray(lq.INTERPOLATION_CHOICES)
    pair_error = error_first[:, choices[:, 0]] + error_third[:, choices[:, 1]]
    interpolation = np.argmin(pair_error, axis=1)
    end_error = np.sum((flat_end - clean[:, 3]) ** 2, axis=-1)
    total = (pair_error.min(axis=1) + found.squared_error + END_FRAME_WEIGHT * end_error).reshape(batch, -1)
    best = np.argmin(total, axis=1)
    rows = np.arange(batch)
    pick = rows * n_candidates + best
    energy, stages, q_end = energy[rows, best], stages[rows, best], q_end[rows, best]
    delta, interpolation = delta[pick], interpolation[pick]

    fields = np.concatenate([pitch_fields, energy[:, None], stages, delta[:, None], interpolation[:, None]],
                            axis=1).astype(np.int64)
    return _rest_of_subpacket(tables, state, fields, hidden, pitch, q_end, residual)


def decode_subpacket(tables: PredictiveTables, state: PredictorState, fields: ArrayLike) -> SubpacketResult:
    """Decoded features of one sub-packet of B streams from its fields (B, 9) (position ``state.position``)."""
    fields = np.asarray(fields, dtype=np.int64)
    j = state.position
    bits = tables.allocation.field_bits(j)
    limits = np.array([1 << b for b in bits.values()])
    if fields.ndim != 2 or fields.shape[1] != len(bits) or np.any(fields < 0) or np.any(fields >= limits):
        raise ParameterError(f"fields must have shape (B, {len(bits)}) with each field within its width "
                             f"({bits})")
    period, correlation = lq.pitch_values(fields[:, 0], fields[:, 1], fields[:, 2])
    pitch = pitch_features(period, correlation)
    hidden, prediction = predict(tables, state, pitch)
    q_end = _end_frame(tables, prediction, fields[:, 3], fields[:, 4:4 + tables.allocation.n_stages], j)
    return _rest_of_subpacket(tables, state, fields, hidden, pitch, q_end, np.full_like(q_end, np.nan))


# ---------------------------------------------------------------- packing

def pack_superpacket(fields: ArrayLike, allocation: BitAllocation = DEFAULT_ALLOCATION) -> bytes:
    """The 22 bytes of one super-packet from its fields (3, 9); raises ParameterError for a field out of range."""
    fields = np.asarray(fields, dtype=np.int64)
    n_fields = len(allocation.field_bits(0))
    if fields.shape != (SUBPACKETS, n_fields):
        raise ParameterError(f"a super-packet has fields of shape ({SUBPACKETS}, {n_fields}), got {fields.shape}")
    value = 0
    for j in range(SUBPACKETS):
        for (name, bits), v in zip(allocation.field_bits(j).items(), fields[j].tolist()):
            if not 0 <= v < 1 << bits:
                raise ParameterError(f"sub-packet {j} field {name}={v} does not fit in {bits} bits")
            value = (value << bits) | v
    return value.to_bytes(SUPERPACKET_BYTES, "big")


def unpack_superpacket(packet: bytes, allocation: BitAllocation = DEFAULT_ALLOCATION) -> NDArray[np.int64]:
    """The fields (3, 9) of one 22-byte super-packet; raises BitstreamError for any other length."""
    if not isinstance(packet, (bytes, bytearray)) or len(packet) != SUPERPACKET_BYTES:
        raise BitstreamError(f"an lpcnet-pred super-packet has {SUPERPACKET_BYTES} bytes, got "
                             f"{len(packet) if isinstance(packet, (bytes, bytearray)) else type(packet).__name__}")
    value = int.from_bytes(packet, "big")
    shift = SUPERPACKET_BITS
    fields = np.zeros((SUBPACKETS, len(allocation.field_bits(0))), dtype=np.int64)
    for j in range(SUBPACKETS):
        for i, bits in enumerate(allocation.field_bits(j).values()):
            shift -= bits
            fields[j, i] = (value >> shift) & ((1 << bits) - 1)
    return fields


# ---------------------------------------------------------------- streams

@dataclass
class PredictiveEncoder:
    """Features of whole super-packets in, 22-byte super-packets out; carries the encoder's state."""

    tables: PredictiveTables
    survivors: int = DEFAULT_SURVIVORS
    state: PredictorState = field(init=False)

    def __post_init__(self) -> None:
        if self.survivors < 1:
            raise ParameterError(f"survivors={self.survivors} must be at least 1")
        self.state = initial_state(self.tables, (1,))

    def encode(self, cepstrum: ArrayLike, pitch_period: ArrayLike, pitch_correlation: ArrayLike) -> list[bytes]:
        """Super-packets of ``12 S`` frames: cepstrum (12 S, 18), period (samples) and correlation (12 S,)."""
        cepstrum, period, correlation = _check_features(cepstrum, pitch_period, pitch_correlation)
        packets = []
        for start in range(0, cepstrum.shape[0], FRAMES_PER_SUPERPACKET):
            rows = []
            for j in range(SUBPACKETS):
                frames = slice(start + FRAMES_PER_SUBPACKET * j, start + FRAMES_PER_SUBPACKET * (j + 1))
                result = encode_subpacket(self.tables, self.state, cepstrum[None, frames], period[None, frames],
                                          correlation[None, frames], survivors=self.survivors)
                self.state = result.state
                rows.append(result.fields[0])
            packets.append(pack_superpacket(np.stack(rows), self.tables.allocation))
        return packets


@dataclass
class PredictiveDecoder:
    """22-byte super-packets in, the features of 12 frames out; carries the decoder's state."""

    tables: PredictiveTables
    state: PredictorState = field(init=False)

    def __post_init__(self) -> None:
        self.state = initial_state(self.tables, (1,))

    def decode(self, packet: bytes) -> lq.DequantizedFeatures:
        """Features of the 12 frames of one super-packet (every 22-byte pattern decodes)."""
        fields = unpack_superpacket(packet, self.tables.allocation)
        parts = []
        for j in range(SUBPACKETS):
            result = decode_subpacket(self.tables, self.state, fields[j][None, :])
            self.state = result.state
            parts.append(result)
        return lq.DequantizedFeatures(np.concatenate([p.frames[0] for p in parts]),
                                      np.concatenate([p.period[0] for p in parts]),
                                      np.concatenate([p.correlation[0] for p in parts]))

    def conceal(self, cepstrum: ArrayLike, pitch_period: ArrayLike, pitch_correlation: ArrayLike) -> None:
        """Feed the concealed features of a lost super-packet (12 frames) through the predictor's state."""
        cepstrum, period, correlation = _check_features(cepstrum, pitch_period, pitch_correlation)
        for j in range(cepstrum.shape[0] // FRAMES_PER_SUBPACKET):
            frames = slice(FRAMES_PER_SUBPACKET * j, FRAMES_PER_SUBPACKET * (j + 1))
            self.state = advance(self.tables, self.state, cepstrum[None, frames], period[None, frames],
                                 correlation[None, frames])


def _check_features(cepstrum: ArrayLike, period: ArrayLike, correlation: ArrayLike) -> tuple[NDArray, ...]:
    cepstrum = np.asarray(cepstrum, dtype=np.float64)
    n = cepstrum.shape[0] if cepstrum.ndim == 2 else 0
    if cepstrum.ndim != 2 or cepstrum.shape[1] != N_BANDS or n == 0 or n % FRAMES_PER_SUPERPACKET:
        raise ParameterError(f"cepstrum must have shape (12 S, {N_BANDS}) with S > 0 (whole super-packets), "
                             f"got {cepstrum.shape}")
    period = np.asarray(period, dtype=np.float64)
    correlation = np.asarray(correlation, dtype=np.float64)
    if period.shape != (n,) or correlation.shape != (n,):
        raise ParameterError(f"pitch_period and pitch_correlation must have shape ({n},), got {period.shape} "
                             f"and {correlation.shape}")
    return cepstrum, period, correlation


def encode(cepstrum: ArrayLike, pitch_period: ArrayLike, pitch_correlation: ArrayLike, *,
           tables: PredictiveTables, survivors: int = DEFAULT_SURVIVORS) -> list[bytes]:
    """Super-packets of 22 bytes for ``12 S`` frames of features, from the initial state."""
    return PredictiveEncoder(tables, survivors).encode(cepstrum, pitch_period, pitch_correlation)


def decode(packets: Sequence[bytes], *, tables: PredictiveTables) -> lq.DequantizedFeatures:
    """Features of ``12 len(packets)`` frames from consecutive super-packets, from the initial state."""
    if not packets:
        raise ParameterError("decode needs at least one super-packet")
    decoder = PredictiveDecoder(tables)
    parts = [decoder.decode(packet) for packet in packets]
    return lq.DequantizedFeatures(*(np.concatenate(arrays) for arrays in zip(*parts)))
