"""Neural post-filters: the causal enhancer streams like the whole signal, shipped weights load only with
their hash, `opus+enhance` codes Opus packets and decodes them better, and the CLI and bench reach it."""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from nsac.audio import read, write
from nsac.codecs import codec_class, load_codec
from nsac.codecs.base import Codec
from nsac.codecs.postfilter.codec import enhancer_complexity
from nsac.codecs.postfilter.model import StftEnhancer, StftEnhancerConfig
from nsac.codecs.postfilter.registry import DEFAULT_ENHANCERS, load_enhancer
from nsac.errors import ParameterError, WeightsError
from nsac.eval.bench_inputs import Condition, parse_condition
from nsac.eval.distances import mel_distance
from nsac.nn.streaming import stream_in_chunks
from nsac.pretrained import list_pretrained, load_weights, pretrained_dir
from tests.conftest import speech_test_clips

OPUS_6K = DEFAULT_ENHANCERS[("opus", 6000)]
RATE_HZ = 16000
#: chunk sizes that cut across the enhancer's 160-sample hops and 20 ms codec frames
CHUNKS = (1, 37, 160, 333, 500)
#: real test clips for the quality check, and the seconds kept of each
N_QUALITY_CLIPS = 4
QUALITY_CLIP_S = 3.0
#: the mel distance of the enhanced clips must be this fraction of plain Opus's at most (the shipped
#: weights give 0.80-0.86 on these clips; an untrained or broken enhancer gives 1.0 or more)
MEL_DISTANCE_RATIO_MAX = 0.9

needs_opus = pytest.mark.skipif(not codec_class("opus").availability()[0], reason="PyAV with libopus missing")
needs_weights = pytest.mark.skipif(OPUS_6K not in list_pretrained(), reason=f"{OPUS_6K} weights not shipped")


def _random_model(seed: int = 0, excitation: str = "shift") -> StftEnhancer:
    torch.manual_seed(seed)
    config = StftEnhancerConfig(channels=16, gru_layers=1, excitation=excitation)
    model = StftEnhancer(config, sample_rate_hz=RATE_HZ).eval()
    for parameter in model.net[-1].parameters():  # the last layer starts at zero: make it do something
        torch.nn.init.normal_(parameter, std=0.05)
    return model


def _clips(n: int, seconds: float) -> list[np.ndarray]:
    return speech_test_clips(n, seconds=seconds, rate_hz=RATE_HZ)


# --- the model ------------------------------------------------------------------------------------------
@torch.no_grad()
@pytest.mark.parametrize("excitation", ["shift", "rectify", "noise"])
def test_streaming_equals_whole_signal(excitation: str) -> None:
    model = _random_model(excitation=excitation)
    x = torch.randn(2, 1, 4003) * 0.1
    whole = model(x)
    delay, tail = model.delay_samples, model.delay_samples + model.hop_samples
    streamed = stream_in_chunks(model, torch.nn.functional.pad(x, (0, tail)), CHUNKS)
    torch.testing.assert_close(streamed[..., delay : delay + x.shape[-1]], whole, atol=1e-5, rtol=1e-4)


@torch.no_grad()
def test_causal_with_the_stated_delay() -> None:
    model = _random_model(1)
    hop = model.hop_samples
    x = torch.randn(1, 1, 20 * hop) * 0.1
    changed = x.clone()
    change = 12 * hop
    changed[..., change:] += 0.5
    a, b = model(x), model(changed)
    # the output of a hop sees the input up to delay_samples after that hop's end, and no further
    limit = change - model.delay_samples
    torch.testing.assert_close(a[..., :limit], b[..., :limit], atol=1e-6, rtol=0)
    assert not torch.allclose(a[..., limit : limit + hop], b[..., limit : limit + hop])


@torch.no_grad()
def test_noise_excitation_fills_only_the_regenerated_band_and_is_the_same_in_every_model() -> None:
    a, b = _random_model(2, "noise"), _random_model(3, "noise")
    torch.testing.assert_close(a.noise_table, b.noise_table, atol=0, rtol=0)  # seeded, not torch's global RNG
    assert torch.all(a.noise_table[:, : a.config.shift_bins] == 0)
    assert torch.allclose(a.noise_table[:, a.config.shift_bins :].abs(), torch.ones(1))
    # a tone at 1 kHz, band-limited to 0-4 kHz as after Codec 2: the model's output above 4 kHz is the
    # noise term alone, so it is spread over the band rather than at 1 kHz + 4 kHz as the shifted copy puts it
    t = torch.arange(16000) / RATE_HZ
    x = (0.3 * torch.sin(2 * torch.pi * 1000 * t))[None, None]
    for model in (a, _random_model(2, "shift")):
        spectrum = torch.fft.rfft(model(x)[0, 0]).abs()  # 1 s: bin k is k Hz
        peak_share = spectrum[4900:5100].sum() / spectrum[4100:].sum()  # where the shifted tone lands
        if model.config.excitation == "noise":
            assert peak_share < 0.1
        else:
            assert peak_share > 0.3


