"""Shared fixtures: real speech from ../shared/data (or the shipped example when it is absent)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nsac.audio import read, resample
from nsac.examples import example_path

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def speech_test_files(n: int) -> list[Path]:
    """The first n test-speech files in a fixed order; the shipped example when shared data is missing."""
    folder = SHARED_DATA / "speech" / "test"
    files = sorted(folder.rglob("*.flac"))[:n] if folder.exists() else []
    return files or [example_path("speech")]


def speech_test_clips(n: int, *, seconds: float, rate_hz: int) -> list[np.ndarray]:
    """The first `seconds` of `speech_test_files(n)`, mono at rate_hz: float32 arrays (1, samples)."""
    clips = []
    for path in speech_test_files(n):
        audio, rate = read(path)
        audio = resample(audio.mean(axis=0, keepdims=True), from_hz=rate, to_hz=rate_hz)
        clips.append(np.ascontiguousarray(audio[:, : round(seconds * rate_hz)], dtype=np.float32))
    return clips


def music_test_clips(n: int, *, seconds: float, rate_hz: int) -> list[np.ndarray]:
    """n test-music files at least `seconds` long, evenly spread over the sorted list of them (drum kits,
    loops, orchestral), their first `seconds` mono at rate_hz; [] when the shared data is missing."""
    import csv

    manifest = SHARED_DATA / "manifest.csv"
    if not manifest.exists():
        return []
    with manifest.open(newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["split"] == "music_test" and float(r["duration_s"]) >= seconds]
    paths = sorted(r["path"] for r in rows)
    picked = [paths[round(i * (len(paths) - 1) / max(1, n - 1))] for i in range(min(n, len(paths)))]
    clips = []
    for path in picked:
        audio, rate = read(SHARED_DATA / path)
        audio = resample(audio.mean(axis=0, keepdims=True), from_hz=rate, to_hz=rate_hz)
        clips.append(np.ascontiguousarray(audio[:, : round(seconds * rate_hz)], dtype=np.float32))
    return clips


@pytest.fixture(scope="session")
def speech_16k() -> np.ndarray:
    """About 3 s of real speech at 16 kHz, shape (1, samples), float32."""
    audio, rate = read(example_path("speech"))
    assert rate == 16000
    return audio[:, : 3 * rate]
