"""Codec 2 (David Rowe's sinusoidal low-rate speech codec, 700-3200 bit/s) through pycodec2, at 8 or 16 kHz.

Rate. One packet per codec frame: 20 ms at 3200 and 2400 bit/s, 40 ms at the lower rates. A frame's bits are
written into whole bytes, so 1300 (52 bits) and 700C (28 bits) carry 4 zero padding bits per packet: on the
wire 1400 and 800 bit/s. `bitrate` is the codec's own rate (bits per frame / frame duration); the padding bits
must be zero, which catches most corrupt packets (no other check is possible: every bit pattern decodes).

Sample rate. Codec 2 runs at 8 kHz; at 16 kHz the adapter resamples to 8 kHz before encoding and back after
decoding with soxr's streaming resampler (HQ). soxr keeps its output aligned in time with its input, so
resampling adds no delay to the output timeline; but it releases samples in bursts of about 100 ms, which a
real-time user would add to the latency (each way), and the rest at flush.

Delay. Codec 2 does not transmit phase, so delay cannot be read off a waveform; it was measured as the peak of
the cross-correlation of band log-energy envelopes between input and output, summed over 40 test utterances:
120 samples at 8 kHz for the LSP/LPC modes (100-140 depending on mode and envelope resolution) and 224 for
700C (its rate-K vector quantiser and post filter smear more). At 16 kHz the delay doubles.

Loss. Codec 2 has no concealment. A lost packet (None) repeats the last good frame's bits with the output
faded linearly to silence over `LOSS_FADE_MS` of consecutive losses; a loss before any good packet is silence.

Repeatability. Codec 2 draws the phases of unvoiced harmonics from a generator that is a static variable of
the C library (`codec2_rand`), shared by the whole process; each decoder stream here owns its own draw
sequence (see `_native.LcgSeed`), so decoding is bit-exact in any process and in any order of streams.
"""

from __future__ import annotations

import ctypes
import functools
import glob
import os
from types import ModuleType
from typing import Any, ClassVar

import numpy as np

from nsac.codecs.base import Codec, StreamDecoder, StreamEncoder
from nsac.codecs.legacy._native import (
    GLOBAL_RNG_LOCK,
    LcgSeed,
    StreamRng,
    check_packet,
    float_to_int16,
    int16_to_float,
    load_library,
    unpack_bits,
)
from nsac.errors import DependencyError, ParameterError

INSTALL_HINT = "pip install pycodec2"
CODEC2_RATE_HZ = 8000
#: registry mode names by bitrate in bit/s; pycodec2 selects a mode by these bitrates
MODE_BY_BITRATE: dict[int, str] = {
    3200: "3200",
    2400: "2400",
    1600: "1600",
    1400: "1400",
    1300: "1300",
    1200: "1200",
    700: "700C",
}
#: measured delay at 8 kHz in samples (see the module docstring)
DELAY_8K_SAMPLES: dict[str, int] = {mode: 120 for mode in MODE_BY_BITRATE.values()} | {"700C": 224}
#: consecutive lost packets fade to silence over this time
LOSS_FADE_MS = 60.0
_RESAMPLER_QUALITY = "HQ"
#: any seed: decoding one frame from it must move it when pycodec2 draws from that copy of the generator
_PROBE_SEED = 1


def _pycodec2() -> ModuleType:
    try:
        import pycodec2
    except ImportError as exc:
        raise DependencyError(f"codec2 needs pycodec2: {INSTALL_HINT} ({exc})") from None
    return pycodec2


@functools.cache
def _codec2_rand_seed() -> LcgSeed | None:
    """The seed of `codec2_rand` in the libcodec2 that pycodec2 runs, or None where it cannot be reached."""
    pycodec2 = _pycodec2()
    # wheels carry their own libcodec2 next to the package (auditwheel); source builds link the system one
    candidates: list[str] = []
    if pycodec2.__file__:
        package_dir = os.path.dirname(os.path.abspath(pycodec2.__file__))
        candidates = sorted(glob.glob(os.path.join(package_dir, os.pardir, "pycodec2.libs", "libcodec2*")))
    for path in candidates:
        try:
            seed = LcgSeed.find(ctypes.CDLL(path), "codec2_rand")
        except OSError:
            continue
        if seed is not None and _drives_pycodec2(seed):
            return seed
    system = load_library("codec2")
    if system is not None:
        seed = LcgSeed.find(system, "codec2_rand")
        if seed is not None and _drives_pycodec2(seed):
            return seed
    return None


