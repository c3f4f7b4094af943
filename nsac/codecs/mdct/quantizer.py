"""Band quantization of the mdct codec: energy and step indices, scalar quantization, noise filling.

Every coded band b carries two integers (:mod:`nsac.codecs.mdct.bitstream`):

- the energy index ``e_b``: the band's mean energy per coefficient, ``10 log10(E_b / width_b)``, in steps of
  `ENERGY_STEP_DB`; ``ENERGY_MIN_INDEX`` means silence (the band decodes to zeros);
- the step index ``u_b``: the quantizer step in steps of `SNR_STEP_DB`,
  ``step_b = 10 ** ((u_b * SNR_STEP_DB + STEP_OFFSET_DB) / 20)`` (the "scale factor" of AAC; it follows the
  masking threshold, a smooth curve, so it codes cheaply as differences between bands).

Their difference is the band's SNR index ``s_b = ENERGY_TO_SNR_STEPS * e_b - u_b``: ``s_b <= 0`` means "not
quantized": the decoder fills the band with noise of the coded energy (perceptual noise substitution);
``s_b >= 1`` is the number of 1.5 dB steps the band's RMS stands above its coarsest quantized level::

    step_b = sigma_b * STEP_AT_SNR1 * 10 ** (-(s_b - 1) * SNR_STEP_DB / 20),   sigma_b the coded RMS,

so the coefficients in units of the step have an RMS of
``10 ** ((s_b - 1) * SNR_STEP_DB / 20) / STEP_AT_SNR1`` and the entropy coder's Laplace scale follows from
``s_b`` alone (:func:`laplace_scale`).

Quantization is uniform with a dead zone (``q = sign(c) floor(|c| / step + rounding)``), reconstruction is
``q step`` (pulling values towards their cells' centroids lost more in ViSQOL, by flattening the spectrum,
than it gained in SNR).
The decoder puts the energy the quantizer lost back as noise in the zeroed coefficients of each band
(at most `NOISE_FILL_MAX_STEPS` of a step in RMS), which keeps bands from sounding hollow at low rates.
"""

from __future__ import annotations

import numpy as np

ENERGY_STEP_DB = 3.0
ENERGY_MIN_INDEX = -32
"""Silence: mean energy per coefficient below -96 dB (16-bit quantization noise is about -101 dB)."""
ENERGY_MAX_INDEX = 15
"""+45 dB: above any band of a full-scale signal (a full-scale sine at N = 1024 reads about +27 dB)."""
SNR_STEP_DB = 1.5
ENERGY_TO_SNR_STEPS = 2
"""`ENERGY_STEP_DB` / `SNR_STEP_DB`."""
SNR_MAX_INDEX = 40
"""60 dB above the coarsest level; keeps the Laplace scale within the entropy tables (<= 256)."""
STEP_AT_SNR1 = 2.0
"""Step over the band RMS at s = 1, the coarsest quantized level (mostly zeros and a few +-1)."""
STEP_OFFSET_DB = 20.0 * np.log10(STEP_AT_SNR1) + SNR_STEP_DB
"""Step of u = 0 in dB: makes ``s = ENERGY_TO_SNR_STEPS e - u`` hold exactly."""
LAPLACE_SCALE_FACTOR = 0.65
"""Entropy model scale over the coefficients' RMS in steps: under a Laplace it would be 1/sqrt(2); MDCT bands
are peakier than that, and a smaller scale makes their many small values cheaper."""
MODEL_SNR_GROUP = 2
NOISE_FILL_GAIN = 1.0
"""Noise filled into zeroed coefficients (and non-quantized bands) carries this fraction of the lost RMS."""
NOISE_FILL_MAX_STEPS = 0.3
"""RMS of the noise in a zeroed coefficient of a quantized band is at most this many steps."""
MAX_ABS_VALUE = 1 << 20
"""Quantized values beyond this never come out of the encoder: the decoder treats them as corrupt data."""

_ENERGY_FLOOR = 1e-30
_DB_TO_LOG10 = 0.1


def energy_index(mean_energy: np.ndarray) -> np.ndarray:
    """Energy index of mean energies per coefficient, clipped to the coded range (int64, same shape)."""
    db = 10.0 * np.log10(np.maximum(mean_energy, _ENERGY_FLOOR))
    return np.clip(np.rint(db / ENERGY_STEP_DB), ENERGY_MIN_INDEX, ENERGY_MAX_INDEX).astype(np.int64)


