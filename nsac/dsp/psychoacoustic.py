"""MPEG-1 psychoacoustic model 1, vectorised over frames: maskers and the global masking threshold per FFT bin.

Implements ISO/IEC 11172-3 Annex D, psychoacoustic model 1, in the form of Painter & Spanias, "Perceptual
coding of digital audio", Proc. IEEE 88(4), 2000, section V.A (the model of Zhen et al., IEEE SPL 2020):

1. PSD: ``P(k) = PN + 10 log10 |FFT(hann * x)(k)|^2`` with ``PN`` set so a full-scale sine at a bin centre
   peaks at ``FULL_SCALE_SPL_DB`` = 96 dB SPL (``level="full_scale"``, fixed: the threshold follows the
   signal's level), or so each frame's largest bin is 96 dB (``level="frame_peak"``, as the public code of
   Zhen et al. does: level-independent).
2. Tonal maskers: local maxima (``P(k) > P(k-1)``, ``P(k) >= P(k+1)``) at least 7 dB above ``P(k +- dk)``
   for ``dk`` = 2 (2 < k < 63), 2..3 (63 <= k < 127), 2..6 (127 <= k < 250) at ``n_fft = 512``, the ISO
   ranges at every rate; other FFT sizes scale the bin limits and ``dk`` with ``n_fft / 512`` (same widths in
   Hz; ``dk >= 2``). Level: the power sum of bins k-1, k, k+1.
3. Non-tonal maskers: per critical band (integer Bark of :func:`nsac.dsp.bark.bark`), the power of the bins
   not within ``+-dk`` of a tonal masker, placed at the band's geometric-mean bin.
4. Decimation: maskers below the threshold in quiet go; of maskers closer than 0.5 Bark only the strongest
   stays (greedy from the strongest, as non-maximum suppression: a masker goes iff a stronger surviving one
   lies within 0.5 Bark; a tonal and a non-tonal masker at the same bin count as 0 Bark apart).
5. Individual thresholds ``T_TM = P - 0.275 z + SF(dz, P) - 6.025``, ``T_NM = P - 0.175 z + SF(dz, P) -
   2.025`` dB with the spreading function of :func:`spreading_function_db` (-3 <= dz < 8 Bark), and the
   global threshold, their power sum with the threshold in quiet, at every FFT bin.

The FFT has ``N_FFT`` = 512 points at every rate (as ISO's layer I and Painter & Spanias): 32 ms and 31.25 Hz
bins at 16 kHz, 10.7 ms and 93.75 Hz bins at 48 kHz; 256, 1024 and 2048 are allowed for other time/frequency
trade-offs (e.g. 256 for short blocks). Conversions of the threshold to MDCT bins and bands, SMR and NMR
live in :mod:`nsac.dsp.masking`; transient detection in :mod:`nsac.dsp.transient`.
"""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from nsac.dsp.bark import bark, critical_band_index, threshold_in_quiet_db
from nsac.errors import ParameterError

Level = Literal["full_scale", "frame_peak"]

N_FFT = 512
"""FFT size of the model at every sample rate (ISO/IEC 11172-3 layer I)."""
N_FFT_CHOICES = (256, 512, 1024, 2048)
MIN_SAMPLE_RATE_HZ = 8_000
MAX_SAMPLE_RATE_HZ = 48_000
TESTED_SAMPLE_RATES_HZ = (16_000, 32_000, 44_100, 48_000)
"""Rates the tests check the model at; any rate from MIN_SAMPLE_RATE_HZ to MAX_SAMPLE_RATE_HZ is accepted."""

FULL_SCALE_SPL_DB = 96.0
"""PSD level of a full-scale sine at a bin centre (``level="full_scale"``), or of each frame's peak."""
TONAL_PROMINENCE_DB = 7.0
"""A tonal masker stands at least this far above its neighbours at +-dk."""
TONAL_BIN_LIMITS_512 = (3, 63, 127, 250)
"""At n_fft = 512: first bin that can be tonal, the bins where the +-dk range widens, and the end (exclusive)."""
TONAL_MAX_DK_512 = (2, 3, 6)
"""Largest dk of each range, at n_fft = 512 (dk runs from 2)."""
TONAL_BARK_SLOPE_DB = 0.275
TONAL_OFFSET_DB = 6.025
NOISE_BARK_SLOPE_DB = 0.175
NOISE_OFFSET_DB = 2.025
DECIMATION_DISTANCE_BARK = 0.5
SPREAD_MIN_BARK = -3.0
SPREAD_MAX_BARK = 8.0
"""The spreading function covers maskees from 3 Bark below to (excluding) 8 Bark above a masker."""

