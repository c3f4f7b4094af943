"""The MDCT-domain recurrent enhancer for transform-coded music: a time-LSTM and a frequency-LSTM per frame.

After Deng et al., "Exploiting time-frequency patterns with LSTM-RNNs for low-bitrate audio restoration"
(Neural Computing and Applications, 2020): the decoded signal's MDCT coefficients, grouped into bands of
`band_bins` coefficients, go through an LSTM along time for every band (T-LSTM, weights shared across
bands: the temporal envelope and the tonal continuity a coder breaks) and then an LSTM along frequency
within each frame (F-LSTM, in both directions since a frame is complete: harmonic structure and the holes
a coder leaves). Per coefficient the network predicts a gain and an additive correction.

Framing (N = n_bins = hop_samples, sine window of 2N, Princen-Bradley overlap-add: MDCT and IMDCT of
nsac.dsp.mdct_torch reconstruct exactly)::

    input      [N zeros][x0 x1 ............................][zeros to a whole hop]
    frame f    |<----- 2N ----->|          starts at f * N, ends on input sample f * N + N - 1
    output     frame f's first N samples are complete once frame f is in: the enhancer delays by N
               samples (the MDCT's overlap: 5.3 ms for N = 256 at 48 kHz)

Per frame, with X the decoded coefficients (N,) and rms(X) their root mean square::

    features  = sign(X) log(1 + |X| / FEATURE_FLOOR) / FEATURE_SCALE       grouped (bands, band_bins)
    h         = Linear(band_bins -> hidden) -> T-LSTM (over frames, per band, causal) + h
              -> F-LSTM (over bands, both directions) + h -> Linear(hidden -> 2 band_bins): a, c
    Y         = (1 + MAX_GAIN_CHANGE tanh a) X + MAX_CORRECTION tanh(c) rms(X)

The output layer starts at zero, so an untrained model returns the decoded signal (delayed); the gain
stays in (0, 2) and the correction below MAX_CORRECTION times the frame's level, so the output is bounded
whatever the input. Whole-signal `forward` returns the output aligned with its input; `stream` returns it
delayed by `delay_samples`, chunk by chunk, with the same samples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from nsac.dsp import mdct_torch
from nsac.dsp.mdct import sine_window
from nsac.errors import ParameterError

#: the coefficient magnitude (orthonormal MDCT, full scale 1) below which the features flatten out: -100 dB
FEATURE_FLOOR = 1e-5
#: brings the compressed coefficients near unit spread for music at about -20 LUFS
FEATURE_SCALE = 8.0
#: the gain on a coefficient stays within 1 +- this
MAX_GAIN_CHANGE = 1.0
#: the additive correction of a coefficient stays below this many times the frame's RMS coefficient
MAX_CORRECTION = 2.0
#: floor under the frame's mean square coefficient, so a silent frame gets no correction
_POWER_FLOOR = 1e-12
#: LSTM multiply-adds per step: 4 gates, each an input and a recurrent matrix
_LSTM_GATES = 4


@dataclass(frozen=True)
class MdctLstmConfig:
    n_bins: int = 256  # N: hop and delay, 5.3 ms at 48 kHz; the window is 2N
    band_bins: int = 16  # coefficients per band: the T-LSTM runs over n_bins / band_bins bands
    hidden: int = 64  # T-LSTM state; the F-LSTM has hidden / 2 per direction

    def __post_init__(self) -> None:
        if self.n_bins < 4 or self.n_bins % 2:
            raise ParameterError(f"model.n_bins={self.n_bins} must be an even number of at least 4")
        if self.band_bins < 1 or self.n_bins % self.band_bins:
            raise ParameterError(f"model.band_bins={self.band_bins} must divide model.n_bins={self.n_bins}")
        if self.hidden < 2 or self.hidden % 2:
            raise ParameterError(f"model.hidden={self.hidden} must be an even number of at least 2")


class MdctLstmEnhancer(nn.Module):
    """Causal MDCT-domain enhancer: see the module docstring. (B, 1, T) -> (B, 1, T)."""

    Config = MdctLstmConfig

    def __init__(self, config: MdctLstmConfig, *, sample_rate_hz: int) -> None:
        super().__init__()
        self.config = config
        self.sample_rate_hz = sample_rate_hz
        self.n_bins = config.n_bins
        self.n_bands = config.n_bins // config.band_bins
        hidden = config.hidden
        self.input_layer = nn.Linear(config.band_bins, hidden)
        self.time_lstm = nn.LSTM(hidden, hidden, batch_first=True)
        self.frequency_lstm = nn.LSTM(hidden, hidden // 2, batch_first=True, bidirectional=True)
        self.output_layer = nn.Linear(hidden, 2 * config.band_bins)
        nn.init.zeros_(self.output_layer.weight)
        nn.init.zeros_(self.output_layer.bias)
        window = torch.as_tensor(sine_window(2 * config.n_bins), dtype=torch.float32)
        self.register_buffer("window", window, persistent=False)

    @property
    def delay_samples(self) -> int:
        """What `stream` adds: the MDCT's overlap, one hop."""
        return self.n_bins

    @property
    def hop_samples(self) -> int:
        return self.n_bins

    def uncounted_macs(self, n_samples: int) -> float:
        """What torch's flop counter leaves out: the two LSTMs, and the MDCT and IMDCT (an FFT of N / 2
        complex points each, about 2 N log2 N real multiply-adds with the twiddles)."""
        n_frames = -(-(n_samples + self.delay_samples) // self.hop_samples)
        hidden = self.config.hidden
        time_lstm = _LSTM_GATES * (hidden * hidden + hidden * hidden) * self.n_bands
        half = hidden // 2
        frequency_lstm = 2 * _LSTM_GATES * (hidden * half + half * half) * self.n_bands
        transforms = 2 * 2 * self.n_bins * math.log2(self.n_bins)
        return float(n_frames * (time_lstm + frequency_lstm + transforms))

    # --- per-frame processing ---------------------------------------------------------------------------
    def _enhance_frames(self, frames: torch.Tensor, state: object = None) -> tuple[torch.Tensor, object]:
        """(B, F, 2N) input frames -> (B, F, 2N) windowed IMDCT frames, and the T-LSTM's state."""
        batch, n_frames = frames.shape[:2]
        coefficients = mdct_torch.mdct(frames, window=self.window)  # (B, F, N)
        features = torch.sign(coefficients) * torch.log1p(coefficients.abs() / FEATURE_FLOOR) / FEATURE_SCALE
        h = self.input_layer(features.reshape(batch, n_frames, self.n_bands, -1))  # (B, F, G, H)
        per_band = h.permute(0, 2, 1, 3).reshape(batch * self.n_bands, n_frames, -1)
        over_time, state = self.time_lstm(per_band, state)
        h = h + over_time.reshape(batch, self.n_bands, n_frames, -1).permute(0, 2, 1, 3)
        per_frame = h.reshape(batch * n_frames, self.n_bands, -1)
        over_frequency, _ = self.frequency_lstm(per_frame)
        h = h + over_frequency.reshape(batch, n_frames, self.n_bands, -1)
        gain, correction = self.output_layer(h).reshape(batch, n_frames, self.n_bands, 2, -1).unbind(3)
        level = torch.sqrt(coefficients.pow(2).mean(dim=-1, keepdim=True) + _POWER_FLOOR)
        enhanced = ((1 + MAX_GAIN_CHANGE * torch.tanh(gain.reshape_as(coefficients))) * coefficients
                    + MAX_CORRECTION * torch.tanh(correction.reshape_as(coefficients)) * level)
        return mdct_torch.imdct(enhanced, window=self.window), state

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, T) decoded audio -> (B, 1, T) enhanced audio aligned with it."""
        if x.ndim != 3 or x.shape[1] != 1:
            raise ParameterError(f"the enhancer takes (batch, 1, time) audio, not {tuple(x.shape)}")
        n, t = self.n_bins, x.shape[-1]
        n_frames = -(-(t + n) // n)  # every input sample, and the delay, come out
        padded = F.pad(x[:, 0], (n, n_frames * n - t))
        y, _ = self._enhance_frames(padded.unfold(-1, 2 * n, n))
        out = mdct_torch.overlap_add(y)  # (B, (F + 1) N)
        return out[:, None, n : n + t]  # padded sample n is input sample 0

    def stream(self, x: torch.Tensor, state: object) -> tuple[torch.Tensor, object]:
        """Chunk of (B, 1, samples) -> the enhanced samples completed so far, `delay_samples` behind.

        State: (input not yet framed, the last frame's second half, the T-LSTM's (h, c)).
        """
        n = self.n_bins
        if state is None:
            pending, tail, lstm_state = x.new_zeros(x.shape[0], n), x.new_zeros(x.shape[0], n), None
        else:
            pending, tail, lstm_state = state
        buffer = torch.cat([pending, x[:, 0]], dim=-1)
        n_frames = (buffer.shape[-1] - n) // n
        if n_frames <= 0:
            return x.new_zeros(x.shape[0], 1, 0), (buffer, tail, lstm_state)
        emitted = n_frames * n
        y, lstm_state = self._enhance_frames(buffer[:, : emitted + n].unfold(-1, 2 * n, n), lstm_state)
        out = mdct_torch.overlap_add(y)  # (B, (F + 1) N): the last N wait for the next frame
        out = torch.cat([out[:, :n] + tail, out[:, n:]], dim=-1)
        return out[:, None, :emitted], (buffer[:, emitted:], out[:, emitted:], lstm_state)