def _drives_pycodec2(seed: LcgSeed) -> bool:
    """True when decoding with pycodec2 draws from `seed` (it is the copy of libcodec2 that pycodec2 runs)."""
    state = _pycodec2().Codec2(max(MODE_BY_BITRATE))
    with GLOBAL_RNG_LOCK:
        saved = seed.swap(_PROBE_SEED)
        try:
            state.decode(bytes(state.bytes_per_frame()))
        finally:
            after = seed.swap(saved)
    return after != _PROBE_SEED


class _Codec2StreamEncoder(StreamEncoder):
    """pycodec2's encoder behind a streaming 8 kHz resampler when the codec runs at 16 kHz."""

    def __init__(self, codec: Codec2Codec) -> None:
        super().__init__(channels=1, frame_size=codec.frame_size, algorithmic_delay=codec.algorithmic_delay)
        self._state = _pycodec2().Codec2(codec.pycodec2_mode)
        self._frame_8k = codec.frame_size_8k
        self._resampler = codec.resampler(codec.sample_rate, CODEC2_RATE_HZ)
        self._pending_8k = np.zeros(0, dtype=np.float32)
        self._n_frames_in = 0
        self._n_packets_out = 0

    def _encode_frame(self, frame: np.ndarray) -> list[bytes]:
        self._n_frames_in += 1
        if self._resampler is None:
            return self._code(frame[0])
        return self._code(self._resampler.resample_chunk(frame[0]))

    def _code(self, audio_8k: np.ndarray) -> list[bytes]:
        self._pending_8k = np.concatenate([self._pending_8k, audio_8k])
        packets = []
        while self._pending_8k.size >= self._frame_8k and self._n_packets_out < self._n_frames_in:
            pcm = float_to_int16(self._pending_8k[: self._frame_8k])
            self._pending_8k = self._pending_8k[self._frame_8k :]
            packets.append(self._state.encode(pcm))
            self._n_packets_out += 1
        return packets

    def _drain(self) -> list[bytes]:
        if self._resampler is None:
            return []
        packets = self._code(self._resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True))
        # soxr gives exactly half the input at flush; this only guards one packet per input frame
        while self._n_packets_out < self._n_frames_in:
            shortfall = self._frame_8k - self._pending_8k.size % self._frame_8k
            packets.extend(self._code(np.zeros(shortfall, dtype=np.float32)))
        return packets


class _Codec2StreamDecoder(StreamDecoder):
    """pycodec2's decoder with its own codec2_rand sequence, loss fading, and the 16 kHz resampler."""

    def __init__(self, codec: Codec2Codec) -> None:
        super().__init__(channels=1)
        self._codec = codec
        self._state = _pycodec2().Codec2(codec.pycodec2_mode)
        self._rng = StreamRng(_codec2_rand_seed())
        self._resampler = codec.resampler(CODEC2_RATE_HZ, codec.sample_rate)
        self._fade_samples_8k = LOSS_FADE_MS * CODEC2_RATE_HZ / 1000
        self._last_good: bytes | None = None
        self._n_lost_in_row = 0
        self._n_frames = 0
        self._n_samples_out = 0

    def _decode_packet(self, packet: bytes | None) -> np.ndarray:
        codec = self._codec
        if packet is None:
            audio_8k = self._conceal()
        else:
            data = check_packet(packet, n_bytes=codec.packet_bytes, codec="codec2")
            unpack_bits(data, n_bits=codec.bits_per_frame, codec="codec2")
            audio_8k = self._decode_bits(data)
            self._last_good = data
            self._n_lost_in_row = 0
        self._n_frames += 1
        audio = audio_8k if self._resampler is None else self._resampler.resample_chunk(audio_8k)
        self._n_samples_out += audio.size
        return audio[None, :]

    def _decode_bits(self, data: bytes) -> np.ndarray:
        with self._rng.active():
            pcm = self._state.decode(data)
        return int16_to_float(pcm)

    def _conceal(self) -> np.ndarray:
        n = self._codec.frame_size_8k
        self._n_lost_in_row += 1
        if self._last_good is None:
            return np.zeros(n, dtype=np.float32)
        samples_since_loss = (self._n_lost_in_row - 1) * n + np.arange(n)
        gain = np.clip(1.0 - samples_since_loss / self._fade_samples_8k, 0.0, 1.0).astype(np.float32)
        return self._decode_bits(self._last_good) * gain

    def _drain(self) -> np.ndarray:
        if self._resampler is None or self._n_frames == 0:
            return np.zeros((1, 0), dtype=np.float32)
        tail = self._resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
        # soxr gives exactly twice the input at flush; this only guards frame_size samples per packet
        n_missing = self._n_frames * self._codec.frame_size - self._n_samples_out
        tail = np.pad(tail[: max(n_missing, 0)], (0, max(n_missing - tail.size, 0)))
        self._n_samples_out += tail.size
        return tail[None, :]


