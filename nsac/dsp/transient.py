"""Transient detection for block switching (energy attacks on the short-block grid) and perceptual entropy.

An attack is a short block whose high-passed energy jumps ``ATTACK_RATIO_DB`` above the mean of the blocks
before it, the rule of the 3GPP AAC encoder (TS 26.403, 5.4.1, "attack ratio" 10). The grid is the one of
:mod:`nsac.dsp.mdct`'s short frames: sub-block ``i`` holds signal samples ``[i M - N/2, (i + 1) M - N/2)``
(``M = N / 8``), the middle halves of the short blocks, so frame t owns sub-blocks ``8 t .. 8 t + 7``, signal
samples ``[t N - N/2, t N + N/2)``, and a flagged frame coded with short blocks confines the noise near an
attack to about one short block. Choosing frame t's window (a start window if frame t + 1 is flagged) needs
the signal up to ``(t + 1) N + N/2``, half a frame beyond the last sample of frame t: a streaming encoder's
look-ahead.
"""

from __future__ import annotations

import numpy as np
import scipy.signal
from numpy.typing import ArrayLike, NDArray

from nsac.dsp import mdct as _mdct
from nsac.errors import ParameterError

ATTACK_RATIO_DB = 10.0
"""A sub-block whose energy exceeds the mean of the previous ones by this much is an attack."""
MIN_ATTACK_LEVEL_DBFS = -60.0
"""Attacks quieter than this (sub-block RMS of the high-passed signal, dB re full-scale sine) are ignored."""
HIGHPASS_CUTOFF_HZ = 1000.0
"""The detector listens above this, where pre-echo is heard and steady bass does not mask onsets."""
HIGHPASS_ORDER = 2
N_HISTORY_BLOCKS = 8
"""Sub-blocks averaged as the reference energy (one frame's worth)."""
_ENERGY_FLOOR = 1e-20


def subblock_energies(signal: ArrayLike, *, sample_rate: int, n_bins: int) -> NDArray[np.float64]:
    """Mean square of the high-passed signal on the short-block grid, shape (..., n_frames * 8).

    Parameters
    ----------
    signal : array, shape (..., samples)
        Full scale +-1.
    sample_rate : int
        Hz.
    n_bins : int
        MDCT coefficients per frame (N); a multiple of :data:`nsac.dsp.mdct.N_BINS_MULTIPLE`.
    """
    x = np.asarray(signal, dtype=np.float64)
    _mdct._check_n_bins(n_bins, short=True)
    if sample_rate <= 2 * HIGHPASS_CUTOFF_HZ:
        raise ParameterError(f"sample_rate={sample_rate} Hz is too low for the {HIGHPASS_CUTOFF_HZ:.0f} Hz "
                             f"high-pass of the transient detector")
    sos = scipy.signal.butter(HIGHPASS_ORDER, HIGHPASS_CUTOFF_HZ, btype="highpass", fs=sample_rate,
                              output="sos")
    filtered = scipy.signal.sosfilt(sos, x, axis=-1)
    count = _mdct.n_frames(x.shape[-1], n_bins=n_bins)
    n_short = n_bins // _mdct.N_SHORT_BLOCKS
    half = n_bins // 2
    total = count * n_bins
    padded = np.zeros((*x.shape[:-1], total))
    usable = min(x.shape[-1], total - half)
    padded[..., half:half + usable] = filtered[..., :usable]
    return np.mean(padded.reshape(*x.shape[:-1], count * _mdct.N_SHORT_BLOCKS, n_short) ** 2, axis=-1)


def attack_ratio_db(energies: ArrayLike) -> NDArray[np.float64]:
    """Each sub-block's energy over the mean of the ``N_HISTORY_BLOCKS`` before it, in dB (..., n_sub).

    The history before the signal counts as silence; energies are floored at 1e-20 (-200 dB).
    """
    e = np.maximum(np.asarray(energies, dtype=np.float64), _ENERGY_FLOOR)
    padded = np.concatenate([np.full((*e.shape[:-1], N_HISTORY_BLOCKS), _ENERGY_FLOOR), e], axis=-1)
    cumulative = np.concatenate([np.zeros((*e.shape[:-1], 1)), np.cumsum(padded, axis=-1)], axis=-1)
    n = e.shape[-1]
    history = (cumulative[..., N_HISTORY_BLOCKS:N_HISTORY_BLOCKS + n] - cumulative[..., :n]) / N_HISTORY_BLOCKS
    return 10.0 * np.log10(e / np.maximum(history, _ENERGY_FLOOR))


def detect_transients(signal: ArrayLike, *, sample_rate: int, n_bins: int, ratio_db: float = ATTACK_RATIO_DB,
                      min_level_dbfs: float = MIN_ATTACK_LEVEL_DBFS) -> NDArray[np.bool_]:
    """Which frames of :func:`nsac.dsp.mdct.mdct_analysis` hold an attack and want short blocks.

    Feed the result to :func:`nsac.dsp.mdct.window_sequence`.

    Parameters
    ----------
    signal : array, shape (..., samples)
        Full scale +-1; channels share the decision (a frame is flagged if any channel has an attack).
    sample_rate : int
        Hz.
    n_bins : int
        MDCT coefficients per frame (N).
    ratio_db : float
        Energy jump over the previous ``N_HISTORY_BLOCKS`` sub-blocks that makes an attack.
    min_level_dbfs : float
        Quietest attack that counts (RMS of the high-passed sub-block, dB re a full-scale sine).

    Returns
    -------
    array of bool, shape (n_frames,)
    """
    energies = subblock_energies(signal, sample_rate=sample_rate, n_bins=n_bins)
    floor = 0.5 * 10.0 ** (min_level_dbfs / 10.0)  # a full-scale sine has mean square 1/2
    attack = (attack_ratio_db(energies) > ratio_db) & (energies > floor)
    per_frame = attack.reshape(*attack.shape[:-1], -1, _mdct.N_SHORT_BLOCKS).any(axis=-1)
    return per_frame.reshape(-1, per_frame.shape[-1]).any(axis=0)


def perceptual_entropy(psd_db: ArrayLike, threshold_db: ArrayLike) -> NDArray[np.float64]:
    """Perceptual entropy in bits per frame: ``sum_k log2(1 + sqrt(10^((P(k) - T(k)) / 10)))``.

    The bits a uniform quantiser needs to keep its noise at the masking threshold in every bin
    (Johnston, "Estimation of perceptual entropy using noise masking criteria", ICASSP 1988, with the
    rounding dropped). It jumps at attacks and measures how hard a frame is to code.

    Parameters
    ----------
    psd_db, threshold_db : arrays, shape (..., n_bins)
        From :class:`nsac.dsp.psychoacoustic.Masking` (``psd_db`` and ``threshold_db``).

    Returns
    -------
    array, shape (...,)
    """
    excess_db = np.asarray(psd_db, dtype=np.float64) - np.asarray(threshold_db, dtype=np.float64)
    return np.sum(np.log2(1.0 + 10.0 ** (excess_db / 20.0)), axis=-1)


__all__ = ["ATTACK_RATIO_DB", "HIGHPASS_CUTOFF_HZ", "MIN_ATTACK_LEVEL_DBFS", "N_HISTORY_BLOCKS",
           "attack_ratio_db", "detect_transients", "perceptual_entropy", "subblock_energies"]
