"""The sub-band GAN and MDCT T-LSTM/F-LSTM enhancers, the PQMF they stand on, and the synthetic music that
trains the AAC enhancer: streaming equals whole-signal, identity when untrained, bounded, trainable, and
runnable inside `amrwb+enhance` and `aac+enhance`."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nsac.codecs import codec_class, load_codec
from nsac.codecs.base import Codec
from nsac.codecs.postfilter.codec import count_complexity
from nsac.codecs.postfilter.mdct_lstm import MdctLstmConfig, MdctLstmEnhancer
from nsac.codecs.postfilter.registry import MODEL_CLASSES, load_enhancer
from nsac.codecs.postfilter.subband import SubbandGanConfig, SubbandGanEnhancer
from nsac.dsp.pqmf import pqmf_filters
from nsac.errors import ParameterError
from nsac.losses.spectral import MultiResolutionSTFTLoss
from nsac.nn.streaming import stream_in_chunks
from nsac.pretrained import ENV_DIR, register
from nsac.train.models import model_class
from nsac.train.recipes import load_recipe
from nsac.train.synth_music import SAMPLE_RATE_HZ, ensure_synthetic_music, piece_path, synthesize_piece

SPEECH_RATE_HZ = 16000
#: model name -> (class, a small config for the fast tests, its sample rate)
SMALL: dict[str, tuple[type[nn.Module], Any, int]] = {
    "subband-gan": (SubbandGanEnhancer, SubbandGanConfig(channels=12, dilations=(1, 3)), SPEECH_RATE_HZ),
    "mdct-lstm": (MdctLstmEnhancer, MdctLstmConfig(n_bins=64, band_bins=8, hidden=16), SAMPLE_RATE_HZ),
}
NAMES = sorted(SMALL)
#: the recipes that train each model at its default size
RECIPES = {"subband-gan": "postfilter-amrwb-12k65-subband-gan", "mdct-lstm": "postfilter-aac-32k"}
#: random chunk sizes, cutting across every hop and frame
CHUNKS = tuple(int(n) for n in np.random.default_rng(11).integers(1, 900, size=24))
#: PQMF analysis then synthesis of white noise vs the input delayed by `taps` (measured: -64 dB)
PQMF_ERROR_MAX_DB = -55.0
#: full-scale noise may come out at most this much above full scale (the output is bounded, not limited)
BOUNDED_PEAK_MAX = 8.0
TRAIN_STEPS = 30
#: after 30 Adam steps the loss must be at most this fraction of the untrained loss (measured: 0.46-0.49)
TRAINED_LOSS_RATIO_MAX = 0.75
needs_amrwb = pytest.mark.skipif(not codec_class("amrwb").availability()[0], reason="AMR-WB libraries missing")
needs_aac = pytest.mark.skipif(not codec_class("aac").availability()[0], reason="PyAV with AAC missing")


def _small(name: str, *, seed: int = 0, randomise_last: bool = True) -> nn.Module:
    cls, config, rate = SMALL[name]
    torch.manual_seed(seed)
    model = cls(config, sample_rate_hz=rate).eval()
    if randomise_last:  # the last layer starts at zero: make it do something
        last = model.generator[-1].conv if name == "subband-gan" else model.output_layer
        for parameter in last.parameters():
            nn.init.normal_(parameter, std=0.1)
    return model


# --- registration and configs ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_registered_for_inference_and_training_with_recipe_defaults(name: str) -> None:
    cls = SMALL[name][0]
    assert model_class(name) is cls
    assert MODEL_CLASSES[name].endswith(f":{cls.__name__}")
    recipe = load_recipe(RECIPES[name])
    assert recipe.model.name == name and recipe.task == "postfilter"
    assert recipe.model.config == cls.Config()  # the recipe documents the defaults


def test_recipes_degrade_with_the_right_codecs() -> None:
    amrwb = load_recipe("postfilter-amrwb-12k65-subband-gan")
    assert (amrwb.degrade.codec, amrwb.degrade.bitrates_bps, amrwb.data.sample_rate_hz) == ("amrwb", (12650,),
                                                                                           16000)
    assert amrwb.discriminator.kinds
    aac = load_recipe("postfilter-aac-32k")
    assert (aac.degrade.codec, aac.degrade.bitrates_bps, aac.data.sample_rate_hz) == ("aac", (32000,), 48000)
    assert aac.data.path == "synthetic-music"  # never the test-only music of shared/data


def test_the_synthetic_music_source_is_named_not_resolved_as_a_folder(tmp_path: Path) -> None:
    from nsac.train.run import resolve

    assert resolve("postfilter-aac-32k").data.path == "synthetic-music"
    assert resolve("postfilter-aac-32k", data="synthetic-music").data.path == "synthetic-music"
    assert resolve("postfilter-aac-32k", data=tmp_path).data.path == str(tmp_path.resolve())


def test_configs_refuse_bad_values() -> None:
    for bad in ({"taps": 63}, {"n_bands": 1}, {"channels": 0}, {"dilations": (1, 0)}):
        with pytest.raises(ParameterError):
            SubbandGanConfig(**bad)
    with pytest.raises(ParameterError):  # 10 ms at most: 160 samples at 16 kHz
        SubbandGanEnhancer(SubbandGanConfig(taps=200), sample_rate_hz=SPEECH_RATE_HZ)
    for bad in ({"n_bins": 255}, {"band_bins": 7}, {"hidden": 15}):
        with pytest.raises(ParameterError):
            MdctLstmConfig(**bad)


def test_default_delays_and_hops_fit_the_codec_frames() -> None:
    subband = SubbandGanEnhancer(SubbandGanConfig(), sample_rate_hz=SPEECH_RATE_HZ)
    assert subband.delay_samples / SPEECH_RATE_HZ <= 0.010
    assert 320 % subband.hop_samples == 0  # an AMR-WB frame
    mdct = MdctLstmEnhancer(MdctLstmConfig(), sample_rate_hz=SAMPLE_RATE_HZ)
    assert mdct.delay_samples == mdct.hop_samples == 256
    assert 1024 % mdct.hop_samples == 0  # an AAC frame


# --- the filterbank -----------------------------------------------------------------------------------
def test_pqmf_reconstructs_white_noise_delayed_by_its_taps() -> None:
    model = SubbandGanEnhancer(SubbandGanConfig(), sample_rate_hz=SPEECH_RATE_HZ)
    m, taps = model.n_bands, model.config.taps
    x = torch.randn(1, 1, 16000, generator=torch.Generator().manual_seed(0))
    bands = model.analysis(F.pad(x, (model.n_filter - m, 0)))
    assert bands.shape == (1, m, 16000 // m)  # critically sampled
    y = F.pad(model.synthesis(bands), (m - 1, 0))[..., : x.shape[-1]]
    error = y[..., taps:] - x[..., : x.shape[-1] - taps]
    error_db = 10 * torch.log10(error[..., 100:-100].pow(2).mean() / x.pow(2).mean())
    assert error_db < PQMF_ERROR_MAX_DB


def test_pqmf_bands_split_the_spectrum() -> None:
    analysis, synthesis = pqmf_filters(n_bands=4)
    response = np.abs(np.fft.rfft(analysis, n=4096, axis=-1))
    frequency = np.linspace(0, 1, response.shape[-1])  # fraction of Nyquist
    for k in range(4):
        inside = (frequency > (k + 0.2) / 4) & (frequency < (k + 0.8) / 4)
        far = np.abs(frequency - (k + 0.5) / 4) > 0.5
        assert response[k, inside].min() > 0.9
        assert response[k, far].max() < 1e-3  # the Kaiser prototype's stopband, below -60 dB
    np.testing.assert_allclose(synthesis, analysis[:, ::-1], atol=1e-12)  # time-reversed pairs


# --- streaming, identity, bounds ------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
@torch.no_grad()
def test_streaming_in_random_chunks_equals_whole_signal(name: str) -> None:
    model = _small(name)
    x = torch.randn(2, 1, 6007) * 0.1
    whole = model(x)
    delay, tail = model.delay_samples, model.delay_samples + model.hop_samples
    streamed = stream_in_chunks(model, F.pad(x, (0, tail)), CHUNKS)
    assert streamed.shape[-1] % model.hop_samples == 0
    torch.testing.assert_close(streamed[..., delay : delay + x.shape[-1]], whole, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", NAMES)
@torch.no_grad()
def test_causal_with_the_stated_delay(name: str) -> None:
    model = _small(name, seed=1)
    hop = model.hop_samples
    x = torch.randn(1, 1, 40 * hop) * 0.1
    changed = x.clone()
    change = 24 * hop
    changed[..., change:] += 0.5
    a, b = model(x), model(changed)
    limit = change - model.delay_samples  # an output sample sees the input up to delay_samples after it
    torch.testing.assert_close(a[..., :limit], b[..., :limit], atol=1e-6, rtol=0)
    # and it does see them (the PQMF's first taps are tiny, so the sub-band model's change shows in full
    # a few hops later, by the time the change itself comes out)
    assert not torch.allclose(a[..., limit : change + hop], b[..., limit : change + hop])


@pytest.mark.parametrize("name", NAMES)
@torch.no_grad()
def test_untrained_model_returns_its_input(name: str) -> None:
    cls, config, rate = SMALL[name]
    model = cls(config, sample_rate_hz=rate).eval()
    x = torch.randn(1, 1, 3001) * 0.1
    torch.testing.assert_close(model(x), x, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", NAMES)
@torch.no_grad()
def test_full_scale_noise_gives_finite_bounded_output(name: str) -> None:
    model = _small(name, seed=2)
    for parameter in model.parameters():  # a badly trained model: every weight large
        parameter.mul_(3.0)
    x = torch.rand(2, 1, 8000, generator=torch.Generator().manual_seed(1)) * 2 - 1
    y = model(x)
    assert y.shape == x.shape and torch.isfinite(y).all()
    if name == "mdct-lstm":  # gain and correction are bounded by construction
        assert float(y.abs().max()) < BOUNDED_PEAK_MAX


@pytest.mark.parametrize("name", NAMES)
def test_default_config_complexity(name: str) -> None:
    cls, _, rate = SMALL[name]
    counted = count_complexity(cls(cls.Config(), sample_rate_hz=rate).eval())
    assert 50e6 < counted["macs_per_second"] < 400e6  # small enough for one CPU core in real time
    assert 20_000 < counted["parameters"] < 200_000


# --- training -----------------------------------------------------------------------------------------
def _synthetic_pair(rate_hz: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A clean harmonic signal over a noise floor and its "coded" version: the top half of the band 20 dB
    down (a frequency-dependent gain the models can learn; pure tones with empty bins between the
    harmonics would make the log-spectral loss punish any change)."""
    generator = torch.Generator().manual_seed(0)
    n = rate_hz // 4
    t = torch.arange(n) / rate_hz
    f0 = torch.tensor([150.0, 230.0])[:, None, None] * rate_hz / SPEECH_RATE_HZ  # the same task at any rate
    harmonics = torch.arange(1, 40)
    frequencies = f0 * harmonics
    waves = torch.where(frequencies < 0.45 * rate_hz, torch.sin(2 * torch.pi * frequencies * t[:, None]), 0.0)
    clean = (waves / harmonics).sum(-1)[:, None, :] * 0.05 + 0.005 * torch.randn(2, 1, n, generator=generator)
    band_gain = torch.where(torch.fft.rfftfreq(n, 1 / rate_hz) < 0.25 * rate_hz, 1.0, 0.1)
    return torch.fft.irfft(torch.fft.rfft(clean) * band_gain, n=n), clean


