"""Causal 1-D convolutions (plain, strided, dilated, transposed) that also run chunk by chunk with state.

Framing of a causal convolution with effective kernel ``K = dilation * (kernel - 1) + 1`` and stride ``S``::

    whole signal   [0 ... 0 | x0 x1 x2 ... x(T-1)]      K - 1 zeros in front: output t sees x[<= t*S]
                    <K - 1>
    output frames  ceil(T / S): frame j ends on input sample j*S

    streaming      state = the inputs not yet consumed by a full window (K - 1 zeros before the first
                   chunk); a chunk is appended, every complete window is computed, the rest is kept

A transposed convolution with kernel ``K >= S`` writes ``K`` samples per input frame, of which the last
``K - S`` overlap the next frame: the whole-signal call keeps the first ``T * S`` outputs, the streaming
call holds the overlap as its state and adds it to the next chunk.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from nsac.errors import ParameterError

#: the weight parametrisations a layer may take
NORMS = ("none", "weight")


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if int(value) < 1:
            raise ParameterError(f"{name}={value} must be a positive integer")


class CausalConv1d(nn.Module):
    """Conv1d whose output at frame j depends only on inputs up to sample j * stride.

    Shapes: (batch, in_channels, time) -> (batch, out_channels, ceil(time / stride)).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *, stride: int = 1,
                 dilation: int = 1, groups: int = 1, bias: bool = True, norm: str = "none") -> None:
        super().__init__()
        _check_positive(in_channels=in_channels, out_channels=out_channels, kernel_size=kernel_size,
                        stride=stride, dilation=dilation, groups=groups)
        if norm not in NORMS:
            raise ParameterError(f"norm={norm!r} is not supported; use one of {', '.join(NORMS)}")
        conv = nn.Conv1d(in_channels, out_channels, kernel_size, stride=stride, dilation=dilation,
                         groups=groups, bias=bias)
        self.conv = weight_norm(conv) if norm == "weight" else conv
        self.stride = stride
        self.receptive_field = dilation * (kernel_size - 1) + 1
        self.in_channels = in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (self.receptive_field - 1, 0)))

    def stream(self, x: torch.Tensor, state: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        if state is None:
            state = x.new_zeros(x.shape[0], self.in_channels, self.receptive_field - 1)
        buffer = torch.cat([state, x], dim=-1)
        n_out = (buffer.shape[-1] - self.receptive_field) // self.stride + 1
        if n_out <= 0:
            return x.new_zeros(x.shape[0], self.conv.out_channels, 0), buffer
        used = (n_out - 1) * self.stride + self.receptive_field
        y = self.conv(buffer[..., :used])
        return y, buffer[..., n_out * self.stride :]


class CausalConvTranspose1d(nn.Module):
    """ConvTranspose1d upsampling by `stride` without look-ahead: (B, C, T) -> (B, C_out, T * stride)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *, stride: int,
                 bias: bool = True, norm: str = "none") -> None:
        super().__init__()
        _check_positive(in_channels=in_channels, out_channels=out_channels, kernel_size=kernel_size,
                        stride=stride)
        if kernel_size < stride:
            raise ParameterError(f"kernel_size={kernel_size} must be at least stride={stride}: shorter "
                                 "kernels leave gaps between frames")
        if norm not in NORMS:
            raise ParameterError(f"norm={norm!r} is not supported; use one of {', '.join(NORMS)}")
        # the bias is added after the overlap-add, so that a streamed overlap is not biased twice
        conv = nn.ConvTranspose1d(in_channels, out_channels, kernel_size, stride=stride, bias=False)
        self.conv = weight_norm(conv) if norm == "weight" else conv
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.stride = stride
        self.overlap = kernel_size - stride

    def _add_bias(self, y: torch.Tensor) -> torch.Tensor:
        return y if self.bias is None else y + self.bias[:, None]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._add_bias(self.conv(x)[..., : x.shape[-1] * self.stride])

    def stream(self, x: torch.Tensor, state: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        out_channels = self.conv.out_channels
        if state is None:
            state = x.new_zeros(x.shape[0], out_channels, self.overlap)
        if x.shape[-1] == 0:
            return x.new_zeros(x.shape[0], out_channels, 0), state
        y = self.conv(x)
        head = y[..., : self.overlap] + state
        y = torch.cat([head, y[..., self.overlap :]], dim=-1)
        n_out = x.shape[-1] * self.stride
        return self._add_bias(y[..., :n_out]), y[..., n_out:]
