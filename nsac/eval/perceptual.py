"""Perceptual quality metrics from optional libraries: PESQ, STOI/ESTOI, ViSQOL, DNSMOS.

Each wrapper validates its input, resamples with soxr to the rate the metric is defined at, and
turns the library's complaints about the input into AudioError. A library is imported when its
metric is first used; a missing one raises DependencyError carrying the ``pip install`` line.
None of them downloads anything: the ViSQOL and DNSMOS models ship inside their wheels.
"""

from __future__ import annotations

import functools
import importlib
import math
import warnings
from types import ModuleType
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike

from nsac.errors import AudioError, DependencyError
from nsac.eval import align as _align

PESQ_WB_RATE_HZ = 16_000
PESQ_NB_RATE_HZ = 8_000
STOI_RATE_HZ = 10_000  # pystoi resamples to this itself
VISQOL_SPEECH_RATE_HZ = 16_000
VISQOL_AUDIO_RATE_HZ = 48_000
DNSMOS_RATE_HZ = 16_000

PESQ_INSTALL = "pesq"
STOI_INSTALL = "pystoi"
VISQOL_INSTALL = '"visqol-python[lattice]"'
DNSMOS_INSTALL = "speechmos onnxruntime librosa requests"  # speechmos imports requests but does not declare it


