"""Fixtures for the training tests: one torch thread, a tiny speech corpus, and one smoke run to share."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from train_helpers import SHARED_TRAIN, SMOKE_SETTINGS

from nsac.audio import read, write
from nsac.examples import example_path
from nsac.train.run import train
from nsac.train.trainer import TrainResult

#: the tiny corpus: speakers, files per speaker, seconds per file
N_SPEAKERS = 4
FILES_PER_SPEAKER = 2
FILE_S = 1.5
RATE_HZ = 16000


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    """The tensors here are small, and two threads spin against each other on a busy CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _source_clips() -> list[np.ndarray]:
    """Real speech: shared training files when present, else pieces of the shipped example."""
    n = N_SPEAKERS * FILES_PER_SPEAKER
    length = round(FILE_S * RATE_HZ)
    files = sorted(SHARED_TRAIN.rglob("*.flac"))[: n * 10 : 10] if SHARED_TRAIN.exists() else []
    clips = []
    for path in files:
        audio, _ = read(path, sample_rate=RATE_HZ)
        if audio.shape[1] >= length:
            clips.append(audio[:, :length])
    if len(clips) < n:
        audio, _ = read(example_path("speech"), sample_rate=RATE_HZ)
        starts = np.linspace(0, audio.shape[1] - length, n).astype(int)
        clips = [audio[:, s : s + length] for s in starts]
    return clips[:n]


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 speakers (folders) x 2 FLAC files of 1.5 s of real speech at 16 kHz."""
    root = tmp_path_factory.mktemp("corpus")
    for i, clip in enumerate(_source_clips()):
        folder = root / f"speaker{i // FILES_PER_SPEAKER}"
        folder.mkdir(exist_ok=True)
        write(folder / f"utt{i % FILES_PER_SPEAKER}.flac", clip, RATE_HZ)
    return root




@pytest.fixture(scope="session")
def smoke_run(tiny_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, TrainResult]:
    """The smoke recipe trained 20 steps in a session-wide run folder (copy it before changing it)."""
    out = tmp_path_factory.mktemp("smoke") / "run"
    result = train("smoke", data=tiny_corpus, out=out, overrides=[*SMOKE_SETTINGS, "max_steps=20"])
    return out, result
