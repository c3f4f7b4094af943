"""The metrics registry and evaluate(): score a decoded signal against its reference with any set of metrics.

Metrics: PESQ wide/narrow band, STOI, ESTOI, ViSQOL speech/audio, DNSMOS (:mod:`nsac.eval.perceptual`),
SI-SDR, log-spectral distance, mel distance (:mod:`nsac.eval.distances`), NMR from nsac's psychoacoustic
model (:mod:`nsac.eval.nmr`). :func:`evaluate` aligns the pair first (:mod:`nsac.eval.align`) and
reports the delay, the levels and the resampling each metric did.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from numpy.typing import ArrayLike

from nsac.errors import AudioError, ParameterError
from nsac.eval import align as _align
from nsac.eval.distances import log_spectral_distance, mel_distance, si_sdr
from nsac.eval.nmr import nmr
from nsac.eval.perceptual import (
    DNSMOS_INSTALL,
    DNSMOS_RATE_HZ,
    PESQ_INSTALL,
    PESQ_NB_RATE_HZ,
    PESQ_WB_RATE_HZ,
    STOI_INSTALL,
    STOI_RATE_HZ,
    VISQOL_AUDIO_RATE_HZ,
    VISQOL_INSTALL,
    VISQOL_SPEECH_RATE_HZ,
    dnsmos,
    estoi,
    pesq_nb,
    pesq_wb,
    stoi,
    visqol_audio,
    visqol_speech,
)

MIN_DURATION_MS = 250.0
"""Shortest input (and aligned overlap) :func:`evaluate` accepts; PESQ refuses less."""


@dataclass(frozen=True)
class MetricSpec:
    """How to run one metric and read its result.

    ``function`` is ``f(reference, degraded, *, sample_rate)`` if intrusive, ``f(degraded, *, sample_rate)``
    if not. ``rate_hz`` is the rate the metric works at (None: any rate, computed at the input rate);
    ``columns`` are the keys :func:`evaluate` writes (several for DNSMOS).
    """

    function: Callable[..., Any]
    kind: Literal["intrusive", "non-intrusive"]
    higher_is_better: bool
    rate_hz: int | None
    unit: str
    columns: tuple[str, ...]
    modules: tuple[str, ...] = ()
    install: str = ""
    resampled_by: str = "soxr"


METRICS: Mapping[str, MetricSpec] = {
    "pesq_wb": MetricSpec(pesq_wb, "intrusive", True, PESQ_WB_RATE_HZ, "MOS", ("pesq_wb",),
                          ("pesq",), PESQ_INSTALL),
    "pesq_nb": MetricSpec(pesq_nb, "intrusive", True, PESQ_NB_RATE_HZ, "MOS", ("pesq_nb",),
                          ("pesq",), PESQ_INSTALL),
    "stoi": MetricSpec(stoi, "intrusive", True, STOI_RATE_HZ, "", ("stoi",),
                       ("pystoi",), STOI_INSTALL, resampled_by="pystoi"),
    "estoi": MetricSpec(estoi, "intrusive", True, STOI_RATE_HZ, "", ("estoi",),
                        ("pystoi",), STOI_INSTALL, resampled_by="pystoi"),
    "visqol_speech": MetricSpec(visqol_speech, "intrusive", True, VISQOL_SPEECH_RATE_HZ, "MOS",
                                ("visqol_speech",), ("visqol", "ai_edge_litert"),
                                VISQOL_INSTALL),
    "visqol_audio": MetricSpec(visqol_audio, "intrusive", True, VISQOL_AUDIO_RATE_HZ, "MOS",
                               ("visqol_audio",), ("visqol",), VISQOL_INSTALL),
    "dnsmos": MetricSpec(dnsmos, "non-intrusive", True, DNSMOS_RATE_HZ, "MOS",
                         ("dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak"),
                         ("speechmos", "onnxruntime", "librosa", "requests"),
                         DNSMOS_INSTALL),
    "si_sdr": MetricSpec(si_sdr, "intrusive", True, None, "dB", ("si_sdr",)),
    "log_spectral_distance": MetricSpec(log_spectral_distance, "intrusive", False, None, "dB",
                                        ("log_spectral_distance",)),
    "mel_distance": MetricSpec(mel_distance, "intrusive", False, None, "dB", ("mel_distance",)),
    "nmr": MetricSpec(nmr, "intrusive", False, None, "dB", ("nmr", "nmr_audible_frames")),
}
"""Every metric by name. The bench reads kind, direction and rate from here."""


def _module_present(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def available_metrics() -> dict[str, bool]:
    """Which metrics can run here: name -> whether its libraries are installed (checked without
    importing them; ``METRICS[name].install`` is the pip line for a missing one)."""
    return {name: all(_module_present(module) for module in spec.modules) for name, spec in METRICS.items()}


def _resampling_note(spec: MetricSpec, sample_rate: int) -> str | None:
    if spec.rate_hz is None or spec.rate_hz == sample_rate:
        return None
    return f"{sample_rate} -> {spec.rate_hz} Hz by {spec.resampled_by}"


def evaluate(reference: ArrayLike, degraded: ArrayLike, *, sample_rate: int,
             metrics: Iterable[str] | None = None,
             max_delay_ms: float = _align.DEFAULT_MAX_DELAY_MS) -> dict[str, Any]:
    """Score a decoded signal against its reference with any set of metrics.

    Intrusive metrics see the pair after delay compensation (:func:`nsac.eval.align.find_delay`,
    searched over ``+-max_delay_ms``) and trimming to the common length; non-intrusive ones see the
    whole degraded signal. Each metric resamples to its own rate.

    Parameters
    ----------
    reference, degraded : array, shape (samples,) or (1, samples)
        Float samples, full scale +-1, both at ``sample_rate`` Hz; at least ``MIN_DURATION_MS`` long.
    metrics : iterable of str, optional
        Names from ``METRICS``; default: every metric whose libraries are installed.

    Returns
    -------
    dict
        One float per column of each metric (``pesq_wb``, ..., ``dnsmos_ovrl``, ...; NaN where the
        metric failed on this input); ``"errors"``: metric -> message for those; ``"unavailable"``:
        metric -> pip line for those skipped by the default set as not installed; ``"alignment"``:
        delay found (samples, ms), its correlation, samples compared and trimmed, the level check,
        per metric the resampling done, and warnings (level change, silence, weak correlation).

    Raises
    ------
    AudioError
        Bad input: not mono, not float, empty, NaN/inf, shorter than ``MIN_DURATION_MS``.
    ParameterError
        An unknown metric name or a bad sample rate.
    DependencyError
        A requested metric's library is not installed.
    """
    ref = _align.as_mono(reference, name="reference")
    deg = _align.as_mono(degraded, name="degraded")
    rate_hz = _align.check_sample_rate(sample_rate)
    min_samples = math.ceil(MIN_DURATION_MS * 1e-3 * rate_hz)
    for name, signal in (("reference", ref), ("degraded", deg)):
        if signal.size < min_samples:
            raise AudioError(f"{name} is {signal.size / rate_hz * 1e3:.0f} ms long; the metrics need at "
                             f"least {MIN_DURATION_MS:.0f} ms ({min_samples} samples at {rate_hz} Hz)")
    unavailable: dict[str, str] = {}
    if metrics is None:
        installed = available_metrics()
        names = [name for name, ok in installed.items() if ok]
        unavailable = {name: f"pip install {METRICS[name].install}" for name, ok in installed.items() if not ok}
    else:
        names = list(dict.fromkeys([metrics] if isinstance(metrics, str) else metrics))
        unknown = [name for name in names if name not in METRICS]
        if unknown:
            raise ParameterError(f"unknown metric(s) {unknown}; known: {', '.join(METRICS)}")

    delay, correlation = _align.find_delay(ref, deg, sample_rate=rate_hz, max_delay_ms=max_delay_ms)
    ref_aligned, deg_aligned = _align.trim_to_delay(ref, deg, delay_samples=delay)
    if ref_aligned.size < min_samples:
        raise AudioError(f"only {ref_aligned.size} samples overlap after removing a delay of {delay} "
                         f"samples; the metrics need at least {min_samples}")
    levels = _align.level_check(ref_aligned, deg_aligned)
    alignment_warnings = levels.warnings()
    if abs(correlation) < _align.WEAK_CORRELATION:
        alignment_warnings.append(f"weak cross-correlation peak ({correlation:.2f}): the delay of "
                                  f"{delay} samples may be wrong")
    if correlation < 0:
        alignment_warnings.append("degraded is polarity-inverted relative to the reference")

    result: dict[str, Any] = {}
    errors: dict[str, str] = {}
    resampling: dict[str, str] = {}
    for name in names:
        spec = METRICS[name]
        note = _resampling_note(spec, rate_hz)
        if note is not None:
            resampling[name] = note
        try:
            if spec.kind == "intrusive":
                value = spec.function(ref_aligned, deg_aligned, sample_rate=rate_hz)
            else:
                value = spec.function(deg, sample_rate=rate_hz)
        except AudioError as exc:
            errors[name] = str(exc)
            value = None
        if len(spec.columns) == 1:
            result[spec.columns[0]] = math.nan if value is None else float(value)
        else:
            for column in spec.columns:
                key = column.removeprefix(f"{name}_")
                result[column] = math.nan if value is None else float(value[key])
    result["errors"] = errors
    result["unavailable"] = unavailable
    result["alignment"] = {
        "sample_rate": rate_hz,
        "delay_samples": delay,
        "delay_ms": delay * 1e3 / rate_hz,
        "max_delay_ms": max_delay_ms,
        "correlation": correlation,
        "compared_samples": int(ref_aligned.size),
        "trimmed_reference_samples": int(ref.size - ref_aligned.size),
        "trimmed_degraded_samples": int(deg.size - deg_aligned.size),
        "levels": levels.as_dict(),
        "resampling": resampling,
        "warnings": alignment_warnings,
    }
    return result


__all__ = ["METRICS", "MetricSpec", "available_metrics", "dnsmos", "estoi", "evaluate", "log_spectral_distance",
           "mel_distance", "nmr", "pesq_nb", "pesq_wb", "si_sdr", "stoi", "visqol_audio", "visqol_speech"]
