"""FreeDV's LPCNet codec (Valin & Skoglund 2019, Rowe's 1733 bit/s quantiser) from libcodec2 1.0 via ctypes.

The library. Debian's libcodec2 1.0 exports the FreeDV API of LPCNet (`lpcnet_freedv_create`, `lpcnet_enc`,
`lpcnet_dec`, ...; codec2 1.0 src/lpcnet_freedv.h). `lpcnet_freedv_create(1)` selects the direct-split VQ
that FreeDV 2020 uses: no prediction across frames, so a lost frame does not corrupt the ones after it. One
frame is 30 ms (480 samples at 16 kHz) of 52 bits, one bit per `char` in the API::

    packet (7 bytes):  [b0 b1 ... b7][b8 ... b15] ... [b48 b49 b50 b51 0 0 0 0]
                        MSB first; the 4 padding bits must be zero

Rate. 52 bits / 30 ms = 1733.3 bit/s (`bitrate` = 1733); on the wire 7 bytes / 30 ms = 1866.7 bit/s.

Delay. 880 samples (55 ms) at 16 kHz. The decoder passes a frame's features on one frame late to interpolate
between frames (480) and its frame-rate network looks two 10 ms subframes ahead (320); the analysis window is
centred on a subframe boundary while a synthesised subframe is centred 80 samples later (80). Measured: the
cross-correlation of band log-energy envelopes between input and output, summed over 30-40 test utterances,
peaks between 848 and 888 samples depending on the envelope's time resolution. LPCNet is generative, so its
waveform does not follow the input's and the alignment holds to about 2 ms, not to a sample.

Loss. The FreeDV API has no concealment. A lost packet (None) repeats the last good frame's bits for up to
`MAX_REPEATED_FRAMES` consecutive losses (the direct-split VQ makes a repeat an exact copy of the features);
longer gaps, or a loss before any good packet, decode the bits of a silent frame, so that LPCNet fades into
its own silence instead of droning.

Repeatability. The encoder adds dither from libc's `rand()` and the decoder samples its excitation from
`nnet_rand`, a generator in a static variable of libcodec2. Every encoder frame reseeds `rand()` from the
frame's index (this reseeds libc's generator for the whole process; nothing in nsac uses it), and each decoder
stream owns its own `nnet_rand` sequence (see `_native.LcgSeed`), so both are bit-exact in any process.
"""

from __future__ import annotations

import ctypes
import functools
import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from nsac.codecs.base import Codec, StreamDecoder, StreamEncoder
from nsac.codecs.legacy._native import (
    GLOBAL_RNG_LOCK,
    LcgSeed,
    NativeState,
    StreamRng,
    bind,
    check_packet,
    float_to_int16,
    int16_to_float,
    load_library,
    pack_bits,
    unpack_bits,
)
from nsac.errors import DependencyError, NsacError, ParameterError

INSTALL_HINT = "apt-get install libcodec2-1.0"
SAMPLE_RATE_HZ = 16000
#: `lpcnet_freedv_create` argument: 1 = direct-split VQ (FreeDV 2020), 0 = predictive VQ
VQ_DIRECT_SPLIT = 1
ALGORITHMIC_DELAY_SAMPLES = 880
#: consecutive lost frames that repeat the last good frame before the decoder is fed a silent frame
MAX_REPEATED_FRAMES = 2
_SONAMES = ("libcodec2.so.1.0", "libcodec2.so.1")
_SYMBOLS = (
    "lpcnet_freedv_create",
    "lpcnet_freedv_destroy",
    "lpcnet_enc",
    "lpcnet_dec",
    "lpcnet_bits_per_frame",
    "lpcnet_samples_per_frame",
)
#: zero frames encoded before the one whose bits conceal long gaps, so the analysis memory is silent too
_SILENCE_WARMUP_FRAMES = 4
#: encoder frame i seeds libc's rand() with this plus i
_DITHER_SEED_BASE = 1


@dataclass(frozen=True)
class _Lib:
    """The bound functions of the FreeDV LPCNet API and libc's srand."""

    create: Any
    destroy: Any
    encode: Any
    decode: Any
    bits_per_frame: int
    samples_per_frame: int
    srand: Any
    nnet_rand_seed: LcgSeed | None


@functools.cache
def _library() -> _Lib:
    lib = load_library("codec2", _SONAMES, _SYMBOLS)
    libc = load_library("c", ("libc.so.6",), ("srand",))
    if lib is None or libc is None:
        raise DependencyError(f"lpcnet-freedv needs libcodec2 1.0 with LPCNet: {INSTALL_HINT}")
    voidp = ctypes.c_void_p
    create = bind(lib, "lpcnet_freedv_create", [ctypes.c_int], voidp)
    destroy = bind(lib, "lpcnet_freedv_destroy", [voidp])
    bits = bind(lib, "lpcnet_bits_per_frame", [voidp], ctypes.c_int)
    samples = bind(lib, "lpcnet_samples_per_frame", [voidp], ctypes.c_int)
    probe = create(VQ_DIRECT_SPLIT)
    if not probe:
        raise NsacError("lpcnet-freedv: lpcnet_freedv_create failed (out of memory?)")
    try:
        n_bits, n_samples = bits(probe), samples(probe)
    finally:
        destroy(probe)
    return _Lib(
        create=create,
        destroy=destroy,
        encode=bind(lib, "lpcnet_enc", [voidp, voidp, voidp]),
        decode=bind(lib, "lpcnet_dec", [voidp, voidp, voidp]),
        bits_per_frame=n_bits,
        samples_per_frame=n_samples,
        srand=bind(libc, "srand", [ctypes.c_uint]),
        nnet_rand_seed=LcgSeed.find(lib, "nnet_rand"),
    )


