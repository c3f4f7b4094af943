"""The time-domain CNN, cepstral CNN and DCAE enhancers: they stream like the whole signal, start as the
identity, stay finite, learn, cost what their recipes say, and load and run inside `opus+enhance`."""

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
from nsac.codecs.postfilter.cepstral_cnn import CepstralCnnConfig, CepstralCnnEnhancer
from nsac.codecs.postfilter.codec import count_complexity
from nsac.codecs.postfilter.dcae import DcaeConfig, DcaeEnhancer, position_noise
from nsac.codecs.postfilter.registry import MODEL_CLASSES, load_enhancer
from nsac.codecs.postfilter.time_cnn import TimeCnnConfig, TimeCnnEnhancer
from nsac.errors import ParameterError
from nsac.losses.spectral import MultiResolutionSTFTLoss
from nsac.nn.streaming import stream_in_chunks
from nsac.pretrained import ENV_DIR, register
from nsac.train.models import model_class
from nsac.train.recipes import load_recipe

RATE_HZ = 16000
#: model name -> (class, a small config for the fast tests)
SMALL: dict[str, tuple[type[nn.Module], Any]] = {
    "time-cnn": (TimeCnnEnhancer, TimeCnnConfig(stride_samples=4, channels=8, dilations=(1, 2, 4),
                                                residual_hidden=8)),
    "cepstral-cnn": (CepstralCnnEnhancer, CepstralCnnConfig(channels=16, dilations=(1, 2))),
    "dcae": (DcaeEnhancer, DcaeConfig(stride_samples=4, channels=8, dilations=(1, 2, 4), residual_hidden=8)),
}
NAMES = sorted(SMALL)
#: random chunk sizes, cutting across every hop and frame
CHUNKS = tuple(int(n) for n in np.random.default_rng(7).integers(1, 700, size=24))
#: the default configs must cost well under this (MACs per second of 16 kHz audio)
MAX_MACS_PER_SECOND = 100e6
#: synthetic training pair: harmonics of F0 up to the Nyquist frequency, each signal with its own white noise
#: of NOISE_RMS; the "codec" filters by (1 + z^-1) / 2 (a tilt: -3 dB at 4 kHz, nothing at 8 kHz) and scales
#: by CODEC_GAIN, which all three models can undo (the cepstral one cannot restore a band that is gone)
F0_HZ, CODEC_GAIN, NOISE_RMS = 180.0, 0.6, 0.003
TRAIN_STEPS, TRAIN_SAMPLES, TRAIN_BATCH = 30, 4000, 4
#: the loss after TRAIN_STEPS at the recipes' learning rate must be below this fraction of the loss before
TRAINED_LOSS_RATIO_MAX = 0.95
TRAIN_LR = 1e-3

needs_opus = pytest.mark.skipif(not codec_class("opus").availability()[0], reason="PyAV with libopus missing")


@pytest.fixture(autouse=True)
def _one_thread() -> Any:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _small(name: str, *, seed: int = 0, randomise_last: bool = True) -> nn.Module:
    torch.manual_seed(seed)
    cls, config = SMALL[name]
    model = cls(config, sample_rate_hz=RATE_HZ).eval()
    if randomise_last:  # the last layer starts at zero: make it do something
        for parameter in model.net[-1].parameters():
            nn.init.normal_(parameter, std=0.05)
    return model


def _delay_and_tail(model: nn.Module) -> tuple[int, int]:
    return model.delay_samples, model.delay_samples + model.hop_samples


# --- registration and recipes ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_registered_for_inference_and_training_with_recipe_defaults(name: str) -> None:
    cls = SMALL[name][0]
    assert model_class(name) is cls
    assert MODEL_CLASSES[name] == f"{cls.__module__}:{cls.__name__}"
    recipe = load_recipe(f"postfilter-opus-6k-{name}")
    assert recipe.model.name == name and recipe.task == "postfilter" and recipe.degrade.codec == "opus"
    assert recipe.model.config == cls.Config()  # the recipe states the defaults the costs below are for
    assert recipe.adversarial == (name == "dcae")


def test_configs_refuse_bad_values() -> None:
    for cls, bad in ((TimeCnnConfig, {"stride_samples": 0}), (TimeCnnConfig, {"dilations": (1, 0)}),
                     (CepstralCnnConfig, {"frame_samples": 322}), (CepstralCnnConfig, {"max_gain_db": 0.0}),
                     (DcaeConfig, {"noise_seed": -1}), (DcaeConfig, {"noise_std": -1.0})):
        with pytest.raises(ParameterError):
            cls(**bad)
    with pytest.raises(ParameterError, match="batch, 1, time"):
        _small("time-cnn")(torch.zeros(1, 2, 100))


