"""LPCNet's 18 Bark-like triangular bands on a 20 ms, 16 kHz spectrum, and the cepstrum over them.

The layout follows Valin & Skoglund 2019 (and Valin 2018, RNNoise): 18 band *centres* at

    0 200 400 600 800 1k 1.2k 1.4k 1.6k 2k 2.4k 2.8k 3.2k 4k 4.8k 5.6k 6.8k 8k  Hz

(200 Hz apart up to 1.6 kHz, then about Bark-spaced). Each band is a triangle that rises linearly from the
previous centre and falls linearly to the next, so neighbouring triangles sum to one on every FFT bin; the
first and last bands are half triangles and count twice. On a 320-point FFT (50 Hz bins)::

    weight  1 |\\    /\\    /\\      /\\
              |  \\/    \\/    \\ .. /  \\ ...
            0 +--------------------------------->  bin
              0  4     8    12   56   64

The cepstrum is the orthonormal DCT-II of the log10 band energies (18 coefficients); the DCT being
orthonormal, ``10 * ||c1 - c2|| / sqrt(18)`` is the RMS difference of the band levels in dB.
"""

from __future__ import annotations

import functools

import numpy as np
import scipy.fft
from numpy.typing import ArrayLike, NDArray

N_BANDS = 18
"""Bands, and cepstral coefficients, per frame."""
BAND_CENTRES_HZ: tuple[float, ...] = (
    0.0, 200.0, 400.0, 600.0, 800.0, 1000.0, 1200.0, 1400.0, 1600.0,
    2000.0, 2400.0, 2800.0, 3200.0, 4000.0, 4800.0, 5600.0, 6800.0, 8000.0,
)
"""Centre (peak) of each triangular band, Hz."""
SAMPLE_RATE_HZ = 16000
N_FFT = 320
"""20 ms analysis window at 16 kHz; bins are 50 Hz apart."""
N_BINS = N_FFT // 2 + 1


@functools.cache
def band_centre_bins(*, n_fft: int = N_FFT, sample_rate_hz: int = SAMPLE_RATE_HZ) -> tuple[int, ...]:
    """The FFT bin of each band centre, shape (18,) as a tuple of ints (0, 4, 8, ..., 160 at 320 points)."""
    hz_per_bin = sample_rate_hz / n_fft
    return tuple(round(f / hz_per_bin) for f in BAND_CENTRES_HZ)


@functools.cache
def _interpolation_matrix(n_fft: int, sample_rate_hz: int) -> NDArray[np.float64]:
    """(18, n_bins): weight of band i on bin j, the triangles without the edge doubling.

    The Nyquist bin (the last centre) belongs to no band: the reference layout stops the last triangle one
    bin short, and so do we, which keeps a band's weights summing to a whole number of bins.
    """
    centres = band_centre_bins(n_fft=n_fft, sample_rate_hz=sample_rate_hz)
    matrix = np.zeros((N_BANDS, n_fft // 2 + 1))
    for i in range(N_BANDS - 1):
        width = centres[i + 1] - centres[i]
        frac = np.arange(width) / width
        matrix[i, centres[i]: centres[i + 1]] += 1.0 - frac
        matrix[i + 1, centres[i]: centres[i + 1]] += frac
    matrix.setflags(write=False)
    return matrix


@functools.cache
def band_weights(*, n_fft: int = N_FFT, sample_rate_hz: int = SAMPLE_RATE_HZ) -> NDArray[np.float64]:
    """Analysis weights, shape (18, n_bins): the triangles, first and last doubled (they are half bands)."""
    weights = _interpolation_matrix(n_fft, sample_rate_hz).copy()
    weights[0] *= 2.0
    weights[-1] *= 2.0
    weights.setflags(write=False)
    return weights


@functools.cache
def band_compensation(*, n_fft: int = N_FFT, sample_rate_hz: int = SAMPLE_RATE_HZ) -> NDArray[np.float64]:
    """Per-band factor that turns a band energy back into a per-bin level, shape (18,).

    A band's energy sums its triangle's bins: a flat spectrum of power ``P`` per bin gives
    ``P * sum(weights)``.
    Dividing by the sum relative to a 4-bin (200 Hz) band, ``4 / sum(weights)``, makes the bands of a flat
    spectrum equal (1 for the 200 Hz bands, 0.8 for the first, 0.17 for the last).
    """
    base = band_centre_bins(n_fft=n_fft, sample_rate_hz=sample_rate_hz)[1]
    compensation = base / band_weights(n_fft=n_fft, sample_rate_hz=sample_rate_hz).sum(axis=-1)
    compensation.setflags(write=False)
    return compensation


def band_energies(power: ArrayLike, *, n_fft: int = N_FFT,
                  sample_rate_hz: int = SAMPLE_RATE_HZ) -> NDArray[np.float64]:
    """Energies of the 18 bands from a power spectrum.

    Parameters
    ----------
    power : ``|X[k]|^2``, shape (..., n_fft // 2 + 1)

    Returns
    -------
    shape (..., 18)
    """
    return np.asarray(power, dtype=np.float64) @ band_weights(n_fft=n_fft, sample_rate_hz=sample_rate_hz).T


def interpolate_bands(values: ArrayLike, *, n_fft: int = N_FFT,
                      sample_rate_hz: int = SAMPLE_RATE_HZ) -> NDArray[np.float64]:
    """Per-bin values linearly interpolated between band centres (zero on the Nyquist bin).

    Parameters
    ----------
    values : one value per band, shape (..., 18)

    Returns
    -------
    shape (..., n_fft // 2 + 1)
    """
    return np.asarray(values, dtype=np.float64) @ _interpolation_matrix(n_fft, sample_rate_hz)


def cepstrum_from_log_bands(log_energies: ArrayLike) -> NDArray[np.float64]:
    """Orthonormal DCT-II over the bands: log10 band energies (..., 18) to cepstrum (..., 18)."""
    return scipy.fft.dct(np.asarray(log_energies, dtype=np.float64), type=2, norm="ortho", axis=-1)


def log_bands_from_cepstrum(cepstrum: ArrayLike) -> NDArray[np.float64]:
    """The inverse of :func:`cepstrum_from_log_bands` (orthonormal DCT-III), shape (..., 18)."""
    return scipy.fft.idct(np.asarray(cepstrum, dtype=np.float64), type=2, norm="ortho", axis=-1)
