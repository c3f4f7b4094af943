"""The stimuli of one MUSHRA item: the BS.1534-3 low-pass anchors, and loudness matching to the reference.

ITU-R BS.1534-3 (2015): every test page holds the open reference, the hidden reference, a low
anchor (the reference low-passed at 3.5 kHz) and a mid anchor (low-passed at 7 kHz). The anchors here are
Butterworth low-passes run forwards and backwards (zero phase), so that they stay sample-aligned with the
reference and switching between them keeps the playback position. Every stimulus is then scaled to the
reference's BS.1770 loudness, and all of an item's stimuli share one extra attenuation when a peak would
go above PEAK_LIMIT_DBFS, so that the hidden reference stays identical to the open one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from nsac.dsp.loudness import loudness_lufs
from nsac.errors import ParameterError

#: BS.1534-3 anchors: low anchor and mid anchor cut-off frequencies
LOW_ANCHOR_HZ = 3500.0
MID_ANCHOR_HZ = 7000.0
#: Butterworth order of each pass (run twice: the magnitude response is squared)
ANCHOR_ORDER = 8
#: an anchor whose cut-off is this close to the Nyquist frequency would equal the reference: left out
ANCHOR_MAX_NYQUIST_FRACTION = 0.95
#: highest sample peak allowed after loudness matching; a whole item is attenuated to meet it
PEAK_LIMIT_DBFS = -1.0


def anchor_applies(cutoff_hz: float, *, sample_rate_hz: int) -> bool:
    """Whether a low-pass at `cutoff_hz` removes anything audible at this rate (False: it is left out)."""
    return cutoff_hz < ANCHOR_MAX_NYQUIST_FRACTION * sample_rate_hz / 2


def lowpass_anchor(audio: np.ndarray, *, sample_rate_hz: int, cutoff_hz: float) -> np.ndarray:
    """Zero-phase low-passed copy of mono audio (samples,), float32, same length.

    The response is -6 dB at `cutoff_hz` (two passes of a -3 dB Butterworth) and falls by 2 * ANCHOR_ORDER
    * 6 dB per octave above it.
    """
    from scipy.signal import butter, sosfiltfilt

    if not anchor_applies(cutoff_hz, sample_rate_hz=sample_rate_hz):
        raise ParameterError(f"cutoff_hz={cutoff_hz:g} must be below {ANCHOR_MAX_NYQUIST_FRACTION:g} of the "
                             f"Nyquist frequency of {sample_rate_hz} Hz")
    signal = np.asarray(audio, dtype=np.float64).reshape(-1)
    sos = butter(ANCHOR_ORDER, cutoff_hz, btype="lowpass", fs=sample_rate_hz, output="sos")
    # filtfilt pads by reflection; a clip shorter than its default padding is padded less
    pad = min(signal.size - 1, 3 * (2 * len(sos) + 1))
    return sosfiltfilt(sos, signal, padlen=max(pad, 0)).astype(np.float32)


def match_loudness(reference: np.ndarray, stimuli: Mapping[str, np.ndarray], *,
                   sample_rate_hz: int) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, float]]:
    """Scale each stimulus (samples,) to the reference's BS.1770 loudness, then all of them to the peak limit.

    Returns (reference, stimuli, gains_db): the reference only ever gets the common attenuation; gains_db
    holds each stimulus' total gain and "reference" the common one. A silent stimulus keeps its level.
    """
    target = loudness_lufs(reference, sample_rate_hz=sample_rate_hz)
    gains_db: dict[str, float] = {}
    for name, audio in stimuli.items():
        level = loudness_lufs(audio, sample_rate_hz=sample_rate_hz)
        gains_db[name] = target - level if math.isfinite(target) and math.isfinite(level) else 0.0
    scaled = {name: np.asarray(audio, dtype=np.float64) * 10.0 ** (gains_db[name] / 20.0)
              for name, audio in stimuli.items()}
    peak = max([float(np.max(np.abs(reference)))] + [float(np.max(np.abs(a))) for a in scaled.values()])
    limit = 10.0 ** (PEAK_LIMIT_DBFS / 20.0)
    common_db = 20.0 * math.log10(limit / peak) if peak > limit else 0.0
    common = 10.0 ** (common_db / 20.0)
    gains_db = {name: gain + common_db for name, gain in gains_db.items()}
    gains_db["reference"] = common_db
    return ((np.asarray(reference, dtype=np.float64) * common).astype(np.float32),
            {name: (audio * common).astype(np.float32) for name, audio in scaled.items()}, gains_db)


__all__ = ["ANCHOR_ORDER", "LOW_ANCHOR_HZ", "MID_ANCHOR_HZ", "PEAK_LIMIT_DBFS", "anchor_applies",
           "lowpass_anchor", "match_loudness"]
