"""Validation: run the model on the held-out speakers' clips and score them with nsac.eval's metrics.

The clips are shared out among the processes; sums and counts are added up over all of them, so every process
returns the same means. A metric that fails on a clip (NaN) is left out of that metric's mean.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from nsac.eval.metrics import METRICS, available_metrics, evaluate
from nsac.train.ddp import Distributed
from nsac.train.objective import Objective, split_output

#: the validation loss column (the recipe's reconstruction loss on each clip)
LOSS_COLUMN = "loss"


def usable_metrics(names: Sequence[str]) -> tuple[list[str], dict[str, str]]:
    """(metrics that can run here, {skipped metric: why}) for a recipe's train.metrics."""
    installed = available_metrics()
    usable, skipped = [], {}
    for name in names:
        if name not in METRICS:
            skipped[name] = f"unknown metric; known: {', '.join(METRICS)}"
        elif not installed[name]:
            skipped[name] = f"not installed (pip install {METRICS[name].install})"
        else:
            usable.append(name)
    return usable, skipped


def columns(metrics: Sequence[str]) -> list[str]:
    return [LOSS_COLUMN] + [column for name in metrics for column in METRICS[name].columns]


@torch.no_grad()
def validate(model: nn.Module, clips: Sequence[dict[str, np.ndarray]], *, objective: Objective,
             metrics: Sequence[str], sample_rate_hz: int, context: Distributed) -> dict[str, float]:
    """Mean validation loss and metrics over every process's share of `clips` (NaN where none was scored)."""
    keys = columns(metrics)
    sums = dict.fromkeys(keys, 0.0)
    counts = dict.fromkeys(keys, 0.0)
    was_training = model.training
    model.eval()
    try:
        for clip in list(clips)[context.rank :: context.world_size]:
            source = torch.from_numpy(clip["input"]).to(context.device)[None, None]
            target = torch.from_numpy(clip["target"]).to(context.device)[None, None]
            output, _ = split_output(model(source))
            scores = {LOSS_COLUMN: float(objective.reconstruction(output, target)["total"])}
            if metrics:
                decoded = output[0, 0].float().cpu().numpy()
                result = evaluate(clip["target"], decoded, sample_rate=sample_rate_hz, metrics=list(metrics))
                scores.update({k: result[k] for k in keys if k in result})
            for key, value in scores.items():
                if math.isfinite(value):
                    sums[key] += value
                    counts[key] += 1
    finally:
        model.train(was_training)
    sums = context.sum(sums)
    counts = context.sum(counts)
    return {key: (sums[key] / counts[key] if counts[key] else math.nan) for key in keys}
