"""Entropy coding of the mdct codec's integers (coefficients and side information) and their exact bit costs.

Everything is coded with the range coder of :mod:`nsac.bitstream.entropy` under quantized Laplace models:

- coefficients: the Laplace scale of a band follows from its SNR index (:func:`quantizer.laplace_scale`),
  so the model adapts band by band to the coded side information (context-adaptive), and a frame's
  coefficients go to the coder in one call (the coder groups them by scale);
- energy indices: first band against `ENERGY_FIRST_MEAN` (scale `ENERGY_FIRST_SCALE`), then the difference
  to the band below (scale `ENERGY_DELTA_SCALE`); then the step indices the same way; all channels' side
  information in one call.

`LaplaceCosts` gives the exact code length of values under the coder's integer tables, vectorised, so that
the allocation loop counts bits without coding; `expected_bits_per_coefficient` is the model's estimate for
a Laplace source, used to search the step before anything is quantized.
"""

from __future__ import annotations

import functools

import numpy as np

from nsac.bitstream.entropy import RangeDecoder, RangeEncoder
from nsac.bitstream.entropy_models import PARAMETRIC_PRECISION_BITS, scale_table_set
from nsac.codecs.mdct import quantizer as _q
from nsac.errors import BitstreamError

#: Laplace fits (mean, scale) to the side information of synthetic music and speech at 32-128 kb/s
ENERGY_FIRST_MEAN = -13
ENERGY_FIRST_SCALE = 6.5
ENERGY_DELTA_SCALE = 1.8
STEP_FIRST_MEAN = -28
STEP_FIRST_SCALE = 12.0
STEP_DELTA_SCALE = 1.3
STEP_DELTA_SCALE_SHORT = 3.0
"""Short frames' bands alternate between groups of short blocks, so their steps jump more."""
STEP_INDEX_MIN = _q.ENERGY_TO_SNR_STEPS * _q.ENERGY_MIN_INDEX - _q.SNR_MAX_INDEX
STEP_INDEX_MAX = _q.ENERGY_TO_SNR_STEPS * _q.ENERGY_MAX_INDEX
"""The encoder's step indices lie in this range (a band that is not quantized gets one >= ``2 e``)."""
#: rounding offset the expected-rate table assumes (the encoder's default dead zone)
MODEL_ROUNDING = 0.4


class LaplaceCosts:
    """Exact code lengths (bits) of integers under the coder's quantized-Laplace tables, vectorised."""

    def __init__(self) -> None:
        table_set = scale_table_set("laplace")
        self.tails = np.asarray(table_set.tails, dtype=np.int64)
        width = int(2 * self.tails.max() + 2)
        costs = np.full((self.tails.size, width), np.inf)
        for k, table in enumerate(table_set.tables):
            costs[k, : table.size] = PARAMETRIC_PRECISION_BITS - np.log2(table.astype(np.float64))
        self.costs = costs
        self._table_set = table_set

    def scale_index(self, scale: np.ndarray) -> np.ndarray:
        return self._table_set.scale_index(scale)

    def bits(self, values: np.ndarray, scale_index: np.ndarray) -> np.ndarray:
        """Bits of each value (mean 0) under the table of its scale index, escapes with their payload."""
        tails = self.tails[scale_index]
        magnitude = np.abs(values)
        escaped = magnitude > tails
        symbol = np.where(escaped, 2 * tails + 1, values + tails)
        bits = self.costs[scale_index, symbol]
        if np.any(escaped):
            excess = (magnitude - tails)[escaped]
            bits[escaped] += 2.0 + 2.0 * np.floor(np.log2(excess))
        return bits


@functools.cache
def laplace_costs() -> LaplaceCosts:
    return LaplaceCosts()


@functools.cache
def snr_scales() -> np.ndarray:
    """Laplace scale of the coefficients of a band at each SNR index 0..SNR_MAX_INDEX (0: unused)."""
    scales = _q.laplace_scale(np.maximum(np.arange(_q.SNR_MAX_INDEX + 1), 1))
    scales.setflags(write=False)
    return scales


@functools.cache
def snr_scale_index() -> np.ndarray:
    """Table scale index of the coefficients of a band at each SNR index 0..SNR_MAX_INDEX (0: unused)."""
    index = laplace_costs().scale_index(snr_scales())
    index.setflags(write=False)
    return index


@functools.cache
def expected_bits_per_coefficient() -> np.ndarray:
    """Expected bits per coefficient of a Laplace band at each SNR index (0 for s = 0), shape (S + 1,).

    The coefficients are Laplace with the RMS the SNR index implies, quantized with `MODEL_ROUNDING` and
    coded with the table of their scale; the allocation corrects the estimate with what it measures.
    """
    costs = laplace_costs()
    out = np.zeros(_q.SNR_MAX_INDEX + 1)
    for s in range(1, _q.SNR_MAX_INDEX + 1):
        diversity = float(_q.rms_in_steps(s)) / np.sqrt(2.0)
        m = np.arange(1, int(40 * diversity) + 60)
        upper = np.exp(-(m - MODEL_ROUNDING) / diversity)
        p_nonzero = upper - np.exp(-(m + 1 - MODEL_ROUNDING) / diversity)
        p_zero = 1.0 - np.exp(-(1 - MODEL_ROUNDING) / diversity)
        k = np.full(m.size, snr_scale_index()[s])
        bits_m = costs.bits(m, k)
        zero_bits = costs.bits(np.zeros(1, dtype=np.int64), k[:1])[0]
        out[s] = p_zero * zero_bits + float(np.sum(p_nonzero * bits_m))
    out.setflags(write=False)
    return out