_POWER_FLOOR = 1e-30  # |FFT|^2 floor: digital silence reads about -300 dB + PN instead of -inf
_MAX_EXPONENT = np.float32(80.0)  # caps an individual threshold at 347 dB SPL: float32 exp stays finite
_CHUNK_FRAMES = 128  # frames per vectorised pass: bounds memory at (frames x maskers x bins) float64
_DB_PER_NEPER_POWER = 10.0 / math.log(10.0)  # 10 log10(x) == _DB_PER_NEPER_POWER * ln(x)


# ---------------------------------------------------------------- the published formulas

def spreading_function_db(dz_bark: ArrayLike, masker_db: ArrayLike) -> NDArray[np.float64]:
    """The spreading function of psychoacoustic model 1, ``SF(dz, P)`` in dB (Painter & Spanias 2000, eq. 25).

    ``17 dz - 0.4 P + 11`` (-3 <= dz < -1), ``(0.4 P + 6) dz`` (-1 <= dz < 0), ``-17 dz`` (0 <= dz < 1),
    ``(0.15 P - 17) dz - 0.15 P`` (1 <= dz < 8), ``-inf`` elsewhere; ``dz = z(maskee) - z(masker)``.

    Parameters
    ----------
    dz_bark : array
        Bark distance from masker to maskee.
    masker_db : array, broadcastable with ``dz_bark``
        Masker level P in dB SPL.
    """
    dz = np.asarray(dz_bark, dtype=np.float64)
    level = np.asarray(masker_db, dtype=np.float64)
    offset, slope = _spread_terms(dz)
    return offset + level * slope


def individual_threshold_db(masker_db: ArrayLike, *, masker_bark: ArrayLike, maskee_bark: ArrayLike,
                            tonal: bool) -> NDArray[np.float64]:
    """Masking threshold that one masker casts, in dB SPL (Painter & Spanias 2000, eqs. 24 and 26).

    ``T_TM = P - 0.275 z + SF(dz, P) - 6.025`` for a tonal masker, ``T_NM = P - 0.175 z + SF(dz, P) - 2.025``
    for a non-tonal one; ``z`` the masker's Bark value, ``dz = maskee_bark - masker_bark``.
    """
    z = np.asarray(masker_bark, dtype=np.float64)
    level = np.asarray(masker_db, dtype=np.float64)
    slope, offset = (TONAL_BARK_SLOPE_DB, TONAL_OFFSET_DB) if tonal else (NOISE_BARK_SLOPE_DB, NOISE_OFFSET_DB)
    spread = spreading_function_db(np.asarray(maskee_bark, dtype=np.float64) - z, level)
    return level - slope * z + spread - offset


