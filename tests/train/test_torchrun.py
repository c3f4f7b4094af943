"""`nsac train` under torchrun: two CPU processes (gloo) train, checkpoint, and resume exactly."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from train_helpers import SHARED_TRAIN, SMOKE_SETTINGS

from nsac.train import checkpoint as ckpt

N_PROCESSES = 2
TIMEOUT_S = 300


def _torchrun(*args: str) -> subprocess.CompletedProcess[str]:
    """`torchrun --standalone --nproc_per_node=2 -m nsac ARGS` with the interpreter running the tests."""
    launcher = Path(sys.executable).with_name("torchrun")
    command = [str(launcher)] if launcher.exists() else [sys.executable, "-m", "torch.distributed.run"]
    command += ["--standalone", f"--nproc_per_node={N_PROCESSES}", "-m", "nsac", *args]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S, env=env, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def _train(data: Path, out: Path, *settings: str) -> subprocess.CompletedProcess[str]:
    sets = [arg for setting in settings for arg in ("--set", setting)]
    return _torchrun("train", "smoke", "--data", str(data), "--out", str(out), *sets)


def _same_weights(a: Path, b: Path) -> None:
    first, second = ckpt.load(a), ckpt.load(b)
    for part in ("model", "ema", "discriminator"):
        for key in first[part]:
            assert torch.equal(first[part][key], second[part][key]), f"{part}.{key} differs"
    assert all(torch.equal(x, y) for x, y in zip(first["rng"], second["rng"]))


def test_two_processes_train_and_write_one_checkpoint(tiny_corpus: Path, tmp_path: Path) -> None:
    result = _train(tiny_corpus, tmp_path / "run", *SMOKE_SETTINGS, "max_steps=4")
    assert result.stdout.count("nsac train: step 4") == 1  # only the first process reports
    state = ckpt.load(tmp_path / "run" / "checkpoints" / "last.pt")
    assert state["step"] == 4 and state["world_size"] == N_PROCESSES and len(state["rng"]) == N_PROCESSES
    assert not torch.equal(state["rng"][0], state["rng"][1])  # each process has its own noise


@pytest.mark.slow
@pytest.mark.skipif(not SHARED_TRAIN.exists(), reason="needs ../shared/data/speech/train")
def test_torchrun_resume_at_step_20_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    """The issue's command: 20 steps on the shared corpus, resumed to 40, equals 40 straight (bit for bit)."""
    resumed, straight = tmp_path / "resumed", tmp_path / "straight"
    _train(SHARED_TRAIN, resumed, "max_steps=20")
    assert ckpt.load(resumed / "checkpoints" / "last.pt")["step"] == 20
    _train(SHARED_TRAIN, resumed, "max_steps=40")
    _train(SHARED_TRAIN, straight, "max_steps=40")
    _same_weights(resumed / "checkpoints" / "last.pt", straight / "checkpoints" / "last.pt")
    assert (resumed / "train_log.csv").read_text() == (straight / "train_log.csv").read_text()
