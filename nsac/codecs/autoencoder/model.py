"""The SoundStream-style autoencoder: causal strided conv encoder, residual VQ, mirror transposed-conv decoder.

    audio (B, 1, T) -> conv 7 -> [residual units (dilations 1, 3, 9) -> ELU -> conv /s]  for s in strides
                    -> ELU -> conv 3 -> latents (B, D, T / hop)          hop = prod(strides), 320 = 20 ms
                    -> residual VQ (n_q of N codebooks of K entries; quantiser dropout in training)
                    -> conv 7 -> [ELU -> transposed conv x s -> residual units]  for s in reversed strides
                    -> ELU -> conv 7 -> audio (B, 1, T)

Every layer is causal and streams (nsac.nn), so the codec runs frame by frame. Timing: latent frame j sees
input samples up to j * hop; decoding frame j writes output samples [j * hop, (j + 1) * hop). Output sample
n may therefore only reconstruct input sample n - (hop - 1): the model delays by ``delay_samples = hop - 1``
(19.94 ms at 16 kHz with hop 320). The whole-signal `forward` takes that delay out (it codes ``delay``
zeros after the signal and drops the first ``delay`` output samples), so its output is aligned with its
input for the losses; the streaming calls return the delayed signal, as a codec's stream decoder does.

References: Zeghidour et al., "SoundStream" (IEEE/ACM TASLP 2022); Defossez et al., "High Fidelity Neural
Audio Compression" (EnCodec, TMLR 2023). Layer sizes here are ours, chosen to train on a CPU.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from nsac.errors import ParameterError
from nsac.nn.conv import NORMS, CausalConv1d, CausalConvTranspose1d
from nsac.nn.residual import CausalResidualUnit
from nsac.nn.streaming import State, StreamingSequential
from nsac.quant.rvq import ResidualVectorQuantizer

#: kernel (samples) of the first and last convolutions and of the decoder's input convolution (frames)
EDGE_KERNEL = 7
#: kernel (frames) of the encoder's last convolution
LATENT_KERNEL = 3


@dataclass(frozen=True)
class AutoencoderConfig:
    """Hyperparameters of :class:`SoundStreamAutoencoder` (recipe section ``model``)."""

    channels: int = 12  # at the sample rate; doubled after each downsampling, up to max_channels
    max_channels: int = 192
    strides: tuple[int, ...] = (2, 4, 5, 8)  # hop = prod(strides) samples per latent frame
    dilations: tuple[int, ...] = (1, 3, 9)  # one residual unit per dilation at every scale
    residual_kernel: int = 7
    residual_hidden_ratio: float = 0.5  # hidden channels of a residual unit / its channels
    latent_dim: int = 64  # D, the dimension of a codebook entry
    n_codebooks: int = 24  # N: 24 x 10 bits x 50 frames/s = 12 kb/s at most
    codebook_size: int = 1024  # K
    ema_decay: float = 0.99
    usage_decay: float = 0.999
    dead_ratio: float = 0.1
    dropout_p: float = 0.5  # quantiser dropout: share of training items with fewer codebooks
    dropout_min_n_q: int = 1
    commitment_weight: float = 1.0
    eval_codebooks: int = 12  # codebooks the eval-mode forward (validation) uses: 6 kb/s
    norm: str = "weight"  # weight normalisation on every convolution

    def __post_init__(self) -> None:
        if not self.strides or any(int(s) < 1 for s in self.strides):
            raise ParameterError(f"model.strides={self.strides} must be positive integers")
        if not self.dilations or any(int(d) < 1 for d in self.dilations):
            raise ParameterError(f"model.dilations={self.dilations} must be positive integers")
        if self.channels < 1 or self.max_channels < self.channels or self.latent_dim < 1:
            raise ParameterError(f"model.channels={self.channels} must be >= 1 and <= max_channels="
                                 f"{self.max_channels}; latent_dim={self.latent_dim} >= 1")
        if not 0 < self.residual_hidden_ratio <= 4:
            raise ParameterError(f"model.residual_hidden_ratio={self.residual_hidden_ratio} must lie in (0, 4]")
        if not 1 <= self.eval_codebooks <= self.n_codebooks:
            raise ParameterError(f"model.eval_codebooks={self.eval_codebooks} must lie in 1..n_codebooks="
                                 f"{self.n_codebooks}")
        if self.commitment_weight < 0:
            raise ParameterError(f"model.commitment_weight={self.commitment_weight} must be >= 0")
        if self.norm not in NORMS:
            raise ParameterError(f"model.norm={self.norm!r}; use one of {', '.join(NORMS)}")

    @property
    def hop_samples(self) -> int:
        return math.prod(int(s) for s in self.strides)

    def level_channels(self) -> list[int]:
        """Channels at each scale, from the sample rate down to the last downsampling's output."""
        return [min(self.channels * 2 ** i, self.max_channels) for i in range(len(self.strides) + 1)]


