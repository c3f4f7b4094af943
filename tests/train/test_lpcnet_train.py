"""LPCNet training: the teacher-forcing tensors line up with the signal, a run resumes where it stopped, and
`nsac train lpcnet` + `nsac export` give weights the codec decodes with."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile
import torch
from scipy.signal import lfilter

from nsac import pretrained
from nsac.codecs.lpcnet.codec import LPCNetCodec
from nsac.dsp.mulaw import mulaw_decode
from nsac.examples import example_path
from nsac.train.lpcnet_data import LPCNetData
from nsac.train.lpcnet_train import CHECKPOINT, SequenceSampler, TrainSettings, export_checkpoint
from nsac.train.run import train as nsac_train

AR = np.array([1.0, -1.2, 0.6])
"""A stable AR(2) filter: the signal s = e / A(z) is predicted by p_t = 1.2 s_{t-1} - 0.6 s_{t-2}."""


def _ar_data(n_frames: int = 60, seed: int = 0) -> tuple[LPCNetData, np.ndarray]:
    rng = np.random.default_rng(seed)
    excitation = 0.01 * rng.standard_normal(n_frames * 160)
    signal = lfilter([1.0], AR, excitation)
    lpc = np.zeros((2, n_frames, 17), dtype=np.float32)
    lpc[:, :, : AR.size] = AR
    data = LPCNetData(signal=signal.astype(np.float32), file_start_frame=np.array([0, n_frames]),
                      features=np.zeros((2, n_frames, 20), dtype=np.float32),
                      pitch_index=np.full((2, n_frames), 100, dtype=np.int16), lpc=lpc)
    return data, excitation


def test_targets_are_the_excitation_of_the_lpc_filter_when_no_noise_is_injected():
    data, excitation = _ar_data()
    settings = TrainSettings(batch=4, sequence_frames=5, noise_levels=0.0)
    sampler = SequenceSampler(data, settings)
    rng, generator = np.random.default_rng(1), torch.Generator().manual_seed(1)
    rng_copy = np.random.default_rng(1)
    batch = sampler.batch(rng, generator, quantized_p=0.0)
    starts = rng_copy.choice(sampler.starts, size=settings.batch)
    n = 160 * settings.sequence_frames
    assert batch["target"].shape == (4, n) and batch["features"].shape == (4, settings.sequence_frames + 4, 20)
    for row, k0 in enumerate(starts):
        true = excitation[160 * k0: 160 * k0 + n]
        decoded = mulaw_decode(batch["target"][row].numpy())
        # the mu-law step near a value x is about (|x| + 1/255) * ln(256) / 127.5: 5 % of it is plenty
        assert np.all(np.abs(decoded - true) <= 0.05 * (np.abs(true) + 1 / 255) + 1e-6)
        previous = mulaw_decode(batch["excitation_code"][row].numpy())
        np.testing.assert_allclose(previous[1:], decoded[:-1], atol=1e-6)


def _tiny_corpus(folder) -> None:
    audio, rate = soundfile.read(example_path("speech"), dtype="float32")
    for i in range(3):
        (folder / f"speaker{i}").mkdir(parents=True)
        soundfile.write(folder / f"speaker{i}" / "a.flac", audio[i * rate: (i + 2) * rate], rate)


TINY = ["steps=2", "batch=2", "sequence_frames=4", "valid_batches=1", "log_every=1", "checkpoint_every=1",
        "gru_a_units=8", "gru_b_units=4", "conditioning=8", "sample_embedding=4", "pitch_embedding=4",
        "threads=1"]


def test_nsac_train_lpcnet_resumes_and_exports_weights_the_codec_uses(tmp_path, monkeypatch, speech_16k):
    _tiny_corpus(tmp_path / "corpus")
    run = tmp_path / "run"
    result = nsac_train("lpcnet", data=tmp_path / "corpus", out=run, overrides=TINY)
    assert result.step == 2 and (run / "data" / "train.npz").exists()
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2] and all(np.isfinite(r["loss"]) for r in log)
    nsac_train("lpcnet", out=run, overrides=[*TINY[1:], "steps=3"])  # resumes at 2, takes one step
    state = torch.load(run / CHECKPOINT, weights_only=False)
    assert state["step"] == 3
    export_checkpoint(run / CHECKPOINT, "lpcnet", directory=tmp_path / "pretrained")
    monkeypatch.setenv(pretrained.ENV_DIR, str(tmp_path / "pretrained"))
    codec = LPCNetCodec()
    assert codec.complexity()["parameters"] > 0
    out = codec.decode(codec.encode(speech_16k[:, :6400]), 6400)
    assert out.shape == (1, 6400) and np.isfinite(out).all()


def test_a_new_run_starts_from_exported_weights_at_their_step(tmp_path, monkeypatch):
    _tiny_corpus(tmp_path / "corpus")
    first = tmp_path / "first"
    nsac_train("lpcnet", data=tmp_path / "corpus", out=first, overrides=TINY)
    export_checkpoint(first / CHECKPOINT, "lpcnet-first", directory=tmp_path / "pretrained")
    monkeypatch.setenv(pretrained.ENV_DIR, str(tmp_path / "pretrained"))
    second = tmp_path / "second"
    second.mkdir()
    (second / "data").symlink_to(first / "data")
    overrides = [*TINY[1:], "steps=4", "init_from=pretrained:lpcnet-first", "init_warmup=2"]
    nsac_train("lpcnet", out=second, overrides=overrides)
    log = [json.loads(line) for line in (second / "log.jsonl").read_text().splitlines()]
    lr_at = {r["step"]: r["lr"] for r in log}
    assert sorted(lr_at) == [3, 4]  # the step count goes on from the weights' step 2
    full = 1.5e-3  # the recipe's lr (lpcnet.yaml)
    assert lr_at[3] == pytest.approx(0.5 * full / (1 + 3e-4 * 2))  # ramped up over init_warmup steps
    assert lr_at[4] == pytest.approx(full / (1 + 3e-4 * 3))
    hours_before = pretrained.load_config("lpcnet-first")["training"]["hours"]  # rounded to 0.01 h
    state = torch.load(second / CHECKPOINT, weights_only=True)
    assert state["step"] == 4 and state["elapsed_s"] > 3600 * hours_before
    assert state["settings"]["init_from"] == "pretrained:lpcnet-first"  # the export records where it began


def test_init_from_something_else_is_refused(tmp_path):
    from nsac.codecs.lpcnet.model import LPCNetModel
    from nsac.errors import ParameterError
    from nsac.train.lpcnet_train import warm_start_lpcnet

    (tmp_path / "x.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ParameterError, match="neither"):
        warm_start_lpcnet(LPCNetModel(TrainSettings(gru_a_units=8).model_config()), str(tmp_path / "x.pt"))


def test_unknown_setting_is_refused():
    from nsac.errors import ParameterError
    from nsac.train.lpcnet_train import parse_overrides

    with pytest.raises(ParameterError, match="gru_a_units"):
        parse_overrides(TrainSettings(), ["gru_a_unit=3"])


def test_excitation_noise_is_small_on_the_excitation_and_shaped_on_the_signal():
    """With noise in the excitation domain, the fed-back excitation stays within a few mu-law steps of the
    true one, while the signal error is that noise through 1 / A(z); the target still leads back to the
    clean signal."""
    data, excitation = _ar_data(seed=2)
    settings = TrainSettings(batch=4, sequence_frames=5, noise_levels=1.0, noise_domain="excitation")
    sampler = SequenceSampler(data, settings)
    rng, generator = np.random.default_rng(3), torch.Generator().manual_seed(3)
    starts = np.random.default_rng(3).choice(sampler.starts, size=settings.batch)
    batch = sampler.batch(rng, generator, quantized_p=0.0)
    n = 160 * settings.sequence_frames
    step = 2 * np.log(256) / 255 / 255 * (np.abs(excitation).max() * 255 + 1)  # a mu-law step at the peak
    for row, k0 in enumerate(starts):
        true = excitation[160 * k0 - 1: 160 * k0 + n - 1]  # e_{t-1}
        fed = mulaw_decode(batch["excitation_code"][row].numpy())
        assert np.max(np.abs(fed - true)) < 8 * step  # noise of at most 1 step std, plus the coding
        assert np.mean(np.abs(fed - true)) > 0.05 * step  # and there is noise
        previous = mulaw_decode(batch["signal_code"][row].numpy())
        prediction = mulaw_decode(batch["prediction_code"][row].numpy())
        clean = data.signal[160 * k0: 160 * k0 + n]
        target = mulaw_decode(batch["target"][row].numpy())
        # target + p_t returns to the clean s_t (to the mu-law resolution of both codes)
        assert np.mean(np.abs(prediction + target - clean)) < 0.05 * np.std(clean)
        assert np.mean(np.abs(previous[1:] - clean[:-1])) > 0  # the fed-back signal is not the clean one
