"""GAN discriminators for audio: multi-period (HiFi-GAN) and multi-scale STFT (EnCodec), and their union.

Every discriminator takes audio of shape (batch, 1, time) and returns ``(logits, features)``: one logits map
per sub-discriminator, and for each the list of its hidden activations (for feature matching). The losses in
:mod:`nsac.losses.adversarial` take exactly these lists.

References: Kong et al., "HiFi-GAN", NeurIPS 2020 (multi-period); Defossez et al., "High Fidelity Neural
Audio Compression" (EnCodec), 2022 (multi-scale complex STFT).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from nsac.errors import ParameterError

Logits = list[torch.Tensor]
Features = list[list[torch.Tensor]]

#: negative slope of the leaky ReLUs (HiFi-GAN uses 0.1, EnCodec 0.2)
MPD_LEAKY_SLOPE = 0.1
MSSTFT_LEAKY_SLOPE = 0.2
#: MPD: kernel along time (in periods) and the stride of each downsampling layer
MPD_KERNEL = 5
MPD_STRIDE = 3
#: MS-STFT: kernel (time frames, frequency bins), frequency stride and the time dilations of the middle layers
MSSTFT_KERNEL = (3, 9)
MSSTFT_FREQ_STRIDE = 2
MSSTFT_DILATIONS = (1, 2, 4)


def _check_audio(x: torch.Tensor) -> None:
    if x.ndim != 3 or x.shape[1] != 1:
        raise ParameterError(f"discriminator input has shape {tuple(x.shape)}; expected (batch, 1, time)")


class PeriodDiscriminator(nn.Module):
    """Looks at samples spaced `period` apart: the signal folded into a (time / period, period) image."""

    def __init__(self, period: int, *, channels: int = 32, max_channels: int = 512,
                 n_layers: int = 4) -> None:
        super().__init__()
        if period < 1 or channels < 1 or n_layers < 1:
            raise ParameterError(f"period={period}, channels={channels}, n_layers={n_layers} must be "
                                 "positive")
        self.period = period
        widths = [1] + [min(channels * 4**i, max_channels) for i in range(n_layers)]
        pad = (MPD_KERNEL // 2, 0)
        self.layers = nn.ModuleList(
            weight_norm(nn.Conv2d(c_in, c_out, (MPD_KERNEL, 1), stride=(MPD_STRIDE, 1), padding=pad))
            for c_in, c_out in itertools.pairwise(widths)
        )
        self.layers.append(weight_norm(nn.Conv2d(widths[-1], widths[-1], (MPD_KERNEL, 1), padding=pad)))
        self.output = weight_norm(nn.Conv2d(widths[-1], 1, (3, 1), padding=(1, 0)))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        batch, _, time = x.shape
        if time % self.period:
            pad = self.period - time % self.period
            x = F.pad(x, (0, pad), mode="reflect" if pad < time else "constant")
        h = x.view(batch, 1, -1, self.period)
        features = []
        for layer in self.layers:
            h = F.leaky_relu(layer(h), MPD_LEAKY_SLOPE)
            features.append(h)
        logits = self.output(h)
        features.append(logits)
        return logits.flatten(1), features


class MultiPeriodDiscriminator(nn.Module):
    """One :class:`PeriodDiscriminator` per period (HiFi-GAN uses the primes 2, 3, 5, 7, 11)."""

    def __init__(self, periods: Sequence[int] = (2, 3, 5, 7, 11), *, channels: int = 32,
                 max_channels: int = 512, n_layers: int = 4) -> None:
        super().__init__()
        if not periods:
            raise ParameterError("periods is empty; give at least one period, e.g. (2, 3, 5, 7, 11)")
        self.discriminators = nn.ModuleList(
            PeriodDiscriminator(p, channels=channels, max_channels=max_channels, n_layers=n_layers)
            for p in periods
        )

    def forward(self, x: torch.Tensor) -> tuple[Logits, Features]:
        _check_audio(x)
        outputs = [d(x) for d in self.discriminators]
        return [o[0] for o in outputs], [o[1] for o in outputs]


class STFTDiscriminator(nn.Module):
    """2-D convolutions over the complex STFT (real and imaginary parts as two channels) at one resolution."""

    window: torch.Tensor

    def __init__(self, n_fft: int, *, channels: int = 32) -> None:
        super().__init__()
        if n_fft < 8 or channels < 1:
            raise ParameterError(f"n_fft={n_fft} must be at least 8 and channels={channels} positive")
        self.n_fft = n_fft
        self.hop = n_fft // 4
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        k_t, k_f = MSSTFT_KERNEL
        first = nn.Conv2d(2, channels, MSSTFT_KERNEL, padding=(k_t // 2, k_f // 2))
        self.layers = nn.ModuleList([weight_norm(first)])
        for dilation in MSSTFT_DILATIONS:
            self.layers.append(weight_norm(nn.Conv2d(
                channels, channels, MSSTFT_KERNEL, stride=(1, MSSTFT_FREQ_STRIDE), dilation=(dilation, 1),
                padding=(dilation * (k_t // 2), k_f // 2))))
        self.layers.append(weight_norm(nn.Conv2d(channels, channels, (3, 3), padding=(1, 1))))
        self.output = weight_norm(nn.Conv2d(channels, 1, (3, 3), padding=(1, 1)))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        spec = torch.stft(x[:, 0], self.n_fft, hop_length=self.hop, window=self.window, normalized=True,
                          center=True, return_complex=True)
        # (batch, freq, frames) complex -> (batch, 2, frames, freq)
        h = torch.stack([spec.real, spec.imag], dim=1).transpose(2, 3)
        features = []
        for layer in self.layers:
            h = F.leaky_relu(layer(h), MSSTFT_LEAKY_SLOPE)
            features.append(h)
        logits = self.output(h)
        features.append(logits)
        return logits.flatten(1), features


class MultiScaleSTFTDiscriminator(nn.Module):
    """One :class:`STFTDiscriminator` per FFT size (EnCodec uses 2048, 1024, 512, 256, 128 at 24 kHz)."""

    def __init__(self, n_ffts: Sequence[int] = (1024, 512, 256), *, channels: int = 32) -> None:
        super().__init__()
        if not n_ffts:
            raise ParameterError("n_ffts is empty; give at least one FFT size, e.g. (1024, 512, 256)")
        self.discriminators = nn.ModuleList(STFTDiscriminator(n, channels=channels) for n in n_ffts)

    def forward(self, x: torch.Tensor) -> tuple[Logits, Features]:
        _check_audio(x)
        outputs = [d(x) for d in self.discriminators]
        return [o[0] for o in outputs], [o[1] for o in outputs]


class CombinedDiscriminator(nn.Module):
    """Several discriminators as one: their logits and feature lists concatenated in order."""

    def __init__(self, parts: Sequence[nn.Module]) -> None:
        super().__init__()
        if not parts:
            raise ParameterError("CombinedDiscriminator needs at least one discriminator")
        self.parts = nn.ModuleList(parts)

    def forward(self, x: torch.Tensor) -> tuple[Logits, Features]:
        logits: Logits = []
        features: Features = []
        for part in self.parts:
            part_logits, part_features = part(x)
            logits.extend(part_logits)
            features.extend(part_features)
        return logits, features
