"""Spectral reconstruction losses: multi-resolution STFT (convergence + log magnitude) and multi-scale mel.

Both take batches of audio, (batch, time) or (batch, 1, time), and return the mean over the batch, or one
value per item with ``reduction="none"`` (a batch then equals its items one by one).

References: Yamamoto et al., "Parallel WaveGAN", ICASSP 2020 (multi-resolution STFT loss);
Kumar et al., "High-Fidelity Audio Compression with Improved RVQGAN" (DAC), 2023 (multi-scale mel loss);
Slaney, "Auditory Toolbox" (1998) for the mel scale and filter normalisation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from nsac.errors import ParameterError

#: (n_fft, hop, window) of the default resolutions, in samples (Parallel WaveGAN's, at 24 kHz)
DEFAULT_STFT_RESOLUTIONS = ((512, 128, 512), (1024, 256, 1024), (2048, 512, 2048))
#: (n_fft, n_mels) of the default mel scales; the hop is a quarter of n_fft
DEFAULT_MEL_SCALES = ((256, 20), (512, 40), (1024, 80), (2048, 80))
#: floors that keep logarithms finite on digital silence: magnitude and mel energy
MAGNITUDE_FLOOR = 1e-7
LOG_MAGNITUDE_FLOOR = 1e-5
"""Magnitudes enter the log distance floored here (about -110 dB below a full-scale sine's STFT peak), so
that digital silence in a target crop does not turn the loss into ``log`` of rounding noise."""
CONVERGENCE_FLOOR = 1e-3
"""The spectral convergence's denominator is at least this magnitude per bin (RMS over the spectrogram):
a near-silent target crop would otherwise divide by almost nothing (a training run diverged so)."""
MEL_FLOOR = 1e-5
REDUCTIONS = ("mean", "none")
#: Slaney's mel scale: linear below BREAK_HZ with LINEAR_HZ_PER_MEL, logarithmic above
_SLANEY_BREAK_HZ = 1000.0
_SLANEY_LINEAR_HZ_PER_MEL = 200.0 / 3.0
_SLANEY_LOG_STEP = math.log(6.4) / 27.0


def _as_batch(x: torch.Tensor, name: str) -> torch.Tensor:
    if x.ndim == 3 and x.shape[1] == 1:
        return x[:, 0]
    if x.ndim != 2:
        raise ParameterError(f"{name} has shape {tuple(x.shape)}; expected (batch, time) or (batch, 1, time)")
    return x


def _reduce(per_item: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction not in REDUCTIONS:
        raise ParameterError(f"reduction={reduction!r} is not supported; use one of {', '.join(REDUCTIONS)}")
    return per_item.mean() if reduction == "mean" else per_item


def _magnitude(spec: torch.Tensor) -> torch.Tensor:
    """|spec| floored at MAGNITUDE_FLOOR; unlike Tensor.abs() its gradient stays finite at zero."""
    return torch.sqrt(torch.clamp(spec.real**2 + spec.imag**2, min=MAGNITUDE_FLOOR**2))


def hz_to_mel(hz: torch.Tensor) -> torch.Tensor:
    """Slaney's mel scale (as librosa's default): linear to 1 kHz, logarithmic above."""
    linear = hz / _SLANEY_LINEAR_HZ_PER_MEL
    log_part = _SLANEY_BREAK_HZ / _SLANEY_LINEAR_HZ_PER_MEL + torch.log(
        torch.clamp(hz, min=_SLANEY_BREAK_HZ) / _SLANEY_BREAK_HZ) / _SLANEY_LOG_STEP
    return torch.where(hz >= _SLANEY_BREAK_HZ, log_part, linear)


def mel_to_hz(mel: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`hz_to_mel`."""
    break_mel = _SLANEY_BREAK_HZ / _SLANEY_LINEAR_HZ_PER_MEL
    return torch.where(mel >= break_mel, _SLANEY_BREAK_HZ * torch.exp(_SLANEY_LOG_STEP * (mel - break_mel)),
                       mel * _SLANEY_LINEAR_HZ_PER_MEL)