class Codec2Codec(Codec):
    """Codec 2 at 700-3200 bit/s, mono, at 8 kHz (native) or 16 kHz (resampled internally).

    Parameters
    ----------
    sample_rate : Hz, 8000 or 16000.
    bitrate : bit/s, one of `bitrates_bps`; selects the mode. Default 3200 unless `mode` is given.
    mode : "3200", "2400", "1600", "1400", "1300", "1200" or "700C"; an alternative to `bitrate`.
    channels : 1 (Codec 2 is mono).
    """

    name: ClassVar[str] = "codec2"
    kind: ClassVar[str] = "legacy"
    sample_rates_hz: ClassVar[tuple[int, ...]] = (8000, 16000)
    bitrates_bps: ClassVar[tuple[int, ...]] = tuple(sorted(MODE_BY_BITRATE))
    bitrate_range_bps: ClassVar[tuple[int, int]] = (min(MODE_BY_BITRATE), max(MODE_BY_BITRATE))
    constant_rate: ClassVar[bool] = True
    packet_bytes: int

    def __init__(
        self,
        *,
        sample_rate: int = 8000,
        bitrate: int | None = None,
        mode: str | None = None,
        channels: int = 1,
    ) -> None:
        self.sample_rate = self.check_sample_rate(sample_rate)
        self.channels = self.check_channels(channels)
        self.mode = self._resolve_mode(bitrate, mode)
        #: pycodec2 names its modes by their nominal bitrate
        self.pycodec2_mode = next(rate for rate, name in MODE_BY_BITRATE.items() if name == self.mode)
        probe = _pycodec2().Codec2(self.pycodec2_mode)
        self.frame_size_8k: int = probe.samples_per_frame()
        self.bits_per_frame: int = probe.bits_per_frame()
        self.packet_bytes = probe.bytes_per_frame()
        self.bitrate = self.bits_per_frame * CODEC2_RATE_HZ // self.frame_size_8k
        upsampling = self.sample_rate // CODEC2_RATE_HZ
        self.frame_size = self.frame_size_8k * upsampling
        self.algorithmic_delay = DELAY_8K_SAMPLES[self.mode] * upsampling

    @classmethod
    def _resolve_mode(cls, bitrate: int | None, mode: str | None) -> str:
        modes = ", ".join(MODE_BY_BITRATE.values())
        if mode is not None:
            name = str(mode).upper()
            if name not in MODE_BY_BITRATE.values():
                raise ParameterError(f"codec2: mode={mode!r} is unknown; use one of {modes}")
            if bitrate is not None and MODE_BY_BITRATE.get(int(bitrate)) != name:
                raise ParameterError(f"codec2: bitrate={bitrate} contradicts mode={mode!r}; give one of them")
            return name
        if bitrate is None:
            return MODE_BY_BITRATE[max(MODE_BY_BITRATE)]
        cls.check_bitrate(bitrate)
        if int(bitrate) not in MODE_BY_BITRATE:
            rates = ", ".join(str(rate) for rate in sorted(MODE_BY_BITRATE))
            raise ParameterError(f"codec2: bitrate={bitrate} bit/s is not a Codec 2 mode; use one of {rates}")
        return MODE_BY_BITRATE[int(bitrate)]

    @classmethod
    def availability(cls) -> tuple[bool, str]:
        try:
            _pycodec2()
        except DependencyError:
            return False, INSTALL_HINT
        return True, ""

    @property
    def deterministic(self) -> bool:
        """True when decoding is bit-exact repeatable here (the library's generator could be reached)."""
        return _codec2_rand_seed() is not None

    @staticmethod
    def resampler(rate_in_hz: int, rate_out_hz: int) -> Any:
        """A soxr streaming resampler between the two rates, or None when they are equal."""
        if rate_in_hz == rate_out_hz:
            return None
        import soxr

        return soxr.ResampleStream(rate_in_hz, rate_out_hz, 1, dtype="float32", quality=_RESAMPLER_QUALITY)

    def stream_encoder(self) -> StreamEncoder:
        return _Codec2StreamEncoder(self)

    def stream_decoder(self) -> StreamDecoder:
        return _Codec2StreamDecoder(self)

    def config(self) -> dict[str, Any]:
        return {"sample_rate": self.sample_rate, "bitrate": self.bitrate, "mode": self.mode}
