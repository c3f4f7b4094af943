"""Causal dilated residual units (the building block of SoundStream/EnCodec-style coders), streaming.

    x -> ELU -> causal conv (kernel k, dilation d, channels -> hidden) -> ELU -> 1x1 (hidden -> channels) -> + x

Both convolutions have stride 1, so a chunk of n samples gives n samples and the residual sum lines up in
streaming as on the whole signal. The state is the dilated convolution's (its last d (k - 1) inputs).
"""

from __future__ import annotations

import torch
from torch import nn

from nsac.errors import ParameterError
from nsac.nn.conv import CausalConv1d
from nsac.nn.streaming import State, StreamingSequential


class CausalResidualUnit(nn.Module):
    """y = x + 1x1(ELU(dilated causal conv(ELU(x)))); shapes (batch, channels, time) -> the same."""

    def __init__(self, channels: int, *, kernel_size: int = 7, dilation: int = 1, hidden: int | None = None,
                 norm: str = "none") -> None:
        super().__init__()
        hidden = channels if hidden is None else hidden
        if hidden < 1:
            raise ParameterError(f"hidden={hidden} must be a positive integer")
        self.block = StreamingSequential(
            nn.ELU(), CausalConv1d(channels, hidden, kernel_size, dilation=dilation, norm=norm),
            nn.ELU(), CausalConv1d(hidden, channels, 1, norm=norm))
        self.receptive_field = dilation * (kernel_size - 1) + 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)

    def stream(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        y, state = self.block.stream(x, state)
        return x + y, state
