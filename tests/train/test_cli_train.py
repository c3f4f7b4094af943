"""Tests for `nsac train` and `nsac export` on the command line: success, and one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from train_helpers import SMOKE_SETTINGS, copy_run

from nsac import pretrained
from nsac.cli import main
from nsac.train.trainer import TrainResult


def _sets(*extra: str) -> list[str]:
    return [arg for setting in (*SMOKE_SETTINGS, *extra) for arg in ("--set", setting)]


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("nsac: error: ") and "\n" not in err
    return err


def test_train_then_export(tiny_corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    assert main(["train", "smoke", "--data", str(tiny_corpus), "--out", str(out), *_sets("max_steps=2")]) == 0
    assert "nsac train: step 2 (2 this run" in capsys.readouterr().out
    assert main(["export", str(out / "checkpoints" / "last.pt"), "--name", "cli-smoke", "--pretrained-dir",
                 str(tmp_path / "weights")]) == 0
    assert "cli-smoke.safetensors" in capsys.readouterr().out
    assert pretrained.list_pretrained(tmp_path / "weights") == ["cli-smoke"]


def test_unknown_recipe_key(tiny_corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["train", "smoke", "--data", str(tiny_corpus), "--out", str(tmp_path), "--set", "lr_max=1"]
    assert main(args) == 1
    assert "unknown recipe key 'lr_max'" in _one_line_error(capsys)


def test_data_folder_without_audio(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").mkdir()
    assert main(["train", "smoke", "--data", str(tmp_path / "empty"), "--out", str(tmp_path / "run")]) == 1
    assert "holds no audio files" in _one_line_error(capsys)


def test_checkpoint_of_another_recipe(smoke_run: tuple[Path, TrainResult], tiny_corpus: Path, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    target = copy_run(smoke_run[0], tmp_path / "run")
    args = ["train", "smoke-postfilter", "--data", str(tiny_corpus), "--out", str(target), *_sets()]
    assert main(args) == 1
    assert "was written by recipe 'smoke', not 'smoke-postfilter'" in _one_line_error(capsys)


def test_unknown_recipe(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "nope"]) == 1
    assert "unknown recipe 'nope'; known recipes:" in _one_line_error(capsys)
