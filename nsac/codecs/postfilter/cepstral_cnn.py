"""The cepstral-domain CNN enhancer: a causal CNN over frames corrects each frame's real cepstrum.

After the cepstral-domain post-processor of Zhao, Liu & Fingscheidt, "Convolutional neural networks to
enhance coded speech" (IEEE/ACM TASLP 27(4), 2019): analysis-synthesis, the CNN enhancing cepstral features
of the decoded speech while its phase is kept. Framing as the STFT enhancer (`model`), N = frame_samples,
H = N / 2, sqrt-Hann windows that overlap-add to one::

    input      [N - H zeros][x0 x1 ...........................][zeros to a whole hop]
    frame f    |<------ N ------>|              starts at f * H, ends on input sample f * H + H - 1
    output     frame f's first H samples are complete once frame f is in -> delay N - H (10 ms at N = 320)

Per frame, with X the decoded spectrum (K = N / 2 + 1 bins)::

    c      = irfft(log |X|)[:K]                       the real cepstrum (even: K quefrencies say it all)
    dc     = CNN(features of c over past frames)      (K,) causal over frames: conv k=3, dilated residual
                                                      units, 1x1 (the last one starts at zero)
    dlog   = hfft(dc)[:K] / sqrt(N)                   back to a log-magnitude change per bin (orthonormal)
    Y      = X exp(g tanh(dlog / g))                  |Y| = enhanced magnitude, phase of X; g limits the
                                                      change to +-max_gain_db
    y      = overlap-add of irfft(Y) windowed

An untrained model (dc = 0) gives Y = X: the decoded signal, delayed. As a gain on the decoded spectrum it
reshapes what the codec kept (envelope, harmonic structure, noise between harmonics) but cannot create a
band the codec removed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from nsac.errors import ParameterError
from nsac.nn.conv import CausalConv1d
from nsac.nn.residual import CausalResidualUnit
from nsac.nn.streaming import State, StreamingSequential

#: floor under the power spectrum in the log magnitude (about -80 dB below full scale)
POWER_FLOOR = 1e-8
#: the cepstrum's zeroth coefficient (mean log magnitude) is about -4 +- 1 for speech at about -26 LUFS; the
#: others spread by 0.03 (high quefrencies) to 0.4 (the first): the features bring both near unit spread
_LEVEL_OFFSET = 4.0
_QUEFRENCY_SCALE = 10.0
#: kernel (frames) of the first convolution and of the residual units' dilated convolutions
_KERNEL_FRAMES = 3
#: FFTs per frame: analysis, to the cepstrum, back to the log spectrum, synthesis
_FFTS_PER_FRAME = 4
_DB_PER_NEPER = 20.0 / math.log(10.0)


@dataclass(frozen=True)
class CepstralCnnConfig:
    frame_samples: int = 320  # N: 20 ms at 16 kHz
    channels: int = 128
    #: dilations (frames) of the residual units: 1..16 see 63 frames back (0.63 s at a 10 ms hop)
    dilations: tuple[int, ...] = (1, 2, 4, 8, 16)
    max_gain_db: float = 30.0  # the log-magnitude change per bin is limited to +-this, smoothly

    def __post_init__(self) -> None:
        if self.frame_samples < 4 or self.frame_samples % 4:
            raise ParameterError(f"model.frame_samples={self.frame_samples} must be a multiple of 4")
        if self.channels < 1 or any(d < 1 for d in self.dilations):
            raise ParameterError(f"model.channels={self.channels} and model.dilations={list(self.dilations)} "
                                 "must be positive integers")
        if self.max_gain_db <= 0:
            raise ParameterError(f"model.max_gain_db={self.max_gain_db} must be positive")


class CepstralCnnEnhancer(nn.Module):
    """Causal cepstral-domain enhancer: see the module docstring. (B, 1, T) -> (B, 1, T)."""

    Config = CepstralCnnConfig

    def __init__(self, config: CepstralCnnConfig, *, sample_rate_hz: int) -> None:
        super().__init__()
        self.config = config
        self.sample_rate_hz = sample_rate_hz
        self.frame_samples = config.frame_samples
        self.hop_samples = config.frame_samples // 2
        self.quefrencies = config.frame_samples // 2 + 1
        c, k = config.channels, self.quefrencies
        last = CausalConv1d(c, k, 1)
        nn.init.zeros_(last.conv.weight)
        nn.init.zeros_(last.conv.bias)
        self.net = StreamingSequential(
            CausalConv1d(k, c, _KERNEL_FRAMES),
            *[CausalResidualUnit(c, kernel_size=_KERNEL_FRAMES, dilation=d) for d in config.dilations],
            nn.ELU(), last)
        self.max_log_gain = config.max_gain_db / _DB_PER_NEPER
        window = torch.hann_window(config.frame_samples, periodic=True).sqrt()
        self.register_buffer("window", window, persistent=False)

    @property
    def delay_samples(self) -> int:
        """What `stream` adds: the frame length less one hop."""
        return self.frame_samples - self.hop_samples

    def uncounted_macs(self, n_samples: int) -> float:
        """MACs that torch's flop counter does not see: four real FFTs per frame of about N log2 N each."""
        n_frames = -(-(n_samples + self.delay_samples) // self.hop_samples)
        return float(n_frames * _FFTS_PER_FRAME * self.frame_samples * math.log2(self.frame_samples))

    def _enhance_frames(self, frames: torch.Tensor, state: State = None, *, streaming: bool = False
                        ) -> tuple[torch.Tensor, State]:
        """(B, F, N) input frames -> (B, F, N) windowed output frames, and the network's state."""
        n = self.frame_samples
        spec = torch.fft.rfft(frames * self.window, dim=-1)  # (B, F, K)
        log_magnitude = 0.5 * torch.log(spec.real**2 + spec.imag**2 + POWER_FLOOR)
        cepstrum = torch.fft.irfft(log_magnitude, n=n, dim=-1)[..., : self.quefrencies]
        features = torch.cat([cepstrum[..., :1] + _LEVEL_OFFSET, cepstrum[..., 1:] * _QUEFRENCY_SCALE], dim=-1)
        features = features.transpose(1, 2)  # (B, K, F): quefrencies are the channels
        if streaming:
            delta, state = self.net.stream(features, state)
        else:
            delta = self.net(features)
        # orthonormal scaling: a unit step of one output moves the log spectrum by about 1 / sqrt(N) per bin,
        # not by one per bin (the plain inverse of the cepstrum), which kept the training steps from blowing up
        delta_log = torch.fft.hfft(delta.transpose(1, 2), n=n, dim=-1, norm="ortho")[..., : self.quefrencies]
        gain = torch.exp(self.max_log_gain * torch.tanh(delta_log / self.max_log_gain))
        return torch.fft.irfft(spec * gain, n=n, dim=-1) * self.window, state

    def _overlap_add(self, y: torch.Tensor) -> torch.Tensor:
        """(B, F, N) windowed frames at hop H -> (B, (F - 1) H + N) samples."""
        n, h = self.frame_samples, self.hop_samples
        return F.fold(y.transpose(1, 2), output_size=(1, (y.shape[1] - 1) * h + n), kernel_size=(1, n),
                      stride=(1, h))[:, 0, 0]

    @staticmethod
    def _check(x: torch.Tensor) -> None:
        if x.ndim != 3 or x.shape[1] != 1:
            raise ParameterError(f"the enhancer takes (batch, 1, time) audio, not {tuple(x.shape)}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, T) decoded audio -> (B, 1, T) enhanced audio aligned with it."""
        self._check(x)
        n, h, t = self.frame_samples, self.hop_samples, x.shape[-1]
        n_frames = -(-(t + self.delay_samples) // h)  # every input sample, and the delay, come out
        padded = F.pad(x[:, 0], (n - h, n_frames * h - t))
        y, _ = self._enhance_frames(padded.unfold(-1, n, h))
        return self._overlap_add(y)[:, None, n - h : n - h + t]  # padded sample n - h is input sample 0

    def stream(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """Chunk of (B, 1, samples) -> the enhanced samples completed so far, `delay_samples` behind.

        State: (input not yet framed, the overlap-add tail, the network's state).
        """
        self._check(x)
        n, h = self.frame_samples, self.hop_samples
        if state is None:
            pending, tail, net_state = x.new_zeros(x.shape[0], n - h), x.new_zeros(x.shape[0], n - h), None
        else:
            pending, tail, net_state = state
        buffer = torch.cat([pending, x[:, 0]], dim=-1)
        n_frames = (buffer.shape[-1] - (n - h)) // h
        if n_frames <= 0:
            return x.new_zeros(x.shape[0], 1, 0), (buffer, tail, net_state)
        frames = buffer[:, : (n_frames - 1) * h + n].unfold(-1, n, h)
        y, net_state = self._enhance_frames(frames, net_state, streaming=True)
        out = self._overlap_add(y)
        out = torch.cat([out[:, : n - h] + tail, out[:, n - h :]], dim=-1)
        emitted = n_frames * h
        return out[:, None, :emitted], (buffer[:, emitted:], out[:, emitted:], net_state)
