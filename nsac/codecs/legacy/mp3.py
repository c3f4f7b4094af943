"""MP3 (MPEG-1/2 Layer III) through PyAV: LAME ("libmp3lame") to encode, FFmpeg's "mp3float" to decode, CBR.

Frames hold 1152 samples at 32, 44.1 and 48 kHz (MPEG-1) and 576 at 16, 22.05 and 24 kHz (MPEG-2); each
packet is one whole MP3 frame, header included.

Delay. LAME's encoder delay (576 samples) plus the decoder's filterbank delay (528 + 1) put the input's
first sample at output sample 1105, at every sample rate; `decode` drops those.

Loss. A lost packet (None) is output as one frame of zeros and is not given to the decoder. Layer III frames
borrow bytes from earlier frames (the bit reservoir), so the frames after a loss may point back into bytes
that never came: FFmpeg rebuilds what it can of them, and the filterbank's memory of the frame before the
loss spills into the frame after it. Measured at 16 kHz and 32 kb/s: the three frames after a loss differ
from a clean decode, the fourth matches it again; no error is raised.

Rate. CBR: the bitrate must be one the MPEG version of the sample rate defines. Every packet has the same
size except at 22.05 and 44.1 kHz, where a padding byte comes and goes to keep the average exact.

Corruption. Before decoding, a packet's length must match the frame length its header declares
(header layout below, ISO/IEC 11172-3 2.4.1.3), which catches truncated and run-together packets, and the
decoder's errors become BitstreamError. Damage inside a well-formed frame goes undetected (Layer III has
an optional CRC over the side information only, which LAME does not write)::

    AAAAAAAA AAABBCCD EEEEFFGH ........    A sync (all ones)   B version (3 = MPEG-1, 2 = MPEG-2)
                                           C layer (1 = III)   D no CRC   E bitrate index (1..14)
                                           F sample rate index G padding (one extra byte)
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from nsac.codecs.base import Codec, StreamDecoder, StreamEncoder
from nsac.codecs.legacy._pyav import FfmpegDecoder, FfmpegEncoder, pyav_availability
from nsac.errors import BitstreamError, ParameterError

_ENCODER = "libmp3lame"
_DECODER = "mp3float"
#: LAME's encoder delay plus the decoder's 528 + 1 samples, in samples
DELAY_SAMPLES = 576 + 528 + 1
_MPEG1_RATES_HZ = (32000, 44100, 48000)
_MPEG1_BITRATES_BPS = (
    32000,
    40000,
    48000,
    56000,
    64000,
    80000,
    96000,
    112000,
    128000,
    160000,
    192000,
    224000,
    256000,
    320000,
)
_MPEG2_BITRATES_BPS = (
    8000,
    16000,
    24000,
    32000,
    40000,
    48000,
    56000,
    64000,
    80000,
    96000,
    112000,
    128000,
    144000,
    160000,
)
_MPEG1_FRAME_SAMPLES = 1152
_MPEG2_FRAME_SAMPLES = 576
_BITS_PER_BYTE = 8
#: sample rates by header index, per version field value
_HEADER_RATES_HZ = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000)}
#: bitrates by header index 1..14, per version field value
_HEADER_BITRATES_BPS = {3: _MPEG1_BITRATES_BPS, 2: _MPEG2_BITRATES_BPS}
_HEADER_BYTES = 4
_LAYER_III = 1


def layer3_frame_bytes(packet: bytes) -> tuple[int, int] | None:
    """Return (sample rate in Hz, frame length in bytes) from a Layer III frame header; None if not one."""
    if len(packet) < _HEADER_BYTES:
        return None
    header = int.from_bytes(packet[:_HEADER_BYTES], "big")
    sync, version, layer = header >> 21, (header >> 19) & 0x3, (header >> 17) & 0x3
    bitrate_index, rate_index, padding = (header >> 12) & 0xF, (header >> 10) & 0x3, (header >> 9) & 0x1
    if sync != 0x7FF or version not in _HEADER_RATES_HZ or layer != _LAYER_III:
        return None
    if not 1 <= bitrate_index <= len(_HEADER_BITRATES_BPS[version]) or rate_index == 3:
        return None
    sample_rate = _HEADER_RATES_HZ[version][rate_index]
    frame_samples = _MPEG1_FRAME_SAMPLES if version == 3 else _MPEG2_FRAME_SAMPLES
    bitrate = _HEADER_BITRATES_BPS[version][bitrate_index - 1]
    return sample_rate, frame_samples * bitrate // (_BITS_PER_BYTE * sample_rate) + padding


class _Mp3StreamDecoder(FfmpegDecoder):
    """FFmpeg's MP3 decoder, refusing a packet that is not exactly one Layer III frame at the codec's rate."""

    def __init__(self, *, sample_rate: int, channels: int, frame_size: int) -> None:
        super().__init__(
            codec_name=_DECODER,
            label="mp3",
            sample_rate=sample_rate,
            channels=channels,
            frame_size=frame_size,
        )
        self._sample_rate = sample_rate

    def _decode_bytes(self, packet: bytes) -> np.ndarray:
        parsed = layer3_frame_bytes(packet)
        if parsed != (self._sample_rate, len(packet)):
            found = "no Layer III header" if parsed is None else f"a {parsed[1]}-byte frame at {parsed[0]} Hz"
            raise BitstreamError(
                f"mp3: corrupt packet of {len(packet)} bytes: expected one whole Layer III frame at "
                f"{self._sample_rate} Hz, found {found}"
            )
        return super()._decode_bytes(packet)


class Mp3Codec(Codec):
    """MP3 at 16-48 kHz, mono or stereo, 8-320 kb/s CBR, one frame per packet.

    Parameters
    ----------
    sample_rate : Hz, one of `sample_rates_hz`.
    bitrate : bit/s, one of the Layer III rates of the sample rate's MPEG version (32000..320000 for
        32-48 kHz, 8000..160000 for 16-24 kHz).
    channels : 1 or 2 (joint stereo).
    """

    name: ClassVar[str] = "mp3"
    sample_rates_hz: ClassVar[tuple[int, ...]] = (16000, 22050, 24000, 32000, 44100, 48000)
    bitrates_bps: ClassVar[tuple[int, ...]] = (32000, 64000, 96000, 128000)
    bitrate_range_bps: ClassVar[tuple[int, int]] = (8000, 320000)
    constant_rate: ClassVar[bool] = True

    def __init__(self, *, sample_rate: int = 48000, bitrate: int = 128000, channels: int = 1) -> None:
        self.sample_rate = self.check_sample_rate(sample_rate)
        self.channels = self.check_channels(channels, max_channels=2)
        self.bitrate = self.check_bitrate(bitrate)
        mpeg1 = self.sample_rate in _MPEG1_RATES_HZ
        allowed = _MPEG1_BITRATES_BPS if mpeg1 else _MPEG2_BITRATES_BPS
        if self.bitrate not in allowed:
            raise ParameterError(
                f"mp3: bitrate={bitrate} bit/s is not a Layer III rate at {self.sample_rate} Hz; "
                f"use one of {', '.join(str(b) for b in allowed)}"
            )
        self.frame_size = _MPEG1_FRAME_SAMPLES if mpeg1 else _MPEG2_FRAME_SAMPLES
        self.algorithmic_delay = DELAY_SAMPLES
        frame_bits = self.frame_size * self.bitrate
        whole_bytes = frame_bits % (self.sample_rate * _BITS_PER_BYTE) == 0
        self.packet_bytes = frame_bits // (self.sample_rate * _BITS_PER_BYTE) if whole_bytes else None

    @classmethod
    def availability(cls) -> tuple[bool, str]:
        return pyav_availability(_ENCODER, _DECODER)

    def stream_encoder(self) -> StreamEncoder:
        return FfmpegEncoder(
            codec_name=_ENCODER,
            sample_rate=self.sample_rate,
            channels=self.channels,
            bitrate=self.bitrate,
            frame_size=self.frame_size,
            algorithmic_delay=self.algorithmic_delay,
            sample_format="fltp",
        )

    def stream_decoder(self) -> StreamDecoder:
        return _Mp3StreamDecoder(
            sample_rate=self.sample_rate, channels=self.channels, frame_size=self.frame_size
        )

    def config(self) -> dict[str, Any]:
        return {"sample_rate": self.sample_rate, "bitrate": self.bitrate, "channels": self.channels}
