"""LC3 (Bluetooth LE Audio's low-complexity codec, ETSI TS 103 634) through ctypes on lc3py's liblc3.

The library. lc3py ships Google's liblc3 with a Python wrapper, but the wrapper can neither conceal a lost
frame (it never passes the NULL frame that triggers liblc3's PLC), nor report a frame that liblc3 found
corrupt, nor free its states. This adapter calls the same liblc3 through its C API (lc3.h) instead, found in
the lc3py installation or else as a system library.

Rate. One packet per 10 ms (or 7.5 ms) frame of `bitrate * frame_ms / 8000` bytes, rounded down, 20..400
bytes; `bitrate` is what those bytes carry, rounded up to a whole bit/s so that it rebuilds the same size.

Delay. liblc3's `lc3_delay_samples`: 2.5 ms at 10 ms frames, 4 ms at 7.5 ms (the MDCT's low-delay window
overlap), e.g. 40 samples at 16 kHz. The cross-correlation of input and output peaks exactly there.

Loss. A lost packet (None) is decoded as a NULL frame, which runs liblc3's packet loss concealment. A packet
that liblc3 finds corrupt raises BitstreamError; liblc3 has then concealed that frame internally, so the
stream can go on with the next packet, one frame of audio short.
"""

from __future__ import annotations

import ctypes
import functools
import glob
import importlib.util
import math
import os
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from nsac.codecs.base import Codec, StreamDecoder, StreamEncoder
from nsac.codecs.legacy._native import bind, check_packet, float_to_int16, int16_to_float, load_library
from nsac.errors import BitstreamError, DependencyError, NsacError, ParameterError

INSTALL_HINT = "pip install lc3py"
FRAME_DURATIONS_MS = (7.5, 10.0)
MIN_FRAME_BYTES = 20
MAX_FRAME_BYTES = 400
_US_PER_S = 1_000_000
_BITS_PER_BYTE = 8
_PCM_FORMAT_S16 = 0  # enum lc3_pcm_format
_PCM_STRIDE = 1  # mono: consecutive samples
_DECODE_OK = 0
_DECODE_CONCEALED = 1
_SYMBOLS = (
    "lc3_frame_samples",
    "lc3_delay_samples",
    "lc3_encoder_size",
    "lc3_setup_encoder",
    "lc3_encode",
    "lc3_decoder_size",
    "lc3_setup_decoder",
    "lc3_decode",
)


@dataclass(frozen=True)
class _Lib:
    """The bound functions of lc3.h."""

    frame_samples: Any
    delay_samples: Any
    encoder_size: Any
    setup_encoder: Any
    encode: Any
    decoder_size: Any
    setup_decoder: Any
    decode: Any


def _lc3py_library_paths() -> list[str]:
    spec = importlib.util.find_spec("lc3")
    if spec is None or not spec.origin:
        return []
    # meson-python wheels put the library in a hidden folder beside the module
    return sorted(glob.glob(os.path.join(os.path.dirname(spec.origin), ".lc3py.mesonpy.libs", "liblc3*")))


@functools.cache
def _library() -> _Lib:
    lib = None
    for path in _lc3py_library_paths():
        try:
            candidate = ctypes.CDLL(path)
        except OSError:
            continue
        if all(hasattr(candidate, symbol) for symbol in _SYMBOLS):
            lib = candidate
            break
    lib = lib or load_library("lc3", ("liblc3.so.1",), _SYMBOLS)
    if lib is None:
        raise DependencyError(f"lc3 needs liblc3: {INSTALL_HINT}")
    c_int, voidp = ctypes.c_int, ctypes.c_void_p
    return _Lib(
        frame_samples=bind(lib, "lc3_frame_samples", [c_int, c_int], c_int),
        delay_samples=bind(lib, "lc3_delay_samples", [c_int, c_int], c_int),
        encoder_size=bind(lib, "lc3_encoder_size", [c_int, c_int], ctypes.c_uint),
        setup_encoder=bind(lib, "lc3_setup_encoder", [c_int, c_int, c_int, voidp], voidp),
        encode=bind(lib, "lc3_encode", [voidp, c_int, voidp, c_int, c_int, voidp], c_int),
        decoder_size=bind(lib, "lc3_decoder_size", [c_int, c_int], ctypes.c_uint),
        setup_decoder=bind(lib, "lc3_setup_decoder", [c_int, c_int, c_int, voidp], voidp),
        decode=bind(lib, "lc3_decode", [voidp, voidp, c_int, c_int, voidp, c_int], c_int),
    )


def _state_memory(n_bytes: int) -> ctypes.Array:
    """Zeroed memory for an encoder or decoder, aligned for pointers as lc3.h asks; freed with its owner."""
    words = math.ceil(n_bytes / ctypes.sizeof(ctypes.c_uint64))
    return (ctypes.c_uint64 * words)()


class _Lc3StreamEncoder(StreamEncoder):
    def __init__(self, codec: Lc3Codec) -> None:
        super().__init__(channels=1, frame_size=codec.frame_size, algorithmic_delay=codec.algorithmic_delay)
        self._lib = _library()
        self._frame_bytes = codec.packet_bytes
        # liblc3 keeps its whole state in this memory; the encoder handle points into it
        self._memory = _state_memory(self._lib.encoder_size(codec.frame_us, codec.sample_rate))
        self._encoder = self._lib.setup_encoder(codec.frame_us, codec.sample_rate, 0, self._memory)
        if not self._encoder:
            raise NsacError(
                f"lc3: liblc3 refused an encoder for {codec.frame_us} us at {codec.sample_rate} Hz"
            )

    def _encode_frame(self, frame: np.ndarray) -> list[bytes]:
        pcm = float_to_int16(frame[0])
        out = (ctypes.c_ubyte * self._frame_bytes)()
        status = self._lib.encode(
            self._encoder, _PCM_FORMAT_S16, pcm.ctypes.data, _PCM_STRIDE, self._frame_bytes, out
        )
        if status != 0:
            raise NsacError(f"lc3: liblc3 refused to encode a frame of {self._frame_bytes} bytes")
        return [bytes(out)]


