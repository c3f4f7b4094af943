"""The soft-to-hard autoencoder (after Kankanahalli 2018): causal fully convolutional, scalar centres, rate.

    audio (B, 1, T) at 16 kHz
      -> conv 9 -> [ELU -> conv /s -> residual units (dilations 1, 3)]  for s in strides (2, 2, 4)
      -> ELU -> conv 3 -> latents (B, C, T / hop)                       hop = 16 samples: 1000 frames/s
      -> soft-to-hard scalar quantiser, L = 32 learnable centres (nsac.quant.soft_to_hard)
      -> conv 7 -> [residual units -> ELU -> sub-pixel conv x s]  for s in reversed strides
      -> ELU -> conv 9 -> audio (B, 1, T)

C = 8 latent channels give 8000 codes per second: 40 kb/s as fixed-length 5-bit codes, and what the entropy
penalty lets through (target 16 kb/s, about 2 bits per code) once range-coded with the learned code
frequencies. Kankanahalli coded 32 ms windows of 16 kHz speech with residual blocks, sub-pixel upsampling and
soft-to-hard quantisation with an entropy penalty; here the same ingredients are causal and stream instead of
coding overlapping windows: the encoder's receptive field (`receptive_field_samples`, 606 samples = 38 ms
with the defaults) plays the part of the window. Layer sizes are ours, chosen for a 2-core CPU.

Timing (as the SoundStream-style model in nsac.codecs.autoencoder): latent frame j sees input samples up to
j * hop, and decoding it writes output samples j * hop .. (j + 1) * hop - 1, so the streamed output lags by
``delay_samples = hop - 1`` (15 samples, 0.94 ms). The whole-signal `forward` codes ``delay`` zeros after the
signal and drops the first ``delay`` output samples, so its output is aligned with its input for the losses.

The forward pass returns ``(audio, {"rate": penalty})``: the estimated bit rate (soft histogram entropy x
frame rate) above ``target_bps``, relative to it, times ``rate_weight``; below the target it costs nothing,
so the model spends up to the target and no more. The trainer adds the term to the loss and logs it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nsac.errors import ParameterError
from nsac.nn.conv import NORMS, CausalConv1d
from nsac.nn.residual import CausalResidualUnit
from nsac.nn.streaming import State, StreamingSequential
from nsac.nn.subpixel import SubpixelUpsample1d
from nsac.quant.soft_to_hard import SoftToHardQuantizer, histogram_entropy_bits

#: kernel (frames) of the encoder's last convolution
LATENT_KERNEL = 3
#: kernel (frames) of the decoder's first convolution
DECODER_INPUT_KERNEL = 7


@dataclass(frozen=True)
class S2HAutoencoderConfig:
    """Hyperparameters of :class:`S2HAutoencoder` (recipe section ``model``)."""

    channels: tuple[int, ...] = (16, 32, 48, 64)  # at the sample rate, then after each downsampling
    strides: tuple[int, ...] = (2, 2, 4)  # hop = prod(strides) samples per latent frame
    dilations: tuple[int, ...] = (1, 3)  # one residual unit per dilation after every downsampling
    residual_kernel: int = 7
    residual_hidden_ratio: float = 0.5  # hidden channels of a residual unit / its channels
    edge_kernel: int = 9  # samples, first and last convolution
    upsample_kernel: int = 3  # frames, the sub-pixel convolutions
    latent_channels: int = 8  # C codes per latent frame
    n_centres: int = 32  # L, a power of two (fixed-length fallback packets spend log2 L bits per code)
    centre_range: float = 2.0
    temperature_start: float = 2.0  # softmax temperature in centre spacings
    temperature_end: float = 0.5  # lower starves the encoder of gradient (quantiser docstring)
    anneal_steps: int = 2000  # training steps to temperature_end; hard (straight-through) after
    counts_decay: float = 0.999  # EMA of the code counts the entropy-coding tables come from
    target_bps: float = 16000.0  # the rate penalty acts above this estimated bit rate
    rate_weight: float = 1.0
    norm: str = "weight"

    def __post_init__(self) -> None:
        if not self.strides or any(int(s) < 1 for s in self.strides):
            raise ParameterError(f"model.strides={self.strides} must be positive integers")
        if len(self.channels) != len(self.strides) + 1 or any(int(c) < 1 for c in self.channels):
            raise ParameterError(f"model.channels={self.channels} must give len(strides) + 1 = "
                                 f"{len(self.strides) + 1} positive channel counts")
        if any(int(d) < 1 for d in self.dilations):
            raise ParameterError(f"model.dilations={self.dilations} must be positive integers")
        if self.latent_channels < 1 or min(self.residual_kernel, self.edge_kernel, self.upsample_kernel) < 1:
            raise ParameterError(f"model.latent_channels={self.latent_channels} and the kernels must be >= 1")
        if not 0 < self.residual_hidden_ratio <= 4:
            raise ParameterError(f"model.residual_hidden_ratio={self.residual_hidden_ratio} must lie in "
                                 "(0, 4]")
        if self.n_centres < 2 or self.n_centres & (self.n_centres - 1):
            raise ParameterError(f"model.n_centres={self.n_centres} must be a power of two >= 2 "
                                 "(fixed-length packets spend log2 n_centres bits per code)")
        if self.target_bps <= 0 or self.rate_weight < 0:
            raise ParameterError(f"model.target_bps={self.target_bps} must be > 0 and rate_weight="
                                 f"{self.rate_weight} >= 0")
        if self.norm not in NORMS:
            raise ParameterError(f"model.norm={self.norm!r}; use one of {', '.join(NORMS)}")

    @property
    def hop_samples(self) -> int:
        return math.prod(int(s) for s in self.strides)


class S2HAutoencoder(nn.Module):
    """Causal conv encoder, soft-to-hard quantiser, sub-pixel decoder; forward -> (audio, {"rate": ...})."""

    Config = S2HAutoencoderConfig

    def __init__(self, config: S2HAutoencoderConfig, *, sample_rate_hz: int) -> None:
        super().__init__()
        self.config, self.sample_rate_hz = config, int(sample_rate_hz)
        c, norm = [int(v) for v in config.channels], config.norm

        def units(channels: int) -> list[nn.Module]:
            hidden = max(1, round(channels * config.residual_hidden_ratio))
            return [CausalResidualUnit(channels, kernel_size=config.residual_kernel, dilation=d,
                                       hidden=hidden, norm=norm) for d in config.dilations]

        encoder: list[nn.Module] = [CausalConv1d(1, c[0], config.edge_kernel, norm=norm)]
        for i, s in enumerate(config.strides):
            encoder += [nn.ELU(), CausalConv1d(c[i], c[i + 1], 2 * s, stride=s, norm=norm), *units(c[i + 1])]
        encoder += [nn.ELU(), CausalConv1d(c[-1], config.latent_channels, LATENT_KERNEL, norm=norm)]
        self.encoder = StreamingSequential(*encoder)
        self.quantizer = SoftToHardQuantizer(
            channels=config.latent_channels, n_centres=config.n_centres, centre_range=config.centre_range,
            temperature_start=config.temperature_start, temperature_end=config.temperature_end,
            anneal_steps=config.anneal_steps, counts_decay=config.counts_decay)
        decoder: list[nn.Module] = [
            CausalConv1d(config.latent_channels, c[-1], DECODER_INPUT_KERNEL, norm=norm)]
        for i in reversed(range(len(config.strides))):
            decoder += [*units(c[i + 1]), nn.ELU(),
                        SubpixelUpsample1d(c[i + 1], c[i], config.strides[i],
                                           kernel_size=config.upsample_kernel, norm=norm)]
        decoder += [nn.ELU(), CausalConv1d(c[0], 1, config.edge_kernel, norm=norm)]
        self.decoder = StreamingSequential(*decoder)

    # --- framing -------------------------------------------------------------------------------------
    @property
    def hop_samples(self) -> int:
        return self.config.hop_samples

    @property
    def delay_samples(self) -> int:
        """Samples by which the streamed output lags the input (see the module docstring)."""
        return self.hop_samples - 1

    @property
    def frame_rate_hz(self) -> float:
        return self.sample_rate_hz / self.hop_samples

    @property
    def receptive_field_samples(self) -> int:
        """Input samples that one latent frame depends on (the encoder's causal window)."""
        span, step = 1, 1  # in input samples: the window of one output frame, and one frame's step
        for layer in self.encoder.modules():
            if isinstance(layer, CausalConv1d):
                span += (layer.receptive_field - 1) * step
                step *= layer.stride
        return span

    @property
    def fixed_length_bps(self) -> float:
        """The bit rate of fixed-length codes: C codes of log2 L bits per frame."""
        return self.config.latent_channels * self.quantizer.bits_per_code * self.frame_rate_hz

    def expected_bps(self) -> float | None:
        """The bit rate ideal range coding reaches on codes distributed like the frozen frequencies."""
        bits = self.quantizer.expected_bits_per_code()
        return None if bits is None else float(np.sum(bits) * self.frame_rate_hz)

    def _padded(self, x: torch.Tensor) -> torch.Tensor:
        """x with `delay_samples` zeros after it, then zeros to a whole number of hops."""
        if x.ndim != 3 or x.shape[1] != 1:
            raise ParameterError(f"audio of shape {tuple(x.shape)}; expected (batch, 1, samples)")
        n = x.shape[-1] + self.delay_samples
        return F.pad(x, (0, self.delay_samples + (-n) % self.hop_samples))

    # --- whole signal ---------------------------------------------------------------------------------
    def estimated_bps(self, histogram: torch.Tensor) -> torch.Tensor:
        """Bit rate of the soft assignment histogram (channels, L): sum of channel entropies x frame rate."""
        return histogram_entropy_bits(histogram).sum() * self.frame_rate_hz

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Audio (B, 1, T) -> (coded audio (B, 1, T) aligned with x, {"rate": weighted rate penalty})."""
        latents = self.encoder(self._padded(x))
        quantised, histogram = self.quantizer(latents)
        y = self.decoder(quantised)[..., self.delay_samples : self.delay_samples + x.shape[-1]]
        excess = F.relu(self.estimated_bps(histogram) / self.config.target_bps - 1.0)
        return y, {"rate": self.config.rate_weight * excess}

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Codes (B, C, frames) of audio (B, 1, T): frames = ceil((T + delay) / hop)."""
        return self.quantizer.encode(self.encoder(self._padded(x)))

    @torch.no_grad()
    def decode(self, codes: torch.Tensor, num_samples: int | None = None) -> torch.Tensor:
        """Audio (B, 1, num_samples) aligned with the input that `encode` coded (delay taken out)."""
        y = self.decoder(self.quantizer.decode(codes))[..., self.delay_samples :]
        return y if num_samples is None else y[..., :num_samples]

    @torch.no_grad()
    def count_codes(self, x: torch.Tensor) -> torch.Tensor:
        """How often each code occurs in the codes of audio (B, 1, T): (C, L) float64."""
        codes = self.encode(x)
        return F.one_hot(codes, self.config.n_centres).sum(dim=(0, 2)).to(torch.float64)

    # --- streaming ------------------------------------------------------------------------------------
    def stream_encode(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """Latents of the frames that audio chunk x (B, 1, whole hops) completes: (B, C, samples / hop)."""
        if x.shape[-1] % self.hop_samples:
            raise ParameterError(f"a streamed chunk of {x.shape[-1]} samples is not a whole number of "
                                 f"{self.hop_samples}-sample hops")
        return self.encoder.stream(x, state)

    def stream_decode(self, latents: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """Audio (B, 1, frames * hop) of latents (B, C, frames), delayed by `delay_samples`."""
        return self.decoder.stream(latents, state)
