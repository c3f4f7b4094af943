"""Batched pitch and periodicity per frame in torch, for training targets (no path search, no streaming).

For frame j, the segment of `window_samples` centred on sample ``j * hop + hop / 2`` is correlated with the
segment `lag` samples earlier, normalised: ``<a, b> / sqrt(<a, a> <b, b>)``, for every lag whose frequency
lies in [min_hz, max_hz]. The period is the shortest lag whose correlation reaches `OCTAVE_RATIO` of the
best (a period's multiples correlate as well as the period itself; the shortest is the fundamental),
refined to a fraction of a sample by a parabola through its neighbours. The periodicity is the correlation
at that lag: near 1 for a steady voiced frame, low for noise and silence.

nsac.dsp.pitch is the estimator LPCNet's encoder uses (streaming, with a Viterbi path); this one is a
frame-by-frame estimate for many crops at once, cheap enough to run on every training batch.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from nsac.errors import ParameterError

OCTAVE_RATIO = 0.9
"""A shorter lag is taken when its correlation is at least this fraction of the best lag's."""
CLIMB_LAGS = 6
"""From that lag, the peak is sought among this many lags (the first good lag may sit on its rising side)."""
ENERGY_FLOOR = 1e-8
"""Added to each segment's energy (full scale 1): silence correlates at about 0."""


def span_samples(*, sample_rate_hz: int, window_samples: int = 320, min_hz: float = 62.5) -> int:
    """Samples one pitch estimate reads: its window and the longest lag before it (and one more)."""
    return window_samples + math.ceil(sample_rate_hz / min_hz) + 1


def frame_pitch(x: torch.Tensor, *, sample_rate_hz: int, hop_samples: int, window_samples: int = 320,
                min_hz: float = 62.5, max_hz: float = 500.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Pitch (Hz) and periodicity of every `hop_samples` frame of x (B, T): two tensors (B, T // hop).

    Zeros stand in for the samples before and after x.
    """
    if x.ndim != 2:
        raise ParameterError(f"frame_pitch takes (batch, samples), not shape {tuple(x.shape)}")
    span = span_samples(sample_rate_hz=sample_rate_hz, window_samples=window_samples, min_hz=min_hz)
    n_frames = x.shape[-1] // hop_samples
    left = span - window_samples // 2 - hop_samples // 2
    padded = F.pad(x.float(), (left, span + hop_samples))
    spans = padded.unfold(-1, span, hop_samples)[:, :n_frames]  # (B, frames, span)
    return span_pitch(spans, sample_rate_hz=sample_rate_hz, window_samples=window_samples, min_hz=min_hz,
                      max_hz=max_hz)


def span_pitch(spans: torch.Tensor, *, sample_rate_hz: int, window_samples: int = 320, min_hz: float = 62.5,
               max_hz: float = 500.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Pitch (Hz) and periodicity of the last `window_samples` of each span (..., span_samples(...)).

    The estimate reads nothing outside its span, so a streaming caller that cuts the same spans from its
    own history gets the whole-signal values.
    """
    if not 0 < min_hz < max_hz < sample_rate_hz / 2:
        raise ParameterError(f"pitch range {min_hz}..{max_hz} Hz must lie inside 0..{sample_rate_hz / 2} Hz")
    span = span_samples(sample_rate_hz=sample_rate_hz, window_samples=window_samples, min_hz=min_hz)
    if spans.shape[-1] != span:
        raise ParameterError(f"pitch spans of {spans.shape[-1]} samples; this range and window read {span}")
    min_lag = max(2, math.floor(sample_rate_hz / max_hz))
    max_lag = span - window_samples  # one lag either side of the range for the parabola
    long = spans.float()
    current = long[..., max_lag:]
    n_fft = 2 ** math.ceil(math.log2(span + window_samples))
    cross = torch.fft.irfft(torch.fft.rfft(long, n_fft) * torch.fft.rfft(current, n_fft).conj(), n_fft)
    # cross[..., m] = <current, long[m : m + window]>: the segment max_lag - m samples earlier
    lagged = cross[..., : max_lag + 1].flip(-1)[..., min_lag - 1:]  # lags min_lag - 1 .. max_lag
    power = F.pad(torch.cumsum(long * long, dim=-1), (1, 0))
    past_energy = (power[..., window_samples:] - power[..., :-window_samples])[..., : max_lag + 1]
    past_energy = past_energy.flip(-1)[..., min_lag - 1:]
    energy = (current * current).sum(-1, keepdim=True)
    correlation = lagged / torch.sqrt((energy + ENERGY_FLOOR) * (past_energy.clamp(min=0) + ENERGY_FLOOR))
    inner = correlation[..., 1:-1]
    best = inner.max(dim=-1, keepdim=True).values
    good = inner >= OCTAVE_RATIO * best.clamp(min=0)
    first = torch.argmax(good.to(torch.int8), dim=-1)  # the first lag that is good enough...
    nearby = first[..., None] + torch.arange(CLIMB_LAGS, device=spans.device)
    nearby = nearby.clamp(max=inner.shape[-1] - 1)
    index = nearby.gather(-1, inner.gather(-1, nearby).argmax(-1, keepdim=True))[..., 0]  # ...its peak
    centre = inner.gather(-1, index[..., None])[..., 0]
    before = correlation.gather(-1, index[..., None])[..., 0]
    after = correlation.gather(-1, index[..., None] + 2)[..., 0]
    curvature = before - 2 * centre + after
    vertex = 0.5 * (before - after) / curvature.clamp(max=-1e-6)  # the parabola's peak, in lags
    shift = torch.where(curvature < 0, vertex, 0.0).clamp(-0.5, 0.5)
    period = index + min_lag + shift
    return sample_rate_hz / period, centre.clamp(min=0.0)


__all__ = ["frame_pitch", "span_pitch", "span_samples"]
