"""AAC-LC through FFmpeg's native "aac" encoder and decoder (PyAV), in 1024-sample frames of raw AAC.

Delay. The encoder primes with one frame: the decoder's first 1024 output samples come before the first
input sample, so `algorithmic_delay = 1024` at every sample rate, and `decode` drops them.

Loss. A lost packet (None) is output as 1024 samples of zeros and is not given to the decoder, which keeps
its state: the next frame overlap-adds with the last frame received, and from the one after on the output
is back to what it would have been (up to PNS noise). FFmpeg's AAC decoder has no concealment of its own.

Rate. FFmpeg's encoder aims at an average rate: on 3-4 s of speech at 48 kHz it spent 97-107% of the
nominal rate, packets varying in size. It cannot spend much more than 3 bit per sample and channel, so
bitrates above `3 * sample_rate * channels` are refused rather than silently missed (asked for 128 kb/s
mono at 16 kHz, it spends 72 kb/s).
"""

from __future__ import annotations

from typing import Any, ClassVar

from nsac.codecs.base import Codec, StreamDecoder, StreamEncoder
from nsac.codecs.legacy._pyav import FfmpegDecoder, FfmpegEncoder, pyav_availability
from nsac.errors import ParameterError

_ENCODER = "aac"
_DECODER = "aac"
FRAME_SIZE_SAMPLES = 1024
#: the encoder's priming, in samples
ENCODER_DELAY_SAMPLES = 1024
#: past this the encoder falls well short of the nominal rate
MAX_BITS_PER_SAMPLE_PER_CHANNEL = 3


class AacCodec(Codec):
    """AAC-LC at 16-48 kHz, mono or stereo, 16-320 kb/s (average), in 1024-sample packets.

    Parameters
    ----------
    sample_rate : Hz, one of `sample_rates_hz`.
    bitrate : nominal bit/s, 16000..320000 and at most 3 bit per sample and channel.
    channels : 1 or 2.
    """

    name: ClassVar[str] = "aac"
    sample_rates_hz: ClassVar[tuple[int, ...]] = (16000, 22050, 24000, 32000, 44100, 48000)
    bitrates_bps: ClassVar[tuple[int, ...]] = (32000, 64000, 96000, 128000)
    bitrate_range_bps: ClassVar[tuple[int, int]] = (16000, 320000)
    constant_rate: ClassVar[bool] = False

    def __init__(self, *, sample_rate: int = 48000, bitrate: int = 64000, channels: int = 1) -> None:
        self.sample_rate = self.check_sample_rate(sample_rate)
        self.channels = self.check_channels(channels, max_channels=2)
        self.bitrate = self.check_bitrate(bitrate)
        max_bitrate = MAX_BITS_PER_SAMPLE_PER_CHANNEL * self.sample_rate * self.channels
        if self.bitrate > max_bitrate:
            raise ParameterError(
                f"aac: bitrate={bitrate} bit/s is more than FFmpeg's encoder spends at {self.sample_rate} Hz "
                f"with {self.channels} channel(s) ({max_bitrate} bit/s); lower it or raise the sample rate"
            )
        self.frame_size = FRAME_SIZE_SAMPLES
        self.algorithmic_delay = ENCODER_DELAY_SAMPLES

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
        return FfmpegDecoder(
            codec_name=_DECODER,
            label=self.name,
            sample_rate=self.sample_rate,
            channels=self.channels,
            frame_size=self.frame_size,
        )

    def config(self) -> dict[str, Any]:
        return {"sample_rate": self.sample_rate, "bitrate": self.bitrate, "channels": self.channels}
