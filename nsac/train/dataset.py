"""Training examples: random crops of a corpus, resampled, augmented and loudness-normalised, batched by step.

Example number n (counted over the whole run and every process) is drawn from its own generator,
``numpy.random.default_rng([seed, n])``: which file, where, and every augmentation. Step s of process r
takes examples ``(s * world_size + r) * batch_size + [0, batch_size)``. So a batch is a function of
(seed, step, rank) alone: loader workers, prefetching and resuming change nothing.

Only the frames of a crop are read (soundfile seeks; cached degradations are memory-mapped), so the loader
never holds a corpus in memory; `num_workers` processes prepare batches while the model trains.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from nsac.audio import resample
from nsac.dsp.loudness import normalization_gain_db
from nsac.train.augment import augment, change_speed, draw_gain_db, draw_speed
from nsac.train.config import AugmentConfig, DataConfig
from nsac.train.data import AudioItem

#: extra input read on each side of a crop that is resampled, so the resampler's edges fall outside it
RESAMPLE_MARGIN_MS = 20.0
#: what a postfilter example's degraded version is looked up by: (item index, degradation index) -> .npy
DegradedPaths = dict[tuple[int, int], Path]


def _read_frames(item: AudioItem, start: int, n: int, degraded: Path | None) -> np.ndarray:
    """Mono float32 frames [start, start + n) of the file (or its cached degradation); zeros past the ends."""
    out = np.zeros(n, dtype=np.float32)
    lo, hi = max(start, 0), min(start + n, item.n_frames)
    if hi <= lo:
        return out
    if degraded is not None:
        out[lo - start : hi - start] = np.load(degraded, mmap_mode="r", allow_pickle=False)[lo:hi]
        return out
    import soundfile

    frames = soundfile.read(str(item.path), start=lo, stop=hi, dtype="float32", always_2d=True)[0]
    out[lo - start : hi - start] = frames.mean(axis=1)
    return out


def read_crop(item: AudioItem, *, start_s: float, n: int, sample_rate_hz: int,
              degraded: Path | None = None) -> np.ndarray:
    """`n` samples at `sample_rate_hz` from `start_s` seconds into the file, mono float32."""
    rate = item.sample_rate_hz
    start = round(start_s * rate)
    if rate == sample_rate_hz:
        return _read_frames(item, start, n, degraded)
    margin = math.ceil(RESAMPLE_MARGIN_MS * 1e-3 * rate)
    n_file = math.ceil(n * rate / sample_rate_hz) + 2 * margin
    segment = _read_frames(item, start - margin, n_file, degraded)
    out = resample(segment[None, :], from_hz=rate, to_hz=sample_rate_hz)[0]
    skip = round(margin * sample_rate_hz / rate)
    out = out[skip : skip + n]
    return np.pad(out, (0, n - out.size)) if out.size < n else out


def _as_tensor(x: np.ndarray) -> torch.Tensor:
    """(samples,) numpy -> (1, samples) float32 tensor."""
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))[None, :]


def _fit(x: np.ndarray, n: int) -> np.ndarray:
    return np.pad(x, (0, n - x.size)) if x.size < n else x[:n]


class CropDataset(Dataset):
    """Map-style dataset whose index is the example number: returns {"input", "target"}, each (1, samples).

    Autoencoder examples: input = target = the augmented crop. Postfilter examples (`degraded` given): input
    = the codec's output, target = the clean crop, both with the same level change (the codec saw the file
    as it is, so the other augmentations, which would have to happen before the codec, are not applied).
    """

    def __init__(self, items: Sequence[AudioItem], *, data: DataConfig, augmentation: AugmentConfig | None,
                 seed: int, degraded: DegradedPaths | None = None, n_degradations: int = 0) -> None:
        self.items = list(items)
        self.data = data
        self.augmentation = augmentation
        self.seed = seed
        self.degraded = degraded
        self.n_degradations = n_degradations
        self.n_samples = round(data.crop_s * data.sample_rate_hz)
        durations = np.array([item.duration_s for item in self.items], dtype=np.float64)
        self._cumulative = np.cumsum(durations) / durations.sum()

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.seed, int(index)])
        # files are drawn in proportion to their duration, so every second of audio is equally likely
        which = min(int(np.searchsorted(self._cumulative, rng.random(), side="right")), len(self.items) - 1)
        item = self.items[which]
        rate, n = self.data.sample_rate_hz, self.n_samples
        pairs = self.degraded is not None
        speed = draw_speed(rng, self.augmentation) if self.augmentation and not pairs else 1.0
        n_read = math.ceil(n * speed)
        start_s = rng.uniform(0.0, max(0.0, item.duration_s - n_read / rate))
        target = read_crop(item, start_s=start_s, n=n_read, sample_rate_hz=rate)
        target = _fit(change_speed(target, factor=speed, sample_rate_hz=rate), n)
        source = None
        if self.degraded is not None:
            j = int(rng.integers(self.n_degradations))
            source = read_crop(item, start_s=start_s, n=n, sample_rate_hz=rate,
                               degraded=self.degraded[(which, j)])
        elif self.augmentation:
            target = augment(target, sample_rate_hz=rate, rng=rng, config=self.augmentation)
        gain_db = 0.0
        if self.data.loudness_lufs is not None:
            gain_db = normalization_gain_db(target, sample_rate_hz=rate, target_lufs=self.data.loudness_lufs,
                                            max_gain_db=self.data.max_gain_db)
        if self.augmentation:
            gain_db += draw_gain_db(rng, self.augmentation)
        scale = np.float32(10 ** (gain_db / 20))
        clean = _as_tensor(target * scale)
        return {"input": clean if source is None else _as_tensor(source * scale), "target": clean}


def validation_clips(items: Sequence[AudioItem], *, data: DataConfig, degraded: DegradedPaths | None = None,
                     n_degradations: int = 0, all_items: Sequence[AudioItem] | None = None
                     ) -> list[dict[str, np.ndarray]]:
    """Fixed validation examples: the middle `valid_s` of the first `valid_clips` files, loudness-normalised.

    `all_items` is the list that `degraded`'s item indices refer to (default: `items`). Clip k of a
    postfilter recipe uses degradation k modulo their number.
    """
    reference = list(all_items if all_items is not None else items)
    index = {item.path: i for i, item in enumerate(reference)}
    clips = []
    for k, item in enumerate(list(items)[: data.valid_clips]):
        n = min(round(data.valid_s * data.sample_rate_hz), math.floor(item.duration_s * data.sample_rate_hz))
        start_s = max(0.0, (item.duration_s - n / data.sample_rate_hz) / 2)
        target = read_crop(item, start_s=start_s, n=n, sample_rate_hz=data.sample_rate_hz)
        source = target
        if degraded is not None:
            path = degraded[(index[item.path], k % n_degradations)]
            source = read_crop(item, start_s=start_s, n=n, sample_rate_hz=data.sample_rate_hz, degraded=path)
        gain_db = 0.0
        if data.loudness_lufs is not None:
            gain_db = normalization_gain_db(target, sample_rate_hz=data.sample_rate_hz,
                                            target_lufs=data.loudness_lufs, max_gain_db=data.max_gain_db)
        scale = np.float32(10 ** (gain_db / 20))
        clips.append({"input": source * scale, "target": target * scale})
    return clips


class StepBatchSampler:
    """Yields, for steps start_step .. max_steps - 1, the example numbers of this process's batch."""

    def __init__(self, *, start_step: int, max_steps: int, batch_size: int, rank: int = 0,
                 world_size: int = 1) -> None:
        self.start_step, self.max_steps = start_step, max_steps
        self.batch_size, self.rank, self.world_size = batch_size, rank, world_size

    def __iter__(self) -> Iterator[list[int]]:
        for step in range(self.start_step, self.max_steps):
            first = (step * self.world_size + self.rank) * self.batch_size
            yield list(range(first, first + self.batch_size))

    def __len__(self) -> int:
        return max(0, self.max_steps - self.start_step)


def _worker_init(_: int) -> None:
    torch.set_num_threads(1)  # a loader process prepares one crop at a time; threads would only contend


def make_loader(dataset: CropDataset, sampler: StepBatchSampler, *, num_workers: int,
                prefetch_factor: int) -> DataLoader:
    """A DataLoader over `sampler`'s batches with `num_workers` background processes."""
    options: dict = {}
    if num_workers > 0:
        options = {"prefetch_factor": prefetch_factor, "worker_init_fn": _worker_init}
    # its own generator: the DataLoader draws a seed when it starts, and must not draw it from the global RNG
    return DataLoader(dataset, batch_sampler=sampler, num_workers=num_workers,
                      generator=torch.Generator().manual_seed(0), **options)
