"""NMR metric: the noise-to-mask ratio of a decoded signal against its reference, from psychoacoustic model 1.

Per frame (``N_FFT`` = 512 samples, Hann, hop 256, centred every hop from sample 0), the reference's global
masking threshold (:mod:`nsac.dsp.psychoacoustic`, ``level="full_scale"``: a full-scale sine is 96 dB SPL)
and the PSD of the noise ``degraded - reference`` are summed over each critical band (integer Bark) and
compared, as in Brandenburg's NMR ("Evaluation of quality for audio encoding at low bit rates", AES 1987)
and the Total NMR of PEAQ (ITU-R BS.1387):

- frame NMR = ``10 log10(mean over bands of noise / mask)``, the band-averaged ratio in dB (the power mean,
  so one loud band counts as it sounds); ``"nmr"`` is its mean over frames, in dB, lower is better;
- a frame has audible noise when its worst band has NMR > ``AUDIBLE_NMR_DB`` = 0 dB; ``"audible_frames"``
  is the fraction of such frames.

Band ratios are floored at ``NMR_FLOOR_DB`` (-100 dB), so identical signals score -100 dB instead of -inf.
The model runs at 16, 32, 44.1 or 48 kHz (``NMR_RATES_HZ``): other inputs are resampled (soxr) to the
lowest of these at or above their rate (48 kHz above 48 kHz).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from nsac.dsp import psychoacoustic as _pam
from nsac.eval import align as _align

NMR_RATES_HZ = (16_000, 32_000, 44_100, 48_000)
N_FFT = _pam.N_FFT
HOP = N_FFT // 2
AUDIBLE_NMR_DB = 0.0
"""A band with noise above its mask by more than this is audible (NMR < 0 dB: masked)."""
NMR_FLOOR_DB = -100.0


@dataclass(frozen=True)
class NmrFrames:
    """Per-frame noise-to-mask ratios of a signal pair, in dB."""

    band_nmr_db: NDArray[np.float64]
    """(frames, bands): NMR of each critical band."""
    frame_nmr_db: NDArray[np.float64]
    """(frames,): band-averaged NMR (power mean over bands, in dB)."""
    max_nmr_db: NDArray[np.float64]
    """(frames,): NMR of the worst band."""
    centres: NDArray[np.int64]
    """(frames,): centre of each frame, in samples at ``sample_rate``."""
    sample_rate: int
    """Rate the model ran at (Hz)."""


def model_rate(sample_rate: int) -> int:
    """The rate NMR is computed at for an input at ``sample_rate`` Hz (one of ``NMR_RATES_HZ``)."""
    rate = _align.check_sample_rate(sample_rate)
    return NMR_RATES_HZ[min(bisect.bisect_left(NMR_RATES_HZ, rate), len(NMR_RATES_HZ) - 1)]


def nmr_frames(reference: ArrayLike, degraded: ArrayLike, *, sample_rate: int) -> NmrFrames:
    """Noise-to-mask ratio per critical band and per frame of a decoded signal against its reference.

    Parameters
    ----------
    reference, degraded : array, shape (samples,) or (1, samples)
        Equal-length aligned float signals, full scale +-1, at ``sample_rate`` Hz.

    Returns
    -------
    NmrFrames
        Frames as in the module docstring, at :func:`model_rate` (centres in samples at that rate).
    """
    ref, deg, rate_hz = _align.intrusive_pair(reference, degraded, sample_rate=sample_rate)
    rate = model_rate(rate_hz)
    ref = _align.resample(ref, from_rate_hz=rate_hz, to_rate_hz=rate)
    deg = _align.resample(deg, from_rate_hz=rate_hz, to_rate_hz=rate)
    centres = _pam.frame_centres(ref.size, hop=HOP)
    masking = _pam.analyze(_pam.frames_at(ref, centres=centres, n_fft=N_FFT), sample_rate=rate)
    tables = masking.tables
    noise_frames = _pam.frames_at(deg - ref, centres=centres, n_fft=N_FFT) * tables.window
    noise_power = np.abs(np.fft.rfft(noise_frames, axis=-1)) ** 2 * 10.0 ** (tables.psd_offset_db / 10.0)
    mask_power = 10.0 ** (masking.threshold_db / 10.0)
    ratio = np.add.reduceat(noise_power, tables.band_start, axis=-1) / np.add.reduceat(
        mask_power, tables.band_start, axis=-1)
    floor = 10.0 ** (NMR_FLOOR_DB / 10.0)
    band = 10.0 * np.log10(np.maximum(ratio, floor))
    frame = 10.0 * np.log10(np.maximum(ratio.mean(axis=-1), floor))
    return NmrFrames(band_nmr_db=band, frame_nmr_db=frame, max_nmr_db=band.max(axis=-1), centres=centres,
                     sample_rate=rate)


def nmr(reference: ArrayLike, degraded: ArrayLike, *, sample_rate: int) -> dict[str, float]:
    """NMR of a decoded signal: ``{"nmr": mean band-averaged NMR in dB, "audible_frames": fraction}``.

    Both lower is better; NMR below 0 dB means the noise is on average under the masking threshold.
    Signals as for :func:`nmr_frames`.
    """
    frames = nmr_frames(reference, degraded, sample_rate=sample_rate)
    return {"nmr": float(np.mean(frames.frame_nmr_db)),
            "audible_frames": float(np.mean(frames.max_nmr_db > AUDIBLE_NMR_DB))}


__all__ = ["AUDIBLE_NMR_DB", "HOP", "NMR_FLOOR_DB", "NMR_RATES_HZ", "N_FFT", "NmrFrames", "model_rate", "nmr",
           "nmr_frames"]
