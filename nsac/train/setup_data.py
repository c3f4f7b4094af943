"""A recipe's data ready to train on: corpus, speaker-disjoint split, cached degradations, dataset, clips."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from nsac.errors import AudioError
from nsac.train.config import Recipe
from nsac.train.data import AudioItem, load_corpus, speaker_split
from nsac.train.dataset import CropDataset, DegradedPaths, StepBatchSampler, make_loader, validation_clips
from nsac.train.ddp import Distributed, threads_per_process
from nsac.train.degrade import Degradation, DegradationCache
from nsac.train.rendered_music import RENDERED_MUSIC, ensure_rendered_music
from nsac.train.synth_music import SYNTHETIC_MUSIC, ensure_synthetic_music

#: validation clips shorter than this are skipped (the metrics need at least 250 ms)
MIN_VALID_CLIP_S = 0.5
#: data.path names of generated corpora -> the function that writes one (once) and gives its folder
GENERATED_CORPORA: dict[str, Callable[..., Path]] = {
    SYNTHETIC_MUSIC: ensure_synthetic_music,
    RENDERED_MUSIC: ensure_rendered_music,
}


@dataclass
class TrainingData:
    """The training dataset and the fixed validation clips of one process."""

    recipe: Recipe
    dataset: CropDataset
    valid_clips: list[dict[str, np.ndarray]]
    train_items: list[AudioItem]
    valid_items: list[AudioItem]

    def loader(self, start_step: int, max_steps: int,
               context: Distributed) -> Iterable[dict[str, torch.Tensor]]:
        data = self.recipe.data
        sampler = StepBatchSampler(start_step=start_step, max_steps=max_steps, batch_size=data.batch_size,
                                   rank=context.rank, world_size=context.world_size)
        return make_loader(self.dataset, sampler, num_workers=data.num_workers,
                           prefetch_factor=data.prefetch_factor)


def degradations(recipe: Recipe) -> list[Degradation]:
    d = recipe.degrade
    return [Degradation(d.codec, int(bitrate), dict(d.options)) for bitrate in d.bitrates_bps]


def prepare_data(recipe: Recipe, context: Distributed) -> TrainingData:
    """Scan the corpus, split it by speaker and, for post-filters, code every file once (cached).

    data.path `synthetic-music` (nsac.train.synth_music) is the procedural music corpus and `rendered-music`
    (nsac.train.rendered_music) the one played by sampled instruments, each written once.
    """
    data = recipe.data
    source = data.path
    ensure_generated = GENERATED_CORPORA.get(source)
    if ensure_generated is not None:  # generated once into a cache folder; other processes wait for it
        if context.local_rank == 0:
            ensure_generated(progress=context.is_main and recipe.train.progress)
        context.barrier()
        source = str(ensure_generated())
    items = load_corpus(source, split=data.split)
    train, valid = speaker_split(items, valid_fraction=data.valid_fraction, seed=recipe.seed)
    if not train:
        raise AudioError(f"{data.path}: no training files are left after holding out validation speakers")
    degraded: DegradedPaths | None = None
    n_degradations = 0
    ordered = train + valid  # the item indices `degraded` refers to
    if recipe.task == "postfilter":
        settings = degradations(recipe)
        n_degradations = len(settings)
        cache = DegradationCache(recipe.degrade.cache_dir or None)
        workers = threads_per_process(recipe.train.threads, context)
        # shared out among the processes of each machine, so that every machine's cache ends up complete
        # whether or not the machines share a disk
        degraded, _ = cache.prepare(ordered, settings, workers=workers,
                                    shard=(context.local_rank, context.local_world_size),
                                    progress=context.is_main and recipe.train.progress)
        context.barrier()  # every process's share is on disk before anyone reads
    train_degraded = None if degraded is None else {k: v for k, v in degraded.items() if k[0] < len(train)}
    dataset = CropDataset(train, data=data, augmentation=recipe.augment, seed=recipe.seed,
                          degraded=train_degraded, n_degradations=n_degradations)
    long_enough = [item for item in valid if item.duration_s >= MIN_VALID_CLIP_S]
    clips = validation_clips(long_enough, data=data, degraded=degraded, n_degradations=n_degradations,
                             all_items=ordered)
    return TrainingData(recipe=recipe, dataset=dataset, valid_clips=clips, train_items=train,
                        valid_items=valid)
