"""The mdct codec's stream decoder: packets to spectra, noise filling, M/S, IMDCT, overlap-add; concealment.

Packet t gives the N samples ``p[tN, (t + 1) N)`` of the encoder's delay line (:mod:`.encoder`): the first
half of frame t's windowed IMDCT plus the second half of frame t - 1's. A lost packet (None) is concealed by
the magnitudes of the last long frame's spectrum with random signs (noise of the same spectral envelope),
faded by `CONCEALMENT_FADE` per lost frame in a row, under a window whose left half matches the frame
before. The noise of noise filling and concealment comes from one PCG64 stream seeded with `NOISE_SEED`, so
the same packets decode to the same samples in any process.
"""

from __future__ import annotations

import numpy as np

from nsac.codecs.base import StreamDecoder
from nsac.codecs.mdct import quantizer as _q
from nsac.codecs.mdct import stereo as _stereo
from nsac.codecs.mdct.bitstream import FrameData, read_packet
from nsac.codecs.mdct.framing import Geometry
from nsac.dsp.mdct import imdct_frame

CONCEALMENT_FADE = 0.7
"""Amplitude factor per lost frame in a row (-3 dB a frame)."""
NOISE_SEED = 0x6D646374
_UNIFORM_SPAN = 2.0 * np.sqrt(3.0)  # a uniform variable over this span has unit variance
#: the shape of each window type's right half, which the next frame's left half must match
_RIGHT_HALF = {"long": "long", "start": "short", "short": "short", "stop": "long"}


class MdctStreamDecoder(StreamDecoder):
    """Stream decoder of the mdct codec (see the module docstring)."""

    def __init__(self, *, geometry: Geometry, channels: int) -> None:
        super().__init__(channels=channels)
        self.geometry = geometry
        n = geometry.n_bins
        self._overlap = np.zeros((channels, n))
        self._last_window = "long"
        self._last_spectrum = np.zeros((channels, n))
        self._n_lost = 0
        self._rng = np.random.Generator(np.random.PCG64(NOISE_SEED))

    def _noise(self, n: int) -> np.ndarray:
        return (self._rng.random(n) - 0.5) * _UNIFORM_SPAN

    def _decode_packet(self, packet: bytes | None) -> np.ndarray:
        if packet is None:
            return self._conceal()
        frame = read_packet(packet, self.geometry, channels=self.channels)
        spectrum = self.spectrum(frame)
        self._n_lost = 0
        if frame.window_type != "short":
            self._last_spectrum = spectrum
        return self._synthesize(spectrum, frame.window_type)

    def spectrum(self, frame: FrameData) -> np.ndarray:
        """The decoded MDCT coefficients of a frame, (channels, N) in frame layout (L/R)."""
        layout = self.geometry.layout(frame.window_type, frame.groups)
        widths = np.tile(layout.widths, self.channels)  # the channels' bands one after the other
        snr = np.concatenate([frame.snr(c) for c in range(self.channels)])
        steps = np.repeat(_q.step_size(np.concatenate(frame.step)), widths)
        q = np.zeros(steps.size, dtype=np.int64)
        q[np.repeat(snr, widths) >= 1] = np.concatenate(frame.values)
        values = _q.fill_noise(_q.dequantize(q, steps), q, edges=np.concatenate([[0], np.cumsum(widths)]),
                               e_index=np.concatenate(frame.energy), s_index=snr, step=steps,
                               noise=self._noise(steps.size))
        out = np.zeros((self.channels, self.geometry.n_bins))
        out[:, layout.order] = values.reshape(self.channels, -1)
        return _stereo.rotate(out) if frame.mid_side else out

    def _synthesize(self, spectrum: np.ndarray, window_type: str) -> np.ndarray:
        n = self.geometry.n_bins
        block = imdct_frame(spectrum, window_type=window_type)
        out = self._overlap + block[:, :n]
        self._overlap = block[:, n:]
        self._last_window = window_type
        return out.astype(np.float32)

    def _conceal(self) -> np.ndarray:
        self._n_lost += 1
        signs = np.where(self._rng.random(self._last_spectrum.shape) < 0.5, -1.0, 1.0)
        spectrum = self._last_spectrum * signs * CONCEALMENT_FADE ** self._n_lost
        window_type = "stop" if _RIGHT_HALF[self._last_window] == "short" else "long"
        return self._synthesize(spectrum, window_type)


__all__ = ["CONCEALMENT_FADE", "NOISE_SEED", "MdctStreamDecoder"]
