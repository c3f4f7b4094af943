"""Tests for nsac.train.data: folders and manifests, speakers, the speaker-disjoint split, errors."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from nsac.audio import write
from nsac.errors import AudioError, ParameterError
from nsac.train.data import load_corpus, read_manifest, scan_folder, speaker_split


def test_folder_speakers_are_parent_folder_names(tiny_corpus: Path) -> None:
    items = scan_folder(tiny_corpus)
    assert len(items) == 8
    assert sorted({i.speaker for i in items}) == ["speaker0", "speaker1", "speaker2", "speaker3"]
    assert all(i.sample_rate_hz == 16000 and i.n_frames == 24000 and i.channels == 1 for i in items)


def test_manifest_rows_by_split(tiny_corpus: Path, tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.csv"
    files = sorted(tiny_corpus.rglob("*.flac"))
    with manifest.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["source", "path", "speaker", "split"])
        for i, path in enumerate(files):
            writer.writerow(["x", path, f"s{i % 3}",
                             "train" if i < 6 else "test"])
    items = read_manifest(manifest, split="train")
    assert [i.path for i in items] == files[:6]
    assert [i.speaker for i in items] == ["s0", "s1", "s2", "s0", "s1", "s2"]
    assert len(load_corpus(manifest, split="test")) == 2
    with pytest.raises(ParameterError, match="no rows of split 'valid'; its splits: test, train"):
        read_manifest(manifest, split="valid")


def test_manifest_relative_path(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    write(tmp_path / "a" / "x.wav", np.zeros((1, 1600), dtype=np.float32) + 0.1, 16000)
    (tmp_path / "m.csv").write_text("path,speaker\na/x.wav,alice\n")
    (item,) = read_manifest(tmp_path / "m.csv")
    assert item.path == tmp_path / "a" / "x.wav" and item.speaker == "alice"


def test_manifest_without_columns_is_refused(tmp_path: Path) -> None:
    (tmp_path / "m.csv").write_text("file,who\nx.wav,a\n")
    with pytest.raises(ParameterError, match="lacks the column\\(s\\) path, speaker"):
        read_manifest(tmp_path / "m.csv")


def test_a_folder_without_audio_is_a_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("no audio here")
    with pytest.raises(AudioError) as error:
        load_corpus(tmp_path)
    assert "holds no audio files (.wav, .flac" in str(error.value) and "\n" not in str(error.value)
    with pytest.raises(AudioError, match="no such folder"):
        load_corpus(tmp_path / "missing")
    with pytest.raises(ParameterError, match="give --data"):
        load_corpus("")


def test_speaker_split_is_disjoint_deterministic_and_sized(tiny_corpus: Path) -> None:
    items = scan_folder(tiny_corpus)
    train, valid = speaker_split(items, valid_fraction=0.25, seed=0)
    assert len(valid) == 2 and len(train) == 6
    assert not {i.speaker for i in train} & {i.speaker for i in valid}
    assert speaker_split(items, valid_fraction=0.25, seed=0) == (train, valid)
    held_out = {speaker_split(items, valid_fraction=0.25, seed=s)[1][0].speaker for s in range(20)}
    assert len(held_out) > 1  # the seed chooses
    assert speaker_split(items, valid_fraction=0.0, seed=0) == (items, [])
    assert len(speaker_split(items, valid_fraction=0.9, seed=0)[0]) == 2  # one speaker is left to train


def test_one_speaker_cannot_be_split(tiny_corpus: Path) -> None:
    items = [i for i in scan_folder(tiny_corpus) if i.speaker == "speaker0"]
    with pytest.raises(ParameterError, match="at least 2 speakers.*valid_fraction=0"):
        speaker_split(items, valid_fraction=0.1, seed=0)
