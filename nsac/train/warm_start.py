"""Start a new run from trained weights (`train.init_from`): a checkpoint's EMA model, or shipped weights.

A tensor whose shape matches is copied. A tensor that only grew along its first axis (an output layer given
more outputs, e.g. an inverse-STFT head that now also sets voicing and pitch) gets the old rows first and
keeps its fresh initialisation in the new rows. Anything else keeps its initialisation and is reported.
Optimiser, discriminator and step start afresh: this is a new run, not a resumed one.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from nsac.errors import ParameterError

PRETRAINED_PREFIX = "pretrained:"


def _source_state(source: str) -> dict[str, torch.Tensor]:
    if source.startswith(PRETRAINED_PREFIX):
        from nsac.pretrained import load_weights

        return load_weights(source[len(PRETRAINED_PREFIX):])
    from nsac.train import checkpoint as ckpt

    state = ckpt.load(Path(source))
    return state.get("ema") or state["model"]


def warm_start(model: nn.Module, source: str) -> dict[str, list[str]]:
    """Copy what fits from `source` (a checkpoint path or "pretrained:NAME") into model, in place.

    Returns {"copied": keys, "grown": keys whose leading rows were copied, "fresh": keys left as they were}.
    """
    if not source:
        raise ParameterError("train.init_from is empty")
    old = _source_state(source)
    report: dict[str, list[str]] = {"copied": [], "grown": [], "fresh": []}
    fitted: dict[str, torch.Tensor] = {}
    for key, tensor in model.state_dict().items():
        value = old[key].to(tensor.dtype) if key in old else None
        if value is not None and value.shape == tensor.shape:
            fitted[key] = value
            report["copied"].append(key)
        elif (value is not None and value.ndim == tensor.ndim >= 1 and value.shape[1:] == tensor.shape[1:]
              and value.shape[0] < tensor.shape[0]):
            fitted[key] = torch.cat([value, tensor[value.shape[0]:]])
            report["grown"].append(key)
        else:
            report["fresh"].append(key)
    # not strict: what is left out keeps its initialisation, or is derived by the module's load hook (the
    # RVQ restarts its EMA sums from the loaded entries)
    model.load_state_dict(fitted, strict=False)
    if not report["copied"] and not report["grown"]:
        raise ParameterError(f"train.init_from={source!r} shares no tensor with this model; check the recipe")
    return report


__all__ = ["PRETRAINED_PREFIX", "warm_start"]
