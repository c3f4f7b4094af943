"""The causal STFT-domain enhancer: masks, a band-translated copy and a residual, frame by frame with a GRU.

Framing (N = frame_samples, H = hop_samples = N / 2, sqrt-Hann analysis and synthesis windows, which
overlap-add to one)::

    input      [N - H zeros][x0 x1 ...........................][zeros to a whole hop]
    frame f    |<------ N ------>|              starts at f * H, ends on input sample f * H + H - 1
    output     frame f's first H samples are complete once frame f is in: H - 1 samples after its first
               input sample -> the enhancer delays by N - H samples (10 ms for a 20 ms frame)

Per frame, with X the decoded spectrum (N / 2 + 1 bins) and S(X) X moved up by `shift_bins` (the classic
spectral translation of bandwidth extension: 0-4 kHz copied to 4-8 kHz, its phase advance per hop
unchanged because shift_bins * H / N is an integer)::

    features = (log(|X|^2 + floor) + offset) / scale       (bins,)
    net      = conv(k=3) -> ELU -> GRU blocks -> 1x1 -> ELU -> 1x1   over frames, causal
    Y        = (1 + a) X + b S(X) + c mean|X|              a, b, c complex per bin, from net

With ``excitation: noise`` S(X) is instead mean|X| times unit-magnitude phases from a seeded table (one row
per frame, zero below `shift_bins`): the regenerated band then carries no pitch structure of the coded band,
and its envelope is the network's gain b alone (a noise-excited bandwidth extension).

The last layer starts at zero, so an untrained model returns the decoded signal (delayed). Whole-signal
`forward` returns the output aligned with its input (the delay taken out, as a codec's decode does);
`stream` returns it delayed by `delay_samples`, chunk by chunk, with the same samples.

Reference: the causal, low-delay post-filter setting of Korse et al., "PostGAN" (2022); the supervised
spectral enhancer of Zhao, Liu & Fingscheidt (2019) for codec post-processing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from nsac.errors import ParameterError
from nsac.nn.conv import CausalConv1d
from nsac.nn.gru import GRUBlock
from nsac.nn.streaming import StreamingSequential

#: floor under the power spectrum in the log features (about -80 dB below full scale)
POWER_FLOOR = 1e-8
#: the log-power features are brought near zero mean and unit spread for speech at about -26 LUFS
FEATURE_OFFSET = 10.0
FEATURE_SCALE = 4.0
#: complex outputs per bin: the mask a, the translated copy's gain b, the residual c (two reals each)
_OUTPUTS_PER_BIN = 6
#: the sources of the regenerated band (StftEnhancerConfig.excitation)
EXCITATIONS = ("shift", "rectify", "noise")
#: frames in the seeded table of noise phases of the "noise" excitation (5 s at a 10 ms hop, then it repeats)
NOISE_TABLE_FRAMES = 500
NOISE_SEED = 20240101
#: kernel (frames) of the first convolution over time
_INPUT_KERNEL_FRAMES = 3


@dataclass(frozen=True)
class StftEnhancerConfig:
    frame_samples: int = 320  # N: 20 ms at 16 kHz
    channels: int = 256
    gru_layers: int = 2
    shift_bins: int = 80  # S: 4 kHz at 16 kHz with N = 320
    #: what the regenerated band is made from: "shift" (S(X), the spectrum moved up by shift_bins) or
    #: "rectify" (the spectrum of the rectified frame |x|, whose harmonics of the pitch reach above the
    #: coded band: the classic non-linear excitation of bandwidth extension) or "noise" (unit-magnitude
    #: seeded random phases from shift_bins up, at the frame's mean level: no pitch structure carried into
    #: the regenerated band, whose shape is then the network's gain alone)
    excitation: str = "shift"
    #: gain on the bins from S up, applied in eval mode only: a calibration chosen on validation data,
    #: since PESQ and ViSQOL punish a regenerated band that is too loud more than one that is too quiet
    high_band_gain_db: float = 0.0

    def __post_init__(self) -> None:
        if self.frame_samples < 4 or self.frame_samples % 4:
            raise ParameterError(f"model.frame_samples={self.frame_samples} must be a multiple of 4")
        if self.channels < 1 or self.gru_layers < 0:
            raise ParameterError(f"model.channels={self.channels} must be >= 1 and "
                                 f"model.gru_layers={self.gru_layers} >= 0")
        bins = self.frame_samples // 2 + 1
        if self.excitation not in EXCITATIONS:
            raise ParameterError(f"model.excitation={self.excitation!r} must be one of {', '.join(EXCITATIONS)}")
        if not 0 <= self.shift_bins < bins or self.shift_bins % 2:
            raise ParameterError(f"model.shift_bins={self.shift_bins} must be even and below {bins}")


class StftEnhancer(nn.Module):
    """Causal enhancer of a decoded signal: see the module docstring. (B, 1, T) -> (B, 1, T)."""

    Config = StftEnhancerConfig

    def __init__(self, config: StftEnhancerConfig, *, sample_rate_hz: int) -> None:
        super().__init__()
        self.config = config
        self.sample_rate_hz = sample_rate_hz
        self.frame_samples = config.frame_samples
        self.hop_samples = config.frame_samples // 2
        self.bins = config.frame_samples // 2 + 1
        c = config.channels
        last = CausalConv1d(c, _OUTPUTS_PER_BIN * self.bins, 1)
        nn.init.zeros_(last.conv.weight)
        nn.init.zeros_(last.conv.bias)
        self.net = StreamingSequential(
            CausalConv1d(self.bins, c, _INPUT_KERNEL_FRAMES), nn.ELU(),
            *[GRUBlock(c) for _ in range(config.gru_layers)],
            CausalConv1d(c, c, 1), nn.ELU(), last)
        window = torch.hann_window(config.frame_samples, periodic=True).sqrt()
        self.register_buffer("window", window, persistent=False)
        band_gain = torch.ones(self.bins)
        band_gain[config.shift_bins :] = 10 ** (config.high_band_gain_db / 20)
        self.register_buffer("band_gain", band_gain, persistent=False)
        # the "noise" excitation: the same phases in every process (a fixed seed), zero in the coded band
        phase = torch.rand(NOISE_TABLE_FRAMES, self.bins, generator=torch.Generator().manual_seed(NOISE_SEED))
        noise = torch.polar(torch.ones_like(phase), 2 * math.pi * phase)
        noise[:, : config.shift_bins] = 0
        self.register_buffer("noise_table", noise, persistent=False)

    @property
    def delay_samples(self) -> int:
        """What `stream` adds: the frame length less one hop."""
        return self.frame_samples - self.hop_samples

    def uncounted_macs(self, n_samples: int) -> float:
        """MACs that torch's flop counter does not see: a real FFT and its inverse per frame, each about
        N log2 N real multiply-adds (the complex gains and windows, a few per bin, are left out too)."""
        n_frames = -(-(n_samples + self.delay_samples) // self.hop_samples)
        return float(n_frames * 2 * self.frame_samples * math.log2(self.frame_samples))

    # --- per-frame spectral processing ------------------------------------------------------------------
    def _enhance_frames(self, frames: torch.Tensor, state: object = None, *, streaming: bool = False,
                        first_frame: int = 0) -> tuple[torch.Tensor, object]:
        """(B, F, N) input frames, the first one the signal's frame `first_frame` -> (B, F, N) windowed
        output frames, and the network's state."""
        spec = torch.fft.rfft(frames * self.window, dim=-1)  # (B, F, K)
        power = spec.real**2 + spec.imag**2
        features = ((torch.log(power + POWER_FLOOR) + FEATURE_OFFSET) / FEATURE_SCALE).transpose(1, 2)
        if streaming:
            out, state = self.net.stream(features, state)
        else:
            out = self.net(features)
        out = out.transpose(1, 2).reshape(*spec.shape[:2], 3, 2, self.bins)  # (B, F, 3, re/im, K)
        gains = torch.complex(out[..., 0, :], out[..., 1, :])  # (B, F, 3, K)
        level = torch.sqrt(power + POWER_FLOOR).mean(dim=-1, keepdim=True)
        if self.config.excitation == "rectify":
            shifted = torch.fft.rfft(frames.abs() * self.window, dim=-1)
        elif self.config.excitation == "noise":
            rows = torch.arange(first_frame, first_frame + frames.shape[1], device=frames.device)
            shifted = level * self.noise_table[rows % NOISE_TABLE_FRAMES]
        else:
            shifted = F.pad(spec, (self.config.shift_bins, 0))[..., : self.bins]
        y = (1 + gains[:, :, 0]) * spec + gains[:, :, 1] * shifted + gains[:, :, 2] * level
        if not self.training and self.config.high_band_gain_db:
            y = y * self.band_gain
        return torch.fft.irfft(y, n=self.frame_samples, dim=-1) * self.window, state

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, T) decoded audio -> (B, 1, T) enhanced audio aligned with it."""
        if x.ndim != 3 or x.shape[1] != 1:
            raise ParameterError(f"the enhancer takes (batch, 1, time) audio, not {tuple(x.shape)}")
        n, h, t = self.frame_samples, self.hop_samples, x.shape[-1]
        n_frames = -(-(t + self.delay_samples) // h)  # every input sample, and the delay, come out
        padded = F.pad(x[:, 0], (n - h, n_frames * h - t))
        frames = padded.unfold(-1, n, h)  # (B, F, N)
        y, _ = self._enhance_frames(frames)
        out = F.fold(y.transpose(1, 2), output_size=(1, (n_frames - 1) * h + n), kernel_size=(1, n),
                     stride=(1, h))[:, 0, 0]  # overlap-add
        return out[:, None, n - h : n - h + t]  # padded sample n - h is input sample 0

    def stream(self, x: torch.Tensor, state: object) -> tuple[torch.Tensor, object]:
        """Chunk of (B, 1, samples) -> the enhanced samples completed so far, `delay_samples` behind."""
        n, h = self.frame_samples, self.hop_samples
        if state is None:
            pending = x.new_zeros(x.shape[0], n - h)
            tail = x.new_zeros(x.shape[0], n - h)
            net_state, frames_done = None, 0
        else:
            pending, tail, net_state, frames_done = state
        buffer = torch.cat([pending, x[:, 0]], dim=-1)
        n_frames = (buffer.shape[-1] - (n - h)) // h
        if n_frames <= 0:
            return x.new_zeros(x.shape[0], 1, 0), (buffer, tail, net_state, frames_done)
        frames = buffer[:, : (n_frames - 1) * h + n].unfold(-1, n, h)
        y, net_state = self._enhance_frames(frames, net_state, streaming=True, first_frame=frames_done)
        out = F.fold(y.transpose(1, 2), output_size=(1, (n_frames - 1) * h + n), kernel_size=(1, n),
                     stride=(1, h))[:, 0, 0]
        out = torch.cat([out[:, : n - h] + tail, out[:, n - h :]], dim=-1)
        emitted = n_frames * h
        state = (buffer[:, emitted:], out[:, emitted:], net_state, frames_done + n_frames)
        return out[:, None, :emitted], state