# --- streaming, causality, identity ---------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
@torch.no_grad()
def test_streaming_in_random_chunks_equals_whole_signal(name: str) -> None:
    model = _small(name)
    x = torch.randn(2, 1, 4003) * 0.1
    whole = model(x)
    delay, tail = _delay_and_tail(model)
    streamed = stream_in_chunks(model, F.pad(x, (0, tail)), CHUNKS)
    torch.testing.assert_close(streamed[..., delay : delay + x.shape[-1]], whole, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("name", NAMES)
@torch.no_grad()
def test_causal_with_the_stated_delay(name: str) -> None:
    model = _small(name, seed=1)
    x = torch.randn(1, 1, 3200) * 0.1
    changed = x.clone()
    change = 1600
    changed[..., change:] += 0.5
    a, b = model(x), model(changed)
    limit = change - model.delay_samples  # output sample n sees input up to n + delay_samples
    torch.testing.assert_close(a[..., :limit], b[..., :limit], atol=1e-6, rtol=0)
    assert not torch.allclose(a[..., limit : limit + 160], b[..., limit : limit + 160])


@pytest.mark.parametrize("name", NAMES)
@torch.no_grad()
def test_untrained_model_returns_its_input(name: str) -> None:
    model = SMALL[name][0](SMALL[name][1], sample_rate_hz=RATE_HZ).eval()
    x = torch.randn(2, 1, 1234) * 0.1
    torch.testing.assert_close(model(x), x, atol=1e-5, rtol=0)
    delay, tail = _delay_and_tail(model)
    streamed = stream_in_chunks(model, F.pad(x, (0, tail)), (100, 333))
    torch.testing.assert_close(streamed[..., delay : delay + x.shape[-1]], x, atol=1e-5, rtol=0)
    torch.testing.assert_close(model.train()(x), x, atol=1e-5, rtol=0)  # dcae: whatever the noise


@pytest.mark.parametrize("name", NAMES)
@torch.no_grad()
def test_full_scale_noise_gives_finite_output_of_the_input_shape(name: str) -> None:
    model = _small(name, seed=2)
    x = torch.rand(3, 1, RATE_HZ, generator=torch.Generator().manual_seed(0)) * 2 - 1
    y = model(x)
    assert y.shape == x.shape and torch.isfinite(y).all()


@pytest.mark.parametrize("name", NAMES)
def test_gradients_reach_every_parameter(name: str) -> None:
    model = _small(name, randomise_last=False).train()
    x, target = torch.randn(2, 1, 1600) * 0.1, torch.randn(2, 1, 1600) * 0.1
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(2):  # the zero last layer passes no gradient on before its first step
        optimizer.zero_grad()
        F.l1_loss(model(x), target).backward()
        optimizer.step()
    for parameter_name, parameter in model.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, parameter_name


# --- costs ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_default_config_costs_well_under_100_mmacs_per_second(name: str) -> None:
    cls = SMALL[name][0]
    model = cls(cls.Config(), sample_rate_hz=RATE_HZ).eval()
    costs = count_complexity(model)  # as the codec counts a shipped enhancer
    assert costs["parameters"] == sum(p.numel() for p in model.parameters())
    assert 1e6 < costs["macs_per_second"] < MAX_MACS_PER_SECOND


# --- learning -------------------------------------------------------------------------------------------
def _synthetic_pair() -> tuple[torch.Tensor, torch.Tensor]:
    """(degraded, clean), each (TRAIN_BATCH, 1, TRAIN_SAMPLES): harmonic tones, and them tilted and scaled."""
    generator = torch.Generator().manual_seed(0)
    t = torch.arange(TRAIN_SAMPLES) / RATE_HZ
    f0 = F0_HZ * (1 + 0.2 * torch.rand(TRAIN_BATCH, 1, generator=generator))
    harmonics = torch.arange(1, int(RATE_HZ / 2 / (F0_HZ * 1.2)))
    amplitudes = 0.1 / harmonics
    phases = 2 * torch.pi * torch.rand(TRAIN_BATCH, 1, len(harmonics), generator=generator)
    waves = torch.sin(2 * torch.pi * f0[:, :, None] * harmonics * t[:, None] + phases) * amplitudes
    shape = (TRAIN_BATCH, 1, TRAIN_SAMPLES)
    # both carry a noise floor (other noise in each), so that the log spectra compare harmonics, not zeros
    clean = waves.sum(-1)[:, None, :] + NOISE_RMS * torch.randn(shape, generator=generator)
    tone = waves.sum(-1)[:, None, :] + NOISE_RMS * torch.randn(shape, generator=generator)
    degraded = CODEC_GAIN * (tone + F.pad(tone, (1, -1))) / 2
    return degraded, clean


@pytest.mark.parametrize("name", NAMES)
def test_thirty_steps_on_a_synthetic_pair_lower_the_loss(name: str) -> None:
    torch.manual_seed(0)
    cls = SMALL[name][0]
    model = cls(cls.Config(), sample_rate_hz=RATE_HZ).eval()  # the recipe's size
    degraded, clean = _synthetic_pair()
    stft = MultiResolutionSTFTLoss(((256, 64, 256), (512, 128, 512)))

    def loss() -> torch.Tensor:
        out = model(degraded)
        return stft(out, clean) + 10 * F.l1_loss(out, clean)

    with torch.no_grad():
        before = float(loss())
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=TRAIN_LR)
    for _ in range(TRAIN_STEPS):
        optimizer.zero_grad()
        loss().backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        after = float(loss())
    assert after < TRAINED_LOSS_RATIO_MAX * before, (before, after)