class _Lc3StreamDecoder(StreamDecoder):
    def __init__(self, codec: Lc3Codec) -> None:
        super().__init__(channels=1)
        self._lib = _library()
        self._frame_bytes = codec.packet_bytes
        self._frame_size = codec.frame_size
        self._memory = _state_memory(self._lib.decoder_size(codec.frame_us, codec.sample_rate))
        self._decoder = self._lib.setup_decoder(codec.frame_us, codec.sample_rate, 0, self._memory)
        if not self._decoder:
            raise NsacError(
                f"lc3: liblc3 refused a decoder for {codec.frame_us} us at {codec.sample_rate} Hz"
            )

    def _decode_packet(self, packet: bytes | None) -> np.ndarray:
        pcm = np.zeros(self._frame_size, dtype=np.int16)
        if packet is None:
            status = self._lib.decode(self._decoder, None, 0, _PCM_FORMAT_S16, pcm.ctypes.data, _PCM_STRIDE)
            if status not in (_DECODE_OK, _DECODE_CONCEALED):
                raise NsacError("lc3: liblc3 refused to conceal a lost frame")
            return int16_to_float(pcm)[None, :]
        data = check_packet(packet, n_bytes=self._frame_bytes, codec="lc3")
        status = self._lib.decode(
            self._decoder, data, len(data), _PCM_FORMAT_S16, pcm.ctypes.data, _PCM_STRIDE
        )
        if status == _DECODE_CONCEALED:
            raise BitstreamError("lc3: liblc3 found the packet corrupt (it concealed the frame instead)")
        if status != _DECODE_OK:
            raise NsacError(f"lc3: liblc3 refused a {len(data)}-byte frame")
        return int16_to_float(pcm)[None, :]


class Lc3Codec(Codec):
    """LC3 at 8-48 kHz, mono, 16-320 kbit/s, in 10 ms (or 7.5 ms) packets of one size.

    Parameters
    ----------
    sample_rate : Hz, one of `sample_rates_hz`.
    bitrate : bit/s; the packet size is `bitrate * frame_ms / 8000` bytes rounded down, 20..400 bytes.
    frame_ms : 10.0 (default) or 7.5.
    channels : 1.
    """

    name: ClassVar[str] = "lc3"
    kind: ClassVar[str] = "legacy"
    sample_rates_hz: ClassVar[tuple[int, ...]] = (8000, 16000, 24000, 32000, 48000)
    bitrates_bps: ClassVar[tuple[int, ...]] = (16000, 24000, 32000, 48000, 64000, 96000, 128000)
    bitrate_range_bps: ClassVar[tuple[int, int]] = (16000, 320000)
    constant_rate: ClassVar[bool] = True
    packet_bytes: int

    def __init__(
        self, *, sample_rate: int = 16000, bitrate: int = 32000, frame_ms: float = 10.0, channels: int = 1
    ) -> None:
        self.sample_rate = self.check_sample_rate(sample_rate)
        self.channels = self.check_channels(channels)
        requested = self.check_bitrate(bitrate)
        if float(frame_ms) not in FRAME_DURATIONS_MS:
            durations = ", ".join(str(ms) for ms in FRAME_DURATIONS_MS)
            raise ParameterError(
                f"lc3: frame_ms={frame_ms} is not an LC3 frame duration; use one of {durations}"
            )
        self.frame_ms = float(frame_ms)
        self.frame_us = round(self.frame_ms * 1000)
        frame_bytes = requested * self.frame_us // (_BITS_PER_BYTE * _US_PER_S)
        if not MIN_FRAME_BYTES <= frame_bytes <= MAX_FRAME_BYTES:
            low = math.ceil(MIN_FRAME_BYTES * _BITS_PER_BYTE * _US_PER_S / self.frame_us)
            raise ParameterError(
                f"lc3: bitrate={bitrate} bit/s gives {frame_bytes}-byte frames at {self.frame_ms} ms; "
                f"LC3 frames hold {MIN_FRAME_BYTES}..{MAX_FRAME_BYTES} bytes, so use at least {low} bit/s"
            )
        self.packet_bytes = frame_bytes
        self.bitrate = math.ceil(frame_bytes * _BITS_PER_BYTE * _US_PER_S / self.frame_us)
        lib = _library()
        self.frame_size = lib.frame_samples(self.frame_us, self.sample_rate)
        self.algorithmic_delay = lib.delay_samples(self.frame_us, self.sample_rate)
        if self.frame_size <= 0 or self.algorithmic_delay < 0:
            raise NsacError(f"lc3: liblc3 does not support {self.frame_ms} ms at {self.sample_rate} Hz")

    @classmethod
    def availability(cls) -> tuple[bool, str]:
        try:
            _library()
        except DependencyError:
            return False, INSTALL_HINT
        return True, ""

    @property
    def deterministic(self) -> bool:
        """Decoding is bit-exact repeatable: liblc3 keeps all state in the stream's own memory."""
        return True

    def stream_encoder(self) -> StreamEncoder:
        return _Lc3StreamEncoder(self)

    def stream_decoder(self) -> StreamDecoder:
        return _Lc3StreamDecoder(self)

    def config(self) -> dict[str, Any]:
        return {"sample_rate": self.sample_rate, "bitrate": self.bitrate, "frame_ms": self.frame_ms}
