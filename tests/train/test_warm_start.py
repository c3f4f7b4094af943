"""train.init_from: a new run starts from trained weights; grown output layers keep their old rows."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from train_helpers import SMOKE_SETTINGS

from nsac import pretrained
from nsac.codecs.autoencoder.stft_model import StftAutoencoder, StftAutoencoderConfig
from nsac.errors import ParameterError
from nsac.train import checkpoint as ckpt
from nsac.train.run import train
from nsac.train.trainer import TrainResult
from nsac.train.warm_start import warm_start

TINY = StftAutoencoderConfig(n_fft=32, stft_hop=8, channels=4, max_channels=8, strides=(5, 8), dilations=(1, 3),
                             latent_dim=4, n_codebooks=3, eval_codebooks=3, codebook_size=16, phase="centre", analysis="log_spectrum")


def model(phase: str, seed: int) -> StftAutoencoder:
    torch.manual_seed(seed)
    return StftAutoencoder(dataclasses.replace(TINY, phase=phase), sample_rate_hz=16000)


def registered(source: StftAutoencoder, directory: Path) -> str:
    """source's weights registered as shipped weights are: without the RVQ's training-only buffers."""
    state = {k: v for k, v in source.state_dict().items()
             if k.rsplit(".", 1)[-1] not in source.quantizer.TRAINING_ONLY_BUFFERS}
    pretrained.register("warm", state, {"format": "nsac-pretrained", "version": 1, "name": "warm"},
                        directory=directory)
    return "pretrained:warm"


def test_a_grown_head_keeps_the_old_rows_and_the_rest_is_copied(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    old = model("centre", seed=1)
    with torch.no_grad():
        old.quantizer.embed.normal_()
        old.quantizer.initialized.fill_(True)
    monkeypatch.setenv(pretrained.ENV_DIR, str(tmp_path))
    new = model("harmonic", seed=2)
    fresh_bias = new.decoder[-3].conv.bias.detach().clone()
    report = warm_start(new, registered(old, tmp_path))
    bins = TINY.n_fft // 2 + 1
    head_old, head_new = old.decoder[-3].conv, new.decoder[-3].conv
    assert torch.equal(head_new.bias[:bins], head_old.bias) and torch.equal(head_new.bias[bins:], fresh_bias[bins:])
    assert any(k.endswith("bias") for k in report["grown"])
    assert sorted(report["fresh"]) == ["quantizer.cluster_size", "quantizer.embed_sum"]  # not shipped
    for key, value in old.state_dict().items():
        if key in report["copied"] and not key.endswith(("embed_sum", "cluster_size")):
            assert torch.equal(new.state_dict()[key], value), key
    # the shipped weights carry no EMA sums: they restart from the loaded entries, not from random ones
    assert torch.equal(new.quantizer.embed_sum, old.quantizer.embed)
    assert torch.equal(new.quantizer.cluster_size, torch.ones_like(new.quantizer.cluster_size))


def test_weights_that_share_nothing_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    other = torch.nn.Linear(3, 2)
    pretrained.register("unrelated", other.state_dict(), {"format": "nsac-pretrained", "version": 1},
                        directory=tmp_path)
    monkeypatch.setenv(pretrained.ENV_DIR, str(tmp_path))
    with pytest.raises(ParameterError, match="shares no tensor"):
        warm_start(model("centre", seed=0), "pretrained:unrelated")
    with pytest.raises(ParameterError, match="empty"):
        warm_start(model("centre", seed=0), "")


def max_change(source: dict[str, torch.Tensor], state: dict[str, torch.Tensor]) -> float:
    """The largest change of a floating-point weight outside the quantiser (whose EMA moves on its own)."""
    return max(float((state[k] - v).abs().max()) for k, v in source.items()
               if v.is_floating_point() and k in state and "quantizer" not in k)


def test_a_run_with_init_from_starts_from_the_checkpoint(smoke_run: tuple[Path, TrainResult], tiny_corpus: Path,
                                                         tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = ckpt.load(smoke_run[1].checkpoint)["ema"]
    runs = {}
    for name, extra in (("warm", [f"init_from={smoke_run[1].checkpoint}"]), ("fresh", [])):
        result = train("smoke", data=tiny_corpus, out=tmp_path / name,
                       overrides=[*SMOKE_SETTINGS, "max_steps=1", *extra])
        runs[name] = ckpt.load(result.checkpoint)
    assert "started from" in capsys.readouterr().out
    assert runs["warm"]["step"] == 1  # a new run: its own step count, optimiser and discriminator
    # one AdamW step moves a weight by about the learning rate; a fresh initialisation is far away
    assert max_change(source, runs["warm"]["model"]) < 0.01 < max_change(source, runs["fresh"]["model"])
