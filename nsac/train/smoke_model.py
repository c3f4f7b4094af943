"""The smoke model: a tiny causal autoencoder with a noisy-rounding bottleneck, trained in seconds by tests.

    audio (B, 1, T) -> conv 7 -> conv /stride -> GRU -> conv -> tanh -> latent (B, latent, T / stride)
                    -> + uniform noise of one quantiser step (training) or rounding (evaluation)
                    -> conv -> GRU -> transposed conv x stride -> conv 7 -> audio (B, 1, T)

It exercises the streaming layers and the trainer (its training noise draws from torch's RNG, so exact resume
is tested for real); it is no codec anyone should use.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from nsac.nn.conv import CausalConv1d, CausalConvTranspose1d
from nsac.nn.gru import GRUBlock
from nsac.nn.streaming import StreamingSequential
from nsac.train.config import require

#: kernel of the input and output convolutions, in samples
EDGE_KERNEL = 7


@dataclass(frozen=True)
class SmokeConfig:
    channels: int = 8
    stride: int = 4  # samples per latent frame
    latent: int = 4  # latent channels
    levels: int = 16  # quantiser steps over the tanh range [-1, 1]
    gru: bool = True

    def __post_init__(self) -> None:
        require(self.channels >= 1 and self.stride >= 1 and self.latent >= 1,
                "model.channels, stride and latent must be >= 1")
        require(self.levels >= 2, f"model.levels={self.levels} must be >= 2")


class SmokeAutoencoder(nn.Module):
    """Tiny causal autoencoder: see the module docstring."""

    Config = SmokeConfig

    def __init__(self, config: SmokeConfig, *, sample_rate_hz: int) -> None:
        super().__init__()
        self.config = config
        self.sample_rate_hz = sample_rate_hz
        c, s = config.channels, config.stride
        recurrent = [GRUBlock(c)] if config.gru else []
        self.encoder = StreamingSequential(
            CausalConv1d(1, c, EDGE_KERNEL), nn.ELU(), CausalConv1d(c, c, 2 * s, stride=s), nn.ELU(),
            *recurrent, CausalConv1d(c, config.latent, 3), nn.Tanh())
        recurrent = [GRUBlock(c)] if config.gru else []
        self.decoder = StreamingSequential(
            CausalConv1d(config.latent, c, 3), nn.ELU(), *recurrent,
            CausalConvTranspose1d(c, c, 2 * s, stride=s), nn.ELU(), CausalConv1d(c, 1, EDGE_KERNEL))

    def quantise(self, latent: torch.Tensor) -> torch.Tensor:
        step = 2.0 / (self.config.levels - 1)
        if self.training:
            return latent + (torch.rand_like(latent) - 0.5) * step
        return torch.round(latent / step) * step

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.decoder(self.quantise(self.encoder(x)))
        return y[..., : x.shape[-1]]