def _spread_terms(dz: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """SF(dz, P) = offset(dz) + P slope(dz): the spreading function is affine in the masker level."""
    offset = np.select([dz < SPREAD_MIN_BARK, dz < -1.0, dz < 0.0, dz < 1.0, dz < SPREAD_MAX_BARK],
                       [-np.inf, 17.0 * dz + 11.0, 6.0 * dz, -17.0 * dz, -17.0 * dz], default=-np.inf)
    slope = np.select([dz < SPREAD_MIN_BARK, dz < -1.0, dz < 0.0, dz < 1.0, dz < SPREAD_MAX_BARK],
                      [0.0, -0.4, 0.4 * dz, 0.0, 0.15 * (dz - 1.0)], default=0.0)
    return offset, slope


# ---------------------------------------------------------------- tables per (rate, FFT size)

@dataclass(frozen=True)
class ModelTables:
    """Everything of the model that depends only on the sample rate and FFT size (cached, read-only).

    Arrays over the ``n_fft // 2 + 1`` FFT bins unless stated.
    """

    sample_rate: int
    n_fft: int
    frequency_hz: NDArray[np.float64]
    bark: NDArray[np.float64]
    threshold_in_quiet_db: NDArray[np.float64]
    window: NDArray[np.float64]
    """Periodic Hann window, shape (n_fft,)."""
    psd_offset_db: float
    """PN: ``P = PN + 10 log10 |FFT|^2`` puts a full-scale sine at a bin centre at 96 dB SPL."""
    tonal_max_dk: NDArray[np.int64]
    """Largest dk examined at each bin; 0 where a bin cannot be tonal."""
    band_of_bin: NDArray[np.int64]
    """Critical band (integer Bark) of each bin."""
    band_masker_bin: NDArray[np.int64]
    """Per critical band present, the bin its non-tonal masker sits at (geometric mean of its bins)."""
    band_start: NDArray[np.int64]
    """First bin of each critical band present (bands are contiguous runs of bins)."""
    spread_gain: NDArray[np.float32]
    """(masker bin, maskee bin): ``(1 + slope(dz)) / c`` with ``SF(dz, P) = offset(dz) + P slope(dz)`` and
    ``c = 10 / ln 10``, so a masker of level P casts ``exp(P spread_gain + spread_offset + ...)``."""
    spread_offset: NDArray[np.float32]
    """(masker bin, maskee bin): ``offset(dz) / c``; -inf outside -3 <= dz < 8 Bark."""

    @property
    def n_bins(self) -> int:
        return self.n_fft // 2 + 1



def hann_window(n_fft: int) -> NDArray[np.float64]:
    """The periodic Hann window ``0.5 - 0.5 cos(2 pi n / n_fft)`` of the model, shape (n_fft,)."""
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n_fft) / n_fft)


def psd_offset_db(n_fft: int) -> float:
    """PN of ``P = PN + 10 log10 |FFT(hann x)|^2``: a full-scale sine at a bin centre reads 96 dB SPL.

    Its FFT peak is ``sum(hann) / 2 = n_fft / 4``, so ``PN = 96 - 20 log10(n_fft / 4)`` (about 54.1 dB at 512).
    """
    return FULL_SCALE_SPL_DB - 20.0 * math.log10(n_fft / 4.0)


def noise_density_scale(n_fft: int) -> float:
    """Multiply a PSD power ``10^(P / 10)`` by this to get the variance per sample of a white noise that
    reads P in a bin: ``10^(-PN / 10) / sum(hann^2)``, with ``sum(hann^2) = 3 n_fft / 8``.

    Equally, the expected square of a coefficient of the orthonormal MDCT of :mod:`nsac.dsp.mdct` (any
    size) of a noise whose PSD reads P near that coefficient's frequency (``level="full_scale"``).
    """
    return 10.0 ** (-psd_offset_db(n_fft) / 10.0) / (3.0 * n_fft / 8.0)


def check_sample_rate(sample_rate: int) -> int:
    """Return ``sample_rate`` as int or raise ParameterError if the model does not cover it."""
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)) or not (
            MIN_SAMPLE_RATE_HZ <= sample_rate <= MAX_SAMPLE_RATE_HZ):
        raise ParameterError(f"sample_rate={sample_rate!r}: the psychoacoustic model takes integer rates from "
                             f"{MIN_SAMPLE_RATE_HZ} to {MAX_SAMPLE_RATE_HZ} Hz; resample first")
    return int(sample_rate)


def model_tables(*, sample_rate: int, n_fft: int = N_FFT) -> ModelTables:
    """The model's tables for one sample rate (Hz) and FFT size (one of ``N_FFT_CHOICES``), cached."""
    rate = check_sample_rate(sample_rate)
    if n_fft not in N_FFT_CHOICES:
        raise ParameterError(f"n_fft={n_fft!r} must be one of {N_FFT_CHOICES}")
    return _model_tables(rate, int(n_fft))


