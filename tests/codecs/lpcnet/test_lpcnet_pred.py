"""The `lpcnet-pred` codec: 22-byte packets every 120 ms (1467 b/s), streaming equals whole-file, lost packets
concealed, deterministic decoding; with a tiny random vocoder registered in a folder of its own."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nsac import pretrained
from nsac.codecs.lpcnet.model import LPCNetConfig, LPCNetModel
from nsac.codecs.lpcnet.pred import LPCNetPredCodec, concealed_features, predictor_features_after_loss
from nsac.errors import ParameterError, WeightsError

TINY = LPCNetConfig(pitch_embedding=8, conditioning=16, sample_embedding=8, gru_a_units=16, gru_b_units=8)
RATE_HZ = 16000


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """BLAS on one thread: these matrices are small, and the machine may be shared."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with the test dependencies
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        yield
    torch.set_num_threads(threads)


@pytest.fixture()
def tiny_weights(tmp_path, monkeypatch):
    """A small random vocoder registered as `lpcnet` in a temporary pretrained folder."""
    from nsac.codecs.lpcnet.codebooks import CODEBOOKS_SHA256

    torch.manual_seed(0)
    model = LPCNetModel(TINY)
    config = {"task": "lpcnet", "sample_rate_hz": RATE_HZ, "model": {"name": "lpcnet", **TINY.to_dict()},
              "codebooks_sha256": CODEBOOKS_SHA256}
    pretrained.register("lpcnet", model.state_dict(), config, directory=tmp_path)
    monkeypatch.setenv(pretrained.ENV_DIR, str(tmp_path))
    return tmp_path


@pytest.fixture()
def speech(speech_16k):
    return speech_16k[:, : 2 * RATE_HZ]


def test_packets_are_22_bytes_per_120_ms_and_decode_to_the_input_length(tiny_weights, speech):
    codec = LPCNetPredCodec()
    assert codec.name == "lpcnet-pred" and codec.kind == "neural"
    assert codec.frame_size == 1920 and codec.packet_bytes == 22 and codec.algorithmic_delay == 80 + 320
    packets = codec.encode(speech)
    assert {len(p) for p in packets} == {22}
    assert len(packets) == -(-(speech.shape[1] + codec.algorithmic_delay) // 1920)
    rate_bps = 8 * sum(len(p) for p in packets) / (len(packets) * codec.frame_size / RATE_HZ)
    assert rate_bps == pytest.approx(1466.67, abs=0.01) and rate_bps <= 1500
    assert abs(rate_bps - codec.bitrate) < 1
    out = codec.decode(packets, speech.shape[1])
    assert out.shape == speech.shape and out.dtype == np.float32
    assert np.isfinite(out).all() and np.abs(out).max() <= 1.0
    assert np.array_equal(out, codec.decode(packets, speech.shape[1]))  # same seed, same samples
    assert codec.config() == {"sample_rate": 16000, "bitrate": 1467, "channels": 1, "weights": "lpcnet",
                              "seed": codec.seed}
    assert codec.weights_sha256_prefix == pretrained.weights_id("lpcnet")
    assert codec.complexity()["macs_per_second"] > 0


def test_streaming_encoder_in_odd_chunks_equals_whole_file(tiny_weights, speech):
    codec = LPCNetPredCodec()
    whole = codec.encode(speech)
    encoder = codec.stream_encoder()
    packets, position = [], 0
    for size in (1, 333, 1919, 1921, 7, 4000, 2500):
        packets += encoder.push(speech[:, position: position + size])
        position += size
    packets += encoder.push(speech[:, position:]) + encoder.flush()
    assert packets == whole


def test_lost_and_random_packets_decode(tiny_weights, speech):
    codec = LPCNetPredCodec()
    packets = codec.encode(speech)
    rng = np.random.default_rng(0)
    damaged = [None, *packets[1:4], None, None, *packets[6:]]
    damaged[-1] = rng.bytes(22)
    out = codec.decode(damaged, speech.shape[1])
    assert out.shape == speech.shape and np.isfinite(out).all()


def test_concealed_features_fade():
    cepstrum = np.full(18, 1.0)
    cepstrum[0] = 5.0
    c, period, correlation = concealed_features((cepstrum, 80.0, 0.9), 12)
    assert c.shape == (12, 18) and np.all(np.diff(c[:, 0]) < 0) and np.all(period == 80.0)
    assert np.all(np.diff(correlation) < 0)
    silence, _, _ = concealed_features(None, 12)
    assert np.all(silence[:, 1:] == 0)
    held, period, correlation = predictor_features_after_loss((cepstrum, 80.0, 0.9), 12)
    assert np.all(held == cepstrum) and np.all(period == 80.0) and np.all(correlation == 0.9)


def test_parameters_and_weights_are_checked(tiny_weights):
    with pytest.raises(ParameterError):
        LPCNetPredCodec(bitrate=1600)
    with pytest.raises(ParameterError):
        LPCNetPredCodec(sample_rate=8000)
    with pytest.raises(ParameterError):
        LPCNetPredCodec(seed=-1)
    with pytest.raises(WeightsError):
        LPCNetPredCodec(weights="no-such-weights")
