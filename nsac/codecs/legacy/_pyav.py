"""Shared PyAV plumbing for the FFmpeg-backed legacy codecs: open contexts, feed frames, collect packets.

The adapters (opus.py, aac.py, mp3.py) only choose encoder, decoder, options and delay; everything that
touches `av` lives here and imports it lazily, so that importing an adapter never needs PyAV.

Packet accounting, the one thing FFmpeg encoders do differently from the nsac convention::

    frames pushed      [f0][f1][f2] ... [f(M-1)]            (base.StreamEncoder pads so that
    FFmpeg emits          [p0][p1] ...        [p(M-1)][pM].. n + delay samples are in these M frames)
                       ^ AAC and MP3 emit with a lag and, when drained, code their own priming as extra
                         packets past p(M-1)

Decoding packets p0..p(M-1) already yields M frames of output, which holds the n + delay samples that
`Codec.decode` keeps, so `FfmpegEncoder` keeps exactly one packet per pushed frame and drops the rest.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import numpy as np

from nsac.codecs.base import StreamDecoder, StreamEncoder
from nsac.errors import BitstreamError, DependencyError, ParameterError

#: what to install when PyAV, or an FFmpeg build with the codec, is missing
INSTALL_HINT = "pip install av"
#: samples per second of every Opus decoder in FFmpeg (libopus and native both decode at 48 kHz)
OPUS_DECODER_RATE_HZ = 48000
#: delay of the decimating filter that brings a decoder's fixed output rate down to the codec's, in output
#: samples; 16 gives a flat passband to 0.85 x Nyquist and more than 60 dB of stopband past 1.15 x Nyquist
DECIMATOR_DELAY_SAMPLES = 16
#: Kaiser window beta of that filter
_DECIMATOR_KAISER_BETA = 8.0
_S16_FULL_SCALE = 32768.0


def pyav_availability(encoder_name: str, decoder_name: str) -> tuple[bool, str]:
    """Return (True, "") when PyAV imports and its FFmpeg has both codecs, else (False, what to install)."""
    try:
        import av
    except ImportError:
        return False, INSTALL_HINT
    missing = [name for name in (encoder_name, decoder_name) if name not in av.codec.codecs_available]
    if missing:
        return False, f"{INSTALL_HINT} (this PyAV's FFmpeg lacks {', '.join(repr(m) for m in missing)})"
    return True, ""


def _require_av() -> Any:
    try:
        import av
    except ImportError:
        raise DependencyError(f"PyAV is not installed: {INSTALL_HINT}") from None
    return av


def _layout_name(channels: int) -> str:
    return "mono" if channels == 1 else "stereo"


class FfmpegEncoder(StreamEncoder):
    """A StreamEncoder over one FFmpeg audio encoder, fed float frames; one packet out per frame pushed.

    Parameters
    ----------
    codec_name : FFmpeg encoder name ("libopus", "aac", "libmp3lame").
    sample_rate : input rate in Hz.
    channels : 1 or 2.
    bitrate : target bit/s.
    frame_size : samples per frame; must equal what the encoder asks for once opened.
    algorithmic_delay : samples, as `StreamEncoder` uses it to pad at flush.
    sample_format : "flt" (interleaved) or "fltp" (planar), one the encoder accepts.
    options : the encoder's private options, as FFmpeg strings.
    """

    def __init__(
        self,
        *,
        codec_name: str,
        sample_rate: int,
        channels: int,
        bitrate: int,
        frame_size: int,
        algorithmic_delay: int,
        sample_format: str,
        options: dict[str, str] | None = None,
    ) -> None:
        super().__init__(channels=channels, frame_size=frame_size, algorithmic_delay=algorithmic_delay)
        av = _require_av()
        self._av = av
        self._sample_rate = sample_rate
        self._sample_format = sample_format
        self._layout = _layout_name(channels)
        self._time_base = Fraction(1, sample_rate)
        ctx = av.CodecContext.create(codec_name, "w")
        ctx.sample_rate = sample_rate
        ctx.layout = self._layout
        ctx.format = sample_format
        ctx.bit_rate = bitrate
        ctx.time_base = self._time_base
        ctx.options = dict(options or {})
        try:
            ctx.open()
        except av.FFmpegError as exc:
            raise ParameterError(
                f"{codec_name} refused sample_rate={sample_rate} Hz, channels={channels}, "
                f"bitrate={bitrate} bit/s, options={options}: {exc}"
            ) from None
        if ctx.frame_size != frame_size:
            raise RuntimeError(
                f"{codec_name} codes {ctx.frame_size}-sample frames, the adapter expected {frame_size}"
            )
        self._ctx = ctx
        self._n_frames = 0
        self._n_packets = 0

    def _encode_frame(self, frame: np.ndarray) -> list[bytes]:
        if self._sample_format == "fltp":
            data = np.ascontiguousarray(frame)
        else:  # interleaved: (1, samples * channels)
            data = np.ascontiguousarray(frame.T).reshape(1, -1)
        av_frame = self._av.AudioFrame.from_ndarray(data, format=self._sample_format, layout=self._layout)
        av_frame.sample_rate = self._sample_rate
        av_frame.pts = self._n_frames * self.frame_size
        av_frame.time_base = self._time_base
        self._n_frames += 1
        return self._collect(self._ctx.encode(av_frame))

    def _drain(self) -> list[bytes]:
        # packets past one per frame code only the encoder's own end padding (see the module docstring)
        n_held_back = max(0, self._n_frames - self._n_packets)
        return self._collect(self._ctx.encode(None)[:n_held_back])

    def _collect(self, av_packets: list[Any]) -> list[bytes]:
        packets = [bytes(p) for p in av_packets]
        self._n_packets += len(packets)
        return packets


class FirDecimator:
    """Causal linear-phase low-pass FIR and downsampling by an integer factor, with state across calls.

    Output sample m is the filtered input at sample m * factor, so the filter delays the signal by exactly
    `DECIMATOR_DELAY_SAMPLES` output samples. Every call must bring a multiple of `factor` samples.
    """

    def __init__(self, *, factor: int, channels: int) -> None:
        from scipy.signal import firwin

        self.factor = factor
        n_taps = 2 * DECIMATOR_DELAY_SAMPLES * factor + 1
        # cutoff at the output Nyquist frequency; firwin normalises frequencies to the input Nyquist
        self._taps = firwin(n_taps, 1.0 / factor, window=("kaiser", _DECIMATOR_KAISER_BETA))
        self._history = np.zeros((channels, n_taps - 1), dtype=np.float64)

    def __call__(self, audio: np.ndarray) -> np.ndarray:
        """Filter and downsample (channels, n), n a multiple of `factor`; return (channels, n // factor)."""
        n_taps = self._taps.size
        buffer = np.concatenate([self._history, audio.astype(np.float64)], axis=1)
        windows = np.lib.stride_tricks.sliding_window_view(buffer, n_taps, axis=1)[:, :: self.factor]
        n_out = audio.shape[1] // self.factor
        # the taps are symmetric, so a dot product with each window is the convolution
        out = windows[:, :n_out] @ self._taps
        self._history = buffer[:, buffer.shape[1] - (n_taps - 1) :]
        return out.astype(np.float32)


class FfmpegDecoder(StreamDecoder):
    """A StreamDecoder over one FFmpeg audio decoder: exactly one frame of output per packet, lost or not.

    A lost packet (None) goes to `_conceal`, which here outputs a frame of zeros without touching the
    decoder; subclasses override it to use the codec's own concealment. When the decoder's output rate is
    an integer multiple of the codec's (Opus decodes at 48 kHz only) a `FirDecimator` brings it down.
    FFmpeg errors, and packets that decode to anything but one frame, raise BitstreamError.

    Parameters
    ----------
    codec_name : FFmpeg decoder name ("libopus", "aac", "mp3float").
    label : the nsac codec name, for error messages.
    sample_rate : the codec's rate in Hz, that of the output.
    channels : 1 or 2.
    frame_size : output samples per packet, at `sample_rate`.
    decoder_rate : the rate the decoder produces, in Hz; `sample_rate` when None.
    options : the decoder's options, as FFmpeg strings.
    """

    def __init__(
        self,
        *,
        codec_name: str,
        label: str,
        sample_rate: int,
        channels: int,
        frame_size: int,
        decoder_rate: int | None = None,
        options: dict[str, str] | None = None,
    ) -> None:
        super().__init__(channels=channels)
        av = _require_av()
        self._av = av
        self._label = label
        decoder_rate = decoder_rate or sample_rate
        if decoder_rate % sample_rate:
            raise RuntimeError(
                f"{codec_name} decodes at {decoder_rate} Hz, not a multiple of {sample_rate} Hz"
            )
        factor = decoder_rate // sample_rate
        self._decimate = FirDecimator(factor=factor, channels=channels) if factor > 1 else None
        self._decoder_frame_size = frame_size * factor
        self.frame_size = frame_size
        ctx = av.CodecContext.create(codec_name, "r")
        ctx.sample_rate = decoder_rate
        ctx.layout = _layout_name(channels)
        ctx.options = dict(options or {})
        ctx.open()
        self._ctx = ctx

    def _decode_packet(self, packet: bytes | None) -> np.ndarray:
        if packet is None:
            audio = self._conceal()
        elif len(packet) == 0:
            raise BitstreamError(f"{self._label}: empty packet; mark a lost packet with None instead")
        else:
            audio = self._decode_bytes(packet)
        return self._decimate(audio) if self._decimate else audio

    def _conceal(self) -> np.ndarray:
        """Output for a lost packet, at the decoder's rate: silence, and the decoder carries on."""
        return np.zeros((self.channels, self._decoder_frame_size), dtype=np.float32)

    def _decode_bytes(self, packet: bytes) -> np.ndarray:
        """Decode one packet into exactly one frame at the decoder's rate, or raise BitstreamError."""
        av = self._av
        try:
            frames = self._ctx.decode(av.Packet(packet))
        except av.FFmpegError as exc:
            raise BitstreamError(f"{self._label}: corrupt packet of {len(packet)} bytes ({exc})") from None
        audio = self._frames_to_array(frames)
        if audio.shape[1] != self._decoder_frame_size:
            raise BitstreamError(
                f"{self._label}: a packet of {len(packet)} bytes decodes to {audio.shape[1]} samples, "
                f"not the {self._decoder_frame_size} of one frame: corrupt, or from another codec setting"
            )
        return audio

    def _frames_to_array(self, frames: list[Any]) -> np.ndarray:
        pieces = [np.zeros((self.channels, 0), dtype=np.float32)]
        for frame in frames:
            data = frame.to_ndarray()
            if not frame.format.is_planar:
                data = data.reshape(-1, self.channels).T
            if np.issubdtype(data.dtype, np.integer):
                data = data / _S16_FULL_SCALE
            pieces.append(data.astype(np.float32))
        return np.concatenate(pieces, axis=1)


def samples_for_ms(duration_ms: float, sample_rate: int) -> int:
    """Return the whole number of samples in `duration_ms` at `sample_rate` Hz (exact for codec timings)."""
    return math.floor(duration_ms * sample_rate / 1000 + 0.5)
