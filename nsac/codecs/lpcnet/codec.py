"""The `lpcnet` codec: LPCNet's features in 64-bit packets every 40 ms (1.6 kb/s), decoded by the vocoder.

Encoder: per 640-sample input frame, the features of the packet's four 10 ms frames (20 ms windows, 5 ms
look-ahead: the input is delayed by 80 samples so that the last window of a packet ends with the frame),
quantized by :mod:`nsac.quant.lpcnet_quantizer` with the shipped codebooks. Features are computed over the
packet and the one before it (the pitch search reaches 256 samples back) with the pitch path's scores carried
from packet to packet, so they equal the whole-signal analysis the vocoder was trained on.

Decoder: packet -> features (:func:`nsac.quant.lpcnet_quantizer.decode`, with the previous packet's last
frame as memory) -> :class:`~nsac.codecs.lpcnet.vocoder_stream.FeatureStreamSynthesizer`. Delay: 80 samples
of encoder look-ahead plus 320 of frame-rate look-ahead, 25 ms in all (beyond the 40 ms packet).

A lost packet (None) is concealed: the last frame's features repeated, its energy lowered by
``CONCEALMENT_C0_STEP`` per frame and its pitch correlation by ``CONCEALMENT_CORRELATION_DECAY``; the
concealed last frame is the next packet's memory, so the damage stays within that packet's first frames.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from nsac.codecs.base import Codec, StreamDecoder, StreamEncoder
from nsac.codecs.lpcnet.codebooks import shipped_codebooks
from nsac.codecs.lpcnet.synthesis import DEFAULT_SEED
from nsac.codecs.lpcnet.vocoder_stream import DEFAULT_WEIGHTS, FeatureStreamSynthesizer, load_vocoder
from nsac.dsp.features import FRAME_SIZE, LOOKAHEAD, compute_features
from nsac.dsp.pitch import PITCH_MAX_PERIOD, PITCH_MIN_PERIOD, SUBFRAME_SIZE, PitchTracker
from nsac.errors import ParameterError
from nsac.quant import lpcnet_quantizer as lq

SAMPLE_RATE_HZ = 16000
PACKET_SAMPLES = FRAME_SIZE * lq.FRAMES_PER_PACKET
HISTORY_PACKETS = 1
"""Packets of past input the feature analysis of a packet sees (for the pitch search)."""
DECODER_DELAY = 2 * FRAME_SIZE
CONCEALMENT_C0_STEP = 0.5
"""c0 lowered per concealed frame (about 1.2 dB of the mean band level)."""
CONCEALMENT_CORRELATION_DECAY = 0.8


class PacketFeatureEncoder:
    """Input frames of 640 samples -> the features of the packet they complete.

    The features equal :func:`~nsac.dsp.features.compute_features` of the whole input delayed by 80 samples
    (tested): the spectral analysis needs only the window, the pitch search one packet of history, and the
    pitch path's scores are carried from packet to packet.
    """

    def __init__(self) -> None:
        self._signal = np.zeros(HISTORY_PACKETS * PACKET_SAMPLES + LOOKAHEAD)
        self._pitch = PitchTracker(PITCH_MAX_PERIOD - PITCH_MIN_PERIOD + 1,
                                   block=lq.FRAMES_PER_PACKET * FRAME_SIZE // SUBFRAME_SIZE)

    def push(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Cepstrum (4, 18), period (4,), correlation (4,) of the packet this frame completes."""
        self._signal = np.concatenate([self._signal, np.asarray(frame, dtype=np.float64)])
        segment = self._signal[-(HISTORY_PACKETS + 1) * PACKET_SAMPLES - LOOKAHEAD:]
        self._signal = segment[PACKET_SAMPLES:].copy() if HISTORY_PACKETS else segment[-LOOKAHEAD:].copy()
        # segment frame j owns [160 j, 160 j + 160); the packet is frames 4 H .. 4 H + 3, whose windows end
        # exactly at the segment's end
        first = lq.FRAMES_PER_PACKET * HISTORY_PACKETS
        frames = slice(first, first + lq.FRAMES_PER_PACKET)
        features = compute_features(segment, pitch_tracker=self._pitch,
                                    pitch_frames=(frames.start, frames.stop))
        return features.cepstrum[frames], features.pitch_period[frames], features.pitch_correlation[frames]


