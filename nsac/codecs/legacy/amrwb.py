"""AMR-WB (3GPP TS 26.190, 6.6-23.85 kbit/s wideband speech): vo-amrwbenc and opencore-amrwb via ctypes.

Packets are the speech bits of a storage-format frame (RFC 4867 section 5.3; 3GPP TS 26.201) padded to
whole bytes, without the frame's table-of-contents byte::

    storage frame:  ToC | speech bits, ceil(bits_of_mode / 8) bytes
    ToC:            | P | FT (4 bits) | Q | P P |    P = 0 padding, FT = mode 0..8, Q = 1 for a good frame
    packet:         the speech bytes only, e.g. 23.85 kbit/s: 477 bits -> 60 bytes

Every packet of a stream has the configured mode (no DTX), which the .nsac header already carries, so the
ToC would repeat it in every packet (one byte in 20 ms, 0.4 kbit/s): the encoder drops it and the decoder
puts back the ToC of a good frame of the stream's mode before handing a frame of checked size to C.

Delay. 95 samples (5.9 ms) at 16 kHz: the encoder's 5 ms lookahead plus the 12.8 <-> 16 kHz resampling
filters. Measured: the cross-correlation of input and output peaks at lag 94 in every mode, while the phase
slope of the cross-spectrum over 300-3400 Hz, where speech has its energy, puts it at 95.2-96 (the filters'
group delay is not flat); 95 leaves the decoded speech within a sample of the input across that band.

Loss. A lost packet (None) is decoded with the bad-frame indicator set, which opencore turns into a NO_DATA
frame: the decoder's own concealment (TS 26.191) extrapolates the last good parameters and mutes over time.
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
    NativeState,
    bind,
    check_packet,
    float_to_int16,
    int16_to_float,
    load_library,
)
from nsac.errors import BitstreamError, DependencyError, NsacError, ParameterError

INSTALL_HINT = "apt-get install libvo-amrwbenc0 libopencore-amrwb0"
SAMPLE_RATE_HZ = 16000
FRAME_SAMPLES = 320  # 20 ms
ALGORITHMIC_DELAY_SAMPLES = 95
#: bit/s of modes 0..8 (TS 26.190 table 1); the index is the mode, FT in the ToC
MODE_BITRATES_BPS = (6600, 8850, 12650, 14250, 15850, 18250, 19850, 23050, 23850)
#: speech bits per frame of modes 0..8 (TS 26.201 table 2)
MODE_SPEECH_BITS = (132, 177, 253, 285, 317, 365, 397, 461, 477)
_TOC_BYTES = 1
_TOC_QUALITY_BIT = 0x04
_TOC_FRAME_TYPE_SHIFT = 3
_FRAME_TYPE_NO_DATA = 15
#: the encoder writes at most 61 bytes; its output buffer gets headroom all the same
_ENCODER_BUFFER_BYTES = 128
_ENCODER_SONAMES = ("libvo-amrwbenc.so.0",)
_DECODER_SONAMES = ("libopencore-amrwb.so.0",)


@dataclass(frozen=True)
class _Lib:
    """The bound functions of enc_if.h (vo-amrwbenc) and dec_if.h (opencore-amrwb)."""

    encoder_init: Any
    encode: Any
    encoder_exit: Any
    decoder_init: Any
    decode: Any
    decoder_exit: Any


@functools.cache
def _library() -> _Lib:
    enc = load_library("vo-amrwbenc", _ENCODER_SONAMES, ("E_IF_init", "E_IF_encode", "E_IF_exit"))
    dec = load_library("opencore-amrwb", _DECODER_SONAMES, ("D_IF_init", "D_IF_decode", "D_IF_exit"))
    if enc is None or dec is None:
        raise DependencyError(f"amrwb needs libvo-amrwbenc and libopencore-amrwb: {INSTALL_HINT}")
    voidp = ctypes.c_void_p
    return _Lib(
        encoder_init=bind(enc, "E_IF_init", [], voidp),
        encode=bind(enc, "E_IF_encode", [voidp, ctypes.c_int, voidp, voidp, ctypes.c_int], ctypes.c_int),
        encoder_exit=bind(enc, "E_IF_exit", [voidp]),
        decoder_init=bind(dec, "D_IF_init", [], voidp),
        decode=bind(dec, "D_IF_decode", [voidp, voidp, voidp, ctypes.c_int]),
        decoder_exit=bind(dec, "D_IF_exit", [voidp]),
    )


def packet_bytes_of_mode(mode: int) -> int:
    """Bytes of a packet of `mode`: the speech bits of a storage-format frame, without its ToC byte."""
    return math.ceil(MODE_SPEECH_BITS[mode] / 8)


class _AmrWbStreamEncoder(StreamEncoder):
    def __init__(self, codec: AmrWbCodec) -> None:
        super().__init__(channels=1, frame_size=FRAME_SAMPLES, algorithmic_delay=codec.algorithmic_delay)
        self._lib = _library()
        self._state = NativeState(self._lib.encoder_init(), self._lib.encoder_exit, what="amrwb encoder")
        self._mode = codec.mode
        self._packet_bytes = codec.packet_bytes

    def _encode_frame(self, frame: np.ndarray) -> list[bytes]:
        pcm = float_to_int16(frame[0])
        out = (ctypes.c_ubyte * _ENCODER_BUFFER_BYTES)()
        n_bytes = self._lib.encode(self._state.pointer, self._mode, pcm.ctypes.data, out, 0)
        if n_bytes != _TOC_BYTES + self._packet_bytes:
            raise NsacError(
                f"amrwb: the encoder wrote {n_bytes} bytes in mode {self._mode}, expected "
                f"{_TOC_BYTES + self._packet_bytes}; this libvo-amrwbenc build is incompatible"
            )
        return [bytes(out[_TOC_BYTES:n_bytes])]


class _AmrWbStreamDecoder(StreamDecoder):
    def __init__(self, codec: AmrWbCodec) -> None:
        super().__init__(channels=1)
        self._lib = _library()
        self._state = NativeState(self._lib.decoder_init(), self._lib.decoder_exit, what="amrwb decoder")
        self._mode = codec.mode
        self._packet_bytes = codec.packet_bytes
        self._good_toc = (codec.mode << _TOC_FRAME_TYPE_SHIFT) | _TOC_QUALITY_BIT
        # the speech bits fill the packet from its first bit; the low bits of the last byte are padding
        self._padding_mask = (1 << (8 * codec.packet_bytes - MODE_SPEECH_BITS[codec.mode])) - 1
        # a lost frame: a NO_DATA ToC, with room for the longest frame in case a decoder reads past the ToC
        self._lost = bytes([_FRAME_TYPE_NO_DATA << _TOC_FRAME_TYPE_SHIFT]) + bytes(packet_bytes_of_mode(8))

    def _decode_packet(self, packet: bytes | None) -> np.ndarray:
        if packet is None:
            data, bad_frame = self._lost, 1
        else:
            speech = check_packet(packet, n_bytes=self._packet_bytes, codec="amrwb")
            if speech[-1] & self._padding_mask:
                raise BitstreamError("amrwb: the padding bits of the packet are not zero; the packet is corrupt")
            data, bad_frame = bytes([self._good_toc]) + speech, 0
        pcm = np.zeros(FRAME_SAMPLES, dtype=np.int16)
        self._lib.decode(self._state.pointer, data, pcm.ctypes.data, bad_frame)
        return int16_to_float(pcm)[None, :]


class AmrWbCodec(Codec):
    """AMR-WB: 16 kHz mono speech at 6.6-23.85 kbit/s in 20 ms packets.

    Parameters
    ----------
    sample_rate : Hz, 16000.
    bitrate : bit/s, one of the nine modes in `bitrates_bps`.
    channels : 1.
    """

    name: ClassVar[str] = "amrwb"
    kind: ClassVar[str] = "legacy"
    sample_rates_hz: ClassVar[tuple[int, ...]] = (SAMPLE_RATE_HZ,)
    bitrates_bps: ClassVar[tuple[int, ...]] = MODE_BITRATES_BPS
    bitrate_range_bps: ClassVar[tuple[int, int]] = (MODE_BITRATES_BPS[0], MODE_BITRATES_BPS[-1])
    constant_rate: ClassVar[bool] = True
    packet_bytes: int

    def __init__(self, *, sample_rate: int = SAMPLE_RATE_HZ, bitrate: int = 23850, channels: int = 1) -> None:
        self.sample_rate = self.check_sample_rate(sample_rate)
        self.channels = self.check_channels(channels)
        if int(bitrate) not in MODE_BITRATES_BPS:
            rates = ", ".join(str(rate) for rate in MODE_BITRATES_BPS)
            raise ParameterError(f"amrwb: bitrate={bitrate} bit/s is not an AMR-WB mode; use one of {rates}")
        self.bitrate = int(bitrate)
        self.mode = MODE_BITRATES_BPS.index(self.bitrate)
        self.frame_size = FRAME_SAMPLES
        self.packet_bytes = packet_bytes_of_mode(self.mode)
        self.algorithmic_delay = ALGORITHMIC_DELAY_SAMPLES

    @classmethod
    def availability(cls) -> tuple[bool, str]:
        try:
            _library()
        except DependencyError:
            return False, INSTALL_HINT
        return True, ""

    @property
    def deterministic(self) -> bool:
        """Decoding is bit-exact repeatable: the library keeps all state in the stream's own objects."""
        return True

    def stream_encoder(self) -> StreamEncoder:
        return _AmrWbStreamEncoder(self)

    def stream_decoder(self) -> StreamDecoder:
        return _AmrWbStreamDecoder(self)

    def config(self) -> dict[str, Any]:
        return {"sample_rate": self.sample_rate, "bitrate": self.bitrate}
