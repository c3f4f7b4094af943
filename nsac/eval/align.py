"""Prepare signal pairs for quality metrics: validate, resample, find the codec delay, trim, check levels."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import scipy.signal
import soxr
from numpy.typing import ArrayLike, NDArray

from nsac.errors import AudioError, ParameterError

DEFAULT_MAX_DELAY_MS = 250.0
"""Largest codec delay :func:`align` searches for, either way; legacy codecs stay well below it."""

RESAMPLE_QUALITY = "HQ"
"""soxr quality preset (20-bit precision) used for every rate change the metrics make."""

LEVEL_MISMATCH_WARN_DB = 6.0
"""|RMS(degraded) - RMS(reference)| above which the level check warns (the metrics do not normalise)."""

SILENCE_RMS_DBFS = -80.0
"""An RMS level below this counts as silence for the level check."""

WEAK_CORRELATION = 0.2
"""Normalised cross-correlation peak below which the found delay is flagged as unreliable."""

_DB_FLOOR_RMS = 1e-12  # keeps log10 finite for digital silence (-240 dBFS)


def as_mono(signal: ArrayLike, *, name: str = "signal") -> NDArray[np.float64]:
    """Check that ``signal`` is usable audio and return it as a 1-D float64 array.

    Parameters
    ----------
    signal : array, shape (samples,) or (1, samples)
        Floating-point samples, full scale at +-1.
    name : str
        What to call the signal in error messages ("reference", "degraded").

    Raises
    ------
    AudioError
        If the signal is not mono, not floating point, empty, or holds NaN/inf.
    """
    array = np.asarray(signal)
    if array.ndim == 2 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 1:
        raise AudioError(f"{name} has shape {array.shape}; expected mono audio of shape (samples,) "
                         f"or (1, samples) — mix down or pick a channel first")
    if not np.issubdtype(array.dtype, np.floating):
        raise AudioError(f"{name} has dtype {array.dtype}; expected floating-point samples with full "
                         f"scale at +-1 (for int16 PCM divide by 32768)")
    if array.size == 0:
        raise AudioError(f"{name} is empty")
    finite = np.isfinite(array)
    if not finite.all():
        first_bad = int(np.argmin(finite))
        raise AudioError(f"{name} holds {int(array.size - finite.sum())} NaN/inf samples "
                         f"(first at index {first_bad})")
    return array.astype(np.float64, copy=False)


def check_sample_rate(sample_rate: int) -> int:
    """Return ``sample_rate`` as an int, or raise ParameterError if it is not a positive integer (Hz)."""
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)) or sample_rate <= 0:
        raise ParameterError(f"sample_rate={sample_rate!r} must be a positive integer in Hz")
    return int(sample_rate)


def intrusive_pair(reference: ArrayLike, degraded: ArrayLike, *,
                   sample_rate: int) -> tuple[NDArray[np.float64], NDArray[np.float64], int]:
    """Validate the inputs of an intrusive metric: two mono float signals of equal length and a rate.

    Returns both as float64 1-D arrays and the rate as int; raises AudioError (ParameterError for
    the rate) naming what is wrong.
    """
    ref = as_mono(reference, name="reference")
    deg = as_mono(degraded, name="degraded")
    rate_hz = check_sample_rate(sample_rate)
    if ref.size != deg.size:
        raise AudioError(f"reference has {ref.size} samples and degraded {deg.size}; intrusive metrics "
                         f"compare aligned signals: use nsac.eval.align.align() or evaluate()")
    return ref, deg, rate_hz


def resample(signal: NDArray[np.float64], *, from_rate_hz: int, to_rate_hz: int) -> NDArray[np.float64]:
    """Resample a 1-D signal with soxr (``RESAMPLE_QUALITY``); returns the input itself if the rates match."""
    if from_rate_hz == to_rate_hz:
        return signal
    return np.asarray(soxr.resample(signal, from_rate_hz, to_rate_hz, quality=RESAMPLE_QUALITY),
                      dtype=np.float64)


def find_delay(reference: ArrayLike, degraded: ArrayLike, *, sample_rate: int,
               max_delay_ms: float = DEFAULT_MAX_DELAY_MS) -> tuple[int, float]:
    """Estimate how many samples ``degraded`` lags ``reference``, by FFT cross-correlation.

    The lag ``d`` maximising ``|sum_n degraded[n + d] * reference[n]|`` over
    ``|d| <= max_delay_ms`` is returned, so ``degraded[n + d] ~ reference[n]``: positive
    for a codec's algorithmic delay, negative if the decoder output runs ahead.

    Parameters
    ----------
    reference, degraded : array, shape (samples,) or (1, samples)
    sample_rate : int
        Hz, shared by both signals.
    max_delay_ms : float
        Search range either side of zero, in milliseconds.

    Returns
    -------
    delay_samples : int
    peak_correlation : float
        The correlation at that lag normalised by both signals' energies, in [-1, 1]; near 0
        means the delay is a guess, negative means the degraded signal is polarity-inverted.
    """
    ref = as_mono(reference, name="reference")
    deg = as_mono(degraded, name="degraded")
    rate_hz = check_sample_rate(sample_rate)
    if not max_delay_ms >= 0:
        raise ParameterError(f"max_delay_ms={max_delay_ms!r} must be >= 0")
    max_lag = round(max_delay_ms * 1e-3 * rate_hz)
    # "full" correlation: index i holds lag i - (len(ref) - 1)
    xcorr = scipy.signal.correlate(deg, ref, mode="full", method="fft")
    zero_lag = ref.size - 1
    lo = max(zero_lag - max_lag, 0)
    hi = min(zero_lag + max_lag, xcorr.size - 1)
    window = xcorr[lo:hi + 1]
    best = int(np.argmax(np.abs(window)))
    delay = lo + best - zero_lag
    energy = float(np.sqrt(np.dot(ref, ref) * np.dot(deg, deg)))
    peak = float(window[best] / energy) if energy > 0 else 0.0
    return delay, peak


def trim_to_delay(reference: NDArray[np.float64], degraded: NDArray[np.float64],
                  *, delay_samples: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Drop the first ``delay_samples`` of ``degraded`` (or of ``reference`` if negative), then cut both
    to their common length, so that sample n of one lines up with sample n of the other."""
    if delay_samples >= 0:
        degraded = degraded[delay_samples:]
    else:
        reference = reference[-delay_samples:]
    n_common = min(reference.size, degraded.size)
    return reference[:n_common], degraded[:n_common]


