"""The Codec interface every nsac codec implements, legacy or neural, and its streaming halves.

Framing and delay, the one convention every codec follows::

    input     |<------------------ n samples ------------------>|
    encoder   [frame 0][frame 1] ...                  [frame k-1] (zero padded at flush so
                                                                   that n + delay samples are coded)
    decoder   |<- delay ->|<------------ n samples ------------>|
                          ^ whole-file `decode` starts its output here

A stream decoder returns everything the codec produces, delay included, as a real-time receiver would;
`Codec.decode` drops the first `algorithmic_delay` samples and returns exactly `num_samples`, so its output
is aligned in time with the encoder's input. Both whole-file calls are built on the streaming halves, which
makes streaming equal whole-file by construction (and the tests check it).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from nsac.errors import AudioError, ParameterError


def check_audio(audio: np.ndarray, *, channels: int, name: str = "audio") -> np.ndarray:
    """Return `audio` as C-contiguous float32 of shape (channels, samples), or raise AudioError."""
    arr = np.asarray(audio)
    if arr.ndim == 1 and channels == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[0] != channels:
        raise AudioError(f"{name} has shape {arr.shape}; expected ({channels}, samples)")
    if not np.issubdtype(arr.dtype, np.floating):
        raise AudioError(f"{name} has dtype {arr.dtype}; expected float samples in [-1, 1]")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    if not np.all(np.isfinite(arr)):
        raise AudioError(f"{name} contains NaN or infinite samples")
    return arr


class StreamEncoder(ABC):
    """Push audio of any length, get the packets of the frames completed so far; `flush` ends the stream.

    Subclasses implement `_encode_frame` (one frame of exactly `frame_size` samples) and, for encoders
    that hold packets back, `_drain`.
    """

    def __init__(self, *, channels: int, frame_size: int, algorithmic_delay: int) -> None:
        self.channels = channels
        self.frame_size = frame_size
        self.algorithmic_delay = algorithmic_delay
        self._buffer = np.zeros((channels, 0), dtype=np.float32)
        self._n_pushed = 0
        self._flushed = False

    def push(self, audio: np.ndarray) -> list[bytes]:
        if self._flushed:
            raise ParameterError("push() after flush(): start a new stream encoder")
        audio = check_audio(audio, channels=self.channels)
        self._n_pushed += audio.shape[1]
        self._buffer = np.concatenate([self._buffer, audio], axis=1)
        packets: list[bytes] = []
        n_frames = self._buffer.shape[1] // self.frame_size
        for i in range(n_frames):
            packets.extend(self._encode_frame(self._buffer[:, i * self.frame_size : (i + 1) * self.frame_size]))
        self._buffer = self._buffer[:, n_frames * self.frame_size :]
        return packets

    def flush(self) -> list[bytes]:
        """Zero-pad so that every input sample plus the codec delay is coded, then drain the encoder."""
        if self._flushed:
            return []
        n_coded = self._n_pushed - self._buffer.shape[1]
        n_needed = self._n_pushed + self.algorithmic_delay
        n_pad = max(0, math.ceil((n_needed - n_coded) / self.frame_size) * self.frame_size - self._buffer.shape[1])
        tail = np.zeros((self.channels, n_pad), dtype=np.float32)
        packets = self.push(tail) if n_pad else []
        self._flushed = True
        packets.extend(self._drain())
        return packets

    @abstractmethod
    def _encode_frame(self, frame: np.ndarray) -> list[bytes]:
        """Code one frame (channels, frame_size) and return the packets it completes (usually one)."""

    def _drain(self) -> list[bytes]:
        """Return packets the encoder still holds at the end of the stream."""
        return []


class StreamDecoder(ABC):
    """Push one packet at a time (None = lost), get the audio it produces; `flush` ends the stream."""

    def __init__(self, *, channels: int) -> None:
        self.channels = channels

    def push(self, packet: bytes | None) -> np.ndarray:
        out = self._decode_packet(packet)
        return np.asarray(out, dtype=np.float32).reshape(self.channels, -1)

    def flush(self) -> np.ndarray:
        return np.asarray(self._drain(), dtype=np.float32).reshape(self.channels, -1)

    @abstractmethod
    def _decode_packet(self, packet: bytes | None) -> np.ndarray:
        """Decode one packet, or conceal it when it is None; return (channels, n) float32."""

    def _drain(self) -> np.ndarray:
        return np.zeros((self.channels, 0), dtype=np.float32)


class Codec(ABC):
    """Audio in, packets out, packets in, audio out.

    Class attributes describe what a codec supports (for `list_codecs` and parameter checks); instance
    attributes describe one configured codec. `config()` returns the keyword arguments that rebuild it;
    together with the registry name that is all a decoder needs.
    """

    name: ClassVar[str]
    kind: ClassVar[str] = "legacy"
    #: sample rates the codec accepts, in Hz
    sample_rates_hz: ClassVar[tuple[int, ...]]
    #: bitrates (bit/s) the codec is listed and tested at; `bitrate_range_bps` bounds what it accepts
    bitrates_bps: ClassVar[tuple[int, ...]]
    bitrate_range_bps: ClassVar[tuple[int, int]]
    #: True when every packet has the same size at a given bitrate (CBR)
    constant_rate: ClassVar[bool] = True

    sample_rate: int
    channels: int
    frame_size: int
    bitrate: int
    algorithmic_delay: int
    #: bytes of every packet when they are all the same size; None when they vary
    packet_bytes: int | None = None
    #: the first 8 bytes of the sha256 of the weights this codec runs with, None for no weights
    weights_sha256_prefix: bytes | None = None

    @property
    def deterministic(self) -> bool:
        """True when the same packets always decode to the same samples, in any process."""
        return True

    # --- what the library behind the codec needs -------------------------------------------------------
    @classmethod
    def availability(cls) -> tuple[bool, str]:
        """Return (True, "") when the codec can run here, else (False, what to install)."""
        return True, ""

    # --- the interface -----------------------------------------------------------------------------------
    @abstractmethod
    def stream_encoder(self) -> StreamEncoder: ...

    @abstractmethod
    def stream_decoder(self) -> StreamDecoder: ...

    @abstractmethod
    def config(self) -> dict[str, Any]:
        """Keyword arguments that rebuild this codec with `load_codec(name, **config)`; JSON-serialisable."""

    def complexity(self) -> dict[str, float]:
        """MACs per second of audio and parameter count of the neural parts (zero for legacy codecs)."""
        return {"macs_per_second": 0.0, "parameters": 0}

    def encode(self, audio: np.ndarray) -> list[bytes]:
        """Code audio of shape (channels, samples) at `sample_rate` into one packet per frame.

        Every frame gives exactly one packet, and a stream decoder gives exactly `frame_size` samples per
        packet, lost ones included: packet i covers samples [i * frame_size, (i + 1) * frame_size).
        """
        audio = check_audio(audio, channels=self.channels)
        encoder = self.stream_encoder()
        return encoder.push(audio) + encoder.flush()

    def decode(self, packets: Sequence[bytes | None], num_samples: int | None = None) -> np.ndarray:
        """Decode packets (None = lost) into (channels, num_samples) float32, aligned with the input."""
        if num_samples is None:
            num_samples = max(0, len(packets) * self.frame_size - self.algorithmic_delay)
        decoder = self.stream_decoder()
        pieces = [decoder.push(p) for p in packets]
        pieces.append(decoder.flush())
        out = np.concatenate(pieces, axis=1)[:, self.algorithmic_delay :]
        if out.shape[1] < num_samples:
            out = np.pad(out, ((0, 0), (0, num_samples - out.shape[1])))
        return out[:, :num_samples]

    # --- helpers for subclasses ------------------------------------------------------------------------------
    @classmethod
    def check_sample_rate(cls, sample_rate: int) -> int:
        if int(sample_rate) not in cls.sample_rates_hz:
            rates = ", ".join(str(r) for r in cls.sample_rates_hz)
            raise ParameterError(f"{cls.name}: sample_rate={sample_rate} Hz is not supported; use one of {rates}")
        return int(sample_rate)

    @classmethod
    def check_bitrate(cls, bitrate: int) -> int:
        low, high = cls.bitrate_range_bps
        if not low <= int(bitrate) <= high:
            raise ParameterError(f"{cls.name}: bitrate={bitrate} bit/s is outside {low}..{high} bit/s")
        return int(bitrate)

    @classmethod
    def check_channels(cls, channels: int, *, max_channels: int = 1) -> int:
        if not 1 <= int(channels) <= max_channels:
            raise ParameterError(f"{cls.name}: channels={channels} is not supported; use 1..{max_channels}")
        return int(channels)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.config().items())})"