@torch.no_grad()
def test_untrained_enhancer_passes_the_signal_through() -> None:
    model = StftEnhancer(StftEnhancerConfig(channels=8, gru_layers=1), sample_rate_hz=RATE_HZ).eval()
    x = torch.randn(1, 1, 1234) * 0.1
    torch.testing.assert_close(model(x), x, atol=1e-5, rtol=0)


def test_config_refuses_bad_framing() -> None:
    for bad in ({"frame_samples": 322}, {"shift_bins": 81}, {"shift_bins": 400}, {"channels": 0}):
        with pytest.raises(ParameterError):
            StftEnhancerConfig(**bad)


# --- shipped weights ------------------------------------------------------------------------------------
@needs_weights
def test_shipped_weights_load_only_with_their_hash(tmp_path: Path) -> None:
    model = load_enhancer(OPUS_6K)
    assert not model.training and model.sample_rate_hz == RATE_HZ
    for suffix in (".safetensors", ".json"):
        shutil.copy(pretrained_dir() / f"{OPUS_6K}{suffix}", tmp_path)
    shutil.copy(pretrained_dir() / "registry.json", tmp_path)
    assert load_weights(OPUS_6K, directory=tmp_path)
    weights = tmp_path / f"{OPUS_6K}.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x01
    weights.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="sha256"):
        load_weights(OPUS_6K, directory=tmp_path)


@needs_weights
def test_complexity_is_counted() -> None:
    costs = enhancer_complexity(OPUS_6K)
    model = load_enhancer(OPUS_6K)
    assert costs["parameters"] == sum(p.numel() for p in model.parameters())
    assert 1e6 < costs["macs_per_second"] < 1e9  # a small causal model, well under a GMAC per second


# --- the enhanced codec ---------------------------------------------------------------------------------
@needs_opus
@needs_weights
def test_enhanced_codec_keeps_opus_packets_and_streams_like_whole_file() -> None:
    audio = _clips(1, 2.0)[0]
    plain = load_codec("opus", bitrate=6000, sample_rate=RATE_HZ)
    codec = load_codec("opus+enhance", bitrate=6000, sample_rate=RATE_HZ)
    assert codec.algorithmic_delay == plain.algorithmic_delay + load_enhancer(OPUS_6K).delay_samples
    packets = codec.encode(audio)
    plain_packets = plain.encode(audio)
    assert packets[: len(plain_packets) - 1] == plain_packets[:-1]  # Opus bytes; the end codes more delay
    packets[7] = None  # a lost packet: concealed by Opus, then enhanced like the rest
    whole = codec.decode(packets, audio.shape[1])
    streamed = Codec.decode(codec, packets, audio.shape[1])  # the stream decoder, packet by packet
    np.testing.assert_allclose(streamed, whole, atol=1e-5)
    assert whole.shape == audio.shape and whole.dtype == np.float32


@pytest.mark.skipif("postfilter-aac-32k" not in list_pretrained(), reason="AAC enhancer not shipped")
@pytest.mark.parametrize("channels", [1, 2])
def test_aac_music_enhancer_streams_packet_by_packet_like_whole_file(channels: int) -> None:
    """48 kHz: an AAC packet of 1024 samples is two of the enhancer's 512-sample hops; stereo channels are
    enhanced each on its own."""
    if not codec_class("aac").availability()[0]:
        pytest.skip("PyAV with an AAC encoder missing")
    rng = np.random.default_rng(0)
    t = np.arange(48000) / 48000
    tone = 0.2 * np.sin(2 * np.pi * 440 * t) * (1 + np.sin(2 * np.pi * 3 * t))
    hits = 0.05 * rng.standard_normal(t.size) * (t % 0.25 < 0.02)
    audio = np.stack([tone + hits, 0.5 * tone - hits][:channels]).astype(np.float32)
    codec = load_codec("aac+enhance", bitrate=32000, sample_rate=48000, channels=channels)
    assert codec.enhancer_name == "postfilter-aac-32k" and codec.enhancer.hop_samples == 512
    packets = codec.encode(audio)
    packets[5] = None
    whole = codec.decode(packets, audio.shape[1])
    streamed = Codec.decode(codec, packets, audio.shape[1])
    np.testing.assert_allclose(streamed, whole, atol=1e-5)
    assert whole.shape == audio.shape and np.isfinite(whole).all() and np.abs(whole).max() <= 1.0
    if channels == 2:
        assert not np.allclose(whole[0], whole[1])  # each channel keeps its own content
    with pytest.raises(ParameterError, match="48000 Hz"):
        load_codec("aac+enhance", bitrate=32000, sample_rate=44100)


@needs_opus
@needs_weights
def test_enhancer_improves_real_test_speech() -> None:
    plain = load_codec("opus", bitrate=6000, sample_rate=RATE_HZ)
    codec = load_codec("opus+enhance", bitrate=6000, sample_rate=RATE_HZ)
    ratios = []
    for audio in _clips(N_QUALITY_CLIPS, QUALITY_CLIP_S):
        before = plain.decode(plain.encode(audio), audio.shape[1])
        after = codec.decode(codec.encode(audio), audio.shape[1])
        ratios.append(mel_distance(audio[0], after[0], sample_rate=RATE_HZ)
                      / mel_distance(audio[0], before[0], sample_rate=RATE_HZ))
    assert np.mean(ratios) < MEL_DISTANCE_RATIO_MAX, ratios
    assert max(ratios) < 1.0, ratios  # no clip made worse


