"""Export-time code counts: the exported weights' own codes over training audio, frozen as integer tables.

A model whose packets are range-coded with learned code frequencies (the soft-to-hard autoencoder) counts
its codes while it trains: an EMA over the last ~1000 batches, coded by the weights *as they were then*. The
weights that get exported differ (the EMA of the weights, or simply later ones), and a table that does not
fit the codes costs rate: after a 20-step smoke run, on the shipped example, the training counts' tables
cost 12.9 kb/s (raw weights) and 7.4 kb/s (weight EMA) where the codes' own entropy was 2.7 and 0.4 kb/s.
So `nsac export` counts again, with the exported weights:

    training speakers (the recipe's corpus and speaker split, validation speakers left out)
      -> RECOUNT_FILES files evenly spaced over the sorted list, the middle RECOUNT_SECONDS of each,
         loudness-normalised as in training -> model.count_codes -> quantizer.freeze_counts

The tables then live in the exported weights (``quantizer.code_frequencies``) as integers. When the corpus
cannot be read where the export runs, the training counts stay and NAME.json says so.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nsac.errors import NsacError
from nsac.train.config import Recipe
from nsac.train.data import load_corpus, speaker_split
from nsac.train.dataset import validation_clips

#: training files whose codes are counted, and the seconds taken from the middle of each
RECOUNT_FILES = 64
RECOUNT_SECONDS = 4.0


def recount_code_frequencies(model: nn.Module, recipe: Recipe, *, n_files: int = RECOUNT_FILES,
                             seconds_per_file: float = RECOUNT_SECONDS) -> dict[str, Any] | None:
    """Freeze `model`'s code frequencies from its own codes on training audio; where they came from, for
    NAME.json (None for models without learned code frequencies)."""
    if not hasattr(model, "count_codes"):
        return None
    data = recipe.data
    try:
        if not Path(data.path).exists():
            raise NsacError(f"{data.path} is not here")
        items = load_corpus(data.path, split=data.split)
        train, _ = speaker_split(items, valid_fraction=data.valid_fraction, seed=recipe.seed)
    except NsacError as exc:
        return {"source": "training batches (EMA of the counts while training)",
                "why": f"the corpus could not be read at export ({exc})"}
    train = sorted(train, key=lambda item: str(item.path))
    step = max(1, len(train) // n_files)
    chosen = train[::step][:n_files]
    clips = validation_clips(chosen, data=dataclasses.replace(data, valid_clips=len(chosen),
                                                              valid_s=seconds_per_file))
    was_training = model.training
    model.eval()
    counts = None
    with torch.no_grad():
        for clip in clips:
            clip_counts = model.count_codes(torch.from_numpy(clip["target"])[None, None])
            counts = clip_counts if counts is None else counts + clip_counts
    model.train(was_training)
    if counts is None:
        return {"source": "training batches (EMA of the counts while training)",
                "why": f"no training files in {data.path}"}
    model.quantizer.freeze_counts(counts)
    total_s = sum(clip["target"].size for clip in clips) / data.sample_rate_hz
    return {"source": "exported weights on training audio", "files": len(clips), "seconds": round(total_s, 1)}