def mel_filterbank(*, n_mels: int, n_fft: int, sample_rate_hz: int, f_min_hz: float = 0.0,
                   f_max_hz: float | None = None) -> torch.Tensor:
    """Triangular mel filters, shape (n_mels, n_fft // 2 + 1), each scaled to unit area (Slaney).

    Filter i rises from mel point i to i + 1 and falls to i + 2; the n_mels + 2 points are equally spaced on
    the mel scale from f_min_hz to f_max_hz (default: Nyquist).
    """
    f_max_hz = sample_rate_hz / 2 if f_max_hz is None else f_max_hz
    if n_mels < 1 or n_fft < 2 or not 0 <= f_min_hz < f_max_hz <= sample_rate_hz / 2:
        raise ParameterError(f"mel filterbank: n_mels={n_mels}, n_fft={n_fft}, f_min_hz={f_min_hz}, "
                             f"f_max_hz={f_max_hz} must satisfy n_mels >= 1, n_fft >= 2, "
                             f"0 <= f_min < f_max <= {sample_rate_hz / 2:g} Hz")
    fft_hz = torch.linspace(0.0, sample_rate_hz / 2, n_fft // 2 + 1, dtype=torch.float64)
    edges_mel = torch.linspace(float(hz_to_mel(torch.tensor(f_min_hz, dtype=torch.float64))),
                               float(hz_to_mel(torch.tensor(f_max_hz, dtype=torch.float64))), n_mels + 2,
                               dtype=torch.float64)
    edges_hz = mel_to_hz(edges_mel)
    widths = torch.diff(edges_hz)
    rising = (fft_hz[None, :] - edges_hz[:-2, None]) / widths[:-1, None]
    falling = (edges_hz[2:, None] - fft_hz[None, :]) / widths[1:, None]
    weights = torch.clamp(torch.minimum(rising, falling), min=0.0)
    weights *= (2.0 / (edges_hz[2:] - edges_hz[:-2]))[:, None]
    return weights.to(torch.float32)


class MultiResolutionSTFTLoss(nn.Module):
    """Spectral convergence plus mean |log |Y| - log |X||, averaged over the resolutions."""

    def __init__(self, resolutions: Sequence[tuple[int, int, int]] = DEFAULT_STFT_RESOLUTIONS) -> None:
        super().__init__()
        if not resolutions:
            raise ParameterError("resolutions is empty; give (n_fft, hop, window) triples")
        for n_fft, hop, window in resolutions:
            if not (0 < hop <= window <= n_fft):
                raise ParameterError(f"STFT resolution (n_fft={n_fft}, hop={hop}, window={window}) needs "
                                     "0 < hop <= window <= n_fft")
        self.resolutions = tuple(tuple(int(v) for v in r) for r in resolutions)
        for i, (_, _, window) in enumerate(self.resolutions):
            self.register_buffer(f"window_{i}", torch.hann_window(window), persistent=False)

    def _magnitude(self, x: torch.Tensor, i: int) -> torch.Tensor:
        n_fft, hop, window = self.resolutions[i]
        spec = torch.stft(x, n_fft, hop_length=hop, win_length=window, window=getattr(self, f"window_{i}"),
                          center=True, return_complex=True)
        return _magnitude(spec)

    def forward(self, output: torch.Tensor, target: torch.Tensor, *, reduction: str = "mean") -> torch.Tensor:
        y, x = _as_batch(output, "output"), _as_batch(target, "target")
        total = y.new_zeros(y.shape[0])
        for i in range(len(self.resolutions)):
            mag_y, mag_x = self._magnitude(y, i), self._magnitude(x, i)
            floor = CONVERGENCE_FLOOR * math.sqrt(mag_x.shape[1] * mag_x.shape[2])
            convergence = torch.linalg.vector_norm(mag_y - mag_x, dim=(1, 2)) / torch.clamp(
                torch.linalg.vector_norm(mag_x, dim=(1, 2)), min=floor)
            log_y = torch.log(torch.clamp(mag_y, min=LOG_MAGNITUDE_FLOOR))
            log_x = torch.log(torch.clamp(mag_x, min=LOG_MAGNITUDE_FLOOR))
            log_distance = (log_y - log_x).abs().mean(dim=(1, 2))
            total = total + convergence + log_distance
        return _reduce(total / len(self.resolutions), reduction)


class MelSpectrogramLoss(nn.Module):
    """Mean |log10 mel(Y) - log10 mel(X)| over several STFT sizes (DAC's multi-scale mel loss)."""

    def __init__(self, *, sample_rate_hz: int, scales: Sequence[tuple[int, int]] = DEFAULT_MEL_SCALES,
                 f_min_hz: float = 0.0) -> None:
        super().__init__()
        if not scales:
            raise ParameterError("scales is empty; give (n_fft, n_mels) pairs")
        self.scales = tuple((int(n_fft), int(n_mels)) for n_fft, n_mels in scales)
        for i, (n_fft, n_mels) in enumerate(self.scales):
            self.register_buffer(f"window_{i}", torch.hann_window(n_fft), persistent=False)
            self.register_buffer(f"filters_{i}", mel_filterbank(n_mels=n_mels, n_fft=n_fft,
                                                                sample_rate_hz=sample_rate_hz,
                                                                f_min_hz=f_min_hz), persistent=False)

    def log_mel(self, x: torch.Tensor, i: int) -> torch.Tensor:
        """log10 mel magnitude at scale i, shape (batch, n_mels, frames)."""
        n_fft, _ = self.scales[i]
        spec = torch.stft(x, n_fft, hop_length=n_fft // 4, window=getattr(self, f"window_{i}"), center=True,
                          return_complex=True)
        mel = torch.matmul(getattr(self, f"filters_{i}"), _magnitude(spec))
        return torch.log10(torch.clamp(mel, min=MEL_FLOOR))

    def forward(self, output: torch.Tensor, target: torch.Tensor, *, reduction: str = "mean") -> torch.Tensor:
        y, x = _as_batch(output, "output"), _as_batch(target, "target")
        total = y.new_zeros(y.shape[0])
        for i in range(len(self.scales)):
            total = total + (self.log_mel(y, i) - self.log_mel(x, i)).abs().mean(dim=(1, 2))
        return _reduce(total / len(self.scales), reduction)
