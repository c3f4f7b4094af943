"""The causal time-domain CNN enhancer: dilated residual convolutions predict a correction added to the input.

After the time-domain post-processor of Zhao, Liu & Fingscheidt, "Convolutional neural networks to enhance
coded speech" (IEEE/ACM TASLP 27(4), 2019): a CNN maps the decoded waveform to a better one, end to end.
Theirs is an encoder-decoder over frames; ours is made causal and cheap enough for 2 CPU cores::

    x (B, 1, T) --[strided conv, kernel 2S, stride S]--> (B, C, T / S)       analysis at S-sample frames
              --[residual units: ELU, conv k=3 dilation d, ELU, 1x1; d = 1, 2, 4, ...]--
              --[ELU, transposed conv, kernel 2S, stride S]--> c (B, 1, T)    synthesis, overlap-add
    y = x + c

Frame j of the strided convolution ends on input sample j * S, and the transposed convolution writes its
samples j * S ... j * S + 2S - 1, so output sample n uses inputs up to n and no further: zero look-ahead,
no added delay (`delay_samples` = 0). The synthesis layer starts at zero, so an untrained model returns its
input. Streaming computes a frame as soon as its last sample is in; the correction then runs ahead of the
input by up to S - 1 samples, and `stream` keeps that surplus for the next chunk, so every chunk comes back
whole (`hop_samples` = 1: any packet size works).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from nsac.errors import ParameterError
from nsac.nn.conv import CausalConv1d, CausalConvTranspose1d
from nsac.nn.residual import CausalResidualUnit
from nsac.nn.streaming import State, StreamingSequential

#: kernel of the dilated convolution in each residual unit
_UNIT_KERNEL = 3
#: analysis and synthesis windows span two frames, so consecutive frames overlap by half
_WINDOW_FRAMES = 2


@dataclass(frozen=True)
class TimeCnnConfig:
    stride_samples: int = 8  # S: one frame per 0.5 ms at 16 kHz
    channels: int = 40
    #: dilations of the residual units (frames): 1..128 see 511 frames back (about 255 ms at S = 8)
    dilations: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 128)
    residual_hidden: int = 24  # channels inside a residual unit

    def __post_init__(self) -> None:
        if self.stride_samples < 1 or self.channels < 1 or self.residual_hidden < 1:
            raise ParameterError(f"model.stride_samples={self.stride_samples}, channels={self.channels} and "
                                 f"residual_hidden={self.residual_hidden} must be positive integers")
        if any(d < 1 for d in self.dilations):
            raise ParameterError(f"model.dilations={list(self.dilations)} must be positive integers")


def frame_network(config: TimeCnnConfig, *, in_channels: int) -> StreamingSequential:
    """Strided analysis, residual units, zero-initialised synthesis: (B, in_channels, T) -> (B, 1, ~T)."""
    s, c = config.stride_samples, config.channels
    synthesis = CausalConvTranspose1d(c, 1, _WINDOW_FRAMES * s, stride=s)
    nn.init.zeros_(synthesis.conv.weight)
    return StreamingSequential(
        CausalConv1d(in_channels, c, _WINDOW_FRAMES * s, stride=s),
        *[CausalResidualUnit(c, kernel_size=_UNIT_KERNEL, dilation=d, hidden=config.residual_hidden)
          for d in config.dilations],
        nn.ELU(), synthesis)


class TimeCnnEnhancer(nn.Module):
    """Causal time-domain enhancer (see the module docstring): (B, 1, T) -> (B, 1, T), no delay."""

    Config = TimeCnnConfig
    #: channels fed to the network besides the decoded signal (a subclass adds noise)
    extra_input_channels = 0

    def __init__(self, config: TimeCnnConfig, *, sample_rate_hz: int) -> None:
        super().__init__()
        self.config = config
        self.sample_rate_hz = sample_rate_hz
        self.net = frame_network(config, in_channels=1 + self.extra_input_channels)

    @property
    def delay_samples(self) -> int:
        """What `stream` adds: nothing, the model is causal with zero look-ahead."""
        return 0

    @property
    def hop_samples(self) -> int:
        """`stream` returns every sample it is given, so a codec packet of any length fits."""
        return 1

    def uncounted_macs(self, n_samples: int) -> float:
        """Convolutions only, all seen by torch's flop counter."""
        return 0.0

    def network_input(self, x: torch.Tensor, start_sample: int) -> torch.Tensor:
        """(B, 1, T) signal whose first sample is stream sample `start_sample` -> the network's input."""
        return x

    def _check(self, x: torch.Tensor) -> None:
        if x.ndim != 3 or x.shape[1] != 1:
            raise ParameterError(f"the enhancer takes (batch, 1, time) audio, not {tuple(x.shape)}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, T) decoded audio -> (B, 1, T) enhanced audio aligned with it."""
        self._check(x)
        correction = self.net(self.network_input(x, 0))
        return x + correction[..., : x.shape[-1]]

    def stream(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """Chunk of (B, 1, samples) -> the same number of enhanced samples (no delay).

        State: (samples seen so far as a 0-d int64 tensor, the network's state, the correction computed
        ahead of the input).
        """
        self._check(x)
        if state is None:
            seen, net_state, ahead = torch.zeros((), dtype=torch.int64), None, x.new_zeros(x.shape[0], 1, 0)
        else:
            seen, net_state, ahead = state
        correction, net_state = self.net.stream(self.network_input(x, int(seen)), net_state)
        correction = torch.cat([ahead, correction], dim=-1)
        n = x.shape[-1]
        return x + correction[..., :n], (seen + n, net_state, correction[..., n:])