@needs_opus
@needs_weights
def test_no_nan_and_no_clipping_on_hard_inputs() -> None:
    codec = load_codec("opus+enhance", bitrate=6000, sample_rate=RATE_HZ)
    rng = np.random.default_rng(0)
    speech = _clips(1, 1.0)[0]
    loud = np.clip(speech / (np.abs(speech).max() + 1e-9), -1, 1)  # speech peaking at full scale
    hard = {"silence": np.zeros((1, RATE_HZ), np.float32), "loud speech": loud.astype(np.float32),
            "full-scale noise": rng.uniform(-1, 1, (1, RATE_HZ)).astype(np.float32)}
    for name, audio in hard.items():
        out = codec.decode(codec.encode(audio), audio.shape[1])
        assert np.all(np.isfinite(out)), name
        assert np.abs(out).max() <= 1.0, name
    silence = codec.decode(codec.encode(hard["silence"]), RATE_HZ)
    assert np.abs(silence).max() < 1e-3  # the enhancer invents nothing in silence


# --- decoder-side use: CLI and bench ---------------------------------------------------------------------
def test_enhance_condition_parses_and_round_trips() -> None:
    for spec in ("opus@6000+enhance", "opus@6000+enhance:vbr=off", "opus@6000:vbr=off+enhance"):
        condition = parse_condition(spec)
        assert condition.codec == "opus+enhance" and condition.bitrate_bps == 6000
        assert parse_condition(condition.label) == condition
    assert parse_condition("opus@6000+enhance").label == "opus@6000+enhance"
    assert parse_condition("opus@6000") == Condition("opus", 6000)
    with pytest.raises(ParameterError, match="unknown codec"):
        codec_class("nosuch+enhance")


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nsac", *args], capture_output=True, timeout=120, check=False)


@needs_opus
@needs_weights
def test_cli_decode_enhance(tmp_path: Path) -> None:
    audio = _clips(1, 2.0)[0]
    write(tmp_path / "in.wav", audio, RATE_HZ)
    coded = tmp_path / "in.nsac"
    assert _cli("encode", str(tmp_path / "in.wav"), str(coded), "--codec", "opus", "--bitrate", "6000",
                "-q").returncode == 0
    info = json.loads(_cli("info", str(coded)).stdout)
    assert info["codec"] == "opus" and info["weights_id"] is None  # the file stays Opus's
    assert _cli("decode", str(coded), str(tmp_path / "plain.wav")).returncode == 0
    assert _cli("decode", str(coded), str(tmp_path / "default.wav"), "--enhance").returncode == 0
    assert _cli("decode", str(coded), str(tmp_path / "named.wav"), "--enhance", OPUS_6K).returncode == 0
    plain, _ = read(tmp_path / "plain.wav")
    default, rate = read(tmp_path / "default.wav")
    named, _ = read(tmp_path / "named.wav")
    assert rate == RATE_HZ and default.shape == plain.shape == audio.shape
    np.testing.assert_array_equal(default, named)
    assert mel_distance(audio[0], default[0], sample_rate=RATE_HZ) < mel_distance(audio[0], plain[0],
                                                                                  sample_rate=RATE_HZ)
    bad = _cli("decode", str(coded), str(tmp_path / "x.wav"), "--enhance", "nosuch")
    assert bad.returncode == 1 and b"nosuch" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


@needs_opus
@needs_weights
def test_bench_measures_the_enhance_condition(tmp_path: Path) -> None:
    from nsac.eval.bench_cli import add_bench_arguments, run_bench_from_args

    data = tmp_path / "data"
    data.mkdir()
    write(data / "clip.wav", _clips(1, 1.5)[0], RATE_HZ)
    parser = argparse.ArgumentParser()
    add_bench_arguments(parser)
    out = tmp_path / "out"
    args = parser.parse_args(["--codec", "opus@6000", "--codec", "opus@6000+enhance", "--data", str(data),
                              "--out", str(out), "--metrics", "mel_distance", "--listen", "0", "--quiet",
                              "--no-memory", "--jobs", "1"])
    assert run_bench_from_args(args) == 0
    with (out / "results.csv").open(newline="") as stream:
        rows = {row["condition"]: row for row in csv.DictReader(stream)}
    assert set(rows) == {"opus@6000", "opus@6000+enhance"}
    plain, enhanced = rows["opus@6000"], rows["opus@6000+enhance"]
    assert not plain["error"] and not enhanced["error"]
    assert float(enhanced["mel_distance"]) < float(plain["mel_distance"])
    assert float(enhanced["macs_per_second"]) > 1e6 and int(float(enhanced["parameters"])) > 0
    assert float(enhanced["delay_ms"]) == pytest.approx(float(plain["delay_ms"]) + 10.0)
    assert abs(float(enhanced["payload_kbps"]) - float(plain["payload_kbps"])) < 0.5  # the same packets