def _import(module: str, *, metric: str, install: str) -> ModuleType:
    """Import an optional library, turning its absence into DependencyError with the install line."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise DependencyError(f"metric {metric!r} needs {module!r}, which failed to import ({exc}): "
                              f"pip install {install}") from exc


# ---------------------------------------------------------------- PESQ

def _pesq(reference: ArrayLike, degraded: ArrayLike, *, sample_rate: int, rate_hz: int,
          mode: Literal["wb", "nb"]) -> float:
    metric = f"pesq_{mode}"
    pesq = _import("pesq", metric=metric, install=PESQ_INSTALL)
    ref, deg, in_rate = _align.intrusive_pair(reference, degraded, sample_rate=sample_rate)
    ref = _align.resample(ref, from_rate_hz=in_rate, to_rate_hz=rate_hz)
    deg = _align.resample(deg, from_rate_hz=in_rate, to_rate_hz=rate_hz)
    try:
        return float(pesq.pesq(rate_hz, ref, deg, mode))
    except pesq.PesqError as exc:
        raise AudioError(f"{metric}: {type(exc).__name__}: {exc}") from exc


def pesq_wb(reference: ArrayLike, degraded: ArrayLike, *, sample_rate: int) -> float:
    """Wide-band PESQ MOS-LQO (ITU-T P.862.2), computed at 16 kHz; 1.04 (bad) to 4.64 (transparent).

    Signals: equal-length float arrays, shape (samples,) or (1, samples), at ``sample_rate`` Hz.
    Raises AudioError when PESQ rejects the input (no utterance detected, too short).
    """
    return _pesq(reference, degraded, sample_rate=sample_rate, rate_hz=PESQ_WB_RATE_HZ, mode="wb")


def pesq_nb(reference: ArrayLike, degraded: ArrayLike, *, sample_rate: int) -> float:
    """Narrow-band PESQ MOS-LQO (ITU-T P.862 with the P.862.1 mapping), at 8 kHz; 1.02 to 4.55.

    Signals as for :func:`pesq_wb`.
    """
    return _pesq(reference, degraded, sample_rate=sample_rate, rate_hz=PESQ_NB_RATE_HZ, mode="nb")


# ---------------------------------------------------------------- STOI

def _stoi(reference: ArrayLike, degraded: ArrayLike, *, sample_rate: int, extended: bool) -> float:
    metric = "estoi" if extended else "stoi"
    pystoi = _import("pystoi", metric=metric, install=STOI_INSTALL)
    ref, deg, rate_hz = _align.intrusive_pair(reference, degraded, sample_rate=sample_rate)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = float(pystoi.stoi(ref, deg, rate_hz, extended=extended))
    # pystoi answers a placeholder 1e-5 with a warning when too few speech frames remain
    for warning in caught:
        if "Not enough STFT frames" in str(warning.message):
            raise AudioError(f"{metric}: too little speech after removing silent frames "
                             f"(needs about 0.4 s of active speech)")
    return value


def stoi(reference: ArrayLike, degraded: ArrayLike, *, sample_rate: int) -> float:
    """Short-time objective intelligibility, 0..1 (Taal et al., IEEE TASLP 2011), via pystoi at 10 kHz.

    Signals as for :func:`pesq_wb`; pystoi resamples to 10 kHz and drops silent frames itself.
    """
    return _stoi(reference, degraded, sample_rate=sample_rate, extended=False)


def estoi(reference: ArrayLike, degraded: ArrayLike, *, sample_rate: int) -> float:
    """Extended STOI, about 0..1 (Jensen & Taal, IEEE/ACM TASLP 2016), via pystoi at 10 kHz."""
    return _stoi(reference, degraded, sample_rate=sample_rate, extended=True)


# ---------------------------------------------------------------- ViSQOL

@functools.cache
def _visqol_api(mode: Literal["speech", "audio"]) -> Any:
    metric = f"visqol_{mode}"
    visqol = _import("visqol", metric=metric, install=VISQOL_INSTALL)
    if mode == "speech":
        # The deep-lattice mapper is what ViSQOL v3 uses for speech; refuse the polynomial fallback.
        _import("ai_edge_litert.interpreter", metric=metric, install=VISQOL_INSTALL)
    api = visqol.VisqolApi()
    api.create(mode=mode, use_lattice_model=True if mode == "speech" else None)
    return api


def _visqol(reference: ArrayLike, degraded: ArrayLike, *, sample_rate: int,
            mode: Literal["speech", "audio"], rate_hz: int) -> float:
    api = _visqol_api(mode)
    ref, deg, in_rate = _align.intrusive_pair(reference, degraded, sample_rate=sample_rate)
    ref = _align.resample(ref, from_rate_hz=in_rate, to_rate_hz=rate_hz)
    deg = _align.resample(deg, from_rate_hz=in_rate, to_rate_hz=rate_hz)
    try:
        with np.errstate(invalid="ignore", divide="ignore"):
            value = float(api.measure_from_arrays(ref, deg, rate_hz).moslqo)
    except (ValueError, IndexError, RuntimeError, ZeroDivisionError) as exc:
        raise AudioError(f"visqol_{mode}: {type(exc).__name__}: {exc} (input too short or silent?)") from exc
    if not math.isfinite(value):
        raise AudioError(f"visqol_{mode}: ViSQOL gave {value} (is one of the signals silent?)")
    return value


def visqol_speech(reference: ArrayLike, degraded: ArrayLike, *, sample_rate: int) -> float:
    """ViSQOL v3 speech mode MOS-LQO, 1..5, at 16 kHz with the deep-lattice mapping
    (Chinen et al., QoMEX 2020), via visqol-python. Signals as for :func:`pesq_wb`."""
    return _visqol(reference, degraded, sample_rate=sample_rate, mode="speech", rate_hz=VISQOL_SPEECH_RATE_HZ)


def visqol_audio(reference: ArrayLike, degraded: ArrayLike, *, sample_rate: int) -> float:
    """ViSQOL v3 audio mode MOS-LQO, 1..~4.75, at 48 kHz with the bundled SVR mapping
    (Chinen et al., QoMEX 2020), via visqol-python. Signals as for :func:`pesq_wb`."""
    return _visqol(reference, degraded, sample_rate=sample_rate, mode="audio", rate_hz=VISQOL_AUDIO_RATE_HZ)


# ---------------------------------------------------------------- DNSMOS

def dnsmos(degraded: ArrayLike, *, sample_rate: int) -> dict[str, float]:
    """DNSMOS P.835 (Reddy et al., ICASSP 2022), non-intrusive, at 16 kHz, via speechmos' bundled ONNX models.

    Parameters
    ----------
    degraded : array, shape (samples,) or (1, samples)
        Float samples; values past +-1 are clipped as a 16-bit file would. Clips shorter than
        the model's 9.01 s input are repeated to fill it, as Microsoft's reference script does.

    Returns
    -------
    dict with ``ovrl`` (overall), ``sig`` (speech distortion), ``bak`` (background noise), MOS 1..5.
    """
    _import("onnxruntime", metric="dnsmos", install=DNSMOS_INSTALL)
    _import("librosa", metric="dnsmos", install=DNSMOS_INSTALL)
    speechmos_dnsmos = _import("speechmos.dnsmos", metric="dnsmos", install=DNSMOS_INSTALL)
    deg = _align.as_mono(degraded, name="degraded")
    rate_hz = _align.check_sample_rate(sample_rate)
    deg = np.clip(_align.resample(deg, from_rate_hz=rate_hz, to_rate_hz=DNSMOS_RATE_HZ), -1.0, 1.0)
    scores = speechmos_dnsmos.run(deg.astype(np.float32), DNSMOS_RATE_HZ)
    return {"ovrl": float(scores["ovrl_mos"]), "sig": float(scores["sig_mos"]), "bak": float(scores["bak_mos"])}