def concealed_features(last: tuple[np.ndarray, float, float] | None,
                       n_frames: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features of ``n_frames`` lost frames after the last decoded one (cepstrum (18,), period, correlation).

    The cepstrum is repeated with c0 lowered by ``CONCEALMENT_C0_STEP`` per frame (not below the 1.6 kb/s
    quantizer's lowest level), the period kept and the correlation decayed; silence when nothing came yet.

    Returns
    -------
    cepstrum (n, 18), period (n,) in samples, correlation (n,)
    """
    if last is None:
        silence = np.zeros(lq.N_BANDS)
        silence[0] = lq.ENERGY_MIN
        last = (silence, 100.0, 0.0)
    cepstrum, period, correlation = last
    steps = np.arange(1, n_frames + 1)
    concealed = np.repeat(np.asarray(cepstrum, dtype=np.float64)[None, :], n_frames, axis=0)
    concealed[:, 0] = np.maximum(concealed[0, 0] - CONCEALMENT_C0_STEP * steps, lq.ENERGY_MIN)
    return concealed, np.full(n_frames, float(period)), float(correlation) * CONCEALMENT_CORRELATION_DECAY ** steps


class _LPCNetStreamEncoder(StreamEncoder):
    def __init__(self) -> None:
        super().__init__(channels=1, frame_size=PACKET_SAMPLES, algorithmic_delay=LOOKAHEAD + DECODER_DELAY)
        self._features = PacketFeatureEncoder()
        self._memory = lq.INITIAL_MEMORY
        self._codebooks = shipped_codebooks()

    def _encode_frame(self, frame: np.ndarray) -> list[bytes]:
        cepstrum, period, correlation = self._features.push(frame[0])
        packets = lq.encode(cepstrum, period, correlation, codebooks=self._codebooks, memory=self._memory)
        self._memory = lq.decode(packets, codebooks=self._codebooks, memory=self._memory).cepstrum[-1]
        return packets


class _LPCNetStreamDecoder(StreamDecoder):
    def __init__(self, weights: str, seed: int) -> None:
        super().__init__(channels=1)
        self._codebooks = shipped_codebooks()
        self._synthesizer = FeatureStreamSynthesizer(load_vocoder(weights), seed=seed)
        self._memory = lq.INITIAL_MEMORY
        self._last: tuple[np.ndarray, float, float] | None = None

    def _decode_packet(self, packet: bytes | None) -> np.ndarray:
        if packet is None:
            cepstrum, period, correlation = concealed_features(self._last, lq.FRAMES_PER_PACKET)
        else:
            decoded = lq.decode([packet], codebooks=self._codebooks, memory=self._memory)
            cepstrum, period, correlation = decoded.cepstrum, decoded.pitch_period, decoded.pitch_correlation
        self._memory = cepstrum[-1]
        self._last = (cepstrum[-1].copy(), float(period[-1]), float(correlation[-1]))
        return self._synthesizer.push(cepstrum, period, correlation)[None, :]


class LPCNetCodec(Codec):
    """LPCNet at 1.6 kb/s: 16 kHz mono speech, 8-byte packets every 40 ms.

    Parameters
    ----------
    sample_rate : 16000 (resample other audio first; `nsac encode` does)
    bitrate : 1600
    channels : 1
    weights : registered LPCNet vocoder weights (default ``lpcnet``, shipped)
    seed : the decoder's sampling seed (the same packets and seed give the same samples)
    """

    name: ClassVar[str] = "lpcnet"
    kind: ClassVar[str] = "neural"
    sample_rates_hz: ClassVar[tuple[int, ...]] = (SAMPLE_RATE_HZ,)
    bitrates_bps: ClassVar[tuple[int, ...]] = (1600,)
    bitrate_range_bps: ClassVar[tuple[int, int]] = (1600, 1600)
    #: samples and bytes of one packet (a subclass with other packets, `lpcnet-pred`, sets its own)
    packet_samples: ClassVar[int] = PACKET_SAMPLES
    fixed_packet_bytes: ClassVar[int] = lq.PACKET_BYTES

    def __init__(self, *, sample_rate: int = SAMPLE_RATE_HZ, bitrate: int | None = None, channels: int = 1,
                 weights: str = DEFAULT_WEIGHTS, seed: int = DEFAULT_SEED) -> None:
        from nsac.pretrained import weights_id

        self.sample_rate = self.check_sample_rate(sample_rate)
        self.bitrate = self.check_bitrate(self.bitrates_bps[0] if bitrate is None else bitrate)
        self.channels = self.check_channels(channels)
        if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2 ** 64:
            raise ParameterError(f"{self.name}: seed={seed!r} must be an integer in 0..2^64-1")
        self.weights, self.seed = weights, seed
        load_vocoder(weights)  # fail now, with a WeightsError, rather than at the first packet
        self.weights_sha256_prefix = weights_id(weights)
        self.frame_size = self.packet_samples
        self.packet_bytes = self.fixed_packet_bytes
        self.algorithmic_delay = LOOKAHEAD + DECODER_DELAY

    @classmethod
    def availability(cls) -> tuple[bool, str]:
        from nsac.pretrained import list_pretrained

        if DEFAULT_WEIGHTS not in list_pretrained():
            return False, f"the {DEFAULT_WEIGHTS!r} weights are not in nsac/pretrained (reinstall nsac)"
        return True, ""

    def stream_encoder(self) -> StreamEncoder:
        return _LPCNetStreamEncoder()

    def stream_decoder(self) -> StreamDecoder:
        return _LPCNetStreamDecoder(self.weights, self.seed)

    def config(self) -> dict[str, Any]:
        return {"sample_rate": self.sample_rate, "bitrate": self.bitrate, "channels": self.channels,
                "weights": self.weights, "seed": self.seed}

    def complexity(self) -> dict[str, float]:
        return vocoder_complexity(load_vocoder(self.weights))


def vocoder_complexity(vocoder: Any) -> dict[str, float]:
    """MACs per second of the vocoder (sample-rate network per sample, frame-rate network per frame)."""
    c = vocoder.config
    h, b = c.gru_a_units, c.gru_b_units
    per_sample = 3 * h * h + 3 * b * (h + b) + 2 * c.levels * b + 3 * c.levels  # + softmax/sampling
    frame_rate = (3 * (20 + c.pitch_embedding) * c.conditioning + 3 * c.conditioning ** 2
                  + 2 * c.conditioning ** 2 + c.conditioning * 3 * (h + b))
    params = sum(int(np.prod(v.shape)) for v in vocoder.weights.values())
    return {"macs_per_second": float(per_sample * SAMPLE_RATE_HZ + frame_rate * 100), "parameters": params}


__all__ = ["LPCNetCodec", "PacketFeatureEncoder", "concealed_features", "vocoder_complexity"]
