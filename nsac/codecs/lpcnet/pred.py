"""The `lpcnet-pred` codec: LPCNet's features with feature-predictive coding, 22 bytes every 120 ms (1467 b/s).

Encoder: per 1920-sample input frame, the features of three 40 ms packets exactly as `lpcnet` computes them
(:class:`~nsac.codecs.lpcnet.codec.PacketFeatureEncoder`, used three times), quantized into one 176-bit
super-packet by :mod:`nsac.quant.lpcnet_pred_quantizer` with the shipped tables (a GRU predicts each 40 ms end
frame from the decoded past; only the residual is coded). Decoder: super-packet -> 12 frames of features ->
the `lpcnet` vocoder (:class:`~nsac.codecs.lpcnet.vocoder_stream.FeatureStreamSynthesizer`, the same weights).
Delay as `lpcnet`: 80 samples of encoder look-ahead plus 320 of frame-rate look-ahead (beyond the 120 ms
super-packet).

A lost super-packet (None) is concealed as `lpcnet` conceals a packet: the last frame's features repeated
for 12 frames, c0 lowered by ``CONCEALMENT_C0_STEP`` per frame and the pitch correlation decayed by
``CONCEALMENT_CORRELATION_DECAY``. The concealed features are fed through the predictor's GRU step
(:meth:`~nsac.quant.lpcnet_pred_quantizer.PredictiveDecoder.conceal`), so the decoder's predictor state stays a
plausible one. It is not the encoder's, whose state followed the real speech: the following end frames are
``prediction + residual`` with a prediction that differs from the encoder's. The predictor is fed the last
decoded frame held (:func:`predictor_features_after_loss`), not the fade the vocoder plays, which keeps that
difference small; it then decays only as fast as the predictor forgets, which for a predictor that integrates
(``L + W h``) is slow: on validation speech the feature distance is 7.9 dB above the loss-free decoding in
the next 40 ms, 4.1 dB after 200 ms and still 2.3 to 2.9 dB up to 1 s later (the tables' JSON note,
``loss_recovery``). This is the price of prediction across super-packets; `lpcnet` recovers within one packet.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from nsac.codecs.base import StreamDecoder, StreamEncoder
from nsac.codecs.lpcnet.codebooks import shipped_codebooks
from nsac.codecs.lpcnet.codec import (
    DECODER_DELAY,
    PACKET_SAMPLES,
    SAMPLE_RATE_HZ,
    LPCNetCodec,
    PacketFeatureEncoder,
    concealed_features,
    vocoder_complexity,
)
from nsac.codecs.lpcnet.vocoder_stream import FeatureStreamSynthesizer, load_vocoder
from nsac.dsp.features import LOOKAHEAD
from nsac.quant import lpcnet_pred_quantizer as pq
from nsac.quant.vq import load_codebooks

DATA_DIR = Path(__file__).resolve().parent / "data"
TABLES_SHA256 = "051f5709ff7fcd7751d3abe63f0108998c183b907fda12d1efb67b9399e76eeb"
"""Identity of the shipped predictor and residual tables (trained by ``python -m nsac.train.lpcnet_pred``, how:
the JSON note of the same name beside them)."""
TABLES_FILE = DATA_DIR / f"lpcnet_pred_{TABLES_SHA256[:8]}.safetensors"
SUPERPACKET_SAMPLES = PACKET_SAMPLES * pq.SUBPACKETS
BITRATE_BPS = 1467
"""176 bits per 120 ms is 1466.7 b/s."""


@functools.cache
def shipped_tables() -> pq.PredictiveTables:
    """The tables that ship with nsac (read once per process; raises WeightsError if tampered with)."""
    tensors, _ = load_codebooks(TABLES_FILE, sha256=TABLES_SHA256)
    return pq.PredictiveTables.from_tensors(tensors, base=shipped_codebooks(), sha256=TABLES_SHA256)


def predictor_features_after_loss(last: tuple[np.ndarray, float, float] | None,
                                  n_frames: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What the predictor's state is fed for ``n_frames`` lost frames: the last decoded frame held, undecayed.

    The vocoder gets :func:`concealed_features` (a fade); the predictor gets the best guess of what the encoder
    saw, since every later end frame is the encoder's residual added to the decoder's prediction. On
    validation speech this halves the extra feature distance after a loss compared with feeding the fade.
    """
    if last is None:
        return concealed_features(None, n_frames)
    cepstrum, period, correlation = last
    return (np.repeat(np.asarray(cepstrum, dtype=np.float64)[None, :], n_frames, axis=0),
            np.full(n_frames, float(period)), np.full(n_frames, float(correlation)))


