"""Tests for nsac.train.dataset: crops are a function of (seed, example number), loaders agree, resampling."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from nsac.audio import read, resample, write
from nsac.train.config import AugmentConfig, DataConfig
from nsac.train.data import scan_folder
from nsac.train.dataset import CropDataset, StepBatchSampler, make_loader, read_crop, validation_clips
from nsac.dsp.loudness import loudness_lufs

DATA = DataConfig(crop_s=0.25, batch_size=3, valid_s=1.0, valid_clips=2)


@pytest.fixture(scope="module")
def dataset(tiny_corpus: Path) -> CropDataset:
    return CropDataset(scan_folder(tiny_corpus), data=DATA, augmentation=AugmentConfig(), seed=5)


def test_an_example_is_fixed_by_seed_and_number(dataset: CropDataset, tiny_corpus: Path) -> None:
    a, b = dataset[17], dataset[17]
    assert a["input"].shape == (1, 4000) and a["input"].dtype == torch.float32
    assert torch.equal(a["input"], b["input"]) and torch.equal(a["input"], a["target"])
    assert not torch.equal(dataset[18]["input"], a["input"])
    other_seed = CropDataset(dataset.items, data=DATA, augmentation=AugmentConfig(), seed=6)
    assert not torch.equal(other_seed[17]["input"], a["input"])


def test_crops_are_loudness_normalised_without_augmentation(tiny_corpus: Path) -> None:
    plain = CropDataset(scan_folder(tiny_corpus), data=DataConfig(crop_s=1.0), augmentation=None, seed=0)
    levels = [loudness_lufs(plain[i]["target"].numpy(), sample_rate_hz=16000) for i in range(4)]
    assert levels == pytest.approx([-26.0] * 4, abs=0.01)


def test_batches_do_not_depend_on_loader_workers(dataset: CropDataset) -> None:
    sampler = StepBatchSampler(start_step=3, max_steps=5, batch_size=3)
    inline = [b["input"] for b in make_loader(dataset, sampler, num_workers=0, prefetch_factor=2)]
    workers = [b["input"] for b in make_loader(dataset, sampler, num_workers=2, prefetch_factor=2)]
    assert len(inline) == 2 and inline[0].shape == (3, 1, 4000)
    assert all(torch.equal(x, y) for x, y in zip(inline, workers))


def test_sampler_gives_each_process_its_own_examples_and_resumes_by_step() -> None:
    ranks = [list(StepBatchSampler(start_step=0, max_steps=4, batch_size=2, rank=r, world_size=3))
             for r in range(3)]
    ids = [i for r in ranks for batch in r for i in batch]
    assert sorted(ids) == list(range(24))
    resumed = list(StepBatchSampler(start_step=2, max_steps=4, batch_size=2, rank=1, world_size=3))
    assert resumed == ranks[1][2:]


def test_a_crop_at_another_rate_is_the_resampled_file(tmp_path: Path, tiny_corpus: Path) -> None:
    audio, _ = read(min(tiny_corpus.rglob("*.flac")))
    high = resample(audio, from_hz=16000, to_hz=48000)
    (tmp_path / "speaker").mkdir()
    write(tmp_path / "speaker" / "x.wav", high, 48000, bits="float")
    (item,) = scan_folder(tmp_path)
    crop = read_crop(item, start_s=0.5, n=4000, sample_rate_hz=16000)
    whole = resample(high, from_hz=48000, to_hz=16000)[0]
    np.testing.assert_allclose(crop, whole[8000:12000], atol=2e-3)


def test_validation_clips_are_the_middle_of_each_file(tiny_corpus: Path) -> None:
    items = scan_folder(tiny_corpus)
    clips = validation_clips(items, data=DATA)
    assert len(clips) == 2 and all(c["input"].shape == (16000,) for c in clips)
    assert np.array_equal(clips[0]["input"], clips[0]["target"])
