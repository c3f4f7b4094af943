"""The `mdct` codec class: a perceptual transform codec (MDCT, masking model, NMR allocation, range coding).

Mono or stereo (mid/side per frame), 16 to 48 kHz, 16 to 256 kb/s at a constant rate with a bit reservoir.
The parts: frame geometry, bands and delay (:mod:`.framing`), the encoder (:mod:`.encoder`), the allocation
loop and reservoir (:mod:`.allocation`), quantization (:mod:`.quantizer`), entropy coding
(:mod:`.coefficient_coding`), the packet (:mod:`.bitstream`), mid/side (:mod:`.stereo`), the decoder
(:mod:`.decoder`), and the synthetic test signals it was tuned on (:mod:`.signals`).

Rate. The reservoir counts every packet's bytes plus the .nsac container's length prefix (1 byte below 127
bytes, 2 below 16383) and credits bits per input sample: over a stream the file spends the input duration
times the bitrate, the packets alone one to two percent less (the prefixes). What a frame cannot use
(digital silence, bands at the finest step) is stuffed with zero words, so even silence keeps the rate.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, ClassVar

from nsac.codecs.base import Codec, StreamDecoder, StreamEncoder
from nsac.codecs.mdct.allocation import AllocationTuning
from nsac.codecs.mdct.bitstream import BITSTREAM_VERSION
from nsac.codecs.mdct.decoder import MdctStreamDecoder
from nsac.codecs.mdct.encoder import MdctStreamEncoder
from nsac.codecs.mdct.framing import SAMPLE_RATES_HZ, geometry
from nsac.errors import ParameterError, VersionError


class MdctCodec(Codec):
    """The mdct codec at 16-48 kHz, mono or stereo, 16-256 kb/s, one packet per MDCT hop.

    Parameters
    ----------
    sample_rate : Hz, one of `sample_rates_hz`.
    bitrate : bit/s, 16000..256000 (the whole stream, all channels).
    channels : 1 or 2 (stereo is coded as L/R or M/S, chosen per frame).
    window_switching : switch to eight short blocks around transients (True) or code long blocks only.
    version : the bitstream version the packets follow; only `BITSTREAM_VERSION` is understood.
    """

    name: ClassVar[str] = "mdct"
    kind: ClassVar[str] = "model"
    sample_rates_hz: ClassVar[tuple[int, ...]] = SAMPLE_RATES_HZ
    bitrates_bps: ClassVar[tuple[int, ...]] = (16000, 32000, 64000, 96000, 128000, 256000)
    bitrate_range_bps: ClassVar[tuple[int, int]] = (16000, 256000)
    constant_rate: ClassVar[bool] = False

    def __init__(self, *, sample_rate: int = 48000, bitrate: int = 64000, channels: int = 1,
                 window_switching: bool = True, version: int = BITSTREAM_VERSION) -> None:
        if version != BITSTREAM_VERSION:
            raise VersionError(f"mdct: bitstream version {version!r} is not readable by this nsac (reads "
                               f"{BITSTREAM_VERSION}); use the nsac that wrote it")
        if not isinstance(window_switching, bool):
            raise ParameterError(f"mdct: window_switching={window_switching!r} must be true or false")
        self.sample_rate = self.check_sample_rate(sample_rate)
        self.channels = self.check_channels(channels, max_channels=2)
        self.bitrate = self.check_bitrate(bitrate)
        self.window_switching = window_switching
        self.geometry = geometry(self.sample_rate, self.bitrate // self.channels)
        self.frame_size = self.geometry.n_bins
        self.algorithmic_delay = self.geometry.delay
        self.tuning = AllocationTuning()
        """Encoder-only knobs; replace with `dataclasses.replace(codec.tuning, ...)` to experiment."""

    def with_tuning(self, **changes: Any) -> MdctCodec:
        """This codec with some encoder knobs changed (the bitstream and the decoder are unaffected)."""
        other = MdctCodec(**self.config())
        other.tuning = replace(self.tuning, **changes)
        return other

    def stream_encoder(self) -> StreamEncoder:
        return MdctStreamEncoder(geometry=self.geometry, channels=self.channels, bitrate=self.bitrate,
                                 window_switching=self.window_switching, tuning=self.tuning)

    def stream_decoder(self) -> StreamDecoder:
        return MdctStreamDecoder(geometry=self.geometry, channels=self.channels)

    def config(self) -> dict[str, Any]:
        return {"sample_rate": self.sample_rate, "bitrate": self.bitrate, "channels": self.channels,
                "window_switching": self.window_switching, "version": BITSTREAM_VERSION}


__all__ = ["MdctCodec"]