# ----------------------------------------------------------------------------------------- side information

@functools.lru_cache(maxsize=64)
def side_scales(n_bands: int, short: bool) -> tuple[np.ndarray, np.ndarray]:
    """Scales of one channel's side information, energies then steps, and their table indices."""
    scales = np.empty(2 * n_bands)
    scales[:n_bands] = ENERGY_DELTA_SCALE
    scales[n_bands:] = STEP_DELTA_SCALE_SHORT if short else STEP_DELTA_SCALE
    scales[0], scales[n_bands] = ENERGY_FIRST_SCALE, STEP_FIRST_SCALE
    index = laplace_costs().scale_index(scales)
    scales.setflags(write=False)
    index.setflags(write=False)
    return scales, index


def _deltas(values: np.ndarray, first_mean: int, out: np.ndarray | None = None) -> np.ndarray:
    """``values`` minus the value before, the first minus `first_mean` (np.diff with prepend, faster)."""
    out = np.empty_like(values) if out is None else out
    out[0] = values[0] - first_mean
    np.subtract(values[1:], values[:-1], out=out[1:])
    return out


def side_symbols(e_index: np.ndarray, u_index: np.ndarray) -> np.ndarray:
    """The values that code one channel's energy and step indices: first values, then differences."""
    out = np.empty(2 * e_index.size, dtype=np.int64)
    _deltas(e_index, ENERGY_FIRST_MEAN, out[:e_index.size])
    _deltas(u_index, STEP_FIRST_MEAN, out[e_index.size:])
    return out


def side_bits(e_index: np.ndarray, u_index: np.ndarray, *, short: bool) -> float:
    """Exact bits of one channel's energy and step indices."""
    _, index = side_scales(e_index.size, short)
    return float(np.sum(laplace_costs().bits(side_symbols(e_index, u_index), index)))


def energy_bits(e_index: np.ndarray, *, short: bool) -> float:
    """Exact bits of one channel's energy indices alone."""
    _, index = side_scales(e_index.size, short)
    return float(np.sum(laplace_costs().bits(_deltas(e_index, ENERGY_FIRST_MEAN), index[:e_index.size])))


def step_bits(u_index: np.ndarray, *, short: bool) -> float:
    """Exact bits of one channel's step indices alone."""
    _, index = side_scales(u_index.size, short)
    return float(np.sum(laplace_costs().bits(_deltas(u_index, STEP_FIRST_MEAN), index[u_index.size:])))


@functools.lru_cache(maxsize=64)
def _channel_scales(n_bands: int, n_channels: int, short: bool) -> np.ndarray:
    scales = np.tile(side_scales(n_bands, short)[0], n_channels)
    scales.setflags(write=False)
    return scales


def encode_side(enc: RangeEncoder, energy: list[np.ndarray], step: list[np.ndarray], *, short: bool) -> None:
    """Code every channel's energy and step indices in one call."""
    values = np.concatenate([side_symbols(e, u) for e, u in zip(energy, step, strict=True)])
    enc.encode_laplace(values, scale=_channel_scales(energy[0].size, len(energy), short))


def decode_side(dec: RangeDecoder, *, n_bands: int, n_channels: int, short: bool
                ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Mirror of `encode_side`: (energy indices, step indices) per channel, range-checked."""
    scales = _channel_scales(n_bands, n_channels, short)
    values = dec.decode_laplace(shape=(scales.size,), scale=scales).reshape(n_channels, 2, n_bands)
    energy = np.cumsum(values[:, 0], axis=1) + ENERGY_FIRST_MEAN
    step = np.cumsum(values[:, 1], axis=1) + STEP_FIRST_MEAN
    if energy.min() < _q.ENERGY_MIN_INDEX or energy.max() > _q.ENERGY_MAX_INDEX:
        raise BitstreamError(f"mdct packet: energy index {int(energy.min())}..{int(energy.max())} outside "
                             f"{_q.ENERGY_MIN_INDEX}..{_q.ENERGY_MAX_INDEX}; the packet is corrupt")
    if step.min() < STEP_INDEX_MIN or step.max() > STEP_INDEX_MAX:
        raise BitstreamError(f"mdct packet: step index {int(step.min())}..{int(step.max())} outside "
                             f"{STEP_INDEX_MIN}..{STEP_INDEX_MAX}; the packet is corrupt")
    return list(energy), list(step)


# ----------------------------------------------------------------------------------------- coefficients

def encode_values(enc: RangeEncoder, values: np.ndarray, s_per_value: np.ndarray) -> None:
    if values.size:
        enc.encode_laplace(values, scale=snr_scales()[s_per_value])


def decode_values(dec: RangeDecoder, s_per_value: np.ndarray) -> np.ndarray:
    if s_per_value.size == 0:
        return np.zeros(0, dtype=np.int64)
    values = dec.decode_laplace(shape=s_per_value.shape, scale=snr_scales()[s_per_value])
    if np.any(np.abs(values) > _q.MAX_ABS_VALUE):
        raise BitstreamError("mdct packet: a quantized coefficient beyond any the encoder writes; the packet "
                             "is corrupt")
    return values


__all__ = ["LaplaceCosts", "decode_side", "decode_values", "encode_side", "encode_values", "energy_bits",
           "expected_bits_per_coefficient", "laplace_costs", "side_bits", "side_scales", "side_symbols",
           "snr_scale_index", "snr_scales", "step_bits"]
