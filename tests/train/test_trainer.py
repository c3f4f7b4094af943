"""Tests for the trainer: exact resume, what a checkpoint holds, logs and plots, refusals, the LR schedule."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from train_helpers import SMOKE_SETTINGS, copy_run

from nsac.errors import ParameterError, WeightsError
from nsac.train import checkpoint as ckpt
from nsac.train.config import OptimConfig
from nsac.train.log import LOSSES_PLOT, TRAIN_LOG, VALID_LOG, VALID_PLOT, CsvLog
from nsac.train.run import train
from nsac.train.trainer import TrainResult, learning_rate

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _assert_same_state(a: dict, b: dict) -> None:
    for part in ("model", "ema", "discriminator"):
        assert a[part].keys() == b[part].keys()
        for key in a[part]:
            assert torch.equal(a[part][key], b[part][key]), f"{part}.{key} differs"
    for part in ("optim_g", "optim_d"):
        for index, state in a[part]["state"].items():
            for name, value in state.items():
                assert torch.equal(value, b[part]["state"][index][name]), f"{part}.{index}.{name} differs"
    assert all(torch.equal(x, y) for x, y in zip(a["rng"], b["rng"]))


def test_resume_at_step_20_ends_where_an_uninterrupted_run_does(
        smoke_run: tuple[Path, TrainResult], tiny_corpus: Path, tmp_path: Path) -> None:
    """20 steps, resumed to 40: bit-identical to a straight 40-step run (weights, optimizer, RNG, logs)."""
    run_dir, first = smoke_run
    assert (first.step, first.steps_run) == (20, 20)
    resumed_dir = copy_run(run_dir, tmp_path / "resumed")
    resumed = train("smoke", data=tiny_corpus, out=resumed_dir, overrides=[*SMOKE_SETTINGS, "max_steps=40"])
    assert (resumed.step, resumed.steps_run) == (40, 20)
    straight_dir = tmp_path / "straight"
    straight = train("smoke", data=tiny_corpus, out=straight_dir, overrides=[*SMOKE_SETTINGS, "max_steps=40"])
    assert (straight.step, straight.steps_run) == (40, 40)
    _assert_same_state(ckpt.load(resumed.checkpoint), ckpt.load(straight.checkpoint))
    for name in (TRAIN_LOG, VALID_LOG):
        assert (resumed_dir / name).read_text() == (straight_dir / name).read_text()


def test_a_checkpoint_carries_what_resume_and_export_need(smoke_run: tuple[Path, TrainResult]) -> None:
    run_dir, result = smoke_run
    raw = torch.load(result.checkpoint, map_location="cpu", weights_only=True)  # plain tensors and dicts only
    state = ckpt.load(result.checkpoint)
    assert raw.keys() == state.keys()
    assert state["format"] == ckpt.CHECKPOINT_FORMAT and state["step"] == 20 and state["recipe"] == "smoke"
    assert state["config"]["train"]["max_steps"] == 20 and state["config"]["model"]["name"] == "smoke"
    assert state["git_revision"] and state["world_size"] == 1 and len(state["rng"]) == 1
    assert state["optim_g"]["state"] and state["optim_d"]["state"] and state["ema"] is not None
    assert ckpt.step_path(run_dir, 20).is_file()  # keep_checkpoints=1 of the smoke recipe


def test_logs_and_plots_are_written(smoke_run: tuple[Path, TrainResult]) -> None:
    run_dir, _ = smoke_run
    train_rows = CsvLog(run_dir / TRAIN_LOG).read()
    assert [row["step"] for row in train_rows] == [5, 10, 15, 20]
    assert {"loss", "stft", "mel", "lr", "grad_norm"} <= train_rows[0].keys()
    assert math.isfinite(train_rows[-1]["disc"]) and math.isfinite(train_rows[-1]["fm"])  # GAN from step 5
    valid_rows = CsvLog(run_dir / VALID_LOG).read()
    assert [row["step"] for row in valid_rows] == [20]
    assert all(math.isfinite(row[k]) for row in valid_rows for k in ("loss", "si_sdr", "mel_distance"))
    for name in (LOSSES_PLOT, VALID_PLOT):
        assert (run_dir / name).read_bytes()[:8] == PNG_MAGIC
    assert (run_dir / "recipe.yaml").read_text().startswith("name: smoke")


def test_resuming_with_another_recipe_or_other_settings_is_refused(
        smoke_run: tuple[Path, TrainResult], tiny_corpus: Path, tmp_path: Path) -> None:
    run_dir, _ = smoke_run
    target = copy_run(run_dir, tmp_path / "run")
    other = tmp_path / "other.yaml"
    other.write_text("inherit: smoke\n")
    with pytest.raises(ParameterError) as error:
        train(str(other), data=tiny_corpus, out=target, overrides=SMOKE_SETTINGS)
    message = str(error.value)
    assert "was written by recipe 'smoke', not 'other'" in message and "nsac train smoke" in message
    assert "\n" not in message
    with pytest.raises(ParameterError, match="other settings \\(optim.lr: 0.001 -> 0.002\\)"):
        train("smoke", data=tiny_corpus, out=target, overrides=[*SMOKE_SETTINGS, "optim.lr=0.002"])


def test_a_checkpoint_from_before_a_new_recipe_field_resumes(smoke_run: tuple[Path, TrainResult],
                                                             tiny_corpus: Path, tmp_path: Path) -> None:
    """A field added to the recipes since the checkpoint was written compares at its default, not as a change."""
    target = copy_run(smoke_run[0], tmp_path / "run")
    path = ckpt.last_path(target)
    state = ckpt.load(path)
    del state["config"]["loss"]["priority_weight"]  # as written before the field existed
    ckpt.save(state, path)
    result = train("smoke", data=tiny_corpus, out=target, overrides=[*SMOKE_SETTINGS, "max_steps=21"])
    assert result.steps_run == 1
    with pytest.raises(ParameterError, match="loss.priority_weight: 0.0 -> 1.0"):  # a real change still stops
        train("smoke", data=tiny_corpus, out=target, overrides=[*SMOKE_SETTINGS, "loss.priority_weight=1.0"])


def test_a_finished_run_is_left_alone(smoke_run: tuple[Path, TrainResult], tiny_corpus: Path,
                                      tmp_path: Path) -> None:
    target = copy_run(smoke_run[0], tmp_path / "run")
    before = (target / "checkpoints" / "last.pt").read_bytes()
    result = train("smoke", data=tiny_corpus, out=target, overrides=[*SMOKE_SETTINGS, "max_steps=20"])
    assert result.steps_run == 0 and (target / "checkpoints" / "last.pt").read_bytes() == before


def test_a_file_that_is_no_checkpoint_is_refused(tmp_path: Path) -> None:
    torch.save({"weights": torch.zeros(2)}, tmp_path / "x.pt")
    with pytest.raises(WeightsError, match="not an nsac training checkpoint"):
        ckpt.load(tmp_path / "x.pt")
    (tmp_path / "y.pt").write_bytes(b"garbage")
    with pytest.raises(WeightsError, match="not a readable nsac training checkpoint"):
        ckpt.load(tmp_path / "y.pt")


def test_postfilter_recipe_trains_on_cached_codec_output(tiny_corpus: Path, tmp_path: Path) -> None:
    from nsac.codecs import list_codecs

    if not any(info.name == "opus" and info.available for info in list_codecs()):
        pytest.skip("opus is not available here")
    result = train("smoke-postfilter", data=tiny_corpus, out=tmp_path / "run",
                   overrides=[*SMOKE_SETTINGS, "max_steps=3", f"cache_dir={tmp_path / 'cache'}"])
    assert result.step == 3
    assert len(list((tmp_path / "cache" / "opus").rglob("*.npy"))) == 8 * 2  # every file at both bitrates
    assert math.isfinite(CsvLog(tmp_path / "run" / VALID_LOG).read()[-1]["si_sdr"])


def test_learning_rate_schedule() -> None:
    warm = OptimConfig(lr=1.0, warmup_steps=4, schedule="constant")
    assert [learning_rate(s, 1.0, warm, global_batch=16) for s in range(5)] == [0.25, 0.5, 0.75, 1.0, 1.0]
    cosine = OptimConfig(lr=1.0, schedule="cosine", decay_steps=100, min_lr_ratio=0.1)
    assert learning_rate(0, 1.0, cosine, global_batch=16) == 1.0
    assert learning_rate(50, 1.0, cosine, global_batch=16) == pytest.approx(0.55)
    floor = learning_rate(100, 1.0, cosine, global_batch=16)
    assert floor == pytest.approx(0.1) and learning_rate(500, 1.0, cosine, global_batch=16) == floor
    exponential = OptimConfig(lr=1.0, schedule="exponential", decay_steps=10, min_lr_ratio=0.5)
    assert learning_rate(20, 1.0, exponential, global_batch=16) == pytest.approx(0.25)
    linear = OptimConfig(lr=1.0, schedule="constant", lr_scaling="linear", reference_batch=16)
    assert learning_rate(0, 1.0, linear, global_batch=64) == 4.0
    root = OptimConfig(lr=1.0, schedule="constant", lr_scaling="sqrt", reference_batch=16)
    assert learning_rate(0, 1.0, root, global_batch=64) == 2.0