def align(reference: ArrayLike, degraded: ArrayLike, *, sample_rate: int,
          max_delay_ms: float = DEFAULT_MAX_DELAY_MS) -> tuple[NDArray[np.float64], NDArray[np.float64], int]:
    """Line up a decoded signal with its reference: delay search (:func:`find_delay`), then trim.

    Returns
    -------
    reference, degraded : array, shape (n_common,)
        float64, sample n of each describing the same instant.
    delay_samples : int
        How many samples the degraded input lagged the reference (negative: it ran ahead).

    Raises
    ------
    AudioError
        If either input is unusable, or nothing is left after removing the delay.
    """
    ref = as_mono(reference, name="reference")
    deg = as_mono(degraded, name="degraded")
    delay, _ = find_delay(ref, deg, sample_rate=sample_rate, max_delay_ms=max_delay_ms)
    ref, deg = trim_to_delay(ref, deg, delay_samples=delay)
    if ref.size == 0:
        raise AudioError(f"no overlap left after removing a delay of {delay} samples")
    return ref, deg, delay


def rms_dbfs(signal: NDArray[np.float64]) -> float:
    """RMS level in dB relative to a full-scale square wave (a full-scale sine reads -3.01 dBFS)."""
    return float(20.0 * np.log10(max(float(np.sqrt(np.mean(np.square(signal)))), _DB_FLOOR_RMS)))


@dataclass(frozen=True)
class Levels:
    """Levels of an aligned pair, from :func:`level_check`: RMS in dBFS (:func:`rms_dbfs`) and peaks."""

    reference_rms_dbfs: float
    degraded_rms_dbfs: float
    reference_peak: float
    degraded_peak: float

    @property
    def difference_db(self) -> float:
        """How much louder the degraded signal is, in dB (negative: quieter)."""
        return self.degraded_rms_dbfs - self.reference_rms_dbfs

    def warnings(self) -> list[str]:
        """What a listener of the numbers should know: silence, a level change, samples past full scale."""
        notes = []
        if self.reference_rms_dbfs < SILENCE_RMS_DBFS:
            notes.append(f"reference is silent ({self.reference_rms_dbfs:.1f} dBFS RMS)")
        if self.degraded_rms_dbfs < SILENCE_RMS_DBFS:
            notes.append(f"degraded is silent ({self.degraded_rms_dbfs:.1f} dBFS RMS)")
        elif self.reference_rms_dbfs >= SILENCE_RMS_DBFS and abs(self.difference_db) > LEVEL_MISMATCH_WARN_DB:
            notes.append(f"degraded is {self.difference_db:+.1f} dB from the reference level")
        for name, peak in (("reference", self.reference_peak), ("degraded", self.degraded_peak)):
            if peak > 1.0:
                notes.append(f"{name} peaks at {peak:.3f}, past full scale")
        return notes

    def as_dict(self) -> dict[str, float]:
        """The four levels plus ``difference_db``, for a report."""
        return {**asdict(self), "difference_db": self.difference_db}


def level_check(reference: NDArray[np.float64], degraded: NDArray[np.float64]) -> Levels:
    """Measure the levels of an aligned pair of 1-D signals.

    The metrics measure what the codec produced and do not undo a level change; this says
    whether there was one (``LEVEL_MISMATCH_WARN_DB``), or silence, or samples past full scale.
    """
    return Levels(reference_rms_dbfs=rms_dbfs(reference), degraded_rms_dbfs=rms_dbfs(degraded),
                  reference_peak=float(np.max(np.abs(reference))),
                  degraded_peak=float(np.max(np.abs(degraded))))
