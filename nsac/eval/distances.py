"""Signal-level distances between a reference and a decoded signal: SI-SDR, log-spectral and mel distance.

Plain numpy/scipy, so these always run. All take equal-length mono float signals at any rate
(line them up first with :func:`nsac.eval.align.align`) and compute at that rate.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import scipy.signal
from numpy.typing import ArrayLike, NDArray

from nsac.errors import AudioError
from nsac.eval import align as _align

LSD_WINDOW_MS = 32.0
LSD_HOP_MS = 8.0
LSD_POWER_FLOOR = 1e-10
"""STFT power floor (-100 dB; a full-scale sine peaks at -6 dB) so silent bins compare as equal, not as -inf."""

MEL_RESOLUTIONS = ((8.0, 20), (16.0, 40), (32.0, 80), (64.0, 80), (128.0, 80))
"""(window_ms, n_mels) of each STFT in :func:`mel_distance`; hop is a quarter window."""
MEL_MAGNITUDE_FLOOR = 1e-5
"""Mel-band magnitude floor (-100 dB) for :func:`mel_distance`."""

_SI_SDR_NOISE_FLOOR_RELATIVE = 1e-30  # caps SI-SDR of identical signals at 300 dB instead of inf

def si_sdr(reference: ArrayLike, degraded: ArrayLike, *, sample_rate: int) -> float:
    """Scale-invariant signal-to-distortion ratio in dB (Le Roux et al., ICASSP 2019), zero-mean signals.

    The reference is scaled to best fit the degraded signal; what is left is distortion.
    Identical signals give 300 dB (a cap, instead of infinity). ``sample_rate`` is only checked.
    """
    ref, deg, _ = _align.intrusive_pair(reference, degraded, sample_rate=sample_rate)
    ref = ref - ref.mean()
    deg = deg - deg.mean()
    ref_energy = float(np.dot(ref, ref))
    if ref_energy == 0.0:
        raise AudioError("si_sdr: the reference is constant (silent); SI-SDR is undefined")
    target = (np.dot(deg, ref) / ref_energy) * ref
    target_energy = float(np.dot(target, target))
    noise = deg - target
    noise_energy = max(float(np.dot(noise, noise)), _SI_SDR_NOISE_FLOOR_RELATIVE * target_energy)
    if target_energy == 0.0:
        return -math.inf
    return 10.0 * math.log10(target_energy / noise_energy)


def _stft_magnitude(signal: NDArray[np.float64], *, n_window: int, n_hop: int) -> NDArray[np.float64]:
    """|STFT|, shape (n_fft // 2 + 1, frames), Hann window scaled so a full-scale sine peaks near 0.5."""
    n_window = min(n_window, signal.size)
    _, _, spectrum = scipy.signal.stft(signal, window="hann", nperseg=n_window, noverlap=n_window - n_hop,
                                       boundary="zeros", padded=True, scaling="spectrum")
    return np.abs(spectrum)


def log_spectral_distance(reference: ArrayLike, degraded: ArrayLike, *, sample_rate: int) -> float:
    """Log-spectral distance in dB at the input rate: RMS over frequency of the difference of the
    two power spectra in dB, averaged over frames (Gray & Markel, IEEE TASSP 1976).

    STFT: Hann, ``LSD_WINDOW_MS`` window, ``LSD_HOP_MS`` hop; powers floored at ``LSD_POWER_FLOOR``.
    """
    ref, deg, rate_hz = _align.intrusive_pair(reference, degraded, sample_rate=sample_rate)
    n_window = max(round(LSD_WINDOW_MS * 1e-3 * rate_hz), 2)
    n_hop = max(round(LSD_HOP_MS * 1e-3 * rate_hz), 1)
    ref_db = 10.0 * np.log10(np.maximum(_stft_magnitude(ref, n_window=n_window, n_hop=n_hop) ** 2,
                                        LSD_POWER_FLOOR))
    deg_db = 10.0 * np.log10(np.maximum(_stft_magnitude(deg, n_window=n_window, n_hop=n_hop) ** 2,
                                        LSD_POWER_FLOOR))
    return float(np.mean(np.sqrt(np.mean((ref_db - deg_db) ** 2, axis=0))))


def _mel_filterbank(*, n_mels: int, n_fft: int, sample_rate: int) -> NDArray[np.float64]:
    """Triangular filters on the HTK mel scale (2595 log10(1 + f/700)), 0 Hz to Nyquist, each
    normalised to unit sum so a band reads the mean magnitude under it; empty filters dropped.
    Shape (bands, n_fft // 2 + 1)."""
    def hz_to_mel(hz: NDArray[Any]) -> NDArray[np.float64]:
        return np.asarray(2595.0 * np.log10(1.0 + hz / 700.0), dtype=np.float64)

    bin_mels = hz_to_mel(np.fft.rfftfreq(n_fft, d=1.0 / sample_rate))
    edges = np.linspace(0.0, hz_to_mel(np.array(sample_rate / 2.0, dtype=np.float64)), n_mels + 2)
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    weights = np.maximum(0.0, np.minimum((bin_mels - lower) / (centre - lower),
                                         (upper - bin_mels) / (upper - centre)))
    sums = weights.sum(axis=1)
    return weights[sums > 0] / sums[sums > 0, None]


def mel_distance(reference: ArrayLike, degraded: ArrayLike, *, sample_rate: int) -> float:
    """Multi-resolution log-mel L1 distance in dB at the input rate: the mean absolute difference of
    mel-band magnitudes in dB, averaged over the STFT resolutions in ``MEL_RESOLUTIONS``.

    The spectral-reconstruction distance of neural codec training (as in Kumar et al., "High-fidelity
    audio compression with improved RVQGAN", 2023), reported as a metric; 0 for identical signals.
    """
    ref, deg, rate_hz = _align.intrusive_pair(reference, degraded, sample_rate=sample_rate)
    distances = []
    for window_ms, n_mels in MEL_RESOLUTIONS:
        n_window = min(max(round(window_ms * 1e-3 * rate_hz), 2), ref.size)
        n_hop = max(n_window // 4, 1)
        bank = _mel_filterbank(n_mels=n_mels, n_fft=n_window, sample_rate=rate_hz)
        ref_db = 20.0 * np.log10(np.maximum(bank @ _stft_magnitude(ref, n_window=n_window, n_hop=n_hop),
                                            MEL_MAGNITUDE_FLOOR))
        deg_db = 20.0 * np.log10(np.maximum(bank @ _stft_magnitude(deg, n_window=n_window, n_hop=n_hop),
                                            MEL_MAGNITUDE_FLOOR))
        distances.append(float(np.mean(np.abs(ref_db - deg_db))))
    return float(np.mean(distances))