@functools.lru_cache(maxsize=16)
def _model_tables(sample_rate: int, n_fft: int) -> ModelTables:
    n_bins = n_fft // 2 + 1
    bins = np.arange(n_bins)
    frequency_hz = bins * sample_rate / n_fft
    bark_of_bin = bark(frequency_hz)
    window = hann_window(n_fft)

    scale = n_fft / N_FFT
    limits = [round(limit * scale) for limit in TONAL_BIN_LIMITS_512]
    tonal_max_dk = np.zeros(n_bins, dtype=np.int64)
    for (first, end), dk in zip(itertools.pairwise(limits), TONAL_MAX_DK_512, strict=True):
        tonal_max_dk[first:end] = max(2, round(dk * scale))

    band_of_bin = critical_band_index(frequency_hz)
    band_start = np.flatnonzero(np.diff(band_of_bin, prepend=-1))
    masker_bins = []
    for band_first, band_end in itertools.pairwise([*band_start.tolist(), n_bins]):
        members = bins[band_first:band_end]
        positive = members[members > 0]
        masker_bins.append(int(np.rint(np.exp(np.mean(np.log(positive))))) if positive.size else int(members[0]))

    offset, slope = _spread_terms(bark_of_bin[None, :] - bark_of_bin[:, None])
    tables = ModelTables(sample_rate=sample_rate, n_fft=n_fft, frequency_hz=frequency_hz, bark=bark_of_bin,
                         threshold_in_quiet_db=threshold_in_quiet_db(frequency_hz), window=window,
                         psd_offset_db=psd_offset_db(n_fft), tonal_max_dk=tonal_max_dk, band_of_bin=band_of_bin,
                         band_masker_bin=np.asarray(masker_bins, dtype=np.int64), band_start=band_start,
                         spread_gain=((1.0 + slope) / _DB_PER_NEPER_POWER).astype(np.float32),
                         spread_offset=(offset / _DB_PER_NEPER_POWER).astype(np.float32))
    for value in vars(tables).values():
        if isinstance(value, np.ndarray):
            value.setflags(write=False)
    return tables


# ---------------------------------------------------------------- the model

@dataclass(frozen=True)
class Masking:
    """What psychoacoustic model 1 finds in each frame; arrays of shape (..., n_fft // 2 + 1), dB SPL."""

    psd_db: NDArray[np.float64]
    """Calibrated power spectrum P(k)."""
    threshold_db: NDArray[np.float64]
    """Global masking threshold: noise below it in a bin is inaudible."""
    tonal_db: NDArray[np.float64]
    """Level of each tonal masker kept after decimation, at its bin; -inf elsewhere."""
    noise_db: NDArray[np.float64]
    """Level of each non-tonal masker kept after decimation, at its bin; -inf elsewhere."""
    tables: ModelTables


def power_spectrum_db(frames: ArrayLike, *, sample_rate: int, level: Level = "full_scale") -> NDArray[np.float64]:
    """Calibrated PSD of frames, step 1 of the model.

    Parameters
    ----------
    frames : array, shape (..., n_fft)
        Time samples, full scale +-1; n_fft one of ``N_FFT_CHOICES``. The Hann window is applied here.
    sample_rate : int
        Hz (only checked).
    level : {"full_scale", "frame_peak"}
        Calibration, see the module docstring.

    Returns
    -------
    array, shape (..., n_fft // 2 + 1), dB SPL
    """
    x = np.asarray(frames, dtype=np.float64)
    tables = model_tables(sample_rate=sample_rate, n_fft=x.shape[-1])
    power = np.abs(np.fft.rfft(x * tables.window, axis=-1)) ** 2
    psd = tables.psd_offset_db + 10.0 * np.log10(np.maximum(power, _POWER_FLOOR))
    if level == "frame_peak":
        psd += FULL_SCALE_SPL_DB - psd.max(axis=-1, keepdims=True)
    elif level != "full_scale":
        raise ParameterError(f"level={level!r} must be 'full_scale' or 'frame_peak'")
    return psd


def analyze(frames: ArrayLike, *, sample_rate: int, level: Level = "full_scale") -> Masking:
    """Run psychoacoustic model 1 on frames of ``n_fft`` samples: maskers and global masking threshold.

    Parameters
    ----------
    frames : array, shape (..., n_fft)
        Time samples, full scale +-1 (not windowed); n_fft one of ``N_FFT_CHOICES``.
    sample_rate : int
        Hz, from ``MIN_SAMPLE_RATE_HZ`` to ``MAX_SAMPLE_RATE_HZ``.
    level : {"full_scale", "frame_peak"}
        PSD calibration (module docstring).

    Returns
    -------
    Masking
        PSD, global threshold and the kept maskers per bin, shape (..., n_fft // 2 + 1), dB SPL.
    """
    psd = power_spectrum_db(frames, sample_rate=sample_rate, level=level)
    return analyze_psd(psd, sample_rate=sample_rate)