# --- DCAE noise -----------------------------------------------------------------------------------------
def test_dcae_noise_is_a_function_of_seed_and_position() -> None:
    seeds = torch.tensor([0, 1, 2**32 - 1])
    noise = position_noise(seeds, 0, 100_000)
    assert noise.shape == (3, 1, 100_000)
    torch.testing.assert_close(position_noise(seeds, 40_000, 123), noise[..., 40_000:40_123], atol=0, rtol=0)
    assert abs(float(noise.mean())) < 0.02 and abs(float(noise.std()) - 1) < 0.02
    assert abs(float((noise[0] * noise[1]).mean())) < 0.02  # streams of different seeds are unrelated
    model = _small("dcae")
    x = torch.randn(2, 1, 2000) * 0.1
    with torch.no_grad():
        torch.testing.assert_close(model(x), model(x), atol=0, rtol=0)  # eval: the config's seed
        other = DcaeEnhancer(dataclasses.replace(SMALL["dcae"][1], noise_seed=5), sample_rate_hz=RATE_HZ)
        other.load_state_dict(model.state_dict())
        assert not torch.allclose(other.eval()(x), model(x))
        model.train()
        assert not torch.allclose(model(x), model(x))  # training: fresh noise per call and example


# --- inside the codec -----------------------------------------------------------------------------------
@needs_opus
@pytest.mark.parametrize("name", NAMES)
def test_registered_weights_run_inside_opus_enhance(name: str, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    model = _small(name, seed=3)
    weights_name = f"test-{name}-{tmp_path.name}".lower()[:60]
    config = {"task": "postfilter", "sample_rate_hz": RATE_HZ,
              "model": {"name": name, **json_ready(dataclasses.asdict(SMALL[name][1]))}}
    register(weights_name, model.state_dict(), config, directory=tmp_path)
    monkeypatch.setenv(ENV_DIR, str(tmp_path))
    loaded = load_enhancer(weights_name)
    x = torch.randn(1, 1, 800) * 0.1
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x), atol=0, rtol=0)
    codec = load_codec("opus+enhance", bitrate=6000, sample_rate=RATE_HZ, enhancer=weights_name)
    assert codec.algorithmic_delay == load_codec("opus", bitrate=6000, sample_rate=RATE_HZ).algorithmic_delay \
        + model.delay_samples
    t = np.arange(RATE_HZ) / RATE_HZ
    audio = (0.3 * np.sin(2 * np.pi * 220 * t) * np.sin(2 * np.pi * 3 * t))[None].astype(np.float32)
    packets = codec.encode(audio)
    whole = codec.decode(packets, audio.shape[1])
    streamed = Codec.decode(codec, packets, audio.shape[1])  # the stream decoder, packet by packet
    np.testing.assert_allclose(streamed, whole, atol=1e-5)
    assert whole.shape == audio.shape and np.isfinite(whole).all()
    assert codec.complexity()["parameters"] == sum(p.numel() for p in model.parameters())


def json_ready(value: Any) -> Any:
    """Tuples as lists, as an exported config holds them."""
    if isinstance(value, (tuple, list)):
        return [json_ready(v) for v in value]
    return value if not isinstance(value, dict) else {k: json_ready(v) for k, v in value.items()}
