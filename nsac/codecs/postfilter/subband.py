"""The causal sub-band GAN post-filter: PQMF analysis, a causal convolutional/recurrent generator, synthesis.

After PostGAN (Korse et al., "PostGAN: a GAN-based post-processor to enhance the quality of coded speech",
ICASSP 2022): the decoded signal is split into M critically sampled bands, a causal generator working at the
band rate predicts a correction of every band, and the corrections are synthesised and added to the decoded
signal delayed by the filterbank's delay. Trained with adversarial and feature-matching losses (recipe
postfilter-amrwb-12k65-subband-gan).

Framing (M = n_bands = hop_samples, L = taps + 1 filter coefficients, D = taps = delay_samples)::

    input x        ......[x(Mj) .. x(Mj + M - 1)]......      hop j
    analysis       v_k[j] = sum_l h_k[l] x[Mj + M - 1 - l]    (band sample j sees the whole of hop j)
    generator      r[j] = G(s v[<= j]) / s                    causal over band samples (s: SIGNAL_SCALE)
    synthesis      s[n] = sum_k sum_j r_k[j] M g_k[n - (Mj + M - 1)]
    output         y[n] = x[n - D] + s[n]                     hop j of y is complete once hop j of x is in

PQMF analysis followed by synthesis is a near-pure delay of D samples, so the dry path x[n - D] lines up
with the synthesised correction; the generator's last layer starts at zero, so an untrained model returns
the input delayed by exactly D (no filterbank error). Whole-signal `forward` returns the output aligned
with its input; `stream` returns it D samples behind, chunk by chunk, with the same samples.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nsac.dsp.pqmf import (
    DEFAULT_CUTOFF_RATIO_4_BANDS,
    DEFAULT_KAISER_BETA,
    DEFAULT_TAPS_4_BANDS,
    pqmf_filters,
)
from nsac.errors import ParameterError
from nsac.nn.conv import CausalConv1d
from nsac.nn.gru import GRUBlock
from nsac.nn.residual import CausalResidualUnit
from nsac.nn.streaming import StreamingSequential

#: the generator works on band signals scaled by this (speech at -26 LUFS, about 0.05 RMS, comes to about
#: 0.5) and its correction is scaled back: inputs and outputs near unit size for the default init
SIGNAL_SCALE = 10.0
#: PostGAN's bound on the added delay
MAX_DELAY_MS = 10.0
_MS_PER_S = 1000.0


@dataclass(frozen=True)
class SubbandGanConfig:
    n_bands: int = 4  # M: 4 bands of 2 kHz at 16 kHz
    taps: int = DEFAULT_TAPS_4_BANDS  # PQMF prototype order = the delay in samples (62: 3.9 ms at 16 kHz)
    cutoff_ratio: float = DEFAULT_CUTOFF_RATIO_4_BANDS
    kaiser_beta: float = DEFAULT_KAISER_BETA
    channels: int = 48
    kernel_size: int = 5  # over band samples (M input samples each)
    dilations: tuple[int, ...] = (1, 3, 9)  # one causal residual unit each
    gru_layers: int = 1

    def __post_init__(self) -> None:
        if self.n_bands < 2:
            raise ParameterError(f"model.n_bands={self.n_bands} must be at least 2")
        if self.taps < self.n_bands or self.taps % 2:
            raise ParameterError(f"model.taps={self.taps} must be even and at least n_bands={self.n_bands}")
        if self.channels < 1 or self.kernel_size < 1 or self.gru_layers < 0:
            raise ParameterError(f"model.channels={self.channels} and kernel_size={self.kernel_size} must be "
                                 f">= 1 and gru_layers={self.gru_layers} >= 0")
        if any(d < 1 for d in self.dilations):
            raise ParameterError(f"model.dilations={list(self.dilations)} must be positive integers")


class SubbandGanEnhancer(nn.Module):
    """Causal sub-band enhancer of a decoded signal: see the module docstring. (B, 1, T) -> (B, 1, T)."""

    Config = SubbandGanConfig

    def __init__(self, config: SubbandGanConfig, *, sample_rate_hz: int) -> None:
        super().__init__()
        delay_ms = config.taps / sample_rate_hz * _MS_PER_S
        if delay_ms > MAX_DELAY_MS:
            raise ParameterError(f"model.taps={config.taps} delays by {delay_ms:.1f} ms at {sample_rate_hz} Hz; "
                                 f"the sub-band post-filter allows {MAX_DELAY_MS:g} ms")
        self.config = config
        self.sample_rate_hz = sample_rate_hz
        self.n_bands = config.n_bands
        self.n_filter = config.taps + 1
        analysis, synthesis = pqmf_filters(n_bands=config.n_bands, taps=config.taps,
                                           cutoff_ratio=config.cutoff_ratio, kaiser_beta=config.kaiser_beta)
        # conv1d correlates, so the analysis filters are flipped; conv_transpose1d convolves as it is
        self.register_buffer("analysis_kernel", torch.as_tensor(analysis[:, None, ::-1].copy(),
                                                                dtype=torch.float32), persistent=False)
        self.register_buffer("synthesis_kernel", torch.as_tensor(config.n_bands * synthesis[:, None, :],
                                                                 dtype=torch.float32), persistent=False)
        c = config.channels
        last = CausalConv1d(c, config.n_bands, config.kernel_size)
        nn.init.zeros_(last.conv.weight)
        nn.init.zeros_(last.conv.bias)
        self.generator = StreamingSequential(
            CausalConv1d(config.n_bands, c, config.kernel_size),
            *[CausalResidualUnit(c, kernel_size=config.kernel_size, dilation=d) for d in config.dilations],
            nn.ELU(), *[GRUBlock(c) for _ in range(config.gru_layers)], nn.ELU(), last)

    @property
    def delay_samples(self) -> int:
        """The PQMF's delay: the dry path is delayed by as much."""
        return self.config.taps

    @property
    def hop_samples(self) -> int:
        return self.n_bands

    def uncounted_macs(self, n_samples: int) -> float:
        """Torch's flop counter sees the filterbank's convolutions and the GRU: nothing is left out."""
        return 0.0

    # --- filterbank -------------------------------------------------------------------------------------
    def analysis(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, L - M + J M) input, the first L - M samples history -> (B, M, J) band samples."""
        return F.conv1d(x, self.analysis_kernel, stride=self.n_bands)

    def synthesis(self, bands: torch.Tensor) -> torch.Tensor:
        """(B, M, J) band samples -> (B, 1, (J - 1) M + L): band sample j's response starts at sample j M."""
        return F.conv_transpose1d(bands, self.synthesis_kernel, stride=self.n_bands)

    def _generate(self, bands: torch.Tensor, state: object = None, *, streaming: bool = False) -> Any:
        """(B, M, J) band samples -> their (B, M, J) correction (and the generator's state if streaming)."""
        if streaming:
            correction, state = self.generator.stream(bands * SIGNAL_SCALE, state)
            return correction / SIGNAL_SCALE, state
        return self.generator(bands * SIGNAL_SCALE) / SIGNAL_SCALE

    # --- whole signal and streaming ---------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, T) decoded audio -> (B, 1, T) enhanced audio aligned with it."""
        if x.ndim != 3 or x.shape[1] != 1:
            raise ParameterError(f"the enhancer takes (batch, 1, time) audio, not {tuple(x.shape)}")
        m, d, t = self.n_bands, self.delay_samples, x.shape[-1]
        n_hops = -(-(t + d) // m)  # every input sample, and the delay, come out
        padded = F.pad(x, (self.n_filter - m, n_hops * m - t))
        correction = self.synthesis(self._generate(self.analysis(padded)))
        # band sample j's response starts M - 1 samples after hop j's first: see the module docstring
        correction = F.pad(correction, (m - 1, 0))[..., : n_hops * m]
        dry = F.pad(x, (d, n_hops * m - t - d))
        return (dry + correction)[..., d : d + t]

    def stream(self, x: torch.Tensor, state: object) -> tuple[torch.Tensor, object]:
        """Chunk of (B, 1, samples) -> the enhanced samples completed so far, `delay_samples` behind.

        State: (input history for the analysis and pending samples short of a hop, dry-path delay line,
        synthesis overlap not yet emitted, generator state).
        """
        m, d = self.n_bands, self.delay_samples
        history = self.n_filter - m
        if state is None:
            buffer = x.new_zeros(x.shape[0], 1, history)
            delay_line = x.new_zeros(x.shape[0], 1, d)
            overlap = x.new_zeros(x.shape[0], 1, self.n_filter - 1)
            generator_state = None
        else:
            buffer, delay_line, overlap, generator_state = state
        buffer = torch.cat([buffer, x], dim=-1)
        n_hops = (buffer.shape[-1] - history) // m
        if n_hops <= 0:
            return x.new_zeros(x.shape[0], 1, 0), (buffer, delay_line, overlap, generator_state)
        emitted = n_hops * m
        bands, generator_state = self._generate(self.analysis(buffer[..., : history + emitted]),
                                                generator_state, streaming=True)
        correction = F.pad(self.synthesis(bands), (m - 1, 0))
        correction[..., : overlap.shape[-1]] += overlap
        new_input = buffer[..., history : history + emitted]
        dry = torch.cat([delay_line, new_input], dim=-1)
        out = dry[..., :emitted] + correction[..., :emitted]
        return out, (buffer[..., emitted:], dry[..., emitted:], correction[..., emitted:], generator_state)