def analyze_psd(psd_db: ArrayLike, *, sample_rate: int) -> Masking:
    """Steps 2-5 of the model on a calibrated PSD (from :func:`power_spectrum_db`), shape (..., n_fft // 2 + 1)."""
    psd = np.asarray(psd_db, dtype=np.float64)
    n_fft = 2 * (psd.shape[-1] - 1)
    tables = model_tables(sample_rate=sample_rate, n_fft=n_fft)
    flat = psd.reshape(-1, psd.shape[-1])
    threshold, tonal, noise = (np.empty_like(flat) for _ in range(3))
    for start in range(0, flat.shape[0], _CHUNK_FRAMES):
        part = slice(start, start + _CHUNK_FRAMES)
        threshold[part], tonal[part], noise[part] = _analyze_chunk(flat[part], tables)
    shape = psd.shape
    return Masking(psd_db=psd, threshold_db=threshold.reshape(shape), tonal_db=tonal.reshape(shape),
                   noise_db=noise.reshape(shape), tables=tables)


def _analyze_chunk(psd: NDArray[np.float64], tables: ModelTables
                   ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """(threshold, tonal maskers, non-tonal maskers) for a (frames, bins) PSD."""
    power = np.exp(psd / _DB_PER_NEPER_POWER)
    tonal_flags = _tonal_flags(psd, tables.tonal_max_dk)
    padded_power = np.pad(power, ((0, 0), (1, 1)))
    tonal_power = padded_power[:, :-2] + power + padded_power[:, 2:]
    tonal_db = np.where(tonal_flags, _DB_PER_NEPER_POWER * np.log(np.maximum(tonal_power, _POWER_FLOOR)), -np.inf)

    remaining = np.where(_near_tonal(tonal_flags, tables.tonal_max_dk), 0.0, power)
    band_power = np.add.reduceat(remaining, tables.band_start, axis=1)
    noise_db = np.full_like(psd, -np.inf)
    with np.errstate(divide="ignore"):
        noise_db[:, tables.band_masker_bin] = _DB_PER_NEPER_POWER * np.log(band_power)

    quiet = tables.threshold_in_quiet_db
    tonal_db[tonal_db < quiet] = -np.inf
    noise_db[noise_db < quiet] = -np.inf
    level, bins, is_tonal, valid = _compact_maskers(tonal_db, noise_db)
    kept = _decimate(level, tables.bark[bins], valid)

    # The (frames, maskers, bins) stage dominates the cost: float32 (thresholds within 1e-4 dB), in place,
    # and maskers that went get level -inf so they cast exp(-inf) = 0.
    masker_bark = tables.bark[bins]
    constant = np.where(is_tonal, -TONAL_BARK_SLOPE_DB * masker_bark - TONAL_OFFSET_DB,
                        -NOISE_BARK_SLOPE_DB * masker_bark - NOISE_OFFSET_DB) / _DB_PER_NEPER_POWER
    exponent = np.take(tables.spread_gain, bins, axis=0)
    exponent *= np.where(kept, level, -np.inf).astype(np.float32)[..., None]
    exponent += np.take(tables.spread_offset, bins, axis=0)
    exponent += constant.astype(np.float32)[..., None]
    np.minimum(exponent, _MAX_EXPONENT, out=exponent)
    np.exp(exponent, out=exponent)
    total = np.exp(quiet / _DB_PER_NEPER_POWER) + exponent.sum(axis=1, dtype=np.float64)
    threshold = _DB_PER_NEPER_POWER * np.log(total)

    rows = np.nonzero(kept)[0]
    kept_bins, kept_level, kept_tonal = bins[kept], level[kept], is_tonal[kept]
    tonal_out = np.full_like(psd, -np.inf)
    noise_out = np.full_like(psd, -np.inf)
    tonal_out[rows[kept_tonal], kept_bins[kept_tonal]] = kept_level[kept_tonal]
    noise_out[rows[~kept_tonal], kept_bins[~kept_tonal]] = kept_level[~kept_tonal]
    return threshold, tonal_out, noise_out


def _tonal_flags(psd: NDArray[np.float64], max_dk: NDArray[np.int64]) -> NDArray[np.bool_]:
    """Local maxima standing TONAL_PROMINENCE_DB above the bins at +-dk for dk = 2 .. max_dk(k)."""
    reach = int(max_dk.max())
    padded = np.pad(psd, ((0, 0), (reach, reach)), constant_values=-np.inf)
    n = psd.shape[-1]

    def shifted(offset: int) -> NDArray[np.float64]:
        return padded[:, reach + offset:reach + offset + n]

    flags = (max_dk > 0) & (psd > shifted(-1)) & (psd >= shifted(1))
    for dk in range(2, reach + 1):
        prominent = (psd - shifted(-dk) >= TONAL_PROMINENCE_DB) & (psd - shifted(dk) >= TONAL_PROMINENCE_DB)
        flags &= prominent | (max_dk < dk)
    return flags


def _near_tonal(tonal_flags: NDArray[np.bool_], max_dk: NDArray[np.int64]) -> NDArray[np.bool_]:
    """Bins within +-max_dk of a tonal masker (the masker's bin included): excluded from non-tonal power."""
    reach = int(max_dk.max())
    n = tonal_flags.shape[-1]
    near = tonal_flags.copy()
    for dk in range(1, reach + 1):
        source = tonal_flags & (max_dk >= dk)  # a masker at k covers k +- dk while dk <= max_dk(k)
        near[:, dk:] |= source[:, :n - dk]
        near[:, :n - dk] |= source[:, dk:]
    return near


def _compact_maskers(tonal_db: NDArray[np.float64], noise_db: NDArray[np.float64]
                     ) -> tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.bool_], NDArray[np.bool_]]:
    """Per frame, the candidate maskers in order of frequency, padded to the largest count.

    A tonal and a non-tonal masker at the same bin are 0 Bark apart: the weaker goes here (a tie keeps the
    tonal one). Returns (level dB, bin, is tonal, valid), each of shape (frames, maskers).
    """
    is_tonal_bin = tonal_db >= noise_db
    level_per_bin = np.where(is_tonal_bin, tonal_db, noise_db)
    candidate = level_per_bin > -np.inf
    rows, cols = np.nonzero(candidate)
    counts = candidate.sum(axis=1)
    width = max(int(counts.max(initial=0)), 1)
    position = np.arange(rows.size) - np.repeat(np.cumsum(counts) - counts, counts)
    frames = tonal_db.shape[0]
    level = np.full((frames, width), -np.inf)
    bins = np.zeros((frames, width), dtype=np.int64)
    is_tonal = np.zeros((frames, width), dtype=bool)
    level[rows, position] = level_per_bin[rows, cols]
    bins[rows, position] = cols
    is_tonal[rows, position] = is_tonal_bin[rows, cols]
    return level, bins, is_tonal, level > -np.inf