def band_rms(e_index: np.ndarray) -> np.ndarray:
    """Coded RMS per coefficient of energy indices (0 for silence)."""
    e = np.asarray(e_index)
    rms = 10.0 ** (e * (ENERGY_STEP_DB / 20.0))
    return np.where(e <= ENERGY_MIN_INDEX, 0.0, rms)


def step_size(u_index: np.ndarray) -> np.ndarray:
    """Quantizer step of step indices."""
    return 10.0 ** ((np.asarray(u_index) * SNR_STEP_DB + STEP_OFFSET_DB) / 20.0)


def snr_index(e_index: np.ndarray, u_index: np.ndarray) -> np.ndarray:
    """SNR index ``ENERGY_TO_SNR_STEPS e - u`` (<= 0: not quantized)."""
    return ENERGY_TO_SNR_STEPS * np.asarray(e_index) - np.asarray(u_index)


def step_index(e_index: np.ndarray, s_index: np.ndarray) -> np.ndarray:
    """The step index that gives SNR index s to a band of energy index e."""
    return ENERGY_TO_SNR_STEPS * np.asarray(e_index) - np.asarray(s_index)


def rms_in_steps(s_index: np.ndarray) -> np.ndarray:
    """RMS of a band's coefficients in units of its step, for SNR indices >= 1."""
    return 10.0 ** ((np.asarray(s_index) - 1) * (SNR_STEP_DB / 20.0)) / STEP_AT_SNR1


def laplace_scale(s_index: np.ndarray) -> np.ndarray:
    """Scale of the Laplace the coefficients of a band with SNR index s (>= 1) are coded with.

    SNR indices share a scale `MODEL_SNR_GROUP` at a time (the one of their middle): the coder's cost
    grows with the number of distinct scales in a frame, the rate by 0.2 % only.
    """
    middle = (np.asarray(s_index) - 1) // MODEL_SNR_GROUP * MODEL_SNR_GROUP + 1 + (MODEL_SNR_GROUP - 1) / 2
    return LAPLACE_SCALE_FACTOR * rms_in_steps(middle)


def quantize(values: np.ndarray, step: np.ndarray, *, rounding: float) -> np.ndarray:
    """Dead-zone uniform quantization ``sign(v) floor(|v| / step + rounding)``, int64; steps > 0."""
    magnitude = np.floor(np.abs(values) / step + rounding)
    return (np.copysign(magnitude, values)).astype(np.int64)


def dequantize(q: np.ndarray, step: np.ndarray) -> np.ndarray:
    """Reconstruction ``q step``."""
    return q * step


def fill_noise(values: np.ndarray, q: np.ndarray, *, edges: np.ndarray, e_index: np.ndarray,
               s_index: np.ndarray, step: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """Add noise where quantization left zeros so that each band keeps (up to caps) its coded energy.

    Parameters
    ----------
    values : float array (n,)
        Dequantized coefficients in coding order (zeros in non-quantized bands).
    q : int array (n,)
        Quantized values (0 in non-quantized bands).
    edges : int array (n_bands + 1,)
        Band edges in coding order.
    e_index, s_index : int arrays (n_bands,)
    step : float array (n,)
        Step of each position.
    noise : float array (n,)
        Unit-variance noise.

    Returns
    -------
    float array (n,)
    """
    widths = edges[1:] - edges[:-1]
    starts = edges[:-1]
    target = band_rms(e_index) ** 2 * widths
    zero = q == 0
    n_zero = np.add.reduceat(zero.astype(np.float64), starts) if values.size else np.zeros(widths.size)
    present = np.add.reduceat(values * values, starts) if values.size else np.zeros(widths.size)
    missing = np.maximum(target - present, 0.0)
    rms = NOISE_FILL_GAIN * np.sqrt(missing / np.maximum(n_zero, 1.0))
    quantized = s_index >= 1
    band_step = step[np.minimum(starts, max(values.size - 1, 0))] if values.size else np.zeros(widths.size)
    rms = np.where(quantized, np.minimum(rms, NOISE_FILL_MAX_STEPS * band_step), rms)
    per_position = np.repeat(rms, widths)
    return np.where(zero, noise * per_position, values)


__all__ = ["ENERGY_MAX_INDEX", "ENERGY_MIN_INDEX", "ENERGY_STEP_DB", "MAX_ABS_VALUE", "SNR_MAX_INDEX",
           "SNR_STEP_DB", "STEP_AT_SNR1", "STEP_OFFSET_DB", "band_rms", "dequantize", "energy_index",
           "fill_noise", "laplace_scale", "quantize", "rms_in_steps", "snr_index", "step_index", "step_size"]
