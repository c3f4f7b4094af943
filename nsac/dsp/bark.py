"""The Bark scale, the absolute threshold of hearing, critical bands and Bark-spaced band edges for MDCT codecs.

Formulas from Painter & Spanias, "Perceptual coding of digital audio", Proc. IEEE 88(4), 2000, section II:
the critical-band rate of Zwicker & Terhardt (1980) and Terhardt's threshold in quiet (1979).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from nsac.errors import ParameterError

BARK_ATAN_SCALE_PER_HZ = 0.00076
"""z(f) = 13 atan(0.00076 f) + 3.5 atan((f / 7500)^2) Bark."""
BARK_SQUARE_REFERENCE_HZ = 7500.0
TQ_MIN_FREQUENCY_HZ = 20.0
"""The threshold in quiet is evaluated no lower than this (it diverges at 0 Hz): DC gets Tq(20 Hz), ~83 dB."""


def bark(frequency_hz: ArrayLike) -> NDArray[np.float64]:
    """Critical-band rate in Bark: ``z(f) = 13 atan(0.00076 f) + 3.5 atan((f / 7500)^2)``.

    Zwicker & Terhardt, JASA 68(5), 1980 (Painter & Spanias 2000, eq. 4). 1 kHz is 8.5 Bark, 24 kHz 24.9.

    Parameters
    ----------
    frequency_hz : array of frequencies in Hz, any shape

    Returns
    -------
    array of the same shape, Bark
    """
    f = np.asarray(frequency_hz, dtype=np.float64)
    return 13.0 * np.arctan(BARK_ATAN_SCALE_PER_HZ * f) + 3.5 * np.arctan((f / BARK_SQUARE_REFERENCE_HZ) ** 2)


def threshold_in_quiet_db(frequency_hz: ArrayLike) -> NDArray[np.float64]:
    """Absolute threshold of hearing in dB SPL (Terhardt 1979; Painter & Spanias 2000, eq. 1).

    ``Tq(f) = 3.64 (f/1000)^-0.8 - 6.5 exp(-0.6 (f/1000 - 3.3)^2) + 1e-3 (f/1000)^4``, with ``f`` floored
    at ``TQ_MIN_FREQUENCY_HZ``. Values: 100 Hz 23.0 dB, 1 kHz 3.4 dB, 3.3 kHz -5.0 dB (its minimum region),
    4 kHz -3.4 dB, 16 kHz 65.9 dB; it rises steeply above 15 kHz.

    Parameters
    ----------
    frequency_hz : array of frequencies in Hz, any shape

    Returns
    -------
    array of the same shape, dB SPL
    """
    khz = np.maximum(np.asarray(frequency_hz, dtype=np.float64), TQ_MIN_FREQUENCY_HZ) / 1000.0
    return 3.64 * khz ** -0.8 - 6.5 * np.exp(-0.6 * (khz - 3.3) ** 2) + 1e-3 * khz ** 4


def critical_band_index(frequency_hz: ArrayLike) -> NDArray[np.int64]:
    """The critical band (0, 1, ...) of each frequency: the integer part of its Bark value."""
    return np.floor(bark(frequency_hz)).astype(np.int64)


def bark_band_edges(n_bins: int, *, sample_rate: int, width_bark: float = 0.5, min_bins: int = 4,
                    max_bins: int = 64) -> NDArray[np.int64]:
    """Band edges, in bins of an ``n_bins``-coefficient MDCT, for bands about ``width_bark`` wide.

    A ready-made set of scale-factor bands for transform codecs: MDCT bin ``k`` is centred at
    ``(k + 1/2) sample_rate / (2 n_bins)`` Hz; bands grow with the critical bandwidth and are never
    narrower than ``min_bins`` coefficients (so low bands of short blocks merge) nor wider than
    ``max_bins`` (above about 12 kHz, where a Bark spans kilohertz).

    Parameters
    ----------
    n_bins : int
        Coefficients of the MDCT (1024 for a 2048-sample long window, 128 for a short one).
    sample_rate : int
        Hz.
    width_bark : float
        Target band width in Bark.
    min_bins, max_bins : int
        Smallest and largest band, in coefficients (the last band may be up to ``min_bins`` narrower or
        wider).

    Returns
    -------
    array of int, shape (n_bands + 1,)
        Increasing, from 0 to ``n_bins``: band ``b`` is ``[edges[b], edges[b + 1])``.
    """
    if n_bins < 1 or min_bins < 1 or max_bins < min_bins or not width_bark > 0:
        raise ParameterError(f"n_bins={n_bins}, min_bins={min_bins} must be >= 1, max_bins={max_bins} >= "
                             f"min_bins and width_bark={width_bark} > 0")
    if sample_rate <= 0:
        raise ParameterError(f"sample_rate={sample_rate} must be a positive integer in Hz")
    centres_bark = bark((np.arange(n_bins) + 0.5) * sample_rate / (2.0 * n_bins))
    edges = [0]
    start_bark = centres_bark[0]
    for k in range(1, n_bins):
        wide_enough = k - edges[-1] >= min_bins and centres_bark[k] - start_bark >= width_bark
        if wide_enough or k - edges[-1] >= max_bins:
            edges.append(k)
            start_bark = centres_bark[k]
    if n_bins - edges[-1] < min_bins and len(edges) > 1:
        edges.pop()  # fold a runt last band into the one before
    edges.append(n_bins)
    return np.asarray(edges, dtype=np.int64)


__all__ = ["TQ_MIN_FREQUENCY_HZ", "bark", "bark_band_edges", "critical_band_index", "threshold_in_quiet_db"]