def _decimate(level: NDArray[np.float64], masker_bark: NDArray[np.float64], valid: NDArray[np.bool_]
              ) -> NDArray[np.bool_]:
    """Keep the strongest of maskers closer than DECIMATION_DISTANCE_BARK (greedy from the strongest).

    Ties in level go to the lower frequency. Iterates until every masker is decided: a masker is decided
    once every stronger masker near it is; the strongest undecided one always is, so this ends.
    """
    order = np.arange(level.shape[1])
    stronger = (level[:, None, :] > level[:, :, None]) | (
        (level[:, None, :] == level[:, :, None]) & (order[None, None, :] < order[None, :, None]))
    close = np.abs(masker_bark[:, None, :] - masker_bark[:, :, None]) < DECIMATION_DISTANCE_BARK
    dominated_by = stronger & close & valid[:, None, :] & valid[:, :, None]  # [frame, i, j]: j beats i
    decided = ~valid
    kept = np.zeros_like(valid)
    while not decided.all():
        ready = ~decided & ~(dominated_by & ~decided[:, None, :]).any(axis=2)
        suppressed = (dominated_by & kept[:, None, :]).any(axis=2)
        kept |= ready & ~suppressed
        decided |= ready
    return kept


# ---------------------------------------------------------------- framing a whole signal

def frame_centres(n_samples: int, *, hop: int) -> NDArray[np.int64]:
    """Centres of the frames :func:`masking_threshold` analyses: ``0, hop, 2 hop, ...`` up to n_samples."""
    if hop <= 0:
        raise ParameterError(f"hop={hop} must be a positive number of samples")
    return np.arange(0, max(n_samples, 1), hop, dtype=np.int64)


