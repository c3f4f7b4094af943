"""Programme loudness after ITU-R BS.1770-4 (K-weighting, gated 400 ms blocks) and normalisation to a target.

Shared by training (loudness normalisation of crops) and listening tests (loudness-matched stimuli).

The two K-weighting biquads are designed at any sample rate from the analogue parameters that reproduce the
standard's 48 kHz coefficients (a +4 dB high shelf around 1.7 kHz and a 38 Hz high-pass), so that a 997 Hz
sine at full scale reads -3.01 LUFS at every rate.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.signal
from numpy.typing import NDArray

from nsac.errors import ParameterError

#: K-weighting stage 1, high shelf: gain, quality factor and centre frequency
SHELF_GAIN_DB = 3.999843853973347
SHELF_Q = 0.7071752369554196
SHELF_HZ = 1681.974450955533
SHELF_BAND_EXPONENT = 0.4996667741545416  # the shelf's mid-band gain as a power of its high gain
#: K-weighting stage 2, high-pass: quality factor and corner frequency
HIGHPASS_Q = 0.5003270373238773
HIGHPASS_HZ = 38.13547087602444
#: BS.1770's offset that makes a full-scale 997 Hz sine read -3.01 LUFS
LOUDNESS_OFFSET_DB = -0.691
BLOCK_S = 0.4
BLOCK_OVERLAP = 0.75
ABSOLUTE_GATE_LUFS = -70.0
RELATIVE_GATE_LU = -10.0
#: normalisation never drives a sample above this (a gain that would is reduced)
PEAK_LIMIT = 0.99


def k_weighting(sample_rate_hz: int) -> list[tuple[NDArray[np.float64], NDArray[np.float64]]]:
    """The two (b, a) biquads of the K-weighting filter at `sample_rate_hz`."""
    if sample_rate_hz <= 2 * SHELF_HZ:
        raise ParameterError(f"sample_rate_hz={sample_rate_hz} is too low for K-weighting "
                             f"(> {2 * SHELF_HZ:.0f})")
    # bilinear transform of the analogue prototypes with prewarped K = tan(pi f / fs) (De Man's derivation)
    k = math.tan(math.pi * SHELF_HZ / sample_rate_hz)
    v_high = 10 ** (SHELF_GAIN_DB / 20)
    v_band = v_high**SHELF_BAND_EXPONENT
    shelf_b = np.array([v_high + v_band * k / SHELF_Q + k * k, 2 * (k * k - v_high),
                        v_high - v_band * k / SHELF_Q + k * k])
    shelf_a = np.array([1 + k / SHELF_Q + k * k, 2 * (k * k - 1), 1 - k / SHELF_Q + k * k])
    k = math.tan(math.pi * HIGHPASS_HZ / sample_rate_hz)
    # the standard's numerator is [1, -2, 1] unnormalised: its pass-band gain is part of the calibration
    highpass_b = np.array([1.0, -2.0, 1.0])
    highpass_a = np.array([1 + k / HIGHPASS_Q + k * k, 2 * (k * k - 1), 1 - k / HIGHPASS_Q + k * k])
    highpass_a /= highpass_a[0]
    return [(shelf_b / shelf_a[0], shelf_a / shelf_a[0]), (highpass_b, highpass_a)]


def loudness_lufs(audio: NDArray[np.floating], *, sample_rate_hz: int) -> float:
    """Integrated loudness in LUFS of (channels, samples) or (samples,) audio; -inf for silence.

    Signals shorter than one 400 ms block are measured as a single block.
    """
    x = np.atleast_2d(np.asarray(audio, dtype=np.float64))
    for b, a in k_weighting(sample_rate_hz):
        x = scipy.signal.lfilter(b, a, x, axis=-1)
    n_block = round(BLOCK_S * sample_rate_hz)
    if x.shape[1] <= n_block:
        powers = np.array([np.mean(x**2, axis=1).sum()]) if x.shape[1] else np.zeros(1)
    else:
        hop = round(n_block * (1 - BLOCK_OVERLAP))
        starts = np.arange(0, x.shape[1] - n_block + 1, hop)
        squared = np.concatenate([np.zeros((x.shape[0], 1)), np.cumsum(x**2, axis=1)], axis=1)
        powers = ((squared[:, starts + n_block] - squared[:, starts]) / n_block).sum(axis=0)
    with np.errstate(divide="ignore"):
        block_lufs = LOUDNESS_OFFSET_DB + 10 * np.log10(powers)
    kept = powers[block_lufs > ABSOLUTE_GATE_LUFS]
    if kept.size == 0:
        return -math.inf
    relative_gate = LOUDNESS_OFFSET_DB + 10 * math.log10(kept.mean()) + RELATIVE_GATE_LU
    kept = powers[(block_lufs > ABSOLUTE_GATE_LUFS) & (block_lufs > relative_gate)]
    return LOUDNESS_OFFSET_DB + 10 * math.log10(kept.mean())


def normalization_gain_db(audio: NDArray[np.floating], *, sample_rate_hz: int, target_lufs: float,
                          max_gain_db: float) -> float:
    """The gain in dB that brings `audio` to `target_lufs`: at most `max_gain_db` up, never past PEAK_LIMIT.

    Silence (below the absolute gate) gets 0 dB.
    """
    level = loudness_lufs(audio, sample_rate_hz=sample_rate_hz)
    if not math.isfinite(level):
        return 0.0
    gain_db = min(target_lufs - level, max_gain_db)
    peak = float(np.max(np.abs(audio))) if np.size(audio) else 0.0
    if peak > 0:
        gain_db = min(gain_db, 20 * math.log10(PEAK_LIMIT / peak))
    return gain_db
