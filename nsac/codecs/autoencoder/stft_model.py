"""The autoencoder with frame-rate layers and an inverse-STFT output: the same codec, far cheaper to train.

    audio (B, 1, T) -> log magnitudes of a causal STFT (window N, hop H; or a learned filterbank) -> 1x1
                    -> C channels at fs / H -> residual units -> ELU -> conv /s ... -> latents (B, D, T / hop)
                    -> residual VQ (as in model.py: quantiser dropout, EMA codebooks)      hop = H * prod(s)
                    -> conv 7 -> [ELU -> transposed conv x s -> residual units] ... at fs / H
                    -> ELU -> 1x1 -> log-magnitudes of N/2 + 1 bins per frame (and, by head: voicing and
                       pitch, phases, or phase advances)
                    -> inverse real FFT, Hann window, overlap-add with hop H -> audio (B, 1, T)

Why: the waveform model (model.py) spends its early layers at the sample rate with a dozen channels, which
runs memory-bound on a CPU and learns phase slowly through four transposed convolutions. Here every learned
layer runs at the STFT frame rate (200 frames/s with H = 80 at 16 kHz) with a hundred or more channels, and
the waveform comes out of a fixed inverse STFT whose phase the network sets per bin, as in Vocos (Siuzdak,
ICLR 2024). Two signal-processing choices do most of the work (measured in the README):
- the encoder starts from log STFT magnitudes (`analysis: log_spectrum`), where envelope and harmonics are
  explicit; at step 800 of the ablation recipe the train mel loss was 0.447 from the waveform through a
  learned filterbank and 0.337 from log magnitudes (the command is in the README);
- the network sets a magnitude envelope, a voicing per bin and the pitch (`phase: harmonic`,
  HarmonicStftHead): voiced bins rotate with the nearest harmonic of the pitch, the rest with noise phases.
  With the true envelope, pitch and voicing of speech this resynthesises at DNSMOS 2.93-3.02 wherever the
  codec's delay puts the frame grid (scripts/stft_phase_oracle.py).
  The rule of the first shipped weights (`phase: centre`: every bin advances at its centre frequency's rate)
  makes every output a sum of multiples of fs / N = 50 Hz with phases fixed to the output's sample grid, a
  20 ms periodicity that speech does not have; with true magnitudes its DNSMOS swings from 2.06 to 3.04 as
  the grid moves by 40 samples against the speech. Learned phases (`absolute`) and learned advances
  (`advance`) are options too; in CPU-length training neither became coherent (InverseStftHead).
The quantiser, packets and codec are shared with the waveform model.

Timing (H = 80, N = 320, hop = 320 at 16 kHz): latent frame k sees input samples up to 320 k; STFT frame j
is decoded from latent frames <= j // 4 and overlap-added into output samples [H j, H j + N), which are
final once frame j + N / H - 1 has been added. The output therefore lags the input by
``delay_samples = hop - 1 + N - H`` (559 samples = 34.9 ms); `forward` takes it out as model.py does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from nsac.codecs.autoencoder.model import AutoencoderConfig, SoundStreamAutoencoder
from nsac.errors import ParameterError
from nsac.nn.conv import CausalConv1d, CausalConvTranspose1d
from nsac.nn.residual import CausalResidualUnit
from nsac.nn.streaming import StreamingSequential
from nsac.quant.pitch import PitchQuantizer
from nsac.quant.rvq import ResidualVectorQuantizer

#: kernel (frames) of the encoder's last and the decoder's first convolution
LATENT_KERNEL = 3
DECODER_IN_KERNEL = 7
#: log-magnitudes are clamped here before exp: keeps an untrained head from overflowing
LOG_MAGNITUDE_MAX = 8.0
#: what the head's phase outputs mean (InverseStftHead)
PHASE_MODES = ("absolute", "advance", "centre", "harmonic")
#: the encoder's first layer: a learned filterbank on the waveform, or log magnitudes of a fixed STFT
ANALYSES = ("learned", "log_spectrum")
#: the pitch range of the "harmonic" head (the decoder predicts f0 between these)
F0_MIN_HZ = 62.5
F0_MAX_HZ = 500.0
#: the "harmonic" head rounds its pitch to this many steps per octave (1200: cents) before the phases
PITCH_STEPS_PER_OCTAVE = 1200
#: frames whose pitch periodicity (nsac.dsp.pitch_torch) reaches this train the decoder's pitch output and
#: are voiced for the voicing loss; frames below UNVOICED_PERIODICITY are unvoiced; between, no voicing loss
VOICED_PERIODICITY = 0.7
UNVOICED_PERIODICITY = 0.4
#: the voicing loss covers the bins up to this frequency (above it the spectral losses alone set voicing)
VOICING_MAX_HZ = 4000.0
#: the "harmonic" head's noise phases: a fixed random table of this many frames, repeated, and its seed
NOISE_PHASE_FRAMES = 1024
NOISE_PHASE_SEED = 20240
#: LogSpectrum adds this to magnitudes before the log (about -100 dB re a full-scale sine's bin)
LOG_SPECTRUM_FLOOR = 1e-5


@dataclass(frozen=True)
class StftAutoencoderConfig(AutoencoderConfig):
    """Hyperparameters of :class:`StftAutoencoder` (recipe section ``model``): the waveform model's, with
    its checks, plus the STFT framing and the head; `strides` count STFT frames, not samples."""

    channels: int = 128  # at the STFT frame rate; doubled after each downsampling, up to max_channels
    max_channels: int = 256
    strides: tuple[int, ...] = (4,)  # STFT frames per latent frame = prod(strides)
    residual_kernel: int = 5
    n_fft: int = 320  # N: analysis and synthesis window, samples
    stft_hop: int = 80  # H: samples per STFT frame
    # "advance": the head sets phase advances; "centre": magnitudes only (InverseStftHead); "harmonic":
    # magnitudes, voicing and pitch (HarmonicStftHead)
    phase: str = "absolute"
    f0_weight: float = 1.0  # "harmonic": weight of the pitch loss (mean |log2 ratio| over voiced frames)
    voicing_weight: float = 1.0  # "harmonic": weight of the voicing loss (cross-entropy up to VOICING_MAX_HZ)
    # "harmonic": bits of pitch the encoder sends per latent frame (nsac.quant.pitch; 0: the decoder predicts
    # the pitch from the codes alone)
    pitch_bits: int = 0
    analysis: str = "learned"  # "log_spectrum": the encoder starts from log STFT magnitudes (LogSpectrum)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.n_fft < 2 or self.stft_hop < 1 or self.n_fft % self.stft_hop:
            raise ParameterError(f"model.n_fft={self.n_fft} must be a multiple of model.stft_hop="
                                 f"{self.stft_hop} (the Hann windows then overlap-add to a constant)")
        if self.n_fft // self.stft_hop < 2:
            raise ParameterError(f"model.n_fft={self.n_fft} must be at least twice stft_hop={self.stft_hop}")
        if self.phase not in PHASE_MODES:
            raise ParameterError(f"model.phase={self.phase!r}; use one of {', '.join(PHASE_MODES)}")
        if self.f0_weight < 0 or self.voicing_weight < 0:
            raise ParameterError(f"model.f0_weight={self.f0_weight} and voicing_weight={self.voicing_weight} "
                                 "must be >= 0")
        if self.pitch_bits and (self.phase != "harmonic" or not 1 <= self.pitch_bits <= 16):
            raise ParameterError(f"model.pitch_bits={self.pitch_bits}: 1..16 bits with phase 'harmonic', "
                                 "or 0")
        if self.analysis not in ANALYSES:
            raise ParameterError(f"model.analysis={self.analysis!r}; use one of {', '.join(ANALYSES)}")

    @property
    def hop_samples(self) -> int:
        return self.stft_hop * super().hop_samples


class OverlapAdd(nn.Module):
    """Frames (B, N, T) -> signal (B, 1, T * H): frame j added at samples [H j, H j + N); causal, streams.

    The whole-signal call keeps the first T * H samples (the rest still waits for later frames); the
    streaming call holds those N - H samples as its state and adds them to the next chunk.
    """

    def __init__(self, frame_samples: int, hop_samples: int) -> None:
        super().__init__()
        self.frame_samples, self.hop_samples = frame_samples, hop_samples
        self.overlap = frame_samples - hop_samples

    def _full(self, frames: torch.Tensor) -> torch.Tensor:
        """All (T - 1) * H + N samples of the overlap-add."""
        n_frames = frames.shape[-1]
        length = (n_frames - 1) * self.hop_samples + self.frame_samples
        y = F.fold(frames, output_size=(1, length), kernel_size=(1, self.frame_samples),
                   stride=(1, self.hop_samples))
        return y.reshape(frames.shape[0], 1, length)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self._full(frames)[..., : frames.shape[-1] * self.hop_samples]

    def stream(self, frames: torch.Tensor, state: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        if state is None:
            state = frames.new_zeros(frames.shape[0], 1, self.overlap)
        if frames.shape[-1] == 0:
            return frames.new_zeros(frames.shape[0], 1, 0), state
        y = self._full(frames)
        y = torch.cat([y[..., : self.overlap] + state, y[..., self.overlap :]], dim=-1)
        n_out = frames.shape[-1] * self.hop_samples
        return y[..., :n_out], y[..., n_out:]


class LogSpectrum(nn.Module):
    """Audio (B, 1, T) -> log magnitudes (B, N/2 + 1, T / H) of a causal Hann-windowed STFT; streams.

    Frame j ends on sample H j, as the learned filterbank's would: a fixed causal convolution with the
    windowed DFT basis (cosines and sines), then the magnitude and its log. The encoder then starts from a
    representation where spectral envelope and harmonics are already explicit, instead of learning a
    filterbank and a rectifier from the waveform.
    """

    def __init__(self, n_fft: int, hop_samples: int) -> None:
        super().__init__()
        self.n_bins = n_fft // 2 + 1
        self.dft = CausalConv1d(1, 2 * self.n_bins, n_fft, stride=hop_samples, bias=False)
        n = torch.arange(n_fft, dtype=torch.float64)
        k = torch.arange(self.n_bins, dtype=torch.float64)[:, None]
        window = torch.hann_window(n_fft, periodic=True, dtype=torch.float64)
        basis = torch.cat([torch.cos(2 * math.pi * k * n / n_fft), -torch.sin(2 * math.pi * k * n / n_fft)])
        with torch.no_grad():
            self.dft.conv.weight.copy_((basis * window)[:, None, :].float())
        self.dft.requires_grad_(False)

    def _log_magnitude(self, spectrum: torch.Tensor) -> torch.Tensor:
        real, imag = spectrum[:, : self.n_bins], spectrum[:, self.n_bins :]
        return torch.log(torch.sqrt(real.square() + imag.square()) + LOG_SPECTRUM_FLOOR)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._log_magnitude(self.dft(x))

    def stream(self, x: torch.Tensor, state: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        spectrum, state = self.dft.stream(x, state)
        return self._log_magnitude(spectrum), state


class InverseStftHead(nn.Module):
    """Log-magnitudes (and phase terms) per frame -> Hann-windowed frames (B, N, T).

    Input (B, C, T) with C = N/2 + 1 log-magnitudes, then (except for "centre") as many phase terms:

    ``phase="absolute"``: each bin's phase in radians (as Vocos); the head acts on each frame alone.

    ``phase="advance"``: each bin's phase advance from the previous frame, as a phase vocoder sets it:
    2 pi k H / N (the advance of a sinusoid at the bin's centre) + pi tanh(u); the phase is the running sum
    of the advances, so a steady partial keeps a steady advance, which a time-invariant network can output
    frame after frame (absolute phases would have to change from frame to frame with nothing in the input
    saying so, and frames that disagree cancel in the overlap-add).

    ``phase="centre"``: no phase input; every bin advances at its centre frequency's rate. The network sets
    magnitudes only. Frame t's bin k then has phase k (pi / 2) (t + 1) (for H = N / 4), and the output is
    the sum over k of |X_k| cos(2 pi k m / N + pi k / 2) in output sample m: multiples of fs / N with
    phases tied to the output's grid, periodic in N samples whatever the magnitudes. With the true
    magnitudes of speech it resynthesises at ViSQOL 4.04-4.10; its DNSMOS goes from 2.06 to 3.04 as the
    speech is shifted by multiples of 40 samples against that grid (true phase: 3.23-3.24;
    scripts/stft_phase_oracle.py --delays 0 40 80 120 160 240). HarmonicStftHead replaces it.
    In a 4000-step CPU run with `advance`, the mean |u| the head received
    was about 6 on validation speech: the tanh saturated, the advances sat near pi off the bin centres, and
    the output was noise-like (a single diagnostic of that run's checkpoint, not a benchmark).

    The running sum is the streaming state of "advance" and "centre" (each bin's last phase, kept in float64
    and wrapped to [0, 2 pi)).
    """

    def __init__(self, n_fft: int, hop_samples: int, *, phase: str = "absolute") -> None:
        super().__init__()
        if phase not in PHASE_MODES:
            raise ParameterError(f"phase={phase!r}; use one of {', '.join(PHASE_MODES)}")
        self.n_fft, self.phase = n_fft, phase
        self.n_bins = n_fft // 2 + 1
        self.in_channels = self.n_bins if phase == "centre" else 2 * self.n_bins
        self.register_buffer("window", torch.hann_window(n_fft, periodic=True), persistent=False)
        centre_advance = 2 * math.pi * torch.arange(self.n_bins, dtype=torch.float64) * hop_samples / n_fft
        self.register_buffer("centre_advance", torch.remainder(centre_advance, 2 * math.pi), persistent=False)

    def _frames(self, log_magnitude: torch.Tensor, phase: torch.Tensor) -> torch.Tensor:
        magnitude = torch.exp(log_magnitude.clamp(max=LOG_MAGNITUDE_MAX))
        spectrum = torch.complex(magnitude * torch.cos(phase), magnitude * torch.sin(phase))
        frames = torch.fft.irfft(spectrum, n=self.n_fft, dim=1)
        return frames * self.window[:, None]

    def _phases(self, x: torch.Tensor, start: torch.Tensor | None) -> torch.Tensor:
        """Float64 running phases (B, bins, T) of the frames in x, starting after phase `start` (B, bins)."""
        advance = self.centre_advance[:, None].expand(x.shape[0], -1, x.shape[-1])
        if self.phase == "advance":
            advance = advance + math.pi * torch.tanh(x[:, self.n_bins :].double())
        phase = torch.cumsum(advance, dim=-1)
        if start is not None:
            phase = phase + start[..., None]
        return torch.remainder(phase, 2 * math.pi)

    def _check(self, x: torch.Tensor) -> None:
        if x.shape[1] != self.in_channels:
            raise ParameterError(f"{x.shape[1]} channels into an inverse-STFT head of phase={self.phase!r}, "
                                 f"which takes {self.in_channels}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        if self.phase == "absolute":
            return self._frames(x[:, : self.n_bins], x[:, self.n_bins :])
        return self._frames(x[:, : self.n_bins], self._phases(x, None).to(x.dtype))

    def stream(self, x: torch.Tensor, state: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        self._check(x)
        if x.shape[-1] == 0:
            return x.new_zeros(x.shape[0], self.n_fft, 0), state
        if self.phase == "absolute":
            return self.forward(x), state
        phase = self._phases(x, state)
        return self._frames(x[:, : self.n_bins], phase.to(x.dtype)), phase[..., -1]


class HarmonicStftHead(InverseStftHead):
    """Log-magnitudes, voicing and pitch per frame -> frames of a harmonic-plus-noise phase vocoder.

    Input (B, 2 K + 1, T) for K = N/2 + 1 bins: log-magnitudes m, voicing logits u, and one pitch logit p,
    f0 = F0_MIN_HZ (F0_MAX_HZ / F0_MIN_HZ) ** sigmoid(p). Each bin k is split into a voiced part, which
    rotates with the harmonic of f0 nearest to the bin (h_k = round(k fs / (N f0)), at least 1), and a noise
    part with a random phase per frame (a fixed seeded table of NOISE_PHASE_FRAMES frames):

        X_k = exp(m_k) (sqrt(v_k) exp(j (h_k Phi_t - pi k)) + sqrt(1 - v_k) exp(j noise_k,t)),  v = sigmoid(u)

    with Phi_t = phi_t + w_t N / 2 the fundamental's phase at frame t's centre (phi_t its phase at the frame's
    start, advanced by w_t H per frame, w_t = 2 pi f0_t / fs) and -pi k the shift of a Hann frame's centre.
    A harmonic's phase is h times the fundamental's, so every bin near harmonic h rotates together and a
    voiced frame resynthesises as harmonics of f0 whatever the magnitudes' fine structure: the network sets
    a smooth envelope, voicing and pitch, which it learns in CPU-length training, instead of harmonic
    peaks, which the `centre` head's weights left blurred above about 1 kHz.

    The pitch in the phases is `given_f0_hz` (B, T) while a caller sets it (a training forward: the pitch
    of the clean input; weights that send the pitch: the decoded side information), else the predicted
    one; the predicted log2 f0 and the voicing logits of the last call stay in `log2_f0` and
    `voicing_logits` for the training losses. Streaming state: (B, 2) float64, the
    fundamental's phase and the number of frames done so far.
    """

    def __init__(self, n_fft: int, hop_samples: int, *, sample_rate_hz: int) -> None:
        super().__init__(n_fft, hop_samples, phase="centre")
        self.phase, self.hop_samples, self.sample_rate_hz = "harmonic", hop_samples, sample_rate_hz
        self.in_channels = 2 * self.n_bins + 1
        generator = torch.Generator().manual_seed(NOISE_PHASE_SEED)
        noise = 2 * math.pi * torch.rand(self.n_bins, NOISE_PHASE_FRAMES, generator=generator,
                                         dtype=torch.float64)
        self.register_buffer("noise_phase", noise, persistent=False)
        bins = torch.arange(self.n_bins, dtype=torch.float64)
        self.register_buffer("bin_hz", bins * sample_rate_hz / n_fft, persistent=False)
        self.register_buffer("frame_centre_shift", math.pi * bins, persistent=False)
        self.given_f0_hz: torch.Tensor | None = None
        self.log2_f0: torch.Tensor | None = None
        self.voicing_logits: torch.Tensor | None = None

    def _synthesise(self, x: torch.Tensor, start: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Frames (B, N, T) and the state after them, from the state `start` (B, 2)."""
        k = self.n_bins
        log2_f0 = math.log2(F0_MIN_HZ) + math.log2(F0_MAX_HZ / F0_MIN_HZ) * torch.sigmoid(x[:, 2 * k])
        self.log2_f0, self.voicing_logits = log2_f0, x[:, k : 2 * k]
        f0_hz = torch.exp2(log2_f0)
        if self.given_f0_hz is not None:
            if self.given_f0_hz.shape != f0_hz.shape:
                raise ParameterError(f"a given pitch of shape {tuple(self.given_f0_hz.shape)} for frames of "
                                     f"shape {tuple(f0_hz.shape)}")
            f0_hz = self.given_f0_hz
        # on a grid of PITCH_STEPS_PER_OCTAVE: the phases sum the pitch over the whole signal, and rounding
        # keeps float32 noise in the decoded pitch (chunked convolutions, another CPU) out of that sum
        steps = torch.round(torch.log2(f0_hz.detach().double()) * PITCH_STEPS_PER_OCTAVE)
        f0_hz = torch.exp2(steps / PITCH_STEPS_PER_OCTAVE)
        omega = 2 * math.pi * f0_hz / self.sample_rate_hz  # (B, T) radians per sample
        start_phase = torch.cumsum(omega * self.hop_samples, dim=-1) - omega * self.hop_samples
        start_phase = torch.remainder(start_phase + start[:, :1], 2 * math.pi)
        centre_phase = start_phase + omega * (self.n_fft / 2)
        harmonic = torch.round(self.bin_hz[None, :, None] / f0_hz[:, None, :]).clamp(min=1)
        voiced_phase = harmonic * centre_phase[:, None, :] - self.frame_centre_shift[None, :, None]
        voiced_phase = torch.remainder(voiced_phase, 2 * math.pi)  # in float64, before the cast
        index = (start[:, 1:].long() + torch.arange(x.shape[-1], device=x.device)) % NOISE_PHASE_FRAMES
        noise_phase = self.noise_phase[:, index].permute(1, 0, 2)  # (B, K, T)
        log_magnitude, voicing = x[:, :k].clamp(max=LOG_MAGNITUDE_MAX), x[:, k : 2 * k]
        # sqrt(v) and sqrt(1 - v) through log-sigmoids: finite gradients however saturated the voicing
        voiced = torch.exp(log_magnitude + 0.5 * F.logsigmoid(voicing))
        noise = torch.exp(log_magnitude + 0.5 * F.logsigmoid(-voicing))
        voiced_phase, noise_phase = voiced_phase.to(x.dtype), noise_phase.to(x.dtype)
        spectrum = torch.complex(voiced * torch.cos(voiced_phase) + noise * torch.cos(noise_phase),
                                 voiced * torch.sin(voiced_phase) + noise * torch.sin(noise_phase))
        frames = torch.fft.irfft(spectrum, n=self.n_fft, dim=1) * self.window[:, None]
        next_phase = torch.remainder(start_phase[:, -1] + omega[:, -1] * self.hop_samples, 2 * math.pi)
        return frames, torch.stack([next_phase, start[:, 1] + x.shape[-1]], dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        return self._synthesise(x, x.new_zeros(x.shape[0], 2, dtype=torch.float64))[0]

    def stream(self, x: torch.Tensor, state: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        self._check(x)
        if x.shape[-1] == 0:
            return x.new_zeros(x.shape[0], self.n_fft, 0), state
        if state is None:
            state = x.new_zeros(x.shape[0], 2, dtype=torch.float64)
        return self._synthesise(x, state)


class StftAutoencoder(SoundStreamAutoencoder):
    """Frame-rate encoder, residual VQ, frame-rate decoder with an inverse-STFT output (module docstring).

    The interface is the waveform model's: forward, encode, decode, stream_encode, stream_decode.
    """

    Config = StftAutoencoderConfig

    def __init__(self, config: StftAutoencoderConfig, *, sample_rate_hz: int) -> None:
        nn.Module.__init__(self)  # the layers differ; framing, encode/decode and streaming are inherited
        self.config, self.sample_rate_hz = config, int(sample_rate_hz)
        c = config.level_channels()
        norm = config.norm

        def units(channels: int) -> list[nn.Module]:
            hidden = max(1, round(channels * config.residual_hidden_ratio))
            return [CausalResidualUnit(channels, kernel_size=config.residual_kernel, dilation=d, hidden=hidden,
                                       norm=norm) for d in config.dilations]

        if config.analysis == "learned":
            encoder: list[nn.Module] = [CausalConv1d(1, c[0], config.n_fft, stride=config.stft_hop, norm=norm)]
        else:
            encoder = [LogSpectrum(config.n_fft, config.stft_hop),
                       CausalConv1d(config.n_fft // 2 + 1, c[0], 1, norm=norm)]
        for i, s in enumerate(config.strides):
            encoder += [*units(c[i]), nn.ELU(), CausalConv1d(c[i], c[i + 1], 2 * s, stride=s, norm=norm)]
        encoder += [*units(c[-1]), nn.ELU(), CausalConv1d(c[-1], config.latent_dim, LATENT_KERNEL, norm=norm)]
        self.encoder = StreamingSequential(*encoder)
        self.quantizer = ResidualVectorQuantizer(
            dim=config.latent_dim, n_codebooks=config.n_codebooks, codebook_size=config.codebook_size,
            decay=config.ema_decay, usage_decay=config.usage_decay, dead_ratio=config.dead_ratio,
            dropout_p=config.dropout_p, dropout_min_n_q=config.dropout_min_n_q)
        decoder: list[nn.Module] = [CausalConv1d(config.latent_dim, c[-1], DECODER_IN_KERNEL, norm=norm),
                                    *units(c[-1])]
        for i in reversed(range(len(config.strides))):
            s = config.strides[i]
            decoder += [nn.ELU(), CausalConvTranspose1d(c[i + 1], c[i], 2 * s, stride=s, norm=norm), *units(c[i])]
        head: InverseStftHead = (
            HarmonicStftHead(config.n_fft, config.stft_hop, sample_rate_hz=sample_rate_hz)
            if config.phase == "harmonic" else InverseStftHead(config.n_fft, config.stft_hop, phase=config.phase))
        decoder += [nn.ELU(), CausalConv1d(c[0], head.in_channels, 1, norm=norm), head,
                    OverlapAdd(config.n_fft, config.stft_hop)]
        self.decoder = StreamingSequential(*decoder)

    @property
    def delay_samples(self) -> int:
        """Samples by which the streamed output lags the input (see the module docstring)."""
        return self.hop_samples - 1 + self.config.n_fft - self.config.stft_hop

    def pitch_targets(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The pitch (Hz, within F0_MIN_HZ..F0_MAX_HZ) and periodicity of audio x (B, 1, T) per decoder frame.

        Two tensors (B, frames), aligned with the frames the decoder outputs for x (nsac.dsp.pitch_torch):
        output frame t is centred on input sample H t + N/2 - delay, the pitch frame `lag` frames earlier.
        """
        from nsac.dsp.pitch_torch import frame_pitch

        hop = self.config.stft_hop
        f0_hz, periodicity = frame_pitch(self._padded(x)[:, 0], sample_rate_hz=self.sample_rate_hz,
                                         hop_samples=hop, window_samples=self.config.n_fft,
                                         min_hz=F0_MIN_HZ, max_hz=F0_MAX_HZ)
        lag = round((self.delay_samples - self.config.n_fft / 2 + hop / 2) / hop)
        if lag:
            f0_hz = torch.cat([f0_hz[:, :1].expand(-1, lag), f0_hz[:, :-lag]], dim=-1)
            periodicity = torch.cat([periodicity.new_zeros(x.shape[0], lag), periodicity[:, :-lag]], dim=-1)
        return f0_hz.clamp(F0_MIN_HZ, F0_MAX_HZ), periodicity

    # --- pitch sent as side information (config.pitch_bits > 0) ----------------------------------------
    @property
    def pitch_quantizer(self) -> PitchQuantizer | None:
        """The pitch side information's quantiser, or None when the decoder predicts the pitch itself."""
        if not self.config.pitch_bits:
            return None
        return PitchQuantizer(bits=self.config.pitch_bits, min_hz=F0_MIN_HZ, max_hz=F0_MAX_HZ,
                              hold_below=UNVOICED_PERIODICITY,
                              subframes=self.hop_samples // self.config.stft_hop)

    def _pitch_window_end(self) -> int:
        """Where latent frame k's pitch window ends, in samples after its first input sample (hop k).

        The window is centred on the input sample at the centre of the last STFT frame the decoder makes
        from latent frame k (output frame t is centred on input sample H t + N/2 - delay), the sub-frame
        whose pitch the code carries.
        """
        frames = self.hop_samples // self.config.stft_hop
        end = self.config.stft_hop * (frames - 1) + self.config.n_fft - self.delay_samples
        if end > self.hop_samples:
            raise ParameterError(f"this framing puts the pitch window {end - self.hop_samples} samples after "
                                 "the latent frame: the pitch cannot be sent without more delay")
        return end

    def stream_pitch_codes(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None
                           ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """Pitch codes (B, samples / hop) of the latent frames audio chunk x (B, 1, whole hops) completes.

        State: the input samples before the chunk that the next windows read, and the last code.
        """
        from nsac.dsp.pitch_torch import span_pitch, span_samples

        quantizer = self.pitch_quantizer
        if quantizer is None:
            raise ParameterError("these weights do not send the pitch (model.pitch_bits is 0)")
        span = span_samples(sample_rate_hz=self.sample_rate_hz, window_samples=self.config.n_fft,
                            min_hz=F0_MIN_HZ)
        history_samples = span - self._pitch_window_end()
        if state is None:
            history, previous = x.new_zeros(x.shape[0], history_samples), None
        else:
            history, previous = state
        n_frames = x.shape[-1] // self.hop_samples
        if n_frames == 0:
            return x.new_zeros(x.shape[0], 0, dtype=torch.int64), (history, previous)
        signal = torch.cat([history, x[:, 0]], dim=-1)
        spans = signal.unfold(-1, span, self.hop_samples)[:, :n_frames]
        f0_hz, periodicity = span_pitch(spans, sample_rate_hz=self.sample_rate_hz,
                                        window_samples=self.config.n_fft, min_hz=F0_MIN_HZ, max_hz=F0_MAX_HZ)
        codes = quantizer.encode(f0_hz, periodicity, previous)
        return codes, (signal[:, signal.shape[-1] - history_samples :], codes[:, -1])

    def pitch_codes(self, x: torch.Tensor) -> torch.Tensor:
        """Pitch codes (B, frames) of audio x (B, 1, T), one per latent frame that `encode` makes."""
        return self.stream_pitch_codes(self._padded(x), None)[0]

    def decode_with_pitch(self, codes: torch.Tensor, pitch_codes: torch.Tensor,
                          num_samples: int | None = None) -> torch.Tensor:
        """As `decode`, with the pitch of the side information (B, frames) in the harmonic head's phases."""
        head = self.decoder[-2]
        head.given_f0_hz = self.pitch_quantizer.decode(pitch_codes)
        try:
            return self.decode(codes, num_samples)
        finally:
            head.given_f0_hz = None

    def stream_decode_with_pitch(self, latents: torch.Tensor, pitch_codes: torch.Tensor,
                                 state: tuple[object, torch.Tensor | None] | None
                                 ) -> tuple[torch.Tensor, tuple[object, torch.Tensor]]:
        """As `stream_decode`, with the frames' pitch codes (B, frames); the state adds the last code."""
        decoder_state, previous = (None, None) if state is None else state
        head = self.decoder[-2]
        head.given_f0_hz = self.pitch_quantizer.decode(pitch_codes, previous)
        try:
            audio, decoder_state = self.stream_decode(latents, decoder_state)
        finally:
            head.given_f0_hz = None
        last = pitch_codes[:, -1] if pitch_codes.shape[-1] else previous
        return audio, (decoder_state, last)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """As the waveform model's; a training forward of the "harmonic" head also teaches pitch and voicing.

        The pitch of the clean input (`pitch_targets`) drives the head's phases (teacher forcing) and
        is the target of its pitch output on voiced frames: aux loss "f0", f0_weight x mean |log2 ratio|.
        Weights that send the pitch drive the phases with the decoded side information instead, in
        training and evaluation, as the codec does. Frames of clear periodicity (voiced) or clear
        aperiodicity (unvoiced) are the target of the voicing of every bin up to VOICING_MAX_HZ: aux loss
        "voicing", a binary cross-entropy.
        """
        head = self.decoder[-2]
        quantizer = self.pitch_quantizer
        if not isinstance(head, HarmonicStftHead) or not (self.training or quantizer is not None):
            return super().forward(x)
        if quantizer is not None:
            head.given_f0_hz = quantizer.decode(self.pitch_codes(x))
        if self.training:
            f0_hz, periodicity = self.pitch_targets(x)
            if quantizer is None:
                head.given_f0_hz = f0_hz
        try:
            y, aux = super().forward(x)
        finally:
            head.given_f0_hz = None
        if not self.training:
            return y, aux
        voiced = (periodicity >= VOICED_PERIODICITY).to(y.dtype)
        error = (head.log2_f0 - torch.log2(f0_hz)).abs()
        aux["f0"] = self.config.f0_weight * (error * voiced).sum() / voiced.sum().clamp(min=1.0)
        decided = voiced + (periodicity < UNVOICED_PERIODICITY).to(y.dtype)  # 1 where the frame is clear
        logits = head.voicing_logits[:, : int(VOICING_MAX_HZ * self.config.n_fft / self.sample_rate_hz) + 1]
        cross_entropy = F.binary_cross_entropy_with_logits(
            logits, voiced[:, None, :].expand_as(logits), reduction="none").mean(1)
        aux["voicing"] = (self.config.voicing_weight * (cross_entropy * decided).sum()
                          / decided.sum().clamp(min=1.0))
        return y, aux


__all__ = ["HarmonicStftHead", "InverseStftHead", "OverlapAdd", "StftAutoencoder", "StftAutoencoderConfig"]