@pytest.mark.parametrize("name", NAMES)
def test_thirty_steps_on_a_synthetic_pair_lower_the_loss(name: str) -> None:
    model = _small(name, randomise_last=False)
    degraded, clean = _synthetic_pair(SMALL[name][2])
    stft = MultiResolutionSTFTLoss(((256, 64, 256), (512, 128, 512)))

    def loss() -> torch.Tensor:
        out = model(degraded)
        return stft(out, clean) + 10 * F.l1_loss(out, clean)

    with torch.no_grad():
        before = float(loss())
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(TRAIN_STEPS):
        optimizer.zero_grad()
        loss().backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        after = float(loss())
    assert after < TRAINED_LOSS_RATIO_MAX * before, (before, after)


# --- inside the codecs ----------------------------------------------------------------------------------
def _json_ready(value: Any) -> Any:
    return [_json_ready(v) for v in value] if isinstance(value, (tuple, list)) else value


@pytest.mark.parametrize(("name", "codec_name", "bitrate"), [
    pytest.param("subband-gan", "amrwb", 12650, marks=needs_amrwb),
    pytest.param("mdct-lstm", "aac", 32000, marks=needs_aac),
])
def test_registered_weights_run_inside_the_enhanced_codec(name: str, codec_name: str, bitrate: int,
                                                         tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    model = _small(name, seed=3)
    rate = SMALL[name][2]
    weights_name = f"test-{name}-{tmp_path.name}".lower()[:60]
    config = {"task": "postfilter", "sample_rate_hz": rate,
              "model": {"name": name, **{k: _json_ready(v) for k, v in dataclasses.asdict(SMALL[name][1]).items()}}}
    register(weights_name, model.state_dict(), config, directory=tmp_path)
    monkeypatch.setenv(ENV_DIR, str(tmp_path))
    codec = load_codec(f"{codec_name}+enhance", bitrate=bitrate, sample_rate=rate, enhancer=weights_name)
    plain = load_codec(codec_name, bitrate=bitrate, sample_rate=rate)
    assert codec.algorithmic_delay == plain.algorithmic_delay + model.delay_samples
    x = torch.randn(1, 1, 999) * 0.1
    with torch.no_grad():
        torch.testing.assert_close(load_enhancer(weights_name)(x), model(x), atol=1e-6, rtol=0)
    t = np.arange(rate // 2) / rate
    audio = (0.3 * np.sin(2 * np.pi * 220 * t) * np.sin(2 * np.pi * 3 * t))[None].astype(np.float32)
    packets = codec.encode(audio)
    whole = codec.decode(packets, audio.shape[1])
    streamed = Codec.decode(codec, packets, audio.shape[1])  # the stream decoder, packet by packet
    np.testing.assert_allclose(streamed, whole, atol=1e-5)
    assert whole.shape == audio.shape and np.isfinite(whole).all()


# --- synthetic music ------------------------------------------------------------------------------------
SHORT_PIECE_S = 0.5


def test_synthetic_music_is_a_function_of_seed_and_index() -> None:
    a = synthesize_piece(seed=0, index=3, duration_s=SHORT_PIECE_S)
    np.testing.assert_array_equal(a, synthesize_piece(seed=0, index=3, duration_s=SHORT_PIECE_S))
    assert not np.allclose(a, synthesize_piece(seed=0, index=4, duration_s=SHORT_PIECE_S))
    assert not np.allclose(a, synthesize_piece(seed=1, index=3, duration_s=SHORT_PIECE_S))


def test_synthetic_music_level_and_bandwidth() -> None:
    high_fractions = []
    for index in range(3):
        x = synthesize_piece(seed=0, index=index, duration_s=2 * SHORT_PIECE_S)
        assert x.dtype == np.float32 and x.shape == (round(2 * SHORT_PIECE_S * SAMPLE_RATE_HZ),)
        assert np.isfinite(x).all()
        rms_db = 20 * np.log10(np.sqrt(np.mean(x.astype(np.float64) ** 2)))
        assert -30.0 < rms_db < -19.5  # TARGET_RMS_DBFS, lower only where the peak limit applied
        assert np.abs(x).max() <= 0.95 + 1e-6
        power = np.abs(np.fft.rfft(x)) ** 2
        frequency = np.fft.rfftfreq(x.size, 1 / SAMPLE_RATE_HZ)
        high_fractions.append(power[frequency > 10_000].sum() / power.sum())
    assert max(high_fractions) > 1e-3  # the spectrum reaches above 10 kHz (cymbals, hats, bright timbres)


def test_synthetic_music_corpus_is_written_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from nsac.train import synth_music

    def fast_piece(*, seed: int, index: int, duration_s: float) -> np.ndarray:  # the folder logic only
        return np.full(round(duration_s * SAMPLE_RATE_HZ), 0.01 * (index + 1), dtype=np.float32)

    monkeypatch.setattr(synth_music, "synthesize_piece", fast_piece)
    folder = ensure_synthetic_music(tmp_path, seed=5, n_pieces=20, piece_s=0.5)
    files = sorted(folder.rglob("*.flac"))
    assert len(files) == 20 and (folder / piece_path(19)).is_file()
    assert len({f.parent.name for f in files}) == 2  # two groups: the "speakers" of the validation split
    stamp = files[0].stat().st_mtime_ns
    assert ensure_synthetic_music(tmp_path, seed=5, n_pieces=20, piece_s=0.5) == folder
    assert files[0].stat().st_mtime_ns == stamp
    with pytest.raises(ParameterError):
        ensure_synthetic_music(tmp_path, n_pieces=5)
