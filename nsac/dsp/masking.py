"""The masking threshold in the MDCT domain: allowed noise per MDCT coefficient and per band, SMR and NMR.

Psychoacoustic model 1 (:mod:`nsac.dsp.psychoacoustic`) gives a threshold in dB SPL per FFT bin. A transform
coder needs it as the quantisation-noise energy each MDCT coefficient (of :mod:`nsac.dsp.mdct`, orthonormal,
any size) may carry unheard. A noise whose PSD reads ``T`` dB in the bins near frequency ``f`` has variance
density ``10^(T / 10) * noise_density_scale(n_fft)`` there, and that is the expected square of an orthonormal
MDCT coefficient of it at ``f``. So the allowed noise energy of MDCT coefficient ``k`` is the density of the
threshold over the frequencies the coefficient covers, ``[k, k + 1) * sample_rate / (2 n_mdct)``, reduced over
the FFT bins that overlap them (their minimum by default, as ISO/IEC 11172-3 layer I takes the minimum of the
threshold over a sub-band). For a band of coefficients the allowed energy is its width times the minimum
(default) or the sum over its coefficients.

These conversions assume ``level="full_scale"`` (an absolute calibration); with ``"frame_peak"`` the result
is relative to each frame's loudest bin. Then ``SMR = 10 log10(signal energy / allowed noise)`` and
``NMR = 10 log10(noise energy / allowed noise) = SMR - SNR`` per band, in dB; noise is inaudible where
NMR < 0 (Brandenburg, "Evaluation of quality for audio encoding at low bit rates", AES 1987).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from nsac.dsp import mdct as _mdct
from nsac.dsp.psychoacoustic import N_FFT, Level, block_threshold_db, noise_density_scale
from nsac.errors import ParameterError

Reduce = Literal["min", "mean"]
BandReduce = Literal["min", "sum"]

N_FFT_SHORT = 256
"""Default FFT size of the model for short blocks (AAC's psychoacoustic model uses 256 too)."""
_ENERGY_FLOOR = 1e-30  # keeps SMR/NMR finite for silent bands (about -300 dB)


def threshold_per_mdct_bin(threshold_db: ArrayLike, *, n_mdct: int, reduce: Reduce = "min"
                           ) -> NDArray[np.float64]:
    """Allowed noise energy per MDCT coefficient from a masking threshold per FFT bin.

    Parameters
    ----------
    threshold_db : array, shape (..., n_fft // 2 + 1)
        Global masking threshold in dB SPL (``Masking.threshold_db``, calibrated "full_scale").
    n_mdct : int
        Coefficients of the MDCT (a block of ``2 n_mdct`` samples at the same rate).
    reduce : {"min", "mean"}
        How the FFT bins that overlap a coefficient's frequency range combine: the lowest density
        (conservative, ISO layer I style) or the overlap-weighted mean density.

    Returns
    -------
    array, shape (..., n_mdct)
        Expected squared error each coefficient of :func:`nsac.dsp.mdct.mdct` may carry unheard.
    """
    thr = np.asarray(threshold_db, dtype=np.float64)
    n_fft = 2 * (thr.shape[-1] - 1)
    if n_mdct < 1:
        raise ParameterError(f"n_mdct={n_mdct} must be a positive number of coefficients")
    density = 10.0 ** (thr / 10.0) * noise_density_scale(n_fft)
    index, weight = _overlap(n_fft, int(n_mdct))
    gathered = density[..., index]
    if reduce == "min":
        return np.where(weight > 0, gathered, np.inf).min(axis=-1)
    if reduce == "mean":
        return (gathered * weight).sum(axis=-1)
    raise ParameterError(f"reduce={reduce!r} must be 'min' or 'mean'")


@functools.lru_cache(maxsize=32)
def _overlap(n_fft: int, n_mdct: int) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """FFT bins overlapping each MDCT coefficient's band (index, weight), shape (n_mdct, width) each.

    In cycles per sample, coefficient k covers [k, k + 1) / (2 n_mdct) and FFT bin j [j - 1/2, j + 1/2) / n_fft
    (clipped to [0, 1/2]); weights are overlap fractions summing to 1 per coefficient.
    """
    n_bins = n_fft // 2 + 1
    k = np.arange(n_mdct)
    low, high = k / (2.0 * n_mdct) * n_fft, (k + 1) / (2.0 * n_mdct) * n_fft  # in FFT-bin units
    first = np.floor(low + 0.5).astype(np.int64)
    last = np.minimum(np.ceil(high + 0.5).astype(np.int64) - 1, n_bins - 1)
    width = int((last - first).max()) + 1
    index = np.minimum(first[:, None] + np.arange(width)[None, :], last[:, None])
    overlap = np.clip(np.minimum(high[:, None], index + 0.5) - np.maximum(low[:, None], index - 0.5), 0.0, None)
    overlap[:, 1:] *= index[:, 1:] != index[:, :-1]  # a repeated (clipped) index adds nothing
    weight = overlap / overlap.sum(axis=1, keepdims=True)
    index.setflags(write=False)
    weight.setflags(write=False)
    return index, weight


def band_sum(values: ArrayLike, *, band_edges: ArrayLike) -> NDArray[np.float64]:
    """Sum over each band of the last axis: (..., n_bins) -> (..., n_bands), bands ``[edges[b], edges[b+1])``."""
    v = np.asarray(values, dtype=np.float64)
    edges = _check_edges(band_edges, n_bins=v.shape[-1])
    return np.add.reduceat(v, edges[:-1], axis=-1)


def band_energy(coefficients: ArrayLike, *, band_edges: ArrayLike) -> NDArray[np.float64]:
    """Energy (sum of squares) of MDCT coefficients per band, (..., n_bins) -> (..., n_bands)."""
    c = np.asarray(coefficients, dtype=np.float64)
    return band_sum(c * c, band_edges=band_edges)


def band_threshold(bin_threshold: ArrayLike, *, band_edges: ArrayLike, reduce: BandReduce = "min"
                   ) -> NDArray[np.float64]:
    """Allowed noise energy per band from the allowed energy per coefficient.

    Parameters
    ----------
    bin_threshold : array, shape (..., n_bins)
        From :func:`threshold_per_mdct_bin`.
    band_edges : array of int, shape (n_bands + 1,)
        Increasing from 0 to n_bins (scale-factor bands, e.g. :func:`nsac.dsp.bark.bark_band_edges`).
    reduce : {"min", "sum"}
        "min": band width times the lowest allowed energy in it (noise spread evenly over the band stays
        masked in every coefficient; ISO layer I); "sum": the total (noise shaped like the threshold).

    Returns
    -------
    array, shape (..., n_bands)
    """
    t = np.asarray(bin_threshold, dtype=np.float64)
    edges = _check_edges(band_edges, n_bins=t.shape[-1])
    if reduce == "sum":
        return np.add.reduceat(t, edges[:-1], axis=-1)
    if reduce == "min":
        return np.minimum.reduceat(t, edges[:-1], axis=-1) * np.diff(edges)
    raise ParameterError(f"reduce={reduce!r} must be 'min' or 'sum'")


def smr_db(signal_energy: ArrayLike, threshold_energy: ArrayLike) -> NDArray[np.float64]:
    """Signal-to-mask ratio in dB per band: ``10 log10(signal energy / allowed noise energy)``."""
    return _ratio_db(signal_energy, threshold_energy)


def nmr_db(noise_energy: ArrayLike, threshold_energy: ArrayLike) -> NDArray[np.float64]:
    """Noise-to-mask ratio in dB per band: ``10 log10(noise energy / allowed noise energy) = SMR - SNR``.

    Noise is inaudible where it is below 0 dB. (REFERENCE eq. 21 writes SNR - SMR; the sign that makes
    "NMR < 0 is inaudible" hold is this one.)
    """
    return _ratio_db(noise_energy, threshold_energy)


def _ratio_db(numerator: ArrayLike, denominator: ArrayLike) -> NDArray[np.float64]:
    top = np.maximum(np.asarray(numerator, dtype=np.float64), _ENERGY_FLOOR)
    bottom = np.maximum(np.asarray(denominator, dtype=np.float64), _ENERGY_FLOOR)
    return 10.0 * np.log10(top / bottom)


def mdct_frame_thresholds(signal: ArrayLike, *, sample_rate: int, n_bins: int,
                          sequence: Sequence[_mdct.WindowType] | None = None, n_fft: int = N_FFT,
                          n_fft_short: int = N_FFT_SHORT, reduce: Reduce = "min",
                          level: Level = "full_scale") -> NDArray[np.float64]:
    """Allowed noise energy per MDCT coefficient for every frame of :func:`nsac.dsp.mdct.mdct_analysis`.

    The threshold of a long (or start, stop) frame t is the one over the middle ``n_bins`` samples of its
    window, signal samples ``[t n_bins - n_bins / 2, t n_bins + n_bins / 2)``, where its window carries most
    of its energy (:func:`nsac.dsp.psychoacoustic.block_threshold_db`: the minimum over the ``n_fft`` frames
    that cover them). Short block j of a short frame takes the threshold of one ``n_fft_short`` frame centred
    on the middle of the block, ``t n_bins - n_bins / 2 + (j + 1/2) n_bins / 8``.

    Parameters
    ----------
    signal : array, shape (..., samples)
        Full scale +-1, the signal given to ``mdct_analysis``.
    sample_rate : int
        Hz.
    n_bins : int
        MDCT coefficients per frame.
    sequence : window types, length n_frames, optional
        Default all long.
    n_fft, n_fft_short : int
        FFT sizes of the model for long and short blocks.
    reduce, level
        See :func:`threshold_per_mdct_bin` and :func:`nsac.dsp.psychoacoustic.analyze`.

    Returns
    -------
    array, shape (..., n_frames, n_bins)
        Same layout as the coefficients (short frames: eight blocks of n_bins / 8 one after the other).
    """
    x = np.asarray(signal, dtype=np.float64)
    count = _mdct.n_frames(x.shape[-1], n_bins=n_bins)
    types = _mdct._resolve_sequence(sequence, count=count, n_bins=n_bins)
    out = np.empty((*x.shape[:-1], count, n_bins))
    frame_start = np.arange(count) * n_bins - n_bins // 2
    long_frames = np.array([t for t, kind in enumerate(types) if kind != "short"], dtype=np.int64)
    short_frames = np.array([t for t, kind in enumerate(types) if kind == "short"], dtype=np.int64)
    if long_frames.size:
        threshold = block_threshold_db(x, sample_rate=sample_rate, starts=frame_start[long_frames],
                                       length=n_bins, n_fft=n_fft, level=level)
        out[..., long_frames, :] = threshold_per_mdct_bin(threshold, n_mdct=n_bins, reduce=reduce)
    if short_frames.size:
        n_short = n_bins // _mdct.N_SHORT_BLOCKS
        starts = frame_start[short_frames][:, None] + n_short * np.arange(_mdct.N_SHORT_BLOCKS)[None, :]
        threshold = block_threshold_db(x, sample_rate=sample_rate, starts=starts.reshape(-1), length=n_short,
                                       n_fft=n_fft_short, level=level)
        per_bin = threshold_per_mdct_bin(threshold, n_mdct=n_short, reduce=reduce)
        out[..., short_frames, :] = per_bin.reshape(*x.shape[:-1], short_frames.size, n_bins)
    return out


def noise_at_threshold(threshold_db: ArrayLike, *, n_samples: int, offset_db: float = 0.0, guard_bins: int = 2,
                       rng: np.random.Generator | None = None) -> NDArray[np.float64]:
    """Stationary Gaussian noise whose PSD, read by the model, follows a threshold per FFT bin.

    Coloured by a frequency-domain filter over the whole length: the density of :func:`threshold_per_mdct_bin`
    of the lowest threshold within ``+-guard_bins`` FFT bins (the Hann window's main lobe spans +-2 bins, so
    no bin reads louder noise leaking in from a neighbour with a higher threshold), interpolated in dB
    between FFT bins. With ``offset_db < 0`` it lies under the mask: the noise a transparent coder may add;
    for listening tests, NMR checks and loss tests. Cap the threshold first where it is huge (above 16 kHz
    and at DC the threshold in quiet exceeds 60 dB SPL, so noise "at threshold" there is very loud).

    Parameters
    ----------
    threshold_db : array, shape (n_fft // 2 + 1,)
        A masking threshold in dB SPL (e.g. the minimum over frames of ``Masking.threshold_db``).
    n_samples : int
        Length of the noise.
    offset_db : float
        Level relative to the threshold.
    guard_bins : int
        Half-width of the running minimum over FFT bins (0: the threshold as given).
    rng : numpy Generator, optional
        Source of randomness (default: a fresh unseeded one).

    Returns
    -------
    array, shape (n_samples,), full scale +-1
    """
    thr = np.asarray(threshold_db, dtype=np.float64).reshape(-1)
    n_fft = 2 * (thr.size - 1)
    generator = np.random.default_rng() if rng is None else rng
    if guard_bins < 0:
        raise ParameterError(f"guard_bins={guard_bins} must be >= 0")
    padded = np.pad(thr, guard_bins, mode="edge")
    lowest = np.lib.stride_tricks.sliding_window_view(padded, 2 * guard_bins + 1).min(axis=-1)
    density_db = lowest + offset_db + 10.0 * np.log10(noise_density_scale(n_fft))
    frequencies = np.arange(n_samples // 2 + 1) / n_samples  # cycles per sample
    gain = 10.0 ** (np.interp(frequencies, np.arange(thr.size) / n_fft, density_db) / 20.0)
    spectrum = np.fft.rfft(generator.standard_normal(n_samples)) * gain
    return np.fft.irfft(spectrum, n_samples)


def _check_edges(band_edges: ArrayLike, *, n_bins: int) -> NDArray[np.int64]:
    edges = np.asarray(band_edges, dtype=np.int64).reshape(-1)
    if edges.size < 2 or edges[0] != 0 or edges[-1] != n_bins or np.any(np.diff(edges) <= 0):
        raise ParameterError(f"band_edges must increase strictly from 0 to {n_bins} (the number of bins); "
                             f"got {edges.tolist()[:6]}{'...' if edges.size > 6 else ''}")
    return edges


__all__ = ["N_FFT_SHORT", "BandReduce", "Reduce", "band_energy", "band_sum", "band_threshold",
           "mdct_frame_thresholds", "nmr_db", "noise_at_threshold", "smr_db", "threshold_per_mdct_bin"]
