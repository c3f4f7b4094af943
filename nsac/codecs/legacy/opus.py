"""Opus (RFC 6716) through PyAV's libopus encoder and decoder: 20 ms packets, VBR or CBR, libopus PLC.

Delay. The encoder looks ahead 6.5 ms ("voip", "audio") or 2.5 ms ("lowdelay", CELT only). FFmpeg's Opus
decoders only produce 48 kHz, so for the other rates the decoder's output goes through a causal FIR
decimator that adds `DECIMATOR_DELAY_SAMPLES` (16) samples at the codec rate::

    algorithmic_delay = lookahead_ms * sample_rate / 1000 + (16 if sample_rate != 48000 else 0)
    e.g. voip at 16 kHz: 104 + 16 = 120 samples (7.5 ms); voip at 48 kHz: 312 samples (6.5 ms)

Loss. A lost packet (None) is replaced by a one-byte packet, the TOC byte of the last packet received with
its frame-count code set to 0: one frame of zero length, which libopus takes for a lost (or DTX) frame
and conceals with its own PLC, as it would a NULL packet. PyAV cannot pass libopus a NULL packet: to
FFmpeg an empty packet means end of stream. In-band FEC is not used: it needs the next packet
before the lost one is played, one frame more delay.

Rate. "voip" and "audio" run constrained VBR. On 3-4 s speech clips, counting the delay padding, it spent
81-96% of the nominal rate at 6 kb/s and at most +2% (16 kHz) or +4% (48 kHz, hybrid mode) at the other
listed rates; over 30 s, at most +2%. "lowdelay" runs CBR, exactly the nominal rate, because CELT alone in
constrained VBR overshoots by about one byte per packet (+7% at 6 kb/s). Packets vary in size under VBR,
so `constant_rate = False`.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from nsac.codecs.base import Codec, StreamDecoder, StreamEncoder
from nsac.codecs.legacy._pyav import (
    DECIMATOR_DELAY_SAMPLES,
    OPUS_DECODER_RATE_HZ,
    FfmpegDecoder,
    FfmpegEncoder,
    pyav_availability,
    samples_for_ms,
)
from nsac.errors import ParameterError

_ENCODER = "libopus"
_DECODER = "libopus"
FRAME_MS = 20
#: encoder lookahead per application, in ms (libopus: 2.5 ms of CELT overlap, plus 4 ms for SILK modes)
LOOKAHEAD_MS: dict[str, float] = {"voip": 6.5, "audio": 6.5, "lowdelay": 2.5}
#: libopus rate control per application: constrained VBR, except CBR where CVBR overshoots (see above)
VBR_MODE: dict[str, str] = {"voip": "constrained", "audio": "constrained", "lowdelay": "off"}
VBR_CHOICES = ("constrained", "on", "off")
#: libopus refuses more than this per channel
MAX_BITRATE_PER_CHANNEL_BPS = 256_000
#: TOC of a lost first packet, before any TOC was seen: config 1 (SILK narrowband, 20 ms), code 0
_FIRST_LOSS_TOC = 0x08
#: the TOC bits that select the frame-count code; 0 means one frame
_TOC_CODE_MASK = 0x03
_TOC_STEREO_FLAG = 0x04


class _OpusStreamDecoder(FfmpegDecoder):
    """The libopus decoder, concealing a lost packet with libopus's PLC through a zero-length frame."""

    def __init__(self, *, sample_rate: int, channels: int, frame_size: int) -> None:
        super().__init__(
            codec_name=_DECODER,
            label="opus",
            sample_rate=sample_rate,
            channels=channels,
            frame_size=frame_size,
            decoder_rate=OPUS_DECODER_RATE_HZ,
            options={"request_sample_fmt": "flt"},
        )
        self._toc = _FIRST_LOSS_TOC | (_TOC_STEREO_FLAG if channels == 2 else 0)

    def _decode_bytes(self, packet: bytes) -> np.ndarray:
        audio = super()._decode_bytes(packet)
        self._toc = packet[0] & ~_TOC_CODE_MASK
        return audio

    def _conceal(self) -> np.ndarray:
        return super()._decode_bytes(bytes([self._toc]))


class OpusCodec(Codec):
    """Opus at 8-48 kHz, mono or stereo, 6-510 kb/s, in 20 ms packets.

    Parameters
    ----------
    sample_rate : Hz, one of `sample_rates_hz`.
    bitrate : nominal bit/s, 6000..510000 and at most 256000 per channel (what VBR spends: module docstring).
    channels : 1 or 2.
    application : "voip" (speech, default), "audio" (music) or "lowdelay" (CELT only, 2.5 ms lookahead).
    vbr : libopus rate control, "constrained", "on" or "off" (CBR: every packet the same size, which the
        .nsac container stores without a length per packet); default: the application's entry in VBR_MODE.
    """

    name: ClassVar[str] = "opus"
    sample_rates_hz: ClassVar[tuple[int, ...]] = (8000, 12000, 16000, 24000, 48000)
    bitrates_bps: ClassVar[tuple[int, ...]] = (6000, 8000, 12000, 16000, 24000, 32000, 64000, 128000)
    bitrate_range_bps: ClassVar[tuple[int, int]] = (6000, 510000)
    constant_rate: ClassVar[bool] = False
    applications: ClassVar[tuple[str, ...]] = tuple(LOOKAHEAD_MS)

    def __init__(
        self,
        *,
        sample_rate: int = 16000,
        bitrate: int = 16000,
        channels: int = 1,
        application: str = "voip",
        vbr: str | None = None,
    ) -> None:
        self.sample_rate = self.check_sample_rate(sample_rate)
        self.channels = self.check_channels(channels, max_channels=2)
        self.bitrate = self.check_bitrate(bitrate)
        max_bitrate = MAX_BITRATE_PER_CHANNEL_BPS * self.channels
        if self.bitrate > max_bitrate:
            raise ParameterError(
                f"opus: bitrate={bitrate} bit/s is above {max_bitrate} bit/s, "
                f"the most libopus codes for {self.channels} channel(s)"
            )
        if application not in LOOKAHEAD_MS:
            raise ParameterError(
                f"opus: application={application!r} is unknown; use one of {', '.join(LOOKAHEAD_MS)}"
            )
        self.application = application
        if vbr is not None and vbr not in VBR_CHOICES:
            raise ParameterError(f"opus: vbr={vbr!r} is unknown; use one of {', '.join(VBR_CHOICES)}")
        self.vbr = VBR_MODE[application] if vbr is None else vbr
        self.constant_rate = self.vbr == "off"
        self.frame_size = samples_for_ms(FRAME_MS, self.sample_rate)
        decimator_delay = DECIMATOR_DELAY_SAMPLES if self.sample_rate != OPUS_DECODER_RATE_HZ else 0
        self.algorithmic_delay = samples_for_ms(LOOKAHEAD_MS[application], self.sample_rate) + decimator_delay

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
            sample_format="flt",
            options={
                "application": self.application,
                "vbr": self.vbr,
                "frame_duration": str(FRAME_MS),
            },
        )

    def stream_decoder(self) -> StreamDecoder:
        return _OpusStreamDecoder(
            sample_rate=self.sample_rate, channels=self.channels, frame_size=self.frame_size
        )

    def config(self) -> dict[str, Any]:
        return {
            "sample_rate": self.sample_rate,
            "bitrate": self.bitrate,
            "channels": self.channels,
            "application": self.application,
            # left out at its default so that files written before the option existed stay byte-identical
            **({"vbr": self.vbr} if self.vbr != VBR_MODE[self.application] else {}),
        }
