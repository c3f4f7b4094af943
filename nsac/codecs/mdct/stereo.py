"""Mid/side stereo of the mdct codec: the orthonormal rotation, its masking thresholds, the per-frame choice.

``M = (L + R) / sqrt(2)``, ``S = (L - R) / sqrt(2)``: orthonormal, so quantization noise energy is the same in
both domains and the rotation is its own inverse. Noise in M or S lands in both L and R, so each must be
masked in the quieter channel: both M and S get ``min(T_L, T_R)`` per coefficient (as AAC encoders do).

The choice, per frame, compares an estimate of the bits each representation needs at the masking threshold,
the perceptual entropy ``sum_b w_b max(0, log2(E_b / T_b)) / 2`` (Johnston 1988): M/S wins when it saves
more than `MIN_SAVING_BITS` (correlated channels: S is small; independent channels: it is not).
"""

from __future__ import annotations

import numpy as np

MIN_SAVING_BITS = 8.0
_INV_SQRT2 = 1.0 / np.sqrt(2.0)
_FLOOR = 1e-30


def rotate(channels: np.ndarray) -> np.ndarray:
    """L/R -> M/S or M/S -> L/R (the rotation is its own inverse), shape (2, ...) -> (2, ...)."""
    return np.stack([(channels[0] + channels[1]) * _INV_SQRT2, (channels[0] - channels[1]) * _INV_SQRT2])


def mid_side_energy(energy: np.ndarray, cross: np.ndarray) -> np.ndarray:
    """Band energies of M and S, (2, n_bands), from those of L and R (2, n_bands) and ``sum L R`` per band.

    ``E_M = (E_L + E_R) / 2 + C`` and ``E_S = (E_L + E_R) / 2 - C`` (floored at 0 against rounding).
    """
    mean = 0.5 * (energy[0] + energy[1])
    return np.stack([mean + cross, np.maximum(mean - cross, 0.0)])


def mid_side_threshold(threshold: np.ndarray) -> np.ndarray:
    """Allowed noise of M and S from that of L and R, shape (2, ...): both the lower of the two."""
    low = np.minimum(threshold[0], threshold[1])
    return np.stack([low, low])


def perceptual_entropy_bits(energy: np.ndarray, threshold: np.ndarray, widths: np.ndarray) -> float:
    """``sum_b w_b max(0, log2(E_b / T_b)) / 2`` over all bands of all channels."""
    ratio = np.maximum(energy, _FLOOR) / np.maximum(threshold, _FLOOR)
    return float(np.sum(widths * np.maximum(np.log2(ratio), 0.0)) / 2.0)


def choose_mid_side(energy_lr: np.ndarray, threshold_lr: np.ndarray, energy_ms: np.ndarray,
                    threshold_ms: np.ndarray, widths: np.ndarray) -> bool:
    """True when M/S needs fewer bits than L/R at the masking threshold; arrays (2, n_bands)."""
    lr = perceptual_entropy_bits(energy_lr, threshold_lr, widths)
    ms = perceptual_entropy_bits(energy_ms, threshold_ms, widths)
    return ms + MIN_SAVING_BITS < lr


__all__ = ["MIN_SAVING_BITS", "choose_mid_side", "mid_side_energy", "mid_side_threshold",
           "perceptual_entropy_bits", "rotate"]