def frames_at(signal: ArrayLike, *, centres: ArrayLike, n_fft: int) -> NDArray[np.float64]:
    """Frames of ``n_fft`` samples centred at the given samples, zeros outside the signal.

    Parameters
    ----------
    signal : array, shape (..., samples)
    centres : array of int, shape (n_frames,)
        Frame t holds samples ``[centres[t] - n_fft // 2, centres[t] + n_fft // 2)``.

    Returns
    -------
    array, shape (..., n_frames, n_fft)
    """
    x = np.asarray(signal, dtype=np.float64)
    c = np.asarray(centres, dtype=np.int64).reshape(-1)
    half = n_fft // 2
    low = min(int(c.min(initial=0)) - half, 0)
    high = max(int(c.max(initial=0)) + half - x.shape[-1], 0)
    padded = np.pad(x, [(0, 0)] * (x.ndim - 1) + [(-low, high)])
    index = (c - half - low)[:, None] + np.arange(n_fft)[None, :]
    return padded[..., index]


def masking_threshold(signal: ArrayLike, *, sample_rate: int, n_fft: int = N_FFT, hop: int | None = None,
                      level: Level = "full_scale") -> Masking:
    """Psychoacoustic model 1 on a whole signal, frames centred every ``hop`` samples from sample 0.

    Parameters
    ----------
    signal : array, shape (..., samples)
        Full scale +-1.
    sample_rate : int
        Hz.
    n_fft : int
        FFT size (frame length); default ``N_FFT``.
    hop : int, optional
        Default ``n_fft // 2``; the frames are given by :func:`frame_centres` and :func:`frames_at`.

    Returns
    -------
    Masking
        Arrays of shape (..., n_frames, n_fft // 2 + 1).
    """
    x = np.asarray(signal, dtype=np.float64)
    centres = frame_centres(x.shape[-1], hop=n_fft // 2 if hop is None else hop)
    return analyze(frames_at(x, centres=centres, n_fft=n_fft), sample_rate=sample_rate, level=level)


def block_threshold_db(signal: ArrayLike, *, sample_rate: int, starts: ArrayLike, length: int,
                       n_fft: int = N_FFT, level: Level = "full_scale") -> NDArray[np.float64]:
    """The masking threshold over each block ``[start, start + length)`` of a signal, per FFT bin.

    A block no longer than ``n_fft`` gets one frame centred on it; a longer one ``ceil(length / n_fft)``
    frames spread evenly over it, and the lowest of their thresholds in each bin (noise spread over the
    block must be masked in every part of it: a quiet part before an attack keeps its low threshold).

    Parameters
    ----------
    signal : array, shape (..., samples)
    starts : array of int, shape (n_blocks,)
        First sample of each block (may lie outside the signal: zeros there).
    length : int
        Block length in samples.

    Returns
    -------
    array, shape (..., n_blocks, n_fft // 2 + 1), dB SPL
    """
    if length <= 0:
        raise ParameterError(f"length={length} must be a positive number of samples")
    s = np.asarray(starts, dtype=np.int64).reshape(-1)
    n_sub = max(1, -(-length // n_fft))
    offsets = np.rint((np.arange(n_sub) + 0.5) * length / n_sub).astype(np.int64)
    centres = (s[:, None] + offsets[None, :]).reshape(-1)
    x = np.asarray(signal, dtype=np.float64)
    masking = analyze(frames_at(x, centres=centres, n_fft=n_fft), sample_rate=sample_rate, level=level)
    threshold = masking.threshold_db.reshape(*x.shape[:-1], s.size, n_sub, -1)
    return threshold.min(axis=-2)


__all__ = ["FULL_SCALE_SPL_DB", "MAX_SAMPLE_RATE_HZ", "MIN_SAMPLE_RATE_HZ", "N_FFT", "N_FFT_CHOICES",
           "TESTED_SAMPLE_RATES_HZ", "Level", "Masking", "ModelTables", "analyze", "analyze_psd",
           "block_threshold_db", "check_sample_rate", "frame_centres", "frames_at", "hann_window",
           "individual_threshold_db", "masking_threshold", "model_tables", "noise_density_scale",
           "power_spectrum_db", "psd_offset_db", "spreading_function_db"]