class SoundStreamAutoencoder(nn.Module):
    """Causal conv encoder, residual VQ and decoder; forward returns (audio, {"vq_commitment": loss})."""

    Config = AutoencoderConfig

    def __init__(self, config: AutoencoderConfig, *, sample_rate_hz: int) -> None:
        super().__init__()
        self.config, self.sample_rate_hz = config, int(sample_rate_hz)
        c = config.level_channels()
        norm = config.norm

        def units(channels: int) -> list[nn.Module]:
            hidden = max(1, round(channels * config.residual_hidden_ratio))
            return [CausalResidualUnit(channels, kernel_size=config.residual_kernel, dilation=d, hidden=hidden,
                                       norm=norm) for d in config.dilations]

        encoder: list[nn.Module] = [CausalConv1d(1, c[0], EDGE_KERNEL, norm=norm)]
        for i, s in enumerate(config.strides):
            encoder += [*units(c[i]), nn.ELU(), CausalConv1d(c[i], c[i + 1], 2 * s, stride=s, norm=norm)]
        encoder += [nn.ELU(), CausalConv1d(c[-1], config.latent_dim, LATENT_KERNEL, norm=norm)]
        self.encoder = StreamingSequential(*encoder)
        self.quantizer = ResidualVectorQuantizer(
            dim=config.latent_dim, n_codebooks=config.n_codebooks, codebook_size=config.codebook_size,
            decay=config.ema_decay, usage_decay=config.usage_decay, dead_ratio=config.dead_ratio,
            dropout_p=config.dropout_p, dropout_min_n_q=config.dropout_min_n_q)
        decoder: list[nn.Module] = [CausalConv1d(config.latent_dim, c[-1], EDGE_KERNEL, norm=norm)]
        for i in reversed(range(len(config.strides))):
            s = config.strides[i]
            decoder += [nn.ELU(), CausalConvTranspose1d(c[i + 1], c[i], 2 * s, stride=s, norm=norm), *units(c[i])]
        decoder += [nn.ELU(), CausalConv1d(c[0], 1, EDGE_KERNEL, norm=norm)]
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

    def _padded(self, x: torch.Tensor) -> torch.Tensor:
        """x with `delay_samples` zeros after it, then zeros to a whole number of hops."""
        if x.ndim != 3 or x.shape[1] != 1:
            raise ParameterError(f"audio of shape {tuple(x.shape)}; expected (batch, 1, samples)")
        n = x.shape[-1] + self.delay_samples
        return F.pad(x, (0, self.delay_samples + (-n) % self.hop_samples))

    # --- whole signal ---------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Audio (B, 1, T) -> (coded audio (B, 1, T) aligned with x, {"vq_commitment": weighted loss}).

        Training mode draws each item's number of codebooks (quantiser dropout); eval mode uses
        `config.eval_codebooks`.
        """
        latents = self.encoder(self._padded(x))
        n_q = None if self.training else self.config.eval_codebooks
        quantized, _, commitment = self.quantizer(latents, n_q)
        y = self.decoder(quantized)[..., self.delay_samples : self.delay_samples + x.shape[-1]]
        return y, {"vq_commitment": self.config.commitment_weight * commitment}

    @torch.no_grad()
    def encode(self, x: torch.Tensor, n_q: int) -> torch.Tensor:
        """Codes (B, n_q, frames) of audio (B, 1, T): frames = ceil((T + delay) / hop)."""
        return self.quantizer.encode(self.encoder(self._padded(x)), n_q)

    @torch.no_grad()
    def decode(self, codes: torch.Tensor, num_samples: int | None = None) -> torch.Tensor:
        """Audio (B, 1, num_samples) aligned with the input that `encode` coded (delay taken out)."""
        y = self.decoder(self.quantizer.decode(codes))[..., self.delay_samples :]
        return y if num_samples is None else y[..., :num_samples]

    # --- streaming ------------------------------------------------------------------------------------
    def stream_encode(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """Latents of the frames that audio chunk x (B, 1, whole hops) completes: (B, D, samples / hop)."""
        if x.shape[-1] % self.hop_samples:
            raise ParameterError(f"a streamed chunk of {x.shape[-1]} samples is not a whole number of "
                                 f"{self.hop_samples}-sample hops")
        return self.encoder.stream(x, state)

    def stream_decode(self, latents: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """Audio (B, 1, frames * hop) of latents (B, D, frames), delayed by `delay_samples`."""
        return self.decoder.stream(latents, state)
