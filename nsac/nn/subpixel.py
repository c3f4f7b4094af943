"""Sub-pixel (periodic shuffle) upsampling in 1-D, causal and streaming: conv to r x channels, interleave.

    x (B, C_in, T) -> causal conv (kernel k) -> (B, C_out * r, T) -> (B, C_out, T * r)

    output sample t * r + i = channel block i of conv frame t          (Shi et al., CVPR 2016, in 1-D)

Every output frame comes from conv frame t alone, so upsampling adds no delay and no overlap: frame t of the
input writes output samples t * r .. t * r + r - 1 (the timing of `CausalConvTranspose1d`), and the stream
state is only the causal convolution's. Unlike a transposed convolution it cannot make checkerboard overlap
artefacts (Kankanahalli 2018 upsampled this way).
"""

from __future__ import annotations

import torch
from torch import nn

from nsac.errors import ParameterError
from nsac.nn.conv import CausalConv1d
from nsac.nn.streaming import State


class SubpixelUpsample1d(nn.Module):
    """(batch, in_channels, T) -> (batch, out_channels, T * factor), causal; see the module docstring."""

    def __init__(self, in_channels: int, out_channels: int, factor: int, *, kernel_size: int = 3,
                 norm: str = "none") -> None:
        super().__init__()
        if int(factor) < 1:
            raise ParameterError(f"factor={factor} must be a positive integer")
        self.factor, self.out_channels = int(factor), int(out_channels)
        self.conv = CausalConv1d(in_channels, out_channels * self.factor, kernel_size, norm=norm)

    def _shuffle(self, y: torch.Tensor) -> torch.Tensor:
        batch, _, frames = y.shape
        y = y.reshape(batch, self.out_channels, self.factor, frames).transpose(2, 3)
        return y.reshape(batch, self.out_channels, frames * self.factor)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._shuffle(self.conv(x))

    def stream(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        y, state = self.conv.stream(x, state)
        return self._shuffle(y), state