class _PredStreamEncoder(StreamEncoder):
    def __init__(self, tables: pq.PredictiveTables) -> None:
        super().__init__(channels=1, frame_size=SUPERPACKET_SAMPLES, algorithmic_delay=LOOKAHEAD + DECODER_DELAY)
        self._features = PacketFeatureEncoder()
        self._encoder = pq.PredictiveEncoder(tables)

    def _encode_frame(self, frame: np.ndarray) -> list[bytes]:
        parts = [self._features.push(frame[0, PACKET_SAMPLES * j: PACKET_SAMPLES * (j + 1)])
                 for j in range(pq.SUBPACKETS)]
        cepstrum, period, correlation = (np.concatenate(arrays) for arrays in zip(*parts))
        return self._encoder.encode(cepstrum, period, correlation)


class _PredStreamDecoder(StreamDecoder):
    def __init__(self, tables: pq.PredictiveTables, weights: str, seed: int) -> None:
        super().__init__(channels=1)
        self._decoder = pq.PredictiveDecoder(tables)
        self._synthesizer = FeatureStreamSynthesizer(load_vocoder(weights), seed=seed)
        self._last: tuple[np.ndarray, float, float] | None = None
        """The last frame played (decoded or concealed): what concealment fades from."""
        self._last_decoded: tuple[np.ndarray, float, float] | None = None
        """The last frame decoded from bits: what the predictor is fed during a loss."""

    def _decode_packet(self, packet: bytes | None) -> np.ndarray:
        n = pq.FRAMES_PER_SUPERPACKET
        if packet is None:
            cepstrum, period, correlation = concealed_features(self._last, n)
            self._decoder.conceal(*predictor_features_after_loss(self._last_decoded, n))
        else:
            decoded = self._decoder.decode(packet)
            cepstrum, period, correlation = decoded.cepstrum, decoded.pitch_period, decoded.pitch_correlation
            self._last_decoded = (cepstrum[-1].copy(), float(period[-1]), float(correlation[-1]))
        self._last = (cepstrum[-1].copy(), float(period[-1]), float(correlation[-1]))
        return self._synthesizer.push(cepstrum, period, correlation)[None, :]


class LPCNetPredCodec(LPCNetCodec):
    """LPCNet with feature-predictive coding at 1467 b/s: 16 kHz mono speech, 22-byte packets every 120 ms.

    Parameters
    ----------
    sample_rate : 16000 (resample other audio first; `nsac encode` does)
    bitrate : 1467
    channels : 1
    weights : registered LPCNet vocoder weights (default ``lpcnet``, the `lpcnet` codec's)
    seed : the decoder's sampling seed (the same packets and seed give the same samples)
    """

    name: ClassVar[str] = "lpcnet-pred"
    bitrates_bps: ClassVar[tuple[int, ...]] = (BITRATE_BPS,)
    bitrate_range_bps: ClassVar[tuple[int, int]] = (BITRATE_BPS, BITRATE_BPS)
    packet_samples: ClassVar[int] = SUPERPACKET_SAMPLES
    fixed_packet_bytes: ClassVar[int] = pq.SUPERPACKET_BYTES

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._tables = shipped_tables()

    def stream_encoder(self) -> StreamEncoder:
        return _PredStreamEncoder(self._tables)

    def stream_decoder(self) -> StreamDecoder:
        return _PredStreamDecoder(self._tables, self.weights, self.seed)

    def complexity(self) -> dict[str, float]:
        """The vocoder's MACs and parameters plus the predictor's (one GRU step per 40 ms)."""
        vocoder = vocoder_complexity(load_vocoder(self.weights))
        w = self._tables.predictor
        h = w.hidden_units
        per_step = 3 * h * (pq.PREDICTOR_INPUTS + h) + pq.N_BANDS * h
        steps_per_second = SAMPLE_RATE_HZ / PACKET_SAMPLES
        parameters = sum(int(np.asarray(getattr(w, n)).size) for n in pq.PredictorWeights.TENSOR_NAMES[2:])
        return {"macs_per_second": vocoder["macs_per_second"] + per_step * steps_per_second,
                "parameters": vocoder["parameters"] + parameters}


__all__ = ["LPCNetPredCodec", "predictor_features_after_loss", "shipped_tables"]