def _new_state(lib: _Lib) -> NativeState:
    return NativeState(lib.create(VQ_DIRECT_SPLIT), lib.destroy, what="lpcnet-freedv")


class _LpcnetEncoderCore:
    """One native encoder state: 16-bit PCM frames in, 0/1 bit arrays out, dither reseeded per frame."""

    def __init__(self, lib: _Lib) -> None:
        self._lib = lib
        self._state = _new_state(lib)
        self._n_frames = 0

    def encode(self, pcm: np.ndarray) -> np.ndarray:
        if pcm.dtype != np.int16 or pcm.shape != (self._lib.samples_per_frame,) or not pcm.flags.c_contiguous:
            raise NsacError(
                f"lpcnet-freedv: internal error, a frame must be {self._lib.samples_per_frame} int16"
            )
        bits = np.zeros(self._lib.bits_per_frame, dtype=np.int8)
        with GLOBAL_RNG_LOCK:
            self._lib.srand((_DITHER_SEED_BASE + self._n_frames) & 0xFFFFFFFF)
            self._lib.encode(self._state.pointer, pcm.ctypes.data, bits.ctypes.data)
        self._n_frames += 1
        return bits


@functools.cache
def _silent_frame_bits() -> bytes:
    lib = _library()
    encoder = _LpcnetEncoderCore(lib)
    silence = np.zeros(lib.samples_per_frame, dtype=np.int16)
    bits = np.zeros(0, dtype=np.int8)
    for _ in range(_SILENCE_WARMUP_FRAMES):
        bits = encoder.encode(silence)
    return bits.tobytes()


class _LpcnetStreamEncoder(StreamEncoder):
    def __init__(self, codec: LpcnetFreedvCodec) -> None:
        super().__init__(channels=1, frame_size=codec.frame_size, algorithmic_delay=codec.algorithmic_delay)
        self._core = _LpcnetEncoderCore(_library())

    def _encode_frame(self, frame: np.ndarray) -> list[bytes]:
        return [pack_bits(self._core.encode(float_to_int16(frame[0])))]


class _LpcnetStreamDecoder(StreamDecoder):
    def __init__(self, codec: LpcnetFreedvCodec) -> None:
        super().__init__(channels=1)
        self._codec = codec
        self._lib = _library()
        self._state = _new_state(self._lib)
        self._rng = StreamRng(self._lib.nnet_rand_seed)
        self._last_good: bytes | None = None  # one bit per byte, as the API takes them
        self._n_lost_in_row = 0

    def _decode_packet(self, packet: bytes | None) -> np.ndarray:
        if packet is None:
            self._n_lost_in_row += 1
            if self._last_good is not None and self._n_lost_in_row <= MAX_REPEATED_FRAMES:
                bits = self._last_good
            else:
                bits = _silent_frame_bits()
        else:
            data = check_packet(packet, n_bytes=self._codec.packet_bytes, codec="lpcnet-freedv")
            bits = unpack_bits(data, n_bits=self._lib.bits_per_frame, codec="lpcnet-freedv").tobytes()
            self._last_good = bits
            self._n_lost_in_row = 0
        frame = ctypes.create_string_buffer(bits, len(bits))
        pcm = np.zeros(self._lib.samples_per_frame, dtype=np.int16)
        with self._rng.active():
            self._lib.decode(self._state.pointer, frame, pcm.ctypes.data)
        return int16_to_float(pcm)[None, :]


class LpcnetFreedvCodec(Codec):
    """FreeDV's LPCNet: 16 kHz mono speech at 1733 bit/s in 30 ms packets of 7 bytes.

    Parameters
    ----------
    sample_rate : Hz, 16000.
    bitrate : bit/s, 1733 (the codec has one rate).
    channels : 1.
    """

    name: ClassVar[str] = "lpcnet-freedv"
    kind: ClassVar[str] = "legacy"
    sample_rates_hz: ClassVar[tuple[int, ...]] = (SAMPLE_RATE_HZ,)
    bitrates_bps: ClassVar[tuple[int, ...]] = (1733,)
    bitrate_range_bps: ClassVar[tuple[int, int]] = (1733, 1733)
    constant_rate: ClassVar[bool] = True
    packet_bytes: int

    def __init__(self, *, sample_rate: int = SAMPLE_RATE_HZ, bitrate: int = 1733, channels: int = 1) -> None:
        self.sample_rate = self.check_sample_rate(sample_rate)
        self.channels = self.check_channels(channels)
        lib = _library()
        self.frame_size = lib.samples_per_frame
        self.bits_per_frame = lib.bits_per_frame
        self.packet_bytes = math.ceil(lib.bits_per_frame / 8)
        self.bitrate = lib.bits_per_frame * SAMPLE_RATE_HZ // lib.samples_per_frame
        if int(bitrate) != self.bitrate:
            raise ParameterError(
                f"lpcnet-freedv: bitrate={bitrate} bit/s; the codec has one rate, {self.bitrate}"
            )
        self.algorithmic_delay = ALGORITHMIC_DELAY_SAMPLES

    @classmethod
    def availability(cls) -> tuple[bool, str]:
        try:
            _library()
        except (DependencyError, NsacError):
            return False, INSTALL_HINT
        return True, ""

    @property
    def deterministic(self) -> bool:
        """True when decoding is bit-exact repeatable here (the library's generator could be reached)."""
        return _library().nnet_rand_seed is not None

    def stream_encoder(self) -> StreamEncoder:
        return _LpcnetStreamEncoder(self)

    def stream_decoder(self) -> StreamDecoder:
        return _LpcnetStreamDecoder(self)

    def config(self) -> dict[str, Any]:
        return {"sample_rate": self.sample_rate, "bitrate": self.bitrate}
